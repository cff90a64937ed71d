/* ops/conv.c — conv2d, nn.Conv2d: a layer with a weight [out, in/groups, R, S]
 * and a bias [out].
 *
 * Arguments: conv2d(out, kernel=k, stride=1, padding=0, dilation=1,
 * groups=1, bias=true), or PyTorch's order conv2d(in, out, kernel) when
 * three positional arguments are given; `in` is inferred when left out.
 * padding="same" is resolved here for stride 1 and an odd dilated kernel.
 * Its backward reads its input and weight; the kernels' workspace is sized
 * by the runtime's own formulas (plan_workspace). The fusions with a ReLU
 * and a max-pool after it are plan.c's.
 */
#include "nnc.h"
#include "emit.h"
#include "nnrt_sizing.h" /* conv_path_name: the kernel the shapes choose */

static bool conv2d_bind(Layer *l, const Ast *call, Ast *const *v)
{
    l->stride[0] = l->stride[1] = l->dil[0] = l->dil[1] = l->groups = 1;
    l->bias = true;
    bool ok = arg_in_out(l, call, v[0], v[1], "conv2d(6, kernel=5)");
    if (!v[2])
        arg_missing(call, "kernel", "conv2d(6, kernel=5)"), ok = false;
    else
        ok &= arg_pair(v[2], "kernel", 1, l->kernel);
    if (v[3]) ok &= arg_pair(v[3], "stride", 1, l->stride);
    if (v[4] && v[4]->kind == A_STRING) {
        static const char *const modes[] = {"valid", "same"};
        int mode = arg_choice(v[4], "padding", modes, 2);
        ok &= mode >= 0;
        l->pad[0] = l->pad[1] = mode == 1 ? -1 : 0;    /* -1: "same", resolved below */
    } else if (v[4]) {
        ok &= arg_pair(v[4], "padding", 0, l->pad);
    }
    if (v[5]) ok &= arg_pair(v[5], "dilation", 1, l->dil);
    if (v[6]) ok &= arg_size(v[6], "groups", 1, &l->groups);
    if (v[7]) ok &= arg_bool(v[7], "bias", &l->bias);
    for (int a = 0; ok && a < 2; a++) {
        if (l->pad[a] != -1)
            continue;
        int64_t span = l->dil[a] * (l->kernel[a] - 1);
        if (l->stride[a] != 1) {
            diag_error(v[4]->span, "padding=\"same\" needs stride 1, and this convolution has stride %lld",
                       (long long)l->stride[a]);
            diag_note(NO_SPAN, "PyTorch refuses it too: nn.Conv2d says \"padding='same' is not supported for "
                      "strided convolutions\"");
            diag_help("write the padding as a number, e.g. padding=%lld", (long long)(span / 2));
            ok = false;
        } else if (span % 2) {
            diag_error(v[4]->span, "padding=\"same\" needs an odd (dilated) kernel here, and it is %lld",
                       (long long)(span + 1));
            diag_note(NO_SPAN, "PyTorch pads unevenly in that case, one more on the right, which nnc does not "
                      "support yet");
            diag_help("write the padding as a number, e.g. padding=%lld", (long long)(span / 2));
            ok = false;
        }
        l->pad[a] = span / 2;
    }
    if (ok && l->out % l->groups) {
        diag_error(v[6]->span, "groups (%lld) must divide the output channels (%lld)",
                   (long long)l->groups, (long long)l->out);
        ok = false;
    }
    return ok;
}

/* "5" or "5x3" */
static char *hw_str(const int64_t v[2])
{
    return v[0] == v[1] ? xprintf("%lld", (long long)v[0]) : xprintf("%lldx%lld", (long long)v[0], (long long)v[1]);
}

/* The error for a kernel larger than its (padded) input, in plain words,
 * with the usual fixes: padding, and pooling less before it */
static void conv2d_too_large(const Graph *g, const Node *n, const Shape *in)
{
    const Layer *l = n->layer;
    int64_t ext[2], padded[2];
    for (int a = 0; a < 2; a++) {
        ext[a] = l->dil[a] * (l->kernel[a] - 1) + 1;
        padded[a] = in->dim[1 + a] + 2 * l->pad[a];
    }
    char *kernel = hw_str(l->kernel);
    if (ext[0] != l->kernel[0] || ext[1] != l->kernel[1])
        kernel = xprintf("%s (dilated to %s)", kernel, hw_str(ext));
    char *padding = l->pad[0] || l->pad[1] ? xprintf(", %lldx%lld when padded", (long long)padded[0],
                                                     (long long)padded[1]) : "";
    diag_error(n->span, "kernel %s is larger than the %lldx%lld input of %s%s", kernel, (long long)in->dim[1],
               (long long)in->dim[2], l->name, padding);
    shape_note_chain(g, n->in[0]);
    int pools = 0;
    for (int id = n->in[0]; id >= 0; id = g->nodes[id].nin ? g->nodes[id].in[0] : -1)
        pools += g->nodes[id].op == OP_MAXPOOL2D || g->nodes[id].op == OP_AVGPOOL2D;
    int64_t same = (ext[0] > ext[1] ? ext[0] : ext[1]) / 2;
    if (pools)
        diag_help("pad its input (`padding=%lld` keeps the size), use a smaller kernel, or pool less before %s (%d "
                  "pooling%s on the way)", (long long)same, l->name, pools, pools == 1 ? "" : "s");
    else
        diag_help("pad its input (`padding=%lld` keeps the size), or use a smaller kernel", (long long)same);
}

/* [C, H, W] -> [out, P, Q]; learns or checks `in` */
static bool conv2d_infer(Graph *g, Node *n, const Shape *in)
{
    Layer *l = n->layer;
    if (!shape_want_chw(g, n, in))
        return false;
    if (l->in < 0) {
        l->in = in->dim[0];
    } else if (l->in != in->dim[0]) {
        Span at = l->in_span.first_line ? l->in_span : l->span;
        diag_error(at, "%s expects %lld input channels, but its input has %lld",
                   l->name, (long long)l->in, (long long)in->dim[0]);
        diag_note(n->span, "%s is applied here to a value of shape %s", l->name, shape_str(in));
        shape_note_chain(g, n->in[0]);
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
    for (int a = 0; a < 2; a++)
        out[a] = shape_window_out(in->dim[1 + a], l->kernel[a], l->stride[a], l->pad[a], l->dil[a]);
    if (out[0] <= 0 || out[1] <= 0) {
        conv2d_too_large(g, n, in);
        return false;
    }
    for (int a = 0; a < 2; a++)
        shape_warn_dropped(n, a, in->dim[1 + a], l->dil[a] * (l->kernel[a] - 1) + 1, l->stride[a], l->pad[a], out[a],
                           "pad the input or change the stride to use them");
    n->shape = (Shape){3, {l->out, out[0], out[1]}};
    return true;
}

static bool conv2d_params(Graph *g, Layer *l)
{
    (void)g;
    return param_weight_bias(l, (Shape){4, {l->out, l->in / l->groups, l->kernel[0], l->kernel[1]}});
}

static void conv2d_workspace(const Graph *g, const Node *n, int N, nnrt_workspace *w)
{
    nnrt_conv2d_dims d = plan_conv_dims(g, n, N);
    int dx, dw, db;
    plan_conv_grads(g, n, &dx, &dw, &db);
    nnrt_workspace_conv2d(w, &d, dx, dw, db);
}

static void emit_conv2d_workspace(Emit *e, const Node *n)
{
    int dx, dw, db;
    plan_conv_grads(e->g, n, &dx, &dw, &db);
    out(e, "    nnrt_workspace_conv2d(w, %s, %d, %d, %d);\n", DIMS(e, n), dx, dw, db);
}

static void conv2d_explain(FILE *out, const Graph *g, const Node *n)
{
    const Shape *in = &g->nodes[n->in[0]].shape;
    const Layer *l = n->layer;
    fprintf(out, "    channels: %lld out, %lld in (%s)%s\n", (long long)l->out, (long long)l->in,
            l->in_span.first_line ? "as written, checked" : "inferred from the input",
            l->groups > 1 ? xprintf(", %lld groups", (long long)l->groups) : "");
    for (int a = 0; a < 2; a++)
        fprintf(out, "    %s: %s\n", a ? "width " : "height",
                explain_window(in->dim[1 + a], l->kernel[a], l->stride[a], l->pad[a], l->dil[a], false,
                               n->shape.dim[1 + a]));
    fprintf(out, "    weight [%lld, %lld, %lld, %lld]%s\n", (long long)l->out, (long long)(l->in / l->groups),
            (long long)l->kernel[0], (long long)l->kernel[1],
            l->bias ? xprintf(", bias [%lld]", (long long)l->out) : "");
}

/* ---- the C it writes (emit.h) ---- */

/* The dims constants' fields (at batch 0), with the plan's fusions: which
 * the forward reads (a fused ReLU) and which the backward (pooled, ...);
 * each kernel ignores the other's. */
static void emit_conv_dims(Emit *e, const Node *n)
{
    nnrt_conv2d_dims d = plan_conv_dims(e->g, n, 0);
    out(e, ".C = %d, .H = %d, .W = %d, .K = %d, .R = %d, .S = %d, .P = %d, .Q = %d, .stride_h = %d, "
           ".stride_w = %d, .pad_h = %d, .pad_w = %d, .dil_h = %d, .dil_w = %d, .groups = %d%s%s%s%s",
        d.C, d.H, d.W, d.K, d.R, d.S, d.P, d.Q, d.stride_h, d.stride_w, d.pad_h, d.pad_w, d.dil_h, d.dil_w,
        d.groups, d.relu ? ", .relu = 1" : "", d.pooled ? ", .pooled = 1" : "",
        d.assign_dx ? ", .assign_dx = 1" : "", d.defer_dw ? ", .defer_dw = 1" : "");
}

static void emit_conv2d_forward(Emit *e, const Node *n)
{
    nnrt_conv2d_dims d = plan_conv_dims(e->g, n, 1);
    out(e, "    /* kernel: %s */\n", conv_path_name(&d));
    out(e, "    nnrt_conv2d_forward(%s, %s, %s, %s, %s);\n", V(e, n->id), V(e, n->in[0]),
        param_ptr(e, "param", weight(n)), param_ptr(e, "param", bias(n)), DIMS(e, n));
}

static void emit_conv2d_backward(Emit *e, const Node *n)
{
    int in = n->in[0];
    first_grads(e, n, true);
    if (n->pool >= 0) {     /* d conv: the max-pool's backward, made inside */
        const Node *p = &e->g->nodes[n->pool];
        out(e, "    nnrt_conv2d_backward_pooled(%s, %s, %s, %s, %s, %s, %s, %s, %s);\n", D(e, in),
            param_ptr(e, "grad", weight(n)), param_ptr(e, "grad", bias(n)), D(e, p->id), pool_codes(e, p),
            DIMS(e, p), V(e, in), param_ptr(e, "param", weight(n)), DIMS(e, n));
    } else {
        out(e, "    nnrt_conv2d_backward(%s, %s, %s, %s, %s, %s, %s);\n", D(e, in), param_ptr(e, "grad", weight(n)),
            param_ptr(e, "grad", bias(n)), D(e, n->id), V(e, in), param_ptr(e, "param", weight(n)), DIMS(e, n));
    }
}

const OpDef op_conv2d = {
    .name = "conv2d",
    .kind = OP_CONV2D,
    .layer = true,
    .args = {"in", "out", "kernel", "stride", "padding", "dilation", "groups", "bias"},
    .order = {1, 2}, .norder = 2,
    .torch_order = {0, 1, 2}, .ntorch = 3,
    .bind_layer = conv2d_bind,
    .infer = conv2d_infer,
    .params = conv2d_params,
    .reads = READS_INPUT,
    .workspace = conv2d_workspace, .emit_workspace = emit_conv2d_workspace,
    .explain = conv2d_explain,
    .emit_forward = emit_conv2d_forward, .emit_backward = emit_conv2d_backward,
    .backward_always = true, .dims = "conv2d", .emit_dims = emit_conv_dims,
};
