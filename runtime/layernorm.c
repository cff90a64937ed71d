/* layernorm.c — layer normalisation over the last dimension, forward and
 * backward (torch.nn.LayerNorm(C), F.layer_norm(x, (C,), w, b, eps)).
 *
 * x is viewed as [rows, C]: every row of C values is normalised on its own,
 *     mean = sum x / C,  var = sum (x - mean)^2 / C  (biased, as PyTorch),
 *     rstd = 1 / sqrt(var + eps),  xhat = (x - mean) * rstd,
 *     y = xhat * w + b             (w, b [C]; NULL: elementwise_affine=False)
 * and the forward keeps mean[rows] and rstd[rows] for the backward, which
 * is, with g = dy * w (g = dy without affine) and sums over the row's C:
 *     dx += rstd / C * (C * g - sum g - xhat * sum (g * xhat))
 *     dw += sum over rows of dy * xhat,   db += sum over rows of dy
 *
 * A row's statistics and sums run in double, in two passes (the mean, then
 * the squares about it), so var loses nothing to cancellation when the mean
 * is large against the spread.
 *
 * Rows are independent in the forward and in dx: a call cuts them between
 * the threads by rows, each row computed alike on any thread. dw and db sum
 * over rows: they are cut by COLUMNS, each task summing its columns over
 * every row in row order (in double, BLOCK columns at a time on the stack),
 * so the bits never depend on the number of threads.
 */
#include <math.h>

#include "nnrt.h"

#include "kernel.h"

/* work is shared between threads from this many floats (activation.c's grain) */
#define GRAIN 32768
enum { BLOCK = 256 };   /* dw, db: columns summed together */

typedef struct ln_ctx {
    float *y, *mean, *rstd;             /* forward's outputs */
    float *dx, *dw, *db;                /* backward's */
    const float *x, *dy, *w, *b;
    const float *cmean, *crstd;         /* backward: the forward's statistics */
    int rows, C;
    float eps;
} ln_ctx;

/* rows per task: at least GRAIN floats */
static size_t row_grain(int C)
{
    return ((size_t)GRAIN + (size_t)C - 1) / (size_t)C;
}

/* ---- forward ---- */

/* rows lo..hi-1: mean, rstd, y */
HOT static void ln_fwd_rows(void *arg, size_t lo, size_t hi)
{
    const ln_ctx *c = arg;
    int C = c->C;
    for (size_t r = lo; r < hi; r++) {
        const float *x = c->x + r * C;
        float *y = c->y + r * C;
        double s = 0.0, ss = 0.0;
        for (int i = 0; i < C; i++)
            s += x[i];
        double mu = s / C;
        for (int i = 0; i < C; i++) {
            double e = x[i] - mu;
            ss += e * e;
        }
        float m = (float)mu, rs = (float)(1.0 / sqrt(ss / C + c->eps));
        c->mean[r] = m;
        c->rstd[r] = rs;
        if (c->w)
            for (int i = 0; i < C; i++)
                y[i] = (x[i] - m) * rs * c->w[i] + (c->b ? c->b[i] : 0.0f);
        else
            for (int i = 0; i < C; i++)
                y[i] = (x[i] - m) * rs + (c->b ? c->b[i] : 0.0f);
    }
}

/* y[rows, C] = (x - mean) * rstd * w + b; mean[rows], rstd[rows] kept;
 * y may equal x */
void nnrt_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w,
                            const float *b, int rows, int C, float eps)
{
    ln_ctx c = {.y = y, .mean = mean, .rstd = rstd, .x = x, .w = w, .b = b, .rows = rows, .C = C, .eps = eps};
    nnrt_parallel_for(ln_fwd_rows, &c, (size_t)rows, row_grain(C));
}

/* ---- backward ---- */

/* dx for rows lo..hi-1 */
HOT static void ln_dx_rows(void *arg, size_t lo, size_t hi)
{
    const ln_ctx *c = arg;
    int C = c->C;
    for (size_t r = lo; r < hi; r++) {
        const float *x = c->x + r * C, *dy = c->dy + r * C;
        float *dx = c->dx + r * C, m = c->cmean[r], rs = c->crstd[r];
        double sg = 0.0, sgx = 0.0;         /* sum g, sum g * xhat */
        for (int i = 0; i < C; i++) {
            double g = c->w ? dy[i] * c->w[i] : dy[i];
            sg += g;
            sgx += g * ((x[i] - m) * rs);
        }
        float a = rs / C, fsg = (float)sg, fsgx = (float)sgx;
        for (int i = 0; i < C; i++) {
            float g = c->w ? dy[i] * c->w[i] : dy[i];
            dx[i] += a * ((float)C * g - fsg - (x[i] - m) * rs * fsgx);
        }
    }
}

/* dw, db for columns lo..hi-1: sums over every row, in row order, BLOCK
 * columns at a time */
HOT static void ln_dwdb_cols(void *arg, size_t lo, size_t hi)
{
    const ln_ctx *c = arg;
    int C = c->C;
    for (size_t j0 = lo; j0 < hi; j0 += BLOCK) {
        size_t nb = hi - j0 < BLOCK ? hi - j0 : BLOCK;
        double sw[BLOCK], sb[BLOCK];
        for (size_t j = 0; j < nb; j++)
            sw[j] = sb[j] = 0.0;
        for (int r = 0; r < c->rows; r++) {
            const float *x = c->x + (size_t)r * C + j0, *dy = c->dy + (size_t)r * C + j0;
            float m = c->cmean[r], rs = c->crstd[r];
            for (size_t j = 0; j < nb; j++) {
                sw[j] += (double)dy[j] * ((x[j] - m) * rs);
                sb[j] += dy[j];
            }
        }
        for (size_t j = 0; j < nb; j++) {
            if (c->dw)
                c->dw[j0 + j] += (float)sw[j];
            if (c->db)
                c->db[j0 + j] += (float)sb[j];
        }
    }
}

/* dx[rows, C] += ..., dw[C] += ..., db[C] += ... (any may be NULL; w NULL:
 * no affine, and then dw, db are not asked for); reads x, mean, rstd, w */
void nnrt_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                             const float *mean, const float *rstd, const float *w, int rows, int C)
{
    ln_ctx c = {.dx = dx, .dw = dw, .db = db, .x = x, .dy = dy, .w = w, .cmean = mean, .crstd = rstd,
                .rows = rows, .C = C};
    if (dx)
        nnrt_parallel_for(ln_dx_rows, &c, (size_t)rows, row_grain(C));
    if (dw || db) {
        size_t grain = rows ? ((size_t)GRAIN + (size_t)rows - 1) / (size_t)rows : (size_t)C;
        nnrt_parallel_for(ln_dwdb_cols, &c, (size_t)C, grain < 16 ? 16 : grain);
    }
}
