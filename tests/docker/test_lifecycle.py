"""The docker executor's life cycle: sandbox checks at create, cancel, removal after the outcome, and
recovery of jobs after a restart of the service (a new executor instance)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import docker
import nbformat
import pytest

from tests.docker.conftest import HONEST_X, Recorder, assert_honest, honest_notebook, make_notebook
from hub_service.executors.docker import LABEL_INSTANCE, LABEL_JOB, LABEL_USER, parse_time
from hub_service.executors.docker.sandbox import Sandbox

pytestmark = pytest.mark.asyncio


@pytest.fixture
def client():
    c = docker.from_env()
    yield c
    c.close()


async def test_host_config_carries_every_limit(make_executor, make_job, client):
    ex = make_executor(pids_limit=77, nofile=333, fsize=12345678, tmpfs_size=50 << 20, log_max_size="3m")
    spec = make_job(make_notebook("1"), memory=300 << 20, cpu=1.5)
    container, _ = await asyncio.to_thread(ex._create, spec)
    attrs = client.api.inspect_container(container.id)
    hc = attrs["HostConfig"]
    assert hc["Memory"] == 300 << 20 and hc["MemorySwap"] == 300 << 20
    assert hc["NanoCpus"] == 1_500_000_000
    assert hc["PidsLimit"] == 77
    assert hc["CapDrop"] == ["ALL"] and not hc["CapAdd"]
    assert any(o.startswith("no-new-privileges") for o in hc["SecurityOpt"])
    assert hc["NetworkMode"] == "none"
    assert hc["ReadonlyRootfs"] is True and hc["Privileged"] is False
    assert "size=52428800" in hc["Tmpfs"]["/tmp"]
    assert {u["Name"]: (u["Soft"], u["Hard"]) for u in hc["Ulimits"]} == {
        "nofile": (333, 333), "fsize": (12345678, 12345678)}
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "3m", "max-file": "1"}}
    assert not hc["Binds"] and [m["Type"] for m in attrs["Mounts"]] == ["volume"]
    assert attrs["Config"]["User"] == "1000:1000"
    labels = attrs["Config"]["Labels"]
    assert labels[LABEL_JOB] == spec.job_id and labels[LABEL_USER] == "alice"
    assert labels[LABEL_INSTANCE] == ex.instance
    assert ex.sandbox.check(spec, attrs) == []
    # Each dropped limit is noticed.
    for key, value in [("PidsLimit", 0), ("MemorySwap", -1), ("NanoCpus", 0), ("ReadonlyRootfs", False),
                       ("CapDrop", None), ("SecurityOpt", None), ("Ulimits", None), ("Tmpfs", None),
                       ("NetworkMode", "bridge"), ("Binds", ["/:/host"])]:
        broken = json.loads(json.dumps(attrs))
        broken["HostConfig"][key] = value
        assert ex.sandbox.check(spec, broken), key
    await ex.remove(spec.job_id)
    assert not client.containers.list(ignore_removed=True, all=True, filters={"label": f"{LABEL_JOB}={spec.job_id}"})


async def test_a_cold_jobs_work_volume_is_made_and_found_by_its_containers_creation(make_executor, make_job,
                                                                                     client):
    """The container's creation makes the work volume, with the job's labels, and its inspect says where the
    volume is: the executor neither creates the volume nor looks it up (each a call to the daemon per job)."""
    ex = make_executor()
    await ex.start()
    requests = []
    ex._gateway.api.hooks["response"].append(  # (the client is a requests session: each call it makes)
        lambda response, *args, **kwargs: requests.append((response.request.method, response.request.path_url)))
    spec = make_job(make_notebook("print('ran')"))
    volume = ex.names.job(spec.job_id)[1]
    labels = {}

    def on_event(event):
        if event["event"] == "started":  # (the volume is removed with its job)
            labels.update(client.api.inspect_volume(volume)["Labels"])

    rec = Recorder()
    out = await ex.run(spec, lambda event: (on_event(event), rec.on_event(event)), rec.on_log)
    await ex.stop()  # (its removal done)
    assert out.status == "succeeded", (out, rec.log_text[-2000:])
    assert labels == ex.names.job_labels(spec.job_id, spec.user)
    calls = [(method, path) for method, path in requests if volume in path or "/volumes/create" in path]
    assert calls and all(method == "DELETE" for method, _ in calls), calls  # (its removal's alone)


async def test_refuses_to_start_when_a_limit_was_dropped(make_executor, make_job, client, monkeypatch):
    ex = make_executor()
    await ex.start()
    real = Sandbox.create_kwargs

    def without_pids_limit(sandbox, spec, volume, cgroup_parent=None, **more):  # a daemon without the pids cgroup
        kw = real(sandbox, spec, volume, cgroup_parent, **more)
        kw.pop("pids_limit")
        return kw

    monkeypatch.setattr(Sandbox, "create_kwargs", without_pids_limit)
    spec = make_job(make_notebook("open('ran', 'w').write('yes')"))
    rec = Recorder()
    out = await ex.run(spec, rec.on_event, rec.on_log)
    assert out.status == "failed" and out.reason == "infrastructure"
    assert "PidsLimit" in out.message and "refusing to start" in out.message
    assert rec.events == []
    assert not client.containers.list(ignore_removed=True, all=True, filters={"label": f"{LABEL_JOB}={spec.job_id}"})
    assert not client.volumes.list(filters={"label": f"{LABEL_JOB}={spec.job_id}"})


async def test_start_explains_a_missing_image(make_executor):
    ex = make_executor(image="notebook-jobs-runner:does-not-exist")
    with pytest.raises(RuntimeError, match="build.sh"):
        await ex.start()


async def test_cancel_stops_a_running_job(executor, make_job, client):
    spec = make_job(make_notebook("import time\ntime.sleep(120)"))
    rec = Recorder()
    task = asyncio.create_task(executor.run(spec, rec.on_event, rec.on_log))
    for _ in range(300):
        if any(e["event"] == "cell_started" for e in rec.events):
            break
        await asyncio.sleep(0.1)
    assert await executor.running() == [spec.job_id]
    t0 = time.monotonic()
    assert await executor.cancel(spec.job_id) is True
    out = await asyncio.wait_for(task, 30)
    assert out.status == "cancelled" and out.reason == "cancelled"
    assert time.monotonic() - t0 < 10
    assert await executor.running() == []
    assert await executor.cancel("no-such-job") is False


async def test_reattach_after_restart_collects_finished_and_running_jobs(make_executor, make_job, client):
    first = make_executor()
    await first.start()
    # quick: still in its first cell when the service dies, done before it comes back
    quick = make_job(honest_notebook(sleep=2), parameters={"x": HONEST_X})
    slow = make_job(make_notebook(
        "import time, pathlib\ntime.sleep(6)",
        "pathlib.Path('slow.txt').write_text('slept')\nprint('slow done')",
    ), timeout=60)
    recs = {quick.job_id: Recorder(), slow.job_id: Recorder()}
    tasks = [asyncio.create_task(first.run(s, recs[s.job_id].on_event, recs[s.job_id].on_log)) for s in (quick, slow)]
    # Both containers are up and running: now the service "dies" (its tasks vanish).
    for _ in range(300):
        if all(any(e["event"] == "cell_started" for e in r.events) for r in recs.values()):
            break
        await asyncio.sleep(0.1)
    # One task is cancelled (the service's loop went away), the other sees the executor
    # stopped (a clean shutdown): neither kills its job.
    assert not any(t.done() for t in tasks)
    tasks[0].cancel()
    await first.stop()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results), results
    # The quick job ends while nobody watches.
    quick_name = first.names.job(quick.job_id)[0]
    for _ in range(300):
        if client.api.inspect_container(quick_name)["State"]["Status"] == "exited":
            break
        await asyncio.sleep(0.1)
    assert client.api.inspect_container(first.names.job(slow.job_id)[0])["State"]["Running"]

    quick_finished = parse_time(client.api.inspect_container(quick_name)["State"]["FinishedAt"])

    second = make_executor()  # the restarted service: same instance name, fresh state
    await second.start()
    assert await second.running() == sorted([quick.job_id, slow.job_id])
    other = make_executor(instance=second.instance + "-other")
    assert await other.running() == []

    new_recs = {quick.job_id: Recorder(), slow.job_id: Recorder()}
    outs = await asyncio.gather(*[
        second.reattach(s, new_recs[s.job_id].on_event, new_recs[s.job_id].on_log) for s in (quick, slow)])
    assert_honest(quick, outs[0], new_recs[quick.job_id])
    assert outs[0].finished == quick_finished  # its own end, not when the restarted service collected it
    assert outs[0].used.peak_memory and outs[0].used.cpu_seconds and outs[0].used.wall_seconds
    assert outs[1].status == "succeeded", (outs[1], new_recs[slow.job_id].log_text[-2000:])
    assert (slow.files_dir / "slow.txt").read_text() == "slept"
    assert new_recs[slow.job_id].events[-1] == {**new_recs[slow.job_id].events[-1], "event": "finished",
                                                "status": "succeeded"}
    out_nb = nbformat.read(str(slow.output_path), as_version=4)
    assert "slow done" in out_nb.cells[-1].outputs[0]["text"]
    assert await second.running() == []


async def test_recovery_touches_only_containers_of_jobs_its_own_store_knows(make_executor, make_job, client, tmp_path):
    """Even two deployments given the same instance name: the job id in the store is the proof."""
    from hub_service.dispatch import Dispatcher
    from hub_service.jobs import JobManager
    from hub_service.outputs import Artifacts
    from hub_service.sizing import Sizing
    from hub_service.store import Store

    neighbour = make_executor()
    await neighbour.start()
    theirs = make_job(make_notebook("import time\ntime.sleep(120)"))
    kept = make_job(make_notebook("print('ended')"))
    assert (await make_executor(keep_containers=True).run(kept, lambda e: None, lambda l: None)).status == "succeeded"
    task = asyncio.create_task(neighbour.run(theirs, lambda e: None, lambda l: None))
    for _ in range(300):
        if theirs.job_id in await neighbour.running():
            break
        await asyncio.sleep(0.1)

    store = Store(f"sqlite:///{tmp_path / 'ours.sqlite'}")
    job = store.create_job(id=kept.job_id, user="alice", input_hash="0" * 64, input_kind="ipynb", parameters={},
                           output_formats=["ipynb"], features={}, requested={}, predicted={}, used={},
                           allocated={"cpu": 1, "memory": 1 << 28, "timeout": 60})
    store.transition(job.id, "running")
    store.transition(job.id, "succeeded")  # ended, but its container was kept
    ours = make_executor()
    await ours.start()
    manager = JobManager(store=store, artifacts=Artifacts(tmp_path / "artifacts"), executor=ours,
                         dispatcher=Dispatcher(), sizing=Sizing(use_model=False))
    report = await manager.recover()
    assert report["removed"] == [kept.job_id] and report["foreign"] == [theirs.job_id], report
    assert client.api.inspect_container(neighbour.names.job(theirs.job_id)[0])["State"]["Running"]
    assert await ours.running() == [theirs.job_id]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await ours.stop()
    await neighbour.stop()
    store.close()


async def test_remove_clears_an_orphan(executor, make_job, client):
    spec = make_job(make_notebook("import time\ntime.sleep(120)"))
    task = asyncio.create_task(executor.run(spec, lambda e: None, lambda l: None))
    for _ in range(300):
        if await executor.running():
            break
        await asyncio.sleep(0.1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert await executor.running() == [spec.job_id]
    await executor.remove(spec.job_id)
    assert await executor.running() == []
    assert not client.volumes.list(filters={"label": f"{LABEL_JOB}={spec.job_id}"})


async def test_cell_error_and_parameters_reach_the_outcome(executor, make_job):
    spec = make_job(make_notebook("y = x * 2", "raise ValueError(f'bad {y}')", parameters="x = 1"),
                    parameters={"x": 21})
    rec = Recorder()
    out = await executor.run(spec, rec.on_event, rec.on_log)
    assert out.status == "failed" and out.reason == "cell_error"
    assert "ValueError: bad 42" in out.message and out.exit_code == 1
    assert out.cell == 2  # index in the submitted notebook (the parameters cell is 0)
    assert spec.output_path.exists()


async def test_start_refuses_unknown_runtime_and_unlisted_network(make_executor):
    with pytest.raises(RuntimeError, match="not registered"):
        await make_executor(runtime="no-such-runtime").start()
    with pytest.raises(RuntimeError, match="allowed_networks"):
        await make_executor(network="bridge").start()
    for shared in ("host", "container:hub"):  # even when listed: a namespace not the job's own
        with pytest.raises(RuntimeError, match="share a namespace"):
            await make_executor(network=shared, allowed_networks=[shared]).start()
    with pytest.raises(Exception, match="must not be root"):
        make_executor(user="0:0")


async def test_cgroup_cpu_shares_weighs_the_group_of_all_jobs(make_executor, client, instance):
    ex = make_executor(cgroup_cpu_shares=3000)
    shares = Path(ex.cgroup_root) / "cpu" / ex.cgroup_parent / "cpu.shares"
    if not (Path(ex.cgroup_root) / "cpu" / "cpu.shares").exists():
        pytest.skip("no writable cgroup v1 cpu controller here")
    before = shares.read_text() if shares.exists() else "1024"
    try:
        await ex.start()
        assert int(shares.read_text()) == 3000
        await ex.stop()
        shares.write_text("1024")
        untouched = make_executor(cgroup_cpu_shares=0)  # 0: left as it is
        await untouched.start()
        assert int(shares.read_text()) == 1024
        await untouched.stop()
    finally:
        shares.write_text(before)
    # By default: a busy process's weight per core of the daemon, on each level of a nested parent (only the
    # top one weighs against the host's other processes).
    nested = make_executor(cgroup_parent=f"nbj-test-{instance}/jobs")
    top = Path(nested.cgroup_root) / "cpu" / f"nbj-test-{instance}"
    try:
        await nested.start()
        weights = [int((d / "cpu.shares").read_text()) for d in (top, top / "jobs")]
        assert weights == [1024 * client.info()["NCPU"]] * 2
        await nested.stop()
    finally:
        for d in (top / "jobs", top):
            if d.is_dir():
                d.rmdir()


async def test_the_outcome_comes_before_the_containers_removal_which_stop_waits_for(make_executor, make_job,
                                                                                     client):
    ex = make_executor()
    await ex.start()
    spec = make_job(honest_notebook(), parameters={"x": HONEST_X})
    label = {"label": f"{LABEL_JOB}={spec.job_id}"}
    removing, go_on = threading.Event(), threading.Event()
    remove = ex._remove_sync

    def held_removal(job_id, container_id=None):  # the real removal, once the test lets it go on
        removing.set()
        go_on.wait(60)
        remove(job_id, container_id)

    ex._remove_sync = held_removal
    stopped = None
    try:
        rec = Recorder()
        out = await asyncio.wait_for(ex.run(spec, rec.on_event, rec.on_log), 120)  # with its removal held
        assert_honest(spec, out, rec)
        assert await asyncio.to_thread(removing.wait, 10)
        assert client.containers.list(ignore_removed=True, all=True, filters=label)  # still there: its removal waits
        assert await ex.running() == []  # but the job is no longer held
        stopped = asyncio.ensure_future(ex.stop())
        await asyncio.sleep(0.5)
        assert not stopped.done()  # stop waits for the removal under way
        go_on.set()
        await asyncio.wait_for(stopped, 60)
        assert not client.containers.list(ignore_removed=True, all=True, filters=label)
        assert not client.volumes.list(filters=label)
    finally:
        go_on.set()
        if stopped is None:
            await ex.stop()
