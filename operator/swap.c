/*
 * swap.c - the hot-swap client over libcurl (swap.h).
 */
#include "swap.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct body {
    char buf[4096];
    size_t len;
} body;

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    body *b = ud;
    size_t len = size * n, room = sizeof b->buf - 1 - b->len;
    memcpy(b->buf + b->len, p, len < room ? len : room);
    b->len += len < room ? len : room;
    b->buf[b->len] = '\0';
    return len;
}

static int swap_http(void *ud, const char *host, int port, const char *stage, const char *plugin,
                     const char *version, char *msg, size_t msglen)
{
    (void)ud;
    char errbuf[CURL_ERROR_SIZE] = "";
    body b = {.len = 0};
    int rc = -EIO;
    CURL *h = curl_easy_init();
    char *esc = h ? curl_easy_escape(h, stage, 0) : NULL, *url = NULL, *text = NULL;
    json_t *req = json_pack("{s:s}", "plugin", plugin);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (!h || !esc || !req || !hdrs) {
        snprintf(msg, msglen, "out of memory");
        rc = -ENOMEM;
        goto out;
    }
    if (version && *version)
        json_object_set_new(req, "version", json_string(version));
    int v6 = strchr(host, ':') != NULL;
    if (asprintf(&url, "http://%s%s%s:%d/api/v1/stages/%s/swap", v6 ? "[" : "", host, v6 ? "]" : "",
                 port, esc) < 0 ||
        !(text = json_dumps(req, JSON_COMPACT))) {
        url = NULL;
        rc = -ENOMEM;
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        snprintf(msg, msglen, "%s: %s", url, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status == 200) {
        rc = 0;
        goto out;
    }
    json_t *resp = json_loadb(b.buf, b.len, 0, NULL);
    const char *m = json_string_value(json_object_get(json_object_get(resp, "error"), "message"));
    snprintf(msg, msglen, "HTTP %ld: %s", status, m ? m : (b.len ? b.buf : "(empty answer)"));
    json_decref(resp);
out:
    free(url);
    free(text);
    json_decref(req);
    curl_free(esc);
    curl_slist_free_all(hdrs);
    if (h)
        curl_easy_cleanup(h);
    return rc;
}

const swap_ops swap_http_ops = {.swap = swap_http, .ud = NULL};
