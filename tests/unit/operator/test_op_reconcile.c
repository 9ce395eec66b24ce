/*
 * test_op_reconcile.c - the StageSet reconciler against a small in-memory
 * world: applied objects come back as observed ones (with the generation and
 * status a real API server and Deployment controller would give them), so
 * each test walks the same passes the operator makes against a cluster.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include "reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct world {
    json_t *ss, *cm, *dep, *svc, *pdb, *netpol, *pods;
} world;

static const char *SS_JSON =
    "{\"apiVersion\": \"observatory.dev/v1alpha1\", \"kind\": \"StageSet\","
    " \"metadata\": {\"name\": \"demo\", \"namespace\": \"lab\", \"uid\": \"u-123\", "
    "\"generation\": 1,"
    "   \"resourceVersion\": \"10\"},"
    " \"spec\": {\"replicas\": 2, \"image\": \"registry.local/observatory:1\","
    "   \"run\": {\"duration\": \"0\", \"seed\": 42},"
    "   \"load\": [{\"shape\": \"constant\", \"rate\": 1000}],"
    "   \"stages\": ["
    "     {\"name\": \"ticks\", \"kind\": \"generator\", \"plugin\": \"gen_market\", \"version\": "
    "\"1.0.0\","
    "      \"params\": {\"symbols\": 50}},"
    "     {\"name\": \"parse\", \"kind\": \"transform\", \"plugin\": \"xf_json_fast\", "
    "\"version\": \"1.0.0\"},"
    "     {\"name\": \"sink\", \"kind\": \"sink\", \"plugin\": \"sink_null\"}]}}";

static const char *NOW1 = "2025-01-01T00:00:00Z";
static const char *NOW2 = "2025-01-01T00:05:00Z";

static json_t *load(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (!j)
        fail_msg("fixture: %s at %d", e.text, e.line);
    return j;
}

static void world_init(world *w)
{
    memset(w, 0, sizeof *w);
    w->ss = load(SS_JSON);
    w->pods = json_array();
}

static void world_free(world *w)
{
    json_decref(w->ss);
    json_decref(w->cm);
    json_decref(w->dep);
    json_decref(w->svc);
    json_decref(w->pdb);
    json_decref(w->netpol);
    json_decref(w->pods);
}

static int run(world *w, const json_t *swap_results, const char *now, reconcile_output *out)
{
    reconcile_input in = {.stageset = w->ss,
                          .configmap = w->cm,
                          .deployment = w->dep,
                          .service = w->svc,
                          .pdb = w->pdb,
                          .network_policy = w->netpol,
                          .pods = w->pods,
                          .swap_results = swap_results,
                          .now = now};
    return reconcile_stageset(&in, out);
}

static const json_t *applied(const reconcile_output *out, const char *kind)
{
    size_t i;
    const json_t *o;
    json_array_foreach(out->apply, i, o)
    {
        if (strcmp(json_string_value(json_object_get(o, "kind")), kind) == 0)
            return o;
    }
    return NULL;
}

static const char *tmpl_hash(const json_t *dep)
{
    const json_t *a = json_object_get(
        json_object_get(
            json_object_get(json_object_get(json_object_get(dep, "spec"), "template"), "metadata"),
            "annotations"),
        RECONCILE_ANN_CONFIG_HASH);
    return json_string_value(a);
}

/* What the API server does on apply: stores the object, bumps the
 * Deployment's generation when its spec changed, keeps its status. */
static void server_apply(world *w, const reconcile_output *out)
{
    size_t i;
    const json_t *o;
    json_array_foreach(out->apply, i, o)
    {
        const char *kind = json_string_value(json_object_get(o, "kind"));
        json_t **slot = strcmp(kind, "ConfigMap") == 0             ? &w->cm
                        : strcmp(kind, "Deployment") == 0          ? &w->dep
                        : strcmp(kind, "PodDisruptionBudget") == 0 ? &w->pdb
                        : strcmp(kind, "NetworkPolicy") == 0       ? &w->netpol
                                                                   : &w->svc;
        json_t *copy = json_deep_copy(o);
        json_object_set_new(json_object_get(copy, "metadata"), "uid", json_string("child-uid"));
        if (*slot && json_object_get(*slot, "status"))
            json_object_set(copy, "status", json_object_get(*slot, "status"));
        json_int_t gen = 1;
        if (*slot) {
            gen = json_integer_value(
                json_object_get(json_object_get(*slot, "metadata"), "generation"));
            if (!json_equal(json_object_get(*slot, "spec"), json_object_get(o, "spec")))
                gen++;
        }
        json_object_set_new(json_object_get(copy, "metadata"), "generation", json_integer(gen));
        /* Server-side defaulting the reconciler must tolerate. */
        if (strcmp(kind, "Deployment") == 0)
            json_object_set_new(json_object_get(copy, "spec"), "revisionHistoryLimit",
                                json_integer(10));
        json_decref(*slot);
        *slot = copy;
    }
}

static void server_status(world *w, const reconcile_output *out)
{
    if (out->status)
        json_object_set(w->ss, "status", out->status);
}

/* The Deployment controller finished: all replicas updated and `ready` ready. */
static void deploy_settle(world *w, int ready)
{
    json_t *meta = json_object_get(w->dep, "metadata");
    json_int_t replicas =
        json_integer_value(json_object_get(json_object_get(w->dep, "spec"), "replicas"));
    json_object_set_new(w->dep, "status",
                        json_pack("{s:I, s:I, s:I, s:I, s:i}", "observedGeneration",
                                  json_integer_value(json_object_get(meta, "generation")),
                                  "replicas", replicas, "updatedReplicas", replicas,
                                  "availableReplicas", (json_int_t)ready, "readyReplicas", ready));
    json_array_clear(w->pods);
    for (int i = 0; i < ready; i++) {
        char name[32], ip[32];
        snprintf(name, sizeof name, "demo-abc-%d", i);
        snprintf(ip, sizeof ip, "10.42.0.%d", 10 + i);
        json_array_append_new(w->pods,
                              json_pack("{s:{s:s}, s:{s:s, s:s, s:[{s:s, s:s}]}}", "metadata",
                                        "name", name, "status", "phase", "Running", "podIP", ip,
                                        "conditions", "type", "Ready", "status", "True"));
    }
}

static void set_spec(world *w, const char *path_stage, const char *key, json_t *value)
{
    json_t *spec = json_object_get(w->ss, "spec");
    if (path_stage) {
        size_t i;
        json_t *st;
        json_array_foreach(json_object_get(spec, "stages"), i, st)
        {
            if (strcmp(json_string_value(json_object_get(st, "name")), path_stage) == 0)
                json_object_set_new(st, key, value);
        }
    } else {
        json_object_set_new(spec, key, value);
    }
    json_t *meta = json_object_get(w->ss, "metadata");
    json_object_set_new(meta, "generation",
                        json_integer(json_integer_value(json_object_get(meta, "generation")) + 1));
}

static const json_t *cond(const json_t *status, const char *type)
{
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(status, "conditions"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "type")), type) == 0)
            return c;
    }
    return NULL;
}

static void assert_cond(const json_t *status, const char *type, const char *st, const char *reason)
{
    const json_t *c = cond(status, type);
    assert_non_null(c);
    assert_string_equal(json_string_value(json_object_get(c, "status")), st);
    assert_string_equal(json_string_value(json_object_get(c, "reason")), reason);
}

static int has_event(const reconcile_output *out, const char *type, const char *reason)
{
    size_t i;
    const json_t *e;
    json_array_foreach(out->events, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "reason")), reason) == 0 &&
            strcmp(json_string_value(json_object_get(e, "type")), type) == 0)
            return 1;
    }
    return 0;
}

static void assert_quiet(world *w)
{
    reconcile_output out;
    assert_int_equal(run(w, NULL, NOW2, &out), 0);
    if (json_array_size(out.apply)) {
        char *s = json_dumps(out.apply, JSON_INDENT(1));
        print_error("unexpected apply: %s\n", s);
        free(s);
    }
    assert_int_equal(json_array_size(out.apply), 0);
    assert_null(out.status);
    assert_int_equal(json_array_size(out.swaps), 0);
    assert_int_equal(json_array_size(out.events), 0);
    reconcile_output_free(&out);
}

/* Creates everything, lets the Deployment become ready; returns settled world. */
static void bring_up(world *w)
{
    reconcile_output out;
    world_init(w);
    assert_int_equal(run(w, NULL, NOW1, &out), 0);
    server_apply(w, &out);
    server_status(w, &out);
    reconcile_output_free(&out);
    deploy_settle(w, 2);
    assert_int_equal(run(w, NULL, NOW1, &out), 0);
    server_apply(w, &out);
    server_status(w, &out);
    reconcile_output_free(&out);
}

static void test_create(void **state)
{
    (void)state;
    world w;
    reconcile_output out;
    world_init(&w);
    assert_int_equal(run(&w, NULL, NOW1, &out), 0);

    assert_int_equal(json_array_size(out.apply), 5);
    assert_non_null(applied(&out, "PodDisruptionBudget"));
    assert_non_null(applied(&out, "NetworkPolicy"));
    const json_t *cm = applied(&out, "ConfigMap"), *dep = applied(&out, "Deployment"),
                 *svc = applied(&out, "Service");
    assert_non_null(cm);
    assert_non_null(dep);
    assert_non_null(svc);
    /* The ConfigMap is applied before the Deployment that mounts it. */
    assert_ptr_equal(json_array_get(out.apply, 0), cm);

    const char *yaml =
        json_string_value(json_object_get(json_object_get(cm, "data"), "pipeline.yaml"));
    assert_non_null(yaml);
    assert_non_null(strstr(yaml, "pipeline: \"demo\""));
    assert_non_null(strstr(yaml, "plugin: \"xf_json_fast\""));
    assert_non_null(strstr(yaml, "version: \"1.0.0\""));
    assert_non_null(strstr(yaml, "listen: \"0.0.0.0:9464\""));
    assert_null(strstr(yaml, "kind"));

    /* Every child is owned by the StageSet, as its controller. */
    const json_t *objs[] = {cm, dep, svc};
    for (int i = 0; i < 3; i++) {
        const json_t *ref = json_array_get(
            json_object_get(json_object_get(objs[i], "metadata"), "ownerReferences"), 0);
        assert_string_equal(json_string_value(json_object_get(ref, "uid")), "u-123");
        assert_string_equal(json_string_value(json_object_get(ref, "kind")), "StageSet");
        assert_string_equal(json_string_value(json_object_get(ref, "apiVersion")),
                            "observatory.dev/v1alpha1");
        assert_true(json_is_true(json_object_get(ref, "controller")));
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(objs[i], "metadata"), "namespace")),
            "lab");
    }
    assert_int_equal(json_integer_value(json_object_get(json_object_get(dep, "spec"), "replicas")),
                     2);
    /* The pod template carries the config hash reported in status. */
    assert_non_null(out.status);
    assert_string_equal(tmpl_hash(dep),
                        json_string_value(json_object_get(out.status, "configHash")));
    assert_string_equal(json_string_value(json_object_get(out.status, "selector")),
                        "app.kubernetes.io/name=observatory-hostd,app.kubernetes.io/instance=demo");
    assert_int_equal(json_integer_value(json_object_get(out.status, "observedGeneration")), 1);
    assert_cond(out.status, "Ready", "False", "ReplicasNotReady");
    assert_cond(out.status, "Progressing", "True", "Creating");
    assert_cond(out.status, "Degraded", "False", "AsExpected");
    assert_string_equal(
        json_string_value(json_object_get(cond(out.status, "Ready"), "lastTransitionTime")), NOW1);
    assert_true(has_event(&out, "Normal", "Created"));
    /* Service: metrics port and scrape annotations. */
    const json_t *port = json_array_get(json_object_get(json_object_get(svc, "spec"), "ports"), 0);
    assert_int_equal(json_integer_value(json_object_get(port, "port")), 9464);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(svc, "metadata"), "annotations"),
                            "prometheus.io/scrape")),
                        "true");
    server_apply(&w, &out);
    server_status(&w, &out);
    reconcile_output_free(&out);

    /* Deployment becomes ready: only status changes (Ready, active versions). */
    deploy_settle(&w, 2);
    assert_int_equal(run(&w, NULL, NOW2, &out), 0);
    assert_int_equal(json_array_size(out.apply), 0);
    assert_non_null(out.status);
    assert_cond(out.status, "Ready", "True", "AllReplicasReady");
    assert_cond(out.status, "Progressing", "False", "Complete");
    assert_int_equal(json_integer_value(json_object_get(out.status, "readyReplicas")), 2);
    assert_int_equal(json_array_size(json_object_get(out.status, "activeVersions")), 3);
    /* Degraded did not change status: its transition time stays. */
    assert_string_equal(
        json_string_value(json_object_get(cond(out.status, "Degraded"), "lastTransitionTime")),
        NOW1);
    assert_string_equal(
        json_string_value(json_object_get(cond(out.status, "Ready"), "lastTransitionTime")), NOW2);
    server_status(&w, &out);
    reconcile_output_free(&out);

    /* Nothing changed: no writes at all. */
    assert_quiet(&w);
    world_free(&w);
}

static void test_update_rolls_out(void **state)
{
    (void)state;
    world w;
    reconcile_output out;
    bring_up(&w);
    const char *old =
        json_string_value(json_object_get(json_object_get(w.ss, "status"), "configHash"));
    char old_hash[17];
    snprintf(old_hash, sizeof old_hash, "%s", old);

    /* A parameter change cannot be hot-swapped: new template hash, rollout. */
    set_spec(&w, "ticks", "params", json_pack("{s:i}", "symbols", 500));
    assert_int_equal(run(&w, NULL, NOW2, &out), 0);
    assert_int_equal(json_array_size(out.swaps), 0);
    const json_t *cm = applied(&out, "ConfigMap"), *dep = applied(&out, "Deployment");
    assert_non_null(cm);
    assert_non_null(dep);
    assert_null(applied(&out, "Service"));
    assert_string_not_equal(tmpl_hash(dep), old_hash);
    assert_string_equal(tmpl_hash(dep),
                        json_string_value(json_object_get(out.status, "configHash")));
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(cm, "data"), "pipeline.yaml")),
               "symbols: 500"));
    assert_cond(out.status, "Progressing", "True", "RollingOut");
    assert_true(has_event(&out, "Normal", "RollingOut"));
    server_apply(&w, &out);
    server_status(&w, &out);
    reconcile_output_free(&out);
    deploy_settle(&w, 2);
    assert_int_equal(run(&w, NULL, NOW2, &out), 0);
    assert_cond(out.status, "Ready", "True", "AllReplicasReady");
    server_status(&w, &out);
    reconcile_output_free(&out);
    assert_quiet(&w);
    world_free(&w);
}

static json_t *active_of(const world *w, const char *stage)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(json_object_get(w->ss, "status"), "activeVersions"), i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "stage")), stage) == 0)
            return json_object_get(a, "version");
    }
    return NULL;
}

static void test_version_change_swaps(void **state)
{
    (void)state;
    world w;
    reconcile_output out;
    bring_up(&w);
    const char *tmpl_before = tmpl_hash(w.dep);
    char before[17];
    snprintf(before, sizeof before, "%s", tmpl_before);
    json_int_t dep_gen =
        json_integer_value(json_object_get(json_object_get(w.dep, "metadata"), "generation"));

    set_spec(&w, "parse", "version", json_string("2.0.0"));
    /* First pass: one swap per ready pod, only the ConfigMap to write. */
    assert_int_equal(run(&w, NULL, NOW2, &out), 0);
    assert_int_equal(json_array_size(out.swaps), 2);
    const json_t *s0 = json_array_get(out.swaps, 0);
    assert_string_equal(json_string_value(json_object_get(s0, "stage")), "parse");
    assert_string_equal(json_string_value(json_object_get(s0, "plugin")), "xf_json_fast");
    assert_string_equal(json_string_value(json_object_get(s0, "version")), "2.0.0");
    assert_string_equal(json_string_value(json_object_get(s0, "podIP")), "10.42.0.10");
    assert_int_equal(json_array_size(out.apply), 1);
    assert_non_null(applied(&out, "ConfigMap"));
    assert_null(out.status);
    server_apply(&w, &out);
    reconcile_output_free(&out);

    /* Second pass with every swap successful: no rollout, versions active. */
    json_t *results = json_pack("[{s:s, s:s, s:b, s:s}, {s:s, s:s, s:b, s:s}]", "pod", "demo-abc-0",
                                "stage", "parse", "ok", 1, "message", "", "pod", "demo-abc-1",
                                "stage", "parse", "ok", 1, "message", "");
    assert_int_equal(run(&w, results, NOW2, &out), 0);
    json_decref(results);
    assert_null(applied(&out, "Deployment"));
    assert_int_equal(json_array_size(out.swaps), 0);
    assert_non_null(out.status);
    assert_cond(out.status, "Progressing", "False", "SwapSucceeded");
    assert_cond(out.status, "Ready", "True", "AllReplicasReady");
    assert_true(has_event(&out, "Normal", "SwapSucceeded"));
    server_apply(&w, &out);
    server_status(&w, &out);
    reconcile_output_free(&out);
    assert_string_equal(json_string_value(active_of(&w, "parse")), "2.0.0");
    assert_string_equal(tmpl_hash(w.dep), before);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(w.dep, "metadata"), "generation")),
        dep_gen);
    /* And the next pass neither swaps again nor erases the outcome. */
    assert_quiet(&w);
    assert_cond(json_object_get(w.ss, "status"), "Progressing", "False", "SwapSucceeded");
    world_free(&w);
}

static void test_swap_failure_rolls_out(void **state)
{
    (void)state;
    world w;
    reconcile_output out;
    bring_up(&w);
    char before[17];
    snprintf(before, sizeof before, "%s", tmpl_hash(w.dep));

    set_spec(&w, "parse", "version", json_string("2.0.0"));
    assert_int_equal(run(&w, NULL, NOW2, &out), 0);
    assert_int_equal(json_array_size(out.swaps), 2);
    server_apply(&w, &out);
    reconcile_output_free(&out);

    json_t *results =
        json_pack("[{s:s, s:s, s:b, s:s}, {s:s, s:s, s:b, s:s}]", "pod", "demo-abc-0", "stage",
                  "parse", "ok", 1, "message", "", "pod", "demo-abc-1", "stage", "parse", "ok", 0,
                  "message", "HTTP 409: plugin 'xf_json_fast' 2.0.0 not found");
    assert_int_equal(run(&w, results, NOW2, &out), 0);
    json_decref(results);
    const json_t *dep = applied(&out, "Deployment");
    assert_non_null(dep);
    assert_string_not_equal(tmpl_hash(dep), before);
    assert_string_equal(tmpl_hash(dep),
                        json_string_value(json_object_get(out.status, "configHash")));
    assert_true(has_event(&out, "Warning", "SwapFailed"));
    assert_cond(out.status, "Progressing", "True", "SwapFailedRollingOut");
    assert_non_null(
        strstr(json_string_value(json_object_get(cond(out.status, "Progressing"), "message")),
               "not found"));
    /* Until the rollout finishes, the old version is what runs. */
    server_apply(&w, &out);
    server_status(&w, &out);
    reconcile_output_free(&out);
    assert_string_equal(json_string_value(active_of(&w, "parse")), "1.0.0");

    deploy_settle(&w, 2);
    assert_int_equal(run(&w, NULL, NOW2, &out), 0);
    assert_int_equal(json_array_size(out.apply), 0);
    assert_int_equal(json_array_size(out.swaps), 0);
    assert_cond(out.status, "Progressing", "False", "Complete");
    server_status(&w, &out);
    reconcile_output_free(&out);
    assert_string_equal(json_string_value(active_of(&w, "parse")), "2.0.0");
    assert_quiet(&w);
    world_free(&w);
}

static void test_version_change_without_ready_pods_rolls_out(void **state)
{
    (void)state;
    world w;
    reconcile_output out;
    bring_up(&w);
    json_array_clear(w.pods);
    set_spec(&w, "parse", "version", json_string("2.0.0"));
    assert_int_equal(run(&w, NULL, NOW2, &out), 0);
    assert_int_equal(json_array_size(out.swaps), 0);
    assert_non_null(applied(&out, "Deployment"));
    assert_cond(out.status, "Progressing", "True", "RollingOut");
    reconcile_output_free(&out);
    world_free(&w);
}

static void test_scale(void **state)
{
    (void)state;
    world w;
    reconcile_output out;
    bring_up(&w);
    char before[17];
    snprintf(before, sizeof before, "%s", tmpl_hash(w.dep));
    /* What the scale subresource does: spec.replicas changes. */
    set_spec(&w, NULL, "replicas", json_integer(4));
    assert_int_equal(run(&w, NULL, NOW2, &out), 0);
    assert_int_equal(json_array_size(out.apply), 1);
    const json_t *dep = applied(&out, "Deployment");
    assert_non_null(dep);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(dep, "spec"), "replicas")),
                     4);
    assert_string_equal(tmpl_hash(dep), before); /* no restart of running pods */
    assert_true(has_event(&out, "Normal", "Scaled"));
    assert_cond(out.status, "Ready", "False", "ReplicasNotReady");
    server_apply(&w, &out);
    server_status(&w, &out);
    reconcile_output_free(&out);
    deploy_settle(&w, 4);
    assert_int_equal(run(&w, NULL, NOW2, &out), 0);
    assert_int_equal(json_integer_value(json_object_get(out.status, "replicas")), 4);
    assert_int_equal(json_integer_value(json_object_get(out.status, "readyReplicas")), 4);
    assert_cond(out.status, "Ready", "True", "AllReplicasReady");
    server_status(&w, &out);
    reconcile_output_free(&out);
    assert_quiet(&w);
    world_free(&w);
}

static void test_delete(void **state)
{
    (void)state;
    world w;
    reconcile_output out;
    bring_up(&w);
    /* Being deleted: garbage collection owns the children now. */
    json_object_set_new(json_object_get(w.ss, "metadata"), "deletionTimestamp", json_string(NOW2));
    set_spec(&w, NULL, "replicas", json_integer(5));
    assert_int_equal(run(&w, NULL, NOW2, &out), 0);
    assert_int_equal(json_array_size(out.apply), 0);
    assert_null(out.status);
    assert_int_equal(json_array_size(out.events), 0);
    reconcile_output_free(&out);
    /* Gone. */
    json_decref(w.ss);
    w.ss = NULL;
    assert_int_equal(run(&w, NULL, NOW2, &out), 0);
    assert_int_equal(json_array_size(out.apply), 0);
    assert_null(out.status);
    reconcile_output_free(&out);
    world_free(&w);
}

static void test_invalid_spec(void **state)
{
    (void)state;
    world w;
    reconcile_output out;
    bring_up(&w);
    set_spec(&w, "ticks", "params", json_pack("{s:[i,i]}", "symbols", 1, 2));
    assert_int_equal(run(&w, NULL, NOW2, &out), 0);
    assert_int_equal(json_array_size(out.apply), 0);
    assert_cond(out.status, "Degraded", "True", "InvalidSpec");
    assert_cond(out.status, "Ready", "False", "InvalidSpec");
    assert_non_null(
        strstr(json_string_value(json_object_get(cond(out.status, "Degraded"), "message")),
               "spec.stages[0].params.symbols"));
    assert_true(has_event(&out, "Warning", "InvalidSpec"));
    server_status(&w, &out);
    reconcile_output_free(&out);
    assert_quiet(&w); /* no second event, no status write */
    world_free(&w);
}

/* A spec the API server would refuse as a ConfigMap (over 1 MiB of data) is
 * an invalid spec: nothing is applied, the message names the limit. */
static void test_oversized_configmap_is_invalid(void **state)
{
    (void)state;
    world w;
    reconcile_output out;
    bring_up(&w);
    char *big = malloc(RECONCILE_MAX_CONFIGMAP_BYTES + 1);
    assert_non_null(big);
    memset(big, 'x', RECONCILE_MAX_CONFIGMAP_BYTES);
    big[RECONCILE_MAX_CONFIGMAP_BYTES] = '\0';
    set_spec(&w, "ticks", "params", json_pack("{s:s}", "blob", big));
    free(big);
    assert_int_equal(run(&w, NULL, NOW2, &out), 0);
    assert_int_equal(json_array_size(out.apply), 0);
    assert_cond(out.status, "Degraded", "True", "InvalidSpec");
    assert_non_null(strstr(
        json_string_value(json_object_get(cond(out.status, "Degraded"), "message")), "1048576"));
    reconcile_output_free(&out);
    world_free(&w);
}

/* The API server refused a child: ApplyFailed everywhere, observedGeneration
 * left at the last applied generation, one event per distinct message. */
static void test_apply_failed(void **state)
{
    (void)state;
    world w;
    reconcile_output out;
    bring_up(&w);
    set_spec(&w, NULL, "batchSize", json_integer(128));
    reconcile_input in = {.stageset = w.ss, .deployment = w.dep, .now = NOW2};
    assert_int_equal(reconcile_apply_failed(&in, "ConfigMap demo-pipeline: HTTP 422: no", &out), 0);
    assert_int_equal(json_array_size(out.apply), 0);
    assert_cond(out.status, "Ready", "False", "ApplyFailed");
    assert_cond(out.status, "Progressing", "False", "ApplyFailed");
    assert_cond(out.status, "Degraded", "True", "ApplyFailed");
    assert_int_equal(json_integer_value(json_object_get(out.status, "observedGeneration")), 1);
    assert_int_equal(
        json_integer_value(json_object_get(cond(out.status, "Ready"), "observedGeneration")), 2);
    assert_non_null(
        strstr(json_string_value(json_object_get(cond(out.status, "Progressing"), "message")),
               "HTTP 422"));
    assert_true(has_event(&out, "Warning", "ApplyFailed"));
    server_status(&w, &out);
    reconcile_output_free(&out);
    /* The same refusal again: nothing new to write or say. */
    in.stageset = w.ss;
    assert_int_equal(reconcile_apply_failed(&in, "ConfigMap demo-pipeline: HTTP 422: no", &out), 0);
    assert_null(out.status);
    assert_int_equal(json_array_size(out.events), 0);
    reconcile_output_free(&out);
    world_free(&w);
}

static void test_drift_and_removed_fields(void **state)
{
    (void)state;
    world w;
    reconcile_output out;
    bring_up(&w);
    /* Someone scaled the Deployment by hand: the operator puts it back. */
    json_object_set_new(json_object_get(w.dep, "spec"), "replicas", json_integer(7));
    assert_int_equal(run(&w, NULL, NOW2, &out), 0);
    assert_non_null(applied(&out, "Deployment"));
    server_apply(&w, &out);
    reconcile_output_free(&out);
    deploy_settle(&w, 2);
    assert_int_equal(run(&w, NULL, NOW2, &out), 0);
    server_status(&w, &out);
    reconcile_output_free(&out);
    /* Removing resources from the spec must reach the Deployment, although
     * the desired object is then a subset of the observed one. */
    set_spec(&w, NULL, "resources", json_pack("{s:{s:s}}", "limits", "memory", "1Gi"));
    assert_int_equal(run(&w, NULL, NOW2, &out), 0);
    assert_non_null(applied(&out, "Deployment"));
    server_apply(&w, &out);
    reconcile_output_free(&out);
    json_object_del(json_object_get(w.ss, "spec"), "resources");
    assert_int_equal(run(&w, NULL, NOW2, &out), 0);
    assert_non_null(applied(&out, "Deployment"));
    reconcile_output_free(&out);
    world_free(&w);
}

/* The first container of a Deployment's pod template. */
static const json_t *first_container(const json_t *dep)
{
    const json_t *pod =
        json_object_get(json_object_get(json_object_get(dep, "spec"), "template"), "spec");
    return json_array_get(json_object_get(pod, "containers"), 0);
}

static void test_exclusive_cores(void **state)
{
    (void)state;
    world w;
    reconcile_output out;
    world_init(&w);
    set_spec(&w, NULL, "resources",
             json_pack("{s:i, s:s}", "exclusiveCores", 2, "memory", "512Mi"));
    assert_int_equal(run(&w, NULL, NOW1, &out), 0);
    const json_t *dep = applied(&out, "Deployment");
    const json_t *res = json_object_get(first_container(dep), "resources");
    assert_true(json_equal(json_object_get(res, "requests"), json_object_get(res, "limits")));
    /* No surge pod: it would need the cores twice. */
    const json_t *ru =
        json_object_get(json_object_get(json_object_get(dep, "spec"), "strategy"), "rollingUpdate");
    assert_int_equal(json_integer_value(json_object_get(ru, "maxSurge")), 0);
    assert_int_equal(json_integer_value(json_object_get(ru, "maxUnavailable")), 1);
    assert_string_equal(json_string_value(json_object_get(json_object_get(res, "limits"), "cpu")),
                        "2");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(res, "limits"), "memory")), "512Mi");
    reconcile_output_free(&out);
    world_free(&w);
}

/* A real-time generator: the container may raise its priority, and only
 * then. */
static void test_realtime_priority_adds_sys_nice(void **state)
{
    (void)state;
    world w;
    reconcile_output out;
    world_init(&w);
    assert_int_equal(run(&w, NULL, NOW1, &out), 0);
    const json_t *c0 = first_container(applied(&out, "Deployment"));
    assert_non_null(c0);
    const json_t *sc0 = json_object_get(c0, "securityContext");
    assert_null(json_object_get(json_object_get(sc0, "capabilities"), "add"));
    assert_false(json_is_true(json_object_get(sc0, "allowPrivilegeEscalation")));
    assert_true(json_is_true(json_object_get(sc0, "readOnlyRootFilesystem")));
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(sc0, "capabilities"), "drop"), 0)),
                        "ALL");
    /* No resources in the spec: the documented defaults, not {}. */
    const json_t *res0 = json_object_get(c0, "resources");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(res0, "requests"), "cpu")), "500m");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(res0, "limits"), "memory")), "1Gi");
    assert_null(cond(out.status, "CapabilitiesAdded"));
    reconcile_output_free(&out);
    world_free(&w);

    world_init(&w);
    set_spec(&w, NULL, "run", json_pack("{s:i}", "realtimePriority", 20));
    assert_int_equal(run(&w, NULL, NOW1, &out), 0);
    const json_t *c = first_container(applied(&out, "Deployment"));
    const json_t *add = json_object_get(
        json_object_get(json_object_get(c, "securityContext"), "capabilities"), "add");
    assert_int_equal(json_array_size(add), 1);
    assert_string_equal(json_string_value(json_array_get(add, 0)), "SYS_NICE");
    /* ... and says so: a condition and a Warning event. */
    assert_non_null(cond(out.status, "CapabilitiesAdded"));
    assert_true(has_event(&out, "Warning", "CapabilitiesAdded"));
    reconcile_output_free(&out);
    world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create),
        cmocka_unit_test(test_update_rolls_out),
        cmocka_unit_test(test_version_change_swaps),
        cmocka_unit_test(test_swap_failure_rolls_out),
        cmocka_unit_test(test_version_change_without_ready_pods_rolls_out),
        cmocka_unit_test(test_scale),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_invalid_spec),
        cmocka_unit_test(test_oversized_configmap_is_invalid),
        cmocka_unit_test(test_apply_failed),
        cmocka_unit_test(test_drift_and_removed_fields),
        cmocka_unit_test(test_exclusive_cores),
        cmocka_unit_test(test_realtime_priority_adds_sys_nice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
