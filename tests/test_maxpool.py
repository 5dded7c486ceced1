"""Exact max pooling against an independent oracle: torch's own argmax along the path.

The oracle evaluates the torch model (float64) densely along a segment and records its
pattern: every ReLU's sign and every pooling window's argmax, read from
``F.max_pool*d(..., return_indices=True)`` (torch's kernels, not lrcore's tournaments;
``tests/torch_walk.py`` records them, the same code its walk uses).
Between two samples with different patterns it bisects to place the change. Sampling
is a lower bound on the changes; the tests also check that the patterns on either side
of every lrcore breakpoint differ, so neither side can hide a breakpoint.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import lrcore
from lrcore import zoo
from torch_walk import float64_copy, patterns, walk_segment

# Certified slices of max-pooling nets: tournaments between lines through one point (and,
# on deep CNNs, loose bounds) leave values the filter cannot decide; they take the zero
# tolerance's decision and slice_2d warns (docs/numerics.md §6). These tests check the
# results against torch.
pytestmark = pytest.mark.filterwarnings("ignore::lrcore.CertificationWarning")

# --------------------------------------------------------------------------- the oracle


def torch_patterns(model, points):
    """ReLU signs and window argmaxes of the model at points, one int64 row each."""
    signs, argmax = patterns(model, model.lrcore_input_shape, points)
    return np.concatenate([signs.astype(np.int64), argmax], axis=1)


def pool_argmax(model, points):
    """Only the windows' argmaxes (as lrcore numbers entries), (n, windows)."""
    return patterns(model, model.lrcore_input_shape, points)[1]


def oracle_changes(model, a, b, samples=4001):
    """Parameters ``t`` in [0, 1] of the pattern changes along ``a + t (b - a)``."""

    def at(t):
        return torch_patterns(model, a[None, :] + np.asarray(t)[:, None] * (b - a)[None, :])

    ts = np.linspace(0.0, 1.0, samples)
    pats = at(ts)
    changed = np.flatnonzero(np.any(pats[1:] != pats[:-1], axis=1))
    # Every change between two samples whose patterns differ (A -> B -> C too): bisect
    # all gaps at once to their first change, then go on from just after it.
    lo, end = ts[changed], ts[changed + 1]
    start, stop = pats[changed], pats[changed + 1]
    found = []
    while lo.size:
        hi = end.copy()
        for _ in range(42):
            mid = 0.5 * (lo + hi)
            same = np.all(at(mid) == start, axis=1)
            lo = np.where(same, mid, lo)
            hi = np.where(same, hi, mid)
        found.extend(0.5 * (lo + hi))
        after = at(hi)
        more = np.any(after != stop, axis=1)
        lo, end, start, stop = hi[more], end[more], after[more], stop[more]
    return np.sort(np.array(found))


def check_against_oracle(model, a, b, *, samples=4001, exact_count=True):
    net = lrcore.Network.from_torch(model, input_shape=model.lrcore_input_shape)
    path = np.stack([a, b])
    r = lrcore.count_1d(net, path)
    length = float(np.linalg.norm(b - a))
    found = oracle_changes(model, a, b, samples) * length
    # Every change the oracle finds is an lrcore breakpoint.
    if r.num_breakpoints:
        nearest = np.abs(found[:, None] - r.breakpoints[None, :]).min(axis=1)
        assert np.all(nearest <= 1e-9 * max(1.0, length)), (found, r.breakpoints)
    else:
        assert found.size == 0
    if exact_count:
        assert r.num_breakpoints == found.size
    # Every lrcore breakpoint is a change of torch's pattern, and the argmax stored for
    # each piece is torch's at its middle.
    cuts = np.concatenate([[0.0], r.breakpoints, [length]])
    mids = 0.5 * (cuts[:-1] + cuts[1:]) / length
    pats = torch_patterns(model, a[None, :] + mids[:, None] * (b - a)[None, :])
    assert np.all(np.any(pats[1:] != pats[:-1], axis=1))
    argmax = pool_argmax(model, a[None, :] + mids[:, None] * (b - a)[None, :])
    assert np.array_equal(r.pooling.argmax, argmax)
    # The reported changes are torch's argmax changes.
    for j in range(r.num_breakpoints):
        rows = r.pooling.changes[r.pooling.change_offsets[j] : r.pooling.change_offsets[j + 1]]
        windows = np.flatnonzero(argmax[j] != argmax[j + 1])
        expected = np.stack([windows, argmax[j, windows], argmax[j + 1, windows]], axis=1)
        assert np.array_equal(rows, expected)
    assert r.verify().ok, r.verify()
    return net, r


def sequential(input_shape, *layers, seed=0):
    # The layers were built before the seed: draw their weights again after it, so that
    # a test's model does not depend on which tests ran before.
    torch.manual_seed(seed)
    model = nn.Sequential(*layers).double().eval()
    with torch.no_grad():  # biases large enough for ReLUs to turn on and off
        for layer in model:
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
            if getattr(layer, "bias", None) is not None:
                layer.bias.uniform_(-0.3, 0.3)
    model.lrcore_input_shape = tuple(input_shape)
    return model


def check_function(model, net, count=8, seed=1):
    x = np.random.default_rng(seed).normal(size=(count, net.input_dim))
    with torch.no_grad():
        expected = model(torch.as_tensor(x).reshape((count, *model.lrcore_input_shape)))
    got = net.forward(x)
    np.testing.assert_allclose(got, expected.reshape(count, -1).numpy(), rtol=0, atol=1e-10)


def endpoints(dim, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=dim), rng.normal(size=dim)


# --------------------------------------------------------------------------- fixed nets


def lenet_like(seed=0):
    return sequential(
        (1, 12, 12),
        nn.Conv2d(1, 4, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 3),
        seed=seed,
    )


def test_lenet_like_matches_torch_oracle():
    model = lenet_like()
    net = lrcore.Network.from_torch(model, input_shape=(1, 12, 12))
    check_function(model, net)
    a, b = endpoints(144, 0)
    _, r = check_against_oracle(model, 0.4 * a, 0.4 * b, samples=4001)
    assert r.num_breakpoints > 20
    assert np.diff(r.pooling.change_offsets).sum() > 0


@pytest.mark.parametrize(
    ("pool", "shape"),
    [
        (nn.MaxPool2d(3, stride=2), (2, 9, 9)),  # overlapping windows
        (nn.MaxPool2d(3, stride=2, padding=1), (2, 8, 8)),  # padding (-inf)
        (nn.MaxPool2d(2, stride=1, dilation=2), (2, 7, 7)),  # dilation
        (nn.MaxPool2d((2, 3), stride=(2, 1), padding=(1, 1)), (2, 6, 6)),
        (nn.MaxPool2d(2, ceil_mode=True), (2, 7, 7)),
        (nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), (2, 8, 8)),
        (nn.AdaptiveMaxPool2d((2, 3)), (2, 7, 7)),
        (nn.AdaptiveMaxPool2d(1), (2, 5, 5)),
    ],
)
def test_pool_options_match_torch_oracle(pool, shape):
    c, h, w = shape
    probe = torch.zeros(1, c, h, w)
    out = pool(nn.Conv2d(1, c, 3, padding=1)(probe[:, :1]))
    model = sequential(
        (1, h, w),
        nn.Conv2d(1, c, 3, padding=1),
        nn.ReLU(),
        pool,
        nn.Flatten(),
        nn.Linear(out[0].numel(), 2),
    )
    net = lrcore.Network.from_torch(model, input_shape=(1, h, w))
    check_function(model, net)
    a, b = endpoints(h * w, 3)
    check_against_oracle(model, a, b)


def test_pooling_of_the_input_and_maxpool1d():
    model = sequential(
        (2, 9), nn.MaxPool1d(3, stride=2, padding=1), nn.Flatten(), nn.Linear(10, 2)
    )
    net = lrcore.Network.from_torch(model, input_shape=(2, 9))
    check_function(model, net)
    a, b = endpoints(18, 4)
    _, r = check_against_oracle(model, a, b)
    assert r.num_breakpoints > 0
    model = sequential(
        (1, 16),
        nn.Conv1d(1, 3, 3),
        nn.ReLU(),
        nn.MaxPool1d(2, dilation=2),
        nn.Flatten(),
        nn.Linear(18, 2),
    )
    net = lrcore.Network.from_torch(model, input_shape=(1, 16))
    check_function(model, net)
    check_against_oracle(model, *endpoints(16, 5))


def test_loser_flips_are_dropped():
    # One 2x2 window: x3 = 5 wins throughout while x0 and x1 swap order at t = 1/2.
    model = sequential((1, 2, 2), nn.MaxPool2d(2), nn.Flatten())
    net = lrcore.Network.from_torch(model, input_shape=(1, 2, 2))
    path = np.array([[0.0, 1.0, 0.3, 5.0], [1.0, 0.0, 0.3, 5.0]])
    tournament = lrcore.Network(
        net.weights, net.biases, linear_units=net.linear_units
    )  # the same chain without the pooling description: its finer pattern
    raw = lrcore.count_1d(tournament, path)
    assert raw.num_breakpoints == 1
    assert abs(raw.breakpoints[0] - np.sqrt(2) / 2) < 1e-12
    r = lrcore.count_1d(net, path)
    assert r.num_breakpoints == 0
    assert r.num_pieces == 1
    assert r.pooling.argmax.tolist() == [[3]]
    assert r.verify().ok
    # Closed: the loser flips twice, the argmax never changes.
    closed = lrcore.count_1d(net, path, closed=True)
    assert closed.num_breakpoints == 0
    assert closed.num_pieces == 1
    # Where the winner changes the breakpoint stays, naming the window and entries.
    path2 = np.array([[-1.0, 1.0, 0.3, 0.5], [1.5, 0.0, 0.3, 0.5]])
    r2 = lrcore.count_1d(net, path2)
    assert r2.num_breakpoints == 2  # x1 -> x3 at t = 0.5, then x3 -> x0 at t = 0.6
    np.testing.assert_allclose(r2.breakpoints / r2.length, [0.5, 0.6], rtol=1e-12)
    assert r2.pooling.changes.tolist() == [[0, 1, 3], [0, 3, 0]]
    assert r2.verify().ok


def test_loser_flips_in_a_batch_and_distinct_counts():
    model = lenet_like(seed=2)
    net = lrcore.Network.from_torch(model, input_shape=(1, 12, 12))
    a, b = endpoints(144, 7)
    c = np.random.default_rng(8).normal(size=144)
    batch = lrcore.count_1d(net, [np.stack([a, b]), np.stack([a, b, c])], closed=[False, True])
    assert batch.verify().ok
    single = lrcore.count_1d(net, np.stack([a, b, c]), closed=True)
    np.testing.assert_array_equal(batch[1].breakpoints, single.breakpoints)
    np.testing.assert_array_equal(batch[1].pooling.argmax, single.pooling.argmax)
    assert batch[1].num_distinct == single.num_distinct <= single.num_pieces
    # The finer tournament partition has strictly more breakpoints here.
    tournament = lrcore.Network(net.weights, net.biases, linear_units=net.linear_units)
    raw = lrcore.count_1d(tournament, np.stack([a, b]))
    assert raw.num_breakpoints > batch[0].num_breakpoints
    assert set(batch[0].breakpoints.tolist()) <= set(raw.breakpoints.tolist())


def test_functional_forms_lower_like_modules():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.fc = nn.Linear(2 * 2 * 2 + 2 * 2 * 2, 2)

        def forward(self, x):
            h = torch.relu(self.conv(x))
            p = F.max_pool2d(h, 3, stride=2, padding=1)
            q = F.adaptive_max_pool2d(h, (2, 2))
            return self.fc(torch.cat([torch.flatten(p, 1), torch.flatten(q, 1)], 1))

    torch.manual_seed(0)
    model = Functional().double().eval()
    model.lrcore_input_shape = (1, 6, 6)
    net = lrcore.Network.from_torch(model, input_shape=(1, 6, 6))
    check_function(model, net)
    assert net.pooling is not None
    assert net.pooling.num_windows == 2 * 4 + 2 * 4
    a, b = endpoints(36, 1)
    r = lrcore.count_1d(net, np.stack([a, b]))
    assert r.verify().ok

    # torch.max_pool2d (the builtin) too, and return_indices is refused by name.
    class Builtin(nn.Module):
        def forward(self, x):
            return torch.max_pool2d(x, 2)

    assert lrcore.Network.from_torch(Builtin(), input_shape=(1, 4, 4)).pooling.num_windows == 4

    class Indices(nn.Module):
        def forward(self, x):
            return F.max_pool2d(x, 2, return_indices=True)[0]

    with pytest.raises(ValueError, match="return_indices"):
        lrcore.Network.from_torch(Indices(), input_shape=(1, 4, 4))


def test_pooling_inside_a_residual_block_carries_live_values():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)
            self.pool = nn.MaxPool2d(3, stride=1, padding=1)

        def forward(self, x):
            return torch.relu(x + self.pool(torch.relu(self.conv(x)))).flatten(1)

    torch.manual_seed(3)
    model = Block().double().eval()
    model.lrcore_input_shape = (2, 5, 5)
    net = lrcore.Network.from_torch(model, input_shape=(2, 5, 5))
    check_function(model, net)
    r = lrcore.count_1d(net, np.stack(endpoints(50, 2)))
    assert r.verify().ok


def test_verify_catches_a_wrong_argmax():
    model = lenet_like()
    net = lrcore.Network.from_torch(model, input_shape=(1, 12, 12))
    a, b = endpoints(144, 0)
    r = lrcore.count_1d(net, np.stack([a, b]))
    # Drop one breakpoint where an argmax changes: the merged piece is then wrong.
    j = int(np.flatnonzero(np.diff(r.pooling.change_offsets))[0])
    keep = np.delete(np.arange(r.num_breakpoints), j)
    flips = [r.flip_neurons[r.flip_offsets[i] : r.flip_offsets[i + 1]] for i in keep]
    bad = lrcore.PathResult(
        r.points,
        r.closed,
        r.length,
        r.breakpoints[keep],
        r.segment[keep],
        np.concatenate([[0], np.cumsum([len(f) for f in flips])]),
        np.concatenate(flips),
        r.num_pieces - 1,
        r.num_distinct,
        np.delete(r.patterns, j + 1, axis=0),
        r.num_neurons,
        network=net,
        pooling=None,
    )
    report = bad.verify(raise_on_error=False)
    assert not report.ok
    assert {p.check for p in report.problems} & {"argmax", "pattern", "pooling"}
    # Paths through max pooling keep the whole forward pass (design.md §7): the same
    # report either way.
    assert bad.verify(full_forward=True) == report
    assert r.verify(full_forward=True) == r.verify()


def torch_relu_bits(model, points):
    """ReLU signs (n, units) and window argmaxes (n, windows) of the model."""
    return patterns(model, model.lrcore_input_shape, points)


def check_slice_against_oracle(model, origin, basis, bounds, grid=60):
    """Faces against torch's ReLU signs and argmaxes, at centroids and on a grid."""
    net = lrcore.Network.from_torch(model, input_shape=model.lrcore_input_shape)
    s = lrcore.slice_2d(net, origin, basis, bounds)
    assert s.verify().ok, s.verify()
    bits = s.pattern_bools()
    is_match = np.zeros(net.num_neurons, dtype=bool)
    is_match[net.pooling.columns(net.neuron_offsets())] = True
    relu_of_face = bits[:, ~is_match]
    # At each face's centroid torch gives the face's ReLU signs and argmaxes.
    relu, argmax = torch_relu_bits(model, s.to_input(s.centroids))
    np.testing.assert_array_equal(relu, relu_of_face)
    np.testing.assert_array_equal(argmax, s.pooling.argmax)
    # Faces beside an edge have different torch patterns (no edge is spurious).
    pairs = s.adjacency
    differ = np.any(relu[pairs[:, 0]] != relu[pairs[:, 1]], axis=1) | np.any(
        argmax[pairs[:, 0]] != argmax[pairs[:, 1]], axis=1
    )
    assert np.all(differ)
    # Every pattern torch shows on a grid is a face's (sampling is a lower bound).
    s_grid, t_grid = np.meshgrid(
        np.linspace(bounds[0], bounds[1], grid), np.linspace(bounds[2], bounds[3], grid)
    )
    st = np.stack([s_grid.ravel(), t_grid.ravel()], axis=1)
    g_relu, g_argmax = torch_relu_bits(model, s.to_input(st))
    faces = {tuple(np.concatenate([r, m])) for r, m in zip(relu, argmax)}
    seen = {tuple(np.concatenate([r, m])) for r, m in zip(g_relu, g_argmax)}
    assert seen <= faces
    return net, s, seen


def test_slice_merges_loser_faces_to_one_region():
    # One 2x2 window of the input: x2 = t + 3 wins on the whole square while x0 = s and
    # x1 = -s swap order along s = 0 (a loser match).
    model = sequential((1, 2, 2), nn.MaxPool2d(2), nn.Flatten())
    net = lrcore.Network.from_torch(model, input_shape=(1, 2, 2))
    origin = np.array([0.0, 0.0, 3.0, 0.0])
    basis = np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    tournament = lrcore.Network(net.weights, net.biases, linear_units=net.linear_units)
    assert lrcore.slice_2d(tournament, origin, basis).num_regions == 2
    s = lrcore.slice_2d(net, origin, basis)
    assert s.num_regions == 1
    assert s.num_vertices == 4
    assert s.num_edges == 4
    assert s.pooling.argmax.tolist() == [[2]]
    assert s.verify().ok
    # max(s, -s, t, 0): argmax x0, x1 or x2 in three cones from the origin, split by
    # t = s, t = -s and s = 0; every interior edge changes window 0's argmax.
    s = lrcore.slice_2d(net, np.zeros(4), basis)
    assert s.verify().ok
    assert s.num_regions == 3
    assert sorted(s.pooling.argmax[:, 0].tolist()) == [0, 1, 2]
    changed = np.flatnonzero(np.diff(s.pooling.change_offsets))
    assert changed.size == 3
    assert s.pooling.changes[:, 0].tolist() == [0, 0, 0]


def test_slice_verify_catches_a_wrong_argmax_and_unmerged_faces():
    model = lenet_like()
    net = lrcore.Network.from_torch(model, input_shape=(1, 12, 12))
    rng = np.random.default_rng(0)
    origin, u, v = rng.normal(size=(3, 144))
    s = lrcore.slice_2d(net, origin, np.stack([u, v]), (-0.1, 0.1, -0.1, 0.1))
    assert s.verify().ok
    # A face given its neighbour's pattern across an edge where an argmax changes.
    pairs = s.adjacency
    changes = np.any(s.pooling.argmax[pairs[:, 0]] != s.pooling.argmax[pairs[:, 1]], axis=1)
    face, other = (int(i) for i in pairs[np.flatnonzero(changes)[0]])
    patterns = s.patterns.copy()
    patterns[face] = s.patterns[other]
    bad = lrcore.slice2d.SliceResult(
        {
            "vertices": s.vertices,
            "outputs": s.vertex_outputs,
            "face_offsets": s.face_offsets,
            "face_vertices": s.face_vertices,
            "edges": s.edges,
            "edge_neurons": s.edge_neurons,
            "patterns": patterns,
            "tiles": 1,
            "merged_crossings": 0,
        },
        s.plane,
        s.domain,
        s.num_neurons,
        network=net,
        pooling=s.pooling,
    )
    checks = {p.check for p in bad.verify(raise_on_error=False).problems}
    assert "argmax" in checks
    assert "pooling-argmax" in checks


def test_lenet_like_slice_matches_torch_oracle():
    model = lenet_like()
    rng = np.random.default_rng(0)
    origin, u, v = rng.normal(size=(3, 144))
    net, s, _ = check_slice_against_oracle(model, origin, np.stack([u, v]), (-0.1, 0.1, -0.1, 0.1))
    tournament = lrcore.Network(net.weights, net.biases, linear_units=net.linear_units)
    raw = lrcore.slice_2d(tournament, origin, np.stack([u, v]), (-0.1, 0.1, -0.1, 0.1))
    assert raw.num_regions > s.num_regions > 50
    tiled = lrcore.slice_2d(net, origin, np.stack([u, v]), (-0.1, 0.1, -0.1, 0.1), tiles=3)
    assert tiled.num_regions == s.num_regions
    assert tiled.verify().ok


@pytest.mark.parametrize(
    "pool",
    [nn.MaxPool2d(3, stride=2, padding=1), nn.MaxPool2d(2, stride=1, dilation=2)],
)
def test_overlapping_windows_slice_matches_torch_oracle(pool):
    model = sequential((1, 6, 6), nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), pool, nn.Flatten())
    rng = np.random.default_rng(1)
    origin, u, v = rng.normal(size=(3, 36))
    check_slice_against_oracle(model, origin, np.stack([u, v]), (-0.5, 0.5, -0.5, 0.5))


# --------------------------------------------------------------------------- zoo vs the walk

#: Walk step (fractions of the segment) and the distance under which two breakpoints
#: count as near-coincident: the only place where the two may legitimately differ.
WALK_STEP = 1e-9
POSITION_ATOL = 1e-9


def lrcore_changes(net, r):
    """Per breakpoint of ``r``: ReLU neurons flipping (walk numbering), argmax rows."""
    is_match = np.zeros(net.num_neurons, dtype=bool)
    if net.pooling is not None:
        is_match[net.pooling.columns(net.neuron_offsets())] = True
    relu_rank = np.cumsum(~is_match) - 1
    offsets = net.neuron_offsets()
    neurons, rows = [], []
    for j in range(r.num_breakpoints):
        layer_unit = r.flip_neurons[r.flip_offsets[j] : r.flip_offsets[j + 1]]
        flips = offsets[layer_unit[:, 0]] + layer_unit[:, 1]
        neurons.append(np.sort(relu_rank[flips[~is_match[flips]]]))
        if r.pooling is None:
            rows.append(np.zeros((0, 3), dtype=np.int64))
        else:
            rows.append(
                r.pooling.changes[r.pooling.change_offsets[j] : r.pooling.change_offsets[j + 1]]
            )
    return neurons, rows


def _net_change(neurons, rows):
    """What a run of consecutive breakpoints changes in all: flipped-twice cancels."""
    flipped: set[int] = set()
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for n, r in zip(neurons, rows):
        flipped ^= {int(v) for v in n}
        for window, old, new in r.tolist():
            first.setdefault(window, old)
            last[window] = new
    moved = {w: (first[w], last[w]) for w in first if first[w] != last[w]}
    return flipped, moved


def reconcile(net, r, walk, step=WALK_STEP, atol=POSITION_ATOL):
    """Match lrcore's breakpoints with the walk's; name the rule for every difference.

    Both lists are cut into clusters where consecutive positions (fractions of the
    segment, both lists together) are within ``max(step, atol)``. A cluster with one
    breakpoint on each side must agree exactly (neurons and argmax rows). A cluster with
    different counts is allowed only by one of two named rules, and only when both sides
    change the same things in all (sign flips and first-to-last argmax moves):

    - ``"walk step"``: lrcore has more breakpoints, all within the walk's step past a
      crossing, which merges them into the walk's one;
    - ``"lrcore tolerance"``: the walk has more, closer than lrcore's zero tolerance
      (``rtol`` relative to the segment), which lrcore merges into one breakpoint.

    Returns the list of ``(rule, position)`` of the explained clusters; anything else
    fails with the cluster's data.
    """
    ours = r.breakpoints / r.length
    our_neurons, our_rows = lrcore_changes(net, r)
    events = sorted(
        [(p, 0, i) for i, p in enumerate(ours)] + [(p, 1, i) for i, p in enumerate(walk.positions)]
    )
    clusters: list[list[tuple[float, int, int]]] = []
    for event in events:
        if clusters and event[0] - clusters[-1][-1][0] <= max(step, atol):
            clusters[-1].append(event)
        else:
            clusters.append([event])
    explained = []
    for cluster in clusters:
        mine = [i for _, side, i in cluster if side == 0]
        theirs = [i for _, side, i in cluster if side == 1]
        where = cluster[0][0]
        if len(mine) == len(theirs) == 1:
            i, k = mine[0], theirs[0]
            assert abs(ours[i] - walk.positions[k]) <= atol, (where, ours[i], walk.positions[k])
            assert np.array_equal(our_neurons[i], np.sort(walk.neurons[k])), (
                where,
                our_neurons[i],
                walk.neurons[k],
            )
            assert np.array_equal(our_rows[i], walk.changes[k]), (
                where,
                our_rows[i],
                walk.changes[k],
            )
            continue
        same = _net_change(
            [our_neurons[i] for i in mine], [our_rows[i] for i in mine]
        ) == _net_change([walk.neurons[k] for k in theirs], [walk.changes[k] for k in theirs])
        span = cluster[-1][0] - cluster[0][0]
        if same and len(mine) > len(theirs) == 1 and span <= step:
            explained.append(("walk step", where))
        elif (
            same
            and len(theirs) > len(mine) == 1
            and r.rtol is not None
            and span <= max(atol, r.rtol)
        ):
            explained.append(("lrcore tolerance", where))
        else:
            raise AssertionError(
                f"unexplained difference at t={where:.12g}: lrcore {[ours[i] for i in mine]} "
                f"{[(our_neurons[i], our_rows[i]) for i in mine]}, walk "
                f"{[walk.positions[k] for k in theirs]} "
                f"{[(walk.neurons[k], walk.changes[k]) for k in theirs]}"
            )
    return explained


def check_zoo_against_walk(model, shape, a, b, rtol):
    net = lrcore.Network.from_torch(model, input_shape=shape)
    r = lrcore.count_1d(net, np.stack([a, b]), rtol=rtol)
    walk = walk_segment(float64_copy(model), shape, a, b, step_past=WALK_STEP)
    explained = reconcile(net, r, walk)
    assert explained == [], explained  # these fixed segments have no near-coincidences
    assert r.verify().ok
    return r, walk


def test_reconcile_names_the_rules_and_fails_otherwise():
    # The comparison itself can fail: a dropped breakpoint, a wrong window, a
    # near-coincidence of the walk's step (explained), and one too far apart (not).
    model = lenet_like()
    a, b = endpoints(144, 0)
    net = lrcore.Network.from_torch(model, input_shape=(1, 12, 12))
    r = lrcore.count_1d(net, np.stack([0.4 * a, 0.4 * b]), rtol=1e-10)
    walk = walk_segment(float64_copy(model), (1, 12, 12), 0.4 * a, 0.4 * b)
    assert reconcile(net, r, walk) == []
    j = int(np.flatnonzero(np.diff(r.pooling.change_offsets))[0])
    dropped = walk._replace(
        positions=np.delete(walk.positions, j),
        neurons=walk.neurons[:j] + walk.neurons[j + 1 :],
        changes=walk.changes[:j] + walk.changes[j + 1 :],
    )
    with pytest.raises(AssertionError):
        reconcile(net, r, dropped)
    wrong = [c.copy() for c in walk.changes]
    wrong[j][0, 2] += 1
    with pytest.raises(AssertionError):
        reconcile(net, r, walk._replace(changes=wrong))
    # Merge the two closest breakpoints on the walk's side: explained when they are
    # within the step, not otherwise.
    j = int(np.argmin(np.diff(walk.positions)))
    gap = walk.positions[j + 1] - walk.positions[j]
    neurons = [np.sort(np.concatenate([walk.neurons[j], walk.neurons[j + 1]]))]
    rows = np.concatenate([walk.changes[j], walk.changes[j + 1]])
    merged = walk._replace(
        positions=np.delete(walk.positions, j + 1),
        neurons=walk.neurons[:j] + neurons + walk.neurons[j + 2 :],
        changes=[*walk.changes[:j], rows, *walk.changes[j + 2 :]],
    )
    assert reconcile(net, r, merged, step=1.01 * gap) == [("walk step", walk.positions[j])]
    with pytest.raises(AssertionError):
        reconcile(net, r, merged, step=0.5 * gap)


def test_zoo_lenet5_matches_the_torch_walk():
    model = zoo.lenet5(seed=1)
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 1, 784), rng.uniform(0, 1, 784)
    r, walk = check_zoo_against_walk(model, (1, 28, 28), a, a + 0.05 * (b - a), rtol=1e-10)
    assert r.num_breakpoints > 30
    assert sum(len(c) for c in walk.changes) > 10  # argmax changes, not only ReLUs


@pytest.mark.parametrize("width", [1, 2])
def test_zoo_vgg11_matches_the_torch_walk(width):
    model = zoo.vgg11(width=width, seed=width)
    rng = np.random.default_rng(width)
    a, b = rng.standard_normal(3072), rng.standard_normal(3072)
    r, walk = check_zoo_against_walk(model, (3, 32, 32), a, a + 0.05 * (b - a), rtol=1e-10)
    assert r.num_breakpoints > 30
    assert sum(len(c) for c in walk.changes) > 10


@pytest.mark.parametrize(("width", "box"), [(1, 0.02), (2, 0.01)])
def test_zoo_vgg11_slice_through_three_images(width, box):
    # The plane through three random images (at (0, 0), (1, 0), (0, 1)), a corner box.
    model = float64_copy(zoo.vgg11(width=width, seed=width))
    model.lrcore_input_shape = (3, 32, 32)
    x0, x1, x2 = np.random.default_rng(width).standard_normal((3, 3072))
    plane = lrcore.slice2d.Plane.through(x0, x1, x2)
    _, s, seen = check_slice_against_oracle(
        model, plane.origin, plane.basis, (0.0, box, 0.0, box), grid=40
    )
    # Dense sampling is a lower bound on the distinct (ReLU signs, argmax) cells.
    assert 20 < len(seen) <= s.num_regions


# --------------------------------------------------------------------------- random nets


@st.composite
def conv_pool_nets(draw):
    seed = draw(st.integers(0, 2**16))
    channels = draw(st.integers(1, 3))
    size = draw(st.integers(5, 9))
    kernel = draw(st.integers(1, 3))
    stride = draw(st.integers(1, 3))
    dilation = draw(st.integers(1, 2))
    padding = draw(st.integers(0, kernel // 2))
    ceil_mode = draw(st.booleans())
    conv_first = draw(st.booleans())
    layers = []
    h = size
    if conv_first:
        layers += [nn.Conv2d(1, channels, 2), nn.ReLU()]
        h = size - 1
        c = channels
    else:
        c = 1
    if dilation * (kernel - 1) + 1 > h + 2 * padding:
        dilation = 1
    pool = nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    out = pool(torch.zeros(1, c, h, h))
    layers += [pool, nn.Flatten(), nn.Linear(out.numel(), 2)]
    return sequential((1, size, size), *layers, seed=seed), seed


@settings(max_examples=25, deadline=None, derandomize=True)
@given(conv_pool_nets())
def test_random_conv_pool_nets_match_torch_oracle(drawn):
    model, seed = drawn
    net = lrcore.Network.from_torch(model, input_shape=model.lrcore_input_shape)
    check_function(model, net, seed=seed)
    a, b = endpoints(net.input_dim, seed)
    # Sampling is a lower bound: near-coincident changes may share a sample gap.
    check_against_oracle(model, a, b, samples=2001, exact_count=False)


@pytest.mark.slow
# The tournaments' exact ties (ReLU outputs that are both 0) are about 103,000 exact
# coincidences on this stretch, decided by structure (docs/numerics.md §4) without the
# slow path: within the default budget, every sign is certified.
@pytest.mark.filterwarnings("error::lrcore.CertificationWarning")
def test_lenet5_on_28x28_matches_torch_oracle():
    model = sequential(
        (1, 28, 28),
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )
    net = lrcore.Network.from_torch(model, input_shape=(1, 28, 28))
    assert net.pooling.num_windows == 6 * 14 * 14 + 16 * 5 * 5
    check_function(model, net)
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 1, 784), rng.uniform(0, 1, 784)
    # A short stretch of the segment between two random images: ~100 breakpoints.
    _, r = check_against_oracle(model, a, a + 0.05 * (b - a), samples=2001)
    assert r.num_breakpoints > 50
    assert r.uncertified_decisions == 0
    assert r.exact_coincidences > 10 * r.slow_decisions


@settings(max_examples=15, deadline=None, derandomize=True)
@given(conv_pool_nets())
def test_random_conv_pool_slices_match_torch_oracle(drawn):
    model, seed = drawn
    dim = int(np.prod(model.lrcore_input_shape))
    rng = np.random.default_rng(seed)
    origin, u, v = rng.normal(size=(3, dim))
    check_slice_against_oracle(model, origin, np.stack([u, v]), (-0.4, 0.4, -0.4, 0.4), grid=40)


def test_verify_leaves_the_network_as_it_was():
    # verify() bounds ||W||_2 of each layer from |W|: scipy's abs() would sort a CSR
    # part's indices in place (here a tournament layer's), reordering the core's sums, so
    # a later count on the same layers moved its breakpoints in the last bits.
    model = lenet_like(seed=2)
    net = lrcore.Network.from_torch(model, input_shape=(1, 12, 12))
    a, b = endpoints(144, 7)

    def raw():
        tournament = lrcore.Network(net.weights, net.biases, linear_units=net.linear_units)
        return lrcore.count_1d(tournament, np.stack([a, b])).breakpoints.copy()

    before = raw()
    assert lrcore.count_1d(net, np.stack([a, b]), return_patterns=True).verify().ok
    np.testing.assert_array_equal(raw(), before)
