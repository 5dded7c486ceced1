"""The curvature study end to end: sweep, tables, figures and report (``lrcore study``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lrcore._optional import optional_import

from .analysis import analyse, density_changes, fit_table, link_tests
from .beyond import (
    architecture_table,
    dynamics_table,
    local_tube_tables,
    slope_jump_table,
    theory_table,
    tube_concentration_table,
    tube_profile_table,
)
from .figures import (
    architecture_figure,
    density_figure,
    dose_figure,
    dynamics_figure,
    forest_figure,
    local_tube_figure,
    partition_figure,
    scatter_figure,
    slope_jump_figure,
    theory_figure,
    training_figure,
    tube_figures,
)
from .manifolds import Curve
from .report import write_report
from .sweep import (
    StudyConfig,
    TaskSetup,
    architecture_config,
    dynamics_config,
    make_tasks,
    prepare_task,
    run_sweep,
)

__all__ = ["DEFAULT", "QUICK", "TINY", "StudyResult", "run_study"]

#: The default study (``lrcore study``): every family, both target arms and kinds, the
#: dose-response series, 20 seeds (see :class:`StudyConfig` for the sizes), with the
#: measures beyond counts (tube maps on 3 seeds, local tube maps on 10), the architecture
#: sweep on 8 seeds and the dynamics on 5.
DEFAULT = StudyConfig(arch_seeds=8, dynamics_seeds=5)
#: A first look (``lrcore study --quick``): the same design on the ends of the three
#: dose-response series and two digits, with 6 seeds (192 runs).
QUICK = StudyConfig(
    manifolds=(
        "ellipse:b=1.0",
        "ellipse:b=0.2",
        "profile:amplitude=0.0",
        "profile:amplitude=0.9",
        "torus:minor=0.2",
        "torus:minor=0.65",
        "digit:digit=0",
        "digit:digit=1",
    ),
    seeds=tuple(range(6)),
    tube_seeds=2,
    local_seeds=6,
    arch_seeds=2,
    dynamics_seeds=2,
)
#: A tiny study for tests: one manifold per family, 2 seeds, few steps.
TINY = StudyConfig(
    manifolds=("ellipse:b=0.5", "torus", "digit:digit=0"),
    seeds=(0, 1),
    widths=(8,),
    depths=(2,),
    steps=60,
    checkpoints=2,
    samples=128,
    heldout=64,
    resolution=128,
    windows=8,
    convergence_factor=2,
    permutations=99,
    tube_seeds=1,
    local_seeds=1,
    local_points=8,
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
    "theory",
    "theory_ratios",
    "slope_jumps",
    "tube",
    "tube_profile",
    "tube_concentration",
    "local_tube",
    "local_tube_profile",
    "local_tube_concentration",
    "architectures",
    "architecture_correlations",
    "dynamics",
    "dynamics_windows",
)
#: Permutations of the architecture sweep's circular-shift tests (its report reads the
#: t-tests across seeds; the shift tests only fill its table).
SUB_PERMUTATIONS = 999


@dataclass
class StudyResult:
    """What :func:`run_study` produced: the tables and the files written."""

    tables: dict[str, Any]
    files: list[Path]
    seconds: float


def _plane(
    setup: TaskSetup,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]] | None:
    """(basis (2, 2), the curve and the step target's jumps, in the input plane) of a
    plane curve in R² with an arc-arm target, else None."""
    curve = setup.manifold
    if not isinstance(curve, Curve) or curve.ambient_dim != 2 or setup.task.arm != "arc":
        return None
    jumps = curve.points(np.asarray(setup.targets["step"].steps) * curve.length)
    outline = curve.points(curve.positions(512))
    return np.eye(2), setup.motion(outline), setup.motion(jumps)


def _concat(results: list[dict[str, Any]], name: str) -> Any:
    pd = optional_import("pandas", "experiments")
    frames = [r[name] for r in results if name in r and len(r[name])]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def collect_tables(results: list[dict[str, Any]], config: StudyConfig) -> dict[str, Any]:
    """The study's tables from the sweep's task results (:func:`.analysis.analyse`; its
    circular-shift tests draw ``config.permutations`` shift sets), with the measures
    beyond counts (:mod:`.beyond`): ``theory`` (per trajectory) and ``theory_ratios``,
    ``slope_jumps``, ``tube`` (per bin), ``tube_profile`` and ``tube_concentration``, and
    the local tube maps: ``local_tube`` (per sample point and bin),
    ``local_tube_profile`` and ``local_tube_concentration``."""
    tables = {name: _concat(results, name) for name in ("windows", "runs", "convergence")}
    out = analyse(
        tables["windows"], tables["runs"], tables["convergence"], resamples=config.permutations
    )
    fitted = set(out["fit"].loc[out["fit"]["fit_ok"], "run"])
    theory = _concat(results, "theory")
    tube = _concat(results, "tube")
    out["theory"] = theory
    out["theory_ratios"] = theory_table(theory, out["runs"])
    out["slope_jumps"] = slope_jump_table(out["changes"])
    out["tube"] = tube
    out["tube_profile"] = tube_profile_table(tube, fitted)
    out["tube_concentration"] = tube_concentration_table(tube, fitted)
    local = _concat(results, "local_tube")
    out["local_tube"] = local
    out["local_tube_profile"], out["local_tube_concentration"] = local_tube_tables(local, fitted)
    return out


def architecture_tables(results: list[dict[str, Any]], config: StudyConfig) -> dict[str, Any]:
    """``architectures`` (:func:`.beyond.architecture_table`) and
    ``architecture_correlations`` (its link tests) of the architecture sweep's results."""
    windows, runs = _concat(results, "windows"), _concat(results, "runs")
    fit = fit_table(runs)
    changes = density_changes(windows[windows["run"].isin(set(fit.loc[fit["fit_ok"], "run"]))])
    correlations, effects = link_tests(changes, min(config.permutations, SUB_PERMUTATIONS))
    part = {"fit": fit, "changes": changes, "correlations": correlations, "seed_effects": effects}
    return {"architectures": architecture_table(part), "architecture_correlations": correlations}


class _Clock:
    """The study's timings: per sweep the tasks' own CPU seconds (``cpu_seconds`` of the
    ``runs`` table, summed over workers) and its wall time; per step in this process its
    CPU and wall time. Written as ``timings.csv``: the run time on ``n`` quiet cores is
    about the tasks' CPU seconds over ``n`` plus the steps' CPU seconds."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def _lap(self) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        out = (wall - self._wall, cpu - self._cpu)
        self._wall, self._cpu = wall, cpu
        return out

    def sweep(self, name: str, results: list[dict[str, Any]]) -> None:
        wall, _ = self._lap()
        cpu = float(sum(r["runs"]["cpu_seconds"].sum() for r in results))
        self.rows.append(
            {
                "phase": name,
                "kind": "tasks",
                "tasks": len(results),
                "cpu_seconds": cpu,
                "wall_seconds": wall,
            }
        )

    def step(self, name: str) -> None:
        wall, cpu = self._lap()
        self.rows.append(
            {
                "phase": name,
                "kind": "main process",
                "tasks": 0,
                "cpu_seconds": cpu,
                "wall_seconds": wall,
            }
        )

    def table(self) -> Any:
        return optional_import("pandas", "experiments").DataFrame(self.rows)


def _empty() -> Any:
    return optional_import("pandas", "experiments").DataFrame()


def run_study(
    config: StudyConfig = DEFAULT,
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
        What to compute (:class:`StudyConfig`); :data:`DEFAULT` by default.
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
    # The exact partition of the input plane, for each plane curve's first run of each
    # target kind (arc arm).
    first = (config.seeds[0], config.widths[0], config.depths[0])
    planes = {
        task: _plane(prepare_task(task, config))
        for task in tasks
        if (task.seed, task.width, task.depth) == first and task.arm == config.arms[0]
    }
    keep = [planes.get(t) is not None for t in tasks]
    clock = _Clock()
    results = run_sweep(
        tasks, config, jobs=jobs, scheduler=scheduler, quiet=quiet, keep_weights=keep
    )
    clock.sweep("main sweep", results)
    # The architecture sweep reuses the study's own runs of the same task.
    arch = architecture_config(config)
    arch_results: list[dict[str, Any]] = []
    if arch is not None:
        done = dict(zip(tasks, results))
        todo = [t for t in make_tasks(arch) if t not in done]
        fresh = run_sweep(todo, arch, jobs=jobs, scheduler=scheduler, quiet=quiet)
        clock.sweep("architecture sweep", fresh)
        more = dict(zip(todo, fresh))
        arch_results = [done.get(t) or more[t] for t in make_tasks(arch)]
    dynamics = dynamics_config(config)
    longer: list[dict[str, Any]] = []
    if dynamics is not None:
        longer = run_sweep(
            make_tasks(dynamics), dynamics, jobs=jobs, scheduler=scheduler, quiet=quiet
        )
        clock.sweep("dynamics", longer)
    tables = collect_tables(results, config)
    tables["architectures"] = tables["architecture_correlations"] = _empty()
    if arch is not None:
        tables.update(architecture_tables(arch_results, arch))
    tables["dynamics"] = tables["dynamics_windows"] = _empty()
    if dynamics is not None:
        windows = _concat(longer, "windows")
        tables["dynamics_windows"] = windows
        tables["dynamics"] = dynamics_table(windows, fit_table(_concat(longer, "runs")))
    clock.step("statistics")
    files: list[Path] = []
    for name in TABLES:
        frame = tables[name]
        frame.to_csv(folder / f"{name}.csv", index=False)
        frame.to_parquet(folder / f"{name}.parquet", index=False)
        files += [folder / f"{name}.csv", folder / f"{name}.parquet"]
    correlations = tables["correlations"]
    for family, part in correlations.groupby("family", sort=False) if len(correlations) else ():
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
    figures += tube_figures(tables["tube"], tables["tube_profile"], folder)
    for extra in (
        theory_figure(tables["theory"], folder),
        slope_jump_figure(tables["slope_jumps"], folder),
        local_tube_figure(tables["local_tube_profile"], folder),
        architecture_figure(tables["architectures"], folder),
        dynamics_figure(tables["dynamics"], folder),
    ):
        figures += [extra] if extra is not None else []
    for task, result in zip(tasks, results):
        plane = planes.get(task)
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
    clock.step("tables and figures")
    tables["timings"] = clock.table()
    tables["timings"].to_csv(folder / "timings.csv", index=False)
    files.append(folder / "timings.csv")
    seconds = time.perf_counter() - start
    files.append(write_report(folder / "report.md", config.as_dict(), tables, figures, seconds))
    return StudyResult(tables, files, seconds)
