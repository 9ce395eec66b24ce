/*
 * tests/unit/test_json_equiv.c - the market plugins against each other and
 * against reference computations.
 *
 * The plugins are dlopen'ed from $OBS_PLUGIN_DIR exactly as hostd would load
 * them and driven through a minimal host written here (host services table,
 * parameters built from the descriptor's defaults, an obs_out whose grow()
 * really reallocates). Checked: gen_market is deterministic and Zipf-skewed;
 * xf_json_jansson and xf_json_fast give byte-identical output and the same
 * decision (ok / parse_error / schema_error) for 100,000 generated ticks, for
 * a hand-written corpus of malformed input with known expected decisions,
 * and for 100,000 random mutations of valid ticks; xf_window matches a brute
 * force reference and survives an export/import round trip. xf_json_serde
 * (Rust, plugins/xf_json_serde/) is held to the same three checks when it
 * was built (cargo present). The throughput of the JSON transforms is
 * printed (not asserted).
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <observatory/stage.h>

#include "plugin_harness.h"

/* xf_json_serde, or NULL (with a note) when the build had no Rust toolchain. */
static stage *serde_open(void)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/xf_json_serde.so", getenv("OBS_PLUGIN_DIR"));
    if (access(path, F_OK) == 0)
        return stage_open("xf_json_serde", 1, NULL);
    printf("xf_json_serde.so not built (no cargo): the Rust parser is not compared\n");
    return NULL;
}

static void out_free(obs_out *o)
{
    free(o->records);
    free(o->arena);
}

/* A growable byte log of records, for comparing whole streams. */
typedef struct stream {
    uint8_t *bytes;
    size_t len, cap;
    uint64_t n_records;
} stream;

static void stream_add(stream *st, const obs_out *o)
{
    for (uint32_t i = 0; i < o->n_records; i++) {
        const obs_record *r = &o->records[i];
        size_t need = st->len + 24 + r->len;
        if (need > st->cap) {
            st->cap = need * 2;
            st->bytes = realloc(st->bytes, st->cap);
            assert_non_null(st->bytes);
        }
        uint64_t hdr[3] = {r->len, r->seq, r->t_intended_ns};
        memcpy(st->bytes + st->len, hdr, sizeof hdr);
        memcpy(st->bytes + st->len + 24, r->data, r->len);
        st->len = need;
        st->n_records++;
    }
}

/* ---------------------------------------------------------- helpers */

/* Generates n ticks from gen in batches of `batch`, intended times
 * t0 + i * step_ns, appended to `st` and (if ticks != NULL) copied as
 * separate heap records into ticks[0..n). */
static void generate(stage *gen, uint64_t n, uint32_t batch, uint64_t t0, uint64_t step_ns,
                     stream *st, obs_record *ticks)
{
    obs_out o;
    out_init(&o);
    uint64_t *times = malloc(batch * sizeof *times);
    for (uint64_t done = 0; done < n;) {
        uint32_t k = n - done < batch ? (uint32_t)(n - done) : batch;
        for (uint32_t i = 0; i < k; i++)
            times[i] = t0 + (done + i) * step_ns;
        obs_gen_request req = {.n_records = k, .first_seq = done, .t_intended_ns = times};
        out_reset(&o);
        assert_int_equal(gen->desc->generate(gen->instance, &req, &o), OBS_OK);
        assert_int_equal(o.n_records, k);
        for (uint32_t i = 0; i < k; i++) {
            assert_int_equal(o.records[i].seq, done + i);
            assert_int_equal(o.records[i].t_intended_ns, times[i]);
            if (ticks) {
                uint8_t *copy = malloc(o.records[i].len);
                memcpy(copy, o.records[i].data, o.records[i].len);
                ticks[done + i] = o.records[i];
                ticks[done + i].data = copy;
            }
        }
        if (st)
            stream_add(st, &o);
        done += k;
    }
    free(times);
    out_free(&o);
}

static void free_ticks(obs_record *ticks, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        free((void *)ticks[i].data);
    free(ticks);
}

static double elapsed_ns(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e9 + (double)(b->tv_nsec - a->tv_nsec);
}

/* Runs records[0..n) through transform `xf` in batches of `batch`, appending
 * output to `st`. Returns the time spent inside process() in ns. */
static double run_transform(stage *xf, const obs_record *records, uint64_t n, uint32_t batch,
                            stream *st)
{
    obs_out o;
    out_init(&o);
    double ns = 0;
    for (uint64_t done = 0; done < n;) {
        uint32_t k = n - done < batch ? (uint32_t)(n - done) : batch;
        obs_batch b = {.records = records + done, .n_records = k};
        out_reset(&o);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(xf->desc->process(xf->instance, &b, &o), OBS_OK);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        ns += elapsed_ns(&t0, &t1);
        stream_add(st, &o);
        done += k;
    }
    out_reset(&o);
    assert_int_equal(xf->desc->flush(xf->instance, &o), OBS_OK);
    stream_add(st, &o);
    out_free(&o);
    return ns;
}

/* Decision of a JSON transform for one record: 0 ok, 1 parse error, 2 schema
 * error. For ok, the emitted record is copied to tick_out (48 bytes). */
enum { V_OK = 0, V_PARSE = 1, V_SCHEMA = 2 };

static int verdict(stage *xf, const void *data, size_t len, uint8_t *tick_out)
{
    obs_out o;
    out_init(&o);
    obs_record r = {.data = data, .len = (uint32_t)len, .seq = 7, .t_intended_ns = 9};
    obs_batch b = {.records = &r, .n_records = 1};
    uint64_t p0 = counter_value(xf, "parse_error"), s0 = counter_value(xf, "schema_error");
    assert_int_equal(xf->desc->process(xf->instance, &b, &o), OBS_OK);
    uint64_t dp = counter_value(xf, "parse_error") - p0, ds = counter_value(xf, "schema_error") - s0;
    assert_int_equal(o.n_records + dp + ds, 1);
    int v = o.n_records ? V_OK : dp ? V_PARSE : V_SCHEMA;
    if (v == V_OK) {
        assert_int_equal(o.records[0].len, 48);
        assert_int_equal(o.records[0].seq, 7);
        assert_int_equal(o.records[0].t_intended_ns, 9);
        memcpy(tick_out, o.records[0].data, 48);
    }
    out_free(&o);
    return v;
}

/* ---------------------------------------------------------- gen_market */

static void test_gen_market_determinism(void **state)
{
    (void)state;
    stream a = {0}, b = {0}, c = {0};
    stage *g1 = stage_open("gen_market", 42, NULL);
    stage *g2 = stage_open("gen_market", 42, NULL);
    stage *g3 = stage_open("gen_market", 43, NULL);
    /* Different batch sizes must not change the stream. */
    generate(g1, 20000, 1024, 1000, 1000, &a, NULL);
    generate(g2, 20000, 7, 1000, 1000, &b, NULL);
    generate(g3, 20000, 1024, 1000, 1000, &c, NULL);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.bytes, b.bytes, a.len);
    assert_true(a.len != c.len || memcmp(a.bytes, c.bytes, a.len) != 0);
    stage_close(g1);
    stage_close(g2);
    stage_close(g3);
    free(a.bytes);
    free(b.bytes);
    free(c.bytes);
}

static int cmp_u64_desc(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? 1 : a > b ? -1 : 0;
}

static void test_gen_market_zipf(void **state)
{
    (void)state;
    enum { N = 200000, SYMS = 500 };
    stage *g = stage_open("gen_market", 7, (const char *const[]){"symbols=500", NULL});
    stage *xf = stage_open("xf_json_fast", 1, NULL);
    obs_record *ticks = malloc(N * sizeof *ticks);
    generate(g, N, 4096, 0, 1000, NULL, ticks);
    stream out = {0};
    run_transform(xf, ticks, N, 4096, &out);
    assert_int_equal(out.n_records, N); /* every generated tick is valid */

    /* Count ticks per symbol (8 bytes at offset 32 of each binary tick). */
    uint64_t keys[SYMS] = {0}, counts[SYMS] = {0};
    size_t n_keys = 0, n_trades = 0;
    for (size_t off = 0; off < out.len; off += 24 + 48) {
        uint64_t key;
        memcpy(&key, out.bytes + off + 24 + 32, 8);
        n_trades += out.bytes[off + 24 + 40] == 1;
        size_t k = 0;
        while (k < n_keys && keys[k] != key)
            k++;
        if (k == n_keys) {
            assert_true(n_keys < SYMS);
            keys[n_keys++] = key;
        }
        counts[k]++;
    }
    qsort(counts, n_keys, sizeof counts[0], cmp_u64_desc);
    uint64_t top = counts[0], median = counts[SYMS / 2];
    printf("zipf: %zu symbols seen, top %llu, median %llu, trades %.3f\n", n_keys,
           (unsigned long long)top, (unsigned long long)median, (double)n_trades / N);
    assert_true(n_keys > 400);
    assert_true(median > 0 && top > 50 * median); /* s = 1.1: expected ratio ~ 250^1.1 */
    assert_true(n_trades > N * 0.28 && n_trades < N * 0.32);
    free_ticks(ticks, N);
    free(out.bytes);
    stage_close(g);
    stage_close(xf);
}

/* -------------------------------------------------- jansson vs fast */

static void test_json_equiv_generated(void **state)
{
    (void)state;
    enum { N = 100000 };
    stage *g = stage_open("gen_market", 12345, NULL);
    stage *xa = stage_open("xf_json_jansson", 1, NULL);
    stage *xb = stage_open("xf_json_fast", 1, NULL);
    obs_record *ticks = malloc(N * sizeof *ticks);
    generate(g, N, 1024, 1000000000, 3333, NULL, ticks);
    uint64_t bytes = 0;
    for (int i = 0; i < N; i++)
        bytes += ticks[i].len;
    stream a = {0}, b = {0}, c = {0};
    double ns_a = run_transform(xa, ticks, N, 1024, &a);
    double ns_b = run_transform(xb, ticks, N, 1024, &b);
    stage *xc = serde_open();
    if (xc) {
        double ns_c = run_transform(xc, ticks, N, 1024, &c);
        assert_int_equal(c.len, a.len);
        assert_memory_equal(c.bytes, a.bytes, a.len);
        assert_int_equal(counter_value(xc, "parse_error") + counter_value(xc, "schema_error"), 0);
        printf("throughput: xf_json_serde %.1f ns/tick\n", ns_c / N);
        stage_close(xc);
        free(c.bytes);
    }
    assert_int_equal(a.n_records, N);
    assert_int_equal(b.n_records, N);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.bytes, b.bytes, a.len);
    assert_int_equal(counter_value(xa, "parse_error") + counter_value(xa, "schema_error"), 0);
    assert_int_equal(counter_value(xb, "parse_error") + counter_value(xb, "schema_error"), 0);
    printf("throughput (%d ticks, mean %.1f bytes): xf_json_jansson %.1f ns/tick, "
           "xf_json_fast %.1f ns/tick, ratio %.1fx\n",
           N, (double)bytes / N, ns_a / N, ns_b / N, ns_a / ns_b);

    /* The generator's own cost, for the record. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    generate(g, N, 1024, 0, 1, NULL, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("gen_market: %.1f ns/tick (including the test's checks)\n", elapsed_ns(&t0, &t1) / N);

    free_ticks(ticks, N);
    free(a.bytes);
    free(b.bytes);
    stage_close(g);
    stage_close(xa);
    stage_close(xb);
}

typedef struct json_case {
    const char *text;
    size_t len; /* 0: strlen(text) */
    int expect;
} json_case;

#define T_OK(s) {s, 0, V_OK}
#define T_PARSE(s) {s, 0, V_PARSE}
#define T_SCHEMA(s) {s, 0, V_SCHEMA}
#define T_BIN(s, e) {s, sizeof(s) - 1, e} /* may hold NUL bytes */
#define TRADE_REST "\"sym\":\"AAPL\",\"ts\":1,\"qty\":100,\"side\":\"B\""

static const json_case corpus[] = {
    /* well formed */
    T_OK("{\"type\":\"trade\",\"sym\":\"AAPL\",\"ts\":1,\"px\":123.45,\"qty\":100,\"side\":\"B\"}"),
    T_OK("{\"type\":\"quote\",\"sym\":\"B.X-1\",\"ts\":0,\"bid\":1,\"ask\":2.5,\"bsz\":0,\"asz\":4294967295}"),
    T_OK(" \t\r\n{ \"side\" : \"S\" ,\n\"qty\":1,\"px\":0.0001,\"ts\":-0,\"sym\":\"Z\",\"type\":\"trade\"}\n "),
    T_OK("{\"type\":\"trade\",\"px\":123.4500000," TRADE_REST "}"),
    T_OK("{\"type\":\"trade\",\"px\":1.2345e2," TRADE_REST "}"),
    T_OK("{\"type\":\"trade\",\"px\":123.45e0," TRADE_REST "}"),
    T_OK("{\"type\":\"trade\",\"px\":1000000000," TRADE_REST "}"),
    T_OK("{\"type\":\"trade\",\"px\":1.0000000000000001," TRADE_REST "}"),
    T_OK("{\"type\":\"trade\",\"sym\":\"\\u0041APL\",\"ts\":1,\"px\":1,\"qty\":1,\"side\":\"B\"}"),
    T_OK("{\"type\":\"trade\",\"p\\u0078\":2,\"\\u0073ym\":\"A\",\"ts\":1,\"qty\":1,\"side\":\"B\"}"),
    T_OK("{\"type\":\"trade\",\"px\":\"bad\",\"px\":2," TRADE_REST "}"), /* last one wins */
    T_OK("{\"type\":\"trade\",\"px\":999999999.9999,\"ts\":9223372036854775807,"
         "\"sym\":\"A\",\"qty\":1,\"side\":\"B\"}"), /* largest price and ts */
    /* not JSON */
    T_PARSE(""),
    T_PARSE("   "),
    T_PARSE("{\"type\":\"trade\",\"sym\":\"AAPL\",\"ts\":1,\"px\":123.45,\"qty\":100,\"side\":\"B\""),
    T_PARSE("{\"type\":\"trade\""),
    T_PARSE("{\"type\":\"trade\",\"px\":1," TRADE_REST "}x"),
    T_PARSE("{\"type\":\"trade\",\"px\":1," TRADE_REST "}}"),
    T_PARSE("{\"type\":\"trade\",\"px\":1," TRADE_REST ",}"),
    T_PARSE("{\"type\":\"trade\",\"px\":1,\"ts\":99999999999999999999,\"sym\":\"A\",\"qty\":1,\"side\":\"B\"}"),
    T_PARSE("{\"type\":\"trade\",\"px\":1e999," TRADE_REST "}"),
    T_PARSE("{\"type\":\"trade\",\"px\":-1e999," TRADE_REST "}"),
    T_PARSE("{\"type\":\"trade\",\"px\":1,\"sym\":\"AA\\u0000PL\",\"ts\":1,\"qty\":1,\"side\":\"B\"}"),
    T_PARSE("{\"type\":\"trade\",\"px\":1,\"sym\":\"\\ud83d\",\"ts\":1,\"qty\":1,\"side\":\"B\"}"),
    T_PARSE("{\"type\":\"trade\",\"px\":1,\"sym\":\"\\x41\",\"ts\":1,\"qty\":1,\"side\":\"B\"}"),
    T_PARSE("{\"type\":\"trade\",\"px\":1,\"sym\":\"\xc3\x28\",\"ts\":1,\"qty\":1,\"side\":\"B\"}"),
    T_PARSE("{\"type\":\"trade\",\"px\":1,\"sym\":\"\xc0\xaf\",\"ts\":1,\"qty\":1,\"side\":\"B\"}"),
    T_PARSE("{\"type\":\"trade\",\"px\":1,\"sym\":\"A\x01\",\"ts\":1,\"qty\":1,\"side\":\"B\"}"),
    T_PARSE("{\"type\":\"trade\",\"px\":1,\"qty\":0100,\"sym\":\"A\",\"ts\":1,\"side\":\"B\"}"),
    T_PARSE("{\"type\":\"trade\",\"px\":.5," TRADE_REST "}"),
    T_PARSE("{\"type\":\"trade\",\"px\":1.," TRADE_REST "}"),
    T_PARSE("{\"type\":\"trade\",\"px\":1e," TRADE_REST "}"),
    T_PARSE("{\"type\":\"trade\",\"px\":-," TRADE_REST "}"),
    T_PARSE("{\"type\":\"trade\",\"px\":1,\"x\":tru," TRADE_REST "}"),
    T_PARSE("{\"type\":\"trade\",\"px\":1,\"x\":truex," TRADE_REST "}"),
    T_PARSE("{\"type\":\"trade\",\"px\":1,\"x\":[1,2,]," TRADE_REST "}"),
    T_PARSE("{\"type\":\"trade\",\"px\":1,\"x\":{\"a\"}," TRADE_REST "}"),
    T_PARSE("{\"type\":\"trade\",\"px\":1,\"ts\":-9223372036854775809,\"sym\":\"A\",\"qty\":1,\"side\":\"B\"}"),
    T_PARSE("{'type':'trade'}"),
    T_PARSE("\"just a string\""),
    T_PARSE("42"),
    T_PARSE("null"),
    T_PARSE("[1,2,"),
    /* JSON, but not a tick */
    T_SCHEMA("{}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":9999999999.9999," TRADE_REST "}"), /* price > 1e9 */
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"\\/sym\\/\":1," TRADE_REST "}"),
    T_SCHEMA("[1,2,3]"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"ts\":\"1\",\"sym\":\"A\",\"qty\":1,\"side\":\"B\"}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"sym\":\"A\",\"ts\":1,\"side\":\"B\"}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"foo\":1," TRADE_REST "}"),
    T_SCHEMA("{\"type\":\"cancel\",\"px\":1," TRADE_REST "}"),
    T_SCHEMA("{\"type\":\"TRADE\",\"px\":1," TRADE_REST "}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"sym\":\"TOOLONGSYM\",\"ts\":1,\"qty\":1,\"side\":\"B\"}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"sym\":\"\",\"ts\":1,\"qty\":1,\"side\":\"B\"}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"sym\":\"aapl\",\"ts\":1,\"qty\":1,\"side\":\"B\"}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"sym\":\"\\u00c4\",\"ts\":1,\"qty\":1,\"side\":\"B\"}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"sym\":\"\\ud83d\\ude00\",\"ts\":1,\"qty\":1,\"side\":\"B\"}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":123.45678," TRADE_REST "}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":123.00001," TRADE_REST "}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1e-999," TRADE_REST "}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":-1.5," TRADE_REST "}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":0," TRADE_REST "}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":0.00001," TRADE_REST "}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1000000001," TRADE_REST "}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1e300," TRADE_REST "}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":true," TRADE_REST "}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":[1]," TRADE_REST "}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":2,\"px\":\"bad\"," TRADE_REST "}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"qty\":-5,\"sym\":\"A\",\"ts\":1,\"side\":\"B\"}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"qty\":4294967296,\"sym\":\"A\",\"ts\":1,\"side\":\"B\"}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"qty\":1.0,\"sym\":\"A\",\"ts\":1,\"side\":\"B\"}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"ts\":-1,\"sym\":\"A\",\"qty\":1,\"side\":\"B\"}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"ts\":-9223372036854775808,\"sym\":\"A\",\"qty\":1,\"side\":\"B\"}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"side\":\"X\",\"sym\":\"A\",\"ts\":1,\"qty\":1}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"side\":\"BB\",\"sym\":\"A\",\"ts\":1,\"qty\":1}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"bid\":1," TRADE_REST "}"),
    T_SCHEMA("{\"type\":\"quote\",\"sym\":\"A\",\"ts\":0,\"bid\":1,\"ask\":2,\"bsz\":0}"),
    T_SCHEMA("{\"type\":\"quote\",\"sym\":\"A\",\"ts\":0,\"bid\":1,\"ask\":2,\"bsz\":0,\"asz\":1,\"px\":1}"),
    T_SCHEMA("{\"type\":1}"),
    T_SCHEMA("{\"type\":\"trade\",\"px\":1,\"x\":{\"a\":[true,false,null,{\"b\":\"\\u00e9\"}],\"a\":1e5}," TRADE_REST "}"),
};

/* Cases with embedded NUL bytes need explicit lengths. */
static const json_case nul_cases[] = {
    T_BIN("{\"type\":\"trade\",\"px\":1,\"ts\":1\0,\"sym\":\"A\",\"qty\":1,\"side\":\"B\"}", V_OK),
    T_BIN("{\"type\":\"trade\",\"px\":1,\"x\":true\0," TRADE_REST "}", V_SCHEMA),
    T_BIN("{\"type\":\"trade\",\"px\":1,\"ts\":1\0\0,\"sym\":\"A\",\"qty\":1,\"side\":\"B\"}", V_PARSE),
    T_BIN("{\"type\":\"trade\",\"px\":1,\"sym\":\"A\0\",\"ts\":1,\"qty\":1,\"side\":\"B\"}", V_PARSE),
    T_BIN("{\"type\":\"trade\",\"px\":1,\"ts\":1,\"sym\":\"A\",\"qty\":1,\"side\":\"B\"}\0", V_PARSE),
    T_BIN("\0", V_PARSE),
};

/* Runs one case through both transforms and checks both decisions and
 * (for valid ticks) the bytes. */
static void check_case(stage *xa, stage *xb, stage *xc, const char *text, size_t len, int expect,
                       int idx)
{
    uint8_t ta[48], tb[48], tc[48];
    int va = verdict(xa, text, len, ta);
    int vb = verdict(xb, text, len, tb);
    int vc = xc ? verdict(xc, text, len, tc) : va;
    if (va != vb || va != vc || (expect >= 0 && va != expect))
        fail_msg("case %d (%.*s): jansson %d, fast %d, serde %d, expected %d", idx,
                 (int)(len > 120 ? 120 : len), text, va, vb, vc, expect);
    if (va == V_OK)
        assert_memory_equal(ta, tb, 48);
    if (va == V_OK && xc)
        assert_memory_equal(ta, tc, 48);
}

static char *nested(int depth, int *len)
{
    /* {"type":"trade",...,"x":[[[...]]]} with `depth` arrays under "x". */
    const char *head = "{\"type\":\"trade\",\"px\":1," TRADE_REST ",\"x\":";
    size_t hl = strlen(head);
    char *s = malloc(hl + 2 * (size_t)depth + 2);
    memcpy(s, head, hl);
    memset(s + hl, '[', depth);
    memset(s + hl + depth, ']', depth);
    s[hl + 2 * depth] = '}';
    *len = (int)hl + 2 * depth + 1;
    return s;
}

static void test_json_equiv_corpus(void **state)
{
    (void)state;
    stage *xa = stage_open("xf_json_jansson", 1, NULL);
    stage *xb = stage_open("xf_json_fast", 1, NULL);
    stage *xc = serde_open();
    size_t n = sizeof corpus / sizeof corpus[0];
    for (size_t i = 0; i < n; i++)
        check_case(xa, xb, xc, corpus[i].text, strlen(corpus[i].text), corpus[i].expect, (int)i);
    for (size_t i = 0; i < sizeof nul_cases / sizeof nul_cases[0]; i++)
        check_case(xa, xb, xc, nul_cases[i].text, nul_cases[i].len, nul_cases[i].expect, 1000 + (int)i);
    /* Depth: the top object is depth 1, so 2047 arrays inside it are fine
     * (an unknown key: schema error) and 2048 are too deep. */
    int depths[] = {1, 100, 2046, 2047, 2048, 2049, 100000};
    int expect[] = {V_SCHEMA, V_SCHEMA, V_SCHEMA, V_SCHEMA, V_PARSE, V_PARSE, V_PARSE};
    for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
        int len;
        char *s = nested(depths[i], &len);
        check_case(xa, xb, xc, s, (size_t)len, expect[i], 2000 + depths[i]);
        free(s);
    }
    /* A huge number token goes through the fast parser's strtod path. */
    size_t big = 100000;
    char *s = malloc(big + 128);
    int hl = sprintf(s, "{\"type\":\"trade\",\"px\":1.");
    memset(s + hl, '0', big);
    sprintf(s + hl + big, "1," TRADE_REST "}");
    check_case(xa, xb, xc, s, strlen(s), V_OK, 3000);
    free(s);
    printf("corpus: %zu cases agree\n", n + sizeof nul_cases / sizeof nul_cases[0] + 8);
    stage_close(xa);
    stage_close(xb);
    if (xc)
        stage_close(xc);
}

/* Random mutations of valid ticks: both parsers must agree on every one. */
static void test_json_equiv_mutations(void **state)
{
    (void)state;
    enum { BASE = 2000, PER = 50 };
    static const char alphabet[] = "0123456789.eE+-\"\\u{}[],: \t\n\0\x80\xc3\xa9\xff"
                                   "abtrueflsnxABS/";
    stage *g = stage_open("gen_market", 99, (const char *const[]){"symbols=50", NULL});
    stage *xa = stage_open("xf_json_jansson", 1, NULL);
    stage *xb = stage_open("xf_json_fast", 1, NULL);
    stage *xc = serde_open();
    obs_record *ticks = malloc(BASE * sizeof *ticks);
    generate(g, BASE, 1000, 1, 1000, NULL, ticks);
    uint64_t rng = 0x1234567;
    char buf[512];
    int counts[3] = {0};
    for (int i = 0; i < BASE; i++) {
        for (int m = 0; m < PER; m++) {
            size_t len = ticks[i].len;
            memcpy(buf, ticks[i].data, len);
            int edits = 1 + (int)((rng = rng * 6364136223846793005u + 1442695040888963407u) >> 62);
            for (int e = 0; e < edits && len > 0; e++) {
                rng = rng * 6364136223846793005u + 1442695040888963407u;
                size_t pos = (size_t)((rng >> 33) % len);
                char ch = alphabet[(rng >> 20) % (sizeof alphabet - 1)];
                switch ((rng >> 10) % 4) {
                case 0: /* replace */
                    buf[pos] = ch;
                    break;
                case 1: /* insert */
                    memmove(buf + pos + 1, buf + pos, len - pos);
                    buf[pos] = ch;
                    len++;
                    break;
                case 2: /* delete */
                    memmove(buf + pos, buf + pos + 1, len - pos - 1);
                    len--;
                    break;
                default: /* truncate */
                    len = pos;
                    break;
                }
            }
            check_case(xa, xb, xc, buf, len, -1, -1);
            counts[verdict(xa, buf, len, (uint8_t[48]){0})]++;
        }
    }
    printf("mutations: %d ok, %d parse errors, %d schema errors, all agree\n", counts[0], counts[1],
           counts[2]);
    assert_true(counts[0] > 0 && counts[1] > 0 && counts[2] > 0);
    free_ticks(ticks, BASE);
    stage_close(g);
    stage_close(xa);
    stage_close(xb);
    if (xc)
        stage_close(xc);
}

/* ------------------------------------------------------------ xf_window */

typedef struct tick {
    uint64_t ts_ns;
    int64_t px_e4, ask_e4;
    uint32_t qty, ask_qty;
    char sym[8];
    uint8_t type, side, pad[6];
} tick;

typedef struct window {
    uint64_t end_ns;
    int64_t vwap_e4, min_e4, max_e4;
    char sym[8];
    uint8_t type, pad[3];
    uint32_t window_ms, n_trades, n_quotes;
    uint64_t volume;
} window;

/* Deterministic binary ticks: 6 symbols, time advancing 0..120 ms a step. */
static obs_record *make_ticks(int n)
{
    obs_record *r = calloc((size_t)n, sizeof *r);
    uint64_t x = 88172645463325252u, ts = 5000000000u;
    static const char *syms[] = {"A", "BB", "CCC", "DDDD", "EEEEEEEE", "F1"};
    for (int i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ts += (x % 120) * 1000000u + (x >> 40) % 1000;
        tick *t = calloc(1, sizeof *t);
        t->ts_ns = ts;
        memcpy(t->sym, syms[(x >> 8) % 6], strlen(syms[(x >> 8) % 6]));
        t->px_e4 = 10000 + (int64_t)((x >> 16) % 100000);
        if ((x >> 32) % 3) {
            t->type = 1;
            t->side = 'B';
            t->qty = 1 + (uint32_t)((x >> 24) % 500);
        } else {
            t->type = 2;
            t->ask_e4 = t->px_e4 + 1 + (int64_t)((x >> 24) % 50);
            t->qty = 100;
            t->ask_qty = 200;
        }
        r[i].data = (const uint8_t *)t;
        r[i].len = sizeof *t;
        r[i].seq = (uint64_t)i;
        r[i].t_intended_ns = ts;
    }
    return r;
}

static int cmp_window(const void *x, const void *y)
{
    const window *a = x, *b = y;
    if (a->end_ns != b->end_ns)
        return a->end_ns < b->end_ns ? -1 : 1;
    return memcmp(a->sym, b->sym, 8);
}

/* Extracts the window records of a stream, sorted by (end, sym). */
static window *stream_windows(const stream *st, size_t *n)
{
    window *w = malloc((st->n_records + 1) * sizeof *w);
    size_t k = 0;
    for (size_t off = 0; off < st->len;) {
        uint64_t len;
        memcpy(&len, st->bytes + off, 8);
        assert_int_equal(len, sizeof(window));
        memcpy(&w[k++], st->bytes + off + 24, sizeof(window));
        off += 24 + len;
    }
    qsort(w, k, sizeof *w, cmp_window);
    *n = k;
    return w;
}

/* The definition, computed the slow way: every boundary, every symbol, every
 * tick. */
static window *reference_windows(const obs_record *r, int n, uint64_t win_ns, uint64_t slide_ns,
                                 size_t *n_out)
{
    size_t cap = 1024, k = 0;
    window *out = malloc(cap * sizeof *out);
    const tick *first = (const tick *)r[0].data, *last = (const tick *)r[n - 1].data;
    uint64_t b0 = (first->ts_ns / slide_ns + 1) * slide_ns;
    uint64_t b1 = (last->ts_ns / slide_ns) * slide_ns + win_ns;
    static const char *syms[] = {"A", "BB", "CCC", "DDDD", "EEEEEEEE", "F1"};
    for (uint64_t b = b0; b <= b1; b += slide_ns) {
        for (int s = 0; s < 6; s++) {
            window w = {0};
            char sym[8] = {0};
            memcpy(sym, syms[s], strlen(syms[s]));
            unsigned __int128 pv = 0;
            w.min_e4 = INT64_MAX;
            w.max_e4 = INT64_MIN;
            for (int i = 0; i < n; i++) {
                const tick *t = (const tick *)r[i].data;
                if (memcmp(t->sym, sym, 8) != 0 || t->ts_ns >= b || t->ts_ns + win_ns < b + 0 ||
                    t->ts_ns < b - win_ns)
                    continue;
                int64_t px = t->type == 1 ? t->px_e4 : (t->px_e4 + t->ask_e4) / 2;
                if (t->type == 1) {
                    w.n_trades++;
                    w.volume += t->qty;
                    pv += (unsigned __int128)t->px_e4 * t->qty;
                } else {
                    w.n_quotes++;
                }
                w.min_e4 = px < w.min_e4 ? px : w.min_e4;
                w.max_e4 = px > w.max_e4 ? px : w.max_e4;
            }
            if (w.n_trades + w.n_quotes == 0)
                continue;
            w.end_ns = b;
            memcpy(w.sym, sym, 8);
            w.type = 3;
            w.window_ms = (uint32_t)(win_ns / 1000000);
            w.vwap_e4 = w.volume ? (int64_t)((pv + w.volume / 2) / w.volume) : 0;
            if (k == cap)
                out = realloc(out, (cap *= 2) * sizeof *out);
            out[k++] = w;
        }
    }
    qsort(out, k, sizeof *out, cmp_window);
    *n_out = k;
    return out;
}

static void free_records(obs_record *r, int n)
{
    for (int i = 0; i < n; i++)
        free((void *)r[i].data);
    free(r);
}

static void test_window_reference(void **state)
{
    (void)state;
    enum { N = 3000 };
    obs_record *r = make_ticks(N);
    const char *const *configs[] = {
        (const char *const[]){"window_ms=1000", "slide_ms=250", NULL},
        (const char *const[]){"window_ms=300", "slide_ms=300", NULL},
        (const char *const[]){"window_ms=2000", "slide_ms=100", NULL},
    };
    uint64_t wins[] = {1000, 300, 2000}, slides[] = {250, 300, 100};
    for (int c = 0; c < 3; c++) {
        stage *w = stage_open("xf_window", 1, configs[c]);
        stream st = {0};
        run_transform(w, r, N, 97, &st);
        size_t n_got, n_ref;
        window *got = stream_windows(&st, &n_got);
        window *ref = reference_windows(r, N, wins[c] * 1000000u, slides[c] * 1000000u, &n_ref);
        printf("xf_window %llu/%llu ms: %zu windows\n", (unsigned long long)wins[c],
               (unsigned long long)slides[c], n_got);
        assert_int_equal(n_got, n_ref);
        assert_memory_equal(got, ref, n_got * sizeof *got);
        assert_int_equal(counter_value(w, "late_tick") + counter_value(w, "bad_record"), 0);
        free(got);
        free(ref);
        free(st.bytes);
        stage_close(w);
    }
    free_records(r, N);
}

static void test_window_late_and_bad(void **state)
{
    (void)state;
    obs_record *r = make_ticks(3);
    /* Make the last tick late: older than the current pane. */
    ((tick *)r[2].data)->ts_ns = ((const tick *)r[1].data)->ts_ns - 300000000u;
    stage *w = stage_open("xf_window", 1, NULL);
    stream st = {0};
    run_transform(w, r, 3, 3, &st);
    obs_record junk = {.data = (const uint8_t *)"not a tick", .len = 10};
    run_transform(w, &junk, 1, 1, &st);
    assert_int_equal(counter_value(w, "late_tick"), 1);
    assert_int_equal(counter_value(w, "bad_record"), 1);
    free(st.bytes);
    stage_close(w);
    free_records(r, 3);
}

static void test_window_state_roundtrip(void **state)
{
    (void)state;
    enum { N = 3000 };
    obs_record *r = make_ticks(N);
    const char *const cfg[] = {"window_ms=1000", "slide_ms=250", NULL};

    stage *whole = stage_open("xf_window", 1, cfg);
    stream expect = {0};
    run_transform(whole, r, N, 64, &expect);

    /* First half in one instance, state handed over, rest in another. */
    stage *a = stage_open("xf_window", 1, cfg);
    stream got = {0};
    obs_out o;
    out_init(&o);
    for (int done = 0; done < N / 2; done += 64) {
        obs_batch b = {.records = r + done, .n_records = N / 2 - done < 64 ? N / 2 - done : 64};
        out_reset(&o);
        assert_int_equal(a->desc->process(a->instance, &b, &o), OBS_OK);
        stream_add(&got, &o);
    }
    out_free(&o);
    void *buf;
    size_t len;
    assert_int_equal(a->desc->export_state(a->instance, &buf, &len), OBS_OK);

    stage *b = stage_open("xf_window", 1, cfg);
    assert_int_equal(b->desc->import_state(b->instance, buf, len), OBS_OK);
    run_transform(b, r + N / 2, N - N / 2, 64, &got);
    assert_int_equal(got.n_records, expect.n_records);
    assert_int_equal(got.len, expect.len);
    assert_memory_equal(got.bytes, expect.bytes, got.len);

    /* Refusals: other geometry, truncated or damaged state. */
    stage *c = stage_open("xf_window", 1, (const char *const[]){"window_ms=500", NULL});
    assert_int_equal(c->desc->import_state(c->instance, buf, len), OBS_ESTATE);
    assert_int_equal(b->desc->import_state(b->instance, buf, len - 1), OBS_ESTATE);
    assert_int_equal(b->desc->import_state(b->instance, buf, 10), OBS_ESTATE);
    ((uint8_t *)buf)[0] ^= 1;
    assert_int_equal(b->desc->import_state(b->instance, buf, len), OBS_ESTATE);
    printf("xf_window state: %zu bytes, %llu windows\n", len, (unsigned long long)got.n_records);

    a->host.free(&a->host, buf);
    free(expect.bytes);
    free(got.bytes);
    stage_close(whole);
    stage_close(a);
    stage_close(b);
    stage_close(c);
    free_records(r, N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gen_market_determinism),
        cmocka_unit_test(test_gen_market_zipf),
        cmocka_unit_test(test_json_equiv_generated),
        cmocka_unit_test(test_json_equiv_corpus),
        cmocka_unit_test(test_json_equiv_mutations),
        cmocka_unit_test(test_window_reference),
        cmocka_unit_test(test_window_late_and_bad),
        cmocka_unit_test(test_window_state_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
