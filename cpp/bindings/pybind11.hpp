// The one project header that includes pybind11; every binding file includes this.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

namespace py = pybind11;

namespace lrcore::bindings {

// Float64, C-contiguous; pybind11 converts other numeric dtypes and layouts.
using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

// Checks ndim and, where given (>= 0), the sizes of an array before raw access.
void require_shape(const DoubleArray& array, const std::string& name, py::ssize_t ndim,
                   py::ssize_t dim0 = -1, py::ssize_t dim1 = -1);

// Refuses NaN and infinities, which would give wrong regions rather than an error.
void require_finite(const DoubleArray& array, const std::string& name);

// Interrupt poll for long calls: takes the GIL and runs Python's signal handlers.
bool python_interrupt_requested();

void bind_network(py::module_& m);
void bind_path1d(py::module_& m);
void bind_slice2d(py::module_& m);

}  // namespace lrcore::bindings
