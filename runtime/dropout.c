/* dropout.c — dropout in training mode, forward and backward (torch.nn.Dropout).
 *
 * Each element is kept with probability 1 - p and then scaled by 1/(1 - p),
 * so the expected output is the input; a dropped element becomes 0. Forward
 * writes the mask, mask[i] = 0 or 1/(1 - p), so that y = x * mask and
 * backward is dx += dy * mask with nothing else to remember.
 *
 * The draws are nnc's own, from the seeded generator of init.c (one uniform
 * u per element, dropped when u < p), so a run is deterministic under its
 * seed but does not reproduce PyTorch's masks; the parity test checks
 * PyTorch's semantics with nnc's mask instead. One draw is taken per element
 * whatever p is, so the stream after a dropout does not depend on p.
 * In eval mode the compiler emits no call (y is x).
 */
#include "nnrt.h"

/* mask[n] = 0 with probability p, else 1/(1-p); y[n] = x[n] * mask[n];
 * p in [0, 1); y may equal x */
void nnrt_dropout_forward(float *y, float *mask, const float *x, size_t n, float p, nnrt_rng *r)
{
    float keep = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) {
        mask[i] = nnrt_rng_uniform(r) < p ? 0.0f : keep;
        y[i] = x[i] * mask[i];
    }
}

/* dx[n] += dy[n] * mask[n]; dx may be NULL */
void nnrt_dropout_backward(float *dx, const float *dy, const float *mask, size_t n)
{
    if (!dx)
        return;
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i] * mask[i];
}
