"""The swarm executor across two real nodes: a job placed on a node that is not the service's.

The swarm is two daemons of their own on this machine, each in a network namespace the
fixture makes (tests/docker/swarm_nodes.py); the service talks to the manager, and to the
worker's daemon through the URL in the worker's node label. This daemon is not touched.
"""

from __future__ import annotations

import asyncio
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


@pytest.mark.xfail(strict=True, reason="Docker 20.10's Swarm rejects the task of a service that reserves a generic "
                   "resource ('assigned node no longer meets constraints', measured here with and without a network)")
async def test_a_gpu_job_runs_in_the_gpu_pool_with_a_gpu_its_node_advertises(on_worker, nodes, make_job):
    spec = make_job(GPU_NOTEBOOK, gpu=1)
    rec = Recorder()
    out = await on_worker.run(spec, rec.on_event, rec.on_log)
    assert out.status == "succeeded", (out, rec.log_text[-2000:])
    assert (spec.files_dir / "gpu.txt").read_text() in swarm_nodes.GPUS  # (one of them, given by Swarm)


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
