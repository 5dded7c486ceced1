"""The study's statistics as tables: the seed is the unit of inference.

From the ``windows`` and ``runs`` tables of the sweep (``notes/study-schema.md``),
:func:`analyse` builds every table the report reads:

- ``changes``: density before and after training and the change, per window;
- ``fit``: training and held-out loss per run; runs with ``fit_ok`` False are left out
  of every other table;
- ``seed_effects``: per run and measure, the Fisher z of the Spearman correlation of the
  change with the measure across windows (the mean over the run's trajectories);
- ``correlations``: per manifold (and pooled per family, ``manifold == "all"``, over the
  manifolds whose curvature varies), the seed-level test of that correlation
  (:func:`link_tests`): mean z with a t interval, t and Wilcoxon tests, the
  circular-shift permutation test, TOST equivalence, Holm-adjusted p-values, the
  primary endpoint (:data:`PRIMARY`), and the confounds the measure carries;
- ``heterogeneity``: Cochran's Q and I² of the per-manifold mean z;
- ``mixed_models``: per family, arm and target, a linear mixed model of the change
  (statsmodels MixedLM) with seeds and trajectories as random effects;
- ``dose_response``: per dose-response series, whether the within-curve link grows with
  the curvature contrast;
- ``discontinuity``: density near the target's jumps over elsewhere, per seed, with the
  smooth target at the same positions as placebo;
- ``kinds``: mean densities per trajectory kind.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lrcore._optional import optional_import

from .inference import (
    ALPHA,
    circular_shift_test,
    fisher_z,
    holm,
    seed_level_test,
    shifted_spearman,
    spearman_rows,
)

__all__ = [
    "CONFOUNDS",
    "CONTROL",
    "CONTROLS",
    "FAMILY_MEASURES",
    "GROUP",
    "MODEL_PREDICTORS",
    "OPTIMISERS",
    "PERMUTATIONS",
    "PRIMARY",
    "RIVAL",
    "analyse",
    "conclusion",
    "density_changes",
    "discontinuity_table",
    "dose_response_table",
    "fit_table",
    "heterogeneity_table",
    "kinds_table",
    "link_tests",
    "mixed_model_table",
]

FloatArray = NDArray[np.float64]
#: Curvature measures a family is tested with (window means of absolute values): for
#: surfaces the normal curvature of the path first, then its geodesic curvature and the
#: surface's Gaussian and mean curvature.
FAMILY_MEASURES = {
    "curves": ("curvature",),
    "surfaces": ("curvature", "geodesic_curvature", "gaussian", "mean"),
    "images": ("curvature",),
}
#: The window mean of |d² target / ds²| (where a piecewise-linear fit needs breakpoints):
#: the positive control, tested like a curvature measure but outside the family of tests.
CONTROL = "target_bending"
#: The window mean of |d target / ds|: the control's rival. A sinusoid is steepest where
#: it bends least, so a change that follows the slope shows as a *negative* link with the
#: bending; tested like the control, outside the family of tests.
RIVAL = "target_slope"
#: The target measures tested like curvature but outside the family of tests.
CONTROLS = (CONTROL, RIVAL)
#: What |curvature| may stand in for: the report names those it correlates with.
CONFOUNDS = (
    "target_value",
    "target_bending",
    "target_slope",
    "dist_centre",
    "dist_origin",
    "density_init",
)
#: Fixed effects of the mixed models (standardised within each manifold).
#: ``dist_origin`` (to the network's origin, which the random rigid motion moves) stands
#: for distance: ``dist_centre`` (to the data's centroid) is intrinsic geometry, on
#: convex curves nearly a function of curvature, and is reported as a confound instead.
MODEL_PREDICTORS = ("curvature", "target_bending", "target_value", "dist_origin", "density_init")
#: Columns that identify a group of runs tested together (with ``manifold``).
GROUP = ["family", "arm", "target", "width", "depth", "kind"]
#: The primary endpoint, named before any data is seen: the mean over seeds of the Fisher
#: z of Spearman(change, |curvature|) on curves, arc-length targets, smooth target,
#: on-manifold trajectories, pooled over the curves whose curvature varies. Its test is
#: the one-sample t-test across seeds; "no link" needs its TOST to pass. With several
#: architectures, the first one in the tables carries it.
PRIMARY = {
    "family": "curves",
    "arm": "arc",
    "target": "smooth",
    "kind": "on",
    "measure": "curvature",
    "manifold": "all",
}
#: Shift sets of the circular-shift tests: enough that Holm's correction over a family of
#: ~100 tests can still reject (the smallest p-value is 1 / (B + 1)).
PERMUTATIONS = 9999
_UNIT = ["run", "trajectory"]


def density_changes(windows: Any) -> Any:
    """One row per (run, trajectory, window): density at initialisation, after training
    (the run's last step), and the change (after minus before).

    Examples
    --------
    >>> from lrcore.experiments.synthetic import synthetic_tables
    >>> windows = synthetic_tables(seeds=2, windows=8)["windows"]
    >>> changes = density_changes(windows)
    >>> len(changes) * 2 == len(windows), "step" in changes
    (True, False)
    """
    last = windows.groupby("run")["step"].transform("max")
    keys = [*_UNIT, "window"]
    init = windows[windows["step"] == 0].drop(columns=["step"])
    measured = ["density", "jump_density"] if "jump_density" in windows else ["density"]
    final = windows.loc[windows["step"] == last, [*keys, *measured]]
    names = {"density": "density_init", "jump_density": "jump_init"}
    out = init.rename(columns=names).merge(
        final.rename(columns={"density": "density_final", "jump_density": "jump_final"}),
        on=keys,
        how="inner",
    )
    out["change"] = out["density_final"] - out["density_init"]
    return out


def fit_table(runs: Any) -> Any:
    """Training and held-out loss per run, with ``fit_ok`` (held-out loss at most the
    run's ``fit_threshold``, the rule of the study's configuration).

    Examples
    --------
    >>> from lrcore.experiments.synthetic import synthetic_tables
    >>> runs = synthetic_tables(seeds=2, windows=8, unfit=("ellipse:b=0.4",))["runs"]
    >>> int((~fit_table(runs)["fit_ok"]).sum())
    4
    """
    columns = [
        "run",
        "family",
        "manifold",
        "arm",
        "target",
        "seed",
        "width",
        "depth",
        "loss_train_init",
        "loss_train_final",
        "loss_heldout_final",
        "target_variance",
        "fit_threshold",
        "fit_ok",
    ]
    missing = [c for c in columns if c not in runs]
    if missing:
        msg = f"runs: missing columns {missing} (see notes/study-schema.md)"
        raise ValueError(msg)
    out = runs[columns].copy()
    out["fit_ok"] = out["fit_ok"].astype(bool)
    return out


class _Units:
    """Window arrays of every (run, trajectory): ``meta`` (one row per unit) and
    ``(units, windows)`` arrays of the requested columns."""

    def __init__(self, changes: Any, columns: Sequence[str]) -> None:
        order = changes.sort_values([*_UNIT, "window"], kind="stable")
        codes = order.groupby(_UNIT, sort=False).ngroup().to_numpy()
        window = order["window"].to_numpy(dtype=np.int64)
        count = int(codes.max()) + 1 if codes.size else 0
        width = int(window.max()) + 1 if window.size else 0
        _, first = np.unique(codes, return_index=True)
        self.meta = order.iloc[first].reset_index(drop=True)
        self.arrays: dict[str, FloatArray] = {}
        for column in columns:
            values = np.full((count, width), np.nan)
            if column in order:
                values[codes, window] = order[column].to_numpy(dtype=np.float64)
            self.arrays[column] = values


#: Relative spread (peak to peak over the largest |value|) below which a measure counts
#: as constant along a trajectory: a torus's coordinate circles have a constant normal
#: curvature whose window means differ only by rounding, and rounding has no rank order.
CONSTANT_SPREAD = 1e-9


def _without_constant_rows(values: FloatArray) -> FloatArray:
    """``values`` (units, windows) with the rows that are constant set to NaN: those
    whose spread is at most :data:`CONSTANT_SPREAD` times their largest |value|, or
    times the largest |value| of all rows (a measure that is 0 along a path up to
    rounding, a geodesic's geodesic curvature, is constant there too).

    Examples
    --------
    >>> rows = np.array([[1.0, 1 + 1e-15], [1e-17, -1e-17], [1.0, 2.0]])
    >>> _without_constant_rows(rows).tolist()
    [[nan, nan], [nan, nan], [1.0, 2.0]]
    """
    finite = np.where(np.isfinite(values), values, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        spread = np.nanmax(finite, axis=1) - np.nanmin(finite, axis=1)
        scale = np.nanmax(np.abs(finite), axis=1)
    overall = float(np.nanmax(scale)) if np.isfinite(scale).any() else 0.0
    constant = ~(spread > CONSTANT_SPREAD * np.maximum(scale, overall))
    out: FloatArray = np.where(constant[:, None], np.nan, values)
    return out


def _valid_windows(units: _Units) -> NDArray[np.bool_]:
    """Windows used in the curvature correlations: for a step target, away from its jumps
    (their own breakpoints would pass for an effect of curvature)."""
    step = (units.meta["target"] == "step").to_numpy()[:, None]
    near = units.arrays["near_step"] == 1
    out: NDArray[np.bool_] = ~(near & step) & np.isfinite(units.arrays["change"])
    return out


def _spread(values: FloatArray) -> FloatArray:
    """Coefficient of variation along the last axis (std over mean, NaNs left out)."""
    finite = np.isfinite(values)
    count = finite.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(finite, values, 0.0).sum(axis=-1) / count
        centred = np.where(finite, values - mean[..., None], 0.0)
        out: FloatArray = np.sqrt((centred**2).sum(axis=-1) / count) / np.abs(mean)
    return out


def conclusion(p: float, p_tost: float, alpha: float = ALPHA) -> str:
    """What a test of zero (``p``) and an equivalence test (``p_tost``) allow one to say:
    ``"link"`` (zero rejected, equivalence not shown), ``"small link"`` (zero rejected and
    ``|rho|`` shown below the margin), ``"no link"`` (zero not rejected, equivalence shown)
    or ``"inconclusive"`` (neither).

    Examples
    --------
    >>> conclusion(0.01, 0.6), conclusion(0.01, 0.01), conclusion(0.4, 0.01), conclusion(0.4, 0.2)
    ('link', 'small link', 'no link', 'inconclusive')
    """
    if p < alpha:
        return "small link" if p_tost < alpha else "link"
    if p_tost < alpha:
        return "no link"
    return "inconclusive"


def _group_arrays(
    meta: Any, rows: NDArray[np.int64], z: FloatArray
) -> tuple[FloatArray, FloatArray, NDArray[np.int64]]:
    """``(S, T, W)`` shifted z of the units ``rows`` by seed, weights that give each
    manifold of a seed one vote, and the seeds."""
    seeds = meta["seed"].to_numpy()[rows]
    manifolds = meta["manifold"].to_numpy()[rows]
    labels, seed_index = np.unique(seeds, return_inverse=True)
    slot = np.zeros(rows.size, dtype=np.int64)
    counts: dict[tuple[Any, Any], int] = {}
    per_seed = np.zeros(labels.size, dtype=np.int64)
    for i, (s, m) in enumerate(zip(seed_index, manifolds)):
        slot[i] = per_seed[s]
        per_seed[s] += 1
        counts[(s, m)] = counts.get((s, m), 0) + 1
    out = np.full((labels.size, int(per_seed.max()), z.shape[-1]), np.nan)
    weights = np.zeros(out.shape[:2])
    out[seed_index, slot] = z[rows]
    weights[seed_index, slot] = [1 / counts[(s, m)] for s, m in zip(seed_index, manifolds)]
    return out, weights, labels


def _test_row(
    meta: Any,
    rows: NDArray[np.int64],
    z: FloatArray,
    valid: NDArray[np.bool_],
    resamples: int,
    rng: np.random.Generator,
) -> tuple[dict[str, Any], FloatArray, NDArray[np.int64]]:
    """The seed-level tests of one group of units; also the seed z and the seeds."""
    grouped, weights, seeds = _group_arrays(meta, rows, z)
    with np.errstate(invalid="ignore", divide="ignore"):
        seed_z = np.nansum(np.nan_to_num(grouped[..., 0]) * weights, axis=1) / np.where(
            np.isfinite(grouped[..., 0]), weights, 0.0
        ).sum(axis=1)
    usable = np.isfinite(z[rows, 0])
    row: dict[str, Any] = {
        "manifolds": int(meta["manifold"].iloc[rows].nunique()),
        "trajectories": int(usable.sum()),
        "windows": int(valid[rows][usable].sum()),
        "closed": bool(meta["closed"].to_numpy()[rows].all()),
        **seed_level_test(seed_z),
    }
    row["p_shift"] = math.nan
    if row["closed"] and np.isfinite(seed_z).any():
        _, p = circular_shift_test(grouped, resamples, rng, weights)
        row["p_shift"] = float(p)
    return row, seed_z, seeds


def _unit_z(units: _Units, measure: str, valid: NDArray[np.bool_]) -> FloatArray:
    """Fisher z of Spearman(change, measure) at every circular shift, per unit (NaN rows
    where the measure is not recorded)."""
    c = units.arrays[measure]
    out = np.full(c.shape, np.nan)
    has = np.isfinite(c).any(axis=1)
    if has.any():
        out[has] = fisher_z(shifted_spearman(c[has], units.arrays["change"][has], valid[has]))
    return out


def _confound_z(units: _Units, measure: str) -> dict[str, FloatArray]:
    """Per unit, Fisher z of Spearman(measure, confound) across windows (shift 0)."""
    out = {}
    c = units.arrays[measure]
    for name in CONFOUNDS:
        if name == measure:
            continue
        out[name] = fisher_z(spearman_rows(c, units.arrays[name]))
    return out


def _mean_rho(z: FloatArray, rows: NDArray[np.int64], manifolds: NDArray[Any]) -> float:
    """tanh of the mean over manifolds of the mean z of their units."""
    values = z[rows]
    means = [
        np.nanmean(values[manifolds[rows] == m])
        for m in np.unique(manifolds[rows])
        if np.isfinite(values[manifolds[rows] == m]).any()
    ]
    return float(np.tanh(np.mean(means))) if means else math.nan


def link_tests(changes: Any, resamples: int = PERMUTATIONS, seed: int = 0) -> tuple[Any, Any]:
    """Seed-level tests of the link between the density change and each curvature
    measure, per manifold and pooled per family.

    Parameters
    ----------
    changes
        The ``changes`` table (:func:`density_changes`) of the runs that fit.
    resamples
        Shift sets of the circular-shift permutation tests.
    seed
        Seeds their random generator.

    Returns
    -------
    (correlations, seed_effects). ``correlations`` has one row per group
    (:data:`GROUP`), manifold (``"all"``: pooled over the family's manifolds whose
    curvature varies, each manifold one vote per seed) and measure, for on-manifold and
    offset trajectories: the columns of :func:`~.inference.seed_level_test`, ``p_shift``
    (circular shift; NaN when a trajectory is open), ``p`` (the row's test: the t-test for
    the primary endpoint, else the shift test where it applies, else the t-test) and
    ``p_method``; ``primary``; ``in_family`` (on-manifold curvature tests other than the
    primary: the family Holm's correction runs over) with ``p_holm`` and ``p_tost_holm``;
    ``conclusion`` (:func:`conclusion` on the adjusted p-values for the family, the raw
    ones otherwise); ``confound_<name>``: the mean Spearman correlation of the measure
    with that covariate across windows; and ``note`` (why a row has no test).
    ``seed_effects`` has the per-seed z of every per-manifold row.

    Examples
    --------
    >>> from lrcore.experiments.synthetic import synthetic_tables
    >>> windows = synthetic_tables(seeds=8, windows=16, effect=0.9)["windows"]
    >>> tests, _ = link_tests(density_changes(windows), resamples=99)
    >>> primary = tests[tests["primary"]].iloc[0]
    >>> int(primary["manifolds"]), int(primary["seeds"]), primary["conclusion"]
    (3, 8, 'link')
    """
    pd = optional_import("pandas", "experiments")
    rng = np.random.default_rng(seed)
    measures = sorted({m for ms in FAMILY_MEASURES.values() for m in ms} | set(CONTROLS))
    kept = changes[changes["kind"].isin(("on", "offset"))]
    if kept.empty:
        return pd.DataFrame(), pd.DataFrame()
    units = _Units(kept, [*dict.fromkeys([*measures, *CONFOUNDS]), "change", "near_step"])
    for name in measures:  # a measure constant along a path has no rank correlation there
        units.arrays[name] = _without_constant_rows(units.arrays[name])
    meta = units.meta
    valid = _valid_windows(units)
    manifolds = meta["manifold"].to_numpy()
    constant = meta["constant_curvature"].to_numpy(dtype=bool)
    rows: list[dict[str, Any]] = []
    effects: list[dict[str, Any]] = []
    for measure in measures:
        if measure not in changes:
            continue
        z = _unit_z(units, measure, valid)
        confound = _confound_z(units, measure)
        spread = _spread(units.arrays[measure])
        for key, frame in meta.groupby(GROUP, sort=False):
            ident = dict(zip(GROUP, key))
            if measure not in (*FAMILY_MEASURES[ident["family"]], *CONTROLS):
                continue
            index = frame.index.to_numpy()
            groups = [(m, index[manifolds[index] == m]) for m in dict.fromkeys(manifolds[index])]
            pooled = index[~constant[index]]
            if len({m for m, _ in groups if not constant[_[0]]}) > 1:
                groups.append(("all", pooled))
            for manifold, members in groups:
                first = meta.iloc[members[0]]
                row: dict[str, Any] = {**ident, "manifold": manifold, "measure": measure}
                row["contrast_name"] = first["contrast_name"] if manifold != "all" else ""
                row["contrast"] = first["contrast"] if manifold != "all" else math.nan
                row["constant_curvature"] = bool(constant[members].all())
                finite = spread[members][np.isfinite(spread[members])]
                row["curvature_spread"] = float(finite.mean()) if finite.size else math.nan
                for name, values in confound.items():
                    row[f"confound_{name}"] = _mean_rho(values, members, manifolds)
                if row["constant_curvature"]:
                    row["note"] = "constant curvature: not tested, not pooled"
                    rows.append(row)
                    continue
                test, seed_z, seeds = _test_row(meta, members, z, valid, resamples, rng)
                row.update(test)
                row["note"] = (
                    ""
                    if np.isfinite(seed_z).any()
                    else f"{measure} constant along every trajectory"
                )
                rows.append(row)
                if manifold != "all":
                    effects += [
                        {**ident, "manifold": manifold, "measure": measure, "seed": int(s), "z": v}
                        for s, v in zip(seeds, seed_z)
                    ]
    table = pd.DataFrame(rows)
    return _decide(table), pd.DataFrame(effects)


def _decide(table: Any) -> Any:
    """Primary flag, the family of tests with Holm's correction, and conclusions."""
    if table.empty:
        return table
    primary = np.ones(len(table), dtype=bool)
    for key, value in PRIMARY.items():
        primary &= (table[key] == value).to_numpy()
    # With several architectures, the first one studied carries the primary endpoint.
    primary[np.flatnonzero(primary)[1:]] = False
    table["primary"] = primary
    table["p"] = np.where(primary | table["p_shift"].isna(), table["p_t"], table["p_shift"])
    table["p_method"] = np.where(
        primary,
        "t-test across seeds (primary)",
        np.where(table["p_shift"].isna(), "t-test across seeds", "circular shift"),
    )
    table["in_family"] = (
        (table["kind"] == "on") & ~table["measure"].isin(CONTROLS) & ~primary & table["p"].notna()
    )
    family = table["in_family"].to_numpy()
    table["p_holm"] = math.nan
    table["p_tost_holm"] = math.nan
    table.loc[family, "p_holm"] = holm(table.loc[family, "p"])[1]
    table.loc[family, "p_tost_holm"] = holm(table.loc[family, "p_tost"])[1]
    p = np.where(family, table["p_holm"], table["p"])
    p_tost = np.where(family, table["p_tost_holm"], table["p_tost"])
    table["conclusion"] = [
        conclusion(a, b) if np.isfinite(a) else "not tested" for a, b in zip(p, p_tost)
    ]
    return table


def heterogeneity_table(correlations: Any) -> Any:
    """Cochran's Q, its p-value and I² of the per-manifold mean z, per group and measure
    (statsmodels ``combine_effects``; each manifold's variance: the seeds' variance of z
    over their number). Constant-curvature manifolds are not included.

    Examples
    --------
    >>> from lrcore.experiments.synthetic import synthetic_tables
    >>> windows = synthetic_tables(seeds=8, windows=16, arms=("arc",))["windows"]
    >>> tests, _ = link_tests(density_changes(windows), resamples=19)
    >>> table = heterogeneity_table(tests)
    >>> table[table["measure"] == "curvature"][["target", "manifolds"]].values.tolist()
    [['smooth', 3], ['step', 3]]
    >>> bool(table["i2"].between(0, 1).all())
    True
    """
    pd = optional_import("pandas", "experiments")
    meta_analysis = optional_import("statsmodels.stats.meta_analysis", "experiments")
    stats = optional_import("scipy.stats", "experiments")
    rows: list[dict[str, Any]] = []
    if correlations.empty:
        return pd.DataFrame(rows)
    per = correlations[
        (correlations["manifold"] != "all")
        & (correlations["kind"] == "on")
        & correlations["sd_z"].gt(0)
        & correlations["seeds"].ge(2)
    ]
    for key, frame in per.groupby([*GROUP, "measure"], sort=False):
        if len(frame) < 2:
            continue
        variance = frame["sd_z"].to_numpy() ** 2 / frame["seeds"].to_numpy()
        result = meta_analysis.combine_effects(frame["mean_z"].to_numpy(), variance)
        df = len(frame) - 1
        rows.append(
            {
                **dict(zip([*GROUP, "measure"], key)),
                "manifolds": len(frame),
                "q": float(result.q),
                "df": df,
                "p_q": float(stats.chi2.sf(result.q, df)),
                "i2": float(max(result.i2, 0.0)),
                "tau2": float(result.tau2),
                "mean_z_fixed": float(result.mean_effect_fe),
                "mean_z_random": float(result.mean_effect_re),
            }
        )
    return pd.DataFrame(rows)


def _standardise(values: Any, groups: Any) -> Any:
    """z-scores within groups; a column constant within a group becomes 0 there."""
    centred = values - values.groupby(groups).transform("mean")
    spread = values.groupby(groups).transform("std", ddof=0)
    return (centred / spread.where(spread > 0)).fillna(0.0)


#: Optimisers tried in turn until a fit converges (statsmodels' advice when one fails;
#: L-BFGS can stop on a singular matrix where BFGS does not).
OPTIMISERS = ("lbfgs", "bfgs", "powell")


def _vif(predictors: FloatArray, column: int) -> float:
    """Variance inflation factor of one predictor: 1 / (1 - R²) of its regression on the
    others (statsmodels); large (> 10) when it is nearly a function of them."""
    if predictors.shape[1] < 2:
        return 1.0
    influence = optional_import("statsmodels.stats.outliers_influence", "experiments")
    design = np.column_stack([np.ones(len(predictors)), predictors])
    with np.errstate(divide="ignore"):
        return float(influence.variance_inflation_factor(design, column + 1))


def _messages(caught: Sequence[warnings.WarningMessage]) -> str:
    """Distinct warnings as ``Category: message`` joined by ``"; "``."""
    return "; ".join(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))


def _fit_mixed(model: Any) -> tuple[Any, str, str, str]:
    """Fit a MixedLM by REML with :data:`OPTIMISERS` in turn until one converges; every
    warning is recorded, none raised.

    Returns
    -------
    (the fit: the first that converged, else the last one; None when every optimiser
    failed), the optimiser used, the warnings of that fit, and what went wrong with the
    optimisers tried before it.
    """
    attempts: list[str] = []
    for method in OPTIMISERS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = model.fit(reml=True, method=[method])
            except (np.linalg.LinAlgError, ValueError) as err:
                attempts.append(f"{method}: {err}")
                continue
        if result.converged or method == OPTIMISERS[-1]:
            return result, method, _messages(caught), "; ".join(attempts)
        attempts.append(f"{method}: did not converge")
    return None, "", "", "; ".join(attempts)


def _curvature_terms(result: Any, nested: bool) -> tuple[dict[str, Any], str]:
    """The within-trajectory |curvature| coefficient of a fit with its interval and
    p-value, and the variance components; statsmodels computes some of them lazily, so
    their warnings (a Hessian that is not positive definite) are recorded here."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        interval = result.conf_int(alpha=ALPHA)
        out = {
            "coef": float(result.fe_params["curvature"]),
            "se": float(result.bse_fe["curvature"]),
            "ci_lo": float(interval.loc["curvature", 0]),
            "ci_hi": float(interval.loc["curvature", 1]),
            "p": float(result.pvalues["curvature"]),
            "seed_variance": float(result.cov_re.iloc[0, 0]),
            "slope_variance": float(result.cov_re.iloc[-1, -1]),
            "trajectory_variance": float(result.vcomp[0]) if nested else math.nan,
            "converged": bool(result.converged),
        }
    return out, _messages(caught)


def _within(values: Any, units: Any, manifolds: Any) -> Any:
    """Deviations from the trajectory's mean, scaled by their standard deviation within
    each manifold (0 where they do not vary beyond rounding, :data:`CONSTANT_SPREAD`)."""
    centred = values - values.groupby(units).transform("mean")
    spread = np.sqrt((centred**2).groupby(manifolds).transform("mean"))
    scale = max(float(values.abs().max()), 1e-300)
    return (centred / spread.where(spread > CONSTANT_SPREAD * scale)).fillna(0.0)


def mixed_model_table(changes: Any) -> Any:
    """A linear mixed model of the density change per family, arm and target, on the
    on-manifold windows of manifolds whose curvature varies (statsmodels MixedLM):

    ``change ~ |curvature| + |target bending| + target value + distance to the origin +
    initial density + mean |curvature| of the trajectory (+ manifold)``, with a random
    intercept and a random |curvature| slope per seed, and a variance component per
    trajectory within a seed.

    The random slope makes the seed the unit of inference for the curvature term: on
    synthetic changes independent of curvature and autocorrelated along the path (3
    ellipses, 20 seeds, 32 windows, lag-1 correlation 0.6), the slope's p-value was
    below 0.05 in 0.07 of 60 studies with it, in 0.23 with a random intercept only.

    Like the correlations, the model is about the link *along* a trajectory: each
    predictor enters as its deviation from the trajectory's mean (scaled by its spread
    within the manifold), and the trajectory's mean |curvature| as a separate term
    (``curvature_between``), so differences between trajectories do not pass for a
    within-trajectory effect. The change is standardised within each manifold: ``coef``
    is the change, in standard deviations, per standard deviation of |curvature| along a
    trajectory with the others held fixed. Predictors that are missing or do not vary
    are dropped (``dropped``). ``vif_curvature``: the variance inflation factor of
    |curvature| among the predictors (above 5-10 it is entangled with them).
    Convergence is handled explicitly: :data:`OPTIMISERS` are tried in turn
    (``optimiser``: the one used, ``attempts``: what failed before), and every warning
    of the fit used (a variance component on the boundary, a Hessian that is not
    positive definite) is recorded in ``warnings``, never raised.

    Examples
    --------
    >>> from lrcore.experiments.synthetic import synthetic_tables
    >>> tables = synthetic_tables(seeds=6, windows=16, arms=("arc",), targets=("smooth",))
    >>> row = mixed_model_table(density_changes(tables["windows"])).iloc[0]
    >>> row["family"], int(row["seeds"]), bool(row["ci_lo"] < row["coef"] < row["ci_hi"])
    ('curves', 6, True)
    """
    pd = optional_import("pandas", "experiments")
    smf = optional_import("statsmodels.formula.api", "experiments")
    keys = [k for k in GROUP if k != "kind"]
    on = changes[(changes["kind"] == "on") & ~changes["constant_curvature"].astype(bool)]
    # As in the correlations: a step target's jumps are not curvature.
    on = on[~(on["near_step"].astype(bool) & (on["target"] == "step"))]
    if on.empty:
        return pd.DataFrame()
    rows = []
    for key, frame in on.groupby(keys, sort=False):
        row: dict[str, Any] = {**dict(zip(keys, key)), "term": "curvature (within trajectory)"}
        units = (frame["run"] + "|" + frame["trajectory"]).to_numpy()
        manifolds = frame["manifold"].to_numpy()
        data = pd.DataFrame(
            {
                "change": _standardise(frame["change"], frame["manifold"]),
                "seed": frame["seed"].to_numpy(),
                "manifold": manifolds,
                "unit": (frame["manifold"] + "|" + frame["trajectory"]).to_numpy(),
            },
            index=frame.index,
        )
        used: list[str] = []
        dropped: list[str] = []
        for name in MODEL_PREDICTORS:
            values = frame.get(name, None)
            if values is None or not np.isfinite(values.to_numpy(dtype=np.float64)).all():
                dropped.append(name)
                continue
            data[name] = _within(values.astype(np.float64), units, manifolds)
            (used if data[name].abs().max() > 0 else dropped).append(name)
        if "curvature" in frame:
            between = frame["curvature"].groupby(units).transform("mean").astype(np.float64)
            data["curvature_between"] = _standardise(between, frame["manifold"])
            if data["curvature_between"].abs().max() > 0:
                used.append("curvature_between")
        row.update(
            manifolds=int(frame["manifold"].nunique()),
            seeds=int(frame["seed"].nunique()),
            observations=len(frame),
            predictors=", ".join(used),
            dropped=", ".join(dropped),
        )
        if "curvature" not in used or row["seeds"] < 3:
            row["note"] = (
                "|curvature| constant along every trajectory"
                if "curvature" not in used
                else "fewer than 3 seeds"
            )
            rows.append(row)
            continue
        row["vif_curvature"] = _vif(data[used].to_numpy(), used.index("curvature"))
        formula = "change ~ " + " + ".join(used)
        if row["manifolds"] > 1:
            formula += " + C(manifold)"
        # A trajectory component only where a seed has several trajectories (with one,
        # it is the seed's intercept again, and the model is not identified).
        nested = bool(data.groupby("seed")["unit"].nunique().max() > 1)
        # A random |curvature| slope per seed: the seed is the unit of inference (with a
        # random intercept only, windows autocorrelated along a path count as
        # independent, and the slope's p-value is far too small; see the docstring).
        model = smf.mixedlm(
            formula,
            data,
            groups="seed",
            re_formula="1 + curvature",
            vc_formula={"trajectory": "0 + C(unit)"} if nested else None,
        )
        row["random_effects"] = "seed (intercept, slope)" + (" + trajectory" if nested else "")
        result, row["optimiser"], fit_warnings, row["attempts"] = _fit_mixed(model)
        if result is None:
            row["note"] = f"fit failed: {row['attempts']}"
            rows.append(row)
            continue
        terms, late = _curvature_terms(result, nested)
        row.update(terms)
        row["warnings"] = "; ".join(w for w in (fit_warnings, late) if w)
        row["note"] = ""
        rows.append(row)
    return pd.DataFrame(rows)


def _per_seed_summary(values: FloatArray, name: str, log: bool) -> dict[str, Any]:
    """Mean over seeds with a t interval and the t-test of zero (of the log for a ratio,
    reported back on the ratio scale: the geometric mean ratio, tested against 1)."""
    test = seed_level_test(np.log(values) if log else values)
    back = np.exp if log else (lambda v: v)
    return {
        name: float(back(test["mean_z"])),
        f"{name}_lo": float(back(test["z_lo"])),
        f"{name}_hi": float(back(test["z_hi"])),
        f"p_{name}": test["p_t"],
    }


#: The per-run statistics of :func:`discontinuity_table`, and whether each is a ratio
#: (summarised on the log scale, tested against 1).
_NEAR_STATISTICS = {
    "ratio_final": True,
    "ratio_init": True,
    "excess_change": False,
    "ratio_vs_placebo": True,
    "bending_ratio": True,
    "placebo_final": True,
    "placebo_init": True,
    "placebo_bending": True,
}


def _matched_placebo(on: Any) -> Any:
    """Per smooth run, density near the jump positions over density in windows matched
    on the target's bending: each near window is paired with the window of the same
    trajectory, away from the positions, whose bending is closest (with replacement).

    A fit needs breakpoints where its target bends (the positive control), and where a
    trajectory crosses the step's cut it often moves fastest through the smooth target's
    coordinate (the middle of a projection's or a height's range), so the smooth target
    bends more at the jump positions than on average there. Matching holds the bending
    fixed, so the placebo asks only whether the positions themselves carry density.
    Near and matched sets also have the same size, so a log ratio of their means has no
    bias from unequal noise (a mean of 4 windows over a mean of 28 has). Returns
    ``placebo_final``, ``placebo_init`` (the same before training) and
    ``placebo_bending`` (the balance check: about 1) per run.
    """
    pd = optional_import("pandas", "experiments")
    smooth = on[(on["target"] == "smooth") & on[CONTROL].notna()]
    rows: dict[str, dict[str, float]] = {}
    sums: dict[str, NDArray[np.float64]] = {}
    ordered = smooth.sort_values(["run", "trajectory", "window"], kind="stable")
    for (run, _), part in ordered.groupby(["run", "trajectory"], sort=False):
        near = part["near"].to_numpy(dtype=bool)
        if not near.any() or near.all():
            continue
        bend = part[CONTROL].to_numpy(dtype=np.float64)
        final = part["density_final"].to_numpy(dtype=np.float64)
        init = part["density_init"].to_numpy(dtype=np.float64)
        far = np.flatnonzero(~near)
        match = far[np.argmin(np.abs(bend[near][:, None] - bend[far][None, :]), axis=1)]
        add = np.array(
            [
                final[near].sum(),
                final[match].sum(),
                init[near].sum(),
                init[match].sum(),
                bend[near].sum(),
                bend[match].sum(),
            ]
        )
        sums[run] = sums.get(run, np.zeros(6)) + add
    with np.errstate(invalid="ignore", divide="ignore"):
        for run, total in sums.items():
            rows[run] = {
                "placebo_final": total[0] / total[1],
                "placebo_init": total[2] / total[3],
                "placebo_bending": total[4] / total[5],
            }
    columns = ["placebo_final", "placebo_init", "placebo_bending"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).astype(np.float64)


def _near_and_far(on: Any, column: str) -> tuple[Any, Any]:
    """Per run, the mean of ``column`` in the windows near a jump and elsewhere (NaN
    where a run has none of one)."""
    means = on.groupby(["run", "near"])[column].mean().unstack("near")
    means = means.reindex(columns=[True, False])
    return means[True], means[False]


def _near_over_far(on: Any, column: str) -> Any:
    near, far = _near_and_far(on, column)
    with np.errstate(invalid="ignore", divide="ignore"):
        return near / far


def discontinuity_table(changes: Any) -> Any:
    """Density near the target's jumps against elsewhere, on the manifold, with the seed
    as the unit.

    Per run: ``ratio_final`` = mean density after training in the windows near a jump
    (``near_step``) over the mean elsewhere, ``ratio_init`` the same before training (a
    control: about 1), ``excess_change`` = mean change near the jumps minus elsewhere.
    For smooth targets ``near_step`` marks the positions the step target of the same run
    jumps at: the placebo, and ``bending_ratio`` says how much more the smooth target
    bends there than elsewhere (a placebo that fails where the target bends more has
    that explanation). The placebo proper, ``placebo_final``, compares the windows near
    the positions with windows of the same trajectories matched on the smooth target's
    bending (:func:`_matched_placebo`; ``placebo_bending`` checks the balance,
    ``placebo_init`` the same before training). For step targets, ``ratio_vs_placebo``:
    the step run's ratio over the ratio of the smooth run with the same manifold, arm and
    seed (same positions).

    Per manifold (and pooled per family, ``manifold == "all"``: per seed the geometric
    mean of its manifolds' ratios), the geometric mean over seeds of each ratio and the
    mean of the excess, with a t interval across seeds and the t-test of no difference
    (``p_ratio_final`` ...).

    Examples
    --------
    >>> from lrcore.experiments.synthetic import synthetic_tables
    >>> tables = synthetic_tables(seeds=6, windows=16, arms=("arc",), jump_effect=3.0)
    >>> table = discontinuity_table(density_changes(tables["windows"]))
    >>> row = table[(table["manifold"] == "all") & (table["target"] == "step")].iloc[0]
    >>> bool(row["ratio_final_lo"] > 1), bool(row["ratio_init_lo"] < 1 < row["ratio_init_hi"])
    (True, True)
    >>> bool(row["ratio_vs_placebo_lo"] > 1)
    True
    """
    pd = optional_import("pandas", "experiments")
    on = changes[changes["kind"] == "on"].assign(near=lambda f: f["near_step"].astype(bool))
    rows: list[dict[str, Any]] = []
    if on.empty or not on["near"].any():
        return pd.DataFrame(rows)
    counts = on.groupby("run")["near"].agg(["sum", "size"])
    per_run = pd.DataFrame(
        {
            "ratio_final": _near_over_far(on, "density_final"),
            "ratio_init": _near_over_far(on, "density_init"),
            "excess_change": np.subtract(*_near_and_far(on, "change")),
            "bending_ratio": _near_over_far(on, CONTROL) if CONTROL in on else np.nan,
            "near_windows": counts["sum"],
            "other_windows": counts["size"] - counts["sum"],
        }
    )
    per_run = per_run.join(_matched_placebo(on))
    ident = on.drop_duplicates("run").set_index("run")[[*GROUP, "manifold", "seed"]]
    per_run = per_run.join(ident).dropna(subset=["ratio_final", "excess_change"])
    per_run = per_run[(per_run["ratio_final"] > 0) & (per_run["ratio_init"] > 0)]
    # Pair each step run with the smooth run at the same positions.
    pair = [k for k in GROUP if k != "target"] + ["manifold", "seed"]
    smooth = per_run[per_run["target"] == "smooth"].set_index(pair)["ratio_final"]
    placebo = per_run.set_index(pair).index.map(smooth.to_dict().get)
    per_run["ratio_vs_placebo"] = np.where(
        per_run["target"] == "step", per_run["ratio_final"] / placebo.astype(float), np.nan
    )
    per_run.loc[per_run["target"] == "step", "bending_ratio"] = np.nan
    columns = [*_NEAR_STATISTICS, "near_windows", "other_windows"]
    for key, frame in per_run.groupby(GROUP, sort=False):
        ident_row = dict(zip(GROUP, key))
        parts = [(m, part) for m, part in frame.groupby("manifold", sort=False)]
        if len(parts) > 1:
            logs = frame[columns].copy()
            for name, ratio in _NEAR_STATISTICS.items():
                if ratio:
                    logs[name] = np.log(logs[name])
            seeds = logs.groupby(frame["seed"]).mean()
            for name, ratio in _NEAR_STATISTICS.items():
                if ratio:
                    seeds[name] = np.exp(seeds[name])
            parts.append(("all", seeds))
        for manifold, part in parts:
            row: dict[str, Any] = {**ident_row, "manifold": manifold, "seeds": len(part)}
            row["near_windows"] = float(part["near_windows"].mean())
            row["other_windows"] = float(part["other_windows"].mean())
            for name, ratio in _NEAR_STATISTICS.items():
                values = part[name].to_numpy(dtype=np.float64)
                values = values[np.isfinite(values) & ((values > 0) | (not ratio))]
                row.update(_per_seed_summary(values, name, ratio))
            rows.append(row)
    return pd.DataFrame(rows)


def dose_response_table(correlations: Any, seed_effects: Any) -> Any:
    """Does the within-curve link grow with the curvature contrast? One row per series
    (``contrast_name``), arm, target, architecture and curvature measure, on the manifold
    (a torus's coordinate circles have a constant normal curvature, but |K| and |H| vary
    along them, and more so as its minor radius grows).

    The dose of a manifold is its ``curvature_spread`` (the coefficient of variation of
    the measure's window means along its trajectories: 0 for a circle), whichever way the
    named contrast runs. Per seed, the least-squares slope of its z on the dose over the
    series' levels whose curvature varies (a constant-curvature level has no
    within-curve correlation: it is listed in ``excluded``); across seeds, the mean slope
    with a t interval, the t-test and the Wilcoxon test of zero (``p_slope``,
    ``p_slope_wilcoxon``); and the Spearman correlation of the dose with the levels' mean
    z with its exact permutation p-value (``p_spearman``; with few levels it cannot be
    small). ``p_holm``: ``p_slope`` adjusted across the series (Holm).

    Examples
    --------
    >>> from lrcore.experiments.synthetic import synthetic_tables
    >>> windows = synthetic_tables(seeds=6, windows=16, arms=("arc",), targets=("smooth",))
    >>> tests, effects = link_tests(density_changes(windows["windows"]), resamples=19)
    >>> row = dose_response_table(tests, effects).iloc[0]
    >>> row["contrast_name"], int(row["levels"]), row["excluded"]
    ('axis_ratio', 3, 'circle')
    """
    pd = optional_import("pandas", "experiments")
    stats = optional_import("scipy.stats", "experiments")
    rows: list[dict[str, Any]] = []
    if correlations.empty:
        return pd.DataFrame(rows)
    keys = ["contrast_name", "family", "arm", "target", "width", "depth", "measure"]
    series = correlations[
        (correlations["manifold"] != "all")
        & (correlations["kind"] == "on")
        & ~correlations["measure"].isin(CONTROLS)
        & correlations["contrast_name"].fillna("").astype(bool)
    ]
    for key, frame in series.groupby(keys, sort=False):
        row: dict[str, Any] = dict(zip(keys, key))
        frame = frame.sort_values("curvature_spread")
        tested = frame[~frame["constant_curvature"] & frame["mean_z"].notna()]
        row["excluded"] = ", ".join(frame.loc[~frame.index.isin(tested.index), "manifold"])
        row["levels"] = len(tested)
        row["contrasts"] = ", ".join(f"{c:g}" for c in tested["contrast"])
        row["doses"] = ", ".join(f"{d:.3g}" for d in tested["curvature_spread"])
        row["mean_z"] = ", ".join(f"{z:+.3f}" for z in tested["mean_z"])
        if len(tested) < 2:
            row["note"] = f"fewer than 2 levels where |{row['measure']}| varies along the path"
            rows.append(row)
            continue
        effects = seed_effects[
            seed_effects["manifold"].isin(tested["manifold"]) & (seed_effects["kind"] == "on")
        ]
        for k, value in zip(keys[1:], key[1:]):
            effects = effects[effects[k] == value]
        table = effects.pivot_table(index="seed", columns="manifold", values="z")
        table = table.reindex(columns=tested["manifold"])
        dose = tested["curvature_spread"].to_numpy(dtype=np.float64)
        slopes = []
        for z in table.to_numpy(dtype=np.float64):
            ok = np.isfinite(z)
            if ok.sum() >= 2 and np.ptp(dose[ok]) > 0:
                slopes.append(float(np.polyfit(dose[ok], z[ok], 1)[0]))
        test = seed_level_test(slopes)
        row.update(
            seeds=int(test["seeds"]),
            slope=test["mean_z"],
            slope_lo=test["z_lo"],
            slope_hi=test["z_hi"],
            p_slope=test["p_t"],
            p_slope_wilcoxon=test["p_wilcoxon"],
        )
        means = tested["mean_z"].to_numpy(dtype=np.float64)
        row["spearman"] = float(stats.spearmanr(dose, means).statistic)
        row["p_spearman"] = float(
            stats.permutation_test(
                (dose, means),
                lambda x, y: stats.spearmanr(x, y).statistic,
                permutation_type="pairings",
                n_resamples=9999,
                random_state=0,
            ).pvalue
        )
        row["note"] = ""
        rows.append(row)
    out = pd.DataFrame(rows)
    if not out.empty and "p_slope" in out:
        out["p_holm"] = holm(out["p_slope"])[1]
    return out


def kinds_table(changes: Any) -> Any:
    """Mean density before and after training and the change, per family, arm, target and
    trajectory kind.

    Examples
    --------
    >>> from lrcore.experiments.synthetic import synthetic_tables
    >>> windows = synthetic_tables(seeds=2, windows=8, arms=("arc",))["windows"]
    >>> kinds_table(density_changes(windows))[["target", "kind"]].values.tolist()
    [['smooth', 'on'], ['smooth', 'offset'], ['smooth', 'line'], ['step', 'on'], ['step', 'offset'], ['step', 'line']]
    """
    return (
        changes.groupby(["family", "arm", "target", "kind"], sort=False)[
            ["density_init", "density_final", "change"]
        ]
        .mean()
        .reset_index()
    )


def analyse(
    windows: Any, runs: Any, convergence: Any, resamples: int = PERMUTATIONS, seed: int = 0
) -> dict[str, Any]:
    """Every table of the study from the sweep's ``windows``, ``runs`` and
    ``convergence`` tables; runs that did not fit are left out of all but ``fit``,
    ``runs``, ``windows`` and ``convergence``.

    Examples
    --------
    >>> from lrcore.experiments.synthetic import synthetic_tables
    >>> data = synthetic_tables(seeds=3, windows=8, arms=("arc",), targets=("smooth",))
    >>> tables = analyse(**data, resamples=9)
    >>> sorted(tables)  # doctest: +NORMALIZE_WHITESPACE
    ['changes', 'convergence', 'correlations', 'discontinuity', 'dose_response', 'fit',
     'heterogeneity', 'kinds', 'mixed_models', 'runs', 'seed_effects', 'windows']
    """
    fit = fit_table(runs)
    fitted = set(fit.loc[fit["fit_ok"], "run"])
    changes = density_changes(windows[windows["run"].isin(fitted)])
    correlations, seed_effects = link_tests(changes, resamples, seed)
    return {
        "windows": windows,
        "runs": runs,
        "convergence": convergence,
        "fit": fit,
        "changes": changes,
        "seed_effects": seed_effects,
        "correlations": correlations,
        "heterogeneity": heterogeneity_table(correlations),
        "mixed_models": mixed_model_table(changes),
        "dose_response": dose_response_table(correlations, seed_effects),
        "discontinuity": discontinuity_table(changes),
        "kinds": kinds_table(changes),
    }
