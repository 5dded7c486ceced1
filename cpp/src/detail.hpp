// Helpers shared by the 1D and 2D subdivisions (internal to the core).
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "lrcore/network.hpp"

namespace lrcore::detail {

using Word = std::uint64_t;
constexpr Index kWordBits = 64;

inline std::size_t sz(Index value) { return static_cast<std::size_t>(value); }

inline Index words_for(Index bits) { return (bits + kWordBits - 1) / kWordBits; }

// Leaves new elements uninitialised on resize: the buffers that use it are written in
// full before they are read, and zero-filling them cost more than the crossings search.
template <typename T>
struct UninitAllocator : std::allocator<T> {
    template <typename U>
    struct rebind {
        using other = UninitAllocator<U>;
    };
    UninitAllocator() = default;
    template <typename U>
    UninitAllocator(const UninitAllocator<U>&) noexcept {}
    template <typename U>
    void construct(U* ptr) noexcept {
        ::new (static_cast<void*>(ptr)) U;
    }
    template <typename U, typename... Args>
    void construct(U* ptr, Args&&... args) {
        ::new (static_cast<void*>(ptr)) U(std::forward<Args>(args)...);
    }
};

template <typename T>
using Buffer = std::vector<T, UninitAllocator<T>>;

// Packs the first num_bytes bytes of a bit row little-endian (numpy's bitorder="little").
inline void pack_pattern(const Word* row, Index num_bytes, std::uint8_t* out) {
    for (Index b = 0; b < num_bytes; ++b)
        out[b] = static_cast<std::uint8_t>(row[b / 8] >> (8 * (b % 8)));
}

// Sets values within rounding error of zero to exactly zero: |z_j| <= rtol * (||W_j|| s
// + |b_j|), s bounding the norm of the layer's input at the vertex.
inline void snap_zeros(double* z, Index n, Index width, const double* scale,
                       const AffineMap& map, double rtol) {
    const std::vector<double>& row_norms = map.row_norms();
    const std::vector<double>& abs_bias = map.abs_bias();
    for (Index v = 0; v < n; ++v) {
        double* row = z + v * width;
        const double s = scale[v];
        for (Index j = 0; j < width; ++j) {
            if (std::abs(row[j]) <= rtol * (row_norms[sz(j)] * s + abs_bias[sz(j)]))
                row[j] = 0.0;
        }
    }
}

// h = act(z) row by row, with scale[v] = ||h_v||_2; then z_next = layer(h).
template <typename ZBuffer, typename HBuffer>
void next_layer_values(const Network& net, Index layer, Index n, ZBuffer& z, Index& width,
                       HBuffer& h, double* scale) {
    const Activation act = net.activation(layer - 1);
    h.resize(z.size());
    for (Index v = 0; v < n; ++v) {
        const double* zrow = z.data() + v * width;
        double* hrow = h.data() + v * width;
        double sum = 0.0;
        for (Index j = 0; j < width; ++j) {
            const double value = act(zrow[j]);
            hrow[j] = value;
            sum += value * value;
        }
        scale[v] = std::sqrt(sum);
    }
    const AffineMap& map = net.layer(layer);
    const Index in_width = width;
    width = map.out_dim();
    z.resize(sz(n * width));
    map.apply(h.data(), n, in_width, z.data(), width);
}

}  // namespace lrcore::detail
