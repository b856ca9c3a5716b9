"""The scoreboard: every policy scored on each finished job, and the sizer serving the one it trusts."""

import math

import pytest

from demand import scoreboard
from demand.policy import GB, MB
from demand.recent import recent_limit
from demand.scoreboard import KEY, choose, outcomes, tally
from demand.sizing import Sizer

T0 = 1_700_000_000.0


def finished(peak_mb, candidates_mb, status="succeeded", reason=None, allocated_mb=None, t=T0, wall=100.0, user="u"):
    """A finished job's record as the service keeps it, with every policy's limit recorded."""
    return {"user": user, "submit_time": t, "end_time": t + wall, "status": status, "reason": reason,
            "code_cells": 3, "source_bytes": 300, "imports": ["pandas"], "params": {"n": 10},
            "used": {"peak_memory": peak_mb * MB, "wall_seconds": wall, "cpu_seconds": wall},
            "allocated": {"memory": (allocated_mb or candidates_mb.get("rules", peak_mb)) * MB},
            "predicted": {KEY: {"candidates": {p: v * MB for p, v in candidates_mb.items()}}}}


def test_a_limit_below_the_peak_is_a_kill_above_it_slack():
    scored = outcomes(finished(100, {"rules": 80, "recent": 100, "default": 400}))
    assert scored["rules"][0] is True
    assert scored["recent"] == (False, 100 * 100.0, 100 * 100.0)
    assert scored["default"] == (False, 400 * 100.0, 100 * 100.0)
    # the kill's cost counts the killed attempt and a retry at twice the limit
    assert scored["rules"][1] == pytest.approx(80 * 100 * 0.8 + 160 * 100)


def test_an_oom_killed_job_scores_only_the_limits_that_would_have_been_killed_too():
    killed = finished(200, {"rules": 200, "recent": 150, "default": 2048}, status="failed", reason="oom_killed",
                      allocated_mb=200)
    assert set(outcomes(killed)) == {"rules", "recent"}
    assert all(k for k, _, _ in outcomes(killed).values())
    # a job that failed in a cell, or without candidates, scores nothing
    assert outcomes(finished(100, {"rules": 80}, status="failed", reason="cell_error")) is None
    assert outcomes(dict(finished(100, {"rules": 80}), predicted={})) is None


def test_the_tally_keeps_the_newest_window():
    records = [finished(100, {"rules": 50 if i < 3 else 200}) for i in range(10)]
    board = tally(records, window=3)
    assert board["_jobs"] == 3 and board["rules"]["kills"] == 3
    assert tally(records, window=10)["rules"]["kills"] == 3


def _board(policy_rows, jobs):
    board = {p: {"jobs": n, "kills": k, "reserved": res, "used": 1.0} for p, (n, k, res) in policy_rows.items()}
    board["_jobs"] = jobs
    return board


def test_the_tightest_policy_within_the_budget_is_chosen_and_says_why():
    own = _board({"rules": (60, 0, 3.0), "recent": (60, 0, 1.5), "default": (60, 0, 10.0), "widest": (60, 0, 10.0)},
                 60)
    everyone = _board({"rules": (1000, 2, 3.0), "recent": (1000, 3, 1.5), "default": (1000, 0, 10.0),
                       "widest": (1000, 0, 10.0)}, 1000)
    candidates = {"rules": 3 * GB, "recent": 1.5 * GB, "default": 2 * GB, "widest": 3 * GB}
    choice = choose(candidates, "rules", own, everyone)
    assert (choice.policy, choice.group) == ("recent", "user")
    assert choice.odds < scoreboard.KILL_BUDGET and "recent" in choice.why and "unused" in choice.why


def test_a_policy_that_kills_elsewhere_is_not_trusted_on_a_short_clean_run_of_one_user():
    own = _board({"rules": (25, 0, 3.0), "recent": (25, 0, 1.5), "widest": (25, 0, 9.0)}, 25)
    everyone = _board({"rules": (1000, 2, 3.0), "recent": (1000, 70, 1.5), "widest": (1000, 0, 9.0)}, 1000)
    choice = choose({"rules": 3.0, "recent": 1.5, "widest": 3.0}, "rules", own, everyone)
    assert choice.policy == "rules"


def test_when_no_policy_meets_the_budget_the_least_likely_to_kill_serves_if_not_far_wider():
    # slack: model 1 - 1/1.2 = 17%, rules 23%, widest 25% (within 10 points of the model's)
    own = _board({"model": (100, 5, 1.2), "rules": (100, 8, 1.3), "widest": (100, 2, 1.33)}, 100)
    choice = choose({"model": 1.0, "rules": 1.0, "widest": 2.0}, "model", own, None)
    assert choice.policy == "widest" and "none affordable was within" in choice.why
    # a widest that holds four times the peaks (75% unused) buys its fewer kills too dearly
    own["widest"]["reserved"] = 4.0
    assert choose({"model": 1.0, "rules": 1.0, "widest": 2.0}, "model", own, None).policy == "model"


def test_too_little_evidence_keeps_the_sizers_default():
    own = _board({"recent": (5, 0, 1.1)}, 5)
    choice = choose({"model": 1.0, "recent": 0.5}, "model", own, _board({"recent": (50, 0, 1.1)}, 50))
    assert (choice.policy, choice.group, choice.odds) == ("model", "default", None)


def test_a_policy_scored_on_too_few_jobs_of_the_group_is_not_offered():
    own = _board({"rules": (40, 0, 3.0), "model": (5, 0, 1.1)}, 40)
    assert choose({"rules": 3.0, "model": 1.0}, "rules", own, None).policy == "rules"


def test_the_recent_peaks_give_the_90th_percentile_plus_15_percent_and_a_kill_a_bump():
    history = [finished(100 + i, {}, t=T0 - 60 * i) for i in range(10)]
    assert recent_limit(history, T0) == pytest.approx(108 * MB * 1.15)
    killed = finished(0, {}, status="failed", reason="oom_killed", allocated_mb=1000, t=T0)
    assert recent_limit([killed], T0) == pytest.approx(1200 * MB * 1.15)
    assert recent_limit([], T0) is None


def job_of(t):
    return {"user": "u", "submit_time": t, "code_cells": 3, "source_bytes": 300, "imports": ["pandas"],
            "params": {"n": 10}}


def test_the_sizer_records_every_policy_and_serves_the_one_the_users_scores_trust(tmp_path):
    sizer = Sizer(tmp_path / "models", bounds={"memory": (256 * MB, 16 * GB)}, min_jobs=10**6)
    # 150 finished jobs of one notebook at 1 GB: the rules (1.3x the maximum) never killed, and
    # the recent peaks' limit (1.15x) left less unused and never killed either.
    history = [finished(1000, {"rules": 1400, "recent": 1150, "default": 2048, "widest": 2048},
                        t=T0 - 600 * i) for i in range(150)]
    before = sizer.size(dict(job_of(T0), submit_time=T0 + 60), history, T0 + 60)[KEY]
    # (no policy is trusted at the budget on one user's 100 jobs alone: everyone's board must agree)
    assert before["chosen"] == "rules" and before["group"] == "user"
    sizer.retrain(history, now=T0)  # a bundle without a model: everyone's board
    assert sizer.bundle.model is None and sizer.bundle.scoreboard["recent"]["jobs"] == 150
    job = job_of(T0 + 60)
    out = sizer.size(job, history, T0 + 60)
    record = out[KEY]
    # (everyone's runs of this notebook decide: 150 of them scored)
    assert record["default"] == "rules" and record["chosen"] == "recent" and record["group"] == "notebook"
    assert set(record["candidates"]) == {"rules", "recent", "default", "widest"}
    assert out["allocated"]["memory"] == record["candidates"]["recent"] < record["candidates"]["rules"]
    assert record["candidates"]["widest"] == max(record["candidates"].values())
    assert "recent" in record["why"]
    # once the recent peaks' limit kills a few of the user's jobs, the rules serve again, before
    # the next fit has seen the kills
    killing = [finished(1000, {"rules": 1400, "recent": 900, "default": 2048, "widest": 2048},
                        t=T0 + 10 + i) for i in range(5)]
    again = sizer.size(dict(job, submit_time=T0 + 100), killing + history, T0 + 100)
    assert again[KEY]["chosen"] == "rules"


def test_a_tighter_policy_does_not_serve_a_job_beyond_its_notebooks_earlier_runs(tmp_path):
    """The board scores the recent peaks on re-runs at n=10; a run at n=1000 is another
    job, on which the history-based policies know nothing: the default serves it."""
    from demand.features import history_summary
    from demand.sizing import within_seen

    sizer = Sizer(tmp_path / "models", bounds={"memory": (256 * MB, 16 * GB)}, min_jobs=10**6)
    history = [finished(1000, {"rules": 1400, "recent": 1150, "default": 2048, "widest": 2048},
                        t=T0 - 600 * i) for i in range(150)]
    sizer.retrain(history, now=T0)
    same = job_of(T0 + 60)
    larger = dict(same, params={"n": 1000})
    assert within_seen(history_summary(same, history, T0 + 60)["memory"])
    assert not within_seen(history_summary(larger, history, T0 + 60)["memory"])
    assert not within_seen(history_summary(dict(same, params={"n": 10, "mode": "full"}), history, T0 + 60)["memory"])
    assert sizer.size(same, history, T0 + 60)[KEY]["chosen"] == "recent"
    out = sizer.size(larger, history, T0 + 60)
    record = out[KEY]
    assert record["candidates"]["recent"] < record["candidates"]["rules"]
    assert record["chosen"] == "rules" and "beyond" in record["why"] and "would choose recent" in record["why"]
    assert out["allocated"]["memory"] >= record["candidates"]["rules"]


def test_a_tighter_policy_does_not_serve_below_an_earlier_run_with_no_larger_input(tmp_path):
    """The board trusts the recent peaks (1.15 GB) on the re-runs at n=10; a few newer runs at
    n=100 peaked at 3 GB. A run at n=100 needs at least that, so the recent peaks' limit may not
    serve it, whatever they scored; at n=50 no earlier run with no more data peaked above it."""
    from demand.features import history_summary
    from demand.sizing import least_need

    sizer = Sizer(tmp_path / "models", bounds={"memory": (256 * MB, 16 * GB)}, min_jobs=10**6)
    scored = [finished(1000, {"rules": 1400, "recent": 1150, "default": 2048, "widest": 2048},
                       t=T0 - 600 * i) for i in range(150)]
    sizer.retrain(scored, now=T0)
    larger = [dict(finished(3000, {}, t=T0 + 10 + i), params={"n": 100}, predicted={}) for i in range(3)]
    history = larger[::-1] + scored
    big, middle = dict(job_of(T0 + 60), params={"n": 100}), dict(job_of(T0 + 60), params={"n": 50})
    assert least_need(history_summary(big, history, T0 + 60)["memory"]) == pytest.approx(3000 * MB)
    assert least_need(history_summary(middle, history, T0 + 60)["memory"]) == pytest.approx(1000 * MB)
    assert sizer.size(middle, history, T0 + 60)[KEY]["chosen"] == "recent"
    out = sizer.size(big, history, T0 + 60)
    record = out[KEY]
    assert record["candidates"]["recent"] < 3000 * MB <= record["candidates"]["rules"]
    assert record["chosen"] == "rules" and "no larger parameters" in record["why"]
    assert "would choose recent" in record["why"]
    assert out["allocated"]["memory"] >= 3000 * MB


def test_a_retry_is_sized_by_its_floors_not_by_the_scoreboard(tmp_path):
    sizer = Sizer(tmp_path / "models")
    job = {"user": "u", "code_cells": 3, "source_bytes": 300, "imports": [], "params": {},
           "retry_of": {"reason": "oom_killed", "allocated": {"memory": 512 * MB, "cpu": 1, "timeout": 60},
                        "used": {"peak_memory": 512 * MB}}}
    out = sizer.size(job, [], T0)
    assert KEY not in out and out["allocated"]["memory"] >= 1024 * MB


def test_the_report_shows_each_users_board_and_the_policies_that_sized_jobs():
    history = [dict(finished(1000, {"rules": 1400, "recent": 900}, t=T0 - i, user=u),
                    predicted={KEY: {"chosen": "rules", "candidates": {"rules": 1400 * MB, "recent": 900 * MB}}})
               for u in ("ann", "ben") for i in range(3)]
    report = scoreboard.report(history, default="rules")
    groups = {g["group"]: g for g in report["groups"]}
    assert groups["all"]["jobs"] == 6 and groups["user ann"]["rows"]["recent"]["kills"] == 3
    assert groups["user ben"]["rows"]["rules"] == {"jobs": 3, "kills": 0, "odds": pytest.approx(
        scoreboard.PRIOR_JOBS * scoreboard.DEFAULT_PRIOR_ODDS / (scoreboard.PRIOR_JOBS + 6) * (scoreboard.PRIOR_JOBS) /
        (scoreboard.PRIOR_JOBS + 3), abs=1e-5), "slack": pytest.approx(1 - 1000 / 1400, abs=1e-4)}
    assert report["sized_by"] == {"rules": 6}
    assert all(math.isfinite(r["odds"]) for g in report["groups"] for r in g["rows"].values())


def test_a_notebooks_board_decides_before_its_users_and_the_users_new_kills_still_count():
    everyone = _board({"model": (2000, 4, 2.0), "widest": (2000, 1, 2.4)}, 2000)
    spiky = _board({"model": (80, 6, 2.0), "widest": (80, 0, 2.4)}, 80)   # a notebook with a high mode
    calm_user = _board({"model": (60, 0, 2.0), "widest": (60, 0, 2.4)}, 60)
    choice = choose({"model": 1.0, "widest": 3.0}, "model", calm_user, everyone, notebook=spiky)
    assert (choice.policy, choice.group) == ("widest", "notebook") and "this notebook's" in choice.why
    # a calm notebook, but this user's newest runs of it were killed (the fit has not seen them yet)
    calm = _board({"model": (80, 0, 2.0), "widest": (80, 0, 2.4)}, 80)
    assert choose({"model": 1.0, "widest": 3.0}, "model", calm_user, everyone, notebook=calm).policy == "model"
    killed_user = _board({"model": (60, 4, 2.0), "widest": (60, 0, 2.4)}, 60)
    assert choose({"model": 1.0, "widest": 3.0}, "model", killed_user, everyone, notebook=calm).policy == "widest"
    # but not a widest that would leave far more unused than the model (75% against 50%)
    spiky["widest"]["reserved"] = 4.0
    assert choose({"model": 1.0, "widest": 3.0}, "model", calm_user, everyone, notebook=spiky).policy == "model"


def test_a_scoreboard_that_does_not_serve_still_records_and_says_what_it_would_choose(tmp_path):
    sizer = Sizer(tmp_path / "models", bounds={"memory": (256 * MB, 16 * GB)}, min_jobs=10**6, portfolio=False)
    history = [finished(1000, {"rules": 1400, "recent": 1150, "default": 2048, "widest": 2048},
                        t=T0 - 600 * i) for i in range(150)]
    sizer.retrain(history, now=T0)
    out = sizer.size(job_of(T0 + 60), history, T0 + 60)
    record = out[KEY]
    assert (record["chosen"], record["group"]) == ("rules", "off") and "would choose recent" in record["why"]
    assert out["allocated"]["memory"] == record["candidates"]["rules"] > record["candidates"]["recent"]


def test_everyones_board_alone_may_widen_a_limit_but_not_tighten_it(tmp_path):
    """All users' board trusts the recent peaks on another user's notebook; this user has
    five runs of their own notebook, too few for a board: the sizer's default serves them,
    not the tighter limit everyone's jobs vouch for."""
    sizer = Sizer(tmp_path / "models", bounds={"memory": (256 * MB, 16 * GB)}, min_jobs=10**6)
    others = [finished(1000, {"rules": 1400, "recent": 1150, "default": 2048, "widest": 2048},
                       t=T0 - 60 * i, user="v") for i in range(300)]
    mine = [dict(finished(1000, {"rules": 1400, "recent": 1150}, t=T0 - 60 * i), code_cells=7) for i in range(5)]
    sizer.retrain(others + mine, now=T0)
    job = dict(job_of(T0 + 60), code_cells=7)
    out = sizer.size(job, mine, T0 + 60)
    record = out[KEY]
    assert record["candidates"]["recent"] < record["candidates"]["rules"]  # a tighter limit was there to take
    assert record["group"] == "all" and record["chosen"] == "rules"
    assert "would choose recent" in record["why"] and "all users' board" in record["why"]
    assert out["allocated"]["memory"] == record["candidates"]["rules"]
    # ... while a wider one everyone's board trusts still serves: the recent peaks of a user
    # whose last job peaked at 3 GB hold more than the rules' 1.3x of this notebook's runs
    big = [dict(finished(3000, {"rules": 4000, "recent": 3450}, t=T0 - 30), code_cells=11)]
    wider = sizer.size(job, big + mine, T0 + 60)[KEY]
    assert wider["candidates"]["recent"] > wider["candidates"]["rules"] and wider["chosen"] == "recent"


def test_the_default_serves_until_its_own_jobs_show_it_over_the_budget():
    """One kill in everyone's first 200 scored jobs is the model's own aim, not a miss: the
    default keeps serving, where a prior at the fallbacks' 3% would have found it over the
    budget and served the widest. Six kills are a miss, and the widest serves."""
    candidates = {"model": 1.0, "widest": 2.0}
    once = _board({"model": (200, 1, 1.2), "widest": (200, 0, 1.3)}, 200)
    choice = choose(candidates, "model", {}, once)
    assert (choice.policy, choice.group) == ("model", "all") and choice.odds < scoreboard.KILL_BUDGET
    # the prior is the default's alone: the same board with the widest as the default keeps it
    assert choose(candidates, "widest", {}, once).policy == "widest"
    often = _board({"model": (200, 6, 1.2), "widest": (200, 0, 1.3)}, 200)
    assert choose(candidates, "model", {}, often).policy == "widest"


def test_the_widest_is_bounded_by_the_reach_of_a_retry_at_the_models_limit():
    from demand.sizing import RETRY_FACTOR, RETRY_MAX_FACTOR, widest
    # the history rules' 9 GB (a window's largest run, grown with the data) is more than the
    # model's limit and its retry together reserve: the widest stops at the retry's size
    candidates = {"model": 1 * GB, "rules": 9 * GB, "recent": 0.5 * GB, "default": 2 * GB}
    assert widest(candidates, 1 * GB, RETRY_FACTOR) == 2 * GB
    assert widest(candidates, 1 * GB, RETRY_MAX_FACTOR) == 4 * GB
    # within that bound it is still the largest of them all
    assert widest(dict(candidates, rules=1.5 * GB), 1 * GB, RETRY_FACTOR) == 2 * GB
    # never below what the default serves (an immature model's limit under the rules' floor) ...
    assert widest(candidates, 3 * GB, RETRY_FACTOR) == 3 * GB
    # ... and unbounded before any model gives a limit, or without a reach (a notebook new to the user)
    assert widest({"rules": 9 * GB, "default": 2 * GB}, 9 * GB, RETRY_FACTOR) == 9 * GB
    assert widest(candidates, 1 * GB, None) == 9 * GB


def _widest_recorded(tmp_path, params):
    """The candidates the sizer records for a job of ``params`` after five runs of its
    notebook (``{"n": 10}``) that peaked at 4 GB, with the model's limit at 1 GB."""
    from demand.features import history_summary
    sizer = Sizer(tmp_path / "models", bounds={"memory": (256 * MB, 16 * GB)}, min_jobs=10**6)
    history = [finished(4000, {"rules": 5200, "default": 2048}, t=T0 - 600 * i) for i in range(5)]
    job = dict(job_of(T0 + 60), params=params)
    summary = history_summary(job, history, T0 + 60)
    predicted = {"memory": 1024.0 * MB, "cpu": 1.0, "timeout": 3600.0}
    _, record = sizer._portfolio(job, history, T0 + 60, summary, predicted, "model",
                                 {"memory_model": 1024.0 * MB, "cores": 1.0})
    return record["candidates"]


def test_the_sizer_records_a_widest_no_more_than_twice_the_models_limit_on_a_re_run(tmp_path):
    """A re-run within its notebook's earlier runs: the widest recorded and scored is the
    model's retry size (twice its limit), not the history rules' 1.3x of the 4 GB runs."""
    candidates = _widest_recorded(tmp_path, {"n": 10})
    assert candidates["rules"] > 4 * GB
    assert candidates["widest"] == 2 * candidates["model"] == 2 * GB


def test_a_run_beyond_its_notebooks_earlier_runs_gets_a_widest_up_to_the_retrys_largest_jump(tmp_path):
    """Ten times the data of every earlier run: the model's guess may be more than twice
    off, and a kill's retry jumps up to RETRY_MAX_FACTOR times -- so may the widest (the
    rules' limit, grown with the data, is more still)."""
    from demand.sizing import RETRY_MAX_FACTOR
    candidates = _widest_recorded(tmp_path, {"n": 100})
    assert candidates["rules"] > RETRY_MAX_FACTOR * GB
    assert candidates["widest"] == RETRY_MAX_FACTOR * candidates["model"]


def test_a_notebooks_first_run_by_the_user_keeps_the_unbounded_widest(tmp_path):
    """The same model's limit for a notebook the user has never run (another notebook's 4 GB runs
    only): the model can be more than twice off there, so the widest stays the largest of all."""
    from demand.features import history_summary
    sizer = Sizer(tmp_path / "models", bounds={"memory": (256 * MB, 16 * GB)}, min_jobs=10**6)
    other = dict(job_of(T0 + 60), code_cells=40, source_bytes=90_000, imports=["torch"], params={"epochs": 3})
    history = [dict(finished(4000, {"rules": 5200, "default": 2048}, t=T0 - 600 * i),
                    code_cells=40, source_bytes=90_000, imports=["torch"], params={"epochs": 3})
               for i in range(5)]
    job = job_of(T0 + 60)
    summary = history_summary(job, history, T0 + 60)
    assert summary["memory"]["level"] < 2 and history_summary(other, history, T0 + 60)["memory"]["level"] >= 2
    predicted = {"memory": 512.0 * MB, "cpu": 1.0, "timeout": 3600.0}
    _, record = sizer._portfolio(job, history, T0 + 60, summary, predicted, "model",
                                 {"memory_model": 512.0 * MB, "cores": 1.0})
    candidates = record["candidates"]
    largest = max(v for p, v in candidates.items() if p != "widest")
    assert candidates["widest"] == largest > 2 * candidates["model"]


def test_the_credibility_of_a_groups_record_follows_how_much_the_groups_differ():
    """Kills gathered in one notebook of five: the notebooks differ, and a clean one's own
    record counts (few pseudo-jobs); the same kills spread evenly: a clean record is luck."""
    gathered = [_board({"model": (100, 10 if i == 0 else 0, 1.0)}, 100) for i in range(5)]
    even = [_board({"model": (100, 2, 1.0)}, 100) for _ in range(5)]
    weights = scoreboard.credibility(gathered)
    assert scoreboard.MIN_PRIOR_JOBS <= weights["model"] < 20
    assert scoreboard.credibility(even)["model"] == scoreboard.PRIOR_JOBS
    # a policy scored in fewer than two groups keeps the most
    assert scoreboard.credibility(gathered[:1])["model"] == scoreboard.PRIOR_JOBS


def test_a_notebook_clean_where_the_models_kills_gather_elsewhere_is_served_by_the_model(tmp_path):
    """Everyone's model odds 2%, above the 1% budget; this notebook's 60 runs clean. Weighed
    against 100 pseudo-jobs of everyone's odds they stay above it (1.25%) and the widest
    serves; where the notebooks' kills say they differ, the model does."""
    from types import SimpleNamespace
    everyone = _board({"model": (2000, 40, 2.0), "widest": (2000, 2, 2.4)}, 2000)
    clean = _board({"model": (60, 0, 2.0), "widest": (60, 0, 2.4)}, 60)
    candidates = {"model": 1 * GB, "widest": 1.5 * GB}
    assert choose(candidates, "model", {}, everyone, notebook=clean).policy == "widest"
    weights = {"model": 25.0, "widest": 100.0}
    choice = choose(candidates, "model", {}, everyone, notebook=clean, weights=weights)
    assert (choice.policy, choice.group) == ("model", "notebook")
    assert choice.odds == pytest.approx(25 * (40 + 1.5) / 2100 / 85) and "odds 0.58%" in choice.why
    # the sizer weighs its boards by its bundle's credibility
    sizer = Sizer(tmp_path / "models", bounds={"memory": (256 * MB, 16 * GB)}, min_jobs=10**6)
    job = job_of(T0 + 60)
    sizer.bundle = SimpleNamespace(model=None, scoreboard=everyone, credibility=weights,
                                   notebook_boards={scoreboard.notebook_key(job): clean})
    history = [finished(1000, {"rules": 1300, "default": 2048}, t=T0 - 600 * i) for i in range(5)]
    from demand.features import history_summary
    _, record = sizer._portfolio(job, history, T0 + 60, history_summary(job, history, T0 + 60),
                                 {"memory": 1024.0 * MB, "cpu": 1.0, "timeout": 3600.0}, "model",
                                 {"memory_model": 1024.0 * MB, "cores": 1.0})
    assert (record["chosen"], record["group"]) == ("model", "notebook")


def requesting(peak_mb, asked_mb, t, params=None):
    """A finished job whose user asked for ``asked_mb``: the request scored beside the sizer's policies."""
    record = finished(peak_mb, {"rules": 1400, "recent": 1150, "requested": asked_mb, "default": 2048,
                                "widest": 2048}, t=t)
    return dict(record, requested={"memory": asked_mb * MB}, **({"params": params} if params else {}))


def test_an_advisory_request_serves_where_the_users_requests_fitted_and_is_only_advice_elsewhere(tmp_path):
    """150 runs whose user asked for 1,050 MB and peaked at 1,000: the request never killed and
    left less unused than any other policy, so it serves -- even a run beyond the notebook's
    earlier ones, where a tighter history policy may not (its user typed it for that job). A
    request from a user whose requests killed is advice not taken: the best of the rest serves."""
    fitted = [requesting(1000, 1050, T0 - 600 * i) for i in range(150)]
    sizer = Sizer(tmp_path / "fitted", bounds={"memory": (256 * MB, 64 * GB)}, min_jobs=10**6,
                  memory_requests="advisory")
    sizer.retrain(fitted, now=T0)
    out = sizer.size(dict(job_of(T0 + 60), requested={"memory": 1050 * MB}), fitted, T0 + 60)
    record = out[KEY]
    assert record["chosen"] == "requested" and record["requests"] == "advisory"
    assert out["allocated"]["memory"] == record["candidates"]["requested"] == 1050 * MB
    beyond = dict(job_of(T0 + 60), params={"n": 1000}, requested={"memory": 3000 * MB})
    assert sizer.size(beyond, fitted, T0 + 60)["allocated"]["memory"] == 3000 * MB
    # The widest is of the sizer's own estimates, not a request of many times the need.
    huge = sizer.size(dict(job_of(T0 + 60), requested={"memory": 60 * GB}), fitted, T0 + 60)[KEY]["candidates"]
    assert huge["requested"] == 60 * GB and huge["widest"] < 60 * GB
    # Requests that killed (900 MB for a 1,000 MB peak) are not served: the recent peaks are.
    short = [requesting(1000, 900, T0 - 600 * i) for i in range(150)]
    sizer = Sizer(tmp_path / "short", bounds={"memory": (256 * MB, 64 * GB)}, min_jobs=10**6,
                  memory_requests="advisory")
    sizer.retrain(short, now=T0)
    out = sizer.size(dict(job_of(T0 + 60), requested={"memory": 900 * MB}), short, T0 + 60)
    assert out[KEY]["chosen"] == "recent" and out["allocated"]["memory"] == out[KEY]["candidates"]["recent"]
    assert out["allocated"]["memory"] > 1000 * MB


def test_a_binding_request_is_the_limit_and_is_still_scored(tmp_path):
    short = [requesting(1000, 900, T0 - 600 * i) for i in range(150)]
    sizer = Sizer(tmp_path / "models", bounds={"memory": (256 * MB, 64 * GB)}, min_jobs=10**6)
    sizer.retrain(short, now=T0)
    assert sizer.bundle.scoreboard["requested"] == {"jobs": 150, "kills": 150, "reserved": pytest.approx(
        sizer.bundle.scoreboard["requested"]["reserved"]), "used": pytest.approx(150 * 1000 * 100.0)}
    out = sizer.size(dict(job_of(T0 + 60), requested={"memory": 900 * MB}), short, T0 + 60)
    assert out["allocated"]["memory"] == 900 * MB  # the user's word
    assert out[KEY]["candidates"]["requested"] == 900 * MB and out[KEY]["requests"] == "binding"
    # a job with no request records no such policy, and says nothing of requests
    plain = sizer.size(job_of(T0 + 60), short, T0 + 60)[KEY]
    assert "requested" not in plain["candidates"] and "requests" not in plain
    with pytest.raises(ValueError, match="memory_requests must be one of binding, advisory"):
        Sizer(tmp_path / "other", memory_requests="sometimes")
