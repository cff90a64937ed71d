/* init.c — a seeded, deterministic random generator and weight initialisers.
 *
 * The generator is xoshiro256** (Blackman and Vigna, prng.di.unimi.it): small,
 * fast and good, with 256 bits of state held in nnrt_rng. Its state is filled
 * from the 64-bit seed by splitmix64, as the authors recommend, so nearby
 * seeds give unrelated streams and the state is never all zero.
 *
 * The same seed gives the same stream on every machine: only 64-bit integer
 * arithmetic decides it. A uniform float takes the top 24 bits (a float's
 * whole mantissa), so it is exact and lies in [0, 1). A normal sample uses
 * Box–Muller in double and draws two uniforms per sample; the second value of
 * the pair is thrown away, since nnrt_rng has no room to cache it. (log and
 * cos come from the C library, so two libms could in principle round one
 * normal sample differently in its last float bit.)
 *
 * These are not PyTorch's random numbers: a model initialised here trains
 * like PyTorch's (same distributions) but not bit for bit.
 */
#include <math.h>

#include "nnrt.h"

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

/* one step of splitmix64 on *x */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void nnrt_rng_seed(nnrt_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

uint64_t nnrt_rng_next(nnrt_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* in [0, 1), a multiple of 2^-24 */
float nnrt_rng_uniform(nnrt_rng *r)
{
    return (float)(nnrt_rng_next(r) >> 40) * 0x1.0p-24f;
}

/* standard normal, by Box–Muller: sqrt(-2 ln u1) cos(2 pi u2), u1 in (0, 1] */
float nnrt_rng_normal(nnrt_rng *r)
{
    const double two_pi = 6.28318530717958647692;
    double u1 = 1.0 - (double)nnrt_rng_uniform(r);
    double u2 = (double)nnrt_rng_uniform(r);
    return (float)(sqrt(-2.0 * log(u1)) * cos(two_pi * u2));
}

/* p[n] ~ U(-bound, bound) */
void nnrt_init_uniform(float *p, size_t n, float bound, nnrt_rng *r)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (2.0f * nnrt_rng_uniform(r) - 1.0f) * bound;
}

/* p[n] ~ N(0, 1) */
void nnrt_fill_normal(float *p, size_t n, nnrt_rng *r)
{
    for (size_t i = 0; i < n; i++)
        p[i] = nnrt_rng_normal(r);
}
