/* conv2d_forward.c — the fast forward of a convolution (stride 1, outputs
 * of at least CONV_VL pixels: conv_geometry), which nnrt_conv2d_forward
 * (conv2d.c) calls; conv2d_ref.c has the plain loops it must agree with.
 *
 * Two register tiles, chosen by the out channels per group (Kg):
 *   - corr_tile (Kg < CONV_KVMIN): MR out channels x VL pixels of the
 *     shifted-row sum out[k][j] = b[k] + sum over taps t of w[k][t] *
 *     xs[off[t] + j], xs the shifted copies of the input (conv2d_copy.c);
 *   - lanes_tile (Kg >= CONV_KVMIN): the out channels are the vector lanes,
 *     16 channels x NP pixels, x read a float at a time from x itself (or
 *     x with its zero border); with kernels 3, 5 or 7 wide, no dilation in
 *     width, rows of at least 6 pixels and AVX-512, lanes_row_tile instead:
 *     a run of up to NPR pixels of one output row, each input of a kernel
 *     row read once and used by its S taps from a register.
 * Every tile sums from the bias, tap by tap in (c, r, s) order, the order
 * of the plain loops, but with fused multiply-adds where the machine has
 * them (the runtime is compiled with -ffp-contract=fast, and HOT compiles
 * the tasks for AVX-512 and AVX2): the last bits differ from
 * conv2d_forward_ref's, which runs as baseline x86-64 code.
 *
 * The work is cut into tasks by sample and by range of (group, channel
 * block, tile) units; each output element is one tile's, so the bits are
 * the same with any number of threads.
 */
#include "nnrt.h"

#include <string.h>

#include "kernel.h"

enum {
    VL = CONV_VL,   /* pixels per register tile: two vectors of 16 */
    MR = CONV_MR,   /* out channels per register tile */
    KV = CONV_KV,   /* by lanes: out channels per vector */
};

static const float zeros[MR];   /* the start of a sum without bias */

/* the tasks on the pool's threads, or all here when threads is 1 */
static void run(void (*fn)(void *, int), void *ctx, int ntasks, int threads)
{
    if (threads > 1)
        nnrt_parallel(fn, ctx, ntasks);
    else
        for (int i = 0; i < ntasks; i++)
            fn(ctx, i);
}

/* The register tile of the shifted-row sum:
 *   tile[m][v] = init[m] + sum over t < ntaps of a[t*mr + m] * src[off[t] + v]
 * for m < mr, v < 16*nv (a: the mr channels' weights, interleaved by tap),
 * added up in the order written: from init (the bias), tap by tap; nv = 2
 * vectors of 16 pixels is a whole tile (VL), nv = 1 half of one, for the
 * last pixels of a plane. Called with constant mr and nv, so each use is
 * compiled for its size. Written with a vector type of 16 floats: GCC's
 * own vectorisation of these loops chooses 8-lane vectors and shuffles for
 * 16 pixels, and is slower for 32 too. */
INLINE void corr_tile(float *restrict out, size_t ld, const float *restrict init,
                      const float *restrict src, const int *restrict off, const float *restrict a,
                      int ntaps, int mr, int nv, int relu)
{
    v16f acc[MR][2];
    for (int m = 0; m < mr; m++)
        for (int h = 0; h < nv; h++)
            acc[m][h] = (v16f){0} + init[m];
    for (int t = 0; t < ntaps; t++) {
        v16f x0, x1;
        memcpy(&x0, src + off[t], sizeof x0);
        if (nv > 1)
            memcpy(&x1, src + off[t] + 16, sizeof x1);
        const float *at = a + t * mr;
        for (int m = 0; m < mr; m++) {
            acc[m][0] += at[m] * x0;
            if (nv > 1)
                acc[m][1] += at[m] * x1;
        }
    }
    for (int m = 0; m < mr; m++)
        for (int h = 0; h < nv; h++) {
            if (relu)                   /* x < 0 ? 0 : x; a NaN stays NaN, as in relu_forward */
                acc[m][h] = (v16f)((v16i)acc[m][h] & ~(acc[m][h] < 0.0f));
            memcpy(out + m * ld + 16 * h, &acc[m][h], sizeof acc[m][h]);
        }
}

/* corr_tile for any mr in 1 .. MR, a whole tile or (half) half of one */
#define CORR_TILES(nv)                                                                                      \
    switch (mr) {                                                                                           \
    case 8: corr_tile(out, ld, init, src, off, a, ntaps, 8, nv, relu); break;                               \
    case 7: corr_tile(out, ld, init, src, off, a, ntaps, 7, nv, relu); break;                               \
    case 6: corr_tile(out, ld, init, src, off, a, ntaps, 6, nv, relu); break;                               \
    case 5: corr_tile(out, ld, init, src, off, a, ntaps, 5, nv, relu); break;                               \
    case 4: corr_tile(out, ld, init, src, off, a, ntaps, 4, nv, relu); break;                               \
    case 3: corr_tile(out, ld, init, src, off, a, ntaps, 3, nv, relu); break;                               \
    case 2: corr_tile(out, ld, init, src, off, a, ntaps, 2, nv, relu); break;                               \
    default: corr_tile(out, ld, init, src, off, a, ntaps, 1, nv, relu); break;                              \
    }
static void corr_tile_any(float *out, size_t ld, const float *init, const float *src, const int *off,
                          const float *a, int ntaps, int mr, int half, int relu)
{
    if (half)
        CORR_TILES(1)
    else
        CORR_TILES(2)
}

typedef struct fwd_ctx {
    float *y;
    const float *x, *b;
    const nnrt_conv2d_dims *d;
    const conv_geom *g;
    const float *a;         /* packed weights: per block of MR channels, [t][mr]; by lanes,
                             * per block of KV channels, [t][KV] */
    const int *off;         /* tap offsets in the shifted copies, [T]; by lanes, in x padded */
    int parts, ntiles, nkb; /* per sample: parts x (G * nkb * ntiles) units */
    int rows;               /* by lanes: runs per output row (lanes_row_tile), or 0 */
    int lanes;              /* by lanes (lanes_tile) */
} fwd_ctx;

/* The forward by lanes, for layers with Kg >= CONV_KVMIN: the out channels
 * are the vector lanes (KV = 16 a block) and a tile is NP output pixels,
 * whose input is read a float at a time from x itself (or x with its zero
 * border, rows of Wp), so without shifted copies:
 *   tile[i][v] = bias[v] + sum over t < T of px[i][off[t]] * aw[t*KV + v]
 * added up in the order of corr_tile (from the bias, tap by tap), so with
 * its bits. The pixels are spelled out, which keeps the sums in registers
 * (as dwv_block does in conv2d_backward.c); the tile goes to y transposed. */
enum { NP = 8 };
INLINE void lanes_tile(float (*restrict tile)[KV], const float *const *px, const float *restrict aw,
                       const int *restrict off, int T, const float *restrict bias, int relu)
{
    v16f acc[NP], b;
    memcpy(&b, bias, sizeof b);
    for (int i = 0; i < NP; i++)
        acc[i] = b;
    const float *p0 = px[0], *p1 = px[1], *p2 = px[2], *p3 = px[3];
    const float *p4 = px[4], *p5 = px[5], *p6 = px[6], *p7 = px[7];
    for (int t = 0; t < T; t++) {
        v16f wv;
        memcpy(&wv, aw + (size_t)t * KV, sizeof wv);
        int o = off[t];
        acc[0] += wv * p0[o];
        acc[1] += wv * p1[o];
        acc[2] += wv * p2[o];
        acc[3] += wv * p3[o];
        acc[4] += wv * p4[o];
        acc[5] += wv * p5[o];
        acc[6] += wv * p6[o];
        acc[7] += wv * p7[o];
    }
    for (int i = 0; i < NP; i++) {
        if (relu)                       /* x < 0 ? 0 : x; a NaN stays NaN, as in relu_forward */
            acc[i] = (v16f)((v16i)acc[i] & ~(acc[i] < 0.0f));
        memcpy(tile[i], &acc[i], sizeof acc[i]);
    }
}

/* lanes_tile for np consecutive pixels of one output row (dil_w 1): the
 * S taps of a kernel row read the np + S - 1 inputs of the row, so each is
 * read once and used S times from a register, where lanes_tile reads one
 * for each product, as a memory operand of the multiply-add (the tile
 * computes a few more products, but the multiply-adds no longer wait for
 * loads). Per pixel the same sums
 * in the same order, (c, r, s): the same bits. px: the tile's first
 * pixel's input in channel 0; rows of Wp, channels of Hp rows. */
enum { NPR = 12 };                      /* pixels of a row tile, at most */
INLINE void lanes_row_tile(float (*restrict tile)[KV], const float *restrict px, const float *restrict aw,
                           int C, int R, int Hp, int Wp, int dil_h, const float *restrict bias, int relu,
                           int np, int S)
{
    v16f acc[NPR], b;
    memcpy(&b, bias, sizeof b);
    for (int i = 0; i < np; i++)
        acc[i] = b;
    for (int c = 0; c < C; c++)
        for (int r = 0; r < R; r++) {
            const float *xr = px + ((size_t)c * Hp + (size_t)r * dil_h) * Wp;
            const float *w = aw + ((size_t)c * R + r) * S * KV;
            v16f wv[7];
            for (int s = 0; s < S; s++)
                memcpy(&wv[s], w + (size_t)s * KV, sizeof wv[s]);
#pragma GCC unroll 32
            for (int jx = 0; jx < np + S - 1; jx++) {
                float xv = xr[jx];
#pragma GCC unroll 8
                for (int s = 0; s < S; s++)
                    if (jx - s >= 0 && jx - s < np)
                        acc[jx - s] += wv[s] * xv;
            }
        }
    for (int i = 0; i < np; i++) {
        if (relu)                       /* x < 0 ? 0 : x; a NaN stays NaN, as in relu_forward */
            acc[i] = (v16f)((v16i)acc[i] & ~(acc[i] < 0.0f));
        memcpy(tile[i], &acc[i], sizeof acc[i]);
    }
}

/* lanes_row_tile for np in 6 .. NPR and S in 3, 5, 7 (lanes_rows_ok) */
#define ROW_TILES(S_)                                                                                        \
    switch (np) {                                                                                            \
    case 6: lanes_row_tile(tile, px, aw, C, R, Hp, Wp, dil_h, bias, relu, 6, S_); break;                     \
    case 7: lanes_row_tile(tile, px, aw, C, R, Hp, Wp, dil_h, bias, relu, 7, S_); break;                     \
    case 8: lanes_row_tile(tile, px, aw, C, R, Hp, Wp, dil_h, bias, relu, 8, S_); break;                     \
    case 9: lanes_row_tile(tile, px, aw, C, R, Hp, Wp, dil_h, bias, relu, 9, S_); break;                     \
    case 10: lanes_row_tile(tile, px, aw, C, R, Hp, Wp, dil_h, bias, relu, 10, S_); break;                   \
    case 11: lanes_row_tile(tile, px, aw, C, R, Hp, Wp, dil_h, bias, relu, 11, S_); break;                   \
    default: lanes_row_tile(tile, px, aw, C, R, Hp, Wp, dil_h, bias, relu, 12, S_); break;                   \
    }
static void lanes_row_tile_any(float (*tile)[KV], const float *px, const float *aw, int C, int R, int Hp,
                               int Wp, int dil_h, const float *bias, int relu, int np, int S)
{
    switch (S) {
    case 3: ROW_TILES(3) break;
    case 5: ROW_TILES(5) break;
    default: ROW_TILES(7) break;
    }
}

/* whether the forward by lanes goes by row tiles: kernels 3, 5, 7 wide
 * without dilation, output rows of at least 6 pixels, and AVX-512 (its 32
 * registers hold the 12 sums and up to 7 weight vectors; with AVX2's 16
 * they would spill) */
static int lanes_rows_ok(const nnrt_conv2d_dims *d)
{
#ifdef NNRT_AVX512
    return has_avx512() && (d->S == 3 || d->S == 5 || d->S == 7) && d->dil_w == 1 && d->Q >= 6;
#else
    (void)d;
    return 0;
#endif
}

/* sample n's units [u0, u1) by lanes: (group, block of KV channels, tile):
 * a tile is NP pixels of the plane, or with c->rows a run of np <= NPR
 * pixels of an output row (each row cut into c->rows near-equal runs) */
static void fwd_lanes(const fwd_ctx *c, int n, int u0, int u1)
{
    const nnrt_conv2d_dims *d = c->d;
    const conv_geom *g = c->g;
    size_t chw = (size_t)d->C * d->H * d->W;
    const float *src = c->x + (size_t)n * chw;
    if (g->XP) {                        /* padding: x with its zero border */
        float *xp = nnrt_scratch(0, g->XP);
        conv_pad_input(xp, src, d, g);
        src = xp;
    }
    float tile[16][KV], bias[KV];      /* conv_tile_out_avx512 may read 16 */
    const float *px[NP];
    for (int u = u0; u < u1; u++) {
        int it = u % c->ntiles, kb = u / c->ntiles % c->nkb, gi = u / c->ntiles / c->nkb;
        int k0 = gi * g->Kg + kb * KV, kv = g->Kg - kb * KV < KV ? g->Kg - kb * KV : KV;
        const float *xg = src + (size_t)gi * g->Cg * g->Hp * g->Wp, *aw = c->a + ((size_t)gi * c->nkb + kb) * g->T * KV;
        for (int v = 0; v < KV; v++)
            bias[v] = c->b && v < kv ? c->b[k0 + v] : 0.0f;
        int j0, np;
        if (c->rows) {                  /* run it % rows of output row it / rows */
            int p = it / c->rows, q0 = it % c->rows * d->Q / c->rows, q1 = (it % c->rows + 1) * d->Q / c->rows;
            j0 = p * d->Q + q0;
            np = q1 - q0;
            lanes_row_tile_any(tile, xg + (size_t)p * g->Wp + q0, aw, g->Cg, d->R, g->Hp, g->Wp, d->dil_h, bias,
                               d->relu, np, d->S);
        } else {
            j0 = it * NP;
            np = g->L - j0 < NP ? g->L - j0 : NP;
            for (int i = 0; i < NP; i++) {  /* a short tile repeats its last pixel */
                int j = j0 + (i < np ? i : np - 1);
                px[i] = xg + (size_t)(j / d->Q) * g->Wp + j % d->Q;
            }
            lanes_tile(tile, px, aw, c->off, g->T, bias, d->relu);
        }
        float *out = c->y + ((size_t)n * d->K + k0) * g->L + j0;
#ifdef NNRT_AVX512
        if (has_avx512()) {
            conv_tile_out_avx512(out, (size_t)g->L, &tile[0][0], np, kv);
            continue;
        }
#endif
        for (int v = 0; v < kv; v++)
            for (int i = 0; i < np; i++)
                out[(size_t)v * g->L + i] = tile[i][v];
    }
}

/* task = (sample n, part): its share of the sample's (group, channel block, tile) units */
HOT static void fwd_task(void *arg, int task)
{
    const fwd_ctx *c = arg;
    const nnrt_conv2d_dims *d = c->d;
    const conv_geom *g = c->g;
    int n = task / c->parts, part = task % c->parts;
    int units = g->G * c->nkb * c->ntiles;
    int u0 = (int)((long)units * part / c->parts), u1 = (int)((long)units * (part + 1) / c->parts);
    if (c->lanes) {
        fwd_lanes(c, n, u0, u1);
        return;
    }
    float *src = nnrt_scratch(0, g->XS);
    conv_shift_input(src, c->x, n, d, g);
    float tile[MR][VL];
    for (int u = u0; u < u1; u++) {
        int it = u % c->ntiles, kb = u / c->ntiles % c->nkb, gi = u / c->ntiles / c->nkb;
        int k0 = kb * MR, mr = g->Kg - k0 < MR ? g->Kg - k0 : MR;
        int j0 = it * VL, nl = g->L - j0 < VL ? g->L - j0 : VL;
        int k = gi * g->Kg + k0;
        const float *init = c->b ? c->b + k : zeros, *a = c->a + (size_t)k * g->T;
        const float *in = src + (size_t)gi * g->Cg * g->PL + j0;
        float *out = c->y + ((size_t)n * d->K + k) * g->L + j0;
        if (nl == VL) {                 /* straight into y */
            corr_tile_any(out, (size_t)g->L, init, in, c->off, a, g->T, mr, 0, d->relu);
            continue;
        }
        /* the last pixels: half a tile when that is enough (reading past the
         * copies' end into their LW zeros, VL/2 - 1 floats at most) */
        corr_tile_any(&tile[0][0], VL, init, in, c->off, a, g->T, mr, nl <= VL / 2, d->relu);
        for (int m = 0; m < mr; m++)
            for (int v = 0; v < nl; v++)
                out[(size_t)m * g->L + v] = tile[m][v];
    }
}

void conv2d_forward_fast(float *y, const float *x, const float *w, const float *b,
                         const nnrt_conv2d_dims *d, const conv_geom *g)
{
    int lanes = g->Kg >= CONV_KVMIN, nkv = (g->Kg + KV - 1) / KV;
    float *a = nnrt_scratch(1, lanes ? (size_t)g->G * nkv * g->T * KV : (size_t)d->K * g->T);
    int *off = (int *)nnrt_scratch(2, (size_t)g->T);
    fwd_ctx c = {.y = y, .x = x, .b = b, .d = d, .g = g, .a = a, .off = off, .lanes = lanes};
    if (lanes) {
        /* by lanes: channel kb*KV + v of group gi, tap t, at
         * a[((gi*nkv + kb)*T + t)*KV + v], zero past the group's channels */
        for (int gi = 0; gi < g->G; gi++)
            for (int kb = 0; kb < nkv; kb++) {
                int k0 = kb * KV, kv = g->Kg - k0 < KV ? g->Kg - k0 : KV;
                conv_to_lanes(a + ((size_t)gi * nkv + kb) * g->T * KV, w + ((size_t)gi * g->Kg + k0) * g->T,
                         (size_t)g->T, kv, g->T);
            }
        if (lanes_rows_ok(d)) {         /* runs of rows: no tap offsets */
            c.rows = (d->Q + NPR - 1) / NPR;
            c.ntiles = d->P * c.rows;
        } else {
            conv_pixel_offsets(off, d, g);
            c.ntiles = (g->L + NP - 1) / NP;
        }
        c.nkb = nkv;
    } else {
        /* packed weights: in each group, blocks of MR out channels; channel
         * k0 + m of a block, tap t, at a[k0*T + t*mr + m] */
        for (int gi = 0; gi < g->G; gi++)
            for (int kb = 0; kb < g->Kg; kb += MR) {
                int k0 = gi * g->Kg + kb, mr = g->Kg - kb < MR ? g->Kg - kb : MR;
                for (int m = 0; m < mr; m++)
                    for (int t = 0; t < g->T; t++)
                        a[(size_t)k0 * g->T + t * mr + m] = w[(size_t)(k0 + m) * g->T + t];
            }
        conv_tap_offsets(off, d, g);
        c.ntiles = (g->L + VL - 1) / VL;
        c.nkb = (g->Kg + MR - 1) / MR;
    }
    int units = g->G * c.nkb * c.ntiles;
    double macs = (double)d->N * d->K * g->T * d->P * d->Q;
    int threads = macs < NNRT_PAR_MACS ? 1 : nnrt_threads();
    c.parts = d->N >= threads ? 1 : (threads + d->N - 1) / d->N;
    if (c.parts > units)
        c.parts = units;
    run(fwd_task, &c, d->N * c.parts, threads);
}
