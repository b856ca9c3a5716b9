"""The service with the docker backend, through a real Hub: sandboxed jobs, usage, kill -9 recovery."""

import os
import signal
import time
import uuid

from datetime import datetime

import docker
import psutil
import pytest

from tests.hubtest import Hub, make_notebook, remove_containers
from hub_service.executors.docker import LABEL_INSTANCE, LABEL_JOB, parse_time

SLOW = "import time\nfor i in range(10):\n    print('step', i, flush=True)\n    time.sleep(0.5)\nprint('done')"


@pytest.fixture(scope="module")
def docker_hub(tmp_path_factory):
    instance = f"test-{uuid.uuid4().hex[:8]}"
    # no executor named: a reachable daemon with the runner image makes docker the default
    h = Hub(tmp_path_factory.mktemp("docker-hub"), executor="",
            extra_args=f"--DockerExecutor.instance={instance} --Dispatcher.max_running=2 --Dispatcher.per_user=2")
    h.instance = instance
    h.start()
    yield h
    h.stop()
    client = docker.from_env()
    for c in client.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={instance}"}, ignore_removed=True):
        c.remove(force=True)


def containers(hub):
    """This deployment's containers (one removed between the listing and its inspection is left out: the
    service removes a job's container after its outcome, while the test looks)."""
    client = docker.from_env()
    return client.containers.list(all=True, filters={"label": f"{LABEL_INSTANCE}={hub.instance}"},
                                  ignore_removed=True)


def test_docker_is_the_default_backend_and_jobs_report_what_they_used(docker_hub):
    erin = docker_hub.user("erin")
    health = erin.get("health").json()
    assert health["backend"]["name"] == "docker" and "warning" not in health["backend"]
    job = erin.submit(make_notebook("import os\nprint('uid', os.getuid())", "x = bytearray(50 * 2**20)"),
                      resources={"cpu": 1, "memory": "512MB"})
    job = erin.wait(job["id"], timeout=120)
    assert job["status"] == "succeeded", job
    assert job["backend"] == "docker"
    assert job["resources"]["allocated"]["memory"] == 512 * 2**20
    used = job["resources"]["used"]
    assert used["peak_memory"] >= 50 * 2**20 and used["cpu_seconds"] > 0
    assert "uid 1000" in erin.get(f"jobs/{job['id']}/logs").text
    assert erin.get(f"jobs/{job['id']}/output", params={"format": "html"}).status_code == 200
    wait_for(lambda: not containers(docker_hub), 10, "its container removed once collected")


def test_memory_hog_is_oom_killed_through_the_service(docker_hub):
    erin = docker_hub.user("erin")
    job = erin.submit(make_notebook("x = bytearray(600 * 2**20)\nx[::4096] = b'1' * len(x[::4096])"),
                      resources={"memory": "256MB"})
    job = erin.wait(job["id"], timeout=120)
    assert job["status"] == "failed" and job["error"]["reason"] == "oom_killed", job


def test_kill_9_reattaches_to_running_containers_and_each_job_ends_once(docker_hub):
    erin = docker_hub.user("erin")
    jobs = [erin.submit(make_notebook(SLOW), name=f"reattach-{i}") for i in range(3)]
    erin.wait(jobs[0]["id"], statuses=("running",), timeout=60)
    # Killed about a second before the first job ends: a restart nearly always takes longer
    # (the Hub polls every 30 s, and the service needs seconds to start), so that job
    # ends while nobody watches. (test_lifecycle checks its finish time deterministically.)
    deadline = time.monotonic() + 60
    while "step 8" not in erin.get(f"jobs/{jobs[0]['id']}/logs").text:
        assert time.monotonic() < deadline, "the first job never got to step 8"
        time.sleep(0.1)
    running_before = {c.labels[LABEL_JOB] for c in containers(docker_hub)}
    assert running_before
    pid = docker_hub.service_pid()
    # Its helper processes, found by descent rather than by "orphans have ppid 1", which
    # would pass vacuously where a subreaper adopts them.
    children = psutil.Process(pid).children(recursive=True)
    kinds = " ".join(" ".join(c.cmdline()) for c in children)
    assert "multiprocessing.spawn" in kinds and "resource_tracker" in kinds, kinds
    os.kill(pid, signal.SIGKILL)
    ended_while_down = {}  # job id -> the container's own FinishedAt
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if docker_hub.service_pid() != pid and erin.get("health").status_code == 200:
                break
        except Exception:
            pass
        for c in containers(docker_hub):
            if c.status == "exited" and LABEL_JOB in c.labels:
                ended_while_down[c.labels[LABEL_JOB]] = parse_time(c.attrs["State"]["FinishedAt"])
        time.sleep(0.5)
    left = [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"children of the killed service still alive: {left}"
    for job in jobs:
        done = erin.wait(job["id"], timeout=180)
        assert done["status"] == "succeeded", done
        log = erin.get(f"jobs/{job['id']}/logs").text
        assert log.count("step 0") == 1, log  # reattached, not run again
        assert erin.get(f"jobs/{job['id']}/output").status_code == 200
        if job["id"] in ended_while_down:  # its own end, not when the restarted service collected it
            finished = datetime.fromisoformat(done["finished"]).timestamp()
            assert abs(finished - ended_while_down[job["id"]]) < 0.01, (done["finished"], ended_while_down)
    # (a job the restarted service started itself has its container removed just after its outcome)
    wait_for(lambda: not containers(docker_hub), timeout=30, what="the jobs' containers removed")


#: Outlasts both restarts however slow the machine is; the test cancels the jobs at the end.
TICKS = "import time\nfor i in range(600):\n    print('tick', i, flush=True)\n    time.sleep(0.5)"


@pytest.fixture(scope="module")
def two_deployments(tmp_path_factory):
    """Two Hubs, each with its own service and database, on the one daemon; no instance named."""
    hubs = [Hub(tmp_path_factory.mktemp(f"deployment-{n}"), executor="",
                extra_args="--Dispatcher.max_running=2 --Dispatcher.per_user=2 --DockerExecutor.warm_pool=1")
            for n in "ab"]
    instances = []
    try:
        for h in hubs:
            h.start()
            h.instance = h.user("dana").get("health").json()["backend"]["instance"]
            instances.append(h.instance)
        yield hubs
    finally:
        for h in hubs:
            h.stop()
        remove_containers(*instances)


def snapshot(hub) -> dict:
    """Container id -> (name, status) of everything that carries this deployment's instance label."""
    return {c.id: (c.name, c.status) for c in containers(hub)}


def wait_for(predicate, timeout=90, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_deployments_on_one_daemon_never_touch_each_others_jobs_or_warm_pool(two_deployments):
    a, b = two_deployments
    assert a.instance != b.instance and "default" not in (a.instance, b.instance)
    jobs = {h: [h.user("dana").submit(make_notebook(TICKS), name=f"neighbour-{i}") for i in range(2)]
            for h in (a, b)}
    for h in (a, b):
        for job in jobs[h]:
            h.user("dana").wait(job["id"], statuses=("running",), timeout=90)
        # both jobs running and a fresh warm container ready
        wait_for(lambda: sum(st == "running" for _, st in snapshot(h).values()) == 3, what=f"{h.instance} warm pool")
    for restarted, neighbour in ((a, b), (b, a)):
        theirs = snapshot(neighbour)
        restarted.stop()
        restarted.start()
        restarted.user("dana").get("health")  # recovery ran before the service listened
        assert snapshot(neighbour) == theirs, f"restarting {restarted.instance} changed {neighbour.instance}'s containers"
        assert sum(st == "running" for _, st in theirs.values()) == 3
    for h in (a, b):
        dana = h.user("dana")
        for job in jobs[h]:
            log = dana.get(f"jobs/{job['id']}/logs").text
            assert "tick 0" in log and log.count("tick 0") == 1  # reattached, not run again
            assert dana.get(f"jobs/{job['id']}").json()["status"] == "running"
            done = dana.post(f"jobs/{job['id']}/cancel").json()
            assert done["status"] == "cancelled", done
