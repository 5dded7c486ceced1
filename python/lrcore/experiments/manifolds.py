"""Manifolds with exact (or carefully estimated) curvature, and trajectories on them.

Three families:

- **curves**: plane curves parametrised by arc length (:class:`Circle`, :class:`Ellipse`,
  :class:`ProfileCurve` built from a prescribed curvature profile, :class:`Polygon` with
  corners) and a space curve (:class:`Helix`), optionally embedded isometrically in a
  higher dimension by a random orthogonal map (:class:`Embedded`);
- **surfaces** in R³ (:class:`Sphere`, :class:`Torus`, :class:`Ellipsoid`,
  :class:`Saddle`) with Gaussian and mean curvature;
- **images**: the rotation orbit of a scikit-learn digit (:class:`ImageOrbit`), whose
  curvature is estimated by a discrete formula on a fine sampling
  (:func:`menger_curvature`).

Every manifold gives training samples with a *target coordinate* in [0, 1] (arc length
over length for curves, a height or angle for surfaces, the angle for orbits) and
trajectories: fine polylines on the manifold with the curvature at their vertices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lrcore._optional import optional_import
from lrcore._validation import check_positive as _positive

__all__ = [
    "Circle",
    "Curve",
    "Ellipse",
    "Ellipsoid",
    "Embedded",
    "Helix",
    "ImageOrbit",
    "Manifold",
    "Polygon",
    "ProfileCurve",
    "Saddle",
    "Sphere",
    "Surface",
    "Torus",
    "Trajectory",
    "estimator_errors",
    "finite_difference_curvature",
    "menger_curvature",
    "outward_normals",
    "polyline_arc_length",
    "random_orthogonal",
    "window_means",
]

FloatArray = NDArray[np.float64]


# -- trajectories ---------------------------------------------------------------------
@dataclass
class Trajectory:
    """A fine polyline in input space with curvature measures at its vertices.

    Attributes
    ----------
    name
        Identifies the trajectory within its manifold, e.g. ``"curve"`` or ``"u@v=0.79"``.
    kind
        ``"on"`` (on the manifold), ``"offset"`` (moved off it along a normal) or ``"line"``
        (a random straight segment, a control without curvature).
    points
        ``(n, d)`` vertices.
    closed
        Whether the last vertex joins the first.
    coordinate
        ``(n,)`` target coordinate in [0, 1] at each vertex (NaN for lines).
    measures
        Curvature measure name -> ``(n,)`` non-negative values at the vertices. A corner
        of turning angle α appears as a spike whose trapezoid integral is exactly α.
    normals
        ``(n, d)`` unit normals used to build offset controls (None: estimated).
    """

    name: str
    kind: str
    points: FloatArray
    closed: bool
    coordinate: FloatArray
    measures: dict[str, FloatArray] = field(default_factory=dict)
    normals: FloatArray | None = None

    @property
    def arc(self) -> FloatArray:
        """Arc length of the polyline at each vertex."""
        return polyline_arc_length(self.points)

    @property
    def length(self) -> float:
        """Length of the polyline (including the closing segment when closed)."""
        arc = self.arc
        closing = np.linalg.norm(self.points[0] - self.points[-1]) if self.closed else 0.0
        return float(arc[-1] + closing)

    def offset(self, distance: float) -> Trajectory:
        """The trajectory moved by ``distance`` along its (outward) normals."""
        normals = self.normals if self.normals is not None else outward_normals(self.points)
        return replace(
            self, kind="offset", points=self.points + distance * normals, normals=normals
        )


def polyline_arc_length(points: FloatArray) -> FloatArray:
    """Cumulative arc length at each vertex of an ``(n, d)`` polyline (starts at 0)."""
    seg = np.linalg.norm(np.diff(points, axis=0), axis=1)
    return np.concatenate([[0.0], np.cumsum(seg)])


def outward_normals(points: FloatArray) -> FloatArray:
    """Unit normals pointing away from the centroid, orthogonal to the local tangent.

    For a convex closed plane curve this is the outward normal; for other curves it is a
    well-defined off-manifold direction. The tangent is the central difference.
    """
    tangent = np.roll(points, -1, axis=0) - np.roll(points, 1, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-300)
    radial = points - points.mean(axis=0)
    normal = radial - np.sum(radial * tangent, axis=1, keepdims=True) * tangent
    norm = np.linalg.norm(normal, axis=1, keepdims=True)
    out: FloatArray = normal / np.maximum(norm, 1e-300)
    return out


def window_means(
    arc: FloatArray,
    values: FloatArray,
    closed: bool,
    length: float,
    centers: FloatArray,
    window: float,
) -> FloatArray:
    """Mean of a vertex quantity over arc-length windows (trapezoid rule).

    Windows wrap around for closed polylines (of total ``length``); on open ones they are
    clipped to ``[0, arc[-1]]``.
    """
    x = arc
    v = values
    if closed:
        x = np.append(arc, length)
        v = np.append(values, values[0])
    cumulative = np.concatenate([[0.0], np.cumsum(np.diff(x) * (v[1:] + v[:-1]) / 2)])
    lo = centers - window / 2
    hi = centers + window / 2
    if closed:
        total = cumulative[-1]

        def integral(s: FloatArray) -> FloatArray:
            turns = np.floor(s / length)
            out: FloatArray = np.interp(s - turns * length, x, cumulative) + turns * total
            return out

        return (integral(hi) - integral(lo)) / window
    lo = np.clip(lo, 0.0, x[-1])
    hi = np.clip(hi, 0.0, x[-1])
    width = np.where(hi > lo, hi - lo, np.nan)
    out: FloatArray = (np.interp(hi, x, cumulative) - np.interp(lo, x, cumulative)) / width
    return out


# -- discrete curvature estimators ------------------------------------------------------
def menger_curvature(points: ArrayLike, closed: bool = True) -> FloatArray:
    """Discrete curvature at each vertex: the inverse radius of the circle through it and
    its two neighbours (Menger curvature), in any dimension.

    ``4 * area / (|a| |b| |c|)`` of the triangle of consecutive vertices; the triangle's
    area comes from the Gram determinant, so this works in any dimension. It converges at
    second order in the spacing for smooth curves sampled by a smooth parameter. Open
    polylines copy the value of the nearest interior vertex to the two end vertices.

    Examples
    --------
    >>> t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    >>> k = menger_curvature(2 * np.c_[np.cos(t), np.sin(t)])
    >>> bool(np.allclose(k, 0.5))
    True
    """
    x = np.asarray(points, dtype=np.float64)
    prev, nxt = np.roll(x, 1, axis=0), np.roll(x, -1, axis=0)
    a, b = x - prev, nxt - x
    c = nxt - prev
    aa, bb, ab = (a * a).sum(1), (b * b).sum(1), (a * b).sum(1)
    area2 = np.sqrt(np.maximum(aa * bb - ab * ab, 0.0))  # twice the triangle's area
    denom = np.sqrt(aa * bb * (c * c).sum(1))
    kappa: FloatArray = 2 * area2 / np.maximum(denom, 1e-300)
    if not closed:
        kappa[0], kappa[-1] = kappa[1], kappa[-2]
    return kappa


def finite_difference_curvature(points: ArrayLike, closed: bool = True) -> FloatArray:
    """Curvature ``|x' ∧ x''| / |x'|^3`` from central differences in the sampling parameter.

    Assumes the vertices are evenly spaced in some smooth parameter (not necessarily arc
    length); second-order accurate. End vertices of open polylines copy their neighbours.
    """
    x = np.asarray(points, dtype=np.float64)
    prev, nxt = np.roll(x, 1, axis=0), np.roll(x, -1, axis=0)
    d1 = (nxt - prev) / 2
    d2 = nxt - 2 * x + prev
    n1 = (d1 * d1).sum(1)
    cross2 = np.maximum(n1 * (d2 * d2).sum(1) - (d1 * d2).sum(1) ** 2, 0.0)
    kappa: FloatArray = np.sqrt(cross2) / np.maximum(n1, 1e-300) ** 1.5
    if not closed:
        kappa[0], kappa[-1] = kappa[1], kappa[-2]
    return kappa


def estimator_errors(resolution: int) -> dict[str, float]:
    """Largest relative error of :func:`menger_curvature` at ``resolution`` vertices on
    analytic curves (an ellipse of axis ratio 0.4, a helix embedded in R^64, both sampled
    evenly in arc length), the same sampling density as the study's image orbits."""
    out = {}
    for name, curve in (
        ("ellipse", Ellipse(1.0, 0.4)),
        ("helix in R^64", Embedded(Helix(), 64, seed=0)),
    ):
        s = curve.positions(resolution)
        exact = curve.curvature(s)
        estimate = menger_curvature(curve.points(s), closed=curve.closed)
        inner = slice(None) if curve.closed else slice(1, -1)
        out[name] = float(np.max(np.abs(estimate[inner] - exact[inner]) / exact[inner]))
    return out


def random_orthogonal(dim: int, rank: int, seed: int) -> FloatArray:
    """A ``(dim, rank)`` matrix with orthonormal columns, from a seeded QR."""
    if dim < rank:
        msg = f"dim: the embedding dimension must be at least {rank}, got {dim}"
        raise ValueError(msg)
    rng = np.random.default_rng([seed, dim, rank])
    q, r = np.linalg.qr(rng.standard_normal((dim, rank)))
    out: FloatArray = q * np.sign(np.diag(r))
    return out


# -- the common interface ------------------------------------------------------------
class Manifold:
    """Base class: a manifold that gives training samples and trajectories."""

    family: str = ""
    name: str = ""
    ambient_dim: int = 0

    def params(self) -> dict[str, float]:
        """The manifold's parameters (for tables)."""
        return {}

    def sample(self, count: int, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
        """``count`` points uniform on the manifold and their target coordinates."""
        raise NotImplementedError

    def trajectories(self, resolution: int) -> list[Trajectory]:
        """Fine polylines on the manifold with ``resolution`` vertices each."""
        raise NotImplementedError

    def curvature_measures(self) -> tuple[str, ...]:
        """Names of the curvature measures its trajectories carry."""
        return ("curvature",)


# -- curves -----------------------------------------------------------------------------
class Curve(Manifold):
    """A curve parametrised by arc length ``s`` in ``[0, length]``."""

    family = "curves"
    length: float = 1.0
    closed: bool = True
    #: Corner positions (arc length) and their turning angles.
    corners: tuple[tuple[float, float], ...] = ()

    def points(self, s: ArrayLike) -> FloatArray:
        """Points at arc lengths ``s``: ``(n, ambient_dim)``."""
        raise NotImplementedError

    def curvature(self, s: ArrayLike) -> FloatArray:
        """Exact unsigned curvature at arc lengths ``s`` (0 on the sides of a corner)."""
        raise NotImplementedError

    def positions(self, resolution: int) -> FloatArray:
        """``resolution`` arc-length positions evenly spread (corners among them)."""
        if self.closed:
            return self.length * np.arange(resolution) / resolution
        out: FloatArray = np.linspace(0.0, self.length, resolution)
        return out

    def sample(self, count: int, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
        s = rng.uniform(0.0, self.length, size=count)
        return self.points(s), s / self.length

    def trajectories(self, resolution: int) -> list[Trajectory]:
        s = self.positions(resolution)
        points = self.points(s)
        kappa = self.curvature(s)
        if self.corners:
            spacing = polyline_arc_length(points)[1]
            for position, angle in self.corners:
                # A spike whose trapezoid integral is the corner's turning angle.
                index = int(np.argmin(np.abs(s - position)))
                kappa[index] += angle / spacing
        return [
            Trajectory("curve", "on", points, self.closed, s / self.length, {"curvature": kappa})
        ]


class Circle(Curve):
    """A circle of radius ``radius`` in the plane."""

    name = "circle"
    ambient_dim = 2

    def __init__(self, radius: float = 1.0) -> None:
        self.radius = _positive(radius, "radius")
        self.length = 2 * math.pi * self.radius

    def params(self) -> dict[str, float]:
        return {"radius": self.radius}

    def points(self, s: ArrayLike) -> FloatArray:
        angle = np.asarray(s, dtype=np.float64) / self.radius
        return self.radius * np.column_stack([np.cos(angle), np.sin(angle)])

    def curvature(self, s: ArrayLike) -> FloatArray:
        return np.full(np.shape(s), 1.0 / self.radius)


class Ellipse(Curve):
    """The ellipse ``(a sin φ, b cos φ)``, parametrised by arc length through the
    incomplete elliptic integral of the second kind (inverted by Newton's method)."""

    name = "ellipse"
    ambient_dim = 2

    def __init__(self, a: float = 1.0, b: float = 0.5) -> None:
        special = optional_import("scipy.special", "experiments")
        self.a = _positive(a, "a")
        self.b = _positive(b, "b")
        self._m = 1.0 - (self.b / self.a) ** 2
        self.length = float(4 * self.a * special.ellipe(self._m))

    def params(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b}

    def _speed(self, phi: FloatArray) -> FloatArray:
        out: FloatArray = np.hypot(self.a * np.cos(phi), self.b * np.sin(phi))
        return out

    def angle(self, s: ArrayLike) -> FloatArray:
        """The parameter φ at arc lengths ``s``."""
        special = optional_import("scipy.special", "experiments")
        target = np.asarray(s, dtype=np.float64)
        phi = 2 * math.pi * target / self.length
        for _ in range(50):
            step = (self.a * special.ellipeinc(phi, self._m) - target) / self._speed(phi)
            phi = phi - step
            if np.max(np.abs(step), initial=0.0) < 1e-15:
                break
        out: FloatArray = phi
        return out

    def points(self, s: ArrayLike) -> FloatArray:
        phi = self.angle(s)
        return np.column_stack([self.a * np.sin(phi), self.b * np.cos(phi)])

    def curvature(self, s: ArrayLike) -> FloatArray:
        phi = self.angle(s)
        out: FloatArray = self.a * self.b / self._speed(phi) ** 3
        return out


_PROFILES = ("constant", "piecewise", "sinusoidal")


class ProfileCurve(Curve):
    """A closed convex plane curve with the curvature profile
    ``κ(s) = (2π / L) (1 + amplitude g(k s / L))``, ``g`` a zero-mean 1-periodic function:
    0 (``"constant"``: a circle), a square wave (``"piecewise"``: arcs of two radii) or
    ``sin 2πx`` (``"sinusoidal"``).

    The tangent angle θ(s) is integrated in closed form and the position by 16-point
    Gauss-Legendre quadrature on cells that end at every jump of κ, so points are exact
    to rounding. ``symmetry = k >= 2`` makes the curve close.
    """

    name = "profile"
    ambient_dim = 2

    def __init__(
        self,
        profile: str = "sinusoidal",
        amplitude: float = 0.6,
        symmetry: int = 3,
        length: float = 2 * math.pi,
    ) -> None:
        if profile not in _PROFILES:
            msg = f"profile: expected one of {_PROFILES}, got {profile!r}"
            raise ValueError(msg)
        if not 0 <= amplitude < 1:
            msg = f"amplitude: expected 0 <= amplitude < 1 (a convex curve), got {amplitude}"
            raise ValueError(msg)
        if int(symmetry) < 2:
            msg = f"symmetry: expected an integer >= 2 (the curve must close), got {symmetry}"
            raise ValueError(msg)
        self.profile = profile
        self.name = f"profile-{profile}"
        self.amplitude = float(amplitude) if profile != "constant" else 0.0
        self.symmetry = int(symmetry)
        self.length = _positive(length, "length")
        # Cells end at every jump of the square wave: 2k jumps per turn.
        self._cells = 2 * self.symmetry * 64
        self._h = self.length / self._cells
        self._gl_x, self._gl_w = np.polynomial.legendre.leggauss(16)
        starts: FloatArray = np.arange(self._cells, dtype=np.float64) * self._h
        steps = self._integral(starts, starts + self._h)
        self._nodes = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])
        # Centre the curve on its centroid (as a wire), like the other curves.
        self._nodes -= self.points(self.length * np.arange(4096) / 4096).mean(axis=0)

    def params(self) -> dict[str, float]:
        return {"amplitude": self.amplitude, "symmetry": float(self.symmetry)}

    def _g(self, x: FloatArray) -> FloatArray:
        frac = np.mod(x, 1.0)
        if self.profile == "sinusoidal":
            out: FloatArray = np.sin(2 * math.pi * frac)
        elif self.profile == "piecewise":
            out = np.where(frac < 0.5, 1.0, -1.0)
        else:
            out = np.zeros_like(frac)
        return out

    def _g_integral(self, x: FloatArray) -> FloatArray:
        frac = np.mod(x, 1.0)
        if self.profile == "sinusoidal":
            out: FloatArray = (1 - np.cos(2 * math.pi * frac)) / (2 * math.pi)
        elif self.profile == "piecewise":
            out = np.where(frac < 0.5, frac, 1.0 - frac)
        else:
            out = np.zeros_like(frac)
        return out

    def tangent_angle(self, s: ArrayLike) -> FloatArray:
        """θ(s) = ∫₀ˢ κ, in closed form."""
        s_arr = np.asarray(s, dtype=np.float64)
        scale = self.length / self.symmetry
        g_int = scale * self._g_integral(self.symmetry * s_arr / self.length)
        out: FloatArray = 2 * math.pi / self.length * (s_arr + self.amplitude * g_int)
        return out

    def _integral(self, lo: FloatArray, hi: FloatArray) -> FloatArray:
        # ∫_lo^hi (cos θ, sin θ) ds by Gauss-Legendre; θ is smooth inside each cell.
        mid, half = (hi + lo) / 2, (hi - lo) / 2
        theta = self.tangent_angle(mid[:, None] + half[:, None] * self._gl_x[None, :])
        weights = half[:, None] * self._gl_w[None, :]
        return np.column_stack(
            [(weights * np.cos(theta)).sum(1), (weights * np.sin(theta)).sum(1)]
        )

    def points(self, s: ArrayLike) -> FloatArray:
        s_arr = np.mod(np.atleast_1d(np.asarray(s, dtype=np.float64)), self.length)
        cell = np.minimum((s_arr / self._h).astype(np.int64), self._cells - 1)
        start = cell * self._h
        out: FloatArray = self._nodes[cell] + self._integral(start, s_arr)
        return out

    def curvature(self, s: ArrayLike) -> FloatArray:
        s_arr = np.asarray(s, dtype=np.float64)
        g = self._g(self.symmetry * s_arr / self.length)
        out: FloatArray = 2 * math.pi / self.length * (1 + self.amplitude * g)
        return out


class Polygon(Curve):
    """A regular polygon with ``sides`` corners on a circle of radius ``radius``: zero
    curvature on the sides, a turning angle of 2π / sides at each corner."""

    name = "polygon"
    ambient_dim = 2

    def __init__(self, sides: int = 4, radius: float = 1.0) -> None:
        if int(sides) < 3:
            msg = f"sides: expected an integer >= 3, got {sides}"
            raise ValueError(msg)
        self.sides = int(sides)
        self.radius = _positive(radius, "radius")
        angles = 2 * math.pi * np.arange(self.sides + 1) / self.sides
        self._vertices = self.radius * np.column_stack([np.cos(angles), np.sin(angles)])
        self._side = 2 * self.radius * math.sin(math.pi / self.sides)
        self.length = self.sides * self._side
        self.corners = tuple((i * self._side, 2 * math.pi / self.sides) for i in range(self.sides))

    def params(self) -> dict[str, float]:
        return {"sides": float(self.sides), "radius": self.radius}

    def positions(self, resolution: int) -> FloatArray:
        # A multiple of the number of sides puts a vertex on every corner.
        per_side = max(1, -(-resolution // self.sides))
        return self.length * np.arange(per_side * self.sides) / (per_side * self.sides)

    def points(self, s: ArrayLike) -> FloatArray:
        s_arr = np.mod(np.asarray(s, dtype=np.float64), self.length)
        side = np.minimum((s_arr / self._side).astype(np.int64), self.sides - 1)
        frac = (s_arr - side * self._side) / self._side
        start, end = self._vertices[side], self._vertices[side + 1]
        out: FloatArray = start + frac[:, None] * (end - start)
        return out

    def curvature(self, s: ArrayLike) -> FloatArray:
        return np.zeros(np.shape(s))


class Helix(Curve):
    """The helix ``(r cos(s/c), r sin(s/c), h (s/c - π turns))``, ``c = sqrt(r² + h²)``,
    of ``turns`` turns: constant curvature ``r / c²`` (and torsion ``h / c²``)."""

    name = "helix"
    ambient_dim = 3
    closed = False

    def __init__(self, radius: float = 1.0, pitch: float = 0.2, turns: float = 2.0) -> None:
        self.radius = _positive(radius, "radius")
        self.pitch = _positive(pitch, "pitch")
        self.turns = _positive(turns, "turns")
        self._c = math.hypot(self.radius, self.pitch)
        self.length = 2 * math.pi * self.turns * self._c

    def params(self) -> dict[str, float]:
        return {"radius": self.radius, "pitch": self.pitch, "turns": self.turns}

    def points(self, s: ArrayLike) -> FloatArray:
        t = np.asarray(s, dtype=np.float64) / self._c
        height = self.pitch * (t - math.pi * self.turns)
        return np.column_stack([self.radius * np.cos(t), self.radius * np.sin(t), height])

    def curvature(self, s: ArrayLike) -> FloatArray:
        return np.full(np.shape(s), self.radius / self._c**2)


class Embedded(Curve):
    """A curve mapped isometrically into R^dim by a seeded random orthogonal map
    (arc length and curvature are unchanged)."""

    def __init__(self, curve: Curve, dim: int, seed: int = 0) -> None:
        self.curve = curve
        self.name = curve.name
        self.ambient_dim = int(dim)
        self.length = curve.length
        self.closed = curve.closed
        self.corners = curve.corners
        #: ``(dim, curve.ambient_dim)``: maps the curve's space into R^dim.
        self.basis = random_orthogonal(self.ambient_dim, curve.ambient_dim, seed)

    def params(self) -> dict[str, float]:
        return {**self.curve.params(), "dim": float(self.ambient_dim)}

    def positions(self, resolution: int) -> FloatArray:
        return self.curve.positions(resolution)

    def points(self, s: ArrayLike) -> FloatArray:
        out: FloatArray = self.curve.points(s) @ self.basis.T
        return out

    def curvature(self, s: ArrayLike) -> FloatArray:
        return self.curve.curvature(s)


# -- surfaces ---------------------------------------------------------------------------
class Surface(Manifold):
    """A parametrised surface ``x(u, v)`` in R³ with exact Gaussian and mean curvature.

    Trajectories are ``u``-coordinate curves at evenly spread ``v``; the target
    coordinate is a function of the point (:meth:`coordinate`), so targets are functions
    on the surface.
    """

    family = "surfaces"
    ambient_dim = 3
    u_range: tuple[float, float] = (0.0, 2 * math.pi)
    v_range: tuple[float, float] = (0.0, 2 * math.pi)
    u_closed = True
    v_closed = True

    def point(self, u: FloatArray, v: FloatArray) -> FloatArray:
        """Points ``(n, 3)`` at parameters ``(u, v)``."""
        raise NotImplementedError

    def gaussian(self, u: FloatArray, v: FloatArray) -> FloatArray:
        """Gaussian curvature K."""
        raise NotImplementedError

    def mean(self, u: FloatArray, v: FloatArray) -> FloatArray:
        """Mean curvature H (up to the normal's orientation)."""
        raise NotImplementedError

    def coordinate(self, u: FloatArray, v: FloatArray) -> FloatArray:
        """The target coordinate in [0, 1] (default: ``u`` over its range)."""
        lo, hi = self.u_range
        out: FloatArray = (u - lo) / (hi - lo)
        return out

    def curvature_measures(self) -> tuple[str, ...]:
        return ("gaussian", "mean")

    def normal(self, u: FloatArray, v: FloatArray, step: float = 1e-6) -> FloatArray:
        """Unit normals from the cross product of the tangents (central differences)."""
        xu = (self.point(u + step, v) - self.point(u - step, v)) / (2 * step)
        xv = (self.point(u, v + step) - self.point(u, v - step)) / (2 * step)
        n = np.cross(xu, xv)
        out: FloatArray = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-300)
        return out

    def area_element(self, u: FloatArray, v: FloatArray, step: float = 1e-6) -> FloatArray:
        """``sqrt(EG - F²)`` by central differences."""
        xu = (self.point(u + step, v) - self.point(u - step, v)) / (2 * step)
        xv = (self.point(u, v + step) - self.point(u, v - step)) / (2 * step)
        out: FloatArray = np.linalg.norm(np.cross(xu, xv), axis=1)
        return out

    def sample(self, count: int, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
        # Rejection sampling by the area element gives points uniform on the surface.
        (u0, u1), (v0, v1) = self.u_range, self.v_range
        grid_u, grid_v = np.meshgrid(np.linspace(u0, u1, 65), np.linspace(v0, v1, 65))
        bound = 1.05 * float(self.area_element(grid_u.ravel(), grid_v.ravel()).max())
        us: list[FloatArray] = []
        vs: list[FloatArray] = []
        have = 0
        while have < count:
            u = rng.uniform(u0, u1, size=2 * count)
            v = rng.uniform(v0, v1, size=2 * count)
            keep = rng.uniform(0.0, bound, size=2 * count) < self.area_element(u, v)
            us.append(u[keep])
            vs.append(v[keep])
            have += int(keep.sum())
        u_all = np.concatenate(us)[:count]
        v_all = np.concatenate(vs)[:count]
        return self.point(u_all, v_all), self.coordinate(u_all, v_all)

    def trajectories(self, resolution: int, count: int = 4) -> list[Trajectory]:
        (u0, u1), (v0, v1) = self.u_range, self.v_range
        if self.u_closed:
            u = u0 + (u1 - u0) * np.arange(resolution) / resolution
        else:
            u = np.linspace(u0, u1, resolution)
        if self.v_closed:
            v_values = v0 + (v1 - v0) * (np.arange(count) + 0.5) / count
        else:
            v_values = np.linspace(v0, v1, count + 2)[1:-1]
        out = []
        for v_value in v_values:
            v = np.full_like(u, v_value)
            out.append(
                Trajectory(
                    f"u@v={v_value:.2f}",
                    "on",
                    self.point(u, v),
                    self.u_closed,
                    self.coordinate(u, v),
                    {
                        "gaussian": np.abs(self.gaussian(u, v)),
                        "mean": np.abs(self.mean(u, v)),
                    },
                    self.normal(u, v),
                )
            )
        return out


class Sphere(Surface):
    """The sphere of radius ``radius``; ``u``-curves are great circles (geodesics)
    through the poles, and the target coordinate is the normalised height."""

    name = "sphere"
    v_range = (0.0, math.pi)
    v_closed = False

    def __init__(self, radius: float = 1.0) -> None:
        self.radius = _positive(radius, "radius")

    def params(self) -> dict[str, float]:
        return {"radius": self.radius}

    def point(self, u: FloatArray, v: FloatArray) -> FloatArray:
        return self.radius * np.column_stack(
            [np.sin(u) * np.cos(v), np.sin(u) * np.sin(v), np.cos(u)]
        )

    def gaussian(self, u: FloatArray, v: FloatArray) -> FloatArray:
        return np.full(np.shape(u), 1.0 / self.radius**2)

    def mean(self, u: FloatArray, v: FloatArray) -> FloatArray:
        return np.full(np.shape(u), 1.0 / self.radius)

    def coordinate(self, u: FloatArray, v: FloatArray) -> FloatArray:
        out: FloatArray = (1 - np.cos(u)) / 2
        return out


class Torus(Surface):
    """The torus of radii ``major > minor``; ``u`` runs around the tube, so the
    ``u``-curves cross from positive (outside) to negative (inside) Gaussian curvature."""

    name = "torus"

    def __init__(self, major: float = 1.0, minor: float = 0.5) -> None:
        self.major = _positive(major, "major")
        self.minor = _positive(minor, "minor")
        if self.minor >= self.major:
            msg = f"minor: expected minor < major ({self.major}), got {self.minor}"
            raise ValueError(msg)

    def params(self) -> dict[str, float]:
        return {"major": self.major, "minor": self.minor}

    def point(self, u: FloatArray, v: FloatArray) -> FloatArray:
        ring = self.major + self.minor * np.cos(u)
        return np.column_stack([ring * np.cos(v), ring * np.sin(v), self.minor * np.sin(u)])

    def gaussian(self, u: FloatArray, v: FloatArray) -> FloatArray:
        out: FloatArray = np.cos(u) / (self.minor * (self.major + self.minor * np.cos(u)))
        return out

    def mean(self, u: FloatArray, v: FloatArray) -> FloatArray:
        ring = self.major + self.minor * np.cos(u)
        out: FloatArray = (self.major + 2 * self.minor * np.cos(u)) / (2 * self.minor * ring)
        return out


class Ellipsoid(Surface):
    """The ellipsoid with semi-axes ``(a, b, c)``; ``u``-curves are meridian ellipses and
    the target coordinate is the normalised height."""

    name = "ellipsoid"
    v_range = (0.0, math.pi)
    v_closed = False

    def __init__(self, a: float = 1.2, b: float = 0.8, c: float = 0.5) -> None:
        self.a, self.b, self.c = (_positive(x, n) for x, n in ((a, "a"), (b, "b"), (c, "c")))

    def params(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b, "c": self.c}

    def point(self, u: FloatArray, v: FloatArray) -> FloatArray:
        return np.column_stack(
            [self.a * np.sin(u) * np.cos(v), self.b * np.sin(u) * np.sin(v), self.c * np.cos(u)]
        )

    def _gradient_norm2(self, u: FloatArray, v: FloatArray) -> FloatArray:
        x, y, z = self.point(u, v).T
        out: FloatArray = x**2 / self.a**4 + y**2 / self.b**4 + z**2 / self.c**4
        return out

    def gaussian(self, u: FloatArray, v: FloatArray) -> FloatArray:
        abc2 = (self.a * self.b * self.c) ** 2
        out: FloatArray = 1.0 / (abc2 * self._gradient_norm2(u, v) ** 2)
        return out

    def mean(self, u: FloatArray, v: FloatArray) -> FloatArray:
        x, y, z = self.point(u, v).T
        numerator = self.a**2 + self.b**2 + self.c**2 - (x**2 + y**2 + z**2)
        abc2 = (self.a * self.b * self.c) ** 2
        out: FloatArray = numerator / (2 * abc2 * self._gradient_norm2(u, v) ** 1.5)
        return out

    def coordinate(self, u: FloatArray, v: FloatArray) -> FloatArray:
        out: FloatArray = (1 - np.cos(u)) / 2
        return out


class Saddle(Surface):
    """The saddle ``z = a (x² - y²) / 2`` over ``[-1, 1]²`` (``u = x``, ``v = y``): negative
    Gaussian curvature, strongest at the centre."""

    name = "saddle"
    u_range = (-1.0, 1.0)
    v_range = (-1.0, 1.0)
    u_closed = False
    v_closed = False

    def __init__(self, a: float = 1.0) -> None:
        self.a = _positive(a, "a")

    def params(self) -> dict[str, float]:
        return {"a": self.a}

    def point(self, u: FloatArray, v: FloatArray) -> FloatArray:
        return np.column_stack([u, v, self.a * (u**2 - v**2) / 2])

    def gaussian(self, u: FloatArray, v: FloatArray) -> FloatArray:
        w = 1 + self.a**2 * (u**2 + v**2)
        out: FloatArray = -(self.a**2) / w**2
        return out

    def mean(self, u: FloatArray, v: FloatArray) -> FloatArray:
        w = 1 + self.a**2 * (u**2 + v**2)
        out: FloatArray = self.a**3 * (v**2 - u**2) / (2 * w**1.5)
        return out


# -- image orbits -----------------------------------------------------------------------
class ImageOrbit(Manifold):
    """The orbit of an 8×8 scikit-learn digit under rotation about the image centre (a
    closed curve), or under horizontal translation by up to ``shift`` pixels either way
    (an open one).

    The image is a cubic B-spline (coefficients from the pixels, zero outside), so the
    orbit is a smooth curve in R^64. Pixel values are scaled to [0, 1]. Curvature is
    estimated by :func:`menger_curvature` on the fine sampling that is also the
    trajectory; the target coordinate is θ / 2π (or the shift, scaled to [0, 1]).
    """

    family = "images"
    ambient_dim = 64

    def __init__(self, digit: int = 0, motion: str = "rotation", shift: float = 2.0) -> None:
        datasets = optional_import("sklearn.datasets", "experiments")
        ndimage = optional_import("scipy.ndimage", "experiments")
        images = datasets.load_digits().images
        if not 0 <= int(digit) < len(images):
            msg = f"digit: expected an index in [0, {len(images)}), got {digit}"
            raise ValueError(msg)
        if motion not in ("rotation", "translation"):
            msg = f"motion: expected 'rotation' or 'translation', got {motion!r}"
            raise ValueError(msg)
        pad = 4
        if not 0 < float(shift) <= pad:
            msg = f"shift: expected a number of pixels in (0, {pad}], got {shift}"
            raise ValueError(msg)
        self.digit = int(digit)
        self.motion = motion
        self.shift = float(shift)
        self.closed = motion == "rotation"
        self.name = f"digit-{self.digit}-{motion}"
        padded = np.pad(images[self.digit] / 16.0, pad)
        self._pad = pad
        self._coefficients = ndimage.spline_filter(padded, order=3, mode="constant")
        grid = np.arange(8, dtype=np.float64) - 3.5
        self._grid = np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)

    def params(self) -> dict[str, float]:
        out = {"digit": float(self.digit)}
        if self.motion == "translation":
            out["shift"] = self.shift
        return out

    def _image_at(self, rows: FloatArray, cols: FloatArray) -> FloatArray:
        # The spline image sampled at (row, col) offsets from the centre, one image a row.
        ndimage = optional_import("scipy.ndimage", "experiments")
        centre = 3.5 + self._pad
        coords = np.stack([rows.ravel() + centre, cols.ravel() + centre])
        values = ndimage.map_coordinates(
            self._coefficients, coords, order=3, prefilter=False, mode="constant"
        )
        out: FloatArray = values.reshape(rows.shape[0], 64)
        return out

    def points_at(self, angles: ArrayLike) -> FloatArray:
        """Rotated images ``(n, 64)`` at angles ``angles`` (radians)."""
        theta = np.atleast_1d(np.asarray(angles, dtype=np.float64))
        cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
        # The rotated image at pixel p is the original at R(-θ) p.
        rows = cos * self._grid[None, :, 0] + sin * self._grid[None, :, 1]
        cols = -sin * self._grid[None, :, 0] + cos * self._grid[None, :, 1]
        return self._image_at(rows, cols)

    def shifted(self, shifts: ArrayLike) -> FloatArray:
        """Images ``(n, 64)`` moved right by ``shifts`` pixels."""
        tau = np.atleast_1d(np.asarray(shifts, dtype=np.float64))[:, None]
        rows = np.broadcast_to(self._grid[None, :, 0], (tau.shape[0], 64))
        return self._image_at(rows, self._grid[None, :, 1] - tau)

    def _along(self, coordinate: FloatArray) -> FloatArray:
        if self.motion == "rotation":
            return self.points_at(2 * math.pi * coordinate)
        return self.shifted(self.shift * (2 * coordinate - 1))

    def sample(self, count: int, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
        coordinate = rng.uniform(0.0, 1.0, size=count)
        return self._along(coordinate), coordinate

    def trajectories(self, resolution: int) -> list[Trajectory]:
        if self.closed:
            coordinate = np.arange(resolution) / resolution
        else:
            coordinate = np.linspace(0.0, 1.0, resolution)
        points = self._along(coordinate)
        kappa = menger_curvature(points, closed=self.closed)
        return [
            Trajectory(self.motion, "on", points, self.closed, coordinate, {"curvature": kappa})
        ]
