"""Concurrent calls from Python threads and the core's thread count change no result."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import lrcore
from support import random_net, random_path
from test_inputs import same_result
from test_slice2d_inputs import same_slice

NET = random_net([3, 24, 24, 1], seed=60).to_lrcore()
PATHS = [random_path(3, int(n), seed=61 + i) for i, n in enumerate([2, 5, 9, 30, 3, 12])]
PLANES = [lrcore.Plane.through(*random_path(3, 3, seed=70 + i)) for i in range(6)]


def one_path(i: int, threads: int | None = None) -> lrcore.PathResult:
    return lrcore.count_1d(
        NET, PATHS[i % len(PATHS)], closed=bool(i % 2), return_patterns=True, num_threads=threads
    )


def one_slice(i: int, threads: int | None = None) -> lrcore.SliceResult:
    return lrcore.slice_2d(
        NET, PLANES[i % len(PLANES)], bounds=(-1, 2, -1, 2), num_threads=threads
    )


def test_concurrent_calls_equal_sequential_ones():
    jobs = list(range(24))
    sequential_paths = [one_path(i) for i in jobs]
    sequential_slices = [one_slice(i) for i in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        paths = list(pool.map(one_path, jobs))
        slices = list(pool.map(one_slice, jobs))
        mixed = list(pool.map(lambda i: one_path(i) if i % 2 else one_slice(i), jobs))
    for a, b in zip(paths, sequential_paths):
        same_result(a, b)
    for a, b in zip(slices, sequential_slices):
        same_slice(a, b)
    for i, got in enumerate(mixed):
        if i % 2:
            same_result(got, sequential_paths[i])
        else:
            same_slice(got, sequential_slices[i])
    assert paths[3].verify().ok


@pytest.mark.parametrize("threads", [2, 3])
def test_results_do_not_depend_on_the_thread_count(threads):
    one = lrcore.count_1d(NET, PATHS, return_patterns=True, num_threads=1)
    many = lrcore.count_1d(NET, PATHS, return_patterns=True, num_threads=threads)
    for a, b in zip(one, many):
        same_result(a, b)
    np.testing.assert_array_equal(one.vertices_per_layer, many.vertices_per_layer)
    for a, b in zip(
        lrcore.slice_2d(NET, PLANES, num_threads=1),
        lrcore.slice_2d(NET, PLANES, num_threads=threads),
    ):
        same_slice(a, b)


_BLAS_PROBE = """
import json, os
from threadpoolctl import threadpool_info
import numpy
before = {i["filepath"]: i["num_threads"] for i in threadpool_info()}
tasks = len(os.listdir("/proc/self/task"))
import lrcore
tasks = len(os.listdir("/proc/self/task")) - tasks
after = {i["filepath"]: i["num_threads"] for i in threadpool_info()}
print(json.dumps([os.environ.get("OPENBLAS_NUM_THREADS"), tasks, before, after]))
"""


@pytest.mark.parametrize("setting", [None, "2"])
def test_import_loads_the_core_blas_single_threaded_and_restores_the_setting(setting):
    """The core's OpenBLAS gets no thread pool; the environment and numpy's BLAS keep theirs."""
    pytest.importorskip("threadpoolctl")
    if not os.path.isdir("/proc/self/task"):
        pytest.skip("counts threads in /proc (Linux)")
    import json
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if setting is not None:
        env["OPENBLAS_NUM_THREADS"] = setting
    out = subprocess.run(
        [sys.executable, "-c", _BLAS_PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout
    variable, started, before, after = json.loads(out.strip().splitlines()[-1])
    assert variable == setting
    assert started == 0, f"importing lrcore started {started} threads"
    new = {path: n for path, n in after.items() if path not in before}
    assert new, "lrcore's OpenBLAS should be a library of its own"
    assert all(n == 1 for n in new.values()), new
    assert all(after[path] == n for path, n in before.items()), (before, after)
