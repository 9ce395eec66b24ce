/*
 * cli_swap.c - `hostd swap`: asks a running hostd, over its HTTP API, to
 * hot-swap one stage (POST /api/v1/stages/{name}/swap), and prints what
 * happened. A small HTTP/1.1 client over a socket: one request, the whole
 * response read until the server closes (hostd answers Connection: close).
 */
#include "cli/cli_swap.h"

#include "config/config.h"

#include <getopt.h>
#include <jansson.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: hostd swap STAGE PLUGIN [--version V] [--param KEY=VALUE]... "
               "[--no-handover]\n"
               "                  [--url http://HOST:PORT | --config FILE] [--token TOKEN]\n"
               "                  [--timeout SECONDS]\n"
               "\n"
               "Hot-swaps stage STAGE of the hostd serving at --url (or at the http.listen of\n"
               "the pipeline.yaml given with --config; default http://127.0.0.1:9464) to\n"
               "PLUGIN (a name, or a .so file in its plugin dirs).\n"
               "--param replaces the stage's parameters (all of them). The token defaults to\n"
               "$OBS_HTTP_TOKEN. Exit status 0 when the swap happened, 1 when it was refused,\n"
               "2 for bad usage.\n");
}

/* Splits http://HOST:PORT[/] into host and port; [v6] hosts allowed. */
static int parse_url(const char *url, char *host, size_t hlen, char *port, size_t plen)
{
    if (strncmp(url, "http://", 7) != 0)
        return -1;
    const char *h = url + 7, *end;
    if (*h == '[') {
        end = strchr(h, ']');
        if (!end || end[1] != ':')
            return -1;
        snprintf(host, hlen, "%.*s", (int)(end - h - 1), h + 1);
        h = end + 2;
    } else {
        end = strchr(h, ':');
        if (!end)
            return -1;
        snprintf(host, hlen, "%.*s", (int)(end - h), h);
        h = end + 1;
    }
    size_t n = strcspn(h, "/");
    if (n == 0 || n >= plen)
        return -1;
    snprintf(port, plen, "%.*s", (int)n, h);
    return 0;
}

/* Sends one request and returns the response (malloc'd) or NULL. */
static char *http_post(const char *host, const char *port, const char *path, const char *token,
                       const char *body)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return NULL;
    int fd = -1;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
        if (fd >= 0 && connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return NULL;
    char auth[600] = "";
    if (token && token[0])
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", token);
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
                     path, host, port, strlen(body), auth);
    char *resp = NULL;
    size_t len = 0;
    if (n > 0 && (size_t)n < sizeof head && write(fd, head, (size_t)n) == n &&
        write(fd, body, strlen(body)) == (ssize_t)strlen(body)) {
        char buf[4096];
        ssize_t got;
        while ((got = read(fd, buf, sizeof buf)) > 0) {
            char *r = realloc(resp, len + (size_t)got + 1);
            if (!r)
                break;
            resp = r;
            memcpy(resp + len, buf, (size_t)got);
            len += (size_t)got;
            resp[len] = '\0';
        }
    }
    close(fd);
    return resp;
}

/* The URL of the hostd that runs the pipeline of config file `path`: its
 * http.listen, with a wildcard address replaced by loopback. Returns 0, or
 * -1 after printing why. */
static int url_from_config(const char *path, char *url, size_t len)
{
    char err[4096];
    obs_config *cfg = NULL;
    if (config_load(path, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    const char *l = cfg->http_listen, *colon = strrchr(l, ':');
    int rc = -1;
    if (!colon || strcmp(colon + 1, "0") == 0) {
        fprintf(stderr,
                "hostd swap: %s: http.listen '%s' names no fixed port (hostd picks one at "
                "start): give --url\n",
                path, l);
        goto out;
    }
    char host[256];
    snprintf(host, sizeof host, "%.*s", (int)(colon - l), l);
    const char *h = strcmp(host, "0.0.0.0") == 0 ? "127.0.0.1"
                    : strcmp(host, "[::]") == 0  ? "[::1]"
                                                 : host;
    snprintf(url, len, "http://%s:%s", h, colon + 1);
    rc = 0;
out:
    config_free(cfg);
    return rc;
}

int cli_swap(int argc, char **argv)
{
    static const struct option opts[] = {
        {"version", required_argument, NULL, 'v'}, {"param", required_argument, NULL, 'p'},
        {"no-handover", no_argument, NULL, 'n'},   {"url", required_argument, NULL, 'u'},
        {"token", required_argument, NULL, 't'},   {"timeout", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},          {"config", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    const char *url = "http://127.0.0.1:9464", *token = getenv("OBS_HTTP_TOKEN");
    const char *config = NULL;
    int url_given = 0;
    char config_url[512];
    json_t *req = json_object(), *params = NULL;
    int c, status = 2;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'v': json_object_set_new(req, "version", json_string(optarg)); break;
        case 'p': {
            const char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                fprintf(stderr, "hostd swap: --param wants KEY=VALUE, got '%s'\n", optarg);
                goto out;
            }
            if (!params)
                params = json_object();
            char key[128];
            snprintf(key, sizeof key, "%.*s", (int)(eq - optarg), optarg);
            json_object_set_new(params, key, json_string(eq + 1));
            break;
        }
        case 'n': json_object_set_new(req, "handover", json_false()); break;
        case 'u':
            url = optarg;
            url_given = 1;
            break;
        case 'c': config = optarg; break;
        case 't': token = optarg; break;
        case 'T': json_object_set_new(req, "timeout_s", json_real(atof(optarg))); break;
        case 'h':
            usage(stdout);
            status = 0;
            goto out;
        default: usage(stderr); goto out;
        }
    }
    if (argc - optind != 2) {
        usage(stderr);
        goto out;
    }
    if (config && url_given) {
        fprintf(stderr, "hostd swap: give --url or --config, not both\n");
        goto out;
    }
    if (config) {
        if (url_from_config(config, config_url, sizeof config_url) < 0)
            goto out;
        url = config_url;
    }
    const char *stage = argv[optind], *plugin = argv[optind + 1];
    json_object_set_new(req, "plugin", json_string(plugin));
    if (params)
        json_object_set(req, "params", params);
    char host[256], port[16], path[512];
    if (parse_url(url, host, sizeof host, port, sizeof port) != 0) {
        fprintf(stderr, "hostd swap: --url must look like http://127.0.0.1:9464, got '%s'\n", url);
        goto out;
    }
    if (strspn(stage, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(stage)) {
        fprintf(stderr, "hostd swap: '%s' is not a stage name\n", stage);
        goto out;
    }
    snprintf(path, sizeof path, "/api/v1/stages/%s/swap", stage);
    char *body = json_dumps(req, JSON_COMPACT);
    char *resp = body ? http_post(host, port, path, token, body) : NULL;
    free(body);
    status = 1;
    if (!resp) {
        fprintf(stderr, "hostd swap: no answer from %s (is hostd running with HTTP there?)\n", url);
        goto out;
    }
    int code = 0;
    sscanf(resp, "HTTP/1.%*d %d", &code);
    const char *json = strstr(resp, "\r\n\r\n");
    json_t *j = json ? json_loads(json + 4, 0, NULL) : NULL;
    if (code == 200 && j) {
        printf("stage '%s': %s %s -> %s %s (state %s), pause %.3f ms, new version loaded in "
               "%.1f ms\n",
               json_string_value(json_object_get(j, "stage")),
               json_string_value(json_object_get(json_object_get(j, "from"), "plugin")),
               json_string_value(json_object_get(json_object_get(j, "from"), "version")),
               json_string_value(json_object_get(json_object_get(j, "to"), "plugin")),
               json_string_value(json_object_get(json_object_get(j, "to"), "version")),
               json_string_value(json_object_get(j, "state")),
               json_number_value(json_object_get(j, "pause_s")) * 1e3,
               json_number_value(json_object_get(j, "load_s")) * 1e3);
        status = 0;
    } else {
        const char *msg =
            j ? json_string_value(json_object_get(json_object_get(j, "error"), "message")) : NULL;
        fprintf(stderr, "hostd swap: refused (HTTP %d): %s\n", code, msg ? msg : "no JSON body");
    }
    json_decref(j);
    free(resp);
out:
    json_decref(params);
    json_decref(req);
    return status;
}
