/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - entry point; everything else lives in libcdc.a.
 */
#include "cdc/cli.h"

int main(int argc, char **argv)
{
    return cdc_cli_main(argc, argv);
}
