"""Measures of the curvature study beyond breakpoint counts (issue 15).

Pure functions of a :class:`lrcore.Network` and a path or plane curve, each exact where
lrcore's partitions are exact:

- :func:`slope_jumps`: the jump ``|Δ ∂f/∂s|`` of the network's slope along a path at each
  breakpoint, from the affine maps of the pieces on both sides;
  :func:`interpolant_slope_jumps` gives the same measure for sampled values (a target)
  along the path, for comparison;
- :func:`tube_density_map`: region-boundary length per unit area around a plane curve,
  on bins of (arc length, signed normal offset), from the exact partition of
  :func:`lrcore.slice_2d`; :func:`local_tube_map` does the same in the plane spanned by
  a tangent and a normal at a point (curves in higher dimension, surfaces);
- :func:`hanin_rolnick_density`: the expected density of breakpoints along a path at
  initialisation (Hanin & Rolnick 2019), estimated on one initialised network by
  integrating out each neuron's own bias, against the exact count;
- :func:`checkpoint_table`: breakpoint density and slope-jump density in windows along
  paths at every checkpoint of a training run, as a tidy table.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lrcore import (
    DEFAULT_MAX_REGIONS,
    DEFAULT_RTOL,
    Network,
    PathResult,
    Plane,
    SliceResult,
    count_1d,
    slice_2d,
)
from lrcore._optional import optional_import
from lrcore._validation import as_float_array, check_positive

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "BIAS_DISTRIBUTIONS",
    "HaninRolnick",
    "SlopeJumps",
    "TubeMap",
    "checkpoint_table",
    "hanin_rolnick_density",
    "interpolant_slope_jumps",
    "local_tube_map",
    "slope_jumps",
    "tube_density_map",
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
    rtol: float | None = None,
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


# -- tube density map -----------------------------------------------------------------------
@dataclass(frozen=True)
class TubeMap:
    """Region-boundary length per unit area in bins around a plane curve.

    Bin ``(i, j)`` covers arc lengths ``s_edges[i:i+2]`` and signed normal offsets
    ``r_edges[j:j+2]``; in the plane it is the quadrilateral with corners
    ``corners[i, j]``, ``corners[i+1, j]``, ``corners[i+1, j+1]``, ``corners[i, j+1]``,
    where ``corners[i, j] = c(s_i) + r_j n(s_i)``.

    Attributes
    ----------
    s_edges
        ``(S + 1,)`` arc-length bin edges along the curve.
    r_edges
        ``(R + 1,)`` normal-offset bin edges (``r > 0`` on the right of the direction of
        travel: outside a counter-clockwise closed curve).
    corners
        ``(S + 1, R + 1, 2)`` plane coordinates of the bin corners.
    lengths
        ``(S, R)`` total length of region boundaries (edges between faces of the
        partition, not its outer boundary) inside each bin, exact up to rounding.
    areas
        ``(S, R)`` area of each bin in the plane.
    partition
        The :class:`lrcore.SliceResult` the lengths come from (for figures).
    """

    s_edges: FloatArray
    r_edges: FloatArray
    corners: FloatArray
    lengths: FloatArray
    areas: FloatArray
    partition: SliceResult

    @property
    def density(self) -> FloatArray:
        """``(S, R)`` boundary length per unit area of each bin."""
        out: FloatArray = self.lengths / self.areas
        return out

    @property
    def r_centres(self) -> FloatArray:
        """``(R,)`` centres of the normal-offset bins."""
        out: FloatArray = (self.r_edges[1:] + self.r_edges[:-1]) / 2
        return out

    @property
    def s_centres(self) -> FloatArray:
        """``(S,)`` centres of the arc-length bins."""
        out: FloatArray = (self.s_edges[1:] + self.s_edges[:-1]) / 2
        return out

    def profile(self) -> FloatArray:
        """``(R,)`` density against normal offset over the whole curve: the boundary
        length in each offset band divided by the band's area."""
        out: FloatArray = self.lengths.sum(axis=0) / self.areas.sum(axis=0)
        return out

    def quad(self, i: int, j: int) -> FloatArray:
        """``(4, 2)`` corners of bin ``(i, j)``, counter-clockwise."""
        c = self.corners
        q = np.stack([c[i, j], c[i + 1, j], c[i + 1, j + 1], c[i, j + 1]])
        x, y = q[:, 0], q[:, 1]
        signed = float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
        out: FloatArray = q if signed > 0 else q[::-1].copy()
        return out


def _polyline_frame(
    points: FloatArray, closed: bool, s_bins: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Arc-length bin edges, the curve's points there and unit right normals there
    (tangents by central differences of the edge points; one-sided at open ends)."""
    pts = np.vstack([points, points[:1]]) if closed else points
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    length = float(arc[-1])
    if not length > 0:
        raise ValueError("curve: the curve has length 0")
    s = np.linspace(0.0, length, s_bins + 1)
    at = np.stack([np.interp(s, arc, pts[:, k]) for k in range(2)], axis=1)
    if closed:
        ring = at[:-1]
        tangent = np.roll(ring, -1, axis=0) - np.roll(ring, 1, axis=0)
        tangent = np.vstack([tangent, tangent[:1]])
    else:
        tangent = np.empty_like(at)
        tangent[1:-1] = at[2:] - at[:-2]
        tangent[0], tangent[-1] = at[1] - at[0], at[-1] - at[-2]
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    return s, at, normal


def _clip_lengths(
    starts: FloatArray, ends: FloatArray, quads: FloatArray, chunk: int = 1 << 22
) -> FloatArray:
    """Length of each segment inside each convex counter-clockwise quadrilateral, summed
    per quadrilateral: ``(Q,)`` (Liang-Barsky clipping against its four sides)."""
    q_lo, q_hi = quads.min(axis=1), quads.max(axis=1)
    e_lo, e_hi = np.minimum(starts, ends), np.maximum(starts, ends)
    side = np.roll(quads, -1, axis=1) - quads  # (Q, 4, 2)
    total = np.zeros(quads.shape[0])
    step = max(1, chunk // max(1, quads.shape[0]))
    for lo in range(0, starts.shape[0], step):
        hi = min(lo + step, starts.shape[0])
        overlap = np.all(
            (e_lo[lo:hi, None, :] <= q_hi[None]) & (e_hi[lo:hi, None, :] >= q_lo[None]), axis=2
        )
        edge, quad = np.nonzero(overlap)
        if edge.size == 0:
            continue
        edge += lo
        a, d = starts[edge], ends[edge] - starts[edge]  # (P, 2)
        e = side[quad]  # (P, 4, 2)
        rel = a[:, None, :] - quads[quad]
        # Inside side k: cross(e_k, a + u d - q_k) = c0 + u c1 >= 0.
        c0 = e[..., 0] * rel[..., 1] - e[..., 1] * rel[..., 0]
        c1 = e[..., 0] * d[:, None, 1] - e[..., 1] * d[:, None, 0]
        with np.errstate(divide="ignore", invalid="ignore"):
            bound = -c0 / c1
        u_lo = np.max(np.where(c1 > 0, bound, 0.0), axis=1, initial=0.0)
        u_hi = np.min(np.where(c1 < 0, bound, 1.0), axis=1, initial=1.0)
        outside = np.any((c1 == 0) & (c0 < 0), axis=1)
        inside = np.where(outside, 0.0, np.clip(u_hi - u_lo, 0.0, None))
        total += np.bincount(
            quad, weights=inside * np.linalg.norm(d, axis=1), minlength=total.size
        )
    return total


def tube_density_map(
    net: Network,
    curve: ArrayLike,
    closed: bool = True,
    *,
    half_width: float,
    s_bins: int = 64,
    r_bins: int = 16,
    plane: Plane | None = None,
    rtol: float = DEFAULT_RTOL,
    num_threads: int | None = None,
    max_regions: int = DEFAULT_MAX_REGIONS,
) -> TubeMap:
    """Region-boundary length per unit area around a plane curve, in (s, r) bins.

    The curve's tube ``{c(s) + r n(s): |r| <= half_width}`` is cut into ``s_bins`` equal
    arc-length bins and ``r_bins`` equal offset bins. Each bin is taken as the
    quadrilateral of its corners ``c(s_i) + r_j n(s_i)`` (``n`` the unit right normal
    from central differences of the corner points), which matches the curved bin to
    second order in the bin size. One :func:`lrcore.slice_2d` call partitions the box
    around the tube exactly; every edge between two faces is clipped exactly against
    every bin, and the bin's density is the length inside over its area.

    Parameters
    ----------
    net
        The network; its input dimension is 2 unless ``plane`` is given.
    curve
        ``(n, 2)`` polyline of the curve in the plane (fine enough that its arc length
        and normals are those of the curve).
    closed
        Whether the curve is closed (its last point joins the first).
    half_width
        Largest normal offset of the tube. The bins must stay convex and not fold: keep
        it below the smallest radius of curvature (a ValueError says when they fold).
    s_bins, r_bins
        Bins along the curve and across it.
    plane
        A :class:`lrcore.Plane` of the network's input space; ``curve`` is then in its
        ``(s, t)`` coordinates and lengths and areas are in those coordinates.
    rtol, num_threads, max_regions
        Passed to :func:`lrcore.slice_2d`.

    Returns
    -------
    TubeMap
        Lengths, areas and densities of the bins (``TubeMap.profile()`` averages over s).

    Examples
    --------
    >>> import numpy as np, lrcore
    >>> net = lrcore.Network.random([2, 8, 8, 1], seed=0)
    >>> angles = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    >>> tube = tube_density_map(net, np.c_[np.cos(angles), np.sin(angles)],
    ...                         half_width=0.3, s_bins=16, r_bins=4)
    >>> tube.density.shape, tube.profile().shape
    ((16, 4), (4,))
    """
    if not isinstance(net, Network):
        msg = f"net: expected an lrcore.Network, got {type(net).__name__}"
        raise TypeError(msg)
    points = as_float_array(curve, "curve", ndim=2)
    if points.shape[1] != 2 or points.shape[0] < 2:
        msg = f"curve: expected an (n, 2) polyline with n >= 2, got shape {points.shape}"
        raise ValueError(msg)
    if plane is None and net.input_dim != 2:
        msg = (
            f"plane: the network's input dimension is {net.input_dim}; pass the plane the "
            "curve lies in (curve in its (s, t) coordinates)"
        )
        raise ValueError(msg)
    half_width = check_positive(half_width, "half_width")
    for name, value in (("s_bins", s_bins), ("r_bins", r_bins)):
        if int(value) != value or value < 1:
            msg = f"{name}: expected a positive integer, got {value!r}"
            raise ValueError(msg)
    if closed and s_bins < 3:
        raise ValueError(f"s_bins: a closed curve needs at least 3 bins, got {s_bins}")
    s_edges, at, normal = _polyline_frame(points, bool(closed), int(s_bins))
    r_edges = np.linspace(-half_width, half_width, int(r_bins) + 1)
    corners = at[:, None, :] + r_edges[None, :, None] * normal[:, None, :]
    quads = np.stack(
        [corners[:-1, :-1], corners[1:, :-1], corners[1:, 1:], corners[:-1, 1:]], axis=2
    ).reshape(-1, 4, 2)
    side = np.roll(quads, -1, axis=1) - quads
    turn = (
        side[..., 0] * np.roll(side, -1, axis=1)[..., 1]
        - side[..., 1] * np.roll(side, -1, axis=1)[..., 0]
    )
    # Corners go along s, then +r (the right normal): clockwise; reverse to CCW.
    if np.any(turn >= 0):
        msg = (
            f"half_width: {half_width} folds the tube (a bin is not a convex quadrilateral); "
            "use a half-width below the curve's smallest radius of curvature, or more s_bins"
        )
        raise ValueError(msg)
    quads = quads[:, ::-1].copy()
    x, y = quads[..., 0], quads[..., 1]
    areas = 0.5 * np.sum(x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1)
    flat = corners.reshape(-1, 2)
    lo, hi = flat.min(axis=0), flat.max(axis=0)
    pad = 1e-3 * float(np.max(hi - lo))
    bounds = (lo[0] - pad, hi[0] + pad, lo[1] - pad, hi[1] + pad)
    origin, basis = (plane.origin, plane.basis) if plane is not None else (np.zeros(2), np.eye(2))
    partition = slice_2d(
        net,
        origin,
        basis,
        bounds,
        rtol=rtol,
        num_threads=num_threads,
        max_regions=max_regions,
    )
    inner = partition.edges[partition.edge_neurons[:, 0] >= 0]
    lengths = _clip_lengths(
        partition.vertices[inner[:, 0]], partition.vertices[inner[:, 1]], quads
    )
    shape = (int(s_bins), int(r_bins))
    return TubeMap(
        s_edges, r_edges, corners, lengths.reshape(shape), areas.reshape(shape), partition
    )


def local_tube_map(
    net: Network,
    point: ArrayLike,
    tangent: ArrayLike,
    normal: ArrayLike,
    *,
    half_length: float,
    half_width: float,
    s_bins: int = 1,
    r_bins: int = 16,
    rtol: float = DEFAULT_RTOL,
    num_threads: int | None = None,
    max_regions: int = DEFAULT_MAX_REGIONS,
) -> TubeMap:
    """:func:`tube_density_map` in the plane through ``point`` spanned by a tangent and a
    normal: for curves in higher dimension and for surfaces, at a sample point.

    The plane's coordinates are orthonormal (the tangent normalised, the normal made
    orthogonal to it and normalised), so lengths and areas are those of input space.
    The bins cover ``[-half_length, half_length]`` along the tangent and ``[-half_width,
    half_width]`` along the normal, with ``r > 0`` on the side of ``normal``.

    Parameters
    ----------
    net
        The network.
    point, tangent, normal
        ``(d,)`` vectors: the centre and two independent directions.
    half_length, half_width
        Half-extents of the box along the tangent and the normal.
    s_bins, r_bins
        Bins along the tangent and the normal (``profile()`` gives the density against
        the normal offset).
    rtol, num_threads, max_regions
        Passed to :func:`lrcore.slice_2d`.

    Returns
    -------
    TubeMap
        Its ``s_edges`` run from 0 to ``2 * half_length``.

    Examples
    --------
    >>> import numpy as np, lrcore
    >>> net = lrcore.Network.random([3, 8, 1], seed=0)
    >>> local = local_tube_map(net, np.zeros(3), [1.0, 0.0, 0.0], [0.0, 1.0, 1.0],
    ...                        half_length=0.5, half_width=0.2, r_bins=4)
    >>> local.profile().shape
    (4,)
    """
    x0 = as_float_array(point, "point", ndim=1)
    t = as_float_array(tangent, "tangent", ndim=1)
    n = as_float_array(normal, "normal", ndim=1)
    for name, vector in (("tangent", t), ("normal", n)):
        if vector.shape != x0.shape:
            msg = f"{name}: expected shape {x0.shape} (that of point), got {vector.shape}"
            raise ValueError(msg)
    t_norm = float(np.linalg.norm(t))
    if not t_norm > 0:
        raise ValueError("tangent: expected a non-zero vector")
    t = t / t_norm
    n = n - (n @ t) * t
    n_norm = float(np.linalg.norm(n))
    if not n_norm > 1e-12 * float(np.linalg.norm(normal)):
        raise ValueError("normal: expected a vector independent of the tangent")
    n = n / n_norm
    a = check_positive(half_length, "half_length")
    # Plane coordinates (u, v) -> x0 + u t - v n: the curve runs along +u (the tangent)
    # and its right-hand normal (0, -1) is +n, so r > 0 on the side of ``normal``.
    curve = np.array([[-a, 0.0], [a, 0.0]])
    plane = Plane(x0, np.stack([t, -n]))
    return tube_density_map(
        net,
        curve,
        False,
        half_width=half_width,
        s_bins=s_bins,
        r_bins=r_bins,
        plane=plane,
        rtol=rtol,
        num_threads=num_threads,
        max_regions=max_regions,
    )


# -- Hanin-Rolnick expectation at initialisation -------------------------------------------
#: Bias distributions :func:`hanin_rolnick_density` knows the density of.
BIAS_DISTRIBUTIONS = ("uniform", "normal")


@dataclass(frozen=True)
class HaninRolnick:
    """Expected and measured density of breakpoints along a path.

    Attributes
    ----------
    positions
        ``(n,)`` arc lengths of the sample points (midpoints of ``n`` equal steps).
    local
        ``(n,)`` expected breakpoints per unit length at each sample point, summed over
        neurons: ``sum_j |∇z_j·t| ρ_j(-(z_j - b_j))``.
    per_layer
        ``(L,)`` expected breakpoints per unit length from each hidden layer's neurons.
    expected
        Expected breakpoints per unit length over the path (the mean of ``local``).
    measured
        Exact breakpoints per unit length of the network (:func:`lrcore.count_1d`).
    length
        Length of the path.
    """

    positions: FloatArray
    local: FloatArray
    per_layer: FloatArray
    expected: float
    measured: float
    length: float

    @property
    def ratio(self) -> float:
        """``measured / expected`` (NaN when nothing is expected)."""
        return self.measured / self.expected if self.expected > 0 else float("nan")


def _path_samples(
    points: FloatArray, closed: bool, samples: int
) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """Midpoints of ``samples`` equal arc-length steps: positions, points, unit tangents
    and the path's length."""
    pts = np.vstack([points, points[:1]]) if closed else points
    steps = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    length = float(arc[-1])
    if not length > 0:
        raise ValueError("path: the path has length 0")
    s = (np.arange(samples) + 0.5) * length / samples
    seg = np.clip(np.searchsorted(arc, s, "right") - 1, 0, steps.size - 1)
    # Zero-length segments hold no sample (s falls past them).
    frac = (s - arc[seg]) / steps[seg]
    x = pts[seg] + frac[:, None] * (pts[seg + 1] - pts[seg])
    tangents = _segment_tangents(points, closed)[seg]
    return s, x, tangents, length


def hanin_rolnick_density(
    net: Network,
    path: ArrayLike,
    closed: bool = False,
    *,
    samples: int = 2000,
    bias_distribution: str = "uniform",
    bias_scale: float | list[float] | None = None,
    rtol: float | None = None,
    num_threads: int | None = None,
) -> HaninRolnick:
    """Hanin-Rolnick expected density of breakpoints along a path, against the exact one.

    Neuron ``j``'s zeros along the path are breakpoints, so (Kac-Rice; Hanin & Rolnick
    2019) the expected number per unit length at ``x(s)`` is
    ``sum_j E[|∇z_j(x)·t| δ(z_j(x))]``. Its bias ``b_j`` is independent of everything
    else at initialisation and neither ``∇z_j`` nor ``z_j - b_j`` depends on it, so
    ``E[|∇z_j·t| δ(z_j)] = E[|∇z_j·t| ρ_j(-(z_j - b_j))]`` with ``ρ_j`` the density of
    the bias. Evaluating the bracket on this network (forward-mode derivatives, float64)
    at ``samples`` points along the path gives an estimate unbiased over the
    initialisation, with no kernel bandwidth; it is compared with the network's exact
    density from :func:`lrcore.count_1d`.

    Parameters
    ----------
    net
        An initialised network (biases drawn independently of the weights).
    path
        ``(n, d)`` polyline.
    closed
        Whether the last point joins the first.
    samples
        Sample points (midpoints of equal arc-length steps; the estimate is the mean).
    bias_distribution
        ``"uniform"`` on ``[-scale, scale]`` (PyTorch's ``nn.Linear``, ``Network.random``
        and the study's ``build_mlp``) or ``"normal"`` with standard deviation ``scale``.
    bias_scale
        One value for all hidden layers or one per hidden layer. Default for
        ``"uniform"``: ``1/sqrt(fan_in)`` of each layer (PyTorch's bound); ``"normal"``
        needs it.
    rtol, num_threads
        Passed to :func:`lrcore.count_1d`.

    Returns
    -------
    HaninRolnick
        The local and mean expected densities, per layer, the measured density and
        their ratio.

    Examples
    --------
    >>> import numpy as np, lrcore
    >>> net = lrcore.Network.random([2, 32, 32, 1], seed=0)
    >>> hr = hanin_rolnick_density(net, np.array([[-1.0, -1.0], [1.0, 1.0]]))
    >>> bool(hr.expected > 0 and np.isclose(hr.per_layer.sum(), hr.expected))
    True
    """
    if not isinstance(net, Network):
        msg = f"net: expected an lrcore.Network, got {type(net).__name__}"
        raise TypeError(msg)
    if bias_distribution not in BIAS_DISTRIBUTIONS:
        msg = f"bias_distribution: expected one of {BIAS_DISTRIBUTIONS}, got {bias_distribution!r}"
        raise ValueError(msg)
    if int(samples) != samples or samples < 1:
        raise ValueError(f"samples: expected a positive integer, got {samples!r}")
    weights, biases = net.weights, net.biases
    layers = net.num_hidden_layers
    if bias_scale is None:
        if bias_distribution != "uniform":
            raise ValueError("bias_scale: the normal distribution needs its standard deviation")
        scales = [1.0 / np.sqrt(w.shape[1]) for w in weights[:-1]]
    elif isinstance(bias_scale, (int, float)):
        scales = [float(bias_scale)] * layers
    else:
        scales = [float(v) for v in bias_scale]
        if len(scales) != layers:
            msg = f"bias_scale: expected one per hidden layer ({layers}), got {len(scales)}"
            raise ValueError(msg)
    for value in scales:
        check_positive(value, "bias_scale")
    result = count_1d(net, path, bool(closed), rtol=rtol, num_threads=num_threads)
    s, h, v, length = _path_samples(result.points, result.closed, int(samples))
    local_per_layer = np.zeros((layers, s.size))
    for layer, (slope, sizes) in enumerate(zip(net.negative_slopes, net.hidden_sizes)):
        pre = _apply(weights[layer], h)  # z - b
        dz = _apply(weights[layer], v)
        scale = scales[layer]
        values = pre[:, :sizes]
        if bias_distribution == "uniform":
            density = np.where(np.abs(values) <= scale, 0.5 / scale, 0.0)
        else:
            density = np.exp(-0.5 * (values / scale) ** 2) / (scale * np.sqrt(2 * np.pi))
        local_per_layer[layer] = np.sum(np.abs(dz[:, :sizes]) * density, axis=1)
        z = pre + biases[layer]
        gain = np.ones_like(z)
        gain[:, :sizes] = np.where(z[:, :sizes] > 0, 1.0, slope)
        h, v = z * gain, dz * gain
    local = local_per_layer.sum(axis=0)
    return HaninRolnick(
        positions=s,
        local=local,
        per_layer=local_per_layer.mean(axis=1),
        expected=float(local.mean()),
        measured=result.num_breakpoints / result.length,
        length=length,
    )


# -- checkpoints ----------------------------------------------------------------------------
def _as_network(value: Any, model: Any, step: int) -> Network:
    """A Network from a Network, a torch module or a state dict loaded into ``model``."""
    if isinstance(value, Network):
        return value
    if isinstance(value, Mapping):
        if model is None:
            msg = f"model: checkpoint {step} is a state dict; pass the model to load it into"
            raise ValueError(msg)
        target = copy.deepcopy(model)
        target.load_state_dict(value)
        return Network.from_torch(target)
    if hasattr(value, "state_dict"):
        return Network.from_torch(value)
    msg = (
        f"networks: checkpoint {step} is a {type(value).__name__}; expected an "
        "lrcore.Network, a torch module or a state dict"
    )
    raise TypeError(msg)


def checkpoint_table(
    networks: Mapping[int, Any] | Sequence[tuple[int, Any]],
    paths: Sequence[Any],
    closed: bool | Sequence[bool] | None = None,
    *,
    windows: int = 16,
    names: Sequence[str] | None = None,
    model: Any = None,
    rtol: float | None = None,
    num_threads: int | None = None,
) -> pd.DataFrame:
    """Breakpoint and slope-jump densities in windows along paths at every checkpoint.

    For each checkpoint, one :func:`lrcore.count_1d` call on all paths (with patterns),
    then :func:`slope_jumps` on each result. Every path is cut into ``windows`` equal
    windows (those of :meth:`lrcore.PathResult.density` with ``window = length /
    windows``).

    Parameters
    ----------
    networks
        Training step -> network, or ``(step, network)`` pairs. A network is an
        :class:`lrcore.Network`, a torch module (converted with
        :meth:`lrcore.Network.from_torch`) or a state dict (loaded into a copy of
        ``model`` first).
    paths
        ``(n, d)`` polylines, or objects with ``points`` and ``closed`` attributes (the
        study's :class:`~lrcore.experiments.manifolds.Trajectory`).
    closed
        One flag for all paths or one per path; None takes each path's ``closed``
        attribute (False for plain arrays).
    windows
        Windows per path.
    names
        One name per path (default: ``"{kind}:{name}"`` of a trajectory, else its index).
    model
        A torch module of the checkpoints' architecture, for state dicts.
    rtol, num_threads
        Passed to :func:`lrcore.count_1d`.

    Returns
    -------
    pandas.DataFrame
        One row per (step, path, window): ``step, path, window, center, length,
        density`` (breakpoints per unit length), ``jump_density`` (sum of the slope
        jumps ``|Δ ∂f/∂s|`` per unit length), ``breakpoints`` (of the whole path).

    Examples
    --------
    >>> import numpy as np, lrcore
    >>> nets = {0: lrcore.Network.random([2, 8, 1], seed=0),
    ...         10: lrcore.Network.random([2, 8, 1], seed=1)}
    >>> table = checkpoint_table(nets, [np.array([[-1.0, 0.0], [1.0, 0.0]])], windows=4)
    >>> table.shape[0], sorted(set(table.step))
    (8, [0, 10])
    """
    pd_module = optional_import("pandas", "experiments")
    items = list(networks.items()) if isinstance(networks, Mapping) else list(networks)
    if not items:
        raise ValueError("networks: expected at least one checkpoint")
    if int(windows) != windows or windows < 1:
        raise ValueError(f"windows: expected a positive integer, got {windows!r}")
    arrays = [np.asarray(getattr(p, "points", p), dtype=np.float64) for p in paths]
    if not arrays:
        raise ValueError("paths: expected at least one path")
    if closed is None:
        flags = [bool(getattr(p, "closed", False)) for p in paths]
    elif isinstance(closed, (bool, np.bool_)):
        flags = [bool(closed)] * len(arrays)
    else:
        flags = [bool(c) for c in closed]
        if len(flags) != len(arrays):
            msg = f"closed: expected one flag per path ({len(arrays)}), got {len(flags)}"
            raise ValueError(msg)
    if names is None:
        labels = [
            f"{p.kind}:{p.name}" if hasattr(p, "kind") and hasattr(p, "name") else str(i)
            for i, p in enumerate(paths)
        ]
    else:
        labels = [str(n) for n in names]
        if len(labels) != len(arrays):
            msg = f"names: expected one name per path ({len(arrays)}), got {len(labels)}"
            raise ValueError(msg)
    frames = []
    for step, value in items:
        net = _as_network(value, model, int(step))
        batch = count_1d(
            net, arrays, flags, rtol=rtol, return_patterns=True, num_threads=num_threads
        )
        for label, points, flag, result in zip(labels, arrays, flags, batch):
            window = result.length / int(windows)
            at = result.window_centers(window)
            jumps = slope_jumps(net, points, flag, result=result)
            _, jump_density = jumps.density(window, at=at)
            frames.append(
                pd_module.DataFrame(
                    {
                        "step": int(step),
                        "path": label,
                        "window": np.arange(at.size),
                        "center": at,
                        "length": result.length,
                        "density": result.density(window, at=at),
                        "jump_density": jump_density,
                        "breakpoints": result.num_breakpoints,
                    }
                )
            )
    table: pd.DataFrame = pd_module.concat(frames, ignore_index=True)
    return table
