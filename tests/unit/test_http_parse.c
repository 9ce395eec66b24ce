/*
 * test_http_parse.c - the text hostd's HTTP surface reads and writes, without
 * a client: the parsers of http_parse.c (integers, times, listen addresses,
 * request targets, route patterns, Allow headers) and text_sanitize are
 * tested directly, and metrics_render output is parsed back and checked
 * against the snapshot it came from (exact counters, cumulative buckets,
 * escaping). test_http_api.c tests the same surface through a live server.
 */
#include "test_http_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "measure/metrics_prom.h"
#include "server/http_parse.h"
#include "util/text.h"

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
    /* A run.id labels every series of the pipeline and its stages. */
    strcpy(snap.run_id, "r-1");
    assert_int_equal(metrics_render(&snap, &text, &len), 0);
    assert_non_null(strstr(text, "pipeline=\"p\\\\1\\n\\\"x\\\"\",run_id=\"r-1\",stage=\"s\""));
    assert_non_null(strstr(text, "observatory_pipeline_failed{pipeline=\"p\\\\1\\n\\\"x\\\"\",run_id=\"r-1\"} 0"));
    t = prom_parse(text);
    free(t.s);
    free(text);
    /* Without a snapshot: build info only. */
    assert_int_equal(metrics_render(NULL, &text, &len), 0);
    assert_non_null(strstr(text, "observatory_build_info{version="));
    assert_null(strstr(text, "observatory_pipeline_state"));
    free(text);
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
    text_sanitize("ab\x01\xff", clean, sizeof(clean));
    assert_string_equal(clean, "ab??");
    text_sanitize("0123456789", clean, sizeof(clean));
    assert_string_equal(clean, "0123...");
}

/* The Host check against DNS rebinding: addresses, localhost and the
 * allowed names pass (any case, any port); other names, and malformed
 * values, do not. */
static void test_host_allowed(void **state)
{
    (void)state;
    const char *const allowed[] = {"hostd.example", "obs.svc"};
    static const char *const yes[] = {
        NULL,
        "127.0.0.1",
        "127.0.0.1:9464",
        "10.42.0.5:9464",
        "[::1]:9464",
        "[::1]",
        "localhost",
        "LOCALHOST:80",
        "localhost.",
        "app.localhost:9464",
        "hostd.example",
        "HOSTD.Example:9464",
        "obs.svc:1",
    };
    static const char *const no[] = {
        "",
        "attacker.example",
        "attacker.example:9464",
        "hostd.example.attacker.example",
        "localhost.attacker.example",
        "[::1",
        "[::1]x",
        "[nothost]:1",
        "127.0.0.1:x",
        ":9464",
        "evil.localhostx",
    };
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!http_host_allowed(yes[i], allowed, 2))
            fail_msg("refused Host '%s'", yes[i] ? yes[i] : "(none)");
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (http_host_allowed(no[i], allowed, 2))
            fail_msg("accepted Host '%s'", no[i]);
    assert_false(http_host_allowed("hostd.example", NULL, 0));
}

/* Error lists (one per line) reach a JSON message as one line. */
static void test_one_line(void **state)
{
    (void)state;
    char buf[64];
    text_one_line("a.yaml:1:2: x\nb.yaml:3:4: y\n", buf, sizeof buf);
    assert_string_equal(buf, "a.yaml:1:2: x; b.yaml:3:4: y");
    text_one_line("tab\there", buf, sizeof buf);
    assert_string_equal(buf, "tab?here");
    text_one_line("0123456789", buf, 5);
    assert_string_equal(buf, "0123");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parsers),
        cmocka_unit_test(test_host_allowed),
        cmocka_unit_test(test_one_line),
        cmocka_unit_test(test_metrics_render_escapes_labels),
        cmocka_unit_test(test_metrics_render_matches_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
