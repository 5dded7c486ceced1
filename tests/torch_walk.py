"""An oracle for exact regions of torch models that uses only the torch forward pass.

This is the walk of Gamba et al., "Are all linear regions created equal?" (AISTATS 2022),
and shares no code with lrcore's converter or core. At the current point the model runs
in float64 while a ``TorchFunctionMode`` records the input of every ReLU / LeakyReLU call
(modules call the functional forms, so both are seen, in place or not; the input is
copied before an in-place activation overwrites it), together with its derivative along
the segment by forward-mode automatic differentiation (dual numbers). Inside a region
every pre-activation is affine along the segment, so the nearest zero crossing ahead is
the next breakpoint; the walk records it and the neurons that cross there, steps just
past it and evaluates again.

Neurons are numbered in the order the activations run, each activation's input flattened
in C order: the order of lrcore's hidden layers for a converted model (one activation
per layer), so index ``offset_l + unit`` is neuron ``(l, unit)``.
"""

from __future__ import annotations

import copy
import warnings
from typing import NamedTuple

import numpy as np
import torch
from torch.autograd import forward_ad
from torch.overrides import TorchFunctionMode

# Forward-mode AD through batch-norm loads these decompositions lazily, and loading them
# warns about torch.jit.script (deprecated upstream); load them once here, quietly.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import torch._decomp.decompositions_for_jvp

_F = torch.nn.functional
_ACTIVATIONS = {
    _F.relu,
    _F.relu_,
    torch.relu,
    torch.relu_,
    torch.Tensor.relu,
    torch.Tensor.relu_,
    _F.leaky_relu,
    _F.leaky_relu_,
}


class PreActivations(TorchFunctionMode):
    """Records the input of every ReLU / LeakyReLU call made inside the ``with`` block."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[torch.Tensor] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in _ACTIVATIONS:
            self.values.append(args[0].clone())  # before an in-place call changes it
        return func(*args, **(kwargs or {}))


def float64_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The model in float64 on the CPU (a copy: the caller's model stays as it is)."""
    return copy.deepcopy(model).to("cpu", torch.float64)


def pre_activations(model, input_shape, points) -> np.ndarray:
    """``(n, neurons)`` pre-activations at flat points ``(n, d)``, in call order."""
    x = torch.as_tensor(np.asarray(points, dtype=np.float64)).reshape(-1, *input_shape)
    with torch.no_grad(), PreActivations() as mode:
        model(x)
    return torch.cat([v.reshape(len(x), -1) for v in mode.values], dim=1).numpy()


def pre_activations_along(model, input_shape, point, direction) -> tuple[np.ndarray, np.ndarray]:
    """Pre-activations at one flat point and their derivatives along ``direction``."""
    x = torch.as_tensor(point, dtype=torch.float64).reshape(1, *input_shape)
    dx = torch.as_tensor(direction, dtype=torch.float64).reshape(1, *input_shape)
    with torch.no_grad(), forward_ad.dual_level():
        with PreActivations() as mode:
            model(forward_ad.make_dual(x, dx))
        values, slopes = [], []
        for value in mode.values:
            primal, tangent = forward_ad.unpack_dual(value)
            values.append(primal.reshape(-1))
            slopes.append(torch.zeros_like(values[-1]) if tangent is None else tangent.reshape(-1))
    return torch.cat(values).numpy(), torch.cat(slopes).numpy()


class TorchWalk(NamedTuple):
    """Breakpoints of a segment: positions as fractions of it, and the neurons crossing."""

    positions: np.ndarray
    neurons: list[np.ndarray]

    @property
    def num_breakpoints(self) -> int:
        return len(self.positions)


def walk_segment(model, input_shape, start, end, step_past: float = 1e-9) -> TorchWalk:
    """Every breakpoint of ``model`` (a float64 copy, see :func:`float64_copy`) on start→end.

    After a crossing at ``t`` the next evaluation is at ``t + step_past`` (fractions of
    the segment); the neurons whose sign differs there from before the crossing flipped
    at it. Breakpoints closer than ``step_past`` to the previous one would be merged into
    it, which for random networks in tests is vanishingly rare.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one small forward pass per step: threads only cost here
    try:
        return _walk(model, input_shape, start, end, step_past)
    finally:
        torch.set_num_threads(threads)


def _walk(model, input_shape, start, end, step_past: float) -> TorchWalk:
    start = np.asarray(start, dtype=np.float64)
    direction = np.asarray(end, dtype=np.float64) - start
    t = 0.0
    positions: list[float] = []
    neurons: list[np.ndarray] = []
    crossing = None  # the last crossing's position, until the signs after it are known
    signs_before = None
    while True:
        value, slope = pre_activations_along(model, input_shape, start + t * direction, direction)
        signs = value > 0
        if crossing is not None:
            # Whatever changed sign there flipped (also a neuron that follows another one
            # to zero, which has slope 0 on one side); a mere touch is no breakpoint.
            flipped = np.flatnonzero(signs != signs_before)
            if len(flipped):
                positions.append(crossing)
                neurons.append(flipped)
        with np.errstate(divide="ignore", invalid="ignore"):
            ahead = -value / slope
        ahead[~(ahead > 0)] = np.inf  # behind us, parallel, or exactly at zero now
        nearest = float(ahead.min())
        if t + nearest >= 1.0:
            return TorchWalk(np.asarray(positions), neurons)
        crossing = t + nearest
        signs_before = signs
        t = crossing + step_past


def sampled_pattern_changes(
    model, input_shape, start, end, samples: int, chunk: int = 2048
) -> int:
    """Pattern changes between consecutive points of ``samples`` evenly spaced on start→end.

    What dense sampling finds: each change certifies at least one breakpoint.
    """
    start = np.asarray(start, dtype=np.float64)
    direction = np.asarray(end, dtype=np.float64) - start
    changes = 0
    previous = None
    for first in range(0, samples, chunk):
        t = np.arange(first, min(first + chunk, samples), dtype=np.float64) / (samples - 1)
        signs = pre_activations(model, input_shape, start + t[:, None] * direction) > 0
        if previous is not None:
            changes += int(np.any(previous != signs[0]))
        changes += int(np.count_nonzero(np.any(signs[1:] != signs[:-1], axis=1)))
        previous = signs[-1]
    return changes
