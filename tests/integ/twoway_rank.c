/* SPDX-License-Identifier: Apache-2.0 */
/*
 * twoway_rank.c - print cdc_twoway_rank() for the integration tests
 * (tests/integ/t_twoway_weighted.py compares it with the ranks the
 * generated triggers write).
 *
 *   twoway_rank latest|priority|weighted PRIORITY WEIGHT SOURCE T_US
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mappings/reverse.h"

int main(int argc, char **argv)
{
    char r[CDC_MAP_RANK_LEN + 1];
    cdc_mrule_t rule;

    if (argc != 6) {
        fprintf(stderr, "usage: twoway_rank RULE PRIORITY WEIGHT SOURCE "
                        "T_US\n");
        return 64;
    }
    if (!strcmp(argv[1], "latest"))
        rule = CDC_RULE_LATEST;
    else if (!strcmp(argv[1], "priority"))
        rule = CDC_RULE_PRIORITY;
    else if (!strcmp(argv[1], "weighted"))
        rule = CDC_RULE_WEIGHTED;
    else {
        fprintf(stderr, "twoway_rank: unknown rule '%s'\n", argv[1]);
        return 64;
    }
    cdc_twoway_rank(rule, atoi(argv[2]), strtod(argv[3], NULL), argv[4],
                    strtoll(argv[5], NULL, 10), r);
    printf("%s\n", r);
    return 0;
}
