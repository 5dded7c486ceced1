"""Layers made of parts: convolutions applied as convolutions, carried values, residual sums.

A :class:`CompositeLayer` is the weight of one affine layer of a :class:`lrcore.Network`
that :meth:`lrcore.Network.from_torch` builds for convolutional models: the layer's
output is its bias plus the sum of its *parts*, each a map applied to a slice of the
layer's input and added into a slice of its output. A part is a convolution
(:class:`Conv`, with batch-norm folded in; the core applies it as im2col + DGEMM, never
as a matrix), a diagonal map (values carried unchanged in linear units, or scaled), or a
dense or CSR matrix (Linear, average pooling, what could not stay structured). Parts
that add into the same outputs read disjoint inputs, so each output's row norm, which
the zero tolerance uses, is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
from numpy.typing import NDArray

from . import _core

__all__ = ["CompositeLayer", "Conv", "conv_matrix"]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Conv:
    """A zero-padded 1-d or 2-d convolution without bias, on C-order features.

    ``weight`` is ``(out_channels, in_channels / groups, *kernel)``; ``in_shape`` is
    ``(C, L)`` or ``(C, H, W)``; ``pad_lo`` / ``pad_hi`` the zero padding before and
    after each spatial axis.
    """

    weight: FloatArray
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    stride: tuple[int, ...]
    pad_lo: tuple[int, ...]
    pad_hi: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int

    @property
    def in_size(self) -> int:
        return math.prod(self.in_shape)

    @property
    def out_size(self) -> int:
        return math.prod(self.out_shape)

    def scaled(self, channel_scale: FloatArray) -> Conv:
        """The convolution with each output channel's kernel multiplied (batch-norm)."""
        weight = self.weight * channel_scale.reshape((-1,) + (1,) * (self.weight.ndim - 1))
        return Conv(
            weight,
            self.in_shape,
            self.out_shape,
            self.stride,
            self.pad_lo,
            self.pad_hi,
            self.dilation,
            self.groups,
        )

    def _as_2d(self) -> tuple[FloatArray, list[int]]:
        """The 4-d weight and the 15 integers of the core's ``ConvShape``."""
        nd = len(self.in_shape) - 1
        weight = self.weight if nd == 2 else self.weight[:, :, None, :]

        def two(values: tuple[int, ...], fill: int) -> tuple[int, int]:
            return (values[0], values[1]) if nd == 2 else (fill, values[0])

        c_in, *spatial = self.in_shape
        c_out, *out_spatial = self.out_shape
        in_h, in_w = two(tuple(spatial), 1)
        out_h, out_w = two(tuple(out_spatial), 1)
        k_h, k_w = weight.shape[2], weight.shape[3]
        s_h, s_w = two(self.stride, 1)
        p_h, p_w = two(self.pad_lo, 0)
        d_h, d_w = two(self.dilation, 1)
        geometry = [c_in, in_h, in_w, c_out, out_h, out_w, k_h, k_w, s_h, s_w, p_h, p_w, d_h, d_w]
        return np.ascontiguousarray(weight, dtype=np.float64), [*geometry, self.groups]

    def core_spec(self, absolute: bool = False) -> tuple[str, FloatArray, list[int]]:
        weight, geometry = self._as_2d()
        return ("conv", np.abs(weight) if absolute else weight, geometry)

    def row_norms(self) -> FloatArray:
        """Norm of each output unit's row: the taps that land on padding do not count."""
        weight, g = self._as_2d()
        _, in_h, in_w, c_out, out_h, out_w, k_h, k_w, s_h, s_w, p_h, p_w, d_h, d_w, _ = g
        tap_sq = (weight**2).sum(axis=1)  # (out, k_h, k_w)

        def valid(out: int, size: int, stride: int, pad: int, k: int, dil: int) -> FloatArray:
            src = np.arange(out)[:, None] * stride - pad + np.arange(k)[None, :] * dil
            return ((src >= 0) & (src < size)).astype(np.float64)

        vy = valid(out_h, in_h, s_h, p_h, k_h, d_h)
        vx = valid(out_w, in_w, s_w, p_w, k_w, d_w)
        sums = np.einsum("okl,yk,xl->oyx", tap_sq, vy, vx)
        out: FloatArray = np.sqrt(sums).reshape(c_out * out_h * out_w)
        return out

    def matrix(self) -> Any:
        """The CSR matrix of the convolution (for tests, baselines and fallbacks)."""
        return conv_matrix(
            self.weight,
            self.in_shape,
            self.stride,
            self.pad_lo,
            self.pad_hi,
            self.dilation,
            self.groups,
        )[0]


def conv_matrix(
    weight: FloatArray,
    in_shape: tuple[int, ...],
    stride: tuple[int, ...],
    pad_lo: tuple[int, ...],
    pad_hi: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> tuple[Any, tuple[int, ...]]:
    """CSR matrix of a zero-padded N-d convolution (N = 1 or 2) on C-order features."""
    from scipy import sparse

    c_out, c_in_group = weight.shape[:2]
    kernel = weight.shape[2:]
    c_in, spatial = in_shape[0], in_shape[1:]
    out_spatial = tuple(
        (spatial[i] + pad_lo[i] + pad_hi[i] - dilation[i] * (kernel[i] - 1) - 1) // stride[i] + 1
        for i in range(len(spatial))
    )
    if any(s <= 0 for s in out_spatial):
        msg = f"convolution output would be empty for input shape {in_shape}"
        raise ValueError(msg)
    # Broadcast over (out channel, in channel of its group, out position..., kernel tap...).
    nd = len(spatial)
    o = np.arange(c_out).reshape((-1, 1) + (1,) * (2 * nd))
    ci = np.arange(c_in_group).reshape((1, -1) + (1,) * (2 * nd))
    group = o // (c_out // groups)
    c_abs = group * c_in_group + ci
    rows = o
    cols = c_abs
    valid = np.ones((1,) * (2 + 2 * nd), dtype=bool)
    for i in range(nd):
        shape_pos = [1] * (2 + 2 * nd)
        shape_pos[2 + i] = out_spatial[i]
        shape_tap = [1] * (2 + 2 * nd)
        shape_tap[2 + nd + i] = kernel[i]
        pos = np.arange(out_spatial[i]).reshape(shape_pos)
        tap = np.arange(kernel[i]).reshape(shape_tap)
        src = pos * stride[i] - pad_lo[i] + tap * dilation[i]
        valid = valid & (src >= 0) & (src < spatial[i])
        rows = rows * out_spatial[i] + pos
        cols = cols * spatial[i] + np.clip(src, 0, spatial[i] - 1)
    w = weight.reshape((c_out, c_in_group) + (1,) * nd + tuple(kernel))
    full = np.broadcast_shapes(rows.shape, cols.shape, valid.shape, w.shape)
    rows_b = np.broadcast_to(rows, full)
    cols_b = np.broadcast_to(cols, full)
    vals_b = np.broadcast_to(w, full)
    keep = np.broadcast_to(valid, full)
    n_out = c_out * math.prod(out_spatial)
    n_in = c_in * math.prod(spatial)
    matrix = sparse.csr_matrix(
        (vals_b[keep], (rows_b[keep], cols_b[keep])), shape=(n_out, n_in), dtype=np.float64
    )
    matrix.sum_duplicates()
    return matrix, (c_out, *out_spatial)


#: A part's map: a convolution, a diagonal (``("diag", scale)``), a dense or CSR matrix.
PartMap = Union[Conv, tuple[str, FloatArray], Any]


def part_shape(spec: PartMap) -> tuple[int, int]:
    """(outputs, inputs) of a part's map."""
    if isinstance(spec, Conv):
        return spec.out_size, spec.in_size
    if isinstance(spec, tuple):
        return len(spec[1]), len(spec[1])
    return int(spec.shape[0]), int(spec.shape[1])


def part_matrix(spec: PartMap) -> Any:
    """A part's map as a CSR matrix or a dense array."""
    from scipy import sparse

    if isinstance(spec, Conv):
        return spec.matrix()
    if isinstance(spec, tuple):
        return sparse.diags(spec[1], format="csr")
    return spec


class CompositeLayer:
    """An affine layer's weight made of parts (see the module's docstring).

    Parameters
    ----------
    shape
        ``(outputs, inputs)`` of the layer.
    parts
        ``(in_offset, out_offset, map)`` triples: ``map`` is a :class:`Conv`, a
        ``("diag", scale)`` pair, or a dense array / scipy CSR matrix. Parts whose outputs
        overlap must read disjoint inputs.
    """

    def __init__(self, shape: tuple[int, int], parts: list[tuple[int, int, PartMap]]) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.parts = list(parts)
        self._abs_net: Any = None
        self._net: Any = None

    ndim = 2

    def copy(self) -> CompositeLayer:
        """The layer itself: it is never changed in place."""
        return self

    def core_weight(self, absolute: bool = False) -> tuple[str, int, int, list[Any]]:
        """What the compiled core takes: ``("composite", out, in, parts)``."""
        parts: list[Any] = []
        for in_offset, out_offset, spec in self.parts:
            if isinstance(spec, Conv):
                core: Any = spec.core_spec(absolute)
            elif isinstance(spec, tuple):
                core = ("diag", np.abs(spec[1]) if absolute else np.asarray(spec[1]))
            elif hasattr(spec, "indptr"):
                data = np.abs(spec.data) if absolute else spec.data
                core = (
                    spec.indptr.astype(np.int64),
                    spec.indices.astype(np.int64),
                    np.ascontiguousarray(data, dtype=np.float64),
                    int(spec.shape[0]),
                    int(spec.shape[1]),
                )
            else:
                core = np.ascontiguousarray(np.abs(spec) if absolute else spec, dtype=np.float64)
            parts.append((int(in_offset), int(out_offset), core))
        return ("composite", self.shape[0], self.shape[1], parts)

    def row_norms(self) -> FloatArray:
        """Euclidean norm of each row of the layer's matrix (exact, without forming it)."""
        squares = np.zeros(self.shape[0])
        for _, out_offset, spec in self.parts:
            if isinstance(spec, Conv):
                norms = spec.row_norms()
            elif isinstance(spec, tuple):
                norms = np.abs(np.asarray(spec[1], dtype=np.float64))
            elif hasattr(spec, "multiply"):
                norms = np.sqrt(np.asarray(spec.multiply(spec).sum(axis=1)).ravel())
            else:
                norms = np.linalg.norm(spec, axis=1)
            squares[out_offset : out_offset + len(norms)] += norms**2
        out: FloatArray = np.sqrt(squares)
        return out

    def __abs__(self) -> _AbsoluteLayer:
        return _AbsoluteLayer(self)

    def apply(self, x: FloatArray) -> FloatArray:
        """``x @ W.T`` for points ``x`` (rows), without the layer's bias, by the core."""
        if self._net is None:
            self._net = _core.Network([self.core_weight()], [np.zeros(self.shape[0])], [], [], [])
        out: FloatArray = self._net.forward(np.ascontiguousarray(x, dtype=np.float64))
        return out

    def __matmul__(self, other: FloatArray) -> FloatArray:
        """``W @ other`` for a vector or a matrix of columns (no bias), by the core."""
        v = np.asarray(other, dtype=np.float64)
        columns = v.reshape(self.shape[1], -1).T
        out: FloatArray = self.apply(columns).T
        return out.reshape((self.shape[0], *v.shape[1:]))

    def abs_matvec(self, vector: FloatArray) -> FloatArray:
        """``|W| @ vector`` for a vector (or a matrix of columns), by the core."""
        if self._abs_net is None:
            self._abs_net = _core.Network(
                [self.core_weight(absolute=True)], [np.zeros(self.shape[0])], [], [], []
            )
        v = np.asarray(vector, dtype=np.float64)
        columns = v.reshape(self.shape[1], -1).T
        out: FloatArray = self._abs_net.forward(np.ascontiguousarray(columns)).T
        return out.reshape((self.shape[0], *v.shape[1:]))

    def abs_sums(self, axis: int) -> float:
        """The largest column (axis 0) or row (axis 1) sum of ``|W|``.

        Row sums are exact (``|W| @ 1``); a convolution's column sums are bounded by its
        input channel's absolute kernel sum (exact where every tap lands inside).
        """
        if axis == 1:
            return float(self.abs_matvec(np.ones(self.shape[1])).max(initial=0.0))
        columns = np.zeros(self.shape[1])
        for in_offset, _, spec in self.parts:
            if isinstance(spec, Conv):
                weight = np.abs(spec.weight)
                per_group = weight.shape[0] // spec.groups
                sums = weight.reshape(spec.groups, per_group, weight.shape[1], -1).sum(axis=(1, 3))
                per_channel = sums.reshape(-1)  # (groups * in_channels per group,)
                part = np.repeat(per_channel, spec.in_size // spec.in_shape[0])
            elif isinstance(spec, tuple):
                part = np.abs(np.asarray(spec[1], dtype=np.float64))
            elif hasattr(spec, "indptr"):
                # Not abs(spec): scipy sorts a CSR matrix's indices in place there, which
                # reorders the core's sums when the layer is used again.
                part = np.bincount(
                    spec.indices, weights=np.abs(spec.data), minlength=spec.shape[1]
                ).astype(np.float64)
            else:
                part = np.asarray(abs(spec).sum(axis=0), dtype=np.float64).ravel()
            columns[in_offset : in_offset + len(part)] += part
        return float(columns.max(initial=0.0))

    def tocsr_matrix(self) -> Any:
        """The layer's whole matrix in CSR form (large for big convolutions)."""
        from scipy import sparse

        total = sparse.csr_matrix(self.shape, dtype=np.float64)
        for in_offset, out_offset, spec in self.parts:
            block = sparse.coo_matrix(part_matrix(spec))
            total = total + sparse.csr_matrix(
                (block.data, (block.row + out_offset, block.col + in_offset)), shape=self.shape
            )
        return total.tocsr()

    def toarray(self) -> FloatArray:
        """The layer's whole matrix as a dense array (small layers, tests)."""
        out: FloatArray = self.tocsr_matrix().toarray()
        return out

    def __repr__(self) -> str:
        kinds = [type(s).__name__ if not isinstance(s, tuple) else s[0] for _, _, s in self.parts]
        return f"CompositeLayer(shape={self.shape}, parts={kinds})"


class _AbsoluteLayer:
    """``abs(layer)``: only its product with vectors, ``|W| @ v``."""

    def __init__(self, layer: CompositeLayer) -> None:
        self.layer = layer

    def __matmul__(self, vector: FloatArray) -> FloatArray:
        return self.layer.abs_matvec(vector)
