/*
 * plugin_internal.h - what the files of the plugin loader share.
 *
 * plugin_open() (plugin.c) finds the file a stage asks for inside the
 * configured plugin directories (plugin_dirs.c), checks the descriptor its
 * entry point returns (plugin_desc.c) and records the object in the
 * process-wide module table (plugin_module.c); plugin_copy.c makes the
 * content-addressed copies that hot swaps load. Their refusals share one
 * form, "<what>: <reason>", written by plugin_refuse(). Private to these
 * files: everyone else includes plugin.h.
 */
#ifndef OBS_PLUGIN_INTERNAL_H
#define OBS_PLUGIN_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/plugin.h"
#include "observatory/stage.h"

/* A table entry: the public part first, then what only the loader needs. The
 * host-owned descriptor copy is what obs_module.desc points at: fields the
 * plugin's (older) descriptor does not have read as zero/NULL, and the host
 * never reads beyond the plugin's struct_size. */
typedef struct module_entry {
    obs_module pub;
    const obs_stage_desc *raw_desc; /* as returned by the entry point */
    obs_stage_desc desc;            /* normalised copy, see above */
} module_entry;

/* ------------------------------------------------------ plugin.c */

/* Serialises plugin_open (so "same file twice gives the same entry" holds
 * across threads, and dlopen/constructors run once); it is the only writer
 * of the module table, and plugin_table_reset takes it too. Taken before
 * the module table's own lock, never after. */
extern pthread_mutex_t plugin_open_lock;

/* Writes "<what>: <fmt...>" into err (always NUL-terminated when errlen > 0;
 * what NULL reads "plugin") and returns code, so refusals read
 * `return plugin_refuse(code, ...)`. */
int plugin_refuse(int code, char *err, size_t errlen, const char *what, const char *fmt, ...)
    OBS_PRINTF(5, 6);

/* ------------------------------------------------- plugin_desc.c */

/* "a generator" / "a transform" / "a sink", for messages. Static strings. */
const char *plugin_kind_with_article(uint32_t kind);

/* Checks descriptor `raw` as plugin_check_desc does. On success, when norm
 * is not NULL, copies the descriptor into *norm, zero-filled beyond the
 * plugin's struct_size, so later code may read every field the host knows.
 * Reads the plugin's memory only within its declared size. */
int plugin_check_desc_norm(const obs_stage_desc *raw, obs_kind kind, const char *what, char *err,
                           size_t errlen, obs_stage_desc *norm);

/* ----------------------------------------------- plugin_module.c */

/* The entry whose canonical path is `path`, or NULL. Caller holds
 * plugin_open_lock (the only writer), so the entry cannot be added
 * concurrently; it stays owned by the table. */
module_entry *plugin_table_find_path(const char *path);

/* Appends e (ownership passes to the table) and sets its id. Returns 0 or
 * OBS_ENOMEM (e then stays the caller's). Caller holds plugin_open_lock. */
int plugin_table_add(module_entry *e);

/* Fills build-id, address range and load bias of `m` from the freshly
 * opened `handle`. Returns 0, or OBS_EPLUGIN when the dynamic loader does
 * not know the object. */
int plugin_module_read_layout(void *handle, obs_module *m);

/* ------------------------------------------------- plugin_dirs.c */

/* Does s end with suffix? */
bool plugin_ends_with(const char *s, const char *suffix);

/* Turns the request into the canonical path (into canon, PATH_MAX bytes) of
 * an existing regular file inside the canonical directories dirs[0..n_dirs),
 * in the search order plugin_open describes. Returns 0, or a negative code
 * with the reason in err, prefixed by `what`. */
int plugin_resolve_file(const plugin_request *req, char *const *dirs, size_t n_dirs, char *canon,
                        const char *what, char *err, size_t errlen);

#endif /* OBS_PLUGIN_INTERNAL_H */
