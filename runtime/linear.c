/* linear.c — fully connected layer, forward and backward (torch.nn.Linear).
 *
 * Weight is [OUT, IN] as in PyTorch, so a row of x and a row of w are both
 * contiguous IN-vectors: forward is one dot product per (n, o). Backward is
 * built from the same rows: dx[n,:] += dy[n,o] * w[o,:] and
 * dw[o,:] += dy[n,o] * x[n,:] (the outer product dy^T x, one row at a time).
 *
 * Dimension letters: N batch, IN input features, OUT output features.
 */
#include "nnrt.h"

/* y[N,OUT] = x[N,IN] @ w[OUT,IN]^T + b[OUT]; b may be NULL */
void nnrt_linear_forward(float *y, const float *x, const float *w, const float *b,
                         int N, int IN, int OUT)
{
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * IN;
        for (int o = 0; o < OUT; o++) {
            const float *wo = w + (size_t)o * IN;
            float sum = b ? b[o] : 0.0f;
            for (int i = 0; i < IN; i++)
                sum += xn[i] * wo[i];
            y[(size_t)n * OUT + o] = sum;
        }
    }
}

/* dx[N,IN] += dy[N,OUT] @ w[OUT,IN],  dw[OUT,IN] += dy^T @ x[N,IN],
 * db[OUT] += sum over n of dy; any of dx, dw, db may be NULL */
void nnrt_linear_backward(float *dx, float *dw, float *db, const float *dy,
                          const float *x, const float *w, int N, int IN, int OUT)
{
    for (int n = 0; n < N; n++) {
        const float *xn = x + (size_t)n * IN;
        float *dxn = dx ? dx + (size_t)n * IN : NULL;
        for (int o = 0; o < OUT; o++) {
            float g = dy[(size_t)n * OUT + o];
            const float *wo = w + (size_t)o * IN;
            float *dwo = dw ? dw + (size_t)o * IN : NULL;
            if (dxn)
                for (int i = 0; i < IN; i++)
                    dxn[i] += g * wo[i];
            if (dwo)
                for (int i = 0; i < IN; i++)
                    dwo[i] += g * xn[i];
            if (db)
                db[o] += g;
        }
    }
}
