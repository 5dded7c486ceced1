"""count_1d input handling: dtypes, layouts, errors naming the argument, batches, threads."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lrcore
from support import nets, random_net, random_path, seeds

NET = random_net([3, 12, 12, 1], seed=20)


def same_result(a, b):
    """Exact equality of two PathResults, patterns included when both have them."""
    assert a.closed == b.closed
    assert a.length == b.length
    assert a.num_pieces == b.num_pieces
    assert a.num_distinct == b.num_distinct
    np.testing.assert_array_equal(a.breakpoints, b.breakpoints)
    np.testing.assert_array_equal(a.segment, b.segment)
    np.testing.assert_array_equal(a.flip_offsets, b.flip_offsets)
    np.testing.assert_array_equal(a.flip_neurons, b.flip_neurons)
    if a.patterns is not None or b.patterns is not None:
        np.testing.assert_array_equal(a.patterns, b.patterns)


# --- Accepted layouts and dtypes ------------------------------------------------------


def test_integer_paths_equal_float_paths():
    net = NET.to_lrcore()
    path = np.array([[-3, 1, 2], [4, -2, 0], [1, 5, -4]])
    for dtype in (np.int32, np.int64):
        same_result(lrcore.count_1d(net, path.astype(dtype)), lrcore.count_1d(net, path * 1.0))


@pytest.mark.parametrize("layout", ["fortran", "strided", "reversed", "float32", "read-only"])
def test_layouts_equal_contiguous(layout):
    net = NET.to_lrcore()
    path = random_path(3, 6, seed=21)
    if layout == "fortran":
        given_path = np.asfortranarray(path)
    elif layout == "strided":
        wide = np.zeros((12, 6))
        wide[::2, ::2] = path
        given_path = wide[::2, ::2]
        assert not given_path.flags.c_contiguous
    elif layout == "reversed":
        given_path = path[::-1].copy()[::-1]
    elif layout == "float32":
        path = path.astype(np.float32).astype(np.float64)
        given_path = path.astype(np.float32)
    else:
        given_path = path.copy()
        given_path.flags.writeable = False
    same_result(lrcore.count_1d(net, given_path), lrcore.count_1d(net, path))


# --- Rejected inputs ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        np.array([[0.0, np.nan, 1.0], [1.0, 1.0, 1.0]]),
        np.array([[0.0, 0.0, np.inf], [1.0, 1.0, 1.0]]),
        np.zeros(3),
        np.zeros((2, 2, 3)),
        np.zeros((4, 2)),
        np.zeros((1, 3)),
        np.zeros((0, 3)),
    ],
    ids=["nan", "inf", "1d", "3d", "wrong-d", "one-point", "empty"],
)
def test_bad_paths_raise_value_error_naming_path(path):
    with pytest.raises(ValueError, match=r"\bpath\b"):
        lrcore.count_1d(NET.to_lrcore(), path)


@pytest.mark.parametrize(
    "path",
    [
        np.array([[0, 1, 2], [3, 4, 5]], dtype=object),
        np.array([["a", "b", "c"], ["d", "e", "f"]]),
        "path",
        np.zeros((2, 3), dtype=complex),
    ],
    ids=["object", "str-array", "str", "complex"],
)
def test_non_numeric_paths_raise_type_error_naming_path(path):
    with pytest.raises(TypeError, match=r"\bpath\b"):
        lrcore.count_1d(NET.to_lrcore(), path)


def test_batch_errors_name_the_path_index():
    net = NET.to_lrcore()
    good = random_path(3, 4, seed=22)
    with pytest.raises(ValueError, match=r"path\[1\]"):
        lrcore.count_1d(net, [good, np.full((3, 3), np.nan)])
    with pytest.raises(ValueError, match=r"path\[2\]"):
        lrcore.count_1d(net, [good, good, np.zeros((3, 2))])
    with pytest.raises(TypeError, match=r"path\[0\]"):
        lrcore.count_1d(net, [np.zeros((2, 3), dtype=object), good])
    with pytest.raises(ValueError, match="closed"):
        lrcore.count_1d(net, [good, good], closed=[True])


def test_bad_options():
    net = NET.to_lrcore()
    path = random_path(3, 4, seed=22)
    with pytest.raises(ValueError, match="rtol"):
        lrcore.count_1d(net, path, rtol=-1.0)
    with pytest.raises(ValueError, match="num_threads"):
        lrcore.count_1d(net, path, num_threads=0)
    with pytest.raises(TypeError, match="net"):
        lrcore.count_1d(NET, path)


def test_max_pieces_limit():
    net = NET.to_lrcore()
    path = random_path(3, 50, seed=23)
    assert lrcore.count_1d(net, path).num_pieces > 10
    with pytest.raises(lrcore.LimitExceeded, match="max_pieces"):
        lrcore.count_1d(net, path, max_pieces=10)


def test_max_memory_limit():
    net = NET.to_lrcore()
    paths = [random_path(3, 50, seed=s) for s in range(20)]
    full = lrcore.count_1d(net, paths)
    same = lrcore.count_1d(net, paths, max_memory=1e9)
    assert [r.num_pieces for r in same] == [r.num_pieces for r in full]
    with pytest.raises(lrcore.LimitExceeded, match=r"max_memory=0\.0 MB \([0-9]+ pieces"):
        lrcore.count_1d(net, paths, max_memory=1e3)
    with pytest.raises(ValueError, match="max_memory"):
        lrcore.count_1d(net, paths, max_memory=-5)


# --- Batches and threads ----------------------------------------------------------------


def test_empty_batch():
    b = lrcore.count_1d(NET.to_lrcore(), [])
    assert isinstance(b, lrcore.BatchResult)
    assert len(b) == 0
    assert b.num_paths == 0
    assert list(b) == []
    assert b.offsets.tolist() == [0]
    assert b.breakpoints.shape == (0,)
    assert b.num_breakpoints.shape == (0,)
    assert len(b.to_dataframe()) == 0
    assert len(b.to_dataframe("paths")) == 0


@given(
    spec=nets(max_hidden=3, max_width=20),
    sizes=st.lists(st.integers(2, 6), min_size=1, max_size=6),
    closed=st.lists(st.booleans(), min_size=6, max_size=6),
    seed=seeds,
)
def test_batch_equals_per_path(spec, sizes, closed, seed):
    rng = np.random.default_rng(seed)
    paths = [3.0 * rng.standard_normal((n, spec.input_dim)) for n in sizes]
    flags = closed[: len(paths)]
    net = spec.to_lrcore()
    batch = lrcore.count_1d(net, paths, flags, return_patterns=True)
    assert batch.num_paths == len(paths)
    singles = [lrcore.count_1d(net, p, c, return_patterns=True) for p, c in zip(paths, flags)]
    for i, single in enumerate(singles):
        same_result(batch[i], single)
    for got, single in zip(batch, singles):
        same_result(got, single)
    same_result(batch[-1], singles[-1])
    counts = [s.num_breakpoints for s in singles]
    np.testing.assert_array_equal(batch.num_breakpoints, counts)
    np.testing.assert_array_equal(batch.offsets, np.concatenate(([0], np.cumsum(counts))))
    np.testing.assert_array_equal(batch.num_pieces, [s.num_pieces for s in singles])
    np.testing.assert_array_equal(batch.num_distinct, [s.num_distinct for s in singles])
    np.testing.assert_array_equal(batch.lengths, [s.length for s in singles])
    np.testing.assert_array_equal(
        batch.breakpoints, np.concatenate([s.breakpoints for s in singles])
    )
    np.testing.assert_array_equal(batch.segment, np.concatenate([s.segment for s in singles]))
    np.testing.assert_array_equal(batch.neurons, np.concatenate([s.neurons for s in singles]))
    # A tuple is a batch too, and one flag applies to every path.
    as_tuple = lrcore.count_1d(net, tuple(paths), True)
    for got, path in zip(as_tuple, paths):
        same_result(got, lrcore.count_1d(net, path, True))


def test_batch_index_errors():
    b = lrcore.count_1d(NET.to_lrcore(), [random_path(3, 3, seed=24)])
    with pytest.raises(IndexError):
        b[1]
    with pytest.raises(IndexError):
        b[-2]


@settings(max_examples=10)
@given(spec=nets(max_hidden=3, max_width=12), seed=seeds, closed=st.booleans())
def test_large_batches_equal_walks(spec, seed, closed):
    # Over a hundred segments in all: the core packs segments of several paths into
    # one work unit, and each path must come out as if it were alone.
    rng = np.random.default_rng(seed)
    paths = [
        2.0 * rng.standard_normal((int(rng.integers(2, 12)), spec.input_dim)) for _ in range(40)
    ]
    batch = lrcore.count_1d(spec.to_lrcore(), paths, closed)
    for i, path in enumerate(paths):
        walk = spec.walk(path, closed)
        assert batch[i].num_breakpoints == walk.num_breakpoints, f"path {i}"
        np.testing.assert_allclose(
            batch[i].breakpoints, walk.breakpoints, rtol=0, atol=1e-9 * walk.length
        )
        np.testing.assert_array_equal(batch[i].segment, walk.breakpoint_segment)


def test_thread_count_does_not_change_results():
    spec = random_net([3, 24, 24, 24, 1], seed=25)
    net = spec.to_lrcore()
    rng = np.random.default_rng(26)
    paths = [3.0 * rng.standard_normal((int(rng.integers(2, 40)), 3)) for _ in range(40)]
    long_path = 3.0 * rng.standard_normal((600, 3))
    one = lrcore.count_1d(net, paths, return_patterns=True, num_threads=1)
    two = lrcore.count_1d(net, paths, return_patterns=True, num_threads=2)
    for a, b in zip(one, two):
        same_result(a, b)
    same_result(
        lrcore.count_1d(net, long_path, closed=True, return_patterns=True, num_threads=1),
        lrcore.count_1d(net, long_path, closed=True, return_patterns=True, num_threads=2),
    )
