/*
 * test_op_kubeconfig.c - kubeconfig parsing (current and named context,
 * relative paths, *-data fields decoded, unsupported exec plugins named) and
 * in-cluster configuration from a service-account directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka needs the four headers above first. */
#include <cmocka.h>

#include "kubeconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static void write_file(const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/obsop-kc-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *KC =
    "apiVersion: v1\n"
    "kind: Config\n"
    "current-context: lab\n"
    "clusters:\n"
    "- name: k3s\n"
    "  cluster:\n"
    "    server: https://127.0.0.1:6443/\n"
    "    certificate-authority-data: aGVsbG8gY2E=\n"
    "- name: other\n"
    "  cluster: {server: 'http://127.0.0.1:8001', insecure-skip-tls-verify: true}\n"
    "contexts:\n"
    "- name: lab\n"
    "  context: {cluster: k3s, user: admin, namespace: lab}\n"
    "- name: plain\n"
    "  context: {cluster: other, user: tok}\n"
    "- name: execctx\n"
    "  context: {cluster: other, user: execuser}\n"
    "users:\n"
    "- name: admin\n"
    "  user:\n"
    "    client-certificate: certs/admin.crt\n"
    "    client-key-data: a2V5\n"
    "- name: tok\n"
    "  user: {token: abc.def}\n"
    "- name: execuser\n"
    "  user: {exec: {command: aws}}\n";

static void test_current_context(void **state)
{
    (void)state;
    kube_config c;
    char err[512], path[512];
    write_file("config", KC);
    snprintf(path, sizeof path, "%s/config", dir);
    assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), 0);
    assert_string_equal(c.server, "https://127.0.0.1:6443");
    assert_int_equal(c.ca_data_len, 8);
    assert_memory_equal(c.ca_data, "hello ca", 8);
    assert_string_equal(c.namespace, "lab");
    char want[600];
    snprintf(want, sizeof want, "%s/certs/admin.crt", dir);
    assert_string_equal(c.cert_file, want);
    assert_int_equal(c.key_data_len, 3);
    assert_memory_equal(c.key_data, "key", 3);
    assert_null(c.token);
    assert_int_equal(c.insecure, 0);
    kubeconfig_free(&c);
}

static void test_named_context_and_errors(void **state)
{
    (void)state;
    kube_config c;
    char err[512], path[512];
    write_file("config", KC);
    snprintf(path, sizeof path, "%s/config", dir);
    assert_int_equal(kubeconfig_load(path, "plain", &c, err, sizeof err), 0);
    assert_string_equal(c.server, "http://127.0.0.1:8001");
    assert_string_equal(c.token, "abc.def");
    assert_int_equal(c.insecure, 1);
    assert_null(c.namespace);
    kubeconfig_free(&c);
    assert_int_equal(kubeconfig_load(path, "nope", &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "no context named 'nope'"));
    assert_int_equal(kubeconfig_load(path, "execctx", &c, err, sizeof err), -ENOTSUP);
    assert_non_null(strstr(err, "exec"));
    write_file("bad", "clusters: [\n");
    snprintf(path, sizeof path, "%s/bad", dir);
    assert_int_equal(kubeconfig_load(path, NULL, &c, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "bad:"));
}

static void test_in_cluster(void **state)
{
    (void)state;
    kube_config c;
    char err[512];
    write_file("token", "tok-1\n");
    write_file("ca.crt", "PEM");
    write_file("namespace", "observatory-system\n");
    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_int_equal(kubeconfig_in_cluster(dir, &c, err, sizeof err), -ENOENT);
    setenv("KUBERNETES_SERVICE_HOST", "10.43.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(kubeconfig_in_cluster(dir, &c, err, sizeof err), 0);
    assert_string_equal(c.server, "https://10.43.0.1:443");
    assert_string_equal(c.namespace, "observatory-system");
    assert_non_null(strstr(c.token_file, "/token"));
    assert_null(c.token); /* read per request, so rotation is seen */
    kubeconfig_free(&c);
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    assert_int_equal(kubeconfig_in_cluster(dir, &c, err, sizeof err), 0);
    assert_string_equal(c.server, "https://[fd00::1]:443");
    kubeconfig_free(&c);
}

static void test_base64(void **state)
{
    (void)state;
    char *out;
    size_t len;
    assert_int_equal(kubeconfig_base64("aGVs\nbG8=", &out, &len), 0);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "hello", 5);
    free(out);
    assert_int_equal(kubeconfig_base64("a$b", &out, &len), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_current_context),
        cmocka_unit_test(test_named_context_and_errors),
        cmocka_unit_test(test_in_cluster),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
