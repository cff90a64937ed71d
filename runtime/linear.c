/* linear.c — fully connected layer, forward and backward (torch.nn.Linear).
 *
 * Weight is [OUT, IN] as in PyTorch, so a row of x and a row of w are both
 * contiguous IN-vectors. The three products are register tiles written as
 * plain loops with constant trip counts, which the compiler turns into
 * vector instructions:
 *   - forward, y[n][o] = b[o] + x[n][0]*w[o][0] + x[n][1]*w[o][1] + ...:
 *     for a large batch, one matrix product by gemm.c, from packed panels
 *     of x and w (lin_forward_gemm, nnrt_sizing.h, says when: from 16
 *     samples and a quarter as many samples as outputs); else the samples
 *     are the vector lanes (x is transposed first), 32 samples x 8 outputs
 *     a tile; for one or two samples, the features are the lanes instead
 *     (8 dot products at a time);
 *   - d input, dx[n,:] += sum over o of dy[n][o] * w[o,:]: for a block of
 *     samples and 32 features, each dy[n][o] times a row piece of w;
 *   - d weight, dw[o,:] += sum over n of dy[n][o] * x[n,:]: the same shape,
 *     with the roles of n and o exchanged.
 * The two backward tiles have gemm.c's shape (8 rows x 32 features, a
 * broadcast of dy against two vectors) and read their operands in place,
 * where gemm.c would pack them first, so every batch keeps them.
 * Feature counts that are not a multiple of the tile width end with a tile
 * that overlaps the one before and writes only the features it adds.
 * For one or two samples both backward products are one pass over w (a
 * tile of 64 features of x and dx in registers, w and dw streaming), and
 * nnrt_linear_backward_sgd (a generated trainer's backward_step, plain
 * SGD) applies the update in that pass instead of writing dw: at batch 1
 * the layer's weights are then read once and written once a step.
 *
 * Work is cut into tasks for nnrt_parallel (parallel.c) by blocks of the
 * output; each output element is computed by one task in a fixed order, so
 * the results are the same bits with any number of threads.
 *
 * Dimension letters: N batch, IN input features, OUT output features.
 */
#include "nnrt.h"

#include <assert.h>
#include <string.h>

/* The hot functions are compiled for AVX-512, AVX2 and baseline x86-64, with
 * what they call inlined, and the loader picks one (HOT, kernel.h). */
#include "kernel.h"

enum {
    NS = LIN_NS, FO = 8,        /* forward: 32 samples (or 16) x 8 outputs per tile ... */
    ROWS = LIN_ROWS,            /* ... or, up to 2 samples, 8 dot products (fwd_row) */
    VL = 32,                    /* backward: features per tile */
    BM = 8,                     /* backward: rows per tile (samples for dx, outputs for dw) */
};

/* the tasks on the pool's threads, or all here for small work */
static void run(void (*fn)(void *, int), void *ctx, int ntasks, double macs)
{
    if (macs >= NNRT_PAR_MACS && ntasks > 1)
        nnrt_parallel(fn, ctx, ntasks);
    else
        for (int i = 0; i < ntasks; i++)
            fn(ctx, i);
}

/* ---- the forward by gemm.c ----
 *
 * y[N,OUT] = x[N,IN] w^T[IN,OUT] as one gemm_call, M = N rows of C, each
 * row started from b (copied in, then accumulated into), and gemm.c's
 * tiles summing each y[n][o] from it over i = 0 .. IN-1 in blocks of
 * GEMM_KC. Both operands are read across their rows: pack_t turns blocks
 * of 8 rows x 8 features around in registers. The call is cut into blocks
 * of at most LIN_MC samples, of equal size, and by columns where that
 * gives fewer tasks than threads; gemm.c sums each element in one order
 * whatever the block, so the bits do not depend on the threads. */
enum { MR = GEMM_MR, NR = GEMM_NR, KC = GEMM_KC, MC = LIN_MC };

/* dst[k*ldd + m] = src[m*lds + k] for m, k < 8: rows paired, then pairs
 * of pairs, then halves exchanged */
INLINE void transpose8(float *restrict dst, size_t ldd, const float *restrict src, size_t lds)
{
    v8f r[8], t[8], u[8];
    for (int m = 0; m < 8; m++)
        memcpy(&r[m], src + m * lds, sizeof r[m]);
    for (int m = 0; m < 8; m += 2) {    /* columns 0 1 4 5, and 2 3 6 7, of rows m and m + 1 */
        t[m] = SHUF8(r[m], r[m + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[m + 1] = SHUF8(r[m], r[m + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int m = 0; m < 8; m += 4)      /* u[m + c]: column c, and c + 4, of rows m .. m + 3 */
        for (int h = 0; h < 2; h++) {
            u[m + 2 * h] = SHUF8(t[m + h], t[m + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
            u[m + 2 * h + 1] = SHUF8(t[m + h], t[m + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        }
    for (int k = 0; k < 4; k++) {
        v8f lo = SHUF8(u[k], u[k + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        v8f hi = SHUF8(u[k], u[k + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        memcpy(dst + k * ldd, &lo, sizeof lo);
        memcpy(dst + (k + 4) * ldd, &hi, sizeof hi);
    }
}

/* A gemm.c panel from a row-major matrix s (rows s->rs apart) read across:
 * dst[k][m] (width floats a row) = s[i0 + m][k0 + k] for m < n, k < kc,
 * zero for n <= m < width. Whole blocks of 8 by transpose8, the rest one
 * by one. */
INLINE void pack_t(float *restrict dst, int width, const gemm_mat *s, int i0, int n, int k0, int kc)
{
    const float *src = s->p + (ptrdiff_t)i0 * s->rs + k0;
    int n8 = n / 8 * 8, k8 = kc / 8 * 8;
    for (int m = 0; m < n8; m += 8)
        for (int k = 0; k < k8; k += 8)
            transpose8(dst + (size_t)k * width + m, (size_t)width, src + (ptrdiff_t)m * s->rs + k,
                       (size_t)s->rs);
    for (int m = 0; m < n; m++)
        for (int k = m < n8 ? k8 : 0; k < kc; k++)
            dst[(size_t)k * width + m] = src[(ptrdiff_t)m * s->rs + k];
    for (int k = 0; n < width && k < kc; k++)
        memset(dst + (size_t)k * width + n, 0, sizeof(float) * (size_t)(width - n));
}
/* A: samples of x; B: outputs, rows of w */
HOT static void pack_x(float *dst, const void *ctx, int i0, int mr, int k0, int kc)
{
    pack_t(dst, MR, ctx, i0, mr, k0, kc);
}
HOT static void pack_w(float *dst, const void *ctx, int j0, int nr, int k0, int kc)
{
    pack_t(dst, NR, ctx, j0, nr, k0, kc);
}

typedef struct lin_gemm_ctx {
    gemm_call g;
    const float *b;             /* each row of C starts from it (g.accumulate), or NULL */
    int mb, nb, ncb;            /* a task's rows and columns; blocks of columns */
} lin_gemm_ctx;

/* task: rows mb*(task / ncb) .., columns nb*(task % ncb) .. */
static void lin_gemm_task(void *arg, int task)
{
    const lin_gemm_ctx *l = arg;
    const gemm_call *g = &l->g;
    int i0 = task / l->ncb * l->mb, j0 = task % l->ncb * l->nb;
    int i1 = g->M - i0 < l->mb ? g->M : i0 + l->mb, j1 = g->N - j0 < l->nb ? g->N : j0 + l->nb;
    for (int i = i0; l->b && i < i1; i++)
        memcpy(g->c + (size_t)i * g->ldc + j0, l->b + j0, sizeof(float) * (size_t)(j1 - j0));
    float *bp = nnrt_scratch(0, (size_t)KC * GEMM_NC);
    float *ap = nnrt_scratch(3, (size_t)(i1 - i0 + MR - 1) / MR * MR * KC);
    gemm_block(g, i0, i1, j0, j1, bp, ap);
}

static void linear_forward_gemm(float *y, const float *x, const float *w, const float *b, int N, int IN,
                                int OUT)
{
    gemm_mat xm = {x, IN, 1}, wm = {w, IN, 1};
    int threads = nnrt_threads(), mblocks = (N + MC - 1) / MC;
    lin_gemm_ctx l = {
        .g = {.M = N, .N = OUT, .K = IN, .pack_a = pack_x, .actx = &xm, .pack_b = pack_w, .bctx = &wm,
              .c = y, .ldc = (size_t)OUT, .accumulate = b != NULL},
        .b = b, .mb = ((N + mblocks - 1) / mblocks + MR - 1) / MR * MR, .nb = OUT, .ncb = 1,
    };
    if (mblocks < threads) {        /* columns by NR, a block for each thread */
        int want = (threads + mblocks - 1) / mblocks;
        l.nb = ((OUT + want - 1) / want + NR - 1) / NR * NR;
        l.ncb = (OUT + l.nb - 1) / l.nb;
    }
    assert(l.mb <= MC);
    run(lin_gemm_task, &l, (N + l.mb - 1) / l.mb * l.ncb, (double)N * IN * OUT);
}

/* ---- forward ---- */

/* The forward tile: ns samples (the vector lanes) x FO outputs,
 *   out[u][v] = b[u] + x[v][0]*w[u][0] + x[v][1]*w[u][1] + ...
 * added up in that order, feature by feature, as the plain loop does. xt
 * is x transposed,
 * [IN][ldx], zero in the lanes past the batch. The outputs are spelled out,
 * which is what makes GCC keep the sums in registers. */
INLINE void fwd_tile(float (*restrict out)[NS], const float *restrict xt, int ldx,
                     const float *const *wr, const float *restrict bias, int IN, int ns)
{
    float acc[FO][NS];
    for (int u = 0; u < FO; u++)
        for (int v = 0; v < ns; v++)
            acc[u][v] = bias[u];
    const float *w0 = wr[0], *w1 = wr[1], *w2 = wr[2], *w3 = wr[3];
    const float *w4 = wr[4], *w5 = wr[5], *w6 = wr[6], *w7 = wr[7];
    for (int i = 0; i < IN; i++) {
        const float *xi = xt + (size_t)i * ldx;
        float c0 = w0[i], c1 = w1[i], c2 = w2[i], c3 = w3[i];
        float c4 = w4[i], c5 = w5[i], c6 = w6[i], c7 = w7[i];
        for (int v = 0; v < ns; v++) {
            acc[0][v] += xi[v] * c0;
            acc[1][v] += xi[v] * c1;
            acc[2][v] += xi[v] * c2;
            acc[3][v] += xi[v] * c3;
            acc[4][v] += xi[v] * c4;
            acc[5][v] += xi[v] * c5;
            acc[6][v] += xi[v] * c6;
            acc[7][v] += xi[v] * c7;
        }
    }
    for (int u = 0; u < FO; u++)
        for (int v = 0; v < ns; v++)
            out[u][v] = acc[u][v];
}

/* The forward for one or two samples, where vector lanes over samples would
 * be mostly empty: FO dot products of x with rows of w, the features as the
 * vector lanes, two rows at a time (w then streams through nearly in memory
 * order), each row in four sets of 16 partial sums: the features in blocks
 * of 64, feature i in set i / 16 % 4 and lane i % 16; the whole vectors
 * after them in sets 0, 1, 2; the last features, if IN is not a multiple of
 * 16, in set 3, read as one more vector that overlaps the one before, the
 * features it repeats masked to zero (fewer than 16 features: lane i of set
 * 0). A row's sets are added, (s0 + s1) + (s2 + s3), then the 16 lanes of
 * all FO rows as a tree (sum_lanes), then the bias. fwd_rows_avx512 is the
 * same in AVX-512 intrinsics, for all rows in one loop (a small layer) or a
 * task's block of rows: the same sums in the same order, so the same bits
 * as this one compiled with fused multiply-adds (the AVX2 and AVX-512
 * clones; the baseline clone rounds each product). GCC's code for this one
 * reads x again for every row; the intrinsics keep it in registers. */
enum { LV = 16 };
/* a vector from memory (unaligned) */
#define LOAD16(v, p) memcpy(&(v), (p), sizeof(v16f))
/* The lanes of the vector at IN - LV (IN >= LV) that hold the features
 * past the whole vectors, IN / LV * LV and on: the vectors before have the
 * others (all lanes when IN is a multiple of LV) */
INLINE void last_features(v16i *keep, int IN)
{
    int iv = IN / LV * LV;
    for (int v = 0; v < LV; v++)
        (*keep)[v] = IN - LV + v >= iv ? -1 : 0;
}
INLINE void fwd_row(float *restrict y, const float *restrict x, const float *const *wr,
                    const float *restrict bias, int IN, int nu)
{
    v16i keep;
    last_features(&keep, IN);
    v16f rows[FO], xv, wv;
    for (int u = 0; u < FO; u++)
        rows[u] = (v16f){0};
    for (int u = 0; u < nu; u += 2) {   /* (wr repeats the last row) */
        const float *w0 = wr[u], *w1 = wr[u + 1];
        v16f s0[4], s1[4];
        for (int h = 0; h < 4; h++)
            s0[h] = s1[h] = (v16f){0};
        int i = 0;
        for (; i + 4 * LV <= IN; i += 4 * LV)
            for (int h = 0; h < 4; h++) {
                LOAD16(xv, x + i + LV * h);
                LOAD16(wv, w0 + i + LV * h);
                s0[h] += xv * wv;
                LOAD16(wv, w1 + i + LV * h);
                s1[h] += xv * wv;
            }
        for (int h = 0; h < 3; h++)     /* up to 3 whole vectors are left */
            if (i + LV <= IN) {
                LOAD16(xv, x + i);
                LOAD16(wv, w0 + i);
                s0[h] += xv * wv;
                LOAD16(wv, w1 + i);
                s1[h] += xv * wv;
                i += LV;
            }
        if (i < IN && IN >= LV) {
            LOAD16(xv, x + IN - LV);
            xv = (v16f)((v16i)xv & keep);
            LOAD16(wv, w0 + IN - LV);
            s0[3] += xv * (v16f)((v16i)wv & keep);
            LOAD16(wv, w1 + IN - LV);
            s1[3] += xv * (v16f)((v16i)wv & keep);
        } else
            for (; i < IN; i++) {
                s0[0][i] += x[i] * w0[i];
                s1[0][i] += x[i] * w1[i];
            }
        rows[u] = (s0[0] + s0[1]) + (s0[2] + s0[3]);
        rows[u + 1] = (s1[0] + s1[1]) + (s1[2] + s1[3]);
    }
    v16f sum;
    sum_lanes(&sum, rows);
    for (int u = 0; u < nu; u++)
        y[u] = sum[u] + bias[u];
}

#ifdef NNRT_AVX512
/* y[o] = x . w[o] + b[o] for one sample and outputs o0 <= o < o1 (o0 a
 * multiple of FO), FO at a time: fwd_row's sums */
__attribute__((target("avx512f"))) static void fwd_rows_avx512(float *restrict y, const float *restrict x,
                                                               const float *restrict w, const float *restrict b,
                                                               int IN, int ob, int OUT)
{
    int iv = IN / LV * LV;
    __mmask16 keep = IN >= LV ? (__mmask16)(0xffffu << (iv - (IN - LV))) : (__mmask16)((1u << IN) - 1);
    for (int o0 = ob; o0 < OUT; o0 += FO) {
        int nu = OUT - o0 < FO ? OUT - o0 : FO;
        v16f rows[FO];
        for (int u = 0; u < FO; u++)
            rows[u] = (v16f){0};
        for (int u = 0; u < nu; u += 2) {   /* a short block repeats its last row */
            const float *w0 = w + (size_t)(o0 + u) * IN, *w1 = w + (size_t)(o0 + (u + 1 < nu ? u + 1 : u)) * IN;
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0, xv;
            int i = 0;
            for (; i + 4 * LV <= IN; i += 4 * LV) {
                __m512 x0 = _mm512_loadu_ps(x + i), x1 = _mm512_loadu_ps(x + i + 16);
                __m512 x2 = _mm512_loadu_ps(x + i + 32), x3 = _mm512_loadu_ps(x + i + 48);
                a0 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(w0 + i), a0);
                b0 = _mm512_fmadd_ps(x0, _mm512_loadu_ps(w1 + i), b0);
                a1 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(w0 + i + 16), a1);
                b1 = _mm512_fmadd_ps(x1, _mm512_loadu_ps(w1 + i + 16), b1);
                a2 = _mm512_fmadd_ps(x2, _mm512_loadu_ps(w0 + i + 32), a2);
                b2 = _mm512_fmadd_ps(x2, _mm512_loadu_ps(w1 + i + 32), b2);
                a3 = _mm512_fmadd_ps(x3, _mm512_loadu_ps(w0 + i + 48), a3);
                b3 = _mm512_fmadd_ps(x3, _mm512_loadu_ps(w1 + i + 48), b3);
            }
            if (i + LV <= IN) {         /* up to 3 whole vectors: sets 0, 1, 2 */
                xv = _mm512_loadu_ps(x + i);
                a0 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w0 + i), a0);
                b0 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w1 + i), b0);
                i += LV;
            }
            if (i + LV <= IN) {
                xv = _mm512_loadu_ps(x + i);
                a1 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w0 + i), a1);
                b1 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w1 + i), b1);
                i += LV;
            }
            if (i + LV <= IN) {
                xv = _mm512_loadu_ps(x + i);
                a2 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w0 + i), a2);
                b2 = _mm512_fmadd_ps(xv, _mm512_loadu_ps(w1 + i), b2);
                i += LV;
            }
            if (i < IN && IN >= LV) {   /* the overlapping last vector: set 3 */
                xv = _mm512_maskz_loadu_ps(keep, x + IN - LV);
                a3 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(keep, w0 + IN - LV), a3);
                b3 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(keep, w1 + IN - LV), b3);
            } else if (i < IN) {        /* fewer than 16 features: lanes of set 0 */
                xv = _mm512_maskz_loadu_ps(keep, x);
                a0 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(keep, w0), a0);
                b0 = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(keep, w1), b0);
            }
            rows[u] = (v16f)_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3));
            rows[u + 1] = (v16f)_mm512_add_ps(_mm512_add_ps(b0, b1), _mm512_add_ps(b2, b3));
        }
        v16f sum;
        sum_lanes(&sum, rows);
        for (int u = 0; u < nu; u++)
            y[o0 + u] = sum[u] + (b ? b[o0 + u] : 0.0f);
    }
}
#endif

typedef struct linear_fwd_ctx {
    float *y;
    const float *x, *w, *b;
    float *xt;                  /* x transposed: [IN][ldx] */
    int N, IN, OUT, ldx, nob;   /* nob: blocks of FO outputs */
} linear_fwd_ctx;

/* x[N][IN] -> xt[IN][ldx], zero in the lanes n >= N */
static void transpose_x(float *restrict xt, const float *restrict x, int N, int IN, int ldx)
{
    for (int i = 0; i < IN; i++) {
        float *row = xt + (size_t)i * ldx;
        for (int n = 0; n < N; n++)
            row[n] = x[(size_t)n * IN + i];
        for (int n = N; n < ldx; n++)
            row[n] = 0.0f;
    }
}

/* task: samples NS*(task / nob) .., outputs FO*(task % nob) .. */
HOT static void linear_fwd_task(void *arg, int task)
{
    const linear_fwd_ctx *c = arg;
    int n0 = task / c->nob * NS, o0 = task % c->nob * FO;
    int mn = c->N - n0 < NS ? c->N - n0 : NS, nu = c->OUT - o0 < FO ? c->OUT - o0 : FO;
    const float *wr[FO];
    float bias[FO];
    for (int u = 0; u < FO; u++) {  /* a short block repeats its last output */
        int o = o0 + (u < nu ? u : nu - 1);
        wr[u] = c->w + (size_t)o * c->IN;
        bias[u] = c->b ? c->b[o] : 0.0f;
    }
    if (c->N <= ROWS) {
#ifdef NNRT_AVX512
        if (has_avx512()) {             /* (large layers: their tasks share the rows) */
            for (int m = 0; m < mn; m++)
                fwd_rows_avx512(c->y + (size_t)(n0 + m) * c->OUT, c->x + (size_t)(n0 + m) * c->IN, c->w, c->b,
                                c->IN, o0, o0 + nu);
            return;
        }
#endif
        for (int m = 0; m < mn; m++)
            fwd_row(c->y + (size_t)(n0 + m) * c->OUT + o0, c->x + (size_t)(n0 + m) * c->IN, wr, bias,
                    c->IN, nu);
        return;
    }
    float out[FO][NS];
    if (mn > NS / 2)
        fwd_tile(out, c->xt + n0, c->ldx, wr, bias, c->IN, NS);
    else
        fwd_tile(out, c->xt + n0, c->ldx, wr, bias, c->IN, NS / 2);
    for (int m = 0; m < mn; m++)
        for (int u = 0; u < nu; u++)
            c->y[(size_t)(n0 + m) * c->OUT + o0 + u] = out[u][m];
}

/* y[N,OUT] = x[N,IN] @ w[OUT,IN]^T + b[OUT]; b may be NULL */
void nnrt_linear_forward(float *y, const float *x, const float *w, const float *b,
                         int N, int IN, int OUT)
{
    if (lin_forward_gemm(N, IN, OUT)) {
        linear_forward_gemm(y, x, w, b, N, IN, OUT);
        return;
    }
#ifdef NNRT_AVX512
    if (N <= ROWS && has_avx512() && (double)N * IN * OUT < NNRT_PAR_MACS) {  /* all rows in one loop */
        for (int n = 0; n < N; n++)
            fwd_rows_avx512(y + (size_t)n * OUT, x + (size_t)n * IN, w, b, IN, 0, OUT);
        return;
    }
#endif
    int ldx = (N + NS / 2 - 1) / (NS / 2) * (NS / 2);     /* a multiple of the half tile */
    float *xt = NULL;
    if (N > ROWS) {
        xt = nnrt_scratch(3, (size_t)IN * ldx);
        transpose_x(xt, x, N, IN, ldx);
    }
    linear_fwd_ctx c = {y, x, w, b, xt, N, IN, OUT, ldx, (OUT + FO - 1) / FO};
    run(linear_fwd_task, &c, (N + NS - 1) / NS * c.nob, (double)N * IN * OUT);
}

/* ---- backward ---- */

/* The tile of both backward products, added into dst (add 0: assigned):
 *   dst[m*ld + v] += sum over k < K of a[m*as + k*ak] * b[k*ldb + v]
 * for m < mr and v0 <= v < VL (the lanes below v0 belong to the tile before) */
INLINE void axpy_tile(float *restrict dst, size_t ld, int add, int v0, const float *restrict a, size_t as,
                      size_t ak, const float *restrict b, size_t ldb, int K, int mr)
{
    float acc[BM][VL];
    for (int m = 0; m < mr; m++)
        for (int v = 0; v < VL; v++)
            acc[m][v] = 0.0f;
    for (int k = 0; k < K; k++) {
        const float *bk = b + (size_t)k * ldb;
        for (int m = 0; m < mr; m++) {
            float av = a[m * as + k * ak];
            for (int v = 0; v < VL; v++)
                acc[m][v] += av * bk[v];
        }
    }
    if (v0 == 0)
        for (int m = 0; m < mr; m++)
            for (int v = 0; v < VL; v++)
                dst[m * ld + v] = add ? dst[m * ld + v] + acc[m][v] : acc[m][v];
    else {                                  /* via memory: acc stays in registers above */
        float tile[BM][VL];
        for (int m = 0; m < mr; m++)
            for (int v = 0; v < VL; v++)
                tile[m][v] = acc[m][v];
        for (int m = 0; m < mr; m++)
            for (int v = v0; v < VL; v++)
                dst[m * ld + v] = add ? dst[m * ld + v] + tile[m][v] : tile[m][v];
    }
}

/* axpy_tile for one row (batch 1): two sets of accumulators, even and odd
 * k, so that four chains of additions are in flight rather than two */
INLINE void axpy_row(float *restrict dst, int add, int v0, const float *restrict a, size_t ak,
                     const float *restrict b, size_t ldb, int K)
{
    float acc0[VL], acc1[VL];
    for (int v = 0; v < VL; v++)
        acc0[v] = acc1[v] = 0.0f;
    int k = 0;
    for (; k + 2 <= K; k += 2) {
        const float *b0 = b + (size_t)k * ldb, *b1 = b0 + ldb;
        float a0 = a[k * ak], a1 = a[(k + 1) * ak];
        for (int v = 0; v < VL; v++) {
            acc0[v] += a0 * b0[v];
            acc1[v] += a1 * b1[v];
        }
    }
    if (k < K) {
        const float *b0 = b + (size_t)k * ldb;
        float a0 = a[k * ak];
        for (int v = 0; v < VL; v++)
            acc0[v] += a0 * b0[v];
    }
    float tile[VL];
    for (int v = 0; v < VL; v++)
        tile[v] = acc0[v] + acc1[v];
    for (int v = v0; v < VL; v++)
        dst[v] = add ? dst[v] + tile[v] : tile[v];
}

static void axpy_tile_any(float *dst, size_t ld, int add, int v0, const float *a, size_t as, size_t ak,
                          const float *b, size_t ldb, int K, int mr)
{
    switch (mr) {
    case 8: axpy_tile(dst, ld, add, v0, a, as, ak, b, ldb, K, 8); break;
    case 7: axpy_tile(dst, ld, add, v0, a, as, ak, b, ldb, K, 7); break;
    case 6: axpy_tile(dst, ld, add, v0, a, as, ak, b, ldb, K, 6); break;
    case 5: axpy_tile(dst, ld, add, v0, a, as, ak, b, ldb, K, 5); break;
    case 4: axpy_tile(dst, ld, add, v0, a, as, ak, b, ldb, K, 4); break;
    case 3: axpy_tile(dst, ld, add, v0, a, as, ak, b, ldb, K, 3); break;
    case 2: axpy_tile(dst, ld, add, v0, a, as, ak, b, ldb, K, 2); break;
    default: axpy_row(dst, add, v0, a, ak, b, ldb, K); break;
    }
}

typedef struct linear_bwd_ctx {
    float *dx, *dw;
    const float *dy, *x, *w;
    int N, IN, OUT;
    int ntiles;                 /* feature tiles: ceil(IN / VL) */
    int ndx;                    /* d input tasks: ceil(N / BM) * ntiles, then d weight tasks */
    int assign;                 /* dw = (not +=) */
} linear_bwd_ctx;

HOT static void linear_bwd_task(void *arg, int task)
{
    const linear_bwd_ctx *c = arg;
    int d_input = task < c->ndx, t = d_input ? task : task - c->ndx;
    int it = t % c->ntiles, row0 = t / c->ntiles * BM;
    int i0 = it * VL < c->IN - VL ? it * VL : c->IN - VL;     /* the last tile overlaps */
    if (d_input) {
        /* dx[n][i] += sum over o of dy[n][o] * w[o][i] */
        int mr = c->N - row0 < BM ? c->N - row0 : BM;
        axpy_tile_any(c->dx + (size_t)row0 * c->IN + i0, (size_t)c->IN, 1, it * VL - i0,
                      c->dy + (size_t)row0 * c->OUT, (size_t)c->OUT, 1, c->w + i0, (size_t)c->IN,
                      c->OUT, mr);
    } else {
        /* dw[o][i] += sum over n of dy[n][o] * x[n][i] */
        int mr = c->OUT - row0 < BM ? c->OUT - row0 : BM;
        axpy_tile_any(c->dw + (size_t)row0 * c->IN + i0, (size_t)c->IN, !c->assign, it * VL - i0, c->dy + row0, 1,
                      (size_t)c->OUT, c->x + i0, (size_t)c->IN, c->N, mr);
    }
}

/* The plain loops, for layers narrower than a tile: each dy[n][o] times a
 * row of w added to dx, and times a row of x added to dw (assign: the first
 * sample's assigned), for the features [i0, i1). */
HOT static void bwd_rows(float *restrict dx, float *restrict dw, const float *restrict dy,
                         const float *restrict x, const float *restrict w, int N, int IN, int OUT,
                         int assign, int i0, int i1)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            float g = dy[(size_t)n * OUT + o];
            const float *wo = w + (size_t)o * IN, *xn = x + (size_t)n * IN;
            if (dx) {
                float *dxn = dx + (size_t)n * IN;
                for (int i = i0; i < i1; i++)
                    dxn[i] += g * wo[i];
            }
            if (dw) {
                float *dwo = dw + (size_t)o * IN;
                if (assign && n == 0)
                    for (int i = i0; i < i1; i++)
                        dwo[i] = g * xn[i];
                else
                    for (int i = i0; i < i1; i++)
                        dwo[i] += g * xn[i];
            }
        }
}

/* One or two samples (ns <= ROWS): the loops above for nv vectors of 16
 * features at i0, with x and the sums of dx in registers, so that w and
 * dw stream through once, a load and a store a vector: the same operations
 * on every element in the same order, so the same bits. With sgd (and
 * assign), the gradient is not stored but applied: w -= lr * dw, as
 * nnrt_sgd_step would, after dx has read the old w. */
enum { FV = 4 };        /* vectors of features per tile */
/* a's lanes where k is set, b's elsewhere */
#define BLEND(a, b, k) ((v16f)(((v16i)(a) & (k)) | ((v16i)(b) & ~(k))))
/* keep (nv 1): the last features when IN is not a multiple of 16, one
 * vector at i0 = IN - 16 that overlaps the tiles before; only its lanes in
 * keep are stored (the others, already final, are written back as they were) */
INLINE void bwd_small_tile(float *restrict dx, float *restrict dw, const float *restrict dy,
                           const float *restrict x, float *restrict w, int IN, int OUT, int assign,
                           int i0, int ns, int nv, int sgd, float lr, const v16i *keep)
{
    v16f xr[ROWS][FV], acc[ROWS][FV];
    for (int n = 0; n < ns; n++)
        for (int h = 0; h < nv; h++) {
            memcpy(&xr[n][h], x + (size_t)n * IN + i0 + 16 * h, sizeof xr[n][h]);
            if (dx)
                memcpy(&acc[n][h], dx + (size_t)n * IN + i0 + 16 * h, sizeof acc[n][h]);
            else
                acc[n][h] = (v16f){0};
        }
    for (int o = 0; o < OUT; o++) {
        float *wo = w + (size_t)o * IN + i0;
        float *dwo = dw ? dw + (size_t)o * IN + i0 : NULL;
        for (int h = 0; h < nv; h++) {
            v16f wv;
            memcpy(&wv, wo + 16 * h, sizeof wv);
            for (int n = 0; dx && n < ns; n++)
                acc[n][h] += dy[(size_t)n * OUT + o] * wv;
            if (!dw && !sgd)
                continue;
            v16f d, was = wv;
            if (!sgd && (keep || !assign))
                memcpy(&was, dwo + 16 * h, sizeof was);
            if (assign)
                d = dy[o] * xr[0][h];
            else
                d = was + dy[o] * xr[0][h];
            for (int n = 1; n < ns; n++)
                d += dy[(size_t)n * OUT + o] * xr[n][h];
            if (sgd)
                d = wv - lr * d;
            if (keep)
                d = BLEND(d, was, *keep);
            memcpy((sgd ? wo : dwo) + 16 * h, &d, sizeof d);
        }
    }
    for (int n = 0; dx && n < ns; n++)
        for (int h = 0; h < nv; h++) {
            float *o = dx + (size_t)n * IN + i0 + 16 * h;
            if (keep) {
                v16f old;
                memcpy(&old, o, sizeof old);
                acc[n][h] = BLEND(acc[n][h], old, *keep);
            }
            memcpy(o, &acc[n][h], sizeof acc[n][h]);
        }
}

#define SMALL_TILES(ns, sgd)                                                                      \
    switch (nv) {                                                                                 \
    case 4: bwd_small_tile(dx, dw, dy, x, w, IN, OUT, assign, i0, ns, 4, sgd, lr, NULL); break;   \
    case 3: bwd_small_tile(dx, dw, dy, x, w, IN, OUT, assign, i0, ns, 3, sgd, lr, NULL); break;   \
    case 2: bwd_small_tile(dx, dw, dy, x, w, IN, OUT, assign, i0, ns, 2, sgd, lr, NULL); break;   \
    default: bwd_small_tile(dx, dw, dy, x, w, IN, OUT, assign, i0, ns, 1, sgd, lr, NULL); break;  \
    }
/* w is written only with sgd (then assign is 1, dw is not written, and
 * b, if not NULL, is updated too) */
HOT static void bwd_small(float *restrict dx, float *restrict dw, const float *restrict dy,
                          const float *restrict x, float *restrict w, float *restrict b, int N, int IN,
                          int OUT, int assign, int sgd, float lr)
{
    for (int o = 0; sgd && b && o < OUT; o++) {
        float g = dy[o];
        for (int n = 1; n < N; n++)
            g += dy[(size_t)n * OUT + o];
        b[o] -= lr * g;
    }
    int iv = IN / 16 * 16;              /* the features in whole vectors; the rest below */
    for (int i0 = 0; i0 < iv; i0 += 16 * FV) {
        int nv = (iv - i0) / 16 < FV ? (iv - i0) / 16 : FV;
        if (sgd && N == 2)
            SMALL_TILES(2, 1)
        else if (sgd)
            SMALL_TILES(1, 1)
        else if (N == 2)
            SMALL_TILES(2, 0)
        else
            SMALL_TILES(1, 0)
    }
    if (iv < IN && IN >= 16) {          /* the rest: one vector that overlaps */
        v16i keep;
        last_features(&keep, IN);
        if (N == 2)
            bwd_small_tile(dx, dw, dy, x, w, IN, OUT, assign, IN - 16, 2, 1, sgd, lr, &keep);
        else
            bwd_small_tile(dx, dw, dy, x, w, IN, OUT, assign, IN - 16, 1, 1, sgd, lr, &keep);
        return;
    }
    if (!sgd) {
        bwd_rows(dx, dw, dy, x, w, N, IN, OUT, assign, iv, IN);
        return;
    }
    for (int o = 0; o < OUT; o++)       /* the rest, as the loops and the step */
        for (int i = iv; i < IN; i++) {
            float wv = w[(size_t)o * IN + i], d = dy[o] * x[i];
            for (int n = 0; dx && n < N; n++)
                dx[(size_t)n * IN + i] += dy[(size_t)n * OUT + o] * wv;
            for (int n = 1; n < N; n++)
                d += dy[(size_t)n * OUT + o] * x[(size_t)n * IN + i];
            w[(size_t)o * IN + i] = wv - lr * d;
        }
}

static void linear_backward(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                            int N, int IN, int OUT, int assign)
{
    if (db)
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OUT; o++)
                db[o] = assign && n == 0 ? dy[o] : db[o] + dy[(size_t)n * OUT + o];
    if (N <= ROWS) {                /* one or two samples */
        bwd_small(dx, dw, dy, x, (float *)w, NULL, N, IN, OUT, assign, 0, 0.0f);   /* w: read only */
        return;
    }
    if (IN < VL) {                  /* too narrow for a tile */
        bwd_rows(dx, dw, dy, x, w, N, IN, OUT, assign, 0, IN);
        return;
    }
    linear_bwd_ctx c = {dx, dw, dy, x, w, N, IN, OUT, (IN + VL - 1) / VL, 0, assign};
    c.ndx = dx ? (N + BM - 1) / BM * c.ntiles : 0;
    int ndw = dw ? (OUT + BM - 1) / BM * c.ntiles : 0;
    run(linear_bwd_task, &c, c.ndx + ndw, (double)N * IN * OUT * ((dx != NULL) + (dw != NULL)));
}

/* dx[N,IN] += dy[N,OUT] @ w[OUT,IN],  dw[OUT,IN] += dy^T @ x[N,IN],
 * db[OUT] += sum over n of dy; any of dx, dw, db may be NULL */
void nnrt_linear_backward(float *dx, float *dw, float *db, const float *dy,
                          const float *x, const float *w, int N, int IN, int OUT)
{
    linear_backward(dx, dw, db, dy, x, w, N, IN, OUT, 0);
}

void nnrt_linear_backward_first(float *dx, float *dw, float *db, const float *dy,
                                const float *x, const float *w, int N, int IN, int OUT)
{
    linear_backward(dx, dw, db, dy, x, w, N, IN, OUT, 1);
}

/* backward, then SGD on this layer: as nnrt_linear_backward_first (the
 * gradients were zero) and nnrt_sgd_step on w and b, with the same bits.
 * For one or two samples the update is made where backward reads w, and
 * dw is not written; else dw and db hold the gradients. */
void nnrt_linear_backward_sgd(float *dx, float *dw, float *db, const float *dy, const float *x, float *w,
                              float *b, int N, int IN, int OUT, float lr)
{
    if (N > ROWS) {
        linear_backward(dx, dw, db, dy, x, w, N, IN, OUT, 1);
        nnrt_sgd_step(w, dw, (size_t)OUT * IN, lr);
        if (b)
            nnrt_sgd_step(b, db, (size_t)OUT, lr);
        return;
    }
    bwd_small(dx, NULL, dy, x, w, b, N, IN, OUT, 1, 1, lr);
}
