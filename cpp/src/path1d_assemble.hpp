// Assembly of one path's result from its vertex sequence (internal).
#pragma once

#include "lrcore/network.hpp"
#include "lrcore/path1d.hpp"
#include "path1d_units.hpp"

namespace lrcore::detail {

// Number of polyline segments of a path (a closed path has one more).
inline Index segment_count(const PathSpec& spec) {
    return spec.closed ? spec.num_points : spec.num_points - 1;
}

// Turns one path's vertex sequence (vertices first..last, intervals first..last-1) into
// breakpoints, pieces and patterns.
void assemble_path(const Network& net, const PathSpec& spec, const VertexSeq& seq, Index first,
                   Index last, bool want_patterns, Path1DResult& result);

}  // namespace lrcore::detail
