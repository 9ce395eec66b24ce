/*
 * snapshot.c - pipeline_snapshot(): a consistent, caller-owned copy of every
 * stage's counters and histograms (see snapshot.h), and the report built
 * from it.
 *
 * Counters are single-writer relaxed atomics, read here with atomic loads;
 * histograms are copied with histogram_merge(), which never blocks the
 * recording thread. The thread CPU time of a running stage is read from its
 * CPU clock here, on the reader's thread, so the stage thread pays nothing.
 */
#include "engine/snapshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "engine/host.h"
#include "measure/report.h"

static uint64_t ld(const _Atomic uint64_t *v)
{
    return atomic_load_explicit((_Atomic uint64_t *)v, memory_order_relaxed);
}

static uint64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A copy of `src` (NULL stays NULL); returns -1 when out of memory. */
static int copy_histogram(const histogram *src, histogram **dst)
{
    *dst = NULL;
    if (!src)
        return 0;
    *dst = calloc(1, sizeof(histogram));
    if (!*dst)
        return -1;
    histogram_merge(*dst, src);
    return 0;
}

static uint64_t stage_thread_cpu(const stage *s)
{
    stage *w = (stage *)s;
    if (atomic_load(&w->cpu_clock_valid)) {
        struct timespec ts;
        /* Fails once the thread has exited; its final figure is then stored. */
        if (clock_gettime(s->cpu_clock, &ts) == 0 && atomic_load(&w->cpu_clock_valid))
            return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
    return ld(&s->stats.cpu_ns);
}

static int sample_stage(const stage *s, stage_sample *o)
{
    const stage_stats *st = &s->stats;
    snprintf(o->name, sizeof(o->name), "%s", s->cfg->name);
    const stage_slot *sl = stage_active(s);
    snprintf(o->plugin, sizeof(o->plugin), "%s", sl->desc->name);
    snprintf(o->version, sizeof(o->version), "%s", sl->desc->version);
    snprintf(o->kind, sizeof(o->kind), "%s", plugin_kind_name(s->kind));
    o->source = (sl->desc->flags & OBS_STAGE_SOURCE) != 0;
    plugin_build_id_hex(sl->module, o->build_id, sizeof(o->build_id));
    o->n_swaps = atomic_load(&((stage *)s)->n_swaps);

    o->records_in = ld(&st->records_in);
    o->records_out = ld(&st->records_out);
    o->bytes_in = ld(&st->bytes_in);
    o->bytes_out = ld(&st->bytes_out);
    o->batches_in = ld(&st->batches_in);
    o->batches_out = ld(&st->batches_out);
    o->callback_errors = ld(&st->callback_errors);
    o->errors = o->callback_errors + host_error_total(&s->host);
    o->callback_wall_ns = ld(&st->callback_ns);
    /* Ratio estimate from the sampled callbacks (see CPU_SAMPLE_INTERVAL_NS
     * in pipeline.c): CPU inside a callback can never exceed its wall time. */
    uint64_t sc = ld(&st->sampled_cpu_ns), sw = ld(&st->sampled_wall_ns);
    double ratio = sw ? (double)sc / (double)sw : 0.0;
    if (ratio > 1.0)
        ratio = 1.0;
    o->callback_cpu_ns = (uint64_t)((double)o->callback_wall_ns * ratio);
    o->thread_cpu_ns = stage_thread_cpu(s);
    o->allocs = ld(&st->allocs);
    o->frees = ld(&st->frees);
    o->alloc_bytes = ld(&st->alloc_bytes);
    int64_t live = (int64_t)(ld(&st->heap_made) - ld(&st->heap_freed)) +
                   atomic_load_explicit(&((stage *)s)->stats.heap_init, memory_order_relaxed);
    o->heap_live_bytes = live > 0 ? (uint64_t)live : 0;
    o->heap_growing = (uint64_t)atomic_load_explicit(
        &((stage *)(s->instances ? s->instances[0] : s))->heap_growing, memory_order_relaxed);
    o->blocked_ns = ld(&st->blocked_ns);
    uint64_t since = atomic_load_explicit(&((stage *)s)->in_callback_since_ns, memory_order_relaxed);
    uint64_t now = since ? host_now_ns() : 0;
    o->callback_running_ns = since && now > since ? now - since : 0;
    for (uint32_t k = 0; k < s->n_out; k++) {
        o->ring_occupancy += ring_occupancy(s->outs[k]);
        o->ring_capacity += s->outs[k]->cap;
    }
    o->records_scheduled = ld(&st->scheduled);
    o->late_records = ld(&st->late_records);
    o->idle_ns = ld(&st->idle_ns);

    if (copy_histogram(s->service, &o->service) < 0 || copy_histogram(s->lag, &o->lag) < 0 ||
        copy_histogram(s->latency, &o->latency) < 0 ||
        copy_histogram(s->swap_pause, &o->swap_pause) < 0)
        return OBS_ENOMEM;

    uint32_t n = atomic_load(&((stage *)s)->host.n_counters);
    if (n) {
        o->counters = calloc(n, sizeof(snapshot_counter));
        if (!o->counters)
            return OBS_ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
            const host_counter *c = &s->host.counters[i];
            snprintf(o->counters[i].name, sizeof(o->counters[i].name), "%s", c->name);
            snprintf(o->counters[i].help, sizeof(o->counters[i].help), "%s", c->help);
            o->counters[i].kind = c->kind;
            o->counters[i].value = ld(&c->value);
        }
        o->n_counters = n;
    }
    return OBS_OK;
}

/* Adds instance sample `x` into the stage's sum `o`: counters add,
 * histograms merge, plugin counters add by name (a counter only some
 * instances registered is appended). Returns 0 or OBS_ENOMEM. */
static int sample_add(stage_sample *o, const stage_sample *x)
{
    o->records_in += x->records_in;
    o->records_out += x->records_out;
    o->bytes_in += x->bytes_in;
    o->bytes_out += x->bytes_out;
    o->batches_in += x->batches_in;
    o->batches_out += x->batches_out;
    o->callback_errors += x->callback_errors;
    o->errors += x->errors;
    o->callback_wall_ns += x->callback_wall_ns;
    o->callback_cpu_ns += x->callback_cpu_ns;
    o->thread_cpu_ns += x->thread_cpu_ns;
    o->allocs += x->allocs;
    o->frees += x->frees;
    o->alloc_bytes += x->alloc_bytes;
    o->heap_live_bytes += x->heap_live_bytes;
    o->heap_growing |= x->heap_growing;
    o->blocked_ns += x->blocked_ns;
    if (x->callback_running_ns > o->callback_running_ns)
        o->callback_running_ns = x->callback_running_ns;
    o->ring_occupancy += x->ring_occupancy;
    o->ring_capacity += x->ring_capacity;
    o->records_scheduled += x->records_scheduled;
    o->late_records += x->late_records;
    o->idle_ns += x->idle_ns;
    o->n_swaps = x->n_swaps > o->n_swaps ? x->n_swaps : o->n_swaps;
    const histogram *src[4] = {x->service, x->lag, x->latency, x->swap_pause};
    histogram *dst[4] = {o->service, o->lag, o->latency, o->swap_pause};
    for (int h = 0; h < 4; h++)
        if (src[h] && dst[h])
            histogram_merge(dst[h], src[h]);
    for (uint32_t i = 0; i < x->n_counters; i++) {
        uint32_t j = 0;
        while (j < o->n_counters && strcmp(o->counters[j].name, x->counters[i].name) != 0)
            j++;
        if (j == o->n_counters) {
            snapshot_counter *c = realloc(o->counters, (j + 1) * sizeof *c);
            if (!c)
                return OBS_ENOMEM;
            o->counters = c;
            o->counters[j] = x->counters[i];
            o->counters[j].value = 0;
            o->n_counters++;
        }
        o->counters[j].value += x->counters[i].value;
    }
    return OBS_OK;
}

/* The sample of pipeline stage s (instance 0 of it): one instance's own, or
 * the sum over all of them with each one's kept in o->instances. Every
 * instance is read once, so the sum is exactly that of the instances. */
static int sample_pipeline_stage(const stage *s, stage_sample *o)
{
    uint32_t n = s->n_instances ? s->n_instances : 1;
    if (n == 1) {
        o->n_instances = 1;
        return sample_stage(s, o);
    }
    stage_sample *inst = calloc(n, sizeof(stage_sample));
    if (!inst)
        return OBS_ENOMEM;
    int rc = OBS_OK;
    for (uint32_t k = 0; k < n && rc == OBS_OK; k++) {
        rc = sample_stage(s->instances[k], &inst[k]);
        inst[k].n_instances = 1;
    }
    /* The sum: the stage's names (instance 0's), empty histograms of the
     * same kinds, then every instance added. */
    memset(o, 0, sizeof *o);
    memcpy(o->name, inst[0].name, sizeof o->name);
    memcpy(o->plugin, inst[0].plugin, sizeof o->plugin);
    memcpy(o->version, inst[0].version, sizeof o->version);
    memcpy(o->kind, inst[0].kind, sizeof o->kind);
    o->source = inst[0].source;
    memcpy(o->build_id, inst[0].build_id, sizeof o->build_id);
    const histogram *src[4] = {inst[0].service, inst[0].lag, inst[0].latency, inst[0].swap_pause};
    histogram **dst[4] = {&o->service, &o->lag, &o->latency, &o->swap_pause};
    for (int h = 0; h < 4; h++)
        if (src[h] && !(*dst[h] = calloc(1, sizeof(histogram))))
            rc = OBS_ENOMEM;
    o->n_instances = n;
    o->instances = inst;
    for (uint32_t k = 0; k < n && rc == OBS_OK; k++)
        rc = sample_add(o, &inst[k]);
    return rc;
}

void stage_snapshot_take(const stage *s, stage_snapshot *snap)
{
    memset(snap, 0, sizeof *snap);
    uint32_t n = s->n_instances ? s->n_instances : 1;
    for (uint32_t k = 0; k < n; k++) {
        const stage *x = n > 1 ? s->instances[k] : s;
        stage_stats *st = (stage_stats *)&x->stats;
        snap->records_in += atomic_load(&st->records_in);
        snap->records_out += atomic_load(&st->records_out);
        snap->bytes_in += atomic_load(&st->bytes_in);
        snap->bytes_out += atomic_load(&st->bytes_out);
        snap->callback_ns += atomic_load(&st->callback_ns);
        snap->errors += atomic_load(&st->callback_errors) + host_error_total(&x->host);
        snap->sampled_cpu_ns += atomic_load(&st->sampled_cpu_ns);
        snap->sampled_wall_ns += atomic_load(&st->sampled_wall_ns);
        snap->allocs += atomic_load(&st->allocs);
        snap->alloc_bytes += atomic_load(&st->alloc_bytes);
    }
}

/* hostd's memory: resident pages (statm), proportional share
 * (smaps_rollup), the peak resident size (getrusage). */
static void process_memory(obs_snapshot *out)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned long long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%llu %llu", &size, &resident) == 2 && page > 0)
            out->rss_bytes = resident * (unsigned long long)page;
        fclose(f);
    }
    f = fopen("/proc/self/smaps_rollup", "r");
    if (f) {
        char line[256];
        unsigned long long kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "Pss: %llu kB", &kb) == 1) {
                out->pss_bytes = kb * 1024;
                break;
            }
        fclose(f);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        out->rss_peak_bytes = (uint64_t)ru.ru_maxrss * 1024;
}

int pipeline_snapshot(const pipeline *p, obs_snapshot *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->pipeline, sizeof(out->pipeline), "%s", p->cfg->pipeline);
    snprintf(out->run_id, sizeof(out->run_id), "%s", p->cfg->run_id ? p->cfg->run_id : "");
    out->t_mono_ns = host_now_ns();
    out->t_wall_ns = realtime_ns();
    out->t_start_ns = p->t_start_ns;
    out->t_warm_ns = p->t_warm_ns;
    out->t_stop_ns = p->t_stop_ns;
    out->t_end_ns = p->t_end_ns;
    out->duration_ns = p->cfg->duration_ns;
    process_memory(out);
    out->unscheduled = 1;
    for (size_t i = 0; i < p->cfg->n_load; i++)
        out->unscheduled &= p->cfg->load[i].shape == CFG_SHAPE_MAX;
    out->failed = p->failed;
    if (out->t_end_ns)
        out->state = SNAPSHOT_DONE;
    else if (atomic_load(&((pipeline *)p)->stop))
        out->state = SNAPSHOT_DRAINING;
    else if (atomic_load(&((pipeline *)p)->running))
        out->state = SNAPSHOT_RUNNING;
    else
        out->state = SNAPSHOT_STARTING;

    out->stages = calloc(p->n_stages ? p->n_stages : 1, sizeof(stage_sample));
    if (!out->stages)
        return OBS_ENOMEM;
    out->n_stages = p->n_stages;
    for (size_t i = 0; i < p->n_stages; i++) {
        if (sample_pipeline_stage(&p->stages[i], &out->stages[i]) < 0) {
            snapshot_free(out);
            return OBS_ENOMEM;
        }
    }
    return OBS_OK;
}

json_t *pipeline_report_json(const pipeline *p, const json_t *extra)
{
    obs_snapshot snap;
    json_t *r = NULL;
    stage_snapshot *warm = calloc(p->n_stages ? p->n_stages : 1, sizeof(*warm));
    stage_snapshot *stop = calloc(p->n_stages ? p->n_stages : 1, sizeof(*stop));
    if (!warm || !stop || pipeline_snapshot(p, &snap) < 0)
        goto out;
    for (size_t i = 0; i < p->n_stages; i++) {
        warm[i] = p->stages[i].warm;
        stop[i] = p->stages[i].stop;
    }
    /* Before the stop there is no measured window yet: whole run so far. */
    int marks = snap.t_stop_ns != 0 && snap.t_warm_ns != 0;
    r = report_json(&snap, marks ? warm : NULL, marks ? stop : NULL, extra);
    snapshot_free(&snap);
out:
    free(warm);
    free(stop);
    return r;
}

void pipeline_report(const pipeline *p, FILE *f)
{
    json_t *r = pipeline_report_json(p, NULL);
    if (!r) {
        fprintf(f, "report: out of memory\n");
        return;
    }
    report_print(r, f);
    json_decref(r);
}
