"""Concurrent calls from Python threads and the core's thread count change no result."""

from __future__ import annotations

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
