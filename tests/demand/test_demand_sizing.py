"""The Sizer the service calls: sane clamped limits from any history, retries, versions."""

import math

import pytest

from demand.policy import GB, MB, oom_bump
from demand.sizing import Sizer
from demand.features import history_summary
from demand.registry import versions
from demand.kinds import ANY_KIND

BOUNDS = {"cpu": (0.5, 4.0), "memory": (256 * MB, 8 * GB), "timeout": (60, 7200)}


def _job(user="ann", n_rows=1000, **extra):
    return dict({"user": user, "code_cells": 5, "source_bytes": 2000, "imports": ["pandas", "numpy"],
                 "params": {"n_rows": n_rows}, "requested": {}, "retry_of": None}, **extra)


def _done(i, user="ann", n_rows=1000, peak_mb=None, wall=120.0, status="succeeded", reason=None):
    peak_mb = peak_mb if peak_mb is not None else 100 + n_rows / 100
    return dict(_job(user, n_rows), submit_time=1_700_000_000 + 600 * i, status=status, reason=reason,
                allocated={"cpu": 1, "memory": 2 * GB, "timeout": 3600},
                used={"peak_memory": peak_mb * MB, "cpu_seconds": wall * 0.9, "wall_seconds": wall})


def _within(alloc):
    for key, (lo, hi) in BOUNDS.items():
        assert lo <= alloc[key] <= hi, (key, alloc[key])


def _history(n, users=("ann", "bob", "cy")):
    return [_done(i, user=users[i % len(users)], n_rows=[1000, 10000, 100000][(i // len(users)) % 3]) for i in range(n)]


def test_cold_start_without_model_or_history(tmp_path):
    out = Sizer(tmp_path, BOUNDS).size(_job(), [])
    assert out["basis"] == "cold-start (first run: 2x the default)" and out["model_version"] == "none"
    _within(out["allocated"])


def test_user_history_rule_before_any_model(tmp_path):
    out = Sizer(tmp_path, BOUNDS).size(_job(), [_done(1, peak_mb=1000)])
    assert out["basis"] == "user-history"
    assert out["allocated"]["memory"] >= 1000 * MB


@pytest.mark.parametrize("history", [
    [],                                                           # nothing at all
    [_done(i) for i in range(80)],                                # a single user
    _history(80) + [_done(99, peak_mb=5e9, wall=1e12)],           # absurd outlier
    [dict(_done(i), used={}) for i in range(60)] + _history(60),  # missing usage
])
def test_retrain_on_any_history_serves_clamped_limits(tmp_path, history):
    sizer = Sizer(tmp_path, BOUNDS)
    info = sizer.retrain(history)
    assert info["version"] == "v0001"
    for job in (_job(), _job(user="new", n_rows=10**9)):
        out = sizer.size(job, [h for h in history if h["user"] == job["user"]][:200])
        _within(out["allocated"])
        assert all(math.isfinite(v) for v in out["predicted"].values())


def test_model_sizes_by_parameters_after_training(tmp_path):
    sizer = Sizer(tmp_path, BOUNDS)
    history = _history(240)
    sizer.retrain(history)
    ann = [h for h in history if h["user"] == "ann"][::-1]
    small, big = sizer.size(_job(n_rows=1000), ann), sizer.size(_job(n_rows=100000), ann)
    assert small["basis"] == "model"
    assert small["allocated"]["memory"] < big["allocated"]["memory"]
    assert big["allocated"]["memory"] >= (100 + 100000 / 100) * MB  # covers the known peak


def test_oom_retry_gets_vpa_bump(tmp_path):
    assert oom_bump(200 * MB) == 300 * MB        # +100 MB wins for small jobs
    assert oom_bump(2 * GB) == 1.2 * 2 * GB      # x1.2 wins for large ones
    retry = {"reason": "oom_killed", "used": {"peak_memory": 3 * GB}, "allocated": {"memory": 3 * GB}}
    out = Sizer(tmp_path, BOUNDS).size(_job(retry_of=retry), [])
    assert out["allocated"]["memory"] >= 3.6 * GB
    retry = {"reason": "timeout", "used": {"wall_seconds": 1000}, "allocated": {"timeout": 1000, "memory": 4 * GB}}
    out = Sizer(tmp_path, BOUNDS).size(_job(retry_of=retry), [])
    assert out["allocated"]["timeout"] >= 2000 and out["allocated"]["memory"] >= 4 * GB


def test_requests_win_but_are_clamped(tmp_path):
    sizer = Sizer(tmp_path, BOUNDS)
    out = sizer.size(_job(requested={"cpu": 64, "memory": 1 * MB, "timeout": 1800}), [])
    assert out["allocated"] == {"cpu": 4.0, "memory": 256 * MB, "timeout": 1800.0}
    assert out["basis"] == "request"
    partial = sizer.size(_job(requested={"memory": 3 * GB}), [])
    assert partial["allocated"]["memory"] == 3 * GB and partial["basis"].startswith("cold-start")


def test_versions_saved_and_newest_loaded(tmp_path):
    first = Sizer(tmp_path, BOUNDS)
    first.retrain(_history(60))
    first.retrain(_history(90))
    assert versions(tmp_path) == ["v0001", "v0002"]
    again = Sizer(tmp_path, BOUNDS)
    assert again.info()["version"] == "v0002" and again.info()["n_jobs"] == 90
    assert "memory" in again.info()["metrics"] and len(again.info()["forecast"]["jobs"]) == 168
    (tmp_path / "v0002" / "model.pkl").write_bytes(b"not a pickle")
    assert Sizer(tmp_path, BOUNDS).info()["version"] == "v0001"


def test_forecast_and_load_factor(tmp_path):
    sizer = Sizer(tmp_path, BOUNDS, capacity={"cpu": 2})
    with pytest.raises(ValueError):
        Sizer(tmp_path, BOUNDS).load_factor(0)
    history = _history(300)
    sizer.retrain(history, now=history[-1]["submit_time"] + 3600)
    fc = sizer.forecast(history, now=history[-1]["submit_time"], hours=12)
    assert len(fc["jobs"]) == len(fc["cpu_seconds"]) == 12 and sum(fc["jobs"]) > 0
    span = history[-1]["submit_time"] - min(h["submit_time"] for h in history)
    assert fc["history_jobs"] == 300 and abs(fc["history_hours"] - span / 3600) <= 2  # what it stands on
    assert sizer.forecast([], now=history[-1]["submit_time"])["history_hours"] == 0
    lf = sizer.load_factor(history[-1]["submit_time"])
    assert BOUNDS["cpu"][0] <= lf["cpu_per_job"] <= BOUNDS["cpu"][1] and set(lf) == {"cpu_per_job"}


def test_model_timeout_never_tight(tmp_path):
    """A model-predicted timeout is at least max(10 x the runtime quantile, 600 s), bounds permitting."""
    from demand.features import history_summary

    sizer = Sizer(tmp_path, {"timeout": (60, 10**6)})
    history = _history(240)
    sizer.retrain(history)
    ann = [h for h in history if h["user"] == "ann"][::-1]
    for n_rows in (10, 1000, 100000):
        job = _job(n_rows=n_rows)
        out = sizer.size(job, ann)
        assert out["basis"] == "model"
        q = sizer.bundle.model.predict(job, history_summary(job, ann), None)
        assert out["allocated"]["timeout"] >= max(10 * q["runtime"][1], 600)
    # ... unless the admin's bounds force lower
    tight = Sizer(tmp_path, {"timeout": (60, 300)})
    assert tight.size(_job(), ann)["allocated"]["timeout"] == 300


def test_oom_retry_with_model_jumps_at_least_double(tmp_path):
    sizer = Sizer(tmp_path, BOUNDS)
    history = _history(240)
    sizer.retrain(history)
    ann = [h for h in history if h["user"] == "ann"][::-1]
    first = sizer.size(_job(n_rows=1000), ann)["allocated"]["memory"]
    retry = {"reason": "oom_killed", "used": {"peak_memory": first}, "allocated": {"memory": first}}
    again = sizer.size(_job(n_rows=1000, retry_of=retry), ann)["allocated"]["memory"]
    assert again >= min(max(oom_bump(first), 2 * first), BOUNDS["memory"][1])


def test_retrain_due_early_then_on_doubling(tmp_path):
    sizer = Sizer(tmp_path, BOUNDS, min_jobs=50)
    assert not sizer.retrain_due(9) and sizer.retrain_due(10)  # a bundle of kinds, no model yet
    sizer.retrain(_history(10))
    assert sizer.bundle.model is None
    assert not sizer.retrain_due(19) and sizer.retrain_due(20)
    sizer.retrain(_history(40))
    assert sizer.bundle.model is None
    assert not sizer.retrain_due(49) and sizer.retrain_due(50)  # the first model, however the doubling goes
    sizer.retrain(_history(60))
    assert not sizer.retrain_due(80) and sizer.retrain_due(120)


def _mixed_history(n):
    """Three users with a pandas notebook; one also runs a large torch notebook."""
    out = _history(n)
    for i in range(0, n, 20):
        out.append(dict(_done(n + i, user="bob", n_rows=1000, peak_mb=6000), imports=["torch", "numpy"]))
    return sorted(out, key=lambda h: h["submit_time"])


def test_new_notebook_sized_like_its_kind_with_generous_timeout(tmp_path):
    sizer = Sizer(tmp_path, {"memory": (256 * MB, 64 * GB), "timeout": (60, 7200)})
    history = _mixed_history(240)
    sizer.retrain(history)
    ann = [h for h in history if h["user"] == "ann"][::-1]
    torch_job = _job(imports=["torch", "numpy", "tqdm"], code_cells=9)
    out = sizer.size(torch_job, ann)
    assert out["basis"] == "model"
    assert out["allocated"]["memory"] >= 6000 * MB  # torch jobs here peak at 6 GB
    model = sizer.bundle.model
    # the kind is the rarest known import (torch, not numpy, which pandas jobs share)
    assert abs(model.kind_upper(torch_job) - math.log(6000)) < 0.01
    # an unknown kind: what jobs of any kind reach
    assert model.kind_upper(_job(imports=["polars"])) == model.kinds[ANY_KIND][1]
    assert model.kinds[ANY_KIND][1] < model.kind_upper(torch_job)  # all jobs: torch and the lighter rest
    assert out["allocated"]["timeout"] == 7200  # never ran: only the admin's maximum


def test_notebook_killed_before_never_sized_below_its_kill(tmp_path):
    sizer = Sizer(tmp_path, {"memory": (256 * MB, 64 * GB)})
    history = _history(240)
    sizer.retrain(history)
    job = _job(user="dee", imports=["polars"], code_cells=7)
    killed = dict(job, submit_time=1_700_100_000, status="failed", reason="oom_killed",
                  allocated={"cpu": 1, "memory": 3 * GB, "timeout": 3600}, used={"peak_memory": 3 * GB})
    assert sizer.size(job, [killed])["allocated"]["memory"] >= 12 * GB  # as the killed run's retry


def test_a_killed_notebook_is_sized_like_its_retry_before_any_model_too(tmp_path):
    sizer = Sizer(tmp_path, {"memory": (256 * MB, 64 * GB)})
    killed = _done(1, peak_mb=3 * 1024, status="failed", reason="oom_killed")
    killed["allocated"] = dict(killed["allocated"], memory=3 * GB)
    out = sizer.size(_job(), [killed])
    assert out["basis"] == "cold-start" and out["allocated"]["memory"] >= 12 * GB
    # once a run of the configuration succeeded, what it used is the evidence
    later = sizer.size(_job(), [_done(2, peak_mb=5000), killed])
    assert later["basis"] == "user-history" and later["allocated"]["memory"] < 8 * GB


def test_history_rule_does_not_scale_another_notebooks_runs(tmp_path):
    sizer = Sizer(tmp_path, {"memory": (256 * MB, 64 * GB)})
    other = [_done(i, n_rows=1000, peak_mb=3000) for i in range(3)][::-1]
    job = _job(n_rows=10**6, imports=["torch"], code_cells=9)  # another notebook, 1000x the rows
    out = sizer.size(job, other)["allocated"]["memory"]
    assert 3000 * MB < out < 1.5 * 3000 * MB
    # the same notebook with 1000x the rows grows, if less than in proportion
    same = sizer.size(_job(n_rows=10**6), other)["allocated"]["memory"]
    assert same > 5 * 3000 * MB


def test_retry_of_unseen_parameters_jumps_fourfold(tmp_path):
    sizer = Sizer(tmp_path, {"memory": (256 * MB, 64 * GB)})
    history = _history(240)
    sizer.retrain(history)
    ann = [h for h in history if h["user"] == "ann"][::-1]
    job = _job(n_rows=3000)  # between known sizes: an estimate, not a re-run
    first = sizer.size(job, ann)["allocated"]["memory"]
    retry = {"reason": "oom_killed", "used": {"peak_memory": first}, "allocated": {"memory": first}}
    assert sizer.size(dict(job, retry_of=retry), ann)["allocated"]["memory"] >= 4 * (first - MB)


def test_a_retry_is_sized_from_its_kill_not_held_at_an_unproven_models_margin(tmp_path):
    sizer = Sizer(tmp_path, {"memory": (64 * MB, 64 * GB)})
    sizer.retrain(_history(240))
    job = _job(user="zed", imports=["polars"], code_cells=7)  # nothing known: wide margins and floors
    assert sizer.size(job, [])["allocated"]["memory"] >= 2 * GB
    retry = {"reason": "oom_killed", "used": {"peak_memory": 300 * MB}, "allocated": {"memory": 300 * MB}}
    again = sizer.size(dict(job, retry_of=retry), [])["allocated"]["memory"]
    assert 2 * 300 * MB <= again <= 4 * 300 * MB + MB


def test_an_oom_retry_with_an_explicit_memory_request_gets_the_request_not_the_models_jump(tmp_path):
    sizer = Sizer(tmp_path, {"memory": (64 * MB, 64 * GB)})
    sizer.retrain(_history(240))
    job = _job(user="zed", imports=["polars"], code_cells=7)
    retry = {"reason": "oom_killed", "used": {"peak_memory": 800 * MB}, "allocated": {"memory": 256 * MB}}
    jumped = sizer.size(dict(job, retry_of=retry), [])["allocated"]["memory"]
    assert jumped > 2 * GB  # the model's jump, where nothing was asked
    asked = sizer.size(dict(job, retry_of=retry, requested={"memory": 2 * GB}), [])["allocated"]["memory"]
    assert asked == 2 * GB
    # a request below the floor every retry is owed still gets the floor
    low = sizer.size(dict(job, retry_of=retry, requested={"memory": 300 * MB}), [])["allocated"]["memory"]
    assert low >= oom_bump(800 * MB) - MB


def test_immature_model_never_below_the_history_rule(tmp_path):
    sizer = Sizer(tmp_path, BOUNDS)
    history = _history(60)  # 15 calibration jobs: the model's tail is unknown
    sizer.retrain(history)
    assert not sizer.bundle.model.mature
    ann = [h for h in history if h["user"] == "ann"][::-1]
    job = _job(n_rows=100000)
    rule = sizer._history_rule(job, ann)
    assert sizer.size(job, ann)["allocated"]["memory"] >= rule["memory"] - MB


def test_realised_report_counts_kills_and_slack_like_the_replay():
    from demand.report import realised

    def rec(status, reason, memory_mb, peak_mb, basis):
        return {"status": status, "reason": reason,
                "allocated": {"memory": memory_mb * MB, "cpu": 1.0, "basis": basis},
                "used": {"peak_memory": peak_mb * MB, "cpu_seconds": 50.0, "wall_seconds": 100.0}}

    history = [rec("succeeded", None, 1000, 500, "model"), rec("failed", "oom_killed", 1000, 1000, "model"),
               rec("failed", "cell_error", 1000, 10, "model"), rec("succeeded", None, 400, 400, "cold-start")]
    history[0]["predicted"] = {"memory_kill_odds": 0.01}
    history[1]["predicted"] = {"memory_kill_odds": 0.03}
    out = realised(history)
    assert out["jobs"] == 3 and out["oom_kill_rate"] == 1 / 3  # the cell error is not the sizing's
    # what the model said of the jobs whose limit it chose, against what happened to them
    assert out["predicted"] == {"jobs": 2, "oom_kill_rate": 0.02, "realised_oom_kill_rate": 0.5}
    assert out["by_basis"]["cold-start"]["predicted"] is None
    assert out["memory_slack"] == 1 - (500 + 400) / (1000 + 1000 + 400)  # the killed run is all waste
    assert out["by_basis"]["model"]["jobs"] == 2 and out["by_basis"]["cold-start"]["memory_slack"] == 0.0
    assert realised([])["memory_slack"] is None


def test_growth_trend_applies_when_the_job_carries_no_submit_time(tmp_path):
    # The service sizes a job from its features alone: the time of the decision comes
    # from the sizer, not the job, or every earlier run would look zero days old.
    sizer = Sizer(tmp_path, {"memory": (256 * MB, 64 * GB)})
    sizer.retrain(_history(480))
    assert sizer.bundle.model.mature
    t0 = 1_800_000_000
    peaks = [1000 * 1.03 ** d for d in range(10)]  # +3% a day, one run a day

    def runs(days_apart):
        return [dict(_done(0, user="eve", n_rows=5000, peak_mb=p), submit_time=t0 + days_apart * 86400 * d)
                for d, p in enumerate(peaks)][::-1]

    job = _job(user="eve", n_rows=5000)
    assert "submit_time" not in job
    now = t0 + 86400 * 10
    over_ten_days = sizer.size(job, runs(1.0), now)["predicted"]["memory"]
    within_an_hour = sizer.size(job, runs(0.004), now)["predicted"]["memory"]
    # same runs, same order, same noise: only their ages differ, and so the trend
    assert over_ten_days > 1.03 * within_an_hour


def test_history_rule_scales_only_with_parameters_that_move_memory(tmp_path):
    sizer = Sizer(tmp_path, BOUNDS)
    history = [dict(_done(i, peak_mb=1000), params={"n_rows": 1000, "epochs": 1}) for i in range(5)][::-1]
    job = dict(_job(), params={"n_rows": 1000, "epochs": 10})
    assumed = sizer._history_rule(job, history)["memory"]  # no slopes known: epochs assumed to scale memory
    learned = sizer._history_rule(job, history, {"n_rows": 0.9, "epochs": 0.0})["memory"]
    assert assumed > 3 * learned
    assert learned >= 1000 * MB  # still never below the runs it has seen
    bigger = dict(job, params={"n_rows": 10000, "epochs": 10})
    assert sizer._history_rule(bigger, history, {"n_rows": 0.9, "epochs": 0.0})["memory"] > 5 * learned


def _trace_history(days, users, seed):
    """A synthetic trace's jobs as finished service records (every run unconstrained)."""
    from demand.replay.trace import generate, typed

    return [{"id": i, "user": r["user"], "submit_time": r["submit_time"], "code_cells": r["code_cells"],
             "source_bytes": r["source_bytes"], "imports": r["imports"], "params": r["params"],
             "status": "succeeded", "end_time": r["submit_time"] + r["runtime_s"],
             "used": {"peak_memory": r["peak_mem_mb"] * MB, "cpu_seconds": r["cpu_seconds"],
                      "wall_seconds": r["runtime_s"]}}
            for i, r in enumerate(typed(r) for r in generate(days, users, seed))]


def test_a_long_new_notebook_risks_a_lower_quantile_than_a_short_one(tmp_path):
    from demand.features import LEVEL_NONE, LEVEL_NOTEBOOK, LEVEL_USER
    from demand.model import NEW_MIN_QUANTILE

    sizer = Sizer(tmp_path, BOUNDS)
    sizer.retrain(_trace_history(10, 20, seed=4))
    model = sizer.bundle.model
    assert model.kill_price is not None
    spread = [g for g in (LEVEL_NONE, LEVEL_USER, LEVEL_NOTEBOOK) if len(set(model.margins["memory"][g].values())) > 1]
    assert spread  # on this trace, new users' and notebooks' errors have a tail
    for group in spread:
        margins = model.margins["memory"][group]
        cheap, _ = model._choose(group, 1.0, math.log(10.0), model.kill_price)
        costly, p = model._choose(group, 1.0, math.log(model.kill_price) + 10, model.kill_price)
        # a short small guess covers everything seen (the top option, a tail fit, may reach past it)
        assert cheap >= max(m for q, m in margins.items() if q < 1.0)
        # ... a long large one risks the lowest margin allowed, and its kill odds are priced
        assert costly == min(m for q, m in margins.items() if q >= NEW_MIN_QUANTILE) < cheap
        assert p >= model.exceedance[group][max(margins)] and p > 0


def test_gaussian_floor_only_where_the_calibration_tail_is_too_thin_to_see():
    import numpy as np

    from demand.calibration import GAUSS_Z, calibrate
    from demand.curves import GROUP_EXACT

    def exact_margins(n):
        errors = np.random.default_rng(1).normal(0, 0.5, n)  # tighter than the estimated scale says
        groups = np.full(n, GROUP_EXACT)
        margins, _ = calibrate(errors, errors, groups, errors, errors, [0.8, 0.999])
        return margins[GROUP_EXACT]

    many, few = exact_margins(400), exact_margins(40)
    assert many[0.8] < 0.7 * GAUSS_Z[0.8]  # 80 errors beyond it: the empirical margin stands
    assert many[0.999] >= GAUSS_Z[0.999]   # none beyond it to see: never below the Gaussian
    assert few[0.8] >= GAUSS_Z[0.8]        # 8 beyond it: too few to go below


def test_a_model_sized_job_records_its_kill_odds_and_a_retry_does_not(tmp_path):
    sizer = Sizer(tmp_path, {"memory": (128 * MB, 64 * GB)})
    history = _trace_history(10, 20, seed=4)
    sizer.retrain(history)
    job = history[-1]
    past = [h for h in history if h["user"] == job["user"] and h["end_time"] <= job["submit_time"]][::-1]
    out = sizer.size(dict(job, requested={}, retry_of=None), past, now=job["submit_time"])
    assert out["basis"] == "model" and 0 < out["predicted"]["memory_kill_odds"] < 0.5
    killed = dict(job, status="failed", reason="oom_killed", allocated=out["allocated"],
                  used={"peak_memory": out["allocated"]["memory"], "wall_seconds": 60.0})
    retry = sizer.size(dict(job, requested={}, retry_of=killed), past, now=job["submit_time"])
    assert retry["allocated"]["memory"] > out["allocated"]["memory"]
    assert "memory_kill_odds" not in retry["predicted"]  # the odds were for the model's own limit


def test_a_model_saved_before_extrapolations_were_calibrated_apart_still_sizes(tmp_path):
    from demand.curves import GROUP_BEYOND
    sizer = Sizer(tmp_path, {"memory": (64 * MB, 64 * GB)})
    history = _history(240)
    sizer.retrain(history)
    ann = [h for h in history if h["user"] == "ann"][::-1]
    job = _job(n_rows=10**6)  # ten times ann's largest run
    assert sizer.bundle.model.predict(job, history_summary(job, ann), None)["level"] == GROUP_BEYOND
    new = sizer.size(job, ann)["allocated"]["memory"]
    for target in sizer.bundle.model.margins:
        del sizer.bundle.model.margins[target][GROUP_BEYOND]
    old = sizer.size(job, ann)["allocated"]["memory"]
    assert old >= 64 * MB and new >= 64 * MB


def test_a_timed_out_run_that_used_all_its_cpu_gets_more_cpu_not_only_more_time(tmp_path):
    sizer = Sizer(tmp_path, {"cpu": (0.5, 8.0), "timeout": (60, 86400)})
    allocated = {"cpu": 1.75, "memory": 4 * GB, "timeout": 86400}  # already the admin's longest
    busy = {"reason": "timeout", "allocated": allocated,
            "used": {"cpu_seconds": 1.74 * 86400, "wall_seconds": 86400, "peak_memory": GB}}
    idle = dict(busy, used={"cpu_seconds": 0.2 * 86400, "wall_seconds": 86400, "peak_memory": GB})
    throttled = sizer.size(_job(retry_of=busy), [])["allocated"]
    assert throttled["cpu"] == 3.5 and throttled["timeout"] == 86400
    waiting = sizer.size(_job(retry_of=idle), [])["allocated"]  # time, not cpu, ran out
    assert waiting["cpu"] == 1.75 and waiting["timeout"] == 86400


def test_no_runtime_estimate_makes_a_job_costlier_than_the_longest_timeout(tmp_path):
    """The memory margin is chosen by what a job would reserve, memory x time; an
    extrapolated runtime far beyond the admin's longest timeout must not cut it."""
    sizer = Sizer(tmp_path, {"memory": (64 * MB, 64 * GB), "timeout": (60, 7200)})
    history = _trace_history(10, 20, seed=4)
    sizer.retrain(history)
    model = sizer.bundle.model
    assert model.max_runtime == 7200
    assert model._log_cost(math.log(1000), math.log(1e7)) == pytest.approx(math.log(1000 * 7200))

    def limits():
        out = []
        for job in history[-200:]:
            past = [h for h in history if h["user"] == job["user"] and h["end_time"] <= job["submit_time"]][::-1]
            out.append(model.predict(job, history_summary(job, past), job["submit_time"])["memory"][1])
        return out

    model.max_runtime = None
    unbounded = limits()
    model.max_runtime = 1.0  # as if no job could run longer than a second: every job is cheap
    bounded = limits()
    assert all(b >= u - 1e-6 for b, u in zip(bounded, unbounded))
    assert sum(b > u * 1.01 for b, u in zip(bounded, unbounded)) >= 10


def test_the_services_settings_reach_the_sizer_and_its_rules_are_the_only_ones(tmp_path):
    # What hub_service.sizing.Sizing hands the worker: its bounds, defaults and timeout floor.
    from hub_service import offload
    from hub_service.sizing import Sizing

    admin = Sizing(cpu_max=3.0, memory_default=512 * MB, timeout_default=1800.0, timeout_model_floor=900.0)
    job = _job(requested={"timeout": 120})
    out = offload.size(str(tmp_path), admin.policy, job, [], 0.5)
    assert out["basis"] == "cold-start (first run: 2x the default)"
    # the hour's share, a first run's twice the default (no bundle yet), the request
    assert out["allocated"] == {"cpu": 0.5, "memory": 1024 * MB, "timeout": 120.0}
    assert offload.retrain(str(tmp_path), admin.policy, _history(60))["version"] == "v0001"
    sized = offload.size(str(tmp_path), admin.policy, _job(), _history(60), None)
    assert sized["basis"] == "model" and sized["allocated"]["timeout"] >= 900.0
    # Without the model the service's defaults obey the same rules.
    assert admin.defaults({"memory": 1 * MB}, "default")["allocated"]["memory"] == 256 * MB


def test_before_any_model_a_new_notebook_is_sized_like_jobs_of_its_kind(tmp_path):
    # Heavy torch jobs of other users, too few for a per-job model: the bundle still
    # knows how large torch jobs get, and a new user's torch notebook starts there.
    heavy = [_done(i, user=f"u{i % 4}", peak_mb=6000 + 10 * i) for i in range(20)]
    for h in heavy:
        h["imports"] = ["torch", "numpy"]
    sizer = Sizer(tmp_path, BOUNDS, min_jobs=50)
    sizer.retrain(heavy)
    assert sizer.bundle.model is None and "torch" in sizer.bundle.kinds
    job = _job(user="newbie", imports=["torch"])
    out = sizer.size(job, [])
    assert out["basis"] == "cold-start" and out["allocated"]["memory"] >= 6000 * MB
    # no bundle, no kinds known: a first run's prior, twice the default
    assert Sizer(tmp_path / "other", BOUNDS).size(job, [])["allocated"]["memory"] == 4 * GB


def test_before_any_kind_is_known_a_new_notebook_is_sized_like_jobs_of_any_kind(tmp_path):
    """The first jobs of a team each import something else: no import has 10 jobs, so
    no kind is known -- yet ten jobs peaking at 5-6 GB say the admin's 2 GiB default
    is too small for the next new notebook."""
    first = [_done(i, user=f"u{i}", peak_mb=5000 + 100 * i) for i in range(10)]
    for i, h in enumerate(first):
        h["imports"] = [f"lib{i}"]
    sizer = Sizer(tmp_path, BOUNDS, min_jobs=50)
    sizer.retrain(first)
    assert sizer.bundle.model is None and set(sizer.bundle.kinds) == {ANY_KIND}
    out = sizer.size(_job(user="newbie", imports=["polars"]), [])
    assert out["basis"] == "cold-start" and out["allocated"]["memory"] >= 5800 * MB


def test_before_any_model_a_variant_new_to_its_user_is_sized_like_jobs_of_its_kind(tmp_path):
    """A user's first run of a notebook in a mode they never used (``full`` after
    ``sample``) is no re-run: their runs of the other mode say nothing of its size, so
    it gets no less than jobs of its kind reach -- while a re-run of the mode they know
    keeps the rules' limit from their own runs."""
    def run(i, user, mode, peak_mb):
        return dict(_done(i, user=user, peak_mb=peak_mb), imports=["torch", "numpy"],
                    params={"n_rows": 1000, "mode": mode})

    heavy = [run(i, f"u{i % 4}", "full", 6000 + 10 * i) for i in range(20)]
    own = [run(20 + i, "newbie", "sample", 300) for i in range(3)][::-1]
    sizer = Sizer(tmp_path, BOUNDS, min_jobs=50)
    sizer.retrain(heavy + own)
    assert sizer.bundle.model is None and "torch" in sizer.bundle.kinds
    job = dict(_job(user="newbie"), imports=["torch", "numpy"])
    full = sizer.size(dict(job, params={"n_rows": 1000, "mode": "full"}), own)
    assert full["basis"] == "user-history" and full["allocated"]["memory"] >= 6000 * MB
    rerun = sizer.size(dict(job, params={"n_rows": 1000, "mode": "sample"}), own)
    assert rerun["basis"] == "user-history" and rerun["allocated"]["memory"] < 500 * MB


def test_the_rules_candidate_grows_only_with_the_parameters_the_model_shows_move_memory(tmp_path):
    """A sweep over ``iters`` beyond every earlier run is no larger input once the model's
    pooled slopes show memory flat in it: the rules' limit (a candidate the scoreboard may
    serve) is their usual headroom over the runs, not grown as for more data."""
    history = [dict(_job(n_rows=n), params={"n_rows": n, "iters": 10 + 37 * i % 900},
                    submit_time=1_700_000_000 + 600 * i, status="succeeded",
                    allocated={"cpu": 1, "memory": 4 * GB, "timeout": 3600},
                    used={"peak_memory": (100 + n / 100) * (1 + 0.01 * (i % 3)) * MB, "cpu_seconds": 100,
                          "wall_seconds": 120.0})
               for i, n in enumerate([1000, 10000, 100000] * 40)]
    sizer = Sizer(tmp_path, BOUNDS)
    sizer.retrain(history, now=1_700_000_000 + 600 * 121)
    slopes = sizer.bundle.model.slopes["memory"]
    assert abs(slopes["iters"]) < 0.05 < slopes["n_rows"]
    own = history[::-1][:200]
    job = dict(_job(n_rows=10000), params={"n_rows": 10000, "iters": 50000})
    rules = sizer.size(job, own, 1_700_000_000 + 600 * 122)["memory_policy"]["candidates"]["rules"]
    assert rules <= 1.3 * 1.05 * 1.03 * 200 * MB + MB  # the runs' maximum with headroom, not grown 6x
    # a larger input still grows it
    more = dict(job, params={"n_rows": 300000, "iters": 10})
    assert sizer.size(more, own, 1_700_000_000 + 600 * 122)["memory_policy"]["candidates"]["rules"] > 2 * rules


def test_a_busy_hours_cpu_share_leaves_a_long_job_enough_cpu_to_end_within_the_longest_timeout(tmp_path):
    from demand.policy import share_cpu

    alloc = {"cpu": 4.0, "memory": GB, "timeout": 7200.0}
    # 4 cores for 6,000 s at the hour's share of half a core: 48,000 s, far past the longest timeout
    out = share_cpu(alloc, 0.5, {}, 4.0, cpu_seconds=4 * 6000.0, longest=7200.0)
    assert out["cpu"] * 7200.0 >= 4 * 6000.0
    assert share_cpu(alloc, 0.5, {}, 4.0, cpu_seconds=600.0, longest=7200.0)["cpu"] == 0.5  # a short job shares
    asked = dict(alloc, cpu=0.5)  # (requests_win put the request in)
    assert share_cpu(asked, 0.5, {"cpu": 0.5}, 4.0, cpu_seconds=4 * 6000.0, longest=7200.0)["cpu"] == 0.5
    # the sizer gives the floor from the model's estimates
    sizer = Sizer(tmp_path, BOUNDS)
    history = [dict(h, used=dict(h["used"], cpu_seconds=3.6 * 6000.0, wall_seconds=6000.0)) for h in _history(240)]
    sizer.retrain(history)
    ann = [h for h in history if h["user"] == "ann"][::-1]
    out = sizer.size(_job(), ann, cpu_share=0.5)
    assert out["basis"] == "model" and out["allocated"]["cpu"] * BOUNDS["timeout"][1] >= 3.6 * 6000.0


def test_a_first_run_before_the_first_bundle_gets_twice_the_default(tmp_path):
    """Issue 26: the no-model phase's kills were first runs of notebooks new to their users,
    sized at the admin's 2 GiB default before anything had finished (1.0-1.7x short for
    most): until the first bundle a first run gets twice the default, and says so."""
    sizer = Sizer(tmp_path, BOUNDS)
    out = sizer.size(_job(user="newbie"), [])
    assert out["allocated"]["memory"] == 4 * GB and out["basis"] == "cold-start (first run: 2x the default)"
    # A notebook with a run of its own is sized by that run, not by the prior.
    own = sizer.size(_job(), [_done(1, peak_mb=300)])
    assert own["basis"] == "user-history" and own["allocated"]["memory"] < 1 * GB
    # From the first bundle on, what jobs of its kind reached is the evidence instead.
    sizer.retrain([_done(i, user=f"u{i}", peak_mb=500) for i in range(12)])
    assert sizer.bundle is not None and sizer.bundle.model is None
    later = sizer.size(_job(user="newbie"), [])
    assert later["allocated"]["memory"] == 2 * GB and later["basis"] == "cold-start"
    # 1: the default alone (the replay's rules baseline, which never gets a bundle).
    assert Sizer(tmp_path / "plain", BOUNDS, first_run_factor=1.0).size(_job(), [])["allocated"]["memory"] == 2 * GB
    from demand.replay.policies import Model, Rules
    job = dict(_job(user="newbie"), id=0, submit_time=1_700_000_000)
    assert Model().size(job, 1_700_000_000)["memory"] == 4 * GB
    assert Rules().size(job, 1_700_000_000)["memory"] == 2 * GB


def test_a_throttled_run_says_its_notebook_needs_more_cpu_than_it_used(tmp_path):
    """A run that kept all the cpu it had busy was held back: a 7-core job sized at the
    default 1 core ran 7x longer, and its next run, sized by the rules at 1.1x the one core
    it could use, timed out at the admin's maximum (habits, seed 3)."""
    def run(cores):
        done = _done(1, wall=1000.0)
        done["used"] = dict(done["used"], cpu_seconds=1000.0 * cores)
        return done
    busy = Sizer(tmp_path, BOUNDS).size(_job(), [run(1.0)])
    idle = Sizer(tmp_path, BOUNDS).size(_job(), [run(0.5)])
    assert busy["basis"] == idle["basis"] == "user-history"
    assert busy["allocated"]["cpu"] >= 2.0
    assert idle["allocated"]["cpu"] < 0.7


def test_an_immature_models_quoted_odds_are_no_lower_than_its_window_can_show(tmp_path):
    # 60 calibration jobs: the next job exceeds even the largest of their errors 1 time in 61,
    # however high the quantile its limit was taken at (the early models quoted 0.1% and were killed)
    sizer = Sizer(tmp_path, BOUNDS)
    history = _history(240)
    sizer.retrain(history)
    model = sizer.bundle.model
    n = model.metrics["memory"]["n_calibration"]
    assert not model.mature and model.kill_price is not None
    ann = [h for h in history if h["user"] == "ann"][::-1]
    for job, mine in ((_job(n_rows=3000), ann), (_job(user="zed", imports=["polars"], code_cells=7), [])):
        assert model.predict(job, history_summary(job, mine), None)["memory_kill_odds"] >= 1 / (n + 1)


def test_a_sweeps_queued_runs_are_lowered_only_within_what_its_finished_runs_covered(tmp_path):
    """Re-sized after some of its runs ended, a sweep's queued run that re-runs what they covered gets
    what a submission now would; one beyond them keeps what it holds, or more, never less."""
    sizer = Sizer(tmp_path, BOUNDS)
    history = [_done(i, n_rows=1000, peak_mb=110) for i in range(3)][::-1]
    held = {"cpu": 1.0, "memory": 4 * GB, "timeout": 3600}
    submitted = {"memory_policy": {"chosen": "widest", "candidates": {"widest": 4 * GB}}}  # (its submission's)
    seen, beyond, short = sizer.resize_queued(
        [_job(n_rows=1000, allocated=held, predicted=submitted), _job(n_rows=100_000, allocated=held),
         _job(n_rows=100_000, allocated=dict(held, memory=300 * MB))], history, now=1_700_100_000)
    fresh = sizer.size(_job(n_rows=100_000), history, now=1_700_100_000)["allocated"]["memory"]
    assert 300 * MB < fresh < 4 * GB  # (what a submission now would get beyond the runs: less than held)
    assert seen["allocated"]["memory"] == sizer.size(_job(n_rows=1000), history, now=1_700_100_000)[
        "allocated"]["memory"] < 1 * GB and "memory_kept" not in seen
    assert beyond["allocated"]["memory"] == 4 * GB
    assert beyond["memory_kept"] == {"held": 4 * GB, "sized": fresh}
    assert short["allocated"]["memory"] == fresh and "memory_kept" not in short  # raised anywhere
    # the scoreboard scores each on its submission's record, never on one made with its sweep's runs known
    assert seen["memory_policy"] == submitted["memory_policy"]
    assert "memory_policy" not in beyond and "memory_policy" not in short
    for out in (seen, beyond, short):
        _within(out["allocated"])


def test_a_run_is_covered_only_by_one_earlier_run_at_least_as_large_in_every_parameter():
    from demand.sizing import covered, within_seen

    def run(i, **params):
        return dict(_done(i), params=params)

    history = [run(1, rows=10, cols=1), run(0, rows=1, cols=10)]
    both = dict(_job(), params={"rows": 10, "cols": 10})
    summary = history_summary(both, history, 1_700_100_000)["memory"]
    assert within_seen(summary) and not covered(summary)  # (each parameter seen, never together)
    small = history_summary(dict(_job(), params={"rows": 5, "cols": 1}), history, 1_700_100_000)["memory"]
    assert covered(small)
