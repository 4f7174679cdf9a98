// conv_direct.cpp — the direct forward pass and weight gradient of conv_direct.hpp.
//
//   y[b, o, y, x]     = act(sum over (c, p, q) of w[c, o, p, q] * xpad_b[c, y + p, x + q])
//   grad_w[c, o, p, q] = sum_b sum_y sum_x grad_y[b, o, y, x] * xpad_b[c, y + p, x + q]
//
// Forward: tasks of (image, band of output rows), so no sums cross threads; 16 outputs of one row per register
// and 16 output channels at a time, every tap's weight broadcast into its FMA; the activation is applied to the
// image's outputs while they are in cache.
//
// Weight gradient:
// Vectorised along x, 16 outputs per register. For one image, input channel c and kernel row p, a block of O
// output channels keeps O x K accumulators (one per o and q) while it walks every (y, x-vector): O loads of
// grad_y and K shifted loads of the padded input feed O*K FMAs. Lanes past W_out load grad_y as zero, so the
// padded row's tail never counts. Each image's sums are reduced across lanes and added to its chunk's partial
// sums; the chunks (fixed by the batch size) are added in order at the end.
#include "ops/conv_direct.hpp"

#include <algorithm>
#include <vector>

#include "core/vec_math.hpp"
#include "gemm/epilogue.hpp"
#include "ops/activations.hpp"
#include "ops/conv_tasks.hpp"
#include "ops/conv_wide.hpp"
#include "ops/winograd.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace fastdl {

namespace {

constexpr index_t kLanes = 16;  // floats per 512-bit register

// Padded images of one image's channels: rows of Hp = H_out + K - 1, each Wp = nvec*16 + K wide (zeros
// around the image, and past its right edge far enough for the last vector's shifted loads).
struct PaddedGeometry {
    index_t nvec, Hp, Wp;
    explicit PaddedGeometry(const ConvShape& s)
        : nvec(ceil_div(s.W_out, kLanes)), Hp(s.H_out + s.K - 1), Wp(ceil_div(s.W_out, kLanes) * kLanes + s.K) {}
    index_t channel_size() const { return Hp * Wp; }
    // the buffer conv_detail::pad_band fills for a whole image: C_in channels, then K - 1 zeros
    index_t buffer_size(const ConvShape& s) const { return s.C_in * channel_size() + s.K - 1; }
};

// xpad (C_in, Hp, Wp) <- image x_b (C_in, H, W), every output row's inputs with the convolution's padding.
void pad_image(const ConvShape& s, const PaddedGeometry& g, const float* x_b, float* xpad) {
    conv_detail::pad_band(s, x_b, 0, s.H_out, g.Wp, xpad);
}

#if defined(__x86_64__)
#pragma GCC push_options
#pragma GCC target("avx512f")

// acc (O, K) += sum over (y, x-vector) of dy_o[y, x] * xrow_p[y + p... ] for one image, channel c, kernel row p,
// output channels [o0, o0 + O). dy is grad_y[b] (C_out, H_out, W_out); xc is xpad[c] (Hp, Wp). Adds the
// lane sums into g (C_in, C_out, K, K) at [c, o0 + o, p, q].
template <int K, int O>
void taps_block(const ConvShape& s, const PaddedGeometry& g, const float* dy, const float* xc, index_t c, index_t p,
                index_t o0, float* gsum) {
    __m512 acc[O][K];
#pragma GCC unroll 8
    for (int o = 0; o < O; ++o)
#pragma GCC unroll 8
        for (int q = 0; q < K; ++q) acc[o][q] = _mm512_setzero_ps();
    const index_t P = s.H_out * s.W_out;
    for (index_t y = 0; y < s.H_out; ++y) {
        const float* xrow = xc + (y + p) * g.Wp;
        const float* dyrow = dy + o0 * P + y * s.W_out;
        for (index_t v = 0; v < g.nvec; ++v) {
            const index_t x0 = v * kLanes, left = s.W_out - x0;
            const __mmask16 m = left >= kLanes ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
            __m512 d[O];
#pragma GCC unroll 8
            for (int o = 0; o < O; ++o) d[o] = _mm512_maskz_loadu_ps(m, dyrow + o * P + x0);
#pragma GCC unroll 8
            for (int q = 0; q < K; ++q) {
                // lanes past W_out load zero from the image too: 0 * (an Inf or NaN beyond the row) must not count
                const __m512 xs = _mm512_maskz_loadu_ps(m, xrow + x0 + q);
#pragma GCC unroll 8
                for (int o = 0; o < O; ++o) acc[o][q] = _mm512_fmadd_ps(d[o], xs, acc[o][q]);
            }
        }
    }
#pragma GCC unroll 8
    for (int o = 0; o < O; ++o)
#pragma GCC unroll 8
        for (int q = 0; q < K; ++q)
            gsum[((c * s.C_out + o0 + o) * K + p) * K + q] += _mm512_reduce_add_ps(acc[o][q]);
}

// One image's contribution to gsum (C_in, C_out, K, K): blocks of O output channels, then single ones.
template <int K>
void image_taps(const ConvShape& s, const PaddedGeometry& g, const float* dy, const float* xpad, float* gsum) {
    constexpr int O = K <= 6 ? 4 : 2;  // O*K accumulators + O + 1 registers stay within the 32 zmm
    for (index_t c = 0; c < s.C_in; ++c)
        for (index_t p = 0; p < K; ++p) {
            const float* xc = xpad + c * g.channel_size();
            index_t o0 = 0;
            for (; o0 + O <= s.C_out; o0 += O) taps_block<K, O>(s, g, dy, xc, c, p, o0, gsum);
            for (; o0 < s.C_out; ++o0) taps_block<K, 1>(s, g, dy, xc, c, p, o0, gsum);
        }
}

using ImageTapsFn = void (*)(const ConvShape&, const PaddedGeometry&, const float*, const float*, float*);

ImageTapsFn image_taps_for(index_t K) {
    switch (K) {
        case 1: return &image_taps<1>;
        case 2: return &image_taps<2>;
        case 3: return &image_taps<3>;
        case 4: return &image_taps<4>;
        case 5: return &image_taps<5>;
        case 6: return &image_taps<6>;
        default: return &image_taps<7>;
    }
}

// y rows (o0 .. o0 + O) of one image, output row yo, x-vector v: y[o, yo, x] = sum over (c, p, q) of
// wt[((c*K + p)*K + q)*C_out + o] * xpad[c, yo + p, x + q]; the weights of one tap are adjacent.
template <int O>
void forward_block(const ConvShape& s, const PaddedGeometry& g, const float* wt, const float* xpad, index_t yo,
                   index_t v, index_t o0, float* y) {
    __m512 acc[O];
#pragma GCC unroll 16
    for (int o = 0; o < O; ++o) acc[o] = _mm512_setzero_ps();
    const index_t x0 = v * kLanes, K = s.K;
    for (index_t c = 0; c < s.C_in; ++c)
        for (index_t p = 0; p < K; ++p) {
            const float* xrow = xpad + c * g.channel_size() + (yo + p) * g.Wp + x0;
            const float* wtap = wt + ((c * K + p) * K) * s.C_out + o0;
            for (index_t q = 0; q < K; ++q) {
                const __m512 xs = _mm512_loadu_ps(xrow + q);
#pragma GCC unroll 16
                for (int o = 0; o < O; ++o) acc[o] = _mm512_fmadd_ps(_mm512_set1_ps(wtap[q * s.C_out + o]), xs, acc[o]);
            }
        }
    const index_t left = s.W_out - x0;
    const __mmask16 m = left >= kLanes ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
    const index_t P = s.pixels_out();
#pragma GCC unroll 16
    for (int o = 0; o < O; ++o) _mm512_mask_storeu_ps(y + (o0 + o) * P + yo * s.W_out + x0, m, acc[o]);
}

// Output rows [r0, r1) of one image: y_b (C_out, H_out, W_out) from xpad (C_in, Hp, Wp), blocks of 16 output
// channels (one input load per 16 FMAs), then 4, then single ones.
void forward_rows(const ConvShape& s, const PaddedGeometry& g, const float* wt, const float* xpad, index_t r0,
                  index_t r1, float* y_b) {
    for (index_t yo = r0; yo < r1; ++yo)
        for (index_t v = 0; v < g.nvec; ++v) {
            index_t o0 = 0;
            for (; o0 + 16 <= s.C_out; o0 += 16) forward_block<16>(s, g, wt, xpad, yo, v, o0, y_b);
            for (; o0 + 4 <= s.C_out; o0 += 4) forward_block<4>(s, g, wt, xpad, yo, v, o0, y_b);
            for (; o0 < s.C_out; ++o0) forward_block<1>(s, g, wt, xpad, yo, v, o0, y_b);
        }
}

#pragma GCC pop_options
#endif

// The shapes both direct paths serve (float32, AVX-512 vectors, the algorithm not forced).
bool direct_fits(const ConvShape& s) {
#if defined(__x86_64__)
    return active_vec_isa() == VecIsa::avx512 && conv_algorithm_automatic() && s.stride == 1 && s.K >= 1 &&
           s.K <= 7 && s.C_in >= 1 && s.ckk() <= 64 && s.W_out >= 8 && s.C_out >= 1;
#else
    (void)s;
    return false;
#endif
}

// Forward tasks: (image, band of output rows), at least 8 in all when the batch is small, the bands fixed
// by the shape alone.
index_t forward_band_rows(const ConvShape& s) {
    const index_t bands = std::min(s.H_out, ceil_div(index_t(8), std::max<index_t>(s.B, 1)));
    return ceil_div(s.H_out, std::max<index_t>(bands, 1));
}

}  // namespace

bool use_direct_forward(const ConvShape& s) { return direct_fits(s); }

void direct_forward(const ConvShape& s, const float* x, const float* w, float* y, Activation act,
                    const DropoutEpilogue* dropout) {
    // x is (B, C_in, H, W), w is (C_in, C_out, K, K) -> y (B, C_out, H_out, W_out) = act(conv(x, w)),
    // then times its keep mask when dropout is set
#if defined(__x86_64__)
    if (s.B == 0 || s.C_out == 0 || s.pixels_out() == 0) return;
    const PaddedGeometry g(s);
    const index_t kk = s.kk(), P = s.pixels_out();
    std::vector<float> wt(static_cast<size_t>(s.ckk() * s.C_out));  // wt[(c*K*K + tap) * C_out + o] = w[c, o, tap]
    for (index_t c = 0; c < s.C_in; ++c)
        for (index_t o = 0; o < s.C_out; ++o)
            for (index_t t = 0; t < kk; ++t) wt[(c * kk + t) * s.C_out + o] = w[(c * s.C_out + o) * kk + t];
    const index_t band = forward_band_rows(s), bands = ceil_div(s.H_out, band), tasks = s.B * bands;
    const int nt = conv_detail::conv_threads(tasks, s.B * P * s.C_out * s.ckk());
    const conv_detail::ThreadScratch<float, 1> scratch(nt, {g.buffer_size(s)});
    parallel_for(tasks, nt, [&](index_t task) {
        const index_t b = task / bands, r0 = (task % bands) * band, r1 = std::min(s.H_out, r0 + band);
        float* xpad = scratch.buffers()[0];
        float* y_b = y + b * s.C_out * P;
        pad_image(s, g, x + b * s.C_in * s.H * s.W, xpad);
        forward_rows(s, g, wt.data(), xpad, r0, r1, y_b);
        // the band's outputs, while they are in cache: C_out rows of (r1 - r0) * W_out values, P apart
        apply_epilogue(y_b + r0 * s.W_out, P, s.C_out, (r1 - r0) * s.W_out, static_cast<const float*>(nullptr), act);
        if (dropout) {  // and the dropout: element e of y draws mask element first + e
            for (index_t o = 0; o < s.C_out; ++o) {
                const index_t e = (b * s.C_out + o) * P + r0 * s.W_out;
                dropout_forward_block(y + e, y + e, dropout->mask + e, (r1 - r0) * s.W_out,
                                      dropout->first + static_cast<std::uint64_t>(e), dropout->key,
                                      dropout->threshold);
            }
        }
    });
#else
    (void)x, (void)w, (void)y, (void)act, (void)dropout;
#endif
}

// The weight gradient sums images in chunks of whole images: with a single image the banded im2col path,
// which splits rows across threads, is kept.
template <typename T>
bool use_direct_grad_w(const ConvShape& s) {
    return sizeof(T) == sizeof(float) && s.B >= 2 && direct_fits(s);
}

void direct_grad_w(const ConvShape& s, const float* x, const float* grad_y, float* grad_w,
                   const OutputGrad<float>* through) {
    // x is (B, C_in, H, W), grad_y is (B, C_out, H_out, W_out) -> grad_w (C_in, C_out, K, K); with `through`,
    // each image's output gradient is first taken through the activation and the mask, into a per-thread buffer
    const index_t gsize = s.C_in * s.C_out * s.kk();
    std::fill(grad_w, grad_w + gsize, 0.0f);
#if defined(__x86_64__)
    if (s.B == 0 || gsize == 0) return;
    const PaddedGeometry g(s);
    const index_t chunks = std::min(s.B, conv_detail::kGradWChunks);
    const int nt = conv_detail::conv_threads(chunks, s.B * s.pixels_out() * gsize);
    std::vector<float> partial(static_cast<size_t>(chunks * gsize), 0.0f);
    const index_t image_out = s.C_out * s.pixels_out();  // one image's output gradient (C_out, H_out, W_out)
    const conv_detail::ThreadScratch<float, 2> scratch(nt, {g.buffer_size(s), through ? image_out : 0});
    const ImageTapsFn taps = image_taps_for(s.K);
    parallel_for(chunks, nt, [&](index_t chunk) {
        const auto buffers = scratch.buffers();
        float* xpad = buffers[0];
        float* gsum = partial.data() + chunk * gsize;
        for (index_t b = s.B * chunk / chunks; b < s.B * (chunk + 1) / chunks; ++b) {
            pad_image(s, g, x + b * s.C_in * s.H * s.W, xpad);
            const float* grad_b = grad_y + b * image_out;
            if (through) {  // dz_b = act'(y_b) * grad_b [* mask_b], while it fits in this core's cache
                activation_backward_block(through->act, through->y + b * image_out, grad_b,
                                          through->mask ? through->mask + b * image_out : nullptr, buffers[1],
                                          image_out);
                grad_b = buffers[1];
            }
            taps(s, g, grad_b, xpad, gsum);
        }
    });
    for (index_t chunk = 0; chunk < chunks; ++chunk)
        for (index_t e = 0; e < gsize; ++e) grad_w[e] += partial[chunk * gsize + e];
#else
    (void)x, (void)grad_y;
#endif
}

template bool use_direct_grad_w<float>(const ConvShape&);
template bool use_direct_grad_w<double>(const ConvShape&);

}  // namespace fastdl
