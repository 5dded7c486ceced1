"""Position slack of verify() against the values, per layer, on a CIFAR CNN.

For bench_cnn's segment (``x0 ~ N(0, I)``, ``x1 = x0 + radius N(0, I)``, seed 0) prints,
per hidden layer, the median over neurons of the position slack ``slack_j`` of
:class:`lrcore._verify._Evaluator` (componentwise ``|W|`` propagation, the old one, and
the operator-norm one, docs/design.md §7) and the median ``|z_j|`` at ``x0``; with
``--time`` also the count's and verify's times, old slack and new, in the same run.

    nice python benchmarks/verify_slack.py --width 16 [--model vgg11] [--time]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import lrcore
from lrcore import _verify, zoo

SHAPE = (3, 32, 32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["resnet18", "vgg11"], default="resnet18")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--radius", type=float, default=0.005)
    parser.add_argument("--rtol", type=float, default=1e-10)
    parser.add_argument("--time", action="store_true", help="count and verify, old and new")
    args = parser.parse_args()
    model = (zoo.vgg11 if args.model == "vgg11" else zoo.resnet18)(width=args.width, seed=0)
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal(3072)
    x1 = x0 + args.radius * rng.standard_normal(3072)
    net = lrcore.from_torch(model, SHAPE)
    points = np.stack([x0, x1])
    direction = np.abs(x1 - x0) / np.linalg.norm(x1 - x0)
    spread = _verify._POSITION_ULPS * (
        np.abs(points).max(axis=0) + np.linalg.norm(x1 - x0) * direction
    )
    ev = _verify._Evaluator(net, spread)
    values = net._core.pre_activations(x0[None, :])
    print(f"{args.model} width {args.width}: median over neurons per layer")
    print(f"{'layer':>5} {'|z| median':>11} {'old slack':>11} {'new slack':>11} {'old/new':>8}")
    for layer, n in enumerate(net.hidden_sizes):
        lo = int(ev.offsets[layer])
        z = float(np.median(np.abs(values[layer][0, :n])))
        old = float(np.median(ev.old_slack[lo : lo + n]))
        new = float(np.median(ev.slack[lo : lo + n]))
        print(f"{layer:>5} {z:>11.3g} {old:>11.3g} {new:>11.3g} {old / new:>8.3g}")
    if not args.time:
        return
    start = time.perf_counter()
    result = lrcore.count_1d(net, points, rtol=args.rtol)
    print(f"count_1d {time.perf_counter() - start:.1f} s, {result.num_breakpoints} breakpoints")
    new_slacks = _verify._Evaluator._slacks

    def old_slacks(self: _verify._Evaluator, spread: np.ndarray) -> tuple:
        _, out, norms, old = new_slacks(self, spread)
        return old, out, norms, old

    for name, fn in (("old", old_slacks), ("new", new_slacks)):
        _verify._Evaluator._slacks = fn  # type: ignore[method-assign]
        start = time.perf_counter()
        report = result.verify(raise_on_error=False)
        took = time.perf_counter() - start
        print(
            f"verify ({name} slack) {took:.1f} s, ok={bool(report)}, problems={report.num_problems}"
        )
    _verify._Evaluator._slacks = new_slacks  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
