// linear.cpp — bind_linear(): linear (GEMM with the bias and activation fused into its epilogue) and
// linear_backward, the kernels of ops/linear.hpp.
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "bind/array_checks.hpp"
#include "bind/bind_families.hpp"
#include "core/activation_scalar.hpp"
#include "ops/linear.hpp"

namespace fastdl::bind {
namespace {

template <typename T>
carray<T> linear(const carray<T>& x, const carray<T>& w, const std::optional<carray<T>>& b,
                 const std::string& activation) {
    // x is (n, in), w is (in, out), b is (out,) or None -> y (n, out)
    const Activation act = parse_activation(activation);
    require_ndim("linear", "x", x, 2);
    require_ndim("linear", "w", w, 2);
    const index_t n = x.shape(0), in = x.shape(1), out = w.shape(1);
    require(w.shape(0) == in, [&] {
        return "linear: w must be (in, out) with in = x.shape[1] = " + std::to_string(in) + ", got " + shape_str(w);
    });
    const T* pb = nullptr;
    if (b.has_value()) {
        require(b->ndim() == 1 && b->shape(0) == out,
                [&] { return "linear: b must be (" + std::to_string(out) + ",), got " + shape_str(*b); });
        pb = b->data();
    }
    carray<T> y({n, out});
    const T* px = x.data();
    const T* pw = w.data();
    T* py_ = y.mutable_data();
    without_gil([&] { linear_forward<T>(px, pw, pb, py_, n, in, out, act); });
    return y;
}

template <typename T>
py::tuple linear_backward(const carray<T>& x, const carray<T>& w, const carray<T>& y, const carray<T>& grad_y,
                          const std::string& activation, bool need_grad_x) {
    // x is (n, in), w is (in, out), y and grad_y are (n, out)
    // -> grad_x (n, in) or None (need_grad_x false), grad_w (in, out), grad_b (out,)
    const Activation act = parse_activation(activation);
    require_ndim("linear_backward", "x", x, 2);
    require_ndim("linear_backward", "w", w, 2);
    require_ndim("linear_backward", "y", y, 2);
    require_ndim("linear_backward", "grad_y", grad_y, 2);
    const index_t n = x.shape(0), in = x.shape(1), out = w.shape(1);
    require(w.shape(0) == in, [&] {
        return "linear_backward: w must be (in, out) with in = x.shape[1] = " + std::to_string(in) + ", got " +
               shape_str(w);
    });
    require_shape("linear_backward", "y", y, {n, out});
    require_shape("linear_backward", "grad_y", grad_y, {n, out});
    carray<T> grad_x(need_grad_x ? std::vector<py::ssize_t>{n, in} : std::vector<py::ssize_t>{0});
    carray<T> grad_w({in, out});
    carray<T> grad_b({out});
    const T *px = x.data(), *pw = w.data(), *pyv = y.data(), *pg = grad_y.data();
    T *gx = need_grad_x ? grad_x.mutable_data() : nullptr, *gw = grad_w.mutable_data(), *gb = grad_b.mutable_data();
    without_gil([&] { fastdl::linear_backward<T>(px, pw, pyv, pg, gx, gw, gb, n, in, out, act); });
    if (!need_grad_x) return py::make_tuple(py::none(), grad_w, grad_b);
    return py::make_tuple(grad_x, grad_w, grad_b);
}

template <typename T>
void bind_linear_dtype(py::module_& m, const char* dtype) {
    const std::string suffix = std::string(" (") + dtype + " overload)";
    m.def("linear", &linear<T>, py::arg("x").noconvert(), py::arg("w").noconvert(), py::arg("b").noconvert().none(true),
          py::arg("activation") = "linear",
          ("act(x @ w + b) with bias and activation fused into the GEMM epilogue. x is (N, in), w is (in, out), "
           "b is (out,) or None; activation is 'linear', 'sigmoid', 'tanh' or 'relu'. Returns (N, out)" +
           suffix + ".").c_str());
    m.def("linear_backward", &linear_backward<T>, py::arg("x").noconvert(), py::arg("w").noconvert(),
          py::arg("y").noconvert(), py::arg("grad_y").noconvert(), py::arg("activation") = "linear",
          py::arg("need_grad_x") = true,
          ("Gradients of linear(): returns (grad_x (N, in), grad_w (in, out), grad_b (out,)) with "
           "dz = act'(y) * grad_y (from the output y), grad_x = dz @ w.T, grad_w = x.T @ dz, grad_b = dz.sum(0); "
           "with need_grad_x=False grad_x is not computed and None takes its place" + suffix + ".").c_str());
}

}  // namespace

void bind_linear(py::module_& m) {
    bind_linear_dtype<float>(m, "float32");
    bind_linear_dtype<double>(m, "float64");
}

}  // namespace fastdl::bind
