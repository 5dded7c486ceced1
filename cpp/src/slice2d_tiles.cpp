// Tiling: a slice's convex domain clipped to the parts between its cut lines s = c.
#include "slice2d_tiles.hpp"

#include <algorithm>
#include <utility>

#include "index.hpp"
#include "slice2d_partition.hpp"

namespace lrcore::detail {

bool Tile::has_side(Index label) const {
    return std::find(labels.begin(), labels.end(), label) != labels.end();
}

namespace {

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

}  // namespace

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
            tile.sides.push_back(corner.side >= 0 ? corner.side : -1);
        }
        tiles.push_back(std::move(tile));
    }
    return tiles;
}

}  // namespace lrcore::detail
