"""Hour-of-week load forecast: how many jobs, and how many cpu-seconds, each hour.

The dispatcher needs the expected load of the coming hours to decide how much cpu a
job may take and how many may run at once. Notebook load is people-shaped: a daily
curve, quiet weekends, scheduled runs at fixed hours. The obvious forecast, "same hour
last week" (seasonal naive), copies last week's noise: one busy Tuesday becomes next
Tuesday's prediction. This forecast pools instead:

* the **shape** of a day (share of the day's load per hour) is estimated separately
  for weekdays and weekends, from every such day seen, recent days weighted more;
* the **level** of each day type is the mean of the last 7 days (users come and go);
* each **weekday's** deviation from its day type (Mondays busier than Fridays) is kept
  only as far as the number of weeks seen supports it (shrunk toward 1).

``python -m demand.forecast --trace trace.csv`` scores it against seasonal naive by
MASE with rolling origins: each week after the second is forecast by both from the
weeks before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

HOURS_PER_WEEK = 168
#: Monday 1970-01-05 00:00 UTC: hour-of-week 0 is Monday 00:00 UTC.
_MONDAY = 4 * 86400


def hour_of_week(t: float) -> int:
    """0..167, Monday 00:00 UTC = 0."""
    return int(((t - _MONDAY) // 3600) % HOURS_PER_WEEK)


def hourly(times, values, start: float, n_hours: int) -> np.ndarray:
    """Sum of ``values`` per hour bucket, for ``n_hours`` hours from ``start``."""
    idx = ((np.asarray(times, float) - start) // 3600).astype(int)
    ok = (idx >= 0) & (idx < n_hours)
    return np.bincount(idx[ok], weights=np.asarray(values, float)[ok], minlength=n_hours)


def _is_weekend(day_of_week: np.ndarray) -> np.ndarray:
    return day_of_week >= 5


@dataclass
class HourOfWeekForecast:
    """One series' profile over the 168 hours of the week, with its level."""

    profile: np.ndarray = field(default_factory=lambda: np.zeros(HOURS_PER_WEEK))
    #: Half-life in days of the weight of past days in the daily shape.
    half_life_days: float = 14.0
    #: Pseudo-weeks of shrinkage of per-weekday factors toward their day type.
    weekday_prior_weeks: float = 2.0

    def fit(self, series: np.ndarray, start: float) -> "HourOfWeekForecast":
        """Fit on an hourly series that begins at ``start`` (any hour)."""
        series = np.asarray(series, float)
        # Whole days from midnight (UTC, as hour_of_week counts): a row's column h is then
        # the day's hour h. (The hours before the first midnight and after the last are left
        # out; a series that starts at any other hour would shift every hour of the profile.)
        lead = -int((start - _MONDAY) // 3600) % 24
        n_days = max(0, len(series) - lead) // 24
        if n_days == 0:
            self.profile = np.full(HOURS_PER_WEEK, float(series.mean()) if len(series) else 0.0)
            return self
        days = series[lead:lead + n_days * 24].reshape(n_days, 24)
        first_day_start = start + lead * 3600
        dow = ((np.arange(n_days) * 86400 + first_day_start - _MONDAY) // 86400 % 7).astype(int)
        age = n_days - 1 - np.arange(n_days)
        weight = 0.5 ** (age / self.half_life_days)
        totals = days.sum(axis=1)
        recent = age < 7
        profile = np.zeros((7, 24))
        for weekend in (False, True):
            of_type = _is_weekend(dow) == weekend
            if not of_type.any():
                of_type = np.ones(n_days, bool)  # no such day seen yet: borrow the other type
            shape = (weight[of_type, None] * days[of_type]).sum(0)
            shape = shape / shape.sum() if shape.sum() > 0 else np.full(24, 1 / 24)
            use = of_type & recent if (of_type & recent).any() else of_type
            level = totals[use].mean()
            for d in (range(5, 7) if weekend else range(5)):
                mine = of_type & (dow == d)
                ratio = totals[mine].mean() / level if mine.any() and level > 0 else 1.0
                k = mine.sum()
                factor = (k * ratio + self.weekday_prior_weeks) / (k + self.weekday_prior_weeks)
                profile[d] = level * factor * shape
        self.profile = profile.reshape(HOURS_PER_WEEK)
        return self

    def predict(self, t0: float, n_hours: int) -> np.ndarray:
        """Expected value per hour for ``n_hours`` hours from ``t0``."""
        h0 = hour_of_week(t0)
        return self.profile[(h0 + np.arange(n_hours)) % HOURS_PER_WEEK]


def seasonal_naive(history: np.ndarray, n_hours: int) -> np.ndarray:
    """Same hour last week, repeated: the benchmark every forecast must beat."""
    last_week = np.asarray(history, float)[-HOURS_PER_WEEK:]
    return np.resize(last_week, n_hours)


def mase(actual: np.ndarray, predicted: np.ndarray, scale: float) -> float:
    """Mean absolute error relative to the in-sample seasonal-naive MAE ``scale``."""
    return float(np.mean(np.abs(np.asarray(actual) - np.asarray(predicted))) / scale) if scale > 0 else float("nan")


def evaluate(times, cpu_seconds, start: float | None = None) -> dict:
    """Rolling-origin MASE of this forecast and of seasonal naive, per series.

    Each week from the third on is forecast from all whole weeks before it. MASE
    divides by the in-sample seasonal-naive MAE (lag 168 h) of those past weeks, the
    standard scale, which needs two weeks of past; the scores of all origins are averaged.
    """
    times = np.asarray(times, float)
    if start is None:
        start = times.min() - (times.min() - _MONDAY) % 86400
    week = HOURS_PER_WEEK * 3600
    n_weeks = int((times.max() - start + 86400) // week)  # a last day still under way counts
    if n_weeks < 3:
        raise ValueError("need at least three weeks of history to score a weekly forecast")
    n = n_weeks * HOURS_PER_WEEK
    out = {}
    for name, values in (("jobs", np.ones_like(times)), ("cpu_seconds", cpu_seconds)):
        series = hourly(times, values, start, n)
        ours, naive = [], []
        for w in range(2, n_weeks):
            past = series[:w * HOURS_PER_WEEK]
            actual = series[w * HOURS_PER_WEEK:(w + 1) * HOURS_PER_WEEK]
            scale = float(np.mean(np.abs(past[HOURS_PER_WEEK:] - past[:-HOURS_PER_WEEK])))
            ours.append(mase(actual, HourOfWeekForecast().fit(past, start).predict(start + w * week, HOURS_PER_WEEK), scale))
            naive.append(mase(actual, seasonal_naive(past, HOURS_PER_WEEK), scale))
        out[name] = {"mase": float(np.mean(ours)), "seasonal_naive_mase": float(np.mean(naive)),
                     "origins": n_weeks - 2}
    return out
