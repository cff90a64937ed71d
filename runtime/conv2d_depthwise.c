/* conv2d_depthwise.c — the depthwise convolution (groups = in channels =
 * out channels: each channel convolved with its own R x S kernel), the
 * shape of MobileNet-style blocks, which neither matrix products (one row
 * per group) nor the shifted rows (made for many channels a tap) serve.
 *
 * Channel c of sample n is a plane on its own:
 *   forward   y[p][q]  = b + sum over (r, s) of w[r][s] * x[p*sh - ph + r*dh][q*sw - pw + s*dw]
 *   d input   dx[h][w] += w[r][s] * dy[p][q] for each (p, q, r, s) that reads (h, w)
 *   d weight  dw[r][s] += sum over n, p, q of dy[p][q] * x[...]
 * Each reads the plane of x (or writes that of dx) with a zero border, in
 * scratch (pad_plane), so runs of 16 output columns, the vector lanes,
 * need no test at the edges: the forward sums a run's taps in a register;
 * d input adds tap by tap into the padded plane; d weight keeps 16 partial
 * sums a tap, added across the lanes once per plane, in a fixed order.
 * Strides of 2 read and write every other lane of two vectors.
 *
 * Threads: forward and d input by planes, d weight by channels (its sum
 * over the samples stays in one task): the same bits with any number.
 */
#include "nnrt.h"

#include <string.h>

#include "kernel.h"

typedef struct dw_ctx {
    float *out;                 /* y, or dx */
    float *dw, *db;
    const float *x, *w, *b, *dy;
    const nnrt_conv2d_dims *d;
} dw_ctx;

/* xp[Hp][Wpp]: a plane x[H][W] inside a zero border of pad_h rows and
 * pad_w columns, and zero columns more on the right, so a run of 16
 * outputs at any tap reads inside xp. pad_border zeroes the plane once
 * per task; pad_plane then copies each plane inside, leaving the border. */
static void pad_border(float *xp, const nnrt_conv2d_dims *d)
{
    memset(xp, 0, sizeof(float) * conv_dw_plane(d));
}

static void pad_plane(float *restrict xp, const float *restrict x, const nnrt_conv2d_dims *d)
{
    int Wpp = conv_dw_row(d);
    for (int h = 0; h < d->H; h++)
        memcpy(xp + (size_t)(h + d->pad_h) * Wpp + d->pad_w, x + (size_t)h * d->W, sizeof(float) * (size_t)d->W);
}

/* 16 inputs of a tap for outputs q .. q+15: row[q*sw + u*sw], u < 16 */
INLINE void tap_load(v16f *out, const float *row, int sw)
{
    v16f v;
    if (sw == 1) {
        memcpy(&v, row, sizeof v);
    } else if (sw == 2) {
        v16f a, b;
        memcpy(&a, row, sizeof a);
        memcpy(&b, row + 16, sizeof b);
        v = SHUF(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    } else {
        for (int u = 0; u < 16; u++)
            v[u] = row[u * sw];
    }
    *out = v;
}

/* y[P][Q] = (y or bias) + the taps of each output, a run of 16 outputs of
 * a row in a register, in (r, s) order, from the padded plane xp (rows of
 * Wpp); then the ReLU. Called with constant sw and S where it can, so the
 * common shapes are compiled for them. */
INLINE void fwd_rows(float *restrict y, const float *restrict xp, const float *restrict w, float bias, int add,
                     int relu, int P, int Q, int R, int S, int sh, int sw, int dh, int dw, int Wpp)
{
    for (int p = 0; p < P; p++)
        for (int q = 0; q < Q; q += 16) {
            float *yq = y + (size_t)p * Q + q;
            int full = Q - q >= 16;
            v16f acc = (v16f){0} + bias;
            if (add && full)
                memcpy(&acc, yq, sizeof acc);
            else if (add)
                for (int u = 0; u < Q - q; u++)
                    acc[u] = yq[u];
            for (int r = 0; r < R; r++) {
                const float *row = xp + (size_t)(p * sh + r * dh) * Wpp + q * sw;
                for (int s = 0; s < S; s++) {
                    v16f v;
                    tap_load(&v, row + s * dw, sw);
                    acc += w[r * S + s] * v;
                }
            }
            if (relu)                   /* x < 0 ? 0 : x; a NaN stays NaN */
                acc = (v16f)((v16i)acc & ~(acc < 0.0f));
            if (full)
                memcpy(yq, &acc, sizeof acc);
            else
                for (int u = 0; u < Q - q; u++)
                    yq[u] = acc[u];
        }
}

/* fwd_rows for the plane sizes of d (x padded as d says), compiled apart
 * for strides 1 and 2 with kernels 3 and 5 wide */
INLINE void fwd_plane(float *y, const float *xp, const float *w, float bias, int add, int relu,
                      const nnrt_conv2d_dims *d)
{
    int P = d->P, Q = d->Q, R = d->R, S = d->S, sh = d->stride_h, sw = d->stride_w, dh = d->dil_h, dw = d->dil_w;
    int Wpp = conv_dw_row(d);
    if (sw == 1 && S == 3)
        fwd_rows(y, xp, w, bias, add, relu, P, Q, R, 3, sh, 1, dh, dw, Wpp);
    else if (sw == 2 && S == 3)
        fwd_rows(y, xp, w, bias, add, relu, P, Q, R, 3, sh, 2, dh, dw, Wpp);
    else if (sw == 1 && S == 5)
        fwd_rows(y, xp, w, bias, add, relu, P, Q, R, 5, sh, 1, dh, dw, Wpp);
    else if (sw == 2 && S == 5)
        fwd_rows(y, xp, w, bias, add, relu, P, Q, R, 5, sh, 2, dh, dw, Wpp);
    else
        fwd_rows(y, xp, w, bias, add, relu, P, Q, R, S, sh, sw, dh, dw, Wpp);
}

/* y for the planes [lo, hi) of N*C */
HOT static void fwd_range(void *arg, size_t lo, size_t hi)
{
    const dw_ctx *c = arg;
    const nnrt_conv2d_dims *d = c->d;
    float *xp = nnrt_scratch(0, conv_dw_plane(d));
    pad_border(xp, d);
    for (size_t pl = lo; pl < hi; pl++) {
        int ch = (int)(pl % (size_t)d->C);
        pad_plane(xp, c->x + pl * d->H * d->W, d);
        fwd_plane(c->out + pl * d->P * d->Q, xp, c->w + (size_t)ch * d->R * d->S, c->b ? c->b[ch] : 0.0f, 0,
                  d->relu, d);
    }
}

/* Of stride 1, d input is itself a depthwise convolution, of dy padded by
 * (R-1)*dil - pad with the kernel turned around: the dims of that one (its
 * "x" is dy, its "y" dx), when every padding is >= 0 */
static int dx_as_forward(nnrt_conv2d_dims *t, const nnrt_conv2d_dims *d)
{
    *t = *d;
    t->H = d->P, t->W = d->Q, t->P = d->H, t->Q = d->W;
    t->pad_h = (d->R - 1) * d->dil_h - d->pad_h;
    t->pad_w = (d->S - 1) * d->dil_w - d->pad_w;
    t->relu = 0;
    return d->stride_h == 1 && d->stride_w == 1 && t->pad_h >= 0 && t->pad_w >= 0;
}

/* dx for the planes [lo, hi), of stride 1 (dx_as_forward) */
HOT static void dx_fwd_range(void *arg, size_t lo, size_t hi)
{
    const dw_ctx *c = arg;
    const nnrt_conv2d_dims *d = c->d;
    nnrt_conv2d_dims t;
    dx_as_forward(&t, d);
    float *xp = nnrt_scratch(0, conv_dw_plane(&t) + (size_t)d->R * d->S);
    float *wf = xp + conv_dw_plane(&t);         /* the kernel turned around */
    int RS = d->R * d->S;
    pad_border(xp, &t);
    for (size_t pl = lo; pl < hi; pl++) {
        int ch = (int)(pl % (size_t)d->C);
        const float *w = c->w + (size_t)ch * RS;
        for (int i = 0; i < RS; i++)
            wf[i] = w[RS - 1 - i];
        float *dx = c->out + pl * d->H * d->W;
        pad_plane(xp, c->dy + pl * d->P * d->Q, &t);
        if (d->assign_dx)
            memset(dx, 0, sizeof(float) * (size_t)d->H * d->W);
        fwd_plane(dx, xp, wf, 0.0f, 1, 0, &t);
    }
}

/* dx for the planes [lo, hi) (strides past 1): tap by tap, each tap's
 * w * dy added where it read, into a padded plane; then its inside added
 * to (or put in) dx */
HOT static void dx_range(void *arg, size_t lo, size_t hi)
{
    const dw_ctx *c = arg;
    const nnrt_conv2d_dims *d = c->d;
    int sh = d->stride_h, sw = d->stride_w, Wpp = conv_dw_row(d), Qv = (d->Q + 15) / 16 * 16;
    float *xp = nnrt_scratch(0, conv_dw_plane(d) + (size_t)d->P * Qv);
    float *gp = xp + conv_dw_plane(d);         /* dy with rows of Qv, zero past Q */
    for (size_t pl = lo; pl < hi; pl++) {
        int ch = (int)(pl % (size_t)d->C);
        const float *dy = c->dy + pl * d->P * d->Q, *w = c->w + (size_t)ch * d->R * d->S;
        memset(xp, 0, sizeof(float) * conv_dw_plane(d));
        for (int p = 0; p < d->P; p++) {
            memcpy(gp + (size_t)p * Qv, dy + (size_t)p * d->Q, sizeof(float) * (size_t)d->Q);
            memset(gp + (size_t)p * Qv + d->Q, 0, sizeof(float) * (size_t)(Qv - d->Q));
        }
        /* tap-major, rows inside: consecutive writes never overlap (no
         * store waits for the one before it) */
        for (int s = 0; s < d->S; s++)
            for (int r = 0; r < d->R; r++)
                for (int p = 0; p < d->P; p++) {
                    const float *g = gp + (size_t)p * Qv;
                    float wv = w[r * d->S + s];
                    float *row = xp + (size_t)(p * sh + r * d->dil_h) * Wpp + s * d->dil_w;
                    for (int q = 0; q < Qv; q += 16) {
                        v16f gv;
                        memcpy(&gv, g + q, sizeof gv);
                        gv *= wv;
                        float *at = row + (size_t)q * sw;
                        if (sw == 1) {
                            v16f a;
                            memcpy(&a, at, sizeof a);
                            a += gv;
                            memcpy(at, &a, sizeof a);
                        } else if (sw == 2) {
                            v16f a, b, z = {0};
                            memcpy(&a, at, sizeof a);
                            memcpy(&b, at + 16, sizeof b);
                            a += SHUF(gv, z, 0, 16, 1, 16, 2, 16, 3, 16, 4, 16, 5, 16, 6, 16, 7, 16);
                            b += SHUF(gv, z, 8, 16, 9, 16, 10, 16, 11, 16, 12, 16, 13, 16, 14, 16, 15, 16);
                            memcpy(at, &a, sizeof a);
                            memcpy(at + 16, &b, sizeof b);
                        } else {
                            for (int u = 0; u < 16; u++)
                                at[u * sw] += gv[u];
                        }
                    }
                }
        float *dx = c->out + pl * d->H * d->W;
        for (int h = 0; h < d->H; h++) {
            const float *src = xp + (size_t)(h + d->pad_h) * Wpp + d->pad_w;
            float *dst = dx + (size_t)h * d->W;
            if (d->assign_dx)
                memcpy(dst, src, sizeof(float) * (size_t)d->W);
            else
                for (int v = 0; v < d->W; v++)
                    dst[v] += src[v];
        }
    }
}

/* dw[R][S] += the plane's sums: for each kernel row r, up to 8 taps'
 * sums of 16 lanes over the output rows, added across the lanes at the
 * end; xp the padded plane of x, gp dy with rows of Qv, zero past Q */
INLINE void dw_rows(float *restrict dw, const float *restrict xp, const float *restrict gp,
                    const nnrt_conv2d_dims *d, int sw, int S, int Wpp, int Qv)
{
    for (int r = 0; r < d->R; r++)
        for (int s0 = 0; s0 < S; s0 += 8) {
            int ns = S - s0 < 8 ? S - s0 : 8;
            v16f acc[8];
            for (int s = 0; s < 8; s++)
                acc[s] = (v16f){0};
            for (int p = 0; p < d->P; p++) {
                const float *row = xp + (size_t)(p * d->stride_h + r * d->dil_h) * Wpp + s0 * d->dil_w;
                for (int q = 0; q < Qv; q += 16) {
                    v16f gv;
                    memcpy(&gv, gp + (size_t)p * Qv + q, sizeof gv);
                    for (int s = 0; s < ns; s++) {
                        v16f v;
                        tap_load(&v, row + (size_t)q * sw + s * d->dil_w, sw);
                        acc[s] += gv * v;
                    }
                }
            }
            for (int s = 0; s < ns; s++) {
                float sum = 0.0f;
                for (int u = 0; u < 16; u++)
                    sum += acc[s][u];
                dw[r * S + s0 + s] += sum;
            }
        }
}

/* dw and db for the channels [lo, hi), over every sample */
HOT static void dw_range(void *arg, size_t lo, size_t hi)
{
    const dw_ctx *c = arg;
    const nnrt_conv2d_dims *d = c->d;
    int sw = d->stride_w, Wpp = conv_dw_row(d), Qv = (d->Q + 15) / 16 * 16;
    float *xp = nnrt_scratch(0, conv_dw_plane(d) + (size_t)d->P * Qv);
    float *gp = xp + conv_dw_plane(d);         /* dy with rows of Qv, zero past Q */
    pad_border(xp, d);
    for (size_t ch = lo; ch < hi; ch++) {
        float *dw = c->dw ? c->dw + ch * d->R * d->S : NULL;
        for (int n = 0; n < d->N; n++) {
            size_t pl = (size_t)n * d->C + ch;
            const float *dy = c->dy + pl * d->P * d->Q;
            if (c->db)
                c->db[ch] += sum_floats(dy, (size_t)d->P * d->Q);
            if (!dw)
                continue;
            pad_plane(xp, c->x + pl * d->H * d->W, d);
            for (int p = 0; p < d->P; p++) {
                memcpy(gp + (size_t)p * Qv, dy + (size_t)p * d->Q, sizeof(float) * (size_t)d->Q);
                memset(gp + (size_t)p * Qv + d->Q, 0, sizeof(float) * (size_t)(Qv - d->Q));
            }
            if (sw == 1 && d->S == 3)
                dw_rows(dw, xp, gp, d, 1, 3, Wpp, Qv);
            else if (sw == 2 && d->S == 3)
                dw_rows(dw, xp, gp, d, 2, 3, Wpp, Qv);
            else
                dw_rows(dw, xp, gp, d, sw, d->S, Wpp, Qv);
        }
    }
}

/* planes of at least this many floats of work a thread */
enum { DW_GRAIN = 32768 };

static size_t grain(size_t per_item)
{
    return per_item >= DW_GRAIN ? 1 : DW_GRAIN / (per_item ? per_item : 1);
}

void conv2d_forward_depthwise(float *y, const float *x, const float *w, const float *b, const nnrt_conv2d_dims *d)
{
    dw_ctx c = {.out = y, .x = x, .w = w, .b = b, .d = d};
    nnrt_parallel_for(fwd_range, &c, (size_t)d->N * d->C, grain((size_t)d->P * d->Q * d->R * d->S));
}

void conv2d_backward_depthwise(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                               const nnrt_conv2d_dims *d)
{
    dw_ctx c = {.out = dx, .dw = dw, .db = db, .x = x, .w = w, .dy = dy, .d = d};
    size_t work = (size_t)d->P * d->Q * d->R * d->S;
    if (dw || db)
        nnrt_parallel_for(dw_range, &c, (size_t)d->C, grain(work * d->N));
    nnrt_conv2d_dims t;
    if (dx)
        nnrt_parallel_for(dx_as_forward(&t, d) ? dx_fwd_range : dx_range, &c, (size_t)d->N * d->C, grain(work));
}
