"""Exact activation regions on 2D slices (planes) of input space."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core
from ._corecalls import core_slice_2d
from ._maxpool import SlicePooling, merge_slice
from ._optional import optional_import
from ._tiling import tile_cuts
from ._validation import (
    DEFAULT_MAX_REGIONS,
    DEFAULT_MAX_SLOW_WORK,
    DEFAULT_RTOL,
    CertificationWarning,
    RoundingWarning,
    as_float_array,
    check_magnitudes,
    check_max_memory,
    check_max_slow_work,
    check_run_options,
    uniform_input_limit,
)
from ._verify import Verifiable, VerifyReport, check_slice
from .network import Network

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ._core import SliceArrays

__all__ = ["DEFAULT_MAX_REGIONS", "LinearRegions", "Plane", "SliceResult", "slice_2d"]


class Plane:
    """The plane ``x(s, t) = origin + s * basis[0] + t * basis[1]`` in input space.

    Parameters
    ----------
    origin
        ``(d,)`` point at ``(s, t) = (0, 0)``.
    basis
        ``(2, d)``: two linearly independent directions.

    Examples
    --------
    >>> import numpy as np
    >>> plane = Plane.through(np.zeros(3), np.eye(3)[0], np.eye(3)[1])
    >>> plane.to_input([[1.0, 1.0]])
    array([[1., 1., 0.]])
    """

    def __init__(self, origin: ArrayLike, basis: ArrayLike) -> None:
        self.origin = as_float_array(origin, "origin", ndim=1)
        self.basis = as_float_array(basis, "basis", ndim=2)
        d = self.origin.shape[0]
        if self.basis.shape != (2, d):
            msg = f"basis: expected shape (2, {d}) to match origin {self.origin.shape}, got {self.basis.shape}"
            raise ValueError(msg)
        # Independence: the Gram matrix in floats where its entries cannot over- or
        # underflow, else the directions scaled to unit length first.
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            (g00, g01), (_, g11) = (self.basis @ self.basis.T).tolist()
        self._extent: tuple[float, float] | None = None
        if 1e-280 < g00 < 1e280 and 1e-280 < g11 < 1e280 and 1.0 - g01 * g01 / (g00 * g11) > 1e-12:
            return
        peaks = np.abs(self.basis).max(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            unit = self.basis / peaks[:, None]
            unit /= np.sqrt(np.einsum("ij,ij->i", unit, unit))[:, None]
        if not float(peaks.min()) > 0 or 1.0 - float(unit[0] @ unit[1]) ** 2 <= 1e-12:
            norms = peaks * np.linalg.norm(
                self.basis / np.where(peaks > 0, peaks, 1.0)[:, None], axis=1
            )
            msg = (
                "basis: the two directions must be linearly independent (got collinear or "
                f"zero rows, norms {norms.tolist()})"
            )
            raise ValueError(msg)

    def extent(self) -> tuple[float, float]:
        """``(max |origin_i|, max (|basis[0, i]| + |basis[1, i]|))``, kept once computed.

        ``|x_i| <= extent[0] + r * extent[1]`` for every point of the plane with
        ``|s|, |t| <= r``.
        """
        if self._extent is None:
            with np.errstate(over="ignore"):
                self._extent = (
                    float(np.abs(self.origin).max()),
                    float(np.abs(self.basis).sum(axis=0).max()),
                )
        return self._extent

    @classmethod
    def through(cls, x0: ArrayLike, x1: ArrayLike, x2: ArrayLike) -> Plane:
        """The plane through three inputs, with them at (0, 0), (1, 0) and (0, 1).

        Examples
        --------
        >>> import numpy as np
        >>> Plane.through([0, 0], [2, 0], [0, 3]).basis
        array([[2., 0.],
               [0., 3.]])
        """
        p0 = as_float_array(x0, "x0", ndim=1)
        p1 = as_float_array(x1, "x1", ndim=1)
        p2 = as_float_array(x2, "x2", ndim=1)
        if not p0.shape == p1.shape == p2.shape:
            msg = f"x0, x1, x2: expected equal shapes, got {p0.shape}, {p1.shape}, {p2.shape}"
            raise ValueError(msg)
        try:
            return cls(p0, np.stack([p1 - p0, p2 - p0]))
        except ValueError as err:
            msg = f"x0, x1, x2: the three points must not be collinear or equal ({err})"
            raise ValueError(msg) from err

    @property
    def input_dim(self) -> int:
        """Dimension of the input space."""
        return int(self.origin.shape[0])

    def to_input(self, st: ArrayLike) -> NDArray[np.float64]:
        """Points of input space at plane coordinates ``st`` (``(n, 2)`` or ``(2,)``)."""
        arr = as_float_array(st, "st")
        single = arr.ndim == 1
        arr2 = np.atleast_2d(arr)
        if arr2.ndim != 2 or arr2.shape[1] != 2:
            msg = f"st: expected shape (n, 2) or (2,), got {arr.shape}"
            raise ValueError(msg)
        out: NDArray[np.float64] = self.origin + arr2 @ self.basis
        return out[0] if single else out

    def __repr__(self) -> str:
        return f"Plane(input_dim={self.input_dim})"


@dataclass(frozen=True)
class LinearRegions:
    """Faces merged where adjacent faces carry the same affine map of the output."""

    num_regions: int
    labels: NDArray[np.int64]  #: linear region of each face
    areas: NDArray[np.float64]  #: area of each linear region


class SliceResult(Verifiable):
    """The exact partition of a plane slice into activation regions.

    Faces are convex polygons of the ``(s, t)`` plane, counter-clockwise, given in CSR form
    (``face_vertices[face_offsets[f]:face_offsets[f + 1]]``); each has one activation
    pattern. These are activation regions; :meth:`linear_regions` merges faces on which the
    network is the same affine map.

    With max pooling (``net.pooling``) a face is a region of ReLU signs and window
    argmaxes: faces of the pooling tournaments that differ in loser matches only are
    merged, patterns are canonical, and ``pooling`` gives the argmaxes per face and the
    windows whose argmax changes across each edge.
    """

    def __init__(
        self,
        arrays: SliceArrays,
        plane: Plane,
        domain: NDArray[np.float64],
        num_neurons: int,
        *,
        network: Network | None = None,
        rtol: float | None = DEFAULT_RTOL,
        pooling: SlicePooling | None = None,
    ) -> None:
        self.plane = plane
        self.domain = domain
        self.num_neurons = int(num_neurons)
        self.vertices: NDArray[np.float64] = arrays["vertices"]
        #: The network's output at each vertex, ``(V, output_dim)``.
        self.vertex_outputs: NDArray[np.float64] = arrays["outputs"]
        self.face_offsets: NDArray[np.int64] = arrays["face_offsets"]
        self.face_vertices: NDArray[np.int64] = arrays["face_vertices"]
        self.edges: NDArray[np.int64] = arrays["edges"]
        self.edge_neurons: NDArray[np.int64] = arrays["edge_neurons"]
        self.patterns: NDArray[np.uint8] = arrays["patterns"]
        #: Strips of the domain the partition was computed in (see ``slice_2d(tiles=)``).
        self.tiles: int = int(arrays.get("tiles", 1))
        #: Crossings that lay closer to a vertex (or to another crossing on the same edge)
        #: than float64 plane coordinates resolve (64 ulps of the domain's largest
        #: coordinate) and were placed at it; the slivers between them are not counted.
        #: ``slice_2d`` warns (:class:`lrcore.RoundingWarning`) when this is not zero.
        self.merged_crossings: int = int(arrays.get("merged_crossings", 0))
        #: Certified slices (``rtol=None``): sign decisions neither the fast filter nor the
        #: slow path could make (``|z_j|`` within the filter's error bound, and the slow
        #: path's work budget spent, or no defining lines known at the vertex). Each took
        #: the old zero tolerance's decision (``rtol=lrcore.DEFAULT_RTOL``: 0, the line
        #: through the vertex, when within it; else the float64 sign), not certified. A
        #: vertex on a cut line counts once; 0 means every sign is certified.
        #: ``slice_2d`` warns (:class:`lrcore.CertificationWarning`) when it is not zero.
        self.uncertified_decisions: int = int(arrays.get("uncertified_decisions", 0))
        #: Certified slices: values proven exactly 0, by structure (a row without bias
        #: that reads only inputs exactly 0 at the vertex: max pooling's ties between ReLU
        #: outputs that are both off) or by the slow path's exact tier (lines through one
        #: point: concurrent lines, a line through a corner).
        self.exact_coincidences: int = int(arrays.get("exact_coincidences", 0))
        #: Certified slices: sign decisions the fast filter left undecided and the slow
        #: path took (double-double determinants at the vertex's exact point, else exact
        #: ones; docs/numerics.md §6). The exact zeros among them are also counted in
        #: ``exact_coincidences``.
        self.slow_decisions: int = int(arrays.get("slow_decisions", 0))
        #: The network the slice was computed for (``verify`` re-evaluates it).
        self.network = network
        #: The zero tolerance it was computed with; None: certified sign decisions.
        self.rtol = None if rtol is None else float(rtol)
        #: For a network with max pooling: each face's argmax per window and the windows
        #: whose argmax changes across each edge (see ``docs/maxpool.md``).
        self.pooling = pooling
        self._cache: dict[str, Any] = {}

    # -- sizes -------------------------------------------------------------------------
    @property
    def num_regions(self) -> int:
        """Number of activation regions (faces) in the domain."""
        return int(self.face_offsets.shape[0] - 1)

    @property
    def num_vertices(self) -> int:
        """Number of vertices of the planar partition."""
        return int(self.vertices.shape[0])

    @property
    def num_edges(self) -> int:
        """Number of edges of the planar partition."""
        return int(self.edges.shape[0])

    def __repr__(self) -> str:
        return (
            f"SliceResult(regions={self.num_regions}, vertices={self.num_vertices}, "
            f"edges={self.num_edges})"
        )

    # -- geometry ----------------------------------------------------------------------
    @property
    def faces(self) -> list[NDArray[np.int64]]:
        """Vertex indices of each face, counter-clockwise (a list view of the CSR arrays)."""
        return np.split(self.face_vertices, self.face_offsets[1:-1])

    def _sides(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """Face, start vertex and end vertex of every polygon side."""
        if "sides" not in self._cache:
            sizes = np.diff(self.face_offsets)
            face = np.repeat(np.arange(self.num_regions), sizes)
            nxt = np.arange(1, self.face_vertices.shape[0] + 1)
            nxt[self.face_offsets[1:] - 1] = self.face_offsets[:-1]
            self._cache["sides"] = (face, self.face_vertices, self.face_vertices[nxt])
        sides: tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]] = self._cache[
            "sides"
        ]
        return sides

    def _area_terms(
        self,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        if "area" not in self._cache:
            face, a, b = self._sides()
            starts = self.face_offsets[:-1]
            # Coordinates relative to each face's first vertex: a small face far from the
            # origin would otherwise lose its area to cancellation in the shoelace sum.
            anchor = self.vertices[self.face_vertices[starts]]
            pa = self.vertices[a] - anchor[face]
            pb = self.vertices[b] - anchor[face]
            cross = pa[:, 0] * pb[:, 1] - pb[:, 0] * pa[:, 1]
            if len(starts):
                area = 0.5 * np.add.reduceat(cross, starts)
                moments = np.stack(
                    [
                        np.add.reduceat((pa[:, 0] + pb[:, 0]) * cross, starts),
                        np.add.reduceat((pa[:, 1] + pb[:, 1]) * cross, starts),
                    ],
                    axis=1,
                )
            else:
                area, moments = np.zeros(0), np.zeros((0, 2))
            self._cache["area"] = (area, moments, anchor)
        terms: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]] = self._cache[
            "area"
        ]
        return terms

    @property
    def areas(self) -> NDArray[np.float64]:
        """Area of each face in ``(s, t)`` coordinates."""
        return self._area_terms()[0]

    @property
    def centroids(self) -> NDArray[np.float64]:
        """Centroid of each face in ``(s, t)`` coordinates."""
        area, moments, anchor = self._area_terms()
        with np.errstate(divide="ignore", invalid="ignore"):
            cent = anchor + moments / (6.0 * area[:, None])
        # Degenerate (zero-area) faces fall back to the mean of their vertices.
        bad = ~np.isfinite(cent).all(axis=1)
        if np.any(bad):
            means = np.add.reduceat(self.vertices[self.face_vertices], self.face_offsets[:-1])
            means /= np.diff(self.face_offsets)[:, None]
            cent[bad] = means[bad]
        return cent

    @property
    def adjacency(self) -> NDArray[np.int64]:
        """``(A, 2)`` pairs of faces that share an edge (smaller face index first)."""
        if "adjacency" not in self._cache:
            face, a, b = self._sides()
            key = np.minimum(a, b) * np.int64(self.num_vertices) + np.maximum(a, b)
            order = np.argsort(key, kind="stable")
            key_sorted = key[order]
            same = np.nonzero(key_sorted[1:] == key_sorted[:-1])[0]
            pairs = np.stack([face[order[same]], face[order[same + 1]]], axis=1)
            pairs.sort(axis=1)
            self._cache["adjacency"] = pairs
        adjacency: NDArray[np.int64] = self._cache["adjacency"]
        return adjacency

    def pattern_bools(self) -> NDArray[np.bool_]:
        """Each face's activation pattern as a ``(num_regions, num_neurons)`` bool array."""
        bits = np.unpackbits(self.patterns, axis=1, count=self.num_neurons, bitorder="little")
        return bits.astype(bool)

    def to_input(self, st: ArrayLike) -> NDArray[np.float64]:
        """Points of input space at plane coordinates ``st``."""
        return self.plane.to_input(st)

    # -- the network on the faces ------------------------------------------------------
    @property
    def output_maps(self) -> NDArray[np.float64]:
        """``(F, output_dim, 3)``: on face f, ``f(s, t) = M[f] @ (s, t, 1)``.

        Fitted by least squares to the exact outputs at the face's vertices (the network
        is affine on the face, so the fit is exact up to rounding).
        """
        if "maps" not in self._cache:
            starts = self.face_offsets[:-1]
            pts = self.vertices[self.face_vertices]
            ys = self.vertex_outputs[self.face_vertices]
            # Centre each face for conditioning.
            counts = np.diff(self.face_offsets)[:, None]
            centre = np.add.reduceat(pts, starts) / counts
            local = pts - np.repeat(centre, counts[:, 0], axis=0)
            design = np.concatenate([local, np.ones((local.shape[0], 1))], axis=1)
            gram = np.add.reduceat(design[:, :, None] * design[:, None, :], starts)
            rhs = np.add.reduceat(design[:, :, None] * ys[:, None, :], starts)
            coef = np.linalg.solve(gram, rhs)  # (F, 3, out): slopes for local coords
            maps = np.transpose(coef, (0, 2, 1)).copy()  # (F, out, 3)
            maps[:, :, 2] -= np.einsum("fok,fk->fo", maps[:, :, :2], centre)
            self._cache["maps"] = maps
        maps_out: NDArray[np.float64] = self._cache["maps"]
        return maps_out

    def linear_regions(self, rtol: float = 1e-9) -> LinearRegions:
        """Merge adjacent faces on which the network is the same affine map.

        Two maps are the same when they differ by at most ``rtol`` times their scale.
        """
        maps = self.output_maps.reshape(self.num_regions, -1)
        pairs = self.adjacency
        scale = np.maximum(
            np.abs(maps[pairs[:, 0]]).max(axis=1), np.abs(maps[pairs[:, 1]]).max(axis=1)
        )
        diff = np.abs(maps[pairs[:, 0]] - maps[pairs[:, 1]]).max(axis=1)
        same = pairs[diff <= rtol * np.maximum(scale, 1e-300)]
        parent = np.arange(self.num_regions)

        def root(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = int(parent[i])
            return i

        for a, b in same:
            ra, rb = root(int(a)), root(int(b))
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
        roots = np.array([root(i) for i in range(self.num_regions)], dtype=np.int64)
        _, labels = np.unique(roots, return_inverse=True)
        labels = labels.astype(np.int64)
        count = int(labels.max()) + 1 if labels.size else 0
        areas = np.bincount(labels, weights=self.areas, minlength=count).astype(np.float64)
        return LinearRegions(count, labels, areas)

    def decision_boundary(self, level: float = 0.0, output: int = 0) -> NDArray[np.float64]:
        """Line segments ``(K, 2, 2)`` where output ``output`` equals ``level``.

        Exact: the output is affine on every face, so its level set is one segment per
        face it passes through.
        """
        if not 0 <= int(output) < self.vertex_outputs.shape[1]:
            msg = f"output: expected an index below {self.vertex_outputs.shape[1]}, got {output}"
            raise IndexError(msg)
        y = self.vertex_outputs[:, int(output)] - float(level)
        face, a, b = self._sides()
        above_a, above_b = y[a] > 0, y[b] > 0
        cut = above_a != above_b
        ya, yb = y[a[cut]], y[b[cut]]
        tau = ya / (ya - yb)
        pts = self.vertices[a[cut]] + tau[:, None] * (
            self.vertices[b[cut]] - self.vertices[a[cut]]
        )
        # An affine function changes sign on exactly two sides of a convex polygon.
        faces_cut = face[cut]
        order = np.argsort(faces_cut, kind="stable")
        pts = pts[order]
        counts = np.bincount(faces_cut, minlength=self.num_regions)
        if np.any((counts != 0) & (counts != 2)):
            keep = np.repeat(counts == 2, counts)
            pts = pts[keep]
        segments: NDArray[np.float64] = pts.reshape(-1, 2, 2)
        return segments

    def density_map(
        self, bins: int | tuple[int, int] = 32
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Regions per unit area on a grid over the domain's bounding box.

        Each face counts in the cell that holds its centroid. Returns ``(density,
        s_edges, t_edges)`` with ``density[i, j]`` for the cell ``s_edges[i:i+2]`` ×
        ``t_edges[j:j+2]``.
        """
        lo = self.domain.min(axis=0)
        hi = self.domain.max(axis=0)
        cent = self.centroids
        counts, s_edges, t_edges = np.histogram2d(
            cent[:, 0], cent[:, 1], bins=bins, range=[[lo[0], hi[0]], [lo[1], hi[1]]]
        )
        cell = np.diff(s_edges)[:, None] * np.diff(t_edges)[None, :]
        return counts / cell, s_edges, t_edges

    def plot(
        self,
        ax: Axes | None = None,
        color: str | ArrayLike = "random",
        edges: bool = True,
        boundary: float | None = None,
        output: int = 0,
        cmap: str = "viridis",
        seed: int = 0,
    ) -> Axes:
        """Draw the partition with matplotlib (optional dependency).

        Parameters
        ----------
        color
            ``"random"`` (a random colour per region), ``"area"`` (log-area colour map),
            ``"output"`` (the output at the centroid), or an array of one value per face.
        edges
            Draw the region boundaries.
        boundary
            If given, overlay the level set ``f_output = boundary`` (e.g. 0.0).
        """
        mpl_collections = optional_import("matplotlib.collections", "plot")
        plt = optional_import("matplotlib.pyplot", "plot")
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 6))
        polys = [self.vertices[f] for f in self.faces]
        collection = mpl_collections.PolyCollection(polys, linewidths=0)
        if isinstance(color, str) and color == "random":
            rng = np.random.default_rng(seed)
            collection.set_facecolor(rng.uniform(0.25, 0.95, size=(self.num_regions, 3)))
        else:
            if isinstance(color, str) and color == "area":
                values = np.log10(np.maximum(self.areas, 1e-300))
            elif isinstance(color, str) and color == "output":
                maps = self.output_maps[:, output, :]
                cent = self.centroids
                values = maps[:, 0] * cent[:, 0] + maps[:, 1] * cent[:, 1] + maps[:, 2]
            elif isinstance(color, str):
                msg = f"color: expected 'random', 'area', 'output' or an array, got {color!r}"
                raise ValueError(msg)
            else:
                values = as_float_array(color, "color", ndim=1)
                if values.shape[0] != self.num_regions:
                    msg = f"color: expected {self.num_regions} values, got {values.shape[0]}"
                    raise ValueError(msg)
            collection.set_array(values)
            collection.set_cmap(cmap)
        ax.add_collection(collection)
        if edges and self.num_edges:
            segs = self.vertices[self.edges]
            ax.add_collection(
                mpl_collections.LineCollection(segs, colors="k", linewidths=0.3, alpha=0.6)
            )
        if boundary is not None:
            segs = self.decision_boundary(level=boundary, output=output)
            ax.add_collection(mpl_collections.LineCollection(segs, colors="red", linewidths=1.5))
        lo, hi = self.domain.min(axis=0), self.domain.max(axis=0)
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal")
        ax.set_xlabel("s")
        ax.set_ylabel("t")
        ax.set_title(f"{self.num_regions} activation regions")
        return ax

    def _check(self, net: Network, tol: float, full_forward: bool = False) -> VerifyReport:
        return check_slice(self, net, tol)  # faces' corners: always whole forward passes


def _as_domain(
    bounds: Sequence[float] | None, domain: ArrayLike | None, name_prefix: str = ""
) -> NDArray[np.float64]:
    """The domain polygon, counter-clockwise, checked to be convex and non-degenerate."""
    if domain is not None:
        poly = as_float_array(domain, f"{name_prefix}domain", ndim=2)
        if poly.shape[1] != 2 or poly.shape[0] < 3:
            msg = f"{name_prefix}domain: expected an (m, 2) polygon with m >= 3, got {poly.shape}"
            raise ValueError(msg)
        keep = np.any(poly != np.roll(poly, -1, axis=0), axis=1)
        poly = poly[keep]
        if poly.shape[0] < 3:
            raise ValueError(f"{name_prefix}domain: fewer than 3 distinct corners")
        edge = np.roll(poly, -1, axis=0) - poly
        nxt = np.roll(edge, -1, axis=0)
        cross = edge[:, 0] * nxt[:, 1] - edge[:, 1] * nxt[:, 0]
        scale = np.abs(edge).max() ** 2
        if np.all(cross <= 1e-12 * scale):
            poly = poly[::-1].copy()  # clockwise: reverse
            edge = np.roll(poly, -1, axis=0) - poly
            nxt = np.roll(edge, -1, axis=0)
            cross = edge[:, 0] * nxt[:, 1] - edge[:, 1] * nxt[:, 0]
        # Convex: every corner turns left, and the turns add up to one full turn (a star
        # polygon also turns left everywhere but winds more than once).
        dot = edge[:, 0] * nxt[:, 0] + edge[:, 1] * nxt[:, 1]
        turning = np.arctan2(cross, dot).sum()
        if np.any(cross < -1e-12 * scale) or abs(turning - 2 * np.pi) > 1e-6:
            msg = (
                f"{name_prefix}domain: the polygon is not convex (or its corners are out of order)"
            )
            raise ValueError(msg)
        # Drop corners where the boundary goes straight on.
        poly = poly[np.roll(cross > 1e-12 * scale, 1)]
        if poly.shape[0] < 3:
            raise ValueError(f"{name_prefix}domain: the polygon has zero area")
        return np.ascontiguousarray(poly)
    if bounds is None:
        bounds = (-1.0, 1.0, -1.0, 1.0)
    if (
        isinstance(bounds, (tuple, list))
        and len(bounds) == 4
        and all(type(v) in (float, int) for v in bounds)
    ):
        s0, s1, t0, t1 = (float(v) for v in bounds)
        if s0 < s1 and t0 < t1 and math.isfinite(s1 - s0) and math.isfinite(t1 - t0):
            return np.array([[s0, t0], [s1, t0], [s1, t1], [s0, t1]])
    b = as_float_array(bounds, f"{name_prefix}bounds", ndim=1)
    if b.shape != (4,):
        msg = f"{name_prefix}bounds: expected (s0, s1, t0, t1), got shape {b.shape}"
        raise ValueError(msg)
    s0, s1, t0, t1 = b
    if not (s0 < s1 and t0 < t1):
        msg = f"{name_prefix}bounds: expected s0 < s1 and t0 < t1, got {tuple(b.tolist())}"
        raise ValueError(msg)
    return np.array([[s0, t0], [s1, t0], [s1, t1], [s0, t1]], dtype=np.float64)


def _neurons_on(net: Network, plane: Plane) -> Any:
    """``points -> (n, num_neurons)`` neuron values at plane points (for merge_slice)."""

    def evaluate(points: NDArray[np.float64]) -> NDArray[np.float64]:
        values = net.pre_activations(plane.to_input(points))
        return np.concatenate(values, axis=1) if values else np.zeros((len(points), 0))

    return evaluate


@overload
def slice_2d(
    net: Network,
    origin: list[Plane] | tuple[Plane, ...],
    basis: None = ...,
    bounds: Sequence[float] | None = ...,
    *,
    domain: ArrayLike | None = ...,
    rtol: float | None = ...,
    num_threads: int | None = ...,
    max_regions: int = ...,
    max_memory: float | None = ...,
    tiles: int | str = ...,
    max_slow_work: float | None = ...,
) -> list[SliceResult]: ...


@overload
def slice_2d(
    net: Network,
    origin: ArrayLike | Plane,
    basis: ArrayLike | None = ...,
    bounds: Sequence[float] | None = ...,
    *,
    domain: ArrayLike | None = ...,
    rtol: float | None = ...,
    num_threads: int | None = ...,
    max_regions: int = ...,
    max_memory: float | None = ...,
    tiles: int | str = ...,
    max_slow_work: float | None = ...,
) -> SliceResult: ...


def slice_2d(
    net: Network,
    origin: ArrayLike | Plane | list[Plane] | tuple[Plane, ...],
    basis: ArrayLike | None = None,
    bounds: Sequence[float] | None = (-1.0, 1.0, -1.0, 1.0),
    *,
    domain: ArrayLike | None = None,
    rtol: float | None = None,
    num_threads: int | None = None,
    max_regions: int = DEFAULT_MAX_REGIONS,
    max_memory: float | None = None,
    tiles: int | str = "auto",
    max_slow_work: float | None = DEFAULT_MAX_SLOW_WORK,
) -> SliceResult | list[SliceResult]:
    """The exact partition of a 2D slice of input space into activation regions.

    Parameters
    ----------
    net
        The network.
    origin, basis
        The plane ``x(s, t) = origin + s * basis[0] + t * basis[1]`` (``origin`` ``(d,)``,
        ``basis`` ``(2, d)``), or a :class:`Plane` as ``origin`` (``basis`` omitted), or a
        list of Planes: a batch, processed in one call across threads.
    bounds
        ``(s0, s1, t0, t1)``: the box of the plane to partition.
    domain
        Instead of ``bounds``, any convex polygon ``(m, 2)`` of the ``(s, t)`` plane.
    rtol
        ``None`` (default): certified sign decisions (docs/numerics.md §6). Every value
        at a vertex carries a rigorous bound on its error against the exact value at the
        vertex's exact point; a sign is taken only where ``|z_j|`` exceeds it. A value
        within its bound goes to the slow path: the sign of the neuron at the point where
        the vertex's two defining lines meet, from double-double passes (then exact
        ones) under the face's pattern (:attr:`SliceResult.slow_decisions`; exact zeros
        in :attr:`SliceResult.exact_coincidences`). Past its budget (``max_slow_work``)
        a value takes the old zero tolerance's decision (``rtol=lrcore.DEFAULT_RTOL``: 0
        within it, else the float64 sign) and is counted in
        :attr:`SliceResult.uncertified_decisions`, with a
        :class:`lrcore.CertificationWarning`. A number ``0 <= rtol < 1`` opts in to the
        old zero tolerance, as in :func:`lrcore.count_1d`: a vertex where ``|z_j| <= rtol
        * (||W_j||_2 ||h||_2 + |b_j|)`` lies on neuron j's line, so lines closer than
        that share vertices and leave no sliver face (``lrcore.DEFAULT_RTOL`` was the
        default). ``result.verify()`` checks a result against the network, with the same
        bound for a certified result.
    num_threads
        Worker threads (default: all CPUs this process may use). They share the slices
        of a batch and the tiles of each slice.
    max_regions
        Stop with :class:`lrcore.LimitExceeded` when a slice exceeds this many regions.
    max_memory
        Bytes the call may use for one slice's partition and working data (default: 80% of the
        memory available when it starts). The core checks its estimate as it goes and
        stops with :class:`lrcore.LimitExceeded` past it, instead of being killed.
    tiles
        Cut the domain into this many tiles along ``s``, built in parallel and merged
        into one partition (the same up to order and last-bit rounding); ``"auto"``
        (default) sizes them from exact 1D counts: see ``lrcore._tiling``, docs/design.md.
    max_slow_work
        Certified: the slow path's work in each tile is at most this many times the
        tile's float64 work (at least 2^24 multiply-adds; default
        ``lrcore.DEFAULT_MAX_SLOW_WORK``, as :func:`lrcore.count_1d`'s; ``None``: no
        budget, every sign certified however long it takes; ``0``: no passes, only the
        exact zeros by structure).

    Raises
    ------
    ValueError, TypeError
        A bad argument (the message names it), NaN/Inf, collinear or zero directions, a
        non-convex domain, or values that could exceed 1e150 on the domain.
    lrcore.LimitExceeded
        More than ``max_regions`` faces in a slice.

    Warns
    -----
    lrcore.CertificationWarning
        Certified: some values were within the filter's error bound, the slow path's
        budget did not reach them, and they took the zero tolerance's decision
        (:attr:`SliceResult.uncertified_decisions`).
    lrcore.RoundingWarning
        Crossings lay closer to a vertex than float64 plane coordinates resolve (64 ulps
        of the domain's largest coordinate) and were placed at it, so slivers narrower
        than that are not counted (:attr:`SliceResult.merged_crossings`).

    Examples
    --------
    >>> import numpy as np, lrcore
    >>> net = lrcore.Network.random([2, 16, 16, 1], seed=0)
    >>> s = lrcore.slice_2d(net, np.zeros(2), np.eye(2), bounds=(-1, 1, -1, 1))
    >>> bool(np.isclose(s.areas.sum(), 4.0))
    True
    >>> plane = lrcore.Plane.through(*np.random.default_rng(0).standard_normal((3, 2)))
    >>> s = lrcore.slice_2d(net, plane, bounds=(0, 1, 0, 1))
    """
    if not isinstance(net, Network):
        msg = f"net: expected an lrcore.Network, got {type(net).__name__}"
        raise TypeError(msg)
    is_batch = isinstance(origin, (list, tuple)) and all(isinstance(p, Plane) for p in origin)
    if is_batch:
        if basis is not None:
            raise ValueError("basis: must be omitted when origin is a list of Planes")
        planes: list[Plane] = list(origin)  # type: ignore[arg-type]
    elif isinstance(origin, Plane):
        if basis is not None:
            raise ValueError("basis: must be omitted when origin is a Plane")
        planes = [origin]
    else:
        if basis is None:
            raise ValueError("basis: expected a (2, d) array (or pass a Plane as origin)")
        planes = [Plane(origin, basis)]  # type: ignore[arg-type]
    for i, plane in enumerate(planes):
        if plane.input_dim != net.input_dim:
            where = f"origin[{i}]" if is_batch else "origin"
            msg = (
                f"{where}: the plane lives in dimension {plane.input_dim} but the network's "
                f"input dimension is {net.input_dim}"
            )
            raise ValueError(msg)
    poly = _as_domain(bounds, domain)
    checked, threads, max_regions = check_run_options(
        0.0 if rtol is None else rtol, num_threads, max_regions, "max_regions"
    )
    core_rtol = None if rtol is None else checked
    reach = float(np.abs(poly).max())
    limit = uniform_input_limit(net)
    for i, plane in enumerate(planes):
        origin_peak, basis_peak = plane.extent()
        if not origin_peak + reach * basis_peak <= limit:  # the layer by layer bound
            with np.errstate(over="ignore"):
                bound = np.abs(plane.origin) + reach * np.abs(plane.basis).sum(axis=0)
            check_magnitudes(net, bound, f"origin[{i}]" if is_batch else "origin")
    # Threads a slice's tiles can use beside the other slices of the call.
    spare = max(1, threads // max(1, len(planes)))
    # The tiles' probes count with the zero tolerance (they only size the tiles).
    probe_rtol = DEFAULT_RTOL if core_rtol is None else core_rtol
    cuts = [tile_cuts(tiles, net, p, poly, probe_rtol, threads, spare) for p in planes]
    arrays = core_slice_2d(
        net=net,
        origins=[p.origin for p in planes],
        bases=[p.basis for p in planes],
        domains=[poly] * len(planes),
        cuts=cuts,
        rtol=core_rtol,
        num_threads=threads,
        max_regions=max_regions,
        max_memory=check_max_memory(max_memory),
        max_slow_work=check_max_slow_work(max_slow_work),
    )
    pooled: list[SlicePooling | None] = [None] * len(planes)
    if net.pooling is not None:
        for i, plane in enumerate(planes):
            arrays[i], pooled[i] = merge_slice(
                arrays[i], net.pooling, net.neuron_offsets(), _neurons_on(net, plane)
            )
    results = [
        SliceResult(a, p, poly, net.num_neurons, network=net, rtol=core_rtol, pooling=q)
        for a, p, q in zip(arrays, planes, pooled)
    ]
    merged = [(i, r.merged_crossings) for i, r in enumerate(results) if r.merged_crossings]
    if merged:
        where = ", ".join(f"slice {i}: {n}" for i, n in merged) if is_batch else str(merged[0][1])
        msg = (
            f"slice_2d: crossings closer to a vertex than float64 plane coordinates resolve "
            f"({PLANE_ULPS:g} ulps of the domain's largest coordinate, "
            f"{PLANE_ULPS * np.finfo(np.float64).eps * reach:.3g}) "
            f"were placed at it ({where}); regions narrower than that are not counted. "
            "See SliceResult.merged_crossings and the README's 'Tolerance and exactness'."
        )
        warnings.warn(msg, RoundingWarning, stacklevel=2)
    undecided = [(i, r.uncertified_decisions) for i, r in enumerate(results)]
    undecided = [(i, n) for i, n in undecided if n]
    if undecided:
        where = (
            ", ".join(f"slice {i}: {n}" for i, n in undecided)
            if is_batch
            else str(undecided[0][1])
        )
        msg = (
            f"slice_2d: {where} values lay within the certified filter's error bound and "
            "the slow path could not decide them (its work budget spent); their signs took "
            "the zero tolerance's decision (rtol=lrcore.DEFAULT_RTOL) and are not "
            "certified. See SliceResult.uncertified_decisions and docs/numerics.md §6."
        )
        warnings.warn(msg, CertificationWarning, stacklevel=2)
    return results if is_batch else results[0]


#: Plane coordinates closer than this many ulps of the domain's largest coordinate are
#: one point in the core (a crossing that close to a vertex is placed at it).
PLANE_ULPS: float = _core.PLANE_ULPS
