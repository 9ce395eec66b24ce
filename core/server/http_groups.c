/*
 * http_groups.c - the routes over pipelines split over several processes
 * (store/group.h): GET /api/v1/groups lists the run.ids of every store the
 * server reads, GET /api/v1/groups/{run_id} gives one run.id's processes
 * (facts and report of each, with the number of its store for the
 * /api/v1/runs/{id}?store=K routes) and the end-to-end figures. A process
 * still running has no report yet; its per-second series are in its store
 * from the start, so a dashboard over the stores follows it live.
 */
#include "server/http_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/plugin.h"
#include "observatory/stage.h"
#include "store/group.h"
#include "store/store.h"
#include "util/text.h"

/* Every store the server reads, opened; stores that cannot be read are
 * left out and named in *unreadable. Returns the number opened, or -1
 * after replying 503 (no store at all) or 500. */
typedef struct store_set {
    http_store_ref ref[64];
    store *s[64];
    const char *path[64];
    size_t n;
} store_set;

static int open_all(http_request *r, store_set *set, json_t *unreadable)
{
    size_t n = http_n_stores(r->srv);
    set->n = 0;
    if (n == 0) {
        http_reply_error(r->out, 503, "no run store is configured (store.path)");
        return -1;
    }
    for (size_t k = 0; k < n && set->n < sizeof set->s / sizeof set->s[0]; k++) {
        char err[512];
        http_store_ref ref;
        if (http_store_open(r->srv, k, &ref, err, sizeof err) != 0) {
            json_array_append_new(unreadable,
                                  json_pack("{s:I, s:s, s:s}", "store", (json_int_t)k, "path",
                                            http_store_path(r->srv, k), "error", err));
            continue;
        }
        set->ref[set->n] = ref;
        set->s[set->n] = ref.s;
        set->path[set->n] = http_store_path(r->srv, k);
        set->n++;
    }
    return (int)set->n;
}

static void close_all(store_set *set)
{
    for (size_t i = 0; i < set->n; i++)
        http_store_release(&set->ref[i]);
    set->n = 0;
}

void http_handle_groups(http_request *r)
{
    store_set set;
    json_t *unreadable = json_array(), *groups = NULL;
    if (!unreadable) {
        http_reply_error(r->out, 500, "out of memory");
        return;
    }
    if (open_all(r, &set, unreadable) < 0) {
        json_decref(unreadable);
        return;
    }
    int rc = store_groups_json(set.s, set.n, &groups);
    close_all(&set);
    if (rc != 0) {
        json_decref(unreadable);
        http_reply_error(r->out, 500, "store read failed: %s", obs_strerror(rc));
        return;
    }
    http_reply_json(r->out, 200,
                    json_pack("{s:o, s:I, s:o}", "groups", groups, "stores",
                              (json_int_t)http_n_stores(r->srv), "unreadable", unreadable));
}

/* A run.id as config and --run-id accept it (config.c): 1..64 of
 * A-Z a-z 0-9 . _ - */
static int valid_run_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return n >= 1 && n <= 64;
}

void http_handle_group(http_request *r)
{
    const char *rid = r->captures[0];
    if (!valid_run_id(rid)) {
        char clean[96];
        text_sanitize(rid, clean, sizeof clean);
        http_reply_error(r->out, 400, "'%s' is not a run.id (1-64 of A-Z a-z 0-9 . _ -)", clean);
        return;
    }
    store_set set;
    store_group_run *g = NULL;
    size_t n = 0;
    json_t *unreadable = json_array();
    if (!unreadable) {
        http_reply_error(r->out, 500, "out of memory");
        return;
    }
    if (open_all(r, &set, unreadable) < 0) {
        json_decref(unreadable);
        return;
    }
    int rc = store_group_collect(set.s, set.n, rid, &g, &n);
    /* Store numbers as the server counts them, not as this set does. */
    for (size_t i = 0; rc == 0 && i < n; i++)
        g[i].store = set.ref[g[i].store].index;
    json_t *body = NULL;
    if (rc == 0 && n) {
        const char *paths[64];
        for (size_t k = 0; k < http_n_stores(r->srv) && k < 64; k++)
            paths[k] = http_store_path(r->srv, k);
        body = store_group_json(g, n, rid, paths);
    }
    close_all(&set);
    store_group_free(g, n);
    if (rc != 0) {
        json_decref(unreadable);
        http_reply_error(r->out, 500, "store read failed: %s", obs_strerror(rc));
    } else if (n == 0) {
        json_decref(unreadable);
        http_reply_error(r->out, 404, "no run with run.id '%s' in the %zu store%s this server reads",
                         rid, http_n_stores(r->srv), http_n_stores(r->srv) == 1 ? "" : "s");
    } else if (!body) {
        json_decref(unreadable);
        http_reply_error(r->out, 500, "out of memory");
    } else {
        json_object_set_new(body, "unreadable", unreadable);
        http_reply_json(r->out, 200, body);
    }
}
