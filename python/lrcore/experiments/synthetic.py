"""Synthetic study tables with known answers, for the statistics' tests and examples.

:func:`synthetic_tables` builds ``windows``, ``runs`` and ``convergence`` tables with the
columns of the real study (``notes/study-schema.md``) without training anything: the
density change along each trajectory is a planted correlation with |curvature| plus
circularly autocorrelated noise (:func:`circular_ar1`), plus planted excesses near the
target's jump positions. The calibration and power tests of the inference, and the
report's tests, run on these.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from lrcore._optional import optional_import

__all__ = ["SYNTHETIC_MANIFOLDS", "circular_ar1", "plant", "synthetic_tables"]

FloatArray = NDArray[np.float64]


def _ellipse(b: float) -> Callable[[FloatArray], FloatArray]:
    def curvature(t: FloatArray) -> FloatArray:
        out: FloatArray = b / (np.sin(t) ** 2 + b**2 * np.cos(t) ** 2) ** 1.5
        return out

    return curvature


def _wave(amplitude: float, frequency: int) -> Callable[[FloatArray], FloatArray]:
    def curvature(t: FloatArray) -> FloatArray:
        out: FloatArray = 1 + amplitude * np.cos(frequency * t)
        return out

    return curvature


def _constant(t: FloatArray) -> FloatArray:
    return np.ones_like(t)


#: spec -> (family, contrast name, contrast, constant curvature, |curvature| of the
#: window at angle t, distance to the centre at angle t). The ellipses are a dose-response
#: series in their axis ratio, the waves one in their amplitude.
SYNTHETIC_MANIFOLDS: dict[
    str,
    tuple[str, str, float, bool, Callable[[FloatArray], FloatArray], Callable[..., FloatArray]],
] = {
    "circle": ("curves", "axis_ratio", 1.0, True, _constant, _constant),
    "ellipse:b=0.7": (
        "curves",
        "axis_ratio",
        0.7,
        False,
        _ellipse(0.7),
        lambda t: np.hypot(np.cos(t), 0.7 * np.sin(t)),
    ),
    "ellipse:b=0.4": (
        "curves",
        "axis_ratio",
        0.4,
        False,
        _ellipse(0.4),
        lambda t: np.hypot(np.cos(t), 0.4 * np.sin(t)),
    ),
    "ellipse:b=0.2": (
        "curves",
        "axis_ratio",
        0.2,
        False,
        _ellipse(0.2),
        lambda t: np.hypot(np.cos(t), 0.2 * np.sin(t)),
    ),
    "profile:amplitude=0.3": ("curves", "amplitude", 0.3, False, _wave(0.3, 5), _constant),
    "profile:amplitude=0.9": ("curves", "amplitude", 0.9, False, _wave(0.9, 5), _constant),
    "sphere": ("surfaces", "", math.nan, True, _constant, _constant),
    "torus": ("surfaces", "minor_radius", 0.5, False, _wave(0.5, 1), _constant),
    "digit:digit=0": ("images", "", math.nan, False, _wave(0.6, 2), _constant),
}


def circular_ar1(shape: tuple[int, ...], phi: float, rng: np.random.Generator) -> FloatArray:
    """Gaussian noise along closed loops (the last axis), circularly stationary with
    unit variance and lag-1 autocorrelation about ``phi`` (an AR(1) spectrum on the
    circle).

    Examples
    --------
    >>> e = circular_ar1((2000, 64), 0.6, np.random.default_rng(0))
    >>> round(float(np.mean(e * np.roll(e, 1, axis=-1))), 1), round(float(e.std()), 1)
    (0.6, 1.0)
    """
    if not -1 < phi < 1:
        msg = f"phi: expected an autocorrelation in (-1, 1), got {phi}"
        raise ValueError(msg)
    width = shape[-1]
    white = rng.standard_normal(shape)
    frequency = np.fft.rfftfreq(width)
    gain = 1 / (1 - phi * np.exp(-2j * np.pi * frequency))
    out: FloatArray = np.fft.irfft(np.fft.rfft(white, axis=-1) * gain, n=width, axis=-1)
    # The variance of the circular process: the mean of the squared gain.
    full = np.abs(1 / (1 - phi * np.exp(-2j * np.pi * np.fft.fftfreq(width)))) ** 2
    return out / math.sqrt(float(full.mean()))


def plant(curvature: NDArray[np.float64], rho: float, noise: NDArray[np.float64]) -> FloatArray:
    """Density changes that correlate with ``curvature`` along the last axis: ``rho``
    times the standardised ranks of the curvature plus ``sqrt(1 - rho²)`` times the
    (unit-variance) ``noise``, so that their Spearman correlation with curvature is
    about ``rho`` (a constant curvature gets the noise alone).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> c = 1 + np.cos(np.linspace(0, 2 * np.pi, 64, endpoint=False))
    >>> y = plant(c, 0.5, circular_ar1((400, 64), 0.5, rng))
    >>> from scipy.stats import spearmanr
    >>> round(float(np.mean([spearmanr(c, row).statistic for row in y])), 1)
    0.5
    """
    stats = optional_import("scipy.stats", "experiments")
    ranks = stats.rankdata(curvature, axis=-1)
    ranks = ranks - ranks.mean(axis=-1, keepdims=True)
    spread = ranks.std(axis=-1, keepdims=True)
    scaled = np.divide(ranks, spread, out=np.zeros_like(ranks), where=spread > 0)
    out: FloatArray = rho * scaled + math.sqrt(1 - rho**2) * noise
    return out


def _trajectories(family: str) -> list[tuple[str, str, int, str, bool]]:
    """(trajectory, kind, side, direction, closed) of a synthetic run."""
    on = [("on:u0", "u"), ("on:v0", "v")] if family == "surfaces" else [("on:curve", "")]
    out = [(name, "on", 0, direction, True) for name, direction in on]
    out += [(name.replace("on", "offset+"), "offset", 1, d, True) for name, d in on]
    out.append(("line:0", "line", 0, "", False))
    return out


def synthetic_tables(
    manifolds: Sequence[str] = ("circle", "ellipse:b=0.7", "ellipse:b=0.4", "ellipse:b=0.2"),
    seeds: int = 20,
    windows: int = 32,
    arms: Sequence[str] = ("arc", "ambient"),
    targets: Sequence[str] = ("smooth", "step"),
    effect: float | dict[str, float] = 0.0,
    phi: float = 0.5,
    jump_effect: float = 3.0,
    placebo_effect: float = 0.0,
    unfit: Sequence[str] = (),
    seed: int = 0,
) -> dict[str, Any]:
    """``windows``, ``runs`` and ``convergence`` tables of a synthetic study.

    Parameters
    ----------
    manifolds
        Keys of :data:`SYNTHETIC_MANIFOLDS`.
    seeds, windows
        Study seeds and windows per trajectory.
    arms, targets
        Target arms and kinds: every combination is a run per manifold and seed.
    effect
        The planted correlation of the density change with |curvature| along on-manifold
        and offset trajectories (about their Spearman correlation, :func:`plant`): one
        for all runs, or a dict from manifold specs and arms to
        effects (a manifold's entry first, then its arm's, else 0).
    phi
        Lag-1 autocorrelation of the noise along a trajectory (:func:`circular_ar1`).
    jump_effect, placebo_effect
        Added to the density change in windows near the jump positions (``near_step``)
        for step and smooth targets.
    unfit
        Manifold specs whose seed-0 runs are marked ``fit_ok = False``.
    seed
        Seeds the random generator.

    Examples
    --------
    >>> tables = synthetic_tables(seeds=3, windows=8, targets=("smooth",), arms=("arc",))
    >>> len(tables["runs"]), len(tables["windows"]), sorted(set(tables["windows"]["step"]))
    (12, 576, [0, 100])
    """
    pd = optional_import("pandas", "experiments")
    effects = effect if isinstance(effect, dict) else dict.fromkeys(arms, effect)
    planted = {(m, a): effects.get(m, effects.get(a, 0.0)) for m in manifolds for a in arms}
    angle = 2 * np.pi * (np.arange(windows) + 0.5) / windows
    rows: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    convergence: list[dict[str, Any]] = []
    for spec in manifolds:
        family, contrast_name, contrast, constant, curvature, distance = SYNTHETIC_MANIFOLDS[spec]
        for arm in arms:
            for s in range(seeds):
                rng = np.random.default_rng([seed, zlib.crc32(f"{spec}|{arm}".encode()), s])
                jumps = rng.choice(windows, size=2, replace=False)
                gap = np.abs(np.arange(windows)[:, None] - jumps[None, :])
                near = np.minimum(gap, windows - gap).min(axis=1) <= 1
                phase = rng.uniform(0, 2 * np.pi)
                for target in targets:
                    run = f"{spec}|{arm}|{target}|s{s}|8x2"
                    ident = {
                        "run": run,
                        "family": family,
                        "manifold": spec,
                        "manifold_name": spec.split(":")[0],
                        "arm": arm,
                        "target": target,
                        "seed": s,
                        "width": 8,
                        "depth": 2,
                        "contrast_name": contrast_name,
                        "contrast": contrast,
                        "constant_curvature": constant,
                    }
                    fit_ok = not (spec in unfit and s == 0)
                    runs.append(
                        {
                            **ident,
                            "init_seed": int(rng.integers(2**31)),
                            "loss_train_init": 0.5,
                            "loss_train_final": 0.01 if fit_ok else 0.4,
                            "loss_heldout_final": 0.012 if fit_ok else 0.45,
                            "target_variance": 0.5,
                            "fit_threshold": 0.1,
                            "fit_ok": fit_ok,
                        }
                    )
                    bump = jump_effect if target == "step" else placebo_effect
                    level = 0.5 * rng.standard_normal()  # runs differ in their mean change
                    for trajectory, kind, side, direction, closed in _trajectories(family):
                        shift = 0.0 if direction != "v" else 1.0
                        k = curvature(angle + shift) if kind != "line" else np.zeros(windows)
                        noise = circular_ar1((windows,), phi, rng)
                        rho = planted[spec, arm] if kind != "line" else 0.0
                        change = plant(k, rho, noise)
                        change = change + level + bump * (near & (kind == "on"))
                        init = 5 + 0.5 * rng.standard_normal(windows)
                        value = np.sin(2 * angle + phase)
                        frame = {
                            **ident,
                            "trajectory": trajectory,
                            "kind": kind,
                            "side": side,
                            "direction": direction,
                            "closed": closed,
                            "window": np.arange(windows),
                            "center": angle,
                            "curvature": k,
                            "geodesic_curvature": 0.1 * k if family == "surfaces" else np.nan,
                            "gaussian": k**2 if family == "surfaces" else np.nan,
                            "mean": k if family == "surfaces" else np.nan,
                            "target_value": value,
                            "target_bending": 4 * np.abs(value),
                            "target_slope": 2 * np.abs(np.cos(2 * angle + phase)),
                            "dist_centre": distance(angle) * (1 + 0.1 * side),
                            "dist_origin": 2 + np.cos(angle - phase) * (1 + 0.1 * side),
                            "near_step": near if kind == "on" else np.zeros(windows, bool),
                        }
                        rows.append({**frame, "step": 0, "density": init})
                        rows.append({**frame, "step": 100, "density": init + change})
                    convergence.append(
                        {
                            **ident,
                            "trajectory": "on:curve",
                            "resolution": 256,
                            "fine_resolution": 1024,
                            "breakpoints": 100,
                            "fine_breakpoints": 100,
                            "max_window_density_difference": 0.0,
                        }
                    )
    columns = {
        name: np.concatenate([np.broadcast_to(row[name], (windows,)) for row in rows])
        for name in rows[0]
    }
    return {
        "windows": pd.DataFrame(columns),
        "runs": pd.DataFrame(runs),
        "convergence": pd.DataFrame(convergence),
    }
