/*
 * test_natsframe.c - the batch frame and record headers that carry records
 * between hostd processes over NATS (plugins/common/natsframe.c).
 *
 * Checked: a batch survives encode + decode exactly (seq, key, bytes, and
 * the intended time through the wall clock and back); every prefix of a
 * valid frame, and a frame with bytes after its last record, is refused
 * without a read outside the buffer (each probe has its own exact-size
 * allocation, so ASan sees an overread); record counts and lengths larger
 * than the frame can hold are refused with a reason; the message id is the
 * same for the same records and differs when any seq differs; the decimal
 * header helpers accept exactly the numbers of their range; the time
 * conversions saturate instead of wrapping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <observatory/stage.h>

#include "natsframe.h"

#define N_REC 5

static uint8_t payload[N_REC][300];

/* Five records of lengths 0, 1, 7, 100 and 300 with distinct seqs, keys
 * and times. */
static void make_records(obs_record *r)
{
    static const uint32_t lens[N_REC] = {0, 1, 7, 100, 300};
    for (int i = 0; i < N_REC; i++) {
        for (uint32_t k = 0; k < lens[i]; k++)
            payload[i][k] = (uint8_t)(i * 31 + k);
        r[i] = (obs_record){.data = payload[i],
                            .len = lens[i],
                            .key = 0x9e3779b9u * (uint32_t)(i + 1),
                            .seq = 1000 + (uint64_t)i * 3,
                            .t_intended_ns = 5000000000ull + (uint64_t)i * 12345};
    }
}

/* A copy of buf[0 .. len) in its own allocation of exactly len bytes. */
static uint8_t *exact_copy(const uint8_t *buf, size_t len)
{
    uint8_t *p = malloc(len ? len : 1);
    assert_non_null(p);
    if (len)
        memcpy(p, buf, len);
    return p;
}

/* Encodes the five records; returns the frame (caller frees) and its length. */
static uint8_t *encode(const obs_record *r, uint32_t n, int64_t offset, size_t *len)
{
    size_t size = natsframe_size(r, n);
    assert_true(size > 0);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    assert_int_equal(natsframe_encode(buf, size, r, n, offset), size);
    *len = size;
    return buf;
}

static void test_round_trip(void **state)
{
    (void)state;
    obs_record r[N_REC];
    make_records(r);
    const int64_t offsets[] = {0, 1700000000000000000ll, -4000000000ll};
    for (size_t o = 0; o < sizeof offsets / sizeof offsets[0]; o++) {
        size_t len;
        uint8_t *buf = encode(r, N_REC, offsets[o], &len);
        assert_int_equal(len, NATSFRAME_HEADER_LEN + N_REC * NATSFRAME_RECORD_HEADER_LEN + 408);
        assert_memory_equal(buf, "OBSB", 4);
        natsframe_reader rd;
        char why[NATSFRAME_WHY_LEN] = "";
        assert_int_equal(natsframe_open(&rd, buf, len, why, sizeof why), OBS_OK);
        assert_int_equal(rd.n_records, N_REC);
        for (int i = 0; i < N_REC; i++) {
            natsframe_record d;
            assert_int_equal(natsframe_next(&rd, &d), 1);
            assert_int_equal(d.seq, r[i].seq);
            assert_int_equal(d.key, r[i].key);
            assert_int_equal(d.len, r[i].len);
            assert_memory_equal(d.data, r[i].data, r[i].len);
            assert_int_equal(d.wall_ns, (int64_t)r[i].t_intended_ns + offsets[o]);
            assert_int_equal(natsframe_from_wall(d.wall_ns, offsets[o]), r[i].t_intended_ns);
        }
        natsframe_record d;
        assert_int_equal(natsframe_next(&rd, &d), 0);
        free(buf);
    }
}

static void test_encode_bounds(void **state)
{
    (void)state;
    obs_record r[N_REC];
    make_records(r);
    size_t size = natsframe_size(r, N_REC);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    assert_int_equal(natsframe_encode(buf, size - 1, r, N_REC, 0), 0);
    assert_int_equal(natsframe_size(r, 0), 0);
    assert_int_equal(natsframe_encode(buf, size, r, 0, 0), 0);
    free(buf);
}

static void test_truncated_refused(void **state)
{
    (void)state;
    obs_record r[N_REC];
    make_records(r);
    size_t len;
    uint8_t *buf = encode(r, N_REC, 0, &len);
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *p = exact_copy(buf, cut);
        natsframe_reader rd;
        char why[NATSFRAME_WHY_LEN] = "";
        assert_int_equal(natsframe_open(&rd, p, cut, why, sizeof why), OBS_EINVAL);
        assert_true(strlen(why) > 0);
        free(p);
    }
    /* One byte too many is refused as well. */
    uint8_t *longer = malloc(len + 1);
    assert_non_null(longer);
    memcpy(longer, buf, len);
    longer[len] = 0;
    natsframe_reader rd;
    char why[NATSFRAME_WHY_LEN] = "";
    assert_int_equal(natsframe_open(&rd, longer, len + 1, why, sizeof why), OBS_EINVAL);
    assert_non_null(strstr(why, "after the last"));
    free(longer);
    free(buf);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void test_oversized_refused(void **state)
{
    (void)state;
    obs_record r[N_REC];
    make_records(r);
    size_t len;
    uint8_t *buf = encode(r, N_REC, 0, &len);
    const uint32_t counts[] = {N_REC + 1, 1000, NATSFRAME_MAX_RECORDS + 1, UINT32_MAX, 0};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        uint8_t *p = exact_copy(buf, len);
        put_u32(p + 5, counts[c]);
        natsframe_reader rd;
        char why[NATSFRAME_WHY_LEN] = "";
        assert_int_equal(natsframe_open(&rd, p, len, why, sizeof why), OBS_EINVAL);
        assert_true(strlen(why) > 0);
        free(p);
    }
    /* A header claiming 2^32 - 1 records in a header-only frame. */
    uint8_t hdr[NATSFRAME_HEADER_LEN] = {'O', 'B', 'S', 'B', NATSFRAME_VERSION};
    put_u32(hdr + 5, UINT32_MAX);
    uint8_t *p = exact_copy(hdr, sizeof hdr);
    natsframe_reader rd;
    char why[NATSFRAME_WHY_LEN] = "";
    assert_int_equal(natsframe_open(&rd, p, sizeof hdr, why, sizeof why), OBS_EINVAL);
    assert_non_null(strstr(why, "claims"));
    free(p);
    /* Each record's length field made larger than what is left. */
    size_t off = NATSFRAME_HEADER_LEN;
    for (int i = 0; i < N_REC; i++) {
        const uint32_t bad[] = {r[i].len + 1, UINT32_MAX, (uint32_t)len};
        for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            p = exact_copy(buf, len);
            put_u32(p + off + 20, bad[b]);
            assert_int_equal(natsframe_open(&rd, p, len, why, sizeof why), OBS_EINVAL);
            free(p);
        }
        off += NATSFRAME_RECORD_HEADER_LEN + r[i].len;
    }
    /* Wrong magic and version. */
    p = exact_copy(buf, len);
    p[0] = 'X';
    assert_int_equal(natsframe_open(&rd, p, len, why, sizeof why), OBS_EINVAL);
    assert_non_null(strstr(why, "magic"));
    p[0] = 'O';
    p[4] = NATSFRAME_VERSION + 1;
    assert_int_equal(natsframe_open(&rd, p, len, why, sizeof why), OBS_EINVAL);
    assert_non_null(strstr(why, "version"));
    free(p);
    free(buf);
}

static void test_msg_id(void **state)
{
    (void)state;
    obs_record a[N_REC], b[N_REC];
    make_records(a);
    make_records(b);
    char ia[NATSFRAME_ID_LEN], ib[NATSFRAME_ID_LEN];
    natsframe_batch_id(ia, a, N_REC);
    natsframe_batch_id(ib, b, N_REC);
    assert_string_equal(ia, ib);
    assert_true(strncmp(ia, "b1000-5-", 8) == 0);
    assert_int_equal(strlen(ia), 16);
    /* Other bytes, keys or times: the same id (it names the records by seq). */
    b[2].key ^= 1;
    b[2].t_intended_ns += 7;
    natsframe_batch_id(ib, b, N_REC);
    assert_string_equal(ia, ib);
    /* Any other seq, even with the same first seq and count: another id. */
    for (int i = 1; i < N_REC; i++) {
        make_records(b);
        b[i].seq += 1;
        natsframe_batch_id(ib, b, N_REC);
        assert_string_not_equal(ia, ib);
    }
    /* Fewer records: another id. */
    natsframe_batch_id(ib, a, N_REC - 1);
    assert_string_not_equal(ia, ib);
    /* The largest id fits. */
    obs_record big = {.seq = UINT64_MAX};
    natsframe_batch_id(ib, &big, 1);
    assert_true(strlen(ib) < NATSFRAME_ID_LEN);
}

static void test_numbers(void **state)
{
    (void)state;
    char buf[NATSFRAME_NUM_LEN];
    uint64_t u;
    int64_t i;
    const uint64_t us[] = {0, 1, 42, UINT32_MAX, UINT64_MAX};
    for (size_t k = 0; k < sizeof us / sizeof us[0]; k++) {
        assert_int_equal(natsframe_parse_u64(natsframe_fmt_u64(buf, us[k]), UINT64_MAX, &u), 0);
        assert_int_equal(u, us[k]);
    }
    const int64_t is[] = {0, -1, 1, INT64_MIN, INT64_MAX};
    for (size_t k = 0; k < sizeof is / sizeof is[0]; k++) {
        assert_int_equal(natsframe_parse_i64(natsframe_fmt_i64(buf, is[k]), &i), 0);
        assert_int_equal(i, is[k]);
    }
    const char *bad_u[] = {
        "", "-1", "+1", " 1", "1 ", "1a", "0x10", "18446744073709551616", "99999999999999999999"};
    for (size_t k = 0; k < sizeof bad_u / sizeof bad_u[0]; k++)
        assert_int_equal(natsframe_parse_u64(bad_u[k], UINT64_MAX, &u), OBS_EINVAL);
    assert_int_equal(natsframe_parse_u64("4294967296", UINT32_MAX, &u), OBS_EINVAL);
    assert_int_equal(natsframe_parse_u64("4294967295", UINT32_MAX, &u), 0);
    const char *bad_i[] = {"", "-", "--1", "9223372036854775808", "-9223372036854775809", "1.5"};
    for (size_t k = 0; k < sizeof bad_i / sizeof bad_i[0]; k++)
        assert_int_equal(natsframe_parse_i64(bad_i[k], &i), OBS_EINVAL);
    assert_int_equal(natsframe_parse_u64(NULL, UINT64_MAX, &u), OBS_EINVAL);
    assert_int_equal(natsframe_parse_i64(NULL, &i), OBS_EINVAL);
}

static void test_record_headers(void **state)
{
    (void)state;
    natsframe_record r;
    char why[NATSFRAME_WHY_LEN];
    const char data[] = "abc";
    assert_int_equal(
        natsframe_record_from_headers("7", "-5", "4294967295", data, 3, &r, why, sizeof why), 0);
    assert_int_equal(r.seq, 7);
    assert_int_equal(r.wall_ns, -5);
    assert_int_equal(r.key, UINT32_MAX);
    assert_int_equal(r.len, 3);
    assert_ptr_equal(r.data, data);
    assert_int_equal(natsframe_record_from_headers(NULL, "1", "1", data, 3, &r, why, sizeof why),
                     OBS_EINVAL);
    assert_non_null(strstr(why, NATSFRAME_HDR_SEQ));
    assert_int_equal(natsframe_record_from_headers("1", NULL, "1", data, 3, &r, why, sizeof why),
                     OBS_EINVAL);
    assert_non_null(strstr(why, NATSFRAME_HDR_TIME));
    assert_int_equal(
        natsframe_record_from_headers("1", "1", "4294967296", data, 3, &r, why, sizeof why),
        OBS_EINVAL);
    assert_non_null(strstr(why, NATSFRAME_HDR_KEY));
    assert_int_equal(natsframe_record_from_headers("x", "1", "1", data, 3, &r, why, sizeof why),
                     OBS_EINVAL);
}

static void test_time_conversions(void **state)
{
    (void)state;
    assert_int_equal(natsframe_to_wall(10, 5), 15);
    assert_int_equal(natsframe_to_wall(10, -15), -5);
    assert_int_equal(natsframe_to_wall(UINT64_MAX, 1), INT64_MAX);
    assert_int_equal(natsframe_to_wall((uint64_t)INT64_MAX, INT64_MAX), INT64_MAX);
    assert_int_equal(natsframe_from_wall(15, 5), 10);
    assert_int_equal(natsframe_from_wall(4, 5), 0); /* before this host's epoch: clamped */
    assert_int_equal(natsframe_from_wall(INT64_MIN, INT64_MAX), 0);
    assert_int_equal(natsframe_from_wall(INT64_MAX, INT64_MIN), (uint64_t)INT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_encode_bounds),
        cmocka_unit_test(test_truncated_refused),
        cmocka_unit_test(test_oversized_refused),
        cmocka_unit_test(test_msg_id),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_record_headers),
        cmocka_unit_test(test_time_conversions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
