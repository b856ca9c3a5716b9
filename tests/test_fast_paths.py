"""What keeps a job's path short: nothing rendered on its ending, a timeline of where its time went, and
concurrency by the cores the jobs are allocated rather than by their count (bench/bench_phases.py
measures them; these hold their behaviour)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging

from hub_service.dispatch import Dispatcher
from hub_service.jobs import JobManager
from hub_service.offload import Offload
from hub_service.outputs import Artifacts
from hub_service.sizing import Sizing
from hub_service.store import Store
from hub_service.views import JobViews
from tests.fakes import FakeExecutor, Script
from tests.test_flow import ended, in_held_cell, request


def manager(tmp_path, dispatcher: Dispatcher) -> JobManager:
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    return JobManager(store=store, artifacts=Artifacts(tmp_path / "data"), executor=FakeExecutor(),
                      dispatcher=dispatcher, sizing=Sizing(use_model=False))


async def settled(flow: JobManager) -> None:
    """Wait for what follows the jobs' endings (callbacks, mail, the timeline's log line)."""
    while flow._background:
        await asyncio.gather(*list(flow._background))


async def test_the_ending_renders_nothing_and_the_first_read_renders_once_and_keeps_it(tmp_path):
    flow = manager(tmp_path, Dispatcher(cpu=2.0, memory=8 << 30))
    try:
        job = await flow.submit(dataclasses.replace(request(), output_formats=["ipynb", "html", "md"]))
        flow.dispatch_once()
        assert (await ended(flow, job.id)).status == "succeeded"
        await settled(flow)
        html, md = (flow.artifacts.output_path(job.id).with_suffix(s) for s in (".html", ".md"))
        assert not html.exists() and not md.exists()  # the ending made no render
        views = JobViews(store=flow.store, artifacts=flow.artifacts, broker=flow.broker, executor=flow.executor,
                         dispatcher=flow.dispatcher, sizing=flow.sizing, offload=Offload(inline=True))
        first = await views.output(job.id, "html")
        assert first.lstrip().lower().startswith(b"<!doctype html") and html.read_bytes() == first
        made = html.stat().st_mtime_ns
        assert await views.output(job.id, "html") == first
        assert html.stat().st_mtime_ns == made  # the second read is the kept render, not a new one
        assert not md.exists()  # only what was asked for
    finally:
        await flow.stop()
        flow.store.close()


async def test_a_jobs_timeline_is_logged_once_it_ended_with_each_step_in_order(tmp_path, caplog):
    flow = manager(tmp_path, Dispatcher(cpu=2.0, memory=8 << 30))
    try:
        with caplog.at_level(logging.DEBUG, logger=flow.log.name):
            job = await flow.submit(request())
            flow.dispatch_once()
            await ended(flow, job.id)
            await settled(flow)
        logged = [r.getMessage() for r in caplog.records if "timeline" in r.getMessage()]
        assert len(logged) == 1 and logged[0].startswith(f"job {job.id} timeline: ")
        phases = json.loads(logged[0].split("timeline: ", 1)[1])
        # the flow's steps, the runner's (its start, its kernel up, the cells), then the ending
        assert list(phases) == ["sized", "queued", "dispatched", "prepared", "runner_started", "kernel_ready",
                                "executed", "output_written", "ended", "after_end"]
        assert all(seconds >= 0 for step, seconds in phases.items() if step != "after_end")
        assert phases["after_end"] == {} and job.id not in flow._timelines  # no callback, no mail; forgotten
    finally:
        await flow.stop()
        flow.store.close()


async def test_four_quarter_core_jobs_run_at_once_on_two_cores_and_a_whole_core_waits(tmp_path):
    flow = manager(tmp_path, Dispatcher(cpu=2.0, memory=8 << 30, per_user=8))
    try:
        assert flow.dispatcher.max_running == 8  # by default, as many quarter-core jobs as the cores hold
        small = [await flow.submit(request(requested={"cpu": 0.25, "memory": 256 << 20})) for _ in range(4)]
        big = [await flow.submit(request(requested={"cpu": 1.0, "memory": 256 << 20})) for _ in range(2)]
        held = small + big[:1]
        for job in held:
            flow.executor.scripts[job.id] = Script(hold_at=1)
        assert flow.dispatch_once() == [j.id for j in held]  # 4 x 0.25 + 1 = 2 cores
        for job in held:
            await in_held_cell(flow.executor, job.id)
        assert flow.dispatch_once() == []  # the second whole core is not there
        assert flow.store.get(big[1].id).status == "queued"
        for job in held:
            flow.executor.release(job.id)
        assert [(await ended(flow, j.id)).status for j in held] == ["succeeded"] * 5
        flow.dispatch_once()
        assert (await ended(flow, big[1].id)).status == "succeeded"
    finally:
        await flow.stop()
        flow.store.close()
