/*
 * natslink.h - what sink_nats and gen_nats share about talking to a NATS
 * server: connecting with bounded timeouts, naming libnats' reason for a
 * failure, checking names and subjects before the server sees them,
 * whether a stream takes a subject, noticing a server that has been gone
 * too long, and logging a repeated problem at most once a second.
 *
 * No libnats callback is registered here with a plugin instance as its
 * closure: libnats runs callbacks on its own threads, which may still run
 * after the instance is gone. Connection state is polled instead
 * (natslink_watch).
 */
#ifndef OBS_NATSLINK_H
#define OBS_NATSLINK_H

#include <pthread.h>
#include <stdint.h>

#include <nats/nats.h>

#include <observatory/stage.h>

#define NATSLINK_REASON_LEN 256

/* Writes libnats' reason for `s` into buf: the status text and, when the
 * calling thread has one, the detail of its last error. Returns buf. */
char *natslink_reason(natsStatus s, char *buf, size_t len);

/* Connects to `url` (one URL or a comma-separated list of up to 16;
 * the connect bounded by timeout_ms; reconnects
 * forever in the background afterwards, pings often enough to notice a
 * dead server well within timeout_ms) and makes a JetStream context with
 * the options `jo` (borrowed for the call; NULL: defaults with API
 * requests bounded by timeout_ms). `who` names the plugin in log lines. On
 * failure
 * logs "<who>: cannot connect to <url>: <reason>" and returns OBS_EIO
 * (OBS_ENOMEM when out of memory); nothing is left open. The caller owns
 * *nc and *js: jsCtx_Destroy, then natsConnection_Destroy. */
int natslink_connect(const obs_host *host, const char *who, const char *url, int64_t timeout_ms,
                     jsOptions *jo, natsConnection **nc, jsCtx **js);

/* 1 when `s` is a literal subject: dot-separated non-empty tokens of
 * printable ASCII without space, '*' or '>'. */
int natslink_subject_literal(const char *s);

/* 1 when `s` may name a stream or consumer: 1..255 printable ASCII
 * characters without space, '.', '*', '>', '/' or '\\'. */
int natslink_name_ok(const char *s);

/* 1 when the stream configuration `si` takes messages published to the
 * literal subject `subject` (a stream without subjects takes its name). */
int natslink_stream_takes(const jsStreamInfo *si, const char *subject);

/* Writes the stream's subjects, comma separated, into buf. Returns buf. */
char *natslink_stream_subjects(const jsStreamInfo *si, char *buf, size_t len);

/* Tracks how long the connection has not been connected. */
typedef struct natslink_watch {
    uint64_t down_since_ns; /* 0: connected when last polled */
    int logged_down;
} natslink_watch;

/* Polls the connection at `now_ns`. Logs (once per outage, as `who`) when
 * it is lost and when it is back. Returns the time it has been down, 0
 * when connected. */
uint64_t natslink_poll(const obs_host *host, const char *who, const char *url, natsConnection *nc,
                       natslink_watch *w, uint64_t now_ns);

/* A log line that repeats at most once a second, counting what it held back. */
typedef struct natslink_ratelimit {
    uint64_t last_ns;
    uint64_t suppressed;
} natslink_ratelimit;

void natslink_log_limited(const obs_host *host, natslink_ratelimit *rl, int level, const char *fmt,
                          ...) OBS_PRINTF(4, 5);

/* Initialises a mutex and a condition variable on CLOCK_MONOTONIC (so
 * timed waits do not move with the wall clock). Returns 0, or OBS_ENOMEM
 * with nothing left initialised. */
int natslink_sync_init(pthread_mutex_t *mu, pthread_cond_t *cv);

/* Sleeps ns nanoseconds (EINTR resumes). */
void natslink_sleep_ns(uint64_t ns);

#endif /* OBS_NATSLINK_H */
