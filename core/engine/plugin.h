/*
 * plugin.h - finding, loading and checking stage plugins; the module table.
 *
 * A plugin is opened with dlopen(RTLD_NOW | RTLD_LOCAL), and only from the
 * configured plugin directories: loading a .so is running code. Before any
 * plugin function other than the entry point is called, the descriptor is
 * checked (magic, ABI major, struct size, kind, callbacks, declared
 * parameters); each refusal names the file, the stage and what mismatched.
 *
 * Every loaded object is recorded in a process-wide module table with its
 * path, GNU build-id and mapped address range, which the profiler uses to
 * resolve sampled addresses. Modules are never dlclose'd while hostd runs,
 * so entries stay valid (and addresses stay meaningful) until exit.
 */
#ifndef OBS_PLUGIN_H
#define OBS_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "observatory/stage.h"

#define OBS_BUILD_ID_MAX 64

/* One loaded shared object. Owned by the module table; valid until
 * plugin_table_reset() (tests) or process exit. */
typedef struct obs_module {
    char *path;   /* canonical (realpath) file name */
    void *handle; /* dlopen handle, never closed during a run */
    const obs_stage_desc *desc;
    uint8_t build_id[OBS_BUILD_ID_MAX];
    size_t build_id_len;  /* 0 when the object has no NT_GNU_BUILD_ID note */
    uintptr_t start, end; /* lowest and highest+1 mapped address of its PT_LOAD segments */
    uintptr_t load_bias;  /* dlpi_addr: add to ELF virtual addresses */
    uint32_t id;          /* index in the module table */
    uint32_t prof_module; /* id in the profiler's module registry (when it runs) */
} obs_module;

/* What a stage asks for. */
typedef struct plugin_request {
    const char *stage_name;
    const char *plugin;  /* a plugin name ("xf_json_fast") or a file name/path ending in ".so" */
    const char *version; /* NULL: any version */
    obs_kind kind;       /* the kind the stage's position requires (0: any) */
    const char *const *dirs; /* plugin directories, already resolved to absolute paths */
    size_t n_dirs;
    /* Load a content-addressed private copy of the file instead of the file
     * itself (plugin_copy_content_addressed), so a file rebuilt since it was
     * first loaded really loads as new code. Hot swaps set this. */
    int content_addressed;
} plugin_request;

/* Finds, opens and checks a plugin. Resolution: a name N is looked for as
 * "<dir>/N-<version>.so" (when a version is asked for) and then "<dir>/N.so"
 * in each directory in order; a value ending in ".so" is a file name relative
 * to each directory, or an absolute path that must lie inside one of them.
 * On success *out points into the module table (the same entry when the same
 * file is opened twice). On failure returns a negative OBS_E* code and writes
 * a one-line reason into err, e.g.
 *   stage 'parse': plugin 'xf_json_fast' (/x/plugins/xf_json_fast.so): ABI major 2, host supports 1
 *
 * Details (added with the implementation):
 * - The versioned pass runs over all directories before the plain pass, so
 *   "N-V.so" in a later directory wins over "N.so" in an earlier one.
 * - Containment is decided on canonical paths (realpath of the file and of
 *   each directory): "../" escapes and symlinks pointing outside the
 *   configured directories are refused (OBS_EINVAL), symlinks between
 *   configured directories are fine. The canonical path is the module's
 *   identity.
 * - When the stage names a plugin (not a file), the descriptor's name must
 *   be that name.
 * - Codes: OBS_ENOENT not found / no entry symbol / other version;
 *   OBS_EINVAL path outside the directories or invalid name;
 *   OBS_EPLUGIN dlopen failed (message includes dlerror()) or the descriptor
 *   is inconsistent (NULL, names, callbacks, params); OBS_EABI magic, major
 *   or struct size; OBS_ECONFIG the plugin is another kind than the stage
 *   needs; OBS_ENOMEM.
 * - A file whose descriptor is valid enters the module table even if this
 *   stage refuses it for its kind or version. Nothing is ever dlclose'd.
 * Thread-safe: opens are serialised. */
int plugin_open(const plugin_request *req, const obs_module **out, char *err, size_t errlen);

/* Copies the plugin file `src` (after its containment check) to
 * <cache>/<name>@<content hash>.so unless that copy exists, and writes the
 * copy's path into dst. Returns 0 or a negative code with `why` set. */
int plugin_copy_content_addressed(const char *src, char *dst, size_t dstlen, char *why,
                                  size_t whylen);

/* Checks a descriptor against the host's ABI and the kind a stage needs
 * (kind 0: any); `what` prefixes the message (e.g. "stage 'parse': plugin
 * 'x' (path)"). Reads no byte of *d beyond its declared struct_size.
 * Used by plugin_open and usable on its own (tests). */
int plugin_check_desc(const obs_stage_desc *d, obs_kind kind, const char *what, char *err,
                      size_t errlen);

/* Module table access (thread-safe; entries never move once added). */
size_t plugin_module_count(void);
const obs_module *plugin_module_get(size_t i);
/* The module whose mapped range contains addr, or NULL. */
const obs_module *plugin_module_find(uintptr_t addr);

/* Tests only: forgets every entry (frees them; handles stay open, nothing
 * is dlclose'd). Pointers returned earlier become invalid. */
void plugin_table_reset(void);

/* Formats a build-id as lowercase hex into buf (at least 2*len+1 bytes;
 * a shorter buffer gets a truncated, NUL-terminated prefix). */
void plugin_build_id_hex(const obs_module *m, char *buf, size_t buflen);

const char *plugin_kind_name(obs_kind kind);

/* Resolves configured plugin directories (relative to `base_dir`) to
 * absolute canonical paths; nonexistent directories are an error naming
 * them. *out is a malloc'd array of malloc'd strings (free with
 * plugin_dirs_free). */
int plugin_dirs_resolve(const char *base_dir, char *const *dirs, size_t n_dirs, char ***out,
                        char *err, size_t errlen);
void plugin_dirs_free(char **dirs, size_t n);

/* Host-side error name for an OBS_E* code. */
const char *obs_strerror(int code);

#endif /* OBS_PLUGIN_H */
