"""Traced PyTorch front end: a graph of affine maps and activations lowered to one chain.

A model is traced with ``torch.fx``. The lowering walks the graph in order and keeps a
*state*: the values that are alive after the last activation, side by side in one vector
(at first, the flattened input). Every tensor-valued node is held as an affine function
of it: a sum of terms (a slice of the state, a chain of ops, added into some of the
node's entries) plus an offset. Affine operations (Linear, Conv1d/2d, BatchNorm and
Dropout in eval mode, average pooling, mean, constant padding, flatten/view/reshape,
additions, concatenation, scalar multiples) compose into that function: convolutions stay
convolutions (batch-norm folded into their kernels), matrices compose with the matrix
before them (scipy CSR where sparse, dense where dense layers make it so). A layer is
handed to the core as a :class:`CompositeLayer` of parts, or as one matrix where it is
one (MLPs).

A ReLU / LeakyReLU node closes one hidden layer of the chain: its units are that node's
pre-activation (the neurons) followed by every other value still used later in the graph
(linear units, each live tensor once, see ``Network(linear_units=...)``). After the layer
the state is exactly those units. So a residual block ``relu(x + f(x))`` carries ``x``
next to ``f``'s hidden layers, and two branches that are concatenated become
consecutive layers (the branch waiting for its turn is carried as linear units). Every
activation node is a layer of its own, in graph order: activations of different kinds or
slopes never share a layer. The output node's value is the last (affine) layer.

Max pooling (1-d and 2-d, modules and functions) is lowered by ``_maxpool.py`` to one
hidden layer per round of a ReLU tournament per window.

Refused, with an error naming the node, its kind and its position in the graph: layers
that are not piecewise linear, 3-d max pooling, BatchNorm/Dropout in training mode,
parameters used as values, and models torch.fx cannot trace (data-dependent control
flow).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from ._layers import CompositeLayer, Conv, part_matrix, part_shape
from ._maxpool import PoolingBuilder, lower_max_pool, max_pool_kind
from ._optional import optional_import
from ._torch_sequential import float64_array as _as_numpy

__all__ = ["TracedLayers", "trace_graph", "trace_to_layers"]

# Composed maps switch representation with some hysteresis: sparse ones denser than this
# become dense arrays, dense ones (with more than _SPARSE_MIN_SIZE entries) sparser than
# _SPARSE_BELOW become CSR. The core's dense products beat its sparse ones below 30%
# density (the residual MLP of benchmarks/bench_torch.py, whose [W | I] layers are 25%
# dense, runs twice as fast dense); convolutions are 1-5% dense.
_DENSE_ABOVE = 0.2
_SPARSE_BELOW = 0.05
_SPARSE_MIN_SIZE = 4096

_NOT_PIECEWISE_LINEAR = {
    "tanh",
    "sigmoid",
    "gelu",
    "softmax",
    "log_softmax",
    "silu",
    "elu",
    "selu",
    "celu",
    "softplus",
    "mish",
    "hardtanh",
    "hardswish",
    "hardsigmoid",
    "relu6",
    "logsigmoid",
    "softsign",
    "tanhshrink",
    "exp",
    "log",
    "sqrt",
}


class TracedLayers(NamedTuple):
    """The chain a traced model lowers to: the arguments of :class:`lrcore.Network`."""

    weights: list[Any]
    biases: list[NDArray[np.float64]]
    activations: list[str]
    slopes: list[float]
    linear_units: list[int]
    pooling: PoolingBuilder


# --------------------------------------------------------------------------- matrices


def _sparse() -> Any:
    return optional_import("scipy.sparse", "torch")


def _is_sparse(matrix: Any) -> bool:
    return hasattr(matrix, "tocsr")


def _tidy(matrix: Any) -> Any:
    """The matrix in the representation that suits its density (CSR or dense)."""
    if _is_sparse(matrix):
        csr = matrix.tocsr()
        if csr.nnz > _DENSE_ABOVE * max(1, csr.shape[0] * csr.shape[1]):
            return np.asarray(csr.toarray(), dtype=np.float64)
        return csr
    dense = np.asarray(matrix, dtype=np.float64)
    if dense.size > _SPARSE_MIN_SIZE and np.count_nonzero(dense) < _SPARSE_BELOW * dense.size:
        return _sparse().csr_matrix(dense)
    return dense


def _product(left: Any, right: Any) -> Any:
    """``left @ right`` for dense or CSR operands, tidied."""
    if _is_sparse(left) or not _is_sparse(right):
        return _tidy(left @ right)
    return _tidy((right.T @ left.T).T)


@dataclass(frozen=True, eq=False)
class _Term:
    """A slice of the state mapped by ops and added into some of a value's entries.

    ``ops`` are applied in turn to ``state[start : start + size]``, and the result is added
    to the value's entries ``out_start ..``. An op is a :class:`Conv`, a
    ``("diag", scale)`` pair or a dense / CSR matrix; no ops is the slice itself.
    """

    start: int
    size: int
    out_start: int
    ops: tuple[Any, ...] = ()

    @property
    def out_size(self) -> int:
        return part_shape(self.ops[-1])[0] if self.ops else self.size

    def shifted(self, out_start: int) -> _Term:
        return _Term(self.start, self.size, out_start, self.ops)

    def matrix(self) -> Any:
        """The composed map of the slice (``out_size × size``), dense or CSR."""
        matrix: Any = None
        for op in self.ops:
            step = part_matrix(op)
            matrix = step if matrix is None else _product(step, matrix)
        if matrix is None:
            return _sparse().identity(self.size, format="csr", dtype=np.float64)
        return _tidy(matrix)

    def then(self, matrix: Any) -> _Term:
        """``matrix`` (rows by this term's outputs) after the term's ops."""
        last = self.ops[-1] if self.ops else None
        if last is not None and not isinstance(last, Conv):
            return _Term(
                self.start, self.size, 0, (*self.ops[:-1], _product(matrix, part_matrix(last)))
            )
        return _Term(self.start, self.size, 0, (*self.ops, _tidy(matrix)))

    def scaled(self, scale: NDArray[np.float64]) -> _Term:
        """Each output multiplied by its entry of ``scale``."""
        last = self.ops[-1] if self.ops else None
        rest = self.ops[:-1]
        if isinstance(last, Conv):
            per_channel = scale.reshape(last.out_shape[0], -1)
            if np.all(per_channel == per_channel[:, :1]):
                return _Term(
                    self.start, self.size, self.out_start, (*rest, last.scaled(per_channel[:, 0]))
                )
            return _Term(self.start, self.size, self.out_start, (*self.ops, ("diag", scale)))
        if last is None:
            return _Term(self.start, self.size, self.out_start, (("diag", scale),))
        if isinstance(last, tuple):
            return _Term(self.start, self.size, self.out_start, (*rest, ("diag", scale * last[1])))
        if _is_sparse(last):
            scaled = _sparse().diags(scale, format="csr") @ last
        else:
            scaled = scale[:, None] * last
        return _Term(self.start, self.size, self.out_start, (*rest, _tidy(scaled)))


@dataclass(frozen=True, eq=False)
class _Value:
    """A tensor node's value: the sum of its terms plus ``offset``, in ``shape`` (C order).

    The terms map slices of the state (``width`` entries); keeping them apart keeps
    convolutions structured and carried values diagonal.
    """

    shape: tuple[int, ...]
    terms: tuple[_Term, ...]
    offset: NDArray[np.float64]
    width: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def matrix(self) -> Any:
        """The value's whole matrix (``size × width``), dense or CSR."""
        sparse = _sparse()
        total = sparse.csr_matrix((self.size, self.width), dtype=np.float64)
        for term in self.terms:
            block = sparse.coo_matrix(term.matrix())
            total = total + sparse.csr_matrix(
                (block.data, (block.row + term.out_start, block.col + term.start)),
                shape=(self.size, self.width),
            )
        return _tidy(total)

    def _covers(self, term: _Term) -> bool:
        return term.out_start == 0 and term.out_size == self.size

    def then(self, matrix: Any, offset: NDArray[np.float64], shape: tuple[int, ...]) -> _Value:
        """The composition: first self, then ``x -> matrix @ x + offset``."""
        applied = np.asarray(matrix @ self.offset, dtype=np.float64).ravel()
        terms = []
        for term in self.terms:
            part = (
                matrix
                if self._covers(term)
                else matrix[:, term.out_start : term.out_start + term.out_size]
            )
            terms.append(term.then(part))
        return _Value(shape, tuple(terms), applied + offset, self.width)

    def convolved(self, conv: Conv, bias: NDArray[np.float64], torch: Any) -> _Value:
        """The convolution (plus a bias per output) of this value, kept as a convolution."""
        value = self
        if not all(self._covers(t) for t in self.terms):
            value = _Value(
                self.shape, (_Term(0, self.width, 0, (self.matrix,)),), self.offset, self.width
            )
        applied = bias
        if np.any(self.offset != 0):
            applied = bias + _conv_apply(conv, self.offset, torch)
        terms = tuple(_Term(t.start, t.size, 0, (*t.ops, conv)) for t in value.terms)
        return _Value(conv.out_shape, terms, applied, self.width)

    def scaled_rows(self, scale: NDArray[np.float64], shift: NDArray[np.float64]) -> _Value:
        """``scale * self + shift`` elementwise (batch-norm)."""
        terms = tuple(t.scaled(scale[t.out_start : t.out_start + t.out_size]) for t in self.terms)
        return _Value(self.shape, terms, scale * self.offset + shift, self.width)

    def same_tensor(self, other: _Value) -> bool:
        """Whether both hold the same entries (one is a view or an alias of the other)."""
        return self.terms is other.terms and self.offset is other.offset

    def times(self, factor: float) -> _Value:
        return self.scaled_rows(np.full(self.size, float(factor)), np.zeros(self.size))

    def reshaped(self, shape: tuple[int, ...]) -> _Value:
        """The same entries in another shape (shares the terms: the same tensor)."""
        return _Value(shape, self.terms, self.offset, self.width)

    def rows(self, order: NDArray[np.int64], shape: tuple[int, ...]) -> _Value:
        picks = _sparse().csr_matrix(
            (np.ones(order.size), (np.arange(order.size), order)), shape=(order.size, self.size)
        )
        return self.then(picks, np.zeros(order.size), shape)

    def plus(self, other: _Value, factor: float) -> _Value:
        """``self + factor * other``."""
        if factor != 1.0:
            other = other.times(factor)
        return _Value(self.shape, self.terms + other.terms, self.offset + other.offset, self.width)


def _stacked(values: Sequence[_Value]) -> _Value:
    """Values one after the other, as one flat value."""
    terms: list[_Term] = []
    start = 0
    for value in values:
        terms.extend(t.shifted(t.out_start + start) for t in value.terms)
        start += value.size
    return _Value(
        (start,), tuple(terms), np.concatenate([v.offset for v in values]), values[0].width
    )


def _state_value(shape: tuple[int, ...], start: int, width: int) -> _Value:
    """Entries ``start ..`` of a state of ``width`` entries, in ``shape``."""
    size = math.prod(shape)
    return _Value(shape, (_Term(start, size, 0),), np.zeros(size), width)


def _conv_apply(conv: Conv, vector: NDArray[np.float64], torch: Any) -> NDArray[np.float64]:
    """The convolution of one vector, by torch (no matrix formed)."""
    functional = torch.nn.functional
    nd = len(conv.in_shape) - 1
    x = torch.as_tensor(vector, dtype=torch.float64).reshape(1, *conv.in_shape)
    pads: list[int] = []
    for lo, hi in reversed(list(zip(conv.pad_lo, conv.pad_hi))):
        pads += [lo, hi]
    x = functional.pad(x, pads)
    run = functional.conv1d if nd == 1 else functional.conv2d
    w = torch.as_tensor(conv.weight, dtype=torch.float64)
    y = run(x, w, stride=conv.stride, dilation=conv.dilation, groups=conv.groups)
    out: NDArray[np.float64] = y.reshape(-1).numpy().copy()
    return out


def _layer_weight(value: _Value, structured: bool) -> Any:
    """A layer's weight for :class:`Network`: a matrix, or a :class:`CompositeLayer`."""
    shape = (value.size, value.width)
    if not structured:
        return value.matrix
    parts: list[tuple[int, int, Any]] = []
    for term in value.terms:
        if not term.ops:
            spec: Any = ("diag", np.ones(term.size))
        elif len(term.ops) == 1:
            spec = term.ops[0]
        else:
            spec = term.matrix()
        parts.append((term.start, term.out_start, spec))
    # Parts adding into the same outputs from overlapping inputs become one matrix.
    merged = True
    while merged:
        merged = False
        for i in range(len(parts)):
            for j in range(i):
                if _overlap(parts[i], parts[j]):
                    parts[j] = _merge(parts[j], parts[i])
                    del parts[i]
                    merged = True
                    break
            if merged:
                break
    if len(parts) == 1:
        in_offset, out_offset, spec = parts[0]
        whole = part_shape(spec) == shape and in_offset == 0 and out_offset == 0
        if whole and not isinstance(spec, (Conv, tuple)):
            return _tidy(spec)
    return CompositeLayer(shape, parts)


def _ranges(part: tuple[int, int, Any]) -> tuple[int, int, int, int]:
    out_size, in_size = part_shape(part[2])
    return part[0], part[0] + in_size, part[1], part[1] + out_size


def _overlap(a: tuple[int, int, Any], b: tuple[int, int, Any]) -> bool:
    a_in0, a_in1, a_out0, a_out1 = _ranges(a)
    b_in0, b_in1, b_out0, b_out1 = _ranges(b)
    return a_in0 < b_in1 and b_in0 < a_in1 and a_out0 < b_out1 and b_out0 < a_out1


def _merged_conv(a: Conv, b: Conv) -> Conv | None:
    """One convolution doing what two on the same input into the same output do, if any.

    Both read the input at ``out * stride - pad + tap * dilation``: one kernel with
    dilation 1 spanning both kernels' offsets holds each tap at its own offset (zero
    padding is the same for both), so the sum is exact.
    """
    same = (a.in_shape, a.out_shape, a.stride, a.groups) == (
        b.in_shape,
        b.out_shape,
        b.stride,
        b.groups,
    )
    if not same:
        return None
    nd = len(a.in_shape) - 1
    lows, highs = [], []
    for axis in range(nd):
        ends = []
        for conv in (a, b):
            k = conv.weight.shape[2 + axis]
            ends += [-conv.pad_lo[axis], -conv.pad_lo[axis] + (k - 1) * conv.dilation[axis]]
        lows.append(min(ends))
        highs.append(max(ends))
    kernel = tuple(h - lo + 1 for lo, h in zip(lows, highs))
    weight = np.zeros(a.weight.shape[:2] + kernel)
    for conv in (a, b):
        taps = tuple(
            slice(
                -conv.pad_lo[i] - lows[i],
                -conv.pad_lo[i] - lows[i] + (conv.weight.shape[2 + i] - 1) * conv.dilation[i] + 1,
                conv.dilation[i],
            )
            for i in range(nd)
        )
        index: tuple[slice, ...] = (slice(None), slice(None))
        weight[index + taps] += conv.weight
    pad_lo = tuple(-lo for lo in lows)
    pad_hi = tuple(
        (a.out_shape[1 + i] - 1) * a.stride[i] + kernel[i] - pad_lo[i] - a.in_shape[1 + i]
        for i in range(nd)
    )
    return Conv(weight, a.in_shape, a.out_shape, a.stride, pad_lo, pad_hi, (1,) * nd, a.groups)


def _merge(a: tuple[int, int, Any], b: tuple[int, int, Any]) -> tuple[int, int, Any]:
    """Two parts as one part over the union of their ranges (a convolution or a matrix)."""
    if isinstance(a[2], Conv) and isinstance(b[2], Conv) and a[:2] == b[:2]:
        conv = _merged_conv(a[2], b[2])
        if conv is not None:
            return a[0], a[1], conv
    sparse = _sparse()
    a_in0, a_in1, a_out0, a_out1 = _ranges(a)
    b_in0, b_in1, b_out0, b_out1 = _ranges(b)
    in0, in1 = min(a_in0, b_in0), max(a_in1, b_in1)
    out0, out1 = min(a_out0, b_out0), max(a_out1, b_out1)
    total = sparse.csr_matrix((out1 - out0, in1 - in0), dtype=np.float64)
    for in_offset, out_offset, spec in (a, b):
        block = sparse.coo_matrix(part_matrix(spec))
        total = total + sparse.csr_matrix(
            (block.data, (block.row + out_offset - out0, block.col + in_offset - in0)),
            shape=total.shape,
        )
    return in0, out0, _tidy(total)


class _Shape:
    """A node whose value is a size or shape (used by view/reshape), not a tensor."""


# --------------------------------------------------------------------------- layer matrices


def _pair(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value),) * n


def _conv(
    weight: NDArray[np.float64],
    in_shape: tuple[int, ...],
    stride: tuple[int, ...],
    pad_lo: tuple[int, ...],
    pad_hi: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> Conv:
    """A zero-padded N-d convolution (N = 1 or 2) on C-order features, kept structured."""
    kernel = weight.shape[2:]
    spatial = in_shape[1:]
    out_spatial = tuple(
        (spatial[i] + pad_lo[i] + pad_hi[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
        for i in range(len(spatial))
    )
    if any(s <= 0 for s in out_spatial):
        msg = f"convolution output would be empty for input shape {in_shape}"
        raise ValueError(msg)
    if in_shape[0] != weight.shape[1] * groups:
        msg = (
            f"convolution expects {weight.shape[1] * groups} input channels, got shape {in_shape}"
        )
        raise ValueError(msg)
    out_shape = (int(weight.shape[0]), *out_spatial)
    return Conv(weight, in_shape, out_shape, stride, pad_lo, pad_hi, dilation, groups)


def _pool_matrix(
    in_shape: tuple[int, ...],
    windows: Sequence[list[tuple[int, int]]],
    divisors: Sequence[NDArray[np.float64]] | None,
) -> tuple[Any, tuple[int, ...]]:
    """CSR matrix of 2-d average pooling with the given (start, end) windows per axis."""
    sparse = _sparse()
    c, h, w = in_shape
    rows, cols, vals = [], [], []
    out_h, out_w = len(windows[0]), len(windows[1])
    for i, (h0, h1) in enumerate(windows[0]):
        for j, (w0, w1) in enumerate(windows[1]):
            ys, xs = np.meshgrid(
                np.arange(max(h0, 0), min(h1, h)), np.arange(max(w0, 0), min(w1, w)), indexing="ij"
            )
            count = ys.size
            div = count if divisors is None else divisors[0][i] * divisors[1][j]
            for ch in range(c):
                rows.append(np.full(count, (ch * out_h + i) * out_w + j))
                cols.append((ch * h + ys.ravel()) * w + xs.ravel())
                vals.append(np.full(count, 1.0 / div))
    matrix = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(c * out_h * out_w, c * h * w),
    )
    return matrix, (c, out_h, out_w)


def _avg_pool_windows(
    module: Any, nn: Any, shape: tuple[int, ...], where: str
) -> tuple[list[list[tuple[int, int]]], list[NDArray[np.float64]] | None]:
    """The (start, end) windows per axis and divisors of AvgPool2d / AdaptiveAvgPool2d."""
    _, height, width = shape
    if isinstance(module, nn.AdaptiveAvgPool2d):
        out = module.output_size
        requested = out if isinstance(out, (tuple, list)) else (out, out)
        out_hw = [int(o) if o is not None else n for o, n in zip(requested, (height, width))]
        windows = [
            [(math.floor(i * n / m), math.ceil((i + 1) * n / m)) for i in range(m)]
            for n, m in ((height, out_hw[0]), (width, out_hw[1]))
        ]
        return windows, None
    if module.ceil_mode:
        msg = f"{where}: ceil_mode=True is not supported"
        raise ValueError(msg)
    k = _pair(module.kernel_size, 2)
    st = _pair(module.stride if module.stride else module.kernel_size, 2)
    pad = _pair(module.padding, 2)
    counts = ((height + 2 * pad[0] - k[0]) // st[0] + 1, (width + 2 * pad[1] - k[1]) // st[1] + 1)
    windows = [
        [(i * st[a] - pad[a], i * st[a] - pad[a] + k[a]) for i in range(n)]
        for a, n in enumerate(counts)
    ]
    if module.divisor_override:
        d = float(module.divisor_override)
        return windows, [np.full(len(windows[0]), d), np.ones(len(windows[1]))]
    if module.count_include_pad:
        return windows, [np.full(len(windows[0]), k[0]), np.full(len(windows[1]), k[1])]
    return windows, None


def _conv_padding(module: Any, nd: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Zero padding before and after each spatial axis of a convolution module."""
    if not isinstance(module.padding, str):
        pad = _pair(module.padding, nd)
        return pad, pad
    if module.padding == "valid":
        return (0,) * nd, (0,) * nd
    # "same": as torch, the extra pixel goes after.
    kernel = _pair(module.kernel_size, nd)
    dilation = _pair(module.dilation, nd)
    total = [dilation[i] * (kernel[i] - 1) for i in range(nd)]
    return tuple(t // 2 for t in total), tuple(t - t // 2 for t in total)


def _describe(node: Any, position: int, module: Any = None) -> str:
    if module is not None:
        kind = type(module).__name__
    elif node.op == "call_function":
        kind = getattr(node.target, "__name__", str(node.target))
    else:
        kind = str(node.target)
    return f"node {node.name!r} ({kind}) at position {position} of the traced graph"


def _argument(node: Any, index: int, name: str, default: Any) -> Any:
    """A call's argument by position or keyword."""
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


# --------------------------------------------------------------------------- the lowering


class _Lowering:
    """Walks a traced graph once, composing affine maps and closing a layer per activation."""

    def __init__(
        self,
        model: Any,
        graph: Any,
        input_shape: tuple[int, ...],
        torch: Any,
        structured: bool,
    ) -> None:
        self.structured = structured
        self.torch = torch
        self.nn = torch.nn
        # The model's own submodules (a traced graph names them by qualified name): a
        # graph traced once reads the weights the model has now.
        self.modules = dict(model.named_modules(remove_duplicate=False))
        self.nodes = list(graph.nodes)
        position = {node: i for i, node in enumerate(self.nodes)}
        self.last_use = {
            node: max((position[user] for user in node.users), default=-1) for node in self.nodes
        }
        self.input_shape = input_shape
        self.values: dict[Any, _Value | _Shape] = {}
        self.layers = TracedLayers([], [], [], [], [], PoolingBuilder())

    # -- helpers ---------------------------------------------------------------------
    def tensor(self, arg: Any, where: str) -> _Value:
        value = self.values.get(arg) if hasattr(arg, "op") else None
        if not isinstance(value, _Value):
            msg = f"{where}: expected a tensor computed from the input, got {arg!r}"
            # The model is the right type; what its graph does is not supported.
            raise ValueError(msg)  # noqa: TRY004
        return value

    def run(self) -> TracedLayers:
        placeholders = 0
        for position, node in enumerate(self.nodes):
            module = self.modules.get(node.target) if node.op == "call_module" else None
            where = _describe(node, position, module)
            if node.op == "placeholder":
                placeholders += 1
                if placeholders > 1:
                    msg = f"{where}: models with more than one input are not supported"
                    raise ValueError(msg)
                size = math.prod(self.input_shape)
                self.values[node] = _state_value(self.input_shape, 0, size)
            elif node.op == "output":
                return self.finish(node, where)
            elif node.op == "get_attr":
                msg = f"{where}: parameters or buffers used as values are not supported"
                raise ValueError(msg)
            elif self.is_activation(node, module):
                self.close_layer(node, position, module, where)
            elif max_pool_kind(type(module).__name__ if module is not None else self.name(node)):
                self.values[node] = lower_max_pool(self, node, module, position, where)
            else:
                self.values[node] = self.affine(node, module, where)
        raise ValueError("model: the traced graph has no output node")

    def finish(self, node: Any, where: str) -> TracedLayers:
        value = self.tensor(node.args[0], f"{where}: the output")
        self.layers.weights.append(_layer_weight(value, self.structured))
        self.layers.biases.append(np.asarray(value.offset, dtype=np.float64).ravel())
        return self.layers

    @staticmethod
    def name(node: Any) -> str:
        return "" if node.op != "call_function" else getattr(node.target, "__name__", "")

    # -- activations -----------------------------------------------------------------
    def activation_of(self, node: Any, module: Any) -> tuple[str, float, bool] | None:
        """(kind, negative slope, in place) if the node is a ReLU / LeakyReLU, else None."""
        torch, functional = self.torch, self.torch.nn.functional
        target = node.target
        if isinstance(module, self.nn.ReLU):
            return "relu", 0.0, bool(module.inplace)
        if isinstance(module, self.nn.LeakyReLU):
            return "leaky_relu", float(module.negative_slope), bool(module.inplace)
        if node.op == "call_function" and target in (torch.relu, functional.relu):
            return "relu", 0.0, bool(_argument(node, 1, "inplace", False))
        if node.op == "call_function" and target in (torch.relu_, functional.relu_):
            return "relu", 0.0, True
        if node.op == "call_method" and target in ("relu", "relu_"):
            return "relu", 0.0, target == "relu_"
        if node.op == "call_function" and target in (
            functional.leaky_relu,
            functional.leaky_relu_,
        ):
            slope = float(_argument(node, 1, "negative_slope", 0.01))
            inplace = target is functional.leaky_relu_ or _argument(node, 2, "inplace", False)
            return "leaky_relu", slope, bool(inplace)
        return None

    def is_activation(self, node: Any, module: Any) -> bool:
        return node.op in ("call_module", "call_function", "call_method") and (
            self.activation_of(node, module) is not None
        )

    def close_layer(self, node: Any, position: int, module: Any, where: str) -> None:
        """A hidden layer: the node's pre-activation, then every other live value."""
        spec = self.activation_of(node, module)
        assert spec is not None
        kind, slope, inplace = spec
        pre_activation = self.tensor(node.args[0], where)
        self.close_hidden(
            [pre_activation],
            kind,
            slope,
            position,
            node=node,
            aliased=pre_activation.same_tensor if inplace else None,
        )

    def close_hidden(
        self,
        blocks: Sequence[_Value],
        kind: str,
        slope: float,
        position: int,
        *,
        node: Any = None,
        aliased: Callable[[_Value], bool] | None = None,
    ) -> list[_Value]:
        """Close one hidden layer and return the new state's values of ``blocks``.

        The layer applies ``kind`` to the first block; the other blocks, then every value
        used after ``position``, follow as linear units. Values used later are grouped by
        tensor (a view or an Identity shares its source's matrix), so each is carried
        once. ``node``, when given, takes the first block's new value, as does every value
        for which ``aliased`` holds (an in-place activation overwrites them); those are
        not carried.
        """
        groups: dict[tuple[int, int], list[Any]] = {}
        for other, value in self.values.items():
            if not isinstance(value, _Value) or self.last_use[other] <= position:
                continue
            if aliased is not None and aliased(value):
                continue
            groups.setdefault((id(value.terms), id(value.offset)), []).append(other)
        carried: list[_Value] = []
        for members in groups.values():
            value = self.values[members[0]]
            assert isinstance(value, _Value)
            carried.append(value)
        stacked = [b for b in (*blocks, *carried) if b.size]  # an empty block has no rows
        assert stacked
        layer = _stacked(stacked)
        width = layer.size
        self.layers.weights.append(_layer_weight(layer, self.structured))
        self.layers.biases.append(layer.offset)
        self.layers.activations.append(kind)
        self.layers.slopes.append(slope)
        self.layers.linear_units.append(width - blocks[0].size)

        # The new state is this layer's output: the blocks, then the carried values.
        values: dict[Any, _Value | _Shape] = {
            n: v for n, v in self.values.items() if isinstance(v, _Shape)
        }
        outputs: list[_Value] = []
        start = 0
        for block in blocks:
            outputs.append(_state_value(block.shape, start, width))
            start += block.size
        if node is not None:
            values[node] = outputs[0]
            if aliased is not None:
                for other, value in self.values.items():
                    if isinstance(value, _Value) and aliased(value):
                        values[other] = outputs[0].reshaped(value.shape)
        for members in groups.values():
            first = self.values[members[0]]
            assert isinstance(first, _Value)
            shared = _state_value(first.shape, start, width)
            for member in members:
                member_value = self.values[member]
                assert isinstance(member_value, _Value)
                values[member] = shared.reshaped(member_value.shape)
            start += first.size
        self.values = values
        return outputs

    def state_map(self, matrix: Any, width: int) -> _Value:
        """The value ``matrix @ state`` for a state of ``width`` entries."""
        rows = int(matrix.shape[0])
        return _Value((rows,), (_Term(0, width, 0, (matrix,)),), np.zeros(rows), width)

    # -- affine operations -----------------------------------------------------------
    def affine(self, node: Any, module: Any, where: str) -> _Value | _Shape:
        """The value of a node that is not an activation (refusing what is not affine)."""
        nn, torch = self.nn, self.torch
        if module is not None:
            if getattr(module, "training", False) and isinstance(
                module, (nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d)
            ):
                msg = (
                    f"{where}: in training mode its output is random or batch-dependent; "
                    "call model.eval()"
                )
                raise ValueError(msg)
            return self.module_value(node, module, where)
        target = node.target
        name = target if isinstance(target, str) else getattr(target, "__name__", "")
        if (node.op == "call_method" and name in ("size", "dim")) or (
            target is getattr and node.args[1] == "shape"
        ):
            return _Shape()
        if target is operator.getitem and isinstance(self.values.get(node.args[0]), _Shape):
            return _Shape()
        if name in ("view", "reshape", "flatten") or target is torch.flatten:
            return self.reshape(node, name, where)
        if target in (torch.cat, torch.concat) or name in ("cat", "concat"):
            return self.concatenate(node, where)
        if name in ("add", "sub", "iadd", "isub", "mul", "imul", "truediv", "div", "neg"):
            return self.arithmetic(node, name, where)
        if target is torch.nn.functional.dropout or name in ("contiguous", "clone"):
            if name == "dropout" and _argument(node, 2, "training", True):
                msg = f"{where}: functional dropout with training=True is random"
                raise ValueError(msg)
            return self.tensor(node.args[0], where)
        if name in ("adaptive_avg_pool2d", "avg_pool2d"):
            return self.module_value(node, self.pool_module(node, name), where)
        if name == "mean":
            return self.mean(node, where)
        if name == "pad":
            return self.pad(node, where)
        hint = ""
        if "max_pool" in name.lower():
            hint = " (of max pooling, only the 1-d and 2-d kinds are supported)"
        elif name.lower() in _NOT_PIECEWISE_LINEAR:
            hint = " (not piecewise linear)"
        msg = f"{where}: {name or target} is not supported{hint}"
        raise ValueError(msg)

    def module_value(self, node: Any, module: Any, where: str) -> _Value:
        nn = self.nn
        value = self.tensor(node.args[0], where)
        shape = value.shape
        if isinstance(module, (nn.Identity, nn.Dropout)):
            return value
        if isinstance(module, nn.Linear):
            if len(shape) != 1:
                msg = f"{where}: Linear needs flat features, got shape {shape}; flatten first"
                raise ValueError(msg)
            weight = _as_numpy(module.weight)
            bias = np.zeros(weight.shape[0]) if module.bias is None else _as_numpy(module.bias)
            return value.then(weight, bias, (weight.shape[0],))
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            nd = 1 if isinstance(module, nn.Conv1d) else 2
            if len(shape) != nd + 1:
                expected = "L" if nd == 1 else "H, W"
                msg = f"{where}: expected input of shape (C, {expected}), got {shape}"
                raise ValueError(msg)
            if module.padding_mode != "zeros":
                msg = f"{where}: padding_mode={module.padding_mode!r} is not supported"
                raise ValueError(msg)
            lo, hi = _conv_padding(module, nd)
            conv = _conv(
                _as_numpy(module.weight),
                shape,
                _pair(module.stride, nd),
                lo,
                hi,
                _pair(module.dilation, nd),
                int(module.groups),
            )
            channel_bias = (
                np.zeros(module.out_channels) if module.bias is None else _as_numpy(module.bias)
            )
            per_channel = math.prod(conv.out_shape[1:])
            return value.convolved(conv, np.repeat(channel_bias, per_channel), self.torch)
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if module.running_mean is None:
                msg = f"{where}: needs running statistics (track_running_stats=True)"
                raise ValueError(msg)
            scale = 1.0 / np.sqrt(_as_numpy(module.running_var) + module.eps)
            shift = -_as_numpy(module.running_mean) * scale
            if module.affine:
                gamma, beta = _as_numpy(module.weight), _as_numpy(module.bias)
                scale, shift = scale * gamma, shift * gamma + beta
            per_channel = math.prod(shape[1:]) if len(shape) > 1 else 1
            return value.scaled_rows(np.repeat(scale, per_channel), np.repeat(shift, per_channel))
        if isinstance(module, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            if len(shape) != 3:
                msg = f"{where}: expected input of shape (C, H, W), got {shape}"
                raise ValueError(msg)
            windows, divisors = _avg_pool_windows(module, nn, shape, where)
            matrix, out_shape = _pool_matrix(shape, windows, divisors)
            return value.then(matrix, np.zeros(matrix.shape[0]), out_shape)
        if isinstance(module, nn.Flatten):
            return self.flattened(value, module.start_dim, module.end_dim, where)
        kind = type(module).__name__
        hint = ""
        if "MaxPool" in kind:
            hint = " (of max pooling, only the 1-d and 2-d kinds are supported)"
        elif kind.lower() in _NOT_PIECEWISE_LINEAR:
            hint = " (not piecewise linear)"
        msg = f"{where}: {kind} is not supported{hint}"
        raise ValueError(msg)

    def pool_module(self, node: Any, name: str) -> Any:
        """The pooling module that does what a functional pooling call does."""
        nn = self.nn
        if name == "adaptive_avg_pool2d":
            return nn.AdaptiveAvgPool2d(_argument(node, 1, "output_size", None))
        kernel = _argument(node, 1, "kernel_size", None)
        return nn.AvgPool2d(
            kernel,
            stride=_argument(node, 2, "stride", None),
            padding=_argument(node, 3, "padding", 0),
            ceil_mode=bool(_argument(node, 4, "ceil_mode", False)),
            count_include_pad=bool(_argument(node, 5, "count_include_pad", True)),
            divisor_override=_argument(node, 6, "divisor_override", None),
        )

    def mean(self, node: Any, where: str) -> _Value:
        """``x.mean(dims)`` / ``torch.mean(x, dims)`` over non-batch dimensions."""
        value = self.tensor(node.args[0], where)
        dims = _argument(node, 1, "dim", None)
        keepdim = bool(_argument(node, 2, "keepdim", False))
        ndim = len(value.shape) + 1
        if dims is None:
            msg = f"{where}: a mean over every dimension includes the batch; give dims"
            raise ValueError(msg)
        axes = sorted(
            {int(d) % ndim for d in (dims if isinstance(dims, (tuple, list)) else [dims])}
        )
        if 0 in axes:
            msg = f"{where}: a mean over the batch dimension is not supported"
            raise ValueError(msg)
        inner = [a - 1 for a in axes]
        kept = [n if i not in inner else 1 for i, n in enumerate(value.shape)]
        # Each entry's row in the result: its index with the averaged axes set to 0.
        grids = np.indices(value.shape)
        for axis in inner:
            grids[axis] = 0
        target = np.ravel_multi_index(tuple(grids), tuple(kept)).ravel()
        count = math.prod(value.shape[a] for a in inner)
        out_size = math.prod(kept)
        matrix = _sparse().csr_matrix(
            (np.full(value.size, 1.0 / count), (target, np.arange(value.size))),
            shape=(out_size, value.size),
        )
        shape = tuple(kept) if keepdim else tuple(n for i, n in enumerate(kept) if i not in inner)
        return value.then(matrix, np.zeros(out_size), shape)

    def pad(self, node: Any, where: str) -> _Value:
        """``F.pad`` with a constant (zero or not; negative pads crop)."""
        value = self.tensor(node.args[0], where)
        pads = [int(p) for p in _argument(node, 1, "pad", ())]
        mode = _argument(node, 2, "mode", "constant")
        fill = _argument(node, 3, "value", None)
        if mode != "constant":
            msg = f"{where}: F.pad with mode={mode!r} is not supported (only 'constant')"
            raise ValueError(msg)
        if len(pads) % 2 or len(pads) // 2 > len(value.shape):
            msg = f"{where}: F.pad needs pairs for at most the non-batch dimensions, got {pads}"
            raise ValueError(msg)
        source = np.arange(value.size).reshape(value.shape)
        for pair in range(len(pads) // 2):
            axis = len(value.shape) - 1 - pair
            lo, hi = pads[2 * pair], pads[2 * pair + 1]
            width = [(0, 0)] * len(value.shape)
            width[axis] = (max(lo, 0), max(hi, 0))
            source = np.pad(source, width, constant_values=-1)
            crop = [slice(None)] * len(value.shape)
            crop[axis] = slice(max(-lo, 0), source.shape[axis] - max(-hi, 0))
            source = source[tuple(crop)]
        if source.size == 0:
            msg = f"{where}: F.pad leaves an empty tensor"
            raise ValueError(msg)
        flat = source.ravel()
        rows = np.flatnonzero(flat >= 0)
        matrix = _sparse().csr_matrix(
            (np.ones(rows.size), (rows, flat[rows])), shape=(flat.size, value.size)
        )
        offset = np.where(flat >= 0, 0.0, float(fill or 0.0))
        return value.then(matrix, offset, tuple(source.shape))

    def flattened(self, value: _Value, start: int, end: int, where: str) -> _Value:
        """``torch.flatten(x, start, end)`` of a batch of values of this shape."""
        ndim = len(value.shape) + 1
        start, end = start % ndim, end % ndim
        if start == 0:
            msg = f"{where}: flattening the batch dimension is not supported"
            raise ValueError(msg)
        full = (1, *value.shape)
        shape = (*full[1:start], math.prod(full[start : end + 1]), *full[end + 1 :])
        return value.reshaped(tuple(shape))

    def reshape(self, node: Any, name: str, where: str) -> _Value:
        value = self.tensor(node.args[0], where)
        if name == "flatten" or node.target is self.torch.flatten:
            start = int(_argument(node, 1, "start_dim", 0))
            return self.flattened(value, start, int(_argument(node, 2, "end_dim", -1)), where)
        dims = node.args[1:]
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        if len(dims) < 2 or not all(isinstance(d, int) for d in dims[1:]):
            msg = f"{where}: {name} must keep the batch dimension and give constant sizes after it"
            raise ValueError(msg)
        rest = [int(d) for d in dims[1:]]
        if rest.count(-1) == 1:
            known = math.prod(d for d in rest if d != -1)
            rest = [value.size // known if d == -1 else d for d in rest]
        if math.prod(rest) != value.size:
            msg = f"{where}: cannot {name} {value.shape} to {tuple(rest)}"
            raise ValueError(msg)
        return value.reshaped(tuple(rest))

    def concatenate(self, node: Any, where: str) -> _Value:
        parts = [self.tensor(arg, where) for arg in _argument(node, 0, "tensors", [])]
        dim = int(_argument(node, 1, "dim", 0))
        ndim = len(parts[0].shape) + 1
        axis = dim % ndim - 1  # in the shape without the batch dimension
        if axis < 0 or any(len(p.shape) + 1 != ndim for p in parts):
            msg = f"{where}: only concatenation along a non-batch dimension is supported"
            raise ValueError(msg)
        # Where each entry of the result comes from in the stacked parts (C order).
        starts = np.cumsum([0] + [p.size for p in parts[:-1]])
        indices = [np.arange(p.size).reshape(p.shape) + s for p, s in zip(parts, starts)]
        try:
            order = np.concatenate(indices, axis=axis)
        except ValueError as err:
            msg = f"{where}: shapes {[p.shape for p in parts]} do not concatenate: {err}"
            raise ValueError(msg) from err
        stacked = _stacked(parts)
        flat = order.ravel()
        if np.array_equal(flat, np.arange(flat.size)):
            return stacked.reshaped(tuple(order.shape))
        return stacked.rows(flat, tuple(order.shape))

    def arithmetic(self, node: Any, name: str, where: str) -> _Value:
        """Sums and differences of tensors, and tensors times or divided by constants."""
        operands = list(node.args)
        if name == "neg":
            return self.tensor(operands[0], where).times(-1.0)
        left, right = operands[0], operands[1]
        constant = (int, float)
        if name in ("mul", "imul", "truediv", "div"):
            divide = name in ("truediv", "div")
            if divide and node.kwargs.get("rounding_mode") is not None:
                msg = f"{where}: division with rounding is not affine"
                raise ValueError(msg)
            if isinstance(right, constant) and hasattr(left, "op"):
                factor = 1.0 / float(right) if divide else float(right)
                return self.tensor(left, where).times(factor)
            if not divide and isinstance(left, constant) and hasattr(right, "op"):
                return self.tensor(right, where).times(float(left))
            msg = f"{where}: only multiplication or division by a constant number is affine"
            raise ValueError(msg)
        sign = -1.0 if name in ("sub", "isub") else 1.0
        alpha = float(node.kwargs.get("alpha", 1.0))
        if isinstance(right, constant) and hasattr(left, "op"):
            value = self.tensor(left, where)
            return _Value(
                value.shape, value.terms, value.offset + sign * alpha * float(right), value.width
            )
        if isinstance(left, constant) and hasattr(right, "op"):
            value = self.tensor(right, where).times(sign)
            return _Value(value.shape, value.terms, value.offset + float(left), value.width)
        a, b = self.tensor(left, where), self.tensor(right, where)
        if a.shape != b.shape:
            msg = f"{where}: adding shapes {a.shape} and {b.shape} (broadcasting) is not supported"
            raise ValueError(msg)
        factor = sign * alpha
        return a.plus(b, factor)


def trace_graph(model: Any) -> Any:
    """The ``torch.fx`` graph of a model (what :func:`trace_to_layers` lowers).

    Tracing costs milliseconds; a caller converting the same model again and again (the
    tracker, after each few training steps) traces once and passes the graph back in.
    """
    fx = optional_import("torch.fx", "torch")
    try:
        graph_module = fx.symbolic_trace(model)
    except Exception as err:  # tracing errors come in many types
        msg = f"model: torch.fx could not trace it (data-dependent control flow?): {err}"
        raise ValueError(msg) from err
    return graph_module.graph


def trace_to_layers(
    model: Any, input_shape: Sequence[int], structured: bool = True, graph: Any = None
) -> TracedLayers:
    """The chain (with linear units) that a traced model lowers to.

    Parameters
    ----------
    model
        A ``torch.nn.Module`` traceable by ``torch.fx`` (in eval mode where it has
        batch-norm or dropout). It is not changed.
    input_shape
        Shape of one input without the batch dimension, e.g. ``(1, 28, 28)``.
    structured
        Layers with convolutions or carried values as :class:`CompositeLayer` (the core
        applies convolutions as convolutions); False gives every layer as one dense or
        CSR matrix (the representation before convolutions were kept structured, for
        comparisons).
    graph
        The model's graph from :func:`trace_graph`, traced before (its modules are looked
        up in ``model`` by name, so their current weights are read); None traces now.
    """
    torch = optional_import("torch")
    if graph is None:
        graph = trace_graph(model)
    shape = tuple(int(s) for s in input_shape)
    with torch.no_grad():
        return _Lowering(model, graph, shape, torch, structured).run()
