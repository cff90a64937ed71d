/* arena.c — memory for the compiler.
 *
 * nnc runs for milliseconds and then exits, so it never frees objects one by
 * one: every allocation is a block in one linked list, released together by
 * arena_free_all() at exit (which keeps LeakSanitizer quiet). Out of memory
 * is reported and ends the run; no caller checks for NULL.
 */
#include "nnc.h"

#include <stdlib.h>
#include <string.h>

typedef struct Block { struct Block *next; max_align_t data[]; } Block;
static Block *blocks;

static void out_of_memory(size_t size)
{
    fprintf(stderr, "nnc: error: out of memory (allocating %zu bytes)\n", size);
    exit(1);
}

void *xalloc(size_t size)
{
    if (size > SIZE_MAX - sizeof(Block))
        out_of_memory(size);
    Block *b = calloc(1, sizeof(Block) + size);
    if (!b)
        out_of_memory(size);
    b->next = blocks;
    blocks = b;
    return b->data;
}

void arena_free_all(void)
{
    while (blocks) {
        Block *next = blocks->next;
        free(blocks);
        blocks = next;
    }
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xalloc(n + 1);
    memcpy(p, s, n);
    return p;
}

char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

char *xprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = xalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* Arrays grow by doubling into fresh arena blocks; the old block stays in the
 * arena until exit, which costs at most as much again. */
void vec_reserve(void **items, int *cap, int n, size_t elem)
{
    if (n <= *cap)
        return;
    int ncap = *cap ? *cap : 4;
    while (ncap < n)
        ncap *= 2;
    void *p = xalloc((size_t)ncap * elem);
    if (*items)
        memcpy(p, *items, (size_t)*cap * elem);
    *items = p;
    *cap = ncap;
}

/* ---- NameMap: names to ints, for lookups that must not be linear ---- */

/* FNV-1a */
static size_t name_hash(const char *s)
{
    size_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* the slot of key, or the empty slot where it would go (cap is a power of two) */
static int name_slot(const char **keys, int cap, const char *key)
{
    size_t i = name_hash(key) & (size_t)(cap - 1);
    while (keys[i] && strcmp(keys[i], key) != 0)
        i = (i + 1) & (size_t)(cap - 1);
    return (int)i;
}

int namemap_get(const NameMap *m, const char *key)
{
    if (!m->cap)
        return -1;
    int i = name_slot(m->keys, m->cap, key);
    return m->keys[i] ? m->vals[i] : -1;
}

void namemap_put(NameMap *m, const char *key, int val)
{
    if (2 * (m->n + 1) > m->cap) {     /* at most half full: rehash into twice the room */
        NameMap bigger = {.cap = m->cap ? 2 * m->cap : 16};
        bigger.keys = xalloc(sizeof(char *) * (size_t)bigger.cap);
        bigger.vals = xalloc(sizeof(int) * (size_t)bigger.cap);
        for (int i = 0; i < m->cap; i++)
            if (m->keys[i]) {
                int j = name_slot(bigger.keys, bigger.cap, m->keys[i]);
                bigger.keys[j] = m->keys[i];
                bigger.vals[j] = m->vals[i];
            }
        bigger.n = m->n;
        *m = bigger;
    }
    int i = name_slot(m->keys, m->cap, key);
    if (!m->keys[i]) {
        m->keys[i] = key;
        m->n++;
    }
    m->vals[i] = val;
}
