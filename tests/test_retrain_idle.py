"""A burst's jobs do not share the cores with the demand model's early retraining: a fit (a process of its
own that imports scikit-learn, about 2 s of cpu) waits until no job runs or waits, or ``early_retrain_wait``."""

from __future__ import annotations

import asyncio
import os

import pytest

from demand.registry import versions
from hub_service.app import NotebookJobs
from hub_service.dispatch import Dispatcher
from hub_service.jobs import JobManager
from hub_service.offload import Offload
from hub_service.outputs import Artifacts
from hub_service.planning import DemandPlanner
from hub_service.sizing import Sizing
from hub_service.store import Job, Store
from tests.fakes import FakeExecutor
from tests.test_dispatch import fill
from tests.test_flow import ended, request


@pytest.fixture
async def flow(tmp_path):
    """A flow one job at a time, with a history of twelve succeeded jobs: an early retraining is due."""
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    fill(store, [("ann", 1000.0 + i, {"cpu": 0.25, "memory": 1 << 30, "timeout": 60}) for i in range(12)])
    with store.session() as s:
        s.execute(Job.__table__.update().values(status="succeeded", features={"code_cells": 1, "source_bytes": 9},
                                               used={"peak_memory": 100 << 20, "cpu_seconds": 0.5,
                                                     "wall_seconds": 1.0}))
        s.commit()
    sizing = Sizing(offload=Offload(inline=True), model_dir=str(tmp_path / "models"))
    manager = JobManager(store=store, artifacts=Artifacts(tmp_path / "data"), executor=FakeExecutor(),
                         dispatcher=Dispatcher(cpu=8.0, memory=64 << 30, max_running=1, per_user=2),
                         sizing=sizing, planner=DemandPlanner(store=store, sizing=sizing))
    yield manager
    await manager.stop()
    store.close()


async def retrained(manager: JobManager) -> list:
    """The model versions saved once the planner's work in hand is done."""
    while manager.planner._background:
        await asyncio.gather(*list(manager.planner._background))
    return versions(manager.sizing.model_dir)


async def test_a_retraining_due_in_a_burst_waits_until_its_last_job_has_ended(flow):
    first, second = [await flow.submit(request()) for _ in range(2)]
    assert flow.dispatch_once() == [first.id]
    assert (await ended(flow, first.id)).status == "succeeded"
    assert flow.dispatch_once() == [second.id]  # (the pass finds the machine busy: the planner is not told)
    assert await retrained(flow) == []
    assert (await ended(flow, second.id)).status == "succeeded"
    assert await retrained(flow) == []  # (nothing is told at an ending, only at a pass)
    assert flow.dispatch_once() == []  # nothing runs, nothing waits: now
    assert len(await retrained(flow)) == 1


async def test_a_retraining_waits_for_an_idle_flow_no_longer_than_early_retrain_wait(flow):
    flow.early_retrain_wait = 0.0
    first, second = [await flow.submit(request()) for _ in range(2)]
    assert flow.dispatch_once() == [first.id]
    assert (await ended(flow, first.id)).status == "succeeded"
    assert flow.dispatch_once() == [second.id]
    assert len(await retrained(flow)) == 1  # while the second runs
    await ended(flow, second.id)


@pytest.mark.process
@pytest.mark.parametrize("idle_lanes,policy", [(["train"], os.SCHED_IDLE), ([], os.SCHED_OTHER)])
def test_the_fit_runs_at_the_idle_policy_and_sizing_does_not(idle_lanes, policy):
    """A fit's process takes only the cpu nothing else wants (the service's loop, the Hub and its proxy come
    first: a fit made as a drain of jobs ended held the loop of the listing timed just after it); a new job's
    sizing, which a submit waits for, stays at the service's policy. Each lane's worker is asked its own."""
    offload = Offload(idle_lanes=idle_lanes)
    try:
        assert offload.pool("train").submit(os.sched_getscheduler, 0).result(60) == policy
        assert offload.pool("model").submit(os.sched_getscheduler, 0).result(60) == os.SCHED_OTHER
    finally:
        offload.shutdown()


def test_the_service_fits_at_the_idle_policy_unless_told_not_to(tmp_path):
    for argv, lanes in (([], {"train"}), (["--Sizing.retrain_idle=False"], set())):
        app = NotebookJobs()
        app.initialize([f"--data-dir={tmp_path / str(len(argv))}", "--executor=local", *argv])
        try:
            assert app.offload.idle_lanes == lanes and app.sizing.offload is app.offload
        finally:
            app.store.close()
