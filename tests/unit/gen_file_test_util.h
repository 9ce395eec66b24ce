/*
 * gen_file_test_util.h - what test_gen_file.c uses to drive gen_file (private
 * to tests/unit/): gen_file opened through plugin_harness.h's parameter
 * handling but with init's code returned, the log captured and the
 * allocations counted; the expected records of a file and the checks of a
 * generated stream against them; builders of length-prefixed and msgpack
 * files. Include after cmocka.h.
 */
#ifndef OBS_GEN_FILE_TEST_UTIL_H
#define OBS_GEN_FILE_TEST_UTIL_H

#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include <observatory/stage.h>

#include "plugin_harness.h"

/* What the plugin logged since the last log_reset(). */
static char log_text[16384];

static void capture_log(const obs_host *h, int level, const char *fmt, ...)
{
    (void)h;
    (void)level;
    size_t start = strlen(log_text);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(log_text + start, sizeof log_text - start, fmt, ap);
    va_end(ap);
    size_t used = strlen(log_text);
    if (used + 1 < sizeof log_text) {
        log_text[used] = '\n';
        log_text[used + 1] = '\0';
    }
    fprintf(stderr, "  [gen_file log] %s", log_text + start);
}

static void log_reset(void)
{
    log_text[0] = '\0';
}

static void assert_logged(const char *needle)
{
    if (!strstr(log_text, needle))
        fail_msg("expected \"%s\" in the log:\n%s", needle, log_text);
}

/* Bytes the plugin holds through host->alloc (the accounting of the test). */
static size_t alloc_live, alloc_peak;

static void *counting_alloc(const obs_host *h, size_t size)
{
    (void)h;
    size_t *p = malloc(sizeof(size_t) * 2 + size);
    if (!p)
        return NULL;
    p[0] = size;
    alloc_live += size;
    if (alloc_live > alloc_peak)
        alloc_peak = alloc_live;
    return p + 2;
}

static void counting_free(const obs_host *h, void *q)
{
    (void)h;
    if (!q)
        return;
    size_t *p = (size_t *)q - 2;
    alloc_live -= p[0];
    free(p);
}

/* Opens gen_file with `overrides` ("name=value", NULL terminated) as
 * plugin_harness's stage_open does, but returns init's code instead of
 * failing, with the log captured and allocations counted. */
static stage *gf_open(const char *const *overrides, int *rc)
{
    stage *s = stage_load("gen_file", 1, overrides);
    s->host.batch_size = 256;
    s->host.log = capture_log;
    s->host.alloc = counting_alloc;
    s->host.free = counting_free;
    log_reset();
    *rc = s->desc->init(&s->host, &s->params, &s->instance);
    return s;
}

static stage *gf_must_open(const char *const *overrides)
{
    int rc;
    stage *s = gf_open(overrides, &rc);
    if (rc != OBS_OK)
        fail_msg("init: %d\n%s", rc, log_text);
    return s;
}

/* gf_open's stages close as plugin_harness's do. */
#define gf_close stage_close

/* Expected records: their bytes and lengths. */
typedef struct recs {
    uint8_t **data;
    size_t *len;
    size_t n, cap;
} recs;

static void recs_add(recs *r, const void *p, size_t len)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->data = realloc(r->data, r->cap * sizeof *r->data);
        r->len = realloc(r->len, r->cap * sizeof *r->len);
        assert_true(r->data && r->len);
    }
    r->data[r->n] = malloc(len ? len : 1);
    assert_non_null(r->data[r->n]);
    memcpy(r->data[r->n], p, len);
    r->len[r->n++] = len;
}

static void recs_free(recs *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->data[i]);
    free(r->data);
    free(r->len);
    *r = (recs){0};
}

static void write_file(const char *name, const void *p, size_t len)
{
    FILE *f = fopen(name, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A growable byte buffer for building file contents. */
typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
} bytes;

static void put(bytes *b, const void *p, size_t len)
{
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, p, len);
    b->len += len;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/*
 * Generates `total` records from s in batches of `batch` (intended times
 * 1000 + i) and checks each against want->data[(i) % want->n]: bytes, seq,
 * intended time and, with `key_record`, the key obs_key_hash of the bytes.
 * `last_rc` is what the call that emits the last record must return
 * (OBS_DONE when the stream ends there); every earlier call must return
 * OBS_OK with all it was asked for.
 */
static void expect_stream(stage *s, const recs *want, uint64_t total, uint32_t batch,
                          int key_record, int last_rc)
{
    static uint64_t t[4096];
    assert_true(batch <= 4096);
    obs_out o;
    out_init(&o);
    uint64_t got = 0;
    while (got < total) {
        uint32_t n = total - got < batch ? (uint32_t)(total - got) : batch;
        for (uint32_t i = 0; i < n; i++)
            t[i] = 1000 + got + i;
        obs_gen_request req = {.n_records = n, .first_seq = got, .t_intended_ns = t};
        out_reset(&o);
        int rc = s->desc->generate(s->instance, &req, &o);
        int last = got + n == total;
        if (rc != (last ? last_rc : OBS_OK))
            fail_msg("generate at record %llu: %d, expected %d\n%s", (unsigned long long)got, rc,
                     last ? last_rc : OBS_OK, log_text);
        assert_int_equal(o.n_records, n);
        for (uint32_t i = 0; i < n; i++) {
            const obs_record *r = &o.records[i];
            size_t k = (size_t)((got + i) % want->n);
            if (r->len != want->len[k] || memcmp(r->data, want->data[k], r->len) != 0)
                fail_msg("record %llu (file record %zu): %u bytes, expected %zu",
                         (unsigned long long)(got + i), k, r->len, want->len[k]);
            assert_int_equal(r->seq, got + i);
            assert_int_equal(r->t_intended_ns, 1000 + got + i);
            if (key_record)
                assert_int_equal(r->key, obs_key_hash(want->data[k], want->len[k]));
        }
        got += n;
    }
    if (last_rc == OBS_DONE) {
        /* Once ended, the stream stays ended. */
        obs_gen_request req = {.n_records = 1, .first_seq = got, .t_intended_ns = t};
        out_reset(&o);
        assert_int_equal(s->desc->generate(s->instance, &req, &o), OBS_DONE);
        assert_int_equal(o.n_records, 0);
    }
    free(o.records);
    free(o.arena);
}

/* Generates until the stream ends or fails; returns the last code and the
 * records emitted in *n. */
static int drain(stage *s, uint32_t batch, uint64_t *n)
{
    static uint64_t t[4096];
    obs_out o;
    out_init(&o);
    int rc = OBS_OK;
    *n = 0;
    for (int calls = 0; rc == OBS_OK && calls < 1000000; calls++) {
        for (uint32_t i = 0; i < batch; i++)
            t[i] = *n + i;
        obs_gen_request req = {.n_records = batch, .first_seq = *n, .t_intended_ns = t};
        out_reset(&o);
        rc = s->desc->generate(s->instance, &req, &o);
        *n += o.n_records;
    }
    free(o.records);
    free(o.arena);
    return rc;
}

static void put_prefix(bytes *b, const char *prefix, uint32_t len)
{
    uint8_t h[10];
    size_t n = 0;
    if (strcmp(prefix, "be32") == 0) {
        h[0] = (uint8_t)(len >> 24), h[1] = (uint8_t)(len >> 16), h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        n = 4;
    } else if (strcmp(prefix, "le32") == 0) {
        h[3] = (uint8_t)(len >> 24), h[2] = (uint8_t)(len >> 16), h[1] = (uint8_t)(len >> 8);
        h[0] = (uint8_t)len;
        n = 4;
    } else {
        do {
            h[n++] = (uint8_t)((len & 0x7f) | (len > 0x7f ? 0x80 : 0));
            len >>= 7;
        } while (len);
    }
    put(b, h, n);
}

/* Packs one object of kind k (0..17) into pk. */
static void pack_one(msgpack_packer *pk, int k, uint64_t v)
{
    static uint8_t blob[70000];
    char str[300];
    size_t sl = (size_t)snprintf(str, sizeof str, "s%llu", (unsigned long long)v);
    switch (k) {
    case 0: msgpack_pack_uint64(pk, v); break;
    case 1: msgpack_pack_int64(pk, -(int64_t)(v % 1000000000)); break;
    case 2: msgpack_pack_nil(pk); break;
    case 3: msgpack_pack_true(pk); break;
    case 4: msgpack_pack_double(pk, (double)v / 3); break;
    case 5: msgpack_pack_float(pk, (float)v); break;
    case 6: msgpack_pack_str_with_body(pk, str, sl); break;
    case 7: /* str 8, 16 */
        memset(blob, 'a', 300);
        msgpack_pack_str_with_body(pk, blob, 40 + v % 260);
        break;
    case 8: msgpack_pack_bin_with_body(pk, blob, v % 300); break;
    case 9: msgpack_pack_bin_with_body(pk, blob, 70000); break;             /* bin 32 */
    case 10: msgpack_pack_ext_with_body(pk, blob, 1u << (v % 5), 7); break; /* fixext */
    case 11: msgpack_pack_ext_with_body(pk, blob, 3 + v % 300, -3); break;  /* ext 8, 16 */
    case 12: /* a map of every scalar, then nested containers */
        msgpack_pack_map(pk, 4);
        msgpack_pack_str_with_body(pk, "id", 2);
        msgpack_pack_uint64(pk, v);
        msgpack_pack_str_with_body(pk, "sym", 3);
        msgpack_pack_str_with_body(pk, str, sl);
        msgpack_pack_str_with_body(pk, "arr", 3);
        msgpack_pack_array(pk, 3);
        msgpack_pack_int8(pk, -5);
        msgpack_pack_array(pk, 0);
        msgpack_pack_map(pk, 1);
        msgpack_pack_nil(pk);
        msgpack_pack_false(pk);
        msgpack_pack_str_with_body(pk, "pad", 3);
        msgpack_pack_bin_with_body(pk, blob, v % 20);
        break;
    case 13: /* array 16 */
        msgpack_pack_array(pk, 20);
        for (int i = 0; i < 20; i++)
            msgpack_pack_uint16(pk, (uint16_t)(v + (uint64_t)i));
        break;
    case 14: /* map 16 with a key field that is not first */
        msgpack_pack_map(pk, 17);
        for (int i = 0; i < 16; i++) {
            msgpack_pack_uint8(pk, (uint8_t)i);
            msgpack_pack_int32(pk, -i * 100000);
        }
        msgpack_pack_str_with_body(pk, "sym", 3);
        msgpack_pack_str_with_body(pk, str, sl);
        break;
    case 15: /* deep nesting: an array in an array ... 100 levels */
        for (int i = 0; i < 100; i++)
            msgpack_pack_array(pk, 1);
        msgpack_pack_uint32(pk, (uint32_t)v);
        break;
    case 16: msgpack_pack_map(pk, 0); break;
    default: msgpack_pack_str_with_body(pk, "", 0); break;
    }
}

/* A stream of n objects (every kind in turn) into `name`; their bytes into r. */
static void msgpack_file(const char *name, size_t n, recs *r)
{
    bytes b = {0};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (size_t i = 0; i < n; i++) {
        msgpack_sbuffer_clear(&sb);
        pack_one(&pk, (int)(i % 18), rnd() >> (i % 64));
        put(&b, sb.data, sb.size);
        recs_add(r, sb.data, sb.size);
    }
    msgpack_sbuffer_destroy(&sb);
    write_file(name, b.p, b.len);
    free(b.p);
}

#endif /* OBS_GEN_FILE_TEST_UTIL_H */
