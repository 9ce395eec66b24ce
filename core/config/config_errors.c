/*
 * config_errors.c - how the config module reports errors.
 *
 * Every check of pipeline.yaml, from a syntax error to a plugin parameter
 * out of range, ends up here as one "file:line:col: path: message" line in
 * the caller's buffer. The first MAX_ERRORS lines are written and the rest
 * only counted, so that a broken file shows many independent mistakes at
 * once without flooding the terminal; a closing line says how many were
 * left out. A misspelt name gets a "did you mean" hint, from the edit
 * distance to each name that is allowed. The loader's variant that finds
 * the position from a field path, config_lerr(), is in config_tree.c.
 */
#include "config/config_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_ERRORS 20

void config_err_init(errbuf *e, char *buf, size_t cap, const char *file)
{
    e->buf = cap ? buf : NULL;
    e->cap = buf ? cap : 0;
    e->len = 0;
    e->n = 0;
    e->file = file;
    if (e->buf)
        e->buf[0] = '\0';
}

void config_err_put(errbuf *e, const char *fmt, ...)
{
    if (!e->buf || e->len + 1 >= e->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(e->buf + e->len, e->cap - e->len, fmt, ap);
    va_end(ap);
    if (w > 0)
        e->len = e->len + (size_t)w < e->cap ? e->len + (size_t)w : e->cap - 1;
}

/* One error. line <= 0 leaves the position out, an empty path the field. */
void config_err_vat(errbuf *e, int line, int col, const char *path, const char *fmt, va_list ap)
{
    if (++e->n > MAX_ERRORS)
        return;
    if (e->n > 1)
        config_err_put(e, "\n");
    if (line > 0)
        config_err_put(e, "%s:%d:%d: ", e->file, line, col);
    else
        config_err_put(e, "%s: ", e->file);
    if (path && *path)
        config_err_put(e, "%s: ", path);
    if (e->buf && e->len + 1 < e->cap) {
        int w = vsnprintf(e->buf + e->len, e->cap - e->len, fmt, ap);
        if (w > 0)
            e->len = e->len + (size_t)w < e->cap ? e->len + (size_t)w : e->cap - 1;
    }
}

void config_err_at(errbuf *e, int line, int col, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    config_err_vat(e, line, col, path, fmt, ap);
    va_end(ap);
}

void config_err_finish(errbuf *e)
{
    if (e->n > MAX_ERRORS)
        config_err_put(e, "\n%s: %u more errors not shown", e->file, e->n - MAX_ERRORS);
}

/* Levenshtein distance of the first 63 bytes of a and b. */
static unsigned edit_distance(const char *a, const char *b)
{
    unsigned row[64], la = (unsigned)strnlen(a, 63), lb = (unsigned)strnlen(b, 63);
    for (unsigned j = 0; j <= lb; j++)
        row[j] = j;
    for (unsigned i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = i;
        for (unsigned j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Appends "; did you mean 'x'?" when one of names[0..n) is close to `word`. */
void config_put_suggestion(errbuf *e, const char *word, const char *const *names, size_t n)
{
    const char *best = NULL;
    unsigned best_d = 3, len = (unsigned)strnlen(word, 63);
    for (size_t i = 0; i < n; i++) {
        unsigned d = edit_distance(word, names[i]);
        if (d < best_d && d <= (len > 3 ? len / 3 + 1 : 1)) {
            best_d = d;
            best = names[i];
        }
    }
    if (best)
        config_err_put(e, "; did you mean '%s'?", best);
}
