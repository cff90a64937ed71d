/* optim.c — optimizers: how parameters move given their gradients.
 *
 * Only plain SGD for now (torch.optim.SGD with no momentum, dampening or
 * weight decay). Parameters and gradients are each one contiguous block in
 * the generated trainer, so one call updates the whole model.
 */
#include "nnrt.h"

/* p[n] -= lr * g[n] */
void nnrt_sgd_step(float *p, const float *g, size_t n, float lr)
{
    for (size_t i = 0; i < n; i++)
        p[i] -= lr * g[i];
}
