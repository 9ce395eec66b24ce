/*
 * plugin_harness.h - a minimal host for driving plugins directly in unit
 * tests (private to tests/unit/): a stage opened with dlopen from
 * $OBS_PLUGIN_DIR, a services table whose counters, clock and accounted
 * allocation the test can inspect, and a growable obs_out. Used by the
 * tests that compare plugins record by record without a pipeline
 * (test_json_equiv, test_payloads). Include after cmocka.h.
 */
#ifndef OBS_TEST_PLUGIN_HARNESS_H
#define OBS_TEST_PLUGIN_HARNESS_H

#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <observatory/stage.h>

#define MAX_COUNTERS 16

typedef struct counter {
    char name[64];
    int kind;
    uint64_t value;
} counter;

/* One stage instance as the test drives it. The obs_host comes first so a
 * host pointer is also a stage pointer. */
typedef struct stage {
    obs_host host;
    const obs_stage_desc *desc;
    void *dl;
    void *instance;
    obs_param_value values[16];
    char strings[16][64];
    obs_params params;
    char path[4096]; /* the plugin's file, for host.plugin_path */
    counter counters[MAX_COUNTERS];
    int n_counters;
} stage;

static void host_log(const obs_host *h, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "[%s %d] ", h->stage_name, level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int host_counter_register(const obs_host *h, const char *name, int kind, const char *help)
{
    stage *s = (stage *)h;
    (void)help;
    if (s->n_counters == MAX_COUNTERS)
        return OBS_ENOMEM;
    counter *c = &s->counters[s->n_counters];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->kind = kind;
    c->value = 0;
    return s->n_counters++;
}

static void host_counter_add(const obs_host *h, int id, uint64_t delta)
{
    stage *s = (stage *)h;
    assert_true(id >= 0 && id < s->n_counters);
    s->counters[id].value += delta;
}

static uint64_t host_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *host_alloc(const obs_host *h, size_t size)
{
    (void)h;
    return malloc(size ? size : 1);
}

static void *host_realloc(const obs_host *h, void *p, size_t size)
{
    (void)h;
    return realloc(p, size ? size : 1);
}

static void host_free(const obs_host *h, void *p)
{
    (void)h;
    free(p);
}

static uint64_t counter_value(const stage *s, const char *name)
{
    for (int i = 0; i < s->n_counters; i++)
        if (strcmp(s->counters[i].name, name) == 0)
            return s->counters[i].value;
    fail_msg("no counter '%s'", name);
    return 0;
}

/* Loads plugin `name`: its descriptor, the descriptor's default parameters
 * except those given as "name=value" strings in `overrides` (NULL
 * terminated; each must name a parameter), and a host. init is not called
 * (stage_open does): a test may change the host first. */
static stage *stage_load(const char *name, uint64_t seed, const char *const *overrides)
{
    const char *dir = getenv("OBS_PLUGIN_DIR");
    assert_non_null(dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.so", dir, name);
    stage *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!s->dl)
        fail_msg("dlopen %s: %s", path, dlerror());
    obs_stage_entry_fn entry = (obs_stage_entry_fn)dlsym(s->dl, OBS_STAGE_ENTRY_NAME);
    assert_non_null(entry);
    s->desc = entry();
    assert_int_equal(s->desc->magic, OBS_STAGE_MAGIC);
    assert_int_equal(s->desc->abi_major, OBS_ABI_MAJOR);
    assert_string_equal(s->desc->name, name);
    assert_true(s->desc->n_params <= 16);
    for (const char *const *o = overrides; o && *o; o++) {
        int known = 0;
        for (uint32_t i = 0; i < s->desc->n_params; i++) {
            size_t n = strlen(s->desc->params[i].name);
            known |= strncmp(*o, s->desc->params[i].name, n) == 0 && (*o)[n] == '=';
        }
        if (!known || strlen(*o) >= sizeof s->strings[0])
            fail_msg("override '%s': unknown parameter or too long", *o);
    }

    for (uint32_t i = 0; i < s->desc->n_params; i++) {
        const obs_param_desc *pd = &s->desc->params[i];
        const char *text = pd->default_value;
        for (const char *const *o = overrides; o && *o; o++) {
            size_t n = strlen(pd->name);
            if (strncmp(*o, pd->name, n) == 0 && (*o)[n] == '=')
                text = *o + n + 1;
        }
        obs_param_value *v = &s->values[i];
        v->name = pd->name;
        v->type = pd->type;
        v->is_default = text == pd->default_value;
        snprintf(s->strings[i], sizeof s->strings[i], "%s", text ? text : "");
        v->s = s->strings[i];
        if (pd->type == OBS_PARAM_INT) {
            v->i = strtoll(v->s, NULL, 10);
            v->d = (double)v->i;
        } else if (pd->type == OBS_PARAM_DOUBLE) {
            v->d = strtod(v->s, NULL);
        } else if (pd->type == OBS_PARAM_BOOL) {
            v->i = strcmp(v->s, "true") == 0;
        }
    }
    s->params.values = s->values;
    s->params.n_values = s->desc->n_params;

    s->host.struct_size = sizeof s->host;
    s->host.abi_major = OBS_ABI_MAJOR;
    s->host.abi_minor = OBS_ABI_MINOR;
    snprintf(s->path, sizeof s->path, "%s", path);
    s->host.stage_name = s->desc->name;
    s->host.plugin_path = s->path;
    s->host.seed = seed;
    s->host.batch_size = 1024;
    s->host.log = host_log;
    s->host.counter_register = host_counter_register;
    s->host.counter_add = host_counter_add;
    s->host.now_ns = host_now_ns;
    s->host.alloc = host_alloc;
    s->host.realloc = host_realloc;
    s->host.free = host_free;
    return s;
}

/* stage_load, then the plugin's init, which must succeed. */
static stage *stage_open(const char *name, uint64_t seed, const char *const *overrides)
{
    stage *s = stage_load(name, seed, overrides);
    int rc = s->desc->init(&s->host, &s->params, &s->instance);
    if (rc != OBS_OK)
        fail_msg("init %s: %d", name, rc);
    return s;
}

static void stage_close(stage *s)
{
    s->desc->fini(s->instance);
    /* Like hostd, never dlclose during the run. */
    free(s);
}

/* -------------------------------------------------------------- obs_out */

/* Grows records and arena by doubling. The arena may move, so committed
 * records that point into it are rebased; records passed by reference
 * point elsewhere and are left alone. Capacities stay multiples of 8, which
 * obs_out_commit's alignment of arena_used relies on. */
static int out_grow(obs_out *o, uint32_t n_records, uint64_t n_bytes)
{
    if (o->cap_records - o->n_records < n_records) {
        uint32_t cap = o->cap_records ? o->cap_records * 2 : 64;
        while (cap - o->n_records < n_records)
            cap *= 2;
        obs_record *r = realloc(o->records, cap * sizeof *r);
        if (!r)
            return OBS_ENOMEM;
        o->records = r;
        o->cap_records = cap;
    }
    if (o->arena_cap - o->arena_used < n_bytes) {
        uint64_t cap = o->arena_cap ? o->arena_cap * 2 : 4096;
        while (cap - o->arena_used < n_bytes)
            cap *= 2;
        uintptr_t old = (uintptr_t)o->arena;
        uint8_t *a = realloc(o->arena, cap);
        if (!a)
            return OBS_ENOMEM;
        for (uint32_t i = 0; i < o->n_records; i++) {
            uintptr_t d = (uintptr_t)o->records[i].data;
            if (old && d >= old && d <= old + o->arena_used)
                o->records[i].data = a + (d - old);
        }
        o->arena = a;
        o->arena_cap = cap;
    }
    return OBS_OK;
}

static void out_init(obs_out *o)
{
    memset(o, 0, sizeof *o);
    o->grow = out_grow;
}

static void out_reset(obs_out *o)
{
    o->n_records = 0;
    o->arena_used = 0;
    o->n_passed = 0;
}

#endif /* OBS_TEST_PLUGIN_HARNESS_H */
