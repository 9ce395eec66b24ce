/*
 * cli_swap.h - the `hostd swap` subcommand (a client of a running hostd).
 */
#ifndef OBS_CLI_SWAP_H
#define OBS_CLI_SWAP_H

/* argv[0] is "swap". Returns the process exit status. */
int cli_swap(int argc, char **argv);

#endif /* OBS_CLI_SWAP_H */
