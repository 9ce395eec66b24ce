/*
 * config_params.c - checking a stage's parameters against its plugin.
 *
 * config.c loads pipeline.yaml without knowing any plugin, so it keeps each
 * stage's `params` mapping as written: keys and scalar text, with their
 * positions. Once the host has loaded a stage's plugin, config_check_params()
 * holds those against the parameters the plugin's descriptor declares:
 * unknown keys (naming the allowed ones and the closest match), values that
 * do not parse as the declared type, values out of the declared range, and
 * required parameters left out; it also catches a plugin whose own default
 * is invalid. The result is one typed value per declared parameter, in
 * declaration order, which the host hands to the plugin's init. The
 * parameters of an experiment's variant B, given in the stage's `ab:`
 * mapping, are checked the same way against B's plugin when the experiment
 * starts (config_check_ab_params). Errors use the same "file:line:col:
 * path: message" form as the loader (config_internal.h).
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void fmt_num(char *b, size_t n, double x)
{
    if (x == floor(x) && fabs(x) < 1e15)
        snprintf(b, n, "%.0f", x == 0 ? 0.0 : x);
    else
        snprintf(b, n, "%g", x);
}

/* Parses `text` as parameter `pd` into v; on failure writes the reason. */
static const char *param_parse(const obs_param_desc *pd, const char *text, obs_param_value *v)
{
    char *end;
    switch (pd->type) {
    case OBS_PARAM_INT:
        errno = 0;
        v->i = strtoll(text, &end, 10);
        if (!(isdigit((unsigned char)text[0]) || text[0] == '-' || text[0] == '+') || *end)
            return "expected an integer";
        if (errno == ERANGE)
            return "integer out of the 64-bit range";
        v->d = (double)v->i;
        break;
    case OBS_PARAM_DOUBLE:
        if (config_parse_double(text, &v->d) != 0)
            return "expected a number";
        break;
    case OBS_PARAM_BOOL: {
        static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no",
                                                                               "off"};
        bool found = false;
        for (size_t k = 0; k < 3 && !found; k++) {
            if (strcasecmp(text, yes[k]) == 0)
                v->i = 1, found = true;
            else if (strcasecmp(text, no[k]) == 0)
                v->i = 0, found = true;
        }
        if (!found)
            return "expected a boolean (true/false, yes/no, on/off)";
        v->d = (double)v->i;
        break;
    }
    case OBS_PARAM_STRING: break;
    default: return "the plugin declares an unknown parameter type";
    }
    return NULL;
}

/* Checks value v (text as written) against pd's range; writes the error. */
static bool param_in_range(errbuf *e, int line, int col, const char *path, const obs_param_desc *pd,
                           const obs_param_value *v)
{
    char lo[40], hi[40];
    fmt_num(lo, sizeof lo, pd->min);
    fmt_num(hi, sizeof hi, pd->max);
    if ((pd->type == OBS_PARAM_INT || pd->type == OBS_PARAM_DOUBLE) && pd->min <= pd->max &&
        !(v->d >= pd->min && v->d <= pd->max)) {
        config_err_at(e, line, col, path, "value %s is out of range [%s, %s]", v->s, lo, hi);
        return false;
    }
    size_t len = strlen(v->s);
    if (pd->type == OBS_PARAM_STRING && pd->max > 0 && pd->min <= pd->max &&
        ((double)len < pd->min || (double)len > pd->max)) {
        config_err_at(e, line, col, path, "length %zu is out of range [%s, %s]", len, lo, hi);
        return false;
    }
    return true;
}

static const char *param_type_name(uint32_t t)
{
    return t == OBS_PARAM_INT      ? "int"
           : t == OBS_PARAM_DOUBLE ? "double"
           : t == OBS_PARAM_BOOL   ? "bool"
                                   : "string";
}

void config_param_values_free(cfg_param_values *v)
{
    if (!v)
        return;
    for (uint32_t i = 0; v->values && i < v->n_values; i++) {
        free((char *)v->values[i].name);
        free((char *)v->values[i].s);
    }
    free(v->values);
    v->values = NULL;
    v->n_values = 0;
}

/* What check() holds against a descriptor: the parameters as written, the
 * field path they are under ("stages[1].params") and the position that a
 * missing one is reported at (the mapping that should hold it). */
typedef struct param_set {
    const cfg_param *params;
    size_t n;
    const char *path;
    int line, column;
    const char *plugin; /* as the stage names it, when desc has no name */
} param_set;

/* config_check_params() and config_check_ab_params(): the arguments are
 * checked; `e` is initialised. */
static int check(errbuf *e, const param_set *ps, const obs_stage_desc *desc, cfg_param_values *out)
{
    char path[320];
    const char *plugin = desc->name ? desc->name : ps->plugin;

    /* Keys the plugin does not declare. */
    for (size_t j = 0; j < ps->n; j++) {
        const cfg_param *cp = &ps->params[j];
        uint32_t k = 0;
        while (k < desc->n_params && strcmp(desc->params[k].name, cp->key) != 0)
            k++;
        if (k < desc->n_params)
            continue;
        snprintf(path, sizeof path, "%s.%s", ps->path, cp->key);
        config_err_at(e, cp->key_line, cp->key_column, path,
                      "unknown parameter '%s' for plugin '%s'", cp->key, plugin);
        if (!desc->n_params) {
            config_err_put(e, "; it takes no parameters");
            continue;
        }
        const char *names[64];
        size_t n = 0;
        config_err_put(e, "; allowed: ");
        for (k = 0; k < desc->n_params; k++) {
            config_err_put(e, "%s%s", k ? ", " : "", desc->params[k].name);
            if (n < 64)
                names[n++] = desc->params[k].name;
        }
        config_put_suggestion(e, cp->key, names, n);
    }

    if (desc->n_params) {
        out->values = calloc(desc->n_params, sizeof *out->values);
        if (!out->values) {
            config_err_at(e, 0, 0, NULL, "out of memory");
            return OBS_ENOMEM;
        }
        out->n_values = desc->n_params;
    }
    bool oom = false;
    for (uint32_t k = 0; k < desc->n_params; k++) {
        const obs_param_desc *pd = &desc->params[k];
        obs_param_value *v = &out->values[k];
        const cfg_param *cp = NULL;
        for (size_t j = 0; j < ps->n && !cp; j++)
            if (strcmp(ps->params[j].key, pd->name) == 0)
                cp = &ps->params[j];
        snprintf(path, sizeof path, "%s.%s", ps->path, pd->name);
        v->type = pd->type;
        v->name = strdup(pd->name);
        oom |= v->name == NULL;
        if (!cp && !pd->default_value) {
            config_err_at(e, ps->line, ps->column, ps->path,
                          "missing required parameter '%s' (%s) for plugin '%s'%s%s", pd->name,
                          param_type_name(pd->type), plugin, pd->help ? ": " : "",
                          pd->help ? pd->help : "");
            continue;
        }
        v->is_default = cp == NULL;
        v->s = strdup(cp ? cp->value : pd->default_value);
        if (!v->name || !v->s) {
            oom = true;
            continue;
        }
        const char *why = param_parse(pd, v->s, v);
        if (why && cp) {
            config_err_at(e, cp->line, cp->column, path, "%s, got '%s'", why, v->s);
        } else if (why) {
            config_err_at(
                e, ps->line, ps->column, path,
                "plugin '%s' declares an invalid default '%s' for parameter '%s' (%s): %s", plugin,
                v->s, pd->name, param_type_name(pd->type), why);
        } else {
            param_in_range(e, cp ? cp->line : ps->line, cp ? cp->column : ps->column, path, pd, v);
        }
    }
    if (oom) {
        config_err_at(e, 0, 0, NULL, "out of memory");
    }
    if (e->n) {
        config_err_finish(e);
        config_param_values_free(out);
        return oom ? OBS_ENOMEM : OBS_ECONFIG;
    }
    return 0;
}

int config_check_params(const obs_config *cfg, size_t stage_index, const obs_stage_desc *desc,
                        cfg_param_values *out, char *err, size_t errlen)
{
    errbuf e;
    char path[64];
    if (out)
        memset(out, 0, sizeof *out);
    config_err_init(&e, err, errlen, cfg && cfg->path ? cfg->path : "<config>");
    if (!cfg || !desc || !out || stage_index >= cfg->n_stages ||
        (desc->n_params && !desc->params)) {
        config_err_at(&e, 0, 0, NULL, "config_check_params: invalid arguments");
        return OBS_EINVAL;
    }
    const cfg_stage *st = &cfg->stages[stage_index];
    snprintf(path, sizeof path, "stages[%zu].params", stage_index);
    param_set ps = {st->params, st->n_params, path, st->line, st->column, st->plugin};
    return check(&e, &ps, desc, out);
}

int config_check_ab_params(const obs_config *cfg, size_t stage_index, const obs_stage_desc *desc,
                           cfg_param_values *out, char *err, size_t errlen)
{
    errbuf e;
    char path[64];
    if (out)
        memset(out, 0, sizeof *out);
    config_err_init(&e, err, errlen, cfg && cfg->path ? cfg->path : "<config>");
    if (!cfg || !desc || !out || stage_index >= cfg->n_stages || !cfg->stages[stage_index].ab ||
        (desc->n_params && !desc->params)) {
        config_err_at(&e, 0, 0, NULL, "config_check_ab_params: invalid arguments");
        return OBS_EINVAL;
    }
    const cfg_ab *ab = cfg->stages[stage_index].ab;
    snprintf(path, sizeof path, "stages[%zu].ab.params", stage_index);
    param_set ps = {ab->params, ab->n_params,
                    path,       ab->line,
                    ab->column, ab->plugin ? ab->plugin : cfg->stages[stage_index].plugin};
    return check(&e, &ps, desc, out);
}

int config_check_params_given(const obs_config *cfg, size_t stage_index, const cfg_param *params,
                              size_t n_params, const char *origin, const obs_stage_desc *desc,
                              cfg_param_values *out, char *err, size_t errlen)
{
    obs_config tmp = *cfg;
    cfg_stage *stages = malloc(cfg->n_stages * sizeof(cfg_stage));
    if (!stages)
        return OBS_ENOMEM;
    memcpy(stages, cfg->stages, cfg->n_stages * sizeof(cfg_stage));
    stages[stage_index].params = (cfg_param *)params;
    stages[stage_index].n_params = n_params;
    tmp.stages = stages;
    tmp.path = (char *)origin;
    int rc = config_check_params(&tmp, stage_index, desc, out, err, errlen);
    free(stages);
    return rc;
}
