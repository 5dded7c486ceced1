"""Certified sign decisions (docs/numerics.md) against exact rational arithmetic.

Adversarial cases with exact answers from ``exact_oracle`` (fractions.Fraction on the
float64 weights and points): hyperplanes at tiny angles, crossings 1e-14 apart,
concurrent and tangent neurons, huge and tiny scales, integer-weight networks full of
exact coincidences (hypothesis), and a deep narrow network where the old zero tolerance
merges crossings that the certified decisions separate.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrcore
from exact_oracle import disagreements, exact_breakpoints


def check_exact(net: lrcore.Network, path: np.ndarray, closed: bool = False) -> lrcore.PathResult:
    """count_1d's certified result, checked against the exact breakpoints."""
    r = lrcore.count_1d(net, path, closed)
    assert r.rtol is None
    exact = exact_breakpoints(net, path, closed)
    assert disagreements(r, exact) == []
    r.verify(raise_on_error=True)
    return r


def two_lines(angle: float) -> lrcore.Network:
    """Neurons x0 and cos(a) x0 + sin(a) x1: lines at angle ``angle`` through 0."""
    w = np.array([[1.0, 0.0], [np.cos(angle), np.sin(angle)]])
    return lrcore.Network([w, np.ones((1, 2))], [np.zeros(2), np.zeros(1)])


@pytest.mark.parametrize("angle", [1e-4, 1e-8, 1e-10, 1e-12, 1e-13, 1e-14, 1e-15])
def test_hyperplanes_at_tiny_angles(angle):
    # Along x1 = 10 the two crossings are 10 tan(a) apart: float64 tells them apart.
    path = np.array([[-2.0, 10.0], [2.0, 10.0]])
    r = check_exact(two_lines(angle), path)
    assert r.num_breakpoints == 2
    assert r.exact_coincidences == r.unresolved_crossings == 0
    old = lrcore.count_1d(two_lines(angle), path, rtol=lrcore.DEFAULT_RTOL)
    assert old.num_breakpoints in ({2} if angle > 1e-10 else {1, 2} if angle == 1e-10 else {1})


def test_crossings_closer_than_float64_positions_are_reported():
    # 1e-16 apart on a path of length 4: one float64 position, two exact crossings.
    path = np.array([[-2.0, 1.0], [2.0, 1.0]])
    r = lrcore.count_1d(two_lines(1e-16), path)
    assert len(exact_breakpoints(two_lines(1e-16), path)) == 2
    assert (r.num_breakpoints, r.unresolved_crossings) == (1, 1)
    assert len(r.flip_neurons) == 2


@pytest.mark.parametrize("gap", [1e-14, 3e-14, 1e-13])
@pytest.mark.parametrize("where", [0.0, 0.3, -0.7])
def test_crossings_1e14_apart(gap, where):
    # Neurons x - c and x - (c + gap) (float64 values), one layer deeper too.
    c = np.array([where, where + gap])
    w1 = np.array([[1.0], [1.0]])
    w2 = np.array([[1.0, -1.0], [-1.0, 1.0]])
    net = lrcore.Network([w1, w2, np.ones((1, 2))], [-c, np.array([0.0, 1e-15]), np.zeros(1)])
    r = check_exact(net, np.array([[-1.0], [1.0]]))
    assert r.num_breakpoints >= 2


def test_concurrent_neurons_at_a_point_float64_cannot_hold():
    # 3 x0 - 1, 3 x1 - 1 and 3 x0 + 3 x1 - 2 all vanish at (1/3, 1/3), on the path x0 = x1.
    w = np.array([[3.0, 0.0], [0.0, 3.0], [3.0, 3.0]])
    net = lrcore.Network([w, np.ones((1, 3))], [np.array([-1.0, -1.0, -2.0]), np.zeros(1)])
    r = check_exact(net, np.array([[0.0, 0.0], [1.0, 1.0]]))
    assert r.num_breakpoints == 1
    assert sorted(map(tuple, r.flip_neurons.tolist())) == [(0, 0), (0, 1), (0, 2)]
    assert r.exact_coincidences == 2


def test_concurrent_across_layers_and_tangent_neurons():
    # Layer 1: h0 (crosses where x0 does: concurrent), -h0 (touches zero on a whole
    # interval, never positive: no breakpoint) and h0 - h1 (crosses between them).
    w1 = np.array([[3.0, 0.0], [0.0, 1.0]])
    w2 = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, -1.0]])
    net = lrcore.Network(
        [w1, w2, np.ones((1, 3))], [np.array([-1.0, -0.25]), np.zeros(3), np.zeros(1)]
    )
    for path in (
        np.array([[0.0, 0.0], [1.0, 1.0]]),
        np.array([[-1.0, 0.3], [1.0, -0.2], [0.5, 2.0]]),
    ):
        check_exact(net, path)


def test_path_bending_on_a_hyperplane_is_no_breakpoint():
    net = lrcore.Network([np.array([[0.0, 1.0]]), np.ones((1, 1))], [np.zeros(1), np.zeros(1)])
    path = np.array([[-1.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    r = check_exact(net, path)
    assert r.num_breakpoints == 0
    # Just below the hyperplane at the bend: two crossings 1e-14 on either side of it.
    bent = np.array([[-1.0, 1.0], [0.0, -1e-14], [1.0, 1.0]])
    assert check_exact(net, bent).num_breakpoints == 2


@pytest.mark.parametrize("scale", [1e-120, 1e-60, 1.0, 1e60, 1e120])
def test_huge_and_tiny_scales(scale):
    # Integer weights with exact coincidences, scaled: the count never changes.
    net = lrcore.Network.random([2, 5, 5, 1], seed=3)
    ws = [np.round(w * 2) for w in net._weights]
    bs = [np.round(b * 2) for b in net._biases]
    path = np.array([[-2.0, 1.0], [2.0, -1.0], [1.0, 2.0]])
    base = check_exact(lrcore.Network(ws, bs), path)
    # The first layer scaled, the later biases not: near the concurrent crossings the
    # later layers' values are sums of 1e120-sized terms that cancel down to the biases
    # (beyond double-double's reach: the exact tier decides).
    check_exact(lrcore.Network([ws[0] * scale, *ws[1:]], [bs[0] * scale, *bs[1:]]), path)
    # The inputs and every bias scaled (down to 1e-60).
    tiny = max(scale, 1e-60) if scale < 1 else 1.0 / min(scale, 1e60)
    r = check_exact(lrcore.Network(ws, [b * tiny for b in bs]), path * tiny)
    assert r.num_breakpoints == base.num_breakpoints


@st.composite
def integer_nets(draw, max_layers=3):
    """Small networks with small integer weights: hyperplanes meet and coincide exactly."""
    d = draw(st.integers(1, 3))
    widths = [d, *draw(st.lists(st.integers(1, 4), min_size=1, max_size=max_layers)), 1]
    ints = st.integers(-2, 2)
    ws = [
        np.array(draw(st.lists(ints, min_size=a * b, max_size=a * b)), float).reshape(b, a)
        for a, b in zip(widths, widths[1:])
    ]
    bs = [np.array(draw(st.lists(ints, min_size=b, max_size=b)), float) for b in widths[1:]]
    slope = draw(st.sampled_from([0.0, 0.5, -1.0]))
    if slope:
        net = lrcore.Network(ws, bs, activation="leaky_relu", negative_slope=slope)
    else:
        net = lrcore.Network(ws, bs)
    n = draw(st.integers(2, 4))
    pts = np.array(draw(st.lists(st.integers(-3, 3), min_size=n * d, max_size=n * d)), float)
    return net, pts.reshape(n, d) / 2


@settings(max_examples=150, deadline=None)
@given(case=integer_nets(), closed=st.booleans())
def test_integer_networks_match_exact_arithmetic(case, closed):
    net, path = case
    check_exact(net, path, closed and len(path) > 2)


@settings(max_examples=60, deadline=None)
@given(case=integer_nets(max_layers=7))
def test_deep_integer_networks_match_exact_arithmetic(case):
    # Exact zeros at many vertices of many layers: the slow path asks layer after layer,
    # and its values replace the vertex's float64 ones (refresh_values) before the next.
    net, path = case
    check_exact(net, path)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), length=st.sampled_from([1e-12, 1e-6, 1.0, 1e6]))
def test_random_networks_match_exact_arithmetic(seed, length):
    net = lrcore.Network.random([2, 6, 6, 1], seed=seed)
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=2)
    check_exact(net, np.array([x0, x0 + length * rng.normal(size=2)]))


def deep_cancelling_net(
    depth: int, gaps: list[float], seed: int
) -> tuple[lrcore.Network, np.ndarray]:
    """A deep narrow network whose last layer's neurons cancel a large carried value.

    Every hidden layer carries a constant unit ``B = 1e6`` (as BatchNorm shifts or large
    activations do in real networks) beside two positive units mixed by random positive
    weights; the last hidden layer's neurons ``w_m . h + B - 1e6 - c_m`` cross along the
    path at positions ``gaps`` apart. Their scale ``||W_m|| ||h||`` is about 1e6, so the
    old zero tolerance (1e-10 of it) merges crossings closer than about 1e-4; float64's
    actual rounding error is about 1e-10.
    """
    rng = np.random.default_rng(seed)
    big = 1e6
    ws = [np.array([[1.0, 0.2], [0.3, 1.0], [0.0, 0.0]])]
    bs = [np.array([2.0, 2.0, big])]
    for _ in range(depth - 2):
        mix = rng.uniform(0.5, 1.5, size=(2, 2))
        w = np.zeros((3, 3))
        w[:2, :2] = mix / mix.sum(axis=1, keepdims=True)
        w[2, 2] = 1.0
        ws.append(w)
        bs.append(np.append(rng.uniform(0.0, 0.1, size=2), 0.0))
    # The values of the two carried units along the path x(t) = (t, -t), t in [-1, 1]:
    # affine in t (every unit stays positive); the last layer's neurons cross at
    # t_m = 0.25 + sum(gaps[:m]).
    ex = lrcore.Network([*ws, np.eye(3)], [*bs, np.zeros(3)])
    at0 = ex.forward(np.array([[0.0, 0.0]]))[0, :2]
    at1 = ex.forward(np.array([[1.0, -1.0]]))[0, :2]
    positions = 0.25 + np.concatenate([[0.0], np.cumsum(gaps)])
    rows, biases = [], []
    for m, t in enumerate(positions):
        w = rng.uniform(0.5, 1.5, size=2) * (1 if m % 2 else -1)
        value = w @ (at0 + t * (at1 - at0))
        rows.append(np.append(w, 1.0))
        biases.append(-big - value)
    ws.append(np.array(rows))
    bs.append(np.array(biases))
    ws.append(np.ones((1, len(rows))))
    bs.append(np.zeros(1))
    return lrcore.Network(ws, bs), np.array([[-1.0, 1.0], [1.0, -1.0]])


@pytest.mark.parametrize("seed", [0, 1])
def test_deep_narrow_net_where_the_old_tolerance_merges(seed):
    gaps = [1e-6, 3e-7, 2e-5, 1e-8]
    net, path = deep_cancelling_net(24, gaps, seed)
    assert net.num_hidden_layers == 24
    exact = exact_breakpoints(net, path)
    assert len(exact) == len(gaps) + 1  # the oracle sees every crossing apart
    r = check_exact(net, path)
    assert r.num_breakpoints == len(exact)
    old = lrcore.count_1d(net, path, rtol=lrcore.DEFAULT_RTOL)
    assert old.num_breakpoints < len(exact)  # merged by the old rule


def test_small_conv_net_from_torch_matches_exact_arithmetic():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 3, 3),
        torch.nn.ReLU(),
        torch.nn.Conv2d(3, 3, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(27, 1),
    ).double()
    net = lrcore.Network.from_torch(model, input_shape=(1, 5, 5))
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=25)
    r = check_exact(net, np.stack([x0, x0 + 2.0 * rng.normal(size=25)]))
    assert r.num_breakpoints > 5
    assert r.slow_decisions == 0


def test_slow_path_through_convolution_and_residual_rows():
    # Integer weights and points: many values are exactly zero at vertices, so the slow
    # path (double-double, then exact) reads the rows of convolutions (ConvAffine),
    # carried values (DiagonalAffine) and residual sums (CompositeAffine). The result
    # must equal the one on the same net lowered to CSR (rows read from the matrix; the
    # exact oracle here knows no linear units).
    torch = pytest.importorskip("torch")
    from test_conv_layers import Residual, both

    torch.manual_seed(0)
    model = Residual(width=2).double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randint(-2, 3, p.shape, dtype=torch.float64))
    new, old = both(model, (2, 4, 4))
    rng = np.random.default_rng(3)
    for _ in range(3):
        path = rng.integers(-3, 4, size=(3, 32)).astype(np.float64)
        r = lrcore.count_1d(new, path)
        r_old = lrcore.count_1d(old, path)
        assert r.verify().ok
        assert r.slow_decisions > 0
        assert r.num_breakpoints == r_old.num_breakpoints
        assert r.exact_coincidences == r_old.exact_coincidences > 0
        assert r.slow_decisions == r_old.slow_decisions
        np.testing.assert_allclose(r.breakpoints, r_old.breakpoints, rtol=0, atol=1e-12 * r.length)


def test_structural_norm_bounds_hold_and_are_tight():
    # ConvAffine's bound (the kernel of T^T T), DiagonalAffine's (max |scale|) and
    # CompositeAffine's (Schur test on its parts) are >= ||W||_2, computed densely.
    torch = pytest.importorskip("torch")
    from lrcore import _core, zoo
    from test_conv_layers import Residual

    torch.manual_seed(1)
    model = zoo.randomise_batchnorm(Residual(width=3)).double().eval()
    net = lrcore.from_torch(model, (2, 6, 6))
    for w in net.weights[:-1]:
        core = _core.Network([w.core_weight()], [np.zeros(w.shape[0])], [], [], [])
        bound = core.norm_bounds()[0]
        sigma = np.linalg.norm(w.toarray(), 2)
        assert sigma <= bound <= 3.0 * sigma
    for stride, padding, dilation, groups in [
        (1, 1, 1, 1),
        (2, 0, 1, 1),
        (1, 2, 2, 2),
        (3, 1, 1, 4),
    ]:
        conv = torch.nn.Conv2d(4, 4, 3, stride, padding, dilation, groups).double()
        single = lrcore.from_torch(
            torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.Flatten()), (4, 7, 7)
        )
        w = single.weights[0]
        dense = w.toarray() if hasattr(w, "toarray") else np.asarray(w)
        bound = single._core.norm_bounds()[0]
        assert np.linalg.norm(dense, 2) <= bound <= 4.0 * np.linalg.norm(dense, 2)


def concurrent_net() -> lrcore.Network:
    """Four neurons whose zero sets all pass through the origin (exact coincidences)."""
    w1 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]])
    w2 = np.array([[1.0, -1.0, 1.0, -1.0], [2.0, 1.0, -1.0, 1.0]])
    return lrcore.Network(
        [w1, w2, np.ones((1, 2))], [np.zeros(4), np.array([0.0, -1.0]), np.zeros(1)]
    )


def test_an_exact_evaluation_that_underflows_is_uncertified_not_a_coincidence():
    # Two proportional neurons cross at one point: neither the filter nor double-double
    # can order the crossings, the exact tier must. With weights near 1e-149 on inputs
    # near 1e-148 its products fall below 2^-969, where TwoProd's low part underflows and
    # the expansions are no longer exact: the decision is then not certified. (It counted
    # as an exact coincidence, certified, before; on ResNet-18 at width 64, whose exact
    # values span about 900 bits after 17 layers, that dropped two real breakpoints.)
    w1 = np.array([[1.0, -1.0], [2.0, -2.0], [1.0, 1.0]])
    path = np.array([[-1.0, 0.5], [1.0, -0.3]])
    plain = lrcore.count_1d(
        lrcore.Network([w1, np.ones((1, 3))], [np.zeros(3), np.zeros(1)]), path
    )
    assert plain.uncertified_decisions == 0
    assert plain.exact_coincidences == 1
    tiny = lrcore.Network([w1 * 1e-149, np.ones((1, 3))], [np.zeros(3), np.zeros(1)])
    with pytest.warns(lrcore.CertificationWarning):
        r = lrcore.count_1d(tiny, path * 1e-148)
    assert r.uncertified_decisions > 0
    assert r.exact_coincidences == 0
    np.testing.assert_array_equal(r.flip_offsets, plain.flip_offsets)


def test_slow_path_budget_takes_float_signs_and_says_so():
    net = concurrent_net()
    path = np.array([[-2.0, -2.0], [2.0, 2.0], [3.0, -1.0]])
    full = lrcore.count_1d(net, path, max_slow_decisions=None)
    assert full.slow_decisions > 0
    assert full.uncertified_decisions == 0
    check_exact(net, path)  # the certified default agrees with exact arithmetic
    # The default budget is far above what this needs: the same certified result.
    default = lrcore.count_1d(net, path)
    assert default.uncertified_decisions == 0
    np.testing.assert_array_equal(default.breakpoints, full.breakpoints)
    # No budget at all: every undecided value keeps its float64 sign, counted and warned.
    with pytest.warns(lrcore.CertificationWarning, match="max_slow_decisions=0"):
        none = lrcore.count_1d(net, path, max_slow_decisions=0)
    assert none.slow_decisions == 0
    assert none.uncertified_decisions > 0
    # Here the float64 values at the undecided vertices are exact, so the count agrees.
    assert none.num_breakpoints == full.num_breakpoints
    # A budget of one per task (here one segment per task): at most one slow decision
    # per segment, the rest counted.
    with pytest.warns(lrcore.CertificationWarning):
        one = lrcore.count_1d(net, path[:2], max_slow_decisions=1)
    assert one.slow_decisions <= 1 < one.slow_decisions + one.uncertified_decisions
    batch = lrcore.count_1d(net, [path, path], max_slow_decisions=None)
    assert list(batch.uncertified_decisions) == [0, 0]
    assert batch[1].uncertified_decisions == 0


@pytest.mark.parametrize(
    ("value", "error"), [(-1, ValueError), (1.5, TypeError), (True, TypeError), ("9", TypeError)]
)
def test_slow_path_budget_is_checked(value, error):
    path = np.array([[-2.0, -2.0], [2.0, 2.0]])
    with pytest.raises(error, match="max_slow_decisions"):
        lrcore.count_1d(concurrent_net(), path, max_slow_decisions=value)


def structural_zero_net(shift: float = 0.1) -> lrcore.Network:
    """Ties of ReLU outputs that are both off, as in max-pooling tournaments.

    Layer 0: n0 = relu(x0 - 10), n1 = relu(x1 - 10) (off on the paths below), n2 =
    relu(x0 + x1 - 1), n3 = relu(x0 - x1). Layer 1: m0 = n0 - n1 (a tie of two zeros),
    m1 = n2 - n3 + shift (with shift 0, a tie of two ReLU outputs that are on where
    x1 = 1/2), and a linear unit L = n0 (a carried zero). Layer 2: q0 = L + m0 (zero
    through the linear unit), q1 = m1 + L - 0.5.
    """
    w0 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]])
    b0 = np.array([-10.0, -10.0, -1.0, 0.0])
    w1 = np.array([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0], [1.0, 0.0, 0.0, 0.0]])
    b1 = np.array([0.0, shift, 0.0])
    w2 = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    b2 = np.array([0.0, -0.5])
    return lrcore.Network(
        [w0, w1, w2, np.ones((1, 2))], [b0, b1, b2, np.zeros(1)], linear_units=[0, 1, 0]
    )


def test_structural_zeros_need_no_slow_path():
    # m0 and q0 are exactly 0 at every vertex, within the filter's bound, so every vertex
    # asks for them: decided by structure (their rows read only exact zeros under the
    # forced pattern), so even without a slow-path budget nothing is left uncertified.
    net = structural_zero_net()
    path = np.array([[-3.0, -2.0], [3.0, 2.5], [2.0, -3.0]])
    exact = exact_breakpoints(net, path)
    assert len(exact) > 2
    r = lrcore.count_1d(net, path, max_slow_decisions=0)
    assert r.uncertified_decisions == 0
    assert r.slow_decisions == 0
    assert r.exact_coincidences > 0
    assert disagreements(r, exact) == []
    full = lrcore.count_1d(net, path, max_slow_decisions=None)
    assert full.exact_coincidences == r.exact_coincidences
    np.testing.assert_array_equal(full.breakpoints, r.breakpoints)


def test_structural_zero_rule_needs_every_input_off():
    # m1 = n2 - n3 is exactly 0 where x1 = 1/2 with both on: not a structural zero, the
    # slow path decides it. With n0 turned on along the path (bias +10), m0 and q0 are
    # no longer zero either, and the rule must not claim they are.
    path = np.array([[-3.0, -2.0], [3.0, 2.5], [2.0, -3.0]])
    tie = structural_zero_net(shift=0.0)
    r = check_exact(tie, path)
    assert r.slow_decisions > 0
    net = structural_zero_net()
    b0 = np.array(net._biases[0])
    b0[0] = 10.0
    on = lrcore.Network(net._weights, [b0, *net._biases[1:]], linear_units=[0, 1, 0])
    r = check_exact(on, path)
    assert r.uncertified_decisions == 0


def pooled_integer_nets(draw_seed: int) -> tuple[lrcore.Network, np.ndarray]:
    """A conv + ReLU + 2x2 max pooling net with integer weights, lowered to tournaments."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(draw_seed)
    model = nn.Sequential(
        nn.Conv2d(1, 2, 2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8, 1),
    ).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randint(-2, 3, p.shape, dtype=torch.float64))
    pooled = lrcore.from_torch(model, (1, 5, 5))
    # The tournament neurons' own signs (no argmax merging): comparable to the oracle.
    net = lrcore.Network(pooled._weights, pooled._biases, linear_units=pooled.linear_units)
    rng = np.random.default_rng(draw_seed)
    path = rng.integers(-3, 4, size=(3, 25)).astype(np.float64) / 2
    return net, path


@pytest.mark.parametrize("seed", range(6))
def test_tournament_ties_match_exact_arithmetic(seed):
    # Integer weights and points: many ties of zero ReLU outputs in the tournaments, and
    # other exact coincidences. Certified results equal the exact ones, with and without
    # a slow-path budget.
    net, path = pooled_integer_nets(seed)
    exact = exact_breakpoints(net, path)
    r = lrcore.count_1d(net, path, max_slow_decisions=None)
    assert disagreements(r, exact) == []
    assert r.verify().ok
    assert r.exact_coincidences > 0


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    [(1, 1, 1, 1), (2, 0, 1, 1), (1, 2, 2, 2), (3, 1, 1, 2), (1, 0, 1, 4)],
)
def test_structured_slow_pass_matches_exact_arithmetic(stride, padding, dilation, groups):
    # The slow path's double-double pass runs through ConvAffine tap by tap (rows of
    # output positions, vectorised where the stride is 1): integer weights and points
    # make many values exactly zero at vertices, so it runs often, and every decision
    # must equal exact arithmetic's.
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(stride + 10 * padding + 100 * groups)
    features = nn.Sequential(
        nn.Conv2d(4, 4, 3, stride, padding, dilation, groups), nn.ReLU(), nn.Conv2d(4, 2, 2)
    ).double()
    size = features(torch.zeros(1, 4, 6, 6, dtype=torch.float64)).numel()
    model = nn.Sequential(features, nn.ReLU(), nn.Flatten(), nn.Linear(size, 1)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randint(-2, 3, p.shape, dtype=torch.float64))
    net = lrcore.from_torch(model, (4, 6, 6))
    rng = np.random.default_rng(stride)
    path = rng.integers(-3, 4, size=(2, 4 * 36)).astype(np.float64) / 2
    r = lrcore.count_1d(net, path, max_slow_decisions=None)
    assert r.slow_decisions > 0
    assert disagreements(r, exact_breakpoints(net, path)) == []


def integer_conv_net(channels: int = 8, size: int = 6) -> lrcore.Network:
    """Two 3x3 convolutions with integer weights: many values exactly zero at vertices."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, channels, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(channels * size * size, 1),
    ).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randint(-2, 3, p.shape, dtype=torch.float64))
    return lrcore.from_torch(model, (2, size, size))


def test_structured_slow_pass_split_over_threads_gives_the_same_result():
    # One path, two threads: the idle thread is lent to the convolutions, the slow
    # path's included (its output channels split over the threads). Each output's sum
    # is the same whatever the split, so the result is the same.
    net = integer_conv_net(16, 12)  # the second convolution's work splits
    rng = np.random.default_rng(0)
    path = rng.integers(-3, 4, size=(2, 288)).astype(np.float64) / 2
    unbounded = {"max_slow_decisions": None, "max_slow_work": None}
    one = lrcore.count_1d(net, path, num_threads=1, **unbounded)
    two = lrcore.count_1d(net, path, num_threads=2, **unbounded)
    assert one.slow_decisions > 0
    assert (two.slow_decisions, two.exact_coincidences) == (
        one.slow_decisions,
        one.exact_coincidences,
    )
    np.testing.assert_array_equal(two.breakpoints, one.breakpoints)


def test_slow_work_budget_does_not_depend_on_threads():
    # 69 segments: several tasks. A work budget that runs out in them leaves signs
    # uncertified; which ones depends on each task's own work only (the oracle's cache
    # is cleared at each task's start), so one and two threads agree exactly.
    net = integer_conv_net()
    path = np.random.default_rng(0).integers(-3, 4, size=(70, 72)).astype(np.float64) / 2
    full = lrcore.count_1d(net, path, max_slow_decisions=None, max_slow_work=None)
    assert full.slow_decisions > 0
    assert full.uncertified_decisions == 0
    results = []
    for threads in (1, 2):
        with pytest.warns(lrcore.CertificationWarning, match="max_slow_work=0.03"):
            results.append(
                lrcore.count_1d(
                    net, path, num_threads=threads, max_slow_decisions=None, max_slow_work=0.03
                )
            )
    one, two = results
    assert 0 < one.slow_decisions < full.slow_decisions
    assert one.uncertified_decisions > 0
    assert (two.slow_decisions, two.uncertified_decisions, two.exact_coincidences) == (
        one.slow_decisions,
        one.uncertified_decisions,
        one.exact_coincidences,
    )
    np.testing.assert_array_equal(two.breakpoints, one.breakpoints)
    np.testing.assert_array_equal(two.flip_neurons, one.flip_neurons)


def test_slow_work_budget_counts_what_it_leaves_and_none_certifies_all():
    net = integer_conv_net()
    path = np.random.default_rng(1).integers(-3, 4, size=(2, 72)).astype(np.float64) / 2
    exact = exact_breakpoints(net, path)
    # No budget of either kind: every sign certified, equal to exact arithmetic.
    full = lrcore.count_1d(net, path, max_slow_decisions=None, max_slow_work=None)
    assert full.slow_decisions > 0
    assert full.uncertified_decisions == 0
    assert disagreements(full, exact) == []
    # A zero work budget: at most the first pass of each task, the rest counted.
    with pytest.warns(lrcore.CertificationWarning, match="max_slow_work=0"):
        tiny = lrcore.count_1d(net, path, max_slow_decisions=None, max_slow_work=0)
    assert tiny.slow_decisions < full.slow_decisions
    assert tiny.uncertified_decisions > 0
    assert tiny.slow_decisions + tiny.uncertified_decisions >= full.slow_decisions // 2
    # The decision budget still works on its own, with no work budget (one segment: one
    # task).
    with pytest.warns(lrcore.CertificationWarning, match="max_slow_decisions=3"):
        three = lrcore.count_1d(net, path, max_slow_decisions=3, max_slow_work=None)
    assert three.slow_decisions <= 3 < three.slow_decisions + three.uncertified_decisions
    # The default work budget is far above what this small net needs.
    default = lrcore.count_1d(net, path, max_slow_decisions=None)
    assert default.uncertified_decisions == 0
    np.testing.assert_array_equal(default.breakpoints, full.breakpoints)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (-1.0, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (True, TypeError),
        ("9", TypeError),
        ([1.0], TypeError),
    ],
)
def test_slow_work_budget_is_checked(value, error):
    path = np.array([[-2.0, -2.0], [2.0, 2.0]])
    with pytest.raises(error, match="max_slow_work"):
        lrcore.count_1d(concurrent_net(), path, max_slow_work=value)


def test_slow_work_budget_accepts_ints_and_numpy_numbers():
    path = np.array([[-2.0, -2.0], [2.0, 2.0], [3.0, -1.0]])
    ref = lrcore.count_1d(concurrent_net(), path, max_slow_work=None)
    for value in (5, np.float32(5.0), np.int64(5)):
        r = lrcore.count_1d(concurrent_net(), path, max_slow_work=value)
        np.testing.assert_array_equal(r.breakpoints, ref.breakpoints)


def single_conv(conv, shape):
    """A one-convolution network and its dense matrix."""
    torch = pytest.importorskip("torch")
    net = lrcore.from_torch(torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.Flatten()), shape)
    w = net.weights[0]
    return net, (w.toarray() if hasattr(w, "toarray") else np.asarray(w))


@pytest.mark.parametrize(
    ("c_in", "c_out", "kernel", "stride", "padding", "dilation", "groups", "grid"),
    [
        (1, 1, 3, 1, 1, 1, 1, (7, 7)),
        (1, 1, 3, 1, 0, 1, 1, (5, 9)),
        (3, 8, 3, 1, 1, 1, 1, (6, 6)),
        (8, 3, 3, 1, 1, 1, 1, (6, 5)),
        (16, 16, 3, 1, 1, 1, 1, (3, 3)),
        (32, 32, 3, 1, 1, 1, 1, (4, 4)),
        (16, 32, 3, 2, 1, 1, 1, (4, 4)),
        (64, 48, 3, 1, 1, 1, 1, (3, 3)),
        (8, 8, (5, 3), 1, (2, 1), 1, 1, (5, 6)),
        (4, 4, 3, 1, 2, 2, 2, (7, 7)),
        (8, 8, 3, 3, 1, 1, 4, (7, 8)),
        (6, 4, 1, 1, 0, 1, 1, (4, 4)),
        (4, 6, 2, 2, 0, 1, 2, (6, 6)),
    ],
)
def test_convolution_norm_bound_holds_and_is_tight(
    c_in, c_out, kernel, stride, padding, dilation, groups, grid
):
    # ConvAffine's bound is the smaller of the spatial one (T^T T's kernel) and the
    # symbol's (max over a periodic grid's frequencies of ||K^(omega)||_2, docs/numerics.md
    # §3): never below the true ||W||_2 (dense SVD), and at most twice it (times the
    # stride: both bound the stride-1 convolution, of which a strided one keeps a part). A grid of frequencies too small (aliasing) or missing some would fail the
    # first check on some of these kernels. (On grids of 2 or 3 positions the periodic
    # grid's norm is well above the padded matrix's: the upper check is loose.) From 32
    # channels on both sides the Gram matrices are taken in single precision (cherk).
    torch = pytest.importorskip("torch")
    for seed in range(3):
        torch.manual_seed(seed)
        conv = torch.nn.Conv2d(c_in, c_out, kernel, stride, padding, dilation, groups).double()
        if seed == 2:  # a kernel whose symbol peaks at the highest frequencies
            with torch.no_grad():
                k = conv.weight
                sign = (-1.0) ** torch.arange(k.shape[2]).reshape(-1, 1)
                sign = sign * (-1.0) ** torch.arange(k.shape[3]).reshape(1, -1)
                k.copy_(k.abs() * sign)
        net, dense = single_conv(conv, (c_in, *grid))
        sigma = np.linalg.norm(dense, 2)
        bound = net._core.norm_bounds()[0]
        assert sigma <= bound, (seed, sigma, bound)
        assert bound <= 2.0 * stride * sigma + 1e-12, (seed, sigma, bound)


@pytest.mark.parametrize("scale", [1e-140, 1e-30, 1e20, 1e120])
def test_convolution_norm_bound_holds_at_extreme_scales(scale):
    # The bounds scale the kernel by a power of two first: without it, tiny weights put
    # the single-precision Gram matrix below its range (its absolute underflow terms then
    # dominate: 1.96 times the norm at 1e-30 instead of 1.82) and the spatial bound's
    # composed kernel underflows (a bound of 0 at 1e-150, below the true norm), and huge
    # ones overflow it (3.16 times at 1e120). The same factor at every scale.
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(40, 40, 3, 1, 1).double()
    with torch.no_grad():
        conv.weight.mul_(scale)
        conv.bias.zero_()
    net, dense = single_conv(conv, (40, 3, 3))
    sigma = np.linalg.norm(dense, 2)
    bound = net._core.norm_bounds()[0]
    assert np.isfinite(bound)
    assert sigma <= bound <= 1.9 * sigma, (sigma, bound)


def test_norm_bounds_do_not_depend_on_the_thread_count():
    """Network.norm_bounds shares the layers over threads; each bound is the layer's own."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(16, 16, 3, padding=2, dilation=2),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * 4 * 4, 3),
    ).double()
    one = lrcore.from_torch(model, (3, 8, 8))._core.norm_bounds(1)
    two = lrcore.from_torch(model, (3, 8, 8))._core.norm_bounds(2)
    assert one == two
    assert len(one) == 4
    assert all(b > 0 for b in one[:3])
    # Each bound holds: no smaller than the layer's true norm (dense SVD of its matrix).
    net = lrcore.from_torch(model, (3, 8, 8))
    for layer, bound in enumerate(net._core.norm_bounds(2)[:3]):
        w = net.weights[layer]
        sigma = np.linalg.norm(w.toarray() if hasattr(w, "toarray") else np.asarray(w), 2)
        assert sigma <= bound, (layer, sigma, bound)


def deep_integer_net(seed: int) -> tuple[lrcore.Network, np.ndarray]:
    """Six hidden layers of 8 with integer weights and biases, an integer 5-segment path."""
    rng = np.random.default_rng(seed)
    sizes = [4, 8, 8, 8, 8, 8, 8, 1]
    ws = [rng.integers(-2, 3, size=(b, a)).astype(float) for a, b in zip(sizes, sizes[1:])]
    bs = [rng.integers(-2, 3, size=b).astype(float) for b in sizes[1:]]
    return lrcore.Network(ws, bs), rng.integers(-3, 4, size=(6, 4)).astype(float)


@pytest.mark.parametrize("seed", range(8))
def test_resumed_passes_match_passes_from_the_input(seed, monkeypatch):
    # The slow path asks at many vertices of many layers; its passes resume from cached
    # layers of other intervals of the same segment wherever the pattern's bits below
    # that layer agree (docs/numerics.md §4). Sibling intervals differ at the layer that
    # split them: a resume from a layer whose prefix differs would give other values,
    # so other refreshed values (and breakpoint positions) or signs. With the cache off
    # (LRCORE_PASS_CACHE_MB=0) every pass starts from the input: the same arithmetic,
    # so the results must be identical bit for bit, and both exact.
    net, path = deep_integer_net(seed)
    kwargs = {"max_slow_decisions": None, "max_slow_work": None}
    cached = lrcore.count_1d(net, path, **kwargs)
    monkeypatch.setenv("LRCORE_PASS_CACHE_MB", "0")
    fresh = lrcore.count_1d(net, path, **kwargs)
    assert cached.slow_decisions == fresh.slow_decisions > 0
    assert cached.exact_coincidences == fresh.exact_coincidences
    np.testing.assert_array_equal(cached.breakpoints, fresh.breakpoints)
    np.testing.assert_array_equal(cached.flip_neurons, fresh.flip_neurons)
    assert disagreements(cached, exact_breakpoints(net, path)) == []


@pytest.mark.parametrize("budget", [0.02, 0.1])
def test_slow_work_stays_within_the_budget(budget, monkeypatch, capfd):
    # The exact tier's component operations are counted as they are done and a running
    # exact evaluation stops at the budget, so a task's slow-path work ends within a
    # small overshoot (its last pass or row: about 4e4 here) of max_slow_work times its
    # float64 work (at least 2^24). Here (69 segments in several tasks, exact
    # coincidences) exact evaluations start while the budget lasts. (On this small net
    # an exact evaluation is short, so the stop itself is not what keeps it within.)
    monkeypatch.setenv("LRCORE_CERT_STATS", "1")
    net = integer_conv_net()
    path = np.random.default_rng(0).integers(-3, 4, size=(70, 72)).astype(np.float64) / 2
    with pytest.warns(lrcore.CertificationWarning):
        r = lrcore.count_1d(net, path, num_threads=1, max_slow_work=budget)
    assert r.uncertified_decisions > 0
    stats = re.findall(r"dd_work (\S+) float_work (\S+)", capfd.readouterr().err)
    assert len(stats) > 1
    for dd_work, float_work in stats:
        allowed = budget * max(float(float_work), 2.0**24)
        assert float(dd_work) <= allowed + 0.01 * 2.0**24
