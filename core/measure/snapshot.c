/*
 * snapshot.c - the snapshot as plain data: its release and the names of its
 * states (snapshot.h). Taking one from a running pipeline is the engine's
 * job (engine/snapshot.c); everything here works on a copy.
 */
#include "measure/snapshot.h"

#include <stdlib.h>

const char *snapshot_state_name(snapshot_state s)
{
    switch (s) {
    case SNAPSHOT_STARTING: return "starting";
    case SNAPSHOT_RUNNING: return "running";
    case SNAPSHOT_DRAINING: return "draining";
    case SNAPSHOT_DONE: return "done";
    }
    return "unknown";
}

void snapshot_free(obs_snapshot *s)
{
    if (!s || !s->stages)
        return;
    for (size_t i = 0; i < s->n_stages; i++) {
        free(s->stages[i].service);
        free(s->stages[i].lag);
        free(s->stages[i].latency);
        free(s->stages[i].swap_pause);
        free(s->stages[i].counters);
    }
    free(s->stages);
    s->stages = NULL;
    s->n_stages = 0;
}
