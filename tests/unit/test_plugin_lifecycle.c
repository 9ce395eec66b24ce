/*
 * test_plugin_lifecycle.c - the instrumented plugins of the conformance
 * suite driven through their callbacks, without a pipeline, by a small fake
 * host whose log and counters the test reads back: a failing init, a plugin
 * that starts its own thread and joins it in fini, thread-local destructors,
 * the sequence-checking sink (gaps, duplicates, strict mode), state handed
 * over between two versions of tp_echo, and the Rust cdylib plugin when
 * cargo built it. The plugins are opened from OBS_TEST_PLUGIN_DIR through
 * plugin_open, as in test_plugin.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "engine/plugin.h"
#include "plugin_test_util.h"

/* ------------------------------------------------------------- helpers */

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ------------------------------------------------- lifecycle, fake host */

/* A minimal host: collects log lines and counters, allocates with malloc.
 * Thread-safe, since tp_thread logs from its worker. */
typedef struct fake_host {
    obs_host h; /* first: callbacks cast back */
    pthread_mutex_t lock;
    char log[4096];
    char counter_names[8][32];
    uint64_t counters[8];
    int n_counters;
} fake_host;

static void fake_log(const obs_host *h, int level, const char *format, ...)
{
    fake_host *f = (fake_host *)(uintptr_t)h;
    char line[512];
    va_list ap;
    (void)level;
    va_start(ap, format);
    vsnprintf(line, sizeof line, format, ap);
    va_end(ap);
    pthread_mutex_lock(&f->lock);
    size_t o = strlen(f->log);
    snprintf(f->log + o, sizeof f->log - o, "%s\n", line);
    pthread_mutex_unlock(&f->lock);
}

static int fake_counter_register(const obs_host *h, const char *name, int kind, const char *help)
{
    fake_host *f = (fake_host *)(uintptr_t)h;
    (void)kind;
    (void)help;
    if (f->n_counters == 8)
        return OBS_ENOMEM;
    snprintf(f->counter_names[f->n_counters], sizeof f->counter_names[0], "%s", name);
    return f->n_counters++;
}

static void fake_counter_add(const obs_host *h, int id, uint64_t delta)
{
    fake_host *f = (fake_host *)(uintptr_t)h;
    assert_true(id >= 0 && id < f->n_counters);
    f->counters[id] += delta;
}

static uint64_t fake_counter(const fake_host *f, const char *name)
{
    for (int i = 0; i < f->n_counters; i++)
        if (strcmp(f->counter_names[i], name) == 0)
            return f->counters[i];
    fail_msg("no counter %s", name);
    return 0;
}

static uint64_t fake_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *fake_alloc(const obs_host *h, size_t n)
{
    (void)h;
    return malloc(n);
}

static void *fake_realloc(const obs_host *h, void *p, size_t n)
{
    (void)h;
    return realloc(p, n);
}

static void fake_free(const obs_host *h, void *p)
{
    (void)h;
    free(p);
}

static void fake_host_init(fake_host *f, const char *stage)
{
    memset(f, 0, sizeof *f);
    pthread_mutex_init(&f->lock, NULL);
    f->h = (obs_host){.struct_size = sizeof(obs_host),
                      .abi_major = OBS_ABI_MAJOR,
                      .abi_minor = OBS_ABI_MINOR,
                      .stage_name = stage,
                      .plugin_path = "(test)",
                      .batch_size = 64,
                      .log = fake_log,
                      .counter_register = fake_counter_register,
                      .counter_add = fake_counter_add,
                      .now_ns = fake_now,
                      .alloc = fake_alloc,
                      .realloc = fake_realloc,
                      .free = fake_free};
}

/* An obs_out that starts empty, so the plugins exercise grow(). */
static int fake_grow(obs_out *out, uint32_t n_records, uint64_t n_bytes)
{
    uint32_t cap = out->cap_records;
    while (cap - out->n_records < n_records)
        cap = cap ? cap * 2 : 4;
    if (cap != out->cap_records) {
        obs_record *r = realloc(out->records, cap * sizeof *r);
        if (!r)
            return OBS_ENOMEM;
        out->records = r;
        out->cap_records = cap;
    }
    /* A moving arena would invalidate committed records' data pointers;
     * like the real host, allocate it once at its bound. */
    if (out->arena_cap - out->arena_used < n_bytes)
        return OBS_ENOMEM;
    return 0;
}

static void fake_out_init(obs_out *out)
{
    memset(out, 0, sizeof *out);
    out->arena_cap = 4096;
    out->arena = malloc(out->arena_cap);
    assert_non_null(out->arena);
    out->grow = fake_grow;
}

static void fake_out_free(obs_out *out)
{
    free(out->records);
    free(out->arena);
}

/* Parameters from a descriptor's defaults, with optional overrides
 * ("name", "value" pairs). */
typedef struct fake_params {
    obs_params p;
    obs_param_value v[8];
} fake_params;

static void fake_params_init(fake_params *fp, const obs_stage_desc *d, const char *const *kv,
                             size_t n_kv)
{
    memset(fp, 0, sizeof *fp);
    assert_true(d->n_params <= 8);
    for (uint32_t i = 0; i < d->n_params; i++) {
        const obs_param_desc *pd = &d->params[i];
        obs_param_value *v = &fp->v[i];
        v->name = pd->name;
        v->type = pd->type;
        v->is_default = 1;
        v->s = pd->default_value ? pd->default_value : "";
        for (size_t k = 0; k + 1 < n_kv; k += 2)
            if (strcmp(kv[k], pd->name) == 0) {
                v->s = kv[k + 1];
                v->is_default = 0;
            }
        if (pd->type == OBS_PARAM_BOOL)
            v->i = strcmp(v->s, "true") == 0;
        else if (pd->type == OBS_PARAM_INT)
            v->i = strtoll(v->s, NULL, 0);
        v->d = pd->type == OBS_PARAM_DOUBLE ? strtod(v->s, NULL) : (double)v->i;
    }
    fp->p.values = fp->v;
    fp->p.n_values = d->n_params;
}

/* A batch of n records with consecutive seq from first, 8 bytes each. */
typedef struct fake_batch {
    obs_batch b;
    obs_record r[256];
    uint8_t data[256][8];
} fake_batch;

static void fake_batch_init(fake_batch *fb, uint64_t first, uint32_t n)
{
    assert_true(n <= 256);
    for (uint32_t i = 0; i < n; i++) {
        memcpy(fb->data[i], "record!!", 8);
        fb->r[i] = (obs_record){
            .data = fb->data[i], .len = 8, .seq = first + i, .t_intended_ns = 1000 + first + i};
    }
    fb->b = (obs_batch){.records = fb->r, .n_records = n};
}

static void test_init_fail(void **state)
{
    fake_host fh;
    fake_params fp;
    void *inst = (void *)1;
    (void)state;

    const obs_module *m = must_open("tp_init_fail", NULL, OBS_KIND_TRANSFORM);
    fake_host_init(&fh, "failing");
    fake_params_init(&fp, m->desc, NULL, 0);
    assert_int_equal(m->desc->init(&fh.h, &fp.p, &inst), OBS_EPLUGIN);
    assert_contains(fh.log, "tp_init_fail: init fails on purpose");
}

static void test_plugin_with_thread(void **state)
{
    fake_host fh;
    fake_params fp;
    fake_batch fb;
    obs_out out;
    void *inst = NULL;
    (void)state;

    const obs_module *m = must_open("tp_thread", NULL, OBS_KIND_TRANSFORM);
    fake_host_init(&fh, "threaded");
    fake_params_init(&fp, m->desc, NULL, 0);
    fake_out_init(&out);
    assert_int_equal(m->desc->init(&fh.h, &fp.p, &inst), 0);
    for (int round = 0; round < 3; round++) {
        fake_batch_init(&fb, (uint64_t)round * 100, 100);
        assert_int_equal(m->desc->process(inst, &fb.b, &out), 0);
    }
    assert_int_equal(out.n_passed, 300);
    assert_int_equal(out.records[299].seq, 299);
    assert_int_equal(m->desc->flush(inst, &out), 0);
    assert_int_equal(out.n_records, 301);
    const obs_record *last = &out.records[300];
    assert_int_equal(last->len, strlen("tp_thread worker_records=300"));
    assert_memory_equal(last->data, "tp_thread worker_records=300", last->len);
    m->desc->fini(inst);
    assert_contains(fh.log, "worker started");
    assert_contains(fh.log, "worker stopping"); /* joined before fini returned */
    fake_out_free(&out);
}

typedef struct tls_run {
    const obs_module *m;
    void *inst;
    int rc;
} tls_run;

static void *tls_thread(void *arg)
{
    tls_run *t = arg;
    fake_batch fb;
    obs_out out;

    fake_batch_init(&fb, 0, 10);
    fake_out_init(&out);
    t->rc = t->m->desc->process(t->inst, &fb.b, &out);
    if (t->rc == 0)
        t->rc = t->m->desc->process(t->inst, &fb.b, &out); /* reuses its scratch */
    if (t->rc == 0 && out.n_passed != 20)
        t->rc = -100;
    fake_out_free(&out);
    return NULL;
}

static void test_plugin_with_tls_destructor(void **state)
{
    fake_host fh;
    fake_params fp;
    obs_out out;
    void *inst = NULL;
    tls_run t[2];
    (void)state;

    const obs_module *m = must_open("tp_tls", NULL, OBS_KIND_TRANSFORM);
    fake_host_init(&fh, "tls");
    fake_params_init(&fp, m->desc, NULL, 0);
    assert_int_equal(m->desc->init(&fh.h, &fp.p, &inst), 0);
    for (int i = 0; i < 2; i++) {
        t[i] = (tls_run){.m = m, .inst = inst};
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, tls_thread, &t[i]), 0);
        /* One at a time, so each thread's destructor has run (it runs
         * before pthread_join returns) when we look. */
        pthread_join(th, NULL);
        assert_int_equal(t[i].rc, 0);
    }
    fake_out_init(&out);
    assert_int_equal(m->desc->flush(inst, &out), 0);
    assert_int_equal(out.n_records, 1);
    const char *want = "tp_tls created=2 destroyed=2";
    assert_int_equal(out.records[0].len, strlen(want));
    assert_memory_equal(out.records[0].data, want, strlen(want));
    m->desc->fini(inst);
    fake_out_free(&out);
}

static void read_line(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, (int)len, f));
    fclose(f);
    buf[strcspn(buf, "\n")] = '\0';
}

static void test_sink_seqcheck(void **state)
{
    char report[PATH_MAX], line[256];
    fake_host fh;
    fake_params fp;
    fake_batch fb;
    void *inst = NULL;
    (void)state;

    const obs_module *m = must_open("sink_seqcheck", NULL, OBS_KIND_SINK);
    fmt(report, sizeof report, "%s/seqcheck.txt", tmp_dir);

    /* 5..14, then 17..18 (15 and 16 lost), then 18 again. */
    const char *kv[] = {"report", report};
    fake_host_init(&fh, "sink");
    fake_params_init(&fp, m->desc, kv, 2);
    assert_int_equal(m->desc->init(&fh.h, &fp.p, &inst), 0);
    fake_batch_init(&fb, 5, 10);
    assert_int_equal(m->desc->consume(inst, &fb.b), 0);
    fake_batch_init(&fb, 17, 2);
    assert_int_equal(m->desc->consume(inst, &fb.b), 0);
    fake_batch_init(&fb, 18, 1);
    assert_int_equal(m->desc->consume(inst, &fb.b), 0);
    assert_int_equal(m->desc->flush(inst, NULL), 0); /* not strict */
    m->desc->fini(inst);
    read_line(report, line, sizeof line);
    assert_string_equal(line, "seqcheck records=13 first=5 last=18 gaps=2 dups=1");
    assert_int_equal(fake_counter(&fh, "seq_records"), 13);
    assert_int_equal(fake_counter(&fh, "seq_gaps"), 2);
    assert_int_equal(fake_counter(&fh, "seq_dups"), 1);

    /* Strict mode fails the flush on the same defect... */
    const char *strict[] = {"report", report, "fail_on_error", "true"};
    fake_host_init(&fh, "sink");
    fake_params_init(&fp, m->desc, strict, 4);
    assert_int_equal(m->desc->init(&fh.h, &fp.p, &inst), 0);
    fake_batch_init(&fb, 0, 3);
    assert_int_equal(m->desc->consume(inst, &fb.b), 0);
    assert_int_equal(m->desc->consume(inst, &fb.b), 0);
    assert_int_equal(m->desc->flush(inst, NULL), OBS_EPLUGIN);
    m->desc->fini(inst);
    read_line(report, line, sizeof line);
    assert_string_equal(line, "seqcheck records=6 first=0 last=2 gaps=0 dups=3");

    /* ...and passes a clean stream split over many batches. */
    fake_host_init(&fh, "sink");
    fake_params_init(&fp, m->desc, strict, 4);
    assert_int_equal(m->desc->init(&fh.h, &fp.p, &inst), 0);
    for (uint64_t s = 0; s < 1000; s += 100) {
        fake_batch_init(&fb, s, 100);
        assert_int_equal(m->desc->consume(inst, &fb.b), 0);
    }
    assert_int_equal(m->desc->flush(inst, NULL), 0);
    m->desc->fini(inst);
    read_line(report, line, sizeof line);
    assert_string_equal(line, "seqcheck records=1000 first=0 last=999 gaps=0 dups=0");
}

static void test_echo_state_handover(void **state)
{
    fake_host fh;
    fake_params fp;
    fake_batch fb;
    obs_out out;
    void *v1 = NULL, *v2 = NULL, *buf = NULL;
    size_t len = 0;
    (void)state;

    const obs_module *a = must_open("tp_echo", "1.0.0", OBS_KIND_TRANSFORM);
    const obs_module *b = must_open("tp_echo", "2.0.0", OBS_KIND_TRANSFORM);
    fake_host_init(&fh, "echo");
    fake_params_init(&fp, a->desc, (const char *const[]){"drop_every", "4"}, 2);
    assert_int_equal(a->desc->init(&fh.h, &fp.p, &v1), 0);
    fake_out_init(&out);
    fake_batch_init(&fb, 0, 10);
    assert_int_equal(a->desc->process(v1, &fb.b, &out), 0);
    assert_int_equal(out.n_passed, 8); /* seq 3 and 7 dropped */
    assert_int_equal(out.records[3].seq, 4);
    assert_ptr_equal(out.records[3].data, fb.r[4].data); /* by reference */
    assert_int_equal(fake_counter(&fh, "dropped_on_purpose"), 2);

    assert_int_equal(a->desc->export_state(v1, &buf, &len), 0);
    assert_int_equal(len, 8);
    assert_int_equal(b->desc->init(&fh.h, &fp.p, &v2), 0);
    assert_int_equal(b->desc->import_state(v2, buf, len), 0);
    assert_int_equal(b->desc->import_state(v2, buf, 3), OBS_ESTATE);
    fh.h.free(&fh.h, buf);
    assert_contains(fh.log, "tp_echo 2.0.0: imported state, 10 records seen");
    a->desc->fini(v1);
    b->desc->fini(v2);
    fake_out_free(&out);
}

static void test_rust_plugin(void **state)
{
    char path[PATH_MAX], hex[2 * OBS_BUILD_ID_MAX + 1];
    fake_host fh;
    fake_batch fb;
    obs_out out;
    void *inst = NULL;
    obs_params none = {0};
    (void)state;

    plugin_path(path, sizeof path, "tp_rust_echo.so");
    if (!file_exists(path))
        skip(); /* built only when cargo is installed */
    const obs_module *m = must_open("tp_rust_echo", NULL, OBS_KIND_TRANSFORM);
    /* Built against ABI 1.0 (a 120-byte descriptor on LP64): a later host
     * still runs it. */
    assert_int_equal(m->desc->struct_size, 120);
    assert_string_equal(m->desc->version, "1.0.0");
    plugin_build_id_hex(m, hex, sizeof hex);
    assert_true(m->build_id_len > 0);
    assert_true(plugin_module_find((uintptr_t)m->desc->process) == m);

    fake_host_init(&fh, "rust");
    fake_out_init(&out);
    assert_int_equal(m->desc->init(&fh.h, &none, &inst), 0);
    fake_batch_init(&fb, 42, 37);
    assert_int_equal(m->desc->process(inst, &fb.b, &out), 0);
    assert_int_equal(out.n_records, 37);
    assert_int_equal(out.n_passed, 37);
    assert_true(out.cap_records >= 37); /* grew from 0 through the host */
    for (uint32_t i = 0; i < 37; i++) {
        assert_int_equal(out.records[i].seq, 42 + i);
        assert_ptr_equal(out.records[i].data, fb.r[i].data);
    }
    m->desc->fini(inst);
    fake_out_free(&out);
}

/* ------------------------------------------------------------------ main */

int main(void)
{
    if (plugin_test_dirs_init("test_plugin_lifecycle") != 0)
        return 1;

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_fail),
        cmocka_unit_test(test_plugin_with_thread),
        cmocka_unit_test(test_plugin_with_tls_destructor),
        cmocka_unit_test(test_sink_seqcheck),
        cmocka_unit_test(test_echo_state_handover),
        cmocka_unit_test(test_rust_plugin),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    plugin_test_dirs_remove();
    return failed;
}
