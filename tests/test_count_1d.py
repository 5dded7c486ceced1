"""lrcore.count_1d against the closed form, the reference walk and sampling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrcore
from support import (
    assert_same_flips,
    check_against_sampling,
    closed_points,
    flips_of_result,
    nets,
    paths_for,
    points_at,
    random_net,
    random_path,
    seeds,
    vertex_positions,
)


def assert_matches_walk(spec, path, closed, r):
    """Breakpoint by breakpoint: positions to 1e-9 of the length, neurons, segments."""
    walk = spec.walk(path, closed)
    assert r.length == pytest.approx(walk.length, rel=1e-12)
    assert r.closed == closed
    assert r.num_breakpoints == walk.num_breakpoints
    assert r.num_pieces == walk.num_pieces
    assert r.num_distinct == walk.num_distinct
    positions, _, neurons = flips_of_result(r)
    assert_same_flips(
        positions, neurons, walk.positions, walk.neurons, r.length, closed, what="core vs walk"
    )
    # Breakpoint by breakpoint: the first flipping neuron and the segment agree too
    # (a breakpoint at a polyline vertex belongs to the segment starting there).
    np.testing.assert_allclose(r.breakpoints, walk.breakpoints, rtol=0, atol=1e-9 * r.length)
    np.testing.assert_array_equal(r.neurons, walk.neurons[walk.flip_offsets[:-1]])
    np.testing.assert_array_equal(r.segment, walk.breakpoint_segment)


def check_result_structure(net, path, closed, r):
    """Invariants of a PathResult that hold whatever the network."""
    k = r.num_breakpoints
    assert r.breakpoints.dtype == np.float64
    assert r.breakpoints.shape == (k,)
    assert r.segment.shape == (k,)
    assert r.neurons.shape == (k, 2)
    assert r.flip_offsets.shape == (k + 1,)
    assert r.flip_offsets[0] == 0
    assert np.all(np.diff(r.flip_offsets) >= 1)
    assert r.flip_neurons.shape == (r.flip_offsets[-1], 2)
    np.testing.assert_array_equal(r.neurons, r.flip_neurons[r.flip_offsets[:-1]])
    assert r.num_pieces == (max(k, 1) if closed else k + 1)
    assert r.length == pytest.approx(vertex_positions(path, closed)[-1], rel=1e-12)
    num_segments = len(path) if closed else len(path) - 1
    assert np.all((r.segment >= 0) & (r.segment < num_segments))
    assert np.all((r.flip_neurons[:, 0] >= 0) & (r.flip_neurons[:, 0] < net.num_hidden_layers))
    widths = np.array(net.hidden_sizes)
    assert np.all(r.flip_neurons[:, 1] < widths[r.flip_neurons[:, 0]])
    # Each breakpoint lies on the segment it names.
    offsets = vertex_positions(path, closed)
    slack = 1e-9 * max(r.length, 1.0)
    assert np.all(r.breakpoints >= offsets[r.segment] - slack)
    assert np.all(r.breakpoints <= offsets[r.segment + 1] + slack)


# --- One hidden layer: the closed form ----------------------------------------------


@given(
    d=st.integers(1, 8),
    width=st.integers(1, 40),
    # Long polylines too: the core groups several segments into one work unit only
    # past about a hundred segments.
    num_points=st.one_of(st.integers(2, 8), st.integers(120, 700)),
    closed=st.booleans(),
    activation=st.sampled_from(["relu", "leaky_relu"]),
    net_seed=seeds,
    path_seed=seeds,
)
def test_one_hidden_layer_count_is_closed_form(
    d, width, num_points, closed, activation, net_seed, path_seed
):
    spec = random_net([d, width, 3], net_seed, activation, 0.1)
    path = random_path(d, num_points, path_seed)
    net = spec.to_lrcore()
    r = lrcore.count_1d(net, path, closed)
    check_result_structure(net, path, closed, r)
    # Each neuron is affine on a segment: it flips there iff its bits at the ends differ.
    bits = spec.patterns(closed_points(path, closed))
    per_segment = np.count_nonzero(bits[1:] != bits[:-1], axis=1)
    assert r.flip_offsets[-1] == per_segment.sum()
    assert r.num_breakpoints == per_segment.sum()  # generic: no two flips coincide
    np.testing.assert_array_equal(np.bincount(r.segment, minlength=len(per_segment)), per_segment)


# --- Deeper networks: breakpoint by breakpoint against the reference walk ------------


@given(spec=nets(min_hidden=2), data=st.data(), closed=st.booleans())
def test_deep_nets_match_reference_walk(spec, data, closed):
    path = data.draw(paths_for(spec.input_dim, max_points=7))
    net = spec.to_lrcore()
    r = lrcore.count_1d(net, path, closed)
    check_result_structure(net, path, closed, r)
    assert_matches_walk(spec, path, closed, r)


@settings(max_examples=10)
@given(
    spec=nets(min_hidden=2, max_hidden=3, max_width=12, max_dim=3),
    num_points=st.integers(120, 400),
    path_seed=seeds,
    closed=st.booleans(),
)
def test_long_polylines_match_reference_walk(spec, num_points, path_seed, closed):
    # Enough segments that the core packs several into one work unit and joins the
    # units' vertex lists afterwards.
    path = random_path(spec.input_dim, num_points, path_seed, scale=2.0)
    net = spec.to_lrcore()
    r = lrcore.count_1d(net, path, closed)
    check_result_structure(net, path, closed, r)
    assert_matches_walk(spec, path, closed, r)


@pytest.mark.parametrize("num_points", [3, 64, 129, 200, 601])
def test_zigzag_repeats_one_segment(num_points):
    # On the line, going back and forth over [-5, 5] meets the same breakpoints on
    # every pass (mirrored on the way back) and none at the turning points.
    spec = random_net([1, 96, 24, 1], seed=41)
    net = spec.to_lrcore()
    ends = np.array([[-5.0], [5.0]])
    zigzag = np.tile(ends, (num_points // 2 + 1, 1))[:num_points]
    one_pass = lrcore.count_1d(net, ends)
    assert one_pass.num_breakpoints > 50
    r = lrcore.count_1d(net, zigzag)
    np.testing.assert_array_equal(
        np.bincount(r.segment, minlength=num_points - 1),
        np.full(num_points - 1, one_pass.num_breakpoints),
    )
    # Positions within each pass, one row per segment (every segment has length 10).
    passes = (r.breakpoints - 10.0 * r.segment).reshape(num_points - 1, -1)
    np.testing.assert_allclose(
        passes[0::2], np.broadcast_to(one_pass.breakpoints, passes[0::2].shape), atol=1e-9
    )
    np.testing.assert_allclose(
        passes[1::2],
        np.broadcast_to(10.0 - one_pass.breakpoints[::-1], passes[1::2].shape),
        atol=1e-9,
    )


@given(spec=nets(), data=st.data(), closed=st.booleans())
def test_patterns_agree_with_network_along_path(spec, data, closed):
    path = data.draw(paths_for(spec.input_dim))
    net = spec.to_lrcore()
    r = lrcore.count_1d(net, path, closed, return_patterns=True)
    assert r.patterns.dtype == np.uint8
    assert r.patterns.shape == (r.num_pieces, (net.num_neurons + 7) // 8)
    patterns = r.piece_patterns_bool()
    check_against_sampling(
        spec, path, closed, r.breakpoints, r.flip_offsets, r.flip_neurons, patterns
    )
    assert r.num_distinct == len(np.unique(patterns, axis=0))
    # The same through lrcore's own evaluation and positions_to_points.
    bounds = np.concatenate(([0.0], r.breakpoints, [r.length]))
    if not closed:
        middles = (bounds[1:] + bounds[:-1]) / 2
        long_pieces = np.diff(bounds) > 1e-8 * r.length
        np.testing.assert_array_equal(
            net.patterns(r.positions_to_points(middles[long_pieces])), patterns[long_pieces]
        )


def test_patterns_are_none_unless_asked():
    spec = random_net([2, 8, 8, 1], seed=4)
    r = lrcore.count_1d(spec.to_lrcore(), random_path(2, 3, seed=5))
    assert r.patterns is None
    with pytest.raises(ValueError, match="return_patterns"):
        r.piece_patterns_bool()


@given(spec=nets(min_hidden=2, max_hidden=3, max_width=30, max_dim=3), path_seed=seeds)
def test_dense_sampling_never_sees_more_changes(spec, path_seed):
    path = random_path(spec.input_dim, 4, path_seed, scale=5.0)
    net = spec.to_lrcore()
    r = lrcore.count_1d(net, path)
    samples = r.positions_to_points(np.linspace(0, r.length, 20_000))
    bits = net.patterns(samples)
    changes = int(np.any(bits[1:] != bits[:-1], axis=1).sum())
    assert changes <= r.num_breakpoints


def test_positions_to_points_follow_the_polyline():
    spec = random_net([3, 4, 1], seed=6)
    path = random_path(3, 5, seed=7)
    for closed in (False, True):
        r = lrcore.count_1d(spec.to_lrcore(), path, closed)
        offsets = vertex_positions(path, closed)
        np.testing.assert_allclose(
            r.positions_to_points(offsets), closed_points(path, closed), atol=1e-12
        )
        s = np.random.default_rng(8).uniform(0, r.length, 50)
        np.testing.assert_allclose(
            r.positions_to_points(s), points_at(path, closed, s), atol=1e-12
        )


# --- Invariances ----------------------------------------------------------------------


@given(
    spec=nets(min_hidden=2, max_hidden=3, max_width=20),
    data=st.data(),
    factor=st.floats(0.05, 20.0),
)
def test_rescaling_a_hidden_layer_keeps_breakpoints(spec, data, factor):
    # Scaling layer l by c > 0 and the next layer's weights by 1/c leaves every
    # pre-activation's sign (ReLU and LeakyReLU are positively homogeneous).
    path = data.draw(paths_for(spec.input_dim))
    layer = data.draw(st.integers(0, len(spec.hidden_sizes) - 1))
    weights, biases = list(spec.weights), list(spec.biases)
    weights[layer] = weights[layer] * factor
    biases[layer] = biases[layer] * factor
    weights[layer + 1] = weights[layer + 1] / factor
    base = lrcore.count_1d(spec.to_lrcore(), path)
    scaled = lrcore.count_1d(spec.with_layers(weights, biases).to_lrcore(), path)
    assert_same_flips(
        *flips_of_result(base)[::2], *flips_of_result(scaled)[::2], base.length, False
    )


@given(spec=nets(min_hidden=2, max_hidden=3, max_width=20), data=st.data())
def test_permuting_hidden_units_permutes_neurons(spec, data):
    path = data.draw(paths_for(spec.input_dim))
    layer = data.draw(st.integers(0, len(spec.hidden_sizes) - 1))
    width = spec.hidden_sizes[layer]
    perm = np.random.default_rng(data.draw(seeds)).permutation(width)
    weights, biases = list(spec.weights), list(spec.biases)
    # New unit i is old unit perm[i].
    weights[layer] = weights[layer][perm]
    biases[layer] = biases[layer][perm]
    weights[layer + 1] = weights[layer + 1][:, perm]
    base = lrcore.count_1d(spec.to_lrcore(), path)
    permuted = lrcore.count_1d(spec.with_layers(weights, biases).to_lrcore(), path)
    positions, _, neurons = flips_of_result(permuted)
    neurons = neurons.copy()
    in_layer = neurons[:, 0] == layer
    neurons[in_layer, 1] = perm[neurons[in_layer, 1]]
    assert_same_flips(*flips_of_result(base)[::2], positions, neurons, base.length, False)


@given(spec=nets(max_hidden=3, max_width=20), data=st.data(), closed=st.booleans())
def test_reversed_path_mirrors_breakpoints(spec, data, closed):
    path = data.draw(paths_for(spec.input_dim))
    # For a closed path keep the start point: p0, p_{n-1}, ..., p1.
    reversed_path = np.vstack([path[:1], path[:0:-1]]) if closed else path[::-1]
    net = spec.to_lrcore()
    forward = lrcore.count_1d(net, path, closed)
    backward = lrcore.count_1d(net, reversed_path, closed)
    assert backward.num_breakpoints == forward.num_breakpoints
    assert backward.num_distinct == forward.num_distinct
    positions, _, neurons = flips_of_result(backward)
    assert_same_flips(
        *flips_of_result(forward)[::2], forward.length - positions, neurons, forward.length, closed
    )


@given(spec=nets(max_hidden=3, max_width=20), data=st.data(), closed=st.booleans())
def test_cutting_segments_into_collinear_pieces(spec, data, closed):
    path = data.draw(paths_for(spec.input_dim, max_points=4))
    fractions = data.draw(st.lists(st.floats(0.1, 0.9), min_size=1, max_size=3, unique=True))
    points = closed_points(path, closed)
    cut = []
    for a, b in zip(points[:-1], points[1:]):
        cut.append(a)
        cut.extend(a + f * (b - a) for f in sorted(fractions))
    if not closed:
        cut.append(points[-1])
    cut = np.array(cut)
    net = spec.to_lrcore()
    whole = lrcore.count_1d(net, path, closed)
    pieces = lrcore.count_1d(net, cut, closed)
    # The inserted bends are not breakpoints; the positions stay put.
    assert pieces.num_breakpoints == whole.num_breakpoints
    assert pieces.num_distinct == whole.num_distinct
    assert_same_flips(
        *flips_of_result(whole)[::2], *flips_of_result(pieces)[::2], whole.length, closed
    )


@given(spec=nets(max_hidden=3, max_width=20), data=st.data())
def test_closed_path_count_ignores_starting_point(spec, data):
    path = data.draw(paths_for(spec.input_dim, min_points=3))
    shift = data.draw(st.integers(1, len(path) - 1))
    net = spec.to_lrcore()
    base = lrcore.count_1d(net, path, closed=True)
    rotated = lrcore.count_1d(net, np.roll(path, -shift, axis=0), closed=True)
    assert rotated.num_breakpoints == base.num_breakpoints
    assert rotated.num_pieces == base.num_pieces
    assert rotated.num_distinct == base.num_distinct
    # Positions move by the arc length of the skipped vertices.
    start = vertex_positions(path, True)[shift]
    positions, _, neurons = flips_of_result(rotated)
    assert_same_flips(
        *flips_of_result(base)[::2], positions + start, neurons, base.length, closed=True
    )


@pytest.mark.parametrize("closed_every", [0, 2])
def test_batch_first_layer_table_matches_paths_alone(closed_every):
    """A batch's first-layer table gives each path what it gets alone, and the walk's.

    The batch (many tasks) computes the first layer for all of them in a few products;
    a path alone (one task) computes its own.
    """
    spec = random_net([6, 12, 12, 1], seed=91)
    net = spec.to_lrcore()
    rng = np.random.default_rng(92)
    paths = [rng.standard_normal((int(k), 6)) * 2 for k in rng.integers(2, 7, 150)]
    closed = [
        closed_every > 0 and i % closed_every == 0 and len(p) > 2 for i, p in enumerate(paths)
    ]
    batch = lrcore.count_1d(net, paths, closed=closed, num_threads=1)
    for path, is_closed, result in zip(paths, closed, batch):
        alone = lrcore.count_1d(net, path, closed=is_closed)
        assert result.num_breakpoints == alone.num_breakpoints
        assert result.num_distinct == alone.num_distinct
        np.testing.assert_allclose(result.breakpoints, alone.breakpoints, rtol=1e-9, atol=1e-12)
    for path, is_closed, result in list(zip(paths, closed, batch))[:20]:
        assert_matches_walk(spec, path, is_closed, result)
