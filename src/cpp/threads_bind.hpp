// threads_bind.hpp — registers the thread-count functions of _core (threads_bind.cpp).
#pragma once

#include <pybind11/pybind11.h>

namespace fastdl {

void bind_threads(pybind11::module_& m);

}  // namespace fastdl
