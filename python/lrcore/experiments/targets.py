"""Regression targets of the study: functions of a manifold's chart coordinate (the
``"arc"`` arm) or of the ambient position (the ``"ambient"`` arm), drawn per seed."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["ARC_FREQUENCIES", "ARMS", "TARGET_KINDS", "Target", "draw_targets"]

#: The kinds of target: a sinusoid, or a step function.
TARGET_KINDS = ("smooth", "step")
#: What a target is a function of: the chart (arc-length) coordinate, or the position x.
ARMS = ("arc", "ambient")
#: Candidate periods per turn of the arc arm's sinusoid (those sharing no factor with the
#: curvature's symmetry are drawn from).
ARC_FREQUENCIES = (3, 4, 5)


@dataclass(frozen=True)
class Target:
    """A target with values in [-1, 1], a function of a scalar coordinate ``c``.

    ``"smooth"``: ``sin(2π frequency c + phase)``. ``"step"``: ``+1`` between the first
    and the second position in ``steps``, ``-1`` elsewhere (and so on, alternating), so
    the target jumps by 2 at every position in ``steps``.

    In the ``"arc"`` arm ``c`` is the manifold's chart coordinate in [0, 1] (arc length
    over length on curves). In the ``"ambient"`` arm it is the position's projection on a
    unit ``direction``, ``c = (w·x - origin) / extent``, so the smooth target is a plane
    wave in input space and the step (one position) a cut by a hyperplane.

    Examples
    --------
    >>> Target("step")(np.array([0.1, 0.5, 0.9])).tolist()
    [-1.0, 1.0, -1.0]
    >>> wave = Target("smooth", 1.0, arm="ambient", direction=(0.0, 1.0), extent=4.0)
    >>> [round(float(v), 12) for v in wave.values(None, np.array([[5.0, 1.0], [0.0, 2.0]]))]
    [1.0, 0.0]
    """

    kind: str = "smooth"
    frequency: float = 3
    steps: tuple[float, ...] = (0.125, 0.625)
    phase: float = 0.0
    arm: str = "arc"
    direction: tuple[float, ...] = ()
    origin: float = 0.0
    extent: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            msg = f"kind: expected one of {TARGET_KINDS}, got {self.kind!r}"
            raise ValueError(msg)
        if self.arm not in ARMS:
            msg = f"arm: expected one of {ARMS}, got {self.arm!r}"
            raise ValueError(msg)
        if list(self.steps) != sorted(self.steps) or any(not 0 < p < 1 for p in self.steps):
            msg = f"steps: expected increasing positions in (0, 1), got {self.steps}"
            raise ValueError(msg)
        if not (math.isfinite(self.frequency) and self.frequency > 0):
            msg = f"frequency: expected a positive number, got {self.frequency}"
            raise ValueError(msg)
        if not math.isfinite(self.phase):
            msg = f"phase: expected a finite number, got {self.phase}"
            raise ValueError(msg)
        if self.arm == "ambient":
            norm = float(np.linalg.norm(np.asarray(self.direction, dtype=np.float64)))
            if not self.direction or abs(norm - 1) > 1e-9:
                msg = (
                    f"direction: expected a unit vector for the ambient arm, got {self.direction}"
                )
                raise ValueError(msg)
            if not (math.isfinite(self.extent) and self.extent > 0):
                msg = f"extent: expected a positive number, got {self.extent}"
                raise ValueError(msg)

    def coordinate(self, chart: ArrayLike | None, points: ArrayLike) -> NDArray[np.float64]:
        """The target's coordinate: ``chart`` (arc arm) or the scaled projection of
        ``points`` ``(n, d)`` on the direction (ambient arm)."""
        if self.arm == "arc":
            if chart is None:
                msg = "chart: the arc arm needs the chart coordinate"
                raise ValueError(msg)
            return np.asarray(chart, dtype=np.float64)
        x = np.asarray(points, dtype=np.float64)
        out: NDArray[np.float64] = (x @ np.asarray(self.direction) - self.origin) / self.extent
        return out

    def values(self, chart: ArrayLike | None, points: ArrayLike) -> NDArray[np.float64]:
        """The target at points with chart coordinates ``chart`` (NaN chart: NaN)."""
        return self(self.coordinate(chart, points))

    def step_values(self, chart: ArrayLike | None, points: ArrayLike) -> NDArray[np.float64]:
        """The step function of the same coordinate (whatever the kind): locates the
        jumps, which a smooth target's windows use as a placebo."""
        return self.step_function(self.coordinate(chart, points))

    def step_function(self, coordinate: ArrayLike) -> NDArray[np.float64]:
        """The step function (whatever the kind): used to locate the discontinuities."""
        c = np.asarray(coordinate, dtype=np.float64)
        crossed = np.searchsorted(np.asarray(self.steps), c, side="right")
        out: NDArray[np.float64] = np.where(crossed % 2 == 1, 1.0, -1.0)
        return np.where(np.isnan(c), np.nan, out)

    def __call__(self, coordinate: ArrayLike) -> NDArray[np.float64]:
        c = np.asarray(coordinate, dtype=np.float64)
        if self.kind == "smooth":
            out: NDArray[np.float64] = np.sin(2 * math.pi * self.frequency * c + self.phase)
            return out
        return self.step_function(c)


def _coprime_frequencies(symmetry: int, frequencies: tuple[int, ...]) -> tuple[int, ...]:
    if symmetry < 2:
        return frequencies
    return tuple(f for f in frequencies if math.gcd(f, symmetry) == 1)


def draw_targets(
    arm: str,
    rng: np.random.Generator,
    symmetry: int = 1,
    closed: bool = True,
    inputs: ArrayLike | None = None,
    frequencies: tuple[int, ...] = ARC_FREQUENCIES,
) -> dict[str, Target]:
    """A seed's smooth and step targets, drawn together (so the smooth target's placebo
    jumps are the step target's jumps).

    Arc arm: a phase uniform in [0, 2π); a frequency (periods per turn) drawn from
    ``frequencies`` among those sharing no factor with the curvature's ``symmetry``
    (all of them for ``symmetry`` 0 or 1); two jumps, the first uniform
    along the coordinate (``closed``) or in [0.1, 0.45] (not closed), the second 0.3
    to 0.7 (0.3 to 0.45) after it, wrapping around on closed coordinates.

    Ambient arm: a direction ``w`` uniform on the unit sphere of the ``inputs``' space,
    the coordinate ``(w·x - min) / (max - min)`` over ``inputs`` (the training data), a
    frequency uniform in [1.5, 2.5] periods over the data's extent along ``w``, a phase
    as above, and one jump (a hyperplane ``w·x = const`` through the data) at a
    coordinate uniform in [0.3, 0.7].

    Examples
    --------
    >>> targets = draw_targets("arc", np.random.default_rng(0), symmetry=3)
    >>> sorted(targets), targets["smooth"].frequency in (4, 5)
    (['smooth', 'step'], True)
    >>> targets["smooth"].steps == targets["step"].steps
    True
    """
    if arm not in ARMS:
        msg = f"arm: expected one of {ARMS}, got {arm!r}"
        raise ValueError(msg)
    if int(symmetry) < 0:
        msg = f"symmetry: expected an integer >= 0, got {symmetry}"
        raise ValueError(msg)
    phase = float(rng.uniform(0.0, 2 * math.pi))
    if arm == "arc":
        choices = _coprime_frequencies(int(symmetry), tuple(frequencies))
        if not choices:
            msg = f"frequencies: none of {frequencies} is coprime with symmetry {symmetry}"
            raise ValueError(msg)
        frequency: float = float(choices[int(rng.integers(len(choices)))])
        if closed:
            first = float(rng.uniform(0.0, 1.0))
            second = (first + float(rng.uniform(0.3, 0.7))) % 1.0
        else:
            first = float(rng.uniform(0.1, 0.45))
            second = first + float(rng.uniform(0.3, 0.45))
        steps = tuple(sorted(min(max(p, 1e-6), 1 - 1e-6) for p in (first, second)))
        return {kind: Target(kind, frequency, steps, phase, arm="arc") for kind in TARGET_KINDS}
    if inputs is None:
        msg = "inputs: the ambient arm needs the training inputs"
        raise ValueError(msg)
    x = np.asarray(inputs, dtype=np.float64)
    direction = rng.standard_normal(x.shape[1])
    direction /= np.linalg.norm(direction)
    projection = x @ direction
    origin = float(projection.min())
    extent = float(projection.max()) - origin
    if not extent > 0:
        msg = "inputs: the training inputs do not spread along the drawn direction"
        raise ValueError(msg)
    frequency = float(rng.uniform(1.5, 2.5))
    cut = float(rng.uniform(0.3, 0.7))
    return {
        kind: Target(
            kind,
            frequency,
            (cut,),
            phase,
            arm="ambient",
            direction=tuple(float(w) for w in direction),
            origin=origin,
            extent=extent,
        )
        for kind in TARGET_KINDS
    }
