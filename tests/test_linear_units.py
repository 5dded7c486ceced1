"""Linear (pass-through) units: residual connections as a chain, checked exactly.

A residual block ``h' = σ(W2 σ(W1 h + b1) + b2 + h)`` is a chain when the middle layer
also carries ``h`` in linear units. The oracle is a plain ReLU chain with the same
function: it carries ``h`` as ``σ(h) - σ(-h)`` (divided by ``1 + α`` for LeakyReLU), so
its kinks are ours plus spurious ones where a carried value crosses zero. The numpy
walk over that chain, with the carrying neurons' flips removed, must give exactly our
breakpoints; in 2D our faces must have the oracle's areas per pattern and no two
neighbours may share a pattern (a carried value must never cut).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrcore
from slice_oracle import check_partition, oracle_slice
from support import (
    NetSpec,
    activations,
    assert_same_flips,
    flips_of_result,
    random_net,
    random_path,
    seeds,
)


def residual(d: int, k: int, seed: int, activation: str, slope: float):
    """(net with linear units, oracle chain, graph forward) of a one-block residual MLP."""
    base = random_net([d, k, k, k, 2], seed, activation, slope)
    w0, w1, w2, wo = base.weights
    b0, b1, b2, bo = base.biases
    eye, zero = np.eye(k), np.zeros(k)
    alpha = slope if activation == "leaky_relu" else 0.0
    net = lrcore.Network(
        [w0, np.vstack([w1, eye]), np.hstack([w2, eye]), wo],
        [b0, np.concatenate([b1, zero]), b2, bo],
        activation,
        slope,
        linear_units=[0, k, 0],
    )
    carry = eye / (1.0 + alpha)
    oracle = NetSpec(
        (w0, np.vstack([w1, eye, -eye]), np.hstack([w2, carry, -carry]), wo),
        (b0, np.concatenate([b1, zero, zero]), b2, bo),
        activation,
        slope,
    )

    def act(z):
        return np.where(z > 0, z, alpha * z)

    def graph(x):
        z0 = x @ w0.T + b0
        h = act(z0)
        z1 = h @ w1.T + b1
        z2 = act(z1) @ w2.T + b2 + h
        return act(z2) @ wo.T + bo, [z0, z1, z2]

    return net, oracle, graph


def real_flips(oracle: NetSpec, path, k: int):
    """The oracle walk's (position, (layer, unit)) flips, carrying neurons left out."""
    walk = oracle.walk(path)
    neurons = np.asarray(walk.neurons, dtype=np.int64).reshape(-1, 2)
    keep = ~((neurons[:, 0] == 1) & (neurons[:, 1] >= k))
    return walk.positions[keep], neurons[keep]


@settings(deadline=None, max_examples=25)
@given(
    d=st.integers(1, 5),
    k=st.integers(2, 12),
    seed=seeds,
    activation=activations,
    points=st.integers(2, 5),
)
def test_residual_chain_matches_graph_and_walk(d, k, seed, activation, points):
    net, oracle, graph = residual(d, k, seed, activation, 0.1)
    path = random_path(d, points, seed)
    out, pre = graph(path)
    np.testing.assert_allclose(net.forward(path), out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(oracle.forward(path), out, rtol=1e-10, atol=1e-12)
    for ours, theirs in zip(net.pre_activations(path), pre):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(net.patterns(path), np.concatenate(pre, axis=1) > 0)
    assert net.hidden_sizes == (k, k, k)
    assert net.layer_widths == (k, 2 * k, k)

    r = lrcore.count_1d(net, path)
    pos, neurons = real_flips(oracle, path, k)
    ours_pos, _, ours_neurons = flips_of_result(r)
    assert_same_flips(ours_pos, ours_neurons, pos, neurons, r.length, False, what="residual")


@pytest.mark.parametrize("activation", ["relu", "leaky_relu"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_residual_slice_has_oracle_areas_and_no_carry_cuts(activation, seed):
    d, k = 3, 5
    net, oracle, _ = residual(d, k, seed, activation, 0.1)
    rng = np.random.default_rng(seed)
    origin = rng.standard_normal(d)
    basis = rng.standard_normal((2, d))
    bounds = (-2.0, 2.0, -2.0, 2.0)
    r = lrcore.slice_2d(net, origin, basis, bounds=bounds)
    check_partition(r, net)

    # Every face's area is the oracle's total for its pattern (the oracle also splits
    # faces where a carried value changes sign: those pieces add up).
    box = [(-2.0, -2.0), (2.0, -2.0), (2.0, 2.0), (-2.0, 2.0)]
    keep = np.r_[np.arange(2 * k), 4 * k + np.arange(k)]
    oracle_area: dict[bytes, float] = defaultdict(float)
    for _, bits, area in oracle_slice(oracle, origin, basis, box):
        oracle_area[bits[keep].tobytes()] += area
    ours: dict[bytes, float] = defaultdict(float)
    for bits, area in zip(r.pattern_bools(), r.areas):
        ours[bits.tobytes()] += area
    assert set(ours) == {key for key, area in oracle_area.items() if area > 0}
    for key, area in ours.items():
        assert area == pytest.approx(oracle_area[key], rel=1e-9, abs=1e-12)

    # Faces next to each other differ in their pattern: no cut along a carried value.
    pats = r.pattern_bools()
    pairs = r.adjacency
    assert len(pairs) > 0
    assert np.all(np.any(pats[pairs[:, 0]] != pats[pairs[:, 1]], axis=1))
    # Interior points have the graph's pattern.
    st_points = r.centroids
    np.testing.assert_array_equal(net.patterns(r.to_input(st_points)), pats)


def test_linear_units_validation():
    w = [np.ones((3, 2)), np.ones((1, 3))]
    b = [np.zeros(3), np.zeros(1)]
    with pytest.raises(ValueError, match="linear_units"):
        lrcore.Network(w, b, linear_units=[4])
    with pytest.raises(ValueError, match="linear_units"):
        lrcore.Network(w, b, linear_units=[-1])
    with pytest.raises(ValueError, match="linear_units"):
        lrcore.Network(w, b, linear_units=[1, 1])
    net = lrcore.Network(w, b, linear_units=3)
    assert net.hidden_sizes == (0,)
    assert net.num_neurons == 0
    # With every unit linear the network is affine: one piece, whatever the path.
    r = lrcore.count_1d(net, np.array([[-5.0, -5.0], [5.0, 5.0]]))
    assert r.num_pieces == 1
    np.testing.assert_allclose(net.forward([[1.0, -2.0]]), [[-3.0]])
