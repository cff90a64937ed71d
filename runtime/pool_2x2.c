/* pool_2x2.c — the fast path of max pooling: 2x2 windows of stride 2, no
 * padding, every window inside the input (pool_2x2 in pool.c, which
 * chooses it), as in LeNet-like networks. Forward (the maximum and the
 * window's code) and backward (the gradient to the code's pixel) give the
 * same bits as the reference loops (pool_ref.c), ties, NaNs and signed
 * zeros included: both are selects and adds of the same values in the
 * same order (tests/runtime/test_reference.c compares them bit for bit).
 *
 * Dimension letters as in pool.c.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nnrt.h"

#include "kernel.h"

/* The 2x2 fast path is written so that GCC makes it vector code with no
 * branches in its scalar remainder: float selects there (v = b > m ? b : m
 * with the NaN test) become branches, mispredicted on half of the windows
 * (many times slower). So the maximum is a plain max chain (an
 * instruction of its own) and the NaN case is folded in with bit masks. */
INLINE uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

INLINE float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* all ones if c, else 0 */
INLINE uint32_t mask(int c)
{
    return -(uint32_t)c;
}

/* The maximum of a window a b / e f, a NaN if one of them is (PyTorch
 * propagates it) */
INLINE float max4(float a, float b, float e, float f)
{
    float m = a;
    m = b > m ? b : m;
    m = e > m ? e : m;
    m = f > m ? f : m;
    uint32_t nan = mask((a != a) | (b != b) | (e != e) | (f != f));
    return bits_float((0x7fc00000u & nan) | (float_bits(m) & ~nan));
}

/* The window a b / e f's choice, as a code: the position of its maximum
 * (0 a, 1 b, 2 e, 3 f) as window_argmax finds it: the first pixel in
 * row-major order equal to the maximum m, or, when m is a NaN, the last
 * NaN; or POOL_NONE when the window passes no gradient (a ReLU folded in and m
 * not > 0). Without branches. */
INLINE uint32_t code4(float a, float b, float e, float f, float m, int relu)
{
    uint32_t na = mask(a != a), nb = mask(b != b), ne = mask(e != e), nf = mask(f != f);
    uint32_t nan = na | nb | ne | nf;
    uint32_t ta = mask(a == m), tb = mask(b == m) & ~ta, te = mask(e == m) & ~(ta | tb);
    ta = (ta & ~nan) | (na & ~(nb | ne | nf));
    tb = (tb & ~nan) | (nb & ~(ne | nf));
    te = (te & ~nan) | (ne & ~nf);
    uint32_t tf = ~(ta | tb | te);
    uint32_t none = mask(relu & !(m > 0.0f));
    return (((tb & 1) | (te & 2) | (tf & 3)) & ~none) | (POOL_NONE & none);
}

/* the planes [lo, hi) of N*C: the 2x2 fast path's forward, and the codes
 * (c->arg, when not NULL) */
HOT void maxpool_2x2_fwd(void *arg, size_t lo, size_t hi)
{
    const pool_ctx *c = arg;
    const nnrt_pool2d_dims *d = c->d;
    for (size_t nc = lo; nc < hi; nc++)
        for (int p = 0; p < d->P; p++) {
            const float *restrict r0 = c->a + (nc * d->H + 2 * p) * d->W, *restrict r1 = r0 + d->W;
            size_t at = (nc * d->P + p) * d->Q;
            for (int q = 0; q < d->Q; q++) {
                float a = r0[2 * q], b = r0[2 * q + 1], e = r1[2 * q], f = r1[2 * q + 1];
                float m = max4(a, b, e, f);
                c->out[at + q] = m;
                if (c->arg)
                    c->arg[at + q] = (unsigned char)code4(a, b, e, f, m, d->relu);
            }
        }
}

/* The 2x2 fast path's backward, planes [lo, hi): each window's gradient to
 * its code's pixel, added (or assigned: d->assign); 0 to the others. The
 * codes come from c->arg, or, when it is NULL, from x (c->b) as the
 * forward makes them. */
HOT void maxpool_2x2_bwd(void *arg, size_t lo, size_t hi)
{
    const pool_ctx *c = arg;
    const nnrt_pool2d_dims *d = c->d;
    for (size_t nc = lo; nc < hi; nc++)
        for (int p = 0; p < d->P; p++) {
            const float *restrict r0 = c->arg ? NULL : c->b + (nc * d->H + 2 * p) * d->W;
            float *restrict d0 = c->out + (nc * d->H + 2 * p) * d->W, *restrict d1 = d0 + d->W;
            size_t at = (nc * d->P + p) * d->Q;
            for (int q = 0; q < d->Q; q++) {
                uint32_t code;
                if (c->arg) {
                    code = c->arg[at + q];
                } else {
                    const float *r1 = r0 + d->W;
                    float a = r0[2 * q], b = r0[2 * q + 1], e = r1[2 * q], f = r1[2 * q + 1];
                    code = code4(a, b, e, f, max4(a, b, e, f), d->relu);
                }
                uint32_t g = float_bits(c->a[at + q]);
                /* the gradient's bits, or +0, added to dx (or to 0: assign) */
                uint32_t keep = mask(!d->assign);
                d0[2 * q] = bits_float(float_bits(d0[2 * q]) & keep) + bits_float(g & mask(code == 0));
                d0[2 * q + 1] = bits_float(float_bits(d0[2 * q + 1]) & keep) + bits_float(g & mask(code == 1));
                d1[2 * q] = bits_float(float_bits(d1[2 * q]) & keep) + bits_float(g & mask(code == 2));
                d1[2 * q + 1] = bits_float(float_bits(d1[2 * q + 1]) & keep) + bits_float(g & mask(code == 3));
            }
        }
}

#ifdef NNRT_AVX512
/* The same with AVX-512, which the compiler does not manage by itself: rows
 * of 14 or 5 windows leave its vector loop nothing and its scalar remainder
 * all. Here 16 windows at a time, a shorter last
 * group with masked loads and stores: two rows of 32 floats are split into
 * the windows' four pixels a b / e f (permutes), the choice is made with
 * compare masks, and the gradients are interleaved back. */

/* Windows q0 .. q0+n-1 (n <= 16) of the row pair at x (rows W apart): their
 * pixels a b / e f as four vectors of 16 (0 past n), their maximum m
 * (a NaN if one of the four is) and the NaN masks; lo, hi: the masks of the
 * 2n floats of a row as two vectors */
typedef struct quad16 {
    __m512 a, b, e, f, m;
    __mmask16 na, nb, ne, nf, lo, hi;
} quad16;

/* 16 windows' choice: which of a b e f passes the gradient (ta .. tf, one
 * of them for every window) and which windows pass one (live) */
typedef struct pick16 {
    __mmask16 ta, tb, te, tf, live;
} pick16;

__attribute__((target("avx512f"), always_inline)) static inline void quad16_load(quad16 *t, const float *x, int W, int n)
{
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    int n2 = 2 * n;
    t->lo = (__mmask16)(n2 >= 16 ? 0xffffu : (1u << n2) - 1);
    t->hi = (__mmask16)(n2 <= 16 ? 0u : (1u << (n2 - 16)) - 1);
    __m512 x0l = _mm512_maskz_loadu_ps(t->lo, x), x0h = _mm512_maskz_loadu_ps(t->hi, x + 16);
    __m512 x1l = _mm512_maskz_loadu_ps(t->lo, x + W), x1h = _mm512_maskz_loadu_ps(t->hi, x + W + 16);
    t->a = _mm512_permutex2var_ps(x0l, even, x0h), t->b = _mm512_permutex2var_ps(x0l, odd, x0h);
    t->e = _mm512_permutex2var_ps(x1l, even, x1h), t->f = _mm512_permutex2var_ps(x1l, odd, x1h);
    /* max_ps(b, m) is b > m ? b : m, as the plain loops */
    __m512 m = _mm512_max_ps(t->f, _mm512_max_ps(t->e, _mm512_max_ps(t->b, t->a)));
    t->na = _mm512_cmp_ps_mask(t->a, t->a, _CMP_UNORD_Q), t->nb = _mm512_cmp_ps_mask(t->b, t->b, _CMP_UNORD_Q);
    t->ne = _mm512_cmp_ps_mask(t->e, t->e, _CMP_UNORD_Q), t->nf = _mm512_cmp_ps_mask(t->f, t->f, _CMP_UNORD_Q);
    t->m = _mm512_mask_mov_ps(m, t->na | t->nb | t->ne | t->nf, _mm512_set1_ps(NAN));
}

/* the codes code4 makes, from the pixels: blends in order of priority (no
 * mask arithmetic, which GCC moves out to general registers and back) */
__attribute__((target("avx512f"), always_inline)) static inline __m512i codes_quad(const quad16 *t, int relu)
{
    __m512i v = _mm512_set1_epi32(3);
    v = _mm512_mask_mov_epi32(v, _mm512_cmp_ps_mask(t->e, t->m, _CMP_EQ_OQ), _mm512_set1_epi32(2));
    v = _mm512_mask_mov_epi32(v, _mm512_cmp_ps_mask(t->b, t->m, _CMP_EQ_OQ), _mm512_set1_epi32(1));
    v = _mm512_mask_mov_epi32(v, _mm512_cmp_ps_mask(t->a, t->m, _CMP_EQ_OQ), _mm512_setzero_si512());
    /* a NaN maximum: the last NaN (no pixel equals a NaN above) */
    v = _mm512_mask_mov_epi32(v, t->na, _mm512_setzero_si512());
    v = _mm512_mask_mov_epi32(v, t->nb, _mm512_set1_epi32(1));
    v = _mm512_mask_mov_epi32(v, t->ne, _mm512_set1_epi32(2));
    v = _mm512_mask_mov_epi32(v, t->nf, _mm512_set1_epi32(3));
    if (relu)                           /* nothing where the maximum is not > 0 (or a NaN) */
        v = _mm512_mask_mov_epi32(v, _mm512_cmp_ps_mask(t->m, _mm512_setzero_ps(), _CMP_NGT_UQ),
                                  _mm512_set1_epi32(POOL_NONE));
    return v;
}

/* 16 windows' choice from their codes, the first n of them */
__attribute__((target("avx512f"), always_inline)) static inline pick16 pick_code_vec(__m512i v, int n)
{
    pick16 k;
    k.ta = _mm512_cmpeq_epi32_mask(v, _mm512_setzero_si512());
    k.tb = _mm512_cmpeq_epi32_mask(v, _mm512_set1_epi32(1));
    k.te = _mm512_cmpeq_epi32_mask(v, _mm512_set1_epi32(2));
    k.tf = _mm512_cmpeq_epi32_mask(v, _mm512_set1_epi32(3));
    k.live = (__mmask16)((1u << n) - 1) & _mm512_cmpneq_epi32_mask(v, _mm512_set1_epi32(POOL_NONE));
    return k;
}

/* n codes from memory (a masked load: a copy to the stack first would make
 * the load wait for the copy's stores) */
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) static inline __m512i load_codes(
    const unsigned char *arg, int n)
{
    return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8((__mmask16)((1u << n) - 1), arg));
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) void maxpool_2x2_fwd_avx512(void *arg, size_t lo, size_t hi)
{
    const pool_ctx *c = arg;
    const nnrt_pool2d_dims *d = c->d;
    quad16 t;
    for (size_t nc = lo; nc < hi; nc++)
        for (int p = 0; p < d->P; p++)
            for (int q0 = 0; q0 < d->Q; q0 += 16) {
                int n = d->Q - q0 < 16 ? d->Q - q0 : 16;
                size_t at = (nc * d->P + p) * d->Q + q0;
                __mmask16 valid = (__mmask16)((1u << n) - 1);
                quad16_load(&t, c->a + (nc * d->H + 2 * p) * d->W + 2 * q0, d->W, n);
                _mm512_mask_storeu_ps(c->out + at, valid, t.m);
                if (c->arg)
                    _mm512_mask_cvtepi32_storeu_epi8(c->arg + at, valid, codes_quad(&t, d->relu));
            }
}

/* Backward: as maxpool_2x2_bwd, the codes from c->arg or from x */
__attribute__((target("avx512f,avx512bw,avx512vl"))) void maxpool_2x2_bwd_avx512(void *arg, size_t lo, size_t hi)
{
    const pool_ctx *c = arg;
    const nnrt_pool2d_dims *d = c->d;
    const __m512i zip_lo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i zip_hi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    quad16 t;
    for (size_t nc = lo; nc < hi; nc++)
        for (int p = 0; p < d->P; p++)
            for (int q0 = 0; q0 < d->Q; q0 += 16) {
                int n = d->Q - q0 < 16 ? d->Q - q0 : 16, n2 = 2 * n;
                size_t row = (nc * d->H + 2 * p) * d->W + 2 * q0, at = (nc * d->P + p) * d->Q + q0;
                __m512i code;
                if (c->arg) {
                    code = load_codes(c->arg + at, n);
                } else {
                    quad16_load(&t, c->b + row, d->W, n);
                    code = codes_quad(&t, d->relu);
                }
                pick16 k = pick_code_vec(code, n);
                __mmask16 rlo = (__mmask16)(n2 >= 16 ? 0xffffu : (1u << n2) - 1);
                __mmask16 rhi = (__mmask16)(n2 <= 16 ? 0u : (1u << (n2 - 16)) - 1);
                __m512 g = _mm512_maskz_loadu_ps(k.live, c->a + at);
                __m512 ga = _mm512_maskz_mov_ps(k.ta, g), gb = _mm512_maskz_mov_ps(k.tb, g);
                __m512 ge = _mm512_maskz_mov_ps(k.te, g), gf = _mm512_maskz_mov_ps(k.tf, g);
                float *d0 = c->out + row, *d1 = d0 + d->W;
                __m512 g0 = _mm512_permutex2var_ps(ga, zip_lo, gb), g1 = _mm512_permutex2var_ps(ga, zip_hi, gb);
                __m512 g2 = _mm512_permutex2var_ps(ge, zip_lo, gf), g3 = _mm512_permutex2var_ps(ge, zip_hi, gf);
                /* Adding to dx: its loads. Not even an empty-masked one when
                 * assigning: it would wait for the masked store just before
                 * it to reach memory. */
                if (!d->assign) {
                    g0 = _mm512_add_ps(_mm512_maskz_loadu_ps(rlo, d0), g0);
                    g1 = _mm512_add_ps(_mm512_maskz_loadu_ps(rhi, d0 + 16), g1);
                    g2 = _mm512_add_ps(_mm512_maskz_loadu_ps(rlo, d1), g2);
                    g3 = _mm512_add_ps(_mm512_maskz_loadu_ps(rhi, d1 + 16), g3);
                }
                _mm512_mask_storeu_ps(d0, rlo, g0);
                _mm512_mask_storeu_ps(d0 + 16, rhi, g1);
                _mm512_mask_storeu_ps(d1, rlo, g2);
                _mm512_mask_storeu_ps(d1 + 16, rhi, g3);
            }
}
#endif
