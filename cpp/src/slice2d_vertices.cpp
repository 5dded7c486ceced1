// Numerics at a tile's vertices: layer values, sign decisions and crossings
// (docs/core-layout.md).
#include "slice2d_vertices.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "interpolation.hpp"
#include "memory.hpp"
#include "signs.hpp"

namespace lrcore::detail {

namespace {

// w . act(z) for one row z of `width` values whose first `neurons` are activated (the
// rest are linear units): a network output at a vertex, without forming act(z).
double activated_dot(const double* z, const double* w, Index width, Index neurons,
                     const Activation& act) {
    double sum = 0.0;
    Index j = 0;
    for (; j < neurons; ++j) sum += w[j] * act(z[j]);
    for (; j < width; ++j) sum += w[j] * z[j];
    return sum;
}

#if defined(LRCORE_AVX2_DISPATCH)
__attribute__((target("avx2,fma"))) double activated_dot_avx2(const double* z, const double* w,
                                                              Index width, Index neurons,
                                                              const Activation& act) {
    const __m256d zero = _mm256_setzero_pd();
    const __m256d slope = _mm256_set1_pd(act.negative_slope);
    const bool relu = act.kind == ActivationKind::relu;
    __m256d acc0 = zero, acc1 = zero;
    Index j = 0;
    for (; j + 8 <= neurons; j += 8) {
        const __m256d x0 = _mm256_loadu_pd(z + j);
        const __m256d x1 = _mm256_loadu_pd(z + j + 4);
        // As Activation::apply_row: x where x > 0, else 0 (or slope * x); NaN gives 0.
        const __m256d up0 = _mm256_cmp_pd(x0, zero, _CMP_GT_OQ);
        const __m256d up1 = _mm256_cmp_pd(x1, zero, _CMP_GT_OQ);
        __m256d h0 = _mm256_and_pd(up0, x0);
        __m256d h1 = _mm256_and_pd(up1, x1);
        if (!relu) {
            h0 = _mm256_or_pd(h0, _mm256_andnot_pd(up0, _mm256_mul_pd(slope, x0)));
            h1 = _mm256_or_pd(h1, _mm256_andnot_pd(up1, _mm256_mul_pd(slope, x1)));
        }
        acc0 = _mm256_fmadd_pd(h0, _mm256_loadu_pd(w + j), acc0);
        acc1 = _mm256_fmadd_pd(h1, _mm256_loadu_pd(w + j + 4), acc1);
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(acc0, acc1));
    double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    for (; j < neurons; ++j) sum += w[j] * act(z[j]);
    for (; j < width; ++j) sum += w[j] * z[j];
    return sum;
}
#endif

// The hidden layer of global neuron g.
Index layer_of(const Network& net, Index g) {
    Index l = 0;
    while (g >= net.neuron_offset(l + 1)) ++l;
    return l;
}

}  // namespace

void TileVertices::compose_first_layer() {
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

// ||origin + s u + t v||_2 from the Gram matrix, rounded up.
double TileVertices::plane_norm(double s, double t) const {
    const double* g = gram_;
    const double square =
        g[0] + 2.0 * s * g[1] + 2.0 * t * g[2] + s * s * g[3] + 2.0 * s * t * g[4] + t * t * g[5];
    const double reach =
        std::sqrt(g[0]) + std::abs(s) * std::sqrt(g[3]) + std::abs(t) * std::sqrt(g[5]);
    const double error = static_cast<double>(net_.input_dim() + 8) *
                         std::numeric_limits<double>::epsilon() * reach * reach;
    return std::min(std::sqrt(std::max(square, 0.0) + error), reach);
}

double TileVertices::input_norm(double s, double t) const {
    const Index d = net_.input_dim();
    double sum = 0.0;
    for (Index k = 0; k < d; ++k) {
        const double x = spec_->origin[k] + s * spec_->basis[k] + t * spec_->basis[d + k];
        sum += x * x;
    }
    return std::sqrt(sum);
}

void TileVertices::start(const SliceSpec& spec, const std::vector<double>& polygon,
                         const std::vector<Index>& sides) {
    spec_ = &spec;
    compose_first_layer();
    double reach = 0.0;
    for (const double c : spec.domain) reach = std::max(reach, std::abs(c));
    plane_tol_ = kPlaneUlps * std::numeric_limits<double>::epsilon() * reach;
    merged_crossings_ = 0;
    layer_ = 0;
    const Index out = net_.layer(0).out_dim();
    rows_.reset(out);
    const Index m = static_cast<Index>(polygon.size() / 2);
    st_ = polygon;
    scale_.resize(sz(m));
    const bool bounded = filters_ != nullptr && net_.num_hidden_layers() > 0;
    uncertified_ = 0;
    exact_coincidences_ = 0;
    counted_.clear();
    off_words_ = 0;
    if (bounded) bounds_.reset(out);
    error_norm_.clear();
    slow_decisions_ = 0;
    float_work_ = 0.0;
    pending_.clear();
    face_pattern_ = nullptr;
    if (oracle_ != nullptr) {
        oracle_->reset();  // a tile's work never depends on the last
        stats_start_[0] = oracle_->evaluations();
        stats_start_[1] = oracle_->layers_computed();
        stats_start_[2] = oracle_->exact_evaluations();
        stats_work_ = oracle_->work();
    }
    lines_.clear();
    line_points_.clear();
    for (Index v = 0; v < m; ++v) {
        const double s = st_[sz(2 * v)];
        const double t = st_[sz(2 * v + 1)];
        double* row = rows_.append();
        for (Index j = 0; j < out; ++j)
            row[j] =
                first_map_[sz(j)] + s * first_map_[sz(out + j)] + t * first_map_[sz(2 * out + j)];
        scale_[sz(v)] = input_norm(s, t);
        if (bounded) first_layer_bound(s, t, bounds_.append());
    }
    if (bounded) tile_lines(polygon, sides);
}

// Certified: the tile's sides as lines of the slow path, and each corner's two defining
// lines (the sides that meet there). A side on the domain's side e is the line through
// the domain's corners e and e + 1; a side on a cut line is s = c (through its two
// corners, both with s = c exactly). A domain corner is exactly where its sides meet; a
// tile corner where a cut line s = c meets a slanted domain side is not: its float64 t
// (slice2d_tiles' side_crossing, ta + (c - sa) / (sb - sa) (tb - ta) with the fraction in
// [0, 1]: five roundings of a term at most |tb - ta|, one of the sum) is within
// dt = 8u (|ta| + |tb - ta|) of the exact meeting point's, so its exact point is taken to
// be that meeting point (as both tiles of the cut line see it) and its layer-0 bounds
// grow by ||W_j|| ||v|| dt (the first layer moves by W (dt v) between the two points).
void TileVertices::tile_lines(const std::vector<double>& polygon, const std::vector<Index>& sides) {
    const Index m = static_cast<Index>(polygon.size() / 2);
    const std::vector<double>& domain = spec_->domain;
    const Index corners = static_cast<Index>(domain.size() / 2);
    for (Index v = 0; v < m; ++v) {
        const Index w = (v + 1) % m;
        const Index e = sz(v) < sides.size() ? sides[sz(v)] : -1;
        if (e >= 0) {
            const Index f = (e + 1) % corners;
            line_points_.insert(line_points_.end(), {domain[sz(2 * e)], domain[sz(2 * e + 1)],
                                                     domain[sz(2 * f)], domain[sz(2 * f + 1)]});
        } else {
            line_points_.insert(line_points_.end(), {polygon[sz(2 * v)], polygon[sz(2 * v + 1)],
                                                     polygon[sz(2 * w)], polygon[sz(2 * w + 1)]});
        }
    }
    const AffineMap& map = net_.layer(0);
    const Index out = map.out_dim();
    const double nv = std::sqrt(gram_[5]) * kSafety *
                      (1.0 + gamma_of(static_cast<double>(net_.input_dim()) + 2.0));
    for (Index v = 0; v < m; ++v) {
        const Index before = (v + m - 1) % m;
        lines_.push_back({-2 - before, -2 - v});
        // On a domain side (one of the two) but not one of its ends: a clipped corner.
        for (const Index side : {before, v}) {
            const double* p = line_points_.data() + 4 * side;
            const double s = polygon[sz(2 * v)], t = polygon[sz(2 * v + 1)];
            const bool domain_side = sz(side) < sides.size() && sides[sz(side)] >= 0;
            if (!domain_side || (s == p[0] && t == p[1]) || (s == p[2] && t == p[3])) continue;
            if (p[1] == p[3] && t == p[1]) continue;  // a horizontal side: t exact
            const double dt =
                8.0 * kUnitRoundoff * (std::abs(p[1]) + std::abs(p[3] - p[1])) * kSafety;
            double* e = bounds_.row(v);
            const double* norms = map.row_norms().data();
            for (Index j = 0; j < out; ++j) e[j] = (e[j] + norms[j] * nv * dt) * kSafety;
        }
    }
}

// The bound on layer 0's values at the domain corner (s, t) (exact float64 numbers: the
// exact point is o + s u + t v), computed as c + s cu + t cv with c = fl(W o + b) and cu,
// cv = fl(fl(W u + b) - b) (compose_first_layer). Row j (fan-in n, ||W_j|| = r_j):
//   |c_j - c_j*| <= gamma_{n+1} (r_j ||o|| + |b_j|),
//   |cu_j - cu_j*| <= gamma_{n+1} (r_j ||u|| + |b_j|) + u |fl(W_j u + b_j) - b_j|
//                  <= gamma_{n+3} (r_j ||u|| + |b_j|)     (the bias row W 0 + b is exact),
// and the three-term sum rounds by at most gamma_3 (|c_j| + |s cu_j| + |t cv_j|):
//   eps_j = gamma_3 (|c_j| + |s| |cu_j| + |t| |cv_j|)
//         + gamma_{n+4} (r_j (||o|| + |s| ||u|| + |t| ||v||) + |b_j| (1 + |s| + |t|)).
// The norms come from the Gram matrix (sums of d squares: relative error gamma_d, halved
// by the square root), rounded up; kSafety covers the bound's own rounding.
void TileVertices::first_layer_bound(double s, double t, double* bound) const {
    const AffineMap& map = net_.layer(0);
    const Index out = map.out_dim();
    const double* norms = map.row_norms().data();
    const double* bias = map.abs_bias().data();
    const double up = kSafety * (1.0 + gamma_of(static_cast<double>(net_.input_dim()) + 2.0));
    const double no = std::sqrt(gram_[0]) * up;
    const double nu = std::sqrt(gram_[3]) * up;
    const double nv = std::sqrt(gram_[5]) * up;
    const double as = std::abs(s), at = std::abs(t);
    const double g3 = gamma_of(3.0) * kSafety;
    const double g = gamma_of(static_cast<double>(map.in_dim()) + 4.0) * kSafety;
    const double reach = (no + as * nu + at * nv) * kSafety;
    const double spread = (1.0 + as + at) * kSafety;
    for (Index j = 0; j < out; ++j) {
        const double rounding =
            g3 * (std::abs(first_map_[sz(j)]) + as * std::abs(first_map_[sz(out + j)]) +
                  at * std::abs(first_map_[sz(2 * out + j)]));
        bound[j] = kSafety * kSafety * (rounding + g * (norms[j] * reach + bias[j] * spread));
    }
}

// Certified: the next layer's input error at every vertex, E = slope * ||z - z*||_2 (the
// activation is slope-Lipschitz componentwise; error_norm_ bounds the l2 error of the
// layer's values), and room for the next layer's bounds (written by start_layer).
void TileVertices::next_layer(Index layer) {
    const Index n = size();
    const bool bounded = filters_ != nullptr;
    if (bounded) {
        float_work_ += static_cast<double>(n) * net_.layer(layer).multiply_adds();
        const double slope = (*filters_)[sz(layer - 1)].slope;
        input_error_.resize(sz(n));
        for (Index v = 0; v < n; ++v) input_error_[sz(v)] = slope * error_norm_[sz(v)] * kSafety;
    }
    if (bounded) mark_exact_zeros(layer);
    rows_.next_layer(net_.layer(layer), net_.activation(layer - 1), net_.hidden_size(layer - 1),
                     scale_.data());
    if (!bounded) return;
    bounds_.reset(net_.layer(layer).out_dim());
    for (Index v = 0; v < n; ++v) bounds_.append();
}

void TileVertices::start_layer(Index layer, std::size_t expected_crossings) {
    layer_ = layer;
    pending_.clear();
    splits_.reset(expected_crossings);
    // Sign masks of every layer-start vertex: a face straddles neuron j when its vertices'
    // masks have bit j both in `positive` and in `negative` (written whole by
    // snap_and_sign).
    const Index neurons = net_.hidden_size(layer);  // linear units never cut
    mask_words_ = words_for(neurons);
    positive_.resize(sz(size() * mask_words_));
    negative_.resize(sz(size() * mask_words_));
    // Values within the zero tolerance become zero first (the vertex lies on that
    // neuron's line: a domain corner on it, lines through one point).
    if (filters_ != nullptr) {
        certify_layer_start(layer, neurons);
        return;
    }
    for (Index v = 0; v < size(); ++v)
        snap_and_sign(rows_.row(v), neurons, scale_[sz(v)], net_.layer(layer), rtol_,
                      positive_.data() + v * mask_words_, negative_.data() + v * mask_words_);
}

// Certified, before layer `layer` is computed: where it has rows without bias, the bits
// of its inputs (the previous layer's values) known to be exactly 0 at each vertex's
// exact point: a ReLU unit whose sign is certified <= 0, any value proven 0 (0 with bound
// 0). StructuralZero reads them. Else off_ stays empty.
void TileVertices::mark_exact_zeros(Index layer) {
    off_words_ = 0;
    const AffineMap& map = net_.layer(layer);
    const Index neurons = net_.hidden_size(layer);
    bool free_rows = false;
    for (Index j = 0; j < neurons && !free_rows; ++j) free_rows = map.abs_bias()[sz(j)] == 0.0;
    if (!free_rows) return;
    const Index width = rows_.width();
    const Index prev_neurons = net_.hidden_size(layer - 1);
    const bool relu = net_.activation(layer - 1).kind == ActivationKind::relu;
    off_words_ = words_for(width);
    const Index n = size();
    off_.assign(sz(n * off_words_), 0);
    for (Index v = 0; v < n; ++v) {
        const double* z = rows_.row(v);
        const double* e = bounds_.row(v);
        Word* off = off_.data() + v * off_words_;
        for (Index i = 0; i < width; ++i) {
            const bool zero = z[i] == 0.0 && e[i] == 0.0;
            const bool below = relu && i < prev_neurons && z[i] < 0.0 && -z[i] > e[i];
            if (zero || below) off[i / kWordBits] |= Word{1} << (i % kWordBits);
        }
    }
}

// Certified decisions at the layer-start vertices, and the l2 bound on each one's row
// error (error_norm_) for the next layer: at layer 0 (domain corners) from the bounds
// start() wrote; later from the filter's (a, b) (VertexBound, docs/numerics.md §3): the
// bounds are written here, the row error is VertexBound::vector_error (an operator-norm
// bound, tighter than the l2 norm of the per-value bounds) plus the l2 norm of the values
// set to 0.
void TileVertices::certify_layer_start(Index layer, Index neurons) {
    const Index n = size();
    depth_.assign(sz(n), 0);
    const Index width = rows_.width();
    error_norm_.resize(sz(n));
    const AffineMap& map = net_.layer(layer);
    if (layer == 0) {
        const double up = kSafety * kSafety * (1.0 + gamma_of(static_cast<double>(width) + 2.0));
        for (Index v = 0; v < n; ++v) {
            double* e = bounds_.row(v);
            const CertifyRow c{map.row_norms().data(), map.abs_bias().data(), 0.0,     0.0,
                               kFallbackRtol,          scale_[sz(v)],         nullptr, &undecided_};
            undecided_.clear();
            double zeroed = 0.0;
            const Index exact_before = exact_coincidences_;
            const Index undecided =
                certify_and_sign(rows_.row(v), e, neurons, c, positive_.data() + v * mask_words_,
                                 negative_.data() + v * mask_words_, zeroed, exact_coincidences_);
            uncertified_ += undecided;
            count_at(v, undecided, exact_coincidences_ - exact_before, 0);
            for (const Index k : undecided_) pending_.insert(pending_.end(), {v, k});
            double square = 0.0;
            for (Index j = 0; j < width; ++j) square += e[j] * e[j];
            error_norm_[sz(v)] = std::sqrt(square) * up;
        }
        return;
    }
    const FilterLayer& f = (*filters_)[sz(layer)];
    for (Index v = 0; v < n; ++v) {
        const double s = scale_[sz(v)];
        const double input_error = input_error_[sz(v)];
        const VertexBound bound = VertexBound::at(f, s, input_error);
        structural_.map = &map;
        structural_.off = off_.data() + v * off_words_;
        const CertifyRow c{map.row_norms().data(),
                           map.abs_bias().data(),
                           bound.a,
                           bound.b,
                           kFallbackRtol,
                           s,
                           off_words_ > 0 ? &structural_ : nullptr,
                           &undecided_};
        undecided_.clear();
        double zeroed = 0.0;
        const Index exact_before = exact_coincidences_;
        const Index undecided = certify_row(
            rows_.row(v), bounds_.row(v), neurons, width, c, positive_.data() + v * mask_words_,
            negative_.data() + v * mask_words_, zeroed, exact_coincidences_);
        uncertified_ += undecided;
        count_at(v, undecided, exact_coincidences_ - exact_before, 0);
        for (const Index k : undecided_) pending_.insert(pending_.end(), {v, k});
        error_norm_[sz(v)] = VertexBound::vector_error(f, s, input_error) +
                             (zeroed > 0.0 ? std::sqrt(zeroed) * 2.0 * kSafety : 0.0);
    }
}

Index TileVertices::crossing(Index key_a, Index key_b, Index p, Index q, Index neuron, Index line,
                             Index label) {
    const SplitKey key{key_a, key_b, neuron};
    const Index found = splits_.find(key);
    if (found >= 0) return found;
    const Index w = rows_.width();
    const Index neurons = net_.hidden_size(layer_);
    Index a = key_a, b = key_b;
    // Rounding can leave the edge's end values on one side although the side's own
    // values differ in sign; then the side's end points give the crossing.
    if (!(value(a, neuron) * value(b, neuron) < 0.0)) {
        a = p;
        b = q;
    }
    const Index v = size();
    if (filters_ != nullptr) {
        // Certified. On a side cut in this face, its ends are crossings interpolated from
        // other crossings, whose bounds compound along such chains; the line's chord
        // through the face has ends interpolated once from layer-start vertices, and the
        // layer is affine on the face, so the crossing is interpolated along the chord
        // (the exact crossing is the same point: both lie on the line, and the neuron has
        // one root on it).
        End from = end_of(a), to = end_of(b);
        // Only where the chain is long (the chord costs two interpolations per line and
        // face): a vertex's depth counts interpolations since the layer's start.
        const std::uint8_t depth = std::max(depth_[sz(a)], depth_[sz(b)]);
        std::uint8_t new_depth = depth == 255 ? depth : static_cast<std::uint8_t>(depth + 1);
        if (line >= 0 && depth >= kChordDepth) {
            const Chord* c = chord(line);
            if (c != nullptr && c->a.z[neuron] * c->b.z[neuron] < 0.0) {
                from = c->a;
                to = c->b;
                new_depth = 2;  // chord ends are one interpolation deep
            }
        }
        double* zv = rows_.append();  // other rows do not move
        double* ev = bounds_.append();
        End point{};
        undecided_.clear();
        const CertifiedCounts counts =
            interpolate_certified(from, to, neuron, zv, ev, point, &undecided_);
        // Its exact point: where the side's line meets the crossing neuron's.
        lines_.push_back({side_line(key_a, key_b, label), net_.neuron_offset(layer_) + neuron});
        st_.push_back(point.s);
        st_.push_back(point.t);
        scale_.push_back(point.scale);
        depth_.push_back(new_depth);
        // The l2 error of the new row: at most the l2 norm of its per-value bounds.
        error_norm_.push_back(counts.error_norm);
        merged_crossings_ += counts.merged;
        uncertified_ += counts.uncertified;
        count_at(v, counts.uncertified, 0, counts.merged);
        splits_.insert(key, v);
        if (!undecided_.empty() && face_pattern_ != nullptr &&
            slow_path(v, face_pattern_, undecided_.data(), static_cast<Index>(undecided_.size())) >
                0) {
            // A value the slow path decided whose zero on the edge lies within the plane's
            // resolution of the new vertex is placed there, as a decided one is
            // (CertifiedStep::classify): float64 coordinates could not tell them apart.
            const double near = plane_tol_ / std::hypot(to.s - from.s, to.t - from.t);
            double* z = rows_.row(v);
            double* e = bounds_.row(v);
            Index merged = 0;
            double moved = 0.0;
            for (const Index k : undecided_) {
                if (z[k] == 0.0 || !(std::abs(z[k]) <= near * std::abs(to.z[k] - from.z[k])))
                    continue;
                moved += z[k] * z[k];
                e[k] = (std::abs(z[k]) + e[k]) * kSafety;
                z[k] = 0.0;
                ++merged;
            }
            merged_crossings_ += merged;
            count_at(v, 0, 0, merged);
            error_norm_[sz(v)] += std::sqrt(moved) * kSafety * kSafety;
        }
        return v;
    }
    double* zv = rows_.append();  // other rows do not move
    const double* za = rows_.row(a);
    const double* zb = rows_.row(b);
    const double tau = za[neuron] / (za[neuron] - zb[neuron]);  // in [0, 1]
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
    // resolution: counted in merged_crossings_ (and warned about), unlike the tolerance.
    const InterpolationRule rule{net_.layer(layer_).row_norms().data(),
                                 net_.layer(layer_).abs_bias().data(), rtol_, scale,
                                 plane_tol_ / distance(a, b)};
    Index merged_crossings = interpolate_row(za, zb, tau, neurons, w, rule, zv);
    double own;  // the neuron itself: zero by construction, never counted
    merged_crossings -= rule.classify(za[neuron], zb[neuron], tau, neuron, own) == 2;
    zv[neuron] = 0.0;
    merged_crossings_ += merged_crossings;
    count_at(v, 0, 0, merged_crossings);
    splits_.insert(key, v);
    return v;
}

// Certified interpolation from a to b where `neuron` crosses (docs/numerics.md §6): the
// exact fraction tau* lies in [lo, hi] (crossing_interval), so |tau - tau*| <= max(hi -
// tau, tau - lo) wherever tau is.
CertifiedCounts TileVertices::interpolate_certified(const TileVertices::End& a,
                                                    const TileVertices::End& b, Index neuron,
                                                    double* z, double* e, End& point,
                                                    std::vector<Index>* undecided) const {
    const double tau = a.z[neuron] / (a.z[neuron] - b.z[neuron]);  // in [0, 1]
    point.s = a.s + tau * (b.s - a.s);
    point.t = a.t + tau * (b.t - a.t);
    // The norm of the layer's input there: exact in layer 0 (the plane's own Gram
    // matrix), the interpolation of the ends' norms (an upper bound) later.
    point.scale = layer_ == 0 ? plane_norm(point.s, point.t) : a.scale + tau * (b.scale - a.scale);
    double lo = 0.0, hi = 1.0;
    crossing_interval(a.z[neuron], b.z[neuron], a.e[neuron], b.e[neuron], lo, hi);
    const double dtau = std::max(hi - tau, tau - lo);
    const double ds = b.s - a.s, dt = b.t - a.t;
    const double square = ds * ds + dt * dt;
    const double length =
        square >= std::numeric_limits<double>::min() && square <= std::numeric_limits<double>::max()
            ? std::sqrt(square)
            : std::hypot(ds, dt);
    const double near = plane_tol_ / length;
    const AffineMap& map = net_.layer(layer_);
    const CertifiedStep step{tau,
                             1.0 - tau,
                             dtau,
                             near,
                             InterpolationRule{map.row_norms().data(), map.abs_bias().data(),
                                               kFallbackRtol, point.scale, near},
                             undecided};
    return interpolate_row_certified(a.z, b.z, a.e, b.e, step, net_.hidden_size(layer_),
                                     rows_.width(), neuron, z, e);
}

void TileVertices::begin_face(const Index* vertices, Index count, const Word* pattern) {
    face_vertices_.assign(vertices, vertices + count);
    face_pattern_ = pattern;
    chords_.clear();
    chord_z_.reset(rows_.width());
    chord_e_.reset(rows_.width());
}

// Neuron `line`'s chord through the face being cut: its two points on the face's
// layer-start polygon (a vertex where it is 0, or its crossing of a side, interpolated
// from the side's layer-start vertices), computed once per face and line. Null where it
// does not meet the polygon in two points (by the float64 values).
const TileVertices::Chord* TileVertices::chord(Index line) {
    for (const Chord& c : chords_)
        if (c.line == line) return c.ok ? &c : nullptr;
    Chord c{line, false, {}, {}};
    End ends[2];
    Index found = 0;
    const Index m = static_cast<Index>(face_vertices_.size());
    for (Index i = 0; i < m && found < 2; ++i) {
        const Index u = face_vertices_[sz(i)];
        const Index w = face_vertices_[sz((i + 1) % m)];
        const double zu = value(u, line), zw = value(w, line);
        if (zu == 0.0) {
            ends[found++] = end_of(u);
        } else if (zu * zw < 0.0) {
            double* z = chord_z_.append();
            double* e = chord_e_.append();
            End point{};
            interpolate_certified(end_of(u), end_of(w), line, z, e, point);  // not counted
            point.z = z;
            point.e = e;
            ends[found++] = point;
        }
    }
    if (found == 2) {
        c.ok = true;
        c.a = ends[0];
        c.b = ends[1];
    }
    chords_.push_back(c);
    return c.ok ? &chords_.back() : nullptr;
}

// The line that the layer-start edge (a, b) lies on: the neuron of its label, else (a
// tile side) the tile side that both ends lie on.
Index TileVertices::side_line(Index a, Index b, Index label) const {
    if (label >= 0) return label;
    const VertexLines& la = lines_[sz(a)];
    const VertexLines& lb = lines_[sz(b)];
    for (const Index id : {la.a, la.b})
        if (id <= -2 && (lb.a == id || lb.b == id)) return id;
    return kNoLine;
}

// Line `id` as coefficients of the plane coordinates: a neuron's from the oracle's last
// plane pass (its layer at most layer_), a tile side's from its two points.
PlaneLine TileVertices::line_of(Index id) {
    const double* p = line_points_.data() + 4 * std::max(Index{0}, -2 - id);
    if (id <= -2) return plane_line_through(p[0], p[1], p[2], p[3]);
    const Index l = layer_of(net_, id);
    return oracle_->plane_line(l, id - net_.neuron_offset(l));
}

ExactPlaneLine TileVertices::exact_line_of(Index id) {
    const double* p = line_points_.data() + 4 * std::max(Index{0}, -2 - id);
    if (id <= -2) return plane_line_exact_through(p[0], p[1], p[2], p[3]);
    const Index l = layer_of(net_, id);
    return oracle_->plane_line_exact(l, id - net_.neuron_offset(l));
}

// The slow path at vertex v (docs/numerics.md §6). On the closure of a face with pattern
// `pattern` (the bits of layers < layer_), every neuron of layers <= layer_ is an affine
// function c + s u + t v of the plane coordinates (the passes of PathOracle::plane_pass);
// v's exact point is where its two defining lines meet (each a zero line of a neuron of a
// layer <= layer_, whose pattern is a prefix of `pattern`, or a tile side), so neuron k's
// sign there is that of the ratio of two determinants (sign_at_intersection): in
// double-double with a rigorous bound, else exactly. A decided value is replaced by the
// pass's estimate (within its bound of the exact one), or, decided exactly, by half the
// largest value of that sign its old bound allows (both it and the exact value lie between
// 0 and |z| + e on the decided side); an exact zero becomes 0 with bound 0, an exact
// coincidence. The other values of the row are refreshed: the pass's estimate replaces a
// value where its bound is smaller and (for a neuron) decides its sign, which is then the
// certified one. The row's l2 error is the smaller of the old one plus the l2 norm of the
// changes and the l2 norm of the new bounds.
Index TileVertices::slow_path(Index v, const Word* pattern, const Index* neurons, Index count) {
    if (count == 0) return 0;
    // Exact zeros by structure under the face's pattern first (no pass, outside the
    // budget): a row without bias reading only units the pattern turns off (max pooling's
    // ties between ReLU outputs that are both off), whose float64 value is 0.
    Index structural = 0;
    double* zs = rows_.row(v);
    double* es = bounds_.row(v);
    undecided_rest_.clear();
    for (Index i = 0; i < count; ++i) {
        const Index k = neurons[i];
        if (zs[k] == 0.0 && layer_ > 0 &&
            structural_zero_row(net_, pattern, layer_, k, structural_rows_)) {
            es[k] = 0.0;  // (the value stays 0: the row's l2 error stands)
            ++structural;
        } else {
            undecided_rest_.push_back(k);
        }
    }
    if (structural > 0) {
        uncertified_ -= structural;
        exact_coincidences_ += structural;
        count_at(v, -structural, structural, 0);
    }
    neurons = undecided_rest_.data();
    count = static_cast<Index>(undecided_rest_.size());
    if (count == 0) return structural;
    const Index la = lines_[sz(v)].a, lb = lines_[sz(v)].b;
    if (la == kNoLine || lb == kNoLine) return structural;
    if (oracle_ == nullptr) {
        oracle_ = std::make_unique<PathOracle>(net_);
        std::fill(std::begin(stats_start_), std::end(stats_start_), 0);
        stats_work_ = 0.0;
    }
    if (!slow_allowed()) return structural;
    oracle_->plane_pass(spec_->origin, spec_->basis, pattern, layer_);
    const PlaneLine a = line_of(la), b = line_of(lb);
    double* z = rows_.row(v);
    double* e = bounds_.row(v);
    const Index width = rows_.width();
    const Index cut = net_.hidden_size(layer_);
    double moved = 0.0, square = 0.0;
    Index decided = 0, coincidences = 0;
    bool exact_ready = false, exact_failed = false;
    ExactPlaneLine exact_a, exact_b;
    listed_.assign(sz(width), 0);
    for (Index i = 0; i < count; ++i) listed_[sz(neurons[i])] = 1;
    auto set = [&](Index k, double nz, double ne) {
        moved += (nz - z[k]) * (nz - z[k]);
        z[k] = nz;
        e[k] = ne;
    };
    for (Index k = 0; k < width; ++k) {
        if (listed_[sz(k)] == 0 && (!refresh_ || (z[k] == 0.0 && e[k] == 0.0))) {
            square += e[k] * e[k];
            continue;
        }
        double err = -1.0;
        SlowDecision d = sign_at_intersection(a, b, oracle_->plane_line(layer_, k), &err);
        const bool estimate = err >= 0.0 && std::abs(d.value) > err;  // decides its sign
        if (listed_[sz(k)] == 0) {                                    // refresh
            if (err >= 0.0 && err < e[k] &&
                (k >= cut || (estimate && (d.value > 0.0) == (z[k] > 0.0) && z[k] != 0.0)))
                set(k, d.value, err);
            square += e[k] * e[k];
            continue;
        }
        const double reach = std::abs(z[k]) + e[k];  // >= |z*_k|
        if (d.decided && estimate && (d.value > 0.0) == (d.sign > 0)) {
            set(k, d.value, err);
        } else if (d.decided) {
            set(k, d.sign * 0.5 * reach, 0.5 * reach * kSafety);
        } else {
            if (!exact_failed && !exact_ready) {
                const double allowance = max_slow_work_ * std::max(float_work_, kMinFloatWork) -
                                         (oracle_->work() - stats_work_);
                oracle_->set_exact_limit(max_slow_work_ < 0.0 ? -1.0 : std::max(0.0, allowance));
                exact_failed = !slow_allowed() || !oracle_->plane_pass_exact(
                                                      spec_->origin, spec_->basis, pattern, layer_);
                if (!exact_failed) {
                    exact_a = exact_line_of(la);
                    exact_b = exact_line_of(lb);
                    exact_ready = true;
                }
            }
            bool ok = oracle_->plane_exact_ok();
            if (exact_ready)
                d = sign_at_intersection_exact(exact_a, exact_b,
                                               oracle_->plane_line_exact(layer_, k), ok);
            if (!exact_ready || !d.decided) {  // parallel lines (no point), an underflow
                square += e[k] * e[k];
                continue;
            }
            if (d.sign == 0) {
                ++coincidences;
                set(k, 0.0, 0.0);
            } else {
                set(k, d.sign * 0.5 * reach, 0.5 * reach * kSafety);
            }
        }
        square += e[k] * e[k];
        ++decided;
    }
    const double l2 = std::sqrt(square) * kSafety * (1.0 + gamma_of(static_cast<double>(width)));
    error_norm_[sz(v)] = std::min(error_norm_[sz(v)] + std::sqrt(moved) * kSafety * kSafety, l2);
    if (decided == 0) return structural;
    uncertified_ -= decided;
    slow_decisions_ += decided;
    exact_coincidences_ += coincidences;
    count_at(v, -decided, coincidences, 0, decided);
    return decided + structural;
}

void TileVertices::resolve_pending(const std::vector<const Word*>& patterns) {
    const std::size_t n = pending_.size();
    for (std::size_t i = 0; i < n;) {
        const Index v = pending_[i];
        undecided_.clear();
        for (; i < n && pending_[i] == v; i += 2) undecided_.push_back(pending_[i + 1]);
        const Word* pattern = patterns[sz(v)];
        if (pattern == nullptr) continue;
        if (slow_path(v, pattern, undecided_.data(), static_cast<Index>(undecided_.size())) == 0)
            continue;
        const double* z = rows_.row(v);
        Word* pos = positive_.data() + v * mask_words_;
        Word* neg = negative_.data() + v * mask_words_;
        for (const Index k : undecided_) {
            const Word bit = Word{1} << (k % kWordBits);
            pos[k / kWordBits] = (pos[k / kWordBits] & ~bit) | (z[k] > 0.0 ? bit : 0);
            neg[k / kWordBits] = (neg[k / kWordBits] & ~bit) | (z[k] < 0.0 ? bit : 0);
        }
    }
    pending_.clear();
}

void TileVertices::outputs(std::vector<double>& out) {
    if (oracle_ != nullptr && std::getenv("LRCORE_CERT_STATS") != nullptr) {
        // A debugging aid (docs/numerics.md §9): the tile's slow-path counts on stderr.
        std::fprintf(stderr,
                     "lrcore cert stats (tile): passes %lld layers %lld dd_work %.4g float_work "
                     "%.4g slow %lld uncertified %lld exact %lld\n",
                     static_cast<long long>(oracle_->evaluations() - stats_start_[0]),
                     static_cast<long long>(oracle_->layers_computed() - stats_start_[1]),
                     oracle_->work() - stats_work_, float_work_,
                     static_cast<long long>(slow_decisions_), static_cast<long long>(uncertified_),
                     static_cast<long long>(oracle_->exact_evaluations() - stats_start_[2]));
    }
    const Index n = size();
    const Index out_dim = net_.output_dim();
    out.resize(sz(n * out_dim));
    if (net_.num_hidden_layers() == 0) {
        for (Index v = 0; v < n; ++v)
            for (Index j = 0; j < out_dim; ++j)
                out[sz(v * out_dim + j)] = first_map_[sz(j)] +
                                           st_[sz(2 * v)] * first_map_[sz(out_dim + j)] +
                                           st_[sz(2 * v + 1)] * first_map_[sz(2 * out_dim + j)];
    } else if (!fused_outputs(out)) {
        const Index last = net_.num_layers() - 1;
        rows_.evaluate(net_.layer(last), net_.activation(last - 1), net_.hidden_size(last - 1),
                       out.data());
    }
    rows_.reset(0);
    bounds_.reset(0);
}

// A last layer of a few dense rows (a scalar output: most slices) is applied row by row,
// each output a dot product with the activated values formed on the fly: no activated
// copy of the rows, no norms, no matrix product of a handful of columns.
bool TileVertices::fused_outputs(std::vector<double>& out) const {
    constexpr Index kMaxFusedOutputs = 4;
    const Index last = net_.num_layers() - 1;
    const AffineMap& map = net_.layer(last);
    const Index out_dim = map.out_dim();
    const Index width = rows_.width();
    if (out_dim > kMaxFusedOutputs || map.in_dim() != width) return false;
    std::vector<double> scratch_values;
    std::vector<Index> scratch_cols;
    AffineRow rows[kMaxFusedOutputs];
    for (Index r = 0; r < out_dim; ++r) {
        rows[r] = map.row(r, scratch_values, scratch_cols);
        // Dense rows only (a sparse map's rows live in the scratch vectors).
        if (rows[r].cols != nullptr || rows[r].count != width) return false;
    }
    const Activation& act = net_.activation(last - 1);
    const Index neurons = net_.hidden_size(last - 1);
    auto dot = activated_dot;
#if defined(LRCORE_AVX2_DISPATCH)
    if (cpu_has_avx2()) dot = activated_dot_avx2;
#endif
    const Index n = size();
    for (Index v = 0; v < n; ++v) {
        const double* z = rows_.row(v);
        for (Index r = 0; r < out_dim; ++r)
            out[sz(v * out_dim + r)] = rows[r].bias + dot(z, rows[r].values, width, neurons, act);
    }
    return true;
}

void TileVertices::release_scratch() {
    rows_.release();
    bounds_.release();
    chord_z_.release();
    chord_e_.release();
    std::vector<double>().swap(input_error_);
    std::vector<double>().swap(error_norm_);
    std::vector<std::uint8_t>().swap(depth_);
    std::vector<Word>().swap(off_);
    std::vector<Word>().swap(positive_);
    std::vector<Word>().swap(negative_);
    std::vector<VertexLines>().swap(lines_);
    if (oracle_ != nullptr) oracle_->reset();  // its cached passes
    std::vector<Index>().swap(pending_);
    splits_.release();
}

void TileVertices::take_coordinates(std::vector<double>& to, bool release) {
    take_exact(st_, to, release);
}

void TileVertices::release() { std::vector<double>().swap(scale_); }

}  // namespace lrcore::detail
