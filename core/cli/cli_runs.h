/*
 * cli_runs.h - hostd's subcommands that read the run history in the store:
 *
 *   hostd runs    [--store DIR | --config FILE] [--json]
 *   hostd report  RUN [--store DIR | --config FILE] [--json | --metrics |
 *                      --series METRIC [--from NS] [--to NS]]
 *   hostd compare RUN_A RUN_B [--store DIR | --config FILE] [--json]
 *
 * Each takes argv starting at the subcommand's name (argv[0] == "runs") and
 * returns hostd's exit status: 0 success, 1 no such run / no report / store
 * error, 2 bad usage. The store defaults to "observatory-data" in the
 * working directory; --config FILE uses that pipeline.yaml's store.path.
 * A store that a running hostd holds open is read read-only (runs of that
 * hostd then show as "running").
 */
#ifndef OBS_CLI_RUNS_H
#define OBS_CLI_RUNS_H

int cli_runs(int argc, char **argv);
int cli_report(int argc, char **argv);
int cli_compare(int argc, char **argv);
/* hostd experiments [RUN]: the A/B experiments stored with runs. */
int cli_experiments(int argc, char **argv);

#endif /* OBS_CLI_RUNS_H */
