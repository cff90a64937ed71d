/* nnrt.h — the nnc runtime's kernels: what a generated model calls.
 *
 * nnc emits one C file per model; that file holds the model's shapes, its
 * memory layout and its training loop, and calls the functions declared here
 * for the arithmetic. Each layer family has a forward and a backward kernel,
 * side by side in one source file (conv2d.c, pool.c, ...). This header and
 * libnnrt.a need only the C library, libm and pthreads: a program that embeds
 * a model links `libnnrt.a -lm -lpthread`. The trainer program's side
 * (command line, data sets, safetensors checkpoints, logs) is nnrt_host.h
 * and libnnrt-host.a; the scratch and geometry rules behind the workspace
 * functions below are nnrt_sizing.h.
 *
 * Conventions, fixed once for every kernel:
 *   - layouts are PyTorch's: activations NCHW (N batch, C channels, H height,
 *     W width); conv weight [K, C, R, S] (K out channels, R x S kernel);
 *     linear weight [OUT, IN]; everything float32, contiguous, row-major;
 *   - arguments: outputs first, then inputs, then weights, sizes last;
 *   - backward kernels ACCUMULATE (+=) into every gradient they write, so a
 *     value used twice gets the sum of its gradients, and the caller zeroes
 *     gradients once per step (one memset). The exceptions say so where they
 *     are declared: nnrt_linear_backward_first and nnrt_linear_backward_sgd
 *     assign dw and db; nnrt_relu_backward_assign assigns dx;
 *     nnrt_relu_backward_inplace rewrites its gradient in
 *     place; d->assign_dx (conv2d, batch norm) and d->assign (max-pool) make dx an
 *     assignment; nnrt_conv2d_backward_pooled writes its dy whole;
 *   - a NULL gradient pointer means "not needed" (e.g. dx of the network input);
 *   - kernels never fail (the compiler checked the shapes) and allocate only
 *     through nnrt_scratch (parallel.c, below): nothing when the model's
 *     workspace (nnrt_workspace_use) covers what they ask, else a buffer of
 *     the thread's own, allocated the first time a larger one is asked and
 *     kept. The first call that shares work between threads starts the
 *     thread pool. nnrt_alloc (the generated init's one block) exits with a
 *     message when memory runs out.
 */
#ifndef NNRT_H
#define NNRT_H

#include <stddef.h>
#include <stdint.h>

#define NNRT_VERSION "0.1.0"
#define NNRT_MAX_DIMS 8

typedef struct nnrt_rng { uint64_t s[4]; } nnrt_rng; /* xoshiro256** state (init.c) */

/* ---- conv2d.c: 2-D convolution (cross-correlation, as torch.nn.Conv2d) ---- */

/* Sizes of one conv2d call. Output size P = (H + 2*pad_h - dil_h*(R-1) - 1)/stride_h + 1,
 * Q likewise with W; the compiler computes P and Q and passes them. */
typedef struct nnrt_conv2d_dims {
    int N;                  /* batch */
    int C, H, W;            /* input channels, height, width */
    int K, R, S;            /* output channels, kernel height, kernel width */
    int P, Q;               /* output height, width */
    int stride_h, stride_w; /* >= 1 */
    int pad_h, pad_w;       /* zero padding on each side, >= 0 */
    int dil_h, dil_w;       /* dilation, >= 1 */
    int groups;             /* C and K divisible by groups; weight is [K, C/groups, R, S] */
    int relu;               /* forward: 1 applies a ReLU to y (a ReLU fused into the convolution) */
    int pooled;             /* backward: 1 when called as nnrt_conv2d_backward_pooled (its scratch differs) */
    int assign_dx;          /* backward: dx = the gradient, not dx += (dx need not be zeroed) */
    int defer_dw;           /* backward: may leave d weight and d bias running on a worker
                             * (nnrt_spawn) when it returns, until nnrt_join; what they read
                             * (x, dy; pooled: pdy and the choices) must not change until then */
} nnrt_conv2d_dims;
/* d with batch N: a generated model keeps each layer's dims in one constant,
 * at batch 0, and gives it each call's batch */
static inline nnrt_conv2d_dims nnrt_conv2d_batch(nnrt_conv2d_dims d, int N)
{
    d.N = N;
    return d;
}

/* y[N,K,P,Q] = conv(x[N,C,H,W], w[K,C/g,R,S]) + b[K], then max(y, 0) if d->relu;
 * b may be NULL (no bias) */
void nnrt_conv2d_forward(float *y, const float *x, const float *w, const float *b,
                         const nnrt_conv2d_dims *d);
/* dx[N,C,H,W] += ..., dw[K,C/g,R,S] += ..., db[K] += sum of dy; any of dx, dw, db may be NULL */
void nnrt_conv2d_backward(float *dx, float *dw, float *db, const float *dy,
                          const float *x, const float *w, const nnrt_conv2d_dims *d);

/* ---- pool.c: 2-D max and average pooling (torch.nn.MaxPool2d, AvgPool2d) ---- */

typedef struct nnrt_pool2d_dims {
    int N, C, H, W;         /* input */
    int P, Q;               /* output height, width */
    int kh, kw;             /* window */
    int stride_h, stride_w;
    int pad_h, pad_w;       /* implicit padding: -inf for max, zeros for average */
    int count_include_pad;  /* avgpool: divide by the window size including padding (PyTorch's default 1) */
    int relu;               /* maxpool backward: x is a ReLU's output and dx the gradient of the
                             * ReLU's input (the ReLU's backward folded in): a window whose
                             * maximum is not > 0 passes nothing */
    int assign;             /* maxpool backward: dx = the gradient, not dx += (dx need not be zeroed) */
} nnrt_pool2d_dims;
static inline nnrt_pool2d_dims nnrt_pool2d_batch(nnrt_pool2d_dims d, int N)  /* as nnrt_conv2d_batch */
{
    d.N = N;
    return d;
}
/* P and Q come from the compiler, in floor or ceil mode as PyTorch computes
 * them; a window that runs past the padded input is clipped (ceil_mode). */

/* y[N,C,P,Q] = max over each window of x[N,C,H,W] */
void nnrt_maxpool2d_forward(float *y, const float *x, const nnrt_pool2d_dims *d);
/* dx[N,C,H,W] += dy routed to the first maximum of each window (of several
 * NaNs, the last: PyTorch's choice), where that maximum is > 0 if d->relu;
 * the maximum is found again from x (nnrt_maxpool2d_forward_argmax below
 * keeps it instead) */
void nnrt_maxpool2d_backward(float *dx, const float *dy, const float *x,
                             const nnrt_pool2d_dims *d);

/* The same, keeping each window's choice in arg[N,C,P,Q], one byte per
 * window: the position of its maximum in the window (row-major), or 255 when
 * the window passes no gradient (d->relu: x is a ReLU's output and the
 * maximum is not > 0). Windows of at most NNRT_ARGMAX_MAX pixels. */
enum { NNRT_ARGMAX_MAX = 254 };
void nnrt_maxpool2d_forward_argmax(float *y, unsigned char *arg, const float *x,
                                   const nnrt_pool2d_dims *d);
/* nnrt_maxpool2d_backward from those choices: x is not needed */
void nnrt_maxpool2d_backward_argmax(float *dx, const float *dy, const unsigned char *arg,
                                    const nnrt_pool2d_dims *d);

/* The backward of a convolution whose output only a max-pool reads (through
 * the convolution's fused ReLU, or directly), given the max-pool's output
 * gradient pdy and its choices arg: as
 *   nnrt_maxpool2d_backward_argmax(dy, pdy, arg, pd)   (pd->assign: dy written whole)
 *   nnrt_conv2d_backward(dx, dw, db, dy, x, w, d)
 * but without the buffer dy: the convolution computes each sample's dy
 * where it copies it anyway, or, for a 2x2 pool of stride 2 on a machine
 * with AVX-512 (conv2d_pooled.c), makes no dy at all and spreads each
 * window's gradient from its choice (other sums, other last bits). d->pooled
 * must be 1 (the scratch it plans). */
void nnrt_conv2d_backward_pooled(float *dx, float *dw, float *db, const float *pdy, const unsigned char *arg,
                                 const nnrt_pool2d_dims *pd, const float *x, const float *w,
                                 const nnrt_conv2d_dims *d);

/* y[N,C,P,Q] = mean of each window of x (torch.nn.AvgPool2d). The divisor is
 * the window clipped to the padded input if count_include_pad, else the
 * window clipped to the input itself. */
void nnrt_avgpool2d_forward(float *y, const float *x, const nnrt_pool2d_dims *d);
/* dx[N,C,H,W] += dy spread evenly over each window */
void nnrt_avgpool2d_backward(float *dx, const float *dy, const nnrt_pool2d_dims *d);

/* y[N,C,P,Q]: torch.nn.AdaptiveAvgPool2d((P, Q)): output cell (i, j) averages
 * rows floor(i*H/P) .. ceil((i+1)*H/P)-1 and likewise columns */
void nnrt_adaptive_avgpool2d_forward(float *y, const float *x, int N, int C, int H, int W, int P, int Q);
void nnrt_adaptive_avgpool2d_backward(float *dx, const float *dy, int N, int C, int H, int W, int P, int Q);

/* ---- activation.c: elementwise activations ---- */

/* y[n] = max(x[n], 0) */
void nnrt_relu_forward(float *y, const float *x, size_t n);
/* dx[n] += dy[n] where y[n] > 0 (y is relu's output) */
void nnrt_relu_backward(float *dx, const float *dy, const float *y, size_t n);
/* d[n] = y[n] > 0 ? d[n] : 0: relu's backward in place, for a ReLU whose output
 * is its input's memory (a ReLU fused into the convolution before it) */
void nnrt_relu_backward_inplace(float *d, const float *y, size_t n);
/* dx[n] = y[n] > 0 ? dy[n] : 0: as nnrt_relu_backward, assigning dx */
void nnrt_relu_backward_assign(float *dx, const float *dy, const float *y, size_t n);
/* y = x if x > 0 else slope * x; backward reads x */
void nnrt_leaky_relu_forward(float *y, const float *x, size_t n, float slope);
void nnrt_leaky_relu_backward(float *dx, const float *dy, const float *x, size_t n, float slope);
/* y = x if x > 0 else alpha * (exp(x) - 1) (F.elu); backward reads x:
 * dx += dy if x > 0 else dy * alpha * exp(x) */
void nnrt_elu_forward(float *y, const float *x, size_t n, float alpha);
void nnrt_elu_backward(float *dx, const float *dy, const float *x, size_t n, float alpha);
/* y = 1 / (1 + exp(-x)), computed without overflow; backward reads y: dx += dy * y * (1 - y) */
void nnrt_sigmoid_forward(float *y, const float *x, size_t n);
void nnrt_sigmoid_backward(float *dx, const float *dy, const float *y, size_t n);
/* y = tanh(x); backward reads y: dx += dy * (1 - y^2) */
void nnrt_tanh_forward(float *y, const float *x, size_t n);
void nnrt_tanh_backward(float *dx, const float *dy, const float *y, size_t n);
/* y = x * Phi(x) with the exact erf (PyTorch's default approximate='none'); backward reads x */
void nnrt_gelu_forward(float *y, const float *x, size_t n);
void nnrt_gelu_backward(float *dx, const float *dy, const float *x, size_t n);
/* y = x * sigmoid(x) (F.silu); backward reads x: dx += dy * s * (1 + x * (1 - s)) */
void nnrt_silu_forward(float *y, const float *x, size_t n);
void nnrt_silu_backward(float *dx, const float *dy, const float *x, size_t n);

/* ---- softmax.c: softmax and log-softmax along one dimension ----
 * The tensor is viewed as [outer, C, inner] and normalised over C (for
 * [N, C] logits: outer N, inner 1; for [N, C, H, W] along channels: inner H*W).
 * Numerically stable (the maximum is subtracted first). */
void nnrt_softmax_forward(float *y, const float *x, int outer, int C, int inner);
/* dx += y * (dy - sum_c dy * y); reads y */
void nnrt_softmax_backward(float *dx, const float *dy, const float *y, int outer, int C, int inner);
void nnrt_log_softmax_forward(float *y, const float *x, int outer, int C, int inner);
/* dx += dy - exp(y) * sum_c dy; reads y */
void nnrt_log_softmax_backward(float *dx, const float *dy, const float *y, int outer, int C, int inner);

/* ---- dropout.c: torch.nn.Dropout in training mode ----
 * mask[n] holds 0 or 1/(1-p) (so backward is dy * mask); the draws come from
 * r, so a run is deterministic under its seed. p in [0, 1); with p == 0 the
 * mask is all ones. In eval mode the compiler emits no call (y is x). */
void nnrt_dropout_forward(float *y, float *mask, const float *x, size_t n, float p, nnrt_rng *r);
void nnrt_dropout_backward(float *dx, const float *dy, const float *mask, size_t n);

/* ---- batchnorm.c: torch.nn.BatchNorm1d / BatchNorm2d ----
 * x is [N, C, HW] (HW = 1 for BatchNorm1d on [N, C]). */
typedef struct nnrt_bn_dims {
    int N, C, HW;
    float eps;              /* PyTorch default 1e-5 */
    float momentum;         /* PyTorch default 0.1: running = (1-m) running + m batch */
    int assign_dx;          /* backward: dx = the gradient, not dx += (dx need not be zeroed) */
} nnrt_bn_dims;
static inline nnrt_bn_dims nnrt_bn_batch(nnrt_bn_dims d, int N)  /* as nnrt_conv2d_batch */
{
    d.N = N;
    return d;
}
/* Training: normalises with the batch's mean and biased variance, keeps
 * mean[C] and invstd[C] = 1/sqrt(var + eps) for backward, and updates
 * running_mean and running_var (with the UNBIASED variance, as PyTorch).
 * gamma/beta may be NULL (affine=false). */
void nnrt_batchnorm_forward_train(float *y, float *mean, float *invstd, float *running_mean,
                                  float *running_var, const float *x, const float *gamma,
                                  const float *beta, const nnrt_bn_dims *d);
/* running_mean/running_var may be NULL (track_running_stats=False): not updated. */
/* Evaluation: normalises with the running statistics. */
void nnrt_batchnorm_forward_eval(float *y, const float *x, const float *gamma, const float *beta,
                                 const float *running_mean, const float *running_var,
                                 const nnrt_bn_dims *d);
/* Backward of the training forward: dx += ..., dgamma[C] += ..., dbeta[C] += ...;
 * dgamma/dbeta NULL when affine=false; reads x, mean, invstd, gamma */
void nnrt_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                             const float *mean, const float *invstd, const float *gamma,
                             const nnrt_bn_dims *d);

/* ---- tensor.c: merging values ---- */

/* y[n] = a[n] + b[n] (residual connections); backward is nnrt_accumulate on both */
void nnrt_add_forward(float *y, const float *a, const float *b, size_t n);
/* dx[n] += dy[n] */
void nnrt_accumulate(float *dx, const float *dy, size_t n);
/* concat along channels: x[N, Cx, inner] is copied into y[N, Cy, inner] at
 * channel offset c0 (one call per input); backward takes the slice back */
void nnrt_concat_forward(float *y, const float *x, int N, int Cx, int Cy, int c0, int inner);
void nnrt_concat_backward(float *dx, const float *dy, int N, int Cx, int Cy, int c0, int inner);

/* ---- linear.c: fully connected layer (torch.nn.Linear) ---- */

/* y[N,OUT] = x[N,IN] @ w[OUT,IN]^T + b[OUT]; b may be NULL */
void nnrt_linear_forward(float *y, const float *x, const float *w, const float *b,
                         int N, int IN, int OUT);
/* dx[N,IN] += dy @ w, dw[OUT,IN] += dy^T @ x, db[OUT] += sum_n dy; any may be NULL */
void nnrt_linear_backward(float *dx, float *dw, float *db, const float *dy,
                          const float *x, const float *w, int N, int IN, int OUT);
/* The same with dw and db assigned (=), not added: the first gradient after
 * a generated model's zero_grad, which only marks the gradients as zero */
void nnrt_linear_backward_first(float *dx, float *dw, float *db, const float *dy,
                                const float *x, const float *w, int N, int IN, int OUT);
/* nnrt_linear_backward_first, then nnrt_sgd_step(w, dw, OUT*IN, lr) and
 * (b, db, OUT, lr), the same bits; with one or two samples the update is
 * made as backward reads w, and dw and db are not written */
void nnrt_linear_backward_sgd(float *dx, float *dw, float *db, const float *dy, const float *x, float *w,
                              float *b, int N, int IN, int OUT, float lr);

/* ---- embedding.c: torch.nn.Embedding, and the positions 0..T-1 ----
 * Token ids arrive as floats: a generated model's input holds them so
 * (exactly, below 2^24). */

/* y[rows, D] = w[idx[r], :]. An id outside [0, num) (a caller's bug: the
 * trainer checks its data) gives a row of NaNs, which the NaN check names. */
void nnrt_embedding_forward(float *y, const float *idx, const float *w, int rows, int num, int D);
/* dw[idx[r], :] += dy[r, :]: rows of the same id add up in row order, the
 * same bits with any number of threads; ids outside [0, num) are skipped */
void nnrt_embedding_backward(float *dw, const float *dy, const float *idx, int rows, int num, int D);
/* y[N, T] = 0, 1, ..., T-1 in every sample (torch.arange(T), as ids) */
void nnrt_positions(float *y, int N, int T);

/* ---- layernorm.c: torch.nn.LayerNorm over the last dimension ---- */

/* y[rows, C] = (x - mean) * rstd * w + b, rstd = 1/sqrt(var + eps) with the
 * biased variance; w and b NULL: elementwise_affine=False. Saves mean[rows]
 * and rstd[rows] for the backward. */
void nnrt_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w,
                            const float *b, int rows, int C, float eps);
/* dx += d x, dw += sum over rows of dy * xhat, db += sum of dy; any may be
 * NULL (w NULL: no affine); the same bits with any number of threads */
void nnrt_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                             const float *mean, const float *rstd, const float *w, int rows, int C);

/* ---- attention.c: scaled dot-product attention over heads ----
 * qkv[N, T, 3C] holds q, k and v side by side along the last dimension (as
 * nanoGPT's c_attn makes them), each C = H * Dh wide, head h at columns
 * h*Dh of each. Per head, y = softmax(q k^T / sqrt(Dh), masked above the
 * diagonal when causal) v, the heads side by side in y[N, T, C] (as
 * F.scaled_dot_product_attention, then transpose(1, 2).view(N, T, C)).
 * att[N, H, T, T] keeps the probabilities for the backward (causal: 0 above
 * the diagonal). */
void nnrt_attention_forward(float *y, float *att, const float *qkv, int N, int T, int C, int H, int causal);
/* dqkv[N, T, 3C] += the gradient through y, from dy[N, T, C] */
void nnrt_attention_backward(float *dqkv, const float *dy, const float *att, const float *qkv, int N, int T,
                             int C, int H, int causal);

/* ---- lstm.c: torch.nn.LSTM (batch_first, one layer, zero initial state) ----
 * x[N, T, I] -> y[N, T, H], the hidden state at every step. The gates, in
 * PyTorch's order i, f, g, o: z = x_t w_ih^T + b_ih + h_{t-1} w_hh^T + b_hh
 * ([4H]); i, f, o = sigmoid, g = tanh; c_t = f c_{t-1} + i g; h_t = o tanh(c_t);
 * h_{-1} = c_{-1} = 0. w_ih [4H, I], w_hh [4H, H], b_ih and b_hh [4H] (NULL:
 * bias=False). saved[N, T, 5H] keeps the gates after their activations and
 * c_t for the backward. */
void nnrt_lstm_forward(float *y, float *saved, const float *x, const float *w_ih, const float *w_hh,
                       const float *b_ih, const float *b_hh, int N, int T, int I, int H);
/* Backward through time from dy[N, T, H]: dx += ..., dw_ih, dw_hh, db_ih,
 * db_hh += ... (any may be NULL); the same bits with any number of threads */
void nnrt_lstm_backward(float *dx, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh, const float *dy,
                        const float *x, const float *y, const float *saved, const float *w_ih, const float *w_hh,
                        int N, int T, int I, int H);

/* ---- loss.c: losses ----
 * Each forward returns the loss; each backward ACCUMULATES dloss * d loss / d y
 * into dy. reduction is NNRT_MEAN (PyTorch's default) or NNRT_SUM. */
enum { NNRT_MEAN = 0, NNRT_SUM = 1 };

/* returns mean((y - t)^2) over n elements (torch.nn.MSELoss()) */
float nnrt_mse_forward(const float *y, const float *t, size_t n);
/* dy[n] += dloss * 2 * (y - t) / n */
void nnrt_mse_backward(float *dy, const float *y, const float *t, size_t n, float dloss);
/* the same with a reduction: sum((y - t)^2), or its mean */
float nnrt_mse_forward_r(const float *y, const float *t, size_t n, int reduction);
void nnrt_mse_backward_r(float *dy, const float *y, const float *t, size_t n, float dloss, int reduction);
/* L1: |y - t|; d/dy = sign(y - t), with sign(0) = 0 as PyTorch */
float nnrt_l1_forward(const float *y, const float *t, size_t n, int reduction);
void nnrt_l1_backward(float *dy, const float *y, const float *t, size_t n, float dloss, int reduction);
/* Cross-entropy from logits x[N, C] and class indices t[N] (stored as float,
 * each in [0, C)): -log softmax(x)[n, t[n]], averaged over N or summed
 * (torch.nn.CrossEntropyLoss). Stable: log-sum-exp with the maximum taken out. */
float nnrt_cross_entropy_forward(const float *x, const float *t, int N, int C, int reduction);
/* dx += dloss * (softmax(x) - onehot(t)) (/ N for the mean) */
void nnrt_cross_entropy_backward(float *dx, const float *x, const float *t, int N, int C, float dloss,
                                 int reduction);
/* Negative log-likelihood of log-probabilities x[N, C] (torch.nn.NLLLoss) */
float nnrt_nll_forward(const float *x, const float *t, int N, int C, int reduction);
void nnrt_nll_backward(float *dx, const float *t, int N, int C, float dloss, int reduction);
/* Binary cross-entropy from logits, elementwise over n (torch.nn.BCEWithLogitsLoss):
 * max(x,0) - x*t + log(1 + exp(-|x|)); d/dx = sigmoid(x) - t */
float nnrt_bce_with_logits_forward(const float *x, const float *t, size_t n, int reduction);
void nnrt_bce_with_logits_backward(float *dx, const float *x, const float *t, size_t n, float dloss,
                                   int reduction);

/* ---- optim.c: optimizers ---- */

/* p[n] -= lr * g[n]  (torch.optim.SGD without momentum or weight decay) */
void nnrt_sgd_step(float *p, const float *g, size_t n, float lr);

/* torch.optim.SGD with every option, exactly as PyTorch 1.13 computes it:
 *   g' = g + weight_decay * p
 *   if momentum: buf = g' at the first step (step == 1), else
 *                buf = momentum * buf + (1 - dampening) * g';
 *                g' = nesterov ? g' + momentum * buf : buf
 *   p -= lr * g'
 * buf[n] is the momentum buffer (may be NULL when momentum == 0); g is not modified.
 * As in PyTorch, where the settings are Python floats: 1 - dampening is
 * computed in double, then rounded to float. */
typedef struct nnrt_sgd_opts {
    float momentum;
    double dampening;
    float weight_decay;
    int nesterov;
} nnrt_sgd_opts;
void nnrt_sgd_step_opts(float *p, const float *g, float *buf, size_t n, float lr,
                        const nnrt_sgd_opts *o, long step);

/* torch.optim.Adam (decoupled == 0) and torch.optim.AdamW (decoupled == 1),
 * PyTorch 1.13's formulas (amsgrad off), step counted from 1:
 *   Adam:  g' = g + wd * p;            AdamW: p *= 1 - lr * wd; g' = g
 *   m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2
 *   p -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps)
 * m[n], v[n] are the moment buffers (zero before the first step). As in
 * PyTorch, where the settings are Python floats: 1 - b1, 1 - b2, the bias
 * corrections, lr / (1 - b1^step) and AdamW's 1 - lr * wd are computed in
 * double, then rounded to float; b1, b2, eps and Adam's wd are floats. */
typedef struct nnrt_adam_opts {
    double beta1, beta2;
    float eps;
    double weight_decay;
    int decoupled;
} nnrt_adam_opts;
void nnrt_adam_step(float *p, const float *g, float *m, float *v, size_t n, float lr,
                    const nnrt_adam_opts *o, long step);

/* sqrt(sum g^2), accumulated in double (for clipping by global norm) */
float nnrt_grad_norm(const float *g, size_t n);
/* g[n] *= s */
void nnrt_scale(float *g, size_t n, float s);
/* torch.nn.utils.clip_grad_norm_(params, max_norm) on the gradient block g[n]:
 * coef = max_norm / (norm + 1e-6); if coef < 1, g *= coef. Returns the norm
 * (before clipping), as PyTorch does. */
float nnrt_clip_grad_norm(float *g, size_t n, float max_norm);
/* Learning-rate schedules, as a function of the epoch (0-based), PyTorch's
 * StepLR (lr * gamma^floor(epoch/step_size)) and CosineAnnealingLR (closed form:
 * eta_min + (lr - eta_min) * (1 + cos(pi * epoch / t_max)) / 2). */
float nnrt_lr_step(float lr, long epoch, long step_size, float gamma);
float nnrt_lr_cosine(float lr, long epoch, long t_max, float eta_min);
/* nanoGPT's get_lr, per step (0-based): lr * (step + 1) / (warmup + 1) for
 * step < warmup, then cosine from lr down to eta_min at step t_max, and
 * eta_min after it; t_max > warmup >= 0 */
float nnrt_lr_warmup_cosine(float lr, long step, long warmup, long t_max, float eta_min);

/* ---- init.c: a seeded, deterministic random generator and initialisers ---- */

void nnrt_rng_seed(nnrt_rng *r, uint64_t seed);
uint64_t nnrt_rng_next(nnrt_rng *r);
float nnrt_rng_uniform(nnrt_rng *r);        /* in [0, 1) */
float nnrt_rng_normal(nnrt_rng *r);         /* standard normal */
/* p[n] ~ U(-bound, bound): PyTorch's default for Conv2d and Linear is
 * bound = 1/sqrt(fan_in) for both weight (kaiming_uniform, a=sqrt(5)) and bias */
void nnrt_init_uniform(float *p, size_t n, float bound, nnrt_rng *r);
/* how a generated model's reset fills a tensor: nnrt_init_uniform, zeros,
 * ones, or N(0, bound^2) from nnrt_rng_normal */
enum { NNRT_INIT_UNIFORM, NNRT_INIT_ZERO, NNRT_INIT_ONE, NNRT_INIT_NORMAL };
void nnrt_fill_normal(float *p, size_t n, nnrt_rng *r);

/* ---- a named view of a tensor (a generated model's NAME_tensors fills
 * these: its state_dict, gradients and optimizer state) ---- */

typedef struct nnrt_tensor {
    const char *name;               /* "conv1.weight" */
    int ndim;
    int64_t shape[NNRT_MAX_DIMS];
    float *data;                    /* prod(shape) floats */
    int64_t *i64;                   /* or, data NULL, prod(shape) integers (a count:
                                     * steps, num_batches_tracked), saved as I64 */
} nnrt_tensor;
size_t nnrt_tensor_numel(const nnrt_tensor *t);     /* prod(shape) (alloc.c) */

/* ---- alloc.c: memory ---- */

/* zeroed, 64-byte aligned room for nfloats floats (release with free());
 * exits with a message naming what was being allocated if memory runs out */
void *nnrt_alloc(size_t nfloats, const char *what);
/* max |p[i]| (0 if n == 0), or NaN if any p[i] is NaN */
float nnrt_max_abs(const float *p, size_t n);

/* ---- parallel.c: the kernels' threads and scratch memory ----
 * Kernels split large work into tasks that run on a pool of threads (started
 * at first use) and give the same bits with any number of threads. */

/* Threads the kernels use, the caller included: NNRT_THREADS from the
 * environment, else one per online core, at most 64; nnrt_set_threads(n)
 * changes it (n clamped to 1 .. 64; 1 runs everything on the calling thread). Inside a task of
 * nnrt_parallel it is 1: a nested call runs on the task's thread. */
void nnrt_set_threads(int n);
int nnrt_threads(void);
/* Runs fn(ctx, task) for every task in [0, ntasks), on the calling thread and
 * the pool, and returns when all are done. Tasks must not depend on which
 * thread runs them or in what order. */
void nnrt_parallel(void (*fn)(void *ctx, int task), void *ctx, int ntasks);
/* The same, left running: the pool's workers take the tasks while the
 * caller goes on, until nnrt_join(), which runs the tasks no worker has
 * taken and returns when all are done. Returns 0 (and runs nothing) when no
 * worker is free: another job runs, one is left running already, or there is
 * one thread. fn and ctx must stay valid until the join, and what the tasks
 * read must not change before it. A later nnrt_parallel or nnrt_threads
 * joins first (one job at a time); a generated model's backward joins before
 * it returns. */
int nnrt_spawn(void (*fn)(void *ctx, int task), void *ctx, int ntasks);
void nnrt_join(void);
/* Memory the job left running reads and the caller writes after the join
 * (at most 4 ranges a job): the join takes its cache lines back for
 * writing (PREFETCHW), so that the caller's next stores to them do not each
 * wait for the worker's core to give them up. */
void nnrt_spawn_read(const void *p, size_t bytes);
/* 1 when this thread may spawn now: no job of its own left running, not
 * inside a task (so a caller may fill a spawn's ctx without touching a
 * running one's) */
int nnrt_can_spawn(void);
/* fn(ctx, lo, hi) over [0, n) cut into at most one range per thread, each of
 * at least grain elements (work with less runs here, in one call); for
 * elementwise work, whose result cannot depend on the cut. */
void nnrt_parallel_for(void (*fn)(void *ctx, size_t lo, size_t hi), void *ctx, size_t n,
                       size_t grain);
/* This thread's scratch buffer number slot (0 .. 3) of at least nfloats
 * floats, 64-byte aligned, contents undefined: from the workspace given to
 * nnrt_workspace_use when it holds that much, else from a buffer of the
 * thread's own (nnrt_alloc), allocated anew whenever a larger size is asked
 * and kept for later calls: the only allocation a kernel makes. With
 * NNRT_POISON_SCRATCH=1 in the environment (tests) the buffer is filled
 * with NaNs first. */
float *nnrt_scratch(int slot, size_t nfloats);

/* ---- sizing/workspace.c: the kernels' scratch memory, planned ----
 * The floats of each scratch slot the kernels of a model may ask for
 * (slots 0 and 3 on every thread, 1 and 2 on the calling thread): add each
 * layer with the functions below, then allocate nnrt_workspace_floats and
 * give it to nnrt_workspace_use (parallel.c). */
typedef struct nnrt_workspace {
    size_t slot[4];
} nnrt_workspace;
/* a conv2d layer's forward and backward, at any batch from 1 to d->N; dx, dw, db:
 * whether the backward computes them */
void nnrt_workspace_conv2d(nnrt_workspace *w, const nnrt_conv2d_dims *d, int dx, int dw, int db);
void nnrt_workspace_linear(nnrt_workspace *w, int N, int IN, int OUT);
/* an attention's forward and backward, at any batch from 1 to N */
void nnrt_workspace_attention(nnrt_workspace *w, int N, int T, int C, int H);
/* an LSTM's forward and backward, at any batch from 1 to N */
void nnrt_workspace_lstm(nnrt_workspace *w, int N, int T, int I, int H);
size_t nnrt_workspace_slot(const nnrt_workspace *w, int slot);
size_t nnrt_workspace_floats(const nnrt_workspace *w, int threads);
/* From now on, the calling thread and the first threads - 1 threads of the
 * pool take their scratch from mem (nnrt_workspace_floats(w, threads)
 * floats, 64-byte aligned); mem NULL: no workspace (back to the threads' own
 * buffers). One workspace at a time: the last model initialised. A request
 * larger than the workspace's slot falls back to the thread's own buffer
 * and is counted: nnrt_workspace_misses() returns how many since the
 * program started (0 when the plans are right). */
void nnrt_workspace_use(float *mem, const nnrt_workspace *w, int threads);
/* Stops using mem, if it is the workspace in use (a model being freed);
 * another model's workspace stays. */
void nnrt_workspace_release(const float *mem);
long nnrt_workspace_misses(void);

#endif /* NNRT_H */
