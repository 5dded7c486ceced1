#include <optional>
#include <vector>

#include "lrcore/path1d.hpp"
#include "pybind11.hpp"

namespace lrcore::bindings {

namespace {

// Runs count_1d and returns the batch as flat arrays with per-path offsets; the Python
// layer builds the result objects from them.
py::dict count_1d_flat(const Network& net, const std::vector<DoubleArray>& paths,
                       const std::vector<bool>& closed, std::optional<double> rtol,
                       bool want_patterns, int num_threads, Index max_pieces, double max_memory,
                       Index max_slow_decisions, double max_slow_work, int update_new_vertices) {
    // Only what reading the arrays needs: lrcore.count_1d has checked the arguments, and
    // the core checks its own preconditions (docs/core-layout.md).
    if (closed.size() != paths.size())
        throw std::invalid_argument("closed: expected one flag per path");
    std::vector<PathSpec> specs;
    for (std::size_t i = 0; i < paths.size(); ++i) {
        require_shape(paths[i], "path[" + std::to_string(i) + "]", 2, -1, net.input_dim());
        specs.push_back({paths[i].data(), paths[i].shape(0), static_cast<bool>(closed[i])});
    }
    Path1DOptions options;
    // rtol None: certified sign decisions; a number: the old zero rule.
    options.certified = !rtol.has_value();
    options.rtol = rtol.value_or(0.0);
    options.want_patterns = want_patterns;
    options.num_threads = num_threads;
    options.max_pieces = max_pieces;
    options.max_memory = max_memory;
    options.max_slow_decisions = max_slow_decisions;  // < 0: no budget
    options.update_new_vertices = update_new_vertices;
    options.max_slow_work = max_slow_work;  // < 0: no budget

    Path1DStats stats;
    // Safe without the GIL: `paths` keeps every array alive, and the core reads them only.
    const std::vector<Path1DResult> results = call_interruptible(
        [&](const InterruptPoll& poll) { return count_1d(net, specs, options, poll, &stats); });

    const auto num_paths = static_cast<py::ssize_t>(results.size());
    std::vector<Index> offsets{0}, piece_offsets{0}, num_pieces, num_distinct, segment,
        flip_offsets{0}, flip_neurons, slow_decisions, exact_coincidences, unresolved_crossings,
        uncertified_decisions;
    std::vector<double> lengths, breakpoints;
    std::vector<std::uint8_t> patterns;
    for (const Path1DResult& r : results) {
        lengths.push_back(r.length);
        num_pieces.push_back(r.num_pieces);
        num_distinct.push_back(r.num_distinct);
        slow_decisions.push_back(r.slow_decisions);
        exact_coincidences.push_back(r.exact_coincidences);
        unresolved_crossings.push_back(r.unresolved_crossings);
        uncertified_decisions.push_back(r.uncertified_decisions);
        breakpoints.insert(breakpoints.end(), r.breakpoints.begin(), r.breakpoints.end());
        segment.insert(segment.end(), r.segment.begin(), r.segment.end());
        const Index flip_base = flip_offsets.back();
        for (std::size_t i = 1; i < r.flip_offsets.size(); ++i)
            flip_offsets.push_back(flip_base + r.flip_offsets[i]);
        flip_neurons.insert(flip_neurons.end(), r.flip_neurons.begin(), r.flip_neurons.end());
        patterns.insert(patterns.end(), r.patterns.begin(), r.patterns.end());
        offsets.push_back(static_cast<Index>(breakpoints.size()));
        piece_offsets.push_back(piece_offsets.back() + r.num_pieces);
    }
    const auto k = static_cast<py::ssize_t>(breakpoints.size());
    const auto m = static_cast<py::ssize_t>(flip_neurons.size() / 2);
    const auto bytes = static_cast<py::ssize_t>(pattern_bytes(net));

    py::dict out;
    out["lengths"] = to_array(lengths, {num_paths});
    out["num_pieces"] = to_array(num_pieces, {num_paths});
    out["num_distinct"] = to_array(num_distinct, {num_paths});
    out["slow_decisions"] = to_array(slow_decisions, {num_paths});
    out["exact_coincidences"] = to_array(exact_coincidences, {num_paths});
    out["unresolved_crossings"] = to_array(unresolved_crossings, {num_paths});
    out["uncertified_decisions"] = to_array(uncertified_decisions, {num_paths});
    out["offsets"] = to_array(offsets, {num_paths + 1});
    out["breakpoints"] = to_array(breakpoints, {k});
    out["segment"] = to_array(segment, {k});
    out["flip_offsets"] = to_array(flip_offsets, {k + 1});
    out["flip_neurons"] = to_array(flip_neurons, {m, 2});
    out["piece_offsets"] = to_array(piece_offsets, {num_paths + 1});
    if (want_patterns) {
        out["patterns"] = to_array(patterns, {piece_offsets.back(), bytes});
    } else {
        out["patterns"] = py::none();
    }
    out["vertices_per_layer"] = to_array(
        stats.vertices_per_layer, {static_cast<py::ssize_t>(stats.vertices_per_layer.size())});
    return out;
}

}  // namespace

// (largest |coordinate| or NaN, shortest nonzero step) of the paths, for their checks.
py::tuple path_extent_of(const std::vector<DoubleArray>& paths) {
    std::vector<PathSpec> specs;
    if (!paths.empty()) require_shape(paths[0], "path[0]", 2);
    const py::ssize_t dim = paths.empty() ? 0 : paths[0].shape(1);
    for (std::size_t i = 0; i < paths.size(); ++i) {
        require_shape(paths[i], "path[" + std::to_string(i) + "]", 2, -1, dim);
        specs.push_back({paths[i].data(), paths[i].shape(0), false});
    }
    const PathExtent extent = path_extent(specs, dim);
    return py::make_tuple(extent.peak, extent.shortest_step);
}

void bind_path1d(py::module_& m) {
    m.def("path_extent", &path_extent_of, py::arg("paths"),
          "(largest |coordinate| or NaN, shortest nonzero step) of 2-d paths of one width.");
    m.def("count_1d", &count_1d_flat, py::arg("net"), py::arg("paths"), py::arg("closed"),
          py::arg("rtol"), py::arg("want_patterns"), py::arg("num_threads"), py::arg("max_pieces"),
          py::arg("max_memory"), py::arg("max_slow_decisions"), py::arg("max_slow_work"),
          py::arg("update_new_vertices"),
          "Exact breakpoints of the network along each polyline (flat batch arrays).");
}

}  // namespace lrcore::bindings
