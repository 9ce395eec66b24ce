/*
 * cli_runs.c - `hostd runs`, `hostd report RUN` and `hostd compare A B`:
 * the run history read back from the store (see cli_runs.h).
 *
 * They print from what the store holds and nothing else: `hostd report`
 * prints the report JSON stored at the end of the run through the same
 * report_print() that printed it then, so the text is identical.
 */
#include "cli/cli_runs.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "engine/plugin.h"
#include "measure/report.h"
#include "store/crashed.h"
#include "store/group.h"
#include "store/store.h"

#define DEFAULT_STORE "observatory-data"

#define MAX_STORES 16

typedef struct cli_opts {
    const char *store;
    const char *stores[MAX_STORES]; /* every --store given (report --run-id) */
    int n_stores;
    const char *run_id;             /* report --run-id: the shared run.id */
    const char *run_id2;            /* compare --run-id A --run-id B: the second */
    const char *config;
    const char *series;
    uint64_t from_ns, to_ns;
    int json, metrics;
    const char *pos[3];
    int n_pos;
} cli_opts;

static void usage(FILE *f)
{
    fprintf(f, "usage: hostd runs    [--store DIR | --config FILE] [--json]\n"
               "       hostd report  RUN [--store DIR | --config FILE] [--json | --metrics |\n"
               "                         --series METRIC [--from NS] [--to NS]]\n"
               "       hostd report  --run-id ID [--store DIR]... [--json]\n"
               "       hostd compare RUN_A RUN_B [--store DIR | --config FILE]\n"
               "       hostd compare --run-id A --run-id B [--store DIR]...\n"
               "\n"
               "Reads the run history in the store (default: ./" DEFAULT_STORE
               "; --config FILE uses its store.path).\n"
               "  runs      lists runs, newest first (--json: their facts as JSON)\n"
               "  report    reprints a run's end-of-run report (--json: facts and report;\n"
               "            --metrics: names of its metric series; --series: one series as\n"
               "            [t_ns, value] pairs, wall-clock ns, optionally from <= t < to)\n"
               "  report --run-id\n"
               "            every run with that run.id in the stores given (one per process\n"
               "            of a pipeline split over several) in start order, with an\n"
               "            end-to-end summary\n"
               "  compare   two runs' reports side by side with the relative change B vs A\n"
               "            (--run-id twice: each process's, matched by pipeline name)\n");
}

static int parse_u64(const char *s, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-')
        return -1;
    *v = x;
    return 0;
}

/* Parses options after argv[0]; positional arguments go to o->pos. */
static int parse(int argc, char **argv, int max_pos, cli_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->to_ns = UINT64_MAX;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
#define OPT_ARG(name)                                                                              \
    (strcmp(a, name) == 0                                                                          \
         ? (i + 1 < argc ? (val = argv[++i]) != NULL : 0)                                          \
         : (strncmp(a, name "=", sizeof(name)) == 0 ? (val = a + sizeof(name)) != NULL : 0))
        if (OPT_ARG("--store")) {
            if (o->n_stores == MAX_STORES) {
                fprintf(stderr, "hostd %s: at most %d --store\n", argv[0], MAX_STORES);
                return -1;
            }
            o->store = o->stores[o->n_stores++] = val;
        } else if (OPT_ARG("--run-id")) {
            if (o->run_id)
                o->run_id2 = val;
            else
                o->run_id = val;
        }
        else if (OPT_ARG("--config") || (strcmp(a, "-c") == 0 && i + 1 < argc && (val = argv[++i])))
            o->config = val;
        else if (OPT_ARG("--series"))
            o->series = val;
        else if (OPT_ARG("--from")) {
            if (parse_u64(val, &o->from_ns) < 0) {
                fprintf(stderr, "hostd %s: --from '%s': expected nanoseconds\n", argv[0], val);
                return -1;
            }
        } else if (OPT_ARG("--to")) {
            if (parse_u64(val, &o->to_ns) < 0) {
                fprintf(stderr, "hostd %s: --to '%s': expected nanoseconds\n", argv[0], val);
                return -1;
            }
        } else if (strcmp(a, "--json") == 0)
            o->json = 1;
        else if (strcmp(a, "--metrics") == 0)
            o->metrics = 1;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "hostd %s: unknown or incomplete option '%s'\n", argv[0], a);
            return -1;
        } else if (o->n_pos < max_pos)
            o->pos[o->n_pos++] = a;
        else {
            fprintf(stderr, "hostd %s: unexpected argument '%s'\n", argv[0], a);
            return -1;
        }
#undef OPT_ARG
    }
    if (o->store && o->config) {
        fprintf(stderr, "hostd %s: give --store or --config, not both\n", argv[0]);
        return -1;
    }
    if (o->n_stores > 1 && !o->run_id) {
        fprintf(stderr, "hostd %s: several --store only with --run-id\n", argv[0]);
        return -1;
    }
    return 0;
}

/* Opens the store named by the options: read-write when possible (which
 * marks runs of a killed hostd incomplete), read-only when a running hostd
 * holds it. Never creates one. Returns 0, or 1 after printing why. */
static int open_store(const cli_opts *o, store **out)
{
    char err[1024];
    obs_config *cfg = NULL;
    const char *path = o->store ? o->store : DEFAULT_STORE;
    if (o->config) {
        if (config_load(o->config, &cfg, err, sizeof(err)) < 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        path = cfg->store_path;
    }
    int rc = 1;
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "hostd: no store at '%s' (%s)\n", path, strerror(errno));
        goto out;
    }
    if (store_open_flags(path, 0, out, err, sizeof(err)) == 0) {
        rc = 0;
        goto out;
    }
    char err2[1024];
    if (store_open_flags(path, STORE_READONLY, out, err2, sizeof(err2)) == 0) {
        rc = 0;
        goto out;
    }
    fprintf(stderr, "hostd: %s\n", err);
out:
    config_free(cfg);
    return rc;
}

static int parse_run(const char *cmd, const char *s, uint64_t *id)
{
    if (parse_u64(s, id) < 0 || *id == 0) {
        fprintf(stderr, "hostd %s: '%s' is not a run id (1, 2, ...; see hostd runs)\n", cmd, s);
        return -1;
    }
    return 0;
}

static void print_json(const json_t *j)
{
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (text) {
        fputs(text, stdout);
        fputc('\n', stdout);
        free(text);
    }
}

static int load_run(store *s, const char *cmd, uint64_t id, json_t **run)
{
    int rc = store_run_json(s, id, run);
    if (rc == OBS_ENOENT) {
        fprintf(stderr, "hostd %s: no run %" PRIu64 " in store '%s' (see hostd runs)\n", cmd, id,
                store_path(s));
        return 1;
    }
    if (rc < 0) {
        fprintf(stderr, "hostd %s: store '%s': %s\n", cmd, store_path(s), obs_strerror(rc));
        return 1;
    }
    return 0;
}

int cli_runs(int argc, char **argv)
{
    cli_opts o;
    store *s = NULL;
    json_t *runs = NULL;
    if (parse(argc, argv, 0, &o) < 0) {
        usage(stderr);
        return 2;
    }
    if (open_store(&o, &s))
        return 1;
    int rc = store_runs_json(s, &runs);
    if (rc < 0) {
        fprintf(stderr, "hostd runs: store '%s': %s\n", store_path(s), obs_strerror(rc));
        store_close(s);
        return 1;
    }
    size_t i;
    json_t *r;
    json_array_foreach(runs, i, r) store_crash_annotate(store_path(s), r, 0);
    if (o.json) {
        print_json(runs);
    } else {
        printf("%5s  %-11s  %-16s  %-16s  %-24s  %9s  %9s  %-6s  %s\n", "id", "status",
               "pipeline", "run.id", "started (UTC)", "run_s", "snapshots", "report", "host");
        json_array_foreach(runs, i, r)
        {
            json_t *start = json_object_get(r, "start_ns"), *end = json_object_get(r, "end_ns");
            char dur[32] = "-";
            if (json_is_integer(start) && json_is_integer(end))
                snprintf(dur, sizeof(dur), "%.2f",
                         (double)(json_integer_value(end) - json_integer_value(start)) / 1e9);
            const char *host =
                json_string_value(json_object_get(json_object_get(r, "host"), "hostname"));
            const char *shared = json_string_value(json_object_get(r, "run_id"));
            const char *status = json_string_value(json_object_get(r, "status"));
            printf("%5" JSON_INTEGER_FORMAT "  %-11s  %-16s  %-16s  %-24s  %9s  %9" JSON_INTEGER_FORMAT
                   "  %-6s  %s\n",
                   json_integer_value(json_object_get(r, "id")), status,
                   json_string_value(json_object_get(r, "pipeline")), shared ? shared : "-",
                   json_string_value(json_object_get(r, "start")), dur,
                   json_integer_value(json_object_get(r, "n_snapshots")),
                   json_is_true(json_object_get(r, "has_report")) ? "yes" : "no",
                   host ? host : "-");
        }
        if (json_array_size(runs) == 0)
            printf("(no runs in store '%s')\n", store_path(s));
    }
    json_decref(runs);
    store_close(s);
    return 0;
}

static int report_group(const cli_opts *o);

int cli_report(int argc, char **argv)
{
    cli_opts o;
    store *s = NULL;
    json_t *run = NULL, *out = NULL;
    uint64_t id;
    int status = 1;
    int prc = parse(argc, argv, 1, &o);
    if (prc == 0 && o.run_id) {
        if (o.n_pos || o.metrics || o.series) {
            fprintf(stderr, "hostd report --run-id: no run number, --metrics or --series\n");
            return 2;
        }
        return report_group(&o);
    }
    if (prc < 0 || o.n_pos != 1 || o.json + o.metrics + !!o.series > 1) {
        if (o.n_pos != 1)
            fprintf(stderr, "hostd report: expected one run id\n");
        usage(stderr);
        return 2;
    }
    if (parse_run("report", o.pos[0], &id) < 0)
        return 2;
    if (open_store(&o, &s))
        return 1;
    if (load_run(s, "report", id, &run))
        goto out;
    if (o.metrics || o.series) {
        int rc = o.metrics ? store_metrics_json(s, id, &out)
                           : store_series_json(s, id, o.series, o.from_ns, o.to_ns, &out);
        if (rc < 0) {
            fprintf(stderr, "hostd report: store '%s': %s\n", store_path(s), obs_strerror(rc));
            goto out;
        }
        print_json(out);
        status = 0;
        goto out;
    }
    char *crash = store_crash_text(store_path(s), id);
    if (crash)
        json_object_set_new(run, "crash", json_string(crash));
    if (o.json) {
        print_json(run);
        free(crash);
        status = 0;
        goto out;
    }
    if (crash) {
        printf("run %" PRIu64 " (pipeline '%s', started %s) CRASHED; the record hostd left:\n%s",
               id, json_string_value(json_object_get(run, "pipeline")),
               json_string_value(json_object_get(run, "start")), crash);
        free(crash);
        status = 0;
        goto out;
    }
    json_t *report = json_object_get(run, "report");
    if (!json_is_object(report)) {
        json_t *last = json_object_get(run, "last_snapshot_ns");
        fprintf(stderr,
                "hostd report: run %" PRIu64 " (pipeline '%s', started %s) has no end-of-run "
                "report: status %s, %" JSON_INTEGER_FORMAT " snapshot(s) stored",
                id, json_string_value(json_object_get(run, "pipeline")),
                json_string_value(json_object_get(run, "start")),
                json_string_value(json_object_get(run, "status")),
                json_integer_value(json_object_get(run, "n_snapshots")));
        if (json_is_integer(last))
            fprintf(stderr, ", the last at %" JSON_INTEGER_FORMAT " ns", json_integer_value(last));
        fprintf(stderr, " (hostd report %" PRIu64 " --metrics / --series METRIC)\n", id);
        goto out;
    }
    report_print(report, stdout);
    status = 0;
out:
    json_decref(out);
    json_decref(run);
    store_close(s);
    return status;
}

/* The stores the options name (every --store, or the default one), opened;
 * *paths names them. Returns 0, or 1 after printing why. */
static int open_group_stores(const cli_opts *o, store **stores, const char **paths, size_t *n)
{
    *n = o->n_stores ? (size_t)o->n_stores : 1;
    for (size_t k = 0; k < *n; k++) {
        paths[k] = o->n_stores ? o->stores[k] : o->store ? o->store : DEFAULT_STORE;
        cli_opts one_store = {.store = paths[k]};
        if (open_store(&one_store, &stores[k])) {
            while (k-- > 0)
                store_close(stores[k]);
            return 1;
        }
    }
    return 0;
}

static void close_group_stores(store **stores, size_t n)
{
    for (size_t k = 0; k < n; k++)
        store_close(stores[k]);
}

/* The runs with run.id `id` in the stores, in start order. Returns 0, or -1
 * after printing why (as `hostd cmd`). */
static int collect_group(store **stores, const char **paths, size_t n_paths, const char *id,
                         const char *cmd, store_group_run **out, size_t *n_out)
{
    int rc = store_group_collect(stores, n_paths, id, out, n_out);
    if (rc < 0) {
        fprintf(stderr, "hostd %s: cannot read the runs: %s\n", cmd, obs_strerror(rc));
        return -1;
    }
    if (*n_out == 0) {
        fprintf(stderr, "hostd %s: no run with run.id '%s' in", cmd, id);
        for (size_t k = 0; k < n_paths; k++)
            fprintf(stderr, "%s '%s'", k ? "," : "", paths[k]);
        fprintf(stderr, " (see hostd runs)\n");
        store_group_free(*out, 0);
        *out = NULL;
        return -1;
    }
    return 0;
}

/* hostd report --run-id ID --store A --store B ...: the runs of every
 * process of one pipeline, in start order, and an end-to-end summary: the
 * generator of the process that started first, and the sink of the one
 * that ended last with a report (each process ends after its upstream
 * did) with its latency from the intended time (end to end, since intended
 * times cross the links). */
static int report_group(const cli_opts *o)
{
    store *stores[MAX_STORES];
    const char *paths[MAX_STORES];
    size_t n_stores = 0, n = 0;
    store_group_run *g = NULL;
    int status = 1;
    if (open_group_stores(o, stores, paths, &n_stores))
        return 1;
    if (collect_group(stores, paths, n_stores, o->run_id, "report", &g, &n) < 0)
        goto out;
    size_t li = store_group_last(g, n);
    json_t *first = store_group_report_stage(g[0].run, 0);
    json_t *last = store_group_report_stage(g[li].run, -1);
    json_t *lat = json_object_get(last, "latency_ms");
    if (o->json) {
        json_t *all = store_group_json(g, n, o->run_id, paths);
        if (all) {
            print_json(all);
            json_decref(all);
            status = 0;
        } else {
            fprintf(stderr, "hostd report: out of memory\n");
        }
        goto out;
    }
    printf("run.id %s: %zu process%s\n", o->run_id, n, n == 1 ? "" : "es");
    printf("  %-3s %-16s %-24s %5s %-11s %8s  %s\n", "#", "pipeline", "started (UTC)", "run",
           "status", "pid", "store");
    for (size_t i = 0; i < n; i++)
        printf("  %-3zu %-16s %-24s %5" JSON_INTEGER_FORMAT " %-11s %8" JSON_INTEGER_FORMAT "  %s\n",
               i + 1, json_string_value(json_object_get(g[i].run, "pipeline")),
               json_string_value(json_object_get(g[i].run, "start")),
               json_integer_value(json_object_get(g[i].run, "id")),
               json_string_value(json_object_get(g[i].run, "status")),
               json_integer_value(json_object_get(g[i].run, "pid")), paths[g[i].store]);
    for (size_t i = 0; i < n; i++) {
        printf("\n== process %zu: pipeline %s (store %s, run %" JSON_INTEGER_FORMAT ") ==\n", i + 1,
               json_string_value(json_object_get(g[i].run, "pipeline")), paths[g[i].store],
               json_integer_value(json_object_get(g[i].run, "id")));
        json_t *report = json_object_get(g[i].run, "report");
        if (json_is_object(report))
            report_print(report, stdout);
        else
            printf("(no end-of-run report: status %s)\n",
                   json_string_value(json_object_get(g[i].run, "status")));
    }
    printf("\nend to end: %" JSON_INTEGER_FORMAT " records generated (process 1, stage %s), %" JSON_INTEGER_FORMAT
           " delivered (process %zu, stage %s)",
           json_integer_value(json_object_get(first, "records_out")),
           json_string_value(json_object_get(first, "name")),
           json_integer_value(json_object_get(last, "records_in")), li + 1,
           json_string_value(json_object_get(last, "name")));
    if (json_is_object(lat))
        printf("; latency from the intended time p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms "
               "(wall clocks of the hosts: see docs/scale.md)",
               json_number_value(json_object_get(lat, "p50")),
               json_number_value(json_object_get(lat, "p99")),
               json_number_value(json_object_get(lat, "p99_9")));
    printf("\n");
    status = 0;
out:
    store_group_free(g, n);
    close_group_stores(stores, n_stores);
    return status;
}

/* The report of a run with its id and start added for the header, or NULL
 * after printing why there is none. */
static json_t *report_for_compare(store *s, uint64_t id)
{
    json_t *run = NULL;
    if (load_run(s, "compare", id, &run))
        return NULL;
    json_t *report = json_object_get(run, "report");
    if (!json_is_object(report)) {
        fprintf(stderr, "hostd compare: run %" PRIu64 " has no end-of-run report (status %s)\n", id,
                json_string_value(json_object_get(run, "status")));
        json_decref(run);
        return NULL;
    }
    json_t *r = json_deep_copy(report);
    if (r) {
        json_object_set_new(r, "run_id", json_integer((json_int_t)id));
        json_object_set(r, "start", json_object_get(run, "start"));
    }
    json_decref(run);
    return r;
}

/* The report of group run g (the last run of `pipeline` with a report), with
 * its run number and start for the header, or NULL. */
static json_t *group_report(const store_group_run *g, size_t n, const char *pipeline)
{
    for (size_t i = n; i-- > 0;) {
        json_t *report = json_object_get(g[i].run, "report");
        const char *name = json_string_value(json_object_get(g[i].run, "pipeline"));
        if (!json_is_object(report) || !name || strcmp(name, pipeline) != 0)
            continue;
        json_t *r = json_deep_copy(report);
        if (r) {
            json_object_set(r, "run_id", json_object_get(g[i].run, "id"));
            json_object_set(r, "start", json_object_get(g[i].run, "start"));
        }
        return r;
    }
    return NULL;
}

/* hostd compare --run-id A --run-id B: each process of run A beside the
 * process of run B with the same pipeline name. */
static int compare_group(const cli_opts *o)
{
    store *stores[MAX_STORES];
    const char *paths[MAX_STORES];
    store_group_run *ga = NULL, *gb = NULL;
    size_t na = 0, nb = 0, n_stores = 0;
    int status = 1, compared = 0;
    if (open_group_stores(o, stores, paths, &n_stores))
        return 1;
    if (collect_group(stores, paths, n_stores, o->run_id, "compare", &ga, &na) < 0 ||
        collect_group(stores, paths, n_stores, o->run_id2, "compare", &gb, &nb) < 0)
        goto out;
    for (size_t i = 0; i < na; i++) {
        const char *name = json_string_value(json_object_get(ga[i].run, "pipeline"));
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(json_string_value(json_object_get(ga[k].run, "pipeline")), name) == 0;
        if (seen)
            continue; /* a process restarted: its last run stands for it */
        json_t *ra = group_report(ga, na, name), *rb = group_report(gb, nb, name);
        printf("%s== pipeline %s: run.id %s vs %s ==\n", compared ? "\n" : "", name, o->run_id,
               o->run_id2);
        if (ra && rb) {
            report_compare(ra, rb, stdout);
            compared++;
        } else {
            printf("(no report of this pipeline in run.id %s)\n", ra ? o->run_id2 : o->run_id);
        }
        json_decref(ra);
        json_decref(rb);
    }
    status = compared ? 0 : 1;
out:
    store_group_free(ga, na);
    store_group_free(gb, nb);
    close_group_stores(stores, n_stores);
    return status;
}

int cli_compare(int argc, char **argv)
{
    cli_opts o;
    store *s = NULL;
    uint64_t a, b;
    int prc = parse(argc, argv, 2, &o);
    if (prc == 0 && o.run_id) {
        if (!o.run_id2 || o.n_pos || o.metrics || o.series || o.json) {
            fprintf(stderr, "hostd compare: --run-id A --run-id B, without run numbers\n");
            return 2;
        }
        return compare_group(&o);
    }
    if (prc < 0 || o.n_pos != 2 || o.metrics || o.series || o.json) {
        if (o.n_pos != 2)
            fprintf(stderr, "hostd compare: expected two run ids\n");
        usage(stderr);
        return 2;
    }
    if (parse_run("compare", o.pos[0], &a) < 0 || parse_run("compare", o.pos[1], &b) < 0)
        return 2;
    if (open_store(&o, &s))
        return 1;
    json_t *ra = report_for_compare(s, a), *rb = ra ? report_for_compare(s, b) : NULL;
    int status = 1;
    if (ra && rb) {
        report_compare(ra, rb, stdout);
        status = 0;
    }
    json_decref(ra);
    json_decref(rb);
    store_close(s);
    return status;
}

/* One stored experiment as a table row per metric. */
static void print_experiment(uint64_t run_id, const json_t *e)
{
    printf("run %" PRIu64 ", experiment %" JSON_INTEGER_FORMAT " on stage '%s' (%s%s): A = %s %s, "
           "B = %s %s; %" JSON_INTEGER_FORMAT " %s in %.1f s, %s: %s\n",
           run_id, json_integer_value(json_object_get(e, "id")),
           json_string_value(json_object_get(e, "stage")),
           json_string_value(json_object_get(e, "mode")),
           json_is_true(json_object_get(e, "aa")) ? ", A/A" : "",
           json_string_value(json_object_get(json_object_get(e, "a"), "plugin")),
           json_string_value(json_object_get(json_object_get(e, "a"), "version")),
           json_string_value(json_object_get(json_object_get(e, "b"), "plugin")),
           json_string_value(json_object_get(json_object_get(e, "b"), "version")),
           json_integer_value(json_object_get(e, "samples")),
           json_object_get(e, "block_ms") ? "blocks" : "batch pairs",
           json_number_value(json_object_get(e, "elapsed_s")),
           json_string_value(json_object_get(e, "state")),
           json_string_value(json_object_get(e, "verdict")));
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(e, "metrics"), i, m)
    {
        json_t *ci = json_object_get(m, "ci");
        char cis[64] = "-", delta[32] = "-";
        if (json_is_number(json_array_get(ci, 0)))
            snprintf(cis, sizeof cis, "[%+.2f%%, %+.2f%%]",
                     100 * json_number_value(json_array_get(ci, 0)),
                     100 * json_number_value(json_array_get(ci, 1)));
        if (json_is_number(json_object_get(m, "delta")))
            snprintf(delta, sizeof delta, "%+.2f%%",
                     100 * json_number_value(json_object_get(m, "delta")));
        printf(
            "  %-20s %14.3f %14.3f %9s %22s %9s\n", json_string_value(json_object_get(m, "name")),
            json_number_value(json_object_get(m, "a")), json_number_value(json_object_get(m, "b")),
            delta, cis, json_string_value(json_object_get(m, "verdict")));
    }
}

int cli_experiments(int argc, char **argv)
{
    cli_opts o;
    store *s = NULL;
    json_t *runs = NULL;
    uint64_t only = 0;
    if (parse(argc, argv, 1, &o) < 0 || (o.n_pos == 1 && parse_u64(o.pos[0], &only) < 0)) {
        fprintf(stderr, "usage: hostd experiments [RUN] [--store DIR | --config FILE] [--json]\n");
        return 2;
    }
    if (open_store(&o, &s))
        return 1;
    int rc = store_runs_json(s, &runs);
    if (rc < 0) {
        fprintf(stderr, "hostd experiments: store '%s': %s\n", store_path(s), obs_strerror(rc));
        store_close(s);
        return 1;
    }
    json_t *all = json_array();
    size_t i, n = 0;
    json_t *r;
    json_array_foreach(runs, i, r)
    {
        uint64_t id = (uint64_t)json_integer_value(json_object_get(r, "id"));
        json_t *events = NULL;
        if ((only && id != only) || store_events_json(s, id, &events) < 0)
            continue;
        size_t k;
        json_t *ev;
        json_array_foreach(events, k, ev)
        {
            const char *kind = json_string_value(json_object_get(ev, "event"));
            if (!kind || strcmp(kind, "experiment") != 0)
                continue;
            json_object_set_new(ev, "run", json_integer((json_int_t)id));
            json_array_append(all, ev);
            if (!o.json)
                print_experiment(id, ev);
            n++;
        }
        json_decref(events);
    }
    if (o.json)
        print_json(all);
    else if (n == 0)
        printf("(no experiments in store '%s'%s)\n", store_path(s), only ? " for that run" : "");
    json_decref(all);
    json_decref(runs);
    store_close(s);
    return 0;
}
