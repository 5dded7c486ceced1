// Stitching (internal): the partitions of a slice's tiles merged into one partition.
#pragma once

#include <vector>

#include "lrcore/blas.hpp"
#include "slice2d_partition.hpp"
#include "slice2d_tiles.hpp"

namespace lrcore::detail {

// Reads the cut lines of a tile's partition (raw.low, raw.high: valid where the tile has
// that cut line and the partition's sides on it are consistent).
void read_cut_lines(const Tile& tile, RawPartition& raw);

// Merges the partitions of a slice's tiles (left to right) into `whole`. Faces on both
// sides of a cut line with the same pattern are parts of one region and become one face;
// the vertices where region edges cross a cut line are shared, and dropped where one edge
// runs straight through. The tiles' partitions are consumed. Returns false when the two
// sides of a line disagree (rounding in a degenerate spot); the caller then computes the
// slice in one piece.
bool stitch(std::vector<RawPartition>& tiles, const std::vector<double>& domain, Index words,
            Index bytes, Index out_dim, RawPartition& whole);

// Testing only: while set, stitch() fails.
void set_stitch_failure(bool fail);

}  // namespace lrcore::detail
