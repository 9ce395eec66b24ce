/*
 * metrics_prom.c - a pipeline snapshot in the Prometheus text exposition
 * format 0.0.4, what hostd serves at /metrics (docs/http-api.md has the
 * table of metric names).
 *
 * Conventions: every name starts with observatory_, counters end in _total,
 * times are in seconds and sizes in bytes; stage metrics carry the labels
 * pipeline, stage, plugin and version (and instance, per instance, on a
 * stage of parallel instances). Values are written exactly: counts
 * as integers and nanosecond figures as exact decimals of seconds, never
 * through a double. Histograms are exported with a fixed set of `le`
 * boundaries (HISTOGRAM_PROM_* below): each boundary is an edge of the
 * log-linear histogram (histogram_edges_exponential), so the cumulative
 * count at it is exact (histogram_cumulative), not interpolated.
 *
 * The renderer only reads the snapshot, which the caller owns; it keeps no
 * state between calls, so any number of threads may render at once.
 */
#include "measure/metrics_prom.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "observatory/stage.h"

/* The exported bucket boundaries: 100 ns * 2^k, each rounded up to the
 * histogram edge at or above it (at most 0.79% higher), 32 of them, from
 * 100 ns to about 215 s. Documented in docs/http-api.md. */
#define PROM_EDGE_START_NS 100
#define PROM_EDGE_FACTOR 2.0
#define PROM_EDGE_MAX 32

/* A growing output buffer; `oom` makes every later append a no-op. */
typedef struct outbuf {
    char *p;
    size_t len, cap;
    int oom;
} outbuf;

static void ob_reserve(outbuf *b, size_t extra)
{
    if (b->oom || b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 16384;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void ob_putn(outbuf *b, const char *s, size_t n)
{
    ob_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void ob_puts(outbuf *b, const char *s)
{
    ob_putn(b, s, strlen(s));
}

static void ob_putu64(outbuf *b, uint64_t v)
{
    char tmp[24];
    size_t n = sizeof(tmp);
    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    ob_putn(b, tmp + n, sizeof(tmp) - n);
}

/* Nanoseconds as an exact decimal number of seconds ("0.0000001", "2.5"). */
static void ob_put_seconds(outbuf *b, uint64_t ns)
{
    ob_putu64(b, ns / UINT64_C(1000000000));
    uint64_t frac = ns % UINT64_C(1000000000);
    if (frac == 0)
        return;
    char digits[10];
    int n = 9;
    digits[0] = '.';
    for (int i = 9; i >= 1; i--) {
        digits[i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    while (digits[n] == '0')
        n--;
    ob_putn(b, digits, (size_t)n + 1);
}

/* A label value with \, " and newline escaped, as the format requires. */
static void ob_put_label_value(outbuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            ob_putn(b, "\\\\", 2);
        else if (*s == '"')
            ob_putn(b, "\\\"", 2);
        else if (*s == '\n')
            ob_putn(b, "\\n", 2);
        else
            ob_putn(b, s, 1);
    }
}

static void ob_header(outbuf *b, const char *name, const char *type, const char *help)
{
    ob_puts(b, "# HELP ");
    ob_puts(b, name);
    ob_putn(b, " ", 1);
    ob_puts(b, help); /* our own text: no backslash or newline to escape */
    ob_puts(b, "\n# TYPE ");
    ob_puts(b, name);
    ob_putn(b, " ", 1);
    ob_puts(b, type);
    ob_putn(b, "\n", 1);
}

/* Starts a sample line: name{labels (without the closing brace). */
static void ob_sample_start(outbuf *b, const char *name, const char *suffix, const char *labels)
{
    ob_puts(b, name);
    if (suffix)
        ob_puts(b, suffix);
    ob_putn(b, "{", 1);
    ob_puts(b, labels);
}

enum { VAL_COUNT, VAL_SECONDS };

static void ob_sample_end(outbuf *b, uint64_t v, int unit)
{
    ob_putn(b, "} ", 2);
    if (unit == VAL_SECONDS)
        ob_put_seconds(b, v);
    else
        ob_putu64(b, v);
    ob_putn(b, "\n", 1);
}

/* Which stages a metric applies to. */
enum { K_GEN = 1, K_XF = 2, K_SINK = 4, K_ALL = 7, K_NOT_GEN = 6, K_NOT_SINK = 3 };

static unsigned kind_bit(const stage_sample *s)
{
    if (strcmp(s->kind, "generator") == 0)
        return K_GEN;
    if (strcmp(s->kind, "sink") == 0)
        return K_SINK;
    return K_XF;
}

typedef struct stage_metric {
    const char *name, *type, *help;
    size_t offset; /* of a uint64_t in stage_sample */
    int unit;
    unsigned kinds;
} stage_metric;

#define F(field) offsetof(stage_sample, field)
static const stage_metric stage_metrics[] = {
    {"observatory_records_in_total", "counter", "Records received from the input ring.",
     F(records_in), VAL_COUNT, K_NOT_GEN},
    {"observatory_records_out_total", "counter", "Records emitted to the output ring.",
     F(records_out), VAL_COUNT, K_NOT_SINK},
    {"observatory_bytes_in_total", "counter", "Payload bytes of the records received.", F(bytes_in),
     VAL_COUNT, K_NOT_GEN},
    {"observatory_bytes_out_total", "counter", "Payload bytes of the records emitted.",
     F(bytes_out), VAL_COUNT, K_NOT_SINK},
    {"observatory_batches_in_total", "counter", "Batches received from the input ring.",
     F(batches_in), VAL_COUNT, K_NOT_GEN},
    {"observatory_batches_out_total", "counter", "Batches pushed into the output ring.",
     F(batches_out), VAL_COUNT, K_NOT_SINK},
    {"observatory_callback_wall_seconds_total", "counter",
     "Wall-clock time spent inside the plugin's callbacks.", F(callback_wall_ns), VAL_SECONDS,
     K_ALL},
    {"observatory_callback_cpu_seconds_total", "counter",
     "Thread CPU time spent inside the plugin's callbacks.", F(callback_cpu_ns), VAL_SECONDS,
     K_ALL},
    {"observatory_thread_cpu_seconds_total", "counter",
     "CPU time of the stage thread, callbacks and host work included.", F(thread_cpu_ns),
     VAL_SECONDS, K_ALL},
    {"observatory_allocations_total", "counter",
     "Allocations made by the plugin inside its callbacks.", F(allocs), VAL_COUNT, K_ALL},
    {"observatory_frees_total", "counter", "Frees made by the plugin inside its callbacks.",
     F(frees), VAL_COUNT, K_ALL},
    {"observatory_allocated_bytes_total", "counter",
     "Bytes requested by the plugin's allocations inside its callbacks.", F(alloc_bytes), VAL_COUNT,
     K_ALL},
    {"observatory_heap_live_bytes", "gauge",
     "Heap the plugin holds now: bytes its callbacks, init and fini allocated minus freed.",
     F(heap_live_bytes), VAL_COUNT, K_ALL},
    {"observatory_heap_growing", "gauge",
     "1 when the stage's live heap grew at every 10 s step of the last minute, by more than "
     "32 MiB (hostd logged a warning), else 0.",
     F(heap_growing), VAL_COUNT, K_ALL},
    {"observatory_blocked_seconds_total", "counter",
     "Time the stage waited to push into a full output ring (backpressure).", F(blocked_ns),
     VAL_SECONDS, K_NOT_SINK},
    {"observatory_callback_running_seconds", "gauge",
     "How long the plugin callback now running has been running, 0 when none (the watchdog "
     "logs one past run.callback_warn).",
     F(callback_running_ns), VAL_SECONDS, K_ALL},
    {"observatory_records_scheduled_total", "counter",
     "Generator: records whose intended send time has come.", F(records_scheduled), VAL_COUNT,
     K_GEN},
    {"observatory_late_records_total", "counter",
     "Generator: records sent more than 1 ms after their intended time.", F(late_records),
     VAL_COUNT, K_GEN},
    {"observatory_generator_idle_seconds_total", "counter",
     "Generator: time spent waiting for the schedule (headroom).", F(idle_ns), VAL_SECONDS, K_GEN},
};
#undef F

typedef struct hist_metric {
    const char *name, *help;
    size_t offset; /* of a histogram * in stage_sample */
} hist_metric;

static const hist_metric hist_metrics[] = {
    {"observatory_service_seconds", "Time inside the plugin's callback per batch.",
     offsetof(stage_sample, service)},
    {"observatory_lag_seconds", "Generator: send time minus intended send time, per record.",
     offsetof(stage_sample, lag)},
    {"observatory_latency_seconds",
     "Sink: end-to-end latency from the record's intended send time, per record.",
     offsetof(stage_sample, latency)},
};

static uint64_t field_u64(const stage_sample *s, size_t offset)
{
    uint64_t v;
    memcpy(&v, (const char *)s + offset, sizeof(v));
    return v;
}

static const histogram *field_hist(const stage_sample *s, size_t offset)
{
    const histogram *h;
    memcpy(&h, (const char *)s + offset, sizeof(h));
    return h;
}

static void render_histogram(outbuf *b, const char *name, const char *labels, const histogram *h,
                             const uint64_t *le, size_t n_le, uint64_t *cum)
{
    /* Edges come from histogram_edges_exponential, so this cannot fail;
     * zero counts would still be valid output if it did. */
    if (histogram_cumulative(h, le, n_le, cum) != 0)
        memset(cum, 0, n_le * sizeof(*cum));
    for (size_t k = 0; k < n_le; k++) {
        ob_sample_start(b, name, "_bucket", labels);
        ob_puts(b, ",le=\"");
        ob_put_seconds(b, le[k]);
        ob_putn(b, "\"", 1);
        ob_sample_end(b, cum[k], VAL_COUNT);
    }
    ob_sample_start(b, name, "_bucket", labels);
    ob_puts(b, ",le=\"+Inf\"");
    ob_sample_end(b, histogram_count(h), VAL_COUNT);
    ob_sample_start(b, name, "_sum", labels);
    ob_sample_end(b, histogram_sum_ns(h), VAL_SECONDS);
    ob_sample_start(b, name, "_count", labels);
    ob_sample_end(b, histogram_count(h), VAL_COUNT);
}

/* pipeline="…" and, when the run has one, run_id="…": the labels every
 * series starts with, so series of the processes of one run join. */
static void ob_pipeline_labels(outbuf *lb, const obs_snapshot *snap)
{
    ob_puts(lb, "pipeline=\"");
    ob_put_label_value(lb, snap->pipeline);
    if (snap->run_id[0]) {
        ob_puts(lb, "\",run_id=\"");
        ob_put_label_value(lb, snap->run_id);
    }
    ob_puts(lb, "\"");
}

static void render_pipeline(outbuf *b, const obs_snapshot *snap)
{
    outbuf lb = {0};
    ob_pipeline_labels(&lb, snap);
    if (lb.oom) {
        b->oom = 1;
        return;
    }
    const char *pl = lb.p;

    ob_header(b, "observatory_pipeline_state", "gauge",
              "1 for the state the pipeline is in (starting, running, draining, done), else 0.");
    for (int st = SNAPSHOT_STARTING; st <= SNAPSHOT_DONE; st++) {
        ob_sample_start(b, "observatory_pipeline_state", NULL, pl);
        ob_puts(b, ",state=\"");
        ob_puts(b, snapshot_state_name((snapshot_state)st));
        ob_putn(b, "\"", 1);
        ob_sample_end(b, snap->state == (snapshot_state)st, VAL_COUNT);
    }
    ob_header(b, "observatory_pipeline_failed", "gauge", "1 if a stage failed fatally, else 0.");
    ob_sample_start(b, "observatory_pipeline_failed", NULL, pl);
    ob_sample_end(b, snap->failed != 0, VAL_COUNT);
    static const struct {
        const char *name, *help;
        size_t off;
    } mem[] = {
        {"observatory_process_resident_bytes", "hostd's resident set size (every plugin in it).",
         offsetof(obs_snapshot, rss_bytes)},
        {"observatory_process_resident_peak_bytes", "hostd's largest resident set size so far.",
         offsetof(obs_snapshot, rss_peak_bytes)},
        {"observatory_process_pss_bytes",
         "hostd's proportional set size (shared pages divided among their users).",
         offsetof(obs_snapshot, pss_bytes)},
    };
    for (size_t i = 0; i < sizeof mem / sizeof mem[0]; i++) {
        uint64_t v = *(const uint64_t *)((const char *)snap + mem[i].off);
        if (!v)
            continue; /* not known here (no /proc) */
        ob_header(b, mem[i].name, "gauge", mem[i].help);
        ob_sample_start(b, mem[i].name, NULL, pl);
        ob_sample_end(b, v, VAL_COUNT);
    }

    uint64_t up = 0;
    if (snap->t_start_ns) {
        uint64_t until = snap->t_end_ns ? snap->t_end_ns : snap->t_mono_ns;
        up = until > snap->t_start_ns ? until - snap->t_start_ns : 0;
    }
    ob_header(b, "observatory_pipeline_uptime_seconds", "gauge",
              "Time since the pipeline started, until it drained once it has ended.");
    ob_sample_start(b, "observatory_pipeline_uptime_seconds", NULL, pl);
    ob_sample_end(b, up, VAL_SECONDS);
    free(lb.p);
}

/* A stage of one instance is one set of series; a stage of parallel
 * instances is one set per instance, labelled instance="k", so that
 * sum by (stage) gives the stage and no series counts twice. */
static int render_stages(outbuf *b, const obs_snapshot *snap)
{
    size_t n = 0;
    for (size_t i = 0; i < snap->n_stages; i++)
        n += snap->stages[i].instances ? snap->stages[i].n_instances : 1;
    const stage_sample **unit = calloc(n ? n : 1, sizeof(*unit));
    uint32_t *inst = calloc(n ? n : 1, sizeof(*inst));
    char **labels = calloc(n ? n : 1, sizeof(*labels));
    unsigned *kinds = calloc(n ? n : 1, sizeof(*kinds));
    int rc = OBS_ENOMEM;
    if (!unit || !inst || !labels || !kinds)
        goto out;
    for (size_t i = 0, u = 0; i < snap->n_stages; i++) {
        const stage_sample *st = &snap->stages[i];
        if (!st->instances) {
            unit[u] = st;
            inst[u++] = UINT32_MAX;
            continue;
        }
        for (uint32_t k = 0; k < st->n_instances; k++) {
            unit[u] = &st->instances[k];
            inst[u++] = k;
        }
    }
    /* Each series' label set, escaped once. */
    for (size_t i = 0; i < n; i++) {
        const stage_sample *s = unit[i];
        outbuf lb = {0};
        ob_pipeline_labels(&lb, snap);
        ob_puts(&lb, ",stage=\"");
        ob_put_label_value(&lb, s->name);
        ob_puts(&lb, "\",plugin=\"");
        ob_put_label_value(&lb, s->plugin);
        ob_puts(&lb, "\",version=\"");
        ob_put_label_value(&lb, s->version);
        ob_puts(&lb, "\"");
        if (inst[i] != UINT32_MAX) {
            ob_puts(&lb, ",instance=\"");
            ob_putu64(&lb, inst[i]);
            ob_puts(&lb, "\"");
        }
        if (lb.oom)
            goto out;
        labels[i] = lb.p;
        kinds[i] = kind_bit(s);
    }

    if (n) {
        ob_header(b, "observatory_stage_info", "gauge",
                  "Always 1; the stage's kind and the plugin's build-id as labels.");
        for (size_t i = 0; i < n; i++) {
            ob_sample_start(b, "observatory_stage_info", NULL, labels[i]);
            ob_puts(b, ",kind=\"");
            ob_put_label_value(b, unit[i]->kind);
            ob_puts(b, "\",build_id=\"");
            ob_put_label_value(b, unit[i]->build_id);
            ob_putn(b, "\"", 1);
            ob_sample_end(b, 1, VAL_COUNT);
        }
    }

    for (size_t m = 0; m < sizeof(stage_metrics) / sizeof(stage_metrics[0]); m++) {
        const stage_metric *sm = &stage_metrics[m];
        int header = 0;
        for (size_t i = 0; i < n; i++) {
            if (!(kinds[i] & sm->kinds))
                continue;
            if (!header++)
                ob_header(b, sm->name, sm->type, sm->help);
            ob_sample_start(b, sm->name, NULL, labels[i]);
            ob_sample_end(b, field_u64(unit[i], sm->offset), sm->unit);
        }
    }

    /* Errors by where they were counted: the host (callbacks that returned
     * an error) or one of the plugin's error counters, by name. */
    if (n)
        ob_header(b, "observatory_errors_total", "counter",
                  "Errors: failed callbacks (source=host) and the plugin's error counters "
                  "(source=plugin, by reason).");
    for (size_t i = 0; i < n; i++) {
        const stage_sample *s = unit[i];
        ob_sample_start(b, "observatory_errors_total", NULL, labels[i]);
        ob_puts(b, ",source=\"host\",reason=\"callback\"");
        ob_sample_end(b, s->callback_errors, VAL_COUNT);
        for (uint32_t c = 0; c < s->n_counters; c++) {
            if (s->counters[c].kind != OBS_COUNTER_ERROR)
                continue;
            ob_sample_start(b, "observatory_errors_total", NULL, labels[i]);
            ob_puts(b, ",source=\"plugin\",reason=\"");
            ob_put_label_value(b, s->counters[c].name);
            ob_putn(b, "\"", 1);
            ob_sample_end(b, s->counters[c].value, VAL_COUNT);
        }
    }

    int header = 0;
    for (size_t i = 0; i < n; i++) {
        const stage_sample *s = unit[i];
        for (uint32_t c = 0; c < s->n_counters; c++) {
            if (s->counters[c].kind == OBS_COUNTER_ERROR)
                continue;
            if (!header++)
                ob_header(b, "observatory_plugin_events_total", "counter",
                          "The plugin's own (non-error) counters, by name.");
            ob_sample_start(b, "observatory_plugin_events_total", NULL, labels[i]);
            ob_puts(b, ",counter=\"");
            ob_put_label_value(b, s->counters[c].name);
            ob_putn(b, "\"", 1);
            ob_sample_end(b, s->counters[c].value, VAL_COUNT);
        }
    }

    static const struct {
        const char *name, *help;
        int capacity;
    } gauges[] = {
        {"observatory_ring_occupancy_batches", "Batches queued in the stage's output ring.", 0},
        {"observatory_ring_capacity_batches", "Capacity of the stage's output ring, in batches.",
         1},
    };
    for (size_t g = 0; g < 2; g++) {
        header = 0;
        for (size_t i = 0; i < n; i++) {
            const stage_sample *s = unit[i];
            if (s->ring_capacity == 0)
                continue;
            if (!header++)
                ob_header(b, gauges[g].name, "gauge", gauges[g].help);
            ob_sample_start(b, gauges[g].name, NULL, labels[i]);
            ob_sample_end(b, gauges[g].capacity ? s->ring_capacity : s->ring_occupancy, VAL_COUNT);
        }
    }

    uint64_t le[PROM_EDGE_MAX], cum[PROM_EDGE_MAX];
    size_t n_le =
        histogram_edges_exponential(le, PROM_EDGE_MAX, PROM_EDGE_START_NS, PROM_EDGE_FACTOR);
    for (size_t m = 0; m < sizeof(hist_metrics) / sizeof(hist_metrics[0]); m++) {
        header = 0;
        for (size_t i = 0; i < n; i++) {
            const histogram *h = field_hist(unit[i], hist_metrics[m].offset);
            if (!h)
                continue;
            if (!header++)
                ob_header(b, hist_metrics[m].name, "histogram", hist_metrics[m].help);
            render_histogram(b, hist_metrics[m].name, labels[i], h, le, n_le, cum);
        }
    }
    rc = 0;
out:
    if (labels)
        for (size_t i = 0; i < n; i++)
            free(labels[i]);
    free(labels);
    free(kinds);
    free(unit);
    free(inst);
    return rc;
}

int metrics_render(const obs_snapshot *snap, char **out, size_t *len)
{
    outbuf b = {0};
    ob_reserve(&b, 1);
    ob_header(&b, "observatory_build_info", "gauge",
              "Always 1; the version of hostd (Observatory) as a label.");
    ob_puts(&b, "observatory_build_info{version=\"");
    ob_put_label_value(&b, OBS_VERSION);
    ob_puts(&b, "\"} 1\n");
    if (snap) {
        render_pipeline(&b, snap);
        if (render_stages(&b, snap) != 0)
            b.oom = 1;
    }
    if (b.oom) {
        free(b.p);
        *out = NULL;
        *len = 0;
        return OBS_ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}
