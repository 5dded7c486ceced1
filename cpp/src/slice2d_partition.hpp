// A planar partition before its edges are indexed (internal): what a tile's face builder
// produces, what stitching merges, and what assembly turns into a Slice2DResult.
#pragma once

#include <cstdint>
#include <vector>

#include "bits.hpp"
#include "lrcore/blas.hpp"

namespace lrcore::detail {

// Labels of a face's sides: a side on neuron g's zero line has label g >= 0 (g indexes
// the layer-major concatenation of all neurons), the others one of these.
constexpr Index kBoundary = -1;  // a side on the domain's boundary
constexpr Index kCut = -2;       // placeholder label of the side a cut creates
constexpr Index kTileLow = -3;   // a side on a tile's left cut line s = c
constexpr Index kTileHigh = -4;  // a side on a tile's right cut line s = c
constexpr Index kRemoved = -5;   // a tile side inside a region, dropped when tiles merge

// Index of the side after side i of the face whose sides are [first, last).
inline Index next_side(Index i, Index first, Index last) { return i + 1 < last ? i + 1 : first; }

// The vertices of one tile on one of its cut lines, ordered along it, with the labels of
// the region edges that meet each; and the tile sides between consecutive ones.
struct CutLine {
    std::vector<Index> vertex;  // ordered by t
    std::vector<double> t;
    std::vector<std::vector<Index>> labels;  // sorted, distinct
    std::vector<Index> side, face;           // of the part between vertex r and r + 1
    bool valid = false;                      // read, and consistent
};

// A partition before edges are indexed: faces as cycles of (vertex, label of the side
// leaving it), with vertex coordinates, outputs and packed pattern bits.
struct RawPartition {
    std::vector<double> st;       // V × 2
    std::vector<double> outputs;  // V × output_dim
    std::vector<Index> face_start{0};
    std::vector<Index> side_vertex, side_label;
    std::vector<Word> bits;              // F × words
    std::vector<std::uint8_t> patterns;  // or F × pattern bytes, packed (bits then empty)
    Index merged_crossings = 0;          // crossings placed at a vertex (plane rounding)
    Index uncertified_decisions = 0;     // certified: values the filter left undecided
    Index exact_coincidences = 0;        // certified: values proven exactly 0
    Index slow_decisions = 0;            // certified: decisions the slow path took
    // The vertices the four counts above come from, 5 numbers each (vertex,
    // uncertified, coincidences, merged, slow; a vertex may appear more than once):
    // stitching counts a vertex on a cut line once, not once per tile.
    std::vector<Index> counted;
    CutLine low, high;  // a tile's cut lines (read by the worker)
    Index num_vertices() const { return static_cast<Index>(st.size() / 2); }
    Index num_faces() const { return static_cast<Index>(face_start.size()) - 1; }
};

}  // namespace lrcore::detail
