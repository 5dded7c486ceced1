// Planar subdivision by evaluation on a 2D slice (docs/design.md, docs/core-layout.md).
//
// Faces are convex counter-clockwise polygons of the (s, t) plane; every vertex holds the
// current hidden layer's pre-activations. For layer l, each face of the layer-(l-1)
// partition has all earlier signs fixed, so layer l is affine on it: the face is cut by
// each neuron of layer l whose values at the face's vertices take both signs, one neuron
// after the other. A vertex created on an edge is keyed by (edge at the start of the
// layer, neuron), so the two faces that share the edge create the same vertex, and it is
// computed from the edge's two end points only, whichever face asks first.
#include "slice2d_face_builder.hpp"

#include <algorithm>
#include <string>

#include "lrcore/errors.hpp"
#include "memory.hpp"
#include "signs.hpp"

namespace lrcore::detail {

namespace {

// Appends `count` words (a pattern: a few words, copied inline rather than by memmove).
inline void append_words(std::vector<Word>& to, const Word* from, Index count) {
    for (Index w = 0; w < count; ++w) to.push_back(from[w]);
}

}  // namespace

void throw_too_many_regions(Index limit, Index reached) {
    throw LimitExceeded("lrcore: the slice has more than max_regions=" + std::to_string(limit) +
                        " regions (" + std::to_string(reached) +
                        " reached); raise max_regions to allow more");
}

RawPartition FaceBuilder::run(const SliceSpec& spec, const Tile& tile,
                              std::atomic<Index>& finished_faces,
                              std::atomic<Index>& finished_bytes, bool release,
                              const StopFlag& stop) {
    finished_faces_ = &finished_faces;
    finished_bytes_ = &finished_bytes;
    vertices_.start(spec, tile.polygon, tile.sides);
    initial_face(tile);
    const Index num_hidden = net_.num_hidden_layers();
    for (Index layer = 0; layer < num_hidden; ++layer) {
        stop.throw_if_requested();
        if (layer > 0) vertices_.next_layer(layer);
        cut_faces(layer, stop);
    }
    return collect(release);
}

// The tile itself as the only face, its corners the vertices, with the labels of its
// sides, and no pattern bit set.
void FaceBuilder::initial_face(const Tile& tile) {
    const Index m = static_cast<Index>(tile.polygon.size() / 2);
    sides_.clear();
    face_start_.assign(1, 0);
    for (Index v = 0; v < m; ++v) sides_.push_back({v, tile.labels[sz(v)], 0, 0});
    face_start_.push_back(m);
    bits_.assign(sz(words_), 0);
}

// Every layer-start edge once to TileVertices::snap_edge_ends. An edge between two faces
// (a neuron's label) is seen from both; it is passed from the face that has it as p < q.
void FaceBuilder::snap_near_ends() {
    for (Index f = 0; f < num_faces(); ++f) {
        const Index first = face_start_[sz(f)];
        const Index last = face_start_[sz(f) + 1];
        for (Index i = first; i < last; ++i) {
            const Index p = sides_[sz(i)].vertex;
            const Index q = sides_[sz(next_side(i, first, last))].vertex;
            if (sides_[sz(i)].label >= 0 && p > q) continue;
            vertices_.snap_edge_ends(p, q);
        }
    }
}

void FaceBuilder::cut_faces(Index layer, const StopFlag& stop) {
    layer_ = layer;
    const Index offset = net_.neuron_offset(layer);
    vertices_.start_layer(layer, sz(num_faces()) * 2);
    if (vertices_.has_pending()) resolve_pending();
    snap_near_ends();
    any_pos_.resize(sz(vertices_.mask_words()));
    any_neg_.resize(sz(vertices_.mask_words()));
    next_sides_.clear();
    next_start_.assign(1, 0);
    next_bits_.clear();
    next_sides_.reserve(sides_.size() * 2);
    next_start_.reserve(face_start_.size() * 2);
    next_bits_.reserve(bits_.size() * 2);
    for (Index f = 0; f < num_faces(); ++f) {
        if ((f & 1023) == 0) stop.throw_if_requested();
        settle_face(f, offset);
        if (straddling_.empty()) {
            // No neuron of the layer cuts the face: it goes on whole (its sides keyed
            // afresh by the next layer that cuts it).
            next_sides_.insert(next_sides_.end(), sides_.begin() + face_start_[sz(f)],
                               sides_.begin() + face_start_[sz(f) + 1]);
            next_start_.push_back(static_cast<Index>(next_sides_.size()));
            append_words(next_bits_, part_bits_.data(), words_);
        } else {
            key_sides(f);
            cut_face(f, offset);
        }
        check_limits(f);
    }
    sides_.swap(next_sides_);
    face_start_.swap(next_start_);
    bits_.swap(next_bits_);
}

// Certified: the slow path for the values the filter left undecided at the layer-start
// vertices, each under the pattern of a face it is a corner of (on the face's closure the
// earlier layers' pattern is constant, and the network is continuous: docs/numerics.md
// §6). Only where there are such values.
void FaceBuilder::resolve_pending() {
    owner_patterns_.assign(sz(vertices_.size()), nullptr);
    for (Index f = 0; f < num_faces(); ++f) {
        const Word* pattern = bits_.data() + f * words_;
        for (Index i = face_start_[sz(f)]; i < face_start_[sz(f) + 1]; ++i) {
            const Index v = sides_[sz(i)].vertex;
            if (owner_patterns_[sz(v)] == nullptr) owner_patterns_[sz(v)] = pattern;
        }
    }
    vertices_.resolve_pending(owner_patterns_);
}

// Every side of face f is an edge of the layer-start partition: the layer is affine along
// it, so crossings are interpolated from its end points, which key it.
inline void FaceBuilder::key_sides(Index f) {
    const Index first = face_start_[sz(f)];
    const Index m = face_start_[sz(f) + 1] - first;
    for (Index i = 0; i < m; ++i) {
        Side& side = sides_[sz(first + i)];
        const Index p = side.vertex;
        const Index q = sides_[sz(first + (i + 1) % m)].vertex;
        side.key_a = std::min(p, q);
        side.key_b = std::max(p, q);
    }
}

// From the sign masks of face f's vertices: the neurons that straddle it (straddling_)
// and its pattern with the bits of the neurons positive on the whole face set
// (part_bits_).
inline void FaceBuilder::settle_face(Index f, Index offset) {
    const Index first = face_start_[sz(f)];
    const Index last = face_start_[sz(f) + 1];
    const Index mask_words = vertices_.mask_words();
    if (mask_words == 1) {  // layers of up to 64 neurons: the masks in registers
        Word pos = 0, neg = 0;
        for (Index i = first; i < last; ++i) {
            pos |= *vertices_.positive(sides_[sz(i)].vertex);
            neg |= *vertices_.negative(sides_[sz(i)].vertex);
        }
        any_pos_[0] = pos;
        any_neg_[0] = neg;
    } else {
        std::fill(any_pos_.begin(), any_pos_.end(), 0);
        std::fill(any_neg_.begin(), any_neg_.end(), 0);
        for (Index i = first; i < last; ++i) {
            const Word* positive = vertices_.positive(sides_[sz(i)].vertex);
            const Word* negative = vertices_.negative(sides_[sz(i)].vertex);
            for (Index k = 0; k < mask_words; ++k) {
                any_pos_[sz(k)] |= positive[k];
                any_neg_[sz(k)] |= negative[k];
            }
        }
    }
    part_bits_.resize(sz(words_));
    for (Index w = 0; w < words_; ++w) part_bits_[sz(w)] = bits_[sz(f * words_ + w)];
    straddling_.clear();
    for (Index k = 0; k < mask_words; ++k) {
        Word both = any_pos_[sz(k)] & any_neg_[sz(k)];
        while (both != 0) {
            straddling_.push_back(k * kWordBits + static_cast<Index>(__builtin_ctzll(both)));
            both &= both - 1;
        }
        // Neurons positive on the whole face: their pattern bit is 1 (a word of them at a
        // time, shifted to the layer's offset in the pattern).
        const Word on = any_pos_[sz(k)] & ~any_neg_[sz(k)];
        if (on != 0) set_bits_at(part_bits_.data(), offset + k * kWordBits, on);
    }
}

// Cuts face f by the neurons that straddle it, appending the parts to the next layer's
// faces. A cutting tree: a part is cut by the first of its candidate neurons that
// straddles it, and each half keeps only the later candidates that straddle the part. A
// face crossed by n lines then costs O(n^2) sign tests, not the O(n^3) of testing every
// part against every neuron in turn.
inline void FaceBuilder::cut_face(Index f, Index offset) {
    const Index first = face_start_[sz(f)];
    const Index last = face_start_[sz(f) + 1];
    if (vertices_.certified()) {
        face_polygon_.clear();
        for (Index i = first; i < last; ++i) face_polygon_.push_back(sides_[sz(i)].vertex);
        vertices_.begin_face(face_polygon_.data(), last - first, bits_.data() + f * words_);
    }
    nodes_.clear();
    node_sides_.assign(sides_.begin() + first, sides_.begin() + last);
    node_bits_ = part_bits_;
    node_cands_ = straddling_;
    nodes_.push_back({0, last - first, 0, static_cast<Index>(straddling_.size()), 0});
    while (!nodes_.empty()) {
        const Node node = nodes_.back();
        nodes_.pop_back();
        // The candidates that straddle this part; the others are settled here.
        const Index kept_begin = static_cast<Index>(node_cands_.size());
        for (Index c = node.cand_begin; c < node.cand_end; ++c) {
            const Index j = node_cands_[sz(c)];
            bool has_pos = false, has_neg = false;
            for (Index i = node.side_begin; i < node.side_end; ++i) {
                const double v = vertices_.value(node_sides_[sz(i)].vertex, j);
                has_pos |= v > 0.0;
                has_neg |= v < 0.0;
            }
            if (has_pos && has_neg) {
                node_cands_.push_back(j);
            } else if (has_pos) {
                set_bit(node_bits_.data() + node.bits, offset + j);
            }
        }
        const Index kept_end = static_cast<Index>(node_cands_.size());
        if (kept_begin == kept_end) {
            next_sides_.insert(next_sides_.end(), node_sides_.begin() + node.side_begin,
                               node_sides_.begin() + node.side_end);
            next_start_.push_back(static_cast<Index>(next_sides_.size()));
            append_words(next_bits_, node_bits_.data() + node.bits, words_);
            continue;
        }
        const Index j = node_cands_[sz(kept_begin)];
        const Index bit = offset + j;
        part_start_.assign(1, static_cast<Index>(node_sides_.size()));
        split(node_sides_, node.side_begin, node.side_end, j, bit, node_sides_, part_start_);
        // Two children: the positive part (bit set) and the negative one.
        const Index pos_bits = static_cast<Index>(node_bits_.size());
        for (Index w = 0; w < words_; ++w) {  // a copy of its own range: not insert()
            const Word word = node_bits_[sz(node.bits + w)];
            node_bits_.push_back(word);
        }
        set_bit(node_bits_.data() + pos_bits, bit);
        nodes_.push_back({part_start_[1], part_start_[2], kept_begin + 1, kept_end, node.bits});
        nodes_.push_back({part_start_[0], part_start_[1], kept_begin + 1, kept_end, pos_bits});
    }
}

// Cuts the polygon sides[first, last) along neuron's zero line; appends its positive
// and its negative part to `out` (each a polygon: the start offsets go to `starts`).
void FaceBuilder::split(const std::vector<Side>& sides, Index first, Index last, Index neuron,
                        Index label, std::vector<Side>& out, std::vector<Index>& starts) {
    pos_.clear();
    neg_.clear();
    const Index m = last - first;
    for (Index i = 0; i < m; ++i) {
        const Side a = sides[sz(first + i)];
        const Side& b = sides[sz(first + (i + 1) % m)];
        const int sa = sign_of(vertices_.value(a.vertex, neuron));
        const int sb = sign_of(vertices_.value(b.vertex, neuron));
        if (sa > 0) {
            pos_.push_back(a);
        } else if (sa < 0) {
            neg_.push_back(a);
        } else {
            // On the line: a corner of both parts; the side leaving it stays with the
            // part the next vertex is in, and is the cut in the other part.
            pos_.push_back(sb > 0 ? a : Side{a.vertex, kCut, 0, 0});
            neg_.push_back(sb < 0 ? a : Side{a.vertex, kCut, 0, 0});
        }
        if (sa * sb < 0) {
            // A side cut in this layer lies on neuron `a.label - offset`'s line (certified
            // crossings on it are taken along that line's chord through the face).
            const Index offset = label - neuron;
            const Index line = a.label >= offset && a.label < offset + net_.hidden_size(layer_)
                                   ? a.label - offset
                                   : -1;
            const Index w =
                vertices_.crossing(a.key_a, a.key_b, a.vertex, b.vertex, neuron, line, a.label);
            const Side along{w, a.label, a.key_a, a.key_b};
            const Side cut{w, kCut, 0, 0};
            if (sa > 0) {
                pos_.push_back(cut);
                neg_.push_back(along);
            } else {
                neg_.push_back(cut);
                pos_.push_back(along);
            }
        }
    }
    for (std::vector<Side>* part : {&pos_, &neg_}) {
        const std::size_t n = part->size();
        for (std::size_t i = 0; i < n; ++i) {
            Side& side = (*part)[i];
            if (side.label != kCut) continue;
            const Index p = side.vertex;
            const Index q = (*part)[(i + 1) % n].vertex;
            side.label = label;
            side.key_a = std::min(p, q);
            side.key_b = std::max(p, q);
        }
        out.insert(out.end(), part->begin(), part->end());
        starts.push_back(static_cast<Index>(out.size()));
    }
}

// After face f is cut: the faces so far against max_regions (and, every 1024 faces,
// the memory against max_memory). A region meets a tile in one face, so one tile never
// holds more faces than the slice has regions; across tiles the count is checked loosely
// here (a region cut by tile lines counts once per tile) and exactly after merging.
inline void FaceBuilder::check_limits(Index f) {
    const Index total = static_cast<Index>(next_start_.size()) - 1 + (num_faces() - f - 1);
    if ((f & 1023) == 0) check_memory(total);
    if (total > options_.max_regions ||
        total + finished_faces_->load(std::memory_order_relaxed) > 2 * options_.max_regions)
        throw_too_many_regions(options_.max_regions, total);
}

// Bytes this tile holds (vertex rows, coordinates, split keys; faces with their
// sides and patterns) plus the finished tiles of the slice, against max_memory.
void FaceBuilder::check_memory(Index faces) const {
    if (options_.max_memory <= 0.0) return;
    // (A certified slice keeps a bound beside every value.)
    const double vertex_bytes =
        static_cast<double>(vertices_.width()) * (vertices_.certified() ? 16.0 : 8.0) + 96.0;
    const double face_bytes = static_cast<double>(words_) * 8.0 + 6.0 * 32.0;
    const double bytes = static_cast<double>(vertices_.size()) * vertex_bytes +
                         static_cast<double>(faces) * face_bytes +
                         static_cast<double>(finished_bytes_->load(std::memory_order_relaxed));
    if (bytes > options_.max_memory) {
        throw LimitExceeded("lrcore: the slice would need more than max_memory=" +
                            format_bytes(options_.max_memory) + " (about " + format_bytes(bytes) +
                            " at " + std::to_string(faces) +
                            " regions in this tile so far); raise max_memory, or use more "
                            "tiles or a smaller domain");
    }
}

// The tile's partition, in exactly sized arrays (every tile's partition waits in
// memory until the tiles merge). The builder's buffers keep their memory unless
// `release`: then they are freed first, and the arrays that are the result's move.
RawPartition FaceBuilder::collect(bool release) {
    RawPartition raw;
    vertices_.outputs(raw.outputs);
    if (release) {
        vertices_.release_scratch();
        for (std::vector<Side>* v : {&next_sides_, &pos_, &neg_, &node_sides_})
            std::vector<Side>().swap(*v);
        for (std::vector<Word>* v : {&next_bits_, &node_bits_}) std::vector<Word>().swap(*v);
        std::vector<Index>().swap(next_start_);
    }
    // Exact sizes, moved or copied.
    vertices_.take_coordinates(raw.st, release);
    take_exact(face_start_, raw.face_start, release);
    take_exact(bits_, raw.bits, release);
    raw.side_vertex.reserve(sides_.size());
    raw.side_label.reserve(sides_.size());
    for (const Side& side : sides_) {
        raw.side_vertex.push_back(side.vertex);
        raw.side_label.push_back(side.label);
    }
    if (release) {
        std::vector<Side>().swap(sides_);
        vertices_.release();
    }
    raw.merged_crossings = vertices_.merged_crossings();
    raw.uncertified_decisions = vertices_.uncertified_decisions();
    raw.exact_coincidences = vertices_.exact_coincidences();
    raw.slow_decisions = vertices_.slow_decisions();
    raw.counted = vertices_.counted();
    return raw;
}

}  // namespace lrcore::detail
