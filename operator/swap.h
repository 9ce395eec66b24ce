/*
 * swap.h - asking a running hostd to hot-swap a stage's plugin.
 *
 * hostd's API: POST http://<pod>:9464/api/v1/stages/{stage}/swap with
 * {"plugin": NAME, "version": VER}, answering 200 with JSON, or 4xx/5xx with
 * {"error": {"code", "message"}}. The operator calls it through a table of
 * function pointers so that tests can put a scripted hostd in its place.
 */
#ifndef OBSOP_SWAP_H
#define OBSOP_SWAP_H

#include <stddef.h>

typedef struct swap_ops {
    /* Asks the hostd at host:port to swap `stage` to plugin/version (version
     * may be "" for any). Returns 0 on success; otherwise non-zero with a
     * message in msg (HTTP status and hostd's error message). */
    int (*swap)(void *ud, const char *host, int port, const char *stage, const char *plugin,
                const char *version, char *msg, size_t msglen);
    void *ud;
} swap_ops;

/* The real implementation over libcurl (10 s timeout). */
extern const swap_ops swap_http_ops;

#endif
