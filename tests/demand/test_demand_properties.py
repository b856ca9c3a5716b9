"""Property tests over a deliberately broad family of workloads, far from demand.replay.trace's.

Each example draws users (one notebook or many), notebooks (libraries with a fixed
memory cost, parameters that move memory and parameters that do not, spanning 1 to
10^5, or none at all), and a history with identical repeated runs, one huge outlier,
two-row histories, bursts of first runs, OOM kills, timeouts and missing usage. For each: training succeeds
or is refused with a reason, every sizing is finite and within the bounds, an OOM retry
never gets less memory than the killed run, and the replay completes.
"""

import math

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from demand.policy import GB, MB
from demand.sizing import Sizer
from demand.replay.simulate import make_policy, simulate

BOUNDS = {"cpu": (0.25, 8.0), "memory": (256 * MB, 64 * GB), "timeout": (60.0, 24 * 3600.0)}
LIBRARY_MB = {"numpy": 30, "pandas": 110, "torch": 880, "sklearn": 90, "polars": 95, "json": 0}
T0 = 1_704_067_200
# Bounded so that the whole file takes well under a minute on a busy 2-core box.
FAST = settings(max_examples=30, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

notebooks = st.fixed_dictionaries({
    "imports": st.lists(st.sampled_from(sorted(LIBRARY_MB)), max_size=3, unique=True),
    "cells": st.integers(1, 60),
    "moving": st.sampled_from([None, "n", "rows"]),        # the parameter that moves memory, if any
    "idle": st.sampled_from([None, "seed", "lr"]),          # one that does not
    "mb_per_unit": st.floats(1e-4, 5.0),
    "noise": st.sampled_from([0.0, 0.0, 0.05, 0.3]),        # 0: identical re-runs peak alike
    "seconds": st.floats(1.0, 20_000.0),
})
users = st.lists(st.lists(notebooks, min_size=1, max_size=4), min_size=1, max_size=6)


@st.composite
def workloads(draw, max_jobs=120):
    """(users' notebooks, trace rows in submit order) of one random workload."""
    who = draw(users)
    n = draw(st.integers(2, max_jobs))
    outlier = draw(st.integers(0, n - 1))
    # A burst at the end: the newest jobs are all first runs (a sweep of new notebooks,
    # submitted before any of them ends), so no calibration job knows its notebook.
    burst = n - n // 3 if draw(st.booleans()) else n
    fresh = draw(notebooks)
    rows, t = [], T0
    for i in range(n):
        u = draw(st.integers(0, len(who) - 1))
        k = draw(st.integers(0, len(who[u]) - 1))
        nb = who[u][k]
        if i >= burst:
            u, k, nb = len(who) + i, 0, fresh
        params = {}
        if nb["moving"]:
            params[nb["moving"]] = draw(st.sampled_from([1, 7, 100, 2500, 100_000]))
        if nb["idle"]:
            params[nb["idle"]] = draw(st.integers(1, 100_000))
        base = 85 + sum(LIBRARY_MB[m] for m in nb["imports"])
        peak = (base + nb["mb_per_unit"] * params.get(nb["moving"], 0)) * math.exp(
            nb["noise"] * draw(st.floats(-2, 2)))
        if i == outlier:
            peak *= 40
        t += 1 if i >= burst else draw(st.sampled_from([1, 30, 600, 7200]))
        rows.append({"submit_time": float(t), "user": f"u{u}", "code_cells": nb["cells"],
                     "source_bytes": 100 * nb["cells"] + k, "imports": list(nb["imports"]), "params": params,
                     "requested_cpu": 1.0, "requested_mem_mb": 1024.0, "peak_mem_mb": min(peak, 60_000.0),
                     "cpu_seconds": nb["seconds"] * 0.9, "runtime_s": nb["seconds"]})
    return who, rows


def _records(draw, rows):
    """Finished-job records of the rows, some killed, some timed out, some without usage."""
    out = []
    for i, r in enumerate(rows):
        fate = draw(st.sampled_from(["ok"] * 6 + ["oom", "timeout", "no-used", "no-peak"]))
        peak, wall = r["peak_mem_mb"] * MB, r["runtime_s"]
        used = {"peak_memory": peak, "cpu_seconds": r["cpu_seconds"], "wall_seconds": wall}
        alloc = {"cpu": 1.0, "memory": 2 * GB, "timeout": 3600.0}
        status, reason = "succeeded", None
        if fate == "oom":
            status, reason, alloc["memory"] = "failed", "oom_killed", max(peak / 2, 64 * MB)
            used["peak_memory"] = alloc["memory"]
        elif fate == "timeout":
            status, reason, used["wall_seconds"] = "failed", "timeout", alloc["timeout"]
        elif fate == "no-used":
            used = {}
        elif fate == "no-peak":
            del used["peak_memory"]
        out.append({"id": i, "user": r["user"], "submit_time": r["submit_time"], "end_time": r["submit_time"] + wall,
                    "code_cells": r["code_cells"], "source_bytes": r["source_bytes"], "imports": r["imports"],
                    "params": r["params"], "status": status, "reason": reason, "allocated": alloc, "used": used})
    return out


def _sane(out):
    for key, (lo, hi) in BOUNDS.items():
        v = out["allocated"][key]
        assert math.isfinite(v) and lo <= v <= hi, (key, v, out["basis"])
    assert all(math.isfinite(v) for v in out["predicted"].values()), out["predicted"]


@FAST
@given(data=st.data(), workload=workloads())
def test_training_and_every_sizing_stay_finite_and_in_bounds(tmp_path_factory, data, workload):
    _, rows = workload
    history = _records(data.draw, rows)
    sizer = Sizer(tmp_path_factory.mktemp("models"), BOUNDS, min_jobs=20)
    info = sizer.retrain(history, now=history[-1]["end_time"] + 1)
    # Trained, or refused with a reason (then the rules serve).
    assert info["version"] is not None or info["rejected"]["reason"]
    event("a per-job model" if info["metrics"].get("per_job_model") else "history rules only")
    by_user = {}
    for h in history:
        by_user.setdefault(h["user"], []).insert(0, h)
    for h in history[-15:]:
        job = {k: h[k] for k in ("user", "code_cells", "source_bytes", "imports", "params")}
        job.update(requested={}, retry_of=None, submit_time=h["submit_time"])
        out = sizer.size(job, by_user[h["user"]], now=h["end_time"] + 1)
        _sane(out)
        killed = {"reason": "oom_killed", "allocated": dict(out["allocated"]),
                  "used": {"peak_memory": out["allocated"]["memory"], "wall_seconds": 10.0, "cpu_seconds": 5.0}}
        retry = sizer.size(dict(job, retry_of=killed), by_user[h["user"]], now=h["end_time"] + 2)
        _sane(retry)
        assert retry["allocated"]["memory"] >= min(out["allocated"]["memory"], BOUNDS["memory"][1])


@settings(FAST, max_examples=6)
@given(workload=workloads(max_jobs=90))
def test_the_replay_completes_on_any_workload(workload):
    _, rows = workload
    capacity = {"cpu": 16, "memory": 64 * GB}
    policy = make_policy("model", rows, BOUNDS, capacity, min_jobs=20)
    m = simulate(rows, policy, capacity, bounds=BOUNDS, retrain_hours=2.0)
    causes = m.pop("by_cause")
    # Every first attempt's memory came from one policy the scoreboard named.
    assert sum(m.pop("sized_by").values()) == len(rows)
    assert m["jobs"] == len(rows) and all(math.isfinite(v) for v in m.values())
    # Every first attempt has one cause, and the causes' slack adds up to the whole.
    assert sum(c["jobs"] for c in causes.values()) == len(rows)
    assert math.isclose(sum(c["mem_waste"] for c in causes.values()), m["mem_slack"], abs_tol=1e-9)
