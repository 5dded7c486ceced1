"""Self-checks of results: re-evaluate the network and test every piece, face and cut.

The result classes inherit :class:`Verifiable`, whose ``verify`` checks its arguments
and calls the class's own ``_check``: ``PathResult`` calls :func:`check_path`,
``BatchResult`` :func:`check_batch` and ``SliceResult`` :func:`check_slice`. This module
imports the result classes for typing only. The checks use only the result's arrays and the network's own float64 forward
pass, so a user can run them on any result as a certificate.

Paths are evaluated layer by layer: a breakpoint from the layer after its earliest
flipping neuron on, its earlier layers interpolated between the points evaluated there
(:func:`_knot_signs`, docs/design.md §7); ``verify(full_forward=True)`` and paths through
max pooling evaluate every piece end with a whole forward pass.

Why the checks are a certificate (up to the tolerance): on a piece (1D) or convex face
(2D) whose pattern is really constant, every pre-activation is affine. If the pattern is
*not* constant there, take the earliest layer with a neuron that changes sign: all earlier
signs are constant, so that neuron is affine on the cell and takes strictly opposite signs
at two corners (the ends of a sub-interval, or two vertices of a convex face). Checking
every neuron at every corner of every cell against the cell's pattern therefore finds any
missed crossing whose values exceed the tolerance.

Certified results (``rtol=None``, docs/numerics.md) are checked with the same filter the
core decides signs with: ``z_j`` counts as zero when ``|z_j| <= tol * eps_j + slack_j``,
``eps_j`` the filter's rigorous bound on the rounding error of ``z_j`` at that point and
``tol`` by default :data:`VERIFY_FACTOR`; the residual is ``max(|z_j| - slack_j, 0) /
eps_j``. The slow path is not run: a value within the bound may have either sign.

Results computed with a zero tolerance ``rtol``: the core counts ``z_j`` as zero when
``|z_j| <= rtol * (||W_j||_2 ||h||_2 + |b_j|)``, ``h`` being the layer's input at that
point. Here ``z_j`` counts as zero when ``|z_j| <= tol * (||W_j||_2 ||h||_2 + |b_j|) +
slack_j`` with ``tol`` by default :data:`VERIFY_FACTOR` times the ``rtol`` the result
was computed with (at least ``DEFAULT_RTOL``), and ``slack_j = ||W_j||_2 s_l`` the
effect of rounding the point's position: ``spread_0 = 1024 eps (|x| + L |u|)`` (``L``
the path's length or the domain's reach, ``u`` its directions), ``s_l`` a bound on its
norm at layer ``l``'s input (the earlier layers' operator norms, or ``|W|``
componentwise where smaller; docs/design.md §7). Such a value may have either sign; a larger one has a certain sign
that must match the pattern. The *residual* of a value is ``max(|z_j| - slack_j, 0) /
(||W_j||_2 ||h||_2 + |b_j|)``: zero-valued neurons must have a residual at most ``tol``.
"""

from __future__ import annotations

import abc
import contextlib
import math
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from numpy.typing import NDArray

from ._layers import CompositeLayer
from ._validation import DEFAULT_RTOL
from .network import Network

if TYPE_CHECKING:
    from .path1d import BatchResult, PathResult
    from .slice2d import SliceResult

__all__ = [
    "VERIFY_FACTOR",
    "Problem",
    "Verifiable",
    "VerificationError",
    "VerifyReport",
    "check_batch",
    "check_path",
    "check_slice",
]

#: Default verify tolerance: this many times the ``rtol`` of the computation.
VERIFY_FACTOR = 100.0
#: Problems kept in a report per check (all are counted in ``num_problems``).
MAX_PROBLEMS_PER_CHECK = 10
# Points evaluated at once: bounds the temporary (points × neurons) arrays. A network
# with many units (a CIFAR ResNet-18 has about a million per point) takes fewer points at
# once: about _CHUNK_BYTES of layer values per chunk.
_CHUNK = 4096
_CHUNK_BYTES = 128 << 20


# numpy's switch for its huge-page advice on large arrays (private; None where absent).
_SET_HUGEPAGE: Any = getattr(
    getattr(getattr(np, "_core", None), "multiarray", None), "_set_madvise_hugepage", None
)
_PAGES_LOCK = threading.Lock()
_pages_depth = 0
_pages_saved = True


@contextlib.contextmanager
def _small_pages() -> Iterator[None]:
    """Run a check without numpy's huge-page advice on its arrays (restored after).

    numpy asks the kernel for transparent huge pages on every array of 4 MB or more. The
    checks allocate their layer buffers afresh on each call (hundreds of MB on a CIFAR
    network) and free them at its end; on a machine whose memory is fragmented the
    kernel then compacts memory to find huge pages (``defrag = madvise``), which cost a
    ResNet-18's first ``verify()`` about 1.2 s of system time more than with ordinary
    pages (0.36 s of page faults either way; docs/design.md §7). Nested and concurrent
    checks share the setting: the first one in switches it off, the last one out
    restores it.
    """
    global _pages_depth, _pages_saved
    if _SET_HUGEPAGE is None:
        yield
        return
    with _PAGES_LOCK:
        if _pages_depth == 0:
            _pages_saved = bool(_SET_HUGEPAGE(False))
        _pages_depth += 1
    try:
        yield
    finally:
        with _PAGES_LOCK:
            _pages_depth -= 1
            if _pages_depth == 0:
                _SET_HUGEPAGE(_pages_saved)


def _cpus() -> int:
    """CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class Problem:
    """One inconsistency found by ``verify``.

    Attributes
    ----------
    check
        Which check failed, e.g. ``"pattern"`` or ``"breakpoint-zero"``.
    index
        The piece, breakpoint, face or edge concerned (``-1`` for the whole result).
    position
        Where: an arc-length position (1D) or ``(s, t)`` plane coordinates (2D); empty
        when the problem has no single position.
    message
        What is wrong, in words.
    path
        The path of a :class:`BatchResult` (``-1`` otherwise).
    """

    check: str
    index: int
    position: tuple[float, ...]
    message: str
    path: int = -1

    def __str__(self) -> str:
        where = f"path {self.path}, " if self.path >= 0 else ""
        at = f" at {', '.join(f'{p:.17g}' for p in self.position)}" if self.position else ""
        return f"[{self.check}] {where}#{self.index}{at}: {self.message}"


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of ``result.verify()``: what was checked and what was wrong.

    ``bool(report)`` is ``report.ok``.

    Attributes
    ----------
    ok
        True when no check failed.
    kind
        ``"path"``, ``"batch"`` or ``"slice"``.
    tolerance
        The relative zero tolerance ``tol`` used.
    num_cells
        Pieces (1D) or faces (2D) whose pattern was checked.
    num_cuts
        Breakpoints (1D) or interior edges (2D) checked to lie on their neurons' zero sets.
    num_points
        Points at which the network was evaluated.
    max_residual
        Largest residual (see :meth:`lrcore.PathResult.verify`) of a flipping neuron at
        its breakpoint or of an edge's neuron at the edge's ends (at most ``tolerance``
        when ``ok``; 0 when none).
    num_problems
        Number of inconsistencies found (only the first few per check are kept).
    problems
        The inconsistencies kept, with positions.
    """

    ok: bool
    kind: str
    tolerance: float
    num_cells: int
    num_cuts: int
    num_points: int
    max_residual: float
    num_problems: int
    problems: tuple[Problem, ...]

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        cells, cuts = ("faces", "edges") if self.kind == "slice" else ("pieces", "breakpoints")
        head = (
            f"verify ({self.kind}): {'ok' if self.ok else 'FAILED'}; {self.num_cells} {cells}, "
            f"{self.num_cuts} {cuts}, {self.num_points} points evaluated, max residual "
            f"{self.max_residual:.3g} (tolerance {self.tolerance:.3g})"
        )
        if self.ok:
            return head
        lines = [head, f"{self.num_problems} problem(s), first ones:"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


class VerificationError(AssertionError):
    """A result failed its self-check (``verify(raise_on_error=True)``).

    A subclass of AssertionError: a failed verify means lrcore broke its own contract,
    not that the input was bad. The report is in ``err.report``.
    """

    def __init__(self, report: VerifyReport) -> None:
        super().__init__(str(report))
        self.report = report


class _Collector:
    """Gathers problems, keeping the first few of each check."""

    def __init__(self, path: int = -1) -> None:
        self.path = path
        self.kept: list[Problem] = []
        self.per_check: dict[str, int] = {}
        self.count = 0

    def add(self, check: str, index: int, position: Any, message: str) -> None:
        self.count += 1
        seen = self.per_check.get(check, 0)
        self.per_check[check] = seen + 1
        if seen < MAX_PROBLEMS_PER_CHECK:
            pos = tuple(float(p) for p in np.atleast_1d(np.asarray(position, dtype=float)))
            self.kept.append(Problem(check, int(index), pos, message, self.path))

    def add_many(self, check: str, indices: IntArray, positions: FloatArray, message: Any) -> None:
        """One problem per index; ``message(i)`` words the i-th of them."""
        self.count += len(indices)
        seen = self.per_check.get(check, 0)
        self.per_check[check] = seen + len(indices)
        for i in range(min(len(indices), max(0, MAX_PROBLEMS_PER_CHECK - seen))):
            pos = tuple(float(p) for p in np.atleast_1d(positions[i]))
            self.kept.append(Problem(check, int(indices[i]), pos, message(i), self.path))


def _abs(weight: Any) -> Any:
    """``|weight|``, leaving a CSR matrix as it is.

    scipy's ``abs`` sums a CSR matrix's duplicates and sorts its indices in place, which
    reorders the core's sums when the network is used again; built from ``|data|`` here
    (an upper bound where duplicates would cancel).
    """
    if hasattr(weight, "indptr") and not isinstance(weight, CompositeLayer):
        return type(weight)((np.abs(weight.data), weight.indices, weight.indptr), weight.shape)
    return abs(weight)


def _abs_matvec(weight: Any, vector: FloatArray) -> FloatArray:
    out: FloatArray = np.asarray(_abs(weight) @ vector, dtype=np.float64).ravel()
    return out


def _norms(rows: FloatArray) -> FloatArray:
    """Euclidean norm of each row, without overflow or underflow of the squares."""
    if rows.ndim == 2 and rows.shape[1]:
        # One pass where the sum of squares is safely inside float64's range (the usual
        # case); rows near the limits take the scaled form below.
        squares = np.einsum("ij,ij->i", rows, rows)
        if np.all((squares > 1e-280) & (squares < 1e280)):
            out_fast: FloatArray = np.sqrt(squares)
            return out_fast
    peak = np.abs(rows).max(axis=-1, initial=0.0)
    safe = np.where(peak > 0, peak, 1.0)
    out: FloatArray = peak * np.linalg.norm(rows / safe[..., None], axis=-1)
    return out


def _abs_sums(weight: Any, axis: int) -> float:
    """The largest column (axis 0) or row (axis 1) sum of ``|weight|``."""
    if hasattr(weight, "abs_sums"):  # CompositeLayer: without its matrix
        return float(weight.abs_sums(axis))
    sums = np.asarray(_abs(weight).sum(axis=axis), dtype=np.float64).ravel()
    return float(sums.max(initial=0.0))


def _row_norms(weight: Any) -> FloatArray:
    if hasattr(weight, "row_norms"):  # CompositeLayer: exact, without its matrix
        norms: FloatArray = weight.row_norms()
        return norms
    if hasattr(weight, "multiply"):  # scipy.sparse
        squares = np.asarray(weight.multiply(weight).sum(axis=1), dtype=np.float64).ravel()
        out: FloatArray = np.sqrt(squares)
        return out
    return _norms(weight)


class _Evaluator:
    """Pre-activations of every neuron at points, and what counts as zero for them.

    ``|z_j| <= tol * scale_j + slack_j`` is zero, with ``scale_j = ||W_j||_2 ||h||_2 +
    |b_j|`` (the core's zero test, ``h`` the layer's input at the point) and ``slack_j =
    ||W_j||_2 s_l``: how far rounding can have moved the point itself (``spread``, an
    input-space vector), ``s_l`` a bound on its move's norm at layer ``l``'s input: the
    smaller of the spread pushed through ``|W|`` and the spread's norm times the earlier
    layers' operator norms (:meth:`_slacks`).
    """

    def __init__(self, net: Network, spread: FloatArray, certified: bool = False) -> None:
        self.net = net
        self.certified = certified
        weights = net._weights
        self.row_norms = [_row_norms(w) for w in weights]
        self.abs_bias = [np.abs(b) for b in net._biases]
        self.slopes = net.negative_slopes
        self.sizes = net.hidden_sizes
        self.offsets = net.neuron_offsets()
        self.num_points = 0
        # The certified filter's per-layer constants (cpp/src/certify.cpp).
        self.gammas = [_gamma(w.shape[1] + 2.0) * _SAFETY for w in weights]
        self.frob = [float(np.sqrt(np.sum(n * n))) * _SAFETY for n in self.row_norms]
        # ||W||_2 <= min(||W||_F, sqrt(||W||_1 ||W||_inf)); a composite layer's matrix is
        # not formed, its Frobenius norm bounds it.
        self.opnorm = [
            f
            if isinstance(w, CompositeLayer)
            else min(f, float(np.sqrt(_abs_sums(w, 0) * _abs_sums(w, 1))) * _SAFETY**2)
            for f, w in zip(self.frob, weights)
        ]
        # The core's structural bounds on ||W||_2 (a convolution's kernel bound, a
        # composite layer's Schur test; -1 where it has none), rounding included.
        structural = _structural_norm_bounds(net, len(weights))
        #: A rigorous bound on ``||W_l||_2`` per layer (output layer last).
        self.norm_bounds = [
            min(o, b * _SAFETY) if b >= 0 else o for o, b in zip(self.opnorm, structural)
        ]
        for layer, w in enumerate(weights):
            if isinstance(w, CompositeLayer) and layer < len(self.slopes):
                # sqrt(||W||_1 ||W||_inf) from the layer's bounds on them (row sums exact,
                # column sums bounded): a max pool's tournament layer (rows x_a - x_b and
                # x_a) has ||W||_F near sqrt(rows) but this near sqrt(2 * 2).
                schur = float(np.sqrt(_abs_sums(w, 0) * _abs_sums(w, 1))) * _SAFETY**2
                self.norm_bounds[layer] = min(self.norm_bounds[layer], schur)
        self.slack, self.output_slack, self.spread_norms, self.old_slack = self._slacks(spread)
        self.bias2 = [float(np.sqrt(np.sum(b * b))) * _SAFETY for b in self.abs_bias]
        # Values held per point: every layer's units, the neurons' values and scales.
        per_point = 8 * (sum(net.layer_widths) + 3 * net.num_neurons + net.input_dim)
        self.chunk = int(np.clip(_CHUNK_BYTES // max(per_point, 1), 1, _CHUNK))
        # Threads for the forward passes where a chunk is a few large points (CNNs).
        self.threads = 1 if self.chunk >= _CHUNK else min(4, _cpus())

    def _slacks(
        self, spread: FloatArray
    ) -> tuple[FloatArray, FloatArray, list[float], FloatArray]:
        """The position slack of every neuron, the output layer's, and the spread norms.

        A point moved by ``Δx`` with ``|Δx| <= spread`` (componentwise) moves layer
        ``l``'s input by ``Δh_l`` with two bounds, both rigorous: componentwise,
        ``|Δh_{l+1}| <= gain_l |W_l| |Δh_l|`` (the old bound; ``||·||_2`` of it grows
        about ``sqrt(fan-in)`` per layer), and in norm, ``||Δh_{l+1}||_2 <= gain_l
        ||W_l||_2 ||Δh_l||_2`` (``gain_l = max(1, |slope_l|)``, the activation is
        ``gain_l``-Lipschitz per coordinate). ``s_l`` is the smaller of the two norms
        at each layer and ``slack_j = ||W_j||_2 s_l`` (docs/design.md §7). Also the old,
        componentwise-only slack, for comparison.
        """
        weights = self.net._weights
        slack: list[FloatArray] = []
        old: list[FloatArray] = []
        delta = np.abs(np.asarray(spread, dtype=np.float64))
        norm = float(_norms(delta)) * _SAFETY
        spread_norms: list[float] = []
        for layer, w in enumerate(weights):
            comp = float(_norms(delta)) * _SAFETY
            norm = min(norm, comp)
            spread_norms.append(norm)
            slack.append(self.row_norms[layer] * norm)
            old.append(self.row_norms[layer] * float(_norms(delta)))
            if layer < len(self.slopes):
                gain = max(1.0, abs(self.slopes[layer]))
                delta = gain * _abs_matvec(w, delta)
                norm = gain * self.norm_bounds[layer] * norm * _SAFETY
        flat = np.concatenate([[]] + [s[:n] for s, n in zip(slack, self.sizes)])
        flat_old = np.concatenate([[]] + [s[:n] for s, n in zip(old, self.sizes)])
        # Never looser than the old slack.
        flat = np.minimum(flat, flat_old)
        return flat, np.minimum(slack[-1], old[-1]), spread_norms, flat_old

    def _bound(
        self, layer: int, norm: FloatArray, error: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """The certified filter's per-point coefficients (a, b): eps_j = ||W_j|| a + |b_j| b."""
        g = self.gammas[layer]
        a = _SAFETY * _SAFETY * (g * norm * _SAFETY + error)
        return a, np.full_like(a, g * _SAFETY * _SAFETY)

    def _next_error(self, layer: int, norm: FloatArray, error: FloatArray) -> FloatArray:
        """The next layer's input error (``VertexBound::vector_error``, activated)."""
        gain = max(1.0, abs(self.slopes[layer]))
        g = self.gammas[layer]
        rounding = g * (norm * _SAFETY * self.frob[layer] + self.bias2[layer])
        out: FloatArray = gain * _SAFETY**4 * (rounding + error * self.opnorm[layer])
        return out

    def _scale(self, layer: int, norm: FloatArray, error: FloatArray) -> FloatArray:
        """What ``tol`` multiplies: ``||W_j|| ||h|| + |b_j|``, or the certified bound."""
        if self.certified:
            a, b = self._bound(layer, norm, error)
            out: FloatArray = (
                a[:, None] * self.row_norms[layer][None, :]
                + b[:, None] * self.abs_bias[layer][None, :]
            )
            return out
        scaled: FloatArray = norm[:, None] * self.row_norms[layer][None, :] + self.abs_bias[layer]
        return scaled

    def _pre_activations(self, x: FloatArray) -> list[FloatArray]:
        """Every hidden layer's values at ``x``.

        The rows are split over threads (the core releases the GIL) for networks large
        enough that a chunk is a few points.
        """
        parts = min(self.threads, x.shape[0])
        if parts <= 1:
            values: list[FloatArray] = self.net._core.pre_activations(x)
            return values
        with ThreadPoolExecutor(parts) as pool:
            results = list(pool.map(self.net._core.pre_activations, np.array_split(x, parts)))
        return [np.concatenate(layer) for layer in zip(*results)]

    def layer_values(
        self, x: FloatArray
    ) -> tuple[list[FloatArray], list[FloatArray], list[FloatArray]]:
        """Each hidden layer's values (linear units too), from one forward pass.

        Also, per layer and point, the norm of the layer's input and (certified) the
        bound on its input's error.
        """
        self.num_points += x.shape[0]
        values = self._pre_activations(x)
        norm = _norms(x)
        error = np.zeros(x.shape[0])
        norms, errors = [], []
        for layer, z in enumerate(values):
            norms.append(norm)
            errors.append(error)
            if self.certified:
                error = self._next_error(layer, norm, error)
            count = self.sizes[layer]
            slope = self.slopes[layer]
            neurons = z[:, :count]
            act = (
                np.maximum(neurons, 0.0)
                if slope == 0
                else np.where(neurons > 0, neurons, slope * neurons)
            )
            squares = np.einsum("ij,ij->i", act, act) + np.einsum(
                "ij,ij->i", z[:, count:], z[:, count:]
            )
            if np.all((squares > 1e-280) & (squares < 1e280)):
                norm = np.sqrt(squares)
            else:  # near float64's limits: the scaled norm
                norm = _norms(np.concatenate([act, z[:, count:]], axis=1))
        norms.append(norm)  # and of the output layer's input
        errors.append(error)
        return values, norms, errors

    def outputs_from(
        self,
        x: FloatArray,
        layers: tuple[list[FloatArray], list[FloatArray], list[FloatArray]],
    ) -> tuple[FloatArray, FloatArray]:
        """Outputs and their scales at ``x`` from its :meth:`layer_values`."""
        values, norms, errors = layers
        if values:
            count, slope = self.sizes[-1], self.slopes[-1]
            z = values[-1]
            neurons = z[:, :count]
            h = np.concatenate([np.where(neurons > 0, neurons, slope * neurons), z[:, count:]], 1)
        else:
            h = x
        weight, bias = self.net._weights[-1], self.net._biases[-1]
        if isinstance(weight, CompositeLayer):
            out: FloatArray = weight.apply(h) + bias
        else:
            out = np.asarray((weight @ h.T).T, dtype=np.float64) + bias
        return out, self._scale(len(values), norms[-1], errors[-1])

    def limit(self, layer: int, norm: FloatArray, error: FloatArray, tol: float) -> FloatArray:
        """``tol * scale + slack`` of the layer's neurons at points: ``(n, count)``, new."""
        count = self.sizes[layer]
        lo = int(self.offsets[layer])
        slack = self.slack[lo : lo + count]
        rn = self.row_norms[layer][:count]
        ab = self.abs_bias[layer][:count]
        if self.certified:
            a, b = self._bound(layer, norm, error)
            out: FloatArray = np.multiply.outer(tol * a, rn)
            with np.errstate(over="ignore"):
                out += tol * b[0] * ab + slack if len(b) else 0.0
            return out
        out = np.multiply.outer(tol * norm, rn)
        with np.errstate(over="ignore"):
            out += tol * ab + slack
        return out

    def scale_at(
        self, layer: int, units: IntArray, norm: FloatArray, error: FloatArray
    ) -> FloatArray:
        """``scale`` of neuron ``(layer, units[i])`` at point ``i``."""
        rn = self.row_norms[layer][units]
        ab = self.abs_bias[layer][units]
        if self.certified:
            a, b = self._bound(layer, norm, error)
            out: FloatArray = a * rn + b * ab
            return out
        scaled: FloatArray = norm * rn + ab
        return scaled

    def flat(self, neurons: IntArray) -> IntArray:
        """Pattern column of each (layer, unit) pair."""
        neurons = np.asarray(neurons, dtype=np.int64).reshape(-1, 2)
        out: IntArray = self.offsets[neurons[:, 0]] + neurons[:, 1]
        return out


def _structural_norm_bounds(net: Network, count: int) -> list[float]:
    """The core's per-layer bound on ``||W||_2`` (-1 where it has none)."""
    bounds = getattr(net._core, "norm_bounds", None)
    out = [float(b) for b in bounds()] if bounds is not None else []
    return out if len(out) == count else [-1.0] * count


def _residual(z: FloatArray, scale: FloatArray, slack: FloatArray) -> FloatArray:
    """``(|z| - slack) / scale`` clipped at 0: zero when at most ``tol``."""
    excess = np.maximum(np.abs(z) - slack, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(excess > 0, excess / scale, 0.0)
    return out


def _first_contradictions(
    ev: _Evaluator,
    layers: tuple[list[FloatArray], list[FloatArray], list[FloatArray]],
    local: IntArray,
    pattern: BoolArray,
    doubt: BoolArray | None,
    tol: float,
) -> tuple[IntArray, IntArray, FloatArray]:
    """Checks whose certain signs contradict their pattern (where not ``doubt``).

    Check ``i`` is at point ``local[i]`` of ``layers`` (:meth:`_Evaluator.layer_values`)
    against ``pattern[i]``. Layer by layer, without (points × neurons) arrays of all
    values and scales: a value contradicts its bit when ``sign · z + limit < 0``
    (``sign`` +1 for an on bit, -1 for an off one, ``limit = tol · scale + slack``).

    Returns (check, neuron column, signed residual) of the first contradicting neuron of
    each bad check, in check order.
    """
    values, norms, errors = layers
    any_doubt = doubt is not None and bool(doubt.any())
    found = np.full(len(local), -1, dtype=np.int64)
    ratio = np.zeros(len(local))
    for layer, z in enumerate(values):
        count = ev.sizes[layer]
        if count == 0:
            continue
        off = int(ev.offsets[layer])
        signed = z[local, :count]
        np.negative(signed, out=signed, where=~pattern[:, off : off + count])
        limit = ev.limit(layer, norms[layer][local], errors[layer][local], tol)
        limit += signed
        bad = limit < 0
        if any_doubt:
            assert doubt is not None
            bad &= ~doubt[:, off : off + count]
        new = np.flatnonzero(bad.any(axis=1) & (found < 0))
        if new.size == 0:
            continue
        units = np.argmax(bad[new], axis=1)
        found[new] = off + units
        zf = z[local[new], units]
        scale = ev.scale_at(layer, units, norms[layer][local[new]], errors[layer][local[new]])
        ratio[new] = np.sign(zf) * _residual(zf, scale, ev.slack[off + units])
    bad_checks = np.flatnonzero(found >= 0)
    return bad_checks, found[bad_checks], ratio[bad_checks]


def _residuals_at(
    ev: _Evaluator,
    layers: tuple[list[FloatArray], list[FloatArray], list[FloatArray]],
    local: IntArray,
    columns: IntArray,
) -> FloatArray:
    """Residual of neuron ``columns[i]`` at point ``local[i]`` of ``layers``."""
    values, norms, errors = layers
    out = np.zeros(len(local))
    layer_of = np.searchsorted(ev.offsets, columns, side="right") - 1
    for layer in np.unique(layer_of):
        sel = np.flatnonzero(layer_of == layer)
        units = columns[sel] - ev.offsets[layer]
        at = local[sel]
        zf = values[layer][at, units]
        scale = ev.scale_at(int(layer), units, norms[layer][at], errors[layer][at])
        out[sel] = _residual(zf, scale, ev.slack[columns[sel]])
    return out


def _certain_bits(
    ev: _Evaluator,
    points: FloatArray,
    tol: float,
    bits: _Bits,
    unsure: _Bits,
    rows: IntArray,
) -> None:
    """Pattern bits at points (``z`` above zero's limit) and where the sign is uncertain.

    They are written to ``bits[rows]`` and ``unsure[rows]``.
    """
    for lo in range(0, points.shape[0], ev.chunk):
        on, doubt = _signs_at(ev, ev.layer_values(points[lo : lo + ev.chunk]), tol)
        bits[rows[lo : lo + ev.chunk]] = on
        unsure[rows[lo : lo + ev.chunk]] = doubt


def _signs_at(
    ev: _Evaluator,
    layers: tuple[list[FloatArray], list[FloatArray], list[FloatArray]],
    tol: float,
) -> tuple[BoolArray, BoolArray]:
    """Neurons above zero's limit, and within it, at the points of :meth:`layer_values`."""
    values, norms, errors = layers
    n = values[0].shape[0] if values else 0
    on = np.zeros((n, ev.net.num_neurons), dtype=bool)
    doubt = np.zeros((n, ev.net.num_neurons), dtype=bool)
    for layer, z in enumerate(values):
        count, off = ev.sizes[layer], int(ev.offsets[layer])
        limit = ev.limit(layer, norms[layer], errors[layer], tol)
        neurons = z[:, :count]
        np.greater(neurons, limit, out=on[:, off : off + count])
        np.less_equal(np.abs(neurons), limit, out=doubt[:, off : off + count])
    return on, doubt


#: The certified filter's constants (cpp/src/certify.hpp): unit roundoff, safety factor.
_UNIT = 2.0**-53
_SAFETY = 1.0 + 2.0**-20


def _gamma(n: float) -> float:
    return n * _UNIT / (1.0 - n * _UNIT)


#: Rounding allowance for the position of a point, relative to the coordinates' size.
_POSITION_ULPS = 1024 * np.finfo(np.float64).eps


def _name(ev: _Evaluator, column: int) -> str:
    layer = int(np.searchsorted(ev.offsets, column, side="right") - 1)
    return f"neuron ({layer}, {column - int(ev.offsets[layer])})"


def _default_tol(tol: float | None, rtol: float | None) -> float:
    if tol is None:
        if rtol is None:
            return VERIFY_FACTOR
        return VERIFY_FACTOR * max(float(rtol), DEFAULT_RTOL)
    value = float(tol)
    if not np.isfinite(value) or value < 0:
        msg = f"tol: expected a finite number >= 0, got {tol!r}"
        raise ValueError(msg)
    return value


def _finish(
    kind: str, tol: float, cells: int, cuts: int, points: int, residual: float, c: _Collector
) -> VerifyReport:
    return VerifyReport(
        ok=c.count == 0,
        kind=kind,
        tolerance=tol,
        num_cells=cells,
        num_cuts=cuts,
        num_points=points,
        max_residual=residual,
        num_problems=c.count,
        problems=tuple(c.kept),
    )


def _unpack(patterns: NDArray[np.uint8], num_neurons: int) -> BoolArray:
    bits = np.unpackbits(patterns, axis=1, count=num_neurons, bitorder="little")
    out: BoolArray = bits.astype(bool)
    return out


class _PackedRows:
    """Rows of bits packed eight to a byte, indexed like a bool array by rows.

    A path's pieces times a CNN's million neurons: packed, the patterns of 500 pieces of
    a ResNet-18 take 80 MB instead of 640 MB.
    """

    def __init__(self, packed: NDArray[np.uint8], num_neurons: int) -> None:
        self.data = packed
        self.num_neurons = num_neurons

    @classmethod
    def filled(cls, rows: int, num_neurons: int, value: bool) -> _PackedRows:
        width = (num_neurons + 7) // 8
        return cls(np.full((rows, width), 255 if value else 0, dtype=np.uint8), num_neurons)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple):
            row, col = int(key[0]), int(key[1])
            return bool((int(self.data[row, col >> 3]) >> (col & 7)) & 1)
        return _unpack(self.data[np.asarray(key).reshape(-1)], self.num_neurons)

    def __setitem__(self, rows: Any, values: BoolArray) -> None:
        self.data[rows] = np.packbits(values, axis=1, bitorder="little")


#: Pattern bits of pieces or faces: a bool array, or packed rows for large networks.
_Bits = Union[BoolArray, _PackedRows]


# --- 1D -------------------------------------------------------------------------------


def _path_structure(r: PathResult, net: Network, c: _Collector) -> bool:
    """Shapes, counts and orderings; False when the arrays are too broken to evaluate."""
    k = r.num_breakpoints
    bp = r.breakpoints
    expected_pieces = max(k, 1) if r.closed else k + 1
    if r.num_pieces != expected_pieces:
        c.add(
            "count",
            -1,
            (),
            f"num_pieces={r.num_pieces} but {k} breakpoints give "
            f"{expected_pieces} on an {'closed' if r.closed else 'open'} path",
        )
    if r.segment.shape != (k,) or r.flip_offsets.shape != (k + 1,):
        c.add(
            "shape",
            -1,
            (),
            f"segment {r.segment.shape} and flip_offsets "
            f"{r.flip_offsets.shape} do not match {k} breakpoints",
        )
        return False
    counts = np.diff(r.flip_offsets)
    if k and (r.flip_offsets[0] != 0 or np.any(counts < 1)):
        c.add("flips", -1, (), "every breakpoint needs at least one flipping neuron")
        return False
    if r.flip_neurons.reshape(-1, 2).shape[0] != int(r.flip_offsets[-1]):
        c.add("shape", -1, (), "flip_offsets do not end at the number of flip_neurons")
        return False
    neurons = r.flip_neurons.reshape(-1, 2)
    sizes = np.array(net.hidden_sizes, dtype=np.int64)
    layer_ok = (neurons[:, 0] >= 0) & (neurons[:, 0] < len(sizes))
    unit_ok = layer_ok & (neurons[:, 1] >= 0)
    unit_ok[layer_ok] &= neurons[layer_ok, 1] < sizes[neurons[layer_ok, 0]]
    if not np.all(unit_ok):
        c.add("flips", -1, (), f"{int(np.sum(~unit_ok))} flipping neurons are out of range")
        return False
    points = r.points
    closed_pts = np.vstack([points, points[:1]]) if r.closed else points
    seg_len = np.linalg.norm(np.diff(closed_pts, axis=0), axis=1)
    length = float(np.sum(seg_len))
    if not abs(length - r.length) <= 1e-12 * max(length, 1e-300) + 1e-300:
        c.add("length", -1, (), f"length {r.length!r} but the polyline is {length!r} long")
    if not np.all(np.isfinite(bp)):
        c.add("order", -1, (), "breakpoints are not finite")
        return False
    wrong = np.flatnonzero(np.diff(bp) <= 0)
    c.add_many("order", wrong + 1, bp[wrong + 1], lambda i: "breakpoints not ascending")
    out = np.flatnonzero((bp < 0) | (bp > r.length))
    c.add_many("order", out, bp[out], lambda i: f"outside [0, {r.length!r}]")
    starts = np.concatenate([[0.0], np.cumsum(seg_len)])
    seg = r.segment
    bad = np.flatnonzero((seg < 0) | (seg >= len(seg_len)))
    c.add_many("segment", bad, bp[bad], lambda i: "segment index out of range")
    if bad.size:
        return False
    slack = 1e-12 * max(length, 1e-300)
    off = np.flatnonzero((bp < starts[seg] - slack) | (bp > starts[seg + 1] + slack))
    c.add_many("segment", off, bp[off], lambda i: f"not on segment {int(seg[off[i]])}")
    if r.patterns is not None:
        bytes_per = (r.num_neurons + 7) // 8
        if r.patterns.shape != (r.num_pieces, bytes_per):
            c.add(
                "shape",
                -1,
                (),
                f"patterns {r.patterns.shape}, expected {(r.num_pieces, bytes_per)}",
            )
            return False
        distinct = len(np.unique(r.patterns, axis=0)) if r.num_pieces else 0
        if distinct != r.num_distinct:
            c.add(
                "count",
                -1,
                (),
                f"num_distinct={r.num_distinct} but the pieces carry {distinct} distinct patterns",
            )
    return True


def _sub_intervals(r: PathResult) -> tuple[FloatArray, FloatArray, FloatArray, IntArray]:
    """Pieces cut at the polyline's vertices: start, end, mid points and their piece.

    Returns (positions (m, 3) of start/mid/end, points (m, 3, d), lengths (m,), piece (m,)).
    """
    points = r.points
    closed_pts = np.vstack([points, points[:1]]) if r.closed else points
    seg_len = np.linalg.norm(np.diff(closed_pts, axis=0), axis=1)
    starts = np.concatenate([[0.0], np.cumsum(seg_len)])
    starts[-1] = r.length
    knots = np.unique(np.concatenate([r.breakpoints, starts]))
    knots = knots[(knots >= 0) & (knots <= r.length)]
    lo, hi = knots[:-1], knots[1:]
    mid = 0.5 * (lo + hi)
    positions = np.stack([lo, mid, hi], axis=1)
    seg = np.clip(np.searchsorted(starts, mid, side="right") - 1, 0, len(seg_len) - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = (positions - starts[seg][:, None]) / seg_len[seg][:, None]
    frac = np.clip(np.nan_to_num(frac), 0.0, 1.0)
    a, b = closed_pts[seg], closed_pts[seg + 1]
    xs = a[:, None, :] + frac[:, :, None] * (b - a)[:, None, :]
    k = r.num_breakpoints
    piece = np.searchsorted(r.breakpoints, mid, side="right")
    if r.closed:
        piece = piece % max(k, 1)
    return positions, xs, hi - lo, piece.astype(np.int64)


def _piece_bits(
    r: PathResult, ev: _Evaluator, xs: FloatArray, lengths: FloatArray, piece: IntArray, tol: float
) -> tuple[_PackedRows, _PackedRows, IntArray]:
    """Each piece's pattern, where it is uncertain, and the sub-intervals it was read at.

    The pattern is the stored one, or the one at the middle of the piece's longest
    sub-interval; stored patterns are never uncertain.
    """
    n = r.num_neurons
    if r.patterns is not None:
        packed = np.ascontiguousarray(r.patterns, dtype=np.uint8)
        unsure = _PackedRows.filled(r.num_pieces, n, False)
        return _PackedRows(packed, n), unsure, np.zeros(0, np.int64)
    order = np.lexsort((-lengths, piece))
    first = order[np.concatenate([[True], piece[order][1:] != piece[order][:-1]])]
    bits = _PackedRows.filled(r.num_pieces, n, False)
    unsure = _PackedRows.filled(r.num_pieces, n, True)
    _certain_bits(ev, xs[first, 1], tol, bits, unsure, piece[first])
    return bits, unsure, first


def _breakpoint_points(
    r: PathResult, closed_pts: FloatArray, steps: FloatArray, bp_rows: IntArray
) -> FloatArray:
    """The input point of breakpoint ``bp_rows[i]``, one row each."""
    seg = r.segment[bp_rows]
    seg_len = np.linalg.norm(steps, axis=1)
    starts = np.concatenate([[0.0], np.cumsum(seg_len)])
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = (r.breakpoints[bp_rows] - starts[seg]) / seg_len[seg]
    frac = np.clip(np.nan_to_num(frac), 0.0, 1.0)
    out: FloatArray = closed_pts[seg] + frac[:, None] * steps[seg]
    return out


def _path_checks(
    ev: _Evaluator,
    points: FloatArray,
    check_rows: IntArray,
    columns: IntArray,
    bits: _Bits,
    unsure: _Bits,
    tol: float,
    argmax: Any = None,
) -> tuple[tuple[IntArray, IntArray, FloatArray], FloatArray]:
    """Pattern checks and residuals at points, each distinct point evaluated once.

    The first ``len(check_rows)`` points are checked against ``bits[check_rows[i]]``
    (where not ``unsure``): (check, neuron column, signed residual) of the first
    contradicting neuron of each bad check, as :func:`_contradictions`. The others are
    breakpoints: the residual of neuron ``columns[j]`` at point ``len(check_rows) + j``.
    ``argmax(x, values, local, checks)``, when given, runs on the same forward pass:
    ``x`` a chunk of distinct points, ``values`` their hidden layers, and check
    ``checks[i]`` at point ``local[i]`` of the chunk.

    Layer by layer, without the (points × neurons) arrays of all values and scales: a
    value contradicts its bit when ``sign · z + limit < 0`` (``sign`` +1 for an on bit,
    -1 for an off one, ``limit = tol · scale + slack``), which needs one gathered copy
    of the layer's values and one array of limits.
    """
    n_checks = len(check_rows)
    if len(points) == 0:
        empty = np.zeros(0, np.int64)
        return (empty, empty, np.zeros(0)), np.zeros(len(columns))
    distinct, inverse = np.unique(points, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    sorted_inverse = inverse[order]
    rows: list[IntArray] = []
    cols: list[IntArray] = []
    ratios: list[FloatArray] = []
    residuals = np.zeros(len(columns))
    for lo in range(0, len(distinct), ev.chunk):
        hi = min(lo + ev.chunk, len(distinct))
        values, norms, errors = ev.layer_values(distinct[lo:hi])
        a, b = np.searchsorted(sorted_inverse, [lo, hi])
        mine = order[a:b]
        checks = mine[mine < n_checks]
        if checks.size:
            local = inverse[checks] - lo
            if argmax is not None:
                argmax(distinct[lo:hi], values, local, checks)
            pattern = bits[check_rows[checks]]
            doubt = unsure[check_rows[checks]]
            new, col, ratio = _first_contradictions(
                ev, (values, norms, errors), local, pattern, doubt, tol
            )
            rows.append(checks[new])
            cols.append(col)
            ratios.append(ratio)
        cuts = mine[mine >= n_checks]
        if cuts.size:
            residuals[cuts - n_checks] = _residuals_at(
                ev, (values, norms, errors), inverse[cuts] - lo, columns[cuts - n_checks]
            )
    if not rows:
        empty = np.zeros(0, np.int64)
        return (empty, empty, np.zeros(0)), residuals
    all_rows: IntArray = np.concatenate(rows)
    all_cols: IntArray = np.concatenate(cols)
    all_ratios: FloatArray = np.concatenate(ratios)
    by_row = np.argsort(all_rows, kind="stable")
    return (all_rows[by_row], all_cols[by_row], all_ratios[by_row]), residuals


def _end_checks(
    r: PathResult,
    ev: _Evaluator,
    xs: FloatArray,
    positions: FloatArray,
    piece: IntArray,
    at: FloatArray,
    columns: IntArray,
    tol: float,
    c: _Collector,
    layered: tuple[FloatArray, FloatArray, IntArray, IntArray] | None = None,
) -> tuple[_PackedRows, _PackedRows, FloatArray]:
    """Every neuron at both ends of every sub-interval against its piece's pattern.

    One evaluation of each distinct end and breakpoint (``at``, where flipping neuron
    ``columns[j]`` must vanish; a whole forward pass, or layer by layer from the layer
    after its earliest flip on with ``layered``) gives each point's certain signs: above zero's
    limit ("on"), below minus it ("off"), or within it (either sign accepted). A piece's
    pattern is the stored one or, without stored patterns, the certain signs of its
    ends (the bits of neurons certain at no end are unsure, as a pattern read at a middle
    has the bits of neurons within the tolerance there). An end contradicts the pattern
    where its sign is certain and not the pattern's. No middles are checked: by
    induction over the layers, signs that hold at both ends of a sub-interval hold inside
    it (docs/design.md §7).

    ``layered``: (knots, their input points where born at -1, birth layers, knot of each
    flip) to evaluate the knots layer by layer (:func:`_knot_signs`) instead of one
    forward pass each.

    Returns the pieces' patterns, their uncertain bits, and the residual of each
    flipping neuron at its breakpoint.
    """
    m = len(piece)
    if layered is not None:
        on, doubt, residuals = _knot_signs(ev, *layered[:3], layered[3], columns, tol)
        knots = (np.arange(m), np.arange(1, m + 1))
    else:
        on, doubt, residuals, knots = _forward_signs(ev, xs, at, columns, tol)
    bits, unsure = _pattern_checks(r, ev, positions, piece, on, doubt, knots, c)
    return bits, unsure, residuals


def _forward_signs(
    ev: _Evaluator, xs: FloatArray, at: FloatArray, columns: IntArray, tol: float
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], FloatArray, tuple[IntArray, IntArray]]:
    """Packed certain signs at the distinct ends, one whole forward pass each.

    Also the residual of each flipping neuron ``columns[j]`` at ``at[j]``, and the
    distinct point at the start and end of each sub-interval.
    """
    n = ev.net.num_neurons
    m = xs.shape[0]
    width = (n + 7) // 8
    ends = np.concatenate([xs[:, 0], xs[:, 2], at])
    distinct, inverse = np.unique(ends, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    sorted_inverse = inverse[order]
    on = np.zeros((len(distinct), width), dtype=np.uint8)
    doubt = np.zeros((len(distinct), width), dtype=np.uint8)
    residuals = np.zeros(len(columns))
    for lo in range(0, len(distinct), ev.chunk):
        hi = min(lo + ev.chunk, len(distinct))
        layers = ev.layer_values(distinct[lo:hi])
        up, zero = _signs_at(ev, layers, tol)
        on[lo:hi] = np.packbits(up, axis=1, bitorder="little")
        doubt[lo:hi] = np.packbits(zero, axis=1, bitorder="little")
        a, b = np.searchsorted(sorted_inverse, [lo, hi])
        mine = order[a:b]
        cuts = mine[mine >= 2 * m] - 2 * m
        if cuts.size:
            residuals[cuts] = _residuals_at(ev, layers, inverse[cuts + 2 * m] - lo, columns[cuts])
    return on, doubt, residuals, (inverse[:m], inverse[m : 2 * m])


def _take(rows: NDArray[Any], index: IntArray) -> NDArray[Any]:
    """``rows[index]``: a view where ``index`` is a run of consecutive rows, else a copy."""
    run = len(index) > 0 and int(index[-1]) - int(index[0]) == len(index) - 1
    if run and (len(index) == 1 or bool(np.all(np.diff(index) == 1))):
        return rows[int(index[0]) : int(index[-1]) + 1]
    out: NDArray[Any] = rows[index]
    return out


def _pattern_checks(
    r: PathResult,
    ev: _Evaluator,
    positions: FloatArray,
    piece: IntArray,
    on: NDArray[np.uint8],
    doubt: NDArray[np.uint8],
    knots: tuple[IntArray, IntArray],
    c: _Collector,
) -> tuple[_PackedRows, _PackedRows]:
    """The pieces' patterns (stored, or the certain signs at their ends) against the ends.

    ``on`` and ``doubt`` are the packed certain signs of points, ``knots`` the points at
    the start and end of each sub-interval.
    """
    n = r.num_neurons
    m = len(piece)
    width = (n + 7) // 8
    valid = np.packbits(np.ones(n, dtype=bool), bitorder="little")
    off = np.bitwise_or(on, doubt)
    np.invert(off, out=off)
    off &= valid
    if r.patterns is not None:
        bits = np.ascontiguousarray(r.patterns, dtype=np.uint8)
        unsure = np.zeros_like(bits)
    else:
        by = np.argsort(piece, kind="stable")
        first = np.flatnonzero(np.concatenate([[True], piece[by][1:] != piece[by][:-1]]))
        present = piece[by][first]
        s, e = knots[0][by], knots[1][by]
        if len(first) == m and np.array_equal(present, np.arange(r.num_pieces)):
            # One sub-interval per piece (a segment): no reduction, no copies of rows.
            bits = np.bitwise_or(_take(on, s), _take(on, e))
            sure = np.bitwise_or(_take(off, s), _take(off, e))
            sure |= bits
        else:
            bits = np.zeros((r.num_pieces, width), dtype=np.uint8)
            sure = np.zeros_like(bits)
            bits[present] = np.bitwise_or.reduceat(on[s] | on[e], first, axis=0)
            sure[present] = bits[present] | np.bitwise_or.reduceat(off[s] | off[e], first, axis=0)
        np.invert(sure, out=sure)
        sure &= valid
        unsure = sure
        del sure
        # A neuron certain at no end is within the tolerance all over the piece (it is
        # affine there, by induction): its bit stays unsure. A middle would not decide
        # it either (its value there lies between the ends'), unless the tolerance is
        # smaller there than at both ends: it decided none in ResNet-18 width 16.
    # Ends whose certain signs contradict the pattern, in chunks of sub-intervals.
    where = ("start", "end")
    step = max(1, _CHUNK_BYTES // (8 * max(width, 1)))
    bad_rows: list[int] = []
    bad_cols: list[int] = []
    for side, knot in enumerate(knots):
        for lo in range(0, m, step):
            rows = np.arange(lo, min(m, lo + step))
            p, kn = piece[rows], knot[rows]
            bits_p = _take(bits, p)
            # (on & ~bits | off & bits) & ~unsure, in place
            wrong = np.invert(bits_p)
            wrong &= _take(on, kn)
            wrong |= np.bitwise_and(_take(off, kn), bits_p)
            wrong &= ~_take(unsure, p)
            for h in np.flatnonzero(wrong.any(axis=1)):
                col = np.flatnonzero(np.unpackbits(wrong[h], count=n, bitorder="little"))[0]
                bad_rows.append(2 * int(rows[h]) + side)
                bad_cols.append(int(col))
    sort = np.argsort(np.array(bad_rows, dtype=np.int64), kind="stable")
    rows_ = np.array(bad_rows, dtype=np.int64)[sort]
    cols_ = np.array(bad_cols, dtype=np.int64)[sort]
    packed = _PackedRows(bits, n)

    def message(i: int) -> str:
        bit = int(packed[piece[rows_[i] // 2], cols_[i]])
        return (
            f"{_name(ev, int(cols_[i]))} is {'off' if bit else 'on'} beyond the tolerance at "
            f"the {where[rows_[i] % 2]} of a sub-interval of the piece, against the piece's "
            f"pattern bit {bit}"
        )

    c.add_many("pattern", piece[rows_ // 2], positions[rows_ // 2, 2 * (rows_ % 2)], message)
    return packed, _PackedRows(unsure, n)


# --- 1D, layer by layer ----------------------------------------------------------------

#: Rounding of an interpolated value ``v_p + λ (v_q - v_p)``, relative to ``|v_p| +
#: |v_q|`` (three roundings; a generous multiple of γ_3).
_INTERP_ROUNDING = _gamma(4.0) * _SAFETY**2


def _activate(z: FloatArray, count: int, slope: float) -> FloatArray:
    """A hidden layer's output, in place: its ``count`` neurons activated, its linear units kept."""
    neurons = z[:, :count]
    if slope == 0:
        np.maximum(neurons, 0.0, out=neurons)
    else:
        np.multiply(neurons, slope, out=neurons, where=neurons < 0)
    return z


def _enclosing(
    member_pos: FloatArray, at: FloatArray
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """The members ``p <= at < q`` around each position, ``λ``, and 1 where ``λ > 0``."""
    last = len(member_pos) - 1
    p = np.clip(np.searchsorted(member_pos, at, side="right") - 1, 0, last)
    q = np.minimum(p + 1, last)
    span = member_pos[q] - member_pos[p]
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where((q > p) & (span > 0), (at - member_pos[p]) / span, 0.0)
    lam = np.clip(lam, 0.0, 1.0)
    return p, q, lam, (lam > 0).astype(np.float64)


def _lerp(values: FloatArray, p: IntArray, q: IntArray, lam: FloatArray, cols: Any) -> FloatArray:
    """``v_p + λ (v_q - v_p)`` for the rows p, q of ``values`` (exactly ``v_p`` at ``λ = 0``)."""
    vp = values[p, cols]
    out: FloatArray = values[q, cols]
    out -= vp
    out *= lam[:, None]
    out += vp
    return out


def _layer_apply(ev: _Evaluator, layer: int, h: FloatArray, out: FloatArray) -> None:
    """Layer ``layer``'s map at the rows of ``h`` into ``out``, split over threads."""
    core = ev.net._core
    parts = min(ev.threads, h.shape[0])
    if parts <= 1:
        core.apply_layer(layer, h, out)
        return
    bounds = np.linspace(0, h.shape[0], parts + 1).astype(np.int64)
    with ThreadPoolExecutor(parts) as pool:
        list(
            pool.map(
                lambda i: core.apply_layer(
                    layer, h[bounds[i] : bounds[i + 1]], out[bounds[i] : bounds[i + 1]]
                ),
                range(parts),
            )
        )


def _or_bits(target: NDArray[np.uint8], row: int, bools: BoolArray, off: int) -> None:
    """OR ``bools`` (rows × count) into packed rows ``row..`` of ``target`` from bit ``off``."""
    shift = off % 8
    if shift:
        bools = np.concatenate([np.zeros((bools.shape[0], shift), dtype=bool), bools], axis=1)
    packed = np.packbits(bools, axis=1, bitorder="little")
    first = off // 8
    target[row : row + bools.shape[0], first : first + packed.shape[1]] |= packed


def _knot_signs(
    ev: _Evaluator,
    knots: FloatArray,
    inputs: FloatArray,
    birth: IntArray,
    bp_knot: IntArray,
    columns: IntArray,
    tol: float,
) -> tuple[NDArray[np.uint8], NDArray[np.uint8], FloatArray]:
    """Certain signs (packed "on" and "within the bound") at every knot, layer by layer.

    The knots are the pieces' ends (breakpoints and the polyline's vertices) at arc
    lengths ``knots``; ``birth[i]`` is the earliest layer of a neuron flipping at knot
    ``i``, -1 at the polyline's vertices, whose input points are the rows of
    ``inputs`` in order. Layer ``l``'s *members* are the knots born before ``l``: their
    layer-``l`` values are layer ``l``'s map (the core's) at their own layer ``l - 1``
    outputs; every other knot's are interpolated linearly between the enclosing
    members, since the layers before ``l`` were checked constant between them and the
    network up to layer ``l`` is affine there (docs/design.md §7). The zero bound of an
    interpolated value adds the interpolation's rounding. Returns the packed bits of
    every knot, and the residual of flipping neuron ``columns[j]`` at knot ``bp_knot[j]``.
    """
    n = ev.net.num_neurons
    width = (n + 7) // 8
    nk = len(knots)
    out = _KnotBits(ev, np.zeros((nk, width), np.uint8), np.zeros((nk, width), np.uint8))
    residuals = np.zeros(len(columns))
    ev.num_points += nk  # each evaluated once, from the layer after its birth on
    col_layer = np.searchsorted(ev.offsets, columns, side="right") - 1
    # Members in the order they joined (rows of the values), and by position (``perm``).
    members = np.flatnonzero(birth < 0)
    h = np.ascontiguousarray(inputs, dtype=np.float64)  # the members' inputs of layer 0
    h_error = np.zeros(len(members))  # bound on ||h - exact||_2 (certified)
    widths = ev.net.layer_widths
    g = _INTERP_ROUNDING
    last = len(ev.sizes) - 1
    # One buffer, each layer's values written at one end (even layers at the start, odd
    # ones at the end) while the other end holds its input (the previous layer's,
    # activated in place): allocated once, each page faulted in once, instead of a new
    # array of up to hundreds of MB per layer; as large as two consecutive layers' values.
    # Layer l's rows: the knots born before l and at l (none at the last layer).
    by_birth = np.sort(birth)
    rows_of = np.searchsorted(by_birth, np.arange(len(ev.sizes)), "right")
    rows_of[last] = np.searchsorted(by_birth, last, "left")
    sizes = [int(r) * w for r, w in zip(rows_of, widths)]
    buffer = np.empty(max([a + b for a, b in zip(sizes, sizes[1:])] + sizes, default=0))
    update: _NextLayerUpdate | None = None
    for layer in range(len(ev.sizes)):
        count, slope = ev.sizes[layer], ev.slopes[layer]
        perm = np.argsort(knots[members], kind="stable")
        m = len(members)
        if not ev.certified:
            h_error = np.zeros(m)
        born = np.flatnonzero(birth == layer) if layer < last else np.zeros(0, np.int64)
        # Room for the knots born here: layer l + 1's members are these and them.
        rows = m + len(born)
        used = rows * widths[layer]
        at = 0 if layer % 2 == 0 else len(buffer) - used
        z = buffer[at : at + used].reshape(rows, widths[layer])
        dense = m - (len(update.rows) if update is not None else 0)
        _layer_apply(ev, layer, h[:dense], z[:dense])
        norm, dot = _norms_and_dots(h, perm)
        h = np.empty((0, 0))  # the other buffer's view: not read again
        member_extra = None
        if update is not None:
            member_extra = update.apply(ev, layer, z, dense, norm, perm)
            update = None
        sorted_members = members[perm]
        if count:
            _check_layer(
                ev,
                layer,
                z,
                perm,
                norm,
                h_error[perm],
                dot,
                knots,
                sorted_members,
                tol,
                out,
                member_extra,
            )
            mine = np.flatnonzero(col_layer == layer)
            if mine.size:
                residuals[mine] = out.residuals(layer, z, bp_knot[mine], columns[mine])
        if layer == last:
            break
        # The knots born at layer l: their layer-l values are interpolated (all units:
        # the whole layer is affine between members).
        p, q, lam, inner = _enclosing(knots[sorted_members], knots[born])
        rp, rq = perm[p], perm[q]
        if widths[layer] < 4096:
            z[m:] = _lerp(z, rp, rq, lam, slice(None))
        else:  # wide rows: the same operations row by row in place, no temporaries
            for i in range(len(born)):
                row = z[m + i]
                np.subtract(z[rq[i]], z[rp[i]], out=row)
                row *= lam[i]
                row += z[rp[i]]
        if ev.certified:
            nxt = ev._next_error(layer, norm[np.argsort(perm)], h_error)
            gain = max(1.0, abs(slope))
            zn = _norms(z[:m])
            rounding = g * inner * (zn[rp] + zn[rq])
            new_err = (1.0 - lam) * nxt[rp] + lam * nxt[rq] + gain * _SAFETY * rounding
            h_error = np.concatenate([nxt, new_err])
        elif len(born) and widths[layer] >= 4096 and ev.net._core.can_add_columns(layer + 1):
            # Layer l + 1 at these knots from their neighbours' values and a few columns.
            update = _NextLayerUpdate(z, count, slope, m, rp, rq, lam)
        members = np.concatenate([members, born])
        h = _activate(z, count, slope)
        del z
    return out.on, out.doubt, residuals


class _NextLayerUpdate:
    """The next layer's values at the knots a layer adds, from their neighbours' (rtol).

    Knot ``t`` born at layer ``l`` lies between members ``p``, ``q`` of layer ``l`` at
    ``λ``, where the network up to layer ``l`` is affine, so its layer-``l`` values are
    ``z_t = (1 - λ) z_p + λ z_q`` and its layer-``l + 1`` values are

        ``y_t = (1 - λ) y_p + λ y_q + W d``,  ``d = act(z_t) - (1 - λ) act(z_p) - λ act(z_q)``

    (``y = W act(z) + b``): ``d_j`` is zero wherever ``z_p,j`` and ``z_q,j`` are on one
    side of zero (the activation is linear there), so ``W d`` is a few columns of ``W``
    (``Network._core.add_columns``) instead of a row of the dense product. The values
    are those of the dense product at the exact ``z_t``; their rounding (:meth:`apply`)
    is added to the knot's zero bound in layer ``l + 1`` as an interpolation's is.
    """

    def __init__(
        self,
        z: FloatArray,
        count: int,
        slope: float,
        m: int,
        rp: IntArray,
        rq: IntArray,
        lam: FloatArray,
    ) -> None:
        # z: layer l's values (rows: members, then the knots born at l), not activated.
        n = len(rp)
        self.rows = np.arange(m, m + n, dtype=np.int64)
        self.p, self.q, self.lam = rp, rq, lam
        gain = max(1.0, abs(slope))
        cols: list[IntArray] = []
        coefs: list[FloatArray] = []
        self.pre = np.zeros(n)  # c_d ||v_S|| + gamma_k ||d||, per knot
        self.gamma = np.zeros(n)  # gamma_k, k = |S| + 2
        # |fl(act(fl z_t)) - act(z_t)| <= gain g (|z_p| + |z_q|) (the interpolation's
        # rounding) and forming d adds 5 roundings of terms each at most gain (|z_p| +
        # |z_q|): |d~_j - d_j| <= c_d (|z_p,j| + |z_q,j|).
        c_d = gain * (_INTERP_ROUNDING + 3.0 * _gamma(5.0)) * _SAFETY
        for i in range(n):
            zp, zq = z[rp[i], :count], z[rq[i], :count]
            cut = np.flatnonzero((zp > 0) != (zq > 0))
            a, b, c = z[m + i, cut], zp[cut], zq[cut]
            if slope == 0:
                a, b, c = np.maximum(a, 0.0), np.maximum(b, 0.0), np.maximum(c, 0.0)
            else:
                a, b, c = (np.where(x > 0, x, slope * x) for x in (a, b, c))
            d = a - ((1.0 - lam[i]) * b + lam[i] * c)
            v = np.abs(zp[cut]) + np.abs(zq[cut])
            self.gamma[i] = _gamma(len(cut) + 2.0)
            self.pre[i] = c_d * float(_norms(v[None, :])[0]) + self.gamma[i] * float(
                _norms(d[None, :])[0]
            )
            cols.append(cut.astype(np.int64))
            coefs.append(d)
        self.offsets = np.concatenate([[0], np.cumsum([len(c) for c in cols])]).astype(np.int64)
        self.cols = np.concatenate([np.zeros(0, np.int64), *cols])
        self.coef = np.concatenate([np.zeros(0), *coefs])

    def apply(
        self,
        ev: _Evaluator,
        layer: int,
        z: FloatArray,
        dense: int,
        norm: FloatArray,
        perm: IntArray,
    ) -> tuple[FloatArray, FloatArray]:
        """Layer ``layer``'s values at the knots, rows ``dense ..`` of ``z``, in place.

        ``z``'s rows before ``dense`` hold the dense product; ``norm`` is ``||h||`` by
        position (``perm``). Returns each member's (row's) extra zero-bound coefficients
        ``(a, b)``: the value is within ``a ||W_j|| + b |b_j|`` of the dense product's at
        the exact ``z_t``: ``g (|y_p| + |y_q|)`` from interpolating ``y`` (``|y_j| <=
        ||W_j|| ||h|| + |b_j|``), ``||W_j|| ||d~ - d||`` and the columns' sums' rounding
        ``gamma_k (|lerp_j| + ||W_j|| ||d||)``.
        """
        by_row = np.empty(len(perm))
        by_row[perm] = norm
        for i, row in enumerate(self.rows):
            target = z[row]
            np.subtract(z[self.q[i]], z[self.p[i]], out=target)
            target *= self.lam[i]
            target += z[self.p[i]]
        ev.net._core.add_columns(layer, self.rows, self.offsets, self.cols, self.coef, z)
        extra_a = np.zeros(len(perm))
        extra_b = np.zeros(len(perm))
        ends = by_row[self.p] + by_row[self.q]
        g = _INTERP_ROUNDING
        extra_a[self.rows] = (g * ends + self.pre + self.gamma * ends) * _SAFETY
        extra_b[self.rows] = (2.0 * g + 2.0 * self.gamma) * _SAFETY
        return extra_a, extra_b


def _norms_and_dots(h: FloatArray, perm: IntArray) -> tuple[FloatArray, FloatArray]:
    """``||h||`` of each row by position (``h[perm]``), and ``<h_s, h_s+1>`` of neighbours.

    A few rows at a time (gathered into a block that stays in cache).
    """
    m = len(perm)
    if h.shape[1] >= 4096 and m:
        # Wide rows: each row read in place, no gathered copies.
        squares = np.einsum("ij,ij->i", h, h)
        if np.all((squares > 1e-280) & (squares < 1e280)):
            norm = np.sqrt(squares)[perm]
        else:  # near float64's limits: the scaled norm
            norm = _norms(h)[perm]
        dot = np.array(
            [float(np.einsum("i,i->", h[perm[s]], h[perm[s + 1]])) for s in range(m - 1)]
        )
        return norm, dot
    norm = np.zeros(m)
    dot = np.zeros(max(m - 1, 0))
    step = max(1, (1 << 19) // max(h.shape[1], 1))
    for lo in range(0, m, step):
        hi = min(m, lo + step)
        block = h[perm[lo : min(m, hi + 1)]]
        norm[lo:hi] = _norms(block[: hi - lo])
        if len(block) > 1:
            dot[lo : lo + len(block) - 1] = np.einsum("ij,ij->i", block[:-1], block[1:])
    return norm, dot


class _KnotBits:
    """Packed certain signs at the knots, and the zero bound of the layer being checked.

    For layer ``l`` with members ``p`` (``m`` of them, at ``mpos``): knot ``t`` lies in
    stretch ``s`` (``mpos[s] <= t < mpos[s + 1]``) at ``λ_t``, and neuron ``j``'s zero
    bound there is ``coef_a[t] ||W_j|| + coef_b[t] |b_j| + slack_j``, with ``scale_a``,
    ``scale_b`` the residual's denominator and ``extra_a``, ``extra_b`` the
    interpolation's rounding (subtracted from the residual's numerator).
    """

    def __init__(self, ev: _Evaluator, on: NDArray[np.uint8], doubt: NDArray[np.uint8]) -> None:
        self.ev, self.on, self.doubt = ev, on, doubt
        empty = np.zeros(0)
        self.p = self.q = np.zeros(0, np.int64)
        self.lam = self.coef_a = self.coef_b = self.scale_a = self.scale_b = empty
        self.extra_a = self.extra_b = empty

    def residuals(
        self, layer: int, z: FloatArray, knot: IntArray, columns: IntArray
    ) -> FloatArray:
        """Residual of neuron ``columns[i]`` (of ``layer``) at knot ``knot[i]``."""
        ev = self.ev
        off = int(ev.offsets[layer])
        units = columns - off
        p, q, lam = self.p[knot], self.q[knot], self.lam[knot]
        zp = z[p, units]
        value = np.abs(zp + lam * (z[q, units] - zp))
        rn, ab = ev.row_norms[layer][units], ev.abs_bias[layer][units]
        scale = self.scale_a[knot] * rn + self.scale_b[knot] * ab
        excess = value - ev.slack[columns]
        excess -= self.extra_a[knot] * rn + self.extra_b[knot] * ab
        return _residual_of(excess, scale)


def _check_layer(
    ev: _Evaluator,
    layer: int,
    z: FloatArray,
    rows: IntArray,
    norm: FloatArray,
    h_error: FloatArray,
    dot: FloatArray,
    knots: FloatArray,
    members: IntArray,
    tol: float,
    out: _KnotBits,
    member_extra: tuple[FloatArray, FloatArray] | None = None,
) -> None:
    """Layer ``layer``'s certain signs at every knot, from its values ``z`` at the members.

    Members by position: ``members`` (knots), ``rows`` (their rows of ``z``), ``norm``,
    ``h_error`` (their input's norm and error bound) and ``dot`` (``<h_s, h_s+1>``).

    Stretch by stretch: a neuron beyond the largest zero bound of the stretch with the
    same sign at both its members has that certain sign at every knot inside (it is
    affine there); only the others are interpolated knot by knot.

    ``member_extra``: per row of ``z``, coefficients ``(a, b)`` of a member's own error
    bound ``a ||W_j|| + b |b_j|`` (:class:`_NextLayerUpdate`; rtol only), interpolated
    to the knots between members and added to their zero bounds.
    """
    count = ev.sizes[layer]
    off = int(ev.offsets[layer])
    nk, m = len(knots), len(members)
    mpos = knots[members]
    p, q, lam, inner = _enclosing(mpos, knots)
    g = _INTERP_ROUNDING
    s_q = np.minimum(np.arange(m) + 1, m - 1)  # each stretch's second member
    if ev.certified:
        a_coef, b_arr = ev._bound(layer, norm, h_error)
        b_coef = float(b_arr[0]) if len(b_arr) else 0.0
        # eps_t = (1 - λ) eps_p + λ eps_q + g (|z_p| + |z_q|), where
        # |z_j| <= ||W_j|| (||h|| + error) + |b_j| + eps_j at a member.
        size = norm + h_error + a_coef
        scale_a = (1.0 - lam) * a_coef[p] + lam * a_coef[q] + g * inner * (size[p] + size[q])
        scale_b = b_coef + g * inner * (2.0 + 2.0 * b_coef)
        coef_a, coef_b = tol * scale_a, tol * scale_b
        extra_a, extra_b = np.zeros(nk), np.zeros(nk)
        # The largest bound in each stretch (inner = 1).
        top_a = tol * (np.maximum(a_coef, a_coef[s_q]) + g * (size + size[s_q]))
        top_b = tol * (b_coef + g * (2.0 + 2.0 * b_coef))
    else:
        # tol (||W_j|| ||h_t|| + |b_j|) + g (|z_p| + |z_q|), |z| <= ||W_j|| ||h|| + |b_j|;
        # ||h_t|| is at most the larger of its ends' (a norm is convex).
        cross = np.concatenate([dot, [0.0]])[p]
        quad = (
            ((1.0 - lam) * norm[p]) ** 2 + 2.0 * lam * (1.0 - lam) * cross + (lam * norm[q]) ** 2
        )
        scale_a = np.sqrt(np.maximum(quad, 0.0))
        scale_b = np.ones(nk)
        extra_a = g * inner * (norm[p] + norm[q]) * _SAFETY
        extra_b = 2.0 * g * inner * _SAFETY
        top_a = tol * np.maximum(norm, norm[s_q]) + g * (norm + norm[s_q]) * _SAFETY
        top_b = tol + 2.0 * g * _SAFETY
        if member_extra is not None:
            # Members' own error bounds (by position), interpolated: (1 - λ) e_p + λ e_q.
            ma, mb = member_extra[0][rows], member_extra[1][rows]
            extra_a = extra_a + (1.0 - lam) * ma[p] + lam * ma[q]
            extra_b = extra_b + (1.0 - lam) * mb[p] + lam * mb[q]
            top_a = top_a + np.maximum(ma, ma[s_q])
            top_b = top_b + float(np.max(mb, initial=0.0))
        coef_a, coef_b = tol * scale_a + extra_a, tol * scale_b + extra_b
    out.p, out.q, out.lam = rows[p], rows[q], lam  # rows of z
    out.coef_a, out.coef_b = coef_a, np.broadcast_to(coef_b, (nk,))
    out.scale_a, out.scale_b = scale_a, np.broadcast_to(scale_b, (nk,))
    out.extra_a, out.extra_b = extra_a, np.broadcast_to(extra_b, (nk,))
    rn = ev.row_norms[layer][:count]
    ab = ev.abs_bias[layer][:count]
    slack = ev.slack[off : off + count]
    # Three kinds of (stretch, neuron) need no knot-by-knot look: beyond the largest zero
    # bound of the layer with the same sign at both members (certain all over: the
    # neuron is affine on the stretch), or within the slack at both (within the bound
    # all over, since the bound is at least the slack).
    top = (float(np.max(top_a, initial=0.0)) * rn + (top_b * ab + slack)) * (1.0 + 1e-9)
    floor = slack * (1.0 - 1e-9)
    step = max(1, (1 << 20) // max(count, 1))
    shift = off % 8
    pad = np.zeros((0, shift), dtype=bool)
    first = off // 8
    zv = z[:, :count]
    loose: list[tuple[IntArray, IntArray]] = []
    up_rows: list[NDArray[np.uint8]] = []
    zero_rows: list[NDArray[np.uint8]] = []
    for lo in range(0, m, step):
        hi = min(m, lo + step)
        block = zv[rows[lo : min(m, hi + 1)]]  # and the next stretch's first member
        gt = block > top
        lt = block < -top
        if hi == m:  # the last member is a stretch of its own
            gt, lt = (np.concatenate([x, x[-1:]]) for x in (gt, lt))
            block = np.concatenate([block, block[-1:]])
        up = gt[:-1] & gt[1:]
        open_ = lt[:-1] & lt[1:]
        open_ |= up
        np.logical_not(open_, out=open_)
        # Of the others, those within the slack at both members: zero all over. Deep in
        # a CNN the slack exceeds most values (all are zero there): then a dense pass.
        if np.count_nonzero(open_) > open_.size // 16:
            small = np.abs(block) < floor
            zero = small[:-1] & small[1:]
            zero &= open_
            open_ &= ~zero
            s_idx, units = _nonzero2d(open_)
        else:
            s_idx, units = _nonzero2d(open_)
            small = (np.abs(block[s_idx, units]) < floor[units]) & (
                np.abs(block[s_idx + 1, units]) < floor[units]
            )
            zero = np.zeros_like(up)
            zero[s_idx[small], units[small]] = True
            s_idx, units = s_idx[~small], units[~small]
        loose.append((s_idx + lo, units))
        if shift:
            pad = np.zeros((hi - lo, shift), dtype=bool)
            up, zero = np.concatenate([pad, up], axis=1), np.concatenate([pad, zero], axis=1)
        up_rows.append(np.packbits(up, axis=1, bitorder="little"))
        zero_rows.append(np.packbits(zero, axis=1, bitorder="little"))
    # Every knot of stretch s (knots members[s] .. members[s + 1] - 1) gets its bits.
    packed = np.concatenate(up_rows)
    out.on[:, first : first + packed.shape[1]] |= packed[p]
    packed = np.concatenate(zero_rows)
    out.doubt[:, first : first + packed.shape[1]] |= packed[p]
    del packed
    s_idx = np.concatenate([x[0] for x in loose])
    units = np.concatenate([x[1] for x in loose])
    if s_idx.size == 0:
        return
    # The other neurons knot by knot in their stretch.
    begin = members[s_idx]
    end = np.where(s_idx + 1 < m, members[np.minimum(s_idx + 1, m - 1)], nk)
    lengths = end - begin
    pair = np.repeat(np.arange(len(s_idx)), lengths)
    knot = begin[pair] + np.arange(len(pair)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    j = units[pair]
    zp_j = z[out.p[knot], j]
    value = zp_j + lam[knot] * (z[out.q[knot], j] - zp_j)
    limit = coef_a[knot] * rn[j] + out.coef_b[knot] * ab[j] + slack[j]
    col = off + j
    byte, bit = col >> 3, (np.uint8(1) << (col & 7).astype(np.uint8))
    is_on = value > limit
    np.bitwise_or.at(out.on, (knot[is_on], byte[is_on]), bit[is_on])
    zero = np.abs(value) <= limit
    np.bitwise_or.at(out.doubt, (knot[zero], byte[zero]), bit[zero])


def _nonzero2d(mask: BoolArray) -> tuple[IntArray, IntArray]:
    """``np.nonzero`` of a C-ordered 2D bool array with few True entries.

    Eight entries at a time first (a view as 64-bit words), then the words with any.
    """
    flat = mask.reshape(-1)
    whole = flat.size - flat.size % 8
    hit = np.flatnonzero(flat[:whole].view(np.uint64))
    idx = (hit[:, None] * 8 + np.arange(8)).reshape(-1)
    idx = np.concatenate([idx[flat[idx]], whole + np.flatnonzero(flat[whole:])])
    rows, cols = np.divmod(idx, max(mask.shape[1], 1))
    return rows, cols


def _residual_of(excess: FloatArray, scale: FloatArray) -> FloatArray:
    """``excess / scale`` where positive, else 0 (a residual)."""
    excess = np.maximum(excess, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: FloatArray = np.where(excess > 0, excess / scale, 0.0)
    return out


def _knot_layout(
    r: PathResult,
    positions: FloatArray,
    closed_pts: FloatArray,
    bp_rows: IntArray,
    layers: IntArray,
) -> tuple[FloatArray, FloatArray, IntArray, IntArray] | None:
    """What :func:`_knot_signs` needs: knots, vertex inputs, birth layers, flips' knots.

    None when a breakpoint is not a knot (outside the path: an ``order`` problem).
    """
    knots = np.concatenate([positions[:, 0], positions[-1:, 2]])
    k = r.num_breakpoints
    bp_knot = np.clip(np.searchsorted(knots, r.breakpoints), 0, len(knots) - 1)
    if k and not np.array_equal(knots[bp_knot], r.breakpoints):
        return None
    birth = np.full(len(knots), np.iinfo(np.int64).max, dtype=np.int64)
    if k:
        np.minimum.at(birth, bp_knot[bp_rows], layers)
    seg_len = np.linalg.norm(np.diff(closed_pts, axis=0), axis=1)
    starts = np.concatenate([[0.0], np.cumsum(seg_len)])
    starts[-1] = r.length
    values, first = np.unique(starts, return_index=True)
    at = np.searchsorted(knots, values)
    if not np.array_equal(knots[np.minimum(at, len(knots) - 1)], values):
        return None
    birth[at] = -1
    inputs = closed_pts[first[np.argsort(at, kind="stable")]]
    return knots, inputs, birth, bp_knot[bp_rows]


def _collect_path_problems(
    r: PathResult,
    net: Network,
    tol: float,
    collector: _Collector | None = None,
    full_forward: bool = False,
) -> tuple[_Collector, int, int, int, float]:
    """Check one path, adding its problems to ``collector`` (a new one by default).

    ``full_forward``: evaluate every piece end with a whole forward pass, not layer by
    layer (:func:`_knot_signs`).

    Returns the collector and the tallies a report needs: pieces, breakpoints and points
    checked, and the largest residual.
    """
    c = collector if collector is not None else _Collector()
    if r.points.ndim != 2 or r.points.shape[1] != net.input_dim:
        c.add("shape", -1, (), f"points {r.points.shape} do not fit the network's inputs")
        return c, 0, 0, 0, 0.0
    if r.num_neurons != net.num_neurons:
        c.add(
            "shape",
            -1,
            (),
            f"{r.num_neurons} neurons in the result, {net.num_neurons} in the network",
        )
        return c, 0, 0, 0, 0.0
    if not _path_structure(r, net, c):
        return c, 0, 0, 0, 0.0
    closed_pts = np.vstack([r.points, r.points[:1]]) if r.closed else r.points
    steps = np.diff(closed_pts, axis=0)
    direction = np.abs(steps).max(axis=0) / max(float(np.abs(steps).max()), 1e-300)
    spread = _POSITION_ULPS * (np.abs(r.points).max(axis=0) + r.length * direction)
    ev = _Evaluator(net, spread, certified=r.rtol is None)
    positions, xs, lengths, piece = _sub_intervals(r)
    if len(lengths) == 0 or net.num_neurons == 0:
        return c, r.num_pieces, r.num_breakpoints, 0, 0.0
    k = r.num_breakpoints
    bp_rows = np.repeat(np.arange(k), np.diff(r.flip_offsets)) if k else np.zeros(0, np.int64)
    columns = ev.flat(r.flip_neurons) if k else np.zeros(0, np.int64)
    at = _breakpoint_points(r, closed_pts, steps, bp_rows)
    pooled = net.pooling is not None
    if not pooled:
        # Every neuron at both ends of every sub-interval agrees with the piece's pattern
        # (or is zero within the tolerance), and flipping neurons vanish at their
        # breakpoint: one pass over the distinct ends (a piece's end is the next one's
        # start and a breakpoint), each evaluated once. By induction over the layers the
        # ends are enough (docs/design.md §7).
        layered = None
        if not full_forward:
            layers = r.flip_neurons.reshape(-1, 2)[:, 0] if k else np.zeros(0, np.int64)
            layered = _knot_layout(r, positions, closed_pts, bp_rows, layers)
        bits, unsure, res = _end_checks(r, ev, xs, positions, piece, at, columns, tol, c, layered)
    else:
        bits, unsure, _ = _piece_bits(r, ev, xs, lengths, piece, tol)
        # The tournament bookkeeping reads patterns as bool arrays (pooled nets are small).
        every = np.arange(r.num_pieces)
        bits, unsure = bits[every], unsure[every]
        # Matches off the winners' paths may change sign inside a piece: not checked.
        winner, losers = _tournaments(net, bits)
        unsure = unsure | losers
        _check_stored_argmax(None if r.pooling is None else r.pooling.argmax, winner, c)
        corner = ("start", "middle", "end")

        at_corners = _ArgmaxCheck(
            net,
            ev,
            np.repeat(piece, 3),
            positions.reshape(-1),
            winner,
            tol,
            c,
            lambda row: f"at the {corner[row % 3]} of a sub-interval",
        )

        def argmax_check(x: FloatArray, values: Any, local: IntArray, checks: IntArray) -> None:
            # Check i is corner row check_rows[i] (the ends of the sub-intervals).
            inputs, norms = _pool_inputs(net, x, values)
            at_corners.block(inputs, norms, local, check_rows[checks])

        # With max pooling the ends of every sub-interval are checked as above, the
        # argmaxes too; the pattern is stored or read at a middle.
        flat_points = xs.reshape(-1, xs.shape[2])
        check_rows = np.flatnonzero(np.arange(len(flat_points)) % 3 != 1)
        found, res = _path_checks(
            ev,
            np.concatenate([flat_points[check_rows], at]),
            np.repeat(piece, 3)[check_rows],
            columns,
            bits,
            unsure,
            tol,
            argmax_check,
        )
        rows, cols, ratios = check_rows[found[0]], found[1], found[2]
        where = ("start", "middle", "end")
        c.add_many(
            "pattern",
            piece[rows // 3],
            positions.reshape(-1)[rows],
            lambda i: (
                f"{_name(ev, int(cols[i]))} has residual {ratios[i]:.3g} at the "
                f"{where[rows[i] % 3]} of a sub-interval of the piece, against the piece's "
                f"pattern bit {int(bits[piece[rows[i] // 3], cols[i]])}"
            ),
        )

    residual = 0.0
    if k:
        residual = float(res.max(initial=0.0))
        bad = np.flatnonzero(~(res <= tol))
        c.add_many(
            "breakpoint-zero",
            bp_rows[bad],
            r.breakpoints[bp_rows[bad]],
            lambda i: (
                f"flipping {_name(ev, int(columns[bad[i]]))} has residual "
                f"{res[bad[i]]:.3g} there (tolerance {tol:.3g})"
            ),
        )

        # The pieces on either side differ in exactly the flipping neurons (in chunks of
        # breakpoints: the (breakpoints × neurons) arrays of a large network are large).
        if pooled:
            assert isinstance(bits, np.ndarray)  # unpacked above
            # Every breakpoint changes a ReLU sign or a window's argmax, as reported.
            before = np.arange(k)
            after = (before + 1) % r.num_pieces if r.closed else before + 1
            differ = bits[before] != bits[after]
            changed = np.flatnonzero(~differ.any(axis=1))
            c.add_many(
                "breakpoint-change",
                changed,
                r.breakpoints[changed],
                lambda i: "neither a ReLU sign nor a window's argmax changes there",
            )
            _check_changes(r, net, winner, before, after, c)
        packed = isinstance(bits, _PackedRows)
        step = max(1, _CHUNK_BYTES // ((1 if packed else 8) * max(r.num_neurons, 1)))
        for lo in range(0, k, step):
            _check_flips(r, c, bits, unsure, bp_rows, columns, lo, min(k, lo + step))
    return c, r.num_pieces, k, ev.num_points, residual


def _check_flips(
    r: PathResult,
    c: _Collector,
    bits: _Bits,
    unsure: _Bits,
    bp_rows: IntArray,
    columns: IntArray,
    lo: int,
    hi: int,
) -> None:
    """Breakpoints ``lo .. hi``: the pieces on either side differ in the flipping neurons."""
    before = np.arange(lo, hi)
    after = (before + 1) % r.num_pieces if r.closed else before + 1
    if isinstance(bits, _PackedRows) and isinstance(unsure, _PackedRows):
        _check_flips_packed(r, c, bits, unsure, bp_rows, columns, lo, hi)
        return
    flips = np.zeros((hi - lo, r.num_neurons), dtype=bool)
    mine = (bp_rows >= lo) & (bp_rows < hi)
    flips[bp_rows[mine] - lo, columns[mine]] = True
    differ = bits[before] != bits[after]
    sure = ~unsure[before] & ~unsure[after]
    wrong = (differ != flips) & sure
    bad_bp = np.flatnonzero(wrong.any(axis=1))
    c.add_many(
        "breakpoint-flips",
        bad_bp + lo,
        r.breakpoints[bad_bp + lo],
        lambda i: (
            "the pieces on either side differ in "
            f"{np.flatnonzero(differ[bad_bp[i]] & sure[bad_bp[i]]).tolist()}, the flipping "
            f"neurons are columns {np.flatnonzero(flips[bad_bp[i]]).tolist()}"
        ),
    )


def _check_flips_packed(
    r: PathResult,
    c: _Collector,
    bits: _PackedRows,
    unsure: _PackedRows,
    bp_rows: IntArray,
    columns: IntArray,
    lo: int,
    hi: int,
) -> None:
    """:func:`_check_flips` on packed rows: the same bits compared eight to a byte."""
    n = r.num_neurons
    before = np.arange(lo, hi)
    after = (before + 1) % r.num_pieces if r.closed else before + 1
    flips = np.zeros((hi - lo, bits.data.shape[1]), dtype=np.uint8)
    mine = (bp_rows >= lo) & (bp_rows < hi)
    col = columns[mine]
    np.bitwise_or.at(
        flips, (bp_rows[mine] - lo, col >> 3), np.left_shift(1, col & 7).astype(np.uint8)
    )
    differ = bits.data[before] ^ bits.data[after]
    sure = unsure.data[before] | unsure.data[after]
    np.invert(sure, out=sure)
    if n % 8 and sure.shape[1]:
        sure[:, -1] &= np.uint8((1 << (n % 8)) - 1)  # no padding bits
    wrong = differ ^ flips
    wrong &= sure
    bad = np.flatnonzero(wrong.any(axis=1))

    def message(i: int) -> str:
        h = bad[i]
        sure_h = _unpack(sure[h : h + 1], n)[0]
        differ_h = _unpack(differ[h : h + 1], n)[0]
        flips_h = _unpack(flips[h : h + 1], n)[0]
        return (
            "the pieces on either side differ in "
            f"{np.flatnonzero(differ_h & sure_h).tolist()}, the flipping "
            f"neurons are columns {np.flatnonzero(flips_h).tolist()}"
        )

    c.add_many("breakpoint-flips", bad + lo, r.breakpoints[bad + lo], message)


def _tournaments(net: Network, bits: BoolArray) -> tuple[IntArray, BoolArray]:
    """Each cell's winning entry per window, and its loser matches' pattern columns.

    Both read once from the cells' (canonical) patterns; a loser match is off the
    winners' paths.
    """
    pooling = net.pooling
    assert pooling is not None
    offsets = net.neuron_offsets()
    argmax_pos, on_path = pooling.winners(bits, offsets)
    losers = np.zeros_like(bits)
    losers[:, pooling.columns(offsets)] = ~on_path
    winner: IntArray = pooling.entries[pooling.entry_offsets[:-1][None, :] + argmax_pos]
    return winner, losers


def _pool_inputs(
    net: Network, x: FloatArray, values: list[FloatArray] | None = None
) -> tuple[list[FloatArray], list[FloatArray]]:
    """Each pooling node's input at points ``x``, and the norm of its layer's input.

    ``values``: the hidden layers at ``x`` when a forward pass already computed them.
    """
    pooling = net.pooling
    assert pooling is not None
    if values is None:
        values = net._core.pre_activations(x) if net.num_hidden_layers else []
    assert values is not None
    sizes, slopes = net.hidden_sizes, net.negative_slopes
    inputs, norms = [], []
    for record in pooling.pools:
        if record.layer == 0:
            h = x
        else:
            z = values[record.layer - 1]
            n = sizes[record.layer - 1]
            neurons = z[:, :n]
            act = np.where(neurons > 0, neurons, slopes[record.layer - 1] * neurons)
            h = np.concatenate([act, z[:, n:]], axis=1)
        entries = np.asarray((record.matrix @ h.T).T, dtype=np.float64) + record.offset
        inputs.append(entries)
        norms.append(_norms(h))
    return inputs, norms


def _check_stored_argmax(stored: IntArray | None, winner: IntArray, c: _Collector) -> None:
    if stored is None:
        c.add("pooling", -1, (), "the network has max pooling but the result has no pooling part")
        return
    if stored.shape != winner.shape or not np.array_equal(stored, winner):
        bad = (
            np.flatnonzero(np.any(stored != winner, axis=1))
            if stored.shape == winner.shape
            else np.array([-1])
        )
        c.add_many(
            "pooling-argmax",
            bad,
            np.zeros((bad.size, 0)),
            lambda i: "the stored argmax differs from the one the pattern gives",
        )


@dataclass
class _ArgmaxCheck:
    """Every window's argmax (read from the cell's pattern) is its maximum at every point.

    Given the earlier layers' signs and argmaxes, a window's entries are affine on a
    cell, so the winner beating every other entry at the cell's corners (the ends of
    each sub-interval, the vertices of a convex face) beats it all over the cell (up to
    the tolerance). Point row ``row`` belongs to cell ``cells[row]``, at
    ``positions[row]``; ``where(row)`` words its place.
    """

    net: Network
    ev: _Evaluator
    cells: IntArray
    positions: FloatArray
    winner: IntArray
    tol: float
    c: _Collector
    where: Any

    def block(
        self, inputs: list[FloatArray], norms: list[FloatArray], local: IntArray, rows: IntArray
    ) -> None:
        """Check point rows ``rows``, whose pooling inputs are row ``local[i]`` of ``inputs``."""
        _argmax_block(self, inputs, norms, local, rows)


def _argmax_block(
    check: _ArgmaxCheck,
    inputs: list[FloatArray],
    norms: list[FloatArray],
    local: IntArray,
    rows: IntArray,
) -> None:
    net, ev, cells, positions, winner, tol, c, where = (
        check.net,
        check.ev,
        check.cells,
        check.positions,
        check.winner,
        check.tol,
        check.c,
        check.where,
    )
    pooling = net.pooling
    assert pooling is not None
    window_of_entry = np.repeat(np.arange(pooling.num_windows), np.diff(pooling.entry_offsets))
    rows_cell = cells[rows]
    for index, record in enumerate(pooling.pools):
        w_lo = record.first_window
        w_hi = w_lo + math.prod(record.out_shape)
        e_lo, e_hi = int(pooling.entry_offsets[w_lo]), int(pooling.entry_offsets[w_hi])
        entries = pooling.entries[e_lo:e_hi]
        windows = window_of_entry[e_lo:e_hi]
        rn = _row_norms(record.matrix)
        best = winner[rows_cell][:, windows]  # (n, entries) the window's winner
        value = inputs[index][local]
        diff = value[:, entries] - np.take_along_axis(value, best, axis=1)
        scale = norms[index][local][:, None] * (rn[entries][None, :] + rn[best]) + (
            np.abs(record.offset[entries])[None, :] + np.abs(record.offset[best])
        )
        slack = (rn[entries][None, :] + rn[best]) * ev.spread_norms[record.layer]
        bad = diff > tol * scale + slack
        bad_rows = np.flatnonzero(bad.any(axis=1))
        if bad_rows.size == 0:
            continue
        first = np.argmax(bad[bad_rows], axis=1)
        where_rows = rows[bad_rows]
        words = [
            f"window {int(windows[f])}: entry {int(entries[f])} exceeds the cell's "
            f"argmax {where(row)}"
            for f, row in zip(first, where_rows)
        ]
        c.add_many("argmax", cells[where_rows], positions[where_rows], words.__getitem__)


def _check_changes(
    r: PathResult,
    net: Network,
    winner: IntArray,
    before: IntArray,
    after: IntArray,
    c: _Collector,
) -> None:
    """The windows whose argmax differs across each breakpoint are the reported ones."""
    pooling = net.pooling
    assert pooling is not None
    if r.pooling is None:
        c.add("pooling", -1, (), "the network has max pooling but the result has no pooling part")
        return
    offsets, changes = r.pooling.change_offsets, r.pooling.changes
    for j in range(before.size):
        windows = np.flatnonzero(winner[before[j]] != winner[after[j]])
        expected = np.stack(
            [windows, winner[before[j], windows], winner[after[j], windows]], axis=1
        )
        got = changes[offsets[j] : offsets[j + 1]]
        if got.shape != expected.shape or not np.array_equal(got, expected):
            c.add(
                "pooling-change",
                j,
                r.breakpoints[j],
                f"reported argmax changes {got.tolist()}, the pieces give {expected.tolist()}",
            )


def _check_edge_changes(
    r: SliceResult, winner: IntArray, edges: IntArray, fa: IntArray, fb: IntArray, c: _Collector
) -> None:
    """The windows whose argmax differs across each edge are the reported ones."""
    assert r.pooling is not None
    offsets, changes = r.pooling.change_offsets, r.pooling.changes
    if offsets.shape != (r.num_edges + 1,):
        c.add("pooling-change", -1, (), "change_offsets do not match the edges")
        return
    interior = np.zeros(r.num_edges, dtype=bool)
    interior[edges] = True
    stray = np.flatnonzero(~interior & (np.diff(offsets) > 0))
    c.add_many(
        "pooling-change",
        stray,
        r.vertices[r.edges[stray, 0]],
        lambda i: "a boundary edge reports argmax changes",
    )
    for e, f, g in zip(edges, np.minimum(fa, fb), np.maximum(fa, fb)):
        windows = np.flatnonzero(winner[f] != winner[g])
        expected = np.stack([windows, winner[f, windows], winner[g, windows]], axis=1)
        got = changes[offsets[e] : offsets[e + 1]]
        if got.shape != expected.shape or not np.array_equal(got, expected):
            c.add(
                "pooling-change",
                int(e),
                r.vertices[r.edges[e, 0]],
                f"reported argmax changes {got.tolist()}, the faces give {expected.tolist()}",
            )


def check_batch(
    b: BatchResult, net: Network, tol: float, full_forward: bool = False
) -> VerifyReport:
    """Check every path of a batch: the report of ``BatchResult.verify``."""
    pieces = cuts = points = 0
    residual = 0.0
    total = _Collector()
    for i in range(b.num_paths):
        c, p, k, n, res = _collect_path_problems(b[i], net, tol, _Collector(path=i), full_forward)
        pieces, cuts, points = pieces + p, cuts + k, points + n
        residual = max(residual, res)
        total.count += c.count
        total.kept.extend(c.kept[: max(0, 4 * MAX_PROBLEMS_PER_CHECK - len(total.kept))])
    return _finish("batch", tol, pieces, cuts, points, residual, total)


def check_path(
    r: PathResult, net: Network, tol: float, full_forward: bool = False
) -> VerifyReport:
    """Check one path: the report of ``PathResult.verify``."""
    c, pieces, cuts, points, residual = _collect_path_problems(r, net, tol, None, full_forward)
    return _finish("path", tol, pieces, cuts, points, residual, c)


def _raise(report: VerifyReport, raise_on_error: bool) -> VerifyReport:
    if raise_on_error and not report.ok:
        raise VerificationError(report)
    return report


# --- 2D -------------------------------------------------------------------------------


def _slice_structure(r: SliceResult, net: Network, c: _Collector) -> bool:
    """Shapes and index ranges; False when evaluating the faces makes no sense."""
    v, f = r.num_vertices, r.num_regions
    offsets, fv = r.face_offsets, r.face_vertices
    if (
        r.vertices.shape != (v, 2)
        or r.vertex_outputs.shape != (v, net.output_dim)
        or offsets.ndim != 1
        or f < 1
        or offsets[0] != 0
        or offsets[-1] != len(fv)
        or r.edges.shape != (r.num_edges, 2)
        or r.edge_neurons.shape != (r.num_edges, 2)
        or r.patterns.shape != (f, (net.num_neurons + 7) // 8)
        or r.num_neurons != net.num_neurons
    ):
        c.add("shape", -1, (), "the arrays' shapes do not fit together or the network")
        return False
    if np.any(np.diff(offsets) < 3):
        c.add("shape", -1, (), "a face has fewer than 3 corners")
        return False
    if np.any((fv < 0) | (fv >= v)) or np.any((r.edges < 0) | (r.edges >= v)):
        c.add("shape", -1, (), "a vertex index is out of range")
        return False
    if not np.all(np.isfinite(r.vertices)):
        c.add("shape", -1, (), "vertices are not finite")
        return False
    return True


def _polygon_area(poly: FloatArray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(x @ np.roll(y, -1) - np.roll(x, -1) @ y)


def _slice_geometry(r: SliceResult, tol: float, c: _Collector) -> None:
    """Faces convex, counter-clockwise, inside the domain, tiling it; edges and Euler."""
    dom = r.domain
    diam = float(np.ptp(dom, axis=0).max())
    area = r.areas
    cent = r.centroids
    bad = np.flatnonzero(~(area > 0))
    c.add_many("area", bad, cent[bad], lambda i: f"area {area[bad[i]]!r} is not positive")
    total, expected = float(np.sum(area)), _polygon_area(dom)
    if not abs(total - expected) <= 1e-9 * expected:
        c.add("area", -1, (), f"face areas sum to {total!r}, the domain's area is {expected!r}")

    face, a, b = r._sides()
    nxt = np.arange(1, len(a) + 1)
    nxt[r.face_offsets[1:] - 1] = r.face_offsets[:-1]
    side = r.vertices[b] - r.vertices[a]
    length = np.hypot(side[:, 0], side[:, 1])
    turn = side[:, 0] * side[nxt, 1] - side[:, 1] * side[nxt, 0]
    reflex = np.flatnonzero((turn < -tol * length * length[nxt]) | (length == 0))
    c.add_many(
        "convex",
        face[reflex],
        r.vertices[b[reflex]],
        lambda i: "the face turns right (or repeats a corner) here",
    )
    angle = np.arctan2(side[:, 1], side[:, 0])
    bend = np.mod(angle[nxt] - angle + np.pi, 2 * np.pi) - np.pi
    winding = np.add.reduceat(bend, r.face_offsets[:-1])
    unwound = np.flatnonzero(~(np.abs(winding - 2 * np.pi) <= 1e-6))
    c.add_many(
        "convex",
        unwound,
        cent[unwound],
        lambda i: (
            f"the face winds {winding[unwound[i]] / (2 * np.pi):.3g} times, not once "
            "counter-clockwise"
        ),
    )

    d_edges = np.roll(dom, -1, axis=0) - dom
    normal = np.stack([d_edges[:, 1], -d_edges[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1)[:, None]
    outside = ((r.vertices[:, None, :] - dom[None, :, :]) * normal[None]).sum(axis=2).max(axis=1)
    far = np.flatnonzero(outside > tol * diam)
    c.add_many("domain", far, r.vertices[far], lambda i: "vertex outside the domain")

    # Edges are the faces' sides; one face on the boundary, two (opposite ways) inside.
    v = np.int64(max(r.num_vertices, 1))
    edge_key = np.minimum(r.edges[:, 0], r.edges[:, 1]) * v + np.maximum(
        r.edges[:, 0], r.edges[:, 1]
    )
    if len(np.unique(edge_key)) != r.num_edges:
        c.add("edges", -1, (), "an edge is listed twice")
    side_key = np.minimum(a, b) * v + np.maximum(a, b)
    order = np.argsort(edge_key)
    pos = np.clip(np.searchsorted(edge_key, side_key, sorter=order), 0, max(len(order) - 1, 0))
    found = order[pos] if len(order) else np.zeros(len(side_key), np.int64)
    hit = (edge_key[found] == side_key) if len(order) else np.zeros(len(side_key), bool)
    missing = np.flatnonzero(~hit)
    c.add_many("edges", face[missing], r.vertices[a[missing]], lambda i: "side not in edges")
    uses = np.bincount(found[hit], minlength=r.num_edges)
    odd = np.flatnonzero((uses < 1) | (uses > 2))
    c.add_many(
        "edges", odd, r.vertices[r.edges[odd, 0]], lambda i: f"edge used by {uses[odd[i]]} faces"
    )
    directed = a * v + b
    if len(np.unique(directed)) != len(directed):
        c.add("edges", -1, (), "two faces run the same way along an edge (they overlap)")
    boundary = uses == 1
    labelled = r.edge_neurons[:, 0] < 0
    mislabelled = np.flatnonzero(boundary != labelled)
    c.add_many(
        "edges",
        mislabelled,
        r.vertices[r.edges[mislabelled, 0]],
        lambda i: "edge on the domain boundary without neuron (-1, -1), or the reverse",
    )
    if len(np.unique(r.face_vertices)) != r.num_vertices:
        c.add("euler", -1, (), "some vertices are corners of no face")
    euler = r.num_vertices - r.num_edges + r.num_regions
    if euler != 1:
        c.add("euler", -1, (), f"V - E + F = {euler}, a subdivided disc has 1")


def _interior_edges(r: SliceResult) -> tuple[IntArray, IntArray, IntArray]:
    """(edge, face_a, face_b) of every edge two faces share."""
    face, a, b = r._sides()
    v = np.int64(max(r.num_vertices, 1))
    side_key = np.minimum(a, b) * v + np.maximum(a, b)
    order = np.argsort(side_key, kind="stable")
    key = side_key[order]
    twice = np.flatnonzero(key[1:] == key[:-1])
    edge_key = r.edges[:, 0] * v + r.edges[:, 1]
    sorter = np.argsort(edge_key)
    edges = sorter[np.searchsorted(edge_key, key[twice], sorter=sorter)]
    return edges, face[order[twice]], face[order[twice + 1]]


def check_slice(r: SliceResult, net: Network, tol: float) -> VerifyReport:
    """Check one slice against its own geometry and the network.

    The report of ``SliceResult.verify``.
    """
    c = _Collector()
    if r.plane.input_dim != net.input_dim or not _slice_structure(r, net, c):
        if r.plane.input_dim != net.input_dim:
            c.add("shape", -1, (), "the plane does not fit the network's inputs")
        return _finish("slice", tol, 0, 0, 0, 0.0, c)
    _slice_geometry(r, tol, c)
    diam = float(np.ptp(r.domain, axis=0).max())
    reach = diam + float(np.abs(r.domain).max())
    spread = _POSITION_ULPS * (
        np.abs(r.plane.origin) + reach * (np.abs(r.plane.basis[0]) + np.abs(r.plane.basis[1]))
    )
    ev = _Evaluator(net, spread, certified=r.rtol is None)
    bits = r.pattern_bools()
    to_input = r.plane.to_input
    pooled = net.pooling is not None
    # With max pooling, matches off the winners' paths are not checked (see _ArgmaxCheck).
    if pooled:
        winner, losers = _tournaments(net, bits)
        known = ~losers
    else:
        known = np.ones_like(bits)

    # One pass over the distinct points, vertices then the faces' vertex averages, each
    # evaluated once: every neuron at every corner of every face and at the face's vertex
    # average (and, with max pooling, every window's argmax there), the edges' neurons
    # at their ends, the certain signs and the outputs at the vertices.
    face, a, _ = r._sides()
    counts = np.diff(r.face_offsets)
    inner = np.add.reduceat(r.vertices[r.face_vertices], r.face_offsets[:-1]) / counts[:, None]
    edges, fa, fb = _interior_edges(r)
    columns = ev.flat(r.edge_neurons[edges]) if len(edges) else np.zeros(0, np.int64)
    ends = r.edges[edges]
    both = np.concatenate([ends[:, 0], ends[:, 1]])
    both_columns = np.concatenate([columns, columns])
    nv = r.num_vertices
    points = to_input(np.concatenate([r.vertices, inner]))
    # Checks: (point, pattern row) of the corners, then of the vertex averages.
    check_point = np.concatenate([a, nv + np.arange(r.num_regions)])
    check_face = np.concatenate([face, np.arange(r.num_regions)])
    by_check = np.argsort(check_point, kind="stable")
    by_end = np.argsort(both, kind="stable")
    vertex_bits = np.zeros((nv, r.num_neurons), dtype=bool)
    unsure = np.zeros_like(vertex_bits)
    res = np.zeros(len(both))
    worst = np.zeros(nv)
    found: list[tuple[IntArray, IntArray, FloatArray]] = []
    if pooled:
        _check_stored_argmax(None if r.pooling is None else r.pooling.argmax, winner, c)
        at_points = _ArgmaxCheck(
            net,
            ev,
            check_face,
            np.concatenate([r.vertices[a], inner]),
            winner,
            tol,
            c,
            lambda row: "at a corner" if row < len(a) else "inside the face",
        )
    for lo in range(0, len(points), ev.chunk):
        hi = min(lo + ev.chunk, len(points))
        x = points[lo:hi]
        layers = ev.layer_values(x)
        first, last = np.searchsorted(check_point[by_check], [lo, hi])
        checks = by_check[first:last]
        if checks.size:
            local = check_point[checks] - lo
            rows = check_face[checks]
            doubt = ~known[rows] if pooled else None
            bad, col, ratio = _first_contradictions(ev, layers, local, bits[rows], doubt, tol)
            found.append((checks[bad], col, ratio))
            if pooled:
                inputs, norms = _pool_inputs(net, x, layers[0])
                at_points.block(inputs, norms, local, checks)
        first, last = np.searchsorted(both[by_end], [lo, hi])
        if last > first:
            at = by_end[first:last]
            res[at] = _residuals_at(ev, layers, both[at] - lo, both_columns[at])
        if lo < nv:
            top = min(hi, nv) - lo
            values, norms, errors = layers
            for layer, z in enumerate(values):
                count, off = ev.sizes[layer], int(ev.offsets[layer])
                limit = ev.limit(layer, norms[layer][:top], errors[layer][:top], tol)
                neurons = z[:top, :count]
                np.greater(neurons, limit, out=vertex_bits[lo : lo + top, off : off + count])
                np.less_equal(np.abs(neurons), limit, out=unsure[lo : lo + top, off : off + count])
            out, scale = ev.outputs_from(x, layers)
            diff = out[:top] - r.vertex_outputs[lo : lo + top]
            worst[lo : lo + top] = _residual(diff, scale[:top], ev.output_slack).max(axis=1)
    if found:
        order = np.argsort(np.concatenate([f[0] for f in found]), kind="stable")
        hit = np.concatenate([f[0] for f in found])[order]
        cols = np.concatenate([f[1] for f in found])[order]
        ratios = np.concatenate([f[2] for f in found])[order]
    else:
        hit, cols, ratios = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    corner = hit < len(a)
    rows, c_cols, c_ratios = hit[corner], cols[corner], ratios[corner]
    c.add_many(
        "pattern",
        face[rows],
        r.vertices[a[rows]],
        lambda i: (
            f"{_name(ev, int(c_cols[i]))} has residual {c_ratios[i]:.3g} at this corner, "
            f"against the face's pattern bit {int(bits[face[rows[i]], c_cols[i]])}"
        ),
    )
    inside = hit[~corner] - len(a)
    i_cols, i_ratios = cols[~corner], ratios[~corner]
    c.add_many(
        "pattern",
        inside,
        inner[inside],
        lambda i: (
            f"{_name(ev, int(i_cols[i]))} has residual {i_ratios[i]:.3g} inside the face, "
            f"against the face's pattern bit {int(bits[inside[i], i_cols[i]])}"
        ),
    )

    # Interior edges lie on their neuron's zero set; the faces on either side differ in
    # that neuron, and in others only where those vanish along the whole edge.
    if pooled and r.pooling is not None:
        _check_edge_changes(r, winner, edges, fa, fb, c)
    residual = 0.0
    if len(edges):
        res = np.maximum(res[: len(edges)], res[len(edges) :])
        residual = float(res.max(initial=0.0))
        bad = np.flatnonzero(~(res <= tol))
        c.add_many(
            "edge-zero",
            edges[bad],
            0.5 * (r.vertices[ends[bad, 0]] + r.vertices[ends[bad, 1]]),
            lambda i: (
                f"{_name(ev, int(columns[bad[i]]))} has residual {res[bad[i]]:.3g} "
                f"at an end of its edge (tolerance {tol:.3g})"
            ),
        )
        differ = bits[fa] != bits[fb]
        idx = np.arange(len(edges))
        same = np.flatnonzero(~differ[idx, columns])
        c.add_many(
            "edge-flips",
            edges[same],
            0.5 * (r.vertices[ends[same, 0]] + r.vertices[ends[same, 1]]),
            lambda i: (
                f"faces {int(fa[same[i]])} and {int(fb[same[i]])} agree in the edge's "
                f"{_name(ev, int(columns[same[i]]))}"
            ),
        )
        other = differ & ~(unsure[ends[:, 0]] & unsure[ends[:, 1]]) & known[fa] & known[fb]
        other[idx, columns] = False
        extra = np.flatnonzero(other.any(axis=1))
        c.add_many(
            "edge-flips",
            edges[extra],
            0.5 * (r.vertices[ends[extra, 0]] + r.vertices[ends[extra, 1]]),
            lambda i: (
                f"faces {int(fa[extra[i]])} and {int(fb[extra[i]])} also differ in "
                f"{_name(ev, int(np.argmax(other[extra[i]])))}, which does not vanish on the edge"
            ),
        )

    # The outputs stored at the vertices.
    bad = np.flatnonzero(~(worst <= tol))
    c.add_many(
        "outputs",
        bad,
        r.vertices[bad],
        lambda i: f"stored output differs from the network's by {worst[bad[i]]:.3g} x scale",
    )
    return _finish("slice", tol, r.num_regions, len(edges), ev.num_points, residual, c)


class Verifiable(abc.ABC):
    """The ``verify`` method of PathResult, BatchResult and SliceResult.

    Each result class implements :meth:`_check`, its own checks; ``verify`` picks the
    network and the tolerance, calls it and raises if asked.
    """

    #: The network the result was computed for (``verify`` re-evaluates it).
    network: Network | None
    #: The zero tolerance it was computed with; None: certified sign decisions.
    rtol: float | None

    def verify(
        self,
        raise_on_error: bool = False,
        *,
        tol: float | None = None,
        net: Network | None = None,
        full_forward: bool = False,
    ) -> VerifyReport:
        """Check this result against its own structure and the network: a certificate.

        Re-evaluates the network (its float64 forward pass) and checks:

        - 1D (each path): every neuron's sign at both ends of every piece (cut at the
          polyline's bends) agrees with the piece's pattern (the stored one, or without
          ``return_patterns`` the signs certain at its ends, which must agree); every
          flipping neuron vanishes at its breakpoint; the pieces on either side of a breakpoint
          differ in exactly its flipping neurons; counts, order, segments, length and
          ``num_distinct`` are consistent.
        - 2D: every neuron's sign at every corner of every face and at the face's vertex
          average agrees with the face's pattern; every interior edge's neuron vanishes at
          both ends, and the faces on either side differ in it (and in others only where
          those vanish along the whole edge); faces have positive area, are convex and
          counter-clockwise, lie in the domain and tile it (areas sum to its area, every
          side an edge of one face on the boundary or two running opposite ways inside,
          ``V - E + F = 1``); the stored vertex outputs are the network's.

        By convexity the corner checks rule out a missed crossing: where a cell's pattern
        is not constant, the earliest neuron changing sign is affine on the cell and has
        opposite signs at two of its corners.

        Tolerance: a pre-activation counts as zero (either sign accepted) when
        ``|z_j| <= tol * (||W_j||_2 ||h||_2 + |b_j|) + slack_j``: the core's zero test
        (``h`` the layer's input at the point) with ``tol`` for ``rtol``, plus ``slack_j``,
        the effect of rounding the point's own position (about 1e-13 of the path's length
        or the domain's size, carried through the earlier layers by their operator norms
        ``||W||_2`` or, where smaller, componentwise by ``|W|``; docs/design.md §7). The
        residual of a value is ``max(|z_j| - slack_j, 0) / (||W_j||_2 ||h||_2 + |b_j|)``. For a
        certified result (``rtol=None``) ``||W_j||_2 ||h||_2 + |b_j|`` is replaced by the
        certified filter's error bound ``eps_j`` at the point (docs/numerics.md).

        Parameters
        ----------
        raise_on_error
            Raise :class:`lrcore.VerificationError` (an AssertionError) if a check fails.
        tol
            Relative zero tolerance; default ``lrcore.VERIFY_FACTOR * max(rtol,
            lrcore.DEFAULT_RTOL)`` with the ``rtol`` of the computation (1e-8 for
            ``rtol=1e-10``); for a certified result, the multiple of the filter's bound
            (default ``lrcore.VERIFY_FACTOR``).
        net
            The network to check against (default: the one the result was computed for).
        full_forward
            Paths: evaluate every piece end with a whole forward pass through the
            network. By default a piece end that is a breakpoint is evaluated only
            from the layer after its earliest flipping neuron on, its values in the
            earlier layers interpolated between the points evaluated there (the same
            certificate, by induction over the layers: docs/design.md §7; about the
            count's own work). Paths through max pooling and slices are always
            evaluated whole.

        Returns
        -------
        VerifyReport
            ``report.ok``, what was checked, and the problems with their positions.

        Examples
        --------
        >>> import numpy as np, lrcore
        >>> net = lrcore.Network.random([2, 16, 16, 1], seed=0)
        >>> lrcore.count_1d(net, np.array([[-2.0, -1.0], [2.0, 1.0]])).verify().ok
        True
        >>> lrcore.slice_2d(net, np.zeros(2), np.eye(2)).verify(raise_on_error=True).ok
        True
        """
        network = net if net is not None else self.network
        if not isinstance(network, Network):
            msg = (
                "net: expected an lrcore.Network (this result does not know its network), "
                f"got {type(network).__name__}"
            )
            raise TypeError(msg)
        with _small_pages():
            report = self._check(network, _default_tol(tol, self.rtol), bool(full_forward))
        return _raise(report, raise_on_error)

    @abc.abstractmethod
    def _check(self, net: Network, tol: float, full_forward: bool = False) -> VerifyReport:
        """Check this result against ``net`` with zero tolerance ``tol``."""
