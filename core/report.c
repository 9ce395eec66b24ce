/*
 * report.c - the end-of-run report hostd prints: one row per stage with
 * records, rates over the measured window (after warm-up, until the stop),
 * errors, time inside the plugin and time blocked on a full ring, then the
 * plugins' own counters and the end-to-end latency seen at the sink.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "pipeline.h"

static double per_sec(uint64_t n, uint64_t ns)
{
    return ns ? (double)n * 1e9 / (double)ns : 0.0;
}

/* Prints n with thousands separators into buf. */
static const char *group(uint64_t n, char *buf, size_t len)
{
    char tmp[32];
    int k = snprintf(tmp, sizeof(tmp), "%" PRIu64, n);
    size_t o = 0;
    for (int i = 0; i < k && o + 2 < len; i++) {
        if (i && (k - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

void pipeline_report(const pipeline *p, FILE *f)
{
    uint64_t window = p->t_stop_ns > p->t_warm_ns ? p->t_stop_ns - p->t_warm_ns : 0;
    uint64_t total = p->t_end_ns - p->t_start_ns;
    fprintf(f,
            "\npipeline '%s': %.2f s run, %.2f s measured (after %.2f s warm-up), drained in %.1f "
            "ms%s\n",
            p->cfg->pipeline, (double)total / 1e9, (double)window / 1e9,
            (double)(p->t_warm_ns - p->t_start_ns) / 1e9,
            (double)(p->t_end_ns - p->t_stop_ns) / 1e6, p->failed ? ", FAILED" : ", ended cleanly");
    fprintf(f, "%-14s %-16s %-8s %15s %15s %13s %9s %10s %8s %9s\n", "stage", "plugin", "version",
            "records_in", "records_out", "out/s", "MB/s", "errors", "busy%", "blocked_s");
    for (size_t i = 0; i < p->n_stages; i++) {
        const stage *s = &p->stages[i];
        stage_snapshot end;
        stage_snapshot_take(s, &end);
        char in[32], outb[32], errs[32];
        uint64_t rec_out = s->stop.records_out - s->warm.records_out;
        uint64_t bytes_out = s->stop.bytes_out - s->warm.bytes_out;
        uint64_t rec_in = s->stop.records_in - s->warm.records_in;
        uint64_t bytes_in = s->stop.bytes_in - s->warm.bytes_in;
        /* Sinks produce nothing: their rate is what they consumed. */
        uint64_t rate_n = s->kind == OBS_KIND_SINK ? rec_in : rec_out;
        uint64_t rate_b = s->kind == OBS_KIND_SINK ? bytes_in : bytes_out;
        double busy =
            window ? 100.0 * (double)(s->stop.callback_ns - s->warm.callback_ns) / (double)window
                   : 0;
        fprintf(f, "%-14s %-16s %-8s %15s %15s %13.0f %9.1f %10s %7.1f%% %9.3f\n", s->cfg->name,
                s->desc->name, s->desc->version,
                s->kind == OBS_KIND_GENERATOR ? "-" : group(end.records_in, in, sizeof(in)),
                s->kind == OBS_KIND_SINK ? "-" : group(end.records_out, outb, sizeof(outb)),
                per_sec(rate_n, window), per_sec(rate_b, window) / 1e6,
                group(end.errors, errs, sizeof(errs)), busy,
                (double)atomic_load(&((stage *)s)->stats.blocked_ns) / 1e9);
    }
    for (size_t i = 0; i < p->n_stages; i++) {
        const stage *s = &p->stages[i];
        stage_stats *st = (stage_stats *)&s->stats;
        uint32_t n = atomic_load(&((stage *)s)->host.n_counters);
        uint64_t cb_err = atomic_load(&st->callback_errors);
        if (n == 0 && cb_err == 0 && s->kind != OBS_KIND_GENERATOR && s->kind != OBS_KIND_SINK)
            continue;
        fprintf(f, "  %s:", s->cfg->name);
        if (s->kind == OBS_KIND_GENERATOR)
            fprintf(f, " late_records=%" PRIu64 " max_lag_ms=%.3f", atomic_load(&st->late_records),
                    (double)atomic_load(&st->max_lag_ns) / 1e6);
        if (s->kind == OBS_KIND_SINK && s->latency) {
            /* Read through a merged copy: the sink thread owns s->latency. */
            histogram *h = calloc(1, sizeof(*h));
            if (h) {
                histogram_merge(h, s->latency);
                fprintf(f,
                        " latency_ms(from intended time): p50=%.3f p99=%.3f p99.9=%.3f max=%.3f "
                        "mean=%.3f",
                        (double)histogram_quantile_ns(h, 0.50) / 1e6,
                        (double)histogram_quantile_ns(h, 0.99) / 1e6,
                        (double)histogram_quantile_ns(h, 0.999) / 1e6,
                        (double)histogram_max_ns(h) / 1e6, histogram_mean_ns(h) / 1e6);
                free(h);
            }
        }
        if (cb_err)
            fprintf(f, " failed_callbacks=%" PRIu64, cb_err);
        for (uint32_t c = 0; c < n; c++)
            fprintf(f, " %s%s=%" PRIu64,
                    s->host.counters[c].kind == OBS_COUNTER_ERROR ? "error:" : "",
                    s->host.counters[c].name, atomic_load(&((stage *)s)->host.counters[c].value));
        fprintf(f, " cpu_s=%.3f\n", (double)atomic_load(&st->cpu_ns) / 1e9);
    }
}
