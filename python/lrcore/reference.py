"""Slow, plain-numpy reference for exact linear regions along 1D paths.

This module is a *test oracle*: it computes the same quantities as
:func:`lrcore.count_1d` by a different algorithm, so that the two can be checked
against each other. It imports numpy only (never ``lrcore._core`` or any other
lrcore module) and favours clarity over speed. Benchmarks also use it as the
"numpy walk" baseline.

The algorithm is the sequential walk of docs/design.md §2. Along each segment of the
polyline, from the current point, the network restricted to the current linear
piece is one affine map of the segment parameter, so every hidden neuron's
pre-activation is ``z + tau * c`` there. The nearest sign change of any neuron
ahead is the smallest positive ``-z / c``; the walk steps to it, re-evaluates
the network exactly at the new point and repeats until the segment ends. The
subdivision algorithm of the core instead refines the whole path one layer at a
time, so the two share no code path beyond the arithmetic of an affine layer.

Conventions (the same as the core's, see docs/design.md §1, §2 and §5):

- A neuron's pattern bit is ``pre_activation > 0``: zero counts as inactive.
- ``|z| <= rtol * (||W_j||_2 * ||h||_2 + |b_j|)`` counts as exactly zero, where
  ``h`` is the input of the layer at that point.
- The pattern of a piece is the pattern just after its start point, found one
  layer at a time from the value and the directional derivative: a neuron whose
  value is zero is active on the piece ahead iff its derivative along the path
  is positive. A neuron that only touches zero (at a kink of an earlier layer or
  at a bend of the polyline) and keeps its sign is therefore no breakpoint, and
  one that is zero on a whole piece (the path runs inside its hyperplane) is
  inactive there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Union

import numpy as np

__all__ = [
    "ReferenceWalk",
    "forward_numpy",
    "patterns_numpy",
    "pre_activations_numpy",
    "walk_1d",
]

ActivationSpec = Union[str, Sequence[str]]
SlopeSpec = Union[float, Sequence[float]]

_KNOWN_ACTIVATIONS = ("relu", "leaky_relu")

# Guards against an endless walk if rounding ever stalled progress; a real path
# with this many breakpoints is far beyond what an oracle is meant for.
_MAX_STEPS = 10_000_000


class ReferenceWalk(NamedTuple):
    """Breakpoints of a path found by :func:`walk_1d`.

    One row per *flipping neuron*: when several neurons flip at exactly one
    point (duplicate neurons, a path through a vertex of the arrangement), that
    point appears once per neuron, with the same position, segment and
    consecutive rows, neurons in layer-major order ``(layer, unit)``. Use
    :attr:`breakpoints` for one entry per point.

    Attributes
    ----------
    positions : ndarray of float64, shape (m,)
        Arc-length position of each flip, ascending.
    segment : ndarray of int64, shape (m,)
        Polyline segment holding each flip. A flip exactly at a polyline vertex
        belongs to the segment that starts there (the first one of non-zero
        length); for a closed path a flip at the start point is at position 0.
    neurons : ndarray of int64, shape (m, 2)
        ``(layer, unit)`` of each flipping neuron, ``layer`` counting hidden
        layers from 0.
    piece_patterns : ndarray of bool, shape (num_pieces, num_neurons)
        Pattern of every piece in the order of docs/design.md §2: piece ``i`` lies between
        breakpoints ``i - 1`` and ``i``; for a closed path piece 0 wraps around
        through position 0.
    length : float
        Total arc length, the closing segment included for a closed path.
    closed : bool
        Whether the path was closed.
    """

    positions: np.ndarray
    segment: np.ndarray
    neurons: np.ndarray
    piece_patterns: np.ndarray
    length: float
    closed: bool

    @property
    def breakpoints(self) -> np.ndarray:
        """Distinct breakpoint positions, ascending (one per point)."""
        out: np.ndarray = self.positions[self._first_rows()]
        return out

    @property
    def breakpoint_segment(self) -> np.ndarray:
        """Segment of each distinct breakpoint."""
        out: np.ndarray = self.segment[self._first_rows()]
        return out

    @property
    def flip_offsets(self) -> np.ndarray:
        """CSR offsets (num_breakpoints + 1) of each breakpoint's rows, as in the core."""
        return np.concatenate((self._first_rows(), [self.positions.size])).astype(np.int64)

    @property
    def num_breakpoints(self) -> int:
        """Number of points where the pattern changes."""
        return int(self._first_rows().size)

    @property
    def num_pieces(self) -> int:
        """Number of maximal intervals of constant pattern."""
        return int(self.piece_patterns.shape[0])

    @property
    def num_distinct(self) -> int:
        """Number of distinct patterns among the pieces."""
        return int(np.unique(self.piece_patterns, axis=0).shape[0])

    def _first_rows(self) -> np.ndarray:
        # Rows of one breakpoint share one float position exactly (they come from
        # one step of the walk), so a change of value starts a new breakpoint.
        if self.positions.size == 0:
            return np.zeros(0, dtype=np.int64)
        starts = np.flatnonzero(np.diff(self.positions) != 0) + 1
        return np.concatenate(([0], starts)).astype(np.int64)


def _normalise_layers(
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    activations: ActivationSpec,
    negative_slopes: SlopeSpec,
) -> tuple[list[np.ndarray], list[np.ndarray], list[float]]:
    """Check the layer list and return float64 weights, biases and hidden slopes.

    The slope list holds the factor applied to negative pre-activations of each
    hidden layer: 0 for ReLU, ``negative_slope`` for LeakyReLU.
    """
    if len(weights) != len(biases):
        raise ValueError(f"got {len(weights)} weight matrices but {len(biases)} bias vectors")
    if len(weights) < 1:
        raise ValueError("a network needs at least one layer")
    w_list = [np.asarray(w, dtype=np.float64) for w in weights]
    b_list = [np.asarray(b, dtype=np.float64) for b in biases]
    for layer, (w, b) in enumerate(zip(w_list, b_list)):
        if w.ndim != 2 or b.shape != (w.shape[0],):
            raise ValueError(
                f"layer {layer}: weight shape {w.shape} and bias shape {b.shape} "
                "do not form a dense layer"
            )
        if layer > 0 and w.shape[1] != w_list[layer - 1].shape[0]:
            raise ValueError(
                f"layer {layer}: takes {w.shape[1]} inputs but layer {layer - 1} "
                f"gives {w_list[layer - 1].shape[0]}"
            )
    num_hidden = len(w_list) - 1
    names = [activations] * num_hidden if isinstance(activations, str) else list(activations)
    if np.ndim(negative_slopes) == 0:
        slopes = [float(negative_slopes)] * num_hidden  # type: ignore[arg-type]
    else:
        slopes = [float(a) for a in negative_slopes]  # type: ignore[union-attr]
    if len(names) != num_hidden or len(slopes) != num_hidden:
        raise ValueError(
            f"need one activation and one negative slope per hidden layer ({num_hidden}), "
            f"got {len(names)} and {len(slopes)}"
        )
    factors = []
    for layer, (name, slope) in enumerate(zip(names, slopes)):
        if name not in _KNOWN_ACTIVATIONS:
            raise ValueError(f"layer {layer}: unknown activation {name!r}")
        factors.append(slope if name == "leaky_relu" else 0.0)
    return w_list, b_list, factors


def pre_activations_numpy(
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    x: np.ndarray,
    activations: ActivationSpec = "relu",
    negative_slopes: SlopeSpec = 0.01,
) -> list[np.ndarray]:
    """Pre-activations of every hidden layer, in plain numpy.

    Parameters
    ----------
    weights, biases : sequences of arrays
        Dense layers, ``weights[l]`` of shape ``(out_l, in_l)``; an activation
        follows every layer but the last.
    x : array_like, shape (n, d)
        Input points.
    activations : str or sequence of str
        ``"relu"`` or ``"leaky_relu"``, one for all hidden layers or one each.
    negative_slopes : float or sequence of float
        Slope of LeakyReLU for negative inputs (ignored for ReLU).

    Returns
    -------
    list of ndarray
        One ``(n, width_l)`` array per hidden layer.

    Examples
    --------
    >>> w = [np.array([[1.0], [-1.0]]), np.array([[1.0, 1.0]])]
    >>> b = [np.zeros(2), np.zeros(1)]
    >>> pre_activations_numpy(w, b, np.array([[2.0]]))[0]
    array([[ 2., -2.]])
    """
    w_list, b_list, factors = _normalise_layers(weights, biases, activations, negative_slopes)
    h = np.asarray(x, dtype=np.float64)
    result = []
    for w, b, factor in zip(w_list, b_list, factors):
        z = h @ w.T + b
        result.append(z)
        h = np.where(z > 0, z, factor * z)
    return result


def forward_numpy(
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    x: np.ndarray,
    activations: ActivationSpec = "relu",
    negative_slopes: SlopeSpec = 0.01,
) -> np.ndarray:
    """Network output in plain numpy; arguments as in :func:`pre_activations_numpy`.

    Examples
    --------
    >>> w = [np.array([[1.0], [-1.0]]), np.array([[1.0, 1.0]])]
    >>> b = [np.zeros(2), np.zeros(1)]
    >>> forward_numpy(w, b, np.array([[-3.0]]))
    array([[3.]])
    """
    w_list, b_list, factors = _normalise_layers(weights, biases, activations, negative_slopes)
    h = np.asarray(x, dtype=np.float64)
    hidden = pre_activations_numpy(weights, biases, x, activations, negative_slopes)
    if hidden:
        z = hidden[-1]
        h = np.where(z > 0, z, factors[-1] * z)
    out: np.ndarray = h @ w_list[-1].T + b_list[-1]
    return out


def patterns_numpy(
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    x: np.ndarray,
    activations: ActivationSpec = "relu",
    negative_slopes: SlopeSpec = 0.01,
) -> np.ndarray:
    """Activation patterns ``pre_activation > 0``, hidden layers concatenated.

    Returns an ``(n, num_neurons)`` bool array; arguments as in
    :func:`pre_activations_numpy`.
    """
    pre = pre_activations_numpy(weights, biases, x, activations, negative_slopes)
    if not pre:
        return np.zeros((np.asarray(x).shape[0], 0), dtype=bool)
    return np.concatenate(pre, axis=1) > 0


class _Piece(NamedTuple):
    """The network on the piece just ahead of a point, one entry per hidden layer."""

    active: list[np.ndarray]  # pattern on the piece ahead
    value: list[np.ndarray]  # pre-activation at the point
    slope: list[np.ndarray]  # derivative along the segment parameter, on the piece ahead
    moving: list[np.ndarray]  # derivative not zero within tolerance


def _piece_ahead(
    w_list: list[np.ndarray],
    b_list: list[np.ndarray],
    row_norms: list[np.ndarray],
    factors: list[float],
    point: np.ndarray,
    direction: np.ndarray,
    rtol: float,
    forced_zero: dict[int, np.ndarray] | None = None,
) -> _Piece:
    """Evaluate the hidden layers at ``point`` and on the piece ahead along ``direction``.

    ``forced_zero`` maps a layer to units known to cross zero exactly here (the
    neurons the walk stepped to), so that their value counts as zero even if
    rounding put it just outside the tolerance.
    """
    h = point
    dh = direction
    active, value, slope, moving = [], [], [], []
    for layer, (w, b, norms, factor) in enumerate(zip(w_list, b_list, row_norms, factors)):
        # Value and derivative in one product: the walk's only real arithmetic.
        zc = w @ np.stack((h, dh), axis=1)
        z = zc[:, 0] + b
        c = zc[:, 1]
        at_zero = np.abs(z) <= rtol * (norms * np.linalg.norm(h) + np.abs(b))
        if forced_zero is not None and layer in forced_zero:
            at_zero[forced_zero[layer]] = True
        is_moving = np.abs(c) > rtol * norms * np.linalg.norm(dh)
        # A neuron at zero is active ahead iff it rises; one that stays at zero
        # on the whole piece is inactive (zero counts as inactive).
        on = np.where(at_zero, is_moving & (c > 0), z > 0)
        gain = np.where(on, 1.0, factor)
        h = gain * z
        dh = gain * np.where(is_moving, c, 0.0)
        active.append(on)
        value.append(z)
        slope.append(c)
        moving.append(is_moving)
    return _Piece(active, value, slope, moving)


def _nearest_crossing(piece: _Piece) -> tuple[float, dict[int, np.ndarray]]:
    """Smallest parameter step to a sign change ahead, and the neurons changing there.

    Returns ``(inf, {})`` when no neuron changes sign on the affine piece ahead.
    """
    best = np.inf
    steps_per_layer = []
    for on, z, c, is_moving in zip(piece.active, piece.value, piece.slope, piece.moving):
        # Active and falling, or inactive and rising: crosses at z + tau c = 0.
        # Such a neuron is never at zero here (see _piece_ahead), so tau > 0.
        crossing = is_moving & np.where(on, c < 0, c > 0)
        steps = np.full(z.shape, np.inf)
        steps[crossing] = -z[crossing] / c[crossing]
        steps_per_layer.append(steps)
        if steps.size:
            best = min(best, float(steps.min()))
    if not np.isfinite(best):
        return best, {}
    at_best = {
        layer: np.flatnonzero(steps == best)
        for layer, steps in enumerate(steps_per_layer)
        if np.any(steps == best)
    }
    return best, at_best


def _flat_pattern(piece: _Piece) -> np.ndarray:
    if not piece.active:
        return np.zeros(0, dtype=bool)
    return np.concatenate(piece.active)


def _flips(
    before: np.ndarray, after: np.ndarray, layer_of: np.ndarray, unit_of: np.ndarray
) -> np.ndarray:
    changed = np.flatnonzero(before != after)
    return np.stack((layer_of[changed], unit_of[changed]), axis=1)


def walk_1d(
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    path: np.ndarray,
    closed: bool = False,
    activations: ActivationSpec = "relu",
    negative_slopes: SlopeSpec = 0.01,
    rtol: float = 1e-10,
) -> ReferenceWalk:
    """Exact breakpoints of a ReLU/LeakyReLU network along a polyline, by walking.

    A slow test oracle for :func:`lrcore.count_1d` (see the module docstring for
    the algorithm and the conventions). Cost is one forward pass per breakpoint.

    Parameters
    ----------
    weights, biases : sequences of arrays
        Dense layers, ``weights[l]`` of shape ``(out_l, in_l)`` (torch layout);
        an activation follows every layer but the last.
    path : array_like, shape (n, d)
        Polyline vertices, ``n >= 2``. Zero-length segments are allowed.
    closed : bool
        Join the last vertex back to the first.
    activations : str or sequence of str
        ``"relu"`` or ``"leaky_relu"``, one for all hidden layers or one each.
    negative_slopes : float or sequence of float
        LeakyReLU slope for negative inputs (ignored for ReLU).
    rtol : float
        Relative tolerance below which a pre-activation counts as zero.

    Returns
    -------
    ReferenceWalk
        One row per flipping neuron. A point where several neurons flip gives
        several rows with one position; a bend of the polyline is a breakpoint
        only if the pattern differs on its two sides.

    Examples
    --------
    >>> w = [np.array([[1.0], [1.0]]), np.ones((1, 2))]
    >>> b = [np.array([0.0, -1.0]), np.zeros(1)]
    >>> walk = walk_1d(w, b, np.array([[-1.0], [2.0]]))
    >>> walk.positions, walk.neurons.tolist()
    (array([1., 2.]), [[0, 0], [0, 1]])
    """
    w_list, b_list, factors = _normalise_layers(weights, biases, activations, negative_slopes)
    points = np.asarray(path, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] < 2:
        raise ValueError(f"path must have shape (n >= 2, d), got {points.shape}")
    if points.shape[1] != w_list[0].shape[1]:
        raise ValueError(
            f"path has dimension {points.shape[1]}, the network takes {w_list[0].shape[1]}"
        )
    if not np.all(np.isfinite(points)):
        raise ValueError("path holds NaN or Inf")
    hidden_w, hidden_b = w_list[:-1], b_list[:-1]
    row_norms = [np.linalg.norm(w, axis=1) for w in hidden_w]
    widths = [w.shape[0] for w in hidden_w]
    layer_of = np.repeat(np.arange(len(widths), dtype=np.int64), widths)
    unit_of = np.concatenate([np.arange(k, dtype=np.int64) for k in widths] or [np.zeros(0, int)])

    starts = points
    ends = np.roll(points, -1, axis=0) if closed else points[1:]
    starts = starts[: ends.shape[0]]
    directions = ends - starts
    seg_lengths = np.linalg.norm(directions, axis=1)
    seg_offsets = np.concatenate(([0.0], np.cumsum(seg_lengths)))
    length = float(seg_offsets[-1])
    walked = np.flatnonzero(seg_lengths > 0)

    def ahead(
        point: np.ndarray,
        direction: np.ndarray,
        forced: dict[int, np.ndarray] | None = None,
    ) -> _Piece:
        return _piece_ahead(hidden_w, hidden_b, row_norms, factors, point, direction, rtol, forced)

    if walked.size == 0:
        # All vertices coincide: one piece, the pattern of the point itself.
        still = ahead(points[0], np.zeros(points.shape[1]))
        return ReferenceWalk(
            np.zeros(0),
            np.zeros(0, dtype=np.int64),
            np.zeros((0, 2), dtype=np.int64),
            _flat_pattern(still)[None, :],
            length,
            bool(closed),
        )

    positions: list[np.ndarray] = []
    segments: list[np.ndarray] = []
    neurons: list[np.ndarray] = []
    patterns = []
    current = None
    steps = 0
    for seg in walked:
        start, direction = starts[seg], directions[seg]
        piece = ahead(start, direction)
        pattern = _flat_pattern(piece)
        if current is None:
            patterns.append(pattern)
        elif np.any(pattern != current):
            # A bend of the polyline (or a crossing exactly at the vertex).
            flipped = _flips(current, pattern, layer_of, unit_of)
            positions.append(np.full(len(flipped), seg_offsets[seg]))
            segments.append(np.full(len(flipped), seg, dtype=np.int64))
            neurons.append(flipped)
            patterns.append(pattern)
        current = pattern
        t = 0.0
        while True:
            step, crossing = _nearest_crossing(piece)
            t_next = t + step
            if not t_next < 1.0:
                break
            steps += 1
            if steps > _MAX_STEPS:
                raise RuntimeError("reference walk did not finish; too many steps")
            piece = ahead(start + t_next * direction, direction, crossing)
            pattern = _flat_pattern(piece)
            if np.any(pattern != current):
                flipped = _flips(current, pattern, layer_of, unit_of)
                position = seg_offsets[seg] + t_next * seg_lengths[seg]
                positions.append(np.full(len(flipped), position))
                segments.append(np.full(len(flipped), seg, dtype=np.int64))
                neurons.append(flipped)
                patterns.append(pattern)
                current = pattern
            t = t_next

    if closed and np.any(current != patterns[0]):
        # The pattern arriving back at the start differs from the one leaving it:
        # a breakpoint at position 0, and the wrapping piece 0 has the arrival
        # pattern (docs/design.md §2), the departing one moving to piece 1.
        assert current is not None  # a path with positive length has a first piece
        flipped = _flips(current, patterns[0], layer_of, unit_of)
        positions.insert(0, np.zeros(len(flipped)))
        segments.insert(0, np.full(len(flipped), walked[0], dtype=np.int64))
        neurons.insert(0, flipped)
        patterns.insert(0, patterns.pop())
    elif closed and len(patterns) > 1:
        # Arrival and departure share a pattern: the last piece and the first are
        # one piece through position 0.
        patterns.pop()

    return ReferenceWalk(
        np.concatenate(positions) if positions else np.zeros(0),
        np.concatenate(segments) if segments else np.zeros(0, dtype=np.int64),
        np.concatenate(neurons) if neurons else np.zeros((0, 2), dtype=np.int64),
        np.array(patterns, dtype=bool).reshape(len(patterns), layer_of.size),
        length,
        bool(closed),
    )
