// Stitching a slice's tiles into one partition (docs/core-layout.md): along each cut line
// the two tiles' vertices are matched and faces with one pattern on both sides joined
// (a union-find over all faces); then vertices are numbered once, and each group of
// joined faces becomes one face, its sides chained into one cycle.
#include "slice2d_stitch.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numeric>

#include "bits.hpp"
#include "index.hpp"
#include "memory.hpp"

namespace lrcore::detail {

namespace {

std::atomic<bool> g_fail_stitch{false};  // set_stitch_failure

bool read_cut_line(const RawPartition& tile, Index line_label, CutLine& line) {
    // slot[v]: v's rank along the line, or -1 for vertices off it (an array over the
    // tile's vertices: a hash map cost more than the rest of the stitching).
    std::vector<Index> slot(sz(tile.num_vertices()), -1);
    std::vector<Index> seg_side, seg_face, seg_from, seg_to;
    std::vector<Index> order;
    for (Index f = 0; f < tile.num_faces(); ++f) {
        const Index first = tile.face_start[sz(f)];
        const Index last = tile.face_start[sz(f) + 1];
        for (Index i = first; i < last; ++i) {
            if (tile.side_label[sz(i)] != line_label) continue;
            const Index v = tile.side_vertex[sz(i)];
            const Index w = tile.side_vertex[sz(next_side(i, first, last))];
            for (const Index u : {v, w}) {
                if (slot[sz(u)] >= 0) continue;
                slot[sz(u)] = 0;
                order.push_back(u);
            }
            seg_side.push_back(i);
            seg_face.push_back(f);
            seg_from.push_back(v);
            seg_to.push_back(w);
        }
    }
    std::sort(order.begin(), order.end(), [&](Index a, Index b) {
        const double ta = tile.st[sz(2 * a + 1)], tb = tile.st[sz(2 * b + 1)];
        return ta < tb || (ta == tb && a < b);
    });
    const Index n = static_cast<Index>(order.size());
    if (n < 2) return false;
    line.vertex = order;
    line.t.resize(sz(n));
    line.labels.assign(sz(n), {});
    for (Index r = 0; r < n; ++r) {
        slot[sz(order[sz(r)])] = r;
        line.t[sz(r)] = tile.st[sz(2 * order[sz(r)] + 1)];
    }
    for (Index f = 0; f < tile.num_faces(); ++f) {
        const Index first = tile.face_start[sz(f)];
        const Index last = tile.face_start[sz(f) + 1];
        for (Index i = first; i < last; ++i) {
            const Index label = tile.side_label[sz(i)];
            if (label != kBoundary && label < 0) continue;
            for (const Index v :
                 {tile.side_vertex[sz(i)], tile.side_vertex[sz(next_side(i, first, last))]}) {
                const Index r = slot[sz(v)];
                if (r >= 0) line.labels[sz(r)].push_back(label);
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
        const Index a = slot[sz(seg_from[k])], b = slot[sz(seg_to[k])];
        const Index r = std::min(a, b);
        if (std::abs(a - b) != 1 || line.side[sz(r)] != -1) return false;
        line.side[sz(r)] = seg_side[k];
        line.face[sz(r)] = seg_face[k];
    }
    return std::find(line.side.begin(), line.side.end(), -1) == line.side.end();
}

// Union-find over the faces of all tiles (path halving). A join links the larger root
// under the smaller, so the root of a group is its first face.
class FaceUnion {
public:
    explicit FaceUnion(Index n) : parent_(sz(n)) {
        std::iota(parent_.begin(), parent_.end(), Index{0});
    }

    Index find(Index f) {
        while (parent_[sz(f)] != f) {
            parent_[sz(f)] = parent_[sz(parent_[sz(f)])];
            f = parent_[sz(f)];
        }
        return f;
    }

    void join(Index f, Index g) {
        const Index a = find(f);
        const Index b = find(g);
        parent_[sz(std::max(a, b))] = std::min(a, b);
    }

private:
    std::vector<Index> parent_;
};

// A side of a merged face: from vertex `from` to vertex `to` (global numbers, first
// copies), with its label.
struct Link {
    Index from, to, label;
};

class Stitcher {
public:
    Stitcher(std::vector<RawPartition>& tiles, const std::vector<double>& domain, Index words,
             Index bytes, Index out_dim)
        : tiles_(tiles),
          domain_(domain),
          words_(words),
          bytes_(bytes),
          out_dim_(out_dim),
          vo_(tiles.size() + 1, 0),
          fo_(tiles.size() + 1, 0),
          faces_(0) {
        for (std::size_t i = 0; i < tiles.size(); ++i) {
            vo_[i + 1] = vo_[i] + tiles[i].num_vertices();
            fo_[i + 1] = fo_[i] + tiles[i].num_faces();
        }
    }

    bool run(RawPartition& whole) {
        if (g_fail_stitch.load(std::memory_order_relaxed)) return false;
        start();
        for (std::size_t k = 1; k < tiles_.size(); ++k) {
            if (!match_vertices(k)) return false;
            const std::vector<char> joined = join_faces(k);
            drop_straight_vertices(k, joined);
        }
        add_counts(whole);
        merge_vertices(whole);
        return merge_faces(whole);
    }

private:
    std::vector<RawPartition>& tiles_;
    const std::vector<double>& domain_;
    Index words_, bytes_, out_dim_;
    // Tile i's vertices and faces are numbered from vo_[i] and fo_[i] on.
    std::vector<Index> vo_, fo_;
    std::vector<Index> rep_;  // the first copy of each vertex
    std::vector<char> drop_;  // vertices where one edge runs straight across a cut line
    FaceUnion faces_;
    double tol_ = 0.0;           // how far apart two copies of a vertex may lie along t
    std::vector<Index> new_id_;  // of each first copy in the merged partition, or -1

    void start() {
        const std::size_t count = tiles_.size();
        rep_.resize(sz(vo_[count]));
        std::iota(rep_.begin(), rep_.end(), Index{0});
        drop_.assign(sz(vo_[count]), 0);
        faces_ = FaceUnion(fo_[count]);
        double s_lo = domain_[0], s_hi = domain_[0], t_lo = domain_[1], t_hi = domain_[1];
        for (std::size_t i = 0; i < domain_.size(); i += 2) {
            s_lo = std::min(s_lo, domain_[i]);
            s_hi = std::max(s_hi, domain_[i]);
            t_lo = std::min(t_lo, domain_[i + 1]);
            t_hi = std::max(t_hi, domain_[i + 1]);
        }
        tol_ = 1e-7 * std::hypot(s_hi - s_lo, t_hi - t_lo);
    }

    bool is_domain_corner(double s, double t) const {
        for (std::size_t i = 0; i < domain_.size(); i += 2)
            if (domain_[i] == s && domain_[i + 1] == t) return true;
        return false;
    }

    // Cut line k (between tiles k - 1 and k): the r-th points on both sides are one
    // vertex. Their edges agree, except that an edge may end at a vertex on the line from
    // one side only (a zero line through the vertex that stays outside the other side);
    // then one set holds the other, and the left side takes the larger.
    bool match_vertices(std::size_t k) {
        CutLine& a = tiles_[k - 1].high;
        const CutLine& b = tiles_[k].low;
        if (!a.valid || !b.valid) return false;
        const Index n = static_cast<Index>(a.vertex.size());
        if (static_cast<Index>(b.vertex.size()) != n) return false;
        for (Index r = 0; r < n; ++r) {
            std::vector<Index>& la = a.labels[sz(r)];
            const std::vector<Index>& lb = b.labels[sz(r)];
            if (std::abs(a.t[sz(r)] - b.t[sz(r)]) > tol_ ||
                !(std::includes(la.begin(), la.end(), lb.begin(), lb.end()) ||
                  std::includes(lb.begin(), lb.end(), la.begin(), la.end())))
                return false;
            if (lb.size() > la.size()) la = lb;
            rep_[sz(vo_[k] + b.vertex[sz(r)])] = vo_[k - 1] + a.vertex[sz(r)];
        }
        return true;
    }

    // The tiles' counts (undecided values, exact coincidences, merged crossings, slow
    // decisions), a vertex
    // on a cut line once: its first copy's (both tiles compute it alike: its values come
    // from the cut line's own vertices), not once per tile. A vertex that only the cut
    // creates (dropped when it lies inside a region) still counts: its decisions made the
    // tiles' faces.
    void add_counts(RawPartition& whole) const {
        for (std::size_t i = 0; i < tiles_.size(); ++i) {
            const RawPartition& tile = tiles_[i];
            whole.merged_crossings += tile.merged_crossings;
            whole.uncertified_decisions += tile.uncertified_decisions;
            whole.exact_coincidences += tile.exact_coincidences;
            whole.slow_decisions += tile.slow_decisions;
            for (std::size_t c = 0; c + 5 <= tile.counted.size(); c += 5) {
                const Index g = vo_[i] + tile.counted[c];
                if (rep_[sz(g)] == g) continue;  // the first copy
                whole.uncertified_decisions -= tile.counted[c + 1];
                whole.exact_coincidences -= tile.counted[c + 2];
                whole.merged_crossings -= tile.counted[c + 3];
                whole.slow_decisions -= tile.counted[c + 4];
            }
        }
    }

    // Cut line k: the faces on its two sides with one pattern are joined, and the tile
    // sides between them marked kRemoved; where the patterns differ the line carries a
    // region edge, labelled with the first neuron whose bits differ. Returns, for each
    // part of the line, whether its faces were joined.
    std::vector<char> join_faces(std::size_t k) {
        RawPartition& left = tiles_[k - 1];
        RawPartition& right = tiles_[k];
        const CutLine& a = left.high;
        const CutLine& b = right.low;
        const Index n = static_cast<Index>(a.vertex.size());
        std::vector<char> joined(sz(n - 1), 0);
        for (Index r = 0; r + 1 < n; ++r) {
            const Word* pa = left.bits.data() + a.face[sz(r)] * words_;
            const Word* pb = right.bits.data() + b.face[sz(r)] * words_;
            Index differs = -1;
            for (Index w = 0; w < words_ && differs < 0; ++w) {
                const Word x = pa[w] ^ pb[w];
                if (x != 0) differs = w * kWordBits + static_cast<Index>(__builtin_ctzll(x));
            }
            if (differs < 0) {
                faces_.join(fo_[k - 1] + a.face[sz(r)], fo_[k] + b.face[sz(r)]);
                joined[sz(r)] = 1;
                differs = kRemoved;
            }
            left.side_label[sz(a.side[sz(r)])] = differs;
            right.side_label[sz(b.side[sz(r)])] = differs;
        }
        return joined;
    }

    // Cut line k: a vertex on it that only one edge passes through, with joined faces on
    // both sides of it along the line, is no corner of the merged faces (a domain corner
    // stays one).
    void drop_straight_vertices(std::size_t k, const std::vector<char>& joined) {
        const RawPartition& left = tiles_[k - 1];
        const CutLine& a = left.high;
        const Index n = static_cast<Index>(a.vertex.size());
        for (Index r = 0; r < n; ++r) {
            const std::vector<Index>& labels = a.labels[sz(r)];
            const Index v = a.vertex[sz(r)];
            const bool straight = labels.size() == 1 && (r == 0 || joined[sz(r - 1)]) &&
                                  (r + 1 == n || joined[sz(r)]) &&
                                  !(labels[0] == kBoundary &&
                                    is_domain_corner(left.st[sz(2 * v)], left.st[sz(2 * v + 1)]));
            if (straight) drop_[sz(vo_[k - 1] + v)] = 1;
        }
    }

    // Vertices: the first copy of each, without the dropped ones. Reserves the merged
    // partition's arrays, and frees the tiles' coordinates and outputs.
    void merge_vertices(RawPartition& whole) {
        const std::size_t count = tiles_.size();
        std::size_t num_sides = 0;
        for (const RawPartition& tile : tiles_) num_sides += tile.side_vertex.size();
        whole.st.reserve(2 * rep_.size());
        whole.outputs.reserve(rep_.size() * sz(out_dim_));
        whole.side_vertex.reserve(num_sides);
        whole.side_label.reserve(num_sides);
        whole.face_start.reserve(sz(fo_[count]) + 1);
        whole.patterns.reserve(sz(fo_[count] * bytes_));
        new_id_.assign(rep_.size(), -1);
        Index kept = 0;
        for (std::size_t i = 0; i < count; ++i) {
            for (Index v = 0; v < tiles_[i].num_vertices(); ++v) {
                const Index g = vo_[i] + v;
                if (rep_[sz(g)] != g || drop_[sz(g)]) continue;
                new_id_[sz(g)] = kept++;
                whole.st.push_back(tiles_[i].st[sz(2 * v)]);
                whole.st.push_back(tiles_[i].st[sz(2 * v + 1)]);
                whole.outputs.insert(whole.outputs.end(), tiles_[i].outputs.begin() + v * out_dim_,
                                     tiles_[i].outputs.begin() + (v + 1) * out_dim_);
            }
            std::vector<double>().swap(tiles_[i].st);
            std::vector<double>().swap(tiles_[i].outputs);
        }
    }

    // Faces: each group of joined faces, in the order of its first face, as one cycle,
    // with its pattern packed.
    bool merge_faces(RawPartition& whole) {
        const Index nf = fo_[tiles_.size()];
        std::vector<Index> group_start(sz(nf) + 1, 0), members(sz(nf));
        for (Index f = 0; f < nf; ++f) ++group_start[sz(faces_.find(f)) + 1];
        for (Index f = 0; f < nf; ++f) group_start[sz(f) + 1] += group_start[sz(f)];
        {
            std::vector<Index> fill(group_start.begin(), group_start.end() - 1);
            for (Index f = 0; f < nf; ++f) members[sz(fill[sz(faces_.find(f))]++)] = f;
        }
        std::vector<Link> links;
        std::size_t consumed = 0;  // tiles whose faces are all merged
        for (Index root = 0; root < nf; ++root) {
            // A face joins a group whose first face comes no later: once the roots reach a
            // tile, the tiles before it are done with and their memory goes.
            for (; fo_[consumed + 1] <= root; ++consumed) {
                tiles_[consumed] = RawPartition();
                if (consumed % 8 == 7) release_free_memory();
            }
            if (group_start[sz(root)] == group_start[sz(root) + 1]) continue;
            bool removed = false;
            if (!gather_links(members, group_start[sz(root)], group_start[sz(root) + 1], links,
                              removed))
                return false;
            const Index face_begin = static_cast<Index>(whole.side_vertex.size());
            if (!removed) {
                // One face, whole: its sides in order.
                for (const Link& link : links) emit(link, whole);
            } else if (!chain(links, whole)) {
                return false;
            }
            if (static_cast<Index>(whole.side_vertex.size()) - face_begin < 3) return false;
            whole.face_start.push_back(static_cast<Index>(whole.side_vertex.size()));
            const Word* bits = tiles_[consumed].bits.data() + (root - fo_[consumed]) * words_;
            whole.patterns.resize(whole.patterns.size() + sz(bytes_));
            pack_pattern(bits, bytes_, whole.patterns.data() + whole.patterns.size() - sz(bytes_));
        }
        return true;
    }

    // The sides of the faces members[begin, end) (one group) as links, without the
    // removed ones (`removed` says whether there were any).
    bool gather_links(const std::vector<Index>& members, Index begin, Index end,
                      std::vector<Link>& links, bool& removed) const {
        links.clear();
        for (Index m = begin; m < end; ++m) {
            const Index g = members[sz(m)];
            const std::size_t tile_of =
                sz(std::upper_bound(fo_.begin(), fo_.end(), g) - fo_.begin() - 1);
            const RawPartition& tile = tiles_[tile_of];
            const Index f = g - fo_[tile_of];
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
                const Index w = tile.side_vertex[sz(next_side(i, first, last))];
                links.push_back({rep_[sz(vo_[tile_of] + v)], rep_[sz(vo_[tile_of] + w)], label});
            }
        }
        return !links.empty();
    }

    // Parts of one region: their sides chained into one cycle (a convex face leaves each
    // corner once), starting from the first.
    bool chain(std::vector<Link>& links, RawPartition& whole) const {
        const Link start = links.front();
        std::sort(links.begin(), links.end(),
                  [](const Link& x, const Link& y) { return x.from < y.from; });
        Link current = start;
        for (std::size_t step = 0;; ++step) {
            if (step == links.size()) return false;
            emit(current, whole);
            if (current.to == start.from) return step + 1 == links.size();
            const auto next = std::lower_bound(links.begin(), links.end(), current.to,
                                               [](const Link& x, Index v) { return x.from < v; });
            if (next == links.end() || next->from != current.to) return false;
            current = *next;
        }
    }

    // A corner of the merged face, unless it was dropped.
    void emit(const Link& link, RawPartition& whole) const {
        if (drop_[sz(link.from)]) return;
        whole.side_vertex.push_back(new_id_[sz(link.from)]);
        whole.side_label.push_back(link.label);
    }
};

}  // namespace

void read_cut_lines(const Tile& tile, RawPartition& raw) {
    if (tile.has_side(kTileLow)) raw.low.valid = read_cut_line(raw, kTileLow, raw.low);
    if (tile.has_side(kTileHigh)) raw.high.valid = read_cut_line(raw, kTileHigh, raw.high);
}

bool stitch(std::vector<RawPartition>& tiles, const std::vector<double>& domain, Index words,
            Index bytes, Index out_dim, RawPartition& whole) {
    return Stitcher(tiles, domain, words, bytes, out_dim).run(whole);
}

void set_stitch_failure(bool fail) { g_fail_stitch.store(fail, std::memory_order_relaxed); }

}  // namespace lrcore::detail
