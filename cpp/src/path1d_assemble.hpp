// Assembly of one path's result from its vertex sequence (internal).
#pragma once

#include <cstdint>
#include <vector>

#include "lrcore/network.hpp"
#include "lrcore/path1d.hpp"
#include "path1d_units.hpp"

namespace lrcore::detail {

// Number of polyline segments of a path (a closed path has one more).
inline Index segment_count(const PathSpec& spec) {
    return spec.closed ? spec.num_points : spec.num_points - 1;
}

// Working vectors of assemble_path, kept from path to path of a call.
struct AssembleScratch {
    std::vector<double> seg_start;
    std::vector<Index> pieces, break_vertex, before, piece_interval;
    std::vector<Index> table;  // count_distinct's hash table
    std::vector<std::uint64_t> hashes;
};

// The length of every segment of every path (the square root of the squared distance
// summed over the coordinates in order), path after path: path p's segments are
// lengths[offsets[p] ..].
void segment_lengths(const std::vector<PathSpec>& paths, Index d, std::vector<double>& lengths,
                     std::vector<Index>& offsets);

// Turns one path's vertex sequence (vertices first..last, intervals first..last-1) into
// breakpoints, pieces and patterns; `lengths`: its segments' (segment_lengths).
void assemble_path(const Network& net, const PathSpec& spec, const double* lengths,
                   const VertexSeq& seq, Index first, Index last, bool want_patterns,
                   Path1DResult& result, AssembleScratch& scratch);

}  // namespace lrcore::detail
