/*
 * test_profiler_gperf.c - the gperftools backend: with it selected, an
 * attached thread burning tp_burn is profiled by gperftools (thread filter:
 * attached threads only), and `google-pprof --text` reads the file and
 * names the plugin's functions. A separate program from test_profiler,
 * because the backend is chosen once per process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <unistd.h>

#include "prof_test_util.h"

static void test_gperftools_pprof(void **state)
{
    (void)state;
    char err[512] = "";
    obs_prof_config cfg = {.backends = OBS_PROF_BACKEND_GPERFTOOLS};
    assert_int_equal(obs_prof_init(&cfg, err, sizeof err), 0);
    obs_prof_window *w;
    assert_int_equal(obs_prof_window_begin(&w), OBS_ECONFIG); /* native sampler is off */
    tp_loaded l;
    assert_int_equal(tp_load("tp_burn.so", &l, 1), 0);

    char path[] = "/tmp/obs-gperf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    int rc = obs_prof_gperf_start(path, err, sizeof err);
    if (rc != 0)
        fail_msg("obs_prof_gperf_start: %s", err);
    assert_int_equal(obs_prof_gperf_start(path, err, sizeof err), OBS_EAGAIN);
    tp_burner b = {.desc = l.desc, .labels = {{"stage", "burn"}}, .n_labels = 1, .cpu_s = 2.0};
    assert_int_equal(tp_burner_start(&b), 0);
    pthread_join(b.thread, NULL);
    assert_int_equal(b.attach_rc, 0);
    obs_prof_gperf_stop();
    obs_prof_shutdown();

    if (access("/usr/bin/google-pprof", X_OK) != 0) {
        unlink(path);
        fail_msg("google-pprof not installed (Debian package google-perftools)");
    }
    char exe[1024];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = 0;
    char cmd[2600];
    snprintf(cmd, sizeof cmd, "google-pprof --text '%s' '%s' 2>&1", exe, path);
    printf("# %s\n", cmd);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    char line[1024];
    int heavy = 0, light = 0;
    while (fgets(line, sizeof line, f)) {
        if (strstr(line, "tp_burn_heavy")) {
            heavy = 1;
            printf("# %s", line);
        }
        if (strstr(line, "tp_burn_light")) {
            light = 1;
            printf("# %s", line);
        }
    }
    pclose(f);
    unlink(path);
    assert_true(heavy);
    assert_true(light);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gperftools_pprof),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
