/*
 * test_payloads.c - the payload families gen_iot, gen_logs and
 * gen_market's news and binary format, and the transforms xf_iot and
 * xf_logs.
 *
 * The plugins are dlopen'ed from $OBS_PLUGIN_DIR and driven through a
 * minimal host (the same as test_json_equiv.c's). Checked: every generator
 * gives the same bytes for the same seed whatever the batch sizes, and other
 * bytes for another seed; generated records follow their documented schema
 * (the matching transform accepts every one of them when no damage is asked
 * for); damaged and out-of-range IoT readings land on xf_iot's error
 * counters, every record is accounted for exactly once, and random mutations
 * crash nothing (this test also runs under ASan/UBSan). Proportions (damage
 * rates, level mix) are checked within 5 binomial standard errors
 * sqrt(p (1 - p) / n) of the configured value.
 */
#include <dlfcn.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <observatory/stage.h>

#include "market.h"
#include "payload.h"

#include "plugin_harness.h"

/* Generates n records with intended times 1 s + i * 10 us, in batches of
 * `batch`, into o (reset first). */
static void generate(stage *g, obs_out *o, uint32_t n, uint32_t batch)
{
    static uint64_t t[1 << 16];
    out_reset(o);
    for (uint32_t first = 0; first < n; first += batch) {
        uint32_t k = n - first < batch ? n - first : batch;
        assert_true(k <= sizeof t / sizeof t[0]);
        for (uint32_t i = 0; i < k; i++)
            t[i] = 1000000000ull + (uint64_t)(first + i) * 10000u;
        obs_gen_request req = {.n_records = k, .first_seq = first, .t_intended_ns = t};
        assert_int_equal(g->desc->generate(g->instance, &req, o), OBS_OK);
    }
    assert_int_equal(o->n_records, n);
}

/* Concatenated record bytes with lengths, for comparing two streams. */
static int same_stream(const obs_out *a, const obs_out *b)
{
    if (a->n_records != b->n_records)
        return 0;
    for (uint32_t i = 0; i < a->n_records; i++)
        if (a->records[i].len != b->records[i].len ||
            memcmp(a->records[i].data, b->records[i].data, a->records[i].len) != 0 ||
            a->records[i].seq != b->records[i].seq ||
            a->records[i].t_intended_ns != b->records[i].t_intended_ns)
            return 0;
    return 1;
}

static void test_determinism(void **state)
{
    (void)state;
    static const struct {
        const char *plugin, *params[4];
    } cases[] = {
        {"gen_iot", {"format=json", "malformed=0.05", "burst_prob=0.001", NULL}},
        {"gen_iot", {"format=binary", "malformed=0.05", "out_of_range=0.05", NULL}},
        {"gen_logs", {"format=json", NULL}},
        {"gen_logs", {"format=binary", "size_sigma=1.5", NULL}},
        {"gen_market", {"news_rate=5", "news_ms=100", NULL}},
        {"gen_market", {"format=binary", "news_rate=5", NULL}},
    };
    obs_out a, b, c;
    out_init(&a);
    out_init(&b);
    out_init(&c);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        stage *g1 = stage_open(cases[i].plugin, 42, cases[i].params);
        stage *g2 = stage_open(cases[i].plugin, 42, cases[i].params);
        stage *g3 = stage_open(cases[i].plugin, 43, cases[i].params);
        generate(g1, &a, 20000, 20000);
        generate(g2, &b, 20000, 7);
        generate(g3, &c, 20000, 256);
        if (!same_stream(&a, &b))
            fail_msg("%s %s: batch sizes changed the bytes", cases[i].plugin, cases[i].params[0]);
        assert_false(same_stream(&a, &c));
        stage_close(g1);
        stage_close(g2);
        stage_close(g3);
    }
    free(a.records), free(a.arena), free(b.records), free(b.arena), free(c.records), free(c.arena);
}

/* Feeds `in` to transform x in batches of 256; returns the output in *o. */
static void transform(stage *x, const obs_out *in, obs_out *o, int flush)
{
    out_reset(o);
    for (uint32_t first = 0; first < in->n_records; first += 256) {
        uint32_t k = in->n_records - first < 256 ? in->n_records - first : 256;
        obs_batch b = {.records = in->records + first, .n_records = k};
        assert_int_equal(x->desc->process(x->instance, &b, o), OBS_OK);
    }
    if (flush && x->desc->flush)
        assert_int_equal(x->desc->flush(x->instance, o), OBS_OK);
}

static void assert_share(uint64_t got, uint64_t n, double p, const char *what)
{
    double tol = 5 * sqrt(p * (1 - p) / (double)n) + 1.0 / (double)n;
    double share = (double)got / (double)n;
    if (fabs(share - p) > tol)
        fail_msg("%s: share %.5f, want %.5f +- %.5f", what, share, p, tol);
}

/* Clean IoT readings: all valid; summaries add up to the readings. */
static void test_iot_schema(void **state)
{
    (void)state;
    const uint32_t n = 50000;
    for (int binary = 0; binary <= 1; binary++) {
        const char *p[] = {binary ? "format=binary" : "format=json", "malformed=0",
                           "out_of_range=0", "devices=300", NULL};
        stage *g = stage_open("gen_iot", 7, p);
        stage *x = stage_open("xf_iot", 1, (const char *const[]){"every=7", NULL});
        obs_out in, out;
        out_init(&in);
        out_init(&out);
        generate(g, &in, n, 1000);
        if (!binary) {
            const obs_record *r = &in.records[0];
            assert_true(r->len > 10 && memcmp(r->data, "{\"dev\":0,\"seq\":1,\"ts\":", 21) == 0);
        } else {
            for (uint32_t i = 0; i < n; i++)
                assert_int_equal(in.records[i].len, IOT_READING_LEN);
        }
        transform(x, &in, &out, 1);
        if (counter_value(x, "readings") != n)
            print_error("binary=%d readings=%lu parse=%lu schema=%lu oor=%lu\n", binary,
                        (unsigned long)counter_value(x, "readings"),
                        (unsigned long)counter_value(x, "parse_error"),
                        (unsigned long)counter_value(x, "schema_error"),
                        (unsigned long)counter_value(x, "out_of_range"));
        assert_int_equal(counter_value(x, "readings"), n);
        assert_int_equal(counter_value(x, "parse_error"), 0);
        assert_int_equal(counter_value(x, "schema_error"), 0);
        assert_int_equal(counter_value(x, "out_of_range"), 0);
        uint64_t sum = 0;
        for (uint32_t i = 0; i < out.n_records; i++) {
            iot_summary s;
            assert_int_equal(out.records[i].len, IOT_SUMMARY_LEN);
            memcpy(&s, out.records[i].data, sizeof s);
            assert_int_equal(s.type, IOT_SUMMARY);
            assert_true(s.device < 300 && s.n >= 1 && s.n <= 7);
            assert_true(s.temp_min_e2 <= s.temp_max_e2);
            sum += s.n;
        }
        assert_int_equal(sum, n);
        stage_close(g);
        stage_close(x);
        free(in.records), free(in.arena), free(out.records), free(out.arena);
    }
}

/* Damaged and out-of-range readings land on xf_iot's error counters; every
 * record is counted exactly once; random mutations crash nothing. */
static void test_iot_malformed(void **state)
{
    (void)state;
    const uint32_t n = 100000;
    for (int binary = 0; binary <= 1; binary++) {
        const char *p[] = {binary ? "format=binary" : "format=json", "malformed=0.1",
                           "out_of_range=0.05", "burst_prob=0.001", NULL};
        stage *g = stage_open("gen_iot", 11, p);
        stage *x = stage_open("xf_iot", 1, NULL);
        obs_out in, out;
        out_init(&in);
        out_init(&out);
        generate(g, &in, n, 512);
        transform(x, &in, &out, 1);
        uint64_t ok = counter_value(x, "readings"), pe = counter_value(x, "parse_error");
        uint64_t se = counter_value(x, "schema_error"), oor = counter_value(x, "out_of_range");
        assert_int_equal(ok + pe + se + oor, n);
        assert_true(pe > 0 && se > 0);
        assert_share(pe + se, n, 0.1, "malformed");
        assert_share(oor, n, 0.9 * 0.05, "out of range");

        /* Mutations: flip, truncate, extend; each record stays accounted. */
        uint64_t seed = 99;
        static uint8_t buf[20000][64];
        obs_record recs[20000];
        for (uint32_t i = 0; i < 20000; i++) {
            const obs_record *r = &in.records[i];
            uint32_t len = r->len < 64 ? r->len : 64;
            memcpy(buf[i], r->data, len);
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t pos = len ? (uint32_t)(seed >> 33) % len : 0;
            if (len && (seed & 3) == 0)
                buf[i][pos] ^= (uint8_t)(seed >> 20);
            else if ((seed & 3) == 1)
                len = pos;
            recs[i] = *r;
            recs[i].data = buf[i];
            recs[i].len = len;
        }
        obs_out mut = {.records = recs, .n_records = 20000};
        uint64_t before = ok + pe + se + oor;
        transform(x, &mut, &out, 0);
        uint64_t after = counter_value(x, "readings") + counter_value(x, "parse_error") +
                         counter_value(x, "schema_error") + counter_value(x, "out_of_range");
        assert_int_equal(after - before, 20000);
        stage_close(g);
        stage_close(x);
        free(in.records), free(in.arena), free(out.records), free(out.arena);
    }
}

/* Log events: level mix, log-normal sizes, xf_logs counts and filters. */
static void test_logs(void **state)
{
    (void)state;
    const uint32_t n = 100000;
    for (int binary = 0; binary <= 1; binary++) {
        const char *p[] = {binary ? "format=binary" : "format=json", "size_median=200", NULL};
        stage *g = stage_open("gen_logs", 5, p);
        stage *x = stage_open("xf_logs", 1, (const char *const[]){"min_level=warn", NULL});
        obs_out in, out;
        out_init(&in);
        out_init(&out);
        generate(g, &in, n, 1000);
        /* Message lengths are log-normal with median 200: the share of
         * messages shorter than 200 bytes is 1/2 (binomial tolerance). */
        static uint32_t lens[100000];
        for (uint32_t i = 0; i < n; i++) {
            const obs_record *r = &in.records[i];
            if (binary) {
                log_header h;
                memcpy(&h, r->data, sizeof h);
                assert_int_equal(h.type, LOG_EVENT);
                assert_int_equal(r->len, LOG_HEADER_LEN + h.msg_len);
                assert_int_equal(h.ts_ns, r->t_intended_ns);
                lens[i] = h.msg_len;
            } else {
                const char *m = memmem(r->data, r->len, "\"msg\":\"", 7);
                assert_non_null(m);
                lens[i] = (uint32_t)((const char *)r->data + r->len - (m + 7) - 2);
            }
        }
        uint32_t below = 0;
        for (uint32_t i = 0; i < n; i++)
            below += lens[i] < 200;
        assert_share(below, n, 0.5, "messages shorter than the median");

        transform(x, &in, &out, 1);
        uint64_t lv[4] = {counter_value(x, "debug"), counter_value(x, "info"),
                          counter_value(x, "warn"), counter_value(x, "error")};
        assert_int_equal(counter_value(x, "parse_error") + counter_value(x, "schema_error"), 0);
        assert_int_equal(lv[0] + lv[1] + lv[2] + lv[3], n);
        assert_share(lv[0], n, 0.25, "debug");
        assert_share(lv[1], n, 0.6, "info");
        assert_share(lv[2], n, 0.1, "warn");
        assert_share(lv[3], n, 0.05, "error");
        assert_int_equal(out.n_records, lv[2] + lv[3]); /* warn and error pass */
        assert_int_equal(out.n_passed, out.n_records);
        stage_close(g);
        stage_close(x);
        free(in.records), free(in.arena), free(out.records), free(out.arena);
    }
    /* Garbage is counted, not crashed on. */
    stage *x = stage_open("xf_logs", 1, NULL);
    obs_record r[4] = {{.data = (const uint8_t *)"{\"ts\":1", .len = 7},
                       {.data = (const uint8_t *)"{\"ts\":1,\"level\":\"loud\",\"svc\":\"a\","
                                                 "\"tmpl\":1,\"msg\":\"x\"}",
                        .len = 52},
                       {.data = (const uint8_t *)"\x01\x02", .len = 2},
                       {.data = (const uint8_t *)"", .len = 0}};
    obs_out in = {.records = r, .n_records = 4}, out;
    out_init(&out);
    transform(x, &in, &out, 0);
    assert_int_equal(counter_value(x, "parse_error"), 3);
    assert_int_equal(counter_value(x, "schema_error"), 1);
    stage_close(x);
    free(out.records), free(out.arena);
}

/* gen_market: binary ticks are valid market records; news raises the share
 * of trades and of the most popular symbols' ticks. */
static void test_market_news(void **state)
{
    (void)state;
    const uint32_t n = 100000; /* 1 s of intended time */
    obs_out a;
    out_init(&a);
    stage *g = stage_open("gen_market", 3, (const char *const[]){"format=binary", NULL});
    generate(g, &a, n, 256);
    uint64_t trades_plain = 0;
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(a.records[i].len, MARKET_TICK_LEN);
        int kind = market_record_kind(a.records[i].data, a.records[i].len);
        assert_true(kind == MARKET_TRADE || kind == MARKET_QUOTE);
        trades_plain += kind == MARKET_TRADE;
    }
    stage_close(g);
    g = stage_open("gen_market", 3,
                   (const char *const[]){"format=binary", "news_rate=20", "news_ms=50", NULL});
    generate(g, &a, n, 256);
    uint64_t trades_news = 0;
    for (uint32_t i = 0; i < n; i++)
        trades_news += market_record_kind(a.records[i].data, a.records[i].len) == MARKET_TRADE;
    /* News covers about half the time (20/s x 50 ms), half the ticks then
     * go to the news symbol, half of whose quotes become trades: +~4% of
     * ticks become trades; require at least +2%. */
    assert_true(trades_news > trades_plain + n / 50);
    stage_close(g);
    free(a.records), free(a.arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_determinism),   cmocka_unit_test(test_iot_schema),
        cmocka_unit_test(test_iot_malformed), cmocka_unit_test(test_logs),
        cmocka_unit_test(test_market_news),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
