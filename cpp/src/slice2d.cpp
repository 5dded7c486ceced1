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
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <unordered_map>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

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
constexpr Index kTileLow = -3;   // a side on a tile's left cut line s = c
constexpr Index kTileHigh = -4;  // a side on a tile's right cut line s = c
constexpr Index kRemoved = -5;   // a tile side inside a region, dropped when tiles merge

// One convex piece of a slice's domain: the strip between two cut lines s = c.
struct Tile {
    std::vector<double> polygon;  // (s, t) corners, counter-clockwise
    std::vector<Index> labels;    // label of the side from corner i to corner i + 1
};

// The vertices of one tile on one of its cut lines, ordered along it, with the labels of
// the region edges that meet each; and the tile sides between consecutive ones.
struct CutLine {
    std::vector<Index> vertex;  // ordered by t
    std::vector<double> t;
    std::vector<std::vector<Index>> labels;  // sorted, distinct
    std::vector<Index> side, face;           // of the part between vertex r and r + 1
    bool valid = false;                      // read, and consistent
};

// A partition before edges are indexed: faces as cycles of (vertex, label of the side
// leaving it), with vertex coordinates, outputs and packed pattern bits.
struct RawPartition {
    std::vector<double> st;       // V × 2
    std::vector<double> outputs;  // V × output_dim
    std::vector<Index> face_start{0};
    std::vector<Index> side_vertex, side_label;
    std::vector<Word> bits;              // F × words
    std::vector<std::uint8_t> patterns;  // or F × pattern bytes, packed (bits then empty)
    Index merged = 0;                    // crossings placed at a vertex (plane rounding)
    CutLine low, high;                   // a tile's cut lines (read by the worker)
    Index num_vertices() const { return static_cast<Index>(st.size() / 2); }
    Index num_faces() const { return static_cast<Index>(face_start.size()) - 1; }
};

// Hands memory freed in the middle of malloc's heaps back to the system (glibc keeps it
// otherwise, and a slice frees its tiles' partitions while it builds the merged one).
void release_free_memory() {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

[[noreturn]] void throw_too_many_regions(Index limit, Index reached) {
    throw LimitExceeded("lrcore: the slice has more than max_regions=" + std::to_string(limit) +
                        " regions (" + std::to_string(reached) +
                        " reached); raise max_regions to allow more");
}

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

int sign_of(double value) { return (value > 0.0) - (value < 0.0); }

// Builds the partition of one tile after another (one builder per worker thread). Its
// buffers keep their memory from tile to tile: only the returned partitions are new.
class SliceBuilder {
public:
    SliceBuilder(const Network& net, const Slice2DOptions& options)
        : net_(net), options_(options), words_(words_for(net.num_neurons())) {}

    // The partition of `tile` of the slice `spec`; finished_faces and finished_bytes count
    // the slice's finished tiles (for max_regions and max_memory). With `release`, the
    // builder frees its buffers before it copies the result (its last tile: the memory
    // is not held beside the result).
    RawPartition run(const SliceSpec& spec, const Tile& tile, std::atomic<Index>& finished_faces,
                     std::atomic<Index>& finished_bytes, bool release, const StopFlag& stop) {
        spec_ = &spec;
        tile_ = &tile;
        finished_faces_ = &finished_faces;
        finished_bytes_ = &finished_bytes;
        initial_face();
        const Index num_hidden = net_.num_hidden_layers();
        for (Index layer = 0; layer < num_hidden; ++layer) {
            stop.throw_if_requested();
            if (layer > 0)
                z_.next_layer(net_.layer(layer), net_.activation(layer - 1),
                              net_.neurons(layer - 1), scale_.data());
            cut_faces(layer, stop);
        }
        return collect(release);
    }

private:
    const Network& net_;
    const Slice2DOptions& options_;
    Index words_;
    // The tile being built.
    const SliceSpec* spec_ = nullptr;
    const Tile* tile_ = nullptr;
    std::atomic<Index>* finished_faces_ = nullptr;  // faces of the slice's finished tiles
    std::atomic<Index>* finished_bytes_ = nullptr;  // and the memory their partitions take

    std::vector<double> st_;     // V × 2 plane coordinates
    detail::RowStore z_;         // V rows: the current layer's pre-activations
    std::vector<double> scale_;  // V: norm of the current layer's input (upper bound)
    Index layer_ = 0;            // the hidden layer being cut
    // Rounding of a plane coordinate: kPlaneUlps ulps of the domain's largest coordinate.
    // A crossing closer than this to a vertex (or to another crossing on the same edge)
    // is placed at it: float64 coordinates could not tell them apart.
    double plane_tol_ = 0.0;
    Index merged_ = 0;  // crossings placed at a vertex by plane_tol_

    // Faces in CSR form: face f has sides [face_start_[f], face_start_[f + 1]).
    std::vector<Side> sides_;
    std::vector<Index> face_start_;
    std::vector<Word> bits_;  // F × words_
    SplitMap splits_;

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
        std::copy_n(spec_->origin, d, rows.begin());
        std::copy_n(spec_->basis, 2 * d, rows.begin() + d);
        std::vector<double> values(sz(4 * out));
        map.apply(rows.data(), 4, d, values.data(), out);
        const double* o = spec_->origin;
        const double* u = spec_->basis;
        const double* v = spec_->basis + d;
        std::fill(std::begin(gram_), std::end(gram_), 0.0);
        for (Index k = 0; k < d; ++k) {
            gram_[0] += o[k] * o[k];
            gram_[1] += o[k] * u[k];
            gram_[2] += o[k] * v[k];
            gram_[3] += u[k] * u[k];
            gram_[4] += u[k] * v[k];
            gram_[5] += v[k] * v[k];
        }
        first_map_.assign(sz(3 * out), 0.0);
        for (Index j = 0; j < out; ++j) {
            const double bias = values[sz(3 * out + j)];
            first_map_[sz(j)] = values[sz(j)];
            first_map_[sz(out + j)] = values[sz(out + j)] - bias;
            first_map_[sz(2 * out + j)] = values[sz(2 * out + j)] - bias;
        }
    }

    // <o, o>, <o, u>, <o, v>, <u, u>, <u, v>, <v, v> of the plane's origin and basis.
    double gram_[6] = {0, 0, 0, 0, 0, 0};

    // ||origin + s u + t v||_2 from the Gram matrix, rounded up.
    double plane_norm(double s, double t) const {
        const double* g = gram_;
        const double square = g[0] + 2.0 * s * g[1] + 2.0 * t * g[2] + s * s * g[3] +
                              2.0 * s * t * g[4] + t * t * g[5];
        const double reach =
            std::sqrt(g[0]) + std::abs(s) * std::sqrt(g[3]) + std::abs(t) * std::sqrt(g[5]);
        const double error = static_cast<double>(net_.input_dim() + 8) *
                             std::numeric_limits<double>::epsilon() * reach * reach;
        return std::min(std::sqrt(std::max(square, 0.0) + error), reach);
    }

    double input_norm(double s, double t) const {
        const Index d = net_.input_dim();
        double sum = 0.0;
        for (Index k = 0; k < d; ++k) {
            const double x = spec_->origin[k] + s * spec_->basis[k] + t * spec_->basis[d + k];
            sum += x * x;
        }
        return std::sqrt(sum);
    }

    void initial_face() {
        compose_first_layer();
        double reach = 0.0;
        for (const double c : spec_->domain) reach = std::max(reach, std::abs(c));
        plane_tol_ = kPlaneUlps * std::numeric_limits<double>::epsilon() * reach;
        merged_ = 0;
        layer_ = 0;
        const Index out = net_.layer(0).out_dim();
        z_.reset(out);
        const Index m = static_cast<Index>(tile_->polygon.size() / 2);
        st_ = tile_->polygon;
        scale_.resize(sz(m));
        sides_.clear();
        face_start_.assign(1, 0);
        for (Index v = 0; v < m; ++v) {
            const double s = st_[sz(2 * v)];
            const double t = st_[sz(2 * v + 1)];
            double* row = z_.append();
            for (Index j = 0; j < out; ++j)
                row[j] = first_map_[sz(j)] + s * first_map_[sz(out + j)] +
                         t * first_map_[sz(2 * out + j)];
            scale_[sz(v)] = input_norm(s, t);
            sides_.push_back({v, tile_->labels[sz(v)], 0, 0});
        }
        face_start_.push_back(m);
        bits_.assign(sz(words_), 0);
    }

    double value(Index vertex, Index neuron) const { return z_.row(vertex)[neuron]; }

    double distance(Index a, Index b) const {
        const double ds = st_[sz(2 * b)] - st_[sz(2 * a)];
        const double dt = st_[sz(2 * b + 1)] - st_[sz(2 * a + 1)];
        const double square = ds * ds + dt * dt;
        // hypot (slower) where the square leaves the normal range.
        return square >= std::numeric_limits<double>::min() &&
                       square <= std::numeric_limits<double>::max()
                   ? std::sqrt(square)
                   : std::hypot(ds, dt);
    }

    // A neuron that crosses a layer-start edge within plane_tol_ of an end passes through
    // that end: its value there becomes zero (before any face is cut, so every face sees
    // the same values). Updates the sign masks of the end. An edge between two faces (a
    // neuron's label) is seen from both; it is checked from the face that has it as p < q.
    void snap_near_ends(std::vector<Word>& positive, std::vector<Word>& negative,
                        Index mask_words) {
        for (Index f = 0; f < num_faces(); ++f) {
            const Index first = face_start_[sz(f)];
            const Index last = face_start_[sz(f) + 1];
            for (Index i = first; i < last; ++i) {
                const Index p = sides_[sz(i)].vertex;
                const Index q = sides_[sz(i + 1 < last ? i + 1 : first)].vertex;
                if (sides_[sz(i)].label >= 0 && p > q) continue;
                double* zp = z_.row(p);
                double* zq = z_.row(q);
                Word* pos_p = positive.data() + p * mask_words;
                Word* neg_p = negative.data() + p * mask_words;
                Word* pos_q = positive.data() + q * mask_words;
                Word* neg_q = negative.data() + q * mask_words;
                double near = -1.0;  // computed at the first crossing
                for (Index k = 0; k < mask_words; ++k) {
                    Word both = (pos_p[k] & neg_q[k]) | (neg_p[k] & pos_q[k]);
                    while (both != 0) {
                        const Index j = k * kWordBits + static_cast<Index>(__builtin_ctzll(both));
                        both &= both - 1;
                        if (near < 0.0) near = plane_tol_ / distance(p, q);
                        const double limit = near * std::abs(zq[j] - zp[j]);
                        const Index end = std::abs(zp[j]) <= limit   ? p
                                          : std::abs(zq[j]) <= limit ? q
                                                                     : -1;
                        if (end < 0) continue;
                        (end == p ? zp : zq)[j] = 0.0;
                        const Word keep = ~(Word{1} << (j % kWordBits));
                        positive[sz(end * mask_words + k)] &= keep;
                        negative[sz(end * mask_words + k)] &= keep;
                        ++merged_;
                    }
                }
            }
        }
    }

    // The vertex where `neuron` crosses the layer-start edge (key_a, key_b), created once;
    // (p, q) is the side of the asking face that contains it.
    Index crossing(Index key_a, Index key_b, Index p, Index q, Index neuron) {
        const SplitKey key{key_a, key_b, neuron};
        const Index found = splits_.find(key);
        if (found >= 0) return found;
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
        st_.push_back(st_[sz(2 * a)] + tau * (st_[sz(2 * b)] - st_[sz(2 * a)]));
        st_.push_back(st_[sz(2 * a + 1)] + tau * (st_[sz(2 * b + 1)] - st_[sz(2 * a + 1)]));
        // The norm of the layer's input there: exact in layer 0 (the plane's own Gram
        // matrix), the interpolation of the ends' norms (an upper bound) later.
        const double scale = layer_ == 0 ? plane_norm(st_[st_.size() - 2], st_.back())
                                         : scale_[sz(a)] + tau * (scale_[sz(b)] - scale_[sz(a)]);
        scale_.push_back(scale);
        // One pass over the row. A neuron's interpolated value is zero
        // - within the zero tolerance (the vertex lies on its line too: lines through one
        //   point, which then cut through the vertex instead of leaving slivers beside it);
        // - within rounding of zero (8 ulps of its end values): its sign there is unsure,
        //   and a sign against its own crossing on this edge would cross it twice;
        // - when its zero on this edge is within plane_tol_ of the crossing, whatever the
        //   values' scale: float64 coordinates could not place two points there.
        // The last two place another neuron's crossing at this one below float64's
        // resolution: counted in merged_ (and warned about), unlike the tolerance.
        const detail::InterpolationRule rule{net_.layer(layer_).row_norms().data(),
                                             net_.layer(layer_).abs_bias().data(), options_.rtol,
                                             scale, plane_tol_ / distance(a, b)};
        Index merged = detail::interpolate_row(za, zb, tau, neurons, w, rule, zv);
        double own;  // the neuron itself: zero by construction, never counted
        merged -= rule.classify(za[neuron], zb[neuron], tau, neuron, own) == 2;
        zv[neuron] = 0.0;
        merged_ += merged;
        splits_.insert(key, v);
        return v;
    }

    // Cuts the polygon sides[first, last) along neuron's zero line; appends its positive
    // and its negative part to `out` (each a polygon: the start offsets go to `starts`).
    void split(const std::vector<Side>& sides, Index first, Index last, Index neuron, Index label,
               std::vector<Side>& out, std::vector<Index>& starts) {
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

    // Bytes this tile holds (vertex rows, coordinates, split keys; faces with their
    // sides and patterns) plus the finished tiles of the slice, against max_memory.
    void check_memory(Index faces) const {
        if (options_.max_memory <= 0.0) return;
        const double vertex_bytes = static_cast<double>(z_.width()) * 8.0 + 96.0;
        const double face_bytes = static_cast<double>(words_) * 8.0 + 6.0 * 32.0;
        const double bytes = static_cast<double>(num_vertices()) * vertex_bytes +
                             static_cast<double>(faces) * face_bytes +
                             static_cast<double>(finished_bytes_->load(std::memory_order_relaxed));
        if (bytes > options_.max_memory) {
            throw LimitExceeded("lrcore: the slice would need more than max_memory=" +
                                detail::format_bytes(options_.max_memory) + " (about " +
                                detail::format_bytes(bytes) + " at " + std::to_string(faces) +
                                " regions in this tile so far); raise max_memory, or use more "
                                "tiles or a smaller domain");
        }
    }

    void cut_faces(Index layer, const StopFlag& stop) {
        layer_ = layer;
        const Index offset = net_.neuron_offset(layer);
        const Index w = net_.neurons(layer);  // linear units never cut
        splits_.reset(sz(num_faces()) * 2);
        std::vector<Side>& next_sides = next_sides_;
        std::vector<Index>& next_start = next_start_;
        std::vector<Word>& next_bits = next_bits_;
        next_sides.clear();
        next_start.assign(1, 0);
        next_bits.clear();
        next_sides.reserve(sides_.size() * 2);
        next_start.reserve(face_start_.size() * 2);
        next_bits.reserve(bits_.size() * 2);
        // Sign masks of every layer-start vertex: a face straddles neuron j when its
        // vertices' masks have bit j both in `positive` and in `negative` (written whole
        // by snap_and_sign).
        const Index mask_words = words_for(w);
        std::vector<Word>& positive = positive_;
        std::vector<Word>& negative = negative_;
        positive.resize(sz(num_vertices() * mask_words));
        negative.resize(sz(num_vertices() * mask_words));
        // Values within the zero tolerance become zero first (the vertex lies on that
        // neuron's line: a domain corner on it, lines through one point).
        for (Index v = 0; v < num_vertices(); ++v)
            detail::snap_and_sign(z_.row(v), w, scale_[sz(v)], net_.layer(layer), options_.rtol,
                                  positive.data() + v * mask_words,
                                  negative.data() + v * mask_words);
        snap_near_ends(positive, negative, mask_words);
        std::vector<Word> any_pos(sz(mask_words)), any_neg(sz(mask_words));
        std::vector<Index>& straddling = straddling_;
        std::vector<Index>& part_start = part_start_;
        std::vector<Word>& part_bits = part_bits_;

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
                // Neurons positive on the whole face: their pattern bit is 1 (a word of
                // them at a time, shifted to the layer's offset in the pattern).
                const Word on = any_pos[sz(k)] & ~any_neg[sz(k)];
                if (on != 0) {
                    const Index base = offset + k * kWordBits;
                    const std::size_t word = sz(base / kWordBits);
                    const Index shift = base % kWordBits;
                    part_bits[word] |= on << shift;
                    if (shift != 0 && (on >> (kWordBits - shift)) != 0)
                        part_bits[word + 1] |= on >> (kWordBits - shift);
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
                split(node_sides_, node.side_begin, node.side_end, j, bit, node_sides_, part_start);
                // Two children: the positive part (bit set) and the negative one.
                const Index pos_bits = static_cast<Index>(node_bits_.size());
                node_bits_.insert(node_bits_.end(), node_bits_.begin() + node.bits,
                                  node_bits_.begin() + node.bits + words_);
                node_bits_[sz(pos_bits + bit / kWordBits)] |= Word{1} << (bit % kWordBits);
                nodes_.push_back(
                    {part_start[1], part_start[2], kept_begin + 1, kept_end, node.bits});
                nodes_.push_back(
                    {part_start[0], part_start[1], kept_begin + 1, kept_end, pos_bits});
            }
            // A region meets a tile in one face, so one tile never holds more faces than
            // the slice has regions; across tiles the count is checked loosely here (a
            // region cut by tile lines counts once per tile) and exactly after merging.
            const Index total = static_cast<Index>(next_start.size()) - 1 + (num_faces() - f - 1);
            if ((f & 1023) == 0) check_memory(total);
            if (total > options_.max_regions ||
                total + finished_faces_->load(std::memory_order_relaxed) > 2 * options_.max_regions)
                throw_too_many_regions(options_.max_regions, total);
        }
        sides_.swap(next_sides);
        face_start_.swap(next_start);
        bits_.swap(next_bits);
    }

    // The tile's partition, in exactly sized arrays (every tile's partition waits in
    // memory until the tiles merge). The builder's buffers keep their memory unless
    // `release`: then they are freed first, and the arrays that are the result's move.
    RawPartition collect(bool release) {
        RawPartition raw;
        const Index n = num_vertices();
        const Index out = net_.output_dim();
        raw.outputs.resize(sz(n * out));
        if (net_.num_hidden_layers() == 0) {
            for (Index v = 0; v < n; ++v)
                for (Index j = 0; j < out; ++j)
                    raw.outputs[sz(v * out + j)] = first_map_[sz(j)] +
                                                   st_[sz(2 * v)] * first_map_[sz(out + j)] +
                                                   st_[sz(2 * v + 1)] * first_map_[sz(2 * out + j)];
        } else {
            const Index last = net_.num_layers() - 1;
            z_.evaluate(net_.layer(last), net_.activation(last - 1), net_.neurons(last - 1),
                        raw.outputs.data());
        }
        z_.reset(0);
        if (release) {
            z_.release();
            for (std::vector<Side>* v : {&next_sides_, &pos_, &neg_, &node_sides_})
                std::vector<Side>().swap(*v);
            for (std::vector<Word>* v : {&next_bits_, &positive_, &negative_, &node_bits_})
                std::vector<Word>().swap(*v);
            std::vector<Index>().swap(next_start_);
            splits_.release();
        }
        // Exact sizes, moved or copied.
        auto take = [release](auto& from, auto& to) {
            if (release) {
                from.shrink_to_fit();
                to.swap(from);
            } else {
                to.assign(from.begin(), from.end());
            }
        };
        take(st_, raw.st);
        take(face_start_, raw.face_start);
        take(bits_, raw.bits);
        raw.side_vertex.reserve(sides_.size());
        raw.side_label.reserve(sides_.size());
        for (const Side& side : sides_) {
            raw.side_vertex.push_back(side.vertex);
            raw.side_label.push_back(side.label);
        }
        if (release) {
            std::vector<Side>().swap(sides_);
            std::vector<double>().swap(scale_);
        }
        raw.merged = merged_;
        return raw;
    }

    std::vector<Side> pos_, neg_;  // scratch of split()

    // Scratch of cut_faces(): the next layer's faces, the layer-start vertices' sign
    // masks, the neurons that straddle a face, a split's parts and a part's pattern.
    std::vector<Side> next_sides_;
    std::vector<Index> next_start_;
    std::vector<Word> next_bits_, positive_, negative_;
    std::vector<Index> straddling_, part_start_;
    std::vector<Word> part_bits_;

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

// --- Tiles: the domain cut into strips, computed apart and merged ------------------------

// Where the domain side from corner e to corner e + 1 meets the line s = c. Every tile
// computes a cut line's end points by this one formula, so both sides agree exactly.
double side_crossing(const std::vector<double>& domain, Index e, double c) {
    const Index m = static_cast<Index>(domain.size() / 2);
    const Index b = (e + 1) % m;
    const double sa = domain[sz(2 * e)], ta = domain[sz(2 * e + 1)];
    const double sb = domain[sz(2 * b)], tb = domain[sz(2 * b + 1)];
    return ta + (c - sa) / (sb - sa) * (tb - ta);
}

// A polygon corner with the side leaving it: a domain side's index, or a cut line label.
struct Corner {
    double s, t;
    Index side;
};

// The part of a convex polygon with s >= c (keep_high) or s <= c, the new side labelled.
std::vector<Corner> clip(const std::vector<Corner>& poly, const std::vector<double>& domain,
                         double c, bool keep_high, Index line_label) {
    std::vector<Corner> out;
    const std::size_t n = poly.size();
    for (std::size_t i = 0; i < n; ++i) {
        const Corner& a = poly[i];
        const Corner& b = poly[(i + 1) % n];
        const double fa = keep_high ? a.s - c : c - a.s;
        const double fb = keep_high ? b.s - c : c - b.s;
        if (fa >= 0.0) out.push_back(a);
        // A cut-line side is parallel to the line, so a crossing side is a domain side.
        if ((fa > 0.0 && fb < 0.0) || (fa < 0.0 && fb > 0.0))
            out.push_back({c, side_crossing(domain, a.side, c), fa > 0.0 ? line_label : a.side});
    }
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (out[i].s == c && out[(i + 1) % out.size()].s == c) out[i].side = line_label;
    }
    return out;
}

// The domain cut into strips by the lines s = c for c in `cuts` (increasing, inside the
// domain's range of s), left to right.
std::vector<Tile> make_tiles(const std::vector<double>& domain, const std::vector<double>& cuts) {
    const Index m = static_cast<Index>(domain.size() / 2);
    std::vector<Corner> whole;
    for (Index i = 0; i < m; ++i) whole.push_back({domain[sz(2 * i)], domain[sz(2 * i + 1)], i});
    std::vector<Tile> tiles;
    for (std::size_t k = 0; k <= cuts.size(); ++k) {
        std::vector<Corner> poly = whole;
        if (k > 0) poly = clip(poly, domain, cuts[k - 1], true, kTileLow);
        if (k < cuts.size()) poly = clip(poly, domain, cuts[k], false, kTileHigh);
        Tile tile;
        for (const Corner& corner : poly) {
            tile.polygon.push_back(corner.s);
            tile.polygon.push_back(corner.t);
            tile.labels.push_back(corner.side >= 0 ? kBoundary : corner.side);
        }
        tiles.push_back(std::move(tile));
    }
    return tiles;
}

bool read_cut_line(const RawPartition& tile, Index line_label, CutLine& line) {
    std::unordered_map<Index, Index> slot;
    std::vector<Index> seg_side, seg_face, seg_from, seg_to;
    for (Index f = 0; f < tile.num_faces(); ++f) {
        const Index first = tile.face_start[sz(f)];
        const Index last = tile.face_start[sz(f) + 1];
        for (Index i = first; i < last; ++i) {
            if (tile.side_label[sz(i)] != line_label) continue;
            const Index v = tile.side_vertex[sz(i)];
            const Index w = tile.side_vertex[sz(i + 1 < last ? i + 1 : first)];
            slot.emplace(v, 0);
            slot.emplace(w, 0);
            seg_side.push_back(i);
            seg_face.push_back(f);
            seg_from.push_back(v);
            seg_to.push_back(w);
        }
    }
    std::vector<Index> order;
    for (const auto& entry : slot) order.push_back(entry.first);
    std::sort(order.begin(), order.end(),
              [&](Index a, Index b) { return tile.st[sz(2 * a + 1)] < tile.st[sz(2 * b + 1)]; });
    const Index n = static_cast<Index>(order.size());
    if (n < 2) return false;
    line.vertex = order;
    line.t.resize(sz(n));
    line.labels.assign(sz(n), {});
    for (Index r = 0; r < n; ++r) {
        slot[order[sz(r)]] = r;
        line.t[sz(r)] = tile.st[sz(2 * order[sz(r)] + 1)];
    }
    for (Index f = 0; f < tile.num_faces(); ++f) {
        const Index first = tile.face_start[sz(f)];
        const Index last = tile.face_start[sz(f) + 1];
        for (Index i = first; i < last; ++i) {
            const Index label = tile.side_label[sz(i)];
            if (label != kBoundary && label < 0) continue;
            for (const Index v :
                 {tile.side_vertex[sz(i)], tile.side_vertex[sz(i + 1 < last ? i + 1 : first)]}) {
                const auto found = slot.find(v);
                if (found != slot.end()) line.labels[sz(found->second)].push_back(label);
            }
        }
    }
    for (auto& labels : line.labels) {
        std::sort(labels.begin(), labels.end());
        labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
    }
    line.side.assign(sz(n - 1), -1);
    line.face.assign(sz(n - 1), -1);
    for (std::size_t k = 0; k < seg_side.size(); ++k) {
        const Index a = slot[seg_from[k]], b = slot[seg_to[k]];
        const Index r = std::min(a, b);
        if (std::abs(a - b) != 1 || line.side[sz(r)] != -1) return false;
        line.side[sz(r)] = seg_side[k];
        line.face[sz(r)] = seg_face[k];
    }
    return std::find(line.side.begin(), line.side.end(), -1) == line.side.end();
}

std::atomic<bool> g_fail_stitch{false};  // set_stitch_failure_for_tests

// Merges the partitions of a slice's tiles (left to right) into one. Faces on both sides of
// a cut line with the same pattern are parts of one region and become one face; the
// vertices where region edges cross a cut line are shared, and dropped where one edge runs
// straight through. Returns false when the two sides of a line disagree (rounding in a
// degenerate spot); the caller then computes the slice in one piece.
bool stitch(std::vector<RawPartition>& tiles, const std::vector<double>& domain, Index words,
            Index bytes, Index out_dim, RawPartition& merged) {
    const std::size_t count = tiles.size();
    std::vector<Index> vo(count + 1, 0), fo(count + 1, 0);
    for (std::size_t i = 0; i < count; ++i) {
        vo[i + 1] = vo[i] + tiles[i].num_vertices();
        fo[i + 1] = fo[i] + tiles[i].num_faces();
    }
    if (g_fail_stitch.load(std::memory_order_relaxed)) return false;
    for (const RawPartition& tile : tiles) merged.merged += tile.merged;
    std::vector<Index> rep(sz(vo[count]));
    std::iota(rep.begin(), rep.end(), Index{0});
    std::vector<char> drop(sz(vo[count]), 0);
    std::vector<Index> parent(sz(fo[count]));
    std::iota(parent.begin(), parent.end(), Index{0});
    auto find = [&](Index f) {
        while (parent[sz(f)] != f) {
            parent[sz(f)] = parent[sz(parent[sz(f)])];
            f = parent[sz(f)];
        }
        return f;
    };
    double s_lo = domain[0], s_hi = domain[0], t_lo = domain[1], t_hi = domain[1];
    for (std::size_t i = 0; i < domain.size(); i += 2) {
        s_lo = std::min(s_lo, domain[i]);
        s_hi = std::max(s_hi, domain[i]);
        t_lo = std::min(t_lo, domain[i + 1]);
        t_hi = std::max(t_hi, domain[i + 1]);
    }
    const double tol = 1e-7 * std::hypot(s_hi - s_lo, t_hi - t_lo);
    auto is_domain_corner = [&](double s, double t) {
        for (std::size_t i = 0; i < domain.size(); i += 2)
            if (domain[i] == s && domain[i + 1] == t) return true;
        return false;
    };

    for (std::size_t k = 1; k < count; ++k) {
        RawPartition& left = tiles[k - 1];
        RawPartition& right = tiles[k];
        CutLine& a = left.high;
        const CutLine& b = right.low;
        if (!a.valid || !b.valid) return false;
        const Index n = static_cast<Index>(a.vertex.size());
        if (static_cast<Index>(b.vertex.size()) != n) return false;
        // The r-th points on both sides are one vertex. Their edges agree, except that an
        // edge may end at a vertex on the line from one side only (a zero line through
        // the vertex that stays outside the other side); then one set holds the other.
        for (Index r = 0; r < n; ++r) {
            std::vector<Index>& la = a.labels[sz(r)];
            const std::vector<Index>& lb = b.labels[sz(r)];
            if (std::abs(a.t[sz(r)] - b.t[sz(r)]) > tol ||
                !(std::includes(la.begin(), la.end(), lb.begin(), lb.end()) ||
                  std::includes(lb.begin(), lb.end(), la.begin(), la.end())))
                return false;
            if (lb.size() > la.size()) la = lb;
            rep[sz(vo[k] + b.vertex[sz(r)])] = vo[k - 1] + a.vertex[sz(r)];
        }
        std::vector<char> joined(sz(n - 1), 0);
        for (Index r = 0; r + 1 < n; ++r) {
            const Word* pa = left.bits.data() + a.face[sz(r)] * words;
            const Word* pb = right.bits.data() + b.face[sz(r)] * words;
            Index differs = -1;
            for (Index w = 0; w < words && differs < 0; ++w) {
                const Word x = pa[w] ^ pb[w];
                if (x != 0) differs = w * kWordBits + static_cast<Index>(__builtin_ctzll(x));
            }
            if (differs < 0) {
                const Index fa = find(fo[k - 1] + a.face[sz(r)]);
                const Index fb = find(fo[k] + b.face[sz(r)]);
                parent[sz(std::max(fa, fb))] = std::min(fa, fb);
                joined[sz(r)] = 1;
                differs = kRemoved;
            }
            // Different patterns: the cut line carries a region edge (a zero set on it).
            left.side_label[sz(a.side[sz(r)])] = differs;
            right.side_label[sz(b.side[sz(r)])] = differs;
        }
        for (Index r = 0; r < n; ++r) {
            const std::vector<Index>& labels = a.labels[sz(r)];
            const Index v = a.vertex[sz(r)];
            const bool straight = labels.size() == 1 && (r == 0 || joined[sz(r - 1)]) &&
                                  (r + 1 == n || joined[sz(r)]) &&
                                  !(labels[0] == kBoundary &&
                                    is_domain_corner(left.st[sz(2 * v)], left.st[sz(2 * v + 1)]));
            if (straight) drop[sz(vo[k - 1] + v)] = 1;
        }
    }

    // Vertices: the first copy of each, without the dropped ones.
    std::size_t num_sides = 0;
    for (const RawPartition& tile : tiles) num_sides += tile.side_vertex.size();
    merged.st.reserve(2 * rep.size());
    merged.outputs.reserve(rep.size() * sz(out_dim));
    merged.side_vertex.reserve(num_sides);
    merged.side_label.reserve(num_sides);
    merged.face_start.reserve(sz(fo[count]) + 1);
    merged.patterns.reserve(sz(fo[count] * bytes));
    std::vector<Index> new_id(rep.size(), -1);
    Index kept = 0;
    for (std::size_t i = 0; i < count; ++i) {
        for (Index v = 0; v < tiles[i].num_vertices(); ++v) {
            const Index g = vo[i] + v;
            if (rep[sz(g)] != g || drop[sz(g)]) continue;
            new_id[sz(g)] = kept++;
            merged.st.push_back(tiles[i].st[sz(2 * v)]);
            merged.st.push_back(tiles[i].st[sz(2 * v + 1)]);
            merged.outputs.insert(merged.outputs.end(), tiles[i].outputs.begin() + v * out_dim,
                                  tiles[i].outputs.begin() + (v + 1) * out_dim);
        }
        std::vector<double>().swap(tiles[i].st);
        std::vector<double>().swap(tiles[i].outputs);
    }
    // Faces: each group of joined faces, in the order of its first face, as one cycle.
    const Index nf = fo[count];
    std::vector<Index> group_start(sz(nf) + 1, 0), members(sz(nf));
    for (Index f = 0; f < nf; ++f) ++group_start[sz(find(f)) + 1];
    for (Index f = 0; f < nf; ++f) group_start[sz(f) + 1] += group_start[sz(f)];
    {
        std::vector<Index> fill(group_start.begin(), group_start.end() - 1);
        for (Index f = 0; f < nf; ++f) members[sz(fill[sz(find(f))]++)] = f;
    }
    struct Link {
        Index from, to, label;
    };
    std::vector<Link> links;
    // A corner of the merged face, unless it was dropped.
    auto emit = [&](const Link& link) {
        if (drop[sz(link.from)]) return;
        merged.side_vertex.push_back(new_id[sz(link.from)]);
        merged.side_label.push_back(link.label);
    };
    std::size_t consumed = 0;  // tiles whose faces are all merged
    for (Index root = 0; root < nf; ++root) {
        // A face joins a group whose first face comes no later: once the roots reach a
        // tile, the tiles before it are done with and their memory goes.
        for (; fo[consumed + 1] <= root; ++consumed) {
            tiles[consumed] = RawPartition();
            if (consumed % 8 == 7) release_free_memory();
        }
        if (group_start[sz(root)] == group_start[sz(root) + 1]) continue;
        links.clear();
        bool removed = false;
        for (Index m = group_start[sz(root)]; m < group_start[sz(root) + 1]; ++m) {
            const Index g = members[sz(m)];
            const std::size_t tile_of =
                sz(std::upper_bound(fo.begin(), fo.end(), g) - fo.begin() - 1);
            const RawPartition& tile = tiles[tile_of];
            const Index f = g - fo[tile_of];
            const Index first = tile.face_start[sz(f)];
            const Index last = tile.face_start[sz(f) + 1];
            for (Index i = first; i < last; ++i) {
                const Index label = tile.side_label[sz(i)];
                if (label == kRemoved) {
                    removed = true;
                    continue;
                }
                if (label == kTileLow || label == kTileHigh) return false;
                const Index v = tile.side_vertex[sz(i)];
                const Index w = tile.side_vertex[sz(i + 1 < last ? i + 1 : first)];
                links.push_back({rep[sz(vo[tile_of] + v)], rep[sz(vo[tile_of] + w)], label});
            }
        }
        if (links.empty()) return false;
        const Index face_begin = static_cast<Index>(merged.side_vertex.size());
        if (!removed) {
            // One face, whole: its sides in order.
            for (const Link& link : links) emit(link);
        } else {
            // Parts of one region: chain their sides into one cycle (a convex face leaves
            // each corner once).
            const Link start = links.front();
            std::sort(links.begin(), links.end(),
                      [](const Link& x, const Link& y) { return x.from < y.from; });
            Link current = start;
            for (std::size_t step = 0;; ++step) {
                if (step == links.size()) return false;
                emit(current);
                if (current.to == start.from) {
                    if (step + 1 != links.size()) return false;
                    break;
                }
                const auto next =
                    std::lower_bound(links.begin(), links.end(), current.to,
                                     [](const Link& x, Index v) { return x.from < v; });
                if (next == links.end() || next->from != current.to) return false;
                current = *next;
            }
        }
        if (static_cast<Index>(merged.side_vertex.size()) - face_begin < 3) return false;
        merged.face_start.push_back(static_cast<Index>(merged.side_vertex.size()));
        const Word* bits = tiles[consumed].bits.data() + (root - fo[consumed]) * words;
        merged.patterns.resize(merged.patterns.size() + sz(bytes));
        detail::pack_pattern(bits, bytes,
                             merged.patterns.data() + merged.patterns.size() - sz(bytes));
    }
    return true;
}

// The result arrays of a partition: faces in CSR form, edges indexed once each. The
// partition's arrays move into the result where their layout is the result's.
Slice2DResult assemble(const Network& net, RawPartition&& raw, Index words, Index bytes) {
    Slice2DResult result;
    result.merged = raw.merged;
    const Index num_faces = raw.num_faces();
    result.vertices = std::move(raw.st);
    result.outputs = std::move(raw.outputs);
    if (raw.patterns.empty()) {
        result.patterns.resize(sz(num_faces * bytes));
        for (Index f = 0; f < num_faces; ++f)
            detail::pack_pattern(raw.bits.data() + f * words, bytes,
                                 result.patterns.data() + f * bytes);
    } else {
        result.patterns = std::move(raw.patterns);
    }
    std::vector<Word>().swap(raw.bits);
    // Two sides per interior edge, one per boundary edge: 2 E entries, reserved exactly
    // (doubling would copy them, and the spare capacity would stay with the result).
    const std::size_t edge_entries =
        raw.side_vertex.size() + static_cast<std::size_t>(std::count(
                                     raw.side_label.begin(), raw.side_label.end(), kBoundary));
    result.edges.reserve(edge_entries);
    result.edge_neurons.reserve(edge_entries);
    // Edges are numbered as faces first list them. The sides (p, q) sorted into buckets by
    // min(p, q) (counting sort) find the other side of their edge in a bucket of a few
    // entries next to those of the vertices created near p (a hash table was a cache miss
    // at almost every side of a large slice).
    const Index num_vertices = static_cast<Index>(result.vertices.size() / 2);
    const std::size_t num_sides = raw.side_vertex.size();
    auto side_ends = [&](Index f, Index i, Index& a, Index& b) {
        const Index last = raw.face_start[sz(f) + 1];
        const Index p = raw.side_vertex[sz(i)];
        const Index q = raw.side_vertex[sz(i + 1 < last ? i + 1 : raw.face_start[sz(f)])];
        a = std::min(p, q);
        b = std::max(p, q);
    };
    std::vector<Index> bucket_start(sz(num_vertices) + 1, 0);
    for (Index f = 0; f < num_faces; ++f) {
        for (Index i = raw.face_start[sz(f)]; i < raw.face_start[sz(f) + 1]; ++i) {
            Index a, b;
            side_ends(f, i, a, b);
            ++bucket_start[sz(a) + 1];
        }
    }
    std::partial_sum(bucket_start.begin(), bucket_start.end(), bucket_start.begin());
    struct Entry {
        Index b, edge;  // edge: -1 until numbered
    };
    std::vector<Entry> entries(num_sides);
    {
        std::vector<Index> fill(bucket_start.begin(), bucket_start.end() - 1);
        for (Index f = 0; f < num_faces; ++f) {
            for (Index i = raw.face_start[sz(f)]; i < raw.face_start[sz(f) + 1]; ++i) {
                Index a, b;
                side_ends(f, i, a, b);
                entries[sz(fill[sz(a)]++)] = Entry{b, -1};
            }
        }
    }
    for (Index f = 0; f < num_faces; ++f) {
        for (Index i = raw.face_start[sz(f)]; i < raw.face_start[sz(f) + 1]; ++i) {
            Index a, b;
            side_ends(f, i, a, b);
            // The first entry of (a, b) in its bucket carries the edge's number.
            Entry* entry = entries.data() + bucket_start[sz(a)];
            while (entry->b != b) ++entry;
            if (entry->edge >= 0) continue;
            entry->edge = static_cast<Index>(result.edges.size() / 2);
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
    result.face_offsets = std::move(raw.face_start);
    result.face_vertices = std::move(raw.side_vertex);
    return result;
}

}  // namespace

void set_stitch_failure_for_tests(bool fail) {
    g_fail_stitch.store(fail, std::memory_order_relaxed);
}

std::vector<Slice2DResult> slice_2d(const Network& net, const std::vector<SliceSpec>& slices,
                                    const Slice2DOptions& options, const InterruptPoll& poll) {
    for (const SliceSpec& spec : slices) {
        if (spec.origin == nullptr || spec.basis == nullptr || spec.domain.size() < 6 ||
            spec.domain.size() % 2 != 0)
            throw std::invalid_argument(
                "slice_2d: every slice needs an origin, a basis and a "
                "domain polygon of at least 3 points");
        double lo = spec.domain[0], hi = spec.domain[0];
        for (std::size_t i = 0; i < spec.domain.size(); i += 2) {
            lo = std::min(lo, spec.domain[i]);
            hi = std::max(hi, spec.domain[i]);
        }
        for (std::size_t k = 0; k < spec.cuts.size(); ++k) {
            if (!(spec.cuts[k] > (k == 0 ? lo : spec.cuts[k - 1]) && spec.cuts[k] < hi))
                throw std::invalid_argument(
                    "slice_2d: cut lines must be increasing and inside the domain's range of s");
        }
    }
    if (!(options.rtol >= 0.0) || !std::isfinite(options.rtol))
        throw std::invalid_argument("slice_2d: rtol must be a finite number >= 0");
    const std::size_t n = slices.size();
    const Index words = words_for(net.num_neurons());
    const Index bytes = (net.num_neurons() + 7) / 8;  // of a packed pattern
    std::vector<std::vector<Tile>> tiles(n);
    std::vector<std::vector<RawPartition>> parts(n);
    std::vector<std::pair<std::size_t, std::size_t>> tasks;
    for (std::size_t i = 0; i < n; ++i) {
        tiles[i] = make_tiles(slices[i].domain, slices[i].cuts);
        parts[i].resize(tiles[i].size());
        for (std::size_t k = 0; k < tiles[i].size(); ++k) tasks.emplace_back(i, k);
    }
    std::unique_ptr<std::atomic<Index>[]> finished(new std::atomic<Index>[n]);
    std::unique_ptr<std::atomic<Index>[]> finished_bytes(new std::atomic<Index>[n]);
    for (std::size_t i = 0; i < n; ++i) finished[i] = finished_bytes[i] = 0;
    // One builder per worker thread, reused tile after tile.
    std::vector<std::unique_ptr<SliceBuilder>> builders(
        sz(resolve_num_threads(options.num_threads)));
    // A builder frees its memory after a task in the last round of `count` tasks (it will
    // probably find no other task: the memory would only sit beside the finished
    // partitions).
    auto build = [&](std::size_t i, const Tile& tile, Index worker, Index task, std::size_t count,
                     const StopFlag& stop) {
        const bool last_round =
            task + static_cast<Index>(builders.size()) >= static_cast<Index>(count);
        std::unique_ptr<SliceBuilder>& builder = builders[sz(worker)];
        if (!builder) builder = std::make_unique<SliceBuilder>(net, options);
        RawPartition raw =
            builder->run(slices[i], tile, finished[i], finished_bytes[i], last_round, stop);
        // The tile's cut lines, read here in parallel for the merge.
        const auto has = [&tile](Index label) {
            return std::find(tile.labels.begin(), tile.labels.end(), label) != tile.labels.end();
        };
        if (has(kTileLow)) raw.low.valid = read_cut_line(raw, kTileLow, raw.low);
        if (has(kTileHigh)) raw.high.valid = read_cut_line(raw, kTileHigh, raw.high);
        finished[i].fetch_add(raw.num_faces(), std::memory_order_relaxed);
        const std::size_t held =
            8 * (raw.st.size() + raw.outputs.size() + raw.face_start.size() +
                 raw.side_vertex.size() + raw.side_label.size() + raw.bits.size());
        finished_bytes[i].fetch_add(static_cast<Index>(held), std::memory_order_relaxed);
        return raw;
    };
    parallel_for(
        static_cast<Index>(tasks.size()), options.num_threads,
        [&](Index task, Index worker, const StopFlag& stop) {
            const auto [i, k] = tasks[sz(task)];
            parts[i][k] = build(i, tiles[i][k], worker, task, tasks.size(), stop);
        },
        poll);
    for (std::unique_ptr<SliceBuilder>& builder : builders) builder.reset();
    // The builders' memory goes back to the system before the tiles merge (glibc keeps
    // it in the worker threads' heaps otherwise).
    if (tasks.size() > n) release_free_memory();

    std::vector<Slice2DResult> results(n);
    std::vector<char> whole(n, 0);
    parallel_for(
        static_cast<Index>(n), options.num_threads,
        [&](Index task, Index, const StopFlag& stop) {
            const std::size_t i = sz(task);
            stop.throw_if_requested();
            const bool tiled = parts[i].size() > 1;
            if (!tiled) {
                results[i] = assemble(net, std::move(parts[i][0]), words, bytes);
            } else {
                RawPartition merged;
                if (stitch(parts[i], slices[i].domain, words, bytes, net.output_dim(), merged))
                    results[i] = assemble(net, std::move(merged), words, bytes);
                else
                    whole[i] = 1;
            }
            results[i].tiles = static_cast<Index>(parts[i].size());
            std::vector<RawPartition>().swap(parts[i]);
            // A tiled slice freed its tiles' partitions: hand the memory back. (Trimming
            // after every small slice made the next one fault its pages in again.)
            if (tiled) release_free_memory();
        },
        poll);
    // Where tiles disagreed, the slice in one piece.
    std::vector<std::size_t> redo;
    for (std::size_t i = 0; i < n; ++i)
        if (whole[i]) redo.push_back(i);
    if (!redo.empty()) {
        parallel_for(
            static_cast<Index>(redo.size()), options.num_threads,
            [&](Index task, Index worker, const StopFlag& stop) {
                const std::size_t i = redo[sz(task)];
                finished[i] = finished_bytes[i] = 0;
                const Tile tile = make_tiles(slices[i].domain, {}).front();
                results[i] =
                    assemble(net, build(i, tile, worker, task, redo.size(), stop), words, bytes);
                results[i].tiles = 1;
            },
            poll);
        for (std::unique_ptr<SliceBuilder>& builder : builders) builder.reset();
    }
    for (const Slice2DResult& result : results)
        if (result.num_faces() > options.max_regions)
            throw_too_many_regions(options.max_regions, result.num_faces());
    return results;
}

}  // namespace lrcore
