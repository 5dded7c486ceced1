"""Benchmark exact 2D slices (lrcore.slice_2d) against regioncam and dense grid sampling.

Cases, with torch-default initialisation (``lrcore.Network.random(sizes, seed=...)``):

- ``2-64x3``: 2→[64]×3→1 on the input plane itself, (s, t) ∈ [−1, 1]² and [−5, 5]²;
- ``784-128x3``: 784→[128]×3→10 on the plane through three N(0, I) points
  (``lrcore.Plane.through``: the points sit at (0, 0), (1, 0), (0, 1)), (s, t) ∈ [0, 1]²;
- ``784-256x3-large`` and ``784-512x3-large``: 784→[256]×3→10 and 784→[512]×3→10 on the
  same plane, in the box [−B, B]² with B doubled from 1 until the slice holds at least
  ``--target-regions`` (10⁶) regions, or until doubling B adds under 2% more regions (the
  whole plane holds fewer regions than the target; the table says so).

Each tool runs on each case in a fresh subprocess (this script with ``--worker``), which
reports:

- regions and the wall time of the call (best of ``--repeat``, fewer once
  ``--max-seconds`` are spent), regions per second, CPU time / wall time;
- peak memory per region: the peak resident set size (VmHWM, reset through
  /proc/self/clear_refs after a tiny warm-up call) minus the RSS just before the first
  timed call, with the result kept alive (so it includes the returned arrays), divided by
  the regions;
- for lrcore, self-checks outside the timing: distinct patterns = regions, face areas sum
  to the box area, and the pattern the network has at an interior point of each face (the
  mean of its vertices) equals the face's pattern, on a sample of faces.

Baselines:

- regioncam (float32, ``Regioncam``) on the identical network and plane: the box maps to
  regioncam's square [−1, 1]², and the first layer is composed with the plane in float64
  (W₁·(o + s·u + t·v) + b₁, as lrcore does internally) before the cast to float32, so
  regioncam sees a 2→[w]×k network; the worker checks that regioncam's last-layer values at
  its vertices match lrcore's float64 network there. Its region count is compared with
  lrcore's; differences come from faces near float32 resolution (see the notes printed).
- dense grid sampling: the activation patterns on an n×n grid of cell centres over the
  box, through ``lrcore.Network.patterns`` on the same composed float64 network, in
  chunks; reports the distinct patterns found versus the exact count, for n = 1000 and for
  the n whose time matches lrcore's.

It prints markdown tables and the command that reproduces them. This is a benchmark, not
a test: it exits 0 even when a target is missed (pass ``--strict`` to change that).

Examples
--------
Full run (about 10 minutes on 2 cores; regioncam needs about 7 GB on the 256-wide case)::

    python benchmarks/bench_2d.py

Smoke run (small grids, target 10⁵ regions, no 784-512x3)::

    python benchmarks/bench_2d.py --quick

Profile lrcore on one case with ``perf record`` (symbols of the core's internal functions
need a build that keeps them, e.g. CMake's RelWithDebInfo)::

    python benchmarks/bench_2d.py --cases 784-256x3-large --perf perf.data
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import platform
import shutil
import subprocess
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
    numpy_blas_threads,
    print_header,
    print_targets,
    progress,
    regioncam_version,
    reproduce_command,
)

TARGET_SPEEDUP = 5.0
STRETCH_SPEEDUP = 10.0
TARGET_LARGE_SECONDS = 10.0
TARGET_BYTES_PER_REGION = 1024
SATURATION_GROWTH = 0.02  # doubling B adds less than this fraction: the plane is exhausted
TINY_FACE = 1e-6  # faces narrower than this fraction of the box half-width (near float32)
BLAS_IDLE_SECONDS = 0.5


@dataclass(frozen=True)
class Case:
    """One network on one plane; ``bounds`` None means: grow [-B, B]^2."""

    name: str
    sizes: tuple[int, ...]
    plane: str  # "input" (origin 0, basis I) or "gaussian" (through three N(0, I) points)
    bounds: tuple[float, float, float, float] | None
    description: str


CASES: dict[str, Case] = {
    case.name: case
    for case in [
        Case("2-64x3-box1", (2, 64, 64, 64, 1), "input", (-1, 1, -1, 1), "2→[64]x3, [-1,1]²"),
        Case("2-64x3-box5", (2, 64, 64, 64, 1), "input", (-5, 5, -5, 5), "2→[64]x3, [-5,5]²"),
        Case(
            "784-128x3",
            (784, 128, 128, 128, 10),
            "gaussian",
            (0, 1, 0, 1),
            "784→[128]x3, Gaussian plane, [0,1]²",
        ),
        Case(
            "784-256x3-large",
            (784, 256, 256, 256, 10),
            "gaussian",
            None,
            "784→[256]x3, Gaussian plane",
        ),
        Case(
            "784-512x3-large",
            (784, 512, 512, 512, 10),
            "gaussian",
            None,
            "784→[512]x3, Gaussian plane",
        ),
    ]
}
QUICK_CASES = ["2-64x3-box1", "2-64x3-box5", "784-128x3", "784-256x3-large"]


# --------------------------------------------------------------------------- workers
# Everything here runs in a fresh subprocess: ``bench_2d.py --worker '<json spec>'``.


def build_case(spec: dict[str, Any]) -> tuple[lrcore.Network, lrcore.Plane, np.ndarray]:
    """The network, the plane and the (s0, s1, t0, t1) box of a worker spec."""
    sizes = [int(s) for s in spec["sizes"]]
    net = lrcore.Network.random(sizes, seed=int(spec["seed"]))
    d = sizes[0]
    if spec["plane"] == "input":
        if d != 2:
            raise ValueError("the 'input' plane needs a 2-dimensional input")
        plane = lrcore.Plane(np.zeros(2), np.eye(2))
    elif spec["plane"] == "gaussian":
        points = np.random.default_rng(int(spec["seed"]) + 1).standard_normal((3, d))
        plane = lrcore.Plane.through(*points)
    else:
        raise ValueError(f"unknown plane {spec['plane']!r}")
    return net, plane, np.asarray(spec["bounds"], dtype=np.float64)


def composed_network(net: lrcore.Network, plane: lrcore.Plane) -> lrcore.Network:
    """The network as a function of (s, t): the first layer composed with the plane."""
    weights, biases = net.weights, net.biases
    weights[0] = weights[0] @ plane.basis.T
    biases[0] = net.weights[0] @ plane.origin + biases[0]
    return lrcore.Network(weights, biases, net.activations, net.negative_slopes)


def memory_kib() -> dict[str, int]:
    """Current (VmRSS) and peak (VmHWM) resident set size of this process, in KiB."""
    values = {}
    with contextlib.suppress(OSError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                values[line.split(":")[0]] = int(line.split()[1])
    if "VmHWM" not in values:  # not Linux: only the peak is known
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = peak // 1024 if sys.platform == "darwin" else peak
        values = {"VmRSS": peak, "VmHWM": peak}
    return values


def reset_peak_memory() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def measure_first(run: Any) -> tuple[Any, dict[str, Any]]:
    """Call ``run`` once, measuring wall time, CPU time and peak memory."""
    # OpenBLAS worker threads busy-wait for a while after their last job (and after start-up);
    # let them go idle so that they do not share the CPUs with the timed call.
    time.sleep(BLAS_IDLE_SECONDS)
    reset = reset_peak_memory()
    before = memory_kib()
    start, cpu = time.perf_counter(), time.process_time()
    value = run()
    first = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu
    after = memory_kib()
    return value, {
        "first_seconds": first,
        "cpu_seconds": cpu_seconds,
        "rss_before_kib": before["VmRSS"],
        "peak_kib": after["VmHWM"],
        "peak_reset": reset,
    }


def best_of(run: Any, measured: dict[str, Any], repeat: int, max_seconds: float) -> dict[str, Any]:
    """Repeat ``run`` after the measured first call, within the limits; keep the best."""
    best, cpu_best = measured["first_seconds"], measured["cpu_seconds"]
    runs, spent = 1, best
    while runs < repeat and spent + best <= max_seconds:
        start, cpu = time.perf_counter(), time.process_time()
        run()
        elapsed = time.perf_counter() - start
        if elapsed < best:
            best, cpu_best = elapsed, time.process_time() - cpu
        runs, spent = runs + 1, spent + elapsed
    return {"seconds": best, "cpu_per_wall": cpu_best / best, "runs": runs}


def worker_lrcore(spec: dict[str, Any]) -> dict[str, Any]:
    net, plane, box = build_case(spec)
    threads = int(spec["threads"])
    bounds = tuple(box.tolist())

    def run() -> lrcore.SliceResult:
        return lrcore.slice_2d(
            net, plane, bounds=bounds, num_threads=threads, max_regions=int(spec["max_regions"])
        )

    # Warm-up on a tiny box: loads and initialises everything, allocates little.
    centre = np.array([box[0] + box[1], box[2] + box[3]]) / 2
    tiny = 1e-4 * (box[1] - box[0])
    lrcore.slice_2d(
        net, plane, bounds=(centre[0] - tiny, centre[0] + tiny, centre[1] - tiny, centre[1] + tiny)
    )
    result, measured = measure_first(run)
    arrays = [
        result.vertices,
        result.vertex_outputs,
        result.face_offsets,
        result.face_vertices,
        result.edges,
        result.edge_neurons,
        result.patterns,
    ]
    out: dict[str, Any] = measured | {
        "regions": result.num_regions,
        "tiles": result.tiles,
        "vertices": result.num_vertices,
        "edges": result.num_edges,
        "result_bytes": int(sum(a.nbytes for a in arrays)),
    }
    if spec.get("check"):
        out.update(check_slice(result, net, plane, box, int(spec["seed"])))
    del result, arrays
    out.update(best_of(run, measured, int(spec["repeat"]), float(spec["max_seconds"])))
    return out


def check_slice(
    result: lrcore.SliceResult,
    net: lrcore.Network,
    plane: lrcore.Plane,
    box: np.ndarray,
    seed: int,
    sample: int = 20_000,
    smallest: int = 200,
) -> dict[str, Any]:
    """Self-consistency checks of a slice (outside the timing)."""
    regions = result.num_regions
    patterns = np.ascontiguousarray(result.patterns)
    row = np.dtype((np.void, max(patterns.shape[1], 1)))
    distinct = int(np.unique(patterns.view(row).ravel()).size) if regions else 0
    box_area = (box[1] - box[0]) * (box[3] - box[2])
    area_error = abs(float(result.areas.sum()) - box_area) / box_area
    # Face extents: tiny faces are where float32 tools cannot be expected to agree.
    starts = result.face_offsets[:-1]
    corners = result.vertices[result.face_vertices]
    extent = np.max(
        np.maximum.reduceat(corners, starts, axis=0)
        - np.minimum.reduceat(corners, starts, axis=0),
        axis=1,
    )
    half_width = 0.5 * min(box[1] - box[0], box[3] - box[2])
    tiny = int(np.count_nonzero(extent < TINY_FACE * half_width))
    # Interior points: the mean of a convex face's vertices (independent of the
    # SliceResult.centroids under test).
    rng = np.random.default_rng(seed)
    chosen = np.union1d(
        rng.choice(regions, size=min(sample, regions), replace=False),
        np.argsort(extent)[: min(smallest, regions)],
    )
    counts = np.diff(result.face_offsets)
    means = np.add.reduceat(corners, starts, axis=0)[chosen] / counts[chosen, None]
    found = composed_network(net, plane).patterns(means)
    expected = result.pattern_bools()[chosen]
    mismatched = chosen[np.any(found != expected, axis=1)]
    return {
        "distinct": distinct,
        "area_error": area_error,
        "tiny_faces": tiny,
        "min_extent": float(extent.min()) if regions else 0.0,
        "checked": int(chosen.size),
        "interior_mismatch": int(mismatched.size),
        "interior_mismatch_faces": mismatched[:5].tolist(),
    }


def regioncam_layers(
    net: lrcore.Network, plane: lrcore.Plane, box: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """float32 (weight (in, out), bias) of the hidden layers on regioncam's square [-1, 1]^2.

    (s, t) = centre + half * (a, b) for (a, b) in [-1, 1]^2; the first layer is composed
    with that map and the plane in float64, then everything is cast to float32.
    """
    centre = np.array([box[0] + box[1], box[2] + box[3]]) / 2
    half = np.array([box[1] - box[0], box[3] - box[2]]) / 2
    weights, biases = net.weights, net.biases
    first_w = weights[0] @ (half[:, None] * plane.basis).T  # (h1, 2)
    first_b = weights[0] @ (plane.origin + centre @ plane.basis) + biases[0]
    pairs = [(first_w, first_b), *zip(weights[1:-1], biases[1:-1])]
    return [
        (np.ascontiguousarray(w.T, dtype=np.float32), np.ascontiguousarray(b, dtype=np.float32))
        for w, b in pairs
    ]


def worker_regioncam(spec: dict[str, Any]) -> dict[str, Any]:
    import regioncam

    net, plane, box = build_case(spec)
    if any(a != "relu" for a in net.activations):
        raise ValueError("the regioncam baseline is set up for ReLU networks only")
    layers = regioncam_layers(net, plane, box)

    def run() -> Any:
        camera = regioncam.Regioncam(1.0)
        for weight, bias in layers:
            camera.linear(weight, bias)
            camera.relu()
        return camera

    warm_up = regioncam.Regioncam(1.0)  # loads everything; allocates little
    warm_up.linear(*layers[0])
    warm_up.relu()
    del warm_up
    camera, measured = measure_first(run)
    # Same network and plane? Compare regioncam's last-layer values at its own vertices
    # with lrcore's float64 network at the same (s, t).
    centre = np.array([box[0] + box[1], box[2] + box[3]]) / 2
    half = np.array([box[1] - box[0], box[3] - box[2]]) / 2
    inputs = np.asarray(camera.vertex_inputs, dtype=np.float64)
    pick = np.random.default_rng(0).choice(len(inputs), size=min(2000, len(inputs)), replace=False)
    outputs = np.asarray(camera.vertex_outputs, dtype=np.float64)[pick]
    reference = composed_network(net, plane).pre_activations(centre + half * inputs[pick])[-1]
    reference = np.maximum(reference, 0.0)
    scale = max(float(np.abs(reference).max()), 1e-300)
    out = measured | {
        "regions": int(camera.num_faces),
        "vertices": int(camera.num_vertices),
        "network_check": float(np.abs(outputs - reference).max() / scale),
    }
    del camera, inputs
    out.update(best_of(run, measured, int(spec["repeat"]), float(spec["max_seconds"])))
    return out


def grid_patterns(
    net2d: lrcore.Network, box: np.ndarray, resolution: int, chunk_points: int = 1 << 15
) -> tuple[float, int]:
    """Time the distinct activation patterns on a resolution² grid of cell centres."""
    start = time.perf_counter()
    s = box[0] + (np.arange(resolution) + 0.5) * (box[1] - box[0]) / resolution
    t = box[2] + (np.arange(resolution) + 0.5) * (box[3] - box[2]) / resolution
    rows_per_chunk = max(1, chunk_points // resolution)
    nbytes = (net2d.num_neurons + 7) // 8
    row = np.dtype((np.void, nbytes))
    found = []
    for first in range(0, resolution, rows_per_chunk):
        tt = t[first : first + rows_per_chunk]
        points = np.empty((tt.size * resolution, 2))
        points[:, 0] = np.tile(s, tt.size)
        points[:, 1] = np.repeat(tt, resolution)
        packed = np.packbits(net2d.patterns(points), axis=1, bitorder="little")
        found.append(np.unique(np.ascontiguousarray(packed).view(row).ravel()))
    distinct = int(np.unique(np.concatenate(found)).size)
    return time.perf_counter() - start, distinct


def worker_grid(spec: dict[str, Any]) -> dict[str, Any]:
    net, plane, box = build_case(spec)
    net2d = composed_network(net, plane)
    grid_patterns(net2d, box, 16)  # warm-up
    results = []
    base = int(spec["resolution"])
    seconds, found = grid_patterns(net2d, box, base)
    results.append({"resolution": base, "seconds": seconds, "found": found})
    match = spec.get("match_seconds")
    if match:
        # Grid time is proportional to the points: pick n with the same time as lrcore.
        n = round(base * math.sqrt(float(match) / seconds))
        n = min(max(n, 8), int(spec["max_resolution"]))
        if abs(n - base) > 0.05 * base:
            seconds, found = grid_patterns(net2d, box, n)
            results.append({"resolution": n, "seconds": seconds, "found": found})
    return {"grids": results}


WORKERS = {"lrcore": worker_lrcore, "regioncam": worker_regioncam, "grid": worker_grid}
RESULT_PREFIX = "BENCH2D-RESULT "


def worker_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    with numpy_blas_threads(1):  # numpy's products here are small; keep its threads idle
        out = WORKERS[spec["tool"]](spec)
    print(RESULT_PREFIX + json.dumps(out), flush=True)
    return 0


# --------------------------------------------------------------------------- driver


@dataclass
class WorkerOutcome:
    result: dict[str, Any] | None
    error: str | None = None


def worker_command(spec: dict[str, Any]) -> list[str]:
    return [sys.executable, __file__, "--worker", json.dumps(spec)]


def run_worker(spec: dict[str, Any], timeout: float) -> WorkerOutcome:
    """Run one measurement in a fresh Python process."""
    try:
        done = subprocess.run(
            worker_command(spec), stdout=subprocess.PIPE, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return WorkerOutcome(None, f"timed out after {timeout:.0f} s")
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return WorkerOutcome(json.loads(line[len(RESULT_PREFIX) :]))
    return WorkerOutcome(None, f"worker failed with exit status {done.returncode}")


def base_spec(case: Case, bounds: Sequence[float], args: argparse.Namespace) -> dict[str, Any]:
    return {
        "sizes": list(case.sizes),
        "plane": case.plane,
        "bounds": [float(b) for b in bounds],
        "seed": args.seed,
        "threads": args.threads,
        "repeat": args.repeat,
        "max_seconds": args.max_seconds,
        "max_regions": args.max_regions,
    }


@dataclass
class CaseResult:
    case: Case
    bounds: tuple[float, float, float, float]
    lrcore: dict[str, Any] | None
    lrcore_error: str | None = None
    search: list[tuple[float, int, float]] = field(default_factory=list)
    box_note: str = ""
    regioncam: dict[str, Any] | None = None
    regioncam_note: str = ""
    grid: list[dict[str, Any]] = field(default_factory=list)
    grid_note: str = ""


def search_box(case: Case, args: argparse.Namespace) -> tuple[float, list[Any], str]:
    """Double B from --box-start until the slice holds --target-regions or stops growing."""
    if case.name in args.box:
        return args.box[case.name], [], f"B = {args.box[case.name]:g} given with --box"
    half, history = args.box_start, []
    previous = 0
    while True:
        spec = base_spec(case, (-half, half, -half, half), args) | {
            "tool": "lrcore",
            "repeat": 1,
        }
        progress(f"[{case.name}] box search: B = {half:g}")
        outcome = run_worker(spec, args.timeout)
        if outcome.result is None:
            note = f"search stopped at B = {half:g}: {outcome.error}"
            return (history[-1][0] if history else half), history, note
        regions = int(outcome.result["regions"])
        history.append((half, regions, float(outcome.result["seconds"])))
        progress(f"  {regions} regions in {outcome.result['seconds']:.2f} s")
        if regions >= args.target_regions:
            return (
                half,
                history,
                f"smallest B = 2^k·{args.box_start:g} with ≥{args.target_regions:,} regions",
            )
        if previous and regions < (1 + SATURATION_GROWTH) * previous:
            note = (
                f"SATURATED: doubling B to {half:g} added only "
                f"{100 * (regions / previous - 1):.1f}% regions; this plane holds about "
                f"{regions:,} regions in all, under the {args.target_regions:,} target"
            )
            return half, history, note
        if half * 2 > args.max_box:
            return half, history, f"stopped at --max-box {args.max_box:g} below the target"
        previous = regions
        half *= 2


def projected_regioncam_gib(
    case: Case, regions: int, measured: list[tuple[int, int, float]]
) -> float | None:
    """regioncam's peak memory for ``regions`` regions (None when nothing was measured).

    From its bytes per region per unit of width on the largest earlier case.
    """
    if not measured:
        return None
    width, count, per_region = max(measured, key=lambda item: item[1])
    del count
    return per_region / width * max(case.sizes[1:-1]) * regions / 2**30


def benchmark_case(
    case: Case, args: argparse.Namespace, regioncam_memory: list[tuple[int, int, float]]
) -> CaseResult:
    search: list[Any] = []
    box_note = ""
    if case.bounds is None:
        half, search, box_note = search_box(case, args)
        bounds = (-half, half, -half, half)
    else:
        bounds = case.bounds
    progress(f"[{case.name}] lrcore.slice_2d on (s, t) ∈ {format_box(bounds)}")
    spec = base_spec(case, bounds, args) | {"tool": "lrcore", "check": not args.skip_checks}
    outcome = run_worker(spec, args.timeout)
    result = CaseResult(case, bounds, outcome.result, outcome.error, search, box_note)
    if outcome.result is None:
        return result
    regions = int(outcome.result["regions"])

    if args.skip_regioncam:
        result.regioncam_note = "skipped (--skip-regioncam)"
    elif regioncam_version() == "not installed":
        result.regioncam_note = "regioncam not installed"
    else:
        projected = projected_regioncam_gib(case, regions, regioncam_memory)
        if projected is not None and projected > args.regioncam_max_gib:
            result.regioncam_note = (
                f"not run: projected peak {projected:.0f} GiB (from its bytes per region and "
                f"unit width on the earlier cases) > --regioncam-max-gib {args.regioncam_max_gib:g}"
            )
        else:
            progress(f"[{case.name}] regioncam")
            rc = run_worker(base_spec(case, bounds, args) | {"tool": "regioncam"}, args.timeout)
            result.regioncam = rc.result
            if rc.result is None:
                result.regioncam_note = f"failed: {rc.error}"
            else:
                used = (rc.result["peak_kib"] - rc.result["rss_before_kib"]) * 1024
                regioncam_memory.append(
                    (
                        max(case.sizes[1:-1]),
                        int(rc.result["regions"]),
                        used / max(rc.result["regions"], 1),
                    )
                )

    if args.skip_grid:
        result.grid_note = "skipped (--skip-grid)"
    else:
        progress(f"[{case.name}] dense grid sampling")
        grid_spec = base_spec(case, bounds, args) | {
            "tool": "grid",
            "resolution": args.grid_resolution,
            "max_resolution": args.max_grid_resolution,
            "match_seconds": float(outcome.result["seconds"]),
        }
        grid = run_worker(grid_spec, args.timeout)
        if grid.result is None:
            result.grid_note = f"failed: {grid.error}"
        else:
            result.grid = grid.result["grids"]
    return result


# --------------------------------------------------------------------------- report


def format_box(bounds: Sequence[float]) -> str:
    s0, s1, t0, t1 = (f"{b:g}" for b in bounds)
    if (s0, s1) == (t0, t1):
        return f"[{s0}, {s1}]²"
    return f"[{s0}, {s1}]x[{t0}, {t1}]"


def bytes_per_region(result: dict[str, Any]) -> float:
    return (result["peak_kib"] - result["rss_before_kib"]) * 1024 / max(result["regions"], 1)


def print_setup(args: argparse.Namespace) -> None:
    """The report's heading: threads, versions, nets and how times were taken."""
    print_header("lrcore 2D benchmark")
    print(
        f"- threads: slice_2d(num_threads={args.threads}); a slice is cut into tiles "
        '(tiles="auto": at most about 20,000 regions or 4 MiB of vertex rows each, and '
        "from 1,500 regions up two per thread) that run in parallel and are merged "
        "(see CPU/wall and the tiles column); regioncam is single-threaded, the grid "
        "baseline runs on one thread"
    )
    print(f"- python {platform.python_version()}, numpy {np.__version__}")
    print(f"- lrcore {getattr(lrcore, '__version__', '?')}, regioncam {regioncam_version()}")
    print(
        f"- nets: torch-default init, seed {args.seed}; Gaussian plane: "
        f"Plane.through(3 points ~ N(0, I)), seed {args.seed + 1}; each tool and case in a "
        f"fresh process, wall time best of ≤{args.repeat} run(s) within {args.max_seconds:g} s"
    )
    print()


def print_comparison(results: Sequence[CaseResult]) -> None:
    """The table of lrcore against regioncam: regions, times, rates, memory."""
    header = [
        "case",
        "box (s, t)",
        "regions lrcore",
        "regions regioncam",
        "lrcore wall [s]",
        "lrcore regions/s",
        "lrcore CPU/wall",
        "tiles",
        "regioncam wall [s]",
        "regioncam regions/s",
        "speed-up",
        "lrcore peak RSS/region",
        "regioncam peak RSS/region",
    ]
    rows = []
    for r in results:
        lr = r.lrcore
        if lr is None:
            rows.append([r.case.description, format_box(r.bounds), f"failed: {r.lrcore_error}"])
            rows[-1] += [""] * (len(header) - 3)
            continue
        rate = lr["regions"] / lr["seconds"]
        row = [
            r.case.description,
            format_box(r.bounds),
            f"{lr['regions']:,}",
            f"{r.regioncam['regions']:,}" if r.regioncam else "—",
            format_seconds(lr["seconds"]),
            f"{rate:,.0f}",
            f"{lr['cpu_per_wall']:.2f}",
            str(lr.get("tiles", 1)),
        ]
        if r.regioncam:
            rc = r.regioncam
            rc_rate = rc["regions"] / rc["seconds"]
            row += [format_seconds(rc["seconds"]), f"{rc_rate:,.0f}", f"{rate / rc_rate:.1f}x"]
        else:
            row += ["—", "—", "—"]
        row.append(f"{bytes_per_region(lr) / 1024:.2f} KiB")
        row.append(f"{bytes_per_region(r.regioncam) / 1024:.2f} KiB" if r.regioncam else "—")
        rows.append(row)
    print("### lrcore.slice_2d vs regioncam")
    print()
    print(markdown_table(header, rows))
    print()
    print(
        "speed-up = lrcore regions/s ÷ regioncam regions/s. Peak RSS/region = (peak RSS "
        "during the first timed call - RSS just before it) ÷ regions, in a fresh process "
        "per tool and case (VmHWM reset via /proc/self/clear_refs after a tiny warm-up); "
        "the returned result is alive at the peak, so it is included."
    )
    print()


def print_notes(results: Sequence[CaseResult]) -> None:
    """Per case: sizes, memory held, self-checks, the box search and regioncam's agreement."""
    notes = []
    for r in results:
        lr = r.lrcore
        if lr is None:
            continue
        name = r.case.name
        held = lr["result_bytes"] / lr["regions"]
        notes.append(
            f"{name}: {lr['vertices']:,} vertices, {lr['edges']:,} edges; the returned arrays "
            f"hold {held:,.0f} B/region of the {bytes_per_region(lr):,.0f} B/region peak; "
            f"timed {lr['runs']} run(s), first {format_seconds(lr['first_seconds'])} s"
        )
        if not lr["peak_reset"]:
            notes.append(f"{name}: the peak RSS could not be reset; it includes the warm-up")
        if "distinct" in lr:
            ok = lr["distinct"] == lr["regions"] and lr["interior_mismatch"] == 0
            notes.append(
                f"{name}: self-check {'ok' if ok else 'FAILED'}: {lr['distinct']:,} distinct "
                f"patterns; areas sum to the box within {lr['area_error']:.1e}; "
                f"{lr['interior_mismatch']} of {lr['checked']:,} sampled faces (incl. the "
                f"smallest) have another pattern at their vertex mean"
                + (f" (faces {lr['interior_mismatch_faces']})" if lr["interior_mismatch"] else "")
            )
        if r.search:
            steps = ", ".join(f"B={b:g}: {n:,} ({format_seconds(s)} s)" for b, n, s in r.search)
            notes.append(f"{name}: box search {steps}")
        if r.box_note:
            notes.append(f"{name}: {r.box_note}")
        if r.regioncam_note:
            notes.append(f"{name}: regioncam {r.regioncam_note}")
        if r.regioncam:
            rc = r.regioncam
            diff = rc["regions"] - lr["regions"]
            text = (
                f"{name}: regioncam's float32 last-layer values at its vertices match lrcore's "
                f"float64 network at the same (s, t) to {rc['network_check']:.1e} (relative)"
            )
            if diff:
                text += (
                    f"; region counts differ by {diff:+d}: lrcore has "
                    f"{lr.get('tiny_faces', '?')} faces narrower than {TINY_FACE:g} of the box "
                    f"half-width (narrowest {lr.get('min_extent', float('nan')):.1e}), where "
                    "float32 vertices and values cannot place the boundaries"
                )
            notes.append(text)
    print("### notes")
    print()
    for note in notes:
        print(f"- {note}")
    print()


def print_grid(results: Sequence[CaseResult]) -> None:
    """The table of dense grid sampling against the exact counts."""
    rows = []
    for r in results:
        if r.lrcore is None:
            continue
        exact = r.lrcore["regions"]
        if not r.grid:
            rows.append([r.case.description, f"{exact:,}", r.grid_note or "—", "", "", "", ""])
            continue
        for g in r.grid:
            found = g["found"]
            rows.append(
                [
                    r.case.description,
                    f"{exact:,}",
                    f"{g['resolution']}x{g['resolution']}",
                    format_seconds(g["seconds"]),
                    f"{found:,}",
                    f"{exact - found:,} ({100 * (exact - found) / max(exact, 1):.1f}%)",
                    f"{g['seconds'] / r.lrcore['seconds']:.1f}x",
                ]
            )
    print("### dense grid sampling (float64 patterns at cell centres, one thread)")
    print()
    print(
        markdown_table(
            [
                "case",
                "exact regions",
                "grid",
                "time [s]",
                "distinct patterns found",
                "missed",
                "grid time / lrcore time",
            ],
            rows,
        )
    )
    print()
    print(
        "The second grid of a case (when shown) is the resolution whose time matches "
        "lrcore's. A found count above the exact one would mean lrcore missed regions."
    )
    print()


def target_lines(
    results: Sequence[CaseResult], args: argparse.Namespace
) -> list[tuple[bool, str]]:
    """Each target with whether it was met: equal counts, speed-up, time, memory."""
    lines = []
    for r in results:
        lr = r.lrcore
        if lr is None:
            lines.append((False, f"{r.case.name}: lrcore failed ({r.lrcore_error})"))
            continue
        if r.regioncam:
            rc = r.regioncam
            lines.append(
                (
                    rc["regions"] == lr["regions"],
                    (
                        f"{r.case.name}: equal region counts ({lr['regions']:,} vs regioncam "
                        f"{rc['regions']:,})"
                    ),
                )
            )
            speedup = (lr["regions"] / lr["seconds"]) / (rc["regions"] / rc["seconds"])
            stretch = " (stretch 10x met)" if speedup >= STRETCH_SPEEDUP else ""
            lines.append(
                (
                    speedup >= TARGET_SPEEDUP,
                    (
                        f"{r.case.name}: ≥{TARGET_SPEEDUP:g}x regioncam's regions/s "
                        f"({speedup:.1f}x){stretch}"
                    ),
                )
            )
        if lr["regions"] >= args.target_regions:
            lines.append(
                (
                    lr["seconds"] < TARGET_LARGE_SECONDS,
                    (
                        f"{r.case.name}: {lr['regions']:,}-region slice in under "
                        f"{TARGET_LARGE_SECONDS:g} s ({format_seconds(lr['seconds'])} s)"
                    ),
                )
            )
        per_region = bytes_per_region(lr)
        lines.append(
            (
                per_region <= TARGET_BYTES_PER_REGION,
                f"{r.case.name}: ≤1 KiB peak RSS per region ({per_region / 1024:.2f} KiB)",
            )
        )
    if not any(r.lrcore and r.lrcore["regions"] >= args.target_regions for r in results):
        lines.append((False, f"no case reached {args.target_regions:,} regions"))
    return lines


def report(results: Sequence[CaseResult], args: argparse.Namespace, command: str) -> list[str]:
    """Print the tables; return the list of missed targets."""
    print_setup(args)
    print_comparison(results)
    print_notes(results)
    print_grid(results)
    return print_targets(target_lines(results, args), command)


def profile(result: CaseResult, args: argparse.Namespace) -> None:
    """Record lrcore's worker on the case with perf and print the top symbols."""
    if shutil.which("perf") is None:
        progress("perf not found: skipping --perf")
        return
    spec = base_spec(result.case, result.bounds, args) | {"tool": "lrcore", "repeat": 1}
    command = ["perf", "record", "-F", "999", "-g", "-o", args.perf, "--", *worker_command(spec)]
    progress(f"[{result.case.name}] perf record -> {args.perf}")
    subprocess.run(command, stdout=subprocess.DEVNULL, check=False)
    report_command = ["perf", "report", "-i", args.perf, "--no-children", "--sort", "dso,symbol"]
    done = subprocess.run(
        [*report_command, "--stdio", "-g", "none"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        check=False,
    )
    top = [
        line for line in done.stdout.splitlines() if line.strip().startswith(tuple("0123456789"))
    ]
    print()
    print(f"### perf: self time by symbol, {result.case.name} on {format_box(result.bounds)}")
    print()
    print("Whole worker process (Python start-up and network set-up included):")
    print()
    for line in top[: args.perf_top]:
        print(f"    {' '.join(line.split())[:160]}")
    print()
    print(f"More: {' '.join(report_command)}")


def parse_box(values: Sequence[str]) -> dict[str, float]:
    boxes = {}
    for value in values:
        name, _, half = value.partition("=")
        if name not in CASES or CASES[name].bounds is not None or not half:
            growing = sorted(n for n, c in CASES.items() if c.bounds is None)
            raise argparse.ArgumentTypeError(f"--box: expected CASE=B with CASE in {growing}")
        boxes[name] = float(half)
    return boxes


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="slice_2d num_threads (default: all CPUs)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="timing: best of N")
    parser.add_argument(
        "--max-seconds", type=float, default=20.0, help="timing: stop repeating after this"
    )
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=None, help="cases")
    parser.add_argument(
        "--target-regions", type=int, default=1_000_000, help="grow the box to this many regions"
    )
    parser.add_argument("--box-start", type=float, default=1.0, help="first B of the search")
    parser.add_argument("--max-box", type=float, default=1e4, help="largest B of the search")
    parser.add_argument(
        "--box", nargs="+", default=[], metavar="CASE=B", help="use [-B, B]^2, skip the search"
    )
    parser.add_argument("--max-regions", type=int, default=5_000_000, help="slice_2d max_regions")
    parser.add_argument("--grid-resolution", type=int, default=1000, help="dense grid n (nxn)")
    parser.add_argument(
        "--max-grid-resolution", type=int, default=4000, help="cap of the time-matched grid"
    )
    parser.add_argument("--skip-grid", action="store_true", help="skip dense grid sampling")
    parser.add_argument("--skip-regioncam", action="store_true", help="skip regioncam")
    parser.add_argument(
        "--skip-checks", action="store_true", help="skip lrcore's self-checks (saves time)"
    )
    parser.add_argument(
        "--regioncam-max-gib",
        type=float,
        default=8.0,
        help="skip regioncam where its projected peak memory is larger",
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="per worker process, seconds"
    )
    parser.add_argument(
        "--perf", metavar="FILE", default=None, help="also perf-record lrcore on the last case"
    )
    parser.add_argument("--perf-top", type=int, default=25, help="symbols shown with --perf")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: no 784-512x3, target 10^5 regions, 300x300 grid, 1 repeat",
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when a target is missed"
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.cases = args.cases or QUICK_CASES
        args.target_regions = min(args.target_regions, 100_000)
        args.grid_resolution = min(args.grid_resolution, 300)
        args.repeat = 1
    args.cases = args.cases or list(CASES)
    if args.threads is None:
        args.threads = available_cpus()
    if min(args.threads, args.repeat, args.target_regions, args.grid_resolution) < 1:
        parser.error(
            "--threads, --repeat, --target-regions and --grid-resolution must be positive"
        )
    try:
        args.box = parse_box(args.box)
    except argparse.ArgumentTypeError as err:
        parser.error(str(err))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv_list = list(sys.argv[1:] if argv is None else argv)
    if "--worker" in argv_list:
        return worker_main(argv_list[argv_list.index("--worker") + 1])
    args = parse_args(argv_list)
    command = reproduce_command("benchmarks/bench_2d.py", argv_list, args.threads)
    regioncam_memory: list[tuple[int, int, float]] = []
    results = [benchmark_case(CASES[name], args, regioncam_memory) for name in args.cases]
    missed = report(results, args, command)
    if args.perf and results:
        profile(results[-1], args)
    return 1 if (missed and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
