"""Command-line interface: ``lrcore <command>`` (also ``python -m lrcore``).

Commands
--------
demo
    Exact breakpoints, pieces, distinct regions and densities of small ReLU networks
    along a segment and a circle, before and after a short training run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

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
    return parser


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
