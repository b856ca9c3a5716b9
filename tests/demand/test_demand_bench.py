"""The demand benchmark replays every trace as the service dispatches it."""

import json

from bench import bench_demand
from hub_service.dispatch import Dispatcher


def _replay(tmp_path, *extra):
    out = tmp_path / "out.json"
    bench_demand.main(["--families", "sweeps", "--seeds", "1", "--days", "2", "--users", "4",
                       "--policies", "fixed", "--json", str(out), *extra])
    return json.loads(out.read_text())["sweeps/1"]


def test_a_users_burst_waits_queued_as_the_services_dispatcher_holds_it(tmp_path, capsys):
    held = _replay(tmp_path)
    assert held["per_user"] == Dispatcher.class_traits()["per_user"].default_value == 2
    # a sweep's runs beyond the user's two wait in the queue, which is where a kill can
    # still re-size them ...
    assert held["policies"]["vpa"]["wait_mean_s"] > 0
    # ... and without the limit the whole sweep starts at once: nothing waits
    free = _replay(tmp_path, "--per-user", "0")
    assert free["per_user"] is None and free["policies"]["vpa"]["wait_mean_s"] == 0
    assert held["jobs"] == free["jobs"]


def test_runs_replayed_under_other_per_user_limits_do_not_merge(tmp_path, capsys):
    entry = {"jobs": 3, "seconds": 1.0, "policies": {}}
    for name, per_user in (("a.json", 2), ("b.json", None)):
        (tmp_path / name).write_text(json.dumps({"sweeps/1": dict(entry, per_user=per_user)}))
    try:
        bench_demand.main(["--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    except SystemExit as exc:
        assert "--per-user" in str(exc)
    else:
        raise AssertionError("runs of other --per-user limits merged")


def test_shifts_replay_the_model_again_with_its_retraining_moved_and_print_the_range(tmp_path, capsys, monkeypatch):
    schedules, simulate = [], bench_demand.simulate
    monkeypatch.setattr(bench_demand, "simulate", lambda *a, **kw: (schedules.append(kw["retrain_hours"]),
                                                                   simulate(*a, **kw))[1])
    out = tmp_path / "out.json"
    bench_demand.main(["--families", "sweeps", "--seeds", "1", "--days", "3", "--users", "6",
                       "--policies", "model", "--shifts", "2", "--json", str(out)])
    replay = json.loads(out.read_text())["sweeps/1"]
    noise, model = replay["shifted"], replay["policies"]["model"]
    assert len(noise["kills"]) == len(noise["mem_slack"]) == 2
    assert all(0.0 < s < 1.0 for s in noise["mem_slack"]) and all(0 <= k <= replay["jobs"] for k in noise["kills"])
    assert schedules == [6 + 1 / 60, 6 + 2 / 60]  # (the main replay retrains every 6 hours, as the service)
    printed = capsys.readouterr().out
    assert (f"model with its retraining moved by 1-2 min: kills {min(noise['kills'])}-{max(noise['kills'])} "
            f"(this run {round(model['kill_rate'] * model['jobs'])})") in printed


def test_a_negative_number_of_shifts_is_refused_before_anything_runs(capsys):
    try:
        bench_demand.main(["--shifts", "-1"])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        raise AssertionError("--shifts -1 was taken")
    assert "--shifts: the number of shifted replays, 0 or more, not -1" in capsys.readouterr().err
