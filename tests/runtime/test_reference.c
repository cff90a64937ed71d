/* test_reference.c — every fast kernel path against its plain reference.
 *
 * The convolution's fast path (conv2d_forward.c, conv2d_backward.c,
 * conv2d_pooled.c), the fully connected layer's tiles (linear.c) and max
 * pooling's 2x2 path (pool_2x2.c) are compared with the reference loops
 * (conv2d_ref.c, linear_ref.c, pool_ref.c) on the same random inputs:
 * forward, d input, d weight and d bias, at odd sizes, batch 1 and more. Each case names the path its shape takes; the name is
 * computed from the dispatch's own conditions (conv_geometry, the lanes
 * and row-run tests, conv2d_sparse_*_ok, the tile choices of linear.c),
 * and the end checks that every path was taken by some case, so a change
 * of those conditions that leaves a path untested fails here.
 *
 * The fast paths sum in another order than the reference loops, and with
 * fused multiply-adds, so they are compared within 1e-5 of the largest
 * magnitude of the result (the error of a sum is relative to the size of
 * its terms, not of the sum, which may cancel); a shape the dispatch sends
 * to the reference itself must give its bits exactly, and so must max
 * pooling, whose paths promise the reference's bits.
 *
 * Built twice by tests/run.sh, like test_kernels.c: against build/libnnrt.a
 * (AVX-512 where the machine has it) and build/portable/libnnrt.a (no
 * AVX-512, no per-CPU clones), so each build checks the paths it takes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt.h"
#include "kernel_check.h"

#include "kernel.h"

#define TOL 1e-5

/* max |got - want| / max |want| (a NaN counts as infinite) */
static double rel_err(const float *got, const float *want, size_t n)
{
    double worst = 0.0, mag = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)want[i]);
        if (!(e <= worst))
            worst = isnan(e) ? INFINITY : e;
        if (fabs((double)want[i]) > mag)
            mag = fabs((double)want[i]);
    }
    return worst / (mag > 0.0 ? mag : 1.0);
}

/* 1 when got and want differ in a bit */
static double differ(const float *got, const float *want, size_t n)
{
    return memcmp(got, want, n * sizeof *got) != 0;
}

static float *copy_floats(const float *src, size_t n)
{
    float *p = alloc_floats(n);
    memcpy(p, src, n * sizeof *p);
    return p;
}

static int avx512(void)
{
#ifdef NNRT_AVX512
    return has_avx512();
#else
    return 0;
#endif
}

/* ---- which paths were taken ---- */

enum {
    CONV_DW_FWD,            /* conv_depthwise: the forward, plane by plane */
    CONV_DW_DX_FWD,         /* ... d input of stride 1 as a forward over dy */
    CONV_DW_DX_SCATTER,     /* ... d input tap by tap (strides, or padding past the kernel) */
    CONV_DW_DW,             /* ... d weight */
    CONV_GEMM_FWD,          /* conv_gemm_path: the forward by im2col panels */
    CONV_GEMM_FWD_POINT,    /* ... a 1x1 kernel of stride 1: x itself */
    CONV_GEMM_FWD_PARTS,    /* ... a sample shared between threads */
    CONV_GEMM_FWD_SAMPLES,  /* ... samples of few pixels side by side */
    CONV_GEMM_DX,           /* d input by col2im */
    CONV_GEMM_DX_POINT,     /* ... straight into dx */
    CONV_GEMM_DW,           /* d weight by dot products along pixels */
    CONV_GEMM_DW_SPLIT,     /* ... out channels split between threads */
    CONV_FWD_CORR,          /* corr_tile (Kg < CONV_KVMIN) */
    CONV_FWD_CORR_HALF,     /* ... its half tile for a plane's last <= 16 pixels */
    CONV_FWD_LANES,         /* lanes_tile (Kg >= CONV_KVMIN) */
    CONV_FWD_ROWS,          /* lanes_row_tile (AVX-512, S 3, 5 or 7, dil_w 1, Q >= 6) */
    CONV_FWD_PARTS,         /* a sample shared between threads */
    CONV_BWD_DW_ROWS,       /* d weight by rows (dw_block) */
    CONV_BWD_DW_LANES,      /* d weight by lanes (dwv_block) */
    CONV_BWD_DX_WIDE,       /* d input tiles of 64 pixels (Cg < 7) */
    CONV_BWD_DX_NARROW,     /* ... of 48 (Cg >= 7) */
    CONV_BWD_CHUNKS,        /* by chunk of CONV_CHUNK samples on threads */
    CONV_BWD_SLICES,        /* a first layer's d weight by slices of out channels */
    CONV_BWD_DEFER,         /* d weight left to a worker (defer_dw) */
    CONV_BWD_DX_PARTS,      /* one sample's d input shared between threads */
    CONV_POOLED_SPARSE_DX,  /* conv2d_sparse_dx */
    CONV_POOLED_SPARSE_DW,  /* conv2d_sparse_dw */
    CONV_POOLED_DENSE,      /* conv2d_backward_fast with the pool's dy */
    CONV_POOLED_GEMM,       /* the pool's dy, then conv2d_gemm.c */
    LIN_FWD_ROWS_AVX512,    /* fwd_rows_avx512, all rows in one loop */
    LIN_FWD_ROWS_TASKS,     /* N <= LIN_ROWS in tasks (fwd_rows_avx512 or fwd_row) */
    LIN_FWD_TILE,           /* fwd_tile of LIN_NS samples */
    LIN_FWD_TILE_HALF,      /* ... of LIN_NS / 2 */
    LIN_FWD_GEMM,           /* lin_forward_gemm: gemm.c's packed panels */
    LIN_BWD_SMALL,          /* bwd_small, features in whole vectors */
    LIN_BWD_SMALL_KEEP,     /* ... and one overlapping vector */
    LIN_BWD_SMALL_ROWS,     /* ... IN < 16: bwd_rows */
    LIN_BWD_ROWS,           /* IN < 32: bwd_rows */
    LIN_BWD_TILES,          /* axpy tiles */
    LIN_SGD_FUSED,          /* nnrt_linear_backward_sgd, N <= LIN_ROWS: the update in the pass */
    LIN_SGD_SPLIT,          /* ... N > LIN_ROWS: backward, then nnrt_sgd_step */
    POOL_2X2,               /* max pooling's 2x2 path (with AVX-512 where the machine has it) */
    POOL_2X2_PLAIN,         /* ... a window shape pool.c sends to the reference */
    NPATHS
};
static const char *path_names[NPATHS] = {
    "conv depthwise fwd", "conv depthwise dx fwd", "conv depthwise dx scatter", "conv depthwise dw",
    "conv gemm fwd", "conv gemm fwd 1x1", "conv gemm fwd parts", "conv gemm fwd samples", "conv gemm dx", "conv gemm dx 1x1",
    "conv gemm dw", "conv gemm dw split", "conv fwd corr", "conv fwd corr half", "conv fwd lanes", "conv fwd rows",
    "conv fwd parts", "conv bwd dw rows", "conv bwd dw lanes", "conv bwd dx 64", "conv bwd dx 48",
    "conv bwd chunks", "conv bwd slices", "conv bwd defer", "conv bwd dx parts", "conv pooled sparse dx",
    "conv pooled sparse dw", "conv pooled dense", "conv pooled gemm", "linear fwd rows avx512",
    "linear fwd rows tasks", "linear fwd tile", "linear fwd tile half", "linear fwd gemm", "linear bwd small",
    "linear bwd small keep", "linear bwd small rows", "linear bwd rows", "linear bwd tiles",
    "linear sgd fused", "linear sgd split", "maxpool 2x2", "maxpool 2x2 shape, reference",
};
static int taken[NPATHS];

/* ---- convolution ---- */

static nnrt_conv2d_dims conv_dims(int N, int C, int H, int W, int K, int R, int S, int stride, int pad, int dil_h,
                                  int dil_w, int groups)
{
    nnrt_conv2d_dims d = {.N = N, .C = C, .H = H, .W = W, .K = K, .R = R, .S = S, .stride_h = stride,
                          .stride_w = stride, .pad_h = pad, .pad_w = pad, .dil_h = dil_h, .dil_w = dil_w,
                          .groups = groups};
    d.P = (H + 2 * pad - dil_h * (R - 1) - 1) / stride + 1;
    d.Q = (W + 2 * pad - dil_w * (S - 1) - 1) / stride + 1;
    return d;
}

static size_t conv_nx(const nnrt_conv2d_dims *d) { return (size_t)d->N * d->C * d->H * d->W; }
static size_t conv_ny(const nnrt_conv2d_dims *d) { return (size_t)d->N * d->K * d->P * d->Q; }
static size_t conv_nw(const nnrt_conv2d_dims *d) { return (size_t)d->K * (d->C / d->groups) * d->R * d->S; }

static int pointwise(const nnrt_conv2d_dims *d)
{
    return d->R == 1 && d->S == 1 && d->stride_h == 1 && d->stride_w == 1 && d->pad_h == 0 && d->pad_w == 0;
}

static double conv_macs(const nnrt_conv2d_dims *d)
{
    return (double)d->N * d->K * (d->C / d->groups) * d->R * d->S * d->P * d->Q;
}

/* every shape takes a fast path (the plain loops are left for sizes past an int) */
static int conv_fast(const nnrt_conv2d_dims *d)
{
    conv_geom g;
    return conv_depthwise(d) || conv_gemm_path(d) || conv_geometry(&g, d);
}

/* the forward's path, by nnrt_conv2d_forward's and conv2d_forward_fast's conditions */
static void conv_fwd_paths(char *name, size_t len, const nnrt_conv2d_dims *d, int threads)
{
    conv_geom g;
    int n = 0;
    n += snprintf(name + n, len - n, "conv fwd %dx%dx%dx%d K%d %dx%d g%d:", d->N, d->C, d->H, d->W, d->K, d->R,
                  d->S, d->groups);
    if (conv_depthwise(d)) {
        taken[CONV_DW_FWD] = 1;
        snprintf(name + n, len - n, " depthwise");
        return;
    }
    if (conv_gemm_path(d)) {
        int point = pointwise(d);
        taken[point ? CONV_GEMM_FWD_POINT : CONV_GEMM_FWD] = 1;
        n += snprintf(name + n, len - n, point ? " gemm 1x1" : " gemm");
        if (d->P * d->Q <= CONV_FEW_PIXELS && d->N > 1) {
            taken[CONV_GEMM_FWD_SAMPLES] = 1;
            snprintf(name + n, len - n, " samples");
            return;
        }
        if (threads > 1 && conv_macs(d) >= NNRT_PAR_MACS && d->N < 2 * threads) {
            taken[CONV_GEMM_FWD_PARTS] = 1;
            snprintf(name + n, len - n, " parts");
        }
        return;
    }
    if (!conv_geometry(&g, d)) {
        snprintf(name + n, len - n, " plain?");
        return;
    }
    if (g.Kg >= CONV_KVMIN) {
        int rows = avx512() && (d->S == 3 || d->S == 5 || d->S == 7) && d->dil_w == 1 && d->Q >= 6;
        taken[rows ? CONV_FWD_ROWS : CONV_FWD_LANES] = 1;
        n += snprintf(name + n, len - n, rows ? " rows" : " lanes");
    } else {
        taken[CONV_FWD_CORR] = 1;
        n += snprintf(name + n, len - n, " corr");
        if (g.L % CONV_VL && g.L % CONV_VL <= CONV_VL / 2) {
            taken[CONV_FWD_CORR_HALF] = 1;
            n += snprintf(name + n, len - n, " half");
        }
    }
    if (threads > 1 && (double)d->N * d->K * g.T * d->P * d->Q >= NNRT_PAR_MACS && d->N < threads) {
        taken[CONV_FWD_PARTS] = 1;
        snprintf(name + n, len - n, " parts");
    }
}

/* y from nnrt_conv2d_forward against conv2d_forward_ref (then the ReLU) */
static void conv_forward_case(nnrt_conv2d_dims d, int bias, int relu, int threads)
{
    char name[160];
    d.relu = relu;
    conv_fwd_paths(name, sizeof name, &d, threads);
    if (relu)
        strncat(name, " relu", sizeof name - strlen(name) - 1);
    float *x = random_floats(conv_nx(&d)), *w = random_floats(conv_nw(&d));
    float *b = bias ? random_floats((size_t)d.K) : NULL;
    float *y = random_floats(conv_ny(&d)), *want = random_floats(conv_ny(&d));
    nnrt_set_threads(threads);
    nnrt_conv2d_forward(y, x, w, b, &d);
    nnrt_set_threads(1);
    conv2d_forward_ref(want, x, w, b, &d);
    for (size_t i = 0; relu && i < conv_ny(&d); i++)
        want[i] = want[i] < 0.0f ? 0.0f : want[i];
    check(name, conv_fast(&d) ? rel_err(y, want, conv_ny(&d)) : differ(y, want, conv_ny(&d)),
          conv_fast(&d) ? TOL : 0);
    free(x), free(w), free(b), free(y), free(want);
}

/* the backward's paths, by conv2d_backward_fast's conditions */
static void conv_bwd_paths(char *name, size_t len, const nnrt_conv2d_dims *d, int dx, int dw, int threads)
{
    conv_geom g;
    int n = 0;
    n += snprintf(name + n, len - n, "conv bwd %dx%dx%dx%d K%d %dx%d g%d%s%s:", d->N, d->C, d->H, d->W, d->K, d->R,
                  d->S, d->groups, dx ? " dx" : "", dw ? " dw" : "");
    if (conv_depthwise(d)) {
        int as_fwd = d->stride_h == 1 && d->stride_w == 1 && d->pad_h <= (d->R - 1) * d->dil_h &&
                     d->pad_w <= (d->S - 1) * d->dil_w;
        if (dx) {
            taken[as_fwd ? CONV_DW_DX_FWD : CONV_DW_DX_SCATTER] = 1;
            n += snprintf(name + n, len - n, as_fwd ? " dw-dx fwd" : " dw-dx scatter");
        }
        if (dw) {
            taken[CONV_DW_DW] = 1;
            snprintf(name + n, len - n, " dw-dw");
        }
        return;
    }
    if (conv_gemm_path(d)) {
        int point = pointwise(d);
        if (dx) {
            taken[point ? CONV_GEMM_DX_POINT : CONV_GEMM_DX] = 1;
            n += snprintf(name + n, len - n, point ? " gemm-dx 1x1" : " gemm-dx");
        }
        if (dw) {
            /* conv2d_backward_gemm's split: tasks from taps, out channels too when they are few */
            int tasks = d->groups * ((d->C / d->groups * d->R * d->S + CONV_DW_TB - 1) / CONV_DW_TB);
            int split = threads > 1 && conv_macs(d) >= NNRT_PAR_MACS && d->K / d->groups > 4 &&
                        tasks < 2 * threads;
            taken[split ? CONV_GEMM_DW_SPLIT : CONV_GEMM_DW] = 1;
            n += snprintf(name + n, len - n, split ? " gemm-dw split" : " gemm-dw");
        }
        return;
    }
    if (!conv_geometry(&g, d)) {
        snprintf(name + n, len - n, " plain?");
        return;
    }
    conv_bwd_sizes z;
    conv_backward_sizes(&z, d, &g, dx, dw, 1);
    if (dw) {
        taken[z.lanes ? CONV_BWD_DW_LANES : CONV_BWD_DW_ROWS] = 1;
        n += snprintf(name + n, len - n, z.lanes ? " dw-lanes" : " dw-rows");
    }
    if (dx) {
        taken[g.Cg < 7 ? CONV_BWD_DX_WIDE : CONV_BWD_DX_NARROW] = 1;
        n += snprintf(name + n, len - n, g.Cg < 7 ? " dx-64" : " dx-48");
    }
    int t = conv_backward_macs(d, &g, z.ns, dx, dw) < NNRT_PAR_MACS / 2 ? 1 : threads;
    int chunks = t > 1 && z.nchunks > 1;
    if (chunks) {
        taken[CONV_BWD_CHUNKS] = 1;
        n += snprintf(name + n, len - n, " chunks");
    }
    if (d->defer_dw && !chunks && t > 1 && dx && dw) {
        taken[CONV_BWD_DEFER] = 1;
        n += snprintf(name + n, len - n, " defer");
        return;
    }
    if (!dx && dw && !z.lanes && g.G == 1 && z.nchunks == 1 && d->K > 1 && t > 1) {
        taken[CONV_BWD_SLICES] = 1;
        n += snprintf(name + n, len - n, " slices");
    }
    if (!chunks && dx && t > 1 && z.ns < t && g.G * ((g.Cg + CONV_MR - 1) / CONV_MR) > 1) {
        taken[CONV_BWD_DX_PARTS] = 1;
        snprintf(name + n, len - n, " dx-parts");
    }
}

/* dx, dw, db from nnrt_conv2d_backward (into gradients that already hold
 * something: the backward adds) against conv2d_backward_ref; with
 * assign_dx, dx starts as garbage on the fast side and zero on the other */
static void conv_backward_case(nnrt_conv2d_dims d, int want_dx, int want_dw, int threads, int defer, int assign)
{
    char name[200];
    d.defer_dw = defer, d.assign_dx = assign;
    conv_bwd_paths(name, sizeof name, &d, want_dx, want_dw, threads);
    if (assign)
        strncat(name, " assign", sizeof name - strlen(name) - 1);
    size_t nx = conv_nx(&d), nw = conv_nw(&d), K = (size_t)d.K;
    float *x = random_floats(nx), *w = random_floats(nw), *dy = random_floats(conv_ny(&d));
    float *dx = random_floats(nx), *dw = random_floats(nw), *db = random_floats(K);
    float *rdx = assign ? alloc_floats(nx) : copy_floats(dx, nx), *rdw = copy_floats(dw, nw);
    float *rdb = copy_floats(db, K);
    nnrt_set_threads(threads);
    nnrt_conv2d_backward(want_dx ? dx : NULL, want_dw ? dw : NULL, want_dw ? db : NULL, dy, x, w, &d);
    nnrt_join();
    nnrt_set_threads(1);
    conv2d_backward_ref(want_dx ? rdx : NULL, want_dw ? rdw : NULL, want_dw ? rdb : NULL, dy, x, w, &d);
    int fast = conv_fast(&d);
    char sub[240];
    if (want_dx) {
        snprintf(sub, sizeof sub, "%s / dx", name);
        check(sub, fast ? rel_err(dx, rdx, nx) : differ(dx, rdx, nx), fast ? TOL : 0);
    }
    if (want_dw) {
        snprintf(sub, sizeof sub, "%s / dw", name);
        check(sub, fast ? rel_err(dw, rdw, nw) : differ(dw, rdw, nw), fast ? TOL : 0);
        snprintf(sub, sizeof sub, "%s / db", name);
        check(sub, fast ? rel_err(db, rdb, K) : differ(db, rdb, K), fast ? TOL : 0);
    }
    free(x), free(w), free(dy), free(dx), free(dw), free(db), free(rdx), free(rdw), free(rdb);
}

static void conv_cases(void)
{
    printf("-- convolution: the fast path against conv2d_ref.c --\n");
    /* forward: corr_tile, whole and part tiles (81 pixels: 32, 32, 17), 5 channels a tile */
    conv_forward_case(conv_dims(2, 3, 9, 9, 5, 3, 3, 1, 1, 1, 1, 1), 1, 0, 1);
    /* corr_tile's half tile (48 pixels: 32 + 16), blocks of 8 and 2 channels, no bias */
    conv_forward_case(conv_dims(3, 2, 8, 10, 10, 3, 3, 1, 0, 1, 1, 1), 0, 0, 1);
    /* groups, dilation, padding, the ReLU, batch 1 */
    conv_forward_case(conv_dims(1, 4, 11, 11, 6, 3, 3, 1, 1, 2, 2, 2), 1, 1, 1);
    /* lanes: 20 out channels (a block of 16 and one of 4), a 4-wide kernel (no row runs) */
    conv_forward_case(conv_dims(2, 3, 10, 10, 20, 4, 4, 1, 2, 1, 1, 1), 1, 0, 1);
    /* lanes with dilation in width (no row runs), groups of 12 */
    conv_forward_case(conv_dims(1, 4, 9, 13, 24, 3, 3, 1, 1, 1, 2, 2), 1, 1, 1);
    /* row runs: 5x5, padding, dilation in height, runs of 12; of 10 (20 wide); of 7 */
    conv_forward_case(conv_dims(1, 3, 16, 12, 16, 5, 5, 1, 2, 2, 1, 1), 1, 0, 1);
    conv_forward_case(conv_dims(2, 2, 8, 22, 17, 3, 3, 1, 0, 1, 1, 1), 0, 1, 1);
    conv_forward_case(conv_dims(1, 1, 13, 13, 12, 7, 7, 1, 0, 1, 1, 1), 1, 0, 1);
    /* a sample shared between 2 threads: corr_tile and row runs */
    conv_forward_case(conv_dims(1, 8, 28, 28, 10, 5, 5, 1, 0, 1, 1, 1), 1, 0, 2);
    conv_forward_case(conv_dims(1, 6, 14, 14, 16, 5, 5, 1, 2, 1, 1, 1), 1, 1, 2);
    /* by matrix products: stride 2, and an output under CONV_VL pixels */
    conv_forward_case(conv_dims(2, 3, 9, 9, 4, 3, 3, 2, 1, 1, 1, 1), 1, 1, 1);
    conv_forward_case(conv_dims(2, 3, 7, 7, 4, 3, 3, 1, 0, 1, 1, 1), 1, 0, 1);
    /* 144 taps (two blocks of the reduction), 20 out channels (tiles of 8, 8, 4), 81 pixels */
    conv_forward_case(conv_dims(3, 16, 17, 17, 20, 3, 3, 2, 1, 1, 1, 1), 1, 1, 1);
    /* 400 pixels (two column blocks), groups, dilation with stride, odd width */
    conv_forward_case(conv_dims(2, 8, 40, 41, 12, 3, 3, 2, 1, 1, 1, 2), 1, 0, 1);
    conv_forward_case(conv_dims(2, 4, 15, 16, 8, 3, 3, 2, 2, 2, 2, 1), 0, 1, 1);
    /* 1x1 of stride 1 on 25 pixels (x itself) and of stride 2 */
    conv_forward_case(conv_dims(2, 6, 5, 5, 10, 1, 1, 1, 0, 1, 1, 1), 1, 0, 1);
    conv_forward_case(conv_dims(4, 4, 12, 12, 8, 1, 1, 2, 0, 1, 1, 1), 1, 1, 1);
    /* depthwise: stride 1 and 2, 21 columns (16 and 5), 5x5 with dilation, stride 3, 2 threads */
    conv_forward_case(conv_dims(2, 6, 11, 11, 6, 3, 3, 2, 1, 1, 1, 6), 1, 0, 1);
    conv_forward_case(conv_dims(3, 5, 13, 21, 5, 3, 3, 1, 1, 1, 1, 5), 1, 1, 1);
    conv_forward_case(conv_dims(2, 4, 17, 19, 4, 5, 5, 2, 3, 2, 2, 4), 0, 0, 1);
    conv_forward_case(conv_dims(2, 3, 20, 20, 3, 3, 3, 3, 0, 1, 1, 3), 1, 0, 1);
    conv_forward_case(conv_dims(4, 32, 16, 16, 32, 3, 3, 1, 1, 1, 1, 32), 1, 1, 2);
    /* a sample shared between 2 threads, and a batch */
    conv_forward_case(conv_dims(1, 16, 32, 32, 32, 3, 3, 2, 1, 1, 1, 1), 1, 1, 2);
    conv_forward_case(conv_dims(9, 16, 16, 16, 24, 3, 3, 2, 1, 1, 1, 1), 0, 0, 2);

    /* backward: d weight by rows, d input in tiles of 64, one chunk, 1 thread */
    conv_backward_case(conv_dims(3, 3, 9, 9, 5, 3, 3, 1, 1, 1, 1, 1), 1, 1, 1, 0, 0);
    /* ... 7 in channels (tiles of 48), groups, dilation, assign_dx */
    conv_backward_case(conv_dims(2, 14, 10, 11, 6, 3, 3, 1, 1, 2, 1, 2), 1, 1, 1, 0, 1);
    /* d weight by lanes, padded and not; batch 1 */
    conv_backward_case(conv_dims(1, 3, 12, 12, 20, 5, 5, 1, 2, 1, 1, 1), 1, 1, 1, 0, 0);
    conv_backward_case(conv_dims(2, 4, 10, 9, 24, 3, 3, 1, 0, 1, 2, 2), 1, 1, 1, 0, 0);
    /* by chunks on 2 threads: 20 samples, 3 chunks; rows and lanes */
    conv_backward_case(conv_dims(20, 3, 12, 12, 8, 5, 5, 1, 0, 1, 1, 1), 1, 1, 2, 0, 0);
    conv_backward_case(conv_dims(19, 4, 10, 10, 16, 3, 3, 1, 1, 1, 1, 1), 1, 1, 2, 0, 0);
    /* a first layer (no d input) on 2 threads: slices of out channels */
    conv_backward_case(conv_dims(8, 1, 28, 28, 6, 5, 5, 1, 0, 1, 1, 1), 0, 1, 2, 0, 0);
    /* d weight left to a worker while d input is computed */
    conv_backward_case(conv_dims(4, 6, 14, 14, 16, 5, 5, 1, 0, 1, 1, 1), 1, 1, 2, 1, 0);
    conv_backward_case(conv_dims(2, 3, 16, 16, 6, 5, 5, 1, 2, 1, 1, 1), 1, 1, 2, 1, 1);
    /* one sample's d input shared between 2 threads (16 in channels: 2 blocks) */
    conv_backward_case(conv_dims(1, 16, 14, 14, 10, 3, 3, 1, 1, 1, 1, 1), 1, 1, 2, 0, 0);
    /* d input only, and d weight only (1 thread) */
    conv_backward_case(conv_dims(2, 5, 11, 9, 7, 3, 2, 1, 1, 1, 1, 1), 1, 0, 1, 0, 0);
    conv_backward_case(conv_dims(2, 5, 11, 9, 13, 2, 3, 1, 1, 1, 1, 1), 0, 1, 1, 0, 0);
    /* by matrix products (stride 2, or few pixels): assign_dx; 144 taps, 20 out channels; groups and
     * 400 pixels; dilation; 1x1 of stride 1 and 2; depthwise; d weight only; on 2 threads: taps, and
     * out channels split; d input by sample */
    conv_backward_case(conv_dims(2, 3, 9, 9, 4, 3, 3, 2, 1, 1, 1, 1), 1, 1, 1, 0, 1);
    conv_backward_case(conv_dims(3, 16, 17, 17, 20, 3, 3, 2, 1, 1, 1, 1), 1, 1, 1, 0, 0);
    conv_backward_case(conv_dims(2, 8, 40, 41, 12, 3, 3, 2, 1, 1, 1, 2), 1, 1, 1, 0, 0);
    conv_backward_case(conv_dims(2, 4, 15, 16, 8, 3, 3, 2, 2, 2, 2, 1), 1, 1, 1, 0, 1);
    conv_backward_case(conv_dims(2, 6, 5, 5, 10, 1, 1, 1, 0, 1, 1, 1), 1, 1, 1, 0, 0);
    conv_backward_case(conv_dims(2, 6, 5, 5, 10, 1, 1, 1, 0, 1, 1, 1), 1, 0, 1, 0, 1);
    conv_backward_case(conv_dims(4, 4, 12, 12, 8, 1, 1, 2, 0, 1, 1, 1), 1, 1, 1, 0, 0);
    conv_backward_case(conv_dims(2, 6, 11, 11, 6, 3, 3, 2, 1, 1, 1, 6), 1, 1, 1, 0, 0);
    /* depthwise: d input as a forward (stride 1; 21 columns; assign), by taps (padding past the
     * kernel, 5x5 stride 2 with dilation, stride 3); on 2 threads */
    conv_backward_case(conv_dims(3, 5, 13, 21, 5, 3, 3, 1, 1, 1, 1, 5), 1, 1, 1, 0, 1);
    conv_backward_case(conv_dims(2, 4, 9, 9, 4, 3, 3, 1, 3, 1, 1, 4), 1, 1, 1, 0, 0);
    conv_backward_case(conv_dims(2, 4, 17, 19, 4, 5, 5, 2, 3, 2, 2, 4), 1, 1, 1, 0, 1);
    conv_backward_case(conv_dims(2, 3, 20, 20, 3, 3, 3, 3, 0, 1, 1, 3), 1, 1, 1, 0, 0);
    conv_backward_case(conv_dims(8, 32, 16, 16, 32, 3, 3, 2, 1, 1, 1, 32), 1, 1, 2, 0, 0);
    conv_backward_case(conv_dims(8, 32, 16, 16, 32, 3, 3, 1, 1, 1, 1, 32), 1, 1, 2, 0, 1);
    conv_backward_case(conv_dims(3, 5, 9, 9, 7, 3, 3, 2, 0, 1, 1, 1), 0, 1, 1, 0, 0);
    conv_backward_case(conv_dims(6, 24, 16, 16, 16, 3, 3, 2, 1, 1, 1, 1), 1, 1, 2, 0, 0);
    conv_backward_case(conv_dims(8, 3, 32, 32, 16, 3, 3, 2, 1, 1, 1, 1), 1, 1, 2, 0, 1);
}

/* ---- the convolution's backward through a 2x2 max-pool ---- */

/* nnrt_conv2d_backward_pooled against the pool's backward (from its
 * choices) followed by conv2d_backward_ref */
static void pooled_case(nnrt_conv2d_dims d, int threads, int defer, int assign)
{
    char name[200];
    int n = snprintf(name, sizeof name, "pooled %dx%dx%dx%d K%d %dx%d pad %d:", d.N, d.C, d.H, d.W, d.K, d.R,
                     d.S, d.pad_h);
    nnrt_pool2d_dims pd = {.N = d.N, .C = d.K, .H = d.P, .W = d.Q, .P = d.P / 2, .Q = d.Q / 2, .kh = 2, .kw = 2,
                           .stride_h = 2, .stride_w = 2};
    d.defer_dw = defer, d.assign_dx = assign;
    conv_geom g;
    nnrt_conv2d_dims dd = d;
    dd.pooled = 1;
    if (conv_depthwise(&dd) || conv_gemm_path(&dd)) {
        taken[CONV_POOLED_GEMM] = 1;
        n += snprintf(name + n, sizeof name - n, " gemm");
    } else if (!conv_geometry(&g, &dd)) {
        n += snprintf(name + n, sizeof name - n, " plain?");
    } else {
        int sdx = conv2d_sparse_dx_ok(&pd, &dd), sdw = conv2d_sparse_dw_ok(&pd, &dd);
        if (sdx)
            taken[CONV_POOLED_SPARSE_DX] = 1, n += snprintf(name + n, sizeof name - n, " sparse-dx");
        if (sdw)
            taken[CONV_POOLED_SPARSE_DW] = 1, n += snprintf(name + n, sizeof name - n, " sparse-dw");
        if (!sdx || !sdw)
            taken[CONV_POOLED_DENSE] = 1, n += snprintf(name + n, sizeof name - n, " dense");
    }
    if (defer)
        n += snprintf(name + n, sizeof name - n, " defer");
    if (assign)
        snprintf(name + n, sizeof name - n, " assign");
    size_t nx = conv_nx(&d), nw = conv_nw(&d), K = (size_t)d.K, ny = conv_ny(&d);
    size_t np = (size_t)pd.N * pd.C * pd.P * pd.Q;
    float *x = random_floats(nx), *w = random_floats(nw), *y = random_floats(ny), *pdy = random_floats(np);
    float *py = alloc_floats(np), *dy = alloc_floats(ny);
    unsigned char *arg = malloc(np);
    nnrt_maxpool2d_forward_argmax(py, arg, y, &pd);
    float *dx = random_floats(nx), *dw = random_floats(nw), *db = random_floats(K);
    float *rdx = assign ? alloc_floats(nx) : copy_floats(dx, nx), *rdw = copy_floats(dw, nw);
    float *rdb = copy_floats(db, K);
    nnrt_set_threads(threads);
    nnrt_conv2d_backward_pooled(dx, dw, db, pdy, arg, &pd, x, w, &d);
    nnrt_join();
    nnrt_set_threads(1);
    nnrt_maxpool2d_backward_argmax(dy, pdy, arg, &pd);      /* dy zero, += */
    conv2d_backward_ref(rdx, rdw, rdb, dy, x, w, &d);
    char sub[240];
    snprintf(sub, sizeof sub, "%s / dx", name);
    check(sub, rel_err(dx, rdx, nx), TOL);
    snprintf(sub, sizeof sub, "%s / dw", name);
    check(sub, rel_err(dw, rdw, nw), TOL);
    snprintf(sub, sizeof sub, "%s / db", name);
    check(sub, rel_err(db, rdb, K), TOL);
    free(x), free(w), free(y), free(pdy), free(py), free(dy), free(arg);
    free(dx), free(dw), free(db), free(rdx), free(rdw), free(rdb);
}

static void pooled_cases(void)
{
    printf("-- convolution through a 2x2 max-pool: conv2d_pooled.c and the dense path against the reference --\n");
    /* sparse d input and d weight by pairs of columns (4 or more in channels), padding */
    pooled_case(conv_dims(3, 6, 14, 14, 16, 5, 5, 1, 2, 1, 1, 1), 1, 0, 0);
    pooled_case(conv_dims(1, 4, 12, 12, 9, 3, 3, 1, 1, 1, 1, 1), 1, 0, 1);
    /* sparse d weight by kernel rows (1 in channel, no padding), batch 1 and 5 */
    pooled_case(conv_dims(1, 1, 20, 20, 6, 5, 5, 1, 0, 1, 1, 1), 1, 0, 0);
    pooled_case(conv_dims(5, 2, 13, 17, 7, 7, 7, 1, 0, 1, 1, 1), 1, 0, 0);
    /* sparse d input, dense d weight (2 in channels with padding) */
    pooled_case(conv_dims(2, 2, 12, 12, 6, 3, 3, 1, 1, 1, 1, 1), 1, 0, 0);
    /* on 2 threads, d weight left to a worker */
    pooled_case(conv_dims(4, 6, 14, 14, 16, 5, 5, 1, 0, 1, 1, 1), 2, 1, 0);
    pooled_case(conv_dims(10, 1, 28, 28, 6, 5, 5, 1, 2, 1, 1, 1), 2, 0, 1);
    /* by matrix products: stride 2 (d input, d weight), and 1 thread of 2 */
    pooled_case(conv_dims(2, 4, 18, 18, 8, 3, 3, 2, 1, 1, 1, 1), 1, 0, 0);
    pooled_case(conv_dims(6, 8, 34, 34, 16, 3, 3, 2, 1, 1, 1, 1), 2, 0, 1);
    pooled_case(conv_dims(2, 6, 12, 12, 6, 3, 3, 1, 1, 1, 1, 6), 1, 0, 0);     /* depthwise */
    /* dense: a 4-wide kernel, and 9 in channels */
    pooled_case(conv_dims(2, 3, 11, 11, 8, 4, 4, 1, 1, 1, 1, 1), 1, 0, 0);
    pooled_case(conv_dims(2, 9, 10, 10, 14, 3, 3, 1, 1, 1, 1, 1), 1, 0, 1);
    /* the plain loops: an output of 16 pixels */
    pooled_case(conv_dims(2, 3, 6, 6, 4, 3, 3, 1, 0, 1, 1, 1), 1, 0, 0);
}

/* ---- fully connected ---- */

static void linear_case(int N, int IN, int OUT, int threads)
{
    char name[160];
    int n = snprintf(name, sizeof name, "linear %d x %d -> %d:", N, IN, OUT);
    double macs = (double)N * IN * OUT;
    /* forward: nnrt_linear_forward's and linear_fwd_task's conditions */
    if (N <= LIN_ROWS && avx512() && macs < NNRT_PAR_MACS)
        taken[LIN_FWD_ROWS_AVX512] = 1, n += snprintf(name + n, sizeof name - n, " fwd-rows-avx512");
    else if (N <= LIN_ROWS)
        taken[LIN_FWD_ROWS_TASKS] = 1, n += snprintf(name + n, sizeof name - n, " fwd-rows");
    else if (lin_forward_gemm(N, IN, OUT))
        taken[LIN_FWD_GEMM] = 1, n += snprintf(name + n, sizeof name - n, " fwd-gemm");
    else {
        /* blocks of LIN_NS samples; one of at most LIN_NS / 2 takes the half tile */
        if (N > LIN_NS / 2)
            taken[LIN_FWD_TILE] = 1, n += snprintf(name + n, sizeof name - n, " fwd-tile");
        if (N % LIN_NS && N % LIN_NS <= LIN_NS / 2)
            taken[LIN_FWD_TILE_HALF] = 1, n += snprintf(name + n, sizeof name - n, " fwd-tile-half");
    }
    /* backward: linear_backward's and bwd_small's conditions */
    if (N <= LIN_ROWS) {
        taken[LIN_BWD_SMALL] |= IN >= 16;
        taken[LIN_BWD_SMALL_KEEP] |= IN >= 16 && IN % 16;
        taken[LIN_BWD_SMALL_ROWS] |= IN < 16;
        n += snprintf(name + n, sizeof name - n, IN < 16 ? " bwd-small-rows" : IN % 16 ? " bwd-small-keep" : " bwd-small");
    } else if (IN < 32) {
        taken[LIN_BWD_ROWS] = 1, n += snprintf(name + n, sizeof name - n, " bwd-rows");
    } else {
        taken[LIN_BWD_TILES] = 1, n += snprintf(name + n, sizeof name - n, " bwd-tiles");
    }
    taken[N <= LIN_ROWS ? LIN_SGD_FUSED : LIN_SGD_SPLIT] = 1;
    if (threads > 1)
        snprintf(name + n, sizeof name - n, " t%d", threads);

    size_t nx = (size_t)N * IN, nw = (size_t)OUT * IN, ny = (size_t)N * OUT;
    float *x = random_floats(nx), *w = random_floats(nw), *b = random_floats((size_t)OUT), *dy = random_floats(ny);
    float *y = random_floats(ny), *ry = random_floats(ny);
    float *dx = random_floats(nx), *dw = random_floats(nw), *db = random_floats((size_t)OUT);
    float *rdx = copy_floats(dx, nx), *rdw = copy_floats(dw, nw), *rdb = copy_floats(db, (size_t)OUT);
    char sub[240];
    nnrt_set_threads(threads);
    nnrt_linear_forward(y, x, w, b, N, IN, OUT);
    nnrt_linear_backward(dx, dw, db, dy, x, w, N, IN, OUT);
    nnrt_set_threads(1);
    linear_forward_ref(ry, x, w, b, N, IN, OUT);
    linear_backward_ref(rdx, rdw, rdb, dy, x, w, N, IN, OUT);
    snprintf(sub, sizeof sub, "%s / y", name);
    check(sub, rel_err(y, ry, ny), TOL);
    snprintf(sub, sizeof sub, "%s / dx", name);
    check(sub, rel_err(dx, rdx, nx), TOL);
    snprintf(sub, sizeof sub, "%s / dw", name);
    check(sub, rel_err(dw, rdw, nw), TOL);
    snprintf(sub, sizeof sub, "%s / db", name);
    check(sub, rel_err(db, rdb, (size_t)OUT), TOL);
    /* without a bias, and the first backward (assigns dw and db) */
    nnrt_linear_forward(y, x, w, NULL, N, IN, OUT);
    linear_forward_ref(ry, x, w, NULL, N, IN, OUT);
    snprintf(sub, sizeof sub, "%s / y without bias", name);
    check(sub, rel_err(y, ry, ny), TOL);
    memcpy(rdx, dx, nx * sizeof *dx);
    memset(rdw, 0, nw * sizeof *rdw);
    memset(rdb, 0, (size_t)OUT * sizeof *rdb);
    nnrt_linear_backward_first(dx, dw, db, dy, x, w, N, IN, OUT);
    linear_backward_ref(rdx, rdw, rdb, dy, x, w, N, IN, OUT);
    snprintf(sub, sizeof sub, "%s / first: dx, dw, db", name);
    double e = rel_err(dx, rdx, nx), e2 = rel_err(dw, rdw, nw), e3 = rel_err(db, rdb, (size_t)OUT);
    check(sub, e > e2 ? (e > e3 ? e : e3) : (e2 > e3 ? e2 : e3), TOL);
    /* backward and SGD: w and b as the reference's gradient and the step make them */
    float lr = 0.125f, *w2 = copy_floats(w, nw), *b2 = copy_floats(b, (size_t)OUT);
    memcpy(rdx, dx, nx * sizeof *dx);
    memset(rdw, 0, nw * sizeof *rdw);
    memset(rdb, 0, (size_t)OUT * sizeof *rdb);
    linear_backward_ref(rdx, rdw, rdb, dy, x, w, N, IN, OUT);
    nnrt_linear_backward_sgd(dx, dw, db, dy, x, w2, b2, N, IN, OUT, lr);
    for (size_t i = 0; i < nw; i++)
        w[i] -= lr * rdw[i];
    for (int o = 0; o < OUT; o++)
        b[o] -= lr * rdb[o];
    snprintf(sub, sizeof sub, "%s / sgd: dx, w, b", name);
    e = rel_err(dx, rdx, nx), e2 = rel_err(w2, w, nw), e3 = rel_err(b2, b, (size_t)OUT);
    check(sub, e > e2 ? (e > e3 ? e : e3) : (e2 > e3 ? e2 : e3), TOL);
    /* each of dx, dw, db alone (the others NULL), added and assigned */
    for (int first = 0; first < 2; first++)
        for (int only = 0; only < 3; only++) {
            memcpy(rdx, dx, nx * sizeof *dx);
            memcpy(rdw, dw, nw * sizeof *dw);
            memcpy(rdb, db, (size_t)OUT * sizeof *db);
            float *gx = only == 0 ? dx : NULL, *gw = only == 1 ? dw : NULL, *gb = only == 2 ? db : NULL;
            if (first) {
                nnrt_linear_backward_first(gx, gw, gb, dy, x, w, N, IN, OUT);
                memset(rdw, 0, nw * sizeof *rdw);
                memset(rdb, 0, (size_t)OUT * sizeof *rdb);
            } else {
                nnrt_linear_backward(gx, gw, gb, dy, x, w, N, IN, OUT);
            }
            linear_backward_ref(gx ? rdx : NULL, gw ? rdw : NULL, gb ? rdb : NULL, dy, x, w, N, IN, OUT);
            const char *what[3] = {"dx", "dw", "db"};
            snprintf(sub, sizeof sub, "%s / %s only%s", name, what[only], first ? ", first" : "");
            check(sub, only == 0 ? rel_err(dx, rdx, nx) : only == 1 ? rel_err(dw, rdw, nw)
                                                         : rel_err(db, rdb, (size_t)OUT), TOL);
        }
    /* the same bits on 1 and 2 threads (and on 3, splitting some calls by columns) */
    float *y1 = alloc_floats(ny), *dx1 = copy_floats(dx, nx), *dw1 = alloc_floats(nw), *db1 = alloc_floats(OUT);
    nnrt_set_threads(1);
    nnrt_linear_forward(y1, x, w, b, N, IN, OUT);
    nnrt_linear_backward_first(dx1, dw1, db1, dy, x, w, N, IN, OUT);
    for (int t = 2; t <= 3; t++) {
        float *dxt = copy_floats(dx, nx);
        nnrt_set_threads(t);
        nnrt_linear_forward(y, x, w, b, N, IN, OUT);
        nnrt_linear_backward_first(dxt, dw, db, dy, x, w, N, IN, OUT);
        snprintf(sub, sizeof sub, "%s / the same bits on %d threads as on 1", name, t);
        check(sub, differ(y, y1, ny) + differ(dxt, dx1, nx) + differ(dw, dw1, nw) + differ(db, db1, OUT), 0);
        free(dxt);
    }
    nnrt_set_threads(1);
    free(y1), free(dx1), free(dw1), free(db1);
    free(x), free(w), free(b), free(dy), free(y), free(ry), free(dx), free(dw), free(db);
    free(rdx), free(rdw), free(rdb), free(w2), free(b2);
}

static void linear_cases(void)
{
    printf("-- fully connected: linear.c's tiles against linear_ref.c --\n");
    linear_case(1, 37, 13, 1);      /* rows; bwd_small with an overlapping vector */
    linear_case(2, 64, 10, 1);      /* two rows; whole vectors */
    linear_case(2, 7, 5, 1);        /* fewer features than a vector */
    linear_case(1, 1000, 600, 2);   /* rows in tasks, 2 threads */
    linear_case(3, 20, 9, 1);       /* bwd_rows */
    linear_case(13, 45, 17, 1);     /* half tile; axpy tiles, the last overlapping */
    linear_case(40, 96, 170, 1);    /* a whole tile and a half (more outputs than 4 x samples: no gemm) */
    linear_case(70, 33, 300, 2);    /* tiles on 2 threads */
    /* gemm.c: sizes not multiples of 8 or 32, one block of samples and
     * several (LIN_MC), few outputs (a partial tile of columns), and few
     * features (no whole block of 8 in pack_t's reduction) */
    linear_case(16, 16, 10, 1);
    linear_case(37, 45, 70, 2);
    linear_case(300, 130, 77, 2);
    linear_case(64, 200, 256, 1);
    linear_case(600, 21, 13, 2);
}

/* ---- max pooling ---- */

/* n floats from a few values, so that windows have ties, NaNs, signed zeros */
static float *tie_floats(size_t n)
{
    const float vals[] = {-1.0f, -0.0f, 0.0f, 0.5f, 1.0f, 1.0f, 2.0f, NAN};
    float *p = alloc_floats(n);
    for (size_t i = 0; i < n; i++)
        p[i] = vals[nnrt_rng_next(&rng) % 8];
    return p;
}

/* nnrt_maxpool2d_* against pool_ref.c's planes, bit for bit: y, the codes,
 * d input from the codes and from x, added and assigned */
static void maxpool_case(int N, int C, int H, int W, int k, int stride, int relu, int assign)
{
    nnrt_pool2d_dims d = {.N = N, .C = C, .H = H, .W = W, .kh = k, .kw = k, .stride_h = stride,
                          .stride_w = stride, .relu = relu, .assign = assign};
    d.P = (H - k) / stride + 1, d.Q = (W - k) / stride + 1;
    /* pool.c's conditions: pool_2x2, and (backward, assign) windows that cover the plane */
    int two = k == 2 && stride == 2 && 2 * d.P <= H && 2 * d.Q <= W;
    int whole = !assign || (2 * d.P == H && 2 * d.Q == W);
    char name[160];
    snprintf(name, sizeof name, "maxpool %dx%dx%dx%d %dx%d/%d%s%s: %s", N, C, H, W, k, k, stride,
             relu ? " relu" : "", assign ? " assign" : "",
             !two ? "reference" : whole ? "2x2" : "2x2 forward, reference backward");
    if (two)
        taken[POOL_2X2] = 1;
    if (two && !whole)
        taken[POOL_2X2_PLAIN] = 1;
    size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * d.P * d.Q, planes = (size_t)N * C;
    float *x = tie_floats(nx), *dy = random_floats(ny), *y = alloc_floats(ny), *ry = alloc_floats(ny);
    unsigned char *arg = malloc(ny), *rarg = malloc(ny);
    nnrt_maxpool2d_forward_argmax(y, arg, x, &d);
    pool_ctx c = {ry, x, NULL, &d, rarg};
    maxpool_fwd_ref(&c, 0, planes);
    char sub[240];
    snprintf(sub, sizeof sub, "%s / y, codes", name);
    check(sub, differ(y, ry, ny) + (memcmp(arg, rarg, ny) != 0), 0);
    float *dx = random_floats(nx), *rdx = copy_floats(dx, nx);
    float *dx2 = copy_floats(dx, nx), *rdx2 = copy_floats(dx, nx);
    nnrt_maxpool2d_backward_argmax(dx, dy, arg, &d);
    pool_ctx b = {rdx, dy, NULL, &d, rarg};
    if (assign)
        memset(rdx, 0, nx * sizeof *rdx);
    d.assign = 0;                       /* the reference planes add; assign zeroed them above */
    maxpool_bwd_ref(&b, 0, planes);
    d.assign = assign;
    snprintf(sub, sizeof sub, "%s / dx from the codes", name);
    check(sub, differ(dx, rdx, nx), 0);
    nnrt_maxpool2d_backward(dx2, dy, x, &d);
    pool_ctx b2 = {rdx2, dy, x, &d, NULL};
    if (assign)
        memset(rdx2, 0, nx * sizeof *rdx2);
    d.assign = 0;
    maxpool_bwd_ref(&b2, 0, planes);
    d.assign = assign;
    snprintf(sub, sizeof sub, "%s / dx from x", name);
    check(sub, differ(dx2, rdx2, nx), 0);
    free(x), free(dy), free(y), free(ry), free(arg), free(rarg), free(dx), free(rdx), free(dx2), free(rdx2);
}

static void maxpool_cases(void)
{
    printf("-- max pooling: pool_2x2.c against pool_ref.c, bit for bit --\n");
    maxpool_case(2, 3, 10, 10, 2, 2, 0, 0);         /* 2x2, 5 windows a row */
    maxpool_case(1, 2, 28, 66, 2, 2, 1, 1);         /* 33 windows a row (16, 16, 1), ReLU, assign */
    maxpool_case(3, 2, 9, 11, 2, 2, 0, 0);          /* odd sizes: the last row and column unread */
    maxpool_case(3, 2, 9, 11, 2, 2, 1, 1);          /* ... assigned: the reference's backward */
    maxpool_case(2, 2, 9, 9, 3, 2, 0, 1);           /* 3x3 windows: the reference */
}

int main(void)
{
    nnrt_rng_seed(&rng, 1);
    conv_cases();
    pooled_cases();
    linear_cases();
    maxpool_cases();
    printf("-- every path taken --\n");
    for (int p = 0; p < NPATHS; p++) {
        /* the AVX-512 paths exist only where the machine has it */
        int needs = p == CONV_FWD_ROWS || p == CONV_POOLED_SPARSE_DX || p == CONV_POOLED_SPARSE_DW ||
                    p == LIN_FWD_ROWS_AVX512;
        if (needs && !avx512())
            continue;
        char name[96];
        snprintf(name, sizeof name, "path taken: %s", path_names[p]);
        check(name, !taken[p], 0);
    }
    if (failures) {
        printf("%d FAILED\n", failures);
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
