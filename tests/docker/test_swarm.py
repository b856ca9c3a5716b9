"""The swarm executor on a real single-node swarm: the docker executor's job contract and
sandbox, with each job a replicated-job service of the runner image.

The module's fixture makes this daemon a swarm manager when it is not one, and leaves the
swarm again at the end: the daemon is left as it was found. Jobs on a node other than the
service's are tested on a real two-node swarm of daemons of their own: test_swarm_nodes.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid

import docker
import nbformat
import psutil
import pytest
import pytest_asyncio

from hub_service.executors.docker import LABEL_INSTANCE, LABEL_JOB, LABEL_USER, SandboxError
from hub_service.executors.swarm import REPLACED, SwarmExecutor, service_spec
from hub_service.intake import IntakeError
from tests.docker.conftest import IMAGE, HONEST_X, Recorder, assert_honest, honest_notebook, make_notebook

pytestmark = pytest.mark.asyncio


@pytest.fixture(scope="module")
def swarm():
    """A swarm this daemon manages: made here (and left at the end) when there was none."""
    client = docker.from_env()
    state = (client.info().get("Swarm") or {}).get("LocalNodeState")
    made = False
    had_bridge = bool(client.api.networks(names=["docker_gwbridge"]))
    if state == "inactive":
        client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
        made = True
    elif not (client.info().get("Swarm") or {}).get("ControlAvailable"):
        pytest.skip(f"the daemon is in a swarm ({state}) but not a manager")
    yield client
    if made:
        client.swarm.leave(force=True)
        if not had_bridge:  # made by the init, and not removed by the leave
            for n in client.api.networks(names=["docker_gwbridge"]):
                client.api.remove_network(n["Id"])
    client.close()


@pytest.fixture
def client(swarm):
    return swarm


@pytest.fixture
def make_swarm_executor(swarm):
    """Factory of SwarmExecutors of one test instance; removes what they leave behind."""
    instance = "test-" + uuid.uuid4().hex[:8]

    def factory(**traits):
        traits.setdefault("instance", instance)
        traits.setdefault("image", IMAGE)
        traits.setdefault("poll_interval", 0.2)
        return SwarmExecutor(**traits)

    factory.instance = instance
    yield factory
    api, label = swarm.api, f"{LABEL_INSTANCE}={instance}"
    for s in api.services(filters={"label": label}):
        api.remove_service(s["ID"])
    for c in api.containers(all=True, filters={"label": label}):
        api.remove_container(c["Id"], force=True)
    for v in (api.volumes(filters={"label": label}) or {}).get("Volumes") or []:
        api.remove_volume(v["Name"], force=True)
    api.prune_networks(filters={"label": label})  # (the jobs' networks' copies on this node)
    # the config-only network (labelled), and the jobs' networks (no labels: named after their job)
    for n in api.networks(filters={"label": label}) + api.networks(names=[f"notebook-jobs-{instance}"]):
        try:
            api.remove_network(n["Id"])
        except docker.errors.APIError:  # (being deleted already: a 500 "not found")
            pass


@pytest_asyncio.fixture
async def swarm_executor(make_swarm_executor):
    ex = make_swarm_executor()
    await ex.start()
    yield ex
    await ex.stop()


async def wait_for(predicate, seconds=30.0):
    """Poll an async predicate until it holds (or fail)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached")


async def test_a_job_runs_as_a_service_with_progress_output_and_usage(swarm_executor, make_job, client):
    spec = make_job(honest_notebook(), parameters={"x": HONEST_X})
    rec = Recorder()
    out = await swarm_executor.run(spec, rec.on_event, rec.on_log)
    assert_honest(spec, out, rec)
    assert out.used.peak_memory and out.used.wall_seconds and out.finished
    assert not any(e["event"] in ("ready", "assigned") for e in rec.events)  # the task's warm-up is not the job's
    # Collected and gone: service, container, volume and network.
    label = {"label": [f"{LABEL_JOB}={spec.job_id}"]}
    assert not client.api.services(filters=label) and not client.api.containers(all=True, filters=label)
    assert not (client.api.volumes(filters=label) or {}).get("Volumes")

    async def network_gone():  # (the manager deletes a network once the task's endpoint is released)
        return not [n for n in client.api.networks() if spec.job_id in n["Name"]]

    await wait_for(network_gone, 10)
    assert await swarm_executor.running() == []


async def test_the_service_and_its_task_carry_the_whole_sandbox(make_swarm_executor, make_job, client):
    ex = make_swarm_executor(pids_limit=77, nofile=333, fsize=12345678, tmpfs_size=50 << 20, log_max_size="3m",
                             reserve=True)
    await ex.start()
    spec = make_job(make_notebook("import time\ntime.sleep(60)"), memory=300 << 20, cpu=1.5)
    task = asyncio.create_task(ex.run(spec, lambda e: None, lambda l: None))
    await wait_for(lambda: _has_container(client, spec.job_id))
    service = client.api.services(filters={"label": [f"{LABEL_JOB}={spec.job_id}"]})[0]["Spec"]
    assert service["Mode"] == {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}}
    tt = service["TaskTemplate"]
    assert tt["RestartPolicy"]["Condition"] == "none"
    assert tt["Placement"]["Constraints"] == [f"node.id=={client.info()['Swarm']['NodeID']}"]  # where it is read
    limits, reservations = tt["Resources"]["Limits"], tt["Resources"]["Reservations"]
    assert limits["MemoryBytes"] == reservations["MemoryBytes"] == 300 << 20
    assert limits["NanoCPUs"] == reservations["NanoCPUs"] == 1_500_000_000 and limits["Pids"] == 77
    labels = service["Labels"]
    assert labels[LABEL_JOB] == spec.job_id and labels[LABEL_USER] == "alice" and labels[LABEL_INSTANCE] == ex.instance
    cid = (await _has_container(client, spec.job_id))
    attrs = client.api.inspect_container(cid)
    hc = attrs["HostConfig"]
    assert hc["Memory"] == 300 << 20 and hc["NanoCpus"] == 1_500_000_000 and hc["PidsLimit"] == 77
    assert hc["CapDrop"] == ["ALL"] and not hc["CapAdd"] and hc["ReadonlyRootfs"] and not hc["Privileged"]
    assert {u["Name"]: (u["Soft"], u["Hard"]) for u in hc["Ulimits"]} == {
        "nofile": (333, 333), "fsize": (12345678, 12345678)}
    assert hc["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "3m", "max-file": "1"}}
    assert attrs["Config"]["User"] == "1000:1000"
    assert sorted(m["Type"] for m in attrs["Mounts"]) == ["tmpfs", "volume"]
    tmp = next(m for m in hc["Mounts"] if m["Type"] == "tmpfs")
    assert tmp["Target"] == "/tmp" and tmp["TmpfsOptions"]["SizeBytes"] == 50 << 20
    # Its network: its own (named after it), an internal bridge where the node has no address, nobody else's.
    (net_name,) = attrs["NetworkSettings"]["Networks"]
    assert spec.job_id in net_name
    net = client.api.inspect_network(net_name)
    assert (net["Driver"], net["Scope"], net["Internal"]) == ("bridge", "swarm", True)
    assert net["ConfigFrom"] == {"Network": ex.config_network}
    assert net["Options"]["com.docker.network.bridge.inhibit_ipv4"] == "true"
    assert list(net["Containers"]) == [cid]
    bridge = "br-" + net["Id"][:12]  # (the node's side of it: no address but IPv6's link-local)
    assert not [a for a in psutil.net_if_addrs()[bridge] if a.family == socket.AF_INET]
    assert ex.check_task(spec, attrs, net) == []
    for key, value in [("PidsLimit", 0), ("Memory", 0), ("ReadonlyRootfs", False), ("CapDrop", None),
                       ("Ulimits", None), ("Mounts", [])]:
        broken = json.loads(json.dumps(attrs))
        broken["HostConfig"][key] = value
        assert ex.check_task(spec, broken, net), key
    for key, value in [("Internal", False), ("Options", {}), ("Driver", "overlay"),
                       ("Containers", {cid: {}, "someone-else": {}})]:
        assert ex.check_task(spec, attrs, dict(net, **{key: value})), key
    assert await ex.cancel(spec.job_id)
    assert (await asyncio.wait_for(task, 30)).status == "cancelled"
    await ex.stop()


async def _has_container(client, job_id):
    found = client.api.containers(filters={"label": [f"{LABEL_JOB}={job_id}"]})
    return found[0]["Id"] if found else None


async def test_a_sandbox_option_swarm_cannot_express_stops_the_job(make_swarm_executor, make_job):
    ex = make_swarm_executor()
    spec = make_job(make_notebook("1"))
    kw = ex.sandbox.create_kwargs(spec, "v")
    parts = service_spec(kw, workdir=ex.workdir, volume_labels={})
    assert parts["resources"]["Limits"]["Pids"] == ex.pids_limit
    assert set(kw) - {"mounts", "tmpfs", "user", "cap_drop", "read_only", "mem_limit", "nano_cpus", "pids_limit",
                      "ulimits", "log_config"} <= set(REPLACED)
    with pytest.raises(SandboxError, match="oom_score_adj"):
        service_spec(dict(kw, oom_score_adj=500), workdir=ex.workdir, volume_labels={})


async def test_cell_error_and_parameters_reach_the_outcome(swarm_executor, make_job):
    spec = make_job(make_notebook("y = x * 2", "raise ValueError(f'bad {y}')", parameters="x = 1"),
                    parameters={"x": 21})
    rec = Recorder()
    out = await swarm_executor.run(spec, rec.on_event, rec.on_log)
    assert out.status == "failed" and out.reason == "cell_error", (out, rec.log_text[-2000:])
    assert "ValueError: bad 42" in out.message and out.exit_code == 1 and out.cell == 2
    assert spec.output_path.exists()


async def test_oom_kill_and_timeout_are_told_apart(swarm_executor, make_job):
    hog = make_job(make_notebook("blocks = []\nfor _ in range(4096):\n    blocks.append(b'\\x01' * (1 << 20))"),
                   memory=256 << 20)
    loop = make_job(make_notebook("while True:\n    pass"), timeout=4)
    (rh, rl) = Recorder(), Recorder()
    t0 = time.monotonic()
    out_h, out_l = await asyncio.gather(swarm_executor.run(hog, rh.on_event, rh.on_log),
                                        swarm_executor.run(loop, rl.on_event, rl.on_log))
    assert out_h.status == "failed" and out_h.reason == "oom_killed", (out_h, rh.log_text[-2000:])
    assert out_l.status == "failed" and out_l.reason == "timeout", (out_l, rl.log_text[-2000:])
    assert time.monotonic() - t0 < 30


async def test_cancel_stops_a_running_job(swarm_executor, make_job):
    spec = make_job(make_notebook("import time\ntime.sleep(120)"))
    rec = Recorder()
    task = asyncio.create_task(swarm_executor.run(spec, rec.on_event, rec.on_log))
    await wait_for(lambda: _started(rec))
    assert await swarm_executor.running() == [spec.job_id]
    t0 = time.monotonic()
    assert await swarm_executor.cancel(spec.job_id) is True
    out = await asyncio.wait_for(task, 30)
    assert out.status == "cancelled" and out.reason == "cancelled"
    assert time.monotonic() - t0 < 10
    assert await swarm_executor.running() == []
    assert await swarm_executor.cancel("no-such-job") is False


async def _started(rec):
    return any(e["event"] == "cell_started" for e in rec.events)


async def test_reattach_after_restart_collects_finished_and_running_jobs_of_its_own_instance(
        make_swarm_executor, make_job, client):
    first = make_swarm_executor()
    await first.start()
    quick = make_job(honest_notebook(sleep=2), parameters={"x": HONEST_X})
    slow = make_job(make_notebook("import time, pathlib\ntime.sleep(6)",
                                  "pathlib.Path('slow.txt').write_text('slept')\nprint('slow done')"), timeout=60)
    recs = {quick.job_id: Recorder(), slow.job_id: Recorder()}
    tasks = [asyncio.create_task(first.run(s, recs[s.job_id].on_event, recs[s.job_id].on_log)) for s in (quick, slow)]
    await wait_for(lambda: _all_started(recs.values()))
    tasks[0].cancel()  # the service's loop goes away ...
    await first.stop()  # ... or it stops cleanly: neither ends the job
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results), results
    await asyncio.sleep(3)  # the quick job ends while nobody watches

    second = make_swarm_executor()  # the restarted service: same instance, fresh state
    await second.start()
    assert await second.running() == sorted([quick.job_id, slow.job_id])
    other = make_swarm_executor(instance=second.instance + "-other")  # another deployment on the swarm
    await other.start()
    assert await other.running() == [] and await other.cancel(quick.job_id) is False
    new = {quick.job_id: Recorder(), slow.job_id: Recorder()}
    outs = await asyncio.gather(*[second.reattach(s, new[s.job_id].on_event, new[s.job_id].on_log)
                                  for s in (quick, slow)])
    assert_honest(quick, outs[0], new[quick.job_id])
    assert outs[1].status == "succeeded", (outs[1], new[slow.job_id].log_text[-2000:])
    assert (slow.files_dir / "slow.txt").read_text() == "slept"
    assert "slow done" in nbformat.read(str(slow.output_path), as_version=4).cells[-1].outputs[0]["text"]
    # exactly once: each job's notebook ran one time (one "started" in its whole log)
    for s in (quick, slow):
        assert [e["event"] for e in new[s.job_id].events].count("started") == 1
    assert await second.running() == []
    await second.stop()


async def _all_started(recs):
    return all(any(e["event"] == "cell_started" for e in r.events) for r in recs)


async def test_a_job_no_node_can_hold_fails_before_a_service_is_made(make_swarm_executor, make_job, client):
    ex = make_swarm_executor(start_timeout=3)
    await ex.start()
    spec = make_job(make_notebook("1"), memory=1 << 40)
    out = await ex.run(spec, lambda e: None, lambda l: None)
    assert out.status == "failed" and out.reason == "infrastructure"
    assert "no node of the swarm can hold the job" in out.message, out.message
    assert await ex.running() == []


@pytest.fixture
def gpu_pool_label(client):
    """This node labelled as a GPU pool's (gpu=true) for the test; its labels as they were after."""
    node_id = client.info()["Swarm"]["NodeID"]

    def relabel(change):
        node = client.api.inspect_node(node_id)
        spec = node["Spec"]
        spec["Labels"] = change(dict(spec.get("Labels") or {}))
        client.api.update_node(node_id, node["Version"]["Index"], spec)

    before = dict(client.api.inspect_node(node_id)["Spec"].get("Labels") or {})
    relabel(lambda labels: dict(labels, gpu="true"))
    yield relabel
    relabel(lambda labels: before)


async def swarm_says(client, service_id, words, seconds=20.0) -> None:
    """Wait until a service's task is in state ``words`` or Swarm says ``words`` of it (its status' Err:
    why it cannot place it)."""
    end, said = time.monotonic() + seconds, []
    while time.monotonic() < end:
        said = [((t.get("Status") or {}).get("State"), (t.get("Status") or {}).get("Err"))
                for t in client.api.tasks(filters={"service": service_id})]
        if any(words == state or words in (err or "") for state, err in said):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"Swarm did not say {words!r} of the task: {said}")


async def test_a_gpu_job_goes_to_the_gpu_pool_and_reserves_its_generic_resource(
        make_swarm_executor, make_job, client, gpu_pool_label):
    """This daemon advertises no generic resources (they come from dockerd's own configuration,
    node-generic-resources, which a test cannot change without restarting the daemon): the pool
    is found by its label, it has no GPU, and a GPU job is refused at submit and never made; the
    spec the executor makes for one is given to Swarm here directly, to see Swarm read it."""
    from docker.types import ContainerSpec, Placement, RestartPolicy, ServiceMode, TaskTemplate

    from hub_service.jobs import JobManager

    ex = make_swarm_executor(start_timeout=3)
    await ex.start()
    (node,) = ex.nodes()
    assert node["labels"]["gpu"] == "true" and node["gpus"] == 0
    assert ex.gpu_count() == 0 and ex.capacity()["gpu"] == 0 and ex.gpu_inventory() is None
    with pytest.raises(IntakeError) as refused:
        JobManager(executor=ex).check_gpus({"gpu": 1})
    assert (refused.value.status, refused.value.field) == (422, "/resources/gpu")
    assert refused.value.message == (
        f"1 GPU(s) requested, but this Hub's swarm backend has 0 on any one node of its GPU pool (node.id=="
        f"{node['id']}, node.labels.gpu==true; GPUs are the nodes' generic resources of kind NVIDIA-GPU)")
    spec = make_job(make_notebook("1"), gpu=1)
    out = await ex.run(spec, lambda e: None, lambda l: None)  # (queued before the pool shrank, say)
    assert (out.status, out.reason) == ("failed", "infrastructure")
    assert "no node of the swarm can hold the job's 1 GPU(s)" in out.message, out.message
    assert not client.api.services(filters={"label": f"{LABEL_JOB}={spec.job_id}"})

    parts = service_spec(ex.sandbox.create_kwargs(spec, "v"), workdir=ex.workdir, volume_labels={},
                         gpu_kind=ex.gpu_resource)

    def make(name, resources=None):
        template = TaskTemplate(ContainerSpec(IMAGE, command=["true"]), resources=resources,
                                placement=Placement(constraints=ex.placement(gpu=True)),
                                restart_policy=RestartPolicy(condition="none"))
        return client.api.create_service(template, name=f"{name}-{make_swarm_executor.instance}",
                                         labels={LABEL_INSTANCE: make_swarm_executor.instance},
                                         mode=ServiceMode("replicated-job"))["ID"]

    made = make("gpu", parts["resources"])
    task = client.api.inspect_service(made)["Spec"]["TaskTemplate"]
    assert task["Resources"]["Reservations"]["GenericResources"] == [
        {"DiscreteResourceSpec": {"Kind": "NVIDIA-GPU", "Value": 1}}]
    assert "node.labels.gpu==true" in task["Placement"]["Constraints"]
    await swarm_says(client, made, "insufficient resources on 1 node")  # in the pool, but no GPU there
    # The pool's constraint alone (nothing to reserve): placed on the labelled node, on no other.
    await swarm_says(client, make("pool"), "complete")
    gpu_pool_label(lambda labels: {k: v for k, v in labels.items() if k != "gpu"})
    await swarm_says(client, make("nopool"), "scheduling constraints not satisfied on 1 node")


async def test_start_refuses_what_swarm_cannot_honour(make_swarm_executor):
    for traits, words in [({"runtime": "runsc"}, "default-runtime"), ({"warm_pool": 2}, "resized"),
                          ({"warm_pool_max": 4}, "warm_pool_max=4: a task cannot be resized"),
                          ({"network": "bridge", "allowed_networks": ["bridge"]}, "own internal")]:
        with pytest.raises(RuntimeError, match=words):
            await make_swarm_executor(**traits).start()
    ex = make_swarm_executor()
    await ex.start()
    assert ex.health()["name"] == "swarm" and ex.health()["nodes"] >= 1
    # Each node for the admin, and the capacity the dispatcher would take from them.
    (node,) = ex.nodes()
    assert node["state"] == "ready" and node["role"] == "manager" and node["cpu"] == os.cpu_count()
    assert ex.capacity() == {"cpu": node["cpu"], "memory": node["memory"], "gpu": 0} and node["memory"] > 0
    # An admin's docker configuration holds on Swarm too: what it requires, Swarm refuses.
    from traitlets.config import Config

    with pytest.raises(RuntimeError, match="default-runtime"):
        await make_swarm_executor(config=Config({"DockerExecutor": {"runtime": "runsc"}})).start()


async def test_recovery_reattaches_its_own_and_leaves_a_neighbours_services_alone(
        make_swarm_executor, make_job, client, tmp_path):
    """JobManager.recover on Swarm: its running job reattached and finished once; the other
    deployment's job (same swarm, same instance name even) untouched."""
    from hub_service.dispatch import Dispatcher
    from hub_service.jobs import JobManager
    from hub_service.outputs import Artifacts
    from hub_service.sizing import Sizing
    from hub_service.store import Store

    store = Store(f"sqlite:///{tmp_path / 'ours.sqlite'}")
    artifacts = Artifacts(tmp_path / "artifacts")
    job = store.create_job(user="alice", input_hash="0" * 64, input_kind="ipynb", parameters={},
                           output_formats=["ipynb"], features={}, requested={}, predicted={}, used={},
                           allocated={"cpu": 1, "memory": 256 << 20, "timeout": 60})
    store.transition(job.id, "running")
    workdir = artifacts.job_dir(job.id)
    (workdir / "files").mkdir(parents=True)
    nbformat.write(make_notebook("import time\ntime.sleep(3)\nprint('ours done')"), str(workdir / "input.ipynb"))
    (workdir / "parameters.json").write_text("{}")
    from hub_service.executors.base import JobSpec

    ours_spec = JobSpec(job_id=job.id, workdir=workdir, user="alice", memory=256 << 20, cpu=1.0, timeout=60)
    first = make_swarm_executor()
    await first.start()
    rec = Recorder()
    t1 = asyncio.create_task(first.run(ours_spec, rec.on_event, rec.on_log))
    theirs = make_job(make_notebook("import time\ntime.sleep(120)"))
    neighbour = make_swarm_executor()
    await neighbour.start()
    t2 = asyncio.create_task(neighbour.run(theirs, lambda e: None, lambda l: None))
    await wait_for(lambda: _started(rec))
    t1.cancel()  # the service dies
    await asyncio.gather(t1, return_exceptions=True)

    ours = make_swarm_executor()
    await ours.start()
    manager = JobManager(store=store, artifacts=artifacts, executor=ours, dispatcher=Dispatcher(),
                         sizing=Sizing(use_model=False))
    report = await manager.recover()
    assert report["reattached"] == [job.id] and report["foreign"] == [theirs.job_id], report
    for _ in range(300):
        if store.get(job.id).status != "running":
            break
        await asyncio.sleep(0.1)
    assert store.get(job.id).status == "succeeded"
    assert "ours done" in artifacts.job_dir(job.id).joinpath("output.ipynb").read_text()
    assert await ours.running() == [theirs.job_id]  # the neighbour's service still there, still running
    assert client.api.containers(filters={"label": [f"{LABEL_JOB}={theirs.job_id}"]})
    t2.cancel()
    await asyncio.gather(t2, return_exceptions=True)
    store.close()
