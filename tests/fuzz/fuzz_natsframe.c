/*
 * fuzz_natsframe.c - libFuzzer harness for the decoder of the batch frame
 * and the record headers that gen_nats reads from NATS
 * (plugins/common/natsframe.c, compiled in for coverage).
 *
 * Each input is one message body, copied into an allocation of exactly its
 * size so that ASan sees any read past it. When natsframe_open accepts it,
 * the records must account for every byte, their count must match, and
 * encoding them again (when every intended time is representable) must
 * give back the input byte for byte. The input is also cut at its first
 * two NUL bytes into three header values for
 * natsframe_record_from_headers, whose accepted numbers must print back to
 * the same text. Crashes, sanitizer reports and broken properties are
 * findings.
 *
 *   CC=clang cmake -S . -B build-fuzz -G Ninja && ninja -C build-fuzz fuzz_natsframe
 *   mkdir -p build-fuzz/corpus-natsframe
 *   build-fuzz/tests/fuzz/fuzz_natsframe -dict=tests/fuzz/natsframe.dict -max_total_time=300 \
 *       build-fuzz/corpus-natsframe
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <observatory/stage.h>

#include "natsframe.h"

static void check_frame(const uint8_t *buf, size_t len)
{
    natsframe_reader rd;
    char why[NATSFRAME_WHY_LEN];
    why[0] = '\0';
    if (natsframe_open(&rd, buf, len, why, sizeof why) != OBS_OK) {
        if (why[0] == '\0')
            abort(); /* a refusal always says why */
        return;
    }
    uint32_t n = rd.n_records;
    obs_record *recs = malloc(n * sizeof *recs);
    if (!recs)
        abort();
    size_t bytes = NATSFRAME_HEADER_LEN;
    int representable = 1;
    natsframe_record r;
    uint32_t i = 0;
    while (natsframe_next(&rd, &r)) {
        if (i >= n || r.data < buf || r.data + r.len > buf + len)
            abort();
        bytes += NATSFRAME_RECORD_HEADER_LEN + r.len;
        representable &= r.wall_ns >= 0;
        recs[i++] = (obs_record){.data = r.data,
                                 .len = r.len,
                                 .key = r.key,
                                 .seq = r.seq,
                                 .t_intended_ns = (uint64_t)r.wall_ns};
    }
    if (i != n || bytes != len)
        abort();
    if (representable) {
        uint8_t *again = malloc(len);
        if (!again || natsframe_encode(again, len, recs, n, 0) != len ||
            memcmp(again, buf, len) != 0)
            abort();
        free(again);
    }
    free(recs);
}

static void check_headers(const uint8_t *data, size_t size)
{
    /* "seq\0time\0key\0rest": three NUL-terminated strings and a body. */
    const char *s[3];
    size_t at = 0;
    for (int k = 0; k < 3; k++) {
        const uint8_t *nul = memchr(data + at, 0, size - at);
        if (!nul)
            return;
        s[k] = (const char *)data + at;
        at = (size_t)(nul - data) + 1;
    }
    natsframe_record r;
    char why[NATSFRAME_WHY_LEN], back[NATSFRAME_NUM_LEN];
    if (natsframe_record_from_headers(s[0], s[1], s[2], data + at, size - at, &r, why,
                                      sizeof why) != OBS_OK)
        return;
    /* Accepted numbers are canonical unless they have leading zeros. */
    if ((s[0][0] != '0' || !s[0][1]) && strcmp(natsframe_fmt_u64(back, r.seq), s[0]) != 0)
        abort();
    if (r.len != size - at || r.data != data + at)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        abort();
    memcpy(buf, data, size);
    check_frame(buf, size);
    check_headers(buf, size);
    free(buf);
    return 0;
}
