// Assembly of a slice's result from its partition (internal).
#pragma once

#include "lrcore/network.hpp"
#include "lrcore/slice2d.hpp"
#include "slice2d_partition.hpp"

namespace lrcore::detail {

// The result arrays of a partition: faces in CSR form, patterns packed, edges indexed
// once each. The partition's arrays move into the result where their layout is the
// result's.
Slice2DResult assemble_slice(const Network& net, RawPartition&& raw, Index words, Index bytes);

}  // namespace lrcore::detail
