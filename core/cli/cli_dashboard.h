/*
 * cli_dashboard.h - `hostd dashboard`: the dashboard and the run API over
 * one or more run stores, without running a pipeline.
 */
#ifndef OBS_CLI_DASHBOARD_H
#define OBS_CLI_DASHBOARD_H

/* argv[0] is "dashboard". Returns the process exit status. */
int cli_dashboard(int argc, char **argv);

#endif /* OBS_CLI_DASHBOARD_H */
