/*
 * natslink.c - connection and naming helpers shared by the NATS plugins
 * (contracts in natslink.h).
 */
#include "natslink.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

char *natslink_reason(natsStatus s, char *buf, size_t len)
{
    natsStatus last = NATS_OK;
    const char *detail = nats_GetLastError(&last);
    const char *text = natsStatus_GetText(s);
    /* The detail starts with where libnats noticed: "(conn.c:2088): ". */
    if (detail && detail[0] == '(') {
        const char *end = strstr(detail, "): ");
        if (end)
            detail = end + 3;
    }
    if (detail && detail[0] && strcmp(detail, text) != 0)
        snprintf(buf, len, "%s (%s)", text, detail);
    else
        snprintf(buf, len, "%s", text);
    return buf;
}

/* Gives opts the server URL, or the servers of a comma-separated list
 * (natsOptions_SetURL takes one URL). */
static natsStatus set_servers(const obs_host *host, natsOptions *opts, const char *url)
{
    if (!strchr(url, ','))
        return natsOptions_SetURL(opts, url);
    size_t len = strlen(url);
    char *copy = host->alloc(host, len + 1);
    if (!copy)
        return NATS_NO_MEMORY;
    memcpy(copy, url, len + 1);
    const char *servers[16];
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ", ", &save); t && n < 16; t = strtok_r(NULL, ", ", &save))
        servers[n++] = t;
    natsStatus s = n ? natsOptions_SetServers(opts, servers, n) : NATS_INVALID_ARG;
    host->free(host, copy);
    return s;
}

int natslink_connect(const obs_host *host, const char *who, const char *url, int64_t timeout_ms,
                     jsOptions *jo, natsConnection **nc, jsCtx **js)
{
    natsOptions *opts = NULL;
    char reason[NATSLINK_REASON_LEN];
    char name[128];
    *nc = NULL;
    *js = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_NO_MEMORY)
        return OBS_ENOMEM;
    snprintf(name, sizeof name, "observatory %s %s", who, host->stage_name);
    /* A server that stops answering is noticed after two missed pings:
     * well within the timeout the plugin gives a lost server. */
    int64_t ping_ms = timeout_ms / 4 < 1000 ? 1000 : timeout_ms / 4;
    if (s == NATS_OK)
        s = set_servers(host, opts, url);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(opts, timeout_ms);
    if (s == NATS_OK)
        s = natsOptions_SetName(opts, name);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(opts, 250);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(opts, ping_ms);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(opts, 2);
    if (s == NATS_OK)
        s = natsConnection_Connect(nc, opts);
    if (s == NATS_OK) {
        jsOptions def;
        if (!jo) {
            jsOptions_Init(&def);
            def.Wait = timeout_ms;
            jo = &def;
        }
        s = natsConnection_JetStream(js, *nc, jo);
    }
    if (s != NATS_OK) {
        host->log(host, OBS_LOG_ERROR, "%s: cannot connect to %s: %s", who, url,
                  natslink_reason(s, reason, sizeof reason));
        if (*nc)
            natsConnection_Destroy(*nc);
        *nc = NULL;
        *js = NULL;
    }
    natsOptions_Destroy(opts);
    return s == NATS_OK ? OBS_OK : s == NATS_NO_MEMORY ? OBS_ENOMEM : OBS_EIO;
}

int natslink_subject_literal(const char *s)
{
    if (!s || !*s || strlen(s) > 255)
        return 0;
    int token_len = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '.') {
            if (token_len == 0)
                return 0;
            token_len = 0;
            continue;
        }
        if (c <= ' ' || c >= 0x7f || c == '*' || c == '>')
            return 0;
        token_len++;
    }
    return token_len > 0;
}

int natslink_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 255)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' || c == '/' || c == '\\')
            return 0;
    }
    return 1;
}

/* 1 when the subject pattern `p` (tokens, '*' one token, a final '>' one or
 * more) matches the literal subject `s`. */
static int subject_match(const char *p, const char *s)
{
    for (;;) {
        const char *pe = strchr(p, '.'), *se = strchr(s, '.');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p);
        size_t sl = se ? (size_t)(se - s) : strlen(s);
        if (pl == 1 && p[0] == '>')
            return 1; /* s has at least this token left */
        if (!(pl == 1 && p[0] == '*') && (pl != sl || memcmp(p, s, pl) != 0))
            return 0;
        if (!pe || !se)
            return !pe && !se;
        p = pe + 1;
        s = se + 1;
    }
}

int natslink_stream_takes(const jsStreamInfo *si, const char *subject)
{
    const jsStreamConfig *c = si ? si->Config : NULL;
    if (!c)
        return 0;
    if (c->SubjectsLen == 0)
        return c->Name && strcmp(c->Name, subject) == 0;
    for (int i = 0; i < c->SubjectsLen; i++)
        if (c->Subjects[i] && subject_match(c->Subjects[i], subject))
            return 1;
    return 0;
}

char *natslink_stream_subjects(const jsStreamInfo *si, char *buf, size_t len)
{
    const jsStreamConfig *c = si ? si->Config : NULL;
    size_t used = 0;
    buf[0] = '\0';
    if (!c)
        return buf;
    if (c->SubjectsLen == 0 && c->Name)
        snprintf(buf, len, "%s", c->Name);
    for (int i = 0; i < c->SubjectsLen && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
                         c->Subjects[i] ? c->Subjects[i] : "");
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf;
}

uint64_t natslink_poll(const obs_host *host, const char *who, const char *url, natsConnection *nc,
                       natslink_watch *w, uint64_t now_ns)
{
    if (natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED) {
        if (w->logged_down)
            host->log(host, OBS_LOG_INFO, "%s: connection to %s is back after %.1f s", who, url,
                      (double)(now_ns - w->down_since_ns) / 1e9);
        w->down_since_ns = 0;
        w->logged_down = 0;
        return 0;
    }
    if (w->down_since_ns == 0)
        w->down_since_ns = now_ns ? now_ns : 1;
    if (!w->logged_down) {
        host->log(host, OBS_LOG_WARN, "%s: lost the connection to %s; reconnecting", who, url);
        w->logged_down = 1;
    }
    return now_ns - w->down_since_ns;
}

void natslink_log_limited(const obs_host *host, natslink_ratelimit *rl, int level, const char *fmt,
                          ...)
{
    uint64_t now = host->now_ns();
    if (rl->last_ns && now - rl->last_ns < 1000000000ull) {
        rl->suppressed++;
        return;
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (rl->suppressed)
        host->log(host, level, "%s (%llu more like it since the last such line)", msg,
                  (unsigned long long)rl->suppressed);
    else
        host->log(host, level, "%s", msg);
    rl->last_ns = now;
    rl->suppressed = 0;
}

int natslink_sync_init(pthread_mutex_t *mu, pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0)
        return OBS_ENOMEM;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int e = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    if (e != 0)
        return OBS_ENOMEM;
    if (pthread_mutex_init(mu, NULL) != 0) {
        pthread_cond_destroy(cv);
        return OBS_ENOMEM;
    }
    return 0;
}

void natslink_sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                          .tv_nsec = (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}
