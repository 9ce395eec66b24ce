/*
 * config_scalars.c - strict parsers for the scalar values of pipeline.yaml,
 * and the checks built on them.
 *
 * libcyaml hands every scalar over as text (config_schema.c says why), so
 * numbers, sizes, durations, names and listen addresses are parsed here,
 * strictly: no sign where none belongs, no trailing garbage, no overflow,
 * no inf or nan. The parsers return 0 or OBS_EINVAL and leave their output
 * alone on failure; the config_check_* functions wrap them for the loader,
 * reporting at a field path what is wrong and what would be accepted. The
 * `load:` phases, a stage's `ab:` and plugin parameters use the same
 * parsers, and so does hostd's command line (config_parse_duration).
 */
#include "config/config.h"
#include "config/config_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Strict unsigned decimal: digits only, no sign, no spaces, no overflow. */
int config_parse_u64(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    if (!*s)
        return OBS_EINVAL;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || x > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return OBS_EINVAL;
        x = x * 10 + (uint64_t)(*s - '0');
    }
    *v = x;
    return 0;
}

/* Strict finite double: [+-]digits[.digits][e[+-]digits], no inf/nan/hex. */
int config_parse_double(const char *s, double *v)
{
    char *end;
    if (!*s || strspn(s, "0123456789+-.eE") != strlen(s))
        return OBS_EINVAL;
    errno = 0;
    double x = strtod(s, &end);
    if (*end || !isfinite(x))
        return OBS_EINVAL;
    *v = x;
    return 0;
}

/* Bytes, with an optional B, KiB, MiB or GiB suffix. */
int config_parse_size(const char *s, uint64_t *v)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } units[] = {{"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}};
    char digits[24];
    size_t n = strspn(s, "0123456789");
    if (n == 0 || n >= sizeof digits)
        return OBS_EINVAL;
    memcpy(digits, s, n);
    digits[n] = '\0';
    const char *suffix = s + n + strspn(s + n, " ");
    uint64_t x;
    if (config_parse_u64(digits, &x) != 0)
        return OBS_EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(suffix, units[i].suffix) == 0) {
            if (x > UINT64_MAX >> units[i].shift)
                return OBS_EINVAL;
            *v = x << units[i].shift;
            return 0;
        }
    return OBS_EINVAL;
}

int config_parse_duration(const char *s, uint64_t *ns)
{
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {{"ns", 1},          {"us", 1000},         {"\xc2\xb5s", 1000},
                 {"ms", 1000000},    {"s", 1000000000},    {"", 1000000000},
                 {"m", 60000000000}, {"h", 3600000000000}, {"d", 86400000000000}};
    uint64_t whole = 0, frac = 0, frac_div = 1;
    if (!s || !ns || *s < '0' || *s > '9')
        return OBS_EINVAL;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (whole > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return OBS_EINVAL;
        whole = whole * 10 + (uint64_t)(*s - '0');
    }
    if (*s == '.') {
        if (*++s < '0' || *s > '9')
            return OBS_EINVAL;
        /* Digits past the 18th are below a nanosecond of any unit. */
        for (; *s >= '0' && *s <= '9'; s++)
            if (frac_div < 1000000000000000000u) {
                frac = frac * 10 + (uint64_t)(*s - '0');
                frac_div *= 10;
            }
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(s, units[i].unit) != 0)
            continue;
        unsigned __int128 total = (unsigned __int128)whole * units[i].ns +
                                  (unsigned __int128)frac * units[i].ns / frac_div;
        if (total > UINT64_MAX)
            return OBS_EINVAL;
        *ns = (uint64_t)total;
        return 0;
    }
    return OBS_EINVAL;
}

/* Pipeline names allow [A-Za-z0-9_.-], stage names [a-z0-9_-]; 1..63 bytes. */
bool config_name_ok(const char *s, bool pipeline)
{
    const char *allowed = pipeline
                              ? "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
                              : "abcdefghijklmnopqrstuvwxyz0123456789_-";
    size_t n = strlen(s);
    return n >= 1 && n <= 63 && strspn(s, allowed) == n;
}

static bool hostname_ok(const char *h)
{
    size_t n = strlen(h), label = 0;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i <= n; i++) {
        char c = h[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || h[i - 1] == '-' || h[i - label] == '-')
                return false;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '-') {
            label++;
        } else {
            return false;
        }
    }
    return true;
}

/* Checks "host:port" or "[ipv6]:port"; NULL if fine, else what is wrong. */
const char *config_run_id_problem(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64)
        return "must be 1 to 64 characters";
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return "may hold only letters, digits, '.', '_' and '-'";
    }
    return NULL;
}

const char *config_listen_problem(const char *s)
{
    char host[256];
    const char *port;
    if (*s == '[') {
        const char *rb = strchr(s, ']');
        unsigned char addr[16];
        if (!rb || rb[1] != ':')
            return "expected [ipv6]:port";
        if ((size_t)(rb - s - 1) >= sizeof host)
            return "invalid IPv6 address";
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = '\0';
        if (inet_pton(AF_INET6, host, addr) != 1)
            return "invalid IPv6 address";
        port = rb + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon)
            return "expected host:port or [ipv6]:port";
        if (colon == s || (size_t)(colon - s) >= sizeof host)
            return "missing host";
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        if (strchr(host, ':'))
            return "an IPv6 address must be written in brackets: [addr]:port";
        unsigned char addr[4];
        if (strspn(host, "0123456789.") == strlen(host)) {
            if (inet_pton(AF_INET, host, addr) != 1)
                return "invalid IPv4 address";
        } else if (!hostname_ok(host)) {
            return "invalid host name";
        } else if (strcmp(host, "localhost") != 0) {
            /* What the server binds: it resolves no names (http_parse_listen). */
            return "a host name: hostd resolves none; use a numeric address (or localhost)";
        }
        port = colon + 1;
    }
    uint64_t p;
    if (strlen(port) > 5 || config_parse_u64(port, &p) != 0 || p > 65535)
        return "port must be a number 0..65535";
    return NULL;
}

void config_check_u32(loader *L, const char *path, const char *text, uint32_t *out, uint32_t lo,
                      uint32_t hi)
{
    uint64_t v;
    if (!text)
        return;
    if (config_parse_u64(text, &v) != 0)
        config_lerr(L, path, "expected an unsigned integer, got '%s'", text);
    else if (v < lo || v > hi)
        config_lerr(L, path, "value %s is out of range [%u, %u]", text, lo, hi);
    else
        *out = (uint32_t)v;
}

void config_check_duration(loader *L, const char *path, const char *text, uint64_t *out)
{
    if (text && config_parse_duration(text, out) != 0)
        config_lerr(L, path,
                    "invalid duration '%s': expected a number with a unit ns, us, ms, s, m or h "
                    "(e.g. 250ms, 30s, 2m); a bare number means seconds",
                    text);
}

void config_check_plugin_name(loader *L, const char *path, const char *plugin)
{
    size_t pl = strlen(plugin);
    bool is_file = pl > 3 && strcmp(plugin + pl - 3, ".so") == 0;
    if (!is_file && (pl == 0 || pl > 63 ||
                     strspn(plugin, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "0123456789_.-") != pl))
        config_lerr(L, path,
                    "invalid plugin '%s': expected a plugin name ([A-Za-z0-9_.-], up to 63 "
                    "characters) or a file name ending in .so",
                    plugin);
}
