/*
 * gen_file - generator that replays the records of a user's own file:
 * newline-delimited lines (JSON lines, logs), length-prefixed binary
 * blocks, or a stream of MessagePack objects.
 *
 * The host's load shape decides when each record is sent (its intended
 * time, stamped by the host); gen_file only supplies the bytes, the next
 * record of the file for each time it is given. At the end of the file it
 * ends the stream (OBS_DONE) or starts again from the first record.
 *
 * The file is read with read(2) through one buffer of `buffer` bytes,
 * allocated at init: memory stays bounded whatever the file's size, the
 * file may be a pipe (read once), and a file truncated while it is read
 * gives a short read and a clear error, where a memory map would give
 * SIGBUS. frame.c finds where each record ends in the buffer; when one
 * straddles its end, the unread bytes move to its start and the next read
 * appends to them, so a record of up to max_record bytes is always whole in
 * the buffer (init checks that buffer >= max_record + FRAME_OVERHEAD). Each
 * record is copied once, from the buffer into the output arena.
 *
 * Errors name the record's byte offset in the file: a record longer than
 * max_record, a file that ends inside a record, a byte MessagePack never
 * uses. By default (`validate`) the whole file is scanned at init, so these
 * fail the stage before the run starts; found during the run, they are
 * logged, counted on `bad_records` and end the stream with OBS_EINVAL.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <observatory/stage.h>

#include "frame.h"

/* Parameter indexes: the host passes values in declaration order. */
enum {
    P_FILE,
    P_FORMAT,
    P_AT_END,
    P_PASSES,
    P_PREFIX,
    P_STRIP_CR,
    P_SKIP_EMPTY,
    P_MAX_RECORD,
    P_BUFFER,
    P_KEY,
    P_KEY_FIELD,
    P_VALIDATE,
};

#define MAX_RECORD_LIMIT (1 << 30)

static const obs_param_desc gen_file_params[] = {
    [P_FILE] = {.name = "file",
                .type = OBS_PARAM_STRING,
                .default_value = NULL,
                .min = 1,
                .max = 4096,
                .help = "file to replay (relative to the working directory of hostd)"},
    [P_FORMAT] = {.name = "format",
                  .type = OBS_PARAM_STRING,
                  .default_value = "lines",
                  .min = 1,
                  .max = 8,
                  .help = "lines (newline-delimited), length (length-prefixed) or msgpack (one "
                          "record per top-level object)"},
    [P_AT_END] = {.name = "at_end",
                  .type = OBS_PARAM_STRING,
                  .default_value = "stop",
                  .min = 1,
                  .max = 8,
                  .help = "at the end of the file: stop (end the stream) or loop (start again)"},
    [P_PASSES] = {.name = "passes",
                  .type = OBS_PARAM_INT,
                  .default_value = "0",
                  .min = 0,
                  .max = 1e15,
                  .help = "with at_end loop: end the stream after this many passes (0: never)"},
    [P_PREFIX] = {.name = "prefix",
                  .type = OBS_PARAM_STRING,
                  .default_value = "be32",
                  .min = 1,
                  .max = 8,
                  .help = "format length: the length before each record: be32, le32 (4 bytes) "
                          "or varint (protobuf's base-128)"},
    [P_STRIP_CR] = {.name = "strip_cr",
                    .type = OBS_PARAM_BOOL,
                    .default_value = "true",
                    .min = 1,
                    .max = 0,
                    .help = "format lines: drop one \\r that ends a line (CRLF files)"},
    [P_SKIP_EMPTY] = {.name = "skip_empty",
                      .type = OBS_PARAM_BOOL,
                      .default_value = "false",
                      .min = 1,
                      .max = 0,
                      .help = "format lines: skip empty lines instead of sending empty records"},
    [P_MAX_RECORD] = {.name = "max_record",
                      .type = OBS_PARAM_INT,
                      .default_value = "1048576",
                      .min = 1,
                      .max = MAX_RECORD_LIMIT,
                      .help = "most bytes of one record; a longer one is an error"},
    [P_BUFFER] = {.name = "buffer",
                  .type = OBS_PARAM_INT,
                  .default_value = "4194304",
                  .min = 4096,
                  .max = 2147483648.0,
                  .help = "bytes of the read buffer (the plugin's memory); at least max_record + "
                          "16"},
    [P_KEY] = {.name = "key",
               .type = OBS_PARAM_STRING,
               .default_value = "record",
               .min = 1,
               .max = 8,
               .help = "record key: record (hash of its bytes), field (hash of key_field's "
                       "value) or none"},
    [P_KEY_FIELD] = {.name = "key_field",
                     .type = OBS_PARAM_STRING,
                     .default_value = "",
                     .min = 0,
                     .max = 256,
                     .help = "with key field: the top-level field of a JSON line or msgpack map"},
    [P_VALIDATE] = {.name = "validate",
                    .type = OBS_PARAM_BOOL,
                    .default_value = "true",
                    .min = 1,
                    .max = 0,
                    .help = "read the whole file once at init, so bad records fail the stage "
                            "before the run"},
};

enum { KEY_NONE, KEY_RECORD, KEY_FIELD };

/* One instance per stage, used from its stage thread only. */
typedef struct gen_file {
    const obs_host *host; /* valid until fini */
    const char *path;     /* the `file` parameter, valid until fini */
    frame_format ff;
    bool loop, skip_empty, seekable;
    uint64_t max_passes; /* 0: no limit */
    int key_mode;
    const char *key_field; /* valid until fini */
    size_t key_field_len;

    int fd;
    uint8_t *buf; /* cap bytes (host->alloc); unread bytes are buf[head, tail) */
    uint64_t cap, head, tail;
    uint64_t off; /* file offset of buf[head] */
    bool eof;     /* read() has returned 0: the file ends at buf + tail */

    uint64_t passes;  /* passes completed */
    uint64_t in_pass; /* records emitted in the current pass */
    int end_rc;       /* once nonzero, what every later generate returns */

    int c_passes, c_no_key, c_bad, c_io;
} gen_file;

/* Reads once more into the buffer, after moving the unread bytes to its
 * start. Returns OBS_OK (g->eof set at the end of the file) or OBS_EIO,
 * logged. */
static int fill(gen_file *g)
{
    if (g->head) {
        memmove(g->buf, g->buf + g->head, g->tail - g->head);
        g->tail -= g->head;
        g->head = 0;
    }
    for (;;) {
        ssize_t n = read(g->fd, g->buf + g->tail, g->cap - g->tail);
        if (n > 0) {
            g->tail += (uint64_t)n;
            return OBS_OK;
        }
        if (n == 0) {
            g->eof = true;
            return OBS_OK;
        }
        if (errno != EINTR)
            break;
    }
    g->host->log(g->host, OBS_LOG_ERROR, "gen_file: '%s': read error at byte offset %llu: %s",
                 g->path, (unsigned long long)(g->off + g->tail - g->head), strerror(errno));
    g->host->counter_add(g->host, g->c_io, 1);
    return OBS_EIO;
}

/* Starts the file again from its first byte. Returns OBS_OK or OBS_EIO. */
static int rewind_file(gen_file *g)
{
    if (lseek(g->fd, 0, SEEK_SET) != 0) {
        g->host->log(g->host, OBS_LOG_ERROR, "gen_file: '%s': cannot seek to its start: %s",
                     g->path, strerror(errno));
        g->host->counter_add(g->host, g->c_io, 1);
        return OBS_EIO;
    }
    g->head = g->tail = g->off = 0;
    g->eof = false;
    return OBS_OK;
}

/* Logs why the record at the read position is bad, counts it, and returns
 * OBS_EINVAL. */
static int bad_record(gen_file *g, frame_status st, const frame *f)
{
    unsigned long long at = (unsigned long long)g->off;
    const char *p = g->path;
    if (st == FRAME_TOO_LONG && f->value)
        g->host->log(g->host, OBS_LOG_ERROR,
                     "gen_file: '%s': record at byte offset %llu: %s (%llu bytes, max_record "
                     "%llu)",
                     p, at, f->why, (unsigned long long)f->value,
                     (unsigned long long)g->ff.max_record);
    else if (st == FRAME_TOO_LONG)
        g->host->log(g->host, OBS_LOG_ERROR,
                     "gen_file: '%s': record at byte offset %llu: %s (max_record %llu)", p, at,
                     f->why, (unsigned long long)g->ff.max_record);
    else if (st == FRAME_TRUNCATED)
        g->host->log(g->host, OBS_LOG_ERROR,
                     "gen_file: '%s': truncated record at byte offset %llu: %s, %llu bytes "
                     "after its start",
                     p, at, f->why, (unsigned long long)f->bad_at);
    else
        g->host->log(g->host, OBS_LOG_ERROR,
                     "gen_file: '%s': record at byte offset %llu: %s at byte offset %llu", p, at,
                     f->why, (unsigned long long)(g->off + f->bad_at));
    g->host->counter_add(g->host, g->c_bad, 1);
    return OBS_EINVAL;
}

/* Finds the next record at the read position, reading as needed. Returns
 * FRAME_OK (*f says where it is, from buf + head), FRAME_END, or a
 * negative OBS_E* code (logged). */
static int next_record(gen_file *g, frame *f)
{
    for (;;) {
        frame_status st = frame_next(&g->ff, g->buf + g->head, g->tail - g->head, g->eof, f);
        if (st == FRAME_OK || st == FRAME_END)
            return st;
        if (st != FRAME_MORE)
            return bad_record(g, st, f);
        if (g->tail - g->head == g->cap) {
            /* frame.h promises a decision within max_record + FRAME_OVERHEAD
             * bytes, and init made the buffer at least that large. */
            g->host->log(g->host, OBS_LOG_ERROR,
                         "gen_file: '%s': no record end within the %llu-byte buffer at byte "
                         "offset %llu (internal error)",
                         g->path, (unsigned long long)g->cap, (unsigned long long)g->off);
            return OBS_EPLUGIN;
        }
        int rc = fill(g);
        if (rc != OBS_OK)
            return rc;
    }
}

static void skip_record(gen_file *g, const frame *f)
{
    g->head += f->size;
    g->off += f->size;
}

/* A pass has ended. Returns OBS_DONE when the stream ends, OBS_OK when the
 * file was started again, or a negative code (logged). */
static int end_of_pass(gen_file *g)
{
    g->passes++;
    g->host->counter_add(g->host, g->c_passes, 1);
    if (!g->loop || (g->max_passes && g->passes >= g->max_passes))
        return OBS_DONE;
    if (g->in_pass == 0) {
        /* Looping over nothing would spin for ever. */
        g->host->log(g->host, OBS_LOG_ERROR, "gen_file: '%s': no records to loop over", g->path);
        return OBS_EINVAL;
    }
    g->in_pass = 0;
    return rewind_file(g);
}

static uint32_t key_of(gen_file *g, const uint8_t *p, uint64_t len, uint64_t *no_key)
{
    const uint8_t *v;
    uint64_t vlen;
    switch (g->key_mode) {
    case KEY_RECORD: return obs_key_hash(p, (size_t)len);
    case KEY_FIELD:
        if (frame_key_field(g->ff.format, p, len, g->key_field, g->key_field_len, &v, &vlen))
            return obs_key_hash(v, (size_t)vlen);
        (*no_key)++;
        return 0;
    default: return 0;
    }
}

/* Emits the next req->n_records records of the file (fewer when the file
 * ends with at_end stop, returning OBS_DONE, or when the host's batch bound
 * is reached). Returns OBS_OK, OBS_DONE, or a negative code after an error
 * (logged), which every later call returns too. */
static int gen_file_generate(void *instance, const obs_gen_request *req, obs_out *out)
{
    gen_file *g = instance;
    uint64_t no_key = 0;
    uint32_t i = 0;
    int rc = g->end_rc;
    while (rc == OBS_OK && i < req->n_records) {
        frame f;
        rc = next_record(g, &f);
        if (rc == FRAME_END) {
            rc = end_of_pass(g);
            continue;
        }
        if (rc != FRAME_OK)
            break;
        if (g->skip_empty && f.len == 0) {
            skip_record(g, &f);
            continue;
        }
        /* An empty record still asks for a byte: obs_out_reserve() answers
         * NULL for 0 bytes while the host has not allocated an arena yet. */
        uint8_t *dst = obs_out_reserve(out, f.len ? f.len : 1);
        if (!dst) {
            if (i > 0)
                break; /* the record stays unread: it starts the next batch */
            g->host->log(g->host, OBS_LOG_ERROR,
                         "gen_file: '%s': record at byte offset %llu (%llu bytes) does not fit in "
                         "a batch: raise max_batch_bytes",
                         g->path, (unsigned long long)g->off, (unsigned long long)f.len);
            rc = OBS_ENOMEM;
            break;
        }
        const uint8_t *data = g->buf + g->head + f.hdr;
        memcpy(dst, data, (size_t)f.len);
        obs_out_commit(out, f.len, req->first_seq + i, req->t_intended_ns[i]);
        obs_out_set_key(out, key_of(g, data, f.len, &no_key));
        skip_record(g, &f);
        g->in_pass++;
        i++;
    }
    /* When the file's last record went out in this batch and the stream
     * ends there, say so now rather than on a call for the next intended
     * time. Only a read the next call would make anyway is made here, and
     * not on a pipe, where it could wait for the writer while this batch
     * is held back. */
    if (rc == OBS_OK && g->head == g->tail && (!g->loop || g->max_passes == g->passes + 1)) {
        if (!g->eof && g->seekable)
            rc = fill(g);
        if (rc == OBS_OK && g->eof && g->head == g->tail)
            rc = end_of_pass(g);
    }
    if (no_key)
        g->host->counter_add(g->host, g->c_no_key, no_key);
    g->end_rc = rc;
    return rc;
}

/* Reads the whole file once (init, `validate`): counts its records and
 * bytes, or finds the first bad one. Leaves the file at its start. */
static int validate_file(gen_file *g, uint64_t *n_records)
{
    uint64_t n = 0;
    for (;;) {
        frame f;
        int rc = next_record(g, &f);
        if (rc == FRAME_END)
            break;
        if (rc != FRAME_OK)
            return rc;
        n += !(g->skip_empty && f.len == 0);
        skip_record(g, &f);
    }
    *n_records = n;
    return OBS_OK;
}

/* Index of `s` in the NULL-terminated `names`, or -1. */
static int pick(const char *s, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* Checks the parameters against each other and fills the settings of g.
 * Returns OBS_OK or OBS_EINVAL (logged). */
static int configure(gen_file *g, const obs_params *params)
{
    static const char *const formats[] = {"lines", "length", "msgpack", NULL};
    static const char *const ends[] = {"stop", "loop", NULL};
    static const char *const prefixes[] = {"be32", "le32", "varint", NULL};
    static const char *const keys[] = {"none", "record", "field", NULL};
    const obs_host *h = g->host;
    const obs_param_value *v = params->values;
    if (params->n_values < sizeof gen_file_params / sizeof gen_file_params[0]) {
        h->log(h, OBS_LOG_ERROR, "gen_file: %u parameters given, %zu declared", params->n_values,
               sizeof gen_file_params / sizeof gen_file_params[0]);
        return OBS_EINVAL;
    }
    int format = pick(v[P_FORMAT].s, formats), at_end = pick(v[P_AT_END].s, ends);
    int prefix = pick(v[P_PREFIX].s, prefixes), key = pick(v[P_KEY].s, keys);
    const char *why = NULL;
    if (format < 0)
        why = "format must be lines, length or msgpack";
    else if (at_end < 0)
        why = "at_end must be stop or loop";
    else if (prefix < 0)
        why = "prefix must be be32, le32 or varint";
    else if (key < 0)
        why = "key must be none, record or field";
    else if (!v[P_PREFIX].is_default && format != FRAME_LENGTH)
        why = "prefix applies to format length only";
    else if ((!v[P_STRIP_CR].is_default || !v[P_SKIP_EMPTY].is_default) && format != FRAME_LINES)
        why = "strip_cr and skip_empty apply to format lines only";
    else if (key == KEY_FIELD && format == FRAME_LENGTH)
        why = "key field needs format lines (JSON objects) or msgpack (maps)";
    else if (key == KEY_FIELD && v[P_KEY_FIELD].s[0] == '\0')
        why = "key field needs key_field, the name of the field";
    else if (key != KEY_FIELD && v[P_KEY_FIELD].s[0] != '\0')
        why = "key_field is used only with key: field";
    else if (at_end == 0 && v[P_PASSES].i > 1)
        why = "passes above 1 needs at_end: loop";
    else if ((uint64_t)v[P_MAX_RECORD].i + FRAME_OVERHEAD > (uint64_t)v[P_BUFFER].i)
        why = "buffer must be at least max_record + 16 bytes";
    if (why) {
        h->log(h, OBS_LOG_ERROR, "gen_file: %s", why);
        return OBS_EINVAL;
    }
    g->path = v[P_FILE].s;
    g->ff = (frame_format){.format = format,
                           .prefix = prefix,
                           .strip_cr = v[P_STRIP_CR].i != 0,
                           .max_record = (uint64_t)v[P_MAX_RECORD].i};
    g->loop = at_end == 1;
    g->max_passes = (uint64_t)v[P_PASSES].i;
    g->skip_empty = v[P_SKIP_EMPTY].i != 0;
    g->key_mode = key;
    g->key_field = v[P_KEY_FIELD].s;
    g->key_field_len = strlen(g->key_field);
    g->cap = (uint64_t)v[P_BUFFER].i;
    return OBS_OK;
}

/* Opens the file and checks that it can be read as configured. Returns
 * OBS_OK, OBS_ENOENT (no such file) or OBS_EIO / OBS_EINVAL, logged with
 * the path (and the working directory a relative path is taken from). */
static int open_file(gen_file *g)
{
    const obs_host *h = g->host;
    char cwd[PATH_MAX] = "";
    if (g->path[0] != '/' && !getcwd(cwd, sizeof cwd))
        cwd[0] = '\0';
    const char *rel = cwd[0] ? " (relative to the working directory '" : "";
    const char *rel_end = cwd[0] ? "')" : "";
    struct stat st;
    g->fd = open(g->path, O_RDONLY | O_CLOEXEC);
    if (g->fd < 0) {
        int e = errno;
        h->log(h, OBS_LOG_ERROR, "gen_file: cannot open '%s'%s%s%s: %s", g->path, rel, cwd, rel_end,
               strerror(e));
        return e == ENOENT ? OBS_ENOENT : OBS_EIO;
    }
    if (fstat(g->fd, &st) != 0) {
        h->log(h, OBS_LOG_ERROR, "gen_file: cannot stat '%s': %s", g->path, strerror(errno));
        return OBS_EIO;
    }
    if (S_ISDIR(st.st_mode)) {
        h->log(h, OBS_LOG_ERROR, "gen_file: '%s'%s%s%s is a directory", g->path, rel, cwd, rel_end);
        return OBS_EINVAL;
    }
    g->seekable = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
    if (g->loop && !g->seekable) {
        h->log(h, OBS_LOG_ERROR,
               "gen_file: '%s' is not a regular file (a pipe?): at_end: loop needs one that can "
               "be read again from its start",
               g->path);
        return OBS_EINVAL;
    }
    /* Read-ahead for a file read from start to end (advice only). */
    (void)posix_fadvise(g->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return OBS_OK;
}

static void gen_file_fini(void *instance);

/* Creates an instance: checks the parameters, opens the file, allocates the
 * buffer (host->alloc, kept until fini) and, with `validate`, reads the
 * file once. Logs why it fails. */
static int gen_file_init(const obs_host *host, const obs_params *params, void **instance)
{
    gen_file *g = host->alloc(host, sizeof *g);
    if (!g)
        return OBS_ENOMEM;
    *g = (gen_file){.host = host, .fd = -1};
    int rc = configure(g, params);
    if (rc != OBS_OK)
        goto fail;
    g->c_passes =
        host->counter_register(host, "passes", OBS_COUNTER_PLAIN, "passes over the file completed");
    g->c_no_key = host->counter_register(host, "no_key", OBS_COUNTER_PLAIN,
                                         "records without key_field (sent with key 0)");
    g->c_bad = host->counter_register(host, "bad_records", OBS_COUNTER_ERROR,
                                      "malformed records (the stream ends at the first)");
    g->c_io = host->counter_register(host, "read_errors", OBS_COUNTER_ERROR,
                                     "failed reads or seeks of the file");
    if (g->c_passes < 0 || g->c_no_key < 0 || g->c_bad < 0 || g->c_io < 0) {
        rc = OBS_ENOMEM;
        goto fail;
    }
    rc = open_file(g);
    if (rc != OBS_OK)
        goto fail;
    g->buf = host->alloc(host, (size_t)g->cap);
    if (!g->buf) {
        host->log(host, OBS_LOG_ERROR, "gen_file: no memory for a %llu-byte buffer",
                  (unsigned long long)g->cap);
        rc = OBS_ENOMEM;
        goto fail;
    }
    if (params->values[P_VALIDATE].i && g->seekable) {
        uint64_t n = 0;
        rc = validate_file(g, &n);
        if (rc != OBS_OK)
            goto fail;
        host->log(host, OBS_LOG_INFO, "gen_file: '%s': %llu records in %llu bytes", g->path,
                  (unsigned long long)n, (unsigned long long)g->off);
        if (n == 0 && g->loop) {
            host->log(host, OBS_LOG_ERROR, "gen_file: '%s': no records to loop over", g->path);
            rc = OBS_EINVAL;
            goto fail;
        }
        rc = rewind_file(g);
        if (rc != OBS_OK)
            goto fail;
    } else if (params->values[P_VALIDATE].i) {
        host->log(host, OBS_LOG_INFO,
                  "gen_file: '%s' is not a regular file: read once, not validated at init",
                  g->path);
    }
    *instance = g;
    return OBS_OK;

fail:
    gen_file_fini(g);
    return rc;
}

static void gen_file_fini(void *instance)
{
    gen_file *g = instance;
    if (!g)
        return;
    if (g->fd >= 0)
        close(g->fd);
    if (g->buf)
        g->host->free(g->host, g->buf);
    g->host->free(g->host, g);
}

static const obs_stage_desc gen_file_desc = {
    OBS_STAGE_HEADER,
    .kind = OBS_KIND_GENERATOR,
    .name = "gen_file",
    .version = "1.0.0",
    .description = "replays the records of a file: lines, length-prefixed blocks or msgpack",
    .params = gen_file_params,
    .n_params = sizeof gen_file_params / sizeof gen_file_params[0],
    .init = gen_file_init,
    .generate = gen_file_generate,
    .fini = gen_file_fini,
};

OBS_DECLARE_STAGE(gen_file_desc)
