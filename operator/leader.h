/*
 * leader.h - leader election with a coordination.k8s.io/v1 Lease.
 *
 * Only the replica holding the Lease reconciles. The holder renews
 * spec.renewTime every retry period; another replica takes the Lease over
 * when it has seen the same Lease record (same resourceVersion) unchanged
 * for leaseDurationSeconds by its own monotonic clock (not by comparing
 * renewTime with its wall clock, so clock skew between nodes does not
 * matter; this is client-go's rule). Every write carries the
 * resourceVersion it read, so two candidates cannot both win: the loser gets
 * 409. A leader that cannot renew within the renew deadline stops leading.
 */
#ifndef OBSOP_LEADER_H
#define OBSOP_LEADER_H

#include "kube.h"

#include <stdatomic.h>

typedef struct leader_config {
    const char *namespace, *name, *identity;
    int lease_duration_s; /* 15 */
    int renew_deadline_s; /* 10 */
    int retry_period_s;   /* 2 */
} leader_config;

/* Blocks until this replica holds the lease (returns 0) or *stop is set
 * (returns -ECANCELED). */
int leader_acquire(kube_client *c, const leader_config *lc, atomic_int *stop);

/* Renews until *stop is set (then releases the lease and returns 0) or
 * renewal fails for longer than the renew deadline (returns -ETIMEDOUT: the
 * caller must stop reconciling at once). */
int leader_hold(kube_client *c, const leader_config *lc, atomic_int *stop);

/* Formats now as a metav1.MicroTime (RFC 3339 with microseconds, UTC). */
void leader_microtime(char out[40]);

#endif
