"""The certified slow path of slice_2d (docs/numerics.md §6), against the exact oracle.

A value the filter cannot decide is decided at the vertex's exact point, the meeting point
of its two defining lines, by the sign of a ratio of determinants of the lines'
coefficients (double-double with a rigorous bound, else exact). Lines through one point
(concurrent lines, lines through corners, a deeper layer's line through an earlier layer's
vertex) are exact zeros; lines 1e-13 from such a point must come out on the right side of
it; on a LeNet-5 slice the double-double tier decides values far from zero that the
filter's bounds, grown with depth, leave undecided. ``max_slow_work=0`` turns the passes
off: the same cases then fall back on the zero tolerance (counted, warned), which is what
these tests would see without the slow path.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import lrcore
from lrcore._tiling import CUT_OFFSET
from slice_oracle import lines_net
from support import NetSpec, nudged_integer_layers
from test_slice2d_certified import same_as_oracle as oracle_cells

BOX = (-1.0, 1.0, -1.0, 1.0)


def cut_positions(lo: float, hi: float, count: int) -> list[float]:
    return [lo + (hi - lo) * (k + CUT_OFFSET) / count for k in range(1, count)]


def run(spec, tiles=1, threads=None, origin=None, basis=None, **kwargs):
    origin = np.zeros(2) if origin is None else origin
    basis = np.eye(2) if basis is None else basis
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = lrcore.slice_2d(
            spec.to_lrcore(), origin, basis, BOX, tiles=tiles, num_threads=threads, **kwargs
        )
    r.caught = {w.category for w in caught}
    return r


def same_as_oracle(r, spec, origin=None, basis=None):
    """The oracle's cells (exact fractions): the same patterns and areas."""
    origin = np.zeros(2) if origin is None else origin
    basis = np.eye(2) if basis is None else basis
    oracle_cells(r, spec, origin, basis)


def certified_exact(r, spec, **kwargs):
    """Every sign certified, nothing merged, no warning, the oracle's partition."""
    assert r.uncertified_decisions == 0
    assert r.merged_crossings == 0
    assert lrcore.CertificationWarning not in r.caught
    r.verify(raise_on_error=True)
    same_as_oracle(r, spec, **kwargs)


# Four lines through P = (5/8, 3/8) exactly (dyadic: every coefficient exact): at P the
# lines that do not define the vertex are exactly 0, which only the exact tier proves;
# and a fifth line `offset` from P along t, which must come out on its side of P (the
# zero tolerance once merged it into P). Without the slow path, the exact zeros took the
# tolerance's decision and could be inconsistent with the near line's certified ones.
P = (0.625, 0.375)
CONCURRENT = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -2.0]]


def concurrent_net(offset: float | None) -> NetSpec:
    rows = [list(r) for r in CONCURRENT]
    biases = [-(r[0] * P[0] + r[1] * P[1]) for r in rows]
    if offset is not None:
        rows.append([2.0, 1.0])
        biases.append(-(2.0 * P[0] + P[1]) + offset)
    return lines_net(rows, biases)


def test_the_cut_lines_stay_off_the_concurrency():
    assert all(abs(c - P[0]) > 0.05 for n in (3, 4, 7) for c in cut_positions(-1, 1, n))


@pytest.mark.parametrize("offset", [None, 1e-13, -1e-13, 1e-12, -1e-12])
def test_concurrent_lines_beside_a_near_line(offset):
    spec = concurrent_net(offset)
    results = {}
    for tiles in (1, 3, 4, 7):
        for threads in (1, 2):
            r = run(spec, tiles=tiles, threads=threads)
            assert r.tiles == tiles
            certified_exact(r, spec)
            results[tiles, threads] = r
    whole = results[1, 1]
    # Four lines through P: at least the two that do not define the vertex there are
    # exact zeros, proven by the exact tier.
    assert whole.exact_coincidences >= 2
    assert whole.slow_decisions >= whole.exact_coincidences
    counts = (whole.slow_decisions, whole.exact_coincidences, whole.uncertified_decisions)
    for r in results.values():
        assert r.num_regions == whole.num_regions
        assert r.num_vertices == whole.num_vertices
        assert r.num_edges == whole.num_edges
        # P and the near line's vertices beside it lie inside a tile: the same counts.
        assert (r.slow_decisions, r.exact_coincidences, r.uncertified_decisions) == counts


@pytest.mark.parametrize("offset", [None, 1e-13, -1e-13])
def test_without_the_slow_path_the_same_values_are_undecided(offset):
    spec = concurrent_net(offset)
    r = run(spec, max_slow_work=0)
    assert r.slow_decisions == 0
    assert r.uncertified_decisions > 0
    assert lrcore.CertificationWarning in r.caught
    with_slow = run(spec)
    assert with_slow.uncertified_decisions == 0
    assert with_slow.slow_decisions > 0


def test_lines_through_the_box_corners():
    # s = t and s = -t pass through the four corners; s = 0.5 t through none, but
    # through the crossing at the origin.
    spec = lines_net([[1.0, -1.0], [1.0, 1.0], [2.0, -1.0]], [0.0, 0.0, 0.0])
    for tiles in (1, 3):
        r = run(spec, tiles=tiles)
        certified_exact(r, spec)
        assert r.num_regions == 6
        assert r.exact_coincidences >= 5  # 4 corners and the origin


@pytest.mark.parametrize("nudge", [0.0, 1e-13, -1e-13, 1e-9])
def test_deeper_lines_through_an_earlier_vertex(nudge):
    # Layer 0: four lines through V = (1/4, 0). Layer 1: combinations of their ReLUs
    # without bias, so every layer-1 line passes through V too (each is positively
    # homogeneous about V), and the first moved by `nudge`: a layer-1 value at V and at
    # the layer-1 vertices next to it within the filter's bound.
    rows = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 2.0], [2.0, -1.0]])
    weights = (
        rows,
        np.array([[1.0, -1.0, 1.0, 0.0], [0.0, 1.0, -1.0, 1.0], [1.0, 1.0, -2.0, -1.0]]),
        np.ones((1, 3)),
    )
    biases = (-rows[:, 0] * 0.25, np.array([nudge, 0.0, 0.0]), np.zeros(1))
    spec = NetSpec(weights, biases)
    for tiles in (1, 3, 4):
        r = run(spec, tiles=tiles)
        assert r.uncertified_decisions == 0
        if nudge == 0.0 or abs(nudge) > 1e-12:
            certified_exact(r, spec)
        elif r.merged_crossings == 0:
            same_as_oracle(r, spec)
    if nudge != 0.0:
        assert run(spec, max_slow_work=0).uncertified_decisions > 0


@st.composite
def integer_nets(draw):
    """Small integer nets, maybe with a weight or bias moved by 10^-k.

    Concurrent, parallel and coincident lines abound in integer nets (and across layers);
    the nudges make lines that nearly meet. ReLU or LeakyReLU (dyadic slopes: 0.25 keeps
    the lines through one point exact).
    """
    weights, biases = nudged_integer_layers(draw, (0, 2), (9, 13), last_layer=True)
    if draw(st.booleans()):
        return NetSpec(tuple(weights), tuple(biases))
    slope = draw(st.sampled_from([0.25, -0.5, 0.01]))
    return NetSpec(tuple(weights), tuple(biases), "leaky_relu", slope)


@settings(max_examples=120, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(spec=integer_nets(), tiles=st.sampled_from([1, 3]))
def test_property_integer_nets_are_certified_and_exact(spec, tiles):
    # The slow path decides every sign of these tiny nets within the default budget;
    # where nothing is merged (a crossing within float64's plane resolution of a vertex)
    # the partition is the exact one.
    r = run(spec, tiles=tiles)
    assert r.uncertified_decisions == 0
    if r.merged_crossings == 0:
        r.verify(raise_on_error=True)
        same_as_oracle(r, spec)


@pytest.mark.parametrize("tiles", [1, 3, 4])
@pytest.mark.parametrize("work", [3e-6, 1e-5])
def test_a_budget_that_runs_out_gives_the_same_counts_with_any_threads(tiles, work):
    # Layer-1 lines through a layer-0 vertex (test_deeper_lines_through_an_earlier_vertex
    # without the nudge) under a budget of a few plane passes per tile (max_slow_work
    # times 2^24 multiply-adds): some values are decided, some are not (4 tiles at 3e-6:
    # 2 and 3), and which depends on the tile's own input only (each tile starts with an
    # empty cache and its own budget), never on the threads. (Until the budget counted
    # the tile's own work, a thread's earlier tiles used it up: (0, 7, 16) with one thread
    # against (2, 2, 21) with two, 3 tiles.)
    rows = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 2.0], [2.0, -1.0]])
    weights = (
        rows,
        np.array([[1.0, -1.0, 1.0, 0.0], [0.0, 1.0, -1.0, 1.0], [1.0, 1.0, -2.0, -1.0]]),
        np.ones((1, 3)),
    )
    spec = NetSpec(weights, (-rows[:, 0] * 0.25, np.zeros(3), np.zeros(1)))
    runs = [run(spec, tiles=tiles, threads=t, max_slow_work=work) for t in (1, 2, 1)]
    counts = [(r.slow_decisions, r.uncertified_decisions, r.exact_coincidences) for r in runs]
    assert counts[0] == counts[1] == counts[2]
    assert runs[0].num_regions == runs[1].num_regions
    np.testing.assert_array_equal(runs[0].vertices, runs[2].vertices)
    unlimited = run(spec, tiles=tiles, max_slow_work=None)
    assert unlimited.uncertified_decisions == 0
    certified_exact(unlimited, spec)
    if (tiles, work) == (4, 3e-6):
        assert runs[0].slow_decisions > 0
        assert runs[0].uncertified_decisions > 0


def test_lenet5_slice_decided_by_double_double():
    # On a conv net the filter's bounds grow with depth: values far from zero in exact
    # arithmetic (not coincidences) are undecided, and the double-double tier decides
    # them. A wrong sign convention there changes the partition (on the VGG-11 slice of
    # test_maxpool.py it ran past 5 million regions). Compared with rtol=1e-10 (no value
    # near its tolerance here: the same partition) and with verify().
    torch = pytest.importorskip("torch")
    from lrcore import zoo

    model = zoo.lenet5(seed=0).to("cpu", torch.float64)
    net = lrcore.Network.from_torch(model, input_shape=(1, 28, 28))
    plane = lrcore.Plane.through(*np.random.default_rng(0).uniform(0, 1, (3, 784)))
    box = (0.0, 0.005, 0.0, 0.005)
    with pytest.warns(lrcore.CertificationWarning):
        without = lrcore.slice_2d(net, plane, bounds=box, tiles=1, max_slow_work=0)
    r = lrcore.slice_2d(net, plane, bounds=box, tiles=1, max_slow_work=None)
    old = lrcore.slice_2d(net, plane, bounds=box, tiles=1, rtol=1e-10)
    assert without.uncertified_decisions > 0
    assert r.uncertified_decisions == 0
    assert r.slow_decisions > r.exact_coincidences - without.exact_coincidences
    assert r.num_regions == old.num_regions
    assert sorted(map(bytes, r.patterns)) == sorted(map(bytes, old.patterns))
    r.verify(raise_on_error=True)


def test_mixed_slow_and_fallback_decisions_stay_consistent():
    # tests/test_fuzz.py's test_slice_methods drew this net (weights near 1e29): with the
    # slow path, 22 slow decisions beside 6 the fallback took disagreed, and 5 faces
    # wound the wrong way (verify() failed). Such a tile is redone with the fallback
    # alone: not certified (it says so), but consistent, as before the slow path.
    weights = [
        np.array(
            [
                [1.6718301980387822e28, 6.370518687008531e29],
                [-5.032343017319886e29, 6.344861328926812e29],
                [-2.6611051257882406e29, -1.0843277573828906e29],
            ]
        ),
        np.array(
            [
                [3.783983615127413e29, -1.0484780611983048e29, 5.726585785629425e28],
                [-5.455277462906e29, 2.927317230729969e29, 4.404410430986899e28],
                [-1.966088786274093e29, 3.33048779132808e29, -2.2725103657275807e29],
            ]
        ),
        np.array([[-5.369601205246317e28, -4.225722492130561e29, -1.1187548671145772e29]]),
    ]
    biases = [
        np.array([-4.193776204864545e29, -3.361396975422931e29, 3.5406911557252035e29]),
        np.array([-2.535621253768882e29, -1.70999897966631e28, 5.5510750342942404e29]),
        np.array([5.3307581007022896e29]),
    ]
    net = lrcore.Network(weights, biases)
    origin = np.array([0.1257302210933933, -0.1321048632913019])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for tiles in (1, 3):
            r = lrcore.slice_2d(net, origin, np.eye(2), tiles=tiles)
            r.verify(raise_on_error=True)
            assert r.uncertified_decisions > 0


def test_certified_order_that_cannot_be_drawn_falls_back():
    # The fuzz test's second draw: every sign decided (28 slow decisions), but with 10
    # crossings merged at the plane's resolution one face had area -8.0e-16. The tile is
    # redone with the fallback alone: consistent, and reported as not certified. (Cut
    # into 3 tiles, a stitched face still winds the wrong way: not handled yet.)
    weights = [
        np.array(
            [
                [4.0769523665500644e29, -2.308716803897909e29, 1.9295645045932778e29],
                [2.4159456468490273e29, 2.1533998907351077e29, 4.525199345538678e29],
            ]
        ),
        np.array(
            [
                [4.381449947135373e29, -4.116185787387812e29],
                [1.7097773638735437e28, 4.559364404861308e29],
                [-9.33185461924107e28, 4.08391047415517e29],
                [-3.471448087398459e29, -4.809179022526469e29],
                [-2.4954302737204786e29, 5.582300382311794e29],
            ]
        ),
        np.array(
            [
                [
                    -1.2938818120147732e29,
                    2.6482167825190784e29,
                    -1.5521672352584331e28,
                    -3.242954147287795e29,
                    3.688726420284124e29,
                ],
                [
                    -1.4325524283635829e29,
                    2.9291911388106175e29,
                    -3.698701307332796e29,
                    2.9323285110435792e28,
                    2.1937536222027993e29,
                ],
                [
                    2.1279271530621347e28,
                    -2.8390668102437513e29,
                    5.712430254550692e28,
                    -1.2766335300962777e29,
                    6.212498799499682e28,
                ],
            ]
        ),
    ]
    biases = [
        np.array([-2.741257059451216e29, -4.8797273029337614e29]),
        np.array(
            [
                -5.85908423716509e29,
                -6.78450207079268e29,
                -9.721944524447605e28,
                5.773941457200195e28,
                3.7736383256506546e29,
            ]
        ),
        np.array([2.8115171805507276e27, 3.410735136315749e29, -3.80433700661455e29]),
    ]
    net = lrcore.Network(weights, biases)
    origin = np.array([0.1257302210933933, -0.1321048632913019, 0.6404226504432821])
    basis = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = lrcore.slice_2d(net, origin, basis, tiles=1)
        r.verify(raise_on_error=True)
        assert r.uncertified_decisions > 0
