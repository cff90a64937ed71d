/* workspace.c — the kernels' scratch memory, sized before the program runs.
 *
 * The fast convolution, the linear forward, attention and the LSTM need
 * scratch buffers (shifted copies of their inputs, packed weights, partial
 * sums, a head's q, k and v gathered into panels, the gates' inputs and
 * gradients of every step). A kernel asks
 * nnrt_scratch (parallel.c) for buffer slot 0 .. 3 of its thread. The sizes
 * are here and in nnrt_sizing.h, in one place: conv2d.c, conv2d_pooled.c
 * and linear.c cut their buffers by the same rules; nnc computes them for
 * `--summary` (this file is compiled into nnc too); and a generated model's
 * init computes them for its batch and thread count, allocates them in its
 * one block of memory and hands them to nnrt_workspace_use. Slots 0 and 3
 * are per thread (the tasks use them on every thread), slots 1 and 2 are
 * the calling thread's (a call's shared data), so a workspace is
 * slot0+slot1+slot2+slot3 floats and slot0+slot3 more per further thread.
 * Each slot is the largest any layer asks, for any thread count; a request
 * larger than its slot still works (nnrt_scratch allocates and counts a
 * miss: tests/workspace.sh checks there are none).
 */
#include "nnrt.h"

#include "nnrt_sizing.h"

int conv_geometry(conv_geom *g, const nnrt_conv2d_dims *d)
{
    /* the sizes below fit an int: checked first, in double (nnc sizes any
     * model it accepts, however large) */
    double hp = d->H + 2.0 * d->pad_h;
    if (d->stride_h != 1 || d->stride_w != 1 || hp * d->Q * d->S * d->C >= 1e9 || (double)d->P * d->Q >= 1e9)
        return 0;
    g->G = d->groups;
    g->Cg = d->C / d->groups;
    g->Kg = d->K / d->groups;
    g->T = g->Cg * d->R * d->S;
    g->Hp = d->H + 2 * d->pad_h;
    g->PL = g->Hp * d->Q;
    g->L = d->P * d->Q;
    g->DK = (g->L + CONV_LW - 1) / CONV_LW * CONV_LW;
    g->XS = (size_t)d->S * d->C * g->PL + CONV_LW;
    g->Wp = d->W + 2 * d->pad_w;
    g->XP = d->pad_h || d->pad_w ? (size_t)d->C * g->Hp * g->Wp : 0;
    /* the tiles need CONV_VL pixels of output */
    return g->L >= CONV_VL;
}

void conv_backward_sizes(conv_bwd_sizes *z, const nnrt_conv2d_dims *d, const conv_geom *g, int dx, int dw,
                         int db)
{
    int nkv = (g->Kg + CONV_KV - 1) / CONV_KV;
    z->ns = d->N < CONV_CHUNK ? d->N : CONV_CHUNK;
    z->nchunks = (d->N + CONV_CHUNK - 1) / CONV_CHUNK;
    z->lanes = dw && g->Kg >= CONV_KVMIN;
    /* pooled: dy is computed into dyp (and transposed from there) */
    z->ndyp = dx || (dw && !z->lanes) || d->pooled ? (size_t)z->ns * d->K * g->DK : 0;
    z->ndyt = z->lanes ? (size_t)z->ns * g->G * nkv * g->L * CONV_KV : 0;
    /* d weight by rows: the shifted copies; by lanes: x itself, or padded */
    z->nxs = dw ? (size_t)z->ns * (z->lanes ? g->XP : g->XS) : 0;
    z->KT = (size_t)d->K * g->T;
    z->by_chunk = (dw ? (size_t)z->nchunks * z->KT : 0) + (db ? (size_t)d->N * d->K : 0);
    z->one_chunk = z->ndyp + z->ndyt + z->nxs + (db ? (size_t)z->ns * d->K : 0);
}

static void at_least(size_t *slot, size_t n)
{
    if (*slot < n)
        *slot = n;
}

int conv_gemm_path(const nnrt_conv2d_dims *d)
{
    conv_geom g;
    /* the sizes fit an int (as conv_geometry's) */
    if (conv_depthwise(d) || (double)d->C * d->R * d->S * d->P * d->Q >= 1e9 ||
        (double)d->N * d->P * d->Q >= 1e9)
        return 0;
    return !conv_geometry(&g, d);
}

const char *conv_path_name(const nnrt_conv2d_dims *d)
{
    conv_geom g;
    if (conv_depthwise(d))
        return "depthwise (conv2d_depthwise.c): groups = channels";
    if (conv_gemm_path(d))
        return d->stride_h > 1 || d->stride_w > 1 ? "matrix products (conv2d_gemm.c): strided"
                                                  : "matrix products (conv2d_gemm.c): under 32 output pixels";
    if (conv_geometry(&g, d))
        return "shifted rows (conv2d_forward.c, conv2d_backward.c): stride 1, 32 pixels or more";
    return "plain loops (conv2d_ref.c): sizes past an int";
}

static size_t round_up(size_t a, size_t b)
{
    return (a + b - 1) / b * b;
}

/* conv2d_gemm.c's asks: panels of B and A (every thread), the weights
 * packed (slot 1), a block of d input's columns (every thread), and for a
 * pooled call its dy (slot 2) */
static void conv2d_gemm_at(nnrt_workspace *w, const nnrt_conv2d_dims *d, int dx, int dw)
{
    size_t Kg = (size_t)(d->K / d->groups), T = (size_t)(d->C / d->groups) * d->R * d->S;
    size_t L = (size_t)d->P * d->Q;
    at_least(&w->slot[0], (size_t)GEMM_KC * GEMM_NC);
    if (dw)                             /* d weight's copies of col and dy */
        at_least(&w->slot[0], (round_up(T < CONV_DW_TB ? T : CONV_DW_TB, 4) + round_up(Kg, 4)) * CONV_DW_JC);
    at_least(&w->slot[1], (size_t)d->groups * round_up(Kg, GEMM_MR) * T);
    if (dx)
        at_least(&w->slot[1], (size_t)d->groups * round_up(T, GEMM_MR) * Kg);
    int pointwise = d->R == 1 && d->S == 1 && d->stride_h == 1 && d->stride_w == 1 && d->pad_h == 0 &&
                    d->pad_w == 0;
    if (dx && !pointwise)
        at_least(&w->slot[3], T * GEMM_NC);
    if (L <= CONV_FEW_PIXELS && d->N > 1)   /* the forward's block of several samples */
        at_least(&w->slot[3], Kg * GEMM_NC);
    if (d->pooled && (dx || dw))
        at_least(&w->slot[2], (size_t)d->N * d->K * L);
}

/* what the kernels of one convolution ask for at batch d->N */
static void conv2d_at(nnrt_workspace *w, const nnrt_conv2d_dims *d, int dx, int dw, int db)
{
    conv_geom g;
    if (conv_depthwise(d)) {            /* a padded plane, a row or plane of dy; pooled: the pool's dy */
        size_t Qv = (size_t)(d->Q + 15) / 16 * 16;
        at_least(&w->slot[0], conv_dw_plane(d) + (dw || dx ? (size_t)d->P * Qv : 0));
        nnrt_conv2d_dims t = *d;        /* d input of stride 1: a forward over dy (conv2d_depthwise.c) */
        t.H = d->P, t.W = d->Q, t.P = d->H, t.Q = d->W;
        t.pad_h = (d->R - 1) * d->dil_h - d->pad_h, t.pad_w = (d->S - 1) * d->dil_w - d->pad_w;
        if (dx && t.pad_h >= 0 && t.pad_w >= 0)
            at_least(&w->slot[0], conv_dw_plane(&t) + (size_t)d->R * d->S);
        if (d->pooled && (dx || dw || db))
            at_least(&w->slot[2], (size_t)d->N * d->K * d->P * d->Q);
        return;
    }
    if (conv_gemm_path(d)) {
        conv2d_gemm_at(w, d, dx, dw);
        return;
    }
    if (d->pooled && dx && conv_sparse_shape(d)) {     /* conv2d_pooled.c's d input */
        at_least(&w->slot[2], conv_sparse_wt(d));
        at_least(&w->slot[0], conv_sparse_dxt(d));
    }
    if (d->pooled && dw && conv_sparse_shape(d) && d->C >= SPARSE_DW_CMIN) {  /* ... its d weight */
        at_least(&w->slot[1], 2 * conv_sparse_dxt(d) * d->N);
        if (dx && d->defer_dw)          /* left to a worker: up to CONV_CHUNK samples (any batch's last) */
            at_least(&w->slot[3], 2 * conv_sparse_dxt(d) * (d->N < CONV_CHUNK ? d->N : CONV_CHUNK));
    }
    if (!conv_geometry(&g, d))
        return;                         /* the plain loops need none */
    /* forward: the shifted copies (every thread), packed weights and tap offsets */
    at_least(&w->slot[0], g.XS);
    at_least(&w->slot[0], g.XP);       /* by lanes: x padded instead */
    at_least(&w->slot[1], g.Kg >= CONV_KVMIN ? (size_t)g.G * ((g.Kg + CONV_KV - 1) / CONV_KV) * g.T * CONV_KV
                                             : (size_t)d->K * g.T);
    at_least(&w->slot[2], (size_t)g.T);
    if (!dx && !dw && !db)
        return;
    conv_bwd_sizes z;
    conv_backward_sizes(&z, d, &g, dx, dw, db);
    size_t rest = z.one_chunk;          /* one chunk at a time, or by chunk with threads */
    if (z.nchunks > 1) {
        at_least(&w->slot[3], z.ndyp + z.ndyt + z.nxs);
        rest = rest > z.by_chunk ? rest : z.by_chunk;
    }
    at_least(&w->slot[1], rest);
    /* one chunk shared between threads (conv2d.c): the copies of a slice
     * of out channels, or of the d weight left to a worker */
    int shared = z.nchunks == 1 && conv_backward_macs(d, &g, z.ns, dx, dw) >= NNRT_PAR_MACS / 2;
    if (shared && dw && (dx ? d->defer_dw : !z.lanes && g.G == 1 && d->K > 1)) {
        conv_bwd_sizes zw;              /* their d weight's: dy, x copied, bias sums (and tap offsets) */
        conv_backward_sizes(&zw, d, &g, 0, 1, db);
        at_least(&w->slot[3], zw.one_chunk + (dx ? (size_t)g.T : 0));
    }
    if (dx)                             /* the shifted gradients of one block of channels */
        at_least(&w->slot[0], (size_t)d->S * CONV_MR * g.PL + CONV_LW);
}

/* Any batch from 1 to d->N may come (an epoch's last, the C API's n), and
 * below CONV_CHUNK the asks are not monotonic in the batch: one chunk may be
 * shared between the threads, or its d weight left to a worker, where more
 * samples take the chunked path. Above, they grow with the batch. So the
 * plan is the largest of every batch up to CONV_CHUNK and of d->N. */
void nnrt_workspace_conv2d(nnrt_workspace *w, const nnrt_conv2d_dims *d, int dx, int dw, int db)
{
    nnrt_conv2d_dims e = *d;
    for (e.N = 1; e.N < d->N && e.N <= CONV_CHUNK; e.N++)
        conv2d_at(w, &e, dx, dw, db);
    conv2d_at(w, d, dx, dw, db);
}

/* linear.c's forward at any batch up to N: its tile's x transposed (which
 * grows with the batch), or, once gemm.c's path is taken (which stays
 * taken at larger batches), its panels of w (every thread) and of a task's
 * samples, at most LIN_MC */
void nnrt_workspace_linear(nnrt_workspace *w, int N, int IN, int OUT)
{
    if (N > LIN_ROWS)                   /* x transposed, lanes rounded up to half a tile */
        at_least(&w->slot[3], (size_t)IN * ((N + LIN_NS / 2 - 1) / (LIN_NS / 2) * (LIN_NS / 2)));
    if (lin_forward_gemm(N, IN, OUT)) {
        at_least(&w->slot[0], (size_t)GEMM_KC * GEMM_NC);
        at_least(&w->slot[3], round_up((size_t)(N < LIN_MC ? N : LIN_MC), GEMM_MR) * GEMM_KC);
    }
}

/* attention.c's panels, on every thread, at any batch (the backward's,
 * which the forward's fit in): q, k and dy as Tp rows of Dp (T and the head
 * size Dh rounded up to 16), v transposed (Dh x Tp), att and ds (Tp x Tp) */
void nnrt_workspace_attention(nnrt_workspace *w, int N, int T, int C, int H)
{
    (void)N;
    size_t Dh = (size_t)(C / H), Tp = ((size_t)T + 15) / 16 * 16, Dp = (Dh + 15) / 16 * 16;
    at_least(&w->slot[0], 3 * Tp * Dp + Dh * Tp + 2 * Tp * Tp);
}

/* lstm.c: linear.c's forward of the input projection (N*T rows) and of
 * each step (N rows); slot 1 the projection, then dz (N*T*4H); slot 2 the
 * forward's h_{t-1} and its product (N*H + N*4H), the backward's dz_t, dh
 * and dc (N*4H + 2*N*H), then h_{t-1} of every step (N*T*H). Each grows
 * with the batch. */
void nnrt_workspace_lstm(nnrt_workspace *w, int N, int T, int I, int H)
{
    size_t rows = (size_t)N * T, G = (size_t)4 * H;
    nnrt_workspace_linear(w, N * T, I, 4 * H);
    nnrt_workspace_linear(w, N, H, 4 * H);
    at_least(&w->slot[1], rows * G);
    at_least(&w->slot[2], (size_t)N * G + 2 * (size_t)N * H);
    at_least(&w->slot[2], rows * H);
}

/* a slot's floats in the workspace: rounded up to a cache line, so every
 * slot starts on one */
size_t nnrt_workspace_slot(const nnrt_workspace *w, int slot)
{
    return (w->slot[slot] + 15) / 16 * 16;
}

size_t nnrt_workspace_floats(const nnrt_workspace *w, int threads)
{
    size_t per_thread = nnrt_workspace_slot(w, 0) + nnrt_workspace_slot(w, 3);
    return nnrt_workspace_slot(w, 1) + nnrt_workspace_slot(w, 2) +
           (size_t)(threads > 1 ? threads : 1) * per_thread;
}
