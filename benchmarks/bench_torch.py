"""Benchmark exact 1D counts through converted torch models against torch-only baselines.

For two torch-default-initialised models on 1×28×28 / 784-dimensional inputs,

- ``cnn``: Conv(1,8,3,stride 2) → ReLU → Conv(8,16,3,stride 2) → ReLU → Flatten →
  Linear(576,64) → ReLU → Linear(64,10);
- ``resmlp``: Linear(784,128) → ReLU, then 4 blocks ``h = h + ReLU(W2 ReLU(W1 h))`` of
  width 128, then Linear(128,10),

this script converts the model with :func:`lrcore.from_torch` and counts the exact
breakpoints along segments between pairs of random N(0, I) images with
:func:`lrcore.count_1d`, and reports

- pieces, wall time on ``--threads`` threads and on one, pieces per second;
- the speed-up over (a) the torch-forward walk of Gamba et al. (AISTATS 2022) in
  ``tests/torch_walk.py`` (one float64 forward pass with forward-mode AD per breakpoint;
  timed on a subset and extrapolated per segment, counts checked equal on that subset)
  and (b) dense sampling with torch (batched float64 forward passes on N points per
  segment, N doubled until 99% of the exact breakpoints are found; timed on a subset and
  extrapolated; the fraction found is printed for every N tried);
- the overhead of :class:`lrcore.torch.RegionTracker` in a small training loop: the time
  spent in ``tracker.step`` against the time of the training steps themselves.

It prints markdown tables and the command that reproduces them. This is a benchmark,
not a test: it exits 0 even when a target is missed (pass ``--strict`` to change that).

Examples
--------
Full run (a few minutes)::

    python benchmarks/bench_torch.py

Smoke run::

    python benchmarks/bench_torch.py --quick
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

import lrcore
from _common import (
    available_cpus,
    format_seconds,
    markdown_table,
    print_header,
    print_targets,
    progress,
    reproduce_command,
    segment_benchmark_parser,
    time_best,
)

# The torch-forward walk and dense sampling are the test suite's oracle.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import torch

from torch_walk import float64_copy, sampled_pattern_changes, walk_segment

nn = torch.nn
COVERAGE_TARGET = 0.99
INPUT_SHAPE = (1, 28, 28)


class ResidualMLP(nn.Module):
    """784 → 128 stem, blocks ``h + ReLU(W2 ReLU(W1 h))``, head 10."""

    def __init__(self, width: int = 128, blocks: int = 4) -> None:
        super().__init__()
        self.stem = nn.Linear(784, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU())
            for _ in range(blocks)
        )
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.stem(x.flatten(1)))
        for block in self.blocks:
            h = h + block(h)
        return self.head(h)


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(16 * 6 * 6, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


NETWORKS: dict[str, Callable[[], nn.Module]] = {"cnn": small_cnn, "resmlp": ResidualMLP}


def make_segments(num_segments: int, seed: int) -> list[np.ndarray]:
    """Segments between pairs of random N(0, I) images (flattened)."""
    rng = np.random.default_rng(seed)
    dim = int(np.prod(INPUT_SHAPE))
    return [rng.standard_normal((2, dim)) for _ in range(num_segments)]


# --------------------------------------------------------------------------- baselines


@dataclass
class DenseSearch:
    """Dense sampling: samples per segment tried, the fraction found, the time per segment."""

    tried: list[tuple[int, float, float]] = field(default_factory=list)

    @property
    def reached(self) -> bool:
        return bool(self.tried) and self.tried[-1][1] >= COVERAGE_TARGET


def dense_search(
    model: nn.Module, segments: Sequence[np.ndarray], exact: np.ndarray, max_samples: int
) -> DenseSearch:
    """Double the samples per segment until 99% of the exact breakpoints are found."""
    total = max(int(exact.sum()), 1)
    samples = 1 << max(6, int(np.ceil(np.log2(4 * max(float(exact.mean()), 1.0)))))
    search = DenseSearch()
    while True:
        start = time.perf_counter()
        found = sum(
            sampled_pattern_changes(model, INPUT_SHAPE, s[0], s[1], samples) for s in segments
        )
        per_segment = (time.perf_counter() - start) / len(segments)
        search.tried.append((samples, found / total, per_segment))
        if found / total >= COVERAGE_TARGET or samples >= max_samples:
            return search
        samples *= 2


def torch_walk(model: nn.Module, segments: Sequence[np.ndarray]) -> tuple[float, np.ndarray]:
    """Time the torch-forward walk; return (seconds, breakpoint counts)."""
    counts = np.empty(len(segments), dtype=np.int64)
    start = time.perf_counter()
    for index, segment in enumerate(segments):
        counts[index] = walk_segment(model, INPUT_SHAPE, segment[0], segment[1]).num_breakpoints
    return time.perf_counter() - start, counts


# --------------------------------------------------------------------------- measurements


@dataclass
class NetResult:
    """Everything measured for one network."""

    name: str
    structure: str
    num_segments: int
    pieces: int
    breakpoints: int
    convert_seconds: float
    seconds: float
    seconds_one_thread: float
    walk_seconds: float  # extrapolated to num_segments
    walk_subset: int
    walk_equal: int
    dense: DenseSearch | None
    dense_subset: int

    @property
    def best_seconds(self) -> float:
        """lrcore's better time of the two thread counts.

        On a busy machine more threads can be slower than one; the walk itself runs on one
        thread.
        """
        return min(self.seconds, self.seconds_one_thread)


def benchmark_network(name: str, args: argparse.Namespace) -> NetResult:
    """lrcore and both torch baselines on one network."""
    torch.manual_seed(args.seed)
    model = NETWORKS[name]().eval()
    convert_seconds, net = time_best(lambda: lrcore.from_torch(model, input_shape=INPUT_SHAPE), 3)
    segments = make_segments(args.segments, args.seed + 1)
    progress(f"[{name}] {net}; lrcore.count_1d on {len(segments)} segments")
    lrcore.count_1d(net, segments[:4], num_threads=args.threads)  # warm up
    seconds, batch = time_best(
        lambda: lrcore.count_1d(net, segments, num_threads=args.threads), args.repeat
    )
    seconds_one = seconds
    if args.threads > 1:
        seconds_one, _ = time_best(lambda: lrcore.count_1d(net, segments, num_threads=1), 1)
    exact = np.asarray(batch.num_breakpoints)

    reference = float64_copy(model)
    subset = min(args.walk_subset, len(segments))
    progress(f"[{name}] torch-forward walk on {subset} segments")
    walk_seconds, walk_counts = torch_walk(reference, segments[:subset])
    equal = int(np.count_nonzero(walk_counts == exact[:subset]))
    for index in np.flatnonzero(walk_counts != exact[:subset])[:5]:
        progress(
            f"  count mismatch on segment {index}: lrcore {exact[index]}, walk {walk_counts[index]}"
        )

    dense = None
    dense_subset = min(args.dense_subset, len(segments))
    if not args.skip_dense:
        progress(f"[{name}] dense sampling with torch on {dense_subset} segments")
        torch.set_num_threads(args.threads)
        dense = dense_search(
            reference, segments[:dense_subset], exact[:dense_subset], args.max_samples
        )
    layers = ", ".join(
        f"{n}+{k}" if k else str(n) for n, k in zip(net.hidden_sizes, net.linear_units)
    )
    return NetResult(
        name=name,
        structure=f"hidden layers (neurons+linear units): {layers}",
        num_segments=len(segments),
        pieces=int(np.asarray(batch.num_pieces).sum()),
        breakpoints=int(exact.sum()),
        convert_seconds=convert_seconds,
        seconds=seconds,
        seconds_one_thread=seconds_one,
        walk_seconds=walk_seconds * len(segments) / subset,
        walk_subset=subset,
        walk_equal=equal,
        dense=dense,
        dense_subset=dense_subset,
    )


@dataclass
class TrackerOverhead:
    steps: int
    every: int
    recorded: int
    paths: int
    training_seconds: float
    tracker_seconds: float

    @property
    def percent(self) -> float:
        return 100.0 * self.tracker_seconds / self.training_seconds

    @property
    def every_for_five_percent(self) -> int:
        """Recording every this many steps keeps the overhead at 5%."""
        per_record = self.tracker_seconds / max(self.recorded, 1)
        per_step = self.training_seconds / self.steps
        return int(np.ceil(per_record / (0.05 * per_step)))


def tracker_overhead(args: argparse.Namespace) -> TrackerOverhead:
    """A small training loop (the CNN on random images, Adam, batch 64) with a tracker."""
    from lrcore.torch import RegionTracker

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = small_cnn()
    paths = make_segments(args.tracker_paths, args.seed + 2)
    tracker = RegionTracker(model, paths=paths, every=args.tracker_every, input_shape=INPUT_SHAPE)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(args.seed)
    images = torch.randn((args.tracker_steps, 64, *INPUT_SHAPE), generator=generator)
    labels = torch.randint(0, 10, (args.tracker_steps, 64), generator=generator)
    progress(f"[tracker] {args.tracker_steps} training steps, tracking every {args.tracker_every}")
    start = time.perf_counter()
    recorded = 0
    for step in range(args.tracker_steps):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(images[step]), labels[step])
        loss.backward()
        optimizer.step()
        recorded += int(tracker.step(step))
    total = time.perf_counter() - start
    return TrackerOverhead(
        steps=args.tracker_steps,
        every=args.tracker_every,
        recorded=recorded,
        paths=len(paths),
        training_seconds=total - tracker.overhead_seconds,
        tracker_seconds=tracker.overhead_seconds,
    )


# --------------------------------------------------------------------------- report


def report(
    results: Sequence[NetResult],
    overhead: TrackerOverhead | None,
    args: argparse.Namespace,
    command: str,
) -> list[str]:
    """Print the tables; return the list of missed targets."""
    print_header("lrcore torch front-end benchmark")
    print(
        "- this machine is shared with other jobs (see the load average): wall times are "
        "noisy, the ratios of interleaved runs less so"
    )
    print(f"- threads: lrcore num_threads={args.threads}; torch dense sampling the same")
    print(
        f"- python {platform.python_version()}, numpy {np.__version__}, torch "
        f"{torch.__version__}, lrcore {getattr(lrcore, '__version__', '?')}"
    )
    print(
        f"- workload: {args.segments} segments between pairs of N(0, I) 1x28x28 images; "
        f"torch-default init, seed {args.seed}; best of {args.repeat} run(s)"
    )
    for r in results:
        print(f"- {r.name}: {r.structure}; from_torch takes {format_seconds(r.convert_seconds)} s")
    print()

    several = args.threads > 1
    header = ["net", "segments", "pieces", f"lrcore wall [s], {args.threads} thr"]
    header += ["wall [s], 1 thr"] if several else []
    header += ["pieces/s", "walk (Gamba et al.) [s]", "speed-up vs walk", "dense sampling [s]"]
    header += ["speed-up vs dense"]
    rows = []
    for r in results:
        row = [r.name, str(r.num_segments), f"{r.pieces:,}", format_seconds(r.seconds)]
        row += [format_seconds(r.seconds_one_thread)] if several else []
        row += [f"{r.pieces / r.seconds:,.0f}", format_seconds(r.walk_seconds)]
        row += [f"{r.walk_seconds / r.best_seconds:,.0f}x"]
        if r.dense is not None:
            samples, _, per_segment = r.dense.tried[-1]
            dense_seconds = per_segment * r.num_segments
            mark = "" if r.dense.reached else "≥"
            row += [f"{mark}{format_seconds(dense_seconds)} (N={samples})"]
            row += [f"{mark}{dense_seconds / r.best_seconds:,.0f}x"]
        else:
            row += ["skipped", "-"]
        rows.append(row)
    print("### exact counts along segments (time for all segments)")
    print()
    print(markdown_table(header, rows))
    print()
    print(
        "The walk and dense sampling are timed on a subset and extrapolated per segment: "
        + "; ".join(
            f"{r.name}: walk on {r.walk_subset} segments (breakpoint counts equal on "
            f"{r.walk_equal}/{r.walk_subset}), dense sampling on {r.dense_subset}"
            for r in results
        )
        + ". Speed-ups divide by lrcore's better time of its two thread counts. "
        "The walk takes one float64 forward pass with forward-mode AD per breakpoint "
        "(tests/torch_walk.py); dense sampling runs batched float64 forward passes on N "
        "evenly spaced points per segment and counts pattern changes between neighbours."
    )
    print()
    rows = [
        [r.name, str(n), f"{100 * coverage:.1f}%", format_seconds(per_segment)]
        for r in results
        if r.dense is not None
        for n, coverage, per_segment in r.dense.tried
    ]
    if rows:
        print("### dense sampling with torch: breakpoints found against samples per segment")
        print()
        print(markdown_table(["net", "samples/segment", "found", "s/segment"], rows))
        print()
    if overhead is not None:
        print("### RegionTracker overhead in a training loop")
        print()
        print(
            markdown_table(
                [
                    "steps",
                    "recorded (every)",
                    "paths",
                    "training [s]",
                    "tracker.step [s]",
                    "overhead",
                    "every N for 5%",
                ],
                [
                    [
                        str(overhead.steps),
                        f"{overhead.recorded} ({overhead.every})",
                        str(overhead.paths),
                        format_seconds(overhead.training_seconds),
                        format_seconds(overhead.tracker_seconds),
                        f"{overhead.percent:.1f}%",
                        str(overhead.every_for_five_percent),
                    ]
                ],
            )
        )
        print()
        print(
            "The CNN above trained with Adam on random 1x28x28 images, batch 64; every "
            f"{args.tracker_every} steps the tracker converts the model and counts exactly "
            "along the paths (segments between random images). Overhead = time inside "
            "tracker.step / time of the training steps."
        )
        print()

    lines = []
    for r in results:
        lines.append(
            (
                r.walk_equal == r.walk_subset,
                f"{r.name}: counts equal to the torch walk ({r.walk_equal}/{r.walk_subset})",
            )
        )
        speedup = r.walk_seconds / r.best_seconds
        lines.append((speedup >= 20, f"{r.name}: ≥20x the torch walk ({speedup:,.0f}x)"))
    return print_targets(lines, command)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = segment_benchmark_parser(__doc__, list(NETWORKS), repeat=1)
    parser.add_argument("--walk-subset", type=int, default=20, help="segments walked")
    parser.add_argument(
        "--dense-subset", type=int, default=3, help="segments timed with dense sampling"
    )
    parser.add_argument("--max-samples", type=int, default=1 << 15, help="dense sampling cap")
    parser.add_argument("--skip-dense", action="store_true", help="skip dense sampling")
    parser.add_argument("--tracker-steps", type=int, default=100, help="training steps")
    parser.add_argument("--tracker-every", type=int, default=10, help="record every N steps")
    parser.add_argument("--tracker-paths", type=int, default=10, help="paths tracked")
    parser.add_argument("--skip-tracker", action="store_true", help="skip the tracker run")
    args = parser.parse_args(argv)
    if args.quick:
        args.segments = min(args.segments, 30)
        args.repeat = 1
        args.walk_subset = min(args.walk_subset, 2)
        args.dense_subset = min(args.dense_subset, 1)
        args.max_samples = min(args.max_samples, 1 << 13)
        args.tracker_steps = min(args.tracker_steps, 20)
        args.tracker_every = min(args.tracker_every, 10)
        args.tracker_paths = min(args.tracker_paths, 2)
    if args.threads is None:
        args.threads = available_cpus()
    if min(args.segments, args.threads, args.repeat, args.tracker_every) < 1:
        parser.error("--segments, --threads, --repeat and --tracker-every must be positive")
    args.walk_subset = max(1, args.walk_subset)
    args.dense_subset = max(1, args.dense_subset)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    argv_list = list(sys.argv[1:] if argv is None else argv)
    command = reproduce_command("benchmarks/bench_torch.py", argv_list, args.threads)
    results = [benchmark_network(name, args) for name in args.nets]
    overhead = None if args.skip_tracker else tracker_overhead(args)
    missed = report(results, overhead, args, command)
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
