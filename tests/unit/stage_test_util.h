/*
 * stage_test_util.h - what the tests of running pipelines share
 * (test_pipeline.c, test_parallel.c, test_swap.c, test_source.c): a config
 * from a body of run/load/stages with both plugin directories, a pipeline
 * built from it, and a plugin counter of one stage instance, read by name;
 * each fails the test with the reason. Include after cmocka.h.
 */
#ifndef OBS_STAGE_TEST_UTIL_H
#define OBS_STAGE_TEST_UTIL_H

#include <stdint.h>
#include <string.h>

#include <stdio.h>
#include <stdlib.h>

#include "config/config.h"
#include "engine/pipeline.h"
#include "engine/stage.h"

/* "pipeline: t", both plugin directories, then `body` (run/load/stages).
 * The text stays valid until the next call (a config keeps a pointer). */
static inline obs_config *stage_test_config(const char *body)
{
    static char yaml[8192];
    snprintf(yaml, sizeof(yaml), "pipeline: t\nplugin_dirs: [%s, %s]\n%s", getenv("OBS_PLUGIN_DIR"),
             getenv("OBS_TEST_PLUGIN_DIR"), body);
    obs_config *cfg = NULL;
    char err[2048];
    if (config_load_string("t.yaml", yaml, &cfg, err, sizeof(err)) != 0)
        fail_msg("config: %s", err);
    return cfg;
}

static inline pipeline *stage_test_pipeline(obs_config *cfg)
{
    pipeline *p = NULL;
    char err[2048];
    if (pipeline_create(cfg, NULL, 0, &p, err, sizeof(err)) != 0)
        fail_msg("pipeline_create: %s", err);
    return p;
}

static inline uint64_t counter(const stage *s, const char *name)
{
    for (uint32_t i = 0; i < s->host.n_counters; i++)
        if (strcmp(s->host.counters[i].name, name) == 0)
            return s->host.counters[i].value;
    fail_msg("stage '%s' has no counter '%s'", s->cfg->name, name);
    return 0;
}

#endif /* OBS_STAGE_TEST_UTIL_H */
