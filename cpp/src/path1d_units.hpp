// The vertices and intervals of the 1D subdivision (internal): a work unit while its
// layers are processed, the vertex sequence it leaves for assembly, and the piece of a
// path a task starts from.
#pragma once

#include <cstdint>
#include <vector>

#include "bits.hpp"
#include "index.hpp"
#include "lrcore/blas.hpp"
#include "memory.hpp"

namespace lrcore::detail {

// The vertices a layer's crossings added whose next-layer values are not computed by the
// dense product but from the values at their interval's two ends (Subdivider::
// evaluate_next_layer, docs/design.md "Values at new vertices"): per interval its end
// rows a and b (the new vertices are the rows between them, one per group of crossings),
// per group its fraction and the fraction's uncertainty, per crossing (in exact order)
// its neuron and the coefficients of its correction, (1 - slope) |z_j(a)| and
// (1 - slope) |z_j(b)|.
struct PendingRows {
    std::vector<Index> a, b;             // per interval: its end rows
    std::vector<Index> group_begin;      // per interval + 1: its groups
    std::vector<double> spread;          // per interval: slope * ||z(b) - z(a)|| (certified)
    std::vector<double> tau, dtau;       // per group
    std::vector<Index> entry_begin;      // per group + 1: its crossings
    std::vector<Index> neuron;           // per crossing
    std::vector<double> coef_a, coef_b;  // per crossing
    std::vector<std::uint8_t> updated;   // per row of the unit: its values come from here

    bool empty() const { return a.empty(); }
    void clear() {
        a.clear();
        b.clear();
        group_begin.assign(1, 0);
        spread.clear();
        tau.clear();
        dtau.clear();
        entry_begin.assign(1, 0);
        neuron.clear();
        coef_a.clear();
        coef_b.clear();
        updated.clear();
    }
};

// Vertices and intervals of one work unit. Row v of `bits` is the pattern of the
// interval (v, v + 1); it is meaningless where link[v] is 0.
struct Unit {
    Index width = 0;       // width of the layer whose values `z` holds
    Buffer<double> z;      // V × width pre-activations of the current layer
    Buffer<double> scale;  // V: ||input of the current layer||_2
    Buffer<double> dot;    // V: <input at v, input at v + 1> of the current layer
    // Certified sign decisions (docs/numerics.md):
    Buffer<double> err;                // V: bound on ||input - exact input||_2 of the layer
                                       //    (after certify_values: on the layer's values')
    Buffer<double> bound_a, bound_b;   // V: the values' bounds (VertexBound) once decided
    Buffer<Index> origin;              // V: -1 a polyline point; else the crossing neuron
                                       //    (index into all neurons) that made the vertex
    Buffer<Index> path;                // V: path id
    Buffer<Index> seg;                 // V: segment of the path
    Buffer<double> t;                  // V: parameter within the segment, in [0, 1]
    Buffer<std::uint8_t> link;         // V: interval (v, v + 1) exists
    Buffer<Word> bits;                 // V × words: pattern of interval (v, v + 1)
    bool duplicates_previous = false;  // first vertex repeats the previous unit's last
    PendingRows pending;               // rows whose next-layer values come from their ends
    // Certified, for the rows the pending update computed (given_err[v] >= 0): their
    // values' bound (VertexBound a, b) and l2 error, which certify_values takes instead of
    // the dense product's.
    Buffer<double> given_a, given_b, given_err;

    Index size() const { return static_cast<Index>(t.size()); }
};

// Vertices in path order with their interval patterns: what a task hands to assembly.
struct VertexSeq {
    Buffer<Index> path, seg;
    Buffer<double> t;
    Buffer<std::uint8_t> link;
    Buffer<Word> bits;
    Index words = 0;

    Index size() const { return static_cast<Index>(t.size()); }

    void clear() {
        path.clear();
        seg.clear();
        t.clear();
        link.clear();
        bits.clear();
    }

    void pop_back() {
        path.pop_back();
        seg.pop_back();
        t.pop_back();
        link.pop_back();
        bits.resize(bits.size() - sz(words));
    }

    // Appends the unit's vertices; an empty sequence takes the unit's arrays instead of
    // copying them (the unit is left empty).
    void append(Unit& unit) {
        if (size() == 0 && !unit.duplicates_previous) {
            path.swap(unit.path);
            seg.swap(unit.seg);
            t.swap(unit.t);
            link.swap(unit.link);
            bits.swap(unit.bits);
            return;
        }
        if (unit.duplicates_previous && size() > 0) pop_back();
        path.insert(path.end(), unit.path.begin(), unit.path.end());
        seg.insert(seg.end(), unit.seg.begin(), unit.seg.end());
        t.insert(t.end(), unit.t.begin(), unit.t.end());
        link.insert(link.end(), unit.link.begin(), unit.link.end());
        bits.insert(bits.end(), unit.bits.begin(), unit.bits.end());
    }
};

// Consecutive segments [seg_begin, seg_end) of one path.
struct Chunk {
    Index path, seg_begin, seg_end;
};

}  // namespace lrcore::detail
