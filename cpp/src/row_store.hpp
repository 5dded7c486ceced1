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
// by block, so the only extra memory is one block. reset() keeps the memory: a store used
// for one tile after another writes into memory it has already touched (the page faults
// of fresh memory cost a slice about a sixth of its time).
//
// Blocks live in chunks (the allocations): the first of one block, the others of one
// block too, or of the 2 to 4 blocks that make kHugeChunkBytes where rows hold 128 to 511
// values: such a chunk is one huge page (HugePageAllocator) and faults in at once, where
// a 1 MiB block (784-256x3) took a fault per 4 KiB page, 256 of them. A row is found through its
// block's pointer as before: the row lookups (every sign test of a face reads one) cost no more.
class RowStore {
public:
    // 512 rows: the dense product runs as fast as on larger blocks, and a slice's rows
    // waste at most one chunk (blocks of 2048 rows cost small slices about 200 B a region).
    static constexpr Index kBlockRows = 512;
    static constexpr std::size_t kHugeChunkBytes = std::size_t{1} << 21;
    static constexpr Index kMaxChunkBlocks = 4;

    // Blocks a chunk holds at `width` values a row.
    static Index chunk_blocks(Index width) {
        const std::size_t block_bytes = sz(kBlockRows) * sz(width) * sizeof(double);
        if (width <= 0 || block_bytes >= kHugeChunkBytes) return 1;
        const std::size_t blocks = (kHugeChunkBytes + block_bytes - 1) / block_bytes;
        return blocks <= sz(kMaxChunkBlocks) ? static_cast<Index>(blocks) : 1;
    }

    RowStore() = default;
    // (Moves keep the chunks where they are, and so the block pointers valid; a copy
    // would point into the original's chunks.)
    RowStore(const RowStore&) = delete;
    RowStore(RowStore&&) = default;
    RowStore& operator=(const RowStore&) = delete;
    RowStore& operator=(RowStore&&) = default;
    ~RowStore() { keep_spare_blocks(chunks_); }

    Index width() const { return width_; }
    Index size() const { return size_; }

    // No rows, of `width` values each from now on (chunks of chunk_blocks(width) blocks);
    // the chunks stay allocated.
    void reset(Index width) {
        width_ = width;
        size_ = 0;
        per_chunk_ = chunk_blocks(width);
        blocks_.clear();
        layout_.clear();
        in_last_ = 0;
    }

    // (Unsigned division: a shift and a mask, where the signed one needs sign fix-ups;
    // a row is looked up for every value a face's sign tests read.)
    double* row(Index v) {
        return blocks_[sz(v) / sz(kBlockRows)] + sz(v) % sz(kBlockRows) * sz(width_);
    }
    const double* row(Index v) const {
        return blocks_[sz(v) / sz(kBlockRows)] + sz(v) % sz(kBlockRows) * sz(width_);
    }

    // No rows, and no memory held (the chunks kept as this thread's spare blocks, up to
    // kSpareBlockBytes).
    void release() {
        reset(0);
        keep_spare_blocks(chunks_);
        std::vector<double*>().swap(blocks_);
        std::vector<Index>().swap(layout_);
        HugeBuffer<double>().swap(activated_);
    }

    // A new row at the end (uninitialised); pointers to other rows stay valid.
    double* append() {
        if (size_ % kBlockRows == 0) {
            const std::size_t block_values = sz(kBlockRows * width_);
            if (layout_.empty() || in_last_ == layout_.back()) {
                // A new chunk: one block first (a store of a few rows, or a small slice's,
                // holds no more than before), then chunk_blocks(width) blocks each.
                const std::size_t c = layout_.size();
                const Index blocks = c == 0 ? 1 : per_chunk_;
                const std::size_t values = sz(blocks) * block_values;
                if (c == chunks_.size()) chunks_.push_back(take_spare_block(values));
                HugeBuffer<double>& chunk = chunks_[c];
                if (chunk.capacity() < values) chunk.clear();  // nothing to copy
                chunk.resize(values);                          // within capacity: no writes
                layout_.push_back(blocks);
                in_last_ = 0;
            }
            blocks_.push_back(chunks_[layout_.size() - 1].data() + sz(in_last_++) * block_values);
        }
        return row(size_++);
    }

    // Sets scale[v] = ||act(row v)||_2 for every row, then replaces the rows by the next
    // layer's pre-activations layer(act(row)).
    void next_layer(const AffineMap& map, const Activation& act, Index neurons, double* scale) {
        const Index in_width = width_;
        const Index out_width = map.out_dim();
        const std::size_t in_values = sz(kBlockRows * in_width);
        const std::size_t out_values = sz(kBlockRows * out_width);
        std::size_t first_block = 0;
        for (std::size_t c = 0; c < layout_.size(); ++c) {
            HugeBuffer<double>& chunk = chunks_[c];
            const std::size_t held = sz(layout_[c]);
            const std::size_t used = std::min(held, blocks_.size() - first_block);
            if (out_width > in_width) chunk.resize(held * out_values);  // keeps the rows
            // Each block is read (activated) before its new rows are written, in place: a
            // block's new rows overlap only old blocks already read (later ones where the
            // rows grow, taken last to first; earlier ones where they shrink).
            for (std::size_t k = 0; k < used; ++k) {
                const std::size_t i = out_width > in_width ? used - 1 - k : k;
                const Index first = static_cast<Index>((first_block + i) * sz(kBlockRows));
                const Index rows = std::min(kBlockRows, size_ - first);
                activate(chunk.data() + i * in_values, rows, act, neurons, scale + first);
                double* out = chunk.data() + i * out_values;
                map.apply(activated_.data(), rows, in_width, out, out_width);
                blocks_[first_block + i] = out;
            }
            first_block += held;
        }
        width_ = out_width;
        per_chunk_ = chunk_blocks(out_width);  // for chunks taken from now on
    }

    // out[v, :] = layer(act(row v)) for every row, `out` holding rows of map.out_dim()
    // values; the rows stay as they are.
    void evaluate(const AffineMap& map, const Activation& act, Index neurons, double* out) {
        std::vector<double> scale(sz(std::min(kBlockRows, size_)));
        for (Index first = 0; first < size_; first += kBlockRows) {
            const Index rows = std::min(kBlockRows, size_ - first);
            activate(blocks_[sz(first / kBlockRows)], rows, act, neurons, scale.data());
            map.apply(activated_.data(), rows, width_, out + first * map.out_dim(), map.out_dim());
        }
    }

private:
    std::vector<HugeBuffer<double>> chunks_;  // the allocations
    std::vector<double*> blocks_;             // block b's first row
    std::vector<Index> layout_;  // blocks each chunk in use holds (the blocks in order)
    Index in_last_ = 0;          // blocks in use in the last chunk in use
    HugeBuffer<double> activated_;
    Index width_ = 0;
    Index size_ = 0;
    Index per_chunk_ = 1;  // blocks a new chunk after the first holds (chunk_blocks(width_))

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
