/*
 * alloc.c - the malloc interposer (see alloc.h).
 *
 * glibc exports its allocator under __libc_malloc and friends; defining
 * malloc, calloc, realloc, free and the aligned variants here makes every
 * caller in the process (hostd, plugins, the libraries they use, C++
 * operator new) come through these wrappers, which add one thread-local
 * increment each. Nothing here may allocate, lock or print: the wrappers run
 * inside any code, including the dynamic loader.
 */
#include "engine/alloc.h"

#include <errno.h>
#include <stddef.h>

__thread alloc_counters alloc_tls __attribute__((tls_model("initial-exec")));

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)

int alloc_interposer_active(void) { return 0; }

#else

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);
extern void *__libc_memalign(size_t alignment, size_t size);
extern size_t malloc_usable_size(void *p);

int alloc_interposer_active(void) { return 1; }

static inline void count_alloc(size_t size)
{
    alloc_tls.n_allocs++;
    alloc_tls.bytes += size;
}

/* The block's size as the allocator keeps it, for the live heap. */
static inline void *made(void *p)
{
    if (p)
        alloc_tls.usable_made += malloc_usable_size(p);
    return p;
}

void *malloc(size_t size)
{
    count_alloc(size);
    return made(__libc_malloc(size));
}

void *calloc(size_t n, size_t size)
{
    count_alloc(n * size);
    return made(__libc_calloc(n, size));
}

void *realloc(void *p, size_t size)
{
    /* A realloc is counted as a new allocation and a free of the old block. */
    size_t old = p ? malloc_usable_size(p) : 0;
    if (p)
        alloc_tls.n_frees++;
    count_alloc(size);
    void *q = __libc_realloc(p, size);
    if (q || size == 0) /* a failed realloc keeps the old block */
        alloc_tls.usable_freed += old;
    return made(q);
}

void free(void *p)
{
    if (p) {
        alloc_tls.n_frees++;
        alloc_tls.usable_freed += malloc_usable_size(p);
    }
    __libc_free(p);
}

void *memalign(size_t alignment, size_t size)
{
    count_alloc(size);
    return made(__libc_memalign(alignment, size));
}

void *aligned_alloc(size_t alignment, size_t size)
{
    count_alloc(size);
    return made(__libc_memalign(alignment, size));
}

int posix_memalign(void **out, size_t alignment, size_t size)
{
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0)
        return EINVAL;
    count_alloc(size);
    void *p = made(__libc_memalign(alignment, size));
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

#endif
