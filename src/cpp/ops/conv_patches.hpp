// conv_patches.hpp — im2col of a band of output rows of one image, and its adjoint col2im
// (scatter-add), for the conv2d kernels in conv.cpp. Padding is never materialised: out-of-image
// taps are written as zeros (im2col) or skipped (col2im).
#pragma once

#include <algorithm>

#include "ops/conv.hpp"

namespace fastdl {
namespace conv_detail {

// floor(a / b) for b > 0 and any sign of a.
inline index_t floor_div(index_t a, index_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// Output columns j whose tap q lands inside the image: j in [lo, hi), 0 <= j*stride + q - pad_left < W.
struct ColumnRange {
    index_t lo, hi;
};

// An empty range is returned as [0, 0), so callers never form a pointer outside the image.
inline ColumnRange valid_columns(const ConvShape& s, index_t q) {
    const index_t lo = std::min(s.W_out, std::max<index_t>(0, floor_div(s.pad_left - q + s.stride - 1, s.stride)));
    const index_t hi = std::min(s.W_out, std::max<index_t>(0, floor_div(s.W - 1 + s.pad_left - q, s.stride) + 1));
    if (hi <= lo) return {0, 0};
    return {lo, hi};
}

// x_b is one image (C_in, H, W); cols is (C_in*K*K, n) with n = (i1 - i0) * W_out:
//   cols[(c*K + p)*K + q, (i - i0)*W_out + j] = xpad[c, i*stride + p, j*stride + q]   for i in [i0, i1).
template <typename T>
void im2col_band(const ConvShape& s, const T* x_b, index_t i0, index_t i1, T* cols) {
    const index_t n = (i1 - i0) * s.W_out;
    const index_t K = s.K, st = s.stride;
    for (index_t c = 0; c < s.C_in; ++c) {
        const T* xc = x_b + c * s.H * s.W;
        for (index_t p = 0; p < K; ++p) {
            for (index_t q = 0; q < K; ++q) {
                T* row = cols + ((c * K + p) * K + q) * n;
                const ColumnRange r = valid_columns(s, q);
                for (index_t i = i0; i < i1; ++i) {
                    T* out = row + (i - i0) * s.W_out;
                    const index_t ih = i * st + p - s.pad_top;
                    if (ih < 0 || ih >= s.H) {
                        std::fill(out, out + s.W_out, T(0));
                        continue;
                    }
                    if (r.hi == 0) {
                        std::fill(out, out + s.W_out, T(0));
                        continue;
                    }
                    // src[(j - lo)*st] is x[c, ih, j*st + q - pad_left], inside the image for j in [lo, hi)
                    const T* src = xc + ih * s.W + r.lo * st + q - s.pad_left;
                    // rows are short (W_out): plain loops beat calls to memset / memmove
                    for (index_t j = 0; j < r.lo; ++j) out[j] = T(0);
                    if (st == 1) {
                        for (index_t j = r.lo; j < r.hi; ++j) out[j] = src[j - r.lo];
                    } else {
                        for (index_t j = r.lo; j < r.hi; ++j) out[j] = src[(j - r.lo) * st];
                    }
                    for (index_t j = r.hi; j < s.W_out; ++j) out[j] = T(0);
                }
            }
        }
    }
}

// Patch-major im2col (the transpose of im2col_band's buffer), as the grad_w GEMM reads it:
// x_b is one image (C_in, H, W); cols_t is (n, C_in*K*K) with n = (i1 - i0) * W_out:
//   cols_t[(i - i0)*W_out + j, (c*K + p)*K + q] = xpad[c, i*stride + p, j*stride + q]   for i in [i0, i1).
template <typename T>
void im2col_band_patch_major(const ConvShape& s, const T* x_b, index_t i0, index_t i1, T* cols_t) {
    const index_t K = s.K, st = s.stride, ckk = s.ckk();
    for (index_t i = i0; i < i1; ++i) {
        for (index_t j = 0; j < s.W_out; ++j) {
            T* patch = cols_t + ((i - i0) * s.W_out + j) * ckk;  // (C_in, K, K)
            const index_t iw0 = j * st - s.pad_left;               // input column of tap q = 0
            const bool inside = iw0 >= 0 && iw0 + K <= s.W;
            for (index_t c = 0; c < s.C_in; ++c) {
                const T* xc = x_b + c * s.H * s.W;
                for (index_t p = 0; p < K; ++p) {
                    T* out = patch + (c * K + p) * K;
                    const index_t ih = i * st + p - s.pad_top;
                    if (ih < 0 || ih >= s.H) {
                        for (index_t q = 0; q < K; ++q) out[q] = T(0);
                    } else if (inside) {  // K is small: a plain loop beats a call to memmove
                        const T* src = xc + ih * s.W + iw0;
                        for (index_t q = 0; q < K; ++q) out[q] = src[q];
                    } else {
                        for (index_t q = 0; q < K; ++q) {
                            const index_t iw = iw0 + q;
                            out[q] = iw >= 0 && iw < s.W ? xc[ih * s.W + iw] : T(0);
                        }
                    }
                }
            }
        }
    }
}

// The adjoint of im2col_band for channels [c0, c1), restricted to input rows [h0, h1):
// dcols is ((c1 - c0)*K*K, n) with n = (i1 - i0) * W_out; gx_b is one image's gradient (C_in, H, W):
//   gx_b[c, ih, iw] += dcols[((c - c0)*K + p)*K + q, (i - i0)*W_out + j]
//   for every (p, q, i, j) with ih = i*stride + p - pad_top in [h0, h1), iw = j*stride + q - pad_left in [0, W).
// Terms reach each gradient element in a fixed order for a given band split (which conv.cpp derives
// from the shapes alone), so the result does not depend on the thread count.
template <typename T>
void col2im_band(const ConvShape& s, const T* dcols, index_t c0, index_t c1, index_t i0, index_t i1, index_t h0,
                 index_t h1, T* gx_b) {
    const index_t n = (i1 - i0) * s.W_out;
    const index_t K = s.K, st = s.stride;
    for (index_t c = c0; c < c1; ++c) {
        T* gc = gx_b + c * s.H * s.W;
        for (index_t p = 0; p < K; ++p) {
            for (index_t q = 0; q < K; ++q) {
                const T* row = dcols + (((c - c0) * K + p) * K + q) * n;
                const ColumnRange r = valid_columns(s, q);
                for (index_t i = i0; i < i1; ++i) {
                    const index_t ih = i * st + p - s.pad_top;
                    if (ih < h0 || ih >= h1 || r.hi == 0) continue;
                    const T* src = row + (i - i0) * s.W_out;
                    // dst[(j - lo)*st] is gx_b[c, ih, j*st + q - pad_left], inside the image for j in [lo, hi)
                    T* dst = gc + ih * s.W + r.lo * st + q - s.pad_left;
                    if (st == 1) {
                        for (index_t j = r.lo; j < r.hi; ++j) dst[j - r.lo] += src[j];
                    } else {
                        for (index_t j = r.lo; j < r.hi; ++j) dst[(j - r.lo) * st] += src[j];
                    }
                }
            }
        }
    }
}

}  // namespace conv_detail
}  // namespace fastdl
