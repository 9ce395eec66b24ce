/*
 * test_op_watch.c - the watch stream parser: events split across reads at
 * every byte, several events per read, blank keep-alive lines, ERROR events
 * carrying 410, oversized and malformed lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include "watch.h"

#include <errno.h>
#include <string.h>

typedef struct seen {
    int n;
    char types[8][16];
    char rvs[8][16];
    int stop_at;
} seen;

static int on_event(void *ud, const char *type, json_t *obj)
{
    seen *s = ud;
    if (s->n < 8) {
        snprintf(s->types[s->n], sizeof s->types[0], "%s", type);
        const char *rv =
            json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
        snprintf(s->rvs[s->n], sizeof s->rvs[0], "%s", rv ? rv : "");
    }
    s->n++;
    return s->stop_at && s->n == s->stop_at ? -ESTALE : 0;
}

static const char *STREAM =
    "{\"type\":\"ADDED\",\"object\":{\"kind\":\"StageSet\",\"metadata\":{\"name\":\"a\","
    "\"resourceVersion\":\"5\"}}}\n"
    "\n"
    "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"StageSet\",\"metadata\":{\"resourceVersion\":"
    "\"9\"}}}\r\n"
    "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":"
    "\"Failure\","
    "\"message\":\"too old resource version: 5 (9)\",\"reason\":\"Expired\",\"code\":410}}\n";

static void test_every_split(void **state)
{
    (void)state;
    size_t len = strlen(STREAM);
    for (size_t cut = 0; cut <= len; cut++) {
        seen s = {0};
        watch_parser p;
        watch_parser_init(&p, 1 << 20, on_event, &s);
        assert_int_equal(watch_parser_feed(&p, STREAM, cut), 0);
        assert_int_equal(watch_parser_feed(&p, STREAM + cut, len - cut), 0);
        assert_int_equal(s.n, 3);
        assert_string_equal(s.types[0], "ADDED");
        assert_string_equal(s.rvs[0], "5");
        assert_string_equal(s.types[1], "BOOKMARK");
        assert_string_equal(s.rvs[1], "9");
        assert_string_equal(s.types[2], "ERROR");
        assert_int_equal(watch_parser_pending(&p), 0);
        watch_parser_free(&p);
    }
}

static void test_byte_at_a_time(void **state)
{
    (void)state;
    seen s = {0};
    watch_parser p;
    watch_parser_init(&p, 1 << 20, on_event, &s);
    for (const char *c = STREAM; *c; c++)
        assert_int_equal(watch_parser_feed(&p, c, 1), 0);
    assert_int_equal(s.n, 3);
    watch_parser_free(&p);
}

static void test_error_410_code(void **state)
{
    (void)state;
    json_t *st = json_pack("{s:s, s:i}", "kind", "Status", "code", 410);
    assert_int_equal(watch_status_code(st), 410);
    json_decref(st);
}

static void test_callback_stops_feed(void **state)
{
    (void)state;
    seen s = {.stop_at = 1};
    watch_parser p;
    watch_parser_init(&p, 1 << 20, on_event, &s);
    assert_int_equal(watch_parser_feed(&p, STREAM, strlen(STREAM)), -ESTALE);
    assert_int_equal(s.n, 1);
    watch_parser_free(&p);
}

static void test_partial_tail_pending(void **state)
{
    (void)state;
    seen s = {0};
    watch_parser p;
    watch_parser_init(&p, 1 << 20, on_event, &s);
    assert_int_equal(watch_parser_feed(&p, "{\"type\":\"ADDED\",\"obj", 19), 0);
    assert_int_equal(s.n, 0);
    assert_int_equal(watch_parser_pending(&p), 19);
    watch_parser_free(&p);
}

static void test_bad_lines(void **state)
{
    (void)state;
    seen s = {0};
    watch_parser p;
    watch_parser_init(&p, 64, on_event, &s);
    assert_int_equal(watch_parser_feed(&p, "not json\n", 9), -EBADMSG);
    watch_parser_free(&p);
    watch_parser_init(&p, 64, on_event, &s);
    assert_int_equal(watch_parser_feed(&p, "{\"type\":\"ADDED\"}\n", 17), -EBADMSG); /* no object */
    watch_parser_free(&p);
    watch_parser_init(&p, 64, on_event, &s);
    char big[100];
    memset(big, 'x', sizeof big);
    assert_int_equal(watch_parser_feed(&p, big, sizeof big), -E2BIG);
    watch_parser_free(&p);
    assert_int_equal(s.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_split),          cmocka_unit_test(test_byte_at_a_time),
        cmocka_unit_test(test_error_410_code),       cmocka_unit_test(test_callback_stops_feed),
        cmocka_unit_test(test_partial_tail_pending), cmocka_unit_test(test_bad_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
