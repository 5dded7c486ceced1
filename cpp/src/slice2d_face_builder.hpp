// The faces of one tile, cut layer by layer (internal): the topology of the 2D slice.
// The numerics at the vertices are slice2d_vertices'.
#pragma once

#include <atomic>
#include <vector>

#include "bits.hpp"
#include "lrcore/network.hpp"
#include "lrcore/parallel.hpp"
#include "lrcore/slice2d.hpp"
#include "slice2d_partition.hpp"
#include "slice2d_tiles.hpp"
#include "slice2d_vertices.hpp"

namespace lrcore::detail {

// A polygon side from `vertex` to the next side's vertex. `label` is the global neuron
// whose zero set it lies on (or a negative label of slice2d_partition.hpp); (key_a, key_b)
// is the edge, as it was at the start of the current layer, that contains the side.
struct Side {
    Index vertex;
    Index label;
    Index key_a;
    Index key_b;
};

// LimitExceeded for a slice with more than `limit` regions (`reached` so far).
[[noreturn]] void throw_too_many_regions(Index limit, Index reached);

// Builds the partition of one tile after another (one builder per worker thread). Its
// buffers keep their memory from tile to tile: only the returned partitions are new.
class FaceBuilder {
public:
    // `filters`: the network's certified filter constants (options.certified), else null.
    FaceBuilder(const Network& net, const Slice2DOptions& options,
                const std::vector<FilterLayer>* filters)
        : net_(net),
          options_(options),
          words_(words_for(net.num_neurons())),
          vertices_(net, options.rtol, filters) {
        vertices_.set_max_slow_work(options.max_slow_work);
    }

    // The partition of `tile` of the slice `spec`; finished_faces and finished_bytes count
    // the slice's finished tiles (for max_regions and max_memory). With `release`, the
    // builder frees its buffers before it copies the result (its last tile: the memory
    // is not held beside the result).
    RawPartition run(const SliceSpec& spec, const Tile& tile, std::atomic<Index>& finished_faces,
                     std::atomic<Index>& finished_bytes, bool release, const StopFlag& stop);

private:
    const Network& net_;
    const Slice2DOptions& options_;
    Index words_;
    std::atomic<Index>* finished_faces_ = nullptr;  // faces of the slice's finished tiles
    std::atomic<Index>* finished_bytes_ = nullptr;  // and the memory their partitions take

    TileVertices vertices_;
    // Faces in CSR form: face f has sides [face_start_[f], face_start_[f + 1]).
    std::vector<Side> sides_;
    std::vector<Index> face_start_;
    std::vector<Word> bits_;  // F × words_

    Index num_faces() const { return static_cast<Index>(face_start_.size()) - 1; }

    void initial_face(const Tile& tile);
    void snap_near_ends();

    // The phases of one layer: cut_faces() runs them face by face.
    void cut_faces(Index layer, const StopFlag& stop);
    void key_sides(Index f);
    void settle_face(Index f, Index offset);
    void cut_face(Index f, Index offset);
    void split(const std::vector<Side>& sides, Index first, Index last, Index neuron, Index label,
               std::vector<Side>& out, std::vector<Index>& starts);
    void check_limits(Index f);
    void check_memory(Index faces) const;

    RawPartition collect(bool release);

    std::vector<Side> pos_, neg_;              // scratch of split()
    Index layer_ = 0;                          // the layer being cut
    std::vector<Index> face_polygon_;          // certified: the face being cut, for its chords
    std::vector<const Word*> owner_patterns_;  // certified: a face's pattern per vertex
    void resolve_pending();

    // Scratch of cut_faces(): the next layer's faces, the sign masks of a face, the
    // neurons that straddle it, a split's parts and a part's pattern.
    std::vector<Side> next_sides_;
    std::vector<Index> next_start_;
    std::vector<Word> next_bits_, any_pos_, any_neg_;
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

}  // namespace lrcore::detail
