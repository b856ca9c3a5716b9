"""The swarm executor: each job a one-task ``replicated-job`` service of a Docker Swarm.

The same job contract and the same sandbox as the docker executor, on any node of a
swarm. Each job becomes:

- a service (mode ``replicated-job``, restart ``none``: one task, never run twice) built
  from the docker executor's own container spec (:meth:`Sandbox.create_kwargs`),
  translated key by key by :func:`service_spec`. A key Swarm cannot express is either
  replaced by something that holds the same line (``REPLACED``, README's sandbox table)
  or refused: a container option the translation does not know stops the job, so a new
  hardening option of the docker backend is never silently dropped here;
- its own network (Swarm has no ``none`` network: a task without one lands on the node's
  bridge): a swarm-scoped, internal bridge that takes its options from a config-only
  network on each node (``com.docker.network.bridge.inhibit_ipv4``: the node has no address
  on it, so the job reaches neither the node nor anything beyond; its own: no other job on
  it). Not an overlay: attaching an overlay to a node updates the node, and on Docker 20.10
  every node update rejects the tasks that hold a generic resource there (a GPU job's);
- a work volume on the node it runs on, as the docker executor's.

The task's runner starts in warm mode (``runner.py --warm``): it starts its kernel and
waits for its job on stdin. Meanwhile the executor finds the task's container through
the node's daemon, reads its ``HostConfig`` back and checks it (:meth:`Sandbox.check`,
plus the replacements), copies the inputs in with ``put_archive`` (:mod:`.docker.transport`,
no size limit but the volume's) and only then writes the job line
(:func:`.docker.warm.deliver`): a job runs with all of its limits or not at all, and
its inputs never pass through a Swarm config (those are capped at 500 KB). From there
the job is followed exactly as a docker job that started warm: the container's log
(frames, lines, caps of :mod:`.streams`), its deadline, OOM verdict, usage sampled with
``docker stats``, outputs with ``get_archive`` before the service is removed.

Services carry the job id and the deployment's instance id in their labels (and so do
their containers and volumes; a job's network, which may carry no labels of its own, is
named as its service, and its copy on a node carries the instance's): ``running()``
lists this instance's services and ``reattach()`` follows one after a restart; the job
line goes again only when the runner never said it had it ("assigned"), with the inputs
copied in again first.

Swarm cannot stand in for a warm pool: a running task cannot be resized (measured: an
update of a job service's memory starts a second task in a new container), so a pool's
task would run a job with the pool's limits, not the job's. Every job starts its own task.

A task's container is reached through its node's daemon: this service's own
(``docker_url``), or the URL in the node's label ``LABEL_DOCKER_URL``. Services are placed
by ``constraints`` (the default: this daemon's own node).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import time
from contextlib import contextmanager
from typing import Optional

from traitlets import Bool, Float, List, Unicode

from .base import Outcome
from .docker.executor import DockerExecutor, _Job
from .docker.gateway import LABEL_INSTANCE, LABEL_JOB, Gateway, SandboxError
from .docker.sandbox import Sandbox
from .docker.transport import inputs_tar
from .docker.warm import Arrival, job_line, logged_event

#: Keys of the docker executor's container spec that a Swarm service cannot carry (API
#: 1.41), and what holds the same line instead. README.md's sandbox table says the same.
REPLACED = {
    "security_opt": "no-new-privileges: not in a service spec on this API (ContainerSpec.Privileges has no "
                    "NoNewPrivileges; measured: a task's NoNewPrivs is 0). The capability bounding set is "
                    "empty (cap_drop ALL), so a setuid binary gains no capability.",
    "network_mode": "Swarm has no 'none' network (measured: 'could not find the corresponding predefined "
                    "swarm network: network none not found'): each job gets its own internal bridge on "
                    "its node, on which the node has no address (no route out, the node unreachable, "
                    "no other container on it).",
    "memswap_limit": "Swarm sets a task's swap limit to twice its memory: the nodes run without swap "
                     "(start() checks this node's).",
    "ipc_mode": "private is what a task gets.",
    "privileged": "a task is never privileged.",
    "init": "a task has no init unless asked.",
    "cgroup_parent": "not in a service spec: usage is sampled with docker stats instead of read "
                     "from the job's own cgroup.",
    "tmpfs": "a tmpfs mount of the same size and mode; mounted noexec (no tmpfs options on API 1.41).",
}

#: Options an admin may set that Swarm cannot honour: start() refuses them.
REFUSED = {
    "runtime": "Swarm cannot choose a runtime per service; make it each node's default "
               "(dockerd --default-runtime) and leave runtime empty",
    "warm_pool": "a task cannot be resized to a job's allocation (measured: an update of a job service's "
                 "memory starts a second task and removes the first), so Swarm jobs start their own task",
}

#: The node label that gives the URL of a node's Docker daemon (set by a manager:
#: ``docker node update --label-add org.jupyter.notebook-jobs.docker-url=tcp://…``).
LABEL_DOCKER_URL = "org.jupyter.notebook-jobs.docker-url"

#: Task states in which a task that has no container will never get one.
_ENDED_UNSTARTED = ("rejected", "failed", "orphaned", "shutdown", "remove")

#: The options of a job's network, from the config-only network on its node (a swarm-scoped network
#: cannot carry options or labels of its own): no address of the node on the job's bridge.
NETWORK_OPTIONS = {"com.docker.network.bridge.inhibit_ipv4": "true"}

#: HostConfig checks the swarm executor makes itself (see :meth:`SwarmExecutor.check_task`).
OWN_CHECKS = frozenset({"SecurityOpt", "MemorySwap", "NetworkMode", "Tmpfs", "Mounts", "DeviceRequests"})


class NodeLost(RuntimeError):
    """A job's task never started because its node went away: nothing of the job ran."""


def _tmpfs_options(spec: str) -> tuple:
    """(size, mode) of a docker ``tmpfs`` option string ('rw,size=N,mode=1777')."""
    size, mode = None, 0o1777
    for part in spec.split(","):
        key, _, value = part.partition("=")
        if key == "size":
            size = int(value)
        elif key == "mode":
            mode = int(value, 8)
    return size, mode


def service_spec(kw: dict, *, workdir: str, volume_labels: dict, reserve: bool = False,
                 gpu_kind: str = "NVIDIA-GPU") -> dict:
    """A job's service, from ``Sandbox.create_kwargs``: ``container`` (ContainerSpec keyword
    arguments), ``container_fields`` (fields docker-py's ContainerSpec has no argument for),
    ``resources``, ``log_driver``.

    Every key is translated, or replaced (``REPLACED``), or refused: a key this function
    does not know raises SandboxError, so nothing the docker backend hardens is dropped here.
    """
    from docker.types import DriverConfig, Mount, Resources

    kw = dict(kw)
    for key in set(REPLACED) - {"tmpfs"}:
        kw.pop(key, None)
    mounts = []
    for m in kw.pop("mounts"):
        if m.get("Type") != "volume" or m.get("Target") != workdir:
            raise SandboxError(f"swarm executor: unexpected mount {dict(m)!r}")
        mounts.append(Mount(target=workdir, source=m["Source"], type="volume", labels=volume_labels))
    for target, options in kw.pop("tmpfs").items():
        size, mode = _tmpfs_options(options)
        mounts.append(Mount(target=target, source="", type="tmpfs", tmpfs_size=size, tmpfs_mode=mode))
    container = {"user": kw.pop("user"), "cap_drop": kw.pop("cap_drop"), "read_only": kw.pop("read_only"),
                 "mounts": mounts, "open_stdin": True}  # (the job line goes in on stdin, after the check)
    memory, cpus = int(kw.pop("mem_limit")), int(kw.pop("nano_cpus"))
    # Reservations equal to limits (``reserve``): Swarm places a job only where its whole
    # allocation is free. Off by default: see SwarmExecutor.reserve.
    # GPUs: a reservation of the nodes' generic resource, whatever ``reserve`` says (Swarm, not the
    # dispatcher, knows which node has which free); Swarm picks the devices, never this service.
    gpus = {}
    for request in kw.pop("device_requests", None) or []:
        if request.get("DeviceIDs"):
            raise SandboxError("swarm executor: a service cannot ask for GPUs by id; Swarm assigns them")
        gpus[gpu_kind] = gpus.get(gpu_kind, 0) + int(request.get("Count") or 0)
    resources = Resources(cpu_limit=cpus, mem_limit=memory, cpu_reservation=cpus if reserve else None,
                          mem_reservation=memory if reserve else None, generic_resources=gpus or None)
    resources["Limits"]["Pids"] = int(kw.pop("pids_limit"))  # (API 1.41; Resources has no argument for it)
    ulimits = [{"Name": u["Name"], "Soft": u["Soft"], "Hard": u["Hard"]} for u in kw.pop("ulimits")]
    fields = {"Ulimits": ulimits}  # (API 1.41; ContainerSpec has no argument for it)
    log = kw.pop("log_config")
    if kw:
        raise SandboxError(f"swarm executor: the sandbox has options Swarm cannot express: {sorted(kw)}")
    return {"container": container, "container_fields": fields, "resources": resources,
            "log_driver": DriverConfig(log["Type"], dict(log["Config"]))}


class SwarmExecutor(DockerExecutor):
    """Runs each job as a one-task replicated-job service of a Docker Swarm, sandboxed as docker jobs are."""

    name = "swarm"
    durable = True
    #: its tasks run the runner image only (no environments of their own, no derived images): README, Environments
    runs_images = False

    constraints = List(
        Unicode(),
        help="Placement constraints of every job's service (Swarm's syntax, e.g. "
        "'node.labels.notebook-jobs==true'). Empty (the default): the node of the daemon this "
        "service talks to. A task's container (inputs, log, output) is reached through its "
        "node's daemon: this service's own, or the URL in the node's label "
        f"{LABEL_DOCKER_URL}; a job placed on a node with neither fails as infrastructure.",
    ).tag(config=True)

    gpu_resource = Unicode(
        "NVIDIA-GPU",
        help="The kind of Swarm generic resource a node's GPUs are (dockerd's node-generic-resources, e.g. "
        "\"NVIDIA-GPU=GPU-<uuid>\", one a GPU): a job asking n GPUs reserves n of it, and how many a "
        "node advertises is what a job may ask there.",
    ).tag(config=True)

    gpu_constraints = List(
        Unicode(),
        ["node.labels.gpu==true"],
        help="Placement constraints added to a GPU job's service: the nodes of the GPU pool (labelled "
        "with `docker node update --label-add gpu=true`). A job asking more GPUs than any such node "
        "advertises is refused at submit.",
    ).tag(config=True)

    start_timeout = Float(
        60.0,
        help="Seconds a job's task may wait for a node (and its container to start) before the "
        "job fails as infrastructure, with the scheduler's reason.",
    ).tag(config=True)

    reserve = Bool(
        False,
        help="Give each job's service reservations equal to its limits, so that Swarm itself places "
        "a job only where its allocation is free. Off by default: on Docker 20.10 a finished "
        "replicated-job task keeps its desired state 'complete', and Swarm's constraint enforcer "
        "keeps counting its reservations against the node, so after a node's worth of finished "
        "jobs every new task is rejected ('assigned node no longer meets constraints'; measured "
        "here: after a few finished 1-cpu jobs on a 2-cpu node, even after their services were "
        "removed). The dispatcher's capacity keeps the running "
        "jobs' allocations within the nodes' either way.",
    ).tag(config=True)

    allow_swap = Bool(
        False,
        help="Run jobs although this node has swap. Swarm sets a task's swap limit to twice its "
        "memory (a service cannot set it), so on a node with swap a job over its memory swaps "
        "instead of being OOM-killed.",
    ).tag(config=True)

    node_poll = Float(
        10.0,
        help="Seconds between listings of the swarm's nodes: their health on the admin panel and "
        "their capacity for the dispatcher.",
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._nodes: list = []  # the swarm's nodes, as last listed
        self._job_nodes: dict = {}  # job id -> the node its task runs on
        self._task_errors: dict = {}  # job id -> why Swarm stopped its task (its status' Err)
        self._node_gateways: dict = {}  # docker URL -> Gateway, for the other nodes' daemons
        self._node_watch: Optional[asyncio.Future] = None
        self._node_id = ""  # the node of the daemon this service talks to
        self._isolated: set = set()  # nodes known to have this instance's config-only network
        self._starting = 0  # jobs whose task is not running yet: their network is unused on its node
        self._settled = threading.Condition()  # (guards _starting: no pruning while a task starts)

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Check the daemon is a swarm manager with the runner image; refuse what Swarm cannot do."""
        if not self.instance:
            raise RuntimeError("swarm executor: SwarmExecutor.instance is empty "
                               "(the service sets it to its id)")
        if self.runtime:
            raise RuntimeError(f"swarm executor: runtime={self.runtime!r}: {REFUSED['runtime']}")
        for trait in ("warm_pool", "warm_pool_max"):  # (the forecast's pool is a warm pool too)
            if getattr(self, trait):
                raise RuntimeError(f"swarm executor: {trait}={getattr(self, trait)}: {REFUSED['warm_pool']}")
        if self.network != "none":
            raise RuntimeError(f"swarm executor: network {self.network!r}: jobs get their own internal "
                               "network; no other network is offered on Swarm")
        if not self.allow_swap and _swap_total() > 0:
            raise RuntimeError("swarm executor: this node has swap; Swarm lets a task swap up to its memory "
                               "again (see allow_swap)")
        gw = self._gateway
        _, info = await gw.preflight(self.image, "")
        swarm = info.get("Swarm") or {}
        if swarm.get("LocalNodeState") != "active" or not swarm.get("ControlAvailable"):
            raise RuntimeError("swarm executor: the daemon is not a swarm manager; run "
                               "`docker swarm init --advertise-addr <this host's address>` "
                               "(README: Running on a Swarm)")
        self._stopping = False
        self._node_id = swarm.get("NodeID", "")
        self._nodes = await gw.call(gw.api.nodes)
        self._node_watch = asyncio.ensure_future(self._watch_nodes())

    async def _watch_nodes(self) -> None:
        """List the nodes every ``node_poll`` seconds: one that goes down is shown as down."""
        while not self._stopping:
            await asyncio.sleep(self.node_poll)
            try:
                self._nodes = await self._gateway.call(self._gateway.api.nodes)
            except Exception as e:
                self.log.warning("swarm executor: cannot list the swarm's nodes: %s", e)

    async def stop(self) -> None:
        if self._node_watch is not None:
            self._node_watch.cancel()
        await super().stop()
        for gw in self._node_gateways.values():
            gw.close()
        self._node_gateways.clear()

    def health(self) -> dict:
        info = super().health()
        info["nodes"] = len(self._nodes)
        return info

    def nodes(self) -> list:
        """Each node as last listed: its capacity, labels, health and the jobs it runs here."""
        jobs: dict = {}
        for job_id, node in self._job_nodes.items():
            jobs.setdefault(node, []).append(job_id)
        out = []
        for n in self._nodes:
            desc, spec, status = n.get("Description") or {}, n.get("Spec") or {}, n.get("Status") or {}
            res = desc.get("Resources") or {}
            out.append({
                "id": n.get("ID"), "hostname": desc.get("Hostname"), "role": spec.get("Role"),
                "availability": spec.get("Availability"), "state": status.get("State"),
                "labels": spec.get("Labels") or {}, "cpu": res.get("NanoCPUs", 0) / 1e9,
                "gpus": node_gpus(n, self.gpu_resource),  # (its generic resources of that kind)
                # whether this service reaches the node's daemon (its own, or the label's URL)
                "reachable": n.get("ID") == self._node_id or bool((spec.get("Labels") or {}).get(LABEL_DOCKER_URL)),
                "memory": res.get("MemoryBytes", 0), "jobs": sorted(jobs.get(n.get("ID"), [])),
            })
        return out

    def _hostname(self, node_id: str) -> str:
        """A node's hostname and id, as last listed (its id alone when unknown)."""
        for n in self._nodes:
            if n.get("ID") == node_id:
                return f"{(n.get('Description') or {}).get('Hostname')} ({node_id})"
        return node_id

    def capacity(self) -> dict:
        """cpu, memory and GPUs of the ready, active nodes: what the dispatcher may hand out here."""
        ready = [n for n in self.nodes() if n["state"] == "ready" and n["availability"] == "active"]
        return {"cpu": sum(n["cpu"] for n in ready), "memory": sum(n["memory"] for n in ready),
                "gpu": sum(node_gpus(n, self.gpu_resource) for n in self._gpu_nodes(self._nodes))}

    # --- the nodes' daemons (sync) -------------------------------------------------------
    def _node_gateway(self, node_id: Optional[str]) -> Gateway:
        """The daemon of a node: this service's own, else the one the node's label names."""
        if not node_id or node_id == self._node_id:
            return self._gateway
        node = self._gateway.api.inspect_node(node_id)
        url = ((node.get("Spec") or {}).get("Labels") or {}).get(LABEL_DOCKER_URL)
        if not url:
            hostname = (node.get("Description") or {}).get("Hostname")
            raise RuntimeError(f"the job's task is on node {hostname} ({node_id}), whose Docker daemon this "
                               f"service cannot reach: label the node {LABEL_DOCKER_URL}=<its daemon's URL>, "
                               "or constrain jobs to nodes that have one (README: Running on a Swarm)")
        gw = self._node_gateways.get(url)
        if gw is None:
            gw = self._node_gateways[url] = Gateway(url, self.threads, self.log)
        return gw

    def _task_containers(self, job_id: str) -> list:
        """(node's gateway, container id) of each task of the job's service that has a container; what
        Swarm said of a task it stopped is kept for the job's outcome (``_task_errors``)."""
        api, found = self._gateway.api, []
        for service in api.services(filters=self._filters(job_id)):
            for task in api.tasks(filters={"service": service["ID"]}):
                status = task.get("Status") or {}
                if status.get("Err") and task.get("DesiredState") in ("shutdown", "rejected"):
                    self._task_errors[job_id] = status["Err"]
                cid = (status.get("ContainerStatus") or {}).get("ContainerID")
                if cid:
                    try:
                        found.append((self._node_gateway(task.get("NodeID")), cid))
                    except RuntimeError as e:  # (an unreachable node: nothing to do there from here)
                        self.log.warning("job %s: %s", job_id, e)
        return found

    # --- names ----------------------------------------------------------------------------
    def _service_name(self, job_id: str) -> str:
        """The job's service (and network) name: at most 63 characters, as Swarm wants."""
        name = self.names.job(job_id)[0]
        if len(name) > 63:
            name = "notebook-jobs-" + hashlib.sha256(f"{self.instance}/{job_id}".encode()).hexdigest()[:32]
        return name

    @property
    def config_network(self) -> str:
        """This instance's config-only network on each node, whose options the jobs' networks take
        ("notebook-jobs." never starts a job's name)."""
        return f"notebook-jobs.isolated.{self.instance}"

    def _filters(self, job_id: Optional[str] = None) -> dict:
        labels = [f"{LABEL_INSTANCE}={self.instance}"]
        if job_id is not None:
            labels.append(f"{LABEL_JOB}={job_id}")
        return {"label": labels}

    # --- creating a job's service (sync, in the gateway's threads) -------------------------
    def _create_service(self, spec, job: _Job) -> None:
        """Network, service, the task's container found, checked, and the inputs copied in."""
        from docker.types import (ContainerSpec, NetworkAttachmentConfig, Placement, RestartPolicy,
                                  ServiceMode, TaskTemplate)

        client, sandbox = self._gateway.client, self.sandbox
        self._check_fits(spec)
        constraints = self.placement(bool(spec.gpu))
        self._isolate(constraints)
        name = self._service_name(spec.job_id)
        _, vname = self.names.job(spec.job_id)
        labels = self.names.job_labels(spec.job_id, spec.user)
        parts = service_spec(sandbox.create_kwargs(spec, vname), workdir=self.workdir, volume_labels=labels,
                             reserve=self.reserve, gpu_kind=self.gpu_resource)
        args = ["--warm", "--cwd", f"{self.workdir}/files"]
        if spec.kernel_name:
            args += ["--kernel", spec.kernel_name]
        # (the image's entry point runs the runner, as the docker executor's containers do)
        container = ContainerSpec(self.image, args=args, labels=labels, **parts["container"])
        container.update(parts["container_fields"])
        template = TaskTemplate(container, resources=parts["resources"], log_driver=parts["log_driver"],
                                restart_policy=RestartPolicy(condition="none"),
                                placement=Placement(constraints=constraints),
                                networks=[NetworkAttachmentConfig(name)])
        try:
            # (no labels: a network made from a config-only one may have none; its name is the job's)
            _create_network(client.api, name, Driver="bridge", Scope="swarm", Internal=True,
                            ConfigFrom={"Network": self.config_network})
            with self._task_starting():
                client.api.create_service(template, name=name, labels=labels,
                                          mode=ServiceMode("replicated-job"))
                job.container_id = self._task_container(spec.job_id, job)
            if job.killed_for is not None:
                return
            node = self._gw(job).api  # the task's node's daemon: its container is there
            attrs = node.inspect_container(job.container_id)
            problems = self.check_task(spec, attrs, node.inspect_network(name))
            if problems:
                raise SandboxError("refusing to start: the daemon dropped limits: " + "; ".join(problems))
            if (attrs.get("State") or {}).get("Running"):
                with inputs_tar(spec, *sandbox.uid_gid) as tar:
                    node.put_archive(job.container_id, self.workdir, tar)
        except BaseException:
            self._remove_sync(spec.job_id, job.container_id)
            raise

    @contextmanager
    def _task_starting(self):
        """While a job's task starts, its network on its node has no container yet: nothing is pruned then."""
        with self._settled:
            self._starting += 1
        try:
            yield
        finally:
            with self._settled:
                self._starting -= 1
                self._settled.notify_all()

    def _isolate(self, constraints: list) -> None:
        """Make this instance's config-only network on each ready node a job may be placed on and this
        service reaches, where it is missing (sync): a job's network takes its options from it there.
        A node whose daemon does not answer is skipped: a task placed there fails, saying why."""
        for node in self._nodes:
            if node.get("ID") in self._isolated or not satisfies(node, constraints):
                continue
            try:
                _create_network(self._node_gateway(node.get("ID")).api, self.config_network, ConfigOnly=True,
                                Options=NETWORK_OPTIONS, Labels={LABEL_INSTANCE: self.instance})
            except Exception as e:
                if getattr(e, "status_code", None) != 409:  # (409: it is there already)
                    self.log.warning("swarm executor: no %s on node %s: %s", self.config_network,
                                     self._hostname(node.get("ID")), e)
                    continue
            self._isolated.add(node.get("ID"))

    def placement(self, gpu: bool = False) -> list:
        """The constraints of a job's service: the admin's, else this daemon's own node; and a GPU
        job's, the GPU pool's (``gpu_constraints``)."""
        own = list(self.constraints) or [f"node.id=={self._node_id}"]
        return own + list(self.gpu_constraints) if gpu else own

    # --- GPUs: the GPU pool's generic resources --------------------------------------------
    def gpu_inventory(self) -> None:
        """None: Swarm gives a GPU job its devices, from its node's generic resources."""
        return None

    def _gpu_nodes(self, nodes: list) -> list:
        """Of ``nodes``, the ready, active ones a GPU job may be placed on."""
        pool = self.placement(gpu=True)
        return [n for n in nodes if (n.get("Status") or {}).get("State") == "ready"
                and (n.get("Spec") or {}).get("Availability") == "active" and satisfies(n, pool)]

    def gpu_count(self) -> int:
        """The most GPUs one job may ask: the most one node of the GPU pool advertises (as last listed)."""
        return max((node_gpus(n, self.gpu_resource) for n in self._gpu_nodes(self._nodes)), default=0)

    def gpu_where(self) -> str:
        """Where the GPUs gpu_count() counts are, in words."""
        return (f" on any one node of its GPU pool ({', '.join(self.placement(gpu=True))}; GPUs are the nodes' "
                f"generic resources of kind {self.gpu_resource})")

    def _check_fits(self, spec) -> None:
        """Raise when no ready, active node has the job's cpu and memory (sync).

        Without reservations (``reserve``) Swarm would place such a task anyway, and its
        limits would promise what no node has.
        """
        listed = self._gateway.api.nodes()
        nodes = [n for n in listed
                 if (n.get("Status") or {}).get("State") == "ready"
                 and (n.get("Spec") or {}).get("Availability") == "active"]
        self._nodes = nodes or self._nodes
        if spec.gpu and not any(node_gpus(n, self.gpu_resource) >= spec.gpu for n in self._gpu_nodes(listed)):
            raise RuntimeError(f"no node of the swarm can hold the job's {spec.gpu} GPU(s): none has as many"
                               f"{self.gpu_where()}")
        sizes = [((n.get("Description") or {}).get("Resources") or {}) for n in nodes]
        if not any(r.get("NanoCPUs", 0) >= spec.cpu * 1e9 and r.get("MemoryBytes", 0) >= spec.memory
                   for r in sizes):
            largest = max(sizes, key=lambda r: (r.get("MemoryBytes", 0), r.get("NanoCPUs", 0)), default={})
            raise RuntimeError(f"no node of the swarm can hold the job ({spec.cpu:g} cpu, "
                               f"{int(spec.memory)} bytes); "
                               f"the largest ready node has {largest.get('NanoCPUs', 0) / 1e9:g} cpu, "
                               f"{largest.get('MemoryBytes', 0)} bytes")

    def _task_container(self, job_id: str, job: Optional[_Job] = None) -> Optional[str]:
        """The id of the job's task container once it has started (sync); None when cancelled."""
        api = self._gateway.api
        deadline = time.monotonic() + self.start_timeout
        last, last_node = {}, None
        while time.monotonic() < deadline:
            if job is not None and job.killed_for is not None:
                return None
            services = api.services(filters=self._filters(job_id))
            if not services:
                raise RuntimeError("the job's service is gone")
            tasks = api.tasks(filters={"service": services[0]["ID"]})
            for task in tasks:
                status = task.get("Status") or {}
                last, last_node = status, task.get("NodeID")
                cid = (status.get("ContainerStatus") or {}).get("ContainerID")
                # (pending with "insufficient resources" may yet be placed: wait, up to start_timeout)
                if not cid and status.get("State") in _ENDED_UNSTARTED:
                    error = NodeLost if self._node_down(task.get("NodeID")) else RuntimeError
                    if error is RuntimeError:  # (a node this service cannot reach lacks the job's network)
                        self._node_gateway(task.get("NodeID"))  # (raises, saying what to label)
                    raise error(f"Swarm could not start the job's task: {status.get('Err') or status}")
                if cid and status.get("State") not in ("new", "pending", "assigned", "accepted", "preparing"):
                    node = self._node_gateway(task.get("NodeID"))
                    state = node.api.inspect_container(cid).get("State") or {}
                    if state.get("Running") or not state.get("FinishedAt", "0001-").startswith("0001-"):
                        self._job_nodes[job_id] = task.get("NodeID")
                        if job is not None:
                            job.gateway = node
                        return cid
            time.sleep(0.05)
        why = f"{last.get('Err') or last.get('Message') or last.get('State') or 'no task'}"
        if self._node_down(last_node):
            raise NodeLost(f"the job's task did not start within {self.start_timeout:.0f} s on node "
                           f"{self._hostname(last_node)}, which is down: {why}")
        raise RuntimeError(f"the job's task did not start within {self.start_timeout:.0f} s: {why}")

    def _node_down(self, node_id: Optional[str]) -> bool:
        """Whether the node a task was given to is not ready now (gone, or going)."""
        if not node_id:
            return False
        return ((self._gateway.api.inspect_node(node_id).get("Status") or {}).get("State")) != "ready"

    def check_task(self, spec, attrs: dict, network: dict) -> list:
        """What the task's container lacks of the sandbox: the docker check, and the replacements.
        ``network`` is the job's network as the task's node's daemon inspects it."""
        sandbox: Sandbox = self.sandbox
        problems = sandbox.check(spec, attrs, skip=OWN_CHECKS)
        hc = attrs.get("HostConfig") or {}
        if hc.get("MemorySwap") not in (int(spec.memory), 2 * int(spec.memory)):
            problems.append(f"MemorySwap is {hc.get('MemorySwap')!r}")
        mounts = {(m.get("Type"), m.get("Target")): m for m in hc.get("Mounts") or []}
        tmp = mounts.pop(("tmpfs", "/tmp"), None)
        if not tmp or (tmp.get("TmpfsOptions") or {}).get("SizeBytes") != sandbox.tmpfs_size:
            problems.append(f"no /tmp tmpfs of {sandbox.tmpfs_size} bytes")
        mounts.pop(("volume", self.workdir), None)
        if mounts:
            problems.append(f"unexpected mounts {sorted(mounts)}")
        name, nets = network.get("Name"), set(((attrs.get("NetworkSettings") or {}).get("Networks") or {}))
        if nets != {name}:
            problems.append(f"networks are {sorted(nets)}, wanted only the job's own {name!r}")
        options = network.get("Options") or {}
        if (network.get("Driver"), network.get("Internal")) != ("bridge", True) or any(
                options.get(key) != value for key, value in NETWORK_OPTIONS.items()):
            problems.append(f"the job's network is {network.get('Driver')!r}, internal "
                            f"{network.get('Internal')!r}, options {options!r}; wanted an internal bridge "
                            f"with {NETWORK_OPTIONS}")
        others = set(network.get("Containers") or {}) - {attrs.get("Id")}
        if others:
            problems.append(f"other containers are on the job's network: {sorted(others)}")
        if not (attrs.get("Config") or {}).get("OpenStdin"):
            problems.append("OpenStdin is not set")
        if hc.get("DeviceRequests"):  # (Swarm gives a task its GPUs in its environment, never so)
            problems.append(f"DeviceRequests are {hc['DeviceRequests']!r}, wanted none")
        if spec.gpu:
            problems += gpu_env_problems((attrs.get("Config") or {}).get("Env") or [], self.gpu_resource, spec.gpu)
        return problems

    # --- running --------------------------------------------------------------------------
    async def run(self, spec, on_event, on_log) -> Outcome:
        """Create the job's service, check its task, follow it to its end and collect it."""
        job = self._jobs.setdefault(spec.job_id, _Job(spec.job_id))
        gw = self._gateway
        try:
            try:
                await gw.call(self._create_service, spec, job)
            except SandboxError as e:
                self.log.error("job %s: %s", spec.job_id, e)
                return Outcome("failed", "infrastructure", str(e))
            except NodeLost as e:
                return Outcome("failed", "infrastructure", f"cannot start the job's service: {e}", requeue=True)
            except Exception as e:
                self.log.exception("job %s: cannot start its service", spec.job_id)
                return Outcome("failed", "infrastructure", f"cannot start the job's service: {e}")
            if job.killed_for == "cancelled":
                await gw.call(self._remove_sync, spec.job_id, job.container_id)
                return Outcome("cancelled", "cancelled", "cancelled by request")
            job.volume = self.names.job(spec.job_id)[1]
            job.arrival = Arrival(job_line(spec, self.workdir))
            return await self._follow(spec, job, on_event, on_log, fresh=True)
        finally:
            self._jobs.pop(spec.job_id, None)
            self._job_nodes.pop(spec.job_id, None)
            self._task_errors.pop(spec.job_id, None)

    async def reattach(self, spec, on_event, on_log) -> Outcome:
        """Follow a job's service found after a restart, as run would."""
        job = self._jobs.setdefault(spec.job_id, _Job(spec.job_id))
        gw = self._gateway
        try:
            try:
                job.container_id = await gw.call(self._task_container, spec.job_id, job)
            except Exception as e:
                await gw.call(self._remove_sync, spec.job_id)
                return Outcome("failed", "infrastructure", f"the job's task is gone: {e}")
            job.volume = self.names.job(spec.job_id)[1]
            node = self._gw(job)
            assigned = await node.call(logged_event, node.api, job.container_id, "assigned")
            if assigned is None:  # the service died before the job line: inputs again, then the line
                attrs = await node.call(node.api.inspect_container, job.container_id)
                network = await node.call(node.api.inspect_network, self._service_name(spec.job_id))
                problems = self.check_task(spec, attrs, network)
                if problems:
                    await gw.call(self._remove_sync, spec.job_id, job.container_id)
                    return Outcome("failed", "infrastructure", "refusing to start: " + "; ".join(problems))
                if (attrs.get("State") or {}).get("Running"):
                    with inputs_tar(spec, *self.sandbox.uid_gid) as tar:
                        await node.call(node.api.put_archive, job.container_id, self.workdir, tar)
            job.arrival = Arrival(job_line(spec, self.workdir), (assigned or {}).get("time"))
            return await self._follow(spec, job, on_event, on_log, fresh=False)
        finally:
            self._jobs.pop(spec.job_id, None)
            self._job_nodes.pop(spec.job_id, None)
            self._task_errors.pop(spec.job_id, None)

    async def _follow(self, spec, job: _Job, on_event, on_log, fresh: bool) -> Outcome:
        outcome = await super()._follow(spec, job, on_event, on_log, fresh)
        node = self._job_nodes.get(spec.job_id)
        if outcome.reason == "infrastructure" and node and node != self._node_id:
            outcome.message += f" (on node {self._hostname(node)})"
            outcome.requeue = not job.delivered  # (its node went before the runner had its job: none of it ran)
        said = self._task_errors.pop(spec.job_id, None)
        if outcome.reason == "infrastructure" and said:
            outcome.message += f"; Swarm stopped its task: {said}"
        if job.arrival.assigned is not None and outcome.used.cpu_seconds == 0.0:
            # The last docker stats sample came before the job's own work (no cgroup of the
            # task outlives it to read the total from): unknown, not zero.
            outcome.used.cpu_seconds = None
        return outcome

    # --- removing (sync) ------------------------------------------------------------------
    def _remove_sync(self, job_id: str, container_id: Optional[str] = None):
        """Remove a job's service, its task's container, volume and network."""
        import docker

        gw, api = self._gateway, self._gateway.api
        # (the tasks first: they go with their service, and they say which node each container is on)
        containers = dict.fromkeys(self._task_containers(job_id))
        for service in api.services(filters=self._filters(job_id)):
            try:
                api.remove_service(service["ID"])
            except docker.errors.NotFound:
                pass
        if container_id:
            containers[(self._gw(self._jobs.get(job_id)), container_id)] = None
        containers.update(dict.fromkeys((gw, c["Id"]) for c in api.containers(all=True, filters=self._filters(job_id))))
        _, vname = self.names.job(job_id)
        for node, cid in containers:
            try:
                node.remove(cid, vname, self.workdir)
            except Exception as e:  # a node that went away: what it held is gone with it, or its admin's
                self.log.warning("job %s: cannot remove container %s on %s: %s", job_id, cid[:12],
                                 node.url or "this daemon", e)
        if not containers:
            gw.remove(f"{vname}-none", vname, self.workdir)  # (no container: the volume alone)
        self._prune({node for node, _ in containers})
        for _ in range(50):  # the network is in use until the task's endpoint is gone
            try:
                api.remove_network(self._service_name(job_id))
                break
            except docker.errors.NotFound:
                break
            except docker.errors.APIError as e:
                if "not found" in str(e):  # (a 500: being deleted already)
                    break
                time.sleep(0.1)

    def _prune(self, nodes) -> None:
        """Remove this instance's job networks that no container uses from the nodes' daemons (sync).

        A job's network stays on its node after its task (the node's agent leaves it there, and a
        worker's daemon refuses to remove a swarm network, but prunes it), holding one of the node's
        address pools; its copy there carries the labels of this instance's config-only network. Not
        while a task of this instance starts (its network is unused until its container runs): what
        is left then goes with a later removal.
        """
        with self._settled:
            if not self._settled.wait_for(lambda: self._starting == 0, timeout=1.0):
                return
            for node in nodes:
                try:
                    node.api.prune_networks(filters={"label": f"{LABEL_INSTANCE}={self.instance}"})
                except Exception as e:  # (a node that went away: its networks went with it)
                    self.log.warning("cannot prune job networks on %s: %s", node.url or "this daemon", e)

    # --- control --------------------------------------------------------------------------
    async def _kill_unfollowed(self, job_id: str) -> bool:
        """Kill the task of a job nobody here follows; False: it has no service."""
        gw = self._gateway
        services = await gw.call(gw.api.services, filters=self._filters(job_id))
        if not services:
            return False
        for node, cid in await gw.call(self._task_containers, job_id):
            await node.call(node.kill, cid)
        return True

    async def running(self) -> list:
        """Ids of this instance's jobs that still have a service (running or ended)."""
        gw = self._gateway
        services = await gw.call(gw.api.services, filters=self._filters())
        return sorted({(s["Spec"].get("Labels") or {}).get(LABEL_JOB) for s in services} - {None})


#: a constraint on a node's id, hostname, role or label (Swarm's syntax)
_CONSTRAINT = re.compile(r"\s*node\.(id|hostname|role|labels\.[^=!\s]+)\s*(==|!=)\s*(\S*)\s*")


def _create_network(api, name: str, **fields) -> None:
    """Create a network with fields docker-py has no argument for (``ConfigOnly``, ``ConfigFrom``); a name
    that exists already is a 409, never a second network of that name."""
    body = {"Name": name, "CheckDuplicate": True, **fields}
    api._result(api._post_json(api._url("/networks/create"), data=body), True)


def node_gpus(node: dict, kind: str) -> int:
    """GPUs a node advertises: its generic resources of ``kind`` (named ones, one a GPU, or a count)."""
    total = 0
    for resource in ((node.get("Description") or {}).get("Resources") or {}).get("GenericResources") or []:
        named, discrete = resource.get("NamedResourceSpec") or {}, resource.get("DiscreteResourceSpec") or {}
        if named.get("Kind") == kind:
            total += 1
        elif discrete.get("Kind") == kind:
            total += int(discrete.get("Value", 0))
    return total


def gpu_env_problems(env: list, kind: str, count: int) -> list:
    """What a GPU task's environment lacks: Swarm names the generic resources it gave a task in
    ``DOCKER_RESOURCE_<KIND>`` (named ones by their values, comma-separated; a discrete one by its
    count), which the node's NVIDIA runtime reads. (Not seen on a real GPU node: none here.)"""
    name = f"DOCKER_RESOURCE_{kind.upper()}"
    given = [e.partition("=")[2] for e in env if e.partition("=")[0] == name]
    if not given:
        return [f"{name} is not set: Swarm gave the task no GPU"]
    value = given[0]
    have = int(value) if value.isdigit() else len([v for v in value.split(",") if v])
    return [] if have >= count else [f"{name} is {value!r}: fewer than the {count} GPU(s) asked"]


def satisfies(node: dict, constraints: list) -> bool:
    """Whether a node meets placement constraints on its id, hostname, role and labels; others
    (engine labels, platform) are Swarm's to judge, and taken as met."""
    spec = node.get("Spec") or {}
    known = {"id": node.get("ID"), "hostname": (node.get("Description") or {}).get("Hostname"),
             "role": spec.get("Role")}
    for constraint in constraints:
        m = _CONSTRAINT.fullmatch(constraint)
        if m:
            attr, op, value = m.groups()
            have = (spec.get("Labels") or {}).get(attr[7:]) if attr.startswith("labels.") else known[attr]
            if (have == value) != (op == "=="):
                return False
    return True


def _swap_total() -> int:
    """Bytes of swap on this host (0 when /proc/meminfo says none or cannot be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("SwapTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


__all__ = ["SwarmExecutor", "service_spec", "REPLACED", "REFUSED"]
