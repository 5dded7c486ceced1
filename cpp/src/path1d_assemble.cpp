// A path's result from the vertices its subdivision left: arc-length positions, the
// breakpoints (vertices whose two intervals' patterns differ) with the neurons that flip
// there, the pieces between them, their distinct patterns.
#include "path1d_assemble.hpp"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "bits.hpp"

namespace lrcore::detail {

namespace {

// The patterns of a vertex sequence's intervals, compared as byte strings.
struct IntervalPatterns {
    const Word* bits;
    Index words;

    const Word* operator()(Index v) const { return bits + v * words; }
    // Without neurons (no hidden layer) the rows are empty and bits may be null.
    bool differ(Index u, Index v) const {
        const Word* a = (*this)(u);
        const Word* b = (*this)(v);
        for (Index w = 0; w < words; ++w)
            if (a[w] != b[w]) return true;
        return false;
    }
};

// Arc length at the start of each segment into seg_start, from the segments' lengths;
// the last entry is the path's length.
void segment_starts(const PathSpec& spec, const double* lengths, std::vector<double>& seg_start) {
    const Index segments = segment_count(spec);
    seg_start.assign(sz(segments) + 1, 0.0);
    for (Index s = 0; s < segments; ++s) seg_start[sz(s) + 1] = seg_start[sz(s)] + lengths[s];
}

// The (layer, unit) pairs of the neurons whose bits differ between rows a and b,
// appended to flip_neurons.
void append_flips(const Network& net, const Word* a, const Word* b, Index words,
                  std::vector<Index>& flip_neurons) {
    Index layer = 0;
    for (Index word = 0; word < words; ++word) {
        Word diff = a[word] ^ b[word];
        while (diff != 0) {
            const Index bit = word * kWordBits + static_cast<Index>(__builtin_ctzll(diff));
            diff &= diff - 1;
            while (net.neuron_offset(layer + 1) <= bit) ++layer;
            flip_neurons.push_back(layer);
            flip_neurons.push_back(bit - net.neuron_offset(layer));
        }
    }
}

// Number of distinct patterns among the intervals `pieces`: each is looked up in an
// open-addressing table of the distinct ones so far by a hash of its pattern, and equal
// hashes are compared word by word, so the count is exact whatever the hash does.
Index count_distinct(const IntervalPatterns& pattern, const std::vector<Index>& pieces,
                     std::vector<Index>& table, std::vector<std::uint64_t>& hashes) {
    const std::size_t n = pieces.size();
    std::size_t capacity = 16;
    while (capacity < 2 * n) capacity *= 2;
    table.assign(capacity, -1);  // slot: an index into pieces, or -1
    hashes.resize(n);
    Index distinct = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const Word* row = pattern(pieces[i]);
        std::uint64_t h = 0x9e3779b97f4a7c15ULL;
        for (Index w = 0; w < pattern.words; ++w) {
            h = (h ^ row[w]) * 0xff51afd7ed558ccdULL;
            h ^= h >> 32;
        }
        hashes[i] = h;
        std::size_t slot = static_cast<std::size_t>(h) & (capacity - 1);
        bool seen = false;
        for (; table[slot] >= 0; slot = (slot + 1) & (capacity - 1)) {
            const std::size_t other = sz(table[slot]);
            if (hashes[other] == h && !pattern.differ(pieces[other], pieces[i])) {
                seen = true;
                break;
            }
        }
        if (!seen) {
            table[slot] = static_cast<Index>(i);
            ++distinct;
        }
    }
    return distinct;
}

}  // namespace

void segment_lengths(const std::vector<PathSpec>& paths, Index d, std::vector<double>& lengths,
                     std::vector<Index>& offsets) {
    offsets.assign(1, 0);
    std::vector<const double*> a, b;
    for (const PathSpec& spec : paths) {
        const Index segments = segment_count(spec);
        for (Index s = 0; s < segments; ++s) {
            a.push_back(spec.points + s * d);
            b.push_back(spec.points + ((s + 1) % spec.num_points) * d);
        }
        offsets.push_back(static_cast<Index>(a.size()));
    }
    const std::size_t n = a.size();
    lengths.resize(n);
    // Four segments at a time: independent chains, each summed in order k = 0..d-1 (the
    // same sums as one at a time), which a long input dimension makes latency-bound.
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
        for (Index k = 0; k < d; ++k) {
            s0 += (b[i][k] - a[i][k]) * (b[i][k] - a[i][k]);
            s1 += (b[i + 1][k] - a[i + 1][k]) * (b[i + 1][k] - a[i + 1][k]);
            s2 += (b[i + 2][k] - a[i + 2][k]) * (b[i + 2][k] - a[i + 2][k]);
            s3 += (b[i + 3][k] - a[i + 3][k]) * (b[i + 3][k] - a[i + 3][k]);
        }
        lengths[i] = std::sqrt(s0);
        lengths[i + 1] = std::sqrt(s1);
        lengths[i + 2] = std::sqrt(s2);
        lengths[i + 3] = std::sqrt(s3);
    }
    for (; i < n; ++i) {
        double sum = 0.0;
        for (Index k = 0; k < d; ++k) sum += (b[i][k] - a[i][k]) * (b[i][k] - a[i][k]);
        lengths[i] = std::sqrt(sum);
    }
}

void assemble_path(const Network& net, const PathSpec& spec, const double* lengths,
                   const VertexSeq& seq, Index first, Index last, bool want_patterns,
                   Path1DResult& result, AssembleScratch& scratch) {
    std::vector<double>& seg_start = scratch.seg_start;
    segment_starts(spec, lengths, seg_start);
    result.length = seg_start.back();
    const IntervalPatterns pattern{seq.bits.data(), seq.words};
    auto position = [&](Index v) {
        const Index s = seq.seg[sz(v)];
        return seg_start[sz(s)] + seq.t[sz(v)] * (seg_start[sz(s) + 1] - seg_start[sz(s)]);
    };

    // Intervals of zero length (repeated points, zero-length segments) are points, not
    // pieces: they take no part in the comparison of neighbouring patterns.
    std::vector<Index>& pieces_of_path = scratch.pieces;  // intervals of positive length
    pieces_of_path.clear();
    double here = position(first);
    for (Index v = first; v < last; ++v) {
        const double next = position(v + 1);
        if (next > here) pieces_of_path.push_back(v);
        here = next;
    }
    if (pieces_of_path.empty()) pieces_of_path.push_back(first);

    // Breakpoints: where the patterns of consecutive pieces differ.
    std::vector<Index>& break_vertex = scratch.break_vertex;  // vertex of each breakpoint
    std::vector<Index>& before = scratch.before;              // interval just before it
    break_vertex.clear();
    before.clear();
    const Index real = static_cast<Index>(pieces_of_path.size());
    if (spec.closed && real > 1 && pattern.differ(pieces_of_path.back(), pieces_of_path.front())) {
        break_vertex.push_back(pieces_of_path.front());
        before.push_back(pieces_of_path.back());
    }
    for (Index i = 1; i < real; ++i) {
        const Index previous = pieces_of_path[sz(i - 1)];
        const Index current = pieces_of_path[sz(i)];
        if (pattern.differ(previous, current)) {
            break_vertex.push_back(current);
            before.push_back(previous);
        }
    }

    const Index k = static_cast<Index>(break_vertex.size());
    result.breakpoints.resize(sz(k));
    result.segment.resize(sz(k));
    result.flip_offsets.reserve(sz(k) + 1);
    result.flip_offsets.assign(1, 0);
    result.flip_neurons.reserve(sz(2 * k));
    for (Index i = 0; i < k; ++i) {
        const Index v = break_vertex[sz(i)];
        result.breakpoints[sz(i)] = position(v);
        result.segment[sz(i)] = seq.seg[sz(v)];
        append_flips(net, pattern(before[sz(i)]), pattern(v), seq.words, result.flip_neurons);
        result.flip_offsets.push_back(static_cast<Index>(result.flip_neurons.size() / 2));
    }

    // Piece i starts at breakpoint i-1 (piece 0 at the path's start, or for a closed path
    // with breakpoints, at the last breakpoint, wrapping through the start).
    std::vector<Index>& piece_interval = scratch.piece_interval;
    piece_interval.clear();
    if (spec.closed && k > 0) {
        piece_interval.push_back(before[0]);
        for (Index i = 0; i + 1 < k; ++i) piece_interval.push_back(break_vertex[sz(i)]);
    } else {
        piece_interval.push_back(pieces_of_path.front());
        for (Index i = 0; i < k; ++i) piece_interval.push_back(break_vertex[sz(i)]);
    }
    result.num_pieces = static_cast<Index>(piece_interval.size());
    result.num_distinct = count_distinct(pattern, piece_interval, scratch.table, scratch.hashes);

    if (want_patterns) {
        const Index num_bytes = pattern_bytes(net);
        result.patterns.resize(sz(result.num_pieces * num_bytes));
        for (Index i = 0; i < result.num_pieces; ++i)
            pack_pattern(pattern(piece_interval[sz(i)]), num_bytes,
                         result.patterns.data() + i * num_bytes);
    }
}

}  // namespace lrcore::detail
