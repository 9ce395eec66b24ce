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

int cli_profile_diff(int argc, char **argv);

#endif /* OBS_CLI_PROFILE_H */
