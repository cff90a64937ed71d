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
 * depend on the number of threads.
 *
 * A task first copies its head's operands out of qkv (rows 3C apart) into
 * panels in its thread's scratch slot 0 (att_scratch floats;
 * nnrt_workspace_attention plans the same): rows of Dp floats (Dh rounded
 * up to 16) for the operands whose rows are the vector lanes, and k (the
 * forward) or v (the backward) transposed, by blocks of 16 positions (Tp
 * is T rounded up to 16), so that the scores come out 16 positions a
 * vector. Padding is zero. Then each product is one register tile, MR rows
 * by one or two vectors of 16 lanes, the broadcast of a row's (or
 * column's) element against rows of the other panel:
 *     forward:  S = q k^T * scale, softmax by rows, y = att v;
 *     backward: datt = dy v^T, ds by rows, dq = ds k, dv = att^T dy,
 *               dk = ds^T q (ds scaled).
 * Causal, a tile computes about what its rows see, which halves the work:
 * the scores and datt up to the vector holding its last row's diagonal
 * (the lanes past each row's diagonal are masked by the row operations),
 * att v and ds k over j <= its last row, att^T dy and ds^T q over i >= its
 * first row (the probabilities above the diagonal are 0). Every element is
 * summed over its reduction index in order. The softmax is the stable one
 * (the row's maximum taken out), with att_exp, a polynomial on 16 lanes
 * (libm's expf is a call per element, which keeps the loop scalar), and
 * its sum in 16 lanes, then added as a tree (lane_sum).
 */
#include <math.h>

#include "nnrt.h"

#include "kernel.h"

enum {
    MR = 4,     /* rows per register tile */
    VL = 16,    /* floats per vector; columns go by one or two vectors */
};

typedef struct att_ctx {
    float *out;             /* y (forward), dqkv (backward) */
    float *att;             /* forward: written */
    const float *p;         /* forward: NULL; backward: att */
    const float *qkv, *dy;
    int T, C, H, causal;
} att_ctx;

static int round16(int n)
{
    return (n + VL - 1) / VL * VL;
}

/* a task's scratch: the backward's q, k, dy (Tp x Dp each), v transposed
 * (Dh x Tp), att and ds (Tp x Tp each); the forward takes less (q, v, k
 * transposed, the scores). nnrt_workspace_attention repeats this. */
static size_t att_scratch(int T, int Dh)
{
    size_t Tp = (size_t)round16(T), Dp = (size_t)round16(Dh);
    return 3 * Tp * Dp + (size_t)Dh * Tp + 2 * Tp * Tp;
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

/* ---- panels and vectors ---- */

/* dst[i][d] (Dp floats a row) = src[i*ld + d] for i < T, d < Dh; zero to
 * Tp rows and Dp columns */
static void gather_rows(float *restrict dst, const float *restrict src, size_t ld, int T, int Dh)
{
    int Tp = round16(T), Dp = round16(Dh);
    for (int i = 0; i < T; i++) {
        float *d = dst + (size_t)i * Dp;
        const float *s = src + i * ld;
        for (int e = 0; e < Dh; e++)    /* a loop, not memcpy: a call costs more than a head's row */
            d[e] = s[e];
        for (int e = Dh; e < Dp; e++)
            d[e] = 0.0f;
    }
    memset(dst + (size_t)T * Dp, 0, sizeof(float) * (size_t)(Tp - T) * Dp);
}

/* dst = src's rows j < T, columns d < Dh, transposed in blocks of 16
 * positions: block b (Dh x 16 floats) holds dst[b][d][v] = src[(16b + v)*ld + d],
 * zero past T (conv_to_lanes: through registers where the machine has
 * AVX-512) */
static void gather_cols(float *restrict dst, const float *restrict src, size_t ld, int T, int Dh)
{
    for (int j0 = 0; j0 < T; j0 += VL)
        conv_to_lanes(dst + (size_t)j0 * Dh, src + j0 * ld, ld, T - j0 < VL ? T - j0 : VL, Dh);
}

/* Vectors go to and from functions by pointer (by value, GCC warns
 * that the ABI differs between the clones). VSELECT: yes where m's lanes
 * are set, else no; BELOW: the lanes of the vector at column j0 that are
 * columns < J. */
#define VSELECT(m, yes, no) ((v16f)(((v16i)(yes) & (m)) | ((v16i)(no) & ~(m))))
#define BELOW(j0, J) (iota + (j0) < (J))
static const v16i iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* e^t, lane by lane, for t <= 0 (the softmax's t - max): 2^n e^r with
 * n = round(t / ln 2) and r = t - n ln 2 (ln 2 in two parts, n times the
 * first exact), |r| <= ln 2 / 2, e^r = 1 + r + r^2 P(r), P of degree 4 fit
 * for the least maximum relative error (Remez exchange in mpmath: 4.3e-9,
 * 5.5e-9 with the coefficients rounded to float): within 1.05 ulp of e^t
 * at every float t in [-87, 0], with FMA and without.
 * 0 below -87 (2^n would leave the normal floats), and for -inf; NaN stays
 * NaN (the compares are false for it). */
INLINE void att_exp(v16f *x)
{
    v16f t = *x;
    const float shift = 12582912.0f;   /* 1.5 * 2^23: k's low bits hold round(n) */
    v16i under = t < -87.0f;
    v16f tc = VSELECT(under, (v16f){0} - 87.0f, t);
    v16f k = tc * 1.44269504f + shift, n = k - shift;
    v16f r = tc - n * 0.693359375f;     /* 0.693359375 + -2.12194440e-4 = ln 2 */
    r = r + n * 2.12194440e-4f;
    v16f r2 = r * r;
    v16f p = (0.499999981f + 0.166665066f * r) + r2 * (0.0416670902f + 0.00837026267f * r + 0.00138934029f * r2);
    v16f e = 1.0f + (r + r2 * p);
    v16i scale = ((v16i)k - 0x4b400000 + 127) << 23;  /* 2^n: n + 127 in the exponent bits */
    *x = VSELECT(under, (v16f){0}, e * (v16f)scale);
}

/* the sum of a's lanes, as a tree: lane v and v + 8, then v + 4, v + 2,
 * v + 1 (each row's chain of additions is 4 long, not 15) */
INLINE float lane_sum(const v16f *a)
{
    v16f s = *a;
    s += SHUF(s, s, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
    s += SHUF(s, s, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7);
    s += SHUF(s, s, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    s += SHUF(s, s, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
    return s[0];
}

/* the largest of a's lanes (none NaN: softmax_row leaves NaN out of its
 * maximum), the same tree */
INLINE float lane_max(const v16f *a)
{
    v16f m = *a, o;
    o = SHUF(m, m, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
    m = VSELECT(o > m, o, m);
    o = SHUF(m, m, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7);
    m = VSELECT(o > m, o, m);
    o = SHUF(m, m, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    m = VSELECT(o > m, o, m);
    o = SHUF(m, m, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
    m = VSELECT(o > m, o, m);
    return m[0];
}

/* *x = n < 16 floats of p into the first lanes, zeros after; all 16 when
 * p has them */
INLINE void load_part(v16f *x, const float *p, int n)
{
    if (n >= VL) {
        memcpy(x, p, sizeof *x);
        return;
    }
    *x = (v16f){0};
    for (int v = 0; v < n; v++)
        (*x)[v] = p[v];
}

/* ---- the register tiles ---- */

/* acc[r][c] = sum over k0 <= k < k1 of a[r*ar + k*ak] * b[k*ldb + bc*c .. +VL]
 * for r < MR, c < nv (1 or 2): rows of a (ar = the row's length, ak = 1) or
 * columns (ar = 1, ak = the length) against the rows of b (its vectors bc
 * apart) */
INLINE void tile(v16f acc[MR][2], const float *restrict a, size_t ar, size_t ak, const float *restrict b,
                 size_t ldb, size_t bc, int k0, int k1, int nv)
{
    for (int r = 0; r < MR; r++)
        for (int c = 0; c < nv; c++)
            acc[r][c] = (v16f){0};
    for (int k = k0; k < k1; k++) {
        v16f bv[2];
        for (int c = 0; c < nv; c++)
            memcpy(&bv[c], b + (size_t)k * ldb + bc * c, sizeof bv[c]);
        for (int r = 0; r < MR; r++) {
            float av = a[r * ar + k * ak];
            for (int c = 0; c < nv; c++)
                acc[r][c] += av * bv[c];
        }
    }
}

/* out[i][j] (Tp floats a row) = scale * sum over d < Dh of a[i][d] b(j, d):
 * a Tp x Dp, b(j, d) in bt as gather_cols leaves it; rows i < T by MR,
 * columns by two vectors (one at the end), causal up to the vector that
 * holds the tile's last row's diagonal */
static void scores(float *restrict out, const float *restrict a, const float *restrict bt, int T, int Dh,
                   int causal, float scale)
{
    int Tp = round16(T), Dp = round16(Dh);
    for (int i0 = 0; i0 < T; i0 += MR) {
        int J = causal ? round16(i0 + MR < T ? i0 + MR : T) : Tp;
        for (int j0 = 0; j0 < J; j0 += 2 * VL) {
            v16f acc[MR][2];
            int nv = J - j0 >= 2 * VL ? 2 : 1;
            if (nv == 2)
                tile(acc, a + (size_t)i0 * Dp, Dp, 1, bt + (size_t)j0 * Dh, VL, (size_t)VL * Dh, 0, Dh, 2);
            else
                tile(acc, a + (size_t)i0 * Dp, Dp, 1, bt + (size_t)j0 * Dh, VL, (size_t)VL * Dh, 0, Dh, 1);
            for (int r = 0; r < MR; r++)
                for (int c = 0; c < nv; c++) {
                    v16f s = acc[r][c] * scale;
                    memcpy(out + (size_t)(i0 + r) * Tp + j0 + VL * c, &s, sizeof s);
                }
        }
    }
}

/* dst[i*ld + d] (= or +=, add) sum over k of a(i, k) b[k][d] for i < T,
 * d < Dh: b Tp x Dp; a(i, k) = a[i*Tp + k] (rows: att v, ds k; causal over
 * k up to the tile's last row, where the rows of a end with zeros) or
 * a[k*Tp + i] (trans: att^T dy, ds^T q; causal over k from the tile's first
 * row, where the columns of a start with zeros) */
static void mix(float *restrict dst, size_t ld, int add, const float *restrict a, int trans,
                const float *restrict b, int T, int Dh, int causal)
{
    int Tp = round16(T), Dp = round16(Dh);
    size_t ar = trans ? 1 : (size_t)Tp, ak = trans ? (size_t)Tp : 1;
    for (int i0 = 0; i0 < T; i0 += MR) {
        int k0 = causal && trans ? i0 : 0;
        int k1 = causal && !trans ? (i0 + MR < T ? i0 + MR : T) : T;
        for (int d0 = 0; d0 < Dh; d0 += 2 * VL) {
            v16f acc[MR][2];
            int nv = Dp - d0 >= 2 * VL ? 2 : 1;
            if (nv == 2)
                tile(acc, a + i0 * ar, ar, ak, b + d0, Dp, VL, k0, k1, 2);
            else
                tile(acc, a + i0 * ar, ar, ak, b + d0, Dp, VL, k0, k1, 1);
            for (int r = 0; r < MR && i0 + r < T; r++)
                for (int c = 0; c < nv; c++) {
                    float *o = dst + (i0 + r) * ld + d0 + VL * c;
                    int n = Dh - d0 - VL * c;
                    if (n >= VL) {
                        v16f s = acc[r][c];
                        if (add) {
                            v16f was;
                            memcpy(&was, o, sizeof was);
                            s += was;
                        }
                        memcpy(o, &s, sizeof s);
                    } else
                        for (int v = 0; v < n; v++)
                            o[v] = add ? o[v] + acc[r][c][v] : acc[r][c][v];
                }
        }
    }
}

/* ---- forward ---- */

/* Row i of the probabilities from its scores s (Tp floats, the first J
 * seen): into s (zeros past J) and att's row (T floats) */
INLINE void softmax_row(float *restrict s, float *restrict att, int J, int T)
{
    int Tp = round16(T), nc = round16(J) / VL;
    v16f m = (v16f){0} - INFINITY, ninf = m;
    for (int c = 0; c < nc; c++) {
        v16f x;
        memcpy(&x, s + VL * c, sizeof x);
        x = VSELECT(BELOW(VL * c, J), x, ninf);
        m = VSELECT(x > m, x, m);
        memcpy(s + VL * c, &x, sizeof x);
    }
    float mx = lane_max(&m);
    v16f sum = {0};
    for (int c = 0; c < nc; c++) {
        v16f x;
        memcpy(&x, s + VL * c, sizeof x);
        x -= mx;
        att_exp(&x);
        sum += x;
        memcpy(s + VL * c, &x, sizeof x);
    }
    float rs = 1.0f / lane_sum(&sum);
    for (int c = 0; c < nc; c++) {
        v16f x;
        memcpy(&x, s + VL * c, sizeof x);
        x *= rs;
        memcpy(s + VL * c, &x, sizeof x);
    }
    for (int j = VL * nc; j < Tp; j++)
        s[j] = 0.0f;
    for (int j = 0; j < T; j++)
        att[j] = s[j];
}

/* sample n = task / H, head h = task % H: att[n, h] and y's columns of h */
HOT static void att_fwd_task(void *arg, int task)
{
    const att_ctx *c = arg;
    int T = c->T, C = c->C, H = c->H, Dh = C / H, n = task / H, h = task % H;
    int Tp = round16(T), Dp = round16(Dh);
    size_t ld = 3 * (size_t)C;                      /* floats from one position to the next */
    const float *q = c->qkv + (size_t)n * T * ld + (size_t)h * Dh, *k = q + C, *v = q + 2 * C;
    float *y = c->out + (size_t)n * T * C + (size_t)h * Dh;
    float *att = c->att + (size_t)task * T * T;
    float scale = (float)(1.0 / sqrt((double)Dh));
    float *qp = nnrt_scratch(0, att_scratch(T, Dh));
    float *vp = qp + (size_t)Tp * Dp, *kt = vp + (size_t)Tp * Dp, *s = kt + (size_t)Dh * Tp;
    gather_rows(qp, q, ld, T, Dh);
    gather_rows(vp, v, ld, T, Dh);
    gather_cols(kt, k, ld, T, Dh);
    scores(s, qp, kt, T, Dh, c->causal, scale);
    for (int i = 0; i < T; i++)
        softmax_row(s + (size_t)i * Tp, att + (size_t)i * T, c->causal ? i + 1 : T, T);
    mix(y, (size_t)C, 0, s, 0, vp, T, Dh, c->causal);
}

/* y[N, T, C], att[N, H, T, T] from qkv[N, T, 3C]; C divisible by H */
void nnrt_attention_forward(float *y, float *att, const float *qkv, int N, int T, int C, int H, int causal)
{
    att_ctx c = {.out = y, .att = att, .qkv = qkv, .T = T, .C = C, .H = H, .causal = causal};
    run_heads(att_fwd_task, &c, N);
}

/* ---- backward ---- */

/* Row i of ds from datt (in ds, Tp floats, the first J seen) and att's row
 * (T floats): ds = att * (datt - sum_j datt_j att_j) * scale, zeros past J,
 * and the row of att, zeros past J, into p (Tp floats) */
INLINE void dsoftmax_row(float *restrict ds, float *restrict p, const float *restrict att, int J, int T,
                         float scale)
{
    int Tp = round16(T), nc = round16(J) / VL;
    v16f dot = {0};
    for (int c = 0; c < nc; c++) {
        v16i seen = BELOW(VL * c, J);
        v16f a, g;
        load_part(&a, att + VL * c, T - VL * c);
        memcpy(&g, ds + VL * c, sizeof g);
        a = VSELECT(seen, a, (v16f){0});
        dot += VSELECT(seen, g * a, (v16f){0});
        memcpy(p + VL * c, &a, sizeof a);
    }
    float sf = lane_sum(&dot);
    for (int c = 0; c < nc; c++) {
        v16f a, g;
        memcpy(&a, p + VL * c, sizeof a);
        memcpy(&g, ds + VL * c, sizeof g);
        g = VSELECT(BELOW(VL * c, J), a * (g - sf) * scale, (v16f){0});
        memcpy(ds + VL * c, &g, sizeof g);
    }
    for (int j = VL * nc; j < Tp; j++)
        ds[j] = p[j] = 0.0f;
}

/* sample n = task / H, head h = task % H: its columns of dq, dk, dv */
HOT static void att_bwd_task(void *arg, int task)
{
    const att_ctx *c = arg;
    int T = c->T, C = c->C, H = c->H, Dh = C / H, n = task / H, h = task % H;
    int Tp = round16(T), Dp = round16(Dh);
    size_t ld = 3 * (size_t)C;
    size_t at = (size_t)n * T * ld + (size_t)h * Dh;    /* the head's q in qkv and dqkv */
    const float *q = c->qkv + at, *k = q + C, *v = q + 2 * C;
    float *dq = c->out + at, *dk = dq + C, *dv = dq + 2 * C;
    const float *dy = c->dy + (size_t)n * T * C + (size_t)h * Dh;
    const float *att = c->p + (size_t)task * T * T;
    float scale = (float)(1.0 / sqrt((double)Dh));
    float *qp = nnrt_scratch(0, att_scratch(T, Dh));
    float *kp = qp + (size_t)Tp * Dp, *dyp = kp + (size_t)Tp * Dp, *vt = dyp + (size_t)Tp * Dp;
    float *p = vt + (size_t)Dh * Tp, *ds = p + (size_t)Tp * Tp;
    gather_rows(qp, q, ld, T, Dh);
    gather_rows(kp, k, ld, T, Dh);
    gather_rows(dyp, dy, (size_t)C, T, Dh);
    gather_cols(vt, v, ld, T, Dh);
    scores(ds, dyp, vt, T, Dh, c->causal, 1.0f);       /* datt */
    for (int i = 0; i < T; i++)
        dsoftmax_row(ds + (size_t)i * Tp, p + (size_t)i * Tp, att + (size_t)i * T, c->causal ? i + 1 : T, T,
                     scale);
    mix(dq, ld, 1, ds, 0, kp, T, Dh, c->causal);
    mix(dv, ld, 1, p, 1, dyp, T, Dh, c->causal);
    mix(dk, ld, 1, ds, 1, qp, T, Dh, c->causal);
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
