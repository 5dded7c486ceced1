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

using Polygon = std::vector<Side>;

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
                detail::next_layer_values(net_, layer, num_vertices(), z_, width_, activated_,
                                          scale_.data());
            detail::snap_zeros(z_.data(), num_vertices(), width_, scale_.data(),
                               net_.layer(layer), options_.rtol);
            cut_faces(layer, stop);
        }
        return collect();
    }

private:
    const Network& net_;
    const SliceSpec& spec_;
    const Slice2DOptions& options_;
    Index words_;

    std::vector<double> st_;  // V × 2
    Buffer<double> z_;        // V × width_: current layer's pre-activations
    std::vector<double> scale_;
    Index width_ = 0;
    Index layer_ = 0;  // the hidden layer being cut
    Buffer<double> activated_;

    std::vector<Polygon> faces_;
    std::vector<Word> bits_;  // F × words_
    std::unordered_map<SplitKey, Index, SplitKeyHash> splits_;

    Index num_vertices() const { return static_cast<Index>(scale_.size()); }

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
        width_ = out;
        const Index m = static_cast<Index>(spec_.domain.size() / 2);
        st_ = spec_.domain;
        z_.resize(sz(m * out));
        scale_.resize(sz(m));
        Polygon face;
        for (Index v = 0; v < m; ++v) {
            const double s = st_[sz(2 * v)];
            const double t = st_[sz(2 * v + 1)];
            for (Index j = 0; j < out; ++j)
                z_[sz(v * out + j)] = first_map_[sz(j)] + s * first_map_[sz(out + j)] +
                                      t * first_map_[sz(2 * out + j)];
            scale_[sz(v)] = input_norm(s, t);
            face.push_back({v, kBoundary, 0, 0});
        }
        faces_.assign(1, face);
        bits_.assign(sz(words_), 0);
    }

    // The vertex where `neuron` crosses the layer-start edge (key_a, key_b), created once;
    // (p, q) is the side of the asking face that contains it.
    Index crossing(Index key_a, Index key_b, Index p, Index q, Index neuron) {
        const SplitKey key{key_a, key_b, neuron};
        auto found = splits_.find(key);
        if (found != splits_.end()) return found->second;
        const Index w = width_;
        Index a = key_a, b = key_b;
        // Rounding can leave the edge's end values on one side although the side's own
        // values differ in sign; then the side's end points give the crossing.
        if (!(value(a, neuron) * value(b, neuron) < 0.0)) {
            a = p;
            b = q;
        }
        const double* za = z_.data() + a * w;
        const double* zb = z_.data() + b * w;
        const double tau = za[neuron] / (za[neuron] - zb[neuron]);
        const Index v = num_vertices();
        z_.resize(sz((v + 1) * w));
        za = z_.data() + a * w;  // the resize may have moved the buffer
        zb = z_.data() + b * w;
        double* zv = z_.data() + v * w;
        for (Index j = 0; j < w; ++j) {
            zv[j] = za[j] + tau * (zb[j] - za[j]);
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
        detail::snap_zeros(zv, 1, w, &scale_.back(), net_.layer(layer_), options_.rtol);
        splits_.emplace(key, v);
        return v;
    }

    double value(Index vertex, Index neuron) const { return z_[sz(vertex * width_ + neuron)]; }

    // Cuts `poly` along neuron's zero line into its positive and negative parts.
    void split(const Polygon& poly, Index neuron, Index label, Polygon& pos, Polygon& neg) {
        pos.clear();
        neg.clear();
        const std::size_t m = poly.size();
        for (std::size_t i = 0; i < m; ++i) {
            const Side& a = poly[i];
            const Side& b = poly[(i + 1) % m];
            const int sa = sign_of(value(a.vertex, neuron));
            const int sb = sign_of(value(b.vertex, neuron));
            if (sa > 0) {
                pos.push_back(a);
            } else if (sa < 0) {
                neg.push_back(a);
            } else {
                // On the line: a corner of both parts; the side leaving it stays with the
                // part the next vertex is in, and is the cut in the other part.
                pos.push_back(sb > 0 ? a : Side{a.vertex, kCut, 0, 0});
                neg.push_back(sb < 0 ? a : Side{a.vertex, kCut, 0, 0});
            }
            if (sa * sb < 0) {
                const Index w = crossing(a.key_a, a.key_b, a.vertex, b.vertex, neuron);
                const Side along{w, a.label, a.key_a, a.key_b};
                const Side cut{w, kCut, 0, 0};
                if (sa > 0) {
                    pos.push_back(cut);
                    neg.push_back(along);
                } else {
                    neg.push_back(cut);
                    pos.push_back(along);
                }
            }
        }
        for (Polygon* part : {&pos, &neg}) {
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
        }
    }

    void cut_faces(Index layer, const StopFlag& stop) {
        layer_ = layer;
        const Index offset = net_.neuron_offset(layer);
        const Index w = width_;
        splits_.clear();
        std::vector<Polygon> next_faces;
        std::vector<Word> next_bits;
        std::vector<std::uint8_t> any_pos(sz(w)), any_neg(sz(w));
        std::vector<Index> straddling;
        std::vector<Polygon> parts, next_parts;
        std::vector<Word> part_bits, next_part_bits;
        Polygon pos, neg;

        for (std::size_t f = 0; f < faces_.size(); ++f) {
            if ((f & 1023) == 0) stop.throw_if_requested();
            Polygon& face = faces_[f];
            const std::size_t m = face.size();
            // Every side is an edge of the layer-start partition: layer `layer` is affine
            // along it, so crossings are interpolated from its end points.
            for (std::size_t i = 0; i < m; ++i) {
                const Index p = face[i].vertex;
                const Index q = face[(i + 1) % m].vertex;
                face[i].key_a = std::min(p, q);
                face[i].key_b = std::max(p, q);
            }
            std::fill(any_pos.begin(), any_pos.end(), 0);
            std::fill(any_neg.begin(), any_neg.end(), 0);
            for (const Side& side : face) {
                const double* row = z_.data() + side.vertex * w;
                for (Index j = 0; j < w; ++j) {
                    any_pos[sz(j)] |= static_cast<std::uint8_t>(row[j] > 0.0);
                    any_neg[sz(j)] |= static_cast<std::uint8_t>(row[j] < 0.0);
                }
            }
            std::vector<Word> face_bits(bits_.begin() + static_cast<std::ptrdiff_t>(f) * words_,
                                        bits_.begin() + static_cast<std::ptrdiff_t>(f + 1) * words_);
            straddling.clear();
            for (Index j = 0; j < w; ++j) {
                if (any_pos[sz(j)] && any_neg[sz(j)]) {
                    straddling.push_back(j);
                } else if (any_pos[sz(j)]) {
                    const Index bit = offset + j;
                    face_bits[sz(bit / kWordBits)] |= Word{1} << (bit % kWordBits);
                }
            }
            parts.assign(1, face);
            part_bits = face_bits;
            for (const Index j : straddling) {
                next_parts.clear();
                next_part_bits.clear();
                const Index bit = offset + j;
                const Word mask = Word{1} << (bit % kWordBits);
                for (std::size_t p = 0; p < parts.size(); ++p) {
                    const Word* pb = part_bits.data() + p * sz(words_);
                    bool has_pos = false, has_neg = false;
                    for (const Side& side : parts[p]) {
                        const double v = value(side.vertex, j);
                        has_pos |= v > 0.0;
                        has_neg |= v < 0.0;
                    }
                    if (has_pos && has_neg) {
                        split(parts[p], j, bit, pos, neg);
                        next_parts.push_back(pos);
                        next_part_bits.insert(next_part_bits.end(), pb, pb + words_);
                        next_part_bits[next_part_bits.size() - sz(words_) + sz(bit / kWordBits)] |= mask;
                        next_parts.push_back(neg);
                        next_part_bits.insert(next_part_bits.end(), pb, pb + words_);
                    } else {
                        next_parts.push_back(parts[p]);
                        next_part_bits.insert(next_part_bits.end(), pb, pb + words_);
                        if (has_pos)
                            next_part_bits[next_part_bits.size() - sz(words_) + sz(bit / kWordBits)] |= mask;
                    }
                }
                parts.swap(next_parts);
                part_bits.swap(next_part_bits);
            }
            for (auto& part : parts) next_faces.push_back(std::move(part));
            next_bits.insert(next_bits.end(), part_bits.begin(), part_bits.end());
            const Index total = static_cast<Index>(next_faces.size()) +
                                static_cast<Index>(faces_.size() - f - 1);
            if (total > options_.max_regions) {
                throw LimitExceeded("lrcore: the slice has more than max_regions=" +
                                    std::to_string(options_.max_regions) + " regions (" +
                                    std::to_string(total) +
                                    " reached); raise max_regions to allow more");
            }
        }
        faces_.swap(next_faces);
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
                    result.outputs[sz(v * out + j)] = first_map_[sz(j)] +
                                                      st_[sz(2 * v)] * first_map_[sz(out + j)] +
                                                      st_[sz(2 * v + 1)] * first_map_[sz(2 * out + j)];
        } else {
            Index width = width_;
            detail::next_layer_values(net_, net_.num_layers() - 1, n, z_, width, activated_,
                                      scale_.data());
            std::copy(z_.begin(), z_.end(), result.outputs.begin());
        }
        z_ = Buffer<double>();
        activated_ = Buffer<double>();

        result.vertices = st_;
        result.face_offsets.push_back(0);
        const Index bytes = (net_.num_neurons() + 7) / 8;
        result.patterns.resize(sz(static_cast<Index>(faces_.size()) * bytes));
        std::unordered_map<SplitKey, Index, SplitKeyHash> edge_index;
        for (std::size_t f = 0; f < faces_.size(); ++f) {
            const Polygon& face = faces_[f];
            for (std::size_t i = 0; i < face.size(); ++i) {
                const Index p = face[i].vertex;
                const Index q = face[(i + 1) % face.size()].vertex;
                result.face_vertices.push_back(p);
                const SplitKey key{std::min(p, q), std::max(p, q), 0};
                if (edge_index.emplace(key, static_cast<Index>(result.edges.size() / 2)).second) {
                    result.edges.push_back(key.a);
                    result.edges.push_back(key.b);
                    const Index label = face[i].label;
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
            detail::pack_pattern(bits_.data() + f * sz(words_), bytes,
                                 result.patterns.data() + static_cast<Index>(f) * bytes);
        }
        return result;
    }
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
