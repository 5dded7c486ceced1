// Certified sign decisions (internal; the argument is in docs/numerics.md).
//
// Every value the core computes at a vertex is a float64 approximation z of an exact real
// z* (the network's value at the vertex's exact point, in real arithmetic on the float64
// weights and inputs). A sign is *decided* when |z| exceeds a rigorous bound on |z - z*|:
//
// - the fast filter: eps_j = ||W_j||_2 * a + |b_j| * b per neuron, with a and b per vertex
//   (a = gamma * s + E: s the norm of the layer's input, E a bound on its error), the
//   same shape and cost as the old zero tolerance (VertexBound, FilterLayer);
// - the slow path, for the rare values the filter leaves undecided: the vertex's exact
//   point is re-evaluated in double-double with its own rigorous bound (PathOracle);
//   a value still undecided there is evaluated exactly, in expansion arithmetic
//   (Shewchuk's error-free sums of float64 components); exactly zero is an exact
//   coincidence.
//
// The predicate is the sign of a linear functional of one layer's values at a vertex
// (Functional: today a unit vector, one neuron; max pooling's argmax changes are the sign
// of z_a - z_b, a difference of two).
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "bits.hpp"
#include "index.hpp"
#include "lrcore/network.hpp"

namespace lrcore::detail {

// Unit roundoff of float64 and gamma_n = n u / (1 - n u) (Higham): a dot product of n
// terms computed in any order has |error| <= gamma_n * sum |terms|.
inline constexpr double kUnitRoundoff = 0x1p-53;
inline double gamma_of(double n) { return n * kUnitRoundoff / (1.0 - n * kUnitRoundoff); }
// Every bound is multiplied by kSafety: it covers the rounding of the bound's own
// computation (relative error at most (n + 10) u < 2^-22 for fan-ins below 2^31).
inline constexpr double kSafety = 1.0 + 0x1p-20;

// Per-layer constants of the fast filter.
struct FilterLayer {
    double gamma = 0.0;    // gamma_{n+2} of the layer's fan-in n (bias and rounding of s)
    double frob = 0.0;     // sqrt(sum_j ||W_j||^2) = ||W||_F
    double absnorm = 0.0;  // min(frob, sqrt(||W||_1 ||W||_inf)) >= || |W| ||_2
    double opnorm = 0.0;   // min(absnorm, the map's norm_bound) >= ||W||_2: carries E
    double bias2 = 0.0;    // ||b||_2
    double slope = 1.0;    // max(1, |negative slope|) of the activation after the layer
};

std::vector<FilterLayer> filter_layers(const Network& net);

// The bound eps_j = row_norms[j] * a + abs_bias[j] * b at one vertex.
struct VertexBound {
    double a = 0.0, b = 0.0;

    // s: the float norm of the layer's input at the vertex; input_error: a bound on the
    // l2 distance between the float input and the exact one.
    // The safety factors cover the rounding of eps's own three operations.
    static VertexBound at(const FilterLayer& f, double s, double input_error) {
        return {kSafety * kSafety * (f.gamma * s * kSafety + input_error),
                f.gamma * kSafety * kSafety};
    }
    double eps(double row_norm, double abs_bias) const { return row_norm * a + abs_bias * b; }
    // A bound on the l2 error of the whole row of the layer's values (linear units too):
    // the rounding terms' l2 norm (row j's is at most gamma (|W_j| |h| + |b_j|), and
    // || |W| |h| || <= || |W| ||_2 s), plus ||W (h - h*)|| <= ||W||_2 E (an operator norm:
    // Frobenius would grow by sqrt(width) per layer).
    static double vector_error(const FilterLayer& f, double s, double input_error) {
        return kSafety * kSafety * kSafety *
               (f.gamma * (s * kSafety * f.absnorm + f.bias2) + input_error * f.opnorm);
    }
    bool decides(double value, double row_norm, double abs_bias) const {
        return std::abs(value) > eps(row_norm, abs_bias);  // false for NaN
    }
};

// Bounds on the exact fraction tau* = A* / (A* + B*) where a neuron crosses between two
// vertices, from its float values there (|a| = A, |b| = B, opposite signs) and their
// bounds (ea, eb): tau* is increasing in A* and decreasing in B*.
inline void crossing_interval(double a, double b, double ea, double eb, double& lo, double& hi) {
    const double A = std::abs(a), B = std::abs(b);
    const double a_lo = std::max(A - ea, 0.0), b_lo = std::max(B - eb, 0.0);
    const double den_lo = a_lo + B + eb;
    lo = den_lo > 0.0 ? a_lo / den_lo * (1.0 - 4.0 * kUnitRoundoff) : 0.0;
    const double den_hi = A + ea + b_lo;
    hi = den_hi > 0.0 ? std::min(1.0, (A + ea) / den_hi * (1.0 + 4.0 * kUnitRoundoff)) : 1.0;
}

// A double-double number hi + lo (|lo| <= u |hi| once normalised).
struct DD {
    double hi = 0.0, lo = 0.0;
};

// Error-free transformations: a + b = s.hi + s.lo and a * b = p.hi + p.lo exactly
// (barring overflow and underflow).
inline DD two_sum(double a, double b) {
    const double s = a + b;
    const double bb = s - a;
    return {s, (a - (s - bb)) + (b - bb)};
}
inline DD two_prod(double a, double b) {
    const double p = a * b;
    return {p, std::fma(a, b, -p)};
}

// An exact real as a nonoverlapping expansion (Shewchuk): the sum of its float64
// components, in increasing magnitude, none zero. Its sign is its last component's.
using Expansion = std::vector<double>;

// Outcome of one slow-path decision: the sign when decided, and an estimate of the
// value (accurate to far better than the fast filter's bound).
struct SlowDecision {
    bool decided = false;
    // The exact tier was needed but over its work limit, or a product underflowed in it
    // (its expansions not exact): undecided, the float64 sign taken and counted.
    bool skipped = false;
    int sign = 0;
    double value = 0.0;
};

// Whether row k of layer `layer` is exactly zero under the forced pattern `pattern` (bits of
// the earlier layers): no bias, and every nonzero weight reads a ReLU unit the pattern
// turns off or a linear unit that is such a zero itself (docs/numerics.md §4 step 0). At
// most kTerms row entries are read, and linear units kDepth layers down. `rows` is scratch.
struct StructuralRows {
    static constexpr Index kTerms = 256;
    static constexpr Index kDepth = 8;
    std::vector<std::vector<double>> values;
    std::vector<std::vector<Index>> cols;
};
bool structural_zero_row(const Network& net, const Word* pattern, Index layer, Index k,
                         StructuralRows& rows);

// A line of the (s, t) plane of a 2D slice, c + s u + t v = 0: a neuron's zero line under
// a forced pattern (its coefficients double-doubles with bounds on their errors, from
// PathOracle::plane_line), or the line through two exact float64 points (plane_line_through).
struct PlaneLine {
    DD c, u, v;
    double ec = 0.0, eu = 0.0, ev = 0.0;
};
// The same line exactly, as expansions (PathOracle::plane_line_exact, plane_line_exact_through).
struct ExactPlaneLine {
    Expansion c, u, v;
};

// The line through (sa, ta) and (sb, tb): (tb - ta)(s - sa) - (sb - sa)(t - ta) = 0, so
// u = tb - ta, v = sa - sb (exact as double-doubles) and c = sb ta - sa tb.
PlaneLine plane_line_through(double sa, double ta, double sb, double tb);
ExactPlaneLine plane_line_exact_through(double sa, double ta, double sb, double tb);

// The sign of the affine function `k` at the intersection point of lines `a` and `b`:
// sign(det [[ca, ua, va], [cb, ub, vb], [ck, uk, vk]]) * sign(ua vb - ub va) (Cramer's rule:
// k's value there is the 3 x 3 determinant over the 2 x 2 one). Double-double with a
// rigorous bound: decided when both determinants are bounded away from 0. Where the 2 x 2
// one is, `value` is k's value there within `error` of the exact one (else error < 0).
SlowDecision sign_at_intersection(const PlaneLine& a, const PlaneLine& b, const PlaneLine& k,
                                  double* error = nullptr);
// Exactly: sign 0 and decided false where the lines a and b are parallel (no point), else
// the exact sign (0: k passes exactly through the point; decided true). `ok` false where a
// product underflowed (nothing decided).
SlowDecision sign_at_intersection_exact(const ExactPlaneLine& a, const ExactPlaneLine& b,
                                        const ExactPlaneLine& k, bool& ok);

// The exact points of a path's vertices, evaluated in double-double under a forced
// pattern: on an interval every earlier layer's pattern is constant, so layer l's values
// are an affine function g(t) = c + t d of the segment parameter t, and so is every
// linear functional of them. A vertex is either a polyline point (t = 0 or 1 of its
// segment, exact) or the root t* = -c_j / d_j of a neuron j that crosses there; the
// sign of g_k at t* is sign(c_k d_j - c_j d_k) * sign(d_j) (a 2 x 2 determinant).
class PathOracle {
public:
    explicit PathOracle(const Network& net);

    // Sign of neuron k of layer lk at a polyline point `x` (float64, exact), the
    // earlier layers' pattern forced to `pattern` (layers < lk).
    SlowDecision sign_at_point(const double* x, const Word* pattern, Index lk, Index k);

    // Sign of neuron k of layer lk at the root of neuron j of layer lj <= lk on the line
    // x0 + t (x1 - x0), the earlier layers' pattern forced to `pattern`; d_sign is the
    // exact sign of neuron j's slope along t (known from the crossing: +1 or -1).
    SlowDecision sign_at_root(const double* x0, const double* x1, const Word* pattern, Index lj,
                              Index j, int d_sign, Index lk, Index k);

    // The next query asks at the same vertex as the last one (the same line, pattern and
    // layers): its cached pass is used without comparing keys (a pattern has a bit per
    // neuron of every earlier layer; comparing it for each of a vertex's thousands of
    // undecided values cost more than the pass on deep CNNs).
    void same_vertex_next() { same_vertex_ = true; }

    // The work (work()'s unit) the next query's exact tier may take, < 0: no limit. An
    // exact evaluation costs at least the multiply-adds of its layers (twice for a root)
    // times its expansions' lengths; one that the limit cannot cover is skipped
    // (SlowDecision::skipped) instead of run, and one that runs past it (its component
    // operations counted as they are done, checked after every row) is stopped and
    // skipped too, its work counted.
    void set_exact_limit(double work) { exact_limit_ = work; }

    // Layer lk's values at the vertex of the last query (current_ holds its pass), each
    // within error[k] of the exact value: a polyline point (lj < 0), or the root of neuron
    // j of layer lj. False where none can be given (the root's slope not bounded away
    // from 0).
    bool vertex_values(Index lj, Index j, Index lk, std::vector<double>& value,
                       std::vector<double>& error) const;

    // 2D slices (docs/numerics.md §6). Layers 0..upto as affine functions of the plane
    // coordinates, x(s, t) = origin + s basis[0] + t basis[1], under `pattern` (bits of the
    // layers < upto): passes at the origin (with biases) and along both basis vectors
    // (without), from the input. They are cached (key: origin, pattern's bits below upto;
    // a deeper pass with the same prefix serves, a shallower one is extended in place; at
    // most kPlaneEntries, the oldest freed beyond the cache's memory), their work counted
    // as the 1D passes' (work()).
    void plane_pass(const double* origin, const double* basis, const Word* pattern, Index upto);
    // Neuron k of layer l (<= the last plane_pass's upto) as a line of the plane.
    PlaneLine plane_line(Index l, Index k) const;
    // The same passes exactly (expansions); false where exact_limit_ cannot cover them (as
    // evaluate_exact). One evaluation cached.
    bool plane_pass_exact(const double* origin, const double* basis, const Word* pattern,
                          Index upto);
    ExactPlaneLine plane_line_exact(Index l, Index k) const;
    bool plane_exact_ok() const { return exact_ok_; }

    Index evaluations() const { return evaluations_; }
    // Layers the double-double passes computed (c and d each count).
    Index layers_computed() const { return layers_computed_; }
    Index exact_evaluations() const { return exact_evaluations_; }
    // The slow path's work so far: the multiply-adds of the layers evaluated in
    // double-double (past a shared prefix; c and d each count) and the component
    // operations of the exact tier's expansion products and sums (AffineMap::multiply_adds'
    // unit).
    double work() const { return work_; }
    // Forgets every cached pass (a task's start: what a pass costs must not depend on
    // the tasks a thread ran before).
    void reset();

private:
    // One layer's values (DD) with a bound per value.
    struct LayerValues {
        std::vector<double> hi, lo, err;
    };
    // One value of a pass (DD) with its bound.
    struct Value {
        double hi = 0.0, lo = 0.0, err = 0.0;
    };
    const Network& net_;
    // Cached passes (docs/numerics.md §4). An entry keeps the last layer of its pass only
    // (c at the base point, d along the line: the state a pass resumes from) and the key:
    // line, that layer, the pattern's bits of the layers below it (layer l's values
    // depend on those only). A query at layer L resumes from the entry on its line of the
    // deepest layer l <= L whose key agrees with the query's pattern below l: a deeper
    // layer at the same vertex, and every vertex of an interval (those born at layer l
    // inside it too), since sub-intervals keep their parent's bits below l. A root's own
    // neuron (layer lj < L) is pinned in the entry. Every layer a pass computes becomes an
    // entry. Entries are bounded by memory (kCacheBytes, or LRCORE_PASS_CACHE_MB), the
    // one of lowest priority replaced (priority_of: GreedyDual-Size).
    struct Entry {
        const double* x0 = nullptr;
        const double* x1 = nullptr;
        Index upto = -1;  // -1: free
        std::vector<Word> pattern;
        std::uint64_t hash = 0;  // of the pattern's bits below upto (prefix_hashes)
        LayerValues c, d;
        Index pin_layer = -1, pin_unit = -1;  // a value of an earlier layer (a root's)
        Value pin_c, pin_d;
        Index stamp = 0;
        double bytes = 0.0;     // entry_bytes
        double priority = 0.0;  // priority_of
    };
    static constexpr double kCacheBytes = 128.0 * 1024.0 * 1024.0;
    static constexpr std::size_t kMaxEntries = 4096;
    std::vector<Entry> entries_;  // reserved once: entries are pointed to
    double cache_bytes_ = 0.0;
    double cache_limit_ = kCacheBytes;
    double inflation_ = 0.0;
    double priority_of(const Entry& e) const;
    Entry* current_ = nullptr;
    Entry spare_;  // the pass's own layer when no slot is free (never a source)
    bool same_vertex_ = false;
    Index clock_ = 0;
    Index evaluations_ = 0;
    Index layers_computed_ = 0;
    double work_ = 0.0;
    double exact_limit_ = -1.0;
    double exact_stop_at_ = -1.0;  // work_ at which the running exact evaluation stops
    bool exact_stopped_ = false;
    std::vector<std::uint64_t> query_hash_;  // the query pattern's prefix hash per layer
    // The current entry's value k of layer l (its last layer, or its pinned value).
    Value c_at(Index l, Index k) const;
    Value d_at(Index l, Index k) const;
    // The exact tier's cached evaluation (same key scheme).
    const double* exact_x0_ = nullptr;
    const double* exact_x1_ = nullptr;
    Index exact_upto_ = -1;
    std::vector<Word> exact_pattern_;
    std::vector<std::vector<Expansion>> exact_c_, exact_d_;
    bool exact_ok_ = true;  // no product underflowed: the expansions are exact
    Index exact_evaluations_ = 0;
    // Scratch.
    std::vector<double> h_hi_, h_lo_, h_err_, row_values_;
    std::vector<double> bias_, sum_s_, sum_c_, sum_a_, sum_l_, sum_e_;  // structured pass
    std::vector<Index> row_cols_;

    // Makes current_ an entry holding layer `upto` of the pass and, for a line (x1 set),
    // the value of unit `keep_unit` of layer `keep_layer` (<= upto).
    void evaluate(const double* x0, const double* x1, const Word* pattern, Index upto,
                  Index keep_layer, Index keep_unit);
    DD root_determinant(Index lj, Index j, Index lk, Index k, double& err) const;
    void prefix_hashes(const Word* pattern, Index upto);
    bool same_prefix(const Word* pattern, const Entry& e) const;
    Entry* new_entry(const Entry* source, Index upto, bool line, Index protect);
    double entry_bytes(Index upto, bool line) const;
    // False where exact_limit_ cannot cover it: not started (its lower estimate above the
    // limit) or stopped past the limit (nothing cached).
    bool evaluate_exact(const double* x0, const double* x1, const Word* pattern, Index upto);
    void forward_exact(std::vector<Expansion> h, bool with_bias, const Word* pattern, Index upto,
                       std::vector<std::vector<Expansion>>& out);
    // Layers from..upto of the forced-pattern pass (from > 0: resumed from `start`, the
    // values of layer from - 1); layer upto into `top` (its old buffers reused), unit
    // keep_unit of layer keep_layer (if from <= keep_layer < upto) into `kept`.
    void forward(const double* x_hi, const double* x_lo, bool with_bias, const Word* pattern,
                 const LayerValues* start, Index from, Index upto, Index keep_layer,
                 Index keep_unit, Value& kept, LayerValues& top,
                 const std::vector<LayerValues*>& snaps);
    // Cached plane passes (plane_pass): layers 0..upto of the passes at the origin and
    // along the basis vectors.
    struct PlaneEntry {
        const double* origin = nullptr;
        Index upto = -1;
        std::vector<Word> pattern;
        std::vector<LayerValues> c, u, v;
        Index stamp = 0;
        double bytes = 0.0;
    };
    static constexpr std::size_t kPlaneEntries = 64;
    std::vector<PlaneEntry> plane_entries_;
    PlaneEntry* plane_current_ = nullptr;
    bool plane_matches(const PlaneEntry& e, const double* origin, const Word* pattern,
                       Index upto) const;
    const double* exact_plane_origin_ = nullptr;
    Index exact_plane_upto_ = -1;
    std::vector<Word> exact_plane_pattern_;
    std::vector<std::vector<Expansion>> exact_u_, exact_v_;
    LayerValues z_;                              // forward's layer being computed
    std::vector<LayerValues*> snap_c_, snap_d_;  // layers of the current pass to keep
};

}  // namespace lrcore::detail
