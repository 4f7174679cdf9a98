// dropout.cpp — the Python binding of dropout (ops/dropout.hpp): the keep mask comes back as a bool array.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

#include "bind/families.hpp"
#include "ops/dropout.hpp"

namespace py = pybind11;

namespace fastdl {

namespace {

template <typename T>
using Array = py::array_t<T, py::array::c_style>;
using Mask = py::array_t<bool, py::array::c_style>;

std::vector<py::ssize_t> shape_of(const py::array& a) {
    return std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim());
}

bool same_shape(const py::array& a, const py::array& b) {
    if (a.ndim() != b.ndim()) return false;
    for (py::ssize_t d = 0; d < a.ndim(); ++d)
        if (a.shape(d) != b.shape(d)) return false;
    return true;
}

// x is any shape -> (y like x, mask bool like x)
template <typename T>
py::tuple dropout_forward(const Array<T>& x, std::uint64_t key, std::uint32_t threshold) {
    require(threshold <= (1u << 24), "dropout_forward: threshold must be in [0, 2**24]");
    Array<T> y(shape_of(x));
    Mask mask(shape_of(x));
    const T* xp = x.data();
    T* yp = y.mutable_data();
    auto* mp = reinterpret_cast<std::uint8_t*>(mask.mutable_data());
    const index_t n = x.size();
    {
        py::gil_scoped_release release;
        dropout_forward_kernel<T>(xp, yp, mp, n, key, threshold);
    }
    return py::make_tuple(y, mask);
}

// grad_y is any shape, mask bool of that shape -> grad_x like grad_y
template <typename T>
Array<T> dropout_backward(const Array<T>& grad_y, const Mask& mask) {
    require(same_shape(grad_y, mask), "dropout_backward: mask must have the shape of grad_y");
    Array<T> gx(shape_of(grad_y));
    const T* gp = grad_y.data();
    const auto* mp = reinterpret_cast<const std::uint8_t*>(mask.data());
    T* out = gx.mutable_data();
    const index_t n = grad_y.size();
    {
        py::gil_scoped_release release;
        dropout_backward_kernel<T>(gp, mp, out, n);
    }
    return gx;
}

const char* const kForwardDoc = R"doc(
dropout_forward(x, key, threshold) -> (y, mask)

Dropout with the book's keep-probability convention (no rescaling). x is any shape, float32 or
float64, C-contiguous. Element i (flat C order) is kept when the counter hash of (i, key) is below
threshold = round(keep_prob * 2**24) (see dropout_hash.hpp): mask is a new bool array of x's shape,
y = x where kept, else 0. The mask depends only on (key, shape), never on the thread count.
)doc";

const char* const kBackwardDoc = R"doc(
dropout_backward(grad_y, mask) -> grad_x

grad_x = grad_y where mask is True, else 0. grad_y float32 or float64, mask bool of the same shape,
both C-contiguous. Returns a new array.
)doc";

}  // namespace

void bind_dropout(py::module_& m) {
    m.def("dropout_forward", &dropout_forward<float>, kForwardDoc, py::arg("x").noconvert(), py::arg("key"),
          py::arg("threshold"));
    m.def("dropout_forward", &dropout_forward<double>, kForwardDoc, py::arg("x").noconvert(), py::arg("key"),
          py::arg("threshold"));
    m.def("dropout_backward", &dropout_backward<float>, kBackwardDoc, py::arg("grad_y").noconvert(),
          py::arg("mask").noconvert());
    m.def("dropout_backward", &dropout_backward<double>, kBackwardDoc, py::arg("grad_y").noconvert(),
          py::arg("mask").noconvert());
}

}  // namespace fastdl
