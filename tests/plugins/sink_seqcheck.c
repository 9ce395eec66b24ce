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
 * (first and last are 0 when no record arrived). With fail_on_error=true,
 * flush returns OBS_EPLUGIN if any gap or duplicate was seen, so a pipeline
 * run fails loudly. With `times`, every record's intended time is appended
 * to that file as a native-endian uint64, in arrival order. The pipeline and
 * hot-swap tests use it end to end.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <observatory/stage.h>

enum { P_REPORT, P_FAIL_ON_ERROR, P_TIMES }; /* indexes into obs_params, declaration order */

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
};

typedef struct seqcheck {
    const obs_host *host;
    const char *report; /* borrowed from params: valid until fini */
    bool fail_on_error;
    FILE *times;
    bool any; /* a record has been seen */
    uint64_t first, last;
    uint64_t records, gaps, dups;
    int c_records, c_gaps, c_dups;
} seqcheck;

static int seq_init(const obs_host *host, const obs_params *params, void **instance)
{
    seqcheck *s = host->alloc(host, sizeof *s);
    if (!s)
        return OBS_ENOMEM;
    *s = (seqcheck){.host = host};
    s->report = params->values[P_REPORT].s;
    s->fail_on_error = params->values[P_FAIL_ON_ERROR].i != 0;
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
    if (s->c_records < 0 || s->c_gaps < 0 || s->c_dups < 0) {
        int rc = s->c_records < 0 ? s->c_records : s->c_gaps < 0 ? s->c_gaps : s->c_dups;
        if (s->times)
            fclose(s->times);
        host->free(host, s);
        return rc;
    }
    *instance = s;
    return OBS_OK;
}

static int seq_consume(void *instance, const obs_batch *in)
{
    seqcheck *s = instance;
    uint64_t gaps = 0, dups = 0;

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

    if (s->report && s->report[0]) {
        FILE *f = fopen(s->report, "w");
        if (!f) {
            s->host->log(s->host, OBS_LOG_ERROR, "seqcheck: cannot write %s: %s", s->report,
                         strerror(errno));
            return OBS_EIO;
        }
        fprintf(f, "seqcheck records=%llu first=%llu last=%llu gaps=%llu dups=%llu\n",
                (unsigned long long)s->records, (unsigned long long)s->first,
                (unsigned long long)s->last, (unsigned long long)s->gaps,
                (unsigned long long)s->dups);
        if (fclose(f) != 0) {
            s->host->log(s->host, OBS_LOG_ERROR, "seqcheck: cannot write %s: %s", s->report,
                         strerror(errno));
            return OBS_EIO;
        }
    }
    if (s->gaps || s->dups) {
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
