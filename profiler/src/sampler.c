/*
 * sampler.c - the sampling half of the profiler: attached threads, their
 * CPU-time timers and the SIGPROF handler.
 *
 * Each attached thread owns a slot of a table allocated at init: a ring of
 * fixed-size samples allocated when the slot is first used and reused after
 * that, and a POSIX timer on its own CPU clock (CLOCK_THREAD_CPUTIME_ID)
 * that sends SIGPROF to that thread only (SIGEV_THREAD_ID). Timers run only
 * while a consumer exists (prof_state_arm_locked), so an idle profiler
 * costs nothing. Because the clock is the thread's CPU time, a thread that
 * sleeps or waits is not sampled, and the kernel checks CPU timers at its
 * tick (250 Hz here): a faster rate arrives as overruns, which the sample's
 * weight (1 + si_overrun) keeps in the totals.
 *
 * The handler is async-signal-safe by construction:
 * - no malloc, no locks, no stdio: it writes into the preallocated ring of
 *   the current thread (single producer: only this thread's handler; single
 *   consumer: the collector) with C11 atomics, and finds its slot through an
 *   initial-exec thread-local (a plain %fs-relative load, no
 *   __tls_get_addr); errno is saved and restored;
 * - a second signal arriving while the handler runs (it cannot, SIGPROF is
 *   blocked during its own handler, but another handler might call us) is
 *   counted as dropped, never nested;
 * - libunwind's unw_backtrace is documented signal-safe for local unwinding;
 *   its per-thread trace cache is created at attach time (we unwind once
 *   there), so the handler never triggers that allocation;
 * - the dynamic loader: unw_backtrace looks up unwind tables through
 *   dl_iterate_phdr, which takes the loader's (recursive) write lock and
 *   walks the link-map list. If the signal interrupted the loader itself,
 *   that list may be half-updated, so when the interrupted PC lies inside
 *   ld.so we do not unwind at all and record the leaf PC only (counted as
 *   in_loader). If another thread holds the lock, the handler waits for it
 *   (a bounded wait: that thread is not waiting for us);
 * - the frame-pointer walker reads only words between the interrupted stack
 *   pointer and the top of this thread's stack (recorded at attach), so a
 *   corrupt chain ends the walk instead of faulting.
 *
 * Interface and place in the whole: sampler.h. The table, the rings and
 * the counters the handler writes belong to state.c; the lifecycle
 * (lifecycle.c) installs the handler after the table exists and removes it
 * before the table is freed.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "obs_profiler.h"
#include "observatory/stage.h"
#include "profile.h"
#include "sampler.h"
#include "state.h"
#include "util.h"

static __thread int tls_slot __attribute__((tls_model("initial-exec"))) = -1;
static __thread int tls_reblock; /* SIGPROF was blocked before attach */
static struct sigaction old_action;
static int handler_installed;

int prof_sampler_thread_attached(void)
{
    return tls_slot >= 0;
}

/* Walks the frame-pointer chain from the interrupted registers. Reads only
 * [sp, hi); stops at the first frame that does not move up the stack. */
__attribute__((no_sanitize_address)) static uint32_t fp_walk(uintptr_t pc, uintptr_t fp,
                                                             uintptr_t sp, uintptr_t hi,
                                                             uintptr_t *out, uint32_t max)
{
    uint32_t n = 0;
    out[n++] = pc;
    while (n < max && fp >= sp && fp + 2 * sizeof(uintptr_t) <= hi &&
           (fp & (sizeof(uintptr_t) - 1)) == 0) {
        const uintptr_t *f = (const uintptr_t *)fp;
        uintptr_t next = f[0], ret = f[1];
        if (ret < 4096)
            break;
        out[n++] = ret;
        if (next <= fp)
            break;
        fp = next;
    }
    return n;
}

static void prof_signal_handler(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    int saved_errno = errno;
    int slot = tls_slot;
    if (slot < 0 || si->si_code != SI_TIMER)
        goto out;
    prof_thread *t = &prof_g.threads[slot];
    uint32_t weight = 1u + (uint32_t)(si->si_overrun > 0 ? si->si_overrun : 0);
    if (t->in_handler) {
        atomic_fetch_add_explicit(&t->dropped, weight, memory_order_relaxed);
        goto out;
    }
    t->in_handler = 1;
    atomic_signal_fence(memory_order_seq_cst);
    struct timespec t0 = {0, 0};
    if (prof_g.cfg.measure_handler)
        clock_gettime(CLOCK_MONOTONIC, &t0); /* async-signal-safe (vDSO) */

    uint32_t head = atomic_load_explicit(&t->head, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(&t->tail, memory_order_acquire);
    if (head - tail > prof_g.ring_mask) {
        atomic_fetch_add_explicit(&t->dropped, weight, memory_order_relaxed);
        goto done;
    }
    const ucontext_t *uc = ucv;
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    uintptr_t fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    prof_sample *s = prof_state_sample_at(t, head);
    uint32_t max = prof_g.cfg.max_depth, n;

    if (pc >= prof_g.ldso_lo && pc < prof_g.ldso_hi) {
        s->pc[0] = pc;
        n = 1;
        atomic_fetch_add_explicit(&prof_g.in_loader, 1, memory_order_relaxed);
    } else if (prof_g.cfg.unwinder == OBS_PROF_UNWIND_FP) {
        n = fp_walk(pc, fp, sp, t->stack_hi, s->pc, max);
    } else {
        /* The first frames are this handler and the signal trampoline:
         * keep what starts at the interrupted PC. */
        void *buf[OBS_PROF_MAX_DEPTH + 8];
        int got = unw_backtrace(buf, (int)max + 8);
        int first = -1;
        for (int i = 0; i < got && i < 8; i++)
            if ((uintptr_t)buf[i] == pc) {
                first = i;
                break;
            }
        if (first < 0) {
            s->pc[0] = pc;
            n = 1;
            atomic_fetch_add_explicit(&prof_g.unwind_failed, 1, memory_order_relaxed);
        } else {
            n = 0;
            for (int i = first; i < got && n < max; i++)
                s->pc[n++] = (uintptr_t)buf[i];
        }
    }
    s->depth = n;
    s->weight = weight;
    s->tag = atomic_load_explicit(&t->tag, memory_order_relaxed);
    atomic_store_explicit(&t->head, head + 1, memory_order_release);
    atomic_fetch_add_explicit(&prof_g.n_samples, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&prof_g.weight, weight, memory_order_relaxed);
    if (prof_g.cfg.measure_handler) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        atomic_fetch_add_explicit(&prof_g.handler_ns,
                                  (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL +
                                             (t1.tv_nsec - t0.tv_nsec)),
                                  memory_order_relaxed);
    }
done:
    atomic_signal_fence(memory_order_seq_cst);
    t->in_handler = 0;
out:
    errno = saved_errno;
}

int prof_sampler_install(char *err, size_t errlen)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = prof_signal_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPROF, &sa, &old_action) != 0) {
        prof_err(err, errlen, "profiler: sigaction(SIGPROF): %s", strerror(errno));
        return OBS_EIO;
    }
    handler_installed = 1;
    return 0;
}

void prof_sampler_uninstall(void)
{
    /* Restores whatever was there (gperftools installs its handler when
     * libprofiler is loaded), so that backend works again afterwards. */
    if (handler_installed) {
        /* SIGPROF's default action ends the process, and one may still be
         * pending on some thread after its timer was deleted: ignoring it
         * discards such a signal (POSIX), where the default would kill. */
        struct sigaction sa = old_action;
        if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL)
            sa.sa_handler = SIG_IGN;
        sigaction(SIGPROF, &sa, NULL);
    }
    handler_installed = 0;
}

int obs_prof_tag_intern(const obs_prof_label *labels, size_t n, uint32_t *tag)
{
    if (n > OBS_PROF_MAX_LABELS || (n && !labels))
        return OBS_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!labels[i].key || !labels[i].value)
            return OBS_EINVAL;
    if (atomic_load(&prof_initialised) != 1)
        return OBS_ESTATE;
    pthread_mutex_lock(&prof_g.lock);
    int rc = prof_profile_tag(prof_g.tagdb, labels, n, tag);
    pthread_mutex_unlock(&prof_g.lock);
    return rc;
}

int obs_prof_thread_attach(const obs_prof_label *labels, size_t n)
{
    if (atomic_load(&prof_initialised) != 1)
        return OBS_ESTATE;
    if (tls_slot >= 0)
        return OBS_EAGAIN;
    uint32_t tag;
    int rc = obs_prof_tag_intern(labels, n, &tag);
    if (rc != 0)
        return rc;

    /* Stack bounds for the frame-pointer walker. */
    uintptr_t lo = 0, hi = 0;
    pthread_attr_t attr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        void *addr;
        size_t size;
        if (pthread_attr_getstack(&attr, &addr, &size) == 0) {
            lo = (uintptr_t)addr;
            hi = lo + size;
        }
        pthread_attr_destroy(&attr);
    }

    pthread_mutex_lock(&prof_g.lock);
    prof_thread *t = NULL;
    uint32_t i;
    for (i = 0; i < prof_g.cfg.max_threads; i++)
        if (atomic_load(&prof_g.threads[i].state) == 0) {
            t = &prof_g.threads[i];
            break;
        }
    if (!t) {
        pthread_mutex_unlock(&prof_g.lock);
        return OBS_ENOMEM;
    }
    if (!t->ring) {
        t->ring = calloc(prof_g.cfg.ring_slots, prof_g.sample_size);
        if (!t->ring) {
            pthread_mutex_unlock(&prof_g.lock);
            return OBS_ENOMEM;
        }
    }
    atomic_store(&t->head, 0);
    atomic_store(&t->tail, 0);
    atomic_store(&t->dropped, 0);
    atomic_store(&t->tag, tag);
    t->in_handler = 0;
    t->tid = gettid();
    t->stack_lo = lo;
    t->stack_hi = hi;
    t->timer_ok = 0;
    if (prof_g.cfg.backends & OBS_PROF_BACKEND_NATIVE) {
        struct sigevent sev;
        memset(&sev, 0, sizeof sev);
        sev.sigev_notify = SIGEV_THREAD_ID;
        sev.sigev_signo = SIGPROF;
        sev._sigev_un._tid = t->tid; /* sigev_notify_thread_id: glibc 2.36 lacks the macro */
        sev.sigev_value.sival_int = (int)i;
        if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &t->timer) != 0) {
            pthread_mutex_unlock(&prof_g.lock);
            return OBS_EIO;
        }
        t->timer_ok = 1;
    }
    atomic_store(&t->state, 1);
    tls_slot = (int)i;
    /* Threads are often created with every signal blocked (the pipeline's
     * stage threads are, so that SIGINT/SIGTERM reach the main thread):
     * SIGPROF must get through on a sampled thread. */
    sigset_t prof, old;
    sigemptyset(&prof);
    sigaddset(&prof, SIGPROF);
    pthread_sigmask(SIG_UNBLOCK, &prof, &old);
    tls_reblock = sigismember(&old, SIGPROF) == 1;
    if (prof_g.armed)
        prof_state_timer_set(t, 1);
    pthread_mutex_unlock(&prof_g.lock);

    if (prof_g.cfg.unwinder == OBS_PROF_UNWIND_LIBUNWIND) {
        /* Creates libunwind's per-thread trace cache now, outside any
         * signal handler (its creation may allocate). */
        void *warm[8];
        (void)unw_backtrace(warm, 8);
    }
    return 0;
}

void obs_prof_set_tag(uint32_t tag)
{
    int slot = tls_slot;
    if (slot >= 0)
        atomic_store_explicit(&prof_g.threads[slot].tag, tag, memory_order_relaxed);
}

void obs_prof_thread_detach(void)
{
    int slot = tls_slot;
    if (slot < 0)
        return;
    /* From here a pending SIGPROF finds no slot and does nothing. */
    tls_slot = -1;
    atomic_signal_fence(memory_order_seq_cst);
    if (atomic_load(&prof_initialised) != 1)
        return;
    pthread_mutex_lock(&prof_g.lock);
    prof_thread *t = &prof_g.threads[slot];
    if (t->timer_ok)
        timer_delete(t->timer);
    t->timer_ok = 0;
    atomic_store(&t->state, 2); /* the collector frees the slot once drained */
    pthread_mutex_unlock(&prof_g.lock);
    if (tls_reblock) {
        sigset_t prof;
        sigemptyset(&prof);
        sigaddset(&prof, SIGPROF);
        pthread_sigmask(SIG_BLOCK, &prof, NULL);
        tls_reblock = 0;
    }
}
