/*
 * http_dashboard.c - the HTTP routes of the web dashboard (docs/dashboard.md):
 * GET / gives a browser the page and anything else the endpoint list, and
 * /assets/{file} the page's scripts and styles. The files are embedded in
 * hostd (dashboard.h) and revalidated by ETag; a Content-Security-Policy
 * lets the page load only what hostd itself serves.
 */
#include "server/http_internal.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#include "server/dashboard.h"
#include "util/text.h"

/* The dashboard's pages (docs/dashboard.md): embedded files (dashboard.h),
 * revalidated by ETag; the page may load only what hostd itself serves. */
static void reply_dashboard_file(http_request *r, const char *name)
{
    const dashboard_file *f = dashboard_lookup(name);
    if (!f) {
        char clean[128];
        text_sanitize(name, clean, sizeof clean);
        http_reply_error(r->out, 404, "no such dashboard file: %s", clean);
        return;
    }
    const char *inm =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    r->out->status = dashboard_etag_matches(inm, f->etag) ? 304 : 200;
    r->out->body = r->out->status == 200 ? (char *)f->data : NULL;
    r->out->len = r->out->status == 200 ? f->len : 0;
    r->out->persistent = 1;
    r->out->content_type = f->content_type;
    r->out->etag = f->etag;
    r->out->cache_control = "no-cache";
    r->out->csp = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                  "frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
}

/* GET /: the dashboard for a browser (its Accept names text/html); the
 * endpoint list, as before, for curl and scripts. */
void http_handle_root(http_request *r)
{
    const char *accept = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept");
    if (accept && strstr(accept, "text/html"))
        reply_dashboard_file(r, "index.html");
    else
        http_handle_index(r);
    r->out->vary = "Accept";
}

/* GET /assets/{file}: the dashboard's scripts and styles. */
void http_handle_asset(http_request *r)
{
    char name[96];
    snprintf(name, sizeof name, "assets/%s", r->captures[0]);
    reply_dashboard_file(r, name);
}
