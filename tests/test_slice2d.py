"""lrcore.slice_2d: the planar partition against geometry, sampling, 1D counts and an oracle.

The oracle and the partition checks live in tests/slice_oracle.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import Phase, assume, given, settings
from hypothesis import strategies as st

import lrcore
from slice_oracle import (
    check_all,
    check_lines,
    check_sampling,
    compare_with_oracle,
    diameter,
    face_geometry,
    gaussian_plane,
    interior_edges,
    layer_values,
    line_cells_formula,
    lines_net,
    oracle_slice,
    points_in_domain,
    polygon_area,
)
from support import NetSpec, activations, random_net, seeds

# Lines that meet exactly (concurrent, coincident, through corners): the certified filter
# cannot decide such values; the slow path's exact tier proves them 0 (exact
# coincidences, docs/numerics.md §6), or, past its budget, they take the zero tolerance's
# decision with a lrcore.CertificationWarning. The exact oracle checks the result.
EXACT_COINCIDENCES = pytest.mark.filterwarnings("ignore::lrcore.CertificationWarning")


@pytest.mark.parametrize(
    ("d", "width", "activation", "seed"),
    [(2, 12, "relu", 1), (3, 20, "leaky_relu", 2), (7, 30, "relu", 3), (2, 1, "relu", 4)],
)
def test_one_hidden_layer_matches_line_arrangement(d, width, activation, seed):
    spec = random_net([d, width, 2], seed, activation, 0.1)
    origin, basis = gaussian_plane(d, seed + 100)
    bounds = (-2.0, 1.5, -1.0, 2.5)
    r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, bounds)
    check_all(r, spec)
    assert r.num_regions == line_cells_formula(spec, origin, basis, bounds)
    compare_with_oracle(r, oracle_slice(spec, origin, basis, r.domain, exact=True))


@pytest.mark.parametrize(
    ("sizes", "activation", "seed"),
    [([2, 8, 8, 1], "relu", 5), ([3, 10, 6, 5, 2], "leaky_relu", 6), ([5, 16, 16, 1], "relu", 7)],
)
def test_deep_nets_match_oracle(sizes, activation, seed):
    spec = random_net(sizes, seed, activation, 0.2)
    origin, basis = gaussian_plane(sizes[0], seed + 100)
    r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, (-1.5, 1.5, -1.0, 2.0))
    check_all(r, spec)
    compare_with_oracle(r, oracle_slice(spec, origin, basis, r.domain))


@pytest.mark.parametrize(("sizes", "seed"), [([2, 16, 16, 1], 8), ([4, 24, 24, 24, 3], 9)])
def test_lines_count_as_in_1d(sizes, seed):
    spec = random_net(sizes, seed, "relu")
    net = spec.to_lrcore()
    origin, basis = gaussian_plane(sizes[0], seed + 100)
    r = lrcore.slice_2d(net, origin, basis, (-2.0, 2.0, -2.0, 2.0))
    assert r.num_regions > 50
    check_all(r, spec)
    check_lines(r, spec, net, num_lines=25, seed=seed)


@pytest.mark.parametrize(("sizes", "seed"), [([2, 16, 16, 1], 10), ([3, 20, 20, 20, 1], 11)])
def test_grid_sampling_finds_only_reported_patterns(sizes, seed):
    spec = random_net(sizes, seed, "leaky_relu", 0.1)
    origin, basis = gaussian_plane(sizes[0], seed + 100)
    r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, (-1.5, 1.5, -1.5, 1.5))
    distinct = check_sampling(r, spec, n=200)
    # A fine grid meets most regions.
    assert distinct >= 0.5 * r.num_regions


# --- Output maps, linear regions, decision boundary -----------------------------------


def test_decision_boundary_lies_on_the_level_set_and_is_complete():
    spec = random_net([3, 16, 16, 1], 12)
    net = spec.to_lrcore()
    origin, basis = gaussian_plane(3, 112)
    r = lrcore.slice_2d(net, origin, basis, (-2.0, 2.0, -2.0, 2.0))
    level = float(np.median(r.vertex_outputs[:, 0]))
    segs = r.decision_boundary(level=level)
    assert segs.ndim == 3
    assert segs.shape[1:] == (2, 2)
    assert len(segs) > 0
    ends = segs.reshape(-1, 2)
    _, out, scale = layer_values(spec, r, ends)
    assert np.all(np.abs(out[:, 0] - level) <= 1e-9 * (scale[:, 0] + abs(level)))
    mids = segs.mean(axis=1)
    _, out, scale = layer_values(spec, r, mids)
    assert np.all(np.abs(out[:, 0] - level) <= 1e-9 * (scale[:, 0] + abs(level)))
    # Completeness: along random segments, where the (piecewise affine) output crosses
    # the level there is a boundary segment.
    rng = np.random.default_rng(0)
    diam = diameter(r.domain)
    found = 0
    for _ in range(20):
        p, q = points_in_domain(r.domain, 2, rng)
        one_d = lrcore.count_1d(net, r.to_input(np.stack([p, q])))
        lam = np.concatenate(([0.0], one_d.breakpoints / one_d.length, [1.0]))
        pts = p + lam[:, None] * (q - p)
        y = net.forward(r.to_input(pts))[:, 0] - level
        cut = np.flatnonzero(y[:-1] * y[1:] < 0)
        for i in cut:
            tau = lam[i] + (lam[i + 1] - lam[i]) * y[i] / (y[i] - y[i + 1])
            x = p + tau * (q - p)
            a, b = segs[:, 0], segs[:, 1]
            e = b - a
            u = np.clip(((x - a) * e).sum(axis=1) / (e * e).sum(axis=1), 0, 1)
            gap = np.linalg.norm(a + u[:, None] * e - x, axis=1).min()
            assert gap <= 1e-8 * diam, f"level crossing at {x} is {gap} from the boundary"
            found += 1
    assert found > 0


def with_silent_units(spec: NetSpec, layer: int, extra: int, seed: int) -> NetSpec:
    """Add ``extra`` units to hidden ``layer`` whose outgoing weights are all zero."""
    rng = np.random.default_rng(seed)
    ws, bs = list(spec.weights), list(spec.biases)
    fan_in = ws[layer].shape[1]
    ws[layer] = np.vstack([ws[layer], rng.uniform(-1, 1, (extra, fan_in)) / np.sqrt(fan_in)])
    bs[layer] = np.concatenate([bs[layer], rng.uniform(-0.5, 0.5, extra)])
    ws[layer + 1] = np.hstack([ws[layer + 1], np.zeros((ws[layer + 1].shape[0], extra))])
    return spec.with_layers(ws, bs)


def check_linear_regions(r, lin, rtol=1e-9):
    assert lin.labels.shape == (r.num_regions,)
    assert lin.num_regions == int(lin.labels.max()) + 1
    assert set(lin.labels.tolist()) == set(range(lin.num_regions))
    np.testing.assert_allclose(lin.areas, np.bincount(lin.labels, weights=r.areas), rtol=1e-12)
    assert math.fsum(lin.areas) == pytest.approx(polygon_area(r.domain), rel=1e-9)
    # Labels respect the maps: one map per linear region; adjacent faces with different
    # labels have different maps.
    maps = r.output_maps.reshape(r.num_regions, -1)
    scale = np.abs(maps).max()
    for label in range(lin.num_regions):
        members = maps[lin.labels == label]
        assert np.abs(members - members[0]).max() <= 1e-7 * scale
    _, fa, fb = interior_edges(r)
    differ = lin.labels[fa] != lin.labels[fb]
    gap = np.abs(maps[fa[differ]] - maps[fb[differ]]).max(axis=1)
    assert np.all(gap > rtol * scale)


@pytest.mark.parametrize(
    ("sizes", "layer", "seed"),
    [([2, 10, 1], 0, 13), ([3, 10, 8, 2], 1, 14), ([3, 10, 8, 2], 0, 15)],
)
def test_linear_regions_merge_faces_of_silent_units(sizes, layer, seed):
    base = random_net(sizes, seed, "leaky_relu", 0.1)
    spec = with_silent_units(base, layer, 4, seed)
    origin, basis = gaussian_plane(sizes[0], seed + 100)
    bounds = (-2.0, 2.0, -2.0, 2.0)
    r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, bounds)
    r_base = lrcore.slice_2d(base.to_lrcore(), origin, basis, bounds)
    check_all(r, spec)
    assert r.num_regions > r_base.num_regions, "the silent units should cut faces"
    lin, lin_base = r.linear_regions(), r_base.linear_regions()
    check_linear_regions(r, lin)
    check_linear_regions(r_base, lin_base)
    # The silent units change the faces but not the function.
    assert lin.num_regions == lin_base.num_regions
    np.testing.assert_allclose(np.sort(lin.areas), np.sort(lin_base.areas), rtol=1e-9)
    if len(sizes) == 3:
        # One hidden layer with non-zero output weights: every face is its own map.
        assert lin_base.num_regions == r_base.num_regions


@EXACT_COINCIDENCES
def test_linear_regions_merge_duplicate_cancelling_units():
    # Units 0 and 1 are one neuron twice, with output weights +1 and -1: they cancel.
    rng = np.random.default_rng(16)
    w0 = rng.standard_normal((6, 2))
    w0[1] = w0[0]
    b0 = rng.standard_normal(6) * 0.3
    b0[1] = b0[0]
    w1 = rng.standard_normal((1, 6))
    w1[0, :2] = [1.0, -1.0]
    spec = NetSpec((w0, w1), (b0, np.zeros(1)))
    r = lrcore.slice_2d(spec.to_lrcore(), np.zeros(2), np.eye(2), (-2, 2, -2, 2))
    check_all(r, spec, generic=False)
    lin = r.linear_regions()
    check_linear_regions(r, lin)
    reduced = NetSpec((w0[2:], w1[:, 2:]), (b0[2:], np.zeros(1)))
    r_red = lrcore.slice_2d(reduced.to_lrcore(), np.zeros(2), np.eye(2), (-2, 2, -2, 2))
    assert r.num_regions > r_red.num_regions
    assert lin.num_regions == r_red.num_regions


# --- Degenerate geometry (exact oracle) -----------------------------------------------


def exact_case(spec, origin, basis, bounds=None, domain=None):
    """Check the slice against the exact oracle, computed whole and in 3 and 4 tiles.

    The cut lines pass near the constructed degeneracies; returns the whole slice.
    """
    for tiles in (4, 3, 1):
        r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, bounds, domain=domain, tiles=tiles)
        check_all(r, spec, generic=False)
        compare_with_oracle(r, oracle_slice(spec, origin, basis, r.domain, exact=True))
        # No two vertices at one place.
        v = r.vertices
        gap = np.linalg.norm(v[:, None, :] - v[None, :, :], axis=2)
        np.fill_diagonal(gap, np.inf)
        assert gap.min() > 1e-9 * diameter(r.domain), "two vertices at one place"
    return r


CONCURRENT_ROWS = np.array([[1, 0], [0, 1], [1, 1], [1, -1], [2, 1], [-1, 3]], dtype=float)


@pytest.mark.parametrize(
    ("origin", "basis", "bounds"),
    [
        ([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]], (-1, 1, -1, 1)),
        ([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]], (-0.7, 1.3, -1.1, 0.9)),
        ([-0.5, -0.5], [[1.0, 2.0], [2.0, -1.0]], (-1, 1, -1, 1)),
        # Crossings at non-dyadic positions of the box's sides: the interpolated values of
        # the other neurons at a new vertex are rounding residues, not zeros.
        ([-0.5, -0.5], [[1.0, 2.0], [2.0, -1.0]], (-0.7, 1.3, -1.1, 0.9)),
        ([0.25, 0.75], [[1.0, 3.0], [-2.0, 1.0]], (-0.7, 1.3, -1.1, 0.9)),
    ],
)
@EXACT_COINCIDENCES
def test_concurrent_lines_through_the_plane_origin(origin, basis, bounds):
    # Six neurons vanish at the input point `origin`, which is (s, t) = (0, 0).
    origin = np.asarray(origin)
    spec = lines_net(CONCURRENT_ROWS, -(CONCURRENT_ROWS @ origin))
    r = exact_case(spec, origin, np.asarray(basis), bounds)
    assert r.num_regions == 2 * len(CONCURRENT_ROWS)
    at_origin = np.flatnonzero(np.all(np.abs(r.vertices) <= 1e-12, axis=1))
    assert len(at_origin) == 1
    # All twelve faces meet there.
    assert sum(at_origin[0] in f for f in r.faces) == 2 * len(CONCURRENT_ROWS)


@EXACT_COINCIDENCES
def test_three_lines_concurrent_and_one_parallel():
    # Minimal: one hidden layer; neurons 1, 2, 3 vanish at (s, t) = (0, 0), neuron 0 is
    # parallel to neuron 3.
    w = np.array([[1.0, -1.0], [0.0, -2.0], [-1.0, 0.0], [-1.0, 1.0]])
    spec = NetSpec((w, np.ones((1, 4))), (np.array([-1.0, -1.0, -0.5, 0.0]), np.zeros(1)))
    origin, basis = np.array([-0.5, -0.5]), np.array([[1.0, 2.0], [2.0, -1.0]])
    exact_case(spec, origin, basis, (-2, 2, -2, 2))
    exact_case(
        NetSpec(spec.weights, spec.biases, "leaky_relu", 0.5), origin, basis, (-2, 2, -2, 2)
    )


@EXACT_COINCIDENCES
def test_concurrent_lines_off_the_origin_in_higher_dimension():
    # Five neurons vanish at the point x0 of R^4, which lies on the plane at (0.5, -0.25).
    rng = np.random.default_rng(17)
    origin = np.array([1.0, 0.0, 2.0, -1.0])
    basis = np.array([[2.0, 0.0, 0.0, 4.0], [0.0, 4.0, 0.0, 0.0]])
    x0 = origin + 0.5 * basis[0] - 0.25 * basis[1]
    w = rng.integers(-3, 4, (5, 4)).astype(float)
    spec = lines_net(w, -(w @ x0), rng.standard_normal((1, 5)))
    exact_case(spec, origin, basis, (-1, 1, -1, 1))


@EXACT_COINCIDENCES
def test_coincident_and_opposite_lines():
    rows = [[1, 2], [1, 2], [-1, -2], [2, 4], [0, 1], [3, -1]]
    biases = [0.5, 0.5, -0.5, 1.0, 0.25, 0.0]
    spec = lines_net(rows, biases)
    r = exact_case(spec, np.zeros(2), np.eye(2), (-1, 1, -1, 1))
    # Crossing the shared line flips all four of its neurons.
    pats = r.pattern_bools()
    _, fa, fb = interior_edges(r)
    flips = (pats[fa] != pats[fb]).sum(axis=1)
    assert set(flips.tolist()) == {1, 4}


def test_parallel_lines():
    spec = lines_net([[1, 0]] * 5 + [[0, 1]] * 2, [-0.9, -0.3, 0.0, 0.3, 0.6, 0.1, -0.6])
    r = exact_case(spec, np.zeros(2), np.eye(2), (-1, 1, -1, 1))
    assert r.num_regions == 6 * 3


@pytest.mark.parametrize(
    ("rows", "biases"),
    [
        ([[1, -1]], [0]),  # the diagonal through two corners
        ([[1, 1], [1, -1]], [-2, 0]),  # a line touching one corner only, and a diagonal
        ([[1, 0], [0, 1]], [-1, 1]),  # lines along the box's sides
        ([[1, 0], [1, 1], [1, -1]], [-1, 0, -2]),  # through a corner and along a side
    ],
)
@EXACT_COINCIDENCES
def test_lines_through_box_corners_and_along_sides(rows, biases):
    exact_case(lines_net(rows, biases), np.zeros(2), np.eye(2), (-1, 1, -1, 1))


@EXACT_COINCIDENCES
def test_dead_and_constant_neurons():
    rows = [[0, 0], [0, 0], [0, 0], [1, 1], [1, -2]]
    biases = [-1.0, 0.0, 2.0, 0.1, 0.3]  # always off, identically zero, always on
    spec = lines_net(rows, biases)
    r = exact_case(spec, np.zeros(2), np.eye(2), (-1, 1, -1, 1))
    pats = r.pattern_bools()
    assert not pats[:, 0].any()
    assert not pats[:, 1].any()
    assert pats[:, 2].all()
    assert not np.isin(r.edge_neurons[:, 1], [0, 1, 2]).any()


@EXACT_COINCIDENCES
def test_deep_degenerate_lines_on_earlier_lines():
    # Layer 0: (x, -x, y, -y). Layer 1: |x| + |y| - 1 (a diamond with corners on layer
    # 0's lines), relu(x) - relu(-x) = x (zero exactly on layer 0's line x = 0), |x| - 0.5
    # (two lines parallel to an earlier one) and |y| (touches zero only on y = 0).
    w0 = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    w1 = np.array([[1.0, 1, 1, 1], [1, -1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]])
    b1 = np.array([-1.0, 0.0, -0.5, 0.0])
    w2 = np.array([[1.0, 2.0, -1.0, 0.5]])
    spec = NetSpec((w0, w1, w2), (np.zeros(4), b1, np.zeros(1)))
    r = exact_case(spec, np.zeros(2), np.eye(2), (-1.5, 1.5, -1.5, 1.5))
    check_lines(r, spec, spec.to_lrcore(), num_lines=20, seed=18)
    # ... and the same in a shifted, scaled plane of R^3.
    spec3 = spec.with_layers((np.hstack([w0, np.zeros((4, 1))]), w1, w2), spec.biases)
    origin = np.array([0.5, -0.25, 7.0])
    basis = np.array([[0.5, 0.0, 3.0], [0.0, 0.25, -1.0]])
    exact_case(spec3, origin, basis, (-4, 2, -3, 5))


@EXACT_COINCIDENCES
def test_second_layer_lines_through_first_layer_vertices():
    # Layer 1's zero lines pass through crossings of layer 0's lines (found by a search
    # over small integer nets).
    w0 = np.array([[-1.0, 2.0], [-2.0, -1.0], [-2.0, -1.0], [-1.0, 1.0]])
    w1 = np.array([[2.0, -2.0, 1.0, -1.0], [0.0, -1.0, 0.0, 0.0]])
    spec = NetSpec(
        (w0, w1, np.array([[0.0, -1.0]])),
        (np.array([0.0, 0.5, 1.0, 1.0]), np.array([1.0, 0.5]), np.array([-0.5])),
    )
    r = exact_case(spec, np.array([-0.5, 0.0]), np.eye(2), (-1, 1, -1, 1))
    check_lines(r, spec, spec.to_lrcore(), num_lines=10, seed=21)


@EXACT_COINCIDENCES
def test_coincident_hyperplanes_of_two_layers_in_3d():
    # On this plane layer 0's two neurons are both -4s + 2t, and the layer-1 neuron
    # -2 leaky(z_1) vanishes on the same line: one line, three neurons. The 2D result has
    # one edge there; along a segment across it count_1d must find one breakpoint too.
    spec = NetSpec(
        (np.array([[-2.0, -2.0, 2.0], [0.0, -2.0, 0.0]]), np.array([[0.0, -2.0]]), np.eye(1)),
        (np.array([0.0, 1.0]), np.zeros(1), np.zeros(1)),
        "leaky_relu",
        0.5,
    )
    origin, basis = np.array([-0.5, 0.5, 0.0]), np.array([[0.0, 2.0, 0.0], [-2.0, -1.0, -2.0]])
    r = exact_case(spec, origin, basis, (-2, 2, -2, 2))
    assert r.num_regions == 2
    net = spec.to_lrcore()
    p, q = np.array([0.51406369, -0.08418795]), np.array([-0.44690553, 1.81049954])
    one_d = lrcore.count_1d(net, r.to_input(np.stack([p, q])))
    walk = spec.walk(r.to_input(np.stack([p, q])))
    assert walk.num_breakpoints == 1
    assert one_d.num_breakpoints == 1, (
        f"count_1d: {one_d.num_breakpoints} breakpoints at "
        f"{[x.hex() for x in one_d.breakpoints]}, the reference walk and the 2D slice have 1"
    )
    check_lines(r, spec, net, num_lines=20, seed=22)


def test_small_faces_far_from_the_origin_have_accurate_centroids_and_areas():
    # A 1e-6-wide face about 10 from the (s, t) origin: a shoelace sum over absolute
    # coordinates cancels away most of its area and moves its centroid off the face.
    spec = random_net([3, 39, 37, 2], 3916386508, "relu")
    origin, basis = gaussian_plane(3, 3916386509)
    bounds = (-11.007977998928494, 8.992022001071506, -8.800965848655508, 5.199034151344492)
    r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, bounds)
    area, cent = face_geometry(r)
    size = np.array([np.ptp(r.vertices[f], axis=0).max() for f in r.faces])
    assert size.min() < 1e-5
    # Rounding of the vertices themselves allows about 1e-15 / 1e-6 relative error.
    np.testing.assert_allclose(r.areas, area, rtol=1e-6, err_msg="areas")
    off = np.linalg.norm(r.centroids - cent, axis=1) / size
    assert off.max() <= 1e-3, f"a centroid is off by {off.max():.3g} of its face's size"
    check_all(r, spec)


@pytest.mark.parametrize(
    "domain",
    [
        # Dyadic corners: the lines through them below are exact in float64.
        [[0.0, 0.0], [2.0, 0.125], [0.25, 1.75]],  # triangle
        [[1.0, 0.0], [0.5, 0.875], [-0.5, 0.875], [-1.0, 0.0], [-0.5, -0.875], [0.5, -0.875]],
        [[0.5, -0.875], [-0.5, -0.875], [-1.0, 0.0], [-0.5, 0.875], [0.5, 0.875], [1.0, 0.0]],
    ],
)
@EXACT_COINCIDENCES
def test_domain_polygons(domain):
    spec = random_net([3, 12, 12, 1], 19, "relu")
    origin, basis = gaussian_plane(3, 119)
    r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, domain=domain)
    check_all(r, spec)
    assert polygon_area(r.domain) == pytest.approx(abs(polygon_area(domain)), rel=1e-12)
    compare_with_oracle(r, oracle_slice(spec, origin, basis, r.domain))
    check_lines(r, spec, spec.to_lrcore(), num_lines=10, seed=19)
    # Exact lines through a polygon's corners.
    dom = r.domain
    rows, biases = [], []
    for i in range(len(dom)):
        p, q = dom[i], dom[(i + 2) % len(dom)]
        rows.append([q[1] - p[1], p[0] - q[0]])
        biases.append(-(rows[-1][0] * p[0] + rows[-1][1] * p[1]))
    exact_case(lines_net(rows, biases), np.zeros(2), np.eye(2), domain=domain)


def test_plane_through_three_images():
    rng = np.random.default_rng(20)
    spec = random_net([784, 24, 16, 10], 20, "relu")
    net = spec.to_lrcore()
    images = rng.uniform(0, 1, (3, 784))
    plane = lrcore.Plane.through(*images)
    r = lrcore.slice_2d(net, plane, bounds=(0, 1, 0, 1))
    assert r.num_regions > 1
    check_all(r, spec)
    np.testing.assert_allclose(r.to_input([[0, 0], [1, 0], [0, 1]]), images, atol=1e-12)
    compare_with_oracle(r, oracle_slice(spec, plane.origin, plane.basis, r.domain))
    check_lines(r, spec, net, num_lines=10, seed=20)
    check_sampling(r, spec, n=80)


# --- Property tests -------------------------------------------------------------------


@st.composite
def slice_cases(draw, max_hidden=3, max_width=24):
    d = draw(st.integers(2, 6))
    widths = draw(st.lists(st.integers(1, max_width), min_size=1, max_size=max_hidden))
    activation = draw(activations)
    slope = draw(st.sampled_from([0.01, 0.2, -0.5])) if activation == "leaky_relu" else 0.01
    spec = random_net([d, *widths, draw(st.integers(1, 3))], draw(seeds), activation, slope)
    origin, basis = gaussian_plane(d, draw(seeds), scale=draw(st.sampled_from([0.0, 1.0, 3.0])))
    s0 = draw(st.floats(-3, 2))
    t0 = draw(st.floats(-3, 2))
    ws = draw(st.floats(0.05, 4))
    wt = draw(st.floats(0.05, 4))
    return spec, origin, basis, (s0, s0 + ws, t0, t0 + wt)


@given(case=slice_cases(), line_seed=seeds)
def test_property_partition_invariants(case, line_seed):
    spec, origin, basis, bounds = case
    net = spec.to_lrcore()
    r = lrcore.slice_2d(net, origin, basis, bounds)
    check_all(r, spec)
    check_lines(r, spec, net, num_lines=5, seed=line_seed)
    check_sampling(r, spec, n=50)
    if len(spec.weights) == 2:
        assert r.num_regions == line_cells_formula(spec, origin, basis, bounds)
    check_linear_regions(r, r.linear_regions())


@settings(max_examples=25)
@given(case=slice_cases(max_hidden=2, max_width=10))
def test_property_matches_oracle(case):
    spec, origin, basis, bounds = case
    r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, bounds)
    compare_with_oracle(r, oracle_slice(spec, origin, basis, r.domain))


@st.composite
def integer_cases(draw):
    """Nets of small integer weights and half-integer biases.

    Coincident, parallel and concurrent lines, and lines through vertices and box
    corners, are common among them, and exact.
    """
    d = draw(st.integers(2, 3))
    sizes = [d, *draw(st.lists(st.integers(1, 6), min_size=1, max_size=3)), 1]
    ints = st.integers(-2, 2)
    weights = tuple(
        np.array(draw(st.lists(st.lists(ints, min_size=i, max_size=i), min_size=o, max_size=o)))
        .astype(float)
        .reshape(o, i)
        for i, o in zip(sizes[:-1], sizes[1:])
    )
    biases = tuple(
        0.5 * np.array(draw(st.lists(ints, min_size=o, max_size=o)), dtype=float)
        for o in sizes[1:]
    )
    spec = NetSpec(weights, biases, draw(activations), 0.5)
    origin = 0.5 * np.array(draw(st.lists(ints, min_size=d, max_size=d)), dtype=float)
    basis = np.array(
        draw(st.lists(st.lists(ints, min_size=d, max_size=d), min_size=2, max_size=2)), float
    )
    half = draw(st.sampled_from([1.0, 2.0, 0.75]))
    return spec, origin, basis, (-half, half, -half, half)


# No shrinking: the integer arrays shrink slowly, and a failure prints its example.
@settings(
    max_examples=40,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    report_multiple_bugs=False,
)
@given(case=integer_cases())
@EXACT_COINCIDENCES
def test_property_degenerate_integer_nets_match_exact_oracle(case):
    spec, origin, basis, bounds = case
    gram = basis @ basis.T
    assume(np.linalg.det(gram) > 1e-9)
    r = exact_case(spec, origin, basis, bounds)
    check_sampling(r, spec, n=30)


@pytest.mark.parametrize("out_dim", [1, 3, 4, 5])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
@pytest.mark.parametrize("linear", [0, 3])
def test_vertex_outputs_are_the_forward_pass(out_dim, activation, linear):
    """Vertex outputs (fused in the core for up to 4 dense output rows) equal forward()."""
    rng = np.random.default_rng(out_dim * 10 + linear)
    sizes = [3, 13, 19, out_dim]  # widths that leave tails after 8 and 4 values
    weights = [rng.standard_normal((b, a)) / np.sqrt(a) for a, b in zip(sizes, sizes[1:])]
    biases = [0.3 * rng.standard_normal(b) for b in sizes[1:]]
    net = lrcore.Network(weights, biases, activation, 0.1, linear_units=[0, linear])
    plane = lrcore.Plane(rng.standard_normal(3), rng.standard_normal((2, 3)))
    r = lrcore.slice_2d(net, plane, bounds=(-2.0, 2.0, -2.0, 2.0), tiles=2)
    expected = net.forward(plane.to_input(r.vertices))
    scale = np.abs(expected).max() + 1.0
    np.testing.assert_allclose(r.vertex_outputs, expected, rtol=0, atol=1e-12 * scale)


@pytest.mark.parametrize("rtol", [None, 1e-10])
@pytest.mark.parametrize("sizes", [[2, 130, 260, 1], [2, 300, 140, 3], [2, 130, 40, 300, 1]])
def test_wide_rows_in_chunks_of_blocks(sizes, rtol):
    """Rows of 128 to 511 values, in chunks of 2 to 4 blocks, keep their values.

    The core's RowStore lays a chunk's blocks out anew in place where a layer's width grows
    or shrinks, and sizes the chunks it takes afterwards by the new width (130 -> 40 ->
    300: chunks of 4, then 1, then 2 blocks); with thousands of vertices (several chunks)
    every vertex's outputs equal forward() and every face's centroid has the face's
    pattern.
    """
    net = lrcore.Network.random(sizes, seed=3)
    plane = lrcore.Plane(np.zeros(2), np.eye(2))
    r = lrcore.slice_2d(net, plane, bounds=(-1.0, 1.0, -1.0, 1.0), rtol=rtol, tiles=1)
    assert r.num_vertices > 4 * 2048
    expected = net.forward(plane.to_input(r.vertices))
    scale = np.abs(expected).max() + 1.0
    np.testing.assert_allclose(r.vertex_outputs, expected, rtol=0, atol=1e-11 * scale)
    centroids = r.centroids
    assert np.array_equal(net.patterns(plane.to_input(centroids)), r.pattern_bools())
