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

/* the largest tensor nnc accepts per sample, so that every size fits an int
 * in the runtime's loops and products never overflow */
#define MAX_NUMEL ((int64_t)1 << 30)

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

static bool infer_maxpool2d(Graph *g, Node *n, const Shape *in)
{
    if (!want_chw(g, n, in))
        return false;
    int64_t out[2];
    for (int a = 0; a < 2; a++) {
        out[a] = window_out(in->dim[1 + a], n->kernel[a], n->stride[a], n->pad[a], 1);
        if (out[a] <= 0) {
            diag_error(n->span, "maxpool2d's window (%lld) is larger than its %s input (%lld)",
                       (long long)n->kernel[a], a ? "width" : "height", (long long)in->dim[1 + a]);
            note_chain(g, n->in[0]);
            return false;
        }
    }
    n->shape = (Shape){3, {in->dim[0], out[0], out[1]}};
    return true;
}

/* One case per operation; false after an error was reported. */
static bool infer_node(Graph *g, Node *n)
{
    if (n->op == OP_INPUT)
        return true;
    const Shape *in = &g->nodes[n->in[0]].shape;
    if (in->ndim == 0)      /* its input failed already */
        return false;
    switch (n->op) {
    case OP_CONV2D: return infer_conv2d(g, n, in);
    case OP_LINEAR: return infer_linear(g, n, in);
    case OP_MAXPOOL2D: return infer_maxpool2d(g, n, in);
    case OP_RELU: n->shape = *in; return true;
    case OP_FLATTEN:
        n->shape = (Shape){1, {shape_numel(in)}};
        n->alias = n->in[0];
        return true;
    case OP_INPUT: break;
    }
    return true;
}

/* PyTorch's state_dict order: layers as declared, weight before bias */
static void layout_params(Graph *g)
{
    size_t off = 0;
    for (int i = 0; i < g->nlayers; i++) {
        Layer *l = &g->layers[i];
        if (!l->uses)
            continue;
        Param *w = &l->params[0], *b = &l->params[1];
        w->name = xprintf("%s.weight", l->name);
        if (l->op == OP_CONV2D)
            w->shape = (Shape){4, {l->out, l->in / l->groups, l->kernel[0], l->kernel[1]}};
        else
            w->shape = (Shape){2, {l->out, l->in}};
        int64_t fan_in = shape_numel(&w->shape) / w->shape.dim[0];   /* PyTorch's fan_in */
        w->bound = (float)(1.0 / sqrt((double)fan_in));
        l->nparams = 1;
        if (l->bias) {
            b->name = xprintf("%s.bias", l->name);
            b->shape = (Shape){1, {l->out}};
            b->bound = w->bound;
            l->nparams = 2;
        }
        for (int p = 0; p < l->nparams; p++) {
            l->params[p].offset = off;
            l->params[p].numel = (size_t)shape_numel(&l->params[p].shape);
            off += l->params[p].numel;
        }
    }
    g->nparam = off;
}

/* Each value gets its own region of the activation block (per sample), and
 * its gradient the same region of the gradient block; flatten is a view. */
static void layout_activations(Graph *g)
{
    size_t off = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = &g->nodes[i];
        n->needs_grad = n->layer != NULL;
        for (int k = 0; k < n->nin; k++)
            n->needs_grad |= g->nodes[n->in[k]].needs_grad;
        if (n->op == OP_INPUT)
            continue;
        if (n->alias >= 0) {
            n->offset = g->nodes[n->alias].offset;
            continue;
        }
        n->offset = off;
        off += (size_t)shape_numel(&n->shape);
    }
    g->nact = off;
}

static void check_loss(Graph *g)
{
    const Node *out = &g->nodes[g->output];
    if (!g->target_given) {
        g->target = out->shape;
        return;
    }
    if (g->target.ndim != out->shape.ndim ||
        memcmp(g->target.dim, out->shape.dim, sizeof(int64_t) * (size_t)out->shape.ndim)) {
        diag_error(g->target_span, "mse compares the output with the target, but the output is %s and the target %s",
                   shape_str(&out->shape), shape_str(&g->target));
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
        if (n->op == OP_INPUT || infer_node(g, n))
            ok &= check_numel(n, &n->shape);
        else
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
    layout_activations(g);
}
