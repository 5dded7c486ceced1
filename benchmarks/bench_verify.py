"""verify() against count_1d on a CIFAR CNN's segment: wall and CPU, fresh and warm.

bench_cnn's segment (``x0 ~ N(0, I)``, ``x1 = x0 + --radius N(0, I)``, seed 0) through
lrcore.zoo's ResNet-18 (or VGG-11) at ``--width``: ``count_1d`` with ``rtol``, then
``verify()`` of its result twice in the same process. The first call is *fresh*: it
pays the core's one-off symbol bounds on the convolutions' norms
(``Network._core.norm_bounds()``, computed on first use); the second is *warm*. Each
row gives the wall time, the process's CPU time (user + system, all threads: steadier
than wall time on a shared machine) and the ratio to the count's. Issue 13's target is
verify() no slower than the count.

    nice python benchmarks/bench_verify.py --width 64 --threads 2
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import lrcore
from _common import markdown_table, print_header, print_targets, progress, reproduce_command
from lrcore import zoo

SHAPE = (3, 32, 32)


def cpu_seconds() -> tuple[float, float]:
    """User and system CPU seconds of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def timed(function: Callable[[], Any]) -> tuple[Any, float, float, float]:
    """``function()``, its wall seconds, and its user and system CPU seconds."""
    user, system = cpu_seconds()
    start = time.perf_counter()
    value = function()
    wall = time.perf_counter() - start
    user2, system2 = cpu_seconds()
    return value, wall, user2 - user, system2 - system


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("resnet18", "vgg11"), default="resnet18")
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--radius", type=float, default=0.005)
    parser.add_argument("--rtol", type=float, default=1e-10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    model = (zoo.vgg11 if args.model == "vgg11" else zoo.resnet18)(width=args.width, seed=0)
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(3072)
    x1 = x0 + args.radius * rng.standard_normal(3072)
    net = lrcore.from_torch(model, SHAPE)
    progress("count_1d ...")
    result, wall, user, system = timed(
        lambda: lrcore.count_1d(net, np.stack([x0, x1]), rtol=args.rtol, num_threads=args.threads)
    )
    count = (wall, user + system)
    rows = [
        [
            f"count_1d (rtol={args.rtol:g}, {result.num_breakpoints} breakpoints)",
            f"{wall:.3g}",
            f"{user:.3g} + {system:.3g}",
            "1",
            "1",
        ]
    ]
    times = {}
    for name in ("fresh", "warm"):
        progress(f"verify() {name} ...")
        report, wall, user, system = timed(lambda: result.verify(raise_on_error=False))
        times[name] = (wall, user + system)
        rows.append(
            [
                f"verify(), {name} (ok={report.ok})",
                f"{wall:.3g}",
                f"{user:.3g} + {system:.3g}",
                f"{wall / count[0]:.2f}",
                f"{(user + system) / count[1]:.2f}",
            ]
        )
    print_header(f"verify() against count_1d: CIFAR {args.model}, width {args.width}")
    print(f"- threads: {args.threads} (count_1d's num_threads; verify() uses the CPUs)")
    print()
    header = ["call", "wall s", "CPU s (user + sys)", "wall / count", "CPU / count"]
    print(markdown_table(header, rows))
    print()
    command = reproduce_command("benchmarks/bench_verify.py", sys.argv[1:], args.threads)
    targets = [
        (times[name][0] <= count[0], f"verify() {name} no slower than the count (wall)")
        for name in ("fresh", "warm")
    ]
    print_targets(targets, command)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
