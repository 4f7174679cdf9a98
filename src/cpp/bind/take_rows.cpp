// take_rows.cpp — bind_take_rows(): take_rows(x, rows, out), the row gather of ops/take_rows.hpp on arrays of
// any numeric dtype (rows are copied as bytes). fastdl.kernels checks the arguments first; the checks here
// repeat what would otherwise read or write out of bounds, before anything is copied.
#include <cstdint>
#include <string>

#include "bind/array_checks.hpp"
#include "bind/bind_families.hpp"
#include "ops/take_rows.hpp"

namespace fastdl::bind {
namespace {

// x is (N, ...), rows is (n,) int64, out is (n, ...) like x's rows -> out, with out[i] = x[rows[i]]
py::array take_rows(const py::array& x, const carray<std::int64_t>& rows, py::array& out) {
    const char* op = "take_rows";
    require(x.ndim() >= 1, "take_rows: x must have at least one dimension");
    require((x.flags() & py::array::c_style) && (out.flags() & py::array::c_style),
            "take_rows: x and out must be C-contiguous");
    require(out.writeable(), "take_rows: out is read-only");
    require(x.dtype().is(out.dtype()), "take_rows: out must have x's dtype");
    require(x.dtype().kind() != 'O', "take_rows: x must not hold Python objects");
    require_ndim(op, "rows", rows, 1);
    bool out_fits = out.ndim() == x.ndim() && out.shape(0) == rows.shape(0);
    for (py::ssize_t d = 1; out_fits && d < x.ndim(); ++d) out_fits = out.shape(d) == x.shape(d);
    if (!out_fits) {
        std::vector<index_t> want = shape_of(x);
        want[0] = rows.shape(0);
        require_shape(op, "out", out, want);
    }
    const index_t N = x.shape(0), n = rows.shape(0);
    const std::int64_t* r = rows.data();
    for (index_t i = 0; i < n; ++i)
        if (r[i] < 0 || r[i] >= N)  // the message is built only for the row that fails
            throw std::invalid_argument(std::string(op) + ": rows[" + std::to_string(i) + "] = " +
                                        std::to_string(r[i]) + " is outside [0, " + std::to_string(N) + ")");
    const index_t row_bytes = N > 0 ? static_cast<index_t>(x.nbytes()) / N : 0;
    const auto* src = static_cast<const std::uint8_t*>(x.data());
    auto* dst = static_cast<std::uint8_t*>(out.mutable_data());
    without_gil([&] { take_rows_kernel(src, row_bytes, r, n, dst); });
    return out;
}

const char* const kDoc = R"doc(
take_rows(x, rows, out) -> out

out[i] = x[rows[i]] for every i: the rows of x (any shape (N, ...), any numeric dtype, C-contiguous) picked
by rows (1-D int64, each in [0, N)), written into out (C-contiguous, writeable, x's dtype, shape
(len(rows),) + x.shape[1:]). Rows are copied as bytes, in contiguous blocks of rows per thread. out must not
overlap x. Returns out.
)doc";

}  // namespace

void bind_take_rows(py::module_& m) {
    m.def("take_rows", &take_rows, kDoc, py::arg("x"), py::arg("rows").noconvert(), py::arg("out"));
}

}  // namespace fastdl::bind
