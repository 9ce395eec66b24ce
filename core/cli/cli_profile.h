/*
 * cli_profile.h - hostd's subcommand for the profiles stored with runs
 * (hostd --profile-continuous):
 *
 *   hostd profile-diff RUN_A RUN_B [--store DIR | --config FILE] [--stage S]
 *                      [--a-variant V] [--b-variant V] [--format svg|folded]
 *                      [--out FILE]
 *
 * Takes argv starting at the subcommand's name and returns hostd's exit
 * status: 0 success, 1 no such run / no stored profile / store or write
 * error, 2 bad usage.
 */
#ifndef OBS_CLI_PROFILE_H
#define OBS_CLI_PROFILE_H

#include <stdint.h>

int cli_profile_diff(int argc, char **argv);

struct store;
struct experiment;
/* After a run with --profile-continuous: writes the differential flame
 * graph of experiment e's two variants (A as before, B as after) from the
 * run's stored profile windows into
 * <store>/run-<id>-experiment-<n>-diff.svg, and prints where (or why
 * there is none). */
void cli_experiment_flame_diff(struct store *st, uint64_t run_id, struct experiment *e);

#endif /* OBS_CLI_PROFILE_H */
