"""lrcore.slice_2d: the planar partition against geometry, sampling, 1D counts and an oracle.

The oracle (``oracle_slice``) cuts the domain polygon by one neuron's line after the
other, composing the network's affine maps symbolically on each cell (no evaluation at
vertices, no shared-vertex bookkeeping): with ``Fraction`` coordinates it is exact, so
constructed degenerate cases (concurrent, coincident, parallel lines, lines through box
corners) have a known answer without hard-coding it.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import Phase, assume, given, settings
from hypothesis import strategies as st

import lrcore
from support import NetSpec, activations, flat_neuron_index, random_net, seeds

# --- The partition's own invariants ---------------------------------------------------


def face_sides(r):
    """Face, start vertex and end vertex of every polygon side, from the CSR arrays."""
    offsets = np.asarray(r.face_offsets)
    fv = np.asarray(r.face_vertices)
    sizes = np.diff(offsets)
    face = np.repeat(np.arange(len(sizes)), sizes)
    nxt = np.arange(1, len(fv) + 1)
    nxt[offsets[1:] - 1] = offsets[:-1]
    return face, fv, fv[nxt], nxt


def polygon_area(poly) -> float:
    poly = np.asarray(poly, dtype=float)
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * float(x @ np.roll(y, -1) - np.roll(x, -1) @ y)


def diameter(domain) -> float:
    return float(np.ptp(np.asarray(domain), axis=0).max())


def cross2(a, b):
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def face_geometry(r):
    """Areas and centroids from coordinates centred on each face's first vertex."""
    face, a, b, _ = face_sides(r)
    first = r.vertices[r.face_vertices[r.face_offsets[:-1]]]
    pa = r.vertices[a] - first[face]
    pb = r.vertices[b] - first[face]
    c = cross2(pa, pb)
    starts = r.face_offsets[:-1]
    area = 0.5 * np.add.reduceat(c, starts)
    moment = np.stack(
        [np.add.reduceat((pa[:, k] + pb[:, k]) * c, starts) for k in range(2)], axis=1
    )
    with np.errstate(divide="ignore", invalid="ignore"):  # zero-area faces fail elsewhere
        return area, first + moment / (6.0 * area[:, None])


def edge_index_of_sides(r):
    """Row of ``r.edges`` holding each polygon side (-1 when none does)."""
    _, a, b, _ = face_sides(r)
    n = np.int64(max(r.num_vertices, 1))
    side_key = np.minimum(a, b) * n + np.maximum(a, b)
    edge_key = r.edges[:, 0] * n + r.edges[:, 1]
    order = np.argsort(edge_key)
    pos = np.clip(np.searchsorted(edge_key, side_key, sorter=order), 0, max(len(order) - 1, 0))
    found = order[pos] if len(order) else np.zeros(len(side_key), dtype=np.int64)
    hit = edge_key[found] == side_key if len(order) else np.zeros(len(side_key), dtype=bool)
    return np.where(hit, found, -1)


def interior_edges(r):
    """(edge, face_a, face_b) for every edge two faces share, found from the face CSR."""
    face, _, _, _ = face_sides(r)
    side_edge = edge_index_of_sides(r)
    order = np.argsort(side_edge, kind="stable")
    se = side_edge[order]
    twice = np.flatnonzero(se[1:] == se[:-1])
    edges = se[twice]
    fa, fb = face[order[twice]], face[order[twice + 1]]
    return edges, np.minimum(fa, fb), np.maximum(fa, fb)


def check_partition(r, net: lrcore.Network):
    """Structure and geometry: a convex, counter-clockwise partition of the domain."""
    num_v, num_e, num_f = r.num_vertices, r.num_edges, r.num_regions
    dom = r.domain
    diam = diameter(dom)
    assert r.vertices.shape == (num_v, 2)
    assert r.vertices.dtype == np.float64
    assert r.vertex_outputs.shape == (num_v, net.output_dim)
    assert r.face_offsets.shape == (num_f + 1,)
    assert r.face_offsets[0] == 0
    assert r.face_offsets[-1] == len(r.face_vertices)
    assert np.all(np.diff(r.face_offsets) >= 3), "every face needs at least 3 corners"
    assert np.all((r.face_vertices >= 0) & (r.face_vertices < num_v))
    assert r.edges.shape == (num_e, 2)
    assert r.edge_neurons.shape == (num_e, 2)
    assert r.patterns.shape == (num_f, (net.num_neurons + 7) // 8)
    assert r.patterns.dtype == np.uint8
    assert len(r.faces) == num_f

    # The domain as given back: convex and counter-clockwise.
    assert polygon_area(dom) > 0
    d_edges = np.roll(dom, -1, axis=0) - dom
    assert np.all(cross2(d_edges, np.roll(d_edges, -1, axis=0)) > 0)

    # Areas: positive, as reported, summing to the domain's.
    area, _ = face_geometry(r)
    assert np.all(area > 0), f"{int(np.sum(area <= 0))} faces have zero area or run clockwise"
    np.testing.assert_allclose(r.areas, area, rtol=1e-9, atol=1e-13 * diam**2)
    assert math.fsum(area) == pytest.approx(polygon_area(dom), rel=1e-9)

    # Convex: every corner turns left (or goes straight on), once around in total.
    _, a, b, nxt = face_sides(r)
    assert np.all(a != b), "a face repeats a corner"
    side = r.vertices[b] - r.vertices[a]
    length = np.hypot(side[:, 0], side[:, 1])
    assert np.all(length > 0), "a face has a zero-length side"
    turn = cross2(side, side[nxt])
    assert np.all(turn >= -1e-9 * length * length[nxt]), "a face has a reflex corner"
    angle = np.arctan2(side[:, 1], side[:, 0])
    bend = np.mod(angle[nxt] - angle + np.pi, 2 * np.pi) - np.pi
    winding = np.add.reduceat(bend, r.face_offsets[:-1])
    np.testing.assert_allclose(winding, 2 * np.pi, atol=1e-6, err_msg="faces must wind once")

    # Vertices lie in the domain.
    normal = np.stack([d_edges[:, 1], -d_edges[:, 0]], axis=1)
    normal /= np.linalg.norm(normal, axis=1)[:, None]
    outside = ((r.vertices[:, None, :] - dom[None, :, :]) * normal[None]).sum(axis=2)
    assert np.all(outside <= 1e-12 * diam), "a vertex lies outside the domain"

    # Edges: exactly the faces' sides, each once; inner ones shared by two faces that
    # run along them in opposite directions; boundary ones on the domain's boundary.
    assert np.all(r.edges[:, 0] < r.edges[:, 1])
    key = r.edges[:, 0] * np.int64(num_v) + r.edges[:, 1]
    assert len(np.unique(key)) == num_e, "an edge is listed twice"
    side_edge = edge_index_of_sides(r)
    assert np.all(side_edge >= 0), "a face side is missing from edges"
    uses = np.bincount(side_edge, minlength=num_e)
    assert np.all((uses == 1) | (uses == 2)), "an edge must belong to one or two faces"
    directed = a * np.int64(num_v) + b
    assert len(np.unique(directed)) == len(directed), "two faces overlap along an edge"
    boundary = uses == 1
    np.testing.assert_array_equal(r.edge_neurons[:, 0] == -1, boundary)
    assert np.all(r.edge_neurons[boundary] == -1)
    layers = r.edge_neurons[~boundary, 0]
    units = r.edge_neurons[~boundary, 1]
    widths = np.array(net.hidden_sizes, dtype=np.int64)
    assert np.all((layers >= 0) & (layers < net.num_hidden_layers))
    assert np.all((units >= 0) & (units < widths[layers]))
    ends = r.vertices[r.edges[boundary]]  # (B, 2, 2)
    dist = ((ends[:, :, None, :] - dom[None, None, :, :]) * normal[None, None]).sum(axis=3)
    on_side = np.all(np.abs(dist) <= 1e-12 * diam, axis=1)
    assert np.all(on_side.any(axis=1)), "a boundary edge is off the domain's boundary"

    # Euler's formula for a subdivided disc; every vertex is a corner of some face.
    assert len(np.unique(r.face_vertices)) == num_v, "unused vertices"
    assert num_v - num_e + num_f == 1, f"V - E + F = {num_v - num_e + num_f}"

    # Adjacency as reported is the list of shared edges' face pairs.
    _, fa, fb = interior_edges(r)
    mine = np.stack([fa, fb], axis=1)
    assert r.adjacency.shape == mine.shape
    np.testing.assert_array_equal(
        np.unique(r.adjacency, axis=0), np.unique(mine, axis=0), err_msg="adjacency"
    )
    assert len(mine) == int(np.sum(~boundary))


def layer_values(spec: NetSpec, r, st):
    """Per hidden layer: pre-activations and a rounding scale for them at plane points st.

    The scale propagates magnitudes, ``|W| m + |b|`` from ``m = |origin| + (|s| + D) |u|
    + (|t| + D) |v|`` (D the domain's diameter: vertices are interpolated along edges up to
    that long): it bounds what rounding can leave of a value that is zero in exact
    arithmetic, also where the layer's input is itself such a residue.
    """
    st = np.asarray(st, dtype=float)
    h = r.to_input(st)
    m = np.abs(r.plane.origin) + (np.abs(st) + diameter(r.domain)) @ np.abs(r.plane.basis)
    out = []
    slope = spec.negative_slope if spec.activation == "leaky_relu" else 0.0
    gain = max(1.0, abs(slope))
    for w, b in zip(spec.weights[:-1], spec.biases[:-1]):
        z = h @ w.T + b
        scale = m @ np.abs(w).T + np.abs(b)
        out.append((z, scale))
        h = np.where(z > 0, z, slope * z)
        m = gain * scale
    w, b = spec.weights[-1], spec.biases[-1]
    return out, h @ w.T + b, m @ np.abs(w).T + np.abs(b)


def settled_patterns(spec: NetSpec, r, st, tol: float = 1e-9):
    """Patterns at plane points, a value within rounding of zero counting as zero.

    Such a value is zero in exact arithmetic (say a neuron that vanishes on a whole face
    of a constructed net); the core's zero tolerance makes it inactive too.
    """
    values, _, _ = layer_values(spec, r, st)
    return np.concatenate([z > tol * scale for z, scale in values], axis=1)


def robust_faces(r, centroids):
    """Faces whose centroid lies well inside (rounding cannot move it to a neighbour)."""
    face, a, b, _ = face_sides(r)
    side = r.vertices[b] - r.vertices[a]
    rel = centroids[face] - r.vertices[a]
    dist = cross2(side, rel) / np.hypot(side[:, 0], side[:, 1])
    inner = np.minimum.reduceat(dist, r.face_offsets[:-1])
    return inner > 1e-9 * diameter(r.domain)


def check_network(r, spec: NetSpec, generic: bool, zero_tol: float = 1e-8):
    """The partition against the network: patterns, edges on zero sets, outputs, maps."""
    net_sizes = spec.hidden_sizes
    pats = r.pattern_bools()
    assert pats.shape == (r.num_regions, spec.num_neurons)

    # Each face's centroid has the face's pattern.
    _, cent = face_geometry(r)
    np.testing.assert_allclose(r.centroids, cent, rtol=0, atol=1e-9 * diameter(r.domain))
    robust = robust_faces(r, cent)
    assert robust.mean() > 0.5
    sampled = settled_patterns(spec, r, cent[robust])
    bad = np.flatnonzero(np.any(sampled != pats[robust], axis=1))
    assert bad.size == 0, f"{bad.size} of {robust.sum()} centroids differ from their face"
    if generic:
        # As users would check it: lrcore's own evaluation at the reported centroids.
        net = spec.to_lrcore()
        at_reported = net.patterns(r.to_input(r.centroids[robust]))
        bad = np.flatnonzero(np.any(at_reported != pats[robust], axis=1))
        assert bad.size == 0, f"{bad.size} reported centroids have another face's pattern"

    # Generic nets: one face per pattern (activation regions are convex).
    if generic:
        assert len(np.unique(r.patterns, axis=0)) == r.num_regions, "two faces share a pattern"

    # Interior edges lie on their neuron's zero set.
    values, out, out_scale = layer_values(spec, r, r.vertices)
    z = np.concatenate([v for v, _ in values], axis=1)
    zscale = np.concatenate([s for _, s in values], axis=1)
    ratio = np.abs(z) / np.maximum(zscale, 1e-300)
    edges, fa, fb = interior_edges(r)
    flat = flat_neuron_index(r.edge_neurons[edges], net_sizes)
    ends = r.edges[edges]
    worst = np.maximum(ratio[ends[:, 0], flat], ratio[ends[:, 1], flat])
    assert np.all(worst <= zero_tol), f"edge off its neuron's zero set by {worst.max():.3g}"

    # Faces on the two sides of an edge differ in its neuron: in it alone for generic
    # nets, otherwise in neurons that vanish along the whole edge.
    diff = pats[fa] != pats[fb]
    assert np.all(diff[np.arange(len(flat)), flat]), "faces across an edge share its bit"
    if generic:
        np.testing.assert_array_equal(diff.sum(axis=1), 1)
    else:
        rows, cols = np.nonzero(diff)
        on_line = np.maximum(ratio[ends[rows, 0], cols], ratio[ends[rows, 1], cols])
        assert np.all(on_line <= zero_tol), "faces across an edge differ in another neuron"

    # Outputs at vertices, and the affine maps at centroids.
    tol = 1e-9 * out_scale + 1e-12 * out_scale.max()
    assert np.all(np.abs(r.vertex_outputs - out) <= tol), "vertex outputs"
    maps = r.output_maps
    assert maps.shape == (r.num_regions, out.shape[1], 3)
    st1 = np.concatenate([cent, np.ones((r.num_regions, 1))], axis=1)
    from_maps = np.einsum("fok,fk->fo", maps, st1)
    _, at_cent, cent_scale = layer_values(spec, r, cent)
    tol = 1e-9 * cent_scale + 1e-12 * cent_scale.max()
    assert np.all(np.abs(from_maps - at_cent) <= tol), "output maps"


def check_all(r, spec: NetSpec, generic: bool = True, zero_tol: float = 1e-8):
    check_partition(r, spec.to_lrcore())
    check_network(r, spec, generic, zero_tol)


# --- Sampling and lines through the result --------------------------------------------


def points_in_domain(domain, n: int, rng) -> np.ndarray:
    """Random points inside a convex polygon (convex combinations of its corners)."""
    weights = rng.dirichlet(np.full(len(domain), 0.7), size=n)
    return weights @ domain


def grid_in_domain(domain, n: int) -> np.ndarray:
    """An n × n grid over the bounding box, shifted off round numbers, kept inside."""
    lo, hi = domain.min(axis=0), domain.max(axis=0)
    frac_s = (np.arange(n) + 1 / np.sqrt(2.0)) / n
    frac_t = (np.arange(n) + 1 / np.sqrt(3.0)) / n
    s, t = np.meshgrid(lo[0] + frac_s * (hi[0] - lo[0]), lo[1] + frac_t * (hi[1] - lo[1]))
    pts = np.stack([s.ravel(), t.ravel()], axis=1)
    d_edges = np.roll(domain, -1, axis=0) - domain
    inside = np.all(cross2(d_edges[None], pts[:, None, :] - domain[None]) > 0, axis=1)
    return pts[inside]


def check_sampling(r, spec: NetSpec, n: int = 60):
    """Grid points: their pattern is a face's, and that face contains them."""
    pts = grid_in_domain(r.domain, n)
    sampled = settled_patterns(spec, r, pts)
    # Leave out points on a zero set (their pattern is no face's): those whose pattern
    # changes when they move by 1e-7 of the domain's size.
    step = 1e-7 * diameter(r.domain)
    for move in [(1.0, 0.3), (-0.4, 1.0), (-1.0, -0.7), (0.6, -1.0)]:
        near = settled_patterns(spec, r, pts + step * np.array(move))
        keep = np.all(near == sampled, axis=1)
        pts, sampled = pts[keep], sampled[keep]
    packed = np.packbits(sampled, axis=1, bitorder="little")
    face_of = {row.tobytes(): f for f, row in enumerate(r.patterns)}
    found = np.array([face_of.get(row.tobytes(), -1) for row in packed])
    missing = np.flatnonzero(found < 0)
    assert missing.size == 0, (
        f"{missing.size} grid points have patterns absent from the result, e.g. at "
        f"{pts[missing[0]] if missing.size else None}"
    )
    distinct = len(np.unique(packed, axis=0))
    assert distinct <= r.num_regions
    # The face with a point's pattern contains the point.
    sizes = np.diff(r.face_offsets)
    dist = np.full(len(pts), np.inf)
    for k in range(sizes.max()):
        has = sizes[found] > k
        f = found[has]
        a = r.face_vertices[r.face_offsets[f] + k]
        b = r.face_vertices[r.face_offsets[f] + (k + 1) % sizes[f]]
        side = r.vertices[b] - r.vertices[a]
        d = cross2(side, pts[has] - r.vertices[a]) / np.hypot(side[:, 0], side[:, 1])
        dist[has] = np.minimum(dist[has], d)
    assert np.all(dist >= -1e-9 * diameter(r.domain)), "a point lies outside its face"
    return distinct


def segment_crossings(r, p, q):
    """Positions (fractions of p→q) where the segment crosses the result's inner edges.

    Crossings through one vertex count once; returns positions and the neuron of one
    crossed edge at each.
    """
    edges, _, _ = interior_edges(r)
    a = r.vertices[r.edges[edges, 0]]
    b = r.vertices[r.edges[edges, 1]]
    d = q - p
    e = b - a
    denom = cross2(np.broadcast_to(d, e.shape), e)
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = cross2(a - p, e) / denom
        mu = cross2(a - p, np.broadcast_to(d, e.shape)) / denom
    eps = 1e-12
    hit = (denom != 0) & (lam > eps) & (lam < 1 - eps) & (mu >= -eps) & (mu <= 1 + eps)
    lam, labels = lam[hit], r.edge_neurons[edges[hit]]
    order = np.argsort(lam)
    lam, labels = lam[order], labels[order]
    keep = np.concatenate(([True], np.diff(lam) > 1e-10)) if len(lam) else np.zeros(0, bool)
    return lam[keep], labels[keep]


def check_lines(r, spec: NetSpec, net, num_lines: int, seed: int):
    """Random segments: count_1d equals the number of face boundaries crossed."""
    rng = np.random.default_rng(seed)
    for _ in range(num_lines):
        p, q = points_in_domain(r.domain, 2, rng)
        lam, labels = segment_crossings(r, p, q)
        one_d = lrcore.count_1d(net, r.to_input(np.stack([p, q])))
        assert one_d.num_breakpoints == len(lam), (
            f"segment {p} -> {q}: count_1d finds {one_d.num_breakpoints} breakpoints, "
            f"the 2D result has {len(lam)} crossings"
        )
        np.testing.assert_allclose(one_d.breakpoints / one_d.length, lam, atol=1e-8)
        # The crossed edge's neuron flips there (one of several where lines coincide).
        for i, label in enumerate(labels.tolist()):
            flips = one_d.flip_neurons[one_d.flip_offsets[i] : one_d.flip_offsets[i + 1]]
            assert label in flips.tolist(), f"edge of {label} crossed where {flips} flip"


# --- The oracle: cut polygons by one line after the other -----------------------------


def _split(poly, coef):
    """Parts of a convex polygon where ``c0 + c1 s + c2 t`` is >= 0 and <= 0."""
    vals = [coef[0] + coef[1] * s + coef[2] * t for s, t in poly]
    if all(v >= 0 for v in vals) or all(v <= 0 for v in vals):
        return None
    pos, neg = [], []
    m = len(poly)
    for i in range(m):
        p, q, vp, vq = poly[i], poly[(i + 1) % m], vals[i], vals[(i + 1) % m]
        if vp >= 0:
            pos.append(p)
        if vp <= 0:
            neg.append(p)
        if (vp > 0 > vq) or (vp < 0 < vq):
            tau = vp / (vp - vq)
            x = (p[0] + tau * (q[0] - p[0]), p[1] + tau * (q[1] - p[1]))
            pos.append(x)
            neg.append(x)
    return pos, neg


def _exact_area(poly):
    pairs = zip(poly, poly[1:] + poly[:1])
    return sum(p[0] * q[1] - q[0] * p[1] for p, q in pairs) / 2


def oracle_slice(spec: NetSpec, origin, basis, domain, exact: bool = False):
    """Cells (polygon, pattern) of the slice, by symbolic composition of affine maps.

    Each cell carries the affine map (s, t, 1) -> layer input, so a layer's neurons are
    lines on it; cutting by each in turn and applying the activation per side gives the
    next maps. With ``exact`` all arithmetic is in Fractions (float inputs exactly).
    """
    num = Fraction if exact else float
    conv = (
        (lambda a: [[Fraction(float(x)) for x in row] for row in np.atleast_2d(a)])
        if exact
        else (lambda a: np.atleast_2d(np.asarray(a, dtype=float)).tolist())
    )
    origin = np.asarray(origin, float)
    basis = np.asarray(basis, float)
    # h = A @ (s, t, 1): columns basis[0], basis[1], origin.
    amap = conv(np.stack([basis[0], basis[1], origin], axis=1))
    poly = [tuple(num(float(c)) for c in corner) for corner in np.asarray(domain, float)]
    cells = [(poly, [], amap)]
    slope = spec.negative_slope if spec.activation == "leaky_relu" else 0.0
    factor = num(float(slope))
    zero = num(0)
    for w, b in zip(spec.weights[:-1], spec.biases[:-1]):
        wl = conv(w)
        bl = conv(b[None, :])[0]
        new_cells = []
        for poly0, bits0, a in cells:
            # z_j(s, t) = sum_k W_jk (A_k . (s, t, 1)) + b_j
            coefs = [
                [
                    sum((wj[k] * a[k][c] for k in range(len(a))), zero) + (bj if c == 2 else zero)
                    for c in range(3)
                ]
                for wj, bj in zip(wl, bl)
            ]
            parts = [(poly0, list(bits0))]
            for coef in coefs:
                next_parts = []
                for p, bits in parts:
                    pieces = _split(p, [coef[2], coef[0], coef[1]])
                    if pieces is None:
                        vals = [coef[2] + coef[0] * s + coef[1] * t for s, t in p]
                        next_parts.append((p, [*bits, any(v > 0 for v in vals)]))
                        continue
                    pos, neg = pieces
                    next_parts.append((pos, [*bits, True]))
                    next_parts.append((neg, [*bits, False]))
                parts = next_parts
            n_prev = len(bits0)
            for p, bits in parts:
                own = bits[n_prev:]
                nxt = [
                    [coef[c] if on else factor * coef[c] for c in range(3)]
                    for coef, on in zip(coefs, own)
                ]
                new_cells.append((p, bits, nxt))
        cells = new_cells
    out = []
    for p, bits, _ in cells:
        area = _exact_area(p)
        out.append((np.array(p, dtype=float), np.array(bits, dtype=bool), float(area)))
    return out


def compare_with_oracle(r, cells):
    """Same cells: one face per oracle cell with the same pattern, area and centroid."""
    kept = [c for c in cells if c[2] > 0]
    pats = r.pattern_bools()
    assert r.num_regions == len(kept), f"{r.num_regions} faces, the oracle has {len(kept)}"
    face_of = {row.tobytes(): f for f, row in enumerate(pats)}
    assert len(face_of) == r.num_regions
    diam = diameter(r.domain)
    for poly, bits, area in kept:
        f = face_of.get(bits.tobytes())
        assert f is not None, f"no face has the oracle's pattern {bits.astype(int)}"
        assert r.areas[f] == pytest.approx(area, rel=1e-9, abs=1e-12 * diam**2)
        np.testing.assert_allclose(
            r.centroids[f], polygon_centroid(poly), atol=1e-9 * diam, rtol=0
        )


def polygon_centroid(poly):
    poly = np.asarray(poly, float)
    p0 = poly[0]
    rel = poly - p0
    nxt = np.roll(rel, -1, axis=0)
    c = cross2(rel, nxt)
    return p0 + ((rel + nxt) * c[:, None]).sum(axis=0) / (3.0 * c.sum())


def line_cells_formula(spec: NetSpec, origin, basis, bounds) -> int:
    """Cells of a generic line arrangement in a box: 1 + lines crossing + inner crossings."""
    w, b = spec.weights[0], spec.biases[0]
    coef = np.stack([w @ basis[0], w @ basis[1], w @ origin + b], axis=1)  # a s + c t + e
    s0, s1, t0, t1 = bounds
    corners = np.array([[s0, t0], [s1, t0], [s1, t1], [s0, t1]])
    vals = corners @ coef[:, :2].T + coef[:, 2]
    crossing = (vals.max(axis=0) > 0) & (vals.min(axis=0) < 0)
    lines = coef[crossing]
    inner = 0
    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            m = np.array([lines[i, :2], lines[j, :2]])
            s, t = np.linalg.solve(m, -np.array([lines[i, 2], lines[j, 2]]))
            inner += int(s0 < s < s1 and t0 < t < t1)
    return 1 + len(lines) + inner


# --- Random nets and planes -----------------------------------------------------------


def gaussian_plane(d: int, seed: int, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    return scale * rng.standard_normal(d), rng.standard_normal((2, d))


@pytest.mark.parametrize(
    ("d", "width", "activation", "seed"),
    [(2, 12, "relu", 1), (3, 20, "leaky_relu", 2), (7, 30, "relu", 3), (2, 1, "relu", 4)],
)
def test_one_hidden_layer_matches_line_arrangement(d, width, activation, seed):
    spec = random_net([d, width, 2], seed, activation, 0.1)
    origin, basis = gaussian_plane(d, seed + 100)
    bounds = (-2.0, 1.5, -1.0, 2.5)
    r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, bounds)
    check_all(r, spec)
    assert r.num_regions == line_cells_formula(spec, origin, basis, bounds)
    compare_with_oracle(r, oracle_slice(spec, origin, basis, r.domain, exact=True))


@pytest.mark.parametrize(
    ("sizes", "activation", "seed"),
    [([2, 8, 8, 1], "relu", 5), ([3, 10, 6, 5, 2], "leaky_relu", 6), ([5, 16, 16, 1], "relu", 7)],
)
def test_deep_nets_match_oracle(sizes, activation, seed):
    spec = random_net(sizes, seed, activation, 0.2)
    origin, basis = gaussian_plane(sizes[0], seed + 100)
    r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, (-1.5, 1.5, -1.0, 2.0))
    check_all(r, spec)
    compare_with_oracle(r, oracle_slice(spec, origin, basis, r.domain))


@pytest.mark.parametrize(("sizes", "seed"), [([2, 16, 16, 1], 8), ([4, 24, 24, 24, 3], 9)])
def test_lines_count_as_in_1d(sizes, seed):
    spec = random_net(sizes, seed, "relu")
    net = spec.to_lrcore()
    origin, basis = gaussian_plane(sizes[0], seed + 100)
    r = lrcore.slice_2d(net, origin, basis, (-2.0, 2.0, -2.0, 2.0))
    assert r.num_regions > 50
    check_all(r, spec)
    check_lines(r, spec, net, num_lines=25, seed=seed)


@pytest.mark.parametrize(("sizes", "seed"), [([2, 16, 16, 1], 10), ([3, 20, 20, 20, 1], 11)])
def test_grid_sampling_finds_only_reported_patterns(sizes, seed):
    spec = random_net(sizes, seed, "leaky_relu", 0.1)
    origin, basis = gaussian_plane(sizes[0], seed + 100)
    r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, (-1.5, 1.5, -1.5, 1.5))
    distinct = check_sampling(r, spec, n=200)
    # A fine grid meets most regions.
    assert distinct >= 0.5 * r.num_regions


# --- Output maps, linear regions, decision boundary -----------------------------------


def test_decision_boundary_lies_on_the_level_set_and_is_complete():
    spec = random_net([3, 16, 16, 1], 12)
    net = spec.to_lrcore()
    origin, basis = gaussian_plane(3, 112)
    r = lrcore.slice_2d(net, origin, basis, (-2.0, 2.0, -2.0, 2.0))
    level = float(np.median(r.vertex_outputs[:, 0]))
    segs = r.decision_boundary(level=level)
    assert segs.ndim == 3
    assert segs.shape[1:] == (2, 2)
    assert len(segs) > 0
    ends = segs.reshape(-1, 2)
    _, out, scale = layer_values(spec, r, ends)
    assert np.all(np.abs(out[:, 0] - level) <= 1e-9 * (scale[:, 0] + abs(level)))
    mids = segs.mean(axis=1)
    _, out, scale = layer_values(spec, r, mids)
    assert np.all(np.abs(out[:, 0] - level) <= 1e-9 * (scale[:, 0] + abs(level)))
    # Completeness: along random segments, where the (piecewise affine) output crosses
    # the level there is a boundary segment.
    rng = np.random.default_rng(0)
    diam = diameter(r.domain)
    found = 0
    for _ in range(20):
        p, q = points_in_domain(r.domain, 2, rng)
        one_d = lrcore.count_1d(net, r.to_input(np.stack([p, q])))
        lam = np.concatenate(([0.0], one_d.breakpoints / one_d.length, [1.0]))
        pts = p + lam[:, None] * (q - p)
        y = net.forward(r.to_input(pts))[:, 0] - level
        cut = np.flatnonzero(y[:-1] * y[1:] < 0)
        for i in cut:
            tau = lam[i] + (lam[i + 1] - lam[i]) * y[i] / (y[i] - y[i + 1])
            x = p + tau * (q - p)
            a, b = segs[:, 0], segs[:, 1]
            e = b - a
            u = np.clip(((x - a) * e).sum(axis=1) / (e * e).sum(axis=1), 0, 1)
            gap = np.linalg.norm(a + u[:, None] * e - x, axis=1).min()
            assert gap <= 1e-8 * diam, f"level crossing at {x} is {gap} from the boundary"
            found += 1
    assert found > 0


def with_silent_units(spec: NetSpec, layer: int, extra: int, seed: int) -> NetSpec:
    """Add ``extra`` units to hidden ``layer`` whose outgoing weights are all zero."""
    rng = np.random.default_rng(seed)
    ws, bs = list(spec.weights), list(spec.biases)
    fan_in = ws[layer].shape[1]
    ws[layer] = np.vstack([ws[layer], rng.uniform(-1, 1, (extra, fan_in)) / np.sqrt(fan_in)])
    bs[layer] = np.concatenate([bs[layer], rng.uniform(-0.5, 0.5, extra)])
    ws[layer + 1] = np.hstack([ws[layer + 1], np.zeros((ws[layer + 1].shape[0], extra))])
    return spec.with_layers(ws, bs)


def check_linear_regions(r, lin, rtol=1e-9):
    assert lin.labels.shape == (r.num_regions,)
    assert lin.num_regions == int(lin.labels.max()) + 1
    assert set(lin.labels.tolist()) == set(range(lin.num_regions))
    np.testing.assert_allclose(lin.areas, np.bincount(lin.labels, weights=r.areas), rtol=1e-12)
    assert math.fsum(lin.areas) == pytest.approx(polygon_area(r.domain), rel=1e-9)
    # Labels respect the maps: one map per linear region; adjacent faces with different
    # labels have different maps.
    maps = r.output_maps.reshape(r.num_regions, -1)
    scale = np.abs(maps).max()
    for label in range(lin.num_regions):
        members = maps[lin.labels == label]
        assert np.abs(members - members[0]).max() <= 1e-7 * scale
    _, fa, fb = interior_edges(r)
    differ = lin.labels[fa] != lin.labels[fb]
    gap = np.abs(maps[fa[differ]] - maps[fb[differ]]).max(axis=1)
    assert np.all(gap > rtol * scale)


@pytest.mark.parametrize(
    ("sizes", "layer", "seed"),
    [([2, 10, 1], 0, 13), ([3, 10, 8, 2], 1, 14), ([3, 10, 8, 2], 0, 15)],
)
def test_linear_regions_merge_faces_of_silent_units(sizes, layer, seed):
    base = random_net(sizes, seed, "leaky_relu", 0.1)
    spec = with_silent_units(base, layer, 4, seed)
    origin, basis = gaussian_plane(sizes[0], seed + 100)
    bounds = (-2.0, 2.0, -2.0, 2.0)
    r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, bounds)
    r_base = lrcore.slice_2d(base.to_lrcore(), origin, basis, bounds)
    check_all(r, spec)
    assert r.num_regions > r_base.num_regions, "the silent units should cut faces"
    lin, lin_base = r.linear_regions(), r_base.linear_regions()
    check_linear_regions(r, lin)
    check_linear_regions(r_base, lin_base)
    # The silent units change the faces but not the function.
    assert lin.num_regions == lin_base.num_regions
    np.testing.assert_allclose(np.sort(lin.areas), np.sort(lin_base.areas), rtol=1e-9)
    if len(sizes) == 3:
        # One hidden layer with non-zero output weights: every face is its own map.
        assert lin_base.num_regions == r_base.num_regions


def test_linear_regions_merge_duplicate_cancelling_units():
    # Units 0 and 1 are one neuron twice, with output weights +1 and -1: they cancel.
    rng = np.random.default_rng(16)
    w0 = rng.standard_normal((6, 2))
    w0[1] = w0[0]
    b0 = rng.standard_normal(6) * 0.3
    b0[1] = b0[0]
    w1 = rng.standard_normal((1, 6))
    w1[0, :2] = [1.0, -1.0]
    spec = NetSpec((w0, w1), (b0, np.zeros(1)))
    r = lrcore.slice_2d(spec.to_lrcore(), np.zeros(2), np.eye(2), (-2, 2, -2, 2))
    check_all(r, spec, generic=False)
    lin = r.linear_regions()
    check_linear_regions(r, lin)
    reduced = NetSpec((w0[2:], w1[:, 2:]), (b0[2:], np.zeros(1)))
    r_red = lrcore.slice_2d(reduced.to_lrcore(), np.zeros(2), np.eye(2), (-2, 2, -2, 2))
    assert r.num_regions > r_red.num_regions
    assert lin.num_regions == r_red.num_regions


# --- Degenerate geometry (exact oracle) -----------------------------------------------


def exact_case(spec, origin, basis, bounds=None, domain=None):
    """Check the slice against the exact oracle, computed whole and in 3 and 4 strips.

    The cut lines pass near the constructed degeneracies; returns the whole slice.
    """
    for tiles in (4, 3, 1):
        r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, bounds, domain=domain, tiles=tiles)
        check_all(r, spec, generic=False)
        compare_with_oracle(r, oracle_slice(spec, origin, basis, r.domain, exact=True))
        # No two vertices at one place.
        v = r.vertices
        gap = np.linalg.norm(v[:, None, :] - v[None, :, :], axis=2)
        np.fill_diagonal(gap, np.inf)
        assert gap.min() > 1e-9 * diameter(r.domain), "two vertices at one place"
    return r


def lines_net(rows, biases, out=None):
    w = np.asarray(rows, dtype=float)
    b = np.asarray(biases, dtype=float)
    w_out = np.ones((1, len(w))) if out is None else np.asarray(out, float)
    return NetSpec((w, w_out), (b, np.zeros(1)))


CONCURRENT_ROWS = np.array([[1, 0], [0, 1], [1, 1], [1, -1], [2, 1], [-1, 3]], dtype=float)


@pytest.mark.parametrize(
    ("origin", "basis", "bounds"),
    [
        ([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]], (-1, 1, -1, 1)),
        ([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]], (-0.7, 1.3, -1.1, 0.9)),
        ([-0.5, -0.5], [[1.0, 2.0], [2.0, -1.0]], (-1, 1, -1, 1)),
        # Crossings at non-dyadic positions of the box's sides: the interpolated values of
        # the other neurons at a new vertex are rounding residues, not zeros.
        ([-0.5, -0.5], [[1.0, 2.0], [2.0, -1.0]], (-0.7, 1.3, -1.1, 0.9)),
        ([0.25, 0.75], [[1.0, 3.0], [-2.0, 1.0]], (-0.7, 1.3, -1.1, 0.9)),
    ],
)
def test_concurrent_lines_through_the_plane_origin(origin, basis, bounds):
    # Six neurons vanish at the input point `origin`, which is (s, t) = (0, 0).
    origin = np.asarray(origin)
    spec = lines_net(CONCURRENT_ROWS, -(CONCURRENT_ROWS @ origin))
    r = exact_case(spec, origin, np.asarray(basis), bounds)
    assert r.num_regions == 2 * len(CONCURRENT_ROWS)
    at_origin = np.flatnonzero(np.all(np.abs(r.vertices) <= 1e-12, axis=1))
    assert len(at_origin) == 1
    # All twelve faces meet there.
    assert sum(at_origin[0] in f for f in r.faces) == 2 * len(CONCURRENT_ROWS)


def test_three_lines_concurrent_and_one_parallel():
    # Minimal: one hidden layer; neurons 1, 2, 3 vanish at (s, t) = (0, 0), neuron 0 is
    # parallel to neuron 3.
    w = np.array([[1.0, -1.0], [0.0, -2.0], [-1.0, 0.0], [-1.0, 1.0]])
    spec = NetSpec((w, np.ones((1, 4))), (np.array([-1.0, -1.0, -0.5, 0.0]), np.zeros(1)))
    origin, basis = np.array([-0.5, -0.5]), np.array([[1.0, 2.0], [2.0, -1.0]])
    exact_case(spec, origin, basis, (-2, 2, -2, 2))
    exact_case(
        NetSpec(spec.weights, spec.biases, "leaky_relu", 0.5), origin, basis, (-2, 2, -2, 2)
    )


def test_concurrent_lines_off_the_origin_in_higher_dimension():
    # Five neurons vanish at the point x0 of R^4, which lies on the plane at (0.5, -0.25).
    rng = np.random.default_rng(17)
    origin = np.array([1.0, 0.0, 2.0, -1.0])
    basis = np.array([[2.0, 0.0, 0.0, 4.0], [0.0, 4.0, 0.0, 0.0]])
    x0 = origin + 0.5 * basis[0] - 0.25 * basis[1]
    w = rng.integers(-3, 4, (5, 4)).astype(float)
    spec = lines_net(w, -(w @ x0), rng.standard_normal((1, 5)))
    exact_case(spec, origin, basis, (-1, 1, -1, 1))


def test_coincident_and_opposite_lines():
    rows = [[1, 2], [1, 2], [-1, -2], [2, 4], [0, 1], [3, -1]]
    biases = [0.5, 0.5, -0.5, 1.0, 0.25, 0.0]
    spec = lines_net(rows, biases)
    r = exact_case(spec, np.zeros(2), np.eye(2), (-1, 1, -1, 1))
    # Crossing the shared line flips all four of its neurons.
    pats = r.pattern_bools()
    _, fa, fb = interior_edges(r)
    flips = (pats[fa] != pats[fb]).sum(axis=1)
    assert set(flips.tolist()) == {1, 4}


def test_parallel_lines():
    spec = lines_net([[1, 0]] * 5 + [[0, 1]] * 2, [-0.9, -0.3, 0.0, 0.3, 0.6, 0.1, -0.6])
    r = exact_case(spec, np.zeros(2), np.eye(2), (-1, 1, -1, 1))
    assert r.num_regions == 6 * 3


@pytest.mark.parametrize(
    ("rows", "biases"),
    [
        ([[1, -1]], [0]),  # the diagonal through two corners
        ([[1, 1], [1, -1]], [-2, 0]),  # a line touching one corner only, and a diagonal
        ([[1, 0], [0, 1]], [-1, 1]),  # lines along the box's sides
        ([[1, 0], [1, 1], [1, -1]], [-1, 0, -2]),  # through a corner and along a side
    ],
)
def test_lines_through_box_corners_and_along_sides(rows, biases):
    exact_case(lines_net(rows, biases), np.zeros(2), np.eye(2), (-1, 1, -1, 1))


def test_dead_and_constant_neurons():
    rows = [[0, 0], [0, 0], [0, 0], [1, 1], [1, -2]]
    biases = [-1.0, 0.0, 2.0, 0.1, 0.3]  # always off, identically zero, always on
    spec = lines_net(rows, biases)
    r = exact_case(spec, np.zeros(2), np.eye(2), (-1, 1, -1, 1))
    pats = r.pattern_bools()
    assert not pats[:, 0].any()
    assert not pats[:, 1].any()
    assert pats[:, 2].all()
    assert not np.isin(r.edge_neurons[:, 1], [0, 1, 2]).any()


def test_deep_degenerate_lines_on_earlier_lines():
    # Layer 0: (x, -x, y, -y). Layer 1: |x| + |y| - 1 (a diamond with corners on layer
    # 0's lines), relu(x) - relu(-x) = x (zero exactly on layer 0's line x = 0), |x| - 0.5
    # (two lines parallel to an earlier one) and |y| (touches zero only on y = 0).
    w0 = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    w1 = np.array([[1.0, 1, 1, 1], [1, -1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1]])
    b1 = np.array([-1.0, 0.0, -0.5, 0.0])
    w2 = np.array([[1.0, 2.0, -1.0, 0.5]])
    spec = NetSpec((w0, w1, w2), (np.zeros(4), b1, np.zeros(1)))
    r = exact_case(spec, np.zeros(2), np.eye(2), (-1.5, 1.5, -1.5, 1.5))
    check_lines(r, spec, spec.to_lrcore(), num_lines=20, seed=18)
    # ... and the same in a shifted, scaled plane of R^3.
    spec3 = spec.with_layers((np.hstack([w0, np.zeros((4, 1))]), w1, w2), spec.biases)
    origin = np.array([0.5, -0.25, 7.0])
    basis = np.array([[0.5, 0.0, 3.0], [0.0, 0.25, -1.0]])
    exact_case(spec3, origin, basis, (-4, 2, -3, 5))


def test_second_layer_lines_through_first_layer_vertices():
    # Layer 1's zero lines pass through crossings of layer 0's lines (found by a search
    # over small integer nets).
    w0 = np.array([[-1.0, 2.0], [-2.0, -1.0], [-2.0, -1.0], [-1.0, 1.0]])
    w1 = np.array([[2.0, -2.0, 1.0, -1.0], [0.0, -1.0, 0.0, 0.0]])
    spec = NetSpec(
        (w0, w1, np.array([[0.0, -1.0]])),
        (np.array([0.0, 0.5, 1.0, 1.0]), np.array([1.0, 0.5]), np.array([-0.5])),
    )
    r = exact_case(spec, np.array([-0.5, 0.0]), np.eye(2), (-1, 1, -1, 1))
    check_lines(r, spec, spec.to_lrcore(), num_lines=10, seed=21)


def test_coincident_hyperplanes_of_two_layers_in_3d():
    # On this plane layer 0's two neurons are both -4s + 2t, and the layer-1 neuron
    # -2 leaky(z_1) vanishes on the same line: one line, three neurons. The 2D result has
    # one edge there; along a segment across it count_1d must find one breakpoint too.
    spec = NetSpec(
        (np.array([[-2.0, -2.0, 2.0], [0.0, -2.0, 0.0]]), np.array([[0.0, -2.0]]), np.eye(1)),
        (np.array([0.0, 1.0]), np.zeros(1), np.zeros(1)),
        "leaky_relu",
        0.5,
    )
    origin, basis = np.array([-0.5, 0.5, 0.0]), np.array([[0.0, 2.0, 0.0], [-2.0, -1.0, -2.0]])
    r = exact_case(spec, origin, basis, (-2, 2, -2, 2))
    assert r.num_regions == 2
    net = spec.to_lrcore()
    p, q = np.array([0.51406369, -0.08418795]), np.array([-0.44690553, 1.81049954])
    one_d = lrcore.count_1d(net, r.to_input(np.stack([p, q])))
    walk = spec.walk(r.to_input(np.stack([p, q])))
    assert walk.num_breakpoints == 1
    assert one_d.num_breakpoints == 1, (
        f"count_1d: {one_d.num_breakpoints} breakpoints at "
        f"{[x.hex() for x in one_d.breakpoints]}, the reference walk and the 2D slice have 1"
    )
    check_lines(r, spec, net, num_lines=20, seed=22)


def test_small_faces_far_from_the_origin_have_accurate_centroids_and_areas():
    # A 1e-6-wide face about 10 from the (s, t) origin: a shoelace sum over absolute
    # coordinates cancels away most of its area and moves its centroid off the face.
    spec = random_net([3, 39, 37, 2], 3916386508, "relu")
    origin, basis = gaussian_plane(3, 3916386509)
    bounds = (-11.007977998928494, 8.992022001071506, -8.800965848655508, 5.199034151344492)
    r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, bounds)
    area, cent = face_geometry(r)
    size = np.array([np.ptp(r.vertices[f], axis=0).max() for f in r.faces])
    assert size.min() < 1e-5
    # Rounding of the vertices themselves allows about 1e-15 / 1e-6 relative error.
    np.testing.assert_allclose(r.areas, area, rtol=1e-6, err_msg="areas")
    off = np.linalg.norm(r.centroids - cent, axis=1) / size
    assert off.max() <= 1e-3, f"a centroid is off by {off.max():.3g} of its face's size"
    check_all(r, spec)


@pytest.mark.parametrize(
    "domain",
    [
        # Dyadic corners: the lines through them below are exact in float64.
        [[0.0, 0.0], [2.0, 0.125], [0.25, 1.75]],  # triangle
        [[1.0, 0.0], [0.5, 0.875], [-0.5, 0.875], [-1.0, 0.0], [-0.5, -0.875], [0.5, -0.875]],
        [[0.5, -0.875], [-0.5, -0.875], [-1.0, 0.0], [-0.5, 0.875], [0.5, 0.875], [1.0, 0.0]],
    ],
)
def test_domain_polygons(domain):
    spec = random_net([3, 12, 12, 1], 19, "relu")
    origin, basis = gaussian_plane(3, 119)
    r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, domain=domain)
    check_all(r, spec)
    assert polygon_area(r.domain) == pytest.approx(abs(polygon_area(domain)), rel=1e-12)
    compare_with_oracle(r, oracle_slice(spec, origin, basis, r.domain))
    check_lines(r, spec, spec.to_lrcore(), num_lines=10, seed=19)
    # Exact lines through a polygon's corners.
    dom = r.domain
    rows, biases = [], []
    for i in range(len(dom)):
        p, q = dom[i], dom[(i + 2) % len(dom)]
        rows.append([q[1] - p[1], p[0] - q[0]])
        biases.append(-(rows[-1][0] * p[0] + rows[-1][1] * p[1]))
    exact_case(lines_net(rows, biases), np.zeros(2), np.eye(2), domain=domain)


def test_plane_through_three_images():
    rng = np.random.default_rng(20)
    spec = random_net([784, 24, 16, 10], 20, "relu")
    net = spec.to_lrcore()
    images = rng.uniform(0, 1, (3, 784))
    plane = lrcore.Plane.through(*images)
    r = lrcore.slice_2d(net, plane, bounds=(0, 1, 0, 1))
    assert r.num_regions > 1
    check_all(r, spec)
    np.testing.assert_allclose(r.to_input([[0, 0], [1, 0], [0, 1]]), images, atol=1e-12)
    compare_with_oracle(r, oracle_slice(spec, plane.origin, plane.basis, r.domain))
    check_lines(r, spec, net, num_lines=10, seed=20)
    check_sampling(r, spec, n=80)


# --- Property tests -------------------------------------------------------------------


@st.composite
def slice_cases(draw, max_hidden=3, max_width=24):
    d = draw(st.integers(2, 6))
    widths = draw(st.lists(st.integers(1, max_width), min_size=1, max_size=max_hidden))
    activation = draw(activations)
    slope = draw(st.sampled_from([0.01, 0.2, -0.5])) if activation == "leaky_relu" else 0.01
    spec = random_net([d, *widths, draw(st.integers(1, 3))], draw(seeds), activation, slope)
    origin, basis = gaussian_plane(d, draw(seeds), scale=draw(st.sampled_from([0.0, 1.0, 3.0])))
    s0 = draw(st.floats(-3, 2))
    t0 = draw(st.floats(-3, 2))
    ws = draw(st.floats(0.05, 4))
    wt = draw(st.floats(0.05, 4))
    return spec, origin, basis, (s0, s0 + ws, t0, t0 + wt)


@given(case=slice_cases(), line_seed=seeds)
def test_property_partition_invariants(case, line_seed):
    spec, origin, basis, bounds = case
    net = spec.to_lrcore()
    r = lrcore.slice_2d(net, origin, basis, bounds)
    check_all(r, spec)
    check_lines(r, spec, net, num_lines=5, seed=line_seed)
    check_sampling(r, spec, n=50)
    if len(spec.weights) == 2:
        assert r.num_regions == line_cells_formula(spec, origin, basis, bounds)
    check_linear_regions(r, r.linear_regions())


@settings(max_examples=25)
@given(case=slice_cases(max_hidden=2, max_width=10))
def test_property_matches_oracle(case):
    spec, origin, basis, bounds = case
    r = lrcore.slice_2d(spec.to_lrcore(), origin, basis, bounds)
    compare_with_oracle(r, oracle_slice(spec, origin, basis, r.domain))


@st.composite
def integer_cases(draw):
    """Nets of small integer weights and half-integer biases.

    Coincident, parallel and concurrent lines, and lines through vertices and box
    corners, are common among them, and exact.
    """
    d = draw(st.integers(2, 3))
    sizes = [d, *draw(st.lists(st.integers(1, 6), min_size=1, max_size=3)), 1]
    ints = st.integers(-2, 2)
    weights = tuple(
        np.array(draw(st.lists(st.lists(ints, min_size=i, max_size=i), min_size=o, max_size=o)))
        .astype(float)
        .reshape(o, i)
        for i, o in zip(sizes[:-1], sizes[1:])
    )
    biases = tuple(
        0.5 * np.array(draw(st.lists(ints, min_size=o, max_size=o)), dtype=float)
        for o in sizes[1:]
    )
    spec = NetSpec(weights, biases, draw(activations), 0.5)
    origin = 0.5 * np.array(draw(st.lists(ints, min_size=d, max_size=d)), dtype=float)
    basis = np.array(
        draw(st.lists(st.lists(ints, min_size=d, max_size=d), min_size=2, max_size=2)), float
    )
    half = draw(st.sampled_from([1.0, 2.0, 0.75]))
    return spec, origin, basis, (-half, half, -half, half)


# No shrinking: the integer arrays shrink slowly, and a failure prints its example.
@settings(
    max_examples=40,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    report_multiple_bugs=False,
)
@given(case=integer_cases())
def test_property_degenerate_integer_nets_match_exact_oracle(case):
    spec, origin, basis, bounds = case
    gram = basis @ basis.T
    assume(np.linalg.det(gram) > 1e-9)
    r = exact_case(spec, origin, basis, bounds)
    check_sampling(r, spec, n=30)
