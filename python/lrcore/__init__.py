"""lrcore: exact linear regions of piecewise-linear neural networks.

Computes, exactly and in float64, where a ReLU-family network's activation pattern
changes along 1D paths through input space (count_1d) and the planar partition it makes
of 2D slices (slice_2d), with a C++ core that evaluates each layer as one dense product
over all current vertices.

Examples
--------
>>> import numpy as np, lrcore
>>> net = lrcore.Network.random([2, 16, 16, 1], seed=0)
>>> r = lrcore.count_1d(net, np.array([[-1.0, 0.0], [1.0, 0.0]]))
>>> r.num_pieces == r.num_breakpoints + 1
True
"""

from __future__ import annotations

import os as _os
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

import numpy as _np  # noqa: F401  (numpy's own BLAS loads first, with the user's settings)

# The core runs its BLAS one thread per call (its own worker threads share the work), so its
# OpenBLAS loads without a thread pool: OPENBLAS_NUM_THREADS=1 while it loads (OpenBLAS
# reads it once, at load; numpy's BLAS, loaded above, keeps the user's setting). Otherwise
# the library starts a helper thread per core that spins at load and then idles.
_saved_blas_threads = _os.environ.get("OPENBLAS_NUM_THREADS")
_os.environ["OPENBLAS_NUM_THREADS"] = "1"
try:
    from . import _core
except ImportError as _err:  # pragma: no cover - depends on the installation
    try:
        # The core links the OpenBLAS of the scipy-openblas32 wheel; load it by path in
        # case the dynamic loader cannot find it from the extension's location.
        import ctypes as _ctypes

        import scipy_openblas32 as _openblas

        _ctypes.CDLL(
            _os.path.join(_openblas.get_lib_dir(), f"lib{_openblas.get_library()}.so"),
            mode=_ctypes.RTLD_GLOBAL,
        )
        from . import _core
    except (ImportError, OSError):
        _msg = (
            "lrcore's compiled core (lrcore._core) could not be imported. Build it from the "
            "source tree with `pip install --no-build-isolation -ve .` (needs a C++17 "
            "compiler, cmake, ninja, pybind11, scikit-build-core and scipy-openblas32), "
            f"or reinstall lrcore. Original error: {_err}"
        )
        raise ImportError(_msg) from _err
finally:
    if _saved_blas_threads is None:
        del _os.environ["OPENBLAS_NUM_THREADS"]
    else:
        _os.environ["OPENBLAS_NUM_THREADS"] = _saved_blas_threads

from ._maxpool import MaxPooling, PathPooling, SlicePooling
from ._validation import (
    DEFAULT_MAX_SLOW_DECISIONS,
    DEFAULT_MAX_SLOW_WORK,
    CertificationWarning,
    RoundingWarning,
)
from ._verify import VERIFY_FACTOR, Problem, VerificationError, VerifyReport
from .network import ACTIVATIONS, Network, from_torch
from .path1d import DEFAULT_MAX_PIECES, DEFAULT_RTOL, BatchResult, PathResult, count_1d
from .slice2d import DEFAULT_MAX_REGIONS, LinearRegions, Plane, SliceResult, slice_2d

LimitExceeded = _core.LimitExceeded
LimitExceeded.__module__ = "lrcore"
LimitExceeded.__doc__ = (
    "A resource cap (max_pieces, max_regions) was reached; the message says how to raise it."
)

try:
    # pyproject.toml is the one place the version is written.
    __version__ = _version("lrcore")
except PackageNotFoundError:  # pragma: no cover - a source tree on sys.path, not installed
    __version__ = "0+unknown"

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_MAX_PIECES",
    "DEFAULT_MAX_REGIONS",
    "DEFAULT_MAX_SLOW_DECISIONS",
    "DEFAULT_MAX_SLOW_WORK",
    "DEFAULT_RTOL",
    "VERIFY_FACTOR",
    "BatchResult",
    "CertificationWarning",
    "LimitExceeded",
    "LinearRegions",
    "MaxPooling",
    "Network",
    "PathPooling",
    "PathResult",
    "Plane",
    "Problem",
    "RoundingWarning",
    "SlicePooling",
    "SliceResult",
    "VerificationError",
    "VerifyReport",
    "__version__",
    "count_1d",
    "from_torch",
    "slice_2d",
]
