"""A job's cpu as a request and a limit: its start-up may burst to an idle core, its notebook runs within its
allocation, and under contention its cgroup's weight gives it its allocation's part. Measured in the kernel's
cgroup files (cpu time, quota, shares), never by wall time."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import docker
import pytest

from tests.docker.conftest import Recorder, make_notebook

pytestmark = pytest.mark.asyncio

#: a cell that keeps ``procs`` processes spinning until the job is cancelled (or a minute passed)
SPIN = """
import multiprocessing as mp, time
def spin():
    end = time.time() + 60
    while time.time() < end:
        pass
procs = [mp.get_context("fork").Process(target=spin) for _ in range({procs})]
for p in procs: p.start()
for p in procs: p.join()
"""


@pytest.fixture
def client():
    c = docker.from_env()
    yield c
    c.close()


async def started(make_executor, **traits):
    ex = make_executor(**traits)
    await ex.start()
    if not ex.burst:
        await ex.stop()
        pytest.skip("the cgroup tree is not writable here: no cpu burst")
    return ex


async def in_first_cell(rec: Recorder, task: asyncio.Task, timeout: float = 90.0) -> None:
    """Wait until the job's first cell runs (its run must not have ended before)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not any(e["event"] == "cell_started" for e in rec.events):
        assert not task.done(), (task.result(), rec.log_text[-2000:])
        assert loop.time() < end, rec.log_text[-2000:]
        await asyncio.sleep(0.05)


def cpu_seconds(ex, job_id: str) -> float:
    """cpu seconds the job's cgroup has used so far (the kernel's own count)."""
    return ex.cgroups.usage(job_id)["cpu_seconds"]


async def cpu_rates(ex, job_ids: list, seconds: float) -> list:
    """Cores each job used over the same ``seconds``, from its cgroup."""
    before = [cpu_seconds(ex, j) for j in job_ids]
    t0 = asyncio.get_running_loop().time()
    await asyncio.sleep(seconds)
    after = [cpu_seconds(ex, j) for j in job_ids]
    took = asyncio.get_running_loop().time() - t0
    return [(a - b) / took for a, b in zip(after, before)]


async def test_a_start_up_bursts_and_the_notebook_runs_within_its_allocation(make_executor, make_job, client):
    ex = await started(make_executor, cpu_burst=1.0)
    try:
        spec = make_job(make_notebook(SPIN.format(procs=4)), cpu=0.25, timeout=120)
        cname = ex.names.job(spec.job_id)[0]
        rec = Recorder()
        task = asyncio.create_task(ex.run(spec, rec.on_event, rec.on_log))
        limits = []  # the container's cpu limit as the daemon has it, from its creation to its first cell

        async def watch():
            while True:
                try:
                    attrs = await asyncio.to_thread(client.api.inspect_container, cname)
                    limits.append(attrs["HostConfig"]["NanoCpus"])
                except docker.errors.NotFound:
                    pass
                await asyncio.sleep(0.02)

        watcher = asyncio.create_task(watch())
        try:
            await in_first_cell(rec, task)
        finally:
            watcher.cancel()
        # Its runner and kernel started with a whole core; its cells run with its quarter.
        assert limits and limits[0] == 1_000_000_000, limits
        assert set(limits) <= {1_000_000_000, 250_000_000}, limits
        attrs = await asyncio.to_thread(client.api.inspect_container, cname)
        assert attrs["HostConfig"]["NanoCpus"] == 250_000_000
        assert ex.sandbox.check(spec, attrs) == []
        cg = Path(ex.cgroup_root) / "cpu" / ex.cgroup_parent / spec.job_id
        if (cg / "cpu.shares").exists():  # (cgroup v1 here: the files the kernel acts on)
            assert int((cg / "cpu.shares").read_text()) == 256  # its weight: a quarter of a core's 1024
            container = cg / attrs["Id"]
            assert int((container / "cpu.cfs_quota_us").read_text()) * 4 == int(
                (container / "cpu.cfs_period_us").read_text())
        # Four spinners on two cores: the job takes its quarter core, not the idle rest.
        [rate] = await cpu_rates(ex, [spec.job_id], 2.0)
        assert rate <= 0.25 * 1.1 + 0.02, rate
        await ex.cancel(spec.job_id)
        out = await asyncio.wait_for(task, 60)
        assert out.status == "cancelled", out
    finally:
        await ex.stop()


@pytest.fixture
def pinned_parent(instance):
    """A cgroup parent of the test's own whose jobs may run on cpu 0 only (cgroup v1's cpuset)."""
    root = Path("/sys/fs/cgroup")
    cpuset = root / "cpuset"
    if not (cpuset / "cpuset.cpus").exists() or not os.access(cpuset, os.W_OK):
        pytest.skip("no writable cgroup v1 cpuset here to pin the jobs to one cpu")
    name = f"nbj-test-pinned-{instance}"
    (cpuset / name).mkdir()
    (cpuset / name / "cpuset.mems").write_text((cpuset / "cpuset.mems").read_text())
    (cpuset / name / "cpuset.cpus").write_text("0")
    yield name
    for path in root.glob(f"*/{name}"):  # (the jobs' own cgroups went with their containers)
        try:
            path.rmdir()
        except OSError:
            pass


async def test_under_contention_each_job_gets_its_allocations_part(make_executor, make_job, pinned_parent):
    ex = await started(make_executor, cgroup_parent=pinned_parent, cpu_burst=1.0)
    try:
        # On one cpu, neither limit binds (1 core; half a core, above the third its weight gives it): only
        # the weights, 1024 and 512, split the core. With equal weights each would get half.
        big = make_job(make_notebook(SPIN.format(procs=2)), cpu=1.0, timeout=120)
        small = make_job(make_notebook(SPIN.format(procs=2)), cpu=0.5, timeout=120)
        recs = [Recorder(), Recorder()]
        tasks = [asyncio.create_task(ex.run(spec, rec.on_event, rec.on_log)) for spec, rec in zip((big, small), recs)]
        for rec, task in zip(recs, tasks):
            await in_first_cell(rec, task)
        base = Path(ex.cgroup_root) / "cpu" / pinned_parent
        assert [int((base / s.job_id / "cpu.shares").read_text()) for s in (big, small)] == [1024, 512]
        await asyncio.sleep(0.5)  # (both spinning)
        rates = await cpu_rates(ex, [big.job_id, small.job_id], 3.0)
        assert sum(rates) <= 1.05, rates  # pinned: one cpu between them
        assert 1.6 <= rates[0] / rates[1] <= 2.5, rates
        for spec in (big, small):
            await ex.cancel(spec.job_id)
        outs = await asyncio.wait_for(asyncio.gather(*tasks), 60)
        assert [o.status for o in outs] == ["cancelled", "cancelled"], outs
    finally:
        await ex.stop()


async def test_the_burst_is_within_the_daemons_cores_and_off_without_the_jobs_weights(make_executor, make_job,
                                                                                        client, tmp_path):
    ex = await started(make_executor, cpu_burst=1000.0)
    await ex.stop()
    assert ex.burst == client.info()["NCPU"]  # (the daemon refuses a limit above its cores)
    spec = make_job(make_notebook("1"), cpu=0.25)
    for traits in ({"cpu_burst": 0.0},  # off: the allocation throughout, as before
                   {"cgroup_root": str(tmp_path)}):  # no cgroup tree to weigh the jobs in: no burst either
        ex = make_executor(**traits)
        await ex.start()
        try:
            assert ex.burst == 0.0
            container, _ = await asyncio.to_thread(ex._create, spec)
            assert client.api.inspect_container(container.id)["HostConfig"]["NanoCpus"] == 250_000_000
        finally:
            await ex.remove(spec.job_id)
            await ex.stop()
    with pytest.raises(Exception, match="cpu_burst must be >= 0"):
        make_executor(cpu_burst=-1)


async def test_a_job_that_ended_before_its_first_cells_event_was_read_did_not_fail(make_executor, make_job, client):
    ex = await started(make_executor, cpu_burst=1.0)
    try:
        spec = make_job(make_notebook("print('done')"), cpu=0.25)
        cname = ex.names.job(spec.job_id)[0]
        rec = Recorder()

        def on_event(event):  # holds the loop at the job's first event until its container has ended
            rec.on_event(event)
            if event["event"] == "started":
                deadline = time.monotonic() + 60
                while client.api.inspect_container(cname)["State"]["Running"] and time.monotonic() < deadline:
                    time.sleep(0.05)

        out = await ex.run(spec, on_event, rec.on_log)
        assert out.status == "succeeded", (out, rec.log_text[-2000:])
        assert "cell_started" in [e["event"] for e in rec.events]  # (its limit was to be lowered after it ended)
    finally:
        await ex.stop()


async def test_a_job_whose_limit_cannot_be_lowered_runs_no_further(make_executor, make_job, client):
    if "runsc" not in (client.info().get("Runtimes") or {}):
        pytest.skip("gVisor (runsc) is not registered with dockerd")
    ex = make_executor(runtime="runsc")
    await ex.start()
    try:
        assert ex.burst == 0.0  # gVisor cannot lower a running container's limit: no burst there
        ex.burst = 1.0  # (past that gate, to meet a daemon that refuses the lowering)
        spec = make_job(make_notebook("import time; time.sleep(20); open('ran', 'w').write('yes')"), cpu=0.25)
        rec = Recorder()
        out = await ex.run(spec, rec.on_event, rec.on_log)
        assert out.status == "failed" and out.reason == "infrastructure", (out, rec.log_text[-2000:])
        assert "did not lower the job's cpu limit" in out.message
        assert out.used.wall_seconds is not None and out.used.wall_seconds < 15, out.used
        assert not (spec.files_dir / "ran").exists()
    finally:
        await ex.stop()
