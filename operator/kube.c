/*
 * kube.c - the Kubernetes REST client (kube.h).
 */
#include "kube.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct kube_client {
    kube_config cfg;
    pthread_mutex_t token_mu;
    char *token; /* current bearer token */
    time_t token_read;
    CURLSH *share;
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST];
};

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *ud)
{
    (void)h;
    (void)a;
    kube_client *c = ud;
    pthread_mutex_lock(&c->share_mu[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *ud)
{
    (void)h;
    kube_client *c = ud;
    pthread_mutex_unlock(&c->share_mu[d]);
}

/* Re-reads the token file when it is older than KUBE_TOKEN_REREAD_S. The
 * previous token stays in use if the file cannot be read for a moment
 * (the kubelet replaces it with a rename, so it is never half-written). */
static char *token_get(kube_client *c)
{
    char *out = NULL;
    pthread_mutex_lock(&c->token_mu);
    time_t now = time(NULL);
    if (c->cfg.token_file && (!c->token || now - c->token_read >= KUBE_TOKEN_REREAD_S)) {
        FILE *f = fopen(c->cfg.token_file, "r");
        if (f) {
            char buf[8192];
            size_t n = fread(buf, 1, sizeof buf - 1, f);
            fclose(f);
            buf[n] = '\0';
            while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
                buf[--n] = '\0';
            char *t = strdup(buf);
            if (t) {
                free(c->token);
                c->token = t;
                c->token_read = now;
            }
        }
    }
    if (c->token)
        out = strdup(c->token);
    pthread_mutex_unlock(&c->token_mu);
    return out;
}

kube_client *kube_client_new(kube_config *cfg, char *err, size_t errlen)
{
    kube_client *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    pthread_mutex_init(&c->token_mu, NULL);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&c->share_mu[i], NULL);
    if (c->cfg.token && !(c->token = strdup(c->cfg.token)))
        goto fail;
    c->share = curl_share_init();
    if (!c->share)
        goto fail;
    curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
    curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
    curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
    return c;
fail:
    snprintf(err, errlen, "out of memory");
    kube_client_free(c);
    return NULL;
}

void kube_client_free(kube_client *c)
{
    if (!c)
        return;
    if (c->share)
        curl_share_cleanup(c->share);
    kubeconfig_free(&c->cfg);
    free(c->token);
    pthread_mutex_destroy(&c->token_mu);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&c->share_mu[i]);
    free(c);
}

const char *kube_client_namespace(const kube_client *c)
{
    return c->cfg.namespace;
}

char *kube_escape(const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    char *out = e ? strdup(e) : NULL;
    curl_free(e);
    return out;
}

typedef struct sink {
    char *buf;
    size_t len, cap;
    watch_parser *parser;
    int parser_rc;
    atomic_int *stop;
} sink;

/* What the last response on this thread said beyond its body. */
static _Thread_local int last_retry_after_s = -1;

int kube_last_retry_after_s(void)
{
    return last_retry_after_s;
}

/* Picks Retry-After (seconds; the HTTP-date form is not used by API servers). */
static size_t on_header(char *line, size_t size, size_t n, void *ud)
{
    (void)ud;
    size_t len = size * n;
    static const char name[] = "retry-after:";
    if (len > sizeof name - 1 && strncasecmp(line, name, sizeof name - 1) == 0) {
        char num[16];
        size_t i = sizeof name - 1, k = 0;
        while (i < len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        while (i < len && k < sizeof num - 1 && line[i] >= '0' && line[i] <= '9')
            num[k++] = line[i++];
        num[k] = '\0';
        if (k)
            last_retry_after_s = atoi(num);
    }
    return len;
}

static size_t on_data(char *ptr, size_t size, size_t n, void *ud)
{
    sink *s = ud;
    size_t len = size * n;
    if (s->parser) {
        s->parser_rc = watch_parser_feed(s->parser, ptr, len);
        return s->parser_rc ? 0 : len; /* 0 aborts the transfer */
    }
    if (s->len + len + 1 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16384;
        while (cap < s->len + len + 1)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b)
            return 0;
        s->buf = b;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, ptr, len);
    s->len += len;
    s->buf[s->len] = '\0';
    return len;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c2, curl_off_t d)
{
    (void)a;
    (void)b;
    (void)c2;
    (void)d;
    sink *s = ud;
    return s->stop && atomic_load(s->stop) ? 1 : 0;
}

static CURL *easy(kube_client *c, const char *method, const char *path, struct curl_slist **hdrs,
                  const char *content_type, char *body_text, sink *s, char *errbuf)
{
    CURL *h = curl_easy_init();
    if (!h)
        return NULL;
    char *url = NULL;
    if (asprintf(&url, "%s%s", c->cfg.server, path) < 0) {
        curl_easy_cleanup(h);
        return NULL;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    free(url); /* libcurl copies string options */
    curl_easy_setopt(h, CURLOPT_SHARE, c->share);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    last_retry_after_s = -1;
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "observatory-operator/0.1");
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (c->cfg.insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (c->cfg.ca_file)
        curl_easy_setopt(h, CURLOPT_CAINFO, c->cfg.ca_file);
    if (c->cfg.ca_data) {
        struct curl_blob b = {c->cfg.ca_data, c->cfg.ca_data_len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &b);
    }
    if (c->cfg.cert_file)
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->cfg.cert_file);
    if (c->cfg.key_file)
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->cfg.key_file);
    if (c->cfg.cert_data) {
        struct curl_blob b = {c->cfg.cert_data, c->cfg.cert_data_len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &b);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
    }
    if (c->cfg.key_data) {
        struct curl_blob b = {c->cfg.key_data, c->cfg.key_data_len, CURL_BLOB_COPY};
        curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &b);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
    }
    *hdrs = curl_slist_append(*hdrs, "Accept: application/json");
    char *tok = token_get(c);
    if (tok) {
        char *hdr = NULL;
        if (asprintf(&hdr, "Authorization: Bearer %s", tok) >= 0) {
            *hdrs = curl_slist_append(*hdrs, hdr);
            free(hdr);
        }
        free(tok);
    }
    if (content_type) {
        char hdr[128];
        snprintf(hdr, sizeof hdr, "Content-Type: %s", content_type);
        *hdrs = curl_slist_append(*hdrs, hdr);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, *hdrs);
    if (body_text) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body_text);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body_text));
    }
    return h;
}

int kube_request(kube_client *c, const char *method, const char *path, const char *content_type,
                 const json_t *body, long *status, json_t **resp, char *err, size_t errlen)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    sink s = {0};
    int rc = 0;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    *status = 0;
    if (resp)
        *resp = NULL;
    CURL *h = easy(c, method, path, &hdrs, content_type, text, &s, errbuf);
    if (!h) {
        rc = -ENOMEM;
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s %s: %s", method, path,
                 errbuf[0] ? errbuf : curl_easy_strerror(cc));
        rc = -EIO;
        goto out;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (resp && s.len)
        *resp = json_loadb(s.buf, s.len, 0, NULL);
out:
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    free(text);
    free(s.buf);
    return rc;
}

/* Maps a non-2xx answer to an error, with the Status message in err. */
static int check(const char *what, const char *path, long status, json_t *resp, char *err,
                 size_t errlen)
{
    if (status >= 200 && status < 300)
        return 0;
    const char *msg = json_string_value(json_object_get(resp, "message"));
    snprintf(err, errlen, "%s %s: HTTP %ld: %s", what, path, status, msg ? msg : "(no message)");
    switch (status) {
    case 404: return -ENOENT;
    case 409: return -EAGAIN;
    case 410: return -ESTALE;
    case 429: return -EBUSY;
    case 400:
    case 403:
    case 413:
    case 422: return -EINVAL;
    default: return -EIO;
    }
}

static int call(kube_client *c, const char *method, const char *path, const char *ctype,
                const json_t *body, json_t **out, char *err, size_t errlen)
{
    long status;
    json_t *resp = NULL;
    int rc = kube_request(c, method, path, ctype, body, &status, &resp, err, errlen);
    if (rc == 0)
        rc = check(method, path, status, resp, err, errlen);
    if (rc == 0 && out)
        *out = resp;
    else
        json_decref(resp);
    return rc;
}

int kube_get(kube_client *c, const char *path, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    return call(c, "GET", path, NULL, NULL, out, err, errlen);
}

int kube_apply(kube_client *c, const char *path, const json_t *obj, const char *manager,
               json_t **out, char *err, size_t errlen)
{
    char *m = kube_escape(manager), *full = NULL;
    if (!m || asprintf(&full, "%s%sfieldManager=%s&force=true", path, strchr(path, '?') ? "&" : "?",
                       m) < 0) {
        free(m);
        return -ENOMEM;
    }
    free(m);
    /* JSON is YAML, so the apply body is the object serialized as JSON. */
    int rc = call(c, "PATCH", full, "application/apply-patch+yaml", obj, out, err, errlen);
    free(full);
    return rc;
}

int kube_merge_patch(kube_client *c, const char *path, const json_t *patch, json_t **out, char *err,
                     size_t errlen)
{
    return call(c, "PATCH", path, "application/merge-patch+json", patch, out, err, errlen);
}

int kube_create(kube_client *c, const char *path, const json_t *obj, json_t **out, char *err,
                size_t errlen)
{
    return call(c, "POST", path, "application/json", obj, out, err, errlen);
}

int kube_replace(kube_client *c, const char *path, const json_t *obj, json_t **out, char *err,
                 size_t errlen)
{
    return call(c, "PUT", path, "application/json", obj, out, err, errlen);
}

int kube_watch(kube_client *c, const char *path, watch_parser *p, atomic_int *stop, long *status,
               char *err, size_t errlen)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs = NULL;
    sink s = {.parser = p, .stop = stop};
    int rc = 0;
    *status = 0;
    CURL *h = easy(c, "GET", path, &hdrs, NULL, NULL, &s, errbuf);
    if (!h)
        return -ENOMEM;
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &s);
    /* A dead connection that never says so: give up after 2 minutes with no
     * bytes (the server sends bookmarks about once a minute). */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 120L);
    /* Non-200 answers are a Status object, not events: fail on them so the
     * body is not fed to the parser as one. */
    curl_easy_setopt(h, CURLOPT_FAILONERROR, 1L);
    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (s.parser_rc) {
        rc = s.parser_rc;
        snprintf(err, errlen, "watch %s: stream: %s", path, strerror(rc < 0 ? -rc : rc));
    } else if (cc == CURLE_ABORTED_BY_CALLBACK) {
        rc = -ECANCELED;
    } else if (cc == CURLE_HTTP_RETURNED_ERROR) {
        snprintf(err, errlen, "watch %s: HTTP %ld", path, *status);
        /* 410: the resourceVersion was compacted away. 504 "Too large
         * resource version": the server is behind the resourceVersion
         * (restarted on other storage, or a lagging replica). Both mean
         * the stream cannot resume from there. */
        rc = *status == 410 ? -ESTALE : *status == 504 ? -ERANGE : -EIO;
    } else if (cc != CURLE_OK) {
        snprintf(err, errlen, "watch %s: %s", path, errbuf[0] ? errbuf : curl_easy_strerror(cc));
        rc = -EIO;
    }
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    return rc;
}
