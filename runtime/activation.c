/* activation.c — elementwise activations, forward and backward.
 *
 * Only ReLU for now. Its backward reads relu's OUTPUT y rather than its input:
 * y > 0 exactly where x > 0, and the generated trainer keeps y anyway, so a
 * ReLU computed in place (y == x) still has what its backward needs.
 */
#include "nnrt.h"

/* y[n] = max(x[n], 0); y may equal x (in place). A NaN stays NaN, as in
 * torch.relu. */
void nnrt_relu_forward(float *y, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

/* dx[n] += dy[n] where y[n] > 0, given y[n] = relu's output; dx may be NULL */
void nnrt_relu_backward(float *dx, const float *dy, const float *y, size_t n)
{
    if (!dx)
        return;
    for (size_t i = 0; i < n; i++)
        if (y[i] > 0.0f)
            dx[i] += dy[i];
}
