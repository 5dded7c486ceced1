// Subdivision by evaluation along polylines (DESIGN.md §2).
//
// A work unit is a list of vertices along one or more polyline pieces. Consecutive vertices
// v, v+1 with link[v] set bound an interval on which every hidden layer processed so far
// has a constant sign pattern, so the next layer's pre-activations are affine on it: they
// are computed at all vertices by one dense product, every sign change between the two
// ends of an interval is a crossing found by linear interpolation, and the interval is cut
// there. After the last hidden layer, each interval carries its full pattern; breakpoints
// are the vertices whose two intervals' patterns differ.
#include "lrcore/path1d.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <utility>

#include "detail.hpp"

namespace lrcore {

namespace {

using detail::Buffer;
using detail::kWordBits;
using detail::pack_pattern;
using detail::sz;
using detail::Word;
using detail::words_for;

// Vertices and intervals of one work unit. Row v of `bits` is the pattern of the
// interval (v, v + 1); it is meaningless where link[v] is 0.
struct Unit {
    Index width = 0;                   // width of the layer whose values `z` holds
    Buffer<double> z;                  // V × width pre-activations of the current layer
    Buffer<double> scale;              // V: ||input of the current layer||_2
    Buffer<double> dot;                // V: <input at v, input at v + 1> of the current layer
    Buffer<Index> path;                // V: path id
    Buffer<Index> seg;                 // V: segment of the path
    Buffer<double> t;                  // V: parameter within the segment, in [0, 1]
    Buffer<std::uint8_t> link;         // V: interval (v, v + 1) exists
    Buffer<Word> bits;                 // V × words: pattern of interval (v, v + 1)
    bool duplicates_previous = false;  // first vertex repeats the previous unit's last

    Index size() const { return static_cast<Index>(t.size()); }
};

// Vertices in path order with their interval patterns: what a task hands to assembly.
struct VertexSeq {
    std::vector<Index> path, seg;
    std::vector<double> t;
    std::vector<std::uint8_t> link;
    std::vector<Word> bits;
    Index words = 0;

    Index size() const { return static_cast<Index>(t.size()); }

    void pop_back() {
        path.pop_back();
        seg.pop_back();
        t.pop_back();
        link.pop_back();
        bits.resize(bits.size() - sz(words));
    }

    void append(const Unit& unit) {
        if (unit.duplicates_previous && size() > 0) pop_back();
        path.insert(path.end(), unit.path.begin(), unit.path.end());
        seg.insert(seg.end(), unit.seg.begin(), unit.seg.end());
        t.insert(t.end(), unit.t.begin(), unit.t.end());
        link.insert(link.end(), unit.link.begin(), unit.link.end());
        bits.insert(bits.end(), unit.bits.begin(), unit.bits.end());
    }
};

// Consecutive segments [seg_begin, seg_end) of one path.
struct Chunk {
    Index path, seg_begin, seg_end;
};

struct Crossing {
    double tau;          // fraction of the interval at which the neuron's pre-activation is zero
    Index unit;          // neuron within the layer
    bool joins = false;  // shares the vertex of the crossing before it
};

class Subdivider {
public:
    Subdivider(const Network& net, const std::vector<PathSpec>& paths, const Path1DOptions& options,
               std::atomic<Index>& created, std::vector<std::atomic<Index>>& vertices_per_layer)
        : net_(net),
          paths_(paths),
          options_(options),
          created_(created),
          vertices_per_layer_(vertices_per_layer),
          words_(words_for(net.num_neurons())) {}

    VertexSeq run(const std::vector<Chunk>& chunks, const StopFlag& stop) {
        VertexSeq out;
        out.words = words_;
        Unit unit = initial_unit(chunks);
        evaluate_first_layer(unit);
        process(std::move(unit), 0, out, stop);
        return out;
    }

private:
    const Network& net_;
    const std::vector<PathSpec>& paths_;
    const Path1DOptions& options_;
    std::atomic<Index>& created_;
    std::vector<std::atomic<Index>>& vertices_per_layer_;
    Index words_;
    // Scratch reused across layers and tasks of one worker thread.
    Buffer<double> activated_;
    Buffer<double> input_points_;
    std::vector<Index> crossing_begin_;
    std::vector<Crossing> crossings_;
    Buffer<double> interpolated_;
    Unit spare_;

    Unit initial_unit(const std::vector<Chunk>& chunks) const {
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
        unit.bits.assign(sz(unit.size() * words_), 0);
        return unit;
    }

    // Layer 0 is evaluated at the polyline's own points only: every later vertex lies
    // inside a segment, where layer 0 is affine, so this composes the first affine map
    // with the path once and the input dimension costs nothing after it.
    void evaluate_first_layer(Unit& unit) {
        const Index d = net_.input_dim();
        const Index n = unit.size();
        Buffer<double>& x = input_points_;
        x.resize(sz(n * d));
        unit.scale.resize(sz(n));
        for (Index v = 0; v < n; ++v) {
            const PathSpec& spec = paths_[sz(unit.path[sz(v)])];
            Index point = unit.seg[sz(v)] + (unit.t[sz(v)] > 0.0 ? 1 : 0);
            if (point == spec.num_points) point = 0;  // end of a closed path's last segment
            const double* src = spec.points + point * d;
            std::copy(src, src + d, x.begin() + v * d);
            double sum = 0.0;
            for (Index k = 0; k < d; ++k) sum += src[k] * src[k];
            unit.scale[sz(v)] = std::sqrt(sum);
        }
        neighbour_dots(x.data(), n, d, unit.dot);
        const AffineMap& map = net_.layer(0);
        unit.width = map.out_dim();
        unit.z.resize(sz(n * unit.width));
        map.apply(x.data(), n, d, unit.z.data(), unit.width);
        vertices_per_layer_[0].fetch_add(n, std::memory_order_relaxed);
    }

    // dot[v] = <row v, row v + 1> of n rows of `width` values: with the rows' norms it gives
    // the norm of the layer's input anywhere inside interval v (the input is affine there).
    static void neighbour_dots(const double* rows, Index n, Index width, Buffer<double>& dot) {
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

    // Values of hidden layer `layer` at every vertex of the unit: one dense product of
    // the previous layer's activations, which `unit.z` holds on entry.
    void evaluate_next_layer(Unit& unit, Index layer) {
        const AffineMap& map = net_.layer(layer);
        const Index n = unit.size();
        neighbour_dots(unit.z.data(), n, unit.width, unit.dot);
        activated_.resize(sz(n * map.out_dim()));
        map.apply(unit.z.data(), n, unit.width, activated_.data(), map.out_dim());
        unit.z.swap(activated_);
        unit.width = map.out_dim();
        vertices_per_layer_[sz(layer)].fetch_add(n, std::memory_order_relaxed);
    }

    void process(Unit unit, Index layer, VertexSeq& out, const StopFlag& stop) {
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
    std::pair<Unit, Unit> split(Unit unit) const {
        const Index n = unit.size();
        const Index m = n / 2;
        const Index w = unit.width;
        Unit right;
        right.width = w;
        right.duplicates_previous = true;
        right.z.assign(unit.z.begin() + m * w, unit.z.end());
        right.scale.assign(unit.scale.begin() + m, unit.scale.end());
        right.path.assign(unit.path.begin() + m, unit.path.end());
        right.seg.assign(unit.seg.begin() + m, unit.seg.end());
        right.t.assign(unit.t.begin() + m, unit.t.end());
        right.link.assign(unit.link.begin() + m, unit.link.end());
        right.bits.assign(unit.bits.begin() + m * words_, unit.bits.end());

        unit.z.resize(sz((m + 1) * w));
        unit.scale.resize(sz(m + 1));
        unit.path.resize(sz(m + 1));
        unit.seg.resize(sz(m + 1));
        unit.t.resize(sz(m + 1));
        unit.link.resize(sz(m + 1));
        unit.link[sz(m)] = 0;  // the interval (m, m + 1) belongs to the right half
        unit.bits.resize(sz((m + 1) * words_));
        return {std::move(unit), std::move(right)};
    }

    // Sets layer `layer`'s pattern bits on every interval and cuts intervals where one of
    // its neurons changes sign. On return `unit.z` holds the layer's activations (the input
    // of the next dense product) and `unit.scale` their norms; after the last hidden layer
    // no values are needed any more and only positions and patterns are kept.
    void subdivide(Unit& unit, Index layer, bool last) {
        const Index n = unit.size();
        const Index width = unit.width;
        const AffineMap& map = net_.layer(layer);
        const Index offset = net_.neuron_offset(layer);
        const Activation act = net_.activation(layer);
        const Index neurons = net_.neurons(layer);  // the rest are linear units

        // Values within rounding error of zero are zero: the vertex lies on that
        // neuron's zero set (a path point on a hyperplane, a touching neuron).
        detail::snap_zeros(unit.z.data(), n, width, neurons, unit.scale.data(), map, options_.rtol);

        // Pattern bits of the layer (value at the interval's start, or at its end where
        // the start is on the zero set) and the crossings, interval by interval.
        std::vector<Index>& crossing_begin = crossing_begin_;
        std::vector<Crossing>& crossings = crossings_;
        crossing_begin.assign(sz(n) + 1, 0);
        crossings.clear();
        for (Index v = 0; v < n; ++v) {
            crossing_begin[sz(v)] = static_cast<Index>(crossings.size());
            if (!unit.link[sz(v)]) continue;
            const double* za = unit.z.data() + v * width;
            const double* zb = za + width;
            Word* row = unit.bits.data() + v * words_;
            for (Index j0 = 0; j0 < neurons; j0 += kWordBits) {
                const Index j1 = std::min(neurons, j0 + kWordBits);
                Word on = 0;
                Word cross = 0;
                for (Index j = j0; j < j1; ++j) {
                    const double a = za[j];
                    const double b = zb[j];
                    const Word bit = Word{1} << (j - j0);
                    on |= ((a > 0.0) | ((a == 0.0) & (b > 0.0))) ? bit : 0;
                    cross |= (((a > 0.0) & (b < 0.0)) | ((a < 0.0) & (b > 0.0))) ? bit : 0;
                }
                // Place the 64 local bits at the layer's offset in the pattern row.
                const Index first = offset + j0;
                const Index shift = first % kWordBits;
                row[first / kWordBits] |= on << shift;
                if (shift != 0 && first / kWordBits + 1 < words_)
                    row[first / kWordBits + 1] |= on >> (kWordBits - shift);
                while (cross != 0) {
                    const Index j = j0 + static_cast<Index>(__builtin_ctzll(cross));
                    cross &= cross - 1;
                    crossings.push_back({za[j] / (za[j] - zb[j]), j, false});
                }
            }
        }
        crossing_begin[sz(n)] = static_cast<Index>(crossings.size());

        // Order the crossings of each interval. A crossing joins the previous one's vertex
        // when its neuron is within the zero tolerance there (the vertex lies on both
        // zero sets: concurrent or coincident hyperplanes), so no sliver piece appears.
        const std::vector<double>& row_norms = map.row_norms();
        const std::vector<double>& abs_bias = map.abs_bias();
        Index added = 0;
        for (Index v = 0; v < n; ++v) {
            auto first = crossings.begin() + crossing_begin[sz(v)];
            auto last_crossing = crossings.begin() + crossing_begin[sz(v) + 1];
            if (first == last_crossing) continue;
            std::sort(first, last_crossing, [](const Crossing& x, const Crossing& y) {
                return x.tau < y.tau || (x.tau == y.tau && x.unit < y.unit);
            });
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
                const double scale = detail::norm_between(sa, sb, dot, group_tau, map.in_dim());
                it->joins =
                    it->tau == group_tau ||
                    std::abs(value) <= options_.rtol * (row_norms[sz(k)] * scale + abs_bias[sz(k)]);
                if (!it->joins) {
                    group_tau = it->tau;
                    ++added;
                }
            }
        }
        const Index total = created_.fetch_add(added) + added;
        if (total > options_.max_pieces) {
            throw LimitExceeded("lrcore: more than max_pieces=" +
                                std::to_string(options_.max_pieces) + " pieces were created (" +
                                std::to_string(total) + " so far); raise max_pieces to allow more");
        }
        // Every piece keeps its pattern row and position until the result is assembled,
        // and the result holds them again (patterns packed when asked for).
        const double bytes_per_piece =
            static_cast<double>(words_) * 8.0 + 48.0 +
            (options_.want_patterns ? static_cast<double>(words_) * 8.0 : 0.0);
        if (options_.max_memory > 0.0 &&
            static_cast<double>(total) * bytes_per_piece > options_.max_memory) {
            throw LimitExceeded("lrcore: the pieces would need more than max_memory=" +
                                detail::format_bytes(options_.max_memory) + " (" +
                                std::to_string(total) + " pieces so far, about " +
                                detail::format_bytes(static_cast<double>(total) * bytes_per_piece) +
                                "); raise max_memory, or count fewer or shorter paths per call");
        }

        Unit& next = spare_;
        next.width = width;
        next.duplicates_previous = unit.duplicates_previous;
        const Index new_n = n + added;
        if (!last) {
            next.z.resize(sz(new_n * width));
            next.scale.resize(sz(new_n));
        }
        next.path.resize(sz(new_n));
        next.seg.resize(sz(new_n));
        next.t.resize(sz(new_n));
        next.link.resize(sz(new_n));
        next.bits.resize(sz(new_n * words_));
        interpolated_.resize(sz(width));

        Index w = 0;  // write position
        // Writes the activations of pre-activation row `z` as row w, with their norm.
        auto activate_row = [&](const double* z) {
            next.scale[sz(w)] = act.apply_row(z, next.z.data() + w * width, width, neurons);
        };

        for (Index v = 0; v < n; ++v) {
            if (!last) activate_row(unit.z.data() + v * width);
            next.path[sz(w)] = unit.path[sz(v)];
            next.seg[sz(w)] = unit.seg[sz(v)];
            next.t[sz(w)] = unit.t[sz(v)];
            next.link[sz(w)] = unit.link[sz(v)];
            std::copy_n(unit.bits.data() + v * words_, words_, next.bits.data() + w * words_);
            ++w;
            const Index c_begin = crossing_begin[sz(v)];
            const Index c_end = crossing_begin[sz(v) + 1];
            if (c_begin == c_end) continue;
            const double* za = unit.z.data() + v * width;
            const double* zb = za + width;
            // The interval lies in the segment of its start; its end is either in the
            // same segment or the next segment's first point (t = 0 there, 1 here).
            const double ta = unit.t[sz(v)];
            const double tb = unit.seg[sz(v) + 1] == unit.seg[sz(v)] ? unit.t[sz(v) + 1] : 1.0;
            Index c = c_begin;
            while (c < c_end) {
                const double tau = crossings[sz(c)].tau;
                Index group_end = c + 1;
                while (group_end < c_end && crossings[sz(group_end)].joins) ++group_end;

                if (!last) {
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
                }
                next.path[sz(w)] = unit.path[sz(v)];
                next.seg[sz(w)] = unit.seg[sz(v)];
                next.t[sz(w)] = ta + tau * (tb - ta);
                next.link[sz(w)] = 1;
                // The pattern beyond the crossing: the previous piece's, with the crossing
                // neurons flipped.
                Word* row = next.bits.data() + w * words_;
                std::copy_n(next.bits.data() + (w - 1) * words_, words_, row);
                for (Index k = c; k < group_end; ++k) {
                    const Index bit = offset + crossings[sz(k)].unit;
                    row[bit / kWordBits] ^= Word{1} << (bit % kWordBits);
                }
                ++w;
                c = group_end;
            }
        }
        std::swap(unit, next);
    }
};

Index position_count(const PathSpec& spec) {
    return spec.closed ? spec.num_points : spec.num_points - 1;
}

// Splits all segments of all paths into tasks of about `per_task` segments; a task may
// hold pieces of several short paths so that its dense products are large enough.
std::vector<std::vector<Chunk>> make_tasks(const std::vector<PathSpec>& paths, Index per_task) {
    std::vector<std::vector<Chunk>> tasks;
    std::vector<Chunk> current;
    Index filled = 0;
    for (Index p = 0; p < static_cast<Index>(paths.size()); ++p) {
        const Index segments = position_count(paths[sz(p)]);
        Index s = 0;
        while (s < segments) {
            const Index take = std::min(segments - s, per_task - filled);
            current.push_back({p, s, s + take});
            s += take;
            filled += take;
            if (filled == per_task) {
                tasks.push_back(std::move(current));
                current.clear();
                filled = 0;
            }
        }
    }
    if (!current.empty()) tasks.push_back(std::move(current));
    return tasks;
}

// Turns one path's vertex sequence into breakpoints, pieces and patterns.
void assemble(const Network& net, const PathSpec& spec, const VertexSeq& seq, Index first,
              Index last, bool want_patterns, Path1DResult& result) {
    const Index d = net.input_dim();
    const Index segments = position_count(spec);
    std::vector<double> seg_start(sz(segments) + 1, 0.0);
    for (Index s = 0; s < segments; ++s) {
        const double* a = spec.points + s * d;
        const double* b = spec.points + ((s + 1) % spec.num_points) * d;
        double sum = 0.0;
        for (Index k = 0; k < d; ++k) sum += (b[k] - a[k]) * (b[k] - a[k]);
        seg_start[sz(s) + 1] = seg_start[sz(s)] + std::sqrt(sum);
    }
    result.length = seg_start[sz(segments)];

    const Index words = seq.words;
    const Index num_bytes = pattern_bytes(net);
    const Word* bits = seq.bits.data();
    auto interval = [&](Index v) { return bits + v * words; };
    auto differ = [&](Index u, Index v) {
        // Without neurons (no hidden layer) the rows are empty and bits.data() may be null.
        return words > 0 && std::memcmp(interval(u), interval(v), sz(words) * sizeof(Word)) != 0;
    };

    // Vertices first..last (inclusive), intervals first..last-1. Intervals of zero
    // length (repeated points, zero-length segments) are points, not pieces: they take
    // no part in the comparison of neighbouring patterns.
    auto position = [&](Index v) {
        const Index s = seq.seg[sz(v)];
        return seg_start[sz(s)] + seq.t[sz(v)] * (seg_start[sz(s) + 1] - seg_start[sz(s)]);
    };
    std::vector<Index> pieces_of_path;  // intervals of positive length
    for (Index v = first; v < last; ++v)
        if (position(v + 1) > position(v)) pieces_of_path.push_back(v);
    if (pieces_of_path.empty()) pieces_of_path.push_back(first);

    std::vector<Index> break_vertex;  // vertex of each breakpoint
    std::vector<Index> before;        // interval just before it
    const Index real = static_cast<Index>(pieces_of_path.size());
    if (spec.closed && real > 1 && differ(pieces_of_path.back(), pieces_of_path.front())) {
        break_vertex.push_back(pieces_of_path.front());
        before.push_back(pieces_of_path.back());
    }
    for (Index i = 1; i < real; ++i) {
        const Index previous = pieces_of_path[sz(i - 1)];
        const Index current = pieces_of_path[sz(i)];
        if (differ(previous, current)) {
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
        const Word* a = interval(before[sz(i)]);
        const Word* b = interval(v);
        Index layer = 0;
        for (Index word = 0; word < words; ++word) {
            Word diff = a[word] ^ b[word];
            while (diff != 0) {
                const Index bit = word * kWordBits + static_cast<Index>(__builtin_ctzll(diff));
                diff &= diff - 1;
                while (net.neuron_offset(layer + 1) <= bit) ++layer;
                result.flip_neurons.push_back(layer);
                result.flip_neurons.push_back(bit - net.neuron_offset(layer));
            }
        }
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

    std::vector<Index> order(piece_interval.size());
    std::iota(order.begin(), order.end(), Index{0});
    auto less = [&](Index x, Index y) {
        return words > 0 &&
               std::memcmp(interval(piece_interval[sz(x)]), interval(piece_interval[sz(y)]),
                           sz(words) * sizeof(Word)) < 0;
    };
    std::sort(order.begin(), order.end(), less);
    Index distinct = order.empty() ? 0 : 1;
    for (std::size_t i = 1; i < order.size(); ++i)
        if (less(order[i - 1], order[i])) ++distinct;
    result.num_distinct = distinct;

    if (want_patterns) {
        result.patterns.resize(sz(result.num_pieces * num_bytes));
        for (Index i = 0; i < result.num_pieces; ++i)
            pack_pattern(interval(piece_interval[sz(i)]), num_bytes,
                         result.patterns.data() + i * num_bytes);
    }
}

}  // namespace

Index pattern_bytes(const Network& net) { return (net.num_neurons() + 7) / 8; }

std::vector<Path1DResult> count_1d(const Network& net, const std::vector<PathSpec>& paths,
                                   const Path1DOptions& options, const InterruptPoll& poll,
                                   Path1DStats* stats) {
    for (const PathSpec& spec : paths) {
        if (spec.num_points < 2 || spec.points == nullptr)
            throw std::invalid_argument("count_1d: every path needs at least 2 points");
    }
    if (!(options.rtol >= 0.0) || !std::isfinite(options.rtol))
        throw std::invalid_argument("count_1d: rtol must be a finite number >= 0");

    Index total_segments = 0;
    for (const PathSpec& spec : paths) total_segments += position_count(spec);
    // Enough tasks to balance many threads, few enough that each product is sizeable.
    // The split depends on the input only, never on the thread count, so results are
    // bit-for-bit the same however many threads run.
    const Index per_task = std::clamp<Index>(total_segments / 64, 1, 32);
    const auto tasks = make_tasks(paths, per_task);

    std::atomic<Index> created{0};
    const Index num_hidden = net.num_hidden_layers();
    std::vector<std::atomic<Index>> vertices_per_layer(sz(std::max<Index>(num_hidden, 1)));
    for (auto& count : vertices_per_layer) count.store(0);
    std::vector<VertexSeq> outputs(tasks.size());

    if (num_hidden > 0) {
        std::vector<std::unique_ptr<Subdivider>> workers(
            sz(resolve_num_threads(options.num_threads)));
        parallel_for(
            static_cast<Index>(tasks.size()), options.num_threads,
            [&](Index task, Index worker, const StopFlag& stop) {
                auto& subdivider = workers[sz(worker)];
                if (!subdivider)
                    subdivider = std::make_unique<Subdivider>(net, paths, options, created,
                                                              vertices_per_layer);
                outputs[sz(task)] = subdivider->run(tasks[sz(task)], stop);
            },
            poll);
    } else {
        // No hidden neurons: one piece per path; vertices are the polyline points.
        for (std::size_t i = 0; i < tasks.size(); ++i) {
            VertexSeq& seq = outputs[i];
            for (const Chunk& chunk : tasks[i]) {
                for (Index s = chunk.seg_begin; s <= chunk.seg_end; ++s) {
                    seq.path.push_back(chunk.path);
                    seq.seg.push_back(std::min(s, chunk.seg_end - 1));
                    seq.t.push_back(s == chunk.seg_end ? 1.0 : 0.0);
                    seq.link.push_back(s == chunk.seg_end ? 0 : 1);
                }
            }
        }
    }

    // Join the task outputs path by path: where a path's chunk ends and its next chunk
    // begins, the shared polyline point appears twice; keep the second copy.
    std::vector<Path1DResult> results(paths.size());
    VertexSeq joined;
    joined.words = words_for(net.num_neurons());
    Index current = -1;
    auto finish = [&](Index p) {
        if (p < 0) return;
        assemble(net, paths[sz(p)], joined, 0, joined.size() - 1, options.want_patterns,
                 results[sz(p)]);
    };
    for (const VertexSeq& seq : outputs) {
        for (Index v = 0; v < seq.size(); ++v) {
            const Index p = seq.path[sz(v)];
            if (p != current) {
                finish(current);
                joined = VertexSeq();
                joined.words = words_for(net.num_neurons());
                current = p;
            } else if (!joined.link.back()) {
                joined.pop_back();
            }
            joined.path.push_back(p);
            joined.seg.push_back(seq.seg[sz(v)]);
            joined.t.push_back(seq.t[sz(v)]);
            joined.link.push_back(seq.link[sz(v)]);
            joined.bits.insert(joined.bits.end(), seq.bits.begin() + v * seq.words,
                               seq.bits.begin() + (v + 1) * seq.words);
        }
    }
    finish(current);

    if (stats != nullptr) {
        stats->vertices_per_layer.assign(sz(num_hidden), 0);
        for (Index l = 0; l < num_hidden; ++l)
            stats->vertices_per_layer[sz(l)] = vertices_per_layer[sz(l)].load();
    }
    return results;
}

}  // namespace lrcore
