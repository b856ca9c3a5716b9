"""JobManager's flow -- plan, submit, dispatch, run, finish, cancel, recover -- on an executor in this
process (tests/fakes.py): the store, the work directories and the endings are real, the runner is not."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import nbformat
import pytest

from hub_service.dispatch import Dispatcher
from hub_service.executors.base import Outcome, Usage
from hub_service.intake import Bundle, IntakeError
from hub_service.jobs import JobManager
from hub_service.offload import Offload
from hub_service.outputs import Artifacts
from hub_service.planning import DemandPlanner
from hub_service.request import JobRequest, retry_of
from hub_service.sizing import Sizing
from hub_service.states import TERMINAL
from hub_service.store import Store, Sweep, job_model
from tests.fakes import FakeExecutor, Script
from tests.hubtest import make_notebook


def request(user: str = "alice", **choices) -> JobRequest:
    """A three-code-cell notebook (after a markdown cell), asking for ``choices``."""
    nb = nbformat.from_dict(make_notebook("a = 1", "b = 2", "c = 3", markdown="# flow"))
    return JobRequest(user=user, bundle=Bundle(notebook=nb, kind="ipynb", name="flow.ipynb"),
                      output_formats=["ipynb"], **choices)


def manager_for(tmp_path, store: Store, executor: FakeExecutor) -> JobManager:
    """A JobManager as the service makes one, sized by the admin's defaults (no worker process)."""
    return JobManager(store=store, artifacts=Artifacts(tmp_path / "data"), executor=executor,
                      dispatcher=Dispatcher(cpu=8.0, memory=64 << 30, max_running=2, per_user=2),
                      sizing=Sizing(use_model=False))


@pytest.fixture
async def flow(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    manager = manager_for(tmp_path, store, FakeExecutor())
    yield manager
    await manager.stop()
    store.close()


async def ended(manager: JobManager, job_id: str):
    """The job once it has ended (its run is a task on this loop)."""
    for _ in range(500):
        job = manager.store.get(job_id)
        if job.status in TERMINAL:
            return job
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} did not end: {job.status}")


async def in_held_cell(executor: FakeExecutor, job_id: str) -> None:
    await asyncio.wait_for(executor.holding.setdefault(job_id, asyncio.Event()).wait(), 5)


async def test_a_job_goes_from_the_queue_to_succeeded_with_its_allocation_progress_log_and_output(flow):
    job = await flow.submit(request(parameters={"n": 5}, requested={"cpu": 1.5}))
    assert job.status == "queued" and flow.executor.ran == []
    assert flow.dispatch_once() == [job.id]
    job = await ended(flow, job.id)
    assert (job.status, job.error_reason) == ("succeeded", None)
    spec, = flow.executor.ran
    assert (spec.job_id, spec.user, spec.cpu) == (job.id, "alice", 1.5)
    assert (spec.memory, spec.timeout) == (job.allocated["memory"], job.allocated["timeout"])
    assert json.loads((spec.workdir / "parameters.json").read_text()) == {"n": 5}
    model = job_model(job)
    assert model["progress"] == {"cells_done": 3, "cells_total": 3, "phase": None} and model["has_output"] is True
    assert "hello from the job" in flow.artifacts.log_path(job.id).read_text()
    assert flow.dispatch_once() == [] and len(flow.executor.ran) == 1  # started once


async def test_a_cell_that_raises_fails_the_job_there_and_is_not_counted_done(flow):
    job = await flow.submit(request())
    flow.executor.scripts[job.id] = Script(fail_at=2)
    flow.dispatch_once()
    job = await ended(flow, job.id)
    model = job_model(job)
    assert (job.status, job.error_reason) == ("failed", "cell_error")
    assert model["error"]["cell"] == 2 and model["progress"] == {"cells_done": 1, "cells_total": 3, "phase": None}
    last = flow.artifacts.log_path(job.id).read_text().rstrip("\n").rsplit("\n", 1)[-1]
    assert last == "notebook-jobs: A cell raised an error: ValueError: as the script says"


async def test_cancelling_a_running_job_stops_it_in_its_cell_and_says_who(flow):
    job = await flow.submit(request())
    flow.executor.scripts[job.id] = Script(hold_at=2)
    flow.dispatch_once()
    await in_held_cell(flow.executor, job.id)
    job = await flow.cancel(flow.store.get(job.id), by="alice")
    assert (job.status, job.error_reason, job.cancelled_by) == ("cancelled", "cancelled", "alice")
    assert job.error_message == "cancelled by alice (in code cell 2 of 3)"
    assert job_model(job)["progress"]["cells_done"] == 1 and job.has_output


async def test_a_job_cancelled_in_the_queue_never_reaches_the_executor(flow):
    job = await flow.submit(request())
    job = await flow.cancel(job, by="bob")
    assert (job.status, job.cancelled_by) == ("cancelled", "bob") and "before it started" in job.error_message
    assert flow.dispatch_once() == [] and flow.executor.ran == []


async def test_a_job_waits_for_a_free_slot_and_starts_when_the_running_one_ends(flow):
    flow.dispatcher.max_running = 1
    first, second = [await flow.submit(request()) for _ in range(2)]
    flow.executor.scripts[first.id] = Script(hold_at=1)
    assert flow.dispatch_once() == [first.id]
    await in_held_cell(flow.executor, first.id)
    assert flow.dispatch_once() == [] and flow.store.get(second.id).status == "queued"
    flow.executor.release(first.id)
    assert (await ended(flow, first.id)).status == "succeeded"
    assert flow.dispatch_once() == [second.id]
    assert (await ended(flow, second.id)).status == "succeeded"


async def test_a_backend_that_fails_ends_the_job_as_infrastructure_rather_than_leaving_it_running(flow):
    job = await flow.submit(request())
    flow.executor.scripts[job.id] = Script(error=ConnectionError("the daemon went away"))
    flow.dispatch_once()
    job = await ended(flow, job.id)
    assert (job.status, job.error_reason) == ("failed", "infrastructure")
    assert "the daemon went away" in job.error_message and flow.running_tasks() == 0


async def test_a_job_given_back_before_it_began_is_queued_again_once_then_fails(flow):
    again = await flow.submit(request())
    flow.executor.scripts[again.id] = Script(lost_before_start=1)
    flow.dispatch_once()
    for _ in range(500):  # back in the queue, not ended
        if flow.store.get(again.id).status == "queued" and flow.running_tasks() == 0:
            break
        await asyncio.sleep(0.01)
    assert flow.store.get(again.id).status == "queued"
    flow.dispatch_once()
    assert (await ended(flow, again.id)).status == "succeeded" and len(flow.executor.ran) == 2

    twice = await flow.submit(request())
    flow.executor.scripts[twice.id] = Script(lost_before_start=2)
    flow.dispatch_once()
    for _ in range(500):
        if flow.store.get(twice.id).status == "queued" and flow.running_tasks() == 0:
            break
        await asyncio.sleep(0.01)
    flow.dispatch_once()
    twice = await ended(flow, twice.id)  # (once only: the second time it fails, saying why)
    assert (twice.status, twice.error_reason) == ("failed", "infrastructure")
    assert "before it began" in twice.error_message and len(flow.executor.ran) == 4


async def test_a_job_ends_once_a_late_second_outcome_changes_nothing(flow):
    job = await flow.submit(request())
    flow.dispatch_once()
    job = await ended(flow, job.id)
    assert flow.finish(job.id, Outcome("failed", "infrastructure", "late")) is None
    assert flow.store.get(job.id).status == "succeeded"


async def test_gpus_the_backend_lacks_are_refused_before_the_queue_and_ones_it_has_reach_the_job(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    without, with_one = FakeExecutor(), FakeExecutor(gpus=1)
    with pytest.raises(IntakeError) as refused:
        await manager_for(tmp_path, store, without).submit(request(requested={"gpu": 1}))
    assert (refused.value.status, refused.value.field) == (422, "/resources/gpu")
    assert store.jobs_with_status("queued") == []
    manager = manager_for(tmp_path, store, with_one)
    job = await manager.submit(request(requested={"gpu": 1}))
    manager.dispatch_once()
    assert (await ended(manager, job.id)).status == "succeeded" and with_one.ran[0].gpu == 1
    store.close()


async def test_recovery_reattaches_held_jobs_requeues_lost_ones_and_leaves_foreign_ones_alone(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    before = manager_for(tmp_path, store, FakeExecutor())  # the service that died
    held, lost, done = [await before.submit(request()) for _ in range(3)]
    for job in (held, lost, done):
        store.transition(job.id, "running", backend="fake")
        before.artifacts.prepare(job.id, job.input_hash, job.parameters)  # as its run began
    store.transition(done.id, "succeeded")
    backend = FakeExecutor(durable=True, held={held.id, done.id, "another-deployments-job"})
    after = manager_for(tmp_path, store, backend)  # the restarted service
    report = await after.recover()
    assert report == {"reattached": [held.id], "requeued": [lost.id], "removed": [done.id],
                      "foreign": ["another-deployments-job"]}
    assert (await ended(after, held.id)).status == "succeeded"
    assert [s.job_id for s in backend.reattached] == [held.id] and backend.ran == []
    assert store.get(lost.id).status == "queued" and backend.removed == [done.id]
    assert "another-deployments-job" in backend.held
    assert after.dispatch_once() == [lost.id]  # run from scratch, once
    assert (await ended(after, lost.id)).status == "succeeded"
    await after.stop()
    store.close()


async def test_an_oom_kill_raises_its_queued_siblings_before_they_meet_the_same_wall(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    # the sizer in this process (no worker), with room to raise the 2 GiB default
    sizing = Sizing(offload=Offload(inline=True), model_dir=str(tmp_path / "models"), memory_max=64 << 30)
    manager = JobManager(store=store, artifacts=Artifacts(tmp_path / "data"), executor=FakeExecutor(),
                         dispatcher=Dispatcher(cpu=8.0, memory=64 << 30, max_running=2, per_user=1),
                         sizing=sizing,
                         planner=DemandPlanner(store=store, sizing=sizing))
    try:
        one = request()  # one notebook (its cells' ids are random), run three times with other parameters
        first, *burst = [await manager.submit(dataclasses.replace(one, parameters={"n": n})) for n in (1, 2, 3)]
        theirs = await manager.submit(request(user="bob"))
        manager.executor.scripts[first.id] = Script(oom_at=2)
        assert first.id in manager.dispatch_once()
        assert (await ended(manager, first.id)).error_reason == "oom_killed"
        for _ in range(500):  # the re-sizing is a task of its own, after the ending
            raised = [store.get(j.id) for j in burst]
            if all(j.predicted.get("resized_after_kill") for j in raised):
                break
            await asyncio.sleep(0.01)
        for before, after in zip(burst, raised):
            assert after.status == "queued"
            assert after.allocated["memory"] >= 2 * before.allocated["memory"], (before.allocated, after.allocated)
            assert after.predicted["resized_after_kill"]["job"] == first.id
        assert store.get(theirs.id).allocated == theirs.allocated  # another user's run of it is not its sibling
    finally:
        await manager.stop()
        store.close()


async def test_a_queued_retry_in_a_sweep_keeps_its_retry_size_when_the_sweep_is_sized_again(tmp_path):
    """A sweep's queued runs are sized again when its first run succeeds; a queued rerun of a run that was
    killed among them is sized as the retry it is (twice the time that ran out), not as a new run."""
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    sizing = Sizing(offload=Offload(inline=True), model_dir=str(tmp_path / "models"), timeout_max=86400)
    manager = JobManager(store=store, artifacts=Artifacts(tmp_path / "data"), executor=FakeExecutor(),
                         dispatcher=Dispatcher(cpu=8.0, memory=64 << 30, max_running=2, per_user=1),
                         sizing=sizing, planner=DemandPlanner(store=store, sizing=sizing))
    try:
        with store.session() as s:  # (its sweep, as the API stores one)
            s.add(Sweep(id="s" * 32, user="alice", grid={"parameters": {"n": [1, 2]}}, size=2, created_ts=0.0))
            s.commit()
        run = dataclasses.replace(request(), sweep_id="s" * 32)
        killed = await manager.submit(dataclasses.replace(run, parameters={"n": 1}))
        manager.executor.scripts[killed.id] = Script(oom_at=2)
        assert manager.dispatch_once() == [killed.id]
        assert (await ended(manager, killed.id)).status == "failed"
        store.update(killed.id, error_reason="timeout")  # (as if it had run out of its hour: the fake has no clock)
        killed = store.get(killed.id)
        first = await manager.submit(dataclasses.replace(run, parameters={"n": 2}))
        retry = await manager.submit(dataclasses.replace(run, parameters={"n": 1}, rerun_of=killed.id,
                                                         retry_of=retry_of(killed)))
        assert retry.allocated["timeout"] >= 2 * killed.allocated["timeout"] > first.allocated["timeout"]
        assert manager.dispatch_once() == [first.id]
        assert (await ended(manager, first.id)).status == "succeeded"
        for _ in range(500):  # the re-sizing is a task of its own, after the ending
            again = store.get(retry.id)
            if again.predicted.get("resized_after_runs"):
                break
            await asyncio.sleep(0.01)
        assert again.predicted["resized_after_runs"] == 1 and again.status == "queued"
        assert again.allocated["timeout"] >= 2 * killed.allocated["timeout"], (killed.allocated, again.allocated)
    finally:
        await manager.stop()
        store.close()


async def test_a_sweeps_run_beyond_its_finished_runs_keeps_its_memory_and_its_submissions_record(tmp_path):
    """Sized again once its sweep's first run succeeded, a queued run with a larger parameter than any
    finished one is not lowered (they say nothing of it), and keeps the record of every policy's limit made
    at its submission: the scoreboard judges policies as they size jobs at submit."""
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    sizing = Sizing(offload=Offload(inline=True), model_dir=str(tmp_path / "models"))
    manager = JobManager(store=store, artifacts=Artifacts(tmp_path / "data"), executor=FakeExecutor(),
                         dispatcher=Dispatcher(cpu=8.0, memory=64 << 30, max_running=2, per_user=1),
                         sizing=sizing, planner=DemandPlanner(store=store, sizing=sizing))
    try:
        with store.session() as s:
            s.add(Sweep(id="w" * 32, user="alice", grid={"parameters": {"n": [1, 5]}}, size=2, created_ts=0.0))
            s.commit()
        run = dataclasses.replace(request(), sweep_id="w" * 32)
        first = await manager.submit(dataclasses.replace(run, parameters={"n": 1}))
        larger = await manager.submit(dataclasses.replace(run, parameters={"n": 5}))
        manager.executor.scripts[first.id] = Script(used=Usage(peak_memory=200 << 20, cpu_seconds=5.0,
                                                               wall_seconds=10.0))
        assert manager.dispatch_once() == [first.id]
        assert (await ended(manager, first.id)).status == "succeeded"
        for _ in range(500):
            again = store.get(larger.id)
            if again.predicted.get("resized_after_runs"):
                break
            await asyncio.sleep(0.01)
        assert again.predicted["resized_after_runs"] == 1 and again.status == "queued"
        # (a notebook's first run had twice the default; a run of it now, the default: not for this one)
        assert again.allocated["memory"] == larger.allocated["memory"], (larger.allocated, again.allocated)
        assert again.predicted["memory_kept"]["held"] == larger.allocated["memory"] > again.predicted[
            "memory_kept"]["sized"]
        assert again.predicted["memory_policy"] == larger.predicted["memory_policy"]
    finally:
        await manager.stop()
        store.close()
