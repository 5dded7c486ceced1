"""Figures of the study (matplotlib, Agg backend, PNG files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lrcore._optional import optional_import

from .analysis import FAMILY_MEASURES
from .inference import EQUIVALENCE_RHO

__all__ = [
    "architecture_figure",
    "density_figure",
    "dose_figure",
    "dynamics_figure",
    "forest_figure",
    "local_tube_figure",
    "partition_figure",
    "pyplot",
    "scatter_figure",
    "slope_jump_figure",
    "theory_figure",
    "training_figure",
    "tube_figures",
]


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend."""
    matplotlib = optional_import("matplotlib", "experiments")
    matplotlib.use("Agg", force=True)
    return optional_import("matplotlib.pyplot", "experiments")


def _save(plt: Any, fig: Any, path: Path) -> Path:
    """Write a finished figure as PNG and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text)


def _arm_targets(frame: Any) -> list[tuple[str, str]]:
    """The (arm, target) pairs present, in order of appearance."""
    return list(dict.fromkeys(zip(frame["arm"], frame["target"])))


def density_figure(windows: Any, manifold: str, out: Path) -> Path:
    """Density along arc length before and after training, with curvature overlaid:
    one panel per arm and target, the first seed's first on-manifold trajectory."""
    plt = pyplot()
    frame = windows[(windows["manifold"] == manifold) & (windows["kind"] == "on")]
    family = str(frame["family"].iloc[0])
    measure = FAMILY_MEASURES[family][0]
    pairs = _arm_targets(frame)
    fig, axes = plt.subplots(1, len(pairs), figsize=(6 * len(pairs), 3.8), squeeze=False)
    for ax, (arm, target) in zip(axes[0], pairs):
        part = frame[(frame["arm"] == arm) & (frame["target"] == target)]
        part = part[part["seed"] == part["seed"].min()]
        part = part[part["trajectory"] == part["trajectory"].iloc[0]]
        last = part["step"].max()
        for step, colour, label in ((0, "0.55", "initialisation"), (last, "C0", "trained")):
            at = part[part["step"] == step]
            ax.step(at["center"], at["density"], where="mid", color=colour, label=label)
        near = part[(part["step"] == 0) & part["near_step"].astype(bool)]["center"]
        for x in near:
            ax.axvline(x, color="C3", alpha=0.12, linewidth=6)
        twin = ax.twinx()
        at = part[part["step"] == 0]
        twin.plot(at["center"], at[measure], color="C1", linewidth=1.2, label=f"|{measure}|")
        twin.set_ylabel(f"|{measure}| (window mean)", color="C1")
        ax.set_xlabel("arc length")
        ax.set_ylabel("breakpoints per unit length")
        ax.set_title(f"{manifold}, {arm} arm, {target} target\n(shaded: near the jump positions)")
        ax.legend(loc="upper left", fontsize="small")
    return _save(plt, fig, out / f"density_{_slug(manifold)}.png")


def scatter_figure(changes: Any, family: str, out: Path) -> Path:
    """Density change against |curvature| for every on-manifold window of a family: one
    row of panels per arm, one column per curvature measure."""
    plt = pyplot()
    frame = changes[(changes["family"] == family) & (changes["kind"] == "on")]
    measures = FAMILY_MEASURES[family]
    arms = list(dict.fromkeys(frame["arm"]))
    fig, axes = plt.subplots(
        len(arms), len(measures), figsize=(6 * len(measures), 4.2 * len(arms)), squeeze=False
    )
    markers = {"smooth": "o", "step": "x"}
    for row, arm in zip(axes, arms):
        for ax, measure in zip(row, measures):
            part = frame[frame["arm"] == arm]
            for k, (manifold, sub) in enumerate(part.groupby("manifold", sort=False)):
                for target, points in sub.groupby("target", sort=False):
                    ax.scatter(
                        points[measure],
                        points["change"],
                        s=6,
                        alpha=0.4,
                        marker=markers.get(str(target), "o"),
                        color=f"C{k % 10}",
                        label=f"{manifold} ({target})",
                    )
            ax.set_xlabel(f"|{measure}| (window mean)")
            ax.set_ylabel("density change (after - before training)")
            ax.set_title(f"{family}, {arm} arm: density change against |{measure}|")
            ax.axhline(0.0, color="0.6", linewidth=0.8)
        row[-1].legend(fontsize="x-small", markerscale=2, loc="best")
    return _save(plt, fig, out / f"scatter_{family}.png")


def training_figure(windows: Any, family: str, out: Path) -> Path:
    """Mean density at every checkpoint, per arm, target and trajectory kind, for a
    family (seeds and manifolds averaged)."""
    plt = pyplot()
    frame = windows[windows["family"] == family]
    keys = ["arm", "target", "kind", "step"]
    means = frame.groupby(keys, sort=False)["density"].mean().reset_index()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    styles = {"on": "-", "offset": "--", "line": ":"}
    for k, ((arm, target), part) in enumerate(means.groupby(["arm", "target"], sort=False)):
        for kind, sub in part.groupby("kind", sort=False):
            ax.plot(
                sub["step"],
                sub["density"],
                styles.get(str(kind), "-"),
                marker="o",
                color=f"C{k}",
                label=f"{arm}/{target}, {kind}",
            )
    ax.set_xlabel("training step")
    ax.set_ylabel("mean breakpoints per unit length")
    ax.set_title(f"{family}: density during training")
    ax.legend(fontsize="x-small")
    return _save(plt, fig, out / f"training_{family}.png")


def forest_figure(seed_effects: Any, correlations: Any, family: str, out: Path) -> Path:
    """Per-seed Fisher z of Spearman(change, |curvature|) on the manifold, one row per
    manifold (and the pooled family), with the seeds' mean and its 95% t interval, the
    zero line and the equivalence margin: one panel per arm and target.

    Examples
    --------
    >>> import tempfile
    >>> from lrcore.experiments.analysis import analyse
    >>> from lrcore.experiments.synthetic import synthetic_tables
    >>> data = synthetic_tables(seeds=3, windows=8, arms=("arc",), targets=("smooth",))
    >>> tables = analyse(**data, resamples=9)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = forest_figure(tables["seed_effects"], tables["correlations"], "curves", Path(folder))
    ...     dose = dose_figure(tables["correlations"], Path(folder))
    >>> path.name, dose.name
    ('forest_curves.png', 'dose_response.png')
    """
    plt = pyplot()
    effects = seed_effects[
        (seed_effects["family"] == family)
        & (seed_effects["kind"] == "on")
        & (seed_effects["measure"] == "curvature")
    ]
    tests = correlations[
        (correlations["family"] == family)
        & (correlations["kind"] == "on")
        & (correlations["measure"] == "curvature")
        & correlations["mean_z"].notna()
    ]
    pairs = _arm_targets(tests)
    manifolds = list(dict.fromkeys(tests["manifold"]))
    fig, axes = plt.subplots(
        1,
        max(len(pairs), 1),
        figsize=(4.8 * max(len(pairs), 1), 0.45 * len(manifolds) + 1.8),
        squeeze=False,
        sharey=True,
    )
    margin = float(np.arctanh(EQUIVALENCE_RHO))
    jitter = np.random.default_rng(0)
    for ax, (arm, target) in zip(axes[0], pairs):
        for y, manifold in enumerate(manifolds):
            points = effects[
                (effects["arm"] == arm)
                & (effects["target"] == target)
                & (effects["manifold"] == manifold)
            ]["z"]
            ax.plot(
                points,
                y + 0.15 * jitter.uniform(-1, 1, len(points)),
                ".",
                color="0.6",
                markersize=4,
            )
            row = tests[
                (tests["arm"] == arm)
                & (tests["target"] == target)
                & (tests["manifold"] == manifold)
            ]
            if not row.empty:
                r = row.iloc[0]
                colour = "C3" if r["primary"] else "C0"
                ax.errorbar(
                    r["mean_z"],
                    y,
                    xerr=[[r["mean_z"] - r["z_lo"]], [r["z_hi"] - r["mean_z"]]],
                    fmt="D" if manifold == "all" else "o",
                    color=colour,
                    capsize=3,
                )
        ax.axvline(0.0, color="k", linewidth=0.8)
        for x in (-margin, margin):
            ax.axvline(x, color="C2", linestyle="--", linewidth=0.8)
        ax.set_yticks(range(len(manifolds)))
        ax.set_yticklabels(manifolds)
        ax.invert_yaxis()
        ax.set_xlabel("Fisher z of Spearman(change, |curvature|)")
        ax.set_title(f"{family}, {arm} arm, {target} target", fontsize="medium")
    return _save(plt, fig, out / f"forest_{family}.png")


def dose_figure(correlations: Any, out: Path) -> Path | None:
    """Mean z (95% t interval over seeds) against the curvature contrast (the coefficient
    of variation of |curvature|) for every dose-response series, one panel per series and
    one line per arm and target; None when the study has no series."""
    plt = pyplot()
    if correlations.empty:
        return None
    frame = correlations[
        (correlations["manifold"] != "all")
        & (correlations["kind"] == "on")
        & (correlations["measure"] == "curvature")
        & correlations["contrast_name"].fillna("").astype(bool)
        & correlations["mean_z"].notna()
    ]
    series = list(dict.fromkeys(frame["contrast_name"]))
    if not series:
        return None
    fig, axes = plt.subplots(1, len(series), figsize=(5.5 * len(series), 4.2), squeeze=False)
    for ax, name in zip(axes[0], series):
        part = frame[frame["contrast_name"] == name]
        for k, ((arm, target), sub) in enumerate(part.groupby(["arm", "target"], sort=False)):
            sub = sub.sort_values("curvature_spread")
            ax.errorbar(
                sub["curvature_spread"],
                sub["mean_z"],
                yerr=[sub["mean_z"] - sub["z_lo"], sub["z_hi"] - sub["mean_z"]],
                marker="o",
                capsize=3,
                color=f"C{k}",
                label=f"{arm}/{target}",
            )
            for _, r in sub.iterrows():
                ax.annotate(f"{r['contrast']:g}", (r["curvature_spread"], r["mean_z"]), fontsize=7)
        ax.axhline(0.0, color="k", linewidth=0.8)
        ax.set_xlabel("curvature contrast (CV of |curvature| over windows)")
        ax.set_ylabel("mean Fisher z over seeds")
        ax.set_title(f"dose-response: {name} (labels: its values)")
        ax.legend(fontsize="small")
    return _save(plt, fig, out / "dose_response.png")


def partition_figure(
    weights: dict[str, Any],
    basis: np.ndarray[Any, Any],
    curve: np.ndarray[Any, Any],
    jumps: np.ndarray[Any, Any],
    title: str,
    out: Path,
) -> Path:
    """The exact partition of the plane containing a plane curve, before and after
    training, with the curve drawn on it and the step target's jumps marked
    (:func:`lrcore.slice_2d`)."""
    from lrcore.network import Network
    from lrcore.slice2d import slice_2d

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.4))
    extent = 1.25 * float(np.abs(curve).max())
    bounds = (-extent, extent, -extent, extent)
    for ax, key, label in zip(axes, ("init", "final"), ("initialisation", "trained")):
        w, b = weights[key]
        net = Network(w, b)
        result = slice_2d(net, np.zeros(basis.shape[1]), basis, bounds=bounds)
        result.plot(ax=ax, edges=True)
        closed = np.vstack([curve, curve[:1]])
        ax.plot(closed[:, 0], closed[:, 1], color="k", linewidth=1.6)
        ax.plot(jumps[:, 0], jumps[:, 1], "o", color="red", markersize=6, label="jumps")
        ax.set_title(f"{title}, {label}: {result.num_regions} regions")
    return _save(plt, fig, out / f"partition_{_slug(title)}.png")


# -- measures beyond counts (issue 15) ------------------------------------------------------
def theory_figure(theory: Any, out: Path) -> Path | None:
    """Measured density at initialisation against the Hanin-Rolnick expectation, one
    point per trajectory, coloured by kind, with the line measured = expected."""
    if theory is None or theory.empty:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for k, (kind, part) in enumerate(theory.groupby("kind", sort=False)):
        ax.scatter(part["expected"], part["measured"], s=6, alpha=0.5, color=f"C{k}", label=kind)
    top = float(np.nanmax(theory[["expected", "measured"]].to_numpy()))
    ax.plot([0, top], [0, top], color="k", linewidth=0.8)
    ax.set_xlabel("Hanin-Rolnick expected breakpoints per unit length")
    ax.set_ylabel("exact breakpoints per unit length (count_1d)")
    ax.set_title("density at initialisation")
    ax.legend(fontsize="small")
    return _save(plt, fig, out / "theory.png")


def tube_figures(tube: Any, profile: Any, out: Path) -> list[Path]:
    """The tube density map of the run whose curvature varies most (before, after,
    change; arc length along, signed normal offset across, the curve at offset 0 and its
    |curvature| above) and the profile of density against the normal offset per arm and
    target."""
    if tube is None or tube.empty:
        return []
    plt = pyplot()
    # The run whose curvature varies most along the curve (a circle shows nothing).
    spread = tube.groupby("run", sort=False)["curvature"].std()
    run = str(spread.idxmax()) if spread.notna().any() else str(tube["run"].iloc[0])
    part = tube[tube["run"] == run]
    shape = (int(part["window"].max()) + 1, int(part["offset_bin"].max()) + 1)
    half = float(part["half_width"].iloc[0])
    fig, axes = plt.subplots(4, 1, figsize=(8, 9), sharex=True)
    kappa = part.groupby("window")["curvature"].mean()
    axes[0].plot(kappa.index, kappa.to_numpy(), color="C3")
    axes[0].set_ylabel("|curvature|")
    axes[0].ticklabel_format(axis="y", useOffset=False)
    axes[0].set_title(f"tube density map: {run}")
    maps = {
        "before": part["tube_init"].to_numpy().reshape(shape),
        "after": part["tube_final"].to_numpy().reshape(shape),
    }
    maps["change"] = maps["after"] - maps["before"]
    for ax, (name, grid) in zip(axes[1:], maps.items()):
        # The change on a scale centred at 0 (blue: fewer boundaries, red: more).
        reach = float(np.nanmax(np.abs(grid))) if name == "change" and grid.size else None
        image = ax.imshow(
            grid.T,
            origin="lower",
            aspect="auto",
            extent=(-0.5, shape[0] - 0.5, -half, half),
            cmap="coolwarm" if name == "change" else "viridis",
            vmin=-reach if reach else None,
            vmax=reach if reach else None,
        )
        ax.axhline(0.0, color="w" if name != "change" else "k", linewidth=1.0)
        ax.set_ylabel(f"offset ({name})")
        fig.colorbar(image, ax=ax, label="boundary length / area")
    axes[-1].set_xlabel("window along the curve (the curve is the line at offset 0)")
    files = [_save(plt, fig, out / "tube_map.png")]
    if profile is not None and not profile.empty:
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for k, ((arm, target), sub) in enumerate(profile.groupby(["arm", "target"], sort=False)):
            ax.plot(sub["relative_offset"], sub["tube_init"], "--", color=f"C{k}")
            ax.plot(sub["relative_offset"], sub["tube_final"], "-o", color=f"C{k}",
                    label=f"{arm}/{target} (dashed: before)")  # fmt: skip
        ax.axvline(0.0, color="k", linewidth=0.8)
        ax.set_xlabel("signed normal offset / tube half-width (0: on the curve)")
        ax.set_ylabel("boundary length per unit area")
        ax.set_title("density profile across plane curves")
        ax.legend(fontsize="small")
        files.append(_save(plt, fig, out / "tube_profile.png"))
    return files


def local_tube_figure(profile: Any, out: Path) -> Path | None:
    """The local tube maps' profile: boundary length per unit area against the normal
    offset (relative to the half-width), before (dashed) and after training, one panel
    per family; thick: pooled over arms and targets, with the t interval across seeds
    of the change (shaded, around the density before); thin: each arm and target."""
    if profile is None or profile.empty:
        return None
    plt = pyplot()
    families = list(dict.fromkeys(profile["family"]))
    fig, axes = plt.subplots(1, len(families), figsize=(4.5 * len(families), 4), squeeze=False)
    for ax, family in zip(axes[0], families):
        part = profile[profile["family"] == family]
        pooled = part[part["arm"] == "all"]
        x = pooled["relative_offset"].to_numpy()
        ax.plot(x, pooled["tube_init"], "--", color="k", linewidth=2, label="all (before)")
        ax.plot(x, pooled["tube_final"], "-o", color="k", linewidth=2, label="all (after)")
        ax.fill_between(
            x,
            pooled["tube_init"] + pooled["change_lo"],
            pooled["tube_init"] + pooled["change_hi"],
            color="k",
            alpha=0.15,
            label="after: 95% CI (seeds)",
        )
        rest = part[part["arm"] != "all"]
        for k, ((arm, target), sub) in enumerate(rest.groupby(["arm", "target"], sort=False)):
            ax.plot(sub["relative_offset"], sub["tube_final"], "-", color=f"C{k}",
                    linewidth=0.8, label=f"{arm}/{target} (after)")  # fmt: skip
        ax.axvline(0.0, color="k", linewidth=0.8)
        ax.set_xlabel("normal offset / half-width (0: on the manifold)")
        # Plane curves have their own tube maps: the curves here are the embedded ones.
        name = "curves in higher dimension" if family == "curves" else family
        ax.set_title(f"{name}: tangent-normal planes")
        ax.legend(fontsize="x-small")
    axes[0][0].set_ylabel("boundary length per unit area")
    return _save(plt, fig, out / "local_tube_profile.png")


def slope_jump_figure(table: Any, out: Path) -> Path | None:
    """rho of slope-jump density and of raw counts with the target's bending and with
    |curvature|, per family, arm and target (t intervals across seeds)."""
    if table is None or table.empty:
        return None
    plt = pyplot()
    measures = list(dict.fromkeys(table["measure"]))
    fig, axes = plt.subplots(1, len(measures), figsize=(6 * len(measures), 4.5), squeeze=False)
    for ax, measure in zip(axes[0], measures):
        part = table[table["measure"] == measure].reset_index(drop=True)
        y = np.arange(len(part))
        for shift, (name, color) in enumerate((("jumps", "C0"), ("counts", "C1"))):
            rho = part[f"rho_{name}"].to_numpy()
            ax.errorbar(
                rho,
                y + 0.15 * (1 - 2 * shift),
                xerr=[rho - part[f"rho_{name}_lo"], part[f"rho_{name}_hi"] - rho],
                fmt="o",
                color=color,
                capsize=2,
                label="slope-jump density" if name == "jumps" else "breakpoint density",
            )
        ax.set_yticks(y, [f"{r.family}/{r.arm}/{r.target}" for r in part.itertuples()])
        ax.axvline(0.0, color="k", linewidth=0.8)
        ax.set_xlabel(f"rho with {measure} across windows (after training)")
        ax.legend(fontsize="small")
    return _save(plt, fig, out / "slope_jumps.png")


def architecture_figure(table: Any, out: Path) -> Path | None:
    """Density per neuron and the curvature link against the number of neurons, one line
    per depth."""
    if table is None or table.empty:
        return None
    archs = table[table["width"] > 0]
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for k, (depth, part) in enumerate(archs.groupby("depth")):
        part = part.sort_values("neurons")
        axes[0].plot(part["neurons"], part["per_neuron_init"], "--", color=f"C{k}")
        axes[0].plot(part["neurons"], part["per_neuron_final"], "-o", color=f"C{k}",
                     label=f"depth {depth} (dashed: init)")  # fmt: skip
        axes[1].errorbar(
            part["neurons"],
            part["rho"],
            yerr=[part["rho"] - part["rho_lo"], part["rho_hi"] - part["rho"]],
            marker="o",
            capsize=3,
            color=f"C{k}",
            label=f"depth {depth}",
        )
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("hidden neurons (width x depth)")
        ax.legend(fontsize="small")
    axes[0].set_ylabel("on-manifold density per neuron")
    axes[1].axhline(0.0, color="k", linewidth=0.8)
    axes[1].set_ylabel("rho(change, |curvature|), pooled curves")
    return _save(plt, fig, out / "architectures.png")


def dynamics_figure(table: Any, out: Path) -> Path | None:
    """Density, slope-jump density and the curvature link against training step."""
    if table is None or table.empty:
        return None
    plt = pyplot()
    panels = ["density", "jump_density", "rho"]
    panels = [p for p in panels if p in table]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 3 * len(panels)), sharex=True)
    axes = np.atleast_1d(axes)
    labels = {
        "density": "breakpoints per unit length",
        "jump_density": "slope jumps per unit length",
        "rho": "rho(change so far, |curvature|)",
    }
    for ax, name in zip(axes, panels):
        ax.errorbar(
            table["step"],
            table[name],
            yerr=[table[name] - table[f"{name}_lo"], table[f"{name}_hi"] - table[name]],
            marker="o",
            capsize=2,
        )
        ax.set_ylabel(labels[name], fontsize="small")
        if name == "rho":
            ax.axhline(0.0, color="k", linewidth=0.8)
    axes[0].set_title("training dynamics on the manifold (mean over seeds, 95% CI)")
    axes[-1].set_xlabel("training step")
    return _save(plt, fig, out / "dynamics.png")
