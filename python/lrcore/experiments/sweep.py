"""One training run of the study (a *task*) and sweeps of tasks through joblib or Dask.

A task trains one MLP on one manifold, target arm, target kind and seed, and counts exact
breakpoints with :func:`lrcore.count_1d` along every trajectory (on the manifold, offset
from it on both sides along its outward normals, and random lines) at every checkpoint.
Everything random in a task is drawn from streams keyed by what it depends on (see
:func:`prepare_task`), so tasks are independent and deterministic: a sweep gives the same
tables in any order, on any engine.
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
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
    RigidMotion,
    Saddle,
    Sphere,
    Surface,
    Torus,
    Trajectory,
    menger_curvature,
    outward_normals,
    window_means,
)
from .targets import ARMS, TARGET_KINDS, Target, draw_targets
from .training import SCHEDULES, build_mlp, checkpoint_steps, train

__all__ = [
    "DEFAULT_MANIFOLDS",
    "FAMILIES",
    "MANIFOLDS",
    "StudyConfig",
    "Task",
    "TaskSetup",
    "architecture_config",
    "build_manifold",
    "dynamics_config",
    "make_tasks",
    "measure_densities",
    "parse_spec",
    "prepare_task",
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
#: The manifolds each family studies by default, as ``name[:key=value,...]`` specs: the
#: dose-response series (ellipse axis ratio, sinusoidal-profile amplitude, torus minor
#: radius; their contrast-0 members are circles), curves with corners and jumps of
#: curvature, a helix, the sphere, an ellipsoid, a saddle, and five digits' rotation
#: orbits and one translation orbit.
DEFAULT_MANIFOLDS: dict[str, tuple[str, ...]] = {
    "curves": (
        "ellipse:b=1.0",
        "ellipse:b=0.7",
        "ellipse:b=0.4",
        "ellipse:b=0.2",
        "profile:amplitude=0.0",
        "profile:amplitude=0.3",
        "profile:amplitude=0.6",
        "profile:amplitude=0.9",
        "profile:profile=piecewise",
        "polygon:sides=4",
        "helix",
    ),
    "surfaces": (
        "sphere",
        "torus:minor=0.2",
        "torus:minor=0.35",
        "torus:minor=0.5",
        "torus:minor=0.65",
        "ellipsoid",
        "saddle",
    ),
    "images": (
        "digit:digit=0",
        "digit:digit=1",
        "digit:digit=2",
        "digit:digit=3",
        "digit:digit=4",
        "digit:digit=0,motion=translation",
    ),
}


@dataclass(frozen=True)
class StudyConfig:
    """What the study computes (not how it is run): every field changes the tables.

    Every combination of manifold, arm, target kind, seed, width and depth is one
    training run (a :class:`Task`).

    **Fit check.** Each run is evaluated on a held-out sample of ``heldout`` points of
    the manifold, drawn independently of the training sample. A run *fits* when its
    held-out mean squared error is at most ``fit_fraction`` times the variance of the
    target on that held-out sample (``fit_ok``), i.e. its held-out R² is at least
    ``1 - fit_fraction`` (0.9 by default). Runs that do not fit are excluded from the
    analysis and listed in the report.

    Attributes
    ----------
    families
        Manifold families to study (a subset of :data:`FAMILIES`).
    manifolds
        Manifold specs (``name[:key=value,...]``) overriding the families' defaults.
    arms
        Target arms (:data:`lrcore.experiments.targets.ARMS`): ``"arc"`` (targets are
        functions of the chart / arc-length coordinate) and ``"ambient"`` (functions of
        the position in input space).
    targets
        Target kinds (:data:`lrcore.experiments.targets.TARGET_KINDS`).
    seeds
        Study seeds, the unit of inference: each draws its own target phase, frequency
        and jumps, rigid motion, samples and (per task) network initialisation.
    widths, depths
        Architectures: every combination is trained.
    steps, checkpoints
        Adam steps, and how many evenly spread checkpoints after step 0 are measured.
    samples, heldout
        Training points and held-out points sampled uniformly on the manifold.
    resolution
        Vertices of each trajectory polyline.
    windows
        Density windows per trajectory.
    offset
        Distance of the off-manifold trajectories from the manifold (on both sides).
        Where the manifold curves by more than ``1 / offset`` (the ellipse of axis
        ratio 0.2 near its vertices) the inward offset passes its centres of curvature
        and folds over: it is a control path there, not a parallel curve.
    surface_paths
        u-curves and v-curves measured on each surface (this many of each).
    lines
        Random straight segments through the data per run (controls without curvature).
    learning_rate, schedule
        Adam's learning rate and its schedule (``"constant"`` or ``"cosine"``).
    motion_scale
        The random rigid motion moves the data's centroid to a distance uniform in
        ``[0, motion_scale * r]`` from the network's origin, ``r`` the RMS radius of
        the data (0: the centroid at the origin, rotation only).
    fit_fraction
        The fit threshold, as a fraction of the target's held-out variance (see above).
    embed_dim
        Curves of lower dimension are embedded isometrically in R^embed_dim.
    convergence_factor
        The resolution check measures the final network and the curvature again at this
        many times the resolution.
    permutations
        Circular-shift permutations of the per-manifold null distributions.
    slope_jumps
        Also measure, at every checkpoint, the slope-jump density of each window: the sum
        of ``|Δ ∂f/∂s|`` over its breakpoints per unit length
        (:func:`~lrcore.experiments.measures.slope_jumps`; column ``jump_density``).
    theory
        At initialisation, the Hanin-Rolnick expected density of each trajectory against
        its exact density (:func:`~lrcore.experiments.measures.hanin_rolnick_density`;
        the ``theory`` table).
    tube_seeds, tube_bins
        The tube density map (:func:`~lrcore.experiments.measures.tube_density_map`)
        around plane curves, before and after training, for runs of the first
        ``tube_seeds`` seeds (0: none), with ``windows`` bins along the curve and
        ``tube_bins`` across it (the ``tube`` table).
    local_seeds, local_points
        Local tube maps (:func:`~lrcore.experiments.measures.local_tube_map`) around
        every manifold that is not a plane curve (curves in higher dimension, surfaces,
        image orbits), before and after training, for runs of the first ``local_seeds``
        seeds (0: none): at about ``local_points`` sample points per run, spread evenly
        over its on-manifold trajectories, in the plane spanned by the trajectory's
        tangent and the normal its offset trajectories use, with ``tube_bins`` bins
        across (the ``local_tube`` table).
    arch_seeds, arch_widths, arch_depths, arch_manifolds
        The architecture sweep (:func:`architecture_config`): every width x depth on
        ``arch_manifolds`` (arc arm, smooth target) for the first ``arch_seeds`` seeds
        (0: none).
    dynamics_seeds, dynamics_factor, dynamics_checkpoints, dynamics_manifolds
        The dynamics run (:func:`dynamics_config`): ``dynamics_factor`` times the steps,
        measured at ``dynamics_checkpoints`` checkpoints, on ``dynamics_manifolds`` (arc
        arm, smooth target) for the first ``dynamics_seeds`` seeds (0: none).

    Examples
    --------
    >>> config = StudyConfig(manifolds=("ellipse:b=0.4",), seeds=(0, 1))
    >>> len(make_tasks(config))  # 2 arms x 2 targets x 2 seeds
    8
    """

    families: tuple[str, ...] = FAMILIES
    manifolds: tuple[str, ...] = ()
    arms: tuple[str, ...] = ARMS
    targets: tuple[str, ...] = TARGET_KINDS
    seeds: tuple[int, ...] = tuple(range(20))
    widths: tuple[int, ...] = (32,)
    depths: tuple[int, ...] = (3,)
    steps: int = 500
    checkpoints: int = 2
    samples: int = 768
    heldout: int = 512
    resolution: int = 512
    windows: int = 32
    offset: float = 0.1
    surface_paths: int = 2
    lines: int = 1
    learning_rate: float = 2e-2
    schedule: str = "cosine"
    motion_scale: float = 3.0
    fit_fraction: float = 0.1
    embed_dim: int = 2
    convergence_factor: int = 2
    permutations: int = 9999
    slope_jumps: bool = True
    theory: bool = True
    tube_seeds: int = 3
    tube_bins: int = 8
    local_seeds: int = 10
    local_points: int = 32
    arch_seeds: int = 0
    arch_widths: tuple[int, ...] = (16, 32, 64)
    arch_depths: tuple[int, ...] = (2, 3, 4)
    arch_manifolds: tuple[str, ...] = (
        "ellipse:b=0.4",
        "ellipse:b=0.2",
        "profile:amplitude=0.6",
        "profile:amplitude=0.9",
    )
    dynamics_seeds: int = 0
    dynamics_factor: int = 10
    dynamics_checkpoints: int = 20
    dynamics_manifolds: tuple[str, ...] = ("ellipse:b=0.2", "profile:amplitude=0.9")

    def __post_init__(self) -> None:
        choices = {"families": FAMILIES, "arms": ARMS, "targets": TARGET_KINDS}
        for name, allowed in choices.items():
            for value in getattr(self, name):
                if value not in allowed:
                    msg = f"{name}: expected a subset of {allowed}, got {value!r}"
                    raise ValueError(msg)
        for name in ("families", "arms", "seeds", "widths", "depths", "targets"):
            values = getattr(self, name)
            if not values:
                msg = f"{name}: expected at least one value"
                raise ValueError(msg)
            if len(set(values)) != len(values):
                msg = f"{name}: expected distinct values, got {values}"
                raise ValueError(msg)
        if min(self.seeds) < 0:
            msg = f"seeds: expected integers >= 0, got {self.seeds}"
            raise ValueError(msg)
        positive = {
            "steps": self.steps + 1,
            "checkpoints": self.checkpoints,
            "samples": self.samples,
            "heldout": self.heldout,
            "windows": self.windows,
            "surface_paths": self.surface_paths,
            "lines": self.lines,
            "embed_dim": self.embed_dim,
            "convergence_factor": self.convergence_factor,
            "permutations": self.permutations,
            "tube_bins": self.tube_bins,
            "dynamics_factor": self.dynamics_factor,
            "dynamics_checkpoints": self.dynamics_checkpoints,
            "tube_seeds": self.tube_seeds + 1,
            "local_seeds": self.local_seeds + 1,
            "local_points": self.local_points,
            "arch_seeds": self.arch_seeds + 1,
            "dynamics_seeds": self.dynamics_seeds + 1,
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
        for name in ("offset", "learning_rate"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                msg = f"{name}: expected a positive finite number, got {value}"
                raise ValueError(msg)
        if not (self.motion_scale >= 0 and math.isfinite(self.motion_scale)):
            msg = f"motion_scale: expected a finite number >= 0, got {self.motion_scale}"
            raise ValueError(msg)
        if not 0 < self.fit_fraction < 1:
            msg = f"fit_fraction: expected a fraction in (0, 1), got {self.fit_fraction}"
            raise ValueError(msg)
        if self.schedule not in SCHEDULES:
            msg = f"schedule: expected one of {SCHEDULES}, got {self.schedule!r}"
            raise ValueError(msg)
        for spec in (*self.manifolds, *self.arch_manifolds, *self.dynamics_manifolds):
            parse_spec(spec)  # fails early on a bad spec, without building the manifold
        if (
            not self.arch_widths
            or not self.arch_depths
            or min(*self.arch_widths, *self.arch_depths) < 1
        ):
            msg = (
                f"arch_widths, arch_depths: expected positive integers, got "
                f"{self.arch_widths}, {self.arch_depths}"
            )
            raise ValueError(msg)

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
    """One training run: a manifold spec, a target kind, a seed, an architecture and a
    target arm (last, so that older positional calls keep their meaning)."""

    manifold: str
    target: str
    seed: int
    width: int
    depth: int
    arm: str = "arc"

    @property
    def family(self) -> str:
        """The manifold's family."""
        return MANIFOLDS[_spec_name(self.manifold)][0]

    @property
    def run(self) -> str:
        """The run's id, e.g. ``"ellipse:b=0.4|arc|smooth|s3|32x3"``."""
        return f"{self.manifold}|{self.arm}|{self.target}|s{self.seed}|{self.width}x{self.depth}"


def architecture_config(config: StudyConfig) -> StudyConfig | None:
    """The architecture sweep of a study: every ``arch_widths`` x ``arch_depths`` on
    ``arch_manifolds``, arc arm, smooth target, seeds ``0 .. arch_seeds - 1``, with the
    study's other settings (None when ``arch_seeds`` is 0). Its tasks with the study's
    own architecture are the study's own tasks (same results).

    Examples
    --------
    >>> sub = architecture_config(StudyConfig(arch_seeds=2))
    >>> len(make_tasks(sub))  # 4 manifolds x 9 architectures x 2 seeds
    72
    """
    if config.arch_seeds == 0:
        return None
    return replace(
        config,
        families=FAMILIES,
        manifolds=config.arch_manifolds,
        arms=("arc",),
        targets=("smooth",),
        seeds=tuple(range(config.arch_seeds)),
        widths=config.arch_widths,
        depths=config.arch_depths,
        tube_seeds=0,
        local_seeds=0,
        arch_seeds=0,
        dynamics_seeds=0,
    )


def dynamics_config(config: StudyConfig) -> StudyConfig | None:
    """The dynamics run of a study: ``dynamics_factor`` times the steps, measured at
    ``dynamics_checkpoints`` evenly spread checkpoints, on ``dynamics_manifolds``, arc
    arm, smooth target, the study's first architecture, seeds ``0 .. dynamics_seeds -
    1`` (None when ``dynamics_seeds`` is 0).

    Examples
    --------
    >>> sub = dynamics_config(StudyConfig(dynamics_seeds=3))
    >>> sub.steps, sub.checkpoints, len(make_tasks(sub))
    (5000, 20, 6)
    """
    if config.dynamics_seeds == 0:
        return None
    return replace(
        config,
        families=FAMILIES,
        manifolds=config.dynamics_manifolds,
        arms=("arc",),
        targets=("smooth",),
        seeds=tuple(range(config.dynamics_seeds)),
        widths=config.widths[:1],
        depths=config.depths[:1],
        steps=config.steps * config.dynamics_factor,
        checkpoints=config.dynamics_checkpoints,
        theory=False,
        tube_seeds=0,
        local_seeds=0,
        arch_seeds=0,
        dynamics_seeds=0,
    )


def make_tasks(config: StudyConfig) -> list[Task]:
    """All tasks of a study, in a fixed order."""
    return [
        Task(spec, target, seed, width, depth, arm)
        for spec in config.manifold_specs()
        for arm in config.arms
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


def _stream_seed(*parts: Any) -> int:
    """A 63-bit seed from the parts that an outcome depends on (stable across processes
    and Python versions, unlike ``hash``)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@functools.lru_cache(maxsize=64)
def _base(
    spec: str, embed_dim: int, resolution: int, paths: int
) -> tuple[Manifold, tuple[Trajectory, ...]]:
    """The manifold of a spec and its on-manifold trajectories, before any motion (built
    once per process: tasks of the same manifold share them, read-only)."""
    manifold = build_manifold(spec, embed_dim)
    if isinstance(manifold, Surface):
        on = manifold.trajectories(resolution, count=paths)
    else:
        on = manifold.trajectories(resolution)
    return manifold, tuple(on)


@dataclass
class TaskSetup:
    """Everything a task draws before training (see :func:`prepare_task`).

    ``inputs``, ``heldout_inputs`` and the trajectories' points are in the network's
    input space (after the rigid motion); ``coordinate`` and ``heldout_coordinate`` are
    the samples' chart coordinates; ``values`` and ``heldout_values`` the target there.
    ``targets`` holds both kinds drawn for the seed and arm (``target`` is the task's).
    """

    task: Task
    manifold: Manifold
    motion: RigidMotion
    motion_seed: int
    init_seed: int
    targets: dict[str, Target]
    inputs: NDArray[np.float64]
    coordinate: NDArray[np.float64]
    heldout_inputs: NDArray[np.float64]
    heldout_coordinate: NDArray[np.float64]
    centre: NDArray[np.float64]
    trajectories: list[Trajectory]

    @property
    def target(self) -> Target:
        """The task's target."""
        return self.targets[self.task.target]

    @property
    def values(self) -> NDArray[np.float64]:
        """The target at the training inputs."""
        return self.target.values(self.coordinate, self.inputs)

    @property
    def heldout_values(self) -> NDArray[np.float64]:
        """The target at the held-out inputs."""
        return self.target.values(self.heldout_coordinate, self.heldout_inputs)

    def draws(self) -> dict[str, Any]:
        """The per-seed draws, for the ``runs`` table."""
        target = self.target
        return {
            "init_seed": self.init_seed,
            "motion_seed": self.motion_seed,
            "motion_distance": float(np.linalg.norm(self.motion.translation)),
            "target_phase": target.phase,
            "target_frequency": target.frequency,
            "target_jumps": ",".join(f"{p:.6f}" for p in self.targets["step"].steps),
        }


def prepare_task(task: Task, config: StudyConfig) -> TaskSetup:
    """The task's manifold, rigid motion, targets, samples and trajectories.

    Random streams, each seeded by what it depends on (so that draws are shared where
    the design pairs runs, and differ everywhere else):

    - training sample, held-out sample, rigid motion, random lines: (manifold, seed),
      shared by both arms and both target kinds of a seed;
    - target phase, frequency, jumps (and the ambient direction): (manifold, arm, seed),
      shared by the smooth and the step target, so that the smooth target's placebo
      windows sit where the step target jumps;
    - network initialisation: (manifold, arm, target, seed, width, depth): every task
      starts from its own network.

    Examples
    --------
    >>> setup = prepare_task(Task("ellipse:b=0.4", "smooth", 0, 8, 2), StudyConfig())
    >>> setup.inputs.shape, [t.kind for t in setup.trajectories]
    ((768, 2), ['on', 'offset', 'offset', 'line'])
    """
    spec, seed = task.manifold, task.seed
    manifold, on_base = _base(spec, config.embed_dim, config.resolution, config.surface_paths)
    data_rng = np.random.default_rng(_stream_seed("data", spec, config.embed_dim, seed))
    raw, coordinate = manifold.sample(config.samples, data_rng)
    heldout_rng = np.random.default_rng(_stream_seed("heldout", spec, config.embed_dim, seed))
    raw_heldout, heldout_coordinate = manifold.sample(config.heldout, heldout_rng)
    centre = raw.mean(axis=0)
    radius = float(np.sqrt(np.mean(np.sum((raw - centre) ** 2, axis=1))))
    motion_seed = _stream_seed("motion", spec, config.embed_dim, seed)
    motion = RigidMotion.random(
        centre, radius, config.motion_scale, np.random.default_rng(motion_seed)
    )
    inputs = motion(raw)
    target_rng = np.random.default_rng(
        _stream_seed("target", spec, config.embed_dim, task.arm, seed)
    )
    targets = draw_targets(
        task.arm,
        target_rng,
        manifold.curvature_symmetry,
        manifold.coordinate_closed,
        inputs,
        manifold.arc_frequencies,
    )
    on = [t.moved(motion) for t in on_base]
    trajectories = list(on)
    for trajectory in on:
        trajectories += [trajectory.offset(config.offset), trajectory.offset(-config.offset)]
    moved_centre = inputs.mean(axis=0)
    line_rng = np.random.default_rng(_stream_seed("lines", spec, config.embed_dim, seed))
    for i in range(config.lines):
        direction = line_rng.standard_normal(manifold.ambient_dim)
        direction /= np.linalg.norm(direction)
        half = on[i % len(on)].length / 2
        points = moved_centre + np.linspace(-half, half, config.resolution)[:, None] * direction
        nowhere = np.full(config.resolution, np.nan)
        trajectories.append(Trajectory(f"{i}", "line", points, False, nowhere))
    init_seed = _stream_seed(
        "init", spec, config.embed_dim, task.arm, task.target, seed, task.width, task.depth
    )
    return TaskSetup(
        task,
        manifold,
        motion,
        motion_seed,
        init_seed,
        targets,
        inputs,
        coordinate,
        motion(raw_heldout),
        heldout_coordinate,
        moved_centre,
        trajectories,
    )


def measure_densities(
    net: Network,
    trajectories: Sequence[Trajectory],
    windows: int,
    num_threads: int | None,
    jumps: bool = False,
) -> tuple[
    list[NDArray[np.float64]],
    list[NDArray[np.float64]],
    NDArray[np.int64],
    list[NDArray[np.float64]] | None,
]:
    """Exact density in ``windows`` equal windows along each trajectory (one batch call).

    Returns the window centres (arc length), the densities (breakpoints per unit length),
    the total breakpoints of each trajectory, and with ``jumps`` the slope-jump density
    of each window (the sum of ``|Δ ∂f/∂s|`` at its breakpoints per unit length,
    :func:`~lrcore.experiments.measures.slope_jumps`), else None.
    """
    batch = count_1d(
        net,
        [t.points for t in trajectories],
        [t.closed for t in trajectories],
        num_threads=num_threads,
        return_patterns=jumps,
    )
    centres, densities = [], []
    jump_densities: list[NDArray[np.float64]] | None = [] if jumps else None
    for trajectory, result in zip(trajectories, batch):
        window = result.length / windows
        at = result.window_centers(window)
        centres.append(at)
        densities.append(result.density(window, at=at))
        if jump_densities is not None:
            from .measures import slope_jumps

            found = slope_jumps(net, trajectory.points, trajectory.closed, result=result)
            jump_densities.append(found.density(window, at=at)[1])
    return centres, densities, np.asarray(batch.num_breakpoints), jump_densities


def _near_jumps(
    trajectory: Trajectory,
    steps: NDArray[np.float64],
    centres: NDArray[np.float64],
    window: float,
) -> NDArray[np.bool_]:
    """Windows whose centre is within one window of a jump of the step values ``steps``
    at the vertices (so the window reaches within half a window of the jump)."""
    defined = np.isfinite(steps)
    nxt = np.roll(steps, -1)
    jumps = defined & np.isfinite(nxt) & (steps != nxt)
    arc = trajectory.arc
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


def _bending(trajectory: Trajectory, values: NDArray[np.float64]) -> NDArray[np.float64]:
    """|d² target / d arc length²| at the vertices (three-point formula for uneven
    spacing; NaN where the target is undefined).

    A linear piece of length h fits a target with error about h² |f''| / 8, so where the
    target's graph bends is where a piecewise-linear fit needs its breakpoints: the
    positive control of the study.
    """
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


def _slope(trajectory: Trajectory, values: NDArray[np.float64]) -> NDArray[np.float64]:
    """|d target / d arc length| at the vertices (central differences; one-sided at the
    ends of an open trajectory; NaN where the target is undefined).

    A sinusoid is steepest where it bends least: ``|f''| = (2πf)² |f|`` while ``|f'|``
    peaks at its zeros, so the slope is the bending control's natural rival.
    """
    points = trajectory.points
    after = np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1)
    before = np.roll(after, 1)
    slope: NDArray[np.float64] = np.abs(
        (np.roll(values, -1) - np.roll(values, 1)) / np.maximum(after + before, 1e-300)
    )
    if not trajectory.closed:
        slope[0] = abs(values[1] - values[0]) / max(after[0], 1e-300)
        slope[-1] = abs(values[-1] - values[-2]) / max(before[-1], 1e-300)
    return slope


def _target_bending(trajectory: Trajectory, target: Target) -> NDArray[np.float64] | None:
    """|d² target / d arc length²| at the vertices of a trajectory, or None where the
    target is undefined on it (the arc arm off the manifold's chart)."""
    values = target.values(trajectory.coordinate, trajectory.points)
    if np.all(np.isnan(values)):
        return None
    return _bending(trajectory, values)


#: Window-mean columns of every trajectory, from the vertex measures of the same name.
_MEASURES = ("curvature", "geodesic_curvature", "gaussian", "mean")


def _window_columns(
    trajectory: Trajectory, setup: TaskSetup, centres: NDArray[np.float64], windows: int
) -> dict[str, Any]:
    """The window covariates of one trajectory (identity columns aside)."""
    window = trajectory.length / windows

    def mean(values: NDArray[np.float64]) -> NDArray[np.float64]:
        return window_means(
            trajectory.arc, values, trajectory.closed, trajectory.length, centres, window
        )

    prefix = {"on": "on", "line": "line"}.get(
        trajectory.kind, "offset+" if trajectory.side > 0 else "offset-"
    )
    columns: dict[str, Any] = {
        "trajectory": f"{prefix}:{trajectory.name}",
        "kind": trajectory.kind,
        "side": trajectory.side,
        "direction": trajectory.direction,
        "closed": trajectory.closed,
        "window": np.arange(centres.size),
        "center": centres,
    }
    for measure in _MEASURES:
        values = trajectory.measures.get(measure)
        if values is not None:
            columns[measure] = mean(values)
        else:  # lines are straight: no curvature; no surface there
            columns[measure] = (
                0.0 if trajectory.kind == "line" and measure == "curvature" else np.nan
            )
    values = setup.target.values(trajectory.coordinate, trajectory.points)
    columns["target_value"] = mean(values)
    columns["target_bending"] = mean(_bending(trajectory, values))
    columns["target_slope"] = mean(_slope(trajectory, values))
    points = trajectory.points
    columns["dist_centre"] = mean(np.linalg.norm(points - setup.centre, axis=1))
    columns["dist_origin"] = mean(np.linalg.norm(points, axis=1))
    steps = setup.targets["step"].step_values(trajectory.coordinate, points)
    columns["near_step"] = _near_jumps(trajectory, steps, centres, window)
    return columns


def _identity(task: Task, manifold: Manifold) -> dict[str, Any]:
    contrast = manifold.contrast()
    return {
        "run": task.run,
        "family": manifold.family,
        "manifold": task.manifold,
        "manifold_name": _spec_name(task.manifold),
        "arm": task.arm,
        "target": task.target,
        "seed": task.seed,
        "width": task.width,
        "depth": task.depth,
        "contrast_name": contrast[0] if contrast else "",
        "contrast": float(contrast[1]) if contrast else math.nan,
        "constant_curvature": manifold.constant_curvature,
    }


def _space_curvature(trajectory: Trajectory) -> NDArray[np.float64]:
    """The curvature of the trajectory as a curve in space (on surfaces: from its normal
    and geodesic curvature)."""
    kappa = trajectory.measures["curvature"]
    geodesic = trajectory.measures.get("geodesic_curvature")
    out: NDArray[np.float64] = kappa if geodesic is None else np.hypot(kappa, geodesic)
    return out


def _relative_difference(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    scale = float(np.max(np.abs(b), initial=0.0))
    return float(np.max(np.abs(a - b), initial=0.0) / scale) if scale > 0 else 0.0


def _convergence(
    setup: TaskSetup, config: StudyConfig, net: Network, num_threads: int | None
) -> dict[str, Any]:
    """The resolution check of a run's on-manifold trajectories (columns)."""
    on = [t for t in setup.trajectories if t.kind == "on"]
    fine_resolution = config.resolution * config.convergence_factor
    _, fine_base = _base(
        setup.task.manifold, config.embed_dim, fine_resolution, config.surface_paths
    )
    fine = [t.moved(setup.motion) for t in fine_base]
    fine_centres, fine_density, fine_breakpoints, _ = measure_densities(
        net, fine, config.windows, num_threads
    )
    centres, density, breakpoints, _ = measure_densities(net, on, config.windows, num_threads)
    curvature, estimate = [], []
    for coarse, finer, at, fine_at in zip(on, fine, centres, fine_centres):

        def mean(
            t: Trajectory, values: NDArray[np.float64], c: NDArray[np.float64]
        ) -> NDArray[np.float64]:
            return window_means(t.arc, values, t.closed, t.length, c, t.length / config.windows)

        exact = mean(coarse, coarse.measures["curvature"], at)
        curvature.append(
            _relative_difference(exact, mean(finer, finer.measures["curvature"], fine_at))
        )
        menger = menger_curvature(coarse.points, closed=coarse.closed)
        estimate.append(
            _relative_difference(
                mean(coarse, menger, at), mean(coarse, _space_curvature(coarse), at)
            )
        )
    return {
        "trajectory": [f"on:{t.name}" for t in on],
        "direction": [t.direction for t in on],
        "resolution": config.resolution,
        "fine_resolution": fine_resolution,
        "breakpoints": breakpoints,
        "fine_breakpoints": fine_breakpoints,
        "max_window_density_difference": [
            float(np.max(np.abs(a - b))) for a, b in zip(density, fine_density)
        ],
        "curvature_difference": curvature,
        "estimate_difference": estimate,
    }


#: Sample points of the Hanin-Rolnick estimate along each trajectory (its mean moved by
#: 0.5% between 128 and 512 on a 64-d orbit, at a twentieth of the time).
THEORY_SAMPLES = 128


def _theory_rows(
    net: Network, trajectories: Sequence[Trajectory], config: StudyConfig, threads: int | None
) -> list[dict[str, Any]]:
    """Hanin-Rolnick expected density against the exact one, per trajectory (at init)."""
    from .measures import hanin_rolnick_density

    rows = []
    for t in trajectories:
        found = hanin_rolnick_density(
            net, t.points, t.closed, samples=THEORY_SAMPLES, num_threads=threads
        )
        prefix = {"on": "on", "line": "line"}.get(t.kind, "offset+" if t.side > 0 else "offset-")
        rows.append(
            {
                "trajectory": f"{prefix}:{t.name}",
                "kind": t.kind,
                "length": found.length,
                "expected": found.expected,
                "measured": found.measured,
                "ratio": found.ratio,
                **{f"expected_layer{i + 1}": v for i, v in enumerate(found.per_layer)},
            }
        )
    return rows


@dataclass(frozen=True)
class _TubePlan:
    """Where a run's tube map is measured: the on-manifold curve in the input plane, the
    tube's half-width and the curvature at the centres of the bins along it."""

    points: NDArray[np.float64]
    closed: bool
    half_width: float
    curvature: NDArray[np.float64]


def _tube_plan(setup: TaskSetup, config: StudyConfig) -> _TubePlan | None:
    """The tube of a plane curve's run among the first ``tube_seeds`` seeds, else None.

    The half-width is twice the offset, but at most 0.8 times the smallest radius of
    curvature of the window means (so that the bins do not fold)."""
    manifold = setup.manifold
    if (
        setup.task.seed >= config.tube_seeds
        or not isinstance(manifold, Curve)
        or manifold.ambient_dim != 2
    ):
        return None
    on = next(t for t in setup.trajectories if t.kind == "on")
    window = on.length / config.windows
    centres = (window / 2 + window * np.arange(config.windows)).astype(np.float64)
    kappa = window_means(
        on.arc, np.abs(on.measures["curvature"]), on.closed, on.length, centres, window
    )
    largest = float(np.max(np.abs(on.measures["curvature"])))
    half = min(2 * config.offset, 0.8 / largest) if largest > 0 else 2 * config.offset
    return _TubePlan(on.points, on.closed, half, kappa)


def _tube_map(
    net: Network, plan: _TubePlan, config: StudyConfig, threads: int | None
) -> NDArray[np.float64] | None:
    """The tube's density map (windows x tube_bins), or None where its bins fold."""
    from .measures import tube_density_map

    try:
        found = tube_density_map(
            net,
            plan.points,
            plan.closed,
            half_width=plan.half_width,
            s_bins=config.windows,
            r_bins=config.tube_bins,
            num_threads=threads,
        )
    except ValueError:  # a corner folds the bins: no map for this curve
        return None
    density: NDArray[np.float64] = found.density
    return density


def _tube_columns(plan: _TubePlan, maps: dict[str, Any]) -> dict[str, Any]:
    """Columns of a run's tube table (one row per bin), empty where the bins fold."""
    init, final = maps["init"], maps["final"]
    if init is None or final is None:
        return {"window": np.zeros(0, dtype=np.int64)}
    s_bins, r_bins = init.shape
    edges = np.linspace(-plan.half_width, plan.half_width, r_bins + 1)
    offsets = (edges[1:] + edges[:-1]) / 2
    return {
        "window": np.repeat(np.arange(s_bins), r_bins),
        "offset_bin": np.tile(np.arange(r_bins), s_bins),
        "offset": np.tile(offsets, s_bins),
        "half_width": plan.half_width,
        "curvature": np.repeat(plan.curvature, r_bins),
        "tube_init": init.ravel(),
        "tube_final": final.ravel(),
    }


@dataclass(frozen=True)
class _LocalPlan:
    """Where a run's local tube maps are measured: sample points on its on-manifold
    trajectories, the tangent and normal spanning each map's plane, |curvature| there,
    the trajectory of each point, and the maps' half-width and half-length."""

    points: NDArray[np.float64]
    tangents: NDArray[np.float64]
    normals: NDArray[np.float64]
    curvature: NDArray[np.float64]
    trajectory: tuple[str, ...]
    half_width: float
    half_length: float


def _local_plan(setup: TaskSetup, config: StudyConfig) -> _LocalPlan | None:
    """The local tube maps of a run among the first ``local_seeds`` seeds whose manifold
    is not a plane curve, else None.

    ``ceil(local_points / k)`` points on each of the run's ``k`` on-manifold
    trajectories, at evenly spread vertices (interior ones on open trajectories); the
    tangent from the neighbouring vertices, the normal the one the run's offset
    trajectories use (the surface's outward normal; on curves and orbits the direction
    away from the centroid, orthogonal to the tangent). The half-width is that of the
    plane curves' tube (twice the offset, at most 0.8 times the smallest radius of
    curvature on the run's trajectories), the half-length half of it, so that the
    manifold, bending by ``kappa a² / 2`` over the half-length ``a``, stays within a
    tenth of the half-width of the tangent line (inside the core of the map)."""
    manifold = setup.manifold
    if setup.task.seed >= config.local_seeds or (
        isinstance(manifold, Curve) and manifold.ambient_dim == 2
    ):
        return None
    on = [t for t in setup.trajectories if t.kind == "on"]
    per = max(1, math.ceil(config.local_points / len(on)))
    points, tangents, normals, curvature, names = [], [], [], [], []
    for trajectory in on:
        pts = trajectory.points
        n = pts.shape[0]
        index = ((np.arange(per) + 0.5) * n / per).astype(np.int64)
        if trajectory.closed:
            before, after = pts[(index - 1) % n], pts[(index + 1) % n]
        else:
            index = np.clip(index, 1, n - 2)
            before, after = pts[index - 1], pts[index + 1]
        normal = trajectory.normals if trajectory.normals is not None else outward_normals(pts)
        points.append(pts[index])
        tangents.append(after - before)
        normals.append(normal[index])
        curvature.append(np.abs(trajectory.measures["curvature"][index]))
        names += [f"on:{trajectory.name}"] * index.size
    largest = max(float(np.max(np.abs(t.measures["curvature"]))) for t in on)
    half = min(2 * config.offset, 0.8 / largest) if largest > 0 else 2 * config.offset
    return _LocalPlan(
        np.concatenate(points),
        np.concatenate(tangents),
        np.concatenate(normals),
        np.concatenate(curvature),
        tuple(names),
        half,
        half / 2,
    )


def _local_maps(
    net: Network, plan: _LocalPlan, config: StudyConfig, threads: int | None
) -> NDArray[np.float64]:
    """``(points, tube_bins)`` boundary length per unit area across each sample point's
    plane (NaN where its tangent and normal are not independent)."""
    from .measures import local_tube_map

    out = np.full((plan.points.shape[0], config.tube_bins), np.nan)
    for i, (x0, t, n) in enumerate(zip(plan.points, plan.tangents, plan.normals)):
        try:
            found = local_tube_map(
                net,
                x0,
                t,
                n,
                half_length=plan.half_length,
                half_width=plan.half_width,
                s_bins=1,
                r_bins=config.tube_bins,
                num_threads=threads,
            )
        except ValueError:  # a degenerate frame (a tangent of length 0, a normal along it)
            continue
        out[i] = found.profile()
    return out


def _local_columns(plan: _LocalPlan, maps: dict[str, Any]) -> dict[str, Any]:
    """Columns of a run's local tube table: one row per sample point and offset bin;
    ``window`` numbers the run's sample points."""
    init, final = maps["init"], maps["final"]
    count, r_bins = init.shape
    edges = np.linspace(-plan.half_width, plan.half_width, r_bins + 1)
    offsets = (edges[1:] + edges[:-1]) / 2
    return {
        "trajectory": np.repeat(np.asarray(plan.trajectory), r_bins),
        "window": np.repeat(np.arange(count), r_bins),
        "offset_bin": np.tile(np.arange(r_bins), count),
        "offset": np.tile(offsets, count),
        "half_width": plan.half_width,
        "half_length": plan.half_length,
        "curvature": np.repeat(plan.curvature, r_bins),
        "tube_init": init.ravel(),
        "tube_final": final.ravel(),
    }


def run_task(
    task: Task, config: StudyConfig, num_threads: int | None = 1, keep_weights: bool = False
) -> dict[str, Any]:
    """Train one model and measure it: returns pandas tables ``windows``, ``runs`` and
    ``convergence`` (and ``weights``: the init and final arrays when ``keep_weights``).

    Torch runs on one thread here, whatever the caller's setting (restored after), so
    the result is the same in a worker process, a Dask worker thread or the caller.
    The columns are those of the study's table contract (identity columns in all three).
    """
    torch = optional_import("torch", "experiments")
    pd = optional_import("pandas", "experiments")
    from lrcore._torch_sequential import sequential_to_arrays

    cpu_start, wall_start = time.process_time(), time.perf_counter()
    setup = prepare_task(task, config)
    manifold, trajectories = setup.manifold, setup.trajectories
    steps = checkpoint_steps(config.steps, config.checkpoints)
    heldout_values = setup.heldout_values

    recorded: dict[int, list[NDArray[np.float64]]] = {}
    weights: dict[str, Any] = {}
    centres: list[NDArray[np.float64]] = []

    jumps: dict[int, list[NDArray[np.float64]]] = {}
    theory: list[dict[str, Any]] = []
    tube: dict[str, Any] = {}
    tube_plan = _tube_plan(setup, config)
    local: dict[str, Any] = {}
    local_plan = _local_plan(setup, config)

    def on_checkpoint(step: int, model: Any) -> None:
        nonlocal centres
        net = Network.from_torch(model)
        centres, densities, _, jump_density = measure_densities(
            net, trajectories, config.windows, num_threads, jumps=config.slope_jumps
        )
        recorded[step] = densities
        if jump_density is not None:
            jumps[step] = jump_density
        if keep_weights and step in (steps[0], steps[-1]):
            weights["init" if step == 0 else "final"] = sequential_to_arrays(model)[:2]
        if step == 0 and config.theory:
            theory.extend(_theory_rows(net, trajectories, config, num_threads))
        if tube_plan is not None and step in (steps[0], steps[-1]):
            tube["init" if step == 0 else "final"] = _tube_map(net, tube_plan, config, num_threads)
        if local_plan is not None and step in (steps[0], steps[-1]):
            local["init" if step == 0 else "final"] = _local_maps(
                net, local_plan, config, num_threads
            )

    # torch's thread count is process-wide: tasks in threads of one process (a Dask
    # worker with several threads) take turns, so none sees another's setting.
    with _TORCH_LOCK:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            model = build_mlp(manifold.ambient_dim, task.width, task.depth, setup.init_seed)
            loss0, loss1 = train(
                model,
                setup.inputs,
                setup.values,
                config.steps,
                config.learning_rate,
                steps,
                on_checkpoint,
                schedule=config.schedule,
            )
            with torch.no_grad():
                x = torch.from_numpy(setup.heldout_inputs.astype(np.float32))
                y = torch.from_numpy(heldout_values.astype(np.float32).reshape(-1, 1))
                heldout_loss = float(torch.mean((model(x) - y) ** 2))
            final_net = Network.from_torch(model)
        finally:
            torch.set_num_threads(threads)

    ident = _identity(task, manifold)
    parts = [
        _window_columns(t, setup, centres[i], config.windows) for i, t in enumerate(trajectories)
    ]
    sizes = [c.size for c in centres]
    columns: dict[str, Any] = {}
    for name in parts[0]:
        per = [np.broadcast_to(np.asarray(p[name]), (n,)) for p, n in zip(parts, sizes)]
        columns[name] = np.tile(np.concatenate(per), len(steps))
    total = sum(sizes)
    windows_table = pd.DataFrame(
        {
            **ident,
            **columns,
            "step": np.repeat(np.asarray(steps, dtype=np.int64), total),
            "density": np.concatenate([np.concatenate(recorded[s]) for s in steps]),
            "jump_density": (
                np.concatenate([np.concatenate(jumps[s]) for s in steps]) if jumps else np.nan
            ),
        }
    )
    convergence = pd.DataFrame({**ident, **_convergence(setup, config, final_net, num_threads)})
    variance = float(np.var(heldout_values))
    threshold = config.fit_fraction * variance
    runs = pd.DataFrame(
        [
            {
                **ident,
                **setup.draws(),
                **manifold.params(),
                "samples": config.samples,
                "heldout": config.heldout,
                "loss_train_init": loss0,
                "loss_train_final": loss1,
                "loss_heldout_final": heldout_loss,
                "target_variance": variance,
                "fit_threshold": threshold,
                "fit_ok": bool(heldout_loss <= threshold),
                # The task's own time (process CPU: the worker's threads together).
                "cpu_seconds": time.process_time() - cpu_start,
                "wall_seconds": time.perf_counter() - wall_start,
            }
        ]
    )
    theory_table = pd.DataFrame([{**ident, **row} for row in theory])
    tube_table = (
        pd.DataFrame({**ident, **_tube_columns(tube_plan, tube)})
        if tube_plan is not None and len(tube) == 2
        else pd.DataFrame()
    )
    local_table = (
        pd.DataFrame({**ident, **_local_columns(local_plan, local)})
        if local_plan is not None and len(local) == 2
        else pd.DataFrame()
    )
    return {
        "windows": windows_table,
        "runs": runs,
        "convergence": convergence,
        "theory": theory_table,
        "tube": tube_table,
        "local_tube": local_table,
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
