/*
 * fuzz_http_route.c - libFuzzer harness for what the HTTP server parses
 * from a client (core/server/http_parse.c): the request target, the routes it is
 * matched against, and the query values the handlers read (run ids,
 * times, metric names). The same input is also tried as a listen address
 * and as a Host header value.
 * Crashes, sanitizer reports and broken invariants (a route capture that is
 * empty, a parameter key that is empty) are findings.
 *
 *   CC=clang cmake -S . -B build-fuzz -G Ninja && ninja -C build-fuzz fuzz_http_route
 *   mkdir -p build-fuzz/corpus-http
 *   build-fuzz/tests/fuzz/fuzz_http_route -dict=tests/fuzz/http.dict -max_total_time=300 \
 *       build-fuzz/corpus-http
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_parse.h"
#include "util/text.h"

static const char *const patterns[] = {
    "/",
    "/metrics",
    "/healthz",
    "/readyz",
    "/api/v1/status",
    "/api/v1/stages",
    "/api/v1/runs",
    "/api/v1/runs/{id}",
    "/api/v1/runs/{id}/metrics",
    "/api/v1/runs/{id}/series",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    http_target t;
    if (http_target_parse((const char *)data, size, &t, err, sizeof(err)) == 0) {
        for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
            const char *cap[4];
            if (http_route_match(patterns[i], &t, cap, 4) && strchr(patterns[i], '{')) {
                if (cap[0][0] == '\0')
                    abort();
                uint64_t id;
                (void)http_parse_u64(cap[0], &id);
            }
        }
        for (size_t i = 0; i < t.n_params; i++)
            if (t.params[i].key[0] == '\0')
                abort();
        (void)http_target_check_params(&t, "metric,from,to", err, sizeof(err));
        uint64_t ns;
        const char *v;
        if ((v = http_target_param(&t, "from")))
            (void)http_parse_time_ns(v, &ns);
        if ((v = http_target_param(&t, "metric")))
            (void)http_valid_metric_name(v);
        char clean[64];
        text_sanitize(t.path, clean, sizeof(clean));
        http_target_free(&t);
    }
    /* The listen-address parser takes a C string. */
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    struct sockaddr_storage ss;
    socklen_t sl;
    (void)http_parse_listen(s, &ss, &sl, err, sizeof(err));
    /* So does the Host check (a header value). */
    static const char *const allowed[] = {"hostd.example"};
    (void)http_host_allowed(s, allowed, 1);
    free(s);
    return 0;
}
