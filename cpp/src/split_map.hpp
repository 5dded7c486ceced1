// The crossing vertices of one layer (internal): (edge at the start of the layer, neuron)
// -> the vertex where the neuron crosses that edge, so that the two faces on either side
// of an edge create one vertex. An open-addressing hash map.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "lrcore/blas.hpp"

namespace lrcore::detail {

// A layer-start edge, by its end vertices a < b, and a neuron of the layer.
struct SplitKey {
    Index a, b, neuron;
    bool operator==(const SplitKey& other) const {
        return a == other.a && b == other.b && neuron == other.neuron;
    }
};

struct SplitKeyHash {
    std::size_t operator()(const SplitKey& key) const {
        std::uint64_t h = static_cast<std::uint64_t>(key.a) * 0x9E3779B97F4A7C15ULL;
        h ^= static_cast<std::uint64_t>(key.b) + 0x7F4A7C159E3779B9ULL + (h << 6) + (h >> 2);
        h ^= static_cast<std::uint64_t>(key.neuron) + 0x94D049BB133111EBULL + (h << 6) + (h >> 2);
        h ^= h >> 29;
        return static_cast<std::size_t>(h);
    }
};

// SplitKey -> Index, open addressing with linear probing in one flat array: a slice looks
// up every vertex it creates, and std::unordered_map's node per entry cost more than the
// cutting around it. Keys have a >= 0; a = -1 marks an empty slot.
class SplitMap {
public:
    void reset(std::size_t expected) {
        // At most 3/4 full (1.3 to 2.7 slots an entry, against 2 to 4 at most half full):
        // linear probing stays short, and a slice's edge index takes less memory.
        std::size_t capacity = 16;
        while (3 * capacity < 4 * expected) capacity *= 2;
        slots_.assign(capacity, Slot{{-1, 0, 0}, 0});
        size_ = 0;
    }

    // No entries, and no memory held.
    void release() {
        std::vector<Slot>().swap(slots_);
        size_ = 0;
    }

    // The value of `key`, or -1.
    Index find(const SplitKey& key) const {
        for (std::size_t i = start(key);; i = (i + 1) & (slots_.size() - 1)) {
            const Slot& slot = slots_[i];
            if (slot.key.a < 0) return -1;
            if (slot.key == key) return slot.value;
        }
    }

    // Stores key -> value unless key is present; returns the value stored for key.
    Index insert(const SplitKey& key, Index value) {
        if (4 * (size_ + 1) > 3 * slots_.size()) grow();
        for (std::size_t i = start(key);; i = (i + 1) & (slots_.size() - 1)) {
            Slot& slot = slots_[i];
            if (slot.key.a < 0) {
                slot = Slot{key, value};
                ++size_;
                return value;
            }
            if (slot.key == key) return slot.value;
        }
    }

private:
    struct Slot {
        SplitKey key;
        Index value;
    };
    std::vector<Slot> slots_;
    std::size_t size_ = 0;

    std::size_t start(const SplitKey& key) const {
        return SplitKeyHash{}(key) & (slots_.size() - 1);
    }

    void grow() {
        std::vector<Slot> old;
        old.swap(slots_);
        reset(std::max<std::size_t>(old.size(), 12));
        for (const Slot& slot : old)
            if (slot.key.a >= 0) insert(slot.key, slot.value);
    }
};

}  // namespace lrcore::detail
