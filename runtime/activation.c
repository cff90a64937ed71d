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
#include <string.h>

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

/* ---- GELU: erf and exp as arithmetic on float lanes ----
 * libm's erff and expf are calls, which keep a loop scalar; the helpers
 * below are multiply-adds, compares and selects only (no branch, no
 * table), so the loops that inline them vectorise. Their polynomials are
 * minimax fits (Remez exchange at 40 digits, mpmath), rounded to float:
 * for z = x / sqrt 2 and a = |z|,
 *   a < 1:  erf(z) = z P(z^2), P of degree 6 (relative error 1.2e-9);
 *   a >= 1: erfc(a) = exp(-a^2) R(a), R of degree 8 in t = (2a - 5) / 3
 *           over [1, 4], weighted by exp(-a^2) + 1e-4 (erfc's absolute
 *           error 8.3e-9); past 4, R(4) itself: 1 - erfc(a) rounds to
 *           1 there (erfc(4) = 1.5e-8 is under half an ulp of 1), and
 *           exp(-a^2) carries the tail to 0. Phi(x) = erfc(a) / 2 for
 *           x < 0 (no cancellation against 1), 1 - erfc(a) / 2 for x > 0;
 *   exp(t) = 2^n e^r, t = n ln 2 + r, |r| <= ln 2 / 2, e^r of degree 6
 *           (relative error 1.9e-9).
 * A NaN stays NaN through each (its compares are false, and the selects
 * are written so that false keeps it). At x = +-inf they give what
 * PyTorch's F.gelu gives: gelu(+inf) = inf, gelu(-inf) = -inf * 0 = NaN,
 * and NaN for the derivative at both (inf * pdf = inf * 0). */

/* c ? yes : no, as a blend of the bits. Not a ternary: GCC splits the path
 * of a ternary whose arm is a constant (a clamp) and folds the arithmetic
 * after it there, which leaves that arithmetic under a branch on the
 * other path; a loop with conditional float arithmetic that could trap
 * stays scalar without masked vector instructions (SSE2: the default
 * clone, the portable build) */
INLINE float select(int c, float yes, float no)
{
    unsigned m = -(unsigned)c, y, n;
    memcpy(&y, &yes, sizeof y);
    memcpy(&n, &no, sizeof n);
    y = (y & m) | (n & ~m);
    float r;
    memcpy(&r, &y, sizeof r);
    return r;
}

/* e^t for t <= 0: 0 below -87 (where 2^n would leave the normal floats),
 * NaN for NaN */
INLINE float exp_nonpos(float t)
{
    const float shift = 12582912.0f;    /* 1.5 * 2^23: adding it rounds to an integer n, kept in k's low bits */
    float tc = select(t < -87.0f, -87.0f, t);
    float k = tc * 1.44269504f + shift;
    float n = k - shift;
    float r = tc - n * 0.693359375f;    /* ln 2 = 0.693359375 - 2.12194440e-4: n * the first is exact */
    r = r + n * 2.12194440e-4f;
    float p = 1.38368460e-3f;
    p = p * r + 8.37481581e-3f;
    p = p * r + 4.16682256e-2f;
    p = p * r + 1.66664202e-1f;
    p = p * r + 4.99999921e-1f;
    p = p * r + 1.00000004e+0f;
    p = p * r + 1.00000000e+0f;
    unsigned kb, sb;
    memcpy(&kb, &k, sizeof kb);
    sb = (kb - 0x4b400000u + 127u) << 23;     /* 2^n: n + 127 in the exponent bits */
    float s;
    memcpy(&s, &sb, sizeof s);
    return select(t < -87.0f, 0.0f, p * s);
}

/* erf(z) for |z| < 1 */
INLINE float erf_small(float z)
{
    float u = z * z;
    float p = 7.85386148e-5f;
    p = p * u - 8.01019366e-4f;
    p = p * u + 5.18832769e-3f;
    p = p * u - 2.68538119e-2f;
    p = p * u + 1.12835851e-1f;
    p = p * u - 3.76126258e-1f;
    p = p * u + 1.28379166e-1f;         /* P's 1.12837917 less the 1 added as z: the last rounding is erf's */
    return z + z * p;
}

/* erfc(a) for a >= 1, given e = exp(-a^2) */
INLINE float erfc_large(float a, float e)
{
    float t = select(a > 4.0f, 4.0f, a) * (2.0f / 3.0f) - 5.0f / 3.0f;
    float p = 1.61922906e-3f;
    p = p * t - 1.20958059e-4f;
    p = p * t + 1.18894807e-3f;
    p = p * t - 7.12819180e-3f;
    p = p * t + 1.24013204e-2f;
    p = p * t - 2.64968023e-2f;
    p = p * t + 5.63192242e-2f;
    p = p * t - 1.11504446e-1f;
    p = p * t + 2.10804434e-1f;
    return e * p;
}

/* erf(z), by the pieces GELU uses */
INLINE float erf_lane(float z)
{
    float a = fabsf(z);
    float big = 1.0f - erfc_large(a, exp_nonpos(-z * z));
    return select(a < 1.0f, erf_small(z), select(z < 0.0f, -big, big));
}

/* Phi(x) = (1 + erf(x / sqrt 2)) / 2, given e = exp(-x^2 / 2) */
INLINE float gauss_cdf(float x, float e)
{
    float z = x * 0.70710678118654752f, a = fabsf(z);
    float h = 0.5f * erfc_large(a, e);
    return select(a < 1.0f, 0.5f + 0.5f * erf_small(z), select(z < 0.0f, h, 1.0f - h));
}

/* y[n] = erf(x[n]) as GELU computes it: not a kernel of nnrt.h, but
 * tests/runtime/test_gelu.c (which declares it) checks erf_lane with it */
HOT void nnrt_erf_lanes(float *restrict y, const float *restrict x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = erf_lane(x[i]);
}

/* y[n] = x * Phi(x) = x/2 * (1 + erf(x / sqrt 2))  (F.gelu, approximate='none');
 * backward reads x, so y may equal x only when no backward follows */
HOT static void gelu_fwd_range(void *arg, size_t lo, size_t hi)
{
    const ew_ctx *c = arg;
    float *y = c->out;
    const float *x = c->a;
    for (size_t i = lo; i < hi; i++) {
        float v = x[i];
        y[i] = v * gauss_cdf(v, exp_nonpos(-0.5f * v * v));
    }
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
    const float rsqrt2pi = 0.39894228040143268f;
    for (size_t i = lo; i < hi; i++) {
        float v = x[i], e = exp_nonpos(-0.5f * v * v);
        dx[i] += dy[i] * (gauss_cdf(v, e) + v * rsqrt2pi * e);
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
