/* gradcheck_model.c — finite-difference check of a whole generated model.
 *
 * Includes the C file nnc generated (MODEL_C, model name MODEL) without its
 * main, runs forward, loss and backward on random data, and compares every
 * parameter tensor's analytic gradient, at up to 24 sampled entries each,
 * with the central difference (L(p + eps) - L(p - eps)) / (2 eps).
 *
 * The loss is float32 and ReLU and max-pool have kinks. An entry whose
 * difference quotients at eps and eps/4 disagree by more than 10% sits at a
 * kink and is skipped (at most a quarter of them may be); the test is then on
 * the sampled vector: |num - ana| / |ana| < 5e-2 per tensor (a wrong index
 * or a missing term gives errors near 1).
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

typedef struct Check {
    double rel, worst;
    int checked, kinks;
    float eps;
} Check;

/* Compares up to 24 sampled entries of parameter p's gradient (already in
 * m->grad) with central differences at eps and eps / 4. */
static Check check_tensor(MODEL *m, const float *x, const float *t, int n, const struct CAT(MODEL, _param) *p,
                          float eps, uint64_t seed)
{
    Check c = {.eps = eps};
    double diff2 = 0, ana2 = 0;
    nnrt_rng rng;
    nnrt_rng_seed(&rng, seed);
    for (int k = 0; k < 24 && (size_t)k < p->numel; k++) {
        size_t j = p->numel <= 24 ? (size_t)k : (size_t)(nnrt_rng_next(&rng) % p->numel);
        float *w = m->param + p->offset + j, keep = *w;
        double num[2];
        for (int q = 0; q < 2; q++) {
            float h = q ? eps / 4 : eps;
            *w = keep + h;
            double lp = loss_at(m, x, t, n);
            *w = keep - h;
            double lm = loss_at(m, x, t, n);
            *w = keep;
            num[q] = (lp - lm) / (2.0 * h);
        }
        double ana = m->grad[p->offset + j];
        /* where the two quotients disagree, a step crossed a kink (relu,
         * max-pool's choice): the difference quotient means nothing there */
        if (fabs(num[0] - num[1]) > 0.1 * fmax(fmax(fabs(num[0]), fabs(num[1])), 1e-2)) {
            c.kinks++;
            continue;
        }
        diff2 += (num[0] - ana) * (num[0] - ana);
        ana2 += ana * ana;
        c.worst = fmax(c.worst, fabs(num[0] - ana));
        c.checked++;
    }
    c.rel = sqrt(diff2) / fmax(sqrt(ana2), 1e-6);
    return c;
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
#ifdef VOCAB_OF             /* token ids, uniform */
    for (size_t i = 0; i < (size_t)n * UP(INPUT_SIZE); i++)
        x[i] = (float)(nnrt_rng_next(&rng) % VOCAB_OF);
#endif
#ifdef CLASSES_OF           /* class indices, uniform */
    for (size_t i = 0; i < (size_t)n * UP(TARGET_SIZE); i++)
        t[i] = (float)(nnrt_rng_next(&rng) % CLASSES_OF);
#endif

    FN(zero_grad)(&m);
    loss_at(&m, x, t, n);
    FN(backward)(&m);

    int failed = 0;
    for (int i = 0, seed = 0; i < UP(NTENSORS); i++) {
        const struct CAT(MODEL, _param) *p = &CAT(MODEL, _params)[i];
        if (p->buffer == 2)     /* a count (num_batches_tracked): not a float, no seed of its own */
            continue;
        seed++;
        if (p->buffer)      /* running statistics: no gradient */
            continue;
        Check c = check_tensor(&m, x, t, n, p, EPS, (uint64_t)(seed - 1));
        if (c.kinks * 4 > c.checked + c.kinks)  /* steps too long for this tensor: shorter ones */
            c = check_tensor(&m, x, t, n, p, EPS / 10, (uint64_t)(seed - 1));
        int ok = c.rel < 5e-2 && c.kinks * 4 <= c.checked + c.kinks;
        failed |= !ok;
        printf("%s %-14s %2d entries: |num - ana| / |ana| = %.2e, max abs err %.1e (eps %g", ok ? "ok  " : "FAIL",
               p->name, c.checked, c.rel, c.worst, (double)c.eps);
        printf(c.kinks ? ", %d more at a kink)\n" : ")\n", c.kinks);
    }
    FN(free)(&m);
    free(x);
    free(t);
    return failed;
}
