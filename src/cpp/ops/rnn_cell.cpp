// rnn_cell.cpp — the pointwise step kernels of rnn_cell.hpp, written once over the Ops of
// vec_math.hpp / vec_avx2.hpp / vec_avx512.hpp and compiled once per ISA (one entry each, `flatten`).
#include "ops/rnn_cell.hpp"

#include "core/vec_avx2.hpp"
#include "core/vec_avx512.hpp"
#include "core/vec_math.hpp"

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"  // vector arguments of the Ops templates; always inlined
#endif

namespace fastdl {
namespace {

// One vector position along the units: `len` lanes starting at unit k (len < W only at the row's end).
template <class Ops, typename T>
struct Lanes {
    using V = typename Ops::V;
    index_t k, len;
    bool full() const { return len == Ops::W; }
    V load(In<T> a, index_t b) const {
        const T* p = a.p + b * a.ld + k;
        return full() ? Ops::load(p) : Ops::load_n(p, len, Ops::zero());
    }
    V load(Out<T> a, index_t b) const { return load(In<T>{a.p, a.ld}, b); }
    void store(Out<T> a, index_t b, V v) const {
        T* p = a.p + b * a.ld + k;
        if (full()) Ops::store(p, v);
        else Ops::store_n(p, v, len);
    }
};

// sigmoid(x) = 1 / (1 + exp(-x)), never exponentiating a positive number.
template <class Ops, typename V>
inline V sigmoid_v(V x) {
    const V one = Ops::set1(1);
    V e = Ops::exp(Ops::sub(Ops::zero(), Ops::abs(x)));
    return Ops::div(Ops::select_nonneg(x, one, e), Ops::add(one, e));
}

// tanh(x) = sign(x) * -m / (2 + m), m = expm1(-2|x|): accurate near 0, exactly +-1 for large |x|.
template <class Ops, typename V>
inline V tanh_v(V x) {
    V m = Ops::expm1(Ops::mul(Ops::set1(-2), Ops::abs(x)));
    return Ops::copysign(Ops::div(Ops::sub(Ops::zero(), m), Ops::add(Ops::set1(2), m)), x);
}

// d/dz of sigmoid, tanh through the output y
template <class Ops, typename V>
inline V dsigmoid_v(V y) {
    return Ops::mul(y, Ops::sub(Ops::set1(1), y));
}
template <class Ops, typename V>
inline V dtanh_v(V y) {
    return Ops::sub(Ops::set1(1), Ops::mul(y, y));
}

// Calls step(lanes, b) for every row b and every vector position of the units.
template <class Ops, typename T, class Step>
inline void for_each_lane(const CellArgs<T>& a, Step step) {
    for (index_t b = 0; b < a.rows; ++b)
        for (index_t k = 0; k < a.units; k += Ops::W)
            step(Lanes<Ops, T>{k, std::min<index_t>(Ops::W, a.units - k)}, b);
}

template <class Ops, typename T>
inline void lstm_forward_cell(const CellArgs<T>& a) {
    // all views (rows, units); gates f, i, g, o
    for_each_lane<Ops>(a, [&](const Lanes<Ops, T>& l, index_t b) {
        auto f = sigmoid_v<Ops>(Ops::add(l.load(a.zx[0], b), l.load(a.zr[0], b)));
        auto i = sigmoid_v<Ops>(Ops::add(l.load(a.zx[1], b), l.load(a.zr[1], b)));
        auto g = tanh_v<Ops>(Ops::add(l.load(a.zx[2], b), l.load(a.zr[2], b)));
        auto o = sigmoid_v<Ops>(Ops::add(l.load(a.zx[3], b), l.load(a.zr[3], b)));
        auto c = Ops::fmadd(f, l.load(a.c_prev, b), Ops::mul(i, g));
        auto h = Ops::mul(o, tanh_v<Ops>(c));
        l.store(a.gate_out[0], b, f);
        l.store(a.gate_out[1], b, i);
        l.store(a.gate_out[2], b, g);
        l.store(a.gate_out[3], b, o);
        l.store(a.c_out, b, c);
        l.store(a.h_out, b, h);
        if (a.h_copy.p) l.store(a.h_copy, b, h);
    });
}

template <class Ops, typename T>
inline void lstm_backward_cell(const CellArgs<T>& a) {
    // all views (rows, units)
    for_each_lane<Ops>(a, [&](const Lanes<Ops, T>& l, index_t b) {
        auto f = l.load(a.gate[0], b), i = l.load(a.gate[1], b);
        auto g = l.load(a.gate[2], b), o = l.load(a.gate[3], b);
        auto tc = tanh_v<Ops>(l.load(a.c, b));
        auto dh = Ops::add(l.load(a.grad_h, b), l.load(a.dh_next, b));
        auto dc = Ops::fmadd(Ops::mul(dh, o), dtanh_v<Ops>(tc), l.load(a.dc, b));
        l.store(a.dz[0], b, Ops::mul(Ops::mul(dc, l.load(a.c_prev, b)), dsigmoid_v<Ops>(f)));
        l.store(a.dz[1], b, Ops::mul(Ops::mul(dc, g), dsigmoid_v<Ops>(i)));
        l.store(a.dz[2], b, Ops::mul(Ops::mul(dc, i), dtanh_v<Ops>(g)));
        l.store(a.dz[3], b, Ops::mul(Ops::mul(dh, tc), dsigmoid_v<Ops>(o)));
        l.store(a.dc, b, Ops::mul(dc, f));
    });
}

template <class Ops, typename T>
inline void gru_forward_ru_cell(const CellArgs<T>& a) {
    for_each_lane<Ops>(a, [&](const Lanes<Ops, T>& l, index_t b) {
        auto r = sigmoid_v<Ops>(Ops::add(l.load(a.zx[0], b), l.load(a.zr[0], b)));
        auto u = sigmoid_v<Ops>(Ops::add(l.load(a.zx[1], b), l.load(a.zr[1], b)));
        l.store(a.gate_out[0], b, r);
        l.store(a.gate_out[1], b, u);
        l.store(a.rh, b, Ops::mul(r, l.load(a.h_prev, b)));
    });
}

template <class Ops, typename T>
inline void gru_forward_n_cell(const CellArgs<T>& a) {
    for_each_lane<Ops>(a, [&](const Lanes<Ops, T>& l, index_t b) {
        auto n = tanh_v<Ops>(Ops::add(l.load(a.zx[2], b), l.load(a.zr[2], b)));
        auto u = l.load(a.gate[1], b), hp = l.load(a.h_prev, b);
        auto h = Ops::fmadd(u, Ops::sub(hp, n), n);  // u*h + (1-u)*n
        l.store(a.gate_out[2], b, n);
        l.store(a.h_out, b, h);
        if (a.h_copy.p) l.store(a.h_copy, b, h);
    });
}

template <class Ops, typename T>
inline void gru_backward_n_cell(const CellArgs<T>& a) {
    for_each_lane<Ops>(a, [&](const Lanes<Ops, T>& l, index_t b) {
        auto dh = Ops::add(l.load(a.grad_h, b), Ops::add(l.load(a.dh_next, b), l.load(a.dh_extra, b)));
        auto u = l.load(a.gate[1], b), n = l.load(a.gate[2], b);
        l.store(a.dh, b, dh);
        l.store(a.dz[2], b, Ops::mul(Ops::mul(dh, Ops::sub(Ops::set1(1), u)), dtanh_v<Ops>(n)));
    });
}

template <class Ops, typename T>
inline void gru_backward_ru_cell(const CellArgs<T>& a) {
    for_each_lane<Ops>(a, [&](const Lanes<Ops, T>& l, index_t b) {
        auto dh = l.load(a.dh_in, b), drh = l.load(a.drh, b), hp = l.load(a.h_prev, b);
        auto r = l.load(a.gate[0], b), u = l.load(a.gate[1], b), n = l.load(a.gate[2], b);
        l.store(a.dz[0], b, Ops::mul(Ops::mul(drh, hp), dsigmoid_v<Ops>(r)));
        l.store(a.dz[1], b, Ops::mul(Ops::mul(dh, Ops::sub(hp, n)), dsigmoid_v<Ops>(u)));
        l.store(a.dh_partial, b, Ops::fmadd(dh, u, Ops::mul(drh, r)));
    });
}

template <class Ops, typename T>
inline void rnn_forward_cell(const CellArgs<T>& a) {
    for_each_lane<Ops>(a, [&](const Lanes<Ops, T>& l, index_t b) {
        auto h = tanh_v<Ops>(Ops::add(l.load(a.zx[0], b), l.load(a.zr[0], b)));
        l.store(a.h_out, b, h);
        if (a.h_copy.p) l.store(a.h_copy, b, h);
    });
}

template <class Ops, typename T>
inline void rnn_backward_cell(const CellArgs<T>& a) {
    for_each_lane<Ops>(a, [&](const Lanes<Ops, T>& l, index_t b) {
        auto dh = Ops::add(l.load(a.grad_h, b), l.load(a.dh_next, b));
        l.store(a.dz[0], b, Ops::mul(dh, dtanh_v<Ops>(l.load(a.gate[0], b))));
    });
}

template <class Ops, typename T>
inline void cell_generic(Cell cell, const CellArgs<T>& a) {
    switch (cell) {
        case Cell::lstm_forward: lstm_forward_cell<Ops>(a); break;
        case Cell::lstm_backward: lstm_backward_cell<Ops>(a); break;
        case Cell::gru_forward_ru: gru_forward_ru_cell<Ops>(a); break;
        case Cell::gru_forward_n: gru_forward_n_cell<Ops>(a); break;
        case Cell::gru_backward_n: gru_backward_n_cell<Ops>(a); break;
        case Cell::gru_backward_ru: gru_backward_ru_cell<Ops>(a); break;
        case Cell::rnn_forward: rnn_forward_cell<Ops>(a); break;
        case Cell::rnn_backward: rnn_backward_cell<Ops>(a); break;
    }
}

// One entry per ISA; `flatten` inlines the generic code and that ISA's Ops into it.
template <typename T>
[[gnu::flatten]] void cell_scalar(Cell cell, const CellArgs<T>& a) {
    cell_generic<scalar::Ops<T>>(cell, a);
}

#if defined(__x86_64__)
template <typename T>
[[gnu::target("avx2,fma"), gnu::flatten]] void cell_avx2(Cell cell, const CellArgs<T>& a) {
    cell_generic<avx2::Ops<T>>(cell, a);
}

template <typename T>
[[gnu::target("avx512f,avx512dq"), gnu::flatten]] void cell_avx512(Cell cell, const CellArgs<T>& a) {
    cell_generic<avx512::Ops<T>>(cell, a);
}
#endif

}  // namespace

template <typename T>
void run_cell(Cell cell, const CellArgs<T>& args) {
    if (args.rows <= 0 || args.units <= 0) return;
#if defined(__x86_64__)
    const VecIsa isa = active_vec_isa();
    if (isa == VecIsa::avx512) return cell_avx512<T>(cell, args);
    if (isa == VecIsa::avx2) return cell_avx2<T>(cell, args);
#endif
    cell_scalar<T>(cell, args);
}

template void run_cell<float>(Cell, const CellArgs<float>&);
template void run_cell<double>(Cell, const CellArgs<double>&);

}  // namespace fastdl
