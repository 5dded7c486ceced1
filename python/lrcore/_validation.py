"""Defaults and input checks shared by the public entry points (errors before the core).

The defaults are re-exported by :mod:`lrcore` (``lrcore.DEFAULT_RTOL`` and so on). Python
passes every option to the core explicitly, so these are the defaults a user meets.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Default relative zero tolerance: a pre-activation z_j at a vertex counts as exactly
#: zero when |z_j| <= rtol * (||W_j||_2 * ||h||_2 + |b_j|), h being the layer's input.
DEFAULT_RTOL = 1e-10

#: Default cap on the pieces one count_1d call may create before it stops with
#: LimitExceeded.
DEFAULT_MAX_PIECES = 50_000_000

#: Default cap on the faces of one slice; past it slice_2d raises LimitExceeded. At the
#: core's working memory (about the current layer's width × 16 bytes per vertex, two
#: vertices per face) this keeps a 256-wide network under a few GB.
DEFAULT_MAX_REGIONS = 5_000_000

#: Default budget of slow-path sign decisions per task of a certified count_1d call (a
#: task: up to 32 consecutive segments). On MLPs the slow path is rare (4 of 13.9 M
#: decisions on 784-[512]x4); the exact ties of max-pooling tournaments are decided by
#: structure, without it (190 slow decisions on a LeNet-5 stretch); on deep CNNs with
#: large layer gains most vertices need a pass every few layers (ResNet-18 at width 16:
#: 1,470 decisions, about 180 passes of tens of ms each). Past the budget the rest take
#: their float64 sign, counted in ``uncertified_decisions``.
DEFAULT_MAX_SLOW_DECISIONS = 100_000

#: Default budget of ``count_1d``'s certified slow path in work (``max_slow_work``): per
#: task, the multiply-adds the slow path may spend (layers evaluated in double-double,
#: terms of the exact tier), as a multiple of the task's own float64 multiply-adds. It
#: bounds a certified call's time relative to ``rtol=1e-10``'s on any model, whatever its
#: width (docs/numerics.md §9): ResNet-18 at width 16 certifies every sign with 1.19.
DEFAULT_MAX_SLOW_WORK = 2.0


class RoundingWarning(UserWarning):
    """A result is exact only up to float64 rounding of its coordinates.

    ``slice_2d`` warns when crossings lay closer to a vertex (or to each other) than
    float64 plane coordinates can resolve and were placed at that vertex, so regions
    narrower than that are not counted (``SliceResult.merged_crossings`` says how many).
    """


class CertificationWarning(UserWarning):
    """A certified count is not certified everywhere.

    ``count_1d`` warns when its slow-path budget (``max_slow_decisions``) ran out and
    some sign decisions took their float64 sign instead
    (``PathResult.uncertified_decisions`` says how many): those signs are right unless
    the value is within rounding error of zero.
    """


def as_float_array(
    value: Any, name: str, ndim: int | None = None, finite: bool = True
) -> NDArray[np.float64]:
    """Convert ``value`` to a C-contiguous float64 array or raise naming ``name``.

    Integer, boolean and float inputs of any layout are accepted; object, string,
    complex and other dtypes raise TypeError; NaN/Inf (when ``finite``) and a wrong
    number of dimensions raise ValueError.
    """
    if (
        type(value) is np.ndarray
        and value.dtype == np.float64
        and value.flags.c_contiguous
        and (ndim is None or value.ndim == ndim)
        # A finite sum means finite entries (NaN and infinities propagate); an overflowed
        # one takes the full check below.
        and (not finite or math.isfinite(float(value.sum())))
    ):
        return value
    if isinstance(value, (str, bytes)):
        msg = f"{name}: expected a numeric array, got {type(value).__name__}"
        raise TypeError(msg)
    try:
        raw = np.asarray(value)
    except Exception as err:  # ragged nested lists and the like
        msg = f"{name}: could not be converted to a numeric array ({err})"
        raise ValueError(msg) from err
    if raw.dtype.kind not in "biuf":
        msg = (
            f"{name}: expected a real numeric array (int or float), got dtype {raw.dtype} "
            f"({type(value).__name__})"
        )
        raise TypeError(msg)
    if ndim is not None and raw.ndim != ndim:
        msg = f"{name}: expected a {ndim}-d array, got shape {raw.shape}"
        raise ValueError(msg)
    arr = np.ascontiguousarray(raw, dtype=np.float64)
    if finite and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        msg = f"{name}: contains {bad} NaN or infinite value(s); all entries must be finite"
        raise ValueError(msg)
    return arr


def check_positive(value: float, name: str) -> float:
    """``value`` as a float, or a ValueError naming ``name`` unless it is finite and > 0."""
    number = float(value)
    if not np.isfinite(number) or number <= 0:
        msg = f"{name}: expected a positive finite number, got {value!r}"
        raise ValueError(msg)
    return number


def default_threads() -> int:
    """Worker threads by default: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def check_run_options(
    rtol: float, num_threads: int | None, cap: int, cap_name: str
) -> tuple[float, int, int]:
    """Validate the options every exact computation takes; return them normalised."""
    rtol = float(rtol)
    if not 0 <= rtol < 1:
        msg = f"rtol: expected a number in [0, 1), got {rtol!r}"
        raise ValueError(msg)
    threads = default_threads() if num_threads is None else int(num_threads)
    if threads < 1:
        msg = f"num_threads: expected a positive integer or None, got {num_threads!r}"
        raise ValueError(msg)
    if int(cap) < 1:
        msg = f"{cap_name}: expected a positive integer, got {cap!r}"
        raise ValueError(msg)
    return rtol, threads, int(cap)


#: Largest magnitude of an input or a layer's value that lrcore computes with: the core
#: squares values for its zero tolerance and lengths, and squares of larger ones overflow.
MAX_MAGNITUDE = 1e150


def _abs_layers(net: Any) -> list[tuple[Any, NDArray[np.float64], float]]:
    """``(|W|, |b|, gain)`` of every layer, computed once per network and kept on it.

    The first layer's ``|W|`` is kept as its row sums: :func:`check_magnitudes` pushes a
    uniform bound through it first.
    """
    cached: list[tuple[Any, NDArray[np.float64], float]] | None = getattr(net, "_abs_layers", None)
    if cached is None:
        slopes = [*net.negative_slopes, 0.0]
        cached = [
            (abs(weight), np.abs(bias), max(1.0, abs(slope)))
            for weight, bias, slope in zip(net._weights, net._biases, slopes)
        ]
        net._abs_layers = cached
    return cached


def uniform_input_limit(net: Any) -> float:
    """A ``c`` such that inputs with every ``|x_i| <= c`` pass :func:`check_magnitudes`.

    With ``m = c`` in every coordinate, every layer's bound in :func:`magnitude_bound` is
    ``c * u + v`` (``u``, ``v`` >= 0 found once by pushing 1 and 0 through the layers),
    so the largest such ``c`` has a closed form; it is computed once per network, and
    shrunk a little against rounding. Checking one number against it replaces the layer
    by layer bound on every call (which is still the check, and the message, when the
    number is larger).
    """
    cached: float | None = getattr(net, "_uniform_input_limit", None)
    if cached is None:
        u = np.ones(net.input_dim)
        v = np.zeros(net.input_dim)
        limit = MAX_MAGNITUDE
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for abs_weight, abs_bias, gain in _abs_layers(net):
                u = np.asarray(abs_weight @ u, dtype=np.float64).ravel()
                v = np.asarray(abs_weight @ v, dtype=np.float64).ravel() + abs_bias
                room = (MAX_MAGNITUDE - v) / u  # c * u + v <= MAX where u > 0
                room = np.where(u > 0, room, np.where(v <= MAX_MAGNITUDE, np.inf, -np.inf))
                room[np.isnan(room)] = -np.inf  # overflowed: no uniform limit
                limit = min(limit, float(room.min(initial=np.inf)))
                u, v = gain * u, gain * v
        cached = limit * (1.0 - 1e-9) if np.isfinite(limit) else 0.0
        net._uniform_input_limit = cached
    return cached


def magnitude_bound(net: Any, bound: NDArray[np.float64]) -> float:
    """The largest value the network can reach for inputs with ``|x| <= bound``.

    ``bound`` bounds ``|x|`` coordinate-wise; it is pushed through the layers as
    ``gain * |W| m + |b|`` (``gain = max(1, |negative_slope|)``), an upper bound of every
    pre-activation and output. NaN or infinity where it overflows.
    """
    m = np.asarray(bound, dtype=np.float64)
    peak = float(m.max(initial=0.0))
    with np.errstate(over="ignore", invalid="ignore"):
        for abs_weight, abs_bias, gain in _abs_layers(net):
            if not peak <= MAX_MAGNITUDE:
                break
            m = np.asarray(abs_weight @ m, dtype=np.float64).ravel() + abs_bias
            peak = max(peak, float(m.max(initial=0.0)))
            m = gain * m
    return peak


def check_magnitudes(net: Any, bound: NDArray[np.float64], name: str) -> None:
    """Refuse inputs where the network's values could exceed :data:`MAX_MAGNITUDE`.

    ``bound`` bounds ``|x|`` coordinate-wise over the inputs (see
    :func:`magnitude_bound`).
    """
    peak = magnitude_bound(net, bound)
    if not peak <= MAX_MAGNITUDE:
        msg = (
            f"{name}: the network's values there could reach {peak:.3g}, beyond the "
            f"{MAX_MAGNITUDE:.0e} that lrcore computes with in float64 (squares of larger "
            "values overflow); rescale the inputs or the network"
        )
        raise ValueError(msg)


#: Share of the memory available at call time that ``max_memory=None`` allows.
MEMORY_SHARE = 0.8

#: Seconds for which one reading of the available memory serves ``max_memory=None``:
#: reading /proc/meminfo took a third of a small call.
MEMORY_PROBE_SECONDS = 1.0

_memory_probe: tuple[float, float | None] | None = None  # (time.monotonic(), bytes)


def available_memory() -> float | None:
    """Bytes of memory available now (Linux ``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024.0
    except OSError:
        pass
    return None


def check_max_memory(max_memory: float | None) -> float:
    """The memory cap in bytes for the core (0: none).

    ``None`` is :data:`MEMORY_SHARE` of the memory available now (read at most once
    every :data:`MEMORY_PROBE_SECONDS`).
    """
    if max_memory is None:
        global _memory_probe
        now = time.monotonic()
        probe = _memory_probe
        if probe is None or not 0 <= now - probe[0] < MEMORY_PROBE_SECONDS:
            probe = _memory_probe = (now, available_memory())
        available = probe[1]
        return 0.0 if available is None else MEMORY_SHARE * available
    try:
        value = float(max_memory)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0 or value == float("inf"):
        msg = f"max_memory: expected a positive number of bytes or None, got {max_memory!r}"
        raise ValueError(msg)
    return value


def check_max_slow_work(max_slow_work: float | None) -> float:
    """The core's slow-work budget: -1.0 for None (no budget), else a finite float >= 0."""
    if max_slow_work is None:
        return -1.0
    if isinstance(max_slow_work, (bool, np.bool_)) or not isinstance(
        max_slow_work, (int, float, np.integer, np.floating)
    ):
        msg = (
            "max_slow_work: expected a non-negative number or None, got "
            f"{type(max_slow_work).__name__}"
        )
        raise TypeError(msg)
    value = float(max_slow_work)
    if not (math.isfinite(value) and value >= 0.0):
        msg = f"max_slow_work: expected a finite non-negative number or None, got {max_slow_work}"
        raise ValueError(msg)
    return value
