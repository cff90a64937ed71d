/* pool.c — 2-D pooling, forward and backward: max pooling
 * (torch.nn.MaxPool2d), average pooling (torch.nn.AvgPool2d) and adaptive
 * average pooling (torch.nn.AdaptiveAvgPool2d).
 *
 * The window of output pixel (p, q) covers input rows p*stride_h - pad_h ...
 * + kh - 1 and columns q*stride_w - pad_w ... + kw - 1. Only the part of the
 * window inside the image is scanned: padding is -inf for max pooling and
 * zeros for average pooling. The compiler computes P and Q, in floor or ceil
 * mode as PyTorch does; in ceil mode the last window may run past the padded
 * input, and is clipped like any other.
 *
 * The backward routes each window's gradient to its maximum: ties go to the
 * FIRST maximum in row-major window order, and a NaN counts as the maximum
 * (of several NaNs, the last), as PyTorch's CPU kernel's scan (v > max ||
 * isnan(v)) does. The forward can keep each window's choice, a byte
 * (nnrt_maxpool2d_forward_argmax: what nnc's trainers do); otherwise the
 * backward finds it again from x with the same function, so the two can
 * never disagree.
 *
 * The 2x2 stride-2 windows of LeNet-like networks have a fast path, vector
 * code written so that it has no branches (AVX-512 where the machine has
 * it; tests/runtime/test_kernels.c checks it bit for bit against a plain
 * scan, NaNs and signed zeros included). Large calls share the planes of
 * N*C between the runtime's threads (parallel.c).
 *
 * Average pooling divides by PyTorch's divisor (avg_window): the window
 * clipped to the padded input when count_include_pad, else the number of
 * input pixels it covers. Adaptive pooling splits H into P ranges (rows
 * floor(i*H/P) .. ceil((i+1)*H/P) - 1, which may overlap) and W likewise.
 *
 * Dimension letters (fixed in nnrt.h): N batch, C channels, H x W input,
 * P x Q output, kh x kw window.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "nnrt.h"

#include "kernel.h"

/* Index into the H x W plane xc of the maximum of window (p, q), its value in
 * *max. A window wholly in the padding (which PyTorch forbids: pad <= k/2)
 * gives -1 and -inf. */
static long window_argmax(float *max, const float *xc, int p, int q,
                          const nnrt_pool2d_dims *d)
{
    int h0 = p * d->stride_h - d->pad_h, w0 = q * d->stride_w - d->pad_w;
    int h1 = h0 + d->kh, w1 = w0 + d->kw;
    if (h0 < 0) h0 = 0;
    if (w0 < 0) w0 = 0;
    if (h1 > d->H) h1 = d->H;
    if (w1 > d->W) w1 = d->W;

    long best = h0 < h1 && w0 < w1 ? (long)h0 * d->W + w0 : -1;
    float m = -INFINITY;
    for (int h = h0; h < h1; h++)
        for (int w = w0; w < w1; w++) {
            float v = xc[(long)h * d->W + w];
            if (v > m || isnan(v)) {
                m = v;
                best = (long)h * d->W + w;
            }
        }
    *max = m;
    return best;
}

/* 2x2 windows, stride 2, no padding, every window inside: selects, no branches */
static int pool_2x2(const nnrt_pool2d_dims *d)
{
    return d->kh == 2 && d->kw == 2 && d->stride_h == 2 && d->stride_w == 2 && d->pad_h == 0 &&
           d->pad_w == 0 && 2 * d->P <= d->H && 2 * d->Q <= d->W;
}

typedef struct pool_ctx {
    float *out;
    const float *a, *b;
    const nnrt_pool2d_dims *d;
    unsigned char *arg;     /* 2x2 max pooling: each window's choice (code4), or NULL */
} pool_ctx;

/* pooling is shared between threads from this many input pixels */
#define POOL_GRAIN 32768

/* The 2x2 fast path is written so that GCC makes it vector code with no
 * branches in its scalar remainder: float selects there (v = b > m ? b : m
 * with the NaN test) become branches, mispredicted on half of the windows
 * (ten times slower, measured). So the maximum is a plain max chain (an
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
 * NaN; or NONE when the window passes no gradient (a ReLU folded in and m
 * not > 0). Without branches. */
enum { NONE = 255 };
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
    return (((tb & 1) | (te & 2) | (tf & 3)) & ~none) | (NONE & none);
}

/* the planes [lo, hi) of N*C: the 2x2 fast path's forward, and the codes
 * (c->arg, when not NULL) */
HOT static void max2x2_fwd_planes(void *arg, size_t lo, size_t hi)
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
HOT static void max2x2_bwd_planes(void *arg, size_t lo, size_t hi)
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
 * all (4 times slower, measured). Here 16 windows at a time, a shorter last
 * group with masked loads and stores: two rows of 32 floats are split into
 * the windows' four pixels a b / e f (permutes), the choice is made with
 * compare masks, and the gradients are interleaved back. */
#define HAVE_MAX2X2_AVX512 1

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
                                  _mm512_set1_epi32(NONE));
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
    k.live = (__mmask16)((1u << n) - 1) & _mm512_cmpneq_epi32_mask(v, _mm512_set1_epi32(NONE));
    return k;
}

/* n codes from memory (a masked load: a copy to the stack first would make
 * the load wait for the copy's stores, measured) */
__attribute__((target("avx512f,avx512bw,avx512vl"), always_inline)) static inline __m512i load_codes(
    const unsigned char *arg, int n)
{
    return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8((__mmask16)((1u << n) - 1), arg));
}

__attribute__((target("avx512f,avx512bw,avx512vl"))) static void max2x2_fwd_avx512(void *arg, size_t lo, size_t hi)
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

/* Backward: as max2x2_bwd_planes, the codes from c->arg or from x */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void max2x2_bwd_avx512(void *arg, size_t lo, size_t hi)
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
                 * it to reach memory (measured: 4 times slower). */
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

/* Any window's code: its maximum's position in the window (row-major, from
 * the window's corner in the padded input), or NONE (no pixel, or a ReLU
 * folded in and the maximum not > 0). Windows have at most NNRT_ARGMAX_MAX
 * positions. */
static unsigned char window_code(long i, float m, int p, int q, const nnrt_pool2d_dims *d)
{
    if (i < 0 || (d->relu && !(m > 0.0f)))
        return NONE;
    long h = i / d->W - ((long)p * d->stride_h - d->pad_h), w = i % d->W - ((long)q * d->stride_w - d->pad_w);
    return (unsigned char)(h * d->kw + w);
}

/* the planes [lo, hi) of N*C, any window (and its codes, when c->arg) */
static void max_fwd_planes(void *arg, size_t lo, size_t hi)
{
    const pool_ctx *c = arg;
    const nnrt_pool2d_dims *d = c->d;
    size_t HW = (size_t)d->H * d->W, PQ = (size_t)d->P * d->Q;
    for (size_t nc = lo; nc < hi; nc++)
        for (int p = 0; p < d->P; p++)
            for (int q = 0; q < d->Q; q++) {
                size_t at = nc * PQ + (size_t)p * d->Q + q;
                long i = window_argmax(&c->out[at], c->a + nc * HW, p, q, d);
                if (c->arg)
                    c->arg[at] = window_code(i, c->out[at], p, q, d);
            }
}

/* planes of N*C per task: about POOL_GRAIN input pixels */
static size_t plane_grain(const nnrt_pool2d_dims *d)
{
    size_t hw = (size_t)d->H * d->W;
    return hw >= POOL_GRAIN ? 1 : POOL_GRAIN / (hw ? hw : 1);
}

static void max_forward(float *y, unsigned char *arg, const float *x, const nnrt_pool2d_dims *d)
{
    pool_ctx c = {y, x, NULL, d, arg};
    void (*fn)(void *, size_t, size_t) = pool_2x2(d) ? max2x2_fwd_planes : max_fwd_planes;
#ifdef HAVE_MAX2X2_AVX512
    if (fn == max2x2_fwd_planes && has_avx512())
        fn = max2x2_fwd_avx512;
#endif
    nnrt_parallel_for(fn, &c, (size_t)d->N * d->C, plane_grain(d));
}

/* y[N,C,P,Q] = max over each window of x[N,C,H,W] */
void nnrt_maxpool2d_forward(float *y, const float *x, const nnrt_pool2d_dims *d)
{
    max_forward(y, NULL, x, d);
}

void nnrt_maxpool2d_forward_argmax(float *y, unsigned char *arg, const float *x, const nnrt_pool2d_dims *d)
{
    max_forward(y, arg, x, d);
}

/* the planes [lo, hi) of N*C, any window: from the codes (c->arg) or from x */
static void max_bwd_planes(void *arg, size_t lo, size_t hi)
{
    const pool_ctx *c = arg;
    const nnrt_pool2d_dims *d = c->d;
    size_t HW = (size_t)d->H * d->W, PQ = (size_t)d->P * d->Q;
    if (d->assign)
        memset(c->out + lo * HW, 0, sizeof(float) * (hi - lo) * HW);
    for (size_t nc = lo; nc < hi; nc++)
        for (int p = 0; p < d->P; p++)
            for (int q = 0; q < d->Q; q++) {
                size_t at = nc * PQ + (size_t)p * d->Q + q;
                long i;         /* the pixel of the plane that gets the gradient */
                if (c->arg) {
                    unsigned char code = c->arg[at];
                    if (code == NONE)
                        continue;
                    long h = (long)p * d->stride_h - d->pad_h + code / d->kw;
                    long w = (long)q * d->stride_w - d->pad_w + code % d->kw;
                    i = h * d->W + w;
                } else {        /* any window size (a code would not hold more than 254) */
                    float m;
                    i = window_argmax(&m, c->b + nc * HW, p, q, d);
                    if (i < 0 || (d->relu && !(m > 0.0f)))
                        continue;
                }
                c->out[nc * HW + (size_t)i] += c->a[at];
            }
}

/* the function that does the backward of d's planes */
static void (*max_bwd_fn(const nnrt_pool2d_dims *d))(void *, size_t, size_t)
{
    /* assign: the 2x2 path writes only the pixels its windows cover */
    int whole = !d->assign || (2 * d->P == d->H && 2 * d->Q == d->W);
    void (*fn)(void *, size_t, size_t) = pool_2x2(d) && whole ? max2x2_bwd_planes : max_bwd_planes;
#ifdef HAVE_MAX2X2_AVX512
    if (fn == max2x2_bwd_planes && has_avx512())
        fn = max2x2_bwd_avx512;
#endif
    return fn;
}

/* dx[N,C,H,W] += dy[N,C,P,Q] at the first maximum of each window of
 * x[N,C,H,W]; dx may be NULL (then nothing to do) */
void nnrt_maxpool2d_backward(float *dx, const float *dy, const float *x,
                             const nnrt_pool2d_dims *d)
{
    if (!dx)
        return;
    pool_ctx c = {dx, dy, x, d, NULL};
    nnrt_parallel_for(max_bwd_fn(d), &c, (size_t)d->N * d->C, plane_grain(d));
}

void nnrt_maxpool2d_backward_argmax(float *dx, const float *dy, const unsigned char *arg,
                                    const nnrt_pool2d_dims *d)
{
    if (!dx)
        return;
    pool_ctx c = {dx, dy, NULL, d, (unsigned char *)arg};
    nnrt_parallel_for(max_bwd_fn(d), &c, (size_t)d->N * d->C, plane_grain(d));
}

void maxpool_plane_backward(float *dx, const float *dy, const unsigned char *arg, const nnrt_pool2d_dims *d)
{
    pool_ctx c = {dx, dy, NULL, d, (unsigned char *)arg};
    max_bwd_fn(d)(&c, 0, 1);
}

/* The input rows [*h0, *h1) and columns [*w0, *w1) of average-pooling window
 * (p, q), and its divisor as PyTorch's CPU kernel computes it: the window
 * clipped to the padded input if count_include_pad, else to the input. The
 * divisor is 0 only for a window with no input pixel (which PyTorch's output
 * sizes never produce); such a window averages to 0. */
static int avg_window(int *h0, int *h1, int *w0, int *w1, int p, int q,
                      const nnrt_pool2d_dims *d)
{
    int hs = p * d->stride_h - d->pad_h, ws = q * d->stride_w - d->pad_w;
    int he = hs + d->kh, we = ws + d->kw;
    if (he > d->H + d->pad_h) he = d->H + d->pad_h;
    if (we > d->W + d->pad_w) we = d->W + d->pad_w;
    int padded = (he - hs) * (we - ws);
    if (hs < 0) hs = 0;
    if (ws < 0) ws = 0;
    if (he > d->H) he = d->H;
    if (we > d->W) we = d->W;
    *h0 = hs, *h1 = he, *w0 = ws, *w1 = we;
    if (hs >= he || ws >= we)
        return 0;
    return d->count_include_pad ? padded : (he - hs) * (we - ws);
}

/* y[N,C,P,Q] = sum of each window of x[N,C,H,W] / its divisor */
void nnrt_avgpool2d_forward(float *y, const float *x, const nnrt_pool2d_dims *d)
{
    size_t HW = (size_t)d->H * d->W, PQ = (size_t)d->P * d->Q;
    for (size_t nc = 0; nc < (size_t)d->N * d->C; nc++) {
        const float *xc = x + nc * HW;
        float *yc = y + nc * PQ;
        for (int p = 0; p < d->P; p++)
            for (int q = 0; q < d->Q; q++) {
                int h0, h1, w0, w1;
                int div = avg_window(&h0, &h1, &w0, &w1, p, q, d);
                float sum = 0.0f;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++)
                        sum += xc[(size_t)h * d->W + w];
                yc[(size_t)p * d->Q + q] = div ? sum / (float)div : 0.0f;
            }
    }
}

/* dx[N,C,H,W] += dy[N,C,P,Q] / divisor over each window; dx may be NULL */
void nnrt_avgpool2d_backward(float *dx, const float *dy, const nnrt_pool2d_dims *d)
{
    if (!dx)
        return;
    size_t HW = (size_t)d->H * d->W, PQ = (size_t)d->P * d->Q;
    for (size_t nc = 0; nc < (size_t)d->N * d->C; nc++) {
        const float *dyc = dy + nc * PQ;
        float *dxc = dx + nc * HW;
        for (int p = 0; p < d->P; p++)
            for (int q = 0; q < d->Q; q++) {
                int h0, h1, w0, w1;
                int div = avg_window(&h0, &h1, &w0, &w1, p, q, d);
                if (!div)
                    continue;
                float g = dyc[(size_t)p * d->Q + q] / (float)div;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++)
                        dxc[(size_t)h * d->W + w] += g;
            }
    }
}

/* The range [*lo, *hi) of the n input positions that adaptive output cell i
 * of m averages: floor(i*n/m) .. ceil((i+1)*n/m) (PyTorch's start_index and
 * end_index) */
static void adaptive_range(int *lo, int *hi, int i, int n, int m)
{
    *lo = (int)((long long)i * n / m);
    *hi = (int)(((long long)(i + 1) * n + m - 1) / m);
}

/* y[N,C,P,Q] = mean of each adaptive window of x[N,C,H,W] */
void nnrt_adaptive_avgpool2d_forward(float *y, const float *x, int N, int C, int H, int W,
                                     int P, int Q)
{
    size_t HW = (size_t)H * W, PQ = (size_t)P * Q;
    for (size_t nc = 0; nc < (size_t)N * C; nc++) {
        const float *xc = x + nc * HW;
        float *yc = y + nc * PQ;
        for (int p = 0; p < P; p++) {
            int h0, h1;
            adaptive_range(&h0, &h1, p, H, P);
            for (int q = 0; q < Q; q++) {
                int w0, w1;
                adaptive_range(&w0, &w1, q, W, Q);
                float sum = 0.0f;
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++)
                        sum += xc[(size_t)h * W + w];
                yc[(size_t)p * Q + q] = sum / (float)((h1 - h0) * (w1 - w0));
            }
        }
    }
}

/* dx[N,C,H,W] += dy[N,C,P,Q] / window size over each adaptive window; dx may be NULL */
void nnrt_adaptive_avgpool2d_backward(float *dx, const float *dy, int N, int C, int H, int W,
                                      int P, int Q)
{
    if (!dx)
        return;
    size_t HW = (size_t)H * W, PQ = (size_t)P * Q;
    for (size_t nc = 0; nc < (size_t)N * C; nc++) {
        const float *dyc = dy + nc * PQ;
        float *dxc = dx + nc * HW;
        for (int p = 0; p < P; p++) {
            int h0, h1;
            adaptive_range(&h0, &h1, p, H, P);
            for (int q = 0; q < Q; q++) {
                int w0, w1;
                adaptive_range(&w0, &w1, q, W, Q);
                float g = dyc[(size_t)p * Q + q] / (float)((h1 - h0) * (w1 - w0));
                for (int h = h0; h < h1; h++)
                    for (int w = w0; w < w1; w++)
                        dxc[(size_t)h * W + w] += g;
            }
        }
    }
}
