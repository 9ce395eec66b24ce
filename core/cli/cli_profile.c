/*
 * cli_profile.c - `hostd profile-diff RUN_A RUN_B`: the differential flame
 * graph of two stored runs' profiles, written to a file or stdout (see
 * cli_profile.h). The same merge, filter and rendering as the HTTP route
 * /api/v1/profiles/diff (run_profile.c), without a running hostd; and the
 * same diff of an experiment's variants that hostd writes at the end of a
 * run with --profile-continuous (cli_experiment_flame_diff).
 */
#include "cli/cli_profile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config/config.h"
#include "lab/experiment.h"
#include "obs_profiler.h"
#include "store/run_profile.h"
#include "store/store.h"

#define DEFAULT_STORE "observatory-data"

static void usage(FILE *f)
{
    fprintf(f, "usage: hostd profile-diff RUN_A RUN_B [--store DIR | --config FILE] [--stage S]\n"
               "                          [--a-variant V] [--b-variant V] [--format svg|folded]\n"
               "                          [--out FILE]\n"
               "\n"
               "Writes the differential flame graph of two runs' stored profiles (recorded with\n"
               "hostd --profile-continuous): widths are RUN_B's samples, colours the change of\n"
               "each function's share from RUN_A (red grew, blue shrank). RUN_A and RUN_B may be\n"
               "the same run with --a-variant A --b-variant B. --format folded writes\n"
               "'stack before after' lines (flamegraph.pl's difffolded input). The output goes\n"
               "to FILE, or stdout. The store defaults to ./" DEFAULT_STORE
               "; --config FILE uses its store.path.\n");
}

static int parse_run(const char *s, uint64_t *id)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-' || v == 0) {
        fprintf(stderr, "hostd profile-diff: '%s' is not a run id (1, 2, ...; see hostd runs)\n",
                s);
        return -1;
    }
    *id = v;
    return 0;
}

/* Opens an existing store: read-write when possible, read-only when a
 * running hostd holds it. Returns 0, or 1 after printing why. */
static int open_existing(const char *store_dir, const char *config, store **out)
{
    char err[1024], err2[1024];
    obs_config *cfg = NULL;
    const char *path = store_dir ? store_dir : DEFAULT_STORE;
    int rc = 1;
    if (config) {
        if (config_load(config, &cfg, err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        path = cfg->store_path;
    }
    struct stat st;
    if (stat(path, &st) != 0)
        fprintf(stderr, "hostd: no store at '%s' (%s)\n", path, strerror(errno));
    else if (store_open_flags(path, 0, out, err, sizeof err) == 0 ||
             store_open_flags(path, STORE_READONLY, out, err2, sizeof err2) == 0)
        rc = 0;
    else
        fprintf(stderr, "hostd: %s\n", err);
    config_free(cfg);
    return rc;
}

/* Selects one side; 0, or 1 after printing why not. */
static int select_side(store *s, const char *name, run_profile_sel *sel, obs_prof_profile **out)
{
    char err[512];
    size_t n = 0;
    if (run_profile_select(s, sel, out, &n, err, sizeof err) < 0) {
        fprintf(stderr, "hostd profile-diff: %s: %s\n", name, err);
        return 1;
    }
    return 0;
}

int cli_profile_diff(int argc, char **argv)
{
    const char *store_dir = NULL, *config = NULL, *stage = NULL, *out_path = NULL;
    const char *va = NULL, *vb = NULL, *format = "svg", *pos[2];
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = strcmp(a, "--store") == 0       ? &store_dir
                           : strcmp(a, "--config") == 0    ? &config
                           : strcmp(a, "--stage") == 0     ? &stage
                           : strcmp(a, "--out") == 0       ? &out_path
                           : strcmp(a, "--a-variant") == 0 ? &va
                           : strcmp(a, "--b-variant") == 0 ? &vb
                           : strcmp(a, "--format") == 0    ? &format
                                                           : NULL;
        if (dst) {
            if (i + 1 >= argc) {
                fprintf(stderr, "hostd profile-diff: %s needs a value\n", a);
                usage(stderr);
                return 2;
            }
            *dst = argv[++i];
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "hostd profile-diff: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (n_pos < 2) {
            pos[n_pos++] = a;
        } else {
            fprintf(stderr, "hostd profile-diff: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (n_pos != 2 || (store_dir && config) ||
        (strcmp(format, "svg") != 0 && strcmp(format, "folded") != 0)) {
        fprintf(stderr, "hostd profile-diff: %s\n",
                n_pos != 2            ? "expected two run ids"
                : store_dir && config ? "give --store or --config, not both"
                                      : "--format: svg or folded");
        usage(stderr);
        return 2;
    }
    run_profile_sel a = {.to_ns = UINT64_MAX}, b = {.to_ns = UINT64_MAX};
    if (parse_run(pos[0], &a.run_id) < 0 || parse_run(pos[1], &b.run_id) < 0)
        return 2;
    run_profile_sel *sides[2] = {&a, &b};
    const char *variants[2] = {va, vb};
    for (int k = 0; k < 2; k++) {
        if (stage)
            sides[k]->match[sides[k]->n_match++] = (obs_prof_label){"stage", stage};
        if (variants[k])
            sides[k]->match[sides[k]->n_match++] = (obs_prof_label){"variant", variants[k]};
    }

    store *s = NULL;
    obs_prof_profile *pa = NULL, *pb = NULL;
    obs_prof_http_response resp = {0};
    FILE *f = NULL;
    int status = 1;
    if (open_existing(store_dir, config, &s))
        return 1;
    if (select_side(s, "RUN_A", &a, &pa) || select_side(s, "RUN_B", &b, &pb))
        goto out;
    char title[256];
    snprintf(title, sizeof title, "CPU profile change: run %" PRIu64 "%s%s -> run %" PRIu64 "%s%s",
             a.run_id, va ? " variant=" : "", va ? va : "", b.run_id, vb ? " variant=" : "",
             vb ? vb : "");
    if (stage) {
        size_t o = strlen(title);
        snprintf(title + o, sizeof title - o, ", stage %s", stage);
    }
    if (obs_prof_http_render(pb, pa, format, title, &resp) != 0 || resp.status != 200) {
        fprintf(stderr, "hostd profile-diff: rendering failed (%s)\n",
                resp.body ? resp.body : "out of memory");
        goto out;
    }
    f = out_path ? fopen(out_path, "w") : stdout;
    if (!f) {
        fprintf(stderr, "hostd profile-diff: %s: %s\n", out_path, strerror(errno));
        goto out;
    }
    int werr = fwrite(resp.body, 1, resp.len, f) != resp.len;
    werr |= out_path ? fclose(f) != 0 : fflush(f) != 0;
    if (werr) {
        fprintf(stderr, "hostd profile-diff: %s: write failed: %s\n",
                out_path ? out_path : "stdout", strerror(errno));
        goto out;
    }
    if (out_path)
        fprintf(stderr, "hostd profile-diff: wrote %s (%zu bytes)\n", out_path, resp.len);
    status = 0;
out:
    free(resp.body);
    obs_prof_profile_free(pa);
    obs_prof_profile_free(pb);
    store_close(s);
    return status;
}

/* Writes the differential flame graph of an experiment's two variants (A as
 * before, B as after) from the run's stored profile windows, into
 * <store>/run-<id>-experiment-<n>-diff.svg, and prints where. */
void cli_experiment_flame_diff(store *st, uint64_t run_id, experiment *e)
{
    json_t *j = experiment_json(e);
    const char *stage_name = j ? json_string_value(json_object_get(j, "stage")) : NULL;
    json_int_t id = j ? json_integer_value(json_object_get(j, "id")) : 0;
    obs_prof_profile *pa = NULL, *pb = NULL;
    char err[512], path[4096], title[256];
    run_profile_sel a = {.run_id = run_id, .to_ns = UINT64_MAX, .n_match = 2};
    a.match[0] = (obs_prof_label){"stage", stage_name};
    a.match[1] = (obs_prof_label){"variant", "A"};
    run_profile_sel b = a;
    b.match[1] = (obs_prof_label){"variant", "B"};
    if (!stage_name || run_profile_select(st, &a, &pa, NULL, err, sizeof err) < 0 ||
        run_profile_select(st, &b, &pb, NULL, err, sizeof err) < 0) {
        printf("differential flame graph: none (%s)\n", stage_name ? err : "out of memory");
        goto out;
    }
    char *svg = NULL;
    size_t len = 0;
    snprintf(title, sizeof title, "stage %s: variant A (before) vs B (after), run %" PRIu64,
             stage_name, run_id);
    if (obs_prof_render_diff_svg(pa, pb, title, 0, &svg, &len) != 0) {
        printf("differential flame graph: none (rendering failed)\n");
        goto out;
    }
    snprintf(path, sizeof path, "%s/run-%" PRIu64 "-experiment-%" JSON_INTEGER_FORMAT "-diff.svg",
             store_path(st), run_id, id);
    FILE *f = fopen(path, "w");
    if (f && fwrite(svg, 1, len, f) == len && fclose(f) == 0)
        printf("differential flame graph (A -> B): %s\n", path);
    else {
        if (f)
            fclose(f);
        printf("differential flame graph: cannot write %s\n", path);
    }
    free(svg);
out:
    obs_prof_profile_free(pa);
    obs_prof_profile_free(pb);
    json_decref(j);
}
