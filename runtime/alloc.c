/* alloc.c — the kernel library's memory: the one allocator a generated
 * model and the kernels' own scratch buffers (parallel.c) use, the size of
 * a tensor view, and a check of a block's values.
 *
 * It lives with the kernels, not with the trainer's command line, so that a
 * program embedding a model links libnnrt.a and nothing else.
 */
#include "nnrt.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Zeroed, 64-byte aligned (a cache line; good for vector loads) memory for
 * nfloats floats, freed with free(). Never returns NULL: a model cannot go
 * on without its memory, so it says what it wanted and exits. */
void *nnrt_alloc(size_t nfloats, const char *what)
{
    if (nfloats > (SIZE_MAX - 63) / sizeof(float)) {
        fprintf(stderr, "nnrt: error: out of memory allocating %s (%zu floats, more than "
                "the address space)\n", what, nfloats);
        exit(1);
    }
    size_t bytes = (nfloats * sizeof(float) + 63) / 64 * 64;
    if (bytes == 0)
        bytes = 64;
    void *p = aligned_alloc(64, bytes);
    if (!p) {
        fprintf(stderr, "nnrt: error: out of memory allocating %s (%zu bytes)\n", what,
                nfloats * sizeof(float));
        exit(1);
    }
    memset(p, 0, bytes);
    return p;
}

/* prod(shape): the floats of the view (1 for a scalar, ndim 0) */
size_t nnrt_tensor_numel(const nnrt_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n;
}

/* max |p[i]|, or NaN if any p[i] is NaN (so a comparison through it fails
 * instead of passing); 0 for n == 0 */
float nnrt_max_abs(const float *p, size_t n)
{
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(p[i]);
        if (isnan(a))
            return a;
        if (a > m)
            m = a;
    }
    return m;
}
