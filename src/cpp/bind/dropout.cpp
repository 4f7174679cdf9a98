// dropout.cpp — bind_dropout(): dropout_forward and dropout_backward, the kernels of ops/dropout.hpp on arrays
// of any shape (treated as flat).
#include <cstdint>

#include "bind/array_checks.hpp"
#include "bind/bind_families.hpp"
#include "ops/dropout.hpp"

namespace fastdl::bind {
namespace {

using Mask = carray<bool>;

// x is any shape -> (y like x, mask bool like x)
template <typename T>
py::tuple dropout_forward(const carray<T>& x, std::uint64_t key, std::uint32_t threshold, std::uint64_t first) {
    require(threshold <= (1u << 24), "dropout_forward: threshold must be in [0, 2**24]");
    carray<T> y = empty_like<T>(x);
    Mask mask = empty_like<bool>(x);
    const T* xp = x.data();
    T* yp = y.mutable_data();
    auto* mp = reinterpret_cast<std::uint8_t*>(mask.mutable_data());
    const index_t n = x.size();
    without_gil([&] { dropout_forward_kernel<T>(xp, yp, mp, n, first, key, threshold); });
    return py::make_tuple(y, mask);
}

// grad_y is any shape, mask bool of that shape -> grad_x like grad_y
template <typename T>
carray<T> dropout_backward(const carray<T>& grad_y, const Mask& mask) {
    require(same_shape(grad_y, mask), "dropout_backward: mask must have the shape of grad_y");
    carray<T> gx = empty_like<T>(grad_y);
    const T* gp = grad_y.data();
    const auto* mp = reinterpret_cast<const std::uint8_t*>(mask.data());
    T* out = gx.mutable_data();
    const index_t n = grad_y.size();
    without_gil([&] { dropout_backward_kernel<T>(gp, mp, out, n); });
    return gx;
}

const char* const kForwardDoc = R"doc(
dropout_forward(x, key, threshold, first=0) -> (y, mask)

Dropout with the book's keep-probability convention (no rescaling). x is any shape, float32 or
float64, C-contiguous. Element i (flat C order) is kept when the counter hash of (first + i, key) is
below threshold = round(keep_prob * 2**24) (see dropout_hash.hpp): mask is a new bool array of x's
shape, y = x where kept, else 0. first is the flat index of x's first element in the whole array the
mask is drawn for, so rows r0.. of a batch (first = r0 * row size) get exactly those rows of the whole
batch's mask. The mask depends only on (key, first, shape), never on the thread count.
)doc";

const char* const kBackwardDoc = R"doc(
dropout_backward(grad_y, mask) -> grad_x

grad_x = grad_y where mask is True, else 0. grad_y float32 or float64, mask bool of the same shape,
both C-contiguous. Returns a new array.
)doc";

}  // namespace

void bind_dropout(py::module_& m) {
    m.def("dropout_forward", &dropout_forward<float>, kForwardDoc, py::arg("x").noconvert(), py::arg("key"),
          py::arg("threshold"), py::arg("first") = 0);
    m.def("dropout_forward", &dropout_forward<double>, kForwardDoc, py::arg("x").noconvert(), py::arg("key"),
          py::arg("threshold"), py::arg("first") = 0);
    m.def("dropout_backward", &dropout_backward<float>, kBackwardDoc, py::arg("grad_y").noconvert(),
          py::arg("mask").noconvert());
    m.def("dropout_backward", &dropout_backward<double>, kBackwardDoc, py::arg("grad_y").noconvert(),
          py::arg("mask").noconvert());
}

}  // namespace fastdl::bind
