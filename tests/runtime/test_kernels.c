/* test_kernels.c — tests of the runtime's kernels, with no PyTorch needed.
 *
 * Every kernel of runtime/nnrt.h is covered: conv2d, max/average/adaptive
 * pooling, the activations, (log-)softmax, dropout, batch norm, embedding,
 * layer norm, attention, the LSTM, add and concat, the losses, the optimizers,
 * clipping and the schedules.
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
 * Build (from the repository root, after make):
 *   cc -std=c11 -Iruntime tests/runtime/test_kernels.c build/libnnrt.a -lm -lpthread -o test_kernels
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt.h"
#include "kernel_check.h"

#define EPS 1e-3f       /* finite-difference step */
#define FD_TOL 1e-2     /* finite-difference tolerance, relative to max(1, |n|) */
#define EXACT_TOL 1e-5  /* hand-computed and reference comparisons */


/* ---- helpers ---- */

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

/* fd_error's check as one result line, "KERNEL CASE GRAD" (batchnorm [4,5] dx) */
static void fd_check(const char *kernel, const char *name, const char *grad, double (*loss)(void *), void *ctx,
                     float *p, size_t n, const float *analytic)
{
    char label[128];
    snprintf(label, sizeof label, "%s %s %s", kernel, name, grad);
    check(label, fd_error(loss, ctx, p, n, analytic), FD_TOL);
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

    /* windows of more pixels than a choice byte holds (NNRT_ARGMAX_MAX):
     * one 17x17 window (289 pixels) on a 17x17 plane whose maximum, 7, is
     * at position 255 (row 15, column 0: a byte's 255 means "no choice")
     * and then at 288 (the last pixel: a byte would wrap to 32); dy = 2 goes
     * there, with the ReLU folded in too (7 > 0) */
    float xb[289] = {0}, dxb[289], yb;
    nnrt_pool2d_dims db = {.N = 1, .C = 1, .H = 17, .W = 17, .P = 1, .Q = 1, .kh = 17, .kw = 17,
                           .stride_h = 17, .stride_w = 17};
    for (int at = 255, k = 0; k < 2; at = 288, k++) {
        memset(xb, 0, sizeof xb);
        xb[at] = 7.0f;
        for (db.relu = 0; db.relu < 2; db.relu++) {
            memset(dxb, 0, sizeof dxb);
            nnrt_maxpool2d_forward(&yb, xb, &db);
            nnrt_maxpool2d_backward(dxb, (float[]){2}, xb, &db);
            float want[289] = {0};
            want[at] = 2.0f;
            check("maxpool2d 289-pixel window: forward", yb == 7.0f ? 0.0 : 1.0, EXACT_TOL);
            check("maxpool2d 289-pixel window: backward to pixel 255 or 288", max_err(dxb, want, 289),
                  EXACT_TOL);
        }
    }
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

/* ---- 1b. the kernels of the operations issue, by hand ---- */

static void hand_avgpool2d(void)
{
    /* x[h][w] = 5h + w on a 5x5 image (0 .. 24); 3x3 windows, stride 2,
     * pad 1, ceil mode: P = Q = ceil((5 + 2 - 3)/2) + 1 = 3. Window (p, q)
     * covers rows and columns 2p-1 .. 2p+1, 2q-1 .. 2q+1; its sums are
     *   (0,0) 0+1+5+6 = 12              (0,1) 1+2+3+6+7+8 = 27       (0,2) 3+4+8+9 = 24
     *   (1,0) 5+6+10+11+15+16 = 63      (1,1) 6+7+8+11+...+18 = 108  (1,2) 8+9+13+14+18+19 = 81
     *   (2,0) 15+16+20+21 = 72          (2,1) 16+17+18+21+22+23 = 117 (2,2) 18+19+23+24 = 84
     * count_include_pad: each window lies inside the padded 7x7 image, so
     * all divide by 9. Without it, by the pixels inside the image: 4 6 4 /
     * 6 9 6 / 4 6 4. */
    float x[36], y[9];
    for (int i = 0; i < 36; i++)
        x[i] = (float)i;
    nnrt_pool2d_dims d = {.N = 1, .C = 1, .H = 5, .W = 5, .P = 3, .Q = 3, .kh = 3, .kw = 3,
                          .stride_h = 2, .stride_w = 2, .pad_h = 1, .pad_w = 1,
                          .count_include_pad = 1};
    nnrt_avgpool2d_forward(y, x, &d);
    check("avgpool2d ceil pad 1, count_include_pad",
          max_err(y, (float[]){12 / 9.f, 3, 24 / 9.f, 7, 12, 9, 8, 13, 84 / 9.f}, 9), EXACT_TOL);
    d.count_include_pad = 0;
    nnrt_avgpool2d_forward(y, x, &d);
    check("avgpool2d ceil pad 1, no count_include_pad",
          max_err(y, (float[]){3, 4.5f, 6, 10.5f, 12, 13.5f, 18, 19.5f, 21}, 9), EXACT_TOL);

    /* x[h][w] = 6h + w on 6x6, 3x3 windows, stride 2, no padding, ceil mode:
     * P = Q = ceil((6 - 3)/2) + 1 = 3, and the last windows (rows or columns
     * 4 .. 6) are clipped to 4 .. 5: divisors 9 9 6 / 9 9 6 / 6 6 4.
     *   (0,0) (0+1+2+6+7+8+12+13+14)/9 = 7     (0,2) (4+5+10+11+16+17)/6 = 10.5
     *   (2,2) (28+29+34+35)/4 = 31.5, the rest likewise.
     * Max pooling of the same windows takes each window's last pixel. */
    d = (nnrt_pool2d_dims){.N = 1, .C = 1, .H = 6, .W = 6, .P = 3, .Q = 3, .kh = 3, .kw = 3,
                           .stride_h = 2, .stride_w = 2, .count_include_pad = 1};
    nnrt_avgpool2d_forward(y, x, &d);
    check("avgpool2d ceil, clipped last window",
          max_err(y, (float[]){7, 9, 10.5f, 19, 21, 22.5f, 28, 30, 31.5f}, 9), EXACT_TOL);
    nnrt_maxpool2d_forward(y, x, &d);
    check("maxpool2d ceil, clipped last window",
          max_err(y, (float[]){14, 16, 17, 26, 28, 29, 32, 34, 35}, 9), EXACT_TOL);

    /* backward on 3x3, 2x2 windows, stride 2, ceil mode (P = Q = 2): the
     * windows hold 4, 2, 2 and 1 pixels; dy = [4 6; 8 5] spreads
     * 4/4 = 1, 6/2 = 3, 8/2 = 4, 5/1 = 5 over them:
     *   dx = 1 1 3
     *        1 1 3
     *        4 4 5 */
    float dx[9] = {0};
    d = (nnrt_pool2d_dims){.N = 1, .C = 1, .H = 3, .W = 3, .P = 2, .Q = 2, .kh = 2, .kw = 2,
                           .stride_h = 2, .stride_w = 2, .count_include_pad = 1};
    nnrt_avgpool2d_backward(dx, (float[]){4, 6, 8, 5}, &d);
    check("avgpool2d backward, clipped windows", max_err(dx, (float[]){1, 1, 3, 1, 1, 3, 4, 4, 5}, 9),
          EXACT_TOL);

    /* maxpool backward on the same windows of x = [1 5 2; 7 3 9; 4 8 6]:
     * maxima 7 at (1,0), 9 at (1,2), 8 at (2,1), 6 at (2,2); dy = [1 2; 3 4] */
    float dxm[9] = {0};
    nnrt_maxpool2d_backward(dxm, (float[]){1, 2, 3, 4}, (float[]){1, 5, 2, 7, 3, 9, 4, 8, 6}, &d);
    check("maxpool2d backward, clipped windows", max_err(dxm, (float[]){0, 0, 0, 1, 0, 2, 0, 3, 4}, 9),
          EXACT_TOL);
}

static void hand_adaptive_avgpool2d(void)
{
    /* x[h][w] = 5h + w on 3x5, output 2x3: rows floor(i*3/2) .. ceil((i+1)*3/2)-1
     * = {0,1}, {1,2}; columns floor(j*5/3) .. ceil((j+1)*5/3)-1 = {0,1}, {1,2,3}, {3,4}
     *   y00 = (0+1+5+6)/4 = 3      y01 = (1+2+3+6+7+8)/6 = 4.5       y02 = (3+4+8+9)/4 = 6
     *   y10 = (5+6+10+11)/4 = 8    y11 = (6+7+8+11+12+13)/6 = 9.5    y12 = (8+9+13+14)/4 = 11 */
    float x[15], y[6];
    for (int i = 0; i < 15; i++)
        x[i] = (float)i;
    nnrt_adaptive_avgpool2d_forward(y, x, 1, 1, 3, 5, 2, 3);
    check("adaptive_avgpool2d 3x5 -> 2x3", max_err(y, (float[]){3, 4.5f, 6, 8, 9.5f, 11}, 6),
          EXACT_TOL);

    /* backward, dy = ones: each pixel gets 1/size of every window holding it;
     * row 1 is in both row ranges (twice), column 1 in windows of 4 and 6
     * pixels (1/4 + 1/6), column 3 likewise:
     *   row 0 = [1/4, 1/4+1/6, 1/6, 1/6+1/4, 1/4], row 1 = 2 * row 0, row 2 = row 0 */
    float dx[15] = {0};
    const float a = 0.25f, b = 0.25f + 1.0f / 6, c = 1.0f / 6;
    nnrt_adaptive_avgpool2d_backward(dx, (float[]){1, 1, 1, 1, 1, 1}, 1, 1, 3, 5, 2, 3);
    check("adaptive_avgpool2d backward",
          max_err(dx, (float[]){a, b, c, b, a, 2 * a, 2 * b, 2 * c, 2 * b, 2 * a, a, b, c, b, a}, 15),
          EXACT_TOL);

    /* output larger than the input: 2 -> 3 columns, ranges {0}, {0,1}, {1}:
     * x = [2 4] gives [2, 3, 4] */
    nnrt_adaptive_avgpool2d_forward(y, (float[]){2, 4}, 1, 1, 1, 2, 1, 3);
    check("adaptive_avgpool2d 1x2 -> 1x3", max_err(y, (float[]){2, 3, 4}, 3), EXACT_TOL);
}

static void hand_activations(void)
{
    const float x[5] = {-2, -0.5f, 0, 0.5f, 3}, dy[5] = {1, 2, 3, 4, 5};
    float y[5], dx[5] = {0};

    /* leaky ReLU, slope 0.1: y = [-0.2 -0.05 0 0.5 3]; dx = dy * (1 or 0.1),
     * 0.1 at x = 0 as PyTorch */
    nnrt_leaky_relu_forward(y, x, 5, 0.1f);
    check("leaky_relu forward", max_err(y, (float[]){-0.2f, -0.05f, 0, 0.5f, 3}, 5), EXACT_TOL);
    nnrt_leaky_relu_backward(dx, dy, x, 5, 0.1f);
    check("leaky_relu backward", max_err(dx, (float[]){0.1f, 0.2f, 0.3f, 4, 5}, 5), EXACT_TOL);

    /* ELU, alpha 0.5: y = 0.5 (e^x - 1) = [-0.43233236 -0.19673467 0] for x <= 0,
     * x above; dx = dy * 0.5 e^x = [0.06766764 0.60653066 1.5] for x <= 0
     * (alpha at x = 0, as PyTorch), dy above */
    nnrt_elu_forward(y, x, 5, 0.5f);
    check("elu forward", max_err(y, (float[]){-0.4323323584f, -0.1967346701f, 0, 0.5f, 3}, 5), EXACT_TOL);
    memset(dx, 0, sizeof dx);
    nnrt_elu_backward(dx, dy, x, 5, 0.5f);
    check("elu backward", max_err(dx, (float[]){0.0676676416f, 0.6065306597f, 1.5f, 4, 5}, 5), EXACT_TOL);

    /* sigmoid: s(0) = 1/2, s(ln 3) = 3/4, s(-ln 3) = 1/4, and no overflow at
     * +-1000 (exp(1000) is inf in float): 1 and 0. dy = 1: dx = y (1 - y) =
     * [1/4, 3/16, 3/16, 0, 0] */
    const float ln3 = 1.0986122887f, xs[5] = {0, ln3, -ln3, 1000, -1000}, ones[5] = {1, 1, 1, 1, 1};
    float dxs[5] = {0};
    nnrt_sigmoid_forward(y, xs, 5);
    check("sigmoid forward, +-1000 without overflow",
          max_err(y, (float[]){0.5f, 0.75f, 0.25f, 1, 0}, 5), EXACT_TOL);
    nnrt_sigmoid_backward(dxs, ones, y, 5);
    check("sigmoid backward", max_err(dxs, (float[]){0.25f, 0.1875f, 0.1875f, 0, 0}, 5), EXACT_TOL);
    /* sigmoid(-100) = exp(-100)/(1 + exp(-100)) = 3.72e-44: tiny, not 0 */
    nnrt_sigmoid_forward(y, (float[]){-100}, 1);
    check("sigmoid(-100) is 3.72e-44", fabs(y[0] / 3.7200760e-44 - 1.0), 0.05);

    /* tanh(ln 2) = (2 - 1/2)/(2 + 1/2) = 0.6; 1 - y^2 = 0.64 */
    const float ln2 = 0.6931471806f;
    float dxt[4] = {0};
    nnrt_tanh_forward(y, (float[]){0, ln2, -ln2, 20}, 4);
    check("tanh forward", max_err(y, (float[]){0, 0.6f, -0.6f, 1}, 4), EXACT_TOL);
    nnrt_tanh_backward(dxt, ones, y, 4);
    check("tanh backward", max_err(dxt, (float[]){1, 0.64f, 0.64f, 0}, 4), EXACT_TOL);

    /* GELU: x Phi(x) with Phi(1) = 0.8413447461, Phi(2) = 0.9772498681,
     * phi(1) = 0.2419707245, phi(2) = 0.0539909665:
     *   y  = [0, 0.8413447, -(1 - 0.8413447), 2 * 0.9772499]
     *   dx = Phi + x phi = [0.5, 0.8413447 + 0.2419707, 0.1586553 - 0.2419707,
     *                       0.9772499 + 2 * 0.0539910] */
    float dxg[4] = {0};
    const float xg[4] = {0, 1, -1, 2};
    nnrt_gelu_forward(y, xg, 4);
    check("gelu forward (exact erf)",
          max_err(y, (float[]){0, 0.8413447461f, -0.1586552539f, 1.9544997361f}, 4), EXACT_TOL);
    nnrt_gelu_backward(dxg, ones, xg, 4);
    check("gelu backward",
          max_err(dxg, (float[]){0.5f, 1.0833154706f, -0.0833154706f, 1.0852318011f}, 4), EXACT_TOL);

    /* SiLU: x s(x) with s(1) = 0.7310585786, s(-1) = 0.2689414214,
     * s(2) = 0.8807970780:
     *   y  = [0, 0.7310586, -0.2689414, 1.7615942]
     *   dx = s (1 + x (1 - s)) = [0.5, 0.7310586 * 1.2689414,
     *                             0.2689414 * (1 - 0.7310586), 0.8807971 * 1.2384058] */
    float dxsi[4] = {0};
    nnrt_silu_forward(y, xg, 4);
    check("silu forward", max_err(y, (float[]){0, 0.7310585786f, -0.2689414214f, 1.7615941560f}, 4), EXACT_TOL);
    nnrt_silu_backward(dxsi, ones, xg, 4);
    check("silu backward",
          max_err(dxsi, (float[]){0.5f, 0.9276705119f, 0.0723294881f, 1.0907842488f}, 4), EXACT_TOL);
}

static void hand_softmax(void)
{
    /* softmax [1 2 3] = [e^-2, e^-1, 1] / (e^-2 + e^-1 + 1) = [0.0900306 0.2447285 0.6652410];
     * log-softmax = [1 2 3] - 3 - log(1.5032147) = [-2.4076060 -1.4076060 -0.4076060].
     * The same for [1001 1002 1003] (exp(1003) overflows unless the max is taken out). */
    float y[6];
    nnrt_softmax_forward(y, (float[]){1, 2, 3, 1001, 1002, 1003}, 2, 3, 1);
    const float sm[6] = {0.0900305732f, 0.2447284711f, 0.6652409558f,
                         0.0900305732f, 0.2447284711f, 0.6652409558f};
    check("softmax forward [2,3], stable at 1000", max_err(y, sm, 6), EXACT_TOL);
    nnrt_log_softmax_forward(y, (float[]){1, 2, 3, 1001, 1002, 1003}, 2, 3, 1);
    const float lsm[6] = {-2.4076059644f, -1.4076059644f, -0.4076059644f,
                          -2.4076059644f, -1.4076059644f, -0.4076059644f};
    check("log_softmax forward [2,3], stable at 1000", max_err(y, lsm, 6), EXACT_TOL);

    /* along C of [1, C=2, 1, 2]: x = [[0, 0], [ln 3, 0]] (channel-major):
     * position 0 compares 0 with ln 3 -> [1/4, 3/4], position 1 compares 0 with 0 -> [1/2, 1/2] */
    const float ln3 = 1.0986122887f;
    nnrt_softmax_forward(y, (float[]){0, 0, ln3, 0}, 1, 2, 2);
    check("softmax forward along C, inner 2", max_err(y, (float[]){0.25f, 0.5f, 0.75f, 0.5f}, 4),
          EXACT_TOL);

    /* backward, y = [1/4 3/4], dy = [1 0]: sum dy y = 1/4;
     * softmax: dx = y (dy - 1/4) = [3/16, -3/16];
     * log-softmax (y = log [1/4 3/4]): dx = dy - exp(y) * sum dy = [3/4, -3/4] */
    float dx[2] = {0}, dxl[2] = {0};
    nnrt_softmax_backward(dx, (float[]){1, 0}, (float[]){0.25f, 0.75f}, 1, 2, 1);
    check("softmax backward", max_err(dx, (float[]){0.1875f, -0.1875f}, 2), EXACT_TOL);
    nnrt_log_softmax_backward(dxl, (float[]){1, 0}, (float[]){-1.3862943611f, -0.2876820725f}, 1, 2, 1);
    check("log_softmax backward", max_err(dxl, (float[]){0.75f, -0.75f}, 2), EXACT_TOL);
}

static void hand_dropout(void)
{
    /* p = 0: the mask is all ones and y is x */
    enum { n = 100000 };
    static float x[n], y[n], mask[n], mask2[n];
    for (int i = 0; i < n; i++)
        x[i] = (float)(i % 7) - 3.0f;
    nnrt_rng r;
    nnrt_rng_seed(&r, 3);
    nnrt_dropout_forward(y, mask, x, n, 0.0f, &r);
    int bad = 0;
    for (int i = 0; i < n; i++)
        bad += mask[i] != 1.0f || y[i] != x[i];
    check("dropout p=0 is the identity", bad, 0);

    /* p = 0.25: every mask value is 0 or 1/0.75 = 4/3, y = x * mask, about a
     * quarter are zeros (standard error 0.0014) and the mean of the mask is
     * about 1; the same seed gives the same mask */
    nnrt_rng_seed(&r, 3);
    nnrt_dropout_forward(y, mask, x, n, 0.25f, &r);
    int zeros = 0;
    double sum = 0.0;
    bad = 0;
    for (int i = 0; i < n; i++) {
        zeros += mask[i] == 0.0f;
        bad += !(mask[i] == 0.0f || mask[i] == 1.0f / 0.75f) || y[i] != x[i] * mask[i];
        sum += mask[i];
    }
    check("dropout p=0.25 mask is 0 or 4/3, y = x * mask", bad, 0);
    check("dropout p=0.25 drops a quarter", fabs(zeros / (double)n - 0.25), 0.007);
    check("dropout p=0.25 mask mean 1", fabs(sum / n - 1.0), 0.01);
    nnrt_rng_seed(&r, 3);
    nnrt_dropout_forward(y, mask2, x, n, 0.25f, &r);
    check("dropout same seed, same mask", memcmp(mask, mask2, sizeof mask) != 0, 0);

    /* backward: dx = dy * mask = [1 2 3 4] * [0 2 2 0] */
    float dx[4] = {0};
    nnrt_dropout_backward(dx, (float[]){1, 2, 3, 4}, (float[]){0, 2, 2, 0}, 4);
    check("dropout backward", max_err(dx, (float[]){0, 4, 6, 0}, 4), EXACT_TOL);
}

static void hand_batchnorm(void)
{
    /* BatchNorm1d on x[N=4, C=2], eps 0, momentum 0.1:
     *   channel 0: 0 0 2 2, mean 1, biased var 1, invstd 1, xhat -1 -1 1 1
     *   channel 1: 1 5 1 5, mean 3, biased var 4, invstd 1/2, xhat -1 1 -1 1
     * gamma = [2 1], beta = [0.5 -1]: y0 = 2 xhat + 0.5, y1 = xhat - 1.
     * running stats from mean 0, var 1: mean 0.1 * [1 3] = [0.1 0.3];
     * var 0.9 + 0.1 * unbiased var (4/3, 16/3) = [1.0333333 1.4333333] */
    const float x[8] = {0, 1, 0, 5, 2, 1, 2, 5}, gamma[2] = {2, 1}, beta[2] = {0.5f, -1};
    float y[8], mean[2], invstd[2], rm[2] = {0, 0}, rv[2] = {1, 1};
    nnrt_bn_dims d = {.N = 4, .C = 2, .HW = 1, .eps = 0.0f, .momentum = 0.1f};
    nnrt_batchnorm_forward_train(y, mean, invstd, rm, rv, x, gamma, beta, &d);
    check("batchnorm train forward",
          max_err(y, (float[]){-1.5f, -2, -1.5f, 0, 2.5f, -2, 2.5f, 0}, 8), EXACT_TOL);
    check("batchnorm train mean, invstd",
          fmax(max_err(mean, (float[]){1, 3}, 2), max_err(invstd, (float[]){1, 0.5f}, 2)), EXACT_TOL);
    check("batchnorm running stats (unbiased var)",
          fmax(max_err(rm, (float[]){0.1f, 0.3f}, 2), max_err(rv, (float[]){1.0333333f, 1.4333333f}, 2)),
          EXACT_TOL);

    /* backward, dy: channel 0 = [1 0 0 0], channel 1 = [0 0 0 2]. With
     * M = 4, dx = gamma * invstd * (g - sum g / M - xhat * sum(g xhat) / M):
     *   channel 0: sum g = 1, sum g xhat = -1:
     *     dx = 2 * ([1 0 0 0] - 1/4 + [-1 -1 1 1]/4) = [1 -1 0 0]
     *   channel 1: sum g = 2, sum g xhat = 2:
     *     dx = 1/2 * ([0 0 0 2] - 1/2 - [-1 1 -1 1]/2) = [0 -0.5 0 0.5]
     * dgamma = sum g xhat = [-1 2], dbeta = sum g = [1 2] */
    const float dy[8] = {1, 0, 0, 0, 0, 0, 0, 2};
    float dx[8] = {0}, dg[2] = {0}, db[2] = {0};
    nnrt_batchnorm_backward(dx, dg, db, dy, x, mean, invstd, gamma, &d);
    check("batchnorm backward dx", max_err(dx, (float[]){1, 0, -1, -0.5f, 0, 0, 0, 0.5f}, 8), EXACT_TOL);
    check("batchnorm backward dgamma, dbeta",
          fmax(max_err(dg, (float[]){-1, 2}, 2), max_err(db, (float[]){1, 2}, 2)), EXACT_TOL);

    /* eval, running mean [1 3], var [3.75 0], eps 0.25 (so var + eps = [4 0.25]),
     * on x = [3 2]: affine: (3-1)/2 * 2 + 0.5 = 2.5, (2-3)/0.5 * 1 - 1 = -3;
     * without: 1, -2 */
    nnrt_bn_dims de = {.N = 1, .C = 2, .HW = 1, .eps = 0.25f};
    nnrt_batchnorm_forward_eval(y, (float[]){3, 2}, gamma, beta, (float[]){1, 3}, (float[]){3.75f, 0}, &de);
    check("batchnorm eval forward", max_err(y, (float[]){2.5f, -3}, 2), EXACT_TOL);
    nnrt_batchnorm_forward_eval(y, (float[]){3, 2}, NULL, NULL, (float[]){1, 3}, (float[]){3.75f, 0}, &de);
    check("batchnorm eval forward, no affine", max_err(y, (float[]){1, -2}, 2), EXACT_TOL);

    /* BatchNorm2d, x[N=1, C=1, 2x2] = [1 3 1 3], eps 0: mean 2, var 1, no
     * affine: y = [-1 1 -1 1]; running stats may be NULL */
    nnrt_batchnorm_forward_train(y, mean, invstd, NULL, NULL, (float[]){1, 3, 1, 3}, NULL, NULL,
                                 &(nnrt_bn_dims){.N = 1, .C = 1, .HW = 4, .momentum = 0.1f});
    check("batchnorm 2d, no affine, no running stats", max_err(y, (float[]){-1, 1, -1, 1}, 4), EXACT_TOL);
}

static void hand_embedding(void)
{
    /* w[num=3, D=2] = [[1 2] [3 4] [5 6]]; ids 2 0 2 1.5 -1 3 NaN: rows
     * w2, w0, w2, then four bad ids (not an integer, below 0, past num, NaN)
     * whose rows are NaNs */
    const float w[6] = {1, 2, 3, 4, 5, 6}, idx[7] = {2, 0, 2, 1.5f, -1, 3, NAN};
    float y[14];
    nnrt_embedding_forward(y, idx, w, 7, 3, 2);
    check("embedding forward, repeated ids", max_err(y, (float[]){5, 6, 1, 2, 5, 6}, 6), EXACT_TOL);
    int bad = 0;
    for (int i = 6; i < 14; i++)
        bad += !isnan(y[i]);
    check("embedding forward, bad ids give NaN rows", bad, 0);

    /* backward, dy = [[1 2] [3 4] [10 20] [7 7] [7 7] [7 7] [7 7]] into
     * dw = 1: id 2 gets rows 0 and 2 (1+1+10, 1+2+20), id 0 row 1 (1+3,
     * 1+4), id 1 none; the bad ids are skipped */
    const float dy[14] = {1, 2, 3, 4, 10, 20, 7, 7, 7, 7, 7, 7, 7, 7};
    float dw[6] = {1, 1, 1, 1, 1, 1};
    nnrt_embedding_backward(dw, dy, idx, 7, 3, 2);
    nnrt_embedding_backward(NULL, dy, idx, 7, 3, 2);
    check("embedding backward accumulates, same ids add up", max_err(dw, (float[]){4, 5, 1, 1, 12, 23}, 6),
          EXACT_TOL);

    /* positions of [N=2, T=3]: 0 1 2 0 1 2 */
    nnrt_positions(y, 2, 3);
    check("positions [2,3]", max_err(y, (float[]){0, 1, 2, 0, 1, 2}, 6), 0);
}

static void hand_layernorm(void)
{
    /* x[rows=2, C=4], eps 0:
     *   row 0: 1 2 3 4, mean 2.5, var 1.25, rstd 1/sqrt(1.25) = 0.894427191,
     *          xhat = [-1.5 -0.5 0.5 1.5] * rstd = [-1.341640786 -0.447213595 0.447213595 1.341640786]
     *   row 1: 0 0 4 4, mean 2, var 4, rstd 0.5, xhat = [-1 -1 1 1]
     * w = [1 2 1 0.5], b = [0 1 -1 0]: y = xhat * w + b */
    const float x[8] = {1, 2, 3, 4, 0, 0, 4, 4}, w[4] = {1, 2, 1, 0.5f}, b[4] = {0, 1, -1, 0};
    float y[8], mean[2], rstd[2];
    nnrt_layernorm_forward(y, mean, rstd, x, w, b, 2, 4, 0.0f);
    check("layernorm forward [2,4]",
          max_err(y, (float[]){-1.341640786f, 0.105572809f, -0.552786405f, 0.670820393f, -1, -1, 0, 0.5f}, 8),
          EXACT_TOL);
    check("layernorm mean, rstd",
          fmax(max_err(mean, (float[]){2.5f, 2}, 2), max_err(rstd, (float[]){0.894427191f, 0.5f}, 2)), EXACT_TOL);
    nnrt_layernorm_forward(y, mean, rstd, x, NULL, NULL, 2, 4, 0.0f);
    check("layernorm forward, no affine",
          max_err(y, (float[]){-1.341640786f, -0.447213595f, 0.447213595f, 1.341640786f, -1, -1, 1, 1}, 8),
          EXACT_TOL);

    /* backward, dy = [[0 1 0 0] [1 0 0 0]], g = dy * w,
     * dx = rstd/C * (C g - sum g - xhat * sum g xhat):
     *   row 0: g = [0 2 0 0], sum g = 2, sum g xhat = -0.894427191, so
     *          xhat * 0.894427191 = [-1.2 -0.4 0.4 1.2] and
     *          dx = 0.2236068 * ([0 8 0 0] - 2 + [-1.2 -0.4 0.4 1.2])
     *             = 0.2236068 * [-3.2 5.6 -1.6 -0.8]
     *   row 1: g = [1 0 0 0], sum g = 1, sum g xhat = -1:
     *          dx = 0.125 * ([4 0 0 0] - 1 + [-1 -1 1 1]) = [0.25 -0.25 0 0]
     * dw = sum dy xhat = [-1 -0.447213595 0 0], db = sum dy = [1 1 0 0] */
    nnrt_layernorm_forward(y, mean, rstd, x, w, b, 2, 4, 0.0f);
    const float dy[8] = {0, 1, 0, 0, 1, 0, 0, 0};
    float dx[8] = {0}, dw[4] = {0}, db[4] = {0};
    nnrt_layernorm_backward(dx, dw, db, dy, x, mean, rstd, w, 2, 4);
    check("layernorm backward dx",
          max_err(dx, (float[]){-0.715541753f, 1.252198067f, -0.357770876f, -0.178885438f, 0.25f, -0.25f, 0, 0}, 8),
          EXACT_TOL);
    check("layernorm backward dw, db",
          fmax(max_err(dw, (float[]){-1, -0.447213595f, 0, 0}, 4), max_err(db, (float[]){1, 1, 0, 0}, 4)),
          EXACT_TOL);
}

static void hand_attention(void)
{
    /* one sample, T = 2, one head of Dh = C = 2 (scale 1/sqrt 2); qkv rows
     * q | k | v:  position 0: q0 = [1 0], k0 = [1 0], v0 = [1 2]
     *             position 1: q1 = [0 2], k1 = [0 1], v1 = [3 -1]
     * causal: row 0 sees only k0: att00 = 1, y0 = v0 = [1 2];
     * row 1: s10 = q1.k0 / sqrt 2 = 0, s11 = 2 / sqrt 2 = sqrt 2, so
     *   att10 = 1 / (1 + e^sqrt2) = 1 / 5.113250379 = 0.195570317, att11 = 0.804429683,
     *   y1 = 0.195570317 [1 2] + 0.804429683 [3 -1] = [2.608859365 -0.413289048]
     * not causal, row 0: s00 = 1 / sqrt 2, s01 = 0: att00 = e^0.7071068 / (1 + e^0.7071068)
     *   = 2.028114981 / 3.028114981 = 0.669761549, att01 = 0.330238451,
     *   y0 = [0.669761549 + 3 * 0.330238451, 2 * 0.669761549 - 0.330238451]
     *      = [1.660476901 1.009284648]; row 1 as causal */
    const float qkv[12] = {1, 0, 1, 0, 1, 2, 0, 2, 0, 1, 3, -1};
    float y[4], att[4];
    nnrt_attention_forward(y, att, qkv, 1, 2, 2, 1, 1);
    check("attention causal forward, T=2", max_err(y, (float[]){1, 2, 2.608859365f, -0.413289048f}, 4), EXACT_TOL);
    check("attention causal probabilities, 0 above the diagonal",
          max_err(att, (float[]){1, 0, 0.195570317f, 0.804429683f}, 4), EXACT_TOL);
    nnrt_attention_forward(y, att, qkv, 1, 2, 2, 1, 0);
    check("attention forward, T=2", max_err(y, (float[]){1.660476901f, 1.009284648f, 2.608859365f, -0.413289048f}, 4),
          EXACT_TOL);

    /* causal backward, dy = [[0 0] [1 0]]: only row 1 passes a gradient.
     *   dv_j = att1j dy1: dv0 = [0.195570317 0], dv1 = [0.804429683 0]
     *   datt1 = [dy1.v0, dy1.v1] = [1 3], sum datt att = 0.195570317 + 3 * 0.804429683 = 2.608859366
     *   ds1 = att1 * (datt1 - 2.608859366) = [-0.314645137 0.314645137]
     *   dq1 = (ds10 k0 + ds11 k1) / sqrt 2 = [-0.222487710 0.222487710]
     *   dk0 = ds10 q1 / sqrt 2 = [0 -0.444975420], dk1 = [0 0.444975420] */
    nnrt_attention_forward(y, att, qkv, 1, 2, 2, 1, 1);
    float dqkv[12] = {0};
    nnrt_attention_backward(dqkv, (float[]){0, 0, 1, 0}, att, qkv, 1, 2, 2, 1, 1);
    nnrt_attention_backward(NULL, (float[]){0, 0, 1, 0}, att, qkv, 1, 2, 2, 1, 1);
    check("attention causal backward, T=2",
          max_err(dqkv, (float[]){0, 0, 0, -0.444975420f, 0.195570317f, 0,
                                  -0.222487710f, 0.222487710f, 0, 0.444975420f, 0.804429683f, 0}, 12),
          EXACT_TOL);
}

static void hand_lstm(void)
{
    /* N = 1, T = 2, I = H = 1, the gates' rows i, f, g, o:
     *   w_ih = [1 -1 0.5 2], w_hh = [0.5 1 -1 0.25], b_ih = [0 0.5 0 -1],
     *   b_hh = [0.5 0 0.25 0], x = [1 -1], dy = [0.5 1]
     * t = 0 (h = c = 0): z = w_ih + b_ih + b_hh = [1.5 -0.5 0.75 1]
     *   i = sigmoid 1.5 = 0.817574476, f = sigmoid -0.5 = 0.377540669,
     *   g = tanh 0.75 = 0.635148952, o = sigmoid 1 = 0.731058579
     *   c0 = i g = 0.519281572, h0 = o tanh c0 = 0.731058579 * 0.477145337 = 0.348821192
     * t = 1: z = -w_ih + b_ih + b_hh + 0.348821192 w_hh
     *          = [-0.325589404 1.848821192 -0.598821192 -2.912794702]
     *   i = 0.419314175, f = 0.863988638, g = -0.536210223, o = 0.051524687
     *   c1 = f c0 + i g = 0.448651420 - 0.224839589 = 0.223812831,
     *   h1 = o tanh c1 = 0.051524687 * 0.220149132 = 0.011343115
     * backward, t = 1: dh = 1, dc = dh o (1 - tanh^2 c1) = 0.049027510
     *   dz = [dc g i(1-i), dc c0 f(1-f), dc i (1-g^2), dh tanh c1 o(1-o)]
     *      = [-0.006401116 0.002991755 0.014647085 0.010758665]
     *   to t = 0: dh = dz . w_hh = -0.012166222, dc = dc f = 0.042359212
     * t = 0: dh = 0.5 - 0.012166222 = 0.487833778,
     *   dc = dh o (1 - tanh^2 c0) + 0.042359212 = 0.317800004
     *   dz = [dc g i(1-i), 0 (c_{-1} = 0), dc i (1-g^2), dh tanh c0 o(1-o)]
     *      = [0.030105262 0 0.155008010 0.045764890]
     * dx_t = dz_t . w_ih = [0.199139048 0.019448001]
     * dw_ih = dz_0 x_0 + dz_1 x_1 = [0.036506378 -0.002991755 0.140360925 0.035006226]
     * db_ih = db_hh = dz_0 + dz_1 = [0.023704146 0.002991755 0.169655095 0.056523555]
     * dw_hh = dz_1 h0 = [-0.002232845 0.001043587 0.005109214 0.003752850] */
    const float w_ih[4] = {1, -1, 0.5f, 2}, w_hh[4] = {0.5f, 1, -1, 0.25f};
    const float b_ih[4] = {0, 0.5f, 0, -1}, b_hh[4] = {0.5f, 0, 0.25f, 0}, x[2] = {1, -1};
    float y[2], saved[10];
    nnrt_lstm_forward(y, saved, x, w_ih, w_hh, b_ih, b_hh, 1, 2, 1, 1);
    check("lstm forward, T=2", max_err(y, (float[]){0.348821192f, 0.011343115f}, 2), EXACT_TOL);
    check("lstm saved gates and c_t",
          max_err(saved, (float[]){0.817574476f, 0.377540669f, 0.635148952f, 0.731058579f, 0.519281572f,
                                   0.419314175f, 0.863988638f, -0.536210223f, 0.051524687f, 0.223812831f}, 10),
          EXACT_TOL);
    float dx[2] = {0}, dw_ih[4] = {0}, dw_hh[4] = {0}, db_ih[4] = {0}, db_hh[4] = {0};
    nnrt_lstm_backward(dx, dw_ih, dw_hh, db_ih, db_hh, (float[]){0.5f, 1}, x, y, saved, w_ih, w_hh, 1, 2, 1, 1);
    check("lstm backward dx", max_err(dx, (float[]){0.199139048f, 0.019448001f}, 2), EXACT_TOL);
    check("lstm backward dw_ih",
          max_err(dw_ih, (float[]){0.036506378f, -0.002991755f, 0.140360925f, 0.035006226f}, 4), EXACT_TOL);
    check("lstm backward dw_hh",
          max_err(dw_hh, (float[]){-0.002232845f, 0.001043587f, 0.005109214f, 0.003752850f}, 4), EXACT_TOL);
    const float db[4] = {0.023704146f, 0.002991755f, 0.169655095f, 0.056523555f};
    check("lstm backward db_ih, db_hh", fmax(max_err(db_ih, db, 4), max_err(db_hh, db, 4)), EXACT_TOL);
}

static void hand_tensor(void)
{
    float y[12], dx[4] = {0}, dx2[8] = {0};
    nnrt_add_forward(y, (float[]){1, 2, 3}, (float[]){10, 20, -30}, 3);
    check("add forward", max_err(y, (float[]){11, 22, -27}, 3), EXACT_TOL);
    float acc[3] = {1, 1, 1};
    nnrt_accumulate(acc, (float[]){1, 2, 3}, 3);
    nnrt_accumulate(NULL, (float[]){1, 2, 3}, 3);
    check("accumulate", max_err(acc, (float[]){2, 3, 4}, 3), EXACT_TOL);

    /* concat along C: a[N=2, 1, 2] = [1 2 | 3 4], b[2, 2, 2] = [5 6 7 8 | 9 10 11 12]
     * -> y[2, 3, 2] = [1 2 5 6 7 8 | 3 4 9 10 11 12]; backward with dy = 0 .. 11
     * gives da = [0 1 | 6 7], db = [2 3 4 5 | 8 9 10 11] */
    nnrt_concat_forward(y, (float[]){1, 2, 3, 4}, 2, 1, 3, 0, 2);
    nnrt_concat_forward(y, (float[]){5, 6, 7, 8, 9, 10, 11, 12}, 2, 2, 3, 1, 2);
    check("concat forward", max_err(y, (float[]){1, 2, 5, 6, 7, 8, 3, 4, 9, 10, 11, 12}, 12), EXACT_TOL);
    float dy[12];
    for (int i = 0; i < 12; i++)
        dy[i] = (float)i;
    nnrt_concat_backward(dx, dy, 2, 1, 3, 0, 2);
    nnrt_concat_backward(dx2, dy, 2, 2, 3, 1, 2);
    check("concat backward", fmax(max_err(dx, (float[]){0, 1, 6, 7}, 4),
                                  max_err(dx2, (float[]){2, 3, 4, 5, 8, 9, 10, 11}, 8)), EXACT_TOL);
}

static void hand_losses(void)
{
    /* y - t = [1 0 -2 -0.5] (as hand_mse_sgd): squares sum 5.25, mean 1.3125;
     * |.| sum 3.5, mean 0.875 */
    const float y[4] = {1, 2, 3, 4}, t[4] = {0, 2, 5, 4.5f};
    float l[2] = {nnrt_mse_forward_r(y, t, 4, NNRT_SUM), nnrt_mse_forward_r(y, t, 4, NNRT_MEAN)};
    check("mse sum, mean", max_err(l, (float[]){5.25f, 1.3125f}, 2), EXACT_TOL);
    float dy[4] = {0};
    nnrt_mse_backward_r(dy, y, t, 4, 2.0f, NNRT_SUM);       /* 2 * 2 (y - t) */
    check("mse sum backward", max_err(dy, (float[]){4, 0, -8, -2}, 4), EXACT_TOL);

    l[0] = nnrt_l1_forward(y, t, 4, NNRT_SUM), l[1] = nnrt_l1_forward(y, t, 4, NNRT_MEAN);
    check("l1 sum, mean", max_err(l, (float[]){3.5f, 0.875f}, 2), EXACT_TOL);
    float dl[4] = {0}, dls[4] = {0};
    nnrt_l1_backward(dl, y, t, 4, 1.0f, NNRT_MEAN);         /* sign(y - t)/4, sign(0) = 0 */
    nnrt_l1_backward(dls, y, t, 4, 2.0f, NNRT_SUM);
    check("l1 backward, sign(0) = 0", fmax(max_err(dl, (float[]){0.25f, 0, -0.25f, -0.25f}, 4),
                                           max_err(dls, (float[]){2, 0, -2, -2}, 4)), EXACT_TOL);

    /* cross-entropy, x = [[0, ln 3], [ln 3, 0]], t = [1, 1]:
     * softmax rows [1/4 3/4] and [3/4 1/4], losses -ln 3/4 = 0.2876821 and
     * -ln 1/4 = 1.3862944: sum 1.6739764, mean 0.8369882.
     * mean backward: (softmax - onehot)/2 = [1/8 -1/8; 3/8 -3/8] */
    const float ln3 = 1.0986122887f, xc[4] = {0, ln3, ln3, 0}, tc[2] = {1, 1};
    l[0] = nnrt_cross_entropy_forward(xc, tc, 2, 2, NNRT_SUM);
    l[1] = nnrt_cross_entropy_forward(xc, tc, 2, 2, NNRT_MEAN);
    check("cross_entropy sum, mean", max_err(l, (float[]){1.6739764336f, 0.8369882168f}, 2), EXACT_TOL);
    float dc[4] = {0};
    nnrt_cross_entropy_backward(dc, xc, tc, 2, 2, 1.0f, NNRT_MEAN);
    check("cross_entropy backward", max_err(dc, (float[]){0.125f, -0.125f, 0.375f, -0.375f}, 4),
          EXACT_TOL);
    /* logits [1000 1000], class 0: ln 2, where exp(1000) would overflow */
    l[0] = nnrt_cross_entropy_forward((float[]){1000, 1000}, (float[]){0}, 1, 2, NNRT_MEAN);
    check("cross_entropy stable at 1000", max_err(l, (float[]){0.6931471806f}, 1), EXACT_TOL);

    /* NLL of log-probabilities [[-1 -2 -3], [-0.5 -0.25 -4]], t = [2, 0]:
     * sum 3 + 0.5 = 3.5, mean 1.75; mean backward with dloss 2: -1 at the targets */
    const float xn[6] = {-1, -2, -3, -0.5f, -0.25f, -4}, tn[2] = {2, 0};
    l[0] = nnrt_nll_forward(xn, tn, 2, 3, NNRT_SUM), l[1] = nnrt_nll_forward(xn, tn, 2, 3, NNRT_MEAN);
    check("nll sum, mean", max_err(l, (float[]){3.5f, 1.75f}, 2), EXACT_TOL);
    float dn[6] = {0};
    nnrt_nll_backward(dn, tn, 2, 3, 2.0f, NNRT_MEAN);
    check("nll backward", max_err(dn, (float[]){0, 0, -1, -1, 0, 0}, 6), EXACT_TOL);

    /* BCE with logits, x = [0, ln 3, -ln 3, 100], t = [1, 1, 0, 0]:
     * ln 2 + -ln 3/4 + -ln 3/4 + (100 + ln(1 + e^-100)) = 101.2685113, mean 25.3171278;
     * d/dx = sigmoid(x) - t = [-1/2, -1/4, 1/4, 1], / 4 for the mean */
    const float xb[4] = {0, ln3, -ln3, 100}, tb[4] = {1, 1, 0, 0};
    l[0] = nnrt_bce_with_logits_forward(xb, tb, 4, NNRT_SUM);
    l[1] = nnrt_bce_with_logits_forward(xb, tb, 4, NNRT_MEAN);
    check("bce_with_logits sum, mean", max_err(l, (float[]){101.2685113f, 25.3171278f}, 2), EXACT_TOL);
    float db[4] = {0};
    nnrt_bce_with_logits_backward(db, xb, tb, 4, 1.0f, NNRT_MEAN);
    check("bce_with_logits backward", max_err(db, (float[]){-0.125f, -0.0625f, 0.0625f, 0.25f}, 4),
          EXACT_TOL);
}

static void hand_optim(void)
{
    /* SGD, lr 0.1, momentum 0.9, dampening 0.5, weight decay 0.1, p = [1 -2], g = [1 1]:
     *   step 1: g' = g + 0.1 p = [1.1 0.8]; buf = g' (first step); p = [0.89 -2.08]
     *   step 2: g' = [1.089 0.792]; buf = 0.9 [1.1 0.8] + 0.5 g' = [1.5345 1.116];
     *           p = [0.89 - 0.15345, -2.08 - 0.1116] = [0.73655 -2.1916] */
    float p[2] = {1, -2}, buf[2];
    nnrt_sgd_opts o = {.momentum = 0.9f, .dampening = 0.5, .weight_decay = 0.1f};
    nnrt_sgd_step_opts(p, (float[]){1, 1}, buf, 2, 0.1f, &o, 1);
    check("sgd momentum, weight decay, step 1", max_err(p, (float[]){0.89f, -2.08f}, 2), EXACT_TOL);
    nnrt_sgd_step_opts(p, (float[]){1, 1}, buf, 2, 0.1f, &o, 2);
    check("sgd dampening, step 2", fmax(max_err(p, (float[]){0.73655f, -2.1916f}, 2),
                                        max_err(buf, (float[]){1.5345f, 1.116f}, 2)), EXACT_TOL);

    /* Nesterov, momentum 0.9, p = 1, g = 1, lr 0.1:
     *   step 1: buf = 1, g' = 1 + 0.9 = 1.9, p = 0.81
     *   step 2: buf = 0.9 + 1 = 1.9, g' = 1 + 0.9 * 1.9 = 2.71, p = 0.539 */
    float pn = 1, bn;
    o = (nnrt_sgd_opts){.momentum = 0.9f, .nesterov = 1};
    nnrt_sgd_step_opts(&pn, (float[]){1}, &bn, 1, 0.1f, &o, 1);
    nnrt_sgd_step_opts(&pn, (float[]){1}, &bn, 1, 0.1f, &o, 2);
    check("sgd nesterov, 2 steps", max_err(&pn, (float[]){0.539f}, 1), EXACT_TOL);
    /* no momentum: buf may be NULL; p = 1 - 0.1 (1 + 0.1 * 1) = 0.89 */
    pn = 1;
    o = (nnrt_sgd_opts){.weight_decay = 0.1f};
    nnrt_sgd_step_opts(&pn, (float[]){1}, NULL, 1, 0.1f, &o, 1);
    check("sgd weight decay only, NULL buf", max_err(&pn, (float[]){0.89f}, 1), EXACT_TOL);

    /* Adam, lr 0.1, defaults, p = 1, constant g = 0.5: the bias-corrected
     * m/sqrt(v) is exactly 1, so each step moves lr: 0.9, 0.8 (first step:
     * m = 0.05, v = 0.00025, 0.05/0.1 / (sqrt(0.00025)/sqrt(0.001)) = 1).
     * Adam, weight decay 0.5 (L2 in the gradient): step 1 moves lr again
     * (0.9); step 2: g' = 0.5 + 0.45 = 0.95, m = 0.185, v = 0.0019015,
     * p = 0.9 - 0.1 * (0.185/0.19) / sqrt(0.0019015/0.001999) = 0.8001665.
     * AdamW, weight decay 0.5: p *= 1 - 0.05 first: 0.95 - 0.1 = 0.85, then
     * 0.85 * 0.95 - 0.1 = 0.7075 */
    nnrt_adam_opts ao = {.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8f};
    float pa[3] = {1, 1, 1}, m[3] = {0}, v[3] = {0};
    for (long step = 1; step <= 2; step++) {
        ao.weight_decay = 0, ao.decoupled = 0;
        nnrt_adam_step(&pa[0], (float[]){0.5f}, &m[0], &v[0], 1, 0.1f, &ao, step);
        ao.weight_decay = 0.5f;
        nnrt_adam_step(&pa[1], (float[]){0.5f}, &m[1], &v[1], 1, 0.1f, &ao, step);
        ao.decoupled = 1;
        nnrt_adam_step(&pa[2], (float[]){0.5f}, &m[2], &v[2], 1, 0.1f, &ao, step);
    }
    check("adam, adam weight decay, adamw: 2 steps",
          max_err(pa, (float[]){0.8f, 0.8001664876f, 0.7075f}, 3), EXACT_TOL);

    /* norms: |[3 4]| = 5, |[3 4 12]| = 13; clipping [3 4] to 1 gives
     * [3 4] / (5 + 1e-6) = [0.6 0.8]; to 10 changes nothing */
    float g[3] = {3, 4, 12}, n2[2] = {nnrt_grad_norm(g, 2), nnrt_grad_norm(g, 3)};
    check("grad_norm", max_err(n2, (float[]){5, 13}, 2), EXACT_TOL);
    float norm = nnrt_clip_grad_norm(g, 2, 10.0f);
    check("clip_grad_norm below the limit", fmax(max_err(g, (float[]){3, 4}, 2), fabs(norm - 5)), 0.0);
    norm = nnrt_clip_grad_norm(g, 2, 1.0f);
    check("clip_grad_norm to 1", fmax(max_err(g, (float[]){0.6f, 0.8f}, 2), fabs(norm - 5)), EXACT_TOL);
    nnrt_scale(g, 3, -0.5f);
    check("scale", max_err(g, (float[]){-0.3f, -0.4f, -6}, 3), EXACT_TOL);

    /* StepLR(step_size 3, gamma 0.5) from lr 1: epochs 0..7;
     * CosineAnnealingLR(t_max 4) from lr 1: (1 + cos(pi e/4))/2 =
     * 1, 0.8535534, 0.5, 0.1464466, 0, then back up (0.1464466 at 5, 1 at 8);
     * with eta_min 0.1 at epoch 2: 0.1 + 0.9 * 0.5 = 0.55 */
    float lr[8], lc[7];
    for (int e = 0; e < 8; e++)
        lr[e] = nnrt_lr_step(1.0f, e, 3, 0.5f);
    check("lr_step", max_err(lr, (float[]){1, 1, 1, 0.5f, 0.5f, 0.5f, 0.25f, 0.25f}, 8), EXACT_TOL);
    for (int e = 0; e < 6; e++)
        lc[e] = nnrt_lr_cosine(1.0f, e, 4, 0.0f);
    lc[6] = nnrt_lr_cosine(1.0f, 8, 4, 0.0f);
    check("lr_cosine", max_err(lc, (float[]){1, 0.8535533906f, 0.5f, 0.1464466094f, 0, 0.1464466094f, 1},
                               7), EXACT_TOL);
    lc[0] = nnrt_lr_cosine(1.0f, 2, 4, 0.1f);
    check("lr_cosine eta_min", max_err(lc, (float[]){0.55f}, 1), EXACT_TOL);
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

static int pool_out(int in, int k, int s, int pad, int ceil_mode);

/* A random pooling case whose inputs are all distinct, at least 0.01 apart,
 * so that a step of EPS never changes which element is a window's maximum.
 * P and Q in floor or ceil mode, as PyTorch; average pooling counts the
 * padding (count_include_pad) unless the caller changes it. */
static pool_case pool_make(int N, int C, int H, int W, int kh, int kw, int sh, int sw,
                           int ph, int pw, int ceil_mode)
{
    pool_case c = {.d = {.N = N, .C = C, .H = H, .W = W, .kh = kh, .kw = kw,
                         .stride_h = sh, .stride_w = sw, .pad_h = ph, .pad_w = pw,
                         .count_include_pad = 1}};
    c.d.P = pool_out(H, kh, sh, ph, ceil_mode);
    c.d.Q = pool_out(W, kw, sw, pw, ceil_mode);
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
    pool_case c = pool_make(N, C, H, W, kh, kw, sh, sw, ph, pw, 0);
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

    double *want = calloc((size_t)N * OUT, sizeof *want);   /* the forward, in double */
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            want[n * OUT + o] = bias ? c.b[o] : 0.0;
            for (int i = 0; i < IN; i++)
                want[n * OUT + o] += (double)c.x[n * IN + i] * c.w[o * IN + i];
        }
    nnrt_linear_forward(c.y, c.x, c.w, c.b, N, IN, OUT);
    double ferr = 0;
    for (int k = 0; k < N * OUT; k++)
        ferr = fmax(ferr, fabs(c.y[k] - want[k]));
    free(want);
    snprintf(label, sizeof label, "linear %s forward", name);
    check(label, ferr, EXACT_TOL);

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

/* nnrt_linear_backward_sgd (a generated trainer's backward_step) is
 * nnrt_linear_backward_first then nnrt_sgd_step on w and b, bit for bit;
 * for one or two samples it applies the step in its own pass over w,
 * 16 features at a time, the last ones in a vector that overlaps the one
 * before (IN not a multiple of 16). dx starts nonzero: both add to it. */
static void linear_sgd_exact(int N, int IN, int OUT)
{
    size_t nx = (size_t)N * IN, nw = (size_t)OUT * IN;
    float *x = random_floats(nx), *dy = random_floats((size_t)N * OUT);
    float *w1 = random_floats(nw), *b1 = random_floats(OUT), *dx1 = random_floats(nx);
    float *w2 = malloc(nw * sizeof *w2), *b2 = malloc(OUT * sizeof *b2), *dx2 = malloc(nx * sizeof *dx2);
    float *dw = alloc_floats(nw), *db = alloc_floats(OUT), *dw2 = alloc_floats(nw), *db2 = alloc_floats(OUT);
    memcpy(w2, w1, nw * sizeof *w2), memcpy(b2, b1, OUT * sizeof *b2), memcpy(dx2, dx1, nx * sizeof *dx2);
    nnrt_linear_backward_first(dx1, dw, db, dy, x, w1, N, IN, OUT);
    nnrt_sgd_step(w1, dw, nw, 0.1f);
    nnrt_sgd_step(b1, db, OUT, 0.1f);
    nnrt_linear_backward_sgd(dx2, dw2, db2, dy, x, w2, b2, N, IN, OUT, 0.1f);
    int differ = memcmp(dx1, dx2, nx * sizeof *dx1) != 0 || memcmp(w1, w2, nw * sizeof *w1) != 0 ||
                 memcmp(b1, b2, OUT * sizeof *b1) != 0;
    char label[128];
    snprintf(label, sizeof label, "linear backward with SGD %dx%dx%d: backward, then step", N, IN, OUT);
    check(label, differ, 0);
    free(x), free(dy), free(w1), free(b1), free(dx1), free(w2), free(b2), free(dx2);
    free(dw), free(db), free(dw2), free(db2);
}

/* conv2d and linear split large work across threads (parallel.c); the split
 * must not change a single bit: forward and backward with 1 and 2 threads */
/* conv2d forward and backward (all three gradients) with 1 and 2 threads:
 * whether the outputs differ in any bit */
static int conv_threads_differ(const nnrt_conv2d_dims *d, int with_dx)
{
    size_t nx = (size_t)d->N * d->C * d->H * d->W, nw = (size_t)d->K * (d->C / d->groups) * d->R * d->S;
    size_t ny = (size_t)d->N * d->K * d->P * d->Q, n[4] = {ny, nx, nw, (size_t)d->K};
    float *x = random_floats(nx), *w = random_floats(nw), *b = random_floats(d->K), *dy = random_floats(ny);
    float *out[2][4];
    for (int t = 0; t < 2; t++) {
        nnrt_set_threads(t + 1);
        float **o = out[t];
        o[0] = alloc_floats(ny), o[1] = alloc_floats(nx), o[2] = alloc_floats(nw), o[3] = alloc_floats(d->K);
        nnrt_conv2d_forward(o[0], x, w, b, d);
        nnrt_conv2d_backward(with_dx ? o[1] : NULL, o[2], o[3], dy, x, w, d);
    }
    int differ = 0;
    for (int i = 0; i < 4; i++) {
        differ += memcmp(out[0][i], out[1][i], n[i] * sizeof(float)) != 0;
        free(out[0][i]), free(out[1][i]);
    }
    free(x), free(w), free(b), free(dy);
    return differ;
}

/* Every kernel that shares work between threads gives the same bits with
 * any number of them: conv2d with its work cut by sample within one chunk
 * of 8 (batch 3), into d input and runs of d weight blocks (batch 1), and
 * by chunk (batch 20: chunks of 8, 8 and 4; conv2d.c), with d weight by
 * lanes (16 out channels) and by rows (6, with padding); without d input
 * (a first layer), by slices of out channels. */
static void threads_same_bits(void)
{
    nnrt_conv2d_dims d = {.N = 3, .C = 6, .H = 14, .W = 14, .K = 16, .R = 5, .S = 5, .P = 10,
                          .Q = 10, .stride_h = 1, .stride_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1};
    nnrt_conv2d_dims d1 = {.N = 20, .C = 2, .H = 28, .W = 28, .K = 6, .R = 5, .S = 5, .P = 28,
                           .Q = 28, .stride_h = 1, .stride_w = 1, .pad_h = 2, .pad_w = 2, .dil_h = 1,
                           .dil_w = 1, .groups = 1};
    int differ = conv_threads_differ(&d, 1);
    d.N = 1;
    differ += conv_threads_differ(&d, 1);
    d.N = 20;
    differ += conv_threads_differ(&d, 1);
    differ += conv_threads_differ(&d1, 1);
    d1.N = 1;
    differ += conv_threads_differ(&d1, 1);
    d1.N = 5;                           /* a first layer: d weight by slices of out channels */
    differ += conv_threads_differ(&d1, 0);
    d1.K = 5;                           /* ... of 3 and 2 */
    differ += conv_threads_differ(&d1, 0);
    size_t nl = 5 * 400, nlw = 120 * 400;
    float *lx = random_floats(nl), *lw = random_floats(nlw), *lb = random_floats(120);
    float *ldy = random_floats(5 * 120);
    float *out[2][4];
    for (int t = 0; t < 2; t++) {
        nnrt_set_threads(t + 1);
        float **o = out[t];
        o[0] = alloc_floats(5 * 120), o[1] = alloc_floats(nl), o[2] = alloc_floats(nlw), o[3] = alloc_floats(120);
        nnrt_linear_forward(o[0], lx, lw, lb, 5, 400, 120);
        nnrt_linear_backward(o[1], o[2], o[3], ldy, lx, lw, 5, 400, 120);
    }
    size_t n[4] = {5 * 120, nl, nlw, 120};
    for (int i = 0; i < 4; i++) {
        differ += memcmp(out[0][i], out[1][i], n[i] * sizeof(float)) != 0;
        free(out[0][i]), free(out[1][i]);
    }
    check("conv2d, linear: the same bits with 1 and 2 threads", differ, 0);
    /* one sample through a layer large enough to share its rows (6e5
     * multiply-adds): the threads' blocks of rows, the same bits */
    enum { BIN = 1000, BOUT = 600 };
    float *bx = random_floats(BIN), *bw = random_floats((size_t)BOUT * BIN), *bb = random_floats(BOUT);
    float *by[2] = {alloc_floats(BOUT), alloc_floats(BOUT)};
    for (int t = 0; t < 2; t++) {
        nnrt_set_threads(t + 1);
        nnrt_linear_forward(by[t], bx, bw, bb, 1, BIN, BOUT);
    }
    double berr = 0;
    for (int o = 0; o < BOUT; o++) {
        double want = bb[o];
        for (int i = 0; i < BIN; i++)
            want += (double)bx[i] * bw[(size_t)o * BIN + i];
        berr = fmax(berr, fabs(by[1][o] - want));
    }
    check("linear 1 x 1000 -> 600 on 2 threads: the same bits as 1", memcmp(by[0], by[1], BOUT * sizeof(float)) != 0,
          0);
    check("linear 1 x 1000 -> 600 on 2 threads, forward", berr, 1e-4);
    free(bx), free(bw), free(bb), free(by[0]), free(by[1]);
    nnrt_set_threads(2);
    free(lx), free(lw), free(lb), free(ldy);
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

/* ---- 2b. the kernels of the operations issue: references and finite differences ---- */

/* PyTorch's pooled size: floor or ceil of (in + 2 pad - k)/s, + 1; in ceil
 * mode the last window must start inside the input or its left padding */
static int pool_out(int in, int k, int s, int pad, int ceil_mode)
{
    int out = (in + 2 * pad - k + (ceil_mode ? s - 1 : 0)) / s + 1;
    if (ceil_mode && (out - 1) * s >= in + pad)
        out--;
    return out;
}

static double avgpool_loss(void *ctx)
{
    pool_case *c = ctx;
    nnrt_avgpool2d_forward(c->y, c->x, &c->d);
    return dot(c->y, c->r, c->ny);
}

/* average pooling from the definition: every tap of every window, in
 * double; the divisor counts the taps inside the padded image
 * (count_include_pad) or inside the image */
static void avgpool_reference(float *y, const float *x, const nnrt_pool2d_dims *d)
{
    for (int nc = 0; nc < d->N * d->C; nc++)
        for (int p = 0; p < d->P; p++)
            for (int q = 0; q < d->Q; q++) {
                double sum = 0.0;
                int inside = 0, padded = 0;
                for (int i = 0; i < d->kh; i++)
                    for (int j = 0; j < d->kw; j++) {
                        int h = p * d->stride_h - d->pad_h + i;
                        int v = q * d->stride_w - d->pad_w + j;
                        padded += h < d->H + d->pad_h && v < d->W + d->pad_w;
                        if (h >= 0 && h < d->H && v >= 0 && v < d->W) {
                            sum += x[(nc * d->H + h) * d->W + v];
                            inside++;
                        }
                    }
                y[(nc * d->P + p) * d->Q + q] = (float)(sum / (d->count_include_pad ? padded : inside));
            }
}

/* avgpool2d forward against the reference, dx by finite differences, and
 * max pooling of the same (ceil-mode) windows against its reference and
 * finite differences */
static void avgpool_grad(const char *name, int N, int C, int H, int W, int kh, int kw, int sh, int sw,
                         int ph, int pw, int ceil_mode, int include_pad)
{
    char label[128];
    pool_case c = pool_make(N, C, H, W, kh, kw, sh, sw, ph, pw, ceil_mode);
    c.d.count_include_pad = include_pad;
    float *want = alloc_floats(c.ny), *gx = alloc_floats(c.nx);

    nnrt_avgpool2d_forward(c.y, c.x, &c.d);
    avgpool_reference(want, c.x, &c.d);
    snprintf(label, sizeof label, "avgpool2d %s forward vs reference", name);
    check(label, max_err(c.y, want, c.ny), EXACT_TOL);
    nnrt_avgpool2d_backward(gx, c.r, &c.d);
    snprintf(label, sizeof label, "avgpool2d %s dx", name);
    check(label, fd_error(avgpool_loss, &c, c.x, c.nx, gx), FD_TOL);

    memset(gx, 0, c.nx * sizeof *gx);
    nnrt_maxpool2d_forward(c.y, c.x, &c.d);
    pool_reference(want, c.x, &c.d);
    snprintf(label, sizeof label, "maxpool2d %s forward vs reference", name);
    check(label, max_err(c.y, want, c.ny), EXACT_TOL);
    nnrt_maxpool2d_backward(gx, c.r, c.x, &c.d);
    snprintf(label, sizeof label, "maxpool2d %s dx", name);
    check(label, fd_error(pool_loss, &c, c.x, c.nx, gx), FD_TOL);
    free(want), free(gx), free(c.x), free(c.y), free(c.r);
}

typedef struct adaptive_case {
    int N, C, H, W, P, Q;
    float *x, *y, *r;
} adaptive_case;

static double adaptive_loss(void *ctx)
{
    adaptive_case *c = ctx;
    nnrt_adaptive_avgpool2d_forward(c->y, c->x, c->N, c->C, c->H, c->W, c->P, c->Q);
    return dot(c->y, c->r, (size_t)c->N * c->C * c->P * c->Q);
}

/* adaptive pooling from the definition: rows floor(i H / P) .. ceil((i+1) H / P) - 1 */
static void adaptive_reference(float *y, const adaptive_case *c)
{
    for (int nc = 0; nc < c->N * c->C; nc++)
        for (int p = 0; p < c->P; p++)
            for (int q = 0; q < c->Q; q++) {
                int h0 = (int)floor((double)p * c->H / c->P), h1 = (int)ceil((double)(p + 1) * c->H / c->P);
                int w0 = (int)floor((double)q * c->W / c->Q), w1 = (int)ceil((double)(q + 1) * c->W / c->Q);
                double sum = 0.0;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++)
                        sum += c->x[(nc * c->H + h) * c->W + w];
                y[(nc * c->P + p) * c->Q + q] = (float)(sum / ((h1 - h0) * (w1 - w0)));
            }
}

static void adaptive_grad(const char *name, int N, int C, int H, int W, int P, int Q)
{
    char label[128];
    size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * P * Q;
    adaptive_case c = {N, C, H, W, P, Q, random_floats(nx), alloc_floats(ny), random_floats(ny)};
    float *want = alloc_floats(ny), *gx = alloc_floats(nx);
    adaptive_loss(&c);
    adaptive_reference(want, &c);
    snprintf(label, sizeof label, "adaptive_avgpool2d %s forward vs reference", name);
    check(label, max_err(c.y, want, ny), EXACT_TOL);
    nnrt_adaptive_avgpool2d_backward(gx, c.r, N, C, H, W, P, Q);
    snprintf(label, sizeof label, "adaptive_avgpool2d %s dx", name);
    check(label, fd_error(adaptive_loss, &c, c.x, nx, gx), FD_TOL);
    free(want), free(gx), free(c.x), free(c.y), free(c.r);
}

/* the elementwise activations, by kind */
enum { LEAKY, SIGMOID, TANH, GELU, SILU, ELU };
static const char *const act_names[] = {"leaky_relu", "sigmoid", "tanh", "gelu", "silu", "elu"};

typedef struct act_case {
    int kind;
    size_t n;
    float *x, *y, *r;
} act_case;

static void act_forward(const act_case *c)
{
    switch (c->kind) {
    case LEAKY: nnrt_leaky_relu_forward(c->y, c->x, c->n, 0.2f); break;
    case SIGMOID: nnrt_sigmoid_forward(c->y, c->x, c->n); break;
    case TANH: nnrt_tanh_forward(c->y, c->x, c->n); break;
    case SILU: nnrt_silu_forward(c->y, c->x, c->n); break;
    case ELU: nnrt_elu_forward(c->y, c->x, c->n, 1.5f); break;
    default: nnrt_gelu_forward(c->y, c->x, c->n); break;
    }
}

/* dx += backward of the activation; x is the input, y the forward's output */
static void act_backward(const act_case *c, float *dx, const float *dy)
{
    switch (c->kind) {
    case LEAKY: nnrt_leaky_relu_backward(dx, dy, c->x, c->n, 0.2f); break;
    case SIGMOID: nnrt_sigmoid_backward(dx, dy, c->y, c->n); break;
    case TANH: nnrt_tanh_backward(dx, dy, c->y, c->n); break;
    case SILU: nnrt_silu_backward(dx, dy, c->x, c->n); break;
    case ELU: nnrt_elu_backward(dx, dy, c->x, c->n, 1.5f); break;
    default: nnrt_gelu_backward(dx, dy, c->x, c->n); break;
    }
}

static double act_loss(void *ctx)
{
    act_case *c = ctx;
    act_forward(c);
    return dot(c->y, c->r, c->n);
}

/* each activation on 60 inputs in [-3, 3], at least 0.05 from 0 (leaky
 * ReLU's and ELU's kink); then backward accumulates and takes NULL */
static void act_grad(int kind)
{
    char label[128];
    act_case c = {kind, 60, random_floats(60), alloc_floats(60), random_floats(60)};
    for (size_t i = 0; i < c.n; i++)
        c.x[i] = 3.0f * c.x[i] + (c.x[i] < 0 ? -0.05f : 0.05f);
    float *gx = alloc_floats(c.n), *g2 = alloc_floats(c.n);
    act_forward(&c);
    act_backward(&c, gx, c.r);
    snprintf(label, sizeof label, "%s dx", act_names[kind]);
    check(label, fd_error(act_loss, &c, c.x, c.n, gx), FD_TOL);

    act_forward(&c);
    act_backward(&c, g2, c.r);
    act_backward(&c, g2, c.r);
    act_backward(&c, NULL, c.r);
    snprintf(label, sizeof label, "%s backward accumulates, NULL dx", act_names[kind]);
    check(label, doubled_err(g2, gx, c.n), EXACT_TOL);
    free(gx), free(g2), free(c.x), free(c.y), free(c.r);
}

typedef struct softmax_case {
    int is_log, outer, C, inner;
    float *x, *y, *r;
} softmax_case;

static double softmax_loss(void *ctx)
{
    softmax_case *c = ctx;
    if (c->is_log)
        nnrt_log_softmax_forward(c->y, c->x, c->outer, c->C, c->inner);
    else
        nnrt_softmax_forward(c->y, c->x, c->outer, c->C, c->inner);
    return dot(c->y, c->r, (size_t)c->outer * c->C * c->inner);
}

/* (log-)softmax over C of [outer, C, inner]: forward against exp(x)/sum
 * exp(x) in double, dx by finite differences, accumulation and NULL */
static void softmax_grad(int is_log, int outer, int C, int inner, double scale)
{
    char label[128];
    size_t n = (size_t)outer * C * inner;
    softmax_case c = {is_log, outer, C, inner, random_floats(n), alloc_floats(n), random_floats(n)};
    float *want = alloc_floats(n), *gx = alloc_floats(n), *g2 = alloc_floats(n);
    for (size_t i = 0; i < n; i++)
        c.x[i] *= (float)scale;
    for (int o = 0; o < outer; o++)
        for (int i = 0; i < inner; i++) {
            double s = 0.0;
            for (int k = 0; k < C; k++)
                s += exp((double)c.x[((size_t)o * C + k) * inner + i]);
            for (int k = 0; k < C; k++) {
                size_t at = ((size_t)o * C + k) * inner + i;
                want[at] = (float)(is_log ? c.x[at] - log(s) : exp((double)c.x[at]) / s);
            }
        }
    const char *what = is_log ? "log_softmax" : "softmax";
    softmax_loss(&c);
    snprintf(label, sizeof label, "%s [%d,%d,%d] forward vs reference", what, outer, C, inner);
    check(label, max_err(c.y, want, n), EXACT_TOL);
    if (is_log)
        nnrt_log_softmax_backward(gx, c.r, c.y, outer, C, inner);
    else
        nnrt_softmax_backward(gx, c.r, c.y, outer, C, inner);
    snprintf(label, sizeof label, "%s [%d,%d,%d] dx", what, outer, C, inner);
    check(label, fd_error(softmax_loss, &c, c.x, n, gx), FD_TOL);

    softmax_loss(&c);
    for (int k = 0; k < 2; k++) {
        if (is_log)
            nnrt_log_softmax_backward(g2, c.r, c.y, outer, C, inner);
        else
            nnrt_softmax_backward(g2, c.r, c.y, outer, C, inner);
    }
    if (is_log)
        nnrt_log_softmax_backward(NULL, c.r, c.y, outer, C, inner);
    else
        nnrt_softmax_backward(NULL, c.r, c.y, outer, C, inner);
    snprintf(label, sizeof label, "%s [%d,%d,%d] accumulates, NULL dx", what, outer, C, inner);
    check(label, doubled_err(g2, gx, n), EXACT_TOL);
    free(want), free(gx), free(g2), free(c.x), free(c.y), free(c.r);
}

typedef struct dropout_case {
    size_t n;
    float p;
    float *x, *y, *mask, *r;
} dropout_case;

/* the same seed on every call, so the mask stays fixed while x moves */
static double dropout_loss(void *ctx)
{
    dropout_case *c = ctx;
    nnrt_rng r;
    nnrt_rng_seed(&r, 11);
    nnrt_dropout_forward(c->y, c->mask, c->x, c->n, c->p, &r);
    return dot(c->y, c->r, c->n);
}

static void dropout_grad(void)
{
    dropout_case c = {50, 0.4f, random_floats(50), alloc_floats(50), alloc_floats(50), random_floats(50)};
    float *gx = alloc_floats(c.n), *g2 = alloc_floats(c.n);
    dropout_loss(&c);
    nnrt_dropout_backward(gx, c.r, c.mask, c.n);
    check("dropout p=0.4 dx (fixed seed)", fd_error(dropout_loss, &c, c.x, c.n, gx), FD_TOL);
    nnrt_dropout_backward(g2, c.r, c.mask, c.n);
    nnrt_dropout_backward(g2, c.r, c.mask, c.n);
    nnrt_dropout_backward(NULL, c.r, c.mask, c.n);
    check("dropout backward accumulates, NULL dx", doubled_err(g2, gx, c.n), EXACT_TOL);
    free(gx), free(g2), free(c.x), free(c.y), free(c.mask), free(c.r);
}

typedef struct bn_case {
    nnrt_bn_dims d;
    float *x, *gamma, *beta, *y, *r;      /* gamma, beta NULL without affine */
    float *mean, *invstd, *rm, *rv;
} bn_case;

static double bn_loss(void *ctx)
{
    bn_case *c = ctx;
    nnrt_batchnorm_forward_train(c->y, c->mean, c->invstd, c->rm, c->rv, c->x, c->gamma, c->beta, &c->d);
    return dot(c->y, c->r, (size_t)c->d.N * c->d.C * c->d.HW);
}

/* batch norm in training: forward against the definition (two-pass
 * statistics in double), dx, dgamma, dbeta by finite differences,
 * accumulation and NULL gradients. x has a per-channel offset so that the
 * mean matters. */
static void bn_grad(const char *name, int N, int C, int HW, int affine)
{
    char label[128];
    size_t n = (size_t)N * C * HW;
    bn_case c = {.d = {.N = N, .C = C, .HW = HW, .eps = 1e-5f, .momentum = 0.1f}, .x = random_floats(n), .y = alloc_floats(n),
                 .r = random_floats(n), .mean = alloc_floats(C), .invstd = alloc_floats(C),
                 .rm = alloc_floats(C), .rv = alloc_floats(C)};
    if (affine)
        c.gamma = random_floats(C), c.beta = random_floats(C);
    for (size_t i = 0; i < n; i++)
        c.x[i] += (float)((i / HW) % C);

    float *want = alloc_floats(n);
    for (int k = 0; k < C; k++) {
        double s = 0, ss = 0;
        for (int b = 0; b < N; b++)
            for (int i = 0; i < HW; i++)
                s += c.x[((size_t)b * C + k) * HW + i];
        double mu = s / (N * HW);
        for (int b = 0; b < N; b++)
            for (int i = 0; i < HW; i++) {
                double e = c.x[((size_t)b * C + k) * HW + i] - mu;
                ss += e * e;
            }
        double sd = sqrt(ss / (N * HW) + 1e-5);
        for (int b = 0; b < N; b++)
            for (int i = 0; i < HW; i++) {
                size_t at = ((size_t)b * C + k) * HW + i;
                want[at] = (float)((c.x[at] - mu) / sd * (affine ? c.gamma[k] : 1) + (affine ? c.beta[k] : 0));
            }
    }
    bn_loss(&c);
    snprintf(label, sizeof label, "batchnorm %s forward vs reference", name);
    check(label, max_err(c.y, want, n), EXACT_TOL);

    float *gx = alloc_floats(n), *gg = alloc_floats(C), *gb = alloc_floats(C);
    nnrt_batchnorm_backward(gx, affine ? gg : NULL, affine ? gb : NULL, c.r, c.x, c.mean, c.invstd,
                            c.gamma, &c.d);
    fd_check("batchnorm", name, "dx", bn_loss, &c, c.x, n, gx);
    if (affine) {
        fd_check("batchnorm", name, "dgamma", bn_loss, &c, c.gamma, C, gg);
        fd_check("batchnorm", name, "dbeta", bn_loss, &c, c.beta, C, gb);
    }

    /* twice into fresh buffers is double; NULL for each in turn changes nothing else */
    float *gx2 = alloc_floats(n), *gg2 = alloc_floats(C), *gb2 = alloc_floats(C);
    bn_loss(&c);
    for (int k = 0; k < 2; k++)
        nnrt_batchnorm_backward(gx2, affine ? gg2 : NULL, affine ? gb2 : NULL, c.r, c.x, c.mean,
                                c.invstd, c.gamma, &c.d);
    nnrt_batchnorm_backward(NULL, NULL, NULL, c.r, c.x, c.mean, c.invstd, c.gamma, &c.d);
    snprintf(label, sizeof label, "batchnorm %s backward accumulates", name);
    check(label, fmax(doubled_err(gx2, gx, n), fmax(doubled_err(gg2, gg, C), doubled_err(gb2, gb, C))),
          EXACT_TOL);
    free(want), free(gx), free(gg), free(gb), free(gx2), free(gg2), free(gb2);
    free(c.x), free(c.gamma), free(c.beta), free(c.y), free(c.r);
    free(c.mean), free(c.invstd), free(c.rm), free(c.rv);
}

/* batch norm large enough to share its channels between threads (2^17
 * values): 2d [16, 8, 32x32] channel by channel, 1d [1024, 128] by runs of
 * channels; forward (training, evaluation) and backward give the same bits
 * with 1 and 2 threads */
static void bn_threads_same_bits(void)
{
    const int shapes[2][3] = {{16, 8, 1024}, {1024, 128, 1}};
    int differ = 0, threads = nnrt_threads();
    for (int s = 0; s < 2; s++) {
        int N = shapes[s][0], C = shapes[s][1], HW = shapes[s][2];
        size_t n = (size_t)N * C * HW, len[9] = {n, C, C, C, C, n, C, C, n};
        nnrt_bn_dims d = {.N = N, .C = C, .HW = HW, .eps = 1e-5f, .momentum = 0.1f};
        float *x = random_floats(n), *dy = random_floats(n), *gamma = random_floats(C), *beta = random_floats(C);
        float *out[2][9];       /* y, mean, invstd, running mean, running var, dx, dgamma, dbeta, eval y */
        for (int t = 0; t < 2; t++) {
            float **o = out[t];
            for (int i = 0; i < 9; i++)
                o[i] = alloc_floats(len[i]);
            nnrt_set_threads(t + 1);
            nnrt_batchnorm_forward_train(o[0], o[1], o[2], o[3], o[4], x, gamma, beta, &d);
            nnrt_batchnorm_backward(o[5], o[6], o[7], dy, x, o[1], o[2], gamma, &d);
            nnrt_batchnorm_forward_eval(o[8], x, gamma, beta, o[3], o[4], &d);
        }
        float *dxa = alloc_floats(n);           /* assigning: what dx held does not matter */
        for (size_t i = 0; i < n; i++)
            dxa[i] = 1e30f;
        d.assign_dx = 1;
        nnrt_batchnorm_backward(dxa, NULL, NULL, dy, x, out[0][1], out[0][2], gamma, &d);
        differ += memcmp(dxa, out[0][5], n * sizeof(float)) != 0;
        free(dxa);
        for (int i = 0; i < 9; i++) {
            differ += memcmp(out[0][i], out[1][i], len[i] * sizeof(float)) != 0;
            free(out[0][i]), free(out[1][i]);
        }
        free(x), free(dy), free(gamma), free(beta);
    }
    nnrt_set_threads(threads);
    check("batchnorm 2d, 1d: the same bits with 1 and 2 threads, and assigning dx", differ, 0);
}

typedef struct emb_case {
    int rows, num, D;
    float *idx, *w, *y, *r;
} emb_case;

static double emb_loss(void *ctx)
{
    emb_case *c = ctx;
    nnrt_embedding_forward(c->y, c->idx, c->w, c->rows, c->num, c->D);
    return dot(c->y, c->r, (size_t)c->rows * c->D);
}

/* embedding of rows ids drawn from [0, num) (so some repeat when rows >
 * num): d weight by finite differences, accumulation */
static void embedding_grad(int rows, int num, int D)
{
    char label[128];
    emb_case c = {rows, num, D, alloc_floats(rows), random_floats((size_t)num * D),
                  alloc_floats((size_t)rows * D), random_floats((size_t)rows * D)};
    for (int r = 0; r < rows; r++)
        c.idx[r] = (float)(nnrt_rng_next(&rng) % (uint64_t)num);
    size_t nw = (size_t)num * D;
    float *gw = alloc_floats(nw), *gw2 = alloc_floats(nw);
    nnrt_embedding_backward(gw, c.r, c.idx, rows, num, D);
    char name[64];
    snprintf(name, sizeof name, "[%d ids of %d, D=%d]", rows, num, D);
    fd_check("embedding", name, "dw", emb_loss, &c, c.w, nw, gw);
    for (int k = 0; k < 2; k++)
        nnrt_embedding_backward(gw2, c.r, c.idx, rows, num, D);
    snprintf(label, sizeof label, "embedding %s accumulates", name);
    check(label, doubled_err(gw2, gw, nw), EXACT_TOL);
    free(gw), free(gw2), free(c.idx), free(c.w), free(c.y), free(c.r);
}

typedef struct ln_case {
    int rows, C;
    float *x, *w, *b, *y, *mean, *rstd, *r;
} ln_case;

static double ln_loss(void *ctx)
{
    ln_case *c = ctx;
    nnrt_layernorm_forward(c->y, c->mean, c->rstd, c->x, c->w, c->b, c->rows, c->C, 1e-5f);
    return dot(c->y, c->r, (size_t)c->rows * c->C);
}

/* layer norm of [rows, C], each row offset by its index (the mean
 * matters): forward against the definition in double, dx, dw, db by finite
 * differences, accumulation and NULL gradients */
static void layernorm_grad(int rows, int C, int affine)
{
    char label[128], name[64];
    size_t n = (size_t)rows * C;
    ln_case c = {rows, C, random_floats(n), NULL, NULL, alloc_floats(n), alloc_floats(rows), alloc_floats(rows),
                 random_floats(n)};
    if (affine)
        c.w = random_floats(C), c.b = random_floats(C);
    for (size_t i = 0; i < n; i++)
        c.x[i] += (float)(i / C);
    snprintf(name, sizeof name, "[%d,%d]%s", rows, C, affine ? "" : " no affine");

    float *want = alloc_floats(n);
    for (int r = 0; r < rows; r++) {
        const float *x = c.x + (size_t)r * C;
        double s = 0, ss = 0;
        for (int i = 0; i < C; i++)
            s += x[i];
        for (int i = 0; i < C; i++)
            ss += (x[i] - s / C) * (x[i] - s / C);
        for (int i = 0; i < C; i++)
            want[(size_t)r * C + i] = (float)((x[i] - s / C) / sqrt(ss / C + 1e-5) * (affine ? c.w[i] : 1) +
                                              (affine ? c.b[i] : 0));
    }
    ln_loss(&c);
    snprintf(label, sizeof label, "layernorm %s forward vs reference", name);
    check(label, max_err(c.y, want, n), EXACT_TOL);

    float *gx = alloc_floats(n), *gw = alloc_floats(C), *gb = alloc_floats(C);
    nnrt_layernorm_backward(gx, affine ? gw : NULL, affine ? gb : NULL, c.r, c.x, c.mean, c.rstd, c.w, rows, C);
    fd_check("layernorm", name, "dx", ln_loss, &c, c.x, n, gx);
    if (affine) {
        fd_check("layernorm", name, "dw", ln_loss, &c, c.w, C, gw);
        fd_check("layernorm", name, "db", ln_loss, &c, c.b, C, gb);
    }

    float *gx2 = alloc_floats(n), *gw2 = alloc_floats(C), *gb2 = alloc_floats(C);
    ln_loss(&c);
    for (int k = 0; k < 2; k++)
        nnrt_layernorm_backward(gx2, affine ? gw2 : NULL, affine ? gb2 : NULL, c.r, c.x, c.mean, c.rstd, c.w,
                                rows, C);
    nnrt_layernorm_backward(NULL, NULL, NULL, c.r, c.x, c.mean, c.rstd, c.w, rows, C);
    snprintf(label, sizeof label, "layernorm %s backward accumulates, NULL gradients", name);
    check(label, fmax(doubled_err(gx2, gx, n), fmax(doubled_err(gw2, gw, C), doubled_err(gb2, gb, C))),
          EXACT_TOL);
    free(want), free(gx), free(gw), free(gb), free(gx2), free(gw2), free(gb2);
    free(c.x), free(c.w), free(c.b), free(c.y), free(c.mean), free(c.rstd), free(c.r);
}

typedef struct att_case {
    int N, T, C, H, causal;
    float *qkv, *y, *att, *r;
} att_case;

static double att_loss(void *ctx)
{
    att_case *c = ctx;
    nnrt_attention_forward(c->y, c->att, c->qkv, c->N, c->T, c->C, c->H, c->causal);
    return dot(c->y, c->r, (size_t)c->N * c->T * c->C);
}

/* y[N, T, C] and att[N, H, T, T] of attention straight from the
 * definition, in double */
static void attention_reference(float *y, float *att, const att_case *c)
{
    int T = c->T, C = c->C, H = c->H, Dh = C / H;
    double *s = malloc((size_t)T * sizeof *s);
    for (int n = 0; n < c->N; n++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                const float *q = c->qkv + ((size_t)n * T + i) * 3 * C + h * Dh;
                double m = -INFINITY, sum = 0;
                for (int j = 0; j < T; j++) {
                    const float *k = c->qkv + ((size_t)n * T + j) * 3 * C + C + h * Dh;
                    s[j] = -INFINITY;
                    if (c->causal && j > i)
                        continue;
                    s[j] = 0;
                    for (int d = 0; d < Dh; d++)
                        s[j] += (double)q[d] * k[d];
                    s[j] /= sqrt(Dh);
                    m = fmax(m, s[j]);
                }
                for (int j = 0; j < T; j++) {
                    s[j] = exp(s[j] - m);
                    sum += s[j];
                }
                float *a = att + (((size_t)n * H + h) * T + i) * T;
                for (int j = 0; j < T; j++)
                    a[j] = (float)(s[j] / sum);
                for (int d = 0; d < Dh; d++) {
                    double v = 0;
                    for (int j = 0; j < T; j++)
                        v += s[j] / sum * c->qkv[((size_t)n * T + j) * 3 * C + 2 * C + h * Dh + d];
                    y[((size_t)n * T + i) * C + h * Dh + d] = (float)v;
                }
            }
    free(s);
}

/* attention of [N, T, C] over H heads: forward and probabilities against
 * the definition, d qkv by finite differences, accumulation and NULL */
static void attention_grad(int N, int T, int C, int H, int causal)
{
    char label[128], name[64];
    size_t n = (size_t)N * T * 3 * C, ny = (size_t)N * T * C, na = (size_t)N * H * T * T;
    att_case c = {N, T, C, H, causal, random_floats(n), alloc_floats(ny), alloc_floats(na), random_floats(ny)};
    for (size_t i = 0; i < n; i++)
        c.qkv[i] *= 2.0f;       /* probabilities far from uniform */
    snprintf(name, sizeof name, "[%d,%d,%d] H=%d%s", N, T, C, H, causal ? " causal" : "");
    float *want = alloc_floats(ny), *want_att = alloc_floats(na);
    attention_reference(want, want_att, &c);
    att_loss(&c);
    snprintf(label, sizeof label, "attention %s forward, att vs reference", name);
    check(label, fmax(max_err(c.y, want, ny), max_err(c.att, want_att, na)), EXACT_TOL);

    float *g = alloc_floats(n), *g2 = alloc_floats(n);
    nnrt_attention_backward(g, c.r, c.att, c.qkv, N, T, C, H, causal);
    fd_check("attention", name, "dqkv", att_loss, &c, c.qkv, n, g);
    att_loss(&c);
    for (int k = 0; k < 2; k++)
        nnrt_attention_backward(g2, c.r, c.att, c.qkv, N, T, C, H, causal);
    nnrt_attention_backward(NULL, c.r, c.att, c.qkv, N, T, C, H, causal);
    snprintf(label, sizeof label, "attention %s accumulates, NULL dqkv", name);
    check(label, doubled_err(g2, g, n), EXACT_TOL);
    free(want), free(want_att), free(g), free(g2), free(c.qkv), free(c.y), free(c.att), free(c.r);
}

/* embedding, layer norm, attention and the LSTM large enough to share
 * their work between threads (the LSTM: its products, and 130 samples of
 * 128 units a step): forward and backward give the same bits with 1 and 2
 * threads */
static void sequence_threads_same_bits(void)
{
    enum { ROWS = 4096, NUM = 50, D = 64, LR = 2048, LC = 96, N = 2, T = 64, C = 128, H = 4 };
    enum { RN = 130, RT = 6, RI = 64, RH = 128 };
    size_t nqkv = (size_t)N * T * 3 * C, nrx = (size_t)RN * RT * RI, nry = (size_t)RN * RT * RH;
    /* per thread count: embedding y, dw; layernorm y, mean, rstd, dx, dw, db;
     * attention y, att, dqkv; lstm y, saved, dx, dw_ih, dw_hh, db_ih, db_hh */
    enum { NOUT = 18 };
    const size_t len[NOUT] = {(size_t)ROWS * D, (size_t)NUM * D, (size_t)LR * LC, LR, LR, (size_t)LR * LC, LC, LC,
                              (size_t)N * T * C, (size_t)N * H * T * T, nqkv,
                              nry, 5 * nry, nrx, (size_t)4 * RH * RI, (size_t)4 * RH * RH, 4 * RH, 4 * RH};
    float *idx = alloc_floats(ROWS), *w = random_floats((size_t)NUM * D), *dy = random_floats((size_t)ROWS * D);
    for (int r = 0; r < ROWS; r++)
        idx[r] = (float)(nnrt_rng_next(&rng) % NUM);
    float *x = random_floats((size_t)LR * LC), *lw = random_floats(LC), *lb = random_floats(LC);
    float *ldy = random_floats((size_t)LR * LC), *qkv = random_floats(nqkv), *ady = random_floats((size_t)N * T * C);
    float *rx = random_floats(nrx), *w_ih = random_floats(len[14]), *w_hh = random_floats(len[15]);
    float *b_ih = random_floats(4 * RH), *b_hh = random_floats(4 * RH), *rdy = random_floats(nry);
    nnrt_scale(w_hh, len[15], 0.1f);    /* the gates not saturated */
    float *out[2][NOUT];
    int differ = 0, threads = nnrt_threads();
    for (int t = 0; t < 2; t++) {
        float **o = out[t];
        for (int i = 0; i < NOUT; i++)
            o[i] = alloc_floats(len[i]);
        nnrt_set_threads(t + 1);
        nnrt_embedding_forward(o[0], idx, w, ROWS, NUM, D);
        nnrt_embedding_backward(o[1], dy, idx, ROWS, NUM, D);
        nnrt_layernorm_forward(o[2], o[3], o[4], x, lw, lb, LR, LC, 1e-5f);
        nnrt_layernorm_backward(o[5], o[6], o[7], ldy, x, o[3], o[4], lw, LR, LC);
        nnrt_attention_forward(o[8], o[9], qkv, N, T, C, H, 1);
        nnrt_attention_backward(o[10], ady, o[9], qkv, N, T, C, H, 1);
        nnrt_lstm_forward(o[11], o[12], rx, w_ih, w_hh, b_ih, b_hh, RN, RT, RI, RH);
        nnrt_lstm_backward(o[13], o[14], o[15], o[16], o[17], rdy, rx, o[11], o[12], w_ih, w_hh, RN, RT, RI,
                           RH);
    }
    nnrt_set_threads(threads);
    for (int i = 0; i < NOUT; i++) {
        differ += memcmp(out[0][i], out[1][i], len[i] * sizeof(float)) != 0;
        free(out[0][i]), free(out[1][i]);
    }
    free(idx), free(w), free(dy), free(x), free(lw), free(lb), free(ldy), free(qkv), free(ady);
    free(rx), free(w_ih), free(w_hh), free(b_ih), free(b_hh), free(rdy);
    check("embedding, layernorm, attention, lstm: the same bits with 1 and 2 threads", differ, 0);
}

/* the scratch requests run(ctx) makes on 2 threads, with the workspace w
 * plans, that miss it */
static long workspace_misses(const nnrt_workspace *w, void (*run)(void *), void *ctx)
{
    float *mem = nnrt_alloc(nnrt_workspace_floats(w, 2), "the test's workspace");
    int threads = nnrt_threads();
    nnrt_set_threads(2);
    nnrt_workspace_use(mem, w, 2);
    long before = nnrt_workspace_misses();
    run(ctx);
    long missed = nnrt_workspace_misses() - before;
    nnrt_workspace_release(mem);
    free(mem);
    nnrt_set_threads(threads);
    return missed;
}

typedef struct att_ws_case {
    int N, T, C, H;
    float *qkv, *dy, *y, *att, *dqkv;
} att_ws_case;

static void att_ws_run(void *ctx)
{
    att_ws_case *c = ctx;
    nnrt_attention_forward(c->y, c->att, c->qkv, c->N, c->T, c->C, c->H, 1);
    nnrt_attention_backward(c->dqkv, c->dy, c->att, c->qkv, c->N, c->T, c->C, c->H, 1);
    nnrt_attention_backward(c->dqkv, c->dy, c->att, c->qkv, 1, 3, 8, 2, 0);     /* a smaller call */
}

/* attention's scratch comes from the workspace nnrt_workspace_attention
 * plans: with 2 threads, no request misses it; half the plan does miss
 * (the check can fail) */
static void attention_workspace(void)
{
    enum { N = 2, T = 64, C = 128, H = 4 };
    att_ws_case c = {N, T, C, H, random_floats((size_t)N * T * 3 * C), random_floats((size_t)N * T * C),
                     alloc_floats((size_t)N * T * C), alloc_floats((size_t)N * H * T * T),
                     alloc_floats((size_t)N * T * 3 * C)};
    long missed[2];
    for (int half = 0; half < 2; half++) {
        nnrt_workspace w = {{0}};
        nnrt_workspace_attention(&w, N, half ? T / 2 : T, C, H);
        missed[half] = workspace_misses(&w, att_ws_run, &c);
    }
    check("attention: no scratch request misses the planned workspace", (double)missed[0], 0);
    check("attention: half the planned workspace misses", missed[1] > 0 ? 0 : 1, 0);
    free(c.qkv), free(c.dy), free(c.y), free(c.att), free(c.dqkv);
}

typedef struct lstm_case {
    int N, T, I, H;
    float *x, *w_ih, *w_hh, *b_ih, *b_hh, *y, *saved, *r;   /* b_ih, b_hh NULL: no bias */
} lstm_case;

static double lstm_loss(void *ctx)
{
    lstm_case *c = ctx;
    nnrt_lstm_forward(c->y, c->saved, c->x, c->w_ih, c->w_hh, c->b_ih, c->b_hh, c->N, c->T, c->I, c->H);
    return dot(c->y, c->r, (size_t)c->N * c->T * c->H);
}

/* lstm of x[N, T, I] with H hidden units: every gradient by finite
 * differences; two calls give twice one; NULL for any gradient leaves the
 * others as they are */
static void lstm_grad(int N, int T, int I, int H, int bias)
{
    char label[128], name[64];
    size_t nx = (size_t)N * T * I, ny = (size_t)N * T * H, nih = (size_t)4 * H * I, nhh = (size_t)4 * H * H;
    size_t nb = (size_t)4 * H;
    lstm_case c = {N, T, I, H, random_floats(nx), random_floats(nih), random_floats(nhh),
                   bias ? random_floats(nb) : NULL, bias ? random_floats(nb) : NULL, alloc_floats(ny),
                   alloc_floats(ny * 5), random_floats(ny)};
    snprintf(name, sizeof name, "[%d,%d,%d] H=%d%s", N, T, I, H, bias ? "" : " no bias");
    /* g[0..4]: dx, dw_ih, dw_hh, db_ih, db_hh once; g2: the same, twice */
    size_t len[5] = {nx, nih, nhh, nb, nb};
    float *g[5], *g2[5];
    for (int k = 0; k < 5; k++)
        g[k] = alloc_floats(len[k]), g2[k] = alloc_floats(len[k]);
    lstm_loss(&c);
    nnrt_lstm_backward(g[0], g[1], g[2], bias ? g[3] : NULL, bias ? g[4] : NULL, c.r, c.x, c.y, c.saved, c.w_ih,
                       c.w_hh, N, T, I, H);
    fd_check("lstm", name, "dx", lstm_loss, &c, c.x, nx, g[0]);
    fd_check("lstm", name, "dw_ih", lstm_loss, &c, c.w_ih, nih, g[1]);
    fd_check("lstm", name, "dw_hh", lstm_loss, &c, c.w_hh, nhh, g[2]);
    if (bias) {
        fd_check("lstm", name, "db_ih", lstm_loss, &c, c.b_ih, nb, g[3]);
        fd_check("lstm", name, "db_hh", lstm_loss, &c, c.b_hh, nb, g[4]);
    }
    lstm_loss(&c);
    for (int k = 0; k < 2; k++)
        nnrt_lstm_backward(g2[0], g2[1], g2[2], bias ? g2[3] : NULL, bias ? g2[4] : NULL, c.r, c.x, c.y, c.saved,
                           c.w_ih, c.w_hh, N, T, I, H);
    nnrt_lstm_backward(NULL, NULL, NULL, NULL, NULL, c.r, c.x, c.y, c.saved, c.w_ih, c.w_hh, N, T, I, H);
    double e = 0;
    for (int k = 0; k < 5; k++)
        e = fmax(e, doubled_err(g2[k], g[k], len[k]));
    snprintf(label, sizeof label, "lstm %s backward accumulates", name);
    check(label, e, EXACT_TOL);
    /* each gradient alone, into zeros: what the call with all five gave */
    e = 0;
    for (int k = 0; k < 5; k++) {
        float *one[5] = {NULL};
        memset(g2[k], 0, len[k] * sizeof(float));
        one[k] = g2[k];
        if (bias || k < 3)
            nnrt_lstm_backward(one[0], one[1], one[2], one[3], one[4], c.r, c.x, c.y, c.saved, c.w_ih, c.w_hh, N,
                               T, I, H);
        e = fmax(e, max_err(g2[k], g[k], len[k]));
    }
    snprintf(label, sizeof label, "lstm %s backward NULL gradients", name);
    check(label, e, EXACT_TOL);
    for (int k = 0; k < 5; k++)
        free(g[k]), free(g2[k]);
    free(c.x), free(c.w_ih), free(c.w_hh), free(c.b_ih), free(c.b_hh), free(c.y), free(c.saved), free(c.r);
}

/* the planned batch, and batch 1 */
static void lstm_ws_run(void *ctx)
{
    lstm_case *c = ctx;
    int N = c->N, T = c->T, I = c->I, H = c->H;
    float *dx = alloc_floats((size_t)N * T * I), *dw_ih = alloc_floats((size_t)4 * H * I);
    float *dw_hh = alloc_floats((size_t)4 * H * H), *db_ih = alloc_floats(4 * H), *db_hh = alloc_floats(4 * H);
    for (int n = N; n >= 1; n -= N - 1) {
        nnrt_lstm_forward(c->y, c->saved, c->x, c->w_ih, c->w_hh, c->b_ih, c->b_hh, n, T, I, H);
        nnrt_lstm_backward(dx, dw_ih, dw_hh, db_ih, db_hh, c->r, c->x, c->y, c->saved, c->w_ih, c->w_hh, n, T,
                           I, H);
    }
    free(dx), free(dw_ih), free(dw_hh), free(db_ih), free(db_hh);
}

/* the LSTM's scratch comes from the workspace nnrt_workspace_lstm plans:
 * with 2 threads, no request misses it, at the planned batch or a smaller
 * one; half the steps' plan does miss (the check can fail). Under 6 steps
 * the steps' rows ask more of slot 2 than h_{t-1} of every step, and with
 * few inputs (I T < H) each step's product more than the projection's. */
static void lstm_workspace(int T, int I)
{
    enum { N = 40, H = 32 };
    size_t ny = (size_t)N * T * H;
    lstm_case c = {N, T, I, H, random_floats((size_t)N * T * I), random_floats((size_t)4 * H * I),
                   random_floats((size_t)4 * H * H), random_floats(4 * H), random_floats(4 * H), alloc_floats(ny),
                   alloc_floats(5 * ny), random_floats(ny)};
    long missed[2];
    for (int half = 0; half < 2; half++) {
        nnrt_workspace w = {{0}};
        nnrt_workspace_lstm(&w, N, half ? T / 2 : T, I, H);
        missed[half] = workspace_misses(&w, lstm_ws_run, &c);
    }
    char label[128];
    snprintf(label, sizeof label, "lstm, %d steps, %d inputs: no scratch request misses the plan", T, I);
    check(label, (double)missed[0], 0);
    snprintf(label, sizeof label, "lstm, %d steps, %d inputs: half the planned steps miss", T, I);
    check(label, missed[1] > 0 ? 0 : 1, 0);
    free(c.x), free(c.w_ih), free(c.w_hh), free(c.b_ih), free(c.b_hh), free(c.y), free(c.saved), free(c.r);
}

typedef struct merge_case {
    int N, C1, C2, inner;
    float *a, *b, *y, *r;       /* add: a, b [N, C1, inner]; concat: a [N,C1,..], b [N,C2,..] */
} merge_case;

static double add_loss(void *ctx)
{
    merge_case *c = ctx;
    size_t n = (size_t)c->N * c->C1 * c->inner;
    nnrt_add_forward(c->y, c->a, c->b, n);
    return dot(c->y, c->r, n);
}

static double concat_loss(void *ctx)
{
    merge_case *c = ctx;
    int Cy = c->C1 + c->C2;
    nnrt_concat_forward(c->y, c->a, c->N, c->C1, Cy, 0, c->inner);
    nnrt_concat_forward(c->y, c->b, c->N, c->C2, Cy, c->C1, c->inner);
    return dot(c->y, c->r, (size_t)c->N * Cy * c->inner);
}

/* add and concat: gradients of both operands by finite differences */
static void merge_grad(int N, int C1, int C2, int inner)
{
    char label[128];
    size_t na = (size_t)N * C1 * inner, nb = (size_t)N * C2 * inner, ny = na + nb;
    merge_case c = {N, C1, C1, inner, random_floats(na), random_floats(na), alloc_floats(na),
                    random_floats(na)};
    float *ga = alloc_floats(na), *gb = alloc_floats(na);
    nnrt_accumulate(ga, c.r, na);       /* the backward of add, once per operand */
    nnrt_accumulate(gb, c.r, na);
    snprintf(label, sizeof label, "add N=%d dx of both operands", N);
    check(label, fmax(fd_error(add_loss, &c, c.a, na, ga), fd_error(add_loss, &c, c.b, na, gb)), FD_TOL);
    free(c.b), free(c.y), free(c.r), free(gb);

    c.C2 = C2, c.b = random_floats(nb), c.y = alloc_floats(ny), c.r = random_floats(ny);
    gb = alloc_floats(nb);
    memset(ga, 0, na * sizeof *ga);
    nnrt_concat_backward(ga, c.r, N, C1, C1 + C2, 0, inner);
    nnrt_concat_backward(gb, c.r, N, C2, C1 + C2, C1, inner);
    nnrt_concat_backward(NULL, c.r, N, C2, C1 + C2, C1, inner);
    snprintf(label, sizeof label, "concat N=%d C=%d+%d dx of both inputs", N, C1, C2);
    check(label, fmax(fd_error(concat_loss, &c, c.a, na, ga), fd_error(concat_loss, &c, c.b, nb, gb)),
          FD_TOL);

    float *g2 = alloc_floats(nb);
    nnrt_concat_backward(g2, c.r, N, C2, C1 + C2, C1, inner);
    nnrt_concat_backward(g2, c.r, N, C2, C1 + C2, C1, inner);
    snprintf(label, sizeof label, "concat N=%d backward accumulates", N);
    check(label, doubled_err(g2, gb, nb), EXACT_TOL);
    free(g2), free(ga), free(gb), free(c.a), free(c.b), free(c.y), free(c.r);
}

/* the losses, by kind */
enum { L_MSE, L_L1, L_CE, L_NLL, L_BCE };
static const char *const loss_names[] = {"mse", "l1", "cross_entropy", "nll", "bce_with_logits"};

typedef struct loss_case {
    int kind, reduction, N, C;      /* n = N * C elements */
    float *x, *t;
    float dloss;
} loss_case;

static double loss_value(void *ctx)
{
    loss_case *c = ctx;
    size_t n = (size_t)c->N * c->C;
    float l;
    switch (c->kind) {
    case L_MSE: l = nnrt_mse_forward_r(c->x, c->t, n, c->reduction); break;
    case L_L1: l = nnrt_l1_forward(c->x, c->t, n, c->reduction); break;
    case L_CE: l = nnrt_cross_entropy_forward(c->x, c->t, c->N, c->C, c->reduction); break;
    case L_NLL: l = nnrt_nll_forward(c->x, c->t, c->N, c->C, c->reduction); break;
    default: l = nnrt_bce_with_logits_forward(c->x, c->t, n, c->reduction); break;
    }
    return (double)c->dloss * l;
}

static void loss_backward(const loss_case *c, float *dx)
{
    size_t n = (size_t)c->N * c->C;
    switch (c->kind) {
    case L_MSE: nnrt_mse_backward_r(dx, c->x, c->t, n, c->dloss, c->reduction); break;
    case L_L1: nnrt_l1_backward(dx, c->x, c->t, n, c->dloss, c->reduction); break;
    case L_CE: nnrt_cross_entropy_backward(dx, c->x, c->t, c->N, c->C, c->dloss, c->reduction); break;
    case L_NLL: nnrt_nll_backward(dx, c->t, c->N, c->C, c->dloss, c->reduction); break;
    default: nnrt_bce_with_logits_backward(dx, c->x, c->t, n, c->dloss, c->reduction); break;
    }
}

/* L = dloss * loss(x, t): dx by finite differences, accumulation, NULL.
 * Targets: class indices for cross-entropy and NLL, probabilities in
 * [0, 1] for BCE, values at least 0.05 from x for L1 (its kink). */
static void loss_grad(int kind, int reduction, int N, int C)
{
    char label[128];
    size_t n = (size_t)N * C;
    int classes = kind == L_CE || kind == L_NLL;
    loss_case c = {kind, reduction, N, C, random_floats(n), random_floats(classes ? (size_t)N : n), 0.7f};
    for (size_t i = 0; i < (classes ? (size_t)N : n); i++) {
        if (classes)
            c.t[i] = (float)(nnrt_rng_next(&rng) % (uint64_t)C);
        else if (kind == L_BCE)
            c.t[i] = 0.5f * (c.t[i] + 1.0f);
        else if (kind == L_L1 && fabsf(c.x[i] - c.t[i]) < 0.05f)
            c.t[i] = c.x[i] + 0.1f;
    }
    if (kind == L_BCE)
        for (size_t i = 0; i < n; i++)
            c.x[i] *= 4.0f;
    float *gx = alloc_floats(n), *g2 = alloc_floats(n);
    loss_backward(&c, gx);
    const char *red = reduction == NNRT_SUM ? "sum" : "mean";
    snprintf(label, sizeof label, "%s %s [%d,%d] dx", loss_names[kind], red, N, C);
    check(label, fd_error(loss_value, &c, c.x, n, gx), FD_TOL);
    loss_backward(&c, g2);
    loss_backward(&c, g2);
    loss_backward(&c, NULL);
    snprintf(label, sizeof label, "%s %s backward accumulates, NULL dx", loss_names[kind], red);
    check(label, doubled_err(g2, gx, n), EXACT_TOL);
    free(gx), free(g2), free(c.x), free(c.t);
}

/* the accumulating pool backwards, with NULL dx */
static void accumulate_pools(void)
{
    pool_case c = pool_make(2, 3, 7, 6, 3, 2, 2, 1, 1, 1, 1);
    float *dx1 = alloc_floats(c.nx), *dx2 = alloc_floats(c.nx);
    nnrt_avgpool2d_backward(dx1, c.r, &c.d);
    nnrt_avgpool2d_backward(dx2, c.r, &c.d);
    nnrt_avgpool2d_backward(dx2, c.r, &c.d);
    nnrt_avgpool2d_backward(NULL, c.r, &c.d);
    check("avgpool2d backward accumulates, NULL dx", doubled_err(dx2, dx1, c.nx), EXACT_TOL);
    free(dx1), free(dx2), free(c.x), free(c.y), free(c.r);

    float *r = random_floats(2 * 3 * 3 * 4);
    dx1 = alloc_floats(2 * 3 * 7 * 5), dx2 = alloc_floats(2 * 3 * 7 * 5);
    nnrt_adaptive_avgpool2d_backward(dx1, r, 2, 3, 7, 5, 3, 4);
    nnrt_adaptive_avgpool2d_backward(dx2, r, 2, 3, 7, 5, 3, 4);
    nnrt_adaptive_avgpool2d_backward(dx2, r, 2, 3, 7, 5, 3, 4);
    nnrt_adaptive_avgpool2d_backward(NULL, r, 2, 3, 7, 5, 3, 4);
    check("adaptive_avgpool2d backward accumulates, NULL dx", doubled_err(dx2, dx1, 2 * 3 * 7 * 5),
          EXACT_TOL);
    free(dx1), free(dx2), free(r);
}

/* ---- 3. accumulation, NULL gradients, the generator ---- */

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
    pool_case c = pool_make(2, 3, 7, 6, 3, 2, 2, 1, 1, 1, 0);
    float *dx1 = alloc_floats(c.nx), *dx2 = alloc_floats(c.nx);
    nnrt_maxpool2d_backward(dx1, c.r, c.x, &c.d);
    nnrt_maxpool2d_backward(dx2, c.r, c.x, &c.d);
    nnrt_maxpool2d_backward(dx2, c.r, c.x, &c.d);
    nnrt_maxpool2d_backward(NULL, c.r, c.x, &c.d);
    check("maxpool2d backward accumulates, NULL dx", doubled_err(dx2, dx1, c.nx), EXACT_TOL);
    free(dx1), free(dx2), free(c.x), free(c.y), free(c.r);
}

/* The 2x2 stride-2 fast path of max pooling (vector code, pool.c) against a
 * plain scan of each window, on values from {-1, -0, +0, 1, 2, NaN}: ties,
 * signed zeros and NaNs everywhere. The first maximum in row-major order
 * wins, a NaN counting as the maximum, the last of several NaNs (PyTorch's
 * CPU kernel). Compared bit
 * for bit, forward and backward, on row lengths that fill 16-window vectors
 * partly (5, 14), exactly (32) and beyond (20), with odd sizes (floor). */
static void maxpool_2x2_exact(int N, int C, int H, int W)
{
    static const float vals[] = {-1.0f, -0.0f, 0.0f, 1.0f, 2.0f, NAN};
    nnrt_pool2d_dims d = {.N = N, .C = C, .H = H, .W = W, .P = H / 2, .Q = W / 2, .kh = 2,
                          .kw = 2, .stride_h = 2, .stride_w = 2};
    size_t nx = (size_t)N * C * H * W, ny = (size_t)N * C * d.P * d.Q;
    float *x = alloc_floats(nx), *y = alloc_floats(ny), *dy = random_floats(ny);
    float *dx = alloc_floats(nx), *want_dx = alloc_floats(nx);
    for (size_t i = 0; i < nx; i++)
        x[i] = vals[nnrt_rng_next(&rng) % 6];
    for (size_t i = 0; i < nx; i++)
        dx[i] = want_dx[i] = 0.5f;      /* the backward adds */
    nnrt_maxpool2d_forward(y, x, &d);
    nnrt_maxpool2d_backward(dx, dy, x, &d);
    size_t bad = 0;
    for (size_t nc = 0; nc < (size_t)N * C; nc++)
        for (int p = 0; p < d.P; p++)
            for (int q = 0; q < d.Q; q++) {
                size_t best = (nc * H + 2 * p) * W + 2 * q;
                for (int i = 0; i < 4; i++) {
                    size_t at = (nc * H + 2 * p + i / 2) * W + 2 * q + i % 2;
                    if (x[at] > x[best] || isnan(x[at]))      /* PyTorch's scan */
                        best = at;
                }
                size_t o = (nc * d.P + p) * d.Q + q;
                want_dx[best] += dy[o];
                if (memcmp(&y[o], &x[best], sizeof(float)) != 0 && !(isnan(y[o]) && isnan(x[best])))
                    bad++;
            }
    char label[128];
    snprintf(label, sizeof label, "maxpool2d 2x2 fast path, %dx%dx%dx%d: forward bits", N, C, H, W);
    check(label, (double)bad, EXACT_TOL);
    snprintf(label, sizeof label, "maxpool2d 2x2 fast path, %dx%dx%dx%d: backward bits", N, C, H, W);
    check(label, memcmp(dx, want_dx, nx * sizeof(float)) != 0, EXACT_TOL);
    free(x), free(y), free(dy), free(dx), free(want_dx);
}

/* A max-pool that keeps its choices (nnrt_maxpool2d_forward_argmax, a byte
 * per window) gives the forward's bits, and its backward from them
 * (nnrt_maxpool2d_backward_argmax) the bits of the backward that reads x:
 * adding and assigning, with a ReLU folded in or not, on values with ties,
 * signed zeros and NaNs; 2x2 windows (the fast path: rows of 5, 14 and 20
 * windows) and others (3x3 with padding, 2x3 with strides 2x1, ceil mode). */
static void maxpool_argmax_exact(void)
{
    static const float vals[] = {-1.0f, -0.0f, 0.0f, 1.0f, 2.0f, NAN};
    struct { int N, C, H, W, P, Q, kh, kw, sh, sw, ph, pw; } cs[] = {
        {2, 3, 10, 10, 5, 5, 2, 2, 2, 2, 0, 0},
        {2, 3, 28, 28, 14, 14, 2, 2, 2, 2, 0, 0},
        {1, 2, 5, 41, 2, 20, 2, 2, 2, 2, 0, 0},
        {16, 6, 28, 28, 14, 14, 2, 2, 2, 2, 0, 0},
        {2, 3, 9, 7, 5, 4, 3, 3, 2, 2, 1, 1},
        {2, 2, 7, 9, 4, 8, 2, 3, 2, 1, 0, 1},   /* ceil mode: the last row of windows clipped */
    };
    int bad = 0, cases = 0;
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++)
        for (int relu = 0; relu <= 1; relu++)
            for (int assign = 0; assign <= 1; assign++) {
                nnrt_pool2d_dims d = {.N = cs[i].N, .C = cs[i].C, .H = cs[i].H, .W = cs[i].W, .P = cs[i].P,
                                      .Q = cs[i].Q, .kh = cs[i].kh, .kw = cs[i].kw, .stride_h = cs[i].sh,
                                      .stride_w = cs[i].sw, .pad_h = cs[i].ph, .pad_w = cs[i].pw,
                                      .relu = relu, .assign = assign};
                size_t nx = (size_t)d.N * d.C * d.H * d.W, ny = (size_t)d.N * d.C * d.P * d.Q;
                float *x = alloc_floats(nx), *y1 = alloc_floats(ny), *y2 = alloc_floats(ny);
                float *dy = random_floats(ny), *dx1 = alloc_floats(nx), *dx2 = alloc_floats(nx);
                unsigned char *arg = malloc(ny);
                for (size_t k = 0; k < nx; k++)
                    x[k] = vals[nnrt_rng_next(&rng) % 6];
                for (size_t k = 0; k < nx; k++)
                    dx1[k] = dx2[k] = assign ? 1e30f : 0.5f;
                nnrt_maxpool2d_forward(y1, x, &d);
                nnrt_maxpool2d_forward_argmax(y2, arg, x, &d);
                nnrt_maxpool2d_backward(dx1, dy, x, &d);
                nnrt_maxpool2d_backward_argmax(dx2, dy, arg, &d);
                bad += memcmp(y1, y2, ny * sizeof(float)) != 0;
                bad += memcmp(dx1, dx2, nx * sizeof(float)) != 0;
                cases++;
                free(x), free(y1), free(y2), free(dy), free(dx1), free(dx2), free(arg);
            }
    char label[128];
    snprintf(label, sizeof label, "maxpool2d keeping its choices: the bits of the forward and of the backward "
             "from x (%d cases)", cases);
    check(label, bad, 0);
}

/* The fusions nnc makes (plan.c), bit for bit against the unfused calls:
 * conv2d with .relu against conv2d then relu (the fast path and the plain
 * loops); max-pool backward with .relu against max-pool backward then
 * relu backward (the 2x2 path and the general one); relu's backward in
 * place against the usual one. Inputs with exact zeros and negatives, so
 * that windows whose maximum is 0 occur. */
static void fusions_exact(void)
{
    nnrt_conv2d_dims cd[4] = {
        {.N = 3, .C = 2, .H = 9, .W = 9, .K = 5, .R = 3, .S = 3, .P = 9, .Q = 9, .stride_h = 1,
         .stride_w = 1, .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1},
        {.N = 3, .C = 2, .H = 9, .W = 9, .K = 5, .R = 3, .S = 3, .P = 5, .Q = 5, .stride_h = 2,
         .stride_w = 2, .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1},
        /* by lanes (out channels as lanes), padded and not, 17 channels (2 blocks) */
        {.N = 3, .C = 2, .H = 9, .W = 9, .K = 17, .R = 3, .S = 3, .P = 9, .Q = 9, .stride_h = 1,
         .stride_w = 1, .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1},
        {.N = 2, .C = 2, .H = 10, .W = 10, .K = 16, .R = 3, .S = 3, .P = 8, .Q = 8, .stride_h = 1,
         .stride_w = 1, .dil_h = 1, .dil_w = 1, .groups = 1}};
    int differ = 0;
    for (int i = 0; i < 4; i++) {
        nnrt_conv2d_dims d = cd[i];
        size_t nx = (size_t)d.N * d.C * d.H * d.W, ny = (size_t)d.N * d.K * d.P * d.Q;
        float *x = random_floats(nx), *w = random_floats((size_t)d.K * 18), *b = random_floats((size_t)d.K);
        float *y1 = alloc_floats(ny), *y2 = alloc_floats(ny);
        nnrt_conv2d_forward(y1, x, w, b, &d);
        nnrt_relu_forward(y1, y1, ny);
        d.relu = 1;
        nnrt_conv2d_forward(y2, x, w, b, &d);
        differ += memcmp(y1, y2, ny * sizeof(float)) != 0;
        free(x), free(w), free(b), free(y1), free(y2);
    }
    check("conv2d with a fused ReLU: the bits of conv2d then relu", differ, 0);

    /* assign_dx: dx written whole, whatever it held (fast path, plain loops) */
    differ = 0;
    for (int i = 0; i < 4; i++) {
        nnrt_conv2d_dims d = cd[i];
        size_t nx = (size_t)d.N * d.C * d.H * d.W, ny = (size_t)d.N * d.K * d.P * d.Q;
        float *x = random_floats(nx), *w = random_floats((size_t)d.K * 18), *dy = random_floats(ny);
        float *dx1 = alloc_floats(nx), *dx2 = alloc_floats(nx);
        nnrt_conv2d_backward(dx1, NULL, NULL, dy, x, w, &d);
        for (size_t k = 0; k < nx; k++)
            dx2[k] = 1e30f;
        d.assign_dx = 1;
        nnrt_conv2d_backward(dx2, NULL, NULL, dy, x, w, &d);
        differ += memcmp(dx1, dx2, nx * sizeof(float)) != 0;
        free(x), free(w), free(dy), free(dx1), free(dx2);
    }
    check("conv2d backward assigning dx: the bits of adding to zeros", differ, 0);

    nnrt_pool2d_dims pd[3] = {
        {.N = 2, .C = 3, .H = 10, .W = 14, .P = 5, .Q = 7, .kh = 2, .kw = 2, .stride_h = 2, .stride_w = 2},
        {.N = 2, .C = 3, .H = 10, .W = 14, .P = 5, .Q = 7, .kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2,
         .pad_h = 1, .pad_w = 1},
        {.N = 2, .C = 3, .H = 11, .W = 15, .P = 5, .Q = 7, .kh = 2, .kw = 2, .stride_h = 2, .stride_w = 2}};
    differ = 0;
    for (int i = 0; i < 3; i++) {
        nnrt_pool2d_dims d = pd[i];
        size_t nx = (size_t)d.N * d.C * d.H * d.W, ny = (size_t)d.N * d.C * d.P * d.Q;
        float *x = random_floats(nx), *dy = random_floats(ny);
        float *dr = alloc_floats(nx), *dx1 = alloc_floats(nx), *dx2 = alloc_floats(nx);
        for (size_t k = 0; k < nx; k++)         /* a ReLU's output: many exact zeros */
            x[k] = x[k] < 0.2f ? 0.0f : x[k];
        nnrt_maxpool2d_backward(dr, dy, x, &d);
        nnrt_relu_backward(dx1, dr, x, nx);
        d.relu = 1;
        nnrt_maxpool2d_backward(dx2, dy, x, &d);
        differ += memcmp(dx1, dx2, nx * sizeof(float)) != 0;
        for (size_t k = 0; k < nx; k++)         /* assign: what dx held does not matter */
            dx2[k] = 1e30f;
        d.assign = 1;
        nnrt_maxpool2d_backward(dx2, dy, x, &d);
        differ += memcmp(dx1, dx2, nx * sizeof(float)) != 0;
        float *d3 = alloc_floats(nx), *d4 = alloc_floats(nx);
        for (size_t k = 0; k < nx; k++)
            d3[k] = d4[k] = dy[k % ny] - 0.5f;
        nnrt_relu_backward_inplace(d3, x, nx);
        memset(dr, 0, nx * sizeof(float));
        nnrt_relu_backward(dr, d4, x, nx);
        differ += memcmp(d3, dr, nx * sizeof(float)) != 0;
        for (size_t k = 0; k < nx; k++)         /* relu assigning: what dx held does not matter */
            d3[k] = 1e30f;
        nnrt_relu_backward_assign(d3, d4, x, nx);
        differ += memcmp(d3, dr, nx * sizeof(float)) != 0;
        free(x), free(dy), free(dr), free(dx1), free(dx2), free(d3), free(d4);
    }
    check("max-pool backward with the ReLU's folded in (adding, assigning), relu in place and assigning: "
          "unfused bits",
          differ, 0);
}

/* The forward by lanes (12 or more out channels per group) goes by runs
 * of an output row when the kernel is 3, 5 or 7 wide, with AVX-512 (conv2d.c,
 * lanes_row_tile; elsewhere these test lanes_tile): runs of 6 to 12 pixels,
 * one or more a row; padding, a
 * dilation in height, groups, two blocks of channels, a kernel wider than
 * tall. Against conv_reference, and 1 and 2 threads give the same bits. */
static void conv_forward_rows(void)
{
    struct { int N, C, H, W, K, R, S, ph, pw, dh, G; } cs[] = {
        {2, 3, 20, 20, 17, 5, 5, 2, 2, 1, 1},  /* Q 20: runs of 10; 17 channels, two blocks */
        {1, 2, 19, 19, 12, 7, 7, 0, 0, 1, 1},  /* Q 13: runs of 6 and 7 */
        {2, 4, 16, 14, 24, 3, 3, 1, 0, 2, 2},  /* Q 12, dilation 2 in height, 2 groups of 12 */
        {1, 3, 15, 15, 16, 5, 5, 0, 0, 1, 1},  /* Q 11 */
        {1, 2, 27, 27, 16, 3, 3, 0, 0, 1, 1},  /* Q 25: runs of 8, 8 and 9 */
        {3, 2, 11, 11, 16, 5, 5, 0, 0, 1, 1},  /* Q 7 */
        {2, 2, 9, 9, 16, 3, 7, 1, 3, 1, 1},    /* a 3 x 7 kernel, Q 9 */
    };
    int threads = nnrt_threads(), differ = 0;
    double err = 0.0;
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        nnrt_conv2d_dims d = {.N = cs[i].N, .C = cs[i].C, .H = cs[i].H, .W = cs[i].W, .K = cs[i].K,
                              .R = cs[i].R, .S = cs[i].S, .stride_h = 1, .stride_w = 1, .pad_h = cs[i].ph,
                              .pad_w = cs[i].pw, .dil_h = cs[i].dh, .dil_w = 1, .groups = cs[i].G};
        d.P = d.H + 2 * d.pad_h - d.dil_h * (d.R - 1);
        d.Q = d.W + 2 * d.pad_w - (d.S - 1);
        size_t nx = (size_t)d.N * d.C * d.H * d.W, ny = (size_t)d.N * d.K * d.P * d.Q;
        size_t nw = (size_t)d.K * (d.C / d.groups) * d.R * d.S;
        float *x = random_floats(nx), *w = random_floats(nw), *b = random_floats((size_t)d.K);
        float *y1 = alloc_floats(ny), *y2 = alloc_floats(ny), *want = alloc_floats(ny);
        nnrt_set_threads(1);
        nnrt_conv2d_forward(y1, x, w, b, &d);
        nnrt_set_threads(2);
        nnrt_conv2d_forward(y2, x, w, b, &d);
        conv_reference(want, x, w, b, &d);
        differ += memcmp(y1, y2, ny * sizeof(float)) != 0;
        double e = max_err(y1, want, ny);
        err = e > err ? e : err;
        free(x), free(w), free(b), free(y1), free(y2), free(want);
    }
    nnrt_set_threads(threads);
    check("conv2d forward by lanes, by row runs: vs reference", err, EXACT_TOL);
    check("conv2d forward by lanes, by row runs: 1 and 2 threads, the same bits", differ, 0);
}

/* A convolution's backward that makes the max-pool's after it
 * (nnrt_conv2d_backward_pooled) gives the bits of the two calls it replaces:
 * the max-pool's backward (assigning, the ReLU's folded in or not) into a
 * buffer, then the convolution's backward from it. Out channels below and
 * above CONV_KVMIN (d weight by rows, by lanes), one chunk and several, 1 and
 * 2 threads, with and without d input, 2x2 and 3x3 windows, and a strided
 * convolution (the plain loops). The gradients of a 2x2 pool after a
 * convolution of at most 8 in channels are made from the pool's choices on
 * a machine with AVX-512
 * (conv2d_pooled.c, sums in another order): there within EXACT_TOL, and
 * pooled_sparse below tests it further. */
static void pooled_exact(void)
{
    struct { int N, C, HW, K, R, stride, kh, pad, relu, dx, defer; } cs[] = {
        {3, 2, 12, 5, 3, 1, 2, 0, 1, 1, 0},    /* rows, one chunk */
        {3, 6, 14, 8, 5, 1, 2, 0, 1, 1, 1},    /* rows, d weight left to a worker */
        {1, 6, 14, 16, 5, 1, 2, 0, 1, 1, 1},   /* LeNet's conv2 at batch 1, d weight left to a worker */
        {20, 3, 14, 16, 5, 1, 2, 0, 1, 1, 0}, /* lanes (as LeNet's conv2), 3 chunks */
        {20, 1, 32, 6, 5, 1, 2, 0, 1, 0, 0},  /* no d input (as LeNet's conv1) */
        {9, 2, 11, 4, 3, 1, 3, 1, 0, 1, 0},   /* 3x3 windows, padded, no ReLU */
        {4, 2, 12, 3, 3, 2, 2, 0, 1, 1, 0},   /* stride 2: the plain loops */
    };
    int differ = 0, threads = nnrt_threads(), deferred = 0;
    double dx_err = 0.0, dw_err = 0.0;
    for (int t = 1; t <= 2; t++) {
        nnrt_set_threads(t);
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
            deferred -= t == 2 && cs[i].defer;
            int P = (cs[i].HW - cs[i].R) / cs[i].stride + 1;
            nnrt_conv2d_dims d = {.N = cs[i].N, .C = cs[i].C, .H = cs[i].HW, .W = cs[i].HW, .K = cs[i].K,
                                  .R = cs[i].R, .S = cs[i].R, .P = P, .Q = P, .stride_h = cs[i].stride,
                                  .stride_w = cs[i].stride, .dil_h = 1, .dil_w = 1, .groups = 1,
                                  .relu = cs[i].relu};
            int PP = (P + 2 * cs[i].pad - cs[i].kh) / 2 + 1;
            nnrt_pool2d_dims pd = {.N = d.N, .C = d.K, .H = P, .W = P, .P = PP, .Q = PP, .kh = cs[i].kh,
                                   .kw = cs[i].kh, .stride_h = 2, .stride_w = 2, .pad_h = cs[i].pad,
                                   .pad_w = cs[i].pad, .relu = cs[i].relu, .assign = 1};
            size_t nx = (size_t)d.N * d.C * d.H * d.W, ny = (size_t)d.N * d.K * P * P;
            size_t np = (size_t)d.N * d.K * PP * PP, nw = (size_t)d.K * d.C * d.R * d.S;
            float *x = random_floats(nx), *w = random_floats(nw), *b = random_floats((size_t)d.K);
            float *pdy = random_floats(2 * np), *y = alloc_floats(ny), *dy = alloc_floats(ny);
            float *dx1 = alloc_floats(nx), *dw1 = alloc_floats(nw), *db1 = alloc_floats((size_t)d.K);
            float *dx2 = alloc_floats(nx), *dw2 = alloc_floats(nw), *db2 = alloc_floats((size_t)d.K);
            unsigned char *arg = malloc(np);
            nnrt_conv2d_forward(y, x, w, b, &d);
            for (size_t k = 0; k < ny; k += 7)      /* ties in windows */
                y[k / 2] = y[k];
            nnrt_maxpool2d_forward_argmax(pdy + np, arg, y, &pd);  /* pdy has room: its outputs are not used */
            d.relu = 0;
            nnrt_maxpool2d_backward(dy, pdy, y, &pd);
            nnrt_conv2d_backward(cs[i].dx ? dx1 : NULL, dw1, db1, dy, x, w, &d);
            d.pooled = 1;
            d.defer_dw = cs[i].defer;
            nnrt_conv2d_backward_pooled(cs[i].dx ? dx2 : NULL, dw2, db2, pdy, arg, &pd, x, w, &d);
            deferred += !nnrt_can_spawn();      /* d weight runs on: a job is left */
            nnrt_join();
            free(arg);
            int sparse = cs[i].stride == 1 && cs[i].kh == 2 && cs[i].pad == 0 && cs[i].C <= 8;
            if (sparse)
                dx_err = fmax(dx_err, max_err(dx2, dx1, nx));
            else
                differ += memcmp(dx1, dx2, nx * sizeof(float)) != 0;
            if (sparse) {                   /* d weight from the choices too (no padding here) */
                dw_err = fmax(dw_err, max_err(dw2, dw1, nw));
                dw_err = fmax(dw_err, max_err(db2, db1, (size_t)d.K));
            } else {
                differ += memcmp(dw1, dw2, nw * sizeof(float)) != 0;
                differ += memcmp(db1, db2, (size_t)d.K * sizeof(float)) != 0;
            }
            free(x), free(w), free(b), free(pdy), free(y), free(dy);
            free(dx1), free(dw1), free(db1), free(dx2), free(dw2), free(db2);
        }
    }
    nnrt_set_threads(threads);
    check("conv2d backward pooled: the bits of max-pool backward then conv2d backward", differ, 0);
    check("conv2d backward pooled: d input from the pool's choices, near", dx_err, EXACT_TOL);
    /* sums of up to 20 x 196 products in another order: pooled_sparse
     * measures them on their own scale */
    check("conv2d backward pooled: d weight, d bias from the choices, near", dw_err, 1e-4);
    check("conv2d backward pooled: d weight left to a worker with 2 threads (only then)", deferred != 0, 0);
}

/* |got - sum| on the scale of the products' magnitudes mag, worst so far;
 * a sum that is not finite (an infinite gradient) must be got exactly */
static double scaled_err(double worst, float got, double sum, double mag)
{
    if (!isfinite(sum) || !isfinite(mag))
        return (isnan(sum) ? isnan(got) : (double)got == sum) ? worst : INFINITY;
    double err = fabs(got - sum) / (mag + 1e-20);
    return err <= worst ? worst : isnan(err) ? INFINITY : err;
}

/* The gradients of nnrt_conv2d_backward_pooled for 2x2 pools (from the
 * pool's choices where the machine has AVX-512: conv2d_pooled.c), against
 * the sum in double of every product, on its own scale:
 *   |got - ref| <= 1e-5 * (sum of |products| + 1e-20)
 * d input, d weight and d bias. Kernels 3, 5, 7; 1 to 8 in channels (and 9:
 * the dense path; d weight by pairs of columns from 4 channels, by kernel
 * rows below, dense below with padding); padding, also uneven; odd outputs
 * (the pool drops a row and a column), H != W; windows that pass nothing
 * (ReLU folded in); a ceil-mode pool (the dense path); an infinite
 * gradient (infinite where PyTorch's is, nowhere else); dx assigned and
 * added to; dw and db added to; any of dx, dw, db absent; left to a worker
 * or not; 1 and 2 threads, the same bits (cases large enough to split). */
static void pooled_sparse(void)
{
    enum { DX = 1, DW = 2, DB = 4 };
    struct { int N, C, H, W, K, S, ph, pw, relu, assign, grads, defer, ceil, inf; } cs[] = {
        {1, 6, 14, 14, 16, 5, 0, 0, 1, 1, 7, 1, 0, 0},  /* LeNet's conv2 at batch 1 */
        {3, 6, 14, 14, 16, 5, 0, 0, 1, 1, 7, 0, 0, 0},
        {2, 1, 9, 9, 4, 3, 0, 0, 1, 1, 7, 0, 0, 0},      /* P = 7: a row and a column left out */
        {2, 8, 12, 12, 5, 3, 1, 1, 0, 0, 7, 0, 0, 0},    /* padded, no ReLU, dx added to */
        {1, 3, 15, 15, 7, 7, 2, 2, 1, 1, 1, 0, 0, 0},    /* 7x7, d input only */
        {2, 5, 10, 10, 6, 5, 2, 2, 1, 0, 7, 1, 0, 0},
        {9, 4, 16, 16, 8, 3, 1, 1, 1, 1, 7, 0, 0, 0},    /* enough work for 2 threads */
        {2, 9, 10, 10, 4, 3, 0, 0, 1, 1, 7, 0, 0, 0},    /* 9 in channels: the dense path */
        {4, 4, 11, 11, 6, 3, 1, 1, 1, 1, 7, 1, 0, 0},    /* 4: the fewest for d weight by pairs */
        {1, 3, 12, 12, 12, 5, 0, 0, 1, 1, 7, 1, 0, 0},   /* 3: d weight by kernel rows, left to a worker */
        {3, 2, 16, 16, 5, 7, 0, 0, 1, 1, 7, 0, 0, 0},    /* 2 channels, 7x7, by kernel rows */
        {2, 2, 11, 11, 5, 3, 1, 1, 1, 1, 7, 0, 0, 0},    /* padded with 2 channels: d weight dense */
        {4, 3, 16, 16, 8, 3, 1, 1, 1, 1, 7, 0, 0, 0},    /* ... sparse d input, dense d weight, 2 threads */
        {3, 5, 13, 9, 6, 5, 2, 1, 1, 1, 7, 0, 0, 0},     /* H != W, uneven padding */
        {2, 6, 13, 13, 5, 3, 0, 0, 1, 1, 7, 0, 1, 0},    /* ceil mode (P = 11): the dense path */
        {2, 6, 12, 12, 5, 5, 1, 1, 1, 1, 7, 0, 0, 1},    /* an infinite gradient */
        {2, 1, 12, 12, 6, 5, 0, 0, 1, 1, 7, 0, 0, 1},    /* ... by kernel rows */
        {3, 6, 12, 12, 5, 3, 0, 0, 1, 1, 6, 0, 0, 0},    /* no d input (a first layer) */
        {3, 6, 12, 12, 5, 3, 0, 0, 1, 1, 3, 0, 0, 0},    /* d weight without d bias */
        {3, 6, 12, 12, 5, 3, 0, 0, 1, 1, 5, 1, 0, 0},    /* d bias without d weight */
        {64, 1, 20, 20, 6, 5, 0, 0, 1, 1, 6, 0, 0, 0},   /* by kernel rows on 2 threads */
    };
    double worst = 0.0, wworst = 0.0;
    int differ = 0, threads = nnrt_threads();
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        int S = cs[i].S, P = cs[i].H + 2 * cs[i].ph - S + 1, Q = cs[i].W + 2 * cs[i].pw - S + 1;
        int PP = cs[i].ceil ? (P + 1) / 2 : P / 2, QQ = cs[i].ceil ? (Q + 1) / 2 : Q / 2;
        int gdx = cs[i].grads & DX, gdw = cs[i].grads & DW, gdb = cs[i].grads & DB;
        nnrt_conv2d_dims d = {.N = cs[i].N, .C = cs[i].C, .H = cs[i].H, .W = cs[i].W, .K = cs[i].K, .R = S,
                              .S = S, .P = P, .Q = Q, .stride_h = 1, .stride_w = 1, .pad_h = cs[i].ph,
                              .pad_w = cs[i].pw, .dil_h = 1, .dil_w = 1, .groups = 1, .relu = cs[i].relu};
        nnrt_pool2d_dims pd = {.N = d.N, .C = d.K, .H = P, .W = Q, .P = PP, .Q = QQ, .kh = 2, .kw = 2,
                               .stride_h = 2, .stride_w = 2, .relu = cs[i].relu, .assign = 1};
        size_t nx = (size_t)d.N * d.C * d.H * d.W, ny = (size_t)d.N * d.K * P * Q;
        size_t np = (size_t)d.N * d.K * PP * QQ, nw = (size_t)d.K * d.C * S * S;
        float *x = random_floats(nx), *w = random_floats(nw), *b = random_floats((size_t)d.K);
        float *pdy = random_floats(np), *y = alloc_floats(ny), *dy = alloc_floats(ny), *dx0 = random_floats(nx);
        float *dx[2] = {alloc_floats(nx), alloc_floats(nx)}, *dw[2] = {alloc_floats(nw), alloc_floats(nw)};
        float *db[2] = {alloc_floats(d.K), alloc_floats(d.K)}, *dw0 = random_floats(nw), *db0 = random_floats(d.K);
        unsigned char *arg = malloc(np);
        nnrt_conv2d_forward(y, x, w, b, &d);
        float *py = alloc_floats(np);
        nnrt_maxpool2d_forward_argmax(py, arg, y, &pd);
        for (size_t u = 0; cs[i].inf && u < np; u++)    /* the first window that passes: infinite */
            if (arg[u] != 255) {
                pdy[u] = INFINITY;
                break;
            }
        nnrt_maxpool2d_backward_argmax(dy, pdy, arg, &pd);
        d.relu = 0, d.pooled = 1, d.assign_dx = cs[i].assign, d.defer_dw = cs[i].defer;
        for (int t = 0; t < 2; t++) {
            nnrt_set_threads(t + 1);
            memcpy(dx[t], dx0, nx * sizeof(float));
            memcpy(dw[t], dw0, nw * sizeof(float));
            memcpy(db[t], db0, (size_t)d.K * sizeof(float));
            nnrt_conv2d_backward_pooled(gdx ? dx[t] : NULL, gdw ? dw[t] : NULL, gdb ? db[t] : NULL, pdy, arg, &pd,
                                        x, w, &d);
            nnrt_join();
        }
        differ += memcmp(dx[0], dx[1], nx * sizeof(float)) != 0;
        differ += memcmp(dw[0], dw[1], nw * sizeof(float)) != 0;
        differ += memcmp(db[0], db[1], (size_t)d.K * sizeof(float)) != 0;
        differ += !gdx && memcmp(dx[0], dx0, nx * sizeof(float)) != 0;  /* absent: untouched */
        differ += !gdw && memcmp(dw[0], dw0, nw * sizeof(float)) != 0;
        differ += !gdb && memcmp(db[0], db0, (size_t)d.K * sizeof(float)) != 0;
        for (int k = 0; gdb && k < d.K; k++) {
            double bsum = db0[k], bmag = fabs(bsum);
            for (int n = 0; n < d.N; n++)
                for (int p = 0; p < P * Q; p++) {
                    double e = dy[((size_t)n * d.K + k) * P * Q + p];
                    bsum += e, bmag += fabs(e);
                }
            wworst = scaled_err(wworst, db[0][k], bsum, bmag);
        }
        for (int k = 0; gdw && k < d.K; k++)
            for (int c = 0; c < d.C; c++)
                for (int r = 0; r < S; r++)
                    for (int s = 0; s < S; s++) {
                        size_t at = (((size_t)k * d.C + c) * S + r) * S + s;
                        double sum = dw0[at], mag = fabs(sum);
                        for (int n = 0; n < d.N; n++)
                            for (int p = 0; p < P; p++)
                                for (int q = 0; q < Q; q++) {
                                    int h = p + r - cs[i].ph, v = q + s - cs[i].pw;
                                    double g = dy[(((size_t)n * d.K + k) * P + p) * Q + q];
                                    if (g == 0.0)
                                        continue;
                                    /* the padding's zeros count (times an infinite
                                     * gradient: NaN, as in PyTorch) */
                                    int in = h >= 0 && h < d.H && v >= 0 && v < d.W;
                                    double e = g * (in ? x[(((size_t)n * d.C + c) * d.H + h) * d.W + v] : 0.0);
                                    sum += e, mag += fabs(e);
                                }
                        wworst = scaled_err(wworst, dw[0][at], sum, mag);
                    }
        for (int n = 0; gdx && n < d.N; n++)
            for (int c = 0; c < d.C; c++)
                for (int h = 0; h < d.H; h++)
                    for (int v = 0; v < d.W; v++) {
                        size_t at = (((size_t)n * d.C + c) * d.H + h) * d.W + v;
                        double sum = cs[i].assign ? 0.0 : dx0[at], mag = fabs(sum);
                        for (int k = 0; k < d.K; k++)
                            for (int r = 0; r < S; r++)
                                for (int s = 0; s < S; s++) {
                                    int p = h + cs[i].ph - r, q = v + cs[i].pw - s;
                                    if (p < 0 || p >= P || q < 0 || q >= Q)
                                        continue;
                                    double g = dy[(((size_t)n * d.K + k) * P + p) * Q + q];
                                    if (g == 0.0)
                                        continue;
                                    double e = g * w[(((size_t)k * d.C + c) * S + r) * S + s];
                                    sum += e, mag += fabs(e);
                                }
                        worst = scaled_err(worst, dx[0][at], sum, mag);
                    }
        free(x), free(w), free(b), free(pdy), free(y), free(dy), free(dx0), free(dx[0]), free(dx[1]);
        free(dw[0]), free(dw[1]), free(db[0]), free(db[1]), free(dw0), free(db0), free(arg), free(py);
    }
    nnrt_set_threads(threads);
    check("conv2d backward pooled (2x2) d input: against double, own scale", worst, 1e-5);
    check("conv2d backward pooled (2x2) d weight, d bias: against double", wworst, 1e-5);
    check("conv2d backward pooled (2x2): same bits, 1 and 2 threads; absent untouched", differ, 0);
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
    hand_avgpool2d();
    hand_adaptive_avgpool2d();
    hand_activations();
    hand_softmax();
    hand_dropout();
    hand_batchnorm();
    hand_embedding();
    hand_layernorm();
    hand_attention();
    hand_lstm();
    hand_tensor();
    hand_losses();
    hand_optim();

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
    /* the fast path (stride 1, 32 pixels or more; conv2d.c), its d weight by
     * rows (under 12 out channels per group) and by lanes, chunks of 8 samples */
    conv_grad("wide, rows",          2, 3, 8, 8, 5, 3, 3, 1, 1, 0, 0, 1, 1, 1, 1);
    conv_grad("wide, lanes",         2, 2, 8, 8, 12, 3, 3, 1, 1, 0, 0, 1, 1, 1, 1);
    conv_grad("wide, batch 9",       9, 2, 7, 7, 3, 2, 2, 1, 1, 0, 0, 1, 1, 1, 1);
    conv_grad("wide, all at once",   3, 4, 9, 7, 26, 3, 2, 1, 1, 1, 2, 2, 1, 2, 1);
    /* d input tiles: 9 in channels (a block of 8, tiles of 3 vectors, and
     * one of 1, of 4), and LeNet's 100-pixel planes (a last tile of 2
     * vectors and 4 lanes; of 4 vectors and 4 lanes with 6 channels) */
    conv_grad("wide, 9 in channels", 2, 9, 9, 9, 4, 3, 3, 1, 1, 0, 0, 1, 1, 1, 1);
    conv_grad("wide, 100 pixels",    1, 8, 12, 12, 3, 3, 3, 1, 1, 0, 0, 1, 1, 1, 1);
    conv_grad("wide, 100 pixels 2",  1, 6, 12, 12, 16, 3, 3, 1, 1, 0, 0, 1, 1, 1, 1);

    /*        name                   N  C  H  W kh kw sh sw ph pw */
    pool_grad("2x2 stride 2",        1, 1, 4, 4, 2, 2, 2, 2, 0, 0);
    pool_grad("3x3 stride 2 pad 1",  3, 2, 7, 6, 3, 3, 2, 2, 1, 1);
    pool_grad("2x3 stride 1x2 pad 1",2, 3, 5, 8, 2, 3, 1, 2, 1, 1);
    pool_grad("2x2 stride 3",        1, 2, 8, 7, 2, 2, 3, 3, 0, 0);
    maxpool_2x2_exact(2, 3, 10, 10);
    maxpool_2x2_exact(2, 3, 28, 28);
    maxpool_2x2_exact(1, 2, 5, 41);
    maxpool_2x2_exact(1, 1, 7, 64);
    maxpool_2x2_exact(16, 8, 28, 28);   /* large enough for the threads */
    maxpool_argmax_exact();
    fusions_exact();
    conv_forward_rows();
    pooled_exact();
    pooled_sparse();

    linear_grad("N=1",   1, 5, 3, 1);
    linear_grad("N=4",   4, 7, 2, 1);
    linear_grad("N=3 no bias", 3, 4, 5, 0);
    linear_grad("N=9, tiles", 9, 70, 13, 1);    /* 32-feature tiles, the last overlapping */
    linear_grad("N=1, 2 vectors + 5", 1, 37, 11, 1);    /* rows: the last vector overlapping */
    linear_grad("N=2, 2 vectors + 5", 2, 37, 11, 1);
    linear_grad("N=1, 4 vectors + 4", 1, 68, 9, 0);     /* a tile of 4 vectors, then the overlap */
    linear_grad("N=1, one vector", 1, 16, 3, 1);
    linear_grad("N=1, 64 + 3 vectors + 8", 1, 120, 11, 1);   /* every set of the rows' sums */
    linear_grad("N=2, 2 x 64 + 16", 2, 144, 9, 0);
    /*               N   IN  OUT */
    linear_sgd_exact(1,  37,  11);
    linear_sgd_exact(2,  37,  11);
    linear_sgd_exact(1, 120,  84);
    linear_sgd_exact(2,  84,  10);
    linear_sgd_exact(1,  16,   3);
    linear_sgd_exact(1,   5,   3);
    linear_sgd_exact(3,  37,  11);      /* the tiles, then nnrt_sgd_step */
    threads_same_bits();
    relu_grad();
    mse_grad();

    /* average and max pooling of the same windows, floor and ceil mode
     *            name                          N  C  H  W kh kw sh sw ph pw ceil incl_pad */
    avgpool_grad("2x2 stride 2",                1, 1, 4, 4, 2, 2, 2, 2, 0, 0, 0, 1);
    avgpool_grad("3x3 s2 pad 1",                3, 2, 7, 6, 3, 3, 2, 2, 1, 1, 0, 1);
    avgpool_grad("3x3 s2 pad 1 excl pad",       3, 2, 7, 6, 3, 3, 2, 2, 1, 1, 0, 0);
    avgpool_grad("3x3 s2 pad 1 ceil",           2, 2, 6, 7, 3, 3, 2, 2, 1, 1, 1, 1);
    avgpool_grad("3x3 s2 pad 1 ceil excl pad",  2, 2, 6, 7, 3, 3, 2, 2, 1, 1, 1, 0);
    avgpool_grad("3x2 s2x1 pad 1 ceil",         2, 3, 8, 5, 3, 2, 2, 1, 1, 1, 1, 1);
    avgpool_grad("2x3 s3x2 ceil excl pad",      1, 2, 7, 8, 2, 3, 3, 2, 0, 0, 1, 0);

    /*            name                 N  C  H  W  P  Q */
    adaptive_grad("7x5 -> 3x4",        2, 3, 7, 5, 3, 4);
    adaptive_grad("6x6 -> 1x1",        1, 2, 6, 6, 1, 1);
    adaptive_grad("3x5 -> 4x7",        1, 2, 3, 5, 4, 7);
    adaptive_grad("8x8 -> 4x4",        3, 1, 8, 8, 4, 4);

    act_grad(LEAKY);
    act_grad(SIGMOID);
    act_grad(TANH);
    act_grad(GELU);
    act_grad(SILU);
    act_grad(ELU);

    /*           log outer  C inner  scale of x */
    softmax_grad(0,  4,    10,  1,   3.0);
    softmax_grad(1,  4,    10,  1,   3.0);
    softmax_grad(0,  1,     7,  1,  10.0);
    softmax_grad(0,  2,     5, 12,   1.0);
    softmax_grad(1,  2,     5, 12,   1.0);
    softmax_grad(0,  2,     3, 130,  1.0);  /* more than one block of inner positions */
    softmax_grad(1,  1,     3, 130,  1.0);

    dropout_grad();

    /*      name            N  C  HW affine */
    bn_grad("1d [4,5]",     4, 5, 1, 1);
    bn_grad("1d [3,4,7]",   3, 4, 7, 1);
    bn_grad("2d [2,3,3,4]", 2, 3, 12, 1);
    bn_grad("2d no affine", 2, 3, 12, 0);
    bn_grad("2d batch 1",   1, 2, 20, 1);
    bn_grad("2d [3,5,37]",  3, 5, 37, 1);   /* vectors of 16 and a tail of 5 */
    bn_grad("1d [2,20,15]", 2, 20, 15, 1);  /* two runs of channels (17 and 3) */
    bn_threads_same_bits();

    /*             rows num  D */
    embedding_grad(  5,  3,  4);       /* repeated ids */
    embedding_grad( 12, 20,  7);
    /*             rows   C affine */
    layernorm_grad(  3,   5, 1);
    layernorm_grad(  4,  16, 1);
    layernorm_grad(  2,  37, 0);
    layernorm_grad(  1, 300, 1);       /* more than one block of columns */
    /*             N  T  C  H causal */
    attention_grad(1, 3, 4, 1, 1);
    attention_grad(2, 4, 6, 2, 1);
    attention_grad(2, 5, 8, 2, 0);
    attention_grad(1, 4, 8, 4, 0);
    /*        N  T  I  H bias */
    lstm_grad(1, 1, 2, 3, 1);
    lstm_grad(1, 4, 3, 2, 1);
    lstm_grad(3, 5, 2, 4, 1);
    lstm_grad(2, 3, 4, 3, 0);
    lstm_grad(4, 3, 33, 5, 1);         /* the products' 32-feature tiles */
    sequence_threads_same_bits();

    merge_grad(1, 2, 3, 5);
    merge_grad(3, 1, 2, 4);

    /*        kind   reduction  N  C */
    loss_grad(L_MSE, NNRT_MEAN, 3, 7);
    loss_grad(L_MSE, NNRT_SUM,  3, 7);
    loss_grad(L_L1,  NNRT_MEAN, 3, 7);
    loss_grad(L_L1,  NNRT_SUM,  1, 9);
    loss_grad(L_CE,  NNRT_MEAN, 4, 6);
    loss_grad(L_CE,  NNRT_SUM,  1, 5);
    loss_grad(L_NLL, NNRT_MEAN, 4, 6);
    loss_grad(L_NLL, NNRT_SUM,  3, 4);
    loss_grad(L_BCE, NNRT_MEAN, 3, 8);
    loss_grad(L_BCE, NNRT_SUM,  2, 5);

    printf("-- accumulation, NULL gradients, random numbers --\n");
    accumulate_conv2d();
    accumulate_maxpool2d();
    accumulate_linear();
    accumulate_relu_mse();
    accumulate_pools();
    test_rng();
    attention_workspace();
    lstm_workspace(8, 24);
    lstm_workspace(3, 3);

    if (failures) {
        printf("%d check%s FAILED\n", failures, failures == 1 ? "" : "s");
        return 1;
    }
    printf("all checks passed\n");
    return 0;
}
