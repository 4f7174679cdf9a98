// dropout.cpp — dropout forward (mask drawn by the counter hash, applied in the same pass) and
// backward, one plain loop per ISA entry that the compiler vectorises, run over chunks by the thread pool, bindings.
#include "dropout.hpp"

#include <pybind11/numpy.h>

#include <vector>

#include "dropout_hash.hpp"
#include "vec_math.hpp"

namespace py = pybind11;

namespace fastdl {
namespace {

// x, y, mask are (n,) starting at flat index `first` of the whole array.
template <typename T>
inline void forward_chunk(const T* x, T* y, std::uint8_t* mask, index_t n, std::uint64_t first,
                          std::uint64_t key, std::uint32_t threshold) {
    for (index_t k = 0; k < n; ++k) {
        const bool keep = dropout_keep(first + static_cast<std::uint64_t>(k), key, threshold);
        mask[k] = keep;
        y[k] = keep ? x[k] : T(0);
    }
}

template <typename T>
inline void backward_chunk(const T* g, const std::uint8_t* mask, T* out, index_t n) {  // all (n,)
    for (index_t k = 0; k < n; ++k) out[k] = mask[k] ? g[k] : T(0);
}

template <typename T>
[[gnu::flatten]] void forward_scalar(const T* x, T* y, std::uint8_t* m, index_t n, std::uint64_t first,
                                     std::uint64_t key, std::uint32_t threshold) {
    forward_chunk(x, y, m, n, first, key, threshold);
}

template <typename T>
[[gnu::flatten]] void backward_scalar(const T* g, const std::uint8_t* m, T* out, index_t n) {
    backward_chunk(g, m, out, n);
}

#if defined(__x86_64__)
template <typename T>
[[gnu::target("avx2"), gnu::flatten]] void forward_avx2(const T* x, T* y, std::uint8_t* m, index_t n,
                                                         std::uint64_t first, std::uint64_t key,
                                                         std::uint32_t threshold) {
    forward_chunk(x, y, m, n, first, key, threshold);
}

template <typename T>
[[gnu::target("avx512f,avx512bw,avx512dq"), gnu::flatten]] void forward_avx512(
    const T* x, T* y, std::uint8_t* m, index_t n, std::uint64_t first, std::uint64_t key,
    std::uint32_t threshold) {
    forward_chunk(x, y, m, n, first, key, threshold);
}

template <typename T>
[[gnu::target("avx2"), gnu::flatten]] void backward_avx2(const T* g, const std::uint8_t* m, T* out, index_t n) {
    backward_chunk(g, m, out, n);
}

template <typename T>
[[gnu::target("avx512f,avx512bw,avx512dq"), gnu::flatten]] void backward_avx512(const T* g, const std::uint8_t* m,
                                                                                 T* out, index_t n) {
    backward_chunk(g, m, out, n);
}
#endif

template <typename T>
using ForwardFn = void (*)(const T*, T*, std::uint8_t*, index_t, std::uint64_t, std::uint64_t, std::uint32_t);

template <typename T>
ForwardFn<T> forward_for(VecIsa isa) {
#if defined(__x86_64__)
    if (isa == VecIsa::avx512) return &forward_avx512<T>;
    if (isa == VecIsa::avx2) return &forward_avx2<T>;
#endif
    (void)isa;
    return &forward_scalar<T>;
}

template <typename T>
using BackwardFn = void (*)(const T*, const std::uint8_t*, T*, index_t);

template <typename T>
BackwardFn<T> backward_for(VecIsa isa) {
#if defined(__x86_64__)
    if (isa == VecIsa::avx512) return &backward_avx512<T>;
    if (isa == VecIsa::avx2) return &backward_avx2<T>;
#endif
    (void)isa;
    return &backward_scalar<T>;
}

}  // namespace

template <typename T>
void dropout_forward_kernel(const T* x, T* y, std::uint8_t* mask, index_t n, std::uint64_t key,
                            std::uint32_t threshold) {
    const ForwardFn<T> fn = forward_for<T>(active_vec_isa());
    parallel_chunks(n, index_t(1) << 15, [&](index_t lo, index_t hi) {
        fn(x + lo, y + lo, mask + lo, hi - lo, static_cast<std::uint64_t>(lo), key, threshold);
    });
}

template <typename T>
void dropout_backward_kernel(const T* grad_y, const std::uint8_t* mask, T* grad_x, index_t n) {
    const BackwardFn<T> fn = backward_for<T>(active_vec_isa());
    parallel_chunks(n, index_t(1) << 15,
                    [&](index_t lo, index_t hi) { fn(grad_y + lo, mask + lo, grad_x + lo, hi - lo); });
}

template void dropout_forward_kernel<float>(const float*, float*, std::uint8_t*, index_t, std::uint64_t,
                                            std::uint32_t);
template void dropout_forward_kernel<double>(const double*, double*, std::uint8_t*, index_t, std::uint64_t,
                                             std::uint32_t);
template void dropout_backward_kernel<float>(const float*, const std::uint8_t*, float*, index_t);
template void dropout_backward_kernel<double>(const double*, const std::uint8_t*, double*, index_t);

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
