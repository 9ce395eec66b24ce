/*
 * config.c - loading pipeline.yaml into an obs_config, and freeing one.
 *
 * The text goes through three passes. libyaml's document API comes first
 * (config_tree.c): it reports syntax errors at their exact position and
 * builds a tree in which every node keeps its mark, so that every later
 * message can point at the offending key or value. libcyaml comes second,
 * against the static schema of config_schema.c: it rejects unknown keys,
 * missing keys and values of the wrong shape, and its errors are rewritten
 * with their position from the tree. Every scalar of the typed part is
 * loaded as a string, because libcyaml 1.3.1 accepts "12a" as an integer:
 * the third pass, here, converts and range-checks the top-level keys and
 * the stages with the strict parsers of config_scalars.c, fills in the
 * defaults, and reports as many independent errors as it finds.
 *
 * A stage's `params` mapping belongs to its plugin: it is copied from the
 * libyaml tree with positions, and config_check_params() (config_params.c)
 * validates it once the plugin's descriptor is known. The `load:` phases
 * (config_load.c) and a stage's `ab:` experiment (config_ab.c) are converted
 * by files of their own. Errors accumulate as config_errors.c describes;
 * config_internal.h declares what these files share.
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <ctype.h>
#include <cyaml/cyaml.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_FILE_BYTES (16u << 20)

static char *dup_str(loader *L, const char *s)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        L->oom = true;
    return d;
}

/* Copies stage i's position and params from the libyaml tree. */
static void load_params(loader *L, size_t i, cfg_stage *st)
{
    char path[64];
    snprintf(path, sizeof path, "stages[%zu]", i);
    config_node_pos(config_doc_node_at(&L->doc, path, NULL), &st->line, &st->column);
    config_read_params(L, path, &st->params, &st->n_params);
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
    if (y->n_stages > CFG_MAX_STAGES) {
        config_lerr(L, "stages", "%u stages: a pipeline may have at most %d", y->n_stages,
                    CFG_MAX_STAGES);
        return;
    }
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
        if (!config_name_ok(ys->name, false))
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
        snprintf(path, sizeof path, "stages[%zu].parallelism", i);
        st->parallelism = 1;
        config_check_u32(L, path, ys->parallelism, &st->parallelism, 1, CFG_MAX_PARALLELISM);
        if (i == 0 && st->parallelism > 1)
            config_lerr(L, path,
                        "stage '%s' is the generator, which runs as one instance: parallelism "
                        "applies to transforms and sinks",
                        ys->name);
        snprintf(path, sizeof path, "stages[%zu].partition", i);
        if (ys->partition && strcmp(ys->partition, "key") == 0)
            st->partition = CFG_PARTITION_KEY;
        else if (ys->partition && strcmp(ys->partition, "round_robin") != 0)
            config_lerr(L, path, "unknown partition '%s'; allowed: round_robin, key",
                        ys->partition);
        else if (ys->partition && i == 0)
            config_lerr(L, path, "stage '%s' is the generator: nothing upstream to partition",
                        ys->name);
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
    cfg->drain_timeout_ns = 30000000000ull;
    cfg->callback_warn_ns = 10000000000ull;

    if (!config_name_ok(y->pipeline, true))
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
        if (config_parse_size(y->max_batch_bytes, &v) != 0)
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
    config_check_duration(L, "run.drain_timeout", y->run.drain_timeout, &cfg->drain_timeout_ns);
    config_check_duration(L, "run.callback_warn", y->run.callback_warn, &cfg->callback_warn_ns);
    if (cfg->duration_ns && cfg->warmup_ns >= cfg->duration_ns)
        config_lerr(L, "run.warmup", "warmup %s must be shorter than the run duration %s",
                    y->run.warmup, y->run.duration);
    config_check_u32(L, "run.realtime_priority", y->run.realtime_priority, &cfg->realtime_priority,
                     0, 99);
    if (y->run.id) {
        const char *bad = config_run_id_problem(y->run.id);
        if (bad)
            config_lerr(L, "run.id", "'%s': %s", y->run.id, bad);
        else
            cfg->run_id = dup_str(L, y->run.id);
    }
    if (y->run.seed && config_parse_u64(y->run.seed, &cfg->seed) != 0)
        config_lerr(L, "run.seed", "expected an unsigned 64-bit integer, got '%s'", y->run.seed);

    const char *why;
    if (y->http.listen && (why = config_listen_problem(y->http.listen)))
        config_lerr(L, "http.listen", "invalid listen address '%s': %s", y->http.listen, why);
    cfg->http_listen = dup_str(L, y->http.listen ? y->http.listen : "127.0.0.1:9464");
    if (y->http.n_allowed_hosts) {
        cfg->http_allowed_hosts = calloc(y->http.n_allowed_hosts, sizeof(char *));
        if (!cfg->http_allowed_hosts)
            L->oom = true;
        for (size_t i = 0; cfg->http_allowed_hosts && i < y->http.n_allowed_hosts; i++) {
            const char *h = y->http.allowed_hosts[i];
            size_t n = strlen(h), ok = n > 0 && n <= 253;
            for (size_t k = 0; ok && k < n; k++)
                ok = isalnum((unsigned char)h[k]) || h[k] == '-' || h[k] == '.';
            if (!ok) {
                snprintf(path, sizeof path, "http.allowed_hosts[%zu]", i);
                config_lerr(L, path,
                            "invalid host name '%s': 1 to 253 characters from [A-Za-z0-9.-], "
                            "without a port",
                            h);
            }
            cfg->http_allowed_hosts[i] = dup_str(L, h);
        }
        cfg->n_http_allowed_hosts = y->http.n_allowed_hosts;
    }
    if (y->store.path && !*y->store.path)
        config_lerr(L, "store.path", "the store path must not be empty");
    cfg->store_path = dup_str(L, y->store.path ? y->store.path : "observatory-data");
    cfg->store_max_bytes = 1ull << 30;
    config_check_duration(L, "store.retention.max_age", y->store.retention.max_age,
                          &cfg->store_max_age_ns);
    if (y->store.retention.max_age && cfg->store_max_age_ns && cfg->store_max_age_ns < 60000000000u)
        config_lerr(L, "store.retention.max_age", "value %s is below the minimum 1m (0: no limit)",
                    y->store.retention.max_age);
    if (y->store.retention.max_size) {
        uint64_t v;
        if (config_parse_size(y->store.retention.max_size, &v) != 0)
            config_lerr(
                L, "store.retention.max_size",
                "expected a size in bytes with an optional KiB, MiB or GiB suffix, got '%s'",
                y->store.retention.max_size);
        else if (v && v < (16u << 20))
            config_lerr(L, "store.retention.max_size",
                        "value %s is below the minimum 16MiB (0: no limit)",
                        y->store.retention.max_size);
        else
            cfg->store_max_bytes = v;
    }

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
        .log_fn = config_cy_log_fn,
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

    rc = config_load_tree(&L, cfg->text, len);
    if (rc != 0)
        goto fail;
    config_check_keys(&L);
    if (L.err.n) {
        yaml_document_delete(&L.doc);
        rc = OBS_ECONFIG;
        goto fail;
    }
    cyaml_err_t cerr = cyaml_load_data((const uint8_t *)cfg->text, len, &cy, &config_top_schema,
                                       (cyaml_data_t **)&y, NULL);
    if (cerr == CYAML_ERR_OOM) {
        L.oom = true;
    } else if (cerr == CYAML_ERR_ALIAS) {
        int line, col;
        config_first_alias(cfg->text, len, &line, &col);
        config_err_at(&L.err, line, col, NULL,
                      "aliases (*name) are not supported: write the value out");
    } else if (cerr != CYAML_OK) {
        config_report_cyaml(&L.err, &L.doc, &lg, cerr);
    } else if (!y) {
        config_err_at(&L.err, 1, 1, NULL, "missing required key 'pipeline'");
    } else {
        convert(&L, y, cfg);
    }
    if (y)
        cyaml_free(&cy, &config_top_schema, y, 0);
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
    for (size_t i = 0; i < cfg->n_http_allowed_hosts; i++)
        free(cfg->http_allowed_hosts[i]);
    free(cfg->http_allowed_hosts);
    free(cfg->store_path);
    free(cfg->run_id);
    free(cfg->path);
    free(cfg->text);
    free(cfg->dir);
    free(cfg);
}
