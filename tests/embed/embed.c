/* embed.c — a program that embeds a generated model, as a user's would:
 * it includes the model's C file with NNC_NO_MAIN, trains it through the
 * generated API (init, zero_grad, forward, loss, backward, step, free) on
 * a fixed random batch, and checks that the loss falls. tests/embed.sh
 * builds it with nothing but the kernel library: -Iruntime, libnnrt.a, -lm
 * and -lpthread, so a kernel or a generated line that needs the host
 * library (cJSON, zlib, the trainer) fails the link.
 *
 * With NNC_CHECKPOINTS defined too (and the host library linked) it also
 * saves the trained weights with NAME_save, loads them into a second model
 * with NAME_load, and checks that both give the same output; given a
 * checkpoint the trainer wrote and its steps (argv[2], argv[3]), it loads
 * that too. First, forward must refuse a batch larger than init's.
 *
 * Includes the generated C (MODEL_C, model MODEL, its macros' prefix
 * MODEL_UP) like tests/grads/grads.c.
 */
#define NNC_NO_MAIN
#include MODEL_C

#include <stdio.h>
#include <stdlib.h>

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(MODEL, CAT(_, name))
#define UP(name) CAT(MODEL_UP, CAT(_, name))

enum { BATCH = 8, STEPS = 30 };

static float input[BATCH * UP(INPUT_SIZE)], target[BATCH * UP(TARGET_SIZE)];

/* a random batch: inputs in [0, 1); targets class indices when the model
 * takes one (a target of one value for several outputs), else values */
static void make_batch(void)
{
    nnrt_rng r;
    nnrt_rng_seed(&r, 7);
    for (size_t i = 0; i < sizeof input / sizeof *input; i++)
        input[i] = nnrt_rng_uniform(&r);
    int classes = UP(TARGET_SIZE) == 1 && UP(OUTPUT_SIZE) > 1 ? UP(OUTPUT_SIZE) : 0;
    for (size_t i = 0; i < sizeof target / sizeof *target; i++)
        target[i] = classes ? (float)(int)(nnrt_rng_uniform(&r) * (float)classes) : nnrt_rng_uniform(&r);
}

int main(int argc, char **argv)
{
    (void)argc;
    nnrt_set_threads(2);        /* the kernels' thread pool is part of the kernel library */
    make_batch();
    static MODEL m;
    FN(init)(&m, BATCH, 1);
    FN(set_training)(&m, 1);
    /* a batch larger than init's: refused (NULL and a message), nothing read */
    if (FN(forward)(&m, input, BATCH + 1) != NULL) {
        printf("FAIL %s: forward took a batch of %d at batch %d\n", argv[0], BATCH + 1, BATCH);
        return 1;
    }
    float first = 0, last = 0;
    for (int s = 0; s < STEPS; s++) {
        FN(zero_grad)(&m);
        FN(forward)(&m, input, BATCH);
        float loss = FN(loss)(&m, target);
        FN(backward)(&m);
        FN(step)(&m, 0.01f);
        if (!(loss == loss) || loss > 1e30f || loss < -1e30f) {
            printf("FAIL %s: step %d: loss %g\n", argv[0], s + 1, loss);
            return 1;
        }
        if (s == 0)
            first = loss;
        last = loss;
    }
    if (!(last < first)) {
        printf("FAIL %s: the loss did not fall: %g -> %g in %d steps\n", argv[0], first, last, STEPS);
        return 1;
    }
#ifdef NNC_CHECKPOINTS
    char err[512];
    const char *path = argv[1];
    static MODEL copy;
    FN(init)(&copy, BATCH, 2);
    FN(set_training)(&m, 0);
    FN(set_training)(&copy, 0);
    if (FN(save)(&m, path, err, sizeof err) != 0 || FN(load)(&copy, path, err, sizeof err) != 0) {
        printf("FAIL %s: checkpoint: %s\n", argv[0], err);
        return 1;
    }
    const float *a = FN(forward)(&m, input, BATCH), *b = FN(forward)(&copy, input, BATCH);
    for (int i = 0; i < BATCH * UP(OUTPUT_SIZE); i++)
        if (a[i] != b[i]) {
            printf("FAIL %s: the loaded model's output %d differs: %g, not %g\n", argv[0], i, b[i], a[i]);
            return 1;
        }
    /* a checkpoint the trainer wrote (argv[2], after argv[3] steps): the
     * weights and the optimizer's state load */
    if (argc > 3) {
        if (FN(load)(&copy, argv[2], err, sizeof err) != 0) {
            printf("FAIL %s: the trainer's checkpoint: %s\n", argv[0], err);
            return 1;
        }
        if (copy.steps != atoi(argv[3])) {
            printf("FAIL %s: the trainer's checkpoint gives %lld steps, not %s\n", argv[0], (long long)copy.steps,
                   argv[3]);
            return 1;
        }
        printf("ok   %s: loaded the trainer's checkpoint %s (%s steps)\n", argv[0], argv[2], argv[3]);
    }
    /* the step count is an integer past float's 2^24, in the model and in a
     * checkpoint (the weights and the optimizer's state, as the trainer saves) */
    copy.steps = (1LL << 24) + 1;
    FN(step)(&copy, 0.0f);
    nnrt_tensor all[UP(NTENSORS) + UP(NSTATE)];
    int k = FN(tensors)(&copy, all, 0);
    k += FN(tensors)(&copy, all + k, 2);
    if (copy.steps != (1LL << 24) + 2 || nnrt_save_safetensors(path, all, k, NULL, NULL, 0, err, sizeof err) ||
        FN(load)(&m, path, err, sizeof err) != 0 || m.steps != copy.steps) {
        printf("FAIL %s: the step count past 2^24: %lld, loaded %lld (%s)\n", argv[0], (long long)copy.steps,
               (long long)m.steps, err);
        return 1;
    }
    FN(free)(&copy);
#endif
    FN(free)(&m);
    printf("ok   %s: loss %g -> %g in %d steps\n", argv[0], first, last, STEPS);
    return 0;
}
