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
    table.loc[placebo, ["ratio_final", "ratio_final_lo", "ratio_final_hi"]] = [1.2, 1.1, 1.3]
    text = _report(tables, tmp_path, discontinuity=table)
    assert "1.20 [1.10, 1.30], a CI that excludes 1: the placebo fails" in text
    assert "placebo fails (CI excludes 1)" in text.split("## Primary")[0]  # the headline
    assert "the placebo holds" not in text
    bending = ["bending_ratio", "bending_ratio_lo", "bending_ratio_hi"]
    table.loc[placebo, bending] = [1.6, 1.4, 1.8]
    text = _report(tables, tmp_path, discontinuity=table)
    assert "bends 1.60 [1.40, 1.80] times as much as elsewhere, which can explain it" in text
    table.loc[placebo, bending] = [1.1, 0.9, 1.3]
    text = _report(tables, tmp_path, discontinuity=table)
    assert "a ratio not distinguishable from 1, so it does not explain it" in text
    table.loc[placebo, ["ratio_final", "ratio_final_lo", "ratio_final_hi"]] = [1.0, 0.9, 1.1]
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
