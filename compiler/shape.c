/* shape.c — shape inference and checking: one pass, one case per operation
 * (its OpDef.infer, in compiler/ops/).
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
void shape_note_chain(const Graph *g, int id)
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
int64_t shape_window_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d)
{
    int64_t span = in + 2 * p - d * (k - 1) - 1;
    return span < 0 ? 0 : span / s + 1;
}

/* Warns when rounding down leaves real input rows (a = 0) or columns (a = 1)
 * outside every window: PyTorch does the same, silently. k_ext is the
 * (dilated) window's extent; a window smaller than the stride skips input
 * on purpose (a strided 1x1 convolution) and is not warned about. */
void shape_warn_dropped(const Node *n, int a, int64_t in, int64_t k_ext, int64_t s, int64_t p, int64_t out,
                        const char *help)
{
    int64_t last_covered = (out - 1) * s + k_ext - 1;     /* in padded coordinates */
    int64_t dropped = p + in - 1 - last_covered;
    if (dropped <= 0 || k_ext < s)  /* windows that leave gaps skip input by design */
        return;
    diag_warning(n->span, "%s leaves out the last %lld %s of its input: (%lld + 2*%lld - %lld) is not a multiple of "
                 "the stride %lld, and the size rounds down to %lld, as in PyTorch", n->label, (long long)dropped,
                 a ? (dropped == 1 ? "column" : "columns") : (dropped == 1 ? "row" : "rows"), (long long)in,
                 (long long)p, (long long)k_ext, (long long)s, (long long)out);
    diag_help("%s", help);
}

/* Is node id the input, or the input through operations that keep its
 * shape (relu(x))? */
static bool from_input(const Graph *g, int id)
{
    while (id != g->input && g->nodes[id].nin == 1 && shape_same(&g->nodes[id].shape, &g->nodes[g->nodes[id].in[0]].shape))
        id = g->nodes[id].in[0];
    return id == g->input;
}

/* Needs a [C, H, W] input; reports otherwise. An input declared with four
 * dims ([64, 3, 32, 32]) that reaches it as it is holds a batch size. */
bool shape_want_chw(const Graph *g, const Node *n, const Shape *in)
{
    if (in->ndim == 3)
        return true;
    diag_error(n->span, "%s expects an input of shape [channels, height, width], but its input is %s",
               n->label, shape_str(in));
    if (in->ndim == 1)
        diag_help("%s works on images; it cannot follow flatten or linear", op_name(n->op));
    shape_note_chain(g, n->in[0]);
    if (in->ndim == 4 && from_input(g, n->in[0])) {
        const Node *x = &g->nodes[g->input];
        diag_note(x->span, "the input is declared with 4 dims, %s: the batch dimension is implicit, so %lld "
                  "reads as channels", shape_str(&x->shape), (long long)x->shape.dim[0]);
        diag_help("if %lld is the batch size, leave it out: `input %s: [%lld, %lld, %lld]`",
                  (long long)x->shape.dim[0], x->label, (long long)x->shape.dim[1], (long long)x->shape.dim[2],
                  (long long)x->shape.dim[3]);
    }
    return false;
}

bool shape_same(const Shape *a, const Shape *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dim[i] != b->dim[i])
            return false;
    return true;
}

/* A node's shape, by its operation's infer (NULL: its input's shape);
 * false after an error was reported. */
static bool infer_node(Graph *g, Node *n)
{
    if (n->op == OP_INPUT)
        return true;
    for (int i = 0; i < n->nin; i++)
        if (g->nodes[n->in[i]].shape.ndim == 0)     /* an input failed already */
            return false;
    const Shape *in = &g->nodes[n->in[0]].shape;
    const OpDef *d = op_def(n->op);
    for (int i = 0; i < n->nin; i++) {
        const Node *src = &g->nodes[n->in[i]];
        if (src->vocab > 0 && !d->takes_tokens) {
            const char *what = src->op == OP_INPUT ? src->label : diag_snippet(src->span);
            diag_error(n->span, "%s cannot take `%s`: it holds token ids (0 to %lld), which are names, not numbers",
                       n->layer ? n->layer->name : op_name(n->op), what, (long long)src->vocab - 1);
            diag_help("turn them into vectors first with an embedding layer: `wte = embedding(%lld, 128)`, then "
                      "`wte(%s)`", (long long)src->vocab, what);
            return false;
        }
    }
    if (!d->infer) {
        n->shape = *in;
        return true;
    }
    return d->infer(g, n, in);
}

Param param_make(const Layer *l, const char *what, Shape shape, int init, bool buffer)
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

bool param_weight_bias(Layer *l, Shape ws)
{
    if (!check_weight(l, &ws))
        return false;
    /* PyTorch: kaiming_uniform(a=sqrt(5)) and the bias both give U(+-1/sqrt(fan_in)) */
    float bound = (float)(1.0 / sqrt((double)(shape_numel(&ws) / ws.dim[0])));
    l->params[l->nparams++] = param_make(l, "weight", ws, INIT_UNIFORM, false);
    if (l->bias)
        l->params[l->nparams++] = param_make(l, "bias", (Shape){1, {l->out}}, INIT_UNIFORM, false);
    for (int p = 0; p < l->nparams; p++)
        l->params[p].bound = bound;
    return true;
}

/* PyTorch's state_dict order: layers as declared; each layer's parameters
 * as its operation lays them out (weight, bias, then buffers).
 * Trainable parameters go to the parameter block, buffers to the buffer block. */
static void layout_params(Graph *g)
{
    size_t off = 0, boff = 0;
    for (int i = 0; i < g->nlayers; i++) {
        Layer *l = &g->layers[i];
        if (!l->uses)
            continue;
        l->nparams = 0;
        if (!op_def(l->op)->params(g, l))
            continue;
        for (int p = 0; p < l->nparams; p++) {   /* each tensor at a cache line (nnc.h) */
            Param *q = &l->params[p];
            if (q->count) {                        /* an integer, in the count block */
                q->offset = g->ncount;
                g->ncount += q->numel;
                continue;
            }
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

/* The losses that take logits and apply their own (log-)softmax or sigmoid,
 * as PyTorch's do: warns when the output has it applied already. */
static void warn_normalised_twice(const Graph *g, const Node *out)
{
    const char *name = loss_name(g->loss);
    if (g->loss == LOSS_CROSS_ENTROPY && (out->op == OP_SOFTMAX || out->op == OP_LOG_SOFTMAX)) {
        diag_warning(out->span, "cross_entropy takes logits, but the output is already normalised by %s",
                     op_name(out->op));
        diag_note(NO_SPAN, "cross_entropy applies log_softmax itself, as PyTorch's nn.CrossEntropyLoss does, so "
                  "this normalises twice and trains slowly");
        if (out->op == OP_LOG_SOFTMAX)
            diag_help("return the logits, `%s`, or keep log_softmax and use `loss nll()`",
                      diag_snippet(g->nodes[out->in[0]].span));
        else
            diag_help("return the logits, `%s`", diag_snippet(g->nodes[out->in[0]].span));
    } else if (g->loss == LOSS_NLL && out->op == OP_SOFTMAX) {
        diag_warning(out->span, "nll takes log-probabilities, but the output is softmax's probabilities");
        diag_help("use `log_softmax`, or return the logits and use `loss cross_entropy()`");
    } else if (g->loss == LOSS_BCE_WITH_LOGITS && out->op == OP_SIGMOID) {
        diag_warning(out->span, "%s takes logits, but the output is already a sigmoid", name);
        diag_note(NO_SPAN, "%s applies the sigmoid itself, as PyTorch's nn.BCEWithLogitsLoss does", name);
        diag_help("return the logits, `%s`", diag_snippet(g->nodes[out->in[0]].span));
    }
}

static void check_loss(Graph *g)
{
    const Node *out = &g->nodes[g->output];
    const char *name = loss_name(g->loss);
    warn_normalised_twice(g, out);
    if (g->loss == LOSS_CROSS_ENTROPY || g->loss == LOSS_NLL) {
        bool seq = out->shape.ndim == 2 && g->nodes[g->input].vocab > 0;
        if (out->shape.ndim != 1 && !seq) {
            diag_error(g->loss_span, "%s needs an output of shape [classes]%s, but the output is %s", name,
                       g->nodes[g->input].vocab > 0 ? " or [positions, classes]" : "", shape_str(&out->shape));
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
        /* a sequence model's [T, V]: a class at each position, the last
         * dimension the classes (as logits.view(-1, V) in nanoGPT) */
        g->classes = (int)out->shape.dim[out->shape.ndim - 1];
        g->target = seq ? (Shape){1, {out->shape.dim[0]}} : (Shape){0, {0}};
        return;
    }
    if (!g->target_given) {
        g->target = out->shape;
        return;
    }
    if (!shape_same(&g->target, &out->shape)) {
        diag_error(g->target_span, "%s compares the output with the target, but the output is %s and the target %s",
                   name, shape_str(&out->shape), shape_str(&g->target));
        diag_note(out->span, "the output is made here");
        diag_help("declare the target as `target: %s`, or leave it out and nnc uses the output's shape",
                  shape_str(&out->shape));
    }
}

/* Warns about each value computed in forward that never reaches the output
 * (`a = fc2(x)` when forward returns fc1(x)), once for the last of a chain,
 * and says which layers that leaves without a gradient. Nothing else
 * changes: the value is still computed. */
static void warn_dead_values(const Graph *g)
{
    bool *live = xalloc((size_t)g->nnodes), *read = xalloc((size_t)g->nnodes);
    live[g->output] = true;
    for (int i = g->nnodes - 1; i >= 0; i--)
        for (int k = 0; k < g->nodes[i].nin; k++) {
            live[g->nodes[i].in[k]] |= live[i];
            read[g->nodes[i].in[k]] = true;
        }
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = &g->nodes[i];
        if (live[i] || read[i] || n->op == OP_INPUT)
            continue;
        diag_warning(n->span, "the value of `%s` is computed but never used on the way to the output",
                     diag_snippet(n->span));
        bool *mine = xalloc((size_t)g->nnodes), *told = xalloc((size_t)g->nlayers + 1);
        mine[i] = true;
        for (int j = i; j >= 0; j--) {      /* the dead values on the way to it, and their layers */
            if (!mine[j])
                continue;
            for (int k = 0; k < g->nodes[j].nin; k++)
                mine[g->nodes[j].in[k]] |= !live[g->nodes[j].in[k]];
            const Layer *l = g->nodes[j].layer;
            if (!l || told[l - g->layers])
                continue;
            bool alive = false;
            for (int k = 0; k < g->nnodes; k++)
                alive |= g->nodes[k].layer == l && live[k];
            told[l - g->layers] = true;
            if (!alive)
                diag_note(l->span, "so `%s` gets no gradient: its weights do not learn", l->name);
        }
        diag_help("use it, or remove it");
    }
}

/* Does a sequence model's output at position t read the input at
 * positions 0..t alone? Each value must keep the positions first and mix
 * them only through a causal attention; the trainer's sampling then leaves
 * the window's later positions empty instead of recomputing a shorter one. */
static bool sequence_causal(const Graph *g)
{
    const Node *x = &g->nodes[g->input];
    if (x->vocab <= 0)
        return false;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = &g->nodes[i];
        if (n->shape.ndim < 1 || n->shape.dim[0] != x->shape.dim[0])
            return false;
        switch (n->op) {
        case OP_INPUT: case OP_EMBEDDING: case OP_POSITIONS: case OP_LAYERNORM: case OP_ADD: case OP_DROPOUT:
        case OP_LSTM:           /* reads the steps before each one alone */
        case OP_RELU: case OP_LEAKY_RELU: case OP_ELU: case OP_SIGMOID: case OP_TANH: case OP_GELU: case OP_SILU:
            break;
        case OP_LINEAR:         /* position by position on [T, C] */
            if (n->shape.ndim < 2)
                return false;
            break;
        case OP_SOFTMAX: case OP_LOG_SOFTMAX:   /* along the features, not the positions */
            if (n->shape.ndim < 2 || (n->dim != -1 && n->dim != n->shape.ndim))
                return false;
            break;
        case OP_ATTENTION:
            if (!n->causal)
                return false;
            break;
        default:
            return false;
        }
    }
    return true;
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
    if (g->output >= 0)
        warn_dead_values(g);
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
    g->causal = sequence_causal(g);
    layout_params(g);
}
