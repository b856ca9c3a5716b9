"""GPUs: the inventory, which job gets which GPU (alone, shared, none left, after a restart), the
container's request for exactly those GPUs, and all of it through a real Hub on the docker backend.

There is no GPU on these machines. The one thing made up is the driver: ``tests/fake_nvml.c``, a
``libnvidia-ml.so.1`` compiled here with gcc and loaded by the real pynvml, reporting the GPUs a
test names. Everything above it is the service's own code. The flow tests run their jobs on the
in-process backend of ``tests/fakes.py`` (a GPU job cannot start a container here: the daemon has
no NVIDIA runtime); the docker tests go as far as a real daemon goes -- it creates a job's
container with its GPU request, which the sandbox's check reads back, and refuses to start it.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import docker
import pytest
from docker.models.containers import _create_container_args

from hub_service.dispatch import Capacity, Dispatcher, pick_next
from hub_service.executors.base import Executor, JobSpec
from hub_service.executors.docker import DockerExecutor
from hub_service.executors.docker.gateway import SandboxError
from hub_service.executors.docker.sandbox import Sandbox
from hub_service.executors.swarm import SwarmExecutor, gpu_env_problems, node_gpus, satisfies, service_spec
from hub_service.environments import Environments
from hub_service.gpus import Gpu, Gpus
from hub_service.intake import IntakeError
from hub_service.jobs import JobManager
from hub_service.outputs import Artifacts
from hub_service.sizing import Sizing
from hub_service.store import Store
from tests.docker.conftest import IMAGE, make_job  # noqa: F401 (the docker tests' job factory)
from tests.docker.conftest import make_notebook as make_node
from tests.browser import browser, shot  # noqa: F401 (the browser fixture)
from tests.fakes import FakeExecutor, Script
from tests.hubtest import Hub, make_notebook, remove_containers
from tests.test_flow import ended, in_held_cell, request

HERE = Path(__file__).resolve().parent
TWO = "NVIDIA A100-SXM4-40GB:40960,Tesla T4:15360"


def compile_nvml(directory: Path, gpus: str | None = None) -> Path:
    """The stand-in driver library, with ``gpus`` built in (none: only the environment's)."""
    lib = directory / "libnvidia-ml.so.1"
    define = [f'-DFAKE_GPUS="{gpus}"'] if gpus else []
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-Wl,-soname,libnvidia-ml.so.1",
                    *define, "-o", str(lib), str(HERE / "fake_nvml.c")], check=True)
    return lib


@pytest.fixture(scope="session")
def fake_nvml(tmp_path_factory) -> Path:
    """The stand-in driver, reporting the GPUs of NOTEBOOK_JOBS_FAKE_GPUS (tests set it)."""
    return compile_nvml(tmp_path_factory.mktemp("nvml"))


def host_gpus(fake_nvml, monkeypatch, gpus: str, **traits) -> Gpus:
    """This host's GPUs as the service reads them at start, the driver reporting ``gpus``."""
    monkeypatch.setenv("NOTEBOOK_JOBS_FAKE_GPUS", gpus)
    inventory = Gpus(nvml_library=str(fake_nvml), **traits)
    inventory.start()
    return inventory


# -- the inventory ------------------------------------------------------------------------------------

@pytest.mark.process
def test_the_inventory_is_what_nvml_lists_through_pynvml(fake_nvml, monkeypatch, caplog):
    with caplog.at_level(logging.INFO):
        gpus = host_gpus(fake_nvml, monkeypatch, TWO)
    assert gpus.devices == [
        Gpu(0, "GPU-fa4e0000-0000-4000-8000-000000000000", "NVIDIA A100-SXM4-40GB", 40960 << 20),
        Gpu(1, "GPU-fa4e0000-0000-4000-8000-000000000001", "Tesla T4", 15360 << 20)]
    assert "GPUs: 2 (NVIDIA driver 0.0-fake); 0: NVIDIA A100-SXM4-40GB, 40960 MiB; 1: Tesla T4" in caplog.text
    assert GpuHost(gpus).gpu_count() == 2  # what a job may ask for: the inventory's


@pytest.mark.process
def test_without_a_driver_no_gpu_is_offered_and_one_log_line_says_why(fake_nvml, monkeypatch, caplog):
    monkeypatch.delenv("NOTEBOOK_JOBS_FAKE_GPUS", raising=False)
    with caplog.at_level(logging.INFO):
        loaded = Gpus(nvml_library=str(fake_nvml))  # a library whose driver is not loaded
        loaded.start()
        missing = Gpus(nvml_library="/nonexistent/libnvidia-ml.so.1")
        missing.start()
    assert loaded.devices == missing.devices == []
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("GPUs:")]
    assert said == ["GPUs: none offered, NVML is not available here (Driver Not Loaded)",
                    "GPUs: none offered, NVML is not available here (/nonexistent/libnvidia-ml.so.1: "
                    "cannot open shared object file: No such file or directory)"]
    # No library at all, as on these machines (in a fresh interpreter: pynvml keeps what it loaded)
    out = subprocess.run([sys.executable, "-c", "import logging; from hub_service.gpus import read_inventory; "
                          "logging.basicConfig(level=logging.INFO, format='%(message)s'); "
                          "print(read_inventory(logging.getLogger()))"],
                         capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"})
    assert out.stdout == "[]\n" and out.stderr == (
        "GPUs: none offered, NVML is not available here (NVML Shared Library Not Found)\n")


# -- which job gets which GPU -------------------------------------------------------------------------

class GpuHost(FakeExecutor):
    """The in-process backend of the flow tests (tests/fakes.py), with the host's GPUs handed out by id."""

    gpu_count = Executor.gpu_count  # (the inventory's, not the fake's own count)

    def __init__(self, gpus: Gpus, **kwargs):
        super().__init__(**kwargs)
        self.inventory = gpus

    def gpu_inventory(self) -> Gpus:
        return self.inventory


#: the admin's environments: one that GPU jobs may use
GPU_ENVIRONMENTS = [{"name": "cuda", "description": "the runner image, for GPU jobs", "gpu": True}]


def manager(tmp_path, store: Store, executor: GpuHost) -> JobManager:
    """A JobManager with slots to spare (4 jobs, 4 per user): only the GPUs can keep a job waiting."""
    return JobManager(store=store, artifacts=Artifacts(tmp_path / "data"), executor=executor,
                      dispatcher=Dispatcher(cpu=8.0, memory=64 << 30, max_running=4, per_user=4),
                      sizing=Sizing(use_model=False),
                      environments=Environments(environments=GPU_ENVIRONMENTS))


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    yield s
    s.close()


async def submit_held(flow: JobManager, gpu: int, user: str = "alice"):
    """A job asking ``gpu`` GPUs that, once started, stays in its first cell until released."""
    job = await flow.submit(request(user=user, requested={"gpu": gpu}))
    flow.executor.scripts[job.id] = Script(hold_at=1)
    return job


def devices(flow: JobManager, job) -> list:
    return flow.store.get(job.id).allocated.get("gpu_devices")


@pytest.mark.process
async def test_each_gpu_job_gets_its_own_gpus_and_one_finds_none_free_waits_queued(
        fake_nvml, monkeypatch, store, tmp_path):
    host = GpuHost(host_gpus(fake_nvml, monkeypatch, TWO))
    flow = manager(tmp_path, store, host)
    first, second, third = [await submit_held(flow, 1) for _ in range(3)]
    assert flow.dispatch_once() == [first.id, second.id]
    await in_held_cell(host, first.id)
    await in_held_cell(host, second.id)
    assert (devices(flow, first), devices(flow, second)) == ([0], [1])
    assert [(s.job_id, s.gpu, s.gpu_devices) for s in host.ran] == [(first.id, 1, [0]), (second.id, 1, [1])]
    # both GPUs are held: the third waits, though a slot is free (a job without a GPU takes it)
    cpu_only = await flow.submit(request(user="bob"))
    assert flow.dispatch_once() == [cpu_only.id]
    assert store.get(third.id).status == "queued" and devices(flow, third) is None
    running = store.dispatch_view("running")
    assert [(g["index"], g["jobs"]) for g in host.inventory.table(running)] == [(0, [first.id]), (1, [second.id])]
    host.release(second.id)  # it ends: its GPU is free again, and goes to the waiting job
    assert (await ended(flow, second.id)).status == "succeeded"
    assert flow.dispatch_once() == [third.id] and devices(flow, third) == [1]
    assert devices(flow, second) == [1]  # (what a job held stays on it, as a record)
    for job in (first, third):
        host.release(job.id)
        await ended(flow, job.id)
    await flow.stop()


@pytest.mark.process
async def test_a_job_asking_more_gpus_than_free_waits_and_more_than_the_host_has_is_refused(
        fake_nvml, monkeypatch, store, tmp_path):
    host = GpuHost(host_gpus(fake_nvml, monkeypatch, TWO))
    flow = manager(tmp_path, store, host)
    with pytest.raises(IntakeError) as refused:
        await flow.submit(request(requested={"gpu": 3}))
    assert (refused.value.status, refused.value.field) == (422, "/resources/gpu")
    assert "3 GPU(s) requested, but this Hub's fake backend has 2" in str(refused.value)
    assert store.jobs_with_status("queued") == []
    one = await submit_held(flow, 1)
    both = await submit_held(flow, 2)
    assert flow.dispatch_once() == [one.id]  # one GPU left: the two-GPU job waits for both
    await in_held_cell(host, one.id)
    host.release(one.id)
    await ended(flow, one.id)
    assert flow.dispatch_once() == [both.id] and devices(flow, both) == [0, 1]
    await in_held_cell(host, both.id)
    assert host.ran[-1].gpu_devices == [0, 1]
    host.release(both.id)
    await ended(flow, both.id)
    await flow.stop()


@pytest.mark.process
async def test_with_sharing_allowed_jobs_share_a_gpu_up_to_the_admins_number(fake_nvml, monkeypatch, store, tmp_path):
    host = GpuHost(host_gpus(fake_nvml, monkeypatch, TWO, jobs_per_gpu=2))
    flow = manager(tmp_path, store, host)
    jobs = [await submit_held(flow, 1) for _ in range(4)]
    two = await submit_held(flow, 2)
    assert flow.dispatch_once() == [j.id for j in jobs]  # the least held GPU first: 0, 1, then each again
    assert [devices(flow, j) for j in jobs] == [[0], [1], [0], [1]]
    assert store.get(two.id).status == "queued"  # each GPU has its two jobs
    for job in jobs[:2]:
        await in_held_cell(host, job.id)
        host.release(job.id)
        await ended(flow, job.id)
    assert flow.dispatch_once() == [two.id] and devices(flow, two) == [0, 1]
    running = store.dispatch_view("running")
    assert [g["jobs"] for g in host.inventory.table(running)] == [sorted([jobs[2].id, two.id]),
                                                                  sorted([jobs[3].id, two.id])]
    for job in (*jobs[2:], two):
        await in_held_cell(host, job.id)
        host.release(job.id)
        await ended(flow, job.id)
    await flow.stop()


@pytest.mark.process
async def test_after_a_restart_the_gpus_of_reattached_jobs_stay_theirs(fake_nvml, monkeypatch, store, tmp_path):
    before = GpuHost(host_gpus(fake_nvml, monkeypatch, TWO), durable=True)
    service = manager(tmp_path, store, before)
    held = await submit_held(service, 1)
    assert service.dispatch_once() == [held.id]
    await in_held_cell(before, held.id)
    waiting = [await service.submit(request(requested={"gpu": 1})) for _ in range(2)]
    await service.stop()  # the service dies; the job's container runs on
    assert store.get(held.id).status == "running" and devices(service, held) == [0]

    after = GpuHost(host_gpus(fake_nvml, monkeypatch, TWO), durable=True, held={held.id})
    restarted = manager(tmp_path, store, after)  # a new inventory: nothing held, until the store says so
    after.scripts[held.id] = Script(hold_at=1)
    assert (await restarted.recover())["reattached"] == [held.id]
    await in_held_cell(after, held.id)
    assert restarted.dispatch_once() == [waiting[0].id]
    assert devices(restarted, waiting[0]) == [1]  # not GPU 0: the reattached job still has it
    assert store.get(waiting[1].id).status == "queued"
    after.release(held.id)
    assert (await ended(restarted, held.id)).status == "succeeded"
    assert restarted.dispatch_once() == [waiting[1].id] and devices(restarted, waiting[1]) == [0]
    for job in waiting:
        await ended(restarted, job.id)
    await restarted.stop()


# -- the container's request ------------------------------------------------------------------------

GPU_SPEC = JobSpec(job_id="g", workdir=Path("/nowhere"), gpu=2, gpu_devices=[1, 3])


def created(sandbox: Sandbox, spec: JobSpec) -> dict:
    """What a daemon that keeps everything shows on inspect: the body docker-py sends, read back."""
    kw = _create_container_args(dict(sandbox.create_kwargs(spec, "vol"), image="runner", command=["true"],
                                     version="1.41"))
    body = docker.APIClient(version="1.41").create_container_config(**kw)
    body["HostConfig"].setdefault("Privileged", False)
    body["Config"] = {"User": body.pop("User"), "Env": body.pop("Env")}
    return json.loads(json.dumps(dict(body, Mounts=[{"Type": "volume", "Name": "vol"}])))


def test_a_gpu_job_asks_for_exactly_its_gpus_and_its_cuda_sees_them_from_0():
    sandbox = Sandbox()
    attrs = created(sandbox, GPU_SPEC)
    assert attrs["HostConfig"]["DeviceRequests"] == [
        {"Driver": "nvidia", "Count": 0, "DeviceIDs": ["1", "3"], "Capabilities": [["gpu"]], "Options": {}}]
    assert sorted(attrs["Config"]["Env"]) == ["CUDA_VISIBLE_DEVICES=0,1", "NVIDIA_VISIBLE_DEVICES=1,3"]
    assert sandbox.check(GPU_SPEC, attrs) == []
    plain = JobSpec(job_id="p", workdir=Path("/nowhere"))
    assert "DeviceRequests" not in created(sandbox, plain)["HostConfig"]


@pytest.mark.parametrize("change,found", [
    (lambda a: a["HostConfig"]["DeviceRequests"][0].update(DeviceIDs=["0", "1"]), "wanted the GPUs ['1', '3']"),
    (lambda a: a["HostConfig"]["DeviceRequests"][0].update(DeviceIDs=None, Count=-1), "wanted the GPUs"),
    (lambda a: a["HostConfig"]["DeviceRequests"].append(dict(a["HostConfig"]["DeviceRequests"][0])), "only"),
    (lambda a: a["Config"]["Env"].remove("CUDA_VISIBLE_DEVICES=0,1"), "CUDA_VISIBLE_DEVICES is not '0,1'"),
    (lambda a: a["HostConfig"].pop("DeviceRequests"), "DeviceRequests dropped"),
])
def test_a_container_with_other_gpus_than_the_jobs_is_refused(change, found):
    sandbox = Sandbox()
    attrs = created(sandbox, GPU_SPEC)
    change(attrs)
    assert found in " ".join(sandbox.check(GPU_SPEC, attrs))


def test_a_job_without_gpus_refuses_a_container_with_one():
    sandbox = Sandbox()
    plain = JobSpec(job_id="p", workdir=Path("/nowhere"))
    attrs = created(sandbox, plain)
    attrs["HostConfig"]["DeviceRequests"] = created(sandbox, GPU_SPEC)["HostConfig"]["DeviceRequests"]
    assert "wanted none" in " ".join(sandbox.check(plain, attrs))


@pytest.mark.docker
async def test_the_daemon_keeps_the_gpu_request_the_check_accepts_and_only_the_missing_driver_stops_it(
        fake_nvml, monkeypatch, make_job):
    instance = "test-" + uuid.uuid4().hex[:8]
    monkeypatch.setenv("NOTEBOOK_JOBS_FAKE_GPUS", TWO)
    ex = DockerExecutor(instance=instance, image=IMAGE)
    ex.gpus.nvml_library = str(fake_nvml)
    await ex.start()
    try:
        assert ex.gpu_count() == 2
        spec = make_job(make_node("print(1)"), gpu=1, gpu_devices=[1])
        outcome = await ex.run(spec, lambda e: None, lambda t: None)
    finally:
        await ex.stop()
        remove_containers(instance)
    # made, read back and found whole (no "refusing to start"); then the daemon has no NVIDIA driver
    assert (outcome.status, outcome.reason) == ("failed", "infrastructure")
    assert 'could not select device driver "nvidia" with capabilities: [[gpu]]' in outcome.message, outcome.message


# -- through a real Hub --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gpu_hub(tmp_path_factory):
    """A Hub whose service runs the docker backend on a host with two (stand-in) GPUs."""
    tmp = tmp_path_factory.mktemp("gpu-hub")
    lib = compile_nvml(tmp, TWO)  # (built in: the Hub gives its service none of this environment)
    config = tmp / "notebook_jobs_config.py"
    config.write_text(f"c.Gpus.nvml_library = {str(lib)!r}\n"
                      f"c.Environments.environments = {GPU_ENVIRONMENTS!r}\n")
    instance = f"test-{uuid.uuid4().hex[:8]}"
    h = Hub(tmp, executor="docker", extra_args=f"--config={config} --DockerExecutor.instance={instance} "
                                               "--Dispatcher.max_running=4 --Dispatcher.per_user=4")
    h.start()
    yield h
    h.stop()
    remove_containers(instance)


@pytest.mark.hub
@pytest.mark.docker
def test_through_the_hub_the_admin_sees_the_gpus_and_a_job_gets_its_gpu_or_a_422(gpu_hub):
    admin, alice = gpu_hub.user("admin"), gpu_hub.user("alice")
    queue = admin.get("admin/queue").json()
    assert [(g["index"], g["name"], g["memory"], g["jobs"]) for g in queue["gpus"]] == [
        (0, "NVIDIA A100-SXM4-40GB", 40960 << 20, []), (1, "Tesla T4", 15360 << 20, [])]
    assert queue["capacity"]["gpu"] == 2 and admin.get("health").json()["backend"]["gpus"] == 2
    nb = make_notebook("print(1)")
    r = alice.post("jobs", files={"file": ("nb.ipynb", json.dumps(nb))}, data={"resources": '{"gpu": 3}'})
    assert r.status_code == 422 and r.json()["error"]["field"] == "/resources/gpu", r.text
    assert "3 GPU(s) requested, but this Hub's docker backend has 2" in r.json()["error"]["message"]
    job = alice.wait(alice.submit(nb, resources={"gpu": 1})["id"], timeout=120)
    assert job["resources"]["allocated"]["gpu_devices"] == [0]
    assert job["error"]["reason"] == "infrastructure"  # this daemon has no NVIDIA runtime: said as the daemon says
    assert 'could not select device driver "nvidia"' in job["error"]["message"], job["error"]
    assert [g["jobs"] for g in admin.get("admin/queue").json()["gpus"]] == [[], []]  # it ended: free again



# -- a swarm's GPU pool (tests/docker/test_swarm.py has it on a real swarm, whose node has no GPU) ----------

def swarm_node(node_id: str, labels: dict, resources: list, state: str = "ready") -> dict:
    """A node as the Swarm API lists it, advertising ``resources`` (dockerd's node-generic-resources)."""
    return {"ID": node_id, "Spec": {"Role": "worker", "Availability": "active", "Labels": labels},
            "Status": {"State": state},
            "Description": {"Hostname": f"host-{node_id}", "Resources": {
                "NanoCPUs": 8_000_000_000, "MemoryBytes": 32 << 30, "GenericResources": resources}}}


def named(*uuids: str) -> list:
    return [{"NamedResourceSpec": {"Kind": "NVIDIA-GPU", "Value": u}} for u in uuids]


def test_a_swarm_offers_a_job_the_most_gpus_one_node_of_its_gpu_pool_advertises():
    ex = SwarmExecutor(instance="t", constraints=["node.labels.notebook-jobs==true"])
    ex._nodes = [
        swarm_node("a", {"notebook-jobs": "true", "gpu": "true"}, named("GPU-1", "GPU-2")),
        swarm_node("b", {"notebook-jobs": "true", "gpu": "true"},
                   [{"DiscreteResourceSpec": {"Kind": "NVIDIA-GPU", "Value": 3}},
                    {"DiscreteResourceSpec": {"Kind": "SSD", "Value": 9}}]),
        swarm_node("c", {"notebook-jobs": "true"}, named(*"12345678")),  # not in the GPU pool
        swarm_node("d", {"gpu": "true"}, named(*"12345678")),  # not a node for jobs at all
        swarm_node("e", {"notebook-jobs": "true", "gpu": "true"}, named(*"12345678"), state="down"),
    ]
    assert [node_gpus(n, "NVIDIA-GPU") for n in ex._nodes] == [2, 3, 8, 8, 8]
    assert ex.gpu_count() == 3 and ex.capacity()["gpu"] == 5 and ex.gpu_inventory() is None
    assert ex.placement(gpu=True) == ["node.labels.notebook-jobs==true", "node.labels.gpu==true"]
    assert ex.placement() == ["node.labels.notebook-jobs==true"]


@pytest.mark.parametrize("constraints,met", [
    (["node.labels.gpu==true"], True), (["node.labels.gpu == true", "node.role==worker"], True),
    (["node.labels.gpu!=true"], False), (["node.labels.pool==a"], False), (["node.labels.pool!=a"], True),
    (["node.hostname==host-a", "node.id==a"], True), (["node.id==b"], False),
    (["engine.labels.cuda==12"], True),  # (Swarm's to judge)
])
def test_a_nodes_labels_id_hostname_and_role_decide_whether_it_is_in_a_pool(constraints, met):
    assert satisfies(swarm_node("a", {"gpu": "true"}, []), constraints) is met


def test_a_swarm_gpu_job_reserves_the_pools_generic_resource_and_never_device_ids():
    spec = JobSpec(job_id="g", workdir=Path("/nowhere"), gpu=2)
    parts = service_spec(Sandbox().create_kwargs(spec, "vol"), workdir="/work/job", volume_labels={},
                         gpu_kind="NVIDIA-GPU")
    assert parts["resources"]["Reservations"]["GenericResources"] == [
        {"DiscreteResourceSpec": {"Kind": "NVIDIA-GPU", "Value": 2}}]
    plain = service_spec(Sandbox().create_kwargs(JobSpec(job_id="p", workdir=Path("/nowhere")), "vol"),
                         workdir="/work/job", volume_labels={})
    assert "GenericResources" not in plain["resources"].get("Reservations", {})
    with pytest.raises(SandboxError, match="cannot ask for GPUs by id"):
        service_spec(Sandbox().create_kwargs(GPU_SPEC, "vol"), workdir="/work/job", volume_labels={})


@pytest.mark.browser
def test_the_admin_page_shows_each_gpu_with_its_model_memory_and_holder(gpu_hub, browser):
    from tests.test_browser_admin import open_admin

    job = gpu_hub.user("alice").submit(make_notebook("print(1)"))  # a job to show as a holder
    page, console = open_admin(gpu_hub, browser)
    rows = page.locator("#admin-gpus-table tbody tr")
    page.wait_for_function("document.querySelectorAll('#admin-gpus-table tbody tr').length === 2")
    cells = [[c.strip() for c in rows.nth(i).locator("th, td").all_inner_texts()] for i in range(2)]
    assert cells == [["0", "NVIDIA A100-SXM4-40GB", "40.00", "free"], ["1", "Tesla T4", "15.00", "free"]], cells
    assert rows.nth(1).locator("td").first.get_attribute("title") == "GPU-fa4e0000-0000-4000-8000-000000000001"

    def held(route):  # (a job holding GPU 1 while the page looks: no container here can hold one)
        res = route.fetch()
        queue = res.json()
        queue["gpus"][1]["jobs"] = [job["id"]]
        route.fulfill(response=res, json=queue)

    page.route(re.compile(r".*/admin/queue(\?.*)?$"), held)
    page.reload()
    page.wait_for_function("document.querySelectorAll('#admin-gpus-table tbody tr a').length === 1")
    link = rows.nth(1).locator("td a")
    assert link.inner_text() == job["id"][:8] and link.get_attribute("href").endswith("/jobs/" + job["id"])
    assert rows.nth(0).locator("td").last.inner_text() == "free"
    shot(page, "admin-gpus")
    assert console.errors == [], "\n".join(console.errors)


def test_a_lone_job_waits_for_gpus_the_machine_no_longer_has():
    """An empty machine takes any lone job (its cpu and memory were clamped to the bounds), but not
    one whose GPUs are not there (a GPU lost since it was queued): it would run on none."""
    job = SimpleNamespace(id="j", user="alice", created_ts=0.0, allocated={"cpu": 64.0, "memory": 1 << 50, "gpu": 2})
    assert pick_next([job], [], Capacity(cpu=1.0, memory=1 << 30, gpu=1, gpu_free=1), now=1.0) is None
    assert pick_next([job], [], Capacity(cpu=1.0, memory=1 << 30, gpu=2, gpu_free=2), now=1.0) is job


def test_a_swarm_gpu_tasks_container_must_name_the_gpus_swarm_gave_it():
    env = ["PATH=/bin", "DOCKER_RESOURCE_NVIDIA-GPU=GPU-1,GPU-2"]
    assert gpu_env_problems(env, "NVIDIA-GPU", 2) == []
    assert gpu_env_problems(["DOCKER_RESOURCE_GPU=3"], "gpu", 3) == []
    assert gpu_env_problems(env, "NVIDIA-GPU", 3) == [
        "DOCKER_RESOURCE_NVIDIA-GPU is 'GPU-1,GPU-2': fewer than the 3 GPU(s) asked"]
    assert gpu_env_problems(["PATH=/bin"], "NVIDIA-GPU", 1) == [
        "DOCKER_RESOURCE_NVIDIA-GPU is not set: Swarm gave the task no GPU"]
