"""Statistics of the curvature study on data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("scipy")

from lrcore.experiments.analysis import (
    cluster_bootstrap_indices,
    correlation_table,
    discontinuity_table,
)
from lrcore.experiments.targets import Target
from lrcore.experiments.training import checkpoint_steps


def _changes(curvature, change, near, seeds=3):
    rows = []
    for seed in range(seeds):
        for i, (k, c, n) in enumerate(zip(curvature, change[seed], near)):
            rows.append(
                {
                    "family": "curves",
                    "manifold": "m",
                    "target": "smooth",
                    "width": 8,
                    "depth": 2,
                    "kind": "on",
                    "seed": seed,
                    "window": i,
                    "curvature": k,
                    "density_init": 1.0,
                    "density_final": 1.0 + c,
                    "change": c,
                    "near_step": n,
                }
            )
    return pd.DataFrame(rows)


def test_correlations_find_a_monotone_link_and_none_in_noise():
    rng = np.random.default_rng(0)
    curvature = np.linspace(0.1, 3.0, 40)
    near = np.zeros(40, dtype=bool)
    linked = _changes(curvature, [curvature**3 + 0.01 * rng.standard_normal(40)] * 3, near)
    row = correlation_table(linked, resamples=300).iloc[0]
    assert row["spearman"] == pytest.approx(1.0, abs=1e-3)
    assert row["spearman_lo"] > 0.95
    assert 0.8 < row["pearson"] < 1.0
    noise = _changes(curvature, rng.standard_normal((3, 40)), near)
    row = correlation_table(noise, resamples=300).iloc[0]
    assert row["spearman_lo"] < 0 < row["spearman_hi"]


def test_constant_curvature_gives_no_correlation():
    curvature = np.full(20, 2.0)
    frame = _changes(
        curvature, np.random.default_rng(1).standard_normal((3, 20)), np.zeros(20, bool)
    )
    row = correlation_table(frame, resamples=50).iloc[0]
    assert np.isnan(row["spearman"])
    assert row["note"] == "constant curvature"


def test_discontinuity_ratio_and_its_interval():
    near = np.arange(30) % 5 == 0
    change = np.where(near, 3.0, 1.0)[None, :] + 0.1 * np.random.default_rng(2).standard_normal(
        (3, 30)
    )
    frame = _changes(np.ones(30), change, near)
    row = discontinuity_table(frame, resamples=300).iloc[0]
    # final density 4 near the jumps, 2 elsewhere.
    assert row["ratio_final"] == pytest.approx(2.0, rel=0.05)
    assert row["ratio_final_lo"] < 2.0 < row["ratio_final_hi"]
    assert row["ratio_init"] == pytest.approx(1.0)
    assert row["excess_change"] == pytest.approx(2.0, rel=0.05)


def test_cluster_bootstrap_draws_whole_seeds_then_windows():
    clusters = np.repeat([10, 20, 30], 4)
    index = cluster_bootstrap_indices(clusters, 200, np.random.default_rng(0))
    assert index.shape == (200, 12)
    # Each block of 4 comes from one seed.
    blocks = clusters[index].reshape(200, 3, 4)
    assert np.all(blocks == blocks[:, :, :1])
    again = cluster_bootstrap_indices(clusters, 200, np.random.default_rng(0))
    np.testing.assert_array_equal(index, again)


def test_targets_and_checkpoints():
    target = Target("step", steps=(0.2, 0.6))
    np.testing.assert_array_equal(target(np.array([0.1, 0.3, 0.7])), [-1.0, 1.0, -1.0])
    smooth = Target("smooth", frequency=2)
    assert smooth(np.array([0.125]))[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="kind"):
        Target("wavy")
    with pytest.raises(ValueError, match="steps"):
        Target("step", steps=(0.6, 0.2))
    assert checkpoint_steps(10, 4) == [0, 2, 5, 8, 10]
    assert checkpoint_steps(0, 3) == [0]


def test_pooled_correlation_ignores_differences_between_manifolds():
    rng = np.random.default_rng(3)
    near = np.zeros(30, dtype=bool)
    # Within each manifold change and curvature are unrelated; between them, a larger
    # curvature goes with a larger change.
    small = _changes(rng.uniform(0, 1, 30), rng.standard_normal((3, 30)), near)
    large = _changes(rng.uniform(5, 6, 30), 10 + rng.standard_normal((3, 30)), near)
    large["manifold"] = "other"
    table = correlation_table(pd.concat([small, large], ignore_index=True), resamples=300)
    pooled = table[table["manifold"] == "all"].iloc[0]
    assert pooled["spearman_lo"] < 0 < pooled["spearman_hi"]
    assert abs(pooled["spearman"]) < 0.2
    # Without the standardisation the two manifolds alone would give a strong link.
    both = pd.concat([small, large])
    assert np.corrcoef(both["curvature"], both["change"])[0, 1] > 0.8


def test_partial_correlation_removes_a_shared_driver():
    rng = np.random.default_rng(4)
    driver = rng.uniform(0, 1, 40)
    curvature = driver + 0.05 * rng.standard_normal(40)
    change = np.array([driver**2 + 0.01 * rng.standard_normal(40) for _ in range(3)])
    frame = _changes(curvature, change, np.zeros(40, dtype=bool))
    frame["target_bending"] = np.tile(driver, 3)
    table = correlation_table(frame, resamples=300)
    row = table[table["measure"] == "curvature"].iloc[0]
    assert row["spearman"] > 0.8  # curvature follows the driver...
    assert abs(row["partial_spearman"]) < 0.3  # ...and carries nothing beyond it
    control = table[table["measure"] == "target_bending"].iloc[0]
    assert control["spearman_lo"] > 0.95


def test_target_bending_is_the_second_derivative_along_arc_length():
    from lrcore.experiments.manifolds import Circle, Helix
    from lrcore.experiments.sweep import _target_bending

    target = Target("smooth", frequency=2)
    for curve in (Circle(0.8), Helix(1.0, 0.3, 1.0)):
        trajectory = curve.trajectories(4000)[0]
        # f = sin(4π s / L): |f''| = (4π / L)² |sin(4π s / L)|.
        k = 4 * np.pi / curve.length
        exact = k**2 * np.abs(np.sin(k * trajectory.coordinate * curve.length))
        bend = _target_bending(trajectory, target)
        np.testing.assert_allclose(bend[1:-1], exact[1:-1], atol=1e-3 * k**2)
