/* optim.c — optimizers and their helpers: how parameters move given their
 * gradients (torch.optim.SGD, Adam, AdamW), clipping by global norm
 * (torch.nn.utils.clip_grad_norm_) and learning-rate schedules
 * (torch.optim.lr_scheduler.StepLR, CosineAnnealingLR).
 *
 * Parameters, gradients and each optimizer buffer are one contiguous block
 * in the generated trainer, so one call updates the whole model. The update
 * rules are PyTorch 1.13's single-tensor code, operation for operation, in
 * float; the scalars PyTorch computes in Python (bias corrections, schedules)
 * are computed here in double. step counts from 1 (the first step is 1).
 */
#include <math.h>

#include "nnrt.h"

/* the updates are compiled for the machine's widest vectors (kernel.h) */
#include "kernel.h"

/* Updates are elementwise: shared between the runtime's threads from this
 * many parameters (the same bits with any number of threads). */
#define STEP_GRAIN 131072

typedef struct step_ctx {
    float *p, *a, *b;           /* parameters; optimizer buffers (momentum; m, v) */
    const float *g;
    float lr;
    const nnrt_sgd_opts *sgd;
    const nnrt_adam_opts *adam;
    float step_size, bc2_sqrt;  /* Adam's bias corrections */
    long step;
} step_ctx;

HOT static void sgd_range(void *arg, size_t lo, size_t hi)
{
    const step_ctx *c = arg;
    float *restrict p = c->p;
    const float *restrict g = c->g;
    for (size_t i = lo; i < hi; i++)
        p[i] -= c->lr * g[i];
}

/* p[n] -= lr * g[n] */
void nnrt_sgd_step(float *p, const float *g, size_t n, float lr)
{
    nnrt_parallel_for(sgd_range, &(step_ctx){.p = p, .g = g, .lr = lr}, n, STEP_GRAIN);
}

HOT static void sgd_opts_range(void *arg, size_t lo, size_t hi)
{
    const step_ctx *c = arg;
    const nnrt_sgd_opts *o = c->sgd;
    float *p = c->p, *buf = c->a, lr = c->lr;
    const float *g = c->g;
    float mom = o->momentum, damp = (float)(1.0 - o->dampening), wd = o->weight_decay;
    for (size_t i = lo; i < hi; i++) {
        float d = g[i];
        if (wd != 0.0f)
            d += wd * p[i];
        if (mom != 0.0f) {
            buf[i] = c->step <= 1 ? d : mom * buf[i] + damp * d;
            d = o->nesterov ? d + mom * buf[i] : buf[i];
        }
        p[i] -= lr * d;
    }
}

/* p[n], buf[n] updated by SGD with momentum, dampening, Nesterov and weight
 * decay (the formula is in nnrt.h); buf may be NULL when momentum == 0 */
void nnrt_sgd_step_opts(float *p, const float *g, float *buf, size_t n, float lr,
                        const nnrt_sgd_opts *o, long step)
{
    step_ctx c = {.p = p, .a = buf, .g = g, .lr = lr, .sgd = o, .step = step};
    nnrt_parallel_for(sgd_opts_range, &c, n, STEP_GRAIN);
}

HOT static void adam_range(void *arg, size_t lo, size_t hi)
{
    const step_ctx *c = arg;
    const nnrt_adam_opts *o = c->adam;
    float *p = c->p, *m = c->a, *v = c->b;
    const float *g = c->g;
    float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = o->eps, wd = (float)o->weight_decay;
    float one_b1 = (float)(1.0 - o->beta1), one_b2 = (float)(1.0 - o->beta2);
    float decay = (float)(1.0 - (double)c->lr * o->weight_decay);  /* AdamW's decoupled weight decay */
    for (size_t i = lo; i < hi; i++) {
        float d = g[i];
        if (o->decoupled)
            p[i] *= decay;
        else if (wd != 0.0f)
            d += wd * p[i];
        m[i] = b1 * m[i] + one_b1 * d;
        v[i] = b2 * v[i] + one_b2 * d * d;
        p[i] -= c->step_size * (m[i] / (sqrtf(v[i]) / c->bc2_sqrt + eps));
    }
}

/* p[n], m[n], v[n] updated by Adam or AdamW (the formula is in nnrt.h) */
void nnrt_adam_step(float *p, const float *g, float *m, float *v, size_t n, float lr,
                    const nnrt_adam_opts *o, long step)
{
    step_ctx c = {.p = p, .a = m, .b = v, .g = g, .lr = lr, .adam = o, .step = step,
                  .step_size = (float)((double)lr / (1.0 - pow(o->beta1, (double)step))),
                  .bc2_sqrt = (float)sqrt(1.0 - pow(o->beta2, (double)step))};
    nnrt_parallel_for(adam_range, &c, n, STEP_GRAIN);
}

/* sqrt(sum g[n]^2), accumulated in double */
float nnrt_grad_norm(const float *g, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)g[i] * g[i];
    return (float)sqrt(s);
}

/* g[n] *= s */
void nnrt_scale(float *g, size_t n, float s)
{
    for (size_t i = 0; i < n; i++)
        g[i] *= s;
}

/* torch.nn.utils.clip_grad_norm_(params, max_norm) over g[n]: scales g by
 * max_norm / (norm + 1e-6) when that is below 1; returns the norm before */
float nnrt_clip_grad_norm(float *g, size_t n, float max_norm)
{
    float norm = nnrt_grad_norm(g, n);
    float coef = max_norm / (norm + 1e-6f);
    if (coef < 1.0f)
        nnrt_scale(g, n, coef);
    return norm;
}

/* StepLR: lr * gamma^floor(epoch / step_size) at epoch (0-based); step_size >= 1 */
float nnrt_lr_step(float lr, long epoch, long step_size, float gamma)
{
    return (float)((double)lr * pow((double)gamma, (double)(epoch / step_size)));
}

/* CosineAnnealingLR, closed form: eta_min + (lr - eta_min) * (1 + cos(pi *
 * epoch / t_max)) / 2; t_max >= 1. Past t_max it rises again, as PyTorch's
 * recursive form does (period 2 t_max). */
float nnrt_lr_cosine(float lr, long epoch, long t_max, float eta_min)
{
    const double pi = 3.14159265358979323846;
    double c = cos(pi * (double)epoch / (double)t_max);
    return (float)(eta_min + ((double)lr - eta_min) * (1.0 + c) / 2.0);
}

float nnrt_lr_warmup_cosine(float lr, long step, long warmup, long t_max, float eta_min)
{
    const double pi = 3.14159265358979323846;
    if (step < warmup)
        return (float)((double)lr * (double)(step + 1) / (double)(warmup + 1));
    if (step > t_max)
        return eta_min;
    double ratio = (double)(step - warmup) / (double)(t_max - warmup);
    return (float)(eta_min + 0.5 * (1.0 + cos(pi * ratio)) * ((double)lr - eta_min));
}
