"""The study's markdown report: every sentence of interpretation is generated from the
numbers of the tables (:func:`.analysis.analyse`), one function per section.

The words for sizes come from :data:`.inference.STRENGTHS`, the equivalence margin from
:data:`.inference.EQUIVALENCE_RHO`, the primary endpoint from :data:`.analysis.PRIMARY`:
the report names them, it never restates them in fixed prose.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lrcore._optional import optional_import

from .analysis import CONFOUNDS, CONTROL, CONTROLS, MODEL_PREDICTORS, PERMUTATIONS, PRIMARY, RIVAL
from .inference import ALPHA, EQUIVALENCE_RHO, STRENGTHS, strength

__all__ = [
    "HETEROGENEITY",
    "markdown_table",
    "write_report",
]

#: I² bounds (Higgins et al. 2003) and the words for heterogeneity above them.
HETEROGENEITY: tuple[tuple[float, str], ...] = (
    (0.75, "high"),
    (0.5, "substantial"),
    (0.25, "moderate"),
)
#: |rho| of |curvature| with a covariate from which the report says an effect may carry it.
CONFOUND_RHO = 0.3
#: A variance inflation factor of |curvature| above which the report says the mixed model
#: separates it poorly from the other predictors.
VIF_ENTANGLED = 5.0
#: Conclusions (:func:`.analysis.conclusion`) that reject zero.
LINKS = ("link", "small link")
_NAMES = {
    "target_value": "the target's value",
    "target_bending": "the target's bending",
    "target_slope": "the target's slope",
    "dist_centre": "the distance to the data's centre",
    "dist_origin": "the distance to the network's origin",
    "density_init": "the initial density",
}


# -- formatting -----------------------------------------------------------------------
def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "-"
        return f"{value:.{digits}g}"
    return str(value)


def _p(value: float) -> str:
    """A p-value: ``p = 0.012``, ``p < 0.001``; with a fourth decimal where three would
    round it onto :data:`.inference.ALPHA`.

    Examples
    --------
    >>> _p(0.0123), _p(0.0004), _p(0.04996), _p(float("nan"))
    ('p = 0.012', 'p < 0.001', 'p = 0.0500', 'p = -')
    """
    if value is None or not np.isfinite(value):
        return "p = -"
    if value < 0.001:
        return "p < 0.001"
    digits = 3 if round(value, 3) != ALPHA or value == ALPHA else 4
    return f"p = {value:.{digits}f}"


def _interval(value: float, lo: float, hi: float, sign: bool = True) -> str:
    """``value [lo, hi]`` with two decimals, or more where two would show a bound that
    excludes the null value (0 for signed values, 1 for ratios) as equal to it.

    Examples
    --------
    >>> _interval(1.57, 1.001, 2.45, sign=False), _interval(0.1, -0.2, 0.3)
    ('1.570 [1.001, 2.450]', '+0.10 [-0.20, +0.30]')
    """
    if not np.isfinite(value):
        return "-"
    null = 0.0 if sign else 1.0
    digits = 2
    while digits < 6 and any(
        np.isfinite(b) and b != null and round(b, digits) == null for b in (lo, hi)
    ):
        digits += 1
    form = f"+.{digits}f" if sign else f".{digits}f"
    return f"{value:{form}} [{lo:{form}}, {hi:{form}}]"


def _rho(row: Any) -> str:
    """rho with its 95% CI (the seeds' mean Fisher z and its t interval, back-transformed)."""
    return _interval(row["rho"], row["rho_lo"], row["rho_hi"])


def _excludes(lo: float, hi: float, value: float) -> bool:
    return bool(np.isfinite(lo) and np.isfinite(hi) and (lo > value or hi < value))


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """A GitHub markdown table of ``rows`` (dicts) with the given columns.

    Examples
    --------
    >>> print(markdown_table([{"a": 1, "b": 0.5}], ["a", "b"]))
    | a | b |
    |---|---|
    | 1 | 0.5 |
    """
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def _records(frame: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = frame.to_dict("records")
    return out


def _label(row: Any, keys: Sequence[str] = ("family", "arm", "target")) -> str:
    return "/".join(str(row[k]) for k in keys)


def _direction(value: float) -> str:
    return "positive" if value > 0 else "negative"


def _words(row: Any) -> str:
    """The conclusion of a tested row in words, with its size."""
    size = f"{strength(row['rho'])} {_direction(row['rho'])}"
    if row["conclusion"] == "link":
        return f"a {size} link"
    if row["conclusion"] == "small link":
        return f"a {size} link, shown to be within |rho| < {EQUIVALENCE_RHO}"
    if row["conclusion"] == "no link":
        return f"no link (|rho| < {EQUIVALENCE_RHO} shown)"
    return "inconclusive"


def _confounds(row: Any) -> list[str]:
    """The covariates |curvature| correlates with at |rho| >= CONFOUND_RHO in this row."""
    out = []
    for name in CONFOUNDS:
        value = row.get(f"confound_{name}", math.nan)
        if isinstance(value, float) and np.isfinite(value) and abs(value) >= CONFOUND_RHO:
            out.append(f"{_NAMES[name]} (rho {value:+.2f})")
    return out


# -- sections -------------------------------------------------------------------------
def _primary_row(correlations: Any) -> Any | None:
    if correlations.empty:
        return None
    part = correlations[correlations["primary"]]
    return None if part.empty else part.iloc[0]


def _title_section(config: dict[str, Any], tables: dict[str, Any], seconds: float) -> list[str]:
    fit = tables["fit"]
    excluded = int((~fit["fit_ok"]).sum())
    return [
        "# Does training put linear regions where the data manifold curves?",
        "",
        (
            "Exact activation-region counts by lrcore (`count_1d`, float64) along trajectories "
            "on curves, surfaces and image orbits, before and after training small ReLU MLPs "
            "(PyTorch, float32, Adam, MSE) on smooth and discontinuous targets, in two target "
            f"arms. {len(fit)} training runs ({excluded} excluded for a poor fit) over "
            f"{fit['seed'].nunique()} seeds, in {seconds:.0f} s."
        ),
        "",
        *_timing_lines(tables),
    ]


def _timing_lines(tables: dict[str, Any]) -> list[str]:
    """The run time split into the tasks' CPU seconds (parallel) and this process's
    (serial), with what that makes on 2 quiet cores."""
    timings = tables.get("timings")
    if timings is None or len(timings) == 0:
        return []
    tasks = timings[timings["kind"] == "tasks"]
    steps = timings[timings["kind"] != "tasks"]
    parallel, serial = float(tasks["cpu_seconds"].sum()), float(steps["cpu_seconds"].sum())
    parts = ", ".join(
        f"{r['phase']} {int(r['tasks'])} tasks {r['cpu_seconds']:.0f} CPU-s"
        for r in _records(tasks)
    )
    return [
        (
            f"Run time: the training runs took {parallel:.0f} CPU-seconds ({parts}), the "
            f"statistics, tables and figures {serial:.0f} CPU-seconds in the main process: "
            f"about {(parallel / 2 + serial) / 60:.1f} minutes on 2 quiet cores."
        ),
        "",
    ]


def _headline_section(tables: dict[str, Any]) -> list[str]:
    """The headline table: primary endpoint, equivalence, dose-response, discontinuity."""
    rows = []
    primary = _primary_row(tables["correlations"])
    if primary is not None and np.isfinite(primary["rho"]):
        rows.append(
            {
                "result": "primary endpoint: rho(change, |curvature|)",
                "estimate [95% CI]": _rho(primary),
                "test": f"t-test {_p(primary['p_t'])}; TOST (|rho| < {EQUIVALENCE_RHO}) "
                f"{_p(primary['p_tost'])}",
                "reading": _words(primary),
            }
        )
    for row in _records(tables["dose_response"]) if not tables["dose_response"].empty else []:
        if not np.isfinite(row.get("slope", math.nan)) or row["target"] != "smooth":
            continue
        rows.append(
            {
                "result": f"dose-response {row['contrast_name']} ({_label(row)}, "
                f"|{row['measure']}|): slope of z",
                "estimate [95% CI]": _interval(row["slope"], row["slope_lo"], row["slope_hi"]),
                "test": f"slope t-test, Holm {_p(row['p_holm'])}",
                "reading": _dose_words(row),
            }
        )
    for row in _pooled_discontinuity(tables["discontinuity"]):
        role = "jumps" if row["target"] == "step" else "placebo (smooth target)"
        key = "ratio_final" if row["target"] == "step" else _placebo_key(row)
        reference = "windows of matched bending" if key == "placebo_final" else "elsewhere"
        rows.append(
            {
                "result": f"density near {role} / {reference} ({row['family']}/{row['arm']})",
                "estimate [95% CI]": _ratio(row, key),
                "test": f"t-test of log ratio {_p(row[f'p_{key}'])}",
                "reading": _ratio_words(row),
            }
        )
    if not rows:
        return []
    return [
        "## Headline",
        "",
        markdown_table(rows, ["result", "estimate [95% CI]", "test", "reading"]),
        "",
    ]


def _primary_section(tables: dict[str, Any]) -> list[str]:
    """The primary endpoint, named in advance, its estimate, tests and equivalence."""
    named = (
        f"Named before the data: the mean over seeds of the Fisher z of the Spearman "
        f"correlation, across windows, of the density change with |{PRIMARY['measure']}|, on "
        f"{PRIMARY['family']} (pooled over those whose curvature varies), "
        f"{PRIMARY['arm']} arm, {PRIMARY['target']} target, {PRIMARY['kind']}-manifold "
        f'trajectories; tested by a one-sample t-test across seeds; "no link" may be said '
        f"only if a TOST shows |rho| < {EQUIVALENCE_RHO}."
    )
    lines = ["## Primary endpoint", "", named, ""]
    row = _primary_row(tables["correlations"])
    if not tables["fit"]["fit_ok"].any():
        lines.append("- No run fits its target, so nothing is analysed (see Fit).")
        return [*lines, ""]
    if row is None or not np.isfinite(row["rho"]):
        lines.append(
            "- The primary endpoint could not be computed in this run: it needs at least two "
            f"{PRIMARY['family']} whose curvature varies, the {PRIMARY['arm']} arm and the "
            f"{PRIMARY['target']} target, with runs that fit."
        )
        return [*lines, ""]
    lines.append(
        f"- Estimate: rho = {_rho(row)} (mean z {_interval(row['mean_z'], row['z_lo'], row['z_hi'])}"
        f") over {int(row['seeds'])} seeds and {int(row['manifolds'])} manifolds; t-test "
        f"{_p(row['p_t'])}, Wilcoxon signed-rank {_p(row['p_wilcoxon'])}, circular-shift "
        f"permutation {_p(row['p_shift'])}."
    )
    shown = row["p_tost"] < ALPHA
    lines.append(
        f"- Equivalence (TOST, |rho| < {EQUIVALENCE_RHO}): {_p(row['p_tost'])}: equivalence "
        + ("is shown." if shown else "is not shown.")
    )
    if row["conclusion"] == "link":
        lines.append(
            f"- Reading: the change of density follows |curvature| with a {strength(row['rho'])} "
            f"{_direction(row['rho'])} correlation, distinguishable from zero."
        )
    elif row["conclusion"] == "small link":
        lines.append(
            f"- Reading: a {strength(row['rho'])} {_direction(row['rho'])} link, "
            "distinguishable from zero but shown to lie within "
            f"|rho| < {EQUIVALENCE_RHO}: real, and small."
        )
    elif row["conclusion"] == "no link":
        lines.append(
            "- Reading: no link: the correlation is shown to lie within "
            f"|rho| < {EQUIVALENCE_RHO} (its CI reaches at most "
            f"{max(abs(row['rho_lo']), abs(row['rho_hi'])):.2f})."
        )
    else:
        lines.append(
            "- Reading: inconclusive: the test of zero does not reject and equivalence is not "
            "shown, so this run supports neither a link nor its absence (more seeds would "
            "narrow the CI)."
        )
    lines += _primary_model_sentence(tables, row)
    others = [
        name
        for name, p in (("Wilcoxon", row["p_wilcoxon"]), ("circular shift", row["p_shift"]))
        if np.isfinite(p) and (p < ALPHA) != (row["p_t"] < ALPHA)
    ]
    if others:
        lines.append(
            f"- The {' and '.join(others)} test{'s' if len(others) > 1 else ''} "
            f"disagree{'' if len(others) > 1 else 's'} with the t-test at {ALPHA}: the "
            "result is fragile."
        )
    return [*lines, ""]


def _primary_model_sentence(tables: dict[str, Any], row: Any) -> list[str]:
    """How the mixed model of the primary endpoint's runs agrees with it."""
    models = tables["mixed_models"]
    if models.empty or "coef" not in models:
        return []
    keys = ("family", "arm", "target")
    match = models[np.logical_and.reduce([models[k] == PRIMARY[k] for k in keys])]
    match = match[match["coef"].notna()]
    if match.empty:
        return []
    model = match.iloc[0]
    slope = _interval(model["coef"], model["ci_lo"], model["ci_hi"])
    nonzero = _excludes(model["ci_lo"], model["ci_hi"], 0.0)
    text = (
        f"- Cross-check: the mixed model of the same runs, with the covariates held fixed, "
        f"gives a within-trajectory slope of {slope} SD per SD ({_p(model['p'])})"
    )
    if nonzero and row["conclusion"] == "no link":
        text += (
            f': a small slope distinguishable from zero, so "no link" here means no link '
            f"as large as |rho| = {EQUIVALENCE_RHO}, not none at all."
        )
    elif nonzero == (row["conclusion"] in LINKS):
        text += ", which agrees."
    else:
        text += ", which disagrees: the result depends on the method."
    return [text]


def _secondary_section(tables: dict[str, Any]) -> list[str]:
    """Holm-adjusted per-manifold and pooled tests, with their possible confounds."""
    correlations = tables["correlations"]
    lines = ["## Secondary tests (Holm-adjusted)", ""]
    if correlations.empty:
        return [*lines, "- No test could be computed.", ""]
    family = correlations[correlations["in_family"]]
    links = family[family["conclusion"].isin(LINKS)]
    equivalent = family[family["conclusion"] == "no link"]
    lines.append(
        f"- The family: {len(family)} tests of density change against a curvature measure "
        "on the manifold (every manifold, arm, target and measure, and the pooled family "
        f"rows; the primary endpoint excluded), Holm-adjusted at {ALPHA}. {len(links)} show "
        f"a link, {len(equivalent)} show equivalence within |rho| < {EQUIVALENCE_RHO} "
        f"(Holm-adjusted TOST), {len(family) - len(links) - len(equivalent)} are inconclusive."
    )
    for row in _records(links):
        carried = _confounds(row)
        lines.append(
            f"  - {row['manifold']} ({_label(row)}), |{row['measure']}|: rho = {_rho(row)}, "
            f"Holm {_p(row['p_holm'])} ({row['p_method']}): {_words(row)}"
            + (f"; it may carry {', '.join(carried)}." if carried else ".")
        )
    constant = correlations[correlations["constant_curvature"] & (correlations["kind"] == "on")][
        "manifold"
    ].unique()
    if len(constant):
        lines.append(
            f"- Constant curvature, not tested and not pooled: {', '.join(map(str, constant))}."
        )
    lines.append("")
    for name, part in family.groupby("family", sort=False):
        lines += [
            f"### {name}",
            "",
            markdown_table(
                [
                    {
                        **r,
                        "rho [95% CI]": _rho(r),
                        "reading": _words(r),
                        "may carry": "; ".join(_confounds(r)) or "-",
                    }
                    for r in _records(part)
                ],
                [
                    "manifold",
                    "arm",
                    "target",
                    "measure",
                    "seeds",
                    "rho [95% CI]",
                    "p",
                    "p_method",
                    "p_holm",
                    "p_tost_holm",
                    "reading",
                    "may carry",
                ],
            ),
            "",
        ]
    return lines


def _arms_section(tables: dict[str, Any]) -> list[str]:
    """What each target arm can show, and what it shows."""
    correlations = tables["correlations"]
    lines = [
        "## The two target arms",
        "",
        (
            "- The arc arm's targets are functions of a chart coordinate (arc length on "
            "curves): on a curve, curvature does not change what must be fitted along the "
            "trajectory, so a null is expected there by construction, and a link cannot come "
            "from the target; it would point to the geometry of the embedding or to a "
            "confound. (On a surface the chart coordinate need not follow a path's arc "
            "length, so there the data decide; see below.)"
        ),
        (
            "- The ambient arm's targets are functions of the input coordinates: along a "
            "curved path the function to fit bends with the path, so curvature changes what "
            "must be fitted; a link there may run through the target's bending (the mixed "
            "models hold that fixed)."
        ),
    ]
    if correlations.empty:
        return [*lines, ""]
    on = correlations[
        (correlations["kind"] == "on")
        & ~correlations["measure"].isin(CONTROLS)
        & correlations["p"].notna()
    ]
    found: dict[str, int] = {}
    for arm, part in on.groupby("arm", sort=False):
        links = part[part["conclusion"].isin(LINKS)]
        nulls = part[part["conclusion"] == "no link"]
        found[str(arm)] = len(links)
        lines.append(
            f"- In this run, {arm} arm: {len(links)} of {len(part)} curvature tests show a link "
            f"(after Holm where in the family), {len(nulls)} show equivalence to no link, "
            f"{len(part) - len(links) - len(nulls)} are inconclusive."
        )
    lines += _arc_arm_check(on)
    if "ambient" in found and "arc" in found:
        if found["ambient"] > found["arc"]:
            lines.append(
                "- The ambient arm shows more links than the arc arm, as expected if curvature "
                "acts through the function to be fitted along the path."
            )
        elif found["ambient"] < found["arc"]:
            lines.append(
                f"- The arc arm shows more links than the ambient arm ({found['arc']} against "
                f"{found['ambient']}): making curvature change the function to fit did not "
                "make links more frequent here."
            )
        elif found["ambient"] == found["arc"] == 0:
            lines.append(
                "- Neither arm shows a link in these tests: not even where curvature changes "
                "the function to fit, at this number of seeds."
            )
    return [*lines, ""]


def _arc_arm_check(on: Any) -> list[str]:
    """Whether the arc arm isolates geometry in the data: where its target's bending
    follows |curvature| after all (a surface's chart coordinate along a curved path), it
    does not, and its links there may carry the bending."""
    column = f"confound_{CONTROL}"
    arc = on[(on["arm"] == "arc") & (on["manifold"] != "all")]
    if arc.empty or column not in arc:
        return []
    bending = arc[arc[column].abs() >= CONFOUND_RHO]
    lines = []
    if len(bending):
        names = sorted(set(bending["manifold"]))
        lines.append(
            f"- In the data, the arc arm's target bending follows the curvature measure on "
            f"{len(names)} manifold(s) ({', '.join(names)}; |rho| >= {CONFOUND_RHO}): there "
            "the arc arm does not separate geometry from what must be fitted."
        )
    links = arc[arc["conclusion"].isin(LINKS)]
    if len(links):
        carried = links[links[column].abs() >= CONFOUND_RHO]
        lines.append(
            f"- The arc arm shows {len(links)} per-manifold link(s): {len(carried)} where its "
            "target's bending follows the curvature measure (they may carry it), "
            f"{len(links) - len(carried)} where it does not (not explained by what must be "
            "fitted; see the confounds)."
        )
    return lines


def _heterogeneity_words(i2: float) -> str:
    for bound, word in HETEROGENEITY:
        if i2 >= bound:
            return word
    return "low"


def _heterogeneity_section(tables: dict[str, Any]) -> list[str]:
    table = tables["heterogeneity"]
    lines = ["## Heterogeneity across manifolds", ""]
    if table.empty:
        return [*lines, "- Fewer than two manifolds with varying curvature per group.", ""]
    part = table[~table["measure"].isin(CONTROLS)]
    differ = part[part["p_q"] < ALPHA]
    lines.append(
        f"Cochran's Q and I² of the per-manifold mean z, per family, arm, target and measure: "
        f"{len(differ)} of {len(part)} groups show heterogeneity at {ALPHA} (Q test)"
        + (
            " (" + "; ".join(f"{_label(r)}, |{r['measure']}|" for r in _records(differ)) + ")"
            ", where a pooled estimate averages manifolds that disagree."
            if len(differ)
            else "."
        )
    )
    rows = [
        {
            **r,
            "Q": f"{r['q']:.2f}",
            "p": _p(r["p_q"])[4:],
            "I²": f"{100 * r['i2']:.0f}%",
            "heterogeneity": _heterogeneity_words(r["i2"]),
        }
        for r in _records(part)
    ]
    columns = ["family", "arm", "target", "measure", "manifolds", "Q", "df", "p", "I²"]
    return [*lines, "", markdown_table(rows, [*columns, "heterogeneity"]), ""]


_PREDICTOR_NAMES = {
    "curvature": "|curvature|",
    "target_bending": "|target bending|",
    "target_value": "target value",
    "dist_origin": "distance to the network's origin",
    "density_init": "initial density",
}
#: Phrases of statsmodels' MixedLM warnings and what they mean for the reader.
_FIT_TROUBLE = {
    "boundary": "a variance component estimated at zero (on the boundary)",
    "Hessian": "a Hessian that is not positive definite (standard errors less reliable)",
    "singular": "a singular random-effects covariance",
}


def _mixed_model_section(tables: dict[str, Any]) -> list[str]:
    table = tables["mixed_models"]
    lines = ["## Mixed models", ""]
    if table.empty:
        return [*lines, "- No model was fitted.", ""]
    names = " + ".join(_PREDICTOR_NAMES.get(p, p) for p in MODEL_PREDICTORS)
    lines.append(
        f"Per family, arm and target (statsmodels MixedLM, REML): change ~ {names}, each "
        "along the trajectory (deviation from its mean), + the trajectory's mean |curvature| "
        "(+ manifold); a random intercept and a random |curvature| slope per seed (so that "
        "the seeds, not the windows, carry the slope's uncertainty) and a variance "
        "component per trajectory; change and predictors standardised within each manifold."
    )
    lines.append("")
    fitted = table[table["coef"].notna()] if "coef" in table else table.iloc[:0]
    distinct = 0
    for row in _records(fitted):
        excludes = _excludes(row["ci_lo"], row["ci_hi"], 0.0)
        distinct += excludes
        lines.append(
            f"- {_label(row)}: the change moves by "
            f"{_interval(row['coef'], row['ci_lo'], row['ci_hi'])} SD per SD of |curvature| "
            f"along the trajectory, the others held fixed ({_p(row['p'])}): "
            + ("distinguishable from zero" if excludes else "not distinguishable from zero")
            + (f"; dropped (constant or missing): {row['dropped']}" if row["dropped"] else "")
            + (
                f"; |curvature| is entangled with the other predictors (VIF "
                f"{row['vif_curvature']:.1f}), so the model separates them poorly"
                if row["vif_curvature"] > VIF_ENTANGLED
                else ""
            )
            + (
                "; its Hessian is not positive definite, so this interval is less reliable"
                if "Hessian" in str(row["warnings"])
                else ""
            )
            + "."
        )
    if len(fitted):
        lines.append(
            f"- {distinct} of {len(fitted)} models give a curvature coefficient whose 95% CI "
            f"excludes zero (unadjusted; about {ALPHA * len(fitted):.1f} would by chance)."
        )
        unconverged = int((~fitted["converged"].astype(bool)).sum())
        other = int(fitted["attempts"].astype(bool).sum())
        trouble = [
            f"{int(fitted['warnings'].str.contains(key).sum())} with {words}"
            for key, words in _FIT_TROUBLE.items()
            if fitted["warnings"].str.contains(key).any()
        ]
        lines.append(
            f"- Convergence: {len(fitted) - unconverged} of {len(fitted)} fits converged"
            + (f", {other} only after another optimiser" if other else "")
            + (f"; {', '.join(trouble)}" if trouble else "; no warnings")
            + " (every warning is in `mixed_models.csv`)."
        )
    skipped = table[table["coef"].isna()] if "coef" in table else table
    for row in _records(skipped):
        lines.append(f"- {_label(row)}: no model ({row.get('note', '')}).")
    return [*lines, ""]


def _dose_words(row: Any) -> str:
    if not np.isfinite(row.get("p_holm", math.nan)):
        return "not tested"
    if row["p_holm"] < ALPHA:
        return f"the z {'rises' if row['slope'] > 0 else 'falls'} with contrast"
    return "no trend shown"


def _dose_section(tables: dict[str, Any]) -> list[str]:
    table = tables["dose_response"]
    lines = ["## Dose-response", ""]
    if table.empty:
        return [*lines, "- No dose-response series in this run.", ""]
    lines.append(
        "Dose: the coefficient of variation of a curvature measure's window means along a "
        "manifold's trajectories. Per seed, the slope of its z on the dose across a series' "
        "levels; the mean slope is tested across seeds (t-test, Holm across series)."
    )
    lines.append("")
    skipped: dict[str, list[str]] = {}
    for row in _records(table):
        if not np.isfinite(row.get("slope", math.nan)):
            skipped.setdefault(str(row.get("note", "")), []).append(
                f"{row['contrast_name']} ({_label(row)}, |{row['measure']}|)"
            )
            continue
        levels = int(row["levels"])
        smallest = 2 / math.factorial(levels)
        text = (
            f"- {row['contrast_name']} ({_label(row)}, |{row['measure']}|), levels "
            f"{row['contrasts']} "
            f"(doses {row['doses']}; mean z {row['mean_z']}"
            + (f"; left out: {row['excluded']}, constant curvature" if row["excluded"] else "")
            + f"): slope {_interval(row['slope'], row['slope_lo'], row['slope_hi'])} per unit "
            f"dose over {int(row['seeds'])} seeds, Holm {_p(row['p_holm'])}: "
            f"{_dose_words(row)}."
        )
        if levels >= 3:
            text += (
                f" Spearman of dose against mean z {row['spearman']:+.2f}, exact permutation "
                f"{_p(row['p_spearman'])}"
                + (
                    f" (with {levels} levels it cannot go below {smallest:.2f})."
                    if smallest > ALPHA
                    else "."
                )
            )
        lines.append(text)
    for note, series in skipped.items():
        lines.append(f"- Not tested, {note}: {', '.join(series)}.")
    return [*lines, ""]


def _pooled_discontinuity(table: Any) -> list[dict[str, Any]]:
    """Family-level rows (pooled, or the only manifold) of the discontinuity table."""
    if table.empty:
        return []
    pooled = table["manifold"] == "all"
    keys = ["family", "arm", "target", "width", "depth"]
    has_pool = table[pooled].set_index(keys).index
    alone = ~table.set_index(keys).index.isin(has_pool)
    return _records(table[pooled | alone])


def _ratio_words(row: Any) -> str:
    lo, hi = row["ratio_final_lo"], row["ratio_final_hi"]
    if row["target"] == "step":
        if lo > 1:
            return "higher near the jumps"
        if hi < 1:
            return "lower near the jumps"
        return "no difference shown"
    key = _placebo_key(row)
    lo, hi = row[f"{key}_lo"], row[f"{key}_hi"]
    matched = " at matched bending" if key == "placebo_final" else ""
    if _excludes(lo, hi, 1.0):
        return f"placebo fails{matched} (CI excludes 1)"
    return f"placebo holds{matched} (CI contains 1)"


def _placebo_key(row: Any) -> str:
    """The placebo's ratio: matched on the smooth target's bending where the table has
    it (``placebo_final``), else against all other windows (``ratio_final``)."""
    value = row.get("placebo_final", math.nan)
    return "placebo_final" if isinstance(value, float) and np.isfinite(value) else "ratio_final"


def _ratio(row: Any, name: str) -> str:
    return _interval(row[name], row[f"{name}_lo"], row[f"{name}_hi"], sign=False)


def _step_sentence(row: Any, where: str) -> str:
    text = (
        f"- {where}, step target: after training, density near the jumps over elsewhere "
        f"= {_ratio(row, 'ratio_final')} (geometric mean over {int(row['seeds'])} seeds, "
        f"{_p(row['p_ratio_final'])}): {_ratio_words(row)}."
    )
    if _excludes(row["ratio_init_lo"], row["ratio_init_hi"], 1.0):
        same_side = (row["ratio_init"] > 1) == (row["ratio_final"] > 1)
        text += (
            f" Before training the ratio already differs from 1 ({_ratio(row, 'ratio_init')})"
            + (
                ", so part of the difference predates training."
                if same_side
                else ", on the other side of 1, so the difference after training is not inherited."
            )
        )
    else:
        text += f" Before training: {_ratio(row, 'ratio_init')}, a CI that contains 1."
    if np.isfinite(row.get("ratio_vs_placebo", math.nan)):
        text += (
            f" Over the placebo's ratio at the same positions (same seeds): "
            f"{_ratio(row, 'ratio_vs_placebo')}"
            + (
                ", so the jumps add density beyond what the positions carry."
                if row["ratio_vs_placebo_lo"] > 1
                else ", so the jumps add no density shown beyond the positions'."
            )
        )
    return text


#: The matched placebo is balanced when the CI of its bending ratio lies within
#: 1 / (1 + BALANCE) to 1 + BALANCE.
BALANCE = 0.1


def _placebo_sentence(row: Any, where: str) -> str:
    if _placebo_key(row) == "ratio_final":
        return _unmatched_placebo_sentence(row, where)
    text = (
        f"- {where}, placebo (smooth target at the jump positions, against windows of the "
        f"same paths matched on its bending): {_ratio(row, 'placebo_final')}"
        f" ({_p(row['p_placebo_final'])})"
    )
    if _excludes(row["placebo_final_lo"], row["placebo_final_hi"], 1.0):
        text += (
            ", a CI that excludes 1: the placebo fails, so density differs at these "
            "positions even where the target bends as much, and part of the step target's "
            "ratio may not be due to the jumps."
        )
    else:
        text += ", a CI that contains 1: the placebo holds."
    lo, hi = row["placebo_bending_lo"], row["placebo_bending_hi"]
    balanced = lo >= 1 / (1 + BALANCE) and hi <= 1 + BALANCE
    text += f" Bending near over matched: {_ratio(row, 'placebo_bending')}" + (
        f" (balanced: the CI lies within {1 / (1 + BALANCE):.2f} to {1 + BALANCE:.2f})."
        if balanced
        else (
            " (not balanced: the matching leaves a difference of bending, "
            f"against {_ratio(row, 'bending_ratio')} unmatched)."
        )
    )
    if np.isfinite(row.get("placebo_init", math.nan)):
        text += f" Before training: {_ratio(row, 'placebo_init')}."
    unmatched = _unmatched_placebo_sentence(row, "").split(": ", 1)[-1]
    return text + f" Unmatched (against all other windows): {unmatched}"


def _unmatched_placebo_sentence(row: Any, where: str) -> str:
    head = f"- {where}, placebo (smooth target, same positions): {_ratio(row, 'ratio_final')}"
    if not _excludes(row["ratio_final_lo"], row["ratio_final_hi"], 1.0):
        return head + ", a CI that contains 1: the placebo holds."
    text = (
        head + ", a CI that excludes 1: the placebo fails, so density differs at these "
        "positions even without a jump, and part of the step target's ratio may not be due "
        "to the jumps."
    )
    if np.isfinite(row.get("bending_ratio", math.nan)):
        bends = _excludes(row["bending_ratio_lo"], row["bending_ratio_hi"], 1.0)
        more = row["bending_ratio"] > 1
        text += (
            f" There the smooth target bends {_ratio(row, 'bending_ratio')} times as much as "
            "elsewhere"
            + (
                ", which can explain it (a fit needs breakpoints where the target bends)."
                if bends and more == (row["ratio_final"] > 1)
                else (
                    ", the other way, so it does not explain it."
                    if bends
                    else ", a ratio not distinguishable from 1, so it does not explain it."
                )
            )
        )
    return text


def _discontinuity_section(tables: dict[str, Any]) -> list[str]:
    lines = ["## Discontinuities of the target", ""]
    rows = sorted(
        _pooled_discontinuity(tables["discontinuity"]),
        key=lambda r: (r["family"], r["arm"], r["target"] != "step"),
    )
    if not rows:
        return [*lines, "- No window near a jump position in this run.", ""]
    for row in rows:
        where = f"{row['family']}/{row['arm']} ({row['manifold']})"
        step = row["target"] == "step"
        lines.append(_step_sentence(row, where) if step else _placebo_sentence(row, where))
    return [*lines, ""]


#: |rho| above which the report calls |curvature| nearly a function of a covariate.
ENTANGLED_RHO = 0.8


def _confound_section(tables: dict[str, Any]) -> list[str]:
    correlations = tables["correlations"]
    lines = ["## Confounds", ""]
    if correlations.empty:
        return [*lines, ""]
    part = correlations[
        (correlations["kind"] == "on")
        & ~correlations["measure"].isin(CONTROLS)
        & (correlations["manifold"] != "all")
        & ~correlations["constant_curvature"]
    ]
    columns = [f"confound_{c}" for c in CONFOUNDS if f"confound_{c}" in part]
    lines.append(
        "Spearman correlation across windows (mean over seeds and trajectories) of each "
        "curvature measure with the covariates it could stand in for; a covariate with "
        f"|rho| >= {CONFOUND_RHO} in some arm and target is named: an effect on that "
        "manifold may carry it."
    )
    lines.append("")
    carried = 0
    for (manifold, measure), group in part.groupby(["manifold", "measure"], sort=False):
        named = []
        for column in columns:
            values = group[column].to_numpy(dtype=np.float64)
            big = np.isfinite(values) & (np.abs(values) >= CONFOUND_RHO)
            if big.any():
                lo, hi = np.nanmin(values), np.nanmax(values)
                span = (
                    f"{lo:+.2f}"
                    if math.isclose(lo, hi, abs_tol=0.005)
                    else f"{lo:+.2f} to {hi:+.2f}"
                )
                named.append(
                    f"{_NAMES[column.removeprefix('confound_')]} (rho {span}; "
                    f"{int(big.sum())} of {len(values)} arm/target groups)"
                )
        if named:
            carried += 1
            lines.append(f"- {manifold}, |{measure}|: {'; '.join(named)}.")
    if not carried:
        lines.append(
            f"- No manifold's curvature correlates with a covariate at |rho| >= {CONFOUND_RHO}."
        )
    if "confound_dist_centre" in part:
        curvature = part[part["measure"] == "curvature"]
        tied = curvature.groupby("manifold")["confound_dist_centre"].apply(
            lambda v: bool((v.abs() >= ENTANGLED_RHO).any())
        )
        tied = tied[tied]
        if len(tied):
            lines.append(
                f"- On {len(tied)} of {curvature['manifold'].nunique()} manifolds "
                f"({', '.join(tied.index)}) |curvature| is nearly a function of the distance "
                f"to the data's centre (|rho| >= {ENTANGLED_RHO}): intrinsic geometry that no "
                "design breaks, so an effect there cannot be told apart from one of that "
                "distance. The mixed models use the distance to the network's origin (which "
                "the random rigid motion decorrelates) instead."
            )
    lines += [
        "",
        markdown_table(_records(part), ["manifold", "measure", "arm", "target", *columns]),
        "",
    ]
    return lines


def _fit_section(tables: dict[str, Any], config: dict[str, Any]) -> list[str]:
    fit = tables["fit"]
    lines = ["## Fit", ""]
    fraction = config.get("fit_fraction")
    rule = (
        f"a run fits when its held-out MSE is at most {fraction} times the variance of its "
        "target on the held-out points"
        if fraction is not None
        else "a run fits when its held-out MSE is at most its `fit_threshold`"
    )
    excluded = fit[~fit["fit_ok"]]
    lines.append(
        f"- Rule: {rule}. {len(fit) - len(excluded)} of {len(fit)} runs fit; "
        + (
            f"{len(excluded)} are excluded from every analysis:"
            if len(excluded)
            else "none is excluded."
        )
    )
    if len(excluded):
        lines += [
            "",
            markdown_table(
                _records(excluded),
                ["run", "loss_train_final", "loss_heldout_final", "fit_threshold"],
            ),
        ]
    summary = (
        fit.groupby(["family", "manifold", "arm", "target"], sort=False)
        .agg(
            runs=("run", "size"),
            fit=("fit_ok", "sum"),
            train_median=("loss_train_final", "median"),
            heldout_median=("loss_heldout_final", "median"),
            heldout_max=("loss_heldout_final", "max"),
            threshold=("fit_threshold", "median"),
        )
        .reset_index()
    )
    lines += [
        "",
        "Final MSE per manifold, arm and target (every run: `fit.csv`):",
        "",
        markdown_table(_records(summary), list(summary.columns)),
        "",
    ]
    return lines


#: Relative change of a trajectory's breakpoint count at the finer resolution above which
#: the report names the trajectory as not converged.
RESOLUTION_TOLERANCE = 0.05


def _resolution_section(tables: dict[str, Any]) -> list[str]:
    convergence = tables["convergence"]
    if convergence is None or convergence.empty:
        return []
    rel = (convergence["fine_breakpoints"] - convergence["breakpoints"]).abs() / convergence[
        "fine_breakpoints"
    ].clip(lower=1)
    coarse = convergence[rel > RESOLUTION_TOLERANCE]
    worst = convergence.loc[rel.idxmax()]
    text = (
        f"- Counting the trained networks again along polylines with "
        f"{int(convergence['fine_resolution'].iloc[0])} instead of "
        f"{int(convergence['resolution'].iloc[0])} vertices changes the breakpoint count of a "
        f"trajectory by {100 * rel.median():.2f}% at the median, by more than 1% on "
        f"{int((rel > 0.01).sum())} of {len(rel)} trajectories and by at most "
        f"{100 * rel.max():.1f}% ({worst['manifold']}, {worst['trajectory']}, seed "
        f"{worst['seed']}); a window density changes by at most "
        f"{convergence['max_window_density_difference'].max():.3g} breakpoints per unit "
        "length. "
    )
    if coarse.empty:
        text += (
            f"Every trajectory is within {100 * RESOLUTION_TOLERANCE:.0f}%: the polylines are "
            "fine enough."
        )
    else:
        text += (
            f"{len(coarse)} trajectories change by more than {100 * RESOLUTION_TOLERANCE:.0f}% "
            "(their window densities are the least exact; raise --resolution to shrink this)."
        )
    lines = ["## Resolution check", "", text]
    if "curvature_difference" in convergence:
        lines.append(
            "- The window-mean curvature of a trajectory changes by at most "
            f"{100 * convergence['curvature_difference'].max():.2g}% of its largest value at "
            "the finer resolution."
        )
    return [*lines, ""]


def _control_reading(row: dict[str, Any], correlations: Any) -> str:
    """What a positive-control group without a positive link carries, from its numbers:
    the covariates its bending correlates with, its manifolds' spread, and whether the
    change follows the target's slope (:data:`.analysis.RIVAL`) instead."""
    keys = ["family", "arm", "target", "width", "depth", "kind"]
    same = np.ones(len(correlations), dtype=bool)
    for key in keys:
        same &= (correlations[key] == row[key]).to_numpy()
    per = correlations[same & (correlations["measure"] == CONTROL).to_numpy()]
    per = per[(per["manifold"] != "all") & per["rho"].notna()]
    text = f"- {_label(row)}, bending control rho {_rho(row)}:"
    if len(per) > 1:
        low, high = per.loc[per["rho"].idxmin()], per.loc[per["rho"].idxmax()]
        negative = per[(per["p"] < ALPHA) & (per["rho"] < 0)]
        text += (
            f" per manifold from {low['rho']:+.2f} ({low['manifold']}) to "
            f"{high['rho']:+.2f} ({high['manifold']}), significantly negative on "
            f"{len(negative)} of {len(per)};"
        )
    named = [n for n in _confounds(row) if not n.startswith(_NAMES[RIVAL])]
    text += (
        f" its bending correlates with {', '.join(named)}"
        if named
        else (
            " its bending correlates with no covariate (value, position, initial density) at "
            f"|rho| >= {CONFOUND_RHO}"
        )
    )
    rival = correlations[
        same & (correlations["measure"] == RIVAL).to_numpy() & (correlations["manifold"] == "all")
    ]
    tie = row.get(f"confound_{RIVAL}", math.nan)
    if rival.empty or not np.isfinite(rival.iloc[0]["rho"]) or not np.isfinite(tie):
        return text + "."
    other = rival.iloc[0]
    follows = other["p"] < ALPHA and _excludes(other["rho_lo"], other["rho_hi"], 0.0)
    explains = (
        follows
        and abs(tie) >= CONFOUND_RHO
        and np.sign(row["rho"]) == np.sign(tie) * np.sign(other["rho"])
    )
    text += (
        f". The change against the target's slope |df/ds|: rho {_rho(other)} "
        f"({_p(other['p'])}), with bending and slope correlated at {tie:+.2f} across windows"
    )
    if explains:
        where = "steep" if other["rho"] > 0 else "flat"
        return text + (
            f": density moved to where the target is {where}, and the bending control "
            "inherits the sign through its tie to the slope, so this group tests the slope, "
            "not a failure to detect a link."
        )
    return text + (
        ": the slope does not account for it."
        if not follows
        else ": the slope's link has the wrong sign to account for it."
    )


def _controls_section(tables: dict[str, Any], config: dict[str, Any]) -> list[str]:
    correlations = tables["correlations"]
    lines = ["## Controls", ""]
    if not correlations.empty:
        control = correlations[
            (correlations["measure"] == CONTROL)
            & (correlations["kind"] == "on")
            & (correlations["manifold"] == "all")
            & correlations["p"].notna()
        ]
        positive = (control["p"] < ALPHA) & (control["rho"] > 0)
        if len(control):
            others = [
                f"{_label(r)} (rho {_rho(r)}, {_p(r['p'])}"
                + (": the opposite sign" if r["p"] < ALPHA and r["rho"] < 0 else "")
                + ")"
                for r in _records(control[~positive])
            ]
            lines.append(
                "- Positive control, the change against the target's bending |d²f/ds²| "
                f"(pooled per family, arm and target): {int(positive.sum())} of {len(control)} "
                f"groups show a positive link at {ALPHA} (unadjusted)"
                + (
                    ", so the pipeline detects a link where one is expected."
                    if not others
                    else f"; none in {'; '.join(others)}."
                )
            )
            for row in _records(control[~positive]):
                lines.append(_control_reading(row, correlations))
        offsets = correlations[
            (correlations["kind"] == "offset")
            & (correlations["manifold"] == "all")
            & ~correlations["measure"].isin(CONTROLS)
            & correlations["p"].notna()
        ]
        if len(offsets):
            off_links = offsets[offsets["conclusion"].isin(LINKS)]
            lines.append(
                f"- Offset trajectories ({config.get('offset', '?')} off the manifold on both "
                "sides along its outward normal, with the curvature of the point they come "
                "from): "
                f"{len(off_links)} of {len(offsets)} pooled tests show a link (unadjusted)."
            )
    kinds = tables["kinds"]
    lines += [
        "",
        "Mean density (breakpoints per unit length) by trajectory kind:",
        "",
        markdown_table(_records(kinds), list(kinds.columns)),
        "",
    ]
    return lines


# -- measures beyond counts (issue 15) ------------------------------------------------------
def _table(tables: dict[str, Any], name: str) -> Any | None:
    frame = tables.get(name)
    return None if frame is None or len(frame) == 0 else frame


def _signed_interval(row: Any, name: str) -> str:
    return _interval(row[name], row[f"{name}_lo"], row[f"{name}_hi"])


def _slope_jump_section(tables: dict[str, Any]) -> list[str]:
    table = _table(tables, "slope_jumps")
    if table is None:
        return []
    lines = [
        "## Breakpoints weighted by the slope jump",
        "",
        (
            "Each breakpoint weighted by the jump of the network's slope along the path "
            "there, |Δ ∂f/∂s| (exact, from the affine maps on both sides), per unit length, "
            "after training; against the raw breakpoint density. Per run the Spearman "
            "correlation across on-manifold windows with the target's bending and with "
            "|curvature|; per seed the mean Fisher z; t intervals across seeds. "
            "'Difference' is the seeds' mean z of the weighted minus the raw density."
        ),
        "",
    ]
    for row in _records(table):
        if not (np.isfinite(row["rho_jumps"]) and row["seeds"] >= 2):
            continue  # a step target bends only at its jumps, which are left out
        jumps = _interval(row["rho_jumps"], row["rho_jumps_lo"], row["rho_jumps_hi"])
        counts = _interval(row["rho_counts"], row["rho_counts_lo"], row["rho_counts_hi"])
        diff = _signed_interval(row, "difference")
        if _excludes(row["difference_lo"], row["difference_hi"], 0.0):
            reading = (
                "the weighting follows it more closely"
                if row["difference"] > 0
                else "the weighting follows it less closely"
            )
        else:
            reading = "no difference shown"
        what = "the target's bending" if row["measure"] == CONTROL else "|curvature|"
        lines.append(
            f"- {_label(row)}, with {what}: slope-jump density rho {jumps} "
            f"({_p(row['p_jumps'])}), breakpoint density rho {counts} "
            f"({_p(row['p_counts'])}); difference in z {diff}: {reading}."
        )
    return [*lines, ""]


def _theory_section(tables: dict[str, Any]) -> list[str]:
    table = _table(tables, "theory_ratios")
    if table is None:
        return []
    lines = [
        "## Density at initialisation against theory (Hanin-Rolnick)",
        "",
        (
            "Expected breakpoints per unit length at initialisation: the sum over neurons of "
            "E[|∇z·t| δ(z)], estimated on each initialised network by integrating out each "
            "neuron's own bias (uniform, PyTorch's bound) at the trajectory's vertices; "
            "measured: the exact count. Per seed the geometric mean of measured / expected "
            "over runs, across seeds a t interval of the log."
        ),
        "",
    ]
    within = 0
    for row in _records(table):
        holds = not _excludes(row["ratio_lo"], row["ratio_hi"], 1.0)
        within += holds
        lines.append(
            f"- {row['family']}, {row['kind']} trajectories ({int(row['width'])}x"
            f"{int(row['depth'])}): measured {row['measured']:.3g}, expected "
            f"{row['expected']:.3g} per unit length; ratio {_ratio(row, 'ratio')} "
            f"({_p(row['p_ratio'])}): "
            + (
                "the theory's expectation holds."
                if holds
                else (
                    f"the networks have {'more' if row['ratio'] > 1 else 'fewer'} "
                    "breakpoints than expected."
                )
            )
        )
    spread = table["ratio"]
    lines.append(
        f"- In {within} of {len(table)} groups the CI contains 1; the ratios range from "
        f"{spread.min():.3f} to {spread.max():.3f}."
    )
    return [*lines, ""]


def _tube_section(tables: dict[str, Any]) -> list[str]:
    table = _table(tables, "tube_concentration")
    if table is None:
        return []
    tube = tables["tube"]
    lines = [
        "## Local complexity around plane curves (tube maps)",
        "",
        (
            "For plane curves the input is the plane: the exact partition (`slice_2d`) of a "
            "box around the curve gives the length of region boundaries per unit area in "
            "bins of (arc length, signed normal offset) within a tube of half-width "
            f"{tube['half_width'].min():.3g} to {tube['half_width'].max():.3g} (twice the "
            "offset, less where the curve bends sharply), before and after training, for "
            f"{tube['run'].nunique()} runs ({tube['seed'].nunique()} seeds). Concentration: "
            f"density within {CORE_WORD} of the half-width of the curve over density beyond "
            f"{RIM_WORD}; gain: after over before."
        ),
        "",
    ]
    for row in _records(table):
        gain = _ratio(row, "gain")
        if _excludes(row["gain_lo"], row["gain_hi"], 1.0):
            reading = (
                "training concentrates region boundaries on the curve"
                if row["gain"] > 1
                else "training moves region boundaries off the curve"
            )
        else:
            reading = "no change of concentration shown"
        link = _interval(row["link"], row["link_lo"], row["link_hi"])
        lines.append(
            f"- {row['arm']}/{row['target']}: concentration {row['before']:.2f} before, "
            f"{row['after']:.2f} after; gain {gain} ({_p(row['p_gain'])}, "
            f"{int(row['seeds'])} seeds): {reading}. Along the curve, the change on it "
            f"against |curvature|: rho {link} ({_p(row['p_link'])})."
        )
    profile = _table(tables, "tube_profile")
    if profile is not None:
        lines += [
            "",
            (
                "Profile (mean over bins, runs and windows) against the offset relative to the "
                "half-width:"
            ),
            "",
            markdown_table(
                _records(profile),
                ["arm", "target", "relative_offset", "tube_init", "tube_final", "change"],
            ),
        ]
    return [*lines, ""]


CORE_WORD = "a quarter"
RIM_WORD = "half"
#: How the local tube maps' section names each family.
LOCAL_FAMILIES = {
    "curves": "curves in higher dimension",
    "surfaces": "surfaces",
    "images": "image orbits",
}


def _span(values: Any, digits: int = 3) -> str:
    """``lo to hi`` of some values, or the one value when they are all equal."""
    lo, hi = float(np.min(values)), float(np.max(values))
    return f"{lo:.{digits}g}" if lo == hi else f"{lo:.{digits}g} to {hi:.{digits}g}"


def _count(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _two(value: float) -> str:
    """A concentration with two decimals ("-" when undefined)."""
    return f"{value:.2f}" if np.isfinite(value) else "-"


def _profile_words(family: str, part: Any) -> str:
    """Where the pooled profile's change is shown (per band, its t interval across seeds)
    and where it is largest and smallest."""
    rows = _records(part)
    up = sum(_excludes(r["change_lo"], r["change_hi"], 0.0) and r["change"] > 0 for r in rows)
    down = sum(_excludes(r["change_lo"], r["change_hi"], 0.0) and r["change"] < 0 for r in rows)
    top = max(rows, key=lambda r: r["change"])
    low = min(rows, key=lambda r: r["change"])

    def side(r: dict[str, Any]) -> str:
        return "on the normal's side" if r["relative_offset"] > 0 else "on the other side"

    return (
        f"- {LOCAL_FAMILIES.get(family, family)}: the density rises in {up} and falls in "
        f"{down} of {len(rows)} bands (CI across seeds excluding 0); the largest change, "
        f"{_interval(top['change'], top['change_lo'], top['change_hi'])}, at relative "
        f"offset {top['relative_offset']:+.2f} ({side(top)}), the smallest, "
        f"{_interval(low['change'], low['change_lo'], low['change_hi'])}, at "
        f"{low['relative_offset']:+.2f} ({side(low)})."
    )


def _gain_words(row: Any, where: str) -> str:
    """What the gain's CI says: gathered on, pushed off, or neither."""
    if not (np.isfinite(row["gain_lo"]) and np.isfinite(row["gain_hi"])):
        return f"no interval ({_count(int(row['seeds']), 'seed')} with a finite gain; 3 needed)"
    if _excludes(row["gain_lo"], row["gain_hi"], 1.0):
        if row["gain"] > 1:
            return f"training gathers region boundaries on the {where}"
        return f"training pushes region boundaries off the {where}"
    return "neither shown (the CI contains 1)"


def _local_link_words(row: Any) -> str:
    """The curvature link across a run's sample points, in words."""
    if int(row.get("link_seeds", 0)) == 0:
        return "the curvature is the same at all sample points: no curvature link."
    if not np.isfinite(row["link"]) or not np.isfinite(row["link_lo"]):
        return f"too few seeds ({int(row['link_seeds'])}; 3 needed) for the curvature link."
    link = _interval(row["link"], row["link_lo"], row["link_hi"])
    if _excludes(row["link_lo"], row["link_hi"], 0.0):
        reading = (
            "the change on the manifold is larger where it bends more"
            if row["link"] > 0
            else "the change on the manifold is larger where it bends less"
        )
    else:
        reading = "no link shown"
    return (
        f"across the sample points, the change on the manifold against |curvature|: rho "
        f"{link} ({_p(row['p_link'])}, {_count(int(row['link_seeds']), 'seed')}): {reading}."
    )


def _local_tube_section(tables: dict[str, Any], figures: Sequence[Path] = ()) -> list[str]:
    table = _table(tables, "local_tube_concentration")
    if table is None:
        return []
    local = tables["local_tube"]
    families = [LOCAL_FAMILIES.get(f, f) for f in dict.fromkeys(local["family"])]
    per_run = local.groupby("run")["window"].nunique()
    lines = [
        (
            "## Local complexity around curves in higher dimension, surfaces and image orbits "
            "(local tube maps)"
        ),
        "",
        (
            f"For the manifolds that are not plane curves ({', '.join(families)}: "
            f"{local['manifold'].nunique()} manifolds), the exact partition (`slice_2d`) of "
            "the plane spanned by an on-manifold trajectory's tangent and the normal its "
            f"offset trajectories use, at {_span(per_run)} sample points per run, gives the length of region boundaries per unit area in "
            f"{local['offset_bin'].nunique()} bands of signed normal offset, within a box of "
            f"half-width {_span(local['half_width'])} (as the plane curves' tube) and half that along the tangent, before and after "
            f"training, for {_count(local['run'].nunique(), 'run')} "
            f"({_count(local['seed'].nunique(), 'seed')}). "
            f"Concentration: density within {CORE_WORD} of the half-width of the manifold "
            f"over density beyond {RIM_WORD}; gain: after over before, per seed the "
            "geometric mean over its runs, across seeds a t interval of the log."
        ),
        "",
    ]
    pooled = table[table["arm"] == "all"]
    for row in _records(pooled):
        name = LOCAL_FAMILIES.get(row["family"], row["family"])
        lines.append(
            f"- {name}, all arms and targets: concentration {_two(row['before'])} before, "
            f"{_two(row['after'])} after; gain {_ratio(row, 'gain')} ({_p(row['p_gain'])}, "
            f"{_count(int(row['seeds']), 'seed')}, {_count(int(row['runs']), 'run')}): "
            f"{_gain_words(row, 'manifold')}; {_local_link_words(row)}"
        )
    gathered = [r for r in _records(pooled) if _excludes(r["gain_lo"], r["gain_hi"], 1.0)]
    lines.append(
        f"- The gain's CI excludes 1 in {len(gathered)} of {len(pooled)} families "
        f"(above 1 in {sum(r['gain'] > 1 for r in gathered)})."
    )
    lines += ["", "Per arm and target:", ""]
    for row in _records(table[table["arm"] != "all"]):
        name = LOCAL_FAMILIES.get(row["family"], row["family"])
        lines.append(
            f"- {name}, {row['arm']}/{row['target']}: concentration {_two(row['before'])} "
            f"before, {_two(row['after'])} after; gain {_ratio(row, 'gain')} "
            f"({_p(row['p_gain'])}, {_count(int(row['seeds']), 'seed')}): "
            f"{_gain_words(row, 'manifold')}; {_local_link_words(row)}"
        )
    profile = _table(tables, "local_tube_profile")
    if profile is not None:
        part = profile[profile["arm"] == "all"]
        lines += [
            "",
            (
                "Profile (pooled over arms, targets, runs and sample points) against the "
                "offset relative to the half-width (positive: on the side of the normal, "
                "outward); change_lo, change_hi: the t interval across seeds of the change:"
            ),
            "",
            *[_profile_words(f, g) for f, g in part.groupby("family", sort=False)],
            "",
            markdown_table(
                _records(part),
                [
                    "family",
                    "relative_offset",
                    "tube_init",
                    "tube_final",
                    "change",
                    "change_lo",
                    "change_hi",
                ],
            ),
        ]
    shown = [p for p in figures if p.name == "local_tube_profile.png"]
    if shown:
        lines += ["", f"![{shown[0].stem}]({shown[0].name})"]
    return [*lines, ""]


def _architecture_section(tables: dict[str, Any]) -> list[str]:
    table = _table(tables, "architectures")
    if table is None:
        return []
    archs = table[table["width"] > 0]
    lines = [
        "## Architectures",
        "",
        (
            "Widths x depths on a subset of curves (arc arm, smooth target): runs, fit, "
            "on-manifold density per unit length and per neuron before and after training, "
            "and the curvature link pooled like the primary endpoint."
        ),
        "",
        markdown_table(
            _records(archs),
            [
                "width",
                "depth",
                "neurons",
                "runs",
                "fit_rate",
                "density_init",
                "density_final",
                "per_neuron_init",
                "per_neuron_final",
                "rho",
                "rho_lo",
                "rho_hi",
                "p_t",
            ],
        ),
        "",
    ]
    ok = archs.dropna(subset=["per_neuron_final"])
    if len(ok) > 1:
        stats = optional_import("scipy.stats", "experiments")
        lines.append(
            "- Density per neuron after training ranges from "
            f"{ok['per_neuron_final'].min():.3g} to {ok['per_neuron_final'].max():.3g} "
            f"(before: {ok['per_neuron_init'].min():.3g} to {ok['per_neuron_init'].max():.3g});"
            " its Spearman correlation with the number of neurons across the "
            f"{len(ok)} architectures is {stats.spearmanr(ok['neurons'], ok['per_neuron_final'])[0]:+.2f}"
            f" after and {stats.spearmanr(ok['neurons'], ok['per_neuron_init'])[0]:+.2f} before "
            f"training; fit in {ok['fit_rate'].min():.0%} to {ok['fit_rate'].max():.0%} of runs."
        )
        links = ok[ok["p_t"] < ALPHA]
        lines.append(
            f"- The curvature link differs from 0 (t-test, unadjusted) in {len(links)} of "
            f"{len(ok)} architectures; rho from {ok['rho'].min():+.2f} to "
            f"{ok['rho'].max():+.2f}."
        )
    trend = table[table["width"] == 0]
    if len(trend) and np.isfinite(trend.iloc[0]["slope"]):
        row = trend.iloc[0]
        shown = _excludes(row["slope_lo"], row["slope_hi"], 0.0)
        lines.append(
            f"- Trend with size: per seed the slope of z on log2(neurons) is "
            f"{_signed_interval(row, 'slope')} ({_p(row['p_slope'])}, "
            f"{int(row['seeds'])} seeds): "
            + (
                f"the link {'grows' if row['slope'] > 0 else 'falls'} with size."
                if shown
                else "no trend with size shown."
            )
        )
    return [*lines, ""]


def _shape_words(values: Any, tolerance: float) -> str:
    """The moves of a series (rises and falls beyond ``tolerance`` of its mean), merged."""
    moves: list[str] = []
    level = float(values[0])
    for value in values[1:]:
        if abs(value - level) <= tolerance:
            continue
        move = "rise" if value > level else "fall"
        if not moves or moves[-1] != move:
            moves.append(move)
        level = float(value)
    return ", ".join(moves) if moves else "no change"


def _dynamics_section(tables: dict[str, Any], config: dict[str, Any]) -> list[str]:
    table = _table(tables, "dynamics")
    if table is None:
        return []
    factor = config.get("dynamics_factor", "?")
    default_steps = config.get("steps")
    lines = [
        "## Training dynamics",
        "",
        (
            f"{factor} times the study's {default_steps} steps "
            f"({int(table['step'].max())}) on "
            f"{', '.join(config.get('dynamics_manifolds', ()))} (arc arm, smooth target, "
            f"{int(table['runs'].max())} runs that fit), measured at {len(table) - 1} "
            "checkpoints after initialisation; mean over seeds with t intervals."
        ),
        "",
    ]
    density = table["density"].to_numpy(np.float64)
    peak = int(np.argmax(density))
    shape = _shape_words(density, 0.05 * float(np.mean(density)))
    lines.append(
        f"- On-manifold density: {density[0]:.3g} at initialisation, highest "
        f"{density[peak]:.3g} at step {int(table['step'].iloc[peak])}, "
        f"{density[-1]:.3g} at the end; its moves (beyond 5% of its mean): "
        f"{shape}"
        + (
            " (the descent-ascent-descent of local complexity that Humayun et al. report "
            + ("is seen here)." if "fall, rise, fall" in shape else "is not seen here).")
        )
    )
    if "jump_density" in table and table["jump_density"].notna().any():
        jump = table["jump_density"].to_numpy(np.float64)
        lines.append(
            f"- Slope-jump density: {jump[0]:.3g} at initialisation, {jump[-1]:.3g} at the "
            f"end; its moves: {_shape_words(jump, 0.05 * float(np.nanmean(jump)))}."
        )
    linked = table[table["step"] > 0].dropna(subset=["rho"])
    if len(linked):
        at_default = linked[linked["step"] == default_steps]
        last = linked.iloc[-1]
        text = "- Curvature link of the change so far: "
        if len(at_default):
            row = at_default.iloc[0]
            text += f"rho {_rho(row)} at step {default_steps} (the default length), "
        text += f"{_rho(last)} at step {int(last['step'])}"
        shown = linked[(linked["rho_lo"] > 0) | (linked["rho_hi"] < 0)]
        text += f"; its CI excludes 0 at {len(shown)} of {len(linked)} checkpoints" + (
            f" (from step {int(shown['step'].min())})." if len(shown) else "."
        )
        lines.append(text)
    return [*lines, ""]


def _comparison_section(tables: dict[str, Any]) -> list[str]:
    lines = [
        "## Compared with the 2022 study",
        "",
        (
            "The 2022 study reported no clear link between the change of region density and "
            "curvature, and a rise of density at discontinuities of the target."
        ),
        "",
    ]
    row = _primary_row(tables["correlations"])
    if row is None or not np.isfinite(row["rho"]):
        lines.append("- Curvature: not compared (no primary endpoint in this run).")
    elif row["conclusion"] == "no link":
        lines.append(
            "- Curvature: reproduced, and now shown: the primary endpoint is equivalent to no "
            f"link within |rho| < {EQUIVALENCE_RHO}."
        )
    elif row["conclusion"] == "link":
        lines.append(
            f"- Curvature: not reproduced: the primary endpoint shows a {strength(row['rho'])} "
            f"{_direction(row['rho'])} link (rho {_rho(row)})."
        )
    elif row["conclusion"] == "small link":
        lines.append(
            f"- Curvature: refined: the primary endpoint shows a link (rho {_rho(row)}), but "
            f"one shown to be smaller than |rho| = {EQUIVALENCE_RHO}."
        )
    else:
        lines.append(
            "- Curvature: neither reproduced nor contradicted: no link is detected, but its "
            "absence is not shown either (equivalence fails)."
        )
    steps = [r for r in _pooled_discontinuity(tables["discontinuity"]) if r["target"] == "step"]
    if steps:
        raised = [r for r in steps if r["ratio_final_lo"] > 1]
        lines.append(
            f"- Discontinuities: {'reproduced' if len(raised) == len(steps) else 'partly reproduced' if raised else 'not reproduced'}"
            f": in {len(raised)} of {len(steps)} family/arm groups the density near the jumps "
            "is higher than elsewhere with a CI above 1."
        )
    return [*lines, ""]


def _figures_section(figures: Sequence[Path]) -> list[str]:
    return ["## Figures", "", *[f"![{p.stem}]({p.name})" for p in figures], ""]


def _method_section(config: dict[str, Any]) -> list[str]:
    words = ", ".join(f"{word} from |rho| >= {bound}" for bound, word in reversed(STRENGTHS))
    return [
        "## Method",
        "",
        (
            f"- Density: exact breakpoints per unit arc length in {config.get('windows')} equal "
            "windows per trajectory, at initialisation, at checkpoints and after training; "
            "curvature of a window: the mean of |kappa| of the trajectory (curves and orbits: "
            "the curve's; surfaces: the normal curvature |II(t, t)| of the path, besides its "
            "geodesic curvature and |K|, |H|)."
        ),
        (
            "- Unit of inference: the seed. Per seed and trajectory, Spearman's rho of the "
            "change with |curvature| across windows, as Fisher z, averaged over a seed's "
            "trajectories (and manifolds, each with one vote, for pooled rows); across seeds "
            "the mean z with a t interval (reported back as rho), the one-sample t-test and "
            "the Wilcoxon signed-rank test (scipy.stats). For a step target the windows near "
            "a jump are left out of the curvature correlations."
        ),
        (
            "- Circular-shift permutation test (closed trajectories): each seed's change "
            "series is rotated along its loop by a random offset relative to curvature, "
            f"B = {config.get('permutations', PERMUTATIONS)} times; p = (1 + #{{|T*| >= |T|}}) "
            "/ (B + 1). It keeps the autocorrelation along the loop (which makes windows "
            "dependent) and breaks only the alignment with curvature. Trajectories that are "
            "not closed are tested by the t-test across seeds alone."
        ),
        (
            f"- Multiplicity: Holm across the family of on-manifold curvature tests; the "
            f"primary endpoint is tested alone. Equivalence: TOST on the Fisher-z scale with "
            f"bounds +-artanh({EQUIVALENCE_RHO}) (statsmodels), seeds as units. Words for "
            f"sizes: {words}; below the smallest, negligible."
        ),
        (
            "- Heterogeneity: Cochran's Q and I² of the per-manifold mean z (statsmodels "
            "combine_effects). Mixed models: statsmodels MixedLM (see above). Discontinuity: "
            "per seed the ratio of mean trained density near the jump positions to elsewhere; "
            "geometric mean over seeds with a t interval of the log ratio."
        ),
        f"- Configuration: `{config}`",
        "",
    ]


def write_report(
    path: Path,
    config: dict[str, Any],
    tables: dict[str, Any],
    figures: Sequence[Path],
    seconds: float,
) -> Path:
    """Write ``report.md`` from the study's tables (:func:`.analysis.analyse`) and figures.

    Parameters
    ----------
    path
        The file to write.
    config
        The study's configuration as plain data (``StudyConfig.as_dict()``).
    tables
        The tables of :func:`.analysis.analyse`.
    figures
        PNG files to show.
    seconds
        The run time.

    Examples
    --------
    >>> import tempfile
    >>> from lrcore.experiments.analysis import analyse
    >>> from lrcore.experiments.synthetic import synthetic_tables
    >>> data = synthetic_tables(seeds=3, windows=8, arms=("arc",), targets=("smooth",))
    >>> tables = analyse(**data, resamples=9)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     text = write_report(Path(folder) / "report.md", {}, tables, [], 1.0).read_text()
    >>> "## Primary endpoint" in text
    True
    """
    text = [
        *_title_section(config, tables, seconds),
        *_headline_section(tables),
        *_primary_section(tables),
        *_secondary_section(tables),
        *_arms_section(tables),
        *_heterogeneity_section(tables),
        *_mixed_model_section(tables),
        *_dose_section(tables),
        *_discontinuity_section(tables),
        *_confound_section(tables),
        *_fit_section(tables, config),
        *_resolution_section(tables),
        *_controls_section(tables, config),
        *_slope_jump_section(tables),
        *_theory_section(tables),
        *_tube_section(tables),
        *_local_tube_section(tables, figures),
        *_architecture_section(tables),
        *_dynamics_section(tables, config),
        *_comparison_section(tables),
        *_figures_section(figures),
        *_method_section(config),
    ]
    path.write_text("\n".join(text), encoding="utf-8")
    return path
