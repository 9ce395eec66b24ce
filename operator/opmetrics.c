/*
 * opmetrics.c - counters, Prometheus rendering and the health server.
 */
#include "opmetrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

opmetrics opmetrics_g;

struct opmetrics_server {
    struct MHD_Daemon *d;
};

int64_t opmetrics_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

/* Fields of /proc/self/smaps_rollup, in bytes; 0 when unreadable. */
typedef struct memstat {
    unsigned long long rss, anonymous, private_clean, private_dirty, shared_clean, shared_dirty;
} memstat;

static void read_memstat(memstat *m)
{
    static const struct {
        const char *name;
        size_t off;
    } fields[] = {
        {"Rss:", offsetof(memstat, rss)},
        {"Anonymous:", offsetof(memstat, anonymous)},
        {"Private_Clean:", offsetof(memstat, private_clean)},
        {"Private_Dirty:", offsetof(memstat, private_dirty)},
        {"Shared_Clean:", offsetof(memstat, shared_clean)},
        {"Shared_Dirty:", offsetof(memstat, shared_dirty)},
    };
    char line[256];
    memset(m, 0, sizeof *m);
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
            size_t n = strlen(fields[i].name);
            if (strncmp(line, fields[i].name, n) == 0) {
                unsigned long long kb = strtoull(line + n, NULL, 10);
                *(unsigned long long *)((char *)m + fields[i].off) = kb * 1024;
            }
        }
    }
    fclose(f);
}

char *opmetrics_render(void)
{
    opmetrics *m = &opmetrics_g;
    char *out = NULL;
    memstat mem;
    read_memstat(&mem);
    int n = asprintf(
        &out,
        "# HELP observatory_operator_reconcile_total Reconciles of a StageSet by result.\n"
        "# TYPE observatory_operator_reconcile_total counter\n"
        "observatory_operator_reconcile_total{result=\"success\"} %llu\n"
        "observatory_operator_reconcile_total{result=\"error\"} %llu\n"
        "# HELP observatory_operator_reconcile_seconds_total Time spent reconciling.\n"
        "# TYPE observatory_operator_reconcile_seconds_total counter\n"
        "observatory_operator_reconcile_seconds_total %.6f\n"
        "# HELP observatory_operator_writes_total Writes to the API server by kind.\n"
        "# TYPE observatory_operator_writes_total counter\n"
        "observatory_operator_writes_total{kind=\"apply\"} %llu\n"
        "observatory_operator_writes_total{kind=\"status\"} %llu\n"
        "observatory_operator_writes_total{kind=\"event\"} %llu\n"
        "# HELP observatory_operator_swaps_total Plugin hot-swaps asked of hostd pods by result.\n"
        "# TYPE observatory_operator_swaps_total counter\n"
        "observatory_operator_swaps_total{result=\"success\"} %llu\n"
        "observatory_operator_swaps_total{result=\"failure\"} %llu\n"
        "# HELP observatory_operator_lists_total Full lists (initial and after a lost watch).\n"
        "# TYPE observatory_operator_lists_total counter\n"
        "observatory_operator_lists_total %llu\n"
        "# HELP observatory_operator_watch_restarts_total Watches started again after they ended "
        "or failed.\n"
        "# TYPE observatory_operator_watch_restarts_total counter\n"
        "observatory_operator_watch_restarts_total %llu\n"
        "# HELP observatory_operator_watch_gone_total Watches that answered 410 Gone "
        "(resourceVersion too old).\n"
        "# TYPE observatory_operator_watch_gone_total counter\n"
        "observatory_operator_watch_gone_total %llu\n"
        "# HELP observatory_operator_watch_ahead_total Watches that answered 504 Too large "
        "resource version (the server is behind it, e.g. restarted on lost storage).\n"
        "# TYPE observatory_operator_watch_ahead_total counter\n"
        "observatory_operator_watch_ahead_total %llu\n"
        "# HELP observatory_operator_watch_events_total Watch events received.\n"
        "# TYPE observatory_operator_watch_events_total counter\n"
        "observatory_operator_watch_events_total %llu\n"
        "# HELP observatory_operator_workqueue_depth Keys ready to be reconciled now.\n"
        "# TYPE observatory_operator_workqueue_depth gauge\n"
        "observatory_operator_workqueue_depth %u\n"
        "# HELP observatory_operator_workqueue_waiting Keys waiting for their time (backoff, "
        "Retry-After, periodic resync).\n"
        "# TYPE observatory_operator_workqueue_waiting gauge\n"
        "observatory_operator_workqueue_waiting %u\n"
        "# HELP observatory_operator_leader 1 while this replica holds the leader lease.\n"
        "# TYPE observatory_operator_leader gauge\n"
        "observatory_operator_leader %d\n"
        "# HELP observatory_operator_memory_bytes Resident memory by kind "
        "(/proc/self/smaps_rollup): "
        "anonymous is the operator's own (heap, stacks); shared_* and private_clean are mostly "
        "shared libraries' code and data.\n"
        "# TYPE observatory_operator_memory_bytes gauge\n"
        "observatory_operator_memory_bytes{kind=\"rss\"} %llu\n"
        "observatory_operator_memory_bytes{kind=\"anonymous\"} %llu\n"
        "observatory_operator_memory_bytes{kind=\"private_clean\"} %llu\n"
        "observatory_operator_memory_bytes{kind=\"private_dirty\"} %llu\n"
        "observatory_operator_memory_bytes{kind=\"shared_clean\"} %llu\n"
        "observatory_operator_memory_bytes{kind=\"shared_dirty\"} %llu\n",
        (unsigned long long)m->reconcile_ok, (unsigned long long)m->reconcile_error,
        (double)m->reconcile_ns_total / 1e9, (unsigned long long)m->applies,
        (unsigned long long)m->status_writes, (unsigned long long)m->events,
        (unsigned long long)m->swaps_ok, (unsigned long long)m->swaps_failed,
        (unsigned long long)m->lists, (unsigned long long)m->watch_restarts,
        (unsigned long long)m->relists_gone, (unsigned long long)m->relists_ahead,
        (unsigned long long)m->watch_events, (unsigned)m->queue_depth, (unsigned)m->queue_waiting,
        (int)m->leader, mem.rss, mem.anonymous, mem.private_clean, mem.private_dirty,
        mem.shared_clean, mem.shared_dirty);
    return n < 0 ? NULL : out;
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *ctype,
                             char *body, int owned)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        strlen(body), body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *data_len, void **req)
{
    (void)cls;
    (void)version;
    (void)data;
    (void)data_len;
    (void)req;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, 405, "text/plain", "method not allowed\n", 0);
    if (strcmp(url, "/metrics") == 0) {
        char *body = opmetrics_render();
        return body ? reply(conn, 200, "text/plain; version=0.0.4", body, 1)
                    : reply(conn, 500, "text/plain", "out of memory\n", 0);
    }
    if (strcmp(url, "/healthz") == 0) {
        /* Not leader: idle by design, healthy. Leader: its watches must work. */
        int64_t last = atomic_load(&opmetrics_g.last_watch_ok);
        if (atomic_load(&opmetrics_g.leader) && last &&
            opmetrics_now_s() - last > OPMETRICS_STALE_S)
            return reply(conn, 503, "text/plain", "watches failing\n", 0);
        return reply(conn, 200, "text/plain", "ok\n", 0);
    }
    if (strcmp(url, "/readyz") == 0)
        return atomic_load(&opmetrics_g.synced) || !atomic_load(&opmetrics_g.leader)
                   ? reply(conn, 200, "text/plain", "ok\n", 0)
                   : reply(conn, 503, "text/plain", "caches not synced\n", 0);
    return reply(conn, 404, "text/plain", "not found\n", 0);
}

opmetrics_server *opmetrics_start(const char *addr, char *err, size_t errlen)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    const char *colon = strrchr(addr, ':');
    char host[64] = "0.0.0.0";
    if (!colon) {
        snprintf(err, errlen, "metrics address '%s': expected host:port or :port", addr);
        return NULL;
    }
    if (colon > addr) {
        size_t n = (size_t)(colon - addr);
        if (n >= sizeof host) {
            snprintf(err, errlen, "metrics address '%s': host too long", addr);
            return NULL;
        }
        memcpy(host, addr, n);
        host[n] = '\0';
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "metrics address '%s': expected an IPv4 address and a port", addr);
        return NULL;
    }
    sa.sin_port = htons((uint16_t)port);
    opmetrics_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                            handle, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!s->d) {
        snprintf(err, errlen, "metrics server: cannot listen on %s", addr);
        free(s);
        return NULL;
    }
    return s;
}

void opmetrics_stop(opmetrics_server *s)
{
    if (!s)
        return;
    MHD_stop_daemon(s->d);
    free(s);
}
