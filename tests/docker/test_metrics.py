"""Metrics from a notebook in a real container of the runner image: the runner writes the kernel's
``notebook_jobs`` helper in a sandbox whose root is read-only, and a ``PROGRESS:`` line and a ``report``
call both arrive as metric events, which the JobManager stores; from a cold start and from a warm one."""

from __future__ import annotations

import json

import pytest

from hub_service.executors.base import METRICS_FILE
from hub_service.jobs import JobManager
from hub_service.outputs import Artifacts
from hub_service.states import Status
from hub_service.store import Store, job_model
from tests.docker.conftest import Recorder, make_notebook


@pytest.mark.parametrize("warm_pool", [0, 1], ids=["cold", "warm"])
async def test_a_notebook_in_a_container_reports_both_ways_and_the_manager_stores_them(
        make_executor, make_job, tmp_path, warm_pool):
    executor = make_executor(warm_pool=warm_pool)
    await executor.start()
    if warm_pool:  # the kernel started before its job: the helper must be on its path already
        assert await executor.pool.wait_ready(90), "the warm pool did not fill"
    try:
        await run_and_check(executor, make_job, tmp_path)
    finally:
        await executor.stop()


async def run_and_check(executor, make_job, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    manager = JobManager(store=store, artifacts=Artifacts(tmp_path / "data"), executor=executor)
    job = store.create_job(user="alice", input_hash="x", input_kind="ipynb", features={}, predicted={},
                           allocated={}, used={})
    store.transition(job.id, Status.RUNNING.value)
    spec = make_job(make_notebook(
        "import json\nprint('PROGRESS: ' + json.dumps({'epoch': 1, 'loss': 0.9}))",
        "from notebook_jobs import report\nreport(loss=0.4, step=2)\nreport(loss=float('inf'), step=3)"))
    rec = Recorder()

    def on_event(event):
        rec.on_event(event)
        manager._on_event(job.id, event)

    outcome = await executor.run(spec, on_event, rec.on_log)
    manager._flush_metrics(job.id)  # (as the job's ending does: the reports are stored in batches)
    assert outcome.status == "succeeded", (outcome, rec.log_text[-2000:])
    assert [(e["step"], e["values"]) for e in rec.events if e["event"] == "metric"] == [
        (0, {"epoch": 1.0, "loss": 0.9}), (2, {"loss": 0.4})]
    assert sum("metrics: refused loss=Infinity" in line for line in rec.logs) == 1
    assert [(step, value) for step, value, _ in store.metric_series(job.id)["loss"]] == [(0, 0.9), (2, 0.4)]
    assert job_model(store.get(job.id))["metrics"] == {"epoch": 1.0, "loss": 0.4}
    # the runner's metrics.json comes back from the container beside the output notebook
    saved = json.loads((spec.workdir / METRICS_FILE).read_text())
    assert saved["final"] == {"epoch": 1.0, "loss": 0.4}, saved
    store.close()
