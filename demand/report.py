"""How the sizing did in production: the replay's metrics, read off the real job history.

The trace replay (:mod:`demand.replay.simulate`) says how a policy *would* do; an operator
deciding whether to trust the sizing needs the same numbers for the jobs that actually
ran: how much of the reserved memory and cpu went unused, and how often a limit killed
a job. :func:`realised` computes them from finished jobs (the history records the
service keeps), overall and per sizing basis, with the same definitions as the replay:
slack is reserved resource-time not used at peak by a successful run, and a killed
run's whole reservation is waste. Beside the OOM-kill rate stands the rate the model
predicted for the same jobs (the mean of the kill odds it recorded when its own limit
was the one allocated): whether its margins are as safe as it says.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

KILLS = ("oom_killed", "timeout")


def _totals(jobs: list[dict]) -> dict:
    mem_res = mem_used = cpu_res = cpu_used = 0.0
    ratios, kills, odds, odds_kills = [], {k: 0 for k in KILLS}, [], 0
    for j in jobs:
        p = (j.get("predicted") or {}).get("memory_kill_odds")
        if p is not None:
            odds.append(float(p))
            odds_kills += j.get("reason") == "oom_killed"
        alloc, used = j.get("allocated") or {}, j.get("used") or {}
        wall = float(used.get("wall_seconds") or 0.0)
        memory, cpu = float(alloc.get("memory") or 0.0), float(alloc.get("cpu") or 0.0)
        mem_res += memory * wall
        cpu_res += cpu * wall
        if j.get("status") == "succeeded":
            peak = float(used.get("peak_memory") or 0.0)
            mem_used += min(peak, memory) * wall
            cpu_used += min(float(used.get("cpu_seconds") or 0.0), cpu * wall)
            if peak > 0:
                ratios.append(memory / peak)
        elif j.get("reason") in kills:
            kills[j["reason"]] += 1
    n = len(jobs)
    return {
        "jobs": n,
        "oom_kill_rate": kills["oom_killed"] / n if n else None,
        "timeout_kill_rate": kills["timeout"] / n if n else None,
        "predicted": {"jobs": len(odds), "oom_kill_rate": float(np.mean(odds)),
                      "realised_oom_kill_rate": odds_kills / len(odds)} if odds else None,
        "memory_slack": 1 - mem_used / mem_res if mem_res else None,
        "cpu_slack": 1 - cpu_used / cpu_res if cpu_res else None,
        "median_limit_over_peak": float(np.median(ratios)) if ratios else None,
    }


def realised(history: Iterable[dict]) -> dict:
    """Slack and kill rates of finished jobs with a known usage, overall and per basis.

    Jobs that failed for their own reasons (a cell error, a cancel) count in neither
    the kills nor the slack: the sizing did not cause them and their usage is partial.
    """
    measured = [j for j in history
                if (j.get("used") or {}).get("wall_seconds") and (j.get("allocated") or {}).get("memory")
                and (j.get("status") == "succeeded" or j.get("reason") in KILLS)]
    by_basis: dict = {}
    for j in measured:
        by_basis.setdefault((j.get("allocated") or {}).get("basis") or "unknown", []).append(j)
    return dict(_totals(measured), by_basis={b: _totals(js) for b, js in sorted(by_basis.items())})
