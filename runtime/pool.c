/* pool.c — 2-D pooling, forward and backward: max pooling
 * (torch.nn.MaxPool2d), average pooling (torch.nn.AvgPool2d) and adaptive
 * average pooling (torch.nn.AdaptiveAvgPool2d).
 *
 * The window of output pixel (p, q) covers input rows p*stride_h - pad_h ...
 * + kh - 1 and columns q*stride_w - pad_w ... + kw - 1. Only the part of the
 * window inside the image is scanned: padding is -inf for max pooling and
 * zeros for average pooling. The compiler computes P and Q, in floor or ceil
 * mode as PyTorch does; in ceil mode the last window may run past the padded
 * input, and is clipped like any other.
 *
 * The backward routes each window's gradient to its maximum: ties go to the
 * FIRST maximum in row-major window order, and a NaN counts as the maximum
 * (of several NaNs, the last), as PyTorch's CPU kernel's scan (v > max ||
 * isnan(v)) does. The forward can keep each window's choice, a byte
 * (nnrt_maxpool2d_forward_argmax: what nnc's trainers do); otherwise the
 * backward finds it again from x with the same function, so the two can
 * never disagree.
 *
 * Max pooling's files: pool_ref.c, the plain scan of any window (the
 * reference, and the path of every window but one); pool_2x2.c, the fast
 * path of the 2x2 stride-2 windows of LeNet-like networks, vector code
 * written so that it has no branches (AVX-512 where the machine has it),
 * with the reference's bits, NaNs and signed zeros included
 * (tests/runtime/test_reference.c checks them). This file holds the entry
 * points and chooses between the two (max_forward, max_bwd_fn). Large
 * calls share the planes of N*C between the runtime's threads
 * (parallel.c).
 *
 * Average pooling divides by PyTorch's divisor (avg_window): the window
 * clipped to the padded input when count_include_pad, else the number of
 * input pixels it covers. Adaptive pooling splits H into P ranges (rows
 * floor(i*H/P) .. ceil((i+1)*H/P) - 1, which may overlap) and W likewise.
 *
 * Dimension letters (fixed in nnrt.h): N batch, C channels, H x W input,
 * P x Q output, kh x kw window.
 */
#include <string.h>

#include "nnrt.h"

#include "kernel.h"

/* 2x2 windows, stride 2, no padding, every window inside: selects, no branches */
static int pool_2x2(const nnrt_pool2d_dims *d)
{
    return d->kh == 2 && d->kw == 2 && d->stride_h == 2 && d->stride_w == 2 && d->pad_h == 0 &&
           d->pad_w == 0 && 2 * d->P <= d->H && 2 * d->Q <= d->W;
}

/* pooling is shared between threads from this many input pixels */
#define POOL_GRAIN 32768

/* planes of N*C per task: about POOL_GRAIN input pixels */
static size_t plane_grain(const nnrt_pool2d_dims *d)
{
    size_t hw = (size_t)d->H * d->W;
    return hw >= POOL_GRAIN ? 1 : POOL_GRAIN / (hw ? hw : 1);
}

static void max_forward(float *y, unsigned char *arg, const float *x, const nnrt_pool2d_dims *d)
{
    pool_ctx c = {y, x, NULL, d, arg};
    void (*fn)(void *, size_t, size_t) = pool_2x2(d) ? maxpool_2x2_fwd : maxpool_fwd_ref;
#ifdef NNRT_AVX512
    if (pool_2x2(d) && has_avx512())
        fn = maxpool_2x2_fwd_avx512;
#endif
    nnrt_parallel_for(fn, &c, (size_t)d->N * d->C, plane_grain(d));
}

/* y[N,C,P,Q] = max over each window of x[N,C,H,W] */
void nnrt_maxpool2d_forward(float *y, const float *x, const nnrt_pool2d_dims *d)
{
    max_forward(y, NULL, x, d);
}

void nnrt_maxpool2d_forward_argmax(float *y, unsigned char *arg, const float *x, const nnrt_pool2d_dims *d)
{
    max_forward(y, arg, x, d);
}


/* the function that does the backward of d's planes */
static void (*max_bwd_fn(const nnrt_pool2d_dims *d))(void *, size_t, size_t)
{
    /* assign: the 2x2 path writes only the pixels its windows cover */
    int whole = !d->assign || (2 * d->P == d->H && 2 * d->Q == d->W);
    void (*fn)(void *, size_t, size_t) = pool_2x2(d) && whole ? maxpool_2x2_bwd : maxpool_bwd_ref;
#ifdef NNRT_AVX512
    if (pool_2x2(d) && whole && has_avx512())
        fn = maxpool_2x2_bwd_avx512;
#endif
    return fn;
}

/* dx[N,C,H,W] += dy[N,C,P,Q] at the first maximum of each window of
 * x[N,C,H,W]; dx may be NULL (then nothing to do) */
void nnrt_maxpool2d_backward(float *dx, const float *dy, const float *x,
                             const nnrt_pool2d_dims *d)
{
    if (!dx)
        return;
    pool_ctx c = {dx, dy, x, d, NULL};
    nnrt_parallel_for(max_bwd_fn(d), &c, (size_t)d->N * d->C, plane_grain(d));
}

void nnrt_maxpool2d_backward_argmax(float *dx, const float *dy, const unsigned char *arg,
                                    const nnrt_pool2d_dims *d)
{
    if (!dx)
        return;
    pool_ctx c = {dx, dy, NULL, d, (unsigned char *)arg};
    nnrt_parallel_for(max_bwd_fn(d), &c, (size_t)d->N * d->C, plane_grain(d));
}

void maxpool_plane_backward(float *dx, const float *dy, const unsigned char *arg, const nnrt_pool2d_dims *d)
{
    pool_ctx c = {dx, dy, NULL, d, (unsigned char *)arg};
    max_bwd_fn(d)(&c, 0, 1);
}

/* The input rows [*h0, *h1) and columns [*w0, *w1) of average-pooling window
 * (p, q), and its divisor as PyTorch's CPU kernel computes it: the window
 * clipped to the padded input if count_include_pad, else to the input. The
 * divisor is 0 only for a window with no input pixel (which PyTorch's output
 * sizes never produce); such a window averages to 0. */
static int avg_window(int *h0, int *h1, int *w0, int *w1, int p, int q,
                      const nnrt_pool2d_dims *d)
{
    int hs = p * d->stride_h - d->pad_h, ws = q * d->stride_w - d->pad_w;
    int he = hs + d->kh, we = ws + d->kw;
    if (he > d->H + d->pad_h) he = d->H + d->pad_h;
    if (we > d->W + d->pad_w) we = d->W + d->pad_w;
    int padded = (he - hs) * (we - ws);
    if (hs < 0) hs = 0;
    if (ws < 0) ws = 0;
    if (he > d->H) he = d->H;
    if (we > d->W) we = d->W;
    *h0 = hs, *h1 = he, *w0 = ws, *w1 = we;
    if (hs >= he || ws >= we)
        return 0;
    return d->count_include_pad ? padded : (he - hs) * (we - ws);
}

/* y[N,C,P,Q] = sum of each window of x[N,C,H,W] / its divisor */
static void avg_fwd_range(void *arg, size_t lo, size_t hi)
{
    const pool_ctx *c = arg;
    const nnrt_pool2d_dims *d = c->d;
    size_t HW = (size_t)d->H * d->W, PQ = (size_t)d->P * d->Q;
    for (size_t nc = lo; nc < hi; nc++) {
        const float *xc = c->a + nc * HW;
        float *yc = c->out + nc * PQ;
        for (int p = 0; p < d->P; p++)
            for (int q = 0; q < d->Q; q++) {
                int h0, h1, w0, w1;
                int div = avg_window(&h0, &h1, &w0, &w1, p, q, d);
                float sum = 0.0f;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++)
                        sum += xc[(size_t)h * d->W + w];
                yc[(size_t)p * d->Q + q] = div ? sum / (float)div : 0.0f;
            }
    }
}

void nnrt_avgpool2d_forward(float *y, const float *x, const nnrt_pool2d_dims *d)
{
    pool_ctx c = {y, x, NULL, d, NULL};
    nnrt_parallel_for(avg_fwd_range, &c, (size_t)d->N * d->C, plane_grain(d));
}

static void avg_bwd_range(void *arg, size_t lo, size_t hi)
{
    const pool_ctx *c = arg;
    const nnrt_pool2d_dims *d = c->d;
    size_t HW = (size_t)d->H * d->W, PQ = (size_t)d->P * d->Q;
    for (size_t nc = lo; nc < hi; nc++) {
        const float *dyc = c->a + nc * PQ;
        float *dxc = c->out + nc * HW;
        for (int p = 0; p < d->P; p++)
            for (int q = 0; q < d->Q; q++) {
                int h0, h1, w0, w1;
                int div = avg_window(&h0, &h1, &w0, &w1, p, q, d);
                if (!div)
                    continue;
                float g = dyc[(size_t)p * d->Q + q] / (float)div;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++)
                        dxc[(size_t)h * d->W + w] += g;
            }
    }
}

/* dx[N,C,H,W] += dy[N,C,P,Q] / divisor over each window; dx may be NULL */
void nnrt_avgpool2d_backward(float *dx, const float *dy, const nnrt_pool2d_dims *d)
{
    if (!dx)
        return;
    pool_ctx c = {dx, dy, NULL, d, NULL};
    nnrt_parallel_for(avg_bwd_range, &c, (size_t)d->N * d->C, plane_grain(d));
}

/* The range [*lo, *hi) of the n input positions that adaptive output cell i
 * of m averages: floor(i*n/m) .. ceil((i+1)*n/m) (PyTorch's start_index and
 * end_index) */
static void adaptive_range(int *lo, int *hi, int i, int n, int m)
{
    *lo = (int)((long long)i * n / m);
    *hi = (int)(((long long)(i + 1) * n + m - 1) / m);
}

/* y[N,C,P,Q] = mean of each adaptive window of x[N,C,H,W] (one plane each
 * of [lo, hi); the sizes travel in a pool2d_dims) */
static void adaptive_fwd_range(void *arg, size_t lo, size_t hi)
{
    const pool_ctx *c = arg;
    int H = c->d->H, W = c->d->W, P = c->d->P, Q = c->d->Q;
    size_t HW = (size_t)H * W, PQ = (size_t)P * Q;
    for (size_t nc = lo; nc < hi; nc++) {
        const float *xc = c->a + nc * HW;
        float *yc = c->out + nc * PQ;
        for (int p = 0; p < P; p++) {
            int h0, h1;
            adaptive_range(&h0, &h1, p, H, P);
            for (int q = 0; q < Q; q++) {
                int w0, w1;
                adaptive_range(&w0, &w1, q, W, Q);
                float sum = 0.0f;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++)
                        sum += xc[(size_t)h * W + w];
                yc[(size_t)p * Q + q] = sum / (float)((h1 - h0) * (w1 - w0));
            }
        }
    }
}

void nnrt_adaptive_avgpool2d_forward(float *y, const float *x, int N, int C, int H, int W,
                                     int P, int Q)
{
    nnrt_pool2d_dims d = {.N = N, .C = C, .H = H, .W = W, .P = P, .Q = Q};
    pool_ctx c = {y, x, NULL, &d, NULL};
    nnrt_parallel_for(adaptive_fwd_range, &c, (size_t)N * C, plane_grain(&d));
}

static void adaptive_bwd_range(void *arg, size_t lo, size_t hi)
{
    const pool_ctx *c = arg;
    int H = c->d->H, W = c->d->W, P = c->d->P, Q = c->d->Q;
    size_t HW = (size_t)H * W, PQ = (size_t)P * Q;
    for (size_t nc = lo; nc < hi; nc++) {
        const float *dyc = c->a + nc * PQ;
        float *dxc = c->out + nc * HW;
        for (int p = 0; p < P; p++) {
            int h0, h1;
            adaptive_range(&h0, &h1, p, H, P);
            for (int q = 0; q < Q; q++) {
                int w0, w1;
                adaptive_range(&w0, &w1, q, W, Q);
                float g = dyc[(size_t)p * Q + q] / (float)((h1 - h0) * (w1 - w0));
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++)
                        dxc[(size_t)h * W + w] += g;
            }
        }
    }
}

/* dx[N,C,H,W] += dy[N,C,P,Q] / window size over each adaptive window; dx may be NULL */
void nnrt_adaptive_avgpool2d_backward(float *dx, const float *dy, int N, int C, int H, int W,
                                      int P, int Q)
{
    if (!dx)
        return;
    nnrt_pool2d_dims d = {.N = N, .C = C, .H = H, .W = W, .P = P, .Q = Q};
    pool_ctx c = {dx, dy, NULL, &d, NULL};
    nnrt_parallel_for(adaptive_bwd_range, &c, (size_t)N * C, plane_grain(&d));
}
