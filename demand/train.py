"""Training: from the job history to a :class:`Bundle` the sizer serves from.

A bundle is everything fitted at once -- the per-job model (or None while the history
is too thin for one, in which case the sizer keeps its rules), the two hour-of-week
forecasts, and the averages the load factor needs -- so that one version number names
one consistent state. Training must never fail on the data it is given: an empty
history, a single user, missing usage fields and absurd outliers all give a bundle.

``python -m demand.train --history history.jsonl --model-dir DIR`` trains offline from
a JSON-lines export (one finished job per line, the shape :meth:`demand.sizing.Sizer.size`
takes as history) and saves a new version.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .features import succeeded, target_value
from .forecast import HourOfWeekForecast, hourly
from .dataset import examples
from .kinds import kinds
from .model import DemandModel
from .variants import inert, mask
from .scoreboard import ALL_WINDOW, credibility, newest_first, notebook_boards, tally

#: Upper quantile per target: memory and runtime limits kill, a cpu limit only throttles.
#: (Memory: used until the calibration window is large enough to choose margins per job
#: by cost, see :mod:`demand.model`.)
DEFAULT_QUANTILES = {"memory": 0.995, "runtime": 0.998, "cores": 0.9}
#: Below this many succeeded jobs the sizer keeps its history rules.
MIN_JOBS = 50
#: Usage beyond these is a measurement error, not a job (1 TB, 30 days, 1024 cores).
_SANE = {"memory": math.log(2**20), "runtime": math.log(30 * 86400), "cores": math.log(1024)}


@dataclass
class Bundle:
    """One trained version: model, load forecasts and the averages behind them."""

    model: Optional[DemandModel]
    jobs_forecast: HourOfWeekForecast
    cpu_forecast: HourOfWeekForecast
    mean_runtime_s: float
    n_jobs: int
    trained_at: float
    metrics: dict = field(default_factory=dict)
    #: Per imported module, how large its jobs get (see demand.kinds): the rules' prior
    #: for a notebook new to its user, known before any per-job model is.
    kinds: dict = field(default_factory=dict)
    #: Every policy's score over all users' newest finished jobs (demand.scoreboard.tally):
    #: the board a user with too few scored jobs of their own is sized by.
    scoreboard: dict = field(default_factory=dict)
    #: The same per notebook (demand.scoreboard.notebook_key), where enough of its runs scored.
    notebook_boards: dict = field(default_factory=dict)
    #: Per policy, how many pseudo-jobs of everyone's kill odds a notebook's or a user's own
    #: are weighed against (demand.scoreboard.credibility of the notebook boards).
    credibility: dict = field(default_factory=dict)
    #: Per notebook, its text parameters' values that change nothing (demand.variants.inert):
    #: masked in every job and history before sizing, as they were before training.
    inert: dict = field(default_factory=dict)

    def forecast_profile(self) -> dict:
        """Expected jobs and cpu-seconds per hour of week (Monday 00:00 UTC = 0)."""
        return {"jobs": [round(float(v), 3) for v in self.jobs_forecast.profile],
                "cpu_seconds": [round(float(v), 1) for v in self.cpu_forecast.profile]}


def _sane(job: dict) -> bool:
    """Usage is known and physically plausible for every target."""
    for target, limit in _SANE.items():
        y = target_value(job.get("used"), target)
        if y is None or y > limit:
            return False
    return True


def fit_forecasts(jobs: list[dict], now: float) -> tuple[HourOfWeekForecast, HourOfWeekForecast]:
    """Hour-of-week forecasts of submissions and cpu-seconds, from history up to ``now``."""
    times = np.array([float(j.get("submit_time") or 0.0) for j in jobs])
    if len(times) == 0:
        return HourOfWeekForecast(), HourOfWeekForecast()
    cpu = np.array([float((j.get("used") or {}).get("cpu_seconds") or 0.0) for j in jobs])
    start = times.min() - times.min() % 3600
    n_hours = max(1, int((now - start) // 3600))
    return (HourOfWeekForecast().fit(hourly(times, np.ones_like(times), start, n_hours), start),
            HourOfWeekForecast().fit(hourly(times, cpu, start, n_hours), start))


def train(jobs: list[dict], quantiles: Optional[dict] = None, now: Optional[float] = None,
          cache: Optional[dict] = None, min_jobs: int = MIN_JOBS, max_runtime: Optional[float] = None) -> Bundle:
    """Fit a bundle on finished jobs of all users (any order, any status); ``max_runtime``
    is the admin's longest timeout in seconds (no reservation lasts longer)."""
    now = time.time() if now is None else now
    quantiles = dict(DEFAULT_QUANTILES, **(quantiles or {}))
    # Jobs with broken usage stay in the history (their kills and counts still say
    # something) but are not learned from.
    learnable = [j for j in jobs if not succeeded(j) or _sane(j)]
    alike = inert(j for j in learnable if succeeded(j))
    train_set = examples([mask(j, alike) for j in learnable], cache)
    model = (DemandModel.fit(train_set, quantiles, max_runtime=max_runtime)
             if len(train_set) >= min_jobs else None)
    ok = [j for j in learnable if succeeded(j)]
    runtimes = [math.exp(y) for j in ok if (y := target_value(j.get("used"), "runtime")) is not None]
    jobs_fc, cpu_fc = fit_forecasts(jobs, now)
    boards = notebook_boards(jobs)
    return Bundle(
        model=model, jobs_forecast=jobs_fc, cpu_forecast=cpu_fc,
        mean_runtime_s=float(np.mean(runtimes)) if runtimes else 600.0,
        n_jobs=len(jobs), trained_at=now, kinds=kinds(train_set),
        scoreboard=tally(newest_first(jobs), ALL_WINDOW), notebook_boards=boards,
        credibility=credibility(boards.values()), inert=alike,
        metrics=dict(model.metrics if model else {}, n_succeeded=len(train_set),
                     per_job_model=model is not None),
    )


def read_jsonl(path) -> list[dict]:
    """Finished jobs from a JSON-lines file; blank lines are skipped."""
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
