// module.cpp — PYBIND11_MODULE(_core): registers every family of functions (one file each in this folder).
// Arrays arrive C-contiguous and of one float dtype (fastdl.kernels sees to it); the bindings check shapes
// (ValueError, never a crash), release the GIL and call the plain C++ kernels of core/, gemm/ and ops/.
#include <pybind11/pybind11.h>

#include "bind/bind_families.hpp"

PYBIND11_MODULE(_core, m) {
    m.doc() = "fastdl._core: compiled CPU kernels (packed GEMM with fused epilogues, linear forward/backward, "
              "im2col convolution, fused softmax cross-entropy, vectorised activations, RNN/LSTM/GRU sequences, the fused optimizer step, the batch row gather).";

    fastdl::bind::bind_matmul(m);
    fastdl::bind::bind_linear(m);
    fastdl::bind::bind_threads(m);
    fastdl::bind::bind_conv(m);
    fastdl::bind::bind_rnn(m);
    fastdl::bind::bind_softmax_cross_entropy(m);
    fastdl::bind::bind_vec_isa(m);
    fastdl::bind::bind_activations(m);
    fastdl::bind::bind_dropout(m);
    fastdl::bind::bind_parameter_update(m);
    fastdl::bind::bind_take_rows(m);
}
