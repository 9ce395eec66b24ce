/*
 * sink_windowcheck.c - a sink that proves a window stage (xf_window,
 * xf_window_rs) lost no tick and emitted no window twice, for the hot-swap
 * tests of window stages, where sink_seqcheck cannot help: window records
 * share the seq of the tick that closed them.
 *
 * Every tick a window stage accepts lands in exactly window_ms / slide_ms
 * windows, and every window of a symbol is emitted once, at increasing
 * end times. So this sink sums, over the window records it receives,
 * n_trades + n_quotes (counter window_ticks, to be compared by the test
 * with the ticks the stage took in times the panes per window) and counts
 * the records (windows), the records that are not window records
 * (not_window, an error), and the windows whose end is not after the last
 * one of the same symbol (window_repeats, an error: a window emitted twice,
 * as a swap that flushed instead of handing its state over would do).
 * Symbols beyond the table (4096) are counted on untracked_symbols.
 */
#include <stdint.h>
#include <string.h>

#include <observatory/stage.h>

#define SLOTS 4096 /* a power of two */

typedef struct windowcheck {
    const obs_host *host;
    uint64_t sym[SLOTS]; /* 0: empty slot (a symbol is never all zero bytes) */
    uint64_t last_end[SLOTS];
    int c_windows, c_ticks, c_not_window, c_repeats, c_untracked;
} windowcheck;

static int wc_init(const obs_host *host, const obs_params *params, void **instance)
{
    (void)params;
    windowcheck *w = host->alloc(host, sizeof *w);
    if (!w)
        return OBS_ENOMEM;
    memset(w, 0, sizeof *w);
    w->host = host;
    w->c_windows = host->counter_register(host, "windows", OBS_COUNTER_PLAIN, "window records");
    w->c_ticks = host->counter_register(host, "window_ticks", OBS_COUNTER_PLAIN,
                                        "sum of n_trades + n_quotes over window records");
    w->c_not_window = host->counter_register(host, "not_window", OBS_COUNTER_ERROR,
                                             "records that are not window records");
    w->c_repeats = host->counter_register(host, "window_repeats", OBS_COUNTER_ERROR,
                                          "windows not after the last one of their symbol");
    w->c_untracked = host->counter_register(host, "untracked_symbols", OBS_COUNTER_ERROR,
                                            "window records of symbols beyond the table");
    if (w->c_windows < 0 || w->c_ticks < 0 || w->c_not_window < 0 || w->c_repeats < 0 ||
        w->c_untracked < 0) {
        host->free(host, w);
        return OBS_EPLUGIN;
    }
    *instance = w;
    return OBS_OK;
}

static int wc_consume(void *instance, const obs_batch *in)
{
    windowcheck *w = instance;
    uint64_t windows = 0, ticks = 0, bad = 0, repeats = 0, untracked = 0;
    for (uint32_t i = 0; i < in->n_records; i++) {
        const obs_record *r = &in->records[i];
        if (r->len != 64 || r->data[40] != 3) {
            bad++;
            continue;
        }
        uint64_t end, sym;
        uint32_t n_trades, n_quotes;
        memcpy(&end, r->data, 8);
        memcpy(&sym, r->data + 32, 8);
        memcpy(&n_trades, r->data + 48, 4);
        memcpy(&n_quotes, r->data + 52, 4);
        windows++;
        ticks += (uint64_t)n_trades + n_quotes;
        uint32_t s = (uint32_t)((sym * 0x9e3779b97f4a7c15u) >> 40) & (SLOTS - 1);
        uint32_t probes = 0;
        while (w->sym[s] && w->sym[s] != sym && probes++ < SLOTS)
            s = (s + 1) & (SLOTS - 1);
        if (probes >= SLOTS) {
            untracked++;
            continue;
        }
        if (w->sym[s] == sym && end <= w->last_end[s])
            repeats++;
        w->sym[s] = sym;
        w->last_end[s] = end;
    }
    w->host->counter_add(w->host, w->c_windows, windows);
    w->host->counter_add(w->host, w->c_ticks, ticks);
    if (bad)
        w->host->counter_add(w->host, w->c_not_window, bad);
    if (repeats)
        w->host->counter_add(w->host, w->c_repeats, repeats);
    if (untracked)
        w->host->counter_add(w->host, w->c_untracked, untracked);
    return OBS_OK;
}

static int wc_flush(void *instance, obs_out *out)
{
    (void)instance;
    (void)out;
    return OBS_OK;
}

static void wc_fini(void *instance)
{
    windowcheck *w = instance;
    if (w)
        w->host->free(w->host, w);
}

static const obs_stage_desc wc_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_SINK,
    .name = "sink_windowcheck",
    .version = "1.0.0",
    .description = "checks window records: no tick lost, no window emitted twice",
    .init = wc_init,
    .consume = wc_consume,
    .flush = wc_flush,
    .fini = wc_fini,
};

OBS_DECLARE_STAGE(wc_desc)
