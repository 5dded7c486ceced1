// The exact planar partition of a network's activation regions on a 2D slice.
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

#include "lrcore/network.hpp"
#include "lrcore/parallel.hpp"

namespace lrcore {

// The plane x(s, t) = origin + s * basis[0] + t * basis[1], restricted to a convex polygon
// of the (s, t) plane given counter-clockwise.
struct SliceSpec {
    const double* origin = nullptr;  // input_dim
    const double* basis = nullptr;   // 2 × input_dim, row-major
    std::vector<double> domain;      // (s, t) pairs of a convex counter-clockwise polygon
    // The domain is cut into tiles by the lines s = c for c in cuts (increasing, strictly
    // inside the domain's range of s), computed in parallel (with the working memory of
    // one tile each) and merged: the result does not depend on them, up to the order of
    // faces and vertices and rounding in the last bits.
    std::vector<double> cuts;
};

// Plane coordinates closer than this many ulps of the domain's largest coordinate are one
// point: a crossing that close to a vertex (or to another crossing on its edge) is placed
// at it and counted in Slice2DResult::merged_crossings.
constexpr double kPlaneUlps = 64.0;

// Certified slices: a value the filter cannot decide (within its error bound) takes the
// decision of the zero tolerance with this rtol (lrcore.DEFAULT_RTOL), counted in
// Slice2DResult::uncertified_decisions: never worse than the rtol computation.
constexpr double kFallbackRtol = 1e-10;

// The caller sets rtol and max_regions: the core has no defaults of its own for them
// (Python's are lrcore's DEFAULT_RTOL and DEFAULT_MAX_REGIONS), and slice_2d refuses them
// unset.
struct Slice2DOptions {
    // Certified sign decisions (docs/numerics.md §6): a value's sign is taken where |z_j|
    // exceeds a rigorous bound on its error; rtol is then ignored.
    bool certified = false;
    // Same zero tolerance as in 1D: |z_j| <= rtol * (||W_j||_2 * ||h||_2 + |b_j|) is zero.
    double rtol = std::numeric_limits<double>::quiet_NaN();
    int num_threads = 0;  // <= 0: all hardware threads
    // Past this many (>= 1) faces in one slice the call fails with LimitExceeded.
    Index max_regions = 0;
    // Upper bound on the memory one slice's partition takes while it is built (vertex
    // rows, faces, finished tiles), in bytes; 0: none. Past it, LimitExceeded.
    double max_memory = 0.0;
    // Certified: the slow path's work per tile is at most this many times the tile's
    // float64 work (at least 2^24 multiply-adds; docs/numerics.md §9); < 0: no budget.
    double max_slow_work = 2.0;
};

struct Slice2DResult {
    std::vector<double> vertices;        // V × 2 plane coordinates
    std::vector<double> outputs;         // V × output_dim: f at each vertex
    std::vector<Index> face_offsets;     // F + 1
    std::vector<Index> face_vertices;    // counter-clockwise cycles
    std::vector<Index> edges;            // E × 2 vertex pairs (smaller index first)
    std::vector<Index> edge_neurons;     // E × 2 (layer, unit); (-1, -1) on the domain boundary
    std::vector<std::uint8_t> patterns;  // F × pattern_bytes
    // Tiles the partition was computed in: 1 + the cut lines, or 1 where the tiles
    // disagreed along a cut line and the slice was computed again in one piece.
    Index tiles = 1;
    // Crossings closer to a vertex (or to another crossing on its edge) than float64 plane
    // coordinates resolve (kPlaneUlps), placed at it: the regions between them, narrower
    // than that, are not counted.
    Index merged_crossings = 0;
    // Certified: sign decisions neither the filter nor the slow path could make (its
    // budget spent, or no defining lines): the zero tolerance's decision, not certified.
    // A vertex on a cut line counts once.
    Index uncertified_decisions = 0;
    // Certified: values proven exactly 0 (by structure: a row without bias reading only
    // inputs that are exactly 0, max pooling's ties between ReLU outputs that are off; or
    // by the slow path's exact tier: lines through one point).
    Index exact_coincidences = 0;
    // Certified: decisions the slow path took (docs/numerics.md §6).
    Index slow_decisions = 0;
    Index num_faces() const { return static_cast<Index>(face_offsets.size()) - 1; }
};

std::vector<Slice2DResult> slice_2d(const Network& net, const std::vector<SliceSpec>& slices,
                                    const Slice2DOptions& options, const InterruptPoll& poll);

// Testing only: while set, every tiled slice takes the path for tiles whose cut lines
// disagree (it is recomputed in one piece), which rounding reaches only at rare spots.
void set_stitch_failure_for_tests(bool fail);

}  // namespace lrcore
