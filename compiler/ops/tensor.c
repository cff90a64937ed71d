/* ops/tensor.c — the input and the operations that move or join values:
 * flatten (a view of its input), add (of two values of one shape) and
 * concat (along channels, PyTorch's dim 1). None of their backwards reads a
 * value of forward.
 */
#include "nnc.h"
#include "emit.h"

/* [d1, d2, ...] -> [d1*d2*...], a view of its input's memory */
static bool flatten_infer(Graph *g, Node *n, const Shape *in)
{
    (void)g;
    n->shape = (Shape){1, {shape_numel(in)}};
    n->alias = n->in[0];
    return true;
}

static bool add_infer(Graph *g, Node *n, const Shape *in)
{
    (void)in;
    const Shape *a = &g->nodes[n->in[0]].shape, *b = &g->nodes[n->in[1]].shape;
    if (!shape_same(a, b)) {
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
static bool concat_infer(Graph *g, Node *n, const Shape *in)
{
    (void)in;
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


static void input_explain(FILE *out, const Graph *g, const Node *n)
{
    (void)g, (void)n;
    fprintf(out, "    declared; the batch dimension N comes first at run time\n");
}

static void flatten_explain(FILE *out, const Graph *g, const Node *n)
{
    const Shape *in = &g->nodes[n->in[0]].shape;
    fprintf(out, "    ");
    for (int i = 0; i < in->ndim; i++)
        fprintf(out, "%s%lld", i ? "*" : "", (long long)in->dim[i]);
    fprintf(out, " = %lld features\n", (long long)n->shape.dim[0]);
}

static void add_explain(FILE *out, const Graph *g, const Node *n)
{
    (void)g;
    fprintf(out, "    elementwise sum of two values of shape %s\n", shape_str(&n->shape));
}

static void concat_explain(FILE *out, const Graph *g, const Node *n)
{
    fprintf(out, "    channels: ");
    for (int i = 0; i < n->nin; i++)
        fprintf(out, "%s%lld", i ? " + " : "", (long long)g->nodes[n->in[i]].shape.dim[0]);
    fprintf(out, " = %lld\n", (long long)n->shape.dim[0]);
}

/* the input is declared, never called: graph.c makes its node */
/* ---- the C it writes (emit.h) ---- */

/* input: the caller's pointer; no code */
static void emit_input_forward(Emit *e, const Node *n) { (void)e, (void)n; }

static void emit_input_backward(Emit *e, const Node *n) { (void)e, (void)n; }

static void emit_flatten_forward(Emit *e, const Node *n)
{
    out(e, "    /* a view: %s shares the memory of %s */\n", e->vname[n->id], e->vname[n->in[0]]);
}

static void emit_flatten_backward(Emit *e, const Node *n)
{
    out(e, "    /* a view: d %s is d %s */\n", e->vname[n->id], e->vname[n->in[0]]);
}

static void emit_add_forward(Emit *e, const Node *n)
{
    out(e, "    nnrt_add_forward(%s, %s, %s, (size_t)n * %zu);\n", V(e, n->id), V(e, n->in[0]), V(e, n->in[1]),
        node_numel(n));
}

static void emit_add_backward(Emit *e, const Node *n)
{
    for (int k = 0; k < 2; k++)
        if (n->assign_in & (1u << k))   /* the only writer of that gradient */
            out(e, "    memcpy(%s, %s, sizeof(float) * (size_t)n * %zu);\n", D(e, n->in[k]), D(e, n->id),
                node_numel(n));
        else if (e->g->nodes[n->in[k]].needs_grad)
            out(e, "    nnrt_accumulate(%s, %s, (size_t)n * %zu);\n", D(e, n->in[k]), D(e, n->id),
                node_numel(n));
}

/* concat along channels: each input is copied to (forward) or from
 * (backward) its channels [c0, c0 + ck) of the output */
static void emit_concat_forward(Emit *e, const Node *n)
{
    long long inner = (long long)(node_numel(n) / (size_t)n->shape.dim[0]), c0 = 0;
    for (int k = 0; k < n->nin; k++) {
        long long ck = e->g->nodes[n->in[k]].shape.dim[0];
        out(e, "    nnrt_concat_forward(%s, %s, n, %lld, %lld, %lld, %lld);\n", V(e, n->id), V(e, n->in[k]), ck,
            (long long)n->shape.dim[0], c0, inner);
        c0 += ck;
    }
}

static void emit_concat_backward(Emit *e, const Node *n)
{
    long long inner = (long long)(node_numel(n) / (size_t)n->shape.dim[0]), c0 = 0;
    for (int k = 0; k < n->nin; k++) {
        long long ck = e->g->nodes[n->in[k]].shape.dim[0];
        if (e->g->nodes[n->in[k]].needs_grad)
            out(e, "    nnrt_concat_backward(%s, %s, n, %lld, %lld, %lld, %lld);\n", D(e, n->in[k]),
                D(e, n->id), ck, (long long)n->shape.dim[0], c0, inner);
        c0 += ck;
    }
}

const OpDef op_input = {
    .name = "input", .kind = OP_INPUT, .explain = input_explain,
    .emit_forward = emit_input_forward, .emit_backward = emit_input_backward,
};
const OpDef op_flatten = {
    .name = "flatten", .kind = OP_FLATTEN, .ninputs = 1, .infer = flatten_infer, .explain = flatten_explain,
    .emit_forward = emit_flatten_forward, .emit_backward = emit_flatten_backward,
};
const OpDef op_add = {
    .name = "add", .kind = OP_ADD, .ninputs = 2, .infer = add_infer, .explain = add_explain,
    .emit_forward = emit_add_forward, .emit_backward = emit_add_backward, .backward_always = true,
};
const OpDef op_concat = {
    .name = "concat", .kind = OP_CONCAT, .ninputs = -1, .infer = concat_infer, .explain = concat_explain,
    .emit_forward = emit_concat_forward, .emit_backward = emit_concat_backward,
    .backward_always = true,
};
