"""The oracle validated on its own, with numpy only (runs before the core is built).

The walk in lrcore.reference is what the core is compared against, so it is first
checked against a closed form (one hidden layer), against plain evaluation of the
network along the path (deeper nets) and on hand-built degenerate cases whose
answers follow from the construction.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from support import (
    NetSpec,
    assert_same_flips,
    check_against_sampling,
    closed_points,
    nets,
    paths_for,
    random_net,
    random_path,
    reference,
    seeds,
    vertex_positions,
)


def one_layer_crossings(spec: NetSpec, path: np.ndarray, closed: bool):
    """Closed form for one hidden layer: each neuron is affine on each segment.

    Neuron j changes sign on segment [a, b] iff its pattern bits at a and b differ,
    at the fraction z(a) / (z(a) - z(b)) of the segment.
    """
    points = closed_points(path, closed)
    offsets = vertex_positions(path, closed)
    z = spec.pre_activations(points)[0]
    positions, neurons = [], []
    for seg in range(len(points) - 1):
        for unit in np.flatnonzero((z[seg] > 0) != (z[seg + 1] > 0)):
            fraction = z[seg, unit] / (z[seg, unit] - z[seg + 1, unit])
            positions.append(offsets[seg] + fraction * (offsets[seg + 1] - offsets[seg]))
            neurons.append((0, unit))
    return np.array(positions), np.array(neurons, dtype=np.int64).reshape(-1, 2)


@given(
    d=st.integers(1, 6),
    width=st.integers(1, 40),
    num_points=st.integers(2, 6),
    closed=st.booleans(),
    activation=st.sampled_from(["relu", "leaky_relu"]),
    net_seed=seeds,
    path_seed=seeds,
)
def test_one_hidden_layer_matches_closed_form(
    d, width, num_points, closed, activation, net_seed, path_seed
):
    spec = random_net([d, width, 2], net_seed, activation, 0.1)
    path = random_path(d, num_points, path_seed)
    walk = spec.walk(path, closed)
    positions, neurons = one_layer_crossings(spec, path, closed)
    assert_same_flips(
        walk.positions, walk.neurons, positions, neurons, walk.length, closed, what="walk"
    )


@given(spec=nets(), data=st.data(), closed=st.booleans())
def test_walk_agrees_with_sampling(spec, data, closed):
    path = data.draw(paths_for(spec.input_dim))
    walk = spec.walk(path, closed)
    assert walk.length == pytest.approx(vertex_positions(path, closed)[-1])
    check_against_sampling(
        spec,
        path,
        closed,
        walk.breakpoints,
        walk.flip_offsets,
        walk.neurons,
        walk.piece_patterns,
    )
    assert walk.num_distinct == len(np.unique(walk.piece_patterns, axis=0))


@given(spec=nets(max_hidden=3, max_width=20), data=st.data())
def test_walk_of_reversed_path_mirrors(spec, data):
    path = data.draw(paths_for(spec.input_dim))
    forward = spec.walk(path)
    backward = spec.walk(path[::-1])
    assert_same_flips(
        forward.positions,
        forward.neurons,
        forward.length - backward.positions,
        backward.neurons,
        forward.length,
        closed=False,
        what="reversed",
    )


def test_forward_helpers_follow_definition():
    spec = random_net([3, 5, 4, 2], seed=1, activation="leaky_relu", negative_slope=0.3)
    x = np.random.default_rng(2).standard_normal((7, 3))
    w, b = spec.weights, spec.biases
    z0 = x @ w[0].T + b[0]
    h0 = np.where(z0 > 0, z0, 0.3 * z0)
    z1 = h0 @ w[1].T + b[1]
    h1 = np.where(z1 > 0, z1, 0.3 * z1)
    pre = spec.pre_activations(x)
    np.testing.assert_allclose(pre[0], z0, rtol=1e-14)
    np.testing.assert_allclose(pre[1], z1, rtol=1e-14)
    np.testing.assert_allclose(spec.forward(x), h1 @ w[2].T + b[2], rtol=1e-14)
    np.testing.assert_array_equal(spec.patterns(x), np.concatenate([z0, z1], axis=1) > 0)


# --- Hand-built degenerate cases (answers follow from the construction) --------------

# Two hidden ReLU layers on the line: h = (relu(x), relu(-x)), then |x| - c.
ABS_NET = NetSpec(
    weights=(np.array([[1.0], [-1.0]]), np.array([[1.0, 1.0]]), np.array([[1.0]])),
    biases=(np.zeros(2), np.zeros(1), np.zeros(1)),
)


def test_walk_crossing_at_a_kink_flips_both_units_once():
    # relu(x) and relu(-x) change at x = 0 together; |x| >= 0 only touches zero there.
    walk = ABS_NET.walk(np.array([[-1.0], [2.0]]))
    assert walk.breakpoints.tolist() == [1.0]
    assert walk.neurons.tolist() == [[0, 0], [0, 1]]
    assert walk.num_pieces == 2


def test_walk_deep_neuron_crossing_at_a_kink_is_one_breakpoint():
    # Layer 1 computes relu(x) - relu(-x) = x: it crosses zero at layer 0's kink.
    spec = ABS_NET.with_layers(
        (ABS_NET.weights[0], np.array([[1.0, -1.0]]), ABS_NET.weights[2]), ABS_NET.biases
    )
    walk = spec.walk(np.array([[-1.0], [2.0]]))
    assert walk.breakpoints.tolist() == [1.0]
    assert walk.neurons.tolist() == [[0, 0], [0, 1], [1, 0]]


def test_walk_deep_neuron_crossing_twice():
    # |x| - 0.5 changes sign at x = -0.5 and 0.5; the layer-0 kink lies between.
    spec = ABS_NET.with_layers(ABS_NET.weights, (np.zeros(2), np.array([-0.5]), np.zeros(1)))
    walk = spec.walk(np.array([[-1.0], [2.0]]))
    assert walk.breakpoints.tolist() == [0.5, 1.0, 1.5]
    assert walk.neurons.tolist() == [[1, 0], [0, 0], [0, 1], [1, 0]]


# Coordinate neurons in the plane: z = (x, y, x + y - 1).
PLANE_NET = NetSpec(
    weights=(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.ones((1, 3))),
    biases=(np.array([0.0, 0.0, -1.0]), np.zeros(1)),
)


def test_walk_touching_at_a_bend_is_no_breakpoint():
    # x goes -1 -> 0 -> -1 and y stays 1, x + y - 1 goes -1 -> 0 -> -1: both touch.
    walk = PLANE_NET.walk(np.array([[-1.0, 1.0], [0.0, 1.0], [-1.0, 1.0]]))
    assert walk.num_breakpoints == 0
    assert walk.num_pieces == 1


def test_walk_crossing_at_a_bend_is_one_breakpoint():
    # x goes -1 -> 0 -> 1 through the bend at (0, 2); y and x + y - 1 stay positive.
    walk = PLANE_NET.walk(np.array([[-1.0, 3.0], [0.0, 2.0], [1.0, 3.0]]))
    assert walk.num_breakpoints == 1
    assert walk.breakpoints[0] == pytest.approx(np.sqrt(2.0))
    assert walk.segment.tolist() == [1]
    assert walk.neurons.tolist() == [[0, 0]]


def test_walk_through_a_vertex_of_the_arrangement():
    # x and y both change sign at the origin, x + y - 1 later at (0.5, 0.5).
    walk = PLANE_NET.walk(np.array([[-1.0, -1.0], [1.0, 1.0]]))
    assert walk.breakpoints == pytest.approx(np.sqrt(2.0) * np.array([1.0, 1.5]))
    assert walk.neurons.tolist() == [[0, 0], [0, 1], [0, 2]]


def test_walk_along_a_hyperplane_counts_it_inactive():
    # y = 0 on the first segment (inactive: zero is inactive), then rises.
    walk = PLANE_NET.walk(np.array([[-1.0, 0.0], [0.5, 0.0], [0.5, 1.0]]))
    assert walk.neurons.tolist() == [[0, 0], [0, 1], [0, 2]]
    assert walk.breakpoints.tolist() == [1.0, 1.5, 2.0]
    assert walk.piece_patterns.tolist() == [
        [False, False, False],
        [True, False, False],
        [True, True, False],
        [True, True, True],
    ]


def test_walk_starting_on_a_hyperplane():
    # x = 0 at the start and grows: active from the start, no breakpoint at 0.
    walk = PLANE_NET.walk(np.array([[0.0, -1.0], [1.0, -1.0]]))
    assert walk.num_breakpoints == 0
    assert walk.piece_patterns.tolist() == [[True, False, False]]


def test_walk_closed_path_breakpoint_at_start():
    # Start on x = 0 heading to x > 0, arrive from x < 0: a change at position 0.
    path = np.array([[0.0, 5.0], [1.0, 5.0], [-1.0, 6.0]])
    walk = PLANE_NET.walk(path, closed=True)
    assert walk.num_breakpoints == 2
    assert walk.positions[0] == 0.0
    assert walk.neurons[0].tolist() == [0, 0]
    assert walk.num_pieces == 2


@given(spec=nets(max_hidden=3, max_width=20), data=st.data())
def test_walk_ignores_zero_length_segments(spec, data):
    path = data.draw(paths_for(spec.input_dim, min_points=3))
    doubled = np.repeat(path, 2, axis=0)
    plain, padded = spec.walk(path), spec.walk(doubled)
    np.testing.assert_array_equal(plain.positions, padded.positions)
    np.testing.assert_array_equal(plain.neurons, padded.neurons)
    np.testing.assert_array_equal(plain.piece_patterns, padded.piece_patterns)


def test_walk_of_a_point_has_one_piece():
    spec = random_net([2, 4, 1], seed=3)
    walk = spec.walk(np.zeros((3, 2)))
    assert walk.num_breakpoints == 0
    assert walk.length == 0.0
    assert walk.num_pieces == 1


@pytest.mark.parametrize(
    ("path", "match"),
    [
        (np.zeros((1, 2)), "path"),
        (np.zeros(4), "path"),
        (np.zeros((3, 3)), "dimension"),
        (np.array([[0.0, np.nan], [1.0, 1.0]]), "NaN"),
    ],
)
def test_walk_rejects_bad_paths(path, match):
    spec = random_net([2, 4, 1], seed=3)
    with pytest.raises(ValueError, match=match):
        spec.walk(path)


def test_walk_rejects_unknown_activation():
    spec = random_net([2, 4, 1], seed=3)
    with pytest.raises(ValueError, match="layer 0"):
        reference.walk_1d(spec.weights, spec.biases, np.zeros((2, 2)), activations="tanh")
