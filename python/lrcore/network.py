"""The network lrcore computes regions of: affine layers with ReLU-family activations."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

from . import _core
from ._layers import CompositeLayer, Conv
from ._maxpool import MaxPooling, build_pooling
from ._torch_sequential import infer_input_shape, sequential_to_arrays
from ._validation import as_float_array

if TYPE_CHECKING:
    import torch

__all__ = ["ACTIVATIONS", "Network", "from_torch"]

#: Activation names the core understands (keep in step with parse_activation in
#: cpp/bindings/bind_network.cpp).
ACTIVATIONS = ("relu", "leaky_relu")

ActivationSpec = Union[str, Sequence[str]]
SlopeSpec = Union[float, Sequence[float]]


def _as_weight(value: Any, index: int) -> Any:
    """A layer's weight: a dense float64 array, or a scipy.sparse matrix kept sparse."""
    name = f"weights[{index}]"
    if isinstance(value, CompositeLayer):  # convolutions and carried values, structured
        return value
    if hasattr(value, "tocsr"):  # scipy.sparse: convolutions and pooling stay sparse
        csr = value.tocsr().astype(np.float64)
        csr.sum_duplicates()
        if csr.ndim != 2:
            msg = f"{name}: expected a 2-d sparse matrix, got shape {csr.shape}"
            raise ValueError(msg)
        if not np.all(np.isfinite(csr.data)):
            msg = f"{name}: layer {index} contains NaN or infinite values"
            raise ValueError(msg)
        return csr
    return as_float_array(value, name, ndim=2)


#: Smallest magnitude of a nonzero weight that lrcore accepts: the bounds square weights
#: (row norms, ``||W_j||_2``), and squares of weights below about ``1e-154`` underflow in
#: float64, so the bounds would come out too small (docs/numerics.md §3).
MIN_WEIGHT = 1e-150


def _weight_values(weight: Any) -> list[NDArray[np.float64]]:
    """The stored values of a layer's weight (every part of a composite layer)."""
    if isinstance(weight, CompositeLayer):
        out: list[NDArray[np.float64]] = []
        for _, _, spec in weight.parts:
            if isinstance(spec, Conv):
                out.append(np.asarray(spec.weight))
            elif isinstance(spec, tuple):
                out.append(np.asarray(spec[1]))
            elif hasattr(spec, "indptr"):
                out.append(np.asarray(spec.data))
            else:
                out.append(np.asarray(spec))
        return out
    if hasattr(weight, "indptr"):
        return [np.asarray(weight.data)]
    return [np.asarray(weight)]


def _check_tiny_weights(weight: Any, index: int) -> None:
    """Refuse nonzero weights below :data:`MIN_WEIGHT` in magnitude."""
    for values in _weight_values(weight):
        magnitude = np.abs(values)
        tiny = (magnitude > 0) & (magnitude < MIN_WEIGHT)
        if tiny.any():
            msg = (
                f"weights[{index}]: layer {index} has {int(tiny.sum())} nonzero weight(s) of "
                f"magnitude below {MIN_WEIGHT:.0e} (smallest {magnitude[tiny].min():.3g}); "
                "lrcore's error bounds square weights and would underflow: set them to 0 or "
                "rescale the layer"
            )
            raise ValueError(msg)


def _core_weight(weight: Any) -> Any:
    """What the compiled core takes for one layer: an array, the CSR tuple, a composite."""
    if isinstance(weight, CompositeLayer):
        return weight.core_weight()
    if hasattr(weight, "indptr"):
        out_dim, in_dim = weight.shape
        return (
            weight.indptr.astype(np.int64),
            weight.indices.astype(np.int64),
            np.ascontiguousarray(weight.data, dtype=np.float64),
            int(out_dim),
            int(in_dim),
        )
    return weight


def _per_layer(value: Any, count: int, name: str) -> list[Any]:
    """Broadcast a scalar setting to every hidden layer, or check a per-layer list."""
    if isinstance(value, (str, int, float, np.floating, np.integer)):
        return [value] * count
    values = list(value)
    if len(values) != count:
        msg = f"{name}: expected one entry per hidden layer ({count}), got {len(values)}"
        raise ValueError(msg)
    return values


class Network:
    """A feed-forward piecewise-linear network, held in float64.

    ``f = A_L ∘ σ ∘ A_{L-1} ∘ … ∘ σ ∘ A_1``: an activation σ (ReLU or LeakyReLU) after every
    affine layer except the last. Hidden layer ``l`` (0-based) is the output of ``A_{l+1}``;
    its units are the neurons ``(l, unit)`` whose signs make up the activation pattern.

    Parameters
    ----------
    weights
        One ``(out_l, in_l)`` array per affine layer (the layout of ``torch.nn.Linear``):
        finite, and every nonzero entry at least :data:`MIN_WEIGHT` (``1e-150``) in
        magnitude (a ``ValueError`` names the layer otherwise).
    biases
        One ``(out_l,)`` array per affine layer.
    activation
        ``"relu"`` or ``"leaky_relu"``, or one name per hidden layer.
    negative_slope
        Slope of LeakyReLU for negative inputs, or one per hidden layer.
    linear_units
        Number of *linear units* at the end of each hidden layer (an int for every layer
        or one per layer; default 0). They pass through the activation unchanged, have no
        pattern bit and never split a region. They carry values that later layers add
        back: :meth:`from_torch` uses them for residual connections and concatenation,
        which makes a graph of affine maps, activations and additions one chain. The
        first ``hidden_sizes[l]`` units of hidden layer ``l`` are its neurons; its full
        width is ``layer_widths[l]``.
    pooling
        The max-pooling windows lowered into the chain as ReLU tournaments (set by
        :meth:`from_torch`; see :attr:`pooling`). Results then count regions of ReLU
        signs and window argmaxes, not of the tournament neurons' signs.

    Examples
    --------
    >>> import numpy as np, lrcore
    >>> net = lrcore.Network([np.eye(2), np.ones((1, 2))], [np.zeros(2), np.zeros(1)])
    >>> net.forward([[1.0, -1.0]])
    array([[1.]])
    """

    def __init__(
        self,
        weights: Sequence[ArrayLike],
        biases: Sequence[ArrayLike],
        activation: ActivationSpec = "relu",
        negative_slope: SlopeSpec = 0.01,
        linear_units: int | Sequence[int] = 0,
        *,
        pooling: MaxPooling | None = None,
    ) -> None:
        weights = list(weights)
        biases = list(biases)
        if not weights:
            raise ValueError("weights: expected at least one layer, got none")
        if len(biases) != len(weights):
            msg = f"biases: expected one per layer ({len(weights)}), got {len(biases)}"
            raise ValueError(msg)
        ws: list[Any] = []
        bs: list[NDArray[np.float64]] = []
        for index, (w_raw, b_raw) in enumerate(zip(weights, biases)):
            w = _as_weight(w_raw, index)
            _check_tiny_weights(w, index)
            b = as_float_array(b_raw, f"biases[{index}]", ndim=1)
            if b.shape[0] != w.shape[0]:
                msg = (
                    f"biases[{index}]: layer {index} has weight shape {w.shape}, so its bias "
                    f"must have shape ({w.shape[0]},), got {b.shape}"
                )
                raise ValueError(msg)
            if w.shape[0] == 0 or w.shape[1] == 0:
                msg = f"weights[{index}]: layer {index} has an empty weight shape {w.shape}"
                raise ValueError(msg)
            if ws and ws[-1].shape[0] != w.shape[1]:
                msg = (
                    f"weights[{index}]: layer {index} expects {w.shape[1]} inputs (weight shape "
                    f"{w.shape}) but layer {index - 1} gives {ws[-1].shape[0]} outputs "
                    f"(weight shape {ws[-1].shape})"
                )
                raise ValueError(msg)
            ws.append(w)
            bs.append(b)
        num_hidden = len(ws) - 1
        activations = [str(a) for a in _per_layer(activation, num_hidden, "activation")]
        for index, name in enumerate(activations):
            if name not in ACTIVATIONS:
                msg = (
                    f"activation: hidden layer {index} has unknown activation {name!r}; "
                    f"expected one of {ACTIVATIONS}"
                )
                raise ValueError(msg)
        slopes = [float(s) for s in _per_layer(negative_slope, num_hidden, "negative_slope")]
        for index, slope in enumerate(slopes):
            if not np.isfinite(slope):
                msg = f"negative_slope: hidden layer {index} has non-finite slope {slope}"
                raise ValueError(msg)
        linear = [int(n) for n in _per_layer(linear_units, num_hidden, "linear_units")]
        for index, count in enumerate(linear):
            if not 0 <= count <= ws[index].shape[0]:
                msg = (
                    f"linear_units: hidden layer {index} has {ws[index].shape[0]} units, so "
                    f"its linear units must number 0 to {ws[index].shape[0]}, got {count}"
                )
                raise ValueError(msg)
        self._weights = ws
        self._biases = bs
        self._activations = activations
        self._slopes = [s if a == "leaky_relu" else 0.0 for a, s in zip(activations, slopes)]
        self._linear = linear
        # Sizes asked on every call, computed once (a Network does not change).
        self._hidden_sizes = tuple(int(w.shape[0]) - n for w, n in zip(ws[:-1], linear))
        self._layer_widths = tuple(int(w.shape[0]) for w in ws[:-1])
        self._num_neurons = int(sum(self._hidden_sizes))
        if pooling is not None:
            if not isinstance(pooling, MaxPooling):
                msg = f"pooling: expected a MaxPooling or None, got {type(pooling).__name__}"
                raise TypeError(msg)
            sizes = np.array([w.shape[0] - n for w, n in zip(ws[:-1], linear)], dtype=np.int64)
            layer, unit = pooling.neurons[:, 0], pooling.neurons[:, 1]
            inside = (layer >= 0) & (layer < len(sizes))
            if not np.all(inside) or np.any((unit < 0) | (unit >= sizes[layer[inside]])):
                msg = "pooling: its tournament neurons do not all exist in the network"
                raise ValueError(msg)
        self._pooling = pooling
        self._core = _core.Network(
            [_core_weight(w) for w in ws], bs, activations, self._slopes, linear
        )

    # -- construction ------------------------------------------------------------------
    @classmethod
    def random(
        cls,
        sizes: Sequence[int],
        activation: ActivationSpec = "relu",
        negative_slope: SlopeSpec = 0.01,
        seed: int | np.random.Generator | None = None,
    ) -> Network:
        """A network with PyTorch's default ``nn.Linear`` initialisation.

        Weights and biases are drawn from ``U(-1/sqrt(in), 1/sqrt(in))``.

        Parameters
        ----------
        sizes
            ``[input_dim, hidden_1, ..., hidden_k, output_dim]``.
        seed
            Seed or generator for reproducibility.

        Examples
        --------
        >>> net = Network.random([784, 128, 128, 10], seed=0)
        >>> net.hidden_sizes
        (128, 128)
        """
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            msg = f"sizes: expected at least two positive layer sizes, got {sizes}"
            raise ValueError(msg)
        rng = np.random.default_rng(seed)
        weights, biases = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / np.sqrt(fan_in)
            weights.append(rng.uniform(-bound, bound, size=(fan_out, fan_in)))
            biases.append(rng.uniform(-bound, bound, size=fan_out))
        return cls(weights, biases, activation, negative_slope)

    @classmethod
    def from_torch(
        cls, model: torch.nn.Module, input_shape: Sequence[int] | None = None
    ) -> Network:
        """Convert a PyTorch model (weights copied to float64 on the CPU; model unchanged).

        Without ``input_shape``: a ``torch.nn.Sequential`` of Linear / ReLU / LeakyReLU /
        Identity / Flatten / Dropout (eval). With ``input_shape`` (one input's shape
        without the batch dimension, e.g. ``(1, 28, 28)``): any ``torch.fx``-traceable
        model built from Linear, Conv1d/Conv2d (any stride, padding, dilation, groups),
        BatchNorm1d/2d and Dropout (eval mode), AvgPool2d, AdaptiveAvgPool2d,
        Flatten/view/reshape, ReLU/LeakyReLU (modules or functional, in place or not),
        additions of tensors (residual connections), ``torch.cat`` along a non-batch
        dimension and multiplication by constants. The graph is lowered to a chain: every
        activation closes a hidden layer, and values that later nodes still use (a
        residual branch's input, a concatenated branch) travel along in linear units
        (see ``linear_units``). Convolutions stay convolutions (a layer with them is a
        :class:`~lrcore._layers.CompositeLayer`, which the core applies by im2col and
        DGEMM); ``F.adaptive_avg_pool2d``, ``F.avg_pool2d``, ``x.mean(dims)`` and
        ``F.pad`` with a constant are taken too. MaxPool1d/2d and AdaptiveMaxPool1d/2d
        (and their functional forms) become ReLU tournaments, one hidden layer per
        round, recorded in :attr:`pooling` so that results count regions of ReLU signs
        and window argmaxes. Non-piecewise-linear layers and training mode are refused.

        Examples
        --------
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.ReLU(),
        ...                             torch.nn.Linear(8, 1))
        >>> Network.from_torch(model).hidden_sizes
        (8,)
        """
        return cls._converted(model, input_shape)[0]

    @classmethod
    def _converted(
        cls,
        model: torch.nn.Module,
        input_shape: Sequence[int] | None,
        traced: tuple[Any, tuple[int, ...]] | None = None,
    ) -> tuple[Network, tuple[Any, tuple[int, ...]] | None]:
        """:meth:`from_torch`, and the (fx graph, input shape) it traced, if it did.

        Given ``traced`` from an earlier call on the same model, the graph is not traced
        again (the tracker converts the same model every few steps); only the model's
        current weights are read.
        """
        if traced is None and input_shape is None:
            try:
                weights, biases, activations, slopes = sequential_to_arrays(model)
                return cls(weights, biases, activations, slopes), None
            except ValueError:
                # Batch-norm and the like need the traced converter; an MLP that starts
                # with a Linear layer tells its input shape.
                input_shape = infer_input_shape(model)
                if input_shape is None:
                    raise
        from ._torch_fx import trace_graph, trace_to_layers

        if traced is None:
            assert input_shape is not None
            traced = (trace_graph(model), tuple(int(s) for s in input_shape))
        layers = trace_to_layers(model, traced[1], graph=traced[0])
        net = cls(
            layers.weights,
            layers.biases,
            layers.activations,
            layers.slopes,
            linear_units=layers.linear_units,
            pooling=build_pooling(layers.pooling),
        )
        return net, traced

    # -- structure ---------------------------------------------------------------------
    @property
    def input_dim(self) -> int:
        """Dimension of the input space."""
        return int(self._weights[0].shape[1])

    @property
    def output_dim(self) -> int:
        """Dimension of the output."""
        return int(self._weights[-1].shape[0])

    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        """Neurons of each hidden layer: the units with an activation and a pattern bit."""
        return self._hidden_sizes

    @property
    def layer_widths(self) -> tuple[int, ...]:
        """Full width of each hidden layer: its neurons, then its linear units."""
        return self._layer_widths

    @property
    def linear_units(self) -> tuple[int, ...]:
        """Linear (pass-through) units at the end of each hidden layer."""
        return tuple(self._linear)

    @property
    def num_hidden_layers(self) -> int:
        """Number of hidden layers (affine layers followed by an activation)."""
        return len(self._weights) - 1

    @property
    def num_neurons(self) -> int:
        """Total number of neurons: the length of an activation pattern."""
        return self._num_neurons

    @property
    def pooling(self) -> MaxPooling | None:
        """Max-pooling windows and their tournaments (None without max pooling).

        :meth:`from_torch` lowers each window's maximum to a tournament of ReLU neurons
        (``max(a, b) = a + relu(b - a)``, one hidden layer per round). Such a neuron
        changes sign where two candidates of a window swap order; only the changes of
        a window's argmax split regions (see ``docs/maxpool.md``).
        """
        return self._pooling

    @property
    def weights(self) -> list[Any]:
        """Copies of the weight matrices, ``(out_l, in_l)`` each.

        Dense layers are numpy arrays; sparse ones (pooling) are ``scipy.sparse`` CSR
        matrices; layers made of parts (convolutions, carried values) are
        :class:`~lrcore._layers.CompositeLayer` (immutable: the same object; its
        ``toarray()`` gives the matrix).
        """
        return [w.copy() for w in self._weights]

    @property
    def biases(self) -> list[NDArray[np.float64]]:
        """Copies of the bias vectors."""
        return [b.copy() for b in self._biases]

    @property
    def activations(self) -> list[str]:
        """Activation name of each hidden layer."""
        return list(self._activations)

    @property
    def negative_slopes(self) -> list[float]:
        """Negative slope of each hidden layer (0.0 for ReLU)."""
        return list(self._slopes)

    def __repr__(self) -> str:
        sizes = [self.input_dim, *self.hidden_sizes, self.output_dim]
        acts = sorted(set(self._activations)) or ["none"]
        linear = f", linear_units={list(self._linear)}" if any(self._linear) else ""
        return f"Network(sizes={sizes}, activation={'/'.join(acts)}{linear})"

    # -- evaluation --------------------------------------------------------------------
    def _points(self, x: ArrayLike) -> tuple[NDArray[np.float64], bool]:
        arr = as_float_array(x, "x")
        single = arr.ndim == 1
        if single:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.input_dim:
            msg = (
                f"x: expected shape (n, {self.input_dim}) or ({self.input_dim},), "
                f"got {np.shape(x)}"
            )
            raise ValueError(msg)
        return arr, single

    def forward(self, x: ArrayLike) -> NDArray[np.float64]:
        """Output of the network at points ``x`` (``(n, d)`` or ``(d,)``).

        Examples
        --------
        >>> Network.random([3, 5, 2], seed=0).forward(np.zeros((4, 3))).shape
        (4, 2)
        """
        arr, single = self._points(x)
        out: NDArray[np.float64] = self._core.forward(arr)
        return out[0] if single else out

    def pre_activations(self, x: ArrayLike) -> list[NDArray[np.float64]]:
        """Pre-activation values of every hidden layer's neurons at points ``x``.

        Returns one ``(n, hidden_sizes[l])`` array per hidden layer (``(hidden_sizes[l],)``
        for one point); linear units are left out.

        Examples
        --------
        >>> [z.shape for z in Network.random([3, 5, 4, 2], seed=0).pre_activations(
        ...     np.zeros((7, 3)))]
        [(7, 5), (7, 4)]
        """
        arr, single = self._points(x)
        values = self._neuron_values(arr)
        return [v[0] for v in values] if single else values

    def _neuron_values(self, arr: NDArray[np.float64]) -> list[NDArray[np.float64]]:
        values: list[NDArray[np.float64]] = self._core.pre_activations(arr)
        if any(self._linear):
            values = [v[:, :n] for v, n in zip(values, self.hidden_sizes)]
        return values

    def patterns(self, x: ArrayLike) -> NDArray[np.bool_]:
        """Activation patterns at points ``x``: pre-activation > 0, layer by layer.

        Returns a ``(n, num_neurons)`` boolean array (``(num_neurons,)`` for one point);
        column ``offset_l + unit`` is neuron ``(l, unit)``.

        Examples
        --------
        >>> Network.random([2, 3, 1], seed=0).patterns(np.zeros((1, 2))).shape
        (1, 3)
        """
        arr, single = self._points(x)
        values = self._neuron_values(arr)
        if values:
            bits = np.concatenate([v > 0 for v in values], axis=1)
        else:
            bits = np.zeros((arr.shape[0], 0), dtype=bool)
        return bits[0] if single else bits

    def neuron_offsets(self) -> NDArray[np.int64]:
        """Start of each hidden layer in a pattern; the last entry is ``num_neurons``."""
        return np.concatenate([[0], np.cumsum(self.hidden_sizes, dtype=np.int64)]).astype(np.int64)


def from_torch(model: torch.nn.Module, input_shape: Sequence[int] | None = None) -> Network:
    """Convert a PyTorch model to a :class:`Network`: the same as :meth:`Network.from_torch`.

    Examples
    --------
    >>> import torch, lrcore
    >>> class Block(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc1, self.fc2 = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)
    ...     def forward(self, x):
    ...         return torch.relu(x + self.fc2(torch.relu(self.fc1(x))))
    >>> net = lrcore.from_torch(Block().eval(), input_shape=(4,))
    >>> net.hidden_sizes, net.linear_units      # x rides along the first layer
    ((4, 4), (4, 0))
    """
    return Network.from_torch(model, input_shape)
