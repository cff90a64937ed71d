/* nan_check.c — the generated forward's check of its values (m->nan_check,
 * the trainer's --nan-check) names the first value that holds a NaN or an
 * infinity, in the order of forward, even when that value's memory is used
 * again later in the same forward, and names nothing in a healthy model.
 *
 * The model (squash.nn) is x -> a -> sigmoid -> b -> sigmoid -> c: a weight
 * of a set to infinity makes a's output infinite and the sigmoid's 1, so
 * only a is not finite; one of b makes only b not finite; one of c, c.
 * Includes the generated C (MODEL_C) like tests/embed/embed.c.
 */
#define NNC_NO_MAIN
#include MODEL_C

#include <stdio.h>

static int failures;

static void expect_named(squash *m, const float *x, const char *want, const char *what)
{
    squash_forward(m, x, 3);
    const char *got = m->nonfinite;
    int ok = want ? got && strcmp(got, want) == 0 : got == NULL;
    printf("%s %s: %s\n", ok ? "ok  " : "FAIL", what, got ? got : "(none)");
    failures += !ok;
}

/* the tensor of the state_dict called name */
static float *tensor(squash *m, const char *name)
{
    nnrt_tensor t[SQUASH_NTENSORS];
    int k = squash_tensors(m, t, 0);
    for (int i = 0; i < k; i++)
        if (strcmp(t[i].name, name) == 0)
            return t[i].data;
    printf("FAIL no tensor %s\n", name);
    exit(1);
}

int main(void)
{
    squash m;
    float x[3 * 4];
    for (int i = 0; i < 12; i++)
        x[i] = 0.25f + 0.125f * (float)i;     /* positive: an infinite weight gives +inf */
    squash_init(&m, 4, 1);
    m.nan_check = 1;
    expect_named(&m, x, NULL, "a healthy model: nothing named");
    static const char *const layers[] = {"a", "b", "c"};
    for (int l = 0; l < 3; l++) {
        char name[32], want[32], what[64];
        snprintf(name, sizeof name, "%s.weight", layers[l]);
        float *w = tensor(&m, name), keep = w[0];
        w[0] = INFINITY;
        snprintf(want, sizeof want, "%s (line 12)", layers[l]);
        snprintf(what, sizeof what, "an infinite %s: %s named", name, layers[l]);
        expect_named(&m, x, want, what);
        w[0] = keep;
    }
    m.nan_check = 0;
    float *w = tensor(&m, "a.weight");
    w[0] = INFINITY;
    expect_named(&m, x, NULL, "nan_check off: nothing named");
    squash_free(&m);
    return failures != 0;
}
