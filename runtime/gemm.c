/* gemm.c — the one matrix multiply of the runtime: C[M,N] = (C or bias) +
 * A[M,Kd] * B[Kd,N], by packed panels and a register tile, the way BLIS
 * and oneDNN do it, for the convolutions (conv2d_gemm.c) and whatever
 * product a layer reduces to.
 *
 * The caller does not hand over matrices but packers: functions that copy a
 * panel of A (GEMM_MR rows, kc of the Kd columns) or of B (kc rows,
 * GEMM_NR columns) into the layout the tile reads, zero past the matrix.
 * So a convolution's B is its input read through im2col, never stored
 * whole, and A may be a gradient gathered across samples. A panel of A may
 * instead come packed once for the whole call (gemm_pack_a: the weights,
 * which every sample's product reads).
 *
 * Blocking: the reduction goes by GEMM_KC (a panel of B then fits in L1
 * next to two panels of A), the columns of a call's block by at most
 * GEMM_NC (its packed B, kc x NC, stays in L2). Within a block every panel
 * of B meets every panel of A in the tile
 *   acc[m][v] = sum over k < kc of a[k][m] * b[k][v],  m < MR, v < NR,
 * 8 x 32 accumulators: 16 AVX-512 registers, fed by two loads of B and
 * eight broadcasts of A per k. The first block starts C from the bias (or
 * from C itself when accumulating); the last applies the ReLU.
 *
 * Each element of C is summed in one order, k = 0 .. Kd-1 in blocks of KC,
 * whatever block of C a call computes: any split of C between threads
 * gives the same bits.
 */
#include "nnrt.h"

#include <string.h>

#include "kernel.h"

enum { MR = GEMM_MR, NR = GEMM_NR, KC = GEMM_KC };

/* ---- packers of plain strided matrices ---- */

void gemm_pack_a_mat(float *restrict dst, const void *ctx, int i0, int mr, int k0, int kc)
{
    const gemm_mat *a = ctx;
    for (int k = 0; k < kc; k++) {
        const float *src = a->p + (ptrdiff_t)(k0 + k) * a->cs + (ptrdiff_t)i0 * a->rs;
        float *d = dst + (size_t)k * MR;
        int m = 0;
        if (a->rs == 1 && mr == MR) {   /* a whole row in one copy of constant size (inlined) */
            memcpy(d, src, sizeof(float) * MR);
            continue;
        }
        for (; m < mr; m++)
            d[m] = src[m * a->rs];
        for (; m < MR; m++)
            d[m] = 0;
    }
}

void gemm_pack_b_mat(float *restrict dst, const void *ctx, int j0, int nr, int k0, int kc)
{
    const gemm_mat *b = ctx;
    for (int k = 0; k < kc; k++) {
        const float *src = b->p + (ptrdiff_t)(k0 + k) * b->rs + (ptrdiff_t)j0 * b->cs;
        float *d = dst + (size_t)k * NR;
        int j = 0;
        if (b->cs == 1 && nr == NR) {   /* as in gemm_pack_a_mat */
            memcpy(d, src, sizeof(float) * NR);
            continue;
        }
        if (b->cs == 1) {
            memcpy(d, src, sizeof(float) * (size_t)nr);
            j = nr;
        }
        for (; j < nr; j++)
            d[j] = src[j * b->cs];
        for (; j < NR; j++)
            d[j] = 0;
    }
}

void gemm_pack_a(float *dst, const gemm_call *g)
{
    for (int i = 0; i < g->M; i += MR)
        g->pack_a(dst + (size_t)i * g->K, g->actx, i, g->M - i < MR ? g->M - i : MR, 0, g->K);
}

/* ---- the register tile ---- */

/* c[m][v] (ldc apart) = start + sum over k < kc of a[k*MR + m] * b[k*NR + v]
 * for m < mr, v < nr; start is c itself (load), the bias (init, or zeros);
 * relu: max(c, 0) after (a NaN stays NaN). Full tiles go straight to c,
 * partial ones through a tile on the stack. */
INLINE void tile(float *restrict c, size_t ldc, const float *restrict a, const float *restrict b, int kc,
                 int mr, int nr, int load, const float *init, int relu)
{
    v16f acc[MR][2];
    for (int m = 0; m < MR; m++)
        acc[m][0] = acc[m][1] = (v16f){0};
    for (int k = 0; k < kc; k++) {
        v16f b0, b1;
        memcpy(&b0, b + (size_t)k * NR, sizeof b0);
        memcpy(&b1, b + (size_t)k * NR + 16, sizeof b1);
        const float *ak = a + (size_t)k * MR;
        for (int m = 0; m < MR; m++) {
            acc[m][0] += ak[m] * b0;
            acc[m][1] += ak[m] * b1;
        }
    }
    float part[MR][NR];
    int full = mr == MR && nr == NR;
    for (int m = 0; m < mr; m++) {
        float *cm = c + (size_t)m * ldc;
        v16f s0, s1;
        if (load && full) {
            memcpy(&s0, cm, sizeof s0);
            memcpy(&s1, cm + 16, sizeof s1);
        } else if (load) {
            memcpy(part[m], cm, sizeof(float) * (size_t)nr);
            memcpy(&s0, part[m], sizeof s0);
            memcpy(&s1, part[m] + 16, sizeof s1);
        } else {
            s0 = s1 = (v16f){0} + (init ? init[m] : 0.0f);
        }
        s0 += acc[m][0];
        s1 += acc[m][1];
        if (relu) {                     /* x < 0 ? 0 : x; a NaN stays NaN, as in relu_forward */
            s0 = (v16f)((v16i)s0 & ~(s0 < 0.0f));
            s1 = (v16f)((v16i)s1 & ~(s1 < 0.0f));
        }
        if (full) {
            memcpy(cm, &s0, sizeof s0);
            memcpy(cm + 16, &s1, sizeof s1);
        } else {
            memcpy(part[m], &s0, sizeof s0);
            memcpy(part[m] + 16, &s1, sizeof s1);
            memcpy(cm, part[m], sizeof(float) * (size_t)nr);
        }
    }
}

/* one block of the reduction over a block of C: every panel of bp (nj
 * columns) against every panel of ap (rows i0 .. i1), apanel floats apart */
HOT static void macro(const gemm_call *g, const float *ap, size_t apanel, const float *bp, int i0, int i1, int j0,
                      int j1, int kc, int load, const float *init, int relu)
{
    for (int j = j0; j < j1; j += NR) {
        const float *b = bp + (size_t)(j - j0) * kc;
        int nr = j1 - j < NR ? j1 - j : NR;
        for (int i = i0; i < i1; i += MR) {
            const float *a = ap + (size_t)((i - i0) / MR) * apanel;
            int mr = i1 - i < MR ? i1 - i : MR;
            tile(g->c + (size_t)i * g->ldc + j, g->ldc, a, b, kc, mr, nr, load,
                 init ? init + i : NULL, relu);
        }
    }
}

void gemm_block(const gemm_call *g, int i0, int i1, int j0, int j1, float *bp, float *ap)
{
    for (int jb = j0; jb < j1; jb += GEMM_NC) {
        int je = j1 - jb < GEMM_NC ? j1 : jb + GEMM_NC;
        for (int k0 = 0; k0 < g->K; k0 += KC) {
            int kc = g->K - k0 < KC ? g->K - k0 : KC;
            for (int j = jb; j < je; j += NR)
                g->pack_b(bp + (size_t)(j - jb) * kc, g->bctx, j, je - j < NR ? je - j : NR, k0, kc);
            const float *a;
            size_t apanel;
            if (g->ap) {                /* packed for the call: panel i/MR holds all of Kd */
                a = g->ap + (size_t)i0 * g->K + (size_t)k0 * MR;
                apanel = (size_t)MR * g->K;
            } else {
                for (int i = i0; i < i1; i += MR)
                    g->pack_a(ap + (size_t)(i - i0) * kc, g->actx, i, i1 - i < MR ? i1 - i : MR, k0, kc);
                a = ap;
                apanel = (size_t)MR * kc;
            }
            int last = k0 + kc >= g->K;
            macro(g, a, apanel, bp, i0, i1, jb, je, kc, k0 > 0 || g->accumulate, k0 == 0 ? g->bias : NULL,
                  last && g->relu);
        }
    }
}

/* ---- C += A B^T with the reduction along rows: dot products by lanes ----
 *
 * For products whose reduction is the contiguous index of both operands
 * (a convolution's d weight: out channels' gradients against im2col rows,
 * both along pixels), the 16 lanes of a vector take 16 reduction indices:
 * a tile of 4 x 4 dot products is 16 accumulators fed by 8 loads per 16
 * indices, summed across lanes at the end (sum_lanes, kernel.h). */
INLINE void nt_tile(float *restrict c, size_t ldc, const float *restrict a, size_t lda, const float *restrict b,
                    size_t ldb, int mr, int nr, int L)
{
    v16f acc[4][4];
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            acc[i][j] = (v16f){0};
    for (int l = 0; l < L; l += 16) {
        v16f av[4], bv[4];
        for (int i = 0; i < 4; i++) {
            memcpy(&av[i], a + i * lda + l, sizeof av[i]);
            memcpy(&bv[i], b + i * ldb + l, sizeof bv[i]);
        }
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++)
                acc[i][j] += av[i] * bv[j];
    }
    v16f r[2];
    sum_lanes(&r[0], &acc[0][0]);       /* lanes 4i + j: rows 0 and 1 */
    sum_lanes(&r[1], &acc[2][0]);       /* rows 2 and 3 */
    float s[2][16];
    memcpy(s[0], &r[0], sizeof r[0]);
    memcpy(s[1], &r[1], sizeof r[1]);
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nr; j++)
            c[i * ldc + j] += s[i / 2][i % 2 * 4 + j];
}

HOT void gemm_nt_acc(float *c, size_t ldc, const float *a, size_t lda, const float *b, size_t ldb, int M, int N,
                     int L)
{
    for (int i = 0; i < M; i += 4)
        for (int j = 0; j < N; j += 4)
            nt_tile(c + (size_t)i * ldc + j, ldc, a + (size_t)i * lda, lda, b + (size_t)j * ldb, ldb,
                    M - i < 4 ? M - i : 4, N - j < 4 ? N - j : 4, L);
}
