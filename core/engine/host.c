/*
 * host.c - host services for plugins (see host.h): logging, counters, the
 * clock and accounted allocation with a fault-injection switch.
 */
#include "engine/host.h"
#include "engine/origin.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static _Atomic int log_level = OBS_LOG_INFO;
static _Atomic uint64_t alloc_fail_countdown; /* 0: off */

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void host_set_log_level(int level)
{
    atomic_store(&log_level, level);
}

static void vlog(const char *who, int level, const char *fmt, va_list ap)
{
    if (level > atomic_load_explicit(&log_level, memory_order_relaxed))
        return;
    if (level < OBS_LOG_ERROR || level > OBS_LOG_DEBUG)
        level = OBS_LOG_ERROR;
    /* One write per message so lines from several threads never interleave. */
    char line[1024];
    int n = snprintf(line, sizeof(line), "hostd: %s%s%s: ", who ? who : "", who ? ": " : "",
                     level_names[level]);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    size_t len = (m < 0) ? (size_t)n : (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    if (len == 0 || line[len - 1] != '\n')
        line[len++] = '\n';
    fwrite(line, 1, len, stderr);
}

void host_log(const char *who, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(who, level, fmt, ap);
    va_end(ap);
}

int host_log_limited(host_log_limit *l, const char *who, int level, const char *fmt, ...)
{
    uint64_t now = host_now_ns();
    if (l->last_ns && now - l->last_ns < HOST_LOG_INTERVAL_NS) {
        l->suppressed++;
        return 0;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (l->suppressed)
        host_log(who, level, "%s (and %" PRIu64 " more like it since the last)", msg,
                 l->suppressed);
    else
        host_log(who, level, "%s", msg);
    l->last_ns = now;
    l->suppressed = 0;
    return 1;
}

static void api_log(const obs_host *h, int level, const char *fmt, ...)
{
    char who[128];
    snprintf(who, sizeof(who), "stage '%s'", h->stage_name);
    va_list ap;
    va_start(ap, fmt);
    vlog(who, level, fmt, ap);
    va_end(ap);
}

static int valid_counter_name(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return n > 0 && n < HOST_NAME_MAX_LEN;
}

static int api_counter_register(const obs_host *api, const char *name, int kind, const char *help)
{
    host_ctx *h = api->host_private;
    if (!name || !valid_counter_name(name) ||
        (kind != OBS_COUNTER_PLAIN && kind != OBS_COUNTER_ERROR)) {
        host_log(api->stage_name, OBS_LOG_ERROR,
                 "counter_register: invalid name or kind ('%s', %d)", name ? name : "(null)", kind);
        return OBS_EINVAL;
    }
    uint32_t n = atomic_load(&h->n_counters);
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(h->counters[i].name, name) == 0)
            return (int)i; /* registering twice returns the same counter */
    if (n == HOST_MAX_COUNTERS)
        return OBS_ENOMEM;
    host_counter *c = &h->counters[n];
    snprintf(c->name, sizeof(c->name), "%s", name);
    snprintf(c->help, sizeof(c->help), "%s", help ? help : "");
    c->kind = kind;
    atomic_store(&c->value, 0);
    atomic_store(&h->n_counters, n + 1); /* publishes the filled entry */
    return (int)n;
}

static void api_counter_add(const obs_host *api, int id, uint64_t delta)
{
    host_ctx *h = api->host_private;
    if (id < 0 || (uint32_t)id >= atomic_load_explicit(&h->n_counters, memory_order_relaxed))
        return;
    /* Single writer: a relaxed load+store is enough and avoids a locked add. */
    _Atomic uint64_t *v = &h->counters[id].value;
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + delta,
                          memory_order_relaxed);
}

uint64_t host_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct timespec host_realtime_in(uint64_t ns)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += (time_t)(ns / 1000000000u);
    t.tv_nsec += (long)(ns % 1000000000u);
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

void host_fail_alloc_after(uint64_t n)
{
    atomic_store(&alloc_fail_countdown, n);
}

static int alloc_should_fail(void)
{
    uint64_t c = atomic_load_explicit(&alloc_fail_countdown, memory_order_relaxed);
    if (c == 0)
        return 0;
    if (c == 1)
        return 1; /* stays at 1: every later allocation fails too */
    atomic_fetch_sub(&alloc_fail_countdown, 1);
    return 0;
}

/* A header in front of each block records its size for the byte account. */
typedef struct alloc_hdr {
    size_t size;
    size_t pad; /* keeps the payload 16-byte aligned like malloc's */
} alloc_hdr;

static void *api_alloc(const obs_host *api, size_t size)
{
    host_ctx *h = api->host_private;
    if (alloc_should_fail() || size > SIZE_MAX - sizeof(alloc_hdr))
        return NULL;
    alloc_hdr *a = malloc(sizeof(*a) + size);
    if (!a)
        return NULL;
    a->size = size;
    atomic_fetch_add_explicit(&h->n_allocs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->alloc_bytes, size, memory_order_relaxed);
    return a + 1;
}

static void api_free(const obs_host *api, void *p)
{
    host_ctx *h = api->host_private;
    if (!p)
        return;
    alloc_hdr *a = (alloc_hdr *)p - 1;
    atomic_fetch_add_explicit(&h->n_frees, 1, memory_order_relaxed);
    free(a);
}

static void *api_realloc(const obs_host *api, void *p, size_t size)
{
    host_ctx *h = api->host_private;
    if (!p)
        return api_alloc(api, size);
    if (alloc_should_fail() || size > SIZE_MAX - sizeof(alloc_hdr))
        return NULL;
    alloc_hdr *a = realloc((alloc_hdr *)p - 1, sizeof(alloc_hdr) + size);
    if (!a)
        return NULL;
    a->size = size;
    atomic_fetch_add_explicit(&h->n_allocs, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->n_frees, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->alloc_bytes, size, memory_order_relaxed);
    return a + 1;
}

int64_t host_wall_offset_ns(void)
{
    /* The read in the middle of two monotonic reads, the pair that lies
     * closest together (least disturbed) of a few. */
    int64_t best = 0;
    uint64_t best_gap = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        struct timespec w;
        uint64_t m0 = host_now_ns();
        clock_gettime(CLOCK_REALTIME, &w);
        uint64_t m1 = host_now_ns();
        if (m1 - m0 < best_gap) {
            best_gap = m1 - m0;
            int64_t wall = (int64_t)w.tv_sec * 1000000000LL + w.tv_nsec;
            best = wall - (int64_t)(m0 + (m1 - m0) / 2);
        }
    }
    return best;
}

static void api_blocked_add(const obs_host *api, uint64_t ns)
{
    host_ctx *h = api->host_private;
    if (h->blocked_into)
        atomic_fetch_add_explicit(h->blocked_into, ns, memory_order_relaxed);
}

static uint64_t api_hold(const obs_host *api)
{
    host_ctx *h = api->host_private;
    origin *o = atomic_load_explicit(&h->consuming, memory_order_relaxed);
    origin_hold(o);
    return (uint64_t)(uintptr_t)o;
}

static void api_release(const obs_host *api, uint64_t token)
{
    (void)api;
    origin_drop((origin *)(uintptr_t)token);
}

void host_ctx_init(host_ctx *h, const char *stage_name, const char *plugin_path, uint64_t seed,
                   uint32_t batch_size, int64_t wall_offset_ns)
{
    memset(h, 0, sizeof(*h));
    h->api = (obs_host){
        .struct_size = sizeof(obs_host),
        .abi_major = OBS_ABI_MAJOR,
        .abi_minor = OBS_ABI_MINOR,
        .stage_name = stage_name,
        .plugin_path = plugin_path,
        .seed = seed,
        .batch_size = batch_size,
        .log = api_log,
        .counter_register = api_counter_register,
        .counter_add = api_counter_add,
        .now_ns = host_now_ns,
        .alloc = api_alloc,
        .realloc = api_realloc,
        .free = api_free,
        .host_private = h,
        .wall_offset_ns = wall_offset_ns,
        .blocked_add = api_blocked_add,
        .hold = api_hold,
        .release = api_release,
    };
}

uint64_t host_error_total(const host_ctx *h)
{
    uint64_t sum = 0;
    uint32_t n = atomic_load(&((host_ctx *)h)->n_counters);
    for (uint32_t i = 0; i < n; i++)
        if (h->counters[i].kind == OBS_COUNTER_ERROR)
            sum += atomic_load_explicit(&((host_ctx *)h)->counters[i].value, memory_order_relaxed);
    return sum;
}

void host_sleep_until(uint64_t t_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(t_ns / 1000000000u),
                          .tv_nsec = (long)(t_ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}
