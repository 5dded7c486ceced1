"""The report's sentences follow the numbers: each reading is generated from the tables."""

from __future__ import annotations

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("scipy")
pytest.importorskip("statsmodels")

from lrcore.experiments.analysis import analyse, conclusion
from lrcore.experiments.report import write_report
from lrcore.experiments.synthetic import synthetic_tables

MANIFOLDS = ("circle", "ellipse:b=0.7", "ellipse:b=0.2", "profile:amplitude=0.9", "torus")


@pytest.fixture(scope="module")
def tables():
    data = synthetic_tables(manifolds=MANIFOLDS, seeds=6, windows=16, unfit=("ellipse:b=0.7",))
    return analyse(**data, resamples=99)


def _report(tables, tmp_path, **changes):
    """The report of ``tables`` with some tables replaced."""
    path = tmp_path / "report.md"
    return write_report(path, {"windows": 16}, {**tables, **changes}, [], 12.0).read_text()


def _with_primary(correlations, **values):
    out = correlations.copy()
    primary = out["primary"]
    for key, value in values.items():
        out.loc[primary, key] = value
    row = out[primary].iloc[0]
    out.loc[primary, "conclusion"] = conclusion(row["p_t"], row["p_tost"])
    return out


def test_equivalence_decides_whether_the_report_may_say_no_link(tables, tmp_path):
    correlations = tables["correlations"]
    failed = _report(
        tables, tmp_path, correlations=_with_primary(correlations, p_t=0.4, p_tost=0.3)
    )
    assert "Reading: inconclusive" in failed
    assert "equivalence is not shown" in failed
    assert "Reading: no link" not in failed
    assert "neither reproduced nor contradicted" in failed
    passed = _report(
        tables, tmp_path, correlations=_with_primary(correlations, p_t=0.4, p_tost=0.01)
    )
    assert "Reading: no link" in passed
    assert "equivalence is shown" in passed
    assert "Curvature: reproduced, and now shown" in passed
    link = _report(
        tables,
        tmp_path,
        correlations=_with_primary(correlations, p_t=0.001, p_tost=0.6, rho=0.35),
    )
    assert "Reading: the change of density follows |curvature| with a moderate positive" in link
    assert "Curvature: not reproduced" in link
    small = _report(
        tables,
        tmp_path,
        correlations=_with_primary(correlations, p_t=0.001, p_tost=0.01, rho=0.12),
    )
    assert "real, and small" in small


def test_a_placebo_whose_interval_excludes_one_is_reported(tables, tmp_path):
    table = tables["discontinuity"].copy()
    placebo = table["target"] == "smooth"
    matched = ["placebo_final", "placebo_final_lo", "placebo_final_hi"]
    unmatched = ["ratio_final", "ratio_final_lo", "ratio_final_hi"]
    table.loc[placebo, unmatched] = [1.2, 1.1, 1.3]
    table.loc[placebo, matched] = [1.25, 1.05, 1.5]
    text = _report(tables, tmp_path, discontinuity=table)
    assert "1.25 [1.05, 1.50] (p = " in text
    assert "the placebo fails, so density differs at these positions even where" in text
    assert "placebo fails at matched bending (CI excludes 1)" in text.split("## Primary")[0]
    assert "1.20 [1.10, 1.30], a CI that excludes 1: the placebo fails" in text
    assert "the placebo holds" not in text
    bending = ["bending_ratio", "bending_ratio_lo", "bending_ratio_hi"]
    table.loc[placebo, bending] = [1.6, 1.4, 1.8]
    text = _report(tables, tmp_path, discontinuity=table)
    assert "bends 1.60 [1.40, 1.80] times as much as elsewhere, which can explain it" in text
    table.loc[placebo, bending] = [1.1, 0.9, 1.3]
    text = _report(tables, tmp_path, discontinuity=table)
    assert "a ratio not distinguishable from 1, so it does not explain it" in text
    table.loc[placebo, matched] = [1.0, 0.9, 1.1]
    balance = ["placebo_bending", "placebo_bending_lo", "placebo_bending_hi"]
    table.loc[placebo, balance] = [1.3, 1.2, 1.4]
    text = _report(tables, tmp_path, discontinuity=table)
    assert "1.00 [0.90, 1.10] (p = " in text
    assert "a CI that contains 1: the placebo holds" in text
    assert "placebo holds at matched bending (CI contains 1)" in text.split("## Primary")[0]
    assert "(not balanced: the matching leaves a difference of bending" in text
    # Without the matched columns (older tables), the unmatched placebo is read.
    table = table.drop(columns=[*matched, *balance])
    table.loc[placebo, unmatched] = [1.0, 0.9, 1.1]
    text = _report(tables, tmp_path, discontinuity=table)
    assert "1.00 [0.90, 1.10], a CI that contains 1: the placebo holds" in text


def test_the_report_names_confounds_excluded_runs_and_every_section(tables, tmp_path):
    text = _report(tables, tmp_path)
    for heading in (
        "## Headline",
        "## Primary endpoint",
        "## Secondary tests (Holm-adjusted)",
        "## The two target arms",
        "## Heterogeneity across manifolds",
        "## Mixed models",
        "## Dose-response",
        "## Discontinuities of the target",
        "## Confounds",
        "## Fit",
        "## Compared with the 2022 study",
    ):
        assert heading in text
    assert "the distance to the data's centre (rho +" in text  # ellipses carry it
    assert "4 are excluded from every analysis" in text
    assert "ellipse:b=0.7|arc|smooth|s0|8x2" in text
    assert "Constant curvature, not tested and not pooled: circle" in text
    assert "in 12 s" in text
    # Every number in a sentence comes from a table: change one, the sentence changes.
    correlations = _with_primary(tables["correlations"], rho=0.051, rho_lo=-0.02, rho_hi=0.12)
    assert "rho = +0.05 [-0.02, +0.12]" in _report(tables, tmp_path, correlations=correlations)


def test_a_study_where_no_run_fits_still_writes_its_report(tmp_path):
    data = synthetic_tables(manifolds=("ellipse:b=0.2",), seeds=2, windows=8)
    data["runs"]["fit_ok"] = False
    tables = analyse(**data, resamples=9)
    assert tables["changes"].empty
    assert tables["correlations"].empty
    text = _report(tables, tmp_path)
    assert "No run fits its target, so nothing is analysed" in text
    assert "8 are excluded from every analysis" in text


def test_a_ratio_that_differs_from_one_before_training_is_read_by_its_side(tables, tmp_path):
    table = tables["discontinuity"].copy()
    step = table["target"] == "step"
    table.loc[step, ["ratio_final", "ratio_final_lo", "ratio_final_hi"]] = [11.0, 10.0, 12.0]
    table.loc[step, ["ratio_init", "ratio_init_lo", "ratio_init_hi"]] = [1.1, 1.05, 1.15]
    text = _report(tables, tmp_path, discontinuity=table)
    assert "(1.10 [1.05, 1.15]), so part of the difference predates training" in text
    table.loc[step, ["ratio_init", "ratio_init_lo", "ratio_init_hi"]] = [0.9, 0.85, 0.95]
    text = _report(tables, tmp_path, discontinuity=table)
    assert "on the other side of 1, so the difference after training is not inherited" in text
    assert "predates training" not in text


def test_a_negative_bending_control_is_read_against_the_target_slope(tmp_path):
    # Changes that follow the target's slope |df/ds| (a sinusoid is steepest where it
    # bends least): the bending control turns negative, and the report says why.
    import numpy as np

    data = synthetic_tables(
        manifolds=("ellipse:b=0.7", "ellipse:b=0.2"), seeds=6, windows=16, arms=("arc",),
        targets=("smooth",),
    )  # fmt: skip
    windows = data["windows"].copy()
    rng = np.random.default_rng(1)
    final = windows["step"] > 0
    noise = 0.3 * rng.standard_normal(int(final.sum()))
    windows.loc[final, "density"] = 5 + 2 * windows.loc[final, "target_slope"] + noise
    tables = analyse(windows, data["runs"], data["convergence"], resamples=99)
    text = _report(tables, tmp_path)
    assert "curves/arc/smooth, bending control rho -" in text
    assert "density moved to where the target is steep" in text
    # Changes that follow the bending: the control holds, no reading is needed.
    windows.loc[final, "density"] = 5 + windows.loc[final, "target_bending"] + noise
    tables = analyse(windows, data["runs"], data["convergence"], resamples=99)
    text = _report(tables, tmp_path)
    assert "1 of 1 groups show a positive link" in text
    assert "bending control rho" not in text


def _local_tube(gain: float, kappa_varies: bool = True):
    """A local tube table of 4 seeds x 2 families: on-manifold bins (|offset| < 0.05)
    multiplied by ``gain`` (times a seed factor) by training, more where curvature is
    higher when it varies."""
    rows = []
    for family in ("surfaces", "images"):
        for seed in range(4):
            run = f"{family}|arc|s{seed}"
            for point in range(5):
                kappa = 1.0 + point if kappa_varies and family == "surfaces" else 1.0
                for b, offset in enumerate((-0.15, -0.05, -0.025, 0.025, 0.05, 0.15)):
                    core = abs(offset) < 0.05
                    factor = gain * (1 + 0.05 * seed) * (1 + 0.1 * kappa) if core else 1.0
                    rows.append(
                        {
                            "run": run, "family": family, "arm": "arc", "target": "smooth",
                            "seed": seed, "manifold": family, "window": point,
                            "offset_bin": b, "offset": offset, "half_width": 0.2,
                            "curvature": kappa, "tube_init": 10.0,
                            "tube_final": 10.0 * factor,
                        }
                    )  # fmt: skip
    return pd.DataFrame(rows)


def _local_report(tables, tmp_path, local):
    """The report with a local tube table and its tables; and the concentration."""
    from lrcore.experiments.beyond import local_tube_tables

    profile, concentration = local_tube_tables(local)
    changes = {
        "local_tube": local,
        "local_tube_profile": profile,
        "local_tube_concentration": concentration,
    }
    return _report(tables, tmp_path, **changes), concentration


@pytest.mark.parametrize(
    ("gain", "reading"),
    [
        (2.0, "training gathers region boundaries on the manifold"),
        (0.4, "training pushes region boundaries off the manifold"),
    ],
)
def test_local_tube_section_reads_the_gain_from_its_interval(tables, tmp_path, gain, reading):
    local = _local_tube(gain)
    text, concentration = _local_report(tables, tmp_path, local)
    heading = "## Local complexity around curves in higher dimension, surfaces and image orbits"
    assert heading in text
    section = text.split(heading)[1].split("\n## ")[0]
    assert "2 manifolds" in section
    assert "8 runs (4 seeds)" in section
    pooled = concentration[concentration["arm"] == "all"].set_index("family")
    for family, name in (("surfaces", "surfaces"), ("images", "image orbits")):
        row = pooled.loc[family]
        gain_text = f"{row['gain']:.2f} [{row['gain_lo']:.2f}, {row['gain_hi']:.2f}]"
        assert f"- {name}, all arms and targets: " in section
        assert f"gain {gain_text}" in section
    assert section.count(reading) == 4  # pooled and per arm, both families
    other = {True: "pushes region boundaries off", False: "gathers region boundaries on"}
    assert other[gain > 1] not in section
    assert "neither shown" not in section
    # Curvature varies on the surface (the signed change grows with it), not on the orbit.
    assert "the change on the manifold is larger where it bends more" in section
    assert "the curvature is the same at all sample points: no curvature link" in section
    assert f"The gain's CI excludes 1 in 2 of 2 families (above 1 in {2 if gain > 1 else 0})" in (
        section
    )
    assert "| images | -0.75 |" in section  # the pooled profile, relative offsets
    # The profile changes in the 2 bands on the manifold only, up or down with the gain.
    moved = "rises in 2 and falls in 0" if gain > 1 else "rises in 0 and falls in 2"
    assert section.count(f"the density {moved} of 6 bands") == 2


def test_local_tube_section_says_neither_when_the_interval_holds_one(tables, tmp_path):
    local = _local_tube(1.0, kappa_varies=False)
    # Seeds scattered around 1: gains 0.8, 1.25, 0.9, 1.1 of the core.
    scale = local["seed"].map({0: 0.8, 1: 1.25, 2: 0.9, 3: 1.1})
    core = local["offset"].abs() < 0.05
    local.loc[core, "tube_final"] = local.loc[core, "tube_init"] * scale[core]
    text, _ = _local_report(tables, tmp_path, local)
    assert text.count("neither shown (the CI contains 1)") == 4
    assert "gathers region boundaries" not in text.split("(local tube maps)")[1].split("\n## ")[0]
    assert "The gain's CI excludes 1 in 0 of 2 families" in text
    # Without local maps (plane curves only, or --local-seeds 0) there is no section.
    assert "(local tube maps)" not in _report(tables, tmp_path)
