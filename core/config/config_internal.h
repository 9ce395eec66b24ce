/*
 * config_internal.h - what the files of the config module share.
 *
 * Loading pipeline.yaml (config.c, with the `load:` phases in
 * config_load.c and a stage's `ab:` in config_ab.c) and checking a stage's
 * parameters against its plugin's declaration (config_params.c) report
 * errors the same way: "file:line:col: path: message" lines accumulated into
 * the caller's buffer, with a "did you mean" hint for misspelt names. All
 * read numbers with the same strict parsers. The loader's state and the
 * pieces of the libcyaml schema that config.c puts together are declared
 * here too. Private to the config module; everything is defined in config.c
 * unless said otherwise.
 */
#ifndef OBS_CONFIG_INTERNAL_H
#define OBS_CONFIG_INTERNAL_H

#include <cyaml/cyaml.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "config.h"
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

/* ---------------------------------------------------------- the loader */

/* One load of a configuration: the config being filled, the libyaml tree of
 * its text (for positions) and the errors so far. */
typedef struct loader {
    obs_config *cfg;
    yaml_document_t doc;
    errbuf err;
    bool oom; /* an allocation failed: the load ends in OBS_ENOMEM */
} loader;

/* The node at a field path ("stages[1].params") of L's document, or NULL
 * when the path does not exist. Valid as long as the document. */
yaml_node_t *config_node_at(loader *L, const char *path);

/* Reports an error at the position of the node at `path` (no position when
 * the path does not exist), naming the path. */
void config_lerr(loader *L, const char *path, const char *fmt, ...) OBS_PRINTF(3, 4);
void config_vlerr(loader *L, const char *path, const char *fmt, va_list ap) OBS_PRINTF(3, 0);

/* Converts `text` (NULL: not given, *out untouched) into *out, or reports
 * at `path` why it is not a duration. */
void config_check_duration(loader *L, const char *path, const char *text, uint64_t *out);

/* Strict unsigned decimal: digits only, no sign, no spaces, no overflow.
 * Returns 0 or OBS_EINVAL (leaving *v alone). */
int config_parse_u64(const char *s, uint64_t *v);

/* Converts `text` (NULL: not given, *out untouched) into *out within
 * [lo, hi], or reports at `path` what is wrong. */
void config_check_u32(loader *L, const char *path, const char *text, uint32_t *out, uint32_t lo,
                      uint32_t hi);

/* Reports at `path` when `plugin` is neither a plugin name ([A-Za-z0-9_.-],
 * up to 63 characters) nor a file name ending in .so. */
void config_check_plugin_name(loader *L, const char *path, const char *plugin);

/* Copies the `params` mapping of the mapping at field path `owner` (a
 * stage, or a stage's ab) from the libyaml tree: keys and scalar values as
 * text, with positions, into a new array *params[0..*n) that the caller
 * then owns (its strings too). Errors name `owner`.params.KEY. Returns
 * true when the mapping is there (a null value counts as left out). */
bool config_read_params(loader *L, const char *owner, cfg_param **params, size_t *n);

/* --------------------------------------------- the load phases (config_load.c) */

/* One phase as libcyaml loads it: every scalar as text, enums as values
 * (0 when not given). */
typedef struct y_phase {
    int shape;
    char *rate, *duration;
    int arrival, distribution; /* 0 when not given */
    char *from, *to;
    char **steps;
    unsigned n_steps;
    char *step, *period, *amplitude;
    char *burst_rate, *burst_factor, *burst, *gap, *alpha;
    char *file;
} y_phase;

/* The schema of one entry of `load:`. */
extern const cyaml_schema_value_t config_phase_entry;

/* Checks the `load:` phases y[0..n) (n == 0: none given) and fills
 * cfg->load and cfg->n_load, which cfg then owns (config_free). Errors and
 * allocation failures go to L. */
void config_convert_load(loader *L, const y_phase *y, unsigned n, obs_config *cfg);

/* ------------------------------------------ a stage's ab: (config_ab.c) */

/* A stage's `ab:` mapping as libcyaml loads it (`params` comes from the
 * libyaml tree). */
typedef struct y_ab {
    char *plugin, *version, *aa;
    int mode; /* cfg_ab_mode, 0 when not given */
    char *duration, *looks, *block, *threshold, *seed;
} y_ab;

/* The keys of `ab:`. */
extern const cyaml_schema_field_t config_ab_fields[];

/* Checks stages[i].ab (given as `ya`) and fills cfg->stages[i].ab, which
 * the stage then owns (config_free). cfg->stages[0..i) are converted
 * already (a second interleaved experiment is refused) and cfg->n_stages
 * is set. Errors and allocation failures go to L. */
void config_convert_ab(loader *L, size_t i, const y_ab *ya, obs_config *cfg);

#endif /* OBS_CONFIG_INTERNAL_H */
