"""The curvature study: does training's change of region density follow curvature?

``lrcore study`` (or :func:`run_study`) trains seeded ReLU MLPs on regression targets
defined on curves, surfaces and an image orbit, counts exact breakpoints with lrcore along
trajectories on the manifold (and off it) before, during and after training, relates the
change of density to curvature and to the target's discontinuities with bootstrap
statistics, and writes tables, figures and a report. Needs ``pip install
"lrcore[experiments]"``.
"""

from __future__ import annotations

from .analysis import analyse, density_changes, discontinuity_table, link_tests
from .manifolds import (
    Circle,
    Ellipse,
    Ellipsoid,
    Embedded,
    Helix,
    ImageOrbit,
    Polygon,
    ProfileCurve,
    Saddle,
    Sphere,
    Torus,
    Trajectory,
    menger_curvature,
)
from .study import QUICK, TINY, StudyResult, run_study
from .sweep import StudyConfig, Task, build_manifold, make_tasks, run_sweep, run_task
from .targets import Target

__all__ = [
    "QUICK",
    "TINY",
    "Circle",
    "Ellipse",
    "Ellipsoid",
    "Embedded",
    "Helix",
    "ImageOrbit",
    "Polygon",
    "ProfileCurve",
    "Saddle",
    "Sphere",
    "StudyConfig",
    "StudyResult",
    "Target",
    "Task",
    "Torus",
    "Trajectory",
    "analyse",
    "build_manifold",
    "density_changes",
    "discontinuity_table",
    "link_tests",
    "make_tasks",
    "menger_curvature",
    "run_study",
    "run_sweep",
    "run_task",
]
