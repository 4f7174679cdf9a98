// transpose_avx.hpp — in-register transposes of small blocks with AVX (8 x 8 floats, 4 x 4 doubles),
// used to pack a transposed B. Only ever inlined into functions compiled for AVX2 or AVX-512; x86-64 only.
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

#include "core/common.hpp"

namespace fastdl {
namespace {

// out (8, 8) with row stride ld_out  <-  transpose of in (8, 8) with row stride ld_in
[[gnu::always_inline]] __attribute__((target("avx2"))) inline void transpose_block(const float* in, index_t ld_in,
                                                                                   float* out, index_t ld_out) {
    __m256 r[8], t[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(in + i * ld_in);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);      // a0 b0 a1 b1 | a4 b4 a5 b5
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);  // a2 b2 a3 b3 | a6 b6 a7 b7
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);      // a0 b0 c0 d0 | a4 b4 c4 d4
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);  // a1 b1 c1 d1 | a5 b5 c5 d5
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(out + i * ld_out, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_storeu_ps(out + (i + 4) * ld_out, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
    }
}

// out (4, 4) with row stride ld_out  <-  transpose of in (4, 4) with row stride ld_in
[[gnu::always_inline]] __attribute__((target("avx2"))) inline void transpose_block(const double* in, index_t ld_in,
                                                                                   double* out, index_t ld_out) {
    const __m256d r0 = _mm256_loadu_pd(in), r1 = _mm256_loadu_pd(in + ld_in);
    const __m256d r2 = _mm256_loadu_pd(in + 2 * ld_in), r3 = _mm256_loadu_pd(in + 3 * ld_in);
    const __m256d t0 = _mm256_unpacklo_pd(r0, r1);  // a0 b0 | a2 b2
    const __m256d t1 = _mm256_unpackhi_pd(r0, r1);  // a1 b1 | a3 b3
    const __m256d t2 = _mm256_unpacklo_pd(r2, r3);  // c0 d0 | c2 d2
    const __m256d t3 = _mm256_unpackhi_pd(r2, r3);  // c1 d1 | c3 d3
    _mm256_storeu_pd(out, _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(out + ld_out, _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(out + 2 * ld_out, _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(out + 3 * ld_out, _mm256_permute2f128_pd(t1, t3, 0x31));
}

// Side of the square block transpose_block() handles for T.
template <typename T>
constexpr int transpose_side = 32 / static_cast<int>(sizeof(T));

// A full B micro-panel from a transposed B: B (kc, NR) with B(p, j) = b[j * cs_b + p]  ->  out (kc, NR),
// out[p * NR + j] = B(p, j), by S x S register transposes (S = transpose_side<T>).
template <typename T, int NR>
[[gnu::always_inline]] __attribute__((target("avx2"))) inline void pack_b_panel_transposed(index_t kc, const T* b,
                                                                                           index_t cs_b, T* out) {
    constexpr int S = transpose_side<T>;
    static_assert(NR % S == 0, "NR must be a multiple of the transpose block");
    index_t p0 = 0;
    for (; p0 + S <= kc; p0 += S)
        for (int j0 = 0; j0 < NR; j0 += S) transpose_block(b + j0 * cs_b + p0, cs_b, out + p0 * NR + j0, NR);
    for (; p0 < kc; ++p0)
        for (int j = 0; j < NR; ++j) out[p0 * NR + j] = b[j * cs_b + p0];
}

}  // namespace
}  // namespace fastdl

#endif  // __x86_64__
