/* ops/activation.c — the elementwise functions and the normalisations of a
 * value: relu, leaky_relu, sigmoid, tanh, gelu (erf form), silu, softmax,
 * log_softmax and dropout, each with PyTorch's defaults.
 *
 * The shape is unchanged. relu, sigmoid, tanh and the softmaxes compute
 * their backward from their output; leaky_relu, gelu and silu from their input;
 * dropout from the mask its forward saves. relu's fusion with a convolution
 * before it is plan.c's.
 */
#include "nnc.h"

/* leaky_relu(x, negative_slope=0.01) */
static bool leaky_relu_bind(Graph *g, Node *n, const Ast *call, Ast *const *v)
{
    (void)g, (void)call;
    n->alpha = 0.01;
    return !v[0] || arg_number(v[0], "negative_slope", &n->alpha);
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
        diag_error(n->call && n->call->nkids > 1 ? n->call->kids[1]->span : n->span,
                   "%s over dim %d: %s", n->label, n->dim,
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

const OpDef op_relu = {.name = "relu", .kind = OP_RELU, .ninputs = 1, .reads = READS_OUTPUT};
const OpDef op_leaky_relu = {
    .name = "leaky_relu", .kind = OP_LEAKY_RELU, .ninputs = 1, .args = {"negative_slope"},
    .bind = leaky_relu_bind, .reads = READS_INPUT,
};
const OpDef op_sigmoid = {.name = "sigmoid", .kind = OP_SIGMOID, .ninputs = 1, .reads = READS_OUTPUT};
const OpDef op_tanh = {.name = "tanh", .kind = OP_TANH, .ninputs = 1, .reads = READS_OUTPUT};
const OpDef op_gelu = {.name = "gelu", .kind = OP_GELU, .ninputs = 1, .reads = READS_INPUT};
const OpDef op_silu = {.name = "silu", .kind = OP_SILU, .ninputs = 1, .reads = READS_INPUT};
const OpDef op_softmax = {
    .name = "softmax", .kind = OP_SOFTMAX, .ninputs = 1, .args = {"dim"},
    .bind = softmax_bind, .infer = softmax_infer, .reads = READS_OUTPUT, .explain = softmax_explain,
};
const OpDef op_log_softmax = {
    .name = "log_softmax", .kind = OP_LOG_SOFTMAX, .ninputs = 1, .args = {"dim"},
    .bind = softmax_bind, .infer = softmax_infer, .reads = READS_OUTPUT, .explain = softmax_explain,
};
const OpDef op_dropout = {
    .name = "dropout", .kind = OP_DROPOUT, .ninputs = 1, .args = {"p"},
    .bind = dropout_bind, .reads = READS_NOTHING, .mask = true,
};
