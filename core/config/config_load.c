/*
 * config_load.c - the `load:` list of pipeline.yaml: the generator's phases.
 *
 * config.c loads the file and hands each entry of `load:` here as libcyaml
 * read it (every scalar as text, against the phase schema below). Each phase
 * is checked and converted into a cfg_load_phase: which keys apply to which
 * shape (constant, max, poisson, ramp, steps, sine, diurnal, bursts,
 * replay), the rates, durations and burst settings with their ranges, the
 * length of a phase that may be left open (only the last one), and for a
 * replay the file of timestamps, read here with errors that point into that
 * file. core/schedule.c turns the phases into send times; docs/load.md
 * describes every shape. Errors go through the loader (config_internal.h),
 * so they read like every other configuration error.
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPT (CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL)

/* ------------------------------------------------------------- the schema */

static const cyaml_strval_t shape_names[] = {
    {"constant", CFG_SHAPE_CONSTANT}, {"max", CFG_SHAPE_MAX},       {"poisson", CFG_SHAPE_POISSON},
    {"ramp", CFG_SHAPE_RAMP},         {"steps", CFG_SHAPE_STEPS},   {"sine", CFG_SHAPE_SINE},
    {"diurnal", CFG_SHAPE_DIURNAL},   {"bursts", CFG_SHAPE_BURSTS}, {"replay", CFG_SHAPE_REPLAY},
};

static const cyaml_strval_t arrival_names[] = {
    {"uniform", CFG_ARRIVAL_UNIFORM},
    {"poisson", CFG_ARRIVAL_POISSON},
};

static const cyaml_strval_t distribution_names[] = {
    {"fixed", CFG_DIST_FIXED},
    {"pareto", CFG_DIST_PARETO},
};

static const cyaml_schema_value_t step_entry = {
    CYAML_VALUE_STRING(CYAML_FLAG_POINTER, char, 0, CYAML_UNLIMITED),
};

static const cyaml_schema_field_t phase_fields[] = {
    CYAML_FIELD_ENUM("shape", CYAML_FLAG_STRICT, y_phase, shape, shape_names,
                     CYAML_ARRAY_LEN(shape_names)),
    CYAML_FIELD_STRING_PTR("rate", OPT, y_phase, rate, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("duration", OPT, y_phase, duration, 0, CYAML_UNLIMITED),
    CYAML_FIELD_ENUM("arrival", CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT, y_phase, arrival,
                     arrival_names, CYAML_ARRAY_LEN(arrival_names)),
    CYAML_FIELD_STRING_PTR("from", OPT, y_phase, from, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("to", OPT, y_phase, to, 0, CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE_COUNT("steps", OPT, y_phase, steps, n_steps, &step_entry, 0,
                               CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("step", OPT, y_phase, step, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("period", OPT, y_phase, period, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("amplitude", OPT, y_phase, amplitude, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("burst_rate", OPT, y_phase, burst_rate, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("burst_factor", OPT, y_phase, burst_factor, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("burst", OPT, y_phase, burst, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("gap", OPT, y_phase, gap, 0, CYAML_UNLIMITED),
    CYAML_FIELD_ENUM("distribution", CYAML_FLAG_OPTIONAL | CYAML_FLAG_STRICT, y_phase, distribution,
                     distribution_names, CYAML_ARRAY_LEN(distribution_names)),
    CYAML_FIELD_STRING_PTR("alpha", OPT, y_phase, alpha, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("file", OPT, y_phase, file, 0, CYAML_UNLIMITED),
    CYAML_FIELD_END,
};

const cyaml_schema_value_t config_phase_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, y_phase, phase_fields),
};

/* ------------------------------------------------------------ the phases */

/* Which phase keys apply to which shapes (bit i: shape i). */
#define SHAPES(...) (shape_bits((const int[]){__VA_ARGS__, 0}))
static unsigned shape_bits(const int *shapes)
{
    unsigned bits = 0;
    for (; *shapes; shapes++)
        bits |= 1u << *shapes;
    return bits;
}

static const char *shape_name(int shape)
{
    for (size_t i = 0; i < CYAML_ARRAY_LEN(shape_names); i++)
        if (shape_names[i].val == shape)
            return shape_names[i].str;
    return "?";
}

/* Reports a phase key given for a shape it does not apply to. */
static void phase_key_allowed(loader *L, size_t i, int shape, const char *key, bool given,
                              unsigned shapes)
{
    char path[64], list[160] = "";
    size_t len = 0;
    if (!given || (shapes & (1u << shape)))
        return;
    for (size_t j = 0; j < CYAML_ARRAY_LEN(shape_names); j++)
        if (shapes & (1u << shape_names[j].val)) {
            int w = snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "",
                             shape_names[j].str);
            if (w > 0 && len + (size_t)w < sizeof list)
                len += (size_t)w;
        }
    snprintf(path, sizeof path, "load[%zu].%s", i, key);
    config_lerr(L, path, "'%s' does not apply to shape '%s' (only to: %s)", key, shape_name(shape),
                list);
}

/* Converts load[i].<key> (text, may be NULL) into *out within [lo, hi]
 * (`lo` itself excluded when lo_open). Returns true when given and valid. */
/* Rates in records per second: above one a nanosecond (the clock's
 * resolution) a schedule cannot be kept, and below one in about 11.6 days
 * the first interval already outlasts any run (a rate of 1e-300 once ended
 * a run at once; 1e308 stalled it). */
#define RATE_MAX 1e9
#define RATE_MIN 1e-6
static const char RATE_WHAT[] = "a number of records per second";

/* A positive rate outside [RATE_MIN, RATE_MAX]: the error, else NULL. */
static const char *rate_problem(double v)
{
    if (v > RATE_MAX)
        return "above 1e9 records per second (one a nanosecond: the clock's resolution)";
    if (v > 0 && v < RATE_MIN)
        return "below 1e-6 records per second (one in about 11.6 days)";
    return NULL;
}

static bool phase_number(loader *L, size_t i, const char *key, const char *text, double *out,
                         double lo, bool lo_open, double hi, const char *what)
{
    char path[64];
    double v;
    if (!text)
        return false;
    snprintf(path, sizeof path, "load[%zu].%s", i, key);
    if (config_parse_double(text, &v) != 0) {
        config_lerr(L, path, "expected %s, got '%s'", what, text);
        return false;
    }
    const char *rp = what == RATE_WHAT ? rate_problem(v) : NULL;
    if (rp) {
        config_lerr(L, path, "%s %s is %s", key, text, rp);
        return false;
    }
    if (v < lo || (lo_open && v == lo) || v > hi) {
        if (hi < INFINITY)
            config_lerr(L, path, "value %s is out of range %s%g, %g]", text, lo_open ? "(" : "[",
                        lo, hi);
        else
            config_lerr(L, path, "%s must be %s %g, got %s", key, lo_open ? ">" : ">=", lo, text);
        return false;
    }
    *out = v;
    return true;
}

/* A duration > 0 at load[i].<key>; true when given and valid. */
static bool phase_duration(loader *L, size_t i, const char *key, const char *text, uint64_t *out)
{
    char path[64];
    if (!text)
        return false;
    snprintf(path, sizeof path, "load[%zu].%s", i, key);
    uint64_t before = L->err.n;
    config_check_duration(L, path, text, out);
    if (L->err.n != before)
        return false;
    if (*out == 0) {
        config_lerr(L, path, "%s must be > 0", key);
        return false;
    }
    return true;
}

static void phase_missing(loader *L, size_t i, const char *fmt, ...) OBS_PRINTF(3, 4);
static void phase_missing(loader *L, size_t i, const char *fmt, ...)
{
    char path[64];
    snprintf(path, sizeof path, "load[%zu]", i);
    va_list ap;
    va_start(ap, fmt);
    config_vlerr(L, path, fmt, ap);
    va_end(ap);
}

/* Reads the timestamps of a replay phase from `file` (relative to the
 * configuration's directory): one per line, a duration as in the config
 * (a bare number is seconds: 1700000000.25, 12ms), '#' starts a comment,
 * blank lines are skipped. They must not decrease; they are stored as
 * offsets from the first. Errors in the file name the file and its line.
 * Bounded: a line longer than REPLAY_MAX_LINE (a file with no newlines,
 * /dev/zero) or more than REPLAY_MAX_TIMESTAMPS timestamps is an error, not
 * memory without end. */
#define REPLAY_MAX_LINE 256
#define REPLAY_MAX_TIMESTAMPS 50000000u

static void read_replay(loader *L, size_t i, const char *file, cfg_load_phase *ph)
{
    char path[64], line[REPLAY_MAX_LINE + 2];
    size_t lineno = 0, n = 0, alloc = 0;
    uint64_t first = 0, prev = 0, *ts = NULL;
    snprintf(path, sizeof path, "load[%zu].file", i);
    if (!*file) {
        config_lerr(L, path, "the replay file name must not be empty");
        return;
    }
    const char *dir = L->cfg->dir;
    size_t len = strlen(dir) + strlen(file) + 2;
    ph->replay_path = malloc(len);
    if (!ph->replay_path) {
        L->oom = true;
        return;
    }
    if (file[0] == '/')
        snprintf(ph->replay_path, len, "%s", file);
    else
        snprintf(ph->replay_path, len, "%s/%s", dir, file);
    FILE *f = fopen(ph->replay_path, "r");
    if (!f) {
        config_lerr(L, path, "cannot read replay file '%s': %s", ph->replay_path, strerror(errno));
        return;
    }
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t ll = strlen(line);
        if (ll > REPLAY_MAX_LINE || (ll == 0 && !feof(f))) {
            /* No newline within the bound, or a NUL byte: not a text file
             * of timestamps. */
            const char *saved = L->err.file;
            L->err.file = ph->replay_path;
            config_err_at(&L->err, (int)lineno, 1, path,
                          "line longer than %d bytes (or not text): one timestamp per line",
                          REPLAY_MAX_LINE);
            L->err.file = saved;
            goto out;
        }
        line[strcspn(line, "#\r\n")] = '\0';
        char *b = line + strspn(line, " \t");
        size_t e = strlen(b);
        while (e && (b[e - 1] == ' ' || b[e - 1] == '\t'))
            b[--e] = '\0';
        if (!*b)
            continue;
        uint64_t t;
        const char *why = NULL;
        if (config_parse_duration(b, &t) != 0)
            why = "invalid timestamp '%s': expected a number of seconds or a number with a unit "
                  "ns, us, ms, s, m or h";
        else if (n && t < prev)
            why = "timestamp '%s' is earlier than the one before it: timestamps must not decrease";
        if (why) {
            const char *saved = L->err.file;
            L->err.file = ph->replay_path;
            config_err_at(&L->err, (int)lineno, (int)(b - line) + 1, path, why, b);
            L->err.file = saved;
            goto out;
        }
        if (n == REPLAY_MAX_TIMESTAMPS) {
            config_lerr(L, path, "replay file '%s' holds more than %u timestamps", ph->replay_path,
                        REPLAY_MAX_TIMESTAMPS);
            goto out;
        }
        if (n == alloc) {
            size_t na = alloc ? alloc * 2 : 1024;
            uint64_t *nt = realloc(ts, na * sizeof *ts);
            if (!nt) {
                L->oom = true;
                goto out;
            }
            ts = nt;
            alloc = na;
        }
        if (!n)
            first = t;
        ts[n++] = t - first;
        prev = t;
    }
    if (ferror(f))
        config_lerr(L, path, "cannot read replay file '%s': %s", ph->replay_path, strerror(errno));
    else if (!n)
        config_lerr(L, path, "replay file '%s' holds no timestamps", ph->replay_path);
    else {
        ph->replay_ns = ts;
        ph->n_replay = n;
        ts = NULL;
    }
out:
    free(ts);
    fclose(f);
}

/* Checks and converts one phase; `last` is whether it is the last one. */
static void convert_phase(loader *L, size_t i, const y_phase *yp, cfg_load_phase *ph, bool last)
{
    const int shape = yp->shape;
    const char *sname = shape_name(shape);
    const unsigned rate_shapes = SHAPES(CFG_SHAPE_CONSTANT, CFG_SHAPE_POISSON, CFG_SHAPE_SINE,
                                        CFG_SHAPE_DIURNAL, CFG_SHAPE_BURSTS);
    const unsigned timed = SHAPES(CFG_SHAPE_CONSTANT, CFG_SHAPE_RAMP, CFG_SHAPE_STEPS,
                                  CFG_SHAPE_SINE, CFG_SHAPE_DIURNAL, CFG_SHAPE_BURSTS);
    const unsigned burstable = timed | SHAPES(CFG_SHAPE_POISSON);
    const unsigned sine = SHAPES(CFG_SHAPE_SINE, CFG_SHAPE_DIURNAL);
    char path[64];
    ph->shape = (cfg_shape)shape;

    phase_key_allowed(L, i, shape, "rate", yp->rate, rate_shapes);
    phase_key_allowed(L, i, shape, "arrival", yp->arrival, timed);
    phase_key_allowed(L, i, shape, "from", yp->from, SHAPES(CFG_SHAPE_RAMP));
    phase_key_allowed(L, i, shape, "to", yp->to, SHAPES(CFG_SHAPE_RAMP));
    phase_key_allowed(L, i, shape, "steps", yp->steps, SHAPES(CFG_SHAPE_STEPS));
    phase_key_allowed(L, i, shape, "step", yp->step, SHAPES(CFG_SHAPE_STEPS));
    phase_key_allowed(L, i, shape, "period", yp->period, sine);
    phase_key_allowed(L, i, shape, "amplitude", yp->amplitude, sine);
    phase_key_allowed(L, i, shape, "burst_rate", yp->burst_rate, burstable);
    phase_key_allowed(L, i, shape, "burst_factor", yp->burst_factor, burstable);
    phase_key_allowed(L, i, shape, "burst", yp->burst, burstable);
    phase_key_allowed(L, i, shape, "gap", yp->gap, burstable);
    phase_key_allowed(L, i, shape, "distribution", yp->distribution, burstable);
    phase_key_allowed(L, i, shape, "alpha", yp->alpha, burstable);
    phase_key_allowed(L, i, shape, "file", yp->file, SHAPES(CFG_SHAPE_REPLAY));

    ph->arrival = shape == CFG_SHAPE_POISSON ? CFG_ARRIVAL_POISSON
                  : yp->arrival              ? (cfg_arrival)yp->arrival
                                             : CFG_ARRIVAL_UNIFORM;
    const char *per_s = RATE_WHAT;
    if (rate_shapes & (1u << shape)) {
        if (!yp->rate && shape != CFG_SHAPE_BURSTS)
            phase_missing(L, i, "shape '%s' needs a rate (records per second, > 0)", sname);
        else if (shape == CFG_SHAPE_BURSTS)
            phase_number(L, i, "rate", yp->rate, &ph->rate, 0, false, INFINITY, per_s);
        else if (yp->rate && config_parse_double(yp->rate, &ph->rate) != 0) {
            snprintf(path, sizeof path, "load[%zu].rate", i);
            config_lerr(L, path, "expected %s, got '%s'", per_s, yp->rate);
        } else if (!(ph->rate > 0)) {
            snprintf(path, sizeof path, "load[%zu].rate", i);
            config_lerr(L, path, "rate must be > 0 records per second, got %s", yp->rate);
        } else if (rate_problem(ph->rate)) {
            snprintf(path, sizeof path, "load[%zu].rate", i);
            config_lerr(L, path, "rate %s is %s", yp->rate, rate_problem(ph->rate));
        }
    }

    if (shape == CFG_SHAPE_RAMP) {
        phase_number(L, i, "from", yp->from, &ph->from, 0, false, INFINITY, per_s);
        if (!yp->to)
            phase_missing(L, i,
                          "shape 'ramp' needs 'to' (the rate at its end, records per second)");
        else if (phase_number(L, i, "to", yp->to, &ph->to, 0, false, INFINITY, per_s) &&
                 ph->from == 0 && ph->to == 0) {
            snprintf(path, sizeof path, "load[%zu].to", i);
            config_lerr(L, path, "a ramp from 0 to 0 sends nothing");
        }
        if (!yp->duration)
            phase_missing(L, i, "shape 'ramp' needs a duration (the length of the ramp)");
    }

    if (shape == CFG_SHAPE_STEPS) {
        if (!yp->n_steps) {
            if (yp->steps) {
                snprintf(path, sizeof path, "load[%zu].steps", i);
                config_lerr(L, path, "needs at least one rate");
            } else {
                phase_missing(L, i, "shape 'steps' needs 'steps' (a list of rates)");
            }
        } else if (!(ph->steps = calloc(yp->n_steps, sizeof *ph->steps))) {
            L->oom = true;
        } else {
            bool any = false;
            ph->n_steps = yp->n_steps;
            for (size_t j = 0; j < yp->n_steps; j++) {
                char key[32];
                snprintf(key, sizeof key, "steps[%zu]", j);
                phase_number(L, i, key, yp->steps[j], &ph->steps[j], 0, false, INFINITY, per_s);
                any |= ph->steps[j] > 0;
            }
            if (!any) {
                snprintf(path, sizeof path, "load[%zu].steps", i);
                config_lerr(L, path, "every step has rate 0: the phase would send nothing");
            }
        }
        if (!yp->step)
            phase_missing(L, i, "shape 'steps' needs 'step' (the length of each step)");
        else
            phase_duration(L, i, "step", yp->step, &ph->step_ns);
    }

    if (sine & (1u << shape)) {
        if (!yp->period)
            phase_missing(L, i, "shape '%s' needs a period", sname);
        else
            phase_duration(L, i, "period", yp->period, &ph->period_ns);
        ph->amplitude = 0.5;
        phase_number(L, i, "amplitude", yp->amplitude, &ph->amplitude, 0, false, 1,
                     "a fraction of the rate (0 to 1)");
    }

    bool bursts = yp->burst_rate || yp->burst_factor || yp->burst || yp->gap || yp->distribution ||
                  yp->alpha || shape == CFG_SHAPE_BURSTS;
    if (bursts && (burstable & (1u << shape))) {
        if (yp->burst_rate && yp->burst_factor) {
            snprintf(path, sizeof path, "load[%zu].burst_factor", i);
            config_lerr(L, path, "give either burst_rate or burst_factor, not both");
        } else if (!yp->burst_rate && !yp->burst_factor) {
            phase_missing(L, i,
                          "bursts need burst_rate (records per second during a burst) or "
                          "burst_factor (times the rate)");
        }
        phase_number(L, i, "burst_rate", yp->burst_rate, &ph->burst_rate, 0, true, INFINITY, per_s);
        if (phase_number(L, i, "burst_factor", yp->burst_factor, &ph->burst_factor, 0, true,
                         INFINITY, "a factor") &&
            shape == CFG_SHAPE_BURSTS && !(ph->rate > 0)) {
            snprintf(path, sizeof path, "load[%zu].burst_factor", i);
            config_lerr(L, path,
                        "burst_factor multiplies the rate, which is 0 here: give burst_rate");
        }
        if (!yp->burst)
            phase_missing(L, i, "bursts need 'burst' (the mean length of a burst)");
        else
            phase_duration(L, i, "burst", yp->burst, &ph->burst_ns);
        if (!yp->gap)
            phase_missing(L, i, "bursts need 'gap' (the mean time between bursts)");
        else
            phase_duration(L, i, "gap", yp->gap, &ph->gap_ns);
        ph->burst_dist = yp->distribution ? (cfg_dist)yp->distribution : CFG_DIST_FIXED;
        ph->alpha = 1.5;
        if (yp->alpha && ph->burst_dist != CFG_DIST_PARETO) {
            snprintf(path, sizeof path, "load[%zu].alpha", i);
            config_lerr(L, path, "alpha applies only to distribution 'pareto'");
        } else {
            phase_number(L, i, "alpha", yp->alpha, &ph->alpha, 1, true, 100,
                         "a Pareto shape (> 1)");
        }
    }

    if (shape == CFG_SHAPE_REPLAY) {
        if (!yp->file)
            phase_missing(L, i, "shape 'replay' needs 'file' (a file of timestamps)");
        else
            read_replay(L, i, yp->file, ph);
    }

    snprintf(path, sizeof path, "load[%zu].duration", i);
    if (yp->duration && config_parse_duration(yp->duration, &ph->duration_ns) != 0) {
        config_check_duration(L, path, yp->duration, &ph->duration_ns);
        return;
    }
    if (yp->duration && ph->duration_ns == 0 && shape == CFG_SHAPE_RAMP) {
        config_lerr(L, path, "a ramp needs a duration > 0 (the length of the ramp)");
        return;
    }
    /* Steps and replays have a natural length. */
    if (!yp->duration && shape == CFG_SHAPE_STEPS && ph->step_ns && ph->n_steps && !last) {
        if (ph->step_ns > UINT64_MAX / ph->n_steps)
            phase_missing(L, i, "steps last longer than 584 years");
        else
            ph->duration_ns = ph->step_ns * ph->n_steps;
        return;
    }
    if (!last && ph->duration_ns == 0 && !(shape == CFG_SHAPE_REPLAY && !yp->duration)) {
        if (!yp->duration)
            snprintf(path, sizeof path, "load[%zu]", i);
        config_lerr(L, path,
                    "only the last phase may run until the end: give this one a duration > 0");
    }
}

void config_convert_load(loader *L, const y_phase *y, unsigned n, obs_config *cfg)
{
    cfg->n_load = n ? n : 1;
    cfg->load = calloc(cfg->n_load, sizeof *cfg->load);
    if (!cfg->load) {
        L->oom = true;
        cfg->n_load = 0;
        return;
    }
    if (!n) {
        cfg->load[0].shape = CFG_SHAPE_MAX;
        if (config_node_at(L, "load"))
            config_lerr(L, "load", "needs at least one phase (leave 'load' out for shape max)");
        return;
    }
    for (size_t i = 0; i < n; i++)
        convert_phase(L, i, &y[i], &cfg->load[i], i + 1 == n);
}
