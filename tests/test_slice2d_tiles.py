"""slice_2d(tiles=T): tiles computed apart and merged give the partition computed whole.

The whole partition is the oracle (itself checked against the exact oracle in
test_slice2d.py, where ``exact_case`` also runs every degenerate construction in tiles):
the merged one must have the same regions (patterns, areas, centroids), vertices and
edges, and no vertex left on a cut line where an edge runs straight through it.
"""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree

import lrcore
from lrcore._tiling import CUT_OFFSET, TILE_REGIONS
from slice_oracle import check_all, compare_with_oracle, diameter, lines_net, oracle_slice
from support import activations, random_net, seeds

# Lines that meet exactly (concurrent, coincident, through corners): the certified filter
# cannot decide such values; the slow path's exact tier proves them 0 (exact
# coincidences, docs/numerics.md §6), or, past its budget, they take the zero tolerance's
# decision with a lrcore.CertificationWarning. The exact oracle checks the result.
EXACT_COINCIDENCES = pytest.mark.filterwarnings("ignore::lrcore.CertificationWarning")


def cut_positions(lo: float, hi: float, count: int) -> list[float]:
    return [lo + (hi - lo) * (k + CUT_OFFSET) / count for k in range(1, count)]


def assert_same_partition(tiled, whole):
    assert tiled.num_regions == whole.num_regions
    assert tiled.num_vertices == whole.num_vertices
    assert tiled.num_edges == whole.num_edges
    diam = diameter(whole.domain)
    # Regions: one face per pattern on both sides (generic nets), same area and centroid.
    face_of = {row.tobytes(): f for f, row in enumerate(whole.pattern_bools())}
    assert len(face_of) == whole.num_regions
    pats = tiled.pattern_bools()
    match = np.array([face_of[row.tobytes()] for row in pats])
    assert sorted(match.tolist()) == list(range(whole.num_regions))
    np.testing.assert_allclose(tiled.areas, whole.areas[match], rtol=1e-9, atol=1e-12 * diam**2)
    np.testing.assert_allclose(tiled.centroids, whole.centroids[match], atol=1e-9 * diam)
    np.testing.assert_array_equal(np.diff(tiled.face_offsets), np.diff(whole.face_offsets)[match])
    # Vertices: the same points, and each edge joins the same points on the same neuron.
    dist, near = cKDTree(whole.vertices).query(tiled.vertices)
    assert dist.max() <= 1e-9 * diam
    assert len(set(near.tolist())) == whole.num_vertices

    def edge_set(r, ids):
        return Counter(
            (min(ids[a], ids[b]), max(ids[a], ids[b]), layer, unit)
            for (a, b), (layer, unit) in zip(r.edges.tolist(), r.edge_neurons.tolist())
        )

    assert edge_set(tiled, near) == edge_set(whole, np.arange(whole.num_vertices))


@settings(deadline=None, max_examples=30)
@given(
    d=st.integers(2, 4),
    widths=st.lists(st.integers(3, 24), min_size=1, max_size=3),
    activation=activations,
    seed=seeds,
    tiles=st.integers(2, 9),
    half=st.floats(0.5, 4.0),
)
def test_tiles_merge_into_the_whole_partition(d, widths, activation, seed, tiles, half):
    spec = random_net([d, *widths, 1], seed, activation, 0.1)
    net = spec.to_lrcore()
    rng = np.random.default_rng(seed)
    origin, basis = rng.standard_normal(d), rng.standard_normal((2, d))
    bounds = (-half, half, -0.5 * half, 1.5 * half)
    whole = lrcore.slice_2d(net, origin, basis, bounds, tiles=1)
    tiled = lrcore.slice_2d(net, origin, basis, bounds, tiles=tiles)
    assert whole.tiles == 1
    assert tiled.tiles == tiles, "generic nets never need the fallback"
    assert_same_partition(tiled, whole)
    check_all(tiled, spec)


def test_tiles_of_a_polygon_domain():
    spec = random_net([3, 16, 16, 1], 4)
    rng = np.random.default_rng(4)
    origin, basis = rng.standard_normal(3), rng.standard_normal((2, 3))
    angles = np.linspace(0, 2 * np.pi, 9)[:-1] + 0.1
    domain = 2.0 * np.stack([np.cos(angles), 0.6 * np.sin(angles)], axis=1)
    whole = lrcore.slice_2d(spec.to_lrcore(), origin, basis, domain=domain, tiles=1)
    for tiles in (2, 5, 11):
        tiled = lrcore.slice_2d(spec.to_lrcore(), origin, basis, domain=domain, tiles=tiles)
        assert tiled.tiles == tiles
        assert_same_partition(tiled, whole)


@pytest.mark.parametrize("tiles", [2, 3])
@EXACT_COINCIDENCES
def test_zero_line_on_a_cut_line_is_an_edge(tiles):
    # A neuron whose zero line is exactly the first cut line s = c, plus lines across it
    # (one through the point where the cut line meets the box's bottom side).
    c = cut_positions(-1.0, 1.0, tiles)[0]
    rows = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]]
    biases = [-c, -0.2, 0.1, -c - 1.0]
    spec = lines_net(rows, biases)
    r = lrcore.slice_2d(spec.to_lrcore(), np.zeros(2), np.eye(2), (-1, 1, -1, 1), tiles=tiles)
    assert r.tiles == tiles
    check_all(r, spec, generic=False)
    compare_with_oracle(r, oracle_slice(spec, np.zeros(2), np.eye(2), r.domain, exact=True))
    on_line = np.flatnonzero(np.all(r.edge_neurons == [0, 0], axis=1))
    assert len(on_line) > 0
    ends = r.vertices[r.edges[on_line]].reshape(-1, 2)
    np.testing.assert_allclose(ends[:, 0], c, atol=1e-15)


def test_auto_tiles_grow_with_the_slice_and_keep_the_result():
    small_net = lrcore.Network.random([2, 32, 32, 1], seed=1)
    small = lrcore.slice_2d(small_net, np.zeros(2), np.eye(2), (-0.5, 0.5, -0.5, 0.5))
    assert small.tiles == 1
    # About 57,000 regions: "auto" aims at TILE_REGIONS a tile, narrow where they crowd.
    net = lrcore.Network.random([2, 200, 200, 1], seed=1)
    bounds = (-3, 3, -3, 3)
    large = lrcore.slice_2d(net, np.zeros(2), np.eye(2), bounds)
    assert 2 <= large.tiles <= 3 * large.num_regions // TILE_REGIONS + 1
    assert_same_partition(large, lrcore.slice_2d(net, np.zeros(2), np.eye(2), bounds, tiles=1))
    with pytest.raises(ValueError, match="tiles"):
        lrcore.slice_2d(small_net, np.zeros(2), np.eye(2), tiles=0)
    with pytest.raises(ValueError, match="tiles"):
        lrcore.slice_2d(small_net, np.zeros(2), np.eye(2), tiles="many")


def test_auto_tiles_share_a_slice_among_spare_threads():
    # About 5,000 regions: under TILE_REGIONS, but enough to share among threads.
    net = lrcore.Network.random([2, 64, 64, 64, 1], seed=0)
    plane = lrcore.Plane(np.zeros(2), np.eye(2))
    one = lrcore.slice_2d(net, plane, num_threads=1)
    assert one.tiles == 1
    for threads in (2, 4):
        shared = lrcore.slice_2d(net, plane, num_threads=threads)
        assert 2 <= shared.tiles <= 2 * threads
        assert_same_partition(shared, one)
    # As many slices as threads: each slice runs whole on a thread of its own.
    assert [r.tiles for r in lrcore.slice_2d(net, [plane, plane], num_threads=2)] == [1, 1]


def test_tiles_that_disagree_are_recomputed_whole():
    # Rounding at a degenerate spot can leave the two sides of a cut line disagreeing;
    # the slice is then computed in one piece, by the same (reused) worker builders.
    net = lrcore.Network.random([2, 24, 24, 1], seed=3)
    plane = lrcore.Plane(np.zeros(2), np.eye(2))
    whole = lrcore.slice_2d(net, [plane, plane], bounds=(-2, 2, -2, 2), tiles=1)
    lrcore._core._set_stitch_failure_for_tests(True)
    try:
        redone = lrcore.slice_2d(net, [plane, plane], bounds=(-2, 2, -2, 2), tiles=5)
    finally:
        lrcore._core._set_stitch_failure_for_tests(False)
    for r, w in zip(redone, whole):
        assert r.tiles == 1
        assert_same_partition(r, w)
        r.verify()


@pytest.mark.parametrize("tiles", [1, 3, 4, 7])
@EXACT_COINCIDENCES
def test_undecided_value_inside_a_tile_counts_the_same_in_any_tiling(tiles):
    # Three lines concurrent at Q = (5/8, -1/2), off every cut line of 3, 4 and 7 tiles:
    # the first two meet at Q (each exactly 0 there), the third is exactly 0 at Q, which
    # the filter cannot decide and the slow path's exact tier proves: one exact
    # coincidence, one slow decision, none undecided, whatever the tiling.
    assert all(abs(c - 0.625) > 0.05 for n in (3, 4, 7) for c in cut_positions(-1, 1, n))
    spec = lines_net([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [-0.625, 0.5, -0.125])
    r = lrcore.slice_2d(spec.to_lrcore(), np.zeros(2), np.eye(2), (-1, 1, -1, 1), tiles=tiles)
    assert r.tiles == tiles
    compare_with_oracle(r, oracle_slice(spec, np.zeros(2), np.eye(2), r.domain, exact=True))
    assert r.uncertified_decisions == 0
    assert r.exact_coincidences == 1
    assert r.slow_decisions == 1


@pytest.mark.parametrize("tiles", [3, 4, 7])
@EXACT_COINCIDENCES
def test_undecided_value_on_a_cut_line_counts_once(tiles):
    # Two lines meeting exactly at P = (c, 1/4) on the first cut line s = c. Tiled, P is
    # where the first line crosses the cut (a vertex of both tiles, computed alike from
    # the cut line's ends), and the second line's value there is exactly 0, which the
    # slow path proves: one exact coincidence, counted once (the tiles' counts were
    # summed: 2). Whole, P is where the two lines cross, each exactly 0 there by
    # construction: nothing to decide.
    c = cut_positions(-1.0, 1.0, tiles)[0]
    biases = [-c - 0.25, -c + 0.25]
    # The biases are exact: the lines meet on the cut line in exact arithmetic.
    assert Fraction(biases[0]) == -Fraction(c) - Fraction(1, 4)
    assert Fraction(biases[1]) == -Fraction(c) + Fraction(1, 4)
    spec = lines_net([[1.0, 1.0], [1.0, -1.0]], biases)
    whole = lrcore.slice_2d(spec.to_lrcore(), np.zeros(2), np.eye(2), (-1, 1, -1, 1), tiles=1)
    tiled = lrcore.slice_2d(spec.to_lrcore(), np.zeros(2), np.eye(2), (-1, 1, -1, 1), tiles=tiles)
    assert tiled.tiles == tiles
    exact = oracle_slice(spec, np.zeros(2), np.eye(2), whole.domain, exact=True)
    compare_with_oracle(whole, exact)
    compare_with_oracle(tiled, exact)
    assert_same_partition(tiled, whole)
    assert whole.uncertified_decisions == tiled.uncertified_decisions == 0
    assert whole.exact_coincidences == whole.slow_decisions == 0
    assert tiled.exact_coincidences == tiled.slow_decisions == 1
    assert whole.merged_crossings == tiled.merged_crossings == 0
