/* conv2d_ref.c — 2-D convolution, forward and backward, as plain loops:
 * the reference that the fast paths (conv2d_forward.c, conv2d_backward.c,
 * conv2d_pooled.c) are tested against (tests/runtime/test_reference.c),
 * and what nnrt_conv2d_forward and nnrt_conv2d_backward (conv2d.c) run for
 * the shapes no fast path takes (sizes whose products pass an int).
 *
 * Output pixel (p, q) of out channel k reads input pixel
 * (p*stride_h - pad_h + r*dil_h, q*stride_w - pad_w + s*dil_w) under kernel
 * tap (r, s), for each in channel of k's group. For each tap, valid_range
 * gives the output rows and columns whose input is inside the image, so
 * the loops need no test per pixel.
 *
 * Dimension letters (nnrt.h): N batch, C in channels, H x W input, K out
 * channels, R x S kernel, P x Q output, G groups; Cg = C/G and Kg = K/G.
 */
#include "nnrt.h"

#include "kernel.h"

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

/* y[N,K,P,Q] = b[K] + x[N,C,H,W] (*) w[K,C/G,R,S]   (b may be NULL): for each
 * sample n and out channel k, the bias, then for each in channel c of k's
 * group and tap (r, s), w[k][c][r][s] times the input pixels the tap reads,
 * added over the output rows and columns whose input is inside the image */
void conv2d_forward_ref(float *y, const float *x, const float *w, const float *b,
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

/* dx[N,C,H,W] += dy (*)^T w,  dw[K,C/G,R,S] += dy (*) x,  db[K] += the sum of
 * dy[N,K,P,Q] over N, P, Q; any of dx, dw, db may be NULL. The loops of the
 * forward: where the forward added w * x into y, this adds w * dy into dx
 * and x * dy into dw (summed over the tap's pixels, then added) */
void conv2d_backward_ref(float *dx, float *dw, float *db, const float *dy,
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
