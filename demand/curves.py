"""A configuration's own evidence: its runs' curve, repeats, growth, and how far a job reaches.

A user re-running a notebook is the strongest signal there is; these functions read it
from the history summary (:func:`demand.features.history_summary`) of one target:
which earlier runs are exact repeats of this job (in the parameters that move the
target), the curve through the configuration's runs, whether usage grows by the day,
how far the job goes beyond every earlier run, and which calibration group that makes it.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .features import LEVEL_CONFIG, no_larger

#: Exact repeats of a configuration whose median is its base (newest first).
EXACT_REPEATS = 5
#: A parameter whose fitted slope (d log target / d log parameter) is below this does
#: not move the target: runs that differ only in it count as the same point.
RELEVANT_SLOPE = 0.05
#: Repeats a configuration's growth trend is fitted on, and the steepest trend trusted (log/day).
TREND_REPEATS = 12
MAX_TREND_PER_DAY = 0.05
#: A job whose notebook was OOM-killed at X (and never succeeded in its configuration)
#: gets at least this many times X, as the killed run's retry does (a run sized without
#: its configuration's history jumps demand.sizing.RETRY_MAX_FACTOR after a kill).
CENSORED_FACTOR = 4.0
#: Prior spread of a configuration's own slope (d log target / d log parameter): with
#: run-to-run noise sigma, runs whose parameter values span a log variance below
#: (sigma / SLOPE_PRIOR_SD)^2 say less about the slope than the prior does.
SLOPE_PRIOR_SD = 0.5
#: Points of a configuration's curve (the largest parameter values) whose trend is
#: extended beyond them.
TOP_POINTS = 4
#: Calibration group of a re-run with exactly the parameters of an earlier run.
GROUP_EXACT = 4
#: Calibration group of a known configuration run with more of some parameter than any
#: earlier run: extrapolated, it misses by factors where one within the range misses by
#: noise, so sharing one margin made the first killed and the second wasteful.
GROUP_BEYOND = 5
#: Calibration group of a job whose nearest runs are of its notebook's kin (an edited or
#: shared copy, see demand.features.kinship), not of the same code: how far such a
#: guess misses is its own, measured apart so that it widens no other group's margin.
GROUP_KIN = 6


def along_curve(own: dict, groups: dict, slopes: dict, prior: dict,
                 relevant: Optional[set] = None, noise: float = 0.0, linear: bool = True) -> Optional[float]:
    """Log target at ``own`` parameters along the curve through this configuration's runs.

    Usage is rarely log-linear in a parameter (memory is a base plus a term that grows
    with the data), so one slope over the whole range misplaces the middle and the ends.
    When the job differs from earlier runs in one parameter only, the mean of each
    parameter value's recent runs is a point of the curve: between two such points the
    log target is interpolated; above them it is extrapolated with the steeper of the
    end segment's slope, the fitted one and the pooled one, and (if ``linear``) linearly
    in the parameter; below them it stays at the smallest run's level (the cautious
    sides: undersizing kills).
    Parameters outside ``relevant`` (the target barely moves with them: epochs for
    memory, say) need not match, so runs that differ only in them add points. The top
    end's trend is trusted as far as its points' spread outweighs the run-to-run
    ``noise`` (log): two runs at 1,000 and 1,010 rows a few percent apart set none.
    """
    relevant = set(own) if relevant is None else set(relevant)
    for key in sorted(own, key=lambda k: k not in relevant):
        rest = {k: v for k, v in own.items() if k != key and k in relevant}
        found: dict = {}
        for params, vals in groups.items():
            d = dict(params)
            if key in d and set(d) == set(own) and all(d[k] == v for k, v in rest.items()):
                found.setdefault(d[key], []).extend(vals[:EXACT_REPEATS])
        if not found:
            continue
        pts = {x: float(np.median(v)) for x, v in found.items()}
        xs = np.array(sorted(pts))
        ys = np.array([pts[x] for x in xs])
        x, slope = own[key], slopes.get(key, 0.0)
        if xs[0] <= x <= xs[-1]:
            return float(np.interp(x, xs, ys))
        if x < xs[0]:
            # Below every known run: no lower. Usage often flattens to a base there
            # (a notebook needs its libraries whatever the data), and undersizing kills.
            return float(ys[0])
        # The top end's trend, fitted over its last few points: the last segment alone
        # can be two runs a few percent apart, whose noise a long reach multiplies.
        top_x, top_y = xs[-TOP_POINTS:], ys[-TOP_POINTS:]
        trust = _trust(top_x, noise)
        if len(xs) >= 2:
            slope = max(slope, trust * _ls_slope(top_x, top_y))
        slope = float(np.clip(max(slope, prior.get(key, 0.0)), 0.0, 2.0))
        guess = float(ys[-1] + slope * (x - xs[-1]))
        if linear and len(xs) >= 2:
            # Beyond the largest run, also extend the top end linearly in the parameter
            # itself (a base plus a part proportional to the data): for any sub-linear
            # growth this errs high, as extrapolating should.
            r, m = np.expm1(top_x), np.exp(top_y)
            proportional = float(np.exp(ys[-1]) + trust * max(0.0, _ls_slope(r, m)) * (math.expm1(x) - r[-1]))
            guess = max(guess, math.log(max(proportional, 1e-9)))
        return guess
    return None


def _trust(x: np.ndarray, noise: float) -> float:
    """How far a least-squares slope over parameter values ``x`` (log) is to be trusted
    with run-to-run ``noise``: the data's share of a Gaussian posterior mean whose prior
    (spread SLOPE_PRIOR_SD) is no slope of its own."""
    sxx = float(np.sum((x - x.mean()) ** 2))
    return sxx / (sxx + (noise / SLOPE_PRIOR_SD) ** 2) if sxx > 0 else 0.0


def _ls_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of ``y`` on ``x``."""
    xc = x - x.mean()
    return float(xc @ (y - y.mean()) / max(float(xc @ xc), 1e-12))


def growth(values: list, ages: list) -> float:
    """How far the recent repeats' median lags today, on a configuration whose usage
    grows (data that grows by the day): the Theil-Sen slope of the last repeats over
    their age, times the median age. Never negative: a shrinking trend is not trusted
    to size lower."""
    v, a = np.array(values[:TREND_REPEATS]), np.array(ages[:TREND_REPEATS])
    if len(v) < 4 or np.ptp(a) < 2.0:
        return 0.0
    i, j = np.triu_indices(len(v), 1)
    keep = np.abs(a[i] - a[j]) > 0.5
    if keep.sum() < 3:
        return 0.0
    slope = float(np.median((v[i] - v[j])[keep] / (a[j] - a[i])[keep]))  # per day, newer minus older
    return float(np.clip(slope, 0.0, MAX_TREND_PER_DAY)) * float(np.median(a[:EXACT_REPEATS]))


def dominated(own: dict, groups: dict, relevant: Optional[set] = None) -> float:
    """Largest recent level among runs whose every (relevant) numeric parameter was at
    most this job's (see :func:`demand.features.no_larger`): such a run is a floor."""
    keys = None if relevant is None else set(relevant) & set(own)
    levels = [float(np.median(vals[:EXACT_REPEATS])) for params, vals in groups.items()
              if no_larger(dict(params), own, keys)]
    return max(levels, default=-math.inf)


def point_key(params: dict, irrelevant: set) -> tuple:
    """Identifies a run's parameters up to those that do not move the target."""
    return tuple(sorted((k, None if k in irrelevant else v) for k, v in params.items()))


def irrelevant_params(summary: dict, slopes: dict) -> set:
    """The job's numeric parameters that the pooled ``slopes`` show do not move the target
    (a parameter they do not know is assumed to)."""
    return {k for k in summary["params"] if abs(slopes.get(k, 1.0)) < RELEVANT_SLOPE}


def exact_repeats(summary: dict, slopes: dict) -> tuple[list, list]:
    """(values, ages), newest first, of the earlier runs with this job's parameters in
    all that move the target: a run with 10 epochs re-runs one with 1 as far as memory goes."""
    if summary["level"] != LEVEL_CONFIG:
        return [], []
    irrelevant = irrelevant_params(summary, slopes)
    own = point_key(summary["params"], irrelevant)
    found = [(v, a) for p, v, a in summary["points"] if point_key(p, irrelevant) == own]
    return [v for v, _ in found], [a for _, a in found]


def reach(summary: dict, slopes: dict) -> float:
    """How far (log) the job goes beyond every earlier run in the parameters that move
    the target: 0 within the known range."""
    irrelevant = irrelevant_params(summary, slopes)
    out = 0.0
    for key, value in summary["params"].items():
        seen = [p[key] for p, _, _ in summary["points"] if key in p]
        if key not in irrelevant and seen and value > max(seen) + 1e-9:
            out += value - max(seen)
    return out


def calibration_group(summary: dict, slopes: dict) -> int:
    """Calibration group of one target's summary: its anchor level, exact re-runs and
    extrapolations and kin's runs apart."""
    if summary["level"] == LEVEL_CONFIG and summary.get("kin", 1.0) < 1.0:
        return GROUP_KIN
    if exact_repeats(summary, slopes)[0]:
        return GROUP_EXACT
    if summary["level"] == LEVEL_CONFIG and reach(summary, slopes) > 0:
        return GROUP_BEYOND
    return int(summary["level"])


def killed_floor(summary: dict) -> float:
    """Log memory a job gets at least because its notebook was OOM-killed and no run of
    its configuration has succeeded: CENSORED_FACTOR times the largest limit it was
    killed at, as that run's retry gets (-inf when nothing was killed)."""
    if summary["level"] >= LEVEL_CONFIG or np.isnan(summary["censored"]):
        return -math.inf
    return float(summary["censored"]) + math.log(CENSORED_FACTOR)
