/* kernel_check.h — what the kernel test programs (test_kernels.c,
 * test_reference.c) share: one result line per check, counted in
 * `failures`, and the float buffers their cases are made of, random ones
 * from `rng` (each program seeds it once, so its inputs are the same every
 * run). Included once per program, after nnrt.h. */
#ifndef NNC_TEST_KERNEL_CHECK_H
#define NNC_TEST_KERNEL_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int failures;
static nnrt_rng rng;    /* every random test input comes from here */

/* prints one result line; passes when err <= tol */
static void check(const char *name, double err, double tol)
{
    if (err <= tol) {
        printf("ok   %-64s (err %.2e)\n", name, err);
    } else {
        printf("FAIL %-64s (err %.2e > tol %.1e)\n", name, err, tol);
        failures++;
    }
}

/* n zeroed floats; exits when memory runs out */
static float *alloc_floats(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    if (!p) {
        fprintf(stderr, "kernel test: out of memory\n");
        exit(2);
    }
    return p;
}

/* n floats, uniform in [-1, 1) */
static float *random_floats(size_t n)
{
    float *p = alloc_floats(n);
    nnrt_init_uniform(p, n, 1.0f, &rng);
    return p;
}

#endif /* NNC_TEST_KERNEL_CHECK_H */
