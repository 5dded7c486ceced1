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
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import warnings
from typing import Any

import numpy as np
import torch
from torch import nn

import lrcore
from _common import markdown_table, print_header, progress
from lrcore import zoo


def resnet18(width: int) -> tuple[lrcore.Network, np.ndarray]:
    """Issue 16's ResNet-18 and segment."""
    model = zoo.resnet18(width=width, seed=0)  # BatchNorm randomised (seed 0)
    net = lrcore.from_torch(model, (3, 32, 32))
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(3072)
    return net, np.stack([x0, x0 + 0.005 * rng.standard_normal(3072)])


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


def run(net: lrcore.Network, path: np.ndarray, **kwargs: Any) -> list[str]:
    """One count_1d call: its row of the table."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lrcore.CertificationWarning)
        start = time.perf_counter()
        r = lrcore.count_1d(net, path, num_threads=1, **kwargs)
        elapsed = time.perf_counter() - start
    certified = r.rtol is None
    return [
        str(r.num_breakpoints),
        f"{elapsed:.3g} s",
        str(r.slow_decisions) if certified else "-",
        str(r.exact_coincidences) if certified else "-",
        str(r.uncertified_decisions) if certified else "-",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="resnet18,lenet5,conv12")
    parser.add_argument("--width", type=int, default=16, help="ResNet-18 width")
    parser.add_argument(
        "--no-unbounded", action="store_true", help="skip max_slow_decisions=None on ResNet-18"
    )
    args = parser.parse_args()
    print_header("certified sign decisions on conv nets")
    builders = {"resnet18": lambda: resnet18(args.width), "lenet5": lenet5, "conv12": conv12}
    rows = []
    for case in args.cases.split(","):
        progress(f"{case} ...")
        net, path = builders[case]()
        settings: list[tuple[str, dict[str, Any]]] = [
            ("rtol=1e-10", {"rtol": 1e-10}),
            ("certified, default budget", {}),
        ]
        if not (case == "resnet18" and args.no_unbounded):
            settings.append(("certified, no budget", {"max_slow_decisions": None}))
        for name, kwargs in settings:
            progress(f"  {name} ...")
            rows.append([case, name, *run(net, path, **kwargs)])
    print(
        markdown_table(
            ["case", "setting", "breakpoints", "time", "slow", "coincidences", "uncertified"],
            rows,
        )
    )
    print()
    print("Reproduce with: " + shlex.join(["python", *sys.argv]))


if __name__ == "__main__":
    main()
