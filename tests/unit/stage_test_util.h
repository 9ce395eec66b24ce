/*
 * stage_test_util.h - what the tests of running pipelines share
 * (test_pipeline.c, test_parallel.c, test_swap.c): a plugin counter of one
 * stage instance, read by name, or the test fails naming the stage.
 * Include after cmocka.h.
 */
#ifndef OBS_STAGE_TEST_UTIL_H
#define OBS_STAGE_TEST_UTIL_H

#include <stdint.h>
#include <string.h>

#include "engine/stage.h"

static inline uint64_t counter(const stage *s, const char *name)
{
    for (uint32_t i = 0; i < s->host.n_counters; i++)
        if (strcmp(s->host.counters[i].name, name) == 0)
            return s->host.counters[i].value;
    fail_msg("stage '%s' has no counter '%s'", s->cfg->name, name);
    return 0;
}

#endif /* OBS_STAGE_TEST_UTIL_H */
