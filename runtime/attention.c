/* attention.c — scaled dot-product attention over H heads, forward and
 * backward (nanoGPT's CausalSelfAttention after c_attn and before c_proj).
 *
 * Shapes (N batch, T positions, C = H * Dh channels):
 *     qkv [N, T, 3C]   q | k | v along the last dimension; head h reads
 *                      columns h*Dh .. h*Dh+Dh-1 of each of q, k and v
 *     att [N, H, T, T] the probabilities, kept for the backward
 *     y   [N, T, C]    the heads side by side (head h at columns h*Dh)
 * Per sample n and head h, with q_i, k_j, v_j the head's rows of position
 * i, j and scale = 1/sqrt(Dh):
 *     s_ij = q_i . k_j * scale      (causal: only j <= i; the rest is -inf)
 *     att_ij = softmax_j(s_ij)      (0 above the diagonal when causal)
 *     y_i = sum_j att_ij v_j
 * and the backward, from dy_i (the head's columns of dy):
 *     dv_j += sum_i att_ij dy_i
 *     datt_ij = dy_i . v_j
 *     ds_ij = att_ij * (datt_ij - sum_j' datt_ij' att_ij')
 *     dq_i += scale * sum_j ds_ij k_j,   dk_j += scale * sum_i ds_ij q_i
 * all accumulated (+=) into dqkv, whose columns match qkv's.
 *
 * Each (n, h) pair is a task for nnrt_parallel: its reads and writes of y,
 * att and dqkv are its own (its head's columns, its sample's rows), and it
 * runs the same loops in the same order on any thread, so the bits do not
 * depend on the number of threads. The softmax is the stable one (the
 * row's maximum taken out) with its sum in double, as softmax.c's. The
 * forward works in att's own rows; the backward keeps one row of ds in its
 * thread's scratch slot 0 (T floats, nnrt_workspace_attention plans it).
 * The loops are plain: the dot products go over Dh (and over T for
 * sum datt * att), the updates of y, dq, dk and dv are rows of Dh, which
 * the compiler vectorises.
 */
#include <math.h>

#include "nnrt.h"

#include "kernel.h"

typedef struct att_ctx {
    float *out;             /* y (forward), dqkv (backward) */
    float *att;             /* forward: written */
    const float *p;         /* forward: NULL; backward: att */
    const float *qkv, *dy;
    int T, C, H, causal;
} att_ctx;

/* q . k over n floats, in order */
static inline float dotf(const float *restrict a, const float *restrict b, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* y[i] += a * x[i] over n floats */
static inline void axpy(float *restrict y, float a, const float *restrict x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

/* Runs fn for each of the N*H (sample, head) tasks: on this thread when
 * the call is small (under NNRT_PAR_MACS multiply-adds), else on the pool.
 * The same loops either way. */
static void run_heads(void (*fn)(void *, int), att_ctx *c, int N)
{
    int Dh = c->C / c->H, tasks = N * c->H;
    double macs = 2.0 * N * c->H * (double)c->T * c->T * Dh;
    if (macs < NNRT_PAR_MACS) {
        for (int t = 0; t < tasks; t++)
            fn(c, t);
        return;
    }
    nnrt_parallel(fn, c, tasks);
}

/* ---- forward ---- */

/* sample n = task / H, head h = task % H: att[n, h] and y's columns of h */
HOT static void att_fwd_task(void *arg, int task)
{
    const att_ctx *c = arg;
    int T = c->T, C = c->C, H = c->H, Dh = C / H, n = task / H, h = task % H;
    size_t ld = 3 * (size_t)C;                      /* floats from one position to the next */
    const float *q = c->qkv + (size_t)n * T * ld + (size_t)h * Dh, *k = q + C, *v = q + 2 * C;
    float *y = c->out + (size_t)n * T * C + (size_t)h * Dh;
    float *att = c->att + (size_t)task * T * T;
    float scale = (float)(1.0 / sqrt((double)Dh));
    for (int i = 0; i < T; i++) {
        float *a = att + (size_t)i * T, *yi = y + (size_t)i * C;
        int J = c->causal ? i + 1 : T;              /* the positions row i sees */
        const float *qi = q + i * ld;
        float m = -INFINITY;
        for (int j = 0; j < J; j++) {
            a[j] = dotf(qi, k + j * ld, Dh) * scale;
            if (a[j] > m || isnan(a[j]))
                m = a[j];
        }
        double s = 0.0;
        for (int j = 0; j < J; j++) {
            a[j] = expf(a[j] - m);
            s += a[j];
        }
        float r = (float)(1.0 / s);
        for (int j = 0; j < J; j++)
            a[j] *= r;
        for (int j = J; j < T; j++)
            a[j] = 0.0f;
        for (int d = 0; d < Dh; d++)
            yi[d] = 0.0f;
        for (int j = 0; j < J; j++)
            axpy(yi, a[j], v + j * ld, Dh);
    }
}

/* y[N, T, C], att[N, H, T, T] from qkv[N, T, 3C]; C divisible by H */
void nnrt_attention_forward(float *y, float *att, const float *qkv, int N, int T, int C, int H, int causal)
{
    att_ctx c = {.out = y, .att = att, .qkv = qkv, .T = T, .C = C, .H = H, .causal = causal};
    run_heads(att_fwd_task, &c, N);
}

/* ---- backward ---- */

/* sample n = task / H, head h = task % H: its columns of dq, dk, dv */
HOT static void att_bwd_task(void *arg, int task)
{
    const att_ctx *c = arg;
    int T = c->T, C = c->C, H = c->H, Dh = C / H, n = task / H, h = task % H;
    size_t ld = 3 * (size_t)C;
    size_t at = (size_t)n * T * ld + (size_t)h * Dh;    /* the head's q in qkv and dqkv */
    const float *q = c->qkv + at, *k = q + C, *v = q + 2 * C;
    float *dq = c->out + at, *dk = dq + C, *dv = dq + 2 * C;
    const float *dy = c->dy + (size_t)n * T * C + (size_t)h * Dh;
    const float *att = c->p + (size_t)task * T * T;
    float scale = (float)(1.0 / sqrt((double)Dh));
    float *ds = nnrt_scratch(0, (size_t)T);             /* row i of ds */
    for (int i = 0; i < T; i++) {
        const float *a = att + (size_t)i * T, *dyi = dy + (size_t)i * C, *qi = q + i * ld;
        int J = c->causal ? i + 1 : T;
        double s = 0.0;                                 /* sum_j datt_ij att_ij */
        for (int j = 0; j < J; j++) {
            ds[j] = dotf(dyi, v + j * ld, Dh);
            s += (double)ds[j] * a[j];
        }
        float sf = (float)s;
        for (int j = 0; j < J; j++) {
            ds[j] = a[j] * (ds[j] - sf);
            axpy(dv + j * ld, a[j], dyi, Dh);
            axpy(dk + j * ld, ds[j] * scale, qi, Dh);
        }
        float *dqi = dq + i * ld;
        for (int j = 0; j < J; j++)
            axpy(dqi, ds[j] * scale, k + j * ld, Dh);
    }
}

/* dqkv[N, T, 3C] += the gradient of qkv from dy[N, T, C], given att from
 * the forward; dqkv may be NULL */
void nnrt_attention_backward(float *dqkv, const float *dy, const float *att, const float *qkv, int N, int T,
                             int C, int H, int causal)
{
    if (!dqkv)
        return;
    att_ctx c = {.out = dqkv, .p = att, .qkv = qkv, .dy = dy, .T = T, .C = C, .H = H, .causal = causal};
    run_heads(att_bwd_task, &c, N);
}
