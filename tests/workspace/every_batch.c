/* every_batch.c — the workspace planned for batch B holds what the kernels
 * ask for at every batch n from 1 to B (an epoch's last batch, the C API's
 * n), on the threads given: one training step at each n, counting the asks
 * beyond the plan (nnrt_workspace_misses). Includes the generated C
 * (MODEL_C, model MODEL, macros MODEL_UP) like tests/embed/embed.c.
 * Usage: every_batch B THREADS */
#define NNC_NO_MAIN
#include MODEL_C

#include <stdio.h>
#include <stdlib.h>

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(MODEL, CAT(_, name))
#define UP(name) CAT(MODEL_UP, CAT(_, name))

int main(int argc, char **argv)
{
    int B = argc > 2 ? atoi(argv[1]) : 20, T = argc > 2 ? atoi(argv[2]) : 1;
    nnrt_set_threads(T);
    static MODEL m;
    FN(init)(&m, B, 1);
    float *x = nnrt_alloc((size_t)B * UP(INPUT_SIZE), "x"), *t = nnrt_alloc((size_t)B * UP(TARGET_SIZE), "t");
    nnrt_rng r;
    nnrt_rng_seed(&r, 3);
    nnrt_fill_normal(x, (size_t)B * UP(INPUT_SIZE), &r);    /* targets 0: class 0, or values 0 */
    int bad = 0, ran = 0;
    for (int n = 1; n <= B; n++) {
        long before = nnrt_workspace_misses();
        FN(zero_grad)(&m);
        if (!FN(forward)(&m, x, n))     /* a batch norm that cannot train on n (reported) */
            continue;
        FN(loss)(&m, t);
        FN(backward_step)(&m, 1e-3f);
        ran++;
        if (nnrt_workspace_misses() > before) {
            printf("FAIL %s: planned for batch %d, %d thread%s: a step at batch %d asked for more scratch\n",
                   argv[0], B, T, T > 1 ? "s" : "", n);
            bad = 1;
        }
    }
    FN(free)(&m);
    free(x);
    free(t);
    if (!bad)
        printf("ok   %s: planned for batch %d, %d thread%s: every batch of 1 to %d within the plan (%d steps)\n",
               argv[0], B, T, T > 1 ? "s" : "", B, ran);
    return bad;
}
