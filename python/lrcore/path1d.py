"""Exact activation regions along 1D paths (polylines) through input space."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Union, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._corecalls import core_count_1d, core_path_extent
from ._maxpool import PathPooling, merge_paths
from ._optional import optional_import
from ._validation import (
    DEFAULT_MAX_PIECES,
    DEFAULT_MAX_SLOW_DECISIONS,
    DEFAULT_MAX_SLOW_WORK,
    DEFAULT_RTOL,
    MAX_MAGNITUDE,
    CertificationWarning,
    as_float_array,
    check_magnitudes,
    check_max_memory,
    check_max_slow_work,
    check_positive,
    check_run_options,
    magnitude_bound,
    uniform_input_limit,
)
from ._verify import Verifiable, VerifyReport, check_batch, check_path
from .network import Network

if TYPE_CHECKING:
    import pandas as pd

    from ._core import PathBatchArrays

__all__ = ["DEFAULT_MAX_PIECES", "DEFAULT_RTOL", "BatchResult", "PathResult", "count_1d"]

#: Shortest segment (largest coordinate difference) of a path, other than 0: lengths
#: are square roots of sums of squares, which underflow below it.
MIN_STEP = 1e-150
#: Most windows :meth:`PathResult.window_centers` makes (it refuses more).
MAX_WINDOWS = 10_000_000

PathLike = Union[ArrayLike, Sequence[ArrayLike]]


class PathResult(Verifiable):
    """Exact breakpoints and pieces of a network along one polyline.

    A *breakpoint* is a point where the activation pattern changes; *pieces* are the
    maximal intervals of constant pattern (``num_breakpoints + 1`` on an open path,
    ``max(num_breakpoints, 1)`` on a closed one). Positions are arc lengths from the first
    point. These are activation regions (one per sign pattern met), not merged linear
    regions.

    With max pooling (``net.pooling``) the pattern is the ReLU signs and the argmax of
    every window: a breakpoint is also where a window's argmax changes (``pooling``
    says which window and entries), and the tournament neurons' bits in ``patterns``
    are canonical (the bits off the winners' paths are 0).
    """

    def __init__(
        self,
        points: NDArray[np.float64],
        closed: bool,
        length: float,
        breakpoints: NDArray[np.float64],
        segment: NDArray[np.int64],
        flip_offsets: NDArray[np.int64],
        flip_neurons: NDArray[np.int64],
        num_pieces: int,
        num_distinct: int,
        patterns: NDArray[np.uint8] | None,
        num_neurons: int,
        *,
        network: Network | None = None,
        rtol: float | None = None,
        slow_decisions: int = 0,
        exact_coincidences: int = 0,
        unresolved_crossings: int = 0,
        uncertified_decisions: int = 0,
        pooling: PathPooling | None = None,
    ) -> None:
        self._points = points
        self.closed = bool(closed)
        self.length = float(length)
        self.breakpoints = breakpoints
        self.segment = segment
        self.flip_offsets = flip_offsets
        self.flip_neurons = flip_neurons
        self.num_pieces = int(num_pieces)
        self.num_distinct = int(num_distinct)
        self.patterns = patterns
        self.num_neurons = int(num_neurons)
        #: The network the result was computed for (``verify`` re-evaluates it).
        self.network = network
        #: The zero tolerance it was computed with; None: certified sign decisions.
        self.rtol = None if rtol is None else float(rtol)
        #: Sign decisions the fast filter left to the slow path (docs/numerics.md).
        self.slow_decisions = int(slow_decisions)
        #: Values proven exactly zero: exact coincidences (a vertex on the neuron's zero
        #: set; concurrent crossings share one breakpoint), by the slow path or by
        #: structure (a tie of ReLU outputs that are both off, as in max pooling).
        self.exact_coincidences = int(exact_coincidences)
        #: Crossings distinct in exact arithmetic that float64 places at one position
        #: (they share one breakpoint).
        self.unresolved_crossings = int(unresolved_crossings)
        #: Undecided values that took their float64 sign because the call's slow-path
        #: budget (``max_slow_decisions``) ran out: 0 for a fully certified result.
        self.uncertified_decisions = int(uncertified_decisions)
        #: For a network with max pooling: each piece's argmax per window and the
        #: windows whose argmax changes at each breakpoint (see ``docs/maxpool.md``).
        self.pooling = pooling

    @property
    def num_breakpoints(self) -> int:
        """Number of points where the activation pattern changes."""
        return int(self.breakpoints.shape[0])

    @property
    def neurons(self) -> NDArray[np.int64]:
        """``(k, 2)`` (layer, unit) flipping at each breakpoint (the first, if several)."""
        return self.flip_neurons[self.flip_offsets[:-1]]

    @property
    def points(self) -> NDArray[np.float64]:
        """The polyline's points, ``(n, d)``."""
        return self._points

    @property
    def global_density(self) -> float:
        """Breakpoints per unit arc length over the whole path (NaN for length 0)."""
        return self.num_breakpoints / self.length if self.length > 0 else float("nan")

    def __repr__(self) -> str:
        kind = "closed" if self.closed else "open"
        return (
            f"PathResult({kind}, length={self.length:.6g}, breakpoints={self.num_breakpoints}, "
            f"pieces={self.num_pieces}, distinct={self.num_distinct})"
        )

    def piece_patterns_bool(self) -> NDArray[np.bool_]:
        """The pattern of each piece as a ``(num_pieces, num_neurons)`` bool array.

        Needs ``count_1d(..., return_patterns=True)``.
        """
        if self.patterns is None:
            msg = "patterns were not computed: call count_1d(..., return_patterns=True)"
            raise ValueError(msg)
        bits = np.unpackbits(self.patterns, axis=1, count=self.num_neurons, bitorder="little")
        return bits.astype(bool)

    def window_centers(self, window: float) -> NDArray[np.float64]:
        """Default window centres: ``window/2 + window * arange(floor(length / window))``.

        A quotient within 1e-9 below an integer counts as that integer, so
        ``window = length / n`` gives ``n`` windows despite rounding.
        """
        window = check_positive(window, "window")
        # A window that fits up to rounding (window = length / n) still counts.
        count = max(1, int(np.floor(self.length / window + 1e-9)))
        if count > MAX_WINDOWS:
            msg = (
                f"window: {window!r} cuts the path into {count} windows, more than "
                f"{MAX_WINDOWS}; pass a larger window or the centres with at="
            )
            raise ValueError(msg)
        return window / 2 + window * np.arange(count, dtype=np.float64)

    def density(self, window: float, at: ArrayLike | None = None) -> NDArray[np.float64]:
        """Breakpoints per unit arc length in windows of width ``window`` centred at ``at``.

        For an open path a window is clipped to ``[0, length]`` and the count is divided
        by the clipped width; for a closed path windows wrap around. ``at=None`` uses
        :meth:`window_centers`.

        Examples
        --------
        >>> import numpy as np, lrcore
        >>> net = lrcore.Network.random([2, 16, 1], seed=0)
        >>> r = lrcore.count_1d(net, np.array([[-3.0, 0.0], [3.0, 0.0]]))
        >>> bool(np.isclose(r.density(6.0, at=[3.0])[0], r.num_breakpoints / 6.0))
        True
        """
        window = check_positive(window, "window")
        centers = self.window_centers(window) if at is None else as_float_array(at, "at")
        centers = np.atleast_1d(centers)
        if centers.ndim != 1:
            msg = f"at: expected a 1-d array of positions, got shape {centers.shape}"
            raise ValueError(msg)
        bp = self.breakpoints
        lo = centers - window / 2
        hi = centers + window / 2
        if self.closed and self.length > 0:
            if window >= self.length:
                return np.full(centers.shape, self.num_breakpoints / self.length)
            shifted = np.concatenate([bp - self.length, bp, bp + self.length])
            counts = np.searchsorted(shifted, hi, "right") - np.searchsorted(shifted, lo, "left")
            return counts / window
        lo_c = np.clip(lo, 0.0, self.length)
        hi_c = np.clip(hi, 0.0, self.length)
        counts = np.searchsorted(bp, hi_c, "right") - np.searchsorted(bp, lo_c, "left")
        width = hi_c - lo_c
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(width > 0, counts / np.where(width > 0, width, 1.0), np.nan)

    def positions_to_points(self, s: ArrayLike) -> NDArray[np.float64]:
        """Points of input space at arc-length positions ``s`` along the path.

        Examples
        --------
        >>> import numpy as np, lrcore
        >>> net = lrcore.Network.random([2, 4, 1], seed=0)
        >>> r = lrcore.count_1d(net, np.array([[0.0, 0.0], [2.0, 0.0]]))
        >>> r.positions_to_points([1.0])
        array([[1., 0.]])
        """
        s_arr = np.atleast_1d(as_float_array(s, "s"))
        pts = self._points
        if self.closed:
            pts = np.vstack([pts, pts[:1]])
        seg_len = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        starts = np.concatenate([[0.0], np.cumsum(seg_len)])
        if self.closed and self.length > 0:
            s_arr = np.mod(s_arr, self.length)
        s_arr = np.clip(s_arr, 0.0, starts[-1])
        seg = np.clip(np.searchsorted(starts, s_arr, "right") - 1, 0, len(seg_len) - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(seg_len[seg] > 0, (s_arr - starts[seg]) / seg_len[seg], 0.0)
        frac = np.clip(frac, 0.0, 1.0)
        out: NDArray[np.float64] = pts[seg] + frac[:, None] * (pts[seg + 1] - pts[seg])
        return out

    def _check(self, net: Network, tol: float, full_forward: bool = False) -> VerifyReport:
        return check_path(self, net, tol, full_forward)


class BatchResult(Verifiable):
    """Results of :func:`count_1d` for several paths, as flat arrays with offsets.

    ``breakpoints[offsets[i]:offsets[i + 1]]`` belong to path ``i``; ``b[i]`` gives a
    :class:`PathResult`.
    """

    def __init__(
        self,
        flat: PathBatchArrays,
        paths: list[NDArray[np.float64]],
        closed: list[bool],
        num_neurons: int,
        *,
        network: Network | None = None,
        rtol: float | None = None,
        pooling: PathPooling | None = None,
    ) -> None:
        self._paths = paths
        self._closed = closed
        self.num_neurons = int(num_neurons)
        self.lengths: NDArray[np.float64] = flat["lengths"]
        self.num_pieces: NDArray[np.int64] = flat["num_pieces"]
        self.num_distinct: NDArray[np.int64] = flat["num_distinct"]
        self.offsets: NDArray[np.int64] = flat["offsets"]
        self.breakpoints: NDArray[np.float64] = flat["breakpoints"]
        self.segment: NDArray[np.int64] = flat["segment"]
        self.flip_offsets: NDArray[np.int64] = flat["flip_offsets"]
        self.flip_neurons: NDArray[np.int64] = flat["flip_neurons"]
        self.piece_offsets: NDArray[np.int64] = flat["piece_offsets"]
        self.patterns: NDArray[np.uint8] | None = flat["patterns"]
        #: Vertices at which each hidden layer was evaluated by a dense product.
        self.vertices_per_layer: NDArray[np.int64] = flat["vertices_per_layer"]
        #: Per path: sign decisions left to the slow path, exact coincidences, and
        #: crossings float64 places at one position (see :class:`PathResult`).
        self.slow_decisions: NDArray[np.int64] = flat["slow_decisions"]
        self.exact_coincidences: NDArray[np.int64] = flat["exact_coincidences"]
        self.unresolved_crossings: NDArray[np.int64] = flat["unresolved_crossings"]
        self.uncertified_decisions: NDArray[np.int64] = flat["uncertified_decisions"]
        #: The network the results were computed for (``verify`` re-evaluates it).
        self.network = network
        #: The zero tolerance they were computed with; None: certified sign decisions.
        self.rtol = None if rtol is None else float(rtol)
        #: Max pooling's part, all paths (see :attr:`PathResult.pooling`).
        self.pooling = pooling

    @property
    def num_paths(self) -> int:
        """Number of paths in the batch."""
        return len(self._paths)

    @property
    def num_breakpoints(self) -> NDArray[np.int64]:
        """Breakpoints per path."""
        return np.diff(self.offsets)

    @property
    def neurons(self) -> NDArray[np.int64]:
        """``(K, 2)`` (layer, unit) flipping at each breakpoint, all paths."""
        return self.flip_neurons[self.flip_offsets[:-1]]

    def __len__(self) -> int:
        return self.num_paths

    def __iter__(self) -> Iterator[PathResult]:
        for i in range(self.num_paths):
            yield self[i]

    def __repr__(self) -> str:
        return (
            f"BatchResult(paths={self.num_paths}, breakpoints={int(self.offsets[-1])}, "
            f"pieces={int(self.num_pieces.sum())})"
        )

    def __getitem__(self, index: int) -> PathResult:
        if not isinstance(index, (int, np.integer)):
            msg = f"index: expected an integer, got {type(index).__name__}"
            raise TypeError(msg)
        i = int(index)
        if i < 0:
            i += self.num_paths
        if not 0 <= i < self.num_paths:
            msg = f"index {index} is out of range for a batch of {self.num_paths} paths"
            raise IndexError(msg)
        lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
        flips = self.flip_offsets[lo : hi + 1]
        patterns = None
        if self.patterns is not None:
            patterns = self.patterns[self.piece_offsets[i] : self.piece_offsets[i + 1]]
        return PathResult(
            points=self._paths[i],
            closed=self._closed[i],
            length=float(self.lengths[i]),
            breakpoints=self.breakpoints[lo:hi],
            segment=self.segment[lo:hi],
            flip_offsets=flips - flips[0],
            flip_neurons=self.flip_neurons[flips[0] : flips[-1]],
            num_pieces=int(self.num_pieces[i]),
            num_distinct=int(self.num_distinct[i]),
            patterns=patterns,
            num_neurons=self.num_neurons,
            network=self.network,
            rtol=self.rtol,
            slow_decisions=int(self.slow_decisions[i]),
            exact_coincidences=int(self.exact_coincidences[i]),
            unresolved_crossings=int(self.unresolved_crossings[i]),
            uncertified_decisions=int(self.uncertified_decisions[i]),
            pooling=(
                None
                if self.pooling is None
                else self.pooling.select(
                    slice(int(self.piece_offsets[i]), int(self.piece_offsets[i + 1])),
                    slice(lo, hi),
                )
            ),
        )

    def to_dataframe(self, kind: str = "breakpoints") -> pd.DataFrame:
        """A tidy pandas DataFrame (needs pandas).

        ``kind="breakpoints"``: one row per breakpoint with columns ``path, position,
        segment, layer, unit``. ``kind="paths"``: one row per path with ``path, length,
        num_breakpoints, num_pieces, num_distinct, density``.
        """
        pd = optional_import("pandas")
        if kind == "breakpoints":
            path_ids = np.repeat(np.arange(self.num_paths), self.num_breakpoints)
            neurons = self.neurons
            return pd.DataFrame(
                {
                    "path": path_ids,
                    "position": self.breakpoints,
                    "segment": self.segment,
                    "layer": neurons[:, 0],
                    "unit": neurons[:, 1],
                }
            )
        if kind == "paths":
            with np.errstate(divide="ignore", invalid="ignore"):
                density = np.where(self.lengths > 0, self.num_breakpoints / self.lengths, np.nan)
            return pd.DataFrame(
                {
                    "path": np.arange(self.num_paths),
                    "length": self.lengths,
                    "num_breakpoints": self.num_breakpoints,
                    "num_pieces": self.num_pieces,
                    "num_distinct": self.num_distinct,
                    "density": density,
                }
            )
        msg = f"kind: expected 'breakpoints' or 'paths', got {kind!r}"
        raise ValueError(msg)

    def _check(self, net: Network, tol: float, full_forward: bool = False) -> VerifyReport:
        return check_batch(self, net, tol, full_forward)


def _as_path(value: Any, name: str, dim: int) -> NDArray[np.float64]:
    """A path as a float64 ``(n, dim)`` array, its shape checked (values: :func:`_check_paths`)."""
    if type(value) is np.ndarray and value.dtype == np.float64 and value.flags.c_contiguous:
        arr = value  # the common case, without as_float_array's conversions
    else:
        arr = as_float_array(value, name, finite=False)
    if arr.ndim != 2:
        msg = f"{name}: expected an (n, {dim}) array of points, got shape {arr.shape}"
        raise ValueError(msg)
    if arr.shape[1] != dim:
        msg = (
            f"{name}: points have dimension {arr.shape[1]} but the network's input "
            f"dimension is {dim} (shape {arr.shape})"
        )
        raise ValueError(msg)
    if arr.shape[0] < 2:
        msg = f"{name}: a path needs at least 2 points, got {arr.shape[0]}"
        raise ValueError(msg)
    return arr


def _check_path(net: Network, arr: NDArray[np.float64], name: str) -> None:
    """Every check of one path's values: finite, no too short segment, magnitudes."""
    as_float_array(arr, name)  # NaN and infinities, with their count
    steps = np.abs(np.diff(arr, axis=0)).max(axis=1)
    short = np.flatnonzero((steps > 0) & (steps < MIN_STEP))
    if short.size:
        msg = (
            f"{name}: segment {int(short[0])} is {steps[short[0]]:.3g} long, below the "
            f"{MIN_STEP:.0e} whose square float64 still holds; repeat the point for a "
            "zero-length segment or rescale the path"
        )
        raise ValueError(msg)
    check_magnitudes(net, np.abs(arr).max(axis=0), name)


#: Paths of at most this many values in all are checked in plain Python (numpy's calls
#: cost more than the arithmetic on them).
SMALL_PATHS = 64


def _small_paths_ok(paths: list[NDArray[np.float64]], limit: float) -> bool:
    """True when every value is within ``limit`` (so finite) and no step is too short."""
    for path in paths:
        previous: list[float] | None = None
        for row in path.tolist():
            for value in row:
                if not -limit <= value <= limit:  # NaN fails too
                    return False
            if previous is not None:
                step = max(abs(a - b) for a, b in zip(row, previous))
                if 0 < step < MIN_STEP:
                    return False
            previous = row
    return True


def _check_paths(net: Network, paths: list[NDArray[np.float64]], names: list[str]) -> None:
    """The values of all paths checked at once; the first bad path named.

    One pass over all points (in the core; in plain Python for a few values) finds the
    largest value, the finiteness and the shortest nonzero step of the batch; only when
    that fails are the paths checked one by one (:func:`_check_path`) for the message.
    """
    if not paths:
        return
    limit = uniform_input_limit(net)
    if sum(p.size for p in paths) <= SMALL_PATHS and _small_paths_ok(paths, limit):
        return
    # One pass over all points in the core, without numpy's temporaries (their fresh
    # pages cost a 200-segment batch through 784 inputs 2-6 ms).
    peak, shortest = core_path_extent(paths=paths)
    ok = (
        peak <= limit
        or (
            math.isfinite(peak)
            and magnitude_bound(net, np.abs(np.concatenate(paths)).max(axis=0)) <= MAX_MAGNITUDE
        )
    ) and not shortest < MIN_STEP
    if not ok:
        for arr, name in zip(paths, names):
            _check_path(net, arr, name)


def _check_budget(max_slow_decisions: int | None) -> int:
    """The core's slow-path budget: -1 for None (no budget), else an int >= 0."""
    if max_slow_decisions is None:
        return -1
    if isinstance(max_slow_decisions, (bool, np.bool_)) or not isinstance(
        max_slow_decisions, (int, np.integer)
    ):
        msg = (
            "max_slow_decisions: expected a non-negative int or None, got "
            f"{type(max_slow_decisions).__name__}"
        )
        raise TypeError(msg)
    if max_slow_decisions < 0:
        msg = f"max_slow_decisions: expected a non-negative int or None, got {max_slow_decisions}"
        raise ValueError(msg)
    return int(max_slow_decisions)


@overload
def count_1d(
    net: Network,
    path: list[Any] | tuple[Any, ...],
    closed: bool | Sequence[bool] = ...,
    *,
    rtol: float | None = ...,
    return_patterns: bool = ...,
    num_threads: int | None = ...,
    max_pieces: int = ...,
    max_memory: float | None = ...,
    max_slow_decisions: int | None = ...,
    max_slow_work: float | None = ...,
) -> BatchResult: ...


@overload
def count_1d(
    net: Network,
    path: ArrayLike,
    closed: bool | Sequence[bool] = ...,
    *,
    rtol: float | None = ...,
    return_patterns: bool = ...,
    num_threads: int | None = ...,
    max_pieces: int = ...,
    max_memory: float | None = ...,
    max_slow_decisions: int | None = ...,
    max_slow_work: float | None = ...,
) -> PathResult: ...


def count_1d(
    net: Network,
    path: PathLike,
    closed: bool | Sequence[bool] = False,
    *,
    rtol: float | None = None,
    return_patterns: bool = False,
    num_threads: int | None = None,
    max_pieces: int = DEFAULT_MAX_PIECES,
    max_memory: float | None = None,
    max_slow_decisions: int | None = DEFAULT_MAX_SLOW_DECISIONS,
    max_slow_work: float | None = DEFAULT_MAX_SLOW_WORK,
) -> PathResult | BatchResult:
    """Exact breakpoints of ``net``'s activation pattern along polylines.

    Parameters
    ----------
    net
        The network.
    path
        An ``(n, d)`` array: a polyline of ``n >= 2`` points in input space. A list or
        tuple of such arrays is a batch, processed in one call across threads.
    closed
        Join the last point back to the first (one flag for all paths, or one per path).
    rtol
        ``None`` (the default): certified sign decisions. Every sign is decided exactly
        (in real arithmetic on the float64 weights and inputs): a fast float64 filter
        with a rigorous error bound, and a double-double slow path for the rare values it
        leaves undecided; crossings are merged only when they coincide exactly (see
        docs/numerics.md; ``slow_decisions``, ``exact_coincidences`` and
        ``unresolved_crossings`` of the result count what happened). A number
        ``0 <= rtol < 1`` opts in to the old zero tolerance: at a vertex, ``|z_j| <= rtol
        * (||W_j||_2 ||h||_2 + |b_j|)`` (``h`` the layer's input there) counts as exactly
        zero, so crossings closer than the tolerance make one breakpoint
        (``lrcore.DEFAULT_RTOL`` was the default before). ``result.verify()`` checks a
        result against the network.
    return_patterns
        Also return each piece's activation pattern (packed bits). Always on for a
        network with max pooling, whose pieces are read from the patterns.
    num_threads
        Worker threads (default: all CPUs this process may use).
    max_pieces
        Stop with :class:`lrcore.LimitExceeded` once the call has created this many pieces.
    max_memory
        Bytes the call may use for its result and working data (default: 80% of the
        memory available when it starts). The core checks its estimate as it goes and
        stops with :class:`lrcore.LimitExceeded` past it, instead of being killed.
    max_slow_decisions
        Budget of slow-path decisions per task (up to 32 consecutive segments of the
        call, fixed by the input, so results do not depend on the thread count) when
        ``rtol`` is None (default
        ``lrcore.DEFAULT_MAX_SLOW_DECISIONS``; ``None``: no budget, every sign certified
        with ``max_slow_work=None`` too, however long it takes). Past it, a value the
        fast filter cannot decide keeps its
        float64 sign, the result's ``uncertified_decisions`` counts it and a
        :class:`lrcore.CertificationWarning` is issued. Deep CNNs with large layer gains
        need the slow path at most vertices, once per vertex every few layers
        (docs/numerics.md §9). This budget counts decisions, not time (a pass costs
        more on wider layers); ``max_slow_work`` bounds the work.
    max_slow_work
        Budget of the slow path's work per task when ``rtol`` is None, as a multiple of
        the task's own float64 work (default ``lrcore.DEFAULT_MAX_SLOW_WORK``; ``None``:
        no budget). Both are counted in multiply-adds: the layers the slow path
        evaluates in double-double (past a prefix shared with a pass of the same task)
        and its exact tier's expansion operations, against the products of the task's vertices so far
        (up to 32 consecutive segments: results do not depend on the thread count),
        counted as at least 2**24 so that small networks may take a few passes; ``0``
        takes none. Past it, undecided values are handled as past
        ``max_slow_decisions``. It keeps a certified call within a bounded multiple of
        the ``rtol=1e-10`` call's work on any model, however wide (a double-double
        multiply-add takes about 25 times a float64 one in BLAS; docs/numerics.md §9).

    Returns
    -------
    PathResult or BatchResult
        One result for an array, a batch for a list or tuple.

    Raises
    ------
    ValueError, TypeError
        A bad argument (the message names it), NaN/Inf, or values that could exceed
        1e150 along a path (or a segment shorter than 1e-150).
    lrcore.LimitExceeded
        More than ``max_pieces`` pieces.

    Examples
    --------
    >>> import numpy as np, lrcore
    >>> net = lrcore.Network.random([2, 32, 32, 1], seed=0)
    >>> segment = np.array([[-2.0, -2.0], [2.0, 2.0]])
    >>> r = lrcore.count_1d(net, segment)
    >>> r.num_pieces == r.num_breakpoints + 1
    True
    >>> angles = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    >>> circle = np.c_[np.cos(angles), np.sin(angles)]
    >>> batch = lrcore.count_1d(net, [segment, circle], closed=[False, True])
    >>> len(batch)
    2
    """
    if not isinstance(net, Network):
        msg = f"net: expected an lrcore.Network, got {type(net).__name__}"
        raise TypeError(msg)
    is_batch = isinstance(path, (list, tuple))
    raw_paths: list[Any] = list(path) if is_batch else [path]  # type: ignore[arg-type]
    dim = net.input_dim
    if is_batch:
        paths = [_as_path(p, f"path[{i}]", dim) for i, p in enumerate(raw_paths)]
    else:
        paths = [_as_path(path, "path", dim)]
    if isinstance(closed, (bool, np.bool_)):
        flags = [bool(closed)] * len(paths)
    else:
        if not is_batch:
            msg = f"closed: expected a bool for a single path, got {type(closed).__name__}"
            raise TypeError(msg)
        flags = [bool(c) for c in closed]
        if len(flags) != len(paths):
            msg = f"closed: expected one flag per path ({len(paths)}), got {len(flags)}"
            raise ValueError(msg)
    checked, threads, max_pieces = check_run_options(
        0.0 if rtol is None else rtol, num_threads, max_pieces, "max_pieces"
    )
    core_rtol = None if rtol is None else checked
    _check_paths(net, paths, [f"path[{i}]" for i in range(len(paths))] if is_batch else ["path"])

    flat = core_count_1d(
        net=net,
        paths=paths,
        closed=flags,
        rtol=core_rtol,
        want_patterns=bool(return_patterns) or net.pooling is not None,
        num_threads=threads,
        max_pieces=max_pieces,
        max_memory=check_max_memory(max_memory),
        max_slow_decisions=_check_budget(max_slow_decisions),
        max_slow_work=check_max_slow_work(max_slow_work),
    )
    # count_nonzero: a quarter of sum's cost on the one-element array of a tiny call.
    if np.count_nonzero(flat["uncertified_decisions"]):
        uncertified = int(flat["uncertified_decisions"].sum())
        warnings.warn(
            f"count_1d: the slow-path budget (max_slow_decisions={max_slow_decisions}, "
            f"max_slow_work={max_slow_work}) ran out; {uncertified} sign decisions took "
            "their float64 sign and are not certified (pass max_slow_decisions=None and "
            "max_slow_work=None to certify every sign)",
            CertificationWarning,
            stacklevel=2,
        )
    if net.pooling is not None:
        flat, pooling = merge_paths(flat, net.pooling, net.neuron_offsets(), flags)
        batch = BatchResult(
            flat, paths, flags, net.num_neurons, network=net, rtol=core_rtol, pooling=pooling
        )
        return batch if is_batch else batch[0]
    if not is_batch:  # the flat arrays are the path's own: no batch to slice
        return PathResult(
            points=paths[0],
            closed=flags[0],
            length=float(flat["lengths"][0]),
            breakpoints=flat["breakpoints"],
            segment=flat["segment"],
            flip_offsets=flat["flip_offsets"],
            flip_neurons=flat["flip_neurons"],
            num_pieces=int(flat["num_pieces"][0]),
            num_distinct=int(flat["num_distinct"][0]),
            patterns=flat["patterns"],
            num_neurons=net.num_neurons,
            network=net,
            rtol=core_rtol,
            slow_decisions=int(flat["slow_decisions"][0]),
            exact_coincidences=int(flat["exact_coincidences"][0]),
            unresolved_crossings=int(flat["unresolved_crossings"][0]),
            uncertified_decisions=int(flat["uncertified_decisions"][0]),
        )
    return BatchResult(flat, paths, flags, net.num_neurons, network=net, rtol=core_rtol)
