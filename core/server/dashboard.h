/*
 * dashboard.h - the web dashboard's files, embedded in hostd at build time.
 *
 * core/server/dashboard/ holds the page's source; the build bundles it with npm and
 * esbuild and core/server/dashboard/embed.cmake turns the bundle into a C source of
 * byte arrays (dashboard_files.c in the build tree). When node/npm are
 * missing or the bundle could not be built, the same source holds a small
 * page that says how to enable the dashboard. http_dashboard.c serves these files at
 * / and /assets/...; docs/dashboard.md is the user's side.
 */
#ifndef OBS_DASHBOARD_H
#define OBS_DASHBOARD_H

#include <stddef.h>

/* One embedded file. Everything is static data, valid for the life of the
 * process. */
typedef struct dashboard_file {
    const char *name;         /* path inside the bundle: "index.html", "assets/app.js" */
    const char *content_type; /* "text/javascript; charset=utf-8", ... */
    const unsigned char *data;
    size_t len;
    const char *etag; /* strong ETag, quoted: "\"3f2a...\"" (a hash of the content) */
} dashboard_file;

/* The embedded file named `name` ("index.html", "assets/app.js"), or NULL. */
const dashboard_file *dashboard_lookup(const char *name);

/* 1 when the real dashboard is embedded, 0 when only the page that says
 * how to enable it is. */
int dashboard_available(void);

/* 1 when an If-None-Match header value (NULL: absent) names `etag` or is
 * "*", so the reply can be a 304 without a body. */
int dashboard_etag_matches(const char *if_none_match, const char *etag);

#endif /* OBS_DASHBOARD_H */
