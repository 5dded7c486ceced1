// Exact activation-pattern changes of a network along polylines (1D).
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "lrcore/network.hpp"
#include "lrcore/parallel.hpp"

namespace lrcore {

// A polyline of num_points points in input space (row-major, num_points × input_dim).
// Segment i joins point i to point i + 1; a closed path adds segment n-1 from the last
// point back to the first.
struct PathSpec {
    const double* points = nullptr;
    Index num_points = 0;
    bool closed = false;
};

// The caller sets rtol and max_pieces: the core has no defaults of its own for them
// (Python's are lrcore's DEFAULT_RTOL and DEFAULT_MAX_PIECES), and count_1d refuses them
// unset.
struct Path1DOptions {
    // certified: signs are decided by the certified predicates (docs/numerics.md); rtol
    // is not read. Otherwise the old zero rule: a pre-activation z_j at a vertex counts
    // as exactly zero when |z_j| <= rtol * (||W_j||_2 * ||h||_2 + |b_j|), h being the
    // layer's input there.
    bool certified = false;
    double rtol = std::numeric_limits<double>::quiet_NaN();
    bool want_patterns = false;
    int num_threads = 0;  // <= 0: all hardware threads
    // Upper bound (>= 1) on the pieces created over the whole call; past it the call
    // fails with LimitExceeded instead of exhausting memory.
    Index max_pieces = 0;
    // Upper bound on the memory the pieces created so far will take (their pattern rows
    // and positions, then the result), in bytes; 0: none. Past it, LimitExceeded.
    double max_memory = 0.0;
    // Work units with more vertices than this are split in two before the next layer,
    // which bounds working memory (vertices × width) and keeps products cache-sized.
    Index max_unit_vertices = 8192;
    // Upper bound on the slow-path decisions of each task (a run of up to 32 segments
    // that one thread subdivides; < 0: none). Past it, a value the fast filter cannot
    // decide keeps its float64 sign (0 when it is exactly 0), and the result counts it in
    // uncertified_decisions: a count that is no longer certified everywhere.
    Index max_slow_decisions = -1;
    // The next layer's values at a layer's new vertices from their interval's ends
    // (docs/design.md): 1 where that is cheaper than the dense product, 0 never (the dense
    // product everywhere), 2 wherever the map's columns are available. Counts are the same
    // either way; 0 and 2 are for tests and comparisons.
    int update_new_vertices = 1;
    // Upper bound on the slow path's work in each task, as a multiple of the task's own
    // float64 work (< 0: none; docs/numerics.md §9). Both are counted in multiply-adds
    // (AffineMap::multiply_adds): the float64 work of the vertices' forward products so
    // far, the slow work of the layers evaluated in double-double (past a prefix shared
    // with a cached pass of the same task) and the exact tier's terms. Once the slow work
    // reaches max_slow_work times the float64 work (counted as at least 2^24), further
    // undecided values are treated as past max_slow_decisions (float64 sign, counted in
    // uncertified_decisions).
    double max_slow_work = -1.0;
};

struct Path1DResult {
    double length = 0.0;
    Index num_pieces = 0;
    Index num_distinct = 0;
    std::vector<double> breakpoints;     // arc-length positions, ascending
    std::vector<Index> segment;          // polyline segment of each breakpoint
    std::vector<Index> flip_offsets;     // CSR offsets (k + 1) into flip_neurons
    std::vector<Index> flip_neurons;     // (m × 2) flattened (layer, unit) pairs
    std::vector<std::uint8_t> patterns;  // num_pieces × pattern_bytes, if requested
    // Certified decisions only (0 under rtol): sign decisions the fast filter left to
    // the slow path; values the slow path could not tell from zero (counted as exact
    // coincidences: the vertex lies on the neuron's zero set); crossings distinct in
    // exact arithmetic whose float64 positions coincide (one breakpoint in the result).
    Index slow_decisions = 0;
    Index exact_coincidences = 0;
    Index unresolved_crossings = 0;
    // Undecided values that took their float64 sign because the call's slow-path budget
    // (Path1DOptions::max_slow_decisions or max_slow_work) was spent.
    Index uncertified_decisions = 0;
};

struct Path1DStats {
    // Number of vertices at which each hidden layer's pre-activations were computed by a
    // dense product (index l: hidden layer l); the measure of the work done.
    std::vector<Index> vertices_per_layer;
};

// Bytes per packed pattern: one bit per hidden neuron, little-endian bit order.
Index pattern_bytes(const Network& net);

// What checking paths' values needs, in one pass over their points (rows of `dim`
// values): the largest |coordinate| (NaN when any value is NaN or infinite) and the
// shortest nonzero step (largest |coordinate difference| of consecutive points of one
// path; infinity when there is none). Python decides what is an error (lrcore.count_1d).
struct PathExtent {
    double peak = 0.0;
    double shortest_step = std::numeric_limits<double>::infinity();
};
PathExtent path_extent(const std::vector<PathSpec>& paths, Index dim);

std::vector<Path1DResult> count_1d(const Network& net, const std::vector<PathSpec>& paths,
                                   const Path1DOptions& options, const InterruptPoll& poll,
                                   Path1DStats* stats = nullptr);

}  // namespace lrcore
