"""Manifolds of the curvature study: exact curvature, unit speed, discrete estimators."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("scipy")
pytest.importorskip("sklearn")

from lrcore.experiments.manifolds import (
    Circle,
    Ellipse,
    Ellipsoid,
    Embedded,
    Helix,
    ImageOrbit,
    Polygon,
    ProfileCurve,
    Saddle,
    Sphere,
    Torus,
    finite_difference_curvature,
    menger_curvature,
    window_means,
)

CURVES = [
    Circle(0.7),
    Ellipse(1.0, 0.4),
    Ellipse(0.5, 1.3),
    ProfileCurve("constant"),
    ProfileCurve("sinusoidal", amplitude=0.6, symmetry=3),
    ProfileCurve("piecewise", amplitude=0.5, symmetry=2, length=5.0),
    Polygon(5, 1.2),
    Helix(0.8, 0.3, 1.5),
    Embedded(Ellipse(1.0, 0.6), 7, seed=3),
    Embedded(Helix(), 11, seed=1),
]
STEP = 1e-4


def _interior_positions(curve, count=200):
    """Arc lengths at least 10 steps from the curve's ends, corners and κ jumps."""
    s = np.random.default_rng(0).uniform(0, curve.length, size=4 * count)
    bad = [0.0, curve.length] + [p for p, _ in curve.corners]
    if isinstance(curve, ProfileCurve) and curve.profile == "piecewise":
        bad += list(curve.length * np.arange(2 * curve.symmetry + 1) / (2 * curve.symmetry))
    keep = np.min(np.abs(s[:, None] - np.asarray(bad)[None, :]), axis=1) > 10 * STEP
    return s[keep][:count]


@pytest.mark.parametrize("curve", CURVES, ids=lambda c: f"{c.name}-{c.ambient_dim}d")
def test_curves_have_unit_speed_and_exact_curvature(curve):
    s = _interior_positions(curve)
    ahead, here, behind = curve.points(s + STEP), curve.points(s), curve.points(s - STEP)
    speed = np.linalg.norm(ahead - behind, axis=1) / (2 * STEP)
    np.testing.assert_allclose(speed, 1.0, atol=1e-7)
    # With unit speed, curvature is |x''|.
    second = np.linalg.norm(ahead - 2 * here + behind, axis=1) / STEP**2
    np.testing.assert_allclose(curve.curvature(s), second, atol=2e-5 * max(1, second.max()))


@pytest.mark.parametrize(
    "curve", [c for c in CURVES if c.closed], ids=lambda c: f"{c.name}-{c.ambient_dim}d"
)
def test_closed_curves_close_and_turn_once(curve):
    np.testing.assert_allclose(curve.points([0.0]), curve.points([curve.length]), atol=1e-12)
    trajectory = curve.trajectories(800)[0]
    # A simple closed plane curve turns by 2π in total (corners included as spikes).
    total = (
        window_means(
            trajectory.arc,
            trajectory.measures["curvature"],
            True,
            trajectory.length,
            np.array([trajectory.length / 2]),
            trajectory.length,
        )[0]
        * trajectory.length
    )
    assert total == pytest.approx(2 * math.pi, rel=2e-3)


def _fundamental_forms(surface, u, v, h=1e-4):
    p = surface.point
    xu = (p(u + h, v) - p(u - h, v)) / (2 * h)
    xv = (p(u, v + h) - p(u, v - h)) / (2 * h)
    xuu = (p(u + h, v) - 2 * p(u, v) + p(u - h, v)) / h**2
    xvv = (p(u, v + h) - 2 * p(u, v) + p(u, v - h)) / h**2
    xuv = (p(u + h, v + h) - p(u + h, v - h) - p(u - h, v + h) + p(u - h, v - h)) / (4 * h * h)
    n = np.cross(xu, xv)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    e, f, g = (xu * xu).sum(1), (xu * xv).sum(1), (xv * xv).sum(1)
    ll, m, nn = (xuu * n).sum(1), (xuv * n).sum(1), (xvv * n).sum(1)
    det = e * g - f * f
    return (ll * nn - m * m) / det, (e * nn - 2 * f * m + g * ll) / (2 * det)


@pytest.mark.parametrize(
    "surface",
    [
        Sphere(1.3),
        Torus(1.0, 0.4),
        Ellipsoid(1.2, 0.8, 0.5),
        Ellipsoid(0.6, 1.0, 1.4),
        Saddle(1.5),
    ],
    ids=lambda s: s.name,
)
def test_surface_curvatures_match_finite_differences(surface):
    rng = np.random.default_rng(1)
    (u0, u1), (v0, v1) = surface.u_range, surface.v_range
    u = rng.uniform(u0 + 0.2, u1 - 0.2, 100)
    v = rng.uniform(v0 + 0.2, v1 - 0.2, 100)
    gaussian, mean = _fundamental_forms(surface, u, v)
    np.testing.assert_allclose(surface.gaussian(u, v), gaussian, atol=1e-5)
    np.testing.assert_allclose(np.abs(surface.mean(u, v)), np.abs(mean), atol=1e-5)
    # Trajectories carry the same values, and samples lie on the surface.
    trajectory = surface.trajectories(64, count=2)[0]
    assert trajectory.measures["gaussian"].min() >= 0
    points, coordinate = surface.sample(50, rng)
    assert points.shape == (50, 3)
    assert 0 <= coordinate.min() <= coordinate.max() <= 1


def _ellipse_by_angle(n):
    # Evenly spaced in the angle, not in arc length.
    phi = 2 * np.pi * np.arange(n) / n
    points = np.c_[1.0 * np.sin(phi), 0.4 * np.cos(phi)]
    exact = 0.4 / np.hypot(np.cos(phi), 0.4 * np.sin(phi)) ** 3
    return points, exact


def _embedded_helix(n):
    helix = Embedded(Helix(0.8, 0.3, 1.0), 9, seed=2)
    s = np.linspace(0, helix.length, n)
    return helix.points(s), helix.curvature(s)


@pytest.mark.parametrize("estimator", [menger_curvature, finite_difference_curvature])
@pytest.mark.parametrize(
    ("sampled", "closed"), [(_ellipse_by_angle, True), (_embedded_helix, False)]
)
def test_discrete_curvature_converges_at_second_order(estimator, sampled, closed):
    errors = []
    for n in (100, 200, 400):
        points, exact = sampled(n)
        estimate = estimator(points, closed=closed)
        inner = slice(None) if closed else slice(2, -2)
        errors.append(np.max(np.abs(estimate[inner] - exact[inner])) / exact.max())
    assert errors[-1] < 1e-3
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert rates.min() > 1.8, rates


def test_image_orbit_is_a_closed_smooth_rotation_orbit():
    from sklearn.datasets import load_digits

    orbit = ImageOrbit(0)
    image = load_digits().images[0] / 16
    # The spline interpolates the pixels, so quarter turns are exact pixel rotations.
    np.testing.assert_allclose(orbit.points_at([0.0])[0].reshape(8, 8), image, atol=1e-12)
    np.testing.assert_allclose(
        orbit.points_at([np.pi / 2])[0].reshape(8, 8), np.rot90(image), atol=1e-12
    )
    np.testing.assert_allclose(orbit.points_at([2 * np.pi]), orbit.points_at([0.0]), atol=1e-12)
    # Whole-pixel translations are exact pixel shifts too.
    moved = ImageOrbit(0, motion="translation").shifted([1.0])[0].reshape(8, 8)
    np.testing.assert_allclose(moved[:, 1:], image[:, :-1], atol=1e-12)
    # The estimated curvature is resolved: doubling the sampling changes it little.
    coarse = orbit.trajectories(720)[0].measures["curvature"]
    fine = orbit.trajectories(1440)[0].measures["curvature"][::2]
    assert np.max(np.abs(coarse - fine)) < 1e-2 * coarse.max()


def test_bad_parameters_name_the_argument():
    with pytest.raises(ValueError, match="radius"):
        Circle(-1)
    with pytest.raises(ValueError, match="amplitude"):
        ProfileCurve("sinusoidal", amplitude=1.5)
    with pytest.raises(ValueError, match="profile"):
        ProfileCurve("wiggly")
    with pytest.raises(ValueError, match="minor"):
        Torus(1.0, 2.0)
    with pytest.raises(ValueError, match="digit"):
        ImageOrbit(10**6)
    with pytest.raises(ValueError, match="motion"):
        ImageOrbit(0, motion="zoom")
