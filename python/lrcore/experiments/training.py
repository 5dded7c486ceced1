"""Seeded ReLU MLPs trained with Adam on MSE in float32 (PyTorch), with checkpoints."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lrcore._optional import optional_import

__all__ = ["SCHEDULES", "build_mlp", "checkpoint_steps", "train"]

#: Learning-rate schedules: constant, or cosine decay from the rate towards 0.
SCHEDULES = ("constant", "cosine")


def build_mlp(input_dim: int, width: int, depth: int, seed: int) -> Any:
    """A ``input_dim -> [width] * depth -> 1`` ReLU ``nn.Sequential`` in float32.

    Weights and biases are drawn from PyTorch's default ``nn.Linear`` distribution
    ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` with a numpy Generator seeded by ``seed``, so
    the model does not depend on (or change) torch's global random state, even when
    several models are built at once in threads.
    """
    torch = optional_import("torch", "experiments")
    for name, value in (("input_dim", input_dim), ("width", width), ("depth", depth)):
        if int(value) < 1:
            msg = f"{name}: expected a positive integer, got {value}"
            raise ValueError(msg)
    rng = np.random.default_rng([seed, 7])
    layers: list[Any] = []
    sizes = [int(input_dim)] + [int(width)] * int(depth)
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        # skip_init: no draw from torch's global generator; the weights are set below.
        layers += [torch.nn.utils.skip_init(torch.nn.Linear, fan_in, fan_out), torch.nn.ReLU()]
    layers.append(torch.nn.utils.skip_init(torch.nn.Linear, sizes[-1], 1))
    model = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for layer in model:
            if isinstance(layer, torch.nn.Linear):
                bound = 1.0 / np.sqrt(layer.in_features)
                weight = rng.uniform(-bound, bound, size=tuple(layer.weight.shape))
                bias = rng.uniform(-bound, bound, size=tuple(layer.bias.shape))
                layer.weight.copy_(torch.from_numpy(weight.astype(np.float32)))
                layer.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    return model


def _adam(torch: Any, model: Any, learning_rate: float) -> Any:
    """Adam, fused where this torch supports it on the CPU (torch >= 2.4: about a third
    faster per step for the study's small MLPs; deterministic either way)."""
    try:
        return torch.optim.Adam(model.parameters(), lr=learning_rate, fused=True)
    except (RuntimeError, TypeError):  # an older torch: no fused Adam on the CPU
        return torch.optim.Adam(model.parameters(), lr=learning_rate)


def checkpoint_steps(steps: int, checkpoints: int) -> list[int]:
    """Steps at which to measure: 0, ``checkpoints - 1`` evenly spread ones, and ``steps``.

    Examples
    --------
    >>> checkpoint_steps(300, 3)
    [0, 100, 200, 300]
    """
    if steps < 0 or checkpoints < 1:
        msg = f"steps, checkpoints: expected steps >= 0 and checkpoints >= 1, got {steps}, {checkpoints}"
        raise ValueError(msg)
    return sorted({round(steps * k / checkpoints) for k in range(checkpoints + 1)})


def train(
    model: Any,
    inputs: NDArray[np.float64],
    targets: NDArray[np.float64],
    steps: int,
    learning_rate: float = 3e-3,
    checkpoints: Sequence[int] = (),
    on_checkpoint: Callable[[int, Any], None] | None = None,
    on_step: Callable[[int], None] | None = None,
    schedule: str = "constant",
) -> tuple[float, float]:
    """Full-batch Adam on the mean squared error, in float32 on the CPU.

    ``on_checkpoint(step, model)`` is called before the first step (step 0) and after
    every step listed in ``checkpoints``; ``on_step(step)`` after every step with the
    number of steps taken so far (and once with 0 before training), e.g. for a
    :class:`lrcore.torch.RegionTracker`. Full batches make the run deterministic.
    ``schedule="cosine"`` takes step ``k`` (1-based) at the rate
    ``learning_rate * (1 + cos(π (k - 1) / steps)) / 2``.

    Returns
    -------
    initial_loss, final_loss : float
        The training loss (MSE) before the first step and after the last.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.linspace(-1, 1, 64)[:, None]
    >>> before, after = train(build_mlp(1, 8, 1, seed=0), x, x[:, 0] ** 2, 200, 1e-2,
    ...                       schedule="cosine")
    >>> after < before
    True
    """
    if schedule not in SCHEDULES:
        msg = f"schedule: expected one of {SCHEDULES}, got {schedule!r}"
        raise ValueError(msg)
    torch = optional_import("torch", "experiments")
    x = torch.from_numpy(np.asarray(inputs, dtype=np.float32))
    y = torch.from_numpy(np.asarray(targets, dtype=np.float32).reshape(-1, 1))
    optimiser = _adam(torch, model, learning_rate)
    wanted = {int(c) for c in checkpoints}

    def loss_now() -> float:
        with torch.no_grad():
            return float(torch.mean((model(x) - y) ** 2))

    initial = loss_now()
    if on_checkpoint is not None and 0 in wanted:
        on_checkpoint(0, model)
    if on_step is not None:
        on_step(0)
    total = int(steps)
    for step in range(1, total + 1):
        if schedule == "cosine":
            for group in optimiser.param_groups:
                group["lr"] = learning_rate * (1 + math.cos(math.pi * (step - 1) / total)) / 2
        optimiser.zero_grad()
        loss = torch.mean((model(x) - y) ** 2)
        loss.backward()
        optimiser.step()
        if on_step is not None:
            on_step(step)
        if on_checkpoint is not None and step in wanted:
            on_checkpoint(step, model)
    return initial, loss_now()
