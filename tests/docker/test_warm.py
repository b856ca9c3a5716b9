"""The docker executor's warm pool: pre-started runner containers that take one job each.

Real containers of the runner image. A warm container is created with the whole
sandbox, resized to the job's allocation when it takes the job, renamed to the job's
name (which is how a restarted service finds it) and removed with the job.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path

import docker
import nbformat
import pytest

from demand.sizing import Sizer
from hub_service import offload
from hub_service.dispatch import Dispatcher
from hub_service.executors.docker import LABEL_INSTANCE, LABEL_RUNNER_WARM, LABEL_WARM
from hub_service.executors.docker.sandbox import Sandbox
from hub_service.executors.docker.warm import job_line
from hub_service.jobs import JobManager
from hub_service.offload import Offload
from hub_service.outputs import Artifacts
from hub_service.planning import DemandPlanner
from hub_service.sizing import Sizing
from hub_service.store import Store
from tests.docker.conftest import HONEST_X, IMAGE, Recorder, assert_honest, honest_notebook, make_notebook



def _image_without_warm_mode():
    try:
        client = docker.from_env(timeout=10)
        try:
            labels = client.images.get(IMAGE).labels or {}
        finally:
            client.close()
    except Exception:
        return False  # conftest skips the folder with its own reason
    return labels.get(LABEL_RUNNER_WARM) != "1"


pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(_image_without_warm_mode(), reason=f"runner image {IMAGE} has no warm mode (built "
                       "from an older runner.py); rebuild it with `bash runner-image/build.sh`"),
]


@pytest.fixture
def client():
    c = docker.from_env()
    yield c
    c.close()


def warm_containers(client, instance):
    """Containers of the instance that started warm (idle or carrying a job)."""
    return client.containers.list(ignore_removed=True, all=True,
                                  filters={"label": [f"{LABEL_INSTANCE}={instance}", LABEL_WARM]})


def spy_assignments(ex):
    """Record what each take from the warm pool gave (a Warm, or None: cold)."""
    got = []
    real = ex.pool.take

    def take(spec, cname):
        entry = real(spec, cname)
        got.append((spec.job_id, entry))
        return entry

    ex.pool.take = take
    return got


async def wait_for(predicate, timeout=60.0):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if await predicate():
            return True
        await asyncio.sleep(0.1)
    return False


async def started_warm(make_executor, **traits):
    ex = make_executor(**traits)
    await ex.start()
    assert await ex.pool.wait_ready(90), "the warm pool did not fill"
    return ex


async def test_warm_job_succeeds_with_its_output_events_and_usage(make_executor, make_job, client):
    ex = await started_warm(make_executor, warm_pool=1)
    try:
        assert await ex.running() == []  # an idle warm container is no job
        idle = [c.id for c in warm_containers(client, ex.instance)]
        assert len(idle) == 1
        # The idle container refills at a low cpu weight (the running jobs come first).
        shares = Path(ex.cgroup_root) / "cpu" / ex.cgroup_parent / ex.pool.idle[0].key / "cpu.shares"
        if shares.exists():
            assert int(shares.read_text()) == ex.warm_cpu_shares == 2
        got = spy_assignments(ex)
        spec = make_job(honest_notebook(), parameters={"x": HONEST_X})
        rec = Recorder()
        out = await ex.run(spec, rec.on_event, rec.on_log)
        assert_honest(spec, out, rec)
        assert got[0][1] is not None and got[0][1].container_id == idle[0], "the job did not start warm"
        kinds = [e["event"] for e in rec.events]
        assert "ready" not in kinds and "assigned" not in kinds  # the pool's own events stay inside
        # Usage is the job's: the warm start-up (~1-2 s of cpu) is left out.
        assert out.used.peak_memory and out.used.peak_memory < 512 << 20
        assert out.used.cpu_seconds is not None and out.used.cpu_seconds < 1.0, out.used
        assert out.used.wall_seconds is not None and out.used.wall_seconds < 10, out.used
        # The job is no longer held, and its container goes with its volume (just after its outcome), never
        # back in the pool.
        assert await ex.running() == []

        async def removed():
            return not (client.containers.list(ignore_removed=True, all=True, filters={"id": idle[0]})
                        or client.volumes.list(filters={"label": f"{LABEL_WARM}={got[0][1].key}"}))

        assert await wait_for(removed, 10)
    finally:
        await ex.stop()


async def test_resized_limits_are_applied_and_enforced(make_executor, make_job, client):
    ex = await started_warm(make_executor, warm_pool=1, warm_memory=512 << 20, warm_cpu=1.0)
    try:
        got = spy_assignments(ex)
        spec = make_job(make_notebook(
            "import pathlib, time\npathlib.Path('go').touch()\nwhile not pathlib.Path('checked').exists(): time.sleep(0.05)",
            "blob = bytearray(300 << 20)\nblob[::4096] = b'x' * len(blob[::4096])",
        ), memory=160 << 20, cpu=0.5, timeout=90)
        rec = Recorder()
        task = asyncio.create_task(ex.run(spec, rec.on_event, rec.on_log))
        cname = ex.names.job(spec.job_id)[0]

        async def in_first_cell():
            return any(e["event"] == "cell_started" for e in rec.events)

        assert await wait_for(in_first_cell), rec.log_text[-2000:]
        attrs = client.api.inspect_container(cname)
        assert got[0][1] is not None and attrs["Id"] == got[0][1].container_id
        hc = attrs["HostConfig"]
        assert hc["Memory"] == 160 << 20 and hc["MemorySwap"] == 160 << 20
        assert hc["NanoCpus"] == 500_000_000
        assert ex.sandbox.check(spec, attrs) == []
        # And in the kernel's cgroup files, where the limits really act (cgroup v1 here).
        cg = Path(ex.cgroup_root) / "memory" / ex.cgroup_parent / got[0][1].key / attrs["Id"]
        if (cg / "memory.limit_in_bytes").exists():
            assert int((cg / "memory.limit_in_bytes").read_text()) == 160 << 20
            cpu = Path(ex.cgroup_root) / "cpu" / ex.cgroup_parent / got[0][1].key / attrs["Id"]
            assert int((cpu / "cpu.cfs_quota_us").read_text()) * 2 == int((cpu / "cpu.cfs_period_us").read_text())
            # The job's cpu weight (its half core's part of 1024), no longer the idle pool's.
            assert int((cpu.parent / "cpu.shares").read_text()) == 512
        # Let the notebook go on: 300 MB is over the resized 160 MB (the warm 512 MB would hold it).
        client.api.put_archive(attrs["Id"], "/work/job/files", _tar_with("checked"))
        out = await asyncio.wait_for(task, 90)
        assert out.status == "failed" and out.reason == "oom_killed", (out, rec.log_text[-2000:])
    finally:
        await ex.stop()


def _tar_with(name: str) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.uid = info.gid = 1000
        tar.addfile(info, io.BytesIO(b""))
    return buf.getvalue()


async def test_a_dropped_update_falls_back_to_a_cold_container(make_executor, make_job, client, monkeypatch):
    ex = await started_warm(make_executor, warm_pool=1)
    try:
        idle = [c.id for c in warm_containers(client, ex.instance)]
        got = spy_assignments(ex)
        real = Sandbox.check

        def update_dropped(sandbox, spec, attrs):  # what a daemon that ignores the update does
            problems = real(sandbox, spec, attrs)
            if (attrs.get("Config") or {}).get("Labels", {}).get(LABEL_WARM):
                problems.append("Memory is 536870912, wanted 268435456")
            return problems

        monkeypatch.setattr(Sandbox, "check", update_dropped)
        spec = make_job(honest_notebook(), parameters={"x": HONEST_X}, memory=256 << 20)
        rec = Recorder()
        out = await ex.run(spec, rec.on_event, rec.on_log)
        assert_honest(spec, out, rec)
        assert got == [(spec.job_id, None)]  # refused the warm one: ran cold
        assert idle[0] not in [c.id for c in client.containers.list(ignore_removed=True, all=True)]  # and discarded it
    finally:
        await ex.stop()


async def test_jobs_never_share_a_container_and_the_pool_refills(make_executor, make_job, client):
    ex = await started_warm(make_executor, warm_pool=2)
    try:
        got = spy_assignments(ex)
        ran_in = {}  # job id -> the container its events came from

        def watch(spec):
            async def on_event(event):
                if spec.job_id not in ran_in:
                    attrs = await asyncio.to_thread(client.api.inspect_container, ex.names.job(spec.job_id)[0])
                    ran_in[spec.job_id] = attrs["Id"]
            return on_event

        specs = [make_job(make_notebook(f"import pathlib\npathlib.Path('me').write_text('{i}')"))
                 for i in range(4)]
        outs = await asyncio.gather(*(ex.run(s, watch(s), lambda l: None) for s in specs))
        assert [o.status for o in outs] == ["succeeded"] * 4, outs
        assert [(s.files_dir / "me").read_text() for s in specs] == [str(i) for i in range(4)]
        used = list(ran_in.values())
        assert len(used) == 4 and len(set(used)) == 4  # four jobs, four containers
        warm_used = [e.container_id for _, e in got if e is not None]
        assert len(warm_used) >= 2 and len(set(warm_used)) == len(warm_used)
        # The pool refills with new containers; none of the used ones comes back.
        assert await ex.pool.wait_ready(90)
        pool = {c.id for c in warm_containers(client, ex.instance)}
        assert len(pool) == 2 and not pool & set(used)
        assert await ex.running() == []
        assert all(c.name.startswith("notebook-jobs.warm.") for c in warm_containers(client, ex.instance))
    finally:
        await ex.stop()


async def test_recovery_after_kill_collects_a_warm_started_job(make_executor, make_job, client):
    first = await started_warm(make_executor, warm_pool=1)
    got = spy_assignments(first)
    # (long enough to be still running after two refills of the pool, each seconds long here)
    spec = make_job(make_notebook(
        "import time, pathlib\ntime.sleep(20)",
        "pathlib.Path('slow.txt').write_text('slept')\nprint('slow done')",
    ), timeout=60)
    # A second job was given its warm container (renamed, inputs in) but the service died
    # before writing its line to stdin: the restarted service must deliver it.
    undelivered = make_job(honest_notebook(), parameters={"x": HONEST_X})
    rec = Recorder()
    task = asyncio.create_task(first.run(spec, rec.on_event, rec.on_log))

    async def in_first_cell():
        return any(e["event"] == "cell_started" for e in rec.events)

    assert await wait_for(in_first_cell), rec.log_text[-2000:]
    assert got[0][1] is not None
    assert await first.pool.wait_ready(90)  # the refilled pool: taken by the undelivered job
    entry = await asyncio.to_thread(first.pool.take, undelivered, first.names.job(undelivered.job_id)[0])
    assert entry is not None
    assert await first.pool.wait_ready(90)  # refilled again: an idle orphan for the next service
    orphan = [c.id for c in warm_containers(client, first.instance) if c.name.startswith("notebook-jobs.warm.")]
    assert len(orphan) == 1
    # kill -9: the service's tasks vanish, nothing is stopped or removed.
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    second = make_executor(warm_pool=1)
    await second.start()
    try:
        # the dead one's idle container
        assert orphan[0] not in [c.id for c in client.containers.list(ignore_removed=True, all=True)]
        assert await second.running() == sorted([spec.job_id, undelivered.job_id])
        recs = {spec.job_id: Recorder(), undelivered.job_id: Recorder()}
        outs = await asyncio.gather(*[
            second.reattach(s, recs[s.job_id].on_event, recs[s.job_id].on_log) for s in (spec, undelivered)])
        assert outs[0].status == "succeeded", (outs[0], recs[spec.job_id].log_text[-2000:])
        assert (spec.files_dir / "slow.txt").read_text() == "slept"
        out_nb = nbformat.read(str(spec.output_path), as_version=4)
        assert "slow done" in out_nb.cells[-1].outputs[0]["text"]
        kinds = [e["event"] for e in recs[spec.job_id].events]
        assert kinds[0] == "started" and kinds[-1] == "finished" and "assigned" not in kinds
        # Usage without the warm start-up, even though this service never saw the assignment.
        assert outs[0].used.cpu_seconds is not None and outs[0].used.cpu_seconds < 1.5, outs[0].used
        assert 20 <= outs[0].used.wall_seconds < 31, outs[0].used
        assert_honest(undelivered, outs[1], recs[undelivered.job_id])
        assert await second.running() == []
        assert await second.pool.wait_ready(90)
    finally:
        await second.stop()
    assert not warm_containers(client, second.instance)
    assert not client.volumes.list(filters={"label": [f"{LABEL_INSTANCE}={second.instance}", LABEL_WARM]})


async def test_idle_warm_containers_are_removed_on_stop_and_on_start(make_executor, client):
    dead = await started_warm(make_executor, warm_pool=2)
    assert len(warm_containers(client, dead.instance)) == 2
    # A service that died with a full pool (never stopped): the next start removes it.
    fresh = make_executor()  # no pool of its own
    await fresh.start()
    try:
        assert not warm_containers(client, dead.instance)
        assert not client.volumes.list(filters={"label": [f"{LABEL_INSTANCE}={dead.instance}", LABEL_WARM]})
        assert await fresh.running() == []
    finally:
        await fresh.stop()
    ex = await started_warm(make_executor, warm_pool=2)
    assert len(warm_containers(client, ex.instance)) == 2
    await ex.stop()
    assert not warm_containers(client, ex.instance)
    assert not client.volumes.list(filters={"label": [f"{LABEL_INSTANCE}={ex.instance}", LABEL_WARM]})


async def test_unsafe_job_ids_go_cold_and_cold_is_the_default(make_executor, make_job, client):
    """warm_pool = 0 (the default) runs cold, and non-name-safe job ids never take a warm container."""
    ex = await started_warm(make_executor, warm_pool=1)
    try:
        got = spy_assignments(ex)
        spec = make_job(make_notebook("print('cold')"))
        spec.job_id = spec.job_id + "/odd id"
        out = await ex.run(spec, lambda e: None, lambda l: None)
        assert out.status == "succeeded", out
        assert got == []  # never tried: a restarted service could not find it by name
        assert ex.pool.count() == 1
    finally:
        await ex.stop()
    cold = make_executor()
    assert cold.warm_pool == 0
    assert json.loads(job_line(spec, ex.workdir))["cwd"] == "/work/job/files"


class LoopLag:
    """The longest the event loop went without running a 50 ms ticker, while it ticks."""

    def __init__(self):
        self.worst = 0.0
        self._task = None
        self._last = 0.0

    def _gap(self):
        now = asyncio.get_running_loop().time()
        self.worst = max(self.worst, now - self._last - 0.05)
        self._last = now

    async def _tick(self):
        self._last = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(0.05)
            self._gap()

    async def __aenter__(self):
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0.1)  # ticking before what it measures
        return self

    async def __aexit__(self, *exc):
        self._gap()  # (a stall just before: the ticker may not have run since)
        self._task.cancel()


async def timed(awaitable):
    """(seconds the awaitable took, its result or exception)."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    result = (await asyncio.gather(awaitable, return_exceptions=True))[0]
    return loop.time() - t0, result


async def test_letting_go_of_a_followed_job_never_waits_for_its_output(make_executor, make_job, client):
    """A job that started warm, or was found again after a restart, is followed through the
    daemon's log; a cancelled follow, the executor's stop() and cancel() return at once while
    the job writes nothing (a minute-long cell), and the event loop runs on meanwhile."""
    first = await started_warm(make_executor, warm_pool=1)
    got = spy_assignments(first)
    spec = make_job(make_notebook("import time\ntime.sleep(60)", "print('woke')"), timeout=300)
    rec = Recorder()
    task = asyncio.create_task(first.run(spec, rec.on_event, rec.on_log))

    async def in_first_cell():
        return any(e["event"] == "cell_started" for e in rec.events)

    assert await wait_for(in_first_cell), rec.log_text[-2000:]
    assert got[0][1] is not None, "the job did not start warm"
    async with LoopLag() as lag:
        task.cancel()  # the service gave up on the job (its task went away)
        took, result = await timed(task)
    assert isinstance(result, asyncio.CancelledError), result
    assert took < 5 and lag.worst < 1.5, (took, lag.worst)
    await first.stop()

    async def reattached(ex):
        await ex.start()
        follow = asyncio.create_task(ex.reattach(spec, lambda e: None, lambda l: None))

        async def reading():
            job = ex._jobs.get(spec.job_id)
            return job is not None and job.stream is not None

        assert await wait_for(reading, 30)
        await asyncio.sleep(1)  # (the reader is now blocked in the log's next read)
        return follow

    second = make_executor()
    follow = await reattached(second)
    async with LoopLag() as lag:
        took, result = await timed(second.stop())  # the service stops: the job goes on
        assert result is None, result
        took_follow, result = await timed(follow)
    assert isinstance(result, asyncio.CancelledError), result
    assert took < 5 and took_follow < 1 and lag.worst < 1.5, (took, took_follow, lag.worst)
    assert client.api.inspect_container(second.names.job(spec.job_id)[0])["State"]["Running"]

    third = make_executor()
    follow = await reattached(third)
    try:
        async with LoopLag() as lag:
            took, _ = await timed(third.cancel(spec.job_id))
            took_follow, out = await timed(follow)
        assert out.status == "cancelled", out
        assert took < 5 and took_follow < 10 and lag.worst < 1.5, (took, took_follow, lag.worst)
    finally:
        await third.stop()


def _past_runs(hour_start: float, days: int, per_hour: int) -> list:
    """Finished trivial jobs as the demand model reads them: ``per_hour`` in the hour starting at
    ``hour_start`` on each of the ``days`` days before, and one at the midnight the history starts at."""
    def run(at):
        return {"submit_time": at, "user": "ann", "code_cells": 1, "source_bytes": 10, "imports": [],
                "params": {"x": 1}, "status": "succeeded", "reason": None, "predicted": {},
                "allocated": {"cpu": 1.0, "memory": 1 << 30, "timeout": 600},
                "used": {"peak_memory": 100 << 20, "cpu_seconds": 0.7, "wall_seconds": 1.0}}

    midnight = hour_start - hour_start % 86400
    return [run(midnight - days * 86400)] + [run(hour_start - day * 86400 + i * 3600 / per_hour)
                                             for day in range(1, days + 1) for i in range(per_hour)]


async def test_the_pool_is_sized_from_the_demand_forecast(make_executor, tmp_path, client):
    """As many warm containers as the forecast expects jobs in the next minute, between warm_pool and
    warm_pool_max, the way the service gets there: the hour's load from the model's worker, which the
    dispatch pass hands the executor; no forecast, warm_pool again (idle ones past it removed)."""
    now = time.time()
    sizing = Sizing(offload=Offload(inline=True), model_dir=str(tmp_path / "models"))
    # 150 jobs in this hour of each of the last 7 days: 2.5 a minute. (Trained as of this midnight: the
    # forecast's days run from its training's hour, and the history starts at a midnight.)
    Sizer(sizing.model_dir, **sizing.policy).retrain(_past_runs(now - now % 3600, 7, 150), now=now - now % 86400)
    load = await sizing.model_call(offload.load_factor, now, {"cpu": 2.0, "memory": 8 << 30})
    assert 120 <= load["jobs_per_hour"] <= 180, load

    ex = await started_warm(make_executor, warm_pool=1, warm_pool_max=4)
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    manager = JobManager(store=store, artifacts=Artifacts(tmp_path / "data"), executor=ex, dispatcher=Dispatcher(),
                         sizing=sizing, planner=DemandPlanner(store=store, sizing=sizing, dispatcher=Dispatcher()))
    try:
        assert len(warm_containers(client, ex.instance)) == 1
        manager.planner.load = load
        manager.dispatch_once()
        expected = math.ceil(load["jobs_per_hour"] / 60)  # 2 or 3: more than warm_pool, fewer than the most
        assert ex.pool.target == expected and await ex.pool.wait_ready(120)
        assert len(warm_containers(client, ex.instance)) == expected
        manager.planner.load = dict(load, jobs_per_hour=100_000.0)  # a rush: no more than warm_pool_max
        manager.dispatch_once()
        assert ex.pool.target == 4 and await ex.pool.wait_ready(120)
        manager.planner.load = {}  # no model: the fixed warm_pool, the rest removed
        manager.dispatch_once()
        assert ex.pool.target == 1
        assert await wait_for(lambda: asyncio.to_thread(lambda: len(warm_containers(client, ex.instance)) == 1))
        assert ex.pool.count() == 1 and await ex.pool.wait_ready(60)
    finally:
        await ex.stop()
        store.close()
