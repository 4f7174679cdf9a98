// bind_families.hpp — one registration function per family of _core functions; module.cpp calls them all.
#pragma once

#include <pybind11/pybind11.h>

namespace fastdl::bind {

// matmul (float32 and float64) and the GEMM kernel controls: gemm_kernels, selected_gemm_kernel,
// force_gemm_kernel, cpu_features (matmul.cpp).
void bind_matmul(pybind11::module_& m);
// linear and linear_backward, float32 and float64 (linear.cpp).
void bind_linear(pybind11::module_& m);
// conv2d, conv2d_backward (float32 and float64), force_conv_algorithm, forced_conv_algorithm (conv.cpp).
void bind_conv(pybind11::module_& m);
// softmax_cross_entropy: dense targets and int64 labels, float32 and float64 (softmax_cross_entropy.cpp).
void bind_softmax_cross_entropy(pybind11::module_& m);
// activation_forward and activation_backward, float32 and float64 (activations.cpp).
void bind_activations(pybind11::module_& m);
// vec_isa and force_vec_isa: the SIMD path of the softmax, activation and RNN cell kernels (vec_isa.cpp).
void bind_vec_isa(pybind11::module_& m);
// dropout_forward and dropout_backward, float32 and float64 (dropout.cpp).
void bind_dropout(pybind11::module_& m);
// lstm_, gru_ and rnn_forward / _backward, float32 and float64 (rnn.cpp).
void bind_rnn(pybind11::module_& m);
// parameter_update_float32 / _float64: one fused optimizer step over lists of arrays (parameter_update.cpp).
void bind_parameter_update(pybind11::module_& m);
// take_rows: the row gather of a training batch, any numeric dtype (take_rows.cpp).
void bind_take_rows(pybind11::module_& m);
// set_num_threads, get_num_threads and the pool's test and tuning hooks (threads.cpp).
void bind_threads(pybind11::module_& m);

}  // namespace fastdl::bind
