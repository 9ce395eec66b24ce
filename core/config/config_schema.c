/*
 * config_schema.c - the second pass over pipeline.yaml: the libcyaml schema
 * of its typed part, and libcyaml's errors turned into ours.
 *
 * The static schema below lists every key the file may have, with the
 * `load:` phases (config_load.c) and a stage's `ab:` (config_ab.c) plugged
 * in from their own files; against it libcyaml rejects unknown keys, missing
 * keys and values of the wrong shape. Every scalar is loaded as a string,
 * because libcyaml 1.3.1 accepts "12a" as an integer: config.c converts the
 * values itself. libcyaml reports errors only through its log callback (a
 * message, then a backtrace with one line per level). config_cy_log_fn()
 * captures that, and config_report_cyaml() turns the backtrace into a field
 * path such as stages[1].plugin, looks the path up in the libyaml tree
 * (config_tree.c) for the position, and adds what the schema allows.
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <cyaml/cyaml.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

#define OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)

static const cyaml_schema_field_t stage_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, y_stage, name, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("plugin", CYAML_FLAG_POINTER, y_stage, plugin, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("version", OPT, y_stage, version, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("parallelism", OPT, y_stage, parallelism, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("partition", OPT, y_stage, partition, 0, CYAML_UNLIMITED),
    CYAML_FIELD_IGNORE("params", CYAML_FLAG_OPTIONAL),
    CYAML_FIELD_MAPPING_PTR("ab", OPT, y_stage, ab, config_ab_fields),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t run_fields[] = {
    CYAML_FIELD_STRING_PTR("duration", OPT, y_run, duration, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("warmup", OPT, y_run, warmup, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("seed", OPT, y_run, seed, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("realtime_priority", OPT, y_run, realtime_priority, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("id", OPT, y_run, id, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("drain_timeout", OPT, y_run, drain_timeout, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("callback_warn", OPT, y_run, callback_warn, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_value_t string_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t http_fields[] = {
    CYAML_FIELD_STRING_PTR("listen", OPT, y_http, listen, 0, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE_COUNT("allowed_hosts", OPT, y_http, allowed_hosts, n_allowed_hosts,
                               &string_entry, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t retention_fields[] = {
    CYAML_FIELD_STRING_PTR("max_age", OPT, y_retention, max_age, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("max_size", OPT, y_retention, max_size, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t store_fields[] = {
    CYAML_FIELD_STRING_PTR("path", OPT, y_store, path, 0, CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING("retention", CYAML_FLAG_OPTIONAL, y_store, retention, retention_fields),
    CYAML_FIELD_END,
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

const cyaml_schema_value_t config_top_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, y_top, top_fields),
};

/* The schema value at a field path, or NULL. */
static const cyaml_schema_value_t *schema_at(const char *path)
{
    const cyaml_schema_value_t *v = &config_top_schema;
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

void config_cy_log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
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
void config_report_cyaml(errbuf *e, yaml_document_t *doc, const cy_log *lg, cyaml_err_t rc)
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

    yaml_node_t *key = NULL, *node = config_doc_node_at(doc, path, NULL);
    char full[320];
    snprintf(full, sizeof full, "%.255s%s%.63s", path, *path ? "." : "", arg);
    if (unknown || dup) {
        node = config_map_get(doc, node, arg, strlen(arg), dup ? 1 : 0, &key);
        node = key ? key : node;
    }
    if (node)
        config_node_pos(node, &line, &col);

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
