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

/* Frees what one stage sample owns (its instances' samples too). */
static void sample_free(stage_sample *st)
{
    free(st->service);
    free(st->lag);
    free(st->latency);
    free(st->swap_pause);
    free(st->counters);
    for (uint32_t k = 0; st->instances && k < st->n_instances; k++)
        sample_free(&st->instances[k]);
    free(st->instances);
}

void snapshot_free(obs_snapshot *s)
{
    if (!s || !s->stages)
        return;
    for (size_t i = 0; i < s->n_stages; i++)
        sample_free(&s->stages[i]);
    free(s->stages);
    s->stages = NULL;
    s->n_stages = 0;
}
