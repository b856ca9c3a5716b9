"""Never a non-finite number: the fitted model, its rejection, and the sizer's own check."""

import json
import math

import numpy as np

from demand.policy import GB, MB
from demand.sizing import Sizer
from demand.registry import versions

BOUNDS = {"cpu": (0.25, 4.0), "memory": (256 * MB, 16 * GB), "timeout": (60, 6 * 3600)}
T0 = 1_700_000_000


def _run(i, user, imports, params, peak_mb, status="succeeded", reason=None, alloc_mb=4096, cells=6, src=2000):
    t = T0 + 900 * i
    return {"id": i, "user": user, "submit_time": t, "end_time": t + 300, "code_cells": cells, "source_bytes": src,
            "imports": imports, "params": params, "status": status, "reason": reason,
            "allocated": {"cpu": 1.0, "memory": alloc_mb * MB, "timeout": 3600},
            "used": {"peak_memory": peak_mb * MB, "cpu_seconds": 240.0, "wall_seconds": 300.0}}


def _issue_case():
    """The job that first met the NaN: a user's second notebook, after their first had
    been OOM-killed at 2 GiB and then succeeded at a 2.67 GB peak -- sized by a model
    whose calibration window held only first runs of notebooks (no run of a notebook
    its user had run before), as early in a replay of a sweep-heavy trace."""
    rng = np.random.default_rng(0)
    history, i = [], 0
    for k in range(45):  # old users re-running their notebooks
        user, rows = f"old{k % 5}", int(rng.choice([100, 1000, 10000]))
        history.append(_run(i, user, ["pandas", "numpy"], {"rows": rows}, 300 + rows / 50, cells=5 + k % 5))
        i += 1
    for k in range(15):  # then a burst of new users' first runs: the newest quarter calibrates
        history.append(_run(i, f"new{k}", ["polars"], {"n": 10 + k}, 150.0 * (1 + k % 3), cells=30 + k))
        i += 1
    torch = ["pandas", "numpy", "torch", "sklearn"]
    history.append(_run(i, "ann", torch, {"rows": 1080}, 2048, status="failed", reason="oom_killed", alloc_mb=2048,
                        cells=12, src=5000))
    history.append(_run(i + 1, "ann", torch, {"rows": 1080}, 2.67e9 / MB, alloc_mb=8192, cells=12, src=5000))
    job = {"user": "ann", "submit_time": T0 + 900 * (i + 3), "code_cells": 9, "source_bytes": 3000,
           "imports": ["pandas", "numpy", "torch"], "params": {"rows": 84}, "requested": {}, "retry_of": None}
    return history, job


def _finite_within(out):
    for key, (lo, hi) in BOUNDS.items():
        v = out["allocated"][key]
        assert math.isfinite(v) and lo <= v <= hi, (key, v)
    for key, v in out["predicted"].items():
        assert math.isfinite(v), (key, v)


def test_the_issue_case_is_sized_finite_by_the_model(tmp_path):
    history, job = _issue_case()
    sizer = Sizer(tmp_path, BOUNDS, min_jobs=50)
    info = sizer.retrain(history, now=job["submit_time"])
    assert info["version"] == "v0001" and "rejected" not in info
    margins = sizer.bundle.model.margins
    assert all(math.isfinite(m) for t in margins.values() for g in t.values() for m in g.values())
    mine = [h for h in history if h["user"] == "ann"][::-1]
    out = sizer.size(job, mine, now=job["submit_time"])
    assert out["basis"] == "model"
    _finite_within(out)
    # Its OOM retry: never less than the killed run had.
    killed = dict(mine[0], allocated={"cpu": out["allocated"]["cpu"], "memory": out["allocated"]["memory"],
                                      "timeout": out["allocated"]["timeout"]},
                  used={"peak_memory": out["allocated"]["memory"], "wall_seconds": 60, "cpu_seconds": 50})
    retry = sizer.size(dict(job, retry_of=dict(killed, reason="oom_killed")), mine, now=job["submit_time"])
    _finite_within(retry)
    assert retry["allocated"]["memory"] >= min(out["allocated"]["memory"], BOUNDS["memory"][1])


def _break_one_margin(monkeypatch):
    """Make the next fit's margins NaN for new users, as the issue's fit had them."""
    from demand import model
    from demand.features import LEVEL_USER

    calibrate = model.calibrate

    def broken(*args):
        margins, exceed = calibrate(*args)
        margins[LEVEL_USER] = {q: math.nan for q in margins[LEVEL_USER]}
        return margins, exceed

    monkeypatch.setattr(model, "calibrate", broken)


def test_a_fit_with_a_nan_is_rejected_and_the_previous_version_keeps_serving(tmp_path, monkeypatch):
    history, job = _issue_case()
    sizer = Sizer(tmp_path, BOUNDS, min_jobs=50)
    assert sizer.retrain(history, now=job["submit_time"])["version"] == "v0001"
    _break_one_margin(monkeypatch)
    info = sizer.retrain(history, now=job["submit_time"] + 60)
    assert info["version"] == "v0001"
    assert info["rejected"]["version"] == "v0002" and "margins[memory][1]" in info["rejected"]["reason"]
    assert "nan" in info["rejected"]["reason"]
    json.dumps(info)  # what GET /admin/demand returns
    assert versions(tmp_path) == ["v0001", "v0002"]  # the rejected fit is kept for inspection
    # A fresh process (the sizing worker) serves v0001 and reports the rejection too.
    fresh = Sizer(tmp_path, BOUNDS, min_jobs=50)
    assert fresh.version == "v0001" and fresh.info()["rejected"]["version"] == "v0002"
    mine = [h for h in history if h["user"] == "ann"][::-1]
    out = fresh.size(job, mine, now=job["submit_time"])
    assert out["basis"] == "model" and out["model_version"] == "v0001"
    _finite_within(out)
    # A good fit afterwards serves, and the rejection is history.
    monkeypatch.undo()
    info = fresh.retrain(history, now=job["submit_time"] + 120)
    assert info["version"] == "v0003" and "rejected" not in info


def test_a_model_that_answers_nan_hands_the_job_to_the_rules_and_says_so(tmp_path, monkeypatch):
    history, job = _issue_case()
    sizer = Sizer(tmp_path, BOUNDS, min_jobs=50)
    sizer.retrain(history, now=job["submit_time"])
    model = sizer.bundle.model
    predict = model.predict

    def nan_cores(*args):
        out = predict(*args)
        return dict(out, cores=(math.nan, math.nan), memory_safe=math.nan)

    monkeypatch.setattr(model, "predict", nan_cores)
    mine = [h for h in history if h["user"] == "ann"][::-1]
    out = sizer.size(job, mine, now=job["submit_time"])
    assert out["basis"].startswith("user-history (model v0001: non-finite cpu")
    assert "memory_safe" in out["basis"]
    _finite_within(out)

    def fails(*args):
        raise ValueError("cannot convert float NaN to integer")

    monkeypatch.setattr(model, "predict", fails)
    out = sizer.size(job, [], now=job["submit_time"])
    assert out["basis"] == "cold-start (model v0001: failed with ValueError)"
    _finite_within(out)


def test_a_nan_in_a_request_or_a_killed_runs_record_does_not_pass_the_bounds(tmp_path):
    history, job = _issue_case()
    mine = [h for h in history if h["user"] == "ann"][::-1]
    retry_of = {"reason": "oom_killed", "allocated": {"memory": math.nan, "cpu": 1.0, "timeout": 600.0},
                "used": {"peak_memory": math.nan}}
    sizer = Sizer(tmp_path, BOUNDS)
    _finite_within(sizer.size(dict(job, retry_of=retry_of), mine, now=job["submit_time"]))
    out = sizer.size(dict(job, requested={"memory": math.nan}), mine, now=job["submit_time"])
    _finite_within(out)
    assert out["basis"] == "user-history (non-finite memory replaced by the rules)"
