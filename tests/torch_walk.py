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

Max pooling (``nn.MaxPool1d/2d``, ``nn.AdaptiveMaxPool1d/2d`` and their functional forms)
is recorded too: the mode runs every pooling call with ``return_indices=True`` (torch's
own argmax) and keeps its input with its derivative. Inside a region every window's
entries are affine along the segment, so the next argmax change is where the first
entry overtakes the window's maximum; which entries a window reads is found by running
the same pooling call on one-hot planes (torch's semantics for padding, dilation,
``ceil_mode`` and adaptive windows, not a re-derivation of them).

Neurons are numbered in the order the activations run, each activation's input flattened
in C order: the order of lrcore's hidden layers for a converted model (one activation
per layer), so index ``offset_l + unit`` is neuron ``(l, unit)`` (with max pooling:
the ``l``-th neuron that is not a tournament match). Windows are numbered in the order
the pooling calls run, each call's ``(channel, window)`` in C order, and an argmax is a
flat index into the call's input ``(channel, position)``: ``PathResult.pooling``'s
numbering.
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
# Max pooling: each form, the functional form that returns torch's argmax indices, and
# how many leading positional arguments that form shares with it (return_indices is
# set by name, whatever the call asked for; the call's own result is rebuilt from it).
_POOLS = {
    _F.max_pool1d: (_F.max_pool1d, 6),
    _F.max_pool2d: (_F.max_pool2d, 6),
    torch.max_pool1d: (_F.max_pool1d, 6),
    torch.max_pool2d: (_F.max_pool2d, 6),
    _F.adaptive_max_pool1d: (_F.adaptive_max_pool1d, 2),
    _F.adaptive_max_pool2d: (_F.adaptive_max_pool2d, 2),
    torch.adaptive_max_pool1d: (_F.adaptive_max_pool1d, 2),
}


class Pooled(NamedTuple):
    """One max-pooling call: its input, torch's argmax per window, the windows' entries.

    ``indices`` is ``(batch, channels, windows)``, each window's argmax as a flat index
    into its channel's plane (torch's ``return_indices``); ``entries`` is
    ``(windows, k)``, every window's entries as plane indices, padded with the plane's
    size (a tap past the plane: padding, or a shorter window).
    """

    input: torch.Tensor
    indices: torch.Tensor
    entries: np.ndarray


_ENTRIES: dict[tuple, np.ndarray] = {}


def _window_entries(form, spatial: tuple[int, ...], args: tuple, kwargs: dict) -> np.ndarray:
    """Which plane entries each window of a pooling call reads, found by torch itself.

    The pooling runs on one-hot planes (1 at one entry, 0 elsewhere; torch's padding is
    ``-inf``): window ``w`` contains entry ``p`` exactly when its output is 1 on plane
    ``p``. Cached per call signature and plane shape.
    """
    key = (form, spatial, repr(args), repr(sorted(kwargs.items())))
    if key not in _ENTRIES:
        plane = int(np.prod(spatial))
        probe = torch.eye(plane, dtype=torch.float64).reshape(plane, 1, *spatial)
        member = form(probe, *args, **kwargs, return_indices=True)[0].reshape(plane, -1) > 0.5
        member = member.numpy().T  # (windows, plane)
        k = int(member.sum(axis=1).max())
        entries = np.full((member.shape[0], k), plane, dtype=np.int64)
        for w, row in enumerate(member):
            taps = np.flatnonzero(row)
            entries[w, : len(taps)] = taps
        _ENTRIES[key] = entries
    return _ENTRIES[key]


class PreActivations(TorchFunctionMode):
    """Records the input of every ReLU / LeakyReLU and every max-pooling call.

    ``values``: each activation's input (copied before an in-place call changes it);
    ``pools``: a :class:`Pooled` per max-pooling call, with torch's argmax indices.
    """

    def __init__(self) -> None:
        super().__init__()
        self.values: list[torch.Tensor] = []
        self.pools: list[Pooled] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in _ACTIVATIONS:
            self.values.append(args[0].clone())  # before an in-place call changes it
        elif func in _POOLS:
            form, shared = _POOLS[func]
            wanted = kwargs.pop("return_indices", args[shared] if len(args) > shared else False)
            x, rest = args[0], tuple(args[1:shared])
            out, idx = form(x, *rest, **kwargs, return_indices=True)
            entries = _window_entries(form, tuple(x.shape[2:]), rest, kwargs)
            self.pools.append(Pooled(x, idx.reshape(*idx.shape[:2], -1), entries))
            return (out, idx) if wanted else out
        return func(*args, **kwargs)

    def argmax(self) -> torch.Tensor:
        """``(batch, windows)``: each window's argmax as an index into its call's input.

        Windows and entries are numbered per call in C order over ``(channel, window)``
        and ``(channel, position)``, calls in the order they ran: lrcore's numbering of
        ``PathResult.pooling`` / ``SliceResult.pooling`` for a converted model.
        """
        parts = []
        for pooled in self.pools:
            plane = int(np.prod(pooled.input.shape[2:]))
            channel = torch.arange(pooled.indices.shape[1]).reshape(1, -1, 1) * plane
            parts.append((pooled.indices + channel).reshape(len(pooled.indices), -1))
        if not parts:
            batch = len(self.values[0]) if self.values else 0
            return torch.zeros((batch, 0), dtype=torch.int64)
        return torch.cat(parts, dim=1)


def float64_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The model in float64 on the CPU (a copy: the caller's model stays as it is)."""
    return copy.deepcopy(model).to("cpu", torch.float64)


def pre_activations(model, input_shape, points) -> np.ndarray:
    """``(n, neurons)`` pre-activations at flat points ``(n, d)``, in call order."""
    x = torch.as_tensor(np.asarray(points, dtype=np.float64)).reshape(-1, *input_shape)
    with torch.no_grad(), PreActivations() as mode:
        model(x)
    return torch.cat([v.reshape(len(x), -1) for v in mode.values], dim=1).numpy()


def patterns(model, input_shape, points) -> tuple[np.ndarray, np.ndarray]:
    """ReLU signs ``(n, neurons)`` and window argmaxes ``(n, windows)`` at flat points.

    Signs in call order (``pre-activation > 0``); argmaxes torch's own
    (``return_indices=True``), numbered as :meth:`PreActivations.argmax` says.
    """
    x = torch.as_tensor(np.asarray(points, dtype=np.float64)).reshape(-1, *input_shape)
    with torch.no_grad(), PreActivations() as mode:
        model(x)
    if mode.values:
        signs = torch.cat([v.reshape(len(x), -1) > 0 for v in mode.values], dim=1).numpy()
    else:
        signs = np.zeros((len(x), 0), dtype=bool)
    argmax = mode.argmax().numpy() if mode.pools else np.zeros((len(x), 0), np.int64)
    return signs, argmax


def _primal_tangent(value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    primal, tangent = forward_ad.unpack_dual(value)
    return primal, torch.zeros_like(primal) if tangent is None else tangent


def pre_activations_along(model, input_shape, point, direction) -> tuple[np.ndarray, np.ndarray]:
    """Pre-activations at one flat point and their derivatives along ``direction``."""
    state = _state_along(model, input_shape, point, direction)
    return state.values, state.slopes


class _State(NamedTuple):
    values: np.ndarray  # pre-activations, call order
    slopes: np.ndarray  # their derivatives along the direction
    argmax: np.ndarray  # (windows,) torch's argmax of every window
    ahead: float  # the nearest argmax change ahead, in units of the direction (inf: none)


def _state_along(model, input_shape, point, direction) -> _State:
    x = torch.as_tensor(point, dtype=torch.float64).reshape(1, *input_shape)
    dx = torch.as_tensor(direction, dtype=torch.float64).reshape(1, *input_shape)
    with torch.no_grad(), forward_ad.dual_level():
        with PreActivations() as mode:
            model(forward_ad.make_dual(x, dx))
        values, slopes = [], []
        for value in mode.values:
            primal, tangent = _primal_tangent(value)
            values.append(primal.reshape(-1))
            slopes.append(tangent.reshape(-1))
        ahead = np.inf
        for pooled in mode.pools:
            primal, tangent = _primal_tangent(pooled.input)
            ahead = min(ahead, _argmax_change_ahead(primal, tangent, pooled))
        windows = mode.argmax().reshape(-1).numpy()
    empty = torch.zeros(0, dtype=torch.float64)
    return _State(
        torch.cat(values).numpy() if values else empty.numpy(),
        torch.cat(slopes).numpy() if slopes else empty.numpy(),
        windows,
        ahead,
    )


def _argmax_change_ahead(value: torch.Tensor, slope: torch.Tensor, pooled: Pooled) -> float:
    """Where the first entry of any window overtakes its argmax (direction units).

    On the current region every entry is affine along the segment: entry ``e`` meets the
    window's maximum ``m`` at ``(v_m - v_e) / (s_e - s_m)`` when it rises faster.
    """
    channels = value.shape[1]
    v = value.reshape(channels, -1).numpy()
    s = slope.reshape(channels, -1).numpy()
    v = np.concatenate([v, np.full((channels, 1), -np.inf)], axis=1)  # the padded tap
    s = np.concatenate([s, np.zeros((channels, 1))], axis=1)
    idx = pooled.indices[0].numpy()  # (channels, windows)
    v_max = np.take_along_axis(v, idx, axis=1)[:, :, None]
    s_max = np.take_along_axis(s, idx, axis=1)[:, :, None]
    v_e = v[:, pooled.entries]  # (channels, windows, k)
    s_e = s[:, pooled.entries]
    with np.errstate(divide="ignore", invalid="ignore"):
        meet = (v_max - v_e) / (s_e - s_max)
    meet[~((s_e > s_max) & (meet > 0))] = np.inf
    return float(meet.min()) if meet.size else np.inf


class TorchWalk(NamedTuple):
    """Breakpoints of a segment: positions as fractions of it, what changes at each.

    ``neurons[i]``: the ReLU neurons (call order) whose sign changes at breakpoint ``i``;
    ``changes[i]``: rows ``(window, old argmax, new argmax)`` of the windows whose
    argmax changes there (as ``PathResult.pooling.changes`` numbers them);
    ``evaluations``: forward passes the walk ran.
    """

    positions: np.ndarray
    neurons: list[np.ndarray]
    changes: list[np.ndarray]
    evaluations: int = 0

    @property
    def num_breakpoints(self) -> int:
        return len(self.positions)


def walk_segment(
    model, input_shape, start, end, step_past: float = 1e-9, max_breakpoints: int | None = None
) -> TorchWalk:
    """Every breakpoint of ``model`` (a float64 copy, see :func:`float64_copy`) on start→end.

    A breakpoint is where a ReLU's sign or a max-pooling window's argmax changes. After
    a crossing at ``t`` the next evaluation is at ``t + step_past`` (fractions of the
    segment); the neurons whose sign and the windows whose argmax differ there from
    before the crossing changed at it. Breakpoints closer than ``step_past`` to the
    previous one are merged into it (their changes together), which for random networks
    in tests is rare, and named where it happens. ``max_breakpoints`` stops the walk
    early (benchmarks time a prefix of it).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one small forward pass per step: threads only cost here
    try:
        return _walk(model, input_shape, start, end, step_past, max_breakpoints)
    finally:
        torch.set_num_threads(threads)


def _walk(model, input_shape, start, end, step_past: float, limit: int | None) -> TorchWalk:
    start = np.asarray(start, dtype=np.float64)
    direction = np.asarray(end, dtype=np.float64) - start
    t = 0.0
    positions: list[float] = []
    neurons: list[np.ndarray] = []
    changes: list[np.ndarray] = []
    crossing = None  # the last crossing's position, until the state after it is known
    before = None
    evaluations = 0
    while limit is None or len(positions) < limit:
        state = _state_along(model, input_shape, start + t * direction, direction)
        evaluations += 1
        signs = state.values > 0
        if crossing is not None:
            # Whatever changed sign there flipped (also a neuron that follows another one
            # to zero, which has slope 0 on one side); a mere touch is no breakpoint.
            flipped = np.flatnonzero(signs != before[0])
            moved = np.flatnonzero(state.argmax != before[1])
            if len(flipped) or len(moved):
                positions.append(crossing)
                neurons.append(flipped)
                changes.append(np.stack([moved, before[1][moved], state.argmax[moved]], axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            ahead = -state.values / state.slopes
        ahead[~(ahead > 0)] = np.inf  # behind us, parallel, or exactly at zero now
        nearest = min(float(ahead.min()) if ahead.size else np.inf, state.ahead)
        if t + nearest >= 1.0:
            break
        crossing = t + nearest
        before = (signs, state.argmax)
        t = crossing + step_past
    return TorchWalk(np.asarray(positions), neurons, changes, evaluations)


def sampled_pattern_changes(
    model, input_shape, start, end, samples: int, chunk: int = 2048
) -> int:
    """Pattern changes between consecutive points of ``samples`` evenly spaced on start→end.

    The pattern is every ReLU's sign and every max-pooling window's argmax. What dense
    sampling finds: each change certifies at least one breakpoint.
    """
    start = np.asarray(start, dtype=np.float64)
    direction = np.asarray(end, dtype=np.float64) - start
    changes = 0
    previous = None
    for first in range(0, samples, chunk):
        t = np.arange(first, min(first + chunk, samples), dtype=np.float64) / (samples - 1)
        signs, argmax = patterns(model, input_shape, start + t[:, None] * direction)
        state = np.concatenate([signs, argmax], axis=1)
        if previous is not None:
            changes += int(np.any(previous != state[0]))
        changes += int(np.count_nonzero(np.any(state[1:] != state[:-1], axis=1)))
        previous = state[-1]
    return changes
