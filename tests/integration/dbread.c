/*
 * tests/integration/dbread.c - obs-dbread: reads a sink_rocksdb directory
 * back, for integration tests of hostd.
 *
 *   obs-dbread [--seqs] <dir>
 *
 * Opens the database read-only, scans every key in order and prints
 *   keys=N ordered=1|0 first_seq=S last_seq=L
 * The seq of a record is taken from its key: an 8-byte key is a big-endian
 * seq (sink_rocksdb key=seq); a 24-byte key is sym[8] | ts | seq, all
 * big-endian (key=symbol_time). ordered=1 when, in key order, seqs increase
 * strictly (seq keys) or never decrease within a symbol (symbol_time keys:
 * time order agrees with stream order; xf_window records closed by the same
 * tick share its seq). first_seq / last_seq are the
 * smallest and largest seq. With --seqs it also checks that the seqs cover
 * first_seq..last_seq exactly once and prints
 *   seqs=complete|incomplete missing=M duplicates=D
 * Exit status: 0 on success (and, with --seqs, complete coverage), 1 on a
 * coverage failure, 2 on usage or database errors.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rocksdb/c.h>

static uint64_t load_be64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int check_seqs = 0;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--seqs") == 0)
            check_seqs = 1;
        else if (!dir && argv[i][0] != '-')
            dir = argv[i];
        else
            dir = NULL, i = argc;
    }
    if (!dir) {
        fprintf(stderr, "usage: obs-dbread [--seqs] <rocksdb dir>\n");
        return 2;
    }

    int rc = 2;
    char *err = NULL;
    uint64_t *seqs = NULL;
    size_t n = 0, cap = 0;
    int ordered = 1, have_prev = 0;
    char prev_sym[8] = {0};
    uint64_t prev_seq = 0;
    rocksdb_options_t *opts = rocksdb_options_create();
    rocksdb_readoptions_t *ropts = rocksdb_readoptions_create();
    rocksdb_iterator_t *it = NULL;
    rocksdb_t *db = rocksdb_open_for_read_only(opts, dir, 0, &err);
    if (err) {
        fprintf(stderr, "obs-dbread: cannot open '%s': %s\n", dir, err);
        goto out;
    }

    it = rocksdb_create_iterator(db, ropts);
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const char *key = rocksdb_iter_key(it, &klen);
        uint64_t seq;
        if (klen == 8) {
            seq = load_be64(key);
            if (have_prev && seq <= prev_seq)
                ordered = 0;
        } else if (klen == 24) {
            seq = load_be64(key + 16);
            /* Windows closed by the same tick share its seq: equal is fine. */
            if (have_prev && memcmp(prev_sym, key, 8) == 0 && seq < prev_seq)
                ordered = 0;
            memcpy(prev_sym, key, 8);
        } else {
            fprintf(stderr, "obs-dbread: key %zu has length %zu, expected 8 or 24\n", n, klen);
            goto out;
        }
        have_prev = 1;
        prev_seq = seq;
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            uint64_t *s = realloc(seqs, cap * sizeof *s);
            if (!s) {
                fprintf(stderr, "obs-dbread: out of memory\n");
                goto out;
            }
            seqs = s;
        }
        seqs[n++] = seq;
    }
    rocksdb_iter_get_error(it, &err);
    if (err) {
        fprintf(stderr, "obs-dbread: scan of '%s' failed: %s\n", dir, err);
        goto out;
    }

    qsort(seqs, n, sizeof *seqs, cmp_u64);
    uint64_t first = n ? seqs[0] : 0, last = n ? seqs[n - 1] : 0;
    printf("keys=%zu ordered=%d first_seq=%llu last_seq=%llu\n", n, ordered,
           (unsigned long long)first, (unsigned long long)last);
    rc = 0;
    if (check_seqs) {
        uint64_t dups = 0, distinct = n ? 1 : 0;
        for (size_t i = 1; i < n; i++) {
            if (seqs[i] == seqs[i - 1])
                dups++;
            else
                distinct++;
        }
        uint64_t missing = n ? (last - first + 1) - distinct : 0;
        int complete = missing == 0 && dups == 0;
        printf("seqs=%s missing=%llu duplicates=%llu\n", complete ? "complete" : "incomplete",
               (unsigned long long)missing, (unsigned long long)dups);
        rc = complete ? 0 : 1;
    }

out:
    if (err)
        rocksdb_free(err);
    if (it)
        rocksdb_iter_destroy(it);
    if (db)
        rocksdb_close(db);
    rocksdb_readoptions_destroy(ropts);
    rocksdb_options_destroy(opts);
    free(seqs);
    return rc;
}
