"""Certified slice_2d against rtol=1e-10 on one bench_2d case, alternated in one process.

For each call: wall and CPU time, system time, minor page faults (``getrusage``), the
peak RSS over the RSS before the call (``VmHWM``, reset through /proc/self/clear_refs
before each call) and the huge pages the system faulted in meanwhile (/proc/vmstat's
``thp_fault_alloc``, system-wide: other processes count too). Then the best wall time,
CPU time, minor faults and peak of each mode, and the certified cost over rtol=1e-10.
Linux only. Ratios of calls in the same process are what to compare on a shared machine
(docs/numerics.md §6, "Memory is the cost at a million regions").

Examples
--------
bench_2d's settings on its largest case (tiles="auto", 2 threads, best of 3)::

    python benchmarks/bench_2d_pair.py --sizes 784 512 512 512 10 --box 8

One tile and one thread::

    python benchmarks/bench_2d_pair.py --box 2 --tiles 1 --threads 1 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import warnings
from typing import Any

import lrcore
from bench_2d import build_case


def status_kb(key: str) -> int:
    with open("/proc/self/status") as f:
        return int(f.read().split(key + ":")[1].split()[0])


def thp_faults() -> int:
    with open("/proc/vmstat") as f:
        return int(f.read().split("thp_fault_alloc ")[1].split()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[784, 512, 512, 512, 10])
    parser.add_argument("--box", type=float, default=8.0, help="the box [-B, B]^2")
    parser.add_argument("--tiles", default="auto", help='"auto" or a number')
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = args.sizes
    plane = "gaussian" if sizes[0] > 2 else "input"
    box = [-args.box, args.box, -args.box, args.box]
    net, pl, bounds = build_case({"sizes": sizes, "seed": 0, "plane": plane, "bounds": box})
    tiles: int | str = args.tiles if args.tiles == "auto" else int(args.tiles)
    warnings.simplefilter("ignore", lrcore.CertificationWarning)
    lrcore.slice_2d(net, pl, bounds=(-1e-4, 1e-4, -1e-4, 1e-4))  # loads everything
    best: dict[str, dict[str, float]] = {}
    for _ in range(args.repeat):
        for mode, rtol in [("rtol", 1e-10), ("certified", None)]:
            thp0 = thp_faults()
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            rss0 = status_kb("VmRSS")
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            result = lrcore.slice_2d(
                net,
                pl,
                bounds=tuple(bounds.tolist()),
                rtol=rtol,
                tiles=tiles,
                num_threads=args.threads,
                max_regions=10**8,
            )
            wall = time.perf_counter() - t0
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            row: dict[str, Any] = {
                "mode": mode,
                "regions": result.num_regions,
                "vertices": result.num_vertices,
                "tiles": result.tiles,
                "wall": round(wall, 2),
                "cpu": round(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime, 2),
                "sys": round(r1.ru_stime - r0.ru_stime, 2),
                "minflt": r1.ru_minflt - r0.ru_minflt,
                "peak_mb": round((status_kb("VmHWM") - rss0) / 1024),
                "thp": thp_faults() - thp0,
                "load": round(load, 2),
            }
            print(json.dumps(row), flush=True)
            del result
            b = best.setdefault(mode, {})
            for key in ["wall", "cpu", "minflt", "peak_mb"]:
                b[key] = min(b.get(key, float("inf")), float(row[key]))
    r, c = best["rtol"], best["certified"]
    print(
        f"best wall rtol {r['wall']:.2f} s, certified {c['wall']:.2f} s "
        f"({100 * (c['wall'] / r['wall'] - 1):+.1f}%); CPU {r['cpu']:.2f} s, {c['cpu']:.2f} s "
        f"({100 * (c['cpu'] / r['cpu'] - 1):+.1f}%); minor faults {r['minflt']:.0f}, "
        f"{c['minflt']:.0f}; peak {r['peak_mb']:.0f} MB, {c['peak_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
