"""The training set: each succeeded job with the history the sizer saw when it was submitted."""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

from .features import history_summary, succeeded


def end_time(job: dict) -> float:
    """When a finished job ended: recorded, or estimated as submit + wall time."""
    if job.get("end_time") is not None:
        return float(job["end_time"])
    wall = (job.get("used") or {}).get("wall_seconds") or 0.0
    return float(job.get("submit_time") or 0.0) + float(wall)


def examples(jobs: Iterable[dict], cache: Optional[dict] = None) -> list[tuple]:
    """(job, history summary) for every succeeded job, as the sizer saw it at submit.

    A job's history is the same user's jobs that had *ended* before it was submitted
    (at most 200, newest first), exactly what :meth:`demand.sizing.Sizer.size` receives, so
    training features never hold information the sizer lacks. Summaries depend only
    on that past, so ``cache`` (keyed by job identity) carries them across retrains.
    """
    by_user: dict[str, list] = {}
    for j in jobs:
        by_user.setdefault(j.get("user"), []).append(j)
    out = []
    for user_jobs in by_user.values():
        ended = sorted(user_jobs, key=end_time)
        ends = np.array([end_time(j) for j in ended])
        for j in user_jobs:
            if not succeeded(j):
                continue
            key = (j.get("id"), j.get("user"), j.get("submit_time"), str(j.get("params")), j.get("source_bytes"))
            summary = cache.get(key) if cache is not None else None
            if summary is None:
                k = int(np.searchsorted(ends, float(j.get("submit_time") or 0.0), side="right"))
                summary = history_summary(j, ended[max(0, k - 200):k][::-1])
                if cache is not None:
                    cache[key] = summary
            out.append((j, summary))
    out.sort(key=lambda e: float(e[0].get("submit_time") or 0.0))
    return out
