/*
 * xf_window - per-symbol sliding-window statistics over binary ticks.
 *
 * Input: market_tick records (what the JSON transforms emit). Event time is
 * the tick's ts_ns. Time is cut into panes of slide_ms; a window is
 * window_ms long (a multiple of slide_ms) and ends on a pane boundary, so the
 * window ending at boundary B covers [B - window_ms, B) and windows overlap
 * by window_ms - slide_ms. When a tick of a later pane arrives, every boundary
 * it passes is closed: for each symbol with at least one tick in the window
 * ending there, one market_window record is emitted (count of trades and
 * quotes, traded volume, VWAP of trades, min and max tick price, where a
 * quote's price is its mid (bid + ask) / 2 rounded down). flush() closes the
 * boundaries that still have data, so every window holding at least one tick
 * is emitted exactly once. A tick older than the current pane is late: it
 * would change windows already emitted, so it is counted ("late_tick") and
 * dropped. Emitted records carry the seq and intended time of the tick that
 * closed the window (the last tick seen, for flush()), so latency is measured
 * from the record that made the window available; these seqs are therefore
 * not unique.
 *
 * State: per symbol a ring of window_ms / slide_ms panes of partial
 * aggregates, found through an open-addressing hash table on the 8 symbol
 * bytes. Tables start small and grow by doubling with host->realloc up to
 * max_symbols; ticks of further symbols are counted ("symbol_limit") and
 * dropped. A list of "active" symbols (those with a tick in the newest
 * window) keeps boundary work proportional to what is emitted, not to all
 * symbols ever seen. export_state/import_state serialise exactly that active
 * state for hot swaps.
 */
#include <observatory/stage.h>

#include "market.h"

#define MAX_PANES 1024       /* bound on window_ms / slide_ms */
#define INITIAL_SYMBOLS 64   /* first table size; grows by doubling */
#define NO_PANE UINT64_MAX   /* pane slot that holds nothing */
#define NOT_ACTIVE UINT32_MAX
#define STATE_MAGIC "OBSXW001"

static const obs_param_desc xf_window_params[] = {
    {.name = "window_ms", .type = OBS_PARAM_INT, .default_value = "1000", .min = 1,
     .max = 86400000, .help = "window length in ms of event time; a multiple of slide_ms"},
    {.name = "slide_ms", .type = OBS_PARAM_INT, .default_value = "250", .min = 1, .max = 86400000,
     .help = "distance between window ends in ms; window_ms / slide_ms must be at most 1024"},
    {.name = "max_symbols", .type = OBS_PARAM_INT, .default_value = "100000", .min = 1,
     .max = 10000000, .help = "most symbols tracked; ticks of further symbols are dropped"},
};

/* Partial aggregate of one symbol over one pane. */
typedef struct pane {
    uint64_t id; /* ts_ns / slide_ns of the ticks in it, or NO_PANE */
    uint32_t n_trades, n_quotes;
    uint64_t volume;
    int64_t min_e4, max_e4;
    unsigned __int128 pv; /* sum of trade price_e4 * qty */
} pane;

typedef struct symbol {
    uint64_t key;       /* the 8 symbol bytes */
    uint64_t last_pane; /* newest pane with a tick */
    uint32_t active_pos; /* index in the active list, or NOT_ACTIVE */
    uint32_t reserved;
} symbol;

typedef struct xf_window {
    const obs_host *host;
    uint64_t slide_ns;
    uint32_t window_ms, n_panes;
    uint32_t max_syms;
    uint32_t n_syms, cap_syms;
    symbol *syms;     /* cap_syms */
    pane *panes;      /* cap_syms * n_panes; symbol i owns [i * n_panes, +n_panes) */
    uint32_t *table;  /* table_cap slots of symbol index + 1, 0 = empty */
    uint32_t table_cap;
    uint32_t *active; /* n_active symbol indexes, cap_syms allocated */
    uint32_t n_active;
    int have_cur;
    uint64_t cur_pane; /* pane of the newest tick; earlier boundaries are closed */
    uint64_t last_seq, last_t_ns;
    int c_bad, c_late, c_full; /* error counter ids */
} xf_window;

static inline uint32_t hash_slot(uint64_t key, uint32_t cap)
{
    return (uint32_t)((key * 0x9e3779b97f4a7c15u) >> 32) & (cap - 1);
}

static void free_tables(xf_window *w)
{
    const obs_host *h = w->host;
    h->free(h, w->syms);
    h->free(h, w->panes);
    h->free(h, w->table);
    h->free(h, w->active);
    w->syms = NULL;
    w->panes = NULL;
    w->table = NULL;
    w->active = NULL;
    w->n_syms = w->cap_syms = w->table_cap = w->n_active = 0;
}

/* Grows symbol storage to `cap` symbols and the hash table to the power of
 * two at or above 2 * cap slots (rehashing). Returns 0 or OBS_ENOMEM, in which case nothing changed that
 * matters: arrays that did grow are only larger. */
static int grow_tables(xf_window *w, uint32_t cap)
{
    const obs_host *h = w->host;
    symbol *syms = h->realloc(h, w->syms, (size_t)cap * sizeof *syms);
    if (!syms)
        return OBS_ENOMEM;
    w->syms = syms;
    pane *panes = h->realloc(h, w->panes, (size_t)cap * w->n_panes * sizeof *panes);
    if (!panes)
        return OBS_ENOMEM;
    w->panes = panes;
    uint32_t *active = h->realloc(h, w->active, (size_t)cap * sizeof *active);
    if (!active)
        return OBS_ENOMEM;
    w->active = active;
    uint32_t table_cap = 16;
    while (table_cap < 2 * cap)
        table_cap *= 2;
    uint32_t *table = h->alloc(h, (size_t)table_cap * sizeof *table);
    if (!table)
        return OBS_ENOMEM;
    memset(table, 0, (size_t)table_cap * sizeof *table);
    for (uint32_t i = 0; i < w->n_syms; i++) {
        uint32_t s = hash_slot(w->syms[i].key, table_cap);
        while (table[s])
            s = (s + 1) & (table_cap - 1);
        table[s] = i + 1;
    }
    h->free(h, w->table);
    w->table = table;
    w->table_cap = table_cap;
    w->cap_syms = cap;
    return OBS_OK;
}

/* Finds or adds the symbol `key`. Returns its index, or -1 when max_symbols
 * is reached or memory ran out. */
static int64_t symbol_index(xf_window *w, uint64_t key)
{
    uint32_t s = hash_slot(key, w->table_cap);
    while (w->table[s]) {
        uint32_t i = w->table[s] - 1;
        if (w->syms[i].key == key)
            return i;
        s = (s + 1) & (w->table_cap - 1);
    }
    if (w->n_syms == w->max_syms)
        return -1;
    if (w->n_syms == w->cap_syms) {
        uint64_t cap = (uint64_t)w->cap_syms * 2;
        if (cap > w->max_syms)
            cap = w->max_syms;
        if (grow_tables(w, (uint32_t)cap) != OBS_OK)
            return -1;
        s = hash_slot(key, w->table_cap);
        while (w->table[s])
            s = (s + 1) & (w->table_cap - 1);
    }
    uint32_t i = w->n_syms++;
    w->table[s] = i + 1;
    w->syms[i] = (symbol){.key = key, .last_pane = NO_PANE, .active_pos = NOT_ACTIVE};
    /* Whole panes, not only their ids: export_state writes every field of
     * every pane, and must not write what the heap happened to hold. */
    for (uint32_t k = 0; k < w->n_panes; k++)
        w->panes[(size_t)i * w->n_panes + k] = (pane){.id = NO_PANE};
    return i;
}

static void activate(xf_window *w, uint32_t i)
{
    if (w->syms[i].active_pos == NOT_ACTIVE) {
        w->syms[i].active_pos = w->n_active;
        w->active[w->n_active++] = i;
    }
}

static void deactivate(xf_window *w, uint32_t pos)
{
    uint32_t i = w->active[pos];
    uint32_t last = w->active[--w->n_active];
    w->active[pos] = last;
    w->syms[last].active_pos = pos;
    w->syms[i].active_pos = NOT_ACTIVE;
}

/*
 * Closes the boundary at pane `j` (time j * slide): emits the window
 * [j - n_panes, j) of every active symbol, then deactivates the symbols that
 * will have nothing in the next window. Returns 0 or OBS_ENOMEM.
 */
static int close_boundary(xf_window *w, uint64_t j, uint64_t seq, uint64_t t_ns, obs_out *out)
{
    for (uint32_t pos = 0; pos < w->n_active;) {
        uint32_t i = w->active[pos];
        const pane *ring = &w->panes[(size_t)i * w->n_panes];
        market_window rec;
        memset(&rec, 0, sizeof rec);
        unsigned __int128 pv = 0;
        rec.min_e4 = INT64_MAX;
        rec.max_e4 = INT64_MIN;
        for (uint32_t k = 0; k < w->n_panes; k++) {
            const pane *p = &ring[k];
            if (p->id == NO_PANE || p->id >= j || p->id + w->n_panes < j)
                continue;
            rec.n_trades += p->n_trades;
            rec.n_quotes += p->n_quotes;
            rec.volume += p->volume;
            pv += p->pv;
            if (p->min_e4 < rec.min_e4)
                rec.min_e4 = p->min_e4;
            if (p->max_e4 > rec.max_e4)
                rec.max_e4 = p->max_e4;
        }
        if (rec.n_trades + rec.n_quotes > 0) {
            rec.end_ns = j * w->slide_ns;
            memcpy(rec.sym, &w->syms[i].key, sizeof rec.sym);
            rec.type = MARKET_WINDOW;
            rec.window_ms = w->window_ms;
            /* Round half up; prices are positive. */
            if (rec.volume)
                rec.vwap_e4 = (int64_t)((pv + rec.volume / 2) / rec.volume);
            if (obs_out_emit(out, &rec, sizeof rec, seq, t_ns) != OBS_OK)
                return OBS_ENOMEM;
        }
        /* The next window is [j + 1 - n_panes, j + 1). */
        if (w->syms[i].last_pane + w->n_panes <= j)
            deactivate(w, pos); /* moves another symbol to pos */
        else
            pos++;
    }
    return OBS_OK;
}

/* Closes boundaries cur_pane + 1 .. to_pane (stopping early when no symbol
 * is active) and makes to_pane current. Returns 0 or OBS_ENOMEM. */
static int advance(xf_window *w, uint64_t to_pane, uint64_t seq, uint64_t t_ns, obs_out *out)
{
    for (uint64_t j = w->cur_pane + 1; j <= to_pane && w->n_active > 0; j++) {
        int rc = close_boundary(w, j, seq, t_ns, out);
        if (rc != OBS_OK)
            return rc;
    }
    w->cur_pane = to_pane;
    return OBS_OK;
}

static void add_tick(xf_window *w, uint32_t i, uint64_t pane_id, const market_tick *t)
{
    pane *p = &w->panes[(size_t)i * w->n_panes + pane_id % w->n_panes];
    if (p->id != pane_id)
        *p = (pane){.id = pane_id, .min_e4 = INT64_MAX, .max_e4 = INT64_MIN};
    int64_t px;
    if (t->type == MARKET_TRADE) {
        px = t->px_e4;
        p->n_trades++;
        p->volume += t->qty;
        p->pv += (unsigned __int128)(uint64_t)t->px_e4 * t->qty;
    } else {
        /* Both prices are in [1, 1e13], so the sum cannot overflow. */
        px = (t->px_e4 + t->ask_e4) / 2;
        p->n_quotes++;
    }
    if (px < p->min_e4)
        p->min_e4 = px;
    if (px > p->max_e4)
        p->max_e4 = px;
    w->syms[i].last_pane = pane_id;
    activate(w, i);
}

static int xf_window_process(void *instance, const obs_batch *in, obs_out *out)
{
    xf_window *w = instance;
    uint64_t n_bad = 0, n_late = 0, n_full = 0;
    int rc = OBS_OK;
    for (uint32_t r = 0; r < in->n_records; r++) {
        const obs_record *rec = &in->records[r];
        int kind = rec->data ? market_record_kind(rec->data, rec->len) : 0;
        if (kind != MARKET_TRADE && kind != MARKET_QUOTE) {
            n_bad++;
            continue;
        }
        market_tick t;
        memcpy(&t, rec->data, sizeof t);
        uint64_t pane_id = t.ts_ns / w->slide_ns;
        if (!w->have_cur) {
            w->have_cur = 1;
            w->cur_pane = pane_id;
        } else if (pane_id < w->cur_pane) {
            n_late++;
            continue;
        } else if (pane_id > w->cur_pane) {
            if ((rc = advance(w, pane_id, rec->seq, rec->t_intended_ns, out)) != OBS_OK)
                break;
        }
        uint64_t key;
        memcpy(&key, t.sym, sizeof key);
        int64_t i = symbol_index(w, key);
        if (i < 0) {
            n_full++;
            continue;
        }
        add_tick(w, (uint32_t)i, pane_id, &t);
        w->last_seq = rec->seq;
        w->last_t_ns = rec->t_intended_ns;
    }
    if (n_bad)
        w->host->counter_add(w->host, w->c_bad, n_bad);
    if (n_late)
        w->host->counter_add(w->host, w->c_late, n_late);
    if (n_full)
        w->host->counter_add(w->host, w->c_full, n_full);
    return rc;
}

/* Emits every window that still holds a tick. Afterwards all state is
 * closed: a later tick older than the last closed boundary counts as late. */
static int xf_window_flush(void *instance, obs_out *out)
{
    xf_window *w = instance;
    if (!w->have_cur || !out)
        return OBS_OK;
    return advance(w, w->cur_pane + w->n_panes, w->last_seq, w->last_t_ns, out);
}

static void xf_window_fini(void *instance)
{
    xf_window *w = instance;
    if (!w)
        return;
    free_tables(w);
    w->host->free(w->host, w);
}

static int xf_window_init(const obs_host *host, const obs_params *params, void **instance)
{
    const obs_param_value *p_win = obs_param_get(params, "window_ms");
    const obs_param_value *p_slide = obs_param_get(params, "slide_ms");
    const obs_param_value *p_max = obs_param_get(params, "max_symbols");
    if (!p_win || !p_slide || !p_max || p_win->i < 1 || p_slide->i < 1 || p_max->i < 1 ||
        p_win->i > 86400000 || p_max->i > 10000000) {
        host->log(host, OBS_LOG_ERROR, "xf_window: invalid parameters");
        return OBS_EINVAL;
    }
    if (p_win->i % p_slide->i != 0 || p_win->i / p_slide->i > MAX_PANES) {
        host->log(host, OBS_LOG_ERROR,
                  "xf_window: window_ms (%lld) must be a multiple of slide_ms (%lld), "
                  "at most %d times it",
                  (long long)p_win->i, (long long)p_slide->i, MAX_PANES);
        return OBS_EINVAL;
    }
    xf_window *w = host->alloc(host, sizeof *w);
    if (!w)
        return OBS_ENOMEM;
    memset(w, 0, sizeof *w);
    w->host = host;
    w->window_ms = (uint32_t)p_win->i;
    w->slide_ns = (uint64_t)p_slide->i * 1000000u;
    w->n_panes = (uint32_t)(p_win->i / p_slide->i);
    w->max_syms = (uint32_t)p_max->i;
    w->c_bad = host->counter_register(host, "bad_record", OBS_COUNTER_ERROR,
                                      "records that are not binary ticks");
    w->c_late = host->counter_register(host, "late_tick", OBS_COUNTER_ERROR,
                                       "ticks older than the current pane, dropped");
    w->c_full = host->counter_register(host, "symbol_limit", OBS_COUNTER_ERROR,
                                       "ticks dropped because max_symbols was reached");
    int rc = OBS_ENOMEM;
    if (w->c_bad < 0 || w->c_late < 0 || w->c_full < 0) {
        rc = OBS_EPLUGIN;
        goto fail;
    }
    if (grow_tables(w, w->max_syms < INITIAL_SYMBOLS ? w->max_syms : INITIAL_SYMBOLS) != OBS_OK)
        goto fail;
    *instance = w;
    return OBS_OK;

fail:
    xf_window_fini(w);
    return rc;
}

/* ------------------------------------------------------------ hot swap */

/* State layout (little-endian u64 words unless noted):
 *   "OBSXW001", window_ms, slide_ms, have_cur, cur_pane, last_seq, last_t_ns,
 *   n_active, then per active symbol: key (8 symbol bytes), last_pane, and
 *   n_panes panes of: id, n_trades (u32) n_quotes (u32), volume, min_e4,
 *   max_e4, pv low 64 bits, pv high 64 bits. */
#define HEADER_WORDS 8
#define PANE_BYTES 56

static uint8_t *put64(uint8_t *p, uint64_t v)
{
    memcpy(p, &v, 8);
    return p + 8;
}

static const uint8_t *get64(const uint8_t *p, uint64_t *v)
{
    memcpy(v, p, 8);
    return p + 8;
}

/* Serialises the active state into a buffer from host->alloc, which the
 * caller (the host) frees. Returns 0 or OBS_ENOMEM. */
static int xf_window_export(void *instance, void **buf, size_t *len)
{
    xf_window *w = instance;
    size_t per_sym = 16 + (size_t)w->n_panes * PANE_BYTES;
    size_t n = HEADER_WORDS * 8 + (size_t)w->n_active * per_sym;
    uint8_t *b = w->host->alloc(w->host, n);
    if (!b)
        return OBS_ENOMEM;
    uint8_t *p = b;
    memcpy(p, STATE_MAGIC, 8);
    p += 8;
    p = put64(p, w->window_ms);
    p = put64(p, w->slide_ns / 1000000u);
    p = put64(p, (uint64_t)w->have_cur);
    p = put64(p, w->cur_pane);
    p = put64(p, w->last_seq);
    p = put64(p, w->last_t_ns);
    p = put64(p, w->n_active);
    for (uint32_t a = 0; a < w->n_active; a++) {
        uint32_t i = w->active[a];
        p = put64(p, w->syms[i].key);
        p = put64(p, w->syms[i].last_pane);
        const pane *ring = &w->panes[(size_t)i * w->n_panes];
        for (uint32_t k = 0; k < w->n_panes; k++) {
            p = put64(p, ring[k].id);
            p = put64(p, (uint64_t)ring[k].n_trades | (uint64_t)ring[k].n_quotes << 32);
            p = put64(p, ring[k].volume);
            p = put64(p, (uint64_t)ring[k].min_e4);
            p = put64(p, (uint64_t)ring[k].max_e4);
            p = put64(p, (uint64_t)ring[k].pv);
            p = put64(p, (uint64_t)(ring[k].pv >> 64));
        }
    }
    *buf = b;
    *len = n;
    return OBS_OK;
}

/* Replaces this instance's state with one exported by an instance with the
 * same window_ms and slide_ms (else OBS_ESTATE). `buf` is borrowed. On
 * failure the instance is left empty but usable. */
static int xf_window_import(void *instance, const void *buf, size_t len)
{
    xf_window *w = instance;
    const uint8_t *p = buf;
    uint64_t win, slide, have_cur, cur, seq, t_ns, n_active;
    if (len < HEADER_WORDS * 8 || memcmp(p, STATE_MAGIC, 8) != 0)
        return OBS_ESTATE;
    p += 8;
    p = get64(p, &win);
    p = get64(p, &slide);
    p = get64(p, &have_cur);
    p = get64(p, &cur);
    p = get64(p, &seq);
    p = get64(p, &t_ns);
    p = get64(p, &n_active);
    size_t per_sym = 16 + (size_t)w->n_panes * PANE_BYTES;
    if (win != w->window_ms || slide * 1000000u != w->slide_ns || n_active > w->max_syms ||
        (len - HEADER_WORDS * 8) / per_sym != n_active || (len - HEADER_WORDS * 8) % per_sym)
        return OBS_ESTATE;

    /* Start from empty tables large enough for every imported symbol. */
    uint32_t cap = INITIAL_SYMBOLS;
    while (cap < n_active)
        cap *= 2;
    if (cap > w->max_syms)
        cap = w->max_syms;
    free_tables(w);
    w->have_cur = 0;
    if (grow_tables(w, cap) != OBS_OK)
        return OBS_ENOMEM;
    for (uint64_t a = 0; a < n_active; a++) {
        uint64_t key, last, v;
        p = get64(p, &key);
        p = get64(p, &last);
        int64_t i = symbol_index(w, key);
        if (i < 0 || w->syms[i].active_pos != NOT_ACTIVE)
            goto corrupt; /* no room, or the same symbol twice */
        w->syms[i].last_pane = last;
        pane *ring = &w->panes[(size_t)i * w->n_panes];
        for (uint32_t k = 0; k < w->n_panes; k++) {
            uint64_t lo, hi;
            p = get64(p, &ring[k].id);
            p = get64(p, &v);
            ring[k].n_trades = (uint32_t)v;
            ring[k].n_quotes = (uint32_t)(v >> 32);
            p = get64(p, &ring[k].volume);
            p = get64(p, &v);
            ring[k].min_e4 = (int64_t)v;
            p = get64(p, &v);
            ring[k].max_e4 = (int64_t)v;
            p = get64(p, &lo);
            p = get64(p, &hi);
            ring[k].pv = (unsigned __int128)hi << 64 | lo;
            /* A pane must sit in the ring slot of its id. */
            if (ring[k].id != NO_PANE && ring[k].id % w->n_panes != k)
                goto corrupt;
        }
        activate(w, (uint32_t)i);
    }
    w->have_cur = have_cur != 0;
    w->cur_pane = cur;
    w->last_seq = seq;
    w->last_t_ns = t_ns;
    return OBS_OK;

corrupt:
    free_tables(w);
    w->have_cur = 0;
    grow_tables(w, INITIAL_SYMBOLS < w->max_syms ? INITIAL_SYMBOLS : w->max_syms);
    return OBS_ESTATE;
}

static const obs_stage_desc xf_window_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_TRANSFORM,
    .name = "xf_window",
    .version = "1.0.0",
    .description = "per-symbol sliding windows (count, volume, VWAP, min, max) over binary ticks",
    .params = xf_window_params,
    .n_params = sizeof xf_window_params / sizeof xf_window_params[0],
    .init = xf_window_init,
    .process = xf_window_process,
    .flush = xf_window_flush,
    .fini = xf_window_fini,
    .export_state = xf_window_export,
    .import_state = xf_window_import,
};

OBS_DECLARE_STAGE(xf_window_desc)
