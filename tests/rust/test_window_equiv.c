/*
 * test_window_equiv.c - xf_window_rs (Rust) against xf_window (C), record
 * by record. Both are driven through the plugin harness with the same
 * generated input: binary ticks of many symbols in event-time order, with
 * late ticks, records that are not ticks, batches of random sizes, and a
 * max_symbols that is reached. After every batch the two must have emitted
 * the same records (bytes, seq, intended time, in the same order) and
 * exported the same state bytes; at the end the same flush output and the
 * same counters. Then the hand-over: a run that changes plugin
 * C -> Rust -> C -> ... at random batch boundaries through
 * export_state/import_state emits exactly what an uninterrupted C run does,
 * and each side refuses a state of other window parameters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dlfcn.h>
#include <time.h>

#include "../unit/plugin_harness.h"

#define N_RECORDS 60000
#define TICK_LEN 48

static uint64_t rng_state;

static uint64_t rnd(void)
{
    /* splitmix64: the same sequence on every run. */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

typedef struct input {
    obs_record *records;
    uint8_t *bytes;
    uint32_t n;
} input;

static void put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

/* n records: mostly ticks of n_syms symbols with event time moving forward
 * by 0..40 ms, about 1% late (up to 2 s back), 0.5% not ticks (a 47-byte
 * record, or a window record). */
static input make_input(uint32_t n, uint32_t n_syms, uint64_t seed)
{
    rng_state = seed;
    input in = {calloc(n, sizeof(obs_record)), calloc(n, 64), n};
    assert_non_null(in.records);
    assert_non_null(in.bytes);
    uint64_t ts = 1764000000000000000ull;
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *d = in.bytes + (size_t)i * 64;
        obs_record *r = &in.records[i];
        r->data = d;
        r->seq = 1000 + i;
        r->t_intended_ns = 5000000 + (uint64_t)i * 1000;
        uint64_t u = rnd() % 1000;
        if (u < 5) {
            r->len = u < 2 ? 47 : 64;
            d[40] = u < 2 ? 1 : 3;
            continue;
        }
        ts += rnd() % 40000000;
        uint64_t t = u < 15 ? ts - rnd() % 2000000000ull : ts;
        char sym[16] = {0};
        snprintf(sym, sizeof sym, "S%u", (unsigned)(rnd() % n_syms));
        int64_t px = 1000000 + (int64_t)(rnd() % 5000000);
        put64(d, t);
        put64(d + 8, (uint64_t)px);
        memcpy(d + 32, sym, 8);
        if (rnd() % 3) {
            uint32_t qty = 1 + (uint32_t)(rnd() % 1000);
            memcpy(d + 24, &qty, 4);
            d[40] = 1;
            d[41] = rnd() % 2 ? 'B' : 'S';
        } else {
            put64(d + 16, (uint64_t)(px + 1 + (int64_t)(rnd() % 500)));
            uint32_t bq = 1 + (uint32_t)(rnd() % 900), aq = 1 + (uint32_t)(rnd() % 900);
            memcpy(d + 24, &bq, 4);
            memcpy(d + 28, &aq, 4);
            d[40] = 2;
        }
        r->len = TICK_LEN;
    }
    return in;
}

/* An output record kept for comparison. */
typedef struct rec_copy {
    uint8_t data[64];
    uint32_t len;
    uint64_t seq, t_ns;
} rec_copy;

typedef struct out_log {
    rec_copy *r;
    size_t n, cap;
} out_log;

static void log_out(out_log *l, const obs_out *o)
{
    for (uint32_t i = 0; i < o->n_records; i++) {
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 1024;
            l->r = realloc(l->r, l->cap * sizeof *l->r);
            assert_non_null(l->r);
        }
        const obs_record *x = &o->records[i];
        assert_true(x->len <= 64);
        rec_copy *c = &l->r[l->n++];
        memset(c, 0, sizeof *c);
        memcpy(c->data, x->data, x->len);
        c->len = x->len;
        c->seq = x->seq;
        c->t_ns = x->t_intended_ns;
    }
}

static void assert_same_log(const out_log *a, const out_log *b, const char *what)
{
    if (a->n != b->n)
        fail_msg("%s: %zu records vs %zu", what, a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        if (memcmp(&a->r[i], &b->r[i], sizeof a->r[i]) != 0)
            fail_msg("%s: record %zu differs (seq %llu vs %llu, len %u vs %u)", what, i,
                     (unsigned long long)a->r[i].seq, (unsigned long long)b->r[i].seq, a->r[i].len,
                     b->r[i].len);
}

/* One output reused by every call: the records are copied out at once. */
static obs_out scratch;

/* Runs one batch through s, its output appended to l. */
static void step(stage *s, const obs_record *r, uint32_t n, out_log *l)
{
    out_reset(&scratch);
    obs_batch b = {.records = r, .n_records = n};
    assert_int_equal(s->desc->process(s->instance, &b, &scratch), OBS_OK);
    log_out(l, &scratch);
}

static void finish(stage *s, out_log *l)
{
    out_reset(&scratch);
    assert_int_equal(s->desc->flush(s->instance, &scratch), OBS_OK);
    log_out(l, &scratch);
}

/* The exported state of s; the caller frees it with free(). */
static uint8_t *export_of(stage *s, size_t *len)
{
    void *buf = NULL;
    assert_int_equal(s->desc->export_state(s->instance, &buf, len), OBS_OK);
    return buf;
}

static void lockstep(const char *const *params, uint32_t n_syms, uint64_t seed)
{
    input in = make_input(N_RECORDS, n_syms, seed);
    stage *c = stage_open("xf_window", 0, params), *rs = stage_open("xf_window_rs", 0, params);
    out_log lc = {0}, lr = {0};
    size_t states = 0;
    for (uint32_t at = 0; at < in.n;) {
        uint32_t k = 1 + (uint32_t)(rnd() % 300);
        if (k > in.n - at)
            k = in.n - at;
        step(c, in.records + at, k, &lc);
        step(rs, in.records + at, k, &lr);
        at += k;
        assert_same_log(&lc, &lr, "process");
        size_t a, b;
        uint8_t *sa = export_of(c, &a), *sb = export_of(rs, &b);
        if (a != b || memcmp(sa, sb, a) != 0)
            fail_msg("state after record %u: %zu bytes (C) vs %zu (Rust), or different bytes", at,
                     a, b);
        states += a;
        free(sa);
        free(sb);
    }
    finish(c, &lc);
    finish(rs, &lr);
    assert_same_log(&lc, &lr, "flush");
    const char *names[] = {"bad_record", "late_tick", "symbol_limit"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(counter_value(c, names[i]), counter_value(rs, names[i]));
    printf("# %s %s %s, %u symbols: %zu window records equal, states equal (%zu bytes in all); "
           "bad %llu late %llu symbol_limit %llu\n",
           params[0], params[1], params[2], n_syms, lc.n, states,
           (unsigned long long)counter_value(c, "bad_record"),
           (unsigned long long)counter_value(c, "late_tick"),
           (unsigned long long)counter_value(c, "symbol_limit"));
    /* The input exercised every path. */
    assert_true(lc.n > 1000);
    assert_true(counter_value(c, "bad_record") > 0);
    assert_true(counter_value(c, "late_tick") > 0);
    stage_close(c);
    stage_close(rs);
    free(lc.r);
    free(lr.r);
    free(in.records);
    free(in.bytes);
}

static void test_same_output_default(void **state)
{
    (void)state;
    const char *const p[] = {"window_ms=1000", "slide_ms=250", "max_symbols=100000", NULL};
    lockstep(p, 40, 1);
}

static void test_same_output_symbol_limit(void **state)
{
    (void)state;
    const char *const p[] = {"window_ms=300", "slide_ms=100", "max_symbols=25", NULL};
    lockstep(p, 60, 2);
}

static void test_same_output_one_pane(void **state)
{
    (void)state;
    const char *const p[] = {"window_ms=50", "slide_ms=50", "max_symbols=1000", NULL};
    lockstep(p, 200, 3);
}

/* C -> Rust -> C -> ... at random batch boundaries, each new instance
 * importing the state of the one before: the same records as one C run. */
static void test_handover_both_ways(void **state)
{
    (void)state;
    const char *const p[] = {"window_ms=1000", "slide_ms=250", "max_symbols=100000", NULL};
    input in = make_input(N_RECORDS, 40, 4);
    stage *ref = stage_open("xf_window", 0, p);
    out_log lref = {0}, lsw = {0};
    stage *cur = stage_open("xf_window", 0, p);
    int rust = 0, swaps = 0;
    for (uint32_t at = 0; at < in.n;) {
        uint32_t k = 1 + (uint32_t)(rnd() % 300);
        if (k > in.n - at)
            k = in.n - at;
        step(ref, in.records + at, k, &lref);
        step(cur, in.records + at, k, &lsw);
        at += k;
        if (rnd() % 8 == 0) {
            size_t len;
            uint8_t *st = export_of(cur, &len);
            rust = !rust;
            stage *next = stage_open(rust ? "xf_window_rs" : "xf_window", 0, p);
            assert_int_equal(next->desc->import_state(next->instance, st, len), OBS_OK);
            free(st);
            stage_close(cur);
            cur = next;
            swaps++;
        }
    }
    finish(ref, &lref);
    finish(cur, &lsw);
    assert_same_log(&lref, &lsw, "handover");
    printf("# %d hand-overs C <-> Rust: %zu window records, the same as one C run\n", swaps,
           lref.n);
    assert_true(swaps > 20);
    stage_close(ref);
    stage_close(cur);
    free(lref.r);
    free(lsw.r);
    free(in.records);
    free(in.bytes);
}

/* A state of other window parameters, a damaged one, and garbage are
 * refused by both, which stay usable. */
static void test_refusals(void **state)
{
    (void)state;
    const char *const a[] = {"window_ms=1000", "slide_ms=250", NULL};
    const char *const b[] = {"window_ms=1000", "slide_ms=500", NULL};
    input in = make_input(2000, 10, 5);
    const char *names[] = {"xf_window", "xf_window_rs"};
    for (int from = 0; from < 2; from++) {
        stage *src = stage_open(names[from], 0, a);
        out_log l = {0};
        step(src, in.records, in.n, &l);
        size_t len;
        uint8_t *st = export_of(src, &len);
        assert_true(len > 64);
        for (int to = 0; to < 2; to++) {
            stage *other = stage_open(names[to], 0, b);
            assert_int_equal(other->desc->import_state(other->instance, st, len), OBS_ESTATE);
            stage_close(other);
            stage *same = stage_open(names[to], 0, a);
            assert_int_equal(same->desc->import_state(same->instance, st, len - 1), OBS_ESTATE);
            assert_int_equal(same->desc->import_state(same->instance, "garbage!", 8), OBS_ESTATE);
            /* A pane id moved out of its ring slot. */
            uint8_t *bad = malloc(len);
            memcpy(bad, st, len);
            uint64_t id;
            memcpy(&id, bad + 64 + 16, 8);
            id += 1;
            memcpy(bad + 64 + 16, &id, 8);
            assert_int_equal(same->desc->import_state(same->instance, bad, len), OBS_ESTATE);
            free(bad);
            /* Still usable, and the intact state still imports. */
            assert_int_equal(same->desc->import_state(same->instance, st, len), OBS_OK);
            out_log l2 = {0};
            step(same, in.records, 10, &l2);
            free(l2.r);
            stage_close(same);
        }
        free(st);
        free(l.r);
        stage_close(src);
    }
    free(in.records);
    free(in.bytes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_output_default),
        cmocka_unit_test(test_same_output_symbol_limit),
        cmocka_unit_test(test_same_output_one_pane),
        cmocka_unit_test(test_handover_both_ways),
        cmocka_unit_test(test_refusals),
    };
    out_init(&scratch);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(scratch.records);
    free(scratch.arena);
    return rc;
}
