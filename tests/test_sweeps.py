"""Parameter sweeps: a grid (or a list) of parameter values, one job per combination, made all at once or not
at all, followed and compared as one (hub_service/sweeps.py).

The expansion, the checks and the summary are checked in this process; the whole way -- real papermill
runs under the local executor behind a real Hub, the CLI as a process -- by the ``alice`` tests.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import nbformat
import pytest

from sqlalchemy import event

from hub_service.executors.base import INPUT_NOTEBOOK
from hub_service.intake import Bundle, IntakeError, Limits
from hub_service.offload import Offload
from hub_service.planning import siblings
from hub_service.request import JobRequest
from hub_service.store import InvalidTransition, Job, JobMetric, Store, SweepGone
from hub_service.sweeps import Sweeps, best_run, combinations, current, status_of
from hub_service.views import JobViews
from tests.fakes import FakeExecutor
from tests.hubtest import SERVICE, make_notebook
from tests.test_cli import cli
from tests.test_flow import manager_for

#: final loss lr * depth / 3 and acc depth * 10 + lr, reported both ways; lr 0.5 with depth 2 fails
TRAINING = make_notebook(
    "import json\nfrom notebook_jobs import report\n"
    "for step in range(3):\n    report(loss=lr * depth / (step + 1), step=step)\n"
    "print('PROGRESS: ' + json.dumps({'acc': depth * 10 + lr}))",
    "assert not (lr == 0.5 and depth == 2), 'diverged'",
    parameters="lr = 0.1\ndepth = 2",
)
SLEEPING = make_notebook("import time\ntime.sleep(120)", parameters="x = 1")


# -- in this process -----------------------------------------------------------------------------------------


def request_for(nb: dict) -> JobRequest:
    return JobRequest(user="alice", bundle=Bundle(nbformat.reads(json.dumps(nb), as_version=4), "ipynb", "t.ipynb"))


def refusal(form: dict, max_runs: int = 100) -> IntakeError:
    with pytest.raises(IntakeError) as e:
        Sweeps(max_runs=max_runs).expand(form, request_for(TRAINING))
    return e.value


def test_a_grid_is_the_product_in_order_with_a_single_value_the_same_in_every_run():
    grid, requests = Sweeps().expand({"parameters": {"lr": [0.1, 0.2, 0.5], "depth": 3}}, request_for(TRAINING))
    assert grid == {"parameters": {"lr": [0.1, 0.2, 0.5], "depth": [3]}}
    assert [r.parameters for r in requests] == [{"lr": 0.1, "depth": 3}, {"lr": 0.2, "depth": 3},
                                                {"lr": 0.5, "depth": 3}]
    assert combinations({"a": [1, 2], "b": ["x", "y"]}) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"}]
    grid, requests = Sweeps().expand({"runs": '[{"lr": 1}, {"depth": 4}]'}, request_for(TRAINING))  # (multipart)
    assert [r.parameters for r in requests] == [{"lr": 1}, {"depth": 4}]


def test_a_refusal_names_the_value_at_fault_and_a_sweep_over_the_limit_says_the_limit():
    e = refusal({"parameters": {"depth": [1, 2], "lr": [0.1, 0.2, "fast"]}})
    assert (e.status, e.field) == (400, "/parameters/lr/2") and "lr must be a float" in e.message
    assert refusal({"parameters": {"lr": [0.1], "width": [1]}}).field == "/parameters/width"
    assert refusal({"parameters": {"lr": []}}).field == "/parameters/lr"
    assert refusal({"runs": [{"lr": 0.1}, {"depth": "deep"}]}).field == "/runs/1/depth"
    assert refusal({"runs": [{"lr": 0.1}, 3]}).field == "/runs/1"
    assert refusal({"parameters": {"lr": [1]}, "runs": [{"lr": 1}]}).field == "/runs"
    e = refusal({"parameters": {"lr": [0.1] * 4, "depth": [1, 2, 3]}}, max_runs=10)
    assert e.field == "/parameters" and "12 runs (4 x 3)" in e.message and "limit of 10 runs" in e.message


def job(job_id, status, metrics=None, rerun_of=None, **fields):
    return SimpleNamespace(id=job_id, status=status, metrics=metrics or {}, rerun_of=rerun_of, **fields)


def test_a_sweeps_status_and_best_run_come_from_its_current_runs():
    runs = [job("a", "failed", {"loss": 0.1}), job("b", "succeeded", {"loss": 0.5}),
            job("c", "succeeded", {"loss": 0.3}), job("d", "failed", rerun_of="a"), job("e", "running", rerun_of="d")]
    assert [j.id for j in current(runs)] == ["e", "b", "c"]  # (the newest of a's line, in a's place)
    assert status_of(current(runs)) == "running"
    assert status_of([job("x", "succeeded"), job("y", "queued")]) == "queued"
    assert status_of([job("x", "succeeded"), job("y", "cancelled")]) == "cancelled"
    assert status_of([job("x", "failed"), job("y", "cancelled")]) == "failed"
    assert status_of([job("x", "succeeded")]) == "succeeded"
    with pytest.raises(ValueError):  # (no runs: no sweep, not one that "succeeded")
        status_of([])
    assert best_run(runs, "loss", "min").id == "c"  # (a failed run's value is no candidate)
    assert best_run(runs, "loss", "max").id == "b"
    assert best_run(runs, "acc", "max") is None


async def test_a_sweeps_rerun_is_all_its_runs_or_none_sized_on_one_read_of_the_history(tmp_path):
    """Six ended runs, the third with no input to run again: the rerun is refused and none is made. Once it has
    one, the six reruns are sized on one read of alice's history and stored together, each in its run's place."""
    flow = manager_for(tmp_path, Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}"), FakeExecutor())
    sweeps = Sweeps(store=flow.store, flow=flow)
    views = JobViews(store=flow.store, artifacts=flow.artifacts, broker=flow.broker, executor=flow.executor,
                     dispatcher=flow.dispatcher, sizing=flow.sizing, offload=Offload(inline=True))
    statements = []
    event.listen(flow.store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))

    def history_reads() -> int:  # (store.history: the ended jobs of a user, newest first)
        return sum("FROM jobs" in sql and "jobs.status IN" in sql and "ORDER BY jobs.created_ts DESC" in sql
                   for sql in statements)

    try:
        grid, requests = sweeps.expand({"parameters": {"lr": [0.1, 0.2, 0.5], "depth": [1, 2]}},
                                       request_for(TRAINING))
        sweep, runs = await sweeps.submit(grid, requests)
        for run in runs:
            await flow.cancel(run)
        flow.store.update(runs[2].id, input_hash="")  # (as a run that failed before it had an input)
        with pytest.raises(IntakeError) as e:
            await sweeps.rerun(sweeps.runs(sweep), views.input_bundle, Limits())
        assert e.value.code == "nothing_to_rerun" and runs[2].id in e.value.message
        assert [j.id for j in sweeps.runs(sweep)] == [run.id for run in runs]  # not two of six made

        flow.store.update(runs[2].id, input_hash=runs[0].input_hash)
        statements.clear()
        made = await sweeps.rerun(sweeps.runs(sweep), views.input_bundle, Limits())
        assert history_reads() == 1
        assert [j.rerun_of for j in made] == [run.id for run in runs]
        assert {j.sweep_id for j in made} == {sweep.id} and len({j.created for j in made}) == 1  # (one insert)
        assert [j.id for j in current(sweeps.runs(sweep))] == [j.id for j in made]
        assert [j.parameters for j in made] == [run.parameters for run in runs]
    finally:
        await flow.stop()
        flow.store.close()


def test_the_store_deletes_a_sweep_with_its_runs_at_once_and_a_sweep_without_runs_is_none(db_url):
    store = Store(db_url)
    try:
        row = dict(user="alice", input_hash="h", input_kind="ipynb", input_name="t.ipynb")
        sweep, (a, b) = store.create_sweep([row, row], user="alice", name="t", grid={"runs": [{}, {}]})
        (c,) = store.add_runs([dict(row, sweep_id=sweep.id, rerun_of=a.id)])
        store.add_metrics(a.id, [(0, {"loss": 1.0}, 10.0)], {"loss": 1.0})
        with pytest.raises(InvalidTransition):  # (its runs are queued)
            store.delete_sweep(sweep.id)
        for job in (a, b, c):
            store.transition(job.id, "cancelled")
        assert [j.id for j in store.sweep_jobs([sweep.id])[sweep.id]] == [a.id, b.id, c.id]
        assert sorted(store.delete_sweep(sweep.id)) == sorted([a.id, b.id, c.id])
        assert store.get_sweep(sweep.id) is None and store.known_ids([a.id, b.id, c.id]) == set()
        with store.session() as s:
            assert s.query(JobMetric).count() == 0

        other, (d, e) = store.create_sweep([row, row], user="alice", name="u", grid={"runs": [{}, {}]})
        for job in (d, e):
            store.transition(job.id, "cancelled")
        store.delete(d.id)
        assert store.forget_empty_sweep(other.id) is False and store.get_sweep(other.id, "alice").id == other.id
        store.delete(e.id)  # (as JobManager.delete does: the job, then the sweep if it was its last run)
        assert store.get_sweep(other.id) is None and store.list_sweeps("alice") == ([], None)
        assert store.forget_empty_sweep(other.id) is True and store.forget_empty_sweep(other.id) is False
    finally:
        store.close()


async def test_a_sweep_deleted_while_its_rerun_is_made_takes_no_run_and_the_rerun_is_refused(tmp_path):
    """The delete comes between the rerun's build (its inputs read) and its store step: the rerun stores
    nothing (SweepGone, a 404 to its caller), and no job names the deleted sweep; a run's own rerun likewise."""
    flow = manager_for(tmp_path, Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}"), FakeExecutor())
    sweeps = Sweeps(store=flow.store, flow=flow)
    views = JobViews(store=flow.store, artifacts=flow.artifacts, broker=flow.broker, executor=flow.executor,
                     dispatcher=flow.dispatcher, sizing=flow.sizing, offload=Offload(inline=True))
    try:
        grid, requests = sweeps.expand({"runs": [{"lr": 0.1}, {"lr": 0.2}]}, request_for(TRAINING))
        sweep, runs = await sweeps.submit(grid, requests)
        for run in runs:
            await flow.cancel(run)

        def read_then_deleted(job):  # (the rerun's build: by its store step, the sweep is gone)
            bundle = views.input_bundle(job)
            flow.store.delete_sweep(sweep.id)
            return bundle

        with pytest.raises(SweepGone) as e:
            await sweeps.rerun(sweeps.runs(sweep), read_then_deleted, Limits())
        assert str(e.value) == f"no sweep {sweep.id}: it was deleted meanwhile"
        with flow.store.session() as s:
            assert s.query(Job).filter(Job.sweep_id == sweep.id).count() == 0
        with pytest.raises(SweepGone):
            flow.store.create_job(user="alice", input_hash="h", input_kind="ipynb", sweep_id=sweep.id,
                                  rerun_of=runs[0].id)
        with flow.store.session() as s:
            assert s.query(Job).count() == 0
    finally:
        await flow.stop()
        flow.store.close()


def test_a_sweeps_delete_holds_the_sweep_so_a_rerun_arriving_meanwhile_waits_then_finds_it_gone(db_url):
    """Two writers at once, on SQLite and on PostgreSQL (READ COMMITTED): the delete, paused after reading the
    runs it deletes, holds the sweep; a rerun's insert arriving then waits for it, and joins no deleted sweep."""
    store = Store(db_url)
    row = dict(user="alice", input_hash="h", input_kind="ipynb", input_name="t.ipynb")
    sweep, (a,) = store.create_sweep([row], user="alice", name="t", grid={"runs": [{}]})
    store.transition(a.id, "cancelled")
    read_runs, go_on, order = threading.Event(), threading.Event(), []

    def pause_after_reading_runs(conn, cursor, statement, *args):
        if statement.lstrip().startswith("SELECT jobs.") and threading.current_thread().name == "delete":
            read_runs.set()
            go_on.wait(10)

    def delete():
        store.delete_sweep(sweep.id)
        order.append("deleted")

    def rerun():
        try:
            store.add_runs([dict(row, sweep_id=sweep.id, rerun_of=a.id)])
            order.append("rerun stored")
        except SweepGone:
            order.append("rerun refused")

    event.listen(store.engine, "after_cursor_execute", pause_after_reading_runs)
    try:
        deleting = threading.Thread(target=delete, name="delete")
        deleting.start()
        assert read_runs.wait(10)
        rerunning = threading.Thread(target=rerun)
        rerunning.start()
        rerunning.join(1.0)
        assert order == []  # (the rerun waits on the sweep the delete holds)
        go_on.set()
        deleting.join(10)
        rerunning.join(10)
        # (it waited, above, and then found the sweep gone; which thread says so first once the delete
        # commits is the scheduler's to decide)
        assert sorted(order) == ["deleted", "rerun refused"]
        with store.session() as s:
            assert s.query(Job).count() == 0
    finally:
        go_on.set()
        event.remove(store.engine, "after_cursor_execute", pause_after_reading_runs)
        store.close()


def test_the_queued_runs_of_a_sweep_are_siblings_of_one_killed_for_memory():
    def row(job_id, status, **fields):
        return Job(id=job_id, user="alice", status=status, input_hash="h", path=None, predicted={}, **fields)

    killed = row("k", "failed", sweep_id="s")
    queued = [row("q1", "queued", sweep_id="s"), row("q2", "queued", sweep_id="s"), row("r", "running", sweep_id="s")]
    assert [j.id for j in siblings(killed, queued)] == ["q1", "q2"]


# -- through the real Hub ------------------------------------------------------------------------------------


def wait_sweep(user, sweep_id, timeout=120, **params) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sweep = user.get(f"sweeps/{sweep_id}", params=params).json()
        if sweep["status"] in ("succeeded", "failed", "cancelled"):
            return sweep
        time.sleep(0.5)
    raise AssertionError(f"sweep {sweep_id} still {sweep['status']} after {timeout}s")


def test_a_3x2_sweep_ends_with_six_rows_of_what_each_run_reported_and_its_best_run(alice, bob, admin):
    body = {"notebook": TRAINING, "name": "tune", "parameters": {"lr": [0.1, 0.2, 0.5], "depth": [1, 2]}}
    r = alice.post("sweeps", json=body, headers={"Idempotency-Key": "tune-1"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert r.headers["Location"].endswith(f"/api/sweeps/{made['id']}")
    assert made["grid"] == {"parameters": {"lr": [0.1, 0.2, 0.5], "depth": [1, 2]}} and made["size"] == 6
    assert [run["parameters"] for run in made["runs"]] == [
        {"lr": lr, "depth": depth} for lr in (0.1, 0.2, 0.5) for depth in (1, 2)]
    again = alice.post("sweeps", json=body, headers={"Idempotency-Key": "tune-1"})
    assert (again.status_code, again.json()["id"]) == (200, made["id"])
    other = alice.post("sweeps", json=dict(body, parameters={"lr": [0.1]}), headers={"Idempotency-Key": "tune-1"})
    assert (other.status_code, other.json()["error"]["code"]) == (422, "idempotency_key_reused")

    sweep = wait_sweep(alice, made["id"], metric="loss", mode="min")
    assert sweep["status"] == "failed" and sweep["counts"]["succeeded"] == 5 and sweep["counts"]["failed"] == 1
    assert len(sweep["runs"]) == 6
    for run in sweep["runs"]:
        lr, depth = run["parameters"]["lr"], run["parameters"]["depth"]
        assert run["metrics"] == {"loss": lr * depth / 3, "acc": depth * 10 + lr}, run
        assert run["status"] == ("failed" if (lr, depth) == (0.5, 2) else "succeeded")
        assert run["duration"] > 0 and run["used"]["wall_seconds"] > 0
    assert sweep["metrics"] == ["acc", "loss"]
    by_params = {(r["parameters"]["lr"], r["parameters"]["depth"]): r["job_id"] for r in sweep["runs"]}
    assert sweep["best"] == {"metric": "loss", "mode": "min", "job_id": by_params[0.1, 1], "value": 0.1 / 3}
    best_acc = alice.get(f"sweeps/{made['id']}", params={"metric": "acc", "mode": "max"}).json()["best"]
    assert best_acc["job_id"] == by_params[0.2, 2]  # (the failed 0.5, 2 reported more: not a candidate)
    assert alice.get(f"sweeps/{made['id']}", params={"metric": "acc", "mode": "up"}).status_code == 400

    jobs = alice.get("jobs", params={"sweep": made["id"], "limit": 50}).json()["jobs"]
    assert sorted(j["id"] for j in jobs) == sorted(by_params.values())
    assert all(j["sweep_id"] == made["id"] and j["name"] == "tune" for j in jobs)
    listed = alice.get("sweeps").json()["sweeps"]
    assert listed[0]["id"] == made["id"] and "runs" not in listed[0] and listed[0]["counts"]["succeeded"] == 5

    # rerun the failed run only: it runs again in its place (and fails again)
    r = alice.post(f"sweeps/{made['id']}/rerun", json={"failed_only": True})
    assert r.status_code == 201, r.text
    (new_id,) = r.json()["rerun"]
    assert alice.wait(new_id)["rerun_of"] == by_params[0.5, 2]
    sweep = wait_sweep(alice, made["id"])
    assert len(sweep["runs"]) == 6 and by_params[0.5, 2] not in {run["job_id"] for run in sweep["runs"]}
    assert [run["parameters"] for run in sweep["runs"]] == [run["parameters"] for run in made["runs"]]  # (in place)
    assert sweep["runs"][-1]["job_id"] == new_id
    assert alice.post(f"sweeps/{made['id']}/rerun", json={"failed_only": "yes"}).json()["error"]["field"] == \
        "/failed_only"

    # another user's sweep is as if there were none; an admin sees it
    for call in (bob.get(f"sweeps/{made['id']}"), bob.post(f"sweeps/{made['id']}/cancel"),
                 bob.post(f"sweeps/{made['id']}/rerun", json={})):
        assert call.status_code == 404, call.text
    assert made["id"] not in {s["id"] for s in bob.get("sweeps").json()["sweeps"]}
    assert bob.get("jobs", params={"sweep": made["id"]}).json()["jobs"] == []
    assert admin.get(f"sweeps/{made['id']}").json()["user"] == "alice"


def test_a_bad_value_or_a_sweep_over_the_limit_is_refused_and_nothing_is_stored(alice):
    def stored():
        return (len(alice.get("sweeps", params={"limit": 200}).json()["sweeps"]),
                len(alice.get("jobs", params={"limit": 200}).json()["jobs"]))

    before = stored()
    r = alice.post("sweeps", json={"notebook": TRAINING, "parameters": {"lr": [0.1, 0.2, "fast"], "depth": [1]}})
    assert r.status_code == 400 and r.json()["error"]["field"] == "/parameters/lr/2", r.text
    nb = json.dumps(TRAINING).encode()
    r = alice.post("sweeps", files={"file": ("t.ipynb", nb)},
                   data={"parameters": json.dumps({"lr": [0.1] * 11, "depth": list(range(10))})})
    assert r.status_code == 400 and r.json()["error"]["field"] == "/parameters", r.text
    assert "110 runs" in r.json()["error"]["message"] and "limit of 100 runs" in r.json()["error"]["message"]
    r = alice.post("sweeps", params={"dry_run": "1"}, json={"notebook": TRAINING, "parameters": {"lr": [0.1, 1]}})
    assert r.status_code == 400 and "no dry run" in r.json()["error"]["message"]
    # no runs at all: a parameter with no values (zero combinations), no parameters, no combinations
    for body, field in (({"parameters": {"lr": [0.1, 0.2], "depth": []}}, "/parameters/depth"),
                        ({"parameters": {}}, "/parameters"), ({"runs": []}, "/runs")):
        r = alice.post("sweeps", json=dict(body, notebook=TRAINING))
        assert (r.status_code, r.json()["error"]["field"]) == (400, field), r.text
    r = alice.post("sweeps", files={"file": ("t.ipynb", nb)}, data={"parameters": json.dumps({"lr": []})})
    assert (r.status_code, r.json()["error"]["field"]) == (400, "/parameters/lr"), r.text
    assert "lr has no values" in r.json()["error"]["message"]
    assert stored() == before


def test_cancelling_a_sweep_cancels_every_run_not_ended_and_sweeps_come_in_pages(alice):
    older = alice.post("sweeps", json={"notebook": SLEEPING, "runs": [{"x": 4}]}).json()["id"]
    r = alice.post("sweeps", json={"notebook": SLEEPING, "runs": [{"x": 1}, {"x": 2}, {"x": 3}]})
    assert r.status_code == 201, r.text
    sweep_id = r.json()["id"]
    first = alice.get("sweeps", params={"limit": 1}).json()
    assert [s["id"] for s in first["sweeps"]] == [sweep_id] and first["next_cursor"]
    second = alice.get("sweeps", params={"limit": 1, "cursor": first["next_cursor"]}).json()
    assert [s["id"] for s in second["sweeps"]] == [older]

    for each in (sweep_id, older):
        r = alice.post(f"sweeps/{each}/cancel")
        assert r.status_code in (200, 202), r.text
    sweep = wait_sweep(alice, sweep_id, timeout=30)
    assert sweep["status"] == "cancelled" and sweep["counts"]["cancelled"] == 3
    assert all(alice.get(f"jobs/{run['job_id']}").json()["cancelled_by"] == "alice" for run in sweep["runs"])
    assert alice.post(f"sweeps/{sweep_id}/cancel").status_code == 409

    # its rerun: one act, each new run the rerun of its run, in the sweep, all stored at once
    r = alice.post(f"sweeps/{sweep_id}/rerun", json={})
    assert r.status_code == 201, r.text
    made = [alice.get(f"jobs/{job_id}").json() for job_id in r.json()["rerun"]]
    assert [job["rerun_of"] for job in made] == [run["job_id"] for run in sweep["runs"]]
    assert {job["sweep_id"] for job in made} == {sweep_id} and len({job["created"] for job in made}) == 1
    assert [run["job_id"] for run in r.json()["runs"]] == [job["id"] for job in made]
    alice.post(f"sweeps/{sweep_id}/cancel")
    assert wait_sweep(alice, sweep_id, timeout=30)["counts"]["cancelled"] == 3


def test_deleting_a_sweep_deletes_its_runs_and_their_outputs_and_a_sweep_goes_with_its_last_run(hub, alice, bob):
    r = alice.post("sweeps", json={"notebook": SLEEPING, "runs": [{"x": 1}, {"x": 2}]})
    assert r.status_code == 201, r.text
    sweep_id, ids = r.json()["id"], [run["job_id"] for run in r.json()["runs"]]
    alice.wait(ids[0], statuses=("running",), timeout=60)
    workdir = hub.service_data / "jobs" / ids[0]
    assert workdir.is_dir()
    assert bob.delete(f"sweeps/{sweep_id}").status_code == 404  # (another user's: as if there were none)
    assert alice.get(f"sweeps/{sweep_id}").json()["counts"]["running"] >= 1
    r = alice.delete(f"sweeps/{sweep_id}")  # a run still running: cancelled first, as a job's delete does
    assert r.status_code == 204, r.text
    assert alice.get(f"sweeps/{sweep_id}").status_code == 404
    assert [alice.get(f"jobs/{job_id}").status_code for job_id in ids] == [404, 404]
    assert not workdir.exists()
    assert sweep_id not in {s["id"] for s in alice.get("sweeps", params={"limit": 200}).json()["sweeps"]}
    assert alice.browser.get(hub.url + SERVICE + f"sweeps/{sweep_id}").status_code == 404
    assert alice.delete(f"sweeps/{sweep_id}").status_code == 404

    # its runs deleted one by one: the sweep shows the runs left, and goes with the last
    r = alice.post("sweeps", json={"notebook": SLEEPING, "runs": [{"x": 1}, {"x": 2}]})
    sweep_id, (first, second) = r.json()["id"], [run["job_id"] for run in r.json()["runs"]]
    alice.post(f"sweeps/{sweep_id}/cancel")
    wait_sweep(alice, sweep_id, timeout=30)
    assert alice.delete(f"jobs/{first}").status_code == 204
    sweep = alice.get(f"sweeps/{sweep_id}").json()
    assert ([run["job_id"] for run in sweep["runs"]], sweep["status"]) == ([second], "cancelled")
    assert alice.delete(f"jobs/{second}").status_code == 204
    assert alice.get(f"sweeps/{sweep_id}").status_code == 404
    assert sweep_id not in {s["id"] for s in alice.get("sweeps", params={"limit": 200}).json()["sweeps"]}
    assert alice.browser.get(hub.url + SERVICE + f"sweeps/{sweep_id}").status_code == 404


def writer_once_read(fifo, timeout: float = 60) -> int:
    """The write end of ``fifo``, opened once a reader has opened it (never blocking this test for good)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:  # ENXIO: no reader yet
            if e.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def test_a_sweep_deleted_while_the_api_makes_its_rerun_is_a_404_naming_it_and_nothing_is_stored(hub, alice):
    """SweepGone over HTTP: the rerun's handler has read the sweep and its runs and reads their notebook, held
    there (its file a FIFO: our write end opens once the handler has opened it to read); the sweep is deleted in
    the store then, as an old row's delete would; the handler's store step finds no sweep for the rerun to join."""
    nb = make_notebook(f"# {uuid.uuid4().hex}: a notebook of its own, whose file no other job reads", parameters="x = 1")
    r = alice.post("sweeps", json={"notebook": nb, "runs": [{"x": 2}]})
    assert r.status_code == 201, r.text
    sweep_id, job_id = r.json()["id"], r.json()["runs"][0]["job_id"]
    assert alice.wait(job_id)["status"] == "succeeded"
    store = Store(f"sqlite:///{hub.service_data / 'jobs.sqlite'}", migrate=False)
    notebook = hub.service_data / "inputs" / store.get(job_id).input_hash / INPUT_NOTEBOOK
    saved = notebook.read_bytes()
    notebook.unlink()
    os.mkfifo(notebook)
    try:
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(alice.post, f"sweeps/{sweep_id}/rerun", json={})
            held = writer_once_read(notebook)
            try:
                assert store.delete_sweep(sweep_id) == [job_id]
                os.write(held, saved)
            finally:
                os.close(held)
            r = answer.result(timeout=60)
    finally:
        notebook.unlink()
        notebook.write_bytes(saved)
        store.close()
    assert r.status_code == 404, r.text
    assert r.json()["error"]["message"] == f"no sweep {sweep_id}: it was deleted meanwhile"
    assert alice.get(f"sweeps/{sweep_id}").status_code == 404
    mine = alice.get("jobs", params={"limit": 200}).json()["jobs"]
    assert [job["id"] for job in mine if job["sweep_id"] == sweep_id or job.get("rerun_of") == job_id] == []


def test_the_cli_submits_a_grid_and_shows_lists_and_cancels_it(alice, tmp_path):
    path = tmp_path / "sleepy.ipynb"
    path.write_text(json.dumps(make_notebook("import time\ntime.sleep(120)", parameters="lr = 0.1\ndepth = 2")))
    r = cli(alice, "submit", str(path), "-p", "lr", "-p", "depth", "2", "4")  # (lr with no values)
    assert r.returncode == 2 and "expected a NAME and a VALUE" in r.stderr, r.stderr
    r = cli(alice, "submit", str(path), "-p", "lr", "0.01", "0.1", "1", "-p", "depth", "2", "4")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("sweep ") and " of 6 runs " in r.stdout
    sweep_id = r.stdout.split()[1]
    sweep = alice.get(f"sweeps/{sweep_id}").json()
    assert sweep["grid"] == {"parameters": {"lr": [0.01, 0.1, 1], "depth": [2, 4]}}
    assert [run["parameters"] for run in sweep["runs"]] == [
        {"lr": lr, "depth": depth} for lr in (0.01, 0.1, 1) for depth in (2, 4)]
    single = cli(alice, "submit", str(path), "-p", "lr", "0.5", "--json")  # one value a parameter: a job
    assert single.returncode == 0 and json.loads(single.stdout)["sweep_id"] is None
    alice.post(f"jobs/{json.loads(single.stdout)['id']}/cancel")

    shown = cli(alice, "sweeps", "show", sweep_id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith(f"sweep {sweep_id}") and lines[1].split() == ["JOB", "STATUS", "TOOK", "PEAK",
                                                                             "MEM", "depth", "lr"]
    assert [line.split()[0] for line in lines[2:]] == [run["job_id"] for run in sweep["runs"]]
    assert sweep_id in cli(alice, "sweeps", "list").stdout
    cancelled = cli(alice, "sweeps", "cancel", sweep_id)
    assert cancelled.returncode == 0 and f"sweep {sweep_id} " in cancelled.stdout, cancelled.stderr
    assert wait_sweep(alice, sweep_id, timeout=30)["counts"]["cancelled"] == 6
    deleted = cli(alice, "sweeps", "delete", sweep_id)
    assert deleted.returncode == 0 and deleted.stdout == f"sweep {sweep_id} deleted, with its runs\n", deleted.stderr
    assert alice.get(f"sweeps/{sweep_id}").status_code == 404
    assert alice.get(f"jobs/{sweep['runs'][0]['job_id']}").status_code == 404
    r = cli(alice, "schedule", "create", str(path), "--cron", "@daily", "-p", "lr", "1", "2")
    assert r.returncode == 2 and "sweep" in r.stderr


def test_a_schedule_with_sweep_true_makes_a_sweep_at_each_run(alice):
    body = {"notebook": SLEEPING, "cron": "0 0 1 1 *", "paused": True, "sweep": True, "parameters": {"x": [1, 2]}}
    bad = alice.post("schedules", json=dict(body, parameters={"x": [1, "two"]}))
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "/parameters/x/1", bad.text
    r = alice.post("schedules", json=body)
    assert r.status_code == 201, r.text
    schedule = r.json()
    assert schedule["sweep"] is True and schedule["parameters"] == {"x": [1, 2]}
    job = alice.post(f"schedules/{schedule['id']}/run").json()
    sweep = alice.get(f"sweeps/{job['sweep_id']}").json()
    assert sweep["schedule_id"] == schedule["id"] and [run["parameters"] for run in sweep["runs"]] == [
        {"x": 1}, {"x": 2}]
    assert sweep["runs"][0]["job_id"] == job["id"]
    alice.post(f"sweeps/{sweep['id']}/cancel")
    alice.delete(f"schedules/{schedule['id']}")


def test_a_sweeps_queued_runs_are_sized_again_once_its_first_run_has_succeeded(hub, admin):
    """Sized all at once on a notebook its user never ran, the runs still queued when the first one
    succeeds are sized again on a history that holds it (one run at a time here: a sleeper holds
    the user's other slot; the second run sleeps, so the third is still queued meanwhile)."""
    alice = hub.user("rhea")  # (a user of its own, and a Hub whose two slots are free: no earlier test's job)
    deadline = time.monotonic() + 180
    while (queue := admin.get("admin/queue").json())["running"] or queue["queued"]:
        assert time.monotonic() < deadline, queue
        time.sleep(0.5)
    # (a quarter core: sized on the session's history it could hold so much of the cpu budget that the runs
    # waited for it, whatever the slots; this test is about their re-sizing, not the budget)
    sleeper = alice.post("jobs", json={"notebook": SLEEPING, "resources": {"cpu": 0.25}}).json()["id"]
    alice.wait(sleeper, statuses=("running",), timeout=60)
    nb = make_notebook(f"# {time.time_ns()}\nimport time\ntime.sleep(6 if i == 1 else 0)", parameters="i = 0")
    try:
        r = alice.post("sweeps", json={"notebook": nb, "parameters": {"i": [0, 1, 2]}})
        assert r.status_code == 201, r.text
        first, second, third = (alice.get(f"jobs/{run['job_id']}").json() for run in r.json()["runs"])
        assert alice.wait(first["id"])["status"] == "succeeded"
        alice.wait(second["id"], statuses=("running",), timeout=30)
        for _ in range(50):  # (the re-sizing follows the first run's ending, in the background)
            now = alice.get(f"jobs/{third['id']}").json()
            if "resized_after_runs" in now["resources"]["predicted"]:
                break
            time.sleep(0.2)
        assert now["status"] == "queued", now["status"]
        assert now["resources"]["predicted"]["resized_after_runs"] == 1, now["resources"]
        assert "resized_after_runs" not in third["resources"]["predicted"]  # (sized at submit, before any ended)
        # i = 2 is beyond the one finished run (i = 0): sized again, its memory may rise, never fall
        assert now["resources"]["allocated"]["memory"] >= third["resources"]["allocated"]["memory"], now["resources"]
        kept = now["resources"]["predicted"].get("memory_kept")
        assert kept is None or kept["held"] == third["resources"]["allocated"]["memory"] > kept["sized"], kept
    finally:
        alice.post(f"jobs/{sleeper}/cancel")
    assert alice.wait(third["id"])["status"] == "succeeded"
