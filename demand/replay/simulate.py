"""Replay a trace through a cluster under each sizing policy, without look-ahead.

The claim "our sizing wastes less without killing more" is only as good as the replay
behind it, so the rules are strict and the same for every policy:

* A policy sizes a job when it is **submitted**, from the job's features and the
  records of attempts that had **ended** by then; the truth of a job exists only
  inside the simulator until its attempt ends (see :mod:`demand.replay.policies`).
* The cluster has a cpu and a memory capacity; queued jobs start in submit order as
  soon as their reservation fits (a smaller job may pass a larger one that does not).
* An attempt given less cpu than it would use is throttled and runs longer. Memory
  is assumed to grow linearly to its peak: an attempt whose peak exceeds its limit is
  OOM-killed when the ramp reaches the limit; one that outlives its timeout is killed
  then. A killed job is re-sized by its policy (never below what the killed attempt
  had, nor below VPA's OOM bump or twice the timeout for what ran out:
  :func:`demand.policy.retry_floor`) and queued again in its original place; up to
  five attempts, unless it already had the most of what ran out there is to give
  (memory at the admin's or the cluster's maximum; time and cpu both at theirs): that
  run would be killed again at the same point, and its user, told it was killed at the
  most there is, does not ask for it. Every policy's limits go through the service's
  clamp (:func:`demand.policy.clamp`: the bounds, and memory never below the runner's floor).
* With ``per_user``, a user runs at most that many jobs at once, as the service's
  dispatcher allows (its default is 2); the rest wait queued. When an attempt is
  OOM-killed, a policy that can (``resize_siblings``, as the service's sizer does) sizes
  the still-queued jobs of the same user and notebook again from the kill: a burst
  sized before any of its runs ended does not hit the same wall one job at a time.
* A user's runs of one notebook, each submitted within SWEEP_GAP of the one before, stand
  for a sweep (the trace has no sweep id). As the service does, when a sweep's 1st, 2nd,
  4th, 8th… run succeeds, a policy that can (``resize_queued``) sizes its still-queued
  first attempts again on the records as they are then.
* Slack counts every reserved byte-second (core-second) not used at peak by a
  successful attempt: what a killed attempt reserved is all waste.

Metrics per policy: memory and cpu slack, OOM- and timeout-kill rates (kills per job),
the kills and memory slack split by what made each job hard to size (``by_cause``, see
:mod:`demand.replay.causes`), mean and p95 queue wait, cpu and memory utilisation, mean
bounded slowdown (``max(1, time in system / max(runtime, 10 s))``). The load forecast's MASE against
seasonal naive is reported alongside.
"""

from __future__ import annotations

import bisect
import heapq
import time
from typing import Optional

import numpy as np

from ..features import signature
from ..forecast import evaluate as evaluate_forecast
from ..policy import MB, clamp, retry_floor
from .causes import CAUSES, Evidence
from .policies import POLICIES, REPLAY_BOUNDS, Known, NoiseAware, Oracle
from .trace import HIDDEN, SPIKE_PROBABILITY, SPIKE_RANGE

MAX_ATTEMPTS = 5
#: Seconds between two submissions of one user's notebook that make them runs of one sweep.
SWEEP_GAP = 120.0
_END, _RETRAIN, _SUBMIT = 0, 1, 2  # at equal times, ends are seen before decisions


def _request(i: int, row: dict) -> dict:
    """What the service knows about trace job ``i`` at submit: no truth columns."""
    return {"id": i, "user": row["user"], "submit_time": row["submit_time"],
            "code_cells": row["code_cells"], "source_bytes": row["source_bytes"],
            "imports": list(row["imports"]), "params": dict(row["params"]),
            "requested": {"cpu": row["requested_cpu"], "memory": row["requested_mem_mb"] * MB}}


def known(row: dict) -> Known:
    """What the noise-aware bound is told of a trace row: the generator's hidden
    knowledge, the run's true cores and length, and which user's notebook it is."""
    hidden = row[HIDDEN]
    return Known(expected=hidden["mem_mb"] * MB, sigma=hidden["mem_sigma"],
                 cores=row["cpu_seconds"] / max(row["runtime_s"], 1e-9), runtime=row["runtime_s"],
                 kind=hidden["kind"], notebook=(row["user"], signature(row)),
                 spike_probability=hidden.get("spike_probability", SPIKE_PROBABILITY),
                 spike_range=tuple(hidden.get("spike_range", SPIKE_RANGE)))


def make_policy(name: str, rows: list, bounds: dict, capacity: dict, **kw):
    """Instantiate a policy by name; only the oracle is given the truth."""
    if name == "oracle":
        truth = {i: {"memory": r["peak_mem_mb"] * MB, "cpu": r["cpu_seconds"] / max(r["runtime_s"], 1e-9)}
                 for i, r in enumerate(rows)}
        return Oracle(truth, bounds=bounds)
    if name.startswith("noise-aware"):  # noise-aware[-blind] (cost-aware, 0.9% kills) or noise-aware@0.999
        if any(HIDDEN not in r for r in rows):
            raise ValueError("the noise-aware bound needs a trace generated in this run (demand.replay.trace.generate)")
        knowledge = {i: known(r) for i, r in enumerate(rows)}
        variant, _, q = name.partition("@")
        return NoiseAware(knowledge, q=float(q) if q else None, blind_first=variant.endswith("-blind"),
                          bounds=bounds, spike_range=SPIKE_RANGE)
    if name in ("model", "rules"):
        return POLICIES[name](bounds=bounds, capacity=capacity, **kw)
    return POLICIES[name](bounds=bounds)


def simulate(rows: list, policy, capacity: dict, bounds: Optional[dict] = None,
             retrain_hours: float = 6.0, per_user: Optional[int] = None) -> dict:
    """Replay ``rows`` (trace dicts in submit order) under ``policy``; returns metrics.
    ``per_user``: jobs one user may run at once (None: no limit)."""
    bounds = dict(REPLAY_BOUNDS, **(bounds or {}))
    cap_cpu, cap_mem = float(capacity["cpu"]), float(capacity["memory"])
    n = len(rows)
    events, seq = [], 0

    def push(t, kind, payload):
        nonlocal seq
        heapq.heappush(events, (t, kind, seq, payload))
        seq += 1

    for i, r in enumerate(rows):
        push(float(r["submit_time"]), _SUBMIT, i)
    if n:
        t0 = float(rows[0]["submit_time"])
        for k in range(1, int((float(rows[-1]["submit_time"]) - t0) // (retrain_hours * 3600)) + 1):
            push(t0 + k * retrain_hours * 3600, _RETRAIN, None)

    requests = [_request(i, r) for i, r in enumerate(rows)]
    sweep = _sweeps(requests)
    sweep_succeeded: dict = {}
    queue: list[tuple[int, dict, float]] = []  # (job index, allocation, enqueued at), by index
    free = {"cpu": cap_cpu, "memory": cap_mem}
    running: dict = {}  # user -> attempts running
    raised: set = set()  # jobs re-sized after a sibling's kill
    attempts = np.zeros(n, int)
    waited = np.zeros(n)
    done_at = np.full(n, np.nan)
    kills = {"oom_killed": 0, "timeout": 0}
    counts = {"nonfinite": 0, "resized": 0, "resized_in_sweep": 0}
    acc = {"mem_reserved": 0.0, "mem_used": 0.0, "cpu_reserved": 0.0, "cpu_used": 0.0}
    decide_s = 0.0
    evidence = Evidence()
    cause = [""] * n  # of each job's current attempt
    by_cause = {c: {"jobs": 0, "kills": 0, "mem_reserved": 0.0, "mem_used": 0.0} for c in CAUSES}

    def admit(alloc: dict) -> dict:
        """The service's rules (demand.policy.clamp), then the cluster's size: a job larger
        than the cluster could never start."""
        out = clamp(alloc, bounds)
        return dict(out, cpu=min(out["cpu"], cap_cpu), memory=min(out["memory"], cap_mem))

    most = admit({k: bounds[k][1] for k in ("cpu", "memory", "timeout")})

    def retriable(reason: str, alloc: dict) -> bool:
        """Whether a retry could get more of what ran out than the killed attempt had."""
        if reason == "oom_killed":
            return alloc["memory"] < most["memory"]
        return alloc["timeout"] < most["timeout"] or alloc["cpu"] < most["cpu"]

    def decide(i, now, retry_of=None):
        nonlocal decide_s
        start = time.perf_counter()
        alloc = policy.size(requests[i], now, retry_of)
        decide_s += time.perf_counter() - start
        if retry_of:
            cause[i] = "retry"
        else:
            cause[i] = getattr(policy, "phase", lambda: None)() or evidence.cause(requests[i])
            by_cause[cause[i]]["jobs"] += 1
        if not all(np.isfinite(float(alloc[k])) for k in ("cpu", "memory", "timeout")):
            counts["nonfinite"] += 1
            alloc = {k: v if np.isfinite(float(v)) else bounds[k][1] for k, v in alloc.items()}
        # What any policy owes a killed run's retry, as the service's sizer applies it.
        alloc = retry_floor({k: alloc[k] for k in ("cpu", "memory", "timeout")}, retry_of)
        bisect.insort(queue, (i, admit(alloc), now), key=lambda e: e[0])

    def start_attempt(i, alloc, now):
        r = rows[i]
        peak, runtime = r["peak_mem_mb"] * MB, max(r["runtime_s"], 1e-3)
        cores = r["cpu_seconds"] / runtime
        duration = runtime * max(1.0, cores / alloc["cpu"])
        reason, elapsed = None, duration
        if peak > alloc["memory"]:
            reason, elapsed = "oom_killed", duration * alloc["memory"] / peak
        if alloc["timeout"] < elapsed:
            reason, elapsed = "timeout", alloc["timeout"]
        frac = elapsed / duration
        used = {"peak_memory": peak * frac if reason else peak,
                "cpu_seconds": r["cpu_seconds"] * frac, "wall_seconds": elapsed}
        free["cpu"] -= alloc["cpu"]
        free["memory"] -= alloc["memory"]
        running[r["user"]] = running.get(r["user"], 0) + 1
        attempts[i] += 1
        acc["mem_reserved"] += alloc["memory"] * elapsed
        acc["cpu_reserved"] += alloc["cpu"] * elapsed
        by_cause[cause[i]]["mem_reserved"] += alloc["memory"] * elapsed
        if reason is None:
            acc["mem_used"] += peak * elapsed
            by_cause[cause[i]]["mem_used"] += peak * elapsed
            acc["cpu_used"] += r["cpu_seconds"]
        push(now + elapsed, _END, (i, alloc, reason, used))

    def resize(record, now):
        """Size the still-queued first attempts of the killed job's user and notebook again."""
        nonlocal decide_s
        again = getattr(policy, "resize_siblings", None)
        if again is None:
            return
        notebook = (record["user"], signature(record))
        # A sibling already raised after an earlier kill was sized past the guess this kill
        # proved short -- unless the killed run had been raised too.
        fresh = record["id"] in raised
        waiting = [(pos, k, alloc) for pos, (k, alloc, _) in enumerate(queue)
                   if attempts[k] == 0 and (requests[k]["user"], signature(requests[k])) == notebook
                   and (fresh or k not in raised)]
        if not waiting:
            return
        start = time.perf_counter()
        sized = again(record, [(requests[k], alloc) for _, k, alloc in waiting], now)
        decide_s += time.perf_counter() - start
        counts["resized"] += len(waiting)
        raised.update(k for _, k, _ in waiting)
        for (pos, k, _), alloc in zip(waiting, sized):
            queue[pos] = (k, admit({key: alloc[key] for key in ("cpu", "memory", "timeout")}), queue[pos][2])

    def resize_sweep(i, now):
        """At its sweep's 1st, 2nd, 4th… success, size the sweep's still-queued first attempts again."""
        nonlocal decide_s
        again = getattr(policy, "resize_queued", None)
        done = sweep_succeeded[sweep[i]] = sweep_succeeded.get(sweep[i], 0) + 1
        if again is None or done & (done - 1):
            return
        waiting = [(pos, k, alloc) for pos, (k, alloc, _) in enumerate(queue)
                   if attempts[k] == 0 and sweep[k] == sweep[i]]
        if not waiting:
            return
        start = time.perf_counter()
        sized = again([(requests[k], alloc) for _, k, alloc in waiting], now)
        decide_s += time.perf_counter() - start
        counts["resized_in_sweep"] += len(waiting)
        for (pos, k, _), alloc in zip(waiting, sized):
            queue[pos] = (k, admit({key: alloc[key] for key in ("cpu", "memory", "timeout")}), queue[pos][2])

    def dispatch(now):
        k = 0
        while k < len(queue):
            i, alloc, since = queue[k]
            if per_user is not None and running.get(rows[i]["user"], 0) >= per_user:
                k += 1
            elif alloc["cpu"] <= free["cpu"] + 1e-9 and alloc["memory"] <= free["memory"] + 1e-9:
                queue.pop(k)
                waited[i] += now - since
                start_attempt(i, alloc, now)
            else:
                k += 1

    now = 0.0
    while events:
        now, kind, _, payload = heapq.heappop(events)
        if kind == _SUBMIT:
            decide(payload, now)
        elif kind == _RETRAIN:
            policy.retrain(now)
        else:
            i, alloc, reason, used = payload
            free["cpu"] += alloc["cpu"]
            free["memory"] += alloc["memory"]
            running[rows[i]["user"]] -= 1
            req = requests[i]
            record = {k: req[k] for k in ("id", "user", "submit_time", "code_cells", "source_bytes", "imports", "params")}
            record.update(status="succeeded" if reason is None else "failed", reason=reason,
                          allocated=dict(alloc), used=used, end_time=now)
            policy.observe(record)
            if reason is None:
                done_at[i] = now
                evidence.observe(record)
                resize_sweep(i, now)
            else:
                kills[reason] += 1
                by_cause[cause[i]]["kills"] += 1
                if reason == "oom_killed":
                    resize(record, now)
                if attempts[i] < MAX_ATTEMPTS and retriable(reason, alloc):
                    decide(i, now, {"reason": reason, "allocated": dict(alloc), "used": dict(used)})
        dispatch(now)

    submit = np.array([float(r["submit_time"]) for r in rows])
    runtime = np.array([float(r["runtime_s"]) for r in rows])
    finished = ~np.isnan(done_at)
    span = max(now - submit.min(), 1.0) if n else 1.0
    slowdown = np.maximum(1.0, (done_at[finished] - submit[finished]) / np.maximum(runtime[finished], 10.0))
    return {
        "jobs": n,
        "mem_slack": 1 - acc["mem_used"] / acc["mem_reserved"] if acc["mem_reserved"] else 0.0,
        "cpu_slack": 1 - acc["cpu_used"] / acc["cpu_reserved"] if acc["cpu_reserved"] else 0.0,
        "oom_rate": kills["oom_killed"] / max(n, 1),
        "timeout_rate": kills["timeout"] / max(n, 1),
        "kill_rate": (kills["oom_killed"] + kills["timeout"]) / max(n, 1),
        "failed_jobs": int(n - finished.sum()),
        "wait_mean_s": float(waited.mean()) if n else 0.0,
        "wait_p95_s": float(np.percentile(waited, 95)) if n else 0.0,
        "util_cpu": acc["cpu_used"] / (cap_cpu * span),
        "util_mem": acc["mem_used"] / (cap_mem * span),
        "bounded_slowdown": float(slowdown.mean()) if len(slowdown) else 0.0,
        "decide_ms": 1000 * decide_s / max(int(attempts.sum()), 1),
        "nonfinite": counts["nonfinite"],
        "resized_after_kill": counts["resized"],
        "resized_in_sweep": counts["resized_in_sweep"],
        # Per cause: first attempts, kills, and the share of all reserved byte-seconds
        # left unused by its attempts (the shares add up to mem_slack).
        "by_cause": {c: {"jobs": v["jobs"], "kills": v["kills"],
                         "mem_waste": (v["mem_reserved"] - v["mem_used"]) / acc["mem_reserved"]
                         if acc["mem_reserved"] else 0.0}
                     for c, v in by_cause.items() if v["jobs"] or v["kills"] or v["mem_reserved"]},
        **{k: v for k, v in getattr(policy, "checks", {}).items()},
    }


def _sweeps(requests: list) -> list:
    """Each job's sweep: the index of its first run. A job is a run of the sweep of the
    same user's previous submission of its notebook when that came at most SWEEP_GAP before."""
    sweep, last = [], {}
    for i, job in enumerate(requests):
        key = (job["user"], signature(job))
        prev = last.get(key)
        sweep.append(sweep[prev] if prev is not None and job["submit_time"] - requests[prev]["submit_time"]
                     <= SWEEP_GAP else i)
        last[key] = i
    return sweep


def plot(results: dict, path: str) -> None:
    """Slack against kill rate, one point per policy and resource, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, m in results.items():
        x = 100 * m["kill_rate"]
        ax.scatter([x], [100 * m["mem_slack"]], marker="o", color="C0")
        ax.scatter([x], [100 * m["cpu_slack"]], marker="^", color="C1")
        ax.annotate(name, (x, 100 * m["mem_slack"]), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.scatter([], [], marker="o", color="C0", label="memory slack")
    ax.scatter([], [], marker="^", color="C1", label="cpu slack")
    ax.set_xlabel("kill rate, OOM + timeout (% of jobs)")
    ax.set_ylabel("slack (% of reserved resource-time)")
    ax.set_title("Sizing policies: waste against kills (lower left is better)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(rows: list, policies: list, capacity: dict, retrain_hours: float = 6.0,
        per_user: Optional[int] = None) -> dict:
    """Metrics of every named policy on ``rows``, plus the forecast's MASE."""
    results = {name: simulate(rows, make_policy(name, rows, REPLAY_BOUNDS, capacity), capacity,
                              retrain_hours=retrain_hours, per_user=per_user)
               for name in policies}
    out = {"policies": results}
    try:
        out["forecast"] = evaluate_forecast([r["submit_time"] for r in rows], [r["cpu_seconds"] for r in rows])
    except ValueError as exc:  # traces under three weeks cannot be scored
        out["forecast"] = {"error": str(exc)}
    return out


def format_causes(results: dict, names: tuple = ("model", "vpa", "rules")) -> str:
    """Per cause: first attempts, then for each named policy its kills and the share of
    all its reserved memory-time left unused there (the shares add up to its slack)."""
    names = [n for n in names if n in results]
    causes = [c for c in CAUSES if any(c in results[n]["by_cause"] for n in names)]
    head = f"  {'cause':<12}" + "".join(f" {n + ' jobs':>11} {'kills':>5} {'slack':>6}" for n in names)
    lines = [head]
    for c in causes:
        line = f"  {c:<12}"
        for n in names:
            v = results[n]["by_cause"].get(c, {"jobs": 0, "kills": 0, "mem_waste": 0.0})
            line += f" {v['jobs']:>11} {v['kills']:>5} {v['mem_waste']:>6.3f}"
        lines.append(line)
    return "\n".join(lines)


def format_table(results: dict) -> str:
    """A fixed-width table of the policies' metrics."""
    w = max([10] + [len(name) for name in results])
    head = (f"{'policy':<{w}} {'mem_slack':>9} {'cpu_slack':>9} {'oom%':>6} {'timeout%':>8} "
            f"{'wait_mean':>9} {'wait_p95':>9} {'util_cpu':>8} {'util_mem':>8} {'bsld':>6}")
    lines = [head]
    for name, m in results.items():
        lines.append(f"{name:<{w}} {m['mem_slack']:>9.3f} {m['cpu_slack']:>9.3f} {100 * m['oom_rate']:>6.2f} "
                     f"{100 * m['timeout_rate']:>8.2f} {m['wait_mean_s']:>9.0f} {m['wait_p95_s']:>9.0f} "
                     f"{m['util_cpu']:>8.3f} {m['util_mem']:>8.3f} {m['bounded_slowdown']:>6.2f}")
    return "\n".join(lines)
