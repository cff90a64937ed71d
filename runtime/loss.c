/* loss.c — losses, forward and backward, with PyTorch's default mean reduction.
 *
 * Forward returns the loss as a float; the sum runs in double so that a large
 * batch of small squared errors is not rounded away. Backward scales by the
 * incoming gradient dloss (1 when the loss is the final output) and, like
 * every backward kernel, accumulates.
 */
#include "nnrt.h"

/* mean((y[n] - t[n])^2) over n > 0 elements (torch.nn.MSELoss()) */
float nnrt_mse_forward(const float *y, const float *t, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)y[i] - (double)t[i];
        sum += e * e;
    }
    return (float)(sum / (double)n);
}

/* dy[n] += dloss * 2 * (y[n] - t[n]) / n; dy may be NULL */
void nnrt_mse_backward(float *dy, const float *y, const float *t, size_t n, float dloss)
{
    if (!dy)
        return;
    float scale = (float)(2.0 * dloss / (double)n);
    for (size_t i = 0; i < n; i++)
        dy[i] += scale * (y[i] - t[i]);
}
