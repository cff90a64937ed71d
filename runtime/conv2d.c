/* conv2d.c — 2-D convolution, forward and backward (torch.nn.Conv2d).
 *
 * The generated trainer calls these for every Conv2d layer. Convolution here
 * is cross-correlation, as in PyTorch: output pixel (p, q) of out channel k
 * reads input pixel (p*stride_h - pad_h + r*dil_h, q*stride_w - pad_w + s*dil_w)
 * for each kernel tap (r, s), over the C/groups input channels of k's group.
 * Taps that land in the zero padding contribute nothing, so instead of testing
 * each pixel we compute once, per tap, the range of output rows and columns
 * whose input is inside the image (valid_range below) and loop over that.
 *
 * Every loop nest ends in a loop over q, the output width, which is contiguous
 * in y and dy and strided by stride_w in x and dx. These are plain loops, meant
 * to be correct and readable first; there is no im2col and no allocation.
 *
 * Dimension letters (fixed in nnrt.h): N batch, C in channels, H x W input,
 * K out channels, R x S kernel, P x Q output; G groups, Cg = C/G and Kg = K/G
 * channels per group. Out channel k belongs to group k / Kg and reads input
 * channels (k / Kg) * Cg ... + Cg - 1.
 */
#include "nnrt.h"

/* The outputs o in [*lo, *hi) whose input index o*stride + off lies in
 * [0, size), clipped to [0, n). Empty ranges come back with *hi <= *lo. */
static void valid_range(int *lo, int *hi, int off, int stride, int size, int n)
{
    *lo = off >= 0 ? 0 : (-off + stride - 1) / stride;  /* ceil(-off / stride) */
    if (size - 1 - off < 0) {
        *hi = 0;
        return;
    }
    *hi = (size - 1 - off) / stride + 1;                /* floor(...) + 1 */
    if (*hi > n)
        *hi = n;
}

/* y[N,K,P,Q] = x[N,C,H,W] (*) w[K,C/G,R,S] + b[K]   (b may be NULL) */
void nnrt_conv2d_forward(float *y, const float *x, const float *w, const float *b,
                         const nnrt_conv2d_dims *d)
{
    int Cg = d->C / d->groups, Kg = d->K / d->groups;
    int HW = d->H * d->W, PQ = d->P * d->Q;

    for (int n = 0; n < d->N; n++)
        for (int k = 0; k < d->K; k++) {
            float *yk = y + ((size_t)n * d->K + k) * PQ;
            float bias = b ? b[k] : 0.0f;
            for (int i = 0; i < PQ; i++)
                yk[i] = bias;
            for (int c = 0; c < Cg; c++) {
                const float *xc = x + ((size_t)n * d->C + (k / Kg) * Cg + c) * HW;
                const float *wc = w + ((size_t)k * Cg + c) * d->R * d->S;
                for (int r = 0; r < d->R; r++) {
                    int ih0 = r * d->dil_h - d->pad_h, p0, p1;
                    valid_range(&p0, &p1, ih0, d->stride_h, d->H, d->P);
                    for (int s = 0; s < d->S; s++) {
                        int iw0 = s * d->dil_w - d->pad_w, q0, q1;
                        valid_range(&q0, &q1, iw0, d->stride_w, d->W, d->Q);
                        float wv = wc[r * d->S + s];
                        for (int p = p0; p < p1; p++) {
                            const float *xrow = xc + (size_t)(p * d->stride_h + ih0) * d->W;
                            float *yrow = yk + (size_t)p * d->Q;
                            for (int q = q0; q < q1; q++)
                                yrow[q] += wv * xrow[q * d->stride_w + iw0];
                        }
                    }
                }
            }
        }
}

/* dx[N,C,H,W] += dy (*)^T w,   dw[K,C/G,R,S] += dy (*) x,   db[K] += sum of dy
 * over N, P, Q; given dy[N,K,P,Q], x[N,C,H,W], w[K,C/G,R,S]. Any of dx, dw,
 * db may be NULL. */
void nnrt_conv2d_backward(float *dx, float *dw, float *db, const float *dy,
                          const float *x, const float *w, const nnrt_conv2d_dims *d)
{
    int Cg = d->C / d->groups, Kg = d->K / d->groups;
    int HW = d->H * d->W, PQ = d->P * d->Q;

    for (int n = 0; n < d->N; n++)
        for (int k = 0; k < d->K; k++) {
            const float *dyk = dy + ((size_t)n * d->K + k) * PQ;
            if (db) {
                float sum = 0.0f;
                for (int i = 0; i < PQ; i++)
                    sum += dyk[i];
                db[k] += sum;
            }
            if (!dx && !dw)
                continue;
            for (int c = 0; c < Cg; c++) {
                size_t xoff = ((size_t)n * d->C + (k / Kg) * Cg + c) * HW;
                size_t woff = ((size_t)k * Cg + c) * d->R * d->S;
                for (int r = 0; r < d->R; r++) {
                    int ih0 = r * d->dil_h - d->pad_h, p0, p1;
                    valid_range(&p0, &p1, ih0, d->stride_h, d->H, d->P);
                    for (int s = 0; s < d->S; s++) {
                        int iw0 = s * d->dil_w - d->pad_w, q0, q1;
                        valid_range(&q0, &q1, iw0, d->stride_w, d->W, d->Q);
                        float wv = w[woff + r * d->S + s];
                        float dwsum = 0.0f;
                        for (int p = p0; p < p1; p++) {
                            size_t row = xoff + (size_t)(p * d->stride_h + ih0) * d->W;
                            const float *dyrow = dyk + (size_t)p * d->Q;
                            for (int q = q0; q < q1; q++) {
                                size_t i = row + (size_t)(q * d->stride_w + iw0);
                                if (dx)
                                    dx[i] += wv * dyrow[q];
                                dwsum += dyrow[q] * x[i];
                            }
                        }
                        if (dw)
                            dw[woff + r * d->S + s] += dwsum;
                    }
                }
            }
        }
}
