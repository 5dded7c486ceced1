// Activation patterns as rows of bits (internal): one bit per neuron, layer-major (bit
// neuron_offset(l) + j is neuron j of hidden layer l), 64 to a word.
#pragma once

#include <cstdint>
#include <cstring>

#include "index.hpp"
#include "lrcore/blas.hpp"

namespace lrcore::detail {

using Word = std::uint64_t;
constexpr Index kWordBits = 64;

inline Index words_for(Index bits) { return (bits + kWordBits - 1) / kWordBits; }

// Sets bit `bit` of a pattern row.
inline void set_bit(Word* row, Index bit) { row[bit / kWordBits] |= Word{1} << (bit % kWordBits); }

// Flips bit `bit` of a pattern row.
inline void flip_bit(Word* row, Index bit) { row[bit / kWordBits] ^= Word{1} << (bit % kWordBits); }

// Sets the bits first + k of a pattern row for the set bits k of `on` (64 neurons of one
// layer at a time, placed at the layer's offset in the row). The bits set must be inside
// the row.
inline void set_bits_at(Word* row, Index first, Word on) {
    const Index word = first / kWordBits;
    const Index shift = first % kWordBits;
    row[word] |= on << shift;
    if (shift != 0) {
        const Word high = on >> (kWordBits - shift);
        if (high != 0) row[word + 1] |= high;
    }
}

// Packs the first num_bytes bytes of a bit row little-endian (numpy's bitorder="little").
inline void pack_pattern(const Word* row, Index num_bytes, std::uint8_t* out) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    // The words' bytes are in that order already (no bytes: out may be null).
    if (num_bytes > 0) std::memcpy(out, row, sz(num_bytes));
#else
    for (Index b = 0; b < num_bytes; ++b)
        out[b] = static_cast<std::uint8_t>(row[b / 8] >> (8 * (b % 8)));
#endif
}

}  // namespace lrcore::detail
