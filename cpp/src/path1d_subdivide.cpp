// Subdivision by evaluation along polylines (docs/design.md, docs/core-layout.md).
//
// A work unit is a list of vertices along one or more polyline pieces. Consecutive vertices
// v, v+1 with link[v] set bound an interval on which every hidden layer processed so far
// has a constant sign pattern, so the next layer's pre-activations are affine on it: they
// are computed at all vertices by one dense product, every sign change between the two
// ends of an interval is a crossing found by linear interpolation, and the interval is cut
// there. After the last hidden layer, each interval carries its full pattern; breakpoints
// are the vertices whose two intervals' patterns differ.
#include "path1d_subdivide.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "bits.hpp"
#include "interval_signs.hpp"
#include "lrcore/errors.hpp"
#include "row_ops.hpp"
#include "signs.hpp"

namespace lrcore::detail {

Subdivider::Subdivider(const Network& net, const std::vector<PathSpec>& paths,
                       const Path1DOptions& options, std::atomic<Index>& created,
                       std::vector<std::atomic<Index>>& vertices_per_layer,
                       std::vector<std::atomic<Index>>& counters)
    : net_(net),
      paths_(paths),
      options_(options),
      created_(created),
      vertices_per_layer_(vertices_per_layer),
      counters_(counters),
      words_(words_for(net.num_neurons())),
      filter_(options.certified ? filter_layers(net) : std::vector<FilterLayer>()),
      oracle_(net) {
    // The largest row norm and |bias| of each layer's neurons (count_undecided_signs);
    // NaN if any is (then the filter's full test runs).
    auto largest = [](const std::vector<double>& x, Index count) {
        double m = 0.0;
        for (Index j = 0; j < count; ++j) m = x[sz(j)] > m || std::isnan(x[sz(j)]) ? x[sz(j)] : m;
        return m;
    };
    for (Index l = 0; l < net.num_hidden_layers() && options.certified; ++l) {
        max_norm_.push_back(largest(net.layer(l).row_norms(), net.hidden_size(l)));
        max_bias_.push_back(largest(net.layer(l).abs_bias(), net.hidden_size(l)));
    }
}

VertexSeq Subdivider::run(const std::vector<Chunk>& chunks, const StopFlag& stop,
                          const double* first_rows) {
    VertexSeq out;
    out.words = words_;
    slow_used_ = 0;
    uncertified_used_ = 0;
    float_work_ = 0.0;
    oracle_.reset();  // a pass's cost must not depend on the thread's earlier tasks
    slow_work_start_ = oracle_.work();
    const Index passes_start = oracle_.evaluations();
    const Index layers_start = oracle_.layers_computed();
    const Index exact_start = oracle_.exact_evaluations();
    Unit unit = initial_unit(chunks);
    evaluate_first_layer(unit, first_rows);
    process(std::move(unit), 0, out, stop);
    if (options_.certified && std::getenv("LRCORE_CERT_STATS") != nullptr) {
        // A debugging aid (docs/numerics.md §9): the task's slow-path counts on stderr.
        std::fprintf(stderr,
                     "lrcore cert stats: passes %lld layers %lld dd_work %.4g float_work %.4g "
                     "slow %lld uncertified %lld exact %lld\n",
                     static_cast<long long>(oracle_.evaluations() - passes_start),
                     static_cast<long long>(oracle_.layers_computed() - layers_start),
                     oracle_.work() - slow_work_start_, float_work_,
                     static_cast<long long>(slow_used_), static_cast<long long>(uncertified_used_),
                     static_cast<long long>(oracle_.exact_evaluations() - exact_start));
    }
    return out;
}

Unit Subdivider::initial_unit(const std::vector<Chunk>& chunks) const {
    Unit unit;
    for (const Chunk& chunk : chunks) {
        for (Index s = chunk.seg_begin; s < chunk.seg_end; ++s) {
            unit.path.push_back(chunk.path);
            unit.seg.push_back(s);
            unit.t.push_back(0.0);
            unit.link.push_back(1);
        }
        unit.path.push_back(chunk.path);
        unit.seg.push_back(chunk.seg_end - 1);
        unit.t.push_back(1.0);
        unit.link.push_back(0);
    }
    unit.origin.assign(unit.t.size(), -1);
    unit.bits.assign(sz(unit.size() * words_), 0);
    return unit;
}

namespace {

// dot[v] = <row v, row v + 1> of n rows of `width` values: with the rows' norms it gives
// the norm of the layer's input anywhere inside interval v (the input is affine there).
void neighbour_dots(const double* rows, Index n, Index width, Buffer<double>& dot) {
    dot.resize(sz(n));
    for (Index v = 0; v + 1 < n; ++v) {
        const double* a = rows + v * width;
        const double* b = a + width;
        double sum = 0.0;
        for (Index k = 0; k < width; ++k) sum += a[k] * b[k];
        dot[sz(v)] = sum;
    }
    if (n > 0) dot[sz(n - 1)] = 0.0;
}

// out[i] = <x[i], y[i]> (d values each), each summed in order k = 0, 1, ..., d - 1, for
// four pairs at a time: independent chains (the same sums as one pair at a time), which
// a long input dimension makes latency-bound otherwise.
void interleaved_dots(const double* const* x, const double* const* y, Index n, Index d,
                      double* out) {
    Index i = 0;
    for (; i + 4 <= n; i += 4) {
        const double *x0 = x[i], *x1 = x[i + 1], *x2 = x[i + 2], *x3 = x[i + 3];
        const double *y0 = y[i], *y1 = y[i + 1], *y2 = y[i + 2], *y3 = y[i + 3];
        double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
        for (Index k = 0; k < d; ++k) {
            s0 += x0[k] * y0[k];
            s1 += x1[k] * y1[k];
            s2 += x2[k] * y2[k];
            s3 += x3[k] * y3[k];
        }
        out[i] = s0;
        out[i + 1] = s1;
        out[i + 2] = s2;
        out[i + 3] = s3;
    }
    for (; i < n; ++i) {
        double sum = 0.0;
        for (Index k = 0; k < d; ++k) sum += x[i][k] * y[i][k];
        out[i] = sum;
    }
}

// The crossings of interval v, [first, last), sorted by (float fraction, neuron); false
// when there are none.
bool sorted_crossings(std::vector<Crossing>& crossings, const std::vector<Index>& begin, Index v,
                      std::vector<Crossing>::iterator& first,
                      std::vector<Crossing>::iterator& last) {
    first = crossings.begin() + begin[sz(v)];
    last = crossings.begin() + begin[sz(v) + 1];
    std::sort(first, last, [](const Crossing& x, const Crossing& y) {
        return x.tau < y.tau || (x.tau == y.tau && x.unit < y.unit);
    });
    return first != last;
}

}  // namespace

// Layer 0 is evaluated at the polyline's own points only: every later vertex lies
// inside a segment, where layer 0 is affine, so this composes the first affine map
// with the path once and the input dimension costs nothing after it.
void Subdivider::evaluate_first_layer(Unit& unit, const double* first_rows) {
    const Index d = net_.input_dim();
    const Index n = unit.size();
    const AffineMap& map = net_.layer(0);
    unit.scale.resize(sz(n));
    unit.err.assign(sz(n), 0.0);  // polyline points are exact
    unit.width = map.out_dim();
    unit.z.resize(sz(n * unit.width));
    Buffer<double>& x = input_points_;
    if (first_rows == nullptr) x.resize(sz(n * d));
    std::vector<const double*>& rows = point_rows_;
    rows.resize(sz(n));
    for (Index v = 0; v < n; ++v) {
        const PathSpec& spec = paths_[sz(unit.path[sz(v)])];
        Index point = unit.seg[sz(v)] + (unit.t[sz(v)] > 0.0 ? 1 : 0);
        if (point == spec.num_points) point = 0;  // end of a closed path's last segment
        rows[sz(v)] = spec.points + point * d;
        if (first_rows == nullptr) std::copy_n(rows[sz(v)], d, x.begin() + v * d);
    }
    // scale[v] = ||point v||; rtol only: dot[v] = <point v, point v + 1> (as
    // neighbour_dots gives it; the certified decisions do not read it).
    interleaved_dots(rows.data(), rows.data(), n, d, unit.scale.data());
    for (Index v = 0; v < n; ++v) unit.scale[sz(v)] = std::sqrt(unit.scale[sz(v)]);
    if (!options_.certified) {
        unit.dot.resize(sz(n));
        if (n > 1) interleaved_dots(rows.data(), rows.data() + 1, n - 1, d, unit.dot.data());
        if (n > 0) unit.dot[sz(n - 1)] = 0.0;
    }
    if (first_rows != nullptr)
        std::copy_n(first_rows, n * unit.width, unit.z.data());
    else
        map.apply(x.data(), n, d, unit.z.data(), unit.width);
    float_work_ += static_cast<double>(n) * map.multiply_adds();
    vertices_per_layer_[0].fetch_add(n, std::memory_order_relaxed);
}

// Whether hidden layer `layer`'s values at the previous layer's new vertices may come from
// their intervals' ends (update_rows): its map's columns are available (not for maps of
// more entries than AffineColumns keeps).
bool Subdivider::updatable(Index layer) const {
    return options_.update_new_vertices != 0 && net_.layer(layer).columns().available;
}

// Values of hidden layer `layer` at every vertex of the unit, from the previous layer's
// activations, which `unit.z` holds on entry: one dense product over the vertices, except
// those the previous layer added where insert_crossings chose the update from their
// interval's ends (update_rows).
void Subdivider::evaluate_next_layer(Unit& unit, Index layer) {
    const AffineMap& map = net_.layer(layer);
    const Index n = unit.size();
    const Index in = unit.width;
    const Index out = map.out_dim();
    if (!options_.certified) neighbour_dots(unit.z.data(), n, in, unit.dot);  // rtol only
    activated_.resize(sz(n * out));
    const PendingRows& pending = unit.pending;
    if (pending.empty()) {
        map.apply(unit.z.data(), n, in, activated_.data(), out);
    } else {
        // The dense product over the other rows, gathered into one block.
        dense_rows_.clear();
        dense_rows_.reserve(sz(n));
        for (Index v = 0; v < n; ++v)
            if (!pending.updated[sz(v)]) dense_rows_.push_back(v);
        const Index m = static_cast<Index>(dense_rows_.size());
        input_points_.resize(sz(m * in));
        gathered_.resize(sz(m * out));
        for (Index i = 0; i < m; ++i)
            std::copy_n(unit.z.data() + dense_rows_[sz(i)] * in, in, input_points_.data() + i * in);
        map.apply(input_points_.data(), m, in, gathered_.data(), out);
        for (Index i = 0; i < m; ++i)
            std::copy_n(gathered_.data() + i * out, out,
                        activated_.data() + dense_rows_[sz(i)] * out);
        update_rows(unit, layer);
    }
    unit.pending.clear();
    unit.z.swap(activated_);
    unit.width = out;
    float_work_ += static_cast<double>(n) * map.multiply_adds();
    vertices_per_layer_[sz(layer)].fetch_add(n, std::memory_order_relaxed);
}

// The values of hidden layer `layer` (map W, c) at the vertices the previous layer's
// crossings added, from those at their interval's ends a and b (activated_'s rows, already
// computed): on the interval every earlier layer is affine except the previous layer's
// crossing neurons S, so at the vertex at fraction tau
//
//     z(v) = z(a) + tau (z(b) - z(a)) - sum_{j in S} W[:, j] c_j,
//     c_j = (1 - slope) tau |z_j(b)| while j has not crossed yet, else
//           (1 - slope) (1 - tau) |z_j(a)|
//
// (the activation's deviation from its chord, a tent with its peak at j's crossing; the
// neurons of the vertex's own group are zero there, where both forms agree). The sums run
// as a prefix (crossed) and a suffix (not yet crossed) over the interval's crossings in
// exact order: O(out) per crossing and per vertex instead of O(in * out) per vertex.
// Certified: each vertex gets its own bound (given_a, given_b, given_err; the argument is
// docs/numerics.md §3, "Values at new vertices").
void Subdivider::update_rows(Unit& unit, Index layer) {
    const AffineMap& map = net_.layer(layer);
    const PendingRows& p = unit.pending;
    const Index out = map.out_dim();
    const Index n = unit.size();
    const AffineColumns& columns = map.columns();
    // sum += c W[:, j].
    auto add_column = [&](double c, Index j, double* sum) {
        if (columns.dense) {
            row_axpy(c, columns.values.data() + j * out, sum, out);
            return;
        }
        for (Index e = columns.begin[sz(j)]; e < columns.begin[sz(j) + 1]; ++e)
            sum[columns.rows[sz(e)]] += c * columns.values[sz(e)];
    };
    const bool certified = options_.certified;
    const FilterLayer* f = certified ? &filter_[sz(layer)] : nullptr;
    if (certified) {
        unit.given_a.resize(sz(n));
        unit.given_b.resize(sz(n));
        unit.given_err.assign(sz(n), -1.0);
    }
    prefix_.resize(sz(out));
    double* sum = prefix_.data();
    double* y = activated_.data();
    const double up_out = kSafety * (1.0 + gamma_of(static_cast<double>(out) + 3.0));
    const Index intervals = static_cast<Index>(p.a.size());
    for (Index i = 0; i < intervals; ++i) {
        const Index a = p.a[sz(i)], b = p.b[sz(i)];
        const Index g0 = p.group_begin[sz(i)], g1 = p.group_begin[sz(i) + 1];
        const double* za = y + a * out;
        const double* zb = y + b * out;
        // Crossed neurons: sum_j (1 - slope) |z_j(a)| W[:, j], times (1 - tau).
        // (Dense columns: the row's pass and its group's first column in one pass.)
        std::fill_n(sum, out, 0.0);
        for (Index g = g0; g < g1; ++g) {
            double* row = y + (a + 1 + g - g0) * out;
            Index e = p.entry_begin[sz(g)];
            const Index e_end = p.entry_begin[sz(g) + 1];
            if (columns.dense && e < e_end) {
                row_scale_axpy(1.0 - p.tau[sz(g)], sum, row, p.coef_a[sz(e)],
                               columns.values.data() + p.neuron[sz(e)] * out, out);
                ++e;
            } else {
                row_scale(1.0 - p.tau[sz(g)], sum, row, out);
            }
            for (; e < e_end; ++e) add_column(p.coef_a[sz(e)], p.neuron[sz(e)], sum);
        }
        // Neurons not crossed yet (and the vertex's own): (1 - slope) |z_j(b)|, times tau.
        // (Dense columns: the group's last column and the row's pass in one pass.)
        std::fill_n(sum, out, 0.0);
        for (Index g = g1 - 1; g >= g0; --g) {
            const Index e_begin = p.entry_begin[sz(g)];
            Index e_end = p.entry_begin[sz(g) + 1];
            const bool fuse = columns.dense && e_begin < e_end;
            if (fuse) --e_end;
            for (Index e = e_begin; e < e_end; ++e)
                add_column(p.coef_b[sz(e)], p.neuron[sz(e)], sum);
            double* row = y + (a + 1 + g - g0) * out;
            if (fuse)
                row_axpy_chord(p.coef_b[sz(e_end)],
                               columns.values.data() + p.neuron[sz(e_end)] * out, sum, za, zb,
                               p.tau[sz(g)], row, out);
            else
                row_chord(za, zb, p.tau[sz(g)], sum, row, out);
        }
        if (!certified) continue;
        // The bound (docs/numerics.md §3): per value ||W_k|| A + |c_k| B, and the row's l2
        // error Z, from the ends' bounds (their values come from the dense product).
        const Index e0 = p.entry_begin[sz(g0)], e1 = p.entry_begin[sz(g1)];
        double ca = 0.0, cb = 0.0;
        for (Index e = e0; e < e1; ++e) {
            ca += p.coef_a[sz(e)] * p.coef_a[sz(e)];
            cb += p.coef_b[sz(e)] * p.coef_b[sz(e)];
        }
        const double gk = gamma_of(static_cast<double>(e1 - e0) + 6.0);
        const double coef_norm = (std::sqrt(ca) + std::sqrt(cb)) * kSafety *
                                 (1.0 + gamma_of(static_cast<double>(e1 - e0) + 3.0));
        double na = 0.0, nb = 0.0, nd = 0.0;
        row_norms3(za, zb, out, na, nb, nd);
        const double sa = unit.scale[sz(a)], sb = unit.scale[sz(b)];
        const double ea = unit.err[sz(a)], eb = unit.err[sz(b)];
        const VertexBound bound_a = VertexBound::at(*f, sa, ea);
        const VertexBound bound_b = VertexBound::at(*f, sb, eb);
        const double za_error = VertexBound::vector_error(*f, sa, ea);
        const double zb_error = VertexBound::vector_error(*f, sb, eb);
        // >= ||lambda (z*(b) - z*(a))|| of the previous layer (lambda: each unit's slope
        // on its side), which the fraction's error multiplies.
        const double spread = p.spread[sz(i)] + ea + eb;
        const double g2 = 1.0 + 2.0 * f->gamma;
        const double k3 = kSafety * kSafety * kSafety;
        // The terms no vertex of the interval changes: the corrections' rounding and the
        // final sum's.
        const double a_fixed = gk * coef_norm + 8.0 * kUnitRoundoff * g2 * kSafety * (sa + sb) +
                               8.0 * kUnitRoundoff * (1.0 + gk) * coef_norm;
        const double b_value = k3 * (bound_a.b + 16.0 * kUnitRoundoff * g2 * kSafety);
        const double z_fixed =
            gk * f->absnorm * coef_norm + 8.0 * kUnitRoundoff *
                                              (std::sqrt(na) * up_out + std::sqrt(nb) * up_out +
                                               (1.0 + gk) * f->absnorm * coef_norm);
        for (Index g = g0; g < g1; ++g) {
            const Index v = a + 1 + g - g0;
            const double tau = p.tau[sz(g)], dtau = p.dtau[sz(g)];
            unit.given_a[sz(v)] =
                k3 * ((1.0 - tau) * bound_a.a + tau * bound_b.a + dtau * spread + a_fixed);
            unit.given_b[sz(v)] = b_value;
            unit.given_err[sz(v)] = k3 * ((1.0 - tau) * za_error + tau * zb_error +
                                          dtau * f->opnorm * spread + z_fixed);
        }
    }
}

void Subdivider::process(Unit unit, Index layer, VertexSeq& out, const StopFlag& stop) {
    const Index num_hidden = net_.num_hidden_layers();
    for (; layer < num_hidden; ++layer) {
        stop.throw_if_requested();
        if (layer > 0) evaluate_next_layer(unit, layer);
        subdivide(unit, layer, layer + 1 == num_hidden);
        if (layer + 1 < num_hidden && unit.size() > options_.max_unit_vertices &&
            unit.size() >= 4) {
            auto [left, right] = split(std::move(unit));
            process(std::move(left), layer + 1, out, stop);
            process(std::move(right), layer + 1, out, stop);
            return;
        }
    }
    out.append(unit);
}

// Halves a unit at its middle vertex, which both halves keep.
std::pair<Unit, Unit> Subdivider::split(Unit unit) const {
    const Index n = unit.size();
    const Index m = n / 2;
    const Index w = unit.width;
    Unit right;
    right.width = w;
    right.duplicates_previous = true;
    right.z.assign(unit.z.begin() + m * w, unit.z.end());
    right.scale.assign(unit.scale.begin() + m, unit.scale.end());
    if (options_.certified) right.err.assign(unit.err.begin() + m, unit.err.end());
    right.origin.assign(unit.origin.begin() + m, unit.origin.end());
    right.path.assign(unit.path.begin() + m, unit.path.end());
    right.seg.assign(unit.seg.begin() + m, unit.seg.end());
    right.t.assign(unit.t.begin() + m, unit.t.end());
    right.link.assign(unit.link.begin() + m, unit.link.end());
    right.bits.assign(unit.bits.begin() + m * words_, unit.bits.end());

    unit.z.resize(sz((m + 1) * w));
    unit.scale.resize(sz(m + 1));
    if (options_.certified) unit.err.resize(sz(m + 1));
    unit.origin.resize(sz(m + 1));
    unit.path.resize(sz(m + 1));
    unit.seg.resize(sz(m + 1));
    unit.t.resize(sz(m + 1));
    unit.link.resize(sz(m + 1));
    unit.link[sz(m)] = 0;  // the interval (m, m + 1) belongs to the right half
    unit.bits.resize(sz((m + 1) * words_));
    // insert_crossings leaves no update pending when a split follows (a half may lack an
    // interval's end, and the updated vertices have no activations).
    unit.pending.clear();
    return {std::move(unit), std::move(right)};
}

// Sets layer `layer`'s pattern bits on every interval and cuts intervals where one of
// its neurons changes sign. On return `unit.z` holds the layer's activations (the input
// of the next dense product) and `unit.scale` their norms; after the last hidden layer
// no values are needed any more and only positions and patterns are kept.
void Subdivider::subdivide(Unit& unit, Index layer, bool last) {
    if (options_.certified) {
        // Every value gets a certified sign (0: the vertex lies on that neuron's zero set).
        certify_values(unit, layer);
    } else {
        // Values within the zero tolerance are zero: the vertex lies on that neuron's zero
        // set (a path point on a hyperplane, a touching neuron).
        snap_zeros(unit.z.data(), unit.size(), unit.width, net_.hidden_size(layer),
                   unit.scale.data(), net_.layer(layer), options_.rtol);
    }
    find_crossings(unit, layer);
    const Index added =
        options_.certified ? order_crossings(unit, layer) : group_crossings(unit, layer);
    count_pieces(added);
    insert_crossings(unit, layer, last, added);
}

// Pattern bits of the layer (value at the interval's start, or at its end where the start
// is on the zero set) and the crossings (opposite signs at the two ends), interval by
// interval, into crossing_begin_ and crossings_.
void Subdivider::find_crossings(Unit& unit, Index layer) {
    const Index n = unit.size();
    const Index width = unit.width;
    const Index offset = net_.neuron_offset(layer);
    const Index neurons = net_.hidden_size(layer);  // the rest are linear units
    std::vector<Index>& crossing_begin = crossing_begin_;
    std::vector<Crossing>& crossings = crossings_;
    const bool certified = options_.certified;
    const std::vector<double>& norms = net_.layer(layer).row_norms();
    const std::vector<double>& bias = net_.layer(layer).abs_bias();
    crossing_begin.assign(sz(n) + 1, 0);
    crossings.clear();
    // Certified, certify_values has left the vertices' sign words; else they are taken
    // here, once per vertex.
    const Index stride = sign_stride(layer);
    if (!certified) {
        signs_.resize(sz(n * stride));
        for (Index v = 0; v < n; ++v)
            sign_words(unit.z.data() + v * width, neurons, signs_.data() + v * stride);
    }
    for (Index v = 0; v < n; ++v) {
        crossing_begin[sz(v)] = static_cast<Index>(crossings.size());
        if (!unit.link[sz(v)]) continue;
        const double* za = unit.z.data() + v * width;
        const double* zb = za + width;
        Word* row = unit.bits.data() + v * words_;
        VertexBound bound_a, bound_b;
        if (certified) {
            bound_a = {unit.bound_a[sz(v)], unit.bound_b[sz(v)]};
            bound_b = {unit.bound_a[sz(v) + 1], unit.bound_b[sz(v) + 1]};
        }
        const Word* words_a = signs_.data() + v * stride;
        const Word* words_b = words_a + stride;
        for (Index j0 = 0; j0 < neurons; j0 += kWordBits) {
            Word on;
            Word cross;
            interval_sign_words(words_a + kSignWords * (j0 / kWordBits),
                                words_b + kSignWords * (j0 / kWordBits), on, cross);
            // Place the 64 local bits at the layer's offset in the pattern row.
            set_bits_at(row, offset + j0, on);
            while (cross != 0) {
                const Index j = j0 + static_cast<Index>(__builtin_ctzll(cross));
                cross &= cross - 1;
                crossings.push_back({za[j] / (za[j] - zb[j]), j, false});
                if (certified) {
                    const double ea = bound_a.eps(norms[sz(j)], bias[sz(j)]);
                    const double eb = bound_b.eps(norms[sz(j)], bias[sz(j)]);
                    crossing_interval(za[j], zb[j], ea, eb, crossings.back().lo,
                                      crossings.back().hi);
                }
            }
        }
    }
    crossing_begin[sz(n)] = static_cast<Index>(crossings.size());
}

// Orders the crossings of each interval. A crossing joins the previous one's vertex
// when its neuron is within the zero tolerance there (the vertex lies on both zero sets:
// concurrent or coincident hyperplanes), so no sliver piece appears. Returns the number
// of vertices the crossings add.
Index Subdivider::group_crossings(const Unit& unit, Index layer) {
    const Index n = unit.size();
    const Index width = unit.width;
    const AffineMap& map = net_.layer(layer);
    const std::vector<double>& row_norms = map.row_norms();
    const std::vector<double>& abs_bias = map.abs_bias();
    std::vector<Crossing>& crossings = crossings_;
    Index added = 0;
    for (Index v = 0; v < n; ++v) {
        std::vector<Crossing>::iterator first, last_crossing;
        if (!sorted_crossings(crossings, crossing_begin_, v, first, last_crossing)) continue;
        const double* za = unit.z.data() + v * width;
        const double* zb = za + width;
        const double sa = unit.scale[sz(v)];
        const double sb = unit.scale[sz(v) + 1];
        const double dot = unit.dot[sz(v)];
        double group_tau = first->tau;
        ++added;
        for (auto it = first + 1; it != last_crossing; ++it) {
            const Index k = it->unit;
            const double value = za[k] + group_tau * (zb[k] - za[k]);
            const double scale = norm_between(sa, sb, dot, group_tau, map.in_dim());
            it->joins =
                it->tau == group_tau ||
                std::abs(value) <= options_.rtol * (row_norms[sz(k)] * scale + abs_bias[sz(k)]);
            if (!it->joins) {
                group_tau = it->tau;
                ++added;
            }
        }
    }
    return added;
}

// The certified sign of every neuron value of the layer at every vertex
// (docs/numerics.md): a value whose magnitude exceeds the fast filter's bound keeps its
// float sign; any other goes to the slow path, which replaces it by a value of the
// certified sign (or by 0: an exact coincidence). Where it did, the vertex's bounds are
// doubled, which keeps them valid for the replaced values (both the replacement and the
// exact value lie within 2 eps of zero on the same side).
void Subdivider::certify_values(Unit& unit, Index layer) {
    const FilterLayer& f = filter_[sz(layer)];
    const AffineMap& map = net_.layer(layer);
    const double* norms = map.row_norms().data();
    const double* bias = map.abs_bias().data();
    const Index n = unit.size();
    const Index width = unit.width;
    const Index neurons = net_.hidden_size(layer);
    unit.bound_a.resize(sz(n));
    unit.bound_b.resize(sz(n));
    // The sign words of every vertex's values, for find_crossings.
    const Index stride = sign_stride(layer);
    signs_.resize(sz(n * stride));
    // Rows the update from their interval's ends computed carry their own bound.
    const bool any_given = !unit.given_err.empty();
    for (Index v = 0; v < n; ++v) {
        const bool given = any_given && unit.given_err[sz(v)] >= 0.0;
        VertexBound bound = given ? VertexBound{unit.given_a[sz(v)], unit.given_b[sz(v)]}
                                  : VertexBound::at(f, unit.scale[sz(v)], unit.err[sz(v)]);
        const double row_error =
            given ? unit.given_err[sz(v)]
                  : VertexBound::vector_error(f, unit.scale[sz(v)], unit.err[sz(v)]);
        double* row = unit.z.data() + v * width;
        const double a = bound.a, b = bound.b;
        Word* words = signs_.data() + v * stride;
        const Index undecided = count_undecided_signs(row, norms, bias, a, b, max_norm_[sz(layer)],
                                                      max_bias_[sz(layer)], neurons, words);
        double replaced = 0.0;  // sum of eps^2 over the replaced values
        if (undecided > 0) {
            const Index path = unit.path[sz(v)];
            Index structural = 0;  // values proven exactly zero by structural_zero
            bool asked = false;    // the slow path was asked at v
            uncertified_units_.clear();
            for (Index j = 0; j < neurons; ++j) {
                if (bound.decides(row[j], norms[j], bias[j])) continue;
                // A value whose row reads only exact zeros (ties of ReLU outputs that are
                // both off, in max-pooling tournaments): exactly zero, no slow pass.
                if (row[j] == 0.0 && structural_zero(unit, v, layer, j)) {
                    count(path, 1);
                    ++structural;
                    continue;
                }
                if (!slow_allowed()) {  // budget spent: the float64 sign, counted
                    count(path, 3);
                    ++uncertified_used_;
                    uncertified_units_.push_back(j);
                    continue;
                }
                const double eps = bound.eps(norms[j], bias[j]);
                replaced += eps * eps;
                if (asked) oracle_.same_vertex_next();  // the pass of v's first one
                asked = true;
                const SlowDecision d = slow_sign(unit, v, layer, j);
                if (d.skipped) {  // the exact tier would pass the work budget
                    count(path, 3);
                    ++uncertified_used_;
                    uncertified_units_.push_back(j);
                    continue;
                }
                count(path, 0);
                if (!d.decided) {
                    row[j] = 0.0;
                    count(path, 1);
                } else {
                    const double limit = std::max(2.0 * eps, std::numeric_limits<double>::min());
                    const bool usable = d.value * d.sign > 0.0 && std::abs(d.value) <= limit;
                    row[j] = usable ? d.value : d.sign * limit * 0.5;
                }
            }
            // The slow pass at v gives all the layer's values there far more accurately
            // than the float64 ones: they replace them (refresh_values), so that deeper
            // layers start from a small error again. Else a structural zero is exact
            // (z = z* = 0): only the other values need the doubled bound.
            sign_words(row, neurons, words);  // the slow path may have changed values
            if (asked && refresh_values(unit, v, layer, bound, row_error)) {
                sign_words(row, neurons, words);
                unit.bound_a[sz(v)] = bound.a;
                unit.bound_b[sz(v)] = bound.b;
                continue;  // err[v] set
            }
            if (undecided > structural) {
                bound.a *= 2.0;
                bound.b *= 2.0;
            }
        }
        unit.bound_a[sz(v)] = bound.a;
        unit.bound_b[sz(v)] = bound.b;
        // From here on err[v] bounds the l2 error of the layer's values at v: a replaced
        // value errs by at most 2 eps instead (the vector bound plus 2 ||eps_replaced||).
        unit.err[sz(v)] = row_error + 2.0 * std::sqrt(replaced) * kSafety;
    }
    unit.given_a.clear();
    unit.given_b.clear();
    unit.given_err.clear();
}

// After the slow path asked at vertex v (the oracle's current pass is v's, through this
// layer): the layer's values at v from that pass replace the float64 ones, each within
// error_k of the exact value z*_k (PathOracle::vertex_values). Signs stay the certified
// ones: a value the pass decides keeps its estimate q_k; another neuron with certified
// sign s (decided by the filter or the slow path) gets s (|q_k| + error_k), within
// |q_k| + error_k of z*_k (both on the same side, |z*_k| <= |q_k| + error_k); a value
// proven zero stays 0, within the same; a float64 sign taken past the budget keeps its
// value and the filter's eps_k. Taken only when every new error is at most eps_k (the
// vertex's per-value bound stays valid, undoubled) and their l2 norm is below the bound
// err[v] would get otherwise; err[v] becomes that l2 norm. Returns whether it did.
bool Subdivider::refresh_values(Unit& unit, Index v, Index layer, const VertexBound& bound,
                                double old_error) {
    Index lj = -1, j = 0;
    const Index origin = unit.origin[sz(v)];
    if (origin >= 0) {
        lj = 0;
        while (net_.neuron_offset(lj + 1) <= origin) ++lj;
        j = origin - net_.neuron_offset(lj);
    }
    if (!oracle_.vertex_values(lj, j, layer, refresh_value_, refresh_error_)) return false;
    const AffineMap& map = net_.layer(layer);
    const double* norms = map.row_norms().data();
    const double* bias = map.abs_bias().data();
    const Index width = unit.width;
    const Index neurons = net_.hidden_size(layer);
    double* row = unit.z.data() + v * width;
    std::size_t next_uncertified = 0;
    double sum = 0.0;
    for (Index k = 0; k < width; ++k) {
        const double eps = bound.eps(norms[k], bias[k]);
        double q = refresh_value_[sz(k)];
        double e = refresh_error_[sz(k)];
        if (k < neurons) {
            if (next_uncertified < uncertified_units_.size() &&
                uncertified_units_[next_uncertified] == k) {
                ++next_uncertified;
                q = row[k];
                e = eps;
            } else if (!(std::abs(q) > e) || (q > 0.0) != (row[k] > 0.0) || row[k] == 0.0) {
                // The pass does not decide it (or it is zero): the certified sign, at the
                // far end of the pass's interval.
                e = (std::abs(q) + e) * (1.0 + 2.0 * kUnitRoundoff);
                q = row[k] == 0.0
                        ? 0.0
                        : std::copysign(std::max(e, std::numeric_limits<double>::min()), row[k]);
                e = std::max(e, std::abs(q));
            }
        }
        if (!(e <= eps)) return false;
        refresh_value_[sz(k)] = q;
        sum += e * e;
    }
    const double error =
        std::sqrt(sum) * kSafety * (1.0 + gamma_of(static_cast<double>(width) + 2.0));
    if (!(error < old_error)) return false;
    std::copy_n(refresh_value_.data(), width, row);
    unit.err[sz(v)] = error;
    return true;
}

// The slow path's sign of neuron k of the layer at vertex v: the vertex's exact point
// (a polyline point, or the root of the neuron whose crossing made it) evaluated in
// double-double, the earlier layers' pattern forced to that of an interval next to v.
SlowDecision Subdivider::slow_sign(const Unit& unit, Index v, Index layer, Index k) {
    set_exact_limit();
    const bool after = unit.link[sz(v)] != 0 || v == 0;
    const Word* pattern = unit.bits.data() + (after ? v : v - 1) * words_;
    const PathSpec& spec = paths_[sz(unit.path[sz(v)])];
    const Index d = net_.input_dim();
    const Index s = unit.seg[sz(v)];
    const double* x0 = spec.points + s * d;
    const double* x1 = spec.points + ((s + 1) % spec.num_points) * d;
    const Index origin = unit.origin[sz(v)];
    if (origin < 0) return oracle_.sign_at_point(unit.t[sz(v)] > 0.0 ? x1 : x0, pattern, layer, k);
    Index lj = 0;
    while (net_.neuron_offset(lj + 1) <= origin) ++lj;
    const Index j = origin - net_.neuron_offset(lj);
    // Neuron j is on beyond its crossing (after it along t) exactly when it rises.
    const bool on = ((pattern[origin / kWordBits] >> (origin % kWordBits)) & Word{1}) != 0;
    const int d_sign = on == after ? 1 : -1;
    return oracle_.sign_at_root(x0, x1, pattern, lj, j, d_sign, layer, k);
}

// Whether neuron k of the layer is exactly zero at vertex v by structure alone: under the
// pattern of the interval next to v that the slow path would force (slow_sign), its row
// has no bias and reads only values that are exactly zero there: ReLU units that the
// pattern turns off (their pre-activation is <= 0 on that closed interval, so their
// output is exactly 0 at v), or linear units that are such structural zeros themselves
// (looked up recursively, a few layers deep). Then the slow path's forced-pattern sum is
// a sum of exact zeros: the value is exactly 0 (an exact coincidence) with no pass. The
// pattern's bits are certified only while the task has taken no float64 sign
// (uncertified_used_ == 0); after that the rule is not used. Tournaments of max pooling
// (docs/numerics.md §4) have many such ties: both candidates are ReLU outputs that are 0.
bool Subdivider::structural_zero(const Unit& unit, Index v, Index layer, Index k) {
    if (uncertified_used_ > 0 || layer == 0) return false;
    const bool after = unit.link[sz(v)] != 0 || v == 0;
    const Word* pattern = unit.bits.data() + (after ? v : v - 1) * words_;
    return structural_zero_row(net_, pattern, layer, k, structural_rows_);
}

// The exact order of two crossings p, q of one interval (q's neuron evaluated at p's
// root): -1 when p comes first, 1 when q does, 0 when they coincide.
int Subdivider::compare_crossings(const Unit& unit, Index v, Index layer, const Crossing& p,
                                  const Crossing& q) {
    const double* za = unit.z.data() + v * unit.width;
    const double* zb = za + unit.width;
    const Index k = q.unit;
    const AffineMap& map = net_.layer(layer);
    const double norm = map.row_norms()[sz(k)], bias = map.abs_bias()[sz(k)];
    const double ea = VertexBound{unit.bound_a[sz(v)], unit.bound_b[sz(v)]}.eps(norm, bias);
    const double eb = VertexBound{unit.bound_a[sz(v) + 1], unit.bound_b[sz(v) + 1]}.eps(norm, bias);
    const double tau = p.tau;
    const double dtau = std::max(p.hi - tau, tau - p.lo);
    const double diff = zb[k] - za[k];
    const double value = za[k] + tau * diff;
    // g_k(t*) = (1 - t*) a* + t* b*: the ends' errors, the fraction's, the rounding.
    const double err = kSafety * ((1.0 - tau) * ea + tau * eb + dtau * (std::abs(diff) + ea + eb) +
                                  3.0 * kUnitRoundoff * (std::abs(za[k]) + std::abs(zb[k])));
    int sign = 0;
    if (std::abs(value) > err) {
        sign = value > 0.0 ? 1 : -1;
    } else if (!slow_allowed()) {  // budget spent: the float64 sign, counted
        count(unit.path[sz(v)], 3);
        ++uncertified_used_;
        sign = value > 0.0 ? 1 : (value < 0.0 ? -1 : 0);
    } else {
        const PathSpec& spec = paths_[sz(unit.path[sz(v)])];
        const Index d = net_.input_dim();
        const Index s = unit.seg[sz(v)];
        set_exact_limit();
        const SlowDecision decision = oracle_.sign_at_root(
            spec.points + s * d, spec.points + ((s + 1) % spec.num_points) * d,
            unit.bits.data() + v * words_, layer, p.unit, zb[p.unit] > 0.0 ? 1 : -1, layer, k);
        if (decision.skipped) {  // the exact tier would pass the work budget
            count(unit.path[sz(v)], 3);
            ++uncertified_used_;
            sign = value > 0.0 ? 1 : (value < 0.0 ? -1 : 0);
        } else {
            count(unit.path[sz(v)], 0);
            sign = decision.decided ? decision.sign : 0;
        }
    }
    if (sign == 0) return 0;
    return sign == (za[k] > 0.0 ? 1 : -1) ? -1 : 1;
}

// Certified grouping: an interval's crossings sorted by their float fractions, then put
// in exact order by insertion sort with the certified comparison (almost always the
// order already), and a crossing joins the group before it only when the two coincide
// (its neuron is exactly zero at the group's vertex: concurrent hyperplanes).
Index Subdivider::order_crossings(const Unit& unit, Index layer) {
    const Index n = unit.size();
    std::vector<Crossing>& crossings = crossings_;
    Index added = 0;
    for (Index v = 0; v < n; ++v) {
        std::vector<Crossing>::iterator first, last_crossing;
        if (!sorted_crossings(crossings, crossing_begin_, v, first, last_crossing)) continue;
        for (auto it = first + 1; it != last_crossing; ++it) {
            // Only crossings whose fraction intervals overlap can be out of order.
            for (auto at = it; at != first && (at - 1)->hi >= at->lo &&
                               compare_crossings(unit, v, layer, *(at - 1), *at) > 0;
                 --at)
                std::iter_swap(at - 1, at);
        }
        auto group = first;
        ++added;
        for (auto it = first + 1; it != last_crossing; ++it) {
            it->joins = group->hi >= it->lo && compare_crossings(unit, v, layer, *group, *it) == 0;
            if (it->joins) {
                count(unit.path[sz(v)], 1);
            } else {
                group = it;
                ++added;
            }
        }
    }
    return added;
}

// Counts the pieces `added` against max_pieces and their memory against max_memory.
void Subdivider::count_pieces(Index added) const {
    const Index total = created_.fetch_add(added) + added;
    if (total > options_.max_pieces) {
        throw LimitExceeded("lrcore: more than max_pieces=" + std::to_string(options_.max_pieces) +
                            " pieces were created (" + std::to_string(total) +
                            " so far); raise max_pieces to allow more");
    }
    // Every piece keeps its pattern row and position until the result is assembled,
    // and the result holds them again (patterns packed when asked for).
    const double bytes_per_piece =
        static_cast<double>(words_) * 8.0 + 48.0 +
        (options_.want_patterns ? static_cast<double>(words_) * 8.0 : 0.0);
    if (options_.max_memory > 0.0 &&
        static_cast<double>(total) * bytes_per_piece > options_.max_memory) {
        throw LimitExceeded("lrcore: the pieces would need more than max_memory=" +
                            format_bytes(options_.max_memory) + " (" + std::to_string(total) +
                            " pieces so far, about " +
                            format_bytes(static_cast<double>(total) * bytes_per_piece) +
                            "); raise max_memory, or count fewer or shorter paths per call");
    }
}

// Rebuilds the unit with a vertex at each group of crossings: its position, the pattern
// beyond it and (before the last hidden layer) the activations there, interpolated in the
// interval, which the next layer's product takes as input.
void Subdivider::insert_crossings(Unit& unit, Index layer, bool last, Index added) {
    const Index n = unit.size();
    const Index width = unit.width;
    const Index offset = net_.neuron_offset(layer);
    const Activation act = net_.activation(layer);
    const Index neurons = net_.hidden_size(layer);
    const std::vector<Crossing>& crossings = crossings_;
    Unit& next = spare_;
    next.width = width;
    next.duplicates_previous = unit.duplicates_previous;
    const Index new_n = n + added;
    const bool certified = options_.certified;
    if (!last) {
        next.z.resize(sz(new_n * width));
        next.scale.resize(sz(new_n));
        if (certified) next.err.resize(sz(new_n));
    }
    next.origin.resize(sz(new_n));
    next.path.resize(sz(new_n));
    next.seg.resize(sz(new_n));
    next.t.resize(sz(new_n));
    next.link.resize(sz(new_n));
    next.bits.resize(sz(new_n * words_));
    interpolated_.resize(sz(width));
    // The next layer's values at this layer's new vertices, from their interval's ends
    // where that is cheaper than the dense product (evaluate_next_layer).
    PendingRows& pending = next.pending;
    pending.clear();
    // Not where the unit is split before the next layer (process): a half may lack an
    // interval's end.
    const bool splits = new_n > options_.max_unit_vertices && new_n >= 4;
    const bool can_update = !last && added > 0 && !splits && updatable(layer + 1);
    const AffineColumns* next_columns = can_update ? &net_.layer(layer + 1).columns() : nullptr;
    const Index next_out = can_update ? net_.layer(layer + 1).out_dim() : 0;
    if (can_update) pending.updated.assign(sz(new_n), 0);
    const double one_minus_slope =
        act.kind == ActivationKind::relu ? 1.0 : 1.0 - act.negative_slope;

    Index w = 0;  // write position
    // Writes the activations of pre-activation row `z` as row w, with their norm.
    auto activate_row = [&](const double* z) {
        next.scale[sz(w)] = activate_values(act, z, next.z.data() + w * width, width, neurons);
    };
    // Certified: the l2 error of a vertex's values, and of its activations (next.err).
    const FilterLayer* f = certified ? &filter_[sz(layer)] : nullptr;
    auto vector_error = [&](Index v) { return unit.err[sz(v)]; };

    for (Index v = 0; v < n; ++v) {
        if (!last) {
            activate_row(unit.z.data() + v * width);
            if (certified) next.err[sz(w)] = f->slope * vector_error(v) * kSafety;
        }
        next.origin[sz(w)] = unit.origin[sz(v)];
        next.path[sz(w)] = unit.path[sz(v)];
        next.seg[sz(w)] = unit.seg[sz(v)];
        next.t[sz(w)] = unit.t[sz(v)];
        next.link[sz(w)] = unit.link[sz(v)];
        std::copy_n(unit.bits.data() + v * words_, words_, next.bits.data() + w * words_);
        ++w;
        const Index c_begin = crossing_begin_[sz(v)];
        const Index c_end = crossing_begin_[sz(v) + 1];
        if (c_begin == c_end) continue;
        const double* za = unit.z.data() + v * width;
        const double* zb = za + width;
        // The interval lies in the segment of its start; its end is either in the
        // same segment or the next segment's first point (t = 0 there, 1 here).
        const double ta = unit.t[sz(v)];
        const double tb = unit.seg[sz(v) + 1] == unit.seg[sz(v)] ? unit.t[sz(v) + 1] : 1.0;
        // Update the new vertices from the ends when its cost, 2 column updates per
        // crossing and 3 passes over a row of the next layer per vertex, is well below the
        // dense product's (the map's entries per vertex).
        bool update = false;
        if (can_update) {
            Index groups = 1, column_entries = 0;
            for (Index k = c_begin; k < c_end; ++k) {
                groups += k > c_begin && !crossings[sz(k)].joins ? 1 : 0;
                column_entries += next_columns->count(crossings[sz(k)].unit, next_out);
            }
            update = options_.update_new_vertices == 2 ||
                     kUpdateCost * (2 * column_entries + 3 * groups * next_out) <=
                         groups * next_columns->entries;
        }
        // Certified and updated, the new vertices' activations are not needed: the next
        // layer's values and bounds there come from the ends alone (update_rows).
        const bool activate = !last && !(update && certified);
        // Certified: the norms of the ends' values and of their difference, and errors.
        double norm_a = 0.0, norm_b = 0.0, norm_diff = 0.0, error_a = 0.0, error_b = 0.0;
        if (certified && activate) {
            row_norms3(za, zb, width, norm_a, norm_b, norm_diff);
            const double up = kSafety * (1.0 + gamma_of(static_cast<double>(width) + 3.0));
            norm_a = std::sqrt(norm_a) * up;
            norm_b = std::sqrt(norm_b) * up;
            norm_diff = std::sqrt(norm_diff) * up;
            error_a = vector_error(v);
            error_b = vector_error(v + 1);
        }
        if (update) pending.a.push_back(w - 1);
        double previous_tau = 0.0;
        Index c = c_begin;
        while (c < c_end) {
            // Certified: crossings are in exact order; their float fractions are made
            // non-decreasing (a fraction out of order lies within its bounds' reach).
            const double tau =
                certified ? std::max(crossings[sz(c)].tau, previous_tau) : crossings[sz(c)].tau;
            previous_tau = tau;
            Index group_end = c + 1;
            while (group_end < c_end && crossings[sz(group_end)].joins) ++group_end;

            if (!activate && !last) {
                next.scale[sz(w)] = 0.0;  // not read: the update gives the bounds
                next.err[sz(w)] = 0.0;
            } else if (!last) {
                double* z_new = interpolated_.data();
                for (Index j = 0; j < width; ++j) z_new[j] = za[j] + tau * (zb[j] - za[j]);
                // Neurons crossing in this interval keep the side they must be on
                // here, whatever rounding did to the interpolated value.
                for (Index k = c_begin; k < c_end; ++k) {
                    const Index j = crossings[sz(k)].unit;
                    const bool here = k >= c && k < group_end;
                    const double side = k < c ? zb[j] : za[j];
                    if (here || z_new[j] * side < 0.0) z_new[j] = 0.0;
                }
                activate_row(z_new);
                if (certified) {
                    // z(t*) = (1 - t*) z_a* + t* z_b*: the ends' errors, the fraction's
                    // (|tau - t*| <= dtau), the interpolation's rounding; setting values
                    // to the side or zero they are known to have only brings them closer.
                    const Crossing& x = crossings[sz(c)];
                    const double dtau = std::max(x.hi - tau, tau - x.lo);
                    const double error = kSafety * ((1.0 - tau) * error_a + tau * error_b +
                                                    dtau * (norm_diff + error_a + error_b) +
                                                    3.0 * kUnitRoundoff * (norm_a + norm_b));
                    next.err[sz(w)] = f->slope * error * kSafety;
                }
            }
            if (update) {
                const Crossing& x = crossings[sz(c)];
                const double dtau = certified ? std::max(x.hi - tau, tau - x.lo) : 0.0;
                pending.tau.push_back(tau);
                pending.dtau.push_back(dtau);
                for (Index k = c; k < group_end; ++k) {
                    const Index j = crossings[sz(k)].unit;
                    pending.neuron.push_back(j);
                    pending.coef_a.push_back(one_minus_slope * std::abs(za[j]));
                    pending.coef_b.push_back(one_minus_slope * std::abs(zb[j]));
                }
                pending.entry_begin.push_back(static_cast<Index>(pending.neuron.size()));
                pending.updated[sz(w)] = 1;
            }
            next.origin[sz(w)] = offset + crossings[sz(c)].unit;
            next.path[sz(w)] = unit.path[sz(v)];
            next.seg[sz(w)] = unit.seg[sz(v)];
            next.t[sz(w)] = ta + tau * (tb - ta);
            next.link[sz(w)] = 1;
            // Exactly distinct crossings that float64 places at one point (the vertex
            // before, or the interval's end): one breakpoint in the result.
            if (certified && (next.t[sz(w)] <= next.t[sz(w) - 1] || next.t[sz(w)] >= tb))
                count(unit.path[sz(v)], 2, group_end - c);
            // The pattern beyond the crossing: the previous piece's, with the crossing
            // neurons flipped.
            Word* row = next.bits.data() + w * words_;
            std::copy_n(next.bits.data() + (w - 1) * words_, words_, row);
            for (Index k = c; k < group_end; ++k) flip_bit(row, offset + crossings[sz(k)].unit);
            ++w;
            c = group_end;
        }
        if (update) {
            pending.b.push_back(w);  // the row v + 1 gets next
            pending.group_begin.push_back(static_cast<Index>(pending.tau.size()));
            // Certified: slope * ||z(b) - z(a)|| of this layer, for the fraction's error
            // (docs/numerics.md §3, "Values at new vertices").
            double spread = 0.0;
            if (certified) {
                double na = 0.0, nb = 0.0, nd = 0.0;
                row_norms3(za, zb, width, na, nb, nd);
                spread = f->slope * std::sqrt(nd) * kSafety *
                         (1.0 + gamma_of(static_cast<double>(width) + 3.0));
            }
            pending.spread.push_back(spread);
        }
    }
    if (!pending.empty())
        pending.updated.resize(sz(w));
    else
        pending.updated.clear();
    std::swap(unit, next);
}

}  // namespace lrcore::detail
