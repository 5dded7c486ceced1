"""Numerical edge cases: scaled networks and inputs, near-parallel hyperplanes.

The zero tolerance is relative (README, "Tolerance and exactness"), so scaling a network
or its inputs by 1e±6 changes no count; hyperplanes at an angle above ``rtol`` are told
apart exactly, below it their crossings merge into one breakpoint (documented), and with
``rtol=0`` they are told apart down to rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

import lrcore
from support import random_net, random_path

SPEC = random_net([3, 16, 16, 16, 2], seed=50)
PATH = random_path(3, 6, seed=51)
ORIGIN, BASIS = PATH[0], PATH[1:3] - PATH[0]


def scaled(c: float, input_scale: float = 1.0) -> lrcore.Network:
    """The network with z_l multiplied by c^l (W_l by c, b_l by c^l).

    For inputs scaled by ``input_scale``: the first layer divides it back out.
    """
    weights = [w * c for w in SPEC.weights]
    weights[0] = weights[0] / input_scale
    biases = [b * c ** (layer + 1) for layer, b in enumerate(SPEC.biases)]
    return lrcore.Network(weights, biases)


@pytest.mark.parametrize("c", [1e-6, 1e6])
@pytest.mark.parametrize("input_scale", [1.0, 1e-6, 1e6])
def test_scaled_networks_and_inputs_count_the_same(c, input_scale):
    base = lrcore.count_1d(SPEC.to_lrcore(), PATH, return_patterns=True)
    assert base.num_breakpoints > 20
    r = lrcore.count_1d(scaled(c, input_scale), PATH * input_scale, return_patterns=True)
    r.verify(raise_on_error=True)
    assert r.num_breakpoints == base.num_breakpoints
    assert r.num_distinct == base.num_distinct
    np.testing.assert_array_equal(r.flip_neurons, base.flip_neurons)
    np.testing.assert_array_equal(r.patterns, base.patterns)
    np.testing.assert_allclose(r.breakpoints, base.breakpoints * input_scale, rtol=1e-9)

    base2 = lrcore.slice_2d(SPEC.to_lrcore(), ORIGIN, BASIS, (-1, 2, -1, 2))
    s = lrcore.slice_2d(
        scaled(c, input_scale), ORIGIN * input_scale, BASIS * input_scale, (-1, 2, -1, 2)
    )
    s.verify(raise_on_error=True)
    assert s.num_regions == base2.num_regions
    np.testing.assert_array_equal(np.sort(s.patterns, axis=0), np.sort(base2.patterns, axis=0))
    np.testing.assert_allclose(np.sort(s.areas), np.sort(base2.areas), rtol=1e-6)


def two_lines(angle: float, offset: float = 0.0) -> lrcore.Network:
    """Neurons x0 and cos(a) x0 + sin(a) x1 - offset: lines at angle ``angle``."""
    w = np.array([[1.0, 0.0], [np.cos(angle), np.sin(angle)]])
    return lrcore.Network([w, np.ones((1, 2))], [np.array([0.0, -offset]), np.zeros(1)])


ANGLES = [1e-4, 1e-6, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12]
SEGMENT = np.array([[-2.0, 1.0], [2.0, 1.0]])  # crosses x0 = 0 and x0 = -tan(a)


@pytest.mark.parametrize("angle", ANGLES)
def test_near_parallel_hyperplanes_along_a_path(angle):
    # Exact answer: two crossings tan(a) apart, so three pieces.
    exact = lrcore.count_1d(two_lines(angle), SEGMENT, rtol=0.0)
    assert (exact.num_breakpoints, exact.num_pieces) == (2, 3)
    np.testing.assert_allclose(np.diff(exact.breakpoints), np.tan(angle), rtol=1e-3)
    # Certified decisions (the default) tell them apart at every angle.
    certified = lrcore.count_1d(two_lines(angle), SEGMENT)
    certified.verify(raise_on_error=True)
    assert (certified.num_breakpoints, certified.num_pieces) == (2, 3)
    assert certified.exact_coincidences == certified.unresolved_crossings == 0
    r = lrcore.count_1d(two_lines(angle), SEGMENT, rtol=lrcore.DEFAULT_RTOL)
    r.verify(raise_on_error=True)
    # Both neurons flip either way; the old zero tolerance (1e-10 of the neuron's
    # scale, here |x| ~ 1) joins crossings closer than that into one breakpoint.
    assert len(r.flip_neurons) == 2
    # At exactly the tolerance (angle 1e-10, |x| = 1 at the crossing) rounding decides.
    expected = {(2, 3)} if angle > 1e-10 else {(1, 2)} if angle < 1e-10 else {(1, 2), (2, 3)}
    assert (r.num_breakpoints, r.num_pieces) in expected


@pytest.mark.parametrize("angle", ANGLES)
def test_near_parallel_hyperplanes_on_a_slice(angle):
    # The second line meets the first at x1 = 2, outside the box: three regions.
    net = two_lines(angle, offset=2 * np.sin(angle))
    exact = lrcore.slice_2d(net, np.zeros(2), np.eye(2), rtol=0.0)
    exact.verify(raise_on_error=True)
    assert exact.num_regions == 3
    # Certified (the default): the exact partition, every sign certified.
    r = lrcore.slice_2d(net, np.zeros(2), np.eye(2))
    r.verify(raise_on_error=True)
    assert r.num_regions == 3
    assert r.uncertified_decisions == 0
    # The zero tolerance: the sliver between the lines is at most 3 tan(a) wide; below
    # the tolerance its corners join the first line's and it disappears (documented).
    old = lrcore.slice_2d(net, np.zeros(2), np.eye(2), rtol=lrcore.DEFAULT_RTOL)
    old.verify(raise_on_error=True)
    assert old.num_regions == (3 if angle > 1e-11 else 2)


def two_close_zeros(gap: float) -> lrcore.Network:
    """Neurons x1, x0 - 0.4 and x0 - 0.4 - gap: the last two have zeros ``gap`` apart."""
    w = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    b = np.array([0.0, -0.4, -0.4 - gap])
    return lrcore.Network([w, np.ones((1, 3))], [b, np.zeros(1)])


def test_tolerance_uses_the_input_norm_at_the_crossing_not_at_the_segment_ends():
    # A segment from x to -x with |x| = 1e6 passes the origin: the zero tolerance at the
    # crossings near x0 = 0.4 is 1e-10 * (|W| 0.4 + |b|), not 1e-10 * 1e6, so zeros 4e-5
    # apart stay two breakpoints (the core once interpolated the ends' norms and joined
    # them; found by tests/test_fuzz.py).
    net = two_close_zeros(4e-5)
    r = lrcore.count_1d(net, np.array([[1e6, 0.5], [-1e6, 0.5]]))
    r.verify(raise_on_error=True)
    assert r.num_breakpoints == 2
    np.testing.assert_allclose(np.diff(np.sort(r.breakpoints)), 4e-5, rtol=1e-3)


def test_tolerance_on_a_slice_uses_the_plane_norm_at_new_vertices():
    # The x1 = 0 line (cut first) runs from (-1e6, 0) to (1e6, 0); the x0 lines cross it
    # near the origin, where |x| = 0.4, so they stay apart there. At the box's sides
    # (|x| = 1e6) they are within the tolerance and share a vertex: in each half a
    # sliver triangle, 6 regions.
    net = two_close_zeros(4e-5)
    r = lrcore.slice_2d(net, np.zeros(2), np.eye(2), (-1e6, 1e6, -1e6, 1e6))
    r.verify(raise_on_error=True)
    assert r.num_regions == 6
