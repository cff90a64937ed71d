/* gradcheck_model.c — finite-difference check of a whole generated model.
 *
 * Includes the C file nnc generated (MODEL_C, model name MODEL) without its
 * main, runs forward, loss and backward on random data, and compares every
 * parameter tensor's analytic gradient, at up to 24 sampled entries each,
 * with the central difference (L(p + eps) - L(p - eps)) / (2 eps).
 *
 * The loss is float32 and ReLU and max-pool have kinks, so single entries can
 * be off; the test is on the sampled vector: |num - ana| / |ana| < 5e-2 per
 * tensor (a wrong index or a missing term gives errors near 1).
 */
#define NNC_NO_MAIN
#ifndef EPS
#define EPS 1e-3f
#endif
#include MODEL_C

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(MODEL, CAT(_, name))
#define UP(name) CAT(MODEL_UP, CAT(_, name))

static float loss_at(MODEL *m, const float *x, const float *t, int n)
{
    FN(forward)(m, x, n);
    return FN(loss)(m, t);
}

int main(void)
{
    const int n = 3;
    MODEL m;
    FN(init)(&m, n, 7);
    nnrt_rng rng;
    nnrt_rng_seed(&rng, 11);
    float *x = nnrt_alloc((size_t)n * UP(INPUT_SIZE), "x");
    float *t = nnrt_alloc((size_t)n * UP(TARGET_SIZE), "t");
    nnrt_fill_normal(x, (size_t)n * UP(INPUT_SIZE), &rng);
    nnrt_fill_normal(t, (size_t)n * UP(TARGET_SIZE), &rng);

    FN(zero_grad)(&m);
    loss_at(&m, x, t, n);
    FN(backward)(&m);

    int failed = 0;
    const float eps = EPS;
    for (int i = 0; i < UP(NTENSORS); i++) {
        const struct CAT(MODEL, _param) *p = &CAT(MODEL, _params)[i];
        if (p->buffer)      /* running statistics: no gradient */
            continue;
        double diff2 = 0, ana2 = 0, worst = 0;
        int checked = 0;
        for (int k = 0; k < 24 && (size_t)k < p->numel; k++) {
            size_t j = p->numel <= 24 ? (size_t)k : (size_t)(nnrt_rng_next(&rng) % p->numel);
            float *w = m.param + p->offset + j, keep = *w;
            *w = keep + eps;
            double lp = loss_at(&m, x, t, n);
            *w = keep - eps;
            double lm = loss_at(&m, x, t, n);
            *w = keep;
            double num = (lp - lm) / (2.0 * eps), ana = m.grad[p->offset + j];
            diff2 += (num - ana) * (num - ana);
            ana2 += ana * ana;
            worst = fmax(worst, fabs(num - ana));
            checked++;
        }
        double rel = sqrt(diff2) / fmax(sqrt(ana2), 1e-6);
        int ok = rel < 5e-2;
        failed |= !ok;
        printf("%s %-14s %2d entries: |num - ana| / |ana| = %.2e, max abs err %.1e\n", ok ? "ok  " : "FAIL",
               p->name, checked, rel, worst);
    }
    FN(free)(&m);
    free(x);
    free(t);
    return failed;
}
