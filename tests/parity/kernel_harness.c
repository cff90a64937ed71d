/* kernel_harness.c — runs runtime kernels on inputs from PyTorch, one case per
 * file pair, for the kernel-level parity test (tests/parity/kernels.py).
 *
 *   usage: kernel_harness IN OUT [IN OUT ...]
 *
 * Each IN is a safetensors file. Its metadata "kernel" names what to run and
 * its other metadata are the options (numbers as text: "kh" -> "3"); its
 * tensors are the inputs, by the names below. The harness runs the kernel's
 * forward and then its backward into zeroed gradients (or three optimizer
 * steps, or a learning-rate schedule) and writes every result to OUT:
 *
 *   maxpool2d, avgpool2d   x [N,C,H,W], dy [N,C,P,Q]; kh kw sh sw ph pw
 *                          count_include_pad (P, Q from dy, as the compiler's) -> y, dx
 *   adaptive_avgpool2d     x, dy [N,C,P,Q]                               -> y, dx
 *   relu, leaky_relu, elu, sigmoid, tanh, gelu, silu   x, dy; slope (elu: alpha) -> y, dx
 *   softmax, log_softmax   x, dy; dim (normalised over x's dimension dim) -> y, dx
 *   dropout                x, dy; p, seed                                -> y, mask, dx
 *   batchnorm              x [N,C,...], dy, gamma, beta (both or neither),
 *                          running_mean, running_var; eps momentum training
 *                          -> y, and in training dx, dgamma, dbeta, mean, invstd,
 *                             running_mean, running_var
 *   embedding              idx (ids as floats, any shape), w [num,D], dy [..., D] -> y, dw
 *   layernorm              x [..., C], dy, w, b (both or neither); eps
 *                          -> y, mean, rstd (one per row), dx, and with w and b dw, db
 *   attention              qkv [N,T,3C], dy [N,T,C]; H causal            -> y, att [N,H,T,T], dqkv
 *   lstm                   x [N,T,I], dy [N,T,H], w_ih [4H,I], w_hh [4H,H], b_ih, b_hh [4H]
 *                          (both or neither) -> y, saved, dx, dw_ih, dw_hh, and with the biases db_ih, db_hh
 *   add                    a, b, dy                                      -> y, da, db
 *   concat                 x0, x1, ... along dim 1, dy                   -> y, dx0, dx1, ...
 *   mse, l1, bce_with_logits, cross_entropy, nll
 *                          x, t (class indices as floats for the last two);
 *                          reduction (0 mean, 1 sum), dloss              -> loss [1], dx
 *   sgd                    p, g1, g2, ...; lr momentum dampening weight_decay nesterov -> p, buf
 *   adam                   p, g1, g2, ...; lr beta1 beta2 eps weight_decay decoupled   -> p, m, v
 *   clip_grad_norm         g; max_norm                                   -> g, norm [1]
 *   lr_step, lr_cosine     lr epochs; step_size gamma / t_max eta_min    -> lr [epochs]
 *
 * A missing tensor or an unknown kernel is an error (exit 1) naming the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt_host.h"

enum { MAX_OUT = 16 };

/* one case: its input file, and the tensors it will write */
typedef struct harness_case {
    const char *path;
    nnrt_st_file *f;
    int nout;
    nnrt_tensor out[MAX_OUT];
} harness_case;

static void die(const harness_case *hc, const char *what)
{
    fprintf(stderr, "kernel_harness: %s: %s\n", hc->path, what);
    exit(1);
}

/* the input tensor called name, or exit */
static const nnrt_tensor *need(const harness_case *hc, const char *name)
{
    const nnrt_tensor *t = nnrt_st_get(hc->f, name);
    if (!t) {
        char why[128];
        snprintf(why, sizeof why, "no float tensor '%s'", name);
        die(hc, why);
    }
    return t;
}

/* the option key as a number, or def if the file does not set it */
static double opt(const harness_case *hc, const char *key, double def)
{
    const char *v = nnrt_st_meta(hc->f, key);
    return v ? strtod(v, NULL) : def;
}

/* a new zeroed output tensor called name, shaped like `like` */
static float *out_like(harness_case *hc, const char *name, const nnrt_tensor *like)
{
    if (hc->nout == MAX_OUT)
        die(hc, "too many outputs");
    nnrt_tensor *t = &hc->out[hc->nout++];
    *t = *like;
    t->name = name;
    t->data = calloc(nnrt_tensor_numel(like) + 1, sizeof(float));
    if (!t->data)
        die(hc, "out of memory");
    return t->data;
}

/* a new zeroed output vector of n floats */
static float *out_vec(harness_case *hc, const char *name, size_t n)
{
    nnrt_tensor shape = {.ndim = 1, .shape = {(int64_t)n}};
    return out_like(hc, name, &shape);
}

static float *copy_of(harness_case *hc, const char *name, const nnrt_tensor *t)
{
    float *p = out_like(hc, name, t);
    memcpy(p, t->data, nnrt_tensor_numel(t) * sizeof *p);
    return p;
}

/* the product of t's dimensions from a to b - 1 */
static int dims(const nnrt_tensor *t, int a, int b)
{
    int64_t n = 1;
    for (int i = a; i < b; i++)
        n *= t->shape[i];
    return (int)n;
}

static void run_pool(harness_case *hc, int max)
{
    const nnrt_tensor *x = need(hc, "x"), *dy = need(hc, "dy");
    nnrt_pool2d_dims d = {
        .N = (int)x->shape[0], .C = (int)x->shape[1], .H = (int)x->shape[2], .W = (int)x->shape[3],
        .P = (int)dy->shape[2], .Q = (int)dy->shape[3],
        .kh = (int)opt(hc, "kh", 1), .kw = (int)opt(hc, "kw", 1),
        .stride_h = (int)opt(hc, "sh", 1), .stride_w = (int)opt(hc, "sw", 1),
        .pad_h = (int)opt(hc, "ph", 0), .pad_w = (int)opt(hc, "pw", 0),
        .count_include_pad = (int)opt(hc, "count_include_pad", 1)};
    float *y = out_like(hc, "y", dy), *dx = out_like(hc, "dx", x);
    if (max) {
        nnrt_maxpool2d_forward(y, x->data, &d);
        nnrt_maxpool2d_backward(dx, dy->data, x->data, &d);
    } else {
        nnrt_avgpool2d_forward(y, x->data, &d);
        nnrt_avgpool2d_backward(dx, dy->data, &d);
    }
}

static void run_adaptive(harness_case *hc)
{
    const nnrt_tensor *x = need(hc, "x"), *dy = need(hc, "dy");
    int N = (int)x->shape[0], C = (int)x->shape[1], H = (int)x->shape[2], W = (int)x->shape[3];
    int P = (int)dy->shape[2], Q = (int)dy->shape[3];
    float *y = out_like(hc, "y", dy), *dx = out_like(hc, "dx", x);
    nnrt_adaptive_avgpool2d_forward(y, x->data, N, C, H, W, P, Q);
    nnrt_adaptive_avgpool2d_backward(dx, dy->data, N, C, H, W, P, Q);
}

static void run_activation(harness_case *hc, const char *k)
{
    const nnrt_tensor *x = need(hc, "x"), *dy = need(hc, "dy");
    size_t n = nnrt_tensor_numel(x);
    float slope = (float)opt(hc, "slope", 0.01);
    float *y = out_like(hc, "y", x), *dx = out_like(hc, "dx", x);
    if (!strcmp(k, "relu")) {
        nnrt_relu_forward(y, x->data, n);
        nnrt_relu_backward(dx, dy->data, y, n);
    } else if (!strcmp(k, "leaky_relu")) {
        nnrt_leaky_relu_forward(y, x->data, n, slope);
        nnrt_leaky_relu_backward(dx, dy->data, x->data, n, slope);
    } else if (!strcmp(k, "elu")) {
        nnrt_elu_forward(y, x->data, n, slope);
        nnrt_elu_backward(dx, dy->data, x->data, n, slope);
    } else if (!strcmp(k, "sigmoid")) {
        nnrt_sigmoid_forward(y, x->data, n);
        nnrt_sigmoid_backward(dx, dy->data, y, n);
    } else if (!strcmp(k, "tanh")) {
        nnrt_tanh_forward(y, x->data, n);
        nnrt_tanh_backward(dx, dy->data, y, n);
    } else if (!strcmp(k, "silu")) {
        nnrt_silu_forward(y, x->data, n);
        nnrt_silu_backward(dx, dy->data, x->data, n);
    } else {
        nnrt_gelu_forward(y, x->data, n);
        nnrt_gelu_backward(dx, dy->data, x->data, n);
    }
}

static void run_softmax(harness_case *hc, int is_log)
{
    const nnrt_tensor *x = need(hc, "x"), *dy = need(hc, "dy");
    int dim = (int)opt(hc, "dim", 1);
    int outer = dims(x, 0, dim), C = (int)x->shape[dim], inner = dims(x, dim + 1, x->ndim);
    float *y = out_like(hc, "y", x), *dx = out_like(hc, "dx", x);
    if (is_log) {
        nnrt_log_softmax_forward(y, x->data, outer, C, inner);
        nnrt_log_softmax_backward(dx, dy->data, y, outer, C, inner);
    } else {
        nnrt_softmax_forward(y, x->data, outer, C, inner);
        nnrt_softmax_backward(dx, dy->data, y, outer, C, inner);
    }
}

static void run_dropout(harness_case *hc)
{
    const nnrt_tensor *x = need(hc, "x"), *dy = need(hc, "dy");
    size_t n = nnrt_tensor_numel(x);
    nnrt_rng r;
    nnrt_rng_seed(&r, (uint64_t)opt(hc, "seed", 1));
    float *y = out_like(hc, "y", x), *mask = out_like(hc, "mask", x), *dx = out_like(hc, "dx", x);
    nnrt_dropout_forward(y, mask, x->data, n, (float)opt(hc, "p", 0.5), &r);
    nnrt_dropout_backward(dx, dy->data, mask, n);
}

static void run_batchnorm(harness_case *hc)
{
    const nnrt_tensor *x = need(hc, "x"), *dy = need(hc, "dy");
    const nnrt_tensor *gamma = nnrt_st_get(hc->f, "gamma"), *beta = nnrt_st_get(hc->f, "beta");
    nnrt_bn_dims d = {.N = (int)x->shape[0], .C = (int)x->shape[1], .HW = dims(x, 2, x->ndim),
                      .eps = (float)opt(hc, "eps", 1e-5), .momentum = (float)opt(hc, "momentum", 0.1)};
    const float *g = gamma ? gamma->data : NULL, *b = beta ? beta->data : NULL;
    float *rm = copy_of(hc, "running_mean", need(hc, "running_mean"));
    float *rv = copy_of(hc, "running_var", need(hc, "running_var"));
    float *y = out_like(hc, "y", x);
    if (!opt(hc, "training", 1)) {
        nnrt_batchnorm_forward_eval(y, x->data, g, b, rm, rv, &d);
        return;
    }
    float *mean = out_vec(hc, "mean", (size_t)d.C), *invstd = out_vec(hc, "invstd", (size_t)d.C);
    float *dx = out_like(hc, "dx", x);
    nnrt_batchnorm_forward_train(y, mean, invstd, rm, rv, x->data, g, b, &d);
    float *dg = gamma ? out_vec(hc, "dgamma", (size_t)d.C) : NULL;
    float *db = beta ? out_vec(hc, "dbeta", (size_t)d.C) : NULL;
    nnrt_batchnorm_backward(dx, dg, db, dy->data, x->data, mean, invstd, g, &d);
}

static void run_embedding(harness_case *hc)
{
    const nnrt_tensor *idx = need(hc, "idx"), *w = need(hc, "w"), *dy = need(hc, "dy");
    int rows = (int)nnrt_tensor_numel(idx), num = (int)w->shape[0], D = (int)w->shape[1];
    float *y = out_like(hc, "y", dy), *dw = out_like(hc, "dw", w);
    nnrt_embedding_forward(y, idx->data, w->data, rows, num, D);
    nnrt_embedding_backward(dw, dy->data, idx->data, rows, num, D);
}

static void run_layernorm(harness_case *hc)
{
    const nnrt_tensor *x = need(hc, "x"), *dy = need(hc, "dy");
    const nnrt_tensor *w = nnrt_st_get(hc->f, "w"), *b = nnrt_st_get(hc->f, "b");
    int C = (int)x->shape[x->ndim - 1], rows = dims(x, 0, x->ndim - 1);
    float *y = out_like(hc, "y", x), *dx = out_like(hc, "dx", x);
    float *mean = out_vec(hc, "mean", (size_t)rows), *rstd = out_vec(hc, "rstd", (size_t)rows);
    float *dw = w ? out_vec(hc, "dw", (size_t)C) : NULL, *db = b ? out_vec(hc, "db", (size_t)C) : NULL;
    nnrt_layernorm_forward(y, mean, rstd, x->data, w ? w->data : NULL, b ? b->data : NULL, rows, C,
                           (float)opt(hc, "eps", 1e-5));
    nnrt_layernorm_backward(dx, dw, db, dy->data, x->data, mean, rstd, w ? w->data : NULL, rows, C);
}

static void run_attention(harness_case *hc)
{
    const nnrt_tensor *qkv = need(hc, "qkv"), *dy = need(hc, "dy");
    int N = (int)qkv->shape[0], T = (int)qkv->shape[1], C = (int)qkv->shape[2] / 3;
    int H = (int)opt(hc, "H", 1), causal = (int)opt(hc, "causal", 0);
    nnrt_tensor att_shape = {.ndim = 4, .shape = {N, H, T, T}};
    float *y = out_like(hc, "y", dy), *att = out_like(hc, "att", &att_shape), *dqkv = out_like(hc, "dqkv", qkv);
    nnrt_attention_forward(y, att, qkv->data, N, T, C, H, causal);
    nnrt_attention_backward(dqkv, dy->data, att, qkv->data, N, T, C, H, causal);
}

static void run_lstm(harness_case *hc)
{
    const nnrt_tensor *x = need(hc, "x"), *dy = need(hc, "dy"), *w_ih = need(hc, "w_ih"), *w_hh = need(hc, "w_hh");
    const nnrt_tensor *b_ih = nnrt_st_get(hc->f, "b_ih"), *b_hh = nnrt_st_get(hc->f, "b_hh");
    int N = (int)x->shape[0], T = (int)x->shape[1], I = (int)x->shape[2], H = (int)w_hh->shape[1];
    nnrt_tensor saved_shape = {.ndim = 3, .shape = {N, T, 5 * H}};
    float *y = out_like(hc, "y", dy), *saved = out_like(hc, "saved", &saved_shape);
    float *dx = out_like(hc, "dx", x), *dw_ih = out_like(hc, "dw_ih", w_ih), *dw_hh = out_like(hc, "dw_hh", w_hh);
    float *db_ih = b_ih ? out_like(hc, "db_ih", b_ih) : NULL, *db_hh = b_hh ? out_like(hc, "db_hh", b_hh) : NULL;
    nnrt_lstm_forward(y, saved, x->data, w_ih->data, w_hh->data, b_ih ? b_ih->data : NULL,
                      b_hh ? b_hh->data : NULL, N, T, I, H);
    nnrt_lstm_backward(dx, dw_ih, dw_hh, db_ih, db_hh, dy->data, x->data, y, saved, w_ih->data, w_hh->data, N, T,
                       I, H);
}

static void run_add(harness_case *hc)
{
    const nnrt_tensor *a = need(hc, "a"), *b = need(hc, "b"), *dy = need(hc, "dy");
    size_t n = nnrt_tensor_numel(a);
    nnrt_add_forward(out_like(hc, "y", a), a->data, b->data, n);
    nnrt_accumulate(out_like(hc, "da", a), dy->data, n);
    nnrt_accumulate(out_like(hc, "db", b), dy->data, n);
}

static void run_concat(harness_case *hc)
{
    static const char *const xs[] = {"x0", "x1", "x2", "x3"}, *const dxs[] = {"dx0", "dx1", "dx2", "dx3"};
    const nnrt_tensor *dy = need(hc, "dy");
    int N = (int)dy->shape[0], Cy = (int)dy->shape[1], inner = dims(dy, 2, dy->ndim), c0 = 0;
    float *y = out_like(hc, "y", dy);
    for (int i = 0; i < 4 && nnrt_st_get(hc->f, xs[i]); i++) {
        const nnrt_tensor *x = need(hc, xs[i]);
        int Cx = (int)x->shape[1];
        nnrt_concat_forward(y, x->data, N, Cx, Cy, c0, inner);
        nnrt_concat_backward(out_like(hc, dxs[i], x), dy->data, N, Cx, Cy, c0, inner);
        c0 += Cx;
    }
}

static void run_loss(harness_case *hc, const char *k)
{
    const nnrt_tensor *x = need(hc, "x"), *t = need(hc, "t");
    int red = (int)opt(hc, "reduction", NNRT_MEAN);
    float dloss = (float)opt(hc, "dloss", 1.0);
    size_t n = nnrt_tensor_numel(x);
    int N = (int)x->shape[0], C = x->ndim > 1 ? dims(x, 1, x->ndim) : 1;
    float *loss = out_vec(hc, "loss", 1), *dx = out_like(hc, "dx", x);
    if (!strcmp(k, "mse")) {
        *loss = nnrt_mse_forward_r(x->data, t->data, n, red);
        nnrt_mse_backward_r(dx, x->data, t->data, n, dloss, red);
    } else if (!strcmp(k, "l1")) {
        *loss = nnrt_l1_forward(x->data, t->data, n, red);
        nnrt_l1_backward(dx, x->data, t->data, n, dloss, red);
    } else if (!strcmp(k, "bce_with_logits")) {
        *loss = nnrt_bce_with_logits_forward(x->data, t->data, n, red);
        nnrt_bce_with_logits_backward(dx, x->data, t->data, n, dloss, red);
    } else if (!strcmp(k, "cross_entropy")) {
        *loss = nnrt_cross_entropy_forward(x->data, t->data, N, C, red);
        nnrt_cross_entropy_backward(dx, x->data, t->data, N, C, dloss, red);
    } else {
        *loss = nnrt_nll_forward(x->data, t->data, N, C, red);
        nnrt_nll_backward(dx, t->data, N, C, dloss, red);
    }
}

/* the optimizers: steps with g1, g2, ... in turn, counting from 1 */
static void run_optimizer(harness_case *hc, int adam)
{
    const nnrt_tensor *p0 = need(hc, "p");
    size_t n = nnrt_tensor_numel(p0);
    float lr = (float)opt(hc, "lr", 0.01);
    float *p = copy_of(hc, "p", p0), *b1 = out_like(hc, adam ? "m" : "buf", p0);
    float *b2 = adam ? out_like(hc, "v", p0) : NULL;
    nnrt_sgd_opts so = {.momentum = (float)opt(hc, "momentum", 0), .dampening = opt(hc, "dampening", 0),
                        .weight_decay = (float)opt(hc, "weight_decay", 0), .nesterov = (int)opt(hc, "nesterov", 0)};
    nnrt_adam_opts ao = {.beta1 = opt(hc, "beta1", 0.9), .beta2 = opt(hc, "beta2", 0.999),
                         .eps = (float)opt(hc, "eps", 1e-8), .weight_decay = opt(hc, "weight_decay", 0),
                         .decoupled = (int)opt(hc, "decoupled", 0)};
    for (long step = 1;; step++) {
        char name[32];
        snprintf(name, sizeof name, "g%ld", step);
        const nnrt_tensor *g = nnrt_st_get(hc->f, name);
        if (!g)
            break;
        if (adam)
            nnrt_adam_step(p, g->data, b1, b2, n, lr, &ao, step);
        else
            nnrt_sgd_step_opts(p, g->data, b1, n, lr, &so, step);
    }
}

static void run_clip(harness_case *hc)
{
    const nnrt_tensor *g0 = need(hc, "g");
    float *g = copy_of(hc, "g", g0);
    *out_vec(hc, "norm", 1) = nnrt_clip_grad_norm(g, nnrt_tensor_numel(g0), (float)opt(hc, "max_norm", 1));
}

static void run_schedule(harness_case *hc, int cosine)
{
    long epochs = (long)opt(hc, "epochs", 10);
    float lr = (float)opt(hc, "lr", 0.1), *out = out_vec(hc, "lr", (size_t)epochs);
    for (long e = 0; e < epochs; e++)
        out[e] = cosine ? nnrt_lr_cosine(lr, e, (long)opt(hc, "t_max", 10), (float)opt(hc, "eta_min", 0))
                        : nnrt_lr_step(lr, e, (long)opt(hc, "step_size", 1), (float)opt(hc, "gamma", 0.1));
}

/* runs the case in hc->path and writes its outputs to out */
static void run_case(harness_case *hc, const char *out)
{
    char err[1024];
    if (!(hc->f = nnrt_st_open(hc->path, err, sizeof err))) {
        fprintf(stderr, "kernel_harness: %s\n", err);
        exit(1);
    }
    const char *k = nnrt_st_meta(hc->f, "kernel");
    if (!k)
        die(hc, "no metadata 'kernel'");
    if (!strcmp(k, "maxpool2d") || !strcmp(k, "avgpool2d"))
        run_pool(hc, k[0] == 'm');
    else if (!strcmp(k, "adaptive_avgpool2d"))
        run_adaptive(hc);
    else if (!strcmp(k, "relu") || !strcmp(k, "leaky_relu") || !strcmp(k, "sigmoid") ||
             !strcmp(k, "tanh") || !strcmp(k, "gelu") || !strcmp(k, "silu") || !strcmp(k, "elu"))
        run_activation(hc, k);
    else if (!strcmp(k, "softmax") || !strcmp(k, "log_softmax"))
        run_softmax(hc, k[0] == 'l');
    else if (!strcmp(k, "dropout"))
        run_dropout(hc);
    else if (!strcmp(k, "batchnorm"))
        run_batchnorm(hc);
    else if (!strcmp(k, "embedding"))
        run_embedding(hc);
    else if (!strcmp(k, "layernorm"))
        run_layernorm(hc);
    else if (!strcmp(k, "attention"))
        run_attention(hc);
    else if (!strcmp(k, "lstm"))
        run_lstm(hc);
    else if (!strcmp(k, "add"))
        run_add(hc);
    else if (!strcmp(k, "concat"))
        run_concat(hc);
    else if (!strcmp(k, "mse") || !strcmp(k, "l1") || !strcmp(k, "bce_with_logits") ||
             !strcmp(k, "cross_entropy") || !strcmp(k, "nll"))
        run_loss(hc, k);
    else if (!strcmp(k, "sgd") || !strcmp(k, "adam"))
        run_optimizer(hc, k[0] == 'a');
    else if (!strcmp(k, "clip_grad_norm"))
        run_clip(hc);
    else if (!strcmp(k, "lr_step") || !strcmp(k, "lr_cosine"))
        run_schedule(hc, k[3] == 'c');
    else
        die(hc, "unknown kernel");

    if (nnrt_save_safetensors(out, hc->out, hc->nout, NULL, NULL, 0, err, sizeof err) < 0) {
        fprintf(stderr, "kernel_harness: %s\n", err);
        exit(1);
    }
    for (int i = 0; i < hc->nout; i++)
        free(hc->out[i].data);
    nnrt_st_close(hc->f);
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc % 2 == 0) {
        fprintf(stderr, "usage: kernel_harness IN OUT [IN OUT ...]\n");
        return 2;
    }
    for (int i = 1; i + 1 < argc; i += 2) {
        harness_case hc = {.path = argv[i]};
        run_case(&hc, argv[i + 1]);
    }
    return 0;
}
