/*
 * main.c - hostd's command line: load a pipeline.yaml, check it, run it,
 * print the report. Signals: the first SIGINT, SIGTERM or SIGHUP ends the
 * run cleanly (everything accepted drains, within run.drain_timeout); a
 * second one ends the drain at once, with the report of what was done
 * written and stored (the run marked unclean); a third exits at once.
 * SIGUSR1 prints the report so far on stderr; SIGPIPE is ignored (a client
 * or a plugin's socket that went away is an error code, not an exit).
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_dashboard.h"
#include "cli/cli_profile.h"
#include "cli/cli_runs.h"
#include "cli/cli_swap.h"
#include "config/config.h"
#include "engine/crash.h"
#include "engine/host.h"
#include "engine/pipeline.h"
#include "engine/snapshot.h"
#include "lab/experiment.h"
#include "measure/report.h"
#include "obs_profiler.h"
#include "server/http.h"
#include "store/recorder.h"
#include "store/run_profile.h"
#include "store/store.h"

static volatile sig_atomic_t stop_signal, abort_signal;
static volatile sig_atomic_t report_signal;

static void on_signal(int sig);

static void on_report_signal(int sig)
{
    (void)sig;
    report_signal = 1;
}

static const char *signal_name(int sig)
{
    return sig == SIGINT    ? "SIGINT"
           : sig == SIGTERM ? "SIGTERM"
           : sig == SIGHUP  ? "SIGHUP"
                            : "a signal";
}

/* From before the run is recorded, so a stop that comes early still ends
 * the run cleanly, with its report and a complete record. */
static void install_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    struct sigaction rs = {.sa_handler = on_report_signal, .sa_flags = SA_RESTART};
    sigemptyset(&rs.sa_mask);
    sigaction(SIGUSR1, &rs, NULL);
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);
}

static void on_signal(int sig)
{
    if (abort_signal) {
        /* Third: the user wants out now, report or not. */
        signal(sig, SIG_DFL);
        raise(sig);
    }
    if (stop_signal)
        abort_signal = sig; /* second: end the drain, keep the report */
    else
        stop_signal = sig;
}

/* Progress display: a one-line status, rewritten once a second, when
 * stdout is a terminal. Called every 20 ms from pipeline_run on the main
 * thread, which also checks for a stop signal here. */
typedef struct progress {
    const pipeline *p;
    int tty;
    uint64_t next_ns, last_ns, last_records;
    uint64_t every_ns; /* stdout not a terminal: a status line on stderr this often (0: none) */
    /* --ab / --aa: an experiment started once warm-up is over. */
    const char *ab;
    int aa;
    double ab_seconds;
    uint32_t ab_looks;
    int ab_interleaved;
    uint32_t ab_block_ms;
    /* The experiments started after warm-up, --ab/--aa's first, then those
     * of the stages' ab: in the config, in stage order (array owned by
     * main, room for one per stage and one more; the experiments belong
     * to the pipeline). */
    experiment **exps;
    size_t n_exps;
    int exp_tried;
    store *st;
    uint64_t run_id;
} progress;

/* The time limit of an experiment that has none of its own: the rest of the
 * run after warm-up, less a second for the last look; 60 s for a run
 * without an end. */
static double rest_of_run_s(const pipeline *p)
{
    double seconds = 0;
    if (p->cfg->duration_ns)
        seconds = (double)(p->cfg->duration_ns - (p->t_warm_ns - p->t_start_ns)) / 1e9 - 1.0;
    return seconds > 1 ? seconds : 60;
}

/* Starts the experiment of stages[i].ab, unless --ab/--aa named the same
 * stage (the command line wins, and says so). A failure (B's plugin not
 * found, its parameters wrong, its init failed, ...) is logged and the run
 * goes on without it, as with --ab. */
static void start_config_experiment(progress *pr, size_t i, const char *cli_stage)
{
    pipeline *p = (pipeline *)pr->p;
    const cfg_stage *cs = &p->cfg->stages[i];
    const cfg_ab *ab = cs->ab;
    if (cli_stage && strcmp(cli_stage, cs->name) == 0) {
        host_log(NULL, OBS_LOG_INFO,
                 "experiment: %s on the command line replaces stages[%zu].ab (%s:%d:%d) on stage "
                 "'%s'",
                 pr->aa ? "--aa" : "--ab", i, p->cfg->path, ab->line, ab->column, cs->name);
        return;
    }
    /* No plugin but a version: that version of the stage's own plugin. No
     * plugin nor version: the stage's loaded code, with B's params. */
    const char *plugin = ab->aa ? NULL : ab->plugin ? ab->plugin : ab->version ? cs->plugin : NULL;
    exp_spec spec = {
        .stage = cs->name,
        .plugin = plugin,
        .version = ab->aa ? NULL : ab->version,
        .params = ab->params,
        .n_params = ab->n_params,
        .params_given = ab->params_given,
        .params_in_config = ab->params_given,
        .aa = ab->aa,
        .threshold = ab->threshold,
        .max_seconds = ab->duration_ns ? (double)ab->duration_ns / 1e9 : rest_of_run_s(p),
        .n_looks = ab->n_looks,
        .seed = ab->seed,
        .mode = ab->mode == CFG_AB_INTERLEAVED ? EXP_INTERLEAVED : EXP_DUET,
        .block_ms = ab->block_ms,
    };
    char err[1024], what[384];
    if (ab->aa)
        snprintf(what, sizeof what, "A/A");
    else
        snprintf(what, sizeof what, "%s=%s%s%s%s", cs->name, plugin ? plugin : cs->plugin,
                 ab->version ? "@" : "", ab->version ? ab->version : "",
                 ab->params_given ? " with other params" : "");
    experiment *e = NULL;
    if (experiment_start(p, &spec, pr->st, pr->run_id, &e, err, sizeof err) < 0) {
        /* Errors in B's params already point into the file. */
        size_t len = strlen(p->cfg->path);
        if (strncmp(err, p->cfg->path, len) == 0 && err[len] == ':')
            host_log(NULL, OBS_LOG_ERROR, "experiment of stages[%zu].ab (%s) not started: %s", i,
                     what, err);
        else
            host_log(NULL, OBS_LOG_ERROR,
                     "experiment of stages[%zu].ab (%s, %s:%d:%d) not started: %s", i, what,
                     p->cfg->path, ab->line, ab->column, err);
        return;
    }
    pr->exps[pr->n_exps++] = e;
    host_log(NULL, OBS_LOG_INFO,
             "experiment %s: %s on stage '%s' for up to %.0f s (stages[%zu].ab)", what,
             spec.mode == EXP_INTERLEAVED ? "interleaved" : "duet", cs->name, spec.max_seconds, i);
}

/* Starts the experiment --ab STAGE=PLUGIN[@VERSION] (or --aa STAGE) asks
 * for, and those of the stages' ab: in the config, once the pipeline is
 * past its warm-up. */
static void maybe_start_experiment(progress *pr)
{
    pipeline *p = (pipeline *)pr->p;
    if (pr->exp_tried || !p->t_warm_ns)
        return;
    pr->exp_tried = 1;
    char stage_name[128], plugin[256] = "", version[64] = "";
    if (pr->ab) {
        const char *eq = strchr(pr->ab, '=');
        snprintf(stage_name, sizeof stage_name, "%.*s",
                 (int)(eq ? eq - pr->ab : (long)strlen(pr->ab)), pr->ab);
        if (eq) {
            const char *at = strchr(eq + 1, '@');
            snprintf(plugin, sizeof plugin, "%.*s", (int)(at ? at - eq - 1 : (long)strlen(eq + 1)),
                     eq + 1);
            if (at)
                snprintf(version, sizeof version, "%s", at + 1);
        }
        double seconds = pr->ab_seconds > 0 ? pr->ab_seconds : rest_of_run_s(p);
        exp_spec spec = {.stage = stage_name,
                         .plugin = plugin[0] ? plugin : NULL,
                         .version = version[0] ? version : NULL,
                         .aa = pr->aa,
                         .max_seconds = seconds > 1 ? seconds : 60,
                         .n_looks = pr->ab_looks,
                         .mode = pr->ab_interleaved ? EXP_INTERLEAVED : EXP_DUET,
                         .block_ms = pr->ab_block_ms};
        char err[1024];
        experiment *e = NULL;
        if (experiment_start(p, &spec, pr->st, pr->run_id, &e, err, sizeof err) < 0) {
            host_log(NULL, OBS_LOG_ERROR, "experiment: %s", err);
        } else {
            pr->exps[pr->n_exps++] = e;
            host_log(NULL, OBS_LOG_INFO, "experiment %s: %s on stage '%s' for up to %.0f s",
                     pr->aa ? "A/A" : pr->ab, pr->ab_interleaved ? "interleaved" : "duet",
                     stage_name, spec.max_seconds);
        }
    }
    for (size_t i = 0; i < p->cfg->n_stages; i++)
        if (p->cfg->stages[i].ab)
            start_config_experiment(pr, i, pr->ab ? stage_name : NULL);
}

static void progress_tick(progress *pr)
{
    const pipeline *p = pr->p;
    uint64_t now = host_now_ns();
    if ((!pr->tty && !pr->every_ns) || now < pr->next_ns || !p->t_start_ns)
        return;
    if (!pr->tty && !pr->next_ns) { /* the first line after one period */
        pr->next_ns = p->t_start_ns + pr->every_ns;
        return;
    }
    const stage *sink = &p->stages[p->n_stages - 1];
    uint64_t n = 0;
    for (uint32_t k = 0; k < sink->n_instances; k++)
        n += atomic_load_explicit(&sink->instances[k]->stats.records_in, memory_order_relaxed);
    double elapsed = (double)(now - p->t_start_ns) / 1e9;
    uint64_t since = pr->last_ns ? pr->last_ns : p->t_start_ns;
    double rate = now > since ? (double)(n - pr->last_records) * 1e9 / (double)(now - since) : 0;
    if (!pr->tty)
        fprintf(stderr, "hostd: progress: %.1f s%s, %" PRIu64 " records at the sink, %.0f records/s\n",
                elapsed, p->cfg->duration_ns ? "" : " (until signal)", n, rate);
    else if (p->cfg->duration_ns)
        printf("\r[%6.1f s / %.1f s] %14" PRIu64 " records at the sink, %12.0f records/s ", elapsed,
               (double)p->cfg->duration_ns / 1e9, n, rate);
    else
        printf("\r[%6.1f s, until signal] %14" PRIu64 " records at the sink, %12.0f records/s ",
               elapsed, n, rate);
    fflush(stdout);
    pr->last_ns = now;
    pr->last_records = n;
    pr->next_ns = now + (pr->tty ? 1000000000u : pr->every_ns);
}

static int check_stop(void *arg)
{
    if (abort_signal)
        return 2;
    if (report_signal) {
        report_signal = 0;
        const progress *pr = arg;
        fprintf(stderr, "\nSIGUSR1: the report so far\n");
        pipeline_report(pr->p, stderr);
    }
    progress_tick(arg);
    maybe_start_experiment(arg);
    return stop_signal != 0;
}

/* Records a new run in the store with what makes it reproducible. */
static int begin_run(store *st, const obs_config *cfg, const pipeline *p, uint64_t *run_id)
{
    size_t n = p->n_stages;
    const char **v = calloc(5 * (n ? n : 1), sizeof(char *));
    char(*ids)[2 * OBS_BUILD_ID_MAX + 1] = calloc(n ? n : 1, sizeof(*ids));
    int rc = OBS_ENOMEM;
    if (v && ids) {
        for (size_t i = 0; i < n; i++) {
            const stage *s = &p->stages[i];
            const stage_slot *sl = stage_active(s);
            plugin_build_id_hex(sl->module, ids[i], sizeof(ids[i]));
            v[i] = s->cfg->name;
            v[n + i] = sl->desc->name;
            v[2 * n + i] = sl->desc->version;
            v[3 * n + i] = sl->module->path;
            v[4 * n + i] = ids[i];
        }
        run_info info = {
            .pipeline = cfg->pipeline,
            .config_path = cfg->path,
            .config_text = cfg->text,
            .seed = cfg->seed,
            .n_stages = n,
            .stage_names = v,
            .plugin_names = v + n,
            .plugin_versions = v + 2 * n,
            .plugin_paths = v + 3 * n,
            .plugin_build_ids = v + 4 * n,
            .run_id = cfg->run_id,
        };
        rc = store_run_begin(st, &info, run_id);
    }
    free(v);
    free(ids);
    return rc;
}

static void usage(FILE *f)
{
    fprintf(
        f, "usage: hostd --config FILE [options]\n"
           "       hostd runs [--store DIR | --config FILE] [--json]\n"
           "       hostd report RUN [--store DIR | --config FILE] [--json]\n"
           "       hostd compare RUN_A RUN_B [--store DIR | --config FILE]\n"
           "       hostd swap STAGE PLUGIN [--version V] [--param K=V]... [--url URL]\n"
           "       hostd profile-diff RUN_A RUN_B [--store DIR] [--stage S] [--out FILE.svg]\n"
           "       hostd experiments [RUN] [--store DIR | --config FILE] [--json]\n"
           "       hostd dashboard --store DIR [--store DIR]... [--listen ADDR]\n"
           "\n"
           "Runs the stage pipeline described by FILE (YAML), serves its metrics over HTTP,\n"
           "records the run in the store and prints per-stage figures at the end.\n"
           "\n"
           "options:\n"
           "  -c, --config FILE      pipeline configuration (required)\n"
           "      --check            validate the configuration and its plugins, then exit\n"
           "  -P, --plugin-dir DIR   search DIR for plugins before the configured plugin_dirs\n"
           "                         (may be repeated)\n"
           "  -d, --duration DUR     override run.duration (e.g. 10s, 500ms, 0 = until signal)\n"
           "  -l, --listen ADDR      override http.listen (host:port, [v6]:port; port 0: any)\n"
           "      --progress DUR     stdout not a terminal: a status line on stderr every DUR\n"
           "                         (default 10s, 0 or --quiet: none)\n"
           "      --run-id ID        override run.id: one name for the run in every process\n"
           "                         of a pipeline split over several (NATS links)\n"
           "      --no-http          do not serve HTTP\n"
           "  -s, --store DIR        override store.path\n"
           "      --no-store         do not record the run\n"
           "      --linger DUR       keep serving HTTP this long after the run ended\n"
           "      --profiler KIND    native (default: /profile serves flame graphs), off, or\n"
           "                         gperftools (writes PATH given by --gperf-out)\n"
           "      --profile-hz N     samples per second of thread CPU time (default 99)\n"
           "      --unwinder U       libunwind (default) or fp (frame pointers, cheaper)\n"
           "      --gperf-out PATH   gperftools profile file (with --profiler gperftools)\n"
           "      --profile-continuous DUR\n"
           "                         store a profile of every DUR window (e.g. 1s, >= 100ms) with\n"
           "                         the run (native profiler and a store; off by default)\n"
           "      --ab STAGE=PLUGIN[@VERSION]\n"
           "                         after warm-up, run PLUGIN as variant B beside the stage in a\n"
           "                         duet experiment and print the verdict at the end\n"
           "      --aa STAGE         the same with the stage's own version as B (A/A)\n"
           "      --ab-seconds S     the experiment's time limit (default: the rest of the run)\n"
           "      --ab-looks N       planned looks at the data (default 10; it stops at the first\n"
           "                         decided one)\n"
           "      --ab-mode MODE     duet (default) or interleaved (A and B take turns on the\n"
           "                         stream in ABBA blocks; verdict on p99 latency)\n"
           "      --ab-block-ms N    interleaved: block length, 10..10000 ms (default 200)\n"
           "                         (ab: on a stage in the config starts an experiment too;\n"
           "                         --ab/--aa on the same stage replace it)\n"
           "      --no-cost-account  skip allocation, CPU-sample and service-time accounting\n"
           "                         (to measure what the cost account costs)\n"
           "  -q, --quiet            only errors on stderr\n"
           "  -v, --verbose          debug messages\n"
           "  -h, --help             this text\n"
           "  -V, --version          version and plugin ABI\n"
           "\n"
           "SIGINT, SIGTERM or SIGHUP ends the run: the generator stops, every batch in flight\n"
           "drains (within run.drain_timeout), sinks flush, and hostd exits 0. A second one ends\n"
           "the drain at once: the report of what was done is printed and stored, the stages\n"
           "still running are named, exit 1; a third exits at once. SIGUSR1 prints the report\n"
           "so far on stderr; SIGPIPE is ignored. Exit codes: 0 success, 1 run failed, 2 bad\n"
           "usage or configuration.\n");
}

enum {
    OPT_CHECK = 256,
    OPT_NO_HTTP,
    OPT_NO_STORE,
    OPT_LINGER,
    OPT_PROFILER,
    OPT_PROFILE_HZ,
    OPT_UNWINDER,
    OPT_GPERF_OUT,
    OPT_AB,
    OPT_AA,
    OPT_AB_SECONDS,
    OPT_NO_COST_ACCOUNT,
    OPT_AB_LOOKS,
    OPT_AB_MODE,
    OPT_AB_BLOCK_MS,
    OPT_PROFILE_CONTINUOUS,
    OPT_RUN_ID,
    OPT_PROGRESS
};

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "runs") == 0)
        return cli_runs(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "report") == 0)
        return cli_report(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "compare") == 0)
        return cli_compare(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "swap") == 0)
        return cli_swap(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "profile-diff") == 0)
        return cli_profile_diff(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "experiments") == 0)
        return cli_experiments(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "dashboard") == 0)
        return cli_dashboard(argc - 1, argv + 1);

    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check", no_argument, NULL, OPT_CHECK},
        {"plugin-dir", required_argument, NULL, 'P'},
        {"duration", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"no-http", no_argument, NULL, OPT_NO_HTTP},
        {"store", required_argument, NULL, 's'},
        {"no-store", no_argument, NULL, OPT_NO_STORE},
        {"linger", required_argument, NULL, OPT_LINGER},
        {"profiler", required_argument, NULL, OPT_PROFILER},
        {"profile-hz", required_argument, NULL, OPT_PROFILE_HZ},
        {"unwinder", required_argument, NULL, OPT_UNWINDER},
        {"gperf-out", required_argument, NULL, OPT_GPERF_OUT},
        {"ab", required_argument, NULL, OPT_AB},
        {"aa", required_argument, NULL, OPT_AA},
        {"ab-seconds", required_argument, NULL, OPT_AB_SECONDS},
        {"no-cost-account", no_argument, NULL, OPT_NO_COST_ACCOUNT},
        {"ab-looks", required_argument, NULL, OPT_AB_LOOKS},
        {"ab-mode", required_argument, NULL, OPT_AB_MODE},
        {"ab-block-ms", required_argument, NULL, OPT_AB_BLOCK_MS},
        {"profile-continuous", required_argument, NULL, OPT_PROFILE_CONTINUOUS},
        {"run-id", required_argument, NULL, OPT_RUN_ID},
        {"progress", required_argument, NULL, OPT_PROGRESS},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *duration = NULL, *listen = NULL, *store_path = NULL;
    const char *linger = NULL, *profiler = "native", *gperf_out = NULL, *ab = NULL;
    const char *prof_cont = NULL, *run_id_arg = NULL, *progress_arg = NULL;
    int quiet = 0;
    uint64_t prof_cont_ns = 0;
    int aa = 0, no_cost_account = 0;
    uint32_t ab_looks = 0, ab_block_ms = 0;
    int ab_interleaved = 0;
    double ab_seconds = 0;
    obs_prof_config pc = {0};
    int prof_on = 0;
    int check_only = 0, no_http = 0, no_store = 0;
    char **dirs = calloc((size_t)argc + 1, sizeof(char *));
    size_t n_dirs = 0;
    int c, status = 2;
    if (!dirs)
        return 1;
    while ((c = getopt_long(argc, argv, "c:P:d:l:s:qvhV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case OPT_CHECK: check_only = 1; break;
        case 'P': dirs[n_dirs++] = optarg; break;
        case 'd': duration = optarg; break;
        case 'l': listen = optarg; break;
        case OPT_NO_HTTP: no_http = 1; break;
        case 's': store_path = optarg; break;
        case OPT_NO_STORE: no_store = 1; break;
        case OPT_LINGER: linger = optarg; break;
        case OPT_PROFILER: profiler = optarg; break;
        case OPT_PROFILE_HZ: pc.hz = (uint32_t)strtoul(optarg, NULL, 10); break;
        case OPT_UNWINDER:
            if (strcmp(optarg, "fp") == 0)
                pc.unwinder = OBS_PROF_UNWIND_FP;
            else if (strcmp(optarg, "libunwind") != 0) {
                fprintf(stderr, "hostd: --unwinder: 'libunwind' or 'fp', not '%s'\n", optarg);
                free(dirs);
                return 2;
            }
            break;
        case OPT_GPERF_OUT: gperf_out = optarg; break;
        case OPT_AB: ab = optarg; break;
        case OPT_AA:
            ab = optarg;
            aa = 1;
            break;
        case OPT_AB_SECONDS: ab_seconds = atof(optarg); break;
        case OPT_NO_COST_ACCOUNT: no_cost_account = 1; break;
        case OPT_AB_LOOKS: ab_looks = (uint32_t)strtoul(optarg, NULL, 10); break;
        case OPT_AB_MODE:
            if (strcmp(optarg, "interleaved") == 0)
                ab_interleaved = 1;
            else if (strcmp(optarg, "duet") != 0) {
                fprintf(stderr, "hostd: --ab-mode: 'duet' or 'interleaved', not '%s'\n", optarg);
                free(dirs);
                return 2;
            }
            break;
        case OPT_AB_BLOCK_MS:
            ab_block_ms = (uint32_t)strtoul(optarg, NULL, 10);
            if (ab_block_ms < 10 || ab_block_ms > 10000) {
                fprintf(stderr, "hostd: --ab-block-ms: 10..10000, not '%s'\n", optarg);
                free(dirs);
                return 2;
            }
            break;
        case OPT_PROFILE_CONTINUOUS: prof_cont = optarg; break;
        case OPT_RUN_ID: run_id_arg = optarg; break;
        case OPT_PROGRESS: progress_arg = optarg; break;
        case 'q':
            host_set_log_level(OBS_LOG_ERROR);
            quiet = 1;
            break;
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
    store *st = NULL;
    recorder *rec = NULL;
    http_server *http = NULL;
    experiment **exps = NULL;
    uint64_t run_id = 0, linger_ns = 0;
    if (config_load(config_path, &cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        goto out;
    }
    if (duration && config_parse_duration(duration, &cfg->duration_ns) < 0) {
        fprintf(stderr, "hostd: --duration '%s': expected a duration like 10s, 500ms or 2m\n",
                duration);
        goto out;
    }
    uint64_t progress_ns = quiet ? 0 : 10000000000ull;
    if (progress_arg && config_parse_duration(progress_arg, &progress_ns) < 0) {
        fprintf(stderr, "hostd: --progress '%s': expected a duration like 10s (0: none)\n",
                progress_arg);
        goto out;
    }
    if (run_id_arg) {
        const char *bad = config_run_id_problem(run_id_arg);
        if (bad) {
            fprintf(stderr, "hostd: --run-id '%s': %s\n", run_id_arg, bad);
            goto out;
        }
        free(cfg->run_id);
        if (!(cfg->run_id = strdup(run_id_arg)))
            goto out;
    }
    if (linger && config_parse_duration(linger, &linger_ns) < 0) {
        fprintf(stderr, "hostd: --linger '%s': expected a duration like 10s, 500ms or 2m\n",
                linger);
        goto out;
    }
    if (prof_cont &&
        (config_parse_duration(prof_cont, &prof_cont_ns) < 0 || prof_cont_ns < 100000000u)) {
        fprintf(stderr,
                "hostd: --profile-continuous '%s': expected a window of at least 100ms "
                "(e.g. 1s, 500ms)\n",
                prof_cont);
        goto out;
    }
    if (prof_cont && (strcmp(profiler, "native") != 0 || no_store)) {
        fprintf(stderr,
                "hostd: --profile-continuous needs the native profiler and a store "
                "(not --profiler %s%s)\n",
                profiler, no_store ? ", --no-store" : "");
        goto out;
    }
    if (!check_only && strcmp(profiler, "off") != 0) {
        if (strcmp(profiler, "gperftools") == 0) {
            if (!gperf_out) {
                fprintf(stderr, "hostd: --profiler gperftools needs --gperf-out PATH\n");
                goto out;
            }
            pc.backends = OBS_PROF_BACKEND_GPERFTOOLS;
        } else if (strcmp(profiler, "native") != 0) {
            fprintf(stderr, "hostd: --profiler: native, gperftools or off, not '%s'\n", profiler);
            goto out;
        }
        if (obs_prof_init(&pc, err, sizeof(err)) < 0) {
            fprintf(stderr, "hostd: profiler: %s\n", err);
            goto out;
        }
        prof_on = 1;
    }
    /* --check makes every check of a start without its side effects: no
     * plugin init (docs/config.md). */
    if ((check_only ? pipeline_create_checked : pipeline_create)(cfg, dirs, n_dirs, &p, err,
                                                                  sizeof(err)) < 0) {
        /* Parameter errors already begin with file:line:column. */
        size_t n = strlen(config_path);
        if (strncmp(err, config_path, n) == 0 && err[n] == ':')
            fprintf(stderr, "%s\n", err);
        else
            fprintf(stderr, "%s: %s\n", config_path, err);
        goto out;
    }
    if (prof_on && gperf_out && obs_prof_gperf_start(gperf_out, err, sizeof(err)) < 0) {
        fprintf(stderr, "hostd: gperftools: %s\n", err);
        status = 1;
        goto out;
    }
    if (no_cost_account)
        p->cost_account = 0;
    if (check_only) {
        printf("%s: ok: pipeline '%s', %zu stages:", config_path, cfg->pipeline, p->n_stages);
        for (size_t i = 0; i < p->n_stages; i++)
            printf(" %s(%s %s)", p->stages[i].cfg->name, stage_active(&p->stages[i])->desc->name,
                   stage_active(&p->stages[i])->desc->version);
        printf("\n");
        status = 0;
        goto out;
    }

    /* From here on, failures are of the run (exit 1), not of the input. */
    status = 1;
    install_signals();
    crash_install();
    exps = calloc(p->n_stages + 1, sizeof *exps);
    if (!exps) {
        fprintf(stderr, "hostd: out of memory\n");
        goto out;
    }
    if (!no_store) {
        const char *path = store_path ? store_path : cfg->store_path;
        if (store_open(path, &st, err, sizeof(err)) < 0) {
            fprintf(stderr, "hostd: %s\n", err);
            goto out;
        }
        store_set_retention(st, cfg->store_max_age_ns, cfg->store_max_bytes);
        if (begin_run(st, cfg, p, &run_id) < 0) {
            fprintf(stderr, "hostd: store '%s': cannot record the run\n", path);
            goto out;
        }
        char crash_path[4200];
        crash_record_path(path, run_id, crash_path, sizeof crash_path);
        crash_set_record(crash_path);
    }
    if (!no_http) {
        http_options ho = {
            .listen = listen ? listen : cfg->http_listen,
            .pipeline = p,
            .store = st,
            .run_id = run_id,
            .token = getenv("OBS_HTTP_TOKEN"),
            .allowed_hosts = (const char *const *)cfg->http_allowed_hosts,
            .n_allowed_hosts = cfg->n_http_allowed_hosts,
        };
        if (http_start(&ho, &http, err, sizeof(err)) < 0) {
            fprintf(stderr, "hostd: %s\n", err);
            if (st && store_run_not_started(st, run_id, err) < 0)
                host_log(NULL, OBS_LOG_ERROR, "store: cannot end the record of run %" PRIu64,
                         run_id);
            goto out;
        }
        host_log(NULL, OBS_LOG_INFO, "serving HTTP on %s, port %u (metrics at /metrics)", ho.listen,
                 (unsigned)http_port(http));
    }

    if (st) {
        if (recorder_start(st, run_id, p, 1000000000u, &rec) < 0)
            host_log(NULL, OBS_LOG_ERROR, "recorder: cannot start; run %" PRIu64 " gets no series",
                     run_id);
        host_log(NULL, OBS_LOG_INFO, "run %" PRIu64 " recorded in store '%s'", run_id,
                 store_path ? store_path : cfg->store_path);
        int prc = prof_cont ? run_profile_record_start(st, run_id, prof_cont_ns) : 0;
        if (prc < 0)
            host_log(NULL, OBS_LOG_ERROR,
                     "profiler: continuous mode: cannot start (%s); run %" PRIu64
                     " gets no profile",
                     obs_strerror(prc), run_id);
    }
    host_log(NULL, OBS_LOG_INFO, "running pipeline '%s' (%zu stages)%s", cfg->pipeline, p->n_stages,
             cfg->duration_ns ? "" : " until SIGINT/SIGTERM");
    progress pr = {.p = p,
                   .tty = isatty(STDOUT_FILENO),
                   .every_ns = progress_ns,
                   .exps = exps,
                   .ab = ab,
                   .aa = aa,
                   .ab_seconds = ab_seconds,
                   .ab_looks = ab_looks,
                   .ab_interleaved = ab_interleaved,
                   .ab_block_ms = ab_block_ms,
                   .st = st,
                   .run_id = run_id};
    int rc = pipeline_run(p, check_stop, &pr);
    if (pr.tty && pr.last_ns)
        printf("\n");
    recorder_stop(rec);
    rec = NULL;
    uint64_t n_lost = run_profile_record_stop();
    if (n_lost)
        host_log(NULL, OBS_LOG_ERROR,
                 "profiler: %" PRIu64 " profile window(s) of run %" PRIu64 " could not be stored",
                 n_lost, run_id);
    int abandoned = atomic_load(&p->abandoned);
    if (stop_signal && !abandoned)
        host_log(NULL, OBS_LOG_INFO, "%s received: drained and stopped", signal_name(stop_signal));
    json_t *extra = json_pack("{s:I}", "run_id", (json_int_t)run_id);
    json_t *report = pipeline_report_json(p, extra);
    json_decref(extra);
    if (report && st)
        store_add_health(st, report); /* failed writes, printed with the report */
    if (report)
        report_print(report, stdout);
    else
        fprintf(stdout, "report: out of memory\n");
    for (size_t k = 0; k < pr.n_exps; k++) {
        experiment_wait(pr.exps[k], 30000000000ull);
        experiment_print(pr.exps[k], stdout);
        if (st && prof_cont)
            cli_experiment_flame_diff(st, run_id, pr.exps[k]);
        /* The report holds the first; each is an event of the run too. */
        json_t *ej = k == 0 ? experiment_json(pr.exps[k]) : NULL;
        if (report && ej)
            json_object_set_new(report, "experiment", ej);
        else
            json_decref(ej);
    }
    fflush(stdout);
    if (st && store_run_end(st, run_id, rc == 0, report) < 0)
        fprintf(stderr, "hostd: store: cannot record the end of run %" PRIu64 "\n", run_id);
    json_decref(report);
    status = rc < 0 ? 1 : 0;

    if (abandoned) {
        /* Stage threads may still run inside a plugin: nothing they use
         * may be freed. Leave with the report printed and stored. */
        http_stop(http);
        store_close(st);
        fflush(stdout);
        fflush(stderr);
        _exit(1);
    }
    if (http && linger_ns && !stop_signal) {
        /* Keep the final figures available to scrapers for a while. */
        host_log(NULL, OBS_LOG_INFO, "run ended; serving HTTP for %.1f s more (SIGINT ends it)",
                 (double)linger_ns / 1e9);
        uint64_t until = host_now_ns() + linger_ns;
        while (!stop_signal && host_now_ns() < until) {
            struct timespec ts = {0, 20000000};
            nanosleep(&ts, NULL);
        }
    }
out:
    recorder_stop(rec);
    run_profile_record_stop(); /* before the store closes */
    if (prof_on && gperf_out)
        obs_prof_gperf_stop();
    if (prof_on)
        obs_prof_shutdown(); /* wakes a waiting /profile request before HTTP stops */
    http_stop(http);
    store_close(st);
    pipeline_destroy(p);
    config_free(cfg);
    free(exps);
    free(dirs);
    return status;
}
