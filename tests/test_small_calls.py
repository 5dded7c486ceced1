"""Small calls (issue 17): thread threshold, memory probe, one-pass checks, results.

The thread threshold, the cached memory probe, the one-pass checks of count_1d and the
single-path results change no result.
"""

from __future__ import annotations

import numpy as np
import pytest

import lrcore
from lrcore import _core, _validation
from support import random_net, random_path
from test_inputs import same_result
from test_slice2d_inputs import same_slice

NET = random_net([3, 24, 24, 1], seed=90).to_lrcore()
PATHS = [random_path(3, int(n), seed=91 + i) for i, n in enumerate([2, 5, 9, 30, 3, 12, 2, 2])]
PLANES = [lrcore.Plane.through(*random_path(3, 3, seed=100 + i)) for i in range(4)]


@pytest.fixture
def share_threshold():
    """Set the core's thread threshold inside a test, restored after it."""
    before = _core._share_threshold_seconds()
    yield _core._set_share_threshold_seconds
    _core._set_share_threshold_seconds(before)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_thread_threshold_changes_no_result(share_threshold, threads):
    # 0: every call shares its tasks at once; 1e9: none starts a thread.
    runs = {}
    for threshold in (0.0, 1e9):
        share_threshold(threshold)
        runs[threshold] = (
            lrcore.count_1d(NET, PATHS, return_patterns=True, num_threads=threads),
            lrcore.slice_2d(NET, PLANES, bounds=(-1, 2, -1, 2), num_threads=threads),
            lrcore.slice_2d(NET, PLANES[0], bounds=(-1, 2, -1, 2), tiles=3, num_threads=threads),
        )
    (paths_a, slices_a, tiled_a), (paths_b, slices_b, tiled_b) = runs.values()
    for a, b in zip(paths_a, paths_b):
        same_result(a, b)
    np.testing.assert_array_equal(paths_a.vertices_per_layer, paths_b.vertices_per_layer)
    for a, b in zip(slices_a, slices_b):
        same_slice(a, b)
    same_slice(tiled_a, tiled_b)
    assert tiled_a.tiles == 3


def test_errors_in_tasks_reach_the_caller_with_or_without_threads(share_threshold):
    for threshold in (0.0, 1e9):
        share_threshold(threshold)
        with pytest.raises(lrcore.LimitExceeded):
            lrcore.count_1d(NET, PATHS * 8, max_pieces=5, num_threads=2)


def test_single_path_result_equals_the_batch_entry():
    for i, path in enumerate(PATHS):
        for closed in (False, True):
            alone = lrcore.count_1d(NET, path, closed=closed, return_patterns=True)
            batch = lrcore.count_1d(NET, [path], closed=closed, return_patterns=True)
            same_result(alone, batch[0])
            assert alone.num_neurons == batch[0].num_neurons
            assert alone.points is path or np.array_equal(alone.points, path), i
            assert alone.verify().ok


def test_memory_probe_is_cached_and_explicit_caps_are_honoured(monkeypatch):
    reads = []

    def probe():
        reads.append(1)
        return 1e9

    monkeypatch.setattr(_validation, "available_memory", probe)
    monkeypatch.setattr(_validation, "_memory_probe", None)
    assert _validation.check_max_memory(None) == _validation.MEMORY_SHARE * 1e9
    assert _validation.check_max_memory(None) == _validation.MEMORY_SHARE * 1e9
    assert len(reads) == 1
    # An explicit cap never reads the probe and is passed on as given.
    assert _validation.check_max_memory(12345.0) == 12345.0
    assert len(reads) == 1
    # A reading older than MEMORY_PROBE_SECONDS is taken again.
    stamp, value = _validation._memory_probe
    monkeypatch.setattr(
        _validation, "_memory_probe", (stamp - 2 * _validation.MEMORY_PROBE_SECONDS, value)
    )
    _validation.check_max_memory(None)
    assert len(reads) == 2
    # An explicit max_memory still stops a call, however the default was cached.
    with pytest.raises(lrcore.LimitExceeded, match="max_memory"):
        lrcore.count_1d(NET, PATHS * 20, max_memory=1000.0)
    lrcore.count_1d(NET, PATHS, max_memory=None)


@pytest.mark.parametrize("sizes", [[3, 5, 1], [3, 24, 24, 1], [3, 8, 8, 8, 2]])
def test_uniform_input_limit_is_a_safe_bound(sizes):
    net = random_net(sizes, seed=110).to_lrcore()
    limit = _validation.uniform_input_limit(net)
    assert 0 < limit <= _validation.MAX_MAGNITUDE
    # Inputs at the limit pass the exact bound; a bound a little above it on every
    # coordinate fails it (the limit is the uniform bound's, up to rounding).
    ones = np.ones(net.input_dim)
    assert _validation.magnitude_bound(net, limit * ones) <= _validation.MAX_MAGNITUDE
    assert not _validation.magnitude_bound(net, 1.001 * limit * ones) <= _validation.MAX_MAGNITUDE


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.nan, "path\\[2\\]: contains 1 NaN"),
        (np.inf, "path\\[2\\]: contains 1 NaN"),
        (1e151, "path\\[2\\]: the network's values there could reach"),
    ],
)
def test_one_pass_checks_name_the_first_bad_path(bad, match):
    paths = [p.copy() for p in PATHS]
    paths[2][1, 0] = bad
    paths[5][0, 1] = bad
    with pytest.raises(ValueError, match=match):
        lrcore.count_1d(NET, paths)


def test_one_pass_checks_find_short_segments_inside_paths_only():
    # A path ending where the next begins is fine; a too short step inside one is not.
    first = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    second = first + np.array([0.0, 0.0, 1e-200])
    lrcore.count_1d(NET, [first, second])
    short = np.array([[0.0, 0.0, 0.0], [1e-200, 0.0, 0.0], [1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="path\\[1\\]: segment 0 is 1e-200 long"):
        lrcore.count_1d(NET, [first, short])
    repeated = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    lrcore.count_1d(NET, [first, repeated])


@pytest.mark.parametrize("sizes", [[2, 3, 1], [2, 8, 1], [2, 4, 4, 1], [2, 6, 5, 2]])
@pytest.mark.parametrize("spare", [1, 2, 8])
def test_small_nets_skip_the_probes_with_the_same_tiles(monkeypatch, sizes, spare):
    from lrcore import _tiling

    net = random_net(sizes, seed=120).to_lrcore()
    plane = lrcore.Plane(np.zeros(2), np.eye(2))
    poly = np.array([[-5.0, -5.0], [5.0, -5.0], [5.0, 5.0], [-5.0, 5.0]])
    width = max(net.layer_widths)
    skipped = _tiling._one_tile_for_sure(net, width, spare)
    fast = _tiling.tile_cuts("auto", net, plane, poly, 1e-10, 8, spare)
    monkeypatch.setattr(_tiling, "_one_tile_for_sure", lambda *args: False)
    probed = _tiling.tile_cuts("auto", net, plane, poly, 1e-10, 8, spare)
    np.testing.assert_array_equal(fast, probed)
    assert skipped == (np.prod([(1 + n) ** 2 for n in net.hidden_sizes]) <= 2 * 1500 or spare <= 1)


@pytest.mark.parametrize("sizes", [[2, 3, 1], [2, 8, 1], [2, 4, 4, 1], [2, 6, 5, 2]])
def test_a_line_meets_at_most_the_product_of_one_plus_widths_pieces(sizes):
    # The bound _one_tile_for_sure rests on, against exact counts on long lines.
    net = random_net(sizes, seed=130).to_lrcore()
    rng = np.random.default_rng(131)
    lines = [np.stack([c - 50 * u, c + 50 * u]) for c, u in rng.standard_normal((40, 2, 2))]
    pieces = lrcore.count_1d(net, lines).num_pieces
    assert pieces.max() <= np.prod([1 + n for n in net.hidden_sizes])


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.nan, "path\\[1\\]: contains 1 NaN"),
        (-np.inf, "path\\[1\\]: contains 1 NaN"),
        (-1e151, "path\\[1\\]: the network's values there could reach"),
        (1e-200, "path\\[1\\]: segment 0 is 1e-200 long"),
    ],
)
def test_small_batches_checked_in_python_give_the_same_errors(bad, match):
    from lrcore import path1d

    first = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    second = np.array([[0.0, 0.0, 0.0], [bad, 0.0, 0.0], [1.0, 1.0, 1.0]])
    assert first.size + second.size <= path1d.SMALL_PATHS
    with pytest.raises(ValueError, match=match):
        lrcore.count_1d(NET, [first, second])
    with pytest.raises(ValueError, match=match.replace("\\[1\\]", "")):
        lrcore.count_1d(NET, second)
    # The same values in a batch too large for the plain-Python check.
    with pytest.raises(ValueError, match=match):
        lrcore.count_1d(NET, [first, second, *[first] * path1d.SMALL_PATHS])


def _extent_by_numpy(paths):
    values = np.concatenate(paths)
    peak = float(np.abs(values).max()) if np.isfinite(values).all() else np.nan
    steps = np.concatenate([np.abs(np.diff(p, axis=0)).max(axis=1) for p in paths])
    nonzero = steps[steps > 0]
    return peak, float(nonzero.min()) if nonzero.size else np.inf


@pytest.mark.parametrize("seed", range(6))
def test_core_path_extent_equals_numpy(seed):
    from lrcore._corecalls import core_path_extent

    rng = np.random.default_rng(seed)
    paths = [
        rng.standard_normal((int(n), 5)) * 10.0 ** rng.integers(-160, 160)
        for n in rng.integers(3, 9, 7)
    ]
    paths[1][2] = paths[1][1]  # a repeated point: no step
    paths[3][1] = paths[3][0] + 1e-155  # a tiny step
    if seed % 3 == 1:
        paths[seed][0, 1] = np.nan
    if seed % 3 == 2:
        paths[seed][-1, 4] = -np.inf
    peak, shortest = core_path_extent(paths=paths)
    want_peak, want_shortest = _extent_by_numpy(paths)
    if np.isnan(want_peak):
        assert np.isnan(peak)
    else:
        assert peak == want_peak
        assert shortest == want_shortest
    assert core_path_extent(paths=[np.zeros((3, 2))]) == (0.0, np.inf)
