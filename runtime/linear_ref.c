/* linear_ref.c — fully connected layer, forward and backward, as plain
 * loops: the reference that linear.c's register tiles are tested against
 * (tests/runtime/test_reference.c). Every shape takes one of linear.c's
 * tiles, so the trainer never runs these.
 *
 * Dimension letters: N batch, IN input features, OUT output features;
 * w is [OUT, IN] as in PyTorch.
 */
#include "nnrt.h"

#include "kernel.h"

/* y[N,OUT] = b[OUT] + x[N,IN] @ w[OUT,IN]^T   (b may be NULL): each output
 * from its bias, feature by feature */
void linear_forward_ref(float *y, const float *x, const float *w, const float *b, int N, int IN, int OUT)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            const float *xn = x + (size_t)n * IN, *wo = w + (size_t)o * IN;
            float sum = b ? b[o] : 0.0f;
            for (int i = 0; i < IN; i++)
                sum += xn[i] * wo[i];
            y[(size_t)n * OUT + o] = sum;
        }
}

/* dx[N,IN] += dy[N,OUT] @ w[OUT,IN],  dw[OUT,IN] += dy^T @ x[N,IN],
 * db[OUT] += the sum over n of dy; any of dx, dw, db may be NULL. Sample
 * by sample: dy[n][o] times row o of w into dx's row n, times row n of x
 * into dw's row o. */
void linear_backward_ref(float *dx, float *dw, float *db, const float *dy, const float *x, const float *w, int N,
                         int IN, int OUT)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            float g = dy[(size_t)n * OUT + o];
            const float *wo = w + (size_t)o * IN, *xn = x + (size_t)n * IN;
            if (db)
                db[o] += g;
            for (int i = 0; dx && i < IN; i++)
                dx[(size_t)n * IN + i] += g * wo[i];
            for (int i = 0; dw && i < IN; i++)
                dw[(size_t)o * IN + i] += g * xn[i];
        }
}
