// A slice's result from its partition: packed patterns, and the edges numbered in the
// order faces first list them, with the neuron each lies on.
#include "slice2d_assemble.hpp"

#include <algorithm>
#include <numeric>
#include <utility>
#include <vector>

#include "bits.hpp"
#include "index.hpp"

namespace lrcore::detail {

namespace {

void pack_patterns(RawPartition& raw, Index words, Index bytes, Slice2DResult& result) {
    const Index num_faces = raw.num_faces();
    if (raw.patterns.empty()) {
        result.patterns.resize(sz(num_faces * bytes));
        for (Index f = 0; f < num_faces; ++f)
            pack_pattern(raw.bits.data() + f * words, bytes, result.patterns.data() + f * bytes);
    } else {
        result.patterns = std::move(raw.patterns);
    }
    std::vector<Word>().swap(raw.bits);
}

// The sides (p, q) of the partition, sorted into buckets by min(p, q) (counting sort):
// the other side of an edge is found in a bucket of a few entries, next to those of the
// vertices created near p (a hash table was a cache miss at almost every side of a large
// slice).
class SideBuckets {
public:
    SideBuckets(const RawPartition& raw, Index num_vertices)
        : raw_(raw), start_(sz(num_vertices) + 1, 0), entries_(raw.side_vertex.size()) {
        for (Index f = 0; f < raw.num_faces(); ++f) {
            for (Index i = raw.face_start[sz(f)]; i < raw.face_start[sz(f) + 1]; ++i) {
                Index a, b;
                ends(f, i, a, b);
                ++start_[sz(a) + 1];
            }
        }
        std::partial_sum(start_.begin(), start_.end(), start_.begin());
        std::vector<Index> fill(start_.begin(), start_.end() - 1);
        for (Index f = 0; f < raw.num_faces(); ++f) {
            for (Index i = raw.face_start[sz(f)]; i < raw.face_start[sz(f) + 1]; ++i) {
                Index a, b;
                ends(f, i, a, b);
                entries_[sz(fill[sz(a)]++)] = Entry{b, -1};
            }
        }
    }

    // The ends a < b of side i of face f.
    void ends(Index f, Index i, Index& a, Index& b) const {
        const Index p = raw_.side_vertex[sz(i)];
        const Index q =
            raw_.side_vertex[sz(next_side(i, raw_.face_start[sz(f)], raw_.face_start[sz(f) + 1]))];
        a = std::min(p, q);
        b = std::max(p, q);
    }

    // The edge number slot of edge (a, b): the first entry of (a, b) in its bucket; -1
    // until the edge is numbered.
    Index& edge(Index a, Index b) {
        Entry* entry = entries_.data() + start_[sz(a)];
        while (entry->b != b) ++entry;
        return entry->edge;
    }

private:
    struct Entry {
        Index b, edge;
    };
    const RawPartition& raw_;
    std::vector<Index> start_;
    std::vector<Entry> entries_;
};

// Edges numbered as faces first list them: their ends and the (layer, unit) of the neuron
// each lies on ((-1, -1) on the domain's boundary).
void index_edges(const Network& net, const RawPartition& raw, Index num_vertices,
                 Slice2DResult& result) {
    // Two sides per interior edge, one per boundary edge: 2 E entries, reserved exactly
    // (doubling would copy them, and the spare capacity would stay with the result).
    const std::size_t edge_entries =
        raw.side_vertex.size() + static_cast<std::size_t>(std::count(
                                     raw.side_label.begin(), raw.side_label.end(), kBoundary));
    result.edges.reserve(edge_entries);
    result.edge_neurons.reserve(edge_entries);
    SideBuckets buckets(raw, num_vertices);
    for (Index f = 0; f < raw.num_faces(); ++f) {
        for (Index i = raw.face_start[sz(f)]; i < raw.face_start[sz(f) + 1]; ++i) {
            Index a, b;
            buckets.ends(f, i, a, b);
            Index& edge = buckets.edge(a, b);
            if (edge >= 0) continue;
            edge = static_cast<Index>(result.edges.size() / 2);
            result.edges.push_back(a);
            result.edges.push_back(b);
            const Index label = raw.side_label[sz(i)];
            if (label < 0) {
                result.edge_neurons.push_back(-1);
                result.edge_neurons.push_back(-1);
            } else {
                Index layer = 0;
                while (net.neuron_offset(layer + 1) <= label) ++layer;
                result.edge_neurons.push_back(layer);
                result.edge_neurons.push_back(label - net.neuron_offset(layer));
            }
        }
    }
}

}  // namespace

Slice2DResult assemble_slice(const Network& net, RawPartition&& raw, Index words, Index bytes) {
    Slice2DResult result;
    result.merged_crossings = raw.merged_crossings;
    result.uncertified_decisions = raw.uncertified_decisions;
    result.exact_coincidences = raw.exact_coincidences;
    result.slow_decisions = raw.slow_decisions;
    result.vertices = std::move(raw.st);
    result.outputs = std::move(raw.outputs);
    pack_patterns(raw, words, bytes, result);
    index_edges(net, raw, static_cast<Index>(result.vertices.size() / 2), result);
    result.face_offsets = std::move(raw.face_start);
    result.face_vertices = std::move(raw.side_vertex);
    return result;
}

}  // namespace lrcore::detail
