"""Breakpoint density along a path, and the tabular views of a batch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lrcore
from support import nets, paths_for, random_net, random_path, seeds


def direct_density(breakpoints, length, closed, window, centers):
    """Count breakpoints window by window, the plain way."""
    densities = []
    for c in centers:
        if closed:
            # Circular distance from the centre; a window covers half a width each side.
            gap = np.abs(np.mod(breakpoints - c + length / 2, length) - length / 2)
            densities.append(np.count_nonzero(gap <= window / 2) / window)
        else:
            lo, hi = max(0.0, c - window / 2), min(length, c + window / 2)
            inside = (breakpoints >= lo) & (breakpoints <= hi)
            densities.append(np.count_nonzero(inside) / (hi - lo))
    return np.array(densities)


@given(
    spec=nets(max_hidden=3, max_width=30),
    data=st.data(),
    closed=st.booleans(),
    fraction=st.floats(0.01, 0.9),
)
def test_density_counts_breakpoints_in_windows(spec, data, closed, fraction):
    path = data.draw(paths_for(spec.input_dim))
    r = lrcore.count_1d(spec.to_lrcore(), path, closed)
    window = fraction * r.length
    rng = np.random.default_rng(data.draw(seeds))
    centers = rng.uniform(0, r.length, 25)
    got = r.density(window, at=centers)
    assert got.shape == centers.shape
    np.testing.assert_allclose(
        got, direct_density(r.breakpoints, r.length, closed, window, centers), rtol=1e-12
    )
    # Default centres tile the path with whole windows.
    default_centers = r.window_centers(window)
    count = len(default_centers)
    ratio = r.length / window
    # floor(length / window) windows, give or take rounding when the ratio is whole.
    assert count == max(1, int(np.floor(ratio))) or (
        abs(ratio - round(ratio)) < 1e-9 and count == round(ratio)
    )
    np.testing.assert_allclose(default_centers, window / 2 + window * np.arange(count))
    np.testing.assert_allclose(
        r.density(window),
        direct_density(r.breakpoints, r.length, closed, window, default_centers),
        rtol=1e-12,
    )


def test_tiling_windows_add_up_to_global_density():
    # Windows that tile the whole path see every breakpoint once.
    spec = random_net([2, 30, 30, 1], seed=27)
    path = random_path(2, 5, seed=28)
    r = lrcore.count_1d(spec.to_lrcore(), path)
    window = r.length / 7
    centers = window / 2 + window * np.arange(7)
    assert r.global_density == pytest.approx(r.num_breakpoints / r.length)
    assert r.global_density > 0
    assert np.mean(r.density(window, at=centers)) == pytest.approx(r.global_density, rel=1e-9)


def test_density_rejects_bad_windows():
    r = lrcore.count_1d(random_net([2, 8, 1], seed=29).to_lrcore(), random_path(2, 3, seed=30))
    for window in (0.0, -1.0, np.nan):
        with pytest.raises(ValueError, match="window"):
            r.density(window)


def test_dataframes_of_a_batch():
    pd = pytest.importorskip("pandas")
    spec = random_net([3, 20, 20, 1], seed=31)
    rng = np.random.default_rng(32)
    paths = [3.0 * rng.standard_normal((n, 3)) for n in (2, 5, 3, 4)]
    b = lrcore.count_1d(spec.to_lrcore(), paths, closed=[False, True, False, True])

    rows = b.to_dataframe()
    assert isinstance(rows, pd.DataFrame)
    assert list(rows.columns) == ["path", "position", "segment", "layer", "unit"]
    assert len(rows) == int(b.num_breakpoints.sum()) == len(b.breakpoints)
    np.testing.assert_array_equal(rows["path"], np.repeat(np.arange(4), b.num_breakpoints))
    np.testing.assert_array_equal(rows["position"], b.breakpoints)
    np.testing.assert_array_equal(rows["segment"], b.segment)
    np.testing.assert_array_equal(rows[["layer", "unit"]].to_numpy(), b.neurons)
    for i, r in enumerate(b):
        np.testing.assert_array_equal(rows.loc[rows["path"] == i, "position"], r.breakpoints)

    table = b.to_dataframe(kind="paths")
    assert list(table.columns) == [
        "path",
        "length",
        "num_breakpoints",
        "num_pieces",
        "num_distinct",
        "density",
    ]
    assert len(table) == 4
    np.testing.assert_array_equal(table["num_pieces"], b.num_pieces)
    np.testing.assert_array_equal(table["num_distinct"], b.num_distinct)
    np.testing.assert_allclose(table["length"], b.lengths)
    np.testing.assert_allclose(table["density"], [r.global_density for r in b])

    with pytest.raises(ValueError, match="kind"):
        b.to_dataframe(kind="pieces")
