// count_1d: the checks, the split of the paths into tasks, the tasks on worker threads,
// and the tasks' vertex sequences joined path by path and assembled (docs/core-layout.md).
#include "lrcore/path1d.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <memory>
#include <stdexcept>
#include <utility>

#include "bits.hpp"
#include "index.hpp"
#include "path1d_assemble.hpp"
#include "path1d_subdivide.hpp"
#include "path1d_units.hpp"
#include "simd.hpp"

namespace lrcore {

namespace {

using detail::Chunk;
using detail::segment_count;
using detail::sz;
using detail::VertexSeq;

// Dense-product flops (a lower bound) above which a call starts all its threads at once.
constexpr double kShareFlops = 1e7;

void check_arguments(const std::vector<PathSpec>& paths, const Path1DOptions& options) {
    for (const PathSpec& spec : paths) {
        if (spec.num_points < 2 || spec.points == nullptr)
            throw std::invalid_argument("count_1d: every path needs at least 2 points");
    }
    if (!options.certified && (!(options.rtol >= 0.0) || !std::isfinite(options.rtol)))
        throw std::invalid_argument("count_1d: rtol must be a finite number >= 0");
    if (options.max_pieces < 1) throw std::invalid_argument("count_1d: max_pieces must be >= 1");
}

// Splits all segments of all paths into tasks of about `per_task` segments; a task may
// hold pieces of several short paths so that its dense products are large enough.
std::vector<std::vector<Chunk>> make_tasks(const std::vector<PathSpec>& paths, Index per_task) {
    std::vector<std::vector<Chunk>> tasks;
    std::vector<Chunk> current;
    Index filled = 0;
    for (Index p = 0; p < static_cast<Index>(paths.size()); ++p) {
        const Index segments = segment_count(paths[sz(p)]);
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

// Without hidden neurons a task's vertices are its polyline points: one piece per path.
VertexSeq unsubdivided(const std::vector<Chunk>& chunks) {
    VertexSeq seq;
    for (const Chunk& chunk : chunks) {
        for (Index s = chunk.seg_begin; s <= chunk.seg_end; ++s) {
            seq.path.push_back(chunk.path);
            seq.seg.push_back(std::min(s, chunk.seg_end - 1));
            seq.t.push_back(s == chunk.seg_end ? 1.0 : 0.0);
            seq.link.push_back(s == chunk.seg_end ? 0 : 1);
        }
    }
    return seq;
}

// The segment lengths of every path (detail::segment_lengths), for assembly.
struct PathLengths {
    std::vector<double> lengths;
    std::vector<Index> offsets;
    const double* of(Index p) const { return lengths.data() + offsets[sz(p)]; }
};

// Assembles the paths of one task's output that lie wholly in it (whole[p]) into their
// results, marking them done: in the worker that made the output, while it is in cache.
void assemble_whole_paths(const Network& net, const std::vector<PathSpec>& paths,
                          const PathLengths& lengths, const VertexSeq& seq,
                          const std::vector<char>& whole, bool want_patterns,
                          std::vector<Path1DResult>& results, std::vector<char>& done,
                          detail::AssembleScratch& scratch) {
    for (Index v = 0; v < seq.size(); ++v) {
        const Index p = seq.path[sz(v)];
        Index end = v;
        while (end + 1 < seq.size() && seq.path[sz(end) + 1] == p) ++end;
        if (whole[sz(p)]) {
            detail::assemble_path(net, paths[sz(p)], lengths.of(p), seq, v, end, want_patterns,
                                  results[sz(p)], scratch);
            done[sz(p)] = 1;
        }
        v = end;
    }
}

// Joins the task outputs path by path and assembles each path's result that is not done
// yet: where a path's chunk ends and its next chunk begins, the shared polyline point
// appears twice; the second copy is kept. A path that lies within one task's output is
// assembled in place, without the copy.
void join_and_assemble(const Network& net, const std::vector<PathSpec>& paths,
                       const PathLengths& lengths, const std::vector<VertexSeq>& outputs,
                       bool want_patterns, std::vector<Path1DResult>& results,
                       const std::vector<char>& done) {
    const Index words = detail::words_for(net.num_neurons());
    // Per path: the number of task outputs holding its vertices.
    std::vector<Index> runs(paths.size(), 0);
    for (const VertexSeq& seq : outputs) {
        Index previous = -1;
        for (const Index p : seq.path) {
            if (p != previous) ++runs[sz(p)];
            previous = p;
        }
    }
    detail::AssembleScratch scratch;
    VertexSeq joined;
    joined.words = words;
    Index current = -1;
    auto finish = [&](Index p) {
        if (p < 0) return;
        detail::assemble_path(net, paths[sz(p)], lengths.of(p), joined, 0, joined.size() - 1,
                              want_patterns, results[sz(p)], scratch);
    };
    for (const VertexSeq& seq : outputs) {
        for (Index v = 0; v < seq.size(); ++v) {
            const Index p = seq.path[sz(v)];
            if (runs[sz(p)] == 1) {
                finish(current);  // a path in several outputs before it
                current = -1;
                // The path's vertices are v..end in this output: no join needed.
                Index end = v;
                while (end + 1 < seq.size() && seq.path[sz(end) + 1] == p) ++end;
                if (!done[sz(p)])
                    detail::assemble_path(net, paths[sz(p)], lengths.of(p), seq, v, end,
                                          want_patterns, results[sz(p)], scratch);
                v = end;
                continue;
            }
            if (p != current) {
                finish(current);
                joined.clear();
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
}

}  // namespace

Index pattern_bytes(const Network& net) { return (net.num_neurons() + 7) / 8; }

#if defined(LRCORE_AVX2_DISPATCH)
namespace {

// path_extent's four lanes over row[0..dim) in AVX2: the running maxima of |x| (peak) and
// of |x - previous| (step, where previous is not null), and whether every |x| <= DBL_MAX.
// _mm256_max_pd(v, m) keeps m where v is NaN, as std::max(m, v) does. Returns the values
// done (a multiple of 4).
__attribute__((target("avx2"))) Index row_extent_avx2(const double* row, const double* previous,
                                                      Index dim, bool& finite, double* peak,
                                                      double* step) {
    const __m256d abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
    const __m256d largest = _mm256_set1_pd(std::numeric_limits<double>::max());
    __m256d p = _mm256_loadu_pd(peak), q = _mm256_loadu_pd(step);
    __m256d ok = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
    Index i = 0;
    for (; i + 4 <= dim; i += 4) {
        const __m256d x = _mm256_loadu_pd(row + i);
        const __m256d size = _mm256_and_pd(x, abs_mask);
        ok = _mm256_and_pd(ok, _mm256_cmp_pd(size, largest, _CMP_LE_OQ));
        p = _mm256_max_pd(size, p);
        if (previous != nullptr)
            q = _mm256_max_pd(
                _mm256_and_pd(_mm256_sub_pd(x, _mm256_loadu_pd(previous + i)), abs_mask), q);
    }
    _mm256_storeu_pd(peak, p);
    _mm256_storeu_pd(step, q);
    finite = finite && _mm256_movemask_pd(ok) == 0xf;
    return i;
}

}  // namespace
#endif

PathExtent path_extent(const std::vector<PathSpec>& paths, Index dim) {
    PathExtent extent;
    // Four lanes of each running maximum (independent chains; a maximum does not depend on
    // the order, and like std::max they skip NaN, which `finite` catches).
    bool finite = true;
    double peak[4] = {0.0, 0.0, 0.0, 0.0};
    constexpr double kMax = std::numeric_limits<double>::max();
    for (const PathSpec& spec : paths) {
        for (Index k = 0; k < spec.num_points; ++k) {
            const double* row = spec.points + k * dim;
            double step[4] = {0.0, 0.0, 0.0, 0.0};
            Index i = 0;
#if defined(LRCORE_AVX2_DISPATCH)
            if (detail::cpu_has_avx2())
                i = row_extent_avx2(row, k > 0 ? row - dim : nullptr, dim, finite, peak, step);
#endif
            for (; i + 4 <= dim; i += 4) {
                for (Index l = 0; l < 4; ++l) {
                    const double size = std::abs(row[i + l]);
                    finite &= size <= kMax;
                    peak[l] = std::max(peak[l], size);
                    if (k > 0) step[l] = std::max(step[l], std::abs(row[i + l] - row[i + l - dim]));
                }
            }
            for (; i < dim; ++i) {
                const double size = std::abs(row[i]);
                finite &= size <= kMax;
                peak[0] = std::max(peak[0], size);
                if (k > 0) step[0] = std::max(step[0], std::abs(row[i] - row[i - dim]));
            }
            const double largest = std::max(std::max(step[0], step[1]), std::max(step[2], step[3]));
            if (largest > 0.0) extent.shortest_step = std::min(extent.shortest_step, largest);
        }
    }
    extent.peak = std::max(std::max(peak[0], peak[1]), std::max(peak[2], peak[3]));
    if (!finite) extent.peak = std::numeric_limits<double>::quiet_NaN();
    return extent;
}

namespace {

// The first layer's values at every task's polyline points, from a few large products
// (blocks of kFirstLayerBlock points) instead of one small product per task: dgemm packs
// the layer's matrix once per product, which for 784->128 and 12 points a task cost about
// as much as the product (200 segments: 33 products of 12 rows took 2.2 ms against
// 1.3 ms for one of 400, one thread). Dense first layers, several tasks and tables of at
// most kFirstLayerBytes only; otherwise empty, and each task computes its own.
struct FirstLayerTable {
    std::vector<double> values;   // row i: the first layer at the i-th point, task by task
    std::vector<Index> task_row;  // task t's rows start at task_row[t]
    Index width = 0;
};

constexpr Index kFirstLayerBlock = 128;
constexpr double kFirstLayerBytes = 64.0 * 1024 * 1024;

FirstLayerTable first_layer_table(const Network& net, const std::vector<PathSpec>& paths,
                                  const std::vector<std::vector<Chunk>>& tasks, Index per_task,
                                  const Path1DOptions& options, const InterruptPoll& poll,
                                  bool share_at_once) {
    FirstLayerTable table;
    const AffineMap& map = net.layer(0);
    if (per_task < 2 || tasks.size() < 2 || dynamic_cast<const DenseAffine*>(&map) == nullptr)
        return table;
    const Index d = net.input_dim();
    const Index width = map.out_dim();
    table.task_row.reserve(tasks.size() + 1);
    Index rows = 0;
    for (const auto& chunks : tasks) {
        table.task_row.push_back(rows);
        for (const Chunk& chunk : chunks) rows += chunk.seg_end - chunk.seg_begin + 1;
    }
    table.task_row.push_back(rows);
    if (static_cast<double>(rows) * static_cast<double>(d + width) * sizeof(double) >
        kFirstLayerBytes) {
        table.task_row.clear();
        return table;
    }
    std::vector<const double*> points;
    points.reserve(sz(rows));
    for (const auto& chunks : tasks)
        detail::first_layer_points(paths, chunks, [&](Index path, Index point) {
            points.push_back(paths[sz(path)].points + point * d);
        });
    table.width = width;
    table.values.resize(sz(rows * width));
    const Index blocks = (rows + kFirstLayerBlock - 1) / kFirstLayerBlock;
    parallel_for(
        blocks, options.num_threads,
        [&](Index block, Index, const StopFlag&) {
            const Index begin = block * kFirstLayerBlock;
            const Index count = std::min(kFirstLayerBlock, rows - begin);
            thread_local std::vector<double> x;
            x.resize(sz(count * d));
            for (Index i = 0; i < count; ++i)
                std::copy_n(points[sz(begin + i)], d, x.data() + i * d);
            map.apply(x.data(), count, d, table.values.data() + begin * width, width);
        },
        poll, share_at_once);
    return table;
}

}  // namespace

std::vector<Path1DResult> count_1d(const Network& net, const std::vector<PathSpec>& paths,
                                   const Path1DOptions& options, const InterruptPoll& poll,
                                   Path1DStats* stats) {
    check_arguments(paths, options);

    Index total_segments = 0;
    for (const PathSpec& spec : paths) total_segments += segment_count(spec);
    // Enough tasks to balance many threads, few enough that each product is sizeable.
    // The split depends on the input only, never on the thread count, so results are
    // bit-for-bit the same however many threads run.
    // 32 tasks or more: on 200 segments through 784->[128]x3 tasks of 6 segments (and
    // their larger products) took 9% less time than tasks of 3.
    const Index per_task = std::clamp<Index>(total_segments / 32, 1, 32);
    const auto tasks = make_tasks(paths, per_task);
    // Every polyline point goes through every layer's product: a lower bound on the
    // work. Above about a millisecond of it, all threads start at once; below, the
    // calling thread's first tasks tell whether threads pay (parallel_for).
    double points = 0.0;
    for (const PathSpec& spec : paths) points += static_cast<double>(spec.num_points);
    double flops_per_point = 0.0;
    for (Index l = 0; l < net.num_hidden_layers(); ++l)
        flops_per_point += 2.0 * static_cast<double>(net.layer(l).in_dim()) *
                           static_cast<double>(net.layer(l).out_dim());
    const bool share_at_once = points * flops_per_point > kShareFlops;
    // Fewer tasks than threads (one long path through a CNN): the idle threads help
    // inside the convolutions.
    const Index threads = resolve_num_threads(options.num_threads);
    const Index task_count = std::max<Index>(static_cast<Index>(tasks.size()), 1);
    const ConvThreads conv_threads(
        static_cast<int>(task_count < threads ? threads / task_count : 1));

    std::atomic<Index> created{0};
    const Index num_hidden = net.num_hidden_layers();
    std::vector<std::atomic<Index>> vertices_per_layer(sz(std::max<Index>(num_hidden, 1)));
    for (auto& count : vertices_per_layer) count.store(0);
    std::vector<VertexSeq> outputs(tasks.size());
    // Per path: slow decisions, exact coincidences, unresolved crossings, uncertified
    // decisions.
    std::vector<std::atomic<Index>> counters(detail::kCounters * paths.size());
    for (auto& count : counters) count.store(0);

    std::vector<Path1DResult> results(paths.size());
    PathLengths lengths;
    detail::segment_lengths(paths, net.input_dim(), lengths.lengths, lengths.offsets);
    // Paths in one chunk (all their segments in one task) are assembled by that task's
    // worker; `done` marks them.
    std::vector<char> whole(paths.size(), 0), done(paths.size(), 0);
    for (const auto& chunks : tasks)
        for (const Chunk& chunk : chunks)
            whole[sz(chunk.path)] =
                chunk.seg_begin == 0 && chunk.seg_end == segment_count(paths[sz(chunk.path)]);

    if (num_hidden > 0) {
        const FirstLayerTable first =
            first_layer_table(net, paths, tasks, per_task, options, poll, share_at_once);
        // One subdivider per worker thread, reused task after task.
        std::vector<std::unique_ptr<detail::Subdivider>> workers(
            sz(resolve_num_threads(options.num_threads)));
        std::vector<detail::AssembleScratch> scratches(workers.size());
        parallel_for(
            static_cast<Index>(tasks.size()), options.num_threads,
            [&](Index task, Index worker, const StopFlag& stop) {
                auto& subdivider = workers[sz(worker)];
                if (!subdivider)
                    subdivider = std::make_unique<detail::Subdivider>(net, paths, options, created,
                                                                      vertices_per_layer, counters);
                const double* first_rows =
                    first.values.empty()
                        ? nullptr
                        : first.values.data() + first.task_row[sz(task)] * first.width;
                outputs[sz(task)] = subdivider->run(tasks[sz(task)], stop, first_rows);
                assemble_whole_paths(net, paths, lengths, outputs[sz(task)], whole,
                                     options.want_patterns, results, done, scratches[sz(worker)]);
            },
            poll, share_at_once);
    } else {
        for (std::size_t i = 0; i < tasks.size(); ++i) outputs[i] = unsubdivided(tasks[i]);
    }

    join_and_assemble(net, paths, lengths, outputs, options.want_patterns, results, done);
    for (std::size_t p = 0; p < paths.size(); ++p) {
        const std::size_t at = sz(detail::kCounters) * p;
        results[p].slow_decisions = counters[at].load();
        results[p].exact_coincidences = counters[at + 1].load();
        results[p].unresolved_crossings = counters[at + 2].load();
        results[p].uncertified_decisions = counters[at + 3].load();
    }

    if (stats != nullptr) {
        stats->vertices_per_layer.assign(sz(num_hidden), 0);
        for (Index l = 0; l < num_hidden; ++l)
            stats->vertices_per_layer[sz(l)] = vertices_per_layer[sz(l)].load();
    }
    return results;
}

}  // namespace lrcore
