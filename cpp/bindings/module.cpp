#include <stdexcept>

#include "lrcore/blas.hpp"
#include "lrcore/errors.hpp"
#include "lrcore/parallel.hpp"
#include "pybind11.hpp"

namespace lrcore::bindings {

void require_shape(const DoubleArray& array, const std::string& name, py::ssize_t ndim,
                   py::ssize_t dim0, py::ssize_t dim1) {
    auto describe = [&] {
        std::string shape = "(";
        for (py::ssize_t i = 0; i < array.ndim(); ++i)
            shape += (i ? ", " : "") + std::to_string(array.shape(i));
        return shape + (array.ndim() == 1 ? ",)" : ")");
    };
    if (array.ndim() != ndim)
        throw std::invalid_argument(name + ": expected a " + std::to_string(ndim) +
                                    "-d array, got shape " + describe());
    if (dim0 >= 0 && array.shape(0) != dim0)
        throw std::invalid_argument(name + ": expected " + std::to_string(dim0) +
                                    " rows, got shape " + describe());
    if (dim1 >= 0 && ndim >= 2 && array.shape(1) != dim1)
        throw std::invalid_argument(name + ": expected " + std::to_string(dim1) +
                                    " columns, got shape " + describe());
}

bool python_interrupt_requested() {
    py::gil_scoped_acquire acquire;
    return PyErr_CheckSignals() != 0;
}

}  // namespace lrcore::bindings

PYBIND11_MODULE(_core, m) {
    m.doc() = "lrcore's compiled core (private: use the lrcore package)";
    py::register_exception<lrcore::LimitExceeded>(m, "LimitExceeded", PyExc_RuntimeError);
    m.def(
        "blas_corename", [] { return std::string(lrcore::blas_corename()); },
        "Name of the OpenBLAS kernel chosen for this CPU.");
    // The core parallelises over paths and tiles itself; BLAS inside it runs one thread per
    // call.
    lrcore::set_blas_threads(1);
    m.def("_share_threshold_seconds", &lrcore::share_threshold_seconds,
          "Predicted seconds of work above which a call starts worker threads.");
    m.def("_set_share_threshold_seconds", &lrcore::set_share_threshold_seconds, py::arg("seconds"),
          "Change it (tests: 0 shares any work, a huge value none).");
    lrcore::bindings::bind_network(m);
    lrcore::bindings::bind_path1d(m);
    lrcore::bindings::bind_slice2d(m);
}
