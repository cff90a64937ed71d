/* emit.c — writes the checked graph as one standalone, readable C file.
 *
 * The file holds everything specific to the model: its sizes as constants,
 * a table of its parameters under PyTorch's state_dict names, its state as
 * four blocks allocated once (parameters, gradients, activations, activation
 * gradients), the functions forward / loss / backward / zero_grad / step /
 * save / load, and a main() — the trainer — that -DNNC_NO_MAIN leaves out so
 * the model can be embedded. The arithmetic is in the runtime's kernels
 * (runtime/nnrt.h); main() and save / load use its host side
 * (runtime/host/nnrt_host.h), which an embedded model leaves out.
 *
 * Each function body is first written to a buffer while the values it uses
 * are recorded, so that only those get a local pointer: the output has no
 * unused variables and every pointer is named after the model's value.
 */
#include "nnc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ==== the helpers the operations' emitters use ====
 *
 * Everything the per-operation functions below may call: the Emit state
 * and the small writers of names, literals and dims. Kept together so that
 * it can become compiler/emit.h when the operations move to their own files. */

typedef struct Emit {
    const Graph *g;
    FILE *out;              /* the file, or the current function's buffer */
    const char *M;          /* model name, as a C prefix */
    const char *U;          /* its upper-case form, for macros */
    char **vname;           /* per node: "v_conv1" */
    bool *use_v, *use_d;    /* per node: the function refers to v_ / d_ */
    int *zero_start, *zero_at;  /* the nodes whose gradient backward step t zeroes
                                 * (Node.zero_before): zero_at[zero_start[t] .. zero_start[t + 1]) */
    bool *grad_written;     /* per layer, while backward is emitted: an earlier call wrote its
                             * parameters' gradients (a layer applied twice) */
    bool fused;             /* emitting backward_step: plain SGD made inside the linear backward */
    bool *stepped;          /* per layer, then: its update is made (the fused linear kernel) */
} Emit;

static void out(Emit *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(Emit *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->out, fmt, ap);
    va_end(ap);
}

/* the value of node id, as a C expression; records the use */
static const char *V(Emit *e, int id)
{
    e->use_v[id] = true;
    return xprintf("v_%s", e->vname[id]);
}

/* the gradient of node id, or NULL when backward does not need it */
static const char *D(Emit *e, int id)
{
    if (!e->g->nodes[id].needs_grad)
        return "NULL";
    e->use_d[id] = true;
    return xprintf("d_%s", e->vname[id]);
}

/* a float literal: 0.01f, 1.0f, 1e-08f */
static char *F(double v)
{
    char *t = xprintf("%.9g", v);
    return strpbrk(t, ".en") ? xprintf("%sf", t) : xprintf("%s.0f", t);
}

/* "[n, 6, 28, 28]": a shape with the batch */
static char *nshape(const Shape *s)
{
    return xprintf("[n, %s", shape_str(s) + 1);
}
/* the layer's parameter called what ("weight", "running_mean"), or NULL */
static const Param *lparam(const Node *n, const char *what)
{
    size_t k = strlen(n->layer->name);
    for (int i = 0; i < n->layer->nparams; i++)
        if (strcmp(n->layer->params[i].name + k + 1, what) == 0)
            return &n->layer->params[i];
    return NULL;
}
static const Param *weight(const Node *n) { return lparam(n, "weight"); }
static const Param *bias(const Node *n) { return lparam(n, "bias"); }

/* the node whose memory holds n's value (itself unless n is a view) */
static int storage(const Graph *g, int id)
{
    while (g->nodes[id].alias >= 0)
        id = g->nodes[id].alias;
    return id;
}

/* forward: with the fused ReLU; backward: pooled or not (plan.c's fusions) */
static void conv_dims(Emit *e, const Node *n, bool backward)
{
    nnrt_conv2d_dims d = plan_conv_dims(e->g, n, 0);
    out(e, "&(nnrt_conv2d_dims){.N = n, .C = %d, .H = %d, .W = %d, .K = %d, .R = %d, .S = %d,\n"
           "            .P = %d, .Q = %d, .stride_h = %d, .stride_w = %d, .pad_h = %d, .pad_w = %d,\n"
           "            .dil_h = %d, .dil_w = %d, .groups = %d%s%s%s%s}",
        d.C, d.H, d.W, d.K, d.R, d.S, d.P, d.Q, d.stride_h, d.stride_w, d.pad_h, d.pad_w, d.dil_h, d.dil_w,
        d.groups, !backward && d.relu ? ", .relu = 1" : "", backward && d.pooled ? ", .pooled = 1" : "",
        backward && d.assign_dx ? ", .assign_dx = 1" : "", backward && d.defer_dw ? ", .defer_dw = 1" : "");
}

/* what a call to a pooling kernel is told: backward, with max pooling's
 * flags (plan.c's fusions); a forward keeping its choices, the ReLU's */
enum { POOL_FWD, POOL_FWD_ARGMAX, POOL_BWD };
static void pool_dims(Emit *e, const Node *n, int call)
{
    const Shape *in = &e->g->nodes[n->in[0]].shape;
    out(e, "&(nnrt_pool2d_dims){.N = n, .C = %lld, .H = %lld, .W = %lld, .P = %lld, .Q = %lld,\n"
           "            .kh = %lld, .kw = %lld, .stride_h = %lld, .stride_w = %lld, .pad_h = %lld, .pad_w = %lld,\n"
           "            .count_include_pad = %d%s%s}",
        (long long)in->dim[0], (long long)in->dim[1], (long long)in->dim[2], (long long)n->shape.dim[1],
        (long long)n->shape.dim[2], (long long)n->kernel[0], (long long)n->kernel[1], (long long)n->stride[0],
        (long long)n->stride[1], (long long)n->pad[0], (long long)n->pad[1], n->count_include_pad,
        call != POOL_FWD && n->relu ? ", .relu = 1" : "", call == POOL_BWD && n->assign ? ", .assign = 1" : "");
}

/* a max-pool's choices (plan.c: argmax), bytes in the arena */
static const char *pool_codes(Emit *e, const Node *n)
{
    (void)e;
    return xprintf("(unsigned char *)(m->act + B * %zu)", n->aux);
}

static void bn_dims(Emit *e, const Node *n)
{
    const Shape *s = &n->shape;
    long long hw = s->ndim == 3 ? (long long)(s->dim[1] * s->dim[2]) : s->ndim == 2 ? (long long)s->dim[1] : 1;
    out(e, "&(nnrt_bn_dims){.N = n, .C = %lld, .HW = %lld, .eps = %s, .momentum = %s}",
        (long long)s->dim[0], hw, F(n->layer->eps), F(n->layer->momentum));
}

/* a parameter in the parameter block (or buffer), its gradient, or NULL */
static const char *param_ptr(const char *block, const Param *p)
{
    if (!p)
        return "NULL";
    return xprintf("m->%s + %zu", p->buffer ? "buf" : block, p->offset);
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

/* a comment line: conv1: conv2d [n, 1, 32, 32] -> [n, 6, 28, 28]  (line 13) */
static void node_comment(Emit *e, const Node *n, const char *what)
{
    const Shape *in = &e->g->nodes[n->in[0]].shape;
    out(e, "    /* %s%s: %s %s -> %s  (line %d) */\n", what, e->vname[n->id], op_name(n->op), nshape(in),
        nshape(&n->shape), n->span.first_line);
}

/* floats per sample in n's value */
static size_t node_numel(const Node *n)
{
    return (size_t)shape_numel(&n->shape);
}

/* how many nodes apply layer l */
static int layer_uses(const Graph *g, const Layer *l)
{
    int k = 0;
    for (int i = 0; i < g->nnodes; i++)
        k += g->nodes[i].layer == l;
    return k;
}

/* Whether node n's backward is the first to write its layer's gradients
 * (backward runs in reverse, so a layer applied twice is written last by
 * its first application). zero_grad only marks the gradients as zero
 * (m->grad_zero); the first write then assigns them: the kernel does
 * (linear), or, with zeroes, the gradients are cleared just before (zero:
 * the small ones of convolutions and batch norms). */
static bool first_grads(Emit *e, const Node *n, bool zero)
{
    size_t l = (size_t)(n->layer - e->g->layers);
    if (e->grad_written[l])
        return false;
    e->grad_written[l] = true;
    for (int k = 0; zero && k < n->layer->nparams; k++) {
        const Param *p = &n->layer->params[k];
        if (!p->buffer)
            out(e, "    if (m->grad_zero)\n        memset(m->grad + %zu, 0, sizeof(float) * %zu);  /* %s */\n",
                p->offset, p->numel, p->name);
    }
    return true;
}

/* ==== operations: the forward and backward of each, side by side ====
 *
 * One pair of functions per operation, dispatched by `emitters` below
 * (indexed by OpKind). Each writes the node's comment-less kernel call(s);
 * the callers write the comment line and skip nodes that need nothing. They
 * use only the helper section above, so a family's pair can move to a file
 * of its own (compiler/ops/<family>.c) unchanged. */

/* input: the caller's pointer; no code */
static void input_forward(Emit *e, const Node *n) { (void)e, (void)n; }
static void input_backward(Emit *e, const Node *n) { (void)e, (void)n; }

static void conv2d_forward(Emit *e, const Node *n)
{
    out(e, "    nnrt_conv2d_forward(%s, %s, %s, %s,\n        ", V(e, n->id), V(e, n->in[0]),
        param_ptr("param", weight(n)), param_ptr("param", bias(n)));
    conv_dims(e, n, false);
    out(e, ");\n");
}

static void conv2d_backward(Emit *e, const Node *n)
{
    int in = n->in[0];
    first_grads(e, n, true);
    if (n->pool >= 0) {     /* d conv: the max-pool's backward, made inside */
        const Node *p = &e->g->nodes[n->pool];
        out(e, "    nnrt_conv2d_backward_pooled(%s, %s, %s, %s, %s,\n        ", D(e, in),
            param_ptr("grad", weight(n)), param_ptr("grad", bias(n)), D(e, p->id), pool_codes(e, p));
        pool_dims(e, p, POOL_BWD);
        out(e, ",\n        %s, %s,\n        ", V(e, in), param_ptr("param", weight(n)));
    } else {
        out(e, "    nnrt_conv2d_backward(%s, %s, %s, %s, %s, %s,\n        ", D(e, in),
            param_ptr("grad", weight(n)), param_ptr("grad", bias(n)), D(e, n->id), V(e, in),
            param_ptr("param", weight(n)));
    }
    conv_dims(e, n, true);
    out(e, ");\n");
}

static void linear_forward(Emit *e, const Node *n)
{
    out(e, "    nnrt_linear_forward(%s, %s, %s, %s, n, %lld, %lld);\n", V(e, n->id), V(e, n->in[0]),
        param_ptr("param", weight(n)), param_ptr("param", bias(n)), (long long)n->layer->in,
        (long long)n->layer->out);
}

static void linear_backward(Emit *e, const Node *n)
{
    const Graph *g = e->g;
    int in = n->in[0];
    if (e->fused && layer_uses(g, n->layer) == 1) {   /* the layer's only backward: update here */
        first_grads(e, n, false);
        e->stepped[n->layer - g->layers] = true;
        out(e, "    nnrt_linear_backward_sgd(%s, %s, %s, %s, %s, %s, %s, n, %lld, %lld, lr);\n", D(e, in),
            param_ptr("grad", weight(n)), param_ptr("grad", bias(n)), D(e, n->id), V(e, in),
            param_ptr("param", weight(n)), param_ptr("param", bias(n)), (long long)n->layer->in,
            (long long)n->layer->out);
        return;
    }
    /* the first write of the gradients assigns them when zero_grad marked them zero */
    const char *args = xprintf("%s, %s, %s, %s, %s, %s, n, %lld, %lld", D(e, in), param_ptr("grad", weight(n)),
        param_ptr("grad", bias(n)), D(e, n->id), V(e, in), param_ptr("param", weight(n)),
        (long long)n->layer->in, (long long)n->layer->out);
    if (first_grads(e, n, false))
        out(e, "    if (m->grad_zero)\n        nnrt_linear_backward_first(%s);\n"
               "    else\n        nnrt_linear_backward(%s);\n", args, args);
    else
        out(e, "    nnrt_linear_backward(%s);\n", args);
}

/* batchnorm1d and batchnorm2d */
static void batchnorm_forward(Emit *e, const Node *n)
{
    int in = n->in[0];
    out(e, "    if (m->training)\n        nnrt_batchnorm_forward_train(%s, m->scratch + %zu, m->scratch + %zu, %s, %s, %s, %s, %s,\n            ",
        V(e, n->id), n->scratch, n->scratch + (size_t)n->shape.dim[0], param_ptr("buf", lparam(n, "running_mean")),
        param_ptr("buf", lparam(n, "running_var")), V(e, in), param_ptr("param", weight(n)),
        param_ptr("param", bias(n)));
    bn_dims(e, n);
    out(e, ");\n    else\n        nnrt_batchnorm_forward_eval(%s, %s, %s, %s, %s, %s,\n            ", V(e, n->id),
        V(e, in), param_ptr("param", weight(n)), param_ptr("param", bias(n)),
        param_ptr("buf", lparam(n, "running_mean")), param_ptr("buf", lparam(n, "running_var")));
    bn_dims(e, n);
    out(e, ");\n");
}

static void batchnorm_backward(Emit *e, const Node *n)
{
    int in = n->in[0];
    first_grads(e, n, true);
    out(e, "    nnrt_batchnorm_backward(%s, %s, %s, %s, %s, m->scratch + %zu, m->scratch + %zu, %s,\n        ",
        D(e, in), param_ptr("grad", weight(n)), param_ptr("grad", bias(n)), D(e, n->id), V(e, in), n->scratch,
        n->scratch + (size_t)n->shape.dim[0], param_ptr("param", weight(n)));
    bn_dims(e, n);
    out(e, ");\n");
}

static void maxpool2d_forward(Emit *e, const Node *n)
{
    int in = n->in[0];
    if (n->argmax) {
        out(e, "    nnrt_maxpool2d_forward_argmax(%s, %s, %s,\n        ", V(e, n->id), pool_codes(e, n), V(e, in));
        pool_dims(e, n, POOL_FWD_ARGMAX);
    } else {
        out(e, "    nnrt_maxpool2d_forward(%s, %s,\n        ", V(e, n->id), V(e, in));
        pool_dims(e, n, POOL_FWD);
    }
    out(e, ");\n");
}

static void maxpool2d_backward(Emit *e, const Node *n)
{
    int in = n->in[0];
    if (n->into_conv) {
        const char *s = e->vname[storage(e->g, in)];
        out(e, "    /* done by the backward of %s, sample by sample: d %s needs no buffer */\n", s, s);
        return;
    }
    if (n->argmax)
        out(e, "    nnrt_maxpool2d_backward_argmax(%s, %s, %s,\n        ", D(e, in), D(e, n->id),
            pool_codes(e, n));
    else
        out(e, "    nnrt_maxpool2d_backward(%s, %s, %s,\n        ", D(e, in), D(e, n->id), V(e, in));
    pool_dims(e, n, POOL_BWD);
    out(e, ");\n");
}

static void avgpool2d_forward(Emit *e, const Node *n)
{
    out(e, "    nnrt_avgpool2d_forward(%s, %s,\n        ", V(e, n->id), V(e, n->in[0]));
    pool_dims(e, n, POOL_FWD);
    out(e, ");\n");
}

static void avgpool2d_backward(Emit *e, const Node *n)
{
    out(e, "    nnrt_avgpool2d_backward(%s, %s,\n        ", D(e, n->in[0]), D(e, n->id));
    pool_dims(e, n, POOL_FWD);
    out(e, ");\n");
}

static void adaptive_avgpool2d_forward(Emit *e, const Node *n)
{
    const Shape *is = &e->g->nodes[n->in[0]].shape;
    out(e, "    nnrt_adaptive_avgpool2d_forward(%s, %s, n, %lld, %lld, %lld, %lld, %lld);\n", V(e, n->id),
        V(e, n->in[0]), (long long)is->dim[0], (long long)is->dim[1], (long long)is->dim[2],
        (long long)n->shape.dim[1], (long long)n->shape.dim[2]);
}

static void adaptive_avgpool2d_backward(Emit *e, const Node *n)
{
    const Shape *is = &e->g->nodes[n->in[0]].shape;
    out(e, "    nnrt_adaptive_avgpool2d_backward(%s, %s, n, %lld, %lld, %lld, %lld, %lld);\n", D(e, n->in[0]),
        D(e, n->id), (long long)is->dim[0], (long long)is->dim[1], (long long)is->dim[2],
        (long long)n->shape.dim[1], (long long)n->shape.dim[2]);
}

/* relu, sigmoid, tanh and gelu forward: out = f(in), elementwise */
static void unary_forward(Emit *e, const Node *n)
{
    out(e, "    nnrt_%s_forward(%s, %s, (size_t)n * %zu);\n", op_name(n->op), V(e, n->id), V(e, n->in[0]),
        node_numel(n));
}

/* sigmoid and tanh backward read their output */
static void unary_backward(Emit *e, const Node *n)
{
    out(e, "    nnrt_%s_backward(%s, %s, %s, (size_t)n * %zu);\n", op_name(n->op), D(e, n->in[0]), D(e, n->id),
        V(e, n->id), node_numel(n));
}

static void relu_forward(Emit *e, const Node *n)
{
    if (n->alias >= 0)
        out(e, "    /* fused: %s applied it, in place (%s is a view of it) */\n", e->vname[n->in[0]],
            e->vname[n->id]);
    else
        unary_forward(e, n);
}

static void relu_backward(Emit *e, const Node *n)
{
    if (n->folded)
        out(e, "    /* folded into the backward of the max-pool after it */\n");
    else if (n->alias >= 0)     /* in place: its gradient is its input's */
        out(e, "    nnrt_relu_backward_inplace(%s, %s, (size_t)n * %zu);\n", D(e, n->id), V(e, n->id),
            node_numel(n));
    else
        unary_backward(e, n);
}

/* gelu's and silu's backward read their input */
static void unary_backward_from_input(Emit *e, const Node *n)
{
    out(e, "    nnrt_%s_backward(%s, %s, %s, (size_t)n * %zu);\n", op_name(n->op), D(e, n->in[0]), D(e, n->id),
        V(e, n->in[0]), node_numel(n));
}

static void leaky_relu_forward(Emit *e, const Node *n)
{
    out(e, "    nnrt_leaky_relu_forward(%s, %s, (size_t)n * %zu, %s);\n", V(e, n->id), V(e, n->in[0]),
        node_numel(n), F(n->alpha));
}

static void leaky_relu_backward(Emit *e, const Node *n)
{
    out(e, "    nnrt_leaky_relu_backward(%s, %s, %s, (size_t)n * %zu, %s);\n", D(e, n->in[0]), D(e, n->id),
        V(e, n->in[0]), node_numel(n), F(n->alpha));
}

/* softmax and log_softmax */
static void softmax_forward(Emit *e, const Node *n)
{
    long long o, c, i;
    softmax_view(n, &o, &c, &i);
    out(e, "    nnrt_%s_forward(%s, %s, n * %lld, %lld, %lld);\n", op_name(n->op), V(e, n->id), V(e, n->in[0]),
        o, c, i);
}

static void softmax_backward(Emit *e, const Node *n)
{
    long long o, c, i;
    softmax_view(n, &o, &c, &i);
    out(e, "    nnrt_%s_backward(%s, %s, %s, n * %lld, %lld, %lld);\n", op_name(n->op), D(e, n->in[0]),
        D(e, n->id), V(e, n->id), o, c, i);
}

static void dropout_forward(Emit *e, const Node *n)
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

static void dropout_backward(Emit *e, const Node *n)
{
    size_t numel = node_numel(n);
    int in = n->in[0];
    out(e, "    if (m->training)\n"
           "        nnrt_dropout_backward(%s, %s, m->act + B * %zu, (size_t)n * %zu);\n"
           "    else\n"
           "        nnrt_accumulate(%s, %s, (size_t)n * %zu);\n",
        D(e, in), D(e, n->id), n->aux, numel, D(e, in), D(e, n->id), numel);
}

static void flatten_forward(Emit *e, const Node *n)
{
    out(e, "    /* a view: %s shares the memory of %s */\n", e->vname[n->id], e->vname[n->in[0]]);
}

static void flatten_backward(Emit *e, const Node *n)
{
    out(e, "    /* a view: d %s is d %s */\n", e->vname[n->id], e->vname[n->in[0]]);
}

static void add_forward(Emit *e, const Node *n)
{
    out(e, "    nnrt_add_forward(%s, %s, %s, (size_t)n * %zu);\n", V(e, n->id), V(e, n->in[0]), V(e, n->in[1]),
        node_numel(n));
}

static void add_backward(Emit *e, const Node *n)
{
    for (int k = 0; k < 2; k++)
        if (e->g->nodes[n->in[k]].needs_grad)
            out(e, "    nnrt_accumulate(%s, %s, (size_t)n * %zu);\n", D(e, n->in[k]), D(e, n->id),
                node_numel(n));
}

/* concat along channels: each input is copied to (forward) or from
 * (backward) its channels [c0, c0 + ck) of the output */
static void concat_forward(Emit *e, const Node *n)
{
    long long inner = (long long)(node_numel(n) / (size_t)n->shape.dim[0]), c0 = 0;
    for (int k = 0; k < n->nin; k++) {
        long long ck = e->g->nodes[n->in[k]].shape.dim[0];
        out(e, "    nnrt_concat_forward(%s, %s, n, %lld, %lld, %lld, %lld);\n", V(e, n->id), V(e, n->in[k]), ck,
            (long long)n->shape.dim[0], c0, inner);
        c0 += ck;
    }
}

static void concat_backward(Emit *e, const Node *n)
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

/* Per OpKind: writes its forward, and its backward (given the gradient of
 * its output, the gradients of its inputs and parameters). backward_always:
 * the backward runs even when no input needs a gradient (a layer's
 * parameters do; add and concat pass gradients to several inputs, some of
 * which may need one). */
static const struct {
    void (*forward)(Emit *e, const Node *n);
    void (*backward)(Emit *e, const Node *n);
    bool backward_always;
} emitters[] = {
    [OP_INPUT] = {input_forward, input_backward, false},
    [OP_CONV2D] = {conv2d_forward, conv2d_backward, true},
    [OP_LINEAR] = {linear_forward, linear_backward, true},
    [OP_BATCHNORM1D] = {batchnorm_forward, batchnorm_backward, true},
    [OP_BATCHNORM2D] = {batchnorm_forward, batchnorm_backward, true},
    [OP_MAXPOOL2D] = {maxpool2d_forward, maxpool2d_backward, false},
    [OP_AVGPOOL2D] = {avgpool2d_forward, avgpool2d_backward, false},
    [OP_ADAPTIVE_AVGPOOL2D] = {adaptive_avgpool2d_forward, adaptive_avgpool2d_backward, false},
    [OP_RELU] = {relu_forward, relu_backward, false},
    [OP_LEAKY_RELU] = {leaky_relu_forward, leaky_relu_backward, false},
    [OP_SIGMOID] = {unary_forward, unary_backward, false},
    [OP_TANH] = {unary_forward, unary_backward, false},
    [OP_GELU] = {unary_forward, unary_backward_from_input, false},
    [OP_SILU] = {unary_forward, unary_backward_from_input, false},
    [OP_SOFTMAX] = {softmax_forward, softmax_backward, false},
    [OP_LOG_SOFTMAX] = {softmax_forward, softmax_backward, false},
    [OP_DROPOUT] = {dropout_forward, dropout_backward, false},
    [OP_FLATTEN] = {flatten_forward, flatten_backward, false},
    [OP_ADD] = {add_forward, add_backward, true},
    [OP_CONCAT] = {concat_forward, concat_backward, true},
};
_Static_assert(sizeof emitters / sizeof *emitters == OP_COUNT, "every operation in ops/list.h has an emitter");

static void emit_forward_node(Emit *e, const Node *n)
{
    if (n->op == OP_INPUT)
        return;
    node_comment(e, n, "");
    assert(emitters[n->op].forward);
    emitters[n->op].forward(e, n);
}

/* backward of one node: the gradients of its inputs (where needed) and of its
 * layer's parameters, from its own gradient */
static void emit_backward_node(Emit *e, const Node *n)
{
    if (n->op == OP_INPUT || !n->needs_grad)
        return;
    if (!e->g->nodes[n->in[0]].needs_grad && !emitters[n->op].backward_always)
        return;
    node_comment(e, n, "d ");
    assert(emitters[n->op].backward);
    emitters[n->op].backward(e, n);
}
/* ---- names ---- */


/* Values are named after their layer or operation; repeated ones get _1, _2,
 * and a name another value already has (a layer called relu_1) gets a `_` more */
static void name_values(Emit *e)
{
    const Graph *g = e->g;
    NameMap count = {0}, seen = {0}, taken = {0};
    for (int i = 0; i < g->nnodes; i++) {
        int c = namemap_get(&count, g->nodes[i].label);
        namemap_put(&count, g->nodes[i].label, c < 0 ? 1 : c + 1);
    }
    e->vname = xalloc(sizeof(char *) * (size_t)g->nnodes);
    for (int i = 0; i < g->nnodes; i++) {
        const char *label = g->nodes[i].label;
        int index = namemap_get(&seen, label);
        index = index < 0 ? 1 : index + 1;
        namemap_put(&seen, label, index);
        char *name = namemap_get(&count, label) == 1 ? xprintf("%s", label) : xprintf("%s_%d", label, index);
        while (namemap_get(&taken, name) >= 0)
            name = xprintf("%s_", name);
        namemap_put(&taken, name, i);
        e->vname[i] = name;
    }
}

static char *upper(const char *s)
{
    char *u = xstrdup(s);
    for (char *p = u; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return u;
}

/* ---- function bodies, written to a buffer ---- */

typedef struct Buf { char *text; size_t len; FILE *f; FILE *saved; } Buf;

static void buf_begin(Emit *e, Buf *b)
{
    memset(e->use_v, 0, sizeof(bool) * (size_t)e->g->nnodes);
    memset(e->use_d, 0, sizeof(bool) * (size_t)e->g->nnodes);
    b->f = open_memstream(&b->text, &b->len);
    if (!b->f) {
        diag_fatal_plain("cannot create a memory buffer");
        exit(1);
    }
    b->saved = e->out;
    e->out = b->f;
}

/* Declares the pointers the body used, then writes the body. */
static void buf_end(Emit *e, Buf *b, const char *input_expr)
{
    fclose(b->f);
    e->out = b->saved;
    const Graph *g = e->g;
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = &g->nodes[i];
        const char *sh = nshape(&n->shape);
        if (e->use_v[i]) {
            if (n->op == OP_INPUT)
                out(e, "    const float *v_%s = %s; /* %s input */\n", e->vname[i], input_expr, sh);
            else if (g->nodes[storage(g, i)].op == OP_INPUT)
                out(e, "    const float *v_%s = %s; /* %s a view of the input */\n", e->vname[i], input_expr, sh);
            else
                out(e, "    float *v_%s = m->act + B * %zu; /* %s */\n", e->vname[i], n->offset, sh);
        }
        if (e->use_d[i])
            out(e, "    float *d_%s = m->act + B * %zu; /* %s gradient */\n", e->vname[i], n->goffset, sh);
    }
    fwrite(b->text, 1, b->len, e->out);
    free(b->text);
}

/* ---- the parts of the file ---- */

static void emit_header(Emit *e, const char *src)
{
    const Graph *g = e->g;
    out(e, "/* %s.c — the model `%s`, compiled by nnc %s from %s.\n", e->M, g->name, NNC_VERSION, src);
    out(e, " *\n"
           " * Generated code: change the model and run nnc again rather than editing this.\n"
           " * Build the trainer (main() and the checkpoints use the host library):\n"
           " *     cc -O2 %s.c -I<nnc>/runtime -I<nnc>/runtime/host <nnc>/build/libnnrt-host.a \\\n"
           " *         <nnc>/build/libnnrt.a -lcjson -lz -lm -lpthread -o %s\n"
           " *     cc -O2 %s.c $(pkg-config --cflags --libs nnrt-host) -o %s   (after make install)\n"
           " * Embed the model in another program: compile with -DNNC_NO_MAIN and use the\n"
           " * %s_* functions below; it then needs only the kernels, nnrt.h and\n"
           " *     <nnc>/build/libnnrt.a -lm -lpthread   or   $(pkg-config --libs nnrt).\n"
           " * %s_save and %s_load (safetensors checkpoints) are left out with it unless\n"
           " * -DNNC_CHECKPOINTS is given too, which needs the host library (nnrt-host).\n"
           " *\n",
        e->M, e->M, e->M, e->M, e->M, e->M, e->M);
    summary_print(e->out, g, " * ");
    out(e, " */\n"
           "#include <math.h>\n"
           "#include <stdio.h>\n"
           "#include <stdlib.h>\n"
           "#include <string.h>\n"
           "\n"
           "#include \"nnrt.h\"\n"
           "#if !defined(NNC_NO_MAIN) || defined(NNC_CHECKPOINTS)\n"
           "#include \"nnrt_host.h\"   /* main() and the checkpoints: libnnrt-host.a */\n"
           "#endif\n\n");
}

static int count_tensors(const Graph *g)
{
    int n = 0;
    for (int i = 0; i < g->nlayers; i++)
        n += g->layers[i].nparams;
    return n;
}

static int count_trainable(const Graph *g)
{
    int n = 0;
    for (int i = 0; i < g->nlayers; i++)
        for (int p = 0; p < g->layers[i].nparams; p++)
            n += !g->layers[i].params[p].buffer;
    return n;
}

/* optimizer state tensors per trainable parameter: momentum buffer, or Adam's two moments */
static int opt_slots(const Graph *g)
{
    return g->opt == OPT_SGD ? (g->momentum > 0) : 2;
}

static int count_state(const Graph *g)
{
    return count_trainable(g) * opt_slots(g) + 1;   /* + the step counter */
}

static void emit_sizes(Emit *e)
{
    const Graph *g = e->g;
    const Node *in = &g->nodes[g->input], *o = &g->nodes[g->output];
    out(e, "/* Sizes per sample; the batch n is chosen at run time. */\n");
    out(e, "#define %s_INPUT_SIZE  %lld /* %s: %s */\n", e->U, (long long)shape_numel(&in->shape), in->label,
        shape_str(&in->shape));
    out(e, "#define %s_OUTPUT_SIZE %lld /* %s */\n", e->U, (long long)shape_numel(&o->shape), shape_str(&o->shape));
    if (g->classes)
        out(e, "#define %s_TARGET_SIZE 1 /* a class index in [0, %d), as a float */\n", e->U, g->classes);
    else
        out(e, "#define %s_TARGET_SIZE %lld /* %s */\n", e->U, (long long)shape_numel(&g->target),
            shape_str(&g->target));
    out(e, "#define %s_NPARAM      %zu /* floats in the parameter block */\n", e->U, g->nparam);
    out(e, "#define %s_NBUF        %zu /* floats in the buffer block (running statistics) */\n", e->U, g->nbuf);
    out(e, "#define %s_NOPT        %zu /* floats of optimizer state */\n", e->U, g->nopt);
    out(e, "#define %s_NSCRATCH    %zu /* floats of scratch kept from forward for backward */\n", e->U, g->nscratch);
    out(e, "#define %s_NACT        %zu /* floats per sample in the activation block */\n", e->U, g->nact);
    out(e, "#define %s_NTENSORS    %d /* tensors in the state_dict */\n", e->U, count_tensors(g));
    out(e, "#define %s_NTRAINABLE  %d /* of which parameters with a gradient */\n", e->U, count_trainable(g));
    out(e, "#define %s_NSTATE      %d /* optimizer state tensors in a checkpoint */\n\n", e->U, count_state(g));
}

static void emit_state(Emit *e)
{
    const Graph *g = e->g;
    const Shape *in = &g->nodes[g->input].shape, *o = &g->nodes[g->output].shape;
    out(e, "/* The model's state: a few blocks, allocated once by %s_init. */\n", e->M);
    out(e, "typedef struct %s {\n", e->M);
    out(e, "    int batch;           /* capacity: samples per step, at most */\n"
           "    int n;               /* samples in the last forward (<= batch) */\n"
           "    int training;        /* 1 (the default): dropout and batch norm train; 0: evaluate */\n"
           "    uint64_t seed;       /* of the initial weights and of dropout's masks */\n"
           "    float *param;        /* %s_NPARAM floats: weights and biases, in state_dict order */\n"
           "    float *grad;         /* %s_NPARAM floats: d loss / d param, same layout */\n"
           "    float *buf;          /* %s_NBUF floats: batch norm's running statistics */\n"
           "    float *opt;          /* %s_NOPT floats: the optimizer's state, laid out as param */\n"
           "    float *scratch;      /* %s_NSCRATCH floats: batch statistics kept for backward */\n"
           "    float *act;          /* batch * %s_NACT floats: the arena of values, gradients and masks */\n"
           "    float *work;         /* the kernels' scratch, planned for the batch and the threads */\n"
           "    const float *input;  /* the last forward's input %s */\n"
           "    const float *target; /* the last loss's target %s */\n"
           "    float *output;       /* the output %s, inside act */\n"
           "    float loss;          /* the last loss */\n"
           "    float steps;         /* optimizer steps taken (a float, so a checkpoint holds it) */\n"
           "    int grad_zero;       /* 1 after zero_grad: the gradients are zero, but not yet written\n"
           "                          * (backward's first writes assign them) */\n"
           "    int nan_check;       /* 1: forward checks every value and names the first non-finite one */\n"
           "    const char *nonfinite; /* that value's layer or operation, and its line; NULL if none */\n"
           "} %s;\n\n",
        e->U, e->U, e->U, e->U, e->U, e->U, nshape(in), g->classes ? "[n] (class indices)" : nshape(&g->target),
        nshape(o), e->M);

    out(e, "/* The state_dict: parameters (gradient in the same place of m->grad) and\n"
           " * buffers, under PyTorch's names, with PyTorch's layouts (conv weight\n"
           " * [out, in, kh, kw], linear weight [out, in]) and default initialisation. */\n");
    out(e, "static const struct %s_param {\n"
           "    const char *name;\n"
           "    int ndim;\n"
           "    int64_t shape[4];\n"
           "    int buffer;           /* 0: in m->param (trained); 1: in m->buf */\n"
           "    size_t offset, numel; /* floats, into that block */\n"
           "    int init;             /* NNRT_INIT_UNIFORM in (-bound, bound), as PyTorch: bound = 1/sqrt(fan_in) */\n"
           "    float bound;\n"
           "} %s_params[%d] = {\n", e->M, e->M, count_tensors(g));
    static const char *const inits[] = {"NNRT_INIT_UNIFORM", "NNRT_INIT_ZERO", "NNRT_INIT_ONE"};
    for (int i = 0; i < g->nlayers; i++)
        for (int p = 0; p < g->layers[i].nparams; p++) {
            const Param *q = &g->layers[i].params[p];
            out(e, "    {\"%s\", %d, {", q->name, q->shape.ndim);
            for (int d = 0; d < q->shape.ndim; d++)
                out(e, "%s%lld", d ? ", " : "", (long long)q->shape.dim[d]);
            out(e, "}, %d, %zu, %zu, %s, %s},\n", q->buffer, q->offset, q->numel, inits[q->init], F(q->bound));
        }
    out(e, "};\n\n");
}

static void emit_forward(Emit *e)
{
    const Graph *g = e->g;
    Buf b;
    out(e, "/* Are all n values finite? (for m->nan_check) */\n"
           "static int %s_finite(const float *p, size_t n)\n{\n"
           "    for (size_t i = 0; i < n; i++)\n"
           "        if (!isfinite(p[i]))\n"
           "            return 0;\n"
           "    return 1;\n}\n\n", e->M);
    out(e, "/* Forward, as `output = net(input)`: input %s -> output %s.\n"
           " * n <= m->batch samples; returns the output (inside m->act). */\n",
        nshape(&g->nodes[g->input].shape), nshape(&g->nodes[g->output].shape));
    out(e, "float *%s_forward(%s *m, const float *input, int n)\n{\n", e->M, e->M);
    out(e, "    const size_t B = (size_t)m->batch; /* the blocks are laid out for the capacity */\n");
    buf_begin(e, &b);
    out(e, "\n");
    out(e, "    m->nonfinite = NULL;\n");
    for (int i = 0; i < g->nnodes; i++) {
        const Node *nd = &g->nodes[i];
        emit_forward_node(e, nd);
        if (nd->op != OP_INPUT && nd->alias < 0)
            out(e, "    if (m->nan_check && !m->nonfinite && !%s_finite(%s, (size_t)n * %lld))\n"
                   "        m->nonfinite = \"%s (line %d)\";\n", e->M, V(e, i), (long long)shape_numel(&nd->shape),
                e->vname[i], nd->span.first_line);
    }
    out(e, "\n    m->input = input;\n    m->n = n;\n    m->output = %s;\n    return m->output;\n}\n\n",
        V(e, g->output));
    buf_end(e, &b, "input");
}

/* the loss's arguments after the output: "m->target, (size_t)n * 10" or "m->target, n, 10" */
static const char *loss_args(const Graph *g, const char *U, const char *nexpr)
{
    if (g->classes)
        return xprintf("%s, %d", nexpr, g->classes);
    return xprintf("(size_t)%s * %s_OUTPUT_SIZE", nexpr, U);
}

static void emit_loss(Emit *e)
{
    const Graph *g = e->g;
    static const char *const what[] = {"mean squared error", "mean absolute error (L1)",
                                       "cross-entropy of the logits against class indices",
                                       "negative log-likelihood of log-probabilities against class indices",
                                       "binary cross-entropy of the logits"};
    out(e, "/* The loss, as `loss = criterion(output, target)`: %s\n"
           " * (reduction %s), of the last forward's output against target %s. */\n",
        what[g->loss], g->loss_sum ? "sum" : "mean", g->classes ? "[n]" : nshape(&g->target));
    out(e, "float %s_loss(%s *m, const float *target)\n{\n", e->M, e->M);
    out(e, "    m->target = target;\n"
           "    m->loss = nnrt_%s_forward%s(m->output, target, %s, %s);\n"
           "    return m->loss;\n}\n\n", loss_name(g->loss), g->loss == LOSS_MSE ? "_r" : "",
        loss_args(g, e->U, "m->n"), g->loss_sum ? "NNRT_SUM" : "NNRT_MEAN");
}

/* Sorts the nodes by the backward step that zeroes their gradient, keeping
 * node order within a step (a counting sort; steps run from 0 to 2N + 1). */
static void index_zeroing(Emit *e)
{
    const Graph *g = e->g;
    int steps = 2 * g->nnodes + 2;
    e->zero_start = xalloc(sizeof(int) * (size_t)(steps + 1));
    e->zero_at = xalloc(sizeof(int) * (size_t)(g->nnodes + 1));
    for (int i = 0; i < g->nnodes; i++) {
        int t = g->nodes[i].zero_before;
        if (t >= 0 && t < steps)
            e->zero_start[t + 1]++;
    }
    for (int t = 0; t < steps; t++)
        e->zero_start[t + 1] += e->zero_start[t];
    int *next = xalloc(sizeof(int) * (size_t)steps);
    memcpy(next, e->zero_start, sizeof(int) * (size_t)steps);
    for (int i = 0; i < g->nnodes; i++) {
        int t = g->nodes[i].zero_before;
        if (t >= 0 && t < steps)
            e->zero_at[next[t]++] = i;
    }
}

/* Zeroes the gradients first written at backward step t: their memory may
 * have held a value that is dead by now (plan.c), and backward accumulates. */
static void zero_grads(Emit *e, int t)
{
    for (int k = e->zero_start[t]; k < e->zero_start[t + 1]; k++) {
        int i = e->zero_at[k];
        out(e, "    memset(%s, 0, sizeof(float) * (size_t)n * %lld);\n", D(e, i),
            (long long)shape_numel(&e->g->nodes[i].shape));
    }
}

/* The body of backward (fused: of backward_step, after zero_grad) */
static void emit_backward_body(Emit *e, bool fused)
{
    const Graph *g = e->g;
    Buf b;
    out(e, "    const size_t B = (size_t)m->batch;\n"
           "    const int n = m->n;\n");
    buf_begin(e, &b);
    out(e, "\n    /* d loss / d output */\n");
    zero_grads(e, g->nnodes);
    const char *red = g->loss_sum ? "NNRT_SUM" : "NNRT_MEAN";
    if (g->loss == LOSS_NLL)
        out(e, "    nnrt_nll_backward(%s, m->target, n, %d, 1.0f, %s);\n", D(e, g->output), g->classes, red);
    else
        out(e, "    nnrt_%s_backward%s(%s, %s, m->target, %s, 1.0f, %s);\n", loss_name(g->loss),
            g->loss == LOSS_MSE ? "_r" : "", D(e, g->output), V(e, g->output), loss_args(g, e->U, "n"), red);
    e->grad_written = xalloc(sizeof(bool) * (size_t)(g->nlayers + 1));
    e->stepped = xalloc(sizeof(bool) * (size_t)(g->nlayers + 1));
    e->fused = fused;
    for (int i = g->nnodes - 1; i >= 0; i--) {
        zero_grads(e, plan_backward_time(g, i));
        emit_backward_node(e, &g->nodes[i]);
    }
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i].defer_dw) {
            out(e, "    nnrt_join();    /* the weight gradients left running on another thread */\n");
            break;
        }
    if (fused) {
        /* the other layers' updates; a layer backward did not reach has
         * zero gradients, which change nothing */
        out(e, "    /* the step of the layers not updated above, in runs of adjacent parameters\n"
               "     * (with the padding between them, which stays zero) */\n");
        size_t lo = 0, hi = 0;      /* the run [lo, hi) */
        for (int l = 0; l <= g->nlayers; l++)
            for (int k = 0; k < (l < g->nlayers ? g->layers[l].nparams : 1); k++) {
                const Param *p = l < g->nlayers ? &g->layers[l].params[k] : NULL;
                if (p && (p->buffer || !e->grad_written[l] || e->stepped[l]))
                    continue;
                if (p && p->offset >= hi && p->offset - hi < PARAM_ALIGN && hi > lo) {  /* across padding */
                    hi = p->offset + p->numel;
                    continue;
                }
                if (hi > lo)
                    out(e, "    nnrt_sgd_step(m->param + %zu, m->grad + %zu, %zu, lr);\n", lo, lo, hi - lo);
                if (p)
                    lo = p->offset, hi = p->offset + p->numel;
            }
        out(e, "    m->steps += 1;\n    m->grad_zero = 1;\n");
    } else
        out(e, "    m->grad_zero = 0;\n");
    out(e, "}\n\n");
    e->fused = false;
    buf_end(e, &b, "m->input");
}

static void emit_backward(Emit *e)
{
    out(e, "/* Backward, as `loss.backward()`: from the last loss to the gradient of\n"
           " * every parameter, in reverse order of forward. Parameter gradients\n"
           " * accumulate (+=), as in PyTorch; call %s_zero_grad between steps. */\n", e->M);
    out(e, "void %s_backward(%s *m)\n{\n", e->M, e->M);
    emit_backward_body(e, false);
}

/* backward_step: backward, step and zero_grad as one call, the same bits.
 * With plain SGD (no momentum, weight decay or clipping) each linear layer
 * applied once is updated by its backward kernel, where it reads the
 * weights anyway: the gradients are not written out, and a pass over the
 * parameters is saved. */
static void emit_backward_step(Emit *e)
{
    const Graph *g = e->g;
    const char *M = e->M;
    out(e, "/* As `loss.backward(); optimizer.step(); optimizer.zero_grad()`, with the\n"
           " * same bits, in one pass where it can: the training loop's call. The\n"
           " * gradients are zero after it, as after zero_grad. */\n");
    out(e, "void %s_backward_step(%s *m, float lr)\n{\n", M, M);
    static const char three[] = "%s%s_backward(m);\n%s%s_step(m, lr);\n%s%s_zero_grad(m);\n";
    bool plain = g->opt == OPT_SGD && g->momentum == 0 && g->weight_decay == 0 && g->clip_norm <= 0;
    if (!plain) {
        out(e, three, "    ", M, "    ", M, "    ", M);
        out(e, "}\n\n");
        return;
    }
    out(e, "    if (!m->grad_zero) {    /* gradients from an earlier backward: add to them, then step */\n");
    out(e, three, "        ", M, "        ", M, "        ", M);
    out(e, "        return;\n    }\n");
    emit_backward_body(e, true);
}
/* The kernels' scratch at batch n, layer by layer: plan_workspace's list,
 * for the batch the program chooses */
static void emit_workspace(Emit *e)
{
    const Graph *g = e->g;
    out(e, "/* The scratch the kernels ask for in a training step at batch n\n"
           " * (runtime/sizing/workspace.c; nnc --summary prints it at batch 1 and 64). */\n");
    out(e, "static void %s_workspace(nnrt_workspace *w, int n)\n{\n    memset(w, 0, sizeof *w);\n", e->M);
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = &g->nodes[i];
        if (n->op == OP_CONV2D) {
            out(e, "    nnrt_workspace_conv2d(w, ");
            conv_dims(e, n, true);
            int dx, dw, db;
            plan_conv_grads(g, n, &dx, &dw, &db);
            out(e, ",\n        %d, %d, %d);\n", dx, dw, db);
        } else if (n->op == OP_LINEAR) {
            out(e, "    nnrt_workspace_linear(w, n, %lld, %lld);\n", (long long)n->layer->in,
                (long long)n->layer->out);
        }
    }
    out(e, "}\n\n");
}

static void emit_init(Emit *e)
{
    const char *M = e->M, *U = e->U;
    out(e, "/* (Re)initialises the weights from seed, as PyTorch's defaults do (not its\n"
           " * random numbers: nnc has its own generator), and clears the optimizer. */\n");
    out(e, "void %s_reset(%s *m, uint64_t seed)\n{\n"
           "    nnrt_rng rng;\n"
           "    nnrt_rng_seed(&rng, seed);\n"
           "    m->seed = seed;\n"
           "    m->steps = 0;\n"
           "    for (int i = 0; i < %s_NTENSORS; i++) {\n"
           "        const struct %s_param *p = &%s_params[i];\n"
           "        float *w = (p->buffer ? m->buf : m->param) + p->offset;\n"
           "        for (size_t k = 0; p->init != NNRT_INIT_UNIFORM && k < p->numel; k++)\n"
           "            w[k] = p->init == NNRT_INIT_ONE ? 1.0f : 0.0f;\n"
           "        if (p->init == NNRT_INIT_UNIFORM)\n"
           "            nnrt_init_uniform(w, p->numel, p->bound, &rng);\n"
           "    }\n"
           "    if (%s_NOPT)\n"
           "        memset(m->opt, 0, sizeof(float) * %s_NOPT);\n"
           "}\n\n", M, M, U, M, M, U, U);
    emit_workspace(e);
    out(e, "/* Allocates the model for batches of up to `batch` samples and initialises\n"
           " * its weights from seed (deterministic). Exits with a message if memory runs out.\n"
           " * The kernels' scratch is planned for nnrt_threads() threads. */\n");
    out(e, "void %s_init(%s *m, int batch, uint64_t seed)\n{\n", M, M);
    out(e, "    size_t act = (size_t)batch * %s_NACT;\n"
           "    nnrt_workspace ws;\n"
           "    int threads = nnrt_threads();\n"
           "    %s_workspace(&ws, batch);\n"
           "    size_t work = nnrt_workspace_floats(&ws, threads);\n"
           "    float *mem = nnrt_alloc(2 * %s_NPARAM + %s_NBUF + %s_NOPT + %s_NSCRATCH + act + work, \"the model\");\n"
           "    memset(m, 0, sizeof *m);\n"
           "    m->batch = batch;\n"
           "    m->training = 1;\n"
           "    m->param = mem;                 /* one allocation, carved up */\n"
           "    m->grad = m->param + %s_NPARAM;\n"
           "    m->buf = m->grad + %s_NPARAM;\n"
           "    m->opt = m->buf + %s_NBUF;\n"
           "    m->scratch = m->opt + %s_NOPT;\n"
           "    m->act = m->scratch + %s_NSCRATCH;\n"
           "    m->work = m->act + act;\n"
           "    nnrt_workspace_use(m->work, &ws, threads);\n"
           "    %s_reset(m, seed);\n"
           "}\n\n", U, M, U, U, U, U, U, U, U, U, U, M);
    out(e, "void %s_free(%s *m)\n{\n"
           "    nnrt_workspace_release(m->work);\n"
           "    free(m->param);\n"
           "    memset(m, 0, sizeof *m);\n}\n\n", M, M);
    out(e, "/* As `model.train()` (training 1) and `model.eval()` (training 0). */\n");
    out(e, "void %s_set_training(%s *m, int training)\n{\n    m->training = training;\n}\n\n", M, M);
    out(e, "/* As `optimizer.zero_grad()`: the gradients are zero from now on. They are\n"
           " * not written here: backward's first write to each assigns it (a pass\n"
           " * over memory less), and whatever reads them before clears them. */\n");
    out(e, "void %s_zero_grad(%s *m)\n{\n    m->grad_zero = 1;\n}\n\n", M, M);
    out(e, "/* the gradients as zero_grad left them, written out */\n");
    out(e, "static void %s_grads_written(const %s *m)\n{\n"
           "    if (m->grad_zero)\n"
           "        memset(m->grad, 0, sizeof(float) * %s_NPARAM);\n}\n\n", M, M, U);
}

static void emit_step(Emit *e)
{
    const Graph *g = e->g;
    const char *M = e->M, *U = e->U;
    if (g->opt == OPT_SGD)
        out(e, "/* As `optimizer.step()`: torch.optim.SGD(lr=%g, momentum=%g, dampening=%g, weight_decay=%g,\n"
               " * nesterov=%s)%s. */\n", g->lr, g->momentum, g->dampening, g->weight_decay,
            g->nesterov ? "True" : "False", g->clip_norm > 0 ? ", after clipping the gradients' global norm" : "");
    else
        out(e, "/* As `optimizer.step()`: torch.optim.%s(lr=%g, betas=(%g, %g), eps=%g, weight_decay=%g)%s. */\n",
            g->opt == OPT_ADAM ? "Adam" : "AdamW", g->lr, g->beta1, g->beta2, g->eps, g->weight_decay,
            g->clip_norm > 0 ? ", after clipping the gradients' global norm" : "");
    out(e, "void %s_step(%s *m, float lr)\n{\n    m->steps += 1;\n    %s_grads_written(m);\n"
           "    m->grad_zero = 0;\n", M, M, M);
    if (g->clip_norm > 0)
        out(e, "    /* torch.nn.utils.clip_grad_norm_(parameters, %g) */\n"
               "    float norm = nnrt_grad_norm(m->grad, %s_NPARAM);\n"
               "    if (norm > %s)\n"
               "        nnrt_scale(m->grad, %s_NPARAM, %s / (norm + 1e-6f));\n", g->clip_norm, U, F(g->clip_norm),
            U, F(g->clip_norm));
    if (g->opt == OPT_SGD && g->momentum == 0 && g->weight_decay == 0)
        out(e, "    nnrt_sgd_step(m->param, m->grad, %s_NPARAM, lr);\n", U);
    else if (g->opt == OPT_SGD)
        out(e, "    static const nnrt_sgd_opts o = {.momentum = %s, .dampening = %s, .weight_decay = %s,\n"
               "                                    .nesterov = %d};\n"
               "    nnrt_sgd_step_opts(m->param, m->grad, %s, %s_NPARAM, lr, &o, (long)m->steps);\n",
            F(g->momentum), F(g->dampening), F(g->weight_decay), g->nesterov, g->momentum > 0 ? "m->opt" : "NULL", U);
    else
        out(e, "    static const nnrt_adam_opts o = {.beta1 = %s, .beta2 = %s, .eps = %s,\n"
               "                                     .weight_decay = %s, .decoupled = %d};\n"
               "    nnrt_adam_step(m->param, m->grad, m->opt, m->opt + %s_NPARAM, %s_NPARAM, lr, &o, (long)m->steps);\n",
            F(g->beta1), F(g->beta2), F(g->eps), F(g->weight_decay), g->opt == OPT_ADAMW, U, U);
    out(e, "}\n\n");
}

static void emit_tensors(Emit *e)
{
    const Graph *g = e->g;
    const char *M = e->M, *U = e->U;
    static const char *const slot_names[2][2] = {{"momentum_buffer", ""}, {"exp_avg", "exp_avg_sq"}};
    int slots = opt_slots(g);
    out(e, "/* Names of the gradients and of the optimizer's state, for checkpoints. */\n");
    out(e, "static const char *const %s_grad_names[%s_NTENSORS] = {\n", M, U);
    for (int i = 0; i < g->nlayers; i++)
        for (int p = 0; p < g->layers[i].nparams; p++)
            out(e, "    \"%s.grad\",\n", g->layers[i].params[p].name);
    out(e, "};\n");
    out(e, "static const char *const %s_state_names[%s_NSTATE] = {\n", M, U);
    for (int k = 0; k < slots; k++)
        for (int i = 0; i < g->nlayers; i++)
            for (int p = 0; p < g->layers[i].nparams; p++)
                if (!g->layers[i].params[p].buffer)
                    out(e, "    \"optimizer.%s.%s\",\n", g->layers[i].params[p].name, slot_names[g->opt != OPT_SGD][k]);
    out(e, "    \"optimizer.steps\",\n};\n\n");
    out(e, "/* Views as named tensors of the state_dict (what 0), of the parameters'\n"
           " * gradients (what 1, named NAME.grad), or of the optimizer's state (what 2);\n"
           " * returns how many. */\n");
    out(e, "int %s_tensors(const %s *m, nnrt_tensor *t, int what)\n{\n"
           "    int k = 0;\n"
           "    if (what == 1 && m->grad_zero) {   /* the views show (and take) what is there */\n"
           "        %s_grads_written(m);\n"
           "        ((struct %s *)m)->grad_zero = 0;      /* m is never a const object: init wrote it */\n"
           "    }\n"
           "    for (int s = 0; s < (what == 2 ? %d : 1); s++)\n"
           "        for (int i = 0; i < %s_NTENSORS; i++) {\n"
           "            const struct %s_param *p = &%s_params[i];\n"
           "            if (what && p->buffer)\n"
           "                continue;\n"
           "            float *base = what == 0 ? (p->buffer ? m->buf : m->param)\n"
           "                        : what == 1 ? m->grad : m->opt + (size_t)s * %s_NPARAM;\n"
           "            t[k] = (nnrt_tensor){.name = what == 0 ? p->name : what == 1 ? %s_grad_names[i]\n"
           "                                 : %s_state_names[k], .ndim = p->ndim, .data = base + p->offset};\n"
           "            memcpy(t[k].shape, p->shape, sizeof p->shape);\n"
           "            k++;\n"
           "        }\n"
           "    if (what == 2) {\n"
           "        t[k] = (nnrt_tensor){.name = %s_state_names[k], .ndim = 1, .shape = {1},\n"
           "                             .data = (float *)&m->steps};\n"
           "        k++;\n"
           "    }\n"
           "    return k;\n}\n\n", M, M, M, M, slots, U, M, M, U, M, M, M);
    out(e, "#if !defined(NNC_NO_MAIN) || defined(NNC_CHECKPOINTS)\n"
           "/* Saves the state_dict as safetensors, PyTorch's names (load it with\n"
           " * model.load_state_dict); atomic: the old file stays intact if anything\n"
           " * fails. 0, or -1 with a message in err. */\n");
    out(e, "int %s_save(const %s *m, const char *path, char *err, size_t errlen)\n{\n"
           "    nnrt_tensor t[%s_NTENSORS];\n"
           "    int n = %s_tensors(m, t, 0);\n"
           "    const char *keys[] = {\"format\", \"model\"};\n"
           "    const char *vals[] = {\"pt\", \"%s\"};\n"
           "    return nnrt_save_safetensors(path, t, n, keys, vals, 2, err, errlen);\n}\n\n",
        M, M, U, M, g->name);
    out(e, "/* Loads weights saved by %s_save or by PyTorch; refuses, changing nothing,\n"
           " * a file whose tensors do not match the model. 0, or -1 with a message. */\n", M);
    out(e, "int %s_load(%s *m, const char *path, char *err, size_t errlen)\n{\n"
           "    nnrt_tensor t[%s_NTENSORS];\n"
           "    int n = %s_tensors(m, t, 0);\n"
           "    return nnrt_load_safetensors(path, t, n, err, errlen);\n}\n"
           "#endif /* NNC_CHECKPOINTS */\n\n", M, M, U, M);
}

static void emit_api(Emit *e)
{
    emit_init(e);
    emit_step(e);
    emit_backward_step(e);
    emit_tensors(e);
}

/* The summary as a C string, for the trainer's banner */
static void emit_summary_string(Emit *e)
{
    char *text;
    size_t len;
    FILE *f = open_memstream(&text, &len);
    if (!f) {
        diag_fatal_plain("cannot create a memory buffer");
        exit(1);
    }
    summary_print(f, e->g, "");
    fclose(f);
    out(e, "static const char %s_summary[] =\n    \"", e->M);
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n')
            out(e, i + 1 < len ? "\\n\"\n    \"" : "\\n");
        else if (text[i] == '"' || text[i] == '\\')
            out(e, "\\%c", text[i]);
        else
            fputc(text[i], e->out);
    }
    out(e, "\";\n\n");
    free(text);
}

/* a C string literal of s */
static char *c_string(const char *s)
{
    size_t n = strlen(s);
    char *o = xalloc(4 * n + 3), *p = o;
    *p++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            p += sprintf(p, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            p += sprintf(p, "\\%03o", c);
        else
            *p++ = (char)c;
    }
    *p++ = '"';
    return o;
}

static void emit_dims(Emit *e, const char *field, const Shape *s)
{
    out(e, "        .%s_ndim = %d, .%s_shape = {", field, s->ndim, field);
    for (int d = 0; d < s->ndim; d++)
        out(e, "%s%lld", d ? ", " : "", (long long)s->dim[d]);
    if (s->ndim == 0)
        out(e, "0");
    out(e, "},\n");
}

/* 2 if a batch norm normalises one value per channel and sample (PyTorch
 * refuses to train it on a batch of 1: the variance would be 0/0) */
static int min_batch(const Graph *g)
{
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i].op == OP_BATCHNORM1D && g->nodes[i].shape.ndim == 1)
            return 2;
    return 1;
}

/* main(): the runtime's trainer (runtime/host/trainer.c), given this model */
static void emit_main(Emit *e, const char *src)
{
    const Graph *g = e->g;
    const char *M = e->M, *U = e->U;
    out(e, "#ifndef NNC_NO_MAIN\n"
           "/* ---- The trainer: runtime/host/trainer.c runs the tutorial's loop on this model. ---- */\n\n");
    emit_summary_string(e);
    out(e, "static void %s_init_v(void *m, int batch, uint64_t seed) { %s_init(m, batch, seed); }\n", M, M);
    out(e, "static void %s_free_v(void *m) { %s_free(m); }\n", M, M);
    out(e, "static void %s_zero_grad_v(void *m) { %s_zero_grad(m); }\n", M, M);
    out(e, "static float *%s_forward_v(void *m, const float *x, int n) { return %s_forward(m, x, n); }\n", M, M);
    out(e, "static float %s_loss_v(void *m, const float *t) { return %s_loss(m, t); }\n", M, M);
    out(e, "static void %s_backward_v(void *m) { %s_backward(m); }\n", M, M);
    out(e, "static void %s_step_v(void *m, float lr) { %s_step(m, lr); }\n", M, M);
    out(e, "static void %s_backward_step_v(void *m, float lr) { %s_backward_step(m, lr); }\n", M, M);
    out(e, "static int %s_tensors_v(void *m, nnrt_tensor *t, int what) { return %s_tensors(m, t, what); }\n",
        M, M);
    out(e, "static void %s_set_training_v(void *m, int on) { %s_set_training(m, on); }\n", M, M);
    out(e, "static void %s_set_nan_check_v(void *m, int on) { ((struct %s *)m)->nan_check = on; }\n", M, M);
    out(e, "static const char *%s_nonfinite_v(void *m) { return ((struct %s *)m)->nonfinite; }\n\n", M, M);
    out(e, "int main(int argc, char **argv)\n{\n"
           "    static struct %s m;   /* `struct`: the model may be called argc or argv */\n"
           "    const nnrt_model model = {\n"
           "        .name = \"%s\", .summary = %s_summary, .self = &m,\n"
           "        .source = %s,\n", M, g->name, M, c_string(src));
    emit_dims(e, "in", &g->nodes[g->input].shape);
    emit_dims(e, "out", &g->nodes[g->output].shape);
    emit_dims(e, "target", &g->target);
    static const char *const sched[] = {"NNRT_SCHED_NONE", "NNRT_SCHED_STEP", "NNRT_SCHED_COSINE"};
    out(e, "        .classes = %d, .lr = %s, .ntensors = %s_NTENSORS, .nstate = %s_NSTATE,\n"
           "        .init = %s_init_v, .release = %s_free_v, .zero_grad = %s_zero_grad_v,\n"
           "        .forward = %s_forward_v, .loss = %s_loss_v, .backward = %s_backward_v,\n"
           "        .step = %s_step_v, .backward_step = %s_backward_step_v,\n"
           "        .set_training = %s_set_training_v, .tensors = %s_tensors_v,\n"
           "        .set_nan_check = %s_set_nan_check_v, .first_nonfinite = %s_nonfinite_v,\n"
           "        .schedule = %s, .sched_step_size = %lld, .sched_gamma = %s,\n"
           "        .sched_t_max = %lld, .sched_eta_min = %s, .min_batch = %d,\n"
           "    };\n"
           "    return nnrt_train_main(&model, argc, argv);\n"
           "}\n"
           "#endif /* NNC_NO_MAIN */\n",
        g->classes, F(g->lr), U, U, M, M, M, M, M, M, M, M, M, M, M, M, sched[g->sched], (long long)g->sched_step_size,
        F(g->sched_gamma), (long long)g->sched_t_max, F(g->sched_eta_min), min_batch(g));
}

static void emit_file(FILE *f, const Graph *g, const char *source_path);

/* Writes text to f with every line of more than MAX_LINE characters broken
 * after a ", " (outside string and character literals), the rest indented
 * four more than the line; a preprocessor line, a comment's line, or one
 * with no such place, stays as it is. So the generated C keeps the width a person would. */
enum { MAX_LINE = 99 };
static void write_wrapped(FILE *f, const char *text, size_t len)
{
    const char *end = text + len;
    for (const char *line = text; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        const char *stop = nl ? nl : end;
        size_t indent = strspn(line, " ");
        const char *rest = line;
        bool cpp = line[indent] == '#' || line[indent] == '*' || !strncmp(line + indent, "/*", 2);
        char quote = 0;
        bool continued = false;
        while (!cpp && stop - rest > (continued ? MAX_LINE - (long)indent - 4 : MAX_LINE)) {
            long room = continued ? MAX_LINE - (long)indent - 4 : MAX_LINE;
            const char *cut = NULL;
            for (const char *c = rest; c < stop - 1 && c - rest < room; c++) {
                if (quote) {
                    if (*c == '\\')
                        c++;
                    else if (*c == quote)
                        quote = 0;
                } else if (*c == '"' || *c == '\'') {
                    quote = *c;
                } else if (c[0] == ',' && c[1] == ' ') {
                    cut = c + 1;
                }
            }
            quote = 0;  /* the scan restarts at rest, from outside any literal (cut was outside) */
            if (!cut)
                break;
            if (continued)
                fprintf(f, "%*s", (int)indent + 4, "");
            fwrite(rest, 1, (size_t)(cut - rest), f);
            fputc('\n', f);
            rest = cut + strspn(cut, " ");
            continued = true;
        }
        if (continued)
            fprintf(f, "%*s", (int)indent + 4, "");
        fwrite(rest, 1, (size_t)(stop - rest), f);
        if (nl)
            fputc('\n', f);
        line = nl ? nl + 1 : end;
    }
}

void emit_c(FILE *f, const Graph *g, const char *source_path)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) {
        perror("nnc: open_memstream");
        exit(1);
    }
    emit_file(mem, g, source_path);
    if (fclose(mem) != 0) {
        perror("nnc: writing the C");
        exit(1);
    }
    write_wrapped(f, text, len);
    free(text);
}

static void emit_file(FILE *f, const Graph *g, const char *source_path)
{
    Emit e = {.g = g, .out = f, .M = g->name, .U = upper(g->name)};
    e.use_v = xalloc(sizeof(bool) * (size_t)g->nnodes);
    e.use_d = xalloc(sizeof(bool) * (size_t)g->nnodes);
    name_values(&e);
    index_zeroing(&e);
    emit_header(&e, source_path);
    emit_sizes(&e);
    emit_state(&e);
    emit_forward(&e);
    emit_loss(&e);
    emit_backward(&e);
    emit_api(&e);
    emit_main(&e, source_path);
}
