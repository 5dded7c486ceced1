"""One training run of the study (a *task*) and sweeps of tasks through joblib or Dask.

A task trains one seeded MLP on one manifold and target, and counts exact breakpoints
with :func:`lrcore.count_1d` along every trajectory (on the manifold, offset from it
along its normals, and random lines) at every checkpoint. Tasks are independent and
deterministic, so a sweep gives the same tables in any order, on any engine.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lrcore._optional import optional_import
from lrcore.network import Network
from lrcore.path1d import count_1d

from .manifolds import (
    Circle,
    Curve,
    Ellipse,
    Ellipsoid,
    Embedded,
    Helix,
    ImageOrbit,
    Manifold,
    Polygon,
    ProfileCurve,
    Saddle,
    Sphere,
    Torus,
    Trajectory,
    window_means,
)
from .targets import TARGET_KINDS, Target
from .training import build_mlp, checkpoint_steps, train

__all__ = [
    "DEFAULT_MANIFOLDS",
    "FAMILIES",
    "MANIFOLDS",
    "StudyConfig",
    "Task",
    "build_manifold",
    "make_tasks",
    "measure_densities",
    "parse_spec",
    "run_sweep",
    "run_task",
]

_TORCH_LOCK = threading.Lock()

#: Manifold name -> (family, class). Keep in step with DEFAULT_MANIFOLDS.
MANIFOLDS: dict[str, tuple[str, type[Manifold]]] = {
    "circle": ("curves", Circle),
    "ellipse": ("curves", Ellipse),
    "profile": ("curves", ProfileCurve),
    "polygon": ("curves", Polygon),
    "helix": ("curves", Helix),
    "sphere": ("surfaces", Sphere),
    "torus": ("surfaces", Torus),
    "ellipsoid": ("surfaces", Ellipsoid),
    "saddle": ("surfaces", Saddle),
    "digit": ("images", ImageOrbit),
}
FAMILIES = ("curves", "surfaces", "images")
#: The manifolds each family studies by default, as ``name[:key=value,...]`` specs.
DEFAULT_MANIFOLDS: dict[str, tuple[str, ...]] = {
    "curves": (
        "circle",
        "ellipse:b=0.4",
        "profile:profile=sinusoidal",
        "profile:profile=piecewise",
        "polygon:sides=4",
        "helix",
    ),
    "surfaces": ("sphere", "torus", "ellipsoid", "saddle"),
    "images": ("digit:digit=0", "digit:digit=0,motion=translation"),
}


@dataclass(frozen=True)
class StudyConfig:
    """What the study computes (not how it is run): every field changes the tables.

    Attributes
    ----------
    families
        Manifold families to study (a subset of :data:`FAMILIES`).
    manifolds
        Manifold specs (``name[:key=value,...]``) overriding the families' defaults.
    targets
        Target kinds (:data:`lrcore.experiments.targets.TARGET_KINDS`).
    seeds
        Training seeds.
    widths, depths
        Architectures: every combination is trained.
    steps, checkpoints
        Adam steps, and how many evenly spread checkpoints after step 0 are measured.
    samples
        Training points sampled on the manifold.
    resolution
        Vertices of each trajectory polyline.
    windows
        Density windows per trajectory.
    offset
        Distance of the off-manifold control trajectories from the manifold.
    learning_rate
        Adam's learning rate.
    embed_dim
        Curves of lower dimension are embedded isometrically in R^embed_dim.
    convergence_factor
        The resolution check counts the final network again at this many times the
        resolution.
    bootstrap
        Bootstrap resamples for confidence intervals.
    """

    families: tuple[str, ...] = FAMILIES
    manifolds: tuple[str, ...] = ()
    targets: tuple[str, ...] = TARGET_KINDS
    seeds: tuple[int, ...] = (0, 1, 2)
    widths: tuple[int, ...] = (32,)
    depths: tuple[int, ...] = (3,)
    steps: int = 1500
    checkpoints: int = 3
    samples: int = 1024
    resolution: int = 1024
    windows: int = 32
    offset: float = 0.1
    learning_rate: float = 3e-3
    embed_dim: int = 2
    convergence_factor: int = 4
    bootstrap: int = 1000

    def __post_init__(self) -> None:
        for family in self.families:
            if family not in FAMILIES:
                msg = f"families: expected a subset of {FAMILIES}, got {family!r}"
                raise ValueError(msg)
        for kind in self.targets:
            if kind not in TARGET_KINDS:
                msg = f"targets: expected a subset of {TARGET_KINDS}, got {kind!r}"
                raise ValueError(msg)
        for name in ("seeds", "widths", "depths", "targets"):
            if not getattr(self, name):
                msg = f"{name}: expected at least one value"
                raise ValueError(msg)
        positive = {
            "steps": self.steps + 1,
            "checkpoints": self.checkpoints,
            "samples": self.samples,
            "windows": self.windows,
            "embed_dim": self.embed_dim,
            "convergence_factor": self.convergence_factor,
            "bootstrap": self.bootstrap,
        }
        for name, value in positive.items():
            if value < 1:
                msg = f"{name}: expected a positive integer, got {getattr(self, name)}"
                raise ValueError(msg)
        if min(self.widths) < 1 or min(self.depths) < 1:
            msg = f"widths, depths: expected positive integers, got {self.widths}, {self.depths}"
            raise ValueError(msg)
        if self.resolution < 4 * self.windows:
            msg = (
                f"resolution: expected at least 4 vertices per window "
                f"({4 * self.windows}), got {self.resolution}"
            )
            raise ValueError(msg)
        if not (self.offset > 0 and math.isfinite(self.offset)):
            msg = f"offset: expected a positive distance, got {self.offset}"
            raise ValueError(msg)
        for spec in self.manifolds:
            parse_spec(spec)  # fails early on a bad spec, without building the manifold

    def manifold_specs(self) -> list[str]:
        """The manifold specs studied, in order."""
        if self.manifolds:
            return [s for s in self.manifolds if MANIFOLDS[_spec_name(s)][0] in self.families]
        return [spec for family in self.families for spec in DEFAULT_MANIFOLDS[family]]

    def as_dict(self) -> dict[str, Any]:
        """The configuration as plain data (for the report)."""
        return asdict(self)


@dataclass(frozen=True)
class Task:
    """One training run: a manifold spec, a target kind, a seed and an architecture."""

    manifold: str
    target: str
    seed: int
    width: int
    depth: int

    @property
    def family(self) -> str:
        """The manifold's family."""
        return MANIFOLDS[_spec_name(self.manifold)][0]


def make_tasks(config: StudyConfig) -> list[Task]:
    """All tasks of a study, in a fixed order."""
    return [
        Task(spec, target, seed, width, depth)
        for spec in config.manifold_specs()
        for target in config.targets
        for width in config.widths
        for depth in config.depths
        for seed in config.seeds
    ]


def _spec_name(spec: str) -> str:
    name = spec.split(":", 1)[0].strip()
    if name not in MANIFOLDS:
        msg = f"manifolds: unknown manifold {name!r} in {spec!r}; known: {sorted(MANIFOLDS)}"
        raise ValueError(msg)
    return name


def _parse_value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def parse_spec(spec: str) -> tuple[type[Manifold], dict[str, Any]]:
    """The class and keyword arguments of a spec ``name[:key=value,...]``, checked against
    the class's signature (nothing is built).

    Examples
    --------
    >>> parse_spec("ellipse:b=0.3")
    (<class 'lrcore.experiments.manifolds.Ellipse'>, {'b': 0.3})
    """
    import inspect

    name = _spec_name(spec)
    kwargs: dict[str, Any] = {}
    if ":" in spec:
        for item in spec.split(":", 1)[1].split(","):
            key, sep, value = item.partition("=")
            if not sep:
                msg = f"manifolds: expected key=value in {spec!r}, got {item!r}"
                raise ValueError(msg)
            kwargs[key.strip()] = _parse_value(value.strip())
    cls = MANIFOLDS[name][1]
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as err:
        msg = f"manifolds: bad parameters in {spec!r} ({err})"
        raise ValueError(msg) from err
    return cls, kwargs


def build_manifold(spec: str, embed_dim: int = 2) -> Manifold:
    """Build a manifold from a spec ``name[:key=value,...]``, e.g. ``"ellipse:b=0.3"``.

    Curves of lower dimension than ``embed_dim`` are embedded isometrically in
    R^embed_dim by a fixed random orthogonal map.

    Examples
    --------
    >>> build_manifold("ellipse:b=0.3").params()
    {'a': 1.0, 'b': 0.3}
    """
    cls, kwargs = parse_spec(spec)
    manifold = cls(**kwargs)
    if isinstance(manifold, Curve) and manifold.ambient_dim < embed_dim:
        return Embedded(manifold, embed_dim, seed=0)
    return manifold


def _task_rng(task: Task, salt: int) -> np.random.Generator:
    key = f"{task.manifold}|{task.target}|{task.width}|{task.depth}"
    return np.random.default_rng([task.seed, zlib.crc32(key.encode()), salt])


def _random_lines(
    centre: NDArray[np.float64], lengths: Sequence[float], dim: int, rng: np.random.Generator
) -> list[Trajectory]:
    lines = []
    for i, length in enumerate(lengths):
        direction = rng.standard_normal(dim)
        direction /= np.linalg.norm(direction)
        points = centre + np.linspace(-length / 2, length / 2, 64)[:, None] * direction
        lines.append(Trajectory(f"line{i}", "line", points, False, np.full(64, np.nan), {}, None))
    return lines


def measure_densities(
    net: Network, trajectories: Sequence[Trajectory], windows: int, num_threads: int | None
) -> tuple[list[NDArray[np.float64]], list[NDArray[np.float64]], NDArray[np.int64]]:
    """Exact density in ``windows`` equal windows along each trajectory (one batch call).

    Returns the window centres (arc length), the densities (breakpoints per unit length)
    and the total breakpoints of each trajectory.
    """
    batch = count_1d(
        net,
        [t.points for t in trajectories],
        [t.closed for t in trajectories],
        num_threads=num_threads,
    )
    centres, densities = [], []
    for result in batch:
        window = result.length / windows
        at = result.window_centers(window)
        centres.append(at)
        densities.append(result.density(window, at=at))
    return centres, densities, np.asarray(batch.num_breakpoints)


def _near_steps(
    trajectory: Trajectory, target: Target, centres: NDArray[np.float64], window: float
) -> NDArray[np.bool_]:
    """Windows (widened by half a window each side) that contain a jump of the step."""
    if np.all(np.isnan(trajectory.coordinate)):
        return np.zeros(centres.shape, dtype=bool)
    values = target.step_function(trajectory.coordinate)
    arc = trajectory.arc
    nxt = np.roll(values, -1)
    jumps = values != nxt
    mid = (arc + np.roll(arc, -1)) / 2
    if trajectory.closed:
        mid[-1] = (arc[-1] + trajectory.length) / 2
    else:
        jumps[-1] = False
    where = mid[jumps]
    if where.size == 0:
        return np.zeros(centres.shape, dtype=bool)
    gap = np.abs(centres[:, None] - where[None, :])
    if trajectory.closed:
        gap = np.minimum(gap, trajectory.length - gap)
    near: NDArray[np.bool_] = np.any(gap <= window, axis=1)
    return near


def _target_bending(trajectory: Trajectory, target: Target) -> NDArray[np.float64] | None:
    """|d² target / d arc length²| at the vertices (three-point formula for uneven
    spacing); None off the manifold's chart.

    A linear piece of length h fits a target with error about h² |f''| / 8, so where the
    target's graph bends is where a piecewise-linear fit needs its breakpoints: this is
    the positive control of the study.
    """
    if np.all(np.isnan(trajectory.coordinate)):
        return None
    values = target(trajectory.coordinate)
    points = trajectory.points
    after = np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1)
    before = np.roll(after, 1)
    slope_after = (np.roll(values, -1) - values) / np.maximum(after, 1e-300)
    slope_before = (values - np.roll(values, 1)) / np.maximum(before, 1e-300)
    bend: NDArray[np.float64] = np.abs(
        2 * (slope_after - slope_before) / np.maximum(after + before, 1e-300)
    )
    if not trajectory.closed:
        bend[0], bend[-1] = bend[1], bend[-2]
    return bend


def run_task(
    task: Task, config: StudyConfig, num_threads: int | None = 1, keep_weights: bool = False
) -> dict[str, Any]:
    """Train one model and measure it: returns pandas tables ``windows``, ``runs`` and
    ``convergence`` (and ``weights``: the init and final arrays when ``keep_weights``).

    Torch runs on one thread here, whatever the caller's setting (restored after), so
    the result is the same in a worker process, a Dask worker thread or the caller.
    """
    torch = optional_import("torch", "experiments")
    pd = optional_import("pandas", "experiments")
    from lrcore._torch_sequential import sequential_to_arrays

    manifold = build_manifold(task.manifold, config.embed_dim)
    target = Target(task.target)
    data_rng = _task_rng(task, 0)
    inputs, coordinate = manifold.sample(config.samples, data_rng)
    on = manifold.trajectories(config.resolution)
    offsets = [t.offset(config.offset) for t in on]
    lines = _random_lines(
        inputs.mean(axis=0), [t.length for t in on], manifold.ambient_dim, _task_rng(task, 1)
    )
    trajectories = on + offsets + lines
    measures = manifold.curvature_measures()
    steps = checkpoint_steps(config.steps, config.checkpoints)

    recorded: dict[int, list[NDArray[np.float64]]] = {}
    weights: dict[str, Any] = {}
    centres: list[NDArray[np.float64]] = []

    def on_checkpoint(step: int, model: Any) -> None:
        nonlocal centres
        net = Network.from_torch(model)
        centres, densities, _ = measure_densities(net, trajectories, config.windows, num_threads)
        recorded[step] = densities
        if keep_weights and step in (steps[0], steps[-1]):
            weights["init" if step == 0 else "final"] = sequential_to_arrays(model)[:2]

    # torch's thread count is process-wide: tasks in threads of one process (a Dask
    # worker with several threads) take turns, so none sees another's setting.
    with _TORCH_LOCK:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            model = build_mlp(manifold.ambient_dim, task.width, task.depth, task.seed)
            loss0, loss1 = train(
                model,
                inputs,
                target(coordinate),
                config.steps,
                config.learning_rate,
                steps,
                on_checkpoint,
            )
            final_net = Network.from_torch(model)
        finally:
            torch.set_num_threads(threads)

    ident = {
        "family": manifold.family,
        "manifold": task.manifold,
        "target": task.target,
        "seed": task.seed,
        "width": task.width,
        "depth": task.depth,
    }
    frames = []
    for index, trajectory in enumerate(trajectories):
        centre = centres[index]
        window = trajectory.length / config.windows
        columns: dict[str, Any] = {
            "trajectory": f"{trajectory.kind}:{trajectory.name}",
            "kind": trajectory.kind,
            "window": np.arange(centre.size),
            "center": centre,
            "near_step": _near_steps(trajectory, Target("step"), centre, window),
            "target_bending": np.nan,
        }
        bend = _target_bending(trajectory, target)
        if bend is not None:
            columns["target_bending"] = window_means(
                trajectory.arc, bend, trajectory.closed, trajectory.length, centre, window
            )
        for measure in ("curvature", "gaussian", "mean"):
            values = trajectory.measures.get(measure)
            if measure not in measures:
                columns[measure] = np.nan
            elif values is None:  # lines: straight, no curvature
                columns[measure] = 0.0
            else:
                columns[measure] = window_means(
                    trajectory.arc, values, trajectory.closed, trajectory.length, centre, window
                )
        for step in steps:
            frames.append(
                pd.DataFrame({**ident, **columns, "step": step, "density": recorded[step][index]})
            )
    windows_table = pd.concat(frames, ignore_index=True)

    # Resolution check: the final network along the same curves sampled finer.
    fine = manifold.trajectories(config.resolution * config.convergence_factor)
    _, fine_density, fine_breakpoints = measure_densities(
        final_net, fine, config.windows, num_threads
    )
    _, coarse_density, coarse_breakpoints = measure_densities(
        final_net, on, config.windows, num_threads
    )
    convergence = pd.DataFrame(
        {
            **ident,
            "trajectory": [f"on:{t.name}" for t in on],
            "resolution": config.resolution,
            "fine_resolution": config.resolution * config.convergence_factor,
            "breakpoints": coarse_breakpoints,
            "fine_breakpoints": fine_breakpoints,
            "max_window_density_difference": [
                float(np.max(np.abs(a - b))) for a, b in zip(coarse_density, fine_density)
            ],
        }
    )
    runs = pd.DataFrame([{**ident, **manifold.params(), "loss_init": loss0, "loss_final": loss1}])
    return {
        "windows": windows_table,
        "runs": runs,
        "convergence": convergence,
        "weights": weights if keep_weights else None,
    }


def run_sweep(
    tasks: Sequence[Task],
    config: StudyConfig,
    jobs: int = 1,
    scheduler: str | None = None,
    quiet: bool = False,
    keep_weights: Sequence[bool] | None = None,
) -> list[dict[str, Any]]:
    """Run tasks in parallel, results in task order.

    Locally through joblib (``jobs`` processes; 1 runs in this process), or, when
    ``scheduler`` is a Dask scheduler address (``"tcp://host:8786"``), on that cluster
    through ``dask.distributed`` (``Client.map``); its workers need lrcore installed.
    Either way each task is deterministic, so the results are the same.
    """
    tqdm = optional_import("tqdm.auto", "experiments")
    keep = list(keep_weights) if keep_weights is not None else [False] * len(tasks)
    if len(keep) != len(tasks):
        msg = f"keep_weights: expected one flag per task ({len(tasks)}), got {len(keep)}"
        raise ValueError(msg)
    bar = tqdm.tqdm(
        total=len(tasks), desc="training runs", disable=True if quiet else None, unit="run"
    )
    try:
        if scheduler is not None:
            distributed = optional_import("dask.distributed", "experiments")
            with distributed.Client(scheduler) as client:
                futures = client.map(
                    run_task,
                    list(tasks),
                    [config] * len(tasks),
                    [1] * len(tasks),
                    keep,
                    pure=False,
                )
                for _ in distributed.as_completed(futures):
                    bar.update(1)
                results: list[dict[str, Any]] = client.gather(futures)
            return results
        if jobs < 1:
            msg = f"jobs: expected a positive number of workers, got {jobs}"
            raise ValueError(msg)
        threads = 1 if jobs > 1 else None
        joblib = optional_import("joblib", "experiments")
        parallel = joblib.Parallel(n_jobs=jobs, return_as="generator")
        results = []
        for result in parallel(
            joblib.delayed(run_task)(task, config, threads, flag)
            for task, flag in zip(tasks, keep)
        ):
            results.append(result)
            bar.update(1)
        return results
    finally:
        bar.close()
