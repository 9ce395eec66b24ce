/*
 * cli_dashboard.c - `hostd dashboard --store A [--store B]...`: serves the
 * dashboard and the run API (runs, series, stored profiles, run groups)
 * over one or more run stores without running a pipeline. Each store is
 * opened read-only for each request, so the hostd processes writing them
 * go on, and a run still being written shows as far as it got: the view of
 * a pipeline split over several processes, each with its own store, live
 * or afterwards (docs/scale.md). Runs until SIGINT, SIGTERM or SIGHUP.
 */
#include "cli/cli_dashboard.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "server/http.h"
#include "store/store.h"

#define MAX_STORES 16
#define MAX_HOSTS 16

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hostd dashboard --store DIR [--store DIR]... [--listen ADDR]\n"
            "                       [--allowed-host NAME]...\n"
            "\n"
            "Serves the dashboard and the run API over the run stores given (up to %d),\n"
            "read-only, without running a pipeline: the Runs tab lists the runs of every\n"
            "store, and runs that share a run.id (the processes of one pipeline linked over\n"
            "NATS) show together, live while they run. Ends on SIGINT, SIGTERM or SIGHUP.\n"
            "\n"
            "  --store DIR          a run store (repeat for each process's store)\n"
            "  --listen ADDR        host:port to serve on (default 127.0.0.1:9464; port 0 picks\n"
            "                       a free one)\n"
            "  --allowed-host NAME  a Host name to answer besides addresses and localhost\n",
            MAX_STORES);
}

int cli_dashboard(int argc, char **argv)
{
    static const struct option opts[] = {
        {"store", required_argument, NULL, 's'},
        {"listen", required_argument, NULL, 'l'},
        {"allowed-host", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *stores[MAX_STORES], *hosts[MAX_HOSTS], *listen = "127.0.0.1:9464";
    size_t n_stores = 0, n_hosts = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:l:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            if (n_stores == MAX_STORES) {
                fprintf(stderr, "hostd dashboard: at most %d --store\n", MAX_STORES);
                return 2;
            }
            stores[n_stores++] = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 'a':
            if (n_hosts == MAX_HOSTS) {
                fprintf(stderr, "hostd dashboard: at most %d --allowed-host\n", MAX_HOSTS);
                return 2;
            }
            hosts[n_hosts++] = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || n_stores == 0) {
        fprintf(stderr, optind < argc ? "hostd dashboard: unexpected '%s'\n"
                                      : "hostd dashboard: give at least one --store DIR\n",
                optind < argc ? argv[optind] : "");
        usage(stderr);
        return 2;
    }
    /* Every store must exist (a typo is an error, not an empty list); one
     * that cannot be read now (a hostd is creating it) is said, and listed
     * as unreadable by the routes until it can be read. */
    for (size_t k = 0; k < n_stores; k++) {
        char err[1024];
        struct stat st;
        store *s = NULL;
        if (stat(stores[k], &st) != 0) {
            fprintf(stderr, "hostd dashboard: no store at '%s' (%s)\n", stores[k], strerror(errno));
            return 1;
        }
        if (store_open_flags(stores[k], STORE_READONLY, &s, err, sizeof err) != 0)
            fprintf(stderr, "hostd dashboard: cannot read it now: %s\n", err);
        store_close(s);
    }
    /* Blocked before the server's threads start, so they inherit the mask
     * and the signals wait for sigwait below. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    http_options ho = {
        .listen = listen,
        .allowed_hosts = hosts,
        .n_allowed_hosts = n_hosts,
        .store_paths = stores,
        .n_store_paths = n_stores,
    };
    http_server *http = NULL;
    char err[512];
    if (http_start(&ho, &http, err, sizeof err) < 0) {
        fprintf(stderr, "hostd dashboard: %s\n", err);
        return 1;
    }
    const char *colon = strrchr(listen, ':');
    int host_len = colon ? (int)(colon - listen) : (int)strlen(listen);
    fprintf(stderr, "hostd dashboard: serving %zu store%s on %s, port %u (open http://%.*s:%u/)\n",
            n_stores, n_stores == 1 ? "" : "s", listen, http_port(http), host_len, listen,
            http_port(http));
    int sig = 0;
    sigwait(&set, &sig);
    fprintf(stderr, "hostd dashboard: %s, stopping\n", strsignal(sig));
    http_stop(http);
    return 0;
}
