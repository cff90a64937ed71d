/* peak.c — the floating-point peak of one core, measured.
 *
 * `make bench` reports achieved GFLOP/s next to what the machine can do at
 * best. This program measures that best: 12 independent chains of fused
 * multiply-adds on the widest vectors the compiler targets (build it with
 * -march=native), enough chains to hide the FMA latency on current x86 and
 * ARM cores. It prints one number, single-precision GFLOP/s of one core.
 *
 * It counts the CPU time it gets, not the wall time, so other programs
 * running at the same moment do not lower the figure.
 *
 * GCC/Clang vector extensions, not intrinsics, so it builds anywhere; the
 * chains' results are used at the end, so the loop cannot be dropped, and
 * floating-point rules forbid folding it. Build with -ffp-contract=fast (an
 * ISO C mode such as -std=c11 would not fuse the multiply and the add).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>

#if defined(__AVX512F__)
#define LANES 16
#elif defined(__AVX__)
#define LANES 8
#else
#define LANES 4
#endif
typedef float vf __attribute__((vector_size(LANES * 4)));

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* iters rounds of 12 vector FMAs; returns the seconds taken */
static double run(long iters, float *sink)
{
    vf b, c, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11;
    for (int i = 0; i < LANES; i++) {
        b[i] = 0.999f, c[i] = 0.001f;
        a0[i] = 0, a1[i] = 1, a2[i] = 2, a3[i] = 3, a4[i] = 4, a5[i] = 5;
        a6[i] = 6, a7[i] = 7, a8[i] = 8, a9[i] = 9, a10[i] = 10, a11[i] = 11;
    }
    double t0 = now();
    for (long it = 0; it < iters; it++) {
        a0 = a0 * b + c, a1 = a1 * b + c, a2 = a2 * b + c, a3 = a3 * b + c;
        a4 = a4 * b + c, a5 = a5 * b + c, a6 = a6 * b + c, a7 = a7 * b + c;
        a8 = a8 * b + c, a9 = a9 * b + c, a10 = a10 * b + c, a11 = a11 * b + c;
    }
    double dt = now() - t0;
    vf s = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11;
    *sink += s[0];
    return dt;
}

int main(void)
{
    float sink = 0;
    long iters = 1000000;
    double dt = run(iters, &sink);
    while (dt < 0.05) {                 /* calibrate to about 0.3 s per try */
        iters *= 4;
        dt = run(iters, &sink);
    }
    iters = (long)((double)iters * 0.3 / dt) + 1;
    double best = 0;
    for (int k = 0; k < 3; k++) {
        double g = 2.0 * LANES * 12 * (double)iters / run(iters, &sink) / 1e9;
        if (g > best)
            best = g;
    }
    printf("%.1f\n", best);
    return sink == 12345.0f;            /* uses sink, so nothing is optimised away */
}
