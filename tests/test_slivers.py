"""Crossings within float64 rounding of a vertex: placed at it, with a RoundingWarning.

Found by tests/test_fuzz.py: when a deeper neuron's line lies within rounding of an
earlier neuron's line (here a second-layer unit whose zero set is 2.4e-30 from the first
layer's line, in a net whose weights are about 1e29), the sliver between them cannot be
represented in float64 plane coordinates. The core used to cut it anyway and return a
zero-area face whose corners copied other vertices. It now places a crossing closer than
64 ulps of the domain's size to a vertex (or to another crossing on the same edge) at that
vertex, counts it in ``SliceResult.merged_crossings`` and ``slice_2d`` warns.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import lrcore

WEIGHTS = [
    [[1.9369307573550384e29, -3.255707516336139e29]],
    [[-9.180529521276107e29]],
    [[-9.669447289429418e29]],
]
BIASES = [[4.430310209648888e29], [8.255111545554435e29], [2.1327155153435972e29]]
ORIGIN = [0.1257302210933933, -0.1321048632913019]


def test_near_coincident_lines_of_two_layers_give_no_zero_area_face():
    net = lrcore.Network([np.array(w) for w in WEIGHTS], [np.array(b) for b in BIASES])
    with pytest.warns(lrcore.RoundingWarning, match="merged_crossings"):
        r = lrcore.slice_2d(net, np.array(ORIGIN), np.eye(2), rtol=0.0)
    r.verify(raise_on_error=True)
    assert r.merged_crossings >= 1
    # The 2.4e-30-wide sliver joins the first layer's line: two regions, not three.
    assert r.num_regions == 2
    assert np.all(r.areas > 1e-4)  # the line cuts off a corner of the box


def test_near_coincident_lines_certified_are_decided_then_merged():
    # Certified (the default): at the first layer's crossings the second layer's values
    # lie within their error bounds (weights of 1e29, a sliver of 2.4e-30): the filter
    # cannot decide them, the slow path does, and the sliver, far below the plane's
    # resolution, is merged, and the result says so. Without the slow path the value
    # takes the zero tolerance's decision, uncertified.
    net = lrcore.Network([np.array(w) for w in WEIGHTS], [np.array(b) for b in BIASES])
    with warnings.catch_warnings():
        warnings.simplefilter("error", lrcore.CertificationWarning)
        with pytest.warns(lrcore.RoundingWarning, match="merged_crossings"):
            r = lrcore.slice_2d(net, np.array(ORIGIN), np.eye(2))
    r.verify(raise_on_error=True)
    assert r.uncertified_decisions == 0
    assert r.slow_decisions >= 1
    assert r.merged_crossings >= 1
    with (
        pytest.warns(lrcore.CertificationWarning, match="uncertified_decisions"),
        pytest.warns(lrcore.RoundingWarning, match="merged_crossings"),
    ):
        old = lrcore.slice_2d(net, np.array(ORIGIN), np.eye(2), max_slow_work=0)
    assert old.uncertified_decisions >= 1
    assert old.num_regions == 2
    assert r.num_regions == 2
    # The 2.4e-30-wide sliver joins the first layer's line: two regions, not three.
    assert r.num_regions == 2
    assert np.all(r.areas > 1e-4)  # the line cuts off a corner of the box


@pytest.mark.parametrize("tiles", [1, 3])
@pytest.mark.parametrize("offset", [1e-15, 3e-16])
def test_parallel_lines_closer_than_rounding_share_their_vertices(offset, tiles):
    # x0 = 0 and x0 = offset: with rtol=0 only plane rounding can join them.
    net = lrcore.Network(
        [np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.ones((1, 3))],
        [np.array([0.0, -offset, -0.25]), np.zeros(1)],
    )
    with pytest.warns(lrcore.RoundingWarning):
        r = lrcore.slice_2d(net, np.zeros(2), np.eye(2), rtol=0.0, tiles=tiles)
    r.verify(raise_on_error=True)
    assert r.merged_crossings > 0
    assert r.num_regions == 4
    np.testing.assert_allclose(np.sort(r.areas), [0.75, 0.75, 1.25, 1.25], rtol=1e-12)


def test_resolvable_slivers_are_kept_without_a_warning():
    # 1e-9 apart: far above rounding, so the exact partition (3 strips, each cut in two)
    # is returned, sliver included.
    net = lrcore.Network(
        [np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.ones((1, 3))],
        [np.array([0.0, -1e-9, -0.25]), np.zeros(1)],
    )
    r = lrcore.slice_2d(net, np.zeros(2), np.eye(2), rtol=0.0)
    r.verify(raise_on_error=True)
    assert r.merged_crossings == 0
    assert r.num_regions == 6
    np.testing.assert_allclose(np.sort(r.areas)[:2], [0.75e-9, 1.25e-9], rtol=1e-6)
