// conv.cpp — conv2d forward and backward as banded im2col + GEMM (fastdl::gemm), float32 and float64; the 3x3
// stride-1 convolutions that use_winograd picks go to winograd.cpp instead (forward, grad_x as a forward, grad_w),
// and the weight gradient of stride-1 convolutions with few input taps to conv_direct.cpp.
//
// Work is split into tasks of one band of rows of one image, so a batch of 1 still keeps every thread
// busy; each thread owns one cache-sized patch buffer (kBufferBytes) that it reuses for all its tasks.
//   forward : y_b[:, band] (C_out, n)        = wt (C_out, C_in*K*K) @ cols (C_in*K*K, n)   + activation
//   grad_w  : G^T (C_in*K*K, C_out)         += cols (C_in*K*K, n) @ dy_b[:, band]^T (n, C_out)
//   grad_x  : dcols (c*K*K, n)               = w2 (c*K*K, C_out) @ dy_b[:, band] (C_out, n), then col2im
// Stride 1 builds cols on the wide grid of conv_wide.hpp (a padded copy of the band, then one contiguous
// copy per patch row), and computes grad_x as a forward correlation of grad_y with the flipped kernel
// when the paddings allow it (no scatter-add). The band plans depend on the shapes only, never on the
// thread count, so all results are identical for any number of threads.

#include "ops/conv.hpp"

#include <algorithm>
#include <memory>
#include <type_traits>
#include <vector>

#include "ops/activations.hpp"
#include "ops/conv_direct.hpp"
#include "ops/conv_patches.hpp"
#include "ops/conv_tasks.hpp"
#include "ops/conv_wide.hpp"
#include "gemm/gemm.hpp"
#include "gemm/epilogue.hpp"
#include "ops/winograd.hpp"

namespace fastdl {

namespace {

using conv_detail::col2im_band;
using conv_detail::floor_div;
using conv_detail::im2col_band;
using conv_detail::conv_threads;
using conv_detail::kGradWChunks;
using conv_detail::kMinTasks;
using conv_detail::padded_width;
using conv_detail::RowBands;
using conv_detail::split_rows;
using conv_detail::ThreadScratch;

constexpr index_t kBufferBytes = index_t(256) * 1024;  // one thread's patch buffer: well inside L2

// The wide-grid path (conv_wide.hpp) serves stride-1 convolutions.
bool use_wide_grid(const ConvShape& s) { return s.stride == 1; }

// Bands of output rows for im2col: the patch buffer (C_in*K*K, rows*row_width) fits kBufferBytes (at least
// one row). row_width is W_out, or Wp on the wide grid.
template <typename T>
RowBands output_bands(const ConvShape& s, index_t row_width) {
    const index_t budget = kBufferBytes / index_t(sizeof(T));
    return split_rows(s.H_out, budget / std::max<index_t>(1, s.ckk() * row_width), s.B);
}

// w is (C_in, C_out, K, K) -> wt (C_out, C_in*K*K): wt[o, (c*K + p)*K + q] = w[c, o, p, q]
template <typename T>
std::vector<T> weights_by_output(const ConvShape& s, const T* w) {
    const index_t kk = s.kk(), ckk = s.ckk();
    std::vector<T> wt(static_cast<size_t>(s.C_out * ckk));
    for (index_t c = 0; c < s.C_in; ++c)
        for (index_t o = 0; o < s.C_out; ++o)
            std::copy(w + (c * s.C_out + o) * kk, w + (c * s.C_out + o + 1) * kk, wt.data() + o * ckk + c * kk);
    return wt;
}

// w is (C_in, C_out, K, K) -> w2 (C_in*K*K, C_out): w2[(c*K + p)*K + q, o] = w[c, o, p, q]
template <typename T>
std::vector<T> weights_by_tap(const ConvShape& s, const T* w) {
    const index_t kk = s.kk();
    std::vector<T> w2(static_cast<size_t>(s.ckk() * s.C_out));
    for (index_t c = 0; c < s.C_in; ++c)
        for (index_t o = 0; o < s.C_out; ++o)
            for (index_t t = 0; t < kk; ++t) w2[(c * kk + t) * s.C_out + o] = w[(c * s.C_out + o) * kk + t];
    return w2;
}

// dy_band is (C_out, n) with row stride P -> dy_t (n, C_out)
template <typename T>
void transpose_band(const T* dy_band, index_t C_out, index_t n, index_t P, T* dy_t) {
    constexpr index_t kBlock = 64;  // pixels per pass: keeps the C_out source streams and dy_t in L1
    for (index_t n0 = 0; n0 < n; n0 += kBlock) {
        const index_t n1 = std::min(n, n0 + kBlock);
        for (index_t o = 0; o < C_out; ++o) {
            const T* src = dy_band + o * P;
            for (index_t k = n0; k < n1; ++k) dy_t[k * C_out + o] = src[k];
        }
    }
}

// x is (B, C_in, H, W), grad_y is (B, C_out, H_out, W_out) -> grad_w (C_in, C_out, K, K).
// Per band, when C_out fills the microkernel's vector width (>= 128 bytes):
//   G^T (C_in*K*K, C_out) = cols (C_in*K*K, n) @ dy_t (n, C_out), an NN GEMM on the forward's row-major
//   im2col (dy's band is transposed into a small buffer first; for stride 1 both on the wide grid, dy_t
//   zero in the discarded columns);
// else (few output channels, e.g. a first layer) the GEMM is run the other way round:
//   G (C_out, C_in*K*K) = dy_b[:, band] (C_out, n) @ cols_t (n, C_in*K*K) on a patch-major im2col.
template <typename T>
void conv2d_grad_w(const ConvShape& s, const T* x, const T* grad_y, T* grad_w) {
    const index_t ckk = s.ckk(), kk = s.kk(), P = s.pixels_out(), gsize = s.C_out * ckk;
    const bool patch_major = s.C_out * index_t(sizeof(T)) < 128;
    const bool wide = !patch_major && use_wide_grid(s);
    std::fill(grad_w, grad_w + gsize, T(0));
    if (s.B == 0 || gsize == 0) return;
    const index_t row_width = wide ? padded_width(s) : s.W_out;
    const RowBands bands = output_bands<T>(s, row_width);
    const index_t tasks = s.B * bands.count;
    const index_t chunks = std::min(tasks, kGradWChunks);
    const int nt = conv_threads(chunks, s.B * P * gsize);
    const index_t cols_size = ckk * bands.rows * row_width, dyt_size = bands.rows * row_width * s.C_out;
    const index_t pad_size = wide ? conv_detail::padded_band_size(s, bands.rows) : 0;
    std::vector<T> partial(static_cast<size_t>(chunks * gsize));  // (chunks, C_in*K*K, C_out) or (chunks, C_out, C_in*K*K)
    const ThreadScratch<T, 4> scratch(nt, {cols_size, dyt_size, gsize, pad_size});
    parallel_for(chunks, nt, [&](index_t chunk) {
        const auto [cols, dy_t, tmp, xpad] = scratch.buffers();
        T* acc = partial.data() + chunk * gsize;
        for (index_t t = tasks * chunk / chunks; t < tasks * (chunk + 1) / chunks; ++t) {
            const index_t b = t / bands.count, i0 = (t % bands.count) * bands.rows;
            const index_t i1 = std::min(s.H_out, i0 + bands.rows), n = (i1 - i0) * row_width;
            const T* x_b = x + b * s.C_in * s.H * s.W;
            const T* dy_band = grad_y + b * s.C_out * P + i0 * s.W_out;  // (C_out, (i1-i0)*W_out), row stride P
            if (patch_major) {
                // cols_t (n, C_in*K*K) from image b, output rows [i0, i1)
                conv_detail::im2col_band_patch_major(s, x_b, i0, i1, cols);
                // tmp (C_out, C_in*K*K) = dy_band (C_out, n) @ cols_t (n, C_in*K*K)
                gemm<T>(s.C_out, ckk, n, dy_band, P, false, cols, ckk, false, tmp, ckk);
            } else {
                // cols (C_in*K*K, n) from image b, output rows [i0, i1); dy_t (n, C_out) = dy_band^T
                if (wide) {
                    conv_detail::pad_band(s, x_b, i0, i1, xpad);
                    conv_detail::im2col_wide(s, xpad, i1 - i0, cols);
                    conv_detail::transpose_wide(s, dy_band, i1 - i0, dy_t);
                } else {
                    im2col_band(s, x_b, i0, i1, cols);
                    transpose_band(dy_band, s.C_out, n, P, dy_t);
                }
                // tmp (C_in*K*K, C_out) = cols (C_in*K*K, n) @ dy_t (n, C_out)
                gemm<T>(ckk, s.C_out, n, cols, n, false, dy_t, s.C_out, false, tmp, s.C_out);
            }
            for (index_t e = 0; e < gsize; ++e) acc[e] += tmp[e];
        }
    });
    // grad_w[c, o, p, q] = sum over chunks, in chunk order, of G[o, (c*K + p)*K + q] (stored as G or G^T)
    for (index_t chunk = 0; chunk < chunks; ++chunk) {
        const T* g = partial.data() + chunk * gsize;
        for (index_t c = 0; c < s.C_in; ++c)
            for (index_t o = 0; o < s.C_out; ++o)
                for (index_t t = 0; t < kk; ++t)
                    grad_w[(c * s.C_out + o) * kk + t] += patch_major ? g[o * ckk + c * kk + t] : g[(c * kk + t) * s.C_out + o];
    }
}

// w is (C_in, C_out, K, K), grad_y is (B, C_out, H_out, W_out) -> grad_x (B, C_in, H, W).
// Tasks are (image, chunk of input channels, band of input rows); each owns its piece of grad_x, so
// col2im never races. A band recomputes the few output rows it shares with its neighbours.
template <typename T>
void conv2d_grad_x(const ConvShape& s, const T* w, const T* grad_y, T* grad_x) {
    const index_t kk = s.kk(), P = s.pixels_out(), HW = s.H * s.W;
    if (s.B == 0 || s.C_in == 0 || HW == 0) return;
    const index_t budget = kBufferBytes / index_t(sizeof(T));
    // channel chunks of `ch` channels: one chunk's dcols for the whole image fits the budget if it can
    index_t ch = std::clamp<index_t>(budget / std::max<index_t>(1, kk * P), 1, s.C_in);
    index_t chunks = ceil_div(s.C_in, ch);
    const index_t want = ceil_div(kMinTasks, s.B);
    if (chunks < want) {
        ch = ceil_div(s.C_in, std::min(s.C_in, want));
        chunks = ceil_div(s.C_in, ch);
    }
    // bands of input rows (only when channels and images are too few), each at least 2K rows high
    const index_t max_bands = std::max<index_t>(1, s.H / (2 * s.K));
    index_t band_h = s.H;
    if (s.B * chunks < kMinTasks) band_h = ceil_div(s.H, std::min(max_bands, ceil_div(kMinTasks, s.B * chunks)));
    const index_t bands = ceil_div(s.H, band_h);
    // output rows per GEMM so that dcols (ch*K*K, rows*W_out) fits the budget
    const index_t rows = std::clamp<index_t>(budget / std::max<index_t>(1, ch * kk * s.W_out), 1, s.H_out);
    const index_t dcols_size = ch * kk * rows * s.W_out;

    const std::vector<T> w2 = weights_by_tap(s, w);  // (C_in*K*K, C_out)
    const index_t tasks = s.B * chunks * bands;
    const int nt = conv_threads(tasks, s.B * P * s.C_out * s.ckk());
    const ThreadScratch<T, 1> scratch(nt, {dcols_size});
    parallel_for(tasks, nt, [&](index_t t) {
        const auto [dcols] = scratch.buffers();
        const index_t b = t / (chunks * bands), chunk = (t / bands) % chunks, band = t % bands;
        const index_t c0 = chunk * ch, c1 = std::min(s.C_in, c0 + ch);
        const index_t h0 = band * band_h, h1 = std::min(s.H, h0 + band_h);
        T* gx_b = grad_x + b * s.C_in * HW;  // (C_in, H, W)
        const T* dy_b = grad_y + b * s.C_out * P;  // (C_out, H_out * W_out)
        for (index_t c = c0; c < c1; ++c) std::fill(gx_b + c * HW + h0 * s.W, gx_b + c * HW + h1 * s.W, T(0));
        // output rows whose taps reach input rows [h0, h1): i*stride + p - pad_top in [h0, h1), p < K
        const index_t i_lo = std::max<index_t>(0, floor_div(h0 + s.pad_top - s.K + s.stride, s.stride));
        const index_t i_hi = std::min(s.H_out, floor_div(h1 - 1 + s.pad_top, s.stride) + 1);
        for (index_t i0 = i_lo; i0 < i_hi; i0 += rows) {
            const index_t i1 = std::min(i_hi, i0 + rows), n = (i1 - i0) * s.W_out;
            // dcols ((c1-c0)*K*K, n) = w2[c0*K*K:c1*K*K, :] (., C_out) @ dy_b[:, i0*W_out:] (C_out, n, stride P)
            gemm<T>((c1 - c0) * kk, n, s.C_out, w2.data() + c0 * kk * s.C_out, s.C_out, false, dy_b + i0 * s.W_out,
                    P, false, dcols, n);
            col2im_band(s, dcols, c0, c1, i0, i1, h0, h1, gx_b);
        }
    });
}

// y_band (C_out, n) with row stride P: the activation on whole rows of n pixels while the band is still in
// cache (one long vector call per channel is much cheaper than the GEMM epilogue's call per register tile).
template <typename T>
void activate_band(const ConvShape& s, T* y_band, index_t n, Activation act) {
    if (act == Activation::linear) return;
    for (index_t o = 0; o < s.C_out; ++o)
        activation_forward_serial<T>(act, y_band + o * s.pixels_out(), y_band + o * s.pixels_out(), n);
}

// x is (B, C_in, H, W), wt is (C_out, C_in*K*K) -> y (B, C_out, H_out, W_out) = act(conv(x, w)); tasks are
// bands of output rows of one image. Stride 1 runs on the wide grid (conv_wide.hpp), else on im2col_band.
template <typename T>
void forward_on_bands(const ConvShape& s, const T* x, const T* wt, T* y, Activation act) {
    const index_t ckk = s.ckk(), P = s.pixels_out();
    const bool wide = use_wide_grid(s);
    const index_t row_width = wide ? padded_width(s) : s.W_out;
    const RowBands bands = output_bands<T>(s, row_width);
    const index_t tasks = s.B * bands.count;
    const int nt = conv_threads(tasks, s.B * P * s.C_out * ckk);
    const index_t cols_size = ckk * bands.rows * row_width;
    const index_t pad_size = wide ? conv_detail::padded_band_size(s, bands.rows) : 0;
    const index_t ywide_size = wide ? s.C_out * bands.rows * row_width : 0;
    const ThreadScratch<T, 3> scratch(nt, {cols_size, pad_size, ywide_size});  // xpad, ywide: the wide grid only
    parallel_for(tasks, nt, [&](index_t t) {
        const auto [cols, xpad, ywide] = scratch.buffers();
        const index_t b = t / bands.count, i0 = (t % bands.count) * bands.rows;
        const index_t i1 = std::min(s.H_out, i0 + bands.rows), n = (i1 - i0) * row_width;
        const T* x_b = x + b * s.C_in * s.H * s.W;
        T* y_band = y + b * s.C_out * P + i0 * s.W_out;  // (C_out, (i1-i0)*W_out), row stride P
        if (wide) {
            conv_detail::pad_band(s, x_b, i0, i1, xpad);
            // cols (C_in*K*K, n) on the wide grid; ywide (C_out, n) = wt (C_out, C_in*K*K) @ cols
            conv_detail::im2col_wide(s, xpad, i1 - i0, cols);
            gemm<T>(s.C_out, n, ckk, wt, ckk, false, cols, n, false, ywide, n);
            conv_detail::compact_wide(s, ywide, i1 - i0, y_band);
        } else {
            // cols (C_in*K*K, n) from image b, output rows [i0, i1); y_band = wt @ cols
            im2col_band(s, x_b, i0, i1, cols);
            gemm<T>(s.C_out, n, ckk, wt, ckk, false, cols, n, false, y_band, P);
        }
        activate_band(s, y_band, (i1 - i0) * s.W_out, act);
    });
}

// x is (B, C_in, H, W), wt is (C_out, C_in*K*K) -> y = act(conv(x, w)): Winograd where use_winograd picks it,
// else im2col + GEMM.
template <typename T>
void forward(const ConvShape& s, const T* x, const T* wt, T* y, Activation act) {
    if (use_winograd<T>(s)) winograd_forward(s, x, wt, y, act);
    else forward_on_bands(s, x, wt, y, act);
}

// For stride 1 with every padding <= K - 1, the input gradient is itself a stride-1 convolution: grad_y
// padded by K - 1 - pad on each side, correlated with the kernel flipped in both axes, channels swapped:
//   grad_x[b, c, h, v] = sum_{o, p, q} w[c, o, K-1-p, K-1-q] * dypad[b, o, h + p, v + q]
// so it runs on the forward's gather path instead of a scatter-add (col2im). This is that convolution's shape.
ConvShape input_grad_shape(const ConvShape& s) {
    const index_t k1 = s.K - 1;
    return make_conv_shape(s.B, s.C_out, s.H_out, s.W_out, s.C_in, s.K, 1, k1 - s.pad_top, k1 - s.pad_bottom,
                           k1 - s.pad_left, k1 - s.pad_right);
}

// Whether grad_x runs as that convolution. On im2col its GEMM has only C_in rows, so it is used when they fill
// whole register tiles (at least 64 bytes of them), or when the convolution runs on Winograd; a first layer
// with few input channels keeps col2im, whose GEMM has C_in*K*K rows.
template <typename T>
bool grad_x_by_correlation(const ConvShape& s) {
    const index_t k1 = s.K - 1;
    const bool fits = s.stride == 1 && s.pad_top <= k1 && s.pad_bottom <= k1 && s.pad_left <= k1 && s.pad_right <= k1;
    return fits && (s.C_in * index_t(sizeof(T)) >= 64 || use_winograd<T>(input_grad_shape(s)));
}

// w is (C_in, C_out, K, K), grad_y is (B, C_out, H_out, W_out) -> grad_x (B, C_in, H, W), when
// grad_x_by_correlation<T>(s).
template <typename T>
void grad_x_correlation(const ConvShape& s, const T* w, const T* grad_y, T* grad_x) {
    const index_t kk = s.kk();
    // wt (C_in, C_out*K*K): wt[c, (o*K + p)*K + q] = w[c, o, K-1-p, K-1-q]
    std::vector<T> wt(static_cast<size_t>(s.C_in * s.C_out * kk));
    for (index_t c = 0; c < s.C_in; ++c)
        for (index_t o = 0; o < s.C_out; ++o)
            for (index_t e = 0; e < kk; ++e) wt[(c * s.C_out + o) * kk + e] = w[(c * s.C_out + o) * kk + (kk - 1 - e)];
    forward(input_grad_shape(s), grad_y, wt.data(), grad_x, Activation::linear);
}

}  // namespace

ConvShape make_conv_shape(index_t B, index_t C_in, index_t H, index_t W, index_t C_out, index_t K, index_t stride,
                          index_t pad_top, index_t pad_bottom, index_t pad_left, index_t pad_right) {
    require(B >= 0 && C_in >= 0 && H >= 0 && W >= 0 && C_out >= 0, "conv2d: negative dimension");
    require(K >= 1, [&] { return "conv2d: kernel size K must be >= 1, got " + std::to_string(K); });
    require(stride >= 1, [&] { return "conv2d: stride must be >= 1, got " + std::to_string(stride); });
    require(pad_top >= 0 && pad_bottom >= 0 && pad_left >= 0 && pad_right >= 0, "conv2d: padding must be >= 0");
    require(H + pad_top + pad_bottom >= K && W + pad_left + pad_right >= K, [&] {
        return "conv2d: the padded image (" + std::to_string(H + pad_top + pad_bottom) + ", " +
               std::to_string(W + pad_left + pad_right) + ") is smaller than the kernel (" + std::to_string(K) + ", " +
               std::to_string(K) + ")";
    });
    ConvShape s;
    s.B = B, s.C_in = C_in, s.H = H, s.W = W, s.C_out = C_out, s.K = K, s.stride = stride;
    s.pad_top = pad_top, s.pad_bottom = pad_bottom, s.pad_left = pad_left, s.pad_right = pad_right;
    s.H_out = (H + pad_top + pad_bottom - K) / stride + 1;
    s.W_out = (W + pad_left + pad_right - K) / stride + 1;
    return s;
}

template <typename T>
void conv2d_forward(const ConvShape& s, const T* x, const T* w, T* y, Activation act,
                    const DropoutEpilogue* dropout) {
    // x is (B, C_in, H, W), w is (C_in, C_out, K, K) -> y is (B, C_out, H_out, W_out) [, dropout->mask like y]
    if (s.B == 0 || s.C_out == 0 || s.pixels_out() == 0) return;
    if constexpr (std::is_same_v<T, float>) {
        if (use_direct_forward(s)) return direct_forward(s, x, w, y, act, dropout);
    }
    const std::vector<T> wt = weights_by_output(s, w);  // (C_out, C_in*K*K)
    forward(s, x, wt.data(), y, act);
    if (dropout)
        dropout_forward_kernel<T>(y, y, dropout->mask, s.B * s.C_out * s.pixels_out(), dropout->first,
                                  dropout->key, dropout->threshold);
}

template <typename T>
void conv2d_backward(const ConvShape& s, const T* x, const T* w, const T* grad_y, T* grad_x, T* grad_w,
                     const OutputGrad<T>* through) {
    // x is (B, C_in, H, W), w is (C_in, C_out, K, K), grad_y is (B, C_out, H_out, W_out)
    // -> grad_x (B, C_in, H, W), grad_w (C_in, C_out, K, K)
    if (through) {
        if constexpr (std::is_same_v<T, float>) {
            if (!grad_x && use_direct_grad_w<T>(s)) return direct_grad_w(s, x, grad_y, grad_w, through);
        }
        // the convolution's output gradient (B, C_out, H_out, W_out), formed once for every algorithm below
        const index_t n = s.B * s.C_out * s.pixels_out();
        auto dz = conv_detail::scratch_array<T>(std::max<index_t>(n, 1));
        activation_backward_kernel<T>(through->act, through->y, grad_y, through->mask, dz.get(), n);
        return conv2d_backward<T>(s, x, w, dz.get(), grad_x, grad_w, nullptr);
    }
    if (use_winograd<T>(s)) {
        winograd_grad_w(s, x, grad_y, grad_w);
    } else if (use_direct_grad_w<T>(s)) {
        if constexpr (std::is_same_v<T, float>) direct_grad_w(s, x, grad_y, grad_w);
    } else {
        conv2d_grad_w(s, x, grad_y, grad_w);
    }
    if (!grad_x || s.B == 0 || s.C_in == 0 || s.H * s.W == 0) return;
    if (grad_x_by_correlation<T>(s)) grad_x_correlation(s, w, grad_y, grad_x);
    else conv2d_grad_x(s, w, grad_y, grad_x);
}

template void conv2d_forward<float>(const ConvShape&, const float*, const float*, float*, Activation,
                                    const DropoutEpilogue*);
template void conv2d_forward<double>(const ConvShape&, const double*, const double*, double*, Activation,
                                     const DropoutEpilogue*);
template void conv2d_backward<float>(const ConvShape&, const float*, const float*, const float*, float*, float*,
                                     const OutputGrad<float>*);
template void conv2d_backward<double>(const ConvShape&, const double*, const double*, const double*, double*,
                                      double*, const OutputGrad<double>*);

}  // namespace fastdl
