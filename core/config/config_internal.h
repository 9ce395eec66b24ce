/*
 * config_internal.h - what the files of the config module share.
 *
 * Loading pipeline.yaml (config.c) takes three passes: libyaml builds a
 * tree of the text with every node's position (config_tree.c), libcyaml
 * loads the typed part against a static schema (config_schema.c), and the
 * values are converted with strict parsers (config_scalars.c); the `load:`
 * phases (config_load.c) and a stage's `ab:` (config_ab.c) are converted by
 * files of their own. All of them, and the check of a stage's parameters
 * against its plugin's declaration (config_params.c), report errors the same
 * way (config_errors.c): "file:line:col: path: message" lines accumulated
 * into the caller's buffer, with a "did you mean" hint for misspelt names.
 * Private to the config module; each section names the file that defines
 * what it declares.
 */
#ifndef OBS_CONFIG_INTERNAL_H
#define OBS_CONFIG_INTERNAL_H

#include <cyaml/cyaml.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "config/config.h"
#include "observatory/stage.h"

/* -------------------------------------------- errors (config_errors.c) */

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
void config_err_vat(errbuf *e, int line, int col, const char *path, const char *fmt, va_list ap)
    OBS_PRINTF(5, 0);

/* Ends the report, saying how many errors were counted but not written. */
void config_err_finish(errbuf *e);

/* Appends "; did you mean 'x'?" when one of names[0..n) is close to `word`. */
void config_put_suggestion(errbuf *e, const char *word, const char *const *names, size_t n);

/* ------------------------------------ the libyaml tree (config_tree.c) */

/* One load of a configuration: the config being filled, the libyaml tree of
 * its text (for positions) and the errors so far. */
typedef struct loader {
    obs_config *cfg;
    yaml_document_t doc;
    errbuf err;
    bool oom; /* an allocation failed: the load ends in OBS_ENOMEM */
} loader;

/* The 1-based line and column where node n starts (0 and 0 for NULL). */
void config_node_pos(const yaml_node_t *n, int *line, int *col);

/* The value of the nth (0-based) occurrence of key[0..len) in mapping `map`
 * of document d, or NULL; *key_node (if given) receives its key. Pointers
 * stay valid as long as the document. */
yaml_node_t *config_map_get(yaml_document_t *d, yaml_node_t *map, const char *key, size_t len,
                            int nth, yaml_node_t **key_node);

/* The node at a field path ("stages[1].params") from the root of d, or NULL
 * when the path does not exist. *key_node (if given) receives the last key.
 * Valid as long as the document. */
yaml_node_t *config_doc_node_at(yaml_document_t *d, const char *path, yaml_node_t **key_node);

/* The node at a field path of L's document, or NULL when the path does not
 * exist. Valid as long as the document. */
yaml_node_t *config_node_at(loader *L, const char *path);

/* Reports an error at the position of the node at `path` (no position when
 * the path does not exist), naming the path. */
void config_lerr(loader *L, const char *path, const char *fmt, ...) OBS_PRINTF(3, 4);
void config_vlerr(loader *L, const char *path, const char *fmt, va_list ap) OBS_PRINTF(3, 0);

/* Parses text[0..len) (NUL-terminated) with libyaml into L->doc, which the
 * caller then deletes (yaml_document_delete). Syntax errors, an empty file
 * and a second document are reported to L. Returns 0, or OBS_ECONFIG or
 * OBS_ENOMEM with no document left to delete. */
int config_load_tree(loader *L, const char *text, size_t len);

/* Reports every mapping key in L's document that is not a scalar. */
void config_check_keys(loader *L);

/* The position of the first alias (*name) in text[0..len), or 0 and 0. */
void config_first_alias(const char *text, size_t len, int *line, int *col);

/* Copies the `params` mapping of the mapping at field path `owner` (a
 * stage, or a stage's ab) from the libyaml tree: keys and scalar values as
 * text, with positions, into a new array *params[0..*n) that the caller
 * then owns (its strings too). Errors name `owner`.params.KEY. Returns
 * true when the mapping is there (a null value counts as left out). */
bool config_read_params(loader *L, const char *owner, cfg_param **params, size_t *n);

/* --------------------------------------------- scalars (config_scalars.c) */

/* Strict unsigned decimal: digits only, no sign, no spaces, no overflow.
 * Returns 0 or OBS_EINVAL (leaving *v alone). */
int config_parse_u64(const char *s, uint64_t *v);

/* Strict finite double: [+-]digits[.digits][e[+-]digits], no inf/nan/hex.
 * Returns 0 or OBS_EINVAL (leaving *v alone). */
int config_parse_double(const char *s, double *v);

/* Bytes, with an optional B, KiB, MiB or GiB suffix. Returns 0 or
 * OBS_EINVAL (leaving *v alone). */
int config_parse_size(const char *s, uint64_t *v);

/* Pipeline names allow [A-Za-z0-9_.-], stage names [a-z0-9_-]; 1..63 bytes. */
bool config_name_ok(const char *s, bool pipeline);

/* Checks "host:port" or "[ipv6]:port": NULL if fine, else a static string
 * saying what is wrong. */
const char *config_listen_problem(const char *s);

/* Converts `text` (NULL: not given, *out untouched) into *out, or reports
 * at `path` why it is not a duration. */
void config_check_duration(loader *L, const char *path, const char *text, uint64_t *out);

/* Converts `text` (NULL: not given, *out untouched) into *out within
 * [lo, hi], or reports at `path` what is wrong. */
void config_check_u32(loader *L, const char *path, const char *text, uint32_t *out, uint32_t lo,
                      uint32_t hi);

/* Reports at `path` when `plugin` is neither a plugin name ([A-Za-z0-9_.-],
 * up to 63 characters) nor a file name ending in .so. */
void config_check_plugin_name(loader *L, const char *path, const char *plugin);

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

/* ------------------------------ the typed schema (config_schema.c) */

/* What libcyaml loads: the typed part of the file, every scalar as text. */
typedef struct y_stage {
    char *name, *plugin, *version;
    char *parallelism, *partition;
    y_ab *ab;
} y_stage;

typedef struct y_run {
    char *duration, *warmup, *seed, *realtime_priority, *id, *drain_timeout, *callback_warn;
} y_run;

typedef struct y_http {
    char *listen;
    char **allowed_hosts;
    unsigned n_allowed_hosts;
} y_http;

typedef struct y_retention {
    char *max_age, *max_size;
} y_retention;

typedef struct y_store {
    char *path;
    y_retention retention;
} y_store;

typedef struct y_top {
    char *pipeline;
    char **plugin_dirs;
    unsigned n_plugin_dirs;
    char *batch_size, *ring_capacity, *max_batch_bytes, *max_batch_delay;
    y_run run;
    y_http http;
    y_store store;
    y_phase *load;
    unsigned n_load;
    y_stage *stages;
    unsigned n_stages;
} y_top;

/* The schema of the whole file; `params` mappings are ignored by it. */
extern const cyaml_schema_value_t config_top_schema;

/* libcyaml's log of one load: its first message and the backtrace that
 * follows it, which config_cy_log_fn captures. */
typedef struct cy_frame {
    char kind; /* 'f': mapping field, 'e': sequence entry, 'm': mapping */
    char name[64];
    unsigned entry; /* 1-based, as libcyaml prints it */
    int line, col;
} cy_frame;

typedef struct cy_log {
    char msg[512];
    bool have_msg, in_backtrace;
    cy_frame fr[16]; /* innermost first */
    unsigned n_fr;
} cy_log;

/* libcyaml's log callback: ctx is the cy_log to fill. */
void config_cy_log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args);

/* Turns libcyaml's captured message and backtrace (rc is what the load
 * returned) into one error line of `e`, positioned through `doc`. */
void config_report_cyaml(errbuf *e, yaml_document_t *doc, const cy_log *lg, cyaml_err_t rc);

#endif /* OBS_CONFIG_INTERNAL_H */
