"""Figures of the study (matplotlib, Agg backend, PNG files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lrcore._optional import optional_import

from .analysis import FAMILY_MEASURES
from .targets import Target

__all__ = [
    "density_figure",
    "partition_figure",
    "pyplot",
    "scatter_figure",
    "training_figure",
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


def density_figure(windows: Any, manifold: str, out: Path) -> Path:
    """Density along arc length before and after training, with curvature overlaid:
    one panel per target, the first seed's first on-manifold trajectory."""
    plt = pyplot()
    frame = windows[(windows["manifold"] == manifold) & (windows["kind"] == "on")]
    family = str(frame["family"].iloc[0])
    measure = FAMILY_MEASURES[family][-1]
    targets = list(dict.fromkeys(frame["target"]))
    fig, axes = plt.subplots(1, len(targets), figsize=(6 * len(targets), 3.8), squeeze=False)
    for ax, target in zip(axes[0], targets):
        part = frame[(frame["target"] == target) & (frame["seed"] == frame["seed"].min())]
        part = part[part["trajectory"] == part["trajectory"].iloc[0]]
        last = part["step"].max()
        for step, colour, label in ((0, "0.55", "initialisation"), (last, "C0", "trained")):
            at = part[part["step"] == step]
            ax.step(at["center"], at["density"], where="mid", color=colour, label=label)
        near = part[(part["step"] == 0) & part["near_step"]]["center"]
        for x in near:
            ax.axvline(x, color="C3", alpha=0.12, linewidth=6)
        twin = ax.twinx()
        at = part[part["step"] == 0]
        twin.plot(at["center"], at[measure], color="C1", linewidth=1.2, label=f"|{measure}|")
        twin.set_ylabel(f"|{measure}| (window mean)", color="C1")
        ax.set_xlabel("arc length")
        ax.set_ylabel("breakpoints per unit length")
        ax.set_title(f"{manifold}, {target} target (shaded: near jumps of {Target().steps})")
        ax.legend(loc="upper left", fontsize="small")
    return _save(plt, fig, out / f"density_{_slug(manifold)}.png")


def scatter_figure(changes: Any, family: str, out: Path) -> Path:
    """Density change against |curvature| for every on-manifold window of a family."""
    plt = pyplot()
    frame = changes[(changes["family"] == family) & (changes["kind"] == "on")]
    measures = FAMILY_MEASURES[family]
    fig, axes = plt.subplots(1, len(measures), figsize=(6 * len(measures), 4.2), squeeze=False)
    markers = {"smooth": "o", "step": "x"}
    for ax, measure in zip(axes[0], measures):
        for k, (manifold, part) in enumerate(frame.groupby("manifold", sort=False)):
            for target, sub in part.groupby("target", sort=False):
                ax.scatter(
                    sub[measure],
                    sub["change"],
                    s=8,
                    alpha=0.5,
                    marker=markers.get(str(target), "o"),
                    color=f"C{k % 10}",
                    label=f"{manifold} ({target})",
                )
        ax.set_xlabel(f"|{measure}| (window mean)")
        ax.set_ylabel("density change (after - before training)")
        ax.set_title(f"{family}: density change against |{measure}|")
        ax.axhline(0.0, color="0.6", linewidth=0.8)
    axes[0][-1].legend(fontsize="x-small", markerscale=2, loc="best")
    return _save(plt, fig, out / f"scatter_{family}.png")


def training_figure(windows: Any, family: str, out: Path) -> Path:
    """Mean density at every checkpoint, per target and trajectory kind, for a family
    (seeds and manifolds averaged)."""
    plt = pyplot()
    frame = windows[windows["family"] == family]
    means = frame.groupby(["target", "kind", "step"], sort=False)["density"].mean().reset_index()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    styles = {"on": "-", "offset": "--", "line": ":"}
    for k, (target, part) in enumerate(means.groupby("target", sort=False)):
        for kind, sub in part.groupby("kind", sort=False):
            ax.plot(
                sub["step"],
                sub["density"],
                styles.get(str(kind), "-"),
                marker="o",
                color=f"C{k}",
                label=f"{target} target, {kind}",
            )
    ax.set_xlabel("training step")
    ax.set_ylabel("mean breakpoints per unit length")
    ax.set_title(f"{family}: density during training")
    ax.legend(fontsize="small")
    return _save(plt, fig, out / f"training_{family}.png")


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
