"""The compiled core's contract, called directly.

See docs/contributing.md, "Which layer checks what", and docs/core-layout.md: the
bindings check only what reading the arrays needs, the core refuses what breaks its
preconditions, and values Python would refuse (NaN, infinities) give some result or an
error but never touch memory out of bounds (the sanitizer run checks that).
"""

from __future__ import annotations

import numpy as np
import pytest

import lrcore
from lrcore import _core

NET = lrcore.Network.random([2, 8, 8, 1], seed=0)._core
PATH = np.array([[0.0, 0.0], [1.0, 1.0]])
SQUARE = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
ORIGIN = np.zeros(2)
BASIS = np.eye(2)
NO_CUTS = np.zeros(0)


def count(
    paths, closed=None, rtol=1e-10, threads=1, max_pieces=100, max_memory=0.0, slow=-1, work=-1.0
):
    closed = [False] * len(paths) if closed is None else closed
    return _core.count_1d(
        NET, paths, closed, rtol, True, threads, max_pieces, max_memory, slow, work, 1
    )


def slice_(origin=ORIGIN, basis=BASIS, domain=SQUARE, cuts=NO_CUTS, **options):
    settings = {"rtol": 1e-10, "threads": 2, "max_regions": 1000, "max_memory": 0.0}
    settings.update(options)
    return _core.slice_2d(
        NET,
        [origin],
        [basis],
        [domain],
        [cuts],
        settings["rtol"],
        settings["threads"],
        settings["max_regions"],
        settings["max_memory"],
    )


def layers(*widths):
    """Dense identity-like layers of the given (out, in) shapes, zero biases."""
    weights = [np.ones(shape) for shape in widths]
    return weights, [np.zeros(w.shape[0]) for w in weights]


# --- What the bindings check: what reading the arrays needs ---------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: count([np.zeros((3, 5))]), r"path\[0\]: expected 2 columns"),
        (lambda: count([np.zeros(4)]), r"path\[0\]: expected a 2-d array"),
        (lambda: count([PATH], closed=[]), "closed: expected one flag per path"),
        (lambda: slice_(origin=np.zeros(3)), r"origin\[0\]: expected 2 rows"),
        (lambda: slice_(basis=np.eye(3)), r"basis\[0\]: expected 2 rows"),
        (lambda: slice_(domain=SQUARE.T), r"domain\[0\]: expected 2 columns"),
        (lambda: slice_(cuts=np.zeros((1, 1))), r"cuts\[0\]: expected a 1-d array"),
    ],
)
def test_bindings_check_shapes(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bindings_read_lists_in_step():
    weights, biases = layers((2, 2), (1, 2))
    with pytest.raises(ValueError, match="biases: expected one bias per layer"):
        _core.Network(weights, biases[:1], ["relu"], [0.0], [0])
    with pytest.raises(ValueError, match="negative_slopes: expected one per activation"):
        _core.Network(weights, biases, ["relu"], [], [0])
    with pytest.raises(ValueError, match=r"activations\[0\]: expected 'relu' or 'leaky_relu'"):
        _core.Network(weights, biases, ["tanh"], [0.0], [0])
    with pytest.raises(ValueError, match="slices: origins, bases, domains and cuts differ"):
        _core.slice_2d(NET, [ORIGIN], [], [SQUARE], [NO_CUTS], 1e-10, 1, 10, 0.0)


# --- What the core checks: its preconditions ------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: count([np.zeros((1, 2))]), "count_1d: every path needs at least 2 points"),
        (lambda: count([PATH], rtol=float("nan")), "count_1d: rtol must be a finite number"),
        (lambda: count([PATH], max_pieces=0), "count_1d: max_pieces must be >= 1"),
        (lambda: slice_(domain=SQUARE[:2]), "slice_2d: every slice needs .* at least 3 points"),
        (lambda: slice_(cuts=np.array([5.0])), "slice_2d: cut lines must be increasing"),
        (lambda: slice_(cuts=np.array([np.nan])), "slice_2d: cut lines must be increasing"),
        (lambda: slice_(rtol=-1.0), "slice_2d: rtol must be a finite number"),
        (lambda: slice_(max_regions=0), "slice_2d: max_regions must be >= 1"),
    ],
)
def test_core_checks_preconditions(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("weights", "linear_units", "message"),
    [
        ([], [], "Network: needs at least one layer"),
        ([np.ones((2, 2)), np.ones((1, 3))], [0], "layer 1 input size does not match"),
        ([np.ones((2, 2)), np.ones((1, 2))], [1, 1], "one linear unit count per hidden layer"),
        ([np.ones((2, 2)), np.ones((1, 2))], [3], "2 units, so 3 linear units are out of range"),
    ],
)
def test_core_checks_network(weights, linear_units, message):
    biases = [np.zeros(w.shape[0]) for w in weights]
    activations = ["relu"] * (len(weights) - 1)
    with pytest.raises(ValueError, match=message):
        _core.Network(weights, biases, activations, [0.0] * len(activations), linear_units)


def test_core_checks_activation_count():
    weights, biases = layers((2, 2), (1, 2))
    with pytest.raises(ValueError, match="Network: needs one activation per hidden layer"):
        _core.Network(weights, biases, [], [], [])


def test_core_checks_sparse_layers():
    csr = (np.array([0, 1]), np.array([0]), np.array([1.0]), 1, 2)
    with pytest.raises(ValueError, match="SparseAffine: inconsistent CSR arrays"):
        _core.Network([csr], [np.zeros(3)], [], [], [])
    bad_column = (np.array([0, 1]), np.array([5]), np.array([1.0]), 1, 2)
    with pytest.raises(ValueError, match="SparseAffine: column index out of range"):
        _core.Network([bad_column], [np.zeros(1)], [], [], [])


# --- Values Python refuses: some result or an error, memory untouched -----------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, 1e300])
def test_core_survives_non_finite_paths(bad):
    path = np.array([[bad, 0.0], [1.0, 1.0], [0.0, bad]])
    for closed in (False, True):
        result = count([path, PATH], closed=[closed, False], threads=2)
        assert result["num_pieces"][1] >= 1


@pytest.mark.parametrize("bad", [np.nan, np.inf, 1e300])
def test_core_survives_non_finite_slices(bad):
    tiny_regions = {"max_regions": 10**6}
    slice_(origin=np.array([bad, 0.0]), **tiny_regions)
    slice_(basis=np.array([[bad, 0.0], [0.0, 1.0]]), cuts=np.array([0.1]), **tiny_regions)
    slice_(domain=np.array([[bad, 0.0], [1.0, 0.0], [0.0, 1.0]]), **tiny_regions)
    slice_(domain=SQUARE * 1e300, cuts=np.array([0.0]), **tiny_regions)


def test_core_survives_unchecked_options():
    assert count([PATH], threads=-3)["num_pieces"][0] >= 1  # <= 0: all hardware threads
    assert count([PATH], max_memory=-1.0)["num_pieces"][0] >= 1  # <= 0: no cap
    assert len(slice_(threads=0, max_memory=float("nan"))) == 1
