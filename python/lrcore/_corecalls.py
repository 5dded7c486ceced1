"""Every call into the compiled core's entry points, one keyword-only wrapper each.

``lrcore._core.count_1d`` and ``lrcore._core.slice_2d`` take many arguments of the same
types (two integer caps, two floats, lists of arrays); a positional call that swaps two
of them still runs. The wrappers here take keywords only and pass them on by name, so
each call site says what every value is. They add no checks: the public functions
(:func:`lrcore.count_1d`, :func:`lrcore.slice_2d`) have checked every argument before
(see docs/contributing.md, "Which layer checks what"). The results are typed by the
``TypedDict`` classes of ``_core.pyi``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from . import _core

if TYPE_CHECKING:
    from ._core import PathBatchArrays, SliceArrays
    from .network import Network

__all__ = ["UPDATE_NEW_VERTICES", "core_count_1d", "core_path_extent", "core_slice_2d"]

#: How ``core_count_1d`` computes new vertices' values when not told (see there): 1, the
#: update from their interval's ends where it is cheaper than the dense product.
UPDATE_NEW_VERTICES = 1


def core_count_1d(
    *,
    net: Network,
    paths: list[NDArray[np.float64]],
    closed: list[bool],
    rtol: float | None,
    want_patterns: bool,
    num_threads: int,
    max_pieces: int,
    max_memory: float,
    max_slow_decisions: int,
    max_slow_work: float,
    update_new_vertices: int | None = None,
) -> PathBatchArrays:
    """Breakpoints of ``net`` along each path, as the core's flat batch arrays.

    ``rtol`` None: certified sign decisions. ``max_memory`` is in bytes, 0 for no cap.
    ``max_slow_decisions`` < 0, ``max_slow_work`` < 0: no budget (of decisions, of
    work as a multiple of the float64 work) for the certified slow path.
    ``update_new_vertices``: where a layer's new vertices get the next layer's values
    from their interval's ends instead of the dense product: 1 where cheaper, 0 never, 2
    wherever possible; None: :data:`UPDATE_NEW_VERTICES` (1; tests set it to compare the
    three, whose counts are the same).
    """
    if update_new_vertices is None:
        update_new_vertices = UPDATE_NEW_VERTICES
    return _core.count_1d(
        net=net._core,
        paths=paths,
        closed=closed,
        rtol=rtol,
        want_patterns=want_patterns,
        num_threads=num_threads,
        max_pieces=max_pieces,
        max_memory=max_memory,
        max_slow_decisions=max_slow_decisions,
        max_slow_work=max_slow_work,
        update_new_vertices=update_new_vertices,
    )


def core_path_extent(*, paths: list[NDArray[np.float64]]) -> tuple[float, float]:
    """``(largest |coordinate|, shortest nonzero step)`` of 2-d paths of one width.

    The peak is NaN when any value is NaN or infinite; the step is infinite when no two
    consecutive points of a path differ.
    """
    return _core.path_extent(paths=paths)


def core_slice_2d(
    *,
    net: Network,
    origins: list[NDArray[np.float64]],
    bases: list[NDArray[np.float64]],
    domains: list[NDArray[np.float64]],
    cuts: list[NDArray[np.float64]],
    rtol: float | None,
    num_threads: int,
    max_regions: int,
    max_memory: float,
    max_slow_work: float = 2.0,
) -> list[SliceArrays]:
    """The planar partition of each slice (one dict of arrays per slice).

    Slice ``i`` is the plane ``origins[i] + s * bases[i][0] + t * bases[i][1]`` on the
    convex polygon ``domains[i]``, cut along ``s = c`` for each ``c`` in ``cuts[i]``;
    ``max_memory`` is in bytes, 0 for no cap. ``rtol`` None: certified sign decisions.
    ``max_slow_work`` < 0: no budget for the certified slow path.
    """
    return _core.slice_2d(
        net=net._core,
        origins=origins,
        bases=bases,
        domains=domains,
        cuts=cuts,
        rtol=rtol,
        num_threads=num_threads,
        max_regions=max_regions,
        max_memory=max_memory,
        max_slow_work=max_slow_work,
    )
