/*
 * fuzz_xf_iot.c - libFuzzer harness for xf_iot's record parsers
 * (plugins/xf_iot/xf_iot.c, compiled in so that it carries the coverage
 * instrumentation): JSON, binary and above all msgpack, whose decoder is
 * libmsgpack behind the allocation guard of plugins/common/mpk.h. Each input
 * is one record, given to process() as a batch of one; the input with its
 * first byte replaced by the fixmap-of-7 header 0x87 is a second record, so
 * that most inputs reach the msgpack path. Crashes, sanitizer reports, an
 * allocation beyond libFuzzer's -malloc_limit_mb (what an unguarded
 * container header would ask for) and a record not counted on exactly one
 * of the four outcome counters are findings.
 *
 *   CC=clang cmake -S . -B build-fuzz -G Ninja && ninja -C build-fuzz fuzz_xf_iot
 *   mkdir -p build-fuzz/corpus-iot
 *   build-fuzz/tests/fuzz/fuzz_xf_iot -dict=tests/fuzz/msgpack.dict -max_total_time=300 \
 *       build-fuzz/corpus-iot
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <observatory/stage.h>

const obs_stage_desc *obs_stage_entry(void);

static uint64_t counters[8];
static int n_counters;

static void fz_log(const obs_host *h, int level, const char *fmt, ...)
{
    (void)h, (void)level, (void)fmt;
}

static int fz_counter_register(const obs_host *h, const char *name, int kind, const char *help)
{
    (void)h, (void)name, (void)kind, (void)help;
    return n_counters < 8 ? n_counters++ : OBS_ENOMEM;
}

static void fz_counter_add(const obs_host *h, int id, uint64_t delta)
{
    (void)h;
    if (id < 0 || id >= n_counters)
        abort();
    counters[id] += delta;
}

static uint64_t fz_now_ns(void)
{
    return 0;
}

static void *fz_alloc(const obs_host *h, size_t size)
{
    (void)h;
    return malloc(size ? size : 1);
}

static void *fz_realloc(const obs_host *h, void *p, size_t size)
{
    (void)h;
    return realloc(p, size ? size : 1);
}

static void fz_free(const obs_host *h, void *p)
{
    (void)h;
    free(p);
}

static int fz_grow(obs_out *o, uint32_t n_records, uint64_t n_bytes)
{
    if (o->cap_records - o->n_records < n_records) {
        uint32_t cap = o->cap_records ? 2 * o->cap_records : 16;
        obs_record *r = realloc(o->records, cap * sizeof *r);
        if (!r)
            return OBS_ENOMEM;
        o->records = r, o->cap_records = cap;
    }
    if (o->arena_cap - o->arena_used < n_bytes + 8) {
        uint64_t cap = o->arena_cap ? 2 * o->arena_cap : 4096;
        while (cap - o->arena_used < n_bytes + 8)
            cap *= 2;
        uint8_t *a = realloc(o->arena, cap);
        if (!a)
            return OBS_ENOMEM;
        o->arena = a, o->arena_cap = cap; /* committed records are not read again */
    }
    return OBS_OK;
}

static const obs_stage_desc *desc;
static void *instance;
static obs_out out = {.grow = fz_grow};

/* One xf_iot instance for the whole run (every=1, so each valid reading
 * emits a summary; max_devices small, so device state stays small). */
static void setup(void)
{
    static obs_host host = {
        .struct_size = sizeof(obs_host),
        .abi_major = OBS_ABI_MAJOR,
        .abi_minor = OBS_ABI_MINOR,
        .stage_name = "fuzz",
        .plugin_path = "xf_iot",
        .batch_size = 1,
        .log = fz_log,
        .counter_register = fz_counter_register,
        .counter_add = fz_counter_add,
        .now_ns = fz_now_ns,
        .alloc = fz_alloc,
        .realloc = fz_realloc,
        .free = fz_free,
    };
    static const obs_param_value values[2] = {
        {.name = "every", .type = OBS_PARAM_INT, .i = 1, .d = 1, .s = "1"},
        {.name = "max_devices", .type = OBS_PARAM_INT, .i = 4096, .d = 4096, .s = "4096"},
    };
    static const obs_params params = {.values = values, .n_values = 2};
    desc = obs_stage_entry();
    if (desc->init(&host, &params, &instance) != OBS_OK || n_counters != 4)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!desc)
        setup();
    if (size > 1 << 16)
        return 0;
    /* The record bytes in their own allocation, so that ASan sees a read
     * past the end. */
    uint8_t *a = malloc(size ? size : 1), *b = malloc(size ? size : 1);
    if (!a || !b)
        abort();
    memcpy(a, data, size);
    memcpy(b, data, size);
    if (size)
        b[0] = 0x87;
    obs_record r[2] = {{.data = a, .len = (uint32_t)size, .seq = 1},
                       {.data = b, .len = (uint32_t)size, .seq = 2}};
    obs_batch batch = {.records = r, .n_records = 2};
    uint64_t before = counters[0] + counters[1] + counters[2] + counters[3];
    out.n_records = 0, out.arena_used = 0, out.n_passed = 0;
    if (desc->process(instance, &batch, &out) != OBS_OK)
        abort();
    if (counters[0] + counters[1] + counters[2] + counters[3] != before + 2)
        abort();
    free(a);
    free(b);
    return 0;
}
