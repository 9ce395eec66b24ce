/*
 * config_tree.c - the first pass over pipeline.yaml: libyaml's tree of the
 * text, which gives every message its position.
 *
 * libyaml's document API parses the whole text before anything else looks
 * at it. It reports syntax errors at their exact position (an empty file, a
 * second document and keys that are not scalars are refused here too), and
 * it builds a tree in which every node keeps its mark. The later passes
 * never handle positions: they name a field path such as stages[1].plugin,
 * and config_lerr() looks the path up in the tree to put file:line:col in
 * front of the message. A stage's `params` mapping (and that of its `ab:`)
 * belongs to its plugin, so the schema ignores it; it is copied from the
 * tree here, keys and values as text with their positions, for
 * config_check_params() (config_params.c) to check once the plugin is known.
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

void config_node_pos(const yaml_node_t *n, int *line, int *col)
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
yaml_node_t *config_map_get(yaml_document_t *d, yaml_node_t *map, const char *key, size_t len,
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
yaml_node_t *config_doc_node_at(yaml_document_t *d, const char *path, yaml_node_t **key_node)
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
            n = config_map_get(d, n, path, len, 0, key_node);
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

yaml_node_t *config_node_at(loader *L, const char *path)
{
    return config_doc_node_at(&L->doc, path, NULL);
}

void config_vlerr(loader *L, const char *path, const char *fmt, va_list ap)
{
    int line, col;
    config_node_pos(config_doc_node_at(&L->doc, path, NULL), &line, &col);
    config_err_vat(&L->err, line, col, path, fmt, ap);
}

void config_lerr(loader *L, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    config_vlerr(L, path, fmt, ap);
    va_end(ap);
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
void config_check_keys(loader *L)
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
            config_node_pos(k, &line, &col);
            config_err_at(&L->err, line, col, NULL, "mapping keys must be scalars, got %s",
                          node_kind(k));
        }
    }
}

/* Finds the first alias (*name) in the text, which libyaml's document API
 * resolves away and libcyaml reports without a position. */
void config_first_alias(const char *text, size_t len, int *line, int *col)
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

/* The deepest nesting of sequences and mappings a pipeline file may have:
 * a real one needs about 5; 16 MiB of "[[[[" would otherwise become 16
 * million nodes of the loaded document. */
#define CONFIG_MAX_DEPTH 64

/* Streams the events of the text (memory bounded by the depth so far) and
 * refuses it, with the position, when collections nest deeper than
 * CONFIG_MAX_DEPTH. Syntax errors are left to the loader, which reports
 * them. Returns 0 when the text may be loaded. */
static int check_depth(loader *L, const char *text, size_t len)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        L->oom = true;
        return OBS_ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int depth = 0, rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev))
            break;
        yaml_event_type_t t = ev.type;
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
            if (++depth > CONFIG_MAX_DEPTH) {
                config_err_at(&L->err, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                              NULL, "collections nested deeper than %d levels", CONFIG_MAX_DEPTH);
                rc = OBS_ECONFIG;
            }
        } else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
            depth--;
        }
        yaml_event_delete(&ev);
        if (rc || t == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&parser);
    return rc;
}

/* Parses the whole text with libyaml into L->doc: too deep a nesting,
 * syntax errors, an empty file and a second document are reported here. */
int config_load_tree(loader *L, const char *text, size_t len)
{
    yaml_parser_t parser;
    yaml_document_t extra;
    int rc = check_depth(L, text, len);
    if (rc != 0)
        return rc;
    rc = OBS_ECONFIG;
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
        config_node_pos(n, &line, &col);
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
    yaml_node_t *sn = config_doc_node_at(&L->doc, owner, NULL), *key;
    yaml_node_t *pn = config_map_get(&L->doc, sn, "params", 6, 0, NULL);
    snprintf(path, sizeof path, "%s.params", owner);
    if (config_map_get(&L->doc, sn, "params", 6, 1, &key)) {
        int line, col;
        config_node_pos(key, &line, &col);
        config_err_at(&L->err, line, col, path, "duplicate key 'params'");
    }
    if (!pn || is_null_scalar(pn))
        return false;
    if (pn->type != YAML_MAPPING_NODE) {
        config_lerr(L, path, "expected a mapping of plugin parameters, got %s", node_kind(pn));
        return true;
    }
    size_t n = (size_t)(pn->data.mapping.pairs.top - pn->data.mapping.pairs.start);
    if (n > CFG_MAX_PARAMS) {
        /* Bounded before the duplicate check, which compares pairs. */
        config_lerr(L, path, "%zu parameters: a stage takes at most %d", n, CFG_MAX_PARAMS);
        return true;
    }
    cfg_param *ps = *params = n ? calloc(n, sizeof **params) : NULL;
    if (n && !ps) {
        L->oom = true;
        return true;
    }
    for (yaml_node_pair_t *p = pn->data.mapping.pairs.start; p < pn->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(&L->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&L->doc, p->value);
        int kl, kc, vl, vc;
        config_node_pos(k, &kl, &kc);
        config_node_pos(v, &vl, &vc);
        if (!k || k->type != YAML_SCALAR_NODE)
            continue; /* reported by config_check_keys() */
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
