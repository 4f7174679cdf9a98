// activations.cpp — bind_activations(): activation_forward and activation_backward, the elementwise kernels of
// ops/activations.hpp on arrays of any shape (treated as flat).
#include <cstdint>
#include <optional>
#include <string>

#include <pybind11/stl.h>

#include "bind/array_checks.hpp"
#include "bind/bind_families.hpp"
#include "core/activation_scalar.hpp"
#include "ops/activations.hpp"

namespace fastdl::bind {
namespace {

// x is any shape -> y, same shape and dtype
template <typename T>
carray<T> activation_forward(const carray<T>& x, const std::string& name) {
    const Activation act = parse_activation(name);
    carray<T> y = empty_like<T>(x);
    const T* xp = x.data();
    T* yp = y.mutable_data();
    const index_t n = x.size();
    without_gil([&] { activation_forward_kernel<T>(act, xp, yp, n); });
    return y;
}

// y, grad_y (and mask, when given) are the same shape -> grad_x, that shape
template <typename T>
carray<T> activation_backward(const carray<T>& y, const carray<T>& grad_y, const std::string& name,
                              const std::optional<carray<bool>>& mask) {
    const Activation act = parse_activation(name);
    require(same_shape(y, grad_y), "activation_backward: grad_y must have the shape of y");
    require(!mask || same_shape(y, *mask), "activation_backward: mask must have the shape of y");
    carray<T> gx = empty_like<T>(y);
    const T* yp = y.data();
    const T* gp = grad_y.data();
    const auto* mp = mask ? reinterpret_cast<const std::uint8_t*>(mask->data()) : nullptr;
    T* out = gx.mutable_data();
    const index_t n = y.size();
    without_gil([&] { activation_backward_kernel<T>(act, yp, gp, mp, out, n); });
    return gx;
}

const char* const kForwardDoc = R"doc(
activation_forward(x, name) -> y

y = act(x) elementwise for name in 'linear', 'sigmoid', 'tanh', 'relu'. x is any shape, float32 or
float64, C-contiguous; y is a new array of the same shape and dtype. sigmoid and tanh use a
vectorised exp (a few ulp from NumPy's) and are stable for any |x|.
)doc";

const char* const kBackwardDoc = R"doc(
activation_backward(y, grad_y, name, mask=None) -> grad_x

The input gradient of an activation from its OUTPUT y = act(x) and grad_y (same shape and dtype,
C-contiguous): sigmoid grad_y*y*(1-y), tanh grad_y*(1-y*y), relu grad_y*(y>0), linear grad_y.
With mask (the bool mask of a dropout applied to y, same shape), grad_x is 0 where mask is False:
the gradient through the activation and the dropout in one pass. Returns a new array.
)doc";

}  // namespace

void bind_activations(py::module_& m) {
    m.def("activation_forward", &activation_forward<float>, kForwardDoc, py::arg("x").noconvert(), py::arg("name"));
    m.def("activation_forward", &activation_forward<double>, kForwardDoc, py::arg("x").noconvert(), py::arg("name"));
    m.def("activation_backward", &activation_backward<float>, kBackwardDoc, py::arg("y").noconvert(),
          py::arg("grad_y").noconvert(), py::arg("name"), py::arg("mask").noconvert() = py::none());
    m.def("activation_backward", &activation_backward<double>, kBackwardDoc, py::arg("y").noconvert(),
          py::arg("grad_y").noconvert(), py::arg("name"), py::arg("mask").noconvert() = py::none());
}

}  // namespace fastdl::bind
