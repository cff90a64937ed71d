/* test_gelu.c — GELU's erf and exp (runtime/activation.c) against libm's
 * double erf and exp, densely: every 1e-4 in [-10, 10], magnitudes from
 * 1e-38 to 10 on a log scale, the points where the approximation changes
 * piece (|z| = 1, 4) and a few ulps around them, and the special values
 * (+-0, subnormals, FLT_MAX, +-inf, NaN).
 *
 * erf is checked in ulps of the float nearest the double result (what a
 * wrong coefficient moves first) and in absolute error; GELU's forward and
 * backward in absolute error scaled by max(1, |x|) (y = x Phi(x) carries
 * Phi's error times x), and at +-inf and NaN against what PyTorch's F.gelu
 * gives: gelu(inf) = inf, gelu(-inf) = NaN, the derivative NaN at both.
 * Built twice by tests/run.sh, like test_kernels.c: against build/libnnrt.a
 * and build/portable/libnnrt.a.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt.h"
#include "kernel_check.h"

/* activation.c: y[n] = erf(x[n]) by the arithmetic GELU uses (not in nnrt.h) */
void nnrt_erf_lanes(float *restrict y, const float *restrict x, size_t n);

/* the spacing of floats at |v| (at least the smallest subnormal's) */
static double ulp_at(double v)
{
    float f = fabsf((float)v);
    if (f >= FLT_MAX)
        return nextafterf(FLT_MAX, 0.0f) - FLT_MAX;
    return (double)nextafterf(f, INFINITY) - f;
}

/* the inputs: the dense sweep, the log sweep (both signs), and the ulps
 * around each piece's edge; returns how many (x has room for them) */
static size_t sweep_points(float *x, float scale)
{
    size_t n = 0;
    for (int i = -100000; i <= 100000; i++)
        x[n++] = (float)(i * 1e-4);
    for (int k = -3800; k <= 100; k++) {
        float v = (float)pow(10.0, k * 0.01);
        x[n++] = v;
        x[n++] = -v;
    }
    const float edges[] = {1.0f, 4.0f, 3.92f};
    for (int e = 0; e < 3; e++) {
        float v = edges[e] * scale;
        for (int u = 0; u < 8; u++) {
            x[n++] = v;
            x[n++] = -v;
            v = nextafterf(v, 0.0f);
        }
        v = edges[e] * scale;
        for (int u = 0; u < 8; u++) {
            v = nextafterf(v, INFINITY);
            x[n++] = v;
            x[n++] = -v;
        }
    }
    const float special[] = {0.0f, -0.0f, FLT_MIN, -FLT_MIN, 1e-40f, -1e-40f, 1e30f, -1e30f, FLT_MAX, -FLT_MAX};
    for (int s = 0; s < 10; s++)
        x[n++] = special[s];
    return n;
}

static void test_erf(void)
{
    float *x = alloc_floats(300000), *y = alloc_floats(300000);
    size_t n = sweep_points(x, 1.0f);
    nnrt_erf_lanes(y, x, n);
    double max_abs = 0, max_ulp = 0;
    for (size_t i = 0; i < n; i++) {
        double want = erf((double)x[i]), err = fabs(y[i] - want);
        max_abs = fmax(max_abs, err);
        max_ulp = fmax(max_ulp, err / ulp_at(want));
    }
    printf("     erf at %zu points: max error %.3g, %.3f ulp\n", n, max_abs, max_ulp);
    check("erf within 1e-6 of double erf", max_abs, 1e-6);
    check("erf within 1.5 ulps of double erf (in ulps)", max_ulp, 1.5);

    float xs[] = {INFINITY, -INFINITY, NAN, 0.0f, -0.0f}, ys[5];
    nnrt_erf_lanes(ys, xs, 5);
    int ok = ys[0] == 1.0f && ys[1] == -1.0f && isnan(ys[2]) && ys[3] == 0.0f && !signbit(ys[3]) &&
             ys[4] == 0.0f && signbit(ys[4]);
    check("erf(+-inf) = +-1, erf(NaN) = NaN, erf(+-0) = +-0", !ok, 0);
    free(x);
    free(y);
}

/* GELU's forward and derivative in double */
#define SQRT1_2 0.70710678118654752440
#define SQRT_2PI 2.50662827463100050242
static double gelu_ref(double x)
{
    return 0.5 * x * (1.0 + erf(x * SQRT1_2));
}

static double gelu_grad_ref(double x)
{
    return 0.5 * (1.0 + erf(x * SQRT1_2)) + x * exp(-0.5 * x * x) / SQRT_2PI;
}

static void test_gelu(void)
{
    float *x = alloc_floats(300000), *y = alloc_floats(300000), *dy = alloc_floats(300000);
    float *dx = alloc_floats(300000);
    size_t n = sweep_points(x, (float)(1.0 / SQRT1_2));
    for (size_t i = 0; i < n; i++)
        dy[i] = 1.0f;
    nnrt_gelu_forward(y, x, n);
    nnrt_gelu_backward(dx, dy, x, n);
    double fwd = 0, bwd = 0;
    for (size_t i = 0; i < n; i++) {
        double s = fmax(1.0, fabs(x[i]));
        if (isinf(x[i] * x[i]))     /* x^2 overflows in double too: the reference is NaN */
            continue;
        fwd = fmax(fwd, fabs(y[i] - gelu_ref(x[i])) / s);
        bwd = fmax(bwd, fabs(dx[i] - gelu_grad_ref(x[i])) / s);
    }
    check("gelu forward within 3e-7 max(1, |x|) of double", fwd, 3e-7);
    check("gelu backward within 3e-7 max(1, |x|) of double", bwd, 3e-7);

    /* PyTorch 1.13: F.gelu([inf, -inf, nan, 1e30, -1e30, 0]) = [inf, nan, nan, 1e30, 0, 0], its
     * gradient [nan, nan, nan, 1, 0, 0.5] */
    float xs[] = {INFINITY, -INFINITY, NAN, 1e30f, -1e30f, 0.0f}, ys[6], ones[6] = {1, 1, 1, 1, 1, 1};
    float gs[6] = {0};
    nnrt_gelu_forward(ys, xs, 6);
    nnrt_gelu_backward(gs, ones, xs, 6);
    int ok = ys[0] == INFINITY && isnan(ys[1]) && isnan(ys[2]) && ys[3] == 1e30f && ys[4] == 0.0f &&
             ys[5] == 0.0f;
    check("gelu at inf, -inf, NaN, +-1e30, 0 as PyTorch's", !ok, 0);
    ok = isnan(gs[0]) && isnan(gs[1]) && isnan(gs[2]) && gs[3] == 1.0f && gs[4] == 0.0f && gs[5] == 0.5f;
    check("gelu backward at inf, -inf, NaN, +-1e30, 0 as PyTorch's", !ok, 0);

    /* elementwise: one thread and four give the same bits */
    size_t m = 1 << 20;
    float *a = random_floats(m), *b = alloc_floats(m), *c = alloc_floats(m);
    for (size_t i = 0; i < m; i++)
        a[i] *= 8.0f;
    nnrt_set_threads(1);
    nnrt_gelu_forward(b, a, m);
    nnrt_set_threads(4);
    nnrt_gelu_forward(c, a, m);
    check("gelu forward: the same bits on 1 and 4 threads", memcmp(b, c, m * sizeof *b) != 0, 0);
    free(a);
    free(b);
    free(c);
    free(x);
    free(y);
    free(dy);
    free(dx);
}

int main(void)
{
    nnrt_rng_seed(&rng, 7);
    test_erf();
    test_gelu();
    if (failures) {
        printf("%d FAILED\n", failures);
        return 1;
    }
    printf("all gelu checks passed\n");
    return 0;
}
