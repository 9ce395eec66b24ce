/*
 * natsframe.h - how records travel in NATS JetStream messages between
 * hostd processes (sink_nats writes them, gen_nats reads them).
 *
 * Two framings. "batch": one message holds a whole batch in a compact
 * little-endian frame,
 *
 *   offset 0   char[4] magic "OBSB"
 *          4   u8      version (1)
 *          5   u32     record count, at least 1
 *          9   records, each: u64 seq | i64 intended wall-clock ns |
 *                             u32 key | u32 len | len bytes
 *
 * with the message id "b<first seq>-<count>-<hash>" (hash: 32-bit FNV-1a
 * over the records' seqs, as 8 little-endian bytes each, 8 hex digits), so
 * that the same records republished get the same id and JetStream's
 * duplicate window removes the copy. "record": one message per record, the
 * bytes as the message's data and the numbers in headers (Obs-Seq,
 * Obs-Time, Obs-Key, decimal; Nats-Msg-Id the decimal seq).
 *
 * Intended times cross processes as wall-clock nanoseconds (the host's
 * CLOCK_MONOTONIC time plus obs_host.wall_offset_ns): natsframe_to_wall and
 * natsframe_from_wall convert, saturating instead of wrapping.
 *
 * Nothing here allocates or knows libnats: the functions work on byte
 * spans and strings, so the unit test and the fuzzer drive them directly.
 */
#ifndef OBS_NATSFRAME_H
#define OBS_NATSFRAME_H

#include <stddef.h>
#include <stdint.h>

#include <observatory/stage.h>

#define NATSFRAME_MAGIC "OBSB"
#define NATSFRAME_VERSION 1
#define NATSFRAME_HEADER_LEN 9u
#define NATSFRAME_RECORD_HEADER_LEN 24u
/* More records than any batch holds (batch_size is at most 65536). */
#define NATSFRAME_MAX_RECORDS (1u << 20)

/* Header names of the record framing and of the end-of-stream mark. */
#define NATSFRAME_HDR_MSG_ID "Nats-Msg-Id"
#define NATSFRAME_HDR_SEQ "Obs-Seq"
#define NATSFRAME_HDR_TIME "Obs-Time"
#define NATSFRAME_HDR_KEY "Obs-Key"
#define NATSFRAME_HDR_EOS_RECORDS "Obs-EOS-Records"

/* Room for a batch message id: "b" + 20 digits + "-" + 10 digits + "-" +
 * 8 hex digits + NUL. */
#define NATSFRAME_ID_LEN 48
/* Room for a decimal int64/uint64 and its NUL. */
#define NATSFRAME_NUM_LEN 24
/* Room for a decode failure reason. */
#define NATSFRAME_WHY_LEN 128

/* One decoded record. `data` points into the frame given to
 * natsframe_open: valid as long as that buffer is. */
typedef struct natsframe_record {
    uint64_t seq;
    int64_t wall_ns;
    uint32_t key;
    uint32_t len;
    const uint8_t *data;
} natsframe_record;

/* A validated frame being read record by record. Plain data: copy it to
 * remember a position (gen_nats splits a message over several batches). */
typedef struct natsframe_reader {
    const uint8_t *buf;
    size_t len;
    size_t off;         /* where the next record starts */
    uint32_t n_records; /* records in the frame */
    uint32_t next;      /* index of the next record */
} natsframe_reader;

/* The wall-clock time of a monotonic intended time, saturating at the
 * int64 range. */
static inline int64_t natsframe_to_wall(uint64_t t_intended_ns, int64_t wall_offset_ns)
{
    if (t_intended_ns > (uint64_t)INT64_MAX)
        t_intended_ns = (uint64_t)INT64_MAX;
    int64_t r;
    if (__builtin_add_overflow((int64_t)t_intended_ns, wall_offset_ns, &r))
        return wall_offset_ns > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/* The monotonic intended time of a wall-clock time, clamped at 0 (a time
 * before this host's monotonic epoch). */
static inline uint64_t natsframe_from_wall(int64_t wall_ns, int64_t wall_offset_ns)
{
    int64_t r;
    if (__builtin_sub_overflow(wall_ns, wall_offset_ns, &r))
        return wall_offset_ns < 0 ? (uint64_t)INT64_MAX : 0;
    return r < 0 ? 0 : (uint64_t)r;
}

/* Bytes the batch frame of records[0 .. n) takes, or 0 when it would not
 * fit a size_t or n is 0 or above NATSFRAME_MAX_RECORDS. */
size_t natsframe_size(const obs_record *records, uint32_t n);

/* Writes the batch frame of records[0 .. n) into dst (cap bytes), intended
 * times converted with wall_offset_ns. Returns the bytes written, or 0 when
 * cap is smaller than natsframe_size() or that is 0. */
size_t natsframe_encode(uint8_t *dst, size_t cap, const obs_record *records, uint32_t n,
                        int64_t wall_offset_ns);

/* Checks the whole frame buf[0 .. len): magic, version, count, every
 * record's bounds, nothing after the last record; nothing is read outside
 * the span. Returns 0 and sets up *r to read the records, or OBS_EINVAL
 * with the reason in why (why_len bytes, may be 0). The reader borrows buf. */
int natsframe_open(natsframe_reader *r, const void *buf, size_t len, char *why, size_t why_len);

/* Reads the next record of an opened frame into *out. Returns 1, or 0 when
 * every record has been read. */
int natsframe_next(natsframe_reader *r, natsframe_record *out);

/* FNV-1a 32 over the seqs of records[0 .. n), 8 little-endian bytes each. */
uint32_t natsframe_seq_hash(const obs_record *records, uint32_t n);

/* Writes the batch message id "b<first>-<n>-<hash>" into dst (at least
 * NATSFRAME_ID_LEN bytes). Returns dst. */
char *natsframe_batch_id(char *dst, const obs_record *records, uint32_t n);

/* Decimal text of v into dst (at least NATSFRAME_NUM_LEN bytes). Returns dst. */
char *natsframe_fmt_u64(char *dst, uint64_t v);
char *natsframe_fmt_i64(char *dst, int64_t v);

/* Strict decimal parsers: digits only (a leading '-' for i64), at least
 * one, no space, no overflow; u64 values above max are refused. Return 0
 * or OBS_EINVAL. */
int natsframe_parse_u64(const char *s, uint64_t max, uint64_t *out);
int natsframe_parse_i64(const char *s, int64_t *out);

/* The record of a record-framed message from its three header values
 * (NULL: header missing) and its data. Returns 0, or OBS_EINVAL with the
 * reason in why. */
int natsframe_record_from_headers(const char *seq, const char *time, const char *key,
                                  const void *data, size_t len, natsframe_record *out, char *why,
                                  size_t why_len);

#endif /* OBS_NATSFRAME_H */
