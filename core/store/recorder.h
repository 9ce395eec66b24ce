/*
 * recorder.h - the recorder: the thread that writes a running pipeline's
 * figures into the run store once per interval (store.h), so that every
 * figure hostd shows can be read again, second by second, after the run.
 */
#ifndef OBS_RECORDER_H
#define OBS_RECORDER_H

#include <stdint.h>

#include "engine/pipeline.h"
#include "store/store.h"

/* The recorder: a thread that takes a pipeline snapshot every
 * `interval_ns` and stores it, until recorder_stop(). `s` and `p` are
 * borrowed and must outlive the recorder. A failed snapshot or write is
 * logged (once) and counted; the run goes on. Returns 0, OBS_ENOMEM, or
 * OBS_EINVAL (interval 0). */
typedef struct recorder recorder;
int recorder_start(store *s, uint64_t run_id, const pipeline *p, uint64_t interval_ns,
                   recorder **out);
/* Takes a last snapshot, stores it, joins the thread and frees. */
void recorder_stop(recorder *r);

#endif /* OBS_RECORDER_H */
