/* ops/norm.c — batchnorm1d and batchnorm2d, nn.BatchNorm1d/2d: layers with a
 * weight and bias [C] (when affine) and the buffers running_mean and
 * running_var [C].
 *
 * Arguments: batchnorm2d(num_features, eps=1e-5, momentum=0.1, affine=true);
 * num_features (also `in`) is inferred when left out. batchnorm1d takes
 * [C] or [C, L], batchnorm2d [C, H, W]; the shape is unchanged. Forward keeps
 * the batch's mean and inverse deviation ([2C] of fixed scratch) for its
 * backward, which reads its input too.
 */
#include "nnc.h"
#include "emit.h"

static bool batchnorm_bind(Layer *l, const Ast *call, Ast *const *v)
{
    (void)call;
    bool ok = true;
    l->in = -1;
    l->eps = 1e-5;
    l->momentum = 0.1;
    l->bias = true;
    Ast *nf = v[0] ? v[0] : v[4];
    if (v[0] && v[4]) {
        diag_error(v[4]->span, "give `num_features` or `in`, not both");
        ok = false;
    } else if (nf) {
        ok &= arg_size(nf, "num_features", 1, &l->in);
        l->in_span = nf->span;
    }
    if (v[1]) ok &= arg_range(v[1], "eps", 0, 1, false, &l->eps);     /* 0 too, as PyTorch */
    if (v[2]) ok &= arg_range(v[2], "momentum", 0, 1, false, &l->momentum);
    if (v[3]) ok &= arg_bool(v[3], "affine", &l->bias);
    return ok;
}

/* batchnorm1d: [C] or [C, L]; batchnorm2d: [C, H, W] */
static bool batchnorm_infer(Graph *g, Node *n, const Shape *in)
{
    Layer *l = n->layer;
    bool two = n->op == OP_BATCHNORM2D;
    if (two ? in->ndim != 3 : (in->ndim < 1 || in->ndim > 2)) {
        diag_error(n->span, "%s (%s) expects an input of shape %s, but its input is %s", l->name, op_name(n->op),
                   two ? "[channels, height, width]" : "[features] or [channels, length]", shape_str(in));
        diag_help(two ? "use batchnorm1d for flat values" : "use batchnorm2d for images");
        shape_note_chain(g, n->in[0]);
        return false;
    }
    if (l->in < 0) {
        l->in = in->dim[0];
    } else if (l->in != in->dim[0]) {
        diag_error(l->in_span.first_line ? l->in_span : l->span, "%s expects %lld features, but its input has %lld",
                   l->name, (long long)l->in, (long long)in->dim[0]);
        diag_note(n->span, "%s is applied here to a value of shape %s", l->name, shape_str(in));
        shape_note_chain(g, n->in[0]);
        return false;
    }
    l->out = l->in;
    n->shape = *in;
    return true;
}

/* weight 1, bias 0 (when affine), running_mean 0, running_var 1 */
static bool batchnorm_params(Graph *g, Layer *l)
{
    Shape c = {1, {l->in}};
    if (l->bias) {
        l->params[l->nparams++] = param_make(l, "weight", c, INIT_ONE, false);
        l->params[l->nparams++] = param_make(l, "bias", c, INIT_ZERO, false);
    }
    l->params[l->nparams++] = param_make(l, "running_mean", c, INIT_ZERO, true);
    l->params[l->nparams++] = param_make(l, "running_var", c, INIT_ONE, true);
    /* the training forwards so far: an int64 scalar, as nn.BatchNorm's */
    Param nbt = param_make(l, "num_batches_tracked", (Shape){0, {0}}, INIT_ZERO, true);
    nbt.count = true;
    l->params[l->nparams++] = nbt;
    g->has_batchnorm = true;
    return true;
}

/* the batch's mean and inverse deviation, per channel */
static size_t batchnorm_scratch(const Node *n) { return 2 * (size_t)n->shape.dim[0]; }

static void batchnorm_explain(FILE *out, const Graph *g, const Node *n)
{
    (void)g;
    const Layer *l = n->layer;
    fprintf(out, "    normalises each of %lld channels (%s); shape unchanged\n", (long long)l->in,
            l->in_span.first_line ? "as written, checked" : "inferred from the input");
}

/* ---- the C it writes (emit.h) ---- */

static void emit_bn_dims(Emit *e, const Node *n)
{
    const Shape *s = &n->shape;
    long long hw = s->ndim == 3 ? (long long)(s->dim[1] * s->dim[2]) : s->ndim == 2 ? (long long)s->dim[1] : 1;
    out(e, ".C = %lld, .HW = %lld, .eps = %s, .momentum = %s%s", (long long)s->dim[0], hw, F(n->layer->eps),
        F(n->layer->momentum), n->assign_in & 1 ? ", .assign_dx = 1" : "");
}

/* batchnorm1d and batchnorm2d */
static void emit_batchnorm_forward(Emit *e, const Node *n)
{
    int in = n->in[0];
    out(e, "    if (m->training) {\n        nnrt_batchnorm_forward_train(%s, m->scratch + %zu, m->scratch + %zu, %s, "
           "%s, %s, %s, %s, %s);\n", V(e, n->id), n->scratch, n->scratch + (size_t)n->shape.dim[0],
        param_ptr(e, "buf", lparam(n, "running_mean")), param_ptr(e, "buf", lparam(n, "running_var")), V(e, in),
        param_ptr(e, "param", weight(n)), param_ptr(e, "param", bias(n)), DIMS(e, n));
    out(e, "        %s[0] += 1;\n    }", param_ptr(e, "buf", lparam(n, "num_batches_tracked")));
    out(e, " else {\n        nnrt_batchnorm_forward_eval(%s, %s, %s, %s, %s, %s, %s);\n    }\n", V(e, n->id), V(e, in),
        param_ptr(e, "param", weight(n)), param_ptr(e, "param", bias(n)),
        param_ptr(e, "buf", lparam(n, "running_mean")), param_ptr(e, "buf", lparam(n, "running_var")),
        DIMS(e, n));
}

static void emit_batchnorm_backward(Emit *e, const Node *n)
{
    int in = n->in[0];
    first_grads(e, n, true);
    out(e, "    nnrt_batchnorm_backward(%s, %s, %s, %s, %s, m->scratch + %zu, m->scratch + %zu, %s, %s);\n",
        D(e, in), param_ptr(e, "grad", weight(n)), param_ptr(e, "grad", bias(n)), D(e, n->id), V(e, in),
        n->scratch, n->scratch + (size_t)n->shape.dim[0], param_ptr(e, "param", weight(n)), DIMS(e, n));
}

#define BATCHNORM(NAME, KIND)                                                   \
    {                                                                           \
        .name = NAME, .kind = KIND, .layer = true,                              \
        .args = {"num_features", "eps", "momentum", "affine", "in"},            \
        .order = {0, 1, 2}, .norder = 3,                                        \
        .bind_layer = batchnorm_bind, .infer = batchnorm_infer,                 \
        .params = batchnorm_params, .reads = READS_INPUT,                       \
        .scratch = batchnorm_scratch, .explain = batchnorm_explain,             \
        .emit_forward = emit_batchnorm_forward,                                 \
        .emit_backward = emit_batchnorm_backward, .backward_always = true,      \
        .dims = "bn", .emit_dims = emit_bn_dims,                                \
    }
const OpDef op_batchnorm1d = BATCHNORM("batchnorm1d", OP_BATCHNORM1D);
const OpDef op_batchnorm2d = BATCHNORM("batchnorm2d", OP_BATCHNORM2D);
