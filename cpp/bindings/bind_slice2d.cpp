#include <optional>
#include <vector>

#include "lrcore/path1d.hpp"
#include "lrcore/slice2d.hpp"
#include "pybind11.hpp"

namespace lrcore::bindings {

namespace {

// Runs slice_2d and returns one dict of arrays per slice; the Python layer builds the
// result objects from them.
py::list slice_2d_arrays(const Network& net, const std::vector<DoubleArray>& origins,
                         const std::vector<DoubleArray>& bases,
                         const std::vector<DoubleArray>& domains,
                         const std::vector<DoubleArray>& cuts, std::optional<double> rtol,
                         int num_threads, Index max_regions, double max_memory,
                         double max_slow_work) {
    // Only what reading the arrays needs: lrcore.slice_2d has checked the arguments, and
    // the core checks its own preconditions (docs/core-layout.md).
    if (origins.size() != bases.size() || origins.size() != domains.size() ||
        origins.size() != cuts.size())
        throw std::invalid_argument("slices: origins, bases, domains and cuts differ in number");
    const auto d = static_cast<py::ssize_t>(net.input_dim());
    std::vector<SliceSpec> specs;
    for (std::size_t i = 0; i < origins.size(); ++i) {
        const std::string index = "[" + std::to_string(i) + "]";
        require_shape(origins[i], "origin" + index, 1, d);
        require_shape(bases[i], "basis" + index, 2, 2, d);
        require_shape(domains[i], "domain" + index, 2, -1, 2);
        require_shape(cuts[i], "cuts" + index, 1);
        SliceSpec spec;
        spec.origin = origins[i].data();
        spec.basis = bases[i].data();
        spec.domain.assign(domains[i].data(), domains[i].data() + domains[i].size());
        spec.cuts.assign(cuts[i].data(), cuts[i].data() + cuts[i].size());
        specs.push_back(std::move(spec));
    }
    Slice2DOptions options;
    // rtol None: certified sign decisions; a number: the old zero tolerance.
    options.certified = !rtol.has_value();
    options.rtol = rtol.value_or(0.0);
    options.num_threads = num_threads;
    options.max_regions = max_regions;
    options.max_memory = max_memory;
    options.max_slow_work = max_slow_work;

    // Safe without the GIL: the argument vectors keep every array alive; the core only
    // reads them.
    std::vector<Slice2DResult> results = call_interruptible(
        [&](const InterruptPoll& poll) { return slice_2d(net, specs, options, poll); });

    const auto bytes = static_cast<py::ssize_t>(pattern_bytes(net));
    const auto out_dim = static_cast<py::ssize_t>(net.output_dim());
    py::list out;
    for (Slice2DResult& r : results) {
        const auto v = static_cast<py::ssize_t>(r.vertices.size() / 2);
        const auto f = static_cast<py::ssize_t>(r.num_faces());
        const auto e = static_cast<py::ssize_t>(r.edges.size() / 2);
        const auto sides = static_cast<py::ssize_t>(r.face_vertices.size());
        py::dict item;
        item["vertices"] = to_array(std::move(r.vertices), {v, 2});
        item["outputs"] = to_array(std::move(r.outputs), {v, out_dim});
        item["face_offsets"] = to_array(std::move(r.face_offsets), {f + 1});
        item["face_vertices"] = to_array(std::move(r.face_vertices), {sides});
        item["edges"] = to_array(std::move(r.edges), {e, 2});
        item["edge_neurons"] = to_array(std::move(r.edge_neurons), {e, 2});
        item["patterns"] = to_array(std::move(r.patterns), {f, bytes});
        item["tiles"] = r.tiles;
        item["merged_crossings"] = r.merged_crossings;
        item["uncertified_decisions"] = r.uncertified_decisions;
        item["exact_coincidences"] = r.exact_coincidences;
        item["slow_decisions"] = r.slow_decisions;
        out.append(item);
    }
    return out;
}

}  // namespace

void bind_slice2d(py::module_& m) {
    m.def("slice_2d", &slice_2d_arrays, py::arg("net"), py::arg("origins"), py::arg("bases"),
          py::arg("domains"), py::arg("cuts"), py::arg("rtol"), py::arg("num_threads"),
          py::arg("max_regions"), py::arg("max_memory"), py::arg("max_slow_work") = 2.0,
          "Exact planar partition of each slice (one dict of arrays per slice).");
    m.attr("PLANE_ULPS") = kPlaneUlps;
    m.attr("FALLBACK_RTOL") = kFallbackRtol;
    m.def("_set_stitch_failure_for_tests", &set_stitch_failure_for_tests, py::arg("fail"),
          "Testing only: tiled slices take the recompute-in-one-piece path while set.");
}

}  // namespace lrcore::bindings
