"""Regression targets on a manifold, as functions of its target coordinate in [0, 1]."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["TARGET_KINDS", "Target"]

#: The kinds of target: a sinusoid of the coordinate, or a step function.
TARGET_KINDS = ("smooth", "step")


@dataclass(frozen=True)
class Target:
    """A target ``f(coordinate)`` with values in [-1, 1].

    ``"smooth"``: ``sin(2π frequency c)``. ``"step"``: ``+1`` between the first and the
    second step position, ``-1`` elsewhere (and so on, alternating, for more steps), so the
    target jumps by 2 at every position in ``steps``.

    Examples
    --------
    The default jumps (at 1/8 and 5/8 of the coordinate) avoid the symmetry points of the
    study's curves (the corners of the square, the vertices of the ellipse), where their
    curvature is extreme, so that jumps and curvature are not confounded; the default
    sinusoid (3 periods) has neither an extremum nor a zero there, so its density at the
    jump positions is a fair placebo.

    >>> Target("step")(np.array([0.1, 0.5, 0.9])).tolist()
    [-1.0, 1.0, -1.0]
    """

    kind: str = "smooth"
    frequency: int = 3
    steps: tuple[float, ...] = (0.125, 0.625)

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            msg = f"kind: expected one of {TARGET_KINDS}, got {self.kind!r}"
            raise ValueError(msg)
        if list(self.steps) != sorted(self.steps) or any(not 0 < p < 1 for p in self.steps):
            msg = f"steps: expected increasing positions in (0, 1), got {self.steps}"
            raise ValueError(msg)

    def step_function(self, coordinate: ArrayLike) -> NDArray[np.float64]:
        """The step function (whatever the kind): used to locate the discontinuities."""
        c = np.asarray(coordinate, dtype=np.float64)
        crossed = np.searchsorted(np.asarray(self.steps), c, side="right")
        out: NDArray[np.float64] = np.where(crossed % 2 == 1, 1.0, -1.0)
        return out

    def __call__(self, coordinate: ArrayLike) -> NDArray[np.float64]:
        c = np.asarray(coordinate, dtype=np.float64)
        if self.kind == "smooth":
            out: NDArray[np.float64] = np.sin(2 * math.pi * self.frequency * c)
            return out
        return self.step_function(c)
