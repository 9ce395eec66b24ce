/*
 * natsframe.c - the batch frame and record headers that carry records
 * through NATS JetStream (format and contracts: natsframe.h). Compiled
 * into sink_nats (encoder) and gen_nats (decoder); the decoder takes bytes
 * from the network, so every length is checked against what is left
 * before anything is read, and a refusal says which bound was broken.
 */
#include "natsframe.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static inline void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

OBS_PRINTF(3, 4)
static int refuse(char *why, size_t why_len, const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return OBS_EINVAL;
}

size_t natsframe_size(const obs_record *records, uint32_t n)
{
    if (n == 0 || n > NATSFRAME_MAX_RECORDS)
        return 0;
    size_t total = NATSFRAME_HEADER_LEN;
    for (uint32_t i = 0; i < n; i++) {
        size_t rec = (size_t)NATSFRAME_RECORD_HEADER_LEN + records[i].len;
        if (total > SIZE_MAX - rec)
            return 0;
        total += rec;
    }
    return total;
}

size_t natsframe_encode(uint8_t *dst, size_t cap, const obs_record *records, uint32_t n,
                        int64_t wall_offset_ns)
{
    size_t need = natsframe_size(records, n);
    if (need == 0 || cap < need)
        return 0;
    memcpy(dst, NATSFRAME_MAGIC, 4);
    dst[4] = NATSFRAME_VERSION;
    put_u32(dst + 5, n);
    uint8_t *p = dst + NATSFRAME_HEADER_LEN;
    for (uint32_t i = 0; i < n; i++) {
        const obs_record *r = &records[i];
        put_u64(p, r->seq);
        put_u64(p + 8, (uint64_t)natsframe_to_wall(r->t_intended_ns, wall_offset_ns));
        put_u32(p + 16, r->key);
        put_u32(p + 20, r->len);
        p += NATSFRAME_RECORD_HEADER_LEN;
        if (r->len)
            memcpy(p, r->data, r->len);
        p += r->len;
    }
    return need;
}

int natsframe_open(natsframe_reader *r, const void *buf, size_t len, char *why, size_t why_len)
{
    const uint8_t *b = buf;
    memset(r, 0, sizeof *r);
    if (len < NATSFRAME_HEADER_LEN)
        return refuse(why, why_len, "frame of %zu bytes is shorter than its %u-byte header", len,
                      NATSFRAME_HEADER_LEN);
    if (memcmp(b, NATSFRAME_MAGIC, 4) != 0)
        return refuse(why, why_len, "no batch frame: magic %02x %02x %02x %02x, expected 'OBSB'",
                      b[0], b[1], b[2], b[3]);
    if (b[4] != NATSFRAME_VERSION)
        return refuse(why, why_len, "frame version %u, this build reads version %u", b[4],
                      NATSFRAME_VERSION);
    uint32_t n = get_u32(b + 5);
    size_t body = len - NATSFRAME_HEADER_LEN;
    if (n == 0)
        return refuse(why, why_len, "frame holds no records");
    if (n > NATSFRAME_MAX_RECORDS || n > body / NATSFRAME_RECORD_HEADER_LEN)
        return refuse(why, why_len, "frame claims %u records, its %zu bytes hold at most %zu", n,
                      len, body / NATSFRAME_RECORD_HEADER_LEN);
    size_t off = NATSFRAME_HEADER_LEN;
    for (uint32_t i = 0; i < n; i++) {
        if (len - off < NATSFRAME_RECORD_HEADER_LEN)
            return refuse(why, why_len, "record %u of %u: header cut short at byte %zu of %zu", i,
                          n, off, len);
        uint32_t rlen = get_u32(b + off + 20);
        off += NATSFRAME_RECORD_HEADER_LEN;
        if (rlen > len - off)
            return refuse(why, why_len, "record %u of %u: length %u but only %zu bytes are left", i,
                          n, rlen, len - off);
        off += rlen;
    }
    if (off != len)
        return refuse(why, why_len, "%zu bytes after the last of %u records", len - off, n);
    r->buf = b;
    r->len = len;
    r->off = NATSFRAME_HEADER_LEN;
    r->n_records = n;
    r->next = 0;
    return OBS_OK;
}

int natsframe_next(natsframe_reader *r, natsframe_record *out)
{
    /* The bounds were checked by natsframe_open; these checks only keep a
     * reader that was tampered with from walking off its buffer. */
    if (r->next >= r->n_records || r->len - r->off < NATSFRAME_RECORD_HEADER_LEN)
        return 0;
    const uint8_t *p = r->buf + r->off;
    uint32_t len = get_u32(p + 20);
    if (len > r->len - r->off - NATSFRAME_RECORD_HEADER_LEN)
        return 0;
    out->seq = get_u64(p);
    out->wall_ns = (int64_t)get_u64(p + 8);
    out->key = get_u32(p + 16);
    out->len = len;
    out->data = p + NATSFRAME_RECORD_HEADER_LEN;
    r->off += NATSFRAME_RECORD_HEADER_LEN + (size_t)len;
    r->next++;
    return 1;
}

uint32_t natsframe_seq_hash(const obs_record *records, uint32_t n)
{
    uint32_t h = 2166136261u;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t s = records[i].seq;
        for (int k = 0; k < 8; k++) {
            h ^= (uint8_t)(s >> (8 * k));
            h *= 16777619u;
        }
    }
    return h;
}

char *natsframe_batch_id(char *dst, const obs_record *records, uint32_t n)
{
    snprintf(dst, NATSFRAME_ID_LEN, "b%llu-%u-%08x", (unsigned long long)(n ? records[0].seq : 0),
             n, natsframe_seq_hash(records, n));
    return dst;
}

char *natsframe_fmt_u64(char *dst, uint64_t v)
{
    snprintf(dst, NATSFRAME_NUM_LEN, "%llu", (unsigned long long)v);
    return dst;
}

char *natsframe_fmt_i64(char *dst, int64_t v)
{
    snprintf(dst, NATSFRAME_NUM_LEN, "%lld", (long long)v);
    return dst;
}

int natsframe_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!s || !*s)
        return OBS_EINVAL;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return OBS_EINVAL;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return OBS_EINVAL;
        v = v * 10 + d;
    }
    if (v > max)
        return OBS_EINVAL;
    *out = v;
    return OBS_OK;
}

int natsframe_parse_i64(const char *s, int64_t *out)
{
    if (!s)
        return OBS_EINVAL;
    int neg = *s == '-';
    uint64_t mag;
    /* INT64_MIN's magnitude is one more than INT64_MAX. */
    if (natsframe_parse_u64(s + neg, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &mag))
        return OBS_EINVAL;
    *out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    return OBS_OK;
}

int natsframe_record_from_headers(const char *seq, const char *time, const char *key,
                                  const void *data, size_t len, natsframe_record *out, char *why,
                                  size_t why_len)
{
    uint64_t k;
    if (!seq || !time || !key)
        return refuse(why, why_len, "record message without header %s",
                      !seq    ? NATSFRAME_HDR_SEQ
                      : !time ? NATSFRAME_HDR_TIME
                              : NATSFRAME_HDR_KEY);
    if (natsframe_parse_u64(seq, UINT64_MAX, &out->seq))
        return refuse(why, why_len, "header %s '%.32s' is not a decimal u64", NATSFRAME_HDR_SEQ,
                      seq);
    if (natsframe_parse_i64(time, &out->wall_ns))
        return refuse(why, why_len, "header %s '%.32s' is not a decimal i64", NATSFRAME_HDR_TIME,
                      time);
    if (natsframe_parse_u64(key, UINT32_MAX, &k))
        return refuse(why, why_len, "header %s '%.32s' is not a decimal u32", NATSFRAME_HDR_KEY,
                      key);
    if (len > UINT32_MAX)
        return refuse(why, why_len, "record of %zu bytes is longer than 4 GiB", len);
    out->key = (uint32_t)k;
    out->len = (uint32_t)len;
    out->data = data;
    return OBS_OK;
}
