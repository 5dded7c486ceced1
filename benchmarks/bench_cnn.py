"""Benchmark exact 1D counts through CIFAR CNNs (lrcore.zoo) on short segments.

For :func:`lrcore.zoo.resnet18` or (``--model vgg11``) :func:`lrcore.zoo.vgg11`
(``--width`` channels in the first stage, 64 = the full model; BatchNorm with
non-trivial running statistics, eval mode; VGG-11 with exact max pooling) on 3×32×32
inputs, and the segment from ``x0 ~ N(0, I)`` to ``x0 + --radius · N(0, I)``, this
script reports in one run:

- ``from_torch`` time;
- ``count_1d`` time and breakpoints, and the peak resident memory after it; for VGG-11
  also on the first ``--pair-fraction`` of the segment from ``x0`` to another random
  image (the whole segment's count extrapolated);
- the torch-forward walk of ``tests/torch_walk.py`` (one float64 forward pass with
  forward-mode AD per breakpoint; it follows max pooling), trimmed: the first
  ``--walk-steps`` breakpoints are walked, the positions (and argmax changes) checked
  against lrcore's, and the time per step extrapolated to the whole segment;
- the convolutions' achieved GFLOP/s in the core's forward pass (one thread, a batch of
  ``--batch`` points; all the layers' time counted, so a lower bound) against the
  machine's own DGEMM rate measured through the same core (a dense 1024×1024 layer);
- ``verify()`` on the result: time and peak memory (``--verify-full``: also the
  whole-forward-pass check, ``verify(full_forward=True)``);
- VGG-11: 2D slices through three random images (``Plane.through``, the images at (0, 0),
  (1, 0), (0, 1)) at ``--slice-widths`` in the box ``[0, --slice-box]²``: time, faces,
  ``verify()``, and torch's dense sampling on a grid (distinct (ReLU signs, argmax)
  cells, a lower bound, every one a face's);
- the old representation (every layer one CSR or dense matrix,
  ``trace_to_layers(structured=False)``) as a baseline at ``--baseline-width`` (0 skips
  it): conversion and count times, counts compared.

It prints markdown tables and the command that reproduces them; it is not a test and
exits 0 even when a target is missed (``--strict`` changes that).

Measured (2026-12-07, AMD EPYC, 2 cores shared with other work, load average ~7; the
ratios are from one run): ResNet-18 from_torch 0.5-1.3 s (the CSR chain: about a minute
at width 64, 3.4-5.9 s at width 16); count_1d 24-38 s for 552 breakpoints, peak RSS
1.73 GB; the torch walk 5-8x slower (186-211 s extrapolated); convolutions at 64-87% of
the core's DGEMM; verify() 77 s within the count's peak memory before the layer-by-layer
verify, 63.8 s against the old code's 122 s in one run where the count took 61.9 s
(load ~7), 33.7 s against 38.6 s where it took 12.9 s (load ~3.5; the core's forward
of the 1107 checked points is 27 s of it); checking the pieces' ends only (554 points),
16.3 s against the old 32.5 s where the count took 12.2 s (load ~2.5, one run; separate
runs: 16.5 against 31.2 s, both within the count's peak of 1.79 GB); layer by layer
(``--verify-full``, load 4.5-5.2) 22.7 s against the whole forward pass's 29.9 s where
the count took 25.5 s, 29.3 against 35.7 s where it took 25.8 s; at width 16 the CSR chain counts 7.8-10x slower than the structured layers,
with the same 139 breakpoints.

VGG-11 at width 64 (``--model vgg11 --baseline-width 0 --walk-steps 10 --slice-widths
64 --slice-box 0.0002 --slice-grid 20``, load ~4): from_torch 3.2 s (0.5 GB); count_1d
4.3 s for 238 breakpoints (peak 1.3 GB), 3.6 s for 272 breakpoints on 0.005 of the
segment between two images (the whole segment ~54,000 extrapolated); the torch walk
3.6x slower (64 ms/step), its 10 breakpoints and argmax changes equal to lrcore's;
convolutions at 79% of the core's DGEMM; verify() 12.5 s, ok (1.75 GB). A slice on
[0, 0.0002]²: 4.4 s, 82 faces, verify() 6.0 s ok, 64 cells sampled on a 20×20 grid, all
faces'. Before the pooled maxima were carried as linear units (the convolution after a
pooling node was then one CSR matrix of the composed map), the same command at load ~8
gave: from_torch 38.5 s (4.6 GB), count_1d 73 s (5.5 GB), walk 1.14x slower, 5% of
DGEMM, verify() 161 s, the slice 54 s and its (older) verify() 357 s.

Examples
--------
Full run (a few minutes on 2 cores)::

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
from torch_walk import float64_copy, patterns, pre_activations_along, walk_segment

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


def trimmed_walk(model: Any, start: np.ndarray, end: np.ndarray, steps: int) -> tuple[Any, float]:
    """The first ``steps`` breakpoints of tests/torch_walk.py's walk, and seconds per step."""
    torch.set_num_threads(1)
    pre_activations_along(model, SHAPE, start, end - start)  # warm-up: not timed
    begin = time.perf_counter()
    walk = walk_segment(model, SHAPE, start, end, max_breakpoints=steps)
    return walk, (time.perf_counter() - begin) / max(walk.evaluations, 1)


def slice_through_images(
    width: int, box: float, grid: int, threads: int, rtol: float, seed: int
) -> list[str]:
    """A 2D slice of VGG-11 through three random images: time, faces, checks."""
    small = zoo.vgg11(width=width, seed=seed)
    net = lrcore.from_torch(small, SHAPE)
    x0, x1, x2 = np.random.default_rng(seed + 1).standard_normal((3, 3072))
    plane = lrcore.slice2d.Plane.through(x0, x1, x2)
    start = time.perf_counter()
    result = lrcore.slice_2d(
        net, plane, bounds=(0.0, box, 0.0, box), num_threads=threads, rtol=rtol
    )
    slice_s = time.perf_counter() - start
    start = time.perf_counter()
    report = result.verify()
    verify_s = time.perf_counter() - start
    # Dense sampling (torch, float64) is a lower bound on the distinct cells, and every
    # (ReLU signs, argmax) pattern it meets must be a face's.
    st = np.stack(np.meshgrid(np.linspace(0, box, grid), np.linspace(0, box, grid)), -1)
    reference = float64_copy(small)
    relu, argmax = [], []
    for chunk in np.array_split(st.reshape(-1, 2), max(1, grid * grid // 256)):
        r, a = patterns(reference, SHAPE, result.to_input(chunk))
        relu.append(r)
        argmax.append(a)
    sampled = np.concatenate([np.concatenate(relu), np.concatenate(argmax)], 1).astype(np.int64)
    seen = {row.tobytes() for row in sampled}
    bits = result.pattern_bools()
    is_match = np.zeros(net.num_neurons, dtype=bool)
    is_match[net.pooling.columns(net.neuron_offsets())] = True
    faces = {
        row.tobytes()
        for row in np.concatenate(
            [bits[:, ~is_match].astype(np.int64), result.pooling.argmax.astype(np.int64)], 1
        )
    }
    return [
        str(width),
        f"{box:g}",
        f"{slice_s:.3g} s",
        str(result.num_regions),
        f"{verify_s:.3g} s (ok={report.ok})",
        f"{len(seen)} ({grid}x{grid}; all faces': {seen <= faces})",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("resnet18", "vgg11"), default="resnet18")
    parser.add_argument("--width", type=int, default=64, help="first-stage width (64: full)")
    parser.add_argument("--radius", type=float, default=0.005, help="segment: x0 + radius·N(0,I)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--walk-steps", type=int, default=40, help="breakpoints walked by torch")
    parser.add_argument("--batch", type=int, default=32, help="points in the GFLOP/s forward")
    parser.add_argument("--baseline-width", type=int, default=16, help="CSR baseline (0: skip)")
    parser.add_argument("--no-verify", action="store_true")
    parser.add_argument(
        "--verify-full",
        action="store_true",
        help="also time verify(full_forward=True), a whole forward pass per piece end",
    )
    parser.add_argument(
        "--pair-fraction",
        type=float,
        default=0.005,
        help="vgg11: also count x0 -> x0 + f (x1 - x0), x1 another random image (0: skip)",
    )
    parser.add_argument(
        "--slice-widths",
        default="4,64",
        help="vgg11: widths of the 2D slice through three images (comma list, empty: skip)",
    )
    parser.add_argument("--slice-box", type=float, default=0.002, help="slice box [0, b]^2")
    parser.add_argument("--slice-grid", type=int, default=30, help="slice sampling grid")
    parser.add_argument(
        "--rtol",
        type=float,
        default=1e-10,
        help="zero tolerance of count_1d (the certified default, rtol=None, costs more "
        "on this model: about 8-10x at width 16; benchmarks/bench_certify.py measures it)",
    )
    parser.add_argument("--strict", action="store_true")
    args = parser.parse_args(argv)

    vgg = args.model == "vgg11"
    model = (zoo.vgg11 if vgg else zoo.resnet18)(width=args.width, seed=args.seed)
    name = "VGG-11" if vgg else "ResNet-18"
    rng = np.random.default_rng(args.seed)
    x0 = rng.standard_normal(3072)
    x1 = x0 + args.radius * rng.standard_normal(3072)
    path = np.stack([x0, x1])
    other = rng.standard_normal(3072)
    base_mb = peak_mb()

    progress("from_torch ...")
    start = time.perf_counter()
    net = lrcore.from_torch(model, SHAPE)
    convert_s = time.perf_counter() - start
    convert_mb = peak_mb()

    progress("count_1d ...")
    start = time.perf_counter()
    result = lrcore.count_1d(net, path, num_threads=args.threads, rtol=args.rtol)
    count_s = time.perf_counter() - start
    count_mb = peak_mb()

    pair_rows = []
    if vgg and args.pair_fraction > 0:
        progress("count_1d between two images ...")
        stretch = np.stack([x0, x0 + args.pair_fraction * (other - x0)])
        start = time.perf_counter()
        pair = lrcore.count_1d(net, stretch, num_threads=args.threads, rtol=args.rtol)
        pair_s = time.perf_counter() - start
        pair_rows.append(
            [
                f"count_1d, {args.pair_fraction:g} of the segment between two images",
                (
                    f"{pair_s:.3g} s ({pair.num_breakpoints} breakpoints; whole segment "
                    f"~{pair.num_breakpoints / args.pair_fraction:.3g} extrapolated)"
                ),
                f"{peak_mb():.0f}",
            ]
        )

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

    progress(
        f"  count_1d {count_s:.3g} s, {result.num_breakpoints} breakpoints, {count_mb:.0f} MB"
    )
    progress("torch walk ...")
    walk_model = float64_copy(model)
    walk, per_step = trimmed_walk(walk_model, x0, x1, args.walk_steps)
    walked = walk.positions
    walk_s = per_step * (result.num_breakpoints + 1)
    ours = result.breakpoints[: len(walked)] / result.length
    walk_agrees = len(walked) == len(ours) and bool(np.allclose(ours, walked, rtol=0, atol=1e-7))
    if walk_agrees and result.pooling is not None:  # and the same argmax changes
        offsets = result.pooling.change_offsets
        walk_agrees = all(
            np.array_equal(result.pooling.changes[offsets[j] : offsets[j + 1]], walk.changes[j])
            for j in range(len(walked))
        )

    verify_s, verify_mb, verify_ok = float("nan"), float("nan"), True
    if not args.no_verify:
        progress("verify ...")
        start = time.perf_counter()
        report = result.verify()
        verify_s = time.perf_counter() - start
        verify_mb = peak_mb()
        verify_ok = report.ok
        progress(f"  verify {verify_s:.3g} s (ok={verify_ok}), {verify_mb:.0f} MB")
    full_rows = []
    if args.verify_full and not args.no_verify:
        progress("verify(full_forward=True) ...")
        start = time.perf_counter()
        full = result.verify(full_forward=True)
        full_s = time.perf_counter() - start
        verify_ok = verify_ok and full.ok
        progress(f"  verify(full_forward=True) {full_s:.3g} s (ok={full.ok})")
        full_rows = [["verify(full_forward=True)", f"{full_s:.3g} s (ok={full.ok})", "-"]]

    rows = [
        ["from_torch", f"{convert_s:.3g} s", f"{convert_mb:.0f}"],
        ["count_1d", f"{count_s:.3g} s ({result.num_breakpoints} breakpoints)", f"{count_mb:.0f}"],
        *pair_rows,
        ["torch walk (extrapolated)", f"{walk_s:.3g} s ({per_step * 1e3:.3g} ms/step)", "-"],
        ["verify()", f"{verify_s:.3g} s (ok={verify_ok})", f"{verify_mb:.0f}"],
        *full_rows,
    ]
    baseline_rows = []
    speedup_old = None
    slice_rows = []
    if vgg:
        for width in [int(w) for w in args.slice_widths.split(",") if w.strip()]:
            progress(f"slice through three images, width {width} ...")
            slice_rows.append(
                slice_through_images(
                    width, args.slice_box, args.slice_grid, args.threads, args.rtol, args.seed
                )
            )
            progress("  " + " | ".join(slice_rows[-1]))
    if args.baseline_width > 0:
        progress("CSR baseline ...")
        small = (zoo.vgg11 if vgg else zoo.resnet18)(width=args.baseline_width, seed=args.seed)
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
            counted = lrcore.count_1d(old, path, num_threads=args.threads, rtol=args.rtol)
            timings.append((convert, time.perf_counter() - start))
            counts.append(counted.num_breakpoints)
        speedup_old = timings[1][1] / timings[0][1]
        for name, (convert, count), n in zip(("conv (new)", "CSR (old)"), timings, counts):
            baseline_rows.append([name, f"{convert:.3g} s", f"{count:.3g} s", str(n)])

    print_header(f"CIFAR {name}, width {args.width}: one segment, radius {args.radius}")
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
    if slice_rows:
        print()
        print(
            f"2D slices through three random images (the plane's box [0, {args.slice_box:g}]², "
            "images at (0, 0), (1, 0), (0, 1)); dense sampling with torch: distinct (ReLU "
            "signs, argmax) cells, a lower bound on the faces:"
        )
        print()
        print(
            markdown_table(
                ["width", "box", "slice_2d", "faces", "verify()", "sampled cells"], slice_rows
            )
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
        targets.append(
            (verify_s <= count_s, f"verify() no slower than count_1d ({verify_s / count_s:.2f}x)")
        )
    if speedup_old is not None:
        targets.append((speedup_old > 1.0, f"faster than the CSR chain ({speedup_old:.3g}x)"))
    command = reproduce_command(
        "benchmarks/bench_cnn.py", sys.argv[1:] if argv is None else argv, args.threads
    )
    missed = print_targets(targets, command)
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
