"""Seed-level inference for the curvature study: the seed is the unit of inference.

Along one trajectory the windows are neighbours, so their density changes are
autocorrelated, and the same curvature profile comes back in every seed: rows of windows
are not independent observations, and no p-value here treats them as such. Instead:

1. per seed (one training run per manifold, arm, target and seed) and trajectory, the
   Spearman correlation of the density change with |curvature| across the windows, as a
   Fisher z (:func:`shifted_spearman`, :func:`fisher_z`); a seed's z is the mean over its
   trajectories (and, pooled over a family, over its manifolds);
2. across seeds, the mean z with a t confidence interval, a one-sample t-test and a
   Wilcoxon signed-rank test (:func:`seed_level_test`, scipy.stats), and an equivalence
   test (TOST, statsmodels) of ``|rho| <`` :data:`EQUIVALENCE_RHO`;
3. for closed trajectories, a circular-shift permutation null: each seed's change series
   is rotated along its loop by a random offset relative to the curvature, which keeps
   the autocorrelation of both and breaks only their alignment
   (:func:`circular_shift_test`; p-values with the +1 correction);
4. Holm's correction across the family of tests (:func:`holm`, statsmodels).

:data:`STRENGTHS` is the one place that says what the report calls a weak, moderate or
strong correlation.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from lrcore._optional import optional_import

__all__ = [
    "ALPHA",
    "EQUIVALENCE_RHO",
    "STRENGTHS",
    "circular_shift_test",
    "fisher_z",
    "holm",
    "seed_level_test",
    "shifted_spearman",
    "spearman_rows",
    "strength",
]

FloatArray = NDArray[np.float64]

#: Significance level of every test, and 1 - the level of every interval.
ALPHA = 0.05
#: Lower bounds of |rho| for the words the report uses: below the first, "negligible".
#: A planted effect of the size called "weak" is what the power test plants.
STRENGTHS: tuple[tuple[float, str], ...] = ((0.5, "strong"), (0.3, "moderate"), (0.1, "weak"))
#: The equivalence margin: "no link" needs the TOST to show |rho| < this (Fisher z scale).
EQUIVALENCE_RHO = 0.2
#: |rho| is clipped below 1 before the Fisher transform (a perfect rank correlation over
#: a few windows would give an infinite z).
_RHO_CLIP = 1 - 1e-9


def strength(rho: float) -> str:
    """The word the report uses for a correlation of size ``|rho|`` (:data:`STRENGTHS`).

    Examples
    --------
    >>> [strength(r) for r in (0.05, -0.15, 0.35, 0.7)]
    ['negligible', 'weak', 'moderate', 'strong']
    >>> strength(float("nan"))
    'undefined'
    """
    if math.isnan(rho):
        return "undefined"
    for bound, word in STRENGTHS:
        if abs(rho) >= bound:
            return word
    return "negligible"


def fisher_z(rho: ArrayLike) -> FloatArray:
    """Fisher's z = artanh(rho), with |rho| clipped just below 1 (NaN stays NaN).

    Examples
    --------
    >>> fisher_z([0.0, 0.5]).round(4).tolist()
    [0.0, 0.5493]
    """
    r = np.clip(np.asarray(rho, dtype=np.float64), -_RHO_CLIP, _RHO_CLIP)
    out: FloatArray = np.arctanh(r)
    return out


def spearman_rows(x: ArrayLike, y: ArrayLike) -> FloatArray:
    """Spearman correlation along the last axis, over the positions where both are finite;
    NaN when fewer than 4 remain or one side is constant there.

    Examples
    --------
    >>> spearman_rows([[1.0, 2, 3, 4, np.nan], [1, 1, 1, 1, 1]], [[2.0, 1, 4, 3, 9], [1, 2, 3, 4, 5]])
    array([0.6, nan])
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    both = np.isfinite(xs) & np.isfinite(ys)
    return _rank_correlation(np.where(both, xs, np.nan), np.where(both, ys, np.nan))


def _rank_correlation(x: FloatArray, y: FloatArray) -> FloatArray:
    """Pearson correlation of ranks along the last axis, NaNs left out (x and y share
    their NaNs); NaN when fewer than 4 values remain or one side is constant."""
    stats = optional_import("scipy.stats", "experiments")
    rx = stats.rankdata(x, axis=-1, nan_policy="omit")
    ry = stats.rankdata(y, axis=-1, nan_policy="omit")
    count = np.isfinite(rx).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        # Ranks run 1..count, so their mean is (count + 1) / 2 (no warning when empty).
        middle = ((count + 1) / 2)[..., None]
        cx = rx - middle
        cy = ry - middle
        num = np.nansum(cx * cy, axis=-1)
        den = np.sqrt(np.nansum(cx * cx, axis=-1) * np.nansum(cy * cy, axis=-1))
        rho = num / den
    out: FloatArray = np.where((count >= 4) & (den > 0), rho, np.nan)
    return out


def shifted_spearman(
    curvature: ArrayLike, change: ArrayLike, valid: ArrayLike | None = None
) -> FloatArray:
    """Spearman correlation of ``change`` with ``curvature`` along the last axis (the
    windows of a closed trajectory) for every circular shift of the change series.

    Parameters
    ----------
    curvature, change
        ``(..., W)`` window values; NaN marks a missing window.
    valid
        ``(..., W)`` bool: windows of the change series to use (default: all finite). The
        mask moves with the change series (it marks where the change was measured, e.g.
        away from a target's jumps).

    Returns
    -------
    ``(..., W)``: element ``k`` correlates ``curvature[i]`` with ``change[i - k]`` (indices
    modulo W) over the windows valid after the shift; ``k = 0`` is the observed
    correlation. NaN when fewer than 4 windows remain or a side is constant (a circle's
    curvature, for one).

    Examples
    --------
    >>> c = np.array([0.0, 1, 2, 3, 2, 1])
    >>> shifted_spearman(c, c).round(2).tolist()  # = scipy.stats.spearmanr(c, np.roll(c, k))
    [1.0, 0.48, -0.48, -1.0, -0.48, 0.48]
    """
    c = np.asarray(curvature, dtype=np.float64)
    y = np.asarray(change, dtype=np.float64)
    if c.shape != y.shape or c.ndim == 0:
        msg = f"curvature, change: expected arrays of one shape (..., W), got {c.shape}, {y.shape}"
        raise ValueError(msg)
    ok = np.isfinite(y) if valid is None else np.asarray(valid, dtype=bool) & np.isfinite(y)
    if ok.shape != y.shape:
        msg = f"valid: expected the shape of change {y.shape}, got {ok.shape}"
        raise ValueError(msg)
    width = c.shape[-1]
    # index[k, i] = i - k (mod W): row k of y[..., index] is y rolled by k.
    index = (np.arange(width)[None, :] - np.arange(width)[:, None]) % width
    flat_c, flat_y = c.reshape(-1, width), y.reshape(-1, width)
    full = (ok & np.isfinite(c)).reshape(-1, width).all(axis=1)
    out = np.empty((flat_c.shape[0], width))
    if full.any():
        # Complete series: the ranks of a rotated series are the rotated ranks.
        stats = optional_import("scipy.stats", "experiments")
        rc = stats.rankdata(flat_c[full], axis=-1)
        ry = stats.rankdata(flat_y[full], axis=-1)
        rc -= rc.mean(-1, keepdims=True)
        ry -= ry.mean(-1, keepdims=True)
        den = np.sqrt((rc * rc).sum(-1) * (ry * ry).sum(-1))[:, None]
        # sum_i rc[i] ry[i - k] for every k at once: a circular cross-correlation.
        num = np.fft.irfft(np.fft.rfft(rc) * np.conj(np.fft.rfft(ry)), n=width)
        with np.errstate(invalid="ignore", divide="ignore"):
            rho = num / den
        out[full] = np.where((den > 0) & (width >= 4), rho, np.nan)
    gaps = ~full
    if gaps.any():
        rolled_ok = ok.reshape(-1, width)[gaps][:, index] & np.isfinite(flat_c[gaps])[:, None, :]
        xs = np.where(rolled_ok, flat_c[gaps][:, None, :], np.nan)
        ys = np.where(rolled_ok, flat_y[gaps][:, index], np.nan)
        out[gaps] = _rank_correlation(xs, ys)
    result: FloatArray = out.reshape(c.shape)
    return result


def _seed_means(z: FloatArray, weights: FloatArray) -> FloatArray:
    """Weighted mean over the trajectory axis (-1), NaNs left out."""
    w = np.where(np.isfinite(z), weights, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.nansum(np.nan_to_num(z) * w, axis=-1) / w.sum(-1)
    return out


def circular_shift_test(
    z: ArrayLike,
    resamples: int,
    rng: np.random.Generator,
    weights: ArrayLike | None = None,
) -> tuple[FloatArray, FloatArray]:
    """The mean over seeds of the per-seed Fisher z, and its circular-shift p-value.

    Parameters
    ----------
    z
        ``(..., S, T, W)`` Fisher z of the change with curvature along trajectory ``t``
        of seed ``s`` at every circular shift (:func:`shifted_spearman`); shift 0 is the
        observed one. NaN for a trajectory a seed lacks. Every trajectory must be closed.
    resamples
        Random shift sets drawn (``B``).
    rng
        The random generator (seeded: the p-values are reproducible).
    weights
        ``(..., S, T)`` weights of the trajectories within a seed (default equal), e.g.
        ``1 / trajectories of its manifold`` so that each manifold counts once.

    Returns
    -------
    (statistic, p): ``(...)`` arrays. The statistic is the mean over seeds of the seed z
    (the weighted mean over its trajectories at shift 0). Under the null, every
    trajectory of every seed is rotated independently by a uniform random offset, and
    ``p = (1 + #{|T*| >= |T|}) / (B + 1)`` (two-sided). It is exact when the change
    series is circularly stationary and independent of curvature, whatever its
    autocorrelation.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> c = np.cos(np.linspace(0, 2 * np.pi, 16, endpoint=False))
    >>> y = c + 0.1 * rng.standard_normal((10, 1, 16))  # 10 seeds, 1 trajectory
    >>> stat, p = circular_shift_test(fisher_z(shifted_spearman(c + 0 * y, y)), 199, rng)
    >>> bool(stat > 1), float(p)
    (True, 0.005)
    """
    zs = np.asarray(z, dtype=np.float64)
    if zs.ndim < 3:
        msg = f"z: expected an array (..., seeds, trajectories, shifts), got shape {zs.shape}"
        raise ValueError(msg)
    if resamples < 1:
        msg = f"resamples: expected a positive integer, got {resamples}"
        raise ValueError(msg)
    w = np.ones(zs.shape[:-1]) if weights is None else np.asarray(weights, dtype=np.float64)
    w = np.broadcast_to(w, zs.shape[:-1])
    observed = np.nanmean(_seed_means(zs[..., 0], w), axis=-1)
    shifts = rng.integers(0, zs.shape[-1], size=(resamples, *zs.shape[:-1]))
    drawn = np.take_along_axis(zs[None], shifts[..., None], axis=-1)[..., 0]
    with np.errstate(invalid="ignore"):
        null = np.nanmean(_seed_means(drawn, w), axis=-1)
    # A resampled statistic equal to the observed one up to rounding counts as extreme.
    tolerance = 1e-12 * np.maximum(np.abs(observed), 1.0)
    extreme = (np.abs(null) >= np.abs(observed) - tolerance).sum(axis=0)
    p: FloatArray = np.where(np.isfinite(observed), (1 + extreme) / (resamples + 1), np.nan)
    return observed, p


def seed_level_test(z: ArrayLike, level: float = 1 - ALPHA) -> dict[str, float]:
    """Across seeds: the mean Fisher z with a t interval, the t-test and the Wilcoxon
    signed-rank test of zero, and the TOST of equivalence within ``|rho| <``
    :data:`EQUIVALENCE_RHO`.

    Parameters
    ----------
    z
        One Fisher z per seed (NaNs left out).
    level
        The confidence level of the interval.

    Returns
    -------
    ``seeds``, ``mean_z``, ``sd_z``, ``z_lo``, ``z_hi`` (the t interval), ``rho``,
    ``rho_lo``, ``rho_hi`` (the same back-transformed by tanh), ``p_t``, ``p_wilcoxon``,
    ``p_tost`` (the larger of the two one-sided p-values; equivalence is shown when it is
    below :data:`ALPHA`). NaN where fewer than 2 seeds (3 for the interval) are given.

    Examples
    --------
    >>> out = seed_level_test([0.02, -0.05, 0.01, 0.04, -0.03, 0.0, 0.03, -0.01])
    >>> out["seeds"], round(out["mean_z"], 4), out["p_tost"] < 0.05, out["p_t"] > 0.05
    (8.0, 0.0012, True, True)
    """
    stats = optional_import("scipy.stats", "experiments")
    weightstats = optional_import("statsmodels.stats.weightstats", "experiments")
    values = np.asarray(z, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    nan = float("nan")
    out = dict.fromkeys(
        ("mean_z", "sd_z", "z_lo", "z_hi", "rho", "rho_lo", "rho_hi", "p_t", "p_wilcoxon"),
        nan,
    )
    out["seeds"] = float(values.size)
    out["p_tost"] = nan
    if values.size == 0:
        return out
    out["mean_z"] = float(values.mean())
    out["rho"] = float(np.tanh(out["mean_z"]))
    if values.size < 2:
        return out
    out["sd_z"] = float(values.std(ddof=1))
    spread = float(np.max(np.abs(values - out["mean_z"])))
    if spread <= 10 * np.finfo(np.float64).eps * abs(out["mean_z"]) or out["sd_z"] == 0:
        # All seeds agree (to rounding): the interval is the point, the tests degenerate.
        out["z_lo"] = out["z_hi"] = out["mean_z"]
        out["p_t"] = 0.0 if out["mean_z"] != 0 else 1.0
    else:
        test = stats.ttest_1samp(values, 0.0)
        out["p_t"] = float(test.pvalue)
        interval = test.confidence_interval(confidence_level=level)
        out["z_lo"], out["z_hi"] = float(interval.low), float(interval.high)
        bound = float(np.arctanh(EQUIVALENCE_RHO))
        out["p_tost"] = float(weightstats.DescrStatsW(values).ttost_mean(-bound, bound)[0])
    if np.any(values != 0):
        out["p_wilcoxon"] = float(stats.wilcoxon(values).pvalue)
    out["rho_lo"], out["rho_hi"] = float(np.tanh(out["z_lo"])), float(np.tanh(out["z_hi"]))
    return out


def holm(p: ArrayLike, alpha: float = ALPHA) -> tuple[NDArray[np.bool_], FloatArray]:
    """Holm's step-down correction (statsmodels ``multipletests``); NaNs are left out of
    the family and stay NaN (not rejected).

    Returns
    -------
    (reject, adjusted p-values), in the order given.

    Examples
    --------
    >>> reject, adjusted = holm([0.01, 0.04, 0.03, float("nan")])
    >>> reject.tolist(), adjusted.round(2).tolist()
    ([True, False, False, False], [0.03, 0.06, 0.06, nan])
    """
    multitest = optional_import("statsmodels.stats.multitest", "experiments")
    values = np.asarray(p, dtype=np.float64)
    reject = np.zeros(values.shape, dtype=bool)
    adjusted = np.full(values.shape, np.nan)
    finite = np.isfinite(values)
    if finite.any():
        r, a, _, _ = multitest.multipletests(values[finite], alpha=alpha, method="holm")
        reject[finite] = r
        adjusted[finite] = a
    return reject, adjusted
