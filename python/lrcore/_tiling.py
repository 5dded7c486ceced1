"""How ``slice_2d`` cuts a slice into tiles, and the heuristic of ``tiles="auto"``.

A slice's domain is cut along lines ``s = c`` into tiles (the strips between two cut
lines) that the core builds in parallel, each with the working memory of one tile, and
merges into one partition (docs/design.md, "Tiles"). The partition does not depend on
the cuts; their number and place only change time and peak memory. ``tiles=n`` gives
``n`` tiles of equal width (the cut lines sit :data:`CUT_OFFSET` of a tile off round
fractions, where constructed examples put their zero lines).

``tiles="auto"`` estimates the number of regions from exact 1D counts (the core's
``count_1d``; not for networks whose sizes alone bound the estimate below one tile's
worth, see ``_one_tile_for_sure``) and picks:

- one tile per about :data:`TILE_REGIONS` regions;
- on wide nets, up to :data:`MEMORY_TILES` tiles so that each holds about
  :data:`TILE_WORK_BYTES` of vertex rows (about 16 bytes per unit of the widest layer
  per region);
- for a single slice with threads to spare, at least one tile per
  :data:`PARALLEL_TILE_REGIONS` regions, up to two per spare thread;
- at most :data:`MAX_AUTO_TILES`.

Regions in a box whose horizontal lines cross about ``a`` breakpoints and whose vertical
middle line crosses ``b`` number about ``(a + 1)(b + 1)`` (as in a line arrangement). Two
horizontal lines (at a quarter and three quarters of the height) and the vertical middle
line decide first whether a slice needs more than one tile. Only for
:data:`TILE_REGIONS` regions or more do :data:`PROBE_LINES` horizontal lines place the
cuts, at heights that split the vertical line's breakpoints into equal shares (each line
stands for as many rows of regions, so a crowd of regions in the middle of the domain is
not missed). The cuts split the breakpoints the horizontal lines meet into equal shares,
so dense parts of the slice get narrow tiles.

The constants were tuned on benchmarks/bench_2d.py (see the git log of this file and of
slice2d.py before it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ._corecalls import core_count_1d
from ._validation import DEFAULT_MAX_REGIONS

if TYPE_CHECKING:
    from .network import Network
    from .slice2d import Plane

__all__ = ["tile_cuts"]

#: Regions per tile aimed at by ``slice_2d(..., tiles="auto")``.
TILE_REGIONS = 20_000

#: Working memory per tile (vertex rows) that ``"auto"`` aims at on slices too small for
#: TILE_REGIONS to cut, with at most MEMORY_TILES tiles: a slice of a wide net then never
#: holds all its rows at once.
TILE_WORK_BYTES = 4 * 2**20
MEMORY_TILES = 8

#: Regions per tile below which ``"auto"`` does not split a slice for threads alone.
PARALLEL_TILE_REGIONS = 1_500

#: The most tiles ``"auto"`` picks.
MAX_AUTO_TILES = 256

#: Equal-width cut lines sit this fraction of a tile off round fractions of the width,
#: where constructed examples put their zero lines (keep tests/test_slice2d_tiles.py in
#: step).
CUT_OFFSET = 0.0137254901960784

#: Horizontal lines along which ``"auto"`` measures how regions spread over ``s``.
PROBE_LINES = 8

#: Cap on the pieces of the probe lines (as on a slice's regions by default; the probe
#: has no memory cap).
PROBE_MAX_PIECES = DEFAULT_MAX_REGIONS


def _quantiles(values: NDArray[np.float64], shares: NDArray[np.float64]) -> NDArray[np.float64]:
    """``np.quantile(values, shares)`` (linear interpolation), without its first-call cost.

    numpy imports its quantile machinery lazily: about 1 MB that a small slice would carry.
    """
    ordered = np.sort(values)
    pos = np.asarray(shares, dtype=np.float64) * (ordered.size - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, ordered.size - 1)
    return ordered[lo] + (pos - lo) * (ordered[hi] - ordered[lo])


def _chord(poly: NDArray[np.float64], t: float) -> tuple[float, float] | None:
    """The range of ``s`` where the line at height ``t`` meets the convex polygon."""
    ends = []
    for a, b in zip(poly, np.roll(poly, -1, axis=0)):
        if (a[1] - t) * (b[1] - t) <= 0 and a[1] != b[1]:
            ends.append(a[0] + (t - a[1]) / (b[1] - a[1]) * (b[0] - a[0]))
    if len(ends) < 2 or max(ends) <= min(ends):
        return None
    return min(ends), max(ends)


def tile_cuts(
    tiles: int | str,
    net: Network,
    plane: Plane,
    poly: NDArray[np.float64],
    rtol: float,
    threads: int,
    spare: int,
) -> NDArray[np.float64]:
    """Positions ``s = c`` of the lines that cut one slice's domain into tiles.

    ``spare``: the threads the slice's tiles may run on at once.
    """
    if isinstance(tiles, str) and tiles == "auto":
        return _auto_cuts(net, plane, poly, rtol, threads, spare)
    if not isinstance(tiles, (int, np.integer)) or isinstance(tiles, bool) or tiles < 1:
        msg = f"tiles: expected a positive integer or 'auto', got {tiles!r}"
        raise ValueError(msg)
    lo, hi = float(poly[:, 0].min()), float(poly[:, 0].max())
    count = int(tiles)
    return np.array([lo + (hi - lo) * (k + CUT_OFFSET) / count for k in range(1, count)])


def _probe(
    net: Network,
    plane: Plane,
    lines: list[NDArray[np.float64]],
    rtol: float,
    threads: int,
) -> tuple[NDArray[np.int64], list[NDArray[np.float64]]]:
    """Breakpoint counts along ``lines`` (segments in the plane), and their points.

    The points of each line's breakpoints are in plane coordinates.
    """
    # The core directly: slice_2d checked the plane and the magnitudes on the domain,
    # which holds these lines (count_1d's own checks cost more than the counts).
    flat = core_count_1d(
        net=net,
        paths=[plane.to_input(line) for line in lines],
        closed=[False] * len(lines),
        rtol=rtol,
        want_patterns=False,
        num_threads=threads,
        max_pieces=PROBE_MAX_PIECES,
        max_memory=0.0,
        max_slow_decisions=-1,  # rtol is a number: no slow path
        max_slow_work=-1.0,
    )
    offsets, lengths = flat["offsets"], flat["lengths"]
    points = []
    for i, line in enumerate(lines):
        frac = flat["breakpoints"][offsets[i] : offsets[i + 1]] / max(lengths[i], 1e-300)
        points.append(line[0] + frac[:, None] * (line[1] - line[0]))
    return np.diff(offsets), points


def _one_tile_for_sure(net: Network, width: int, spare: int) -> bool:
    """Whether every probe would give one tile, known from the network's sizes alone.

    A line meets at most ``prod(1 + n_l)`` pieces (``n_l`` neurons in hidden layer
    ``l``: on each piece of the layers before, a neuron is affine and changes sign once
    at most), so the probes' estimate ``(a + 1)(b + 1)`` is at most that squared. Where
    even that bound picks one tile, the probes are skipped: small nets are not probed.
    """
    bound = 1.0
    for neurons in net.hidden_sizes:
        bound *= (1.0 + neurons) ** 2
        if bound > TILE_REGIONS:
            return False
    by_memory = 16 * width * bound < 2 * TILE_WORK_BYTES
    by_threads = spare <= 1 or bound < 2 * PARALLEL_TILE_REGIONS
    return bool(by_memory and by_threads)


def _auto_cuts(
    net: Network,
    plane: Plane,
    poly: NDArray[np.float64],
    rtol: float,
    threads: int,
    spare: int,
) -> NDArray[np.float64]:
    """The cut lines of ``tiles="auto"`` for one slice.

    The module docstring says how they are placed; ``spare``: the threads the slice's
    tiles may run on at once.
    """
    width = max(net.layer_widths, default=1)
    if _one_tile_for_sure(net, width, spare):
        return np.zeros(0)
    (s_lo, t_lo), (s_hi, t_hi) = poly.min(axis=0), poly.max(axis=0)
    s_mid = float(s_lo + s_hi) / 2
    flipped = _chord(poly[:, ::-1].copy(), s_mid)
    if flipped is None:
        return np.zeros(0)
    vertical = np.array([[s_mid, flipped[0]], [s_mid, flipped[1]]])
    heights = t_lo + np.array([0.25, 0.75]) * (t_hi - t_lo)
    for stage in range(2):
        rows = [(t, _chord(poly, t)) for t in heights]
        lines = [np.array([[c[0], t], [c[1], t]]) for t, c in rows if c is not None]
        if not lines:
            return np.zeros(0)
        counts, points = _probe(net, plane, [*lines, vertical], rtol, threads)
        estimate = (np.mean(counts[:-1]) + 1) * (counts[-1] + 1)
        # Enough tiles for TILE_REGIONS each, and on wide nets enough (up to
        # MEMORY_TILES) that the vertex rows in flight (about 16 w bytes a region, w the
        # widest layer) stay near TILE_WORK_BYTES a tile.
        by_memory = min(MEMORY_TILES, np.floor(16 * width * estimate / TILE_WORK_BYTES))
        by_threads = min(2 * spare, np.floor(estimate / PARALLEL_TILE_REGIONS)) if spare > 1 else 1
        count = int(
            min(MAX_AUTO_TILES, max(1, np.ceil(estimate / TILE_REGIONS), by_memory, by_threads))
        )
        if count == 1:
            return np.zeros(0)
        if estimate < TILE_REGIONS:
            break  # tiles for threads or memory: the two lines place them well enough
        if stage == 0:
            shares = (np.arange(PROBE_LINES) + 0.5) / PROBE_LINES
            t_breaks = points[-1][:, 1]
            heights = (
                _quantiles(t_breaks, shares)
                if t_breaks.size >= 2 * PROBE_LINES
                else t_lo + shares * (t_hi - t_lo)
            )
    positions = np.concatenate([p[:, 0] for p in points[:-1]])
    if positions.size < count:
        return np.zeros(0)
    cuts = _quantiles(positions, np.arange(1, count) / count)
    return np.unique(cuts[(cuts > s_lo) & (cuts < s_hi)])
