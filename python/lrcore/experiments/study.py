"""The curvature study end to end: sweep, tables, figures and report (``lrcore study``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lrcore._optional import optional_import

from .analysis import PERMUTATIONS, analyse
from .figures import (
    density_figure,
    dose_figure,
    forest_figure,
    partition_figure,
    scatter_figure,
    training_figure,
)
from .manifolds import Curve, Embedded
from .report import write_report
from .sweep import StudyConfig, build_manifold, make_tasks, run_sweep
from .targets import Target

__all__ = ["QUICK", "TINY", "StudyResult", "run_study"]

#: The default study: all three families, 3 seeds, a few minutes on 2 cores.
QUICK = StudyConfig()
#: A tiny study for tests: one manifold per family, 2 seeds, few steps.
TINY = StudyConfig(
    manifolds=("ellipse:b=0.5", "torus", "digit:digit=0"),
    seeds=(0, 1),
    widths=(8,),
    depths=(2,),
    steps=60,
    checkpoints=2,
    samples=128,
    resolution=128,
    windows=8,
    convergence_factor=2,
    bootstrap=50,
)
TABLES = (
    "windows",
    "changes",
    "runs",
    "fit",
    "convergence",
    "seed_effects",
    "correlations",
    "heterogeneity",
    "mixed_models",
    "dose_response",
    "discontinuity",
    "kinds",
)


@dataclass
class StudyResult:
    """What :func:`run_study` produced: the tables and the files written."""

    tables: dict[str, Any]
    files: list[Path]
    seconds: float


def _plane(
    manifold: Any, steps: tuple[float, ...]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]] | None:
    """(basis (2, d), the curve and its jump points in plane coordinates) of a plane
    curve, else None."""
    curve = manifold.curve if isinstance(manifold, Embedded) else manifold
    if not isinstance(curve, Curve) or curve.ambient_dim != 2:
        return None
    basis = manifold.basis.T if isinstance(manifold, Embedded) else np.eye(2)
    jumps = curve.points(np.asarray(steps) * curve.length)
    return basis, curve.points(curve.positions(512)), jumps


def collect_tables(results: list[dict[str, Any]], config: StudyConfig) -> dict[str, Any]:
    """The study's tables from the sweep's task results (:func:`.analysis.analyse`; its
    circular-shift tests draw ``config.permutations`` shift sets, by default
    :data:`.analysis.PERMUTATIONS`)."""
    pd = optional_import("pandas", "experiments")
    tables = {
        name: pd.concat([r[name] for r in results], ignore_index=True)
        for name in ("windows", "runs", "convergence")
    }
    resamples = int(getattr(config, "permutations", PERMUTATIONS))
    return analyse(tables["windows"], tables["runs"], tables["convergence"], resamples=resamples)


def run_study(
    config: StudyConfig = QUICK,
    out: str | Path = "results",
    jobs: int = 1,
    scheduler: str | None = None,
    quiet: bool = False,
) -> StudyResult:
    """Run the curvature study and write tables (CSV and Parquet), figures (PNG) and
    ``report.md`` into ``out``.

    Parameters
    ----------
    config
        What to compute (:class:`StudyConfig`); :data:`QUICK` by default.
    out
        Output folder (created).
    jobs
        Local worker processes (joblib).
    scheduler
        A Dask scheduler address: run the sweep on that cluster instead.
    quiet
        No progress bars.

    Examples
    --------
    >>> result = run_study(TINY, "results-tiny", quiet=True)  # doctest: +SKIP
    """
    start = time.perf_counter()
    # Fail fast, with the extra to install, before any work is done.
    modules = ("torch", "scipy", "statsmodels", "pandas", "pyarrow", "matplotlib", "tqdm")
    for module in (*modules, "sklearn"):
        optional_import(module, "experiments")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    tasks = make_tasks(config)
    planes = {
        spec: _plane(build_manifold(spec, config.embed_dim), Target().steps)
        for spec in config.manifold_specs()
    }
    first = (config.seeds[0], config.widths[0], config.depths[0])
    keep = [planes[t.manifold] is not None and (t.seed, t.width, t.depth) == first for t in tasks]
    results = run_sweep(
        tasks, config, jobs=jobs, scheduler=scheduler, quiet=quiet, keep_weights=keep
    )
    tables = collect_tables(results, config)
    files: list[Path] = []
    for name in TABLES:
        frame = tables[name]
        frame.to_csv(folder / f"{name}.csv", index=False)
        frame.to_parquet(folder / f"{name}.parquet", index=False)
        files += [folder / f"{name}.csv", folder / f"{name}.parquet"]
    for family, part in tables["correlations"].groupby("family", sort=False):
        path = folder / f"table_{family}.csv"
        part.to_csv(path, index=False)
        files.append(path)
    figures = [density_figure(tables["windows"], spec, folder) for spec in config.manifold_specs()]
    studied = [f for f in config.families if f in set(tables["changes"]["family"])]
    figures += [scatter_figure(tables["changes"], f, folder) for f in studied]
    figures += [training_figure(tables["windows"], f, folder) for f in studied]
    figures += [
        forest_figure(tables["seed_effects"], tables["correlations"], f, folder)
        for f in studied
        if not tables["seed_effects"].empty
    ]
    dose = dose_figure(tables["correlations"], folder)
    figures += [dose] if dose is not None else []
    for task, result in zip(tasks, results):
        plane = planes[task.manifold]
        if result["weights"] and plane is not None:
            figures.append(
                partition_figure(
                    result["weights"],
                    plane[0],
                    plane[1],
                    plane[2],
                    f"{task.manifold} ({task.target})",
                    folder,
                )
            )
    files += figures
    seconds = time.perf_counter() - start
    files.append(write_report(folder / "report.md", config.as_dict(), tables, figures, seconds))
    return StudyResult(tables, files, seconds)
