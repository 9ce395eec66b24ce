/*
 * test_gen_file.c - gen_file replays a user's file record by record.
 *
 * The plugin is dlopen'ed from $OBS_PLUGIN_DIR and driven through the
 * minimal host of plugin_harness.h, on files this test writes into a fresh
 * temporary directory (its working directory, so the plugin gets short
 * relative paths). For each format (lines with CRLF, empty lines, NUL and
 * high bytes and a last line without newline; length-prefixed with be32,
 * le32 and varint around the varint's byte boundaries; msgpack objects of
 * every type, packed here with libmsgpack), every record must come back
 * byte for byte, in order, with the right count and key, whatever the
 * batch sizes, and the stream must end (OBS_DONE) in the call that sent the
 * last record. at_end: loop must cycle through the file for N passes; a
 * file much larger than the read buffer must come through whole while the
 * plugin allocates no more than the buffer; bad inputs must fail with the
 * record's byte offset in the log, at init (validate) or mid-run; a missing
 * file must fail at init naming the path and the errno text. The
 * engine-level test (a pipeline that ends by itself) is
 * test_gen_file_pipeline.c.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <msgpack.h>

#include <observatory/stage.h>

#include "gen_file_test_util.h"

/* ---------------------------------------------------------------- lines */

/* The lines file every lines test shares, with what strip_cr and
 * skip_empty make of it. */
static void lines_case(bytes *file, recs *strip, recs *keep_cr, recs *no_empty)
{
    static const char nul_line[] = "with\0nul\xff\xfe";
    char longline[3000];
    memset(longline, 'x', sizeof longline);
    struct {
        const char *text;
        size_t len;
        const char *eol;
    } lines[] = {
        {"alpha", 5, "\n"},
        {"", 0, "\n"},
        {"crlf line", 9, "\r\n"},
        {"", 0, "\r\n"},
        {nul_line, sizeof nul_line - 1, "\n"},
        {"two\r\rcarriage returns", 22, "\n"},
        {"  {\"json\": [1, 2]}  ", 20, "\n"},
        {longline, sizeof longline, "\n"},
        {"the last line has no newline\r", 29, ""},
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        size_t eol = strlen(lines[i].eol);
        put(file, lines[i].text, lines[i].len);
        put(file, lines[i].eol, eol);
        size_t len = lines[i].len;
        size_t cr = eol == 2 ? 1 : 0;
        /* keep_cr: the line with its '\r' (if the eol had one) */
        uint8_t tmp[4096];
        memcpy(tmp, lines[i].text, len);
        if (cr)
            tmp[len] = '\r';
        recs_add(keep_cr, tmp, len + cr);
        /* strip: one final '\r' dropped, also the last line's */
        size_t sl = len;
        if (!cr && sl > 0 && tmp[sl - 1] == '\r')
            sl--;
        recs_add(strip, tmp, sl);
        if (sl)
            recs_add(no_empty, tmp, sl);
    }
}

static void test_lines(void **state)
{
    (void)state;
    bytes file = {0};
    recs strip = {0}, keep_cr = {0}, no_empty = {0};
    lines_case(&file, &strip, &keep_cr, &no_empty);
    write_file("lines.txt", file.p, file.len);
    static const uint32_t batches[] = {1, 3, 9, 1000};
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++) {
        const char *params[] = {"file=lines.txt", NULL};
        stage *s = gf_must_open(params);
        assert_logged("9 records in");
        expect_stream(s, &strip, strip.n, batches[b], 1, OBS_DONE);
        assert_int_equal(counter_value(s, "passes"), 1);
        assert_int_equal(counter_value(s, "bad_records"), 0);
        gf_close(s);
    }
    const char *p_keep[] = {"file=lines.txt", "strip_cr=false", "validate=false", NULL};
    stage *s = gf_must_open(p_keep);
    expect_stream(s, &keep_cr, keep_cr.n, 4, 1, OBS_DONE);
    gf_close(s);
    const char *p_skip[] = {"file=lines.txt", "skip_empty=true", NULL};
    s = gf_must_open(p_skip);
    expect_stream(s, &no_empty, no_empty.n, 2, 1, OBS_DONE);
    gf_close(s);

    /* A final newline ends the last line; it starts no empty record. An
     * empty file is an empty stream. */
    write_file("two.txt", "a\nb\n", 4);
    const char *p_two[] = {"file=two.txt", NULL};
    s = gf_must_open(p_two);
    uint64_t n;
    assert_int_equal(drain(s, 5, &n), OBS_DONE);
    assert_int_equal(n, 2);
    gf_close(s);
    write_file("empty.txt", "", 0);
    const char *p_empty[] = {"file=empty.txt", NULL};
    s = gf_must_open(p_empty);
    assert_int_equal(drain(s, 5, &n), OBS_DONE);
    assert_int_equal(n, 0);
    gf_close(s);

    recs_free(&strip);
    recs_free(&keep_cr);
    recs_free(&no_empty);
    free(file.p);
}

/* --------------------------------------------------------------- length */

static void length_file(const char *name, const char *prefix, size_t n, size_t max_len, recs *r)
{
    static const uint32_t edges[] = {0, 1, 127, 128, 129, 16383, 16384, 70000};
    bytes b = {0};
    uint8_t *tmp = malloc(70000);
    assert_non_null(tmp);
    for (size_t i = 0; i < n; i++) {
        uint32_t len = i < 8 ? edges[i] : (uint32_t)(rnd() % (max_len + 1));
        if (len > max_len)
            len = (uint32_t)max_len;
        for (uint32_t k = 0; k < len; k++)
            tmp[k] = (uint8_t)rnd();
        put_prefix(&b, prefix, len);
        put(&b, tmp, len);
        recs_add(r, tmp, len);
    }
    write_file(name, b.p, b.len);
    free(b.p);
    free(tmp);
}

static void test_length(void **state)
{
    (void)state;
    static const char *const prefixes[] = {"be32", "le32", "varint"};
    for (size_t i = 0; i < 3; i++) {
        recs r = {0};
        length_file("len.bin", prefixes[i], 500, 70000, &r);
        char p_prefix[32];
        snprintf(p_prefix, sizeof p_prefix, "prefix=%s", prefixes[i]);
        const char *params[] = {"file=len.bin", "format=length", p_prefix, NULL};
        stage *s = gf_must_open(params);
        assert_logged("500 records in");
        expect_stream(s, &r, r.n, 7, 1, OBS_DONE);
        gf_close(s);
        recs_free(&r);
    }
}

/* -------------------------------------------------------------- msgpack */

static void test_msgpack(void **state)
{
    (void)state;
    recs r = {0};
    msgpack_file("objs.mp", 720, &r);
    /* Through plugin_harness's own opener this time (its host, its log). */
    const char *params[] = {"file=objs.mp", "format=msgpack", NULL};
    stage *s = stage_open("gen_file", 1, params);
    expect_stream(s, &r, r.n, 64, 1, OBS_DONE);
    gf_close(s);
    recs_free(&r);
}

/* ----------------------------------------------------------------- loop */

static void test_loop(void **state)
{
    (void)state;
    bytes file = {0};
    recs strip = {0}, keep_cr = {0}, no_empty = {0};
    lines_case(&file, &strip, &keep_cr, &no_empty);
    write_file("loop.txt", file.p, file.len);
    /* N passes, then the end, in the call that sends the last record. */
    const char *p3[] = {"file=loop.txt", "at_end=loop", "passes=3", NULL};
    stage *s = gf_must_open(p3);
    expect_stream(s, &strip, 3 * strip.n, 4, 1, OBS_DONE);
    assert_int_equal(counter_value(s, "passes"), 3);
    gf_close(s);
    /* No limit: a batch spans the end of the file and goes on at its start. */
    const char *p0[] = {"file=loop.txt", "at_end=loop", NULL};
    s = gf_must_open(p0);
    expect_stream(s, &strip, 50 * strip.n + 5, 64, 1, OBS_OK);
    assert_int_equal(counter_value(s, "passes"), 50);
    gf_close(s);
    /* msgpack and length loop the same way. */
    recs r = {0};
    msgpack_file("loop.mp", 37, &r);
    const char *pm[] = {"file=loop.mp", "format=msgpack", "at_end=loop", "passes=4", NULL};
    s = gf_must_open(pm);
    expect_stream(s, &r, 4 * r.n, 10, 1, OBS_DONE);
    gf_close(s);
    recs_free(&r);
    /* Looping over a file without records would never end. */
    write_file("blank.txt", "\n\n\r\n", 4);
    const char *pe[] = {"file=blank.txt", "at_end=loop", "skip_empty=true", NULL};
    int rc;
    s = gf_open(pe, &rc);
    assert_int_equal(rc, OBS_EINVAL);
    assert_logged("no records to loop over");
    free(s);
    const char *pe2[] = {"file=blank.txt", "at_end=loop", "skip_empty=true", "validate=false",
                         NULL};
    s = gf_must_open(pe2);
    uint64_t n;
    assert_int_equal(drain(s, 8, &n), OBS_EINVAL);
    assert_int_equal(n, 0);
    assert_logged("no records to loop over");
    gf_close(s);

    recs_free(&strip);
    recs_free(&keep_cr);
    recs_free(&no_empty);
    free(file.p);
}

/* ------------------------------------------------- larger than the buffer */

static void test_larger_than_buffer(void **state)
{
    (void)state;
    /* Each format: a file ~100 times the 8 KiB buffer, records up to
     * max_record, so many straddle the buffer's end. */
    for (int fmt = 0; fmt < 3; fmt++) {
        recs r = {0};
        bytes b = {0};
        uint8_t tmp[2048];
        const char *name = fmt == 0 ? "big.txt" : fmt == 1 ? "big.bin" : "big.mp";
        if (fmt == 2) {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            while (b.len < 800000) {
                msgpack_sbuffer_clear(&sb);
                uint64_t len = rnd() % 2000;
                msgpack_pack_bin_with_body(&pk, tmp, len);
                put(&b, sb.data, sb.size);
                recs_add(&r, sb.data, sb.size);
            }
            msgpack_sbuffer_destroy(&sb);
        } else {
            while (b.len < 800000) {
                uint32_t len = (uint32_t)(rnd() % 2049);
                for (uint32_t k = 0; k < len; k++)
                    tmp[k] = fmt == 0 ? (uint8_t)(' ' + rnd() % 90) : (uint8_t)rnd();
                if (fmt == 1)
                    put_prefix(&b, "varint", len);
                put(&b, tmp, len);
                if (fmt == 0)
                    put(&b, "\n", 1);
                recs_add(&r, tmp, len);
            }
        }
        write_file(name, b.p, b.len);
        char p_file[64], p_fmt[32];
        snprintf(p_file, sizeof p_file, "file=%s", name);
        snprintf(p_fmt, sizeof p_fmt, "format=%s",
                 fmt == 0   ? "lines"
                 : fmt == 1 ? "length"
                            : "msgpack");
        for (int validate = 0; validate < 2; validate++) {
            const char *params[] = {p_file,
                                    p_fmt,
                                    "max_record=2048",
                                    "buffer=8192",
                                    fmt == 1 ? "prefix=varint" : "at_end=stop",
                                    validate ? "validate=true" : "validate=false",
                                    NULL};
            alloc_live = alloc_peak = 0;
            stage *s = gf_must_open(params);
            expect_stream(s, &r, r.n, 100, 1, OBS_DONE);
            /* The memory of the plugin is its buffer and its instance. */
            if (alloc_peak > 8192 + 1024)
                fail_msg("%s: peak allocation %zu bytes for an 8192-byte buffer", name, alloc_peak);
            gf_close(s);
            assert_int_equal(alloc_live, 0);
        }
        free(b.p);
        recs_free(&r);
    }
}

/* ------------------------------------------------------------ bad input */

typedef struct bad_case {
    const char *what;
    const char *format, *prefix;
    const uint8_t *data;
    size_t len;
    uint64_t good; /* records before the bad one */
    const char *needle;
    const char *max_record; /* "max_record=N" or NULL */
} bad_case;

static void test_bad_input(void **state)
{
    (void)state;
    /* Two good records of 3 bytes (7 bytes each with a be32 prefix) first. */
    static const uint8_t len_trunc[] = {0, 0,   0,   3,   'a', 'b', 'c', 0,   0,   0,
                                        3, 'd', 'e', 'f', 0,   0,   0,   100, 'x', 'y'};
    static const uint8_t len_big[] = {0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 1, 0, 'x'};
    static const uint8_t len_short[] = {0, 0, 0, 1, 'a', 0, 0};
    static const uint8_t varint_long[] = {1,    'a',  0x80, 0x80, 0x80, 0x80,
                                          0x80, 0x80, 0x80, 0x80, 0x80, 0x02};
    /* {1: 2}, then a map whose second key is 0xc1 (byte offset 3 + 4). */
    static const uint8_t mp_c1[] = {0x81, 0x01, 0x02, 0x82, 0x01, 0x02, 0xc1, 0x03};
    static const uint8_t mp_trunc[] = {0x92, 0x01, 0x02, 0x93, 0x01, 0xa5, 'a', 'b'};
    static const uint8_t mp_huge[] = {0xc0, 0xdf, 0xff, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t line_long[] = "short\nthis line is longer than 16 bytes\nok\n";
    static const bad_case cases[] = {
        {"length: truncated last record", "length", "be32", len_trunc, sizeof len_trunc, 2,
         "truncated record at byte offset 14: file ends inside the record, 6 bytes after its "
         "start",
         NULL},
        {"length: above max_record", "length", "be32", len_big, sizeof len_big, 1,
         "record at byte offset 7: length above max_record (256 bytes, max_record 255)",
         "max_record=255"},
        {"length: truncated prefix", "length", "be32", len_short, sizeof len_short, 1,
         "truncated record at byte offset 5: file ends inside the length prefix", NULL},
        {"varint: over 64 bits", "length", "varint", varint_long, sizeof varint_long, 1,
         "record at byte offset 2: length varint longer than 64 bits at byte offset 11", NULL},
        {"msgpack: 0xc1", "msgpack", NULL, mp_c1, sizeof mp_c1, 1,
         "record at byte offset 3: byte 0xc1 (never used in MessagePack) at byte offset 6", NULL},
        {"msgpack: truncated", "msgpack", NULL, mp_trunc, sizeof mp_trunc, 1,
         "truncated record at byte offset 3: file ends inside the object, 5 bytes after its "
         "start",
         NULL},
        {"msgpack: 4 billion entries", "msgpack", NULL, mp_huge, sizeof mp_huge, 1,
         "record at byte offset 1: object longer than max_record", NULL},
        {"lines: above max_record", "lines", NULL, line_long, sizeof line_long - 1, 1,
         "record at byte offset 6: line longer than max_record", "max_record=16"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case *c = &cases[i];
        print_message("%s\n", c->what);
        write_file("bad.dat", c->data, c->len);
        char p_fmt[32], p_prefix[32];
        snprintf(p_fmt, sizeof p_fmt, "format=%s", c->format);
        snprintf(p_prefix, sizeof p_prefix, "prefix=%s", c->prefix ? c->prefix : "");
        const char *mr = c->max_record ? c->max_record : "max_record=1048576";
        /* validate: init fails, naming the offset. */
        const char *p_init[] = {"file=bad.dat", p_fmt, mr, c->prefix ? p_prefix : NULL, NULL};
        int rc;
        stage *s = gf_open(p_init, &rc);
        assert_int_equal(rc, OBS_EINVAL);
        assert_logged(c->needle);
        assert_logged("'bad.dat'");
        free(s);
        /* Without: the good records are sent, then the stream fails the same way. */
        const char *p_run[] = {
            "file=bad.dat", p_fmt, mr, "validate=false", c->prefix ? p_prefix : NULL, NULL};
        s = gf_must_open(p_run);
        uint64_t n;
        assert_int_equal(drain(s, 1, &n), OBS_EINVAL);
        assert_int_equal(n, c->good);
        assert_logged(c->needle);
        assert_int_equal(counter_value(s, "bad_records"), 1);
        gf_close(s);
    }
}

/* ----------------------------------------------------- opening, settings */

static void test_open_errors(void **state)
{
    (void)state;
    int rc;
    const char *missing[] = {"file=no-such-file.txt", NULL};
    stage *s = gf_open(missing, &rc);
    assert_int_equal(rc, OBS_ENOENT);
    assert_logged("cannot open 'no-such-file.txt' (relative to the working directory '");
    assert_logged("No such file or directory");
    free(s);

    assert_int_equal(mkdir("adir", 0700), 0);
    const char *dir[] = {"file=adir", NULL};
    s = gf_open(dir, &rc);
    assert_int_equal(rc, OBS_EINVAL);
    assert_logged("'adir' (relative to the working directory '");
    assert_logged("is a directory");
    free(s);

    write_file("ok.txt", "a\n", 2);
    static const struct {
        const char *params[5];
        const char *needle;
    } bad[] = {
        {{"format=csv"}, "format must be lines, length or msgpack"},
        {{"at_end=again"}, "at_end must be stop or loop"},
        {{"format=length", "prefix=be64"}, "prefix must be be32, le32 or varint"},
        {{"prefix=le32"}, "prefix applies to format length only"},
        {{"format=msgpack", "strip_cr=false"}, "strip_cr and skip_empty apply to format lines"},
        {{"key=field"}, "key field needs key_field"},
        {{"key_field=sym"}, "key_field is used only with key: field"},
        {{"format=length", "key=field", "key_field=x"}, "key field needs format lines"},
        {{"passes=2"}, "passes above 1 needs at_end: loop"},
        {{"max_record=5000", "buffer=5000"}, "buffer must be at least max_record + 16 bytes"},
        {{"key=hash"}, "key must be none, record or field"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *params[7] = {"file=ok.txt"};
        for (int k = 0; k < 5 && bad[i].params[k]; k++)
            params[k + 1] = bad[i].params[k];
        s = gf_open(params, &rc);
        assert_int_equal(rc, OBS_EINVAL);
        assert_logged(bad[i].needle);
        free(s);
    }
}

/* A FIFO is read once, as it comes; it cannot loop. */
static void *fifo_writer(void *arg)
{
    const bytes *b = arg;
    int fd = open("pipe", O_WRONLY);
    if (fd < 0)
        return NULL;
    for (size_t off = 0; off < b->len;) {
        size_t n = b->len - off < 1000 ? b->len - off : 1000; /* small writes: short reads */
        ssize_t w = write(fd, b->p + off, n);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(fd);
    return NULL;
}

static void test_fifo(void **state)
{
    (void)state;
    assert_int_equal(mkfifo("pipe", 0600), 0);
    int rc;
    const char *loop[] = {"file=pipe", "at_end=loop", NULL};
    /* Opening a FIFO for reading waits for a writer: give it one that
     * writes nothing. */
    bytes none = {0};
    pthread_t t;
    pthread_create(&t, NULL, fifo_writer, &none);
    stage *s = gf_open(loop, &rc);
    pthread_join(t, NULL);
    assert_int_equal(rc, OBS_EINVAL);
    assert_logged("at_end: loop needs one that can be read again");
    free(s);

    recs r = {0};
    bytes b = {0};
    for (int i = 0; i < 3000; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "{\"n\":%d}", i);
        put(&b, line, (size_t)n);
        put(&b, "\n", 1);
        recs_add(&r, line, (size_t)n);
    }
    pthread_create(&t, NULL, fifo_writer, &b);
    const char *once[] = {"file=pipe", NULL};
    s = gf_must_open(once);
    assert_logged("not validated at init");
    /* The end is found by the next call: the plugin does not wait for the
     * writer while a batch is ready. */
    expect_stream(s, &r, r.n, 128, 1, OBS_OK);
    uint64_t more;
    assert_int_equal(drain(s, 16, &more), OBS_DONE);
    assert_int_equal(more, 0);
    pthread_join(t, NULL);
    gf_close(s);
    recs_free(&r);
    free(b.p);
}

/* ------------------------------------------------------------------ keys */

static void test_keys(void **state)
{
    (void)state;
    static const char jl[] = "{\"sym\":\"AAPL\",\"px\":1}\n"
                             "{ \"px\" : {\"sym\":\"NOT\"} , \"sym\" : \"MSFT\" }\n"
                             "{\"a\":\"x\\\"sym\\\":\",\"sym\":12.5}\n"
                             "{\"nosym\":1}\n"
                             "[\"sym\",\"AAPL\"]\n"
                             "{\"sym\":\"unterminated\n"
                             "{\"sym\":[1,{\"a\":\"]\"}],\"x\":0}\n";
    write_file("keys.jsonl", jl, sizeof jl - 1);
    const char *params[] = {"file=keys.jsonl", "key=field", "key_field=sym", NULL};
    stage *s = gf_must_open(params);
    obs_out o;
    out_init(&o);
    uint64_t t[32] = {0};
    obs_gen_request req = {.n_records = 7, .t_intended_ns = t};
    assert_int_equal(s->desc->generate(s->instance, &req, &o), OBS_DONE);
    assert_int_equal(o.n_records, 7);
    assert_int_equal(o.records[0].key, obs_key_hash("AAPL", 4));
    assert_int_equal(o.records[1].key, obs_key_hash("MSFT", 4)); /* top level, not nested */
    assert_int_equal(o.records[2].key, obs_key_hash("12.5", 4)); /* the number's text */
    assert_int_equal(o.records[3].key, 0);
    assert_int_equal(o.records[4].key, 0); /* not an object */
    assert_int_equal(o.records[5].key, 0); /* the string never ends */
    assert_int_equal(o.records[6].key, obs_key_hash("[1,{\"a\":\"]\"}]", 13));
    assert_int_equal(counter_value(s, "no_key"), 3);
    gf_close(s);

    const char *none[] = {"file=keys.jsonl", "key=none", NULL};
    s = gf_must_open(none);
    out_reset(&o);
    assert_int_equal(s->desc->generate(s->instance, &req, &o), OBS_DONE);
    for (uint32_t i = 0; i < o.n_records; i++)
        assert_int_equal(o.records[i].key, 0);
    gf_close(s);

    /* msgpack: the entry of the top-level map whose key is the str "sym";
     * a str or bin value's payload, any other value's encoding. */
    recs r = {0};
    msgpack_file("keys.mp", 18, &r);
    const char *mp[] = {"file=keys.mp", "format=msgpack", "key=field", "key_field=sym", NULL};
    s = gf_must_open(mp);
    out_reset(&o);
    req.n_records = 18;
    assert_int_equal(s->desc->generate(s->instance, &req, &o), OBS_DONE);
    assert_int_equal(o.n_records, 18);
    msgpack_zone z;
    msgpack_zone_init(&z, 4096);
    for (uint32_t i = 0; i < 18; i++) {
        /* The expectation, from libmsgpack's decoding of the record. */
        msgpack_object obj;
        size_t off = 0;
        uint32_t want = 0;
        if (i == 15) { /* 100 levels deep: past libmsgpack's limit of 32, and no map */
            assert_int_equal(o.records[i].key, 0);
            continue;
        }
        assert_int_equal(
            msgpack_unpack((const char *)o.records[i].data, o.records[i].len, &off, &z, &obj),
            MSGPACK_UNPACK_SUCCESS);
        for (uint32_t k = 0; obj.type == MSGPACK_OBJECT_MAP && k < obj.via.map.size; k++) {
            const msgpack_object *key = &obj.via.map.ptr[k].key, *v = &obj.via.map.ptr[k].val;
            if (key->type == MSGPACK_OBJECT_STR && key->via.str.size == 3 &&
                memcmp(key->via.str.ptr, "sym", 3) == 0) {
                assert_int_equal(v->type, MSGPACK_OBJECT_STR);
                want = obs_key_hash(v->via.str.ptr, v->via.str.size);
                break;
            }
        }
        assert_int_equal(want != 0, i == 12 || i == 14);
        assert_int_equal(o.records[i].key, want);
        msgpack_zone_clear(&z);
    }
    msgpack_zone_destroy(&z);
    assert_int_equal(counter_value(s, "no_key"), 16);
    gf_close(s);
    recs_free(&r);
    free(o.records);
    free(o.arena);
}

/* ------------------------------------------------------------------ main */

static char tmp_dir[4096];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/obs-gen-file.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmp_dir) || chdir(tmp_dir) != 0) {
        perror("temporary directory");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_length),
        cmocka_unit_test(test_msgpack),
        cmocka_unit_test(test_loop),
        cmocka_unit_test(test_larger_than_buffer),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_keys),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (chdir("/") == 0)
        nftw(tmp_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed;
}
