/* conv2d_pooled.c — the backward of a convolution whose output a 2x2
 * max-pool reads (nnrt_conv2d_backward_pooled), computed from the pool's
 * choices without making the convolution's dense gradient.
 *
 * Why: of each 2x2 window of the convolution's output, the max-pool passes
 * a gradient to one pixel only (its choice: code 0-3 from
 * nnrt_maxpool2d_forward_argmax, or 255 for none when a ReLU is folded in).
 * So dy is three quarters zeros, and the dense backward
 * (conv2d_backward.c), which multiplies every zero, does four times the
 * work it needs. Here each
 * window's gradient g goes straight where it belongs: window (i, j) of out
 * channel k with choice (a, b) is output pixel p = 2i + a, q = 2j + b, and
 *   dx[c][p + r - pad_h][q + s - pad_w] += g * w[k][c][r][s]
 *   dw[k][c][r][s] += g * x[c][p + r - pad_h][q + s - pad_w]
 * for every in channel c and tap (r, s): LeNet's second convolution at
 * batch 1 does 60,000 multiply-adds each way instead of 240,000.
 *
 * Vectors of 16 floats: two columns of 8 in channels (at most 8), so a
 * window's row of S + 1 columns from 2j is (S + 1)/2 vectors, each read at
 * a constant distance from one address per window (S is a constant of the
 * code: 3, 5 or 7), and the sums stay in registers:
 *   d input: the weights are copied as wt[k][r][slot][c] = w[k][c][r][slot-1]
 *     (slot 0 and those past S zero), and dx is summed in dxt[padded row]
 *     [padded column][c] (scratch), then copied back into dx's layout.
 *     Window (i, j) with choice (a, b) reaches padded rows 2i .. 2i + S and
 *     columns 2j .. 2j + S: row 2i + e, pair j + v gets g * (kernel row
 *     e - a, slots 2v + 1 - b and 2v + 2 - b), two columns of taps or
 *     zeros. The (S + 1) x (S + 1)/2 sums stay in registers while every out
 *     channel's window (i, j) adds to them; the row e = 0 or S that the
 *     kernel does not reach (a = 1 or 0) is added under a zero mask.
 *   d weight: each sample's padded input is copied in that layout, twice
 *     (the second a column on, for b = 1: every read is a whole aligned
 *     vector), and out channel k's S x (S + 1)/2 sums of g * (row 2i + a + r,
 *     the pair of columns 2j + b + 2v) over its windows are dw[k][c][r][2v]
 *     and [2v + 1], transposed out at the end.
 *   With fewer than 4 in channels (LeNet's first convolution: 1), pairs of
 *   columns would leave most lanes empty: a kernel row of S taps is the
 *   lanes of a vector of 8 instead, read from x itself (no padding then).
 * The frame makes ((S + 1)/S)^2 more products than taps for d input,
 * (S + 1)/S for d weight, and 8 lanes hold C channels; both are cheaper
 * than the zeros of the dense path. The bias sums go 16 windows at a time.
 *
 * Sums are taken in an order that does not depend on the threads (d input
 * each sample by itself, d weight and d bias each out channel over the
 * samples in order), so the bits are the same with 1 thread or many; they
 * differ from the dense path's in the last bits. Taken on machines with
 * AVX-512 (32 vector registers) for square kernels of 3, 5 or 7, at most 8
 * in channels, stride and dilation 1, one group, an output of at least 32
 * pixels (conv_geometry's fast path), and a 2x2 max-pool of stride 2
 * without padding, in floor mode, over the whole output; the d weight by
 * kernel rows (fewer than 4 channels) without padding. conv2d.c chooses
 * (nnrt_conv2d_backward_pooled); tests/runtime/test_reference.c compares
 * it with the pool's backward followed by conv2d_ref.c's.
 */
#include "nnrt.h"

#include <stdint.h>
#include <string.h>

#include "kernel.h"

#ifdef NNRT_AVX512

enum {
    NONE = 255,         /* a window that passes no gradient */
    CL = SPARSE_CL,     /* in channels: lanes of a column */
};

/* r[v][m] = a[m][v], v, m < 8: rows of 8 floats transposed (unpacks, then
 * shuffles of pairs, then halves) */
__attribute__((target("avx512f,avx512vl,fma"), always_inline)) static inline void transpose8(__m256 *r,
                                                                                          const __m256 *a)
{
    __m256 t[8], u[8];
    for (int m = 0; m < 8; m += 2) {
        t[m] = _mm256_unpacklo_ps(a[m], a[m + 1]);
        t[m + 1] = _mm256_unpackhi_ps(a[m], a[m + 1]);
    }
    for (int m = 0; m < 8; m += 4) {
        u[m] = _mm256_shuffle_ps(t[m], t[m + 2], 0x44);
        u[m + 1] = _mm256_shuffle_ps(t[m], t[m + 2], 0xee);
        u[m + 2] = _mm256_shuffle_ps(t[m + 1], t[m + 3], 0x44);
        u[m + 3] = _mm256_shuffle_ps(t[m + 1], t[m + 3], 0xee);
    }
    for (int v = 0; v < 4; v++) {
        r[v] = _mm256_permute2f128_ps(u[v], u[v + 4], 0x20);
        r[v + 4] = _mm256_permute2f128_ps(u[v], u[v + 4], 0x31);
    }
}

/* wt[1 + k*S + r][slot][c] = w[k][c][r][slot - 1], zero at slot 0, past
 * slot S and in the lanes past C (and a row of zeros before and after):
 * each out channel's C x S*S weights transposed 8 taps at a time */
__attribute__((target("avx512f,avx512vl,fma"))) static void copy_w(float *wt, const float *w,
                                                                 const nnrt_conv2d_dims *d)
{
    int S = d->S, SL = conv_sparse_slots(S), T = S * S;
    size_t row = (size_t)SL * CL;
    __m256 z = _mm256_setzero_ps();
    for (size_t i = 0; i < row; i++)    /* the rows before and after */
        wt[i] = wt[((size_t)d->K * S + 1) * row + i] = 0.0f;
    for (int k = 0; k < d->K; k++) {
        float *wk = wt + (1 + (size_t)k * S) * row;
        for (int r = 0; r < S; r++) {   /* the zero slots */
            _mm256_storeu_ps(wk + r * row, z);
            for (int sl = S + 1; sl < SL; sl++)
                _mm256_storeu_ps(wk + r * row + (size_t)sl * CL, z);
        }
        for (int t0 = 0; t0 < T; t0 += 8) {
            int nt = T - t0 < 8 ? T - t0 : 8;
            __mmask8 m = (__mmask8)((1u << nt) - 1);
            __m256 a[8], r[8];
            for (int c = 0; c < 8; c++)
                a[c] = c < d->C ? _mm256_maskz_loadu_ps(m, w + ((size_t)k * d->C + c) * T + t0) : z;
            transpose8(r, a);
            for (int v = 0; v < nt; v++) {
                int t = t0 + v;
                _mm256_storeu_ps(wk + (t / S) * row + (size_t)(t % S + 1) * CL, r[v]);
            }
        }
    }
}

/* Window column j of window row i of sample n, every out channel: band
 * rows e0 .. e0+ne-1 of its S+1 rows from padded row 2i, pairs j .. j+NV-1,
 * added to dxt (rows of ldr floats). S is a constant where this is inlined. */
__attribute__((target("avx512f,avx512vl,fma"), always_inline)) static inline void
dx_window(float *dxt, size_t ldr, const float *pdy, const unsigned char *arg, const float *wt, size_t u,
          size_t PQ, int K, int i, int j, int e0, int ne, int S, __m512 *acc)
{
    int NV = (S + 1) / 2;
    size_t row = (size_t)conv_sparse_slots(S) * CL;
#pragma GCC unroll 64
    for (int t = 0; t < ne * NV; t++)
        acc[t] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++, u += PQ) {
        unsigned code = arg[u];
        int a = code >> 1 & 1, b = code & 1;
        /* g, or +0 where the window passes nothing (no branch: which
         * windows do is data) */
        __m512 g = _mm512_maskz_broadcastss_ps((__mmask16)-(code != NONE), _mm_load_ss(pdy + u));
        /* band row e is kernel row e - a: row 0 only when a = 0, row S
         * only when a = 1 (else the row next to it, masked); and the column
         * the kernel does not reach, 2j when b = 1 or 2j + S when b = 0, is
         * masked too (its products are zero, but an infinite g would make
         * them NaN where PyTorch adds nothing) */
        __mmask16 first = (__mmask16)(a - 1), last = (__mmask16)-a;
        __mmask16 left = (__mmask16)(b ? 0xff00 : 0xffff), right = (__mmask16)(b ? 0xffff : 0x00ff);
        const float *at = wt + (1 + (size_t)k * S + e0 - a) * row + (size_t)(1 - b) * CL;
#pragma GCC unroll 64
        for (int t = 0; t < ne * NV; t++) {
            int e = e0 + t / NV, v = t % NV;
            __mmask16 m = (__mmask16)((e == 0 ? first : e == S ? last : 0xffff) &
                                      (v == 0 ? left : 0xffff) & (v == NV - 1 ? right : 0xffff));
            __m512 p = _mm512_loadu_ps(at + (size_t)(t / NV) * row + (size_t)v * 2 * CL);
            acc[t] = _mm512_mask3_fmadd_ps(g, p, acc[t], m);
        }
    }
    float *o = dxt + (size_t)(2 * i + e0) * ldr + (size_t)j * 2 * CL;
#pragma GCC unroll 64
    for (int t = 0; t < ne * NV; t++) {
        float *q = o + (size_t)(t / NV) * ldr + (size_t)(t % NV) * 2 * CL;
        _mm512_storeu_ps(q, _mm512_add_ps(_mm512_loadu_ps(q), acc[t]));
    }
}

/* the tiles of band rows: up to 24 sums in registers, (S+1)/2 a row */
#define DX_WINDOW(S_, ne_)                                                                                   \
    {                                                                                                        \
        __m512 acc[(ne_) * (((S_) + 1) / 2)];                                                                \
        dx_window(dxt, ldr, pdy, arg, wt, u, PQ, d->K, i, j, e0, ne_, S_, acc);                              \
    }
__attribute__((target("avx512f,avx512vl,fma"))) static void dx_rows(float *dxt, size_t ldr, const float *pdy,
                                                                    const unsigned char *arg, const float *wt,
                                                                    size_t u, size_t PQ,
                                                                    const nnrt_conv2d_dims *d, int i, int j)
{
    switch (d->S) {
    case 3: {
        int e0 = 0;
        DX_WINDOW(3, 4)                 /* 4 rows of 2: 8 */
        break;
    }
    case 5: {
        int e0 = 0;
        DX_WINDOW(5, 6)                 /* 6 rows of 3: 18 */
        break;
    }
    default:
        for (int e0 = 0; e0 < 8; e0 += 4)
            DX_WINDOW(7, 4)             /* 8 rows of 4, in two: 16 */
        break;
    }
}

/* dx[c][h][x] = (d->assign_dx) or += src[h*ldr + x*CL + c]: 8 columns at a
 * time transposed */
__attribute__((target("avx512f,avx512vl,fma"))) static void to_planes(float *dx, const float *src, size_t ldr,
                                                                    const nnrt_conv2d_dims *d)
{
    size_t HW = (size_t)d->H * d->W;
    for (int h = 0; h < d->H; h++)
        for (int x0 = 0; x0 < d->W; x0 += 8) {
            int nx = d->W - x0 < 8 ? d->W - x0 : 8;
            __mmask8 m = (__mmask8)((1u << nx) - 1);
            __m256 a[8], r[8];
            for (int v = 0; v < 8; v++)
                a[v] = _mm256_maskz_loadu_ps((__mmask8)-(v < nx), src + (size_t)h * ldr + (size_t)(x0 + v) * CL);
            transpose8(r, a);
            for (int c = 0; c < d->C; c++) {
                float *o = dx + (size_t)c * HW + (size_t)h * d->W + x0;
                __m256 v = d->assign_dx ? r[c] : _mm256_add_ps(_mm256_maskz_loadu_ps(m, o), r[c]);
                _mm256_mask_storeu_ps(o, m, v);
            }
        }
}

/* dx of sample n: the windows into dxt (zeroed; this thread's scratch,
 * slot 0), then dxt into dx */
static void dx_sample(float *dx, const float *pdy, const unsigned char *arg, const float *wt,
                      const nnrt_conv2d_dims *d, const nnrt_pool2d_dims *pd, int n)
{
    int Hp = d->H + 2 * d->pad_h, Wp = d->W + 2 * d->pad_w;
    size_t ldr = (size_t)((Wp + 1) / 2 + 1) * 2 * CL, PQ = (size_t)pd->P * pd->Q;
    float *dxt = nnrt_scratch(0, conv_sparse_dxt(d));
    memset(dxt, 0, sizeof(float) * (size_t)Hp * ldr);
    for (int i = 0; i < pd->P; i++)
        for (int j = 0; j < pd->Q; j++)
            dx_rows(dxt, ldr, pdy, arg, wt, (size_t)n * d->K * PQ + (size_t)i * pd->Q + j, PQ, d, i, j);
    float *dxn = dx + (size_t)n * d->C * d->H * d->W;
    to_planes(dxn, dxt + (size_t)d->pad_h * ldr + (size_t)d->pad_w * CL, ldr, d);
}

typedef struct dx_job {
    float *dx;
    const float *pdy, *wt;
    const unsigned char *arg;
    const nnrt_conv2d_dims *d;
    const nnrt_pool2d_dims *pd;
} dx_job;

static void dx_task(void *arg, int n)
{
    const dx_job *j = arg;
    dx_sample(j->dx, j->pdy, j->arg, j->wt, j->d, j->pd, n);
}

/* whether d input is shared between threads: by sample, from NNRT_PAR_MACS
 * multiply-adds as the frame computes them */
static int dx_shared(const nnrt_conv2d_dims *d, const nnrt_pool2d_dims *pd)
{
    return d->N > 1 && (double)d->N * d->K * pd->P * pd->Q * (d->S + 1) * (d->S + 1) * CL >= NNRT_PAR_MACS;
}

int conv2d_sparse_dx_ok(const nnrt_pool2d_dims *pd, const nnrt_conv2d_dims *d)
{
    return has_avx512() && conv_sparse_shape(d) && pd->kh == 2 && pd->kw == 2 && pd->stride_h == 2 &&
           pd->stride_w == 2 && pd->pad_h == 0 && pd->pad_w == 0 && pd->H == d->P && pd->W == d->Q &&
           pd->P == d->P / 2 && pd->Q == d->Q / 2 && pd->C == d->K && pd->N == d->N;  /* (floor mode) */
}

void conv2d_sparse_dx(float *dx, const float *pdy, const unsigned char *arg, const nnrt_pool2d_dims *pd,
                      const float *w, const nnrt_conv2d_dims *d)
{
    float *wt = nnrt_scratch(2, conv_sparse_wt(d));
    copy_w(wt, w, d);
    dx_job j = {dx, pdy, wt, arg, d, pd};
    if (dx_shared(d, pd) && nnrt_threads() > 1) {
        nnrt_parallel(dx_task, &j, d->N);
        return;
    }
    for (int n = 0; n < d->N; n++)
        dx_task(&j, n);
}

/* ---- d weight ---- */

/* dst[h + pad_h][x + pad_w - shift][c] = x[c][h][x] (sample n's planes),
 * zero on the border and in the lanes past C: 8 columns at a time
 * transposed (shift 1: the copy whose pairs start at odd columns) */
__attribute__((target("avx512f,avx512vl,fma"))) static void from_planes(float *dst, size_t ldr, const float *x,
                                                                      const nnrt_conv2d_dims *d, int shift)
{
    size_t HW = (size_t)d->H * d->W, lo = (size_t)(d->pad_w - shift > 0 ? d->pad_w - shift : 0) * CL,
           hi = (size_t)(d->W + d->pad_w - shift) * CL;
    /* zeros: the rows of the border, and in the others the columns before
     * and after the image */
    memset(dst, 0, sizeof(float) * (size_t)d->pad_h * ldr);
    memset(dst + (size_t)(d->H + d->pad_h) * ldr, 0, sizeof(float) * (size_t)d->pad_h * ldr);
    for (int h = 0; h < d->H; h++) {
        float *row = dst + (size_t)(h + d->pad_h) * ldr;
        memset(row, 0, sizeof(float) * lo);
        memset(row + hi, 0, sizeof(float) * (ldr - hi));
    }
    for (int h = 0; h < d->H; h++)
        for (int x0 = 0; x0 < d->W; x0 += 8) {
            int nx = d->W - x0 < 8 ? d->W - x0 : 8;
            __mmask8 m = (__mmask8)((1u << nx) - 1);
            __m256 a[8], r[8];
            for (int c = 0; c < 8; c++)
                a[c] = c < d->C ? _mm256_maskz_loadu_ps(m, x + (size_t)c * HW + (size_t)h * d->W + x0)
                                : _mm256_setzero_ps();
            transpose8(r, a);
            float *o = dst + (size_t)(h + d->pad_h) * ldr;
            for (int v = 0; v < nx; v++)
                if (x0 + v + d->pad_w - shift >= 0)
                    _mm256_storeu_ps(o + (size_t)(x0 + v + d->pad_w - shift) * CL, r[v]);
        }
}

/* Out channel k's d weight over every window of every sample: the sums
 * acc[r][v] of g * (two columns of 8 channels of the padded input, row
 * 2i + a + r, from column 2j + b + 2v) are dw[k][c][r][2v], [2v + 1] (S
 * rows of NV = (S+1)/2 vectors in registers); xt: each sample's padded
 * input twice (from_planes, shifts 0 and 1: b = 1 reads the second, so
 * that every read is a whole aligned vector), xs floats apart. S is a
 * constant where inlined. */
__attribute__((target("avx512f,avx512vl,fma"), always_inline)) static inline void
dw_sums(const float *pdy, const unsigned char *arg, const float *xt, size_t xs, size_t ldr,
        const nnrt_conv2d_dims *d, const nnrt_pool2d_dims *pd, int k, int S, __m512 *acc)
{
    int NV = (S + 1) / 2;
    size_t PQ = (size_t)pd->P * pd->Q;
#pragma GCC unroll 64
    for (int t = 0; t < S * NV; t++)
        acc[t] = _mm512_setzero_ps();
    for (int n = 0; n < d->N; n++) {
        size_t u = ((size_t)n * d->K + k) * PQ;
        const float *xn = xt + (size_t)n * 2 * xs;
        for (int i = 0; i < pd->P; i++)
            for (int j = 0; j < pd->Q; j++, u++) {
                unsigned code = arg[u];
                int a = code >> 1 & 1, b = code & 1;
                __m512 g = _mm512_maskz_broadcastss_ps((__mmask16)-(code != NONE), _mm_load_ss(pdy + u));
                const float *at = xn + (size_t)b * xs + (size_t)(2 * i + a) * ldr + (size_t)2 * j * CL;
#pragma GCC unroll 64
                for (int t = 0; t < S * NV; t++)
                    acc[t] = _mm512_fmadd_ps(g, _mm512_loadu_ps(at + (size_t)(t / NV) * ldr + (size_t)(t % NV) * 2 * CL),
                                             acc[t]);
            }
    }
}

/* dw[k][c][r][s] += the sums (columns s of acc's rows, transposed) */
__attribute__((target("avx512f,avx512vl,fma"))) static void dw_out(float *dw, const __m512 *acc,
                                                                 const nnrt_conv2d_dims *d, int k)
{
    int S = d->S, NV = (S + 1) / 2;
    __mmask8 m = (__mmask8)((1u << S) - 1);
    for (int r = 0; r < S; r++) {
        __m256 a[8], t[8];
        for (int v = 0; v < 4; v++) {
            a[2 * v] = v < NV ? _mm512_castps512_ps256(acc[r * NV + v]) : _mm256_setzero_ps();
            a[2 * v + 1] = v < NV ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[r * NV + v]), 1))
                                  : _mm256_setzero_ps();
        }
        transpose8(t, a);
        for (int c = 0; c < d->C; c++) {
            float *o = dw + (((size_t)k * d->C + c) * S + r) * S;
            _mm256_mask_storeu_ps(o, m, _mm256_add_ps(_mm256_maskz_loadu_ps(m, o), t[c]));
        }
    }
}

/* M(..., S) for the kernel sizes taken, S a constant in each */
#define BY_S(M, ...)                                                                                         \
    switch (d->S) {                                                                                          \
    case 3: M(__VA_ARGS__, 3) break;                                                                         \
    case 5: M(__VA_ARGS__, 5) break;                                                                         \
    default: M(__VA_ARGS__, 7) break;                                                                        \
    }

#define DW_SUMS(unused_, S_)                                                                                 \
    {                                                                                                        \
        __m512 acc[(S_) * (((S_) + 1) / 2)];                                                                 \
        dw_sums(pdy, arg, xt, xs, ldr, d, pd, k, S_, acc);                                                   \
        dw_out(dw, acc, d, k);                                                                               \
    }
__attribute__((target("avx512f,avx512vl,fma"))) static void dw_channel(float *dw, const float *pdy,
                                                                     const unsigned char *arg, const float *xt,
                                                                     size_t xs, size_t ldr,
                                                                     const nnrt_conv2d_dims *d,
                                                                     const nnrt_pool2d_dims *pd, int k)
{
    BY_S(DW_SUMS, 0)
}

/* The d weight of out channel k for fewer than SPARSE_DW_CMIN in channels
 * (LeNet's first convolution), where pairs of columns would leave most
 * lanes empty, and no padding: a kernel row of taps in the lanes of 8
 * instead, read from x itself (masked: the lanes past S are not read),
 * acc[c*S + r] its sum over every window, whose lanes 0 .. S-1 are
 * dw[k][c][r][0 .. S-1]. C and S are constants where inlined. */
__attribute__((target("avx512f,avx512vl,fma"), always_inline)) static inline void
dw_narrow(float *dw, const float *pdy, const unsigned char *arg, const float *x, const nnrt_conv2d_dims *d,
          const nnrt_pool2d_dims *pd, int k, int C, int S, __m256 *acc)
{
    int W = d->W;
    size_t PQ = (size_t)pd->P * pd->Q, HW = (size_t)d->H * W;
    __mmask8 full = (__mmask8)((1u << S) - 1);
#pragma GCC unroll 32
    for (int t = 0; t < C * S; t++)
        acc[t] = _mm256_setzero_ps();
    for (int n = 0; n < d->N; n++) {
        size_t u = ((size_t)n * d->K + k) * PQ;
        const float *xn = x + (size_t)n * C * HW;
        for (int i = 0; i < pd->P; i++)
            for (int j = 0; j < pd->Q; j++, u++) {
                unsigned code = arg[u];
                int a = code >> 1 & 1, b = code & 1;
                __m256 g = _mm256_maskz_broadcastss_ps((__mmask8)-(code != NONE), _mm_load_ss(pdy + u));
                const float *at = xn + (size_t)(2 * i + a) * W + 2 * j + b;
#pragma GCC unroll 32
                for (int t = 0; t < C * S; t++)
                    acc[t] = _mm256_fmadd_ps(g, _mm256_maskz_loadu_ps(full, at + (size_t)(t / S) * HW + (size_t)(t % S) * W),
                                             acc[t]);
            }
    }
    float *o = dw + (size_t)k * C * S * S;
#pragma GCC unroll 32
    for (int t = 0; t < C * S; t++)
        _mm256_mask_storeu_ps(o + t * S, full, _mm256_add_ps(_mm256_maskz_loadu_ps(full, o + t * S), acc[t]));
}

#define DW_NARROW(C_, S_)                                                                                    \
    {                                                                                                        \
        __m256 acc[(C_) * (S_)];                                                                             \
        dw_narrow(dw, pdy, arg, x, d, pd, k, C_, S_, acc);                                                   \
    }
__attribute__((target("avx512f,avx512vl,fma"))) static void dw_channel_narrow(float *dw, const float *pdy,
                                                                            const unsigned char *arg,
                                                                            const float *x,
                                                                            const nnrt_conv2d_dims *d,
                                                                            const nnrt_pool2d_dims *pd, int k)
{
    switch (d->C) {
    case 1: BY_S(DW_NARROW, 1) break;
    case 2: BY_S(DW_NARROW, 2) break;
    default: BY_S(DW_NARROW, 3) break;
    }
}

/* db[k] += its windows' gradients: in 16 lanes, sample by sample, 16
 * windows at a time (masked), then the lanes added as a tree */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void bias_sum(float *db, const float *pdy,
                                                                        const unsigned char *arg,
                                                                        const nnrt_conv2d_dims *d,
                                                                        const nnrt_pool2d_dims *pd, int k)
{
    size_t PQ = (size_t)pd->P * pd->Q;
    __m512 sum = _mm512_setzero_ps();
    __m128i none = _mm_set1_epi8((char)NONE);
    for (int n = 0; n < d->N; n++)
        for (size_t u = ((size_t)n * d->K + k) * PQ, e = u + PQ; u < e; u += 16) {
            __mmask16 in = (__mmask16)(e - u < 16 ? (1u << (e - u)) - 1 : 0xffffu);
            __mmask16 pass = _mm_mask_cmpneq_epi8_mask(in, _mm_maskz_loadu_epi8(in, arg + u), none);
            sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(pass, pdy + u));
        }
    v16f lanes[8] = {(v16f)sum}, r;
    sum_lanes(&r, lanes);
    db[k] += r[0];
}

typedef struct dw_job {
    float *dw, *db;
    const float *pdy, *x;
    const unsigned char *arg;
    const float *xt;                    /* every sample's padded input (from_planes), or NULL: make it */
    nnrt_conv2d_dims d;
    nnrt_pool2d_dims pd;
} dw_job;

static size_t xt_ldr(const nnrt_conv2d_dims *d)
{
    return (size_t)((d->W + 2 * d->pad_w + 1) / 2 + 1) * 2 * CL;
}

/* every sample's padded input, in slot */
static const float *make_xt(const float *x, const nnrt_conv2d_dims *d, int slot)
{
    size_t xs = conv_sparse_dxt(d), in = (size_t)d->C * d->H * d->W;
    float *xt = nnrt_scratch(slot, 2 * xs * d->N);
    for (int n = 0; n < 2 * d->N; n++)
        from_planes(xt + (size_t)n * xs, xt_ldr(d), x + (size_t)(n / 2) * in, d, n % 2);
    return xt;
}

static void dw_task(void *arg, int k)
{
    const dw_job *j = arg;
    if (j->dw && j->d.C < SPARSE_DW_CMIN)
        dw_channel_narrow(j->dw, j->pdy, j->arg, j->x, &j->d, &j->pd, k);
    else if (j->dw)
        dw_channel(j->dw, j->pdy, j->arg, j->xt, conv_sparse_dxt(&j->d), xt_ldr(&j->d), &j->d, &j->pd, k);
    if (j->db)
        bias_sum(j->db, j->pdy, j->arg, &j->d, &j->pd, k);
}

/* left to a worker (d->defer_dw): its own copy of the input, slot 3 */
static dw_job later;

static void later_task(void *arg, int task)
{
    (void)task;
    dw_job j = *(const dw_job *)arg;
    if (j.dw && j.d.C >= SPARSE_DW_CMIN)
        j.xt = make_xt(j.x, &j.d, 3);
    for (int k = 0; k < j.d.K; k++)
        dw_task(&j, k);
}

int conv2d_sparse_dw_ok(const nnrt_pool2d_dims *pd, const nnrt_conv2d_dims *d)
{
    return conv2d_sparse_dx_ok(pd, d) && (d->C >= SPARSE_DW_CMIN || (d->pad_h == 0 && d->pad_w == 0));
}

void conv2d_sparse_dw(float *dw, float *db, const float *pdy, const unsigned char *arg, const nnrt_pool2d_dims *pd,
                      const float *x, const nnrt_conv2d_dims *d, int dx_after)
{
    dw_job j = {dw, db, pdy, x, arg, NULL, *d, *pd};
    /* multiply-adds, as the sums compute them: a window's S x (S+1)/2
     * vectors of 16, or by kernel rows C x S of 8 (twice, d input after) */
    double per = d->C < SPARSE_DW_CMIN ? (double)d->C * d->S * CL : (double)d->S * (d->S + 1) * CL;
    double macs = (double)d->N * d->K * pd->P * pd->Q * per * (dx_after ? 2 : 1);
    int threads = macs < NNRT_PAR_MACS / 2 ? 1 : nnrt_threads();
    /* left to a worker while d input is made here (LeNet's conv2 at batch
     * 1), unless d input shares its work between the threads */
    if (d->defer_dw && dx_after && d->N <= CONV_CHUNK && !dx_shared(d, pd) && nnrt_threads() > 1 &&
        nnrt_can_spawn()) {
        later = j;
        if (nnrt_spawn(later_task, &later, 1)) {
            size_t in = (size_t)d->C * d->H * d->W, win = (size_t)pd->P * pd->Q * d->K;
            nnrt_spawn_read(x, sizeof(float) * in * d->N);
            nnrt_spawn_read(pdy, sizeof(float) * win * d->N);
            nnrt_spawn_read(arg, win * d->N);
            return;
        }
    }
    if (dw && d->C >= SPARSE_DW_CMIN)
        j.xt = make_xt(x, d, 1);
    if (threads > 1)
        nnrt_parallel(dw_task, &j, d->K);
    else
        for (int k = 0; k < d->K; k++)
            dw_task(&j, k);
}

#else

int conv2d_sparse_dw_ok(const nnrt_pool2d_dims *pd, const nnrt_conv2d_dims *d)
{
    (void)pd, (void)d;
    return 0;
}

void conv2d_sparse_dw(float *dw, float *db, const float *pdy, const unsigned char *arg, const nnrt_pool2d_dims *pd,
                      const float *x, const nnrt_conv2d_dims *d, int dx_after)
{
    (void)dw, (void)db, (void)pdy, (void)arg, (void)pd, (void)x, (void)d, (void)dx_after;
}

int conv2d_sparse_dx_ok(const nnrt_pool2d_dims *pd, const nnrt_conv2d_dims *d)
{
    (void)pd, (void)d;
    return 0;
}

void conv2d_sparse_dx(float *dx, const float *pdy, const unsigned char *arg, const nnrt_pool2d_dims *pd,
                      const float *w, const nnrt_conv2d_dims *d)
{
    (void)dx, (void)pdy, (void)arg, (void)pd, (void)w, (void)d;
}

#endif
