/* ops/pool.c — maxpool2d, avgpool2d, adaptive_avgpool2d (global_avgpool2d):
 * functions of a [C, H, W] value, nn.MaxPool2d, nn.AvgPool2d and
 * nn.AdaptiveAvgPool2d.
 *
 * Arguments after the value: kernel, stride (default: the kernel), padding
 * (at most half the kernel), ceil_mode, and for avgpool2d count_include_pad;
 * adaptive_avgpool2d takes the output size, global_avgpool2d none (1x1).
 * maxpool2d's backward reads its input, unless plan.c lets its forward keep
 * each window's choice; the averages' backward reads nothing.
 */
#include "nnc.h"
#include "emit.h"

#include <string.h>

static bool pool2d_bind(Graph *g, Node *n, const Ast *call, Ast *const *v)
{
    (void)g;
    bool ok = true;
    if (!v[0]) {
        arg_missing(call, "kernel", n->op == OP_MAXPOOL2D ? "maxpool2d(x, 2)" : "avgpool2d(x, 2)");
        return false;
    }
    ok &= arg_pair(v[0], "kernel", 1, n->kernel);
    n->stride[0] = n->kernel[0], n->stride[1] = n->kernel[1];   /* PyTorch: stride defaults to kernel */
    n->count_include_pad = true;
    if (v[1]) ok &= arg_pair(v[1], "stride", 1, n->stride);
    if (v[2]) ok &= arg_pair(v[2], "padding", 0, n->pad);
    if (v[3]) ok &= arg_bool(v[3], "ceil_mode", &n->ceil_mode);
    if (n->op == OP_AVGPOOL2D && v[4]) ok &= arg_bool(v[4], "count_include_pad", &n->count_include_pad);
    for (int a = 0; ok && a < 2; a++)   /* the axis that is wrong, with its own numbers */
        if (n->pad[a] * 2 > n->kernel[a]) {
            bool square = n->pad[0] == n->pad[1] && n->kernel[0] == n->kernel[1];
            diag_error(v[2]->span, "padding of %s must be at most half the kernel%s (%lld), found %lld", call->name,
                       square ? "" : a ? "'s width" : "'s height", (long long)n->kernel[a], (long long)n->pad[a]);
            ok = false;
        }
    return ok;
}

/* adaptive_avgpool2d(x, size); global_avgpool2d(x) is the size 1x1 */
static bool adaptive_bind(Graph *g, Node *n, const Ast *call, Ast *const *v)
{
    (void)g;
    if (strcmp(call->name, "global_avgpool2d") == 0) {
        n->size[0] = n->size[1] = 1;
        return true;
    }
    if (!v[0]) {
        arg_missing(call, "size", "adaptive_avgpool2d(x, [1, 1])");
        return false;
    }
    return arg_pair(v[0], "size", 1, n->size);
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

static bool pool2d_infer(Graph *g, Node *n, const Shape *in)
{
    if (!shape_want_chw(g, n, in))
        return false;
    int64_t out[2];
    for (int a = 0; a < 2; a++) {
        out[a] = pool_out(in->dim[1 + a], n->kernel[a], n->stride[a], n->pad[a], n->ceil_mode);
        if (out[a] <= 0) {
            char *win = n->kernel[0] == n->kernel[1] ? xprintf("%lld", (long long)n->kernel[0])
                      : xprintf("%lldx%lld", (long long)n->kernel[0], (long long)n->kernel[1]);
            diag_error(n->span, "%s's window %s is larger than its %lldx%lld input%s", n->label, win,
                       (long long)in->dim[1], (long long)in->dim[2],
                       n->pad[0] || n->pad[1] ? xprintf(", %lldx%lld when padded", (long long)(in->dim[1] + 2 * n->pad[0]),
                                                        (long long)(in->dim[2] + 2 * n->pad[1])) : "");
            shape_note_chain(g, n->in[0]);
            diag_help("pool less before it, or pad the convolutions before it to keep their size");
            return false;
        }
    }
    for (int a = 0; a < 2 && !n->ceil_mode; a++)
        shape_warn_dropped(n, a, in->dim[1 + a], n->kernel[a], n->stride[a], n->pad[a], out[a],
                           "pad the input, or pass ceil_mode=true to keep them");
    n->shape = (Shape){3, {in->dim[0], out[0], out[1]}};
    return true;
}

static bool adaptive_infer(Graph *g, Node *n, const Shape *in)
{
    if (!shape_want_chw(g, n, in))
        return false;
    n->shape = (Shape){3, {in->dim[0], n->size[0], n->size[1]}};
    return true;
}

static void pool2d_explain(FILE *out, const Graph *g, const Node *n)
{
    const Shape *in = &g->nodes[n->in[0]].shape;
    for (int a = 0; a < 2; a++)
        fprintf(out, "    %s: %s\n", a ? "width " : "height",
                explain_window(in->dim[1 + a], n->kernel[a], n->stride[a], n->pad[a], 1, n->ceil_mode,
                               n->shape.dim[1 + a]));
}

static void adaptive_explain(FILE *out, const Graph *g, const Node *n)
{
    const Shape *in = &g->nodes[n->in[0]].shape;
    fprintf(out, "    output size %lld x %lld as asked; each cell averages a window of about %lld x %lld\n",
            (long long)n->size[0], (long long)n->size[1], (long long)((in->dim[1] + n->size[0] - 1) / n->size[0]),
            (long long)((in->dim[2] + n->size[1] - 1) / n->size[1]));
}

/* ---- the C it writes (emit.h) ---- */

/* max pooling's flags are its backward's (plan.c's fusions) and its
 * forward's choices (the ReLU's) */
static void emit_pool_dims(Emit *e, const Node *n)
{
    const Shape *in = &e->g->nodes[n->in[0]].shape;
    out(e, ".C = %lld, .H = %lld, .W = %lld, .P = %lld, .Q = %lld, .kh = %lld, .kw = %lld, .stride_h = %lld, "
           ".stride_w = %lld, .pad_h = %lld, .pad_w = %lld, .count_include_pad = %d%s%s",
        (long long)in->dim[0], (long long)in->dim[1], (long long)in->dim[2], (long long)n->shape.dim[1],
        (long long)n->shape.dim[2], (long long)n->kernel[0], (long long)n->kernel[1], (long long)n->stride[0],
        (long long)n->stride[1], (long long)n->pad[0], (long long)n->pad[1], n->count_include_pad,
        n->relu ? ", .relu = 1" : "", n->assign ? ", .assign = 1" : "");
}

static void emit_maxpool2d_forward(Emit *e, const Node *n)
{
    int in = n->in[0];
    if (n->argmax)
        out(e, "    nnrt_maxpool2d_forward_argmax(%s, %s, %s, %s);\n", V(e, n->id), pool_codes(e, n), V(e, in),
            DIMS(e, n));
    else
        out(e, "    nnrt_maxpool2d_forward(%s, %s, %s);\n", V(e, n->id), V(e, in), DIMS(e, n));
}

static void emit_maxpool2d_backward(Emit *e, const Node *n)
{
    int in = n->in[0];
    if (n->into_conv) {
        const char *s = e->vname[storage(e->g, in)];
        out(e, "    /* done by the backward of %s, sample by sample: d %s needs no buffer */\n", s, s);
        return;
    }
    if (n->argmax)
        out(e, "    nnrt_maxpool2d_backward_argmax(%s, %s, %s, %s);\n", D(e, in), D(e, n->id), pool_codes(e, n),
            DIMS(e, n));
    else
        out(e, "    nnrt_maxpool2d_backward(%s, %s, %s, %s);\n", D(e, in), D(e, n->id), V(e, in), DIMS(e, n));
}

static void emit_avgpool2d_forward(Emit *e, const Node *n)
{
    out(e, "    nnrt_avgpool2d_forward(%s, %s, %s);\n", V(e, n->id), V(e, n->in[0]), DIMS(e, n));
}

static void emit_avgpool2d_backward(Emit *e, const Node *n)
{
    out(e, "    nnrt_avgpool2d_backward(%s, %s, %s);\n", D(e, n->in[0]), D(e, n->id), DIMS(e, n));
}

static void emit_adaptive_avgpool2d_forward(Emit *e, const Node *n)
{
    const Shape *is = &e->g->nodes[n->in[0]].shape;
    out(e, "    nnrt_adaptive_avgpool2d_forward(%s, %s, n, %lld, %lld, %lld, %lld, %lld);\n", V(e, n->id),
        V(e, n->in[0]), (long long)is->dim[0], (long long)is->dim[1], (long long)is->dim[2],
        (long long)n->shape.dim[1], (long long)n->shape.dim[2]);
}

static void emit_adaptive_avgpool2d_backward(Emit *e, const Node *n)
{
    const Shape *is = &e->g->nodes[n->in[0]].shape;
    out(e, "    nnrt_adaptive_avgpool2d_backward(%s, %s, n, %lld, %lld, %lld, %lld, %lld);\n", D(e, n->in[0]),
        D(e, n->id), (long long)is->dim[0], (long long)is->dim[1], (long long)is->dim[2],
        (long long)n->shape.dim[1], (long long)n->shape.dim[2]);
}

const OpDef op_maxpool2d = {
    .name = "maxpool2d", .kind = OP_MAXPOOL2D, .ninputs = 1,
    .args = {"kernel", "stride", "padding", "ceil_mode"},
    .bind = pool2d_bind, .infer = pool2d_infer, .reads = READS_INPUT, .explain = pool2d_explain,
    .emit_forward = emit_maxpool2d_forward, .emit_backward = emit_maxpool2d_backward,
    .dims = "pool2d", .emit_dims = emit_pool_dims,
};
const OpDef op_avgpool2d = {
    .name = "avgpool2d", .kind = OP_AVGPOOL2D, .ninputs = 1,
    .args = {"kernel", "stride", "padding", "ceil_mode", "count_include_pad"},
    .bind = pool2d_bind, .infer = pool2d_infer, .reads = READS_NOTHING, .explain = pool2d_explain,
    .emit_forward = emit_avgpool2d_forward, .emit_backward = emit_avgpool2d_backward,
    .dims = "pool2d", .emit_dims = emit_pool_dims,
};
const OpDef op_adaptive_avgpool2d = {
    .name = "adaptive_avgpool2d", .alias = "global_avgpool2d", .kind = OP_ADAPTIVE_AVGPOOL2D, .ninputs = 1,
    .args = {"size"},
    .bind = adaptive_bind, .infer = adaptive_infer, .reads = READS_NOTHING, .explain = adaptive_explain,
    .emit_forward = emit_adaptive_avgpool2d_forward,
    .emit_backward = emit_adaptive_avgpool2d_backward,
};
