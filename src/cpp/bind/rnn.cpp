// rnn.cpp — bind_rnn(): the Python entry points of ops/rnn.hpp. Check shapes (ValueError), allocate the
// results, release the GIL around the compute. Arrays must be C-contiguous and of one dtype (`.noconvert()`:
// no silent copy or cast); the float32 and float64 overloads share one template.
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "bind/array_checks.hpp"
#include "bind/bind_families.hpp"
#include "core/block_cache.hpp"
#include "ops/rnn.hpp"

namespace fastdl::bind {
namespace {

// An uninitialised C-contiguous array whose memory comes from the block cache (core/block_cache.hpp) and goes
// back to it when the array is freed, so that repeated calls reuse the same pages.
template <typename T>
carray<T> output(const std::vector<index_t>& shape) {
    index_t count = 1;
    for (index_t d : shape) count *= d;
    void* block = acquire_block(static_cast<size_t>(std::max<index_t>(count, 1)) * sizeof(T));
    py::capsule owner(block, [](void* p) { release_block(p); });
    return carray<T>(shape, static_cast<T*>(block), owner);
}

// The sizes of a call from x (B, T, F) and h0 (B, H); w must be (F + H, G*H) and b (G*H,) (b may be null).
template <typename T>
RnnShape check_inputs(const char* op, const carray<T>& x, const carray<T>& h0, const carray<T>& w, const carray<T>* b,
                      index_t G) {
    require(x.ndim() == 3, [&] { return std::string(op) + ": x must be (B, T, F), got " + shape_str(x); });
    require(h0.ndim() == 2, [&] { return std::string(op) + ": h0 must be (B, H), got " + shape_str(h0); });
    RnnShape s{x.shape(0), x.shape(1), x.shape(2), h0.shape(1)};
    require(s.T >= 1 && s.H >= 1, [&] {
        return std::string(op) + ": T and H must be >= 1, got x " + shape_str(x) + ", h0 " + shape_str(h0);
    });
    require_shape(op, "h0", h0, {s.B, s.H});
    require_shape(op, "w", w, {s.F + s.H, G * s.H});
    if (b) require_shape(op, "b", *b, {G * s.H});
    return s;
}

// saved[key] as a C-contiguous array of dtype T and the given shape (ValueError otherwise).
template <typename T>
carray<T> saved_array(const char* op, const py::dict& saved, const char* key, const std::vector<index_t>& shape) {
    require(saved.contains(key),
            [&] { return std::string(op) + ": saved has no '" + key + "' (pass the dict from forward)"; });
    py::object obj = saved[key];
    const auto named = [&] { return std::string("saved['") + key + "']"; };
    require(py::isinstance<carray<T>>(obj),
            [&] { return std::string(op) + ": " + named() + " must be a C-contiguous array of the inputs' dtype"; });
    carray<T> a = py::reinterpret_borrow<carray<T>>(obj);
    require_shape(op, named().c_str(), a, shape);
    return a;
}

// ---------------------------------------------------------------------------------------------
// LSTM
// ---------------------------------------------------------------------------------------------
template <typename T>
py::tuple lstm_forward(const carray<T>& x, const carray<T>& h0, const carray<T>& c0, const carray<T>& w,
                       const carray<T>& b) {
    // x (B, T, F), h0, c0 (B, H), w (F + H, 4H), b (4H,) -> (h_seq (B, T, H), c_last (B, H), saved)
    const RnnShape s = check_inputs<T>("lstm_forward", x, h0, w, &b, 4);
    require_shape("lstm_forward", "c0", c0, {s.B, s.H});
    carray<T> h_seq = output<T>({s.B, s.T, s.H});
    carray<T> c_last = output<T>({s.B, s.H});
    carray<T> xh = output<T>({s.B, s.T, s.F + s.H});
    carray<T> c_seq = output<T>({s.B, s.T, s.H});
    carray<T> gates = output<T>({s.B, s.T, 4 * s.H});
    const T *px = x.data(), *ph = h0.data(), *pc = c0.data(), *pw = w.data(), *pb = b.data();
    T *hs = h_seq.mutable_data(), *cl = c_last.mutable_data();
    T *pxh = xh.mutable_data(), *cs = c_seq.mutable_data(), *gs = gates.mutable_data();
    without_gil([&] { lstm_forward_kernel<T>(s, px, ph, pc, pw, pb, hs, cl, pxh, cs, gs); });
    py::dict saved;
    saved["xh"] = xh;
    saved["c_seq"] = c_seq;
    saved["gates"] = gates;
    return py::make_tuple(h_seq, c_last, saved);
}

template <typename T>
py::tuple lstm_backward(const carray<T>& grad_h_seq, const std::optional<carray<T>>& grad_c_last,
                        const py::dict& saved, const carray<T>& x, const carray<T>& h0, const carray<T>& c0,
                        const carray<T>& w) {
    // -> (grad_x (B, T, F), grad_h0 (B, H), grad_c0 (B, H), grad_w (F + H, 4H), grad_b (4H,))
    const char* op = "lstm_backward";
    const RnnShape s = check_inputs<T>(op, x, h0, w, nullptr, 4);
    require_shape(op, "c0", c0, {s.B, s.H});
    require_shape(op, "grad_h_seq", grad_h_seq, {s.B, s.T, s.H});
    if (grad_c_last) require_shape(op, "grad_c_last", *grad_c_last, {s.B, s.H});
    carray<T> xh = saved_array<T>(op, saved, "xh", {s.B, s.T, s.F + s.H});
    carray<T> c_seq = saved_array<T>(op, saved, "c_seq", {s.B, s.T, s.H});
    carray<T> gates = saved_array<T>(op, saved, "gates", {s.B, s.T, 4 * s.H});
    carray<T> gx = output<T>({s.B, s.T, s.F});
    carray<T> gh = output<T>({s.B, s.H});
    carray<T> gc = output<T>({s.B, s.H});
    carray<T> gw = output<T>({s.F + s.H, 4 * s.H});
    carray<T> gb = output<T>({4 * s.H});
    const T *pg = grad_h_seq.data(), *pgc = grad_c_last ? grad_c_last->data() : nullptr;
    const T *pc0 = c0.data(), *pw = w.data();
    const T *pxh = xh.data(), *pcs = c_seq.data(), *pgs = gates.data();
    T *o1 = gx.mutable_data(), *o2 = gh.mutable_data(), *o3 = gc.mutable_data(), *o4 = gw.mutable_data(),
      *o5 = gb.mutable_data();
    without_gil([&] { lstm_backward_kernel<T>(s, pg, pgc, pc0, pw, pxh, pcs, pgs, o1, o2, o3, o4, o5); });
    return py::make_tuple(gx, gh, gc, gw, gb);
}

// ---------------------------------------------------------------------------------------------
// GRU
// ---------------------------------------------------------------------------------------------
template <typename T>
py::tuple gru_forward(const carray<T>& x, const carray<T>& h0, const carray<T>& w, const carray<T>& b) {
    // x (B, T, F), h0 (B, H), w (F + H, 3H), b (3H,) -> (h_seq (B, T, H), saved)
    const RnnShape s = check_inputs<T>("gru_forward", x, h0, w, &b, 3);
    carray<T> h_seq = output<T>({s.B, s.T, s.H});
    carray<T> h_prev = output<T>({s.B, s.T, s.H});
    carray<T> rh_seq = output<T>({s.B, s.T, s.H});
    carray<T> gates = output<T>({s.B, s.T, 3 * s.H});
    const T *px = x.data(), *ph = h0.data(), *pw = w.data(), *pb = b.data();
    T *hs = h_seq.mutable_data(), *hp = h_prev.mutable_data(), *rh = rh_seq.mutable_data(), *gs = gates.mutable_data();
    without_gil([&] { gru_forward_kernel<T>(s, px, ph, pw, pb, hs, hp, rh, gs); });
    py::dict saved;
    saved["h_prev"] = h_prev;
    saved["rh_seq"] = rh_seq;
    saved["gates"] = gates;
    return py::make_tuple(h_seq, saved);
}

template <typename T>
py::tuple gru_backward(const carray<T>& grad_h_seq, const py::dict& saved, const carray<T>& x, const carray<T>& h0,
                       const carray<T>& w) {
    // -> (grad_x (B, T, F), grad_h0 (B, H), grad_w (F + H, 3H), grad_b (3H,))
    const char* op = "gru_backward";
    const RnnShape s = check_inputs<T>(op, x, h0, w, nullptr, 3);
    require_shape(op, "grad_h_seq", grad_h_seq, {s.B, s.T, s.H});
    carray<T> h_prev = saved_array<T>(op, saved, "h_prev", {s.B, s.T, s.H});
    carray<T> rh_seq = saved_array<T>(op, saved, "rh_seq", {s.B, s.T, s.H});
    carray<T> gates = saved_array<T>(op, saved, "gates", {s.B, s.T, 3 * s.H});
    carray<T> gx = output<T>({s.B, s.T, s.F});
    carray<T> gh = output<T>({s.B, s.H});
    carray<T> gw = output<T>({s.F + s.H, 3 * s.H});
    carray<T> gb = output<T>({3 * s.H});
    const T *pg = grad_h_seq.data(), *px = x.data(), *pw = w.data();
    const T *php = h_prev.data(), *prh = rh_seq.data(), *pgs = gates.data();
    T *o1 = gx.mutable_data(), *o2 = gh.mutable_data(), *o3 = gw.mutable_data(), *o4 = gb.mutable_data();
    without_gil([&] { gru_backward_kernel<T>(s, pg, px, pw, php, prh, pgs, o1, o2, o3, o4); });
    return py::make_tuple(gx, gh, gw, gb);
}

// ---------------------------------------------------------------------------------------------
// vanilla RNN
// ---------------------------------------------------------------------------------------------
template <typename T>
py::tuple rnn_forward(const carray<T>& x, const carray<T>& h0, const carray<T>& w, const carray<T>& b) {
    // x (B, T, F), h0 (B, H), w (F + H, H), b (H,) -> (h_seq (B, T, H), saved)
    const RnnShape s = check_inputs<T>("rnn_forward", x, h0, w, &b, 1);
    carray<T> h_seq = output<T>({s.B, s.T, s.H});
    carray<T> h_prev = output<T>({s.B, s.T, s.H});
    const T *px = x.data(), *ph = h0.data(), *pw = w.data(), *pb = b.data();
    T *hs = h_seq.mutable_data(), *hp = h_prev.mutable_data();
    without_gil([&] { rnn_forward_kernel<T>(s, px, ph, pw, pb, hs, hp); });
    py::dict saved;
    saved["h_prev"] = h_prev;
    saved["h_seq"] = carray<T>(h_seq.request());  // a private copy: the caller may modify the returned h_seq
    return py::make_tuple(h_seq, saved);
}

template <typename T>
py::tuple rnn_backward(const carray<T>& grad_h_seq, const py::dict& saved, const carray<T>& x, const carray<T>& h0,
                       const carray<T>& w) {
    // -> (grad_x (B, T, F), grad_h0 (B, H), grad_w (F + H, H), grad_b (H,))
    const char* op = "rnn_backward";
    const RnnShape s = check_inputs<T>(op, x, h0, w, nullptr, 1);
    require_shape(op, "grad_h_seq", grad_h_seq, {s.B, s.T, s.H});
    carray<T> h_prev = saved_array<T>(op, saved, "h_prev", {s.B, s.T, s.H});
    carray<T> h_seq = saved_array<T>(op, saved, "h_seq", {s.B, s.T, s.H});
    carray<T> gx = output<T>({s.B, s.T, s.F});
    carray<T> gh = output<T>({s.B, s.H});
    carray<T> gw = output<T>({s.F + s.H, s.H});
    carray<T> gb = output<T>({s.H});
    const T *pg = grad_h_seq.data(), *px = x.data(), *pw = w.data(), *php = h_prev.data(), *phs = h_seq.data();
    T *o1 = gx.mutable_data(), *o2 = gh.mutable_data(), *o3 = gw.mutable_data(), *o4 = gb.mutable_data();
    without_gil([&] { rnn_backward_kernel<T>(s, pg, px, pw, php, phs, o1, o2, o3, o4); });
    return py::make_tuple(gx, gh, gw, gb);
}

const char* const kLayout =
    " x is (B, T, F), h0/c0 are (B, H), w is (F + H, G*H) (input rows, then hidden rows), b is (G*H,); B, T, H >= 1."
    " Arrays must be C-contiguous and all float32 or all float64. `saved` is the dict forward returns (backend-"
    "private arrays: the state entering each step (LSTM: with that step's input), plus the gate activations).";

template <typename T>
void bind_rnn_dtype(py::module_& m) {
    const std::string layout = kLayout;
    m.def("lstm_forward", &lstm_forward<T>, py::arg("x").noconvert(), py::arg("h0").noconvert(),
          py::arg("c0").noconvert(), py::arg("w").noconvert(), py::arg("b").noconvert(),
          ("lstm_forward(x, h0, c0, w, b) -> (h_seq (B, T, H), c_last (B, H), saved {'xh', 'c_seq', 'gates'}). "
           "G = 4, gate blocks f, i, g, o; c_t = f*c + i*g, h_t = o*tanh(c_t)." + layout).c_str());
    m.def("lstm_backward", &lstm_backward<T>, py::arg("grad_h_seq").noconvert(),
          py::arg("grad_c_last").noconvert().none(true), py::arg("saved"), py::arg("x").noconvert(),
          py::arg("h0").noconvert(), py::arg("c0").noconvert(), py::arg("w").noconvert(),
          ("lstm_backward(grad_h_seq, grad_c_last or None, saved, x, h0, c0, w) -> (grad_x, grad_h0, grad_c0, grad_w, "
           "grad_b): gradients through time of lstm_forward." + layout).c_str());
    m.def("gru_forward", &gru_forward<T>, py::arg("x").noconvert(), py::arg("h0").noconvert(),
          py::arg("w").noconvert(), py::arg("b").noconvert(),
          ("gru_forward(x, h0, w, b) -> (h_seq (B, T, H), saved {'h_prev', 'rh_seq', 'gates'}). G = 3, blocks r, u, "
           "n; n = tanh(x Wx_n + (r*h) Wh_n + b_n), h_t = u*h + (1-u)*n." + layout).c_str());
    m.def("gru_backward", &gru_backward<T>, py::arg("grad_h_seq").noconvert(), py::arg("saved"),
          py::arg("x").noconvert(), py::arg("h0").noconvert(), py::arg("w").noconvert(),
          ("gru_backward(grad_h_seq, saved, x, h0, w) -> (grad_x, grad_h0, grad_w, grad_b)." + layout).c_str());
    m.def("rnn_forward", &rnn_forward<T>, py::arg("x").noconvert(), py::arg("h0").noconvert(),
          py::arg("w").noconvert(), py::arg("b").noconvert(),
          ("rnn_forward(x, h0, w, b) -> (h_seq (B, T, H), saved {'h_prev', 'h_seq'}). G = 1, "
           "h_t = tanh([x_t, h_{t-1}] @ w + b)." + layout).c_str());
    m.def("rnn_backward", &rnn_backward<T>, py::arg("grad_h_seq").noconvert(), py::arg("saved"),
          py::arg("x").noconvert(), py::arg("h0").noconvert(), py::arg("w").noconvert(),
          ("rnn_backward(grad_h_seq, saved, x, h0, w) -> (grad_x, grad_h0, grad_w, grad_b)." + layout).c_str());
}

}  // namespace

void bind_rnn(py::module_& m) {
    bind_rnn_dtype<float>(m);
    bind_rnn_dtype<double>(m);
}

}  // namespace fastdl::bind
