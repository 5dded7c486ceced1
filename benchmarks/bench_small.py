"""Benchmark lrcore on small work: tiny calls, one segment, short batches, small slices.

The cases of issue 17, measured side by side in one run (regioncam single-threaded and
float32, lrcore float64, on identical networks and inputs):

- ``count_1d`` on a 1→8→1 net, one segment (per call);
- ``slice_2d`` on a 2→8→1 net, box [−1, 1]² (per call);
- one segment of length 20 through 784→[128]×3→10 (torch-default init, as in
  bench_1d.py);
- 200 such segments, lrcore on 1 thread and on ``--threads``, with the share of the
  machine's DGEMM rate (numpy, measured in the same run) that lrcore's dense products
  reach; optionally (``--large``) the same through 784→[512]×4→10;
- slices of 2→[64]×3 on [−1, 1]² and of 2→[32]×8 on [−2, 2]²;
- :class:`lrcore.torch.RegionTracker` in the small training loop of bench_torch.py: the
  time in ``tracker.step`` against the training steps (``--skip-tracker`` to leave out).

regioncam starts no threads of its own (its CPU time never exceeds its wall time), so
it runs unpinned. Timings are the best of several blocks of calls, lrcore and regioncam
interleaved, so that on a shared machine the ratios compare like with like. Every lrcore count is
printed (``--json`` writes them with the times), and ``--compare before.json`` adds the
numbers of an earlier run (e.g. of another build) as columns, with a check that every
count is equal.

This is a benchmark, not a test: it exits 0 even when a target is missed (``--strict``
changes that).

Examples
--------
::

    python benchmarks/bench_small.py --json after.json --compare before.json
    python benchmarks/bench_small.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np

import lrcore
from _common import (
    available_cpus,
    markdown_table,
    print_header,
    print_targets,
    progress,
    regioncam_version,
    reproduce_command,
)
from bench_1d import (
    SEGMENT_LENGTH,
    dgemm_gflops,
    make_segments,
    regioncam_layers,
    regioncam_lines,
    subdivision_flops,
)

TINY_1D_TARGET = 20e-6
TINY_2D_TARGET = 60e-6
BATCH_SPEEDUP_TARGET = 3.0
BATCH_DGEMM_TARGET = 0.40
LARGE_DGEMM_TARGET = 0.70
SLICE_SPEEDUP_TARGET = 5.0


@dataclass
class Row:
    """One case: lrcore's time and count, regioncam's when it ran."""

    case: str
    lrcore_seconds: float
    count: int
    regioncam_seconds: float | None = None
    regioncam_count: int | None = None
    extra: str = ""
    lrcore_cpu: float | None = None
    regioncam_cpu: float | None = None


# --------------------------------------------------------------------------- timing


def per_call(function: Callable[[], Any], min_seconds: float) -> tuple[float, float]:
    """Wall and CPU seconds (all threads of the process) per call of one block of calls."""
    function()
    start = time.perf_counter()
    function()
    once = max(time.perf_counter() - start, 1e-7)
    calls = max(1, int(min_seconds / once))
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls, (time.process_time() - cpu) / calls


def interleaved(
    functions: Sequence[Callable[[], Any] | None], min_seconds: float, blocks: int
) -> tuple[list[float | None], list[float | None]]:
    """Best wall and CPU seconds per call of several functions, blocks interleaved.

    None skips a function. On a loaded machine the CPU time (which waiting for a core
    does not count) is the steadier measure of the work done.
    """
    walls: list[float | None] = [None if f is None else np.inf for f in functions]
    cpus: list[float | None] = [None if f is None else np.inf for f in functions]
    for _ in range(blocks):
        for i, function in enumerate(functions):
            if function is not None:
                wall, cpu = per_call(function, min_seconds / blocks)
                walls[i] = min(walls[i], wall)  # type: ignore[type-var]
                cpus[i] = min(cpus[i], cpu)  # type: ignore[type-var]
    return walls, cpus


# --------------------------------------------------------------------------- regioncam


def regioncam_module() -> Any:
    try:
        import regioncam
    except ImportError:
        return None
    return regioncam


def rc_segments(
    net: lrcore.Network, segments: Sequence[np.ndarray]
) -> Callable[[], np.ndarray] | None:
    """A function running regioncam's Regioncam1D on every segment (breakpoint counts)."""
    rc = regioncam_module()
    if rc is None:
        return None
    layers = regioncam_layers(net)
    lines = regioncam_lines(segments)

    def run() -> np.ndarray:
        counts = np.empty(len(lines), dtype=np.int64)
        for index, (length, direction, centre) in enumerate(lines):
            camera = rc.Regioncam1D(length)  # the line over [-length/2, length/2]
            camera.linear(direction, centre)
            for weight, bias in layers:
                camera.linear(weight, bias)
                camera.relu()
            counts[index] = camera.num_vertices - 2
        return counts

    return run


def rc_slice(net: lrcore.Network, half: float) -> Callable[[], int] | None:
    """regioncam's Regioncam on the input plane of a 2-input net, box [-half, half]^2."""
    rc = regioncam_module()
    if rc is None:
        return None
    layers = regioncam_layers(net)

    def run() -> int:
        camera = rc.Regioncam(half)
        for weight, bias in layers:
            camera.linear(weight, bias)
            camera.relu()
        return int(camera.num_faces)

    return run


# --------------------------------------------------------------------------- cases


def tiny_1d(args: argparse.Namespace) -> Row:
    net = lrcore.Network.random([1, 8, 1], seed=args.seed)
    segment = np.array([[-1.0], [1.0]])
    rc = rc_segments(net, [segment])

    def run() -> Any:
        return lrcore.count_1d(net, segment, num_threads=args.threads)

    (seconds, rc_seconds), (cpu, rc_cpu) = interleaved([run, rc], args.min_seconds, args.blocks)
    return Row(
        "count_1d, net 1→8→1, one segment (per call)",
        float(seconds),  # type: ignore[arg-type]
        run().num_breakpoints,
        rc_seconds,
        None if rc is None else int(rc()[0]),
        lrcore_cpu=cpu,
        regioncam_cpu=rc_cpu,
    )


def tiny_2d(args: argparse.Namespace) -> Row:
    net = lrcore.Network.random([2, 8, 1], seed=args.seed)
    origin, basis = np.zeros(2), np.eye(2)
    rc = rc_slice(net, 1.0)

    def run() -> Any:
        return lrcore.slice_2d(net, origin, basis, (-1, 1, -1, 1), num_threads=args.threads)

    (seconds, rc_seconds), (cpu, rc_cpu) = interleaved([run, rc], args.min_seconds, args.blocks)
    return Row(
        "slice_2d, net 2→8→1, box [-1,1]² (per call)",
        float(seconds),  # type: ignore[arg-type]
        run().num_regions,
        rc_seconds,
        None if rc is None else rc(),
        lrcore_cpu=cpu,
        regioncam_cpu=rc_cpu,
    )


def one_segment(args: argparse.Namespace) -> Row:
    net = lrcore.Network.random([784, 128, 128, 128, 10], seed=args.seed)
    segment = make_segments(784, 1, SEGMENT_LENGTH, args.seed + 1)[0]
    rc = rc_segments(net, [segment])

    def run() -> Any:
        return lrcore.count_1d(net, segment, num_threads=args.threads)

    (seconds, rc_seconds), (cpu, rc_cpu) = interleaved([run, rc], args.min_seconds, args.blocks)
    return Row(
        "one segment through 784→[128]x3",
        float(seconds),  # type: ignore[arg-type]
        run().num_breakpoints,
        rc_seconds,
        None if rc is None else int(rc()[0]),
        f"{run().num_pieces} pieces",
        lrcore_cpu=cpu,
        regioncam_cpu=rc_cpu,
    )


def segment_batch(args: argparse.Namespace, sizes: list[int], name: str) -> list[Row]:
    """A batch of segments on 1 thread and on all, with the share of DGEMM reached."""
    net = lrcore.Network.random(sizes, seed=args.seed)
    segments = make_segments(sizes[0], args.segments, SEGMENT_LENGTH, args.seed + 1)
    rc = rc_segments(net, segments) if sizes[1] <= 128 else None

    def run(threads: int) -> Callable[[], Any]:
        return lambda: lrcore.count_1d(net, segments, num_threads=threads)

    functions = [run(1), run(args.threads) if args.threads > 1 else None, rc]
    budget = args.min_seconds * (3 if sizes[1] > 128 else 1)
    (one, many, rc_seconds), (one_cpu, many_cpu, rc_cpu) = interleaved(
        functions, budget, args.blocks
    )
    batch = run(1)()
    flops, _ = subdivision_flops(net, batch, points_per_path=2)
    width = max(net.hidden_sizes)
    # Best of a few tries: on a shared machine a try can lose its CPUs to other work. On
    # n threads the reference is the best rate that n threads or one reach.
    dgemm_one = dgemm_all = 0.0
    for _ in range(3):
        dgemm_one = max(dgemm_one, dgemm_gflops(4096, width, width, 1, 0.1))
        if many is not None:
            dgemm_all = max(dgemm_all, dgemm_gflops(4096, width, width, args.threads, 0.1))
    dgemm_all = max(dgemm_all, dgemm_one)
    total = int(np.sum(batch.num_breakpoints))
    rc_total = None if rc is None else int(rc().sum())
    rows = [
        Row(
            f"{args.segments} segments through {name}, 1 thread",
            float(one),  # type: ignore[arg-type]
            total,
            rc_seconds,
            rc_total,
            f"{flops / one / 1e9:.1f} GFLOP/s = {flops / one / 1e9 / dgemm_one:.0%} of DGEMM "
            f"({dgemm_one:.1f})",  # type: ignore[operator]
            lrcore_cpu=one_cpu,
            regioncam_cpu=rc_cpu,
        )
    ]
    if many is not None:
        rows.append(
            Row(
                f"{args.segments} segments through {name}, {args.threads} threads",
                float(many),
                total,
                rc_seconds,
                rc_total,
                f"{flops / many / 1e9:.1f} GFLOP/s = "
                f"{flops / many / 1e9 / dgemm_all:.0%} of DGEMM ({dgemm_all:.1f})",
                lrcore_cpu=many_cpu,
                regioncam_cpu=rc_cpu,
            )
        )
    return rows


def small_slice(args: argparse.Namespace, sizes: list[int], half: float) -> Row:
    net = lrcore.Network.random(sizes, seed=args.seed)
    origin, basis = np.zeros(2), np.eye(2)
    rc = rc_slice(net, half)

    def run() -> Any:
        return lrcore.slice_2d(
            net, origin, basis, (-half, half, -half, half), num_threads=args.threads
        )

    (seconds, rc_seconds), (cpu, rc_cpu) = interleaved([run, rc], args.min_seconds, args.blocks)
    hidden = "x".join(str(w) for w in sizes[1:-1])
    return Row(
        f"slice of 2→[{sizes[1]}]x{len(sizes) - 2} on [-{half:g},{half:g}]²",
        float(seconds),  # type: ignore[arg-type]
        run().num_regions,
        rc_seconds,
        None if rc is None else rc(),
        f"hidden {hidden}",
        lrcore_cpu=cpu,
        regioncam_cpu=rc_cpu,
    )


def tracker(args: argparse.Namespace) -> Row | None:
    """RegionTracker.step overhead in bench_torch.py's training loop."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    try:
        import bench_torch
    except ImportError as err:
        progress(f"[tracker] skipped: {err}")
        return None
    ns = argparse.Namespace(
        threads=args.threads,
        seed=args.seed,
        tracker_paths=10,
        tracker_every=10,
        tracker_steps=args.tracker_steps,
    )
    best = None
    for _ in range(args.tracker_repeat):
        result = bench_torch.tracker_overhead(ns)
        if best is None or result.tracker_seconds < best.tracker_seconds:
            best = result
    assert best is not None
    per_record = best.tracker_seconds / max(best.recorded, 1)
    per_step = best.training_seconds / best.steps
    return Row(
        "RegionTracker.step (10 segments through the CNN, per record)",
        per_record,
        best.recorded,
        extra=f"{per_record / per_step:.2f} training steps per record "
        f"({per_step * 1e3:.2f} ms a step); overhead {best.percent:.1f}% at every=10",
    )


# --------------------------------------------------------------------------- report


def format_time(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1e-3:
        return f"{seconds * 1e6:,.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:,.2f} ms"
    return f"{seconds:,.2f} s"


def report(rows: Sequence[Row], before: dict[str, Any] | None, args: argparse.Namespace) -> None:
    print_header("lrcore on small work (issue 17)")
    print(f"- threads: lrcore num_threads={args.threads}; regioncam single-threaded (float32)")
    print(
        f"- python {platform.python_version()}, numpy {np.__version__}, lrcore "
        f"{getattr(lrcore, '__version__', '?')} from {os.path.dirname(lrcore.__file__)}, "
        f"regioncam {regioncam_version()}"
    )
    print(f"- best of {args.blocks} interleaved blocks of about {args.min_seconds:g} s per case")
    print()
    header = [
        "case",
        "lrcore",
        "regioncam",
        "speed-up",
        "CPU time: lrcore, regioncam (ratio)",
        "count (regioncam)",
        "notes",
    ]
    # Runs of the first version of this script named the cases with "\u00d7" and "\u2212".
    old = (
        {r["case"].replace("\u00d7", "x").replace("\u2212", "-"): r for r in before["rows"]}
        if before
        else {}
    )
    if before:
        header[1:1] = ["lrcore before"]
    table = []
    for r in rows:
        speedup = f"{r.regioncam_seconds / r.lrcore_seconds:,.3g}x" if r.regioncam_seconds else "—"
        count = f"{r.count}" + (f" ({r.regioncam_count})" if r.regioncam_count is not None else "")
        cpu = format_time(r.lrcore_cpu)
        if r.regioncam_cpu and r.lrcore_cpu:
            cpu += f", {format_time(r.regioncam_cpu)} ({r.regioncam_cpu / r.lrcore_cpu:,.3g}x)"
        line = [r.case, format_time(r.lrcore_seconds), format_time(r.regioncam_seconds)]
        line += [speedup, cpu, count, r.extra]
        if before:
            prev = old.get(r.case)
            line[1:1] = [format_time(prev["lrcore_seconds"]) if prev else "—"]
        table.append(line)
    print(markdown_table(header, table))
    print()
    if before:
        changed = [
            f"{r.case}: {old[r.case]['count']} before, {r.count} now"
            for r in rows
            if r.case in old and old[r.case]["count"] != r.count and "Tracker" not in r.case
        ]
        print(f"- counts against the earlier run ({before.get('lrcore', '?')}): ", end="")
        print("all equal" if not changed else "DIFFER: " + "; ".join(changed))
        print()


def targets(rows: Sequence[Row], args: argparse.Namespace, command: str) -> list[str]:
    by_case = {r.case.split(",")[0] + r.case.split(",")[-1]: r for r in rows}
    lines: list[tuple[bool, str]] = []
    for r in rows:
        if r.case.startswith("count_1d, net 1"):
            lines.append(
                (
                    r.lrcore_seconds < TINY_1D_TARGET,
                    f"tiny count_1d < 20 µs ({format_time(r.lrcore_seconds)})",
                )
            )
        elif r.case.startswith("slice_2d, net 2"):
            lines.append(
                (
                    r.lrcore_seconds < TINY_2D_TARGET,
                    f"tiny slice_2d < 60 µs ({format_time(r.lrcore_seconds)})",
                )
            )
        elif r.case.startswith("one segment") and r.regioncam_seconds:
            lines.append(
                (
                    r.lrcore_seconds <= r.regioncam_seconds,
                    (
                        "one segment through 784→[128]x3 at least as fast as regioncam "
                        f"({r.regioncam_seconds / r.lrcore_seconds:.2f}x)"
                    ),
                )
            )
        elif "segments through 784-128x3, 1 thread" in r.case and r.regioncam_seconds:
            lines.append(
                (
                    r.regioncam_seconds / r.lrcore_seconds >= BATCH_SPEEDUP_TARGET,
                    (
                        f"{r.case}: ≥ 3x regioncam at equal threads "
                        f"({r.regioncam_seconds / r.lrcore_seconds:.2f}x)"
                    ),
                )
            )
        elif r.case.startswith("slice of") and r.regioncam_seconds:
            lines.append(
                (
                    r.regioncam_seconds / r.lrcore_seconds >= SLICE_SPEEDUP_TARGET,
                    f"{r.case}: ≥ 5x regioncam ({r.regioncam_seconds / r.lrcore_seconds:.2f}x)",
                )
            )
        if "segments through" in r.case and "DGEMM" in r.extra:
            share = float(r.extra.split("= ")[1].split("%")[0]) / 100
            goal = LARGE_DGEMM_TARGET if "512" in r.case else BATCH_DGEMM_TARGET
            lines.append((share >= goal, f"{r.case}: ≥ {goal:.0%} of DGEMM ({share:.0%})"))
    del by_case
    return print_targets(lines, command)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="lrcore threads (default: all available CPUs)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--segments", type=int, default=200, help="segments of the batch case")
    parser.add_argument("--min-seconds", type=float, default=1.0, help="time per case")
    parser.add_argument("--blocks", type=int, default=5, help="interleaved blocks per case")
    parser.add_argument("--large", action="store_true", help="also the 784-512x4 batch")
    parser.add_argument("--skip-tracker", action="store_true", help="skip the tracker loop")
    parser.add_argument("--tracker-steps", type=int, default=100, help="training steps")
    parser.add_argument("--tracker-repeat", type=int, default=2, help="tracker loops, best of")
    parser.add_argument("--json", help="write the rows to this file")
    parser.add_argument("--compare", help="a --json file of an earlier run, shown beside")
    parser.add_argument("--quick", action="store_true", help="smoke run: short timings")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.threads is None:
        args.threads = available_cpus()
    if args.quick:
        args.min_seconds, args.blocks, args.segments = 0.1, 2, 20
        args.tracker_steps, args.tracker_repeat = 20, 1
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    command = reproduce_command("benchmarks/bench_small.py", sys.argv[1:], args.threads)
    rows: list[Row] = []
    progress("tiny count_1d")
    rows.append(tiny_1d(args))
    progress("tiny slice_2d")
    rows.append(tiny_2d(args))
    progress("one segment through 784-128x3")
    rows.append(one_segment(args))
    progress(f"{args.segments} segments through 784-128x3")
    rows += segment_batch(args, [784, 128, 128, 128, 10], "784-128x3")
    if args.large:
        progress(f"{args.segments} segments through 784-512x4")
        rows += segment_batch(args, [784, 512, 512, 512, 512, 10], "784-512x4")
    progress("small slices")
    rows.append(small_slice(args, [2, 64, 64, 64, 1], 1.0))
    rows.append(small_slice(args, [2, *[32] * 8, 1], 2.0))
    if not args.skip_tracker:
        progress("tracker")
        row = tracker(args)
        if row is not None:
            rows.append(row)
    before = None
    if args.compare:
        with open(args.compare, encoding="utf-8") as handle:
            before = json.load(handle)
    report(rows, before, args)
    missed = targets(rows, args, command)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"lrcore": lrcore.__file__, "rows": [asdict(r) for r in rows]}, handle)
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    raise SystemExit(main())
