"""Exact max pooling: windows lowered to ReLU tournaments, and results read back per window.

Lowering (used by ``_torch_fx.py``). A window's maximum is computed by a *tournament*:
``max(a, b) = a + relu(b - a)`` over a balanced tree of its entries, one hidden layer of
the chain per round. In a round every window pairs its candidates in order (``c0`` with
``c1``, ``c2`` with ``c3``, ...; an odd last one waits); each pair is one *match*, a
neuron ``later - earlier``, and the earlier candidates travel beside the matches as
linear units, as does every other value still used later in the graph. The match's
result is ``earlier + relu(later - earlier)``. The lowered chain computes the model's
function exactly, and its sign pattern is finer than the pooling's: a match between two
candidates that both lose further up (a *loser* match) can change sign while no window's
argmax changes and the function stays affine.

Reading back. A match's bit is on when the later candidate wins it (``later - earlier >
0``); on a tie (a value the core decides is zero) the earlier one wins, as torch takes the
first maximum of a window. Following the bits down from a window's final match gives
its argmax. The *canonical pattern* keeps the bits of the matches on the winner's path
(they are constant wherever the argmax is) and clears the others; it determines the
argmax, and two inputs have the same canonical pattern exactly when they have the same
ReLU signs and the same argmax in every window. :func:`merge_paths` rewrites a batch of
1D results in those terms: breakpoints where only loser matches flip are dropped, the
pieces on either side merged, and every kept breakpoint lists the windows whose argmax
changes there. :func:`merge_slice` does the same for a slice's faces (their union per
canonical pattern is convex) and edges.

This module imports neither torch nor the traced front end: the lowering works on the
front end's values through their own methods (``then``, ``reshaped``) and closes hidden
layers through the lowering's (``close_hidden``, ``state_map``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._optional import optional_import

__all__ = [
    "MaxPooling",
    "PathPooling",
    "PoolRecord",
    "PoolingBuilder",
    "SlicePooling",
    "build_pooling",
    "lower_max_pool",
    "max_pool_kind",
    "merge_paths",
    "merge_slice",
]

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]


_MODULES = ("MaxPool1d", "MaxPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d")
_FUNCTIONS = ("max_pool1d", "max_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d")


# --------------------------------------------------------------------------- description


@dataclass(frozen=True)
class PoolRecord:
    """One pooling node of a lowered network.

    Attributes
    ----------
    name
        The traced node's name.
    layer
        Hidden layer of its first round: the window entries are ``matrix @ h + offset``,
        ``h`` that layer's input (the network input for layer 0, else the previous
        hidden layer's activated units followed by its linear units).
    matrix, offset
        The pooling input (flattened, C order) as an affine function of ``h``.
    in_shape, out_shape
        Shapes of the pooling input and output without the batch dimension.
    first_window
        Index of its first window in :class:`MaxPooling` (windows follow the output in C
        order).
    """

    name: str
    layer: int
    matrix: Any
    offset: FloatArray
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    first_window: int


@dataclass(frozen=True)
class MaxPooling:
    """The max-pooling windows of a network lowered from torch, and their tournaments.

    Windows are numbered over all pooling nodes, in graph order, each node's in the C
    order of its output. An *entry* is a flat (C order) index into its node's input.
    Matches (tournament neurons) are numbered over all windows.

    Attributes
    ----------
    pools
        One :class:`PoolRecord` per pooling node.
    window_pool
        ``(W,)`` the node of each window.
    entry_offsets, entries
        CSR: window ``w``'s entries are ``entries[entry_offsets[w]:entry_offsets[w + 1]]``
        in the order torch scans them.
    root
        ``(W,)`` the final match of each window, ``-1`` for a window of one entry.
    neurons
        ``(M, 2)`` (layer, unit) of each match.
    window
        ``(M,)`` the window of each match.
    parent, side
        ``(M,)`` the match its result goes to (``-1`` for a root) and as which operand
        (0 earlier, 1 later).
    child, leaf
        ``(M, 2)`` per operand (0 earlier, 1 later): the match it is the result of, or
        ``-1`` when it is an entry, then ``leaf`` is the entry's position in the window.
    depth
        ``(M,)`` rounds between the match and its window's root (0 for a root).
    """

    pools: tuple[PoolRecord, ...]
    window_pool: IntArray
    entry_offsets: IntArray
    entries: IntArray
    root: IntArray
    neurons: IntArray
    window: IntArray
    parent: IntArray
    side: IntArray
    child: IntArray
    leaf: IntArray
    depth: IntArray

    @property
    def num_windows(self) -> int:
        """Number of pooling windows."""
        return int(self.window_pool.shape[0])

    @property
    def num_matches(self) -> int:
        """Number of tournament neurons."""
        return int(self.window.shape[0])

    def columns(self, offsets: IntArray) -> IntArray:
        """Pattern column of each match, given ``Network.neuron_offsets()``."""
        out: IntArray = offsets[self.neurons[:, 0]] + self.neurons[:, 1]
        return out

    def window_entry(self, window: int, position: IntArray | int) -> IntArray:
        """Flat input index of the entries at ``position`` in ``window``."""
        out: IntArray = self.entries[self.entry_offsets[window] + np.asarray(position)]
        return out

    # -- reading patterns ------------------------------------------------------------
    def winners(self, bits: NDArray[np.bool_], offsets: IntArray) -> tuple[IntArray, Any]:
        """Argmax position of every window and which matches lie on a winner's path.

        Parameters
        ----------
        bits
            ``(n, num_neurons)`` patterns of the lowered network.
        offsets
            ``Network.neuron_offsets()``.

        Returns
        -------
        argmax, on_path
            ``(n, W)`` the winning entry's position in each window, and ``(n, M)`` bool:
            the match lies on the winner's path (its bit is determined by the argmax).
        """
        n = bits.shape[0]
        cols = self.columns(offsets)
        on_path = np.zeros((n, self.num_matches), dtype=bool)
        argmax = np.zeros((n, self.num_windows), dtype=np.int64)
        windows = np.flatnonzero(self.root >= 0)  # windows of one entry: position 0
        if windows.size == 0 or n == 0:
            return argmax, on_path
        # Walk down from every window's root along the winning operands, all rows at once.
        rows = np.repeat(np.arange(n), windows.size)
        wins = np.tile(windows, n)
        match = self.root[wins]
        while rows.size:
            on_path[rows, match] = True
            side = bits[rows, cols[match]].astype(np.int64)
            below = self.child[match, side]
            leaf = below < 0
            argmax[rows[leaf], wins[leaf]] = self.leaf[match[leaf], side[leaf]]
            rows, wins, match = rows[~leaf], wins[~leaf], below[~leaf]
        return argmax, on_path


# --------------------------------------------------------------------------- windows


def max_pool_kind(name: str) -> bool:
    """Whether a module class name or function name is max pooling (1-d or 2-d)."""
    return name in _MODULES or name.removesuffix("_with_indices") in _FUNCTIONS


def _tuple(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            return (int(value[0]),) * n
        return tuple(int(v) for v in value)
    return (int(value),) * n


def _axis_windows(
    size: int, kernel: int, stride: int, pad: int, dilation: int, ceil_mode: bool, where: str
) -> list[list[int]]:
    """Input indices of each window along one axis (padding taps left out)."""
    if kernel < 1 or stride < 1 or dilation < 1 or pad < 0:
        msg = f"{where}: kernel, stride and dilation must be positive and padding >= 0"
        raise ValueError(msg)
    if pad > kernel // 2:
        msg = f"{where}: padding {pad} is more than half the kernel size {kernel}"
        raise ValueError(msg)
    span = size + 2 * pad - dilation * (kernel - 1) - 1
    if span < 0:
        msg = f"{where}: the window is larger than the padded input ({size} + 2 * {pad})"
        raise ValueError(msg)
    count = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (count - 1) * stride >= size + pad:
        count -= 1
    windows = []
    for i in range(count):
        taps = [i * stride - pad + t * dilation for t in range(kernel)]
        inside = [t for t in taps if 0 <= t < size]
        if not inside:
            msg = f"{where}: window {i} lies entirely in the padding"
            raise ValueError(msg)
        windows.append(inside)
    return windows


def _adaptive_windows(size: int, out: int | None) -> list[list[int]]:
    m = size if out is None else int(out)
    return [list(range(math.floor(i * size / m), math.ceil((i + 1) * size / m))) for i in range(m)]


def _arg(node: Any, index: int, name: str, default: Any) -> Any:
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


def pool_windows(
    node: Any, module: Any, shape: tuple[int, ...], where: str
) -> tuple[list[list[int]], tuple[int, ...]]:
    """Flat input entries of every window (output in C order) and the output shape."""
    kind = type(module).__name__ if module is not None else getattr(node.target, "__name__", "")
    if kind.endswith("_with_indices"):
        msg = f"{where}: return_indices=True is not supported (the indices are not a tensor value)"
        raise ValueError(msg)
    nd = (
        1 if kind in ("MaxPool1d", "AdaptiveMaxPool1d", "max_pool1d", "adaptive_max_pool1d") else 2
    )
    if len(shape) != nd + 1:
        expected = "(C, L)" if nd == 1 else "(C, H, W)"
        msg = f"{where}: expected input of shape {expected}, got {shape}"
        raise ValueError(msg)
    adaptive = "daptive" in kind
    if module is not None:
        returns_indices = bool(module.return_indices)
    else:
        returns_indices = bool(_arg(node, 2 if adaptive else 6, "return_indices", False))
    if returns_indices:
        msg = f"{where}: return_indices=True is not supported (the indices are not a tensor value)"
        raise ValueError(msg)
    spatial = shape[1:]
    axes: list[list[list[int]]]
    if adaptive:
        out = module.output_size if module is not None else _arg(node, 1, "output_size", None)
        sizes = out if isinstance(out, (tuple, list)) else (out,) * nd
        axes = [_adaptive_windows(n, o) for n, o in zip(spatial, sizes)]
    else:
        if module is not None:
            kernel, stride = module.kernel_size, module.stride
            pad, dilation, ceil = module.padding, module.dilation, module.ceil_mode
        else:
            kernel = _arg(node, 1, "kernel_size", None)
            stride = _arg(node, 2, "stride", None)
            pad = _arg(node, 3, "padding", 0)
            dilation = _arg(node, 4, "dilation", 1)
            ceil = _arg(node, 5, "ceil_mode", False)
        k = _tuple(kernel, nd)
        s = _tuple(stride if stride not in (None, [], ()) else kernel, nd)
        p, d = _tuple(pad, nd), _tuple(dilation, nd)
        axes = [
            _axis_windows(spatial[a], k[a], s[a], p[a], d[a], bool(ceil), where) for a in range(nd)
        ]
    if nd == 1:
        axes = [[[0]], *axes]
    channels = shape[0]
    height, width = (1, spatial[0]) if nd == 1 else spatial
    windows = []
    for c in range(channels):
        for rows in axes[0]:
            for cols in axes[1]:
                windows.append([(c * height + r) * width + q for r in rows for q in cols])
    out_shape = (channels, *(len(a) for a in axes[2 - nd :]))
    return windows, out_shape


# --------------------------------------------------------------------------- lowering


def _sparse() -> Any:
    return optional_import("scipy.sparse", "torch")


def _pick(rows: Sequence[Sequence[tuple[int, float]]], count: int, total: int) -> Any:
    """CSR matrix with ``count`` rows; row ``i`` holds the (column, value) ``rows[i]``."""
    cols = [[c for c, _ in r] for r in rows]
    vals = [[v for _, v in r] for r in rows]
    lengths = np.array([len(c) for c in cols], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    flat_cols = np.array([c for r in cols for c in r], dtype=np.int64)
    flat_vals = np.array([v for r in vals for v in r], dtype=np.float64)
    return _sparse().csr_matrix((flat_vals, flat_cols, indptr), shape=(count, total))


class PoolingBuilder:
    """Accumulates the pooling records and tournaments while a graph is lowered."""

    def __init__(self) -> None:
        self.records: list[PoolRecord] = []
        self.entries: list[list[int]] = []
        self.neurons: list[tuple[int, int]] = []
        self.window: list[int] = []
        self.child: list[list[int]] = []
        self.leaf: list[list[int]] = []
        self.parent: list[int] = []
        self.side: list[int] = []


def lower_max_pool(low: Any, node: Any, module: Any, position: int, where: str) -> Any:
    """The value of a max-pooling node, closing one hidden layer per tournament round.

    ``low`` is the traced front end's lowering (its ``values``, ``last_use`` and
    ``layers``); the pooling is recorded in ``low.layers.pooling``, a
    :class:`PoolingBuilder`.
    """
    value = low.tensor(node.args[0], where)
    windows, out_shape = pool_windows(node, module, value.shape, where)
    tree: PoolingBuilder = low.layers.pooling
    first_window = len(tree.entries)
    record = PoolRecord(
        name=str(node.name),
        layer=len(low.layers.weights),
        matrix=value.matrix,
        offset=np.asarray(value.offset, dtype=np.float64),
        in_shape=tuple(value.shape),
        out_shape=out_shape,
        first_window=first_window,
    )
    tree.entries.extend(windows)
    flat = value.reshaped((value.size,))
    # Candidates of each window: (row of `flat`, match it comes from or -1, entry position).
    cands: list[list[tuple[int, int, int]]] = [
        [(e, -1, i) for i, e in enumerate(w)] for w in windows
    ]
    rounds = 0
    while any(len(c) > 1 for c in cands):
        rounds += 1
        pairs: list[tuple[int, tuple[int, int, int], tuple[int, int, int]]] = []
        keep_at: dict[int, int] = {}  # rows of `flat` carried as linear units, in order
        for w, c in enumerate(cands):
            for i in range(0, len(c) - 1, 2):
                pairs.append((w, c[i], c[i + 1]))
                keep_at.setdefault(c[i][0], len(keep_at))
            if len(c) % 2:
                keep_at.setdefault(c[-1][0], len(keep_at))
        keep = list(keep_at)
        total = flat.size
        diff = _pick([[(b[0], 1.0), (a[0], -1.0)] for _, a, b in pairs], len(pairs), total)
        pre = flat.then(diff, np.zeros(len(pairs)), (len(pairs),))
        carried = flat.then(
            _pick([[(r, 1.0)] for r in keep], len(keep), total), np.zeros(len(keep)), (len(keep),)
        )
        layer = len(low.layers.weights)
        relu_value, _ = low.close_hidden([pre, carried], "relu", 0.0, position)
        # Rows of the next candidates: earlier + relu(match), or a waiting candidate.
        width = int(relu_value.width)
        next_rows: list[list[tuple[int, float]]] = []
        new_cands: list[list[tuple[int, int, int]]] = [[] for _ in cands]
        base = len(tree.window)
        for m, (w, a, b) in enumerate(pairs):
            tree.neurons.append((layer, m))
            tree.window.append(w + first_window)
            tree.child.append([a[1], b[1]])
            tree.leaf.append([a[2] if a[1] < 0 else -1, b[2] if b[1] < 0 else -1])
            tree.parent.append(-1)
            tree.side.append(-1)
            for s, operand in enumerate((a, b)):
                if operand[1] >= 0:
                    tree.parent[operand[1]] = base + m
                    tree.side[operand[1]] = s
            next_rows.append([(len(pairs) + keep_at[a[0]], 1.0), (m, 1.0)])
            new_cands[w].append((len(next_rows) - 1, base + m, -1))
        for w, c in enumerate(cands):
            if len(c) % 2:
                next_rows.append([(len(pairs) + keep_at[c[-1][0]], 1.0)])
                new_cands[w].append((len(next_rows) - 1, c[-1][1], c[-1][2]))
        # Keep each window's candidates in entry order (pairs, then the waiting one).
        flat = low.state_map(_pick(next_rows, len(next_rows), width), width)
        cands = new_cands
    tree.records.append(record)
    order = np.array([c[0][0] for c in cands], dtype=np.int64)
    if not np.array_equal(order, np.arange(flat.size)):
        flat = flat.rows(order, (order.size,))
    if rounds == 0:
        return flat.reshaped(out_shape)  # windows of one entry: nothing was compared
    # The window maxima (``earlier + relu(match)``) are carried as the linear units of
    # one more hidden layer without neurons: the next layer reads them as they are, so
    # a convolution after the pooling stays a convolution (composed with the last
    # round, it would be one CSR matrix of the composed map).
    empty = flat.then(_pick([], 0, flat.size), np.zeros(0), (0,))
    _, pooled = low.close_hidden([empty, flat], "relu", 0.0, position)
    return pooled.reshaped(out_shape)


def build_pooling(tree: PoolingBuilder) -> MaxPooling | None:
    """The :class:`MaxPooling` of a lowering, or None when it has no pooling."""
    if not tree.records:
        return None
    window_pool = np.concatenate(
        [np.full(math.prod(p.out_shape), i, dtype=np.int64) for i, p in enumerate(tree.records)]
    )
    num_windows = int(window_pool.shape[0])
    lengths = np.array([len(e) for e in tree.entries], dtype=np.int64)
    m = len(tree.window)
    window = np.array(tree.window, dtype=np.int64).reshape(m)
    parent = np.array(tree.parent, dtype=np.int64).reshape(m)
    depth = np.zeros(m, dtype=np.int64)
    for i in range(m - 1, -1, -1):  # parents come after their children
        if parent[i] >= 0:
            depth[i] = depth[parent[i]] + 1
    root = np.full(num_windows, -1, dtype=np.int64)
    roots = np.flatnonzero(parent < 0)
    root[window[roots]] = roots
    return MaxPooling(
        pools=tuple(tree.records),
        window_pool=window_pool,
        entry_offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        entries=np.array([e for w in tree.entries for e in w], dtype=np.int64),
        root=root,
        neurons=np.array(tree.neurons, dtype=np.int64).reshape(m, 2),
        window=window,
        parent=parent,
        side=np.array(tree.side, dtype=np.int64).reshape(m),
        child=np.array(tree.child, dtype=np.int64).reshape(m, 2),
        leaf=np.array(tree.leaf, dtype=np.int64).reshape(m, 2),
        depth=depth,
    )


# --------------------------------------------------------------------------- 1D results


@dataclass(frozen=True)
class PathPooling:
    """What the windows do along paths: each piece's argmaxes, each breakpoint's changes.

    Attributes
    ----------
    argmax
        ``(pieces, W)`` the winning entry (a flat index into its pooling node's input)
        of every window on every piece.
    change_offsets, changes
        CSR over breakpoints: breakpoint ``j``'s rows of ``changes`` are
        ``change_offsets[j]:change_offsets[j + 1]``, each ``(window, old entry, new
        entry)``, the argmax before and after it. A breakpoint with no row is a change of
        ReLU signs only.
    """

    argmax: IntArray
    change_offsets: IntArray
    changes: IntArray

    def select(self, pieces: slice, breakpoints: slice) -> PathPooling:
        """The part of a batch's arrays that belongs to one path."""
        offsets = self.change_offsets[breakpoints.start : breakpoints.stop + 1]
        return PathPooling(
            self.argmax[pieces], offsets - offsets[0], self.changes[offsets[0] : offsets[-1]]
        )


def _entry_index(pooling: MaxPooling, positions: IntArray) -> IntArray:
    """Flat input index of the winning entries ``positions`` (``(n, W)``)."""
    out: IntArray = pooling.entries[pooling.entry_offsets[:-1][None, :] + positions]
    return out


def _distinct_rows(bits: NDArray[np.bool_]) -> int:
    """Number of distinct rows of a bool array (packed, compared as bytes)."""
    if bits.shape[0] == 0 or bits.shape[1] == 0:
        return min(int(bits.shape[0]), 1)
    packed = np.ascontiguousarray(np.packbits(bits, axis=1))
    return len(np.unique(packed.view(np.dtype((np.void, packed.shape[1])))))


def merge_paths(
    flat: Any, pooling: MaxPooling, offsets: IntArray, closed: Sequence[bool]
) -> tuple[Any, PathPooling]:
    """Rewrite a batch of 1D results (with patterns) from tournament signs to argmaxes.

    Breakpoints where only loser matches flip are dropped and the pieces beside them
    merged; patterns become canonical (see the module docstring); flipping neurons keep
    those whose canonical bit changes (and every ReLU neuron).

    Returns the new arrays (the keys of ``_core.PathBatchArrays``) and the windows' part.
    """
    num_neurons = int(offsets[-1])
    cols = pooling.columns(offsets)
    is_match = np.zeros(num_neurons, dtype=bool)
    is_match[cols] = True
    patterns = flat["patterns"]
    bits = np.unpackbits(patterns, axis=1, count=num_neurons, bitorder="little").astype(bool)
    argmax_all, on_path = pooling.winners(bits, offsets)
    canon = bits.copy()
    canon[:, cols] &= on_path
    flip_neurons = flat["flip_neurons"].reshape(-1, 2)
    flip_cols = offsets[flip_neurons[:, 0]] + flip_neurons[:, 1]
    flip_offsets = flat["flip_offsets"]

    out_pieces: list[IntArray] = []
    out_bp: list[IntArray] = []
    num_pieces = np.zeros(len(closed), dtype=np.int64)
    num_distinct = np.zeros(len(closed), dtype=np.int64)
    for p, is_closed in enumerate(closed):
        lo, hi = int(flat["offsets"][p]), int(flat["offsets"][p + 1])
        plo, phi = int(flat["piece_offsets"][p]), int(flat["piece_offsets"][p + 1])
        k = hi - lo
        before = np.arange(k)
        after = (before + 1) % max(k, 1) if is_closed else before + 1
        piece = canon[plo:phi]
        keep = np.flatnonzero(np.any(piece[before] != piece[after], axis=1))
        if is_closed:
            pieces = keep if keep.size else np.zeros(1, dtype=np.int64)
        else:
            pieces = np.append(keep, k)
        out_pieces.append(plo + pieces)
        out_bp.append(lo + keep)
        num_pieces[p] = pieces.size
        num_distinct[p] = _distinct_rows(piece[pieces])
    piece_rows = np.concatenate(out_pieces).astype(np.int64)
    bp_rows = np.concatenate(out_bp).astype(np.int64)

    # Neighbours of every kept breakpoint, as rows of the old pieces.
    path_of_bp = np.searchsorted(flat["offsets"], bp_rows, side="right") - 1
    first_bp = flat["offsets"][path_of_bp]
    first_piece = flat["piece_offsets"][path_of_bp]
    k_of = flat["offsets"][path_of_bp + 1] - first_bp
    local = bp_rows - first_bp
    closed_arr = np.asarray(closed, dtype=bool)[path_of_bp]
    before_rows = first_piece + local
    after_rows = first_piece + np.where(closed_arr, (local + 1) % np.maximum(k_of, 1), local + 1)

    # Flipping neurons of the kept breakpoints: ReLU neurons, and matches whose
    # canonical bit changes.
    per_bp = flip_offsets[bp_rows + 1] - flip_offsets[bp_rows]
    owner = np.repeat(np.arange(bp_rows.size), per_bp)
    within = np.arange(owner.size) - np.repeat(np.cumsum(per_bp) - per_bp, per_bp)
    rows = np.repeat(flip_offsets[bp_rows], per_bp) + within
    c = flip_cols[rows]
    differs = canon[before_rows[owner], c] != canon[after_rows[owner], c]
    chosen = ~is_match[c] | differs
    counts = np.bincount(owner[chosen], minlength=bp_rows.size).astype(np.int64)
    entries_before = _entry_index(pooling, argmax_all[before_rows])
    entries_after = _entry_index(pooling, argmax_all[after_rows])
    which, windows = np.nonzero(entries_before != entries_after)
    change_counts = np.bincount(which, minlength=bp_rows.size).astype(np.int64)
    changes = np.stack(
        [windows, entries_before[which, windows], entries_after[which, windows]], axis=1
    ).astype(np.int64)
    piece_offsets = np.concatenate([[0], np.cumsum(num_pieces)]).astype(np.int64)
    bp_offsets = np.concatenate([[0], np.cumsum([len(b) for b in out_bp])]).astype(np.int64)
    new = dict(flat)
    new.update(
        num_pieces=num_pieces,
        num_distinct=num_distinct,
        offsets=bp_offsets,
        breakpoints=flat["breakpoints"][bp_rows],
        segment=flat["segment"][bp_rows],
        flip_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        flip_neurons=flip_neurons[rows[chosen]].astype(np.int64).reshape(-1, 2),
        piece_offsets=piece_offsets,
        patterns=np.packbits(canon[piece_rows], axis=1, bitorder="little"),
    )
    result = PathPooling(
        argmax=_entry_index(pooling, argmax_all[piece_rows]),
        change_offsets=np.concatenate([[0], np.cumsum(change_counts)]).astype(np.int64),
        changes=changes.reshape(-1, 3),
    )
    return new, result


# --------------------------------------------------------------------------- 2D results


@dataclass(frozen=True)
class SlicePooling:
    """What the windows do on a slice: each face's argmaxes, each edge's changes.

    Attributes
    ----------
    argmax
        ``(faces, W)`` the winning entry (a flat index into its pooling node's input)
        of every window on every face.
    change_offsets, changes
        CSR over edges: edge ``e``'s rows of ``changes`` are
        ``change_offsets[e]:change_offsets[e + 1]``, each ``(window, entry, entry)``: the
        argmax in the face with the smaller index beside the edge, then in the other.
        Boundary edges and changes of ReLU signs only have no row.
    """

    argmax: IntArray
    change_offsets: IntArray
    changes: IntArray


def _same_rows(packed: NDArray[np.uint8], i: IntArray, j: IntArray) -> NDArray[np.bool_]:
    out: NDArray[np.bool_] = np.all(packed[i] == packed[j], axis=1)
    return out


def _components(n: int, i: IntArray, j: IntArray) -> IntArray:
    """Connected components of the graph with edges ``(i, j)``, labelled 0..k-1."""
    label = np.arange(n, dtype=np.int64)
    while True:
        before = label.copy()
        low = np.minimum(label[i], label[j])
        np.minimum.at(label, i, low)
        np.minimum.at(label, j, low)
        label = label[label]
        if np.array_equal(label, before):
            break
    _, out = np.unique(label, return_inverse=True)
    result: IntArray = out.astype(np.int64).ravel()
    return result


def merge_slice(
    arrays: Any, pooling: MaxPooling, offsets: IntArray, evaluate: Any
) -> tuple[Any, SlicePooling]:
    """Merge the faces of a slice that differ in loser matches only.

    Faces with equal canonical patterns that share a side are parts of one region (a
    window's argmax region is an intersection of half-planes, so their union is convex).
    Their shared sides go; a vertex left with two collinear sides goes too, its two
    edges becoming one. ``evaluate(points)`` gives the network's neurons at plane points
    (used to relabel an edge whose neuron's canonical bits agree on both sides).

    Returns the new arrays (the keys of ``_core.SliceArrays``) and the windows' part.
    """
    num_neurons = int(offsets[-1])
    cols = pooling.columns(offsets)
    vertices = arrays["vertices"]
    face_offsets = arrays["face_offsets"]
    fv = arrays["face_vertices"]
    bits = np.unpackbits(arrays["patterns"], axis=1, count=num_neurons, bitorder="little").astype(
        bool
    )
    argmax_pos, on_path = pooling.winners(bits, offsets)
    canon = bits.copy()
    canon[:, cols] &= on_path
    packed = np.packbits(canon, axis=1, bitorder="little")
    num_faces = int(face_offsets.shape[0] - 1)
    nv = np.int64(max(int(vertices.shape[0]), 1))

    # Sides and the face across each.
    sizes = np.diff(face_offsets)
    face = np.repeat(np.arange(num_faces, dtype=np.int64), sizes)
    nxt = np.arange(1, fv.shape[0] + 1)
    nxt[face_offsets[1:] - 1] = face_offsets[:-1]
    a, b = fv, fv[nxt]
    key = a * nv + b
    sorter = np.argsort(key)
    rkey = b * nv + a
    pos = np.clip(np.searchsorted(key, rkey, sorter=sorter), 0, max(len(key) - 1, 0))
    across = np.where(key[sorter[pos]] == rkey, face[sorter[pos]], -1) if len(key) else face
    inner = across >= 0
    joined = inner & _same_rows(packed, face, np.where(inner, across, face))
    group = _components(num_faces, face[joined], across[joined])
    num_groups = int(group.max()) + 1 if num_faces else 0

    # Each group's boundary: its sides whose other face is in another group (or none).
    other = np.where(inner, across, face)
    keep = ~inner | (group[face] != group[other])
    g_side, u_side, w_side = group[face[keep]], a[keep], b[keep]
    edges, labels = arrays["edges"], arrays["edge_neurons"]
    edge_key = edges[:, 0] * nv + edges[:, 1]
    edge_sorter = np.argsort(edge_key)
    side_key = np.minimum(u_side, w_side) * nv + np.maximum(u_side, w_side)
    side_label = labels[edge_sorter[np.searchsorted(edge_key, side_key, sorter=edge_sorter)]]

    # Vertices left with two collinear edges go (the end of a dropped edge on a side).
    pair_key = np.unique(side_key)
    ends = np.stack([pair_key // nv, pair_key % nv], axis=1)
    degree = np.bincount(ends.ravel(), minlength=int(vertices.shape[0]))
    by_vertex = np.concatenate([ends, ends[:, ::-1]])
    by_vertex = by_vertex[np.argsort(by_vertex[:, 0], kind="stable")]
    two = np.flatnonzero(degree[by_vertex[:, 0]] == 2)
    drop = np.zeros(int(vertices.shape[0]), dtype=bool)
    if two.size:
        near = by_vertex[two].reshape(-1, 2, 2)  # (vertex, its 2 neighbours)
        v, u, w = near[:, 0, 0], near[:, 0, 1], near[:, 1, 1]
        d1, d2 = vertices[v] - vertices[u], vertices[w] - vertices[v]
        cross = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]
        norms = np.hypot(d1[:, 0], d1[:, 1]) * np.hypot(d2[:, 0], d2[:, 1])
        straight = (np.abs(cross) <= 1e-9 * norms) & (np.einsum("ij,ij->i", d1, d2) > 0)
        drop[v[straight]] = True

    # Each group's kept boundary vertices, counter-clockwise: sorted by angle around
    # their mean, inside the convex polygon.
    kept = ~drop[u_side]
    g_k, u_k, label_k = g_side[kept], u_side[kept], side_label[kept]
    counts = np.bincount(g_k, minlength=num_groups)
    if np.any(counts < 3):
        msg = (
            "slice_2d: a max-pooling region's faces do not form one convex polygon (a "
            "rounding problem); try another rtol or plane"
        )
        raise RuntimeError(msg)
    center = (
        np.stack(
            [np.bincount(g_k, weights=vertices[u_k, i], minlength=num_groups) for i in (0, 1)],
            axis=1,
        )
        / counts[:, None]
    )
    rel = vertices[u_k] - center[g_k]
    order = np.lexsort((np.arctan2(rel[:, 1], rel[:, 0]), g_k))
    g_k, u_k, label_k = g_k[order], u_k[order], label_k[order]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    nxt = np.arange(1, u_k.size + 1)
    nxt[np.cumsum(counts) - 1] = starts
    w_k = u_k[nxt]

    # Edges of the merged partition: one per undirected pair, with the groups beside.
    key = np.minimum(u_k, w_k) * nv + np.maximum(u_k, w_k)
    pair_key, first, inverse, uses = np.unique(
        key, return_index=True, return_inverse=True, return_counts=True
    )
    inverse = inverse.ravel()
    if np.any(uses > 2):
        msg = "slice_2d: an edge of the merged max-pooling faces is used more than twice"
        raise RuntimeError(msg)
    edge_groups = np.full((pair_key.size, 2), -1, dtype=np.int64)
    edge_groups[inverse[first], 0] = g_k[first]
    second = np.setdiff1d(np.arange(key.size), first)
    edge_groups[inverse[second], 1] = g_k[second]
    label_arr = label_k[first].astype(np.int64)
    rep = np.zeros(num_groups, dtype=np.int64)  # a face of each group
    rep[group[::-1]] = np.arange(num_faces)[::-1]
    group_canon = canon[rep]
    group_argmax = pooling.entries[pooling.entry_offsets[:-1][None, :] + argmax_pos[rep]]
    edge_pairs = np.stack([pair_key // nv, pair_key % nv], axis=1)
    _relabel(label_arr, edge_pairs, edge_groups, group_canon, offsets, vertices, evaluate)

    interior = np.flatnonzero(edge_groups[:, 1] >= 0)
    f = np.minimum(edge_groups[interior, 0], edge_groups[interior, 1])
    g = np.maximum(edge_groups[interior, 0], edge_groups[interior, 1])
    rows, windows = np.nonzero(group_argmax[f] != group_argmax[g])
    change_counts = np.zeros(pair_key.size, dtype=np.int64)
    np.add.at(change_counts, interior[rows], 1)
    changes = np.stack(
        [windows, group_argmax[f[rows], windows], group_argmax[g[rows], windows]], axis=1
    ).astype(np.int64)
    # rows come out grouped by interior edge in ascending order, as the CSR needs.

    used = np.unique(u_k)
    new_index = np.full(int(vertices.shape[0]), -1, dtype=np.int64)
    new_index[used] = np.arange(used.size)
    new = dict(arrays)
    new.update(
        vertices=vertices[used],
        outputs=arrays["outputs"][used],
        face_offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        face_vertices=new_index[u_k],
        edges=new_index[edge_pairs],
        edge_neurons=label_arr,
        patterns=np.packbits(group_canon, axis=1, bitorder="little"),
    )
    result = SlicePooling(
        argmax=group_argmax,
        change_offsets=np.concatenate([[0], np.cumsum(change_counts)]).astype(np.int64),
        changes=changes.reshape(-1, 3),
    )
    return new, result


def _relabel(
    labels: IntArray,
    edge_pairs: IntArray,
    edge_groups: IntArray,
    canon: NDArray[np.bool_],
    offsets: IntArray,
    vertices: FloatArray,
    evaluate: Any,
) -> None:
    """Give an interior edge whose neuron's canonical bits agree a neuron that differs.

    A match shared by overlapping windows has one zero line but a neuron per window;
    the edge may carry the one whose window's argmax does not change there. The new
    label is the differing neuron closest to zero at the edge's middle.
    """
    interior = np.flatnonzero(edge_groups[:, 1] >= 0)
    if interior.size == 0:
        return
    column = offsets[labels[interior, 0]] + labels[interior, 1]
    f, g = edge_groups[interior, 0], edge_groups[interior, 1]
    todo = interior[canon[f, column] == canon[g, column]]
    if todo.size == 0:
        return
    mids = 0.5 * (vertices[edge_pairs[todo, 0]] + vertices[edge_pairs[todo, 1]])
    values = np.abs(evaluate(mids))
    for row, e in enumerate(todo):
        differ = np.flatnonzero(canon[edge_groups[e, 0]] != canon[edge_groups[e, 1]])
        if differ.size == 0:
            continue
        best = int(differ[np.argmin(values[row, differ])])
        layer = int(np.searchsorted(offsets, best, side="right") - 1)
        labels[e] = (layer, best - int(offsets[layer]))
