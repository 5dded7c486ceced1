"""Sequential PyTorch models to plain arrays: the converter behind ``Network.from_torch``.

A leaf: it returns weights, biases, activations and slopes as numpy arrays and lists and
imports nothing from lrcore but the optional-import helper, so :mod:`lrcore.network`
can use it without importing the public torch front end (:mod:`lrcore.torch`). Models
that are not plain ``nn.Sequential`` MLPs go through the traced converter,
:mod:`lrcore._torch_fx`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._optional import optional_import

__all__ = ["float64_array", "infer_input_shape", "sequential_to_arrays"]


def float64_array(tensor: Any) -> NDArray[np.float64]:
    """A float64 copy of a tensor, on the CPU."""
    cpu = tensor.detach().to("cpu")
    try:
        # Widened by numpy: torch's own widening splits small copies over its threads,
        # which costs more than the copy itself on a busy machine.
        array = cpu.numpy()
    except TypeError:  # bfloat16 and the like have no numpy dtype
        array = cpu.double().numpy()
    return np.array(array, dtype=np.float64)


def _modules_in_order(model: Any, torch: Any) -> list[tuple[str, Any]]:
    """The leaf modules of (possibly nested) Sequential containers, with their names."""
    if not isinstance(model, torch.nn.Sequential):
        msg = (
            f"model: expected a torch.nn.Sequential, got {type(model).__name__}; models "
            "with other structure need the traced front end: pass input_shape (one "
            "input's shape without the batch dimension)"
        )
        raise TypeError(msg)
    leaves: list[tuple[str, Any]] = []
    for name, module in model.named_children():
        if isinstance(module, torch.nn.Sequential):
            leaves.extend(
                (f"{name}.{sub}", leaf) for sub, leaf in _modules_in_order(module, torch)
            )
        else:
            leaves.append((name, module))
    return leaves


def infer_input_shape(model: Any) -> tuple[int, ...] | None:
    """The input shape of a Sequential whose first layer is Linear, else None."""
    torch = optional_import("torch")
    if not isinstance(model, torch.nn.Sequential):
        return None
    leaves = _modules_in_order(model, torch)
    if leaves and isinstance(leaves[0][1], torch.nn.Linear):
        return (int(leaves[0][1].in_features),)
    return None


def sequential_to_arrays(
    model: Any,
) -> tuple[list[NDArray[np.float64]], list[NDArray[np.float64]], list[str], list[float]]:
    """Weights, biases, activations and slopes of an ``nn.Sequential`` MLP, in float64.

    Consecutive Linear layers without an activation between them are composed into one
    affine map; a model that ends in an activation gets an identity output layer, so that
    activation's units still count as neurons.

    Examples
    --------
    >>> import torch
    >>> model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
    ...                             torch.nn.Linear(4, 2))
    >>> [w.shape for w in sequential_to_arrays(model)[0]]
    [(4, 3), (2, 4)]
    """
    torch = optional_import("torch")
    nn = torch.nn
    weights: list[NDArray[np.float64]] = []
    biases: list[NDArray[np.float64]] = []
    activations: list[str] = []
    slopes: list[float] = []
    pending_affine = False  # the last affine map has no activation yet
    for position, (name, module) in enumerate(_modules_in_order(model, torch)):
        where = f"module {name!r} ({type(module).__name__}) at position {position}"
        if isinstance(module, nn.Linear):
            w = float64_array(module.weight)
            b = np.zeros(w.shape[0]) if module.bias is None else float64_array(module.bias)
            if pending_affine:
                # Two affine maps in a row are one affine map.
                b = w @ biases[-1] + b
                w = w @ weights[-1]
                weights[-1], biases[-1] = w, b
            else:
                weights.append(w)
                biases.append(b)
            pending_affine = True
        elif isinstance(module, (nn.ReLU, nn.LeakyReLU)):
            if not pending_affine:
                msg = f"{where}: an activation must follow a Linear layer"
                raise ValueError(msg)
            if isinstance(module, nn.LeakyReLU):
                activations.append("leaky_relu")
                slopes.append(float(module.negative_slope))
            else:
                activations.append("relu")
                slopes.append(0.0)
            pending_affine = False
        elif isinstance(module, (nn.Identity, nn.Flatten)):
            continue
        elif isinstance(module, nn.Dropout):
            if module.training:
                msg = f"{where}: Dropout in training mode is random; call model.eval() first"
                raise ValueError(msg)
        else:
            msg = (
                f"{where}: not supported by the Sequential converter (supported: Linear, "
                "ReLU, LeakyReLU, Identity, Flatten, Dropout in eval mode)"
            )
            # The model is the right type; what it contains is not supported.
            raise ValueError(msg)  # noqa: TRY004
    if not weights:
        raise ValueError("model: contains no Linear layer")
    if not pending_affine:
        width = weights[-1].shape[0]
        weights.append(np.eye(width))
        biases.append(np.zeros(width))
    return weights, biases, activations, slopes
