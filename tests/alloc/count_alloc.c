/* count_alloc.c — counts a process's heap allocations (LD_PRELOAD shim).
 *
 * tests/no_alloc.sh preloads it into a trainer: malloc, calloc, realloc,
 * aligned_alloc and posix_memalign are counted on their way to the C
 * library's, and the count goes to stderr at exit. A training loop that
 * allocates nothing gives the same count for 10 steps as for 1000.
 * (calloc is left to the C library's own: dlsym itself may call it.)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static atomic_long count;

static void report(void)
{
    char line[64];
    int n = snprintf(line, sizeof line, "allocations: %ld\n", atomic_load(&count));
    if (n > 0 && write(2, line, (size_t)n) < 0)
        return;
}

__attribute__((constructor)) static void start(void)
{
    atexit(report);
}

typedef void *(*malloc_fn)(size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void *(*aligned_fn)(size_t, size_t);
typedef int (*memalign_fn)(void **, size_t, size_t);

void *malloc(size_t size)
{
    static malloc_fn next;
    if (!next)
        next = (malloc_fn)dlsym(RTLD_NEXT, "malloc");
    atomic_fetch_add(&count, 1);
    return next(size);
}

void *realloc(void *p, size_t size)
{
    static realloc_fn next;
    if (!next)
        next = (realloc_fn)dlsym(RTLD_NEXT, "realloc");
    atomic_fetch_add(&count, 1);
    return next(p, size);
}

void *aligned_alloc(size_t align, size_t size)
{
    static aligned_fn next;
    if (!next)
        next = (aligned_fn)dlsym(RTLD_NEXT, "aligned_alloc");
    atomic_fetch_add(&count, 1);
    return next(align, size);
}

int posix_memalign(void **p, size_t align, size_t size)
{
    static memalign_fn next;
    if (!next)
        next = (memalign_fn)dlsym(RTLD_NEXT, "posix_memalign");
    atomic_fetch_add(&count, 1);
    return next(p, align, size);
}
