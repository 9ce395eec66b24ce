/*
 * run_profile.c - profiles of stored runs (see run_profile.h): the sink
 * that continuous mode hands each window to, and the reader that merges a
 * run's windows over a time range and filters them by tag labels. The HTTP
 * routes that render them live in server/http_runprof.c.
 *
 * A window is stored as the profiler encoded it, with names already
 * resolved, so reading needs neither the binaries nor a running profiler:
 * obs_prof_profile_decode, obs_prof_profile_merge and the renderers are
 * pure functions of the blobs.
 */
#include "store/run_profile.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/host.h"
#include "engine/plugin.h"
#include "observatory/stage.h"
#include "store/store.h"
#include "util/text.h"

/* ------------------------------------------------------------------------ */
/* Recording                                                                 */

/* Continuous mode is process-wide, so its sink context is too. The store is
 * borrowed from hostd, which stops the recording before closing it. */
static struct {
    struct store *store;
    uint64_t run_id;
    _Atomic uint64_t n_failed;
} rec;

/* The sink: runs on the profiler's collector thread (or on the thread that
 * stops continuous mode, for the last window). */
static int store_window(void *ctx, uint64_t start_ns, uint64_t end_ns, const void *blob, size_t len)
{
    (void)ctx;
    int rc = store_put_profile(rec.store, rec.run_id, start_ns, end_ns, blob, len);
    /* One message is enough: a store that refuses one window (disk full)
     * usually refuses the next ones too, every 100 ms or more. */
    if (rc < 0 && atomic_fetch_add(&rec.n_failed, 1) == 0)
        host_log(NULL, OBS_LOG_ERROR,
                 "profiler: run %" PRIu64 ": cannot store the profile window at %" PRIu64
                 " ns (%s); later failures are counted, not logged",
                 rec.run_id, start_ns, obs_strerror(rc));
    return rc;
}

int run_profile_record_start(struct store *s, uint64_t run_id, uint64_t window_ns)
{
    if (!s)
        return OBS_EINVAL;
    if (rec.store)
        return OBS_EAGAIN;
    rec.store = s;
    rec.run_id = run_id;
    atomic_store(&rec.n_failed, 0);
    int rc = obs_prof_continuous_start(window_ns, store_window, NULL);
    if (rc < 0)
        rec.store = NULL;
    return rc;
}

uint64_t run_profile_record_stop(void)
{
    if (!rec.store)
        return 0;
    obs_prof_continuous_stop();
    rec.store = NULL;
    return atomic_load(&rec.n_failed);
}

/* ------------------------------------------------------------------------ */
/* Reading                                                                   */

typedef struct merge_ctx {
    obs_prof_profile *acc; /* NULL until the first window */
    size_t n_windows;
    uint64_t bad_start_ns; /* start of a window that did not decode */
    int rc;
} merge_ctx;

static int merge_window(void *arg, uint64_t start_ns, const void *blob, size_t len)
{
    merge_ctx *m = arg;
    obs_prof_profile *p = NULL;
    int rc = obs_prof_profile_decode(blob, len, &p);
    if (rc == OBS_EINVAL) {
        m->bad_start_ns = start_ns;
        return m->rc = OBS_EIO;
    }
    if (rc < 0)
        return m->rc = rc;
    if (!m->acc) {
        m->acc = p;
    } else {
        rc = obs_prof_profile_merge(m->acc, p);
        obs_prof_profile_free(p);
        if (rc < 0)
            return m->rc = rc;
    }
    m->n_windows++;
    return 0;
}

/* Checks that some sample of `p` has label key=value; else OBS_ENOENT with
 * the values there are in err. An empty value matches anything. */
static int check_label(const obs_prof_profile *p, const obs_prof_label *l, char *err, size_t errlen)
{
    if (!l->value || !*l->value)
        return 0;
    const char **vals = obs_prof_profile_label_values(p, l->key);
    if (!vals)
        return OBS_ENOMEM;
    int found = 0;
    char known[256] = "";
    size_t o = 0;
    for (size_t i = 0; vals[i]; i++) {
        found |= strcmp(vals[i], l->value) == 0;
        if (o < sizeof known)
            o += (size_t)snprintf(known + o, sizeof known - o, "%s%s", i ? ", " : "", vals[i]);
    }
    int any = vals[0] != NULL;
    free(vals);
    if (found)
        return 0;
    char clean[64];
    text_sanitize(l->value, clean, sizeof clean);
    char cleank[256];
    text_sanitize(any ? known : "none", cleank, sizeof cleank);
    snprintf(err, errlen, "no sample has %s=%s (values of '%s' in this range: %s)", l->key, clean,
             l->key, cleank);
    return OBS_ENOENT;
}

int run_profile_select(struct store *s, const run_profile_sel *sel, obs_prof_profile **out,
                       size_t *n_windows, char *err, size_t errlen)
{
    merge_ctx m = {0};
    *out = NULL;
    if (n_windows)
        *n_windows = 0;
    int rc = store_profiles_scan(s, sel->run_id, sel->from_ns, sel->to_ns, merge_window, &m);
    if (rc == OBS_ENOENT && !m.rc) {
        snprintf(err, errlen, "no run %" PRIu64, sel->run_id);
        goto fail;
    }
    if (rc < 0) {
        if (m.bad_start_ns)
            snprintf(err, errlen,
                     "run %" PRIu64 ": the profile window at %" PRIu64 " ns is malformed",
                     sel->run_id, m.bad_start_ns);
        else
            snprintf(err, errlen, "run %" PRIu64 ": reading its profile failed: %s", sel->run_id,
                     obs_strerror(rc));
        goto fail;
    }
    if (!m.acc) {
        rc = OBS_ENOENT;
        snprintf(err, errlen,
                 "run %" PRIu64 " has no profile stored%s (record one with "
                 "hostd --profile-continuous DUR)",
                 sel->run_id,
                 sel->from_ns || sel->to_ns != UINT64_MAX ? " in that time range" : "");
        goto fail;
    }
    for (size_t i = 0; i < sel->n_match; i++)
        if ((rc = check_label(m.acc, &sel->match[i], err, errlen)) < 0) {
            if (rc == OBS_ENOMEM)
                snprintf(err, errlen, "out of memory");
            goto fail;
        }
    rc = obs_prof_profile_filter(m.acc, sel->match, sel->n_match, out);
    if (rc < 0) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (n_windows)
        *n_windows = m.n_windows;
fail:
    obs_prof_profile_free(m.acc);
    return rc;
}
