"""Benchmark exact 1D counts through a CIFAR ResNet-18 (lrcore.zoo) on one short segment.

For :func:`lrcore.zoo.resnet18` (``--width`` channels in the first stage, 64 = the full
model; BatchNorm with non-trivial running statistics, eval mode) on 3×32×32 inputs, and
the segment from ``x0 ~ N(0, I)`` to ``x0 + --radius · N(0, I)``, this script reports in
one run:

- ``from_torch`` time;
- ``count_1d`` time and breakpoints, and the peak resident memory after it;
- the torch-forward walk of ``tests/torch_walk.py`` (one float64 forward pass with
  forward-mode AD per breakpoint), trimmed: the first ``--walk-steps`` breakpoints are
  walked, the positions checked against lrcore's, and the time per step extrapolated
  to the whole segment;
- the convolutions' achieved GFLOP/s in the core's forward pass (one thread, a batch of
  ``--batch`` points; all the layers' time counted, so a lower bound) against the
  machine's own DGEMM rate measured through the same core (a dense 1024×1024 layer);
- ``verify()`` on the result: time and peak memory;
- the old representation (every layer one CSR or dense matrix,
  ``trace_to_layers(structured=False)``) as a baseline at ``--baseline-width`` (0 skips
  it): conversion and count times, counts compared.

It prints markdown tables and the command that reproduces them; it is not a test and
exits 0 even when a target is missed (``--strict`` changes that).

Examples
--------
Full run (about a minute on 2 cores)::

    python benchmarks/bench_cnn.py

Smoke run::

    python benchmarks/bench_cnn.py --width 8 --walk-steps 5 --baseline-width 4
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import lrcore
from _common import markdown_table, print_header, print_targets, progress, reproduce_command
from lrcore import zoo
from lrcore._layers import CompositeLayer, Conv
from lrcore._torch_fx import trace_to_layers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from torch_walk import float64_copy, pre_activations_along

SHAPE = (3, 32, 32)


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def conv_flops(net: lrcore.Network) -> float:
    """Floating-point operations of the network's convolutions per point (2 per MAC)."""
    total = 0.0
    for weight in net.weights:
        if isinstance(weight, CompositeLayer):
            for _, _, spec in weight.parts:
                if isinstance(spec, Conv):
                    total += 2.0 * spec.out_size * spec.weight[0].size
    return total


def dgemm_rate(size: int = 1024, repeats: int = 3) -> float:
    """GFLOP/s of the core's DGEMM (one thread): a dense size×size layer on size points."""
    rng = np.random.default_rng(0)
    net = lrcore.Network([rng.standard_normal((size, size))], [np.zeros(size)])
    x = rng.standard_normal((size, size))
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        net.forward(x)
        best = min(best, time.perf_counter() - start)
    return 2.0 * size**3 / best / 1e9


def trimmed_walk(model: Any, start: np.ndarray, end: np.ndarray, steps: int) -> tuple[list, float]:
    """The first ``steps`` breakpoints of tests/torch_walk.py's walk, and seconds per step."""
    direction = end - start
    t, crossing, before = 0.0, None, None
    positions: list[float] = []
    evaluations = 0
    torch.set_num_threads(1)
    pre_activations_along(model, SHAPE, start, direction)  # warm-up: not timed
    begin = time.perf_counter()
    while len(positions) < steps:
        value, slope = pre_activations_along(model, SHAPE, start + t * direction, direction)
        evaluations += 1
        signs = value > 0
        if crossing is not None and np.any(signs != before):
            positions.append(crossing)
        with np.errstate(divide="ignore", invalid="ignore"):
            ahead = -value / slope
        ahead[~(ahead > 0)] = np.inf
        nearest = float(ahead.min())
        if t + nearest >= 1.0:
            break
        crossing, before = t + nearest, signs
        t = crossing + 1e-9
    return positions, (time.perf_counter() - begin) / max(evaluations, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=64, help="ResNet-18 first-stage width")
    parser.add_argument("--radius", type=float, default=0.005, help="segment: x0 + radius·N(0,I)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--walk-steps", type=int, default=40, help="breakpoints walked by torch")
    parser.add_argument("--batch", type=int, default=32, help="points in the GFLOP/s forward")
    parser.add_argument("--baseline-width", type=int, default=16, help="CSR baseline (0: skip)")
    parser.add_argument("--no-verify", action="store_true")
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args(argv)

    model = zoo.resnet18(width=args.width, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    x0 = rng.standard_normal(3072)
    x1 = x0 + args.radius * rng.standard_normal(3072)
    path = np.stack([x0, x1])
    base_mb = peak_mb()

    progress("from_torch ...")
    start = time.perf_counter()
    net = lrcore.from_torch(model, SHAPE)
    convert_s = time.perf_counter() - start
    convert_mb = peak_mb()

    progress("count_1d ...")
    start = time.perf_counter()
    result = lrcore.count_1d(net, path, num_threads=args.threads)
    count_s = time.perf_counter() - start
    count_mb = peak_mb()

    progress("GFLOP/s ...")
    dgemm = dgemm_rate()
    batch = rng.standard_normal((args.batch, 3072))
    start = time.perf_counter()
    expected = net.forward(batch)
    forward_s = time.perf_counter() - start
    conv_rate = conv_flops(net) * args.batch / forward_s / 1e9
    with torch.no_grad():
        got = float64_copy(model)(torch.as_tensor(batch).reshape(-1, *SHAPE)).numpy()
    forward_error = float(np.abs(got - expected).max())

    progress("torch walk ...")
    walk_model = float64_copy(model)
    walked, per_step = trimmed_walk(walk_model, x0, x1, args.walk_steps)
    walk_s = per_step * (result.num_breakpoints + 1)
    ours = result.breakpoints[: len(walked)] / result.length
    walk_agrees = len(walked) == len(ours) and bool(np.allclose(ours, walked, rtol=0, atol=1e-7))

    verify_s, verify_mb, verify_ok = float("nan"), float("nan"), True
    if not args.no_verify:
        progress("verify ...")
        start = time.perf_counter()
        report = result.verify()
        verify_s = time.perf_counter() - start
        verify_mb = peak_mb()
        verify_ok = report.ok

    rows = [
        ["from_torch", f"{convert_s:.3g} s", f"{convert_mb:.0f}"],
        ["count_1d", f"{count_s:.3g} s ({result.num_breakpoints} breakpoints)", f"{count_mb:.0f}"],
        ["torch walk (extrapolated)", f"{walk_s:.3g} s ({per_step * 1e3:.3g} ms/step)", "-"],
        ["verify()", f"{verify_s:.3g} s (ok={verify_ok})", f"{verify_mb:.0f}"],
    ]
    baseline_rows = []
    speedup_old = None
    if args.baseline_width > 0:
        progress("CSR baseline ...")
        small = zoo.resnet18(width=args.baseline_width, seed=args.seed)
        timings = []
        counts = []
        for structured in (True, False):
            start = time.perf_counter()
            layers = trace_to_layers(small, SHAPE, structured=structured)
            old = lrcore.Network(
                layers.weights,
                layers.biases,
                layers.activations,
                layers.slopes,
                linear_units=layers.linear_units,
            )
            convert = time.perf_counter() - start
            start = time.perf_counter()
            counted = lrcore.count_1d(old, path, num_threads=args.threads)
            timings.append((convert, time.perf_counter() - start))
            counts.append(counted.num_breakpoints)
        speedup_old = timings[1][1] / timings[0][1]
        for name, (convert, count), n in zip(("conv (new)", "CSR (old)"), timings, counts):
            baseline_rows.append([name, f"{convert:.3g} s", f"{count:.3g} s", str(n)])

    print_header(f"CIFAR ResNet-18, width {args.width}: one segment, radius {args.radius}")
    print(f"- threads: {args.threads}; peak memory before converting: {base_mb:.0f} MB")
    print(f"- forward pass vs torch float64: max abs difference {forward_error:.2g}")
    print()
    print(markdown_table(["step", "time", "peak RSS (MB)"], rows))
    print()
    print(
        f"Convolutions in the core's forward ({args.batch} points, one thread): "
        f"{conv_rate:.3g} GFLOP/s; the core's DGEMM (1024³): {dgemm:.3g} GFLOP/s "
        f"({100 * conv_rate / dgemm:.0f}%)."
    )
    print()
    print(
        f"Torch walk: {len(walked)} breakpoints walked, positions agree with lrcore's: "
        f"{walk_agrees}; lrcore {walk_s / count_s:.3g}x faster (extrapolated)."
    )
    if baseline_rows:
        print()
        print(f"Baseline at width {args.baseline_width}, same segment:")
        print()
        print(
            markdown_table(
                ["representation", "from_torch", "count_1d", "breakpoints"], baseline_rows
            )
        )
    print()
    targets = [
        (convert_s < 5.0, f"from_torch under 5 s ({convert_s:.3g} s)"),
        (
            walk_s >= 5 * count_s,
            f"count_1d 5x faster than the torch walk ({walk_s / count_s:.3g}x)",
        ),
        (
            conv_rate >= 0.3 * dgemm,
            f"convolutions at 30% of DGEMM ({100 * conv_rate / dgemm:.0f}%)",
        ),
        (count_mb < 2048, f"count_1d peak memory under 2 GB ({count_mb:.0f} MB)"),
        (walk_agrees, "the walk's breakpoints agree"),
    ]
    if not args.no_verify:
        targets.append((verify_mb < 2048, f"verify() peak memory under 2 GB ({verify_mb:.0f} MB)"))
        targets.append((verify_ok, "verify() passes"))
    if speedup_old is not None:
        targets.append((speedup_old > 1.0, f"faster than the CSR chain ({speedup_old:.3g}x)"))
    command = reproduce_command(
        "benchmarks/bench_cnn.py", sys.argv[1:] if argv is None else argv, args.threads
    )
    missed = print_targets(targets, command)
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
