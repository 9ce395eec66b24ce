/*
 * main.c - hostd's command line: load a pipeline.yaml, check it, run it,
 * print the report. Signals: the first SIGINT/SIGTERM ends the run cleanly
 * (everything accepted drains); a second one exits at once.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "host.h"
#include "pipeline.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    if (stop_signal) {
        /* Second signal: the user wants out now. */
        signal(sig, SIG_DFL);
        raise(sig);
    }
    stop_signal = sig;
}

static int check_stop(void *arg)
{
    (void)arg;
    return stop_signal != 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hostd --config FILE [options]\n"
            "\n"
            "Runs the stage pipeline described by FILE (YAML) and prints per-stage figures.\n"
            "\n"
            "options:\n"
            "  -c, --config FILE      pipeline configuration (required)\n"
            "      --check            validate the configuration and its plugins, then exit\n"
            "  -P, --plugin-dir DIR   search DIR for plugins before the configured plugin_dirs\n"
            "                         (may be repeated)\n"
            "  -d, --duration DUR     override run.duration (e.g. 10s, 500ms, 0 = until signal)\n"
            "  -q, --quiet            only errors on stderr\n"
            "  -v, --verbose          debug messages\n"
            "  -h, --help             this text\n"
            "  -V, --version          version and plugin ABI\n"
            "\n"
            "SIGINT or SIGTERM ends the run: the generator stops, every batch in flight drains,\n"
            "sinks flush, and hostd exits 0. Exit codes: 0 success, 1 run failed, 2 bad usage or\n"
            "configuration.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, 'k'},
        {"plugin-dir", required_argument, NULL, 'P'},
        {"duration", required_argument, NULL, 'd'},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *duration = NULL;
    int check_only = 0;
    char **dirs = calloc((size_t)argc + 1, sizeof(char *));
    size_t n_dirs = 0;
    int c, status = 2;
    if (!dirs)
        return 1;
    while ((c = getopt_long(argc, argv, "c:P:d:qvhV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'k': check_only = 1; break;
        case 'P': dirs[n_dirs++] = optarg; break;
        case 'd': duration = optarg; break;
        case 'q': host_set_log_level(OBS_LOG_ERROR); break;
        case 'v': host_set_log_level(OBS_LOG_DEBUG); break;
        case 'h':
            usage(stdout);
            free(dirs);
            return 0;
        case 'V':
            printf("hostd (Observatory) %s, plugin ABI %d.%d\n", OBS_VERSION, OBS_ABI_MAJOR,
                   OBS_ABI_MINOR);
            free(dirs);
            return 0;
        default:
            usage(stderr);
            free(dirs);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hostd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        free(dirs);
        return 2;
    }
    if (!config_path) {
        fprintf(stderr, "hostd: --config FILE is required\n");
        usage(stderr);
        free(dirs);
        return 2;
    }

    char err[8192];
    obs_config *cfg = NULL;
    pipeline *p = NULL;
    if (config_load(config_path, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    if (duration && config_parse_duration(duration, &cfg->duration_ns) < 0) {
        fprintf(stderr, "hostd: --duration '%s': expected a duration like 10s, 500ms or 2m\n",
                duration);
        goto out;
    }
    if (pipeline_create(cfg, dirs, n_dirs, &p, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", config_path, err);
        goto out;
    }
    if (check_only) {
        printf("%s: ok: pipeline '%s', %zu stages:", config_path, cfg->pipeline, p->n_stages);
        for (size_t i = 0; i < p->n_stages; i++)
            printf(" %s(%s %s)", p->stages[i].cfg->name, p->stages[i].desc->name,
                   p->stages[i].desc->version);
        printf("\n");
        status = 0;
        goto out;
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    host_log(NULL, OBS_LOG_INFO, "running pipeline '%s' (%zu stages)%s", cfg->pipeline, p->n_stages,
             cfg->duration_ns ? "" : " until SIGINT/SIGTERM");
    int rc = pipeline_run(p, check_stop, NULL);
    if (stop_signal)
        host_log(NULL, OBS_LOG_INFO, "%s received: drained and stopped",
                 stop_signal == SIGINT ? "SIGINT" : "SIGTERM");
    pipeline_report(p, stdout);
    fflush(stdout);
    status = rc < 0 ? 1 : 0;
out:
    pipeline_destroy(p);
    config_free(cfg);
    free(dirs);
    return status;
}
