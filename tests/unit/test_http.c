/*
 * test_http.c - the HTTP surface against a real pipeline: hostd's server
 * starts on 127.0.0.1 port 0 in front of gen_static -> xf_pass -> sink_null
 * running in a thread, and a small HTTP/1.1 client written here fetches
 * every endpoint and checks status, Content-Type and JSON shape; unknown
 * paths, wrong methods and bad parameters get JSON errors; malformed
 * requests do not hurt the server. metrics_render output is parsed back and
 * checked against the snapshot it came from (exact counters, cumulative
 * buckets, escaping), and the parsers of http_parse.c are tested directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the four headers above first. */
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "http_parse.h"
#include "pipeline.h"
#include "snapshot.h"
#include "store.h"

/* ------------------------------------------------------------------------ */
/* A minimal HTTP/1.1 client: one request per connection.                   */

typedef struct response {
    int status; /* 0: no response (connection closed) */
    char content_type[128];
    char allow[64];
    char *body; /* malloc'd, NUL-terminated */
    size_t body_len;
} response;

static void response_free(response *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static int connect_to(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {10, 0}; /* a hung server fails the test, not the run */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

static void header_value(const char *head, const char *name, char *out, size_t len)
{
    out[0] = '\0';
    size_t nlen = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
        const char *line = l + 2;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            while (*v == ' ')
                v++;
            const char *end = strstr(v, "\r\n");
            size_t n = end ? (size_t)(end - v) : strlen(v);
            if (n >= len)
                n = len - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return;
        }
    }
}

/* Sends `raw` as is, reads until the server closes, parses the response. */
static response send_raw(uint16_t port, const char *raw, size_t raw_len)
{
    response r = {0};
    int fd = connect_to(port);
    size_t off = 0;
    while (off < raw_len) {
        ssize_t n = send(fd, raw + off, raw_len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may close early on garbage */
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    for (;;) {
        if (len + 4096 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (len == 0 || !sep) {
        free(buf);
        return r;
    }
    *sep = '\0';
    sscanf(buf, "HTTP/1.%*d %d", &r.status);
    header_value(buf, "Content-Type", r.content_type, sizeof(r.content_type));
    header_value(buf, "Allow", r.allow, sizeof(r.allow));
    r.body_len = len - (size_t)(sep + 4 - buf);
    r.body = malloc(r.body_len + 1);
    assert_non_null(r.body);
    memcpy(r.body, sep + 4, r.body_len);
    r.body[r.body_len] = '\0';
    free(buf);
    return r;
}

static response request(uint16_t port, const char *method, const char *target)
{
    char req[8192];
    int n =
        snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                 method, target);
    assert_true(n > 0 && (size_t)n < sizeof(req));
    return send_raw(port, req, (size_t)n);
}

static json_t *json_of(const response *r)
{
    json_error_t e;
    json_t *j = json_loads(r->body ? r->body : "", 0, &e);
    if (!j)
        fail_msg("not JSON (%s): %s", e.text, r->body ? r->body : "(none)");
    return j;
}

/* Asserts status, the JSON content type and the error body shape. */
static void expect_error(uint16_t port, const char *method, const char *target, int status,
                         const char *needle)
{
    response r = request(port, method, target);
    if (r.status != status)
        fail_msg("%s %s: status %d, expected %d: %s", method, target, r.status, status,
                 r.body ? r.body : "");
    assert_string_equal(r.content_type, "application/json");
    json_t *j = json_of(&r);
    json_t *err = json_object_get(j, "error");
    assert_non_null(err);
    assert_int_equal(json_integer_value(json_object_get(err, "code")), status);
    const char *msg = json_string_value(json_object_get(err, "message"));
    assert_non_null(msg);
    if (needle && !strstr(msg, needle))
        fail_msg("%s %s: message '%s' lacks '%s'", method, target, msg, needle);
    json_decref(j);
    response_free(&r);
}

/* ------------------------------------------------------------------------ */
/* A pipeline running in a thread.                                          */

typedef struct fixture {
    obs_config *cfg;
    pipeline *p;
    pthread_t thread;
    int rc;
    http_server *srv;
    uint16_t port;
} fixture;

static void *run_thread(void *arg)
{
    fixture *f = arg;
    f->rc = pipeline_run(f->p, NULL, NULL);
    return NULL;
}

static void fixture_start(fixture *f, const char *settings, struct store *st, uint64_t run_id)
{
    char yaml[2048], err[2048];
    snprintf(yaml, sizeof(yaml),
             "pipeline: t\n"
             "plugin_dirs: [%s]\n"
             "%s"
             "stages:\n"
             "  - {name: gen, plugin: gen_static, params: {size: 16}}\n"
             "  - {name: pass, plugin: xf_pass}\n"
             "  - {name: sink, plugin: sink_null}\n",
             getenv("OBS_PLUGIN_DIR"), settings);
    memset(f, 0, sizeof(*f));
    if (config_load_string("t.yaml", yaml, &f->cfg, err, sizeof(err)) != 0)
        fail_msg("config: %s", err);
    if (pipeline_create(f->cfg, NULL, 0, &f->p, err, sizeof(err)) != 0)
        fail_msg("pipeline_create: %s", err);
    http_options o = {.listen = "127.0.0.1:0", .pipeline = f->p, .store = st, .run_id = run_id};
    if (http_start(&o, &f->srv, err, sizeof(err)) != 0)
        fail_msg("http_start: %s", err);
    f->port = http_port(f->srv);
    assert_true(f->port != 0);
    assert_int_equal(pthread_create(&f->thread, NULL, run_thread, f), 0);
}

/* Waits (bounded) until the pipeline reports `state`. */
static void wait_state(fixture *f, snapshot_state state)
{
    for (int i = 0; i < 1000; i++) {
        obs_snapshot s;
        assert_int_equal(pipeline_snapshot(f->p, &s), 0);
        snapshot_state got = s.state;
        snapshot_free(&s);
        if (got == state)
            return;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    fail_msg("pipeline never reached state %s", snapshot_state_name(state));
}

static void fixture_join(fixture *f)
{
    pthread_join(f->thread, NULL);
    assert_int_equal(f->rc, 0);
}

static void fixture_stop(fixture *f)
{
    http_stop(f->srv);
    pipeline_destroy(f->p);
    config_free(f->cfg);
}

/* ------------------------------------------------------------------------ */
/* Prometheus text parsed back.                                             */

typedef struct prom_sample {
    char name[128];
    char labels[512]; /* raw label text between the braces */
    double value;
} prom_sample;

typedef struct prom_text {
    prom_sample *s;
    size_t n;
} prom_text;

/* Parses the exposition text strictly enough to catch format mistakes:
 * every sample's family was announced by # HELP then # TYPE just before
 * its first sample, and no family appears twice. */
static prom_text prom_parse(const char *text)
{
    prom_text t = {calloc(20000, sizeof(prom_sample)), 0};
    char families[256][128];
    size_t n_fam = 0;
    char help_for[128] = "", type_for[128] = "", type[32] = "";
    assert_non_null(t.s);
    const char *line = text;
    while (*line) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl); /* every line ends with a newline */
        size_t len = (size_t)(nl - line);
        char buf[1024];
        assert_true(len < sizeof(buf));
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = nl + 1;
        if (strncmp(buf, "# HELP ", 7) == 0) {
            assert_int_equal(sscanf(buf + 7, "%127s", help_for), 1);
            for (size_t i = 0; i < n_fam; i++)
                if (strcmp(families[i], help_for) == 0)
                    fail_msg("family %s appears twice", help_for);
            assert_true(n_fam < 256);
            strcpy(families[n_fam++], help_for);
            continue;
        }
        if (strncmp(buf, "# TYPE ", 7) == 0) {
            assert_int_equal(sscanf(buf + 7, "%127s %31s", type_for, type), 2);
            assert_string_equal(type_for, help_for);
            continue;
        }
        assert_true(buf[0] != '#' && buf[0] != '\0');
        prom_sample *s = &t.s[t.n++];
        assert_true(t.n < 20000);
        const char *brace = strchr(buf, '{');
        assert_non_null(brace);
        memcpy(s->name, buf, (size_t)(brace - buf));
        s->name[brace - buf] = '\0';
        /* The closing brace is the last '}' before the value. */
        const char *close = strrchr(buf, '}');
        assert_non_null(close);
        memcpy(s->labels, brace + 1, (size_t)(close - brace - 1));
        s->labels[close - brace - 1] = '\0';
        char *end;
        s->value = strtod(close + 2, &end);
        assert_true(*end == '\0' && close[1] == ' ');
        /* The sample belongs to the family just announced. */
        size_t flen = strlen(type_for);
        assert_true(strncmp(s->name, type_for, flen) == 0);
        if (strcmp(type, "histogram") == 0)
            assert_true(strcmp(s->name + flen, "_bucket") == 0 ||
                        strcmp(s->name + flen, "_sum") == 0 ||
                        strcmp(s->name + flen, "_count") == 0);
        else
            assert_string_equal(s->name, type_for);
        if (strcmp(type, "counter") == 0)
            assert_true(flen > 6 && strcmp(type_for + flen - 6, "_total") == 0);
    }
    return t;
}

/* The value of the sample `name` whose labels contain `label_part`. */
static double prom_get(const prom_text *t, const char *name, const char *label_part)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->s[i].name, name) == 0 && strstr(t->s[i].labels, label_part))
            return t->s[i].value;
    fail_msg("no sample %s{...%s...}", name, label_part);
    return -1;
}

static int prom_has(const prom_text *t, const char *name, const char *label_part)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->s[i].name, name) == 0 && strstr(t->s[i].labels, label_part))
            return 1;
    return 0;
}

/* Every histogram's buckets are cumulative, end in +Inf, and +Inf equals
 * _count; checked for one family and stage. */
static void check_histogram(const prom_text *t, const char *family, const char *stage_label,
                            const histogram *h)
{
    char bucket[160], count[160];
    snprintf(bucket, sizeof(bucket), "%s_bucket", family);
    snprintf(count, sizeof(count), "%s_count", family);
    double prev = 0, le_prev = 0;
    int n = 0, inf = 0;
    for (size_t i = 0; i < t->n; i++) {
        const prom_sample *s = &t->s[i];
        if (strcmp(s->name, bucket) != 0 || !strstr(s->labels, stage_label))
            continue;
        const char *le = strstr(s->labels, "le=\"");
        assert_non_null(le);
        assert_false(inf); /* +Inf is the last bucket */
        if (strncmp(le + 4, "+Inf\"", 5) == 0) {
            inf = 1;
        } else {
            double v = strtod(le + 4, NULL);
            assert_true(v > le_prev);
            le_prev = v;
            /* Exactness: the cumulative count equals the snapshot's. */
            uint64_t le_ns = (uint64_t)(v * 1e9 + 0.5);
            uint64_t cum;
            assert_int_equal(histogram_cumulative(h, &le_ns, 1, &cum), 0);
            assert_true((double)cum == s->value);
        }
        assert_true(s->value >= prev);
        prev = s->value;
        n++;
    }
    assert_true(inf);
    assert_true(n >= 20);
    assert_true(prev == prom_get(t, count, stage_label));
    assert_true(prev == (double)histogram_count(h));
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */

static void test_metrics_render_matches_snapshot(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, "batch_size: 64\nrun: {duration: 200ms}\nload: [{shape: max}]\n", NULL, 0);
    fixture_join(&f);
    obs_snapshot snap;
    assert_int_equal(pipeline_snapshot(f.p, &snap), 0);
    assert_int_equal(snap.state, SNAPSHOT_DONE);
    char *text;
    size_t len;
    assert_int_equal(metrics_render(&snap, &text, &len), 0);
    assert_int_equal(strlen(text), len);
    prom_text t = prom_parse(text);

    assert_true(prom_get(&t, "observatory_build_info", "version=\"" OBS_VERSION "\"") == 1);
    assert_true(prom_get(&t, "observatory_pipeline_state", "state=\"done\"") == 1);
    assert_true(prom_get(&t, "observatory_pipeline_state", "state=\"running\"") == 0);
    const stage_sample *gen = &snap.stages[0], *pass = &snap.stages[1], *sink = &snap.stages[2];
    assert_true(gen->records_out > 0);
    const char *g = "stage=\"gen\",plugin=\"gen_static\"", *x = "stage=\"pass\"",
               *k = "stage=\"sink\"";
    assert_true(prom_get(&t, "observatory_records_out_total", g) == (double)gen->records_out);
    assert_true(prom_get(&t, "observatory_bytes_out_total", g) == (double)gen->bytes_out);
    assert_true(prom_get(&t, "observatory_records_in_total", x) == (double)pass->records_in);
    assert_true(prom_get(&t, "observatory_records_in_total", k) == (double)sink->records_in);
    assert_true(prom_get(&t, "observatory_batches_out_total", x) == (double)pass->batches_out);
    assert_true(prom_get(&t, "observatory_records_scheduled_total", g) ==
                (double)gen->records_scheduled);
    /* Seconds: exact decimal of the nanoseconds. */
    double cb = prom_get(&t, "observatory_callback_wall_seconds_total", x);
    assert_true(cb > 0 && (uint64_t)(cb * 1e9 + 0.5) == pass->callback_wall_ns);
    assert_true(prom_get(&t, "observatory_ring_capacity_batches", g) == gen->ring_capacity);
    assert_true(prom_get(&t, "observatory_errors_total", "reason=\"callback\"") == 0);
    /* Kind-specific families only where they mean something. */
    assert_false(prom_has(&t, "observatory_records_in_total", g));
    assert_false(prom_has(&t, "observatory_records_out_total", k));
    assert_false(prom_has(&t, "observatory_ring_capacity_batches", k));
    assert_false(prom_has(&t, "observatory_lag_seconds_count", x));
    /* Histograms: cumulative, exact at every edge, +Inf == _count. */
    check_histogram(&t, "observatory_service_seconds", x, pass->service);
    check_histogram(&t, "observatory_lag_seconds", g, gen->lag);
    check_histogram(&t, "observatory_latency_seconds", k, sink->latency);
    assert_true(histogram_count(sink->latency) == sink->records_in);

    free(t.s);
    free(text);
    snapshot_free(&snap);
    fixture_stop(&f);
}

static void test_metrics_render_escapes_labels(void **state)
{
    (void)state;
    obs_snapshot snap = {0};
    stage_sample st = {0};
    snapshot_counter counters[2] = {
        {.name = "bad\"record", .kind = OBS_COUNTER_ERROR, .value = 3},
        {.name = "seen", .kind = OBS_COUNTER_PLAIN, .value = 7},
    };
    strcpy(snap.pipeline, "p\\1\n\"x\"");
    strcpy(st.name, "s");
    strcpy(st.plugin, "pl");
    strcpy(st.version, "1.0");
    strcpy(st.kind, "transform");
    st.counters = counters;
    st.n_counters = 2;
    st.callback_wall_ns = 1500000001; /* 1.500000001 s */
    st.blocked_ns = 100;
    snap.stages = &st;
    snap.n_stages = 1;
    char *text;
    size_t len;
    assert_int_equal(metrics_render(&snap, &text, &len), 0);
    assert_non_null(strstr(text, "pipeline=\"p\\\\1\\n\\\"x\\\"\",stage=\"s\""));
    assert_non_null(strstr(text, "source=\"plugin\",reason=\"bad\\\"record\"} 3\n"));
    assert_non_null(strstr(text, "counter=\"seen\"} 7\n"));
    assert_non_null(strstr(text, "observatory_callback_wall_seconds_total{"));
    assert_non_null(strstr(text, "} 1.500000001\n"));
    assert_non_null(strstr(text, "} 0.0000001\n"));
    /* No histograms in the snapshot: no histogram families. */
    assert_null(strstr(text, "_bucket"));
    prom_text t = prom_parse(text);
    free(t.s);
    free(text);
    /* Without a snapshot: build info only. */
    assert_int_equal(metrics_render(NULL, &text, &len), 0);
    assert_non_null(strstr(text, "observatory_build_info{version="));
    assert_null(strstr(text, "observatory_pipeline_state"));
    free(text);
}

static void test_endpoints_while_running(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, "batch_size: 64\nrun: {duration: 0}\nload: [{shape: constant, rate: 2000}]\n",
                  NULL, 0);
    wait_state(&f, SNAPSHOT_RUNNING);

    response r = request(f.port, "GET", "/healthz");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/json");
    assert_string_equal(r.body, "{\"status\":\"ok\"}\n");
    response_free(&r);

    r = request(f.port, "GET", "/readyz");
    assert_int_equal(r.status, 200);
    json_t *j = json_of(&r);
    assert_true(json_is_true(json_object_get(j, "ready")));
    assert_string_equal(json_string_value(json_object_get(j, "state")), "running");
    json_decref(j);
    response_free(&r);

    r = request(f.port, "GET", "/metrics");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    prom_text t = prom_parse(r.body);
    assert_true(prom_get(&t, "observatory_pipeline_state", "state=\"running\"") == 1);
    assert_true(prom_has(&t, "observatory_latency_seconds_bucket", "stage=\"sink\""));
    free(t.s);
    response_free(&r);

    /* HEAD: same status and type, no body. */
    r = request(f.port, "HEAD", "/metrics");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert_int_equal(r.body_len, 0);
    response_free(&r);

    r = request(f.port, "GET", "/api/v1/status");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/json");
    j = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(j, "pipeline")), "t");
    assert_string_equal(json_string_value(json_object_get(j, "state")), "running");
    assert_string_equal(json_string_value(json_object_get(j, "version")), OBS_VERSION);
    assert_int_equal(json_integer_value(json_object_get(j, "stages")), 3);
    assert_true(json_is_null(json_object_get(j, "run_id")));
    assert_true(json_is_real(json_object_get(j, "uptime_seconds")));
    json_decref(j);
    response_free(&r);

    r = request(f.port, "GET", "/api/v1/stages");
    assert_int_equal(r.status, 200);
    j = json_of(&r);
    json_t *stages = json_object_get(j, "stages");
    assert_int_equal(json_array_size(stages), 3);
    static const char *const names[] = {"gen", "pass", "sink"};
    static const char *const kinds[] = {"generator", "transform", "sink"};
    for (size_t i = 0; i < 3; i++) {
        json_t *s = json_array_get(stages, i);
        assert_string_equal(json_string_value(json_object_get(s, "name")), names[i]);
        assert_string_equal(json_string_value(json_object_get(s, "kind")), kinds[i]);
        assert_true(json_is_integer(json_object_get(s, "records_in")));
        assert_true(json_is_object(json_object_get(s, "errors_by_reason")));
        assert_true(json_is_object(json_object_get(s, "service")));
    }
    assert_true(json_is_object(json_object_get(json_array_get(stages, 0), "generator")));
    assert_true(json_is_object(json_object_get(json_array_get(stages, 0), "lag")));
    assert_true(json_is_object(json_object_get(json_array_get(stages, 2), "latency")));
    assert_true(json_is_null(json_object_get(json_array_get(stages, 2), "ring")));
    json_decref(j);
    response_free(&r);

    r = request(f.port, "GET", "/");
    assert_int_equal(r.status, 200);
    j = json_of(&r);
    assert_true(json_array_size(json_object_get(j, "endpoints")) >= 9);
    json_decref(j);
    response_free(&r);

    /* Errors: unknown path, wrong method (with Allow), bad parameters. */
    expect_error(f.port, "GET", "/nope", 404, "no such endpoint: /nope");
    expect_error(f.port, "GET", "/metrics/", 404, NULL);
    expect_error(f.port, "GET", "/api/v1/stages/x", 404, NULL);
    expect_error(f.port, "POST", "/metrics", 405, "allowed: GET, HEAD");
    r = request(f.port, "DELETE", "/api/v1/status");
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "GET, HEAD");
    response_free(&r);
    expect_error(f.port, "GET", "/metrics?x=1", 400, "unknown query parameter 'x'");
    expect_error(f.port, "GET", "/metrics%zz", 400, "bad percent-escape");
    expect_error(f.port, "GET", "/api/v1/status?a=1&a=2", 400, "more than once");
    /* No store: run endpoints say so. */
    expect_error(f.port, "GET", "/api/v1/runs", 503, "store");
    expect_error(f.port, "GET", "/api/v1/runs/1", 503, NULL);
    expect_error(f.port, "GET", "/api/v1/runs/1/series?metric=x", 503, NULL);

    pipeline_stop(f.p);
    fixture_join(&f);
    /* Ended: not ready any more, still serving. */
    expect_error(f.port, "GET", "/healthz?x", 400, NULL);
    r = request(f.port, "GET", "/readyz");
    assert_int_equal(r.status, 503);
    j = json_of(&r);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "done");
    json_decref(j);
    response_free(&r);
    fixture_stop(&f);
}

/* After the run, counters are frozen: /metrics and /api/v1/stages must give
 * exactly the same figures (what the Prometheus integration test relies on). */
static void test_metrics_agree_with_stages_json(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, "batch_size: 32\nrun: {duration: 150ms}\nload: [{shape: max}]\n", NULL, 0);
    fixture_join(&f);
    response m = request(f.port, "GET", "/metrics");
    response s = request(f.port, "GET", "/api/v1/stages");
    assert_int_equal(m.status, 200);
    assert_int_equal(s.status, 200);
    prom_text t = prom_parse(m.body);
    json_t *j = json_of(&s);
    json_t *stages = json_object_get(j, "stages");
    size_t i;
    json_t *st;
    json_array_foreach(stages, i, st)
    {
        char label[96];
        snprintf(label, sizeof(label), "stage=\"%s\"",
                 json_string_value(json_object_get(st, "name")));
        const char *kind = json_string_value(json_object_get(st, "kind"));
        if (strcmp(kind, "sink") != 0)
            assert_true(prom_get(&t, "observatory_records_out_total", label) ==
                        (double)json_integer_value(json_object_get(st, "records_out")));
        if (strcmp(kind, "generator") != 0)
            assert_true(prom_get(&t, "observatory_bytes_in_total", label) ==
                        (double)json_integer_value(json_object_get(st, "bytes_in")));
        json_t *svc = json_object_get(st, "service");
        char count_label[96];
        snprintf(count_label, sizeof(count_label), "%s", label);
        assert_true(prom_get(&t, "observatory_service_seconds_count", count_label) ==
                    (double)json_integer_value(json_object_get(svc, "count")));
    }
    json_decref(j);
    free(t.s);
    response_free(&m);
    response_free(&s);
    fixture_stop(&f);
}

static void test_run_endpoints_with_store(void **state)
{
    (void)state;
    char dir[] = "/tmp/obs-test-http-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[512], err[1024];
    snprintf(path, sizeof(path), "%s/store", dir);
    store *st = NULL;
    if (store_open(path, &st, err, sizeof(err)) != 0)
        fail_msg("store_open: %s", err);
    const char *names[] = {"gen", "pass", "sink"},
               *plugins[] = {"gen_static", "xf_pass", "sink_null"}, *versions[] = {"1", "1", "1"},
               *paths[] = {"a", "b", "c"}, *ids[] = {"", "", ""};
    run_info info = {.pipeline = "t",
                     .config_path = "t.yaml",
                     .config_text = "pipeline: t\n",
                     .seed = 1,
                     .n_stages = 3,
                     .stage_names = names,
                     .plugin_names = plugins,
                     .plugin_versions = versions,
                     .plugin_paths = paths,
                     .plugin_build_ids = ids};
    uint64_t run_id = 0;
    assert_int_equal(store_run_begin(st, &info, &run_id), 0);
    assert_int_equal(run_id, 1);

    fixture f;
    fixture_start(&f, "batch_size: 32\nrun: {duration: 100ms}\nload: [{shape: max}]\n", st, run_id);
    fixture_join(&f);
    obs_snapshot snap;
    assert_int_equal(pipeline_snapshot(f.p, &snap), 0);
    assert_int_equal(store_put_snapshot(st, run_id, &snap), 0);
    uint64_t t_ns = snap.t_wall_ns;
    snapshot_free(&snap);
    assert_int_equal(store_run_end(st, run_id, 1, NULL), 0);

    response r = request(f.port, "GET", "/api/v1/runs");
    assert_int_equal(r.status, 200);
    json_t *j = json_of(&r);
    assert_int_equal(json_array_size(json_object_get(j, "runs")), 1);
    json_decref(j);
    response_free(&r);

    r = request(f.port, "GET", "/api/v1/runs/1");
    assert_int_equal(r.status, 200);
    j = json_of(&r);
    assert_true(json_is_object(j));
    json_decref(j);
    response_free(&r);

    r = request(f.port, "GET", "/api/v1/runs/1/metrics");
    assert_int_equal(r.status, 200);
    j = json_of(&r);
    assert_true(json_array_size(json_object_get(j, "metrics")) > 0);
    const char *metric = json_string_value(json_array_get(json_object_get(j, "metrics"), 0));
    assert_non_null(metric);
    char target[512];
    snprintf(target, sizeof(target), "/api/v1/runs/1/series?metric=%s", metric);
    json_decref(j);
    response_free(&r);

    r = request(f.port, "GET", target);
    assert_int_equal(r.status, 200);
    j = json_of(&r);
    assert_int_equal(json_array_size(json_object_get(j, "points")), 1);
    json_decref(j);
    response_free(&r);

    /* A window that excludes the only point: from is inclusive, to exclusive. */
    snprintf(target, sizeof(target),
             "/api/v1/runs/1/series?metric=stage/gen/records_out&from=0&to=%llu.%09llu",
             (unsigned long long)(t_ns / 1000000000), (unsigned long long)(t_ns % 1000000000));
    r = request(f.port, "GET", target);
    assert_int_equal(r.status, 200);
    j = json_of(&r);
    assert_int_equal(json_array_size(json_object_get(j, "points")), 0);
    json_decref(j);
    response_free(&r);

    r = request(f.port, "GET", "/api/v1/status");
    j = json_of(&r);
    assert_int_equal(json_integer_value(json_object_get(j, "run_id")), 1);
    json_decref(j);
    response_free(&r);

    expect_error(f.port, "GET", "/api/v1/runs/2", 404, "no run 2");
    expect_error(f.port, "GET", "/api/v1/runs/abc", 400, "not a positive integer");
    expect_error(f.port, "GET", "/api/v1/runs/0", 400, NULL);
    expect_error(f.port, "GET", "/api/v1/runs/99999999999999999999999", 400, NULL);
    expect_error(f.port, "GET", "/api/v1/runs/1/series", 400, "'metric' is required");
    expect_error(f.port, "GET", "/api/v1/runs/1/series?metric=a%20b", 400, "not a metric name");
    expect_error(f.port, "GET", "/api/v1/runs/1/series?metric=x&from=yesterday", 400,
                 "not a Unix time");
    expect_error(f.port, "GET", "/api/v1/runs/1/series?metric=x&from=2&to=1", 400, "after");
    expect_error(f.port, "GET", "/api/v1/runs/1/series?metric=x&step=1", 400,
                 "allowed: metric,from,to");
    expect_error(f.port, "GET", "/api/v1/runs/2/series?metric=x", 404, "no run 2");

    fixture_stop(&f);
    store_close(st);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_malformed_requests(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f, "batch_size: 64\nrun: {duration: 50ms}\nload: [{shape: max}]\n", NULL, 0);
    fixture_join(&f);

    static const char *const garbage[] = {
        "GARBAGE\r\n\r\n",
        "GET\r\n\r\n",
        "GET /metrics HTTP/9.9\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nNoColonHeader\r\n\r\n",
        "\x01\x02\x03\xff\xfe\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789",
        "POST /api/v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
        "GET /api/v1/runs/%00 HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /metrics", /* and then the client goes away */
    };
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        response r = send_raw(f.port, garbage[i], strlen(garbage[i]));
        /* Either a 4xx/5xx or a refusal to talk; never a crash or a 2xx
         * for nonsense (the valid-with-body GET is the exception). */
        if (r.status)
            assert_true(r.status >= 200 && r.status < 600);
        response_free(&r);
    }
    /* Targets our parser refuses: JSON 400s. */
    expect_error(f.port, "GET", "/api/v1/runs/%00", 400, "bad percent-escape");
    expect_error(f.port, "GET", "/metrics?%", 400, NULL);
    expect_error(f.port, "GET", "/metrics?=1", 400, "empty query parameter name");
    expect_error(f.port, "GET", "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q", 400, "segments");
    expect_error(f.port, "GET", "/metrics?a&b&c&d&e&f&g&h&i&j&k&l&m&n&o&p&q", 400, "16");
    char long_target[3000];
    memset(long_target, 'a', sizeof(long_target) - 1);
    long_target[0] = '/';
    long_target[sizeof(long_target) - 1] = '\0';
    response r = request(f.port, "GET", long_target);
    assert_true(r.status == 400 || r.status == 414);
    response_free(&r);
    /* A huge header block: refused by the connection memory limit. */
    size_t big = 200000;
    char *huge = malloc(big + 64);
    assert_non_null(huge);
    int n = snprintf(huge, 64, "GET /metrics HTTP/1.1\r\nX-Big: ");
    memset(huge + n, 'x', big);
    memcpy(huge + n + big, "\r\n\r\n", 5);
    r = send_raw(f.port, huge, strlen(huge));
    assert_true(r.status == 0 || r.status >= 400);
    response_free(&r);
    free(huge);

    /* Still alive and well. */
    r = request(f.port, "GET", "/healthz");
    assert_int_equal(r.status, 200);
    response_free(&r);
    fixture_stop(&f);
}

static void test_start_errors(void **state)
{
    (void)state;
    char err[512];
    http_server *a = NULL, *b = NULL;
    http_options o = {.listen = "nonsense"};
    assert_int_equal(http_start(&o, &a, err, sizeof(err)), OBS_EINVAL);
    assert_null(a);
    assert_non_null(strstr(err, "nonsense"));
    o.listen = "127.0.0.1:0";
    assert_int_equal(http_start(&o, &a, err, sizeof(err)), 0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", http_port(a));
    o.listen = addr;
    assert_int_equal(http_start(&o, &b, err, sizeof(err)), OBS_EIO);
    assert_null(b);
    assert_non_null(strstr(err, "cannot listen on 127.0.0.1:"));
    /* No pipeline: stage endpoints 503, status and metrics still answer. */
    expect_error(http_port(a), "GET", "/api/v1/stages", 503, "no pipeline");
    expect_error(http_port(a), "GET", "/readyz", 503, NULL);
    response r = request(http_port(a), "GET", "/api/v1/status");
    assert_int_equal(r.status, 200);
    response_free(&r);
    r = request(http_port(a), "GET", "/metrics");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "observatory_build_info"));
    response_free(&r);
    http_stop(a);
    http_stop(NULL);
    /* IPv6 loopback when the machine has it. */
    o.listen = "[::1]:0";
    if (http_start(&o, &a, err, sizeof(err)) == 0) {
        assert_true(http_port(a) != 0);
        http_stop(a);
    }
}

static void test_parsers(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(http_parse_u64("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
    assert_int_equal(http_parse_u64("18446744073709551616", &v), OBS_EINVAL);
    assert_int_equal(http_parse_u64("", &v), OBS_EINVAL);
    assert_int_equal(http_parse_u64("+1", &v), OBS_EINVAL);
    assert_int_equal(http_parse_u64("1 ", &v), OBS_EINVAL);
    assert_int_equal(http_parse_time_ns("1764241234.25", &v), 0);
    assert_true(v == UINT64_C(1764241234250000000));
    assert_int_equal(http_parse_time_ns("0.000000001", &v), 0);
    assert_true(v == 1);
    assert_int_equal(http_parse_time_ns("1.0000000001", &v), OBS_EINVAL);
    assert_int_equal(http_parse_time_ns("1.", &v), OBS_EINVAL);
    assert_int_equal(http_parse_time_ns(".5", &v), OBS_EINVAL);
    assert_int_equal(http_parse_time_ns("18446744074", &v), OBS_EINVAL);
    assert_int_equal(http_parse_time_ns("1e9", &v), OBS_EINVAL);

    struct sockaddr_storage ss;
    socklen_t sl;
    char err[256];
    assert_int_equal(http_parse_listen("127.0.0.1:9464", &ss, &sl, err, sizeof(err)), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 9464);
    assert_int_equal(http_parse_listen("[::1]:80", &ss, &sl, err, sizeof(err)), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(http_parse_listen("localhost:1", &ss, &sl, err, sizeof(err)), 0);
    static const char *const bad[] = {
        "",       ":9464",   "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1",
        "::1:80", "[::1]80", "[]:80",     "[::1]:x",    "example.com:80",  "1.2.3.4:000080"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (http_parse_listen(bad[i], &ss, &sl, err, sizeof(err)) != OBS_EINVAL)
            fail_msg("listen '%s' accepted", bad[i]);

    http_target t;
    const char *raw = "/api/v1/runs/4%2F2/series?metric=stage%2Fgen&from=1+2&empty";
    assert_int_equal(http_target_parse(raw, strlen(raw), &t, err, sizeof(err)), 0);
    assert_int_equal(t.n_segments, 5);
    assert_string_equal(t.segments[3], "4/2"); /* an encoded '/' stays in its segment */
    assert_string_equal(http_target_param(&t, "metric"), "stage/gen");
    assert_string_equal(http_target_param(&t, "from"), "1 2");
    assert_string_equal(http_target_param(&t, "empty"), "");
    const char *cap[4];
    assert_true(http_route_match("/api/v1/runs/{id}/series", &t, cap, 4));
    assert_string_equal(cap[0], "4/2");
    assert_false(http_route_match("/api/v1/runs/{id}", &t, cap, 4));
    assert_int_equal(http_target_check_params(&t, "metric,from,to,empty", err, sizeof(err)), 0);
    assert_int_equal(http_target_check_params(&t, "metric,from", err, sizeof(err)), OBS_EINVAL);
    assert_non_null(strstr(err, "'empty'"));
    http_target_free(&t);
    assert_int_equal(http_target_parse("/", 1, &t, err, sizeof(err)), 0);
    assert_int_equal(t.n_segments, 0);
    assert_true(http_route_match("/", &t, cap, 4));
    assert_false(http_route_match("/metrics", &t, cap, 4));
    http_target_free(&t);
    assert_int_equal(http_target_parse("x", 1, &t, err, sizeof(err)), OBS_EINVAL);
    assert_int_equal(http_target_parse("/a%4", 4, &t, err, sizeof(err)), OBS_EINVAL);
    assert_int_equal(http_target_parse("/a b", 4, &t, err, sizeof(err)), OBS_EINVAL);
    assert_int_equal(http_target_parse("/a?x=%1f", 8, &t, err, sizeof(err)), OBS_EINVAL);

    char allow[64];
    http_allow_header(HTTP_GET | HTTP_HEAD | HTTP_POST, allow, sizeof(allow));
    assert_string_equal(allow, "GET, HEAD, POST");
    char clean[8];
    http_sanitize("ab\x01\xff", clean, sizeof(clean));
    assert_string_equal(clean, "ab??");
    http_sanitize("0123456789", clean, sizeof(clean));
    assert_string_equal(clean, "0123...");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_metrics_render_escapes_labels),
        cmocka_unit_test(test_metrics_render_matches_snapshot),
        cmocka_unit_test(test_endpoints_while_running),
        cmocka_unit_test(test_metrics_agree_with_stages_json),
        cmocka_unit_test(test_run_endpoints_with_store),
        cmocka_unit_test(test_malformed_requests),
        cmocka_unit_test(test_start_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
