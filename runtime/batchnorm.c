/* batchnorm.c — batch normalisation, forward (training and evaluation) and
 * backward (torch.nn.BatchNorm1d and BatchNorm2d).
 *
 * x is viewed as [N, C, HW]: HW = H*W for BatchNorm2d, the length L for
 * BatchNorm1d on [N, C, L], and 1 for BatchNorm1d on [N, C]. Each channel c
 * is normalised over its M = N*HW values:
 *     xhat = (x - mean) * invstd,  invstd = 1/sqrt(var + eps),  y = gamma * xhat + beta
 * In training, mean and the BIASED variance var come from the batch, and the
 * running statistics move toward the batch's, with the UNBIASED variance
 * var * M/(M-1), exactly as PyTorch:
 *     running = (1 - momentum) * running + momentum * batch
 * In evaluation the running statistics replace the batch's.
 *
 * Statistics are summed in double, in two passes (mean, then squared
 * deviations), as PyTorch's CPU kernel does. Training forward keeps mean[C]
 * and invstd[C] for backward, which is, per channel (g = dy, sums over M):
 *     dbeta  += sum g
 *     dgamma += sum g * xhat
 *     dx     += gamma * invstd * (g - sum g / M - xhat * sum(g * xhat) / M)
 * gamma and beta are NULL when affine=false (then gamma acts as 1, beta as 0).
 */
#include <math.h>

#include "nnrt.h"

/* y[N,C,HW] = batch-normalised x[N,C,HW]; writes mean[C], invstd[C]; updates
 * running_mean[C], running_var[C] (either may be NULL: not tracked);
 * gamma[C], beta[C] may be NULL. Backward reads x, so y may equal x only
 * when no backward follows. */
void nnrt_batchnorm_forward_train(float *y, float *mean, float *invstd, float *running_mean,
                                  float *running_var, const float *x, const float *gamma,
                                  const float *beta, const nnrt_bn_dims *d)
{
    size_t HW = (size_t)d->HW, M = (size_t)d->N * HW;
    double mom = d->momentum;
    for (int c = 0; c < d->C; c++) {
        double sum = 0.0, ss = 0.0;
        for (int n = 0; n < d->N; n++) {
            const float *xc = x + ((size_t)n * d->C + c) * HW;
            for (size_t i = 0; i < HW; i++)
                sum += xc[i];
        }
        double mu = sum / (double)M;
        for (int n = 0; n < d->N; n++) {
            const float *xc = x + ((size_t)n * d->C + c) * HW;
            for (size_t i = 0; i < HW; i++) {
                double e = xc[i] - mu;
                ss += e * e;
            }
        }
        double var = ss / (double)M;
        double is = 1.0 / sqrt(var + (double)d->eps);
        mean[c] = (float)mu;
        invstd[c] = (float)is;
        if (running_mean)
            running_mean[c] = (float)((1.0 - mom) * running_mean[c] + mom * mu);
        if (running_var) {   /* PyTorch refuses M == 1 in training; keep var then */
            double unbiased = M > 1 ? ss / (double)(M - 1) : var;
            running_var[c] = (float)((1.0 - mom) * running_var[c] + mom * unbiased);
        }

        float a = (float)(gamma ? gamma[c] * is : is), b = beta ? beta[c] : 0.0f;
        float mf = (float)mu;
        for (int n = 0; n < d->N; n++) {
            const float *xc = x + ((size_t)n * d->C + c) * HW;
            float *yc = y + ((size_t)n * d->C + c) * HW;
            for (size_t i = 0; i < HW; i++)
                yc[i] = (xc[i] - mf) * a + b;
        }
    }
}

/* y[N,C,HW] = (x - running_mean) / sqrt(running_var + eps) * gamma + beta;
 * gamma, beta may be NULL; y may equal x */
void nnrt_batchnorm_forward_eval(float *y, const float *x, const float *gamma, const float *beta,
                                 const float *running_mean, const float *running_var,
                                 const nnrt_bn_dims *d)
{
    size_t HW = (size_t)d->HW;
    for (int c = 0; c < d->C; c++) {
        double is = 1.0 / sqrt((double)running_var[c] + (double)d->eps);
        float a = (float)(gamma ? gamma[c] * is : is), b = beta ? beta[c] : 0.0f;
        float mf = running_mean[c];
        for (int n = 0; n < d->N; n++) {
            const float *xc = x + ((size_t)n * d->C + c) * HW;
            float *yc = y + ((size_t)n * d->C + c) * HW;
            for (size_t i = 0; i < HW; i++)
                yc[i] = (xc[i] - mf) * a + b;
        }
    }
}

/* dx[N,C,HW] += ..., dgamma[C] += sum dy * xhat, dbeta[C] += sum dy, given
 * dy[N,C,HW], x, and the training forward's mean[C], invstd[C]; gamma may be
 * NULL (affine=false, then dgamma and dbeta are NULL too); any gradient may be NULL */
void nnrt_batchnorm_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                             const float *mean, const float *invstd, const float *gamma,
                             const nnrt_bn_dims *d)
{
    size_t HW = (size_t)d->HW, M = (size_t)d->N * HW;
    for (int c = 0; c < d->C; c++) {
        float mu = mean[c], is = invstd[c];
        double sg = 0.0, sgx = 0.0;   /* sum g, sum g * (x - mean) */
        for (int n = 0; n < d->N; n++) {
            const float *xc = x + ((size_t)n * d->C + c) * HW;
            const float *gc = dy + ((size_t)n * d->C + c) * HW;
            for (size_t i = 0; i < HW; i++) {
                sg += gc[i];
                sgx += (double)gc[i] * (xc[i] - mu);
            }
        }
        if (dbeta)
            dbeta[c] += (float)sg;
        if (dgamma)
            dgamma[c] += (float)(sgx * is);
        if (!dx)
            continue;
        /* dx = k * (g - mg - (x - mean) * proj): mg = sum g / M,
         * proj = sum(g * xhat) * invstd / M = sgx * invstd^2 / M */
        float k = gamma ? gamma[c] * is : is;
        float mg = (float)(sg / (double)M);
        float proj = (float)(sgx * is * is / (double)M);
        for (int n = 0; n < d->N; n++) {
            const float *xc = x + ((size_t)n * d->C + c) * HW;
            const float *gc = dy + ((size_t)n * d->C + c) * HW;
            float *dxc = dx + ((size_t)n * d->C + c) * HW;
            for (size_t i = 0; i < HW; i++)
                dxc[i] += k * (gc[i] - mg - (xc[i] - mu) * proj);
        }
    }
}
