// Subdivision of a task's polyline pieces layer by layer (internal; the phases are
// described in docs/core-layout.md).
#pragma once

#include <algorithm>
#include <atomic>
#include <utility>
#include <vector>

#include "certify.hpp"
#include "interval_signs.hpp"
#include "lrcore/network.hpp"
#include "lrcore/parallel.hpp"
#include "lrcore/path1d.hpp"
#include "memory.hpp"
#include "path1d_units.hpp"

namespace lrcore::detail {

// Counters per path kept by a subdivider (see Subdivider::counters_).
inline constexpr Index kCounters = 4;

// A crossing of a neuron's zero inside one interval.
struct Crossing {
    double tau;          // fraction of the interval at which the neuron's pre-activation is zero
    Index unit;          // neuron within the layer
    bool joins = false;  // shares the vertex of the crossing before it
    double lo = 0.0, hi = 1.0;  // certified: bounds on the exact fraction
};

// Subdivides one task after another (one per worker thread): its scratch buffers keep
// their memory from task to task.
class Subdivider {
public:
    Subdivider(const Network& net, const std::vector<PathSpec>& paths, const Path1DOptions& options,
               std::atomic<Index>& created, std::vector<std::atomic<Index>>& vertices_per_layer,
               std::vector<std::atomic<Index>>& counters);

    // The vertices of the task's chunks after every hidden layer, with the pattern of
    // each interval, in path order.
    // first_rows: the first layer's values at the task's polyline points in the order
    // first_layer_points gives them (the call computed them for all tasks at once), or
    // null to compute them here.
    VertexSeq run(const std::vector<Chunk>& chunks, const StopFlag& stop,
                  const double* first_rows = nullptr);

private:
    const Network& net_;
    const std::vector<PathSpec>& paths_;
    const Path1DOptions& options_;
    std::atomic<Index>& created_;  // pieces created by the whole call (max_pieces)
    std::vector<std::atomic<Index>>& vertices_per_layer_;
    // Per path: slow, coincident, unresolved, uncertified (kCounters each).
    std::vector<std::atomic<Index>>& counters_;
    Index slow_used_ = 0;         // slow-path decisions of the current task
    Index uncertified_used_ = 0;  // float64 signs taken in the current task
    double float_work_ = 0.0;     // multiply-adds of the task's float64 products so far
    // The float64 work a task counts as at least (multiply-adds), so that small networks'
    // tasks, whose float64 products are tiny, may still take a few slow passes.
    static constexpr double kMinFloatWork = 0x1p24;
    double slow_work_start_ = 0.0;  // the oracle's work() at the task's start
    Index words_;
    std::vector<FilterLayer> filter_;
    std::vector<double> max_norm_, max_bias_;  // per layer: over its neurons (certified)
    PathOracle oracle_;
    // Scratch reused across layers and tasks of one worker thread.
    Buffer<double> activated_;
    Buffer<double> input_points_;
    std::vector<Index> crossing_begin_;  // crossings of interval v: [begin[v], begin[v + 1])
    std::vector<Crossing> crossings_;
    Buffer<double> interpolated_;
    std::vector<const double*> point_rows_;  // evaluate_first_layer: the unit's points
    // The layer's sign words at every vertex (kSignWords per 64 neurons; interval_signs.hpp),
    // which certify_values leaves for find_crossings.
    Buffer<Word> signs_;
    Index sign_stride(Index layer) const {
        return kSignWords * ((net_.hidden_size(layer) + kWordBits - 1) / kWordBits);
    }
    Unit spare_;

    // New vertices' next-layer values from their interval's ends (update_rows) where
    // kUpdateCost times its work is at most the dense product's, on maps whose columns
    // are available (AffineMap::columns).
    static constexpr Index kUpdateCost = 4;
    std::vector<Index> dense_rows_;
    Buffer<double> gathered_, prefix_;

    Unit initial_unit(const std::vector<Chunk>& chunks) const;
    void evaluate_first_layer(Unit& unit, const double* first_rows);
    void evaluate_next_layer(Unit& unit, Index layer);
    bool updatable(Index layer) const;
    void update_rows(Unit& unit, Index layer);
    void process(Unit unit, Index layer, VertexSeq& out, const StopFlag& stop);
    std::pair<Unit, Unit> split(Unit unit) const;

    // The phases of one layer: subdivide() runs them in order.
    void subdivide(Unit& unit, Index layer, bool last);
    void find_crossings(Unit& unit, Index layer);
    Index group_crossings(const Unit& unit, Index layer);
    void count_pieces(Index added) const;
    // Certified decisions (docs/numerics.md).
    void certify_values(Unit& unit, Index layer);
    SlowDecision slow_sign(const Unit& unit, Index v, Index layer, Index k);
    bool refresh_values(Unit& unit, Index v, Index layer, const VertexBound& bound,
                        double old_error);
    std::vector<Index> uncertified_units_;  // float64 signs taken at the current vertex
    std::vector<double> refresh_value_, refresh_error_;
    // Exact zeros by structure (a row of zero bias reading only exact zeros under the
    // forced pattern): no slow pass (structural_zero_row).
    bool structural_zero(const Unit& unit, Index v, Index layer, Index k);
    StructuralRows structural_rows_;
    int compare_crossings(const Unit& unit, Index v, Index layer, const Crossing& p,
                          const Crossing& q);
    Index order_crossings(const Unit& unit, Index layer);
    // Whether one more slow-path decision fits the task's budget (taking it if so). The
    // budget is per task, and tasks depend on the input only: which decisions are
    // certified does not depend on the number of threads.
    // The work budget (max_slow_work) compares the oracle's work in this task with the
    // task's float64 work so far: both are functions of the task's input only, since the
    // oracle's cache is cleared at each task's start.
    bool slow_allowed() {
        const double factor = options_.max_slow_work;
        if (factor >= 0.0 &&
            oracle_.work() - slow_work_start_ >= factor * std::max(float_work_, kMinFloatWork))
            return false;
        const Index budget = options_.max_slow_decisions;
        return budget < 0 || slow_used_++ < budget;
    }
    // The exact tier's limit for the next slow query: what is left of the work budget.
    void set_exact_limit() {
        const double factor = options_.max_slow_work;
        oracle_.set_exact_limit(factor < 0.0
                                    ? -1.0
                                    : std::max(0.0, factor * std::max(float_work_, kMinFloatWork) -
                                                        (oracle_.work() - slow_work_start_)));
    }
    void count(Index path, Index which, Index n = 1) {
        counters_[sz(kCounters * path + which)].fetch_add(n, std::memory_order_relaxed);
    }
    void insert_crossings(Unit& unit, Index layer, bool last, Index added);
};

// The polyline points whose first-layer values a task's unit starts from, in its vertex
// order: point indices into paths[chunk.path].points, one call of add(path, point) each.
template <class Add>
void first_layer_points(const std::vector<PathSpec>& paths, const std::vector<Chunk>& chunks,
                        Add&& add) {
    for (const Chunk& chunk : chunks) {
        for (Index s = chunk.seg_begin; s < chunk.seg_end; ++s) add(chunk.path, s);
        const Index end = chunk.seg_end == paths[sz(chunk.path)].num_points ? 0 : chunk.seg_end;
        add(chunk.path, end);  // a closed path's last segment ends at its first point
    }
}

}  // namespace lrcore::detail
