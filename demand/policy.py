"""Sizing policy: the rules every limit obeys, whoever predicted it.

One place for them, so that the service and the replay cannot drift apart: the
admin's default bounds, the floor under memory, clamping, "requests win", the hour's
cpu share (load factor), and the least a killed run's retry gets. :class:`demand.sizing.Sizer`
applies them to its predictions; the replay (:mod:`demand.replay.simulate`) applies the same
functions to every policy it compares, so a baseline is held to the service's rules too.
This module imports nothing heavy: the service process may use it without loading the model.
"""

from __future__ import annotations

import math
from typing import Optional

MB = 2**20
GB = 2**30

#: What the runner and a kernel need before a notebook does anything, with a margin:
#: no job is sized below it (measured, and re-measured, by bench/bench_floor.py).
RUNNER_FLOOR = 256 * MB
#: Admin bounds (least, most) used when none are given: the service's defaults.
DEFAULT_BOUNDS = {"cpu": (0.25, 2.0), "memory": (RUNNER_FLOOR, 4 * GB), "timeout": (10.0, 6 * 3600.0)}
#: What a job gets when nothing better is known (before clamping). The timeout is the
#: admin's maximum unless given: a timeout kill wastes the whole run while a long
#: timeout reserves nothing.
DEFAULT_COLD_START = {"cpu": 1.0, "memory": 2 * GB}
#: VPA's OOM rule: the retry gets at least this much more than the killed run used.
OOM_MIN_BUMP = 100 * MB
OOM_BUMP_RATIO = 1.2
#: A timed-out retry gets this many times its previous timeout.
TIMEOUT_BUMP_RATIO = 2.0
#: The least time limit a predicted (not requested) timeout may be: killing a legitimate
#: job wastes its whole run, a late timeout reserves nothing.
TIMEOUT_FLOOR = 600.0

RESOURCES = ("cpu", "memory", "timeout")
#: What a user's memory request is: the job's limit, or advice the scoreboard weighs
#: (see demand.sizing; the service's Sizing.memory_requests).
MEMORY_REQUESTS = ("binding", "advisory")


def normalise_bounds(bounds: Optional[dict]) -> dict:
    """The admin's bounds over :data:`DEFAULT_BOUNDS`, checked (0 < least <= most)."""
    out = dict(DEFAULT_BOUNDS)
    for key, pair in (bounds or {}).items():
        lo, hi = (float(v) for v in pair)
        if not (0 < lo <= hi):
            raise ValueError(f"bounds for {key} must satisfy 0 < min <= max, got {pair}")
        out[key] = (lo, hi)
    return out


def oom_bump(used_bytes: float) -> float:
    """Memory for the retry of a job OOM-killed at ``used_bytes`` (VPA's rule)."""
    return max(used_bytes + OOM_MIN_BUMP, OOM_BUMP_RATIO * used_bytes)


def requests_win(allocated: dict, requested: Optional[dict]) -> dict:
    """``allocated`` with every explicitly requested resource replaced by the request."""
    requested = {k: float(v) for k, v in (requested or {}).items() if k in RESOURCES and v is not None}
    return dict(allocated, **requested)


def share_cpu(allocated: dict, share: Optional[float], requested: Optional[dict], expected_cores: float,
              cpu_seconds: float = 0.0, longest: Optional[float] = None) -> dict:
    """The hour's cpu share (load factor) applied: a busy hour caps the cpu of a job
    that did not ask for it, and one capped below what it would use gets proportionally
    more time (unless it asked for a timeout). Yet no job that did not ask is given less
    cpu than lets ``cpu_seconds`` (its expected work) end within ``longest`` (the admin's
    longest timeout): a throttled run measures the cores it was given, not those it would
    use, so a long job's history says less than it needs -- and a run that cannot end in
    time holds its reservation for the whole timeout and is killed."""
    requested = requested or {}
    out = dict(allocated)
    if share and "cpu" not in requested:
        out["cpu"] = min(out["cpu"], float(share))
    if "cpu" not in requested and cpu_seconds and longest:
        out["cpu"] = max(out["cpu"], float(cpu_seconds) / float(longest))
    if "timeout" not in requested and expected_cores and out["cpu"] < expected_cores:
        out["timeout"] *= expected_cores / out["cpu"]
    return out


def retry_floor(allocated: dict, retry_of: Optional[dict]) -> dict:
    """The least a killed run's retry gets: nothing less than the killed run had, and
    more of what ran out -- memory at least VPA's bump over what it was killed at, time
    at least twice its timeout. (The Sizer may give more; this is what any policy owes.)"""
    if not retry_of:
        return dict(allocated)
    alloc, used = retry_of.get("allocated") or {}, retry_of.get("used") or {}
    out = {k: max(float(v), float(alloc.get(k) or 0.0)) for k, v in allocated.items()}
    if retry_of.get("reason") == "oom_killed":
        killed_at = float(used.get("peak_memory") or alloc.get("memory") or out["memory"])
        out["memory"] = max(out["memory"], oom_bump(max(killed_at, float(alloc.get("memory") or 0.0))))
    elif retry_of.get("reason") == "timeout":
        ran = float(alloc.get("timeout") or used.get("wall_seconds") or out["timeout"])
        out["timeout"] = max(out["timeout"], TIMEOUT_BUMP_RATIO * ran)
    return out


def clamp(allocated: dict, bounds: dict, memory_floor: float = RUNNER_FLOOR) -> dict:
    """Each resource within the admin's bounds -- memory never below ``memory_floor``
    unless the admin's maximum is -- and rounded as a container takes it (memory up to
    whole MiB, cpu to hundredths, timeout up to whole seconds). Values must be finite."""
    out = {}
    for key in RESOURCES:
        lo, hi = bounds[key]
        if key == "memory":
            lo = max(lo, memory_floor)  # below it a job is killed before it starts
        out[key] = min(max(float(allocated[key]), lo), hi)
    out["memory"] = float(math.ceil(out["memory"] / MB) * MB)
    out["cpu"] = round(out["cpu"], 2)
    out["timeout"] = float(math.ceil(out["timeout"]))
    return out
