/* batchnorm.c — batch normalisation, forward (training and evaluation) and
 * backward (torch.nn.BatchNorm1d and BatchNorm2d).
 *
 * x is viewed as [N, C, HW]: HW = H*W for BatchNorm2d, the length L for
 * BatchNorm1d on [N, C, L], and 1 for BatchNorm1d on [N, C]. Each channel c
 * is normalised over its M = N*HW values:
 *     xhat = (x - mean) * invstd,  invstd = 1/sqrt(var + eps),  y = gamma * xhat + beta
 * In training, mean and the BIASED variance var come from the batch, and the
 * running statistics move toward the batch's, with the UNBIASED variance
 * var * M/(M-1), exactly as PyTorch:
 *     running = (1 - momentum) * running + momentum * batch
 * In evaluation the running statistics replace the batch's. Training
 * forward keeps mean[C] and invstd[C] for backward, which is, per channel
 * (g = dy, sums over M):
 *     dbeta  += sum g
 *     dgamma += sum g * xhat
 *     dx     += gamma * invstd * (g - sum g / M - xhat * sum(g * xhat) / M)
 * gamma and beta are NULL when affine=false (then gamma acts as 1, beta as 0).
 *
 * Statistics are summed in double, as PyTorch's CPU kernel does, in ONE
 * pass over x: sums shifted by the channel's first value k,
 *     s1 = sum (x - k),  s2 = sum (x - k)^2,
 *     mean = k + s1 / M,  sum (x - mean)^2 = s2 - s1^2 / M  (at least 0)
 * x - k is exact in double and its square nearly always is; what s1^2 / M
 * cancels of s2 costs var a relative 1e-16 * (mean - k)^2 / var (1e-8
 * were k 1e4 standard deviations out): the floats it gives are those of
 * two passes (measured).
 * The backward's sums are sum g and sum g * (x - mean), x - mean in double.
 * So the training forward reads x twice (the sums, then y) and the
 * backward x and dy twice (the sums, then dx), a channel at a time: the
 * second pass finds the channel in cache (128 x 32x32 floats: 512 KiB).
 *
 * A channel's values are N planes of HW floats, C*HW apart. Its sums go
 * plane by plane, each by vectors: value i of a plane goes to double lane i
 * mod 16 (two v8d), the plane's last HW mod 16 values to a scalar, and the
 * lanes are added in order at the end (fold). Each pass over a channel
 * prefetches the plane AHEAD planes on (for writing, y's and dx's): the
 * hardware's prefetcher starts afresh at each plane. The elementwise passes go by
 * v16f vectors, loaded before they are stored, so y may equal x. When
 * HW < 16 (BatchNorm1d), runs of channels go together instead: at each n,
 * a run of RUN / HW channels is one row of up to RUN floats, summed
 * position by position over n, and each channel's HW positions are added
 * in order at the end.
 *
 * Channels are independent: a call cuts them into tasks of whole channels
 * for nnrt_parallel (from 2 * GRAIN values, GRAIN or more a task), and a
 * channel's sums are taken in the same order whichever thread runs it, so
 * any number of threads gives the same bits.
 */
#include <math.h>
#include <string.h>

#include "nnrt.h"

#include "kernel.h"

typedef double v8d __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));

enum {
    VL = 16,            /* values a vector step: one v16f, two v8d */
    RUN = 256,          /* HW < VL: floats in a run of channels (its sums' positions) */
    AHEAD = 2,          /* the planes of a channel are prefetched this many planes ahead */
};
/* a call is shared between threads from 2 * GRAIN values, GRAIN or more a
 * task: activation.c's grain (EW_GRAIN) for its elementwise work */
#define GRAIN 32768

/* floats from a plane to the one AHEAD planes on (cs apart), or 0 past the last */
INLINE ptrdiff_t ahead(int n, int N, size_t cs)
{
    return n + AHEAD < N ? AHEAD * (ptrdiff_t)cs : 0;
}

/* v[0], v[1] = p[0..7], p[8..15] as doubles */
INLINE void load_d(v8d v[2], const float *p)
{
    v8f a, b;
    memcpy(&a, p, sizeof a);
    memcpy(&b, p + 8, sizeof b);
    v[0] = __builtin_convertvector(a, v8d);
    v[1] = __builtin_convertvector(b, v8d);
}

/* the 16 lanes of s[0], s[1] (lane l of each added first) in order, then t */
INLINE double fold(const v8d s[2], double t)
{
    v8d v = s[0] + s[1];
    double r = 0.0;
    for (int l = 0; l < 8; l++)
        r += v[l];
    return r + t;
}

/* The sums of one channel (HW >= VL) over its N planes x + n*cs, HW
 * values each (and dy's, at the same places), in double:
 *     dy NULL:  *sa = sum (x - k),  *sb = sum (x - k)^2
 *     else:     *sa = sum dy,       *sb = sum dy * (x - k)
 * Value i of a plane goes to lane i mod 16 (a[i/8 % 2] lane i % 8), the
 * plane's last HW mod 16 values to ta, tb; then fold. GCC 12 converts a
 * v8f to a v8d 4 lanes at a time (vcvtps2pd ymm and an insert); one
 * AVX-512 vcvtps2pd (intrinsics) measured no faster in a trainer: these
 * sums wait on memory. */
INLINE void chan_sums(double *sa, double *sb, const float *x, const float *dy, size_t cs, int N, size_t HW,
                      double k)
{
    v8d a[2] = {0}, b[2] = {0};
    double ta = 0.0, tb = 0.0;
    for (int n = 0; n < N; n++) {
        const float *p = x + n * cs, *q = dy ? dy + n * cs : NULL;
        ptrdiff_t on = ahead(n, N, cs);
        size_t i = 0;
        for (; i + VL <= HW; i += VL) {
            v8d v[2], g[2];
            __builtin_prefetch(p + i + on);
            if (q)
                __builtin_prefetch(q + i + on);
            load_d(v, p + i);
            if (q)
                load_d(g, q + i);
            for (int h = 0; h < 2; h++) {
                v8d e = v[h] - k;
                a[h] += q ? g[h] : e;
                b[h] += (q ? g[h] : e) * e;
            }
        }
        for (; i < HW; i++) {
            double e = (double)p[i] - k, g = q ? q[i] : e;
            ta += g;
            tb += g * e;
        }
    }
    *sa = fold(a, ta);
    *sb = fold(b, tb);
}

/* y[n] = (x[n] - m) * a + b, one row; y may equal x. Prefetches y + on
 * (the row AHEAD planes on) for writing. */
INLINE void affine_row(float *y, const float *x, size_t n, float m, float a, float b, ptrdiff_t on)
{
    size_t i = 0;
    for (; i + VL <= n; i += VL) {
        v16f v;
        __builtin_prefetch(y + i + on, 1);
        memcpy(&v, x + i, sizeof v);
        v = (v - m) * a + b;
        memcpy(y + i, &v, sizeof v);
    }
    for (; i < n; i++)
        y[i] = (x[i] - m) * a + b;
}

/* y[N, c0 .. c0+nc-1, HW] = (x - m[j]) * a[j] + b[j], j = the position in
 * the run of nc*HW floats (HW < VL); y may equal x */
INLINE void affine_run(float *y, const float *x, const nnrt_bn_dims *d, int c0, size_t L, const float *m,
                       const float *a, const float *b)
{
    for (int n = 0; n < d->N; n++) {
        size_t at = ((size_t)n * d->C + c0) * d->HW;
        for (size_t j = 0; j < L; j++)
            y[at + j] = (x[at + j] - m[j]) * a[j] + b[j];
    }
}

/* Runs fn(ctx, task) over tasks of *cpt channels each: all C channels in
 * one call here below 2 * GRAIN values, else tasks of GRAIN values or more
 * on the pool's threads. */
static void run_channels(void (*fn)(void *, int), void *ctx, int *cpt, const nnrt_bn_dims *d)
{
    size_t per = (size_t)d->N * d->HW, all = per * d->C;
    if (all < 2 * GRAIN || d->C < 2) {
        *cpt = d->C;
        fn(ctx, 0);
        return;
    }
    size_t k = (GRAIN + per - 1) / per;
    *cpt = k < (size_t)d->C ? (int)k : d->C;
    nnrt_parallel(fn, ctx, (d->C + *cpt - 1) / *cpt);
}

/* ---- training forward ---- */

typedef struct train_job {
    float *y, *mean, *invstd, *rm, *rv;
    const float *x, *gamma, *beta;
    const nnrt_bn_dims *d;
    int cpt;                    /* channels a task */
} train_job;

/* channel c's statistics from s1 = sum (x - k), s2 = sum (x - k)^2 over its
 * M values: writes mean[c], invstd[c], the running statistics; y = (x - *m)
 * * *a + *b */
static void train_stats(const train_job *j, int c, double k, double s1, double s2, float *m, float *a,
                        float *b)
{
    const nnrt_bn_dims *d = j->d;
    size_t M = (size_t)d->N * d->HW;
    double mom = d->momentum;
    double mu = k + s1 / (double)M;
    double ss = s2 - s1 * s1 / (double)M;      /* sum (x - mean)^2 */
    if (ss < 0.0)
        ss = 0.0;                               /* rounding, values all equal */
    double var = ss / (double)M;
    double is = 1.0 / sqrt(var + (double)d->eps);
    j->mean[c] = (float)mu;
    j->invstd[c] = (float)is;
    if (j->rm)
        j->rm[c] = (float)((1.0 - mom) * j->rm[c] + mom * mu);
    if (j->rv) {     /* PyTorch refuses M == 1 in training; keep var then */
        double unbiased = M > 1 ? ss / (double)(M - 1) : var;
        j->rv[c] = (float)((1.0 - mom) * j->rv[c] + mom * unbiased);
    }
    *m = (float)mu;
    *a = (float)(j->gamma ? j->gamma[c] * is : is);
    *b = j->beta ? j->beta[c] : 0.0f;
}

/* one channel, HW >= VL: the shifted sums, then y */
static inline void train_channel(const train_job *j, int c)
{
    const nnrt_bn_dims *d = j->d;
    size_t HW = (size_t)d->HW, cs = (size_t)d->C * HW;     /* a channel's planes are cs apart */
    const float *xc = j->x + (size_t)c * HW;
    double k = xc[0], s1, s2;
    chan_sums(&s1, &s2, xc, NULL, cs, d->N, HW, k);
    float m, a, b;
    train_stats(j, c, k, s1, s2, &m, &a, &b);
    for (int n = 0; n < d->N; n++)
        affine_row(j->y + (size_t)c * HW + n * cs, xc + n * cs, HW, m, a, b, ahead(n, d->N, cs));
}

/* channels c0 .. c1-1, HW < VL: runs of RUN / HW channels, the shifted sums
 * by positions of the run (s1[i], s2[i] over n), then y */
static inline void train_runs(const train_job *j, int c0, int c1)
{
    const nnrt_bn_dims *d = j->d;
    size_t HW = (size_t)d->HW;
    int R = (int)(RUN / HW);
    for (int r0 = c0; r0 < c1; r0 += R) {
        int nr = c1 - r0 < R ? c1 - r0 : R;
        size_t L = (size_t)nr * HW;
        double k[RUN], s1[RUN], s2[RUN];
        float m[RUN], a[RUN], b[RUN];
        for (size_t i = 0; i < L; i++) {        /* shift: each channel's value at n = 0, i = 0 */
            k[i] = j->x[(r0 + i / HW) * HW];
            s1[i] = s2[i] = 0.0;
        }
        for (int n = 0; n < d->N; n++) {
            const float *p = j->x + ((size_t)n * d->C + r0) * HW;
            for (size_t i = 0; i < L; i++) {
                double e = p[i] - k[i];
                s1[i] += e;
                s2[i] += e * e;
            }
        }
        for (int r = 0; r < nr; r++) {
            double t1 = 0.0, t2 = 0.0;
            for (size_t i = r * HW; i < (r + 1) * HW; i++)
                t1 += s1[i], t2 += s2[i];
            train_stats(j, r0 + r, k[r * HW], t1, t2, &m[r * HW], &a[r * HW], &b[r * HW]);
            for (size_t i = r * HW + 1; i < (r + 1) * HW; i++)
                m[i] = m[r * HW], a[i] = a[r * HW], b[i] = b[r * HW];
        }
        affine_run(j->y, j->x, d, r0, L, m, a, b);
    }
}

HOT static void bn_train_task(void *arg, int task)
{
    const train_job *j = arg;
    int c0 = task * j->cpt, c1 = c0 + j->cpt < j->d->C ? c0 + j->cpt : j->d->C;
    if (j->d->HW < VL)
        train_runs(j, c0, c1);
    else
        for (int c = c0; c < c1; c++)
            train_channel(j, c);
}

/* y[N,C,HW] = batch-normalised x[N,C,HW]; writes mean[C], invstd[C]; updates
 * running_mean[C], running_var[C] (either may be NULL: not tracked);
 * gamma[C], beta[C] may be NULL. Backward reads x, so y may equal x only
 * when no backward follows. */
void nnrt_batchnorm_forward_train(float *y, float *mean, float *invstd, float *running_mean,
                                  float *running_var, const float *x, const float *gamma,
                                  const float *beta, const nnrt_bn_dims *d)
{
    train_job j = {y, mean, invstd, running_mean, running_var, x, gamma, beta, d, 0};
    run_channels(bn_train_task, &j, &j.cpt, d);
}

/* ---- evaluation forward ---- */

typedef struct eval_job {
    float *y;
    const float *x, *gamma, *beta, *rm, *rv;
    const nnrt_bn_dims *d;
    int cpt;
} eval_job;

/* channel c's y = (x - *m) * *a + *b from the running statistics */
static void eval_coef(const eval_job *j, int c, float *m, float *a, float *b)
{
    double is = 1.0 / sqrt((double)j->rv[c] + (double)j->d->eps);
    *m = j->rm[c];
    *a = (float)(j->gamma ? j->gamma[c] * is : is);
    *b = j->beta ? j->beta[c] : 0.0f;
}

HOT static void bn_eval_task(void *arg, int task)
{
    const eval_job *j = arg;
    const nnrt_bn_dims *d = j->d;
    size_t HW = (size_t)d->HW, cs = (size_t)d->C * HW;
    int c0 = task * j->cpt, c1 = c0 + j->cpt < d->C ? c0 + j->cpt : d->C;
    if (HW >= VL) {
        for (int c = c0; c < c1; c++) {
            float m, a, b;
            eval_coef(j, c, &m, &a, &b);
            for (int n = 0; n < d->N; n++)
                affine_row(j->y + (size_t)c * HW + n * cs, j->x + (size_t)c * HW + n * cs, HW, m, a, b,
                           ahead(n, d->N, cs));
        }
        return;
    }
    int R = (int)(RUN / HW);    /* runs of channels, coefficients by position */
    for (int r0 = c0; r0 < c1; r0 += R) {
        int nr = c1 - r0 < R ? c1 - r0 : R;
        float m[RUN], a[RUN], b[RUN];
        for (int r = 0; r < nr; r++) {
            eval_coef(j, r0 + r, &m[r * HW], &a[r * HW], &b[r * HW]);
            for (size_t i = r * HW + 1; i < (r + 1) * HW; i++)
                m[i] = m[r * HW], a[i] = a[r * HW], b[i] = b[r * HW];
        }
        affine_run(j->y, j->x, d, r0, (size_t)nr * HW, m, a, b);
    }
}

/* y[N,C,HW] = (x - running_mean) / sqrt(running_var + eps) * gamma + beta;
 * gamma, beta may be NULL; y may equal x */
void nnrt_batchnorm_forward_eval(float *y, const float *x, const float *gamma, const float *beta,
                                 const float *running_mean, const float *running_var,
                                 const nnrt_bn_dims *d)
{
    eval_job j = {y, x, gamma, beta, running_mean, running_var, d, 0};
    run_channels(bn_eval_task, &j, &j.cpt, d);
}

/* ---- backward ---- */

typedef struct bwd_job {
    float *dx, *dgamma, *dbeta;
    const float *dy, *x, *mean, *invstd, *gamma;
    const nnrt_bn_dims *d;
    int cpt;
} bwd_job;

/* channel c's dgamma, dbeta from sg = sum g, sgx = sum g * (x - mean); dx
 * += *k * (g - *mg - (x - mean) * *proj) */
static void bwd_coef(const bwd_job *j, int c, double sg, double sgx, float *k, float *mg, float *proj)
{
    size_t M = (size_t)j->d->N * j->d->HW;
    float is = j->invstd[c];
    if (j->dbeta)
        j->dbeta[c] += (float)sg;
    if (j->dgamma)
        j->dgamma[c] += (float)(sgx * is);
    /* proj = sum(g * xhat) * invstd / M = sgx * invstd^2 / M */
    *k = j->gamma ? j->gamma[c] * is : is;
    *mg = (float)(sg / (double)M);
    *proj = (float)(sgx * is * is / (double)M);
}

/* dx[n] += k * (g[n] - mg - (x[n] - mu) * proj), one row (assign: dx[n] =);
 * prefetches dx + on for writing */
INLINE void dx_row(float *dx, const float *g, const float *x, size_t n, float mu, float k, float mg, float proj,
                   ptrdiff_t on, int assign)
{
    size_t i = 0;
    for (; i + VL <= n; i += VL) {
        v16f vd = {0}, vg, vx;
        __builtin_prefetch(dx + i + on, 1);
        if (!assign)
            memcpy(&vd, dx + i, sizeof vd);
        memcpy(&vg, g + i, sizeof vg);
        memcpy(&vx, x + i, sizeof vx);
        vd += k * (vg - mg - (vx - mu) * proj);
        memcpy(dx + i, &vd, sizeof vd);
    }
    for (; i < n; i++)
        dx[i] = (assign ? 0.0f : dx[i]) + k * (g[i] - mg - (x[i] - mu) * proj);
}

/* one channel, HW >= VL: the two sums, then dx */
static inline void bwd_channel(const bwd_job *j, int c)
{
    const nnrt_bn_dims *d = j->d;
    size_t HW = (size_t)d->HW, cs = (size_t)d->C * HW, c0 = (size_t)c * HW;
    float mu = j->mean[c];
    double sg, sgx;         /* sum g, sum g * (x - mean) */
    chan_sums(&sg, &sgx, j->x + c0, j->dy + c0, cs, d->N, HW, mu);
    float k, mg, proj;
    bwd_coef(j, c, sg, sgx, &k, &mg, &proj);
    if (!j->dx)
        return;
    for (int n = 0; n < d->N; n++)
        dx_row(j->dx + c0 + n * cs, j->dy + c0 + n * cs, j->x + c0 + n * cs, HW, mu, k, mg, proj,
               ahead(n, d->N, cs), d->assign_dx);
}

/* channels c0 .. c1-1, HW < VL: runs of RUN / HW channels, the two sums by
 * positions, then dx */
static inline void bwd_runs(const bwd_job *j, int c0, int c1)
{
    const nnrt_bn_dims *d = j->d;
    size_t HW = (size_t)d->HW;
    int R = (int)(RUN / HW);
    for (int r0 = c0; r0 < c1; r0 += R) {
        int nr = c1 - r0 < R ? c1 - r0 : R;
        size_t L = (size_t)nr * HW;
        double md[RUN], sg[RUN], sx[RUN];
        float mu[RUN], k[RUN], mg[RUN], proj[RUN];
        for (size_t i = 0; i < L; i++) {
            mu[i] = j->mean[r0 + i / HW];
            md[i] = mu[i];
            sg[i] = sx[i] = 0.0;
        }
        for (int n = 0; n < d->N; n++) {
            size_t at = ((size_t)n * d->C + r0) * HW;
            const float *pg = j->dy + at, *px = j->x + at;
            for (size_t i = 0; i < L; i++) {
                sg[i] += pg[i];
                sx[i] += (double)pg[i] * ((double)px[i] - md[i]);
            }
        }
        for (int r = 0; r < nr; r++) {
            double tg = 0.0, tx = 0.0;
            for (size_t i = r * HW; i < (r + 1) * HW; i++)
                tg += sg[i], tx += sx[i];
            bwd_coef(j, r0 + r, tg, tx, &k[r * HW], &mg[r * HW], &proj[r * HW]);
            for (size_t i = r * HW + 1; i < (r + 1) * HW; i++)
                k[i] = k[r * HW], mg[i] = mg[r * HW], proj[i] = proj[r * HW];
        }
        if (!j->dx)
            continue;
        for (int n = 0; n < d->N; n++) {
            size_t at = ((size_t)n * d->C + r0) * HW;
            float *dx = j->dx + at;
            const float *g = j->dy + at, *x = j->x + at;
            for (size_t i = 0; i < L; i++)
                dx[i] = (d->assign_dx ? 0.0f : dx[i]) + k[i] * (g[i] - mg[i] - (x[i] - mu[i]) * proj[i]);
        }
    }
}

HOT static void bn_bwd_task(void *arg, int task)
{
    const bwd_job *j = arg;
    int c0 = task * j->cpt, c1 = c0 + j->cpt < j->d->C ? c0 + j->cpt : j->d->C;
    if (j->d->HW < VL)
        bwd_runs(j, c0, c1);
    else
        for (int c = c0; c < c1; c++)
            bwd_channel(j, c);
}

/* dx[N,C,HW] += ... (d->assign_dx: =), dgamma[C] += sum dy * xhat, dbeta[C] += sum dy, given
 * dy[N,C,HW], x, and the training forward's mean[C], invstd[C]; gamma may be
 * NULL (affine=false, then dgamma and dbeta are NULL too); any gradient may be NULL */
void nnrt_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                             const float *mean, const float *invstd, const float *gamma,
                             const nnrt_bn_dims *d)
{
    if (!dx && !dgamma && !dbeta)
        return;
    bwd_job j = {dx, dgamma, dbeta, dy, x, mean, invstd, gamma, d, 0};
    run_channels(bn_bwd_task, &j, &j.cpt, d);
}
