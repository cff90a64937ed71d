/* ops/activation.c — the elementwise functions and the normalisations of a
 * value: relu, leaky_relu, elu, sigmoid, tanh, gelu (erf form), silu,
 * softmax, log_softmax and dropout, each with PyTorch's defaults.
 *
 * The shape is unchanged. relu, sigmoid, tanh and the softmaxes compute
 * their backward from their output; leaky_relu, elu, gelu and silu from their input;
 * dropout from the mask its forward saves. relu's fusion with a convolution
 * before it is plan.c's.
 */
#include "nnc.h"
#include "emit.h"

/* leaky_relu(x, negative_slope=0.01) */
static bool leaky_relu_bind(Graph *g, Node *n, const Ast *call, Ast *const *v)
{
    (void)g, (void)call;
    n->alpha = 0.01;
    return !v[0] || arg_number(v[0], "negative_slope", &n->alpha);
}

/* elu(x, alpha=1.0) */
static bool elu_bind(Graph *g, Node *n, const Ast *call, Ast *const *v)
{
    (void)g, (void)call;
    n->alpha = 1.0;
    return !v[0] || arg_number(v[0], "alpha", &n->alpha);
}

/* softmax(x, dim=1): PyTorch's dim (1 = the first per-sample dim), checked by infer */
static bool softmax_bind(Graph *g, Node *n, const Ast *call, Ast *const *v)
{
    (void)g, (void)call;
    n->dim = 1;
    if (!v[0])
        return true;
    if (v[0]->kind != A_INT) {
        diag_error(v[0]->span, "dim must be an integer, found %s", ast_kind_name(v[0]));
        return false;
    }
    int64_t dim = v[0]->ival;
    n->dim = (int)(dim < -8 ? -8 : dim > 8 ? 8 : dim);
    return true;
}

/* dropout(x, p=0.5), p in [0, 1) */
static bool dropout_bind(Graph *g, Node *n, const Ast *call, Ast *const *v)
{
    (void)call;
    n->alpha = 0.5;
    g->has_dropout = true;
    return !v[0] || arg_range(v[0], "p", 0, 1, true, &n->alpha);
}

/* softmax(x, dim): PyTorch's dim counts the batch as 0 */
static bool softmax_infer(Graph *g, Node *n, const Shape *in)
{
    int nd = in->ndim, d = n->dim;
    if (d < 0)
        d += nd + 1;
    if (d < 1 || d > nd) {
        const Ast *arg = n->call && n->call->nkids > 1 ? n->call->kids[1] : NULL;
        long long written = arg && arg->value->kind == A_INT ? arg->value->ival : n->dim;  /* not clamped */
        diag_error(arg ? arg->span : n->span, "%s over dim %lld: %s", n->label, written,
                   d == 0 ? "that is the batch dimension, which nnc does not normalise over"
                          : xprintf("the input %s has dims 1 to %d (0 is the batch)", shape_str(in), nd));
        shape_note_chain(g, n->in[0]);
        return false;
    }
    n->dim = d;     /* from here on: 1-based per-sample dim */
    n->shape = *in;
    return true;
}


static void softmax_explain(FILE *out, const Graph *g, const Node *n)
{
    (void)g;
    fprintf(out, "    normalised along dim %d (size %lld); shape unchanged\n", n->dim,
            (long long)n->shape.dim[n->dim - 1]);
}

/* ---- the C it writes (emit.h) ---- */

/* relu, sigmoid, tanh and gelu forward: out = f(in), elementwise */
static void emit_unary_forward(Emit *e, const Node *n)
{
    out(e, "    nnrt_%s_forward(%s, %s, (size_t)n * %zu);\n", op_name(n->op), V(e, n->id), V(e, n->in[0]),
        node_numel(n));
}

/* sigmoid and tanh backward read their output */
static void emit_unary_backward(Emit *e, const Node *n)
{
    out(e, "    nnrt_%s_backward(%s, %s, %s, (size_t)n * %zu);\n", op_name(n->op), D(e, n->in[0]), D(e, n->id),
        V(e, n->id), node_numel(n));
}

static void emit_relu_forward(Emit *e, const Node *n)
{
    if (n->alias >= 0)
        out(e, "    /* fused: %s applied it, in place (%s is a view of it) */\n", e->vname[n->in[0]],
            e->vname[n->id]);
    else
        emit_unary_forward(e, n);
}

static void emit_relu_backward(Emit *e, const Node *n)
{
    if (n->folded)
        out(e, "    /* folded into the backward of the max-pool after it */\n");
    else if (n->alias >= 0)     /* in place: its gradient is its input's */
        out(e, "    nnrt_relu_backward_inplace(%s, %s, (size_t)n * %zu);\n", D(e, n->id), V(e, n->id),
            node_numel(n));
    else if (n->assign_in & 1)  /* the only writer of its input's gradient */
        out(e, "    nnrt_relu_backward_assign(%s, %s, %s, (size_t)n * %zu);\n", D(e, n->in[0]), D(e, n->id),
            V(e, n->id), node_numel(n));
    else
        emit_unary_backward(e, n);
}

/* gelu's and silu's backward read their input */
static void emit_unary_backward_from_input(Emit *e, const Node *n)
{
    out(e, "    nnrt_%s_backward(%s, %s, %s, (size_t)n * %zu);\n", op_name(n->op), D(e, n->in[0]), D(e, n->id),
        V(e, n->in[0]), node_numel(n));
}

/* leaky_relu and elu: one setting (n->alpha); the backward reads the input */
static void emit_unary_alpha_forward(Emit *e, const Node *n)
{
    out(e, "    nnrt_%s_forward(%s, %s, (size_t)n * %zu, %s);\n", op_name(n->op), V(e, n->id), V(e, n->in[0]),
        node_numel(n), F(n->alpha));
}

static void emit_unary_alpha_backward(Emit *e, const Node *n)
{
    out(e, "    nnrt_%s_backward(%s, %s, %s, (size_t)n * %zu, %s);\n", op_name(n->op), D(e, n->in[0]),
        D(e, n->id), V(e, n->in[0]), node_numel(n), F(n->alpha));
}

/* softmax's view [outer, C, inner] of a per-sample shape, along 1-based dim d */
static void softmax_view(const Node *n, long long *outer, long long *c, long long *inner)
{
    *outer = *inner = 1;
    for (int i = 0; i < n->shape.ndim; i++) {
        if (i < n->dim - 1)
            *outer *= n->shape.dim[i];
        else if (i > n->dim - 1)
            *inner *= n->shape.dim[i];
    }
    *c = n->shape.dim[n->dim - 1];
}

/* softmax and log_softmax */
static void emit_softmax_forward(Emit *e, const Node *n)
{
    long long o, c, i;
    softmax_view(n, &o, &c, &i);
    out(e, "    nnrt_%s_forward(%s, %s, n * %lld, %lld, %lld);\n", op_name(n->op), V(e, n->id), V(e, n->in[0]),
        o, c, i);
}

static void emit_softmax_backward(Emit *e, const Node *n)
{
    long long o, c, i;
    softmax_view(n, &o, &c, &i);
    out(e, "    nnrt_%s_backward(%s, %s, %s, n * %lld, %lld, %lld);\n", op_name(n->op), D(e, n->in[0]),
        D(e, n->id), V(e, n->id), o, c, i);
}

static void emit_dropout_forward(Emit *e, const Node *n)
{
    size_t numel = node_numel(n);
    int in = n->in[0];
    out(e, "    if (m->training) {   /* a fresh mask each step, from the seed: deterministic */\n"
           "        nnrt_rng rng;\n"
           "        nnrt_rng_seed(&rng, m->seed ^ (0x9e3779b97f4a7c15u * ((uint64_t)m->steps + 1)) ^ %du);\n"
           "        nnrt_dropout_forward(%s, m->act + B * %zu, %s, (size_t)n * %zu, %s, &rng);\n"
           "    } else {\n"
           "        memcpy(%s, %s, sizeof(float) * (size_t)n * %zu);\n"
           "    }\n",
        n->id, V(e, n->id), n->aux, V(e, in), numel, F(n->alpha), V(e, n->id), V(e, in), numel);
}

static void emit_dropout_backward(Emit *e, const Node *n)
{
    size_t numel = node_numel(n);
    int in = n->in[0];
    out(e, "    if (m->training)\n"
           "        nnrt_dropout_backward(%s, %s, m->act + B * %zu, (size_t)n * %zu);\n"
           "    else\n"
           "        nnrt_accumulate(%s, %s, (size_t)n * %zu);\n",
        D(e, in), D(e, n->id), n->aux, numel, D(e, in), D(e, n->id), numel);
}

const OpDef op_relu = {
    .name = "relu", .kind = OP_RELU, .ninputs = 1, .reads = READS_OUTPUT,
    .emit_forward = emit_relu_forward, .emit_backward = emit_relu_backward,
};
const OpDef op_leaky_relu = {
    .name = "leaky_relu", .kind = OP_LEAKY_RELU, .ninputs = 1, .args = {"negative_slope"},
    .bind = leaky_relu_bind, .reads = READS_INPUT,
    .emit_forward = emit_unary_alpha_forward, .emit_backward = emit_unary_alpha_backward,
};
const OpDef op_elu = {
    .name = "elu", .kind = OP_ELU, .ninputs = 1, .args = {"alpha"}, .bind = elu_bind, .reads = READS_INPUT,
    .emit_forward = emit_unary_alpha_forward, .emit_backward = emit_unary_alpha_backward,
};
/* an elementwise function with no settings; its backward reads its output
 * (sigmoid, tanh) or its input (gelu, silu) */
#define UNARY(NAME, KIND, READS, BACKWARD)                                                        \
    {                                                                                            \
        .name = NAME, .kind = KIND, .ninputs = 1, .reads = READS, .emit_forward = emit_unary_forward, \
        .emit_backward = BACKWARD,                                                               \
    }
const OpDef op_sigmoid = UNARY("sigmoid", OP_SIGMOID, READS_OUTPUT, emit_unary_backward);
const OpDef op_tanh = UNARY("tanh", OP_TANH, READS_OUTPUT, emit_unary_backward);
const OpDef op_gelu = UNARY("gelu", OP_GELU, READS_INPUT, emit_unary_backward_from_input);
const OpDef op_silu = UNARY("silu", OP_SILU, READS_INPUT, emit_unary_backward_from_input);
const OpDef op_softmax = {
    .name = "softmax", .kind = OP_SOFTMAX, .ninputs = 1, .args = {"dim"},
    .bind = softmax_bind, .infer = softmax_infer, .reads = READS_OUTPUT, .explain = softmax_explain,
    .emit_forward = emit_softmax_forward, .emit_backward = emit_softmax_backward,
};
const OpDef op_log_softmax = {
    .name = "log_softmax", .kind = OP_LOG_SOFTMAX, .ninputs = 1, .args = {"dim"},
    .bind = softmax_bind, .infer = softmax_infer, .reads = READS_OUTPUT, .explain = softmax_explain,
    .emit_forward = emit_softmax_forward, .emit_backward = emit_softmax_backward,
};
const OpDef op_dropout = {
    .name = "dropout", .kind = OP_DROPOUT, .ninputs = 1, .args = {"p"},
    .bind = dropout_bind, .reads = READS_NOTHING, .mask = true,
    .emit_forward = emit_dropout_forward, .emit_backward = emit_dropout_backward,
};
