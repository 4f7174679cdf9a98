// naive.cpp — the stage-1 GEMM: one output row at a time, ranges of rows claimed by threads, no packing.
// Each c element is reduced over K in order by one thread, so results do not depend on the thread count.

#include "gemm/naive.hpp"

#include "gemm/epilogue.hpp"

namespace fastdl {

template <typename T>
void gemm_naive(index_t M, index_t N, index_t K, const T* a, index_t lda, bool trans_a, const T* b,
                index_t ldb, bool trans_b, T* c, index_t ldc, const GemmEpilogue<T>& epilogue) {
    // a is (M, K) [(K, M) if trans_a], b is (K, N) [(N, K) if trans_b], c is (M, N)
    // A(i, p) = a[i * a_rs + p * a_cs]
    const index_t a_rs = trans_a ? 1 : lda;
    const index_t a_cs = trans_a ? lda : 1;
    const int nt = threads_for(M * N * std::max<index_t>(K, 1), index_t(1) << 16);
    parallel_ranges(M, 1, nt, kTasksPerThread, [&](index_t i0, index_t i1) {
        for (index_t i = i0; i < i1; ++i) {
            T* ci = c + i * ldc;  // row i of c, (N,)
            if (!trans_b) {
                // B(p, j) = b[p * ldb + j]: stream rows of b into the c row
                for (index_t j = 0; j < N; ++j) ci[j] = T(0);
                for (index_t p = 0; p < K; ++p) {
                    const T aip = a[i * a_rs + p * a_cs];
                    const T* bp = b + p * ldb;
                    for (index_t j = 0; j < N; ++j) ci[j] += aip * bp[j];
                }
            } else {
                // B(p, j) = b[j * ldb + p]: one dot product per c element
                for (index_t j = 0; j < N; ++j) {
                    const T* bj = b + j * ldb;
                    T sum = T(0);
                    for (index_t p = 0; p < K; ++p) sum += a[i * a_rs + p * a_cs] * bj[p];
                    ci[j] = sum;
                }
            }
            apply_epilogue(ci, ldc, 1, N, epilogue.bias, epilogue.act);
        }
    });
}

template void gemm_naive<float>(index_t, index_t, index_t, const float*, index_t, bool, const float*, index_t,
                                bool, float*, index_t, const GemmEpilogue<float>&);
template void gemm_naive<double>(index_t, index_t, index_t, const double*, index_t, bool, const double*,
                                 index_t, bool, double*, index_t, const GemmEpilogue<double>&);

}  // namespace fastdl
