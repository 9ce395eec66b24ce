/*
 * plugin.c - opening a stage's plugin: the gate every .so passes through.
 *
 * Loading a .so is running code, so plugin_open() is the gate: a plugin is
 * only ever opened from a file whose canonical path (realpath: no symlinks,
 * no "..") lies inside one of the configured plugin directories, which
 * plugin_dirs.c finds. It is opened with dlopen(RTLD_NOW | RTLD_LOCAL), so a
 * missing symbol fails here rather than in the middle of a run, and nothing
 * it defines leaks into the global namespace. The single entry symbol is
 * looked up and called, and the descriptor it returns is checked field by
 * field (plugin_desc.c) before any other plugin function is reached; then
 * the object enters the module table (plugin_module.c) and, when it runs,
 * the profiler's module registry. Every refusal is one line naming the
 * stage, the plugin and the file, and what exactly mismatched (both values);
 * the host's names for its error codes (obs_strerror) live here too.
 *
 * Handles are never dlclose'd, not even on refusal: the object's
 * constructors have run, and its threads or thread-local destructors may
 * still point into its code. plugin_open_lock serialises plugin_open, so
 * "same file twice gives the same entry" holds across threads and
 * dlopen/constructors run once.
 */
#include "engine/plugin.h"
#include "engine/plugin_internal.h"

#include "obs_profiler.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pthread_mutex_t plugin_open_lock = PTHREAD_MUTEX_INITIALIZER;

/* Writes "<what>: <fmt...>" into err and returns code (plugin_internal.h). */
int plugin_refuse(int code, char *err, size_t errlen, const char *what, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return code;
    int n = snprintf(err, errlen, "%s: ", what ? what : "plugin");
    if (n < 0)
        n = 0;
    if ((size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *obs_strerror(int code)
{
    switch (code) {
    case OBS_OK: return "success";
    case OBS_DONE: return "end of data";
    case OBS_EINVAL: return "invalid argument or parameter";
    case OBS_ENOMEM: return "out of memory or a configured bound reached";
    case OBS_EIO: return "I/O error";
    case OBS_EABI: return "ABI mismatch";
    case OBS_ENOENT: return "no such file, symbol, stage or plugin";
    case OBS_ESTATE: return "state handover refused";
    case OBS_EPLUGIN: return "plugin failure";
    case OBS_ECONFIG: return "configuration error";
    case OBS_EAGAIN: return "try again later";
    }
    return "unknown error";
}

/* Checks an entry's descriptor against what this stage asks for: kind, and
 * version when one is asked for; and, when the stage named the plugin rather
 * than a file, that the file really holds that plugin. */
static int check_request(const module_entry *e, const plugin_request *req, const char *what,
                         char *err, size_t errlen)
{
    int rc = plugin_check_desc_norm(e->raw_desc, 0, what, err, errlen, NULL);
    if (rc)
        return rc;
    if (req->kind && e->desc.kind != (uint32_t)req->kind) {
        if (req->stage_name)
            return plugin_refuse(OBS_ECONFIG, err, errlen, what, "is %s, but stage '%s' needs %s",
                                 plugin_kind_with_article(e->desc.kind), req->stage_name,
                                 plugin_kind_with_article(req->kind));
        return plugin_refuse(OBS_ECONFIG, err, errlen, what, "is %s, but the stage needs %s",
                             plugin_kind_with_article(e->desc.kind),
                             plugin_kind_with_article(req->kind));
    }
    if (req->version && strcmp(e->desc.version, req->version) != 0)
        return plugin_refuse(OBS_ENOENT, err, errlen, what, "version %s, stage asks for %s",
                             e->desc.version, req->version);
    if (!strchr(req->plugin, '/') && !plugin_ends_with(req->plugin, ".so") &&
        strcmp(e->desc.name, req->plugin) != 0)
        return plugin_refuse(OBS_EPLUGIN, err, errlen, what, "file declares plugin name '%s'",
                             e->desc.name);
    return 0;
}

int plugin_open(const plugin_request *req, const obs_module **out, char *err, size_t errlen)
{
    char what[PATH_MAX + 512];
    char canon[PATH_MAX];
    char **dirs = NULL;
    module_entry *e = NULL;
    void *handle = NULL;
    size_t n_dirs = 0;
    int rc;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!req || !req->plugin || !req->plugin[0])
        return plugin_refuse(OBS_EINVAL, err, errlen,
                             req && req->stage_name ? req->stage_name : "stage", "no plugin given");

    /* Message prefix until the file is known; "stage 'x': plugin 'y'". */
    if (req->stage_name)
        snprintf(what, sizeof what, "stage '%s': plugin '%s'", req->stage_name, req->plugin);
    else
        snprintf(what, sizeof what, "plugin '%s'", req->plugin);

    if (req->n_dirs == 0 || !req->dirs)
        return plugin_refuse(OBS_ENOENT, err, errlen, what, "no plugin directories configured");

    /* Canonicalise the directories ourselves: containment is decided on
     * canonical paths on both sides, whatever the caller passed. */
    dirs = calloc(req->n_dirs, sizeof *dirs);
    if (!dirs)
        return plugin_refuse(OBS_ENOMEM, err, errlen, what, "out of memory");
    for (n_dirs = 0; n_dirs < req->n_dirs; n_dirs++) {
        const char *d = req->dirs[n_dirs];
        if (!d || d[0] != '/') {
            rc = plugin_refuse(OBS_EINVAL, err, errlen, what,
                               "plugin directory '%s' is not absolute", d ? d : "(null)");
            goto out;
        }
        dirs[n_dirs] = realpath(d, NULL);
        if (!dirs[n_dirs]) {
            rc = plugin_refuse(OBS_ENOENT, err, errlen, what, "plugin directory %s: %s", d,
                               strerror(errno));
            goto out;
        }
    }

    rc = plugin_resolve_file(req, dirs, n_dirs, canon, what, err, errlen);
    if (rc)
        goto out;
    {
        size_t o = strlen(what);
        snprintf(what + o, sizeof what - o, " (%s)", canon);
    }
    if (req->content_addressed) {
        char copy[PATH_MAX], why[PATH_MAX + 128];
        rc = plugin_copy_content_addressed(canon, copy, sizeof copy, why, sizeof why);
        if (rc) {
            rc = plugin_refuse(rc, err, errlen, what, "%s", why);
            goto out;
        }
        if (!realpath(copy, canon)) {
            rc = plugin_refuse(OBS_EIO, err, errlen, what, "%s: %s", copy, strerror(errno));
            goto out;
        }
    }

    pthread_mutex_lock(&plugin_open_lock);
    e = plugin_table_find_path(canon);
    if (e) {
        rc = check_request(e, req, what, err, errlen);
        if (rc == 0)
            *out = &e->pub;
        e = NULL; /* owned by the table */
        goto out_unlock;
    }

    dlerror();
    handle = dlopen(canon, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        size_t n = strlen(canon);
        /* glibc prefixes the file name, which `what` already carries. */
        if (why && strncmp(why, canon, n) == 0 && strncmp(why + n, ": ", 2) == 0)
            why += n + 2;
        rc = plugin_refuse(OBS_EPLUGIN, err, errlen, what, "dlopen failed: %s",
                           why ? why : "unknown");
        goto out_unlock;
    }
    /* From here on the handle is never closed, even on refusal: the
     * object's constructors have run and may have left threads or
     * registrations pointing into its code. A later open of the same file
     * gets the same handle from the loader and fails the same way. */

    dlerror();
    /* POSIX guarantees a function pointer survives the round trip through
     * the void * dlsym returns. */
    obs_stage_entry_fn entry = (obs_stage_entry_fn)dlsym(handle, OBS_STAGE_ENTRY_NAME);
    if (!entry) {
        /* Usually an entry point defined without OBS_EXPORT, which
         * -fvisibility=hidden keeps out of the dynamic symbol table. */
        rc = plugin_refuse(OBS_ENOENT, err, errlen, what,
                           "not an Observatory stage plugin: no symbol '%s' exported (missing "
                           "OBS_EXPORT / OBS_DECLARE_STAGE?)",
                           OBS_STAGE_ENTRY_NAME);
        goto out_unlock;
    }

    e = calloc(1, sizeof *e);
    if (!e) {
        rc = plugin_refuse(OBS_ENOMEM, err, errlen, what, "out of memory");
        goto out_unlock;
    }
    e->raw_desc = entry();
    rc = plugin_check_desc_norm(e->raw_desc, 0, what, err, errlen, &e->desc);
    if (rc)
        goto out_unlock;
    e->pub.handle = handle;
    e->pub.desc = &e->desc;
    e->pub.path = strdup(canon);
    if (!e->pub.path) {
        rc = plugin_refuse(OBS_ENOMEM, err, errlen, what, "out of memory");
        goto out_unlock;
    }
    if (plugin_module_read_layout(handle, &e->pub) != 0) {
        rc = plugin_refuse(OBS_EPLUGIN, err, errlen, what, "cannot find the object's segments");
        goto out_unlock;
    }
    /* Kind and version are stage-specific: check them before the entry is
     * published, but a file refused for one stage is still a valid module
     * that another stage may open, so it enters the table either way. */
    rc = check_request(e, req, what, err, errlen);
    if (plugin_table_add(e) != 0) {
        rc = plugin_refuse(OBS_ENOMEM, err, errlen, what, "out of memory");
        goto out_unlock;
    }
    if (obs_prof_active()) {
        /* The profiler reads the symbol tables now, so samples of this
         * module stay resolvable whatever happens to the file later. */
        /* A content-addressed copy is named <plugin>@<hash>.so: label its
         * frames with the plugin's own name instead. */
        obs_prof_module_info mi = {.path = e->pub.path,
                                   .name = req->content_addressed ? e->desc.name : NULL,
                                   .build_id = e->pub.build_id,
                                   .build_id_len = e->pub.build_id_len,
                                   .start = e->pub.start,
                                   .end = e->pub.end,
                                   .load_bias = e->pub.load_bias};
        char perr[256];
        if (obs_prof_module_add(&mi, &e->pub.prof_module, perr, sizeof perr) != 0)
            fprintf(stderr, "hostd: profiler: %s: %s (its frames will show as addresses)\n",
                    e->pub.path, perr);
    }
    if (rc == 0)
        *out = &e->pub;
    e = NULL;

out_unlock:
    pthread_mutex_unlock(&plugin_open_lock);
out:
    if (e) {
        free(e->pub.path);
        free(e);
    }
    plugin_dirs_free(dirs, n_dirs);
    return rc;
}
