"""Statistics of the study: density change against curvature, and near discontinuities.

Confidence intervals come from a two-level percentile bootstrap: resample the seeds
(training runs) with replacement, then the windows within each chosen seed, so the
intervals account for run-to-run variation as well as for the positions along the
trajectories. Resampling uses a seeded numpy Generator, so the tables are reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lrcore._optional import optional_import

__all__ = [
    "cluster_bootstrap_indices",
    "correlation_table",
    "density_changes",
    "discontinuity_table",
    "percentile_interval",
    "rank_rows",
    "within_run_scores",
]

FloatArray = NDArray[np.float64]
#: Curvature measures a family is compared with (window means of their absolute values).
FAMILY_MEASURES = {
    "curves": ("curvature",),
    "surfaces": ("gaussian", "mean"),
    "images": ("curvature",),
}
KEYS = ["family", "manifold", "target", "width", "depth"]
#: The window mean of |d² target / ds²| (how much the target's graph bends there): the
#: positive control, and the covariate held fixed in the partial correlations.
CONTROL = "target_bending"


def density_changes(windows: Any) -> Any:
    """One row per (run, trajectory, window): density at initialisation, after training,
    and the change (after minus before)."""
    first = windows["step"] == 0
    last = windows.groupby(["family", "manifold", "target", "seed", "width", "depth"])[
        "step"
    ].transform("max")
    init = windows[first].reset_index(drop=True)
    final = windows[windows["step"] == last].reset_index(drop=True)
    out = init.drop(columns=["step", "density"]).copy()
    out["density_init"] = init["density"].to_numpy()
    out["density_final"] = final["density"].to_numpy()
    out["change"] = out["density_final"] - out["density_init"]
    return out


def cluster_bootstrap_indices(
    clusters: NDArray[Any], resamples: int, rng: np.random.Generator
) -> NDArray[np.int64]:
    """``(resamples, n)`` row indices: seeds drawn with replacement, then rows within them.

    Clusters of unequal size fall back to resampling rows of the pooled sample.
    """
    labels, inverse = np.unique(clusters, return_inverse=True)
    sizes = np.bincount(inverse)
    n = clusters.shape[0]
    if sizes.min() != sizes.max():
        return rng.integers(0, n, size=(resamples, n))
    members = np.stack([np.flatnonzero(inverse == k) for k in range(labels.size)])
    chosen = rng.integers(0, labels.size, size=(resamples, labels.size))
    within = rng.integers(0, sizes[0], size=(resamples, labels.size, sizes[0]))
    out: NDArray[np.int64] = members[chosen[:, :, None], within].reshape(resamples, n)
    return out


def rank_rows(values: FloatArray) -> FloatArray:
    """Ranks along the last axis (ties get their average rank)."""
    stats = optional_import("scipy.stats", "experiments")
    out: FloatArray = stats.rankdata(values, axis=-1)
    return out


def _pearson_rows(x: FloatArray, y: FloatArray) -> FloatArray:
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    denom = np.sqrt((xc * xc).sum(-1) * (yc * yc).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.where(denom > 0, (xc * yc).sum(-1) / denom, np.nan)
    return out


def percentile_interval(samples: FloatArray, level: float = 0.95) -> tuple[float, float]:
    """The central percentile interval of bootstrap replicates (NaNs dropped)."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - level) / 2
    lo, hi = np.quantile(finite, [alpha, 1 - alpha])
    return float(lo), float(hi)


def _constant(values: FloatArray) -> bool:
    spread = float(np.ptp(values)) if values.size else 0.0
    return spread <= 1e-9 * max(float(np.abs(values).max(initial=0.0)), 1e-12)


def _correlations(
    frame: Any, measure: str, resamples: int, rng: np.random.Generator
) -> dict[str, Any]:
    stats = optional_import("scipy.stats", "experiments")
    x = frame[measure].to_numpy(dtype=np.float64)
    y = frame["change"].to_numpy(dtype=np.float64)
    row: dict[str, Any] = {"measure": measure, "windows": int(x.size)}
    row["runs"] = int(frame["seed"].nunique())
    row["curvature_min"] = float(x.min()) if x.size else np.nan
    row["curvature_max"] = float(x.max()) if x.size else np.nan
    row["mean_change"] = float(y.mean()) if y.size else np.nan
    names = ("spearman", "pearson", "partial_spearman")
    if x.size < 3 or _constant(x) or _constant(y):
        row["note"] = f"constant {measure}" if x.size >= 3 and _constant(x) else "too few/constant"
        for name in names:
            row[name] = row[f"{name}_lo"] = row[f"{name}_hi"] = row[f"{name}_p"] = np.nan
        return row
    row["note"] = ""
    point = {"spearman": stats.spearmanr(x, y), "pearson": stats.pearsonr(x, y)}
    index = cluster_bootstrap_indices(frame["seed"].to_numpy(), resamples, rng)
    xb, yb = x[index], y[index]
    boot = {
        "spearman": _pearson_rows(rank_rows(xb), rank_rows(yb)),
        "pearson": _pearson_rows(xb, yb),
    }
    for name in names[:2]:
        row[name] = float(point[name][0])
        row[f"{name}_p"] = float(point[name][1])
        row[f"{name}_lo"], row[f"{name}_hi"] = percentile_interval(boot[name])
    # Rank correlation with the target's own variation held fixed (None: not recorded).
    control = frame.get(CONTROL)
    z = control.to_numpy(dtype=np.float64) if control is not None else np.full(x.size, np.nan)
    row["partial_spearman_p"] = np.nan
    if measure == CONTROL or not np.all(np.isfinite(z)) or _constant(z):
        row["partial_spearman"] = row["partial_spearman_lo"] = row["partial_spearman_hi"] = np.nan
        return row
    row["partial_spearman"] = float(_partial_rank_rows(x[None], y[None], z[None])[0])
    partial = _partial_rank_rows(xb, yb, z[index])
    row["partial_spearman_lo"], row["partial_spearman_hi"] = percentile_interval(partial)
    return row


def _partial_rank_rows(x: FloatArray, y: FloatArray, z: FloatArray) -> FloatArray:
    """Partial Spearman correlation of x and y given z, row by row: the correlation of
    the ranks of x and y after a linear fit on the ranks of z is taken out of each."""
    rx, ry, rz = rank_rows(x), rank_rows(y), rank_rows(z)
    rz = rz - rz.mean(-1, keepdims=True)
    var = (rz * rz).sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        res_x = rx - rx.mean(-1, keepdims=True)
        res_y = ry - ry.mean(-1, keepdims=True)
        res_x = res_x - (res_x * rz).sum(-1, keepdims=True) / var * rz
        res_y = res_y - (res_y * rz).sum(-1, keepdims=True) / var * rz
    return _pearson_rows(res_x, res_y)


def _groups(changes: Any, kinds: tuple[str, ...]) -> list[tuple[dict[str, Any], Any]]:
    """Per-manifold groups and one pooled group ('all') per family and target."""
    selected = changes[changes["kind"].isin(kinds)]
    out = []
    for key, frame in selected.groupby([*KEYS, "kind"], sort=False):
        out.append((dict(zip([*KEYS, "kind"], key)), frame))
    pooled_keys = ["family", "target", "width", "depth", "kind"]
    for key, frame in selected.groupby(pooled_keys, sort=False):
        if frame["manifold"].nunique() > 1:
            out.append(({**dict(zip(pooled_keys, key)), "manifold": "all"}, frame))
    return out


def correlation_table(changes: Any, resamples: int = 1000, seed: int = 0) -> Any:
    """Spearman and Pearson correlation of the density change with |curvature| (window
    means), with bootstrap CIs, per manifold, target and trajectory kind (on the manifold,
    and the offset controls with the curvature of the manifold point they come from), and
    pooled per family (``manifold == "all"``). For step targets the windows near a jump
    are left out, so the jumps' own effect does not pass for one of curvature.

    Pooled rows first standardise curvature and change within each manifold and seed
    (:func:`within_run_scores`), so that differences between manifolds (their size, how
    hard the target is on them) do not pass for an effect of curvature along them; their
    ``curvature_min/max`` and ``mean_change`` are of the standardised values.

    ``partial_spearman`` holds the target's bending in the window fixed; rows with
    ``measure == "target_bending"`` are the positive control: the change against how much
    the target's graph bends (where a piecewise-linear fit needs breakpoints)."""
    pd = optional_import("pandas", "experiments")
    rng = np.random.default_rng(seed)
    rows = []
    # Windows near a jump of a step target measure the jump, not the curvature.
    away = ~(changes["near_step"].to_numpy(dtype=bool) & (changes["target"] == "step"))
    for ident, frame in _groups(changes[away], ("on", "offset")):
        controls = (CONTROL,) if CONTROL in frame else ()
        for measure in (*FAMILY_MEASURES[ident["family"]], *controls):
            data = frame
            if ident["manifold"] == "all":
                data = within_run_scores(
                    frame, list(dict.fromkeys([measure, "change", *controls]))
                )
            rows.append({**ident, **_correlations(data, measure, resamples, rng)})
    return pd.DataFrame(rows)


def within_run_scores(frame: Any, columns: list[str]) -> Any:
    """``frame`` with ``columns`` standardised (z-scores) within each manifold and seed;
    a column that is constant within a run becomes 0 there."""
    out = frame.copy()
    runs = out.groupby(["manifold", "seed"], sort=False)
    for column in columns:
        centred = out[column] - runs[column].transform("mean")
        spread = runs[column].transform("std", ddof=0)
        scale = spread.where(spread > 1e-12 * (runs[column].transform("max").abs() + 1e-300))
        out[column] = (centred / scale).fillna(0.0)
    return out


def _near_and_far_means(
    near: NDArray[np.bool_], values: FloatArray, index: NDArray[np.int64]
) -> tuple[FloatArray, FloatArray]:
    """Mean of ``values`` near the jumps and elsewhere, for each row of ``index``."""
    nb = near[index]
    vb = values[index]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (vb * nb).sum(-1) / nb.sum(-1), (vb * ~nb).sum(-1) / (~nb).sum(-1)


def _ratio_rows(
    near: NDArray[np.bool_], values: FloatArray, index: NDArray[np.int64]
) -> FloatArray:
    inside, outside = _near_and_far_means(near, values, index)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = inside / outside
    return out


def _difference_rows(
    near: NDArray[np.bool_], values: FloatArray, index: NDArray[np.int64]
) -> FloatArray:
    inside, outside = _near_and_far_means(near, values, index)
    out: FloatArray = inside - outside
    return out


def discontinuity_table(changes: Any, resamples: int = 1000, seed: int = 0) -> Any:
    """Density near the target's jumps against elsewhere, on the manifold.

    Per manifold and target (and pooled per family): ``ratio_final`` = mean density after
    training in windows within one window of a jump over the mean elsewhere,
    ``ratio_init`` the same before training (a control: about 1), and ``excess_change`` =
    mean change near the jumps minus elsewhere, each with a bootstrap CI. For smooth
    targets the same positions serve as a placebo.
    """
    pd = optional_import("pandas", "experiments")
    rng = np.random.default_rng(seed)
    rows = []
    stats: dict[str, tuple[str, Callable[..., FloatArray]]] = {
        "ratio_final": ("density_final", _ratio_rows),
        "ratio_init": ("density_init", _ratio_rows),
        "excess_change": ("change", _difference_rows),
    }
    for ident, frame in _groups(changes, ("on",)):
        near = frame["near_step"].to_numpy(dtype=bool)
        row: dict[str, Any] = {**ident, "near_windows": int(near.sum())}
        row["other_windows"] = int((~near).sum())
        if near.all() or not near.any():
            rows.append(row)
            continue
        index = cluster_bootstrap_indices(frame["seed"].to_numpy(), resamples, rng)
        full = np.arange(near.size)[None, :]
        for name, (column, statistic) in stats.items():
            values = frame[column].to_numpy(dtype=np.float64)
            row[name] = float(statistic(near, values, full)[0])
            row[f"{name}_lo"], row[f"{name}_hi"] = percentile_interval(
                statistic(near, values, index)
            )
        rows.append(row)
    return pd.DataFrame(rows)
