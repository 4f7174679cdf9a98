// winograd_tiles.hpp — the tile transforms of the Winograd 3x3 convolutions in winograd.cpp, and the
// channel-last gathers and scatters around them.
//
// Forward, F(2x2, 3x3): a 2x2 block of outputs from a 4x4 block d of the padded input and a 3x3 filter g,
//   y = A^T [ (G g G^T) . (B^T d B) ] A                       (. is the elementwise product)
// Weight gradient, F(3x3, 2x2): the 3x3 filter gradient from a 4x4 input block d and a 2x2 block e of grad_y,
//   dw = A3^T [ (G2 e G2^T) . (B^T d B) ] A3                  (summed over all blocks before A3 is applied)
// with (rows of each matrix)
//   B^T  = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]            shared by both
//   G    = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]          A^T  = [1 1 1 0; 0 1 -1 -1]
//   G2   = [1 0; 1 1; 1 -1; 0 -1] (the 1/2s of rows 1 and 2 are applied to the summed product instead)
//   A3^T = [1 1 1 0; 0 1 -1 0; 0 1 1 1]
// Every transform works on a run of n channels at once, stored innermost (channel-last), so its loop over
// the channels is a plain vectorisable loop. The 16 transformed values (xi, nu) of a tile go to 16 separate
// planes, `plane` elements apart: plane xi*4 + nu holds the operand of one of the 16 GEMMs.
#pragma once

#include <algorithm>
#include <type_traits>

#include "ops/conv.hpp"

namespace fastdl {
namespace winograd {

// The scale that G2 leaves out of transformed position k (0..3) of either axis.
template <typename T>
inline T grad_scale(int k) {
    return (k == 1 || k == 2) ? T(0.5) : T(1);
}

// Channels per block of the tile transforms: one 64-byte vector, then one 32-byte vector. Whole blocks run
// with a compile-time trip count, which the compiler turns into vector code; the channels left after them
// run the same code one at a time.
template <typename T>
constexpr index_t kLanes = index_t(64 / sizeof(T));

// block(c, L) on channels [c, c + L) for whole blocks of kLanes<T>, then of kLanes<T> / 2; then block(c, n - c)
// on the rest, if any.
template <typename T, class Block>
inline void channel_blocks(index_t n, Block block) {
    constexpr index_t L = kLanes<T>, H = L / 2;
    index_t c = 0;
    for (; c + L <= n; c += L) block(c, std::integral_constant<index_t, L>{});
    for (; c + H <= n; c += H) block(c, std::integral_constant<index_t, H>{});
    if (c < n) block(c, n - c);
}

// d[r][s][c] = d[r * rs + s * cs + c] (a 4x4 block, n <= L channels) -> v[(xi*4 + nu) * plane + c] = (B^T d B)[xi][nu]
template <typename T, index_t L>
inline void input_block(const T* __restrict d, index_t rs, index_t cs, index_t n, T* __restrict v, index_t plane) {
    T t[4][4][L];  // t = B^T d
    for (int s = 0; s < 4; ++s) {
        const T* col = d + s * cs;
        for (index_t c = 0; c < n; ++c) {
            const T d0 = col[c], d1 = col[rs + c], d2 = col[2 * rs + c], d3 = col[3 * rs + c];
            t[0][s][c] = d0 - d2;
            t[1][s][c] = d1 + d2;
            t[2][s][c] = d2 - d1;
            t[3][s][c] = d1 - d3;
        }
    }
    for (int xi = 0; xi < 4; ++xi) {
        T* out = v + xi * 4 * plane;
        for (index_t c = 0; c < n; ++c) {
            out[c] = t[xi][0][c] - t[xi][2][c];
            out[plane + c] = t[xi][1][c] + t[xi][2][c];
            out[2 * plane + c] = t[xi][2][c] - t[xi][1][c];
            out[3 * plane + c] = t[xi][1][c] - t[xi][3][c];
        }
    }
}

template <typename T>
inline void input_tile(const T* d, index_t rs, index_t cs, index_t n, T* v, index_t plane) {
    channel_blocks<T>(n, [&](index_t c, auto count) { input_block<T, kLanes<T>>(d + c, rs, cs, count, v + c, plane); });
}

// m[(xi*4 + nu) * plane + o] (n <= L channels) -> y[a][b][o] = y[a * rs + b * cs + o] = (A^T m A)[a][b], a, b < 2
template <typename T, index_t L>
inline void output_block(const T* __restrict m, index_t plane, index_t n, T* __restrict y, index_t rs, index_t cs) {
    T z[2][4][L];  // z = A^T m
    for (int nu = 0; nu < 4; ++nu) {
        const T* in = m + nu * plane;
        for (index_t o = 0; o < n; ++o) {
            const T m0 = in[o], m1 = in[4 * plane + o], m2 = in[8 * plane + o], m3 = in[12 * plane + o];
            z[0][nu][o] = m0 + m1 + m2;
            z[1][nu][o] = m1 - m2 - m3;
        }
    }
    for (int a = 0; a < 2; ++a) {
        T* out = y + a * rs;
        for (index_t o = 0; o < n; ++o) {
            out[o] = z[a][0][o] + z[a][1][o] + z[a][2][o];
            out[cs + o] = z[a][1][o] - z[a][2][o] - z[a][3][o];
        }
    }
}

template <typename T>
inline void output_tile(const T* m, index_t plane, index_t n, T* y, index_t rs, index_t cs) {
    channel_blocks<T>(n, [&](index_t o, auto count) {
        output_block<T, kLanes<T>>(m + o, plane, count, y + o, rs, cs);
    });
}

// e[a][b][o] = e[a * rs + b * cs + o] (a 2x2 block of grad_y, n <= L channels) -> u[(xi*4 + nu) * plane + o] =
// (G2 e G2^T)[xi][nu]
template <typename T, index_t L>
inline void grad_block(const T* __restrict e, index_t rs, index_t cs, index_t n, T* __restrict u, index_t plane) {
    T z[4][2][L];  // z = G2 e
    for (int b = 0; b < 2; ++b) {
        const T* col = e + b * cs;
        for (index_t o = 0; o < n; ++o) {
            const T e0 = col[o], e1 = col[rs + o];
            z[0][b][o] = e0;
            z[1][b][o] = e0 + e1;
            z[2][b][o] = e0 - e1;
            z[3][b][o] = -e1;
        }
    }
    for (int xi = 0; xi < 4; ++xi) {
        T* out = u + xi * 4 * plane;
        for (index_t o = 0; o < n; ++o) {
            out[o] = z[xi][0][o];
            out[plane + o] = z[xi][0][o] + z[xi][1][o];
            out[2 * plane + o] = z[xi][0][o] - z[xi][1][o];
            out[3 * plane + o] = -z[xi][1][o];
        }
    }
}

template <typename T>
inline void grad_tile(const T* e, index_t rs, index_t cs, index_t n, T* u, index_t plane) {
    channel_blocks<T>(n, [&](index_t o, auto count) { grad_block<T, kLanes<T>>(e + o, rs, cs, count, u + o, plane); });
}

// One 3x3 filter g[p][q] = g[p * 3 + q] -> u[xi*4 + nu] = (G g G^T)[xi][nu], stored `plane` apart.
template <typename T>
inline void filter_tile(const T* g, T* u, index_t plane) {
    T z[4][3];  // z = G g
    for (int q = 0; q < 3; ++q) {
        const T g0 = g[q], g1 = g[3 + q], g2 = g[6 + q];
        z[0][q] = g0;
        z[1][q] = T(0.5) * (g0 + g1 + g2);
        z[2][q] = T(0.5) * (g0 - g1 + g2);
        z[3][q] = g2;
    }
    for (int xi = 0; xi < 4; ++xi) {
        u[(xi * 4) * plane] = z[xi][0];
        u[(xi * 4 + 1) * plane] = T(0.5) * (z[xi][0] + z[xi][1] + z[xi][2]);
        u[(xi * 4 + 2) * plane] = T(0.5) * (z[xi][0] - z[xi][1] + z[xi][2]);
        u[(xi * 4 + 3) * plane] = z[xi][2];
    }
}

// The summed products m[xi*4 + nu] (`plane` apart, G2's scales not yet applied) -> dw[p * 3 + q] =
// (A3^T (s . m) A3)[p][q] with s[xi][nu] = grad_scale(xi) * grad_scale(nu).
template <typename T>
inline void weight_grad_tile(const T* m, index_t plane, T* dw) {
    T z[3][4];  // z = A3^T (s . m)
    for (int nu = 0; nu < 4; ++nu) {
        T col[4];
        for (int xi = 0; xi < 4; ++xi) col[xi] = m[(xi * 4 + nu) * plane] * grad_scale<T>(xi) * grad_scale<T>(nu);
        z[0][nu] = col[0] + col[1] + col[2];
        z[1][nu] = col[1] - col[2];
        z[2][nu] = col[1] + col[2] + col[3];
    }
    for (int p = 0; p < 3; ++p) {
        dw[p * 3] = z[p][0] + z[p][1] + z[p][2];
        dw[p * 3 + 1] = z[p][1] - z[p][2];
        dw[p * 3 + 2] = z[p][1] + z[p][2] + z[p][3];
    }
}

// out[j * ld_out + i] = in[i * ld_in + j] for i < rows, j < cols: a plain loop (the gathers and scatters below
// take a faster one where the instruction set has it).
struct PlainTranspose {
    template <typename T>
    static void apply(const T* in, index_t ld_in, T* out, index_t ld_out, index_t rows, index_t cols) {
        for (index_t i = 0; i < rows; ++i)
            for (index_t j = 0; j < cols; ++j) out[j * ld_out + i] = in[i * ld_in + j];
    }
};

// src is one image (C, H, W) -> dst (rows, cols, C), channel-last: dst[r][u][c] = src[c][row0 + r][col0 + u]
// where that lies inside the image, else 0. row0 and col0 may be negative (padding).
template <class Transpose, typename T>
void gather_channel_last(const T* src, index_t C, index_t H, index_t W, index_t row0, index_t col0, index_t rows,
                         index_t cols, T* dst) {
    const index_t u_lo = std::clamp<index_t>(-col0, 0, cols), u_hi = std::clamp<index_t>(W - col0, u_lo, cols);
    for (index_t r = 0; r < rows; ++r) {
        T* out = dst + r * cols * C;
        const index_t h = row0 + r;
        if (h < 0 || h >= H) {
            std::fill(out, out + cols * C, T(0));
            continue;
        }
        std::fill(out, out + u_lo * C, T(0));
        std::fill(out + u_hi * C, out + cols * C, T(0));
        // (C, u_hi - u_lo) with row stride H*W -> (u_hi - u_lo, C)
        Transpose::apply(src + h * W + col0 + u_lo, H * W, out + u_lo * C, C, C, u_hi - u_lo);
    }
}

// src (rows, cols, C), channel-last -> dst, one image (C, H, W): dst[c][row0 + r][u] = src[r][u][c] for
// r < rows and u < W (rows + row0 <= H, cols >= W).
template <class Transpose, typename T>
void scatter_channel_first(const T* src, index_t C, index_t H, index_t W, index_t row0, index_t rows, index_t cols,
                           T* dst) {
    for (index_t r = 0; r < rows; ++r)  // (W, C) -> (C, W) with row stride H*W
        Transpose::apply(src + r * cols * C, C, dst + (row0 + r) * W, H * W, W, C);
}

// The 2x2 output tiles cover H_out x W_out (the last row or column of tiles may stick out by one).
struct TileGrid {
    index_t rows, cols;
};

// Tile rows [r0, r0 + rows) of one image x_b (C_in, H, W): its padded input rows channel-last,
// xp (2*rows + 2, 2*g.cols + 2, C_in), then every tile's B^T d B -> v (16, rows*g.cols, C_in).
template <class Transpose, typename T>
void input_band(const ConvShape& s, TileGrid g, const T* x_b, index_t r0, index_t rows, T* xp, T* v) {
    const index_t Ci = s.C_in, Wp = 2 * g.cols + 2, n_tiles = rows * g.cols;
    gather_channel_last<Transpose>(x_b, Ci, s.H, s.W, 2 * r0 - s.pad_top, -s.pad_left, 2 * rows + 2, Wp, xp);
    for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < g.cols; ++j)
            input_tile(xp + (2 * i * Wp + 2 * j) * Ci, Wp * Ci, Ci, Ci, v + (i * g.cols + j) * Ci, n_tiles * Ci);
}

// The GEMM results m (16, rows*g.cols, C_out) of tile rows [r0, r0 + rows) -> their outputs, channel-last in
// yt (2*rows, 2*g.cols, C_out), then written into one image's y_b (C_out, H_out, W_out).
template <class Transpose, typename T>
void output_band(const ConvShape& s, TileGrid g, const T* m, index_t r0, index_t rows, T* yt, T* y_b) {
    const index_t Co = s.C_out, Wy = 2 * g.cols, n_tiles = rows * g.cols;
    for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < g.cols; ++j)
            output_tile(m + (i * g.cols + j) * Co, n_tiles * Co, Co, yt + (2 * i * Wy + 2 * j) * Co, Wy * Co, Co);
    const index_t h0 = 2 * r0, h1 = std::min(s.H_out, 2 * (r0 + rows));
    scatter_channel_first<Transpose>(yt, Co, s.H_out, s.W_out, h0, h1 - h0, Wy, y_b);
}

// Tile rows [r0, r0 + rows) of one image's grad_y gy_b (C_out, H_out, W_out), channel-last and zero past
// H_out and W_out, gp (2*rows, 2*g.cols, C_out), then every tile's G2 e G2^T -> ug (16, rows*g.cols, C_out).
template <class Transpose, typename T>
void grad_band(const ConvShape& s, TileGrid g, const T* gy_b, index_t r0, index_t rows, T* gp, T* ug) {
    const index_t Co = s.C_out, Wg = 2 * g.cols, n_tiles = rows * g.cols;
    gather_channel_last<Transpose>(gy_b, Co, s.H_out, s.W_out, 2 * r0, 0, 2 * rows, Wg, gp);
    for (index_t i = 0; i < rows; ++i)
        for (index_t j = 0; j < g.cols; ++j)
            grad_tile(gp + (2 * i * Wg + 2 * j) * Co, Wg * Co, Co, Co, ug + (i * g.cols + j) * Co, n_tiles * Co);
}

// Which of the three band transforms above band_transform runs.
enum class Band { input, output, grad };

// input_band, output_band or grad_band on tile rows [r0, r0 + rows): src is x_b, m or gy_b, work is xp, yt or gp,
// and dst is v, y_b or ug.
template <class Transpose, typename T>
void band_transform(Band op, const ConvShape& s, TileGrid g, const T* src, index_t r0, index_t rows, T* work,
                    T* dst) {
    switch (op) {
        case Band::input: input_band<Transpose>(s, g, src, r0, rows, work, dst); return;
        case Band::output: output_band<Transpose>(s, g, src, r0, rows, work, dst); return;
        case Band::grad: grad_band<Transpose>(s, g, src, r0, rows, work, dst); return;
    }
}

}  // namespace winograd
}  // namespace fastdl
