// Evaluation of layers at vertices (internal): per-vertex rows of a layer's values, in
// blocks, and the next layer computed from them by one product per block.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "index.hpp"
#include "lrcore/activation.hpp"
#include "lrcore/affine.hpp"
#include "memory.hpp"

namespace lrcore::detail {

// Blocks of finished stores, kept on their thread for the next store (up to
// kSpareBlockBytes): the next slice's rows land in memory already touched, instead of
// memory that malloc took from the system and page-faults in again (the heap's top is
// handed back when a small slice frees its rows: a third of a small slice's time went to
// the kernel). Worker threads free theirs when they end; the calling thread keeps them.
constexpr std::size_t kSpareBlockBytes = std::size_t{32} << 20;

inline std::vector<HugeBuffer<double>>& spare_blocks() {
    thread_local std::vector<HugeBuffer<double>> spare;
    return spare;
}

// Moves `blocks` to this thread's spare blocks while they hold under kSpareBlockBytes;
// frees the rest. `blocks` is left empty.
inline void keep_spare_blocks(std::vector<HugeBuffer<double>>& blocks) {
    std::vector<HugeBuffer<double>>& spare = spare_blocks();
    std::size_t held = 0;
    for (const HugeBuffer<double>& block : spare) held += block.capacity() * sizeof(double);
    for (HugeBuffer<double>& block : blocks) {
        const std::size_t bytes = block.capacity() * sizeof(double);
        if (bytes == 0 || held + bytes > kSpareBlockBytes) continue;
        held += bytes;
        spare.push_back(std::move(block));
    }
    std::vector<HugeBuffer<double>>().swap(blocks);
}

// A block with room for `values` values if a spare one has it, else an empty one.
inline HugeBuffer<double> take_spare_block(std::size_t values) {
    std::vector<HugeBuffer<double>>& spare = spare_blocks();
    for (std::size_t i = spare.size(); i-- > 0;) {
        if (spare[i].capacity() >= values) {
            HugeBuffer<double> block = std::move(spare[i]);
            spare.erase(spare.begin() + static_cast<std::ptrdiff_t>(i));
            return block;
        }
    }
    return {};
}

// Rows of per-vertex values (one row of `width` doubles per vertex), stored in blocks of
// kBlockRows rows: appending a row never moves the others, and a layer is evaluated block
// by block, so the only extra memory is one block. reset() keeps the blocks: a store used
// for one tile after another writes into memory it has already touched (the page faults
// of fresh memory cost a slice about a sixth of its time).
class RowStore {
public:
    // 512 rows: the dense product runs as fast as on larger blocks, and a slice's rows
    // waste at most one block (2048 cost small slices about 200 B a region).
    static constexpr Index kBlockRows = 512;

    RowStore() = default;
    RowStore(const RowStore&) = default;
    RowStore(RowStore&&) = default;
    RowStore& operator=(const RowStore&) = default;
    RowStore& operator=(RowStore&&) = default;
    ~RowStore() { keep_spare_blocks(blocks_); }

    Index width() const { return width_; }
    Index size() const { return size_; }

    // No rows, of `width` values each from now on; the blocks stay allocated.
    void reset(Index width) {
        width_ = width;
        size_ = 0;
    }

    // (Unsigned division: a shift and a mask, where the signed one needs sign fix-ups;
    // a row is looked up for every value a face's sign tests read.)
    double* row(Index v) {
        return blocks_[sz(v) / sz(kBlockRows)].data() + sz(v) % sz(kBlockRows) * sz(width_);
    }
    const double* row(Index v) const {
        return blocks_[sz(v) / sz(kBlockRows)].data() + sz(v) % sz(kBlockRows) * sz(width_);
    }

    // No rows, and no memory held (the blocks kept as this thread's spare blocks, up to
    // kSpareBlockBytes).
    void release() {
        reset(0);
        keep_spare_blocks(blocks_);
        HugeBuffer<double>().swap(activated_);
    }

    // A new row at the end (uninitialised); pointers to other rows stay valid.
    double* append() {
        if (size_ % kBlockRows == 0) {
            const std::size_t b = sz(size_ / kBlockRows);
            if (b == blocks_.size()) blocks_.push_back(take_spare_block(sz(kBlockRows * width_)));
            blocks_[b].resize(sz(kBlockRows * width_));  // within capacity: no writes
        }
        return row(size_++);
    }

    // Sets scale[v] = ||act(row v)||_2 for every row, then replaces the rows by the next
    // layer's pre-activations layer(act(row)).
    void next_layer(const AffineMap& map, const Activation& act, Index neurons, double* scale) {
        const Index in_width = width_;
        const Index out_width = map.out_dim();
        for (Index first = 0; first < size_; first += kBlockRows) {
            const Index rows = std::min(kBlockRows, size_ - first);
            HugeBuffer<double>& block = blocks_[sz(first / kBlockRows)];
            activate(block.data(), rows, act, neurons, scale + first);
            if (out_width > in_width) block.resize(sz(kBlockRows * out_width));
            map.apply(activated_.data(), rows, in_width, block.data(), out_width);
        }
        width_ = out_width;
    }

    // out[v, :] = layer(act(row v)) for every row, `out` holding rows of map.out_dim()
    // values; the rows stay as they are.
    void evaluate(const AffineMap& map, const Activation& act, Index neurons, double* out) {
        std::vector<double> scale(sz(std::min(kBlockRows, size_)));
        for (Index first = 0; first < size_; first += kBlockRows) {
            const Index rows = std::min(kBlockRows, size_ - first);
            activate(blocks_[sz(first / kBlockRows)].data(), rows, act, neurons, scale.data());
            map.apply(activated_.data(), rows, width_, out + first * map.out_dim(), map.out_dim());
        }
    }

private:
    std::vector<HugeBuffer<double>> blocks_;  // the first ceil(size / kBlockRows) are in use
    HugeBuffer<double> activated_;
    Index width_ = 0;
    Index size_ = 0;

    // activated_ = act(rows of `block`); scale[v] = ||act(row v)||_2.
    void activate(const double* block, Index rows, const Activation& act, Index neurons,
                  double* scale) {
        activated_.resize(sz(rows * width_));
        for (Index v = 0; v < rows; ++v)
            scale[v] =
                act.apply_row(block + v * width_, activated_.data() + v * width_, width_, neurons);
    }
};

}  // namespace lrcore::detail
