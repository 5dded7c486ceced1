"""Statistics of the curvature study on synthetic tables with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("scipy")
pytest.importorskip("statsmodels")

from scipy import stats

from lrcore.experiments.analysis import (
    PRIMARY,
    analyse,
    density_changes,
    discontinuity_table,
    dose_response_table,
    heterogeneity_table,
    link_tests,
    mixed_model_table,
)
from lrcore.experiments.synthetic import synthetic_tables
from lrcore.experiments.targets import Target
from lrcore.experiments.training import checkpoint_steps

ELLIPSES = ("circle", "ellipse:b=0.7", "ellipse:b=0.4", "ellipse:b=0.2")


def _changes(**kwargs):
    return density_changes(synthetic_tables(**kwargs)["windows"])


def test_density_changes_pair_each_window_with_its_last_step():
    windows = synthetic_tables(seeds=2, windows=8, arms=("arc",))["windows"]
    shuffled = windows.sample(frac=1.0, random_state=0)
    changes = density_changes(shuffled).set_index(["run", "trajectory", "window"]).sort_index()
    init = windows[windows["step"] == 0].set_index(["run", "trajectory", "window"])
    final = windows[windows["step"] == 100].set_index(["run", "trajectory", "window"])
    np.testing.assert_allclose(
        changes["change"], (final["density"] - init["density"]).loc[changes.index]
    )
    assert len(changes) == len(init)


def test_link_tests_follow_the_seeds_and_never_pool_constant_curvature():
    changes = _changes(manifolds=ELLIPSES, seeds=6, windows=16, arms=("arc",), effect=0.3)
    tests, effects = link_tests(changes, resamples=199)
    on = tests[(tests["kind"] == "on") & (tests["measure"] == "curvature")]
    circle = on[on["manifold"] == "circle"]
    assert circle["note"].str.startswith("constant curvature").all()
    assert circle["p"].isna().all()
    assert not circle["in_family"].any()
    assert set(effects["manifold"]) == set(ELLIPSES[1:])
    primary = tests[tests["primary"]]
    assert len(primary) == 1
    row = primary.iloc[0]
    assert {k: row[k] for k in PRIMARY} == PRIMARY
    assert row["manifolds"] == 3
    assert row["seeds"] == 6
    assert row["p_method"].startswith("t-test")
    assert row["p"] == row["p_t"]
    # By hand: per seed the mean over the 3 ellipses of Fisher z of Spearman over windows.
    part = changes[
        (changes["kind"] == "on")
        & (changes["target"] == "smooth")
        & (changes["manifold"] != "circle")
    ]
    seed_z = part.groupby("seed").apply(
        lambda f: np.mean(
            [
                np.arctanh(stats.spearmanr(g["curvature"], g["change"]).statistic)
                for _, g in f.groupby("manifold")
            ]
        ),
        include_groups=False,
    )
    assert row["mean_z"] == pytest.approx(seed_z.mean())
    assert row["p_t"] == pytest.approx(stats.ttest_1samp(seed_z, 0.0).pvalue)
    assert row["conclusion"] == "link"
    # The family of tests: on-manifold curvature rows other than the primary, Holm-adjusted.
    family = tests[tests["in_family"]]
    assert not family["primary"].any()
    assert (family["kind"] == "on").all()
    assert (family["p_holm"] >= family["p"]).all()
    # Step targets leave the windows near their jumps out of the correlations.
    row = on.set_index(["manifold", "target"])["windows"]
    assert row[("ellipse:b=0.4", "step")] < row[("ellipse:b=0.4", "smooth")]


def test_no_planted_effect_gives_no_link_with_many_seeds_and_inconclusive_with_few():
    primary = {"arms": ("arc",), "targets": ("smooth",)}
    many = link_tests(_changes(manifolds=ELLIPSES, seeds=30, **primary), resamples=199)[0]
    few = link_tests(_changes(manifolds=ELLIPSES, seeds=3, windows=16, **primary), resamples=99)[0]
    assert many[many["primary"]].iloc[0]["conclusion"] == "no link"
    assert few[few["primary"]].iloc[0]["conclusion"] == "inconclusive"


def test_confounds_are_measured_in_the_data():
    tests, _ = link_tests(_changes(manifolds=ELLIPSES, seeds=3, windows=16), resamples=19)
    row = tests[(tests["manifold"] == "ellipse:b=0.2") & (tests["measure"] == "curvature")]
    # On an ellipse the curvature peaks where the curve is farthest from its centre.
    assert (row["confound_dist_centre"] > 0.9).all()


def test_unfit_runs_are_left_out_and_listed():
    data = synthetic_tables(
        manifolds=ELLIPSES, seeds=3, windows=16, targets=("step",), unfit=("ellipse:b=0.4",)
    )
    tables = analyse(**data, resamples=19)
    excluded = set(tables["fit"].loc[~tables["fit"]["fit_ok"], "run"])
    assert len(excluded) == 2  # seed 0 of ellipse:b=0.4 in 2 arms
    assert excluded.isdisjoint(tables["changes"]["run"])
    seeds = tables["seed_effects"]
    assert set(seeds[seeds["manifold"] == "ellipse:b=0.4"]["seed"]) == {1, 2}
    with pytest.raises(ValueError, match="fit_ok"):
        analyse(data["windows"], data["runs"].drop(columns="fit_ok"), data["convergence"])


def test_discontinuity_ratio_per_seed_and_the_placebo():
    changes = _changes(seeds=6, windows=16, arms=("arc",), jump_effect=3.0, placebo_effect=1.5)
    table = discontinuity_table(changes).set_index(["manifold", "target"])
    step, placebo = table.loc[("all", "step")], table.loc[("all", "smooth")]
    assert step["ratio_final_lo"] > 1
    assert placebo["ratio_final_lo"] > 1
    assert step["ratio_final"] > placebo["ratio_final"]
    assert step["ratio_init_lo"] < 1 < step["ratio_init_hi"]
    # By hand for one manifold: the geometric mean over seeds of near / elsewhere.
    on = changes[
        (changes["kind"] == "on")
        & (changes["manifold"] == "ellipse:b=0.4")
        & (changes["target"] == "step")
    ]
    ratios = on.groupby("seed").apply(
        lambda f: (
            f.loc[f["near_step"], "density_final"].mean()
            / f.loc[~f["near_step"], "density_final"].mean()
        ),
        include_groups=False,
    )
    row = table.loc[("ellipse:b=0.4", "step")]
    assert row["ratio_final"] == pytest.approx(math.exp(np.log(ratios).mean()))
    assert row["seeds"] == 6
    # Paired with the smooth run of the same seed (same positions): the jumps' own share.
    smooth = changes[
        (changes["kind"] == "on")
        & (changes["manifold"] == "ellipse:b=0.4")
        & (changes["target"] == "smooth")
    ]
    placebos = smooth.groupby("seed").apply(
        lambda f: (
            f.loc[f["near_step"], "density_final"].mean()
            / f.loc[~f["near_step"], "density_final"].mean()
        ),
        include_groups=False,
    )
    paired = math.exp(np.log(ratios / placebos).mean())
    assert row["ratio_vs_placebo"] == pytest.approx(paired)
    assert table.loc[("all", "step"), "ratio_vs_placebo_lo"] > 1
    # The smooth target bends about as much at these positions as elsewhere here.
    assert table.loc[("all", "smooth"), "bending_ratio_lo"] < 1.05
    none = discontinuity_table(_changes(seeds=6, windows=16, arms=("arc",)))
    placebo = none.set_index(["manifold", "target"]).loc[("all", "smooth")]
    assert placebo["ratio_final_lo"] < 1 < placebo["ratio_final_hi"]


def test_mixed_model_recovers_a_planted_slope_and_records_its_warnings():
    profiles = ("circle", "profile:amplitude=0.3", "profile:amplitude=0.9")
    changes = _changes(
        manifolds=profiles, seeds=10, windows=16, targets=("smooth",), effect={"arc": 0.4}
    )
    table = mixed_model_table(changes).set_index(["arm", "target"])
    planted, null = table.loc[("arc", "smooth")], table.loc[("ambient", "smooth")]
    assert planted["ci_lo"] > 0.1
    assert planted["manifolds"] == 2
    assert null["ci_lo"] < 0 < null["ci_hi"]
    assert table["converged"].all()
    assert table["warnings"].map(lambda w: isinstance(w, str)).all()
    assert (
        planted["predictors"]
        == "curvature, target_bending, target_value, dist_origin, density_init"
    )
    assert planted["random_effects"] == "seed (intercept, slope) + trajectory"
    assert planted["vif_curvature"] < 2
    assert planted["optimiser"] in ("lbfgs", "bfgs", "powell")
    # The distance to the data's centre, nearly a function of curvature on an ellipse,
    # is not a predictor: the planted effect is found there too.
    ellipses = mixed_model_table(
        _changes(manifolds=ELLIPSES, seeds=10, windows=16, arms=("arc",), effect=0.4)
    )
    assert (ellipses["ci_lo"] > 0.1).all()


def test_a_curvature_constant_along_each_path_is_not_correlated_with_rounding():
    # A torus's coordinate circles: |normal curvature| is constant along each, differs
    # between them, and its window means differ only by rounding.
    changes = _changes(manifolds=("ellipse:b=0.4",), seeds=6, windows=16, arms=("arc",))
    rng = np.random.default_rng(0)
    level = changes["seed"] + 1.0
    changes["curvature"] = level * (1 + 1e-16 * rng.standard_normal(len(changes)))
    tests, effects = link_tests(changes, resamples=19)
    row = tests[(tests["measure"] == "curvature") & (tests["kind"] == "on")].iloc[0]
    assert row["note"] == "curvature constant along every trajectory"
    assert np.isnan(row["p"])
    assert effects[effects["measure"] == "curvature"]["z"].isna().all()
    model = mixed_model_table(changes).iloc[0]
    assert model["note"] == "|curvature| constant along every trajectory"


def test_dose_response_finds_a_link_that_grows_with_contrast():
    effect = {"ellipse:b=0.7": 0.0, "ellipse:b=0.4": 0.25, "ellipse:b=0.2": 0.5}
    kwargs = {"manifolds": ELLIPSES, "seeds": 12, "windows": 16, "targets": ("smooth",)}
    grows = _changes(**kwargs, effect=effect)
    flat = _changes(**kwargs, effect=0.25)
    rows = {}
    for name, changes in (("grows", grows), ("flat", flat)):
        tests, effects = link_tests(changes, resamples=19)
        rows[name] = dose_response_table(tests, effects).set_index("arm")
    assert rows["grows"].loc["arc", "slope_lo"] > 0
    assert rows["grows"].loc["arc", "p_holm"] < 0.05
    assert rows["grows"].loc["arc", "excluded"] == "circle"
    assert rows["grows"].loc["arc", "spearman"] == pytest.approx(1.0)
    assert rows["flat"].loc["arc", "p_holm"] > 0.05


def test_heterogeneity_flags_manifolds_that_disagree():
    kwargs = {"manifolds": ELLIPSES, "seeds": 12, "windows": 16, "targets": ("smooth",)}
    kwargs["arms"] = ("arc",)
    split = {"ellipse:b=0.7": 0.5, "ellipse:b=0.4": -0.5, "ellipse:b=0.2": 0.0}
    same = heterogeneity_table(link_tests(_changes(**kwargs, effect=0.3), resamples=19)[0])
    apart = heterogeneity_table(link_tests(_changes(**kwargs, effect=split), resamples=19)[0])
    curvature = same["measure"] == "curvature"
    assert apart[curvature]["i2"].iloc[0] > 0.75 > same[curvature]["i2"].iloc[0]
    assert apart[curvature]["p_q"].iloc[0] < 0.001


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


def test_target_slope_is_the_first_derivative_along_arc_length():
    from lrcore.experiments.manifolds import Circle, Helix
    from lrcore.experiments.sweep import _slope

    target = Target("smooth", frequency=2)
    for curve in (Circle(0.8), Helix(1.0, 0.3, 1.0)):
        trajectory = curve.trajectories(4000)[0]
        # f = sin(4π s / L): |f'| = (4π / L) |cos(4π s / L)|, ends included.
        k = 4 * np.pi / curve.length
        exact = k * np.abs(np.cos(k * trajectory.coordinate * curve.length))
        slope = _slope(trajectory, target.values(trajectory.coordinate, trajectory.points))
        np.testing.assert_allclose(slope, exact, atol=2e-3 * k)


def test_one_primary_endpoint_even_with_two_architectures():
    data = synthetic_tables(manifolds=ELLIPSES, seeds=3, windows=8, arms=("arc",))
    other = data["windows"].assign(width=16, run=lambda f: f["run"] + "w16")
    changes = density_changes(pd.concat([data["windows"], other], ignore_index=True))
    tests, _ = link_tests(changes, resamples=9)
    assert tests["primary"].sum() == 1
    assert tests.loc[tests["primary"], "width"].iloc[0] == 8


def test_the_matched_placebo_holds_where_positions_only_carry_bending(tmp_path):
    # The smooth target bends more at the jump positions (they are drawn with a
    # probability that grows with its bending) and the trained density follows the
    # bending, nothing else: the unmatched placebo fails, the placebo matched on bending
    # holds, and the report says both.
    from lrcore.experiments.report import write_report

    data = synthetic_tables(
        manifolds=("ellipse:b=0.7", "ellipse:b=0.2"), seeds=12, windows=16, arms=("arc",)
    )
    windows = data["windows"].copy()
    rng = np.random.default_rng(3)
    smooth = (windows["target"] == "smooth") & (windows["kind"] == "on")
    bending = windows["target_bending"].to_numpy()
    at = smooth & (windows["step"] == 0)
    near = rng.random(len(windows)) < 0.6 * bending / 4
    windows.loc[at, "near_step"] = near[at.to_numpy()]
    key = ["run", "trajectory", "window"]
    flags = windows.loc[at, [*key, "near_step"]]
    windows = windows.drop(columns="near_step").merge(flags, on=key, how="left")
    windows["near_step"] = windows["near_step"].fillna(data["windows"]["near_step"]).astype(bool)
    final = smooth & (windows["step"] > 0)
    noise = 0.2 * rng.standard_normal(int(final.sum()))
    windows.loc[final, "density"] = 5 + windows.loc[final, "target_bending"] + noise
    tables = analyse(windows, data["runs"], data["convergence"], resamples=19)
    table = tables["discontinuity"]
    row = table[(table["manifold"] == "all") & (table["target"] == "smooth")].iloc[0]
    assert row["bending_ratio_lo"] > 1.2  # the positions carry bending
    assert row["ratio_final_lo"] > 1  # so the unmatched placebo fails
    assert row["placebo_final_lo"] < 1 < row["placebo_final_hi"]  # matched holds
    assert 0.95 < row["placebo_bending"] < 1.05  # and is balanced
    path = tmp_path / "report.md"
    text = write_report(path, {}, tables, [], 1.0).read_text()
    assert "matched on its bending)" in text
    assert "the placebo holds. Bending near over matched" in text
    assert "(balanced" in text
    assert "which can explain it" in text
