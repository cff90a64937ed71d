/* pool.c — 2-D max pooling, forward and backward (torch.nn.MaxPool2d).
 *
 * The window of output pixel (p, q) covers input rows p*stride_h - pad_h ...
 * + kh - 1 and columns q*stride_w - pad_w ... + kw - 1. Padding is implicit
 * -inf, so only the part of the window inside the image is scanned.
 *
 * Forward keeps no indices: backward finds each window's maximum again from
 * x with the same function (window_argmax), so the two can never disagree.
 * Ties go to the FIRST maximum in row-major window order and a NaN counts as
 * the maximum, both as PyTorch's CPU kernel does.
 *
 * Dimension letters (fixed in nnrt.h): N batch, C channels, H x W input,
 * P x Q output, kh x kw window.
 */
#include <math.h>

#include "nnrt.h"

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

/* y[N,C,P,Q] = max over each window of x[N,C,H,W] */
void nnrt_maxpool2d_forward(float *y, const float *x, const nnrt_pool2d_dims *d)
{
    size_t HW = (size_t)d->H * d->W, PQ = (size_t)d->P * d->Q;
    for (size_t nc = 0; nc < (size_t)d->N * d->C; nc++) {
        const float *xc = x + nc * HW;
        float *yc = y + nc * PQ;
        for (int p = 0; p < d->P; p++)
            for (int q = 0; q < d->Q; q++)
                window_argmax(&yc[(size_t)p * d->Q + q], xc, p, q, d);
    }
}

/* dx[N,C,H,W] += dy[N,C,P,Q] at the first maximum of each window of
 * x[N,C,H,W]; dx may be NULL (then nothing to do) */
void nnrt_maxpool2d_backward(float *dx, const float *dy, const float *x,
                             const nnrt_pool2d_dims *d)
{
    if (!dx)
        return;
    size_t HW = (size_t)d->H * d->W, PQ = (size_t)d->P * d->Q;
    for (size_t nc = 0; nc < (size_t)d->N * d->C; nc++) {
        const float *xc = x + nc * HW;
        const float *dyc = dy + nc * PQ;
        float *dxc = dx + nc * HW;
        for (int p = 0; p < d->P; p++)
            for (int q = 0; q < d->Q; q++) {
                float m;
                long i = window_argmax(&m, xc, p, q, d);
                if (i >= 0)
                    dxc[i] += dyc[(size_t)p * d->Q + q];
            }
    }
}
