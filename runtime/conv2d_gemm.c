/* conv2d_gemm.c — the convolution as matrix products (gemm.c): the path of
 * every shape that conv_gemm_path (sizing/workspace.c) gives it: strides,
 * any padding and dilation, groups of two or more out channels, and wide
 * layers whatever their stride.
 *
 * For one sample and one group, with T = Cg*R*S taps and L = P*Q pixels:
 *   forward   y[Kg, L]   = w[Kg, T] * col[T, L]          (+ bias, ReLU)
 *   d input   dcol[T, L] = w^T[T, Kg] * dy[Kg, L],  then dx += col2im(dcol)
 *   d weight  dw[Kg, T] += dy[Kg, (n, L)] * col^T[(n, L), T]  (all samples
 *             in one reduction)
 * where col[(c, r, s), (p, q)] = x[c][p*sh - ph + r*dh][q*sw - pw + s*dw]
 * (zero outside the image) is im2col. col is never stored: the packers
 * below read it from x into the panels the GEMM asks for. A 1x1 kernel of
 * stride 1 without padding has col = x, and d input goes straight to dx.
 *
 * Threads: the forward is cut by sample and pixel range; d input by
 * sample (col2im of one sample's columns adds into the same pixels); d
 * weight by blocks of the weight. Each element's sum has one order, so the
 * bits are the same with any number of threads.
 */
#include "nnrt.h"

#include <string.h>

#include "kernel.h"

enum { MR = GEMM_MR, NR = GEMM_NR, KC = GEMM_KC, NC = GEMM_NC };

static int round_up(int a, int b)
{
    return (a + b - 1) / b * b;
}

/* whether col is x itself */
static int is_pointwise(const nnrt_conv2d_dims *d)
{
    return d->R == 1 && d->S == 1 && d->stride_h == 1 && d->stride_w == 1 && d->pad_h == 0 && d->pad_w == 0;
}

/* ---- im2col, read as panels ---- */

/* the outputs o in [*lo, *hi) of [0, n) whose input o*stride + off lies in
 * [0, size) (*hi <= *lo: none) */
static void valid_range(int *lo, int *hi, int off, int stride, int size, int n)
{
    *lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
    *hi = size - 1 - off < 0 ? 0 : (size - 1 - off) / stride + 1;
    if (*hi > n)
        *hi = n;
    if (*lo > n)
        *lo = n;
}

/* o[u] = row[2u] for u in [lo, hi), and the same added back: the even
 * lanes of two vectors at a time where both lie inside the row (w columns
 * from row[0]), one by one at the end */
INLINE void gather2(float *restrict o, const float *restrict row, int lo, int hi, int w)
{
    int u = lo;
    for (; u + 16 <= hi && 2 * u + 32 <= w; u += 16) {
        v16f a, b;
        memcpy(&a, row + 2 * u, sizeof a);
        memcpy(&b, row + 2 * u + 16, sizeof b);
        v16f e = SHUF(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        memcpy(o + u, &e, sizeof e);
    }
    for (; u < hi; u++)
        o[u] = row[2 * u];
}

INLINE void scatter2_add(float *restrict row, const float *restrict src, int lo, int hi, int w)
{
    int u = lo;
    for (; u + 16 <= hi && 2 * u + 32 <= w; u += 16) {
        v16f a, b, v, z = {0};
        memcpy(&a, row + 2 * u, sizeof a);
        memcpy(&b, row + 2 * u + 16, sizeof b);
        memcpy(&v, src + u, sizeof v);
        a += SHUF(v, z, 0, 16, 1, 16, 2, 16, 3, 16, 4, 16, 5, 16, 6, 16, 7, 16);
        b += SHUF(v, z, 8, 16, 9, 16, 10, 16, 11, 16, 12, 16, 13, 16, 14, 16, 15, 16);
        memcpy(row + 2 * u, &a, sizeof a);
        memcpy(row + 2 * u + 16, &b, sizeof b);
    }
    for (; u < hi; u++)
        row[2 * u] += src[u];
}

/* dst[t][v] (ld apart) = col[t0 + t][j0 + v] for t < nt, v < nj; x: one
 * sample's channels of the group, [Cg, H, W] */
HOT static void col_rows(float *restrict dst, size_t ld, const float *restrict x, const nnrt_conv2d_dims *d, int t0,
                     int nt, int j0, int nj)
{
    int RS = d->R * d->S;
    for (int t = 0; t < nt; t++) {
        int k = t0 + t, c = k / RS, r = k % RS / d->S, s = k % d->S;
        const float *xc = x + (size_t)c * d->H * d->W;
        float *o = dst + (size_t)t * ld;
        int q0, q1;             /* the columns whose tap s is inside the row */
        int off = s * d->dil_w - d->pad_w;
        valid_range(&q0, &q1, off, d->stride_w, d->W, d->Q);
        int j = 0, p = j0 / d->Q, q = j0 % d->Q;
        while (j < nj) {
            int run = nj - j < d->Q - q ? nj - j : d->Q - q;
            int h = p * d->stride_h - d->pad_h + r * d->dil_h;
            float *oj = o + j - q;      /* oj[u]: column u of this output row */
            int lo = q0 > q ? q0 : q, hi = q1 < q + run ? q1 : q + run;
            if (h < 0 || h >= d->H || hi <= lo) {
                memset(o + j, 0, sizeof(float) * (size_t)run);
            } else {
                const float *row = xc + (size_t)h * d->W + off;
                for (int u = q; u < lo; u++)
                    oj[u] = 0;
                if (d->stride_w == 1)
                    memcpy(oj + lo, row + lo, sizeof(float) * (size_t)(hi - lo));
                else if (d->stride_w == 2)
                    gather2(oj, row, lo, hi, d->W - off);
                else
                    for (int u = lo; u < hi; u++)
                        oj[u] = row[u * d->stride_w];
                for (int u = hi; u < q + run; u++)
                    oj[u] = 0;
            }
            j += run;
            p++;
            q = 0;
        }
    }
}

/* one sample's input, the channels of one group: B of the forward */
typedef struct col_src {
    const float *x;                 /* [Cg, H, W] */
    const nnrt_conv2d_dims *d;
} col_src;

/* several samples' im2col side by side, columns (n, p, q) from sample n0:
 * B of the forward when a sample has few pixels */
typedef struct cols_src {
    const float *x;                 /* sample 0, the group's first channel */
    const nnrt_conv2d_dims *d;
    int n0, L;
} cols_src;

static void pack_cols(float *restrict dst, const void *ctx, int j0, int nr, int k0, int kc)
{
    const cols_src *cs = ctx;
    const nnrt_conv2d_dims *d = cs->d;
    for (int j = 0; j < nr;) {
        int n = cs->n0 + (j0 + j) / cs->L, l = (j0 + j) % cs->L;
        int len = nr - j < cs->L - l ? nr - j : cs->L - l;
        col_rows(dst + j, NR, cs->x + (size_t)n * d->C * d->H * d->W, d, k0, kc, l, len);
        j += len;
    }
    for (int t = 0; nr < NR && t < kc; t++)
        memset(dst + (size_t)t * NR + nr, 0, sizeof(float) * (size_t)(NR - nr));
}

static void pack_col(float *restrict dst, const void *ctx, int j0, int nr, int k0, int kc)
{
    const col_src *cs = ctx;
    col_rows(dst, NR, cs->x, cs->d, k0, kc, j0, nr);
    for (int t = 0; nr < NR && t < kc; t++)
        memset(dst + (size_t)t * NR + nr, 0, sizeof(float) * (size_t)(NR - nr));
}

/* dx[Cg, H, W] += dcol[T, j0 .. j0 + nj) (ld apart): each tap's column back
 * where it read */
HOT static void col2im_add(float *restrict dx, const float *restrict dcol, size_t ld, int j0, int nj, int T,
                       const nnrt_conv2d_dims *d)
{
    int RS = d->R * d->S;
    for (int k = 0; k < T; k++) {
        int c = k / RS, r = k % RS / d->S, s = k % d->S;
        float *xc = dx + (size_t)c * d->H * d->W;
        const float *src = dcol + (size_t)k * ld;
        int q0, q1, off = s * d->dil_w - d->pad_w;
        valid_range(&q0, &q1, off, d->stride_w, d->W, d->Q);
        int j = 0, p = j0 / d->Q, q = j0 % d->Q;
        while (j < nj) {
            int run = nj - j < d->Q - q ? nj - j : d->Q - q;
            int h = p * d->stride_h - d->pad_h + r * d->dil_h;
            int lo = q0 > q ? q0 : q, hi = q1 < q + run ? q1 : q + run;
            if (h >= 0 && h < d->H) {
                float *row = xc + (size_t)h * d->W + off;
                const float *sj = src + j - q;
                if (d->stride_w == 1)
                    for (int u = lo; u < hi; u++)
                        row[u] += sj[u];
                else if (d->stride_w == 2)
                    scatter2_add(row, sj, lo, hi, d->W - off);
                else
                    for (int u = lo; u < hi; u++)
                        row[u * d->stride_w] += sj[u];
            }
            j += run;
            p++;
            q = 0;
        }
    }
}

/* ---- the calls ---- */

/* the tasks on the pool's threads, or all here for small work */
static void run(void (*fn)(void *, int), void *ctx, int ntasks, double macs)
{
    if (macs >= NNRT_PAR_MACS && ntasks > 1 && nnrt_threads() > 1)
        nnrt_parallel(fn, ctx, ntasks);
    else
        for (int i = 0; i < ntasks; i++)
            fn(ctx, i);
}

typedef struct conv_call {
    float *out;                     /* forward: y; d input: dx; d weight: dw */
    const float *x, *w, *b, *dy;
    const float *wp;                /* the weights packed, per group */
    const nnrt_conv2d_dims *d;
    int Cg, Kg, T, L, chunk, nchunks;
    int per;                        /* forward of few pixels: samples a task */
} conv_call;

/* a task of few-pixel samples: samples task*per .. + per - 1 as the columns
 * of one product, into a block in scratch, then each sample's part to y */
static void fwd_samples_task(void *arg, int task)
{
    const conv_call *cc = arg;
    const nnrt_conv2d_dims *d = cc->d;
    int n0 = task * cc->per, ns = d->N - n0 < cc->per ? d->N - n0 : cc->per, cols = ns * cc->L;
    float *bp = nnrt_scratch(0, (size_t)KC * NC);
    float *blk = nnrt_scratch(3, (size_t)cc->Kg * NC);
    for (int g = 0; g < d->groups; g++) {
        cols_src cs = {cc->x + (size_t)g * cc->Cg * d->H * d->W, d, n0, cc->L};
        gemm_call gc = {
            .M = cc->Kg, .N = cols, .K = cc->T,
            .ap = cc->wp + (size_t)g * round_up(cc->Kg, MR) * cc->T, .pack_b = pack_cols, .bctx = &cs,
            .c = blk, .ldc = (size_t)cols,
            .bias = cc->b ? cc->b + (size_t)g * cc->Kg : NULL, .relu = d->relu,
        };
        gemm_block(&gc, 0, cc->Kg, 0, cols, bp, NULL);
        for (int i = 0; i < ns; i++)
            for (int k = 0; k < cc->Kg; k++)
                memcpy(cc->out + (((size_t)n0 + i) * d->K + (size_t)g * cc->Kg + k) * cc->L,
                       blk + (size_t)k * cols + (size_t)i * cc->L, sizeof(float) * (size_t)cc->L);
    }
}

static void fwd_task(void *arg, int task)
{
    const conv_call *cc = arg;
    const nnrt_conv2d_dims *d = cc->d;
    int n = task / cc->nchunks, j0 = task % cc->nchunks * cc->chunk;
    int j1 = j0 + cc->chunk < cc->L ? j0 + cc->chunk : cc->L;
    float *bp = nnrt_scratch(0, (size_t)KC * NC);
    for (int g = 0; g < d->groups; g++) {
        const float *xg = cc->x + ((size_t)n * d->C + (size_t)g * cc->Cg) * d->H * d->W;
        col_src cs = {xg, d};
        gemm_mat xm = {xg, cc->L, 1};
        int pw = is_pointwise(d);
        gemm_call gc = {
            .M = cc->Kg, .N = cc->L, .K = cc->T,
            .ap = cc->wp + (size_t)g * round_up(cc->Kg, MR) * cc->T,
            .pack_b = pw ? gemm_pack_b_mat : pack_col, .bctx = pw ? (const void *)&xm : &cs,
            .c = cc->out + ((size_t)n * d->K + (size_t)g * cc->Kg) * cc->L, .ldc = (size_t)cc->L,
            .bias = cc->b ? cc->b + (size_t)g * cc->Kg : NULL, .relu = d->relu,
        };
        gemm_block(&gc, 0, cc->Kg, j0, j1, bp, NULL);
    }
}

void conv2d_forward_gemm(float *y, const float *x, const float *w, const float *b, const nnrt_conv2d_dims *d)
{
    conv_call cc = {.out = y, .x = x, .w = w, .b = b, .d = d};
    cc.Cg = d->C / d->groups;
    cc.Kg = d->K / d->groups;
    cc.T = cc.Cg * d->R * d->S;
    cc.L = d->P * d->Q;
    float *wp = nnrt_scratch(1, (size_t)d->groups * round_up(cc.Kg, MR) * cc.T);
    for (int g = 0; g < d->groups; g++) {     /* a[i][t] = w[g*Kg + i][t] */
        gemm_mat wm = {w + (size_t)g * cc.Kg * cc.T, cc.T, 1};
        gemm_call pc = {.M = cc.Kg, .K = cc.T, .pack_a = gemm_pack_a_mat, .actx = &wm};
        gemm_pack_a(wp + (size_t)g * round_up(cc.Kg, MR) * cc.T, &pc);
    }
    cc.wp = wp;
    int threads = nnrt_threads();
    double macs = (double)d->N * d->K * cc.T * cc.L;
    if (cc.L <= CONV_FEW_PIXELS && d->N > 1) {  /* few pixels: samples side by side, as many as NC */
        cc.per = NC / cc.L;
        while (cc.per > 1 && (d->N + cc.per - 1) / cc.per < 2 * threads)
            cc.per /= 2;
        run(fwd_samples_task, &cc, (d->N + cc.per - 1) / cc.per, macs);
        return;
    }
    /* at least two tasks per thread where the batch alone gives fewer */
    cc.chunk = NC;
    while (cc.chunk > NR && d->N * ((cc.L + cc.chunk - 1) / cc.chunk) < 2 * threads)
        cc.chunk /= 2;
    cc.nchunks = (cc.L + cc.chunk - 1) / cc.chunk;
    run(fwd_task, &cc, d->N * cc.nchunks, macs);
}

static void dx_task(void *arg, int n)
{
    const conv_call *cc = arg;
    const nnrt_conv2d_dims *d = cc->d;
    int pw = is_pointwise(d);
    float *bp = nnrt_scratch(0, (size_t)KC * NC);
    float *dcol = pw ? NULL : nnrt_scratch(3, (size_t)cc->T * NC);
    for (int g = 0; g < d->groups; g++) {
        float *dxg = cc->out + ((size_t)n * d->C + (size_t)g * cc->Cg) * d->H * d->W;
        gemm_mat dym = {cc->dy + ((size_t)n * d->K + (size_t)g * cc->Kg) * cc->L, cc->L, 1};
        gemm_call gc = {
            .M = cc->T, .N = cc->L, .K = cc->Kg,
            .ap = cc->wp + (size_t)g * round_up(cc->T, MR) * cc->Kg,
            .pack_b = gemm_pack_b_mat, .bctx = &dym,
        };
        if (pw) {                   /* dx = w^T dy itself */
            gc.c = dxg;
            gc.ldc = (size_t)cc->L;
            gc.accumulate = !d->assign_dx;
            gemm_block(&gc, 0, cc->T, 0, cc->L, bp, NULL);
            continue;
        }
        if (d->assign_dx)
            memset(dxg, 0, sizeof(float) * (size_t)cc->Cg * d->H * d->W);
        for (int j0 = 0; j0 < cc->L; j0 += NC) {
            int nj = cc->L - j0 < NC ? cc->L - j0 : NC;
            gc.c = dcol;            /* dcol[T, nj]: the block's columns */
            gc.ldc = (size_t)nj;
            gemm_mat dyb = {dym.p + j0, cc->L, 1};
            gc.bctx = &dyb;
            gc.N = nj;
            gemm_block(&gc, 0, cc->T, 0, nj, bp, NULL);
            col2im_add(dxg, dcol, (size_t)nj, j0, nj, cc->T, d);
        }
    }
}

/* d weight's tasks: group g, a block of taps and a block of out channels;
 * for each sample and run of pixels the block's rows of col and of dy are
 * copied (zero to a multiple of 16 pixels, and of 4 rows), then
 * dw[k][t] += sum over the pixels of dy[k][.] * col[t][.] */
enum { DW_JC = CONV_DW_JC, DW_TB = CONV_DW_TB };
typedef struct dw_call {
    const conv_call *cc;
    int tblocks, kblocks, kb;       /* taps by DW_TB, out channels by kb */
} dw_call;

static void dw_task(void *arg, int task)
{
    const dw_call *dc = arg;
    const conv_call *cc = dc->cc;
    const nnrt_conv2d_dims *d = cc->d;
    int g = task / (dc->tblocks * dc->kblocks), rest = task % (dc->tblocks * dc->kblocks);
    int t0 = rest / dc->kblocks * DW_TB, k0 = rest % dc->kblocks * dc->kb;
    int nt = cc->T - t0 < DW_TB ? cc->T - t0 : DW_TB, nk = cc->Kg - k0 < dc->kb ? cc->Kg - k0 : dc->kb;
    int ntp = round_up(nt, 4), nkp = round_up(nk, 4);
    float *colb = nnrt_scratch(0, (size_t)(ntp + nkp) * DW_JC), *dyb = colb + (size_t)ntp * DW_JC;
    float *dw = cc->out + ((size_t)g * cc->Kg + k0) * cc->T + t0;
    /* blocks of the reduction over (n, pixel): a run of whole samples when
     * they are small, else a sample's pixels DW_JC at a time */
    int per = cc->L < DW_JC ? DW_JC / cc->L : 1;
    for (int n0 = 0; n0 < d->N; n0 += per) {
        int ns = d->N - n0 < per ? d->N - n0 : per;
        for (int j0 = 0; j0 < cc->L; j0 += DW_JC) {
            int nj = cc->L - j0 < DW_JC ? cc->L - j0 : DW_JC, used = ns * nj, ld = round_up(used, 16);
            for (int i = 0; i < ns; i++) {
                size_t n = (size_t)(n0 + i);
                const float *xg = cc->x + (n * d->C + (size_t)g * cc->Cg) * d->H * d->W;
                const float *dyg = cc->dy + (n * d->K + (size_t)g * cc->Kg + k0) * cc->L + j0;
                col_rows(colb + (size_t)i * nj, (size_t)ld, xg, d, t0, nt, j0, nj);
                for (int k = 0; k < nk; k++)
                    memcpy(dyb + (size_t)k * ld + (size_t)i * nj, dyg + (size_t)k * cc->L,
                           sizeof(float) * (size_t)nj);
            }
            for (int t = 0; t < ntp; t++)       /* zeros past the pixels, and in the rows past nt */
                memset(colb + (size_t)t * ld + (t < nt ? used : 0), 0,
                       sizeof(float) * (size_t)(ld - (t < nt ? used : 0)));
            for (int k = 0; k < nkp; k++)
                memset(dyb + (size_t)k * ld + (k < nk ? used : 0), 0,
                       sizeof(float) * (size_t)(ld - (k < nk ? used : 0)));
            gemm_nt_acc(dw, (size_t)cc->T, dyb, (size_t)ld, colb, (size_t)ld, nk, nt, ld);
        }
    }
}

void conv2d_backward_gemm(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                          const nnrt_conv2d_dims *d)
{
    conv_call cc = {.x = x, .w = w, .dy = dy, .d = d};
    cc.Cg = d->C / d->groups;
    cc.Kg = d->K / d->groups;
    cc.T = cc.Cg * d->R * d->S;
    cc.L = d->P * d->Q;
    double macs = (double)d->N * d->K * cc.T * cc.L;
    if (db)
        for (int k = 0; k < d->K; k++) {
            float s = 0;
            for (int n = 0; n < d->N; n++)
                s += sum_floats(dy + ((size_t)n * d->K + k) * cc.L, (size_t)cc.L);
            db[k] += s;
        }
    if (dw) {
        int threads = nnrt_threads();
        dw_call dc = {.cc = &cc, .tblocks = (cc.T + DW_TB - 1) / DW_TB, .kb = cc.Kg};
        cc.out = dw;
        /* out channels by blocks of 4 or more when the taps give few tasks */
        while (dc.kb > 4 && d->groups * dc.tblocks * ((cc.Kg + dc.kb - 1) / dc.kb) < 2 * threads)
            dc.kb = round_up(dc.kb / 2, 4);
        dc.kblocks = (cc.Kg + dc.kb - 1) / dc.kb;
        run(dw_task, &dc, d->groups * dc.tblocks * dc.kblocks, macs);
    }
    if (dx) {
        float *wt = nnrt_scratch(1, (size_t)d->groups * round_up(cc.T, MR) * cc.Kg);
        for (int g = 0; g < d->groups; g++) {     /* a[t][i] = w[g*Kg + i][t] */
            gemm_mat wm = {w + (size_t)g * cc.Kg * cc.T, 1, cc.T};
            gemm_call pc = {.M = cc.T, .K = cc.Kg, .pack_a = gemm_pack_a_mat, .actx = &wm};
            gemm_pack_a(wt + (size_t)g * round_up(cc.T, MR) * cc.Kg, &pc);
        }
        cc.wp = wt;
        cc.out = dx;
        run(dx_task, &cc, d->N, macs);
    }
}
