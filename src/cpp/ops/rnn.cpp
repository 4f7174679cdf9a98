// rnn.cpp — LSTM, GRU and vanilla RNN forward and backward through time (see rnn.hpp for the layouts).
//
// The time loop cuts the hidden units into one slice [j0, j0 + n) per thread: per step each slice runs its
// share of the recurrent GEMM (all the gates of its units) and then the fused gate math of its units, so only
// the new state has to cross slices (one phase boundary per GEMM that reads it; see for_each_slice). The
// split depends on the thread count asked for, never on which thread runs a slice. All index math is 64-bit.
#include "ops/rnn.hpp"

#include "ops/rnn_cell.hpp"
#include "ops/rnn_steps.hpp"

namespace fastdl {

using namespace rnn_detail;

namespace {

// Where every backward step starts: the cell views of slice u at step t, gate g's activations and
// its pre-activation gradient being columns [g*H + j0, g*H + j0 + n) of the (B, T, G*H) arrays gates, dz.
template <typename T>
CellArgs<T> backward_step_views(index_t B, index_t S, index_t H, index_t G, const UnitRange& u, index_t t,
                                const T* gates, T* dz) {
    const index_t GH = G * H;
    CellArgs<T> a;
    a.rows = B;
    a.units = u.n;
    for (index_t g = 0; g < G; ++g) {
        a.gate[g] = {gates + t * GH + g * H + u.j0, S * GH};
        a.dz[g] = {dz + t * GH + g * H + u.j0, S * GH};
    }
    return a;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// LSTM (G = 4: f, i, g, o)
// ---------------------------------------------------------------------------------------------
template <typename T>
void lstm_forward_kernel(const RnnShape& s, const T* x, const T* h0, const T* c0, const T* w, const T* b, T* h_seq,
                         T* c_last, T* xh, T* c_seq, T* gates) {
    // x is (B, T, F), h0, c0 are (B, H), w is (F + H, 4H), b is (4H,) -> h_seq (B, T, H), c_last (B, H);
    // saved: xh (B, T, F + H) = [x_t, h_{t-1}] per step, c_seq (B, T, H), gates (B, T, 4H)
    const index_t B = s.B, S = s.T, F = s.F, H = s.H, G = 4, GH = G * H, FH = F + H;
    copy_rows(x, F, xh, FH, B * S, F);        // xh[:, :, :F] = x
    copy_rows(h0, H, xh + F, S * FH, B, H);  // xh[:, 0, F:] = h0
    const int nt = step_threads(B, H, G);
    auto wg = scratch<T>(FH * GH);  // (F + H, 4H) = w, each slice's gate columns adjacent
    SlicePanels<T> w_panels(H, nt, FH, G);
    SliceWeights<T> w_p(nt);        // slice p: wg[:, 4 j0 : 4 (j0 + n)] (F + H, 4n), packed
    auto z = scratch<T>(B * GH);    // (B, 4H) = [x_t, h_{t-1}] @ wg, same column order
    auto step = [&](int p, const UnitRange& u, index_t t) {
        // z[:, 4 j0 : 4 (j0 + n)] (B, 4n) = xh_t (B, F + H) @ wg[:, 4 j0 : 4 (j0 + n)] (F + H, 4n): the
        // input and the recurrent product of the step in one GEMM (x_t adds depth, not a second pass)
        w_p[p]->multiply(B, xh + t * FH, S * FH, z.get() + G * u.j0, GH);
        CellArgs<T> a;
        a.rows = B;
        a.units = u.n;
        for (index_t g = 0; g < G; ++g) {
            a.zx[g] = {b + g * H + u.j0, 0};  // the bias, the same for every row
            a.zr[g] = {z.get() + G * u.j0 + g * u.n, GH};
            a.gate_out[g] = {gates + t * GH + g * H + u.j0, S * GH};  // (B, n) rows T*4H apart
        }
        a.c_prev = t > 0 ? In<T>{c_seq + (t - 1) * H + u.j0, S * H} : In<T>{c0 + u.j0, H};
        a.c_out = {c_seq + t * H + u.j0, S * H};
        a.h_out = {h_seq + t * H + u.j0, S * H};
        if (t + 1 < S) a.h_copy = {xh + (t + 1) * FH + F + u.j0, S * FH};
        run_cell(Cell::lstm_forward, a);
    };
    for_each_slice(nt, H, [&](int p, const UnitRange& u) {
        // only this slice's GEMMs read its columns of w: it lays them out and packs them itself
        group_slice_columns(w, FH, H, G, GH, p, nt, wg.get());
        w_p[p].emplace(FH, G * u.n, wg.get() + G * u.j0, GH, 1, w_panels.of(p, u));
        step(p, u, 0);
    });
    for (index_t t = 1; t < S; ++t)  // one phase per step: h_{t-1} complete before the step's GEMM reads it
        for_each_slice(nt, H, [&](int p, const UnitRange& u) { step(p, u, t); });
    copy_rows(c_seq + (S - 1) * H, S * H, c_last, H, B, H);
}

template <typename T>
void lstm_backward_kernel(const RnnShape& s, const T* grad_h_seq, const T* grad_c_last, const T* c0, const T* w,
                          const T* xh, const T* c_seq, const T* gates, T* grad_x, T* grad_h0, T* grad_c0, T* grad_w,
                          T* grad_b) {
    // grad_h_seq (B, T, H), grad_c_last (B, H) or null, w (F + H, 4H), saved as in forward
    // -> grad_x (B, T, F), grad_h0 (B, H), grad_c0 (B, H), grad_w (F + H, 4H), grad_b (4H,)
    const index_t B = s.B, S = s.T, F = s.F, H = s.H, G = 4, GH = G * H, FH = F + H;
    const int nt = step_threads(B, H, G);
    SlicePanels<T> whT_panels(H, nt, GH, 1);  // each slice's columns of whT (4H, H) = w[F:]^T
    SliceWeights<T> whT(nt);                  // slice p: whT[:, j0 : j0 + n] (4H, n), packed
    auto dz = scratch<T>(B * S * GH);  // (B, T, 4H) pre-activation gradients
    // grad_h0 carries dh_{t+1} (B, H) through the loop, grad_c0 carries dc_{t+1}
    std::memset(grad_h0, 0, static_cast<size_t>(B * H) * sizeof(T));
    if (grad_c_last) std::memcpy(grad_c0, grad_c_last, static_cast<size_t>(B * H) * sizeof(T));
    else std::memset(grad_c0, 0, static_cast<size_t>(B * H) * sizeof(T));
    // grad_b is summed per step while dz_t is in cache: each column by its unit's slice, steps T-1 .. 0 and
    // rows in order, so the sum does not depend on the thread count.
    std::memset(grad_b, 0, static_cast<size_t>(GH) * sizeof(T));
    auto cell = [&](const UnitRange& u, index_t t) {
        CellArgs<T> a = backward_step_views(B, S, H, G, u, t, gates, dz.get());
        a.c = {c_seq + t * H + u.j0, S * H};
        a.c_prev = t > 0 ? In<T>{c_seq + (t - 1) * H + u.j0, S * H} : In<T>{c0 + u.j0, H};
        a.grad_h = {grad_h_seq + t * H + u.j0, S * H};
        a.dh_next = {grad_h0 + u.j0, H};
        a.dc = {grad_c0 + u.j0, H};
        run_cell(Cell::lstm_backward, a);
        for (index_t g = 0; g < G; ++g)  // grad_b[g H + j0 : g H + j0 + n] += dz_t[:, same columns].sum(0)
            add_row_sums(dz.get() + t * GH + g * H + u.j0, S * GH, B, u.n, grad_b + g * H + u.j0);
    };
    auto carry = [&](int p, const UnitRange& u, index_t t) {
        // dh_t[:, j0 : j0 + n] (B, n) = dz_t (B, 4H) @ whT[:, j0 : j0 + n] (4H, n)
        whT[p]->multiply(B, dz.get() + t * GH, S * GH, grad_h0 + u.j0, H);
    };
    for_each_slice(nt, H, [&](int p, const UnitRange& u) {
        // whT[:, j0 : j0 + n] (4H, n) = w[F + j0 : F + j0 + n]^T: only this slice's GEMM reads these columns,
        // so each slice packs its own
        whT[p].emplace(GH, u.n, w + (F + u.j0) * GH, 1, GH, whT_panels.of(p, u));
        cell(u, S - 1);
    });
    // one phase per step: dz_t complete before the GEMMs read all its columns; dh_t of a slice is read only by
    // the same slice's next cell step
    for (index_t t = S - 1; t > 0; --t)
        for_each_slice(nt, H, [&](int p, const UnitRange& u) {
            carry(p, u, t);
            cell(u, t - 1);
        });
    for_each_slice(nt, H, [&](int p, const UnitRange& u) { carry(p, u, 0); });
    // grad_x (B*T, F) = dz @ w[:F]^T; grad_w (F + H, 4H) = xh (B*T, F + H)^T @ dz (B*T, 4H): one GEMM for
    // both the input and the hidden rows
    gemm<T>(B * S, F, GH, dz.get(), GH, false, w, GH, true, grad_x, F);
    gemm<T>(FH, GH, B * S, xh, FH, true, dz.get(), GH, false, grad_w, GH);
}

// ---------------------------------------------------------------------------------------------
// GRU (G = 3: r, u, n; n = tanh(x Wx_n + (r*h) Wh_n + b_n))
// ---------------------------------------------------------------------------------------------
template <typename T>
void gru_forward_kernel(const RnnShape& s, const T* x, const T* h0, const T* w, const T* b, T* h_seq, T* h_prev,
                        T* rh_seq, T* gates) {
    // x is (B, T, F), h0 is (B, H), w is (F + H, 3H), b is (3H,) -> h_seq (B, T, H);
    // saved: h_prev (B, T, H), rh_seq (B, T, H), gates (B, T, 3H)
    const index_t B = s.B, S = s.T, H = s.H, G = 3, GH = G * H;
    input_projection(B * S, s.F, s.F, GH, x, w, b, gates);
    copy_rows(h0, H, h_prev, S * H, B, H);
    const int nt = step_threads(B, H, G);
    const T* w_hidden = w + s.F * GH;  // (H, 3H)
    auto wru = scratch<T>(H * 2 * H);  // (H, 2H): Wh_r | Wh_u, each slice's columns adjacent
    SlicePanels<T> wru_panels(H, nt, H, 2), wn_panels(H, nt, H, 1);
    SliceWeights<T> wru_p(nt), wn_p(nt);  // slice p: wru[:, 2 j0 : 2 (j0 + n)] (H, 2n), Wh_n[:, j0 : j0 + n] (H, n)
    auto zru = scratch<T>(B * 2 * H);  // (B, 2H) = h_{t-1} @ wru
    auto zn = scratch<T>(B * H);       // (B, H) = (r * h_{t-1}) @ Wh_n
    auto views = [&](const UnitRange& u, index_t t) {
        T* z = gates + t * GH + u.j0;  // (B, .) rows T*3H apart; + g*H selects gate g
        CellArgs<T> a;
        a.rows = B;
        a.units = u.n;
        for (index_t g = 0; g < G; ++g) {
            a.zx[g] = {z + g * H, S * GH};
            a.gate[g] = {z + g * H, S * GH};
            a.gate_out[g] = {z + g * H, S * GH};
        }
        a.zr[0] = {zru.get() + 2 * u.j0, 2 * H};
        a.zr[1] = {zru.get() + 2 * u.j0 + u.n, 2 * H};
        a.zr[2] = {zn.get() + u.j0, H};
        a.h_prev = {h_prev + t * H + u.j0, S * H};
        a.rh = {rh_seq + t * H + u.j0, S * H};
        a.h_out = {h_seq + t * H + u.j0, S * H};
        if (t + 1 < S) a.h_copy = {h_prev + (t + 1) * H + u.j0, S * H};
        return a;
    };
    auto reset_gates = [&](int p, const UnitRange& u, index_t t) {
        // zru[:, 2 j0 : 2 (j0 + n)] (B, 2n) = h_{t-1} (B, H) @ wru[:, 2 j0 : 2 (j0 + n)] (H, 2n)
        wru_p[p]->multiply(B, h_prev + t * H, S * H, zru.get() + 2 * u.j0, 2 * H);
        run_cell(Cell::gru_forward_ru, views(u, t));
    };
    auto new_state = [&](int p, const UnitRange& u, index_t t) {
        // zn[:, j0 : j0 + n] (B, n) = rh_t (B, H) @ Wh_n[:, j0 : j0 + n] (H, n)
        wn_p[p]->multiply(B, rh_seq + t * H, S * H, zn.get() + u.j0, H);
        run_cell(Cell::gru_forward_n, views(u, t));
    };
    for_each_slice(nt, H, [&](int p, const UnitRange& u) {
        group_slice_columns(w_hidden, H, H, index_t(2), GH, p, nt, wru.get());  // this slice's columns only
        wru_p[p].emplace(H, 2 * u.n, wru.get() + 2 * u.j0, 2 * H, 1, wru_panels.of(p, u));
        wn_p[p].emplace(H, u.n, w_hidden + 2 * H + u.j0, GH, 1, wn_panels.of(p, u));
        reset_gates(p, u, 0);
    });
    // two phases per step: r * h_{t-1} complete before the n GEMM, h_t complete before the next step's
    for (index_t t = 0; t < S; ++t) {
        if (t > 0) for_each_slice(nt, H, [&](int p, const UnitRange& u) { reset_gates(p, u, t); });
        for_each_slice(nt, H, [&](int p, const UnitRange& u) { new_state(p, u, t); });
    }
}

template <typename T>
void gru_backward_kernel(const RnnShape& s, const T* grad_h_seq, const T* x, const T* w, const T* h_prev,
                         const T* rh_seq, const T* gates, T* grad_x, T* grad_h0, T* grad_w, T* grad_b) {
    // grad_h_seq (B, T, H), x (B, T, F), w (F + H, 3H), saved as in forward
    // -> grad_x (B, T, F), grad_h0 (B, H), grad_w (F + H, 3H), grad_b (3H,)
    const index_t B = s.B, S = s.T, F = s.F, H = s.H, G = 3, GH = G * H;
    const T* w_hidden = w + F * GH;  // (H, 3H)
    const int nt = step_threads(B, H, G);
    // each slice's columns of w_hidden^T (3H, H): rows [0, 2H) are Wh_ru^T, rows [2H, 3H) Wh_n^T
    SlicePanels<T> wruT_panels(H, nt, 2 * H, 1), wnT_panels(H, nt, H, 1);
    SliceWeights<T> wruT(nt), wnT(nt);  // slice p: Wh_ru^T[:, j0 : j0 + n] (2H, n), Wh_n^T[:, j0 : j0 + n] (H, n)
    auto dz = scratch<T>(B * S * GH);  // (B, T, 3H)
    auto dh = scratch<T>(B * H);       // (B, H) total dh_t
    auto drh = scratch<T>(B * H);      // (B, H) dz_n @ Wh_n^T
    auto part = zeros<T>(B * H);       // (B, H) dh * u + drh * r  (part of dh_{t-1})
    auto rest = zeros<T>(B * H);       // (B, H) dz_ru @ Wh_ru^T   (the rest of dh_{t-1})
    auto views = [&](const UnitRange& u, index_t t) {
        CellArgs<T> a = backward_step_views(B, S, H, G, u, t, gates, dz.get());
        a.grad_h = {grad_h_seq + t * H + u.j0, S * H};
        a.dh_next = {part.get() + u.j0, H};
        a.dh_extra = {rest.get() + u.j0, H};
        a.dh = {dh.get() + u.j0, H};
        a.dh_in = {dh.get() + u.j0, H};
        a.drh = {drh.get() + u.j0, H};
        a.h_prev = {h_prev + t * H + u.j0, S * H};
        a.dh_partial = {part.get() + u.j0, H};
        return a;
    };
    auto reset_grads = [&](int p, const UnitRange& u, index_t t) {
        // drh[:, j0 : j0 + n] (B, n) = dz_n (B, H) @ Wh_n^T[:, j0 : j0 + n] (H, n)
        wnT[p]->multiply(B, dz.get() + t * GH + 2 * H, S * GH, drh.get() + u.j0, H);
        run_cell(Cell::gru_backward_ru, views(u, t));
    };
    auto carry = [&](int p, const UnitRange& u, index_t t) {
        // rest[:, j0 : j0 + n] (B, n) = dz_ru (B, 2H) @ Wh_ru^T[:, j0 : j0 + n] (2H, n)
        wruT[p]->multiply(B, dz.get() + t * GH, S * GH, rest.get() + u.j0, H);
    };
    for_each_slice(nt, H, [&](int p, const UnitRange& u) {
        wruT[p].emplace(2 * H, u.n, w_hidden + u.j0 * GH, 1, GH, wruT_panels.of(p, u));
        wnT[p].emplace(H, u.n, w_hidden + u.j0 * GH + 2 * H, 1, GH, wnT_panels.of(p, u));
        run_cell(Cell::gru_backward_n, views(u, S - 1));
    });
    // two phases per step: dz_n complete before the Wh_n GEMM, dz_r, dz_u before the Wh_ru one; part and rest
    // of a slice are read only by the same slice's next step
    for (index_t t = S - 1; t >= 0; --t) {
        for_each_slice(nt, H, [&](int p, const UnitRange& u) { reset_grads(p, u, t); });
        for_each_slice(nt, H, [&](int p, const UnitRange& u) {
            carry(p, u, t);
            if (t > 0) run_cell(Cell::gru_backward_n, views(u, t - 1));
        });
    }
    for (index_t k = 0; k < B * H; ++k) grad_h0[k] = part[k] + rest[k];
    input_gradients(B * S, F, GH, x, w, dz.get(), grad_x, grad_w, grad_b);
    T* gw_hidden = grad_w + F * GH;
    // gw_hidden[:, :2H] (H, 2H) = h_prev (B*T, H)^T @ dz[:, :, :2H];  gw_hidden[:, 2H:] = rh_seq^T @ dz[:, :, 2H:]
    gemm<T>(H, 2 * H, B * S, h_prev, H, true, dz.get(), GH, false, gw_hidden, GH);
    gemm<T>(H, H, B * S, rh_seq, H, true, dz.get() + 2 * H, GH, false, gw_hidden + 2 * H, GH);
}

// ---------------------------------------------------------------------------------------------
// vanilla RNN (G = 1): h_t = tanh(x_t Wx + h_{t-1} Wh + b)
// ---------------------------------------------------------------------------------------------
template <typename T>
void rnn_forward_kernel(const RnnShape& s, const T* x, const T* h0, const T* w, const T* b, T* h_seq, T* h_prev) {
    // x is (B, T, F), h0 is (B, H), w is (F + H, H), b is (H,) -> h_seq (B, T, H); saved: h_prev (B, T, H)
    const index_t B = s.B, S = s.T, H = s.H;
    input_projection(B * S, s.F, s.F, H, x, w, b, h_seq);  // h_seq holds z_x until overwritten by h
    copy_rows(h0, H, h_prev, S * H, B, H);
    const T* wh = w + s.F * H;  // (H, H)
    auto zr = scratch<T>(B * H);
    const int nt = step_threads(B, H, 1);
    SlicePanels<T> wh_panels(H, nt, H, 1);
    SliceWeights<T> wh_p(nt);  // slice p: wh[:, j0 : j0 + n] (H, n), packed
    auto step = [&](int p, const UnitRange& u, index_t t) {
        // zr[:, j0 : j0 + n] (B, n) = h_{t-1} (B, H) @ wh[:, j0 : j0 + n] (H, n)
        wh_p[p]->multiply(B, h_prev + t * H, S * H, zr.get() + u.j0, H);
        CellArgs<T> a;
        a.rows = B;
        a.units = u.n;
        a.zx[0] = {h_seq + t * H + u.j0, S * H};
        a.zr[0] = {zr.get() + u.j0, H};
        a.h_out = {h_seq + t * H + u.j0, S * H};
        if (t + 1 < S) a.h_copy = {h_prev + (t + 1) * H + u.j0, S * H};
        run_cell(Cell::rnn_forward, a);
    };
    for_each_slice(nt, H, [&](int p, const UnitRange& u) {
        wh_p[p].emplace(H, u.n, wh + u.j0, H, 1, wh_panels.of(p, u));
        step(p, u, 0);
    });
    for (index_t t = 1; t < S; ++t)  // one phase per step: h_{t-1} complete before the step's GEMM reads it
        for_each_slice(nt, H, [&](int p, const UnitRange& u) { step(p, u, t); });
}

template <typename T>
void rnn_backward_kernel(const RnnShape& s, const T* grad_h_seq, const T* x, const T* w, const T* h_prev,
                         const T* h_seq, T* grad_x, T* grad_h0, T* grad_w, T* grad_b) {
    // grad_h_seq, h_prev, h_seq (B, T, H), x (B, T, F), w (F + H, H)
    // -> grad_x (B, T, F), grad_h0 (B, H), grad_w (F + H, H), grad_b (H,)
    const index_t B = s.B, S = s.T, F = s.F, H = s.H;
    auto dz = scratch<T>(B * S * H);  // (B, T, H)
    std::memset(grad_h0, 0, static_cast<size_t>(B * H) * sizeof(T));  // carries dh_{t+1}
    const int nt = step_threads(B, H, 1);
    SlicePanels<T> whT_panels(H, nt, H, 1);
    SliceWeights<T> whT(nt);  // slice p: w[F:]^T[:, j0 : j0 + n] (H, n), packed
    auto cell = [&](const UnitRange& u, index_t t) {
        CellArgs<T> a = backward_step_views(B, S, H, index_t(1), u, t, h_seq, dz.get());  // the gate is h
        a.grad_h = {grad_h_seq + t * H + u.j0, S * H};
        a.dh_next = {grad_h0 + u.j0, H};
        run_cell(Cell::rnn_backward, a);
    };
    auto carry = [&](int p, const UnitRange& u, index_t t) {
        // dh[:, j0 : j0 + n] (B, n) = dz_t (B, H) @ whT[:, j0 : j0 + n] (H, n)
        whT[p]->multiply(B, dz.get() + t * H, S * H, grad_h0 + u.j0, H);
    };
    for_each_slice(nt, H, [&](int p, const UnitRange& u) {
        whT[p].emplace(H, u.n, w + (F + u.j0) * H, 1, H, whT_panels.of(p, u));
        cell(u, S - 1);
    });
    for (index_t t = S - 1; t > 0; --t)  // one phase per step, as in lstm_backward_kernel
        for_each_slice(nt, H, [&](int p, const UnitRange& u) {
            carry(p, u, t);
            cell(u, t - 1);
        });
    for_each_slice(nt, H, [&](int p, const UnitRange& u) { carry(p, u, 0); });
    input_gradients(B * S, F, H, x, w, dz.get(), grad_x, grad_w, grad_b);
    gemm<T>(H, H, B * S, h_prev, H, true, dz.get(), H, false, grad_w + F * H, H);
}

template void lstm_forward_kernel<float>(const RnnShape&, const float*, const float*, const float*, const float*,
    const float*, float*, float*, float*, float*, float*);
template void lstm_backward_kernel<float>(const RnnShape&, const float*, const float*, const float*, const float*,
    const float*, const float*, const float*, float*, float*, float*, float*, float*);
template void gru_forward_kernel<float>(const RnnShape&, const float*, const float*, const float*, const float*,
    float*, float*, float*, float*);
template void gru_backward_kernel<float>(const RnnShape&, const float*, const float*, const float*, const float*,
    const float*, const float*, float*, float*, float*, float*);
template void rnn_forward_kernel<float>(const RnnShape&, const float*, const float*, const float*, const float*,
    float*, float*);
template void rnn_backward_kernel<float>(const RnnShape&, const float*, const float*, const float*, const float*,
    const float*, float*, float*, float*, float*);
template void lstm_forward_kernel<double>(const RnnShape&, const double*, const double*, const double*, const double*,
    const double*, double*, double*, double*, double*, double*);
template void lstm_backward_kernel<double>(const RnnShape&, const double*, const double*, const double*,
    const double*, const double*, const double*, const double*, double*, double*, double*, double*, double*);
template void gru_forward_kernel<double>(const RnnShape&, const double*, const double*, const double*, const double*,
    double*, double*, double*, double*);
template void gru_backward_kernel<double>(const RnnShape&, const double*, const double*, const double*, const double*,
    const double*, const double*, double*, double*, double*, double*);
template void rnn_forward_kernel<double>(const RnnShape&, const double*, const double*, const double*, const double*,
    double*, double*);
template void rnn_backward_kernel<double>(const RnnShape&, const double*, const double*, const double*, const double*,
    const double*, double*, double*, double*, double*);

}  // namespace fastdl
