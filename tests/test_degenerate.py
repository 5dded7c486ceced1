"""Degenerate geometry: points exactly on hyperplanes, coincident and dead neurons.

The networks use small integer weights, so pre-activations at the chosen points are
exactly zero in float64 and the expected answer follows from the construction.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrcore
from support import (
    NetSpec,
    assert_same_flips,
    check_against_sampling,
    flips_of_result,
    nets,
    paths_for,
    random_net,
    random_path,
    seeds,
)

# Coordinate neurons in the plane: z = (x, y, x + y - 1).
PLANE = NetSpec(
    weights=(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), np.ones((1, 3))),
    biases=(np.array([0.0, 0.0, -1.0]), np.zeros(1)),
)

# Two hidden ReLU layers on the line: (relu(x), relu(-x)), then |x| + bias.
ABS = NetSpec(
    weights=(np.array([[1.0], [-1.0]]), np.array([[1.0, 1.0]]), np.array([[1.0]])),
    biases=(np.zeros(2), np.zeros(1), np.zeros(1)),
)


def count(spec, path, closed=False):
    return lrcore.count_1d(spec.to_lrcore(), np.asarray(path, float), closed, return_patterns=True)


def assert_agrees_with_walk(spec, path, closed, r):
    walk = spec.walk(np.asarray(path, float), closed)
    assert r.num_breakpoints == walk.num_breakpoints
    assert r.num_pieces == walk.num_pieces
    np.testing.assert_array_equal(r.breakpoints, walk.breakpoints)
    np.testing.assert_array_equal(r.flip_offsets, walk.flip_offsets)
    np.testing.assert_array_equal(r.flip_neurons, walk.neurons)
    np.testing.assert_array_equal(r.piece_patterns_bool(), walk.piece_patterns)


# --- Path points on hyperplanes --------------------------------------------------------


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_touching_at_a_bend_is_no_breakpoint(side):
    # x goes -1 -> 0 -> -1 (or +1 -> 0 -> +1): it touches zero at the bend.
    path = [[-side, 3.0], [0.0, 3.0], [-side, 4.0]]
    r = count(PLANE, path)
    assert r.num_breakpoints == 0
    assert r.num_pieces == 1
    assert_agrees_with_walk(PLANE, path, False, r)


def test_crossing_at_a_bend_is_one_breakpoint():
    path = [[-1.0, 3.0], [0.0, 2.0], [1.0, 3.0]]
    r = count(PLANE, path)
    assert r.num_breakpoints == 1
    assert r.breakpoints[0] == pytest.approx(np.sqrt(2.0), rel=1e-15)
    assert r.neurons.tolist() == [[0, 0]]
    assert r.flip_neurons.tolist() == [[0, 0]]
    assert r.segment.tolist() == [1]
    assert_agrees_with_walk(PLANE, path, False, r)


def test_crossing_through_a_vertex_of_the_arrangement():
    # x and y change sign together at the origin: one breakpoint, two neurons.
    path = [[-1.0, -1.0], [1.0, 1.0]]
    r = count(PLANE, path)
    s = np.sqrt(2.0)
    assert r.breakpoints == pytest.approx([s, 1.5 * s], rel=1e-15)
    assert r.flip_offsets.tolist() == [0, 2, 3]
    assert r.flip_neurons.tolist() == [[0, 0], [0, 1], [0, 2]]
    assert r.neurons.tolist() == [[0, 0], [0, 2]]
    assert_agrees_with_walk(PLANE, path, False, r)


def test_path_along_a_hyperplane_is_inactive_there():
    # y = 0 on the first segment (zero counts as inactive), then rises.
    path = [[-1.0, 0.0], [0.5, 0.0], [0.5, 1.0]]
    r = count(PLANE, path)
    assert r.breakpoints.tolist() == [1.0, 1.5, 2.0]
    assert r.flip_neurons.tolist() == [[0, 0], [0, 1], [0, 2]]
    assert r.piece_patterns_bool()[:, 1].tolist() == [False, False, True, True]
    assert_agrees_with_walk(PLANE, path, False, r)


def test_endpoints_on_hyperplanes_are_no_breakpoints():
    # x is 0 at both ends: positive in between, no change inside the open path.
    path = [[0.0, 2.0], [1.0, 2.0], [0.0, 3.0]]
    r = count(PLANE, path)
    assert r.num_breakpoints == 0
    assert r.piece_patterns_bool().tolist() == [[True, True, True]]


def test_closed_path_through_its_start_on_a_hyperplane():
    # Leaves the start (on x = 0) into x > 0 and comes back from x < 0.
    path = [[0.0, 5.0], [1.0, 5.0], [-1.0, 6.0]]
    r = count(PLANE, path, closed=True)
    assert r.num_breakpoints == 2
    assert 0.0 in r.breakpoints.tolist() or r.length in r.breakpoints.tolist()
    assert r.num_pieces == 2
    assert_same_flips(
        *flips_of_result(r)[::2],
        PLANE.walk(np.array(path), True).positions,
        PLANE.walk(np.array(path), True).neurons,
        r.length,
        closed=True,
    )


def test_closed_path_touching_at_its_start_is_no_breakpoint():
    path = [[0.0, 5.0], [1.0, 5.0], [1.0, 6.0]]
    r = count(PLANE, path, closed=True)
    assert r.num_breakpoints == 0
    assert r.num_pieces == 1


def test_deep_neuron_touching_zero_at_a_kink():
    # |x| only touches zero at x = 0, where layer 0's two units flip together.
    path = [[-1.0], [2.0]]
    r = count(ABS, path)
    assert r.breakpoints.tolist() == [1.0]
    assert r.flip_neurons.tolist() == [[0, 0], [0, 1]]
    assert_agrees_with_walk(ABS, path, False, r)


def test_deep_neuron_crossing_at_a_kink():
    # relu(x) - relu(-x) = x changes sign exactly where layer 0 kinks.
    spec = ABS.with_layers((ABS.weights[0], np.array([[1.0, -1.0]]), ABS.weights[2]), ABS.biases)
    path = [[-1.0], [2.0]]
    r = count(spec, path)
    assert r.breakpoints.tolist() == [1.0]
    assert r.flip_neurons.tolist() == [[0, 0], [0, 1], [1, 0]]
    assert_agrees_with_walk(spec, path, False, r)


def test_one_dimensional_back_and_forth():
    # d = 1 with reversals: the path crosses x = 0 and x = +-0.5 several times.
    spec = ABS.with_layers(ABS.weights, (np.zeros(2), np.array([-0.5]), np.zeros(1)))
    path = [[-1.0], [2.0], [-0.25], [0.75]]
    r = count(spec, path)
    assert_agrees_with_walk(spec, path, False, r)
    # x = 0 is crossed three times, |x| = 0.5 at -0.5 once, at +0.5 three times.
    assert r.num_breakpoints == 7
    check_against_sampling(
        spec,
        np.array(path),
        False,
        r.breakpoints,
        r.flip_offsets,
        r.flip_neurons,
        r.piece_patterns_bool(),
    )


# --- Zero-length segments -------------------------------------------------------------


@given(spec=nets(max_hidden=3, max_width=20), data=st.data(), closed=st.booleans())
def test_repeated_points_change_nothing(spec, data, closed):
    path = data.draw(paths_for(spec.input_dim, min_points=3))
    repeats = data.draw(st.lists(st.integers(1, 3), min_size=len(path), max_size=len(path)))
    padded = np.repeat(path, repeats, axis=0)
    net = spec.to_lrcore()
    plain = lrcore.count_1d(net, path, closed, return_patterns=True)
    with_repeats = lrcore.count_1d(net, padded, closed, return_patterns=True)
    assert with_repeats.length == pytest.approx(plain.length, rel=1e-14)
    np.testing.assert_allclose(with_repeats.breakpoints, plain.breakpoints, atol=1e-12)
    np.testing.assert_array_equal(with_repeats.flip_neurons, plain.flip_neurons)
    np.testing.assert_array_equal(with_repeats.piece_patterns_bool(), plain.piece_patterns_bool())


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_repeated_point_on_a_hyperplane_touching(side):
    # The repeated bend lies on x = 0 and x only touches zero there.
    path = [[-side, 3.0], [0.0, 3.0], [0.0, 3.0], [-side, 4.0]]
    r = count(PLANE, path)
    assert r.num_breakpoints == 0
    assert r.num_pieces == 1
    assert_agrees_with_walk(PLANE, path, False, r)


@pytest.mark.parametrize("side", [1.0, -1.0])
def test_repeated_point_on_a_hyperplane_crossing(side):
    path = [[-side, 3.0], [0.0, 2.0], [0.0, 2.0], [side, 3.0]]
    r = count(PLANE, path)
    assert r.num_breakpoints == 1
    assert r.flip_neurons.tolist() == [[0, 0]]
    assert r.num_pieces == 2
    assert_agrees_with_walk(PLANE, path, False, r)


def test_path_of_one_repeated_point():
    spec = random_net([2, 6, 6, 1], seed=9)
    r = lrcore.count_1d(spec.to_lrcore(), np.ones((3, 2)), return_patterns=True)
    assert r.length == 0.0
    assert r.num_breakpoints == 0
    assert r.num_pieces == 1
    assert r.num_distinct == 1
    np.testing.assert_array_equal(r.piece_patterns_bool()[0], spec.patterns(np.ones((1, 2)))[0])


# --- Coincident, dead and constant neurons --------------------------------------------


@given(spec=nets(max_hidden=3, max_width=15, leaky=False), data=st.data())
def test_duplicate_neurons_flip_together(spec, data):
    path = data.draw(paths_for(spec.input_dim))
    layer = data.draw(st.integers(0, len(spec.hidden_sizes) - 1))
    unit = data.draw(st.integers(0, spec.hidden_sizes[layer] - 1))
    weights, biases = list(spec.weights), list(spec.biases)
    # A copy of the unit, appended last, that the next layer ignores: the function and
    # every other neuron are unchanged.
    weights[layer] = np.vstack([weights[layer], weights[layer][unit]])
    biases[layer] = np.append(biases[layer], biases[layer][unit])
    weights[layer + 1] = np.hstack(
        [weights[layer + 1], np.zeros((weights[layer + 1].shape[0], 1))]
    )
    copy = spec.hidden_sizes[layer]
    net = spec.to_lrcore()
    base = lrcore.count_1d(net, path)
    doubled = lrcore.count_1d(spec.with_layers(weights, biases).to_lrcore(), path)
    np.testing.assert_allclose(doubled.breakpoints, base.breakpoints, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(doubled.neurons, base.neurons)
    for i in range(doubled.num_breakpoints):
        flips = doubled.flip_neurons[doubled.flip_offsets[i] : doubled.flip_offsets[i + 1]]
        flips = {tuple(f) for f in flips.tolist()}
        assert ((layer, unit) in flips) == ((layer, copy) in flips)
        before = base.flip_neurons[base.flip_offsets[i] : base.flip_offsets[i + 1]]
        expected = {tuple(f) for f in before.tolist()}
        if (layer, unit) in expected:
            expected.add((layer, copy))
        assert flips == expected


@given(spec=nets(min_hidden=2, max_hidden=4, max_width=20, leaky=False), data=st.data())
def test_dead_layer_silences_deeper_layers(spec, data):
    path = data.draw(paths_for(spec.input_dim))
    dead = data.draw(st.integers(0, len(spec.hidden_sizes) - 1))
    biases = list(spec.biases)
    # Far below anything the weights reach on the path: every unit is off everywhere.
    biases[dead] = np.full_like(biases[dead], -1e6)
    killed = spec.with_layers(spec.weights, biases)
    r = lrcore.count_1d(killed.to_lrcore(), path, return_patterns=True)
    assert np.all(r.flip_neurons[:, 0] < dead)
    start = sum(spec.hidden_sizes[:dead])
    assert not r.piece_patterns_bool()[:, start : start + spec.hidden_sizes[dead]].any()
    if dead == 0:
        assert r.num_breakpoints == 0
        assert r.num_pieces == 1
        assert r.num_distinct == 1
    walk = killed.walk(path)
    assert_same_flips(*flips_of_result(r)[::2], walk.positions, walk.neurons, r.length, False)


@given(spec=nets(max_hidden=3, max_width=20), data=st.data())
def test_zero_weight_rows_never_flip(spec, data):
    path = data.draw(paths_for(spec.input_dim))
    layer = data.draw(st.integers(0, len(spec.hidden_sizes) - 1))
    bias = data.draw(st.sampled_from([-0.5, 0.0, 0.5]))
    weights, biases = list(spec.weights), list(spec.biases)
    weights[layer] = weights[layer].copy()
    weights[layer][0] = 0.0
    biases[layer] = biases[layer].copy()
    biases[layer][0] = bias
    constant = spec.with_layers(weights, biases)
    r = lrcore.count_1d(constant.to_lrcore(), path, return_patterns=True)
    assert not np.any((r.flip_neurons[:, 0] == layer) & (r.flip_neurons[:, 1] == 0))
    column = sum(spec.hidden_sizes[:layer])
    assert np.all(r.piece_patterns_bool()[:, column] == (bias > 0))
    walk = constant.walk(path)
    assert_same_flips(*flips_of_result(r)[::2], walk.positions, walk.neurons, r.length, False)


@given(width=st.integers(1, 30), depth=st.integers(1, 3), net_seed=seeds, path_seed=seeds)
def test_one_dimensional_input(width, depth, net_seed, path_seed):
    spec = random_net([1] + [width] * depth + [1], net_seed)
    path = random_path(1, 6, path_seed)
    r = lrcore.count_1d(spec.to_lrcore(), path, return_patterns=True)
    walk = spec.walk(path)
    assert_same_flips(*flips_of_result(r)[::2], walk.positions, walk.neurons, r.length, False)
    check_against_sampling(
        spec, path, False, r.breakpoints, r.flip_offsets, r.flip_neurons, r.piece_patterns_bool()
    )
