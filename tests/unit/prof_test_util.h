/*
 * prof_test_util.h - what the profiler tests share: loading a tp_burn
 * version and registering it in the profiler's module registry the way
 * core/engine/plugin.c will (path, build-id, mapped range, load bias), and a
 * burner thread that attaches itself and calls the plugin until it has
 * used a given amount of CPU time. Header-only, private to tests/unit/.
 */
#ifndef PROF_TEST_UTIL_H
#define PROF_TEST_UTIL_H

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obs_profiler.h"
#include "observatory/stage.h"

typedef struct tp_loaded {
    void *handle;
    const obs_stage_desc *desc;
    char path[1024];
    uintptr_t start, end, bias;
    uint8_t build_id[64];
    size_t build_id_len;
    uint32_t module;
} tp_loaded;

static int tp_phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    tp_loaded *l = arg;
    if (!info->dlpi_name || strcmp(info->dlpi_name, l->path) != 0)
        return 0;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD) {
            uintptr_t a = info->dlpi_addr + ph->p_vaddr;
            lo = a < lo ? a : lo;
            hi = a + ph->p_memsz > hi ? a + ph->p_memsz : hi;
        } else if (ph->p_type == PT_NOTE) {
            const uint8_t *p = (const uint8_t *)(info->dlpi_addr + ph->p_vaddr);
            const ElfW(Nhdr) *nh = (const void *)p;
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_descsz <= 64) {
                memcpy(l->build_id, p + sizeof *nh + ((nh->n_namesz + 3) & ~3u), nh->n_descsz);
                l->build_id_len = nh->n_descsz;
            }
        }
    }
    l->start = lo;
    l->end = hi;
    l->bias = info->dlpi_addr;
    return 1;
}

/* Opens <OBS_TEST_PLUGIN_DIR>/<file> and, if register_it, adds it to the
 * module registry. Returns 0 or -1 (message printed). */
static int tp_load(const char *file, tp_loaded *l, int register_it)
{
    const char *dir = getenv("OBS_TEST_PLUGIN_DIR");
    memset(l, 0, sizeof *l);
    snprintf(l->path, sizeof l->path, "%s/%s", dir ? dir : "tests/plugins", file);
    l->handle = dlopen(l->path, RTLD_NOW | RTLD_LOCAL);
    if (!l->handle) {
        fprintf(stderr, "dlopen %s: %s\n", l->path, dlerror());
        return -1;
    }
    const obs_stage_desc *(*entry)(void) =
        (const obs_stage_desc *(*)(void))dlsym(l->handle, "obs_stage_entry");
    l->desc = entry ? entry() : NULL;
    dl_iterate_phdr(tp_phdr_cb, l);
    if (!l->desc || !l->start)
        return -1;
    if (!register_it)
        return 0;
    obs_prof_module_info mi = {.path = l->path,
                               .build_id = l->build_id,
                               .build_id_len = l->build_id_len,
                               .start = l->start,
                               .end = l->end,
                               .load_bias = l->bias};
    char err[256];
    if (obs_prof_module_add(&mi, &l->module, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    return 0;
}

static inline double tp_thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct tp_burner {
    const obs_stage_desc *desc;
    obs_prof_label labels[OBS_PROF_MAX_LABELS];
    size_t n_labels;
    double cpu_s;        /* stop after this much thread CPU time */
    volatile int *stop;  /* or when *stop (may be NULL) */
    int attach_rc;
    pthread_t thread;
} tp_burner;

/* A frame between the thread's start and the plugin, so tests can check
 * that stacks reach the caller. */
__attribute__((noinline)) static void tp_burn_driver(tp_burner *b)
{
    double t0 = tp_thread_cpu_s();
    while (tp_thread_cpu_s() - t0 < b->cpu_s && !(b->stop && *b->stop))
        b->desc->process(NULL, NULL, NULL);
    __asm__ volatile("" ::: "memory"); /* not a tail call: keep this frame */
}

static void *tp_burner_main(void *arg)
{
    tp_burner *b = arg;
    b->attach_rc = obs_prof_thread_attach(b->labels, b->n_labels);
    tp_burn_driver(b);
    obs_prof_thread_detach();
    return NULL;
}

static inline int tp_burner_start(tp_burner *b)
{
    return pthread_create(&b->thread, NULL, tp_burner_main, b);
}

#endif /* PROF_TEST_UTIL_H */
