// blocked.cpp — the BLIS-style GEMM driver.
//
// Loop nest (per thread):  jc over NC columns / pc over KC depth / ic over MC rows / [pack A block (mc, kc)]
//                          / jr over NR [pack B micro-panel (kc, NR) on the first ic pass] / ir over MR
//                          -> microkernel, then bias + activation on the last pc block (tile still in L1).
// Small problems skip packing (the microkernel reads A, and B when it is not transposed, in place); a
// plain B is also read in place when M is small. The next B block is prefetched during each block.
// Threads claim contiguous ranges of whole register tiles of c (split along N or M), with private
// pack buffers. K is split only by a rule on the shapes (a few rows and columns of c over a long K: two
// halves, whatever the thread count), so every c element sees the same FMA chains whatever the thread count.

#include "gemm/blocked.hpp"

#include <utility>

#include "gemm/epilogue.hpp"
#include "core/block_cache.hpp"
#include "core/scratch_buffer.hpp"

namespace fastdl {

namespace {

// Operand views: A(i, p) = a[i * rs_a + p * cs_a], B(p, j) = b[p * rs_b + j * cs_b].
template <typename T>
struct Operands {
    const T* a;
    index_t rs_a, cs_a;
    const T* b;
    index_t rs_b, cs_b;
    T* c;
    index_t ldc;
    index_t K;
};

// Walks the source rows of the NEXT B block and prefetches a few cache lines (into L2) per microkernel
// call, so that reading B from DRAM overlaps the computation on the current block.
class BlockPrefetcher {
public:
    // rows of `row_bytes` bytes, `stride_bytes` apart; spread over `calls` microkernel calls
    void start(const void* base, index_t rows, index_t row_bytes, index_t stride_bytes, index_t calls) {
        row_ = static_cast<const char*>(base);
        line_ = 0;
        lines_per_row_ = ceil_div(row_bytes, kLine);
        stride_ = stride_bytes;
        rows_left_ = rows;
        per_call_ = ceil_div(rows * lines_per_row_, std::max<index_t>(calls, 1));
    }
    void stop() { rows_left_ = 0; }
    void step() {
        for (index_t n = 0; n < per_call_ && rows_left_ > 0; ++n) {
            __builtin_prefetch(row_ + line_ * kLine, 0, 2);
            if (++line_ == lines_per_row_) {
                line_ = 0;
                row_ += stride_;
                --rows_left_;
            }
        }
    }

private:
    static constexpr index_t kLine = 64;
    const char* row_ = nullptr;
    index_t line_ = 0, lines_per_row_ = 0, stride_ = 0, rows_left_ = 0, per_call_ = 0;
};

// Ranges of tiles per thread: each range packs its own operand blocks, so more ranges cost packing passes,
// fewer leave a thread waiting for one the OS parked.
constexpr index_t kGemmTasksPerThread = 2;

struct PackPlan {
    bool pack_a;
    bool pack_b;
};

// One (kc, nc) block of B at (pc, jc) applied to rows [m0, m1) of c: for each block of MC rows, A is packed
// (or read in place), then every (MR, NR) tile of c gets the microkernel, and bias + activation on the last K
// block (first: the first K block, which writes c instead of adding to it). panel(jr, ic) gives the B
// micro-panel of columns [jc + jr, jc + jr + NR) as (pointer, row stride): packed or in place.
template <typename T, class Panel>
void multiply_rows(const MicroKernel<T>& uk, const Operands<T>& op, const PackPlan& plan, index_t m0, index_t m1,
                   index_t jc, index_t nc, index_t pc, index_t kc, Panel panel, T* abuf, BlockPrefetcher* prefetcher,
                   const GemmEpilogue<T>& epilogue) {
    const index_t MR = uk.mr, NR = uk.nr, MC = uk.mc;
    const bool first = pc == 0, last = pc + kc == op.K;
    for (index_t ic = m0; ic < m1; ic += MC) {
        const index_t mc = std::min(MC, m1 - ic);
        // A block (mc, kc) at (ic, pc), packed as ceil(mc / MR) micro-panels (kc, MR)
        const T* ablock = op.a + ic * op.rs_a + pc * op.cs_a;
        if (plan.pack_a) {
            for (index_t ir = 0; ir < mc; ir += MR)
                uk.pack_a(kc, std::min(MR, mc - ir), ablock + ir * op.rs_a, op.rs_a, op.cs_a, abuf + (ir / MR) * kc * MR);
        }
        // macrokernel: c block (mc, nc) at (ic, jc)
        for (index_t jr = 0; jr < nc; jr += NR) {
            const index_t nr = std::min(NR, nc - jr);
            const auto [bp, rs_b] = panel(jr, ic);
            for (index_t ir = 0; ir < mc; ir += MR) {
                const index_t mr = std::min(MR, mc - ir);
                const T* ap = plan.pack_a ? abuf + (ir / MR) * kc * MR : ablock + ir * op.rs_a;
                const index_t rs_a = plan.pack_a ? 1 : op.rs_a;
                const index_t cs_a = plan.pack_a ? MR : op.cs_a;
                T* ct = op.c + (ic + ir) * op.ldc + jc + jr;
                uk.fn(kc, ap, rs_a, cs_a, bp, rs_b, ct, op.ldc, mr, nr, !first);
                if (prefetcher) prefetcher->step();
                if (last) {
                    const T* bias = epilogue.bias ? epilogue.bias + jc + jr : nullptr;
                    apply_epilogue(ct, op.ldc, mr, nr, bias, epilogue.act);
                }
            }
        }
    }
}

template <typename T>
T* pack_a_buffer(const MicroKernel<T>& uk, const PackPlan& plan, index_t rows, index_t K) {
    return plan.pack_a ? scratch_a<T>(ceil_div(std::min(uk.mc, rows), uk.mr) * uk.mr * std::min(uk.kc, K)) : nullptr;
}

// Computes c[m0:m1, n0:n1] (full K) on the calling thread.
template <typename T>
void gemm_range(const MicroKernel<T>& uk, const Operands<T>& op, const PackPlan& plan, index_t m0, index_t m1,
                index_t n0, index_t n1, const GemmEpilogue<T>& epilogue) {
    const index_t MR = uk.mr, NR = uk.nr;
    const index_t MC = uk.mc, KC = uk.kc, NC = uk.nc;
    const index_t K = op.K;
    T* abuf = pack_a_buffer(uk, plan, m1 - m0, K);
    T* bbuf = plan.pack_b ? scratch_b<T>(ceil_div(std::min(NC, n1 - n0), NR) * NR * std::min(KC, K)) : nullptr;

    const bool single_pass = m1 - m0 <= MC;
    BlockPrefetcher prefetcher;
    for (index_t jc = n0; jc < n1; jc += NC) {
        const index_t nc = std::min(NC, n1 - jc);
        for (index_t pc = 0; pc < K; pc += KC) {
            const index_t kc = std::min(KC, K - pc);
            // B block (kc, nc) at (pc, jc)
            const T* bblock = op.b + pc * op.rs_b + jc * op.cs_b;
            // Prefetch the next B block, (jc, pc + KC) else (jc + NC, 0), while computing on this one.
            index_t next_pc = pc + KC, next_jc = jc;
            if (next_pc >= K) next_pc = 0, next_jc = jc + NC;
            if (next_jc < n1) {
                const index_t nkc = std::min(KC, K - next_pc), nnc = std::min(NC, n1 - next_jc);
                const T* nb = op.b + next_pc * op.rs_b + next_jc * op.cs_b;
                const index_t calls = ceil_div(nc, NR) * ceil_div(m1 - m0, MR);
                const index_t elem = sizeof(T);
                if (op.cs_b == 1) prefetcher.start(nb, nkc, nnc * elem, op.rs_b * elem, calls);
                else prefetcher.start(nb, nnc, nkc * elem, op.cs_b * elem, calls);
            } else {
                prefetcher.stop();
            }
            // B micro-panel (kc, NR), packed on the first pass over the rows and reused after; with a single
            // pass, one L1-resident panel buffer is reused for every jr. Unpacked: read in place.
            const auto panel = [&](index_t jr, index_t ic) -> std::pair<const T*, index_t> {
                const T* bp = bblock + jr * op.cs_b;
                if (!plan.pack_b) return {bp, op.rs_b};
                T* packed = single_pass ? bbuf : bbuf + (jr / NR) * kc * NR;
                if (ic == m0) uk.pack_b(kc, std::min(NR, nc - jr), bp, op.rs_b, op.cs_b, packed);
                return {packed, NR};
            };
            multiply_rows(uk, op, plan, m0, m1, jc, nc, pc, kc, panel, abuf, &prefetcher, epilogue);
        }
    }
}

// A product split along M whose B is packed: rather than every range packing all of B again, the threads
// pack each (KC, NC) block of B once, together (one micro-panel per task), into one shared buffer, and then
// multiply their ranges of rows by it. The blocks and the order of K are gemm_range's, so the results are
// the same bits.
template <typename T>
void gemm_rows_on_shared_b(const MicroKernel<T>& uk, const Operands<T>& op, const PackPlan& plan, index_t M,
                           index_t N, int nt, const GemmEpilogue<T>& epilogue) {
    const index_t NR = uk.nr, KC = uk.kc, NC = uk.nc, K = op.K;
    PooledArray<T> shared = pooled<T>(ceil_div(std::min(NC, N), NR) * NR * std::min(KC, K));
    const index_t tiles = ceil_div(M, uk.mr);
    for (index_t jc = 0; jc < N; jc += NC) {
        const index_t nc = std::min(NC, N - jc);
        for (index_t pc = 0; pc < K; pc += KC) {
            const index_t kc = std::min(KC, K - pc);
            const T* bblock = op.b + pc * op.rs_b + jc * op.cs_b;
            T* panels = shared.get();
            parallel_for(ceil_div(nc, NR), nt, [&](index_t j) {
                const index_t jr = j * NR;
                uk.pack_b(kc, std::min(NR, nc - jr), bblock + jr * op.cs_b, op.rs_b, op.cs_b, panels + j * kc * NR);
            });
            const auto panel = [&](index_t jr, index_t) -> std::pair<const T*, index_t> {
                return {panels + (jr / NR) * kc * NR, NR};
            };
            parallel_ranges(tiles, 1, nt, kGemmTasksPerThread, [&](index_t first, index_t last) {
                const index_t m0 = std::min(M, first * uk.mr), m1 = std::min(M, last * uk.mr);
                T* abuf = pack_a_buffer(uk, plan, m1 - m0, K);
                multiply_rows(uk, op, plan, m0, m1, jc, nc, pc, kc, panel, abuf, nullptr, epilogue);
            });
        }
    }
}

// Which operands to pack. The microkernel reads B rows as vectors, so a transposed B is always packed.
// A plain B is read in place while few row tiles share each B panel (measured faster up to M ~ 256-384 on
// a Zen 4, with the next block prefetched) and B is small enough to stay in a core's L2 between calls; a
// larger B is packed whatever M (on a Sapphire Rapids-class Xeon: 32 x 4096 x 4096 1.46x, 64 x 4096 x 4096
// 1.67x, the LSTM weight gradient 318 x 800 x 1024 1.34x faster packed; a 60 x 784 x 89 Dense layer,
// 279 KiB of B, 0.80x). Likewise A is read in place when fewer than 8 column tiles share each A panel
// (N < 8 NR: e.g. the per-step recurrent GEMMs and the convolution GEMMs, measured 4-18% faster;
// packs_a). Below ~64^3 multiply-adds nothing is packed. A plain B whose rows lie a multiple of 4 KiB apart
// is packed too: read in place, all its rows fall in the same few L1 sets (64 x 256 x 1024: 229 -> 289
// GFLOP/s packed).
template <typename T>
PackPlan choose_packing(index_t M, index_t N, index_t K, bool trans_b, index_t ldb, index_t nr) {
    const bool small = M * N * K <= index_t(64) * 64 * 64;
    constexpr index_t kPackBRows = 384;
    constexpr index_t kInPlaceBBytes = index_t(1) << 20;
    constexpr index_t kAliasingStride = 4096;
    const bool aliasing_rows = (ldb * index_t(sizeof(T))) % kAliasingStride == 0;
    const bool large_b = K * N * index_t(sizeof(T)) > kInPlaceBBytes || aliasing_rows;
    return {!small && packs_a(N, nr), trans_b || (!small && (M > kPackBRows || large_b))};
}

}  // namespace

// A product with a small c (M <= 64 rows, N <= 128 columns) over a long K, such as a Dense layer's forward
// on a batch, is computed as two halves of K instead: split along M, every thread would read all of B, which
// in a training step the other core has just updated (the optimizer step splits the weights by rows, which
// are K here, as the weight gradient's GEMM does); split along K, each thread reads only its half of B and
// of A's columns, both in its own cache. The split point is a multiple of 16 near K / 2.
inline bool splits_k(index_t M, index_t N, index_t K) {
    return M <= 64 && N <= 128 && K >= 512;
}

// c = act(A[:, :k0] B[:k0] + A[:, k0:] B[k0:] + bias): the first half written into c, the second into a
// scratch (M, N) block, one half per thread; then the halves are added and the epilogue applied, by rows.
template <typename T>
void gemm_split_k(const MicroKernel<T>& uk, const Operands<T>& op, const PackPlan& plan, index_t M, index_t N,
                  const GemmEpilogue<T>& epilogue) {
    const index_t K = op.K, k0 = K / 32 * 16;
    PooledArray<T> second = pooled<T>(M * N);
    Operands<T> lo = op, hi = op;
    lo.K = k0;
    hi.a += k0 * op.cs_a;
    hi.b += k0 * op.rs_b;
    hi.c = second.get();
    hi.ldc = N;
    hi.K = K - k0;
    const GemmEpilogue<T> none{nullptr, Activation::linear};
    const int nt = static_cast<int>(std::min<index_t>(threads_for(M * N * K, index_t(1) << 17), 2));
    parallel_for(2, nt, [&](index_t half) { gemm_range(uk, half == 0 ? lo : hi, plan, 0, M, 0, N, none); });
    const T* rest = second.get();
    parallel_ranges(M, 1, nt, 1, [&](index_t i0, index_t i1) {
        for (index_t i = i0; i < i1; ++i) {
            T* row = op.c + i * op.ldc;
            for (index_t j = 0; j < N; ++j) row[j] += rest[i * N + j];
            apply_epilogue(row, op.ldc, 1, N, epilogue.bias, epilogue.act);
        }
    });
}

template <typename T>
void gemm_blocked(const MicroKernel<T>& uk, index_t M, index_t N, index_t K, const T* a, index_t lda, bool trans_a,
                  const T* b, index_t ldb, bool trans_b, T* c, index_t ldc, const GemmEpilogue<T>& epilogue) {
    // a is (M, K) [(K, M) if trans_a], b is (K, N) [(N, K) if trans_b], c is (M, N)
    const Operands<T> op{a, trans_a ? 1 : lda, trans_a ? lda : 1, b, trans_b ? 1 : ldb, trans_b ? ldb : 1, c, ldc, K};
    const PackPlan plan = choose_packing<T>(M, N, K, trans_b, ldb, uk.nr);
    if (splits_k(M, N, K)) {
        gemm_split_k(uk, op, plan, M, N, epilogue);
        return;
    }

    // Work split: whole register tiles along the dimension with more of them.
    const index_t tiles_m = ceil_div(M, uk.mr), tiles_n = ceil_div(N, uk.nr);
    const bool split_n = tiles_n >= tiles_m;
    const index_t tiles = split_n ? tiles_n : tiles_m;
    const int nt = static_cast<int>(std::min<index_t>(threads_for(M * N * K, index_t(1) << 17), tiles));
    if (nt <= 1) {
        gemm_range(uk, op, plan, 0, M, 0, N, epilogue);
        return;
    }
    if (!split_n && plan.pack_b) {
        gemm_rows_on_shared_b(uk, op, plan, M, N, nt, epilogue);
        return;
    }
    // whole register tiles, claimed in ranges at run time (a range's results do not depend on who runs it)
    parallel_ranges(tiles, 1, nt, kGemmTasksPerThread, [&](index_t first, index_t last) {
        if (split_n) {
            gemm_range(uk, op, plan, 0, M, std::min(N, first * uk.nr), std::min(N, last * uk.nr), epilogue);
        } else {
            gemm_range(uk, op, plan, std::min(M, first * uk.mr), std::min(M, last * uk.mr), 0, N, epilogue);
        }
    });
}

template void gemm_blocked<float>(const MicroKernel<float>&, index_t, index_t, index_t, const float*, index_t, bool,
                                  const float*, index_t, bool, float*, index_t, const GemmEpilogue<float>&);
template void gemm_blocked<double>(const MicroKernel<double>&, index_t, index_t, index_t, const double*, index_t,
                                   bool, const double*, index_t, bool, double*, index_t, const GemmEpilogue<double>&);

}  // namespace fastdl
