/* conv2d_backward.c — the fast backward of a convolution (the shapes of
 * conv_geometry's fast path), which nnrt_conv2d_backward and
 * nnrt_conv2d_backward_pooled (conv2d.c) call; conv2d_ref.c has the plain
 * loops it must agree with.
 *
 *   - d input: the reverse of the forward's shifted reads: for each tap, the
 *     gradients of all out channels weighted and added into shifted
 *     gradient copies at the tap's offset (dcol_tile: up to MR in channels
 *     x 4 vectors of pixels, 3 from 7 channels, the last vector masked; the
 *     sum over out channels inside), which are then folded back into dx;
 *   - d weight: dw[k][t] = sum_j dy[k][j] * xs[off[t] + j], over a chunk of
 *     up to CHUNK samples; with CONV_KVMIN or more out channels per group,
 *     the out channels are the vector lanes (dwv_block: x is read a float
 *     at a time, from x itself, so without the shifted copies), else the
 *     pixels are and the lanes are summed at the end (dw_block);
 *   - d bias: each sample's sum of dy (sum_floats), added sample by sample.
 * The sums go in another order than the plain loops', so the last bits
 * differ (the tests compare within a tolerance).
 *
 * Work is cut into tasks for nnrt_parallel (parallel.c): by chunk of CHUNK
 * samples; or within a single chunk by sample (d input) and by runs of d
 * weight blocks; a first layer's single chunk (no d input) by slices of
 * out channels; and when the compiler allows it (defer_dw), a single
 * chunk's d weight is left running on a worker (nnrt_spawn) while the
 * caller computes d input and returns. Every output element is computed in
 * an order that does not depend on the number of threads, so results are
 * the same bits with 1 thread or many.
 *
 * The copies it reads (of dy, and of x shifted or padded) come from
 * nnrt_scratch: grown in the first training step, reused after.
 */
#include "nnrt.h"

#include <string.h>

#include "kernel.h"

enum {
    DVL = 64,       /* d input: pixels per tile, four vectors ... */
    DVL7 = 48,      /* ... three from 7 channels (the sums stay in registers) */
    MR = CONV_MR,   /* d input: in channels per tile */
    MW = 6,         /* d weight by rows: out channels per block ... */
    NW = 4,         /* ... times taps per block */
    LW = CONV_LW,   /* d weight by rows: the dot products go 16 pixels at a time */
    CHUNK = CONV_CHUNK, /* samples per chunk */
    KV = CONV_KV,   /* d weight by lanes: out channels per vector ... */
    NV = 8,         /* ... times taps per block */
};

/* the tasks on the pool's threads, or all here when threads is 1 */
static void run(void (*fn)(void *, int), void *ctx, int ntasks, int threads)
{
    if (threads > 1)
        nnrt_parallel(fn, ctx, ntasks);
    else
        for (int i = 0; i < ntasks; i++)
            fn(ctx, i);
}

/* One dot-product block of d weight:
 *   out[m][u] += sum over samples i < ns, pixels j < len of
 *                dyw[i][m*DK + j] * src[i][off[u] + j]
 * for m < mr, u < nu, computing nw >= nu taps (a short block: 1, 2 or NW).
 * dyw rows are zero from the real length to len (rounded up to LW), so the
 * rounding adds nothing. */
INLINE void dw_block(float *restrict out, int ldo, const float *const *dyw, int DK,
                     const float *const *src, const int *restrict off, int len, int ns, int mr,
                     int nw, int nu)
{
    v16f acc[MW][NW];                   /* LW = 16 lanes */
    for (int m = 0; m < mr; m++)
        for (int u = 0; u < nw; u++)
            acc[m][u] = (v16f){0};
    for (int i = 0; i < ns; i++) {
        const float *su[NW];
        for (int u = 0; u < nw; u++)
            su[u] = src[i] + off[u];
        for (int j = 0; j < len; j += LW) {
            v16f xu[NW];
            for (int u = 0; u < nw; u++)
                memcpy(&xu[u], su[u] + j, sizeof xu[u]);
            for (int m = 0; m < mr; m++) {
                v16f dm;
                memcpy(&dm, dyw[i] + (size_t)m * DK + j, sizeof dm);
                for (int u = 0; u < nw; u++)
                    acc[m][u] += dm * xu[u];
            }
        }
    }
    /* the lanes added as a tree (sum_lanes), 8 sums at a time */
    for (int e0 = 0; e0 < mr * NW; e0 += 8) {
        v16f a[8], sums;
        for (int e = 0; e < 8; e++) {
            int m = (e0 + e) / NW, u = (e0 + e) % NW;
            a[e] = m < mr && u < nw ? acc[m][u] : (v16f){0};
        }
        sum_lanes(&sums, a);
        for (int e = 0; e < 8; e++) {
            int m = (e0 + e) / NW, u = (e0 + e) % NW;
            if (m < mr && u < nu)
                out[m * ldo + u] += sums[e];
        }
    }
}

/* The other d weight: out channels as the vector lanes, for layers with
 * enough of them (Kg >= CONV_KVMIN), so no sums across lanes are needed:
 *   acc[u][v] = sum over samples i, pixels (p, q) of src[i][off[u] + p*Wp + q] * dyt[i][(p*Q + q)*KV + v]
 *   dw[v*T + u] += acc[u][v]  for v < kv, u < nu
 * dyt is dy transposed to [pixel][out channel], zero in the lanes past
 * Kg. The input is read a float at a time, so it needs no shifted copies:
 * src is x itself (or x with its zero border, rows of Wp), off[u] a tap's
 * place in it. NV = 8 taps are computed (a short block repeats
 * its last tap) and nu of them kept; the taps are spelled out, which is what
 * makes GCC keep the 8 sums in registers. */
INLINE void dwv_block(float *restrict dw, int T, int kv, const float *const *dyt,
                      const float *const *src, const int *restrict off, int P, int Q, int Wp, int ns, int nu)
{
    float acc[NV][KV];
    for (int u = 0; u < NV; u++)
        for (int v = 0; v < KV; v++)
            acc[u][v] = 0.0f;
    for (int i = 0; i < ns; i++)
        for (int p = 0; p < P; p++) {   /* output row p: input rows from p (and the tap's) */
            const float *sp = src[i] + (size_t)p * Wp;
            const float *s0 = sp + off[0], *s1 = sp + off[1], *s2 = sp + off[2], *s3 = sp + off[3];
            const float *s4 = sp + off[4], *s5 = sp + off[5], *s6 = sp + off[6], *s7 = sp + off[7];
            const float *dp = dyt[i] + (size_t)p * Q * KV;
            for (int q = 0; q < Q; q++) {
                const float *dv = dp + (size_t)q * KV;
                float x0 = s0[q], x1 = s1[q], x2 = s2[q], x3 = s3[q];
                float x4 = s4[q], x5 = s5[q], x6 = s6[q], x7 = s7[q];
                for (int v = 0; v < KV; v++) {
                    acc[0][v] += x0 * dv[v];
                    acc[1][v] += x1 * dv[v];
                    acc[2][v] += x2 * dv[v];
                    acc[3][v] += x3 * dv[v];
                    acc[4][v] += x4 * dv[v];
                    acc[5][v] += x5 * dv[v];
                    acc[6][v] += x6 * dv[v];
                    acc[7][v] += x7 * dv[v];
                }
            }
        }
    float tile[NV][KV];                 /* via memory: acc stays in registers above */
    for (int u = 0; u < NV; u++)
        for (int v = 0; v < KV; v++)
            tile[u][v] = acc[u][v];
    for (int u = 0; u < nu; u++)
        for (int v = 0; v < kv; v++)
            dw[(size_t)v * T + u] += tile[u][v];
}

typedef struct bwd_ctx {
    float *dx, *dw, *db;
    const float *dy, *x;
    const nnrt_conv2d_dims *d;
    const conv_geom *g;
    const float *pdy;       /* pooled: dy is the backward of a max-pool, given its pdy */
    const unsigned char *parg;  /* ... and its choices */
    const nnrt_pool2d_dims *pd;
    int n0, ns;             /* the chunk: samples n0 .. n0+ns-1 */
    float *dyp;             /* [ns][K][DK]: dy, zeros after each channel (d input; d weight by rows) */
    float *dyt;             /* [ns][G][nkv][L][KV]: dy transposed (d weight by lanes) */
    float *xs;              /* d weight by rows: [ns][XS], the shifted copies of x; by lanes:
                             * [ns][XP], x padded, or NULL (no padding: x itself) */
    float *dbs;             /* [ns][K]: each sample's sum of dy (when db) */
    const float *w;         /* d input's weights, [K][Cg][R][S] */
    const int *off;         /* d weight: tap offsets (c, r, s) in xs, [T]; by lanes, in x padded */
    int dx_parts;           /* d input tasks: ns * dx_parts, each a range of channel blocks */
    int lanes;              /* d weight by lanes (dwv_block) rather than by rows (dw_block) */
    int wkb, wtb;           /* d weight: G * wkb * wtb blocks ... */
    int nwblocks, wper;    /* ... (that many), wper a task */
    int mw;                 /* d weight by rows: out channels a block (MW, or fewer: slices) */
    int pk0, pk1;           /* prep: the out channels whose dy (and bias sums) it makes */
} bwd_ctx;

/* prep task i: sample n0 + i's dy copy (either layout), shifted copies of x
 * and bias sums. Pooled, dy is made here, in dyp, and the rest read it there. */
HOT static void bwd_prep(void *arg, int i)
{
    const bwd_ctx *c = arg;
    const nnrt_conv2d_dims *d = c->d;
    const conv_geom *g = c->g;
    int n = c->n0 + i, PQ = d->P * d->Q;
    size_t ld = (size_t)PQ;             /* dyn's channels are ld apart */
    const float *dyn = c->dy ? c->dy + (size_t)n * d->K * PQ : NULL;
    if (c->dyp) {
        float *dyp = c->dyp + (size_t)i * d->K * g->DK;
        size_t pq = c->pd ? (size_t)c->pd->P * c->pd->Q : 0;
        for (int k = c->pk0; k < c->pk1; k++) {     /* each channel, and zeros up to DK */
            float *o = dyp + (size_t)k * g->DK;
            size_t nk = (size_t)n * d->K + k;
            if (c->pdy)
                maxpool_plane_backward(o, c->pdy + nk * pq, c->parg + nk * pq, c->pd);
            else
                memcpy(o, dyn + (size_t)k * PQ, sizeof(float) * (size_t)PQ);
            for (int j = PQ; j < g->DK; j++)
                o[j] = 0.0f;
        }
        if (c->pdy)
            dyn = dyp, ld = (size_t)g->DK;
    }
    if (c->dyt) {
        int nkv = (g->Kg + KV - 1) / KV;
        float *dyt = c->dyt + (size_t)i * g->G * nkv * g->L * KV;
        for (int gi = 0; gi < g->G; gi++)   /* zeros in the lanes past the group's channels */
            for (int kb = 0; kb < nkv; kb++) {
                int k0 = kb * KV, kv = g->Kg - k0 < KV ? g->Kg - k0 : KV;
                conv_to_lanes(dyt + ((size_t)gi * nkv + kb) * g->L * KV, dyn + (size_t)(gi * g->Kg + k0) * ld, ld,
                         kv, PQ);
            }
    }
    if (c->xs && !c->lanes)
        conv_shift_input(c->xs + (size_t)i * g->XS, c->x, n, d, g);
    if (c->xs && c->lanes)
        conv_pad_input(c->xs + (size_t)i * g->XP, c->x + (size_t)n * d->C * d->H * d->W, d, g);
    if (c->dbs)
        for (int k = c->pk0; k < c->pk1; k++)
            c->dbs[(size_t)i * d->K + k] = sum_floats(dyn + (size_t)k * ld, PQ);
}

/* The d input tile, for mr input channels at one kernel tap (r, s):
 *   dst[m*CH + v] += sum over k < K of a[k*ak + m*am] * dyw[k*DK + v]
 * (a: the weights w[k][c][r][s] themselves, read in place: a at in
 * channel c, ak and am the out and in channel strides)
 * for m < mr and v < n, n in (16*(nv-1), 16*nv], where dst is the tile's
 * place in the padded input: each input pixel gets the products of the
 * out-channel gradients that read it through this tap. The mr channels are
 * CH apart, so the tile's additions never overlap one another. The last
 * vector computes 16 lanes (dyw's rows have zeros up to DK) and writes
 * back, unchanged, the lanes of dst past n, which may lie past the plane
 * (the scratch has LW floats to spare). Vectors as in corr_tile
 * (conv2d_forward.c). */
INLINE void dcol_tile(float *restrict dst, int CH, const float *restrict dyw, int DK,
                      const float *restrict a, size_t ak, size_t am, int K, int mr, int nv, int n)
{
    v16f acc[MR][4], y[4];
    for (int h = 0; h < nv; h++)
        memcpy(&y[h], dyw + 16 * h, sizeof y[h]);
    for (int m = 0; m < mr; m++)        /* k = 0 (K >= 1) */
        for (int h = 0; h < nv; h++)
            acc[m][h] = a[m * am] * y[h];
    for (int k = 1; k < K; k++) {
        for (int h = 0; h < nv; h++)
            memcpy(&y[h], dyw + (size_t)k * DK + 16 * h, sizeof y[h]);
        const float *wk = a + k * ak;
        for (int m = 0; m < mr; m++)
            for (int h = 0; h < nv; h++)
                acc[m][h] += wk[m * am] * y[h];
    }
    v16i lane, keep;                    /* the last vector's lanes past n */
    for (int v = 0; v < 16; v++)
        lane[v] = v;
    keep = lane >= n - 16 * (nv - 1);
    for (int m = 0; m < mr; m++)
        for (int h = 0; h < nv; h++) {
            float *o = dst + (size_t)m * CH + 16 * h;
            v16f d, sum;
            memcpy(&d, o, sizeof d);
            sum = acc[m][h] + d;
            if (h == nv - 1)
                sum = (v16f)(((v16i)sum & ~keep) | ((v16i)d & keep));
            memcpy(o, &sum, sizeof d);
        }
}

/* dcol_tile for any mr in 1 .. MR and any n in 1 .. 16*nv, nv <= 4 (3 from
 * 7 channels: the sums stay in registers) */
#define DCOL_TILE(mr, nv) dcol_tile(dst, CH, dyw, DK, a, ak, am, K, mr, nv, n)
#define DCOL_NV(mr)                                                                                          \
    switch (nv) {                                                                                            \
    case 4: DCOL_TILE(mr, 4); break;                                                                         \
    case 3: DCOL_TILE(mr, 3); break;                                                                         \
    case 2: DCOL_TILE(mr, 2); break;                                                                         \
    default: DCOL_TILE(mr, 1); break;                                                                        \
    }
#define DCOL_NV3(mr)                                                                                         \
    switch (nv) {                                                                                            \
    case 3: DCOL_TILE(mr, 3); break;                                                                         \
    case 2: DCOL_TILE(mr, 2); break;                                                                         \
    default: DCOL_TILE(mr, 1); break;                                                                        \
    }
static void dcol_tile_any(float *dst, int CH, int n, const float *dyw, int DK, const float *a, size_t ak, size_t am,
                          int K, int mr)
{
    int nv = (n + 15) / 16;
    switch (mr) {
    case 8: DCOL_NV3(8) break;
    case 7: DCOL_NV3(7) break;
    case 6: DCOL_NV(6) break;
    case 5: DCOL_NV(5) break;
    case 4: DCOL_NV(4) break;
    case 3: DCOL_NV(3) break;
    case 2: DCOL_NV(2) break;
    default: DCOL_NV(1) break;
    }
}

/* The fold of bwd_dx, for mr channels: dx[m][h][w] += dxs[s][m][h + pad_h][q]
 * for each kernel column s in order, w = q + sh, sh = s*dil_w - pad_w, over
 * the q in [0, Q) whose w is in [0, W) (dxs: blocks of SB floats a column) */
static void fold(float *restrict dx, const float *restrict dxs, int mr, size_t SB, const nnrt_conv2d_dims *d,
                 const conv_geom *g)
{
    for (int sc = 0; sc < d->S; sc++) {
        int sh = sc * d->dil_w - d->pad_w;
        int q0 = sh < 0 ? -sh : 0, q1 = d->W - sh < d->Q ? d->W - sh : d->Q;
        for (int m = 0; m < mr; m++)
            for (int h = 0; h < d->H; h++) {
                float *o = dx + ((size_t)m * d->H + h) * d->W + sh;
                const float *src = dxs + sc * SB + (size_t)m * g->PL + (size_t)(h + d->pad_h) * d->Q;
                for (int q = q0; q < q1; q++)
                    o[q] += src[q];
            }
    }
}

#ifdef NNRT_AVX512
/* The same with AVX-512, which the compiler leaves scalar for LeNet's rows
 * of 10: a row of dx is held in registers, 16 columns at a time, and each
 * kernel column's row is added under a mask, in the same order; the lanes
 * a column does not reach keep their value (-0 stays -0), so the bits are
 * the loops'. assign: dx = the fold, from zeros (no zeroing pass, and no
 * load of dx, whose masked loads after the masked stores to the row before
 * wait for them). */
__attribute__((target("avx512f"))) static void fold_avx512(float *dx, const float *dxs, int mr, size_t SB,
                                                          const nnrt_conv2d_dims *d, const conv_geom *g,
                                                          int assign)
{
    enum { SMAX = 32 };                 /* kernel columns with their masks at hand */
    __mmask16 ms[SMAX];
    ptrdiff_t at[SMAX];
    if (d->S > SMAX) {                  /* wider kernels: the loops */
        if (assign)
            memset(dx, 0, sizeof(float) * (size_t)mr * d->H * d->W);
        fold(dx, dxs, mr, SB, d, g);
        return;
    }
    for (int w0 = 0; w0 < d->W; w0 += 16) {
        int nw = d->W - w0 < 16 ? d->W - w0 : 16, nc = 0;
        __mmask16 mo = (__mmask16)((1u << nw) - 1);
        /* the kernel columns that reach these 16 columns, in order: their
         * lanes and where lane 0 reads (masked lanes are not read) */
        for (int sc = 0; sc < d->S; sc++) {
            int sh = sc * d->dil_w - d->pad_w;
            int q0 = sh < 0 ? -sh : 0, q1 = d->W - sh < d->Q ? d->W - sh : d->Q;
            int lo = q0 + sh - w0, hi = q1 + sh - w0;  /* the lanes w - w0 it reaches */
            lo = lo < 0 ? 0 : lo, hi = hi > 16 ? 16 : hi;
            if (hi <= lo)
                continue;
            ms[nc] = (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
            at[nc++] = (ptrdiff_t)sc * (ptrdiff_t)SB + w0 - sh;
        }
        for (int m = 0; m < mr; m++)
            for (int h = 0; h < d->H; h++) {
                float *o = dx + ((size_t)m * d->H + h) * d->W + w0;
                const float *row = dxs + (size_t)m * g->PL + (size_t)(h + d->pad_h) * d->Q;
                __m512 acc = assign ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mo, o);
                for (int i = 0; i < nc; i++)
                    acc = _mm512_mask_add_ps(acc, ms[i], acc, _mm512_maskz_loadu_ps(ms[i], row + at[i]));
                _mm512_mask_storeu_ps(o, mo, acc);
            }
    }
}
#endif

/* d input of one sample's share (part: a range of the (group, block of MR
 * in channels) pairs, whose channels no other part touches). The backward
 * of the shifted reads: tap (c, r, s) of output pixel j read the shifted
 * copy s at j + r*dil_h*Q, so
 *   dxs[s][c][j + r*dil_h*Q] += sum over k of w[k][c][r][s] * dy[k][j]
 * tap by tap into zeroed shifted gradients dxs (scratch), which are then
 * folded back: dx[c][h][w] += dxs[s][c][h + pad_h][w + pad_w - s*dil_w]
 * over the kernel columns s whose q = w + pad_w - s*dil_w is in [0, Q). */
static void bwd_dx(const bwd_ctx *c, int i, int part)
{
    const nnrt_conv2d_dims *d = c->d;
    const conv_geom *g = c->g;
    int n = c->n0 + i, RS = d->R * d->S, ncb = (g->Cg + MR - 1) / MR, units = g->G * ncb;
    int u0 = (int)((long)units * part / c->dx_parts), u1 = (int)((long)units * (part + 1) / c->dx_parts);
    int dvl = g->Cg < 7 ? DVL : DVL7, ntiles = (g->L + dvl - 1) / dvl;
    size_t SB = (size_t)MR * g->PL;     /* floats of one kernel column's block of dxs */
    float *dxn = c->dx + (size_t)n * d->C * d->H * d->W;
    float *dxs = nnrt_scratch(0, (size_t)d->S * SB + LW);
    for (int u = u0; u < u1; u++) {
        int cb = u % ncb, gi = u / ncb, c0 = gi * g->Cg + cb * MR;
        int mr = g->Cg - cb * MR < MR ? g->Cg - cb * MR : MR;
        const float *dyw = c->dyp + ((size_t)i * d->K + (size_t)gi * g->Kg) * g->DK;
        for (int sc = 0; sc < d->S; sc++)   /* the mr channels' planes */
            memset(dxs + sc * SB, 0, sizeof(float) * (size_t)mr * g->PL);
        for (int rs = 0; rs < RS; rs++) {
            float *dc = dxs + (size_t)(rs % d->S) * SB + (size_t)(rs / d->S) * d->dil_h * d->Q;
            const float *a = c->w + ((size_t)gi * g->Kg * g->Cg + cb * MR) * RS + rs;
            for (int it = 0; it < ntiles; it++) {
                int j0 = it * dvl, nl = g->L - j0 < dvl ? g->L - j0 : dvl;
                dcol_tile_any(dc + j0, g->PL, nl, dyw + j0, g->DK, a, (size_t)g->Cg * RS, (size_t)RS, g->Kg, mr);
            }
        }
#ifdef NNRT_AVX512
        if (has_avx512()) {
            fold_avx512(dxn + (size_t)c0 * d->H * d->W, dxs, mr, SB, d, g, d->assign_dx);
            continue;
        }
#endif
        if (d->assign_dx)                       /* dx = the fold: zeroed here, where it is hot */
            memset(dxn + (size_t)c0 * d->H * d->W, 0, sizeof(float) * (size_t)mr * d->H * d->W);
        fold(dxn + (size_t)c0 * d->H * d->W, dxs, mr, SB, d, g);
    }
}

/* the input the d weight reads for sample i of the chunk, group gi */
static const float *dw_source(const bwd_ctx *c, int i, int gi)
{
    const conv_geom *g = c->g;
    if (!c->lanes)
        return c->xs + (size_t)i * g->XS + (size_t)gi * g->Cg * g->PL;
    const float *xp = c->xs ? c->xs + (size_t)i * g->XP
                            : c->x + (size_t)(c->n0 + i) * c->d->C * c->d->H * c->d->W;
    return xp + (size_t)gi * g->Cg * g->Hp * g->Wp;
}

/* d weight of one block, summed over the chunk: by rows, (group, 4 out
 * channels, 4 taps); by lanes, (group, KV out channels, NV taps) */
static void bwd_dw(const bwd_ctx *c, int blk)
{
    const nnrt_conv2d_dims *d = c->d;
    const conv_geom *g = c->g;
    int tb = blk % c->wtb, kb = blk / c->wtb % c->wkb, gi = blk / c->wtb / c->wkb;
    const float *src[CHUNK];
    for (int i = 0; i < c->ns; i++)
        src[i] = dw_source(c, i, gi);
    if (c->lanes) {
        int k0 = kb * KV, kv = g->Kg - k0 < KV ? g->Kg - k0 : KV;
        int t0 = tb * NV, nu = g->T - t0 < NV ? g->T - t0 : NV;
        int nkv = (g->Kg + KV - 1) / KV, off[NV];
        const float *dyt[CHUNK];
        for (int i = 0; i < c->ns; i++)
            dyt[i] = c->dyt + (((size_t)i * g->G + gi) * nkv + kb) * g->L * KV;
        for (int u = 0; u < NV; u++)
            off[u] = c->off[t0 + (u < nu ? u : nu - 1)];
        float *out = c->dw + (size_t)(gi * g->Kg + k0) * g->T + t0;
        dwv_block(out, g->T, kv, dyt, src, off, d->P, d->Q, g->Wp, c->ns, nu);
        return;
    }
    int k0 = kb * c->mw, mr = g->Kg - k0 < c->mw ? g->Kg - k0 : c->mw;
    int t0 = tb * NW, nu = g->T - t0 < NW ? g->T - t0 : NW;
    int k = gi * g->Kg + k0, len = (g->L + LW - 1) / LW * LW;
    const float *dyw[CHUNK];
    for (int i = 0; i < c->ns; i++)
        dyw[i] = c->dyp + ((size_t)i * d->K + k) * g->DK;
    int off[NW];
    for (int u = 0; u < NW; u++)
        off[u] = c->off[t0 + (u < nu ? u : nu - 1)];   /* a short block repeats its last tap */
    float *out = c->dw + (size_t)k * g->T + t0;
    /* a short block computes 1, 2 or NW taps (LeNet's conv1: 25 taps, the
     * last block 1 of them) */
#define DW_BLOCK(mr)                                                                                         \
    (nu == 1   ? dw_block(out, g->T, dyw, g->DK, src, off, len, c->ns, mr, 1, 1)                             \
     : nu == 2 ? dw_block(out, g->T, dyw, g->DK, src, off, len, c->ns, mr, 2, 2)                             \
               : dw_block(out, g->T, dyw, g->DK, src, off, len, c->ns, mr, NW, nu))
    switch (mr) {
    case 6: DW_BLOCK(6); break;
    case 5: DW_BLOCK(5); break;
    case 4: DW_BLOCK(4); break;
    case 3: DW_BLOCK(3); break;
    case 2: DW_BLOCK(2); break;
    default: DW_BLOCK(1); break;
    }
#undef DW_BLOCK
}

/* main task: the d input tasks first, then the d weight blocks */
HOT static void bwd_task(void *arg, int task)
{
    const bwd_ctx *c = arg;
    int ndx = c->dx ? c->ns * c->dx_parts : 0;
    if (task < ndx) {
        bwd_dx(c, task / c->dx_parts, task % c->dx_parts);
        return;
    }
    int nw = c->nwblocks, b0 = (task - ndx) * c->wper;
    for (int b = b0; b < b0 + c->wper && b < nw; b++)
        bwd_dw(c, b);
}

/* With two chunks or more and threads to share them, each task is a whole
 * chunk of CHUNK samples (its copies, d input, d weight and bias sums),
 * in the task's own scratch, its d weight into a partial sum of its own;
 * the partials are added to dw in chunk order afterwards, which is the
 * order and the arithmetic of the chunk-by-chunk loop (dw + partial, where
 * partial = 0 + the chunk's sum, is dw + the chunk's sum), so the results
 * are the same bits either way. One hand-over per layer instead of two per
 * chunk, and no thread waits for the slowest block of a chunk. */
typedef struct chunk_job {
    bwd_ctx base;           /* the shared part; the chunk's fields are set per task */
    float *pdw;             /* [nchunks][K*T]: each chunk's d weight */
    float *dbs;             /* [N][K]: each sample's sum of dy */
    size_t ndyp, ndyt, nxs; /* per chunk: floats of each copy */
    int nw;                 /* d weight blocks */
} chunk_job;

HOT static void bwd_chunk_task(void *arg, int ci)
{
    const chunk_job *j = arg;
    bwd_ctx c = j->base;
    const nnrt_conv2d_dims *d = c.d;
    size_t KT = (size_t)d->K * c.g->T;
    c.n0 = ci * CHUNK;
    c.ns = d->N - c.n0 < CHUNK ? d->N - c.n0 : CHUNK;
    float *buf = nnrt_scratch(3, j->ndyp + j->ndyt + j->nxs);
    c.dyp = j->ndyp ? buf : NULL;
    c.dyt = j->ndyt ? buf + j->ndyp : NULL;
    c.xs = j->nxs ? buf + j->ndyp + j->ndyt : NULL;
    c.dbs = c.db ? j->dbs + (size_t)c.n0 * d->K : NULL;
    c.dx_parts = 1;
    if (c.dw) {
        c.dw = j->pdw + (size_t)ci * KT;
        for (size_t e = 0; e < KT; e++)
            c.dw[e] = 0.0f;
    }
    for (int i = 0; i < c.ns; i++)
        bwd_prep(&c, i);
    for (int i = 0; c.dx && i < c.ns; i++)
        bwd_dx(&c, i, 0);
    for (int blk = 0; blk < j->nw; blk++)
        bwd_dw(&c, blk);
}

/* A task's own copies for d weight, in its thread's scratch (slot 3): dy
 * (either layout), x copied, the bias sums; then extra floats, returned */
static float *own_copies(bwd_ctx *c, size_t extra)
{
    conv_bwd_sizes z;
    conv_backward_sizes(&z, c->d, c->g, 0, 1, c->db != NULL);
    float *buf = nnrt_scratch(3, z.one_chunk + extra);
    c->dyp = z.ndyp ? buf : NULL;
    c->dyt = z.ndyt ? buf + z.ndyp : NULL;
    c->xs = z.nxs ? buf + z.ndyp + z.ndyt : NULL;
    c->dbs = c->db ? buf + z.ndyp + z.ndyt + z.nxs : NULL;
    return buf + z.one_chunk;
}

/* db[k] += the chunk's bias sums of the channels c prepared, sample by sample */
static void add_bias_sums(const bwd_ctx *c)
{
    for (int i = 0; c->db && i < c->ns; i++)
        for (int k = c->pk0; k < c->pk1; k++)
            c->db[k] += c->dbs[(size_t)i * c->d->K + k];
}

/* The first layer's backward (d weight only, by rows, one group) of one
 * chunk, shared between threads by out channels: task p takes the channels
 * of d weight block row p (c->mw of them), with copies of its own (those
 * channels' dy, the shifted copies of x) in its thread's scratch, slot 3,
 * so that no copy crosses between the cores. Each d weight sum is the one
 * the other paths make, so are the bits. */
HOT static void bwd_slice_task(void *arg, int p)
{
    bwd_ctx c = *(const bwd_ctx *)arg;
    own_copies(&c, 0);
    c.pk0 = p * c.mw;
    c.pk1 = c.pk0 + c.mw < c.d->K ? c.pk0 + c.mw : c.d->K;
    for (int i = 0; i < c.ns; i++)
        bwd_prep(&c, i);
    for (int tb = 0; tb < c.wtb; tb++)
        bwd_dw(&c, p * c.wtb + tb);
    add_bias_sums(&c);
}

/* d weight and d bias left running on a worker (nnrt_conv2d_dims.defer_dw)
 * while the caller computes d input and goes on to the layers before: the
 * job, with copies of what it points to, kept here until the join (one at
 * a time). The worker makes its own copies of dy (and x) in its own
 * scratch, slot 3, with the same tasks as the one-chunk path, so the bits
 * are the same. */
static struct later {
    bwd_ctx c;
    nnrt_conv2d_dims d;
    nnrt_pool2d_dims pd;
    conv_geom g;
} later;

HOT static void bwd_later(void *arg, int task)
{
    (void)task;
    bwd_ctx c = ((const struct later *)arg)->c;
    int *off = (int *)own_copies(&c, (size_t)c.g->T);
    if (c.lanes)
        conv_pixel_offsets(off, c.d, c.g);
    else
        conv_tap_offsets(off, c.d, c.g);
    c.off = off;
    for (int i = 0; i < c.ns; i++)
        bwd_prep(&c, i);
    for (int b = 0; b < c.nwblocks; b++)
        bwd_dw(&c, b);
    add_bias_sums(&c);
}

/* leaves d weight and d bias of c (one chunk) to a worker: 1 if it did */
static int spawn_dw(const bwd_ctx *c)
{
    if (!nnrt_can_spawn())
        return 0;
    later.d = *c->d;
    later.g = *c->g;
    if (c->pd)
        later.pd = *c->pd;
    later.c = *c;
    later.c.d = &later.d;
    later.c.g = &later.g;
    later.c.pd = c->pd ? &later.pd : NULL;
    later.c.dx = NULL;
    later.c.w = NULL;
    if (!nnrt_spawn(bwd_later, &later, 1))
        return 0;
    /* what the worker reads and the caller rewrites in the next step: the
     * join takes the lines back */
    const nnrt_conv2d_dims *d = c->d;
    size_t in = (size_t)d->C * d->H * d->W, pq = c->pd ? (size_t)c->pd->P * c->pd->Q : (size_t)d->P * d->Q;
    nnrt_spawn_read(c->x + (size_t)c->n0 * in, sizeof(float) * in * (size_t)c->ns);
    if (c->pd) {
        nnrt_spawn_read(c->pdy + (size_t)c->n0 * d->K * pq, sizeof(float) * pq * d->K * (size_t)c->ns);
        nnrt_spawn_read(c->parg + (size_t)c->n0 * d->K * pq, pq * d->K * (size_t)c->ns);
    } else if (c->dy)
        nnrt_spawn_read(c->dy + (size_t)c->n0 * d->K * pq, sizeof(float) * pq * d->K * (size_t)c->ns);
    return 1;
}

/* dy, or (pooled) pdy, parg and pd: the max-pool whose backward makes dy.
 * dx_after: the caller computes d input when this returns (conv2d_pooled.c),
 * which counts as work to share and lets d weight go to a worker */
void conv2d_backward_fast(float *dx, float *dw, float *db, const float *dy, const float *pdy,
                          const unsigned char *parg, const nnrt_pool2d_dims *pd, const float *x,
                          const float *w, const nnrt_conv2d_dims *d, const conv_geom *g, int dx_after)
{
    int ncb = (g->Cg + MR - 1) / MR, nkv = (g->Kg + KV - 1) / KV;
    conv_bwd_sizes z;
    conv_backward_sizes(&z, d, g, dx != NULL, dw != NULL, db != NULL);
    int ns = z.ns, lanes = z.lanes, nchunks = z.nchunks;
    size_t ndyp = z.ndyp, ndyt = z.ndyt, nxs = z.nxs, KT = z.KT;
    double macs = conv_backward_macs(d, g, ns, dx || dx_after, dw != NULL);
    /* from half the forward's work: d input and d weight are independent
     * tasks, so a smaller call already has two to share */
    int threads = macs < NNRT_PAR_MACS / 2 ? 1 : nnrt_threads();
    int by_chunk = threads > 1 && nchunks > 1;
    /* shared: by chunk the partials and all samples' bias sums, else the
     * one chunk's copies and bias sums */
    float *rest = nnrt_scratch(1, by_chunk ? z.by_chunk : z.one_chunk);
    int *off = (int *)nnrt_scratch(2, (size_t)g->T);
    bwd_ctx c = {.dx = dx, .dw = dw, .db = db, .dy = dy, .x = x, .d = d, .g = g, .w = w,
                 .off = off, .lanes = lanes, .pdy = pdy, .parg = parg, .pd = pd, .mw = MW, .pk1 = d->K};

    if (lanes)
        conv_pixel_offsets(off, d, g);
    else
        conv_tap_offsets(off, d, g);

    c.wkb = lanes ? nkv : (g->Kg + MW - 1) / MW;
    c.wtb = lanes ? (g->T + NV - 1) / NV : (g->T + NW - 1) / NW;
    int nw = dw ? g->G * c.wkb * c.wtb : 0;
    c.nwblocks = nw;
    c.wper = 1;
    c.n0 = 0;
    c.ns = ns;
    /* one chunk, threads, and d input to compute meanwhile: d weight on a
     * worker, which goes on while the caller's layers before this one run
     * (LeNet at batch 1: conv1's backward overlaps conv2's d weight) */
    if (d->defer_dw && !by_chunk && threads > 1 && (dx || dx_after) && dw && spawn_dw(&c)) {
        dw = db = NULL;
        c.dw = c.db = NULL;
        nw = c.nwblocks = 0;
        threads = 1;
    }
    /* The first layer (no d input) in one chunk, on threads: d weight by
     * slices of out channels, one a thread, each with its own copies, so
     * that no copy crosses between the cores and no two threads write the
     * same lines of dw (as blocks of taps shared between threads would). */
    if (!dx && !dx_after && dw && !lanes && g->G == 1 && nchunks == 1 && d->K > 1 && threads > 1) {
        c.mw = (d->K + 1) / 2;
        c.wkb = 2;
        c.n0 = 0;
        c.ns = ns;
        nnrt_parallel(bwd_slice_task, &c, 2);
        return;
    }

    if (by_chunk) {
        chunk_job j = {.base = c, .pdw = dw ? rest : NULL, .dbs = db ? rest + (dw ? nchunks * KT : 0) : NULL,
                       .ndyp = ndyp, .ndyt = ndyt, .nxs = nxs, .nw = nw};
        nnrt_parallel(bwd_chunk_task, &j, nchunks);
        for (int ci = 0; dw && ci < nchunks; ci++)
            for (size_t e = 0; e < KT; e++)
                dw[e] += j.pdw[ci * KT + e];
        for (int i = 0; db && i < d->N; i++)
            for (int k = 0; k < d->K; k++)
                db[k] += j.dbs[(size_t)i * d->K + k];
        return;
    }
    c.dyp = ndyp ? rest : NULL;
    c.dyt = ndyt && dw ? rest + ndyp : NULL;
    c.xs = nxs && dw ? rest + ndyp + ndyt : NULL;
    c.dbs = db ? rest + ndyp + ndyt + nxs : NULL;
    int units = g->G * ncb;
    c.dx_parts = ns >= threads || !dx ? 1 : (threads + ns - 1) / ns;
    if (c.dx_parts > units)
        c.dx_parts = units;
    /* Blocks next to each other write the same cache lines of dw (a block
     * is a few taps of every channel): shared between threads, a block
     * at a time, those lines go back and forth. So a task is a run of
     * blocks, 2 runs a thread. */
    if (threads > 1 && nw > 2 * threads)
        c.wper = (nw + 2 * threads - 1) / (2 * threads);
    for (int n0 = 0; n0 < d->N; n0 += CHUNK) {
        c.n0 = n0;
        c.ns = d->N - n0 < CHUNK ? d->N - n0 : CHUNK;
        run(bwd_prep, &c, c.ns, threads);
        run(bwd_task, &c, (dx ? c.ns * c.dx_parts : 0) + (nw + c.wper - 1) / c.wper, threads);
        if (db)
            for (int i = 0; i < c.ns; i++)
                for (int k = 0; k < d->K; k++)
                    db[k] += c.dbs[(size_t)i * d->K + k];
    }
}
