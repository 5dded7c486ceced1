"""The study's measures beyond breakpoint counts (issue 15), as tables for the report.

Each function takes tables of the sweep (or of its architecture and dynamics sub-sweeps,
:func:`~lrcore.experiments.sweep.architecture_config`,
:func:`~lrcore.experiments.sweep.dynamics_config`) and returns one table with the seed as
the unit of inference:

- :func:`slope_jump_table`: does the slope-jump density ``|Δ ∂f/∂s|`` per unit length
  follow the target's bending and the curvature more closely than raw counts do?
- :func:`theory_table`: measured density at initialisation over the Hanin-Rolnick
  expectation, per family and trajectory kind;
- :func:`tube_profile_table` and :func:`tube_concentration_table`: the tube density map
  around plane curves, as a profile against the normal offset and as the concentration
  of boundaries on the curve before and after training; :func:`local_tube_tables` the
  same for the local tube maps (curves in higher dimension, surfaces, image orbits),
  per family, arm and target and pooled per family, with the curvature link across a
  run's sample points;
- :func:`architecture_table`: density per neuron and the curvature link per architecture,
  and the trend of the link with size;
- :func:`dynamics_table`: density, slope-jump density and the curvature link at every
  checkpoint of a longer training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lrcore._optional import optional_import

from .analysis import CONTROL, PRIMARY
from .inference import fisher_z, seed_level_test, spearman_rows

__all__ = [
    "CORE",
    "architecture_table",
    "dynamics_table",
    "local_tube_tables",
    "slope_jump_table",
    "theory_table",
    "tube_concentration_table",
    "tube_profile_table",
]

FloatArray = NDArray[np.float64]
#: The groups of the plane curves' tube tables; the local tube maps add the family.
TUBE_KEYS = ("arm", "target")
LOCAL_KEYS = ("family", "arm", "target")
#: Offsets within this fraction of the tube's half-width form its core (on the curve);
#: beyond :data:`RIM` its rim.
CORE = 0.25
RIM = 0.5


def _per_run_z(frame: Any, x: str, y: str) -> Any:
    """Per run, the mean over its trajectories of the Fisher z of Spearman(x, y) across
    windows (NaN where a side is constant)."""
    pd = optional_import("pandas", "experiments")
    out = []
    for (run, _), part in frame.groupby(["run", "trajectory"], sort=False):
        part = part.sort_values("window")
        rho = spearman_rows(part[x].to_numpy(np.float64)[None], part[y].to_numpy(np.float64)[None])
        out.append((run, float(fisher_z(rho)[0])))
    table = pd.DataFrame(out, columns=["run", "z"])
    return table.groupby("run")["z"].mean()


def slope_jump_table(changes: Any) -> Any:
    """Slope-jump density against raw counts, per family, arm and target (on-manifold
    windows of runs that fit, after training).

    For each run, the Spearman correlation across windows of (a) the slope-jump density
    ``jump_final`` and (b) the breakpoint density ``density_final`` with the target's
    bending (``target_bending``) and with ``|curvature|``; per seed the mean Fisher z;
    across seeds the t interval. ``difference``: (a) minus (b) per seed, tested against
    0: does weighting breakpoints by the slope jump follow the measure more closely?

    Examples
    --------
    >>> from lrcore.experiments.synthetic import synthetic_tables
    >>> from lrcore.experiments.analysis import density_changes
    >>> w = synthetic_tables(seeds=4, windows=16, arms=("arc",), targets=("smooth",))["windows"]
    >>> w = w.assign(jump_density=w["target_bending"] * (1 + w["step"]))
    >>> table = slope_jump_table(density_changes(w))
    >>> sorted(set(table["measure"]))
    ['curvature', 'target_bending']
    """
    pd = optional_import("pandas", "experiments")
    rows: list[dict[str, Any]] = []
    if "jump_final" not in changes or changes["jump_final"].isna().all():
        return pd.DataFrame(rows)
    on = changes[(changes["kind"] == "on") & changes["jump_final"].notna()]
    if "near_step" in on:  # a step target's jumps are its own breakpoints
        on = on[~(on["near_step"].astype(bool) & (on["target"] == "step"))]
    keys = ["family", "arm", "target", "width", "depth"]
    ident = on.drop_duplicates("run").set_index("run")[[*keys, "manifold", "seed"]]
    for measure in (CONTROL, "curvature"):
        jumps = _per_run_z(on, "jump_final", measure)
        counts = _per_run_z(on, "density_final", measure)
        frame = ident.join(jumps.rename("z_jumps")).join(counts.rename("z_counts"))
        for key, part in frame.groupby(keys, sort=False):
            seeds = part.groupby("seed")[["z_jumps", "z_counts"]].mean()
            both = seeds.dropna()
            a = seed_level_test(seeds["z_jumps"].dropna().to_numpy(np.float64))
            b = seed_level_test(seeds["z_counts"].dropna().to_numpy(np.float64))
            d = seed_level_test((both["z_jumps"] - both["z_counts"]).to_numpy(np.float64))
            rows.append(
                {
                    **dict(zip(keys, key)),
                    "measure": measure,
                    "seeds": int(a["seeds"]),
                    "rho_jumps": a["rho"],
                    "rho_jumps_lo": a["rho_lo"],
                    "rho_jumps_hi": a["rho_hi"],
                    "p_jumps": a["p_t"],
                    "rho_counts": b["rho"],
                    "rho_counts_lo": b["rho_lo"],
                    "rho_counts_hi": b["rho_hi"],
                    "p_counts": b["p_t"],
                    "difference": d["mean_z"],
                    "difference_lo": d["z_lo"],
                    "difference_hi": d["z_hi"],
                    "p_difference": d["p_t"],
                }
            )
    return pd.DataFrame(rows)


def theory_table(theory: Any, runs: Any) -> Any:
    """Measured density at initialisation over the Hanin-Rolnick expectation, per family
    and trajectory kind (architecture too): per seed the geometric mean of the runs'
    ratios, across seeds the geometric mean with a t interval of the log (and the
    t-test of ratio 1). Runs are those of ``runs`` (all runs: initialisation does not
    depend on the fit).

    Examples
    --------
    >>> import pandas as pd
    >>> theory = pd.DataFrame({"run": list("abcd"), "family": "curves", "kind": "on",
    ...     "width": 8, "depth": 2, "seed": [0, 1, 2, 3], "ratio": [0.9, 1.1, 1.0, 1.05],
    ...     "expected": 1.0, "measured": [0.9, 1.1, 1.0, 1.05]})
    >>> row = theory_table(theory, None).iloc[0]
    >>> bool(row["ratio_lo"] < 1 < row["ratio_hi"])
    True
    """
    pd = optional_import("pandas", "experiments")
    rows: list[dict[str, Any]] = []
    if theory is None or theory.empty:
        return pd.DataFrame(rows)
    keys = ["family", "kind", "width", "depth"]
    ok = theory[np.isfinite(theory["ratio"]) & (theory["ratio"] > 0)]
    for key, part in ok.groupby(keys, sort=False):
        logs = np.log(part["ratio"]).groupby(part["seed"]).mean().to_numpy(np.float64)
        test = seed_level_test(logs)
        rows.append(
            {
                **dict(zip(keys, key)),
                "trajectories": len(part),
                "seeds": int(test["seeds"]),
                "expected": float(part["expected"].mean()),
                "measured": float(part["measured"].mean()),
                "ratio": math.exp(test["mean_z"]),
                "ratio_lo": math.exp(test["z_lo"]) if np.isfinite(test["z_lo"]) else math.nan,
                "ratio_hi": math.exp(test["z_hi"]) if np.isfinite(test["z_hi"]) else math.nan,
                "p_ratio": test["p_t"],
            }
        )
    return pd.DataFrame(rows)


def tube_profile_table(tube: Any, fitted: Any = None, keys: Sequence[str] = TUBE_KEYS) -> Any:
    """Boundary length per unit area against the signed normal offset (bins of the tube
    map, pooled over windows, manifolds and seeds), before and after training, per group
    of ``keys`` (arm and target by default). ``fitted``: run ids to keep (runs that
    fit), or None for all. ``change_lo``, ``change_hi``: the t interval across seeds of
    the per-seed mean change in the bin (``seeds`` of them).

    Examples
    --------
    >>> import pandas as pd
    >>> tube = pd.DataFrame({"run": "a", "arm": "arc", "target": "smooth", "seed": 0,
    ...     "manifold": "circle", "window": [0, 0], "offset_bin": [0, 1],
    ...     "offset": [-0.05, 0.05], "half_width": 0.1, "curvature": 1.0,
    ...     "tube_init": [1.0, 2.0], "tube_final": [3.0, 2.0]})
    >>> tube_profile_table(tube)["change"].tolist()
    [2.0, 0.0]
    """
    pd = optional_import("pandas", "experiments")
    if tube is None or tube.empty:
        return pd.DataFrame()
    keys = list(keys)
    part = tube if fitted is None else tube[tube["run"].isin(fitted)]
    if part.empty:
        return pd.DataFrame()
    part = part.assign(
        relative_offset=part["offset"] / part["half_width"],
        change=part["tube_final"] - part["tube_init"],
    )
    out = (
        part.groupby([*keys, "offset_bin"], sort=True)
        .agg(
            relative_offset=("relative_offset", "mean"),
            tube_init=("tube_init", "mean"),
            tube_final=("tube_final", "mean"),
            runs=("run", "nunique"),
        )
        .reset_index()
    )
    out["change"] = out["tube_final"] - out["tube_init"]
    per_seed = part.groupby([*keys, "offset_bin", "seed"], sort=True)["change"].mean()
    bounds = []
    for _, values in per_seed.groupby(level=list(range(len(keys) + 1)), sort=True):
        test = seed_level_test(values.to_numpy(np.float64))
        bounds.append((int(test["seeds"]), test["z_lo"], test["z_hi"]))
    out[["seeds", "change_lo", "change_hi"]] = pd.DataFrame(bounds, index=out.index)
    return out


def tube_concentration_table(
    tube: Any, fitted: Any = None, keys: Sequence[str] = TUBE_KEYS
) -> Any:
    """Does training concentrate region boundaries on the curve or push them off it?

    Per run, the concentration = boundary length per unit area in the tube's core
    (``|offset| <= CORE * half_width``) over that in its rim (``|offset| >= RIM *
    half_width``), before and after training; per seed the geometric mean over
    manifolds of final over initial concentration; across seeds the geometric mean with
    a t interval of the log, per group of ``keys`` (arm and target by default; ``gain``
    > 1: boundaries gathered on the curve). Also ``link``: per run the Spearman
    correlation along the curve (across its ``window`` values) of the core's density
    change with |curvature|, as rho with a t interval across seeds (NaN where the
    curvature does not vary).

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [{"run": f"r{s}", "arm": "arc", "target": "smooth", "seed": s,
    ...          "manifold": "circle", "window": w, "offset_bin": b, "offset": o,
    ...          "half_width": 0.2, "curvature": 1.0 + w,
    ...          "tube_init": 1.0, "tube_final": (3.0 if b in (1, 2) else 1.0) + 0.1 * s}
    ...         for s in range(4) for w in range(4) for b, o in enumerate((-0.15, -0.03, 0.03, 0.15))]
    >>> row = tube_concentration_table(pd.DataFrame(rows)).iloc[0]
    >>> bool(row["gain_lo"] > 1)
    True
    """
    pd = optional_import("pandas", "experiments")
    rows: list[dict[str, Any]] = []
    if tube is None or tube.empty:
        return pd.DataFrame(rows)
    keys = list(keys)
    part = tube if fitted is None else tube[tube["run"].isin(fitted)]
    if part.empty:
        return pd.DataFrame(rows)
    relative = (part["offset"] / part["half_width"]).abs()
    core = part[relative <= CORE]
    rim = part[relative >= RIM]
    per_run = pd.DataFrame(
        {
            "core_init": core.groupby("run")["tube_init"].mean(),
            "core_final": core.groupby("run")["tube_final"].mean(),
            "rim_init": rim.groupby("run")["tube_init"].mean(),
            "rim_final": rim.groupby("run")["tube_final"].mean(),
        }
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        per_run["before"] = per_run["core_init"] / per_run["rim_init"]
        per_run["after"] = per_run["core_final"] / per_run["rim_final"]
        per_run["gain"] = per_run["after"] / per_run["before"]
    along = (
        core.groupby(["run", "window"])
        .agg(change=("tube_final", "mean"), init=("tube_init", "mean"), k=("curvature", "mean"))
        .reset_index()
    )
    along["change"] = along["change"] - along["init"]
    along["trajectory"] = "on"
    per_run["link"] = _per_run_z(along, "change", "k")
    columns = list(dict.fromkeys([*keys, "manifold", "seed"]))
    ident = part.drop_duplicates("run").set_index("run")[columns]
    per_run = per_run.join(ident)
    for key, group in per_run.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = {**dict(zip(keys, key)), "runs": len(group)}
        for name in ("before", "after", "gain"):
            values = group[name]
            values = values[np.isfinite(values) & (values > 0)]
            logs = np.log(values).groupby(group.loc[values.index, "seed"]).mean()
            test = seed_level_test(logs.to_numpy(np.float64))
            row[name] = math.exp(test["mean_z"]) if np.isfinite(test["mean_z"]) else math.nan
            for bound in ("lo", "hi"):
                value = test[f"z_{bound}"]
                row[f"{name}_{bound}"] = math.exp(value) if np.isfinite(value) else math.nan
            row[f"p_{name}"] = test["p_t"]
            row["seeds"] = int(test["seeds"])
        link = group["link"].groupby(group["seed"]).mean().dropna().to_numpy(np.float64)
        test = seed_level_test(link)
        row.update(
            link=test["rho"],
            link_lo=test["rho_lo"],
            link_hi=test["rho_hi"],
            p_link=test["p_t"],
            link_seeds=int(test["seeds"]),
        )
        rows.append(row)
    return pd.DataFrame(rows)


def local_tube_tables(local: Any, fitted: Any = None) -> tuple[Any, Any]:
    """The profile and the concentration of the local tube maps (curves in higher
    dimension, surfaces, image orbits): :func:`tube_profile_table` and
    :func:`tube_concentration_table` per family, arm and target, then per family pooled
    over arms and targets (rows with ``arm`` and ``target`` ``"all"``; a seed's runs
    of every arm and target averaged first). The link is across a run's sample points
    (its ``window`` values), NaN where the curvature is the same at all of them.

    Examples
    --------
    >>> import pandas as pd
    >>> rows = [{"run": f"r{s}{a}", "family": "surfaces", "arm": a, "target": "smooth",
    ...          "seed": s, "manifold": "torus", "window": w, "offset_bin": b, "offset": o,
    ...          "half_width": 0.2, "curvature": 1.0 + w, "tube_init": 1.0,
    ...          "tube_final": (0.5 if b in (1, 2) else 1.0) + 0.01 * s}
    ...         for a in ("arc", "ambient") for s in range(4) for w in range(4)
    ...         for b, o in enumerate((-0.15, -0.03, 0.03, 0.15))]
    >>> profile, concentration = local_tube_tables(pd.DataFrame(rows))
    >>> pooled = concentration.iloc[-1]
    >>> pooled["arm"], int(pooled["runs"]), bool(pooled["gain_hi"] < 1)
    ('all', 8, True)
    """
    pd = optional_import("pandas", "experiments")
    if local is None or local.empty:
        return pd.DataFrame(), pd.DataFrame()
    pooled = {"arm": "all", "target": "all"}
    profile = pd.concat(
        [
            tube_profile_table(local, fitted, LOCAL_KEYS),
            tube_profile_table(local, fitted, ("family",)).assign(**pooled),
        ],
        ignore_index=True,
    )
    concentration = pd.concat(
        [
            tube_concentration_table(local, fitted, LOCAL_KEYS),
            tube_concentration_table(local, fitted, ("family",)).assign(**pooled),
        ],
        ignore_index=True,
    )

    def keys_first(frame: Any) -> Any:
        if frame.empty:  # no run fits
            return pd.DataFrame()
        return frame[[*LOCAL_KEYS, *[c for c in frame if c not in LOCAL_KEYS]]]

    return keys_first(profile), keys_first(concentration)


def architecture_table(tables: Any) -> Any:
    """Per architecture of the architecture sweep: runs, the fraction that fit, mean
    on-manifold density before and after training per unit length and per neuron, and
    the pooled curvature link (the primary endpoint's definition: rho with a t interval
    across seeds). A last row per sweep (``width == 0``): the trend of the link with
    size, per seed the least-squares slope of z on log2(neurons), tested across seeds.

    ``tables``: the :func:`~lrcore.experiments.analysis.analyse` tables of the sweep.

    Examples
    --------
    >>> from lrcore.experiments.analysis import analyse
    >>> from lrcore.experiments.synthetic import synthetic_tables
    >>> data = synthetic_tables(seeds=4, windows=8, arms=("arc",), targets=("smooth",))
    >>> table = architecture_table(analyse(**data, resamples=9))
    >>> table[["width", "depth"]].values.tolist()
    [[8, 2]]
    """
    pd = optional_import("pandas", "experiments")
    fit, changes, effects = tables["fit"], tables["changes"], tables["seed_effects"]
    correlations = tables["correlations"]
    rows: list[dict[str, Any]] = []
    on = changes[changes["kind"] == "on"]
    pooled = (
        correlations[
            (correlations["kind"] == "on")
            & (correlations["measure"] == PRIMARY["measure"])
            & (correlations["manifold"] == "all")
            & (correlations["family"] == PRIMARY["family"])
        ]
        if not correlations.empty
        else correlations
    )
    for (width, depth), part in fit.groupby(["width", "depth"], sort=True):
        neurons = int(width) * int(depth)
        density = on[(on["width"] == width) & (on["depth"] == depth)]
        row: dict[str, Any] = {
            "width": int(width),
            "depth": int(depth),
            "neurons": neurons,
            "runs": len(part),
            "fit_rate": float(part["fit_ok"].mean()),
            "density_init": float(density["density_init"].mean()),
            "density_final": float(density["density_final"].mean()),
        }
        row["per_neuron_init"] = row["density_init"] / neurons
        row["per_neuron_final"] = row["density_final"] / neurons
        match = (
            pooled[(pooled["width"] == width) & (pooled["depth"] == depth)]
            if len(pooled)
            else pooled
        )
        for name in ("rho", "rho_lo", "rho_hi", "p_t", "seeds"):
            row[name] = float(match.iloc[0][name]) if len(match) else math.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    if len(out) > 1 and not effects.empty and "measure" in effects:
        curv = effects[
            (effects["measure"] == PRIMARY["measure"])
            & (effects["kind"] == "on")
            & (effects["family"] == PRIMARY["family"])
        ]
        per = curv.groupby(["seed", "width", "depth"])["z"].mean().reset_index()
        per["size"] = np.log2(per["width"] * per["depth"])
        slopes = [
            float(np.polyfit(g["size"], g["z"], 1)[0])
            for _, g in per.dropna().groupby("seed")
            if g["size"].nunique() > 1
        ]
        test = seed_level_test(np.asarray(slopes, dtype=np.float64))
        trend = {
            "width": 0,
            "depth": 0,
            "slope": test["mean_z"],
            "slope_lo": test["z_lo"],
            "slope_hi": test["z_hi"],
            "p_slope": test["p_t"],
            "seeds": test["seeds"],
        }
        out = pd.concat([out, pd.DataFrame([trend])], ignore_index=True)
    return out


def dynamics_table(windows: Any, fit: Any = None) -> Any:
    """Per checkpoint of the dynamics run (on-manifold windows; runs that fit at the
    end, or all when ``fit`` is None): mean density and slope-jump density (per seed
    the mean over its runs, with a t interval across seeds), and the curvature link of
    the change so far (Spearman across windows of density(step) - density(0) with
    |curvature|, per seed mean Fisher z, as rho with a t interval).

    Examples
    --------
    >>> from lrcore.experiments.synthetic import synthetic_tables
    >>> w = synthetic_tables(seeds=3, windows=8, arms=("arc",), targets=("smooth",))["windows"]
    >>> dynamics_table(w)["step"].tolist()
    [0, 100]
    """
    pd = optional_import("pandas", "experiments")
    rows: list[dict[str, Any]] = []
    on = windows[windows["kind"] == "on"]
    if fit is not None:
        on = on[on["run"].isin(set(fit.loc[fit["fit_ok"], "run"]))]
    if on.empty:
        return pd.DataFrame(rows)
    keys = ["run", "trajectory", "window"]
    init = on[on["step"] == 0].set_index(keys)["density"].rename("density_at_init")
    on = on.join(init, on=keys)
    on = on.assign(change=on["density"] - on["density_at_init"])
    has_jumps = "jump_density" in on and on["jump_density"].notna().any()
    for step, part in on.groupby("step", sort=True):
        row: dict[str, Any] = {"step": int(step), "runs": int(part["run"].nunique())}
        columns = ["density", "jump_density"] if has_jumps else ["density"]
        for column in columns:
            per_seed = part.groupby("seed")[column].mean().to_numpy(np.float64)
            test = seed_level_test(per_seed)
            row[column] = test["mean_z"]
            row[f"{column}_lo"], row[f"{column}_hi"] = test["z_lo"], test["z_hi"]
        if step > 0:
            z = _per_run_z(part, "change", "curvature")
            seeds = part.drop_duplicates("run").set_index("run")["seed"]
            per_seed = z.groupby(seeds.reindex(z.index)).mean().dropna().to_numpy(np.float64)
            test = seed_level_test(per_seed)
            row.update(
                rho=test["rho"], rho_lo=test["rho_lo"], rho_hi=test["rho_hi"], p_t=test["p_t"]
            )
        rows.append(row)
    return pd.DataFrame(rows)
