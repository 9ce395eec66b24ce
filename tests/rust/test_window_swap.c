/*
 * test_window_swap.c - hot swaps between xf_window (C) and its Rust port
 * xf_window_rs on a live pipeline: gen_market -> xf_json_fast -> window
 * stage -> sink_windowcheck at full speed, swapped C -> Rust -> C -> ...
 * with the state handed over each time (both plugins read and write the
 * same state format). Nothing may be lost and no window emitted twice:
 * every tick the window stage took in is counted in exactly
 * window_ms / slide_ms window records, and each symbol's windows arrive
 * at increasing end times. A swap that flushes instead of handing over
 * is shown to break the second property, so the check can see a bad swap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../unit/stage_test_util.h"
#include "config/config.h"
#include "engine/pipeline.h"
#include "engine/snapshot.h"
#include "engine/swap.h"

#define N_PANES 4 /* window_ms / slide_ms below */

typedef struct running {
    obs_config *cfg;
    pipeline *p;
    pthread_t thread;
    int rc;
} running;

static void *run_thread(void *arg)
{
    running *r = arg;
    r->rc = pipeline_run(r->p, NULL, NULL);
    return NULL;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void start(running *r)
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "pipeline: window-swaps\n"
             "plugin_dirs: [%s, %s]\n"
             "batch_size: 256\n"
             "run: {duration: 0}\n"
             "load: [{shape: max}]\n"
             "stages:\n"
             "  - {name: ticks, plugin: gen_market}\n"
             "  - {name: parse, plugin: xf_json_fast}\n"
             "  - {name: win, plugin: xf_window, params: {window_ms: 40, slide_ms: 10}}\n"
             "  - {name: check, plugin: sink_windowcheck}\n",
             getenv("OBS_PLUGIN_DIR"), getenv("OBS_TEST_PLUGIN_DIR"));
    char err[2048];
    memset(r, 0, sizeof *r);
    if (config_load_string("window-swaps.yaml", yaml, &r->cfg, err, sizeof err) != 0)
        fail_msg("config: %s", err);
    if (pipeline_create(r->cfg, NULL, 0, &r->p, err, sizeof err) != 0)
        fail_msg("pipeline_create: %s", err);
    pthread_create(&r->thread, NULL, run_thread, r);
    for (int i = 0; i < 500 && atomic_load(&r->p->stages[2].stats.records_in) < 10000; i++)
        sleep_ms(2);
}

static void swap_to(running *r, const char *plugin, int handover)
{
    swap_spec spec = {.plugin = plugin, .no_handover = !handover};
    swap_result res;
    char err[1024];
    if (pipeline_swap(r->p, "win", &spec, &res, err, sizeof err) != 0)
        fail_msg("swap to %s: %s", plugin, err);
    assert_string_equal(res.new_plugin, plugin);
    assert_int_equal(res.state, handover ? SWAP_STATE_HANDED_OVER : SWAP_STATE_FLUSHED);
    /* Let windows open and close on the new side before the next swap. */
    uint64_t seen = atomic_load(&r->p->stages[2].stats.records_in);
    for (int i = 0; i < 500 && atomic_load(&r->p->stages[2].stats.records_in) < seen + 100000; i++)
        sleep_ms(2);
}

/* Stops and joins; the stages of the chain saw every record once, and
 * the window stage took every tick (none late, none bad, none over the
 * symbol limit). Returns the ticks the window stage took in. */
static uint64_t stop(running *r)
{
    pipeline_stop(r->p);
    pthread_join(r->thread, NULL);
    assert_int_equal(r->rc, 0);
    stage *gen = &r->p->stages[0], *parse = &r->p->stages[1], *win = &r->p->stages[2];
    assert_true(gen->stats.records_out > 0);
    assert_int_equal(parse->stats.records_in, gen->stats.records_out);
    assert_int_equal(win->stats.records_in, parse->stats.records_out);
    assert_int_equal(counter(parse, "parse_error") + counter(parse, "schema_error"), 0);
    assert_int_equal(counter(win, "late_tick"), 0);
    assert_int_equal(counter(win, "bad_record"), 0);
    assert_int_equal(counter(win, "symbol_limit"), 0);
    return win->stats.records_in;
}

static void test_swaps_hand_windows_over(void **state)
{
    (void)state;
    running r;
    start(&r);
    const int n = 6;
    for (int i = 0; i < n; i++)
        swap_to(&r, i % 2 == 0 ? "xf_window_rs" : "xf_window", 1);
    uint64_t ticks = stop(&r);
    stage *sink = &r.p->stages[3];
    printf("# %d swaps C <-> Rust: %llu ticks into the window stage, %llu window records "
           "holding %llu ticks (%d panes per window)\n",
           n, (unsigned long long)ticks, (unsigned long long)counter(sink, "windows"),
           (unsigned long long)counter(sink, "window_ticks"), N_PANES);
    assert_int_equal(counter(sink, "not_window"), 0);
    assert_int_equal(counter(sink, "untracked_symbols"), 0);
    assert_int_equal(counter(sink, "window_repeats"), 0);
    assert_int_equal(counter(sink, "window_ticks"), N_PANES * ticks);
    obs_snapshot snap;
    assert_int_equal(pipeline_snapshot(r.p, &snap), 0);
    assert_string_equal(snap.stages[2].plugin, "xf_window");
    assert_int_equal(snap.stages[2].n_swaps, n);
    snapshot_free(&snap);
    pipeline_destroy(r.p);
    config_free(r.cfg);
}

/* The same swap C -> Rust without handover: the C instance flushes its
 * open windows, the Rust one opens them again, and the sink sees windows
 * emitted twice (while still no tick is lost: each is in N_PANES windows). */
static void test_flush_swap_is_visible(void **state)
{
    (void)state;
    running r;
    start(&r);
    swap_to(&r, "xf_window_rs", 0);
    uint64_t ticks = stop(&r);
    stage *sink = &r.p->stages[3];
    printf("# swap without handover: %llu windows emitted twice\n",
           (unsigned long long)counter(sink, "window_repeats"));
    assert_true(counter(sink, "window_repeats") > 0);
    assert_int_equal(counter(sink, "window_ticks"), N_PANES * ticks);
    pipeline_destroy(r.p);
    config_free(r.cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swaps_hand_windows_over),
        cmocka_unit_test(test_flush_swap_is_visible),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
