/*
 * dashboard.c - lookup of the dashboard's embedded files (dashboard.h). The
 * table itself is generated at build time (core/server/dashboard/embed.cmake writes
 * dashboard_files.c into the build tree); this file only searches it and
 * answers conditional requests.
 */
#include "server/dashboard.h"

#include <string.h>

/* Defined by the generated dashboard_files.c. */
extern const dashboard_file dashboard_files[];
extern const size_t dashboard_n_files;
extern const int dashboard_built;

const dashboard_file *dashboard_lookup(const char *name)
{
    if (!name)
        return NULL;
    /* A handful of files: a linear search is the simplest correct thing. */
    for (size_t i = 0; i < dashboard_n_files; i++)
        if (strcmp(dashboard_files[i].name, name) == 0)
            return &dashboard_files[i];
    return NULL;
}

int dashboard_available(void)
{
    return dashboard_built;
}

int dashboard_etag_matches(const char *if_none_match, const char *etag)
{
    if (!if_none_match || !etag)
        return 0;
    size_t n = strlen(etag);
    /* A comma-separated list of entity tags, each maybe weak (W/"..."); for
     * If-None-Match a weak comparison is the right one (RFC 9110 13.1.2). */
    for (const char *p = if_none_match; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (strncmp(p, etag, n) == 0 &&
            (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
            return 1;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}
