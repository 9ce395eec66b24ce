/*
 * main.c - observatory-operator: command line, threads and shutdown.
 *
 * Threads: the main thread holds the leader Lease; when it leads, three
 * informer threads (StageSets, and the Deployments and ConfigMaps the
 * operator manages) feed keys into the work queue and worker threads
 * reconcile them. Losing
 * the lease ends the process (exit 1) so that a fresh start, not a half-
 * stopped leader, is what runs next; SIGTERM releases the lease and exits 0.
 */
#include "controller.h"
#include "informer.h"
#include "kube.h"
#include "kubeconfig.h"
#include "leader.h"
#include "opmetrics.h"
#include "reconcile.h"
#include "swap.h"
#include "workqueue.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RESYNC_MS (10 * 60 * 1000)
#define MAX_WORKERS 8

static atomic_int g_stop;
static atomic_int g_synced_count;

typedef struct app {
    kube_client *kube;
    workqueue *q;
    controller ctl;
    const char *watch_ns;
    char stagesets_path[512], deployments_path[512], configmaps_path[512];
    informer inf_ss, inf_dep, inf_cm;
} app;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&g_stop, 1);
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: observatory-operator [options]\n"
            "  --kubeconfig FILE      use this kubeconfig (default: $KUBECONFIG, in-cluster config "
            "when\n"
            "                         KUBERNETES_SERVICE_HOST is set, else ~/.kube/config)\n"
            "  --context NAME         kubeconfig context (default: current-context)\n"
            "  --namespace NS         watch StageSets in NS only (default: all namespaces)\n"
            "  --metrics-addr ADDR    /metrics, /healthz, /readyz address (default 0.0.0.0:8080)\n"
            "  --leader-elect BOOL    elect a leader with a Lease (default true)\n"
            "  --lease-namespace NS   namespace of the Lease (default: the pod's namespace)\n"
            "  --lease-name NAME      name of the Lease (default observatory-operator)\n"
            "  --hostd-port N         port of hostd's API in the pods (default 9464)\n"
            "  --workers N            reconcile workers (default 2)\n"
            "  -h, --help             this text\n");
}

static void key_of(const json_t *obj, const char *name, char *buf, size_t len)
{
    const json_t *meta = json_object_get(obj, "metadata");
    snprintf(buf, len, "%s/%s", json_string_value(json_object_get(meta, "namespace")), name);
}

static void on_stageset(void *ud, const char *type, const json_t *obj)
{
    (void)type;
    app *a = ud;
    char key[600];
    const char *name = json_string_value(json_object_get(json_object_get(obj, "metadata"), "name"));
    if (!name)
        return;
    key_of(obj, name, key, sizeof key);
    workqueue_add(a->q, key);
}

/* A child's change reconciles its owner: a Deployment whose pods became
 * ready, or a ConfigMap someone edited or deleted (drift to repair). */
static void on_child(void *ud, const char *type, const json_t *obj)
{
    (void)type;
    app *a = ud;
    size_t i;
    const json_t *ref;
    json_array_foreach(json_object_get(json_object_get(obj, "metadata"), "ownerReferences"), i, ref)
    {
        const char *kind = json_string_value(json_object_get(ref, "kind"));
        const char *name = json_string_value(json_object_get(ref, "name"));
        if (kind && name && strcmp(kind, RECONCILE_KIND) == 0 &&
            json_is_true(json_object_get(ref, "controller"))) {
            char key[600];
            key_of(obj, name, key, sizeof key);
            workqueue_add(a->q, key);
        }
    }
}

static void on_synced(void *ud)
{
    (void)ud;
    if (atomic_fetch_add(&g_synced_count, 1) + 1 >= 3)
        atomic_store(&opmetrics_g.synced, 1);
}

static void *informer_thread(void *arg)
{
    app *a = ((void **)arg)[0];
    informer *inf = ((void **)arg)[1];
    informer_run(a->kube, inf, &g_stop);
    return NULL;
}

/* Queues a key whose reconcile failed with rc. A conflict (409: the StageSet
 * changed since it was read) is retried at once, since the next pass reads it
 * again; a 429 waits what the server's Retry-After asks. Neither is the
 * reconcile's fault, so neither grows the key's backoff; anything else does. */
static void requeue_failed(workqueue *q, const char *key, int rc, const char *err)
{
    int retry_after = rc == -EBUSY ? kube_last_retry_after_s() : -1;
    if (rc == -EAGAIN) {
        fprintf(stderr, "operator: %s: %s (conflict: reading again)\n", key, err);
        workqueue_add_conflict(q, key);
    } else if (retry_after >= 0) {
        fprintf(stderr, "operator: %s: %s (retry after %d s)\n", key, err, retry_after);
        workqueue_add_after(q, key, (uint64_t)retry_after * 1000);
    } else {
        fprintf(stderr, "operator: %s: %s (retry %u)\n", key, err, workqueue_failures(q, key) + 1);
        workqueue_add_rate_limited(q, key);
    }
}

static void *worker_thread(void *arg)
{
    app *a = arg;
    char *key, err[2048];
    int worked = 0;
    for (;;) {
        int rc = workqueue_get(a->q, 1000, &key);
        atomic_store(&opmetrics_g.queue_depth, workqueue_len(a->q));
        atomic_store(&opmetrics_g.queue_waiting, workqueue_waiting(a->q));
        if (rc == -ESHUTDOWN)
            break;
        if (rc) {
            /* Idle after a burst (a relist reconciles every StageSet): hand
             * the freed heap back, so the resident size is what an idle
             * operator needs rather than its high-water mark. */
            if (rc == -ETIMEDOUT && worked) {
                op_malloc_trim();
                worked = 0;
            }
            continue;
        }
        worked = 1;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int exists = 0;
        err[0] = '\0';
        rc = controller_sync(&a->ctl, key, &exists, err, sizeof err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        atomic_fetch_add(
            &opmetrics_g.reconcile_ns_total,
            (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec)));
        if (rc) {
            atomic_fetch_add(&opmetrics_g.reconcile_error, 1);
            requeue_failed(a->q, key, rc, err);
        } else {
            atomic_fetch_add(&opmetrics_g.reconcile_ok, 1);
            workqueue_forget(a->q, key);
            /* Level-triggered safety net for changes nobody watches (a
             * hand-edited Service, PodDisruptionBudget or NetworkPolicy). */
            if (exists)
                workqueue_add_after(a->q, key, RESYNC_MS);
        }
        workqueue_done(a->q, key);
        free(key);
    }
    return NULL;
}

static int load_config(const char *kubeconfig, const char *context, kube_config *cfg, char *err,
                       size_t errlen)
{
    if (!kubeconfig) {
        const char *env = getenv("KUBECONFIG");
        static char first[1024];
        if (env && *env) {
            snprintf(first, sizeof first, "%s", env);
            char *colon = strchr(first, ':');
            if (colon)
                *colon = '\0';
            kubeconfig = first;
        } else if (getenv("KUBERNETES_SERVICE_HOST")) {
            return kubeconfig_in_cluster(getenv("OBSERVATORY_OPERATOR_SA_DIR"), cfg, err, errlen);
        } else if (getenv("HOME")) {
            snprintf(first, sizeof first, "%s/.kube/config", getenv("HOME"));
            kubeconfig = first;
        } else {
            snprintf(err, errlen,
                     "no kubeconfig: pass --kubeconfig, set KUBECONFIG, or run in a pod");
            return -ENOENT;
        }
    }
    return kubeconfig_load(kubeconfig, context, cfg, err, errlen);
}

int main(int argc, char **argv)
{
    const char *kubeconfig = NULL, *context = NULL, *metrics_addr = "0.0.0.0:8080",
               *lease_ns = NULL, *lease_name = "observatory-operator";
    int leader_elect = 1, hostd_port = 9464, n_workers = 2, exit_code = 0;
    app a;
    memset(&a, 0, sizeof a);
    static const struct option opts[] = {{"kubeconfig", required_argument, NULL, 'k'},
                                         {"context", required_argument, NULL, 'c'},
                                         {"namespace", required_argument, NULL, 'n'},
                                         {"metrics-addr", required_argument, NULL, 'm'},
                                         {"leader-elect", required_argument, NULL, 'l'},
                                         {"lease-namespace", required_argument, NULL, 'L'},
                                         {"lease-name", required_argument, NULL, 'N'},
                                         {"hostd-port", required_argument, NULL, 'p'},
                                         {"workers", required_argument, NULL, 'w'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'k': kubeconfig = optarg; break;
        case 'c': context = optarg; break;
        case 'n': a.watch_ns = optarg; break;
        case 'm': metrics_addr = optarg; break;
        case 'l':
            if (strcmp(optarg, "true") && strcmp(optarg, "false")) {
                fprintf(stderr, "observatory-operator: --leader-elect: expected true or false\n");
                return 2;
            }
            leader_elect = strcmp(optarg, "true") == 0;
            break;
        case 'L': lease_ns = optarg; break;
        case 'N': lease_name = optarg; break;
        case 'p': hostd_port = atoi(optarg); break;
        case 'w': n_workers = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc || hostd_port <= 0 || hostd_port > 65535 || n_workers < 1 ||
        n_workers > MAX_WORKERS) {
        usage(stderr);
        return 2;
    }

    char err[2048];
    kube_config cfg;
    /* glibc gives each thread that allocates its own arena (heaps of up to
     * 64 MiB each, freed memory kept per arena); six threads that mostly
     * wait on the network need one, and the resident size stays near what
     * is in use (docs/operator.md, memory). */
    op_mallopt_one_arena();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (load_config(kubeconfig, context, &cfg, err, sizeof err)) {
        fprintf(stderr, "observatory-operator: %s\n", err);
        return 1;
    }
    if (!lease_ns)
        lease_ns = getenv("POD_NAMESPACE");
    char ns_copy[254] = "default";
    if (!lease_ns && cfg.namespace)
        snprintf(ns_copy, sizeof ns_copy, "%s", cfg.namespace);
    if (!lease_ns)
        lease_ns = ns_copy;
    if (!(a.kube = kube_client_new(&cfg, err, sizeof err))) {
        fprintf(stderr, "observatory-operator: %s\n", err);
        return 1;
    }
    char identity[300], host[256] = "unknown";
    gethostname(host, sizeof host - 1);
    snprintf(identity, sizeof identity, "%s_%d", getenv("POD_NAME") ? getenv("POD_NAME") : host,
             (int)getpid());

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    opmetrics_server *ms = opmetrics_start(metrics_addr, err, sizeof err);
    if (!ms) {
        fprintf(stderr, "observatory-operator: %s\n", err);
        kube_client_free(a.kube);
        return 1;
    }
    leader_config lc = {.namespace = lease_ns,
                        .name = lease_name,
                        .identity = identity,
                        .lease_duration_s = 15,
                        .renew_deadline_s = 10,
                        .retry_period_s = 2};
    if (leader_elect && leader_acquire(a.kube, &lc, &g_stop)) {
        opmetrics_stop(ms);
        kube_client_free(a.kube);
        return 0; /* stopped before leading */
    }
    atomic_store(&opmetrics_g.leader, 1);

    a.q = workqueue_new(500, 5 * 60 * 1000);
    a.ctl = (controller){
        .kube = a.kube, .swap = swap_http_ops, .hostd_port = hostd_port, .identity = identity};
    controller_stagesets_path(a.watch_ns, a.stagesets_path, sizeof a.stagesets_path);
    if (a.watch_ns) {
        snprintf(a.deployments_path, sizeof a.deployments_path,
                 "/apis/apps/v1/namespaces/%s/deployments", a.watch_ns);
        snprintf(a.configmaps_path, sizeof a.configmaps_path, "/api/v1/namespaces/%s/configmaps",
                 a.watch_ns);
    } else {
        snprintf(a.deployments_path, sizeof a.deployments_path, "/apis/apps/v1/deployments");
        snprintf(a.configmaps_path, sizeof a.configmaps_path, "/api/v1/configmaps");
    }
    a.inf_ss = (informer){.what = "stagesets",
                          .path = a.stagesets_path,
                          .fn = on_stageset,
                          .ud = &a,
                          .on_synced = on_synced};
    a.inf_dep = (informer){.what = "deployments",
                           .path = a.deployments_path,
                           .label_selector = RECONCILE_LABEL_MANAGED_BY "=" RECONCILE_FIELD_MANAGER,
                           .fn = on_child,
                           .ud = &a,
                           .on_synced = on_synced};
    a.inf_cm = (informer){.what = "configmaps",
                          .path = a.configmaps_path,
                          .label_selector = RECONCILE_LABEL_MANAGED_BY "=" RECONCILE_FIELD_MANAGER,
                          .fn = on_child,
                          .ud = &a,
                          .on_synced = on_synced};
    pthread_t t_ss, t_dep, t_cm, workers[MAX_WORKERS];
    void *arg_ss[2] = {&a, &a.inf_ss}, *arg_dep[2] = {&a, &a.inf_dep}, *arg_cm[2] = {&a, &a.inf_cm};
    pthread_create(&t_ss, NULL, informer_thread, arg_ss);
    pthread_create(&t_dep, NULL, informer_thread, arg_dep);
    pthread_create(&t_cm, NULL, informer_thread, arg_cm);
    for (int i = 0; i < n_workers; i++)
        pthread_create(&workers[i], NULL, worker_thread, &a);
    fprintf(stderr, "operator: running (%s, metrics on %s, identity %s)\n",
            a.watch_ns ? a.watch_ns : "all namespaces", metrics_addr, identity);

    if (leader_elect) {
        if (leader_hold(a.kube, &lc, &g_stop))
            exit_code = 1; /* lost the lease */
    } else {
        while (!atomic_load(&g_stop))
            informer_sleep(1000, &g_stop);
    }
    atomic_store(&g_stop, 1);
    atomic_store(&opmetrics_g.leader, 0);
    workqueue_shutdown(a.q);
    pthread_join(t_ss, NULL);
    pthread_join(t_dep, NULL);
    pthread_join(t_cm, NULL);
    for (int i = 0; i < n_workers; i++)
        pthread_join(workers[i], NULL);
    workqueue_free(a.q);
    opmetrics_stop(ms);
    kube_client_free(a.kube);
    curl_global_cleanup();
    return exit_code;
}
