// The one project header that includes pybind11; every binding file includes this.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <string>
#include <vector>

#include "lrcore/errors.hpp"

namespace py = pybind11;

namespace lrcore::bindings {

// Float64, C-contiguous; pybind11 converts other numeric dtypes and layouts.
using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

// Checks ndim and, where given (>= 0), the sizes of an array before raw access. The
// bindings check only what raw access needs (shape; dtype and layout come from
// DoubleArray): every user-facing error is Python's, and the core checks its own
// preconditions.
void require_shape(const DoubleArray& array, const std::string& name, py::ssize_t ndim,
                   py::ssize_t dim0 = -1, py::ssize_t dim1 = -1);

// Interrupt poll for long calls: takes the GIL and runs Python's signal handlers.
bool python_interrupt_requested();

// Runs a long core call without the GIL, polling for Ctrl-C; an interrupted call raises
// KeyboardInterrupt (or the exception a signal handler set). Only for calls whose
// arguments the caller keeps alive and the core only reads.
template <typename Call>
auto call_interruptible(Call&& call) {
    decltype(call(&python_interrupt_requested)) result;
    bool interrupted = false;
    {
        py::gil_scoped_release release;
        try {
            result = call(&python_interrupt_requested);
        } catch (const Interrupted&) {
            interrupted = true;
        }
    }
    if (interrupted) {
        if (PyErr_Occurred() == nullptr) PyErr_SetNone(PyExc_KeyboardInterrupt);
        throw py::error_already_set();
    }
    return result;
}

// A numpy array of the given shape holding a copy of `values`.
template <typename T>
py::array_t<T> to_array(const std::vector<T>& values, std::vector<py::ssize_t> shape) {
    py::array_t<T> array(shape);
    if (!values.empty())
        std::memcpy(array.mutable_data(), values.data(), values.size() * sizeof(T));
    return array;
}

// The same without a copy: the array takes the vector over and frees it with itself.
template <typename T>
py::array_t<T> to_array(std::vector<T>&& values, std::vector<py::ssize_t> shape) {
    if (values.empty()) return to_array(values, std::move(shape));
    auto* owner = new std::vector<T>(std::move(values));
    py::capsule release(owner, [](void* data) { delete static_cast<std::vector<T>*>(data); });
    return py::array_t<T>(std::move(shape), owner->data(), release);
}

void bind_network(py::module_& m);
void bind_path1d(py::module_& m);
void bind_slice2d(py::module_& m);

}  // namespace lrcore::bindings
