/*
 * bench_metrics.c - obs-bench-metrics: what a Prometheus scrape of hostd
 * costs with a 20-stage pipeline (target: 5 ms or less).
 *
 * Two measurements, each the median over `--runs` runs of the mean of
 * `--scrapes` operations:
 *   render   metrics_render() of a snapshot of 20 stages whose histograms
 *            hold values spread over many buckets (no pipeline needed);
 *   scrape   GET /metrics over loopback from hostd's HTTP server in front
 *            of a live 20-stage pipeline (gen_static -> 18 x xf_pass ->
 *            sink_null at a constant rate): snapshot + render + HTTP.
 * The baseline is GET /healthz on the same server in the same runs (the
 * HTTP round trip alone), so `scrape - healthz` is what /metrics adds.
 * Runs alternate the cases so drift does not favour one. Asserts no
 * timing; exits nonzero when a request fails.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <pthread.h>

#include "bench_util.h"
#include "config/config.h"
#include "server/http.h"
#include "measure/metrics_prom.h"
#include "engine/pipeline.h"
#include "measure/snapshot.h"

#define N_STAGES 20
#define MAX_RUNS 101

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Log-normal-ish values around 20 us, over several decades. */
static void fill(histogram *h, uint64_t *seed, int n)
{
    for (int i = 0; i < n; i++) {
        double u = ((double)(rng_next(seed) >> 11) + 1.0) / 9007199254740992.0;
        double v = ((double)(rng_next(seed) >> 11) + 1.0) / 9007199254740992.0;
        double z = sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
        histogram_record(h, (uint64_t)(20000.0 * exp(1.5 * z)));
    }
}

static void synthetic_snapshot(obs_snapshot *s, stage_sample *st)
{
    uint64_t seed = 42;
    memset(s, 0, sizeof(*s));
    strcpy(s->pipeline, "bench");
    s->state = SNAPSHOT_RUNNING;
    s->t_start_ns = 1;
    s->t_mono_ns = 1000000000;
    s->n_stages = N_STAGES;
    s->stages = st;
    for (int i = 0; i < N_STAGES; i++) {
        stage_sample *x = &st[i];
        memset(x, 0, sizeof(*x));
        snprintf(x->name, sizeof(x->name), "stage%02d", i);
        strcpy(x->plugin, i == 0 ? "gen_static" : i == N_STAGES - 1 ? "sink_null" : "xf_pass");
        strcpy(x->version, "1.0.0");
        strcpy(x->kind, i == 0 ? "generator" : i == N_STAGES - 1 ? "sink" : "transform");
        x->records_in = x->records_out = 123456789;
        x->bytes_in = x->bytes_out = 1975308624;
        x->callback_wall_ns = 987654321;
        x->ring_capacity = i == N_STAGES - 1 ? 0 : 16;
        x->service = calloc(1, sizeof(histogram));
        fill(x->service, &seed, 20000);
        if (i == 0) {
            x->lag = calloc(1, sizeof(histogram));
            fill(x->lag, &seed, 20000);
        }
        if (i == N_STAGES - 1) {
            x->latency = calloc(1, sizeof(histogram));
            fill(x->latency, &seed, 20000);
        }
    }
}

/* One GET over a new loopback connection; returns the body size or -1. */
static long http_get(uint16_t port, const char *target, char *buf, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                     target);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        close(fd);
        return -1;
    }
    size_t len = 0;
    ssize_t r;
    while ((r = recv(fd, buf + len, cap - len - 1, 0)) > 0)
        len += (size_t)r;
    close(fd);
    buf[len] = '\0';
    if (strncmp(buf, "HTTP/1.1 200", 12) != 0)
        return -1;
    char *body = strstr(buf, "\r\n\r\n");
    return body ? (long)(len - (size_t)(body + 4 - buf)) : -1;
}

static void *run_pipeline(void *arg)
{
    pipeline_run(arg, NULL, NULL);
    return NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: obs-bench-metrics [--runs N] [--scrapes N] [--plugin-dir DIR]\n");
}

int main(int argc, char **argv)
{
    int runs = 5, scrapes = 50;
    const char *plugin_dir = OBS_BENCH_PLUGIN_DIR;
    static const struct option opts[] = {{"runs", required_argument, NULL, 'r'},
                                         {"scrapes", required_argument, NULL, 's'},
                                         {"plugin-dir", required_argument, NULL, 'P'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r': runs = atoi(optarg); break;
        case 's': scrapes = atoi(optarg); break;
        case 'P': plugin_dir = optarg; break;
        default: usage(); return 2;
        }
    }
    if (runs < 1 || runs > MAX_RUNS || scrapes < 1) {
        usage();
        return 2;
    }
    bench_print_header(stdout, "obs-bench-metrics", argc, argv);

    /* The live pipeline and its server. */
    char yaml[4096], err[2048];
    int off = snprintf(yaml, sizeof(yaml),
                       "pipeline: bench\nplugin_dirs: [%s]\nbatch_size: 64\nrun: {duration: 0}\n"
                       "load: [{shape: constant, rate: 20000}]\nstages:\n"
                       "  - {name: gen, plugin: gen_static}\n",
                       plugin_dir);
    for (int i = 1; i < N_STAGES - 1; i++)
        off += snprintf(yaml + off, sizeof(yaml) - (size_t)off,
                        "  - {name: pass%02d, plugin: xf_pass}\n", i);
    snprintf(yaml + off, sizeof(yaml) - (size_t)off, "  - {name: sink, plugin: sink_null}\n");
    obs_config *cfg = NULL;
    pipeline *p = NULL;
    http_server *srv = NULL;
    if (config_load_string("bench.yaml", yaml, &cfg, err, sizeof(err)) != 0 ||
        pipeline_create(cfg, NULL, 0, &p, err, sizeof(err)) != 0) {
        fprintf(stderr, "obs-bench-metrics: %s\n", err);
        return 1;
    }
    http_options o = {.listen = "127.0.0.1:0", .pipeline = p};
    if (http_start(&o, &srv, err, sizeof(err)) != 0) {
        fprintf(stderr, "obs-bench-metrics: %s\n", err);
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, run_pipeline, p);
    uint16_t port = http_port(srv);

    obs_snapshot snap;
    stage_sample stages[N_STAGES];
    synthetic_snapshot(&snap, stages);

    size_t cap = 4 << 20;
    char *buf = malloc(cap);
    double render_ms[MAX_RUNS], scrape_ms[MAX_RUNS], health_ms[MAX_RUNS];
    size_t render_len = 0;
    long scrape_len = 0;
    int status = 0;
    /* One warm-up scrape: first-touch costs are not what a scrape costs. */
    if (!buf || http_get(port, "/metrics", buf, cap) < 0) {
        fprintf(stderr, "obs-bench-metrics: GET /metrics failed\n");
        status = 1;
        runs = 0;
    }
    for (int r = 0; r < runs && status == 0; r++) {
        uint64_t t0 = bench_now_ns();
        for (int i = 0; i < scrapes; i++) {
            char *text;
            if (metrics_render(&snap, &text, &render_len) != 0) {
                status = 1;
                break;
            }
            free(text);
        }
        uint64_t t1 = bench_now_ns();
        for (int i = 0; i < scrapes && status == 0; i++)
            if (http_get(port, "/healthz", buf, cap) < 0)
                status = 1;
        uint64_t t2 = bench_now_ns();
        for (int i = 0; i < scrapes && status == 0; i++)
            if ((scrape_len = http_get(port, "/metrics", buf, cap)) < 0)
                status = 1;
        uint64_t t3 = bench_now_ns();
        render_ms[r] = (double)(t1 - t0) / 1e6 / scrapes;
        health_ms[r] = (double)(t2 - t1) / 1e6 / scrapes;
        scrape_ms[r] = (double)(t3 - t2) / 1e6 / scrapes;
    }
    if (status == 0) {
        double lo, hi;
        printf("# %d stages, %d runs x %d operations; per operation, median [min..max]\n", N_STAGES,
               runs, scrapes);
        bench_minmax(render_ms, (size_t)runs, &lo, &hi);
        printf("render (synthetic snapshot, %zu bytes)   %8.3f ms [%.3f..%.3f]\n", render_len,
               bench_median(render_ms, (size_t)runs), lo, hi);
        bench_minmax(health_ms, (size_t)runs, &lo, &hi);
        double h = bench_median(health_ms, (size_t)runs);
        printf("GET /healthz (baseline: HTTP round trip)  %8.3f ms [%.3f..%.3f]\n", h, lo, hi);
        bench_minmax(scrape_ms, (size_t)runs, &lo, &hi);
        double s = bench_median(scrape_ms, (size_t)runs);
        printf("GET /metrics (live pipeline, %ld bytes)  %8.3f ms [%.3f..%.3f]\n", scrape_len, s,
               lo, hi);
        printf("scrape - baseline                         %8.3f ms   (target <= 5 ms per scrape)\n",
               s - h);
    } else {
        fprintf(stderr, "obs-bench-metrics: a request or render failed\n");
    }

    pipeline_stop(p);
    pthread_join(t, NULL);
    http_stop(srv);
    pipeline_destroy(p);
    config_free(cfg);
    for (int i = 0; i < N_STAGES; i++) {
        free(stages[i].service);
        free(stages[i].lag);
        free(stages[i].latency);
    }
    free(buf);
    return status;
}
