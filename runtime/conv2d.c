/* conv2d.c — 2-D convolution, forward and backward (torch.nn.Conv2d): the
 * entry points, and the one place that chooses, for each call, between the
 * fast paths and the plain reference loops.
 *
 * The generated trainer calls these for every Conv2d layer. Convolution here
 * is cross-correlation, as in PyTorch: output pixel (p, q) of out channel k
 * reads input pixel (p*stride_h - pad_h + r*dil_h, q*stride_w - pad_w + s*dil_w)
 * for each kernel tap (r, s), over the C/groups input channels of k's group.
 *
 * Dimension letters (fixed in nnrt.h): N batch, C in channels, H x W input,
 * K out channels, R x S kernel, P x Q output; G groups, Cg = C/G and Kg = K/G
 * channels per group. Out channel k belongs to group k / Kg and reads input
 * channels (k / Kg) * Cg ... + Cg - 1. A tap t = (c, r, s) of the Cg*R*S
 * taps of an output channel is w[k][c][r][s], i.e. w[k * T + t].
 *
 * The files of the family:
 *   conv2d_ref.c       the plain loops: the reference, and the path of the
 *                      shapes the fast path does not take;
 *   conv2d_copy.c      the copies the fast path reads: make, for each kernel
 *                      column s, a copy of the zero-bordered input shifted
 *                      left by s*dil_w and cut to Q columns; then output
 *                      pixel j = p*Q + q under tap (c, r, s) reads copy s of
 *                      channel c at j + r*dil_h*Q, every tap is one
 *                      contiguous, shifted read of the P*Q output pixels, and
 *                      a convolution is a sum of shifted rows,
 *                      out[k][j] = sum_t w[k][t] * xs[off[t] + j];
 *   conv2d_forward.c   the forward's register tiles of those sums;
 *   conv2d_backward.c  d input, d weight and d bias by the same reads;
 *   conv2d_pooled.c    the backward of a convolution followed by a 2x2
 *                      max-pool, from the pool's choices (dy is 3/4 zeros);
 *   conv2d_gemm.c      the convolution as matrix products (gemm.c): im2col
 *                      read into packed panels, for every other shape;
 *   conv2d_depthwise.c groups = in = out channels: plane by plane.
 * The shifted-row path (conv_geometry: stride 1, any padding, dilation and
 * groups, outputs of at least CONV_VL pixels) is the faster one where it
 * applies (bench/results.md), except for depthwise convolutions
 * (conv_depthwise), which have their own; conv_gemm_path takes the rest (strides,
 * small outputs); the plain loops are left for sizes past an int. The fast
 * paths sum in another order than the plain loops, and with fused
 * multiply-adds, so the last bits differ from the reference's; each path
 * gives the same bits with any number of threads.
 */
#include "nnrt.h"

#include <string.h>

#include "kernel.h"

/* y[N,K,P,Q] = x[N,C,H,W] (*) w[K,C/G,R,S] + b[K]   (b may be NULL), then
 * max(y, 0) if d->relu */
void nnrt_conv2d_forward(float *y, const float *x, const float *w, const float *b,
                         const nnrt_conv2d_dims *d)
{
    conv_geom g;
    if (conv_depthwise(d)) {
        conv2d_forward_depthwise(y, x, w, b, d);
        return;
    }
    if (conv_gemm_path(d)) {
        conv2d_forward_gemm(y, x, w, b, d);   /* the ReLU in its last block */
        return;
    }
    if (conv_geometry(&g, d)) {
        conv2d_forward_fast(y, x, w, b, d, &g);     /* the ReLU in its tiles */
        return;
    }
    conv2d_forward_ref(y, x, w, b, d);     /* the ReLU after the loops */
    if (d->relu)
        nnrt_relu_forward(y, y, (size_t)d->N * d->K * d->P * d->Q);
}

/* dx[N,C,H,W] += dy (*)^T w,   dw[K,C/G,R,S] += dy (*) x,   db[K] += sum of dy
 * over N, P, Q; given dy[N,K,P,Q], x[N,C,H,W], w[K,C/G,R,S]. Any of dx, dw,
 * db may be NULL. */
void nnrt_conv2d_backward(float *dx, float *dw, float *db, const float *dy,
                          const float *x, const float *w, const nnrt_conv2d_dims *d)
{
    conv_geom g;
    if (!dx && !dw && !db)
        return;
    if (conv_depthwise(d)) {
        conv2d_backward_depthwise(dx, dw, db, dy, x, w, d);
        return;
    }
    if (conv_gemm_path(d)) {
        conv2d_backward_gemm(dx, dw, db, dy, x, w, d);
        return;
    }
    if (conv_geometry(&g, d)) {
        conv2d_backward_fast(dx, dw, db, dy, NULL, NULL, NULL, x, w, d, &g, 0);
        return;
    }
    if (dx && d->assign_dx)
        memset(dx, 0, sizeof(float) * (size_t)d->N * d->C * d->H * d->W);
    conv2d_backward_ref(dx, dw, db, dy, x, w, d);
}

void nnrt_conv2d_backward_pooled(float *dx, float *dw, float *db, const float *pdy, const unsigned char *arg,
                                 const nnrt_pool2d_dims *pd, const float *x, const float *w,
                                 const nnrt_conv2d_dims *d)
{
    conv_geom g;
    nnrt_pool2d_dims p = *pd;
    nnrt_conv2d_dims dd = *d;
    p.assign = 1;                       /* dy written whole */
    dd.pooled = 1;                      /* dy made in the copies */
    if (!dx && !dw && !db)
        return;
    if (conv_depthwise(&dd) || conv_gemm_path(&dd)) {     /* dy made whole first, in slot 2 */
        float *dy = nnrt_scratch(2, (size_t)d->N * d->K * d->P * d->Q);
        nnrt_maxpool2d_backward_argmax(dy, pdy, arg, &p);
        if (conv_depthwise(&dd))
            conv2d_backward_depthwise(dx, dw, db, dy, x, w, &dd);
        else
            conv2d_backward_gemm(dx, dw, db, dy, x, w, &dd);
        return;
    }
    if (conv_geometry(&g, &dd)) {
        /* d weight, then d input, from the pool's choices where it can
         * (conv2d_pooled.c; the d weight maybe left to a worker), else here */
        int sparse = dx && conv2d_sparse_dx_ok(&p, &dd);
        if ((dw || db) && conv2d_sparse_dw_ok(&p, &dd)) {
            conv2d_sparse_dw(dw, db, pdy, arg, &p, x, &dd, sparse);
            dw = db = NULL;
        }
        if ((dx && !sparse) || dw || db)
            conv2d_backward_fast(sparse ? NULL : dx, dw, db, NULL, pdy, arg, &p, x, w, &dd, &g, sparse);
        if (sparse)
            conv2d_sparse_dx(dx, pdy, arg, &p, w, &dd);
        return;
    }
    /* the plain loops (nnc fuses only convolutions on the fast path): dy in
     * scratch that no workspace plans */
    float *dy = nnrt_scratch(3, (size_t)d->N * d->K * d->P * d->Q);
    nnrt_maxpool2d_backward_argmax(dy, pdy, arg, &p);
    if (dx && d->assign_dx)
        memset(dx, 0, sizeof(float) * (size_t)d->N * d->C * d->H * d->W);
    conv2d_backward_ref(dx, dw, db, dy, x, w, d);
}
