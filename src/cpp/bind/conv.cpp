// conv.cpp — bind_conv(): conv2d / conv2d_backward and the choice of algorithm for 3x3 stride-1 convolutions.
// Check shapes, release the GIL, call the kernels of ops/conv.hpp. Arrays must be C-contiguous and of one float
// dtype; `.noconvert()` rules out silent copies and casts. Shape errors raise ValueError.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "bind/array_checks.hpp"
#include "bind/bind_families.hpp"
#include "core/activation_scalar.hpp"
#include "ops/conv.hpp"
#include "ops/winograd.hpp"

namespace fastdl::bind {
namespace {

// x is (B, C_in, H, W), w is (C_in, C_out, K, K) -> the checked geometry
ConvShape checked_shape(const char* op, const py::array& x, const py::array& w, index_t stride, index_t pad_before,
                        index_t pad_after) {
    const auto name = [op] { return std::string(op); };
    require(x.ndim() == 4, [&] { return name() + ": x must be 4-D (B, C_in, H, W), got shape " + shape_str(x); });
    require(w.ndim() == 4, [&] { return name() + ": w must be 4-D (C_in, C_out, K, K), got shape " + shape_str(w); });
    require(w.shape(0) == x.shape(1), [&] {
        return name() + ": w must be (C_in, C_out, K, K) with C_in = x.shape[1] = " + std::to_string(x.shape(1)) +
               ", got " + shape_str(w);
    });
    require(w.shape(2) == w.shape(3), [&] { return name() + ": the kernel must be square (K, K), got w " + shape_str(w); });
    return make_conv_shape(x.shape(0), x.shape(1), x.shape(2), x.shape(3), w.shape(1), w.shape(2), stride,
                           pad_before, pad_after, pad_before, pad_after);
}

template <typename T>
carray<T> conv2d_py(const carray<T>& x, const carray<T>& w, index_t stride, index_t pad_before, index_t pad_after,
                    const std::string& activation) {
    // x is (B, C_in, H, W), w is (C_in, C_out, K, K) -> y (B, C_out, H_out, W_out)
    const Activation act = parse_activation(activation);
    const ConvShape s = checked_shape("conv2d", x, w, stride, pad_before, pad_after);
    carray<T> y({s.B, s.C_out, s.H_out, s.W_out});
    const T* px = x.data();
    const T* pw = w.data();
    T* py_ = y.mutable_data();
    without_gil([&] { conv2d_forward<T>(s, px, pw, py_, act); });
    return y;
}

template <typename T>
py::tuple conv2d_dropout_py(const carray<T>& x, const carray<T>& w, index_t stride, index_t pad_before,
                            index_t pad_after, const std::string& activation, std::uint64_t key,
                            std::uint32_t threshold, std::uint64_t first) {
    // x is (B, C_in, H, W), w is (C_in, C_out, K, K) -> (y (B, C_out, H_out, W_out), mask bool like y)
    const Activation act = parse_activation(activation);
    require(threshold <= (1u << 24), "conv2d_dropout: threshold must be in [0, 2**24]");
    const ConvShape s = checked_shape("conv2d_dropout", x, w, stride, pad_before, pad_after);
    carray<T> y({s.B, s.C_out, s.H_out, s.W_out});
    carray<bool> mask({s.B, s.C_out, s.H_out, s.W_out});
    const T* px = x.data();
    const T* pw = w.data();
    T* py_ = y.mutable_data();
    const DropoutEpilogue dropout{key, threshold, first, reinterpret_cast<std::uint8_t*>(mask.mutable_data())};
    without_gil([&] { conv2d_forward<T>(s, px, pw, py_, act, &dropout); });
    return py::make_tuple(y, mask);
}

// ValueError unless a is (B, C_out, H_out, W_out), the shape of conv2d's output
void require_output_shape(const ConvShape& s, const char* name, const py::array& a) {
    const bool ok = a.ndim() == 4 && a.shape(0) == s.B && a.shape(1) == s.C_out && a.shape(2) == s.H_out &&
                    a.shape(3) == s.W_out;
    if (!ok)
        throw std::invalid_argument(std::string("conv2d_backward: ") + name + " must be (" + std::to_string(s.B) +
                                    ", " + std::to_string(s.C_out) + ", " + std::to_string(s.H_out) + ", " +
                                    std::to_string(s.W_out) + "), got " + shape_str(a));
}

template <typename T>
py::tuple conv2d_backward_py(const carray<T>& x, const carray<T>& w, const carray<T>& grad_y, index_t stride,
                             index_t pad_before, index_t pad_after, bool need_grad_x, const std::string& activation,
                             const std::optional<carray<T>>& y, const std::optional<carray<bool>>& mask) {
    // x is (B, C_in, H, W), w is (C_in, C_out, K, K), grad_y is (B, C_out, H_out, W_out)
    // [, y and mask (B, C_out, H_out, W_out): grad_y is taken through the activation and the mask first]
    // -> grad_x (B, C_in, H, W) or None (need_grad_x false), grad_w (C_in, C_out, K, K)
    const Activation act = parse_activation(activation);
    const ConvShape s = checked_shape("conv2d_backward", x, w, stride, pad_before, pad_after);
    require_output_shape(s, "grad_y", grad_y);
    require(act == Activation::linear || y.has_value(),
            "conv2d_backward: the activation's gradient needs y, the output of conv2d");
    if (y) require_output_shape(s, "y", *y);
    if (mask) require_output_shape(s, "mask", *mask);
    OutputGrad<T> through{act, y ? y->data() : nullptr,
                          mask ? reinterpret_cast<const std::uint8_t*>(mask->data()) : nullptr};
    const bool pass_through = act != Activation::linear || mask.has_value();
    carray<T> grad_x(need_grad_x ? std::vector<py::ssize_t>{s.B, s.C_in, s.H, s.W} : std::vector<py::ssize_t>{0});
    carray<T> grad_w({s.C_in, s.C_out, s.K, s.K});
    const T *px = x.data(), *pw = w.data(), *pg = grad_y.data();
    T *gx = need_grad_x ? grad_x.mutable_data() : nullptr, *gw = grad_w.mutable_data();
    without_gil([&] { conv2d_backward<T>(s, px, pw, pg, gx, gw, pass_through ? &through : nullptr); });
    if (!need_grad_x) return py::make_tuple(py::none(), grad_w);
    return py::make_tuple(grad_x, grad_w);
}

template <typename T>
void bind_conv_dtype(py::module_& m, const char* dtype) {
    const std::string suffix = std::string(" (") + dtype + " overload)";
    m.def("conv2d", &conv2d_py<T>, py::arg("x").noconvert(), py::arg("w").noconvert(), py::arg("stride"),
          py::arg("pad_before"), py::arg("pad_after"), py::arg("activation") = "linear",
          ("act(conv2d(x, w)): cross-correlation, no kernel flip, with the activation fused. x is (B, C_in, H, W), "
           "w is (C_in, C_out, K, K); both spatial axes are zero-padded by pad_before / pad_after; stride >= 1; "
           "activation is 'linear', 'sigmoid', 'tanh' or 'relu'. Returns y (B, C_out, H_out, W_out) with "
           "H_out = (H + pad_before + pad_after - K) // stride + 1" + suffix + ".")
              .c_str());
    m.def("conv2d_dropout", &conv2d_dropout_py<T>, py::arg("x").noconvert(), py::arg("w").noconvert(),
          py::arg("stride"), py::arg("pad_before"), py::arg("pad_after"), py::arg("activation"), py::arg("key"),
          py::arg("threshold"), py::arg("first") = 0,
          ("conv2d followed by dropout, in one pass where the algorithm allows: returns (y, mask) with mask the "
           "bool keep mask of dropout_forward(act(conv2d(x, w)), key, threshold, first) and y = act(conv2d(x, w)) "
           "where kept, else 0 (the very values of the two calls; the direct convolution applies the mask to "
           "each band of output rows while it is in cache)" + suffix + ".")
              .c_str());
    m.def("conv2d_backward", &conv2d_backward_py<T>, py::arg("x").noconvert(), py::arg("w").noconvert(),
          py::arg("grad_y").noconvert(), py::arg("stride"), py::arg("pad_before"), py::arg("pad_after"),
          py::arg("need_grad_x") = true, py::arg("activation") = "linear", py::arg("y").noconvert() = py::none(),
          py::arg("mask").noconvert() = py::none(),
          ("The true gradients of conv2d (activation 'linear'): returns (grad_x (B, C_in, H, W), "
           "grad_w (C_in, C_out, K, K)) for grad_y (B, C_out, H_out, W_out); with need_grad_x=False grad_x "
           "is not computed and None takes its place. With an activation (and y, conv2d's output after it, and "
           "the bool mask of a dropout after it), grad_y is the gradient of that output and is first taken "
           "through the activation and the mask (activation_backward): inside the weight gradient, image by "
           "image, where the direct convolution computes it. Results do not depend on the thread count" +
           suffix + ".")
              .c_str());
}

}  // namespace

void bind_conv(py::module_& m) {
    bind_conv_dtype<float>(m, "float32");
    bind_conv_dtype<double>(m, "float64");
    m.def("force_conv_algorithm", &force_conv_algorithm, py::arg("name"),
          "Which algorithm 3x3 stride-1 convolutions use, for tests and benchmarks: 'auto' (Winograd where C_in and "
          "C_out each fill a 64-byte vector, 16 floats or 8 doubles, and the batch has at least 96 tiles of 2x2 "
          "outputs; else im2col + GEMM), 'im2col' (never Winograd) or 'winograd' (every 3x3 stride-1 convolution). "
          "Other kernel sizes and strides always use im2col + GEMM.");
    m.def("forced_conv_algorithm", &forced_conv_algorithm,
          "The algorithm force_conv_algorithm set: 'auto' by default.");
}

}  // namespace fastdl::bind
