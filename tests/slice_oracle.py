"""The 2D oracle and the checks of a planar partition, for the slice tests.

The oracle (:func:`oracle_slice`) cuts the domain polygon by one neuron's line after the
other, composing the network's affine maps symbolically on each cell (no evaluation at
vertices, no shared-vertex bookkeeping): with ``Fraction`` coordinates it is exact, so
constructed degenerate cases (concurrent, coincident, parallel lines, lines through box
corners) have a known answer without hard-coding it.

The checks test a :class:`lrcore.SliceResult` against its own invariants
(:func:`check_partition`), the network's patterns and values (:func:`check_network`),
dense sampling (:func:`check_sampling`) and 1D counts along lines (:func:`check_lines`).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import lrcore
from support import NetSpec, flat_neuron_index

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
        # The 2D result's zero rule (rtol; the default one for a certified result): the
        # segment's float input points lie off the plane by rounding, so in exact
        # arithmetic (count_1d's default) lines that coincide on the plane may cross it
        # apart.
        rtol = lrcore.DEFAULT_RTOL if r.rtol is None else r.rtol
        one_d = lrcore.count_1d(net, r.to_input(np.stack([p, q])), rtol=rtol)
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


def lines_net(rows, biases, out=None):
    w = np.asarray(rows, dtype=float)
    b = np.asarray(biases, dtype=float)
    w_out = np.ones((1, len(w))) if out is None else np.asarray(out, float)
    return NetSpec((w, w_out), (b, np.zeros(1)))
