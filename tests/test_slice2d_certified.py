"""Certified sign decisions in slice_2d (docs/numerics.md §6), against exact answers.

The default (``rtol=None``) decides a sign only where ``|z_j|`` exceeds a rigorous bound
on its error; a value it cannot decide goes to the slow path (double-double, then exact
determinants at the vertex's exact point), and only one that is still undecided (the
work budget spent) takes the old zero tolerance's decision and is counted in
``SliceResult.uncertified_decisions``. So wherever
``uncertified_decisions == 0`` the partition must be the exact one: these tests compare
it with the exact-fraction oracle (tests/slice_oracle.py) on configurations where a
fixed tolerance goes wrong (nearly parallel lines, lines 1e-12 apart, huge and tiny
scales), and check that nothing depends on tiles or threads.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import Phase, assume, given, settings
from hypothesis import strategies as st

import lrcore
from slice_oracle import lines_net, oracle_slice
from support import NetSpec, nudged_integer_layers


def certified(net, origin, basis, bounds, **kwargs):
    """slice_2d with certified decisions; fails on a CertificationWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", lrcore.CertificationWarning)
        r = lrcore.slice_2d(net, origin, basis, bounds, **kwargs)
    assert r.rtol is None
    assert r.uncertified_decisions == 0
    return r


def same_as_oracle(r, spec, origin, basis):
    """The oracle's cells (exact fractions): the same patterns, and areas.

    Vertex coordinates are float64 approximations of the exact points, off by about
    u / sin(angle) where lines meet at tiny angles: areas are compared to 1e-6 of the
    domain's, not centroids.
    """
    cells = [c for c in oracle_slice(spec, origin, basis, r.domain, exact=True) if c[2] > 0]
    assert r.num_regions == len(cells), f"{r.num_regions} faces, the oracle has {len(cells)}"
    face_of = {row.tobytes(): f for f, row in enumerate(r.pattern_bools())}
    assert len(face_of) == r.num_regions
    total = float(np.sum(r.areas))
    for _, bits, area in cells:
        f = face_of.get(bits.tobytes())
        assert f is not None, f"no face has the oracle's pattern {bits.astype(int)}"
        assert abs(r.areas[f] - float(area)) <= 1e-6 * total


@pytest.mark.parametrize("delta", [1e-12, 1e-11, 1e-9])
@pytest.mark.parametrize("tiles", [1, 3])
def test_nearly_parallel_lines_cross_where_they_do(delta, tiles):
    # t = 0 and t = delta (s - 0.5): an angle of delta, crossing at s = 0.5; the thin
    # wedges between them are delta / 2 to 3 delta / 2 wide, above float64's plane
    # resolution (64 ulps of 1). Four regions exactly.
    spec = lines_net([[0.0, 1.0], [-delta, 1.0]], [0.0, 0.5 * delta])
    origin, basis = np.zeros(2), np.eye(2)
    r = certified(spec.to_lrcore(), origin, basis, (-1, 1, -1, 1), tiles=tiles)
    r.verify(raise_on_error=True)
    same_as_oracle(r, spec, origin, basis)
    assert r.num_regions == 4
    assert r.merged_crossings == 0
    if delta <= 1e-11:
        # The old zero tolerance takes the second line's values at the first line's
        # vertices as zero: the lines share their crossings and a wedge is lost.
        old = lrcore.slice_2d(spec.to_lrcore(), origin, basis, (-1, 1, -1, 1), rtol=1e-10)
        assert old.num_regions < 4


@pytest.mark.parametrize("delta", [1e-15, 1e-16])
def test_lines_closer_than_plane_resolution_are_reported(delta):
    # Wedges narrower than float64 plane coordinates resolve: whatever the result, it
    # is either exact or says what it could not do (never silently merged).
    spec = lines_net([[0.0, 1.0], [-delta, 1.0]], [0.0, 0.5 * delta])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = lrcore.slice_2d(spec.to_lrcore(), np.zeros(2), np.eye(2), (-1, 1, -1, 1))
    r.verify(raise_on_error=True)
    if r.num_regions != 4:
        assert r.merged_crossings + r.uncertified_decisions > 0
        kinds = {w.category for w in caught}
        assert kinds & {lrcore.RoundingWarning, lrcore.CertificationWarning}


@pytest.mark.parametrize("gap", [1e-12, 3e-13])
def test_parallel_lines_a_picometre_apart_are_two_lines(gap):
    # x0 = 0 and x0 = gap with t = 0.25 across: 3 strips, each cut in two (the exact
    # partition, the thin strip included); rtol=1e-10 joins the two lines.
    spec = lines_net([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], [0.0, -gap, -0.25])
    origin, basis = np.zeros(2), np.eye(2)
    for tiles in (1, 3):
        r = certified(spec.to_lrcore(), origin, basis, (-1, 1, -1, 1), tiles=tiles)
        same_as_oracle(r, spec, origin, basis)
        assert r.num_regions == 6
        assert r.merged_crossings == 0
    old = lrcore.slice_2d(spec.to_lrcore(), origin, basis, (-1, 1, -1, 1), rtol=1e-10)
    assert old.num_regions == 4


def test_second_layer_line_near_a_first_layer_vertex():
    # Layer 0: s = 0 and t = 0 meet at the origin. Layer 1's neuron relu(s) + relu(t) -
    # eps vanishes on a segment that cuts the quadrant s, t >= 0 at distance eps from the
    # origin: a triangle of side eps, present exactly.
    for eps in (1e-12, 1e-10):
        spec = NetSpec(
            (np.eye(2), np.array([[1.0, 1.0]]), np.ones((1, 1))),
            (np.zeros(2), np.array([-eps]), np.zeros(1)),
        )
        origin, basis = np.array([0.1, -0.3]), np.eye(2)
        r = certified(spec.to_lrcore(), origin, basis, (-1, 1, -1, 1))
        same_as_oracle(r, spec, origin, basis)


@pytest.mark.parametrize("exponent", [-300, -200, 200])
def test_scaling_by_a_power_of_two_changes_nothing(exponent):
    # Scaling the first layer's weights and every bias by 2^k scales every value by 2^k
    # exactly (no rounding): the exact partition is the same, and so must be the
    # certified one.
    net = lrcore.Network.random([2, 16, 16, 1], seed=3)
    weights = [w.copy() for w in net.weights]
    biases = [b.copy() for b in net.biases]
    factor = 2.0**exponent
    weights[0] *= factor
    biases = [b * factor for b in biases]
    scaled = lrcore.Network(weights, biases)
    origin, basis = np.array([0.2, -0.1]), np.eye(2)
    bounds = (-3, 3, -3, 3)
    a = certified(net, origin, basis, bounds)
    b = certified(scaled, origin, basis, bounds)
    assert a.num_regions == b.num_regions
    pa = {row.tobytes() for row in a.pattern_bools()}
    pb = {row.tobytes() for row in b.pattern_bools()}
    assert pa == pb
    np.testing.assert_allclose(np.sort(a.areas), np.sort(b.areas), rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize(
    ("sizes", "bounds", "regions"),
    [
        ([2, 64, 1], 5.0, 1872),
        ([2, 64, 64, 1], 5.0, 6962),
        ([2, 64, 64, 64, 1], 1.0, 5058),
    ],
)
def test_random_nets_equal_the_float64_decisions(sizes, bounds, regions):
    # Generic nets: every sign is certified, and rtol=0 (float64's own signs, with the
    # plane's resolution) is right there: the same partition.
    net = lrcore.Network.random(sizes, seed=0)
    box = (-bounds, bounds, -bounds, bounds)
    r = certified(net, np.zeros(2), np.eye(2), box, tiles=1)
    zero = lrcore.slice_2d(net, np.zeros(2), np.eye(2), box, rtol=0.0, tiles=1)
    assert r.num_regions == zero.num_regions == regions
    assert {p.tobytes() for p in r.pattern_bools()} == {p.tobytes() for p in zero.pattern_bools()}
    assert r.merged_crossings == 0
    r.verify(raise_on_error=True)


def test_tiles_and_threads_give_the_same_certified_partition():
    net = lrcore.Network.random([784, 64, 64, 10], seed=1)
    plane = lrcore.Plane.through(*np.random.default_rng(1).standard_normal((3, 784)))
    results = [
        certified(net, plane, None, (0, 1, 0, 1), tiles=tiles, num_threads=threads)
        for tiles, threads in [(1, 1), (4, 1), (4, 2), (7, 2)]
    ]
    first = results[0]
    patterns = {p.tobytes() for p in first.pattern_bools()}
    for r in results[1:]:
        assert r.num_regions == first.num_regions
        assert {p.tobytes() for p in r.pattern_bools()} == patterns
        np.testing.assert_allclose(np.sort(r.areas), np.sort(first.areas), rtol=1e-9, atol=1e-15)


@st.composite
def small_nets(draw):
    """2 or 3 inputs, 1-2 hidden layers of 2-5 units, weights of several scales."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    d = draw(st.integers(2, 3))
    widths = [d] + [draw(st.integers(2, 5)) for _ in range(draw(st.integers(1, 2)))] + [1]
    scale = 10.0 ** draw(st.integers(-6, 6))
    weights = tuple(rng.standard_normal((b, a)) for a, b in zip(widths, widths[1:]))
    biases = tuple(0.5 * rng.standard_normal(b) for b in widths[1:])
    weights = (weights[0] * scale, *weights[1:])
    biases = (biases[0] * scale, *biases[1:])
    activation = draw(st.sampled_from(["relu", "leaky_relu"]))
    spec = NetSpec(weights, biases, activation, 0.1)
    origin = rng.standard_normal(d) * 0.3
    basis = rng.standard_normal((2, d))
    return spec, origin, basis


@settings(max_examples=150, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(case=small_nets(), tiles=st.sampled_from([1, 3]))
def test_property_certified_results_are_exact(case, tiles):
    spec, origin, basis = case
    assume(abs(np.linalg.det(basis @ basis.T)) > 1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lrcore.RoundingWarning)
        warnings.simplefilter("ignore", lrcore.CertificationWarning)
        r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, (-1, 1, -1, 1), tiles=tiles)
    # Generic random weights: every sign is certified, nothing is merged.
    assert r.uncertified_decisions == 0
    assert r.merged_crossings == 0
    same_as_oracle(r, spec, origin, basis)


@st.composite
def near_degenerate_nets(draw):
    """Small integer nets with a few weights or biases moved by 10^-k.

    Concurrent, parallel and coincident lines abound in integer nets; the nudges make
    lines that nearly meet, at tiny angles or gaps.
    """
    weights, biases = nudged_integer_layers(draw, (1, 3), (9, 14), last_layer=False)
    spec = NetSpec(tuple(weights), tuple(biases))
    return spec, np.zeros(2), np.eye(2)


@settings(max_examples=150, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(case=near_degenerate_nets(), tiles=st.sampled_from([1, 3]))
def test_property_near_degenerate_nets_are_exact_or_say_so(case, tiles):
    # Where every sign is certified and nothing is merged, the partition is the exact
    # one; otherwise the result says how many decisions it could not make. (Without the
    # slow path such a result could be wrong, and even fail verify(): lines concurrent in
    # exact arithmetic beside a line 1e-13 away, where the undecided values at the
    # concurrency took the zero tolerance's decision and the near line's were certified;
    # test_concurrent_lines_beside_a_near_line has that case.)
    spec, origin, basis = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lrcore.RoundingWarning)
        warnings.simplefilter("ignore", lrcore.CertificationWarning)
        r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, (-1, 1, -1, 1), tiles=tiles)
    if r.uncertified_decisions == 0 and r.merged_crossings == 0:
        r.verify(raise_on_error=True)
        same_as_oracle(r, spec, origin, basis)


def test_undecided_values_fall_back_on_the_default_tolerance():
    # The core's fallback for undecided values is lrcore.DEFAULT_RTOL's zero tolerance.
    assert lrcore._core.FALLBACK_RTOL == lrcore.DEFAULT_RTOL
