// narrow.cpp — the narrow-result GEMM of narrow.hpp. Rows: B is copied once into a (K, NP) buffer
// padded with zeros to NP = 64 bytes of columns; then blocks of kRows rows of c keep their accumulators
// in registers (one 512-bit or two 256-bit vectors per row) while they walk K. Dots (very few columns, a
// not transposed): one dot product along K per element of c. Dot blocks (AVX-512, a not transposed, more
// columns): 4 x 4 dot products at once against a transposed copy of B.
#include "gemm/narrow.hpp"

#include <vector>

#include "core/scratch_buffer.hpp"
#include "gemm/epilogue.hpp"
#include "core/vec_avx2.hpp"
#include "core/vec_avx512.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"  // vector arguments of the Ops templates; always inlined
#endif

namespace fastdl {

namespace {

constexpr index_t kRows = 8;  // rows of c per block: 8 accumulators, one B row load per 8 FMAs
// the 4 x 4 dot blocks (AVX-512) from this many rows of a and this long a K on
constexpr index_t kDotBlockMinRows = 16;
constexpr index_t kDotBlockMinK = 256;

// c[i0:i1, :N] (row stride ldc) = op(a)[i0:i1, :] @ bpad[:, :N]; bpad is (K, NP) zero-padded, NP = NV
// vectors of Ops::W lanes. op(a)(i, p) = a[i*lda + p], or a[p*lda + i] when trans_a.
template <class Ops, typename T, index_t NP>
inline void narrow_rows(index_t i0, index_t i1, index_t N, index_t K, const T* a, index_t lda, bool trans_a,
                        const T* bpad, T* c, index_t ldc) {
    using V = typename Ops::V;
    constexpr index_t W = Ops::W, NV = NP / W;
    const index_t stride_i = trans_a ? 1 : lda, stride_p = trans_a ? lda : 1;
    for (index_t i = i0; i < i1; i += kRows) {
        const index_t rows = std::min(kRows, i1 - i);
        const T* ai = a + i * stride_i;
        V acc[kRows][NV];
        for (index_t r = 0; r < kRows; ++r)
            for (index_t v = 0; v < NV; ++v) acc[r][v] = Ops::zero();
        if (rows == kRows) {
            for (index_t p = 0; p < K; ++p) {
                V bv[NV];
                for (index_t v = 0; v < NV; ++v) bv[v] = Ops::load(bpad + p * NP + v * W);
                for (index_t r = 0; r < kRows; ++r) {
                    const V ar = Ops::set1(ai[r * stride_i + p * stride_p]);
                    for (index_t v = 0; v < NV; ++v) acc[r][v] = Ops::fmadd(ar, bv[v], acc[r][v]);
                }
            }
        } else {  // the last, partial block of rows
            for (index_t p = 0; p < K; ++p)
                for (index_t r = 0; r < rows; ++r) {
                    const V ar = Ops::set1(ai[r * stride_i + p * stride_p]);
                    for (index_t v = 0; v < NV; ++v)
                        acc[r][v] = Ops::fmadd(ar, Ops::load(bpad + p * NP + v * W), acc[r][v]);
                }
        }
        for (index_t r = 0; r < rows; ++r) {
            T row[NP];
            for (index_t v = 0; v < NV; ++v) Ops::store(row + v * W, acc[r][v]);
            for (index_t j = 0; j < N; ++j) c[(i + r) * ldc + j] = row[j];
        }
    }
}

// bpad (K, NP) = b (K, N, row stride ldb) with zeros in columns [N, NP): one row of NV vectors at a time, the
// last columns of b loaded under a mask.
template <class Ops, typename T, index_t NP>
inline void pad_rows(index_t N, index_t K, const T* b, index_t ldb, T* bpad) {
    constexpr index_t W = Ops::W, NV = NP / W;
    for (index_t p = 0; p < K; ++p)
        for (index_t v = 0; v < NV; ++v) {
            const index_t lanes = N - v * W;
            const T* src = b + p * ldb + v * W;
            Ops::store(bpad + p * NP + v * W,
                       lanes >= W ? Ops::load(src) : lanes > 0 ? Ops::load_n(src, lanes, Ops::zero()) : Ops::zero());
        }
}

// c[i0:i1, :N] = a[i0:i1, :] (row stride lda) @ bt[:N, :]^T, bt is (N, K) = op(b)^T: one dot product of
// length K per element, vectorised along K with four partial sums (few columns: no lanes wasted).
template <class Ops, typename T>
inline void narrow_dots(index_t i0, index_t i1, index_t N, index_t K, const T* a, index_t lda, const T* bt, T* c,
                        index_t ldc) {
    using V = typename Ops::V;
    constexpr index_t W = Ops::W;
    for (index_t i = i0; i < i1; ++i) {
        const T* ai = a + i * lda;
        for (index_t j = 0; j < N; ++j) {
            const T* bj = bt + j * K;
            V s0 = Ops::zero(), s1 = Ops::zero(), s2 = Ops::zero(), s3 = Ops::zero();
            index_t p = 0;
            for (; p + 4 * W <= K; p += 4 * W) {
                s0 = Ops::fmadd(Ops::load(ai + p), Ops::load(bj + p), s0);
                s1 = Ops::fmadd(Ops::load(ai + p + W), Ops::load(bj + p + W), s1);
                s2 = Ops::fmadd(Ops::load(ai + p + 2 * W), Ops::load(bj + p + 2 * W), s2);
                s3 = Ops::fmadd(Ops::load(ai + p + 3 * W), Ops::load(bj + p + 3 * W), s3);
            }
            for (; p < K; p += W) {
                const index_t n = std::min(W, K - p);
                s0 = Ops::fmadd(Ops::load_n(ai + p, n, Ops::zero()), Ops::load_n(bj + p, n, Ops::zero()), s0);
            }
            c[i * ldc + j] = static_cast<T>(Ops::hsum(Ops::add(Ops::add(s0, s1), Ops::add(s2, s3))));
        }
    }
}

// c[i:i+R, j:j+JB] = a[i:i+R, :] @ bt[j:j+JB, :]^T: R x JB dot products of length K at once, vectorised along
// K (R + JB loads feed R * JB FMAs), each reduced across its lanes at the end. a rows have stride lda,
// bt rows stride ldbt.
template <class Ops, typename T, int R, int JB>
inline void dot_block(index_t K, const T* a, index_t lda, const T* bt, index_t ldbt, T* c, index_t ldc) {
    using V = typename Ops::V;
    constexpr index_t W = Ops::W;
    V acc[R][JB];
    for (int r = 0; r < R; ++r)
        for (int j = 0; j < JB; ++j) acc[r][j] = Ops::zero();
    index_t p = 0;
    for (; p + W <= K; p += W) {
        V av[R], bv[JB];
        for (int r = 0; r < R; ++r) av[r] = Ops::load(a + r * lda + p);
        for (int j = 0; j < JB; ++j) bv[j] = Ops::load(bt + j * ldbt + p);
        for (int r = 0; r < R; ++r)
            for (int j = 0; j < JB; ++j) acc[r][j] = Ops::fmadd(av[r], bv[j], acc[r][j]);
    }
    if (p < K) {  // the K tail, under a mask
        const index_t n = K - p;
        V av[R], bv[JB];
        for (int r = 0; r < R; ++r) av[r] = Ops::load_n(a + r * lda + p, n, Ops::zero());
        for (int j = 0; j < JB; ++j) bv[j] = Ops::load_n(bt + j * ldbt + p, n, Ops::zero());
        for (int r = 0; r < R; ++r)
            for (int j = 0; j < JB; ++j) acc[r][j] = Ops::fmadd(av[r], bv[j], acc[r][j]);
    }
    for (int r = 0; r < R; ++r)
        for (int j = 0; j < JB; ++j) c[r * ldc + j] = static_cast<T>(Ops::hsum(acc[r][j]));
}

// c[i0:i1, :N] = a[i0:i1, :] @ bt[:N, :]^T for few columns and a long K (the read-out layer's 60 x 12544 x 10):
// blocks of 4 rows x 4 columns (16 accumulators), then the leftover rows and columns one at a time. Every
// element is one fixed chain over K whatever block computes it, so results do not depend on the split.
template <class Ops, typename T>
inline void narrow_dot_blocks(index_t i0, index_t i1, index_t N, index_t K, const T* a, index_t lda, const T* bt,
                              index_t ldbt, T* c, index_t ldc) {
    constexpr int kR = 4, kJ = 4;
    index_t i = i0;
    for (; i + kR <= i1; i += kR) {
        index_t j = 0;
        for (; j + kJ <= N; j += kJ)
            dot_block<Ops, T, kR, kJ>(K, a + i * lda, lda, bt + j * ldbt, ldbt, c + i * ldc + j, ldc);
        for (; j < N; ++j) dot_block<Ops, T, kR, 1>(K, a + i * lda, lda, bt + j * ldbt, ldbt, c + i * ldc + j, ldc);
    }
    for (; i < i1; ++i) {
        index_t j = 0;
        for (; j + kJ <= N; j += kJ)
            dot_block<Ops, T, 1, kJ>(K, a + i * lda, lda, bt + j * ldbt, ldbt, c + i * ldc + j, ldc);
        for (; j < N; ++j) dot_block<Ops, T, 1, 1>(K, a + i * lda, lda, bt + j * ldbt, ldbt, c + i * ldc + j, ldc);
    }
}

#if defined(__x86_64__)
template <typename T, index_t NP>
[[gnu::target("avx2,fma"), gnu::flatten]] void narrow_rows_avx2(index_t i0, index_t i1, index_t N, index_t K,
                                                                 const T* a, index_t lda, bool trans_a,
                                                                 const T* bpad, T* c, index_t ldc) {
    narrow_rows<avx2::Ops<T>, T, NP>(i0, i1, N, K, a, lda, trans_a, bpad, c, ldc);
}

template <typename T, index_t NP>
[[gnu::target("avx512f,avx512dq"), gnu::flatten]] void narrow_rows_avx512(index_t i0, index_t i1, index_t N,
                                                                           index_t K, const T* a, index_t lda,
                                                                           bool trans_a, const T* bpad, T* c,
                                                                           index_t ldc) {
    narrow_rows<avx512::Ops<T>, T, NP>(i0, i1, N, K, a, lda, trans_a, bpad, c, ldc);
}

template <typename T, index_t NP>
[[gnu::target("avx2,fma"), gnu::flatten]] void pad_rows_avx2(index_t N, index_t K, const T* b, index_t ldb, T* bpad) {
    pad_rows<avx2::Ops<T>, T, NP>(N, K, b, ldb, bpad);
}

template <typename T, index_t NP>
[[gnu::target("avx512f,avx512dq"), gnu::flatten]] void pad_rows_avx512(index_t N, index_t K, const T* b, index_t ldb,
                                                                        T* bpad) {
    pad_rows<avx512::Ops<T>, T, NP>(N, K, b, ldb, bpad);
}

template <typename T>
[[gnu::target("avx2,fma"), gnu::flatten]] void narrow_dots_avx2(index_t i0, index_t i1, index_t N, index_t K,
                                                                 const T* a, index_t lda, const T* bt, T* c,
                                                                 index_t ldc) {
    narrow_dots<avx2::Ops<T>, T>(i0, i1, N, K, a, lda, bt, c, ldc);
}

template <typename T>
[[gnu::target("avx512f,avx512dq"), gnu::flatten]] void narrow_dot_blocks_avx512(index_t i0, index_t i1, index_t N,
                                                                                 index_t K, const T* a, index_t lda,
                                                                                 const T* bt, index_t ldbt, T* c,
                                                                                 index_t ldc) {
    narrow_dot_blocks<avx512::Ops<T>, T>(i0, i1, N, K, a, lda, bt, ldbt, c, ldc);
}

template <typename T>
[[gnu::target("avx512f,avx512dq"), gnu::flatten]] void narrow_dots_avx512(index_t i0, index_t i1, index_t N,
                                                                           index_t K, const T* a, index_t lda,
                                                                           const T* bt, T* c, index_t ldc) {
    narrow_dots<avx512::Ops<T>, T>(i0, i1, N, K, a, lda, bt, c, ldc);
}
#endif

}  // namespace

template <typename T>
void gemm_narrow(bool avx512, index_t M, index_t N, index_t K, const T* a, index_t lda, bool trans_a, const T* b,
                 index_t ldb, bool trans_b, T* c, index_t ldc, const GemmEpilogue<T>& epilogue) {
    constexpr index_t NP = narrow_max_columns<T>();
    // At most NP / 4 columns with rows of a contiguous along K: dot products (a is read once per column,
    // measured faster up to about NP / 4); else rows of c as padded vectors. With AVX-512, rows of a
    // contiguous, enough rows to amortise a transposed copy of b (none when b is given transposed) and a
    // long K, blocks of 4 x 4 dot products: every FMA lane does useful work, where a padded row of 10
    // columns wastes 6 of 16 (60 x 12544 x 10 float: 0.20 -> 0.15 ms here, the copy of b included).
    if (avx512 && !trans_a && 4 * N > NP && M >= kDotBlockMinRows && K >= kDotBlockMinK) {
#if defined(__x86_64__)
        const T* bt = b;
        index_t ldbt = ldb;
        const int nt = static_cast<int>(std::min<index_t>(threads_for(M * N * K, index_t(1) << 17), ceil_div(M, 4)));
        if (!trans_b) {  // bt (N, K) = b^T, in the calling thread's reused buffer; slices of K in parallel
            T* buf = scratch_narrow_b<T>(N * K);
            parallel_ranges(K, 1024, std::max(nt, 1), 1, [&](index_t p0, index_t p1) {
                for (index_t j = 0; j < N; ++j)
                    for (index_t p = p0; p < p1; ++p) buf[j * K + p] = b[p * ldb + j];
            });
            bt = buf;
            ldbt = K;
        }
        parallel_ranges(M, 4, std::max(nt, 1), kTasksPerThread, [&](index_t i0, index_t i1) {
            narrow_dot_blocks_avx512<T>(i0, i1, N, K, a, lda, bt, ldbt, c, ldc);
            apply_epilogue(c + i0 * ldc, ldc, i1 - i0, N, epilogue.bias, epilogue.act);
        });
        return;
#endif
    }
    const bool dots = !trans_a && 4 * N <= NP;
    // dots: bt (N, K) = op(b)^T; rows: bpad (K, NP) = op(b), zero in columns [N, NP). An untransposed b is
    // padded with vector stores into the calling thread's reused buffer (no fresh pages to fault in and zero).
    const bool pad = !dots && !trans_b;
    std::vector<T> bcopy(static_cast<size_t>(pad ? 0 : dots ? N * K : K * NP), T(0));
    T* const bc = pad ? scratch_narrow_b<T>(K * NP) : bcopy.data();
#if defined(__x86_64__)
    if (pad && avx512) pad_rows_avx512<T, NP>(N, K, b, ldb, bc);
    else if (pad) pad_rows_avx2<T, NP>(N, K, b, ldb, bc);
#endif
    if (!pad)
        for (index_t p = 0; p < K; ++p)
            for (index_t j = 0; j < N; ++j)
                (dots ? bc[j * K + p] : bc[p * NP + j]) = trans_b ? b[j * ldb + p] : b[p * ldb + j];
    const index_t blocks = ceil_div(M, kRows);
    const int nt = static_cast<int>(std::min<index_t>(threads_for(M * N * K, index_t(1) << 17), blocks));
    parallel_ranges(M, kRows, std::max(nt, 1), kTasksPerThread, [&](index_t i0, index_t i1) {
#if defined(__x86_64__)
        if (dots && avx512) narrow_dots_avx512<T>(i0, i1, N, K, a, lda, bc, c, ldc);
        else if (dots) narrow_dots_avx2<T>(i0, i1, N, K, a, lda, bc, c, ldc);
        else if (avx512) narrow_rows_avx512<T, NP>(i0, i1, N, K, a, lda, trans_a, bc, c, ldc);
        else narrow_rows_avx2<T, NP>(i0, i1, N, K, a, lda, trans_a, bc, c, ldc);
#else
        (void)avx512;  // gemm() only calls this for the avx2 / avx512 kernels, which exist on x86-64 only
#endif
        apply_epilogue(c + i0 * ldc, ldc, i1 - i0, N, epilogue.bias, epilogue.act);
    });
}

template void gemm_narrow<float>(bool, index_t, index_t, index_t, const float*, index_t, bool, const float*, index_t,
                                 bool, float*, index_t, const GemmEpilogue<float>&);
template void gemm_narrow<double>(bool, index_t, index_t, index_t, const double*, index_t, bool, const double*,
                                  index_t, bool, double*, index_t, const GemmEpilogue<double>&);

}  // namespace fastdl
