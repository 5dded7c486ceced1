"""Exact breakpoints along polylines in rational arithmetic (fractions.Fraction).

An oracle for the certified sign decisions: the network's float64 weights and the path's
float64 points are exact rationals, and so is everything computed from them. Each
segment ``x(t) = a + t (b - a)``, ``t`` in ``[0, 1]``, is cut layer by layer: on an
interval where the earlier layers' pattern is constant (read at its midpoint), every
neuron of the next layer is affine in ``t`` and its root is exact. A breakpoint is a
cut where the patterns of the intervals on either side differ. Only for tiny networks:
the numbers grow by about 53 bits per layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

import lrcore

Vec = list[Fraction]


@dataclass(frozen=True)
class ExactBreakpoint:
    """A breakpoint: its segment, exact parameter there, and the neurons that flip."""

    segment: int
    t: Fraction
    flips: frozenset[tuple[int, int]]


def _dense(weight: object) -> np.ndarray:
    """A layer's matrix as a dense array (scipy sparse and composite layers too)."""
    toarray = getattr(weight, "toarray", None)
    return np.asarray(toarray() if toarray is not None else weight)


class ExactNet:
    """A network's layers as exact rationals (linear units pass without activation)."""

    def __init__(self, net: lrcore.Network) -> None:
        self.weights = [
            [[Fraction(float(w)) for w in row] for row in _dense(m)] for m in net._weights
        ]
        self.biases = [[Fraction(float(b)) for b in v] for v in net._biases]
        self.slopes = [Fraction(float(s)) for s in net.negative_slopes]
        self.hidden = len(self.slopes)
        self.neurons = list(net.hidden_sizes)  # each layer's first units; the rest linear

    @staticmethod
    def _affine(w: list[Vec], b: Vec | None, x: Vec) -> Vec:
        return [
            sum((wi * xi for wi, xi in zip(row, x) if wi and xi), Fraction(0)) + (b[j] if b else 0)
            for j, row in enumerate(w)
        ]

    def pattern(self, x: Vec) -> tuple[bool, ...]:
        """The exact activation pattern at a point."""
        bits: list[bool] = []
        h = x
        for layer in range(self.hidden):
            z = self._affine(self.weights[layer], self.biases[layer], h)
            n = self.neurons[layer]
            bits.extend(v > 0 for v in z[:n])
            h = [v if v > 0 or j >= n else self.slopes[layer] * v for j, v in enumerate(z)]
        return tuple(bits)

    def layer_line(self, layer: int, a: Vec, d: Vec, t_mid: Fraction) -> tuple[Vec, Vec]:
        """Layer ``layer``'s values along ``a + t d`` as ``c + t e``.

        The earlier layers' pattern is forced to the one at ``t_mid``.
        """
        c, e = a, d
        for m in range(layer + 1):
            c = self._affine(self.weights[m], self.biases[m], c)
            e = self._affine(self.weights[m], None, e)
            if m == layer:
                break
            slope = self.slopes[m]
            for j in range(self.neurons[m]):
                if not c[j] + t_mid * e[j] > 0:
                    c[j] *= slope
                    e[j] *= slope
        return c, e


def exact_breakpoints(
    net: lrcore.Network, points: np.ndarray, closed: bool = False
) -> list[ExactBreakpoint]:
    """Every breakpoint of ``net`` along the polyline, in order, exactly."""
    ex = ExactNet(net)
    pts = [[Fraction(float(v)) for v in p] for p in np.asarray(points, dtype=np.float64)]
    if closed:
        pts.append(pts[0])
    sizes = net.hidden_sizes
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    pieces: list[tuple[int, Fraction, Fraction, tuple[bool, ...]]] = []
    for s in range(len(pts) - 1):
        a, b = pts[s], pts[s + 1]
        d = [bi - ai for ai, bi in zip(a, b)]
        if not any(d):
            continue  # a zero-length segment is a point
        intervals = [(Fraction(0), Fraction(1))]
        for layer in range(ex.hidden):
            cut: list[tuple[Fraction, Fraction]] = []
            for lo, hi in intervals:
                c, e = ex.layer_line(layer, a, d, (lo + hi) / 2)
                n = ex.neurons[layer]
                roots = sorted(
                    {-cj / ej for cj, ej in zip(c[:n], e[:n]) if ej and lo < -cj / ej < hi}
                )
                ends = [lo, *roots, hi]
                cut.extend(zip(ends[:-1], ends[1:]))
            intervals = cut
        for lo, hi in intervals:
            mid = (lo + hi) / 2
            pieces.append((s, lo, hi, ex.pattern([ai + mid * di for ai, di in zip(a, d)])))
    out: list[ExactBreakpoint] = []

    def flips(p: tuple[bool, ...], q: tuple[bool, ...]) -> frozenset[tuple[int, int]]:
        cols = [k for k in range(len(p)) if p[k] != q[k]]
        layer_of = [int(np.searchsorted(offsets, k, side="right") - 1) for k in cols]
        return frozenset((lay, k - int(offsets[lay])) for lay, k in zip(layer_of, cols))

    for i in range(1, len(pieces)):
        if pieces[i][3] != pieces[i - 1][3]:
            out.append(
                ExactBreakpoint(pieces[i][0], pieces[i][1], flips(pieces[i - 1][3], pieces[i][3]))
            )
    if closed and len(pieces) > 1 and pieces[0][3] != pieces[-1][3]:
        out.insert(
            0, ExactBreakpoint(pieces[0][0], pieces[0][1], flips(pieces[-1][3], pieces[0][3]))
        )
    return out


def disagreements(r: lrcore.PathResult, exact: list[ExactBreakpoint]) -> list[str]:
    """Where a count_1d result differs from the exact breakpoints (empty: none).

    Crossings the result reports as ``unresolved_crossings`` (distinct exactly, one
    float64 position) are allowed to share a breakpoint; otherwise counts and the flipping
    neurons of every breakpoint must match.
    """
    got = [
        frozenset(map(tuple, r.flip_neurons[r.flip_offsets[i] : r.flip_offsets[i + 1]].tolist()))
        for i in range(r.num_breakpoints)
    ]
    want = [b.flips for b in exact]
    if r.unresolved_crossings == 0:
        if len(got) != len(want):
            return [f"{len(got)} breakpoints, exactly {len(want)}"]
        return [
            f"breakpoint {i}: flips {sorted(g)}, exactly {sorted(w)}"
            for i, (g, w) in enumerate(zip(got, want))
            if g != w
        ]
    if not len(want) - r.unresolved_crossings <= len(got) <= len(want):
        return [
            f"{len(got)} breakpoints, exactly {len(want)} ({r.unresolved_crossings} unresolved)"
        ]
    return []
