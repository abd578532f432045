/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - command-line front end (sub-commands, options, help).
 */
#ifndef CDC_CLI_H
#define CDC_CLI_H

/** @brief Run the program; returns the process exit code. */
int cdc_cli_main(int argc, char **argv);

#endif
