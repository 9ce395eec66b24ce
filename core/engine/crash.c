/*
 * crash.c - the fatal-signal handler that names the stage a crash came
 * from. What it writes and why it can: crash.h.
 */
#include "engine/crash.h"

#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "engine/plugin.h"
#include "engine/stage.h"

#define ALT_STACK_SIZE (64 * 1024)
#define MAX_FRAMES 48

static __thread const stage *crash_stage __attribute__((tls_model("initial-exec")));
static __thread void *crash_altstack __attribute__((tls_model("initial-exec")));
static char record_path[4096];
static volatile sig_atomic_t crashing;

/* A bounded buffer filled without stdio. */
typedef struct cbuf {
    char b[8192];
    size_t n;
} cbuf;

static void put(cbuf *c, const char *s)
{
    while (s && *s && c->n < sizeof c->b - 1)
        c->b[c->n++] = *s++;
}

static void put_u64(cbuf *c, uint64_t v, int base)
{
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = "0123456789abcdef"[v % (uint64_t)base];
        v /= (uint64_t)base;
    } while (v && i < (int)sizeof tmp);
    while (i > 0 && c->n < sizeof c->b - 1)
        c->b[c->n++] = tmp[--i];
}

static void put_hex(cbuf *c, uint64_t v)
{
    put(c, "0x");
    put_u64(c, v, 16);
}

static const char *signal_text(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV (invalid memory access)";
    case SIGBUS: return "SIGBUS (bus error)";
    case SIGILL: return "SIGILL (illegal instruction)";
    case SIGFPE: return "SIGFPE (arithmetic error)";
    case SIGABRT: return "SIGABRT (abort)";
    }
    return "a fatal signal";
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void on_fatal(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    if (crashing++)
        return; /* SA_RESETHAND: the default action follows */
    cbuf c = {.n = 0};
    const stage *s = crash_stage;
    put(&c, "hostd: CRASH: ");
    if (s) {
        const stage_slot *sl = stage_active(s);
        const obs_module *m = sl ? sl->module : NULL;
        put(&c, "stage '");
        put(&c, s->cfg->name);
        put(&c, "'");
        if (s->n_instances > 1) {
            put(&c, " instance ");
            put_u64(&c, s->instance, 10);
        }
        if (sl && sl->desc) {
            put(&c, ", plugin ");
            put(&c, sl->desc->name);
            put(&c, " ");
            put(&c, sl->desc->version);
        }
        if (m) {
            put(&c, ", build-id ");
            for (size_t i = 0; i < m->build_id_len; i++) {
                put(&c, (char[]){"0123456789abcdef"[m->build_id[i] >> 4], 0});
                put(&c, (char[]){"0123456789abcdef"[m->build_id[i] & 15], 0});
            }
            if (!m->build_id_len)
                put(&c, "none");
            put(&c, ", file ");
            put(&c, m->path);
        }
        uint64_t since = atomic_load_explicit(&((stage *)s)->in_callback_since_ns,
                                              memory_order_relaxed);
        put(&c, since ? ", inside its " : ", between callbacks");
        if (since)
            put(&c, s->kind == OBS_KIND_GENERATOR   ? "generate callback"
                    : s->kind == OBS_KIND_TRANSFORM ? "process callback"
                                                    : "consume callback");
    } else {
        put(&c, "outside the stage threads");
    }
    put(&c, ": ");
    put(&c, signal_text(sig));
    if (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE) {
        put(&c, " at address ");
        put_hex(&c, (uint64_t)(uintptr_t)si->si_addr);
    }
    put(&c, "\nbacktrace (frames in the plugin as file+offset, for addr2line -e FILE OFFSET):\n");
    void *frames[MAX_FRAMES];
    int n = unw_backtrace(frames, MAX_FRAMES);
    const obs_module *m = s && stage_active(s) ? stage_active(s)->module : NULL;
    for (int i = 0; i < n; i++) {
        uintptr_t pc = (uintptr_t)frames[i];
        put(&c, "  #");
        put_u64(&c, (uint64_t)i, 10);
        put(&c, " ");
        put_hex(&c, pc);
        if (m && pc >= m->start && pc < m->end) {
            put(&c, " ");
            put(&c, m->path);
            put(&c, "+");
            put_hex(&c, pc - m->load_bias - (i > 0)); /* a return address: its call */
        }
        put(&c, "\n");
    }
    int fd = record_path[0] ? open(record_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
    write_all(2, c.b, c.n);
    if (fd >= 0)
        write_all(fd, c.b, c.n);
    const char *names = "frames by name:\n";
    write_all(2, names, strlen(names));
    backtrace_symbols_fd(frames, n, 2);
    if (fd >= 0) {
        write_all(fd, names, strlen(names));
        backtrace_symbols_fd(frames, n, fd);
        close(fd);
    }
}

void crash_install(void)
{
    /* backtrace_symbols_fd's first use may load libgcc: not in a handler. */
    void *warm[2];
    int n = backtrace(warm, 2);
    (void)n;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fatal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

void crash_set_record(const char *path)
{
    snprintf(record_path, sizeof record_path, "%s", path ? path : "");
}

void crash_thread_enter(const stage *s)
{
    crash_stage = s;
    /* Stage threads start with every signal blocked, and a blocked fault
     * signal kills without running its handler: these come from the thread
     * itself, so they are let through here. */
    sigset_t faults;
    sigemptyset(&faults);
    sigaddset(&faults, SIGSEGV);
    sigaddset(&faults, SIGBUS);
    sigaddset(&faults, SIGILL);
    sigaddset(&faults, SIGFPE);
    sigaddset(&faults, SIGABRT);
    pthread_sigmask(SIG_UNBLOCK, &faults, NULL);
    if (!crash_altstack && (crash_altstack = malloc(ALT_STACK_SIZE))) {
        stack_t st = {.ss_sp = crash_altstack, .ss_size = ALT_STACK_SIZE, .ss_flags = 0};
        if (sigaltstack(&st, NULL) != 0) {
            free(crash_altstack);
            crash_altstack = NULL;
        }
    }
}

void crash_thread_leave(void)
{
    crash_stage = NULL;
    if (crash_altstack) {
        stack_t st = {.ss_flags = SS_DISABLE};
        sigaltstack(&st, NULL);
        free(crash_altstack);
        crash_altstack = NULL;
    }
}

void crash_record_path(const char *store_dir, unsigned long long run_id, char *buf,
                       unsigned long len)
{
    snprintf(buf, len, "%s/crash-run-%llu.txt", store_dir, run_id);
}
