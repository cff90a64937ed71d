/* test_kernels.c — tests of the runtime's kernels, with no PyTorch needed.
 *
 * Three kinds of check, one line of output each ("ok   name (max err e)" or
 * "FAIL name ..."); the program exits 1 if any failed:
 *   1. forward on small cases worked out by hand, the expected numbers written
 *      literally below (with the arithmetic in comments), and forward on
 *      random cases against a slow reference written straight from the
 *      definition;
 *   2. backward against central finite differences of the scalar loss
 *      L = sum(y * r), r a fixed random projection, so dL/dy = r: for every
 *      input and parameter element, (L(p+eps) - L(p-eps)) / (2 eps) must match
 *      the analytic gradient within tol * max(1, |numeric|);
 *   3. backward accumulates (two calls give twice the gradient) and takes
 *      NULL for any gradient it is not asked for; the generator is
 *      deterministic and its normal samples have mean 0 and variance 1.
 *
 * Build (from the repository root):
 *   cc -std=c11 -Iruntime tests/runtime/test_kernels.c runtime/{conv2d,pool,
 *      activation,linear,loss,optim,init}.c -lm -o test_kernels
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt.h"

#define EPS 1e-3f       /* finite-difference step */
#define FD_TOL 1e-2     /* finite-difference tolerance, relative to max(1, |n|) */
#define EXACT_TOL 1e-5  /* hand-computed and reference comparisons */

static int failures;
static nnrt_rng rng;    /* every random test input comes from here, seed 1 */

/* ---- helpers ---- */

/* prints one result line; passes when err <= tol */
static void check(const char *name, double err, double tol)
{
    if (err <= tol) {
        printf("ok   %-50s (max err %.2e)\n", name, err);
    } else {
        printf("FAIL %-50s (max err %.2e > tol %.1e)\n", name, err, tol);
        failures++;
    }
}

/* max over i of |got[i] - want[i]| / max(1, |want[i]|) */
static double max_err(const float *got, const float *want, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)want[i]) / fmax(1.0, fabs((double)want[i]));
        if (!(e <= worst))      /* a NaN counts as the worst */
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

static float *alloc_floats(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "test_kernels: out of memory\n");
        exit(2);
    }
    return p;
}

/* n floats, uniform in [-1, 1) */
static float *random_floats(size_t n)
{
    float *p = alloc_floats(n);
    nnrt_init_uniform(p, n, 1.0f, &rng);
    return p;
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * (double)b[i];
    return s;
}

/* The finite-difference check: perturbs each p[i] by +-EPS, evaluates
 * loss(ctx) at both, and returns the worst relative error of analytic[i]
 * against the central difference. */
static double fd_error(double (*loss)(void *), void *ctx, float *p, size_t n,
                       const float *analytic)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        float p0 = p[i], hi = p0 + EPS, lo = p0 - EPS;
        p[i] = hi;
        double lhi = loss(ctx);
        p[i] = lo;
        double llo = loss(ctx);
        p[i] = p0;
        double num = (lhi - llo) / ((double)hi - (double)lo); /* the step actually taken */
        double e = fabs((double)analytic[i] - num) / fmax(1.0, fabs(num));
        if (!(e <= worst))
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

/* ---- 1. forward (and a little backward) on cases computed by hand ---- */

static void hand_conv2d(void)
{
    /* x = 1 2 3    w = 1  0    b = 0.5
     *     4 5 6       -1  2
     *     7 8 9 */
    const float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float w[4] = {1, 0, -1, 2};
    const float b[1] = {0.5f};
    float y[4];

    /* stride 1, no padding: P = Q = 2
     *   y00 = 1*1 + 0*2 - 1*4 + 2*5 + .5 = 7.5    y01 = 2 - 5 + 12 + .5 = 9.5
     *   y10 = 4 - 7 + 16 + .5 = 13.5              y11 = 5 - 8 + 18 + .5 = 15.5 */
    nnrt_conv2d_dims d = {.N = 1, .C = 1, .H = 3, .W = 3, .K = 1, .R = 2, .S = 2,
                          .P = 2, .Q = 2, .stride_h = 1, .stride_w = 1,
                          .pad_h = 0, .pad_w = 0, .dil_h = 1, .dil_w = 1, .groups = 1};
    nnrt_conv2d_forward(y, x, w, b, &d);
    check("conv2d forward 3x3 (*) 2x2 + bias", max_err(y, (float[]){7.5f, 9.5f, 13.5f, 15.5f}, 4),
          EXACT_TOL);

    /* backward with dy = all ones:
     *   db = 4;  dw[r][s] = sum of the 2x2 block of x at (r, s):
     *   dw = 1+2+4+5  2+3+5+6  = 12 16
     *        4+5+7+8  5+6+8+9    24 28
     *   dx[i][j] = sum of the taps of w that touch x[i][j]:
     *   dx = w00      w00+w01          w01      =  1  1  0
     *        w00+w10  w00+w01+w10+w11  w01+w11     0  2  2
     *        w10      w10+w11          w11        -1  1  2 */
    const float ones[4] = {1, 1, 1, 1};
    float dx[9] = {0}, dw[4] = {0}, db[1] = {0};
    nnrt_conv2d_backward(dx, dw, db, ones, x, w, &d);
    check("conv2d backward dx by hand", max_err(dx, (float[]){1, 1, 0, 0, 2, 2, -1, 1, 2}, 9),
          EXACT_TOL);
    check("conv2d backward dw by hand", max_err(dw, (float[]){12, 16, 24, 28}, 4), EXACT_TOL);
    check("conv2d backward db by hand", max_err(db, (float[]){4}, 1), EXACT_TOL);

    /* stride 2, padding 1, no bias: P = (3 + 2 - 1 - 1)/2 + 1 = 2; window of
     * (p, q) starts at x[2p-1][2q-1]:
     *   y00 = w11*x00 = 2                     y01 = w10*x01 + w11*x02 = -2 + 6 = 4
     *   y10 = w01*x10 + w11*x20 = 0 + 14      y11 = 5 + 0 - 8 + 18 = 15 */
    d.stride_h = d.stride_w = 2;
    d.pad_h = d.pad_w = 1;
    nnrt_conv2d_forward(y, x, w, NULL, &d);
    check("conv2d forward stride 2 pad 1", max_err(y, (float[]){2, 4, 14, 15}, 4), EXACT_TOL);

    /* dilation 2: the taps fall on the corners, P = Q = 1:
     *   y = 1*1 + 0*3 - 1*7 + 2*9 = 12 */
    d.stride_h = d.stride_w = 1;
    d.pad_h = d.pad_w = 0;
    d.dil_h = d.dil_w = 2;
    d.P = d.Q = 1;
    nnrt_conv2d_forward(y, x, w, NULL, &d);
    check("conv2d forward dilation 2", max_err(y, (float[]){12}, 1), EXACT_TOL);

    /* two channels x0 = [1 2], x1 = [3 4] (1x2 images), 1x1 kernels.
     * one output channel, w = [2, -1]:  y = 2*[1 2] - [3 4] = [-1 0];
     * groups 2, w = [10; 100], b = [1, -1]: each output sees only its own
     * channel: y0 = 10*[1 2] + 1 = [11 21], y1 = 100*[3 4] - 1 = [299 399] */
    const float x2[4] = {1, 2, 3, 4};
    nnrt_conv2d_dims d2 = {.N = 1, .C = 2, .H = 1, .W = 2, .K = 1, .R = 1, .S = 1,
                           .P = 1, .Q = 2, .stride_h = 1, .stride_w = 1,
                           .pad_h = 0, .pad_w = 0, .dil_h = 1, .dil_w = 1, .groups = 1};
    nnrt_conv2d_forward(y, x2, (float[]){2, -1}, NULL, &d2);
    check("conv2d forward sums channels", max_err(y, (float[]){-1, 0}, 2), EXACT_TOL);
    d2.K = 2;
    d2.groups = 2;
    nnrt_conv2d_forward(y, x2, (float[]){10, 100}, (float[]){1, -1}, &d2);
    check("conv2d forward groups 2", max_err(y, (float[]){11, 21, 299, 399}, 4), EXACT_TOL);
}

static void hand_maxpool2d(void)
{
    /* 2x2 windows, stride 2, with ties:
     *   x = 1 3 | 3  0     windows: {1 3 2 3} -> 3, first at (0,1)
     *       2 3 | 1  1              {3 0 1 1} -> 3 at (0,2)
     *       ----+-----              {5 5 5 4} -> 5, first at (2,0)
     *       5 5 | 0 -1              {0 -1 -2 -3} -> 0 at (2,2)
     *       5 4 |-2 -3
     * backward with dy = [1 2; 3 4] puts 1, 2, 3, 4 at those places. */
    const float x[16] = {1, 3, 3, 0, 2, 3, 1, 1, 5, 5, 0, -1, 5, 4, -2, -3};
    float y[4], dx[16] = {0};
    nnrt_pool2d_dims d = {.N = 1, .C = 1, .H = 4, .W = 4, .P = 2, .Q = 2, .kh = 2, .kw = 2,
                          .stride_h = 2, .stride_w = 2, .pad_h = 0, .pad_w = 0};
    nnrt_maxpool2d_forward(y, x, &d);
    check("maxpool2d forward 2x2 with ties", max_err(y, (float[]){3, 3, 5, 0}, 4), EXACT_TOL);
    nnrt_maxpool2d_backward(dx, (float[]){1, 2, 3, 4}, x, &d);
    check("maxpool2d backward to first maximum",
          max_err(dx, (float[]){0, 1, 2, 0, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 0, 0}, 16), EXACT_TOL);

    /* padding is -inf, not 0: all-negative x, 3x3 windows, stride 2, pad 1,
     * P = (3 + 2 - 3)/2 + 1 = 2; window (p, q) covers rows and columns
     * 2p-1 .. 2p+1, clipped to the image:
     *   x = -1 -2 -3    y00 = max{-1 -2 -4 -5} = -1   y01 = max{-2 -3 -5 -6} = -2
     *       -4 -5 -6    y10 = max{-4 -5 -7 -8} = -4   y11 = max{-5 -6 -8 -9} = -5
     *       -7 -8 -9    (zero padding would give 0 everywhere) */
    const float xn[9] = {-1, -2, -3, -4, -5, -6, -7, -8, -9};
    nnrt_pool2d_dims dn = {.N = 1, .C = 1, .H = 3, .W = 3, .P = 2, .Q = 2, .kh = 3, .kw = 3,
                           .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1};
    nnrt_maxpool2d_forward(y, xn, &dn);
    check("maxpool2d forward -inf padding", max_err(y, (float[]){-1, -2, -4, -5}, 4), EXACT_TOL);

    /* overlapping 1x3 windows, stride 1, pad 1 on a 1x4 row, Q = 4:
     *   x = [1 9 2 9]: windows {1 9} {1 9 2} {9 2 9} {2 9}, all max 9, at
     *   columns 1, 1, 1 (first of the tie), 3; dy = [1 2 3 4] gives
     *   dx = [0, 1+2+3, 0, 4] = [0 6 0 4] (the last maximum would give 3 and 7) */
    const float xr[4] = {1, 9, 2, 9};
    float dxr[4] = {0};
    nnrt_pool2d_dims dr = {.N = 1, .C = 1, .H = 1, .W = 4, .P = 1, .Q = 4, .kh = 1, .kw = 3,
                           .stride_h = 1, .stride_w = 1, .pad_h = 0, .pad_w = 1};
    nnrt_maxpool2d_forward(y, xr, &dr);
    check("maxpool2d forward overlapping windows", max_err(y, (float[]){9, 9, 9, 9}, 4), EXACT_TOL);
    nnrt_maxpool2d_backward(dxr, (float[]){1, 2, 3, 4}, xr, &dr);
    check("maxpool2d backward overlapping ties", max_err(dxr, (float[]){0, 6, 0, 4}, 4), EXACT_TOL);
}

static void hand_relu(void)
{
    /* y = max(x, 0); dx = dy where y > 0 (0 at x = 0, as PyTorch) */
    const float x[5] = {-2, -0.5f, 0, 0.5f, 3};
    float y[5], dx[5] = {0};
    nnrt_relu_forward(y, x, 5);
    check("relu forward", max_err(y, (float[]){0, 0, 0, 0.5f, 3}, 5), EXACT_TOL);
    nnrt_relu_backward(dx, (float[]){1, 2, 3, 4, 5}, y, 5);
    check("relu backward", max_err(dx, (float[]){0, 0, 0, 4, 5}, 5), EXACT_TOL);
}

static void hand_linear(void)
{
    /* x = [ 1 2 3]   w = [1 0 -1  ]   b = [0.5 -1]
     *     [-1 0 2]       [2 1  0.5]
     * y00 = 1 + 0 - 3 + .5 = -1.5        y01 = 2 + 2 + 1.5 - 1 = 4.5
     * y10 = -1 + 0 - 2 + .5 = -2.5       y11 = -2 + 0 + 1 - 1 = -2 */
    const float x[6] = {1, 2, 3, -1, 0, 2};
    const float w[6] = {1, 0, -1, 2, 1, 0.5f};
    const float b[2] = {0.5f, -1};
    float y[4];
    nnrt_linear_forward(y, x, w, b, 2, 3, 2);
    check("linear forward 2x3", max_err(y, (float[]){-1.5f, 4.5f, -2.5f, -2}, 4), EXACT_TOL);

    /* dy = [1 -1; 2 0.5]
     * dx0 = 1*w0 - 1*w1 = [-1 -1 -1.5]      dx1 = 2*w0 + .5*w1 = [3 .5 -1.75]
     * dw0 = 1*x0 + 2*x1 = [-1 2 7]          dw1 = -1*x0 + .5*x1 = [-1.5 -2 -2]
     * db = [1 + 2, -1 + .5] = [3 -0.5] */
    const float dy[4] = {1, -1, 2, 0.5f};
    float dx[6] = {0}, dw[6] = {0}, db[2] = {0};
    nnrt_linear_backward(dx, dw, db, dy, x, w, 2, 3, 2);
    check("linear backward dx by hand", max_err(dx, (float[]){-1, -1, -1.5f, 3, 0.5f, -1.75f}, 6),
          EXACT_TOL);
    check("linear backward dw by hand", max_err(dw, (float[]){-1, 2, 7, -1.5f, -2, -2}, 6),
          EXACT_TOL);
    check("linear backward db by hand", max_err(db, (float[]){3, -0.5f}, 2), EXACT_TOL);
}

static void hand_mse_sgd(void)
{
    /* y - t = [1 0 -2 -0.5]; squares 1 0 4 0.25, mean 5.25/4 = 1.3125;
     * dy = dloss * 2 (y - t)/4 = [1 0 -2 -0.5] for dloss = 2 */
    const float y[4] = {1, 2, 3, 4}, t[4] = {0, 2, 5, 4.5f};
    float loss = nnrt_mse_forward(y, t, 4);
    check("mse forward", max_err(&loss, (float[]){1.3125f}, 1), EXACT_TOL);
    float dy[4] = {0};
    nnrt_mse_backward(dy, y, t, 4, 2.0f);
    check("mse backward", max_err(dy, (float[]){1, 0, -2, -0.5f}, 4), EXACT_TOL);

    /* p -= 0.1 g: [1 - .05, 2 + .1, -3 - .2] */
    float p[3] = {1, 2, -3};
    nnrt_sgd_step(p, (float[]){0.5f, -1, 2}, 3, 0.1f);
    check("sgd step", max_err(p, (float[]){0.95f, 2.1f, -3.2f}, 3), EXACT_TOL);
}

/* ---- 2. backward against finite differences, forward against references ---- */

typedef struct conv_case {
    nnrt_conv2d_dims d;
    float *x, *w, *b, *y, *r;   /* b may be NULL; r is the projection, like y */
    size_t nx, nw, ny;
} conv_case;

static double conv_loss(void *ctx)
{
    conv_case *c = ctx;
    nnrt_conv2d_forward(c->y, c->x, c->w, c->b, &c->d);
    return dot(c->y, c->r, c->ny);
}

/* conv2d straight from the definition, one output at a time, in double */
static void conv_reference(float *y, const float *x, const float *w, const float *b,
                           const nnrt_conv2d_dims *d)
{
    int Cg = d->C / d->groups, Kg = d->K / d->groups;
    for (int n = 0; n < d->N; n++)
        for (int k = 0; k < d->K; k++)
            for (int p = 0; p < d->P; p++)
                for (int q = 0; q < d->Q; q++) {
                    double sum = b ? b[k] : 0.0;
                    for (int c = 0; c < Cg; c++)
                        for (int r = 0; r < d->R; r++)
                            for (int s = 0; s < d->S; s++) {
                                int h = p * d->stride_h - d->pad_h + r * d->dil_h;
                                int v = q * d->stride_w - d->pad_w + s * d->dil_w;
                                if (h < 0 || h >= d->H || v < 0 || v >= d->W)
                                    continue;
                                int ci = (k / Kg) * Cg + c;
                                sum += w[((k * Cg + c) * d->R + r) * d->S + s] *
                                       (double)x[((n * d->C + ci) * d->H + h) * d->W + v];
                            }
                    y[((n * d->K + k) * d->P + p) * d->Q + q] = (float)sum;
                }
}

/* A random conv2d case of the given shape; P and Q are computed here. */
static conv_case conv_make(int N, int C, int H, int W, int K, int R, int S, int sh, int sw,
                           int ph, int pw, int dh, int dw, int groups, int bias)
{
    conv_case c = {.d = {.N = N, .C = C, .H = H, .W = W, .K = K, .R = R, .S = S,
                         .stride_h = sh, .stride_w = sw, .pad_h = ph, .pad_w = pw,
                         .dil_h = dh, .dil_w = dw, .groups = groups}};
    c.d.P = (H + 2 * ph - dh * (R - 1) - 1) / sh + 1;
    c.d.Q = (W + 2 * pw - dw * (S - 1) - 1) / sw + 1;
    c.nx = (size_t)N * C * H * W;
    c.nw = (size_t)K * (C / groups) * R * S;
    c.ny = (size_t)N * K * c.d.P * c.d.Q;
    c.x = random_floats(c.nx);
    c.w = random_floats(c.nw);
    c.b = bias ? random_floats(K) : NULL;
    c.y = alloc_floats(c.ny);
    c.r = random_floats(c.ny);
    return c;
}

static void conv_free(conv_case *c)
{
    free(c->x), free(c->w), free(c->b), free(c->y), free(c->r);
}

/* forward against conv_reference, then dx, dw, db against finite differences */
static void conv_grad(const char *name, int N, int C, int H, int W, int K, int R, int S,
                      int sh, int sw, int ph, int pw, int dh, int dw, int groups, int bias)
{
    char label[128];
    conv_case c = conv_make(N, C, H, W, K, R, S, sh, sw, ph, pw, dh, dw, groups, bias);
    float *want = alloc_floats(c.ny);
    float *gx = alloc_floats(c.nx), *gw = alloc_floats(c.nw), *gb = alloc_floats(K);

    nnrt_conv2d_forward(c.y, c.x, c.w, c.b, &c.d);
    conv_reference(want, c.x, c.w, c.b, &c.d);
    snprintf(label, sizeof label, "conv2d %s forward vs reference", name);
    check(label, max_err(c.y, want, c.ny), EXACT_TOL);

    nnrt_conv2d_backward(gx, gw, bias ? gb : NULL, c.r, c.x, c.w, &c.d);
    snprintf(label, sizeof label, "conv2d %s dx", name);
    check(label, fd_error(conv_loss, &c, c.x, c.nx, gx), FD_TOL);
    snprintf(label, sizeof label, "conv2d %s dw", name);
    check(label, fd_error(conv_loss, &c, c.w, c.nw, gw), FD_TOL);
    if (bias) {
        snprintf(label, sizeof label, "conv2d %s db", name);
        check(label, fd_error(conv_loss, &c, c.b, K, gb), FD_TOL);
    }
    free(want), free(gx), free(gw), free(gb);
    conv_free(&c);
}

typedef struct pool_case {
    nnrt_pool2d_dims d;
    float *x, *y, *r;
    size_t nx, ny;
} pool_case;

static double pool_loss(void *ctx)
{
    pool_case *c = ctx;
    nnrt_maxpool2d_forward(c->y, c->x, &c->d);
    return dot(c->y, c->r, c->ny);
}

/* max pooling from the definition: every window position, padding skipped */
static void pool_reference(float *y, const float *x, const nnrt_pool2d_dims *d)
{
    for (int nc = 0; nc < d->N * d->C; nc++)
        for (int p = 0; p < d->P; p++)
            for (int q = 0; q < d->Q; q++) {
                float m = -INFINITY;
                for (int i = 0; i < d->kh; i++)
                    for (int j = 0; j < d->kw; j++) {
                        int h = p * d->stride_h - d->pad_h + i;
                        int v = q * d->stride_w - d->pad_w + j;
                        if (h >= 0 && h < d->H && v >= 0 && v < d->W)
                            m = fmaxf(m, x[(nc * d->H + h) * d->W + v]);
                    }
                y[(nc * d->P + p) * d->Q + q] = m;
            }
}

/* A random pooling case whose inputs are all distinct, at least 0.01 apart,
 * so that a step of EPS never changes which element is a window's maximum. */
static pool_case pool_make(int N, int C, int H, int W, int kh, int kw, int sh, int sw,
                           int ph, int pw)
{
    pool_case c = {.d = {.N = N, .C = C, .H = H, .W = W, .kh = kh, .kw = kw,
                         .stride_h = sh, .stride_w = sw, .pad_h = ph, .pad_w = pw}};
    c.d.P = (H + 2 * ph - kh) / sh + 1;
    c.d.Q = (W + 2 * pw - kw) / sw + 1;
    c.nx = (size_t)N * C * H * W;
    c.ny = (size_t)N * C * c.d.P * c.d.Q;
    c.x = alloc_floats(c.nx);
    for (size_t i = 0; i < c.nx; i++)
        c.x[i] = 0.01f * (float)i - 0.005f * (float)c.nx;   /* some negative */
    for (size_t i = c.nx - 1; i > 0; i--) {                  /* Fisher-Yates shuffle */
        size_t j = (size_t)(nnrt_rng_next(&rng) % (i + 1));
        float t = c.x[i];
        c.x[i] = c.x[j];
        c.x[j] = t;
    }
    c.y = alloc_floats(c.ny);
    c.r = random_floats(c.ny);
    return c;
}

static void pool_grad(const char *name, int N, int C, int H, int W, int kh, int kw,
                      int sh, int sw, int ph, int pw)
{
    char label[128];
    pool_case c = pool_make(N, C, H, W, kh, kw, sh, sw, ph, pw);
    float *want = alloc_floats(c.ny), *gx = alloc_floats(c.nx);

    nnrt_maxpool2d_forward(c.y, c.x, &c.d);
    pool_reference(want, c.x, &c.d);
    snprintf(label, sizeof label, "maxpool2d %s forward vs reference", name);
    check(label, max_err(c.y, want, c.ny), EXACT_TOL);

    nnrt_maxpool2d_backward(gx, c.r, c.x, &c.d);
    snprintf(label, sizeof label, "maxpool2d %s dx", name);
    check(label, fd_error(pool_loss, &c, c.x, c.nx, gx), FD_TOL);
    free(want), free(gx), free(c.x), free(c.y), free(c.r);
}

typedef struct linear_case {
    int N, IN, OUT;
    float *x, *w, *b, *y, *r;   /* b may be NULL */
} linear_case;

static double linear_loss(void *ctx)
{
    linear_case *c = ctx;
    nnrt_linear_forward(c->y, c->x, c->w, c->b, c->N, c->IN, c->OUT);
    return dot(c->y, c->r, (size_t)c->N * c->OUT);
}

static void linear_grad(const char *name, int N, int IN, int OUT, int bias)
{
    char label[128];
    linear_case c = {N, IN, OUT, random_floats((size_t)N * IN), random_floats((size_t)OUT * IN),
                     bias ? random_floats(OUT) : NULL, alloc_floats((size_t)N * OUT),
                     random_floats((size_t)N * OUT)};
    float *gx = alloc_floats((size_t)N * IN), *gw = alloc_floats((size_t)OUT * IN);
    float *gb = alloc_floats(OUT);

    nnrt_linear_backward(gx, gw, bias ? gb : NULL, c.r, c.x, c.w, N, IN, OUT);
    snprintf(label, sizeof label, "linear %s dx", name);
    check(label, fd_error(linear_loss, &c, c.x, (size_t)N * IN, gx), FD_TOL);
    snprintf(label, sizeof label, "linear %s dw", name);
    check(label, fd_error(linear_loss, &c, c.w, (size_t)OUT * IN, gw), FD_TOL);
    if (bias) {
        snprintf(label, sizeof label, "linear %s db", name);
        check(label, fd_error(linear_loss, &c, c.b, OUT, gb), FD_TOL);
    }
    free(gx), free(gw), free(gb);
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.r);
}

typedef struct relu_case {
    size_t n;
    float *x, *y, *r;
} relu_case;

static double relu_loss(void *ctx)
{
    relu_case *c = ctx;
    nnrt_relu_forward(c->y, c->x, c->n);
    return dot(c->y, c->r, c->n);
}

static void relu_grad(void)
{
    /* inputs at least 0.05 away from the kink at 0 */
    relu_case c = {64, random_floats(64), alloc_floats(64), random_floats(64)};
    for (size_t i = 0; i < c.n; i++)
        c.x[i] += c.x[i] < 0 ? -0.05f : 0.05f;
    float *gx = alloc_floats(c.n);
    nnrt_relu_forward(c.y, c.x, c.n);
    nnrt_relu_backward(gx, c.r, c.y, c.n);
    check("relu dx", fd_error(relu_loss, &c, c.x, c.n, gx), FD_TOL);
    free(gx), free(c.x), free(c.y), free(c.r);
}

typedef struct mse_case {
    size_t n;
    float *y, *t;
    float dloss;
} mse_case;

static double mse_loss(void *ctx)
{
    mse_case *c = ctx;
    return (double)c->dloss * nnrt_mse_forward(c->y, c->t, c->n);
}

static void mse_grad(void)
{
    /* L = dloss * mse(y, t), so dL/dy is mse_backward's output for that dloss */
    mse_case c = {37, random_floats(37), random_floats(37), 0.7f};
    float *gy = alloc_floats(c.n);
    nnrt_mse_backward(gy, c.y, c.t, c.n, c.dloss);
    check("mse dy", fd_error(mse_loss, &c, c.y, c.n, gy), FD_TOL);
    free(gy), free(c.y), free(c.t);
}

/* ---- 3. accumulation, NULL gradients, the generator ---- */

/* after a second call, got must be twice once */
static double doubled_err(const float *got, const float *once, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - 2.0 * once[i]) / fmax(1.0, fabs(2.0 * once[i]));
        if (!(e <= worst))
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

static void accumulate_conv2d(void)
{
    conv_case c = conv_make(2, 4, 6, 5, 6, 3, 2, 2, 1, 1, 1, 1, 2, 2, 1);
    float *dx1 = alloc_floats(c.nx), *dw1 = alloc_floats(c.nw), *db1 = alloc_floats(6);
    float *dx2 = alloc_floats(c.nx), *dw2 = alloc_floats(c.nw), *db2 = alloc_floats(6);

    nnrt_conv2d_backward(dx1, dw1, db1, c.r, c.x, c.w, &c.d);
    nnrt_conv2d_backward(dx2, dw2, db2, c.r, c.x, c.w, &c.d);
    nnrt_conv2d_backward(dx2, dw2, db2, c.r, c.x, c.w, &c.d);
    double e = fmax(doubled_err(dx2, dx1, c.nx),
                    fmax(doubled_err(dw2, dw1, c.nw), doubled_err(db2, db1, 6)));
    check("conv2d backward accumulates", e, EXACT_TOL);

    /* each gradient alone, into zeroed buffers, must equal the full call's */
    memset(dx2, 0, c.nx * sizeof *dx2);
    memset(dw2, 0, c.nw * sizeof *dw2);
    memset(db2, 0, 6 * sizeof *db2);
    nnrt_conv2d_backward(dx2, NULL, NULL, c.r, c.x, c.w, &c.d);
    nnrt_conv2d_backward(NULL, dw2, NULL, c.r, c.x, c.w, &c.d);
    nnrt_conv2d_backward(NULL, NULL, db2, c.r, c.x, c.w, &c.d);
    nnrt_conv2d_backward(NULL, NULL, NULL, c.r, c.x, c.w, &c.d);
    e = fmax(max_err(dx2, dx1, c.nx), fmax(max_err(dw2, dw1, c.nw), max_err(db2, db1, 6)));
    check("conv2d backward NULL gradients", e, 0.0);

    free(dx1), free(dw1), free(db1), free(dx2), free(dw2), free(db2);
    conv_free(&c);
}

static void accumulate_maxpool2d(void)
{
    pool_case c = pool_make(2, 3, 7, 6, 3, 2, 2, 1, 1, 1);
    float *dx1 = alloc_floats(c.nx), *dx2 = alloc_floats(c.nx);
    nnrt_maxpool2d_backward(dx1, c.r, c.x, &c.d);
    nnrt_maxpool2d_backward(dx2, c.r, c.x, &c.d);
    nnrt_maxpool2d_backward(dx2, c.r, c.x, &c.d);
    nnrt_maxpool2d_backward(NULL, c.r, c.x, &c.d);
    check("maxpool2d backward accumulates, NULL dx", doubled_err(dx2, dx1, c.nx), EXACT_TOL);
    free(dx1), free(dx2), free(c.x), free(c.y), free(c.r);
}

static void accumulate_linear(void)
{
    enum { N = 3, IN = 5, OUT = 4 };
    float *x = random_floats(N * IN), *w = random_floats(OUT * IN), *dy = random_floats(N * OUT);
    float dx1[N * IN] = {0}, dw1[OUT * IN] = {0}, db1[OUT] = {0};
    float dx2[N * IN] = {0}, dw2[OUT * IN] = {0}, db2[OUT] = {0};

    nnrt_linear_backward(dx1, dw1, db1, dy, x, w, N, IN, OUT);
    nnrt_linear_backward(dx2, dw2, db2, dy, x, w, N, IN, OUT);
    nnrt_linear_backward(dx2, dw2, db2, dy, x, w, N, IN, OUT);
    double e = fmax(doubled_err(dx2, dx1, N * IN),
                    fmax(doubled_err(dw2, dw1, OUT * IN), doubled_err(db2, db1, OUT)));
    check("linear backward accumulates", e, EXACT_TOL);

    memset(dx2, 0, sizeof dx2);
    memset(dw2, 0, sizeof dw2);
    memset(db2, 0, sizeof db2);
    nnrt_linear_backward(dx2, NULL, NULL, dy, x, w, N, IN, OUT);
    nnrt_linear_backward(NULL, dw2, NULL, dy, x, w, N, IN, OUT);
    nnrt_linear_backward(NULL, NULL, db2, dy, x, w, N, IN, OUT);
    nnrt_linear_backward(NULL, NULL, NULL, dy, x, w, N, IN, OUT);
    e = fmax(max_err(dx2, dx1, N * IN), fmax(max_err(dw2, dw1, OUT * IN), max_err(db2, db1, OUT)));
    check("linear backward NULL gradients", e, 0.0);
    free(x), free(w), free(dy);
}

static void accumulate_relu_mse(void)
{
    enum { n = 20 };
    float *x = random_floats(n), *dy = random_floats(n), *t = random_floats(n);
    float y[n], dx1[n] = {0}, dx2[n] = {0};

    nnrt_relu_forward(y, x, n);
    nnrt_relu_backward(dx1, dy, y, n);
    nnrt_relu_backward(dx2, dy, y, n);
    nnrt_relu_backward(dx2, dy, y, n);
    nnrt_relu_backward(NULL, dy, y, n);
    check("relu backward accumulates, NULL dx", doubled_err(dx2, dx1, n), EXACT_TOL);

    memset(dx1, 0, sizeof dx1);
    memset(dx2, 0, sizeof dx2);
    nnrt_mse_backward(dx1, x, t, n, 1.0f);
    nnrt_mse_backward(dx2, x, t, n, 1.0f);
    nnrt_mse_backward(dx2, x, t, n, 1.0f);
    nnrt_mse_backward(NULL, x, t, n, 1.0f);
    check("mse backward accumulates, NULL dy", doubled_err(dx2, dx1, n), EXACT_TOL);
    free(x), free(dy), free(t);
}

static void test_rng(void)
{
    /* xoshiro256** from the state {1, 2, 3, 4}: the first outputs of the
     * authors' reference implementation */
    nnrt_rng r = {{1, 2, 3, 4}};
    const uint64_t ref[4] = {11520u, 0u, 1509978240u, 1215971899390074240u};
    int bad = 0;
    for (int i = 0; i < 4; i++)
        bad += nnrt_rng_next(&r) != ref[i];
    check("rng xoshiro256** reference outputs", bad, 0);

    /* seeding through splitmix64: splitmix64 from 0 first gives
     * 0xe220a8397b1dcdaf (its reference value); seed 42's first outputs,
     * from an independent implementation, pin the stream every model's
     * initial weights come from */
    nnrt_rng_seed(&r, 0);
    check("rng seed 0 state[0] is splitmix64(0)", r.s[0] != 0xe220a8397b1dcdafu, 0);
    nnrt_rng_seed(&r, 42);
    const uint64_t ref42[3] = {0x15780b2e0c2ec716u, 0x6104d9866d113a7eu, 0xae17533239e499a1u};
    bad = 0;
    for (int i = 0; i < 3; i++)
        bad += nnrt_rng_next(&r) != ref42[i];
    check("rng seed 42 reference outputs", bad, 0);

    /* and its first normals: Box-Muller on the uniforms 0.0839 (u1 = 1 - that)
     * and 0.3790, then 0.6800 and the next, ...: sqrt(-2 ln 0.9161) *
     * cos(2 pi 0.3790) = 0.4183 * -0.7250 = -0.3033 (the rest by the same
     * independent implementation) */
    nnrt_rng_seed(&r, 42);
    float z[4];
    nnrt_fill_normal(z, 4, &r);
    check("rng seed 42 first normals",
          max_err(z, (float[]){-0.303262988f, 1.34381167f, 0.383461426f, 0.936962256f}, 4),
          EXACT_TOL);

    /* the same seed gives the same numbers; another seed does not */
    enum { M = 1000 };
    static float a[M], b[M], c[M];
    nnrt_rng ra, rb, rc;
    nnrt_rng_seed(&ra, 7), nnrt_rng_seed(&rb, 7), nnrt_rng_seed(&rc, 8);
    nnrt_fill_normal(a, M, &ra);
    nnrt_fill_normal(b, M, &rb);
    nnrt_fill_normal(c, M, &rc);
    check("rng same seed, same normals", memcmp(a, b, sizeof a) != 0, 0);
    check("rng other seed, other normals", memcmp(a, c, sizeof a) == 0, 0);

    /* 100000 samples: uniform in [0, 1) with mean 1/2; normal with mean 0
     * and variance 1 (standard errors 0.003 and 0.0045, tolerances ~5x) */
    enum { D = 100000 };
    double su = 0, sn = 0, sn2 = 0;
    int outside = 0;
    nnrt_rng_seed(&r, 12345);
    for (int i = 0; i < D; i++) {
        float u = nnrt_rng_uniform(&r);
        outside += !(u >= 0.0f && u < 1.0f);
        su += u;
    }
    for (int i = 0; i < D; i++) {
        float z = nnrt_rng_normal(&r);
        outside += !isfinite(z);
        sn += z;
        sn2 += (double)z * z;
    }
    double mean = sn / D, var = sn2 / D - mean * mean;
    check("rng uniform in [0,1), normal finite", outside, 0);
    check("rng uniform mean 1/2", fabs(su / D - 0.5), 0.005);
    check("rng normal mean 0", fabs(mean), 0.015);
    check("rng normal variance 1", fabs(var - 1.0), 0.025);

    /* init_uniform: within [-bound, bound], variance bound^2 / 3 */
    static float p[D];
    const float bound = 0.25f;
    nnrt_init_uniform(p, D, bound, &r);
    double s = 0, s2 = 0;
    outside = 0;
    for (int i = 0; i < D; i++) {
        outside += !(p[i] >= -bound && p[i] <= bound);
        s += p[i];
        s2 += (double)p[i] * p[i];
    }
    check("init_uniform within bound", outside, 0);
    check("init_uniform mean 0", fabs(s / D), 0.005 * bound);
    check("init_uniform variance bound^2/3", fabs(s2 / D - bound * bound / 3.0), 0.01 * bound * bound);
}

int main(void)
{
    nnrt_rng_seed(&rng, 1);

    printf("-- forward, by hand --\n");
    hand_conv2d();
    hand_maxpool2d();
    hand_relu();
    hand_linear();
    hand_mse_sgd();

    printf("-- backward, by finite differences --\n");
    /*        name                   N  C  H  W  K  R  S sh sw ph pw dh dw  g bias */
    conv_grad("basic",               1, 1, 4, 4, 1, 2, 2, 1, 1, 0, 0, 1, 1, 1, 1);
    conv_grad("stride 2",            1, 2, 7, 7, 3, 3, 3, 2, 2, 0, 0, 1, 1, 1, 1);
    conv_grad("pad 1",               1, 2, 5, 5, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1);
    conv_grad("dilation 2",          1, 2, 7, 6, 2, 2, 3, 1, 1, 0, 0, 2, 2, 1, 1);
    conv_grad("groups 2",            1, 4, 5, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, 1);
    conv_grad("depthwise",           1, 3, 5, 4, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3, 1);
    conv_grad("no bias",             1, 3, 5, 5, 2, 3, 3, 1, 1, 0, 0, 1, 1, 1, 0);
    conv_grad("non-square",          1, 2, 6, 9, 3, 2, 4, 1, 1, 0, 0, 1, 1, 1, 1);
    conv_grad("batch 3",             3, 2, 5, 4, 2, 3, 2, 1, 1, 1, 0, 1, 1, 1, 1);
    conv_grad("pad > kernel",        1, 1, 2, 3, 2, 1, 2, 1, 1, 2, 3, 1, 1, 1, 1);
    conv_grad("all at once",         3, 4, 9, 7, 4, 3, 2, 2, 1, 1, 2, 2, 1, 2, 0);
    conv_grad("all at once 2",       3, 6, 8, 11, 4, 2, 3, 1, 3, 2, 1, 1, 2, 2, 1);

    /*        name                   N  C  H  W kh kw sh sw ph pw */
    pool_grad("2x2 stride 2",        1, 1, 4, 4, 2, 2, 2, 2, 0, 0);
    pool_grad("3x3 stride 2 pad 1",  3, 2, 7, 6, 3, 3, 2, 2, 1, 1);
    pool_grad("2x3 stride 1x2 pad 1",2, 3, 5, 8, 2, 3, 1, 2, 1, 1);
    pool_grad("2x2 stride 3",        1, 2, 8, 7, 2, 2, 3, 3, 0, 0);

    linear_grad("N=1",   1, 5, 3, 1);
    linear_grad("N=4",   4, 7, 2, 1);
    linear_grad("N=3 no bias", 3, 4, 5, 0);
    relu_grad();
    mse_grad();

    printf("-- accumulation, NULL gradients, random numbers --\n");
    accumulate_conv2d();
    accumulate_maxpool2d();
    accumulate_linear();
    accumulate_relu_mse();
    test_rng();

    if (failures) {
        printf("%d check%s FAILED\n", failures, failures == 1 ? "" : "s");
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
