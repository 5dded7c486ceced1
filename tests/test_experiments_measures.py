"""Measures of the curvature study (issue 15), each against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrcore
from lrcore.experiments.measures import (
    checkpoint_table,
    hanin_rolnick_density,
    interpolant_slope_jumps,
    local_tube_map,
    slope_jumps,
    tube_density_map,
)


# -- slope jumps --------------------------------------------------------------------------
def _path_output(net: lrcore.Network, result: lrcore.PathResult, s: np.ndarray) -> np.ndarray:
    return net.forward(result.positions_to_points(s))


@pytest.mark.parametrize(
    ("sizes", "activation", "closed"),
    [
        ([2, 12, 12, 1], "relu", False),
        ([3, 10, 8, 2], "leaky_relu", False),
        ([2, 16, 16, 1], "relu", True),
    ],
)
def test_slope_jumps_match_finite_differences(sizes, activation, closed):
    net = lrcore.Network.random(sizes, activation=activation, negative_slope=0.2, seed=3)
    rng = np.random.default_rng(1)
    if closed:
        angles = np.linspace(0, 2 * np.pi, 37, endpoint=False)
        path = 1.5 * np.c_[np.cos(angles), np.sin(angles)]
    else:
        path = 2.0 * rng.standard_normal((6, sizes[0]))
    sj = slope_jumps(net, path, closed)
    result = lrcore.count_1d(net, path, closed)
    assert sj.positions.size == result.num_breakpoints > 5
    # Central differences inside each side of each breakpoint, well within its piece and
    # its polyline segment, where the output is affine in s: exact up to rounding.
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    marks = np.sort(np.concatenate([sj.positions, arc, [sj.length]]))
    gaps = np.diff(marks)
    h = 0.2 * gaps[gaps > 1e-9].min()
    checked = 0
    for b, before, after in zip(sj.positions, sj.before, sj.after):
        if np.min(np.abs(arc - b)) < 2.5 * h or b < 2.5 * h or sj.length - b < 2.5 * h:
            continue  # the tangent changes there (a polyline vertex or the path's end)
        left = _path_output(net, result, np.array([b - 2 * h, b - h]))
        right = _path_output(net, result, np.array([b + h, b + 2 * h]))
        fd_before = (left[1] - left[0]) / h
        fd_after = (right[1] - right[0]) / h
        scale = max(1.0, np.abs(fd_before).max())
        np.testing.assert_allclose(before, fd_before, rtol=1e-6, atol=1e-7 * scale)
        np.testing.assert_allclose(after, fd_after, rtol=1e-6, atol=1e-7 * scale)
        checked += 1
    assert checked >= 3
    assert np.all(sj.jumps >= 0)
    assert sj.total == pytest.approx(sj.jumps.sum())


@pytest.mark.parametrize("slope", [0.0, 0.3])
def test_slope_jump_of_one_neuron_closed_form(slope):
    # f(x) = a * σ(w·x + b) + c: one breakpoint on a segment through the line, where the
    # slope along unit direction t jumps by |a (1 - slope) w·t|.
    w, b, a = np.array([0.7, -1.3]), 0.4, -2.5
    activation = "leaky_relu" if slope else "relu"
    net = lrcore.Network(
        [w[None, :], np.array([[a]])], [[b], [1.0]], activation, negative_slope=slope
    )
    start, end = np.array([-2.0, -1.0]), np.array([1.5, 2.0])
    sj = slope_jumps(net, np.stack([start, end]))
    t = (end - start) / np.linalg.norm(end - start)
    assert sj.jumps.tolist() == pytest.approx([abs(a * (1 - slope) * (w @ t))], rel=1e-12)
    # Where the line is crossed: w·(start + s t) + b = 0.
    assert sj.positions[0] == pytest.approx(-(w @ start + b) / (w @ t), rel=1e-12)
    sj_back = slope_jumps(net, np.stack([end, start]))
    assert sj_back.jumps == pytest.approx(sj.jumps, rel=1e-12)


def test_slope_jumps_dead_neuron_and_reuse_of_result():
    # Neuron 1 flips, but its output weight is 0: a breakpoint with no jump.
    net = lrcore.Network(
        [np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[2.0, 0.0]])], [np.zeros(2), [0.0]]
    )
    path = np.array([[-1.0, -2.0], [1.0, 2.0]])
    result = lrcore.count_1d(net, path, return_patterns=True)
    sj = slope_jumps(net, path, result=result)
    assert sj.positions.size == 1  # both lines cross at the origin: one breakpoint
    t = np.array([1.0, 2.0]) / math.sqrt(5)
    assert sj.jumps[0] == pytest.approx(2 * t[0])
    off = np.array([[-1.0, -1.5], [1.0, 2.5]])
    sj2 = slope_jumps(net, off)
    assert sj2.positions.size == 2
    assert sorted(sj2.jumps.tolist()) == pytest.approx([0.0, 2 * 2 / math.sqrt(20)])
    with pytest.raises(ValueError, match="return_patterns"):
        slope_jumps(net, path, result=lrcore.count_1d(net, path))
    with pytest.raises(ValueError, match="another path"):
        slope_jumps(net, off, result=result)
    with pytest.raises(TypeError, match="net"):
        slope_jumps("net", path)  # type: ignore[arg-type]


def test_slope_jump_density_windows():
    net = lrcore.Network.random([2, 16, 16, 1], seed=0)
    path = np.array([[-3.0, -1.0], [3.0, 1.0]])
    sj = slope_jumps(net, path)
    centres, density = sj.density(sj.length / 4)
    assert centres.size == 4
    # The windows tile the path: their sums add up to the total variation.
    assert density.sum() * sj.length / 4 == pytest.approx(sj.total)
    _, whole = sj.density(sj.length, at=[sj.length / 2])
    assert whole[0] == pytest.approx(sj.total / sj.length)


def test_interpolant_slope_jumps_approximate_second_derivative():
    # sin along a circle of radius 2 (arc length s): |f''| = |sin(s)|/... integrate.
    n = 2000
    angles = 2 * np.pi * np.arange(n) / n
    points = 2.0 * np.c_[np.cos(angles), np.sin(angles)]
    s = 2.0 * angles
    values = np.sin(3 * s / 2.0)  # f(s) = sin(1.5 s), |f''| = 2.25 |sin(1.5 s)|
    sj = interpolant_slope_jumps(points, values, closed=True)
    assert sj.positions.size == n
    window = sj.length / 8
    centres, density = sj.density(window)
    # Exact window mean of 2.25 |sin(1.5 s)| (chord lengths differ from arc by 1e-6).
    fine = np.linspace(0, 4 * np.pi, 400_001)
    bend = 2.25 * np.abs(np.sin(1.5 * fine))
    expected = [bend[(fine >= c - window / 2) & (fine < c + window / 2)].mean() for c in centres]
    np.testing.assert_allclose(density, expected, rtol=2e-3)
    open_sj = interpolant_slope_jumps(points, values, closed=False)
    assert open_sj.positions.size == n - 2


# -- tube density map ---------------------------------------------------------------------
def _ellipse(n: int = 400) -> np.ndarray:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return 0.8 * np.c_[np.cos(angles), 0.6 * np.sin(angles)]


def _interior_length(partition: lrcore.SliceResult) -> float:
    inner = partition.edges[partition.edge_neurons[:, 0] >= 0]
    steps = partition.vertices[inner[:, 0]] - partition.vertices[inner[:, 1]]
    return float(np.linalg.norm(steps, axis=1).sum())


def test_tube_map_bins_match_slices_of_each_bin():
    # Oracle: slice_2d with the bin itself as its (convex) domain; its interior edges are
    # the region boundaries inside the bin (lrcore's own clipping, not the map's).
    net = lrcore.Network.random([2, 12, 12, 1], seed=2)
    tube = tube_density_map(net, _ellipse(), half_width=0.25, s_bins=8, r_bins=3)
    assert tube.lengths.shape == tube.areas.shape == (8, 3)
    assert tube.lengths.sum() > 5
    for i in range(8):
        for j in range(3):
            piece = lrcore.slice_2d(net, np.zeros(2), np.eye(2), domain=tube.quad(i, j))
            assert tube.lengths[i, j] == pytest.approx(
                _interior_length(piece), rel=1e-9, abs=1e-12
            )
            assert tube.areas[i, j] == pytest.approx(piece.areas.sum(), rel=1e-12)
    np.testing.assert_allclose(tube.density, tube.lengths / tube.areas)
    assert tube.profile() == pytest.approx(tube.lengths.sum(0) / tube.areas.sum(0))
    # Fine bins tile the tube of the ellipse, of area perimeter × width (Steiner: the
    # offsets on both sides cancel) and converge at second order.
    for bins, tol in ((128, 1e-3), (512, 1e-4)):
        fine = tube_density_map(net, _ellipse(2000), half_width=0.25, s_bins=bins, r_bins=3)
        assert fine.areas.sum() == pytest.approx(fine.s_edges[-1] * 0.5, rel=tol)


def test_tube_map_matches_crofton_sampling_of_patterns():
    # Oracle: Crofton's formula on dense samples. Along parallel lines of spacing h in K
    # directions, count activation-pattern changes between consecutive samples (located
    # in a bin by a point-in-quadrilateral test); a boundary of length L in a bin meets
    # 2 L / (pi h) of them on average over the directions.
    net = lrcore.Network.random([2, 12, 12, 1], seed=2)
    tube = tube_density_map(net, _ellipse(), half_width=0.25, s_bins=8, r_bins=2)
    quads = np.stack([tube.quad(i, j) for i in range(8) for j in range(2)])
    h, directions = 0.004, 12
    flat = tube.corners.reshape(-1, 2)
    centre = (flat.min(0) + flat.max(0)) / 2
    reach = np.linalg.norm(flat.max(0) - flat.min(0)) / 2 + 0.01
    grid = np.arange(-reach, reach, h) + h / 2
    counts = np.zeros(len(quads))
    for k in range(directions):
        angle = np.pi * (k + 0.5) / directions
        along = np.array([np.cos(angle), np.sin(angle)])
        across = np.array([-along[1], along[0]])
        pts = centre + grid[None, :, None] * along + grid[:, None, None] * across
        pattern = net.patterns(pts.reshape(-1, 2)).reshape(grid.size, grid.size, -1)
        change = np.any(pattern[:, 1:] != pattern[:, :-1], axis=2)
        mid = ((pts[:, 1:] + pts[:, :-1]) / 2)[change]
        side = np.roll(quads, -1, axis=1) - quads
        rel = mid[:, None, None, :] - quads[None]
        cross = side[None, ..., 0] * rel[..., 1] - side[None, ..., 1] * rel[..., 0]
        inside = np.all(cross >= 0, axis=2)
        counts += inside.sum(axis=0)
    estimate = (np.pi * h / 2) * counts / directions
    np.testing.assert_allclose(estimate, tube.lengths.ravel(), rtol=0.04)
    assert estimate.sum() == pytest.approx(tube.lengths.sum(), rel=0.015)


def test_tube_map_of_one_neuron_closed_form():
    # One neuron: the boundary is the line w·x + b = 0, at distance d from the centre
    # of a unit circle; within the tube 0.7 <= |x| <= 1.3 it has length
    # 2 (sqrt(1.3² - d²) - sqrt(0.7² - d²)).
    w, b = np.array([0.6, 0.8]), -0.35
    net = lrcore.Network([w[None, :], np.ones((1, 1))], [[b], [0.0]])
    angles = np.linspace(0, 2 * np.pi, 1000, endpoint=False)
    circle = np.c_[np.cos(angles), np.sin(angles)]
    tube = tube_density_map(net, circle, half_width=0.3, s_bins=128, r_bins=6)
    d = abs(b)
    chord = 2 * (math.sqrt(1.3**2 - d**2) - math.sqrt(0.7**2 - d**2))
    assert tube.lengths.sum() == pytest.approx(chord, rel=2e-3)
    # Through the centre: each offset band holds two radial pieces of length dr, in an
    # annulus of area pi ((1 + r1)² - (1 + r0)²) (r > 0 outside the counter-clockwise
    # circle).
    centred = lrcore.Network([w[None, :], np.ones((1, 1))], [[0.0], [0.0]])
    tube = tube_density_map(centred, circle, half_width=0.3, s_bins=128, r_bins=6)
    r0, r1 = tube.r_edges[:-1], tube.r_edges[1:]
    expected = 2 * (r1 - r0) / (np.pi * ((1 + r1) ** 2 - (1 + r0) ** 2))
    np.testing.assert_allclose(tube.profile(), expected, rtol=2e-3)
    # Clockwise travel flips the side: the profile reverses.
    flipped = tube_density_map(centred, circle[::-1], half_width=0.3, s_bins=128, r_bins=6)
    np.testing.assert_allclose(flipped.profile(), expected[::-1], rtol=2e-3)


def test_tube_map_in_a_plane_of_higher_dimension_and_errors():
    net = lrcore.Network.random([4, 10, 1], seed=5)
    basis = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 2)))[0].T
    plane = lrcore.Plane(np.full(4, 0.1), basis)
    tube = tube_density_map(net, _ellipse(), half_width=0.2, s_bins=6, r_bins=2, plane=plane)
    piece = lrcore.slice_2d(net, plane, domain=tube.quad(2, 1))
    assert tube.lengths[2, 1] == pytest.approx(_interior_length(piece), rel=1e-9, abs=1e-12)
    with pytest.raises(ValueError, match="plane"):
        tube_density_map(net, _ellipse(), half_width=0.2)
    net2 = lrcore.Network.random([2, 4, 1], seed=0)
    with pytest.raises(ValueError, match="half_width"):
        tube_density_map(net2, _ellipse(), half_width=0.6)  # radius of curvature 0.288
    with pytest.raises(ValueError, match="curve"):
        tube_density_map(net2, np.zeros((5, 3)), half_width=0.1)


# -- Hanin-Rolnick ------------------------------------------------------------------------
def _one_layer(rng: np.random.Generator, n: int, bias: np.ndarray) -> lrcore.Network:
    weights = rng.normal(0.0, 1.0, (n, 2))
    return lrcore.Network([weights, np.ones((1, n)) / n], [bias, [0.0]])


def test_hanin_rolnick_one_gaussian_layer_closed_forms():
    special = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(0)
    n, sigma_b = 3000, 0.5
    net = _one_layer(rng, n, rng.normal(0.0, sigma_b, n))
    a, c = np.array([-0.5, 0.2]), np.array([0.8, 0.6])
    length = float(np.linalg.norm(c - a))
    hr = hanin_rolnick_density(
        net, np.stack([a, c]), bias_distribution="normal", bias_scale=sigma_b, samples=1000
    )
    # Given the weights, neuron j crosses iff -b_j lies between w_j·a and w_j·c:
    # probability p_j = |Φ(w_j·c / σ_b) - Φ(w_j·a / σ_b)|.
    w = net.weights[0]
    p = np.abs(special.ndtr(w @ c / sigma_b) - special.ndtr(w @ a / sigma_b))
    assert hr.expected == pytest.approx(p.sum() / length, rel=1e-4)
    # Over the weights too (w ~ N(0, I), b ~ N(0, σ_b²)): z(a), z(c) are jointly normal
    # with correlation ρ and P(sign change) = arccos(ρ) / π.
    rho = (a @ c + sigma_b**2) / math.sqrt((a @ a + sigma_b**2) * (c @ c + sigma_b**2))
    closed = n * math.acos(rho) / math.pi / length
    assert abs(hr.expected - closed) < 4 * math.sqrt(n) * p.std() / length
    # The exact count is a sum of independent Bernoulli(p_j) given the weights.
    assert abs(hr.measured - p.sum() / length) < 4 * math.sqrt(np.sum(p * (1 - p))) / length
    assert hr.ratio == pytest.approx(hr.measured / hr.expected)
    assert hr.per_layer.tolist() == pytest.approx([hr.expected])


def test_hanin_rolnick_uniform_bias_fixed_weights_closed_form():
    # Uniform bias on [-B, B]: neuron j crosses with probability |I_j ∩ [-B, B]| / 2B,
    # I_j the interval between -w_j·a and -w_j·c. Over a polyline the probabilities add
    # segment by segment.
    rng = np.random.default_rng(1)
    n, bound = 40, 0.7
    net = _one_layer(rng, n, rng.uniform(-bound, bound, n))
    path = np.array([[-0.6, 0.1], [0.3, 0.5], [0.9, -0.4]])
    hr = hanin_rolnick_density(net, path, samples=20_000, bias_scale=bound)
    w = net.weights[0]
    total, length = 0.0, 0.0
    for x0, x1 in zip(path[:-1], path[1:]):
        lo, hi = np.minimum(w @ x0, w @ x1), np.maximum(w @ x0, w @ x1)
        total += np.sum(np.clip(np.minimum(hi, bound) - np.maximum(lo, -bound), 0, None))
        length += float(np.linalg.norm(x1 - x0))
    assert hr.expected == pytest.approx(total / (2 * bound) / length, rel=2e-3)
    assert hr.length == pytest.approx(length)
    # PyTorch's bound 1/sqrt(fan_in) is the default.
    default = hanin_rolnick_density(net, path, samples=100)
    explicit = hanin_rolnick_density(net, path, samples=100, bias_scale=1 / math.sqrt(2))
    assert default.expected == explicit.expected


def test_hanin_rolnick_matches_mean_exact_count_of_deep_nets():
    # Over many initialisations (PyTorch's uniform init) the estimate and the exact count
    # have the same mean: their paired differences average to 0 within sampling error.
    path = np.array([[-1.0, -0.5], [0.5, 0.3], [1.2, -0.8]])
    measured, expected = [], []
    for seed in range(200):
        net = lrcore.Network.random([2, 16, 16, 1], seed=seed)
        hr = hanin_rolnick_density(net, path, samples=500)
        measured.append(hr.measured)
        expected.append(hr.expected)
        assert hr.per_layer.shape == (2,)
    diff = np.array(measured) - np.array(expected)
    assert abs(diff.mean()) < 4 * diff.std() / math.sqrt(diff.size)
    assert np.mean(measured) / np.mean(expected) == pytest.approx(1.0, abs=0.05)


def test_hanin_rolnick_errors():
    net = lrcore.Network.random([2, 4, 1], seed=0)
    segment = np.array([[0.0, 0.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="bias_distribution"):
        hanin_rolnick_density(net, segment, bias_distribution="cauchy")
    with pytest.raises(ValueError, match="bias_scale"):
        hanin_rolnick_density(net, segment, bias_distribution="normal")
    with pytest.raises(ValueError, match="bias_scale"):
        hanin_rolnick_density(net, segment, bias_scale=[0.1, 0.2])
    with pytest.raises(ValueError, match="samples"):
        hanin_rolnick_density(net, segment, samples=0)


# -- checkpoints --------------------------------------------------------------------------
def test_checkpoint_table_matches_direct_measures():
    torch = pytest.importorskip("torch")
    pytest.importorskip("pandas")
    from lrcore.experiments.manifolds import Circle
    from lrcore.experiments.training import build_mlp

    models = {step: build_mlp(2, 12, 2, seed=step) for step in (0, 5, 9)}
    circle = Circle(1.2).trajectories(90)[0]
    segment = np.array([[-2.0, -1.0], [1.0, 2.0], [2.0, -1.0]])
    as_nets = {step: lrcore.Network.from_torch(m) for step, m in models.items()}
    table = checkpoint_table(as_nets, [circle, segment], windows=5)
    assert list(table.columns) == [
        "step", "path", "window", "center", "length", "density", "jump_density", "breakpoints"
    ]  # fmt: skip
    assert len(table) == 3 * 2 * 5
    assert sorted(set(table.path)) == ["1", "on:curve"]
    for step, net in as_nets.items():
        for name, points, closed in (("on:curve", circle.points, True), ("1", segment, False)):
            rows = table[(table.step == step) & (table.path == name)]
            result = lrcore.count_1d(net, points, closed)
            window = result.length / 5
            np.testing.assert_allclose(rows.density, result.density(window))
            assert set(rows.breakpoints) == {result.num_breakpoints}
            sj = slope_jumps(net, points, closed)
            assert rows.jump_density.sum() * window == pytest.approx(sj.total)
    # Torch modules and state dicts (loaded into a model of the same shape) give the same.
    from_modules = checkpoint_table(list(models.items()), [circle, segment], windows=5)
    states = {step: m.state_dict() for step, m in models.items()}
    template = build_mlp(2, 12, 2, seed=99)
    from_states = checkpoint_table(states, [circle, segment], windows=5, model=template)
    for other in (from_modules, from_states):
        np.testing.assert_array_equal(other.density, table.density)
        np.testing.assert_array_equal(other.jump_density, table.jump_density)
    assert torch.equal(template[0].weight, build_mlp(2, 12, 2, seed=99)[0].weight)
    with pytest.raises(ValueError, match="model"):
        checkpoint_table(states, [segment])
    with pytest.raises(TypeError, match="networks"):
        checkpoint_table({0: "net"}, [segment])
    named = checkpoint_table(as_nets, [segment], closed=True, names=["loop"], windows=2)
    assert set(named.path) == {"loop"}


def test_local_tube_map_in_higher_dimension_closed_form():
    # One neuron in R^5 whose hyperplane meets the tangent-normal plane in a line parallel
    # to the tangent at normal offset 0.13: all its length 2a lies in the band holding
    # 0.13, none elsewhere.
    rng = np.random.default_rng(4)
    basis = np.linalg.qr(rng.standard_normal((5, 3)))[0].T  # orthonormal t, n, m
    t, n, m = basis
    x0 = rng.standard_normal(5)
    w = 2.0 * n + 0.7 * m  # orthogonal to t: the line runs along the tangent
    b = -(w @ x0) - 2.0 * 0.13  # zero at x0 + 0.13 n
    net = lrcore.Network([w[None, :], np.ones((1, 1))], [[b], [0.0]])
    local = local_tube_map(
        net, x0, 3.0 * t, n + 0.5 * t, half_length=0.4, half_width=0.2, s_bins=2, r_bins=4
    )
    band = np.searchsorted(local.r_edges, 0.13) - 1
    expected = np.zeros(4)
    expected[band] = 0.8 / (0.8 * 0.1)  # length 2a over the band's area 2a × 0.1
    np.testing.assert_allclose(local.profile(), expected, atol=1e-12)
    assert local.areas.sum() == pytest.approx(0.8 * 0.4)
    # The same neuron seen with the normal reversed: the band mirrors.
    flipped = local_tube_map(net, x0, t, -n, half_length=0.4, half_width=0.2, r_bins=4)
    np.testing.assert_allclose(flipped.profile(), expected[::-1], atol=1e-12)
    with pytest.raises(ValueError, match="normal"):
        local_tube_map(net, x0, t, 2 * t, half_length=0.4, half_width=0.2)


# -- local tube maps in the study: the per-seed aggregation ---------------------------------
def test_local_tube_tables_match_a_direct_computation():
    # Per run the concentration core/rim before and after, its gain; per seed the
    # geometric mean over runs; across seeds exp of the mean log with a t interval; the
    # link: Spearman across sample points of the core's change with |curvature|, Fisher
    # z, seed means, t interval, tanh. Recomputed here with numpy and scipy loops.
    pd = pytest.importorskip("pandas")
    stats = pytest.importorskip("scipy.stats")
    from lrcore.experiments.beyond import local_tube_tables

    rng = np.random.default_rng(7)
    offsets = (np.arange(8) + 0.5) / 8 * 0.4 - 0.2  # half-width 0.2, 8 bins
    rows = []
    for family in ("surfaces", "images"):
        for seed in range(5):
            for arm in ("arc", "ambient"):
                run = f"{family}|{arm}|s{seed}"
                for point in range(6):
                    kappa = rng.uniform(0.5, 3.0) if family == "surfaces" else 1.0
                    for b, offset in enumerate(offsets):
                        rows.append(
                            {
                                "run": run, "family": family, "arm": arm, "target": "smooth",
                                "seed": seed, "manifold": family, "window": point,
                                "offset_bin": b, "offset": offset, "half_width": 0.2,
                                "curvature": kappa, "tube_init": rng.uniform(5, 10),
                                "tube_final": rng.uniform(5, 10) + (1.5 * kappa if abs(offset) < 0.05 else 0),
                            }
                        )  # fmt: skip
    local = pd.DataFrame(rows)
    profile, table = local_tube_tables(local)
    assert set(zip(table["family"], table["arm"])) == {
        (f, a) for f in ("surfaces", "images") for a in ("arc", "ambient", "all")
    }

    def interval(values):
        values = np.asarray(values, dtype=float)
        half = stats.t.ppf(0.975, values.size - 1) * values.std(ddof=1) / np.sqrt(values.size)
        return values.mean(), values.mean() - half, values.mean() + half

    for row in table.to_dict("records"):
        part = local[local["family"] == row["family"]]
        if row["arm"] != "all":
            part = part[part["arm"] == row["arm"]]
        logs, links = [], []
        for seed in range(5):
            gains, zs = [], []
            for run in sorted(set(part.loc[part["seed"] == seed, "run"])):
                one = part[part["run"] == run]
                core = np.abs(one["offset"].to_numpy()) <= 0.25 * 0.2
                rim = np.abs(one["offset"].to_numpy()) >= 0.5 * 0.2
                before = one["tube_init"][core].mean() / one["tube_init"][rim].mean()
                after = one["tube_final"][core].mean() / one["tube_final"][rim].mean()
                gains.append(after / before)
                change, kappa = [], []
                for point in range(6):
                    at = one[(one["window"] == point).to_numpy() & core]
                    change.append(at["tube_final"].mean() - at["tube_init"].mean())
                    kappa.append(at["curvature"].mean())
                if np.ptp(kappa) > 0:
                    zs.append(np.arctanh(stats.spearmanr(change, kappa)[0]))
            logs.append(np.mean(np.log(gains)))
            if zs:
                links.append(np.mean(zs))
        mean, lo, hi = interval(logs)
        assert row["seeds"] == 5
        assert row["gain"] == pytest.approx(math.exp(mean), rel=1e-12)
        assert row["gain_lo"] == pytest.approx(math.exp(lo), rel=1e-12)
        assert row["gain_hi"] == pytest.approx(math.exp(hi), rel=1e-12)
        if row["family"] == "surfaces":
            assert row["link_seeds"] == 5
            mean, lo, hi = interval(links)
            assert row["link"] == pytest.approx(math.tanh(mean), rel=1e-9)
            assert row["link_lo"] == pytest.approx(math.tanh(lo), rel=1e-9)
        else:  # the same curvature at every point: no link
            assert row["link_seeds"] == 0
            assert math.isnan(row["link"])
    # The profile: the mean per offset bin, and the t interval of the seeds' mean change.
    for row in profile.to_dict("records"):
        part = local[
            (local["family"] == row["family"]) & (local["offset_bin"] == row["offset_bin"])
        ]
        if row["arm"] != "all":
            part = part[part["arm"] == row["arm"]]
        assert row["tube_final"] == pytest.approx(part["tube_final"].mean())
        change = part["tube_final"] - part["tube_init"]
        _, lo, hi = interval(change.groupby(part["seed"]).mean())
        assert (row["change_lo"], row["change_hi"]) == pytest.approx((lo, hi))
    # Boundaries were added on the manifold only: surfaces gain, with a positive link.
    surfaces = table[(table["family"] == "surfaces") & (table["arm"] == "all")].iloc[0]
    assert surfaces["gain_lo"] > 1
    assert surfaces["link_lo"] > 0
