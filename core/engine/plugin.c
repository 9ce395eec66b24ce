/*
 * plugin.c - the plugin loader and the process-wide module table.
 *
 * Loading a .so is running code, so this file is the gate: a plugin is only
 * ever opened from a file whose canonical path (realpath: no symlinks, no
 * "..") lies inside one of the configured plugin directories. It is opened
 * with dlopen(RTLD_NOW | RTLD_LOCAL), so a missing symbol fails here rather
 * than in the middle of a run, and nothing it defines leaks into the global
 * namespace. The single entry symbol is looked up and called, and the
 * descriptor it returns is checked field by field before any other plugin
 * function is reached. Every refusal is one line naming the stage, the plugin
 * and the file, and what exactly mismatched (both values).
 *
 * Each opened object gets an entry in the module table: canonical path, GNU
 * build-id and mapped address range (read back from the dynamic loader with
 * dlinfo + dl_iterate_phdr). The profiler maps sampled addresses to modules
 * with it, and every run records build-ids for reproducibility. Entries are
 * allocated one by one and never move or disappear, because handles are
 * never dlclose'd: old versions stay mapped after a hot swap so that their
 * samples still resolve, and a plugin's threads or thread-local destructors
 * may still point into its code.
 *
 * Locking: open_lock serialises plugin_open (so "same file twice gives the
 * same entry" holds across threads, and dlopen/constructors run once);
 * table_lock protects the pointer array only, so readers (the profiler's
 * symbol resolution) never wait behind a dlopen.
 */
#include "plugin.h"

#include "obs_profiler.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Upper bound on declared parameters: a larger count is a corrupt descriptor,
 * and checking it would walk far outside the plugin's data. */
#define PLUGIN_MAX_PARAMS 1024u

/* A table entry: the public part first, then what only this file needs. The
 * host-owned descriptor copy is what obs_module.desc points at: fields the
 * plugin's (older) descriptor does not have read as zero/NULL, and the host
 * never reads beyond the plugin's struct_size. */
typedef struct module_entry {
    obs_module pub;
    const obs_stage_desc *raw_desc; /* as returned by the entry point */
    obs_stage_desc desc;            /* normalised copy, see above */
} module_entry;

static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static module_entry **table;
static size_t table_len, table_cap;

/* ------------------------------------------------------------ messages */

/* Writes "<what>: <fmt...>" into err (always NUL-terminated when errlen > 0)
 * and returns code, so refusals read `return refuse(code, ...)`. */
static int refuse(int code, char *err, size_t errlen, const char *what, const char *fmt, ...)
    OBS_PRINTF(5, 6);

static int refuse(int code, char *err, size_t errlen, const char *what, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return code;
    int n = snprintf(err, errlen, "%s: ", what ? what : "plugin");
    if (n < 0)
        n = 0;
    if ((size_t)n < errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *obs_strerror(int code)
{
    switch (code) {
    case OBS_OK: return "success";
    case OBS_DONE: return "end of data";
    case OBS_EINVAL: return "invalid argument or parameter";
    case OBS_ENOMEM: return "out of memory or a configured bound reached";
    case OBS_EIO: return "I/O error";
    case OBS_EABI: return "ABI mismatch";
    case OBS_ENOENT: return "no such file, symbol, stage or plugin";
    case OBS_ESTATE: return "state handover refused";
    case OBS_EPLUGIN: return "plugin failure";
    case OBS_ECONFIG: return "configuration error";
    case OBS_EAGAIN: return "try again later";
    }
    return "unknown error";
}

const char *plugin_kind_name(obs_kind kind)
{
    switch (kind) {
    case OBS_KIND_GENERATOR: return "generator";
    case OBS_KIND_TRANSFORM: return "transform";
    case OBS_KIND_SINK: return "sink";
    }
    return "unknown kind";
}

/* "a generator" / "a transform" / "a sink", for messages. */
static const char *kind_with_article(uint32_t kind)
{
    switch (kind) {
    case OBS_KIND_GENERATOR: return "a generator";
    case OBS_KIND_TRANSFORM: return "a transform";
    case OBS_KIND_SINK: return "a sink";
    }
    return "an unknown kind";
}

void plugin_build_id_hex(const obs_module *m, char *buf, size_t buflen)
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;

    if (!buf || buflen == 0)
        return;
    for (size_t i = 0; m && i < m->build_id_len && o + 2 < buflen; i++) {
        buf[o++] = digits[m->build_id[i] >> 4];
        buf[o++] = digits[m->build_id[i] & 0xf];
    }
    buf[o] = '\0';
}

/* ----------------------------------------------------- descriptor checks */

/* Bytes of obs_stage_desc a host needs from a plugin built against ABI 1.<m>:
 * everything up to and including the last field that minor defined. A new
 * minor appends a field to the struct and a line to this table. */
#define DESC_END(field) (offsetof(obs_stage_desc, field) + sizeof(((obs_stage_desc *)0)->field))
static const uint32_t desc_size_for_minor[] = {
    [0] = DESC_END(import_state),
};
_Static_assert(sizeof(desc_size_for_minor) / sizeof(desc_size_for_minor[0]) == OBS_ABI_MINOR + 1,
               "add the size of the new minor to desc_size_for_minor");
_Static_assert(DESC_END(import_state) == sizeof(obs_stage_desc),
               "obs_stage_desc grew: bump OBS_ABI_MINOR and extend desc_size_for_minor");

/* The header every descriptor of every ABI version starts with: the only
 * bytes that may be read before magic, major and size have been checked. */
#define DESC_HEADER_SIZE DESC_END(struct_size)

/* Parses a parameter default as its declared type and checks it against the
 * declared range. Returns NULL when it is fine, or writes why not into buf. */
static const char *param_default_problem(const obs_param_desc *p, char *buf, size_t buflen)
{
    const char *v = p->default_value;
    bool ranged = p->min <= p->max;
    char *end;

    switch (p->type) {
    case OBS_PARAM_INT: {
        errno = 0;
        long long x = strtoll(v, &end, 0);
        if (errno || end == v || *end) {
            snprintf(buf, buflen, "default '%s' is not an integer", v);
            return buf;
        }
        if (ranged && ((double)x < p->min || (double)x > p->max)) {
            snprintf(buf, buflen, "default %lld outside its range [%g, %g]", x, p->min, p->max);
            return buf;
        }
        return NULL;
    }
    case OBS_PARAM_DOUBLE: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end || x != x) {
            snprintf(buf, buflen, "default '%s' is not a number", v);
            return buf;
        }
        if (ranged && (x < p->min || x > p->max)) {
            snprintf(buf, buflen, "default %g outside its range [%g, %g]", x, p->min, p->max);
            return buf;
        }
        return NULL;
    }
    case OBS_PARAM_BOOL:
        if (strcmp(v, "true") && strcmp(v, "false")) {
            snprintf(buf, buflen, "default '%s' is not true or false", v);
            return buf;
        }
        return NULL;
    case OBS_PARAM_STRING:
        /* For strings the range bounds the length, and only when max > 0. */
        if (ranged && p->max > 0) {
            double len = (double)strlen(v);
            if (len < p->min || len > p->max) {
                snprintf(buf, buflen, "default '%s' has length %zu outside [%g, %g]", v, strlen(v),
                         p->min, p->max);
                return buf;
            }
        }
        return NULL;
    }
    snprintf(buf, buflen, "unknown type %u", p->type);
    return buf;
}

static int check_params(const obs_stage_desc *d, const char *what, char *err, size_t errlen)
{
    char why[256];

    if (d->n_params == 0)
        return 0;
    if (!d->params)
        return refuse(OBS_EPLUGIN, err, errlen, what, "declares %u parameters but params is NULL",
                      d->n_params);
    if (d->n_params > PLUGIN_MAX_PARAMS)
        return refuse(OBS_EPLUGIN, err, errlen, what, "declares %u parameters (at most %u)",
                      d->n_params, PLUGIN_MAX_PARAMS);

    for (uint32_t i = 0; i < d->n_params; i++) {
        const obs_param_desc *p = &d->params[i];

        if (!p->name || !p->name[0])
            return refuse(OBS_EPLUGIN, err, errlen, what, "parameter #%u has no name", i);
        /* Names are YAML keys and counter-like identifiers: keep them plain. */
        if (strspn(p->name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(p->name))
            return refuse(OBS_EPLUGIN, err, errlen, what,
                          "parameter '%s': name must match [a-z0-9_]+", p->name);
        for (uint32_t j = 0; j < i; j++)
            if (strcmp(d->params[j].name, p->name) == 0)
                return refuse(OBS_EPLUGIN, err, errlen, what,
                              "parameter '%s' declared twice (#%u and #%u)", p->name, j, i);
        if (p->type < OBS_PARAM_INT || p->type > OBS_PARAM_STRING)
            return refuse(OBS_EPLUGIN, err, errlen, what, "parameter '%s' has unknown type %u",
                          p->name, p->type);
        if (p->default_value && param_default_problem(p, why, sizeof why))
            return refuse(OBS_EPLUGIN, err, errlen, what, "parameter '%s': %s", p->name, why);
    }
    return 0;
}

/* The check itself. On success copies the descriptor into *norm, zero-filled
 * beyond the plugin's struct_size, so later code may read every field the
 * host knows. Reads the plugin's memory only within its declared size. */
static int check_desc(const obs_stage_desc *raw, obs_kind kind, const char *what, char *err,
                      size_t errlen, obs_stage_desc *norm)
{
    obs_stage_desc d;

    if (!raw)
        return refuse(OBS_EPLUGIN, err, errlen, what, "%s() returned NULL instead of a descriptor",
                      OBS_STAGE_ENTRY_NAME);
    if (raw->magic != OBS_STAGE_MAGIC)
        return refuse(OBS_EABI, err, errlen, what,
                      "not an Observatory stage plugin: descriptor magic 0x%08x, expected "
                      "0x%08x (\"OBST\")",
                      raw->magic, OBS_STAGE_MAGIC);
    /* Another major may have moved any field after the header: stop here. */
    if (raw->abi_major != OBS_ABI_MAJOR)
        return refuse(OBS_EABI, err, errlen, what, "ABI major %u, host supports %u", raw->abi_major,
                      OBS_ABI_MAJOR);

    /* A newer minor only appended fields, so the host needs what it knows;
     * an older minor must carry everything that minor defined. */
    unsigned minor = raw->abi_minor <= OBS_ABI_MINOR ? raw->abi_minor : OBS_ABI_MINOR;
    uint32_t need = desc_size_for_minor[minor];
    if (raw->struct_size < need)
        return refuse(OBS_EABI, err, errlen, what,
                      "descriptor struct_size %u too small: ABI %u.%u needs at least %u bytes",
                      raw->struct_size, raw->abi_major, raw->abi_minor, need);

    memset(&d, 0, sizeof d);
    memcpy(&d, raw, raw->struct_size < sizeof d ? raw->struct_size : sizeof d);

    if (!d.name || !d.name[0])
        return refuse(OBS_EPLUGIN, err, errlen, what, "descriptor has no name");
    if (!d.version || !d.version[0])
        return refuse(OBS_EPLUGIN, err, errlen, what, "plugin '%s' has no version", d.name);

    if (d.kind < OBS_KIND_GENERATOR || d.kind > OBS_KIND_SINK)
        return refuse(OBS_EPLUGIN, err, errlen, what, "unknown kind %u (expected 1..3)", d.kind);
    if (kind && d.kind != (uint32_t)kind)
        return refuse(OBS_ECONFIG, err, errlen, what, "is %s, but the stage needs %s",
                      kind_with_article(d.kind), kind_with_article(kind));

    if (!d.init)
        return refuse(OBS_EPLUGIN, err, errlen, what, "%s without init callback",
                      plugin_kind_name(d.kind));
    if (!d.fini)
        return refuse(OBS_EPLUGIN, err, errlen, what, "%s without fini callback",
                      plugin_kind_name(d.kind));
    if (d.kind == OBS_KIND_GENERATOR && !d.generate)
        return refuse(OBS_EPLUGIN, err, errlen, what, "generator without generate callback");
    if (d.kind == OBS_KIND_TRANSFORM && !d.process)
        return refuse(OBS_EPLUGIN, err, errlen, what, "transform without process callback");
    if (d.kind == OBS_KIND_SINK && !d.consume)
        return refuse(OBS_EPLUGIN, err, errlen, what, "sink without consume callback");

    int rc = check_params(&d, what, err, errlen);
    if (rc)
        return rc;
    if (norm)
        *norm = d;
    return 0;
}

int plugin_check_desc(const obs_stage_desc *d, obs_kind kind, const char *what, char *err,
                      size_t errlen)
{
    return check_desc(d, kind, what, err, errlen, NULL);
}

/* ------------------------------------------------------- module table */

size_t plugin_module_count(void)
{
    pthread_mutex_lock(&table_lock);
    size_t n = table_len;
    pthread_mutex_unlock(&table_lock);
    return n;
}

const obs_module *plugin_module_get(size_t i)
{
    const obs_module *m = NULL;

    pthread_mutex_lock(&table_lock);
    if (i < table_len)
        m = &table[i]->pub;
    pthread_mutex_unlock(&table_lock);
    return m;
}

const obs_module *plugin_module_find(uintptr_t addr)
{
    const obs_module *m = NULL;

    pthread_mutex_lock(&table_lock);
    for (size_t i = 0; i < table_len; i++) {
        if (addr >= table[i]->pub.start && addr < table[i]->pub.end) {
            m = &table[i]->pub;
            break;
        }
    }
    pthread_mutex_unlock(&table_lock);
    return m;
}

/* Looks an entry up by canonical path. Caller holds open_lock (the only
 * writer), so the entry cannot be added concurrently. */
static module_entry *table_find_path(const char *path)
{
    module_entry *e = NULL;

    pthread_mutex_lock(&table_lock);
    for (size_t i = 0; i < table_len; i++) {
        if (strcmp(table[i]->pub.path, path) == 0) {
            e = table[i];
            break;
        }
    }
    pthread_mutex_unlock(&table_lock);
    return e;
}

/* Appends e (ownership passes to the table) and sets its id. Only the
 * pointer array grows; entries themselves never move. */
static int table_add(module_entry *e)
{
    int rc = 0;

    pthread_mutex_lock(&table_lock);
    if (table_len == table_cap) {
        size_t cap = table_cap ? table_cap * 2 : 16;
        module_entry **t = realloc(table, cap * sizeof *t);
        if (!t) {
            rc = OBS_ENOMEM;
            goto out;
        }
        table = t;
        table_cap = cap;
    }
    e->pub.id = (uint32_t)table_len;
    table[table_len++] = e;
out:
    pthread_mutex_unlock(&table_lock);
    return rc;
}

void plugin_table_reset(void)
{
    pthread_mutex_lock(&open_lock);
    pthread_mutex_lock(&table_lock);
    for (size_t i = 0; i < table_len; i++) {
        free(table[i]->pub.path);
        free(table[i]);
    }
    free(table);
    table = NULL;
    table_len = table_cap = 0;
    pthread_mutex_unlock(&table_lock);
    pthread_mutex_unlock(&open_lock);
}

/* ------------------------------------------- build-id and address range */

typedef struct phdr_query {
    const struct link_map *lm;
    obs_module *m;
    bool found;
} phdr_query;

/* Walks a PT_NOTE segment for the GNU build-id note. Notes are padded to the
 * segment's alignment (4, or 8 for the .note.gnu.property style). */
static void read_build_id(const uint8_t *p, size_t size, size_t align, obs_module *m)
{
    const uint8_t *end = p + size;

    while ((size_t)(end - p) >= sizeof(ElfW(Nhdr))) {
        const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)(const void *)p;
        size_t name_off = sizeof *nh;
        size_t desc_off = name_off + ((nh->n_namesz + align - 1) & ~(align - 1));
        size_t next = desc_off + ((nh->n_descsz + align - 1) & ~(align - 1));

        if (next > (size_t)(end - p))
            return;
        if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
            memcmp(p + name_off, "GNU", 4) == 0 && nh->n_descsz > 0) {
            size_t n = nh->n_descsz < OBS_BUILD_ID_MAX ? nh->n_descsz : OBS_BUILD_ID_MAX;
            memcpy(m->build_id, p + desc_off, n);
            m->build_id_len = n;
            return;
        }
        p += next;
    }
}

static int phdr_callback(struct dl_phdr_info *info, size_t size, void *arg)
{
    phdr_query *q = arg;
    (void)size;

    /* Match on both load address and name: the link_map's l_name is the
     * string dlopen recorded, which is what dl_iterate_phdr reports. */
    if (info->dlpi_addr != q->lm->l_addr || !info->dlpi_name ||
        strcmp(info->dlpi_name, q->lm->l_name) != 0)
        return 0;

    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (ElfW(Half) i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t a = (uintptr_t)info->dlpi_addr + ph->p_vaddr;

        if (ph->p_type == PT_LOAD) {
            if (a < lo)
                lo = a;
            if (a + ph->p_memsz > hi)
                hi = a + ph->p_memsz;
        } else if (ph->p_type == PT_NOTE && q->m->build_id_len == 0) {
            read_build_id((const uint8_t *)a, ph->p_memsz, ph->p_align == 8 ? 8 : 4, q->m);
        }
    }
    q->m->start = lo == UINTPTR_MAX ? 0 : lo;
    q->m->end = hi;
    q->m->load_bias = (uintptr_t)info->dlpi_addr;
    q->found = true;
    return 1;
}

/* Fills build-id and address range of a freshly opened handle. */
static int module_read_layout(void *handle, obs_module *m)
{
    struct link_map *lm = NULL;

    if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || !lm)
        return OBS_EPLUGIN;
    phdr_query q = {.lm = lm, .m = m, .found = false};
    dl_iterate_phdr(phdr_callback, &q);
    return q.found ? 0 : OBS_EPLUGIN;
}

/* ------------------------------------------------- directories and paths */

/* Is the canonical path p inside the canonical directory dir? */
static bool path_inside(const char *p, const char *dir)
{
    size_t n = strlen(dir);

    if (n == 1 && dir[0] == '/')
        return p[0] == '/';
    return strncmp(p, dir, n) == 0 && p[n] == '/';
}

static bool path_inside_any(const char *p, char *const *dirs, size_t n_dirs)
{
    for (size_t i = 0; i < n_dirs; i++)
        if (path_inside(p, dirs[i]))
            return true;
    return false;
}

/* Appends " (d1, d2, ...)" style directory lists to messages. */
static void join_dirs(char *buf, size_t buflen, char *const *dirs, size_t n_dirs)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n_dirs && o < buflen; i++) {
        int n = snprintf(buf + o, buflen - o, "%s%s", i ? ", " : "", dirs[i]);
        if (n < 0)
            break;
        o += (size_t)n;
    }
}

void plugin_dirs_free(char **dirs, size_t n)
{
    if (!dirs)
        return;
    for (size_t i = 0; i < n; i++)
        free(dirs[i]);
    free(dirs);
}

int plugin_dirs_resolve(const char *base_dir, char *const *dirs, size_t n_dirs, char ***out,
                        char *err, size_t errlen)
{
    char joined[PATH_MAX];
    char **res = NULL;
    int rc;

    *out = NULL;
    res = calloc(n_dirs ? n_dirs : 1, sizeof *res);
    if (!res)
        return refuse(OBS_ENOMEM, err, errlen, "plugin directories", "out of memory");

    for (size_t i = 0; i < n_dirs; i++) {
        const char *d = dirs[i];
        struct stat st;
        int n;

        if (!d || !d[0]) {
            rc = refuse(OBS_ECONFIG, err, errlen, "plugin directories", "entry #%zu is empty", i);
            goto fail;
        }
        if (d[0] == '/' || !base_dir || !base_dir[0])
            n = snprintf(joined, sizeof joined, "%s", d);
        else
            n = snprintf(joined, sizeof joined, "%s/%s", base_dir, d);
        if (n < 0 || (size_t)n >= sizeof joined) {
            rc = refuse(OBS_ECONFIG, err, errlen, "plugin directories", "'%s': path too long", d);
            goto fail;
        }
        /* realpath allocates (POSIX.1-2008) when given NULL: the result is
         * what we keep. */
        res[i] = realpath(joined, NULL);
        if (!res[i]) {
            int e = errno;
            rc = refuse(e == ENOMEM ? OBS_ENOMEM : OBS_ENOENT, err, errlen, "plugin directories",
                        "'%s'%s%s%s: %s", d, strcmp(d, joined) ? " (" : "",
                        strcmp(d, joined) ? joined : "", strcmp(d, joined) ? ")" : "", strerror(e));
            goto fail;
        }
        if (stat(res[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
            rc = refuse(OBS_ENOENT, err, errlen, "plugin directories", "'%s': not a directory",
                        res[i]);
            goto fail;
        }
    }
    *out = res;
    return 0;

fail:
    plugin_dirs_free(res, n_dirs);
    return rc;
}

/* A component spliced into a file name must not be able to change the
 * directory it is looked up in. */
static bool safe_component(const char *s)
{
    return s && s[0] && strcmp(s, ".") && strcmp(s, "..") &&
           strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.+-") ==
               strlen(s);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Canonicalises `candidate` into canon (PATH_MAX bytes). Returns 0 when it
 * exists and lies inside a configured directory, 1 when it does not exist
 * (try the next candidate), or a negative code with the reason in err. */
static int try_candidate(const char *candidate, char *const *dirs, size_t n_dirs, char *canon,
                         const char *what, char *err, size_t errlen)
{
    char dirlist[1024];
    struct stat st;

    if (!realpath(candidate, canon)) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 1;
        return refuse(OBS_ENOENT, err, errlen, what, "%s: %s", candidate, strerror(errno));
    }
    if (!path_inside_any(canon, dirs, n_dirs)) {
        join_dirs(dirlist, sizeof dirlist, dirs, n_dirs);
        return refuse(OBS_EINVAL, err, errlen, what,
                      "%s resolves to %s, outside the plugin directories (%s)", candidate, canon,
                      dirlist);
    }
    if (stat(canon, &st) != 0 || !S_ISREG(st.st_mode))
        return refuse(OBS_ENOENT, err, errlen, what, "%s: not a regular file", canon);
    return 0;
}

/* Turns the request into the canonical path of an existing file inside the
 * configured directories (see plugin_open for the search order). */
static int resolve_file(const plugin_request *req, char *const *dirs, size_t n_dirs, char *canon,
                        const char *what, char *err, size_t errlen)
{
    char cand[PATH_MAX];
    char dirlist[1024];
    const char *p = req->plugin;
    int rc;

    if (p[0] == '/') {
        rc = try_candidate(p, dirs, n_dirs, canon, what, err, errlen);
        if (rc == 1)
            return refuse(OBS_ENOENT, err, errlen, what, "%s: no such file", p);
        return rc;
    }

    if (strchr(p, '/') || ends_with(p, ".so")) {
        /* A file name relative to each directory. It may contain "../" as
         * long as the canonical result stays inside a configured directory. */
        for (size_t i = 0; i < n_dirs; i++) {
            int n = snprintf(cand, sizeof cand, "%s/%s", dirs[i], p);
            if (n < 0 || (size_t)n >= sizeof cand)
                return refuse(OBS_EINVAL, err, errlen, what, "path too long");
            rc = try_candidate(cand, dirs, n_dirs, canon, what, err, errlen);
            if (rc != 1)
                return rc;
        }
        join_dirs(dirlist, sizeof dirlist, dirs, n_dirs);
        return refuse(OBS_ENOENT, err, errlen, what, "no file %s in the plugin directories (%s)", p,
                      dirlist);
    }

    if (!safe_component(p))
        return refuse(OBS_EINVAL, err, errlen, what,
                      "invalid plugin name (letters, digits, '_', '.', '+', '-' only)");
    if (req->version && !safe_component(req->version))
        return refuse(OBS_EINVAL, err, errlen, what, "invalid version '%s'", req->version);

    /* Versioned file names first in every directory, then plain ones, so an
     * exact "N-V.so" anywhere wins over an "N.so" that comes earlier. */
    for (int pass = req->version ? 0 : 1; pass < 2; pass++) {
        for (size_t i = 0; i < n_dirs; i++) {
            int n = pass == 0 ? snprintf(cand, sizeof cand, "%s/%s-%s.so", dirs[i], p, req->version)
                              : snprintf(cand, sizeof cand, "%s/%s.so", dirs[i], p);
            if (n < 0 || (size_t)n >= sizeof cand)
                return refuse(OBS_EINVAL, err, errlen, what, "path too long");
            rc = try_candidate(cand, dirs, n_dirs, canon, what, err, errlen);
            if (rc != 1)
                return rc;
        }
    }
    join_dirs(dirlist, sizeof dirlist, dirs, n_dirs);
    if (req->version)
        return refuse(OBS_ENOENT, err, errlen, what, "not found (no %s-%s.so or %s.so in %s)", p,
                      req->version, p, dirlist);
    return refuse(OBS_ENOENT, err, errlen, what, "not found (no %s.so in %s)", p, dirlist);
}

/* Checks an entry's descriptor against what this stage asks for: kind, and
 * version when one is asked for; and, when the stage named the plugin rather
 * than a file, that the file really holds that plugin. */
static int check_request(const module_entry *e, const plugin_request *req, const char *what,
                         char *err, size_t errlen)
{
    int rc = check_desc(e->raw_desc, 0, what, err, errlen, NULL);
    if (rc)
        return rc;
    if (req->kind && e->desc.kind != (uint32_t)req->kind) {
        if (req->stage_name)
            return refuse(OBS_ECONFIG, err, errlen, what, "is %s, but stage '%s' needs %s",
                          kind_with_article(e->desc.kind), req->stage_name,
                          kind_with_article(req->kind));
        return refuse(OBS_ECONFIG, err, errlen, what, "is %s, but the stage needs %s",
                      kind_with_article(e->desc.kind), kind_with_article(req->kind));
    }
    if (req->version && strcmp(e->desc.version, req->version) != 0)
        return refuse(OBS_ENOENT, err, errlen, what, "version %s, stage asks for %s",
                      e->desc.version, req->version);
    if (!strchr(req->plugin, '/') && !ends_with(req->plugin, ".so") &&
        strcmp(e->desc.name, req->plugin) != 0)
        return refuse(OBS_EPLUGIN, err, errlen, what, "file declares plugin name '%s'",
                      e->desc.name);
    return 0;
}

int plugin_open(const plugin_request *req, const obs_module **out, char *err, size_t errlen)
{
    char what[PATH_MAX + 512];
    char canon[PATH_MAX];
    char **dirs = NULL;
    module_entry *e = NULL;
    void *handle = NULL;
    size_t n_dirs = 0;
    int rc;

    *out = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!req || !req->plugin || !req->plugin[0])
        return refuse(OBS_EINVAL, err, errlen, req && req->stage_name ? req->stage_name : "stage",
                      "no plugin given");

    /* Message prefix until the file is known; "stage 'x': plugin 'y'". */
    if (req->stage_name)
        snprintf(what, sizeof what, "stage '%s': plugin '%s'", req->stage_name, req->plugin);
    else
        snprintf(what, sizeof what, "plugin '%s'", req->plugin);

    if (req->n_dirs == 0 || !req->dirs)
        return refuse(OBS_ENOENT, err, errlen, what, "no plugin directories configured");

    /* Canonicalise the directories ourselves: containment is decided on
     * canonical paths on both sides, whatever the caller passed. */
    dirs = calloc(req->n_dirs, sizeof *dirs);
    if (!dirs)
        return refuse(OBS_ENOMEM, err, errlen, what, "out of memory");
    for (n_dirs = 0; n_dirs < req->n_dirs; n_dirs++) {
        const char *d = req->dirs[n_dirs];
        if (!d || d[0] != '/') {
            rc = refuse(OBS_EINVAL, err, errlen, what, "plugin directory '%s' is not absolute",
                        d ? d : "(null)");
            goto out;
        }
        dirs[n_dirs] = realpath(d, NULL);
        if (!dirs[n_dirs]) {
            rc = refuse(OBS_ENOENT, err, errlen, what, "plugin directory %s: %s", d,
                        strerror(errno));
            goto out;
        }
    }

    rc = resolve_file(req, dirs, n_dirs, canon, what, err, errlen);
    if (rc)
        goto out;
    {
        size_t o = strlen(what);
        snprintf(what + o, sizeof what - o, " (%s)", canon);
    }
    if (req->content_addressed) {
        char copy[PATH_MAX], why[PATH_MAX + 128];
        rc = plugin_copy_content_addressed(canon, copy, sizeof copy, why, sizeof why);
        if (rc) {
            rc = refuse(rc, err, errlen, what, "%s", why);
            goto out;
        }
        if (!realpath(copy, canon)) {
            rc = refuse(OBS_EIO, err, errlen, what, "%s: %s", copy, strerror(errno));
            goto out;
        }
    }

    pthread_mutex_lock(&open_lock);
    e = table_find_path(canon);
    if (e) {
        rc = check_request(e, req, what, err, errlen);
        if (rc == 0)
            *out = &e->pub;
        e = NULL; /* owned by the table */
        goto out_unlock;
    }

    dlerror();
    handle = dlopen(canon, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        const char *why = dlerror();
        size_t n = strlen(canon);
        /* glibc prefixes the file name, which `what` already carries. */
        if (why && strncmp(why, canon, n) == 0 && strncmp(why + n, ": ", 2) == 0)
            why += n + 2;
        rc = refuse(OBS_EPLUGIN, err, errlen, what, "dlopen failed: %s", why ? why : "unknown");
        goto out_unlock;
    }
    /* From here on the handle is never closed, even on refusal: the
     * object's constructors have run and may have left threads or
     * registrations pointing into its code. A later open of the same file
     * gets the same handle from the loader and fails the same way. */

    dlerror();
    /* POSIX guarantees a function pointer survives the round trip through
     * the void * dlsym returns. */
    obs_stage_entry_fn entry = (obs_stage_entry_fn)dlsym(handle, OBS_STAGE_ENTRY_NAME);
    if (!entry) {
        /* Usually an entry point defined without OBS_EXPORT, which
         * -fvisibility=hidden keeps out of the dynamic symbol table. */
        rc = refuse(OBS_ENOENT, err, errlen, what,
                    "not an Observatory stage plugin: no symbol '%s' exported (missing "
                    "OBS_EXPORT / OBS_DECLARE_STAGE?)",
                    OBS_STAGE_ENTRY_NAME);
        goto out_unlock;
    }

    e = calloc(1, sizeof *e);
    if (!e) {
        rc = refuse(OBS_ENOMEM, err, errlen, what, "out of memory");
        goto out_unlock;
    }
    e->raw_desc = entry();
    rc = check_desc(e->raw_desc, 0, what, err, errlen, &e->desc);
    if (rc)
        goto out_unlock;
    e->pub.handle = handle;
    e->pub.desc = &e->desc;
    e->pub.path = strdup(canon);
    if (!e->pub.path) {
        rc = refuse(OBS_ENOMEM, err, errlen, what, "out of memory");
        goto out_unlock;
    }
    if (module_read_layout(handle, &e->pub) != 0) {
        rc = refuse(OBS_EPLUGIN, err, errlen, what, "cannot find the object's segments");
        goto out_unlock;
    }
    /* Kind and version are stage-specific: check them before the entry is
     * published, but a file refused for one stage is still a valid module
     * that another stage may open, so it enters the table either way. */
    rc = check_request(e, req, what, err, errlen);
    if (table_add(e) != 0) {
        rc = refuse(OBS_ENOMEM, err, errlen, what, "out of memory");
        goto out_unlock;
    }
    if (obs_prof_active()) {
        /* The profiler reads the symbol tables now, so samples of this
         * module stay resolvable whatever happens to the file later. */
        /* A content-addressed copy is named <plugin>@<hash>.so: label its
         * frames with the plugin's own name instead. */
        obs_prof_module_info mi = {.path = e->pub.path,
                                   .name = req->content_addressed ? e->desc.name : NULL,
                                   .build_id = e->pub.build_id,
                                   .build_id_len = e->pub.build_id_len,
                                   .start = e->pub.start,
                                   .end = e->pub.end,
                                   .load_bias = e->pub.load_bias};
        char perr[256];
        if (obs_prof_module_add(&mi, &e->pub.prof_module, perr, sizeof perr) != 0)
            fprintf(stderr, "hostd: profiler: %s: %s (its frames will show as addresses)\n",
                    e->pub.path, perr);
    }
    if (rc == 0)
        *out = &e->pub;
    e = NULL;

out_unlock:
    pthread_mutex_unlock(&open_lock);
out:
    if (e) {
        free(e->pub.path);
        free(e);
    }
    plugin_dirs_free(dirs, n_dirs);
    return rc;
}
