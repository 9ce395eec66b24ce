/*
 * test_payloads.c - the payload families gen_iot, gen_logs and
 * gen_market's news, binary and msgpack formats, and the transforms xf_iot
 * and xf_logs.
 *
 * The plugins are dlopen'ed from $OBS_PLUGIN_DIR and driven through a
 * minimal host (the same as test_json_equiv.c's). Checked: every generator
 * gives the same bytes for the same seed whatever the batch sizes, and other
 * bytes for another seed, in every format; generated records follow their
 * documented schema (the matching transform accepts every one of them when
 * no damage is asked for; every msgpack record, decoded here with
 * libmsgpack, is a map with the JSON record's keys in its order, the same
 * values, and per key the documented type); damaged and out-of-range IoT
 * readings land on xf_iot's error counters, every record is accounted for
 * exactly once, and random mutations and random bytes crash nothing (this
 * test also runs under ASan/UBSan). Proportions (damage rates, level mix)
 * are checked within 5 binomial standard errors sqrt(p (1 - p) / n) of the
 * configured value.
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
#include <msgpack.h>

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
            a->records[i].seq != b->records[i].seq || a->records[i].key != b->records[i].key ||
            a->records[i].t_intended_ns != b->records[i].t_intended_ns)
            return 0;
    return 1;
}

/* Decodes msgpack record r with libmsgpack into *o (objects in zone z, valid
 * until the zone is cleared); fails the test unless r is exactly one object. */
static void mp_decode(const obs_record *r, msgpack_zone *z, msgpack_object *o)
{
    size_t off = 0;
    assert_int_equal(msgpack_unpack((const char *)r->data, r->len, &off, z, o),
                     MSGPACK_UNPACK_SUCCESS);
}

/* One "key":value pair of a generated JSON record (no escapes, no nesting). */
typedef struct jfield {
    const char *key, *val;
    size_t key_len, val_len;
    int is_str;
} jfield;

/* Splits a generated, flat JSON record into its pairs; returns their number. */
static int json_fields(const obs_record *r, jfield *f, int max)
{
    const char *p = (const char *)r->data, *end = p + r->len;
    int n = 0;
    assert_true(r->len >= 2 && p[0] == '{' && end[-1] == '}');
    for (p++; p < end - 1; n++) {
        assert_true(n < max && *p == '"');
        f[n].key = ++p;
        while (p < end && *p != '"')
            p++;
        f[n].key_len = (size_t)(p - f[n].key);
        assert_true(p + 2 < end && p[1] == ':');
        p += 2;
        f[n].is_str = *p == '"';
        if (f[n].is_str) {
            f[n].val = ++p;
            while (p < end && *p != '"')
                p++;
            f[n].val_len = (size_t)(p++ - f[n].val);
        } else {
            f[n].val = p;
            while (p < end && *p != ',' && *p != '}')
                p++;
            f[n].val_len = (size_t)(p - f[n].val);
        }
        if (p < end && *p == ',')
            p++;
    }
    return n;
}

/*
 * Checks that msgpack record mp carries exactly the fields of JSON record js
 * (generated from the same seed): a map with the same keys in the same
 * order, and per key the type given by `types` ('u' unsigned integer, 'f'
 * float 64, 's' string) holding the JSON value: the same string bytes, the
 * same integer, or the double that strtod reads from the JSON text (both
 * are the correctly rounded value of the same decimal).
 */
static void same_fields(const obs_record *js, const obs_record *mp, const char *types,
                        msgpack_zone *z)
{
    jfield f[8];
    int n = json_fields(js, f, 8);
    msgpack_object o;
    mp_decode(mp, z, &o);
    assert_int_equal(o.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(o.via.map.size, n);
    assert_int_equal(strlen(types), n);
    for (int i = 0; i < n; i++) {
        const msgpack_object *k = &o.via.map.ptr[i].key, *v = &o.via.map.ptr[i].val;
        char text[64];
        assert_int_equal(k->type, MSGPACK_OBJECT_STR);
        assert_int_equal(k->via.str.size, f[i].key_len);
        assert_memory_equal(k->via.str.ptr, f[i].key, f[i].key_len);
        assert_int_equal(f[i].is_str, types[i] == 's');
        if (types[i] == 's') {
            assert_int_equal(v->type, MSGPACK_OBJECT_STR);
            assert_int_equal(v->via.str.size, f[i].val_len);
            assert_memory_equal(v->via.str.ptr, f[i].val, f[i].val_len);
            continue;
        }
        assert_true(f[i].val_len < sizeof text);
        memcpy(text, f[i].val, f[i].val_len);
        text[f[i].val_len] = 0;
        if (types[i] == 'u') {
            assert_int_equal(v->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
            assert_null(strpbrk(text, ".-eE"));
            assert_int_equal(v->via.u64, strtoull(text, NULL, 10));
        } else {
            assert_int_equal(v->type, MSGPACK_OBJECT_FLOAT64);
            assert_non_null(strchr(text, '.'));
            if (v->via.f64 != strtod(text, NULL))
                fail_msg("key %.*s: msgpack %.17g, JSON %s", (int)f[i].key_len, f[i].key,
                         v->via.f64, text);
        }
    }
    msgpack_zone_clear(z);
}

static void test_determinism(void **state)
{
    (void)state;
    static const struct {
        const char *plugin, *params[4];
    } cases[] = {
        {"gen_iot", {"format=json", "malformed=0.05", "burst_prob=0.001", NULL}},
        {"gen_iot", {"format=binary", "malformed=0.05", "out_of_range=0.05", NULL}},
        {"gen_iot", {"format=msgpack", "malformed=0.05", "out_of_range=0.05", NULL}},
        {"gen_logs", {"format=json", NULL}},
        {"gen_logs", {"format=binary", "size_sigma=1.5", NULL}},
        {"gen_logs", {"format=msgpack", "size_sigma=1.5", NULL}},
        {"gen_market", {"news_rate=5", "news_ms=100", NULL}},
        {"gen_market", {"format=binary", "news_rate=5", NULL}},
        {"gen_market", {"format=msgpack", "news_rate=5", NULL}},
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

static const char *const formats[3] = {"format=json", "format=binary", "format=msgpack"};
enum { JSON = 0, BINARY = 1, MSGPACK = 2 };

/* Clean IoT readings: all valid; summaries add up to the readings. */
static void test_iot_schema(void **state)
{
    (void)state;
    const uint32_t n = 50000;
    for (int f = JSON; f <= MSGPACK; f++) {
        const char *p[] = {formats[f], "malformed=0", "out_of_range=0", "devices=300", NULL};
        stage *g = stage_open("gen_iot", 7, p);
        stage *x = stage_open("xf_iot", 1, (const char *const[]){"every=7", NULL});
        obs_out in, out;
        out_init(&in);
        out_init(&out);
        generate(g, &in, n, 1000);
        if (f == JSON) {
            const obs_record *r = &in.records[0];
            assert_true(r->len > 10 && memcmp(r->data, "{\"dev\":0,\"seq\":1,\"ts\":", 21) == 0);
        } else if (f == BINARY) {
            for (uint32_t i = 0; i < n; i++)
                assert_int_equal(in.records[i].len, IOT_READING_LEN);
        } else {
            for (uint32_t i = 0; i < n; i++) /* fixmap of 7, then the fixstr "dev" */
                assert_true(in.records[i].len > 40 && memcmp(in.records[i].data,
                                                             "\x87\xa3"
                                                             "dev",
                                                             5) == 0);
        }
        transform(x, &in, &out, 1);
        if (counter_value(x, "readings") != n)
            print_error("%s: readings=%lu parse=%lu schema=%lu oor=%lu\n", formats[f],
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
    for (int f = JSON; f <= MSGPACK; f++) {
        const char *p[] = {formats[f], "malformed=0.1", "out_of_range=0.05", "burst_prob=0.001",
                           NULL};
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
        static uint8_t buf[20000][96];
        obs_record recs[20000];
        for (uint32_t i = 0; i < 20000; i++) {
            const obs_record *r = &in.records[i];
            uint32_t len = r->len < 96 ? r->len : 96;
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
    msgpack_zone z;
    assert_true(msgpack_zone_init(&z, 4096));
    for (int f = JSON; f <= MSGPACK; f++) {
        const char *p[] = {formats[f], "size_median=200", NULL};
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
            if (f == BINARY) {
                log_header h;
                memcpy(&h, r->data, sizeof h);
                assert_int_equal(h.type, LOG_EVENT);
                assert_int_equal(r->len, LOG_HEADER_LEN + h.msg_len);
                assert_int_equal(h.ts_ns, r->t_intended_ns);
                lens[i] = h.msg_len;
            } else if (f == MSGPACK) {
                msgpack_object o;
                mp_decode(r, &z, &o);
                assert_int_equal(o.type, MSGPACK_OBJECT_MAP);
                assert_int_equal(o.via.map.size, 5);
                assert_int_equal(o.via.map.ptr[0].val.via.u64, r->t_intended_ns); /* ts */
                assert_int_equal(o.via.map.ptr[4].val.type, MSGPACK_OBJECT_STR);  /* msg */
                lens[i] = o.via.map.ptr[4].val.via.str.size;
                msgpack_zone_clear(&z);
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
        /* Passed by reference, and exactly the events at warn or above. */
        for (uint32_t i = 0, j = 0; i < n; i++) {
            const obs_record *r = &in.records[i];
            uint8_t level;
            if (f == BINARY) {
                level = r->data[14];
            } else {
                const char *lv_name = f == JSON ? memmem(r->data, r->len, "\"level\":\"", 9)
                                                : memmem(r->data, r->len, "\xa5level", 6);
                assert_non_null(lv_name);
                lv_name += f == JSON ? 9 : 7; /* the JSON value, or after the str header */
                level = lv_name[0] == 'd' ? 0 : lv_name[0] == 'i' ? 1 : lv_name[0] == 'w' ? 2 : 3;
            }
            if (level >= 2) {
                assert_true(j < out.n_records);
                assert_ptr_equal(out.records[j++].data, r->data);
            }
        }
        stage_close(g);
        stage_close(x);
        free(in.records), free(in.arena), free(out.records), free(out.arena);
    }
    msgpack_zone_destroy(&z);
    /* Garbage is counted, not crashed on. */
#define R(lit) {.data = (const uint8_t *)(lit), .len = sizeof(lit) - 1}
    stage *x = stage_open("xf_logs", 1, NULL);
    obs_record r[] = {
        R("{\"ts\":1"),
        R("{\"ts\":1,\"level\":\"loud\",\"svc\":\"a\",\"tmpl\":1,\"msg\":\"x\"}"),
        R("\x01\x02"),
        R(""),
        /* msgpack: valid (passed: warn), truncated, trailing byte, a level
         * nobody knows, ts a string, a key missing, a map claiming 65535
         * pairs in 3 bytes. */
        R("\x85\xa2ts\x01\xa5level\xa4warn\xa3svc\xa1"
          "a\xa4tmpl\x01\xa3msg\xa1x"),
        R("\x85\xa2ts\x01\xa5level\xa4warn\xa3svc\xa1"
          "a\xa4tmpl\x01\xa3msg\xa1"),
        R("\x85\xa2ts\x01\xa5level\xa4warn\xa3svc\xa1"
          "a\xa4tmpl\x01\xa3msg\xa1x\x00"),
        R("\x85\xa2ts\x01\xa5level\xa4loud\xa3svc\xa1"
          "a\xa4tmpl\x01\xa3msg\xa1x"),
        R("\x85\xa2ts\xa1"
          "1\xa5level\xa4warn\xa3svc\xa1"
          "a\xa4tmpl\x01\xa3msg\xa1x"),
        R("\x84\xa2ts\x01\xa5level\xa4warn\xa3svc\xa1"
          "a\xa4tmpl\x01"),
        R("\xde\xff\xff"),
    };
#undef R
    obs_out in = {.records = r, .n_records = sizeof r / sizeof r[0]}, out;
    out_init(&out);
    transform(x, &in, &out, 0);
    assert_int_equal(counter_value(x, "parse_error"), 3 + 3);
    assert_int_equal(counter_value(x, "schema_error"), 1 + 3);
    assert_int_equal(counter_value(x, "warn"), 1);
    assert_int_equal(out.n_passed, 1);
    assert_ptr_equal(out.records[0].data, r[4].data);
    stage_close(x);
    free(out.records), free(out.arena);
}

/* gen_market: binary ticks are valid market records; news raises the share
 * of trades and of the most popular symbols' ticks. */
/* Every generator keys its records (ABI 1.1) by what they are about:
 * obs_key_hash of the field's value as the JSON record writes it (the
 * symbol, the device id, the service), in every format, never 0. */
static void test_keys(void **state)
{
    (void)state;
    static const struct {
        const char *plugin, *field, *params, *clean;
    } gens[] = {
        {"gen_market", "sym", "symbols=50", NULL},
        {"gen_iot", "dev", "devices=40", "malformed=0"},
        {"gen_logs", "svc", "services=30", NULL},
    };
    const uint32_t n = 5000;
    for (size_t k = 0; k < sizeof gens / sizeof gens[0]; k++) {
        obs_out js, other;
        out_init(&js);
        out_init(&other);
        stage *g = stage_open(gens[k].plugin, 11,
                              (const char *const[]){gens[k].params, gens[k].clean, NULL});
        generate(g, &js, n, 100);
        stage_close(g);
        uint32_t distinct[64];
        size_t n_distinct = 0;
        for (uint32_t i = 0; i < n; i++) {
            jfield f[8];
            int nf = json_fields(&js.records[i], f, 8);
            int found = 0;
            for (int j = 0; j < nf; j++)
                if (f[j].key_len == strlen(gens[k].field) &&
                    memcmp(f[j].key, gens[k].field, f[j].key_len) == 0) {
                    assert_int_equal(js.records[i].key, obs_key_hash(f[j].val, f[j].val_len));
                    found = 1;
                }
            assert_true(found);
            assert_int_not_equal(js.records[i].key, 0);
            size_t d = 0;
            while (d < n_distinct && distinct[d] != js.records[i].key)
                d++;
            if (d == n_distinct && n_distinct < 64)
                distinct[n_distinct++] = js.records[i].key;
        }
        assert_true(n_distinct >= 10);
        /* The other formats key the same records the same way. */
        for (int f = BINARY; f <= MSGPACK; f++) {
            g = stage_open(gens[k].plugin, 11,
                           (const char *const[]){gens[k].params, formats[f], NULL});
            generate(g, &other, n, 100);
            stage_close(g);
            for (uint32_t i = 0; i < n; i++)
                assert_int_equal(other.records[i].key, js.records[i].key);
        }
        free(js.records), free(js.arena), free(other.records), free(other.arena);
    }
}

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

/* The msgpack format of each family against its JSON format, record by
 * record, from the same seed: same keys, same values, documented types. */
static void test_msgpack_schema(void **state)
{
    (void)state;
    static const struct {
        const char *plugin, *param;
    } fam[] = {{"gen_iot", "malformed=0"}, {"gen_logs", "size_sigma=1.5"}, {"gen_market", NULL}};
    const uint32_t n = 20000;
    msgpack_zone z;
    assert_true(msgpack_zone_init(&z, 4096));
    obs_out js, mp;
    out_init(&js);
    out_init(&mp);
    for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++) {
        stage *gj = stage_open(fam[i].plugin, 21, (const char *const[]){fam[i].param, NULL});
        stage *gm = stage_open(fam[i].plugin, 21,
                               (const char *const[]){"format=msgpack", fam[i].param, NULL});
        generate(gj, &js, n, 256);
        generate(gm, &mp, n, 256);
        uint32_t trades = 0;
        for (uint32_t k = 0; k < n; k++) {
            const obs_record *a = &js.records[k], *b = &mp.records[k];
            assert_int_equal(a->seq, b->seq);
            assert_int_equal(a->t_intended_ns, b->t_intended_ns);
            const char *types = "uuuffuu"; /* gen_iot: dev seq ts temp hum bat alarm */
            if (i == 1)
                types = "ussus"; /* gen_logs: ts level svc tmpl msg */
            else if (i == 2) {   /* gen_market: type sym ts px qty side | bid ask bsz asz */
                int trade = memcmp(a->data, "{\"type\":\"trade\"", 15) == 0;
                trades += trade;
                types = trade ? "ssufus" : "ssuffuu";
            }
            same_fields(a, b, types, &z);
        }
        if (i == 2)
            assert_true(trades > 0 && trades < n);
        stage_close(gj);
        stage_close(gm);
    }
    msgpack_zone_destroy(&z);
    free(js.records), free(js.arena), free(mp.records), free(mp.arena);
}

/* xf_iot on hand-made msgpack readings (each lands on the expected
 * counter) and on random bytes (each lands on exactly one counter). */
static void test_iot_msgpack_cases(void **state)
{
    (void)state;
#define R(lit)                                                                                     \
    {                                                                                              \
        .data = (const uint8_t *)(lit), .len = sizeof(lit) - 1                                     \
    }
/* The seven keys with fixed-size values, temp and hum given by the caller. */
#define READING(temp, hum)                                                                         \
    "\x87\xa3"                                                                                     \
    "dev\x05\xa3seq\x01\xa2ts\xcd\x03\xe8\xa4temp" temp "\xa3hum" hum "\xa3"                       \
    "bat\xcd\x0e\x80\xa5"                                                                          \
    "alarm\x00"
#define F21_53 "\xcb\x40\x35\x87\xae\x14\x7a\xe1\x48" /* 21.53 */
#define F45_2 "\xcb\x40\x46\x99\x99\x99\x99\x99\x9a"  /* 45.2 */
    static const struct {
        obs_record r;
        const char *counter;
    } cases[] = {
        {R(READING(F21_53, F45_2)), "readings"},
        {R(READING("\x15", "\x2d")), "readings"},                /* integers 21 and 45 */
        {R(READING("\xca\x41\xac\x00\x00", F45_2)), "readings"}, /* float 32: 21.5 */
        {R(READING("\xd0\xe7", F45_2)), "readings"},             /* -25 */
        {R(READING("\xcb\x40\x35\x88\xf5\xc2\x8f\x5c\x29", F45_2)), "schema_error"}, /* 21.535 */
        {R(READING("\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00", F45_2)), "schema_error"}, /* NaN */
        {R(READING("\xa3hot", F45_2)), "schema_error"},
        {R(READING("\xc0", F45_2)), "schema_error"},                                  /* nil */
        {R(READING("\xcd\x4e\x20", F45_2)), "out_of_range"},                          /* 20000 C */
        {R(READING(F21_53, "\xcb\x40\x59\x00\x10\x62\x4d\xd2\xf2")), "schema_error"}, /* 100.001 */
        {R(READING(F21_53, "\xcb\x40\x59\x00\x00\x00\x00\x00\x01")), "readings"}, /* 100 + 1 ulp */
        {R(READING(F21_53, "\xcd\x01\x2c")), "out_of_range"},                     /* 300 % */
        /* dev as a float, alarm 2, a repeated key, 6 pairs, a bin key. */
        {R("\x87\xa3"
           "dev\xcb\x40\x14\x00\x00\x00\x00\x00\x00\xa3seq\x01\xa2ts\x01\xa4temp\x15\xa3hum"
           "\x2d\xa3"
           "bat\xcd\x0e\x80\xa5"
           "alarm\x00"),
         "schema_error"},
        {R("\x87\xa3"
           "dev\x05\xa3seq\x01\xa2ts\x01\xa4temp\x15\xa3hum\x2d\xa3"
           "bat\xcd\x0e\x80\xa5"
           "alarm\x02"),
         "schema_error"},
        {R("\x87\xa3"
           "dev\x05\xa3"
           "dev\x01\xa2ts\x01\xa4temp\x15\xa3hum\x2d\xa3"
           "bat\xcd\x0e\x80\xa5"
           "alarm\x00"),
         "schema_error"},
        {R("\x86\xa3"
           "dev\x05\xa3seq\x01\xa2ts\x01\xa4temp\x15\xa3hum\x2d\xa3"
           "bat\xcd\x0e\x80"),
         "schema_error"},
        {R("\x87\xc4\x03"
           "dev\x05\xa3seq\x01\xa2ts\x01\xa4temp\x15\xa3hum\x2d\xa3"
           "bat\xcd\x0e\x80\xa5"
           "alarm\x00"),
         "schema_error"},
        /* Not one complete object: truncated, a trailing byte, the tag
         * 0xc1, maps and arrays claiming more elements than there are
         * bytes (without mpk_check, libmsgpack would ask for up to 192 GiB),
         * nesting deeper than libmsgpack's 32 levels. */
        {{.data = (const uint8_t *)READING(F21_53, F45_2),
          .len = sizeof READING(F21_53, F45_2) - 2},
         "parse_error"},
        {R(READING(F21_53, F45_2) "\x00"), "parse_error"},
        {R("\x81\xc1\x00"), "parse_error"},
        {R("\xdf\xff\xff\xff\xff"), "parse_error"},
        {R("\xde\xff\xff"), "parse_error"},
        {R("\x81\xa1"
           "a\xdd\xff\xff\xff\xff\x00\x00"),
         "parse_error"},
        {R("\x81\xa1"
           "a\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91"
           "\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x00"),
         "parse_error"},
        {R("\x80"), "schema_error"}, /* an empty map */
    };
#undef R
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        stage *x = stage_open("xf_iot", 1, (const char *const[]){"every=1", NULL});
        obs_record rec = cases[i].r;
        obs_out in = {.records = &rec, .n_records = 1}, out;
        out_init(&out);
        transform(x, &in, &out, 0);
        static const char *const names[4] = {"readings", "parse_error", "schema_error",
                                             "out_of_range"};
        for (int c = 0; c < 4; c++)
            if (counter_value(x, names[c]) != (strcmp(names[c], cases[i].counter) == 0))
                fail_msg("case %zu: counter %s is %lu, want %s", i, names[c],
                         (unsigned long)counter_value(x, names[c]), cases[i].counter);
        if (strcmp(cases[i].counter, "readings") == 0) {
            iot_summary s;
            assert_int_equal(out.n_records, 1);
            memcpy(&s, out.records[0].data, sizeof s);
            assert_int_equal(s.device, 5);
            assert_int_equal(s.last_ts_ns, 1000);
            assert_int_equal(s.bat_min_mv, 3712);
            if (i == 0)
                assert_int_equal(s.temp_sum_e2, 2153);
            if (i == 2)
                assert_int_equal(s.temp_sum_e2, 2150);
            if (i == 3)
                assert_int_equal(s.temp_sum_e2, -2500);
        }
        stage_close(x);
        free(out.records), free(out.arena);
    }

    /* Random bytes, half of them behind a msgpack map header so that they
     * reach the msgpack path: every record on exactly one counter. */
    stage *x = stage_open("xf_iot", 1, NULL);
    static uint8_t buf[20000][80];
    static obs_record recs[20000];
    uint64_t seed = 7;
    for (uint32_t i = 0; i < 20000; i++) {
        for (uint32_t k = 0; k < 80; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            buf[i][k] = (uint8_t)(seed >> 56);
        }
        if (i & 1)
            buf[i][0] = (uint8_t)(0x80 | (buf[i][0] & 0x0f));
        recs[i] = (obs_record){.data = buf[i], .len = (uint32_t)(seed >> 20) % 81, .seq = i};
    }
    obs_out in = {.records = recs, .n_records = 20000}, out;
    out_init(&out);
    transform(x, &in, &out, 1);
    assert_int_equal(counter_value(x, "readings") + counter_value(x, "parse_error") +
                         counter_value(x, "schema_error") + counter_value(x, "out_of_range"),
                     20000);
    stage_close(x);
    free(out.records), free(out.arena);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_determinism),   cmocka_unit_test(test_iot_schema),
        cmocka_unit_test(test_iot_malformed), cmocka_unit_test(test_logs),
        cmocka_unit_test(test_market_news),   cmocka_unit_test(test_msgpack_schema),
        cmocka_unit_test(test_keys),          cmocka_unit_test(test_iot_msgpack_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
