"""Shared helpers for the tests: random networks and paths, the oracle, comparisons.

Only numpy and hypothesis here, so that the oracle's own tests run before the
compiled core is built.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st


def _load_reference():
    # The oracle must be testable without the compiled core: load the module from
    # the source tree when importing the package fails (core not built yet).
    try:
        from lrcore import reference
    except ImportError:
        source = Path(__file__).resolve().parents[1] / "python" / "lrcore" / "reference.py"
        spec = importlib.util.spec_from_file_location("lrcore_reference_source", source)
        assert spec is not None
        assert spec.loader is not None
        reference = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(reference)
    return reference


reference = _load_reference()

#: Where the fuzz tests leave their one-line summary for the terminal report (conftest).
FUZZ_SUMMARY = pytest.StashKey[str]()


@dataclass(frozen=True)
class NetSpec:
    """A dense network as plain arrays, with its activation settings."""

    weights: tuple[np.ndarray, ...]
    biases: tuple[np.ndarray, ...]
    activation: str = "relu"
    negative_slope: float = 0.01

    @property
    def input_dim(self) -> int:
        return int(self.weights[0].shape[1])

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        return tuple(int(w.shape[0]) for w in self.weights[:-1])

    @property
    def num_neurons(self) -> int:
        return sum(self.hidden_sizes)

    def with_layers(self, weights, biases) -> NetSpec:
        return replace(self, weights=tuple(weights), biases=tuple(biases))

    def walk(self, path, closed=False):
        """The oracle's breakpoints for this network along ``path``."""
        return reference.walk_1d(
            list(self.weights),
            list(self.biases),
            path,
            closed=closed,
            activations=self.activation,
            negative_slopes=self.negative_slope,
        )

    def patterns(self, x) -> np.ndarray:
        return reference.patterns_numpy(
            list(self.weights), list(self.biases), x, self.activation, self.negative_slope
        )

    def pre_activations(self, x) -> list[np.ndarray]:
        return reference.pre_activations_numpy(
            list(self.weights), list(self.biases), x, self.activation, self.negative_slope
        )

    def forward(self, x) -> np.ndarray:
        return reference.forward_numpy(
            list(self.weights), list(self.biases), x, self.activation, self.negative_slope
        )

    def to_lrcore(self):
        import lrcore

        return lrcore.Network(
            list(self.weights),
            list(self.biases),
            activation=self.activation,
            negative_slope=self.negative_slope,
        )


def random_net(
    sizes, seed: int, activation: str = "relu", negative_slope: float = 0.01
) -> NetSpec:
    """Torch-default initialisation: W, b ~ U(-1/sqrt(in), 1/sqrt(in))."""
    rng = np.random.default_rng(seed)
    weights, biases = [], []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        weights.append(rng.uniform(-bound, bound, size=(fan_out, fan_in)))
        biases.append(rng.uniform(-bound, bound, size=fan_out))
    return NetSpec(tuple(weights), tuple(biases), activation, negative_slope)


def random_path(d: int, num_points: int, seed: int, scale: float = 3.0) -> np.ndarray:
    """Gaussian polyline vertices; the scale puts tens of breakpoints on a typical path."""
    return scale * np.random.default_rng(seed).standard_normal((num_points, d))


seeds = st.integers(0, 2**32 - 1)
activations = st.sampled_from(["relu", "leaky_relu"])


@st.composite
def nets(draw, min_hidden=1, max_hidden=4, min_width=3, max_width=40, max_dim=6, leaky=True):
    """Random dense networks: input dims from 1, 1-4 hidden layers, one output."""
    d = draw(st.integers(1, max_dim))
    widths = draw(
        st.lists(st.integers(min_width, max_width), min_size=min_hidden, max_size=max_hidden)
    )
    activation = draw(activations) if leaky else "relu"
    slope = draw(st.sampled_from([0.01, 0.2, -0.5])) if activation == "leaky_relu" else 0.01
    return random_net([d, *widths, 1], draw(seeds), activation, slope)


def nudged_integer_layers(
    draw, nudges: tuple[int, int], exponents: tuple[int, int], last_layer: bool
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Weights and biases of a small integer 2 -> ... -> 1 net, a few entries moved by 10^-k.

    ``draw`` is a hypothesis ``draw``; between ``nudges[0]`` and ``nudges[1]`` entries move,
    each by ``+-10^-k`` with ``k`` in ``exponents``, in any layer or (``last_layer``
    False) any but the last. Integer nets abound in concurrent, parallel and coincident
    lines; the nudges make lines that nearly meet.
    """
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    widths = [2] + [draw(st.integers(2, 4)) for _ in range(draw(st.integers(1, 2)))] + [1]
    weights = [rng.integers(-2, 3, (b, a)).astype(float) for a, b in zip(widths, widths[1:])]
    biases = [rng.integers(-1, 2, b).astype(float) * 0.5 for b in widths[1:]]
    layers = len(weights) if last_layer else len(weights) - 1
    for _ in range(draw(st.integers(*nudges))):
        layer = int(rng.integers(0, layers))
        nudge = float(rng.choice([-1.0, 1.0])) * 10.0 ** -draw(st.integers(*exponents))
        if rng.random() < 0.5:
            w = weights[layer]
            w[rng.integers(0, w.shape[0]), rng.integers(0, w.shape[1])] += nudge
        else:
            b = biases[layer]
            b[rng.integers(0, b.shape[0])] += nudge
    return weights, biases


@st.composite
def paths_for(draw, d: int, min_points=2, max_points=6):
    return random_path(d, draw(st.integers(min_points, max_points)), draw(seeds))


# --- Geometry of polylines (independent of lrcore's positions_to_points) ---------------


def closed_points(path: np.ndarray, closed: bool) -> np.ndarray:
    """The vertex list with the first point repeated at the end for a closed path."""
    return np.vstack([path, path[:1]]) if closed else np.asarray(path, dtype=float)


def vertex_positions(path: np.ndarray, closed: bool) -> np.ndarray:
    """Arc-length position of every vertex (the closing one included when closed)."""
    points = closed_points(path, closed)
    return np.concatenate(([0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))))


def points_at(path: np.ndarray, closed: bool, positions) -> np.ndarray:
    """Points at arc-length ``positions`` (wrapped modulo the length when closed)."""
    points = closed_points(path, closed)
    offsets = vertex_positions(path, closed)
    length = offsets[-1]
    s = np.asarray(positions, dtype=float)
    s = np.mod(s, length) if closed else np.clip(s, 0.0, length)
    lengths = np.diff(offsets)
    # Zero-length segments can never hold a position strictly inside them.
    seg = np.searchsorted(offsets, s, side="right") - 1
    seg = np.clip(seg, 0, len(lengths) - 1)
    while np.any(lengths[seg] == 0):
        seg = np.where(lengths[seg] == 0, seg - 1, seg)
    frac = (s - offsets[seg]) / lengths[seg]
    return points[seg] + frac[:, None] * (points[seg + 1] - points[seg])


# --- Comparing breakpoint lists -------------------------------------------------------


def flips_of_result(r) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position, segment, neuron) per flipping neuron of an lrcore PathResult."""
    counts = np.diff(r.flip_offsets)
    return (
        np.repeat(r.breakpoints, counts),
        np.repeat(r.segment, counts),
        np.asarray(r.flip_neurons).reshape(-1, 2),
    )


def assert_same_flips(
    positions_a,
    neurons_a,
    positions_b,
    neurons_b,
    length: float,
    closed: bool,
    rtol: float = 1e-9,
    what: str = "",
):
    """Assert two lists of (position, neuron) flips agree, each neuron's flips in order.

    Positions agree to ``rtol * length`` (circularly for closed paths). Sorting by
    neuron first keeps the pairing stable when distinct neurons flip at nearly the
    same place.
    """
    neurons_a = np.asarray(neurons_a, dtype=np.int64).reshape(-1, 2)
    neurons_b = np.asarray(neurons_b, dtype=np.int64).reshape(-1, 2)
    positions_a = np.asarray(positions_a, dtype=float)
    positions_b = np.asarray(positions_b, dtype=float)
    assert len(positions_a) == len(positions_b), (
        f"{what}: {len(positions_a)} flips vs {len(positions_b)}\n"
        f"a: {list(zip(positions_a.tolist(), neurons_a.tolist()))}\n"
        f"b: {list(zip(positions_b.tolist(), neurons_b.tolist()))}"
    )
    if closed and length > 0:
        positions_a = np.mod(positions_a, length)
        positions_b = np.mod(positions_b, length)
    order_a = np.lexsort((positions_a, neurons_a[:, 1], neurons_a[:, 0]))
    order_b = np.lexsort((positions_b, neurons_b[:, 1], neurons_b[:, 0]))
    np.testing.assert_array_equal(neurons_a[order_a], neurons_b[order_b], err_msg=what)
    gap = np.abs(positions_a[order_a] - positions_b[order_b])
    if closed:
        gap = np.minimum(gap, length - gap)
    assert np.all(gap <= rtol * max(length, 1.0)), (
        f"{what}: positions differ by up to {gap.max()} (length {length})"
    )


def piece_bounds(breakpoints: np.ndarray, length: float, closed: bool) -> np.ndarray:
    """(num_pieces, 2) start and end position of each piece in API order.

    For a closed path piece 0 wraps: its start is the last breakpoint and its end
    the first one plus the length.
    """
    k = len(breakpoints)
    if not closed:
        edges = np.concatenate(([0.0], breakpoints, [length]))
        return np.stack((edges[:-1], edges[1:]), axis=1)
    if k == 0:
        return np.array([[0.0, length]])
    starts = np.concatenate(([breakpoints[-1] - length], breakpoints[:-1]))
    return np.stack((starts, breakpoints), axis=1)


def flat_neuron_index(neurons, hidden_sizes) -> np.ndarray:
    """Layer-major index of each (layer, unit) pair, the column order of patterns."""
    neurons = np.asarray(neurons, dtype=np.int64).reshape(-1, 2)
    offsets = np.concatenate(([0], np.cumsum(hidden_sizes))).astype(np.int64)
    return offsets[neurons[:, 0]] + neurons[:, 1]


def check_against_sampling(
    spec: NetSpec,
    path: np.ndarray,
    closed: bool,
    breakpoints: np.ndarray,
    flip_offsets: np.ndarray,
    flip_neurons: np.ndarray,
    piece_patterns: np.ndarray,
    num_samples: int = 20_000,
) -> None:
    """Check a breakpoint list against plain evaluation of the network along the path.

    - every piece's midpoint has the piece's pattern;
    - the patterns just before and after each breakpoint differ in exactly the
      neurons reported to flip there;
    - every one of ``num_samples`` points along the path has the pattern of the
      piece holding it, so dense sampling never sees more changes than reported.

    Points within a relative 1e-9 of a breakpoint, and pieces shorter than 1e-8 of
    the length, are left out: their patterns are below rounding.
    """
    length = vertex_positions(path, closed)[-1]
    breakpoints = np.asarray(breakpoints, dtype=float)
    k = len(breakpoints)
    assert np.all(np.diff(breakpoints) > 0), "breakpoints must be strictly ascending"
    assert np.all(breakpoints >= 0)
    assert np.all(breakpoints <= length)
    assert len(flip_offsets) == k + 1
    assert piece_patterns.shape == (
        max(k, 1) if closed else k + 1,
        spec.num_neurons,
    ), "piece count: open paths have k + 1 pieces, closed ones max(k, 1)"

    bounds = piece_bounds(breakpoints, length, closed)
    long_pieces = np.flatnonzero(bounds[:, 1] - bounds[:, 0] > 1e-8 * length)
    if long_pieces.size:
        middles = bounds[long_pieces].mean(axis=1)
        np.testing.assert_array_equal(
            spec.patterns(points_at(path, closed, middles)),
            piece_patterns[long_pieces],
            err_msg="pattern at a piece's midpoint differs from the piece's reported pattern",
        )

    flat = flat_neuron_index(flip_neurons, spec.hidden_sizes)
    for i, position in enumerate(breakpoints):
        expected = np.sort(flat[flip_offsets[i] : flip_offsets[i + 1]])
        assert expected.size >= 1, "a breakpoint must have at least one flipping neuron"
        neighbours = np.delete(breakpoints, i)
        if closed:
            gaps = np.abs(neighbours - position)
            gaps = np.minimum(gaps, length - gaps)
            gap = min(gaps.min(initial=length), length)
        else:
            gap = np.abs(neighbours - position).min(initial=length)
            gap = min(gap, position, length - position)
        eps = min(1e-7 * length, 0.25 * gap)
        if eps < 1e-11 * length:
            continue
        sides = spec.patterns(points_at(path, closed, [position - eps, position + eps]))
        changed = np.flatnonzero(sides[0] != sides[1])
        np.testing.assert_array_equal(
            changed, expected, err_msg=f"neurons flipping at breakpoint {i} ({position})"
        )

    # An irrational offset keeps the samples off designed vertices and hyperplanes.
    stride = length / num_samples
    samples = (np.arange(num_samples) + 0.5 / np.sqrt(2.0)) * stride
    if k:
        nearest = np.abs(samples[:, None] - breakpoints[None, :]).min(axis=1)
        if closed:
            nearest = np.minimum(nearest, length - nearest)
        samples = samples[nearest > 1e-9 * length]
    piece_of = np.searchsorted(breakpoints, samples, side="right")
    if closed:
        piece_of = piece_of % max(k, 1)
    sampled = spec.patterns(points_at(path, closed, samples))
    wrong = np.flatnonzero(np.any(sampled != piece_patterns[piece_of], axis=1))
    assert wrong.size == 0, (
        f"{wrong.size} of {len(samples)} sampled points disagree with their piece's "
        f"pattern, first at position {samples[wrong[0]] if wrong.size else None}"
    )
    changes = int(np.any(sampled[1:] != sampled[:-1], axis=1).sum())
    assert changes <= k, f"sampling sees {changes} pattern changes, only {k} reported"
