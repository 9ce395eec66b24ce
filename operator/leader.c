/*
 * leader.c - Lease-based leader election (leader.h).
 */
#include "leader.h"

#include "informer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

void leader_microtime(char out[40])
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 40, "%.19s.%06uZ", date, (unsigned)(tv.tv_usec % 1000000));
}

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct observed {
    char rv[64];
    double since; /* monotonic time the record was first seen with this rv */
} observed;

static void lease_path(const leader_config *lc, char *buf, size_t len, int item)
{
    if (item)
        snprintf(buf, len, "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s", lc->namespace,
                 lc->name);
    else
        snprintf(buf, len, "/apis/coordination.k8s.io/v1/namespaces/%s/leases", lc->namespace);
}

/* One attempt to acquire or renew. Returns 1 when we hold the lease, 0 when
 * someone else validly does, negative on errors. */
static int try_once(kube_client *c, const leader_config *lc, observed *ob, char *err, size_t errlen)
{
    char path[512], now[40];
    json_t *lease = NULL, *out = NULL;
    leader_microtime(now);
    lease_path(lc, path, sizeof path, 1);
    int rc = kube_get(c, path, &lease, err, errlen);
    if (rc == -ENOENT) {
        json_t *obj = json_pack(
            "{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:i, s:s, s:s, s:i}}", "apiVersion",
            "coordination.k8s.io/v1", "kind", "Lease", "metadata", "name", lc->name, "namespace",
            lc->namespace, "spec", "holderIdentity", lc->identity, "leaseDurationSeconds",
            lc->lease_duration_s, "acquireTime", now, "renewTime", now, "leaseTransitions", 0);
        lease_path(lc, path, sizeof path, 0);
        rc = kube_create(c, path, obj, NULL, err, errlen);
        json_decref(obj);
        return rc == 0 ? 1 : rc == -EAGAIN ? 0 : rc;
    }
    if (rc)
        return rc;
    json_t *spec = json_object_get(lease, "spec");
    if (!spec) {
        spec = json_object();
        json_object_set_new(lease, "spec", spec);
    }
    const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
    const char *rv =
        json_string_value(json_object_get(json_object_get(lease, "metadata"), "resourceVersion"));
    json_int_t dur = json_integer_value(json_object_get(spec, "leaseDurationSeconds"));
    if (dur <= 0)
        dur = lc->lease_duration_s;
    int mine = holder && strcmp(holder, lc->identity) == 0;
    if (rv && strcmp(rv, ob->rv) != 0) {
        snprintf(ob->rv, sizeof ob->rv, "%s", rv);
        ob->since = mono();
    }
    if (!mine && holder && *holder && mono() - ob->since < (double)dur) {
        json_decref(lease);
        return 0; /* held, and renewed recently as far as we have seen */
    }
    if (!mine) {
        json_int_t tr = json_integer_value(json_object_get(spec, "leaseTransitions"));
        json_object_set_new(spec, "holderIdentity", json_string(lc->identity));
        json_object_set_new(spec, "acquireTime", json_string(now));
        json_object_set_new(spec, "leaseTransitions", json_integer(tr + 1));
    }
    json_object_set_new(spec, "leaseDurationSeconds", json_integer(lc->lease_duration_s));
    json_object_set_new(spec, "renewTime", json_string(now));
    /* PUT with the resourceVersion we read: a concurrent writer makes it 409. */
    rc = kube_replace(c, path, lease, &out, err, errlen);
    if (rc == 0) {
        const char *nrv =
            json_string_value(json_object_get(json_object_get(out, "metadata"), "resourceVersion"));
        if (nrv) {
            snprintf(ob->rv, sizeof ob->rv, "%s", nrv);
            ob->since = mono();
        }
    }
    json_decref(out);
    json_decref(lease);
    return rc == 0 ? 1 : rc == -EAGAIN ? 0 : rc;
}

int leader_acquire(kube_client *c, const leader_config *lc, atomic_int *stop)
{
    observed ob = {.rv = "", .since = mono()};
    char err[1024];
    int logged = 0;
    while (!atomic_load(stop)) {
        err[0] = '\0';
        int rc = try_once(c, lc, &ob, err, sizeof err);
        if (rc == 1) {
            fprintf(stderr, "operator: became leader (lease %s/%s, identity %s)\n", lc->namespace,
                    lc->name, lc->identity);
            return 0;
        }
        if (rc < 0)
            fprintf(stderr, "operator: leader election: %s\n", err);
        else if (!logged++)
            fprintf(stderr, "operator: waiting for lease %s/%s held by another replica\n",
                    lc->namespace, lc->name);
        informer_sleep((uint64_t)lc->retry_period_s * 1000, stop);
    }
    return -ECANCELED;
}

static void release(kube_client *c, const leader_config *lc)
{
    char path[512], err[512];
    json_t *lease = NULL;
    lease_path(lc, path, sizeof path, 1);
    if (kube_get(c, path, &lease, err, sizeof err))
        return;
    json_t *spec = json_object_get(lease, "spec");
    const char *holder = json_string_value(json_object_get(spec, "holderIdentity"));
    if (holder && strcmp(holder, lc->identity) == 0) {
        /* What client-go's ReleaseOnCancel does: an empty holder and a
         * 1-second duration let the next replica take over at once. */
        json_object_set_new(spec, "holderIdentity", json_string(""));
        json_object_set_new(spec, "leaseDurationSeconds", json_integer(1));
        if (kube_replace(c, path, lease, NULL, err, sizeof err))
            fprintf(stderr, "operator: releasing the lease: %s\n", err);
    }
    json_decref(lease);
}

int leader_hold(kube_client *c, const leader_config *lc, atomic_int *stop)
{
    observed ob = {.rv = "", .since = mono()};
    double last_ok = mono();
    char err[1024];
    while (!atomic_load(stop)) {
        informer_sleep((uint64_t)lc->retry_period_s * 1000, stop);
        if (atomic_load(stop))
            break;
        err[0] = '\0';
        int rc = try_once(c, lc, &ob, err, sizeof err);
        if (rc == 1) {
            last_ok = mono();
            continue;
        }
        if (rc == 0) {
            fprintf(stderr, "operator: lost the lease to another replica\n");
            return -ETIMEDOUT;
        }
        fprintf(stderr, "operator: renewing the lease: %s\n", err);
        if (mono() - last_ok > lc->renew_deadline_s) {
            fprintf(stderr, "operator: could not renew the lease for %d s: stepping down\n",
                    lc->renew_deadline_s);
            return -ETIMEDOUT;
        }
    }
    release(c, lc);
    return 0;
}
