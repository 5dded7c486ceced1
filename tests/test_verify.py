"""result.verify(): passes on what the core computes, fails on corrupted results."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrcore
from support import nets, paths_for, random_net, random_path, seeds

# Lines that meet exactly (concurrent, coincident, through corners): the certified filter
# cannot decide such values; the slow path's exact tier proves them 0 (exact
# coincidences, docs/numerics.md §6), or, past its budget, they take the zero tolerance's
# decision with a lrcore.CertificationWarning. The exact oracle checks the result.
EXACT_COINCIDENCES = pytest.mark.filterwarnings("ignore::lrcore.CertificationWarning")


# --- Corrupting results ----------------------------------------------------------------


def path_with(r: lrcore.PathResult, **changes) -> lrcore.PathResult:
    """A copy of a PathResult with some of its arrays replaced."""
    fields = {
        "points": r.points,
        "closed": r.closed,
        "length": r.length,
        "breakpoints": r.breakpoints,
        "segment": r.segment,
        "flip_offsets": r.flip_offsets,
        "flip_neurons": r.flip_neurons,
        "num_pieces": r.num_pieces,
        "num_distinct": r.num_distinct,
        "patterns": r.patterns,
        "num_neurons": r.num_neurons,
    }
    fields.update(changes)
    return lrcore.PathResult(**fields, network=r.network, rtol=r.rtol)


def slice_with(r: lrcore.SliceResult, **changes) -> lrcore.SliceResult:
    """A copy of a SliceResult with some of its arrays replaced."""
    arrays = {
        "vertices": r.vertices,
        "outputs": r.vertex_outputs,
        "face_offsets": r.face_offsets,
        "face_vertices": r.face_vertices,
        "edges": r.edges,
        "edge_neurons": r.edge_neurons,
        "patterns": r.patterns,
    }
    arrays.update(changes)
    return lrcore.SliceResult(
        arrays, r.plane, r.domain, r.num_neurons, network=r.network, rtol=r.rtol
    )


def drop_breakpoint(r: lrcore.PathResult, i: int) -> lrcore.PathResult:
    """Forget breakpoint i of an open path: pieces i and i + 1 merge (into piece i's)."""
    lo, hi = r.flip_offsets[i], r.flip_offsets[i + 1]
    offsets = np.concatenate([r.flip_offsets[: i + 1], r.flip_offsets[i + 2 :] - (hi - lo)])
    patterns = None if r.patterns is None else np.delete(r.patterns, i + 1, axis=0)
    return path_with(
        r,
        breakpoints=np.delete(r.breakpoints, i),
        segment=np.delete(r.segment, i),
        flip_offsets=offsets,
        flip_neurons=np.delete(r.flip_neurons, np.arange(lo, hi), axis=0),
        num_pieces=r.num_pieces - 1,
        num_distinct=len(np.unique(patterns, axis=0)) if patterns is not None else 0,
        patterns=patterns,
    )


def failed_checks(result, **kwargs) -> set[str]:
    report = result.verify(**kwargs)
    assert report.ok == (report.num_problems == 0) == (len(report.problems) == 0)
    return {p.check for p in report.problems}


NET = random_net([3, 16, 16, 1], seed=40)
PATH = random_path(3, 5, seed=41)


def one_path(return_patterns: bool = True, closed: bool = False) -> lrcore.PathResult:
    r = lrcore.count_1d(NET.to_lrcore(), PATH, closed, return_patterns=return_patterns)
    assert r.num_breakpoints > 10
    assert r.verify().ok
    return r


def one_slice() -> lrcore.SliceResult:
    r = lrcore.slice_2d(NET.to_lrcore(), PATH[0], PATH[1:3] - PATH[0], (-1, 2, -1, 2))
    assert r.num_regions > 50
    assert r.verify().ok
    return r


# --- Passing on computed results ------------------------------------------------------


@given(
    spec=nets(max_hidden=3, max_width=20),
    data=st.data(),
    closed=st.booleans(),
    patterns=st.booleans(),
)
def test_paths_verify(spec, data, closed, patterns):
    net = spec.to_lrcore()
    path = data.draw(paths_for(spec.input_dim))
    r = lrcore.count_1d(net, path, closed, return_patterns=patterns)
    report = r.verify(raise_on_error=True)
    assert report.kind == "path"
    assert report.num_cells == r.num_pieces
    assert report.num_cuts == r.num_breakpoints
    # Certified results: the tolerance is a multiple of the certified error bound.
    assert report.max_residual <= report.tolerance == lrcore.VERIFY_FACTOR
    # Every piece's ends are evaluated (a piece's end is the next one's start); a middle
    # where the piece's pattern was read is not evaluated again.
    assert report.num_points >= r.num_pieces + (0 if r.closed else 1)


@settings(max_examples=20)
@given(spec=nets(max_hidden=3, max_width=12), seed=seeds, count=st.integers(0, 5))
def test_batches_verify(spec, seed, count):
    rng = np.random.default_rng(seed)
    paths = [
        2 * rng.standard_normal((int(rng.integers(2, 6)), spec.input_dim)) for _ in range(count)
    ]
    b = lrcore.count_1d(spec.to_lrcore(), paths, closed=bool(seed % 2))
    report = b.verify(raise_on_error=True)
    assert report.kind == "batch"
    assert report.num_cells == int(b.num_pieces.sum())


@settings(max_examples=30)
@given(spec=nets(max_hidden=3, max_width=16), seed=seeds)
def test_slices_verify(spec, seed):
    rng = np.random.default_rng(seed)
    d = max(spec.input_dim, 2)  # a plane needs two independent directions
    spec = spec.with_layers(
        [np.resize(spec.weights[0], (spec.weights[0].shape[0], d)), *list(spec.weights[1:])],
        spec.biases,
    )
    r = lrcore.slice_2d(spec.to_lrcore(), rng.standard_normal(d), rng.standard_normal((2, d)))
    report = r.verify(raise_on_error=True)
    assert report.kind == "slice"
    assert report.num_cells == r.num_regions
    assert report.num_cuts == int(np.sum(r.edge_neurons[:, 0] >= 0))


@EXACT_COINCIDENCES
def test_degenerate_constructions_verify():
    # Lines through one point, a path along a hyperplane and through a vertex of the
    # arrangement, duplicate and zero neurons.
    w0 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, -1.0]])
    net = lrcore.Network([w0, np.ones((1, 6))], [np.zeros(6), np.ones(1)])
    for path in ([[-1, -1], [1, 1]], [[-1, 0], [1, 0]], [[-1, 1], [1, -1], [2, 2]]):
        for closed in (False, True):
            for patterns in (False, True):
                r = lrcore.count_1d(net, np.array(path, float), closed, return_patterns=patterns)
                r.verify(raise_on_error=True)
    r = lrcore.slice_2d(net, np.zeros(2), np.eye(2))
    assert r.num_regions == 8
    r.verify(raise_on_error=True)


# --- Failing on corrupted results -----------------------------------------------------


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("patterns", [True, False])
def test_moved_breakpoint_fails(patterns, full):
    r = one_path(patterns)
    bp = r.breakpoints.copy()
    bp[5] += 0.1 * min(bp[6] - bp[5], bp[5] - bp[4])
    report = path_with(r, breakpoints=bp).verify(full_forward=full)
    assert not report.ok
    assert {"breakpoint-zero", "pattern"} <= {p.check for p in report.problems}
    assert any(p.index == 5 and p.position == (bp[5],) for p in report.problems)
    assert report.max_residual > report.tolerance
    with pytest.raises(lrcore.VerificationError, match="breakpoint-zero") as err:
        path_with(r, breakpoints=bp).verify(raise_on_error=True)
    assert err.value.report.num_problems == report.num_problems
    assert isinstance(err.value, AssertionError)


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("patterns", [True, False])
def test_dropped_breakpoint_fails(patterns, full):
    r = one_path(patterns)
    for i in range(r.num_breakpoints - 1):  # whichever layer flips there
        assert "pattern" in failed_checks(drop_breakpoint(r, i), full_forward=full)


@pytest.mark.parametrize("full", [False, True])
def test_flipped_pattern_bit_fails(full):
    r = one_path()
    patterns = r.patterns.copy()
    patterns[3, 0] ^= 1
    checks = failed_checks(path_with(r, patterns=patterns), full_forward=full)
    assert {"pattern", "breakpoint-flips"} <= checks


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("patterns", [True, False])
def test_wrong_flip_neuron_fails(patterns, full):
    r = one_path(patterns)
    for i in range(r.num_breakpoints):
        # The other layer: layer by layer, a breakpoint claimed in layer 1 is not
        # evaluated in layer 0 (its values there interpolated), and the reverse.
        neurons = r.flip_neurons.copy()
        row = r.flip_offsets[i]
        neurons[row] = [1 - neurons[row, 0], (neurons[row, 1] + 1) % 16]
        checks = failed_checks(path_with(r, flip_neurons=neurons), full_forward=full)
        assert {"breakpoint-zero", "breakpoint-flips"} <= checks


def test_wrong_counts_and_orders_fail():
    r = one_path()
    assert "count" in failed_checks(path_with(r, num_pieces=r.num_pieces + 1))
    assert "count" in failed_checks(path_with(r, num_distinct=r.num_distinct + 1))
    assert "length" in failed_checks(path_with(r, length=r.length * 1.01))
    swapped = r.breakpoints.copy()
    swapped[[2, 3]] = swapped[[3, 2]]
    assert "order" in failed_checks(path_with(r, breakpoints=swapped))
    assert "segment" in failed_checks(path_with(r, segment=(r.segment + 1) % 4))


@pytest.mark.parametrize("full", [False, True])
def test_closed_path_with_a_wrong_piece_fails(full):
    r = one_path(closed=True)
    patterns = r.patterns.copy()
    patterns[0] = patterns[1]  # the piece through the start takes its neighbour's pattern
    assert "pattern" in failed_checks(path_with(r, patterns=patterns), full_forward=full)


def test_another_network_fails():
    r = one_path()
    layer, unit = r.neurons[0]
    biases = [b.copy() for b in NET.biases]
    biases[layer][unit] += 1e-3  # the first flipping neuron's zero set moves a little
    other = lrcore.Network(list(NET.weights), biases)
    assert not r.verify(net=other).ok
    batch = lrcore.count_1d(NET.to_lrcore(), [PATH, PATH[::-1]])
    report = batch.verify(net=other)
    assert not report.ok
    assert {p.path for p in report.problems} == {0, 1}


def test_slice_flipped_pattern_bit_fails():
    r = one_slice()
    patterns = r.patterns.copy()
    patterns[10, 1] ^= 4
    checks = failed_checks(slice_with(r, patterns=patterns))
    assert "pattern" in checks


def test_slice_moved_vertex_fails():
    r = one_slice()
    vertices = r.vertices.copy()
    inner = r.edges[r.edge_neurons[:, 0] >= 0]
    v = np.intersect1d(inner[:, 0], inner[:, 1])[0]  # interior: on two inner edges
    vertices[v] += 1e-4 * np.array([0.6, 0.8])
    report = slice_with(r, vertices=vertices).verify()
    assert "edge-zero" in {p.check for p in report.problems}
    assert any(
        np.allclose(p.position, vertices[v]) for p in report.problems if p.check == "pattern"
    )


def test_slice_dropped_vertex_and_face_fail():
    r = one_slice()
    # A face loses a corner: it no longer covers its area, its neighbours' sides dangle.
    sizes = np.diff(r.face_offsets)
    f = int(np.argmax(sizes))
    keep = np.ones(len(r.face_vertices), bool)
    keep[r.face_offsets[f]] = False
    offsets = r.face_offsets.copy()
    offsets[f + 1 :] -= 1
    checks = failed_checks(
        slice_with(r, face_vertices=r.face_vertices[keep], face_offsets=offsets)
    )
    assert {"area", "edges"} <= checks
    # A face is gone: a hole in the domain.
    start, stop = r.face_offsets[5], r.face_offsets[6]
    offsets = np.concatenate([r.face_offsets[:6], r.face_offsets[7:] - (stop - start)])
    dropped = slice_with(
        r,
        face_vertices=np.delete(r.face_vertices, np.arange(start, stop)),
        face_offsets=offsets,
        patterns=np.delete(r.patterns, 5, axis=0),
    )
    assert {"area", "edges", "euler"} & failed_checks(dropped) == {"area", "edges", "euler"}


def test_slice_reversed_face_and_wrong_outputs_fail():
    r = one_slice()
    fv = r.face_vertices.copy()
    lo, hi = r.face_offsets[2], r.face_offsets[3]
    fv[lo:hi] = fv[lo:hi][::-1]
    assert {"area", "convex"} <= failed_checks(slice_with(r, face_vertices=fv))
    outputs = r.vertex_outputs.copy()
    outputs[7] += 1e-3
    assert failed_checks(slice_with(r, outputs=outputs)) == {"outputs"}


def test_slice_edge_with_wrong_neuron_fails():
    r = one_slice()
    neurons = r.edge_neurons.copy()
    inner = np.flatnonzero(neurons[:, 0] >= 0)
    neurons[inner[0]] = [1 - neurons[inner[0], 0], (neurons[inner[0], 1] + 3) % 16]
    assert {"edge-zero", "edge-flips"} <= failed_checks(slice_with(r, edge_neurons=neurons))


# --- The report and the options -------------------------------------------------------


def test_report_reads_well():
    r = one_path()
    report = r.verify()
    assert bool(report) is True
    assert str(report).startswith("verify (path): ok;")
    bad = path_with(r, num_pieces=r.num_pieces + 1).verify()
    assert bool(bad) is False
    text = str(bad)
    assert "FAILED" in text
    assert "[count]" in text
    with pytest.raises(AttributeError):
        bad.ok = True  # frozen


def test_tolerance_option():
    r = one_path()
    bp = r.breakpoints.copy()
    bp[5] += 1e-4 * (bp[6] - bp[5])
    moved = path_with(r, breakpoints=bp)
    assert not moved.verify().ok
    # A certified result's tolerance multiplies its certified error bound (about 1e-16 of
    # the values' scale): a loose enough one accepts anything this small.
    assert not moved.verify(tol=1e9, full_forward=True).ok
    # Layer by layer, the interpolation's rounding adds to the bound (a few times looser).
    assert not moved.verify(tol=1e8).ok
    assert moved.verify(tol=1e12).ok
    assert moved.verify(tol=1e12, full_forward=True).ok
    old_rule = path_with(lrcore.count_1d(NET.to_lrcore(), PATH, rtol=1e-10), breakpoints=bp)
    assert old_rule.rtol == 1e-10
    assert not old_rule.verify().ok
    assert old_rule.verify(tol=1.0).ok  # relative to ||W_j|| ||h|| + |b_j|
    loose = lrcore.count_1d(NET.to_lrcore(), PATH, rtol=1e-6)
    assert loose.verify().tolerance == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="tol"):
        r.verify(tol=-1.0)
    with pytest.raises(ValueError, match="tol"):
        r.verify(tol=float("nan"))


def test_result_without_network_needs_one():
    r = one_path()
    orphan = lrcore.PathResult(
        r.points,
        r.closed,
        r.length,
        r.breakpoints,
        r.segment,
        r.flip_offsets,
        r.flip_neurons,
        r.num_pieces,
        r.num_distinct,
        r.patterns,
        r.num_neurons,
    )
    with pytest.raises(TypeError, match="net"):
        orphan.verify()
    assert orphan.verify(net=NET.to_lrcore()).ok
    wrong_size = lrcore.Network.random([3, 5, 1], seed=0)
    assert "shape" in failed_checks(orphan, net=wrong_size)


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("rtol", [None, 1e-10])
def test_flipped_bit_deep_in_a_residual_conv_net_is_named(rtol, full):
    # A residual conv net: several hidden layers, linear units riding along. verify()
    # checks layer by layer; a flipped bit must be found and named, in whichever layer,
    # and only the earliest contradicted neuron of a piece is reported.
    torch = pytest.importorskip("torch")
    from lrcore import zoo

    model = zoo.resnet18(width=2, seed=3)
    net = lrcore.from_torch(model, (3, 32, 32))
    assert any(net.linear_units)
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(3072)
    r = lrcore.count_1d(
        net, np.stack([x0, x0 + 0.01 * rng.standard_normal(3072)]), rtol=rtol, return_patterns=True
    )
    assert r.verify().ok
    offsets = net.neuron_offsets()
    bits = np.unpackbits(r.patterns, axis=1, count=net.num_neurons, bitorder="little")
    z = net.pre_activations(r.points.mean(axis=0, keepdims=True))
    values = np.concatenate([layer[:, :n] for layer, n in zip(z, net.hidden_sizes)], axis=1)[0]
    piece = int(np.searchsorted(r.breakpoints, 0.5 * r.length))
    layers = [1, len(net.hidden_sizes) // 2, len(net.hidden_sizes) - 1]
    if rtol is None:
        # The certified filter's error bound grows through the layers (docs/numerics.md):
        # deep in this net it exceeds the values, which may then have either sign.
        layers = [1, 2]
    for layer in layers:
        # The neuron of this layer farthest from zero at the path's middle.
        lo, hi = offsets[layer], offsets[layer + 1]
        column = lo + int(np.argmax(np.abs(values[lo:hi])))
        flipped = bits.copy()
        flipped[piece, column] ^= 1
        patterns = np.packbits(flipped, axis=1, bitorder="little")
        report = path_with(r, patterns=patterns).verify(full_forward=full)
        named = [p for p in report.problems if p.check == "pattern" and p.index == piece]
        assert named, report
        assert all(f"neuron ({layer}, {column - lo})" in p.message for p in named), named
    del torch


# --- Ends only: what a pattern wrong inside a piece needs ------------------------------

#: |x| - 1 in layer 2 (from relu(x) and relu(-x) in layer 1): on [-2, 2] it crosses zero
#: twice, at -1 and 1, and layer 1 once, at 0.
ABS_NET = lrcore.Network(
    [np.array([[1.0], [-1.0]]), np.array([[1.0, 1.0]]), np.array([[1.0]])],
    [np.zeros(2), np.array([-1.0]), np.zeros(1)],
)


#: The same, three layers deeper: layers 1 and 2 pass relu(x), relu(-x) on (plus 1 each),
#: layer 3 is |x| - 1 and crosses zero at -1 and 1; layer 0 crosses at 0. Layer by
#: layer, the breakpoint at 0 is evaluated from layer 1 on, and -1 and 1 from layer 4
#: (the output) on: their values in layers 0-3 are interpolated.
DEEP_ABS_NET = lrcore.Network(
    [np.array([[1.0], [-1.0]]), np.eye(2), np.eye(2), np.array([[1.0, 1.0]]), np.array([[1.0]])],
    [np.zeros(2), np.ones(2), np.ones(2), np.array([-5.0]), np.zeros(1)],
)


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize(("net", "deep"), [(ABS_NET, 1), (DEEP_ABS_NET, 3)])
@pytest.mark.parametrize("patterns", [True, False])
def test_missing_pair_of_deep_breakpoints_fails(patterns, net, deep, full):
    # verify() checks the ends of pieces only. A layer-2 neuron crossing twice inside a
    # piece needs a layer-1 sign change between the crossings (layer 2 is affine where
    # layer 1's signs are constant); dropping the layer-2 pair leaves that breakpoint,
    # where the layer-2 neuron has the wrong sign for both merged pieces; dropping it too
    # leaves layer-1 neurons with opposite certain signs at the piece's ends.
    r = lrcore.count_1d(net, np.array([[-2.0], [2.0]]), return_patterns=True)
    assert r.breakpoints.tolist() == [1.0, 2.0, 3.0]
    assert r.verify(full_forward=full).num_points == 5  # one point per piece end, no middles
    pair = path_with(
        r,
        breakpoints=r.breakpoints[[1]],
        segment=r.segment[[1]],
        flip_offsets=np.array([0, 2]),
        flip_neurons=r.flip_neurons[1:3],
        num_pieces=2,
        num_distinct=2,
        patterns=r.patterns[[0, 3]] if patterns else None,
    )
    report = pair.verify(full_forward=full)
    assert {p.check for p in report.problems} == {"pattern"}
    assert any(f"neuron ({deep}, 0)" in p.message for p in report.problems)
    three = one_piece(r, patterns)
    report = three.verify(full_forward=full)
    assert "pattern" in {p.check for p in report.problems}
    assert any("neuron (0, 0)" in p.message for p in report.problems)


def one_piece(r: lrcore.PathResult, patterns: bool) -> lrcore.PathResult:
    """``r`` with every breakpoint dropped: one piece, the first piece's pattern stored."""
    return path_with(
        r,
        breakpoints=np.zeros(0),
        segment=np.zeros(0, np.int64),
        flip_offsets=np.array([0]),
        flip_neurons=np.zeros((0, 2), np.int64),
        num_pieces=1,
        num_distinct=1,
        patterns=r.patterns[[0]] if patterns else None,
    )


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("patterns", [True, False])
def test_missing_pair_around_a_polyline_vertex_fails(patterns, full):
    # A layer-1 neuron can cross twice on a polyline, out and back: the vertex between
    # is a sub-interval end, so it is checked like a breakpoint.
    r = lrcore.count_1d(ABS_NET, np.array([[-0.5], [0.5], [-0.5]]), return_patterns=True)
    assert r.num_breakpoints == 2
    assert r.verify(full_forward=full).ok
    merged = one_piece(r, patterns)
    report = merged.verify(full_forward=full)
    assert "pattern" in {p.check for p in report.problems}
    at = {p.position for p in report.problems if p.check == "pattern"}
    # Against the stored pattern the vertex is wrong; read from the ends and the vertex,
    # the pattern contradicts some of them.
    assert at == {(1.0,)} if patterns else at <= {(0.0,), (1.0,), (2.0,)}


# --- Layer by layer against the whole forward pass --------------------------------------


def _both_ways(r: lrcore.PathResult) -> tuple[lrcore.VerifyReport, lrcore.VerifyReport]:
    return r.verify(), r.verify(full_forward=True)


@settings(max_examples=40)
@given(
    spec=nets(max_hidden=4, max_width=16),
    data=st.data(),
    closed=st.booleans(),
    patterns=st.booleans(),
    rtol=st.sampled_from([None, 1e-10]),
)
def test_layer_by_layer_agrees_with_the_whole_forward_pass(spec, data, closed, patterns, rtol):
    net = spec.to_lrcore()
    path = data.draw(paths_for(spec.input_dim))
    r = lrcore.count_1d(net, path, closed, return_patterns=patterns, rtol=rtol)
    layered, full = _both_ways(r)
    assert layered.ok, layered
    assert full.ok, full
    assert layered.max_residual <= layered.tolerance
    # The same certain signs at every piece end, where both are sure of them.
    from lrcore import _verify as v

    ev = v._Evaluator(net, np.zeros(net.input_dim), certified=rtol is None)
    tol = v._default_tol(None, rtol)
    closed_pts = np.vstack([r.points, r.points[:1]]) if r.closed else r.points
    positions, xs, _, _ = v._sub_intervals(r)
    k = r.num_breakpoints
    bp_rows = np.repeat(np.arange(k), np.diff(r.flip_offsets))
    layers = r.flip_neurons.reshape(-1, 2)[:, 0]
    layout = v._knot_layout(r, positions, closed_pts, bp_rows, layers)
    assert layout is not None
    columns = ev.flat(r.flip_neurons) if k else np.zeros(0, np.int64)
    on, doubt, _ = v._knot_signs(ev, *layout, columns, tol)
    steps = np.diff(closed_pts, axis=0)
    at = v._breakpoint_points(r, closed_pts, steps, bp_rows)
    on_f, doubt_f, _, (start, end) = v._forward_signs(ev, xs, at, columns, tol)
    n = r.num_neurons

    def bits(packed):
        return np.unpackbits(packed, axis=1, count=n, bitorder="little").astype(bool)

    knots_on = bits(on)
    knots_doubt = bits(doubt)
    ends_on = bits(on_f)[np.concatenate([start, end[-1:]])]
    ends_doubt = bits(doubt_f)[np.concatenate([start, end[-1:]])]
    sure = ~knots_doubt & ~ends_doubt
    assert np.array_equal(knots_on[sure], ends_on[sure])


@pytest.mark.parametrize("rtol", [None, 1e-10])
def test_layer_by_layer_on_a_residual_conv_net(rtol):
    # Linear units (the residual branch) ride along and are interpolated with the rest;
    # a moved breakpoint deep in the net is caught either way.
    pytest.importorskip("torch")
    from lrcore import zoo

    net = lrcore.from_torch(zoo.resnet18(width=2, seed=5), (3, 32, 32))
    rng = np.random.default_rng(1)
    x0 = rng.standard_normal(3072)
    path = np.stack([x0, x0 + 0.02 * rng.standard_normal(3072), x0])
    r = lrcore.count_1d(net, path, rtol=rtol)
    assert r.num_breakpoints > 10
    layered, full = _both_ways(r)
    assert layered.ok
    assert full.ok
    assert layered.num_points == full.num_points
    layer_of = r.flip_neurons[r.flip_offsets[:-1], 0]
    # The deepest breakpoint; certified, one in layer 2 at most: the filter's error bound
    # grows through the layers and deep in this net exceeds the values (docs/numerics.md).
    i = int(np.argmax(np.where(layer_of <= (2 if rtol is None else 99), layer_of, -1)))
    assert layer_of[i] >= 2
    bp = r.breakpoints.copy()
    gap = np.diff(np.concatenate([[0.0], bp, [r.length]]))
    bp[i] += 0.2 * min(gap[i], gap[i + 1])
    moved = path_with(r, breakpoints=bp)
    for report in _both_ways(moved):
        assert "breakpoint-zero" in {p.check for p in report.problems}


def test_next_layer_update_matches_the_dense_product(monkeypatch):
    # Knots born in layer l get layer l + 1 from their neighbours' values and a few columns
    # (rtol, rows of 4096 units or more): within the bound added to their zero bound of the
    # dense product at the same input, and corrupted results still fail.
    pytest.importorskip("torch")
    from lrcore import _verify, zoo

    net = lrcore.from_torch(zoo.resnet18(width=4, seed=2), (3, 32, 32))
    rng = np.random.default_rng(2)
    x0 = rng.standard_normal(3072)
    r = lrcore.count_1d(net, np.stack([x0, x0 + 0.01 * rng.standard_normal(3072)]), rtol=1e-10)
    seen = []
    inputs = {}
    apply, norms_and_dots = _verify._NextLayerUpdate.apply, _verify._norms_and_dots

    def record_inputs(h, perm):
        inputs[len(inputs)] = h.copy()  # layer by layer, in order
        return norms_and_dots(h, perm)

    def record(self, ev, layer, z, dense, norm, perm):
        extra = apply(self, ev, layer, z, dense, norm, perm)
        h = np.ascontiguousarray(inputs[layer][self.rows])
        want = net._core.apply_layer(layer, h)[:, : net.hidden_sizes[layer]]
        got = z[self.rows, : net.hidden_sizes[layer]]
        rn = ev.row_norms[layer][: net.hidden_sizes[layer]]
        ab = ev.abs_bias[layer][: net.hidden_sizes[layer]]
        a, b = extra[0][self.rows, None], extra[1][self.rows, None]
        seen.append(np.max(np.abs(got - want) / (a * rn + b * ab)))
        return extra

    monkeypatch.setattr(_verify, "_norms_and_dots", record_inputs)
    monkeypatch.setattr(_verify._NextLayerUpdate, "apply", record)
    assert r.verify().ok
    assert len(seen) >= 3  # the update ran on several layers
    assert max(seen) <= 1.0, seen
    monkeypatch.undo()
    layer_of = r.flip_neurons[r.flip_offsets[:-1], 0]
    caught = 0
    for i in np.flatnonzero(layer_of <= 1)[:8]:
        # Dropped: found. Moved: found where the whole forward pass finds it (a move
        # within the tolerance of a shallow crossing is accepted by both).
        dropped = drop_breakpoint(r, int(i))
        assert not dropped.verify(raise_on_error=False).ok
        bp = r.breakpoints.copy()
        gap = np.diff(np.concatenate([[0.0], bp, [r.length]]))
        bp[i] += 0.2 * min(gap[i], gap[i + 1])
        moved = path_with(r, breakpoints=bp)
        layered = moved.verify(raise_on_error=False)
        full = moved.verify(raise_on_error=False, full_forward=True)
        assert layered.ok == full.ok
        if not layered.ok:
            assert "breakpoint-zero" in {p.check for p in layered.problems}
            caught += 1
    assert caught >= 5


# --- The position slack: operator norms, not |W| (docs/design.md §7) -------------------


def _slack_case(width: int, seed: int, radius: float):
    from lrcore import _verify, zoo

    pytest.importorskip("torch")
    net = lrcore.from_torch(zoo.resnet18(width=width, seed=seed), (3, 32, 32))
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal(3072)
    points = np.stack([x0, x0 + radius * rng.standard_normal(3072)])
    r = lrcore.count_1d(net, points, rtol=1e-10, return_patterns=True)
    u = (points[1] - points[0]) / r.length
    spread = _verify._POSITION_ULPS * (np.abs(points).max(axis=0) + r.length * np.abs(u))
    return net, r, _verify._Evaluator(net, spread), spread


def test_position_slack_bounds_a_moved_point():
    # Rigour, by sampling (a lower bound on the worst case): moving the point by at most
    # `spread` per coordinate moves every pre-activation by at most its slack. On a deep
    # residual conv net and a deep narrow MLP with large weights; and the new slack is
    # never looser than the old |W| one.
    from lrcore import _verify

    rng = np.random.default_rng(1)
    net, r, ev, spread = _slack_case(2, 3, 0.01)
    weights = [rng.standard_normal((6, 4)) * 3] + [rng.standard_normal((6, 6)) * 3] * 8
    mlp = lrcore.Network([*weights, rng.standard_normal((1, 6))], [np.zeros(6)] * 9 + [[0.0]])
    x = rng.standard_normal(4)
    cases = [(net, r.points[0], ev, spread)]
    cases.append((mlp, x, _verify._Evaluator(mlp, 1e-6 * np.abs(x)), 1e-6 * np.abs(x)))
    for network, point, evaluator, sp in cases:
        assert np.all(evaluator.slack <= evaluator.old_slack)
        sizes = network.hidden_sizes
        base = network.pre_activations(point[None, :])
        for _ in range(20):
            moved = point + sp * rng.choice([-1.0, 1.0], size=point.shape)
            z = network.pre_activations(moved[None, :])
            diff = np.concatenate([np.abs(a[0, :n] - b[0, :n]) for a, b, n in zip(z, base, sizes)])
            # the forward passes' own rounding is far below the slack on these nets
            assert np.all(diff <= evaluator.slack * 1.01 + 1e-13), np.max(diff / evaluator.slack)


def test_wrong_bit_deep_in_a_resnet_beyond_the_old_slack_fails():
    # Layer >= 12 of a CIFAR ResNet-18: the old slack (the spread through |W|) exceeds
    # this neuron's values at every piece end, so a bit wrong on the whole path (the
    # pieces still agree with the flip lists) was accepted; the operator-norm slack is
    # far below them and the bit is named.
    net, r, ev, _ = _slack_case(8, 0, 0.005)
    assert r.verify().ok
    assert r.verify(full_forward=True).ok
    bits = np.unpackbits(r.patterns, axis=1, count=net.num_neurons, bitorder="little")
    ends = np.concatenate([[0.0], r.breakpoints, [r.length]])
    u = (r.points[1] - r.points[0]) / r.length
    z = net.pre_activations(r.points[0] + ends[:, None] * u)
    values = np.concatenate([layer[:, :n] for layer, n in zip(z, net.hidden_sizes)], axis=1)
    low = np.abs(values).min(axis=0)
    same = np.all(np.sign(values) == np.sign(values[0]), axis=0)
    layer = next(
        k
        for k in range(len(net.hidden_sizes))
        if np.median(ev.old_slack[ev.offsets[k] : ev.offsets[k + 1]]) > 0.1
    )
    assert layer >= 12
    lo, hi = int(ev.offsets[layer]), int(ev.offsets[layer + 1])
    # neurons the old check could not decide (within the old slack at every end), with a
    # sign far from zero (the new slack here is about 1e-6)
    hidden = same[lo:hi] & (low[lo:hi] < 0.5 * ev.old_slack[lo:hi]) & (low[lo:hi] > 1e-3)
    assert hidden.any()
    column = lo + int(np.flatnonzero(hidden)[np.argmax(low[lo:hi][hidden])])
    flipped = bits.copy()
    flipped[:, column] ^= 1
    patterns = np.packbits(flipped, axis=1, bitorder="little")
    for full in (False, True):
        report = path_with(r, patterns=patterns).verify(full_forward=full, raise_on_error=False)
        named = [p for p in report.problems if p.check == "pattern"]
        assert named, report
        assert all(f"neuron ({layer}, {column - lo})" in p.message for p in named), named
        assert {p.check for p in report.problems} == {"pattern"}, report


@given(
    seed=st.integers(0, 2**32 - 1),
    depth=st.integers(1, 10),
    width=st.integers(1, 8),
    scale=st.floats(0.1, 5.0),
    slope=st.sampled_from([0.0, 0.1, -0.5, 2.0]),
)
@settings(max_examples=40, deadline=None)
def test_position_slack_bounds_moves_on_random_mlps(seed, depth, width, scale, slope):
    # Property: for random deep MLPs (leaky slopes above 1 included) every sampled move of
    # the input within the spread moves each pre-activation by at most its slack, and the
    # slack is never above the old componentwise one.
    from lrcore import _verify

    rng = np.random.default_rng(seed)
    dims = [3] + [width] * depth
    weights = [scale * rng.standard_normal((b, a)) for a, b in zip(dims, dims[1:])]
    weights.append(rng.standard_normal((1, width)))
    biases = [rng.standard_normal(w.shape[0]) for w in weights]
    net = lrcore.Network(weights, biases, activation="leaky_relu", negative_slope=slope)
    x = rng.standard_normal(3)
    spread = 1e-7 * (np.abs(x) + 1.0)
    ev = _verify._Evaluator(net, spread)
    assert np.all(ev.slack <= ev.old_slack)
    base = net.pre_activations(x[None, :])
    moved = x + spread * rng.uniform(-1.0, 1.0, size=(16, 3))
    moved[:8] = x + spread * rng.choice([-1.0, 1.0], size=(8, 3))
    z = net.pre_activations(moved)
    diff = np.concatenate([np.abs(a - b) for a, b in zip(z, base)], axis=1)
    bound = ev.slack * (1.0 + 1e-6) + 1e-12 * (1.0 + np.abs(np.concatenate(base, axis=1)))
    assert np.all(diff <= bound), np.max(diff / ev.slack)
