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
 * A NaN input gives a NaN output, as in PyTorch. One length n per call.
 */
#include <math.h>

#include "nnrt.h"

#include "kernel.h"

/* y[n] = max(x[n], 0); y may equal x (in place). A NaN stays NaN, as in
 * torch.relu. */
typedef struct ew_ctx {
    float *out;
    const float *a, *b;
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
    nnrt_parallel_for(relu_fwd_range, &(ew_ctx){y, x, NULL}, n, EW_GRAIN);
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
        nnrt_parallel_for(relu_bwd_range, &(ew_ctx){dx, dy, y}, n, EW_GRAIN);
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
    nnrt_parallel_for(relu_inplace_range, &(ew_ctx){d, y, NULL}, n, EW_GRAIN);
}

/* y[n] = x[n] if x[n] > 0 else slope * x[n]  (F.leaky_relu, default slope 0.01);
 * backward reads x, so y may equal x only when no backward follows */
void nnrt_leaky_relu_forward(float *y, const float *x, size_t n, float slope)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : slope * x[i];
}

/* dx[n] += dy[n] if x[n] > 0 else slope * dy[n]  (slope at 0, as PyTorch) */
void nnrt_leaky_relu_backward(float *dx, const float *dy, const float *x, size_t n, float slope)
{
    if (!dx)
        return;
    for (size_t i = 0; i < n; i++)
        dx[i] += x[i] > 0.0f ? dy[i] : slope * dy[i];
}

/* y[n] = x[n] if x[n] > 0 else alpha * (exp(x[n]) - 1)  (F.elu, default alpha
 * 1), exp(x) - 1 as expm1 (exact near 0); backward reads x, so y may equal x
 * only when no backward follows */
void nnrt_elu_forward(float *y, const float *x, size_t n, float alpha)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] > 0.0f ? x[i] : alpha * expm1f(x[i]);
}

/* dx[n] += dy[n] if x[n] > 0 else dy[n] * alpha * exp(x[n])  (alpha at 0, as PyTorch) */
void nnrt_elu_backward(float *dx, const float *dy, const float *x, size_t n, float alpha)
{
    if (!dx)
        return;
    for (size_t i = 0; i < n; i++)
        dx[i] += x[i] > 0.0f ? dy[i] : dy[i] * alpha * expf(x[i]);
}

/* y[n] = 1 / (1 + exp(-x[n])); for x < 0 as exp(x) / (1 + exp(x)), so exp
 * never overflows and a very negative x gives a tiny y, not 0/inf */
void nnrt_sigmoid_forward(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (x[i] >= 0.0f) {
            y[i] = 1.0f / (1.0f + expf(-x[i]));
        } else {
            float e = expf(x[i]);
            y[i] = e / (1.0f + e);
        }
    }
}

/* dx[n] += dy[n] * y[n] * (1 - y[n]), given y = sigmoid's output */
void nnrt_sigmoid_backward(float *dx, const float *dy, const float *y, size_t n)
{
    if (!dx)
        return;
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

/* y[n] = tanh(x[n]) */
void nnrt_tanh_forward(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = tanhf(x[i]);
}

/* dx[n] += dy[n] * (1 - y[n]^2), given y = tanh's output */
void nnrt_tanh_backward(float *dx, const float *dy, const float *y, size_t n)
{
    if (!dx)
        return;
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i] * (1.0f - y[i] * y[i]);
}

/* y[n] = x * Phi(x) = x/2 * (1 + erf(x / sqrt 2))  (F.gelu, approximate='none');
 * backward reads x, so y may equal x only when no backward follows */
void nnrt_gelu_forward(float *y, const float *x, size_t n)
{
    const float rsqrt2 = 0.70710678118654752f;
    for (size_t i = 0; i < n; i++)
        y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * rsqrt2));
}

/* dx[n] += dy[n] * (Phi(x) + x * phi(x)), phi(x) = exp(-x^2/2) / sqrt(2 pi) */
void nnrt_gelu_backward(float *dx, const float *dy, const float *x, size_t n)
{
    if (!dx)
        return;
    const float rsqrt2 = 0.70710678118654752f, rsqrt2pi = 0.39894228040143268f;
    for (size_t i = 0; i < n; i++) {
        float cdf = 0.5f * (1.0f + erff(x[i] * rsqrt2));
        float pdf = rsqrt2pi * expf(-0.5f * x[i] * x[i]);
        dx[i] += dy[i] * (cdf + x[i] * pdf);
    }
}

/* y[n] = x * sigmoid(x) = x / (1 + exp(-x))  (F.silu); backward reads x, so
 * y may equal x only when no backward follows */
void nnrt_silu_forward(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] / (1.0f + expf(-x[i]));
}

/* dx[n] += dy[n] * s * (1 + x * (1 - s)), s = sigmoid(x) */
void nnrt_silu_backward(float *dx, const float *dy, const float *x, size_t n)
{
    if (!dx)
        return;
    for (size_t i = 0; i < n; i++) {
        float s = 1.0f / (1.0f + expf(-x[i]));
        dx[i] += dy[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}
