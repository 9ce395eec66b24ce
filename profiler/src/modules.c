/*
 * modules.c - the module registry: every loaded object the profiler can
 * attribute addresses to, with its ELF function symbols.
 *
 * Objects come from two places: a scan of dl_iterate_phdr (the executable,
 * libc, libunwind, ...) at init and whenever an address falls outside every
 * known module, and obs_prof_module_add() from the host for each plugin it
 * loads. Symbols are read from the file when the module is added, which is
 * the moment the file is known to be what is mapped, and kept until
 * shutdown: a retired module (dlclose'd, or replaced by a new version at the
 * same addresses) keeps naming its samples correctly, because the collector
 * maps each address to a module id while that module is live, and names are
 * looked up by id later.
 *
 * ELF parsing is done here with glibc's <elf.h> rather than libelf: we need
 * only the section headers, one symbol table, its string table and the
 * build-id note of a native 64-bit little-endian file, which is ~150 lines
 * with explicit bounds checks, and it avoids a dependency (libelf-dev is
 * not otherwise needed) whose API would add more code than it saves.
 *
 * Interface and place in the whole: modules.h. The registry calls nothing
 * above itself except the before-change hook it was opened with.
 */
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

#include "demangle.h"
#include "modules.h"
#include "obs_profiler.h"
#include "observatory/stage.h"
#include "util.h"

#define MAX_MODULES 65535 /* ids fit the 16 bits of a location */
#define MAX_TABLE_BYTES (512u << 20)

typedef struct prof_sym {
    uint64_t addr; /* ELF virtual address */
    uint64_t size;
    uint32_t name; /* offset in names */
} prof_sym;

typedef struct prof_module {
    char *path;
    char *label;   /* "tp_burn", "libc.so.6" */
    char *unknown; /* "[label]" */
    int prefix;    /* frames read "label:function" */
    int live;
    uint8_t build_id[64];
    size_t build_id_len;
    uintptr_t start, end, bias;
    prof_sym *syms;
    uint32_t n_syms;
    char *names;
    /* Per symbol, its demangled name once a sample needed it: NULL not yet
     * asked, the symbol's own name when it is not mangled, else a string
     * from prof_demangle. Filled lazily (most symbols are never sampled)
     * with an atomic compare-and-swap, read without the registry lock. */
    char **shown;
} prof_module;

static struct {
    pthread_mutex_t lock;
    prof_module **mods; /* index = id; [0] unused */
    uint32_t n, cap;    /* ids used, including 0 */
    uint32_t *live;     /* ids of live modules sorted by start */
    uint32_t n_live;
    uintptr_t ldso_lo, ldso_hi;
    uint64_t last_scan_ns;
    int open; /* between prof_modules_init and prof_modules_fini */
    prof_modules_change_fn before_change;
} reg = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* ------------------------------------------------------------ ELF files */

static int read_at(int fd, void *buf, size_t len, uint64_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static int sym_cmp(const void *a, const void *b)
{
    const prof_sym *x = a, *y = b;
    if (x->addr != y->addr)
        return x->addr < y->addr ? -1 : 1;
    /* Prefer a sized symbol at the same address. */
    return (x->size < y->size) - (x->size > y->size);
}

/* Finds the NT_GNU_BUILD_ID payload in a note area. */
static size_t note_build_id(const uint8_t *p, size_t len, uint8_t *out, size_t cap)
{
    size_t off = 0;
    while (off + sizeof(Elf64_Nhdr) <= len) {
        const Elf64_Nhdr *nh = (const void *)(p + off);
        size_t namesz = (nh->n_namesz + 3u) & ~3u, descsz = (nh->n_descsz + 3u) & ~3u;
        size_t body = off + sizeof *nh;
        if (body + namesz + descsz > len || body + namesz + descsz < body)
            return 0;
        if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(p + body, "GNU", 4) == 0) {
            size_t n = nh->n_descsz < cap ? nh->n_descsz : cap;
            memcpy(out, p + body + namesz, n);
            return n;
        }
        off = body + namesz + descsz;
    }
    return 0;
}

/* Reads the function symbols and build-id of an ELF file into m (syms,
 * names, and build_id when m has none yet: *file_id gets the file's).
 * Returns 0, or -1 if the file is unreadable or not a native ELF64. */
static int elf_read(const char *path, prof_module *m, uint8_t *file_id, size_t *file_id_len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    Elf64_Shdr *sh = NULL;
    Elf64_Sym *syms = NULL;
    char *names = NULL;
    int ret = -1;
    struct stat st;
    Elf64_Ehdr eh;

    *file_id_len = 0;
    if (fd < 0 || fstat(fd, &st) != 0)
        goto out;
    uint64_t fsize = (uint64_t)st.st_size;
    if (read_at(fd, &eh, sizeof eh, 0) != 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
        eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 ||
        eh.e_shoff + (uint64_t)eh.e_shnum * sizeof *sh > fsize)
        goto out;
    sh = malloc((size_t)eh.e_shnum * sizeof *sh);
    if (!sh || read_at(fd, sh, (size_t)eh.e_shnum * sizeof *sh, eh.e_shoff) != 0)
        goto out;

    int symtab = -1, dynsym = -1;
    for (int i = 0; i < eh.e_shnum; i++) {
        if (sh[i].sh_type == SHT_SYMTAB && symtab < 0)
            symtab = i;
        else if (sh[i].sh_type == SHT_DYNSYM && dynsym < 0)
            dynsym = i;
        else if (sh[i].sh_type == SHT_NOTE && !*file_id_len && sh[i].sh_size <= 4096 &&
                 sh[i].sh_offset + sh[i].sh_size <= fsize) {
            uint8_t note[4096];
            if (read_at(fd, note, sh[i].sh_size, sh[i].sh_offset) == 0)
                *file_id_len = note_build_id(note, sh[i].sh_size, file_id, 64);
        }
    }
    int si = symtab >= 0 ? symtab : dynsym;
    ret = 0; /* a file without symbols is fine: its frames read "[module]" */
    if (si < 0)
        goto out;
    const Elf64_Shdr *s = &sh[si];
    if (s->sh_link >= eh.e_shnum || s->sh_entsize != sizeof(Elf64_Sym))
        goto out;
    const Elf64_Shdr *strs = &sh[s->sh_link];
    if (s->sh_size > MAX_TABLE_BYTES || strs->sh_size > MAX_TABLE_BYTES || strs->sh_size == 0 ||
        s->sh_offset + s->sh_size > fsize || strs->sh_offset + strs->sh_size > fsize)
        goto out;
    syms = malloc(s->sh_size ? s->sh_size : 1);
    names = malloc(strs->sh_size);
    if (!syms || !names || read_at(fd, syms, s->sh_size, s->sh_offset) != 0 ||
        read_at(fd, names, strs->sh_size, strs->sh_offset) != 0) {
        ret = -1;
        goto out;
    }
    names[strs->sh_size - 1] = 0;
    size_t n = s->sh_size / sizeof(Elf64_Sym), k = 0;
    prof_sym *out = malloc((n ? n : 1) * sizeof *out);
    if (!out) {
        ret = -1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int type = ELF64_ST_TYPE(syms[i].st_info);
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || syms[i].st_shndx == SHN_UNDEF ||
            syms[i].st_value == 0 || syms[i].st_name >= strs->sh_size)
            continue;
        out[k].addr = syms[i].st_value;
        out[k].size = syms[i].st_size;
        out[k].name = syms[i].st_name;
        k++;
    }
    qsort(out, k, sizeof *out, sym_cmp);
    /* One symbol per address (aliases such as memcpy/__memcpy_avx...). */
    size_t w = 0;
    for (size_t i = 0; i < k; i++)
        if (w == 0 || out[w - 1].addr != out[i].addr)
            out[w++] = out[i];
    m->syms = out;
    m->n_syms = (uint32_t)w;
    m->names = names;
    names = NULL;
out:
    free(sh);
    free(syms);
    free(names);
    if (fd >= 0)
        close(fd);
    return ret;
}

/* Loads symbols: the separate debug file of the build-id when one is
 * installed and has a .symtab, else the object itself. */
static int module_load_symbols(prof_module *m, char *err, size_t errlen)
{
    uint8_t fid[64];
    size_t fid_len = 0;
    if (elf_read(m->path, m, fid, &fid_len) != 0) {
        prof_err(err, errlen, "module '%s': not a readable ELF64 file", m->path);
        return OBS_EIO;
    }
    if (m->build_id_len && fid_len &&
        (fid_len != m->build_id_len || memcmp(fid, m->build_id, fid_len) != 0)) {
        prof_err(err, errlen,
                 "module '%s': the file's build-id differs from the mapped object's "
                 "(replaced on disk after it was loaded?)",
                 m->path);
        free(m->syms);
        free(m->names);
        m->syms = NULL;
        m->names = NULL;
        m->n_syms = 0;
        return OBS_EINVAL;
    }
    if (!m->build_id_len && fid_len) {
        memcpy(m->build_id, fid, fid_len);
        m->build_id_len = fid_len;
    }
    if (m->build_id_len >= 2) {
        char dbg[PATH_MAX];
        int n = snprintf(dbg, sizeof dbg, "/usr/lib/debug/.build-id/%02x/", m->build_id[0]);
        for (size_t i = 1; i < m->build_id_len && n > 0 && (size_t)n + 3 < sizeof dbg; i++)
            n += snprintf(dbg + n, sizeof dbg - (size_t)n, "%02x", m->build_id[i]);
        if (n > 0 && (size_t)n + 7 < sizeof dbg && access(strcat(dbg, ".debug"), R_OK) == 0) {
            prof_module d = {0};
            uint8_t did[64];
            size_t did_len;
            if (elf_read(dbg, &d, did, &did_len) == 0 && d.n_syms > m->n_syms) {
                free(m->syms);
                free(m->names);
                m->syms = d.syms;
                m->names = d.names;
                m->n_syms = d.n_syms;
            } else {
                free(d.syms);
                free(d.names);
            }
        }
    }
    /* Without this table (out of memory) frames keep their mangled names. */
    if (m->n_syms)
        m->shown = calloc(m->n_syms, sizeof *m->shown);
    return 0;
}

/* --------------------------------------------------------------- table */

static void live_rebuild(void)
{
    uint32_t k = 0;
    for (uint32_t id = 1; id < reg.n; id++) {
        if (!reg.mods[id]->live)
            continue;
        uint32_t j = k++;
        while (j > 0 && reg.mods[reg.live[j - 1]]->start > reg.mods[id]->start) {
            reg.live[j] = reg.live[j - 1];
            j--;
        }
        reg.live[j] = id;
    }
    reg.n_live = k;
}

/* Frees the demangled names of m (those that are not m's own strings). */
static void shown_free(prof_module *m)
{
    if (!m->shown)
        return;
    for (uint32_t i = 0; i < m->n_syms; i++) {
        char *s = m->shown[i];
        if (s && s != m->names + m->syms[i].name)
            free(s);
    }
    free(m->shown);
    m->shown = NULL;
}

static void module_free(prof_module *m)
{
    if (!m)
        return;
    free(m->path);
    free(m->label);
    free(m->unknown);
    shown_free(m);
    free(m->syms);
    free(m->names);
    free(m);
}

static char *label_from_path(const char *path, int strip_so)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (strip_so && n > 3 && strcmp(b + n - 3, ".so") == 0)
        n -= 3;
    return strndup(b, n);
}

/* Adds m (lock held); retires live modules its range overlaps. */
static int table_add_locked(prof_module *m, uint32_t *id)
{
    if (reg.n >= MAX_MODULES)
        return OBS_ENOMEM;
    if (reg.n + 1 >= reg.cap) {
        uint32_t cap = reg.cap ? reg.cap * 2 : 32;
        prof_module **nm = realloc(reg.mods, cap * sizeof *nm);
        if (!nm)
            return OBS_ENOMEM;
        reg.mods = nm;
        uint32_t *nl = realloc(reg.live, cap * sizeof *nl);
        if (!nl)
            return OBS_ENOMEM;
        reg.live = nl;
        reg.cap = cap;
    }
    if (reg.n == 0)
        reg.mods[reg.n++] = NULL;
    for (uint32_t i = 1; i < reg.n; i++) {
        prof_module *o = reg.mods[i];
        if (o->live && o->start < m->end && m->start < o->end)
            o->live = 0;
    }
    m->live = 1;
    reg.mods[reg.n] = m;
    *id = reg.n++;
    live_rebuild();
    return 0;
}

static prof_module *module_new(const char *path, const char *label, int prefix)
{
    prof_module *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->path = strdup(path);
    m->label = label ? strdup(label) : label_from_path(path, prefix);
    m->prefix = prefix;
    if (m->label) {
        size_t n = strlen(m->label) + 3;
        m->unknown = malloc(n);
        if (m->unknown)
            snprintf(m->unknown, n, "[%s]", m->label);
    }
    if (!m->path || !m->label || !m->unknown) {
        module_free(m);
        return NULL;
    }
    return m;
}

static int scan_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    uint8_t bid[64];
    size_t bid_len = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD) {
            uintptr_t a = info->dlpi_addr + ph->p_vaddr;
            if (a < lo)
                lo = a;
            if (a + ph->p_memsz > hi)
                hi = a + ph->p_memsz;
        } else if (ph->p_type == PT_NOTE && !bid_len) {
            bid_len = note_build_id((const uint8_t *)(info->dlpi_addr + ph->p_vaddr), ph->p_memsz,
                                    bid, sizeof bid);
        }
    }
    if (lo >= hi)
        return 0;
    for (uint32_t i = 0; i < reg.n_live; i++) {
        prof_module *o = reg.mods[reg.live[i]];
        if (o->start == lo && o->bias == info->dlpi_addr)
            return 0; /* known */
    }
    char exe[PATH_MAX];
    const char *path = info->dlpi_name;
    int is_exe = !path || !*path;
    if (is_exe) {
        if (lo <= (uintptr_t)getauxval(AT_SYSINFO_EHDR) && (uintptr_t)getauxval(AT_SYSINFO_EHDR) < hi)
            path = "[vdso]";
        else {
            ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
            if (n <= 0)
                return 0;
            exe[n] = 0;
            path = exe;
        }
    }
    prof_module *m = module_new(path, NULL, 0);
    if (!m)
        return 0;
    m->start = lo;
    m->end = hi;
    m->bias = info->dlpi_addr;
    memcpy(m->build_id, bid, bid_len);
    m->build_id_len = bid_len;
    if (path[0] == '/')
        (void)module_load_symbols(m, NULL, 0);
    uint32_t id;
    if (table_add_locked(m, &id) != 0) {
        module_free(m);
        return 0;
    }
    if (info->dlpi_addr == (uintptr_t)getauxval(AT_BASE) && getauxval(AT_BASE)) {
        reg.ldso_lo = lo;
        reg.ldso_hi = hi;
    }
    return 0;
}

int prof_modules_init(prof_modules_change_fn before_change)
{
    pthread_mutex_lock(&reg.lock);
    dl_iterate_phdr(scan_cb, NULL);
    reg.last_scan_ns = prof_monotonic_ns();
    reg.open = reg.n != 0;
    reg.before_change = reg.open ? before_change : NULL;
    int rc = reg.open ? 0 : OBS_ENOMEM;
    pthread_mutex_unlock(&reg.lock);
    return rc;
}

void prof_modules_fini(void)
{
    pthread_mutex_lock(&reg.lock);
    for (uint32_t i = 1; i < reg.n; i++)
        module_free(reg.mods[i]);
    free(reg.mods);
    free(reg.live);
    reg.mods = NULL;
    reg.live = NULL;
    reg.n = reg.n_live = reg.cap = 0;
    reg.ldso_lo = reg.ldso_hi = 0;
    reg.open = 0;
    reg.before_change = NULL;
    pthread_mutex_unlock(&reg.lock);
}

void prof_modules_loader_range(uintptr_t *lo, uintptr_t *hi)
{
    pthread_mutex_lock(&reg.lock);
    *lo = reg.ldso_lo;
    *hi = reg.ldso_hi;
    pthread_mutex_unlock(&reg.lock);
}

uint64_t prof_modules_count(void)
{
    pthread_mutex_lock(&reg.lock);
    uint64_t n = reg.n ? reg.n - 1 : 0;
    pthread_mutex_unlock(&reg.lock);
    return n;
}

static uint32_t find_live_locked(uintptr_t addr)
{
    uint32_t lo = 0, hi = reg.n_live;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (reg.mods[reg.live[mid]]->start <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return 0;
    prof_module *m = reg.mods[reg.live[lo - 1]];
    return addr < m->end ? reg.live[lo - 1] : 0;
}

uint64_t prof_modules_locate(uintptr_t addr)
{
    pthread_mutex_lock(&reg.lock);
    uint32_t id = find_live_locked(addr);
    if (!id && prof_monotonic_ns() - reg.last_scan_ns > 1000000000ULL) {
        /* Something was loaded behind our back (a library a plugin opened):
         * look again, at most once a second. */
        dl_iterate_phdr(scan_cb, NULL);
        reg.last_scan_ns = prof_monotonic_ns();
        id = find_live_locked(addr);
    }
    uint64_t loc = id ? PROF_LOC(id, addr - reg.mods[id]->bias) : PROF_LOC(0, addr);
    pthread_mutex_unlock(&reg.lock);
    return loc;
}

/* The name frames show for symbol i of m: demangled on first use, then
 * kept. Two threads may demangle the same symbol at once; the first to
 * store wins and the other frees its copy, so no lock is needed. */
static const char *symbol_shown(prof_module *m, uint32_t i)
{
    const char *raw = m->names + m->syms[i].name;
    if (!m->shown)
        return raw;
    char *s = __atomic_load_n(&m->shown[i], __ATOMIC_ACQUIRE);
    if (s)
        return s;
    char *d = prof_demangle(raw);
    char *want = d ? d : (char *)raw;
    char *expected = NULL;
    if (__atomic_compare_exchange_n(&m->shown[i], &expected, want, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
        return want;
    free(d);
    return expected;
}

void prof_modules_resolve(uint64_t loc, const char **module, int *prefix, const char **func,
                          const char **symbol)
{
    uint32_t id = PROF_LOC_MOD(loc);
    pthread_mutex_lock(&reg.lock);
    if (id == 0 || id >= reg.n) {
        *module = "[unknown]";
        *prefix = 0;
        *func = *symbol = "[unknown]";
        pthread_mutex_unlock(&reg.lock);
        return;
    }
    prof_module *m = reg.mods[id];
    pthread_mutex_unlock(&reg.lock);
    /* m is immutable from here on (only `live` and the label change, the
     * label only before any sample of it is resolved in practice). */
    uint64_t va = PROF_LOC_OFF(loc);
    *module = m->label;
    *prefix = m->prefix;
    *func = *symbol = m->unknown;
    uint32_t lo = 0, hi = m->n_syms;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (m->syms[mid].addr <= va)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return;
    const prof_sym *s = &m->syms[lo - 1];
    /* A sized symbol must cover the address; a sizeless one (hand-written
     * assembly) extends to the next symbol. */
    if (s->size == 0 || va < s->addr + s->size) {
        *symbol = m->names + s->name;
        *func = symbol_shown(m, lo - 1);
    }
}

/* Whether the registry is open, and its before-change hook (NULL if none). */
static int registry_open(prof_modules_change_fn *before_change)
{
    pthread_mutex_lock(&reg.lock);
    int open = reg.open;
    *before_change = reg.before_change;
    pthread_mutex_unlock(&reg.lock);
    return open;
}

int obs_prof_module_add(const obs_prof_module_info *mi, uint32_t *id, char *err, size_t errlen)
{
    if (!mi || !mi->path || mi->start >= mi->end || mi->build_id_len > 64) {
        prof_err(err, errlen, "profiler: module: path and a non-empty range are required");
        return OBS_EINVAL;
    }
    prof_modules_change_fn before_change;
    if (!registry_open(&before_change)) {
        prof_err(err, errlen, "profiler: not initialised");
        return OBS_ESTATE;
    }
    prof_module *m = module_new(mi->path, mi->name, 1);
    if (!m)
        return OBS_ENOMEM;
    m->start = mi->start;
    m->end = mi->end;
    m->bias = mi->load_bias;
    if (mi->build_id_len)
        memcpy(m->build_id, mi->build_id, mi->build_id_len);
    m->build_id_len = mi->build_id_len;
    int rc = module_load_symbols(m, err, errlen);
    if (rc != 0) {
        module_free(m);
        return rc;
    }
    /* Samples already taken in an object that the scan found at this
     * range are attributed to that entry; later ones to this one. */
    if (before_change)
        before_change();
    uint32_t nid = 0;
    pthread_mutex_lock(&reg.lock);
    /* The profiler may have shut down while the symbols were read. */
    rc = reg.open ? table_add_locked(m, &nid) : OBS_ESTATE;
    pthread_mutex_unlock(&reg.lock);
    if (rc != 0) {
        module_free(m);
        if (rc == OBS_ESTATE)
            prof_err(err, errlen, "profiler: not initialised");
        else
            prof_err(err, errlen, "profiler: module '%s': registry full", mi->path);
        return rc;
    }
    if (id)
        *id = nid;
    return 0;
}

int obs_prof_module_retire(uint32_t id)
{
    prof_modules_change_fn before_change;
    if (!registry_open(&before_change))
        return OBS_ESTATE;
    if (before_change)
        before_change();
    pthread_mutex_lock(&reg.lock);
    int rc = reg.open ? OBS_ENOENT : OBS_ESTATE;
    if (reg.open && id > 0 && id < reg.n) {
        reg.mods[id]->live = 0;
        live_rebuild();
        rc = 0;
    }
    pthread_mutex_unlock(&reg.lock);
    return rc;
}
