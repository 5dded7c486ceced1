// Index conversions shared by the core's sources (internal).
#pragma once

#include <cstddef>

#include "lrcore/blas.hpp"

namespace lrcore::detail {

// A signed Index (never negative here) as a container position.
inline std::size_t sz(Index value) { return static_cast<std::size_t>(value); }

}  // namespace lrcore::detail
