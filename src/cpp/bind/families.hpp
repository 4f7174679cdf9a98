// families.hpp — one registration function per kernel family of _core, each in its own file of this folder;
// module.cpp calls them all. Only the files of src/cpp/bind/ include pybind11.
#pragma once

#include <pybind11/pybind11.h>

namespace fastdl {

void bind_linear(pybind11::module_& m);                 // linear.cpp: matmul, linear, linear_backward
void bind_activations(pybind11::module_& m);            // activations.cpp
void bind_dropout(pybind11::module_& m);                // dropout.cpp
void bind_softmax_cross_entropy(pybind11::module_& m);  // softmax_cross_entropy.cpp
void bind_conv(pybind11::module_& m);                   // conv.cpp
void bind_rnn(pybind11::module_& m);                    // rnn.cpp
void bind_threads(pybind11::module_& m);                // threads.cpp
void bind_machine(pybind11::module_& m);                // module.cpp: GEMM kernel choice, CPU features

}  // namespace fastdl
