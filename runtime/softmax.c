/* softmax.c — softmax and log-softmax along one dimension, forward and
 * backward (torch.softmax / torch.log_softmax, F.softmax(x, dim)).
 *
 * The tensor is viewed as [outer, C, inner] and normalised over C: [N, C]
 * logits are outer N, inner 1; [N, C, H, W] along channels is outer N,
 * inner H*W. For a fixed (outer, inner) position the C values lie inner
 * floats apart. To keep the innermost loops contiguous, each outer slice is
 * processed BLOCK inner positions at a time, with that block's maxima and
 * sums in small arrays on the stack (no allocation): loops run over c, then
 * over the block's contiguous positions.
 *
 * Stable: the maximum over C is subtracted before exp, so no exp overflows,
 * and log-softmax is (x - max) - log(sum exp(x - max)), never log(softmax);
 * x - max is taken first, so large logits keep their precision.
 * Sums run in double. A row holding a NaN gives NaN, as in PyTorch.
 *
 * Backward (g = dy):  softmax      dx += y * (g - sum_c g * y)
 *                     log-softmax  dx += g - exp(y) * sum_c g
 * Both read the forward OUTPUT y, which the trainer keeps.
 */
#include <math.h>

#include "nnrt.h"

enum { BLOCK = 64 };    /* inner positions handled together */

/* m[b] = max over c of x[c*inner + j], j < b (a NaN wins, so it propagates) */
static void block_max(float *m, const float *x, int C, int inner, int b)
{
    for (int j = 0; j < b; j++)
        m[j] = x[j];
    for (int c = 1; c < C; c++) {
        const float *xc = x + (size_t)c * inner;
        for (int j = 0; j < b; j++)
            if (xc[j] > m[j] || isnan(xc[j]))
                m[j] = xc[j];
    }
}

/* s[b] = sum over c of exp(x[c*inner + j] - m[j]); if e is not NULL, the
 * exponentials are stored there too (same layout as x) */
static void block_sumexp(double *s, float *e, const float *x, const float *m, int C, int inner,
                         int b)
{
    for (int j = 0; j < b; j++)
        s[j] = 0.0;
    for (int c = 0; c < C; c++) {
        const float *xc = x + (size_t)c * inner;
        for (int j = 0; j < b; j++) {
            float v = expf(xc[j] - m[j]);
            s[j] += v;
            if (e)
                e[(size_t)c * inner + j] = v;
        }
    }
}

/* y[outer, C, inner] = exp(x - max) / sum_c exp(x - max); y may equal x */
void nnrt_softmax_forward(float *y, const float *x, int outer, int C, int inner)
{
    size_t slice = (size_t)C * inner;
    for (int o = 0; o < outer; o++)
        for (int i0 = 0; i0 < inner; i0 += BLOCK) {
            int b = inner - i0 < BLOCK ? inner - i0 : BLOCK;
            const float *xo = x + o * slice + i0;
            float *yo = y + o * slice + i0;
            float m[BLOCK], r[BLOCK];
            double s[BLOCK];
            block_max(m, xo, C, inner, b);
            block_sumexp(s, yo, xo, m, C, inner, b);
            for (int j = 0; j < b; j++)
                r[j] = (float)(1.0 / s[j]);
            for (int c = 0; c < C; c++) {
                float *yc = yo + (size_t)c * inner;
                for (int j = 0; j < b; j++)
                    yc[j] *= r[j];
            }
        }
}

/* dx[outer, C, inner] += y * (dy - sum_c dy * y), given y = softmax's output;
 * dx may be NULL */
void nnrt_softmax_backward(float *dx, const float *dy, const float *y, int outer, int C, int inner)
{
    if (!dx)
        return;
    size_t slice = (size_t)C * inner;
    for (int o = 0; o < outer; o++)
        for (int i0 = 0; i0 < inner; i0 += BLOCK) {
            int b = inner - i0 < BLOCK ? inner - i0 : BLOCK;
            size_t at = o * slice + i0;
            double s[BLOCK];
            float sf[BLOCK];
            for (int j = 0; j < b; j++)
                s[j] = 0.0;
            for (int c = 0; c < C; c++) {
                const float *gc = dy + at + (size_t)c * inner, *yc = y + at + (size_t)c * inner;
                for (int j = 0; j < b; j++)
                    s[j] += (double)gc[j] * yc[j];
            }
            for (int j = 0; j < b; j++)
                sf[j] = (float)s[j];
            for (int c = 0; c < C; c++) {
                const float *gc = dy + at + (size_t)c * inner, *yc = y + at + (size_t)c * inner;
                float *dxc = dx + at + (size_t)c * inner;
                for (int j = 0; j < b; j++)
                    dxc[j] += yc[j] * (gc[j] - sf[j]);
            }
        }
}

/* y[outer, C, inner] = (x - max) - log(sum_c exp(x - max)); y may equal x */
void nnrt_log_softmax_forward(float *y, const float *x, int outer, int C, int inner)
{
    size_t slice = (size_t)C * inner;
    for (int o = 0; o < outer; o++)
        for (int i0 = 0; i0 < inner; i0 += BLOCK) {
            int b = inner - i0 < BLOCK ? inner - i0 : BLOCK;
            const float *xo = x + o * slice + i0;
            float *yo = y + o * slice + i0;
            float m[BLOCK], logs[BLOCK];
            double s[BLOCK];
            block_max(m, xo, C, inner, b);
            block_sumexp(s, NULL, xo, m, C, inner, b);
            for (int j = 0; j < b; j++)
                logs[j] = (float)log(s[j]);
            for (int c = 0; c < C; c++) {   /* (x - max) first: exact near the max */
                const float *xc = xo + (size_t)c * inner;
                float *yc = yo + (size_t)c * inner;
                for (int j = 0; j < b; j++)
                    yc[j] = (xc[j] - m[j]) - logs[j];
            }
        }
}

/* dx[outer, C, inner] += dy - exp(y) * sum_c dy, given y = log-softmax's
 * output; dx may be NULL */
void nnrt_log_softmax_backward(float *dx, const float *dy, const float *y, int outer, int C,
                               int inner)
{
    if (!dx)
        return;
    size_t slice = (size_t)C * inner;
    for (int o = 0; o < outer; o++)
        for (int i0 = 0; i0 < inner; i0 += BLOCK) {
            int b = inner - i0 < BLOCK ? inner - i0 : BLOCK;
            size_t at = o * slice + i0;
            double s[BLOCK];
            float sf[BLOCK];
            for (int j = 0; j < b; j++)
                s[j] = 0.0;
            for (int c = 0; c < C; c++) {
                const float *gc = dy + at + (size_t)c * inner;
                for (int j = 0; j < b; j++)
                    s[j] += gc[j];
            }
            for (int j = 0; j < b; j++)
                sf[j] = (float)s[j];
            for (int c = 0; c < C; c++) {
                const float *gc = dy + at + (size_t)c * inner, *yc = y + at + (size_t)c * inner;
                float *dxc = dx + at + (size_t)c * inner;
                for (int j = 0; j < b; j++)
                    dxc[j] += gc[j] - expf(yc[j]) * sf[j];
            }
        }
}
