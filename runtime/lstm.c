/* lstm.c — torch.nn.LSTM's forward and backward (batch_first, one layer,
 * zero initial state, both biases), so that a model can run a recurrent
 * layer over a sequence the way PyTorch does.
 *
 * Shapes (N batch, T steps, I input features, H hidden units):
 *     x      [N, T, I]     the input sequence
 *     w_ih   [4H, I]       weight_ih_l0: the gates' rows i, f, g, o
 *     w_hh   [4H, H]       weight_hh_l0
 *     b_ih, b_hh [4H]      bias_ih_l0, bias_hh_l0 (NULL: bias=False)
 *     y      [N, T, H]     h_t at every step
 *     saved  [N, T, 5H]    per (n, t): i, f, g, o after their activations, then c_t
 * The recurrence, per sample, with h_{-1} = c_{-1} = 0:
 *     z_t = x_t w_ih^T + b_ih + h_{t-1} w_hh^T + b_hh          [4H]
 *     i, f, o = sigmoid(z_i, z_f, z_o),  g = tanh(z_g)
 *     c_t = f c_{t-1} + i g,  h_t = o tanh(c_t)
 * and back through time, t = T-1 .. 0, from dh_T = dc_T = 0:
 *     dh = dy_t + dh_{t+1}
 *     dc = dh o (1 - tanh^2 c_t) + dc_{t+1}
 *     dz_i = dc g i (1 - i),  dz_f = dc c_{t-1} f (1 - f),
 *     dz_g = dc i (1 - g^2),  dz_o = dh tanh(c_t) o (1 - o)
 *     dc_t = dc f,  dh_t = dz_t w_hh                             (to step t-1)
 * and, over every (n, t), with dz kept for all steps:
 *     dx += dz w_ih,  dw_ih += dz^T x,  db_ih += sum dz,  db_hh += sum dz,
 *     dw_hh += sum over t >= 1 of dz_t^T h_{t-1}.
 *
 * The matrix products go through linear.c, which is fast and gives the
 * same bits with any number of threads: the input projection of all N*T
 * rows at once (forward) and the three products of the backward's end;
 * one product of [N, H] by [H, 4H] each step. The elementwise work of a
 * step is cut between the threads by samples (each sample's cells are its
 * own), so the bits do not depend on the threads either.
 *
 * Scratch (nnrt_workspace_lstm plans it; linear.c's forward takes slots 0
 * and 3, its backward none): slot 1 holds the input projection in the
 * forward, dz [N, T, 4H] in the backward; slot 2 the step's rows: h_{t-1}
 * and its product [N, H] + [N, 4H] (forward), dz_t, dh and dc [N, 4H] +
 * 2 [N, H] (backward), then h_{t-1} of every step [N, T, H] for dw_hh.
 */
#include <math.h>
#include <string.h>

#include "nnrt.h"

/* a step's elementwise work is shared between threads from this many cells */
#define GRAIN 8192

/* samples a task of the step takes, at least */
static size_t grain_of(int H)
{
    return (GRAIN + (size_t)H - 1) / (size_t)H;
}

/* without overflow, as activation.c's */
static float sigmoid(float x)
{
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

typedef struct lstm_step {
    int T, H, t;
    float *y, *saved;           /* forward: written at step t */
    const float *kept;          /* backward: the forward's saved */
    const float *xz;            /* forward: [N, T, 4H] x w_ih^T + b_ih */
    const float *hz;            /* forward: [N, 4H] h_{t-1} w_hh^T + b_hh, or NULL (t = 0) */
    const float *b_hh;          /* forward, t = 0: b_hh alone, or NULL */
    float *dz, *dzt;            /* backward: dz [N, T, 4H] and dz_t [N, 4H], written */
    float *dh, *dc;             /* backward: [N, H] from step t+1, replaced by step t's */
    const float *dy;            /* backward: [N, T, H] */
} lstm_step;

/* ---- forward ---- */

/* samples lo .. hi-1 of step t: the gates from z, then c_t and h_t */
static void fwd_cells(void *arg, size_t lo, size_t hi)
{
    const lstm_step *s = arg;
    int H = s->H, t = s->t;
    for (size_t n = lo; n < hi; n++) {
        size_t r = n * s->T + t;                     /* the row (n, t) */
        const float *a = s->xz + r * 4 * H;
        const float *b = s->hz ? s->hz + n * 4 * H : s->b_hh;
        float *g = s->saved + r * 5 * H, *y = s->y + r * H;
        const float *cp = t ? g - 5 * H + 4 * H : NULL;   /* c_{t-1} */
        for (int k = 0; k < H; k++) {
            float zi = a[k], zf = a[H + k], zg = a[2 * H + k], zo = a[3 * H + k];
            if (b)
                zi += b[k], zf += b[H + k], zg += b[2 * H + k], zo += b[3 * H + k];
            float i = sigmoid(zi), f = sigmoid(zf), gg = tanhf(zg), o = sigmoid(zo);
            float c = (cp ? f * cp[k] : 0.0f) + i * gg;
            g[k] = i, g[H + k] = f, g[2 * H + k] = gg, g[3 * H + k] = o, g[4 * H + k] = c;
            y[k] = o * tanhf(c);
        }
    }
}

/* y[N,T,H], saved[N,T,5H] from x[N,T,I]; w_ih[4H,I], w_hh[4H,H], b_ih, b_hh[4H] or NULL */
void nnrt_lstm_forward(float *y, float *saved, const float *x, const float *w_ih, const float *w_hh,
                       const float *b_ih, const float *b_hh, int N, int T, int I, int H)
{
    size_t G = (size_t)4 * H;
    float *xz = nnrt_scratch(1, (size_t)N * T * G);
    float *hp = nnrt_scratch(2, (size_t)N * H + (size_t)N * G), *hz = hp + (size_t)N * H;
    nnrt_linear_forward(xz, x, w_ih, b_ih, N * T, I, 4 * H);
    lstm_step s = {.T = T, .H = H, .y = y, .saved = saved, .xz = xz, .b_hh = b_hh};
    for (int t = 0; t < T; t++) {
        s.t = t;
        s.hz = NULL;
        if (t > 0) {                /* hz[N,4H] = h_{t-1} w_hh^T + b_hh, h_{t-1} gathered from y */
            for (int n = 0; n < N; n++)
                memcpy(hp + (size_t)n * H, y + ((size_t)n * T + t - 1) * H, sizeof(float) * (size_t)H);
            nnrt_linear_forward(hz, hp, w_hh, b_hh, N, H, 4 * H);
            s.hz = hz;
        }
        nnrt_parallel_for(fwd_cells, &s, (size_t)N, grain_of(H));
    }
}

/* ---- backward ---- */

/* samples lo .. hi-1 of step t: dz_t (into dz and dzt) from dy_t and step
 * t+1's dh, dc; then dc becomes step t's (dc f). At t = T-1, dh and dc
 * are not read (zero). */
static void bwd_cells(void *arg, size_t lo, size_t hi)
{
    const lstm_step *s = arg;
    int H = s->H, t = s->t, last = t == s->T - 1;
    for (size_t n = lo; n < hi; n++) {
        size_t r = n * s->T + t;
        const float *g = s->kept + r * 5 * H, *dy = s->dy + r * H;
        const float *cp = t ? g - 5 * H + 4 * H : NULL;   /* c_{t-1} */
        float *dz = s->dz + r * 4 * H, *dzt = s->dzt + n * 4 * H;
        float *dh = s->dh + n * H, *dc = s->dc + n * H;
        for (int k = 0; k < H; k++) {
            float i = g[k], f = g[H + k], gg = g[2 * H + k], o = g[3 * H + k], tc = tanhf(g[4 * H + k]);
            float h = dy[k] + (last ? 0.0f : dh[k]);
            float c = h * o * (1.0f - tc * tc) + (last ? 0.0f : dc[k]);
            float zi = c * gg * i * (1.0f - i);
            float zf = (cp ? c * cp[k] : 0.0f) * f * (1.0f - f);
            float zg = c * i * (1.0f - gg * gg);
            float zo = h * tc * o * (1.0f - o);
            dz[k] = dzt[k] = zi, dz[H + k] = dzt[H + k] = zf;
            dz[2 * H + k] = dzt[2 * H + k] = zg, dz[3 * H + k] = dzt[3 * H + k] = zo;
            dc[k] = c * f;
        }
    }
}

/* db[4H] += the sum of dz's rows [rows, 4H], in row order */
static void add_rows(float *db, const float *dz, size_t rows, int G)
{
    for (size_t r = 0; r < rows; r++)
        for (int j = 0; j < G; j++)
            db[j] += dz[r * G + j];
}

/* dx[N,T,I], dw_ih[4H,I], dw_hh[4H,H], db_ih, db_hh[4H] += ... from dy[N,T,H],
 * with x, y and saved of the forward; any gradient may be NULL */
void nnrt_lstm_backward(float *dx, float *dw_ih, float *dw_hh, float *db_ih, float *db_hh, const float *dy,
                        const float *x, const float *y, const float *saved, const float *w_ih, const float *w_hh,
                        int N, int T, int I, int H)
{
    if (!dx && !dw_ih && !dw_hh && !db_ih && !db_hh)
        return;
    size_t G = (size_t)4 * H, rows = (size_t)N * T;
    float *dz = nnrt_scratch(1, rows * G);
    float *dzt = nnrt_scratch(2, (size_t)N * G + 2 * (size_t)N * H);
    lstm_step s = {.T = T, .H = H, .kept = saved, .dz = dz, .dzt = dzt, .dh = dzt + (size_t)N * G,
                   .dc = dzt + (size_t)N * G + (size_t)N * H, .dy = dy};
    for (int t = T - 1; t >= 0; t--) {
        s.t = t;
        nnrt_parallel_for(bwd_cells, &s, (size_t)N, grain_of(H));
        if (t > 0) {                /* dh[N,H] = dz_t w_hh; y is a valid [N, H] x, which dx alone does not read */
            memset(s.dh, 0, sizeof(float) * (size_t)N * H);
            nnrt_linear_backward(s.dh, NULL, NULL, dzt, y, w_hh, N, H, 4 * H);
        }
    }
    if (dx || dw_ih)
        nnrt_linear_backward(dx, dw_ih, NULL, dz, x, w_ih, N * T, I, 4 * H);
    if (db_ih)
        add_rows(db_ih, dz, rows, 4 * H);
    if (db_hh)
        add_rows(db_hh, dz, rows, 4 * H);
    if (dw_hh && T > 1) {           /* hp[n, t] = h_{t-1}: y one step later, zeros at t = 0 */
        float *hp = nnrt_scratch(2, rows * H);
        for (int n = 0; n < N; n++) {
            float *p = hp + (size_t)n * T * H;
            memset(p, 0, sizeof(float) * (size_t)H);
            memcpy(p + H, y + (size_t)n * T * H, sizeof(float) * (size_t)(T - 1) * H);
        }
        nnrt_linear_backward(NULL, dw_hh, NULL, dz, hp, w_hh, N * T, H, 4 * H);
    }
}
