/* loss.c — losses, forward and backward: mean squared error, L1,
 * cross-entropy from logits, negative log-likelihood and binary
 * cross-entropy from logits (torch.nn's MSELoss, L1Loss, CrossEntropyLoss,
 * NLLLoss, BCEWithLogitsLoss).
 *
 * Forward returns the loss as a float; sums run in double so that a large
 * batch of small terms is not rounded away. reduction is NNRT_MEAN (PyTorch's
 * default: divide by the number of elements, or by the batch N for the
 * classification losses, whose terms are one per sample) or NNRT_SUM.
 * Backward scales by the incoming gradient dloss (1 when the loss is the
 * final output), divides the same way, and accumulates into dx;
 * dx == NULL means nothing to do.
 *
 * Class targets are class indices stored as floats, each in [0, C) (the
 * trainer checks data files); there is no ignore_index, weight or label
 * smoothing. Dimension letters: N batch, C classes; n an element count.
 */
#include <math.h>

#include "nnrt.h"

/* the factor a mean divides by: count for NNRT_MEAN, 1 for NNRT_SUM */
static double reduce_div(size_t count, int reduction)
{
    return reduction == NNRT_SUM ? 1.0 : (double)count;
}

/* mean((y[n] - t[n])^2) over n > 0 elements (torch.nn.MSELoss()) */
float nnrt_mse_forward(const float *y, const float *t, size_t n)
{
    return nnrt_mse_forward_r(y, t, n, NNRT_MEAN);
}

/* dy[n] += dloss * 2 * (y[n] - t[n]) / n; dy may be NULL */
void nnrt_mse_backward(float *dy, const float *y, const float *t, size_t n, float dloss)
{
    nnrt_mse_backward_r(dy, y, t, n, dloss, NNRT_MEAN);
}

/* sum((y[n] - t[n])^2), divided by n for NNRT_MEAN */
float nnrt_mse_forward_r(const float *y, const float *t, size_t n, int reduction)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)y[i] - (double)t[i];
        sum += e * e;
    }
    return (float)(sum / reduce_div(n, reduction));
}

/* dy[n] += dloss * 2 * (y[n] - t[n]) (/ n for NNRT_MEAN) */
void nnrt_mse_backward_r(float *dy, const float *y, const float *t, size_t n, float dloss,
                         int reduction)
{
    if (!dy)
        return;
    float scale = (float)(2.0 * dloss / reduce_div(n, reduction));
    for (size_t i = 0; i < n; i++)
        dy[i] += scale * (y[i] - t[i]);
}

/* sum |y[n] - t[n]| (/ n for NNRT_MEAN)  (torch.nn.L1Loss) */
float nnrt_l1_forward(const float *y, const float *t, size_t n, int reduction)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += fabs((double)y[i] - (double)t[i]);
    return (float)(sum / reduce_div(n, reduction));
}

/* dy[n] += dloss * sign(y[n] - t[n]) (/ n for NNRT_MEAN), sign(0) = 0 */
void nnrt_l1_backward(float *dy, const float *y, const float *t, size_t n, float dloss,
                      int reduction)
{
    if (!dy)
        return;
    float scale = (float)(dloss / reduce_div(n, reduction));
    for (size_t i = 0; i < n; i++) {
        float e = y[i] - t[i];
        dy[i] += e > 0.0f ? scale : e < 0.0f ? -scale : 0.0f;
    }
}

/* the maximum of row[C] and log(sum_c exp(row[c] - max)) */
static float row_logsumexp(float *max, const float *row, int C)
{
    float m = row[0];
    for (int c = 1; c < C; c++)
        if (row[c] > m)
            m = row[c];
    double s = 0.0;
    for (int c = 0; c < C; c++)
        s += expf(row[c] - m);
    *max = m;
    return (float)log(s);
}

/* sum over n of logsumexp(x[n,:]) - x[n, t[n]] (/ N for NNRT_MEAN), given
 * logits x[N,C] and class indices t[N]  (torch.nn.CrossEntropyLoss) */
float nnrt_cross_entropy_forward(const float *x, const float *t, int N, int C, int reduction)
{
    double sum = 0.0;
    for (int n = 0; n < N; n++) {
        const float *row = x + (size_t)n * C;
        float m, lse = row_logsumexp(&m, row, C);
        sum += ((double)m + lse) - row[(int)t[n]];
    }
    return (float)(sum / reduce_div((size_t)N, reduction));
}

/* dx[N,C] += dloss * (softmax(x[n,:]) - onehot(t[n])) (/ N for NNRT_MEAN) */
void nnrt_cross_entropy_backward(float *dx, const float *x, const float *t, int N, int C, float dloss,
                                 int reduction)
{
    if (!dx)
        return;
    float scale = (float)(dloss / reduce_div((size_t)N, reduction));
    for (int n = 0; n < N; n++) {
        const float *row = x + (size_t)n * C;
        float *drow = dx + (size_t)n * C;
        float m, lse = row_logsumexp(&m, row, C);
        for (int c = 0; c < C; c++)
            drow[c] += scale * expf(row[c] - m - lse);
        drow[(int)t[n]] -= scale;
    }
}

/* -sum over n of x[n, t[n]] (/ N for NNRT_MEAN), given log-probabilities
 * x[N,C] and class indices t[N]  (torch.nn.NLLLoss) */
float nnrt_nll_forward(const float *x, const float *t, int N, int C, int reduction)
{
    double sum = 0.0;
    for (int n = 0; n < N; n++)
        sum -= x[(size_t)n * C + (int)t[n]];
    return (float)(sum / reduce_div((size_t)N, reduction));
}

/* dx[n, t[n]] -= dloss (/ N for NNRT_MEAN); the rest of dx[N,C] is untouched */
void nnrt_nll_backward(float *dx, const float *t, int N, int C, float dloss, int reduction)
{
    if (!dx)
        return;
    float scale = (float)(dloss / reduce_div((size_t)N, reduction));
    for (int n = 0; n < N; n++)
        dx[(size_t)n * C + (int)t[n]] -= scale;
}

/* sum over n of max(x,0) - x*t + log(1 + exp(-|x|)) (/ n for NNRT_MEAN),
 * given logits x[n] and targets t[n] in [0, 1]  (torch.nn.BCEWithLogitsLoss):
 * the same as -t log sigmoid(x) - (1-t) log(1 - sigmoid(x)), without overflow */
float nnrt_bce_with_logits_forward(const float *x, const float *t, size_t n, int reduction)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double xi = x[i];
        sum += (xi > 0.0 ? xi : 0.0) - xi * t[i] + log1p(exp(-fabs(xi)));
    }
    return (float)(sum / reduce_div(n, reduction));
}

/* dx[n] += dloss * (sigmoid(x[n]) - t[n]) (/ n for NNRT_MEAN) */
void nnrt_bce_with_logits_backward(float *dx, const float *x, const float *t, size_t n, float dloss,
                                   int reduction)
{
    if (!dx)
        return;
    float scale = (float)(dloss / reduce_div(n, reduction));
    for (size_t i = 0; i < n; i++) {
        float s;
        if (x[i] >= 0.0f) {
            s = 1.0f / (1.0f + expf(-x[i]));
        } else {
            float e = expf(x[i]);
            s = e / (1.0f + e);
        }
        dx[i] += scale * (s - t[i]);
    }
}
