/*
 * sink_seqcheck.c - a sink that proves no record was lost or duplicated.
 *
 * The generator numbers records (seq = first_seq + i, never reused), and
 * every stage in between must deliver each record exactly once and in
 * order. This sink checks exactly that on the stream it receives: each seq
 * must be the previous one plus one. A jump forward counts the skipped
 * numbers as gaps (lost records); a seq at or below the last one seen counts
 * as a duplicate (repeated or reordered). The counts go to host counters
 * (seq_records, seq_gaps, seq_dups; the last two are error counters) and, at
 * flush, into one line in the file named by the optional `report` parameter:
 *
 *   seqcheck records=N first=A last=B gaps=G dups=D
 *
 * (with ` key_order=K key_conflicts=C` appended in the modes below)
 *
 * (first and last are 0 when no record arrived). With fail_on_error=true,
 * flush returns OBS_EPLUGIN if any gap or duplicate was seen, so a pipeline
 * run fails loudly. With `times`, every record's intended time is appended
 * to that file as a native-endian uint64, in arrival order. The pipeline and
 * hot-swap tests use it end to end.
 *
 * Behind parallel instances the stream is no longer in total order, so
 * `order` says what to check: `total` (the default, above), `key` (each
 * seq exactly once, and within one record key increasing: what
 * `partition: key` promises), or `none` (each seq exactly once). In the
 * last two, gaps are the numbers between the lowest and the highest seq
 * that never came, counted at flush, and a seq seen twice is a duplicate;
 * a key whose seq went backwards counts on seq_key_order. With
 * exclusive_keys=true the instances of this sink in one process check
 * together that every key reaches only one of them (seq_key_conflicts).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <observatory/stage.h>

/* indexes into obs_params, declaration order */
enum { P_REPORT, P_FAIL_ON_ERROR, P_TIMES, P_ORDER, P_EXCLUSIVE };
enum { ORDER_TOTAL, ORDER_KEY, ORDER_NONE };

static const obs_param_desc seq_params[] = {
    [P_REPORT] = {.name = "report",
                  .type = OBS_PARAM_STRING,
                  .default_value = "",
                  .min = 1,
                  .max = 0,
                  .help = "file to write the summary line to at flush (empty: none)"},
    [P_FAIL_ON_ERROR] = {.name = "fail_on_error",
                         .type = OBS_PARAM_BOOL,
                         .default_value = "false",
                         .min = 1,
                         .max = 0,
                         .help = "make flush fail when a gap or duplicate was seen"},
    [P_TIMES] = {.name = "times",
                 .type = OBS_PARAM_STRING,
                 .default_value = "",
                 .min = 1,
                 .max = 0,
                 .help = "file to write every record's intended time to (empty: none)"},
    [P_ORDER] = {.name = "order",
                 .type = OBS_PARAM_STRING,
                 .default_value = "total",
                 .min = 1,
                 .max = 8,
                 .help = "total (each seq the previous + 1), key (exactly once, in order per "
                         "key) or none (exactly once)"},
    [P_EXCLUSIVE] = {.name = "exclusive_keys",
                     .type = OBS_PARAM_BOOL,
                     .default_value = "false",
                     .min = 1,
                     .max = 0,
                     .help = "count keys that reach more than one instance of this sink"},
};

/* exclusive_keys: which instance saw each key first, shared by the
 * instances of the process. */
static struct {
    pthread_mutex_t mu;
    uint32_t *keys;
    const void **owner;
    size_t n, cap;
    int users;
} owners = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Returns 1 when `key` already belongs to another instance than `me`. */
static int key_conflict(uint32_t key, const void *me)
{
    pthread_mutex_lock(&owners.mu);
    int conflict = 0;
    size_t i = 0;
    while (i < owners.n && owners.keys[i] != key)
        i++;
    if (i < owners.n) {
        conflict = owners.owner[i] != me;
    } else {
        if (owners.n == owners.cap) {
            size_t cap = owners.cap ? owners.cap * 2 : 256;
            uint32_t *k = realloc(owners.keys, cap * sizeof *k);
            if (k)
                owners.keys = k;
            const void **o = realloc(owners.owner, cap * sizeof *o);
            if (o)
                owners.owner = o;
            if (k && o)
                owners.cap = cap;
        }
        if (owners.n < owners.cap) {
            owners.keys[owners.n] = key;
            owners.owner[owners.n++] = me;
        }
    }
    pthread_mutex_unlock(&owners.mu);
    return conflict;
}

typedef struct seqcheck {
    const obs_host *host;
    const char *report; /* borrowed from params: valid until fini */
    bool fail_on_error;
    FILE *times;
    bool any; /* a record has been seen */
    uint64_t first, last;
    uint64_t records, gaps, dups;
    int c_records, c_gaps, c_dups;
    /* order key/none: the seqs seen (a bit each, from 0) and their range. */
    int order;
    bool exclusive;
    uint8_t *seen;
    uint64_t seen_bytes, distinct, lo, hi;
    /* order key: the last seq of each key (open addressing, key 0 too). */
    uint32_t *kt_key;
    uint64_t *kt_last;
    uint8_t *kt_used;
    size_t kt_cap, kt_n;
    uint64_t key_order, conflicts;
    int c_key_order, c_conflicts;
} seqcheck;

/* Marks seq as seen; returns 1 when it already was, -1 out of memory. */
static int seen_set(seqcheck *s, uint64_t seq)
{
    uint64_t byte = seq / 8;
    if (byte >= s->seen_bytes) {
        uint64_t n = s->seen_bytes ? s->seen_bytes : 4096;
        while (n <= byte)
            n *= 2;
        uint8_t *b = s->host->realloc(s->host, s->seen, n);
        if (!b)
            return -1;
        memset(b + s->seen_bytes, 0, n - s->seen_bytes);
        s->seen = b;
        s->seen_bytes = n;
    }
    uint8_t bit = (uint8_t)(1u << (seq % 8));
    int was = (s->seen[byte] & bit) != 0;
    s->seen[byte] |= bit;
    return was;
}

/* The last seq of `key` in the key table (grown at half full); *fresh
 * when the key is new. NULL when out of memory. */
static uint64_t *key_last(seqcheck *s, uint32_t key, int *fresh)
{
    if (2 * (s->kt_n + 1) > s->kt_cap) {
        size_t cap = s->kt_cap ? s->kt_cap * 2 : 1024;
        uint32_t *k = calloc(cap, sizeof *k);
        uint64_t *l = calloc(cap, sizeof *l);
        uint8_t *u = calloc(cap, 1);
        if (!k || !l || !u) {
            free(k), free(l), free(u);
            return NULL;
        }
        for (size_t i = 0; i < s->kt_cap; i++)
            if (s->kt_used[i]) {
                size_t j = (s->kt_key[i] * 2654435761u) & (cap - 1);
                while (u[j])
                    j = (j + 1) & (cap - 1);
                k[j] = s->kt_key[i], l[j] = s->kt_last[i], u[j] = 1;
            }
        free(s->kt_key), free(s->kt_last), free(s->kt_used);
        s->kt_key = k, s->kt_last = l, s->kt_used = u, s->kt_cap = cap;
    }
    size_t j = (key * 2654435761u) & (s->kt_cap - 1);
    while (s->kt_used[j] && s->kt_key[j] != key)
        j = (j + 1) & (s->kt_cap - 1);
    *fresh = !s->kt_used[j];
    if (*fresh) {
        s->kt_used[j] = 1;
        s->kt_key[j] = key;
        s->kt_n++;
    }
    return &s->kt_last[j];
}

static int seq_init(const obs_host *host, const obs_params *params, void **instance)
{
    seqcheck *s = host->alloc(host, sizeof *s);
    if (!s)
        return OBS_ENOMEM;
    *s = (seqcheck){.host = host};
    s->report = params->values[P_REPORT].s;
    s->fail_on_error = params->values[P_FAIL_ON_ERROR].i != 0;
    const char *order = params->values[P_ORDER].s;
    s->order = strcmp(order, "key") == 0     ? ORDER_KEY
               : strcmp(order, "none") == 0  ? ORDER_NONE
               : strcmp(order, "total") == 0 ? ORDER_TOTAL
                                             : -1;
    if (s->order < 0) {
        host->log(host, OBS_LOG_ERROR, "seqcheck: order '%s': expected total, key or none", order);
        host->free(host, s);
        return OBS_EINVAL;
    }
    s->exclusive = params->values[P_EXCLUSIVE].i != 0;
    if (params->values[P_TIMES].s[0]) {
        s->times = fopen(params->values[P_TIMES].s, "wb");
        if (!s->times) {
            host->log(host, OBS_LOG_ERROR, "seqcheck: cannot write %s: %s",
                      params->values[P_TIMES].s, strerror(errno));
            host->free(host, s);
            return OBS_EIO;
        }
    }
    s->c_records =
        host->counter_register(host, "seq_records", OBS_COUNTER_PLAIN, "records received");
    s->c_gaps = host->counter_register(host, "seq_gaps", OBS_COUNTER_ERROR,
                                       "sequence numbers skipped (records lost)");
    s->c_dups = host->counter_register(host, "seq_dups", OBS_COUNTER_ERROR,
                                       "records at or below the last seq seen (duplicated or "
                                       "reordered)");
    s->c_key_order = host->counter_register(host, "seq_key_order", OBS_COUNTER_ERROR,
                                            "records whose seq is below the last of their key");
    s->c_conflicts = host->counter_register(host, "seq_key_conflicts", OBS_COUNTER_ERROR,
                                            "records of a key another instance also received");
    if (s->c_records < 0 || s->c_gaps < 0 || s->c_dups < 0 || s->c_key_order < 0 ||
        s->c_conflicts < 0) {
        int rc = s->c_records < 0 ? s->c_records : s->c_gaps < 0 ? s->c_gaps : s->c_dups;
        if (s->times)
            fclose(s->times);
        host->free(host, s);
        return rc;
    }
    if (s->exclusive) {
        pthread_mutex_lock(&owners.mu);
        owners.users++;
        pthread_mutex_unlock(&owners.mu);
    }
    *instance = s;
    return OBS_OK;
}

/* order key/none: exactly once (and per key in order). */
static int consume_unordered(seqcheck *s, const obs_batch *in)
{
    uint64_t dups = 0, key_order = 0, conflicts = 0;
    for (uint32_t i = 0; i < in->n_records; i++) {
        const obs_record *r = &in->records[i];
        int was = seen_set(s, r->seq);
        if (was < 0)
            return OBS_ENOMEM;
        if (was) {
            dups++;
        } else {
            s->distinct++;
            s->lo = !s->any || r->seq < s->lo ? r->seq : s->lo;
            s->hi = !s->any || r->seq > s->hi ? r->seq : s->hi;
            s->any = true;
        }
        if (s->order == ORDER_KEY) {
            int fresh;
            uint64_t *last = key_last(s, r->key, &fresh);
            if (!last)
                return OBS_ENOMEM;
            if (!fresh && r->seq <= *last)
                key_order++;
            else
                *last = r->seq;
        }
        if (s->exclusive && key_conflict(r->key, s))
            conflicts++;
    }
    s->records += in->n_records;
    s->dups += dups;
    s->key_order += key_order;
    s->conflicts += conflicts;
    s->host->counter_add(s->host, s->c_records, in->n_records);
    if (dups)
        s->host->counter_add(s->host, s->c_dups, dups);
    if (key_order)
        s->host->counter_add(s->host, s->c_key_order, key_order);
    if (conflicts)
        s->host->counter_add(s->host, s->c_conflicts, conflicts);
    return OBS_OK;
}

static int seq_consume(void *instance, const obs_batch *in)
{
    seqcheck *s = instance;
    uint64_t gaps = 0, dups = 0;
    if (s->order != ORDER_TOTAL)
        return consume_unordered(s, in);

    for (uint32_t i = 0; i < in->n_records; i++) {
        uint64_t seq = in->records[i].seq;
        if (s->times && fwrite(&in->records[i].t_intended_ns, 8, 1, s->times) != 1)
            return OBS_EIO;
        if (!s->any) {
            s->any = true;
            s->first = s->last = seq;
            continue;
        }
        if (seq == s->last + 1) {
            s->last = seq;
        } else if (seq > s->last) {
            gaps += seq - s->last - 1;
            s->last = seq;
        } else {
            dups++; /* `last` stays the highest seq seen */
        }
    }
    s->records += in->n_records;
    s->gaps += gaps;
    s->dups += dups;
    s->host->counter_add(s->host, s->c_records, in->n_records);
    if (gaps)
        s->host->counter_add(s->host, s->c_gaps, gaps);
    if (dups)
        s->host->counter_add(s->host, s->c_dups, dups);
    return OBS_OK;
}

static int seq_flush(void *instance, obs_out *out)
{
    seqcheck *s = instance;
    (void)out; /* sinks get NULL */
    if (s->order != ORDER_TOTAL && s->any) {
        uint64_t gaps = s->hi - s->lo + 1 - s->distinct;
        if (gaps > s->gaps) {
            s->host->counter_add(s->host, s->c_gaps, gaps - s->gaps);
            s->gaps = gaps;
        }
        s->first = s->lo;
        s->last = s->hi;
    }

    if (s->report && s->report[0]) {
        FILE *f = fopen(s->report, "w");
        if (!f) {
            s->host->log(s->host, OBS_LOG_ERROR, "seqcheck: cannot write %s: %s", s->report,
                         strerror(errno));
            return OBS_EIO;
        }
        fprintf(f, "seqcheck records=%llu first=%llu last=%llu gaps=%llu dups=%llu",
                (unsigned long long)s->records, (unsigned long long)s->first,
                (unsigned long long)s->last, (unsigned long long)s->gaps,
                (unsigned long long)s->dups);
        if (s->order != ORDER_TOTAL || s->exclusive)
            fprintf(f, " key_order=%llu key_conflicts=%llu", (unsigned long long)s->key_order,
                    (unsigned long long)s->conflicts);
        fputc('\n', f);
        if (fclose(f) != 0) {
            s->host->log(s->host, OBS_LOG_ERROR, "seqcheck: cannot write %s: %s", s->report,
                         strerror(errno));
            return OBS_EIO;
        }
    }
    if (s->gaps || s->dups || s->key_order || s->conflicts) {
        s->host->log(s->host, s->fail_on_error ? OBS_LOG_ERROR : OBS_LOG_WARN,
                     "seqcheck: %llu records, %llu lost, %llu duplicated",
                     (unsigned long long)s->records, (unsigned long long)s->gaps,
                     (unsigned long long)s->dups);
        if (s->fail_on_error)
            return OBS_EPLUGIN;
    }
    return OBS_OK;
}

static void seq_fini(void *instance)
{
    seqcheck *s = instance;
    if (s->times)
        fclose(s->times);
    if (s->exclusive) {
        pthread_mutex_lock(&owners.mu);
        if (--owners.users == 0) {
            free(owners.keys), free(owners.owner);
            owners.keys = NULL, owners.owner = NULL, owners.n = owners.cap = 0;
        }
        pthread_mutex_unlock(&owners.mu);
    }
    s->host->free(s->host, s->seen);
    free(s->kt_key), free(s->kt_last), free(s->kt_used);
    s->host->free(s->host, s);
}

static const obs_stage_desc desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_SINK,
    .name = "sink_seqcheck",
    .version = "1.0.0",
    .description = "checks that seq numbers arrive exactly once and in order",
    .params = seq_params,
    .n_params = sizeof seq_params / sizeof seq_params[0],
    .init = seq_init,
    .consume = seq_consume,
    .flush = seq_flush,
    .fini = seq_fini,
};

OBS_DECLARE_STAGE(desc)
