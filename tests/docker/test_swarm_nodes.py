"""The swarm executor across two real nodes: a job placed on a node that is not the service's.

The swarm is two daemons of their own on this machine, each in a network namespace the
fixture makes (tests/docker/swarm_nodes.py); the service talks to the manager, and to the
worker's daemon through the URL in the worker's node label. This daemon is not touched.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import uuid

import pytest
import pytest_asyncio

from hub_service.executors.docker import LABEL_JOB
from hub_service.executors.swarm import LABEL_DOCKER_URL, SwarmExecutor
from tests.docker import swarm_nodes
from tests.docker.conftest import HONEST_X, IMAGE, Recorder, assert_honest, honest_notebook, make_notebook

pytestmark = pytest.mark.asyncio

ON_WORKER = f"node.labels.{swarm_nodes.ROLE_LABEL}==worker"


@pytest.fixture(scope="module")
def nodes():
    why = swarm_nodes.problem()
    if why:
        pytest.skip(why)
    swarm = swarm_nodes.TwoNodeSwarm()
    try:
        swarm.up(IMAGE)
        yield swarm
    finally:
        swarm.down()


@pytest_asyncio.fixture
async def on_worker(nodes):
    """A SwarmExecutor on the manager whose jobs are placed on the worker."""
    ex = SwarmExecutor(docker_url=nodes.manager.url, instance="test-" + uuid.uuid4().hex[:8], image=IMAGE,
                       poll_interval=0.2, node_poll=0.5, constraints=[ON_WORKER], start_timeout=30)
    await ex.start()
    yield ex
    await ex.stop()


def container_events(node: swarm_nodes.Node, job_id: str, since: float) -> list:
    """The container events of a job's container on one node's daemon since then: what ran there."""
    with node.client() as c:
        events = c.api.events(since=int(since), until=int(time.time()) + 1, decode=True,
                              filters={"type": "container", "label": f"{LABEL_JOB}={job_id}"})
        return [e["Action"] for e in events]


async def test_a_job_placed_on_another_node_runs_there_and_comes_back_whole(on_worker, nodes, make_job):
    since = time.time() - 1
    spec = make_job(honest_notebook(), parameters={"x": HONEST_X})
    rec = Recorder()
    out = await on_worker.run(spec, rec.on_event, rec.on_log)
    # progress, output notebook and the file it wrote: read from the worker's daemon
    assert_honest(spec, out, rec)
    assert out.used.peak_memory and out.used.wall_seconds
    ran_on_worker = container_events(nodes.worker, spec.job_id, since)
    assert "start" in ran_on_worker and "destroy" in ran_on_worker, ran_on_worker
    assert container_events(nodes.manager, spec.job_id, since) == []
    # nothing left on the worker: container and work volume removed through its daemon
    with nodes.worker.client() as c:
        label = {"label": [f"{LABEL_JOB}={spec.job_id}"]}
        assert not c.api.containers(all=True, filters=label)
        assert not (c.api.volumes(filters=label) or {}).get("Volumes")
        # and its network: pruned there (a worker keeps a swarm's bridge network after its task), while the
        # config-only one the jobs' networks take their options from stays
        names = [n["Name"] for n in c.api.networks()]
        assert on_worker.config_network in names and not [n for n in names if spec.job_id in n], names
    with nodes.manager.client() as c:
        assert not [n for n in c.api.networks() if spec.job_id in n["Name"]]
    listed = {n["id"]: n for n in on_worker.nodes()}
    assert listed[nodes.worker.node_id()]["reachable"] and listed[nodes.manager.node_id()]["reachable"]
    assert listed[nodes.worker.node_id()]["labels"][LABEL_DOCKER_URL] == nodes.worker.url


GPU_NOTEBOOK = make_notebook("import os, pathlib\n"
                             "pathlib.Path('gpu.txt').write_text(os.environ.get('DOCKER_RESOURCE_NVIDIA-GPU', ''))")


async def test_the_gpu_pool_counts_the_gpus_its_nodes_advertise_and_refuses_a_job_none_can_hold(
        on_worker, nodes, make_job):
    assert on_worker.gpu_count() == 2  # (the one node of the pool, gpu=true, advertises two)
    rec = Recorder()
    out = await on_worker.run(make_job(GPU_NOTEBOOK, gpu=3), rec.on_event, rec.on_log)
    assert (out.status, out.reason) == ("failed", "infrastructure") and "3 GPU(s)" in out.message, out
    with nodes.manager.client() as c:  # (refused before any service was made)
        assert not c.api.services(filters={"label": f"org.jupyter.notebook-jobs.instance={on_worker.instance}"})


async def test_on_docker_20_10_a_node_update_ends_the_gpu_jobs_on_it_and_no_other(on_worker, nodes, make_job):
    # What README says of this engine: an admin's update of a node (here a label) rejects the tasks
    # holding its GPUs, and Swarm stops their containers; a job without GPUs on the same node runs on.
    # The first GPU job of the module on the worker, so before the next test: once a GPU job has finished on
    # a node, its task still counts there, and Swarm's check stops at it and leaves a running one alone.
    sleeper = make_notebook("import time\ntime.sleep(0.1)", "time.sleep(30)")
    gpu = make_job(sleeper, gpu=1)
    plain = make_job(make_notebook("import time\ntime.sleep(0.1)", "time.sleep(12)"))
    recs = {spec.job_id: Recorder() for spec in (gpu, plain)}
    runs = [asyncio.ensure_future(on_worker.run(spec, recs[spec.job_id].on_event, recs[spec.job_id].on_log))
            for spec in (gpu, plain)]
    for _ in range(600):
        if all(any(e["event"] == "cell_started" for e in rec.events) for rec in recs.values()):
            break
        await asyncio.sleep(0.1)
    worker = nodes.worker.node_id()
    nodes.label(worker, {"notebook-jobs-test.touched": "yes"})
    try:
        out_gpu, out_plain = await asyncio.wait_for(asyncio.gather(*runs), 120)
    finally:
        nodes.label(worker, {}, remove=("notebook-jobs-test.touched",))
    assert (out_gpu.status, out_gpu.reason, out_gpu.exit_code) == ("failed", "infrastructure", 137), out_gpu
    assert worker in out_gpu.message and out_gpu.used.wall_seconds < 25, out_gpu
    assert out_gpu.message.endswith("Swarm stopped its task: assigned node no longer meets constraints"), \
        out_gpu
    assert out_plain.status == "succeeded", (out_plain, recs[plain.job_id].log_text[-2000:])


def node_version(nodes: swarm_nodes.TwoNodeSwarm, node: swarm_nodes.Node) -> int:
    """The swarm's version of a node's object: it grows with every update of the node."""
    with nodes.manager.client() as c:
        return c.api.inspect_node(node.node_id())["Version"]["Index"]


async def test_gpu_jobs_run_in_the_gpu_pool_each_with_a_gpu_its_node_advertises(on_worker, nodes, make_job):
    # Two at once on the worker's two GPUs. On Docker 20.10 any update of a node rejects the tasks holding
    # its generic resources ("assigned node no longer meets constraints"), and a job's overlay network
    # attached to the node was such an update: the jobs' own networks are node-local bridges, never an update.
    before = node_version(nodes, nodes.worker)
    specs = [make_job(GPU_NOTEBOOK, gpu=1) for _ in range(2)]
    recs = [Recorder() for _ in specs]
    outs = await asyncio.gather(*(on_worker.run(spec, rec.on_event, rec.on_log)
                                  for spec, rec in zip(specs, recs)))
    for out, rec in zip(outs, recs):
        assert out.status == "succeeded", (out, rec.log_text[-2000:])
    given = sorted((spec.files_dir / "gpu.txt").read_text() for spec in specs)
    assert given == sorted(swarm_nodes.GPUS)  # (one each, named by Swarm in DOCKER_RESOURCE_NVIDIA-GPU)
    assert node_version(nodes, nodes.worker) == before


@pytest.fixture
def worker_listener(nodes):
    """A TCP server on every address of the worker's namespace (its node's own), and the peers it accepted."""
    server = subprocess.Popen(
        ["nsenter", f"--net=/run/netns/{nodes.worker.netns}", sys.executable, "-u", "-c",
         "import socket\ns = socket.create_server(('', 0))\nprint(s.getsockname()[1])\n"
         "while True:\n    print(s.accept()[1][0])"],
        stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline())
    accepted: list = []
    reader = threading.Thread(target=lambda: accepted.extend(line.strip() for line in server.stdout),
                              daemon=True)
    reader.start()
    yield port, accepted
    server.kill()
    server.wait()
    reader.join(5)


async def test_a_job_reaches_neither_its_node_nor_beyond(on_worker, nodes, make_job, worker_listener):
    port, accepted = worker_listener
    # the control: the server answers on the worker's address, from the manager's namespace
    subprocess.run(["nsenter", f"--net=/run/netns/{nodes.manager.netns}", sys.executable, "-c",
                    f"import socket\nsocket.create_connection(({nodes.worker.address!r}, {port}), 5)"],
                   check=True, timeout=30)
    probe = make_notebook(
        "import json, socket\n"
        "routes = [r.split() for r in open('/proc/net/route').read().splitlines()[1:]]\n"
        "gateways = ['.'.join(str(int(r[2][i:i + 2], 16)) for i in (6, 4, 2, 0))\n"
        "            for r in routes if r[1] == '0' * 8]\n"
        "def reach(host):\n"
        "    try:\n"
        f"        socket.create_connection((host, {port}), timeout=3).close()\n"
        "        return 'connected'\n"
        "    except OSError as e:\n"
        "        return type(e).__name__\n"
        f"hosts = gateways + [{nodes.worker.address!r}, {nodes.manager.address!r}]\n"
        "ifaces = sorted(name for _, name in socket.if_nameindex())\n"
        "open('reach.json', 'w').write(json.dumps({'ifaces': ifaces, 'gateways': gateways,\n"
        "                                           'reach': {h: reach(h) for h in hosts}}))")
    spec = make_job(probe)
    rec = Recorder()
    out = await on_worker.run(spec, rec.on_event, rec.on_log)
    assert out.status == "succeeded", (out, rec.log_text[-2000:])
    seen = json.loads((spec.files_dir / "reach.json").read_text())
    assert seen["ifaces"] == ["eth0", "lo"] and seen["gateways"], seen  # (its bridge; a route nobody answers)
    assert "connected" not in seen["reach"].values(), seen
    assert set(seen["reach"]) >= {nodes.worker.address, nodes.manager.address, *seen["gateways"]}
    await asyncio.sleep(0.5)
    assert accepted == [nodes.manager.address]  # (the control's alone)


async def test_a_node_whose_daemon_is_unknown_fails_the_job_saying_what_to_label(on_worker, nodes, make_job):
    worker = nodes.worker.node_id()
    nodes.label(worker, {}, remove=(LABEL_DOCKER_URL,))
    try:
        spec = make_job(honest_notebook(), parameters={"x": HONEST_X})
        out = await on_worker.run(spec, Recorder().on_event, Recorder().on_log)
        assert (out.status, out.reason) == ("failed", "infrastructure")
        assert LABEL_DOCKER_URL in out.message and worker in out.message
        with nodes.manager.client() as c:  # its service is gone: the task does not run on unwatched
            assert not c.api.services(filters={"label": f"{LABEL_JOB}={spec.job_id}"})
    finally:
        nodes.label(worker, {LABEL_DOCKER_URL: nodes.worker.url})


async def test_a_job_whose_node_went_away_before_it_began_is_given_back_to_be_queued_again(nodes, make_job):
    ex = SwarmExecutor(docker_url=nodes.manager.url, instance="test-" + uuid.uuid4().hex[:8], image=IMAGE,
                       poll_interval=0.2, constraints=[ON_WORKER], start_timeout=25)
    await ex.start()
    worker = nodes.worker.node_id()
    nodes.worker.crash()  # (the manager still calls it ready for a few heartbeats, and gives it the task)
    try:
        spec = make_job(honest_notebook(), parameters={"x": HONEST_X})
        out = await ex.run(spec, Recorder().on_event, Recorder().on_log)
        assert (out.status, out.reason, out.requeue) == ("failed", "infrastructure", True), out
        assert worker in out.message, out.message
        with nodes.manager.client() as c:  # nothing of it is left to start when the node comes back
            assert not c.api.services(filters={"label": f"{LABEL_JOB}={spec.job_id}"})
    finally:
        await ex.stop()
        nodes.worker.start()
        nodes.wait_ready(120)


async def test_a_node_that_goes_away_ends_its_job_as_infrastructure_naming_the_node(on_worker, nodes, make_job):
    spec = make_job(honest_notebook(sleep=60), parameters={"x": HONEST_X})
    worker = nodes.worker.node_id()
    rec = Recorder()
    run = asyncio.ensure_future(on_worker.run(spec, rec.on_event, rec.on_log))
    for _ in range(600):  # until its first cell runs on the worker
        if any(e["event"] == "cell_started" for e in rec.events) or run.done():
            break
        await asyncio.sleep(0.1)
    assert not run.done(), run.result()
    nodes.worker.crash()
    try:
        out = await asyncio.wait_for(run, 120)
        assert (out.status, out.reason) == ("failed", "infrastructure"), out
        assert "on node" in out.message and worker in out.message, out.message
        assert not out.requeue  # (it had begun: run again, it could run twice)
        for _ in range(240):  # and the node is shown as down once the manager has missed its heartbeats
            if {n["id"]: n["state"] for n in on_worker.nodes()}[worker] == "down":
                break
            await asyncio.sleep(0.5)
        assert {n["id"]: n["state"] for n in on_worker.nodes()}[worker] == "down"
    finally:
        nodes.worker.start()
        nodes.wait_ready(120)
