// Exceptions the core throws besides the standard ones (std::invalid_argument for an
// argument that breaks a precondition, std::length_error for a product beyond the BLAS's
// 32-bit sizes, std::bad_alloc).
#pragma once

#include <stdexcept>
#include <string>

namespace lrcore {

// A long call was stopped by its interrupt poll (e.g. Ctrl-C in Python).
class Interrupted : public std::runtime_error {
public:
    Interrupted() : std::runtime_error("lrcore: interrupted") {}
};

// A resource cap (max_pieces, max_regions, max_memory) was reached; the message says how
// to raise it.
class LimitExceeded : public std::runtime_error {
public:
    explicit LimitExceeded(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace lrcore
