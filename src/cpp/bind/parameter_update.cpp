// parameter_update.cpp — bind_parameter_update(): one optimizer step over lists of parameters, gradients and
// states (ops/parameter_update.hpp). The arrays are updated in place, so none may be copied or cast: each must
// already be a C-contiguous, writeable array of the one float dtype (fastdl.kernels checks that first), and no
// two may share memory: that is checked here, before anything is written, where it costs nothing.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "bind/array_checks.hpp"
#include "bind/bind_families.hpp"
#include "ops/parameter_update.hpp"

namespace fastdl::bind {
namespace {

UpdateRule parse_rule(const std::string& rule) {
    if (rule == "sgd") return UpdateRule::sgd;
    if (rule == "sgd_momentum") return UpdateRule::sgd_momentum;
    if (rule == "adagrad") return UpdateRule::adagrad;
    if (rule == "regularized_sgd") return UpdateRule::regularized_sgd;
    throw std::invalid_argument("parameter_update: rule must be 'sgd', 'sgd_momentum', 'adagrad' or "
                                "'regularized_sgd', got '" + rule + "'");
}

// items[i] as a writeable C-contiguous array of T, or ValueError naming it
template <typename T>
carray<T> checked(const py::list& items, size_t i, const char* name) {
    const py::handle item = items[i];
    const auto named = [&] { return std::string("parameter_update: ") + name + "[" + std::to_string(i) + "]"; };
    require(py::isinstance<carray<T>>(item),
            [&] { return named() + " must be a C-contiguous array of the parameters' dtype"; });
    auto array = py::reinterpret_borrow<carray<T>>(item);
    require(array.writeable(), [&] { return named() + " is read-only"; });
    return array;
}

// ValueError unless no two arrays of the slots share a byte (the chunks run in parallel)
template <typename T>
void require_distinct(const std::vector<ParamSlot<T>>& slots) {
    std::vector<std::pair<const T*, const T*>> spans;
    for (const ParamSlot<T>& s : slots) {
        if (s.n == 0) continue;
        for (const T* start : {static_cast<const T*>(s.param), static_cast<const T*>(s.grad),
                               static_cast<const T*>(s.state)})
            if (start) spans.emplace_back(start, start + s.n);
    }
    std::sort(spans.begin(), spans.end());
    for (size_t i = 1; i < spans.size(); ++i)
        require(spans[i].first >= spans[i - 1].second,
                "parameter_update: two of the arrays share memory; every array must be distinct");
}

template <typename T>
void parameter_update_py(const std::string& rule, const py::list& params, const py::list& grads,
                         const py::list& states, double lr, double hyper, double clip) {
    // params[i], grads[i] and states[i] (when the rule keeps a state) are arrays of one shape each
    UpdateSettings settings{parse_rule(rule), lr, hyper, clip};
    const bool stateful = settings.rule == UpdateRule::sgd_momentum || settings.rule == UpdateRule::adagrad;
    require(grads.size() == params.size() && states.size() == (stateful ? params.size() : 0),
            "parameter_update: grads (and states, for momentum and adagrad) must have one array per parameter");
    std::vector<carray<T>> keep;  // holds the references while the GIL is released
    keep.reserve(3 * params.size());
    std::vector<ParamSlot<T>> slots;
    slots.reserve(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
        carray<T> p = checked<T>(params, i, "params"), g = checked<T>(grads, i, "grads");
        require(same_shape(p, g), [&] {
            return "parameter_update: grads[" + std::to_string(i) + "] " + shape_str(g) + " must have the shape of "
                   "params[" + std::to_string(i) + "] " + shape_str(p);
        });
        T* state = nullptr;
        if (stateful) {
            carray<T> v = checked<T>(states, i, "states");
            require(same_shape(p, v), [&] {
                return "parameter_update: states[" + std::to_string(i) + "] must have the shape of params[" +
                       std::to_string(i) + "] " + shape_str(p);
            });
            state = v.mutable_data();
            keep.push_back(v);
        }
        slots.push_back({p.mutable_data(), g.mutable_data(), state, static_cast<index_t>(p.size())});
        keep.push_back(p);
        keep.push_back(g);
    }
    require_distinct(slots);
    without_gil([&] { parameter_update<T>(slots, settings); });
}

const char* const kDoc = R"doc(
parameter_update_float32(rule, params, grads, states, lr, hyper, clip) -> None
parameter_update_float64(...) -> None

One optimizer step over every parameter, in place, in the parameters' dtype. rule is 'sgd',
'sgd_momentum' (hyper = momentum; states are the velocities), 'adagrad' (hyper = eps; states are the
running sums of squares) or 'regularized_sgd' (hyper = alpha); states is [] for the rules without one.
clip > 0 first clips every gradient to [-clip, clip] in place. All arrays C-contiguous, writeable, of the
function's dtype, in distinct memory; grads[i] and states[i] have params[i]'s shape. Bit-identical to the
book's NumPy update, on any thread count.
)doc";

}  // namespace

void bind_parameter_update(py::module_& m) {
    m.def("parameter_update_float32", &parameter_update_py<float>, kDoc, py::arg("rule"), py::arg("params"),
          py::arg("grads"), py::arg("states"), py::arg("lr"), py::arg("hyper"), py::arg("clip"));
    m.def("parameter_update_float64", &parameter_update_py<double>, kDoc, py::arg("rule"), py::arg("params"),
          py::arg("grads"), py::arg("states"), py::arg("lr"), py::arg("hyper"), py::arg("clip"));
}

}  // namespace fastdl::bind
