"""Fuzzing every public entry point with generated valid and invalid inputs.

Each call must either return a result whose ``verify()`` passes (for the exact
computations) or a well-formed value, or raise one of the documented exceptions:
ValueError, TypeError, IndexError (an index out of range) or lrcore.LimitExceeded.
Anything else (RuntimeError, SystemError, a crash, a hang) is a bug. Every call made
with generated arguments counts as one input; the total is checked to reach 10^4 and is
printed in the terminal summary (and recorded as the test property ``fuzz_inputs``).

Arrays come from numpy generators seeded by hypothesis, with hypothesis choosing the
kind of trouble: NaN/Inf, huge and tiny magnitudes, wrong shapes and dtypes, empty and
one-point paths, zero-length and repeated segments, points on hyperplanes, collinear and
zero plane bases, degenerate domains, zero and duplicate weight rows, deep and wide nets.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrcore
from support import FUZZ_SUMMARY, reference

#: Allowed exceptions: the documented ones.
DOCUMENTED = (ValueError, TypeError, IndexError, lrcore.LimitExceeded)
#: The total the fuzz tests must reach together under the ci profile.
MIN_INPUTS = 10_000
# Examples per test: the ci profile's budget, scaled up under the dev profile.
SCALE = 4 if os.environ.get("HYPOTHESIS_PROFILE") == "dev" else 1

INPUTS: Counter[str] = Counter()
#: Slices whose core placed crossings within float64 rounding of a vertex at it (warned).
MERGED: Counter[str] = Counter()
STARTED: list[float] = []


def fuzz(examples: int):
    """Settings of a fuzz test: ``examples`` per run under ci."""
    return settings(max_examples=examples * SCALE, deadline=None, derandomize=True)


def call(name: str, fn, *args, **kwargs) -> Any:
    """Call a public entry point with generated arguments; None if it refused them."""
    if not STARTED:
        STARTED.append(time.perf_counter())
    INPUTS[name] += 1
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", lrcore.RoundingWarning)
            warnings.simplefilter("always", lrcore.CertificationWarning)
            result = fn(*args, **kwargs)
    except DOCUMENTED:
        return None
    warned = any(issubclass(w.category, lrcore.RoundingWarning) for w in caught)
    merged = any(getattr(r, "merged_crossings", 0) for r in _as_list(result))
    assert warned == merged, "RoundingWarning must come exactly when crossings were merged"
    uncertain = any(issubclass(w.category, lrcore.CertificationWarning) for w in caught)
    uncertified = any(
        np.any(np.asarray(getattr(r, "uncertified_decisions", 0)) > 0) for r in _as_list(result)
    )
    assert uncertain == uncertified, (
        "CertificationWarning must come exactly when decisions are uncertified"
    )
    if isinstance(result, list):
        for item in result:
            check_result(item)
    else:
        check_result(result)
    return result


def _as_list(result: Any) -> list[Any]:
    return result if isinstance(result, list) else [result]


def check_result(result: Any) -> None:
    """A result of an exact computation passes its own self-check."""
    if isinstance(result, (lrcore.PathResult, lrcore.BatchResult, lrcore.SliceResult)):
        if isinstance(result, lrcore.SliceResult) and result.merged_crossings:
            MERGED["slices"] += 1
            MERGED["crossings"] += result.merged_crossings
        report = result.verify()
        if not report.ok:
            raise lrcore.VerificationError(report)


def evaluate(net: lrcore.Network, x: Any) -> None:
    """forward / pre_activations / patterns at ``x``: refused, or equal to plain numpy.

    Overflow gives inf or NaN as in numpy; values agree to rounding, measured against
    the magnitudes ``|W| |h| + |b|`` that the sums add up.
    """
    out = call("Network.forward", net.forward, x)
    pre = call("Network.pre_activations", net.pre_activations, x)
    bits = call("Network.patterns", net.patterns, x)
    if out is None or any(hasattr(w, "tocsr") for w in net.weights):
        assert pre is None
        assert bits is None
        return
    points = np.atleast_2d(np.asarray(x, dtype=np.float64))
    args = (net.weights, net.biases, points, net.activations, net.negative_slopes)
    with np.errstate(all="ignore"):
        ref_pre = reference.pre_activations_numpy(*args)
        ref_out = reference.forward_numpy(*args)
        size = np.abs(points)
        sizes = []
        for w, b in zip(net.weights, net.biases):
            size = size @ np.abs(w).T + np.abs(b)
            sizes.append(size)
    for got, want, scale in zip([*pre, out], [*ref_pre, ref_out], sizes):
        got = np.reshape(got, want.shape)
        with np.errstate(all="ignore"):
            close = np.abs(got - want) <= 1e-12 * scale + 1e-300
        # Past an overflow the order of operations decides between inf and NaN, and
        # where the sums' magnitudes overflow (|W| |h| + |b| = inf: beyond the documented
        # range) whether BLAS skips a zero factor decides between a number and NaN.
        same = (got == want) | (~np.isfinite(got) & ~np.isfinite(want)) | close
        same |= ~np.isfinite(scale)
        assert same.all(), f"evaluation differs from numpy: {got} vs {want}"
    if pre:  # patterns are the signs of the pre-activations
        signs = np.concatenate([np.reshape(z, w.shape) > 0 for z, w in zip(pre, ref_pre)], axis=1)
        assert np.array_equal(np.reshape(bits, signs.shape), signs)


# --- Generated arrays ------------------------------------------------------------------

MAGNITUDES = [1.0, 1.0, 1.0, 1e-6, 1e6, 1e-150, 1e150, 1e-300, 1e300]
TROUBLE = ["none", "none", "none", "nan", "inf", "zero-row", "duplicate-row", "integer"]
DTYPES = ["float64"] * 6 + ["float32", "int64", "bool", "complex", "object", "str"]


@st.composite
def arrays(draw, shape: tuple[int, ...], wrong_shape: bool = True, finite: bool = False):
    """An array of (usually) ``shape`` with (sometimes) trouble in it."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if wrong_shape and draw(st.integers(0, 9)) == 0:
        shape = draw(
            st.sampled_from(
                [
                    (),
                    (0,),
                    shape[:-1] or (1,),
                    (*shape, 1),
                    tuple(reversed(shape)),
                    (0, *shape[1:]),
                ]
            )
        )
    scale = draw(st.sampled_from(MAGNITUDES))
    values = scale * rng.standard_normal(shape)
    trouble = "none" if finite else draw(st.sampled_from(TROUBLE))
    if values.size:
        flat = values.reshape(-1)
        if trouble == "nan":
            flat[rng.integers(flat.size)] = np.nan
        elif trouble == "inf":
            flat[rng.integers(flat.size)] = -np.inf
        elif trouble == "zero-row" and values.ndim:
            values[rng.integers(values.shape[0])] = 0.0
        elif trouble == "duplicate-row" and values.ndim and values.shape[0] > 1:
            values[1] = values[0]
        elif trouble == "integer":
            values = np.round(values)
    dtype = "float64" if finite else draw(st.sampled_from(DTYPES))
    if dtype == "object":
        return values.astype(object)
    if dtype == "str":
        return values.astype(str)
    with np.errstate(all="ignore"):
        return values.astype(dtype)


@st.composite
def networks(draw) -> lrcore.Network:
    """Valid networks: small, deep or wide, any scale, with zero and duplicate rows."""
    form = draw(st.sampled_from(["small"] * 8 + ["deep", "wide"]))
    d = draw(st.integers(1, 4))
    if form == "deep":
        hidden = [draw(st.integers(1, 3))] * draw(st.integers(20, 40))
    elif form == "wide":
        hidden = [draw(st.integers(200, 600))]
    else:
        hidden = draw(st.lists(st.integers(1, 8), min_size=0, max_size=3))
    sizes = [d, *hidden, draw(st.integers(1, 3))]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 1.0, 1e-6, 1e6, 1e-100, 1e30]))
    weights = [rng.uniform(-1, 1, (o, i)) / np.sqrt(i) * scale for i, o in zip(sizes, sizes[1:])]
    biases = [rng.uniform(-1, 1, o) / np.sqrt(i) * scale for i, o in zip(sizes, sizes[1:])]
    trouble = draw(st.sampled_from(["none", "none", "zero-row", "duplicate-row", "no-bias"]))
    if trouble == "zero-row":
        weights[0][0] = 0.0
        if draw(st.booleans()):
            biases[0][0] = 0.0
    elif trouble == "duplicate-row" and sizes[1] > 1:
        weights[0][1] = weights[0][0] * draw(st.sampled_from([1.0, -1.0, 2.0]))
        biases[0][1] = biases[0][0] * weights[0][1, 0] / weights[0][0, 0]
    elif trouble == "no-bias":
        biases = [np.zeros_like(b) for b in biases]
    activation = draw(st.sampled_from(["relu", "leaky_relu"]))
    slope = draw(st.sampled_from([0.01, 0.0, 1.0, -1.0, 0.2, 3.0]))
    return lrcore.Network(weights, biases, activation, slope)


def on_hyperplane(net: lrcore.Network, x: np.ndarray, unit: int) -> np.ndarray:
    """``x`` moved onto the zero set of first-layer neuron ``unit`` (if it has one)."""
    first = net.weights[0]
    w = (first.toarray() if hasattr(first, "toarray") else first)[unit]
    b = net.biases[0][unit]
    norm2 = float(w @ w)
    return x if norm2 == 0 else x - ((x @ w + b) / norm2) * w


@st.composite
def paths(draw, net: lrcore.Network):
    """Polylines for ``net``: mostly valid, some degenerate, some invalid."""
    d = net.input_dim
    kind = draw(
        st.sampled_from(
            ["random"] * 4
            + ["repeated", "zero-length", "on-hyperplane", "one-point", "empty", "trouble"]
        )
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = draw(st.integers(2, 6))
    scale = draw(st.sampled_from([3.0, 3.0, 1e-6, 1e6, 1e-150, 1e100]))
    path = scale * rng.standard_normal((n, d))
    if kind == "repeated":
        path = np.repeat(path, 2, axis=0)
    elif kind == "zero-length":
        path = np.repeat(path[:1], n, axis=0)
    elif kind == "on-hyperplane":
        unit = int(rng.integers(net.weights[0].shape[0]))
        path = np.array([on_hyperplane(net, p, unit) for p in path])
        if draw(st.booleans()):  # only some points on it
            path[::2] = scale * rng.standard_normal((len(path[::2]), d))
    elif kind == "one-point":
        path = path[:1]
    elif kind == "empty":
        path = path[:0]
    elif kind == "trouble":
        return draw(arrays((n, d)))
    return path


OPTIONS_RTOL = [lrcore.DEFAULT_RTOL] * 6 + [0.0, 1e-3, 1.0, -1.0, float("nan"), 1e300, "x"]
OPTIONS_THREADS = [None] * 6 + [1, 2, 3, 0, -1, 2**40, 1.5, "2"]


@st.composite
def run_options(draw, cap_name: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if draw(st.booleans()):
        options["rtol"] = draw(st.sampled_from(OPTIONS_RTOL))
    if draw(st.booleans()):
        options["num_threads"] = draw(st.sampled_from(OPTIONS_THREADS))
    if draw(st.integers(0, 3)) == 0:
        options[cap_name] = draw(st.sampled_from([1, 2, 5, 50, 0, -3, 2**70, 1.5, None]))
    return options


# --- The entry points --------------------------------------------------------------------


@fuzz(500)
@given(data=st.data(), depth=st.integers(1, 3), d=st.integers(1, 4))
def test_network_constructor(data, depth, d):
    sizes = [d, *data.draw(st.lists(st.integers(1, 5), min_size=depth, max_size=depth))]
    weights = [data.draw(arrays((o, i))) for i, o in zip(sizes, sizes[1:])]
    biases = [data.draw(arrays((o,))) for o in sizes[1:]]
    if data.draw(st.integers(0, 9)) == 0:
        biases = biases[:-1]
    activation = data.draw(st.sampled_from(["relu", "leaky_relu", "tanh", ["relu"] * 5, 3]))
    slope = data.draw(st.sampled_from([0.01, float("nan"), -2.0, [0.1] * 7, "a"]))
    net = call("Network", lrcore.Network, weights, biases, activation, slope)
    if net is not None:
        evaluate(net, data.draw(arrays((3, d))))
        evaluate(net, data.draw(arrays((d,))))


@fuzz(600)
@given(
    sizes=st.lists(
        st.one_of(st.integers(-2, 6), st.sampled_from([1.5, "3", None])), min_size=0, max_size=5
    ),
    activation=st.sampled_from(["relu", "leaky_relu", "gelu"]),
    seed=st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([None, -1, "s"])),
)
def test_network_random(sizes, activation, seed):
    net = call("Network.random", lrcore.Network.random, sizes, activation, seed=seed)
    if net is not None:
        x = np.zeros((2, net.input_dim))
        assert net.forward(x).shape == (2, net.output_dim)


TORCH_MODELS = [
    "linear-relu",
    "leaky",
    "flatten-dropout",
    "identity",
    "single-linear",
    "tanh",
    "empty",
    "batchnorm",
    "conv",
]


def torch_model(kind: str, width: int, seed: int):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(seed)
    models = {
        "linear-relu": lambda: nn.Sequential(
            nn.Linear(3, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1)
        ),
        "leaky": lambda: nn.Sequential(
            nn.Linear(2, width), nn.LeakyReLU(0.3), nn.Linear(width, 2)
        ),
        "flatten-dropout": lambda: nn.Sequential(
            nn.Flatten(), nn.Linear(4, width), nn.Dropout(0.5), nn.ReLU(), nn.Linear(width, 1)
        ).eval(),
        "identity": lambda: nn.Sequential(
            nn.Identity(), nn.Linear(2, width), nn.ReLU(), nn.Linear(width, 1)
        ),
        "single-linear": lambda: nn.Linear(3, 2),
        "tanh": lambda: nn.Sequential(nn.Linear(2, width), nn.Tanh(), nn.Linear(width, 1)),
        "empty": lambda: nn.Sequential(),
        "batchnorm": lambda: nn.Sequential(
            nn.Linear(2, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, 1)
        ).eval(),
        "conv": lambda: nn.Sequential(
            nn.Conv2d(1, 2, 2), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 2 * 2, 1)
        ).eval(),
    }
    return models[kind]()


@fuzz(60)
@given(
    kind=st.sampled_from(TORCH_MODELS),
    width=st.integers(1, 6),
    seed=st.integers(0, 1000),
    shape=st.sampled_from([None, None, (3,), (1, 3, 3), (2,), (4,), (0,)]),
    data=st.data(),
)
def test_from_torch(kind, width, seed, shape, data):
    model = torch_model(kind, width, seed)
    net = call("Network.from_torch", lrcore.Network.from_torch, model, input_shape=shape)
    if net is None:
        return
    path = data.draw(paths(net))
    call("count_1d", lrcore.count_1d, net, path)


@fuzz(400)
@given(data=st.data())
def test_evaluation(data):
    net = data.draw(networks())
    d = net.input_dim
    for shape in [(data.draw(st.integers(0, 4)), d), (d,), (1, d), (7, d)]:
        evaluate(net, data.draw(arrays(shape)))


@fuzz(700)
@given(data=st.data(), closed=st.sampled_from([False, True, False, np.bool_(True), "yes", [True]]))
def test_count_1d(data, closed):
    net = data.draw(networks())
    path = data.draw(paths(net))
    options = data.draw(run_options("max_pieces"))
    patterns = data.draw(st.booleans())
    r = call("count_1d", lrcore.count_1d, net, path, closed, return_patterns=patterns, **options)
    if r is not None:
        window = data.draw(st.sampled_from([0.5, 1e-9, 1e9, 0.0, -1.0, float("nan"), "w"]))
        at = data.draw(st.sampled_from([None, [0.0, 1.0], np.array([[1.0]]), [np.nan], "a"]))
        call("PathResult.density", r.density, window, at)
        call("PathResult.density", r.density, window)
        call("PathResult.window_centers", r.window_centers, window)
        call("PathResult.positions_to_points", r.positions_to_points, [0.0, r.length / 2])


@fuzz(300)
@given(data=st.data(), count=st.integers(0, 4))
def test_count_1d_batch(data, count):
    net = data.draw(networks())
    batch = [data.draw(paths(net)) for _ in range(count)]
    closed = data.draw(
        st.one_of(st.booleans(), st.lists(st.booleans(), min_size=count, max_size=count + 1))
    )
    container = data.draw(st.sampled_from([list, tuple]))
    options = data.draw(run_options("max_pieces"))
    b = call("count_1d[batch]", lrcore.count_1d, net, container(batch), closed, **options)
    if b is not None and len(b):
        call("BatchResult[i]", b.__getitem__, data.draw(st.sampled_from([0, -1, 99, 1.0, "0"])))


@st.composite
def planes_for(draw, net: lrcore.Network):
    """(origin, basis): mostly valid planes, some collinear, zero, or broken."""
    d = net.input_dim
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1.0, 1.0, 1e-6, 1e6, 1e-150, 1e100]))
    origin = scale * rng.standard_normal(d)
    basis = scale * rng.standard_normal((2, d))
    kind = draw(
        st.sampled_from(
            ["random"] * 4 + ["collinear", "near-collinear", "zero", "on-hyperplane", "trouble"]
        )
    )
    if kind == "collinear":
        basis[1] = -2.0 * basis[0]
    elif kind == "near-collinear":
        basis[1] = basis[0] + 1e-9 * scale * rng.standard_normal(d)
    elif kind == "zero":
        basis[draw(st.integers(0, 1))] = 0.0
    elif kind == "on-hyperplane":
        origin = on_hyperplane(net, origin, 0)
    elif kind == "trouble":
        return draw(arrays((d,))), draw(arrays((2, d)))
    return origin, basis


DOMAINS = [
    None,
    [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]],  # triangle
    [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0]],  # clockwise
    [[0.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]],  # repeated corner
    [[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]],  # collinear
    [[0.0, 0.0], [1.0, 1.0]],  # two corners
    [[0, 0], [2, 0], [2, 2], [1, 0.5], [0, 2]],  # not convex
    [[1.0, 0.0], [-0.8, 0.6], [0.3, -0.95], [0.3, 0.95], [-0.8, -0.6]],  # a star
    [[0.0, 0.0], [1e-300, 0.0], [0.0, 1e-300]],  # tiny
    [[0.0, 0.0], [np.nan, 0.0], [0.0, 1.0]],
]
BOUNDS = [
    (-1.0, 1.0, -1.0, 1.0),
    (0.0, 1.0, 0.0, 1.0),
    (1.0, -1.0, 0.0, 1.0),
    (0.0, 0.0, 0.0, 1.0),
    (0.0, 1e-12, 0.0, 1e-12),
    (-1e6, 1e6, -1e6, 1e6),
    (0.0, np.inf, 0.0, 1.0),
    (0.0, 1.0),
    None,
    "box",
]


@fuzz(550)
@given(data=st.data())
def test_slice_2d(data):
    net = data.draw(networks())
    origin, basis = data.draw(planes_for(net))
    domain = data.draw(st.sampled_from(DOMAINS))
    bounds = data.draw(st.sampled_from(BOUNDS))
    options = data.draw(run_options("max_regions"))
    form = data.draw(st.sampled_from(["arrays", "plane", "batch"]))
    if form == "arrays":
        args: tuple[Any, ...] = (origin, basis)
    else:
        plane = call("Plane", lrcore.Plane, origin, basis)
        if plane is None:
            return
        args = (plane,) if form == "plane" else ([plane, plane],)
    call("slice_2d", lrcore.slice_2d, net, *args, bounds, domain=domain, **options)


@fuzz(600)
@given(data=st.data(), d=st.integers(1, 4))
def test_plane_through(data, d):
    points = [data.draw(arrays((d,))) for _ in range(3)]
    if data.draw(st.booleans()):
        points[2] = points[0]  # coincident
    call("Plane.through", lrcore.Plane.through, *points)


@fuzz(250)
@given(data=st.data())
def test_slice_methods(data):
    net = data.draw(networks())
    if net.input_dim < 2 or max(net.hidden_sizes, default=0) > 50:
        return
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    plane = (rng.standard_normal(net.input_dim), np.eye(2, net.input_dim))
    r = call("slice_2d", lrcore.slice_2d, net, *plane)
    if r is None:
        return
    for method in ("areas", "centroids", "adjacency"):
        call(f"SliceResult.{method}", getattr, r, method)
    call(
        "SliceResult.linear_regions",
        r.linear_regions,
        data.draw(st.sampled_from([1e-9, 0.0, 1.0])),
    )
    level = data.draw(st.sampled_from([0.0, 1e300, -1.0, float("nan")]))
    output = data.draw(st.sampled_from([0, 1, -1, 5]))
    segments = call("SliceResult.decision_boundary", r.decision_boundary, level, output)
    if segments is not None:
        assert segments.shape[1:] == (2, 2)
    bins = data.draw(st.sampled_from([1, 8, (3, 5), 0, -2, (2,), "b"]))
    call("SliceResult.density_map", r.density_map, bins)
    st_points = data.draw(arrays((data.draw(st.integers(0, 3)), 2)))
    call("SliceResult.to_input", r.to_input, st_points)


@fuzz(600)
@given(data=st.data(), d=st.integers(1, 4), planes=st.integers(0, 2))
def test_plane(data, d, planes):
    origin = data.draw(arrays((d,)))
    basis = data.draw(arrays((2, d)))
    plane = call("Plane", lrcore.Plane, origin, basis)
    if plane is not None:
        call("Plane.to_input", plane.to_input, data.draw(arrays((planes, 2))))


def test_inputs_total(record_property, request):
    """The fuzz tests above together tried at least 10^4 inputs (when all of them ran)."""
    fuzz_tests = {
        name for name, item in globals().items() if name.startswith("test_") and callable(item)
    } - {"test_inputs_total"}
    ran = {item.name for item in request.session.items if item.module is request.module}
    if not fuzz_tests <= ran:
        pytest.skip("only some fuzz tests were selected")
    total = sum(INPUTS.values())
    seconds = time.perf_counter() - STARTED[0] if STARTED else 0.0
    record_property("fuzz_inputs", total)
    record_property("fuzz_seconds", round(seconds, 1))
    merged = ", ".join(f"{count} {name}" for name, count in MERGED.items()) or "none"
    request.config.stash[FUZZ_SUMMARY] = (
        f"fuzz: {total} inputs to {len(INPUTS)} entry points in {seconds:.1f} s: "
        + ", ".join(f"{name} {count}" for name, count in sorted(INPUTS.items()))
        + f"; crossings merged at plane rounding (RoundingWarning): {merged}"
    )
    assert total >= MIN_INPUTS * SCALE, f"only {total} fuzz inputs tried"
