"""Benchmark exact 1D linear-region counting against baselines.

For torch-default-initialised MLPs (784→[128]×3 and 784→[512]×4) and many segments of
length 20 centred at standard Gaussian points with random unit directions, this script
times :func:`lrcore.count_1d` and reports

- total pieces, wall time and pieces per second;
- the achieved GFLOP/s of the dense products that the subdivision algorithm performs,
  against the machine's own float64 GEMM (DGEMM) rate measured with numpy in the same
  run, on one thread and on all threads used;
- the speed-up over (a) the plain-numpy sequential walk ``lrcore.reference.walk_1d``
  (timed on a subset and extrapolated; counts checked equal on that subset), (b) dense
  sampling in numpy at the coarsest power-of-two resolution that finds at least 99% of
  the breakpoints (also timed on a subset and extrapolated), and (c) regioncam's
  ``Regioncam1D`` (float32) when regioncam is installed.

It prints markdown tables and the command that reproduces them. This is a benchmark,
not a test: it exits 0 even when a target is missed (pass ``--strict`` to change that).

Examples
--------
Full run (takes a few minutes)::

    python benchmarks/bench_1d.py

Smoke run::

    python benchmarks/bench_1d.py --quick
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import lrcore
from _common import (
    available_cpus,
    format_seconds,
    markdown_table,
    numpy_blas_description,
    numpy_blas_threads,
    print_header,
    print_targets,
    progress,
    regioncam_version,
    reproduce_command,
    segment_benchmark_parser,
    time_best,
)

SEGMENT_LENGTH = 20.0
COVERAGE_TARGET = 0.99

# name -> sizes [input, hidden..., output]; the output layer creates no breakpoints.
NETWORKS: dict[str, list[int]] = {
    "784-128x3": [784, 128, 128, 128, 10],
    "784-512x4": [784, 512, 512, 512, 512, 10],
}


# --------------------------------------------------------------------------- machine


def dgemm_gflops(m: int, k: int, n: int, num_threads: int, min_seconds: float) -> float:
    """Measure numpy's float64 matmul rate (GFLOP/s) for an (m, k) @ (k, n) product."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k))
    b = rng.standard_normal((k, n))
    out = np.empty((m, n))
    with numpy_blas_threads(num_threads):
        np.matmul(a, b, out=out)  # warm up (thread pool start, page faults)
        best = np.inf
        start_all = time.perf_counter()
        repeats = 0
        while repeats < 3 or time.perf_counter() - start_all < min_seconds:
            start = time.perf_counter()
            np.matmul(a, b, out=out)
            best = min(best, time.perf_counter() - start)
            repeats += 1
    return 2.0 * m * k * n / best / 1e9


# --------------------------------------------------------------------------- workload


def make_segments(input_dim: int, num_segments: int, length: float, seed: int) -> list[np.ndarray]:
    """Segments of the given length centred at N(0, I) points, random unit directions."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((num_segments, input_dim))
    directions = rng.standard_normal((num_segments, input_dim))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    half = 0.5 * length * directions
    return [np.stack([c - h, c + h]) for c, h in zip(centres, half)]


def subdivision_flops(
    net: lrcore.Network, batch: Any, points_per_path: int
) -> tuple[float, np.ndarray]:
    """Flops of the dense products the layer-by-layer subdivision performs.

    Layer 0 is composed with the polyline once: 2 * n_points * d * h_1 per path. Hidden
    layer l >= 1 is evaluated at every vertex alive before it: the polyline points plus
    the breakpoints created by layers < l (the smallest layer among the neurons flipping
    at a breakpoint is the layer that created it). Each costs 2 * h_{l-1} * h_l.

    This is the work of the dense product at every vertex (the core's work before new
    vertices were updated from their interval's ends): a dense-equivalent count.

    Returns the flops and the vertices evaluated per hidden layer (V_l, all paths).
    """
    sizes = [net.input_dim, *net.hidden_sizes]
    num_hidden = net.num_hidden_layers
    created = np.zeros(num_hidden, dtype=np.int64)
    for result in batch:
        offsets = np.asarray(result.flip_offsets)
        if offsets.size <= 1:
            continue
        creating_layer = np.minimum.reduceat(np.asarray(result.flip_neurons)[:, 0], offsets[:-1])
        created += np.bincount(creating_layer, minlength=num_hidden)[:num_hidden]
    num_points = len(batch) * points_per_path
    vertices = num_points + np.concatenate([[0], np.cumsum(created)[:-1]])
    flops = 2.0 * num_points * sizes[0] * sizes[1]
    for layer in range(1, num_hidden):
        flops += 2.0 * vertices[layer] * sizes[layer] * sizes[layer + 1]
    return flops, vertices


# --------------------------------------------------------------------------- baselines


def dense_sampling_changes(
    weights: Sequence[np.ndarray],
    biases: Sequence[np.ndarray],
    segment: np.ndarray,
    resolution: int,
    chunk: int = 4096,
) -> int:
    """Pattern changes between consecutive samples of ``resolution`` evenly spaced points.

    Each change certifies at least one breakpoint, so this is what dense sampling would
    report. The first layer is composed with the segment (two evaluations, then linear
    interpolation), like the exact algorithm does; the later layers are float64 matmuls.
    ReLU networks only.
    """
    start, end = segment[0], segment[-1]
    first_start = weights[0] @ start + biases[0]
    first_step = weights[0] @ end + biases[0] - first_start
    changes = 0
    previous_pattern: np.ndarray | None = None
    for first in range(0, resolution, chunk):
        t = np.arange(first, min(first + chunk, resolution), dtype=np.float64) / (resolution - 1)
        pre_activation = first_start + t[:, None] * first_step
        layer_patterns = [pre_activation > 0]
        for weight, bias in zip(weights[1:-1], biases[1:-1]):
            pre_activation = np.maximum(pre_activation, 0.0) @ weight.T + bias
            layer_patterns.append(pre_activation > 0)
        pattern = np.concatenate(layer_patterns, axis=1)
        if previous_pattern is not None:
            changes += int(np.any(previous_pattern != pattern[0]))
        changes += int(np.count_nonzero(np.any(pattern[1:] != pattern[:-1], axis=1)))
        previous_pattern = pattern[-1]
    return changes


@dataclass
class DenseSearch:
    """Outcome of the resolution search for dense sampling."""

    resolution: int
    coverage: float
    seconds: float  # for the subset at that resolution
    reached: bool
    tried: list[tuple[int, float]] = field(default_factory=list)


def search_dense_resolution(
    net: lrcore.Network,
    segments: Sequence[np.ndarray],
    exact_counts: np.ndarray,
    start_resolution: int,
    max_resolution: int,
    threads: int,
) -> DenseSearch:
    """Double the samples per segment until >= 99% of the exact breakpoints are found."""
    weights, biases = net.weights, net.biases
    total_exact = max(int(exact_counts.sum()), 1)
    resolution = start_resolution
    tried: list[tuple[int, float]] = []
    with numpy_blas_threads(threads):
        while True:
            start = time.perf_counter()
            found = sum(dense_sampling_changes(weights, biases, s, resolution) for s in segments)
            seconds = time.perf_counter() - start
            coverage = found / total_exact
            tried.append((resolution, coverage))
            if coverage >= COVERAGE_TARGET or resolution >= max_resolution:
                return DenseSearch(
                    resolution, coverage, seconds, coverage >= COVERAGE_TARGET, tried
                )
            resolution *= 2


def regioncam_layers(net: lrcore.Network) -> list[tuple[np.ndarray, np.ndarray]]:
    """float32 (weight (in, out), bias) of the hidden layers (the output layer cuts nothing)."""
    return [
        (np.ascontiguousarray(w.T, dtype=np.float32), np.asarray(b, dtype=np.float32))
        for w, b in zip(net.weights[:-1], net.biases[:-1])
    ]


def regioncam_lines(
    segments: Sequence[np.ndarray],
) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Each segment as regioncam's line: (length, float32 direction row, float32 centre).

    The line is x = centre + s * direction, s in [-length/2, length/2].
    """
    lines = []
    for segment in segments:
        centre = 0.5 * (segment[0] + segment[-1])
        offset = segment[-1] - segment[0]
        length = float(np.linalg.norm(offset))
        direction = (offset / length)[None, :].astype(np.float32)
        lines.append((length, direction, centre.astype(np.float32)))
    return lines


def regioncam_counts(
    net: lrcore.Network, segments: Sequence[np.ndarray], repeat: int, max_seconds: float = 10.0
) -> tuple[float, np.ndarray] | None:
    """Time regioncam's Regioncam1D on every segment; return (seconds, breakpoint counts).

    Best of ``repeat`` runs, fewer once ``max_seconds`` have been spent.

    regioncam computes in float32. Each segment is the line x = centre + s * direction,
    s in [-length/2, length/2]; the (hidden) layers are added one by one. The output
    layer is left out since it creates no breakpoints. Weight conversion is done once,
    outside the timed region.
    """
    try:
        import regioncam
    except ImportError:
        return None
    layers = regioncam_layers(net)
    lines = regioncam_lines(segments)

    counts = np.empty(len(segments), dtype=np.int64)
    best = np.inf
    spent = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        for index, (length, direction, centre) in enumerate(lines):
            camera = regioncam.Regioncam1D(length)
            camera.linear(direction, centre)
            for weight, bias in layers:
                camera.linear(weight, bias)
                camera.relu()
            counts[index] = camera.num_vertices - 2
        elapsed = time.perf_counter() - start
        best = min(best, elapsed)
        spent += elapsed
        if spent > max_seconds:
            break
    return best, counts


def reference_walk(
    net: lrcore.Network, segments: Sequence[np.ndarray]
) -> tuple[float, np.ndarray]:
    """Time the plain-numpy sequential walk oracle; return (seconds, breakpoint counts)."""
    from lrcore.reference import walk_1d

    weights, biases = net.weights, net.biases
    counts = np.empty(len(segments), dtype=np.int64)
    start = time.perf_counter()
    for index, segment in enumerate(segments):
        walk = walk_1d(
            weights,
            biases,
            segment,
            closed=False,
            activations=net.activations,
            negative_slopes=net.negative_slopes,
        )
        counts[index] = walk.num_breakpoints
    return time.perf_counter() - start, counts


# --------------------------------------------------------------------------- report


@dataclass
class NetResult:
    """Everything measured for one network."""

    name: str
    num_segments: int
    pieces: int
    breakpoints: int
    seconds: float
    seconds_one_thread: float
    gflop: float
    dgemm_one: float
    dgemm_all: float
    dgemm_shape: tuple[int, int, int]
    reference_seconds: float  # extrapolated to num_segments
    reference_subset: int
    reference_equal: int
    dense: DenseSearch | None
    dense_subset: int
    regioncam_seconds: float | None
    regioncam_equal: int | None
    regioncam_total: int | None

    @property
    def gflops(self) -> float:
        return self.gflop / self.seconds

    @property
    def dgemm_reference(self) -> float:
        """The best DGEMM rate numpy reached with at most the threads lrcore used.

        On a busy machine more threads can be slower than one; the better rate is the
        honest yardstick.
        """
        return max(self.dgemm_one, self.dgemm_all)


def benchmark_network(name: str, sizes: list[int], args: argparse.Namespace) -> NetResult:
    """Run lrcore and every baseline on one network."""
    net = lrcore.Network.random(sizes, seed=args.seed)
    segments = make_segments(net.input_dim, args.segments, SEGMENT_LENGTH, args.seed + 1)
    progress(f"[{name}] lrcore.count_1d on {len(segments)} segments")

    lrcore.count_1d(net, segments[: min(8, len(segments))], num_threads=args.threads)
    width = max(net.hidden_sizes)
    shape = (4096, width, width)
    progress(
        f"[{name}] and numpy DGEMM {shape[0]}x{shape[1]} @ {shape[1]}x{shape[2]}, interleaved"
    )
    # Interleaved, best of each: on a shared machine the ratio then compares like with like.
    seconds = np.inf
    dgemm_one = dgemm_all = 0.0
    for _ in range(args.repeat):
        start = time.perf_counter()
        batch = lrcore.count_1d(net, segments, num_threads=args.threads)
        seconds = min(seconds, time.perf_counter() - start)
        dgemm_one = max(dgemm_one, dgemm_gflops(*shape, 1, args.min_seconds))
        if args.threads > 1:
            dgemm_all = max(dgemm_all, dgemm_gflops(*shape, args.threads, args.min_seconds))
        else:
            dgemm_all = dgemm_one
    seconds_one_thread = seconds
    if args.threads > 1:
        seconds_one_thread, _ = time_best(
            lambda: lrcore.count_1d(net, segments, num_threads=1), args.repeat
        )
    exact = np.asarray(batch.num_breakpoints)
    flops, vertices = subdivision_flops(net, batch, points_per_path=2)
    core_vertices = getattr(batch, "vertices_per_layer", None)
    if core_vertices is not None and not np.array_equal(np.asarray(core_vertices), vertices):
        progress(
            f"  warning: derived vertices per layer {vertices.tolist()} differ from the "
            f"core's own count {np.asarray(core_vertices).tolist()}"
        )

    ref_subset = min(args.reference_subset, len(segments))
    progress(f"[{name}] reference walk on {ref_subset} segments")
    with numpy_blas_threads(args.threads):
        ref_seconds, ref_counts = reference_walk(net, segments[:ref_subset])
    ref_equal = int(np.count_nonzero(ref_counts == exact[:ref_subset]))
    mismatches = np.flatnonzero(ref_counts != exact[:ref_subset])
    for index in mismatches[:5]:
        progress(
            f"  count mismatch on segment {index}: lrcore {exact[index]}, "
            f"reference {ref_counts[index]}"
        )

    dense = None
    dense_subset = min(args.dense_subset, len(segments))
    if not args.skip_dense:
        progress(f"[{name}] dense sampling resolution search on {dense_subset} segments")
        typical = max(float(exact[:dense_subset].mean()), 1.0)
        start_resolution = 1 << max(6, int(np.ceil(np.log2(4 * typical))))
        dense = search_dense_resolution(
            net,
            segments[:dense_subset],
            exact[:dense_subset],
            start_resolution,
            args.max_resolution,
            args.threads,
        )

    regioncam_seconds = regioncam_equal = regioncam_total = None
    progress(f"[{name}] regioncam on {len(segments)} segments")
    regioncam_result = regioncam_counts(net, segments, args.repeat)
    if regioncam_result is not None:
        regioncam_seconds, rc_counts = regioncam_result
        regioncam_equal = int(np.count_nonzero(rc_counts == exact))
        regioncam_total = int(rc_counts.sum())

    return NetResult(
        name=name,
        num_segments=len(segments),
        pieces=int(np.asarray(batch.num_pieces).sum()),
        breakpoints=int(exact.sum()),
        seconds=seconds,
        seconds_one_thread=seconds_one_thread,
        gflop=flops / 1e9,
        dgemm_one=dgemm_one,
        dgemm_all=dgemm_all,
        dgemm_shape=shape,
        reference_seconds=ref_seconds * len(segments) / ref_subset,
        reference_subset=ref_subset,
        reference_equal=ref_equal,
        dense=dense,
        dense_subset=dense_subset,
        regioncam_seconds=regioncam_seconds,
        regioncam_equal=regioncam_equal,
        regioncam_total=regioncam_total,
    )


def report(results: Sequence[NetResult], args: argparse.Namespace, command: str) -> list[str]:
    """Print the tables; return the list of missed targets."""
    print_header("lrcore 1D benchmark")
    print(f"- threads: lrcore num_threads={args.threads}; numpy baselines limited to the same")
    print(f"- python {platform.python_version()}, numpy {np.__version__}")
    print(f"- BLAS libraries loaded: {numpy_blas_description()}")
    with numpy_blas_threads(1) as limited:
        if not limited:
            print(
                "- threadpoolctl is not installed: numpy's thread count could not be set, "
                "so every DGEMM and numpy baseline ran with numpy's default threads"
            )
    print(f"- lrcore {getattr(lrcore, '__version__', '?')}, regioncam {regioncam_version()}")
    print(
        f"- workload: {args.segments} segments of length {SEGMENT_LENGTH:g} centred at "
        f"N(0, I) points, random unit directions; torch-default init, seed {args.seed}; "
        f"best of {args.repeat} run(s)"
    )
    print()

    several = args.threads > 1
    header = ["net", "segments", "pieces", f"wall [s], {args.threads} thr"]
    header += ["wall [s], 1 thr"] if several else []
    header += ["pieces/s", "GFLOP", "GFLOP/s", "DGEMM 1 thr"]
    header += [f"DGEMM {args.threads} thr"] if several else []
    header += ["of DGEMM"]
    rows = []
    for r in results:
        row = [r.name, str(r.num_segments), str(r.pieces), format_seconds(r.seconds)]
        row += [format_seconds(r.seconds_one_thread)] if several else []
        row += [f"{r.pieces / r.seconds:,.0f}", f"{r.gflop:.2f}", f"{r.gflops:.1f}"]
        row += [f"{r.dgemm_one:.1f}"]
        row += [f"{r.dgemm_all:.1f}"] if several else []
        row += [f"{100 * r.gflops / r.dgemm_reference:.0f}%"]
        rows.append(row)
    print("### lrcore.count_1d")
    print()
    print(markdown_table(header, rows))
    print()
    print(
        "GFLOP counts the dense products of the layer-by-layer subdivision: 2·n_points·d·h1 "
        "for the first layer, then 2·V_l·h_(l-1)·h_l where V_l = polyline points + "
        "breakpoints created by earlier layers: the dense-product work of evaluating every "
        "vertex, which the core now does only for the vertices that existed before the "
        "previous layer (the newer ones are updated from their interval's ends, "
        "docs/design.md §2), so GFLOP/s is a dense-equivalent rate and can pass DGEMM's. "
        "DGEMM columns are numpy float64 matmul "
        f"GFLOP/s for ({results[0].dgemm_shape[0]}, w) @ (w, w), w = hidden width, "
        "measured in this run, interleaved with the lrcore runs; 'of DGEMM' divides "
        "lrcore's GFLOP/s by the better of the two DGEMM rates (on a busy machine more "
        "threads can be slower than one)."
    )
    print()

    rows = []
    for r in results:
        rows.append(
            [
                r.name,
                f"reference walk (numpy), {r.reference_subset} segments extrapolated",
                format_seconds(r.reference_seconds),
                f"{r.reference_seconds / r.seconds:,.0f}x",
                f"{r.reference_equal}/{r.reference_subset} segments",
            ]
        )
        if r.dense is not None:
            d = r.dense
            note = "" if d.reached else f", only {100 * d.coverage:.1f}% found (cap)"
            dense_seconds = d.seconds * r.num_segments / r.dense_subset
            rows.append(
                [
                    r.name,
                    (
                        f"dense sampling (numpy), {d.resolution} samples/segment "
                        f"(spacing {SEGMENT_LENGTH / (d.resolution - 1):.2g}) finds "
                        f"{100 * d.coverage:.1f}%{note}; {r.dense_subset} segments extrapolated"
                    ),
                    ("≥" if not d.reached else "") + format_seconds(dense_seconds),
                    f"{dense_seconds / r.seconds:,.0f}x",
                    "approximate by design",
                ]
            )
        if r.regioncam_seconds is not None:
            rows.append(
                [
                    r.name,
                    (
                        f"regioncam Regioncam1D (float32, single-threaded), all "
                        f"{r.num_segments} segments"
                    ),
                    format_seconds(r.regioncam_seconds),
                    (
                        f"{r.regioncam_seconds / r.seconds:,.1f}x "
                        f"({r.regioncam_seconds / r.seconds_one_thread:,.1f}x on 1 thread)"
                    ),
                    (
                        f"{r.regioncam_equal}/{r.num_segments} segments "
                        f"(breakpoints {r.regioncam_total} vs {r.breakpoints})"
                    ),
                ]
            )
    print("### baselines (time for all segments; speed-up = baseline time / lrcore time)")
    print()
    print(
        markdown_table(
            ["net", "baseline", "time [s]", "lrcore speed-up", "breakpoint counts equal"], rows
        )
    )
    print()

    lines = []
    by_name = {r.name: r for r in results}
    for r in results:
        ok = r.reference_equal == r.reference_subset
        lines.append((ok, f"{r.name}: counts equal to the reference walk on the subset"))
    small = by_name.get("784-128x3")
    if small is not None:
        speedup = small.reference_seconds / small.seconds
        lines.append((speedup >= 100, f"784-128x3: ≥100x reference walk ({speedup:,.0f}x)"))
        if small.regioncam_seconds is not None:
            speedup = small.regioncam_seconds / small.seconds
            single = small.regioncam_seconds / small.seconds_one_thread
            lines.append(
                (
                    speedup >= 10,
                    f"784-128x3: ≥10x regioncam ({speedup:,.1f}x; {single:,.1f}x on 1 thread)",
                )
            )
    large = by_name.get("784-512x4")
    if large is not None:
        fraction = large.gflops / large.dgemm_reference
        lines.append(
            (
                fraction >= 0.5,
                (
                    f"784-512x4: dense products ≥50% of DGEMM ({100 * fraction:.0f}% of "
                    f"{large.dgemm_reference:.1f} GFLOP/s, ≤{args.threads} threads)"
                ),
            )
        )
    return print_targets(lines, command)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = segment_benchmark_parser(__doc__, list(NETWORKS), repeat=3)
    parser.add_argument(
        "--reference-subset", type=int, default=20, help="segments timed with the walk"
    )
    parser.add_argument(
        "--dense-subset", type=int, default=10, help="segments timed with dense sampling"
    )
    parser.add_argument("--max-resolution", type=int, default=1 << 20, help="dense sampling cap")
    parser.add_argument("--skip-dense", action="store_true", help="skip dense sampling")
    parser.add_argument(
        "--min-seconds", type=float, default=0.5, help="DGEMM: measure at least this long"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.segments = min(args.segments, 50)
        args.repeat = 1
        args.reference_subset = min(args.reference_subset, 3)
        args.dense_subset = min(args.dense_subset, 2)
        args.max_resolution = min(args.max_resolution, 1 << 16)
        args.min_seconds = min(args.min_seconds, 0.1)
    if args.threads is None:
        args.threads = available_cpus()
    if args.segments < 1 or args.threads < 1 or args.repeat < 1:
        parser.error("--segments, --threads and --repeat must be positive")
    args.reference_subset = max(1, args.reference_subset)
    args.dense_subset = max(1, args.dense_subset)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    argv_list = list(sys.argv[1:] if argv is None else argv)
    command = reproduce_command("benchmarks/bench_1d.py", argv_list, args.threads)
    results = [benchmark_network(name, NETWORKS[name], args) for name in args.nets]
    missed = report(results, args, command)
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
