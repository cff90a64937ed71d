/* conv2d_copy.c — the copies the fast convolution reads instead of x,
 * w and dy (conv2d_forward.c, conv2d_backward.c): the shifted copies of the
 * input, the input with its zero border, the tap offsets into either, and
 * the "lanes" layouts (a block of rows transposed so that 16 channels are
 * the 16 lanes of a vector). They move floats and compute no sums, so the
 * bits of a result never depend on how they are written; they are one file
 * because the forward and the backward both use them.
 *
 * Dimension letters as in conv2d.c.
 */
#include "nnrt.h"

#include <string.h>

#include "kernel.h"

enum {
    LW = CONV_LW,   /* the zeros after the shifted copies (the d weight reads past the end) */
    KV = CONV_KV,   /* the lanes layouts: rows (channels) per block */
};

/* The shifted copies of sample n: for each kernel column s,
 * xs[s][c][h][q] = the zero-bordered input at row h, column q + s*dil_w
 * (h < Hp, q < Q), and LW zeros after. Tap (c, r, s) of output pixel
 * j = p*Q + q then reads xs at j + off(c, r, s), off = s*C*PL + c*PL +
 * r*dil_h*Q: every tap is one contiguous, shifted read of L floats.
 *
 * Rows are short (28 or 10 floats in LeNet), and a copy loop of variable
 * length ends in scalar moves: so rows are copied in whole vectors of 16,
 * running past their end into the next row, which is written after (rows
 * go in memory order; the last one runs into the LW floats of the tail).
 * The reads may run past the source row too, into the rest of the batch's
 * input, never past its end: a row too close to the end is copied exactly. */
enum { ROWV = 16 };
HOT void conv_shift_input(float *restrict xs, const float *restrict x, int n, const nnrt_conv2d_dims *d,
                          const conv_geom *g)
{
    size_t chw = (size_t)d->C * d->H * d->W, avail = (size_t)(d->N - n) * chw;  /* readable at x */
    x += (size_t)n * chw;
    for (int s = 0; s < d->S; s++) {
        /* columns q whose input column w = q + s*dil_w - pad_w is inside */
        int sh = s * d->dil_w - d->pad_w;
        int q0 = sh < 0 ? -sh : 0, q1 = d->W - sh < d->Q ? d->W - sh : d->Q;
        if (q1 < q0)
            q1 = q0;
        int nv = (q1 - q0 + ROWV - 1) / ROWV;
        for (int c = 0; c < d->C; c++)
            for (int h = 0; h < g->Hp; h++) {
                float *restrict o = xs + ((size_t)s * d->C + c) * g->PL + (size_t)h * d->Q;
                int ih = h - d->pad_h;
                if (ih < 0 || ih >= d->H) {
                    for (int q = 0; q < d->Q; q++)
                        o[q] = 0.0f;
                    continue;
                }
                size_t at = ((size_t)c * d->H + ih) * d->W + (size_t)(sh + q0);
                const float *restrict in = x + at - q0;
                for (int q = 0; q < q0; q++)
                    o[q] = 0.0f;
                if (q1 > q0 && at + (size_t)nv * ROWV <= avail) {
                    for (int k = 0; k < nv; k++)
                        for (int v = 0; v < ROWV; v++)
                            o[q0 + k * ROWV + v] = in[q0 + k * ROWV + v];
                } else {
                    for (int q = q0; q < q1; q++)
                        o[q] = in[q];
                }
                for (int q = q1; q < d->Q; q++)
                    o[q] = 0.0f;
            }
    }
    for (int i = 0; i < LW; i++)        /* the tail the d weight reads past the end */
        xs[(size_t)d->S * d->C * g->PL + i] = 0.0f;
}

/* The d weight by lanes reads x itself, a float at a time (no copies): one
 * sample's input with its zero border, xp[c][Hp][Wp], when it has padding */
void conv_pad_input(float *restrict xp, const float *restrict x, const nnrt_conv2d_dims *d,
                    const conv_geom *g)
{
    memset(xp, 0, sizeof(float) * g->XP);
    for (int c = 0; c < d->C; c++)
        for (int h = 0; h < d->H; h++)
            memcpy(xp + ((size_t)c * g->Hp + h + d->pad_h) * g->Wp + d->pad_w,
                   x + ((size_t)c * d->H + h) * d->W, sizeof(float) * (size_t)d->W);
}

/* ... and there, tap t = (c, r, s) of a group's channels reads output
 * pixel (p, q) at off[t] + p*Wp + q */
void conv_pixel_offsets(int *off, const nnrt_conv2d_dims *d, const conv_geom *g)
{
    int t = 0;
    for (int c = 0; c < g->Cg; c++)
        for (int r = 0; r < d->R; r++)
            for (int s = 0; s < d->S; s++)
                off[t++] = (c * g->Hp + r * d->dil_h) * g->Wp + s * d->dil_w;
}

/* tap t = (c, r, s) of a group's Cg channels: its offset in the shifted copies */
void conv_tap_offsets(int *off, const nnrt_conv2d_dims *d, const conv_geom *g)
{
    int t = 0;
    for (int c = 0; c < g->Cg; c++)
        for (int r = 0; r < d->R; r++)
            for (int s = 0; s < d->S; s++)
                off[t++] = (s * d->C + c) * g->PL + r * d->dil_h * d->Q;
}

/* The lanes layouts (the forward's weights, the d weight's dy): a block of
 * nr <= KV rows of src, nc columns, transposed,
 *   dst[c*KV + r] = r < nr ? src[r*lds + c] : 0   for c < nc, r < KV.
 * With AVX-512, 16 columns at a time through registers: 4 stages of
 * two-register shuffles, each swapping one bit of the row index with one
 * bit of the column index; the last columns, and other machines, a float
 * at a time. Only moves: the
 * bits are the same either way. */
static void to_lanes_floats(float *restrict dst, const float *restrict src, size_t lds, int nr, int c0, int nc)
{
    for (int c = c0; c < nc; c++)
        for (int r = 0; r < KV; r++)
            dst[(size_t)c * KV + r] = r < nr ? src[(size_t)r * lds + c] : 0.0f;
}

#ifdef NNRT_AVX512
#define TR16_STAGE(s, LO, HI)                                                                                \
    for (int a = 0; a < 16; a++)                                                                             \
        if (!(a & s)) {                                                                                      \
            v16f x = r[a], y = r[a | s];                                                                     \
            r[a] = __builtin_shuffle(x, y, LO);                                                              \
            r[a | s] = __builtin_shuffle(x, y, HI);                                                          \
        }
/* r[i][j] <- r[j][i] (inlined into AVX-512 code only) */
INLINE void tr16(v16f *r)
{
    TR16_STAGE(1, ((v16i){0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}),
               ((v16i){1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}))
    TR16_STAGE(2, ((v16i){0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29}),
               ((v16i){2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}))
    TR16_STAGE(4, ((v16i){0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27}),
               ((v16i){4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}))
    TR16_STAGE(8, ((v16i){0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}),
               ((v16i){8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}))
}
#undef TR16_STAGE

__attribute__((target("avx512f"))) static void to_lanes_avx512(float *restrict dst, const float *restrict src,
                                                             size_t lds, int nr, int nc)
{
    int c0 = 0;
    for (; c0 + 16 <= nc; c0 += 16) {
        v16f r[16];
        for (int i = 0; i < 16; i++) {
            if (i < nr)
                memcpy(&r[i], src + (size_t)i * lds + c0, sizeof r[i]);
            else
                r[i] = (v16f){0};
        }
        tr16(r);
        for (int i = 0; i < 16; i++)
            memcpy(dst + (size_t)(c0 + i) * KV, &r[i], sizeof r[i]);
    }
    to_lanes_floats(dst, src, lds, nr, c0, nc);
}

/* the forward's tile of np <= 16 pixels x KV channels into y, transposed: out[v*L + i] = tile[i][v] for v < kv, i < np */
__attribute__((target("avx512f,avx512vl"))) void conv_tile_out_avx512(float *out, size_t L, const float *tile, int np,
                                                                      int kv)
{
    v16f r[16];
    for (int i = 0; i < 16; i++) {
        if (i < np)
            memcpy(&r[i], tile + (size_t)i * KV, sizeof r[i]);
        else
            r[i] = (v16f){0};
    }
    tr16(r);
    __mmask16 m = (__mmask16)((1u << np) - 1);
    for (int v = 0; v < kv; v++)
        _mm512_mask_storeu_ps(out + (size_t)v * L, m, (__m512)r[v]);
}
#endif

void conv_to_lanes(float *restrict dst, const float *restrict src, size_t lds, int nr, int nc)
{
#ifdef NNRT_AVX512
    if (has_avx512()) {
        to_lanes_avx512(dst, src, lds, nr, nc);
        return;
    }
#endif
    to_lanes_floats(dst, src, lds, nr, 0, nc);
}
