"""The work quota measured by a meter container, for a service that cannot read the daemon's volumes
(the team deployment): a job past it is killed, one under it runs, the meter goes with its job, and
neither ``running()`` nor recovery takes a meter for a job."""

from __future__ import annotations

import asyncio
import textwrap
import time
from pathlib import Path

import docker
import pytest

from tests.docker.conftest import Recorder, make_notebook
from hub_service.executors.docker import LABEL_INSTANCE, parse_time
from hub_service.executors.docker.gateway import LABEL_METER, Gateway
from hub_service.executors.docker.meter import Meter

QUOTA = 16 << 20


def writer(mib: int, then_sleep: float = 0, first_sleep: float = 0) -> str:
    """A cell that writes ``mib`` MiB as 16 KiB files below a directory nobody may list (mode 100 while
    it writes, 000 after), so only a reader with DAC_READ_SEARCH counts them (each far under fsize)."""
    return textwrap.dedent(f"""
        import os, time
        time.sleep({first_sleep})
        os.makedirs("hidden/in")
        os.chmod("hidden", 0o100)
        for i in range({mib} * 64):
            with open(f"hidden/in/{{i}}.bin", "wb") as f:
                f.write(os.urandom(16 << 10))
        os.chmod("hidden", 0)
        print("WROTE", {mib}, "MiB", flush=True)
        time.sleep({then_sleep})
    """).strip()


@pytest.fixture
def client():
    c = docker.from_env()
    yield c
    c.close()


def meters(client, instance: str) -> list:
    """This instance's meter containers (inspected), running or not."""
    found, out = client.api.containers(all=True, filters={"label": [LABEL_METER, f"{LABEL_INSTANCE}={instance}"]}), []
    for c in found:
        try:
            out.append(client.api.inspect_container(c["Id"]))
        except docker.errors.NotFound:  # (removed since it was listed)
            pass
    return out


async def watch_meters(client, instance: str, seen: dict, until: asyncio.Event) -> None:
    """Record each meter of the instance (by id) while jobs run."""
    while not until.is_set():
        for attrs in await asyncio.to_thread(meters, client, instance):
            seen.setdefault(attrs["Id"], attrs)
        await asyncio.sleep(0.2)


async def test_meter_kills_a_job_past_the_quota_and_lets_one_under_it_run(make_executor, make_job, client):
    ex = make_executor(work_quota=QUOTA, work_quota_meter="container", fsize=1 << 20)
    await ex.start()
    assert ex.metering == "container"
    over = make_job(make_notebook(writer(32, then_sleep=60)))
    under = make_job(make_notebook(writer(8), "print('under done')"))
    recs = {over.job_id: Recorder(), under.job_id: Recorder()}
    seen, done = {}, asyncio.Event()
    watcher = asyncio.create_task(watch_meters(client, ex.instance, seen, done))
    t0 = time.monotonic()
    out_over, out_under = await asyncio.gather(*[ex.run(s, recs[s.job_id].on_event, recs[s.job_id].on_log)
                                                 for s in (over, under)])
    elapsed = time.monotonic() - t0
    done.set()
    await watcher

    assert out_over.status == "failed" and out_over.reason == "infrastructure", out_over
    assert f"work-volume quota of {QUOTA} bytes" in out_over.message
    assert elapsed < 45  # not its timeout, nor its 60 s sleep
    assert out_under.status == "succeeded", (out_under, recs[under.job_id].log_text[-2000:])

    # One meter per job, each confined, started after its job's container.
    by_job = {attrs["Config"]["Labels"]["org.jupyter.notebook-jobs.job-id"]: attrs for attrs in seen.values()}
    assert sorted(by_job) == sorted([over.job_id, under.job_id]) and len(seen) == 2
    for job_id, attrs in by_job.items():
        hc = attrs["HostConfig"]
        assert hc["CapDrop"] == ["ALL"] and hc["CapAdd"] == ["DAC_READ_SEARCH"]
        assert hc["ReadonlyRootfs"] is True and hc["NetworkMode"] == "none" and hc["Privileged"] is False
        assert hc["Memory"] > 0 and hc["PidsLimit"] > 0 and hc["NanoCpus"] > 0
        assert any(o.startswith("no-new-privileges") for o in hc["SecurityOpt"])
        assert [(m["Type"], m["Name"], m["RW"]) for m in attrs["Mounts"]] == [
            ("volume", ex.names.job(job_id)[1], False)]
        assert attrs["Config"]["Labels"][LABEL_INSTANCE] == ex.instance
    # Gone with their jobs, and no job's volume left.
    await ex.stop()
    assert meters(client, ex.instance) == []
    assert not client.volumes.list(filters={"label": f"{LABEL_INSTANCE}={ex.instance}"})


@pytest.mark.parametrize("metering", ["direct", "container"])
async def test_a_job_past_the_files_quota_is_killed_within_its_bytes(make_executor, make_job, metering):
    """Empty files cost no bytes but an inode each: 3,000 of them, hidden from all but DAC_READ_SEARCH,
    pass a quota of 1,000 entries, measured by this process or by the meter alike."""
    ex = make_executor(work_quota=QUOTA, work_quota_files=1000, work_quota_meter=metering)
    await ex.start()
    assert ex.metering == metering
    empties = make_job(make_notebook(textwrap.dedent("""
        import os, time
        os.makedirs("hidden/in")
        os.chmod("hidden", 0o100)
        for i in range(3000):
            open(f"hidden/in/{i}", "wb").close()
        os.chmod("hidden", 0)
        print("MADE 3000", flush=True)
        time.sleep(60)
    """).strip()))
    rec = Recorder()
    t0 = time.monotonic()
    out = await ex.run(empties, rec.on_event, rec.on_log)
    assert out.status == "failed" and out.reason == "infrastructure", (out, rec.log_text[-2000:])
    assert "work-volume quota of 1000 files and directories" in out.message, out
    assert time.monotonic() - t0 < 45  # not its 60 s sleep
    await ex.stop()


async def test_meter_starts_after_the_jobs_container(make_executor, make_job, client):
    """Off the job's critical path: the meter is made once the job's container has started."""
    ex = make_executor(work_quota=QUOTA, work_quota_meter="container", keep_containers=True)
    await ex.start()
    spec = make_job(make_notebook("import time\ntime.sleep(3)"))
    seen, done = {}, asyncio.Event()
    watcher = asyncio.create_task(watch_meters(client, ex.instance, seen, done))
    out = await ex.run(spec, lambda e: None, lambda l: None)
    done.set()
    await watcher
    assert out.status == "succeeded", out
    (attrs,) = seen.values()
    job = client.api.inspect_container(ex.names.job(spec.job_id)[0])
    assert parse_time(attrs["Created"]) > parse_time(job["State"]["StartedAt"])
    assert meters(client, ex.instance) == []  # gone with the job, though its container is kept
    await ex.remove(spec.job_id)
    await ex.stop()


async def test_a_meter_that_ends_before_its_job_is_replaced(make_executor, make_job, client):
    ex = make_executor(work_quota=QUOTA, work_quota_meter="container")
    await ex.start()
    spec = make_job(make_notebook(writer(32, then_sleep=60, first_sleep=6)))
    seen, done = {}, asyncio.Event()
    watcher = asyncio.create_task(watch_meters(client, ex.instance, seen, done))
    task = asyncio.create_task(ex.run(spec, lambda e: None, lambda l: None))
    for _ in range(100):
        if seen:
            break
        await asyncio.sleep(0.1)
    (first,) = seen
    client.api.remove_container(first, force=True)  # (before the job writes anything)
    out = await asyncio.wait_for(task, 60)
    done.set()
    await watcher
    assert out.status == "failed" and "work-volume quota" in out.message, out
    assert len(seen) == 2 and first in seen  # its successor measured the job
    assert meters(client, ex.instance) == []
    await ex.stop()


async def test_a_job_that_started_warm_is_metered_on_its_pool_volume(make_executor, make_job, client):
    ex = make_executor(work_quota=QUOTA, work_quota_meter="container", warm_pool=1)
    await ex.start()
    assert await ex.pool.wait_ready(90), "the warm pool did not fill"
    (idle,) = ex.pool.idle
    spec = make_job(make_notebook(writer(32, then_sleep=60)))
    seen, done = {}, asyncio.Event()
    watcher = asyncio.create_task(watch_meters(client, ex.instance, seen, done))
    t0 = time.monotonic()
    out = await ex.run(spec, lambda e: None, lambda l: None)
    done.set()
    await watcher
    assert out.status == "failed" and "work-volume quota" in out.message, out
    assert time.monotonic() - t0 < 45
    (attrs,) = seen.values()
    assert [m["Name"] for m in attrs["Mounts"]] == [idle.volume]  # (the pool's volume, not the job's name)
    assert meters(client, ex.instance) == []
    await ex.stop()


async def test_direct_and_off_need_no_meter(make_executor, make_job, client):
    """Here the volumes are readable (the tests run as root): "auto" walks them itself; "off" measures nothing."""
    auto = make_executor(work_quota=QUOTA)
    await auto.start()
    assert auto.metering == "direct"
    off = make_executor(work_quota=QUOTA, work_quota_meter="off")
    await off.start()
    assert off.metering is None
    out = await off.run(make_job(make_notebook(writer(32))), lambda e: None, lambda l: None)
    assert out.status == "succeeded", out  # unmeasured: nothing stops it
    assert meters(client, off.instance) == []
    await auto.stop()
    await off.stop()


async def test_recovery_takes_no_meter_for_a_job_and_removes_one_left_behind(make_executor, make_job, client,
                                                                             tmp_path):
    from hub_service.dispatch import Dispatcher
    from hub_service.jobs import JobManager
    from hub_service.outputs import Artifacts
    from hub_service.sizing import Sizing
    from hub_service.store import Store

    first = make_executor(work_quota=QUOTA, work_quota_meter="container", keep_containers=True)
    await first.start()
    # An ended job whose container was kept, and a meter a dead service left beside it.
    ended = make_job(make_notebook("print('ended')"))
    assert (await first.run(ended, lambda e: None, lambda l: None)).status == "succeeded"
    left = Meter(Gateway(), first.names, first.image, ended.job_id, "alice", first.names.job(ended.job_id)[1])
    await asyncio.to_thread(left.start, 0.5, (QUOTA, 0), 600)
    # A running job (its service died: the task cancelled), also with a meter left behind.
    running = make_job(make_notebook(writer(32, then_sleep=60, first_sleep=6)), timeout=90)
    task = asyncio.create_task(first.run(running, lambda e: None, lambda l: None))
    for _ in range(300):
        if any(a["Config"]["Labels"].get("org.jupyter.notebook-jobs.job-id") == running.job_id
               for a in meters(client, first.instance)):
            break
        await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await first.stop()
    stale = Meter(Gateway(), first.names, first.image, running.job_id, "alice",
                  first.names.job(running.job_id)[1])
    await asyncio.to_thread(stale.start, 0.5, (QUOTA, 0), 600)
    # And a meter alone, its job's container gone (a job id no store knows).
    client.volumes.create(first.names.job("ghost")[1], labels={LABEL_INSTANCE: first.instance})
    ghost = Meter(Gateway(), first.names, first.image, "ghost", "alice", first.names.job("ghost")[1])
    await asyncio.to_thread(ghost.start, 0.5, (QUOTA, 0), 600)
    assert len(meters(client, first.instance)) == 3

    second = make_executor(work_quota=QUOTA, work_quota_meter="container")  # the restarted service
    await second.start()
    assert await second.running() == sorted([ended.job_id, running.job_id])  # the meters are no jobs
    store = Store(f"sqlite:///{tmp_path / 'ours.sqlite'}")
    job = store.create_job(id=ended.job_id, user="alice", input_hash="0" * 64, input_kind="ipynb", parameters={},
                           output_formats=["ipynb"], features={}, requested={}, predicted={}, used={},
                           allocated={"cpu": 1, "memory": 1 << 28, "timeout": 60})
    store.transition(job.id, "running")
    store.transition(job.id, "succeeded")
    manager = JobManager(store=store, artifacts=Artifacts(tmp_path / "artifacts"), executor=second,
                         dispatcher=Dispatcher(), sizing=Sizing(use_model=False))
    report = await manager.recover()
    assert report["removed"] == [ended.job_id] and report["foreign"] == [running.job_id], report
    left_now = meters(client, second.instance)
    assert sorted(a["Id"] for a in left_now) == sorted([stale.container_id, ghost.container_id])  # (not ended's)
    assert not client.volumes.list(filters={"name": first.names.job(ended.job_id)[1]})

    # Reattached, the running job gets a meter of its own in place of the stale one, which kills it.
    rec = Recorder()
    out = await asyncio.wait_for(second.reattach(running, rec.on_event, rec.on_log), 80)
    assert out.status == "failed" and "work-volume quota" in out.message, (out, rec.log_text[-2000:])
    assert [a["Id"] for a in meters(client, second.instance)] == [ghost.container_id]
    assert await second.running() == []
    await second.stop()
    store.close()


def test_the_compose_deployment_meters_from_a_container(monkeypatch):
    """docker-compose.yml's service has the socket but not the daemon's volumes: its config asks for the meter."""
    from traitlets.config import PyFileConfigLoader

    from hub_service.executors.docker import DockerExecutor

    monkeypatch.setenv("SERVICE_DB_PASSWORD", "x")
    config = PyFileConfigLoader("notebook_jobs_config.py",
                                path=str(Path(__file__).parents[2] / "deploy" / "hub")).load_config()
    executor = DockerExecutor(config=config)
    assert executor.work_quota and executor.metering == "container"
