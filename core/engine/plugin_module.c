/*
 * plugin_module.c - the process-wide module table: every object the loader
 * opened, with what is needed to resolve an address into it.
 *
 * Each opened object gets an entry: canonical path, GNU build-id and mapped
 * address range, read back from the dynamic loader with dlinfo +
 * dl_iterate_phdr. The profiler maps sampled addresses to modules with it,
 * and every run records build-ids for reproducibility. Entries are
 * allocated one by one and never move or disappear, because handles are
 * never dlclose'd: old versions stay mapped after a hot swap so that their
 * samples still resolve, and a plugin's threads or thread-local destructors
 * may still point into its code.
 *
 * Locking: table_lock protects the pointer array only, so readers (the
 * profiler's symbol resolution) never wait behind a dlopen; the one writer,
 * plugin_open, holds plugin_open_lock (plugin.c) around lookup and insert.
 */
#include "engine/plugin.h"
#include "engine/plugin_internal.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static module_entry **table;
static size_t table_len, table_cap;

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

/* Looks an entry up by canonical path. Caller holds plugin_open_lock (the only
 * writer), so the entry cannot be added concurrently. */
module_entry *plugin_table_find_path(const char *path)
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
int plugin_table_add(module_entry *e)
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
    pthread_mutex_lock(&plugin_open_lock);
    pthread_mutex_lock(&table_lock);
    for (size_t i = 0; i < table_len; i++) {
        free(table[i]->pub.path);
        free(table[i]);
    }
    free(table);
    table = NULL;
    table_len = table_cap = 0;
    pthread_mutex_unlock(&table_lock);
    pthread_mutex_unlock(&plugin_open_lock);
}

/* ------------------------------------------- build-id and address range */

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
int plugin_module_read_layout(void *handle, obs_module *m)
{
    struct link_map *lm = NULL;

    if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) != 0 || !lm)
        return OBS_EPLUGIN;
    phdr_query q = {.lm = lm, .m = m, .found = false};
    dl_iterate_phdr(phdr_callback, &q);
    return q.found ? 0 : OBS_EPLUGIN;
}
