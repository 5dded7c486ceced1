"""The certified slow path of ``slice_2d`` on a VGG-11 slice (docs/numerics.md §6).

The slice of ``tests/test_maxpool.py``'s ``test_zoo_vgg11_slice_through_three_images``
(``zoo.vgg11(width=1, seed=1)`` in float64, the plane through three N(0, I) images,
``[0, 0.02]^2``), one tile and one thread, once per setting in one process: ``rtol=1e-10``,
the certified slice without the slow path (``max_slow_work=0``: only the exact zeros by
structure), with the default budget and with none. It prints regions, vertices, undecided
values, slow decisions, exact coincidences and the time; it is not a test.

Set ``LRCORE_CERT_STATS=1`` for each tile's plane passes, exact passes and work on
stderr, ``LRCORE_SLICE_REFRESH=0`` to turn the refresh of a vertex's values off.

Example::

    python benchmarks/bench_slice_slow.py
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

import lrcore
from lrcore import zoo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--box", type=float, default=0.02, help="the box [0, B]^2")
    args = parser.parse_args()
    import torch  # optional: only this benchmark needs it

    model = zoo.vgg11(width=1, seed=1).to("cpu", torch.float64)
    x0, x1, x2 = np.random.default_rng(1).standard_normal((3, 3072))
    plane = lrcore.Plane.through(x0, x1, x2)
    net = lrcore.Network.from_torch(model, input_shape=(3, 32, 32))
    box = (0.0, args.box, 0.0, args.box)
    settings: list[tuple[str, dict[str, object]]] = [
        ("rtol=1e-10", {"rtol": 1e-10}),
        ("max_slow_work=0", {"max_slow_work": 0}),
        ("default", {}),
        ("max_slow_work=None", {"max_slow_work": None}),
    ]
    print("| setting | regions | vertices | undecided | slow | coincidences | time |")
    print("|---|---|---|---|---|---|---|")
    for name, kwargs in settings:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = lrcore.slice_2d(net, plane, bounds=box, tiles=1, num_threads=1, **kwargs)  # type: ignore[arg-type]
        seconds = time.perf_counter() - start
        print(
            f"| {name} | {r.num_regions} | {r.num_vertices} | {r.uncertified_decisions} | "
            f"{r.slow_decisions} | {r.exact_coincidences} | {seconds:.3f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
