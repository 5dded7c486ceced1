"""The study's design (issue 12): orientation, path curvatures, per-seed draws that break
the confounds, per-task networks, the fit check, the two target arms, images measured on
their interpolant, and the dose-response series of the defaults."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
stats = pytest.importorskip("scipy.stats")
pytest.importorskip("sklearn")
pytest.importorskip("torch")

from lrcore.experiments.manifolds import (
    Ellipse,
    Ellipsoid,
    ImageOrbit,
    Saddle,
    Sphere,
    Torus,
    finite_difference_curvature,
    menger_curvature,
)
from lrcore.experiments.study import TINY
from lrcore.experiments.sweep import StudyConfig, make_tasks, run_task

SURFACES = [Sphere(1.3), Torus(1.0, 0.4), Ellipsoid(1.2, 0.8, 0.5), Saddle(1.5)]
#: Measures only: no training, small polylines (run_task at steps=0 costs milliseconds).
UNTRAINED = dataclasses.replace(
    TINY, steps=0, checkpoints=1, samples=64, resolution=128, windows=16, convergence_factor=2
)


def _grid(surface, n=41):
    (u0, u1), (v0, v1) = surface.u_range, surface.v_range
    u, v = np.meshgrid(np.linspace(u0, u1, n)[1:-1], np.linspace(v0, v1, n)[1:-1])
    return u.ravel(), v.ravel()


def _outward_margin(surface, points, direction):
    """How far ``direction`` points away from the inside (positive: outward)."""
    if isinstance(surface, Torus):
        ring = np.hypot(points[:, 0], points[:, 1])
        core = surface.major * np.column_stack(
            [points[:, 0] / ring, points[:, 1] / ring, np.zeros(len(points))]
        )
        return np.sum((points - core) * direction, axis=1)
    if isinstance(surface, Saddle):  # not closed: the side z grows to, consistently
        return direction[:, 2]
    return np.sum(points * direction, axis=1)  # star-shaped about the origin


@pytest.mark.parametrize("surface", SURFACES, ids=lambda s: s.name)
def test_surface_normals_point_outward_everywhere(surface):
    u, v = _grid(surface)
    normal = surface.normal(u, v)
    np.testing.assert_allclose(np.linalg.norm(normal, axis=1), 1.0, atol=1e-9)
    assert _outward_margin(surface, surface.point(u, v), normal).min() > 0.1


def _distance_outside(surface, points):
    """Signed distance from the surface (exact for sphere and torus, a level set else)."""
    if isinstance(surface, Sphere):
        return np.linalg.norm(points, axis=1) - surface.radius
    if isinstance(surface, Torus):
        ring = np.hypot(points[:, 0], points[:, 1])
        return np.hypot(ring - surface.major, points[:, 2]) - surface.minor
    if isinstance(surface, Ellipsoid):
        scaled = points / np.array([surface.a, surface.b, surface.c])
        return np.linalg.norm(scaled, axis=1) - 1.0
    x, y, z = points.T
    return z - surface.a * (x**2 - y**2) / 2


@pytest.mark.parametrize("surface", SURFACES, ids=lambda s: s.name)
def test_offsets_lie_outside_and_inside_without_jumps(surface):
    delta = 0.1
    for on in surface.trajectories(256):
        outside, inside = on.offset(delta), on.offset(-delta)
        d_out = _distance_outside(surface, outside.points)
        d_in = _distance_outside(surface, inside.points)
        assert d_out.min() > 0 > d_in.max(), on.name
        if isinstance(surface, (Sphere, Torus)):
            np.testing.assert_allclose(d_out, delta, atol=1e-9)
            np.testing.assert_allclose(d_in, -delta, atol=1e-9)
        # No radial jumps: the offset moves as smoothly as the trajectory itself.
        step_on = np.linalg.norm(np.diff(on.points, axis=0), axis=1)
        step_out = np.linalg.norm(np.diff(outside.points, axis=0), axis=1)
        assert step_out.max() < 2 * step_on.max(), on.name
        assert (outside.kind, outside.side, inside.side) == ("offset", 1, -1)


def test_curve_offsets_are_outward_and_inward():
    ellipse = Ellipse(1.0, 0.6)
    on = ellipse.trajectories(256)[0]

    def level(p):
        return np.hypot(p[:, 0] / 1.0, p[:, 1] / 0.6)

    assert level(on.offset(0.1).points).min() > 1 > level(on.offset(-0.1).points).max()


def _signed_path_curvatures(surface, u, v, direction, h=1e-4):
    """Normal and geodesic curvature of a coordinate curve by finite differences."""
    p = surface.point
    du, dv = (h, 0.0) if direction == "u" else (0.0, h)
    first = (p(u + du, v + dv) - p(u - du, v - dv)) / (2 * h)
    second = (p(u + du, v + dv) - 2 * p(u, v) + p(u - du, v - dv)) / h**2
    speed2 = np.sum(first * first, axis=1, keepdims=True)
    tangent = first / np.sqrt(speed2)
    bend = (second - np.sum(second * tangent, axis=1, keepdims=True) * tangent) / speed2
    normal = surface.normal(u, v)
    return np.sum(bend * normal, axis=1), np.sum(bend * np.cross(normal, tangent), axis=1)


@pytest.mark.parametrize("surface", SURFACES, ids=lambda s: s.name)
def test_path_curvatures_match_finite_differences(surface):
    rng = np.random.default_rng(5)
    (u0, u1), (v0, v1) = surface.u_range, surface.v_range
    u = rng.uniform(u0 + 0.2, u1 - 0.2, 60)
    v = rng.uniform(v0 + 0.2, v1 - 0.2, 60)
    for direction in ("u", "v"):
        normal, geodesic = surface.path_curvatures(u, v, direction)
        fd_normal, fd_geodesic = _signed_path_curvatures(surface, u, v, direction)
        np.testing.assert_allclose(normal, fd_normal, atol=2e-5)
        np.testing.assert_allclose(geodesic, fd_geodesic, atol=2e-5)


@pytest.mark.parametrize("surface", SURFACES, ids=lambda s: s.name)
def test_trajectories_carry_the_curvature_of_the_path(surface):
    trajectories = surface.trajectories(2000)
    assert {t.direction for t in trajectories} == {"u", "v"}
    for t in trajectories:
        normal = t.measures["curvature"]
        geodesic = t.measures["geodesic_curvature"]
        # The space curve bends by sqrt(normal² + geodesic²): check on the polyline.
        space = finite_difference_curvature(t.points, closed=t.closed)
        inner = slice(None) if t.closed else slice(3, -3)
        np.testing.assert_allclose(
            np.hypot(normal, geodesic)[inner], space[inner], rtol=1e-4, atol=1e-4
        )
        assert normal.min() >= 0
        assert geodesic.min() >= 0
        assert {"gaussian", "mean"} <= set(t.measures)


def test_path_curvatures_have_the_known_closed_forms():
    radius = 1.3
    sphere = Sphere(radius)
    for t in sphere.trajectories(256):
        np.testing.assert_allclose(t.measures["curvature"], 1 / radius, rtol=1e-12)
        if t.direction == "u":  # great circles through the poles: geodesics
            np.testing.assert_allclose(t.measures["geodesic_curvature"], 0.0, atol=1e-12)
    u = np.linspace(0.3, 2.8, 7)
    _, geodesic = sphere.path_curvatures(u, np.zeros_like(u), "v")  # latitude circles
    np.testing.assert_allclose(np.abs(geodesic), np.abs(1 / np.tan(u)) / radius, rtol=1e-12)

    torus = Torus(1.0, 0.4)
    u = np.linspace(0.0, 2 * np.pi, 9)
    normal, geodesic = torus.path_curvatures(u, np.full_like(u, 0.7), "u")  # meridians
    np.testing.assert_allclose(np.abs(normal), 1 / 0.4, rtol=1e-12)
    np.testing.assert_allclose(geodesic, 0.0, atol=1e-12)
    ring = 1.0 + 0.4 * np.cos(u)
    normal, geodesic = torus.path_curvatures(u, np.full_like(u, 0.7), "v")  # parallels
    np.testing.assert_allclose(np.abs(normal), np.abs(np.cos(u)) / ring, atol=1e-12)
    np.testing.assert_allclose(np.abs(geodesic), np.abs(np.sin(u)) / ring, atol=1e-12)
    # v-curves make the torus more than copies of one meridian.
    curvatures = {round(float(t.measures["curvature"].mean()), 6) for t in torus.trajectories(64)}
    assert len(curvatures) >= 3


@pytest.mark.parametrize("motion", ["rotation", "translation"])
def test_image_orbit_curvature_comes_from_the_interpolant(motion):
    orbit = ImageOrbit(3, motion=motion)
    fine = orbit.trajectories(8000)[0]
    exact = orbit.curvature(fine.coordinate)
    np.testing.assert_array_equal(fine.measures["curvature"], exact)
    estimate = finite_difference_curvature(fine.points, closed=orbit.closed)
    inner = slice(None) if orbit.closed else slice(3, -3)
    np.testing.assert_allclose(estimate[inner], exact[inner], rtol=1e-3, atol=1e-3 * exact.max())
    # Menger's estimate on the study's sampling agrees with the analytic value.
    coarse = orbit.trajectories(720)[0]
    menger = menger_curvature(coarse.points, closed=orbit.closed)
    error = np.abs(menger - coarse.measures["curvature"])[inner]
    assert error.max() < 2e-2 * exact.max()


def test_defaults_study_five_digits_and_the_dose_response_series():
    config = StudyConfig()
    assert len(config.seeds) >= 20
    assert set(config.arms) == {"arc", "ambient"}
    assert set(config.targets) == {"smooth", "step"}
    specs = config.manifold_specs()
    digits = {s for s in specs if s.startswith("digit") and "translation" not in s}
    assert len(digits) >= 5
    from lrcore.experiments.sweep import build_manifold

    series: dict[str, set[float]] = {}
    for spec in specs:
        manifold = build_manifold(spec)
        contrast = manifold.contrast()
        if contrast is not None:
            series.setdefault(contrast[0], set()).add(round(contrast[1], 6))
    assert series["axis_ratio"] == {1.0, 0.7, 0.4, 0.2}
    assert series["amplitude"] == {0.0, 0.3, 0.6, 0.9}
    assert len(series["minor_radius"]) >= 4


def test_constant_curvature_is_flagged():
    from lrcore.experiments.sweep import build_manifold

    flagged = {
        "circle": True,
        "sphere": True,
        "helix": True,
        "ellipse:b=1.0": True,
        "profile:profile=sinusoidal,amplitude=0.0": True,
        "ellipse:b=0.4": False,
        "profile:profile=piecewise": False,
        "torus": False,
        "polygon": False,
        "digit:digit=2": False,
    }
    for spec, constant in flagged.items():
        assert build_manifold(spec).constant_curvature is constant, spec


def _tasks(config, **match):
    tasks = make_tasks(config)
    return [t for t in tasks if all(getattr(t, k, "arc") == v for k, v in match.items())]


def test_each_task_gets_its_own_initialisation():
    config = dataclasses.replace(
        UNTRAINED, manifolds=("ellipse:b=0.5", "circle"), seeds=(0,), targets=("smooth", "step")
    )
    tasks = {(t.manifold, t.target): t for t in _tasks(config, arm="arc")}

    def init(key):
        return run_task(tasks[key], config, keep_weights=True)["weights"]["init"][0][0]

    ellipse = init(("ellipse:b=0.5", "smooth"))
    assert not np.array_equal(ellipse, init(("circle", "smooth")))
    assert not np.array_equal(ellipse, init(("ellipse:b=0.5", "step")))
    np.testing.assert_array_equal(ellipse, init(("ellipse:b=0.5", "smooth")))


def _pooled_corr(frame, x, y):
    return float(np.corrcoef(frame[x], frame[y])[0, 1])


def _on_windows(spec, arm, target, seeds=20):
    config = dataclasses.replace(
        UNTRAINED, manifolds=(spec,), seeds=tuple(range(seeds)), targets=(target,)
    )
    frames = [run_task(t, config)["windows"] for t in _tasks(config, arm=arm)]
    windows = pd.concat(frames, ignore_index=True)
    return windows[windows["kind"] == "on"]


def test_curvature_is_no_function_of_the_target_over_seeds():
    # Profile curve of symmetry 3 and a smooth target: with today's 3 periods and no phase
    # the window curvature would be a linear function of the target's value.
    windows = _on_windows("profile:profile=sinusoidal,amplitude=0.6", "arc", "smooth")
    assert windows["seed"].nunique() == 20
    assert abs(_pooled_corr(windows, "curvature", "target_value")) < 0.15
    from lrcore.experiments.manifolds import ProfileCurve
    from lrcore.experiments.targets import Target

    curve = ProfileCurve("sinusoidal", 0.6, 3)
    s = curve.positions(1024)
    old = Target("smooth", frequency=3)(s / curve.length)
    assert abs(np.corrcoef(curve.curvature(s), old)[0, 1]) > 0.9  # the confound it was
    # Piecewise profile and a step target: curvature was the target's sign.
    windows = _on_windows("profile:profile=piecewise", "arc", "step")
    assert abs(_pooled_corr(windows, "curvature", "target_value")) < 0.15


def test_curvature_is_no_function_of_the_distance_to_the_networks_origin():
    # A random rigid motion per seed moves the ellipse relative to the initialisation,
    # whose hyperplanes crowd around the origin; without it curvature is a function of
    # the distance from the origin.
    windows = _on_windows("ellipse:b=0.4", "arc", "smooth")
    assert abs(_pooled_corr(windows, "curvature", "dist_origin")) < 0.2
    ellipse = Ellipse(1.0, 0.4)
    s = ellipse.positions(1024)
    unmoved = np.linalg.norm(ellipse.points(s), axis=1)
    assert stats.spearmanr(ellipse.curvature(s), unmoved)[0] > 0.99  # a monotone function


def test_per_seed_draws_are_random_and_deterministic():
    config = dataclasses.replace(UNTRAINED, manifolds=("ellipse:b=0.4",), seeds=(0, 1, 2))
    draws = ["target_phase", "target_frequency", "target_jumps", "motion_seed", "init_seed"]
    for arm in ("arc", "ambient"):
        tasks = _tasks(config, arm=arm, target="step")
        runs = pd.concat([run_task(t, config)["runs"] for t in tasks], ignore_index=True)
        again = pd.concat([run_task(t, config)["runs"] for t in tasks], ignore_index=True)
        timings = ["cpu_seconds", "wall_seconds"]
        pd.testing.assert_frame_equal(runs.drop(columns=timings), again.drop(columns=timings))
        for column in ("target_phase", "target_jumps", "motion_seed", "init_seed"):
            assert runs[column].nunique() == 3, column
        assert set(draws) <= set(runs.columns)
    # Smooth and step targets of a seed share the draws (the placebo uses the step's
    # jumps), and their networks differ.
    both = pd.concat(
        [run_task(t, config)["runs"] for t in _tasks(config, arm="arc") if t.seed == 0]
    )
    assert both["target_jumps"].nunique() == both["motion_seed"].nunique() == 1
    assert both["init_seed"].nunique() == 2


def test_ambient_targets_are_functions_of_the_position():
    from lrcore.experiments.sweep import prepare_task

    config = dataclasses.replace(UNTRAINED, manifolds=("ellipse:b=0.4",), seeds=(4,))
    for task in _tasks(config):
        setup = prepare_task(task, config)
        target = setup.target
        assert target.arm == task.arm
        if task.arm == "ambient":
            w = np.asarray(target.direction)
            assert w.shape == (2,)
            assert math.isclose(float(np.linalg.norm(w)), 1.0)
            projection = (setup.inputs @ w - target.origin) / target.extent
            if task.target == "smooth":
                expected = np.sin(2 * np.pi * target.frequency * projection + target.phase)
            else:
                expected = np.where(projection > target.steps[0], 1.0, -1.0)
        else:
            expected = target(setup.coordinate)
        np.testing.assert_allclose(setup.values, expected, atol=1e-12)
    # The ambient step cuts the data by a hyperplane through it: both sides are populated.
    step = prepare_task(_tasks(config, arm="ambient", target="step")[0], config)
    assert 0.2 < np.mean(step.values > 0) < 0.8


def test_runs_report_train_and_heldout_fit():
    config = dataclasses.replace(
        TINY, manifolds=("ellipse:b=0.5",), seeds=(0,), steps=40, heldout=96
    )
    from lrcore.experiments.sweep import prepare_task
    from lrcore.network import Network

    task = _tasks(config, arm="arc", target="smooth")[0]
    result = run_task(task, config, keep_weights=True)
    row = result["runs"].iloc[0]
    setup = prepare_task(task, config)
    assert setup.heldout_inputs.shape == (96, 2)
    assert not np.isin(setup.heldout_inputs[:, 0], setup.inputs[:, 0]).any()
    weights, biases = result["weights"]["final"]
    predicted = Network(weights, biases).forward(setup.heldout_inputs)[:, 0]
    heldout = float(np.mean((predicted - setup.heldout_values) ** 2))
    assert row["loss_heldout_final"] == pytest.approx(heldout, rel=1e-4, abs=1e-7)
    assert row["target_variance"] == pytest.approx(np.var(setup.heldout_values))
    assert row["fit_threshold"] == pytest.approx(config.fit_fraction * row["target_variance"])
    assert bool(row["fit_ok"]) == (row["loss_heldout_final"] <= row["fit_threshold"])
    assert row["loss_train_init"] > row["loss_train_final"]
    with pytest.raises(ValueError, match="fit_fraction"):
        StudyConfig(fit_fraction=0.0)
    with pytest.raises(ValueError, match="heldout"):
        StudyConfig(heldout=0)


def test_tables_carry_the_contract_columns():
    config = dataclasses.replace(
        UNTRAINED, manifolds=("ellipse:b=0.4", "torus:minor=0.35", "digit:digit=1"), seeds=(0,)
    )
    identity = {
        "run", "family", "manifold", "manifold_name", "arm", "target", "seed", "width",
        "depth", "contrast_name", "contrast", "constant_curvature",
    }  # fmt: skip
    windows_columns = identity | {
        "trajectory", "kind", "side", "direction", "closed", "window", "center", "curvature",
        "geodesic_curvature", "gaussian", "mean", "target_value", "target_bending",
        "target_slope", "dist_centre", "dist_origin", "near_step", "step", "density",
    }  # fmt: skip
    runs_columns = identity | {
        "init_seed", "target_phase", "target_frequency", "target_jumps", "motion_seed",
        "loss_train_init", "loss_train_final", "loss_heldout_final", "target_variance",
        "fit_threshold", "fit_ok", "cpu_seconds", "wall_seconds",
    }  # fmt: skip
    for task in make_tasks(config):
        result = run_task(task, config)
        windows, runs = result["windows"], result["runs"]
        assert windows_columns <= set(windows.columns)
        assert runs_columns <= set(runs.columns)
        assert identity <= set(result["convergence"].columns)
        assert windows["run"].nunique() == 1
        assert runs["run"].iloc[0] == windows["run"].iloc[0]
        kinds = windows.groupby("trajectory")[["kind", "side"]].first()
        assert set(map(tuple, kinds.to_numpy())) == {
            ("on", 0),
            ("offset", 1),
            ("offset", -1),
            ("line", 0),
        }
        if task.family == "surfaces":
            assert set(windows["direction"]) == {"u", "v", ""}
            on = windows[windows["kind"] == "on"]
            assert on["geodesic_curvature"].notna().all()
            assert on["gaussian"].notna().all()
        else:
            assert windows["geodesic_curvature"].isna().all()
        lines = windows[windows["kind"] == "line"]
        assert (lines["curvature"] == 0).all()
        convergence = result["convergence"]
        # The window curvature is resolved: at 2x the vertices it moves by < 1% of its max.
        assert (convergence["curvature_difference"] < 1e-2).all(), task.manifold
        assert (convergence["estimate_difference"] < 2e-2).all(), task.manifold


def test_arc_frequencies_share_no_factor_with_the_curvature_symmetry():
    from lrcore.experiments.sweep import DEFAULT_MANIFOLDS, build_manifold
    from lrcore.experiments.targets import draw_targets

    for spec in DEFAULT_MANIFOLDS["curves"] + DEFAULT_MANIFOLDS["images"]:
        manifold = build_manifold(spec)
        k = manifold.curvature_symmetry
        drawn = {
            draw_targets(
                "arc", np.random.default_rng(seed), k, frequencies=manifold.arc_frequencies
            )["smooth"].frequency
            for seed in range(40)
        }
        assert len(drawn) >= 2, spec  # random per seed
        assert all(math.gcd(int(f), k) == 1 for f in drawn) or k < 2, spec
    assert build_manifold("profile:amplitude=0.6").curvature_symmetry == 3
    assert build_manifold("ellipse:b=0.4").curvature_symmetry == 2
    # A series' circle draws its targets like the rest of the series.
    assert build_manifold("ellipse:b=1.0").curvature_symmetry == 2
    assert build_manifold("profile:amplitude=0.0").curvature_symmetry == 3


def test_targets_and_training_reject_bad_input():
    from lrcore.experiments.targets import Target, draw_targets
    from lrcore.experiments.training import build_mlp, train

    with pytest.raises(ValueError, match="arm"):
        Target("smooth", arm="chart")
    with pytest.raises(ValueError, match="direction"):
        Target("smooth", arm="ambient", direction=(1.0, 1.0))
    with pytest.raises(ValueError, match="frequency"):
        Target("smooth", frequency=0)
    with pytest.raises(ValueError, match="inputs"):
        draw_targets("ambient", np.random.default_rng(0))
    with pytest.raises(ValueError, match="frequencies"):
        draw_targets("arc", np.random.default_rng(0), symmetry=6, frequencies=(2, 3))
    x = np.zeros((4, 1))
    with pytest.raises(ValueError, match="schedule"):
        train(build_mlp(1, 2, 1, seed=0), x, x[:, 0], 1, schedule="linear")
    with pytest.raises(ValueError, match="distance"):
        Ellipse().trajectories(16)[0].offset(0.0)
