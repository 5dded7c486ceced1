"""Traced PyTorch front end: chains of convolutions, pooling, batch-norm and linear layers.

A model is traced with ``torch.fx``; consecutive affine operations (Linear, Conv1d/2d,
BatchNorm in eval mode, average pooling, flattening, Dropout/Identity in eval mode) are
composed into one affine map, which stays sparse (scipy CSR) where the operations are
sparse; every ReLU / LeakyReLU closes one hidden layer.

Residual additions and concatenation need the network graph of the core and are refused
for now, with an error naming the node.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._optional import optional_import

__all__ = ["trace_to_layers"]


class _Affine:
    """A pending affine map x -> W x + b on flattened features (W dense or CSR)."""

    def __init__(self, weight: Any, bias: NDArray[np.float64]) -> None:
        self.weight = weight
        self.bias = bias

    def then(self, weight: Any, bias: NDArray[np.float64]) -> _Affine:
        """The composition: first self, then x -> weight x + bias."""
        return _Affine(weight @ self.weight, weight @ self.bias + bias)


def _as_numpy(tensor: Any) -> NDArray[np.float64]:
    out: NDArray[np.float64] = tensor.detach().to("cpu").double().numpy().copy()
    return out


def _pair(value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        return tuple(int(v) for v in value)
    return (int(value),) * n


def _conv_matrix(
    weight: NDArray[np.float64],
    in_shape: tuple[int, ...],
    stride: tuple[int, ...],
    pad_lo: tuple[int, ...],
    pad_hi: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> tuple[Any, tuple[int, ...]]:
    """CSR matrix of a zero-padded N-d convolution (N = 1 or 2) on C-order features."""
    sparse = optional_import("scipy.sparse", "torch")
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


def _pool_matrix(
    in_shape: tuple[int, ...],
    windows: Sequence[list[tuple[int, int]]],
    divisors: Sequence[NDArray[np.float64]] | None,
) -> tuple[Any, tuple[int, ...]]:
    """CSR matrix of 2-d average pooling with the given (start, end) windows per axis."""
    sparse = optional_import("scipy.sparse", "torch")
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


def _describe(node: Any, position: int, module: Any = None) -> str:
    kind = type(module).__name__ if module is not None else str(node.target)
    return f"node {node.name!r} ({kind}) at position {position} of the traced graph"


def trace_to_layers(
    model: Any, input_shape: Sequence[int]
) -> tuple[list[Any], list[NDArray[np.float64]], list[str], list[float]]:
    """Weights (dense or CSR), biases, activations and slopes of a traced chain model.

    Parameters
    ----------
    model
        A ``torch.nn.Module`` traceable by ``torch.fx`` whose graph is a chain.
    input_shape
        Shape of one input without the batch dimension, e.g. ``(1, 28, 28)``.
    """
    torch = optional_import("torch")
    fx = optional_import("torch.fx", "torch")
    nn = torch.nn
    functional = torch.nn.functional
    try:
        graph_module = fx.symbolic_trace(model)
    except Exception as err:  # tracing errors come in many types
        msg = f"model: torch.fx could not trace it (data-dependent control flow?): {err}"
        raise ValueError(msg) from err
    modules = dict(graph_module.named_modules())
    shape: tuple[int, ...] = tuple(int(s) for s in input_shape)
    features = math.prod(shape)
    pending: _Affine | None = None
    weights: list[Any] = []
    biases: list[NDArray[np.float64]] = []
    activations: list[str] = []
    slopes: list[float] = []
    current = None  # the node whose value is the running tensor
    sparse = optional_import("scipy.sparse", "torch")

    def push(weight: Any, bias: NDArray[np.float64]) -> None:
        nonlocal pending
        pending = _Affine(weight, bias) if pending is None else pending.then(weight, bias)

    def close(kind: str, slope: float) -> None:
        nonlocal pending
        if pending is None:
            pending = _Affine(sparse.identity(features, format="csr"), np.zeros(features))
        weights.append(pending.weight)
        biases.append(np.asarray(pending.bias, dtype=np.float64).ravel())
        activations.append(kind)
        slopes.append(slope)
        pending = None

    for position, node in enumerate(graph_module.graph.nodes):
        if node.op == "placeholder":
            current = node
            continue
        if node.op == "output":
            if node.args[0] is not current:
                msg = f"{_describe(node, position)}: the output must be the running tensor"
                raise ValueError(msg)
            break
        if node.op == "get_attr":
            msg = f"{_describe(node, position)}: parameters used as values are not supported"
            raise ValueError(msg)
        # Only chains: every operation applies to the running tensor.
        tensor_args = [a for a in node.args if isinstance(a, fx.Node)]
        if node.op == "call_method" and node.target == "size":
            continue  # used by view/reshape for the batch size
        if not tensor_args or tensor_args[0] is not current:
            msg = (
                f"{_describe(node, position)}: only chains of layers are supported so far; "
                "residual additions and concatenation need the graph front end"
            )
            raise ValueError(msg)
        module = modules.get(node.target) if node.op == "call_module" else None
        where = _describe(node, position, module)
        if (
            module is not None
            and getattr(module, "training", False)
            and isinstance(module, (nn.Dropout, nn.BatchNorm1d, nn.BatchNorm2d))
        ):
            msg = f"{where}: in training mode its output is random or batch-dependent; call model.eval()"
            raise ValueError(msg)
        target = node.target
        if isinstance(module, nn.Linear):
            if len(shape) != 1:
                msg = f"{where}: Linear needs flat features, got shape {shape}; flatten first"
                raise ValueError(msg)
            linear_w = _as_numpy(module.weight)
            linear_b = (
                np.zeros(linear_w.shape[0]) if module.bias is None else _as_numpy(module.bias)
            )
            push(linear_w, linear_b)
            shape = (linear_w.shape[0],)
        elif isinstance(module, (nn.Conv1d, nn.Conv2d)):
            nd = 1 if isinstance(module, nn.Conv1d) else 2
            if len(shape) != nd + 1:
                msg = f"{where}: expected input of shape (C, {'L' if nd == 1 else 'H, W'}), got {shape}"
                raise ValueError(msg)
            if module.padding_mode != "zeros":
                msg = f"{where}: padding_mode={module.padding_mode!r} is not supported"
                raise ValueError(msg)
            kernel = _pair(module.kernel_size, nd)
            dilation = _pair(module.dilation, nd)
            if isinstance(module.padding, str):
                if module.padding == "valid":
                    lo = hi = (0,) * nd
                else:  # "same": as torch, the extra pixel goes after
                    total_pad = [dilation[i] * (kernel[i] - 1) for i in range(nd)]
                    lo = tuple(t // 2 for t in total_pad)
                    hi = tuple(t - t // 2 for t in total_pad)
            else:
                lo = hi = _pair(module.padding, nd)
            matrix, shape = _conv_matrix(
                _as_numpy(module.weight),
                shape,
                _pair(module.stride, nd),
                lo,
                hi,
                dilation,
                int(module.groups),
            )
            channel_bias = (
                np.zeros(module.out_channels) if module.bias is None else _as_numpy(module.bias)
            )
            push(matrix, np.repeat(channel_bias, math.prod(shape[1:])))
        elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if module.running_mean is None:
                msg = f"{where}: needs running statistics (track_running_stats=True)"
                raise ValueError(msg)
            scale = 1.0 / np.sqrt(_as_numpy(module.running_var) + module.eps)
            shift = -_as_numpy(module.running_mean) * scale
            if module.affine:
                gamma, beta = _as_numpy(module.weight), _as_numpy(module.bias)
                scale, shift = scale * gamma, shift * gamma + beta
            per_channel = math.prod(shape[1:]) if len(shape) > 1 else 1
            push(
                sparse.diags(np.repeat(scale, per_channel), format="csr"),
                np.repeat(shift, per_channel),
            )
        elif isinstance(module, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)):
            if len(shape) != 3:
                msg = f"{where}: expected input of shape (C, H, W), got {shape}"
                raise ValueError(msg)
            _, height, width = shape
            if isinstance(module, nn.AvgPool2d):
                if module.ceil_mode:
                    msg = f"{where}: ceil_mode=True is not supported"
                    raise ValueError(msg)
                k = _pair(module.kernel_size, 2)
                st = _pair(module.stride if module.stride else module.kernel_size, 2)
                pad = _pair(module.padding, 2)
                windows = [
                    [(i * st[a] - pad[a], i * st[a] - pad[a] + k[a]) for i in range(n)]
                    for a, n in enumerate(
                        (
                            (height + 2 * pad[0] - k[0]) // st[0] + 1,
                            (width + 2 * pad[1] - k[1]) // st[1] + 1,
                        )
                    )
                ]
                divisors = None
                if module.divisor_override:
                    d = float(module.divisor_override)
                    divisors = [np.full(len(windows[0]), d), np.ones(len(windows[1]))]
                elif module.count_include_pad:
                    divisors = [np.full(len(windows[0]), k[0]), np.full(len(windows[1]), k[1])]
            else:
                out = module.output_size
                requested = out if isinstance(out, (tuple, list)) else (out, out)
                out_hw = [
                    int(o) if o is not None else size
                    for o, size in zip(requested, (height, width))
                ]
                windows = [
                    [(math.floor(i * n / m), math.ceil((i + 1) * n / m)) for i in range(m)]
                    for n, m in ((height, out_hw[0]), (width, out_hw[1]))
                ]
                divisors = None
            matrix, shape = _pool_matrix(shape, windows, divisors)
            push(matrix, np.zeros(matrix.shape[0]))
        elif isinstance(module, (nn.Flatten,)) or (
            node.op == "call_function" and target is torch.flatten
        ):
            if module is not None:
                start, end = module.start_dim, module.end_dim
            else:
                start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
                end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
            if start != 1 or end != -1:
                msg = f"{where}: only flattening all but the batch dimension is supported"
                raise ValueError(msg)
            shape = (features_of(shape),)
        elif node.op == "call_method" and target in ("view", "reshape", "flatten"):
            if target == "flatten":
                shape = (features_of(shape),)
            else:
                dims = node.args[1:]
                if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
                    dims = tuple(dims[0])
                if not all(isinstance(d, int) for d in dims[1:]):
                    msg = f"{where}: reshape sizes must be constants after the batch size"
                    raise ValueError(msg)
                rest = [int(d) for d in dims[1:]]
                total = features_of(shape)
                if rest.count(-1) == 1:
                    known = math.prod(d for d in rest if d != -1)
                    rest = [total // known if d == -1 else d for d in rest]
                if math.prod(rest) != total:
                    msg = f"{where}: cannot reshape {shape} to {tuple(rest)}"
                    raise ValueError(msg)
                shape = tuple(int(d) for d in rest)
        elif isinstance(module, (nn.Identity, nn.Dropout)):
            pass
        elif (
            isinstance(module, nn.ReLU)
            or (node.op == "call_function" and target in (torch.relu, functional.relu))
            or (node.op == "call_method" and target == "relu")
        ):
            close("relu", 0.0)
        elif isinstance(module, nn.LeakyReLU) or (
            node.op == "call_function" and target is functional.leaky_relu
        ):
            if module is not None:
                slope = float(module.negative_slope)
            else:
                slope = float(
                    node.args[1] if len(node.args) > 1 else node.kwargs.get("negative_slope", 0.01)
                )
            close("leaky_relu", slope)
        else:
            kind = type(module).__name__ if module is not None else str(target)
            hint = ""
            if kind in ("MaxPool1d", "MaxPool2d", "max_pool2d"):
                hint = " (max pooling is not supported: its regions are defined by the argmax)"
            elif kind in ("Tanh", "Sigmoid", "GELU", "Softmax", "SiLU", "ELU"):
                hint = " (not piecewise linear)"
            msg = f"{where}: {kind} is not supported{hint}"
            raise ValueError(msg)
        features = math.prod(shape)
        current = node
    if pending is None:
        pending = _Affine(sparse.identity(features, format="csr"), np.zeros(features))
    weights.append(pending.weight)
    biases.append(np.asarray(pending.bias, dtype=np.float64).ravel())
    return weights, biases, activations, slopes


def features_of(shape: tuple[int, ...]) -> int:
    """Number of features in a tensor of this shape (without the batch dimension)."""
    return math.prod(shape)
