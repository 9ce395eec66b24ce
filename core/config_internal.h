/*
 * config_internal.h - what config.c and config_params.c share.
 *
 * Loading pipeline.yaml (config.c) and checking a stage's parameters against
 * its plugin's declaration (config_params.c) report errors the same way:
 * "file:line:col: path: message" lines accumulated into the caller's buffer,
 * with a "did you mean" hint for misspelt names. Both also read numbers with
 * the same strict parser. Private to those two files; defined in config.c.
 */
#ifndef OBS_CONFIG_INTERNAL_H
#define OBS_CONFIG_INTERNAL_H

#include <stddef.h>

#include "observatory/stage.h"

/* Accumulates "file:line:col: path: message" lines into the caller's buffer.
 * Lines that do not fit are counted but dropped; the text stays terminated. */
typedef struct errbuf {
    char *buf;
    size_t cap, len;
    unsigned n; /* errors reported, including those not shown */
    const char *file;
} errbuf;

/* Starts an empty report into buf[0..cap) (buf may be NULL: errors are then
 * only counted). `file` is borrowed and must outlive `e`. */
void config_err_init(errbuf *e, char *buf, size_t cap, const char *file);

/* Appends text to the current line, without counting an error. */
void config_err_put(errbuf *e, const char *fmt, ...) OBS_PRINTF(2, 3);

/* Starts a new error line. line <= 0 leaves the position out, an empty or
 * NULL path the field. Only the first few errors are written; all count. */
void config_err_at(errbuf *e, int line, int col, const char *path, const char *fmt, ...)
    OBS_PRINTF(5, 6);

/* Ends the report, saying how many errors were counted but not written. */
void config_err_finish(errbuf *e);

/* Appends "; did you mean 'x'?" when one of names[0..n) is close to `word`. */
void config_put_suggestion(errbuf *e, const char *word, const char *const *names, size_t n);

/* Strict finite double: [+-]digits[.digits][e[+-]digits], no inf/nan/hex.
 * Returns 0 or OBS_EINVAL (leaving *v alone). */
int config_parse_double(const char *s, double *v);

#endif /* OBS_CONFIG_INTERNAL_H */
