// winograd.cpp — winograd_forward and winograd_grad_w (see winograd.hpp), float32 and float64.
//
// Both split the work into tasks of one band of tile rows of one image (a 2x2 output block is a tile),
// sized so that a task's transformed tiles stay in L2. A task:
//   gathers its rows of the padded input channel-last      xp (2*rows + 2, 2*tile_cols + 2, C_in)
//   transforms every tile                                    v (16, n_tiles, C_in)
//   forward: 16 GEMMs  m[e] (n_tiles, C_out) = v[e] (n_tiles, C_in) @ U[e] (C_in, C_out), U packed once per
//            call; then the output transform into a channel-last band, scattered into y with the activation
//   grad_w:  gathers its rows of grad_y and transforms them  ug (16, n_tiles, C_out); then 16 GEMMs
//            acc[e] (C_in, C_out) += v[e]^T (C_in, n_tiles) @ ug[e] (n_tiles, C_out), per chunk of tasks
// The band plan depends on the shapes only, never on the thread count, so neither result does.

#include "ops/winograd.hpp"

#include <atomic>
#include <vector>

#include "core/activation_vector.hpp"
#include "ops/conv_tasks.hpp"
#include "gemm/gemm.hpp"
#include "gemm/packed_b.hpp"
#if defined(__x86_64__)
#include "core/transpose_avx.hpp"
#endif
#include "core/vec_math.hpp"
#include "ops/winograd_tiles.hpp"

namespace fastdl {

namespace {

using conv_detail::conv_threads;
using conv_detail::scratch_array;
using conv_detail::ThreadScratch;

constexpr index_t kTaskBytes = index_t(256) * 1024;  // one task's transformed tiles: inside L2 if they can be
constexpr index_t kMinTaskTiles = 48;                // but never fewer tiles than this: each GEMM's rows or depth
constexpr index_t kMinChannelBytes = 64;             // auto: Winograd when C_in and C_out each fill a 64-byte vector
constexpr index_t kPartialBytes = index_t(8) << 20;  // the weight gradient's partial sums, summed over its chunks
constexpr index_t kPlanes = 16;                      // transformed positions of a 4x4 tile: one GEMM each

enum class Algorithm : int { automatic = 0, im2col = 1, winograd = 2 };
const char* const kAlgorithmNames[] = {"auto", "im2col", "winograd"};

std::atomic<int>& forced_algorithm() {
    static std::atomic<int> state{static_cast<int>(Algorithm::automatic)};
    return state;
}

using winograd::Band;
using winograd::TileGrid;

TileGrid tile_grid(const ConvShape& s) { return {ceil_div(s.H_out, 2), ceil_div(s.W_out, 2)}; }

// Bands of tile rows whose transformed tiles, `channels` values per plane and tile, fit kTaskBytes, unless
// that leaves fewer than kMinTaskTiles tiles.
template <typename T>
conv_detail::RowBands tile_bands(const ConvShape& s, TileGrid g, index_t channels) {
    const index_t budget = kTaskBytes / index_t(sizeof(T));
    const index_t fit = budget / std::max<index_t>(1, kPlanes * channels * g.cols);
    return conv_detail::split_rows(g.rows, std::max(fit, ceil_div(kMinTaskTiles, g.cols)), s.B);
}

// winograd::band_transform compiled for one instruction set: its channel loops vectorise for it, and the AVX
// entries transpose with register blocks.
template <typename T>
using BandFn = void (*)(Band, const ConvShape&, TileGrid, const T*, index_t, index_t, T*, T*);

template <typename T>
[[gnu::flatten]] void band_baseline(Band op, const ConvShape& s, TileGrid g, const T* src, index_t r0, index_t rows,
                                    T* work, T* dst) {
    winograd::band_transform<winograd::PlainTranspose>(op, s, g, src, r0, rows, work, dst);
}

#if defined(__x86_64__)
// winograd::PlainTranspose with 8 x 8 (float) or 4 x 4 (double) register transposes for the whole blocks;
// only used by the AVX2 and AVX-512 entries below.
struct AvxTranspose {
    template <typename T>
    [[gnu::target("avx2")]] static void apply(const T* in, index_t ld_in, T* out, index_t ld_out, index_t rows,
                                              index_t cols) {
        constexpr index_t S = transpose_side<T>;
        const index_t full_rows = rows - rows % S, full_cols = cols - cols % S;
        for (index_t i = 0; i < full_rows; i += S)
            for (index_t j = 0; j < full_cols; j += S)
                transpose_block(in + i * ld_in + j, ld_in, out + j * ld_out + i, ld_out);
        winograd::PlainTranspose::apply(in + full_rows * ld_in, ld_in, out + full_rows, ld_out, rows - full_rows, cols);
        winograd::PlainTranspose::apply(in + full_cols, ld_in, out + full_cols * ld_out, ld_out, full_rows,
                                        cols - full_cols);
    }
};

template <typename T>
[[gnu::target("avx2,fma"), gnu::flatten]] void band_avx2(Band op, const ConvShape& s, TileGrid g, const T* src,
                                                         index_t r0, index_t rows, T* work, T* dst) {
    winograd::band_transform<AvxTranspose>(op, s, g, src, r0, rows, work, dst);
}

template <typename T>
[[gnu::target("avx512f,avx2,fma"), gnu::flatten]] void band_avx512(Band op, const ConvShape& s, TileGrid g,
                                                                   const T* src, index_t r0, index_t rows, T* work,
                                                                   T* dst) {
    winograd::band_transform<AvxTranspose>(op, s, g, src, r0, rows, work, dst);
}
#endif

// The band transforms for the SIMD path the activation and softmax kernels use (vec_math.hpp).
template <typename T>
BandFn<T> band_transforms() {
#if defined(__x86_64__)
    const VecIsa isa = active_vec_isa();
    if (isa == VecIsa::avx512) return &band_avx512<T>;
    if (isa == VecIsa::avx2) return &band_avx2<T>;
#endif
    return &band_baseline<T>;
}

// Whether Winograd can compute this convolution (K = 3, stride 1, any padding, some channels).
bool winograd_fits(const ConvShape& s) { return s.K == 3 && s.stride == 1 && s.C_in > 0 && s.C_out > 0; }

}  // namespace

void force_conv_algorithm(const std::string& name) {
    for (int id = 0; id < 3; ++id) {
        if (name == kAlgorithmNames[id]) {
            forced_algorithm().store(id);
            return;
        }
    }
    throw std::invalid_argument("force_conv_algorithm: unknown algorithm '" + name +
                                "' (known: auto, im2col, winograd)");
}

std::string forced_conv_algorithm() { return kAlgorithmNames[forced_algorithm().load()]; }

bool conv_algorithm_automatic() { return static_cast<Algorithm>(forced_algorithm().load()) == Algorithm::automatic; }

template <typename T>
bool use_winograd(const ConvShape& s) {
    const auto mode = static_cast<Algorithm>(forced_algorithm().load());
    if (!winograd_fits(s) || mode == Algorithm::im2col) return false;
    if (mode == Algorithm::winograd) return true;
    const index_t min_channels = kMinChannelBytes / index_t(sizeof(T));
    const TileGrid g = tile_grid(s);
    return s.C_in >= min_channels && s.C_out >= min_channels && s.B * g.rows * g.cols >= 2 * kMinTaskTiles;
}

template <typename T>
void winograd_forward(const ConvShape& s, const T* x, const T* wt, T* y, Activation act) {
    // x is (B, C_in, H, W), wt is (C_out, C_in*9) -> y is (B, C_out, H_out, W_out)
    if (s.B == 0 || s.pixels_out() == 0) return;
    const index_t Ci = s.C_in, Co = s.C_out, P = s.pixels_out();
    const TileGrid g = tile_grid(s);
    // u (16, C_in, C_out): u[e, c, o] = (G g G^T)[e] of the filter w[c, o]; packed as 16 GEMM B operands
    std::vector<T> u(static_cast<size_t>(kPlanes * Ci * Co));
    for (index_t c = 0; c < Ci; ++c)
        for (index_t o = 0; o < Co; ++o) winograd::filter_tile(wt + o * Ci * 9 + c * 9, u.data() + c * Co + o, Ci * Co);
    const index_t packed_size = PackedB<T>::storage_size(Ci, Co);
    std::vector<T> packed(static_cast<size_t>(kPlanes * packed_size));
    std::vector<PackedB<T>> u_packed;
    u_packed.reserve(kPlanes);
    for (index_t e = 0; e < kPlanes; ++e)
        u_packed.emplace_back(Ci, Co, u.data() + e * Ci * Co, Co, 1, packed.data() + e * packed_size);

    const BandFn<T> band = band_transforms<T>();
    const conv_detail::RowBands bands = tile_bands<T>(s, g, Ci + Co);
    const index_t tasks = s.B * bands.count, max_tiles = bands.rows * g.cols, Wy = 2 * g.cols;
    const index_t xp_size = (2 * bands.rows + 2) * (Wy + 2) * Ci, v_size = kPlanes * max_tiles * Ci;
    const index_t m_size = kPlanes * max_tiles * Co, yt_size = 2 * bands.rows * Wy * Co;
    const int nt = conv_threads(tasks, s.B * P * Co * Ci * 4);
    const ThreadScratch<T, 4> scratch(nt, {xp_size, v_size, m_size, yt_size});
    parallel_for(tasks, nt, [&](index_t t) {
        const auto [xp, v, m, yt] = scratch.buffers();
        const index_t b = t / bands.count, r0 = (t % bands.count) * bands.rows;
        const index_t rows = std::min(g.rows, r0 + bands.rows) - r0, n_tiles = rows * g.cols;
        band(Band::input, s, g, x + b * Ci * s.H * s.W, r0, rows, xp, v);
        // m[e] (n_tiles, C_out) = v[e] (n_tiles, C_in) @ U[e] (C_in, C_out)
        for (index_t e = 0; e < kPlanes; ++e)
            u_packed[e].multiply(n_tiles, v + e * n_tiles * Ci, Ci, m + e * n_tiles * Co, Co);
        T* y_b = y + b * Co * P;
        band(Band::output, s, g, m, r0, rows, yt, y_b);  // y[b, :, 2*r0 : h1, :]
        const index_t h0 = 2 * r0, h1 = std::min(s.H_out, 2 * (r0 + rows));
        if (act != Activation::linear) {
            for (index_t o = 0; o < Co; ++o) {
                T* band = y_b + o * P + h0 * s.W_out;
                activation_forward_serial<T>(act, band, band, (h1 - h0) * s.W_out);
            }
        }
    });
}

template <typename T>
void winograd_grad_w(const ConvShape& s, const T* x, const T* grad_y, T* grad_w) {
    // x is (B, C_in, H, W), grad_y is (B, C_out, H_out, W_out) -> grad_w (C_in, C_out, 3, 3)
    const index_t Ci = s.C_in, Co = s.C_out, P = s.pixels_out(), gsize = Ci * Co;
    if (s.B == 0 || P == 0) {
        std::fill(grad_w, grad_w + gsize * 9, T(0));
        return;
    }
    const TileGrid g = tile_grid(s);
    const BandFn<T> band = band_transforms<T>();
    const conv_detail::RowBands bands = tile_bands<T>(s, g, Ci + Co);
    const index_t tasks = s.B * bands.count, max_tiles = bands.rows * g.cols, Wg = 2 * g.cols;
    const index_t fit = kPartialBytes / (kPlanes * gsize * index_t(sizeof(T)));
    const index_t chunks = std::min(tasks, std::clamp<index_t>(fit, 2, conv_detail::kGradWChunks));
    const index_t xp_size = (2 * bands.rows + 2) * (Wg + 2) * Ci, v_size = kPlanes * max_tiles * Ci;
    const index_t gp_size = 2 * bands.rows * Wg * Co, ug_size = kPlanes * max_tiles * Co;
    const int nt = conv_threads(chunks, s.B * P * Co * Ci * 4);
    auto partial = scratch_array<T>(chunks * kPlanes * gsize);  // (chunks, 16, C_in, C_out)
    const ThreadScratch<T, 5> scratch(nt, {xp_size, v_size, gp_size, ug_size, gsize});
    parallel_for(chunks, nt, [&](index_t chunk) {
        const auto [xp, v, gp, ug, tmp] = scratch.buffers();
        T* acc = partial.get() + chunk * kPlanes * gsize;
        for (index_t t = tasks * chunk / chunks; t < tasks * (chunk + 1) / chunks; ++t) {
            const index_t b = t / bands.count, r0 = (t % bands.count) * bands.rows;
            const index_t rows = std::min(g.rows, r0 + bands.rows) - r0, n_tiles = rows * g.cols;
            band(Band::input, s, g, x + b * Ci * s.H * s.W, r0, rows, xp, v);
            band(Band::grad, s, g, grad_y + b * Co * P, r0, rows, gp, ug);
            // acc[e] (C_in, C_out) += v[e]^T (C_in, n_tiles) @ ug[e] (n_tiles, C_out)
            const bool first = t == tasks * chunk / chunks;
            for (index_t e = 0; e < kPlanes; ++e) {
                T* acc_e = acc + e * gsize;
                T* out = first ? acc_e : tmp;
                gemm<T>(Ci, Co, n_tiles, v + e * n_tiles * Ci, Ci, true, ug + e * n_tiles * Co, Co, false, out, Co);
                if (!first)
                    for (index_t k = 0; k < gsize; ++k) acc_e[k] += tmp[k];
            }
        }
    });
    // the chunks summed in chunk order, then grad_w[c, o] = A3^T (s . sum) A3
    for (index_t chunk = 1; chunk < chunks; ++chunk) {
        const T* part = partial.get() + chunk * kPlanes * gsize;
        for (index_t k = 0; k < kPlanes * gsize; ++k) partial[k] += part[k];
    }
    for (index_t c = 0; c < Ci; ++c)
        for (index_t o = 0; o < Co; ++o)
            winograd::weight_grad_tile(partial.get() + c * Co + o, gsize, grad_w + (c * Co + o) * 9);
}

template bool use_winograd<float>(const ConvShape&);
template bool use_winograd<double>(const ConvShape&);
template void winograd_forward<float>(const ConvShape&, const float*, const float*, float*, Activation);
template void winograd_forward<double>(const ConvShape&, const double*, const double*, double*, Activation);
template void winograd_grad_w<float>(const ConvShape&, const float*, const float*, float*);
template void winograd_grad_w<double>(const ConvShape&, const double*, const double*, double*);

}  // namespace fastdl
