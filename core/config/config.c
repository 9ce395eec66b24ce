/*
 * config.c - loading and validating pipeline.yaml.
 *
 * The text goes through three passes. libyaml's document API comes first: it
 * reports syntax errors at their exact position and builds a tree in which
 * every node keeps its mark, so that every later message can point at the
 * offending key or value. libcyaml comes second, against the static schema
 * below: it rejects unknown keys, missing keys and values of the wrong shape.
 * It reports errors only through its log callback (a message, then a
 * backtrace with one line per level); we capture that, turn the backtrace
 * into a field path such as stages[1].plugin, look the path up in the libyaml
 * tree for the position, and add what the schema allows. Every scalar of the
 * typed part is loaded as a string, because libcyaml 1.3.1 accepts "12a" as
 * an integer: the third pass converts and range-checks the values itself and
 * reports as many independent errors as it finds.
 *
 * A stage's `params` mapping belongs to its plugin, so the schema ignores it;
 * it is copied from the libyaml tree with positions, and config_check_params()
 * (config_params.c) validates it once the plugin's descriptor is known. The
 * `load:` phases (config_load.c) and a stage's `ab:` experiment
 * (config_ab.c) have files of their own: their schema and their conversion.
 * The error accumulator, the strict number parsers and the loader's helpers
 * below serve all of these files; config_internal.h declares them.
 */
#include "config.h"
#include "config_internal.h"

#include <arpa/inet.h>
#include <cyaml/cyaml.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_ERRORS 20
#define MAX_FILE_BYTES (16u << 20)

/* ---------------------------------------------------------------- messages */

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
static void err_vat(errbuf *e, int line, int col, const char *path, const char *fmt, va_list ap)
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
    err_vat(e, line, col, path, fmt, ap);
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

/* ------------------------------------------------------- the libyaml tree */

static void node_pos(const yaml_node_t *n, int *line, int *col)
{
    *line = n ? (int)n->start_mark.line + 1 : 0;
    *col = n ? (int)n->start_mark.column + 1 : 0;
}

static bool scalar_is(const yaml_node_t *n, const char *s, size_t len)
{
    return n && n->type == YAML_SCALAR_NODE && n->data.scalar.length == len &&
           memcmp(n->data.scalar.value, s, len) == 0;
}

/* The value of the nth (0-based) occurrence of `key` in mapping `map`, or
 * NULL; *key_node (if given) receives its key. Pointers stay valid as long
 * as the document. */
static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *map, const char *key, size_t len,
                            int nth, yaml_node_t **key_node)
{
    if (key_node)
        *key_node = NULL;
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (scalar_is(k, key, len) && nth-- == 0) {
            if (key_node)
                *key_node = k;
            return yaml_document_get_node(d, p->value);
        }
    }
    return NULL;
}

/* Resolves a field path ("stages[1].params") from the root; NULL when the
 * path does not exist. *key_node (if given) receives the last key. */
static yaml_node_t *node_at(yaml_document_t *d, const char *path, yaml_node_t **key_node)
{
    yaml_node_t *n = yaml_document_get_root_node(d);
    if (key_node)
        *key_node = NULL;
    while (n && *path) {
        if (*path == '[') {
            char *end;
            unsigned long i = strtoul(path + 1, &end, 10);
            if (*end != ']' || n->type != YAML_SEQUENCE_NODE ||
                i >= (unsigned long)(n->data.sequence.items.top - n->data.sequence.items.start))
                return NULL;
            n = yaml_document_get_node(d, n->data.sequence.items.start[i]);
            if (key_node)
                *key_node = NULL;
            path = end + 1;
        } else {
            if (*path == '.')
                path++;
            size_t len = strcspn(path, ".[");
            n = map_get(d, n, path, len, 0, key_node);
            path += len;
        }
    }
    return n;
}

static const char *node_kind(const yaml_node_t *n)
{
    if (!n)
        return "nothing";
    return n->type == YAML_MAPPING_NODE    ? "a mapping"
           : n->type == YAML_SEQUENCE_NODE ? "a sequence"
                                           : "a scalar";
}

/* --------------------------------------------------------- typed schema */

/* What libcyaml loads: the typed part of the file, every scalar as text. */
typedef struct y_stage {
    char *name, *plugin, *version;
    y_ab *ab;
} y_stage;

typedef struct y_run {
    char *duration, *warmup, *seed, *realtime_priority;
} y_run;

typedef struct y_http {
    char *listen;
} y_http;

typedef struct y_store {
    char *path;
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

#define OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)

static const cyaml_schema_field_t stage_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, y_stage, name, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("plugin", CYAML_FLAG_POINTER, y_stage, plugin, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("version", OPT, y_stage, version, 0, CYAML_UNLIMITED),
    CYAML_FIELD_IGNORE("params", CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_MAPPING_PTR("ab", OPT, y_stage, ab, config_ab_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t run_fields[] = {
    CYAML_FIELD_STRING_PTR("duration", OPT, y_run, duration, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("warmup", OPT, y_run, warmup, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("seed", OPT, y_run, seed, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("realtime_priority", OPT, y_run, realtime_priority, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t http_fields[] = {
    CYAML_FIELD_STRING_PTR("listen", OPT, y_http, listen, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t store_fields[] = {
    CYAML_FIELD_STRING_PTR("path", OPT, y_store, path, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t string_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};
static const cyaml_schema_value_t stage_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, y_stage, stage_fields),
};

static const cyaml_schema_field_t top_fields[] = {
    CYAML_FIELD_STRING_PTR("pipeline", CYAML_FLAG_POINTER, y_top, pipeline, 0, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE_COUNT("plugin_dirs", OPT, y_top, plugin_dirs, n_plugin_dirs, &string_entry,
                               0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("batch_size", OPT, y_top, batch_size, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("ring_capacity", OPT, y_top, ring_capacity, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("max_batch_bytes", OPT, y_top, max_batch_bytes, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("max_batch_delay", OPT, y_top, max_batch_delay, 0, CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING("run", CYAML_FLAG_OPTIONAL, y_top, run, run_fields),
    CYAML_FIELD_MAPPING("http", CYAML_FLAG_OPTIONAL, y_top, http, http_fields),
    CYAML_FIELD_MAPPING("store", CYAML_FLAG_OPTIONAL, y_top, store, store_fields),
    CYAML_FIELD_SEQUENCE_COUNT("load", OPT, y_top, load, n_load, &config_phase_entry, 0,
                               CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE_COUNT("stages", CYAML_FLAG_POINTER, y_top, stages, n_stages, &stage_entry,
                               0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t top_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, y_top, top_fields),
};

/* The schema value at a field path, or NULL. */
static const cyaml_schema_value_t *schema_at(const char *path)
{
    const cyaml_schema_value_t *v = &top_schema;
    while (v && *path) {
        if (*path == '[') {
            if (v->type != CYAML_SEQUENCE)
                return NULL;
            v = v->sequence.entry;
            path += strcspn(path, "]");
            if (*path)
                path++;
            continue;
        }
        if (*path == '.')
            path++;
        size_t len = strcspn(path, ".[");
        const cyaml_schema_field_t *f = v->type == CYAML_MAPPING ? v->mapping.fields : NULL;
        while (f && f->key && !(strlen(f->key) == len && memcmp(f->key, path, len) == 0))
            f++;
        v = f && f->key ? &f->value : NULL;
        path += len;
    }
    return v;
}

/* Writes the keys a mapping allows (or an enum's values) to `e`, and the
 * closest one to `word` if any is close. */
static void put_allowed(errbuf *e, const cyaml_schema_value_t *v, const char *word)
{
    const char *names[32];
    size_t n = 0;
    if (v && v->type == CYAML_MAPPING)
        for (const cyaml_schema_field_t *f = v->mapping.fields; f->key && n < 32; f++)
            names[n++] = f->key;
    else if (v && v->type == CYAML_ENUM)
        for (uint32_t i = 0; i < v->enumeration.count && n < 32; i++)
            names[n++] = v->enumeration.strings[i].str;
    if (!n)
        return;
    config_err_put(e, "; allowed: ");
    for (size_t i = 0; i < n; i++)
        config_err_put(e, "%s%s", i ? ", " : "", names[i]);
    if (word)
        config_put_suggestion(e, word, names, n);
}

/* ------------------------------------------- libcyaml's log, as an error */

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

static void cy_log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    cy_log *lg = ctx;
    char line[600];
    (void)level;
    vsnprintf(line, sizeof line, fmt, args);
    const char *s = strncmp(line, "Load: ", 6) == 0 ? line + 6 : line;
    if (strncmp(s, "Backtrace:", 10) == 0) {
        lg->in_backtrace = true;
        return;
    }
    if (!lg->in_backtrace) {
        if (!lg->have_msg) {
            size_t n = strcspn(s, "\n");
            n = n < sizeof lg->msg ? n : sizeof lg->msg - 1;
            memcpy(lg->msg, s, n);
            lg->msg[n] = '\0';
            lg->have_msg = true;
        }
        return;
    }
    if (lg->n_fr == sizeof lg->fr / sizeof lg->fr[0])
        return;
    cy_frame *f = &lg->fr[lg->n_fr];
    memset(f, 0, sizeof *f);
    if (sscanf(s, "  in mapping field '%63[^']' (line: %d, column: %d)", f->name, &f->line,
               &f->col) >= 1 ||
        sscanf(s, "  in mapping field: %63s", f->name) == 1)
        f->kind = 'f';
    else if (sscanf(s, "  in sequence entry '%u' (line: %d, column: %d)", &f->entry, &f->line,
                    &f->col) >= 1 ||
             sscanf(s, "  in sequence entry: %u", &f->entry) == 1)
        f->kind = 'e';
    else if (sscanf(s, "  in mapping (line: %d, column: %d)", &f->line, &f->col) >= 1)
        f->kind = 'm';
    else
        return;
    lg->n_fr++;
}

static const char *cy_type_name(const char *t)
{
    static const struct {
        const char *cyaml, *text;
    } map[] = {
        {"STRING", "a string"},         {"SEQUENCE", "a sequence"},
        {"MAPPING", "a mapping"},       {"ENUM", "a string"},
        {"SCALAR", "a scalar"},         {"SEQUENCE_START", "a sequence"},
        {"MAPPING_START", "a mapping"}, {"ALIAS", "an alias"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(t, map[i].cyaml) == 0)
            return map[i].text;
    return t;
}

static bool starts(const char *s, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) != 0)
        return false;
    *rest = s + n;
    return true;
}

/* Turns libcyaml's captured message and backtrace into one error line. */
static void report_cyaml(errbuf *e, yaml_document_t *doc, const cy_log *lg, cyaml_err_t rc)
{
    const char *msg = lg->msg, *arg = "";
    unsigned drop = 0;
    if (!lg->have_msg) {
        config_err_at(e, 0, 0, NULL, "cannot load: %s", cyaml_strerror(rc));
        return;
    }
    /* For these the innermost frame is the mapping's last field, not the
     * place of the error: the error belongs to the mapping itself. */
    bool unknown = starts(msg, "Unexpected key: ", &arg);
    bool missing = !unknown && starts(msg, "Missing required mapping field: ", &arg);
    bool dup = !unknown && !missing && starts(msg, "Mapping field already seen: ", &arg);
    if ((unknown || missing || dup) && lg->n_fr && lg->fr[0].kind == 'f')
        drop = 1;

    char path[256] = "";
    size_t plen = 0;
    int line = 0, col = 0;
    for (unsigned i = lg->n_fr; i-- > drop;) {
        const cy_frame *f = &lg->fr[i];
        int w = 0;
        if (f->kind == 'f')
            w = snprintf(path + plen, sizeof path - plen, "%s%s", plen ? "." : "", f->name);
        else if (f->kind == 'e')
            w = snprintf(path + plen, sizeof path - plen, "[%u]", f->entry ? f->entry - 1 : 0);
        if (w > 0 && plen + (size_t)w < sizeof path)
            plen += (size_t)w;
        if (f->line > 0) {
            line = f->line;
            col = f->col;
        }
    }

    yaml_node_t *key = NULL, *node = node_at(doc, path, NULL);
    char full[320];
    snprintf(full, sizeof full, "%.255s%s%.63s", path, *path ? "." : "", arg);
    if (unknown || dup) {
        node = map_get(doc, node, arg, strlen(arg), dup ? 1 : 0, &key);
        node = key ? key : node;
    }
    if (node)
        node_pos(node, &line, &col);

    const char *got;
    char want[32];
    if (unknown) {
        config_err_at(e, line, col, full, "unknown key '%s'", arg);
        put_allowed(e, schema_at(path), arg);
    } else if (missing) {
        config_err_at(e, line, col, path, "missing required key '%s'", arg);
    } else if (dup) {
        config_err_at(e, line, col, full, "duplicate key '%s'", arg);
    } else if (sscanf(msg, "Expecting %31s", want) == 1 && (got = strstr(msg, "got event: "))) {
        want[strcspn(want, ",")] = '\0';
        config_err_at(e, line, col, path, "expected %s, got %s", cy_type_name(want),
                      cy_type_name(got + 11));
    } else if (starts(msg, "Invalid ENUM value: ", &arg)) {
        config_err_at(e, line, col, path, "unknown value '%s'", arg);
        put_allowed(e, schema_at(path), arg);
    } else {
        config_err_at(e, line, col, path, "%s", msg);
    }
}

/* ------------------------------------------------------------- scalars */

/* Strict unsigned decimal: digits only, no sign, no spaces, no overflow. */
int config_parse_u64(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    if (!*s)
        return OBS_EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || x > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return OBS_EINVAL;
        x = x * 10 + (uint64_t)(*s - '0');
    }
    *v = x;
    return 0;
}

/* Strict finite double: [+-]digits[.digits][e[+-]digits], no inf/nan/hex. */
int config_parse_double(const char *s, double *v)
{
    char *end;
    if (!*s || strspn(s, "0123456789+-.eE") != strlen(s))
        return OBS_EINVAL;
    errno = 0;
    double x = strtod(s, &end);
    if (*end || !isfinite(x))
        return OBS_EINVAL;
    *v = x;
    return 0;
}

/* Bytes, with an optional B, KiB, MiB or GiB suffix. */
static int parse_size(const char *s, uint64_t *v)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } units[] = {{"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}};
    char digits[24];
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n >= sizeof digits)
        return OBS_EINVAL;
    memcpy(digits, s, n);
    digits[n] = '\0';
    const char *suffix = s + n + strspn(s + n, " ");
    uint64_t x;
    if (config_parse_u64(digits, &x) != 0)
        return OBS_EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(suffix, units[i].suffix) == 0) {
            if (x > UINT64_MAX >> units[i].shift)
                return OBS_EINVAL;
            *v = x << units[i].shift;
            return 0;
        }
    return OBS_EINVAL;
}

int config_parse_duration(const char *s, uint64_t *ns)
{
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {{"ns", 1},         {"us", 1000},     {"\xc2\xb5s", 1000}, {"ms", 1000000},
                 {"s", 1000000000}, {"", 1000000000}, {"m", 60000000000},  {"h", 3600000000000}};
    uint64_t whole = 0, frac = 0, frac_div = 1;
    if (!s || !ns || *s < '0' || *s > '9')
        return OBS_EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (whole > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return OBS_EINVAL;
        whole = whole * 10 + (uint64_t)(*s - '0');
    }
    if (*s == '.') {
        if (*++s < '0' || *s > '9')
            return OBS_EINVAL;
        /* Digits past the 18th are below a nanosecond of any unit. */
        for (; *s >= '0' && *s <= '9'; s++)
            if (frac_div < 1000000000000000000u) {
                frac = frac * 10 + (uint64_t)(*s - '0');
                frac_div *= 10;
            }
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(s, units[i].unit) != 0)
            continue;
        unsigned __int128 total = (unsigned __int128)whole * units[i].ns +
                                  (unsigned __int128)frac * units[i].ns / frac_div;
        if (total > UINT64_MAX)
            return OBS_EINVAL;
        *ns = (uint64_t)total;
        return 0;
    }
    return OBS_EINVAL;
}

/* Pipeline names allow [A-Za-z0-9_.-], stage names [a-z0-9_-]; 1..63 bytes. */
static bool name_ok(const char *s, bool pipeline)
{
    const char *allowed = pipeline
                              ? "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
                              : "abcdefghijklmnopqrstuvwxyz0123456789_-";
    size_t n = strlen(s);
    return n >= 1 && n <= 63 && strspn(s, allowed) == n;
}

static bool hostname_ok(const char *h)
{
    size_t n = strlen(h), label = 0;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i <= n; i++) {
        char c = h[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || h[i - 1] == '-' || h[i - label] == '-')
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-') {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

/* Checks "host:port" or "[ipv6]:port"; NULL if fine, else what is wrong. */
static const char *listen_problem(const char *s)
{
    char host[256];
    const char *port;
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        unsigned char addr[16];
        if (!rb || rb[1] != ':')
            return "expected [ipv6]:port";
        if ((size_t)(rb - s - 1) >= sizeof host)
            return "invalid IPv6 address";
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = '\0';
        if (inet_pton(AF_INET6, host, addr) != 1)
            return "invalid IPv6 address";
        port = rb + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon)
            return "expected host:port or [ipv6]:port";
        if (colon == s || (size_t)(colon - s) >= sizeof host)
            return "missing host";
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        if (strchr(host, ':'))
            return "an IPv6 address must be written in brackets: [addr]:port";
        unsigned char addr[4];
        if (strspn(host, "0123456789.") == strlen(host)) {
            if (inet_pton(AF_INET, host, addr) != 1)
                return "invalid IPv4 address";
        } else if (!hostname_ok(host)) {
            return "invalid host name";
        }
        port = colon + 1;
    }
    uint64_t p;
    if (strlen(port) > 5 || config_parse_u64(port, &p) != 0 || p > 65535)
        return "port must be a number 0..65535";
    return NULL;
}

/* ---------------------------------------------------------- the loader */

yaml_node_t *config_node_at(loader *L, const char *path)
{
    return node_at(&L->doc, path, NULL);
}

void config_vlerr(loader *L, const char *path, const char *fmt, va_list ap)
{
    int line, col;
    node_pos(node_at(&L->doc, path, NULL), &line, &col);
    err_vat(&L->err, line, col, path, fmt, ap);
}

void config_lerr(loader *L, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    config_vlerr(L, path, fmt, ap);
    va_end(ap);
}

static char *dup_str(loader *L, const char *s)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        L->oom = true;
    return d;
}

static void report_syntax(loader *L, const yaml_parser_t *p, const char *text)
{
    int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
    if (p->error == YAML_MEMORY_ERROR) {
        L->oom = true;
        return;
    }
    if (p->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset, not a mark. */
        line = 1;
        col = 1;
        for (size_t i = 0; i < p->problem_offset && text[i]; i++, col++)
            if (text[i] == '\n') {
                line++;
                col = 0;
            }
    }
    config_err_at(&L->err, line, col, NULL, "syntax error: %s",
                  p->problem ? p->problem : "invalid YAML");
    if (p->context)
        config_err_put(&L->err, " (%s at line %d, column %d)", p->context,
                       (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
}

/* Reports mapping keys that are not scalars ({[a]: 1}), anywhere in the
 * tree: libcyaml rejects them without saying where. */
static void check_keys(loader *L)
{
    for (yaml_node_t *n = L->doc.nodes.start; n < L->doc.nodes.top; n++) {
        if (n->type != YAML_MAPPING_NODE)
            continue;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(&L->doc, p->key);
            int line, col;
            if (k && k->type == YAML_SCALAR_NODE)
                continue;
            node_pos(k, &line, &col);
            config_err_at(&L->err, line, col, NULL, "mapping keys must be scalars, got %s",
                          node_kind(k));
        }
    }
}

/* Finds the first alias (*name) in the text, which libyaml's document API
 * resolves away and libcyaml reports without a position. */
static void first_alias(const char *text, size_t len, int *line, int *col)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    *line = *col = 0;
    if (!yaml_parser_initialize(&parser))
        return;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (yaml_parser_parse(&parser, &ev)) {
        yaml_event_type_t type = ev.type;
        if (type == YAML_ALIAS_EVENT) {
            *line = (int)ev.start_mark.line + 1;
            *col = (int)ev.start_mark.column + 1;
        }
        yaml_event_delete(&ev);
        if (type == YAML_ALIAS_EVENT || type == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&parser);
}

/* Parses the whole text with libyaml into L->doc: syntax errors, an empty
 * file and a second document are reported here. */
static int load_tree(loader *L, const char *text, size_t len)
{
    yaml_parser_t parser;
    yaml_document_t extra;
    int rc = OBS_ECONFIG;
    if (!yaml_parser_initialize(&parser)) {
        L->oom = true;
        return OBS_ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &L->doc)) {
        report_syntax(L, &parser, text);
        goto out;
    }
    if (!yaml_document_get_root_node(&L->doc)) {
        config_err_at(
            &L->err, 1, 1, NULL,
            "empty configuration: expected a mapping with at least 'pipeline' and 'stages'");
        goto fail_doc;
    }
    if (!yaml_parser_load(&parser, &extra)) {
        report_syntax(L, &parser, text);
        goto fail_doc;
    }
    yaml_node_t *root = yaml_document_get_root_node(&extra);
    if (root)
        config_err_at(&L->err, (int)extra.start_mark.line + 1, (int)extra.start_mark.column + 1,
                      NULL, "only one YAML document is allowed in a configuration");
    yaml_document_delete(&extra);
    if (root)
        goto fail_doc;
    rc = 0;
    goto out;
fail_doc:
    yaml_document_delete(&L->doc);
out:
    yaml_parser_delete(&parser);
    return L->oom ? OBS_ENOMEM : rc;
}

static int scalar_text(loader *L, const yaml_node_t *n, const char *path, char **out)
{
    if (memchr(n->data.scalar.value, '\0', n->data.scalar.length)) {
        int line, col;
        node_pos(n, &line, &col);
        config_err_at(&L->err, line, col, path, "contains a NUL character");
        return OBS_ECONFIG;
    }
    *out = strndup((const char *)n->data.scalar.value, n->data.scalar.length);
    if (!*out)
        L->oom = true;
    return *out ? 0 : OBS_ENOMEM;
}

static bool is_null_scalar(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (n->data.scalar.length == 0 || scalar_is(n, "~", 1) || scalar_is(n, "null", 4));
}

bool config_read_params(loader *L, const char *owner, cfg_param **params, size_t *n_params)
{
    char path[96], ppath[320];
    yaml_node_t *sn = node_at(&L->doc, owner, NULL), *key;
    yaml_node_t *pn = map_get(&L->doc, sn, "params", 6, 0, NULL);
    snprintf(path, sizeof path, "%s.params", owner);
    if (map_get(&L->doc, sn, "params", 6, 1, &key)) {
        int line, col;
        node_pos(key, &line, &col);
        config_err_at(&L->err, line, col, path, "duplicate key 'params'");
    }
    if (!pn || is_null_scalar(pn))
        return false;
    if (pn->type != YAML_MAPPING_NODE) {
        config_lerr(L, path, "expected a mapping of plugin parameters, got %s", node_kind(pn));
        return true;
    }
    size_t n = (size_t)(pn->data.mapping.pairs.top - pn->data.mapping.pairs.start);
    cfg_param *ps = *params = n ? calloc(n, sizeof **params) : NULL;
    if (n && !ps) {
        L->oom = true;
        return true;
    }
    for (yaml_node_pair_t *p = pn->data.mapping.pairs.start; p < pn->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&L->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&L->doc, p->value);
        int kl, kc, vl, vc;
        node_pos(k, &kl, &kc);
        node_pos(v, &vl, &vc);
        if (!k || k->type != YAML_SCALAR_NODE)
            continue; /* reported by check_keys() */
        cfg_param *cp = &ps[*n_params];
        if (scalar_text(L, k, path, &cp->key) != 0)
            continue;
        snprintf(ppath, sizeof ppath, "%s.%s", path, cp->key);
        for (size_t j = 0; j < *n_params; j++)
            if (strcmp(ps[j].key, cp->key) == 0) {
                config_err_at(&L->err, kl, kc, ppath,
                              "duplicate parameter '%s' (first set at line %d, column %d)", cp->key,
                              ps[j].key_line, ps[j].key_column);
                goto skip;
            }
        if (!v || v->type != YAML_SCALAR_NODE) {
            config_err_at(&L->err, vl, vc, ppath, "expected a scalar value, got %s", node_kind(v));
            goto skip;
        }
        if (scalar_text(L, v, ppath, &cp->value) != 0)
            goto skip;
        cp->line = vl;
        cp->column = vc;
        cp->key_line = kl;
        cp->key_column = kc;
        (*n_params)++;
        continue;
    skip:
        free(cp->key);
        cp->key = NULL;
    }
    return true;
}

void config_check_u32(loader *L, const char *path, const char *text, uint32_t *out, uint32_t lo,
                      uint32_t hi)
{
    uint64_t v;
    if (!text)
        return;
    if (config_parse_u64(text, &v) != 0)
        config_lerr(L, path, "expected an unsigned integer, got '%s'", text);
    else if (v < lo || v > hi)
        config_lerr(L, path, "value %s is out of range [%u, %u]", text, lo, hi);
    else
        *out = (uint32_t)v;
}

void config_check_duration(loader *L, const char *path, const char *text, uint64_t *out)
{
    if (text && config_parse_duration(text, out) != 0)
        config_lerr(L, path,
                    "invalid duration '%s': expected a number with a unit ns, us, ms, s, m or h "
                    "(e.g. 250ms, 30s, 2m); a bare number means seconds",
                    text);
}

/* Copies stage i's position and params from the libyaml tree. */
static void load_params(loader *L, size_t i, cfg_stage *st)
{
    char path[64];
    snprintf(path, sizeof path, "stages[%zu]", i);
    node_pos(node_at(&L->doc, path, NULL), &st->line, &st->column);
    config_read_params(L, path, &st->params, &st->n_params);
}

void config_check_plugin_name(loader *L, const char *path, const char *plugin)
{
    size_t pl = strlen(plugin);
    bool is_file = pl > 3 && strcmp(plugin + pl - 3, ".so") == 0;
    if (!is_file && (pl == 0 || pl > 63 ||
                     strspn(plugin, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789_.-") != pl))
        config_lerr(L, path,
                    "invalid plugin '%s': expected a plugin name ([A-Za-z0-9_.-], up to 63 "
                    "characters) or a file name ending in .so",
                    plugin);
}

static void convert_stages(loader *L, const y_top *y, obs_config *cfg)
{
    char path[64];
    if (y->n_stages < 2)
        config_lerr(L, "stages",
                    "a pipeline needs at least 2 stages (a generator and a sink), got %u",
                    y->n_stages);
    if (!y->n_stages)
        return;
    cfg->stages = calloc(y->n_stages, sizeof *cfg->stages);
    if (!cfg->stages) {
        L->oom = true;
        return;
    }
    cfg->n_stages = y->n_stages;
    for (size_t i = 0; i < y->n_stages; i++) {
        const y_stage *ys = &y->stages[i];
        cfg_stage *st = &cfg->stages[i];
        snprintf(path, sizeof path, "stages[%zu].name", i);
        if (!name_ok(ys->name, false))
            config_lerr(L, path, "invalid stage name '%s': use 1 to 63 characters from [a-z0-9_-]",
                        ys->name);
        for (size_t j = 0; j < i; j++)
            if (strcmp(y->stages[j].name, ys->name) == 0) {
                config_lerr(L, path,
                            "duplicate stage name '%s' (also the name of stages[%zu], line %d)",
                            ys->name, j, cfg->stages[j].line);
                break;
            }
        snprintf(path, sizeof path, "stages[%zu].plugin", i);
        config_check_plugin_name(L, path, ys->plugin);
        snprintf(path, sizeof path, "stages[%zu].version", i);
        if (ys->version && !*ys->version)
            config_lerr(L, path, "version must not be empty (leave it out to accept any)");
        st->name = dup_str(L, ys->name);
        st->plugin = dup_str(L, ys->plugin);
        st->version = dup_str(L, ys->version);
        load_params(L, i, st);
        if (ys->ab)
            config_convert_ab(L, i, ys->ab, cfg);
    }
}

/* Checks the typed values and copies them into cfg. */
static void convert(loader *L, const y_top *y, obs_config *cfg)
{
    char path[64];
    cfg->batch_size = 256;
    cfg->ring_capacity = 16;
    cfg->max_batch_bytes = 64u << 20;
    cfg->max_batch_delay_ns = 200000;
    cfg->seed = 1;

    if (!name_ok(y->pipeline, true))
        config_lerr(L, "pipeline",
                    "invalid pipeline name '%s': use 1 to 63 characters from [A-Za-z0-9_.-]",
                    y->pipeline);
    cfg->pipeline = dup_str(L, y->pipeline);

    if (y->n_plugin_dirs) {
        cfg->plugin_dirs = calloc(y->n_plugin_dirs, sizeof *cfg->plugin_dirs);
        if (!cfg->plugin_dirs)
            L->oom = true;
        for (size_t i = 0; cfg->plugin_dirs && i < y->n_plugin_dirs; i++) {
            snprintf(path, sizeof path, "plugin_dirs[%zu]", i);
            if (!*y->plugin_dirs[i])
                config_lerr(L, path, "a plugin directory must not be empty");
            cfg->plugin_dirs[cfg->n_plugin_dirs++] = dup_str(L, y->plugin_dirs[i]);
        }
    }

    config_check_u32(L, "batch_size", y->batch_size, &cfg->batch_size, 1, 65536);
    config_check_u32(L, "ring_capacity", y->ring_capacity, &cfg->ring_capacity, 2, 4096);
    if (cfg->ring_capacity & (cfg->ring_capacity - 1))
        config_lerr(L, "ring_capacity", "value %s is not a power of two (2, 4, 8, ... 4096)",
                    y->ring_capacity);
    if (y->max_batch_bytes) {
        uint64_t v;
        if (parse_size(y->max_batch_bytes, &v) != 0)
            config_lerr(
                L, "max_batch_bytes",
                "expected a size in bytes with an optional KiB, MiB or GiB suffix, got '%s'",
                y->max_batch_bytes);
        else if (v < 4096 || v > (1u << 30))
            config_lerr(L, "max_batch_bytes", "value %s is out of range [4KiB, 1GiB]",
                        y->max_batch_bytes);
        else
            cfg->max_batch_bytes = v;
    }

    if (y->max_batch_delay) {
        uint64_t v = 0;
        if (config_parse_duration(y->max_batch_delay, &v) != 0)
            config_check_duration(L, "max_batch_delay", y->max_batch_delay, &v);
        else if (v > 1000000000u)
            config_lerr(L, "max_batch_delay", "value %s is out of range [0s, 1s]",
                        y->max_batch_delay);
        else
            cfg->max_batch_delay_ns = v;
    }
    config_check_duration(L, "run.duration", y->run.duration, &cfg->duration_ns);
    config_check_duration(L, "run.warmup", y->run.warmup, &cfg->warmup_ns);
    if (cfg->duration_ns && cfg->warmup_ns >= cfg->duration_ns)
        config_lerr(L, "run.warmup", "warmup %s must be shorter than the run duration %s",
                    y->run.warmup, y->run.duration);
    config_check_u32(L, "run.realtime_priority", y->run.realtime_priority, &cfg->realtime_priority,
                     0, 99);
    if (y->run.seed && config_parse_u64(y->run.seed, &cfg->seed) != 0)
        config_lerr(L, "run.seed", "expected an unsigned 64-bit integer, got '%s'", y->run.seed);

    const char *why;
    if (y->http.listen && (why = listen_problem(y->http.listen)))
        config_lerr(L, "http.listen", "invalid listen address '%s': %s", y->http.listen, why);
    cfg->http_listen = dup_str(L, y->http.listen ? y->http.listen : "127.0.0.1:9464");
    if (y->store.path && !*y->store.path)
        config_lerr(L, "store.path", "the store path must not be empty");
    cfg->store_path = dup_str(L, y->store.path ? y->store.path : "observatory-data");

    config_convert_load(L, y->load, y->n_load, cfg);
    convert_stages(L, y, cfg);
}

/* Loads `len` bytes of `text` (NUL-terminated) into a new config. */
static int load_text(const char *name, const char *text, size_t len, obs_config **out, char *err,
                     size_t errlen)
{
    loader L = {0};
    cy_log lg = {0};
    y_top *y = NULL;
    int rc = OBS_ENOMEM;
    const cyaml_config_t cy = {
        .log_fn = cy_log_fn,
        .log_ctx = &lg,
        .mem_fn = cyaml_mem,
        .log_level = CYAML_LOG_ERROR,
        /* Aliases would let a small file expand into a huge one. */
        .flags = CYAML_CFG_NO_ALIAS,
    };

    obs_config *cfg = L.cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        goto fail;
    cfg->path = strdup(name);
    cfg->text = malloc(len + 1);
    if (!cfg->path || !cfg->text)
        goto fail;
    memcpy(cfg->text, text, len);
    cfg->text[len] = '\0';
    const char *slash = strrchr(name, '/');
    cfg->dir = slash ? strndup(name, slash == name ? 1 : (size_t)(slash - name)) : strdup(".");
    if (!cfg->dir)
        goto fail;
    config_err_init(&L.err, err, errlen, cfg->path);

    rc = load_tree(&L, cfg->text, len);
    if (rc != 0)
        goto fail;
    check_keys(&L);
    if (L.err.n) {
        yaml_document_delete(&L.doc);
        rc = OBS_ECONFIG;
        goto fail;
    }
    cyaml_err_t cerr = cyaml_load_data((const uint8_t *)cfg->text, len, &cy, &top_schema,
                                       (cyaml_data_t **)&y, NULL);
    if (cerr == CYAML_ERR_OOM) {
        L.oom = true;
    } else if (cerr == CYAML_ERR_ALIAS) {
        int line, col;
        first_alias(cfg->text, len, &line, &col);
        config_err_at(&L.err, line, col, NULL,
                      "aliases (*name) are not supported: write the value out");
    } else if (cerr != CYAML_OK) {
        report_cyaml(&L.err, &L.doc, &lg, cerr);
    } else if (!y) {
        config_err_at(&L.err, 1, 1, NULL, "missing required key 'pipeline'");
    } else {
        convert(&L, y, cfg);
    }
    if (y)
        cyaml_free(&cy, &top_schema, y, 0);
    yaml_document_delete(&L.doc);
    rc = L.oom ? OBS_ENOMEM : L.err.n ? OBS_ECONFIG : 0;
    if (rc != 0)
        goto fail;
    *out = cfg;
    return 0;

fail:
    if (rc == OBS_ENOMEM) {
        config_err_init(&L.err, err, errlen, name);
        config_err_at(&L.err, 0, 0, NULL, "out of memory while loading the configuration");
    }
    config_err_finish(&L.err);
    config_free(cfg);
    return rc;
}

int config_load_string(const char *name, const char *text, obs_config **out, char *err,
                       size_t errlen)
{
    if (out)
        *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!text || !out)
        return OBS_EINVAL;
    return load_text(name ? name : "<string>", text, strlen(text), out, err, errlen);
}

int config_load(const char *path, obs_config **out, char *err, size_t errlen)
{
    errbuf e;
    char *text = NULL;
    size_t len = 0, cap = 0;
    int rc = OBS_EIO;
    if (out)
        *out = NULL;
    if (!path || !out) {
        if (err && errlen)
            err[0] = '\0';
        return OBS_EINVAL;
    }
    config_err_init(&e, err, errlen, path);
    FILE *f = fopen(path, "rb");
    if (!f) {
        config_err_at(&e, 0, 0, NULL, "cannot read: %s", strerror(errno));
        return OBS_EIO;
    }
    for (;;) {
        if (len == cap) {
            char *t = cap < MAX_FILE_BYTES ? realloc(text, cap ? cap * 2 : 8192) : NULL;
            if (!t) {
                config_err_at(&e, 0, 0, NULL,
                              cap < MAX_FILE_BYTES ? "out of memory"
                                                   : "cannot read: larger than 16 MiB");
                rc = cap < MAX_FILE_BYTES ? OBS_ENOMEM : OBS_ECONFIG;
                goto out;
            }
            text = t;
            cap = cap ? cap * 2 : 8192;
        }
        size_t n = fread(text + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        config_err_at(&e, 0, 0, NULL, "cannot read: %s", strerror(errno));
        goto out;
    }
    if (memchr(text, '\0', len)) {
        config_err_at(&e, 0, 0, NULL,
                      "cannot read: the file contains a NUL byte (not a text file?)");
        rc = OBS_ECONFIG;
        goto out;
    }
    rc = load_text(path, text, len, out, err, errlen);
out:
    fclose(f);
    free(text);
    return rc;
}

static void params_free(cfg_param *params, size_t n)
{
    for (size_t j = 0; j < n; j++) {
        free(params[j].key);
        free(params[j].value);
    }
    free(params);
}

void config_free(obs_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_stages; i++) {
        cfg_stage *st = &cfg->stages[i];
        params_free(st->params, st->n_params);
        if (st->ab) {
            params_free(st->ab->params, st->ab->n_params);
            free(st->ab->plugin);
            free(st->ab->version);
            free(st->ab);
        }
        free(st->name);
        free(st->plugin);
        free(st->version);
    }
    for (size_t i = 0; i < cfg->n_plugin_dirs; i++)
        free(cfg->plugin_dirs[i]);
    free(cfg->plugin_dirs);
    free(cfg->stages);
    for (size_t i = 0; i < cfg->n_load; i++) {
        free(cfg->load[i].steps);
        free(cfg->load[i].replay_path);
        free(cfg->load[i].replay_ns);
    }
    free(cfg->load);
    free(cfg->pipeline);
    free(cfg->http_listen);
    free(cfg->store_path);
    free(cfg->path);
    free(cfg->text);
    free(cfg->dir);
    free(cfg);
}
