// Tiles (internal): a slice's convex domain cut by the lines s = c into tiles, each
// computed apart and merged afterwards.
#pragma once

#include <vector>

#include "lrcore/blas.hpp"

namespace lrcore::detail {

// One convex piece of a slice's domain: its part between two consecutive cut lines s = c
// (or one cut line and the domain's boundary).
struct Tile {
    std::vector<double> polygon;  // (s, t) corners, counter-clockwise
    std::vector<Index> labels;    // label of the side from corner i to corner i + 1
    std::vector<Index> sides;     // the domain side it lies on (its first corner), or -1

    bool has_side(Index label) const;
};

// The domain cut into tiles by the lines s = c for c in `cuts` (increasing, inside the
// domain's range of s), left to right.
std::vector<Tile> make_tiles(const std::vector<double>& domain, const std::vector<double>& cuts);

}  // namespace lrcore::detail
