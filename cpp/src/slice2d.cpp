// slice_2d: the checks, each slice's domain cut into tiles, the tiles built on worker
// threads, stitched slice by slice and assembled; a slice whose tiles disagree is
// recomputed in one piece (docs/core-layout.md).
#include "lrcore/slice2d.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <utility>

#include "bits.hpp"
#include "index.hpp"
#include "memory.hpp"
#include "slice2d_assemble.hpp"
#include "slice2d_face_builder.hpp"
#include "slice2d_partition.hpp"
#include "slice2d_stitch.hpp"
#include "slice2d_tiles.hpp"

namespace lrcore {

namespace {

using detail::FaceBuilder;
using detail::RawPartition;
using detail::sz;
using detail::Tile;

void check_arguments(const std::vector<SliceSpec>& slices, const Slice2DOptions& options) {
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
    if (!options.certified && (!(options.rtol >= 0.0) || !std::isfinite(options.rtol)))
        throw std::invalid_argument("slice_2d: rtol must be a finite number >= 0");
    if (options.max_regions < 1) throw std::invalid_argument("slice_2d: max_regions must be >= 1");
}

// One call: its phases run in order by run().
class SliceCall {
public:
    SliceCall(const Network& net, const std::vector<SliceSpec>& slices,
              const Slice2DOptions& options, const InterruptPoll& poll)
        : net_(net),
          slices_(slices),
          options_(options),
          poll_(poll),
          n_(slices.size()),
          words_(detail::words_for(net.num_neurons())),
          bytes_((net.num_neurons() + 7) / 8),
          tiles_(n_),
          parts_(n_),
          finished_(new std::atomic<Index>[n_]),
          finished_bytes_(new std::atomic<Index>[n_]),
          builders_(sz(resolve_num_threads(options.num_threads))),
          filters_(options.certified ? detail::filter_layers(net)
                                     : std::vector<detail::FilterLayer>()),
          results_(n_),
          whole_(n_, 0) {
        for (std::size_t i = 0; i < n_; ++i) finished_[i] = finished_bytes_[i] = 0;
    }

    std::vector<Slice2DResult> run() {
        plan_tiles();
        build_tiles();
        merge_tiles();
        recompute_whole();
        check_region_counts();
        return std::move(results_);
    }

private:
    const Network& net_;
    const std::vector<SliceSpec>& slices_;
    const Slice2DOptions& options_;
    const InterruptPoll& poll_;
    std::size_t n_;  // slices
    Index words_;    // of a pattern row
    Index bytes_;    // of a packed pattern
    std::vector<std::vector<Tile>> tiles_;
    std::vector<std::vector<RawPartition>> parts_;            // of each tile
    std::vector<std::pair<std::size_t, std::size_t>> tasks_;  // (slice, tile)
    std::unique_ptr<std::atomic<Index>[]> finished_;          // faces of a slice's built tiles
    std::unique_ptr<std::atomic<Index>[]> finished_bytes_;    // and the bytes they hold
    // One builder per worker thread, reused tile after tile.
    std::vector<std::unique_ptr<FaceBuilder>> builders_;
    std::vector<detail::FilterLayer> filters_;  // certified: the filter's constants
    std::vector<Slice2DResult> results_;
    std::vector<char> whole_;  // slices whose tiles disagreed

    // Every slice's tiles, and a task per tile.
    void plan_tiles() {
        for (std::size_t i = 0; i < n_; ++i) {
            tiles_[i] = detail::make_tiles(slices_[i].domain, slices_[i].cuts);
            parts_[i].resize(tiles_[i].size());
            for (std::size_t k = 0; k < tiles_[i].size(); ++k) tasks_.emplace_back(i, k);
        }
    }

    // The partition of `tile` of slice i, its cut lines read (in parallel, for the
    // merge), counted in the slice's finished faces and bytes. Task `task` of `count`: a
    // builder frees its memory after a task in the last round of tasks (it will probably
    // find no other task: the memory would only sit beside the finished partitions).
    RawPartition build(std::size_t i, const Tile& tile, Index worker, Index task, std::size_t count,
                       const StopFlag& stop) {
        const bool last_round =
            task + static_cast<Index>(builders_.size()) >= static_cast<Index>(count);
        std::unique_ptr<FaceBuilder>& builder = builders_[sz(worker)];
        if (!builder)
            builder = std::make_unique<FaceBuilder>(net_, options_,
                                                    options_.certified ? &filters_ : nullptr);
        RawPartition raw =
            builder->run(slices_[i], tile, finished_[i], finished_bytes_[i], last_round, stop);
        if (raw.slow_decisions > 0 && !faces_positive(raw)) {
            // Slow decisions beside fallback ones can disagree (a sign decided at a
            // vertex's exact point, its neighbour's by the zero tolerance), or the exact
            // order they give cannot be drawn in float coordinates where crossings were
            // merged at the plane's resolution: a face then winds the wrong way. Such a
            // tile is redone with the fallback alone (no passes), whose decisions agree
            // with each other, as before the slow path: not certified, and reported so
            // (docs/numerics.md §6).
            Slice2DOptions fallback = options_;
            fallback.max_slow_work = 0.0;
            FaceBuilder plain(net_, fallback, &filters_);
            raw = plain.run(slices_[i], tile, finished_[i], finished_bytes_[i], true, stop);
        }
        detail::read_cut_lines(tile, raw);
        finished_[i].fetch_add(raw.num_faces(), std::memory_order_relaxed);
        const std::size_t held =
            8 * (raw.st.size() + raw.outputs.size() + raw.face_start.size() +
                 raw.side_vertex.size() + raw.side_label.size() + raw.bits.size());
        finished_bytes_[i].fetch_add(static_cast<Index>(held), std::memory_order_relaxed);
        return raw;
    }

    // No face of the tile has negative area in its float coordinates (shoelace, centred
    // on the face's first vertex against cancellation; a sliver of area 0 is accepted,
    // as verify() reads the areas it gets).
    static bool faces_positive(const RawPartition& raw) {
        for (Index f = 0; f < raw.num_faces(); ++f) {
            const Index lo = raw.face_start[sz(f)], hi = raw.face_start[sz(f) + 1];
            const Index first = raw.side_vertex[sz(lo)];
            const double x0 = raw.st[sz(2 * first)], y0 = raw.st[sz(2 * first + 1)];
            double twice = 0.0;
            for (Index k = lo; k < hi; ++k) {
                const Index a = raw.side_vertex[sz(k)];
                const Index b = raw.side_vertex[sz(k + 1 < hi ? k + 1 : lo)];
                twice += (raw.st[sz(2 * a)] - x0) * (raw.st[sz(2 * b + 1)] - y0) -
                         (raw.st[sz(2 * b)] - x0) * (raw.st[sz(2 * a + 1)] - y0);
            }
            if (twice < 0.0) return false;
        }
        return true;
    }

    void build_tiles() {
        // Fewer tiles than threads (one slice through a CNN): the idle threads help inside
        // the convolutions.
        const Index threads = resolve_num_threads(options_.num_threads);
        const Index count = std::max<Index>(static_cast<Index>(tasks_.size()), 1);
        const ConvThreads conv_threads(static_cast<int>(count < threads ? threads / count : 1));
        parallel_for(
            static_cast<Index>(tasks_.size()), options_.num_threads,
            [&](Index task, Index worker, const StopFlag& stop) {
                const auto [i, k] = tasks_[sz(task)];
                parts_[i][k] = build(i, tiles_[i][k], worker, task, tasks_.size(), stop);
            },
            // Tiles are cut for large slices (or on request): share them at once.
            poll_, tasks_.size() > n_);
        for (std::unique_ptr<FaceBuilder>& builder : builders_) builder.reset();
        // The builders' memory goes back to the system before the tiles merge (glibc keeps
        // it in the worker threads' heaps otherwise), where there is much of it.
        bool large = false;
        for (std::size_t i = 0; i < n_; ++i) large = large || holds_much(i);
        if (tasks_.size() > n_ && large) detail::release_free_memory();
    }

    // Whether slice i's finished tiles hold kTrimBytes or more: only then is freed memory
    // handed back to the system (malloc_trim). Small slices keep it for the next one:
    // trimming cost a tiled slice of 5,000 regions 10-25% of its time in page faults.
    static constexpr Index kTrimBytes = Index{32} << 20;
    bool holds_much(std::size_t i) const { return finished_bytes_[i].load() >= kTrimBytes; }

    // Each slice's tiles stitched and assembled, slice by slice on the worker threads.
    void merge_tiles() {
        parallel_for(
            static_cast<Index>(n_), options_.num_threads,
            [&](Index task, Index, const StopFlag& stop) {
                const std::size_t i = sz(task);
                stop.throw_if_requested();
                const bool tiled = parts_[i].size() > 1;
                if (!tiled) {
                    results_[i] =
                        detail::assemble_slice(net_, std::move(parts_[i][0]), words_, bytes_);
                } else {
                    RawPartition whole;
                    if (detail::stitch(parts_[i], slices_[i].domain, words_, bytes_,
                                       net_.output_dim(), whole))
                        results_[i] =
                            detail::assemble_slice(net_, std::move(whole), words_, bytes_);
                    else
                        whole_[i] = 1;
                }
                results_[i].tiles = static_cast<Index>(parts_[i].size());
                std::vector<RawPartition>().swap(parts_[i]);
                // A large tiled slice freed its tiles' partitions: hand the memory back.
                // (Trimming after every small slice made the next one fault its pages in
                // again.)
                if (tiled && holds_much(i)) detail::release_free_memory();
            },
            poll_);
    }

    // Where tiles disagreed, the slice in one piece.
    void recompute_whole() {
        std::vector<std::size_t> redo;
        for (std::size_t i = 0; i < n_; ++i)
            if (whole_[i]) redo.push_back(i);
        if (redo.empty()) return;
        parallel_for(
            static_cast<Index>(redo.size()), options_.num_threads,
            [&](Index task, Index worker, const StopFlag& stop) {
                const std::size_t i = redo[sz(task)];
                finished_[i] = finished_bytes_[i] = 0;
                const Tile tile = detail::make_tiles(slices_[i].domain, {}).front();
                results_[i] = detail::assemble_slice(
                    net_, build(i, tile, worker, task, redo.size(), stop), words_, bytes_);
                results_[i].tiles = 1;
            },
            poll_);
        for (std::unique_ptr<FaceBuilder>& builder : builders_) builder.reset();
    }

    // The exact count of regions, after merging, against max_regions.
    void check_region_counts() const {
        for (const Slice2DResult& result : results_)
            if (result.num_faces() > options_.max_regions)
                detail::throw_too_many_regions(options_.max_regions, result.num_faces());
    }
};

}  // namespace

void set_stitch_failure_for_tests(bool fail) { detail::set_stitch_failure(fail); }

std::vector<Slice2DResult> slice_2d(const Network& net, const std::vector<SliceSpec>& slices,
                                    const Slice2DOptions& options, const InterruptPoll& poll) {
    check_arguments(slices, options);
    return SliceCall(net, slices, options, poll).run();
}

}  // namespace lrcore
