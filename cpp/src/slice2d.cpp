// Planar subdivision by evaluation on a 2D slice (DESIGN.md §2).
//
// Faces are convex counter-clockwise polygons of the (s, t) plane; every vertex holds the
// current hidden layer's pre-activations. For layer l, each face of the layer-(l-1)
// partition has all earlier signs fixed, so layer l is affine on it: the face is cut by
// each neuron of layer l whose values at the face's vertices take both signs, one neuron
// after the other. A vertex created on an edge is keyed by (edge at the start of the
// layer, neuron), so the two faces that share the edge create the same vertex, and it is
// computed from the edge's two end points only, whichever face asks first.
#include "lrcore/slice2d.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "detail.hpp"

namespace lrcore {

namespace {

using detail::Buffer;
using detail::kWordBits;
using detail::sz;
using detail::Word;
using detail::words_for;

constexpr Index kBoundary = -1;  // label of a side on the domain's boundary
constexpr Index kCut = -2;       // placeholder label of the side a cut creates

// A polygon side from `vertex` to the next side's vertex. `label` is the global neuron
// whose zero set it lies on (or kBoundary); (key_a, key_b) is the edge, as it was at the
// start of the current layer, that contains the side.
struct Side {
    Index vertex;
    Index label;
    Index key_a;
    Index key_b;
};

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
        return static_cast<std::size_t>(h);
    }
};

int sign_of(double value) { return (value > 0.0) - (value < 0.0); }

class SliceBuilder {
public:
    SliceBuilder(const Network& net, const SliceSpec& spec, const Slice2DOptions& options)
        : net_(net), spec_(spec), options_(options), words_(words_for(net.num_neurons())) {}

    Slice2DResult run(const StopFlag& stop) {
        initial_face();
        const Index num_hidden = net_.num_hidden_layers();
        for (Index layer = 0; layer < num_hidden; ++layer) {
            stop.throw_if_requested();
            if (layer > 0)
                z_.next_layer(net_.layer(layer), net_.activation(layer - 1),
                              net_.neurons(layer - 1), scale_.data());
            const AffineMap& map = net_.layer(layer);
            const Index neurons = net_.neurons(layer);
            for (Index v = 0; v < num_vertices(); ++v)
                detail::snap_zeros(z_.row(v), 1, z_.width(), neurons, &scale_[sz(v)], map,
                                   options_.rtol);
            cut_faces(layer, stop);
        }
        return collect();
    }

private:
    const Network& net_;
    const SliceSpec& spec_;
    const Slice2DOptions& options_;
    Index words_;

    std::vector<double> st_;      // V × 2 plane coordinates
    detail::RowStore z_;          // V rows: the current layer's pre-activations
    std::vector<double> scale_;   // V: norm of the current layer's input (upper bound)
    Index layer_ = 0;             // the hidden layer being cut

    // Faces in CSR form: face f has sides [face_start_[f], face_start_[f + 1]).
    std::vector<Side> sides_;
    std::vector<Index> face_start_;
    std::vector<Word> bits_;  // F × words_
    std::unordered_map<SplitKey, Index, SplitKeyHash> splits_;

    Index num_vertices() const { return static_cast<Index>(scale_.size()); }
    Index num_faces() const { return static_cast<Index>(face_start_.size()) - 1; }

    // Layer 0 (or the output, without hidden layers) at plane point (s, t) is
    // c + s * cu + t * cv: the first affine map composed with the plane once.
    std::vector<double> first_map_;  // 3 × out: c, cu, cv

    void compose_first_layer() {
        const Index d = net_.input_dim();
        const AffineMap& map = net_.layer(0);
        const Index out = map.out_dim();
        std::vector<double> rows(sz(4 * d), 0.0);  // origin, basis[0], basis[1], zero
        std::copy_n(spec_.origin, d, rows.begin());
        std::copy_n(spec_.basis, 2 * d, rows.begin() + d);
        std::vector<double> values(sz(4 * out));
        map.apply(rows.data(), 4, d, values.data(), out);
        first_map_.assign(sz(3 * out), 0.0);
        for (Index j = 0; j < out; ++j) {
            const double bias = values[sz(3 * out + j)];
            first_map_[sz(j)] = values[sz(j)];
            first_map_[sz(out + j)] = values[sz(out + j)] - bias;
            first_map_[sz(2 * out + j)] = values[sz(2 * out + j)] - bias;
        }
    }

    double input_norm(double s, double t) const {
        const Index d = net_.input_dim();
        double sum = 0.0;
        for (Index k = 0; k < d; ++k) {
            const double x = spec_.origin[k] + s * spec_.basis[k] + t * spec_.basis[d + k];
            sum += x * x;
        }
        return std::sqrt(sum);
    }

    void initial_face() {
        compose_first_layer();
        const Index out = net_.layer(0).out_dim();
        z_.reset(out);
        const Index m = static_cast<Index>(spec_.domain.size() / 2);
        st_ = spec_.domain;
        scale_.resize(sz(m));
        face_start_.assign(1, 0);
        for (Index v = 0; v < m; ++v) {
            const double s = st_[sz(2 * v)];
            const double t = st_[sz(2 * v + 1)];
            double* row = z_.append();
            for (Index j = 0; j < out; ++j)
                row[j] = first_map_[sz(j)] + s * first_map_[sz(out + j)] +
                         t * first_map_[sz(2 * out + j)];
            scale_[sz(v)] = input_norm(s, t);
            sides_.push_back({v, kBoundary, 0, 0});
        }
        face_start_.push_back(m);
        bits_.assign(sz(words_), 0);
    }

    double value(Index vertex, Index neuron) const { return z_.row(vertex)[neuron]; }

    // The vertex where `neuron` crosses the layer-start edge (key_a, key_b), created once;
    // (p, q) is the side of the asking face that contains it.
    Index crossing(Index key_a, Index key_b, Index p, Index q, Index neuron) {
        const SplitKey key{key_a, key_b, neuron};
        auto found = splits_.find(key);
        if (found != splits_.end()) return found->second;
        const Index w = z_.width();
        const Index neurons = net_.neurons(layer_);
        Index a = key_a, b = key_b;
        // Rounding can leave the edge's end values on one side although the side's own
        // values differ in sign; then the side's end points give the crossing.
        if (!(value(a, neuron) * value(b, neuron) < 0.0)) {
            a = p;
            b = q;
        }
        const Index v = num_vertices();
        double* zv = z_.append();  // other rows do not move
        const double* za = z_.row(a);
        const double* zb = z_.row(b);
        const double tau = za[neuron] / (za[neuron] - zb[neuron]);
        for (Index j = 0; j < w; ++j) zv[j] = za[j] + tau * (zb[j] - za[j]);
        for (Index j = 0; j < neurons; ++j) {
            // Neurons that also cross this edge keep the side their own crossing puts
            // them on, whatever rounding did to the interpolated value.
            if (za[j] * zb[j] < 0.0) {
                const double tau_j = za[j] / (za[j] - zb[j]);
                const double side = tau_j < tau ? zb[j] : za[j];
                if (tau_j == tau || zv[j] * side < 0.0) zv[j] = 0.0;
            }
        }
        zv[neuron] = 0.0;
        st_.push_back(st_[sz(2 * a)] + tau * (st_[sz(2 * b)] - st_[sz(2 * a)]));
        st_.push_back(st_[sz(2 * a + 1)] + tau * (st_[sz(2 * b + 1)] - st_[sz(2 * a + 1)]));
        scale_.push_back(scale_[sz(a)] + tau * (scale_[sz(b)] - scale_[sz(a)]));
        // The new vertex may lie on other neurons' lines too (lines through one point):
        // the same tolerance as at the layer's start makes it their vertex as well, so
        // they cut through it instead of creating sliver faces next to it.
        detail::snap_zeros(zv, 1, w, neurons, &scale_.back(), net_.layer(layer_), options_.rtol);
        splits_.emplace(key, v);
        return v;
    }

    // Cuts the polygon sides[first, last) along neuron's zero line; appends its positive
    // and its negative part to `out` (each a polygon: the start offsets go to `starts`).
    void split(const std::vector<Side>& sides, Index first, Index last, Index neuron,
               Index label, std::vector<Side>& out, std::vector<Index>& starts) {
        pos_.clear();
        neg_.clear();
        const Index m = last - first;
        for (Index i = 0; i < m; ++i) {
            const Side a = sides[sz(first + i)];
            const Side& b = sides[sz(first + (i + 1) % m)];
            const int sa = sign_of(value(a.vertex, neuron));
            const int sb = sign_of(value(b.vertex, neuron));
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
                const Index w = crossing(a.key_a, a.key_b, a.vertex, b.vertex, neuron);
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

    void cut_faces(Index layer, const StopFlag& stop) {
        layer_ = layer;
        const Index offset = net_.neuron_offset(layer);
        const Index w = net_.neurons(layer);  // linear units never cut
        splits_.clear();
        splits_.reserve(sz(num_faces()) * 2);
        std::vector<Side> next_sides;
        std::vector<Index> next_start{0};
        std::vector<Word> next_bits;
        next_sides.reserve(sides_.size() * 2);
        next_start.reserve(face_start_.size() * 2);
        next_bits.reserve(bits_.size() * 2);
        // Sign masks of every layer-start vertex: a face straddles neuron j when its
        // vertices' masks have bit j both in `positive` and in `negative`.
        const Index mask_words = words_for(w);
        std::vector<Word> positive(sz(num_vertices() * mask_words), 0);
        std::vector<Word> negative(sz(num_vertices() * mask_words), 0);
        for (Index v = 0; v < num_vertices(); ++v) {
            const double* row = z_.row(v);
            Word* pos_row = positive.data() + v * mask_words;
            Word* neg_row = negative.data() + v * mask_words;
            for (Index j = 0; j < w; ++j) {
                pos_row[j / kWordBits] |= static_cast<Word>(row[j] > 0.0) << (j % kWordBits);
                neg_row[j / kWordBits] |= static_cast<Word>(row[j] < 0.0) << (j % kWordBits);
            }
        }
        std::vector<Word> any_pos(sz(mask_words)), any_neg(sz(mask_words));
        std::vector<Index> straddling;
        std::vector<Index> part_start;
        std::vector<Word> part_bits;

        for (Index f = 0; f < num_faces(); ++f) {
            if ((f & 1023) == 0) stop.throw_if_requested();
            const Index first = face_start_[sz(f)];
            const Index last = face_start_[sz(f) + 1];
            const Index m = last - first;
            // Every side is an edge of the layer-start partition: layer `layer` is affine
            // along it, so crossings are interpolated from its end points.
            for (Index i = 0; i < m; ++i) {
                Side& side = sides_[sz(first + i)];
                const Index p = side.vertex;
                const Index q = sides_[sz(first + (i + 1) % m)].vertex;
                side.key_a = std::min(p, q);
                side.key_b = std::max(p, q);
            }
            std::fill(any_pos.begin(), any_pos.end(), 0);
            std::fill(any_neg.begin(), any_neg.end(), 0);
            for (Index i = first; i < last; ++i) {
                const Index v = sides_[sz(i)].vertex;
                for (Index k = 0; k < mask_words; ++k) {
                    any_pos[sz(k)] |= positive[sz(v * mask_words + k)];
                    any_neg[sz(k)] |= negative[sz(v * mask_words + k)];
                }
            }
            part_bits.assign(bits_.begin() + f * words_, bits_.begin() + (f + 1) * words_);
            straddling.clear();
            for (Index k = 0; k < mask_words; ++k) {
                Word both = any_pos[sz(k)] & any_neg[sz(k)];
                while (both != 0) {
                    straddling.push_back(k * kWordBits + static_cast<Index>(__builtin_ctzll(both)));
                    both &= both - 1;
                }
                // Neurons positive on the whole face: their pattern bit is 1.
                Word on = any_pos[sz(k)] & ~any_neg[sz(k)];
                while (on != 0) {
                    const Index bit = offset + k * kWordBits + static_cast<Index>(__builtin_ctzll(on));
                    on &= on - 1;
                    part_bits[sz(bit / kWordBits)] |= Word{1} << (bit % kWordBits);
                }
            }
            // A cutting tree: a part is cut by the first of its candidate neurons that
            // straddles it, and each half keeps only the later candidates that straddle
            // the part. A face crossed by n lines then costs O(n^2) sign tests, not the
            // O(n^3) of testing every part against every neuron in turn.
            nodes_.clear();
            node_sides_.assign(sides_.begin() + first, sides_.begin() + last);
            node_bits_ = part_bits;
            node_cands_ = straddling;
            nodes_.push_back({0, m, 0, static_cast<Index>(straddling.size()), 0});
            while (!nodes_.empty()) {
                const Node node = nodes_.back();
                nodes_.pop_back();
                // The candidates that straddle this part; the others are settled here.
                const Index kept_begin = static_cast<Index>(node_cands_.size());
                for (Index c = node.cand_begin; c < node.cand_end; ++c) {
                    const Index j = node_cands_[sz(c)];
                    bool has_pos = false, has_neg = false;
                    for (Index i = node.side_begin; i < node.side_end; ++i) {
                        const double v = value(node_sides_[sz(i)].vertex, j);
                        has_pos |= v > 0.0;
                        has_neg |= v < 0.0;
                    }
                    if (has_pos && has_neg) {
                        node_cands_.push_back(j);
                    } else if (has_pos) {
                        const Index bit = offset + j;
                        node_bits_[sz(node.bits + bit / kWordBits)] |= Word{1} << (bit % kWordBits);
                    }
                }
                const Index kept_end = static_cast<Index>(node_cands_.size());
                if (kept_begin == kept_end) {
                    next_sides.insert(next_sides.end(), node_sides_.begin() + node.side_begin,
                                      node_sides_.begin() + node.side_end);
                    next_start.push_back(static_cast<Index>(next_sides.size()));
                    next_bits.insert(next_bits.end(), node_bits_.begin() + node.bits,
                                     node_bits_.begin() + node.bits + words_);
                    continue;
                }
                const Index j = node_cands_[sz(kept_begin)];
                const Index bit = offset + j;
                part_start.assign(1, static_cast<Index>(node_sides_.size()));
                split(node_sides_, node.side_begin, node.side_end, j, bit, node_sides_,
                      part_start);
                // Two children: the positive part (bit set) and the negative one.
                const Index pos_bits = static_cast<Index>(node_bits_.size());
                node_bits_.insert(node_bits_.end(), node_bits_.begin() + node.bits,
                                  node_bits_.begin() + node.bits + words_);
                node_bits_[sz(pos_bits + bit / kWordBits)] |= Word{1} << (bit % kWordBits);
                nodes_.push_back({part_start[1], part_start[2], kept_begin + 1, kept_end, node.bits});
                nodes_.push_back({part_start[0], part_start[1], kept_begin + 1, kept_end, pos_bits});
            }
            const Index total = static_cast<Index>(next_start.size()) - 1 + (num_faces() - f - 1);
            if (total > options_.max_regions) {
                throw LimitExceeded("lrcore: the slice has more than max_regions=" +
                                    std::to_string(options_.max_regions) + " regions (" +
                                    std::to_string(total) +
                                    " reached); raise max_regions to allow more");
            }
        }
        sides_.swap(next_sides);
        face_start_.swap(next_start);
        bits_.swap(next_bits);
    }

    Slice2DResult collect() {
        Slice2DResult result;
        const Index n = num_vertices();
        const Index out = net_.output_dim();
        result.outputs.resize(sz(n * out));
        if (net_.num_hidden_layers() == 0) {
            for (Index v = 0; v < n; ++v)
                for (Index j = 0; j < out; ++j)
                    result.outputs[sz(v * out + j)] =
                        first_map_[sz(j)] + st_[sz(2 * v)] * first_map_[sz(out + j)] +
                        st_[sz(2 * v + 1)] * first_map_[sz(2 * out + j)];
        } else {
            const Index last = net_.num_layers() - 1;
            z_.next_layer(net_.layer(last), net_.activation(last - 1), net_.neurons(last - 1),
                          scale_.data());
            for (Index v = 0; v < n; ++v) std::copy_n(z_.row(v), out, result.outputs.data() + v * out);
        }
        z_.reset(0);

        result.vertices = st_;
        result.face_offsets.push_back(0);
        const Index bytes = (net_.num_neurons() + 7) / 8;
        result.patterns.resize(sz(num_faces() * bytes));
        std::unordered_map<SplitKey, Index, SplitKeyHash> edge_index;
        edge_index.reserve(sides_.size());
        result.face_vertices.reserve(sides_.size());
        for (Index f = 0; f < num_faces(); ++f) {
            const Index first = face_start_[sz(f)];
            const Index last = face_start_[sz(f) + 1];
            for (Index i = first; i < last; ++i) {
                const Index p = sides_[sz(i)].vertex;
                const Index q = sides_[sz(i + 1 < last ? i + 1 : first)].vertex;
                result.face_vertices.push_back(p);
                const SplitKey key{std::min(p, q), std::max(p, q), 0};
                if (edge_index.emplace(key, static_cast<Index>(result.edges.size() / 2)).second) {
                    result.edges.push_back(key.a);
                    result.edges.push_back(key.b);
                    const Index label = sides_[sz(i)].label;
                    if (label < 0) {
                        result.edge_neurons.push_back(-1);
                        result.edge_neurons.push_back(-1);
                    } else {
                        Index layer = 0;
                        while (net_.neuron_offset(layer + 1) <= label) ++layer;
                        result.edge_neurons.push_back(layer);
                        result.edge_neurons.push_back(label - net_.neuron_offset(layer));
                    }
                }
            }
            result.face_offsets.push_back(static_cast<Index>(result.face_vertices.size()));
            detail::pack_pattern(bits_.data() + f * words_, bytes,
                                 result.patterns.data() + f * bytes);
        }
        return result;
    }

    std::vector<Side> pos_, neg_;  // scratch of split()

    // The cutting tree of one face: a node is a part (sides in node_sides_, pattern bits
    // at node_bits_[bits]) and its candidate neurons node_cands_[cand_begin, cand_end).
    struct Node {
        Index side_begin, side_end, cand_begin, cand_end, bits;
    };
    std::vector<Node> nodes_;
    std::vector<Side> node_sides_;
    std::vector<Index> node_cands_;
    std::vector<Word> node_bits_;
};

}  // namespace

std::vector<Slice2DResult> slice_2d(const Network& net, const std::vector<SliceSpec>& slices,
                                    const Slice2DOptions& options, const InterruptPoll& poll) {
    for (const SliceSpec& spec : slices) {
        if (spec.origin == nullptr || spec.basis == nullptr || spec.domain.size() < 6 ||
            spec.domain.size() % 2 != 0)
            throw std::invalid_argument("slice_2d: every slice needs an origin, a basis and a "
                                        "domain polygon of at least 3 points");
    }
    if (!(options.rtol >= 0.0) || !std::isfinite(options.rtol))
        throw std::invalid_argument("slice_2d: rtol must be a finite number >= 0");
    std::vector<Slice2DResult> results(slices.size());
    parallel_for(
        static_cast<Index>(slices.size()), options.num_threads,
        [&](Index task, Index, const StopFlag& stop) {
            SliceBuilder builder(net, slices[sz(task)], options);
            results[sz(task)] = builder.run(stop);
        },
        poll);
    return results;
}

}  // namespace lrcore
