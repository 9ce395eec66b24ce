/*
 * experiment_json.c - an experiment's result as the API and the store show
 * it (JSON: state, variants, per-metric means, relative difference,
 * interval, p-value and verdict, the history of looks) and as the
 * end-of-run table prints it. Readers take the experiment's mutex only to
 * copy what they print.
 */
#include "lab/experiment_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_u64.h"

const char *experiment_verdict_name(abstats_verdict v)
{
    switch (v) {
    case ABSTATS_SAME: return "SAME";
    case ABSTATS_FASTER: return "FASTER";
    case ABSTATS_SLOWER: return "SLOWER";
    case ABSTATS_UNSTABLE: return "UNSTABLE";
    default: return "UNKNOWN";
    }
}

static const char *state_name(int st)
{
    switch (st) {
    case EXP_STARTING: return "starting";
    case EXP_RUNNING: return "running";
    case EXP_DONE: return "done";
    case EXP_STOPPED: return "stopped";
    default: return "failed";
    }
}

static json_t *num_or_null(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

json_t *experiment_json(experiment *e)
{
    stage_slot *a = &e->s->first;
    /* The active slot is what A is now (a swap is refused while this runs). */
    a = stage_active(e->s) ? stage_active(e->s) : a;
    uint64_t end = e->t_end_ns ? e->t_end_ns : host_now_ns();
    pthread_mutex_lock(&e->mu);
    json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:b, s:{s:s, s:s}, s:{s:s, s:s}, s:f, s:I, s:I, "
                          "s:f, s:f, s:i}",
                          "id", (json_int_t)e->id, "stage", e->stage_name, "mode",
                          e->mode == EXP_INTERLEAVED ? "interleaved" : "duet", "state",
                          state_name(atomic_load(&e->state)), "aa", e->aa, "a", "plugin",
                          a->desc->name, "version", a->desc->version, "b", "plugin",
                          e->vars[0].b.desc->name, "version", e->vars[0].b.desc->version,
                          "elapsed_s", (double)(end - e->t_start_ns) / 1e9, "samples",
                          (json_int_t)(e->mode == EXP_INTERLEAVED ? e->n_blocks_stage : e->n_pairs),
                          "records", (json_int_t)e->n_records, "threshold", e->threshold,
                          "max_seconds", e->max_seconds, "looks", e->looks_done);
    if (o) /* above INT64_MAX (only a given seed can be): a string */
        json_object_set_new(o, "seed", json_u64(e->seed));
    if (o && e->mode == EXP_INTERLEAVED) {
        /* samples = blocks with stage costs; latency blocks seen by the sink. */
        json_object_set_new(o, "block_ms", json_integer((json_int_t)(e->block_ns / 1000000u)));
        json_object_set_new(o, "latency_blocks", json_integer((json_int_t)e->n_blocks_sink));
        json_object_set_new(o, "skipped_blocks", json_integer((json_int_t)e->n_blocks_skipped));
        /* Parallel instances: a block is all of them; records measured
         * after their block was added are left out and counted. */
        json_object_set_new(o, "instances", json_integer((json_int_t)e->n_vars));
        json_object_set_new(o, "sink_instances", json_integer((json_int_t)e->n_sink_lanes));
        json_object_set_new(o, "late_records", json_integer((json_int_t)e->n_late_records));
    }
    json_t *metrics = json_array();
    const char *overall = "UNKNOWN";
    for (int m = 0; o && metrics && e->have_res && m < e->n_metrics; m++) {
        const abstats_result *r = &e->res[m];
        json_t *x = json_pack("{s:s, s:o, s:o, s:o, s:[o, o], s:o, s:s, s:b}", "name",
                              experiment_metric_names[m], "a", num_or_null(r->mean_a), "b",
                              num_or_null(r->mean_b), "delta", num_or_null(r->delta), "ci",
                              num_or_null(r->ci_lo), num_or_null(r->ci_hi), "p_value",
                              num_or_null(r->p_mann_whitney), "verdict",
                              experiment_verdict_name(r->verdict), "primary", m == e->primary);
        if (x)
            json_array_append_new(metrics, x);
    }
    if (e->have_res)
        overall = experiment_verdict_name(e->res[e->primary].verdict);
    if (o) {
        json_object_set_new(o, "metrics", metrics ? metrics : json_array());
        json_object_set_new(o, "verdict", json_string(overall));
        json_object_set(o, "history", e->history);
    } else {
        json_decref(metrics);
    }
    pthread_mutex_unlock(&e->mu);
    return o;
}

json_t *experiments_json(pipeline *p)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&p->swap_lock);
    lab_list *lab = p->extension;
    for (experiment *e = lab ? lab->head : NULL; arr && e; e = e->next) {
        json_t *full = experiment_json(e);
        if (!full)
            continue;
        json_t *brief = json_pack(
            "{s:O, s:O, s:O, s:O, s:O}", "id", json_object_get(full, "id"), "stage",
            json_object_get(full, "stage"), "mode", json_object_get(full, "mode"), "state",
            json_object_get(full, "state"), "verdict", json_object_get(full, "verdict"));
        json_decref(full);
        if (brief)
            json_array_append_new(arr, brief);
    }
    pthread_mutex_unlock(&p->swap_lock);
    return arr;
}

void experiment_print(experiment *e, FILE *f)
{
    json_t *j = experiment_json(e);
    if (!j)
        return;
    fprintf(f,
            "\nexperiment %" JSON_INTEGER_FORMAT " on stage '%s' (%s%s): A = %s %s, B = %s %s; "
            "%" JSON_INTEGER_FORMAT " %s in %.1f s, %s\n",
            json_integer_value(json_object_get(j, "id")), e->stage_name,
            e->mode == EXP_INTERLEAVED ? "interleaved" : "duet", e->aa ? ", A/A" : "",
            json_string_value(json_object_get(json_object_get(j, "a"), "plugin")),
            json_string_value(json_object_get(json_object_get(j, "a"), "version")),
            json_string_value(json_object_get(json_object_get(j, "b"), "plugin")),
            json_string_value(json_object_get(json_object_get(j, "b"), "version")),
            json_integer_value(json_object_get(j, "samples")),
            e->mode == EXP_INTERLEAVED ? "blocks" : "batch pairs",
            json_real_value(json_object_get(j, "elapsed_s")),
            json_string_value(json_object_get(j, "state")));
    fprintf(f, "%-20s %14s %14s %9s %22s %9s\n", "metric", "A", "B", "delta", "95% CI", "verdict");
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(j, "metrics"), i, m)
    {
        json_t *ci = json_object_get(m, "ci");
        char cis[64] = "-", delta[32] = "-";
        if (json_is_real(json_array_get(ci, 0)))
            snprintf(cis, sizeof cis, "[%+.2f%%, %+.2f%%]",
                     100 * json_real_value(json_array_get(ci, 0)),
                     100 * json_real_value(json_array_get(ci, 1)));
        if (json_is_real(json_object_get(m, "delta")))
            snprintf(delta, sizeof delta, "%+.2f%%",
                     100 * json_real_value(json_object_get(m, "delta")));
        fprintf(
            f, "%-20s %14.3f %14.3f %9s %22s %9s\n", json_string_value(json_object_get(m, "name")),
            json_number_value(json_object_get(m, "a")), json_number_value(json_object_get(m, "b")),
            delta, cis, json_string_value(json_object_get(m, "verdict")));
    }
    fprintf(f, "verdict (%s, threshold %.1f%%): %s\n",
            e->mode == EXP_INTERLEAVED ? "p99 latency" : "CPU ns per record", 100 * e->threshold,
            json_string_value(json_object_get(j, "verdict")));
    json_decref(j);
}
