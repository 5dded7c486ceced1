// A path's result from the vertices its subdivision left: arc-length positions, the
// breakpoints (vertices whose two intervals' patterns differ) with the neurons that flip
// there, the pieces between them, their distinct patterns.
#include "path1d_assemble.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
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
        return words > 0 && std::memcmp((*this)(u), (*this)(v), sz(words) * sizeof(Word)) != 0;
    }
    bool less(Index u, Index v) const {
        return words > 0 && std::memcmp((*this)(u), (*this)(v), sz(words) * sizeof(Word)) < 0;
    }
};

// Arc length at the start of each segment; the last entry is the path's length.
std::vector<double> segment_starts(const PathSpec& spec, Index d) {
    const Index segments = segment_count(spec);
    std::vector<double> seg_start(sz(segments) + 1, 0.0);
    for (Index s = 0; s < segments; ++s) {
        const double* a = spec.points + s * d;
        const double* b = spec.points + ((s + 1) % spec.num_points) * d;
        double sum = 0.0;
        for (Index k = 0; k < d; ++k) sum += (b[k] - a[k]) * (b[k] - a[k]);
        seg_start[sz(s) + 1] = seg_start[sz(s)] + std::sqrt(sum);
    }
    return seg_start;
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

// Number of distinct patterns among the intervals `pieces`.
Index count_distinct(const IntervalPatterns& pattern, const std::vector<Index>& pieces) {
    std::vector<Index> order(pieces.size());
    std::iota(order.begin(), order.end(), Index{0});
    auto less = [&](Index x, Index y) { return pattern.less(pieces[sz(x)], pieces[sz(y)]); };
    std::sort(order.begin(), order.end(), less);
    Index distinct = order.empty() ? 0 : 1;
    for (std::size_t i = 1; i < order.size(); ++i)
        if (less(order[i - 1], order[i])) ++distinct;
    return distinct;
}

}  // namespace

void assemble_path(const Network& net, const PathSpec& spec, const VertexSeq& seq, Index first,
                   Index last, bool want_patterns, Path1DResult& result) {
    const std::vector<double> seg_start = segment_starts(spec, net.input_dim());
    result.length = seg_start.back();
    const IntervalPatterns pattern{seq.bits.data(), seq.words};
    auto position = [&](Index v) {
        const Index s = seq.seg[sz(v)];
        return seg_start[sz(s)] + seq.t[sz(v)] * (seg_start[sz(s) + 1] - seg_start[sz(s)]);
    };

    // Intervals of zero length (repeated points, zero-length segments) are points, not
    // pieces: they take no part in the comparison of neighbouring patterns.
    std::vector<Index> pieces_of_path;  // intervals of positive length
    for (Index v = first; v < last; ++v)
        if (position(v + 1) > position(v)) pieces_of_path.push_back(v);
    if (pieces_of_path.empty()) pieces_of_path.push_back(first);

    // Breakpoints: where the patterns of consecutive pieces differ.
    std::vector<Index> break_vertex;  // vertex of each breakpoint
    std::vector<Index> before;        // interval just before it
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
    result.flip_offsets.assign(1, 0);
    for (Index i = 0; i < k; ++i) {
        const Index v = break_vertex[sz(i)];
        result.breakpoints[sz(i)] = position(v);
        result.segment[sz(i)] = seq.seg[sz(v)];
        append_flips(net, pattern(before[sz(i)]), pattern(v), seq.words, result.flip_neurons);
        result.flip_offsets.push_back(static_cast<Index>(result.flip_neurons.size() / 2));
    }

    // Piece i starts at breakpoint i-1 (piece 0 at the path's start, or for a closed path
    // with breakpoints, at the last breakpoint, wrapping through the start).
    std::vector<Index> piece_interval;
    if (spec.closed && k > 0) {
        piece_interval.push_back(before[0]);
        for (Index i = 0; i + 1 < k; ++i) piece_interval.push_back(break_vertex[sz(i)]);
    } else {
        piece_interval.push_back(pieces_of_path.front());
        for (Index i = 0; i < k; ++i) piece_interval.push_back(break_vertex[sz(i)]);
    }
    result.num_pieces = static_cast<Index>(piece_interval.size());
    result.num_distinct = count_distinct(pattern, piece_interval);

    if (want_patterns) {
        const Index num_bytes = pattern_bytes(net);
        result.patterns.resize(sz(result.num_pieces * num_bytes));
        for (Index i = 0; i < result.num_pieces; ++i)
            pack_pattern(pattern(piece_interval[sz(i)]), num_bytes,
                         result.patterns.data() + i * num_bytes);
    }
}

}  // namespace lrcore::detail
