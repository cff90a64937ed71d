/* check.h — the checks the C test programs share: CHECK(cond) and
 * CHECK_HAS(text, want) count a failure and print where it happened;
 * run(name, test) prints `ok   name` or `FAIL name` for one test function.
 * A program that includes it has one static counter, `failures`. */
#ifndef NNC_TEST_CHECK_H
#define NNC_TEST_CHECK_H

#include <stdio.h>
#include <string.h>

static int failures; /* failed checks so far */

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            printf("    %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);     \
            failures++;                                                              \
        }                                                                            \
    } while (0)

/* checks that text contains want, printing both if not */
#define CHECK_HAS(text, want)                                                        \
    do {                                                                             \
        const char *t_ = (text), *w_ = (want);                                       \
        if (!strstr(t_, w_)) {                                                       \
            printf("    %s:%d: expected to find\n      %s\n    in\n      %s\n",      \
                   __FILE__, __LINE__, w_, t_);                                      \
            failures++;                                                              \
        }                                                                            \
    } while (0)

static void run(const char *name, void (*test)(void))
{
    int before = failures;
    test();
    printf("%s %s\n", failures == before ? "ok  " : "FAIL", name);
    fflush(stdout);
}

#endif
