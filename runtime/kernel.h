/* kernel.h — what the hot kernel files share (private to the runtime; the
 * sizes and geometry that nnc shares with them are sizing/nnrt_sizing.h):
 * HOT compiles a function for AVX-512, AVX2 and plain x86-64 (GCC's
 * target_clones, chosen at load time), so a default build runs AVX-512 where
 * the machine has it; NNRT_NO_CLONES turns that off. INLINE forces inlining
 * of the small register-tile helpers. */
#ifndef NNRT_KERNEL_H
#define NNRT_KERNEL_H

#include <string.h>

#include "sizing/nnrt_sizing.h"

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && defined(__x86_64__) && \
    defined(__ELF__) && !defined(NNRT_NO_CLONES)
#define HOT __attribute__((flatten, target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#elif defined(__GNUC__)
#define HOT __attribute__((flatten))
#else
#define HOT
#endif
#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static inline
#endif

/* Functions written with AVX-512 intrinsics (target attributes), for loops
 * the compiler leaves scalar (rows shorter than a vector), taken when the
 * machine has what they use: F, BW and VL (what every AVX-512 x86 has but
 * Xeon Phi). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(NNRT_NO_CLONES)
#include <immintrin.h>
#define NNRT_AVX512 1
/* asked once, when the program loads (the kernels ask per plane or block) */
static int nnrt_avx512;
__attribute__((constructor)) static void nnrt_avx512_init(void)
{
    __builtin_cpu_init();
    nnrt_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512vl");
}
static inline int has_avx512(void)
{
    return nnrt_avx512;
}
#endif

/* 16 floats (16 ints), one AVX-512 register (two AVX2 ones, four SSE ones):
 * the register tiles are written with these (GCC's vector extension, which
 * clang has too), because GCC's own vectorisation of the same loops picks
 * 8-lane vectors and shuffles for 16 lanes, and is slower for 32 too. Loads and
 * stores go through memcpy (unaligned). */
typedef float v16f __attribute__((vector_size(64)));
typedef int v16i __attribute__((vector_size(64)));
/* 8 floats (8 ints): linear.c's 8 x 8 transposes */
typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

/* Two-vector shuffles with constant lane lists (GCC's and clang's
 * spellings; SHUF8 for 8-lane vectors), and what linear.c and
 * conv2d_backward.c build from them: the
 * sums of the 16 lanes of each of 8 vectors, r[u] = a[u][0] + ... + a[u][15] for
 * u < 8 (lanes 8-15 of r repeat them), added as a tree: lanes v and v + 8
 * of each, then v and v + 4, v and v + 2, v and v + 1 (v the lane of the
 * first); each round halves the lanes of a vector and packs two sets of
 * them into one: 16 shuffles and 8 vector adds, in place of 120 scalar adds
 * and the extraction of 128 lanes. */
#if defined(__clang__)
#define SHUF(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#define SHUF8(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SHUF(a, b, ...) __builtin_shuffle(a, b, (v16i){__VA_ARGS__})
#define SHUF8(a, b, ...) __builtin_shuffle(a, b, (v8i){__VA_ARGS__})  /* of v8f */
#endif
INLINE void sum_lanes(v16f *r, const v16f *a)
{
    v16f t[4], q[2];
    for (int p = 0; p < 4; p++)     /* lanes 0-7: a[2p], 8-15: a[2p+1] */
        t[p] = SHUF(a[2 * p], a[2 * p + 1], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
               SHUF(a[2 * p], a[2 * p + 1], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    for (int p = 0; p < 2; p++)     /* 4 lanes each of a[4p] .. a[4p+3] */
        q[p] = SHUF(t[2 * p], t[2 * p + 1], 0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27) +
               SHUF(t[2 * p], t[2 * p + 1], 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
    v16f z = SHUF(q[0], q[1], 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21, 24, 25, 28, 29) +   /* 2 lanes each */
             SHUF(q[0], q[1], 2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27, 30, 31);
    *r = SHUF(z, z, 0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14) +
         SHUF(z, z, 1, 3, 5, 7, 9, 11, 13, 15, 1, 3, 5, 7, 9, 11, 13, 15);
}

/* p[0] + ... + p[n-1], summed in 16 lanes (so it vectorises), in a fixed
 * order: the tail past the last 16, then lane by lane */
INLINE float sum_floats(const float *p, size_t n)
{
    float lane[16] = {0}, sum = 0.0f;
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int v = 0; v < 16; v++)
            lane[v] += p[i + v];
    for (; i < n; i++)
        sum += p[i];
    for (int v = 0; v < 16; v++)
        sum += lane[v];
    return sum;
}

/* ---- gemm.c: C[M,N] = (C or bias) + A[M,Kd] B[Kd,N] from packed panels ---- */

/* A packer fills one panel: of A, dst[k][m] (GEMM_MR floats a row) for rows
 * i0 .. i0+mr-1 and reduction indices k0 .. k0+kc-1; of B, dst[k][v]
 * (GEMM_NR a row) for columns j0 .. j0+nr-1. Zeros past mr or nr. */
typedef void gemm_pack_fn(float *dst, const void *ctx, int i0, int n, int k0, int kc);
typedef struct gemm_call {
    int M, N, K;                /* C is M x N; K is the reduction (Kd) */
    const float *ap;            /* A packed for the call (gemm_pack_a), or NULL: */
    gemm_pack_fn *pack_a;       /* A panel by panel */
    const void *actx;
    gemm_pack_fn *pack_b;
    const void *bctx;
    float *c;
    size_t ldc;
    const float *bias;          /* per row of C, or NULL: C starts from it (or from zero) */
    int accumulate;             /* C += A B (bias unused) */
    int relu;                   /* C = max(C, 0) at the end */
} gemm_call;
/* a strided matrix: A's element (i, k), or B's (k, j), is p[row*rs + col*cs] */
typedef struct gemm_mat {
    const float *p;
    ptrdiff_t rs, cs;
} gemm_mat;
gemm_pack_fn gemm_pack_a_mat, gemm_pack_b_mat;
/* all of A, by g->pack_a, into dst (round_up(M, GEMM_MR) * K floats) */
void gemm_pack_a(float *dst, const gemm_call *g);
/* C[i0:i1, j0:j1] (i0 a multiple of GEMM_MR); bp: GEMM_KC * GEMM_NC floats
 * for panels of B; ap: round_up(i1 - i0, GEMM_MR) * GEMM_KC floats for
 * panels of A when g->ap is NULL */
void gemm_block(const gemm_call *g, int i0, int i1, int j0, int j1, float *bp, float *ap);
/* c[i][j] (ldc apart) += sum over l < L of a[i*lda + l] * b[j*ldb + l] for
 * i < M, j < N: L a multiple of 16, and rows of a and b readable up to
 * round_up(M, 4) and round_up(N, 4) */
void gemm_nt_acc(float *c, size_t ldc, const float *a, size_t lda, const float *b, size_t ldb, int M, int N,
                 int L);

/* ---- the convolution's files; conv2d.c chooses between them ---- */

/* conv2d_ref.c: the plain loops (any shape; conv2d.c explains the
 * arguments). The backward accumulates into dx, dw and db. */
void conv2d_forward_ref(float *y, const float *x, const float *w, const float *b, const nnrt_conv2d_dims *d);
void conv2d_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                         const nnrt_conv2d_dims *d);

/* conv2d_forward.c and conv2d_backward.c: the fast path, for the shapes
 * whose conv_geometry(g, d) is 1. The forward applies d->relu; the backward
 * takes dy, or (pooled) pdy, parg and pd: the 2x2 max-pool whose backward
 * makes dy; dx_after: the caller computes d input after it returns
 * (conv2d_pooled.c), which counts as work to share and lets d weight go to
 * a worker. */
void conv2d_forward_fast(float *y, const float *x, const float *w, const float *b, const nnrt_conv2d_dims *d,
                         const conv_geom *g);
void conv2d_backward_fast(float *dx, float *dw, float *db, const float *dy, const float *pdy,
                          const unsigned char *parg, const nnrt_pool2d_dims *pd, const float *x, const float *w,
                          const nnrt_conv2d_dims *d, const conv_geom *g, int dx_after);

/* conv2d_gemm.c: by matrix products, the shapes of conv_gemm_path; the
 * backward accumulates into dx (or assigns: d->assign_dx), dw and db */
void conv2d_forward_gemm(float *y, const float *x, const float *w, const float *b, const nnrt_conv2d_dims *d);
void conv2d_backward_gemm(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                          const nnrt_conv2d_dims *d);

/* conv2d_depthwise.c: groups = in = out channels (conv_depthwise); the
 * backward accumulates into dx (or assigns: d->assign_dx), dw and db */
void conv2d_forward_depthwise(float *y, const float *x, const float *w, const float *b,
                              const nnrt_conv2d_dims *d);
void conv2d_backward_depthwise(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w,
                               const nnrt_conv2d_dims *d);

/* conv2d_copy.c: the copies the fast path reads (moves only) */
void conv_shift_input(float *restrict xs, const float *restrict x, int n, const nnrt_conv2d_dims *d,
                      const conv_geom *g);
void conv_pad_input(float *restrict xp, const float *restrict x, const nnrt_conv2d_dims *d, const conv_geom *g);
void conv_pixel_offsets(int *off, const nnrt_conv2d_dims *d, const conv_geom *g);
void conv_tap_offsets(int *off, const nnrt_conv2d_dims *d, const conv_geom *g);
void conv_to_lanes(float *restrict dst, const float *restrict src, size_t lds, int nr, int nc);
#ifdef NNRT_AVX512
__attribute__((target("avx512f,avx512vl"))) void conv_tile_out_avx512(float *out, size_t L, const float *tile,
                                                                      int np, int kv);
#endif

/* ---- conv2d_pooled.c: the backward of a convolution and the 2x2 max-pool
 * after it, from the pool's choices (its sizes: nnrt_sizing.h) ---- */
int conv2d_sparse_dx_ok(const nnrt_pool2d_dims *pd, const nnrt_conv2d_dims *d);
/* ... and d weight and d bias (from SPARSE_DW_CMIN in channels by pairs of
 * columns, fewer by kernel rows); dx_after: d input is computed next,
 * meanwhile a worker may take these (d->defer_dw, batch <= CONV_CHUNK) */
int conv2d_sparse_dw_ok(const nnrt_pool2d_dims *pd, const nnrt_conv2d_dims *d);
void conv2d_sparse_dw(float *dw, float *db, const float *pdy, const unsigned char *arg, const nnrt_pool2d_dims *pd,
                      const float *x, const nnrt_conv2d_dims *d, int dx_after);
void conv2d_sparse_dx(float *dx, const float *pdy, const unsigned char *arg, const nnrt_pool2d_dims *pd,
                      const float *w, const nnrt_conv2d_dims *d);

/* ---- max pooling's files; pool.c chooses between them ---- */

/* one call: the planes [lo, hi) of N*C are a task (nnrt_parallel_for) */
typedef struct pool_ctx {
    float *out;             /* y (forward), dx (backward) */
    const float *a, *b;     /* forward: a = x; backward: a = dy, b = x (when arg is NULL) */
    const nnrt_pool2d_dims *d;
    unsigned char *arg;     /* each window's code, or NULL (forward: not kept; backward: found from x) */
} pool_ctx;
/* a window's code when it passes no gradient (no pixel, or a ReLU folded
 * in and the maximum not > 0); else its maximum's position in the window */
enum { POOL_NONE = 255 };
/* pool_ref.c: any window, the plain scan */
void maxpool_fwd_ref(void *ctx, size_t lo, size_t hi);
void maxpool_bwd_ref(void *ctx, size_t lo, size_t hi);
/* pool_2x2.c: 2x2 windows of stride 2, no padding, all inside; the
 * backward writes every pixel its windows cover (so assigns only when they
 * cover the plane) */
void maxpool_2x2_fwd(void *ctx, size_t lo, size_t hi);
void maxpool_2x2_bwd(void *ctx, size_t lo, size_t hi);
#ifdef NNRT_AVX512
__attribute__((target("avx512f,avx512bw,avx512vl"))) void maxpool_2x2_fwd_avx512(void *ctx, size_t lo, size_t hi);
__attribute__((target("avx512f,avx512bw,avx512vl"))) void maxpool_2x2_bwd_avx512(void *ctx, size_t lo, size_t hi);
#endif

/* ---- pool.c: one plane's max-pool backward, for the convolution before it ---- */

/* dx[H,W] = (d->assign) or += dy[P,Q] at each window's maximum, from its
 * codes (nnrt_maxpool2d_forward_argmax), as nnrt_maxpool2d_backward_argmax
 * does for each of its planes, here on one */
void maxpool_plane_backward(float *dx, const float *dy, const unsigned char *arg, const nnrt_pool2d_dims *d);

/* ---- linear_ref.c: the fully connected layer as plain loops (the
 * reference; linear.c explains the arguments; the backward accumulates) ---- */
void linear_forward_ref(float *y, const float *x, const float *w, const float *b, int N, int IN, int OUT);
void linear_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int N,
                         int IN, int OUT);

#endif
