/* ops/linear.c — linear, nn.Linear: a layer with a weight [out, in] and a
 * bias [out], applied to the last dimension of its input, as nn.Linear is:
 * [in] -> [out], and [T, in] -> [T, out] position by position (the rows of
 * the kernels are then the batch times T).
 *
 * Arguments: linear(out, bias=true), or PyTorch's order linear(in, out) when
 * two positional arguments are given; `in` is inferred when left out (this
 * is where LeNet's 16*5*5 = 400 is found, and a wrong one is explained from
 * the flatten before it). Its backward reads its input and weight.
 */
#include "nnc.h"
#include "emit.h"

static bool linear_bind(Layer *l, const Ast *call, Ast *const *v)
{
    l->bias = true;
    bool ok = arg_in_out(l, call, v[0], v[1], "linear(120)");
    if (v[2]) ok &= arg_bool(v[2], "bias", &l->bias);
    return ok;
}

/* [..., in] -> [..., out]; learns or checks `in` */
static bool linear_infer(Graph *g, Node *n, const Shape *in)
{
    Layer *l = n->layer;
    int64_t features = in->dim[in->ndim - 1];
    if (in->ndim >= 3 && (l->in < 0 || l->in == features)) {    /* an image: flatten forgotten? */
        Shape y = *in;
        y.dim[y.ndim - 1] = l->out;
        diag_warning(n->span, "%s applies to the last dimension of its input %s, as nn.Linear does: %lld features "
                     "at each of %lld positions, giving %s", l->name, shape_str(in), (long long)features,
                     (long long)(shape_numel(in) / features), shape_str(&y));
        diag_help("to use all %lld features, flatten first: `%s(flatten(x))`", (long long)shape_numel(in),
                  l->name);
        shape_note_chain(g, n->in[0]);
    }
    if (l->in < 0) {
        l->in = features;
    } else if (in->ndim > 1 && l->in != features) {
        Span at = l->in_span.first_line ? l->in_span : l->span;
        diag_error(at, "%s expects %lld input features, but the last dimension of its input %s has %lld",
                   l->name, (long long)l->in, shape_str(in), (long long)features);
        diag_note(n->span, "%s applies to the last dimension, as nn.Linear does", l->name);
        if (l->in == shape_numel(in))
            diag_help("flatten it first: `%s(flatten(x))` gives %lld features", l->name, (long long)l->in);
        shape_note_chain(g, n->in[0]);
        const Node *x = &g->nodes[g->input];
        if (n->in[0] == g->input && in->ndim == 2 && l->in == in->dim[1])    /* [64, 784]: a batch? */
            diag_note(x->span, "the batch dimension is implicit: if %lld is the batch size, declare `input %s: "
                      "[%lld]`", (long long)in->dim[0], x->label, (long long)in->dim[1]);
        return false;
    } else if (l->in != features) {
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
        shape_note_chain(g, n->in[0]);
        diag_help("write `linear(%lld)` and nnc infers %lld", (long long)l->out, (long long)in->dim[0]);
        return false;
    }
    n->shape = *in;
    n->shape.dim[in->ndim - 1] = l->out;
    return true;
}

static bool linear_params(Graph *g, Layer *l)
{
    (void)g;
    return param_weight_bias(l, (Shape){2, {l->out, l->in}});
}

static void linear_workspace(const Graph *g, const Node *n, int N, nnrt_workspace *w)
{
    (void)g;
    int64_t pos = shape_numel(&n->shape) / n->layer->out;
    nnrt_workspace_linear(w, (int)(N * pos), (int)n->layer->in, (int)n->layer->out);
}

static void emit_linear_workspace(Emit *e, const Node *n)
{
    out(e, "    nnrt_workspace_linear(w, %s, %lld, %lld);\n", node_rows(n), (long long)n->layer->in,
        (long long)n->layer->out);
}

static void linear_explain(FILE *out, const Graph *g, const Node *n)
{
    (void)g;
    const Layer *l = n->layer;
    fprintf(out, "    features: %lld in (%s), %lld out; weight [%lld, %lld]\n", (long long)l->in,
            l->in_span.first_line ? "as written, checked" : "inferred from the input", (long long)l->out,
            (long long)l->out, (long long)l->in);
}

/* ---- the C it writes (emit.h) ---- */

static void emit_linear_forward(Emit *e, const Node *n)
{
    out(e, "    nnrt_linear_forward(%s, %s, %s, %s, %s, %lld, %lld);\n", V(e, n->id), V(e, n->in[0]),
        param_ptr(e, "param", weight(n)), param_ptr(e, "param", bias(n)), node_rows(n), (long long)n->layer->in,
        (long long)n->layer->out);
}

/* The first write of the gradients assigns them when zero_grad marked them
 * zero. In the pass that may step (plain SGD), the backward of a layer
 * applied once makes its update too, where it reads the weights anyway. */
static void emit_linear_backward(Emit *e, const Node *n)
{
    const Graph *g = e->g;
    int in = n->in[0];
    const char *rows = node_rows(n);
    const char *args = xprintf("%s, %s, %s, %s, %s, %s, %s, %lld, %lld", D(e, in), param_ptr(e, "grad", weight(n)),
        param_ptr(e, "grad", bias(n)), D(e, n->id), V(e, in), param_ptr(e, "param", weight(n)), rows,
        (long long)n->layer->in, (long long)n->layer->out);
    bool first = first_grads(e, n, false);
    if (e->stepping && layer_uses(g, n->layer) == 1) {
        e->stepped[n->layer - g->layers] = true;
        out(e, "    if (step)\n        nnrt_linear_backward_sgd(%s, %s, %s, %s, %s, %s, %s, %s, %lld, %lld, lr);\n"
               "    else ", D(e, in), param_ptr(e, "grad", weight(n)), param_ptr(e, "grad", bias(n)), D(e, n->id),
            V(e, in), param_ptr(e, "param", weight(n)), param_ptr(e, "param", bias(n)), rows, (long long)n->layer->in,
            (long long)n->layer->out);
    } else if (first) {
        out(e, "    ");
    }
    if (first)
        out(e, "if (m->grad_zero)\n        nnrt_linear_backward_first(%s);\n"
               "    else\n        nnrt_linear_backward(%s);\n", args, args);
    else
        out(e, "    nnrt_linear_backward(%s);\n", args);
}

const OpDef op_linear = {
    .name = "linear",
    .kind = OP_LINEAR,
    .layer = true,
    .args = {"in", "out", "bias"},
    .order = {1}, .norder = 1,
    .torch_order = {0, 1}, .ntorch = 2,
    .bind_layer = linear_bind,
    .infer = linear_infer,
    .params = linear_params,
    .reads = READS_INPUT,
    .workspace = linear_workspace, .emit_workspace = emit_linear_workspace,
    .explain = linear_explain,
    .emit_forward = emit_linear_forward, .emit_backward = emit_linear_backward,
    .backward_always = true,
};
