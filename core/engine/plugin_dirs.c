/*
 * plugin_dirs.c - where plugins may come from: the configured plugin
 * directories, and the file a stage asks for inside them.
 *
 * The directories of pipeline.yaml are resolved once to canonical absolute
 * paths (plugin_dirs_resolve). A stage's request, a plugin name with an
 * optional version or a file name, becomes candidate file names in those
 * directories (a versioned name in every directory before a plain one),
 * and a candidate counts only if its canonical path lies inside one of
 * them: "../" escapes and symlinks pointing outside are refused, symlinks
 * between configured directories are fine. Containment is decided on
 * canonical paths on both sides, and the canonical path becomes the
 * module's identity in the module table (plugin_module.c). Names spliced
 * into file names are checked so that they cannot change the directory
 * they are looked up in.
 */
#include "engine/plugin.h"
#include "engine/plugin_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Is the canonical path p inside the canonical directory dir? */
static bool path_inside(const char *p, const char *dir)
{
    size_t n = strlen(dir);

    if (n == 1 && dir[0] == '/')
        return p[0] == '/';
    return strncmp(p, dir, n) == 0 && p[n] == '/';
}

static bool path_inside_any(const char *p, char *const *dirs, size_t n_dirs)
{
    for (size_t i = 0; i < n_dirs; i++)
        if (path_inside(p, dirs[i]))
            return true;
    return false;
}

/* Appends " (d1, d2, ...)" style directory lists to messages. */
static void join_dirs(char *buf, size_t buflen, char *const *dirs, size_t n_dirs)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n_dirs && o < buflen; i++) {
        int n = snprintf(buf + o, buflen - o, "%s%s", i ? ", " : "", dirs[i]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

void plugin_dirs_free(char **dirs, size_t n)
{
    if (!dirs)
        return;
    for (size_t i = 0; i < n; i++)
        free(dirs[i]);
    free(dirs);
}

int plugin_dirs_resolve(const char *base_dir, char *const *dirs, size_t n_dirs, char ***out,
                        char *err, size_t errlen)
{
    char joined[PATH_MAX];
    char **res = NULL;
    int rc;

    *out = NULL;
    res = calloc(n_dirs ? n_dirs : 1, sizeof *res);
    if (!res)
        return plugin_refuse(OBS_ENOMEM, err, errlen, "plugin directories", "out of memory");

    for (size_t i = 0; i < n_dirs; i++) {
        const char *d = dirs[i];
        struct stat st;
        int n;

        if (!d || !d[0]) {
            rc = plugin_refuse(OBS_ECONFIG, err, errlen, "plugin directories",
                               "entry #%zu is empty", i);
            goto fail;
        }
        if (d[0] == '/' || !base_dir || !base_dir[0])
            n = snprintf(joined, sizeof joined, "%s", d);
        else
            n = snprintf(joined, sizeof joined, "%s/%s", base_dir, d);
        if (n < 0 || (size_t)n >= sizeof joined) {
            rc = plugin_refuse(OBS_ECONFIG, err, errlen, "plugin directories",
                               "'%s': path too long", d);
            goto fail;
        }
        /* realpath allocates (POSIX.1-2008) when given NULL: the result is
         * what we keep. */
        res[i] = realpath(joined, NULL);
        if (!res[i]) {
            int e = errno;
            rc = plugin_refuse(e == ENOMEM ? OBS_ENOMEM : OBS_ENOENT, err, errlen,
                               "plugin directories", "'%s'%s%s%s: %s", d,
                               strcmp(d, joined) ? " (" : "", strcmp(d, joined) ? joined : "",
                               strcmp(d, joined) ? ")" : "", strerror(e));
            goto fail;
        }
        if (stat(res[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
            rc = plugin_refuse(OBS_ENOENT, err, errlen, "plugin directories",
                               "'%s': not a directory", res[i]);
            goto fail;
        }
    }
    *out = res;
    return 0;

fail:
    plugin_dirs_free(res, n_dirs);
    return rc;
}

/* A component spliced into a file name must not be able to change the
 * directory it is looked up in. */
static bool safe_component(const char *s)
{
    return s && s[0] && strcmp(s, ".") && strcmp(s, "..") &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.+-") ==
               strlen(s);
}

bool plugin_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Canonicalises `candidate` into canon (PATH_MAX bytes). Returns 0 when it
 * exists and lies inside a configured directory, 1 when it does not exist
 * (try the next candidate), or a negative code with the reason in err. */
static int try_candidate(const char *candidate, char *const *dirs, size_t n_dirs, char *canon,
                         const char *what, char *err, size_t errlen)
{
    char dirlist[1024];
    struct stat st;

    if (!realpath(candidate, canon)) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 1;
        return plugin_refuse(OBS_ENOENT, err, errlen, what, "%s: %s", candidate, strerror(errno));
    }
    if (!path_inside_any(canon, dirs, n_dirs)) {
        join_dirs(dirlist, sizeof dirlist, dirs, n_dirs);
        return plugin_refuse(OBS_EINVAL, err, errlen, what,
                             "%s resolves to %s, outside the plugin directories (%s)", candidate,
                             canon, dirlist);
    }
    if (stat(canon, &st) != 0 || !S_ISREG(st.st_mode))
        return plugin_refuse(OBS_ENOENT, err, errlen, what, "%s: not a regular file", canon);
    return 0;
}

/* Turns the request into the canonical path of an existing file inside the
 * configured directories (see plugin_open for the search order). */
int plugin_resolve_file(const plugin_request *req, char *const *dirs, size_t n_dirs, char *canon,
                        const char *what, char *err, size_t errlen)
{
    char cand[PATH_MAX];
    char dirlist[1024];
    const char *p = req->plugin;
    int rc;

    if (p[0] == '/') {
        rc = try_candidate(p, dirs, n_dirs, canon, what, err, errlen);
        if (rc == 1)
            return plugin_refuse(OBS_ENOENT, err, errlen, what, "%s: no such file", p);
        return rc;
    }

    if (strchr(p, '/') || plugin_ends_with(p, ".so")) {
        /* A file name relative to each directory. It may contain "../" as
         * long as the canonical result stays inside a configured directory. */
        for (size_t i = 0; i < n_dirs; i++) {
            int n = snprintf(cand, sizeof cand, "%s/%s", dirs[i], p);
            if (n < 0 || (size_t)n >= sizeof cand)
                return plugin_refuse(OBS_EINVAL, err, errlen, what, "path too long");
            rc = try_candidate(cand, dirs, n_dirs, canon, what, err, errlen);
            if (rc != 1)
                return rc;
        }
        join_dirs(dirlist, sizeof dirlist, dirs, n_dirs);
        return plugin_refuse(OBS_ENOENT, err, errlen, what,
                             "no file %s in the plugin directories (%s)", p, dirlist);
    }

    if (!safe_component(p))
        return plugin_refuse(OBS_EINVAL, err, errlen, what,
                             "invalid plugin name (letters, digits, '_', '.', '+', '-' only)");
    if (req->version && !safe_component(req->version))
        return plugin_refuse(OBS_EINVAL, err, errlen, what, "invalid version '%s'", req->version);

    /* Versioned file names first in every directory, then plain ones, so an
     * exact "N-V.so" anywhere wins over an "N.so" that comes earlier. */
    for (int pass = req->version ? 0 : 1; pass < 2; pass++) {
        for (size_t i = 0; i < n_dirs; i++) {
            int n = pass == 0 ? snprintf(cand, sizeof cand, "%s/%s-%s.so", dirs[i], p, req->version)
                              : snprintf(cand, sizeof cand, "%s/%s.so", dirs[i], p);
            if (n < 0 || (size_t)n >= sizeof cand)
                return plugin_refuse(OBS_EINVAL, err, errlen, what, "path too long");
            rc = try_candidate(cand, dirs, n_dirs, canon, what, err, errlen);
            if (rc != 1)
                return rc;
        }
    }
    join_dirs(dirlist, sizeof dirlist, dirs, n_dirs);
    if (req->version)
        return plugin_refuse(OBS_ENOENT, err, errlen, what,
                             "not found (no %s-%s.so or %s.so in %s)", p, req->version, p, dirlist);
    return plugin_refuse(OBS_ENOENT, err, errlen, what, "not found (no %s.so in %s)", p, dirlist);
}
