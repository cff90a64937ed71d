/* kernel.h — what the hot kernel files share (private to the runtime):
 * HOT compiles a function for AVX-512, AVX2 and plain x86-64 (GCC's
 * target_clones, chosen at load time), so a default build runs AVX-512 where
 * the machine has it; NNRT_NO_CLONES turns that off. INLINE forces inlining
 * of the small register-tile helpers. */
#ifndef NNRT_KERNEL_H
#define NNRT_KERNEL_H

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && defined(__x86_64__) && \
    defined(__ELF__) && !defined(NNRT_NO_CLONES)
#define HOT __attribute__((flatten, target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#elif defined(__GNUC__)
#define HOT __attribute__((flatten))
#else
#define HOT
#endif
#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static inline
#endif

#endif
