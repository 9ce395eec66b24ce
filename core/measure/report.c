/*
 * report.c - the end-of-run report (see report.h): one row per stage with
 * records, rate over the measured window (after warm-up, until the stop),
 * errors, time inside the plugin, CPU and allocations per record, time
 * blocked on a full ring, late sends and end-to-end latency percentiles,
 * then a detail line per stage with errors by reason and plugin counters.
 *
 * The report exists as JSON first and is printed from the JSON only, so the
 * table at the end of a run and `hostd report RUN` (which reads the stored
 * JSON) are the same text.
 */
#include "measure/report.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "observatory/stage.h"

static double per_sec(uint64_t n, uint64_t ns)
{
    return ns ? (double)n * 1e9 / (double)ns : 0.0;
}

static uint64_t sub0(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* Sets obj[key] to a new value; a failed allocation is remembered in *ok. */
static void set(json_t *obj, const char *key, json_t *v, int *ok)
{
    if (!v || json_object_set_new(obj, key, v) < 0)
        *ok = 0;
}

static json_t *jint(uint64_t v)
{
    return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* Rounds to a few significant decimals, so stored figures read well. */
static json_t *jreal(double v, int decimals)
{
    double m = pow(10, decimals);
    return json_real(round(v * m) / m);
}

static json_t *latency_json(const histogram *h)
{
    if (!h || histogram_count(h) == 0)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "count", jint(histogram_count(h)), "p50",
                     jreal((double)histogram_quantile_ns(h, 0.50) / 1e6, 3), "p99",
                     jreal((double)histogram_quantile_ns(h, 0.99) / 1e6, 3), "p99_9",
                     jreal((double)histogram_quantile_ns(h, 0.999) / 1e6, 3), "max",
                     jreal((double)histogram_max_ns(h) / 1e6, 3), "mean",
                     jreal(histogram_mean_ns(h) / 1e6, 3));
}

/* Did the generator keep to its schedule? Whole-run figures: records due
 * by their intended time (scheduled) against records sent, late sends (more
 * than 1 ms after their time), the p99 of the send lag and the share of time
 * the generator was idle (its headroom). A generator without a schedule
 * (every load phase is `max`: every record is due when it is made) is said
 * to be so; that comes from the load shape, never from the counters. */
static json_t *generator_verdict(const obs_snapshot *snap, const stage_sample *g, uint64_t end)
{
    uint64_t y = g->records_scheduled, x = g->records_out, late = g->late_records;
    uint64_t wall = sub0(end, snap->t_start_ns);
    double idle = wall ? (double)g->idle_ns / (double)wall : 0.0;
    double p99 =
        g->lag && histogram_count(g->lag) ? (double)histogram_quantile_ns(g->lag, 0.99) / 1e6 : 0.0;
    char text[512];
    int kept = 1;
    if (g->source) {
        /* Records come from outside, as fast as they arrive: the lag is how
         * late they reached this process after their intended time. */
        snprintf(text, sizeof text,
                 "source: %" PRIu64 " records arrived from outside the process, p99 %.3f ms after "
                 "their intended time (the links and processes before this one)",
                 x, p99);
    } else if (snap->unscheduled) {
        /* From the load shape, not the counters: a scheduled rate the
         * generator could not reach looks the same in them. */
        snprintf(text, sizeof text,
                 "generator ran as fast as it could (load shape max, no schedule): %" PRIu64
                 " records, p99 lag %.3f ms",
                 x, p99);
    } else {
        uint64_t behind = y > x ? y - x : 0;
        uint64_t slack = y / 1000 > 256 ? y / 1000 : 256;
        double late_frac = x ? (double)late / (double)x : 0.0;
        if (behind > slack) {
            kept = 0;
            snprintf(text, sizeof text,
                     "GENERATOR COULD NOT KEEP UP: sent %" PRIu64 " of %" PRIu64
                     " scheduled records (%.1f%% behind); %" PRIu64
                     " were sent more than 1 ms late; p99 lag %.3f ms; idle %.0f%% of the time. "
                     "Latency figures count every late record from its intended time.",
                     x, y, y ? 100.0 * (double)behind / (double)y : 0.0, late, p99, 100.0 * idle);
        } else if (late_frac > 0.01) {
            kept = 0;
            snprintf(text, sizeof text,
                     "GENERATOR WAS LATE: it sent all %" PRIu64 " scheduled records, but %" PRIu64
                     " (%.1f%%) more than 1 ms after their intended time; p99 lag %.3f ms; idle "
                     "%.0f%% of the time. Latency figures count every late record from its "
                     "intended time.",
                     y, late, 100.0 * late_frac, p99, 100.0 * idle);
        } else if (idle < 0.05) {
            kept = 0;
            snprintf(
                text, sizeof text,
                "generator kept up, but without headroom: idle %.0f%% of the time; sent %" PRIu64
                " of %" PRIu64 " scheduled records, p99 lag %.3f ms",
                100.0 * idle, x, y, p99);
        } else {
            snprintf(text, sizeof text,
                     "generator kept up: sent %" PRIu64 " of %" PRIu64
                     " scheduled records, p99 lag %.3f ms, idle %.0f%% of the time",
                     x, y, p99, 100.0 * idle);
        }
    }
    return json_pack("{s:b, s:s, s:I, s:I, s:I, s:f, s:f}", "kept_up", kept, "text", text,
                     "scheduled", (json_int_t)y, "sent", (json_int_t)x, "late", (json_int_t)late,
                     "p99_lag_ms", p99, "idle_fraction", idle);
}

static json_t *stage_json(const obs_snapshot *snap, const stage_sample *s, const stage_snapshot *w,
                          const stage_snapshot *st, uint64_t window_ns)
{
    int ok = 1;
    int gen = strcmp(s->kind, "generator") == 0, sink = strcmp(s->kind, "sink") == 0;
    json_t *o = json_object();
    if (!o)
        return NULL;
    set(o, "name", json_string(s->name), &ok);
    set(o, "plugin", json_string(s->plugin), &ok);
    set(o, "version", json_string(s->version), &ok);
    set(o, "kind", json_string(s->kind), &ok);
    set(o, "build_id", json_string(s->build_id), &ok);
    set(o, "records_in", jint(s->records_in), &ok);
    set(o, "records_out", jint(s->records_out), &ok);
    set(o, "bytes_in", jint(s->bytes_in), &ok);
    set(o, "bytes_out", jint(s->bytes_out), &ok);

    /* Sinks produce nothing: their rate is what they consumed. */
    uint64_t n_rate, b_rate, cb_ns;
    if (w && st) {
        n_rate = sink ? sub0(st->records_in, w->records_in) : sub0(st->records_out, w->records_out);
        b_rate = sink ? sub0(st->bytes_in, w->bytes_in) : sub0(st->bytes_out, w->bytes_out);
        cb_ns = sub0(st->callback_ns, w->callback_ns);
    } else {
        n_rate = sink ? s->records_in : s->records_out;
        b_rate = sink ? s->bytes_in : s->bytes_out;
        cb_ns = s->callback_wall_ns;
    }
    set(o, "rate_per_s", jreal(per_sec(n_rate, window_ns), 1), &ok);
    set(o, "mb_per_s", jreal(per_sec(b_rate, window_ns) / 1e6, 3), &ok);
    /* Parallel instances: the share of each instance's time, on average. */
    double threads = s->n_instances > 1 ? (double)s->n_instances : 1.0;
    set(o, "busy_pct",
        jreal(window_ns ? 100.0 * (double)cb_ns / ((double)window_ns * threads) : 0, 2), &ok);
    if (s->n_instances > 1) {
        set(o, "instances", jint(s->n_instances), &ok);
        json_t *per = json_array();
        for (uint32_t k = 0; per && s->instances && k < s->n_instances; k++)
            json_array_append_new(per, jint(s->instances[k].records_in));
        set(o, "records_in_per_instance", per, &ok);
    }

    /* Per record handled (what a generator emits, what others consume),
     * over the measured window when its marks exist, else the whole run.
     * CPU inside callbacks is the window's callback wall time scaled by the
     * CPU/wall ratio of the callbacks sampled in that window. */
    uint64_t n, cpu_ns, allocs, alloc_bytes;
    if (w && st) {
        n = gen ? sub0(st->records_out, w->records_out) : sub0(st->records_in, w->records_in);
        uint64_t sc = sub0(st->sampled_cpu_ns, w->sampled_cpu_ns);
        uint64_t sw = sub0(st->sampled_wall_ns, w->sampled_wall_ns);
        double ratio = sw ? (double)sc / (double)sw : 0.0;
        cpu_ns = (uint64_t)((double)cb_ns * (ratio > 1.0 ? 1.0 : ratio));
        allocs = sub0(st->allocs, w->allocs);
        alloc_bytes = sub0(st->alloc_bytes, w->alloc_bytes);
    } else {
        n = gen ? s->records_out : s->records_in;
        cpu_ns = s->callback_cpu_ns;
        allocs = s->allocs;
        alloc_bytes = s->alloc_bytes;
    }
    set(o, "cpu_ns_per_record", n ? jreal((double)cpu_ns / (double)n, 1) : json_null(), &ok);
    set(o, "allocs_per_record", n ? jreal((double)allocs / (double)n, 4) : json_null(), &ok);
    set(o, "alloc_bytes_per_record", n ? jreal((double)alloc_bytes / (double)n, 1) : json_null(),
        &ok);
    set(o, "blocked_s", jreal((double)s->blocked_ns / 1e9, 3), &ok);
    set(o, "cpu_s", jreal((double)s->thread_cpu_ns / 1e9, 3), &ok);
    set(o, "heap_live_bytes", jint(s->heap_live_bytes), &ok);
    if (gen) {
        set(o, "late_records", jint(s->late_records), &ok);
        set(o, "max_lag_ms", jreal(s->lag ? (double)histogram_max_ns(s->lag) / 1e6 : 0, 3), &ok);
        set(o, "idle_s", jreal((double)s->idle_ns / 1e9, 3), &ok);
    } else {
        set(o, "late_records", json_null(), &ok);
    }
    set(o, "latency_ms", sink ? latency_json(s->latency) : json_null(), &ok);

    json_t *by = json_object(), *counters = json_object();
    if (by && s->callback_errors)
        set(by, "failed_callbacks", jint(s->callback_errors), &ok);
    for (uint32_t c = 0; by && counters && c < s->n_counters; c++)
        set(s->counters[c].kind == OBS_COUNTER_ERROR ? by : counters, s->counters[c].name,
            jint(s->counters[c].value), &ok);
    set(o, "errors", jint(s->errors), &ok);
    set(o, "errors_by_reason", by, &ok);
    set(o, "counters", counters, &ok);
    (void)snap;
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *report_json(const obs_snapshot *snap, const stage_snapshot *warm,
                    const stage_snapshot *stop, const json_t *extra)
{
    int ok = 1;
    uint64_t window;
    if (warm && stop)
        window = sub0(snap->t_stop_ns, snap->t_warm_ns);
    else
        window = sub0(snap->t_end_ns ? snap->t_end_ns : snap->t_mono_ns, snap->t_start_ns);
    uint64_t end = snap->t_end_ns ? snap->t_end_ns : snap->t_mono_ns;
    json_t *r = json_object(), *stages = json_array();
    if (!r || !stages) {
        json_decref(r);
        json_decref(stages);
        return NULL;
    }
    set(r, "format", json_integer(REPORT_FORMAT), &ok);
    set(r, "pipeline", json_string(snap->pipeline), &ok);
    set(r, "state", json_string(snapshot_state_name(snap->state)), &ok);
    set(r, "failed", json_boolean(snap->failed), &ok);
    set(r, "run_s", jreal((double)sub0(end, snap->t_start_ns) / 1e9, 3), &ok);
    set(r, "measured_s", jreal((double)window / 1e9, 3), &ok);
    set(r, "warmup_s", jreal((double)sub0(snap->t_warm_ns, snap->t_start_ns) / 1e9, 3), &ok);
    set(r, "drain_ms",
        snap->t_end_ns && snap->t_stop_ns
            ? jreal((double)sub0(snap->t_end_ns, snap->t_stop_ns) / 1e6, 1)
            : json_null(),
        &ok);
    set(r, "window", json_string(warm && stop ? "measured" : "whole_run"), &ok);
    for (size_t i = 0; i < snap->n_stages; i++) {
        json_t *s = stage_json(snap, &snap->stages[i], warm ? &warm[i] : NULL,
                               stop ? &stop[i] : NULL, window);
        if (!s || json_array_append_new(stages, s) < 0)
            ok = 0;
    }
    set(r, "stages", stages, &ok);
    set(r, "memory",
        snap->rss_bytes ? json_pack("{s:o, s:o, s:o}", "rss_bytes", jint(snap->rss_bytes),
                                    "rss_peak_bytes", jint(snap->rss_peak_bytes), "pss_bytes",
                                    snap->pss_bytes ? jint(snap->pss_bytes) : json_null())
                        : json_null(),
        &ok);
    if (snap->n_stages)
        set(r, "generator", generator_verdict(snap, &snap->stages[0], end), &ok);
    if (extra && json_is_object(extra) && json_object_update(r, (json_t *)extra) < 0)
        ok = 0;
    if (!ok) {
        json_decref(r);
        return NULL;
    }
    return r;
}

/* ------------------------------------------------------------------------ */
/* Printing (from JSON only)                                                 */

static const char *str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

/* A number, or NAN when missing or null. */
static double num(const json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Prints n with thousands separators into buf; "-" when NAN. */
static const char *group(double v, char *buf, size_t len)
{
    if (isnan(v))
        return "-";
    char tmp[32];
    int k = snprintf(tmp, sizeof(tmp), "%.0f", v);
    size_t o = 0;
    for (int i = 0; i < k && o + 2 < len; i++) {
        if (i && (k - i) % 3 == 0 && tmp[i - 1] != '-')
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

/* Formats v with `prec` decimals into buf; "-" when NAN. */
static const char *fmt(double v, int prec, char *buf, size_t len)
{
    if (isnan(v))
        return "-";
    snprintf(buf, len, "%.*f", prec, v);
    return buf;
}

#define TABLE_HEAD "%-14s %-16s %-8s %13s %13s %11s %8s %8s %6s %10s %10s %9s %8s %8s %8s %9s\n"

void report_print(const json_t *r, FILE *f)
{
    char b[16][40];
    double drain = num(r, "drain_ms");
    json_t *run_id = json_object_get(r, "run_id");
    char run[48] = "";
    if (json_is_integer(run_id))
        snprintf(run, sizeof(run), " (run %" JSON_INTEGER_FORMAT ")", json_integer_value(run_id));
    fprintf(f, "\npipeline '%s'%s: %.2f s run, %.2f s measured (after %.2f s warm-up), ",
            str(r, "pipeline"), run, num(r, "run_s"), num(r, "measured_s"), num(r, "warmup_s"));
    if (isnan(drain))
        fprintf(f, "%s", str(r, "state"));
    else
        fprintf(f, "drained in %.1f ms", drain);
    fprintf(f, "%s\n", json_is_true(json_object_get(r, "failed")) ? ", FAILED" : ", ended cleanly");
    const char *verdict =
        json_string_value(json_object_get(json_object_get(r, "generator"), "text"));
    if (verdict)
        fprintf(f, "%s\n", verdict);
    fprintf(f, TABLE_HEAD, "stage", "plugin", "version", "records_in", "records_out", "rec/s",
            "MB/s", "errors", "busy%", "cpu_ns/rec", "allocs/rec", "blocked_s", "late", "p50_ms",
            "p99_ms", "p99.9_ms");
    json_t *stages = json_object_get(r, "stages");
    size_t i;
    json_t *s;
    json_array_foreach(stages, i, s)
    {
        const char *kind = str(s, "kind");
        json_t *lat = json_object_get(s, "latency_ms");
        char busy[48];
        snprintf(busy, sizeof(busy), "%s%%", fmt(num(s, "busy_pct"), 1, b[0], sizeof(b[0])));
        fprintf(
            f, TABLE_HEAD, str(s, "name"), str(s, "plugin"), str(s, "version"),
            strcmp(kind, "generator") == 0 ? "-" : group(num(s, "records_in"), b[1], 40),
            strcmp(kind, "sink") == 0 ? "-" : group(num(s, "records_out"), b[2], 40),
            fmt(num(s, "rate_per_s"), 0, b[3], 40), fmt(num(s, "mb_per_s"), 1, b[4], 40),
            group(num(s, "errors"), b[5], 40), busy, fmt(num(s, "cpu_ns_per_record"), 1, b[6], 40),
            fmt(num(s, "allocs_per_record"), 3, b[7], 40), fmt(num(s, "blocked_s"), 3, b[8], 40),
            group(num(s, "late_records"), b[9], 40), fmt(num(lat, "p50"), 3, b[10], 40),
            fmt(num(lat, "p99"), 3, b[11], 40), fmt(num(lat, "p99_9"), 3, b[12], 40));
    }
    json_array_foreach(stages, i, s)
    {
        fprintf(f, "  %s:", str(s, "name"));
        json_t *per = json_object_get(s, "records_in_per_instance");
        if (json_is_array(per)) {
            size_t k;
            json_t *v;
            fprintf(f, " instances=%" JSON_INTEGER_FORMAT " records_in=",
                    json_integer_value(json_object_get(s, "instances")));
            json_array_foreach(per, k, v)
                fprintf(f, "%s%s", k ? "/" : "", group((double)json_integer_value(v), b[0], 40));
        }
        if (strcmp(str(s, "kind"), "generator") == 0)
            fprintf(f, " late_records=%s max_lag_ms=%s idle_s=%s",
                    group(num(s, "late_records"), b[0], 40), fmt(num(s, "max_lag_ms"), 3, b[1], 40),
                    fmt(num(s, "idle_s"), 3, b[2], 40));
        json_t *lat = json_object_get(s, "latency_ms");
        if (json_is_object(lat))
            fprintf(f,
                    " latency_ms(from intended time): p50=%.3f p99=%.3f p99.9=%.3f max=%.3f "
                    "mean=%.3f",
                    num(lat, "p50"), num(lat, "p99"), num(lat, "p99_9"), num(lat, "max"),
                    num(lat, "mean"));
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(s, "errors_by_reason"), k, v)
            fprintf(f, " error:%s=%" JSON_INTEGER_FORMAT, k, json_integer_value(v));
        json_object_foreach(json_object_get(s, "counters"), k, v)
            fprintf(f, " %s=%" JSON_INTEGER_FORMAT, k, json_integer_value(v));
        fprintf(f, " alloc_bytes/rec=%s heap_live_MiB=%s cpu_s=%s\n",
                fmt(num(s, "alloc_bytes_per_record"), 1, b[3], 40),
                fmt(num(s, "heap_live_bytes") / 1048576.0, 2, b[5], 40),
                fmt(num(s, "cpu_s"), 3, b[4], 40));
    }
    json_t *mem = json_object_get(r, "memory");
    if (json_is_object(mem))
        fprintf(f, "  memory: hostd resident %s MiB at the end (peak %s MiB), proportional %s MiB\n",
                fmt(num(mem, "rss_bytes") / 1048576.0, 1, b[0], 40),
                fmt(num(mem, "rss_peak_bytes") / 1048576.0, 1, b[1], 40),
                fmt(num(mem, "pss_bytes") / 1048576.0, 1, b[2], 40));
    /* The run store's failed writes (a full disk), when there were any. */
    json_t *st = json_object_get(r, "store");
    json_int_t failed = json_integer_value(json_object_get(st, "writes_failed"));
    if (failed > 0)
        fprintf(f,
                "  store: %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT
                " writes failed%s (last: %s)\n",
                failed, json_integer_value(json_object_get(st, "writes")),
                json_is_true(json_object_get(st, "failing")) ? ", still failing at the end" : "",
                str(st, "last_error"));
}

/* ------------------------------------------------------------------------ */
/* Comparison                                                                */

/* The figures compared, with how they print. */
static const struct figure {
    const char *label;
    const char *key; /* in the stage object */
    const char *sub; /* in its "latency_ms" object, when set */
    int prec;
} figures[] = {
    {"rec/s", "rate_per_s", NULL, 0},
    {"MB/s", "mb_per_s", NULL, 3},
    {"busy%", "busy_pct", NULL, 2},
    {"cpu_ns/rec", "cpu_ns_per_record", NULL, 1},
    {"allocs/rec", "allocs_per_record", NULL, 4},
    {"alloc_bytes/rec", "alloc_bytes_per_record", NULL, 1},
    {"blocked_s", "blocked_s", NULL, 3},
    {"late", "late_records", NULL, 0},
    {"errors", "errors", NULL, 0},
    {"p50_ms", "latency_ms", "p50", 3},
    {"p99_ms", "latency_ms", "p99", 3},
    {"p99.9_ms", "latency_ms", "p99_9", 3},
    {"cpu_s", "cpu_s", NULL, 3},
};

static double figure_value(const json_t *stage, const struct figure *fg)
{
    if (!stage)
        return NAN;
    return fg->sub ? num(json_object_get(stage, fg->key), fg->sub) : num(stage, fg->key);
}

static const json_t *stage_named(const json_t *report, const char *name)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(report, "stages"), i,
                       s) if (strcmp(str(s, "name"), name) == 0) return s;
    return NULL;
}

static void name_run(const json_t *r, const char *letter, FILE *f)
{
    json_t *id = json_object_get(r, "run_id");
    fprintf(f, "%s = ", letter);
    if (json_is_integer(id))
        fprintf(f, "run %" JSON_INTEGER_FORMAT " ", json_integer_value(id));
    fprintf(f, "(pipeline '%s'", str(r, "pipeline"));
    if (json_is_string(json_object_get(r, "start")))
        fprintf(f, ", started %s", str(r, "start"));
    fprintf(f, ", %.2f s measured%s)\n", num(r, "measured_s"),
            json_is_true(json_object_get(r, "failed")) ? ", FAILED" : "");
}

static void compare_stage(const char *name, const json_t *sa, const json_t *sb, FILE *f)
{
    char x[40], y[40], d[40];
    for (size_t k = 0; k < sizeof(figures) / sizeof(figures[0]); k++) {
        const struct figure *fg = &figures[k];
        double a = figure_value(sa, fg), b = figure_value(sb, fg);
        if (isnan(a) && isnan(b))
            continue;
        if (isnan(a) || isnan(b))
            snprintf(d, sizeof(d), "-");
        else if (a == b)
            snprintf(d, sizeof(d), "0.0%%");
        else if (a == 0)
            snprintf(d, sizeof(d), "new");
        else
            snprintf(d, sizeof(d), "%+.1f%%", 100.0 * (b - a) / fabs(a));
        fprintf(f, "%-14s %-16s %16s %16s %9s\n", name, fg->label,
                fg->prec == 0 ? group(a, x, sizeof(x)) : fmt(a, fg->prec, x, sizeof(x)),
                fg->prec == 0 ? group(b, y, sizeof(y)) : fmt(b, fg->prec, y, sizeof(y)), d);
        name = "";
    }
}

void report_compare(const json_t *a, const json_t *b, FILE *f)
{
    name_run(a, "A", f);
    name_run(b, "B", f);
    fprintf(f, "%-14s %-16s %16s %16s %9s\n", "stage", "figure", "A", "B", "change");
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(a, "stages"), i, s)
    {
        const char *name = str(s, "name");
        const json_t *sb = stage_named(b, name);
        compare_stage(name, s, sb, f);
        if (sb && (strcmp(str(s, "plugin"), str(sb, "plugin")) != 0 ||
                   strcmp(str(s, "version"), str(sb, "version")) != 0))
            fprintf(f, "%-14s (A: %s %s, B: %s %s)\n", "", str(s, "plugin"), str(s, "version"),
                    str(sb, "plugin"), str(sb, "version"));
    }
    json_array_foreach(json_object_get(b, "stages"), i, s)
    {
        if (!stage_named(a, str(s, "name")))
            compare_stage(str(s, "name"), NULL, s, f);
    }
}
