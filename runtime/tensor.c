/* tensor.c — merging values: elementwise addition (residual connections),
 * gradient accumulation, and concatenation along channels.
 *
 * These kernels do no arithmetic beyond one add: they exist so that the
 * generated code reads as the model does. The backward of an addition is an
 * accumulation into each operand's gradient; concatenation is done with one
 * call per input, each copying its channels into place, and its backward
 * takes the same slice back out.
 *
 * Dimension letters: N batch; Cx the channels of one input, Cy those of the
 * concatenated output; inner the elements per channel (H*W, or 1).
 */
#include <string.h>

#include "nnrt.h"

#include "kernel.h"

/* shared between threads from this many elements (as activation.c) */
#define EW_GRAIN 32768

typedef struct add_ctx {
    float *y;
    const float *a, *b;
} add_ctx;

HOT static void add_range(void *arg, size_t lo, size_t hi)
{
    const add_ctx *c = arg;
    for (size_t i = lo; i < hi; i++)
        c->y[i] = c->a[i] + c->b[i];
}

/* y[n] = a[n] + b[n]; y may equal a or b */
void nnrt_add_forward(float *y, const float *a, const float *b, size_t n)
{
    nnrt_parallel_for(add_range, &(add_ctx){y, a, b}, n, EW_GRAIN);
}

/* dx[n] += dy[n]; dx may be NULL. The backward of add, once per operand. */
void nnrt_accumulate(float *dx, const float *dy, size_t n)
{
    if (dx)
        nnrt_parallel_for(add_range, &(add_ctx){dx, dx, dy}, n, EW_GRAIN);
}

/* y[N, Cy, inner][:, c0 .. c0+Cx-1, :] = x[N, Cx, inner]; c0 + Cx <= Cy */
void nnrt_concat_forward(float *y, const float *x, int N, int Cx, int Cy, int c0, int inner)
{
    size_t len = (size_t)Cx * inner;     /* one sample of x is contiguous in y */
    for (int n = 0; n < N; n++)
        memcpy(y + ((size_t)n * Cy + c0) * inner, x + (size_t)n * len, len * sizeof *y);
}

/* dx[N, Cx, inner] += dy[N, Cy, inner][:, c0 .. c0+Cx-1, :]; dx may be NULL */
void nnrt_concat_backward(float *dx, const float *dy, int N, int Cx, int Cy, int c0, int inner)
{
    if (!dx)
        return;
    size_t len = (size_t)Cx * inner;
    for (int n = 0; n < N; n++) {
        const float *src = dy + ((size_t)n * Cy + c0) * inner;
        float *dst = dx + (size_t)n * len;
        for (size_t i = 0; i < len; i++)
            dst[i] += src[i];
    }
}
