"""Input checks shared by the public entry points: clear errors before the core runs."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray


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
