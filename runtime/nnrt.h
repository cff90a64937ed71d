/* nnrt.h — the nnc runtime: the kernels a generated trainer calls.
 *
 * nnc emits one C file per model; that file holds the model's shapes, its
 * memory layout and its training loop, and calls the functions declared here
 * for the arithmetic. Each layer family has a forward and a backward kernel,
 * side by side in one source file (conv2d.c, pool.c, ...).
 *
 * Conventions, fixed once for every kernel:
 *   - layouts are PyTorch's: activations NCHW (N batch, C channels, H height,
 *     W width); conv weight [K, C, R, S] (K out channels, R x S kernel);
 *     linear weight [OUT, IN]; everything float32, contiguous, row-major;
 *   - arguments: outputs first, then inputs, then weights, sizes last;
 *   - backward kernels ACCUMULATE (+=) into every gradient they write, so a
 *     value used twice gets the sum of its gradients; the caller zeroes
 *     gradients once per step (one memset);
 *   - a NULL gradient pointer means "not needed" (e.g. dx of the network input);
 *   - kernels never allocate and never fail; the compiler checked the shapes.
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

/* y[N,K,P,Q] = conv(x[N,C,H,W], w[K,C/g,R,S]) + b[K], then max(y, 0) if d->relu;
 * b may be NULL (no bias) */
void nnrt_conv2d_forward(float *y, const float *x, const float *w, const float *b,
                         const nnrt_conv2d_dims *d);
/* dx[N,C,H,W] += ..., dw[K,C/g,R,S] += ..., db[K] += sum of dy; any of dx, dw, db may be NULL */
void nnrt_conv2d_backward(float *dx, float *dw, float *db, const float *dy,
                          const float *x, const float *w, const nnrt_conv2d_dims *d);

/* ---- pool.c: 2-D max pooling (torch.nn.MaxPool2d, floor mode) ---- */

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
/* y = x if x > 0 else slope * x; backward reads x */
void nnrt_leaky_relu_forward(float *y, const float *x, size_t n, float slope);
void nnrt_leaky_relu_backward(float *dx, const float *dy, const float *x, size_t n, float slope);
/* y = 1 / (1 + exp(-x)), computed without overflow; backward reads y: dx += dy * y * (1 - y) */
void nnrt_sigmoid_forward(float *y, const float *x, size_t n);
void nnrt_sigmoid_backward(float *dx, const float *dy, const float *y, size_t n);
/* y = tanh(x); backward reads y: dx += dy * (1 - y^2) */
void nnrt_tanh_forward(float *y, const float *x, size_t n);
void nnrt_tanh_backward(float *dx, const float *dy, const float *y, size_t n);
/* y = x * Phi(x) with the exact erf (PyTorch's default approximate='none'); backward reads x */
void nnrt_gelu_forward(float *y, const float *x, size_t n);
void nnrt_gelu_backward(float *dx, const float *dy, const float *x, size_t n);

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
} nnrt_bn_dims;
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
 * buf[n] is the momentum buffer (may be NULL when momentum == 0); g is not modified. */
typedef struct nnrt_sgd_opts {
    float momentum, dampening, weight_decay;
    int nesterov;
} nnrt_sgd_opts;
void nnrt_sgd_step_opts(float *p, const float *g, float *buf, size_t n, float lr,
                        const nnrt_sgd_opts *o, long step);

/* torch.optim.Adam (decoupled == 0) and torch.optim.AdamW (decoupled == 1),
 * PyTorch 1.13's formulas (amsgrad off), step counted from 1:
 *   Adam:  g' = g + wd * p;            AdamW: p *= 1 - lr * wd; g' = g
 *   m = b1 m + (1 - b1) g';  v = b2 v + (1 - b2) g'^2
 *   p -= lr / (1 - b1^step) * m / (sqrt(v) / sqrt(1 - b2^step) + eps)
 * m[n], v[n] are the moment buffers (zero before the first step). */
typedef struct nnrt_adam_opts {
    float beta1, beta2, eps, weight_decay;
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

/* ---- init.c: a seeded, deterministic random generator and initialisers ---- */


void nnrt_rng_seed(nnrt_rng *r, uint64_t seed);
uint64_t nnrt_rng_next(nnrt_rng *r);
float nnrt_rng_uniform(nnrt_rng *r);        /* in [0, 1) */
float nnrt_rng_normal(nnrt_rng *r);         /* standard normal */
/* p[n] ~ U(-bound, bound): PyTorch's default for Conv2d and Linear is
 * bound = 1/sqrt(fan_in) for both weight (kaiming_uniform, a=sqrt(5)) and bias */
void nnrt_init_uniform(float *p, size_t n, float bound, nnrt_rng *r);
/* how a generated model's reset fills a tensor: nnrt_init_uniform, zeros, ones */
enum { NNRT_INIT_UNIFORM, NNRT_INIT_ZERO, NNRT_INIT_ONE };
void nnrt_fill_normal(float *p, size_t n, nnrt_rng *r);

/* ---- safetensors.c: weights in the safetensors format ----
 * File: 8-byte little-endian header length, a JSON header (written and read
 * with cJSON) mapping each tensor name to dtype, shape and data_offsets, then
 * the raw little-endian float32 data. Names are PyTorch's state_dict names. */

typedef struct nnrt_tensor {
    const char *name;               /* "conv1.weight" */
    int ndim;
    int64_t shape[NNRT_MAX_DIMS];
    float *data;                    /* prod(shape) floats */
} nnrt_tensor;

size_t nnrt_tensor_numel(const nnrt_tensor *t);

/* Writes the n tensors as F32, in the order given (and, if not NULL, string
 * metadata as "__metadata__": meta_keys[i] -> meta_vals[i], nmeta pairs) to
 * path atomically: a temporary file in the same directory, fsync, rename.
 * The previous file stays intact on any failure. Returns 0, or -1 with a
 * message in err naming the file and the reason. */
int nnrt_save_safetensors(const char *path, const nnrt_tensor *t, int n,
                          const char *const *meta_keys, const char *const *meta_vals,
                          int nmeta, char *err, size_t errlen);

/* An opened safetensors file, read whole into memory and checked entirely on
 * open. F64, F16 and BF16 tensors are converted to float32; the data of every
 * tensor is 64-byte aligned and owned by the nnrt_st_file. */
typedef struct nnrt_st_file nnrt_st_file;
/* NULL on error, with a message in err naming the file and the problem */
nnrt_st_file *nnrt_st_open(const char *path, char *err, size_t errlen);
/* the tensor called name, or NULL if the file has none or it is not a float
 * tensor (an integer or bool dtype) */
const nnrt_tensor *nnrt_st_get(const nnrt_st_file *f, const char *name);
int nnrt_st_count(const nnrt_st_file *f);
/* tensor i (0 <= i < count) in the header's order, or NULL; its data is NULL
 * if its dtype is not a float */
const nnrt_tensor *nnrt_st_at(const nnrt_st_file *f, int i);
/* the metadata value for key, or NULL */
const char *nnrt_st_meta(const nnrt_st_file *f, const char *key);
void nnrt_st_close(nnrt_st_file *f);

/* Loads every tensor of t[] (by name) from path, copying into t[i].data.
 * Refuses the file, changing nothing, if any tensor is missing, has another
 * shape or a non-float dtype, or if the file holds a tensor t[] lacks (a
 * checkpoint of another model); err then names every mismatch. Returns 0 or -1. */
int nnrt_load_safetensors(const char *path, const nnrt_tensor *t, int n,
                          char *err, size_t errlen);

/* ---- util.c: small helpers for generated trainers ---- */

/* zeroed, 64-byte aligned room for nfloats floats (release with free());
 * exits with a message naming what was being allocated if memory runs out */
void *nnrt_alloc(size_t nfloats, const char *what);
double nnrt_seconds(void);                   /* monotonic clock */
/* max |p[i]| (0 if n == 0), or NaN if any p[i] is NaN */
float nnrt_max_abs(const float *p, size_t n);

/* The trainer's command line (generated main() fills it with nnrt_parse_args). */
typedef struct nnrt_args {
    long steps;           /* --steps N    (default given by the model) */
    int batch;            /* --batch N    */
    float lr;             /* --lr X       */
    uint64_t seed;        /* --seed N     */
    const char *save;     /* --save FILE  */
    const char *load;     /* --load FILE  */
    const char *data;     /* --data FILE  safetensors with "input" [N,...] and "target" [N,...] */
    const char *dump;     /* --dump FILE  after training: output, loss, weights and gradients */
    long print_every;     /* --print-every N */
    int quiet;            /* --quiet */
    int nan_check;        /* --nan-check: check every layer's output at every step, stop at the first NaN or inf */
    /* The commands (train, eval, predict) and their flags. A command, when
     * there is one, is the first argument; it sets its own defaults (train:
     * --batch 64 --epochs 1, no step limit; every command: pad and index -1,
     * "not given"). */
    const char *command;  /* NULL (the tutorial's loop), "train", "eval" or "predict" */
    long epochs;          /* --epochs N */
    const char *test_data;/* --test-data SPEC */
    const char *resume;   /* --resume FILE   a checkpoint to continue from */
    const char *log;      /* --log FILE.csv  per-step loss and per-epoch metrics */
    int pad;              /* --pad N         zero pixels on each side of H and W; -1: not given */
    int normalize;        /* --normalize MEAN,STD given */
    float mean, std;      /* its values */
    long limit;           /* --limit N       only the first N samples (0: all) */
    long test_limit;      /* --test-limit N  likewise for the test set */
    long save_every;      /* --save-every N  also save a checkpoint every N steps (0: never) */
    long index;           /* --index N       predict sample N of an IDX file or data set; -1: not given */
    char **inputs;        /* predict's files (PGM or IDX): moved to the front of argv */
    int ninputs;
    int threads;          /* --threads N     kernel threads; 0: NNRT_THREADS, else one per core */
} nnrt_args;

/* Parses argv into a (which holds the defaults on entry); "--steps 10" and
 * "--steps=10" both work, and the string fields point into argv. On --help
 * (or -h) prints prog_doc, then the flags with the defaults from *a, and
 * exits 0; on a bad flag or value prints "<prog>: error: ..." to stderr and
 * exits 2. */
void nnrt_parse_args(nnrt_args *a, int argc, char **argv, const char *prog_doc);

/* ---- trainer.c: the trainer every generated program runs ---- */

/* A compiled model as the trainer sees it. The generated file fills one in
 * (static functions that forward to its NAME_* API) and calls
 * nnrt_train_main from its main(). Shapes are per sample. */
typedef struct nnrt_model {
    const char *name;               /* "lenet" */
    const char *source;             /* "models/lenet.nn" */
    const char *summary;            /* the summary table nnc printed */
    void *self;                     /* the model's state: a struct NAME */
    int in_ndim;
    int64_t in_shape[NNRT_MAX_DIMS];
    int out_ndim;
    int64_t out_shape[NNRT_MAX_DIMS];
    int target_ndim;                /* 0 when targets are class indices */
    int64_t target_shape[NNRT_MAX_DIMS];
    int classes;                    /* > 0: a target is a class index in [0, classes), stored as float */
    float lr;                       /* the model's learning rate */
    int ntensors;                   /* tensors of the state_dict: parameters, then buffers such as a
                                     * batch norm's running statistics; tensors(what 0) returns them all */
    int nstate;                     /* further tensors a checkpoint holds to resume training (optimizer
                                     * state, the step counter); not part of PyTorch's state_dict */
    void (*init)(void *self, int batch, uint64_t seed);
    void (*release)(void *self);
    void (*zero_grad)(void *self);
    float *(*forward)(void *self, const float *input, int n);   /* returns the output [n, out] */
    float (*loss)(void *self, const float *target);
    void (*backward)(void *self);
    void (*step)(void *self, float lr);
    /* backward, step and zero_grad in one call, the same bits (may be NULL) */
    void (*backward_step)(void *self, float lr);
    void (*set_training)(void *self, int training);             /* dropout, batch norm; may be NULL */
    /* fills t[] with views of the state_dict (what 0: ntensors of them), the
     * gradients of its parameters (what 1: at most ntensors, named "NAME.grad"),
     * or the checkpoint's further tensors (what 2: nstate); returns how many */
    int (*tensors)(void *self, nnrt_tensor *t, int what);
    /* the learning-rate schedule, applied per epoch by the trainer from the
     * base lr: NNRT_SCHED_NONE, _STEP (nnrt_lr_step) or _COSINE (nnrt_lr_cosine) */
    int schedule;
    long sched_step_size;           /* step: every this many epochs ... */
    float sched_gamma;              /* ... multiply by gamma */
    long sched_t_max;               /* cosine: period in epochs ... */
    float sched_eta_min;            /* ... and the lowest lr */
    int min_batch;                  /* the smallest batch that trains (2 with batchnorm1d on flat values) */
    /* NaN hunting: with the check on, forward tests every value it computes
     * and first_nonfinite names the first that held a NaN or an infinity
     * ("conv1 (line 12)"), or returns NULL */
    void (*set_nan_check)(void *self, int on);
    const char *(*first_nonfinite)(void *self);
} nnrt_model;
enum { NNRT_SCHED_NONE = 0, NNRT_SCHED_STEP = 1, NNRT_SCHED_COSINE = 2 };

/* Runs the trainer: parses argv, trains, saves. Returns the exit status. */
int nnrt_train_main(const nnrt_model *m, int argc, char **argv);

/* ---- data.c: data sets (IDX, CSV, safetensors, PGM) and their batches ----
 * A data set is read whole and checked before it is used; every error
 * message starts with the file's name. Bytes (IDX type 08, PGM with maxval
 * 255) stay bytes until a batch is made. */

typedef struct nnrt_dataset {
    char *path;                     /* the file of the samples, for messages */
    char *label_path;               /* the file of the labels, if another (IDX) */
    int64_t n;                      /* samples */
    int ndim;                       /* the shape of one sample: [28, 28] for MNIST */
    int64_t shape[NNRT_MAX_DIMS];
    size_t size;                    /* prod(shape) */
    unsigned char *u8;              /* [n, size] bytes, divided by 255 when batched; or NULL */
    float *f32;                     /* or [n, size] values, used as they are */
    int32_t *labels;                /* [n] class labels (>= 0), or NULL */
    int nclasses;                   /* 1 + the largest label */
    float *targets;                 /* [n, tsize] target values, or NULL */
    int tndim;                      /* the shape of one target */
    int64_t tshape[NNRT_MAX_DIMS];
    size_t tsize;
    nnrt_st_file *st;               /* a safetensors file that f32 and targets point into, or NULL */
} nnrt_dataset;

/* Images (an IDX file [N, ...], plain or gzip) and their labels (IDX [N];
 * labels may be NULL for images alone). */
int nnrt_data_idx(nnrt_dataset *d, const char *images, const char *labels, char *err, size_t errlen);
/* CSV, one sample a row: nfeatures numbers, then a label (class index) or
 * the targets. ntargets is 0 when the model takes class labels, else the
 * size of its target; with ntargets > 1 a row may hold a label instead
 * (one-hot encoded later). A first row that is not numbers is a header. */
int nnrt_data_csv(nnrt_dataset *d, const char *path, size_t nfeatures, size_t ntargets, char *err,
                  size_t errlen);
/* "input" [N, ...] and "target" [N] (class labels) or [N, ...] */
int nnrt_data_safetensors(nnrt_dataset *d, const char *path, char *err, size_t errlen);
/* A PGM image (P5 or P2): one sample [H, W], scaled to [0, 1] by its maxval. */
int nnrt_data_pgm(nnrt_dataset *d, const char *path, char *err, size_t errlen);
/* A data set named by a spec: mnist:DIR (the training files, or the test
 * files t10k-* if test), idx:IMAGES,LABELS, csv:FILE, or a file told by
 * its content (IDX images, PGM) or name (.csv, else safetensors). */
int nnrt_data_load(nnrt_dataset *d, const char *spec, int test, size_t nfeatures, size_t ntargets,
                   char *err, size_t errlen);
/* 1 if the spec names a test set too (mnist:DIR) */
int nnrt_data_spec_has_test(const char *spec);
void nnrt_data_free(nnrt_dataset *d);

/* What happens to a sample on its way to the model (see data.c). */
typedef struct nnrt_transform {
    int pad;                        /* zero pixels on each side of H and W, before scaling */
    float mean, std;                /* then (x - mean) / std; 0 and 1 for none */
} nnrt_transform;

/* 0 if d's samples, transformed, fit a model input of this shape: equal
 * but for leading 1s ([28, 28] fits [1, 28, 28]), or of the same size when
 * either is flat. Else -1, and err names the file, both shapes and, if one
 * fits, the --pad that would. */
int nnrt_data_fit(const nnrt_dataset *d, const nnrt_transform *tf, int ndim, const int64_t *shape,
                  char *err, size_t errlen);

/* How targets are made: the label as a float (models with classes), a
 * one-hot vector of tsize, or the data's target values. */
enum { NNRT_TARGET_CLASS = 1, NNRT_TARGET_ONEHOT = 2, NNRT_TARGET_VALUES = 3 };
/* The mode for a model with these classes (0: none) and target size, after
 * checking every label is in range; -1 with a message naming the file. */
int nnrt_data_targets_mode(const nnrt_dataset *d, int classes, size_t tsize, char *err, size_t errlen);

/* perm[n] = a permutation of 0..n-1 drawn from r (Fisher-Yates) */
void nnrt_shuffle(int64_t *perm, int64_t n, nnrt_rng *r);
/* The n samples idx[0..n) as a batch: x[n, in] transformed; t[n, ...] the
 * targets by mode (t may be NULL); labels[n] (may be NULL; -1 without labels). */
void nnrt_data_batch(float *x, float *t, int32_t *labels, const nnrt_dataset *d, const int64_t *idx,
                     int n, const nnrt_transform *tf, int mode, size_t tsize);

/* ---- parallel.c: the kernels' threads and scratch memory ----
 * Kernels split large work into tasks that run on a pool of threads (started
 * at first use) and give the same bits with any number of threads. */

/* Threads the kernels use, the caller included: NNRT_THREADS from the
 * environment, else one per online core; nnrt_set_threads(n) changes it
 * (n >= 1; 1 runs everything on the calling thread). Inside a task of
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
 * joins first (one job at a time); the generated trainer joins at the end of
 * its backward. */
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
 * thread's own, grown when a larger size is asked and kept. With
 * NNRT_POISON_SCRATCH=1 in the environment (tests) the buffer is filled
 * with NaNs first. */
float *nnrt_scratch(int slot, size_t nfloats);

/* ---- workspace.c: the kernels' scratch memory, planned ----
 * The floats of each scratch slot the kernels of a model may ask for
 * (slots 0 and 3 on every thread, 1 and 2 on the calling thread): add each
 * layer with the functions below, then allocate nnrt_workspace_floats and
 * give it to nnrt_workspace_use (parallel.c). */
typedef struct nnrt_workspace {
    size_t slot[4];
} nnrt_workspace;
/* a conv2d layer's forward and backward; dx, dw, db: whether the backward computes them */
void nnrt_workspace_conv2d(nnrt_workspace *w, const nnrt_conv2d_dims *d, int dx, int dw, int db);
void nnrt_workspace_linear(nnrt_workspace *w, int N, int IN, int OUT);
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
