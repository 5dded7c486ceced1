"""The curvature study: does training's change of region density follow curvature?

``lrcore study`` (or :func:`run_study`) trains seeded ReLU MLPs on regression targets
defined on curves, surfaces and an image orbit, counts exact breakpoints with lrcore along
trajectories on the manifold (and off it) before, during and after training, relates the
change of density to curvature and to the target's discontinuities with the seed as the
unit of inference (:mod:`.inference`, :mod:`.analysis`), and writes tables, figures and
a report whose readings are generated from the numbers (:mod:`.report`). Needs ``pip install
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
    RigidMotion,
    Saddle,
    Sphere,
    Torus,
    Trajectory,
    menger_curvature,
)
from .study import DEFAULT, QUICK, TINY, StudyResult, run_study
from .sweep import (
    StudyConfig,
    Task,
    TaskSetup,
    build_manifold,
    make_tasks,
    prepare_task,
    run_sweep,
    run_task,
)
from .targets import Target, draw_targets

__all__ = [
    "DEFAULT",
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
    "RigidMotion",
    "Saddle",
    "Sphere",
    "StudyConfig",
    "StudyResult",
    "Target",
    "Task",
    "TaskSetup",
    "Torus",
    "Trajectory",
    "analyse",
    "build_manifold",
    "density_changes",
    "discontinuity_table",
    "draw_targets",
    "link_tests",
    "make_tasks",
    "menger_curvature",
    "prepare_task",
    "run_study",
    "run_sweep",
    "run_task",
]
