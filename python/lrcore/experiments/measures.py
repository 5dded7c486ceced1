"""Measures of the curvature study beyond breakpoint counts (issue 15).

Pure functions of a :class:`lrcore.Network` and a path or plane curve, each exact where
lrcore's partitions are exact:

- :func:`slope_jumps`: the jump ``|Δ ∂f/∂s|`` of the network's slope along a path at each
  breakpoint, from the affine maps of the pieces on both sides;
  :func:`interpolant_slope_jumps` gives the same measure for sampled values (a target)
  along the path, for comparison.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lrcore import DEFAULT_RTOL, Network, PathResult, count_1d
from lrcore._validation import as_float_array, check_positive

__all__ = [
    "SlopeJumps",
    "interpolant_slope_jumps",
    "slope_jumps",
]

FloatArray = NDArray[np.float64]


# -- helpers ------------------------------------------------------------------------------
def _apply(weight: Any, rows: FloatArray) -> FloatArray:
    """``rows @ weight.T`` for a dense or scipy-sparse ``(out, in)`` weight."""
    out: FloatArray = np.ascontiguousarray(np.asarray(weight @ rows.T, dtype=np.float64).T)
    return out


def _pattern_slopes(
    net: Network, patterns: NDArray[np.bool_], directions: FloatArray
) -> FloatArray:
    """Directional derivatives ``J_p t`` of the output for given activation patterns.

    ``patterns`` is ``(m, num_neurons)`` (pre-activation > 0), ``directions`` ``(m, d)``;
    returns ``(m, output_dim)``: the derivative of the affine map the network is on the
    region of each pattern, along each direction (float64).
    """
    weights = net.weights
    offsets = net.neuron_offsets()
    v = directions
    for layer, slope in enumerate(net.negative_slopes):
        v = _apply(weights[layer], v)
        bits = patterns[:, offsets[layer] : offsets[layer + 1]]
        v[:, : bits.shape[1]] *= np.where(bits, 1.0, slope)  # linear units pass through
    return _apply(weights[-1], v)


def _segment_tangents(points: FloatArray, closed: bool) -> FloatArray:
    """Unit direction of every segment of a polyline (the closing one last when closed)."""
    pts = np.vstack([points, points[:1]]) if closed else points
    steps = np.diff(pts, axis=0)
    norms = np.linalg.norm(steps, axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(norms > 0, steps / np.where(norms > 0, norms, 1.0), 0.0)
    return out


def _window_sums(
    positions: FloatArray,
    weights: FloatArray,
    length: float,
    closed: bool,
    window: float,
    at: ArrayLike | None,
) -> tuple[FloatArray, FloatArray]:
    """Sum of ``weights`` at sorted ``positions`` per unit length in windows (centres,
    densities): the windows of :meth:`lrcore.PathResult.density` (wrapping on closed
    paths, clipped to ``[0, length]`` on open ones, ends included)."""
    window = check_positive(window, "window")
    if at is None:
        count = max(1, int(np.floor(length / window + 1e-9)))
        centres: FloatArray = window / 2 + window * np.arange(count, dtype=np.float64)
    else:
        centres = np.atleast_1d(as_float_array(at, "at"))
        if centres.ndim != 1:
            msg = f"at: expected a 1-d array of positions, got shape {centres.shape}"
            raise ValueError(msg)
    lo, hi = centres - window / 2, centres + window / 2
    if closed and length > 0:
        if window >= length:
            return centres, np.full(centres.shape, weights.sum() / length)
        pos = np.concatenate([positions - length, positions, positions + length])
        w = np.tile(weights, 3)
        width = np.full(centres.shape, window)
    else:
        pos, w = positions, weights
        lo, hi = np.clip(lo, 0.0, length), np.clip(hi, 0.0, length)
        width = hi - lo
    cumulative = np.concatenate([[0.0], np.cumsum(w)])
    sums = (
        cumulative[np.searchsorted(pos, hi, "right")]
        - cumulative[np.searchsorted(pos, lo, "left")]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        density: FloatArray = np.where(width > 0, sums / np.where(width > 0, width, 1.0), np.nan)
    return centres, density


# -- slope jumps --------------------------------------------------------------------------
@dataclass(frozen=True)
class SlopeJumps:
    """Slopes ``∂f/∂s`` along a path on both sides of each of its kinks.

    Attributes
    ----------
    positions
        ``(k,)`` arc length of each kink (a breakpoint of the network, or a vertex of a
        sampled function), sorted.
    before, after
        ``(k, output_dim)`` slope of the output along the path just before and just after
        each kink, both along the same tangent (see :func:`slope_jumps`).
    length
        Length of the path (including the closing segment when closed).
    closed
        Whether the path is closed (windows wrap around).
    """

    positions: FloatArray
    before: FloatArray
    after: FloatArray
    length: float
    closed: bool

    @property
    def jumps(self) -> FloatArray:
        """``(k,)`` size of each jump: ``|after - before|`` (Euclidean norm over outputs)."""
        out: FloatArray = np.linalg.norm(self.after - self.before, axis=1)
        return out

    @property
    def total(self) -> float:
        """Sum of the jumps: the total variation of the slope along the path."""
        return float(self.jumps.sum())

    def density(self, window: float, at: ArrayLike | None = None) -> tuple[FloatArray, FloatArray]:
        """Sum of the jumps per unit length in windows of width ``window``.

        Windows are those of :meth:`lrcore.PathResult.density` (centred at ``at``, default
        ``window/2 + window * arange(floor(length / window))``; wrapping on a closed path,
        clipped on an open one). Returns ``(centres, density)``. For a smooth function
        sampled finely, this is the window mean of ``|∂²f/∂s²|``.
        """
        return _window_sums(self.positions, self.jumps, self.length, self.closed, window, at)


def slope_jumps(
    net: Network,
    path: ArrayLike,
    closed: bool = False,
    *,
    result: PathResult | None = None,
    rtol: float = DEFAULT_RTOL,
    num_threads: int | None = None,
) -> SlopeJumps:
    """The jump of the network's slope along a path at each of its breakpoints.

    At breakpoint ``b`` on polyline segment ``i`` of unit direction ``t_i``, the network is
    the affine map ``x -> J_- x + c_-`` on the piece before and ``J_+ x + c_+`` after;
    the slopes along the path are ``J_- t_i`` and ``J_+ t_i`` and the jump is
    ``|(J_+ - J_-) t_i|``. Both slopes use the same tangent, so a breakpoint that falls on
    a vertex of the polyline does not count the path's own kink there. The Jacobians
    come from the pieces' activation patterns (exact, float64): a neuron that flips
    without changing the output (dead downstream) gives a jump of 0.

    Parameters
    ----------
    net
        The network (any output dimension; the jump is the Euclidean norm over outputs).
    path
        ``(n, d)`` polyline.
    closed
        Whether the last point joins the first.
    result
        ``count_1d(net, path, closed, return_patterns=True)`` when already computed (it
        must be of this net and path, with patterns).
    rtol, num_threads
        Passed to :func:`lrcore.count_1d` when ``result`` is None.

    Returns
    -------
    SlopeJumps
        Positions of the breakpoints and the slopes on both sides.

    Examples
    --------
    >>> import numpy as np, lrcore
    >>> net = lrcore.Network([np.array([[1.0, 0.0]]), np.array([[3.0]])], [[0.0], [0.0]])
    >>> sj = slope_jumps(net, np.array([[-1.0, 0.0], [1.0, 0.0]]))
    >>> sj.positions.tolist(), sj.jumps.tolist()
    ([1.0], [3.0])
    """
    if not isinstance(net, Network):
        msg = f"net: expected an lrcore.Network, got {type(net).__name__}"
        raise TypeError(msg)
    if result is None:
        result = count_1d(
            net, path, bool(closed), rtol=rtol, return_patterns=True, num_threads=num_threads
        )
    elif not isinstance(result, PathResult):
        msg = f"result: expected a PathResult of count_1d, got {type(result).__name__}"
        raise TypeError(msg)
    if result.patterns is None:
        msg = "result: needs the pieces' patterns: count_1d(..., return_patterns=True)"
        raise ValueError(msg)
    points = result.points
    given = as_float_array(path, "path")
    if result.closed != bool(closed) or not np.array_equal(points, given):
        msg = "result: was computed for another path (or another value of closed)"
        raise ValueError(msg)
    k = result.num_breakpoints
    out_dim = net.output_dim
    if k == 0:
        empty = np.zeros((0, out_dim))
        return SlopeJumps(np.zeros(0), empty, empty.copy(), result.length, result.closed)
    patterns = result.piece_patterns_bool()
    # Piece i lies between breakpoints i - 1 and i; on a closed path piece 0 runs from the
    # last breakpoint through the start, so breakpoint i is followed by piece (i+1) % k.
    index = np.arange(k)
    following = (index + 1) % result.num_pieces
    tangents = _segment_tangents(points, result.closed)[result.segment]
    both = _pattern_slopes(
        net,
        np.concatenate([patterns[index], patterns[following]]),
        np.concatenate([tangents, tangents]),
    )
    return SlopeJumps(result.breakpoints.copy(), both[:k], both[k:], result.length, result.closed)


def interpolant_slope_jumps(
    points: ArrayLike, values: ArrayLike, closed: bool = False
) -> SlopeJumps:
    """Slope jumps of the piecewise-linear interpolant of values sampled at a polyline's
    vertices (a target along a trajectory), for comparison with :func:`slope_jumps`.

    The interpolant's slope on segment ``i`` is ``(v[i+1] - v[i]) / |x[i+1] - x[i]|``; it
    jumps at every interior vertex (every vertex of a closed polyline). For a smooth
    function sampled finely, :meth:`SlopeJumps.density` then approximates the window mean
    of ``|∂²f/∂s²|``, the bending a piecewise-linear fit must follow. Zero-length
    segments are skipped; NaN values give NaN jumps.

    Parameters
    ----------
    points
        ``(n, d)`` polyline.
    values
        ``(n,)`` or ``(n, m)`` values at its vertices.
    closed
        Whether the last point joins the first.

    Returns
    -------
    SlopeJumps
        Kinks at the vertices (arc length), one output column per value column.

    Examples
    --------
    >>> x = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> interpolant_slope_jumps(x, [0.0, 1.0, 1.0, 3.0]).jumps.tolist()
    [1.0, 2.0]
    """
    pts = as_float_array(points, "points", ndim=2)
    vals = as_float_array(values, "values", finite=False)
    if vals.ndim == 1:
        vals = vals[:, None]
    if vals.ndim != 2 or vals.shape[0] != pts.shape[0]:
        msg = f"values: expected {pts.shape[0]} values (one per point), got shape {vals.shape}"
        raise ValueError(msg)
    keep = np.ones(pts.shape[0], dtype=bool)
    keep[1:] = np.any(pts[1:] != pts[:-1], axis=1)
    if closed and keep.sum() > 1 and np.all(pts[keep][-1] == pts[0]):
        keep[np.flatnonzero(keep)[-1]] = False
    pts, vals = pts[keep], vals[keep]
    if pts.shape[0] < 2:
        msg = "points: expected at least 2 distinct points"
        raise ValueError(msg)
    ends = np.vstack([pts, pts[:1]]) if closed else pts
    ends_v = np.vstack([vals, vals[:1]]) if closed else vals
    seg = np.linalg.norm(np.diff(ends, axis=0), axis=1)
    slopes = np.diff(ends_v, axis=0) / seg[:, None]
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    if closed:
        # Vertex j sits between segment j-1 (wrapping) and segment j.
        return SlopeJumps(arc[:-1], np.roll(slopes, 1, axis=0), slopes, float(arc[-1]), True)
    return SlopeJumps(arc[1:-1], slopes[:-1], slopes[1:], float(arc[-1]), False)
