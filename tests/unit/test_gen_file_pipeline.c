/*
 * test_gen_file_pipeline.c - gen_file in a running pipeline: the engine
 * loads it like any plugin, the run ends by itself when the file does
 * (OBS_DONE) under `load: max` and under a `replay` load, every record
 * arrives exactly once (sink_seqcheck) with the file's bytes (byte counts),
 * at_end: loop gives N passes, a bad record mid-file fails the run after the
 * records before it, and a missing file fails the pipeline at init. The
 * record-by-record checks are in test_gen_file.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "engine/pipeline.h"
#include "stage_test_util.h"

static char dir[256];

/* dir/name, valid until the next call (one per expression). */
static const char *in_dir(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

/* Writes n lines "record <i> ..." of 40 to 160 bytes; returns their bytes
 * without newlines. */
static uint64_t write_lines(const char *name, int n)
{
    FILE *f = fopen(in_dir(name), "w");
    assert_non_null(f);
    uint64_t bytes = 0;
    for (int i = 0; i < n; i++) {
        int len = fprintf(f, "{\"record\":%d,\"pad\":\"%.*s\"}", i, 20 + (i * 37) % 121,
                          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                          "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        assert_true(len > 0);
        bytes += (uint64_t)len;
        fputc('\n', f);
    }
    assert_int_equal(fclose(f), 0);
    return bytes;
}

/* Runs `body` (load and stages) to its end; asserts that the generator sent
 * `records` records of `bytes` bytes in all, each reaching the seqcheck sink
 * exactly once, and that the run ended by itself with code `want_rc`. */
static void run_expect(const char *body, uint64_t records, uint64_t bytes, int want_rc)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml, "batch_size: 64\nrun: {duration: 0}\n%s", body);
    obs_config *cfg = stage_test_config(yaml);
    pipeline *p = stage_test_pipeline(cfg);
    /* duration 0: only the end of the stream can end this run. */
    assert_int_equal(pipeline_run(p, NULL, NULL), want_rc);
    stage *gen = &p->stages[0], *sink = &p->stages[p->n_stages - 1];
    assert_int_equal(gen->stats.records_out, records);
    assert_int_equal(gen->stats.bytes_out, bytes);
    assert_int_equal(sink->stats.records_in, records);
    assert_int_equal(sink->stats.bytes_in, bytes);
    assert_int_equal(counter(sink, "seq_records"), records);
    assert_int_equal(counter(sink, "seq_gaps"), 0);
    assert_int_equal(counter(sink, "seq_dups"), 0);
    assert_int_equal(counter(gen, "bad_records"), want_rc == 0 ? 0 : 1);
    pipeline_destroy(p);
    config_free(cfg);
}

static void test_ends_with_the_file(void **state)
{
    (void)state;
    uint64_t bytes = write_lines("a.jsonl", 5000);
    char body[2048];
    snprintf(body, sizeof body,
             "load: [{shape: max}]\n"
             "stages:\n"
             "  - {name: gen, plugin: gen_file, params: {file: %s}}\n"
             "  - {name: check, plugin: sink_seqcheck}\n",
             in_dir("a.jsonl"));
    run_expect(body, 5000, bytes, 0);
}

static void test_loop_passes(void **state)
{
    (void)state;
    uint64_t bytes = write_lines("b.jsonl", 777);
    char body[2048];
    snprintf(body, sizeof body,
             "load: [{shape: max}]\n"
             "stages:\n"
             "  - {name: gen, plugin: gen_file, params: {file: %s, at_end: loop, passes: 3}}\n"
             "  - {name: pass, plugin: xf_pass}\n"
             "  - {name: check, plugin: sink_seqcheck}\n",
             in_dir("b.jsonl"));
    run_expect(body, 3 * 777, 3 * bytes, 0);
}

/* The timing from `replay`, the bytes from gen_file: a timestamp per record,
 * 2000 records in 0.2 s; the load and the file end together. */
static void test_replay_load(void **state)
{
    (void)state;
    uint64_t bytes = write_lines("c.jsonl", 2000);
    FILE *f = fopen(in_dir("times.txt"), "w");
    assert_non_null(f);
    for (int i = 0; i < 2000; i++)
        fprintf(f, "%dus\n", i * 100);
    assert_int_equal(fclose(f), 0);
    char times[512], body[2048];
    snprintf(times, sizeof times, "%s", in_dir("times.txt"));
    snprintf(body, sizeof body,
             "load: [{shape: replay, file: %s}]\n"
             "stages:\n"
             "  - {name: gen, plugin: gen_file, params: {file: %s, key: none}}\n"
             "  - {name: check, plugin: sink_seqcheck}\n",
             times, in_dir("c.jsonl"));
    run_expect(body, 2000, bytes, 0);
}

/* A bad record mid-file, found during the run: what came before it is
 * delivered, then the run fails. */
static void test_bad_record_fails_run(void **state)
{
    (void)state;
    static const uint8_t data[] = {0x93, 0x01, 0x02, 0x03, 0xa1, 'x', 0xc1, 0x00};
    FILE *f = fopen(in_dir("bad.mp"), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, sizeof data, f), sizeof data);
    assert_int_equal(fclose(f), 0);
    char body[2048];
    snprintf(body, sizeof body,
             "load: [{shape: max}]\n"
             "stages:\n"
             "  - {name: gen, plugin: gen_file, params: {file: %s, format: msgpack, "
             "validate: false}}\n"
             "  - {name: check, plugin: sink_seqcheck}\n",
             in_dir("bad.mp"));
    run_expect(body, 2, 6, OBS_EPLUGIN);
}

static void test_missing_file_fails_init(void **state)
{
    (void)state;
    char body[2048];
    snprintf(body, sizeof body,
             "stages:\n"
             "  - {name: gen, plugin: gen_file, params: {file: %s}}\n"
             "  - {name: check, plugin: sink_seqcheck}\n",
             in_dir("no-such.jsonl"));
    obs_config *cfg = stage_test_config(body);
    pipeline *p = NULL;
    char err[2048] = "";
    assert_true(pipeline_create(cfg, NULL, 0, &p, err, sizeof err) < 0);
    assert_null(p);
    if (!strstr(err, "stage 'gen'") || !strstr(err, "init failed") || !strstr(err, "no such file"))
        fail_msg("unexpected: %s", err);
    config_free(cfg);
}

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
    snprintf(dir, sizeof dir, "%s/obs-gen-file-pl.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ends_with_the_file),
        cmocka_unit_test(test_loop_passes),
        cmocka_unit_test(test_replay_load),
        cmocka_unit_test(test_bad_record_fails_run),
        cmocka_unit_test(test_missing_file_fails_init),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed;
}
