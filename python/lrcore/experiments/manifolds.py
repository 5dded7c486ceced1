"""Manifolds with exact curvature, and trajectories on them.

Three families:

- **curves**: plane curves parametrised by arc length (:class:`Circle`, :class:`Ellipse`,
  :class:`ProfileCurve` built from a prescribed curvature profile, :class:`Polygon` with
  corners) and a space curve (:class:`Helix`), optionally embedded isometrically in a
  higher dimension by a random orthogonal map (:class:`Embedded`);
- **surfaces** in R³ (:class:`Sphere`, :class:`Torus`, :class:`Ellipsoid`,
  :class:`Saddle`) with analytic derivatives: outward normals, Gaussian and mean
  curvature, and the normal and geodesic curvature of the coordinate curves;
- **images**: the rotation (or translation) orbit of a scikit-learn digit
  (:class:`ImageOrbit`) through a cubic spline interpolant of the image, whose curvature
  comes from the interpolant's analytic derivatives.

Every manifold gives training samples with a *chart coordinate* in [0, 1] (arc length
over length for curves, a height or angle for surfaces, the angle or shift for orbits)
and trajectories: fine polylines on the manifold with the curvature at their vertices.
A :class:`RigidMotion` places a manifold relative to a network's initialisation.
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
    "RigidMotion",
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
        Identifies the trajectory within its manifold, e.g. ``"curve"``, ``"u0"`` (the
        first u-coordinate curve of a surface) or ``"orbit"``.
    kind
        ``"on"`` (on the manifold), ``"offset"`` (moved off it along its normals) or
        ``"line"`` (a random straight segment, a control without curvature).
    points
        ``(n, d)`` vertices.
    closed
        Whether the last vertex joins the first.
    coordinate
        ``(n,)`` chart coordinate in [0, 1] at each vertex (NaN for lines). Offsets keep
        the coordinate of the manifold point they come from.
    measures
        Curvature measure name -> ``(n,)`` non-negative values at the vertices. A corner
        of turning angle α appears as a spike whose trapezoid integral is exactly α.
    normals
        ``(n, d)`` unit normals (outward) used to build offsets (None: estimated).
    side
        ``+1`` for an outward offset, ``-1`` for an inward one, 0 on the manifold and for
        lines.
    direction
        ``"u"`` or ``"v"`` for the coordinate curves of a surface, ``""`` otherwise.

    Examples
    --------
    >>> on = Circle(1.0).trajectories(64)[0]
    >>> inside = on.offset(-0.25)
    >>> (inside.kind, inside.side, round(float(np.linalg.norm(inside.points[0])), 6))
    ('offset', -1, 0.75)
    """

    name: str
    kind: str
    points: FloatArray
    closed: bool
    coordinate: FloatArray
    measures: dict[str, FloatArray] = field(default_factory=dict)
    normals: FloatArray | None = None
    side: int = 0
    direction: str = ""

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
        """The trajectory moved by ``distance`` along its outward normals: outward for a
        positive distance (``side`` +1), inward for a negative one (``side`` -1)."""
        if not (math.isfinite(distance) and distance != 0):
            msg = f"distance: expected a non-zero finite distance, got {distance}"
            raise ValueError(msg)
        normals = self.normals if self.normals is not None else outward_normals(self.points)
        return replace(
            self,
            kind="offset",
            points=self.points + distance * normals,
            normals=normals,
            side=1 if distance > 0 else -1,
        )

    def moved(self, motion: RigidMotion) -> Trajectory:
        """The trajectory under a rigid motion (its normals turn with it)."""
        normals = None if self.normals is None else motion.turn(self.normals)
        return replace(self, points=motion(self.points), normals=normals)


@dataclass(frozen=True)
class RigidMotion:
    """The rigid motion ``x -> rotation @ (x - centre) + translation``.

    :meth:`random` draws one that places a manifold at a random pose relative to a
    network's initialisation: a Haar-random rotation about the data's centroid, and the
    centroid moved to a random point at a distance uniform in ``[0, scale * radius]``
    from the origin, in a uniform direction. (The hyperplanes of a freshly initialised
    MLP crowd around the origin, so without the motion the distance from the origin would
    be a fixed function of the position on the manifold.)

    Examples
    --------
    >>> motion = RigidMotion.random(np.zeros(2), 1.0, 1.0, np.random.default_rng(0))
    >>> x = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> moved = motion(x)
    >>> bool(np.isclose(np.linalg.norm(moved[0] - moved[1]), np.linalg.norm(x[0] - x[1])))
    True
    """

    rotation: FloatArray
    centre: FloatArray
    translation: FloatArray

    @classmethod
    def identity(cls, dim: int) -> RigidMotion:
        """The motion that moves nothing."""
        return cls(np.eye(dim), np.zeros(dim), np.zeros(dim))

    @classmethod
    def random(
        cls, centre: ArrayLike, radius: float, scale: float, rng: np.random.Generator
    ) -> RigidMotion:
        """A random rotation about ``centre`` and a translation of the centre to a random
        point within ``scale * radius`` of the origin (``scale`` 0: onto the origin)."""
        stats = optional_import("scipy.stats", "experiments")
        c = np.asarray(centre, dtype=np.float64).ravel()
        if not (math.isfinite(scale) and scale >= 0):
            msg = f"scale: expected a finite number >= 0, got {scale}"
            raise ValueError(msg)
        dim = c.size
        rotation = np.asarray(stats.special_ortho_group.rvs(dim, random_state=rng))
        direction = rng.standard_normal(dim)
        direction /= np.linalg.norm(direction)
        distance = rng.uniform(0.0, 1.0) * scale * _positive(radius, "radius")
        return cls(rotation.reshape(dim, dim), c, distance * direction)

    def __call__(self, points: ArrayLike) -> FloatArray:
        """Moved points ``(n, d)``."""
        x = np.asarray(points, dtype=np.float64)
        out: FloatArray = (x - self.centre) @ self.rotation.T + self.translation
        return out

    def turn(self, vectors: ArrayLike) -> FloatArray:
        """Moved direction vectors ``(n, d)`` (rotated only)."""
        out: FloatArray = np.asarray(vectors, dtype=np.float64) @ self.rotation.T
        return out


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
    """Base class: a manifold that gives training samples and trajectories.

    ``coordinate_closed`` says whether the chart coordinate wraps around (a closed curve,
    the angle of an orbit) or not (a height, a shift), which decides how a target's jump
    positions are drawn.
    """

    family: str = ""
    name: str = ""
    ambient_dim: int = 0
    coordinate_closed: bool = True
    #: Periods per turn of the chart coordinate that arc-arm sinusoids are drawn from.
    arc_frequencies: tuple[int, ...] = (3, 4, 5)

    def params(self) -> dict[str, float]:
        """The manifold's parameters (for tables)."""
        return {}

    @property
    def constant_curvature(self) -> bool:
        """Whether its curvature is the same everywhere (no within-manifold contrast)."""
        return False

    @property
    def curvature_symmetry(self) -> int:
        """The order of the symmetry of its curvature along the chart coordinate: the
        curvature repeats ``k`` times per turn (0: constant, 1: no symmetry). Target
        frequencies are chosen to share no factor with it, so that a target does not
        repeat with the curvature. Members of a dose-response series share their
        series' symmetry (its circle too), so they draw their targets alike."""
        return 0 if self.constant_curvature else 1

    def contrast(self) -> tuple[str, float] | None:
        """The dose-response parameter it varies (name, value), or None outside a series."""
        return None

    def sample(self, count: int, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
        """``count`` points uniform on the manifold and their chart coordinates."""
        raise NotImplementedError

    def trajectories(self, resolution: int) -> list[Trajectory]:
        """Fine polylines on the manifold with ``resolution`` vertices each."""
        raise NotImplementedError


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

    @property
    def constant_curvature(self) -> bool:
        return True

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

    @property
    def constant_curvature(self) -> bool:
        return self.a == self.b

    @property
    def curvature_symmetry(self) -> int:
        # 2 for every ellipse, the circle too: all members of the axis-ratio series draw
        # their targets alike.
        return 2

    def contrast(self) -> tuple[str, float] | None:
        """``("axis_ratio", short / long axis)``: 1 is a circle."""
        return ("axis_ratio", min(self.a, self.b) / max(self.a, self.b))

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

    @property
    def constant_curvature(self) -> bool:
        return self.amplitude == 0

    @property
    def curvature_symmetry(self) -> int:
        # ``symmetry`` even at amplitude 0 (a circle): all members of the amplitude
        # series draw their targets alike.
        return self.symmetry

    def contrast(self) -> tuple[str, float] | None:
        """``("amplitude", amplitude)`` for the sinusoidal profiles (0 is a circle)."""
        return ("amplitude", self.amplitude) if self.profile == "sinusoidal" else None

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

    @property
    def curvature_symmetry(self) -> int:
        return self.sides

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
    coordinate_closed = False

    def __init__(self, radius: float = 1.0, pitch: float = 0.2, turns: float = 2.0) -> None:
        self.radius = _positive(radius, "radius")
        self.pitch = _positive(pitch, "pitch")
        self.turns = _positive(turns, "turns")
        self._c = math.hypot(self.radius, self.pitch)
        self.length = 2 * math.pi * self.turns * self._c

    def params(self) -> dict[str, float]:
        return {"radius": self.radius, "pitch": self.pitch, "turns": self.turns}

    @property
    def constant_curvature(self) -> bool:
        return True

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
        self.coordinate_closed = curve.coordinate_closed
        self.corners = curve.corners
        #: ``(dim, curve.ambient_dim)``: maps the curve's space into R^dim.
        self.basis = random_orthogonal(self.ambient_dim, curve.ambient_dim, seed)

    def params(self) -> dict[str, float]:
        return {**self.curve.params(), "dim": float(self.ambient_dim)}

    @property
    def constant_curvature(self) -> bool:
        return self.curve.constant_curvature

    @property
    def curvature_symmetry(self) -> int:
        return self.curve.curvature_symmetry

    def contrast(self) -> tuple[str, float] | None:
        return self.curve.contrast()

    def positions(self, resolution: int) -> FloatArray:
        return self.curve.positions(resolution)

    def points(self, s: ArrayLike) -> FloatArray:
        out: FloatArray = self.curve.points(s) @ self.basis.T
        return out

    def curvature(self, s: ArrayLike) -> FloatArray:
        return self.curve.curvature(s)


# -- surfaces ---------------------------------------------------------------------------
Derivatives = tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]


class Surface(Manifold):
    """A parametrised surface ``x(u, v)`` in R³ with analytic derivatives.

    Subclasses give :meth:`derivatives` (the point and its first and second partial
    derivatives), the outward unit :meth:`normal`, and the Gaussian and mean curvature.
    From them come the normal and geodesic curvature of the coordinate curves
    (:meth:`path_curvatures`). Trajectories are ``u``-curves (``v`` fixed) and
    ``v``-curves (``u`` fixed); the chart coordinate (:meth:`coordinate`) is a function
    of the point, so arc-arm targets are functions on the surface.
    """

    family = "surfaces"
    ambient_dim = 3
    # A surface's samples are spread over two dimensions: fewer periods fit.
    arc_frequencies = (1, 2, 3)
    u_range: tuple[float, float] = (0.0, 2 * math.pi)
    v_range: tuple[float, float] = (0.0, 2 * math.pi)
    u_closed = True
    v_closed = True
    #: The range and closedness of the v-curves (the sphere's and ellipsoid's run all
    #: the way round, though v_range covers the surface once with the u-curves).
    v_path: tuple[tuple[float, float], bool] | None = None
    #: Where v-curves sit: u over this range (None: u_range).
    u_path_positions: tuple[float, float] | None = None

    def derivatives(self, u: FloatArray, v: FloatArray) -> Derivatives:
        """``x, x_u, x_v, x_uu, x_uv, x_vv``, each ``(n, 3)``."""
        raise NotImplementedError

    def point(self, u: ArrayLike, v: ArrayLike) -> FloatArray:
        """Points ``(n, 3)`` at parameters ``(u, v)``."""
        uu, vv = np.broadcast_arrays(
            np.asarray(u, dtype=np.float64).ravel(), np.asarray(v, dtype=np.float64).ravel()
        )
        return self.derivatives(uu, vv)[0]

    def normal(self, u: ArrayLike, v: ArrayLike) -> FloatArray:
        """Outward unit normals ``(n, 3)`` (for the saddle: the side ``z`` grows to)."""
        raise NotImplementedError

    def gaussian(self, u: FloatArray, v: FloatArray) -> FloatArray:
        """Gaussian curvature K."""
        raise NotImplementedError

    def mean(self, u: FloatArray, v: FloatArray) -> FloatArray:
        """Mean curvature H (up to the normal's orientation)."""
        raise NotImplementedError

    def coordinate(self, u: FloatArray, v: FloatArray) -> FloatArray:
        """The chart coordinate in [0, 1] (default: ``u`` over its range)."""
        lo, hi = self.u_range
        out: FloatArray = (u - lo) / (hi - lo)
        return out

    def path_curvatures(
        self, u: ArrayLike, v: ArrayLike, direction: str
    ) -> tuple[FloatArray, FloatArray]:
        """Signed normal and geodesic curvature of the ``direction`` coordinate curve.

        For the u-curve, with first and second fundamental forms ``E, F, G`` and ``L, M,
        N``, the normal curvature is ``II(x_u, x_u) / I(x_u, x_u) = L / E`` and the
        geodesic curvature ``Γ²₁₁ sqrt(EG - F²) / E^(3/2)``; equivalently (as computed
        here, from the analytic derivatives) the curve's curvature vector
        ``k = (x_uu - (x_uu·t) t) / |x_u|²`` projected on the outward normal ``n`` and on
        ``n × t``, ``t = x_u / |x_u|``. Likewise for v-curves with ``x_v, x_vv``. Their
        squares add up to the squared curvature of the curve in space. The normal
        curvature is negative where the surface bends away from its outward normal.

        Examples
        --------
        On the sphere every curve has normal curvature -1/R (it bends away from the
        outward normal); the equator is a geodesic.

        >>> kn, kg = Sphere(2.0).path_curvatures([np.pi / 2], [0.0], "v")
        >>> float(kn[0]), abs(round(float(kg[0]), 12))
        (-0.5, 0.0)
        """
        if direction not in ("u", "v"):
            msg = f"direction: expected 'u' or 'v', got {direction!r}"
            raise ValueError(msg)
        uu, vv = np.broadcast_arrays(
            np.asarray(u, dtype=np.float64).ravel(), np.asarray(v, dtype=np.float64).ravel()
        )
        _, xu, xv, xuu, _, xvv = self.derivatives(uu, vv)
        first, second = (xu, xuu) if direction == "u" else (xv, xvv)
        speed2 = np.sum(first * first, axis=1, keepdims=True)
        tangent = first / np.sqrt(speed2)
        bend = (second - np.sum(second * tangent, axis=1, keepdims=True) * tangent) / speed2
        normal = self.normal(uu, vv)
        kn: FloatArray = np.sum(bend * normal, axis=1)
        kg: FloatArray = np.sum(bend * np.cross(normal, tangent), axis=1)
        return kn, kg

    def area_element(self, u: FloatArray, v: FloatArray) -> FloatArray:
        """``|x_u × x_v| = sqrt(EG - F²)``."""
        _, xu, xv, _, _, _ = self.derivatives(u, v)
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

    @staticmethod
    def _positions(lo: float, hi: float, closed: bool, count: int) -> FloatArray:
        # Unevenly spread, so that symmetric surfaces do not give congruent curves only
        # (the torus: an outer and an inner parallel, not two at cos u = 0).
        fractions = (
            (np.arange(count) + 0.25) / count if closed else (np.arange(count) + 1) / (count + 2)
        )
        out: FloatArray = lo + (hi - lo) * fractions
        return out

    @staticmethod
    def _samples(lo: float, hi: float, closed: bool, resolution: int) -> FloatArray:
        if closed:
            out: FloatArray = lo + (hi - lo) * np.arange(resolution) / resolution
            return out
        return np.linspace(lo, hi, resolution)

    def trajectories(self, resolution: int, count: int = 2) -> list[Trajectory]:
        """``count`` u-curves (named ``u0, u1, ...``) at spread values of v, then
        ``count`` v-curves (``v0, ...``) at spread values of u, each with ``resolution``
        vertices, carrying |normal curvature| (``"curvature"``), |geodesic curvature|,
        |K| and |H|, and outward normals.

        Examples
        --------
        Meridians of the torus bend by 1/minor; its parallels by less, and differently.

        >>> paths = Torus(1.0, 0.5).trajectories(64)
        >>> [(t.name, round(float(t.measures["curvature"].max()), 3)) for t in paths]
        [('u0', 2.0), ('u1', 2.0), ('v0', 0.522), ('v1', 1.094)]
        """
        if int(count) < 1:
            msg = f"count: expected a positive number of curves per direction, got {count}"
            raise ValueError(msg)
        (u0, u1), (v0, v1) = self.u_range, self.v_range
        (pv0, pv1), pv_closed = self.v_path or ((v0, v1), self.v_closed)
        pu0, pu1 = self.u_path_positions or (u0, u1)
        plans = [
            ("u", self._samples(u0, u1, self.u_closed, resolution), value, self.u_closed)
            for value in self._positions(v0, v1, self.v_closed, count)
        ]
        plans += [
            ("v", self._samples(pv0, pv1, pv_closed, resolution), value, pv_closed)
            for value in self._positions(
                pu0, pu1, self.u_closed and self.u_path_positions is None, count
            )
        ]
        out = []
        counter = {"u": 0, "v": 0}
        for direction, along, value, closed in plans:
            fixed = np.full_like(along, value)
            u, v = (along, fixed) if direction == "u" else (fixed, along)
            normal, geodesic = self.path_curvatures(u, v, direction)
            out.append(
                Trajectory(
                    f"{direction}{counter[direction]}",
                    "on",
                    self.point(u, v),
                    closed,
                    self.coordinate(u, v),
                    {
                        "curvature": np.abs(normal),
                        "geodesic_curvature": np.abs(geodesic),
                        "gaussian": np.abs(self.gaussian(u, v)),
                        "mean": np.abs(self.mean(u, v)),
                    },
                    self.normal(u, v),
                    direction=direction,
                )
            )
            counter[direction] += 1
        return out


class Sphere(Surface):
    """The sphere of radius ``radius``; ``u``-curves are great circles (geodesics)
    through the poles, ``v``-curves latitude circles, and the chart coordinate is the
    normalised height."""

    name = "sphere"
    v_range = (0.0, math.pi)
    v_closed = False
    v_path = ((0.0, 2 * math.pi), True)
    u_path_positions = (0.0, math.pi)
    coordinate_closed = False

    def __init__(self, radius: float = 1.0) -> None:
        self.radius = _positive(radius, "radius")

    def params(self) -> dict[str, float]:
        return {"radius": self.radius}

    @property
    def constant_curvature(self) -> bool:
        return True

    def derivatives(self, u: FloatArray, v: FloatArray) -> Derivatives:
        r = self.radius
        su, cu, sv, cv = np.sin(u), np.cos(u), np.sin(v), np.cos(v)
        zero = np.zeros_like(u)
        x = r * np.column_stack([su * cv, su * sv, cu])
        xu = r * np.column_stack([cu * cv, cu * sv, -su])
        xv = r * np.column_stack([-su * sv, su * cv, zero])
        xuv = r * np.column_stack([-cu * sv, cu * cv, zero])
        xvv = r * np.column_stack([-su * cv, -su * sv, zero])
        return x, xu, xv, -x, xuv, xvv

    def normal(self, u: ArrayLike, v: ArrayLike) -> FloatArray:
        out: FloatArray = self.point(u, v) / self.radius
        return out

    def gaussian(self, u: FloatArray, v: FloatArray) -> FloatArray:
        return np.full(np.shape(u), 1.0 / self.radius**2)

    def mean(self, u: FloatArray, v: FloatArray) -> FloatArray:
        return np.full(np.shape(u), 1.0 / self.radius)

    def coordinate(self, u: FloatArray, v: FloatArray) -> FloatArray:
        out: FloatArray = (1 - np.cos(u)) / 2
        return out


class Torus(Surface):
    """The torus of radii ``major > minor``; ``u`` runs around the tube, so the
    ``u``-curves (meridians) cross from positive (outside) to negative (inside) Gaussian
    curvature, and the ``v``-curves are parallels of radius ``major + minor cos u``."""

    name = "torus"

    def __init__(self, major: float = 1.0, minor: float = 0.5) -> None:
        self.major = _positive(major, "major")
        self.minor = _positive(minor, "minor")
        if self.minor >= self.major:
            msg = f"minor: expected minor < major ({self.major}), got {self.minor}"
            raise ValueError(msg)

    def params(self) -> dict[str, float]:
        return {"major": self.major, "minor": self.minor}

    def contrast(self) -> tuple[str, float] | None:
        """``("minor_radius", minor / major)``."""
        return ("minor_radius", self.minor / self.major)

    def derivatives(self, u: FloatArray, v: FloatArray) -> Derivatives:
        big, r = self.major, self.minor
        su, cu, sv, cv = np.sin(u), np.cos(u), np.sin(v), np.cos(v)
        ring = big + r * cu
        zero = np.zeros_like(u)
        x = np.column_stack([ring * cv, ring * sv, r * su])
        xu = np.column_stack([-r * su * cv, -r * su * sv, r * cu])
        xv = np.column_stack([-ring * sv, ring * cv, zero])
        xuu = np.column_stack([-r * cu * cv, -r * cu * sv, -r * su])
        xuv = np.column_stack([r * su * sv, -r * su * cv, zero])
        xvv = np.column_stack([-ring * cv, -ring * sv, zero])
        return x, xu, xv, xuu, xuv, xvv

    def normal(self, u: ArrayLike, v: ArrayLike) -> FloatArray:
        uu, vv = np.broadcast_arrays(
            np.asarray(u, dtype=np.float64).ravel(), np.asarray(v, dtype=np.float64).ravel()
        )
        return np.column_stack([np.cos(uu) * np.cos(vv), np.cos(uu) * np.sin(vv), np.sin(uu)])

    def gaussian(self, u: FloatArray, v: FloatArray) -> FloatArray:
        out: FloatArray = np.cos(u) / (self.minor * (self.major + self.minor * np.cos(u)))
        return out

    def mean(self, u: FloatArray, v: FloatArray) -> FloatArray:
        ring = self.major + self.minor * np.cos(u)
        out: FloatArray = (self.major + 2 * self.minor * np.cos(u)) / (2 * self.minor * ring)
        return out


class Ellipsoid(Surface):
    """The ellipsoid with semi-axes ``(a, b, c)``; ``u``-curves are meridian ellipses,
    ``v``-curves horizontal ellipses, and the chart coordinate is the normalised height."""

    name = "ellipsoid"
    v_range = (0.0, math.pi)
    v_closed = False
    v_path = ((0.0, 2 * math.pi), True)
    u_path_positions = (0.0, math.pi)
    coordinate_closed = False

    def __init__(self, a: float = 1.2, b: float = 0.8, c: float = 0.5) -> None:
        self.a, self.b, self.c = (_positive(x, n) for x, n in ((a, "a"), (b, "b"), (c, "c")))

    def params(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b, "c": self.c}

    @property
    def constant_curvature(self) -> bool:
        return self.a == self.b == self.c

    def derivatives(self, u: FloatArray, v: FloatArray) -> Derivatives:
        scale = np.array([self.a, self.b, self.c])
        x, xu, xv, xuu, xuv, xvv = Sphere(1.0).derivatives(u, v)
        return x * scale, xu * scale, xv * scale, xuu * scale, xuv * scale, xvv * scale

    def normal(self, u: ArrayLike, v: ArrayLike) -> FloatArray:
        gradient = self.point(u, v) / np.array([self.a, self.b, self.c]) ** 2
        out: FloatArray = gradient / np.linalg.norm(gradient, axis=1, keepdims=True)
        return out

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
    Gaussian curvature, strongest at the centre. Its normals point to growing ``z``."""

    name = "saddle"
    u_range = (-1.0, 1.0)
    v_range = (-1.0, 1.0)
    u_closed = False
    v_closed = False
    coordinate_closed = False

    def __init__(self, a: float = 1.0) -> None:
        self.a = _positive(a, "a")

    def params(self) -> dict[str, float]:
        return {"a": self.a}

    def derivatives(self, u: FloatArray, v: FloatArray) -> Derivatives:
        a = self.a
        zero, one = np.zeros_like(u), np.ones_like(u)
        x = np.column_stack([u, v, a * (u**2 - v**2) / 2])
        xu = np.column_stack([one, zero, a * u])
        xv = np.column_stack([zero, one, -a * v])
        xuu = np.column_stack([zero, zero, a * one])
        xvv = np.column_stack([zero, zero, -a * one])
        return x, xu, xv, xuu, np.zeros_like(x), xvv

    def normal(self, u: ArrayLike, v: ArrayLike) -> FloatArray:
        uu, vv = np.broadcast_arrays(
            np.asarray(u, dtype=np.float64).ravel(), np.asarray(v, dtype=np.float64).ravel()
        )
        n = np.column_stack([-self.a * uu, self.a * vv, np.ones_like(uu)])
        out: FloatArray = n / np.linalg.norm(n, axis=1, keepdims=True)
        return out

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

    The image is the interpolating bicubic spline of its pixels (scaled to [0, 1]) padded
    with 4 pixels of zeros (:class:`scipy.interpolate.RectBivariateSpline`), so the orbit
    is a smooth curve in R^64 whose derivatives are those of the spline:
    :meth:`curvature` is exact (to rounding), not a discrete estimate. The chart
    coordinate is θ / 2π (or the shift, scaled to [0, 1]).

    Examples
    --------
    >>> orbit = ImageOrbit(0)
    >>> kappa = orbit.curvature(np.linspace(0, 1, 5))
    >>> bool(np.all(kappa > 0)), bool(np.isclose(kappa[0], kappa[-1]))
    (True, True)
    """

    family = "images"
    ambient_dim = 64

    def __init__(self, digit: int = 0, motion: str = "rotation", shift: float = 2.0) -> None:
        datasets = optional_import("sklearn.datasets", "experiments")
        interpolate = optional_import("scipy.interpolate", "experiments")
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
        self.coordinate_closed = self.closed
        self.name = f"digit-{self.digit}-{motion}"
        padded = np.pad(images[self.digit] / 16.0, pad)
        nodes = np.arange(padded.shape[0], dtype=np.float64) - (3.5 + pad)
        self._spline = interpolate.RectBivariateSpline(nodes, nodes, padded, kx=3, ky=3, s=0)
        grid = np.arange(8, dtype=np.float64) - 3.5
        self._grid = np.stack(np.meshgrid(grid, grid, indexing="ij"), axis=-1).reshape(-1, 2)

    def params(self) -> dict[str, float]:
        out = {"digit": float(self.digit)}
        if self.motion == "translation":
            out["shift"] = self.shift
        return out

    @property
    def curvature_symmetry(self) -> int:
        # Many digits (0, 1, 8) are nearly symmetric under a half turn.
        return 2 if self.closed else 1

    def _image_at(
        self, rows: FloatArray, cols: FloatArray, d_row: int = 0, d_col: int = 0
    ) -> FloatArray:
        # The spline image (or a partial derivative) at (row, col) offsets from the
        # centre, one image a row.
        values = self._spline.ev(rows.ravel(), cols.ravel(), dx=d_row, dy=d_col)
        out: FloatArray = np.asarray(values, dtype=np.float64).reshape(rows.shape[0], 64)
        return out

    def _rotated_grid(self, angles: ArrayLike) -> tuple[FloatArray, FloatArray]:
        theta = np.atleast_1d(np.asarray(angles, dtype=np.float64))
        cos, sin = np.cos(theta)[:, None], np.sin(theta)[:, None]
        # The rotated image at pixel p is the original at R(-θ) p.
        rows = cos * self._grid[None, :, 0] + sin * self._grid[None, :, 1]
        cols = -sin * self._grid[None, :, 0] + cos * self._grid[None, :, 1]
        return rows, cols

    def _shifted_grid(self, shifts: ArrayLike) -> tuple[FloatArray, FloatArray]:
        tau = np.atleast_1d(np.asarray(shifts, dtype=np.float64))[:, None]
        rows = np.broadcast_to(self._grid[None, :, 0], (tau.shape[0], 64))
        cols: FloatArray = self._grid[None, :, 1] - tau
        return np.ascontiguousarray(rows), cols

    def points_at(self, angles: ArrayLike) -> FloatArray:
        """Rotated images ``(n, 64)`` at angles ``angles`` (radians)."""
        return self._image_at(*self._rotated_grid(angles))

    def shifted(self, shifts: ArrayLike) -> FloatArray:
        """Images ``(n, 64)`` moved right by ``shifts`` pixels."""
        return self._image_at(*self._shifted_grid(shifts))

    def _parameter(self, coordinate: ArrayLike) -> FloatArray:
        c = np.asarray(coordinate, dtype=np.float64)
        out: FloatArray = 2 * math.pi * c if self.closed else self.shift * (2 * c - 1)
        return out

    def _along(self, coordinate: FloatArray) -> FloatArray:
        if self.closed:
            return self.points_at(self._parameter(coordinate))
        return self.shifted(self._parameter(coordinate))

    def curvature(self, coordinate: ArrayLike) -> FloatArray:
        """Exact curvature of the orbit at chart coordinates ``coordinate``, from the
        first and second derivatives of the spline image along the motion:
        ``sqrt(|x'|² |x''|² - (x'·x'')²) / |x'|³``."""
        parameter = np.atleast_1d(self._parameter(coordinate))
        if self.closed:
            rows, cols = self._rotated_grid(parameter)
            # d(row, col)/dθ = (col, -row); the second derivative is -(row, col).
            d_row, d_col = cols, -rows
        else:
            rows, cols = self._shifted_grid(parameter)
            d_row, d_col = np.zeros_like(rows), -np.ones_like(cols)
        i_r, i_c = self._image_at(rows, cols, 1, 0), self._image_at(rows, cols, 0, 1)
        i_rr = self._image_at(rows, cols, 2, 0)
        i_rc = self._image_at(rows, cols, 1, 1)
        i_cc = self._image_at(rows, cols, 0, 2)
        first = i_r * d_row + i_c * d_col
        second = i_rr * d_row**2 + 2 * i_rc * d_row * d_col + i_cc * d_col**2
        if self.closed:
            second = second - i_r * rows - i_c * cols
        n1 = np.sum(first * first, axis=1)
        cross2 = np.maximum(
            n1 * np.sum(second * second, axis=1) - np.sum(first * second, axis=1) ** 2, 0.0
        )
        out: FloatArray = np.sqrt(cross2) / np.maximum(n1, 1e-300) ** 1.5
        return out

    def sample(self, count: int, rng: np.random.Generator) -> tuple[FloatArray, FloatArray]:
        # Uniform in arc length (not in the angle or shift, along which the orbit's speed
        # varies): the coordinate at a uniform arc length, by inverting the arc length of
        # a fine polyline.
        grid = np.linspace(0.0, 1.0, 4097)
        arc = polyline_arc_length(self._along(grid))
        coordinate = np.interp(rng.uniform(0.0, arc[-1], size=count), arc, grid)
        return self._along(coordinate), coordinate

    def trajectories(self, resolution: int) -> list[Trajectory]:
        if self.closed:
            coordinate = np.arange(resolution) / resolution
        else:
            coordinate = np.linspace(0.0, 1.0, resolution)
        points = self._along(coordinate)
        kappa = self.curvature(coordinate)
        return [Trajectory("orbit", "on", points, self.closed, coordinate, {"curvature": kappa})]
