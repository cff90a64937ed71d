/* pool_ref.c — max pooling as plain loops, any window: the reference that
 * the 2x2 fast path (pool_2x2.c) is tested against, and what pool.c runs
 * for every other window. Each window is scanned row by row (window_argmax):
 * ties go to the first maximum, a NaN counts as the maximum (of several
 * NaNs, the last), as PyTorch's CPU kernel's scan (v > max || isnan(v))
 * does; the backward adds each window's gradient to that pixel.
 *
 * Dimension letters as in pool.c.
 */
#include <math.h>
#include <string.h>

#include "nnrt.h"

#include "kernel.h"

/* Index into the H x W plane xc of the maximum of window (p, q), its value in
 * *max. A window wholly in the padding (which PyTorch forbids: pad <= k/2)
 * gives -1 and -inf. */
static long window_argmax(float *max, const float *xc, int p, int q,
                          const nnrt_pool2d_dims *d)
{
    int h0 = p * d->stride_h - d->pad_h, w0 = q * d->stride_w - d->pad_w;
    int h1 = h0 + d->kh, w1 = w0 + d->kw;
    if (h0 < 0) h0 = 0;
    if (w0 < 0) w0 = 0;
    if (h1 > d->H) h1 = d->H;
    if (w1 > d->W) w1 = d->W;

    long best = h0 < h1 && w0 < w1 ? (long)h0 * d->W + w0 : -1;
    float m = -INFINITY;
    for (int h = h0; h < h1; h++)
        for (int w = w0; w < w1; w++) {
            float v = xc[(long)h * d->W + w];
            if (v > m || isnan(v)) {
                m = v;
                best = (long)h * d->W + w;
            }
        }
    *max = m;
    return best;
}

/* Any window's code: its maximum's position in the window (row-major, from
 * the window's corner in the padded input), or POOL_NONE (no pixel, or a ReLU
 * folded in and the maximum not > 0). Windows have at most NNRT_ARGMAX_MAX
 * positions. */
static unsigned char window_code(long i, float m, int p, int q, const nnrt_pool2d_dims *d)
{
    if (i < 0 || (d->relu && !(m > 0.0f)))
        return POOL_NONE;
    long h = i / d->W - ((long)p * d->stride_h - d->pad_h), w = i % d->W - ((long)q * d->stride_w - d->pad_w);
    return (unsigned char)(h * d->kw + w);
}

/* the planes [lo, hi) of N*C, any window (and its codes, when c->arg) */
void maxpool_fwd_ref(void *arg, size_t lo, size_t hi)
{
    const pool_ctx *c = arg;
    const nnrt_pool2d_dims *d = c->d;
    size_t HW = (size_t)d->H * d->W, PQ = (size_t)d->P * d->Q;
    for (size_t nc = lo; nc < hi; nc++)
        for (int p = 0; p < d->P; p++)
            for (int q = 0; q < d->Q; q++) {
                size_t at = nc * PQ + (size_t)p * d->Q + q;
                long i = window_argmax(&c->out[at], c->a + nc * HW, p, q, d);
                if (c->arg)
                    c->arg[at] = window_code(i, c->out[at], p, q, d);
            }
}

/* the planes [lo, hi) of N*C, any window: from the codes (c->arg) or from x */
void maxpool_bwd_ref(void *arg, size_t lo, size_t hi)
{
    const pool_ctx *c = arg;
    const nnrt_pool2d_dims *d = c->d;
    size_t HW = (size_t)d->H * d->W, PQ = (size_t)d->P * d->Q;
    if (d->assign)
        memset(c->out + lo * HW, 0, sizeof(float) * (hi - lo) * HW);
    for (size_t nc = lo; nc < hi; nc++)
        for (int p = 0; p < d->P; p++)
            for (int q = 0; q < d->Q; q++) {
                size_t at = nc * PQ + (size_t)p * d->Q + q;
                long i;         /* the pixel of the plane that gets the gradient */
                if (c->arg) {
                    unsigned char code = c->arg[at];
                    if (code == POOL_NONE)
                        continue;
                    long h = (long)p * d->stride_h - d->pad_h + code / d->kw;
                    long w = (long)q * d->stride_w - d->pad_w + code % d->kw;
                    i = h * d->W + w;
                } else {        /* any window size (a code would not hold more than 254) */
                    float m;
                    i = window_argmax(&m, c->b + nc * HW, p, q, d);
                    if (i < 0 || (d->relu && !(m > 0.0f)))
                        continue;
                }
                c->out[nc * HW + (size_t)i] += c->a[at];
            }
}
