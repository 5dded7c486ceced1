"""Input checks shared by the public entry points: clear errors before the core runs."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Default relative zero tolerance: a pre-activation z_j at a vertex counts as exactly
#: zero when |z_j| <= rtol * (||W_j||_2 * ||h||_2 + |b_j|), h being the layer's input.
DEFAULT_RTOL = 1e-10


def as_float_array(
    value: Any, name: str, ndim: int | None = None, finite: bool = True
) -> NDArray[np.float64]:
    """Convert ``value`` to a C-contiguous float64 array or raise naming ``name``.

    Integer, boolean and float inputs of any layout are accepted; object, string,
    complex and other dtypes raise TypeError; NaN/Inf (when ``finite``) and a wrong
    number of dimensions raise ValueError.
    """
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
    if not np.isfinite(rtol) or rtol < 0:
        msg = f"rtol: expected a finite number >= 0, got {rtol!r}"
        raise ValueError(msg)
    threads = default_threads() if num_threads is None else int(num_threads)
    if threads < 1:
        msg = f"num_threads: expected a positive integer or None, got {num_threads!r}"
        raise ValueError(msg)
    if int(cap) < 1:
        msg = f"{cap_name}: expected a positive integer, got {cap!r}"
        raise ValueError(msg)
    return rtol, threads, int(cap)
