"""Benchmark the cost of certified sign decisions (docs/numerics.md §4, §5, §9) on conv nets.

For each case, one run of ``count_1d`` per setting, in the same process (same machine
load): breakpoints, time, ``slow_decisions``, ``exact_coincidences`` and
``uncertified_decisions``. The settings are ``rtol=1e-10`` (the old zero tolerance), the
certified default (budget ``lrcore.DEFAULT_MAX_SLOW_DECISIONS``) and, unless
``--no-unbounded``, ``max_slow_decisions=None`` (every sign certified). Cases:

- ``resnet18``: :func:`lrcore.zoo.resnet18` (``--width``, 16 by default; its BatchNorm
  randomised by :func:`lrcore.zoo.randomise_batchnorm`), 3×32×32, the segment ``x0 -> x0 + 0.005 N(0,
  I)`` (seed 0), as in issue 16;
- ``lenet5``: the LeNet-5 of ``tests/test_maxpool.py`` (max-pooling tournaments) on its
  stretch of the segment between two uniform images;
- ``conv12``: the 12-layer 16-channel conv net with BatchNorm of docs/numerics.md §5
  (3×16×16, the same kind of segment).

It prints a markdown table and the command that reproduces it; it is not a test.

Examples
--------
All cases (about a minute on 2 shared cores, more with the unbounded ResNet run)::

    python benchmarks/bench_certify.py

One case::

    python benchmarks/bench_certify.py --cases lenet5

The stretch ``[0, 0.02]`` of issue 16's width-64 segment (docs/numerics.md §4; set
``LRCORE_CERT_STATS=1`` for the slow path's passes, layers and work on stderr)::

    python benchmarks/bench_certify.py --cases resnet18 --width 64 --stretch 0.02 \
        --settings rtol,default

Issue 16's headline case, compared with tests/torch_walk.py's walk (the walk takes about
3 minutes, the certified run at width 64 over half an hour on 2 shared cores)::

    python benchmarks/bench_certify.py --cases resnet18 --width 64 --settings rtol,default \
        --compare-walk --walk-cache walk64.npz
"""

from __future__ import annotations

import argparse
import resource
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import lrcore
from _common import markdown_table, print_header, progress
from lrcore import zoo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from torch_walk import PreActivations, float64_copy, pre_activations, walk_segment


def resnet18_model(width: int) -> tuple[Any, np.ndarray]:
    """Issue 16's ResNet-18 (torch) and segment."""
    model = zoo.resnet18(width=width, seed=0)  # BatchNorm randomised (seed 0)
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(3072)
    return model, np.stack([x0, x0 + 0.005 * rng.standard_normal(3072)])


def resnet18(width: int, stretch: float = 1.0) -> tuple[lrcore.Network, np.ndarray]:
    """Issue 16's ResNet-18 and segment (its stretch ``[0, stretch]``)."""
    model, path = resnet18_model(width)
    if stretch != 1.0:
        path = np.stack([path[0], path[0] + stretch * (path[1] - path[0])])
    return lrcore.from_torch(model, (3, 32, 32)), path


def lenet5() -> tuple[lrcore.Network, np.ndarray]:
    """tests/test_maxpool.py's LeNet-5 (float64, biases in [-0.3, 0.3]) and stretch."""
    # zoo's LeNet-5 has the test's layers: drawn again as the test's `sequential` does.
    model = zoo.lenet5().double().eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for layer in model:
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()
            if getattr(layer, "bias", None) is not None:
                layer.bias.uniform_(-0.3, 0.3)
    net = lrcore.Network.from_torch(model, input_shape=(1, 28, 28))
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0, 1, 784), rng.uniform(0, 1, 784)
    return net, np.stack([a, a + 0.05 * (b - a)])


def conv12() -> tuple[lrcore.Network, np.ndarray]:
    """docs/numerics.md §5's 12-layer 16-channel conv net with BatchNorm."""
    torch.manual_seed(0)
    layers: list[Any] = []
    c_in = 3
    for _ in range(12):
        layers += [nn.Conv2d(c_in, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU()]
        c_in = 16
    layers += [nn.Flatten(), nn.Linear(16 * 16 * 16, 10)]
    model = nn.Sequential(*layers).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                m.running_var.copy_(0.2 + 1.8 * torch.rand(n, generator=gen))
                m.weight.copy_(0.5 + torch.rand(n, generator=gen))
                m.bias.copy_(0.4 * torch.rand(n, generator=gen) - 0.2)
    net = lrcore.from_torch(model, (3, 16, 16))
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(768)
    return net, np.stack([x0, x0 + 0.005 * rng.standard_normal(768)])


def peak_rss_gb() -> float:
    """Peak resident set of this process so far (GB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9


def run(
    net: lrcore.Network, path: np.ndarray, positions: dict[str, Any], name: str, **kwargs: Any
) -> list[str]:
    """One count_1d call: its row of the table (its positions go to ``positions``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lrcore.CertificationWarning)
        start = time.perf_counter()
        r = lrcore.count_1d(net, path, num_threads=1, **kwargs)
        elapsed = time.perf_counter() - start
    assert isinstance(r, lrcore.PathResult)
    positions[name] = (np.asarray(r.breakpoints) / r.length, np.asarray(r.neurons))
    certified = r.rtol is None
    return [
        str(r.num_breakpoints),
        f"{elapsed:.3g} s",
        str(r.slow_decisions) if certified else "-",
        str(r.exact_coincidences) if certified else "-",
        str(r.uncertified_decisions) if certified else "-",
        f"{peak_rss_gb():.2f} GB",
    ]


def torch_walk(width: int, cache: Path | None) -> tuple[np.ndarray, list[np.ndarray], float]:
    """tests/torch_walk.py's walk on issue 16's segment (fractions, flipped neurons, s).

    With ``cache`` an existing file is loaded instead (the walk takes minutes at width 64).
    """
    if cache is not None and cache.exists():
        data = np.load(cache, allow_pickle=True)
        return data["positions"], list(data["neurons"]), float(data["seconds"])
    model, path = resnet18_model(width)
    start = time.perf_counter()
    walk = walk_segment(float64_copy(model), (3, 32, 32), path[0], path[1])
    seconds = time.perf_counter() - start
    if cache is not None:
        neurons = np.empty(len(walk.neurons), dtype=object)
        neurons[:] = walk.neurons
        np.savez(cache, positions=walk.positions, neurons=neurons, seconds=seconds)
    return walk.positions, walk.neurons, seconds


def match(a: np.ndarray, b: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of ``a`` and of ``b`` (both sorted) with no partner within ``tol``."""
    i = j = 0
    left, right = [], []
    while i < len(a) and j < len(b):
        if abs(a[i] - b[j]) <= tol:
            i += 1
            j += 1
        elif a[i] < b[j]:
            left.append(i)
            i += 1
        else:
            right.append(j)
            j += 1
    left += range(i, len(a))
    right += range(j, len(b))
    return np.asarray(left, dtype=np.int64), np.asarray(right, dtype=np.int64)


def judge(width: int, t: float, delta: float, sizes: list[int]) -> str:
    """Is there a breakpoint at fraction ``t``? The patterns at ``t -+ delta``, two ways.

    float64: the torch float64 forward pass at the two points (tests/torch_walk.py).
    Margin: the flipping neurons' pre-activations there, against a rounding bound — the
    same pass at float32 differs from float64 by ``e32``; float64's own error is then
    below ``e32 * 2**-29`` (the unit roundoffs' ratio) times a safety factor of 16, so
    a sign with ``|value| > 16 * e32 * 2**-29`` is certain.
    """
    model, path = resnet18_model(width)
    m64 = float64_copy(model)
    d = path[1] - path[0]
    points = np.stack([path[0] + (t - delta) * d, path[0] + (t + delta) * d])
    v64 = pre_activations(m64, (3, 32, 32), points)
    x32 = torch.as_tensor(points.astype(np.float32)).reshape(-1, 3, 32, 32)
    with torch.no_grad(), PreActivations() as mode:
        model.float()(x32)
    v32 = torch.cat([v.reshape(2, -1) for v in mode.values], dim=1).double().numpy()
    flipped = np.flatnonzero((v64[0] > 0) != (v64[1] > 0))
    bound = 16 * float(np.max(np.abs(v64 - v32), axis=None)) * 2.0**-29
    if len(flipped) == 0:
        return "no pattern change within ±delta (float64)"
    offsets = np.cumsum([0, *sizes])
    names = [
        f"({layer}, {k - offsets[layer]})"
        for k in flipped
        for layer in [int(np.searchsorted(offsets, k, side="right")) - 1]
    ]
    margins = np.min(np.abs(v64[:, flipped]), axis=0)
    certain = bool(np.all(margins > bound))
    return (
        f"pattern changes (float64): neurons (layer, unit) {', '.join(names)}, "
        f"min |value| {margins.min():.3g} vs bound {bound:.3g} "
        f"({'certain' if certain else 'NOT certain'})"
    )


def compare_walk(
    width: int, positions: dict[str, Any], cache: Path | None, tol: float, delta: float
) -> None:
    """Match each setting's breakpoints to the torch walk's; judge the unmatched ones."""
    progress("torch walk ...")
    walk, _, seconds = torch_walk(width, cache)
    sizes = resnet18(width)[0].hidden_sizes
    print(f"\ntorch walk (float64, tests/torch_walk.py): {len(walk)} breakpoints, {seconds:.3g} s")
    for name, (mine, _) in positions.items():
        only_mine, only_walk = match(mine, walk, tol)
        print(
            f"\n{name}: {len(mine)} breakpoints; {len(mine) - len(only_mine)} matched "
            f"within {tol:g} of the segment; {len(only_mine)} only here, "
            f"{len(only_walk)} only in the walk"
        )
        for label, ts in (("only here", mine[only_mine]), ("only walk", walk[only_walk])):
            for t in ts:
                print(f"  {label} t={t:.12f}: {judge(width, float(t), delta, sizes)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="resnet18,lenet5,conv12")
    parser.add_argument("--width", type=int, default=16, help="ResNet-18 width")
    parser.add_argument(
        "--stretch",
        type=float,
        default=1.0,
        help="resnet18: only the stretch [0, STRETCH] of the segment (e.g. 0.02)",
    )
    parser.add_argument(
        "--no-unbounded", action="store_true", help="skip max_slow_decisions=None on ResNet-18"
    )
    parser.add_argument(
        "--max-slow-work",
        type=float,
        default=None,
        help="the default setting's max_slow_work (default: lrcore.DEFAULT_MAX_SLOW_WORK)",
    )
    parser.add_argument(
        "--settings",
        default="rtol,default,unbounded",
        help="which of rtol, default, unbounded to run (comma-separated)",
    )
    parser.add_argument(
        "--compare-walk",
        action="store_true",
        help="resnet18: match breakpoints to tests/torch_walk.py's walk, judge the rest",
    )
    parser.add_argument("--walk-cache", type=Path, help="npz file for the walk's result")
    parser.add_argument(
        "--positions",
        type=Path,
        help="npz file: ResNet-18 breakpoints of earlier runs are loaded from it (settings "
        "not run now; for --compare-walk) and this run's are added to it",
    )
    parser.add_argument("--match-tol", type=float, default=1e-7, help="fraction of the segment")
    parser.add_argument("--delta", type=float, default=1e-9, help="fraction of the segment")
    args = parser.parse_args()
    if args.compare_walk and args.stretch != 1.0:
        parser.error("--compare-walk needs the whole segment (no --stretch)")
    print_header("certified sign decisions on conv nets")
    builders = {
        "resnet18": lambda: resnet18(args.width, args.stretch),
        "lenet5": lenet5,
        "conv12": conv12,
    }
    rows = []
    chosen = args.settings.split(",")
    positions: dict[str, Any] = {}
    resnet_positions: dict[str, Any] = {}
    for case in args.cases.split(","):
        progress(f"{case} ...")
        net, path = builders[case]()
        settings: list[tuple[str, dict[str, Any]]] = []
        if "rtol" in chosen:
            settings.append(("rtol=1e-10", {"rtol": 1e-10}))
        if "default" in chosen:
            if args.max_slow_work is None:
                settings.append(("certified, default budget", {}))
            else:
                settings.append(
                    (
                        f"certified, max_slow_work={args.max_slow_work:g}",
                        {"max_slow_work": args.max_slow_work},
                    )
                )
        if "unbounded" in chosen and not (case == "resnet18" and args.no_unbounded):
            settings.append(
                ("certified, no budget", {"max_slow_decisions": None, "max_slow_work": None})
            )
        for name, kwargs in settings:
            progress(f"  {name} ...")
            rows.append([case, name, *run(net, path, positions, name, **kwargs)])
        if case == "resnet18":
            resnet_positions = dict(positions)
        positions.clear()
    print(
        markdown_table(
            [
                "case",
                "setting",
                "breakpoints",
                "time",
                "slow",
                "coincidences",
                "uncertified",
                "peak RSS so far",
            ],
            rows,
        )
    )
    if args.positions is not None:
        saved: dict[str, Any] = {}
        if args.positions.exists():
            data = np.load(args.positions)
            saved = {k: (data[k], data[k + " neurons"]) for k in data if not k.endswith("neurons")}
        saved.update(resnet_positions)
        resnet_positions = saved
        arrays = {k: v[0] for k, v in saved.items()}
        arrays.update({k + " neurons": v[1] for k, v in saved.items()})
        np.savez(args.positions, **arrays)  # type: ignore[arg-type]
    if args.compare_walk:
        compare_walk(args.width, resnet_positions, args.walk_cache, args.match_tol, args.delta)
    print()
    print("Reproduce with: " + shlex.join(["python", *sys.argv]))


if __name__ == "__main__":
    main()
