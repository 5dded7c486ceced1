// The vertices of one tile and the numerics at them (internal): plane coordinates, the
// current layer's values (the first layer composed with the plane), the bound on the
// layer input's norm that the zero tolerance uses, the sign decisions, and the vertices
// created where neurons cross edges. The faces they bound are slice2d_face_builder's.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <vector>

#include "bits.hpp"
#include "certify.hpp"
#include "index.hpp"
#include "interpolation.hpp"
#include "lrcore/network.hpp"
#include "lrcore/slice2d.hpp"
#include "row_store.hpp"
#include "signs.hpp"
#include "slice2d_partition.hpp"
#include "split_map.hpp"

namespace lrcore::detail {

class TileVertices {
public:
    // `filters` (the network's FilterLayer constants) non-null: certified sign decisions
    // (docs/numerics.md §6), every value with a bound on its error; null: the zero
    // tolerance `rtol`.
    TileVertices(const Network& net, double rtol, const std::vector<FilterLayer>* filters)
        : net_(net), rtol_(rtol), filters_(filters) {
        const char* refresh = std::getenv("LRCORE_SLICE_REFRESH");
        refresh_ = refresh == nullptr || *refresh != '0';
    }

    // The corners of a tile of `spec`'s domain (counter-clockwise (s, t) pairs) as the
    // only vertices, with layer 0's values there. sides[i]: the domain side that the
    // tile's side from corner i to i + 1 lies on, or -1 (a cut line s = c).
    void start(const SliceSpec& spec, const std::vector<double>& polygon,
               const std::vector<Index>& sides);

    // Replaces every vertex's values by hidden layer `layer`'s (layer > 0), computed from
    // the previous layer's.
    void next_layer(Index layer);

    // Starts cutting by hidden layer `layer`: values within the zero tolerance become zero
    // at every vertex, and each vertex's sign masks are set. The crossing map is emptied
    // (sized for about `expected_crossings`).
    void start_layer(Index layer, std::size_t expected_crossings);

    // A layer-start edge (p, q): a neuron that crosses it within the plane's resolution of
    // an end passes through that end, whose value becomes zero and leaves the sign masks.
    // Called for every edge once, before any face is cut (so every face sees the same
    // values); counted in merged_crossings().
    void snap_edge_ends(Index p, Index q);

    // The vertex where `neuron` crosses the layer-start edge (key_a, key_b), created once;
    // (p, q) is the side of the asking face that contains it. `line` >= 0: the side lies
    // on the line of neuron `line` of this layer, cut in this face (certified: the
    // crossing is interpolated along that line's chord through the face).
    // `label` is the side's label (slice2d_partition.hpp): the line it lies on, for the
    // slow path (certified).
    Index crossing(Index key_a, Index key_b, Index p, Index q, Index neuron, Index line = -1,
                   Index label = kBoundary);

    // Certified: the face about to be cut, as the vertices of its layer-start polygon
    // (chords of its cut lines are taken between its sides), and its pattern (the bits of
    // the earlier layers: the slow path's forced pattern at its vertices).
    void begin_face(const Index* vertices, Index count, const Word* pattern);

    // Certified: the layer-start vertices with values the filter left undecided
    // (start_layer listed them), each to be decided by the slow path under the pattern of a
    // face whose closure holds it (resolve_pending).
    bool has_pending() const { return !pending_.empty(); }
    // patterns[v]: the pattern of a face with corner v (null: none).
    void resolve_pending(const std::vector<const Word*>& patterns);
    // Certified: the slow path's budget of work (docs/numerics.md §9): at most this many
    // times the tile's float64 work (at least kMinFloatWork); < 0: none.
    void set_max_slow_work(double factor) { max_slow_work_ = factor; }
    // Certified: decisions the slow path took (counted out of uncertified_decisions).
    Index slow_decisions() const { return slow_decisions_; }

    Index size() const { return static_cast<Index>(scale_.size()); }
    // Values per vertex row: the current layer's width.
    Index width() const { return rows_.width(); }
    double value(Index vertex, Index neuron) const { return rows_.row(vertex)[neuron]; }
    // Sign masks of a vertex (words_for(hidden_size(layer)) words): bit j is set in
    // positive (negative) where neuron j's snapped value is > 0 (< 0).
    const Word* positive(Index vertex) const { return positive_.data() + vertex * mask_words_; }
    const Word* negative(Index vertex) const { return negative_.data() + vertex * mask_words_; }
    Index mask_words() const { return mask_words_; }
    // Crossings placed at a vertex because float64 plane coordinates could not tell them
    // apart from it.
    Index merged_crossings() const { return merged_crossings_; }
    // Certified: sign decisions the filter could not make (the value taken as 0, not
    // certified; docs/numerics.md §6). Always 0 with the zero tolerance.
    Index uncertified_decisions() const { return uncertified_; }
    // Certified: values proven exactly 0 by structure (max pooling's ties).
    Index exact_coincidences() const { return exact_coincidences_; }
    bool certified() const { return filters_ != nullptr; }
    // The counts above by vertex: (vertex, uncertified, coincidences, merged, slow) for
    // each step that counted something at a vertex (RawPartition::counted).
    const std::vector<Index>& counted() const { return counted_; }

    // The network's outputs at every vertex (rows of output_dim values, after the last
    // hidden layer has cut the tile). The values are gone afterwards.
    void outputs(std::vector<double>& out);
    // Frees the buffers kept from tile to tile (values, sign masks, the crossing map).
    void release_scratch();
    // Moves (with `release`, exactly sized) or copies the plane coordinates (V × 2) out.
    void take_coordinates(std::vector<double>& to, bool release);
    // Frees what remains (the norms).
    void release();

private:
    const Network& net_;
    double rtol_;
    const std::vector<FilterLayer>* filters_;  // certified decisions when not null
    const SliceSpec* spec_ = nullptr;

    std::vector<double> st_;     // V × 2 plane coordinates
    RowStore rows_;              // V rows: the current layer's pre-activations
    std::vector<double> scale_;  // V: norm of the current layer's input (upper bound)
    Index layer_ = 0;            // the hidden layer being cut
    // Rounding of a plane coordinate: kPlaneUlps ulps of the domain's largest coordinate.
    // A crossing closer than this to a vertex (or to another crossing on the same edge)
    // is placed at it: float64 coordinates could not tell them apart.
    double plane_tol_ = 0.0;
    Index merged_crossings_ = 0;  // crossings placed at a vertex by plane_tol_
    // Certified: V rows of bounds, |z_j - z_j*| <= bound (z* the exact value at the
    // vertex's exact point), and the undecided values taken as 0.
    RowStore bounds_;
    std::vector<double> input_error_;  // V: bound on ||h - h*||_2 of the layer's input
    std::vector<double> error_norm_;   // V: bound on ||z - z*||_2 of the layer's values
    Index uncertified_ = 0;
    Index exact_coincidences_ = 0;
    std::vector<Index> counted_;
    void count_at(Index v, Index uncertified, Index coincidences, Index merged, Index slow = 0) {
        if (uncertified == 0 && coincidences == 0 && merged == 0 && slow == 0) return;
        counted_.insert(counted_.end(), {v, uncertified, coincidences, merged, slow});
    }
    // The slow path (docs/numerics.md §6). Every vertex's exact point is where its two
    // defining lines meet (lines_, two ids a vertex): a neuron's zero line (its global index >=
    // 0) or the line through two exact plane points (-2 - its index in line_points_, 4
    // doubles each: a tile side; kNoLine: unknown, no slow path there).
    static constexpr Index kNoLine = -1;
    struct VertexLines {
        Index a, b;
    };
    std::vector<VertexLines> lines_;
    std::vector<double> line_points_;
    Index side_line(Index a, Index b, Index label) const;
    PlaneLine line_of(Index id);
    ExactPlaneLine exact_line_of(Index id);
    std::unique_ptr<PathOracle> oracle_;
    double max_slow_work_ = 2.0;
    double float_work_ = 0.0;  // the tile's float64 multiply-adds so far
    static constexpr double kMinFloatWork = 0x1p24;
    Index slow_decisions_ = 0;
    const Word* face_pattern_ = nullptr;
    std::vector<Index> pending_;    // (vertex, neuron) pairs undecided at the layer's start
    std::vector<Index> undecided_;  // scratch: one vertex's undecided neurons
    // Decides the listed undecided neurons of vertex v (layer layer_) by the slow path under
    // `pattern`, updating its values, bounds and counts; the neurons' new signs are the
    // signs of their values. Returns how many it decided.
    Index slow_path(Index v, const Word* pattern, const Index* neurons, Index count);
    // The pass's values refresh the vertex's other values (docs/numerics.md §6); a
    // debugging knob (LRCORE_SLICE_REFRESH=0 turns it off) for measurements.
    bool refresh_ = true;
    std::vector<std::uint8_t> listed_;  // scratch of slow_path: the neurons it decides
    StructuralRows structural_rows_;
    std::vector<Index> undecided_rest_;  // scratch of slow_path
    Index stats_start_[3] = {0, 0, 0};   // LRCORE_CERT_STATS: the oracle's counts at the start
    double stats_work_ = 0.0;            // the oracle's work at the tile's start (budget, stats)
    // The budget compares this tile's own work (the oracle's work since the tile's start:
    // the oracle lives as long as the thread's TileVertices, over several tiles).
    bool slow_allowed() const {
        return max_slow_work_ < 0.0 || oracle_->work() - stats_work_ <
                                           max_slow_work_ * std::max(float_work_, kMinFloatWork);
    }
    // Where the layer being cut has rows without bias: per vertex, a bit per input of the
    // layer (the previous layer's values) known to be exactly 0 at the exact point.
    std::vector<Word> off_;
    Index off_words_ = 0;
    StructuralZero structural_;
    std::vector<Word> positive_, negative_;  // V × mask_words_ sign masks
    Index mask_words_ = 0;
    SplitMap splits_;  // (layer-start edge, neuron) -> crossing vertex

    // Layer 0 (or the output, without hidden layers) at plane point (s, t) is
    // c + s * cu + t * cv: the first affine map composed with the plane once.
    std::vector<double> first_map_;  // 3 × out: c, cu, cv
    // <o, o>, <o, u>, <o, v>, <u, u>, <u, v>, <v, v> of the plane's origin and basis.
    double gram_[6] = {0, 0, 0, 0, 0, 0};

    void compose_first_layer();
    void first_layer_bound(double s, double t, double* bound) const;
    void tile_lines(const std::vector<double>& polygon, const std::vector<Index>& sides);

    // Certified interpolation: a point of the current layer with its values, bounds,
    // plane coordinates and input norm.
    struct End {
        const double* z;
        const double* e;
        double s, t, scale;
    };
    End end_of(Index v) const {
        return {rows_.row(v), bounds_.row(v), st_[sz(2 * v)], st_[sz(2 * v + 1)], scale_[sz(v)]};
    }
    // Where `neuron` crosses from a to b (opposite signs): values and bounds to z and e,
    // the rest to `point` (z, e unset there).
    // Undecided neurons are listed in `undecided` if it is set.
    CertifiedCounts interpolate_certified(const End& a, const End& b, Index neuron, double* z,
                                          double* e, End& point,
                                          std::vector<Index>* undecided = nullptr) const;
    // The chord of neuron `line` through the face being cut: where it meets the face's
    // layer-start sides (interpolated once from layer-start vertices), or null.
    struct Chord {
        Index line;
        bool ok;
        End a, b;
    };
    const Chord* chord(Index line);
    std::vector<Index> face_vertices_;
    std::vector<Chord> chords_;
    // Interpolations since the layer's start behind each vertex (0 at layer-start
    // vertices); crossings on cut sides whose ends are kChordDepth deep or more are
    // interpolated along the chord.
    static constexpr std::uint8_t kChordDepth = 3;
    std::vector<std::uint8_t> depth_;
    RowStore chord_z_, chord_e_;
    void certify_layer_start(Index layer, Index neurons);
    void mark_exact_zeros(Index layer);
    // outputs() for a last layer of a few dense rows; false (nothing done) otherwise.
    bool fused_outputs(std::vector<double>& out) const;
    double plane_norm(double s, double t) const;
    double input_norm(double s, double t) const;
    double distance(Index a, Index b) const;
};

inline double TileVertices::distance(Index a, Index b) const {
    const double ds = st_[sz(2 * b)] - st_[sz(2 * a)];
    const double dt = st_[sz(2 * b + 1)] - st_[sz(2 * a + 1)];
    const double square = ds * ds + dt * dt;
    // hypot (slower) where the square leaves the normal range.
    return square >= std::numeric_limits<double>::min() &&
                   square <= std::numeric_limits<double>::max()
               ? std::sqrt(square)
               : std::hypot(ds, dt);
}

inline void TileVertices::snap_edge_ends(Index p, Index q) {
    double* zp = rows_.row(p);
    double* zq = rows_.row(q);
    const Index mask_words = mask_words_;
    Word* pos_p = positive_.data() + p * mask_words;
    Word* neg_p = negative_.data() + p * mask_words;
    Word* pos_q = positive_.data() + q * mask_words;
    Word* neg_q = negative_.data() + q * mask_words;
    double near = -1.0;  // computed at the first crossing
    for (Index k = 0; k < mask_words; ++k) {
        Word both = (pos_p[k] & neg_q[k]) | (neg_p[k] & pos_q[k]);
        while (both != 0) {
            const Index j = k * kWordBits + static_cast<Index>(__builtin_ctzll(both));
            both &= both - 1;
            if (near < 0.0) near = plane_tol_ / distance(p, q);
            const double limit = near * std::abs(zq[j] - zp[j]);
            const Index end = std::abs(zp[j]) <= limit ? p : std::abs(zq[j]) <= limit ? q : -1;
            if (end < 0) continue;
            if (filters_ != nullptr) {  // 0 errs by |z| + bound
                double& e = bounds_.row(end)[j];
                const double size = std::abs((end == p ? zp : zq)[j]);
                e = (size + e) * kSafety;
                error_norm_[sz(end)] += 2.0 * size * kSafety;
            }
            (end == p ? zp : zq)[j] = 0.0;
            const Word keep = ~(Word{1} << (j % kWordBits));
            positive_[sz(end * mask_words + k)] &= keep;
            negative_[sz(end * mask_words + k)] &= keep;
            ++merged_crossings_;
            count_at(end, 0, 0, 1);
        }
    }
}

}  // namespace lrcore::detail
