/*
 * swap.h - hot swap of one stage's plugin while the pipeline runs.
 *
 * The new version is loaded (a content-addressed copy of its file, so a
 * rebuilt .so really loads anew) and initialised off the data path, on the
 * caller's thread. It is then handed to the stage thread, which switches at
 * its next batch boundary: it moves the old instance's state into the new
 * one (export_state/import_state, when both have them) or else flushes the
 * old instance so nothing it holds back is lost, publishes the new slot and
 * carries on with the next batch. The time that batch waited is the pause,
 * measured and reported. The caller then finalises the old instance. A
 * failed load, parameter check, init or state import leaves the old version
 * running and says why. Records are never lost or duplicated: the switch
 * happens between two batches, on the one thread that processes them.
 */
#ifndef OBS_SWAP_H
#define OBS_SWAP_H

#include <stddef.h>
#include <stdint.h>

#include "engine/stage.h"

typedef struct swap_spec {
    const char *plugin;      /* a plugin name, or a .so file name inside the plugin dirs */
    const char *version;     /* NULL: any */
    const cfg_param *params; /* used when params_given: replaces the stage's params */
    size_t n_params;
    int params_given;
    int no_handover;     /* flush the old instance even if state could be handed over */
    uint64_t timeout_ns; /* wait for a batch boundary at most this long; 0: 10 s */
} swap_spec;

enum { SWAP_STATE_FLUSHED = 0, SWAP_STATE_HANDED_OVER = 1 };

typedef struct swap_result {
    char stage[64];
    char old_plugin[64], old_version[64];
    char new_plugin[64], new_version[64];
    char new_path[4096];
    char new_build_id[2 * OBS_BUILD_ID_MAX + 1];
    int state;         /* SWAP_STATE_* */
    uint64_t load_ns;  /* open, check and init of the new version (off the data path) */
    uint64_t wait_ns;  /* until the stage thread reached a batch boundary */
    uint64_t pause_ns; /* how long that batch was delayed by the switch itself */
    uint64_t n_swaps;  /* swaps of this stage so far, this one included */
} swap_result;

/* Swaps stage `stage_name` of a running pipeline to the plugin `spec`
 * describes. Blocks until the switch happened or failed. Returns 0 with
 * *res filled, or a negative code with `err` set: OBS_ENOENT (no such stage
 * or plugin), OBS_EABI/OBS_EPLUGIN (a refused plugin), OBS_ECONFIG (bad
 * parameters), OBS_EAGAIN (the pipeline is not running, another swap of
 * this pipeline is in progress, or no batch boundary came in time),
 * OBS_ESTATE (the new version refused the old one's state). */
int pipeline_swap(pipeline *p, const char *stage_name, const swap_spec *spec, swap_result *res,
                  char *err, size_t errlen);

/* For pipeline.c. */
uint32_t swap_prof_tag(const stage *s, const stage_slot *sl, const char *variant);
/* Stage thread: takes the pending swap, if any; `flush` emits what a slot
 * holds back (a transform's output goes downstream). */
void swap_take(stage *s, int (*flush)(stage *s, stage_slot *sl));
/* Stage thread, at its end: fails a swap that can no longer be taken. */
void swap_refuse_pending(stage *s, const char *why);
/* pipeline_destroy: finalises the active slot and frees every slot. */
void swap_free_slots(stage *s);

#endif /* OBS_SWAP_H */
