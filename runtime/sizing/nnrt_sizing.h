/* nnrt_sizing.h — the rules that size the kernels' scratch memory, shared
 * by the kernels and the compiler.
 *
 * The fast convolution and the linear forward take their scratch buffers
 * (shifted copies of their inputs, packed weights, partial sums) from
 * nnrt_scratch's four slots (nnrt.h). How much each call asks depends on
 * which path it takes and on the geometry of that path: the constants and
 * functions below decide both. conv2d.c, conv2d_pooled.c and linear.c use
 * them to take the path and cut their buffers; workspace.c uses them to
 * plan a model's workspace (nnrt_workspace_conv2d, nnrt_workspace_linear);
 * nnc links workspace.c and includes this header to print that workspace
 * in --summary and to see which convolutions take the fast path
 * (compiler/plan.c). One set of rules, so the plan and the kernels agree.
 *
 * Built into libnnrt.a (sizing/workspace.c); needs only nnrt.h.
 */
#ifndef NNRT_SIZING_H
#define NNRT_SIZING_H

#include <stddef.h>

#include "nnrt.h"

/* Work is shared between threads from this many multiply-adds per call
 * (conv2d.c, linear.c; the backward of a convolution from half of it):
 * handing a task to a worker is cheap, but the data it reads then moves
 * between the cores' caches, which only large calls repay. workspace.c
 * plans by it too: a call shared between threads asks for more scratch. */
#define NNRT_PAR_MACS 5e5

/* ---- the convolution's fast path (conv2d_forward.c, conv2d_backward.c): its tiles, geometry, scratch ---- */
enum {
    CONV_VL = 32,       /* pixels per register tile: two AVX-512 vectors */
    CONV_MR = 8,        /* channels per register tile (forward, d input) */
    CONV_LW = 16,       /* d weight by rows: the dot products go 16 pixels at a time */
    CONV_CHUNK = 8,     /* backward: samples per chunk */
    CONV_KV = 16,       /* d weight by lanes: out channels per vector */
    CONV_KVMIN = 12,    /* d weight by lanes from this many out channels per group */
};

/* The geometry of one call on the fast path (conv2d_forward.c explains it). */
typedef struct conv_geom {
    int Cg, Kg, G, T;       /* T = Cg*R*S taps per output channel */
    int Hp;                 /* rows of the padded input */
    int PL;                 /* floats of one plane of a shifted copy: Hp*Q */
    int L;                  /* output pixels of a channel: P*Q */
    int DK;                 /* floats per channel of dy in the backward's copy: L rounded up to LW */
    size_t XS;              /* floats of one sample's shifted copies, S*C*PL, and LW after */
    int Wp;                 /* columns of the padded input */
    size_t XP;              /* floats of one sample's padded input, C*Hp*Wp (0: no padding, x itself) */
} conv_geom;

/* the multiply-adds of a backward call's one chunk (ns samples): from
 * NNRT_PAR_MACS / 2 of them it is shared between threads */
static inline double conv_backward_macs(const nnrt_conv2d_dims *d, const conv_geom *g, int ns, int dx, int dw)
{
    return (double)ns * d->K * g->T * d->P * d->Q * ((dx != 0) + (dw != 0));
}

/* Fills g; whether the call takes the fast path (stride 1, P*Q >= CONV_VL) */
int conv_geometry(conv_geom *g, const nnrt_conv2d_dims *d);

/* The backward's buffers, in floats: per chunk of ns samples its copies of
 * dy (ndyp, ndyt) and of x (nxs); and what follows them in the calling
 * thread's slot 1, by chunk (each chunk's d weight and every sample's bias
 * sums) or for the one chunk at a time */
typedef struct conv_bwd_sizes {
    int ns, nchunks, lanes;
    size_t ndyp, ndyt, nxs, by_chunk, one_chunk, KT;
} conv_bwd_sizes;
void conv_backward_sizes(conv_bwd_sizes *z, const nnrt_conv2d_dims *d, const conv_geom *g, int dx, int dw,
                         int db);

/* ---- gemm.c and conv2d_gemm.c: the matrix products ---- */
enum {
    GEMM_MR = 8,        /* rows of C per register tile */
    GEMM_NR = 32,       /* columns of C per register tile: two AVX-512 vectors */
    GEMM_KC = 128,      /* the reduction per block */
    GEMM_NC = 256,      /* columns of C per block */
    CONV_DW_JC = 512,   /* conv2d_gemm.c's d weight: pixels per block */
    CONV_DW_TB = 64,    /* ... taps per task, at most */
    CONV_FEW_PIXELS = 64,   /* the forward puts samples of at most this many pixels side by side */
};
/* whether a convolution goes by matrix products (conv2d_gemm.c) rather than
 * the shifted rows of conv_geometry or the plain loops */
int conv_gemm_path(const nnrt_conv2d_dims *d);
/* whether a convolution is depthwise (groups = in = out channels), the
 * path of conv2d_depthwise.c; it needs no workspace but, pooled, its dy */
static inline int conv_depthwise(const nnrt_conv2d_dims *d)
{
    return d->groups > 1 && d->groups == d->C && d->groups == d->K;
}
/* its padded plane (conv2d_depthwise.c): a row of it, in floats (the
 * border, and room for 16 outputs' reads past the last column), and the
 * whole plane */
static inline int conv_dw_row(const nnrt_conv2d_dims *d)
{
    return d->W + 2 * d->pad_w + 16 * d->stride_w + d->dil_w * (d->S - 1) + 16;
}
static inline size_t conv_dw_plane(const nnrt_conv2d_dims *d)
{
    /* rows: the border, and those the last output row's taps reach */
    int rows = d->H + 2 * d->pad_h;
    int reach = (d->P - 1) * d->stride_h + d->dil_h * (d->R - 1) + 1;
    return (size_t)(rows > reach ? rows : reach) * conv_dw_row(d);
}
/* which of the four a convolution takes, and why, in words (nnc --summary
 * and the generated C's comments) */
const char *conv_path_name(const nnrt_conv2d_dims *d);

/* ---- conv2d_pooled.c: the backward of a convolution and the 2x2 max-pool
 * after it, from the pool's choices ---- */
enum { SPARSE_CL = 8 };     /* in channels, at most: 8 lanes of a vector's 16 */
/* whether a convolution of these sizes can take it (the pool and the
 * machine are checked at the call: conv2d_sparse_dx_ok) */
static inline int conv_sparse_shape(const nnrt_conv2d_dims *d)
{
    return d->R == d->S && (d->S == 3 || d->S == 5 || d->S == 7) && d->C <= SPARSE_CL && d->stride_h == 1 &&
           d->stride_w == 1 && d->dil_h == 1 && d->dil_w == 1 && d->groups == 1;
}
/* slots of 8 floats a kernel row of its copy of the weights: the S taps,
 * a zero before and zeros after, an even number */
static inline int conv_sparse_slots(int S)
{
    return S + 3;
}
/* its scratch, in floats: the weights (the calling thread's slot 2) and
 * one sample's sums (slot 0 of each thread), rows of column pairs; for d
 * weight, every sample's padded input in that layout, twice (2 *
 * conv_sparse_dxt each: the calling thread's slot 1, or a worker's slot 3) */
static inline size_t conv_sparse_wt(const nnrt_conv2d_dims *d)
{
    return ((size_t)d->K * d->S + 2) * conv_sparse_slots(d->S) * SPARSE_CL;
}
static inline size_t conv_sparse_dxt(const nnrt_conv2d_dims *d)
{
    return (size_t)(d->H + 2 * d->pad_h) * ((d->W + 2 * d->pad_w + 1) / 2 + 1) * 2 * SPARSE_CL;
}

/* its d weight and d bias go by pairs of columns from this many in
 * channels (fewer: by kernel rows) */
enum { SPARSE_DW_CMIN = 4 };

/* ---- linear.c's forward: its tile of samples (its scratch: the input
 * transposed), or gemm.c's (its scratch: packed panels) ---- */
enum {
    LIN_NS = 32,        /* samples per forward tile (or 16) */
    LIN_ROWS = 2,       /* up to this many samples, no transposed copy */
    LIN_MC = 256,       /* by gemm.c: samples per task, at most */
};
/* Whether the forward goes by gemm.c. linear.c's tile transposes x (N*IN
 * floats) and reads w in place; gemm.c packs w transposed (OUT*IN) for
 * every block of up to LIN_MC samples, and x too, and its tile is faster:
 * it pays from 16 samples, and from a quarter as many samples as outputs. */
static inline int lin_forward_gemm(int N, int IN, int OUT)
{
    return N >= 16 && IN >= 16 && 4 * N >= OUT;
}

#endif /* NNRT_SIZING_H */
