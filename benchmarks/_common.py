"""Helpers shared by the benchmark scripts (machine description, timing, tables).

The scripts run as ``python benchmarks/<script>.py``, which puts this directory on
``sys.path``; they import these helpers with ``from _common import ...``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shlex
import sys
import time
from collections.abc import Iterator, Sequence
from typing import Any, Callable

import numpy as np

# Seconds to wait after numpy's BLAS ran on several threads before timing anything else:
# OpenBLAS's helper threads busy-wait about 50 ms (2^28 cycles) after a product before
# they sleep (measured: 0.05 s of CPU in the 0.5 s after a 2-thread 512^3 matmul).
BLAS_SETTLE_SECONDS = 0.2

# --------------------------------------------------------------------------- machine


def cpu_model() -> str:
    """Return a human-readable CPU model name."""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def available_cpus() -> int:
    """Number of logical CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def numpy_blas_description() -> str:
    """Describe numpy's BLAS (via threadpoolctl when installed)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl not installed)"
    numpy_dir = os.path.dirname(np.__file__)
    entries = []
    for info in threadpool_info():
        if info.get("user_api") != "blas":
            continue
        in_numpy = os.path.dirname(info["filepath"]).startswith(numpy_dir)
        owner = "numpy" if in_numpy else os.path.basename(info["filepath"])
        entries.append(
            f"{owner}: {info.get('internal_api')} {info.get('version')} "
            f"({info.get('architecture')}, {info.get('num_threads')} threads)"
        )
    return "; ".join(entries) if entries else "none found"


@contextlib.contextmanager
def numpy_blas_threads(num_threads: int) -> Iterator[bool]:
    """Limit the threads of numpy's BLAS (only numpy's, not lrcore's) inside the block.

    Yields True when the limit could be applied (threadpoolctl installed).

    On leaving a block that allowed several threads it waits
    ``BLAS_SETTLE_SECONDS``: OpenBLAS's helper threads spin (busy-wait) for a while
    after each multi-threaded product before they sleep, and on a small machine that
    spin takes a core from whatever is timed next (seen as ``blas_thread_server`` in
    numpy's OpenBLAS, up to 9% of a profile of lrcore on one thread).
    """
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        yield False
        return
    controller = ThreadpoolController()
    numpy_dir = os.path.dirname(np.__file__)
    numpy_libs = [
        lib.filepath
        for lib in controller.lib_controllers
        if lib.user_api == "blas" and os.path.dirname(lib.filepath).startswith(numpy_dir)
    ]
    selected = controller.select(filepath=numpy_libs) if numpy_libs else controller
    try:
        with selected.limit(limits=num_threads, user_api="blas"):
            yield True
    finally:
        if num_threads > 1:
            time.sleep(BLAS_SETTLE_SECONDS)


def load_average() -> str | None:
    """The 1, 5 and 15 minute load averages, formatted, or None where unavailable."""
    if not hasattr(os, "getloadavg"):
        return None
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def regioncam_version() -> str:
    """regioncam's version, or "not installed"."""
    try:
        import regioncam
    except ImportError:
        return "not installed"
    return str(getattr(regioncam, "__version__", "installed"))


# --------------------------------------------------------------------------- timing and output


def time_best(function: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall time of several calls, and the last call's value."""
    best = np.inf
    value = None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        best = min(best, time.perf_counter() - start)
    return best, value


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def format_seconds(seconds: float) -> str:
    return f"{seconds:.3g}"


def reproduce_command(script: str, argv: Sequence[str], threads: int) -> str:
    """The shell command that reruns ``script`` with ``argv``, the thread count made explicit."""
    argv_list = list(argv)
    command = shlex.join(["python", script, *argv_list])
    if "--threads" not in " ".join(argv_list):
        command += f" --threads {threads}"
    return command


def print_targets(lines: Sequence[tuple[bool, str]], command: str) -> list[str]:
    """Print the target checklist and the reproducing command; return the missed targets."""
    missed = []
    print("### targets")
    print()
    for ok, text in lines:
        print(f"- [{'x' if ok else ' '}] {'met' if ok else 'MISSED'}: {text}")
        if not ok:
            missed.append(text)
    print()
    print("Reproduce with:")
    print()
    print(f"    {command}")
    return missed


def print_header(title: str) -> None:
    """The common head of a benchmark report: title, date, CPU and load."""
    import datetime

    print(f"## {title}")
    print()
    print(f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"- CPU: {cpu_model()}; {available_cpus()} logical CPUs available")
    load = load_average()
    if load is not None:
        print(f"- load average at the end (1, 5, 15 min): {load} (other work skews timings)")


def segment_benchmark_parser(
    doc: str, networks: Sequence[str], repeat: int
) -> argparse.ArgumentParser:
    """The options the segment benchmarks share.

    Segments, threads, seed, repeat, nets, quick and strict; each script adds its own
    baselines' options.
    """
    parser = argparse.ArgumentParser(
        description=doc.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--segments", type=int, default=1000, help="segments per network")
    parser.add_argument(
        "--threads", type=int, default=None, help="threads (default: all available CPUs)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=repeat, help="lrcore timing: best of N")
    parser.add_argument(
        "--nets", nargs="+", choices=sorted(networks), default=list(networks), help="networks"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: few segments, small subsets"
    )
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when a target is missed"
    )
    return parser
