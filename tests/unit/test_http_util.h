/*
 * test_http_util.h - what the two HTTP test programs share (test_http_parse.c,
 * test_http_api.c): a pipeline gen_static -> xf_pass -> sink_null running in
 * a thread with hostd's HTTP server in front of it on 127.0.0.1 port 0, and
 * a strict reader of the Prometheus text format that parses metrics_render's
 * output back into samples. Header-only, private to tests/unit/; include it
 * instead of cmocka.h.
 */
#ifndef TEST_HTTP_UTIL_H
#define TEST_HTTP_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "engine/pipeline.h"
#include "engine/snapshot.h"
#include "server/http.h"

/* ------------------------------------------------------------------------ */
/* A pipeline running in a thread.                                          */

typedef struct fixture {
    obs_config *cfg;
    pipeline *p;
    pthread_t thread;
    int rc;
    http_server *srv;
    uint16_t port;
} fixture;

static inline void *run_thread(void *arg)
{
    fixture *f = arg;
    f->rc = pipeline_run(f->p, NULL, NULL);
    return NULL;
}

static inline void fixture_start(fixture *f, const char *settings, struct store *st,
                                 uint64_t run_id)
{
    char yaml[2048], err[2048];
    snprintf(yaml, sizeof(yaml),
             "pipeline: t\n"
             "plugin_dirs: [%s]\n"
             "%s"
             "stages:\n"
             "  - {name: gen, plugin: gen_static, params: {size: 16}}\n"
             "  - {name: pass, plugin: xf_pass}\n"
             "  - {name: sink, plugin: sink_null}\n",
             getenv("OBS_PLUGIN_DIR"), settings);
    memset(f, 0, sizeof(*f));
    if (config_load_string("t.yaml", yaml, &f->cfg, err, sizeof(err)) != 0)
        fail_msg("config: %s", err);
    if (pipeline_create(f->cfg, NULL, 0, &f->p, err, sizeof(err)) != 0)
        fail_msg("pipeline_create: %s", err);
    http_options o = {.listen = "127.0.0.1:0",
                      .pipeline = f->p,
                      .store = st,
                      .run_id = run_id,
                      .allowed_hosts = (const char *const *)f->cfg->http_allowed_hosts,
                      .n_allowed_hosts = f->cfg->n_http_allowed_hosts};
    if (http_start(&o, &f->srv, err, sizeof(err)) != 0)
        fail_msg("http_start: %s", err);
    f->port = http_port(f->srv);
    assert_true(f->port != 0);
    assert_int_equal(pthread_create(&f->thread, NULL, run_thread, f), 0);
}

/* Waits (bounded) until the pipeline reports `state`. */
static inline void wait_state(fixture *f, snapshot_state state)
{
    for (int i = 0; i < 1000; i++) {
        obs_snapshot s;
        assert_int_equal(pipeline_snapshot(f->p, &s), 0);
        snapshot_state got = s.state;
        snapshot_free(&s);
        if (got == state)
            return;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("pipeline never reached state %s", snapshot_state_name(state));
}

static inline void fixture_join(fixture *f)
{
    pthread_join(f->thread, NULL);
    assert_int_equal(f->rc, 0);
}

static inline void fixture_stop(fixture *f)
{
    http_stop(f->srv);
    pipeline_destroy(f->p);
    config_free(f->cfg);
}

/* ------------------------------------------------------------------------ */
/* Prometheus text parsed back.                                             */

typedef struct prom_sample {
    char name[128];
    char labels[512]; /* raw label text between the braces */
    double value;
} prom_sample;

typedef struct prom_text {
    prom_sample *s;
    size_t n;
} prom_text;

/* Parses the exposition text strictly enough to catch format mistakes:
 * every sample's family was announced by # HELP then # TYPE just before
 * its first sample, and no family appears twice. */
static inline prom_text prom_parse(const char *text)
{
    prom_text t = {calloc(20000, sizeof(prom_sample)), 0};
    char families[256][128];
    size_t n_fam = 0;
    char help_for[128] = "", type_for[128] = "", type[32] = "";
    assert_non_null(t.s);
    const char *line = text;
    while (*line) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl); /* every line ends with a newline */
        size_t len = (size_t)(nl - line);
        char buf[1024];
        assert_true(len < sizeof(buf));
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = nl + 1;
        if (strncmp(buf, "# HELP ", 7) == 0) {
            assert_int_equal(sscanf(buf + 7, "%127s", help_for), 1);
            for (size_t i = 0; i < n_fam; i++)
                if (strcmp(families[i], help_for) == 0)
                    fail_msg("family %s appears twice", help_for);
            assert_true(n_fam < 256);
            strcpy(families[n_fam++], help_for);
            continue;
        }
        if (strncmp(buf, "# TYPE ", 7) == 0) {
            assert_int_equal(sscanf(buf + 7, "%127s %31s", type_for, type), 2);
            assert_string_equal(type_for, help_for);
            continue;
        }
        assert_true(buf[0] != '#' && buf[0] != '\0');
        prom_sample *s = &t.s[t.n++];
        assert_true(t.n < 20000);
        const char *brace = strchr(buf, '{');
        assert_non_null(brace);
        memcpy(s->name, buf, (size_t)(brace - buf));
        s->name[brace - buf] = '\0';
        /* The closing brace is the last '}' before the value. */
        const char *close = strrchr(buf, '}');
        assert_non_null(close);
        memcpy(s->labels, brace + 1, (size_t)(close - brace - 1));
        s->labels[close - brace - 1] = '\0';
        char *end;
        s->value = strtod(close + 2, &end);
        assert_true(*end == '\0' && close[1] == ' ');
        /* The sample belongs to the family just announced. */
        size_t flen = strlen(type_for);
        assert_true(strncmp(s->name, type_for, flen) == 0);
        if (strcmp(type, "histogram") == 0)
            assert_true(strcmp(s->name + flen, "_bucket") == 0 ||
                        strcmp(s->name + flen, "_sum") == 0 ||
                        strcmp(s->name + flen, "_count") == 0);
        else
            assert_string_equal(s->name, type_for);
        if (strcmp(type, "counter") == 0)
            assert_true(flen > 6 && strcmp(type_for + flen - 6, "_total") == 0);
    }
    return t;
}

/* The value of the sample `name` whose labels contain `label_part`. */
static inline double prom_get(const prom_text *t, const char *name, const char *label_part)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->s[i].name, name) == 0 && strstr(t->s[i].labels, label_part))
            return t->s[i].value;
    fail_msg("no sample %s{...%s...}", name, label_part);
    return -1;
}

static inline int prom_has(const prom_text *t, const char *name, const char *label_part)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->s[i].name, name) == 0 && strstr(t->s[i].labels, label_part))
            return 1;
    return 0;
}

#endif /* TEST_HTTP_UTIL_H */
