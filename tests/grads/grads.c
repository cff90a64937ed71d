/* grads.c — the gradients of a generated model as PyTorch's .grad behave,
 * with nnc's lazy zero_grad (zero_grad only marks them as zero; backward's
 * first write to each gradient assigns it, and whatever reads them before
 * writes the zeros out):
 *   - backward after zero_grad gives the values of backward after the
 *     gradients were really zeroed (the memset that zero_grad used to do);
 *   - a second backward without zero_grad adds (every gradient doubles);
 *   - after zero_grad the gradients read as zeros (tensors, what 1), and a
 *     step with plain SGD leaves the weights as they are;
 *   - batch sizes 1 to 6 (the linear kernel's row path and its tiles);
 *   - backward_step (the training loop's call) is backward, step and
 *     zero_grad: the same weights bit for bit over three steps, gradients
 *     that read as zeros after it, and, after a backward without
 *     zero_grad, the step of the sum.
 * Includes the generated C (MODEL_C, model MODEL) like gradcheck_model.c. */
#define NNC_NO_MAIN
#include MODEL_C

#include <stdint.h>

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(MODEL, CAT(_, name))
#define UP(name) CAT(MODEL_UP, CAT(_, name))

static int failed;

static void expect(int ok, const char *what, int n)
{
    printf("%s  batch %d: %s\n", ok ? "ok  " : "FAIL", n, what);
    failed |= !ok;
}

/* a == b element by element (== : +0 and -0 are the same gradient) */
static int same(const float *a, const float *b, size_t k)
{
    for (size_t i = 0; i < k; i++)
        if (!(a[i] == b[i]))
            return 0;
    return 1;
}

/* the gradients, read through the tensor views (what 1), are all zeros */
static int grads_read_zero(MODEL *m)
{
    nnrt_tensor views[UP(NTENSORS)];
    int k = FN(tensors)(m, views, 1), zeros = 1;
    for (int i = 0; i < k; i++) {
        int64_t numel = 1;
        for (int d = 0; d < views[i].ndim; d++)
            numel *= views[i].shape[d];
        for (int64_t j = 0; j < numel; j++)
            zeros &= views[i].data[j] == 0.0f;
    }
    return zeros && k > 0;
}

/* stale gradients, as after a step: in the gradient tensors (the padding
 * between them in m->grad is never written) */
static void stale_grads(MODEL *m)
{
    nnrt_tensor views[UP(NTENSORS)];
    int k = FN(tensors)(m, views, 1);
    for (int i = 0; i < k; i++)
        for (size_t j = 0; j < nnrt_tensor_numel(&views[i]); j++)
            views[i].data[j] = 1e3f + (float)(views[i].data - m->grad + j);
}

/* every parameter, gradient and buffer tensor starts a 64-byte line (the
 * kernels read rows of weights as whole vectors) */
static int tensors_aligned(MODEL *m)
{
    nnrt_tensor views[UP(NTENSORS)];
    int ok = 1;
    for (int what = 0; what < 2; what++) {
        int k = FN(tensors)(m, views, what);
        for (int i = 0; i < k; i++)
            ok &= (uintptr_t)views[i].data % 64 == 0;
    }
    return ok;
}

static void run(int n)     /* n >= 2: the second pass has n - 1 samples */
{
    MODEL m;
    FN(init)(&m, n > 5 ? n : 5, 3);    /* room for the n samples of the first pass */
    nnrt_rng rng;
    nnrt_rng_seed(&rng, 7);
    float *x = nnrt_alloc((size_t)n * UP(INPUT_SIZE), "x"), *t = nnrt_alloc((size_t)n * UP(TARGET_SIZE), "t");
    float *want = nnrt_alloc(UP(NPARAM), "want"), *got = nnrt_alloc(UP(NPARAM), "got");
    float *w0 = nnrt_alloc(UP(NPARAM), "w0");
    nnrt_fill_normal(x, (size_t)n * UP(INPUT_SIZE), &rng);
    nnrt_fill_normal(t, (size_t)n * UP(TARGET_SIZE), &rng);
    stale_grads(&m);

    /* the reference: gradients really zeroed, then backward (accumulating) */
    memset(m.grad, 0, sizeof(float) * UP(NPARAM));
    m.grad_zero = 0;
    FN(forward)(&m, x, n);
    FN(loss)(&m, t);
    FN(backward)(&m);
    memcpy(want, m.grad, sizeof(float) * UP(NPARAM));

    stale_grads(&m);
    FN(zero_grad)(&m);
    FN(forward)(&m, x, n);
    FN(loss)(&m, t);
    FN(backward)(&m);
    expect(same(m.grad, want, UP(NPARAM)), "backward after zero_grad: the gradients of backward after zeroing",
           n);

    /* a second step's backward without zero_grad adds: as onto zeroed ones */
    memset(m.grad, 0, sizeof(float) * UP(NPARAM));
    m.grad_zero = 0;
    for (int i = 0; i < 2; i++) {
        FN(forward)(&m, x + (size_t)i * UP(INPUT_SIZE), n - i);
        FN(loss)(&m, t + (size_t)i * UP(TARGET_SIZE));
        FN(backward)(&m);
    }
    memcpy(got, m.grad, sizeof(float) * UP(NPARAM));
    FN(zero_grad)(&m);
    for (int i = 0; i < 2; i++) {
        FN(forward)(&m, x + (size_t)i * UP(INPUT_SIZE), n - i);
        FN(loss)(&m, t + (size_t)i * UP(TARGET_SIZE));
        FN(backward)(&m);
    }
    expect(same(m.grad, got, UP(NPARAM)) && !same(got, want, UP(NPARAM)),
           "a second backward without zero_grad adds to the first", n);

    FN(zero_grad)(&m);
    expect(grads_read_zero(&m), "after zero_grad, the gradients read as zeros", n);

    FN(zero_grad)(&m);
    memcpy(w0, m.param, sizeof(float) * UP(NPARAM));
    FN(step)(&m, 0.1f);
    expect(memcmp(w0, m.param, sizeof(float) * UP(NPARAM)) == 0, "a step right after zero_grad changes nothing", n);

    free(x), free(t), free(want), free(got), free(w0);
    FN(free)(&m);
}

/* one training step of a: zero_grad (unless add), forward, loss, then the
 * three calls (fused 0) or backward_step */
static void train(MODEL *a, const float *x, const float *t, int n, int add, int fused)
{
    if (!add)
        FN(zero_grad)(a);
    FN(forward)(a, x, n);
    FN(loss)(a, t);
    if (fused)
        FN(backward_step)(a, 0.05f);
    else {
        FN(backward)(a);
        FN(step)(a, 0.05f);
        FN(zero_grad)(a);
    }
}

static int same_state(const MODEL *a, const MODEL *b)
{
    return memcmp(a->param, b->param, sizeof(float) * UP(NPARAM)) == 0 && a->steps == b->steps &&
           (UP(NBUF) == 0 || memcmp(a->buf, b->buf, sizeof(float) * (UP(NBUF) + !UP(NBUF))) == 0);
}

static void run_step(int n)
{
    MODEL a, b;
    FN(init)(&a, 6, 3);
    FN(init)(&b, 6, 3);
    nnrt_rng rng;
    nnrt_rng_seed(&rng, 11);
    float *x = nnrt_alloc((size_t)2 * n * UP(INPUT_SIZE), "x"), *t = nnrt_alloc((size_t)2 * n * UP(TARGET_SIZE), "t");
    nnrt_fill_normal(x, (size_t)2 * n * UP(INPUT_SIZE), &rng);
    nnrt_fill_normal(t, (size_t)2 * n * UP(TARGET_SIZE), &rng);
    for (int s = 0; s < 3; s++) {
        const float *xs = x + (size_t)(s % 2) * n * UP(INPUT_SIZE), *ts = t + (size_t)(s % 2) * n * UP(TARGET_SIZE);
        train(&a, xs, ts, n, 0, 0);
        train(&b, xs, ts, n, 0, 1);
    }
    expect(same_state(&a, &b) && a.steps == 3, "backward_step: the weights of backward, step and zero_grad", n);

    expect(grads_read_zero(&b), "after backward_step, the gradients read as zeros", n);

    /* a backward without zero_grad, then backward_step: the step of the sum */
    for (int fused = 0; fused < 2; fused++) {
        MODEL *m = fused ? &b : &a;
        FN(zero_grad)(m);
        FN(forward)(m, x, n);
        FN(loss)(m, t);
        FN(backward)(m);
        train(m, x + (size_t)n * UP(INPUT_SIZE), t + (size_t)n * UP(TARGET_SIZE), n, 1, fused);
    }
    expect(same_state(&a, &b), "backward_step after a backward without zero_grad: the step of both", n);
    free(x), free(t);
    FN(free)(&a);
    FN(free)(&b);
}

int main(void)
{
    MODEL a;
    FN(init)(&a, 1, 1);
    expect(tensors_aligned(&a), "every tensor starts a cache line", 1);
    FN(free)(&a);
    run(2);
    run(3);
    run(6);
    for (int n = 1; n <= 3; n++)
        run_step(n);
    run_step(6);
    return failed;
}
