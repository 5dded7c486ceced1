"""The update of new vertices' values from their interval's ends (docs/design.md).

A vertex a layer's crossings add gets the next layer's values from those at its
interval's two ends and the crossing neurons' columns, not from the dense product. The
core chooses it where it is cheaper (``UPDATE_NEW_VERTICES = 1``); 0 never takes it, 2
takes it wherever it can. Counts, flips and patterns must not depend on the choice, nor
on the number of threads, and the certified results must equal exact arithmetic with the
update everywhere (its bound, docs/numerics.md §3, is what decides the signs there).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrcore
import test_certified as certified
from exact_oracle import disagreements, exact_breakpoints
from lrcore import _corecalls
from lrcore._corecalls import core_count_1d

MODES = (0, 1, 2)  # never, where cheaper, always


def flat(net, paths, mode, rtol=None, threads=1, closed=None):
    """The core's flat batch with update mode ``mode``."""
    return core_count_1d(
        net=net,
        paths=[np.ascontiguousarray(p, dtype=np.float64) for p in paths],
        closed=[False] * len(paths) if closed is None else closed,
        rtol=rtol,
        want_patterns=True,
        num_threads=threads,
        max_pieces=10**7,
        max_memory=0.0,
        max_slow_decisions=-1,
        max_slow_work=-1.0,
        update_new_vertices=mode,
    )


def assert_same(a, b, length_scale: float) -> None:
    """Same pieces, flips, patterns and decisions; positions equal up to rounding."""
    for key in ("num_pieces", "flip_offsets", "flip_neurons", "patterns", "segment"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for key in ("uncertified_decisions", "unresolved_crossings"):
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    np.testing.assert_allclose(
        a["breakpoints"], b["breakpoints"], rtol=0, atol=1e-9 * length_scale
    )


@st.composite
def mlp_cases(draw):
    """A random MLP (ReLU or LeakyReLU, slopes inside and outside [0, 1]) and polylines."""
    d = draw(st.integers(1, 6))
    hidden = draw(st.lists(st.integers(2, 24), min_size=1, max_size=4))
    seed = draw(st.integers(0, 2**31 - 1))
    slope = draw(st.sampled_from([None, 0.01, 0.5, -0.5, 2.0]))
    if slope is None:
        net = lrcore.Network.random([d, *hidden, 1], seed=seed)
    else:
        net = lrcore.Network.random(
            [d, *hidden, 1], seed=seed, activation="leaky_relu", negative_slope=slope
        )
    rng = np.random.default_rng(seed)
    paths = [
        rng.normal(size=(draw(st.integers(2, 4)), d)) * draw(st.sampled_from([1.0, 5.0, 30.0]))
        for _ in range(draw(st.integers(1, 3)))
    ]
    return net, paths


@settings(max_examples=60, deadline=None)
@given(case=mlp_cases(), rtol=st.sampled_from([None, 1e-10]))
def test_counts_do_not_depend_on_the_update(case, rtol):
    net, paths = case
    scale = max(float(np.abs(p).max()) for p in paths) * 10
    results = [flat(net, paths, mode, rtol) for mode in MODES]
    for r in results[1:]:
        assert_same(results[0], r, scale)
    if rtol is None:
        assert int(np.sum(results[2]["uncertified_decisions"])) == 0


@settings(max_examples=15, deadline=None)
@given(case=mlp_cases())
def test_threads_do_not_change_the_updated_result(case):
    net, paths = case
    paths = paths * 20  # enough segments for several tasks
    one = flat(net, paths, 2, threads=1)
    two = flat(net, paths, 2, threads=2)
    for key in one:
        np.testing.assert_array_equal(one[key], two[key], err_msg=key)


@pytest.fixture
def always_update(monkeypatch):
    """lrcore.count_1d with the update wherever the core can take it."""
    monkeypatch.setattr(_corecalls, "UPDATE_NEW_VERTICES", 2)


@settings(max_examples=80, deadline=None)
@given(case=certified.integer_nets(max_layers=5), closed=st.booleans())
def test_updated_integer_networks_match_exact_arithmetic(case, closed):
    # Exact zeros and coincidences at many vertices: the updated values' bound decides
    # signs next to zero, and the slow path takes the rest.
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_corecalls, "UPDATE_NEW_VERTICES", 2)
        net, path = case
        certified.check_exact(net, path, closed and len(path) > 2)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), length=st.sampled_from([1e-9, 1.0, 1e5]))
def test_updated_random_networks_match_exact_arithmetic(seed, length):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_corecalls, "UPDATE_NEW_VERTICES", 2)
        net = lrcore.Network.random([2, 6, 6, 6, 1], seed=seed)
        rng = np.random.default_rng(seed)
        x0 = rng.normal(size=2)
        r = certified.check_exact(net, np.array([x0, x0 + length * rng.normal(size=2)]))
        assert r.uncertified_decisions == 0


def test_deep_cancelling_net_with_the_update(always_update):
    # A large carried value that cancels layer after layer (test_certified): the
    # certified count is exact where the old tolerance merges breakpoints.
    net, path = certified.deep_cancelling_net(24, [1e-6, 3e-7, 2e-5, 1e-8], seed=0)
    r = lrcore.count_1d(net, path)
    assert disagreements(r, exact_breakpoints(net, path)) == []


def test_conv_and_linear_units_with_the_update(always_update):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3),
        torch.nn.ReLU(),
        torch.nn.Conv2d(3, 4, 3, padding=1, stride=2),
        torch.nn.LeakyReLU(0.1),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 3),
        torch.nn.ReLU(),
        torch.nn.Linear(3, 1),
    ).double()
    net = lrcore.Network.from_torch(model, input_shape=(1, 5, 5))
    rng = np.random.default_rng(3)
    x0 = rng.normal(size=25)
    r = certified.check_exact(net, np.stack([x0, x0 + 3.0 * rng.normal(size=25)]))
    assert r.num_breakpoints > 5


def test_residual_linear_units_with_the_update():
    # Linear units (a residual block's carried values) are affine on every interval:
    # no correction there.
    k, d = 6, 3
    rng = np.random.default_rng(0)
    w0, w1, w2, wo = (rng.normal(size=s) for s in [(k, d), (k, k), (k, k), (1, k)])
    b0, b1, b2, bo = (rng.normal(size=s) for s in [k, k, k, 1])
    eye = np.eye(k)
    net = lrcore.Network(
        [w0, np.vstack([w1, eye]), np.hstack([w2, eye]), wo],
        [b0, np.concatenate([b1, np.zeros(k)]), b2, bo],
        linear_units=[0, k, 0],
    )
    paths = [rng.normal(size=(4, d)) * 4 for _ in range(5)]
    results = [flat(net, paths, mode) for mode in MODES]
    for r in results[1:]:
        assert_same(results[0], r, 100.0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_corecalls, "UPDATE_NEW_VERTICES", 2)
        for path in paths[:2]:
            certified.check_exact(net, path)


def test_the_update_is_taken_on_a_wide_mlp():
    # On bench_1d's kind of network the cost model takes the update: positions then
    # differ from the dense product's in the last bits somewhere (and only there).
    net = lrcore.Network.random([64, 128, 128, 128, 1], seed=0)
    rng = np.random.default_rng(0)
    paths = [rng.normal(size=(2, 64)) * 3 for _ in range(8)]
    dense, auto = flat(net, paths, 0), flat(net, paths, 1)
    assert_same(dense, auto, 100.0)
    assert not np.array_equal(dense["breakpoints"], auto["breakpoints"])
    assert int(np.sum(auto["slow_decisions"])) == int(np.sum(dense["slow_decisions"])) == 0


@settings(max_examples=60, deadline=None)
@given(
    a=st.sampled_from([1.0, 2.0, 4.0, -1.0, -2.0]),
    root=st.sampled_from([0.0, 0.5, -0.75, 1.25]),
    left=st.sampled_from([1.0, 0.5, 3.0, 0.3, 1.7]),
    right=st.sampled_from([2.0, 1.0, 5.0, 0.7, 2.9]),
    p=st.sampled_from([1.0, -1.0, 3.0, 0.5]),
    q=st.sampled_from([0.0, 1.0, -2.0, 3.0]),
    r=st.sampled_from([0.0, 1.0, -1.0]),
)
def test_concurrent_neuron_at_an_updated_vertex(a, root, left, right, p, q, r):
    # Neuron (1, 0) is exactly zero where (0, 0) crosses, at a fraction float64 cannot
    # hold: its updated value there is a rounding error away from 0, and only the
    # update's bound (docs/numerics.md §3) keeps the filter from taking its sign.
    w0 = np.array([[a], [1.0], [3.0]])
    b0 = np.array([-a * root, 8.0, -1.0])
    n2 = max(3.0 * root - 1.0, 0.0)
    w1 = np.array([[q, p, r], [1.0, -1.0, 2.0]])
    b1 = np.array([-(p * (root + 8.0) + r * n2), 0.5])
    net = lrcore.Network([w0, w1, np.ones((1, 2))], [b0, b1, np.zeros(1)])
    path = np.array([[root - left], [root + right]])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_corecalls, "UPDATE_NEW_VERTICES", 2)
        certified.check_exact(net, path)
