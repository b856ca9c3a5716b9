"""A user's recent peaks, as Kubernetes' VPA recommender reads them: one of the sizer's fallbacks.

The model is scored against every policy the service could run instead (see
:mod:`demand.scoreboard`); this is the one that needs no model and no notebook at all: a
decaying histogram of the user's peak memory (24 h half-life), its 90th percentile plus
15%, an OOM kill counting as a sample a little above the limit it was killed at. It is
tight where a user's jobs are alike, and kills where they are not -- which the
scoreboard measures, per user, before it is trusted with anyone's jobs.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional

import numpy as np

from .policy import MB

HALF_LIFE_S = 24 * 3600.0
QUANTILE = 0.9
MARGIN = 0.15
#: Samples older than this many half-lives weigh under 0.1% and are left out.
HORIZON_HALF_LIVES = 10


def _sample(record: dict) -> Optional[tuple[float, float]]:
    """(when, bytes) one finished job adds, or None: a success its peak, an OOM kill
    VPA's bump over the limit it was killed at."""
    used, alloc = record.get("used") or {}, record.get("allocated") or {}
    when = float(record.get("end_time") or record.get("submit_time") or 0.0)
    try:
        if record.get("reason") == "oom_killed":
            killed_at = float(alloc["memory"])
            value = max(killed_at + 100 * MB, 1.2 * killed_at)
        elif record.get("status") == "succeeded":
            value = float(used["peak_memory"])
        else:
            return None
    except (KeyError, TypeError, ValueError):
        return None
    return (when, value) if math.isfinite(value) and value > 0 and math.isfinite(when) else None


def recent_limit(history: Iterable[dict], now: float) -> Optional[float]:
    """The memory limit (bytes) of the user's decayed 90th-percentile peak plus 15%, or
    None before any job of theirs finished."""
    horizon = now - HORIZON_HALF_LIVES * HALF_LIFE_S
    samples = [s for h in history if (s := _sample(h)) is not None and s[0] >= horizon]
    if not samples:
        return None
    when, value = np.array(samples).T
    weight = 0.5 ** (np.maximum(now - when, 0.0) / HALF_LIFE_S)
    order = np.argsort(value)
    cum = np.cumsum(weight[order])
    pick = min(len(value) - 1, int(np.searchsorted(cum, QUANTILE * cum[-1])))
    return float(value[order][pick]) * (1 + MARGIN)
