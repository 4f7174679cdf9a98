// softmax_cross_entropy.cpp — bind_softmax_cross_entropy(): the fused softmax cross-entropy of
// ops/softmax_cross_entropy.hpp, with one-hot (or probability) targets or int64 labels.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bind/array_checks.hpp"
#include "bind/bind_families.hpp"
#include "ops/softmax_cross_entropy.hpp"

namespace fastdl::bind {
namespace {

// Shared by both target forms: checks, output allocation, the GIL-free call.
template <typename T>
py::tuple run_softmax_cross_entropy(const carray<T>& logits, const T* target, const std::int64_t* labels, double eps,
                                    bool book_loss, double loss_scale, double grad_scale) {
    const index_t B = logits.shape(0), C = logits.shape(1);
    if (book_loss)
        require(eps > 0.0 && eps < 0.5,
                [&] { return "softmax_cross_entropy: eps must be in (0, 0.5), got " + std::to_string(eps); });
    carray<T> grad({B, C});
    std::vector<double> row_loss(static_cast<size_t>(B));
    CrossEntropyArgs<T> a;
    a.logits = logits.data();
    a.target = target;
    a.labels = labels;
    a.grad = grad.mutable_data();
    a.row_loss = row_loss.data();
    a.B = B;
    a.C = C;
    a.book = book_loss;
    a.grad_scale = static_cast<T>(grad_scale);
    a.lo = static_cast<T>(eps);
    a.hi = static_cast<T>(1.0 - eps);
    a.lo64 = eps;
    a.hi64 = 1.0 - eps;
    const double total = without_gil([&] { return B > 0 ? softmax_cross_entropy_kernel(a) : 0.0; });
    return py::make_tuple(total * loss_scale, grad);
}

template <typename T>
void require_logits(const carray<T>& logits) {
    require(logits.ndim() == 2, [&] {
        return "softmax_cross_entropy: logits must be 2-D (B, C), got " + std::to_string(logits.ndim()) + "-D";
    });
    require(logits.shape(1) >= 1, "softmax_cross_entropy: logits must have at least one class (C >= 1)");
}

// logits is (B, C), target is (B, C) one-hot (or probabilities)
template <typename T>
py::tuple softmax_cross_entropy_dense(const carray<T>& logits, const carray<T>& target, double eps, bool book_loss,
                                      double loss_scale, double grad_scale) {
    require_logits(logits);
    require(target.ndim() == 2 && target.shape(0) == logits.shape(0) && target.shape(1) == logits.shape(1),
            "softmax_cross_entropy: a float target must have the logits' shape (B, C)");
    return run_softmax_cross_entropy<T>(logits, target.data(), nullptr, eps, book_loss, loss_scale, grad_scale);
}

// logits is (B, C), labels is (B,) int64 in [0, C)
template <typename T>
py::tuple softmax_cross_entropy_labels(const carray<T>& logits, const carray<std::int64_t>& labels, double eps,
                                       bool book_loss, double loss_scale, double grad_scale) {
    require_logits(logits);
    require(labels.ndim() == 1 && labels.shape(0) == logits.shape(0),
            "softmax_cross_entropy: labels must be 1-D with one label per row (B,)");
    const index_t C = logits.shape(1);
    const std::int64_t* l = labels.data();
    for (index_t r = 0; r < labels.shape(0); ++r)
        if (l[r] < 0 || l[r] >= C)
            throw std::invalid_argument("softmax_cross_entropy: label " + std::to_string(l[r]) + " at row " +
                                        std::to_string(r) + " is outside [0, " + std::to_string(C) + ")");
    return run_softmax_cross_entropy<T>(logits, nullptr, l, eps, book_loss, loss_scale, grad_scale);
}

const char* const kSoftmaxDoc = R"doc(
softmax_cross_entropy(logits, target, eps, book_loss, loss_scale, grad_scale) -> (loss: float, grad)

Fused, numerically stable softmax cross-entropy. logits is (B, C) float32 or float64, C-contiguous;
target is a one-hot (or probability) array of the same shape and dtype, or int64 labels (B,).
p = softmax(logits, axis=1). book_loss=True: the book's two-term loss
sum_k[-y log pc - (1-y) log(1-pc)], pc = clip(p, eps, 1-eps), and grad = (pc - y) * grad_scale
(the gradient clips in the logits' dtype, the loss in float64). book_loss=False: the standard
-sum_k y log p with grad = (p - y) * grad_scale (eps unused). loss = (sum over rows) * loss_scale,
accumulated in float64. Rows are split across threads; the result does not depend on their number.
)doc";

}  // namespace

void bind_softmax_cross_entropy(py::module_& m) {
    m.def("softmax_cross_entropy", &softmax_cross_entropy_dense<float>, kSoftmaxDoc, py::arg("logits").noconvert(),
          py::arg("target").noconvert(), py::arg("eps"), py::arg("book_loss"), py::arg("loss_scale"),
          py::arg("grad_scale"));
    m.def("softmax_cross_entropy", &softmax_cross_entropy_dense<double>, kSoftmaxDoc, py::arg("logits").noconvert(),
          py::arg("target").noconvert(), py::arg("eps"), py::arg("book_loss"), py::arg("loss_scale"),
          py::arg("grad_scale"));
    m.def("softmax_cross_entropy", &softmax_cross_entropy_labels<float>, kSoftmaxDoc, py::arg("logits").noconvert(),
          py::arg("target").noconvert(), py::arg("eps"), py::arg("book_loss"), py::arg("loss_scale"),
          py::arg("grad_scale"));
    m.def("softmax_cross_entropy", &softmax_cross_entropy_labels<double>, kSoftmaxDoc, py::arg("logits").noconvert(),
          py::arg("target").noconvert(), py::arg("eps"), py::arg("book_loss"), py::arg("loss_scale"),
          py::arg("grad_scale"));
}

}  // namespace fastdl::bind
