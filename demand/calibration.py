"""Margins by split conformal calibration, and the error mixture of exact re-runs.

The corrections are fitted on the older part of the history and their errors measured
on the newest part; a margin is an empirical quantile of those errors, per calibration
group (see :func:`demand.curves.calibration_group`), never below the Gaussian quantile
where the window is too thin to show the tail. Exact re-runs get a finer tail: their
errors as a mixture of run-to-run noise and rare spikes (:func:`mixture`).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
from scipy.special import erfc as _erfc

from .curves import GROUP_BEYOND, GROUP_EXACT, GROUP_KIN
from .features import LEVEL_CONFIG, LEVEL_NONE, LEVEL_NOTEBOOK, LEVEL_USER

#: Levels with fewer calibration errors than this borrow the pooled margin.
MIN_LEVEL_SAMPLES = 30
#: Calibration jobs needed before margins are chosen per job by cost (fewer: the fixed
#: quantile): a kill share of a few per mille cannot be measured on a handful of jobs.
MIN_PRICE_SAMPLES = 50
#: Least log margin of a job whose notebook variant (or notebook) this user never ran:
#: whatever the early calibration windows happened to show, such a guess is rough.
NEW_MARGIN_FLOOR = {LEVEL_NOTEBOOK: math.log(2.0), LEVEL_USER: math.log(3.0)}
#: Memory quantiles the cost-aware choice picks from (1.0: the tail fit's level a new error
#: exceeds with odds 1 / (n + 1), see tail_margin).
MEMORY_QUANTILES = (0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, 1.0)
#: Calibration errors beyond a quantile needed to trust its empirical margin below the Gaussian one.
TAIL_SAMPLES = 10
#: An exact re-run's error beyond this many robust noise scales is a spike: a jump by a
#: factor (another input, a leak) that no run-to-run noise explains.
SPIKE_SIGMAS = 4.0
#: Log margins the cost-aware choice picks among for exact re-runs.
MARGIN_GRID = np.linspace(0.0, 3.0, 121)
#: Least log scale over which the odds of a spike beyond the largest seen fade (1/e).
SPIKE_TAIL = 0.1


#: The top option's tail is fitted on this share of the largest errors (at least TAIL_MIN).
TAIL_SHARE = 0.1
TAIL_MIN = 5


def robust_spread(values) -> float:
    """The spread of ``values`` as a standard deviation, from their median absolute
    deviation: one outlier among them (a spike, a runaway) does not widen it."""
    v = np.asarray(values, dtype=float)
    return 1.4826 * float(np.median(np.abs(v - np.median(v))))


def tail_margin(errors: np.ndarray) -> float:
    """The error a new one exceeds with odds ``1 / (n + 1)``, from an exponential tail
    fitted to the largest errors -- not the largest error itself: one runaway in the
    window (20x, another input) would make the top option twenty times the estimate for
    every job it is chosen for. Never below the second largest error; the largest
    itself while the errors are too few to fit a tail on."""
    e = np.sort(np.asarray(errors, dtype=float))
    n = len(e)
    k = max(TAIL_MIN, int(TAIL_SHARE * n))
    if n < 2 * k:
        return float(e[-1])
    threshold = e[-k - 1]
    scale = max(float(np.mean(e[-k:] - threshold)), 1e-6)  # the exponential's maximum-likelihood scale
    # P(error > threshold + x) = k / n * exp(-x / scale) = 1 / (n + 1)
    return float(max(threshold + scale * math.log(k * (n + 1) / n), e[-2]))


def conformal_margin(errors: np.ndarray, q: float) -> float:
    """The split-conformal ``q`` upper quantile of ``errors`` (finite-sample corrected);
    for ``q = 1`` the tail fit's (see :func:`tail_margin`)."""
    n = len(errors)
    if n == 0:
        return math.nan
    if q >= 1.0:
        return tail_margin(errors)
    rank = min(n, int(math.ceil((n + 1) * q)))
    return float(np.sort(errors)[rank - 1])


def gauss_z(q: float) -> float:
    from statistics import NormalDist
    return NormalDist().inv_cdf(min(q, 0.999))


GAUSS_Z = {q: gauss_z(q) for q in (*MEMORY_QUANTILES, 0.9, 0.995, 0.998)}


class _ZTable(dict):
    def __missing__(self, q):
        return gauss_z(q)


GAUSS_Z = _ZTable(GAUSS_Z)


def mixture(raw: np.ndarray, scale: np.ndarray) -> Optional[dict]:
    """Exact re-runs' errors (log, and each job's noise scale) as a mixture: the body
    in units of the job's noise, the spikes as a share and their sizes in plain log.

    Pooled errors in noise units alone make a poor tail: a spike of 1.5x is 10 units
    on a quiet configuration and 2 on a noisy one, so every quantile mixes them, too
    wide for the noisy, too narrow for the quiet. A spike is an error beyond
    SPIKE_SIGMAS robust units; a small one hides in a noisy job's noise, so each seen
    spike stands for 1 / (the share of jobs on which one its size would show).
    """
    if len(raw) < MIN_PRICE_SAMPLES:
        return None
    e = raw / scale
    centre = float(np.median(e))
    threshold = scale * (centre + SPIKE_SIGMAS * max(robust_spread(e), 1e-3))
    spike = raw > threshold
    sizes = np.sort(raw[spike])
    seen = np.sort(threshold)
    weights = len(seen) / np.maximum(np.searchsorted(seen, sizes, side="left"), 1)
    # Odds that a spike exceeds each margin of MARGIN_GRID: counted as a new one among
    # those seen would be (the +1), and beyond the largest seen, fading with the
    # spread of their sizes -- never zero.
    top = sizes[-1] if len(sizes) else 0.0
    tau = max(float(np.std(sizes)) if len(sizes) > 1 else 0.0, SPIKE_TAIL)
    above = np.concatenate([np.cumsum(weights[::-1])[::-1], [0.0]])  # weight of spikes from the i-th up
    beyond = above[np.searchsorted(sizes, MARGIN_GRID, side="right")]
    total = weights.sum() + 1
    spike_odds = np.where(MARGIN_GRID < top, (beyond + 1) / total, np.exp(-(MARGIN_GRID - top) / tau) / total)
    body = e[~spike]
    c = float(np.median(body))
    return {"body": np.sort(body), "centre": c, "spread": max(robust_spread(body), 1e-3),
            "share": float(min(0.5, (weights.sum() + 1) / (len(e) + 1))), "spikes": sizes, "spike_odds": spike_odds}


def mixture_kill(tail: dict, scale: float) -> np.ndarray:
    """P(peak above point + m) for each m of MARGIN_GRID: run-to-run noise in units of
    the configuration's noise ``scale`` (empirical, never thinner than its Gaussian
    fit), plus spikes in plain log, whatever the configuration's noise (their odds over
    the grid are the tail's, the same for every job)."""
    body = tail["body"]
    t = MARGIN_GRID / scale
    empirical = 1.0 - np.searchsorted(body, t, side="right") / len(body)
    gauss = 0.5 * _erfc((t - tail["centre"]) / (tail["spread"] * math.sqrt(2.0)))
    return (1 - tail["share"]) * np.maximum(empirical, gauss) + tail["share"] * tail["spike_odds"]


def calibrate(errors: np.ndarray, raw: np.ndarray, groups: np.ndarray, vs_global: np.ndarray,
               vs_user: np.ndarray, qs: list) -> tuple[dict, dict]:
    """Margin per calibration group and quantile, and the share of the group's
    calibration jobs each margin would have let be killed.

    Margins are in units of the group's error scale: the configuration's noise for
    known configurations, 1 (plain log) otherwise. Known configurations and
    notebooks use their own calibration errors (exact re-runs apart from re-runs
    with other parameters) when there are enough. A new user's job, or a known
    user's new notebook, is rare in any calibration window, so their margins come
    from how far jobs lie from the global median and from their user's median:
    plentiful, and honest about how little is known.
    """
    all_groups = (LEVEL_NONE, LEVEL_USER, LEVEL_NOTEBOOK, LEVEL_CONFIG, GROUP_EXACT, GROUP_BEYOND, GROUP_KIN)
    margins = {g: {} for g in all_groups}
    exceed = {g: {} for g in all_groups}
    for q in qs:
        pooled = conformal_margin(errors, q)
        known = raw[groups >= LEVEL_NOTEBOOK]
        # A window of first runs only (a burst of new notebooks) has no run of a known
        # notebook: then every job's miss is the nearest evidence. (conformal_margin of
        # nothing is NaN, and a NaN here made every group's margin NaN through max().)
        pooled_raw = conformal_margin(known if len(known) else raw, q)
        if math.isnan(pooled):
            pooled = pooled_raw = math.log(2.0)  # nothing to calibrate on: double the point estimate
        for g in (LEVEL_CONFIG, GROUP_EXACT, GROUP_BEYOND, GROUP_KIN):
            own = errors[groups == g]
            margins[g][q] = conformal_margin(own, q) if len(own) >= MIN_LEVEL_SAMPLES else pooled
            if len(own) * (1 - q) < TAIL_SAMPLES:
                # Never below the Gaussian quantile of the scale where the calibration
                # runs are too few to show the tail: they cannot show what they did
                # not happen to draw.
                margins[g][q] = max(margins[g][q], GAUSS_Z[q])
        margins[LEVEL_CONFIG][q] = max(margins[LEVEL_CONFIG][q], margins[GROUP_EXACT][q] / math.sqrt(2))
        # Extrapolating is never surer than moving within the known range.
        margins[GROUP_BEYOND][q] = max(margins[GROUP_BEYOND][q], margins[LEVEL_CONFIG][q])
        # Nor is a kin's run a surer guide than the same code's.
        margins[GROUP_KIN][q] = max(margins[GROUP_KIN][q], margins[LEVEL_CONFIG][q])
        own = raw[groups == LEVEL_NOTEBOOK]
        margins[LEVEL_NOTEBOOK][q] = conformal_margin(own, q) if len(own) >= MIN_LEVEL_SAMPLES else pooled_raw
        user = conformal_margin(vs_user[~np.isnan(vs_user)], q)
        margins[LEVEL_NOTEBOOK][q] = max(margins[LEVEL_NOTEBOOK][q], NEW_MARGIN_FLOOR[LEVEL_NOTEBOOK])
        margins[LEVEL_USER][q] = max(margins[LEVEL_NOTEBOOK][q], user if not math.isnan(user) else pooled_raw,
                                     NEW_MARGIN_FLOOR[LEVEL_USER])
        margins[LEVEL_NONE][q] = max(margins[LEVEL_USER][q], conformal_margin(vs_global, q))
        for g in all_groups:
            own = (errors if g >= LEVEL_CONFIG else raw)[groups == g]
            nominal = 1.0 - q if q < 1.0 else 1.0 / (len(errors) + 1)
            exceed[g][q] = max(nominal, float(np.mean(own > margins[g][q]))) if len(own) >= 10 else nominal
    return margins, exceed
