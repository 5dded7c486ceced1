"""Command-line interface: ``lrcore <command>`` (also ``python -m lrcore``).

Commands
--------
demo
    Exact breakpoints, pieces, distinct regions and densities of small ReLU networks
    along a segment and a circle, before and after a short training run.
study
    The curvature study (lrcore's main job): train ReLU MLPs on targets on curves,
    surfaces and image orbits, relate the change of exact region density to curvature
    and to the target's jumps, and write tables, figures and a report.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["build_parser", "main"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text}")
    return value


def _float_parser(positive: bool) -> Callable[[str], float]:
    """An argparse type: a finite number, > 0 (``positive``) or >= 0."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            bound = "a positive number" if positive else "a number >= 0"
            raise argparse.ArgumentTypeError(f"expected {bound}, got {text}")
        return value

    return parse


_positive_float = _float_parser(positive=True)
_non_negative_float = _float_parser(positive=False)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lrcore")
    except PackageNotFoundError:  # run from a source tree without installing
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``lrcore`` command."""
    parser = argparse.ArgumentParser(
        prog="lrcore",
        description="Exact linear regions of ReLU networks along paths.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="command")

    demo = commands.add_parser(
        "demo",
        help="count exact regions of small networks along a segment and a circle",
        description=(
            "Build small seeded ReLU MLPs (a 2D one, trained briefly with torch when "
            "available, and a higher-dimensional random one) and print exact "
            "breakpoints, pieces, distinct regions and densities along a segment and "
            "along a circle."
        ),
    )
    demo.add_argument("--seed", type=int, default=0, help="seed for everything (default 0)")
    demo.add_argument("--width", type=_positive_int, default=32, help="hidden width (32)")
    demo.add_argument("--depth", type=_positive_int, default=3, help="hidden layers (3)")
    demo.add_argument(
        "--steps", type=_non_negative_int, default=300, help="Adam training steps (300)"
    )
    demo.add_argument(
        "--dim",
        type=_positive_int,
        default=16,
        help="input dimension of the higher-dimensional network (16)",
    )
    demo.add_argument(
        "--no-train",
        dest="train",
        action="store_false",
        help="skip training (and torch); measure a random 2D network instead",
    )
    demo.add_argument(
        "--verify",
        action="store_true",
        help="also count with the slow numpy walk (lrcore.reference) and compare",
    )
    demo.set_defaults(handler=_run_demo)
    _add_study(commands)
    return parser


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one integer, got {text!r}")
    return values


def _name_list(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _add_study(commands: Any) -> None:
    study = commands.add_parser(
        "study",
        help="the curvature study: tables, figures and report (lrcore's main job)",
        description=(
            "Train seeded ReLU MLPs on smooth and step targets, functions of the chart "
            "coordinate (arc arm) or of the position (ambient arm), on curves (with "
            "dose-response series of curvature contrast), surfaces and digit image orbits; "
            "count exact breakpoints along trajectories on the manifold, offset from it on "
            "both sides and on random lines, before, during and after training; relate the "
            "change of density to curvature and to the target's jumps; write CSV and "
            "Parquet tables, PNG figures and report.md. The defaults (1,920 runs, 20 seeds, "
            "with the architecture sweep and the dynamics) take about 8 minutes on 2 quiet "
            "cores; --quick about 1.3 minutes."
        ),
    )
    study.add_argument("--out", default="results", help="output folder (default results/)")
    sizes = study.add_mutually_exclusive_group()
    sizes.add_argument(
        "--quick",
        action="store_true",
        help="a first look: 8 manifolds, 6 seeds, 192 runs (about 1.3 minutes on 2 cores)",
    )
    sizes.add_argument(
        "--tiny", action="store_true", help="a tiny configuration (seconds; for smoke tests)"
    )
    study.add_argument(
        "--families",
        type=_name_list,
        default=None,
        help="comma-separated subset of curves,surfaces,images (default: all)",
    )
    study.add_argument(
        "--manifolds",
        default=None,
        help=(
            "manifold specs name[:key=value,...] joined by '+', e.g. "
            "'ellipse:b=0.3+ellipse:b=0.6+torus' (default: each family's built-in list)"
        ),
    )
    study.add_argument(
        "--arms",
        type=_name_list,
        default=None,
        help="target arms: arc (function of the chart coordinate), ambient (of the "
        "position x) (default: both)",
    )
    study.add_argument(
        "--targets", type=_name_list, default=None, help="smooth,step (default: both)"
    )
    study.add_argument(
        "--seeds", type=_positive_int, default=None, help="number of seeds 0..N-1 (default 20)"
    )
    study.add_argument("--widths", type=_int_list, default=None, help="hidden widths (32)")
    study.add_argument("--depths", type=_int_list, default=None, help="hidden layers (3)")
    study.add_argument("--steps", type=_non_negative_int, default=None, help="Adam steps (500)")
    study.add_argument(
        "--learning-rate", type=_positive_float, default=None, help="Adam's rate (0.02)"
    )
    study.add_argument(
        "--schedule",
        choices=("constant", "cosine"),
        default=None,
        help="learning-rate schedule (cosine decay)",
    )
    study.add_argument("--samples", type=_positive_int, default=None, help="training points (768)")
    study.add_argument(
        "--heldout",
        type=_positive_int,
        default=None,
        help="held-out points for the fit check (512)",
    )
    study.add_argument(
        "--fit-fraction",
        type=_positive_float,
        default=None,
        help="a run fits when its held-out MSE is at most this fraction of the target's "
        "variance (0.1)",
    )
    study.add_argument(
        "--checkpoints",
        type=_positive_int,
        default=None,
        help="measured checkpoints after initialisation (2, the last being the end)",
    )
    study.add_argument(
        "--resolution", type=_positive_int, default=None, help="vertices per trajectory (512)"
    )
    study.add_argument(
        "--windows", type=_positive_int, default=None, help="density windows per trajectory (32)"
    )
    study.add_argument(
        "--offset",
        type=_positive_float,
        default=None,
        help="distance of the offset trajectories from the manifold (0.1)",
    )
    study.add_argument(
        "--surface-paths",
        type=_positive_int,
        default=None,
        help="u-curves and v-curves measured per surface (2 of each)",
    )
    study.add_argument(
        "--lines", type=_positive_int, default=None, help="random lines per run (1)"
    )
    study.add_argument(
        "--motion-scale",
        type=_non_negative_float,
        default=None,
        help="the data's centroid moves up to this many RMS radii from the network's "
        "origin (3; 0: rotation only)",
    )
    study.add_argument(
        "--embed-dim",
        type=_positive_int,
        default=None,
        help="embed curves isometrically in this dimension (default 2: plane curves stay 2D)",
    )
    study.add_argument(
        "--convergence-factor",
        type=_positive_int,
        default=None,
        help="the resolution check measures again at this many times the resolution (2)",
    )
    study.add_argument(
        "--permutations",
        type=_positive_int,
        default=None,
        help="circular-shift permutations per test (9999)",
    )
    study.add_argument(
        "--arch-seeds",
        type=_non_negative_int,
        default=None,
        help="architecture sweep: seeds of every --arch-widths x --arch-depths on a subset "
        "of curves (0: off)",
    )
    study.add_argument(
        "--arch-widths", type=_int_list, default=None, help="architecture sweep widths (16,32,64)"
    )
    study.add_argument(
        "--arch-depths", type=_int_list, default=None, help="architecture sweep depths (2,3,4)"
    )
    study.add_argument(
        "--dynamics-seeds",
        type=_non_negative_int,
        default=None,
        help="dynamics: seeds trained --dynamics-factor times longer, measured at "
        "--dynamics-checkpoints checkpoints (0: off)",
    )
    study.add_argument(
        "--dynamics-factor", type=_positive_int, default=None, help="dynamics: steps factor (10)"
    )
    study.add_argument(
        "--dynamics-checkpoints",
        type=_positive_int,
        default=None,
        help="dynamics: checkpoints after initialisation (20)",
    )
    study.add_argument(
        "--tube-seeds",
        type=_non_negative_int,
        default=None,
        help="tube density maps around plane curves for the first N seeds (0: off)",
    )
    study.add_argument(
        "--local-seeds",
        type=_non_negative_int,
        default=None,
        help="local tube maps (tangent-normal planes) around curves in higher dimension, "
        "surfaces and image orbits for the first N seeds (10; 0: off)",
    )
    study.add_argument(
        "--local-points",
        type=_positive_int,
        default=None,
        help="sample points per run of the local tube maps (32)",
    )
    study.add_argument(
        "--no-slope-jumps",
        dest="slope_jumps",
        action="store_false",
        default=None,
        help="do not weight breakpoints by the jump of the network's slope",
    )
    study.add_argument(
        "--no-theory",
        dest="theory",
        action="store_false",
        default=None,
        help="no Hanin-Rolnick expectation at initialisation",
    )
    study.add_argument(
        "--jobs",
        "--workers",
        dest="jobs",
        type=_positive_int,
        default=2,
        help="local worker processes, joblib (default 2)",
    )
    study.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler address (tcp://host:8786): run the sweep on that cluster",
    )
    study.add_argument("--quiet", action="store_true", help="no progress bars")
    study.set_defaults(handler=_run_study)


#: Study options copied to the configuration as they are (argparse dest == field).
_STUDY_FIELDS = (
    "families",
    "arms",
    "targets",
    "widths",
    "depths",
    "steps",
    "learning_rate",
    "schedule",
    "samples",
    "heldout",
    "fit_fraction",
    "checkpoints",
    "resolution",
    "windows",
    "offset",
    "surface_paths",
    "lines",
    "motion_scale",
    "embed_dim",
    "convergence_factor",
    "permutations",
    "arch_seeds",
    "arch_widths",
    "arch_depths",
    "dynamics_seeds",
    "dynamics_factor",
    "dynamics_checkpoints",
    "tube_seeds",
    "local_seeds",
    "local_points",
    "slope_jumps",
    "theory",
)


def _run_study(args: argparse.Namespace) -> int:
    import dataclasses

    from lrcore.experiments.study import DEFAULT, QUICK, TINY, run_study

    base = TINY if args.tiny else QUICK if args.quick else DEFAULT
    changes: dict[str, Any] = {
        name: getattr(args, name) for name in _STUDY_FIELDS if getattr(args, name) is not None
    }
    if args.manifolds is not None:
        changes["manifolds"] = tuple(m.strip() for m in args.manifolds.split("+") if m.strip())
    if args.seeds is not None:
        changes["seeds"] = tuple(range(args.seeds))
    try:
        config = dataclasses.replace(base, **changes)
    except ValueError as err:
        print(f"lrcore study: {err}", file=sys.stderr)
        return 2
    try:
        result = run_study(
            config, args.out, jobs=args.jobs, scheduler=args.scheduler, quiet=args.quiet
        )
    except ImportError as err:  # an optional dependency of the study is missing
        print(f"lrcore study: {err}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"wrote {len(result.files)} files to {args.out}/ in {result.seconds:.0f} s")
        print(f"report: {args.out}/report.md")
    return 0


def _run_demo(args: argparse.Namespace) -> int:
    from lrcore.demo import run_demo

    run_demo(
        seed=args.seed,
        width=args.width,
        depth=args.depth,
        steps=args.steps,
        train=args.train,
        high_dim=args.dim,
        verify=args.verify,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``lrcore`` command line; return the exit status.

    Examples
    --------
    >>> main(["demo", "--no-train", "--width", "8"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        status: int = args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
