/* SPDX-License-Identifier: Apache-2.0 */
/*
 * t_commands.c - the command table (cdc/commands/table.c) is well formed:
 * every row has a handler, a usage line and help text; names are unique;
 * every option a row lists is an option of the command line; and the
 * handlers run through cdc_cli_main with the options their rows accept.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cdc/cli.h"
#include "cdc/commands/commands.h"
#include "tests/unit/cdc_test.h"

CDC_TEST(rows_complete)
{
    T_ASSERT(cdc_ncommands >= 11);
    T_EQ_STR(cdc_commands[0].word, "run"); /* the default: first in --help */
    for (size_t i = 0; i < cdc_ncommands; i++) {
        const cdc_command_t *c = &cdc_commands[i];
        size_t n = c->summary ? strlen(c->summary) : 0;
        T_ASSERT(c->word && *c->word);
        T_ASSERT(c->handler != NULL);
        T_ASSERT(c->synopsis && *c->synopsis);
        /* help lines: indented by two, each ending in a newline */
        T_ASSERT(n > 3 && !strncmp(c->summary, "  ", 2) &&
                 c->summary[n - 1] == '\n');
        if (c->bare_option) {
            int listed = 0;
            for (const char *const *o = c->options; o && *o; o++)
                listed |= !strcmp(*o, c->bare_option);
            T_ASSERT(listed);
        }
    }
}

CDC_TEST(names_unique)
{
    for (size_t i = 0; i < cdc_ncommands; i++)
        for (size_t k = i + 1; k < cdc_ncommands; k++) {
            const cdc_command_t *a = &cdc_commands[i], *b = &cdc_commands[k];
            int same = !strcmp(a->word, b->word) &&
                       (a->sub && b->sub ? !strcmp(a->sub, b->sub)
                                         : a->sub == b->sub);
            if (same)
                T_FAIL_("command '%s %s' twice", a->word,
                        a->sub ? a->sub : "");
            /* a word with sub-commands has only sub-command rows */
            if (!strcmp(a->word, b->word))
                T_ASSERT(a->sub && b->sub);
        }
}

CDC_TEST(options_exist)
{
    T_ASSERT(cdc_cli_option_known("table"));
    T_ASSERT(!cdc_cli_option_known("no-such-option"));
    for (size_t i = 0; i < cdc_ncommands; i++)
        for (const char *const *o = cdc_commands[i].options; o && *o; o++)
            if (!cdc_cli_option_known(*o))
                T_FAIL_("command '%s' lists unknown option --%s",
                        cdc_commands[i].word, *o);
}

/* `config --reference` runs the handler without a configuration, so a
 * broken -c file does not matter; `config` with it fails (78). */
CDC_TEST(bare_option_skips_configuration)
{
    char *ref[] = {"autoglm-cdc", "config", "--reference", "-c",
                   "/nonexistent/pipeline.yaml", NULL};
    char *cfg[] = {"autoglm-cdc", "config", "-c",
                   "/nonexistent/pipeline.yaml", NULL};
    FILE *save = stdout;
    FILE *sink = fopen("/dev/null", "w");

    T_ASSERT(sink != NULL);
    if (!sink)
        return;
    fflush(stdout);
    stdout = sink;
    int r1 = cdc_cli_main(5, ref);
    int r2 = cdc_cli_main(4, cfg);
    stdout = save;
    fclose(sink);
    T_EQ_INT(r1, CDC_EXIT_OK);
    T_ASSERT(r2 != CDC_EXIT_OK);
}

CDC_TEST_MAIN()
