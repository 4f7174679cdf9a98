// array_checks.hpp — what every binding file shares: the C-contiguous NumPy array type, shape strings and
// checks that raise ValueError (via std::invalid_argument), and running a kernel with the GIL released.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "core/common.hpp"

namespace fastdl::bind {

namespace py = pybind11;

// A C-contiguous array of T; bound with `.noconvert()` so that no silent copy or cast ever happens.
template <typename T>
using carray = py::array_t<T, py::array::c_style>;

// The shape of a as a list of sizes.
inline std::vector<index_t> shape_of(const py::array& a) { return std::vector<index_t>(a.shape(), a.shape() + a.ndim()); }

// A shape written as Python writes a tuple: "(2, 3)", "(4,)", "()".
inline std::string shape_str(const std::vector<index_t>& shape) {
    std::string s = "(";
    for (size_t d = 0; d < shape.size(); ++d) s += (d ? ", " : "") + std::to_string(shape[d]);
    return s + (shape.size() == 1 ? ",)" : ")");
}

inline std::string shape_str(const py::array& a) { return shape_str(shape_of(a)); }

inline bool same_shape(const py::array& a, const py::array& b) {
    return a.ndim() == b.ndim() && std::equal(a.shape(), a.shape() + a.ndim(), b.shape());
}

// ValueError "<op>: <name> must be <ndim>-D, got shape (...)" unless a has ndim dimensions.
inline void require_ndim(const char* op, const char* name, const py::array& a, index_t ndim) {
    require(a.ndim() == ndim, [&] {
        return std::string(op) + ": " + name + " must be " + std::to_string(ndim) + "-D, got shape " + shape_str(a);
    });
}

// ValueError "<op>: <name> must have shape (...), got (...)" unless a has exactly the shape `want`.
inline void require_shape(const char* op, const char* name, const py::array& a, const std::vector<index_t>& want) {
    const bool same = a.ndim() == index_t(want.size()) && std::equal(want.begin(), want.end(), a.shape());
    require(same, [&] {
        return std::string(op) + ": " + name + " must have shape " + shape_str(want) + ", got " + shape_str(a);
    });
}

// A new, uninitialised C-contiguous array of T with a's shape.
template <typename T>
carray<T> empty_like(const py::array& a) {
    return carray<T>(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
}

// Runs kernel() with the GIL released (other Python threads run meanwhile) and returns what it returns.
// Take every pointer out of the arrays before: no Python object may be touched inside.
template <class Kernel>
auto without_gil(Kernel&& kernel) {
    py::gil_scoped_release release;
    return std::forward<Kernel>(kernel)();
}

}  // namespace fastdl::bind
