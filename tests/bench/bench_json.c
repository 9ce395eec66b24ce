/*
 * bench_json.c - obs-bench-json: xf_json_jansson against xf_json_fast on the
 * same input, and xf_json_serde (the Rust parser) beside them when its .so
 * is in the plugin directory.
 *
 * The input is generated once: `--ticks` JSON ticks from gen_market (its
 * default parameters, a fixed seed), copied into one buffer. The parsers
 * are then loaded from the plugin directory as hostd loads them (plugin_open,
 * parameter check, a host services table from host_ctx_init) and their
 * process() callback is called directly, single-threaded, on consecutive
 * batches of `--batch` records of that buffer, writing into a host batch
 * (core/engine/pool.h) that is reset after every call, as a stage thread would do.
 * No rings, no other threads: this measures the parsers, not the pipeline.
 *
 * Before timing, one untimed pass of each parser over the whole input checks
 * that they agree: same number of output records, same output bytes (FNV-1a
 * over every record's seq and bytes), same number of records counted as
 * errors (each parser against jansson). Then `--runs` timed passes of
 * each, in forward order on even runs and backward on odd ones (A B C,
 * C B A, ...), so that frequency or cache drift does not favour one side. Printed per parser:
 * median wall ns per record over the runs, its [min..max], median thread-CPU ns per record (a wall
 * figure well above the CPU one means the machine was busy), records/s and input MB/s derived from
 * the median, each parser's speed relative to jansson and to fast (ratios of the medians), and the
 * target speedup fast/jansson with the median of the per-run ratios.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "config/config.h"
#include "engine/host.h"
#include "engine/plugin.h"
#include "engine/pool.h"

#ifndef OBS_BENCH_PLUGIN_DIR
#define OBS_BENCH_PLUGIN_DIR "plugins"
#endif

#define MAX_RUNS 101
#define TARGET_SPEEDUP 10.0
#define REFERENCE_JANSSON_NS 3500.0 /* "jansson alone takes ~3.5 us per 91-byte tick here" */

typedef struct options {
    uint32_t ticks, batch, runs;
    uint64_t seed;
    const char *plugin_dir;
} options;

/* One loaded, initialised stage instance. */
typedef struct instance {
    const char *label;
    const obs_module *module;
    const obs_stage_desc *desc;
    cfg_param_values params;
    obs_params view;
    host_ctx host;
    void *inst;
    int initialised;
} instance;

/* The input: every tick, in one buffer. */
typedef struct input {
    obs_record *records;
    uint32_t n;
    uint8_t *bytes;
    uint64_t n_bytes;
} input;

/* What a pass produced, for the agreement check. */
typedef struct pass_result {
    uint64_t records_out, hash, errors;
} pass_result;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: obs-bench-json [options]\n"
            "  --ticks N        ticks generated once and parsed by both (default 200000)\n"
            "  --batch N        records per process() call (default 256)\n"
            "  --runs N         timed passes per parser; medians are printed (default 5)\n"
            "  --seed N         gen_market seed (default 1)\n"
            "  --plugin-dir DIR where gen_market/xf_json_jansson/xf_json_fast live\n"
            "                   (default $OBS_PLUGIN_DIR, else %s)\n",
            OBS_BENCH_PLUGIN_DIR);
}

static int parse_args(int argc, char **argv, options *o)
{
    static const struct option longs[] = {
        {"ticks", required_argument, 0, 't'},
        {"batch", required_argument, 0, 'b'},
        {"runs", required_argument, 0, 'r'},
        {"seed", required_argument, 0, 's'},
        {"plugin-dir", required_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    *o = (options){.ticks = 200000, .batch = 256, .runs = 5, .seed = 1};
    const char *env = getenv("OBS_PLUGIN_DIR");
    o->plugin_dir = env && *env ? env : OBS_BENCH_PLUGIN_DIR;
    int c;
    uint32_t v[1];
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        if (c == 'p') {
            o->plugin_dir = optarg;
            continue;
        }
        if (c == 'h') {
            usage(stdout);
            exit(0);
        }
        if (c == '?' || bench_parse_list(optarg, v, 1) != 1) {
            if (c != '?')
                fprintf(stderr, "obs-bench-json: invalid value '%s'\n", optarg);
            usage(stderr);
            return -1;
        }
        switch (c) {
        case 't': o->ticks = v[0]; break;
        case 'b': o->batch = v[0] > 65536 ? 65536 : v[0]; break;
        case 'r': o->runs = v[0] > MAX_RUNS ? MAX_RUNS : v[0]; break;
        case 's': o->seed = v[0]; break;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "obs-bench-json: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

/* Opens, checks and initialises stage `index` of cfg as `kind`. */
static int instance_open(instance *in, const obs_config *cfg, size_t index, obs_kind kind,
                         char *const *dirs, size_t n_dirs, uint64_t seed, uint32_t batch)
{
    char err[2048];
    const cfg_stage *st = &cfg->stages[index];
    plugin_request req = {.stage_name = st->name,
                          .plugin = st->plugin,
                          .kind = kind,
                          .dirs = (const char *const *)dirs,
                          .n_dirs = n_dirs};
    int rc = plugin_open(&req, &in->module, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "obs-bench-json: %s\n", err);
        return rc;
    }
    in->desc = in->module->desc;
    rc = config_check_params(cfg, index, in->desc, &in->params, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "obs-bench-json: %s\n", err);
        return rc;
    }
    in->view = (obs_params){.values = in->params.values, .n_values = in->params.n_values};
    host_ctx_init(&in->host, st->name, in->module->path, seed, batch, host_wall_offset_ns());
    rc = in->desc->init(&in->host.api, &in->view, &in->inst);
    if (rc != 0) {
        fprintf(stderr, "obs-bench-json: stage '%s': plugin '%s': init failed: %s (%d)\n", st->name,
                in->desc->name, obs_strerror(rc), rc);
        return rc < 0 ? rc : OBS_EPLUGIN;
    }
    in->initialised = 1;
    return 0;
}

static void instance_close(instance *in)
{
    if (in->initialised && in->desc->fini)
        in->desc->fini(in->inst);
    in->initialised = 0;
    config_param_values_free(&in->params);
}

/* Empties a host batch for the next callback, as the pool does on recycling. */
static void out_reset(obs_out *o)
{
    o->n_records = 0;
    o->arena_used = 0;
    o->n_passed = 0;
}

/* Generates o->ticks ticks with gen_market into `in`. */
static int input_generate(instance *gen, batch *b, const options *o, input *in)
{
    uint64_t *times = malloc(o->batch * sizeof *times);
    uint64_t cap_bytes = (uint64_t)o->ticks * 128;
    in->records = malloc((size_t)o->ticks * sizeof *in->records);
    in->bytes = malloc(cap_bytes);
    uint64_t *offsets = malloc((size_t)o->ticks * sizeof *offsets);
    int rc = -1;
    if (!times || !in->records || !in->bytes || !offsets)
        goto out;
    uint64_t t0 = 1000000000u;
    while (in->n < o->ticks) {
        uint32_t n = o->ticks - in->n < o->batch ? o->ticks - in->n : o->batch;
        for (uint32_t i = 0; i < n; i++)
            times[i] = t0 + (uint64_t)(in->n + i) * 1000u; /* 1 M ticks/s of event time */
        obs_gen_request req = {.n_records = n, .first_seq = in->n, .t_intended_ns = times};
        out_reset(&b->out);
        int g = gen->desc->generate(gen->inst, &req, &b->out);
        if (g < 0 || b->out.n_records == 0) {
            fprintf(stderr, "obs-bench-json: gen_market generate failed: %s (%d)\n",
                    obs_strerror(g), g);
            goto out;
        }
        for (uint32_t i = 0; i < b->out.n_records && in->n < o->ticks; i++) {
            const obs_record *r = &b->out.records[i];
            uint64_t need = in->n_bytes + ((r->len + 7u) & ~7u);
            if (need > cap_bytes) {
                cap_bytes = need * 2;
                uint8_t *nb = realloc(in->bytes, cap_bytes);
                if (!nb)
                    goto out;
                in->bytes = nb;
            }
            memcpy(in->bytes + in->n_bytes, r->data, r->len);
            offsets[in->n] = in->n_bytes;
            in->records[in->n] = *r;
            in->records[in->n].seq = in->n;
            in->records[in->n].t_intended_ns = times[i];
            in->n_bytes = need;
            in->n++;
        }
    }
    /* Pointers only once the buffer has stopped moving. */
    uint64_t payload = 0;
    for (uint32_t i = 0; i < in->n; i++) {
        in->records[i].data = in->bytes + offsets[i];
        payload += in->records[i].len;
    }
    in->n_bytes = payload; /* from here on: input bytes the parsers read */
    rc = 0;
out:
    free(times);
    free(offsets);
    return rc;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* One pass of `x` over the input. With `res`, hashes the output (untimed
 * check pass); without, only counts. Returns wall ns, or 0 on a failed call. */
static uint64_t pass(instance *x, const input *in, uint32_t batch_size, batch *b, pass_result *res,
                     uint64_t *cpu_ns, uint64_t *records_out)
{
    uint64_t errors0 = host_error_total(&x->host);
    uint64_t h = 0xcbf29ce484222325ull, n_out = 0;
    int failed = 0;
    uint64_t c0 = bench_thread_cpu_ns(), t0 = bench_now_ns();
    for (uint32_t i = 0; i < in->n; i += batch_size) {
        uint32_t n = in->n - i < batch_size ? in->n - i : batch_size;
        obs_batch view = {.records = in->records + i, .n_records = n};
        out_reset(&b->out);
        if (x->desc->process(x->inst, &view, &b->out) < 0)
            failed = 1;
        n_out += b->out.n_records;
        if (res)
            for (uint32_t k = 0; k < b->out.n_records; k++) {
                const obs_record *r = &b->out.records[k];
                h = fnv1a(h, &r->seq, sizeof r->seq);
                h = fnv1a(h, r->data, r->len);
            }
    }
    uint64_t t1 = bench_now_ns(), c1 = bench_thread_cpu_ns();
    if (res) {
        res->records_out = n_out;
        res->hash = h;
        res->errors = host_error_total(&x->host) - errors0;
    }
    if (cpu_ns)
        *cpu_ns = c1 - c0;
    if (records_out)
        *records_out = n_out;
    if (failed) {
        fprintf(stderr, "obs-bench-json: %s: process() returned an error\n", x->label);
        return 0;
    }
    return t1 - t0 ? t1 - t0 : 1;
}

/* Whether `name`.so is in the plugin directory (the Rust parser is built
 * only when cargo is installed). */
static int plugin_present(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.so", dir, name);
    return access(path, R_OK) == 0;
}

int main(int argc, char **argv)
{
    options o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    host_set_log_level(OBS_LOG_WARN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    int n_x = plugin_present(o.plugin_dir, "xf_json_serde") ? 3 : 2;
    bench_print_header(stdout,
                       n_x == 3
                           ? "obs-bench-json: xf_json_jansson vs xf_json_fast vs xf_json_serde, "
                             "process() called directly"
                           : "obs-bench-json: xf_json_jansson vs xf_json_fast, process() called "
                             "directly",
                       argc, argv);
    if (n_x == 2)
        printf("# %s/xf_json_serde.so not found (the Rust plugins are built when cargo is): "
               "two parsers\n",
               o.plugin_dir);

    static const char yaml[] = "pipeline: bench-json\n"
                               "stages:\n"
                               "  - name: gen\n    plugin: gen_market\n"
                               "  - name: jansson\n    plugin: xf_json_jansson\n"
                               "  - name: fast\n    plugin: xf_json_fast\n"
                               "  - name: serde\n    plugin: xf_json_serde\n"
                               "  - name: sink\n    plugin: sink_null\n";
    static const char *const short_name[3] = {"jansson", "fast", "serde"};
    char err[2048];
    obs_config *cfg = NULL;
    char **dirs = NULL;
    char *want[1] = {(char *)o.plugin_dir};
    instance gen = {.label = "gen_market"}, x[3] = {{.label = "xf_json_jansson"},
                                                    {.label = "xf_json_fast"},
                                                    {.label = "xf_json_serde"}};
    input in = {0};
    pool pl;
    int pool_ok = 0, ret = 1;
    batch *b = NULL;

    if (config_load_string("bench-json.yaml", yaml, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "obs-bench-json: config:\n%s\n", err);
        goto out;
    }
    if (plugin_dirs_resolve(".", want, 1, &dirs, err, sizeof err) != 0) {
        fprintf(stderr, "obs-bench-json: %s\n", err);
        goto out;
    }
    if (instance_open(&gen, cfg, 0, OBS_KIND_GENERATOR, dirs, 1, o.seed, o.batch) != 0)
        goto out;
    for (int k = 0; k < n_x; k++)
        if (instance_open(&x[k], cfg, (size_t)k + 1, OBS_KIND_TRANSFORM, dirs, 1,
                          o.seed + 1 + (uint64_t)k, o.batch) != 0)
            goto out;
    if (pool_init(&pl, 1, o.batch, (uint64_t)o.batch * 64, 1u << 24, 1ull << 30) != 0) {
        fprintf(stderr, "obs-bench-json: cannot allocate the batch\n");
        goto out;
    }
    pool_ok = 1;
    b = pool_get(&pl);
    if (input_generate(&gen, b, &o, &in) != 0)
        goto out;
    double bytes_per_rec = (double)in.n_bytes / in.n;
    printf(
        "# input: %u ticks from gen_market (default params, seed %" PRIu64 "), %" PRIu64
        " bytes, %.1f bytes/tick; batches of %u records; %u runs per parser, order alternating\n",
        in.n, o.seed, in.n_bytes, bytes_per_rec, o.batch, o.runs);
    printf("# plugins:");
    for (int k = 0; k < n_x; k++)
        printf(" %s", x[k].module->path);
    printf("\n");

    /* Agreement check (and warm-up): each parser against jansson. */
    pass_result chk[3];
    for (int k = 0; k < n_x; k++)
        if (!pass(&x[k], &in, o.batch, b, &chk[k], NULL, NULL))
            goto out;
    for (int k = 0; k < n_x; k++)
        printf("# check %-16s records_out=%" PRIu64 " errors=%" PRIu64 " output_fnv1a=%016" PRIx64
               "\n",
               x[k].label, chk[k].records_out, chk[k].errors, chk[k].hash);
    int agree = 1;
    for (int k = 1; k < n_x; k++) {
        if (chk[0].records_out != chk[k].records_out) {
            printf("WARNING: the parsers emitted different numbers of records: jansson %" PRIu64
                   ", %s %" PRIu64 "\n",
                   chk[0].records_out, short_name[k], chk[k].records_out);
            agree = 0;
        } else if (chk[0].hash != chk[k].hash) {
            printf(
                "WARNING: jansson and %s emitted the same number of records but different bytes\n",
                short_name[k]);
            agree = 0;
        }
        if (chk[0].errors != chk[k].errors) {
            printf("WARNING: the parsers counted different numbers of errors: jansson %" PRIu64
                   ", %s %" PRIu64 "\n",
                   chk[0].errors, short_name[k], chk[k].errors);
            agree = 0;
        }
    }
    if (agree)
        printf("# check: all %d parsers emitted the same %" PRIu64 " records, byte for byte\n", n_x,
               chk[0].records_out);

    double wall[3][MAX_RUNS], cpu[3][MAX_RUNS], ratio[MAX_RUNS];
    printf("# runs (wall ns/record):");
    for (uint32_t r = 0; r < o.runs; r++) {
        printf(" [%u]", r + 1);
        for (int j = 0; j < n_x; j++) {
            /* Forward on even runs, backward on odd ones. */
            int k = (r % 2 == 0) ? j : n_x - 1 - j;
            uint64_t c_ns = 0, n_out = 0;
            uint64_t w_ns = pass(&x[k], &in, o.batch, b, NULL, &c_ns, &n_out);
            if (!w_ns)
                goto out;
            if (n_out != chk[k].records_out)
                printf("\nWARNING: %s emitted %" PRIu64 " records in run %u, %" PRIu64
                       " in the check pass\n",
                       x[k].label, n_out, r + 1, chk[k].records_out);
            wall[k][r] = (double)w_ns / in.n;
            cpu[k][r] = (double)c_ns / in.n;
        }
        ratio[r] = wall[0][r] / wall[1][r];
        for (int k = 0; k < n_x; k++)
            printf(" %s=%.1f", short_name[k], wall[k][r]);
    }
    printf(
        "\n\n# medians of %u runs; records/s and MB/s (input bytes, 1 MB = 1e6 B) from the median"
        " wall time\n",
        o.runs);
    printf("%-16s %12s %21s %12s %12s %10s %9s %9s\n", "parser", "ns/record", "[min..max]",
           "cpu_ns/rec", "records/s", "MB/s", "vs_jansson", "vs_fast");
    double med[3], tmp[MAX_RUNS];
    for (int k = 0; k < n_x; k++) { /* all medians first: each row compares with two of them */
        memcpy(tmp, wall[k], o.runs * sizeof(double));
        med[k] = bench_median(tmp, o.runs);
    }
    for (int k = 0; k < n_x; k++) {
        double lo, hi;
        memcpy(tmp, wall[k], o.runs * sizeof(double));
        bench_minmax(tmp, o.runs, &lo, &hi);
        memcpy(tmp, cpu[k], o.runs * sizeof(double));
        double mc = bench_median(tmp, o.runs);
        char range[48];
        snprintf(range, sizeof range, "[%.1f..%.1f]", lo, hi);
        printf("%-16s %12.1f %21s %12.1f %12.0f %10.1f %8.2fx %8.2fx\n", x[k].label, med[k], range,
               mc, 1e9 / med[k], bytes_per_rec * 1e3 / med[k], med[0] / med[k], med[1] / med[k]);
    }
    double speedup = med[0] / med[1];
    double rlo, rhi;
    bench_minmax(ratio, o.runs, &rlo, &rhi);
    double rmed = bench_median(ratio, o.runs);
    printf("\nspeedup xf_json_fast / xf_json_jansson: %.2fx (ratio of medians); per-run ratios:"
           " median %.2fx [%.2f..%.2f]\n",
           speedup, rmed, rlo, rhi);
    if (n_x == 3)
        printf("xf_json_serde: %.2fx xf_json_jansson, %.2fx xf_json_fast (ratios of medians)\n",
               med[0] / med[2], med[1] / med[2]);
    printf("target speedup >= %.0fx: %s\n", TARGET_SPEEDUP,
           speedup >= TARGET_SPEEDUP ? "MET" : "MISSED");
    printf("reference: jansson ~%.0f ns per 91-byte tick on the reference machine; here %.0f ns per"
           " %.1f-byte tick\n",
           REFERENCE_JANSSON_NS, med[0], bytes_per_rec);
    ret = agree ? 0 : 3;
out:
    for (int k = 2; k >= 0; k--)
        instance_close(&x[k]);
    instance_close(&gen);
    if (b)
        pool_put(&pl, b);
    if (pool_ok)
        pool_destroy(&pl);
    free(in.records);
    free(in.bytes);
    plugin_dirs_free(dirs, dirs ? 1 : 0);
    config_free(cfg);
    return ret;
}
