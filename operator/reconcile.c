/*
 * reconcile.c - StageSet + observed children -> desired children + status.
 *
 * Level-triggered: nothing here depends on what happened before except what
 * the cluster itself records (annotations on the Deployment, the StageSet's
 * status), so any pass can be repeated. See reconcile.h for the contract and
 * docs/operator.md for the swap protocol.
 */
#include "reconcile.h"

#include "children.h"
#include "hash.h"
#include "render.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Looks up a dotted path ("status.readyReplicas"); NULL when any part is
 * missing. Keys containing dots are looked up with json_object_get directly. */
static const json_t *jget(const json_t *o, const char *path)
{
    char part[128];
    while (o && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof part)
            return NULL;
        memcpy(part, path, n);
        part[n] = '\0';
        o = json_object_get(o, part);
        path += n + (dot ? 1 : 0);
    }
    return o;
}

static const char *jstr(const json_t *o, const char *path)
{
    return json_string_value(jget(o, path));
}

static json_int_t jint(const json_t *o, const char *path, json_int_t dflt)
{
    const json_t *v = jget(o, path);
    return json_is_integer(v) ? json_integer_value(v) : dflt;
}

const char *reconcile_configmap_name(const char *stageset, char *buf, size_t len)
{
    snprintf(buf, len, "%s%s", stageset, RECONCILE_CONFIGMAP_SUFFIX);
    return buf;
}

int reconcile_subset(const json_t *want, const json_t *have, const char *skip)
{
    if (!have)
        return 0;
    if (json_is_object(want)) {
        const char *k;
        const json_t *v;
        if (!json_is_object(have))
            return 0;
        json_object_foreach((json_t *)want, k, v)
        {
            if (skip && strcmp(k, skip) == 0)
                continue;
            if (!reconcile_subset(v, json_object_get(have, k), skip))
                return 0;
        }
        return 1;
    }
    if (json_is_array(want)) {
        if (!json_is_array(have) || json_array_size(want) != json_array_size(have))
            return 0;
        for (size_t i = 0; i < json_array_size(want); i++)
            if (!reconcile_subset(json_array_get(want, i), json_array_get(have, i), skip))
                return 0;
        return 1;
    }
    /* The API server may return 1 for 1.0 in untyped fields; compare numbers by value. */
    if (json_is_number(want) && json_is_number(have))
        return json_number_value(want) == json_number_value(have);
    return json_equal(want, have);
}

/* ---- children (built in children.c) ------------------------------------ */

typedef reconcile_ctx ctx;

/* Stamps the applied-hash annotation (over the object without it) and
 * appends the object to `apply` when the observed child lacks that hash or
 * differs in a field the operator sets (someone edited it). Resource
 * quantities are left out of the field comparison because the API server
 * rewrites them in canonical form ("1000m" -> "1"). Returns 1 when appended. */
static int want_apply(json_t *apply, json_t *obj, const json_t *observed)
{
    char h[17];
    char *dump = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT);
    if (!dump) {
        json_decref(obj);
        return -ENOMEM;
    }
    hash_hex(dump, h);
    free(dump);
    json_t *meta = json_object_get(obj, "metadata");
    json_t *ann = json_object_get(meta, "annotations");
    if (!ann) {
        ann = json_object();
        json_object_set_new(meta, "annotations", ann);
    }
    json_object_set_new(ann, RECONCILE_ANN_APPLIED_HASH, json_string(h));
    /* jget splits at dots, so look the annotation up directly. */
    const char *seen = json_string_value(
        json_object_get(jget(observed, "metadata.annotations"), RECONCILE_ANN_APPLIED_HASH));
    if (observed && seen && strcmp(seen, h) == 0 && reconcile_subset(obj, observed, "resources")) {
        json_decref(obj);
        return 0;
    }
    json_array_append_new(apply, obj);
    return 1;
}

/* ---- versions and swaps ------------------------------------------------ */

/* [{stage, plugin, version}] as the spec asks; version "" when unpinned. */
static json_t *spec_versions(const ctx *c)
{
    json_t *out = json_array();
    size_t i;
    const json_t *st;
    json_array_foreach(jget(c->in->stageset, "spec.stages"), i, st)
    {
        const char *v = jstr(st, "version");
        json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "stage", jstr(st, "name"), "plugin",
                                             jstr(st, "plugin"), "version", v ? v : ""));
    }
    return out;
}

static const json_t *find_by(const json_t *arr, const char *key, const char *val)
{
    size_t i;
    const json_t *e;
    json_array_foreach(arr, i, e)
    {
        const char *s = jstr(e, key);
        if (s && strcmp(s, val) == 0)
            return e;
    }
    return NULL;
}

/* Stages whose plugin or version differ from what the pods run. */
static json_t *changed_stages(const json_t *want, const json_t *active)
{
    json_t *out = json_array();
    size_t i;
    const json_t *w;
    json_array_foreach(want, i, w)
    {
        const json_t *a = find_by(active, "stage", jstr(w, "stage"));
        if (!a || !json_equal(json_object_get(a, "plugin"), json_object_get(w, "plugin")) ||
            !json_equal(json_object_get(a, "version"), json_object_get(w, "version")))
            json_array_append(out, (json_t *)w);
    }
    return out;
}

static int pod_ready(const json_t *pod)
{
    size_t i;
    const json_t *cond;
    if (jget(pod, "metadata.deletionTimestamp") || !jstr(pod, "status.podIP"))
        return 0;
    const char *phase = jstr(pod, "status.phase");
    if (!phase || strcmp(phase, "Running") != 0)
        return 0;
    json_array_foreach(jget(pod, "status.conditions"), i, cond)
    {
        const char *t = jstr(cond, "type"), *s = jstr(cond, "status");
        if (t && s && strcmp(t, "Ready") == 0)
            return strcmp(s, "True") == 0;
    }
    return 0;
}

/* ---- status ------------------------------------------------------------ */

/* A condition carrying lastTransitionTime over from the observed one when its
 * status did not change. Outcome reasons (a swap's result) are kept while the
 * status and generation stay the same, so the next pass does not erase them. */
static json_t *condition(const ctx *c, const char *type, int status, const char *reason,
                         const char *message)
{
    const char *st = status ? "True" : "False";
    const json_t *old = find_by(jget(c->in->stageset, "status.conditions"), "type", type);
    const char *ltt = c->in->now;
    if (old && jstr(old, "status") && strcmp(jstr(old, "status"), st) == 0) {
        if (jstr(old, "lastTransitionTime"))
            ltt = jstr(old, "lastTransitionTime");
        const char *oreason = jstr(old, "reason");
        int sticky = oreason && (strcmp(oreason, "SwapSucceeded") == 0 ||
                                 strcmp(oreason, "SwapFailedRollingOut") == 0);
        if (sticky && jint(old, "observedGeneration", -1) == c->generation &&
            (strcmp(reason, "Complete") == 0 || strcmp(reason, "RollingOut") == 0)) {
            reason = oreason;
            message = jstr(old, "message") ? jstr(old, "message") : "";
        }
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "type", type, "status", st, "reason", reason,
                     "message", message, "lastTransitionTime", ltt, "observedGeneration",
                     c->generation);
}

static const json_t *deploy_condition(const json_t *dep, const char *type)
{
    return find_by(jget(dep, "status.conditions"), "type", type);
}

static void event(json_t *events, const char *type, const char *reason, const char *message)
{
    json_array_append_new(
        events, json_pack("{s:s, s:s, s:s}", "type", type, "reason", reason, "message", message));
}

/* ---- the reconciler ---------------------------------------------------- */

static void copy_trunc(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void reconcile_output_free(reconcile_output *out)
{
    json_decref(out->apply);
    json_decref(out->status);
    json_decref(out->swaps);
    json_decref(out->events);
    memset(out, 0, sizeof *out);
}

static int render_all(ctx *c)
{
    char *masked = NULL, *full = NULL, *joined = NULL;
    int rc;
    if ((rc = render_pipeline(c->in->stageset, RENDER_FULL, &c->pipeline, c->invalid,
                              sizeof c->invalid)) ||
        (rc = render_extras(c->in->stageset, &c->extras, c->invalid, sizeof c->invalid)) ||
        (rc = render_pipeline(c->in->stageset, RENDER_MASK_PLUGINS, &masked, c->invalid,
                              sizeof c->invalid)))
        goto out;
    if (!jstr(c->in->stageset, "spec.image")) {
        snprintf(c->invalid, sizeof c->invalid, "spec.image: required");
        rc = -EINVAL;
        goto out;
    }
    const char *ex = c->extras ? c->extras : "";
    size_t data_bytes = strlen(c->pipeline) + strlen(ex);
    if (data_bytes > RECONCILE_MAX_CONFIGMAP_BYTES) {
        snprintf(c->invalid, sizeof c->invalid,
                 "the rendered ConfigMap would hold %zu bytes of data; the API server accepts at "
                 "most %d (1 MiB) in a ConfigMap: make the spec (stage params) smaller",
                 data_bytes, RECONCILE_MAX_CONFIGMAP_BYTES);
        rc = -EINVAL;
        goto out;
    }
    if (asprintf(&full, "%s\n---\n%s", c->pipeline, ex) < 0 ||
        asprintf(&joined, "%s\n---\n%s", masked, ex) < 0) {
        full = joined = NULL;
        rc = -ENOMEM;
        goto out;
    }
    hash_hex(full, c->full_hash);
    hash_hex(joined, c->struct_hash);
out:
    free(masked);
    free(full);
    free(joined);
    return rc;
}

static json_t *status_base(const ctx *c)
{
    const json_t *dep = c->in->deployment;
    json_t *s = json_pack("{s:I, s:I, s:I, s:s}", "observedGeneration", c->generation, "replicas",
                          jint(dep, "status.replicas", 0), "readyReplicas",
                          jint(dep, "status.readyReplicas", 0), "selector", c->selector);
    const json_t *last = jget(c->in->stageset, "status.lastExperiment");
    if (s && last)
        json_object_set_new(s, "lastExperiment", json_deep_copy(last));
    return s;
}

/* Sets up the ctx fields every status needs; 0 when the StageSet is gone,
 * going or nameless (nothing to write). */
static int ctx_init(ctx *c, const reconcile_input *in)
{
    memset(c, 0, sizeof *c);
    if (!in->stageset || jget(in->stageset, "metadata.deletionTimestamp"))
        return 0;
    c->in = in;
    c->name = jstr(in->stageset, "metadata.name");
    c->ns = jstr(in->stageset, "metadata.namespace");
    if (!c->name || !c->ns)
        return 0;
    c->generation = jint(in->stageset, "metadata.generation", 0);
    c->replicas = jint(in->stageset, "spec.replicas", 1);
    snprintf(c->selector, sizeof c->selector, "%s=%s,%s=%s", RECONCILE_LABEL_NAME,
             RECONCILE_APP_NAME, RECONCILE_LABEL_INSTANCE, c->name);
    return 1;
}

/* Status members that describe what runs, carried over unchanged when this
 * pass could not change it. */
static void keep_running_state(json_t *status, const json_t *ss)
{
    const json_t *oldv = jget(ss, "status.activeVersions");
    if (oldv)
        json_object_set_new(status, "activeVersions", json_deep_copy(oldv));
    const char *oh = jstr(ss, "status.configHash");
    if (oh)
        json_object_set_new(status, "configHash", json_string(oh));
}

int reconcile_apply_failed(const reconcile_input *in, const char *message, reconcile_output *out)
{
    ctx c;
    char msg[2048];
    memset(out, 0, sizeof *out);
    out->apply = json_array();
    out->swaps = json_array();
    out->events = json_array();
    if (!out->apply || !out->swaps || !out->events)
        goto oom;
    if (!ctx_init(&c, in))
        return 0;
    json_t *status = status_base(&c);
    if (!status)
        goto oom;
    /* status.observedGeneration stays at the last generation whose children
     * were applied; the conditions say which generation they are about. */
    const json_t *og = jget(in->stageset, "status.observedGeneration");
    if (json_is_integer(og))
        json_object_set_new(status, "observedGeneration", json_integer(json_integer_value(og)));
    else
        json_object_del(status, "observedGeneration");
    keep_running_state(status, in->stageset);
    const json_t *dep = in->deployment;
    snprintf(msg, sizeof msg,
             "generation %lld not applied: %s (%lld/%lld replicas ready, running the previous "
             "config)",
             (long long)c.generation, message, (long long)jint(dep, "status.readyReplicas", 0),
             (long long)c.replicas);
    json_object_set_new(status, "conditions",
                        json_pack("[o, o, o]", condition(&c, "Ready", 0, "ApplyFailed", msg),
                                  condition(&c, "Progressing", 0, "ApplyFailed", msg),
                                  condition(&c, "Degraded", 1, "ApplyFailed", msg)));
    const json_t *old = find_by(jget(in->stageset, "status.conditions"), "type", "Progressing");
    if (!old || !jstr(old, "reason") || strcmp(jstr(old, "reason"), "ApplyFailed") != 0 ||
        !jstr(old, "message") || strcmp(jstr(old, "message"), msg) != 0)
        event(out->events, "Warning", "ApplyFailed", msg);
    if (!json_equal(status, jget(in->stageset, "status")))
        out->status = json_incref(status);
    json_decref(status);
    return 0;
oom:
    reconcile_output_free(out);
    return -ENOMEM;
}

int reconcile_stageset(const reconcile_input *in, reconcile_output *out)
{
    ctx c;
    int rc = 0;
    char msg[2048];
    json_t *want = NULL, *active_obs = NULL, *changed = NULL, *status = NULL, *dep = NULL;
    memset(out, 0, sizeof *out);
    memset(&c, 0, sizeof c);
    out->apply = json_array();
    out->swaps = json_array();
    out->events = json_array();
    if (!out->apply || !out->swaps || !out->events)
        goto oom;
    /* Gone or going: garbage collection removes the children through their
     * owner references; writing anything now would only race it. */
    if (!ctx_init(&c, in))
        return 0;

    rc = render_all(&c);
    if (rc == -ENOMEM)
        goto oom;
    if (rc) {
        /* Invalid spec: write nothing to the children, say why in status. */
        const json_t *old = find_by(jget(in->stageset, "status.conditions"), "type", "Degraded");
        status = status_base(&c);
        json_t *conds = json_pack("[o, o, o]", condition(&c, "Ready", 0, "InvalidSpec", c.invalid),
                                  condition(&c, "Progressing", 0, "InvalidSpec", c.invalid),
                                  condition(&c, "Degraded", 1, "InvalidSpec", c.invalid));
        keep_running_state(status, in->stageset);
        json_object_set_new(status, "conditions", conds);
        if (!old || !jstr(old, "reason") || strcmp(jstr(old, "reason"), "InvalidSpec") != 0 ||
            !jstr(old, "message") || strcmp(jstr(old, "message"), c.invalid) != 0)
            event(out->events, "Warning", "InvalidSpec", c.invalid);
        rc = 0;
        goto status_out;
    }

    /* ConfigMap first: pods that start from here on read the new config. */
    if (want_apply(out->apply, children_configmap(&c), in->configmap) < 0)
        goto oom;

    /* Which config does the pod template carry? (See reconcile.h.) */
    const json_t *odep = in->deployment;
    const char *tmpl =
        odep ? json_string_value(json_object_get(jget(odep, "spec.template.metadata.annotations"),
                                                 RECONCILE_ANN_CONFIG_HASH))
             : NULL;
    const char *ostruct =
        odep ? json_string_value(json_object_get(jget(odep, "metadata.annotations"),
                                                 RECONCILE_ANN_STRUCTURE_HASH))
             : NULL;
    want = spec_versions(&c);
    active_obs = json_incref((json_t *)jget(in->stageset, "status.activeVersions"));
    const char *template_hash = c.full_hash;
    const char *progress_reason = NULL;
    char progress_msg[768] = "";
    int swapped_all = 0;
    if (tmpl && strcmp(tmpl, c.full_hash) == 0) {
        template_hash = tmpl;
    } else if (tmpl && ostruct && strcmp(ostruct, c.struct_hash) == 0 && active_obs) {
        changed = changed_stages(want, active_obs);
        size_t n_ready = 0, i, j;
        const json_t *pod, *st;
        json_array_foreach(in->pods, i, pod) n_ready += pod_ready(pod) ? 1 : 0;
        if (json_array_size(changed) == 0) {
            template_hash = tmpl; /* already swapped earlier; pods run the spec */
        } else if (n_ready > 0 && !in->swap_results) {
            /* First pass: ask for the swaps and write nothing but the ConfigMap. */
            json_array_foreach(in->pods, i, pod)
            {
                if (!pod_ready(pod))
                    continue;
                json_array_foreach(changed, j, st)
                {
                    json_array_append_new(
                        out->swaps,
                        json_pack("{s:s, s:s, s:s, s:s, s:s}", "pod", jstr(pod, "metadata.name"),
                                  "podIP", jstr(pod, "status.podIP"), "stage", jstr(st, "stage"),
                                  "plugin", jstr(st, "plugin"), "version", jstr(st, "version")));
                }
            }
            goto done;
        } else if (n_ready > 0) {
            size_t n_fail = 0;
            const json_t *r;
            const char *first_fail = NULL;
            json_array_foreach(in->swap_results, i, r)
            {
                if (!json_is_true(json_object_get(r, "ok"))) {
                    if (!n_fail++) {
                        snprintf(progress_msg, sizeof progress_msg,
                                 "swap of stage '%s' on pod '%s' failed: %s",
                                 jstr(r, "stage") ? jstr(r, "stage") : "?",
                                 jstr(r, "pod") ? jstr(r, "pod") : "?",
                                 jstr(r, "message") ? jstr(r, "message") : "no message");
                        first_fail = progress_msg;
                    }
                }
            }
            if (n_fail) {
                snprintf(msg, sizeof msg,
                         "%s; %zu of %zu swaps failed, rolling out config %s instead", first_fail,
                         n_fail, json_array_size(in->swap_results), c.full_hash);
                copy_trunc(progress_msg, sizeof progress_msg, msg);
                event(out->events, "Warning", "SwapFailed", msg);
                progress_reason = "SwapFailedRollingOut";
                template_hash = c.full_hash;
            } else {
                size_t len = 0;
                json_array_foreach(changed, j, st)
                {
                    const json_t *a = find_by(active_obs, "stage", jstr(st, "stage"));
                    len += (size_t)snprintf(progress_msg + len, sizeof progress_msg - len,
                                            "%sstage '%s': %s %s -> %s %s", len ? "; " : "",
                                            jstr(st, "stage"), a ? jstr(a, "plugin") : "?",
                                            a ? jstr(a, "version") : "?", jstr(st, "plugin"),
                                            jstr(st, "version"));
                    if (len >= sizeof progress_msg)
                        len = sizeof progress_msg - 1;
                }
                snprintf(msg, sizeof msg, "hot-swapped on %zu ready pods: %s", n_ready,
                         progress_msg);
                copy_trunc(progress_msg, sizeof progress_msg, msg);
                event(out->events, "Normal", "SwapSucceeded", msg);
                progress_reason = "SwapSucceeded";
                template_hash = tmpl;
                swapped_all = 1;
            }
        } /* no ready pods: nothing to swap, roll out (template_hash = full) */
    }

    dep = children_deployment(&c, template_hash);
    if (!dep)
        goto oom;
    json_incref(dep);
    int dep_changed = want_apply(out->apply, dep, odep);
    if (dep_changed < 0)
        goto oom;
    if (want_apply(out->apply, children_service(&c), in->service) < 0 ||
        want_apply(out->apply, children_pdb(&c), in->pdb) < 0 ||
        want_apply(out->apply, children_network_policy(&c), in->network_policy) < 0)
        goto oom;
    if (dep_changed && odep) {
        if (tmpl && strcmp(tmpl, template_hash) != 0 && !progress_reason) {
            snprintf(msg, sizeof msg, "config changed (%s -> %s): rolling out", tmpl,
                     template_hash);
            event(out->events, "Normal", "RollingOut", msg);
        } else if (jint(odep, "spec.replicas", -1) != c.replicas) {
            snprintf(msg, sizeof msg, "scaled from %lld to %lld replicas",
                     (long long)jint(odep, "spec.replicas", -1), (long long)c.replicas);
            event(out->events, "Normal", "Scaled", msg);
        }
    } else if (!odep) {
        snprintf(msg, sizeof msg, "created Deployment, ConfigMap and Service for config %s",
                 c.full_hash);
        event(out->events, "Normal", "Created", msg);
    }

    /* Status from the observed Deployment, knowing whether we are about to change it. */
    json_int_t dgen = jint(odep, "metadata.generation", 0),
               dobs = jint(odep, "status.observedGeneration", -1);
    json_int_t updated = jint(odep, "status.updatedReplicas", 0),
               sreplicas = jint(odep, "status.replicas", 0);
    json_int_t ready = jint(odep, "status.readyReplicas", 0);
    int settled =
        odep && !dep_changed && dobs >= dgen && updated >= c.replicas && sreplicas == c.replicas;
    int all_ready = settled && ready >= c.replicas;
    status = status_base(&c);
    json_object_set_new(status, "configHash", json_string(c.full_hash));
    if (swapped_all || (settled && strcmp(template_hash, c.full_hash) == 0))
        json_object_set_new(status, "activeVersions", json_incref(want));
    else if (active_obs)
        json_object_set_new(status, "activeVersions", json_incref(active_obs));

    if (!progress_reason) {
        if (!odep) {
            progress_reason = "Creating";
            snprintf(progress_msg, sizeof progress_msg, "creating the Deployment");
        } else if (dep_changed && tmpl && strcmp(tmpl, template_hash) != 0) {
            progress_reason = "RollingOut";
            snprintf(progress_msg, sizeof progress_msg, "rolling out config %s", template_hash);
        } else if (!settled) {
            progress_reason = updated < c.replicas || dobs < dgen ? "RollingOut" : "Scaling";
            snprintf(progress_msg, sizeof progress_msg,
                     "%lld of %lld replicas updated, %lld running", (long long)updated,
                     (long long)c.replicas, (long long)sreplicas);
        } else {
            progress_reason = "Complete";
            snprintf(progress_msg, sizeof progress_msg, "all %lld replicas run config %s",
                     (long long)c.replicas, template_hash);
        }
    }
    int progressing =
        strcmp(progress_reason, "Complete") != 0 && strcmp(progress_reason, "SwapSucceeded") != 0;
    snprintf(msg, sizeof msg, "%lld/%lld replicas ready", (long long)ready, (long long)c.replicas);
    json_t *conds = json_array();
    json_array_append_new(conds,
                          condition(&c, "Ready", all_ready,
                                    all_ready ? "AllReplicasReady" : "ReplicasNotReady", msg));
    json_array_append_new(conds,
                          condition(&c, "Progressing", progressing, progress_reason, progress_msg));
    const json_t *dprog = deploy_condition(odep, "Progressing"),
                 *dfail = deploy_condition(odep, "ReplicaFailure");
    if (dprog && jstr(dprog, "reason") &&
        strcmp(jstr(dprog, "reason"), "ProgressDeadlineExceeded") == 0)
        json_array_append_new(conds,
                              condition(&c, "Degraded", 1, "RolloutStuck",
                                        jstr(dprog, "message") ? jstr(dprog, "message") : ""));
    else if (dfail && jstr(dfail, "status") && strcmp(jstr(dfail, "status"), "True") == 0)
        json_array_append_new(conds,
                              condition(&c, "Degraded", 1, "ReplicaFailure",
                                        jstr(dfail, "message") ? jstr(dfail, "message") : ""));
    else
        json_array_append_new(conds, condition(&c, "Degraded", 0, "AsExpected", ""));
    /* SYS_NICE puts the pods outside Pod Security "baseline": say so where
     * the user looks, since admission refuses them (Deployment
     * ReplicaFailure) in namespaces that enforce it. */
    int rt = children_realtime_priority(in->stageset);
    if (rt) {
        snprintf(msg, sizeof msg,
                 "spec.run.realtimePriority %d adds the SYS_NICE capability to the hostd "
                 "container: Pod Security \"baseline\" and \"restricted\" refuse such pods (the "
                 "namespace must allow \"privileged\"); set it to 0 to run without",
                 rt);
        if (!find_by(jget(in->stageset, "status.conditions"), "type", "CapabilitiesAdded"))
            event(out->events, "Warning", "CapabilitiesAdded", msg);
        json_array_append_new(conds,
                              condition(&c, "CapabilitiesAdded", 1, "RealtimePriority", msg));
    }
    json_object_set_new(status, "conditions", conds);

status_out:
    if (!status)
        goto oom;
    if (!json_equal(status, jget(in->stageset, "status"))) {
        out->status = status;
        status = NULL;
    }
done:
    json_decref(status);
    json_decref(dep);
    json_decref(want);
    json_decref(active_obs);
    json_decref(changed);
    free(c.pipeline);
    free(c.extras);
    return rc;
oom:
    rc = -ENOMEM;
    json_decref(status);
    status = NULL;
    reconcile_output_free(out);
    goto done;
}
