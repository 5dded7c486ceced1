"""slice_2d input handling, batches and threads, limits, plotting and the density map."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrcore
from support import random_net, seeds

NET = random_net([3, 12, 12, 2], seed=30)
ORIGIN = np.array([0.3, -0.2, 0.1])
BASIS = np.array([[1.0, 0.5, -0.25], [-0.5, 1.0, 0.75]])

ARRAYS = (
    "vertices",
    "vertex_outputs",
    "face_offsets",
    "face_vertices",
    "edges",
    "edge_neurons",
    "patterns",
)


def same_slice(a, b):
    """Exact equality of two SliceResults."""
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    np.testing.assert_array_equal(a.domain, b.domain)
    np.testing.assert_array_equal(a.plane.origin, b.plane.origin)
    np.testing.assert_array_equal(a.plane.basis, b.plane.basis)


# --- Plane ----------------------------------------------------------------------------


def test_plane_maps_plane_coordinates_to_inputs():
    plane = lrcore.Plane(ORIGIN, BASIS)
    st_points = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, -2.0]])
    expected = ORIGIN + st_points[:, :1] * BASIS[0] + st_points[:, 1:] * BASIS[1]
    np.testing.assert_allclose(plane.to_input(st_points), expected, rtol=1e-15)
    np.testing.assert_allclose(plane.to_input([0.5, -2.0]), expected[3], rtol=1e-15)
    assert plane.input_dim == 3
    through = lrcore.Plane.through(ORIGIN, ORIGIN + BASIS[0], ORIGIN + BASIS[1])
    np.testing.assert_allclose(through.basis, BASIS, rtol=1e-15, atol=1e-15)
    np.testing.assert_array_equal(through.origin, ORIGIN)


def test_plane_argument_forms_agree():
    net = NET.to_lrcore()
    plane = lrcore.Plane(ORIGIN, BASIS)
    by_arrays = lrcore.slice_2d(net, ORIGIN, BASIS)
    same_slice(lrcore.slice_2d(net, plane), by_arrays)
    same_slice(lrcore.slice_2d(net, ORIGIN.tolist(), BASIS.tolist()), by_arrays)
    same_slice(lrcore.slice_2d(net, plane, bounds=None), by_arrays)  # the default box
    same_slice(lrcore.slice_2d(net, plane, bounds=(-1, 1, -1, 1)), by_arrays)
    same_slice(lrcore.slice_2d(net, plane, domain=[[-1, -1], [1, -1], [1, 1], [-1, 1]]), by_arrays)
    # Integer planes equal their float copies.
    ints = lrcore.slice_2d(net, np.array([1, 0, -1]), np.array([[1, 2, 0], [0, -1, 3]]))
    floats = lrcore.slice_2d(net, np.array([1.0, 0, -1]), np.array([[1.0, 2, 0], [0, -1, 3]]))
    same_slice(ints, floats)


def test_clockwise_and_redundant_domain_corners():
    net = NET.to_lrcore()
    square = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    base = lrcore.slice_2d(net, ORIGIN, BASIS, domain=square)
    # Clockwise order, a repeated corner and a corner in the middle of a side.
    messy = np.array([[-1.0, -1], [-1, 1], [1, 1], [1, 1], [1, 0], [1, -1]])
    r = lrcore.slice_2d(net, ORIGIN, BASIS, domain=messy)
    assert r.num_regions == base.num_regions
    np.testing.assert_allclose(np.sort(r.areas), np.sort(base.areas), rtol=1e-9, atol=1e-14)


# --- Bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"basis": [[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]]}, "basis"),  # collinear
        ({"basis": [[1.0, 0.0, 0.0], [-3.0, 0.0, 0.0]]}, "basis"),  # opposite
        ({"basis": [[0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]}, "basis"),  # zero row
        ({"basis": np.zeros((2, 3))}, "basis"),
        ({"basis": np.eye(3)}, "basis"),  # three rows
        ({"basis": np.ones(3)}, "basis"),  # 1-d
        ({"basis": np.eye(4)[:2]}, "basis"),  # wrong dimension
        ({"basis": [[np.nan, 0.0, 0.0], [0.0, 1.0, 0.0]]}, "basis"),
        ({"basis": [[np.inf, 0.0, 0.0], [0.0, 1.0, 0.0]]}, "basis"),
        ({"basis": None}, "basis"),
        ({"origin": np.zeros((1, 3))}, "origin"),
        ({"origin": [0.0, np.nan, 0.0]}, "origin"),
        ({"origin": np.zeros(4), "basis": np.eye(4)[:2]}, "origin"),  # net's input is 3-d
        ({"bounds": (0.0, 0.0, -1.0, 1.0)}, "bounds"),  # empty
        ({"bounds": (1.0, -1.0, -1.0, 1.0)}, "bounds"),  # inverted s
        ({"bounds": (-1.0, 1.0, 1.0, -1.0)}, "bounds"),  # inverted t
        ({"bounds": (-1.0, 1.0, -1.0)}, "bounds"),
        ({"bounds": (-1.0, np.nan, -1.0, 1.0)}, "bounds"),
        ({"bounds": (-1.0, np.inf, -1.0, 1.0)}, "bounds"),
        ({"domain": [[0, 0], [2, 0], [1, 0.5], [2, 2], [0, 2]]}, "domain"),  # dart
        ({"domain": [[0, 0], [1, 1], [1, 0], [0, 1]]}, "domain"),  # bow tie
        ({"domain": [[0, 0], [1, 1], [2, 2]]}, "domain"),  # zero area
        ({"domain": [[0, 0], [1, 1]]}, "domain"),
        ({"domain": [[0, 0], [1, 1], [1, 1], [0, 0]]}, "domain"),  # 2 distinct corners
        ({"domain": np.zeros((4, 3))}, "domain"),
        ({"domain": [[0, 0], [1, np.nan], [0, 1]]}, "domain"),
        ({"rtol": -1.0}, "rtol"),
        ({"rtol": np.nan}, "rtol"),
        ({"num_threads": 0}, "num_threads"),
        ({"max_regions": 0}, "max_regions"),
    ],
)
def test_bad_input_raises_value_error_naming_it(kwargs, name):
    args = {"origin": ORIGIN, "basis": BASIS, **kwargs}
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        lrcore.slice_2d(NET.to_lrcore(), **args)


def test_star_domain_is_not_convex():
    # A pentagram turns left at every corner but winds twice: it is not convex.
    angles = np.arange(5) * 4 * np.pi / 5
    star = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    with pytest.raises(ValueError, match=r"^domain\b"):
        lrcore.slice_2d(NET.to_lrcore(), ORIGIN, BASIS, domain=star)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"origin": "abc"}, "origin"),
        ({"basis": BASIS.astype(complex)}, "basis"),
        ({"basis": [["a", "b", "c"], ["d", "e", "f"]]}, "basis"),
        ({"domain": np.array([[0, 0], [1, 0], [0, 1]], dtype=object)}, "domain"),
    ],
)
def test_bad_types_raise_type_error_naming_them(kwargs, name):
    args = {"origin": ORIGIN, "basis": BASIS, **kwargs}
    with pytest.raises(TypeError, match=rf"^{name}\b"):
        lrcore.slice_2d(NET.to_lrcore(), **args)


def test_net_must_be_a_network():
    with pytest.raises(TypeError, match=r"^net\b"):
        lrcore.slice_2d(NET, ORIGIN, BASIS)  # a test helper, not an lrcore.Network


def test_plane_arguments_are_checked():
    plane = lrcore.Plane(ORIGIN, BASIS)
    net = NET.to_lrcore()
    with pytest.raises(ValueError, match=r"^basis\b"):
        lrcore.slice_2d(net, plane, BASIS)
    with pytest.raises(ValueError, match=r"^basis\b"):
        lrcore.slice_2d(net, [plane, plane], BASIS)
    other = lrcore.Plane(np.zeros(4), np.eye(4)[:2])
    with pytest.raises(ValueError, match=r"^origin\b.*dimension 4"):
        lrcore.slice_2d(net, other)
    with pytest.raises(ValueError, match=r"^origin\[1\].*dimension 4"):
        lrcore.slice_2d(net, [plane, other])
    with pytest.raises(ValueError, match=r"^(x0|x1|x2|basis)\b"):
        lrcore.Plane.through(ORIGIN, ORIGIN, ORIGIN + 1)  # two equal points
    with pytest.raises(ValueError, match=r"^(x0|x1|x2|basis)\b"):
        lrcore.Plane.through(ORIGIN, 2 * ORIGIN, 3 * ORIGIN)  # collinear points
    with pytest.raises(ValueError, match=r"x0, x1, x2"):
        lrcore.Plane.through(ORIGIN, np.zeros(2), ORIGIN)
    with pytest.raises(ValueError, match=r"^st\b"):
        plane.to_input(np.zeros((4, 3)))


def test_output_index_is_checked():
    r = lrcore.slice_2d(NET.to_lrcore(), ORIGIN, BASIS)
    for bad in (2, -1):
        with pytest.raises(IndexError, match=r"^output\b"):
            r.decision_boundary(output=bad)


# --- Batches and threads --------------------------------------------------------------


def random_planes(d: int, count: int, seed: int) -> list[lrcore.Plane]:
    rng = np.random.default_rng(seed)
    return [
        lrcore.Plane(rng.standard_normal(d), rng.standard_normal((2, d))) for _ in range(count)
    ]


@pytest.mark.parametrize("container", [list, tuple])
def test_batch_equals_single_calls(container):
    spec = random_net([5, 16, 16, 3], seed=31)
    net = spec.to_lrcore()
    planes = random_planes(5, 7, seed=31)
    domain = [[-1.0, -2.0], [2.0, -1.0], [1.5, 1.0], [-1.0, 1.5]]
    batch = lrcore.slice_2d(net, container(planes), domain=domain, num_threads=2)
    assert isinstance(batch, list)
    assert len(batch) == len(planes)
    for plane, r in zip(planes, batch):
        assert r.plane is plane
        same_slice(r, lrcore.slice_2d(net, plane, domain=domain, num_threads=1))


def test_empty_batch_is_an_empty_list():
    assert lrcore.slice_2d(NET.to_lrcore(), []) == []


@settings(max_examples=10)
@given(net_seed=seeds, plane_seed=seeds, count=st.integers(1, 6))
def test_thread_count_does_not_change_results(net_seed, plane_seed, count):
    spec = random_net([4, 20, 12, 1], net_seed, "leaky_relu", 0.1)
    net = spec.to_lrcore()
    planes = random_planes(4, count, plane_seed)
    one = lrcore.slice_2d(net, planes, bounds=(-2, 2, -1, 3), num_threads=1)
    two = lrcore.slice_2d(net, planes, bounds=(-2, 2, -1, 3), num_threads=2)
    many = lrcore.slice_2d(net, planes, bounds=(-2, 2, -1, 3), num_threads=8)
    for a, b, c in zip(one, two, many):
        same_slice(a, b)
        same_slice(a, c)


# --- Limits ---------------------------------------------------------------------------


def test_max_regions_stops_with_a_helpful_message():
    net = random_net([2, 32, 32, 1], seed=32).to_lrcore()
    full = lrcore.slice_2d(net, np.zeros(2), np.eye(2), (-3, 3, -3, 3))
    assert full.num_regions > 100
    exact = lrcore.slice_2d(
        net, np.zeros(2), np.eye(2), (-3, 3, -3, 3), max_regions=full.num_regions
    )
    same_slice(exact, full)
    for limit in (1, 10, full.num_regions - 1):
        with pytest.raises(
            lrcore.LimitExceeded, match=rf"max_regions={limit}\b.*raise max_regions"
        ):
            lrcore.slice_2d(net, np.zeros(2), np.eye(2), (-3, 3, -3, 3), max_regions=limit)
    # A batch stops too, and the interpreter goes on.
    planes = [lrcore.Plane(np.zeros(2), np.eye(2))] * 3
    with pytest.raises(lrcore.LimitExceeded, match="max_regions"):
        lrcore.slice_2d(net, planes, bounds=(-3, 3, -3, 3), max_regions=10, num_threads=2)
    assert issubclass(lrcore.LimitExceeded, Exception)


def test_max_memory_stops_before_the_memory_runs_out():
    net = random_net([2, 64, 64, 1], seed=33).to_lrcore()
    full = lrcore.slice_2d(net, np.zeros(2), np.eye(2), (-3, 3, -3, 3))
    # A generous cap changes nothing; one far below the partition's size stops the call
    # with the estimate and the ways out, whole or in tiles, and the interpreter goes on.
    roomy = lrcore.slice_2d(net, np.zeros(2), np.eye(2), (-3, 3, -3, 3), max_memory=1e9)
    same_slice(roomy, full)
    for tiles in (1, 4):
        with pytest.raises(
            lrcore.LimitExceeded, match=r"max_memory=0\.1 MB \(about [0-9.]+ MB at [0-9]+ "
        ):
            lrcore.slice_2d(
                net, np.zeros(2), np.eye(2), (-3, 3, -3, 3), max_memory=1e5, tiles=tiles
            )
    for bad in (0, -1.0, float("nan"), float("inf"), "lots"):
        with pytest.raises(ValueError, match="max_memory"):
            lrcore.slice_2d(net, np.zeros(2), np.eye(2), max_memory=bad)


# --- Plotting and the density map -----------------------------------------------------


@pytest.fixture
def pyplot():
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    yield plt
    plt.close("all")


@pytest.mark.parametrize("color", ["random", "area", "output", "values"])
def test_plot_draws_one_polygon_per_region(pyplot, color):
    from matplotlib.collections import LineCollection, PolyCollection

    r = lrcore.slice_2d(NET.to_lrcore(), ORIGIN, BASIS, (-2, 2, -1, 1.5))
    values = np.arange(r.num_regions, dtype=float) if color == "values" else color
    ax = r.plot(color=values, boundary=0.0)
    assert ax.figure is not None
    polys = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(polys) == 1
    paths = polys[0].get_paths()
    assert len(paths) == r.num_regions
    for path, face in zip(paths, r.faces):
        np.testing.assert_allclose(path.vertices[: len(face)], r.vertices[face])
    lines = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines) == 2  # region edges, decision boundary
    assert len(lines[0].get_segments()) == r.num_edges
    assert len(lines[1].get_segments()) == len(r.decision_boundary(0.0))
    assert ax.get_xlim() == (-2.0, 2.0)
    assert ax.get_ylim() == (-1.0, 1.5)


def test_plot_on_given_axes_without_edges(pyplot):
    r = lrcore.slice_2d(NET.to_lrcore(), ORIGIN, BASIS)
    _, ax = pyplot.subplots()
    assert r.plot(ax=ax, edges=False) is ax
    assert len(ax.collections) == 1
    with pytest.raises(ValueError, match=r"^color\b"):
        r.plot(ax=ax, color="rainbow")
    with pytest.raises(ValueError, match=r"^color\b"):
        r.plot(ax=ax, color=np.zeros(r.num_regions + 1))


@pytest.mark.parametrize("bins", [1, 7, 32, (5, 9)])
@pytest.mark.parametrize(
    "domain",
    [None, [[0.0, 0.0], [2.0, 0.25], [0.5, 1.75]]],  # the default box, a triangle
)
def test_density_map_integrates_to_the_region_count(bins, domain):
    r = lrcore.slice_2d(NET.to_lrcore(), ORIGIN, BASIS, domain=domain)
    density, s_edges, t_edges = r.density_map(bins=bins)
    nb = (bins, bins) if isinstance(bins, int) else bins
    assert density.shape == nb
    assert s_edges.shape == (nb[0] + 1,)
    assert t_edges.shape == (nb[1] + 1,)
    lo, hi = r.domain.min(axis=0), r.domain.max(axis=0)
    assert s_edges[0] == lo[0]
    assert s_edges[-1] == hi[0]
    assert t_edges[0] == lo[1]
    assert t_edges[-1] == hi[1]
    cell = np.diff(s_edges)[:, None] * np.diff(t_edges)[None, :]
    assert (density * cell).sum() == pytest.approx(r.num_regions, rel=1e-12)
    # Each face counts where its centroid is.
    cent = r.centroids
    i = np.clip(np.searchsorted(s_edges, cent[:, 0], side="right") - 1, 0, nb[0] - 1)
    j = np.clip(np.searchsorted(t_edges, cent[:, 1], side="right") - 1, 0, nb[1] - 1)
    counts = np.zeros(nb)
    np.add.at(counts, (i, j), 1)
    np.testing.assert_allclose(density * cell, counts, rtol=1e-12)
