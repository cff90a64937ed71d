/* activation.c — elementwise activations, forward and backward: ReLU, leaky
 * ReLU, ELU, sigmoid, tanh, GELU and SiLU (torch.nn.functional's).
 *
 * Each backward reads whichever of x or y makes it cheapest and exact.
 * ReLU, sigmoid and tanh read their OUTPUT y: their derivatives are simple
 * in y (y > 0; y(1 - y); 1 - y^2), and y is kept by the trainer anyway, so
 * they work computed in place (y == x). Leaky ReLU, ELU, GELU and SiLU read
 * their INPUT x: leaky ReLU's y loses the sign of x when slope is 0 or
 * negative, ELU's when alpha is, and GELU's and SiLU's derivatives are
 * functions of x.
 *
 * Every backward takes dx == NULL as "not needed" and accumulates into dx.
 * A NaN input gives a NaN output, as in PyTorch. One length n per call,
 * cut between the threads from EW_GRAIN elements (elementwise: the cut
 * cannot change a bit).
 */
#include <math.h>

#include "nnrt.h"

#include "kernel.h"

/* y[n] = max(x[n], 0); y may equal x (in place). A NaN stays NaN, as in
 * torch.relu. */
typedef struct ew_ctx {
    float *out;
    const float *a, *b;
    float p;                /* the activation's parameter (slope, alpha) */
} ew_ctx;

/* elementwise work is shared between threads from this many elements */
#define EW_GRAIN 32768

HOT static void relu_fwd_range(void *arg, size_t lo, size_t hi)
{
    const ew_ctx *c = arg;
    float *y = c->out;
    const float *x = c->a;
    for (size_t i = lo; i < hi; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

void nnrt_relu_forward(float *y, const float *x, size_t n)
{
    nnrt_parallel_for(relu_fwd_range, &(ew_ctx){y, x, NULL, 0}, n, EW_GRAIN);
}

HOT static void relu_bwd_range(void *arg, size_t lo, size_t hi)
{
    const ew_ctx *c = arg;
    float *restrict dx = c->out;
    const float *restrict dy = c->a, *restrict y = c->b;
    for (size_t i = lo; i < hi; i++) {
        float g = dy[i];        /* loaded always, so the select vectorises (no branch) */
        dx[i] += y[i] > 0.0f ? g : 0.0f;
    }
}

/* dx[n] += dy[n] where y[n] > 0, given y[n] = relu's output; dx may be NULL */
void nnrt_relu_backward(float *dx, const float *dy, const float *y, size_t n)
{
    if (dx)
        nnrt_parallel_for(relu_bwd_range, &(ew_ctx){dx, dy, y, 0}, n, EW_GRAIN);
}

HOT static void relu_assign_range(void *arg, size_t lo, size_t hi)
{
    const ew_ctx *c = arg;
    float *restrict dx = c->out;
    const float *restrict dy = c->a, *restrict y = c->b;
    for (size_t i = lo; i < hi; i++) {
        float g = dy[i];
        dx[i] = y[i] > 0.0f ? g : 0.0f;
    }
}

/* dx[n] = dy[n] where y[n] > 0, else 0: the backward of a ReLU that is the
 * only writer of its input's gradient (dx need not be zeroed) */
void nnrt_relu_backward_assign(float *dx, const float *dy, const float *y, size_t n)
{
    nnrt_parallel_for(relu_assign_range, &(ew_ctx){dx, dy, y, 0}, n, EW_GRAIN);
}

HOT static void relu_inplace_range(void *arg, size_t lo, size_t hi)
{
    const ew_ctx *c = arg;
    float *restrict d = c->out;
    const float *restrict y = c->a;
    for (size_t i = lo; i < hi; i++) {
        float g = d[i];
        d[i] = y[i] > 0.0f ? g : 0.0f;
    }
}

/* d[n] = y[n] > 0 ? d[n] : 0: the backward of a ReLU that works in place on
 * its input (its gradient is its input's gradient, masked) */
void nnrt_relu_backward_inplace(float *d, const float *y, size_t n)
{
    nnrt_parallel_for(relu_inplace_range, &(ew_ctx){d, y, NULL, 0}, n, EW_GRAIN);
}

/* y[n] = x[n] if x[n] > 0 else slope * x[n]  (F.leaky_relu, default slope 0.01);
 * backward reads x, so y may equal x only when no backward follows */
HOT static void leaky_fwd_range(void *arg, size_t lo, size_t hi)
{
    const ew_ctx *c = arg;
    float *y = c->out, slope = c->p;
    const float *x = c->a;
    for (size_t i = lo; i < hi; i++)
        y[i] = x[i] > 0.0f ? x[i] : slope * x[i];
}

void nnrt_leaky_relu_forward(float *y, const float *x, size_t n, float slope)
{
    nnrt_parallel_for(leaky_fwd_range, &(ew_ctx){y, x, NULL, slope}, n, EW_GRAIN);
}

/* dx[n] += dy[n] if x[n] > 0 else slope * dy[n]  (slope at 0, as PyTorch) */
HOT static void leaky_bwd_range(void *arg, size_t lo, size_t hi)
{
    const ew_ctx *c = arg;
    float *restrict dx = c->out, slope = c->p;
    const float *restrict dy = c->a, *restrict x = c->b;
    for (size_t i = lo; i < hi; i++) {
        float g = dy[i];
        dx[i] += x[i] > 0.0f ? g : slope * g;
    }
}

void nnrt_leaky_relu_backward(float *dx, const float *dy, const float *x, size_t n, float slope)
{
    if (dx)
        nnrt_parallel_for(leaky_bwd_range, &(ew_ctx){dx, dy, x, slope}, n, EW_GRAIN);
}

/* y[n] = x[n] if x[n] > 0 else alpha * (exp(x[n]) - 1)  (F.elu, default alpha
 * 1), exp(x) - 1 as expm1 (exact near 0); backward reads x, so y may equal x
 * only when no backward follows */
HOT static void elu_fwd_range(void *arg, size_t lo, size_t hi)
{
    const ew_ctx *c = arg;
    float *y = c->out, alpha = c->p;
    const float *x = c->a;
    for (size_t i = lo; i < hi; i++)
        y[i] = x[i] > 0.0f ? x[i] : alpha * expm1f(x[i]);
}

void nnrt_elu_forward(float *y, const float *x, size_t n, float alpha)
{
    nnrt_parallel_for(elu_fwd_range, &(ew_ctx){y, x, NULL, alpha}, n, EW_GRAIN);
}

/* dx[n] += dy[n] if x[n] > 0 else dy[n] * alpha * exp(x[n])  (alpha at 0, as PyTorch) */
HOT static void elu_bwd_range(void *arg, size_t lo, size_t hi)
{
    const ew_ctx *c = arg;
    float *restrict dx = c->out, alpha = c->p;
    const float *restrict dy = c->a, *restrict x = c->b;
    for (size_t i = lo; i < hi; i++)
        dx[i] += x[i] > 0.0f ? dy[i] : dy[i] * alpha * expf(x[i]);
}

void nnrt_elu_backward(float *dx, const float *dy, const float *x, size_t n, float alpha)
{
    if (dx)
        nnrt_parallel_for(elu_bwd_range, &(ew_ctx){dx, dy, x, alpha}, n, EW_GRAIN);
}

/* y[n] = 1 / (1 + exp(-x[n])); for x < 0 as exp(x) / (1 + exp(x)), so exp
 * never overflows and a very negative x gives a tiny y, not 0/inf */
HOT static void sigmoid_fwd_range(void *arg, size_t lo, size_t hi)
{
    const ew_ctx *c = arg;
    float *y = c->out;
    const float *x = c->a;
    for (size_t i = lo; i < hi; i++) {
        if (x[i] >= 0.0f) {
            y[i] = 1.0f / (1.0f + expf(-x[i]));
        } else {
            float e = expf(x[i]);
            y[i] = e / (1.0f + e);
        }
    }
}

void nnrt_sigmoid_forward(float *y, const float *x, size_t n)
{
    nnrt_parallel_for(sigmoid_fwd_range, &(ew_ctx){y, x, NULL, 0}, n, EW_GRAIN);
}

/* dx[n] += dy[n] * y[n] * (1 - y[n]), given y = sigmoid's output */
HOT static void sigmoid_bwd_range(void *arg, size_t lo, size_t hi)
{
    const ew_ctx *c = arg;
    float *restrict dx = c->out;
    const float *restrict dy = c->a, *restrict y = c->b;
    for (size_t i = lo; i < hi; i++)
        dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

void nnrt_sigmoid_backward(float *dx, const float *dy, const float *y, size_t n)
{
    if (dx)
        nnrt_parallel_for(sigmoid_bwd_range, &(ew_ctx){dx, dy, y, 0}, n, EW_GRAIN);
}

/* y[n] = tanh(x[n]) */
HOT static void tanh_fwd_range(void *arg, size_t lo, size_t hi)
{
    const ew_ctx *c = arg;
    for (size_t i = lo; i < hi; i++)
        c->out[i] = tanhf(c->a[i]);
}

void nnrt_tanh_forward(float *y, const float *x, size_t n)
{
    nnrt_parallel_for(tanh_fwd_range, &(ew_ctx){y, x, NULL, 0}, n, EW_GRAIN);
}

/* dx[n] += dy[n] * (1 - y[n]^2), given y = tanh's output */
HOT static void tanh_bwd_range(void *arg, size_t lo, size_t hi)
{
    const ew_ctx *c = arg;
    float *restrict dx = c->out;
    const float *restrict dy = c->a, *restrict y = c->b;
    for (size_t i = lo; i < hi; i++)
        dx[i] += dy[i] * (1.0f - y[i] * y[i]);
}

void nnrt_tanh_backward(float *dx, const float *dy, const float *y, size_t n)
{
    if (dx)
        nnrt_parallel_for(tanh_bwd_range, &(ew_ctx){dx, dy, y, 0}, n, EW_GRAIN);
}

/* y[n] = x * Phi(x) = x/2 * (1 + erf(x / sqrt 2))  (F.gelu, approximate='none');
 * backward reads x, so y may equal x only when no backward follows */
HOT static void gelu_fwd_range(void *arg, size_t lo, size_t hi)
{
    const ew_ctx *c = arg;
    const float rsqrt2 = 0.70710678118654752f;
    for (size_t i = lo; i < hi; i++)
        c->out[i] = 0.5f * c->a[i] * (1.0f + erff(c->a[i] * rsqrt2));
}

void nnrt_gelu_forward(float *y, const float *x, size_t n)
{
    nnrt_parallel_for(gelu_fwd_range, &(ew_ctx){y, x, NULL, 0}, n, EW_GRAIN);
}

/* dx[n] += dy[n] * (Phi(x) + x * phi(x)), phi(x) = exp(-x^2/2) / sqrt(2 pi) */
HOT static void gelu_bwd_range(void *arg, size_t lo, size_t hi)
{
    const ew_ctx *c = arg;
    float *restrict dx = c->out;
    const float *restrict dy = c->a, *restrict x = c->b;
    const float rsqrt2 = 0.70710678118654752f, rsqrt2pi = 0.39894228040143268f;
    for (size_t i = lo; i < hi; i++) {
        float cdf = 0.5f * (1.0f + erff(x[i] * rsqrt2));
        float pdf = rsqrt2pi * expf(-0.5f * x[i] * x[i]);
        dx[i] += dy[i] * (cdf + x[i] * pdf);
    }
}

void nnrt_gelu_backward(float *dx, const float *dy, const float *x, size_t n)
{
    if (dx)
        nnrt_parallel_for(gelu_bwd_range, &(ew_ctx){dx, dy, x, 0}, n, EW_GRAIN);
}

/* y[n] = x * sigmoid(x) = x / (1 + exp(-x))  (F.silu); backward reads x, so
 * y may equal x only when no backward follows */
HOT static void silu_fwd_range(void *arg, size_t lo, size_t hi)
{
    const ew_ctx *c = arg;
    for (size_t i = lo; i < hi; i++)
        c->out[i] = c->a[i] / (1.0f + expf(-c->a[i]));
}

void nnrt_silu_forward(float *y, const float *x, size_t n)
{
    nnrt_parallel_for(silu_fwd_range, &(ew_ctx){y, x, NULL, 0}, n, EW_GRAIN);
}

/* dx[n] += dy[n] * s * (1 + x * (1 - s)), s = sigmoid(x) */
HOT static void silu_bwd_range(void *arg, size_t lo, size_t hi)
{
    const ew_ctx *c = arg;
    float *restrict dx = c->out;
    const float *restrict dy = c->a, *restrict x = c->b;
    for (size_t i = lo; i < hi; i++) {
        float s = 1.0f / (1.0f + expf(-x[i]));
        dx[i] += dy[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

void nnrt_silu_backward(float *dx, const float *dy, const float *x, size_t n)
{
    if (dx)
        nnrt_parallel_for(silu_bwd_range, &(ew_ctx){dx, dy, x, 0}, n, EW_GRAIN);
}
