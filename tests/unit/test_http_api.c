/*
 * test_http_api.c - the HTTP surface against a real pipeline: hostd's server
 * starts on 127.0.0.1 port 0 in front of gen_static -> xf_pass -> sink_null
 * running in a thread (test_http_util.h), and a small HTTP/1.1 client
 * written here fetches every endpoint and checks status, Content-Type and
 * JSON shape; /metrics agrees with /api/v1/stages; run endpoints read a real
 * store; unknown paths, wrong methods and bad parameters get JSON errors;
 * malformed requests do not hurt the server, and start errors are reported.
 * test_http_parse.c tests the parsers and the metrics text directly.
 */
#include "test_http_util.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "store/store.h"

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
/* Tests                                                                    */

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

    /* The store's writes on /metrics: the run's begin, snapshot and end. */
    response m = request(f.port, "GET", "/metrics");
    assert_int_equal(m.status, 200);
    assert_non_null(strstr(m.body, "observatory_store_writes_total{outcome=\"ok\"} "));
    assert_non_null(strstr(m.body, "observatory_store_writes_total{outcome=\"failed\"} 0\n"));
    assert_non_null(strstr(m.body, "observatory_store_failing 0\n"));
    response_free(&m);

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

/* Sends `method path` with Host `host` (and Origin `origin`, may be NULL);
 * returns the status. */
static unsigned with_host(uint16_t port, const char *method, const char *path, const char *host,
                          const char *origin, char *body, size_t body_len)
{
    char req[512];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: %s\r\n%s%s%sConnection: close\r\n\r\n", method, path,
                     host, origin ? "Origin: " : "", origin ? origin : "", origin ? "\r\n" : "");
    response r = send_raw(port, req, (size_t)n);
    unsigned st = r.status;
    if (body)
        snprintf(body, body_len, "%s", r.body ? r.body : "");
    response_free(&r);
    return st;
}

/* DNS rebinding: a page whose name now resolves to this address sends its
 * own name as Host; every request with a Host that is not an address,
 * localhost or an allowed name is refused with 421 and a JSON body,
 * reading ones too. */
static void test_host_allow_list(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f,
                  "batch_size: 64\nrun: {duration: 0}\nload: [{shape: constant, rate: 10000}]\n"
                  "http: {allowed_hosts: [hostd.example]}\n",
                  NULL, 0);
    wait_state(&f, SNAPSHOT_RUNNING);
    char host[64], body[1024];
    snprintf(host, sizeof host, "attacker.example:%u", f.port);
    assert_int_equal(with_host(f.port, "GET", "/metrics", host, NULL, body, sizeof body), 421);
    json_error_t je;
    json_t *j = json_loads(body, 0, &je);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "error"), "code")), 421);
    assert_non_null(
        strstr(json_string_value(json_object_get(json_object_get(j, "error"), "message")),
               "DNS rebinding"));
    json_decref(j);
    char origin[80];
    snprintf(origin, sizeof origin, "http://%s", host);
    assert_int_equal(with_host(f.port, "POST", "/api/v1/stages/pass/swap", host, origin, NULL, 0),
                     421);
    assert_int_equal(with_host(f.port, "GET", "/api/v1/runs", host, NULL, NULL, 0), 421);
    static const char *const ok[] = {"127.0.0.1", "localhost", "hostd.example", "HOSTD.EXAMPLE"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(host, sizeof host, "%s:%u", ok[i], f.port);
        assert_int_equal(with_host(f.port, "GET", "/healthz", host, NULL, NULL, 0), 200);
    }
    pipeline_stop(f.p);
    fixture_join(&f);
    fixture_stop(&f);
}

/* Hundreds of idle or half-open connections (headers never finished) must
 * not keep /healthz or /metrics waiting: they once did until the idle
 * timeout (10 s, the client's receive timeout here), because the server
 * took 64 connections at most. */
static void test_idle_connections(void **state)
{
    (void)state;
    fixture f;
    fixture_start(&f,
                  "batch_size: 64\nrun: {duration: 0}\nload: [{shape: constant, rate: 10000}]\n",
                  NULL, 0);
    wait_state(&f, SNAPSHOT_RUNNING);
    enum { N_IDLE = 300 };
    int fds[N_IDLE];
    for (int i = 0; i < N_IDLE; i++) {
        fds[i] = connect_to(f.port);
        if (i % 2) {
            static const char part[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n";
            assert_int_equal(send(fds[i], part, sizeof part - 1, MSG_NOSIGNAL), sizeof part - 1);
        }
    }
    response r = request(f.port, "GET", "/healthz");
    assert_int_equal(r.status, 200);
    response_free(&r);
    r = request(f.port, "GET", "/metrics");
    assert_int_equal(r.status, 200);
    response_free(&r);
    for (int i = 0; i < N_IDLE; i++)
        close(fds[i]);
    pipeline_stop(f.p);
    fixture_join(&f);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints_while_running),
        cmocka_unit_test(test_metrics_agree_with_stages_json),
        cmocka_unit_test(test_run_endpoints_with_store),
        cmocka_unit_test(test_malformed_requests),
        cmocka_unit_test(test_host_allow_list),
        cmocka_unit_test(test_idle_connections),
        cmocka_unit_test(test_start_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
