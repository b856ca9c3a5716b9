"""What a fitted version and a sizing must satisfy before they are used: finite numbers.

A NaN does not announce itself: ``max(nan, x)`` is NaN, every comparison with it is
false, and one NaN margin made every later sizing NaN. So a fit is checked as a whole
before it serves (:func:`nonfinite`), and each sizing checks its own output
(:func:`unusable`).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

#: Beyond these a predicted need is not a job but a broken model (1 TB, 1024 cores). Not
#: the timeout: a runtime extrapolated far beyond the admin's longest timeout is common
#: and harmless (clamped), and rules would give that longest timeout anyway.
SANE_LIMITS = {"memory": 2.0**40, "cpu": 1024.0}


def _walk(value, path: str, out: list) -> None:
    if isinstance(value, (bool, str)) or value is None:
        return
    if isinstance(value, (int, float, np.floating, np.integer)):
        if not math.isfinite(float(value)):
            out.append(f"{path} = {float(value)}")
    elif isinstance(value, np.ndarray):
        if value.dtype.kind in "fc" and not np.all(np.isfinite(value)):
            out.append(f"{path} has {int(np.sum(~np.isfinite(value)))} non-finite of {value.size}")
    elif isinstance(value, dict):
        for k, v in value.items():
            _walk(v, f"{path}[{k}]", out)
    elif isinstance(value, (list, tuple)):
        for k, v in enumerate(value):
            _walk(v, f"{path}[{k}]", out)


def nonfinite(bundle) -> list[str]:
    """Every non-finite parameter, margin or calibration value of a trained bundle
    (empty when it may serve), as ``"memory margins[1][0.99] = nan"`` lines."""
    out: list[str] = []
    _walk({"mean_runtime_s": bundle.mean_runtime_s,
           "jobs_forecast": bundle.jobs_forecast.profile, "cpu_forecast": bundle.cpu_forecast.profile},
          "bundle", out)
    model = bundle.model
    if model is None:
        return out
    for name in ("fallback", "noise", "slopes", "margins", "exceedance", "kinds", "tails", "peers"):
        _walk(getattr(model, name, {}), name, out)
    _walk(model.kill_price, "kill_price", out)
    return out


def unusable(values: dict, positive: tuple = ("memory", "cpu", "timeout")) -> Optional[str]:
    """Why a sizing's numbers cannot be served (non-finite, not positive, or beyond
    :data:`SANE_LIMITS`), or None when they can."""
    bad = []
    for key, v in values.items():
        v = float(v)
        if not math.isfinite(v):
            bad.append(f"non-finite {key}")
        elif key in positive and v <= 0:
            bad.append(f"non-positive {key}")
        elif key in SANE_LIMITS and v > SANE_LIMITS[key]:
            bad.append(f"absurd {key}")
    return ", ".join(bad) or None
