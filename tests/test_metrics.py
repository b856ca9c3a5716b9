"""What a running notebook reports: ``PROGRESS: {json}`` lines and ``notebook_jobs.report``, read by the
runner, stored per job by the service, streamed as ``metric`` events and served by ``GET /jobs/{id}/metrics``.

The runner's reading and the service's storing are checked in this process; the whole way -- a real
papermill run under the local executor, behind a real Hub -- by the ``alice`` tests.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import os
import time
from decimal import Decimal
from fractions import Fraction

import pytest
import requests

from hub_service import runner
from hub_service.executors.base import parse_metric
from hub_service.jobs import METRIC_FLUSH_SECONDS
from hub_service.store import JobMetric, Store, job_model
from tests.hubtest import make_notebook

# -- the runner's reading (in this process) ---------------------------------------------------------------


@pytest.fixture
def events(monkeypatch):
    """The events the runner emits, as a list of dicts (its event stream swapped for a buffer)."""
    out = io.StringIO()
    monkeypatch.setattr(runner, "_EVENTS", out)
    return lambda: [json.loads(line) for line in out.getvalue().splitlines()]


def metric_events(all_events):
    return [(e["step"], e["values"]) for e in all_events if e["event"] == "metric"]


def test_a_progress_line_is_a_metric_event_even_split_across_writes_and_other_lines_are_only_logged(events):
    log = io.StringIO()
    reader = runner.MetricReader(log)
    reader.write('hello\nPROGRESS: {"epoch": 3, "lo')
    reader.write('ss": 0.41}\nnot PROGRESS: {"x": 1}\n')
    reader.write('PROGRESS: {"step": 7, "loss": 0.3}')  # no newline yet: read when the run ends
    assert metric_events(events()) == [(0, {"epoch": 3.0, "loss": 0.41})]
    reader.close()
    assert metric_events(events()) == [(0, {"epoch": 3.0, "loss": 0.41}), (7, {"loss": 0.3})]
    assert log.getvalue().startswith('hello\nPROGRESS: {"epoch": 3, "loss": 0.41}\nnot PROGRESS')


def test_a_report_without_a_step_comes_after_its_metrics_last_step(events):
    reader = runner.MetricReader(io.StringIO())
    for line in ('PROGRESS: {"loss": 1}', 'PROGRESS: {"step": 10, "loss": 2}', 'PROGRESS: {"loss": 3}',
                 'PROGRESS: {"acc": 0.5}'):
        reader.line(line)
    assert metric_events(events()) == [(0, {"loss": 1.0}), (10, {"loss": 2.0}), (11, {"loss": 3.0}),
                                       (0, {"acc": 0.5})]


def test_nan_strings_and_a_bad_step_are_refused_with_one_warning_and_the_finite_values_kept(events):
    log = io.StringIO()
    reader = runner.MetricReader(log)
    reader.line('PROGRESS: {"loss": NaN, "name": "resnet", "acc": 0.9}')
    reader.line('PROGRESS: {"loss": Infinity, "ok": true}')
    reader.line('PROGRESS: {"step": -1, "loss": 1}')
    reader.line('PROGRESS: not json')
    assert metric_events(events()) == [(0, {"acc": 0.9})]
    warnings = [line for line in log.getvalue().splitlines() if "refused" in line]
    assert len(warnings) == 1
    assert "loss=NaN" in warnings[0] and 'name="resnet"' in warnings[0]


def test_a_flood_is_capped_with_one_log_line_and_each_metrics_last_value_sent_at_the_end(events):
    log = io.StringIO()
    reader = runner.MetricReader(log, limit=10)
    for step in range(20):
        reader.line("PROGRESS: " + json.dumps({"step": step, "a": step, "b": -step}))
    sent = metric_events(events())
    assert sent == [(step, {"a": float(step), "b": float(-step)}) for step in range(5)]
    reader.close()
    assert metric_events(events())[5:] == [(19, {"a": 19.0, "b": -19.0})]
    assert sum("more than 10 points" in line for line in log.getvalue().splitlines()) == 1


def test_a_job_has_at_most_200_metrics_and_is_told_once(events):
    log = io.StringIO()
    reader = runner.MetricReader(log)
    reader.line("PROGRESS: " + json.dumps({f"m{i}": i for i in range(150)}))
    reader.line("PROGRESS: " + json.dumps({f"m{i}": i for i in range(100, 260)}))
    sent = metric_events(events())
    assert len(sent[0][1]) == 150 and len(sent[1][1]) == 100  # m100..m199 (50 known, then 50 new)
    assert set(sent[1][1]) == {f"m{i}" for i in range(100, 200)}
    assert sum("at most 200 metrics" in line for line in log.getvalue().splitlines()) == 1


def helper_output(tmp_path, monkeypatch, capsys, in_job: bool) -> str:
    """What ``notebook_jobs.report`` prints, installed and imported as a kernel in a job does."""
    monkeypatch.setattr(runner.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(runner, "_HELPER_DIR", None)
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    monkeypatch.delenv(runner.HELPER_ENV, raising=False)
    where = runner.install_helper()
    assert os.environ["PYTHONPATH"].split(os.pathsep) == [where, "/elsewhere"]
    assert os.listdir(where) == ["notebook_jobs.py"]  # nothing else there to shadow a user's module
    if not in_job:
        monkeypatch.delenv(runner.HELPER_ENV)
    spec = importlib.util.spec_from_file_location("notebook_jobs", os.path.join(where, "notebook_jobs.py"))
    helper = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helper)
    capsys.readouterr()
    helper.report(loss=0.5, step=2)
    helper.report(acc=Decimal("0.25"), n=Fraction(3), label="x")  # (numbers JSON has no type for: floats)
    out = capsys.readouterr().out
    runner.remove_helper()
    assert not os.path.exists(where)
    return out


def test_the_helper_prints_progress_lines_in_a_job(tmp_path, monkeypatch, capsys):
    assert helper_output(tmp_path, monkeypatch, capsys, in_job=True).splitlines() == [
        'PROGRESS: {"loss": 0.5, "step": 2}', 'PROGRESS: {"acc": 0.25, "n": 3.0, "label": "x"}']


def test_the_helper_does_nothing_outside_a_job(tmp_path, monkeypatch, capsys):
    assert helper_output(tmp_path, monkeypatch, capsys, in_job=False) == ""


# -- the service's storing (in this process) -------------------------------------------------------------


def test_the_service_refuses_a_malformed_metric_event():
    assert parse_metric({"event": "metric", "step": 2, "values": {"loss": 0.5}}) == (2, {"loss": 0.5})
    for bad in ({"step": -1, "values": {"a": 1}}, {"step": True, "values": {"a": 1}}, {"step": 1, "values": {}},
                {"step": 1, "values": {"a": float("nan")}}, {"step": 1, "values": {"a": "1"}},
                {"step": 1, "values": {"": 1}}, {"step": 1, "values": {"x" * 101: 1}}, {"values": {"a": 1}}):
        assert parse_metric(dict(bad, event="metric")) is None, bad


JOB_FIELDS = dict(input_hash="h", input_kind="ipynb", input_name="n.ipynb")


def test_the_store_keeps_series_in_step_order_filters_them_and_forgets_them_with_the_job(db_url):
    store = Store(db_url)
    try:
        job_id = store.create_job(user="alice", **JOB_FIELDS).id
        store.add_metrics(job_id, [(2, {"loss": 0.5, "acc": 0.7}, 10.0)], {"loss": 0.5, "acc": 0.7})
        store.add_metrics(job_id, [(1, {"loss": 0.9}, 11.0)], {"loss": 0.9, "acc": 0.7})
        assert store.metric_series(job_id) == {"acc": [(2, 0.7, 10.0)],
                                               "loss": [(1, 0.9, 11.0), (2, 0.5, 10.0)]}
        assert store.metric_series(job_id, name="loss", since_step=1) == {"loss": [(2, 0.5, 10.0)]}
        assert job_model(store.get(job_id))["metrics"] == {"loss": 0.9, "acc": 0.7}
        store.clear_metrics(job_id)
        assert store.metric_series(job_id) == {} and job_model(store.get(job_id))["metrics"] == {}
        store.add_metrics(job_id, [(0, {"loss": 1.0}, 12.0)], {"loss": 1.0})
        store.transition(job_id, "running")
        store.transition(job_id, "succeeded")
        assert store.delete(job_id)
        with store.session() as s:
            assert s.query(JobMetric).count() == 0
    finally:
        store.close()


async def test_the_service_stores_no_more_points_nor_metrics_than_its_limits_and_in_batches(tmp_path):
    from tests.fakes import FakeExecutor
    from tests.test_flow import manager_for

    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    manager = manager_for(tmp_path, store, FakeExecutor())
    manager.metric_points_limit, manager.metric_names_limit = 3, 1
    job_id = store.create_job(user="alice", **JOB_FIELDS).id
    for step in range(4):
        manager._on_event(job_id, {"event": "metric", "step": step, "values": {"a": step}})
        manager._on_event(job_id, {"event": "metric", "step": step, "values": {"b": step}})
    assert store.metric_series(job_id) == {}  # (taken, not yet stored: one transaction a batch)
    await asyncio.sleep(METRIC_FLUSH_SECONDS + 0.1)
    series = store.metric_series(job_id)  # (b: a second metric, past the limit of one)
    assert {name: [(step, value) for step, value, _ in points] for name, points in series.items()} == {
        "a": [(0, 0.0), (1, 1.0), (2, 2.0)]}
    assert all(abs(at - time.time()) < 60 for _, _, at in series["a"])  # the runner gave no time: now
    store.close()


async def test_a_run_forgets_earlier_metrics_and_a_job_that_has_none_costs_no_write(tmp_path, monkeypatch):
    """A run reports its metrics anew, so those of an earlier run of the job (a re-queue, a replay) are forgotten
    as it starts; a job that has stored none (every job's first run) has none to forget: no write at its start."""
    from tests.fakes import FakeExecutor
    from tests.test_flow import ended, manager_for, request

    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    manager = manager_for(tmp_path, store, FakeExecutor())
    cleared = []
    clear = store.clear_metrics
    monkeypatch.setattr(store, "clear_metrics", lambda job_id: cleared.append(job_id) or clear(job_id))
    try:
        fresh = await manager.submit(request())
        earlier = await manager.submit(request())
        store.add_metrics(earlier.id, [(0, {"loss": 1.0}, 10.0)], {"loss": 1.0})  # (as a run before left them)
        assert sorted(manager.dispatch_once()) == sorted([fresh.id, earlier.id])
        for job in (fresh, earlier):
            assert (await ended(manager, job.id)).status == "succeeded"
        assert cleared == [earlier.id]
        assert store.metric_series(earlier.id) == {} and store.get(earlier.id).metrics is None
    finally:
        await manager.stop()
        store.close()


# -- the whole way: a real run behind a real Hub -----------------------------------------------------------


def sse(response):
    """The events of a server-sent event stream, as dicts, as they arrive."""
    kind = None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            kind = line[len("event: "):]
        elif line.startswith("data: "):
            yield dict(json.loads(line[len("data: "):]), event=kind)


REPORTING = make_notebook(
    "import json, time\ntime.sleep(1.5)\n"
    "print('PROGRESS: ' + json.dumps({'epoch': 1, 'loss': 0.9}))\ntime.sleep(2)",
    "from notebook_jobs import report\nreport(loss=0.41, step=3)\nreport(accuracy=0.8, step=3)\n"
    "report(loss=0.2, step=5)\nreport(loss=float('nan'), label='x', step=6)",
)


def test_a_notebook_reports_both_ways_live_on_the_event_stream_and_served_in_order(alice, bob):
    job = alice.submit(REPORTING)
    seen = []
    with alice.get(f"jobs/{job['id']}/events", stream=True, timeout=90) as r:
        assert r.status_code == 200
        for event in sse(r):
            seen.append(event)
            if event["event"] == "status" and event["job"]["status"] in ("succeeded", "failed", "cancelled"):
                break
    kinds = [(e["event"], e.get("cell")) for e in seen]
    # the PROGRESS line came while its cell still ran (it sleeps after it), not with the job's end
    first = kinds.index(("metric", None))
    assert first < kinds.index(("cell_finished", 0))
    assert seen[first]["step"] == 0 and seen[first]["values"] == {"epoch": 1.0, "loss": 0.9}
    assert [(e["step"], e["values"]) for e in seen if e["event"] == "metric"][1:] == [
        (3, {"loss": 0.41}), (3, {"accuracy": 0.8}), (5, {"loss": 0.2})]

    done = alice.wait(job["id"])
    assert done["status"] == "succeeded", done
    assert done["metrics"] == {"epoch": 1.0, "loss": 0.2, "accuracy": 0.8}

    body = alice.get(f"jobs/{job['id']}/metrics").json()
    assert body["final"] == done["metrics"]
    series = {s["name"]: [(p["step"], p["value"]) for p in s["points"]] for s in body["series"]}
    assert series == {"accuracy": [(3, 0.8)], "epoch": [(0, 1.0)], "loss": [(0, 0.9), (3, 0.41), (5, 0.2)]}
    only = alice.get(f"jobs/{job['id']}/metrics", params={"name": "loss", "since_step": 0}).json()
    assert [(s["name"], [p["step"] for p in s["points"]]) for s in only["series"]] == [("loss", [3, 5])]
    assert alice.get(f"jobs/{job['id']}/metrics", params={"since_step": "x"}).status_code == 400

    log = alice.get(f"jobs/{job['id']}/logs").text
    refused = [line for line in log.splitlines() if "metrics: refused" in line]
    assert len(refused) == 1 and "loss=NaN" in refused[0] and 'label="x"' in refused[0]

    assert bob.get(f"jobs/{job['id']}/metrics").status_code == 404  # another user's job: as if none
    assert requests.get(alice.url(f"jobs/{job['id']}/metrics")).status_code in (401, 403)


def test_a_flooding_notebook_is_capped_in_its_log_and_keeps_its_last_values(alice):
    # 120 reports of 100 metrics: the runner sends 10,000 points (100 reports), then keeps the last of each
    nb = make_notebook("from notebook_jobs import report\n"
                       "for step in range(120):\n"
                       "    report(step=step, **{f'm{i}': step * 1000 + i for i in range(100)})")
    job = alice.wait(alice.submit(nb)["id"])
    assert job["status"] == "succeeded", job
    assert job["metrics"]["m0"] == 119000 and job["metrics"]["m99"] == 119099
    body = alice.get(f"jobs/{job['id']}/metrics", params={"name": "m7"}).json()
    assert [p["step"] for p in body["series"][0]["points"]] == [*range(100), 119]
    log = alice.get(f"jobs/{job['id']}/logs").text
    assert sum("more than 10000 points" in line for line in log.splitlines()) == 1
