/* shape.c — shape inference and checking: one pass, one case per operation.
 *
 * Walks the nodes in topological order and gives each its per-sample output
 * shape (the batch dimension is implicit and never checked). Layers whose
 * input size was omitted learn it from what flows in — this is where LeNet's
 * 16*5*5 = 400 is found — and sizes the user wrote are checked against it.
 * Every failure is reported at the user's text with the shape that came in.
 * Afterwards the parameters and activations are laid out in their blocks.
 */
#include "nnc.h"

#include <math.h>
#include <string.h>

char *shape_str(const Shape *s)
{
    char buf[160];
    size_t n = 0;
    buf[n++] = '[';
    for (int i = 0; i < s->ndim; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
    snprintf(buf + n, sizeof buf - n, "]");
    return xstrdup(buf);
}

int64_t shape_numel(const Shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= s->dim[i];
    return n;
}

static bool check_numel(const Node *n, const Shape *s)
{
    double total = 1;
    for (int i = 0; i < s->ndim; i++)
        total *= (double)s->dim[i];
    if (total > (double)MAX_NUMEL) {
        diag_error(n->span, "%s makes a tensor of %.0f elements per sample, more than nnc's limit of %lld",
                   n->label, total, (long long)MAX_NUMEL);
        return false;
    }
    return true;
}

/* The shapes on the way to node id, for notes: "x [1, 32, 32] -> conv1 [6, 28, 28] -> ..." */
static void note_chain(const Graph *g, int id)
{
    int path[64], n = 0;
    for (int cur = id; cur >= 0 && n < 64; cur = g->nodes[cur].nin ? g->nodes[cur].in[0] : -1)
        path[n++] = cur;
    char buf[1024];
    size_t len = 0;
    for (int i = n - 1; i >= 0 && len < sizeof buf - 80; i--) {
        const Node *p = &g->nodes[path[i]];
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s %s", i == n - 1 ? "" : " -> ",
                                p->label, shape_str(&p->shape));
    }
    diag_note(NO_SPAN, "shapes so far: %s", buf);
}

/* output size of a window op along one axis: floor((in + 2p - d(k-1) - 1)/s) + 1 */
static int64_t window_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d)
{
    int64_t span = in + 2 * p - d * (k - 1) - 1;
    return span < 0 ? 0 : span / s + 1;
}

/* Warns when rounding down leaves real input rows (a = 0) or columns (a = 1)
 * outside every window: PyTorch does the same, silently. k_ext is the
 * (dilated) window's extent; a window smaller than the stride skips input
 * on purpose (a strided 1x1 convolution) and is not warned about. */
static void warn_dropped(const Node *n, int a, int64_t in, int64_t k_ext, int64_t s, int64_t p, int64_t out)
{
    int64_t last_covered = (out - 1) * s + k_ext - 1;     /* in padded coordinates */
    int64_t dropped = p + in - 1 - last_covered;
    if (dropped <= 0 || k_ext < s)  /* windows that leave gaps skip input by design */
        return;
    diag_warning(n->span, "%s leaves out the last %lld %s of its input: (%lld + 2*%lld - %lld) is not a multiple of "
                 "the stride %lld, and the size rounds down to %lld, as in PyTorch", n->label, (long long)dropped,
                 a ? (dropped == 1 ? "column" : "columns") : (dropped == 1 ? "row" : "rows"), (long long)in,
                 (long long)p, (long long)k_ext, (long long)s, (long long)out);
    diag_help(n->op == OP_MAXPOOL2D || n->op == OP_AVGPOOL2D ? "pad the input, or pass ceil_mode=true to keep them"
                                                              : "pad the input or change the stride to use them");
}

/* Needs a [C, H, W] input; reports otherwise */
static bool want_chw(const Graph *g, const Node *n, const Shape *in)
{
    if (in->ndim == 3)
        return true;
    diag_error(n->span, "%s expects an input of shape [channels, height, width], but its input is %s",
               n->label, shape_str(in));
    if (in->ndim == 1)
        diag_help("%s works on images; it cannot follow flatten or linear", op_name(n->op));
    note_chain(g, n->in[0]);
    return false;
}

static bool infer_conv2d(Graph *g, Node *n, const Shape *in)
{
    Layer *l = n->layer;
    if (!want_chw(g, n, in))
        return false;
    if (l->in < 0) {
        l->in = in->dim[0];
    } else if (l->in != in->dim[0]) {
        Span at = l->in_span.first_line ? l->in_span : l->span;
        diag_error(at, "%s expects %lld input channels, but its input has %lld",
                   l->name, (long long)l->in, (long long)in->dim[0]);
        diag_note(n->span, "%s is applied here to a value of shape %s", l->name, shape_str(in));
        note_chain(g, n->in[0]);
        diag_help("leave `in` out and nnc infers it: `conv2d(%lld, kernel=%lld)`", (long long)l->out,
                  (long long)l->kernel[0]);
        return false;
    }
    if (l->in % l->groups) {
        diag_error(l->span, "groups (%lld) of %s must divide its %lld input channels",
                   (long long)l->groups, l->name, (long long)l->in);
        return false;
    }
    int64_t out[2];
    for (int a = 0; a < 2; a++) {
        out[a] = window_out(in->dim[1 + a], l->kernel[a], l->stride[a], l->pad[a], l->dil[a]);
        if (out[a] <= 0) {
            diag_error(n->span, "%s's kernel (%lld, dilated %lld) is larger than its %s%s input (%lld%s)",
                       l->name, (long long)l->kernel[a], (long long)(l->dil[a] * (l->kernel[a] - 1) + 1),
                       l->pad[a] ? "padded " : "", a ? "width" : "height",
                       (long long)(in->dim[1 + a] + 2 * l->pad[a]), "");
            note_chain(g, n->in[0]);
            return false;
        }
    }
    for (int a = 0; a < 2; a++)
        warn_dropped(n, a, in->dim[1 + a], l->dil[a] * (l->kernel[a] - 1) + 1, l->stride[a], l->pad[a], out[a]);
    n->shape = (Shape){3, {l->out, out[0], out[1]}};
    return true;
}

static bool infer_linear(Graph *g, Node *n, const Shape *in)
{
    Layer *l = n->layer;
    if (in->ndim != 1) {
        diag_error(n->span, "%s expects a flat input [features], but its input is %s", l->name, shape_str(in));
        diag_help("flatten it first: `%s(flatten(x))` gives %lld features", l->name,
                  (long long)shape_numel(in));
        note_chain(g, n->in[0]);
        return false;
    }
    if (l->in < 0) {
        l->in = in->dim[0];
    } else if (l->in != in->dim[0]) {
        Span at = l->in_span.first_line ? l->in_span : l->span;
        diag_error(at, "%s expects %lld input features, but its input has %lld",
                   l->name, (long long)l->in, (long long)in->dim[0]);
        const Node *src = &g->nodes[n->in[0]];
        if (src->op == OP_FLATTEN) {
            const Shape *fs = &g->nodes[src->in[0]].shape;
            char prod[128] = "";
            size_t len = 0;
            for (int i = 0; i < fs->ndim; i++)
                len += (size_t)snprintf(prod + len, sizeof prod - len, "%s%lld", i ? "*" : "", (long long)fs->dim[i]);
            diag_note(src->span, "the input of %s is `%s`, which makes %s = %lld from %s",
                      l->name, diag_snippet(src->span), prod, (long long)in->dim[0], shape_str(fs));
        } else {
            diag_note(n->span, "%s is applied here to a value of shape %s", l->name, shape_str(in));
        }
        note_chain(g, n->in[0]);
        diag_help("write `linear(%lld)` and nnc infers %lld", (long long)l->out, (long long)in->dim[0]);
        return false;
    }
    n->shape = (Shape){1, {l->out}};
    return true;
}

/* PyTorch's pooling size: floor or ceil of (in + 2p - k)/s, plus one; in ceil
 * mode the last window must start inside the input or its left padding */
static int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, bool ceil_mode)
{
    int64_t span = in + 2 * p - k;
    if (span < 0)
        return 0;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && (out - 1) * s >= in + p)
        out--;
    return out;
}

static bool infer_pool2d(Graph *g, Node *n, const Shape *in)
{
    if (!want_chw(g, n, in))
        return false;
    int64_t out[2];
    for (int a = 0; a < 2; a++) {
        out[a] = pool_out(in->dim[1 + a], n->kernel[a], n->stride[a], n->pad[a], n->ceil_mode);
        if (out[a] <= 0) {
            diag_error(n->span, "%s's window (%lld) is larger than its %s input (%lld)", n->label,
                       (long long)n->kernel[a], a ? "width" : "height", (long long)(in->dim[1 + a] + 2 * n->pad[a]));
            note_chain(g, n->in[0]);
            return false;
        }
    }
    for (int a = 0; a < 2 && !n->ceil_mode; a++)
        warn_dropped(n, a, in->dim[1 + a], n->kernel[a], n->stride[a], n->pad[a], out[a]);
    n->shape = (Shape){3, {in->dim[0], out[0], out[1]}};
    return true;
}

static bool infer_adaptive(Graph *g, Node *n, const Shape *in)
{
    if (!want_chw(g, n, in))
        return false;
    n->shape = (Shape){3, {in->dim[0], n->size[0], n->size[1]}};
    return true;
}

/* batchnorm1d: [C] or [C, L]; batchnorm2d: [C, H, W] */
static bool infer_batchnorm(Graph *g, Node *n, const Shape *in)
{
    Layer *l = n->layer;
    bool two = n->op == OP_BATCHNORM2D;
    if (two ? in->ndim != 3 : (in->ndim < 1 || in->ndim > 2)) {
        diag_error(n->span, "%s (%s) expects an input of shape %s, but its input is %s", l->name, op_name(n->op),
                   two ? "[channels, height, width]" : "[features] or [channels, length]", shape_str(in));
        diag_help(two ? "use batchnorm1d for flat values" : "use batchnorm2d for images");
        note_chain(g, n->in[0]);
        return false;
    }
    if (l->in < 0) {
        l->in = in->dim[0];
    } else if (l->in != in->dim[0]) {
        diag_error(l->in_span.first_line ? l->in_span : l->span, "%s expects %lld features, but its input has %lld",
                   l->name, (long long)l->in, (long long)in->dim[0]);
        diag_note(n->span, "%s is applied here to a value of shape %s", l->name, shape_str(in));
        note_chain(g, n->in[0]);
        return false;
    }
    l->out = l->in;
    n->shape = *in;
    return true;
}

/* softmax(x, dim): PyTorch's dim counts the batch as 0 */
static bool infer_softmax(Graph *g, Node *n, const Shape *in)
{
    int nd = in->ndim, d = n->dim;
    if (d < 0)
        d += nd + 1;
    if (d < 1 || d > nd) {
        diag_error(n->call && n->call->nkids > 1 ? n->call->kids[1]->span : n->span,
                   "%s over dim %d: %s", n->label, n->dim,
                   d == 0 ? "that is the batch dimension, which nnc does not normalise over"
                          : xprintf("the input %s has dims 1 to %d (0 is the batch)", shape_str(in), nd));
        note_chain(g, n->in[0]);
        return false;
    }
    n->dim = d;     /* from here on: 1-based per-sample dim */
    n->shape = *in;
    return true;
}

static bool same_shape(const Shape *a, const Shape *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dim[i] != b->dim[i])
            return false;
    return true;
}

static bool infer_add(Graph *g, Node *n)
{
    const Shape *a = &g->nodes[n->in[0]].shape, *b = &g->nodes[n->in[1]].shape;
    if (!same_shape(a, b)) {
        diag_error(n->span, "add needs two values of the same shape, but they are %s and %s", shape_str(a),
                   shape_str(b));
        diag_note(g->nodes[n->in[0]].span, "the first is made here");
        diag_note(g->nodes[n->in[1]].span, "the second is made here");
        return false;
    }
    n->shape = *a;
    return true;
}

/* concat along channels (PyTorch's dim 1): every other size must agree */
static bool infer_concat(Graph *g, Node *n)
{
    Shape out = g->nodes[n->in[0]].shape;
    for (int i = 1; i < n->nin; i++) {
        const Shape *s = &g->nodes[n->in[i]].shape;
        bool ok = s->ndim == out.ndim;
        for (int d = 1; ok && d < s->ndim; d++)
            ok = s->dim[d] == out.dim[d];
        if (!ok) {
            diag_error(n->span, "concat joins along channels, so all other sizes must agree, but input %d is %s "
                       "and input 1 is %s", i + 1, shape_str(s), shape_str(&g->nodes[n->in[0]].shape));
            diag_note(g->nodes[n->in[i]].span, "input %d is made here", i + 1);
            return false;
        }
        out.dim[0] += s->dim[0];
    }
    n->shape = out;
    return true;
}

/* One case per operation; false after an error was reported. */
static bool infer_node(Graph *g, Node *n)
{
    if (n->op == OP_INPUT)
        return true;
    for (int i = 0; i < n->nin; i++)
        if (g->nodes[n->in[i]].shape.ndim == 0)     /* an input failed already */
            return false;
    const Shape *in = &g->nodes[n->in[0]].shape;
    switch (n->op) {
    case OP_CONV2D: return infer_conv2d(g, n, in);
    case OP_LINEAR: return infer_linear(g, n, in);
    case OP_BATCHNORM1D:
    case OP_BATCHNORM2D: return infer_batchnorm(g, n, in);
    case OP_MAXPOOL2D:
    case OP_AVGPOOL2D: return infer_pool2d(g, n, in);
    case OP_ADAPTIVE_AVGPOOL2D: return infer_adaptive(g, n, in);
    case OP_SOFTMAX:
    case OP_LOG_SOFTMAX: return infer_softmax(g, n, in);
    case OP_RELU:
    case OP_LEAKY_RELU:
    case OP_SIGMOID:
    case OP_TANH:
    case OP_GELU:
    case OP_DROPOUT: n->shape = *in; return true;
    case OP_FLATTEN:
        n->shape = (Shape){1, {shape_numel(in)}};
        n->alias = n->in[0];
        return true;
    case OP_ADD: return infer_add(g, n);
    case OP_CONCAT: return infer_concat(g, n);
    case OP_INPUT: break;
    }
    return true;
}

static Param make_param(const Layer *l, const char *what, Shape shape, int init, bool buffer)
{
    Param p = {.name = xprintf("%s.%s", l->name, what), .shape = shape, .init = init, .buffer = buffer};
    p.numel = (size_t)shape_numel(&shape);
    return p;
}

/* A weight of more than MAX_NUMEL elements is an error at its layer: no
 * trainer could allocate it, and its size would not fit the runtime's ints. */
static bool check_weight(const Layer *l, const Shape *ws)
{
    double total = 1;
    for (int d = 0; d < ws->ndim; d++)
        total *= (double)ws->dim[d];
    if (total <= (double)MAX_NUMEL)
        return true;
    diag_error(l->span, "%s.weight would be %s: %.0f parameters, more than nnc's limit of %lld per tensor",
               l->name, shape_str(ws), total, (long long)MAX_NUMEL);
    diag_note(NO_SPAN, "that is %.0f GiB of float32, before gradients and optimizer state",
              total * 4 / (1 << 30));
    return false;
}

/* PyTorch's state_dict order: layers as declared; weight, bias, then buffers.
 * Trainable parameters go to the parameter block, buffers to the buffer block. */
static void layout_params(Graph *g)
{
    size_t off = 0, boff = 0;
    for (int i = 0; i < g->nlayers; i++) {
        Layer *l = &g->layers[i];
        if (!l->uses)
            continue;
        l->nparams = 0;
        if (l->op == OP_CONV2D || l->op == OP_LINEAR) {
            Shape ws = l->op == OP_CONV2D ? (Shape){4, {l->out, l->in / l->groups, l->kernel[0], l->kernel[1]}}
                                          : (Shape){2, {l->out, l->in}};
            if (!check_weight(l, &ws))
                continue;
            /* PyTorch: kaiming_uniform(a=sqrt(5)) and the bias both give U(+-1/sqrt(fan_in)) */
            float bound = (float)(1.0 / sqrt((double)(shape_numel(&ws) / ws.dim[0])));
            l->params[l->nparams++] = make_param(l, "weight", ws, INIT_UNIFORM, false);
            if (l->bias)
                l->params[l->nparams++] = make_param(l, "bias", (Shape){1, {l->out}}, INIT_UNIFORM, false);
            for (int p = 0; p < l->nparams; p++)
                l->params[p].bound = bound;
        } else {    /* batch norm: weight 1, bias 0, running_mean 0, running_var 1 */
            Shape c = {1, {l->in}};
            if (l->bias) {
                l->params[l->nparams++] = make_param(l, "weight", c, INIT_ONE, false);
                l->params[l->nparams++] = make_param(l, "bias", c, INIT_ZERO, false);
            }
            l->params[l->nparams++] = make_param(l, "running_mean", c, INIT_ZERO, true);
            l->params[l->nparams++] = make_param(l, "running_var", c, INIT_ONE, true);
            g->has_batchnorm = true;
        }
        for (int p = 0; p < l->nparams; p++) {   /* each tensor at a cache line (nnc.h) */
            Param *q = &l->params[p];
            size_t *o = q->buffer ? &boff : &off;
            q->offset = *o = (*o + PARAM_ALIGN - 1) / PARAM_ALIGN * PARAM_ALIGN;
            *o += q->numel;
            g->ntrainable += q->buffer ? 0 : q->numel;
        }
    }
    if ((double)off + (double)boff > (double)MAX_PARAMS) {
        diag_error(g->model->name_span, "model `%s` has %.0f parameters and buffers, more than nnc's limit of %lld",
                   g->name, (double)off + (double)boff, (long long)MAX_PARAMS);
        diag_note(NO_SPAN, "that is %.0f GiB of float32, before gradients and optimizer state",
                  ((double)off + (double)boff) * 4 / (1 << 30));
    }
    g->nparam = (off + PARAM_ALIGN - 1) / PARAM_ALIGN * PARAM_ALIGN;   /* the gradients after them too */
    g->nbuf = (boff + PARAM_ALIGN - 1) / PARAM_ALIGN * PARAM_ALIGN;
    g->nopt = g->opt == OPT_SGD ? (g->momentum > 0 ? g->nparam : 0) : 2 * g->nparam;
}

static void check_loss(Graph *g)
{
    const Node *out = &g->nodes[g->output];
    const char *name = loss_name(g->loss);
    if (g->loss == LOSS_CROSS_ENTROPY || g->loss == LOSS_NLL) {
        if (out->shape.ndim != 1) {
            diag_error(g->loss_span, "%s needs an output of shape [classes], but the output is %s", name,
                       shape_str(&out->shape));
            diag_note(out->span, "the output is made here");
            diag_help("flatten it, or end with a linear layer: `return fc(flatten(x))`");
            return;
        }
        if (g->target_given) {
            diag_error(g->target_span, "%s takes class indices as targets, one per sample, so it has no target "
                       "shape", name);
            diag_help("write `loss %s()`", name);
            return;
        }
        g->classes = (int)out->shape.dim[0];
        g->target = (Shape){0, {0}};
        return;
    }
    if (!g->target_given) {
        g->target = out->shape;
        return;
    }
    if (!same_shape(&g->target, &out->shape)) {
        diag_error(g->target_span, "%s compares the output with the target, but the output is %s and the target %s",
                   name, shape_str(&out->shape), shape_str(&g->target));
        diag_note(out->span, "the output is made here");
        diag_help("declare the target as `target: %s`, or leave it out and nnc uses the output's shape",
                  shape_str(&out->shape));
    }
}

void shape_infer(Graph *g)
{
    bool ok = true;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = &g->nodes[i];
        if ((n->op == OP_INPUT || infer_node(g, n)) && check_numel(n, &n->shape))
            continue;
        n->shape.ndim = 0;  /* failed, reported: what depends on it stays quiet */
        ok = false;
    }
    for (int i = 0; i < g->nlayers; i++) {
        Layer *l = &g->layers[i];
        if (!l->uses) {
            diag_warning(l->span, "layer `%s` is defined but never used in forward", l->name);
            diag_note(NO_SPAN, "it gets no weights; use it or remove it");
        } else if (l->uses > 1) {
            /* sharing weights is fine; backward sums the gradients */
        }
    }
    if (!ok || g->output < 0)
        return;
    check_loss(g);
    if (diag_error_count())
        return;
    layout_params(g);
}
