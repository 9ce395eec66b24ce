/*
 * kubeconfig.c - in-cluster configuration and kubeconfig parsing (kubeconfig.h).
 *
 * The kubeconfig is loaded as a libyaml document and navigated by key; the
 * few fields used are looked up by name, everything else is ignored, as
 * kubectl does.
 */
#include "kubeconfig.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static char *read_file(const char *path, size_t *lenp)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    char chunk[4096];
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    fclose(f);
    if (!buf && !(buf = calloc(1, 1)))
        return NULL;
    buf[len] = '\0';
    if (lenp)
        *lenp = len;
    return buf;
}

static char *trimmed(char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
    return s;
}

void kubeconfig_free(kube_config *c)
{
    free(c->server);
    free(c->ca_file);
    free(c->ca_data);
    free(c->token);
    free(c->token_file);
    free(c->cert_file);
    free(c->key_file);
    free(c->cert_data);
    free(c->key_data);
    free(c->namespace);
    memset(c, 0, sizeof *c);
}

int kubeconfig_in_cluster(const char *sa_dir, kube_config *c, char *err, size_t errlen)
{
    char path[512];
    memset(c, 0, sizeof *c);
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!sa_dir)
        sa_dir = KUBECONFIG_SA_DIR;
    if (!host || !*host || !port || !*port) {
        snprintf(err, errlen,
                 "not in a cluster: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set");
        return -ENOENT;
    }
    /* An IPv6 service address needs brackets in a URL. */
    int v6 = strchr(host, ':') != NULL;
    if (asprintf(&c->server, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port) < 0)
        goto oom;
    snprintf(path, sizeof path, "%s/token", sa_dir);
    char *tok = read_file(path, NULL);
    if (!tok) {
        snprintf(err, errlen, "in-cluster: cannot read the service account token %s", path);
        kubeconfig_free(c);
        return -ENOENT;
    }
    free(tok);
    if (!(c->token_file = strdup(path)))
        goto oom;
    snprintf(path, sizeof path, "%s/ca.crt", sa_dir);
    if (!(c->ca_file = strdup(path)))
        goto oom;
    snprintf(path, sizeof path, "%s/namespace", sa_dir);
    c->namespace = trimmed(read_file(path, NULL));
    return 0;
oom:
    kubeconfig_free(c);
    return -ENOMEM;
}

int kubeconfig_base64(const char *in, char **out, size_t *outlen)
{
    size_t n = strlen(in);
    unsigned char *o = malloc(n / 4 * 3 + 4);
    if (!o)
        return -ENOMEM;
    size_t len = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *p = in; *p; p++) {
        int v;
        char ch = *p;
        if (ch >= 'A' && ch <= 'Z')
            v = ch - 'A';
        else if (ch >= 'a' && ch <= 'z')
            v = ch - 'a' + 26;
        else if (ch >= '0' && ch <= '9')
            v = ch - '0' + 52;
        else if (ch == '+')
            v = 62;
        else if (ch == '/')
            v = 63;
        else if (ch == '=')
            break;
        else if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
            continue;
        else {
            free(o);
            return -EINVAL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[len++] = (unsigned char)(acc >> bits);
        }
    }
    o[len] = '\0';
    *out = (char *)o;
    *outlen = len;
    return 0;
}

/* ---- libyaml document navigation ---- */

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *m, const char *key)
{
    if (!m || m->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (k && k->type == YAML_SCALAR_NODE && strcmp((char *)k->data.scalar.value, key) == 0)
            return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

static const char *scalar(yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* In a list of {name: X, <field>: {...}} (clusters, users, contexts), the
 * <field> mapping of the entry named `name`. */
static yaml_node_t *named(yaml_document_t *d, yaml_node_t *root, const char *list,
                          const char *field, const char *name)
{
    yaml_node_t *seq = map_get(d, root, list);
    if (!seq || seq->type != YAML_SEQUENCE_NODE || !name)
        return NULL;
    for (yaml_node_item_t *i = seq->data.sequence.items.start; i < seq->data.sequence.items.top;
         i++) {
        yaml_node_t *e = yaml_document_get_node(d, *i);
        const char *n = scalar(map_get(d, e, "name"));
        if (n && strcmp(n, name) == 0)
            return map_get(d, e, field);
    }
    return NULL;
}

static int dup_path(const char *dir, const char *p, char **out)
{
    if (!p)
        return 0;
    int rc = p[0] == '/' ? ((*out = strdup(p)) ? 0 : -1) : asprintf(out, "%s/%s", dir, p);
    return rc < 0 ? -ENOMEM : 0;
}

static int dup_b64(const char *s, char **out, size_t *len)
{
    return s ? kubeconfig_base64(s, out, len) : 0;
}

int kubeconfig_load(const char *path, const char *context, kube_config *c, char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = 0, have_doc = 0;
    char *dircopy = NULL;
    memset(c, 0, sizeof *c);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "kubeconfig %s: %s", path, strerror(errno));
        return -ENOENT;
    }
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "kubeconfig %s:%zu:%zu: %s", path, parser.problem_mark.line + 1,
                 parser.problem_mark.column + 1, parser.problem ? parser.problem : "syntax error");
        rc = -EINVAL;
        goto out;
    }
    have_doc = 1;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!context)
        context = scalar(map_get(&doc, root, "current-context"));
    if (!context) {
        snprintf(err, errlen, "kubeconfig %s: no current-context and no --context given", path);
        rc = -EINVAL;
        goto out;
    }
    yaml_node_t *ctx = named(&doc, root, "contexts", "context", context);
    if (!ctx) {
        snprintf(err, errlen, "kubeconfig %s: no context named '%s'", path, context);
        rc = -EINVAL;
        goto out;
    }
    const char *cluster_name = scalar(map_get(&doc, ctx, "cluster")),
               *user_name = scalar(map_get(&doc, ctx, "user"));
    yaml_node_t *cluster = named(&doc, root, "clusters", "cluster", cluster_name);
    yaml_node_t *user = named(&doc, root, "users", "user", user_name);
    const char *server = scalar(map_get(&doc, cluster, "server"));
    if (!server) {
        snprintf(err, errlen, "kubeconfig %s: context '%s': cluster '%s' has no server", path,
                 context, cluster_name ? cluster_name : "");
        rc = -EINVAL;
        goto out;
    }
    if (map_get(&doc, user, "exec") || map_get(&doc, user, "auth-provider")) {
        snprintf(err, errlen,
                 "kubeconfig %s: user '%s' uses an exec or auth-provider plugin, which this "
                 "operator does not "
                 "support; use a token or a client certificate",
                 path, user_name ? user_name : "");
        rc = -ENOTSUP;
        goto out;
    }
    if (!(dircopy = strdup(path)) || !(c->server = strdup(server))) {
        rc = -ENOMEM;
        goto out;
    }
    size_t n = strlen(c->server);
    while (n && c->server[n - 1] == '/')
        c->server[--n] = '\0';
    const char *dir = dirname(dircopy);
    const char *ins = scalar(map_get(&doc, cluster, "insecure-skip-tls-verify"));
    c->insecure = ins && strcmp(ins, "true") == 0;
    const char *ns = scalar(map_get(&doc, ctx, "namespace"));
    const char *tok = scalar(map_get(&doc, user, "token"));
    if ((ns && !(c->namespace = strdup(ns))) || (tok && !(c->token = strdup(tok))) ||
        dup_path(dir, scalar(map_get(&doc, cluster, "certificate-authority")), &c->ca_file) ||
        dup_path(dir, scalar(map_get(&doc, user, "tokenFile")), &c->token_file) ||
        dup_path(dir, scalar(map_get(&doc, user, "client-certificate")), &c->cert_file) ||
        dup_path(dir, scalar(map_get(&doc, user, "client-key")), &c->key_file)) {
        rc = -ENOMEM;
        goto out;
    }
    if (dup_b64(scalar(map_get(&doc, cluster, "certificate-authority-data")), &c->ca_data,
                &c->ca_data_len) ||
        dup_b64(scalar(map_get(&doc, user, "client-certificate-data")), &c->cert_data,
                &c->cert_data_len) ||
        dup_b64(scalar(map_get(&doc, user, "client-key-data")), &c->key_data, &c->key_data_len)) {
        snprintf(err, errlen, "kubeconfig %s: a *-data field is not valid base64", path);
        rc = -EINVAL;
        goto out;
    }
out:
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    free(dircopy);
    if (rc)
        kubeconfig_free(c);
    return rc;
}
