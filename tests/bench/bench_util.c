/*
 * bench_util.c - the shared helpers of the benchmark programs (see
 * bench_util.h).
 */
#include "bench_util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef OBS_BENCH_BUILD_TYPE
#define OBS_BENCH_BUILD_TYPE "unknown"
#endif

/* Writes s to f quoted for a POSIX shell when it needs quoting. */
static void print_shell_word(FILE *f, const char *s)
{
    if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        "-_./=,:+@%") == strlen(s)) {
        fputs(s, f);
        return;
    }
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

/* Copies the first "model name" of /proc/cpuinfo into buf ("?" if none). */
static void cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "?");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0)
            continue;
        const char *v = strchr(line, ':');
        if (!v)
            break;
        v++;
        while (*v == ' ' || *v == '\t')
            v++;
        snprintf(buf, len, "%s", v);
        buf[strcspn(buf, "\n")] = '\0';
        break;
    }
    fclose(f);
}

void bench_print_header(FILE *f, const char *program, int argc, char **argv)
{
    char cwd[1024];
    fprintf(f, "# %s\n# command: ", program);
    for (int i = 0; i < argc; i++) {
        if (i)
            fputc(' ', f);
        print_shell_word(f, argv[i]);
    }
    fprintf(f, "\n# cwd: %s\n", getcwd(cwd, sizeof cwd) ? cwd : "?");

    char model[256];
    cpu_model(model, sizeof model);
    struct utsname u;
    if (uname(&u) != 0)
        memset(&u, 0, sizeof u);
    double load[3] = {0, 0, 0};
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
            load[0] = load[1] = load[2] = -1;
        fclose(la);
    }
    char clocksource[64] = "?";
    FILE *cs = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "r");
    if (cs) {
        if (fgets(clocksource, sizeof clocksource, cs))
            clocksource[strcspn(clocksource, "\n")] = '\0';
        fclose(cs);
    }
    fprintf(f, "# machine: nproc=%ld cpu='%s' kernel=%s %s %s clocksource=%s loadavg=%.2f,%.2f,%.2f\n",
            sysconf(_SC_NPROCESSORS_ONLN), model, u.sysname, u.release, u.machine, clocksource,
            load[0], load[1], load[2]);
    fprintf(f, "# build: %s, gcc %d.%d, %s %s\n", OBS_BENCH_BUILD_TYPE, __GNUC__, __GNUC_MINOR__,
            __DATE__, __TIME__);
    time_t now = time(NULL);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S%z", localtime(&now));
    fprintf(f, "# started: %s\n", when);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

double bench_quantile_sorted(const double *v, size_t n, double q)
{
    size_t r = (size_t)ceil(q * (double)n);
    return v[r ? (r > n ? n : r) - 1 : 0];
}

/* P(X <= k) for X ~ Binomial(n, p). */
static double binom_cdf(int k, int n, double p)
{
    double sum = 0;
    for (int i = 0; i <= k; i++)
        sum += exp(lgamma(n + 1) - lgamma(i + 1) - lgamma(n - i + 1) + i * log(p) +
                   (n - i) * log1p(-p));
    return sum;
}

void bench_clopper_pearson(int k, int n, double *lo, double *hi)
{
    double a = 0, b = 1;
    for (int it = 0; it < 60 && k < n; it++) { /* P(X <= k; hi) = 0.025 */
        double m = (a + b) / 2;
        if (binom_cdf(k, n, m) > 0.025)
            a = m;
        else
            b = m;
    }
    *hi = k < n ? (a + b) / 2 : 1;
    a = 0, b = 1;
    for (int it = 0; it < 60 && k > 0; it++) { /* P(X >= k; lo) = 0.025 */
        double m = (a + b) / 2;
        if (1 - binom_cdf(k - 1, n, m) < 0.025)
            a = m;
        else
            b = m;
    }
    *lo = k > 0 ? (a + b) / 2 : 0;
}

void bench_minmax(const double *v, size_t n, double *min, double *max)
{
    *min = *max = v[0];
    for (size_t i = 1; i < n; i++) {
        if (v[i] < *min)
            *min = v[i];
        if (v[i] > *max)
            *max = v[i];
    }
}

static uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

uint64_t bench_thread_cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

int bench_parse_list(const char *s, uint32_t *out, int cap)
{
    int n = 0;
    while (*s) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (end == s || errno || v == 0 || v > UINT32_MAX || n == cap)
            return -1;
        out[n++] = (uint32_t)v;
        if (*end == ',')
            end++;
        else if (*end)
            return -1;
        s = end;
    }
    return n;
}

int bench_parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno || !(v > 0) || v > 3600)
        return -1;
    *out = v;
    return 0;
}
