// conv_wide.hpp — im2col for stride-1 convolutions on a "wide" output grid, for conv.cpp.
//
// The input rows a band of output rows needs are first copied into a zero-padded buffer whose rows are
// Wp = pad_left + W + pad_right wide. On that buffer, patch row (c, p, q) of the im2col matrix is ONE
// contiguous run: cols[(c*K + p)*K + q, ii*Wp + j] = xpad[c, ii + p, j + q]. The GEMM then yields Wp outputs
// per image row, of which the first W_out are the real ones and the last K - 1 are discarded (or, for the
// weight gradient, multiplied by zeros). This trades (K - 1) / Wp extra GEMM work for an im2col made of
// C_in*K*K long copies instead of C_in*K*K*rows short, bounds-checked ones.
#pragma once

#include <algorithm>
#include <cstring>

#include "ops/conv.hpp"

namespace fastdl {
namespace conv_detail {

// Padded row width Wp; only stride-1 shapes use the wide grid (then W_out = Wp - K + 1).
inline index_t padded_width(const ConvShape& s) { return s.pad_left + s.W + s.pad_right; }

// Elements of the padded band buffer for `rows` output rows: C_in channels of (rows + K - 1, Wp), plus K - 1
// zeros after them (the last patch runs read up to K - 1 elements past their channel: wide columns only).
inline index_t padded_band_size(const ConvShape& s, index_t rows) {
    return s.C_in * (rows + s.K - 1) * padded_width(s) + s.K - 1;
}

// x_b is one image (C_in, H, W) -> xpad (C_in, rows + K - 1, Wp) for output rows [i0, i1), rows = i1 - i0:
// xpad[c, r, u] = x[c, i0 + r - pad_top, u - pad_left] inside the image, else 0; then K - 1 zeros. Rows are
// Wp >= padded_width(s) wide (wider rows end in more zeros).
template <typename T>
void pad_band(const ConvShape& s, const T* x_b, index_t i0, index_t i1, index_t Wp, T* xpad) {
    const index_t rows_in = i1 - i0 + s.K - 1;
    for (index_t c = 0; c < s.C_in; ++c) {
        const T* xc = x_b + c * s.H * s.W;
        T* out = xpad + c * rows_in * Wp;
        for (index_t r = 0; r < rows_in; ++r) {
            T* row = out + r * Wp;
            const index_t ih = i0 + r - s.pad_top;
            if (ih < 0 || ih >= s.H) {
                std::fill(row, row + Wp, T(0));
                continue;
            }
            std::fill(row, row + s.pad_left, T(0));
            std::memcpy(row + s.pad_left, xc + ih * s.W, static_cast<size_t>(s.W) * sizeof(T));
            std::fill(row + s.pad_left + s.W, row + Wp, T(0));
        }
    }
    std::fill(xpad + s.C_in * rows_in * Wp, xpad + s.C_in * rows_in * Wp + s.K - 1, T(0));
}

// pad_band on rows of padded_width(s): the wide grid's layout.
template <typename T>
void pad_band(const ConvShape& s, const T* x_b, index_t i0, index_t i1, T* xpad) {
    pad_band(s, x_b, i0, i1, padded_width(s), xpad);
}

// xpad from pad_band for `rows` output rows -> cols (C_in*K*K, nw), nw = rows * Wp.
template <typename T>
void im2col_wide(const ConvShape& s, const T* xpad, index_t rows, T* cols) {
    const index_t Wp = padded_width(s), nw = rows * Wp, channel = (rows + s.K - 1) * Wp;
    for (index_t c = 0; c < s.C_in; ++c)
        for (index_t p = 0; p < s.K; ++p)
            for (index_t q = 0; q < s.K; ++q)
                std::memcpy(cols + ((c * s.K + p) * s.K + q) * nw, xpad + c * channel + p * Wp + q,
                            static_cast<size_t>(nw) * sizeof(T));
}

// The real outputs of a wide band: ywide (C_out, nw) -> y_band (C_out, rows * W_out) with row stride P.
template <typename T>
void compact_wide(const ConvShape& s, const T* ywide, index_t rows, T* y_band) {
    const index_t Wp = padded_width(s), nw = rows * Wp, P = s.pixels_out();
    for (index_t o = 0; o < s.C_out; ++o)
        for (index_t ii = 0; ii < rows; ++ii)
            std::memcpy(y_band + o * P + ii * s.W_out, ywide + o * nw + ii * Wp,
                        static_cast<size_t>(s.W_out) * sizeof(T));
}

// dy_band (C_out, rows * W_out) with row stride P -> dy_t (nw, C_out) on the wide grid, zero in the K - 1
// discarded columns of each row (so their garbage patches add nothing to the weight gradient).
template <typename T>
void transpose_wide(const ConvShape& s, const T* dy_band, index_t rows, T* dy_t) {
    const index_t Wp = padded_width(s), P = s.pixels_out();
    for (index_t ii = 0; ii < rows; ++ii) {
        T* out = dy_t + ii * Wp * s.C_out;
        for (index_t j = 0; j < s.W_out; ++j)
            for (index_t o = 0; o < s.C_out; ++o) out[j * s.C_out + o] = dy_band[o * P + ii * s.W_out + j];
        std::fill(out + s.W_out * s.C_out, out + Wp * s.C_out, T(0));
    }
}

}  // namespace conv_detail
}  // namespace fastdl
