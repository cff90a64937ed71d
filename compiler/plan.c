/* plan.c — the static memory plan: where every activation and gradient lives.
 *
 * A training step is a fixed sequence known at compile time: the forward of
 * node 0, 1, ..., N-1, the loss, then the backward of node N-1, ..., 0. So
 * the lifetime of every buffer is known too:
 *
 *   - a value lives from its node's forward until its last reader: a later
 *     forward, or a backward that reads it (conv, linear, batch norm, max-pool,
 *     gelu and leaky relu read their input; relu, sigmoid, tanh and softmax
 *     read their output). The network's output lives to the end of the step,
 *     so callers can read it after backward;
 *   - a gradient lives from the first backward that accumulates into it
 *     (the backward of its last consumer, or the loss) until its node's own
 *     backward has read it;
 *   - a saved mask (dropout's, OpDef.mask) lives from its forward to its backward.
 *
 * Views (flatten) share their source's buffers. The buffers are then packed
 * into one arena, per sample, greedily: largest first, each at the lowest
 * offset where it overlaps no buffer that is alive at the same time. The
 * arena is all the memory forward and backward use; the generated program
 * allocates exactly that. Each gradient is zeroed by the backward that
 * first writes it (Node.zero_before), since its memory may have held a dead
 * value before.
 */
#include "nnc.h"
#include "nnrt_sizing.h" /* conv_geometry: which convolutions take the fast path */

#include <stdlib.h>
#include <string.h>

typedef struct Buffer {
    BufKind kind;       /* and whose: the node */
    int node;
    size_t size;        /* floats per sample */
    int start, end;     /* alive during steps start..end, inclusive */
    size_t *offset;     /* where to write the placement */
} Buffer;

/* Timeline: forward of node i at step i; the loss at step N; the backward of
 * node i at step 2N - i. */
static int fwd_time(int id) { return id; }
static int bwd_time(const Graph *g, int id) { return 2 * g->nnodes - id; }

/* Does the backward of an operation read the value of its input? Of its own output? */
static bool backward_reads_input(OpKind op)
{
    return op_def(op)->reads == READS_INPUT || op_def(op)->reads == READS_INPUT_OUTPUT;
}
static bool backward_reads_output(OpKind op)
{
    return op_def(op)->reads == READS_OUTPUT || op_def(op)->reads == READS_INPUT_OUTPUT;
}

static int root(const Graph *g, int id)
{
    while (g->nodes[id].alias >= 0)
        id = g->nodes[id].alias;
    return id;
}

static int imax(int a, int b) { return a > b ? a : b; }
static int imin(int a, int b) { return a < b ? a : b; }

static int by_size(const void *a, const void *b)
{
    const Buffer *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return x->start - y->start;
}

/* Places each buffer at the lowest offset free for its whole lifetime;
 * returns the arena's size. The buffers placed so far are kept in order of
 * offset (as arrays of their bounds, for a fast inner loop), so one sweep
 * finds the spot: it starts at 0 and moves past every buffer alive at the
 * same time that is in the way, until the next placed buffer begins above
 * the spot's end. */
static size_t pack(Buffer *b, int n)
{
    qsort(b, (size_t)n, sizeof *b, by_size);
    size_t cap = (size_t)(n > 0 ? n : 1);
    size_t *lo = xalloc(sizeof(size_t) * cap), *hi = xalloc(sizeof(size_t) * cap);    /* [lo, hi) */
    int *from = xalloc(sizeof(int) * cap), *to = xalloc(sizeof(int) * cap);             /* alive */
    int nplaced = 0;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        size_t at = 0, size = b[i].size;
        for (int k = 0; k < nplaced && lo[k] < at + size; k++)
            if (hi[k] > at && from[k] <= b[i].end && b[i].start <= to[k])
                at = hi[k];
        *b[i].offset = at;
        int k = nplaced;
        while (k > 0 && lo[k - 1] > at)
            k--;
        size_t move = (size_t)(nplaced - k);
        memmove(lo + k + 1, lo + k, move * sizeof *lo);
        memmove(hi + k + 1, hi + k, move * sizeof *hi);
        memmove(from + k + 1, from + k, move * sizeof *from);
        memmove(to + k + 1, to + k, move * sizeof *to);
        lo[k] = at, hi[k] = at + size, from[k] = b[i].start, to[k] = b[i].end;
        nplaced++;
        if (at + size > total)
            total = at + size;
    }
    return total;
}

/* Fusions that save a pass over memory and a buffer: conv2d -> relu, when
 * nothing else reads the convolution's output, becomes a convolution that
 * applies the ReLU as it writes (the ReLU a view of it, its backward a mask
 * in place); and when a max-pool is the ReLU's only reader, the max-pool's
 * backward does the ReLU's too (a window whose maximum is not > 0 passes
 * nothing), straight into the convolution's gradient; and the convolution's
 * backward does that max-pool's backward itself (pooled: no buffer for its
 * output's gradient). Max-pools keep their choices for their backward
 * (argmax); the only reader of a value (a convolution, a max-pool) assigns
 * its gradient rather than adding to zeros. */
static void fuse(Graph *g)
{
    int N = g->nnodes, *readers = xalloc(sizeof(int) * (size_t)N);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < g->nodes[i].nin; k++)
            readers[g->nodes[i].in[k]]++;
    readers[g->output]++;                   /* the caller reads the output */
    for (int i = 0; i < N; i++) {
        Node *r = &g->nodes[i];
        if (r->op != OP_RELU || r->alias >= 0)
            continue;
        Node *c = &g->nodes[r->in[0]];
        if (c->op != OP_CONV2D || c->alias >= 0 || readers[c->id] != 1)
            continue;
        r->alias = c->id;
        c->relu = true;
    }
    for (int i = 0; i < N; i++) {       /* a convolution as the only reader of its input */
        Node *c = &g->nodes[i], *in = &g->nodes[c->in[0]];
        c->assign_dx = c->op == OP_CONV2D && in->needs_grad && readers[in->id] == 1 && in->op != OP_INPUT &&
                       in->alias < 0;
    }
    for (int i = 0; i < N; i++) {       /* ... and a ReLU (not in place), addition or batch norm */
        Node *c = &g->nodes[i];
        if (!(c->op == OP_RELU && c->alias < 0) && c->op != OP_ADD && c->op != OP_BATCHNORM1D &&
            c->op != OP_BATCHNORM2D)
            continue;
        for (int k = 0; k < c->nin; k++) {
            const Node *in = &g->nodes[c->in[k]];
            if (in->needs_grad && readers[in->id] == 1 && in->op != OP_INPUT && in->alias < 0 && in->pool < 0)
                c->assign_in |= 1u << k;
        }
    }
    for (int i = 0; i < N; i++) {
        Node *p = &g->nodes[i];
        if (p->op != OP_MAXPOOL2D)
            continue;
        Node *r = &g->nodes[p->in[0]];
        if (r->op == OP_RELU && r->alias >= 0 && readers[r->id] == 1) {
            p->relu = true;
            r->folded = true;
        }
        /* its backward from the choices its forward keeps (a byte per window) */
        p->argmax = p->needs_grad && p->kernel[0] * p->kernel[1] <= NNRT_ARGMAX_MAX;
        /* the only reader of its input, which is no view but of a fused ReLU's
         * convolution (read by nothing else): its gradient's only writer */
        p->assign = readers[r->id] == 1 && r->op != OP_INPUT && (r->alias < 0 || r->op == OP_RELU);
        /* a convolution whose output only this max-pool reads (through the
         * ReLU or not): on the fast path, its backward makes the max-pool's
         * backward sample by sample, as it copies its output gradient anyway */
        Node *c = r->op == OP_RELU && r->alias >= 0 ? &g->nodes[r->alias] : r;
        if (p->assign && p->argmax && c->op == OP_CONV2D && c->needs_grad) {
            nnrt_conv2d_dims d = plan_conv_dims(g, c, 1);
            conv_geom cg;
            if (conv_geometry(&cg, &d)) {
                c->pool = p->id;
                p->into_conv = true;
            }
        }
    }
}

/* The buffers and their lifetimes (what a deferred convolution reads
 * lives to the end of the backward, 2N), packed: returns the arena's floats
 * per sample and sets every buffer's offset */
static size_t place(Graph *g, const int *vend, const int *gstart, Buffer *bufs, int *nbufs, bool *late)
{
    int N = g->nnodes, end = 2 * N, nb = 0;
    memset(late, 0, sizeof(bool) * (size_t)N);
    for (int k = 0; k < N; k++)         /* the values deferred convolutions read */
        if (g->nodes[k].defer_dw)
            late[root(g, g->nodes[k].in[0])] = true;
    for (int i = 0; i < N; i++) {
        Node *n = &g->nodes[i];
        if (n->op == OP_INPUT || n->alias >= 0)
            continue;
        size_t size = (size_t)shape_numel(&n->shape);
        /* the convolution whose backward reads this value last, or its max-pool's */
        const Node *c = n->into_conv ? &g->nodes[root(g, n->in[0])] : n;
        bufs[nb++] = (Buffer){BUF_VALUE, i, size, fwd_time(i), late[i] ? end : vend[i], &n->offset};
        /* when n's backward runs: a max-pool's may be the convolution's before it */
        int gend = c->defer_dw ? end : bwd_time(g, c->id);
        if (n->needs_grad && n->pool < 0) {     /* its own backward reads it last; pooled: no buffer */
            bufs[nb++] = (Buffer){BUF_GRAD, i, size, gstart[i], gend, &n->goffset};
            n->zero_before = gstart[i];
        }
        if (op_def(n->op)->mask)
            bufs[nb++] = (Buffer){BUF_MASK, i, size, fwd_time(i), gend, &n->aux};
        else if (op_def(n->op)->saved)      /* layernorm's statistics, attention's probabilities */
            bufs[nb++] = (Buffer){BUF_MASK, i, op_def(n->op)->saved(n), fwd_time(i), gend, &n->aux};
        if (n->argmax)      /* its choices, bytes, until its backward */
            bufs[nb++] = (Buffer){BUF_CHOICES, i, (size + 3) / 4, fwd_time(i), gend, &n->aux};
    }
    /* what the naive layout (every buffer its own place) would need */
    g->nact_unplanned = 0;
    for (int i = 0; i < nb; i++)
        g->nact_unplanned += bufs[i].size;
    *nbufs = nb;
    return pack(bufs, nb);
}

static int by_offset(const void *a, const void *b)
{
    const PlanBuffer *x = a, *y = b;
    if (x->offset != y->offset)
        return x->offset < y->offset ? -1 : 1;
    return x->start - y->start;
}

/* Keeps the placement in g->buffers, by offset, for the generated C's
 * table of what shares memory and for its checks of the values */
static void record(Graph *g, const Buffer *bufs, int nb)
{
    g->buffers = xalloc(sizeof(PlanBuffer) * (size_t)(nb > 0 ? nb : 1));
    g->nbuffers = nb;
    for (int i = 0; i < nb; i++)
        g->buffers[i] = (PlanBuffer){bufs[i].kind, bufs[i].node, bufs[i].start, bufs[i].end, *bufs[i].offset,
                                     bufs[i].size};
    qsort(g->buffers, (size_t)nb, sizeof *g->buffers, by_offset);
}

void plan_memory(Graph *g)
{
    int N = g->nnodes;
    /* which values need a gradient: those downstream of a parameter */
    for (int i = 0; i < N; i++) {
        Node *n = &g->nodes[i];
        n->needs_grad = n->layer != NULL;
        for (int k = 0; k < n->nin; k++)
            n->needs_grad |= g->nodes[n->in[k]].needs_grad;
    }
    fuse(g);
    /* lifetimes, gathered on each view's root */
    int *vend = xalloc(sizeof(int) * (size_t)N), *gstart = xalloc(sizeof(int) * (size_t)N);
    for (int i = 0; i < N; i++) {
        vend[i] = fwd_time(i);
        gstart[i] = bwd_time(g, i);
    }
    for (int i = 0; i < N; i++) {
        const Node *c = &g->nodes[i];
        for (int k = 0; k < c->nin; k++) {
            int r = root(g, c->in[k]);
            vend[r] = imax(vend[r], fwd_time(i));
            if (backward_reads_input(c->op) && !c->argmax)
                vend[r] = imax(vend[r], bwd_time(g, i));
            if (g->nodes[c->in[k]].needs_grad && c->alias < 0)   /* c's backward writes this gradient */
                gstart[r] = imin(gstart[r], bwd_time(g, i));
        }
        if (backward_reads_output(c->op))
            vend[root(g, i)] = imax(vend[root(g, i)], bwd_time(g, i));
    }
    int out = root(g, g->output);
    vend[out] = 2 * N + 1;                  /* callers read the output after the step */
    gstart[out] = imin(gstart[out], N);     /* the loss writes its gradient */
    Buffer *bufs = xalloc(sizeof(Buffer) * (size_t)(3 * N));
    int nb = 0;
    bool *late = xalloc(sizeof(bool) * (size_t)N);
    for (int i = 0; i < N; i++) {
        Node *n = &g->nodes[i];
        if (n->alias < 0 && op_def(n->op)->scratch) {    /* batch norm: the batch's mean and invstd */
            n->scratch = g->nscratch;
            g->nscratch += op_def(n->op)->scratch(n);
        }
    }
    g->nact = place(g, vend, gstart, bufs, &nb, late);
    /* Convolutions whose weight gradient may run on another thread while
     * the layers before them go back (conv2d.c, defer_dw): what it reads
     * then lives to the end of the backward. Taken where that costs no
     * memory: the arena stays the size it is without. */
    for (int i = 0; i < N; i++) {
        Node *c = &g->nodes[i];
        if (c->op != OP_CONV2D || !c->needs_grad || !g->nodes[c->in[0]].needs_grad)
            continue;
        nnrt_conv2d_dims d = plan_conv_dims(g, c, 1);
        conv_geom cg;
        if (!conv_geometry(&cg, &d))
            continue;
        c->defer_dw = true;
        size_t nact = place(g, vend, gstart, bufs, &nb, late);
        if (nact > g->nact)
            c->defer_dw = false;
    }
    g->nact = place(g, vend, gstart, bufs, &nb, late);
    record(g, bufs, nb);
    for (int i = 0; i < N; i++) {   /* written whole by a max-pool, convolution, ReLU or add: no zeroing */
        const Node *n = &g->nodes[i];
        if ((n->op == OP_MAXPOOL2D && n->assign && n->needs_grad) || n->assign_dx)
            g->nodes[root(g, n->in[0])].zero_before = -1;
        for (int k = 0; k < n->nin; k++)
            if (n->assign_in & (1u << k))
                g->nodes[root(g, n->in[k])].zero_before = -1;
    }
    for (int i = 0; i < N; i++) {   /* views: their root's places */
        Node *n = &g->nodes[i];
        if (n->alias >= 0) {
            int r = root(g, i);
            n->offset = g->nodes[r].offset;
            n->goffset = g->nodes[r].goffset;
            n->zero_before = -1;
        } else if (!n->needs_grad || n->op == OP_INPUT) {
            n->zero_before = -1;
        }
    }
}

int plan_backward_time(const Graph *g, int id) { return bwd_time(g, id); }

/* ---- the kernels' workspace ---- */

/* node n's convolution as the runtime's kernels see it, for a batch of N */
nnrt_conv2d_dims plan_conv_dims(const Graph *g, const Node *n, int N)
{
    const Layer *l = n->layer;
    const Shape *in = &g->nodes[n->in[0]].shape;
    return (nnrt_conv2d_dims){.N = N, .C = (int)in->dim[0], .H = (int)in->dim[1], .W = (int)in->dim[2],
                              .K = (int)l->out, .R = (int)l->kernel[0], .S = (int)l->kernel[1],
                              .P = (int)n->shape.dim[1], .Q = (int)n->shape.dim[2],
                              .stride_h = (int)l->stride[0], .stride_w = (int)l->stride[1],
                              .pad_h = (int)l->pad[0], .pad_w = (int)l->pad[1], .dil_h = (int)l->dil[0],
                              .dil_w = (int)l->dil[1], .groups = (int)l->groups, .relu = n->relu,
                              .pooled = n->pool >= 0, .assign_dx = n->assign_dx, .defer_dw = n->defer_dw};
}

/* Which gradients node n's convolution backward computes: of its input,
 * its weight, its bias */
void plan_conv_grads(const Graph *g, const Node *n, int *dx, int *dw, int *db)
{
    *dw = n->needs_grad;
    *dx = *dw && g->nodes[n->in[0]].needs_grad;
    *db = *dw && n->layer->bias;
}

/* The scratch the kernels of a training step ask for at batch N: the
 * runtime's own formulas (runtime/sizing/workspace.c, compiled into nnc
 * too), so --summary prints what the generated program allocates. */
void plan_workspace(const Graph *g, int N, nnrt_workspace *w)
{
    memset(w, 0, sizeof *w);
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = &g->nodes[i];
        if (op_def(n->op)->workspace)
            op_def(n->op)->workspace(g, n, N, w);
    }
}
