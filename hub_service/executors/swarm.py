"""The swarm executor: each job a one-task ``replicated-job`` service of a Docker Swarm.

The same job contract and the same sandbox as the docker executor, on any node of a
swarm. Each job becomes:

- a service (mode ``replicated-job``, restart ``none``: one task, never run twice) built
  from the docker executor's own container spec (:meth:`Sandbox.create_kwargs`),
  translated key by key by :func:`service_spec`. A key Swarm cannot express is either
  replaced by something that holds the same line (``REPLACED``, README's sandbox table)
  or refused: a container option the translation does not know stops the job, so a new
  hardening option of the docker backend is never silently dropped here;
- its own internal overlay network (Swarm has no ``none`` network: a task without one
  lands on the node's bridge). Internal: no route out; its own: no other job on it;
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
their containers, volumes and networks): ``running()`` lists this instance's services
and ``reattach()`` follows one after a restart; the job line goes again only when the
runner never said it had it ("assigned"), with the inputs copied in again first.

Swarm cannot stand in for a warm pool: a running task cannot be resized (measured: an
update of a job service's memory starts a second task in a new container), so a pool's
task would run a job with the pool's limits, not the job's. Every job starts its own task.

The node's daemon is this service's own (``docker_url``): a swarm whose jobs land on
other nodes needs each node's daemon reachable, which this version does not do yet; its
services are placed by ``constraints`` (the default: this daemon's own node, so a task
never lands where its output cannot be read).
"""

from __future__ import annotations

import hashlib
import time
from typing import Optional

from traitlets import Bool, Float, List, Unicode

from .base import Outcome
from .docker.executor import DockerExecutor, _Job
from .docker.gateway import LABEL_INSTANCE, LABEL_JOB, SandboxError
from .docker.sandbox import Sandbox
from .docker.transport import inputs_tar
from .docker.warm import Arrival, job_line, logged_event

#: Keys of the docker executor's container spec that a Swarm service cannot carry (API
#: 1.41), and what holds the same line instead. README.md's sandbox table says the same.
REPLACED = {
    "security_opt": "no-new-privileges: not in a service spec on this API (ContainerSpec.Privileges has no "
                    "NoNewPrivileges; measured: a task's NoNewPrivs is 0). The capability bounding set is "
                    "empty (cap_drop ALL), so a setuid binary gains no capability.",
    "network_mode": "Swarm has no 'none' network: each job gets its own internal overlay network "
                    "(no route out, no other container on it).",
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

#: The runner in the runner image (its entry point), started in warm mode.
RUNNER_COMMAND = ("/opt/runner/bin/python", "/opt/runner/runner.py")

#: Task states in which a task that has no container will never get one.
_ENDED_UNSTARTED = ("rejected", "failed", "orphaned", "shutdown", "remove")

#: HostConfig checks the swarm executor makes itself (see :meth:`SwarmExecutor.check_task`).
OWN_CHECKS = frozenset({"SecurityOpt", "MemorySwap", "NetworkMode", "Tmpfs", "Mounts"})


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


def service_spec(kw: dict, *, workdir: str, volume_labels: dict, reserve: bool = False) -> dict:
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
    resources = Resources(cpu_limit=cpus, mem_limit=memory, cpu_reservation=cpus if reserve else None,
                          mem_reservation=memory if reserve else None)
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

    constraints = List(
        Unicode(),
        help="Placement constraints of every job's service (Swarm's syntax, e.g. "
        "'node.labels.notebook-jobs==true'). Empty (the default): the node of the daemon this "
        "service talks to, which is where it reads a task's container (log, inputs, output).",
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

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._nodes: list = []  # the swarm's nodes, as last listed
        self._job_nodes: dict = {}  # job id -> the node its task runs on
        self._node_id = ""  # the node of the daemon this service talks to

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Check the daemon is a swarm manager with the runner image; refuse what Swarm cannot do."""
        if not self.instance:
            raise RuntimeError("swarm executor: SwarmExecutor.instance is empty "
                               "(the service sets it to its id)")
        if self.runtime:
            raise RuntimeError(f"swarm executor: runtime={self.runtime!r}: {REFUSED['runtime']}")
        if self.warm_pool:
            raise RuntimeError(f"swarm executor: warm_pool={self.warm_pool}: {REFUSED['warm_pool']}")
        if self.network != "none":
            raise RuntimeError(f"swarm executor: network {self.network!r}: jobs get their own internal "
                               "overlay network; no other network is offered on Swarm")
        if self.gpus:
            raise RuntimeError("swarm executor: GPUs (generic resources) are not supported yet; set gpus = 0")
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
                "memory": res.get("MemoryBytes", 0), "jobs": sorted(jobs.get(n.get("ID"), [])),
            })
        return out

    def capacity(self) -> dict:
        """cpu and memory of the ready, active nodes: what the dispatcher may hand out here."""
        ready = [n for n in self.nodes() if n["state"] == "ready" and n["availability"] == "active"]
        return {"cpu": sum(n["cpu"] for n in ready), "memory": sum(n["memory"] for n in ready)}

    # --- names ----------------------------------------------------------------------------
    def _service_name(self, job_id: str) -> str:
        """The job's service (and network) name: at most 63 characters, as Swarm wants."""
        name = self.names.job(job_id)[0]
        if len(name) > 63:
            name = "notebook-jobs-" + hashlib.sha256(f"{self.instance}/{job_id}".encode()).hexdigest()[:32]
        return name

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
        name = self._service_name(spec.job_id)
        _, vname = self.names.job(spec.job_id)
        labels = self.names.job_labels(spec.job_id, spec.user)
        parts = service_spec(sandbox.create_kwargs(spec, vname), workdir=self.workdir, volume_labels=labels,
                             reserve=self.reserve)
        net = client.networks.create(name, driver="overlay", internal=True, labels=labels)
        args = ["--warm", "--cwd", f"{self.workdir}/files"]
        if spec.kernel_name:
            args += ["--kernel", spec.kernel_name]
        container = ContainerSpec(self.image, command=list(RUNNER_COMMAND), args=args, labels=labels,
                                  **parts["container"])
        container.update(parts["container_fields"])
        template = TaskTemplate(container, resources=parts["resources"], log_driver=parts["log_driver"],
                                restart_policy=RestartPolicy(condition="none"),
                                placement=Placement(constraints=self.placement()),
                                networks=[NetworkAttachmentConfig(net.id)])
        try:
            client.api.create_service(template, name=name, labels=labels, mode=ServiceMode("replicated-job"))
        except Exception:
            self._remove_sync(spec.job_id)
            raise
        try:
            job.container_id = self._task_container(spec.job_id, job)
            if job.killed_for is not None:
                return
            attrs = client.api.inspect_container(job.container_id)
            problems = self.check_task(spec, attrs, name)
            if problems:
                raise SandboxError("refusing to start: the daemon dropped limits: " + "; ".join(problems))
            if (attrs.get("State") or {}).get("Running"):
                with inputs_tar(spec, *sandbox.uid_gid) as tar:
                    client.api.put_archive(job.container_id, self.workdir, tar)
        except BaseException:
            self._remove_sync(spec.job_id, job.container_id)
            raise

    def placement(self) -> list:
        """The constraints of a job's service: the admin's, else this daemon's own node."""
        return list(self.constraints) or [f"node.id=={self._node_id}"]

    def _check_fits(self, spec) -> None:
        """Raise when no ready, active node has the job's cpu and memory (sync).

        Without reservations (``reserve``) Swarm would place such a task anyway, and its
        limits would promise what no node has.
        """
        nodes = [n for n in self._gateway.api.nodes()
                 if (n.get("Status") or {}).get("State") == "ready"
                 and (n.get("Spec") or {}).get("Availability") == "active"]
        self._nodes = nodes or self._nodes
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
        last = {}
        while time.monotonic() < deadline:
            if job is not None and job.killed_for is not None:
                return None
            services = api.services(filters=self._filters(job_id))
            if not services:
                raise RuntimeError("the job's service is gone")
            tasks = api.tasks(filters={"service": services[0]["ID"]})
            for task in tasks:
                status = task.get("Status") or {}
                last = status
                cid = (status.get("ContainerStatus") or {}).get("ContainerID")
                # (pending with "insufficient resources" may yet be placed: wait, up to start_timeout)
                if not cid and status.get("State") in _ENDED_UNSTARTED:
                    raise RuntimeError(f"Swarm could not start the job's task: {status.get('Err') or status}")
                if cid and status.get("State") not in ("new", "pending", "assigned", "accepted", "preparing"):
                    state = api.inspect_container(cid).get("State") or {}
                    if state.get("Running") or not state.get("FinishedAt", "0001-").startswith("0001-"):
                        self._job_nodes[job_id] = task.get("NodeID")
                        return cid
            time.sleep(0.05)
        raise RuntimeError(f"the job's task did not start within {self.start_timeout:.0f} s: "
                           f"{last.get('Err') or last.get('Message') or last.get('State') or 'no task'}")

    def check_task(self, spec, attrs: dict, network: str) -> list:
        """What the task's container lacks of the sandbox: the docker check, and the replacements."""
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
        nets = set(((attrs.get("NetworkSettings") or {}).get("Networks") or {}))
        if nets != {network}:
            problems.append(f"networks are {sorted(nets)}, wanted only the job's own {network!r}")
        if not (attrs.get("Config") or {}).get("OpenStdin"):
            problems.append("OpenStdin is not set")
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

    async def reattach(self, spec, on_event, on_log) -> Outcome:
        """Follow a job's service found after a restart, as run would."""
        job = self._jobs.setdefault(spec.job_id, _Job(spec.job_id))
        gw = self._gateway
        try:
            try:
                job.container_id = await gw.call(self._task_container, spec.job_id)
            except Exception as e:
                await gw.call(self._remove_sync, spec.job_id)
                return Outcome("failed", "infrastructure", f"the job's task is gone: {e}")
            job.volume = self.names.job(spec.job_id)[1]
            assigned = await gw.call(logged_event, gw.api, job.container_id, "assigned")
            if assigned is None:  # the service died before the job line: inputs again, then the line
                attrs = await gw.call(gw.api.inspect_container, job.container_id)
                problems = self.check_task(spec, attrs, self._service_name(spec.job_id))
                if problems:
                    await gw.call(self._remove_sync, spec.job_id, job.container_id)
                    return Outcome("failed", "infrastructure", "refusing to start: " + "; ".join(problems))
                if (attrs.get("State") or {}).get("Running"):
                    with inputs_tar(spec, *self.sandbox.uid_gid) as tar:
                        await gw.call(gw.api.put_archive, job.container_id, self.workdir, tar)
            job.arrival = Arrival(job_line(spec, self.workdir), (assigned or {}).get("time"))
            return await self._follow(spec, job, on_event, on_log, fresh=False)
        finally:
            self._jobs.pop(spec.job_id, None)
            self._job_nodes.pop(spec.job_id, None)

    async def _follow(self, spec, job: _Job, on_event, on_log, fresh: bool) -> Outcome:
        outcome = await super()._follow(spec, job, on_event, on_log, fresh)
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
        for service in api.services(filters=self._filters(job_id)):
            try:
                api.remove_service(service["ID"])
            except docker.errors.NotFound:
                pass
        containers = {container_id} if container_id else set()
        containers |= {c["Id"] for c in api.containers(all=True, filters=self._filters(job_id))}
        _, vname = self.names.job(job_id)
        for cid in containers:
            gw.remove(cid, vname, self.workdir)
        if not containers:
            gw.remove(f"{vname}-none", vname, self.workdir)  # (no container: the volume alone)
        for net in api.networks(filters=self._filters(job_id)):
            for _ in range(50):  # the network is in use until the task's endpoint is gone
                try:
                    api.remove_network(net["Id"])
                    break
                except docker.errors.NotFound:
                    break
                except docker.errors.APIError as e:
                    if "not found" in str(e):  # (a 500: being deleted already)
                        break
                    time.sleep(0.1)

    # --- control --------------------------------------------------------------------------
    async def _kill_unfollowed(self, job_id: str) -> bool:
        """Kill the task of a job nobody here follows; False: it has no service."""
        gw = self._gateway
        services = await gw.call(gw.api.services, filters=self._filters(job_id))
        if not services:
            return False
        for c in await gw.call(gw.api.containers, filters=self._filters(job_id)):
            await gw.call(gw.kill, c["Id"])
        return True

    async def running(self) -> list:
        """Ids of this instance's jobs that still have a service (running or ended)."""
        gw = self._gateway
        services = await gw.call(gw.api.services, filters=self._filters())
        return sorted({(s["Spec"].get("Labels") or {}).get(LABEL_JOB) for s in services} - {None})


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
