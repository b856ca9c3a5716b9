"""The docker executor: each job in its own hardened, throw-away container.

A job becomes one container of the runner image plus one named volume mounted at
``/work/job``. The job's work directory goes in with ``put_archive`` and its results
come out with ``get_archive`` (:mod:`.transport`; a warm job's small ones travel in its
job line and in its runner's "outputs" event instead, :mod:`.warm`): nothing of the host
is mounted, not even the Docker socket. The container is created with every limit of the sandbox
(:mod:`.sandbox`, README.md's *The sandbox*), and its ``HostConfig`` is read back before
start, because the daemon silently drops limits the kernel cannot enforce: a job runs
with all of its limits or not at all. Its cpu is a request and a limit, as Kubernetes has
them: its cgroup weighs its allocation, so contended cores are shared as the dispatcher gave
them out, and its limit is its allocation, above it (``cpu_burst``) only until its first
cell, so that its runner's and kernel's start-up may use an idle core.

This module is the executor itself: its traits (the operator's configuration), and
``run``/``reattach``/``cancel``, which follow a container from creation to collection.
The rest is handed to it as parts: :mod:`.gateway` (the one way to the daemon, labels,
names), :mod:`.sandbox`, :mod:`.transport`, :mod:`.cgroups` (exact usage),
:mod:`.warm` (the warm pool), :mod:`.meter` (the work quota's meter container, where the
daemon's volumes are not readable here) and :mod:`..streams` (frames, lines, the log cap).

Each job's output is read by its own thread (a job can last hours, so it must not hold
a pool worker) and handed to the event loop with ``call_soon_threadsafe``.

Containers carry the job id, the user and this service instance in labels and outlive
the service, so after a restart ``running()`` finds them and ``reattach()`` follows
each to its end, whether it is still running or ended while nobody watched. A job that
started warm is found by its name, and ``reattach()`` delivers its job line again,
harmlessly (at most once), in case the service died between the rename and the write.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Optional

from traitlets import Bool, Dict, Enum, Float, Integer, List, Unicode, default, validate

from ..._version import __version__
from ...gpus import Gpus
from ..base import (FILES_DIR, PACKAGES_SCRIPT, Executor, JobSpec, Outcome, Timeline, Usage, decide_outcome,
                    maybe_await, parse_event)
from ..streams import MAX_LINE, EventCap, LineSplitter, LogCap
from .builds import BuildFailed, EnvironmentBuilder
from .cgroups import Cgroups
from .gateway import (LABEL_INSTANCE, LABEL_LINE, LABEL_RUNNER_WARM, LABEL_WARM, Gateway, Names, SandboxError,
                      log_response, parse_time, update_limits)
from .meter import Meter, MeterGone
from .sandbox import Sandbox, cpu_shares, nano_cpus, tree_usage
from .transport import extract_outputs, inputs_tar, sent_outputs, write_outputs
from .warm import (LINE_IO, OUTPUTS_ENV, OUTPUTS_EVENT, OUTPUTS_MAX, Arrival, WarmPool, WarmSettings, deliver,
                   inline_inputs, job_line, logged_events)


#: OCI runtimes that change a running container's limits (``docker update``), which a start-up's cpu burst needs
RESIZING_RUNTIMES = ("runc", "io.containerd.runc.v2")


class _Job:
    """What this executor knows about a job it follows."""

    def __init__(self, job_id: str):
        self.job_id = job_id
        self.container_id: Optional[str] = None
        self.killed_for: Optional[str] = None  # "timeout" | "cancelled" | "disk" | "files" | "cpu"
        self.stream = None  # the log/attach stream, closed to stop the reader thread
        self.stop = threading.Event()
        self.cgroup_key = job_id  # name of its per-job cgroup (the pool key when warm)
        self.volume: Optional[str] = None  # its work volume
        self.volume_dir: Optional[str] = None  # that volume's directory here, as its creation's inspect said
        self.arrival = Arrival()  # a warm start's job line and "assigned" event
        self.timeline = Timeline()  # its spec's, once followed
        self.remove_later = False  # its container removed after its outcome is handed over (run's)
        self.gateway: Optional[Gateway] = None  # the daemon its container is on, when not the executor's own
        self.delivered = False  # warm: its job line went in (before that, nothing of the job ran)
        self.shares: Optional[int] = None  # cold: its cpu weight, set once its container started
        self.bursting = False  # its cpu limit is its start-up's, lowered at its first cell
        self.running: Optional[bool] = None  # known running (a warm container its take found so): not inspected again


class DockerExecutor(Executor):
    """Runs each job in a per-job container of the runner image, with hard limits."""

    name = "docker"
    durable = True
    runs_images = True

    # --- where ----------------------------------------------------------------------------
    docker_url = Unicode(
        "",
        help="URL of the Docker daemon (e.g. unix:///var/run/docker.sock). Empty: the "
        "Docker SDK's own default (DOCKER_HOST, else the local socket).",
    ).tag(config=True)

    image = Unicode(
        f"notebook-jobs-runner:{__version__}",
        help="Runner image (built by runner-image/build.sh). It must already exist on the "
        "daemon: the executor never pulls.",
    ).tag(config=True)

    instance = Unicode(
        "",
        help="Name of this service instance, put in a label (and the name) of every container "
        "and volume, so that two services sharing one daemon never list, collect or remove each "
        "other's jobs or warm containers. Empty (the default): the service's own id, a random one "
        "made at its first start and kept in its database.",
    ).tag(config=True)

    @validate("instance")
    def _valid_instance(self, proposal):
        if proposal["value"] and not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}", proposal["value"]):
            raise ValueError(f"instance {proposal['value']!r}: letters, digits, '_', '.', '-' only (it names containers)")
        return proposal["value"]

    runtime = Unicode(
        "",
        help="OCI runtime for job containers, e.g. 'runsc' (gVisor, registered by "
        "scripts/docker-setup.sh). Empty: the daemon's default (runc).",
    ).tag(config=True)

    network = Unicode(
        "none",
        help="Network of job containers. 'none' (the default) gives a job only its own "
        "loopback interface; any other value must be listed in allowed_networks.",
    ).tag(config=True)

    allowed_networks = List(
        Unicode(),
        help="Docker networks an admin allows jobs to use (see network).",
    ).tag(config=True)

    # --- the sandbox ----------------------------------------------------------------------
    user = Unicode(
        "1000:1000",
        help="uid:gid the runner runs as inside the container. Never 0.",
    ).tag(config=True)

    workdir = Unicode(
        "/work/job",
        help="Where the per-job volume (input, parameters, files/, output) is mounted.",
    ).tag(config=True)

    tmpfs_size = Integer(
        256 << 20,
        help="Size in bytes of the tmpfs at /tmp (HOME, Jupyter's runtime files). Its "
        "pages count against the job's memory limit.",
    ).tag(config=True)

    pids_limit = Integer(
        256,
        help="Most processes and threads a job may have at once (stops fork bombs).",
    ).tag(config=True)

    nofile = Integer(1024, help="Open-file limit (RLIMIT_NOFILE) of a job.").tag(config=True)

    fsize = Integer(
        1 << 30,
        help="Largest file a job may write, in bytes (RLIMIT_FSIZE).",
    ).tag(config=True)

    work_quota = Integer(
        2 << 30,
        help="Most bytes a job may keep in its work volume; a job over it is killed. "
        "Measured every poll_interval, as work_quota_meter says. 0: no check.",
    ).tag(config=True)

    work_quota_files = Integer(
        200_000,
        help="Most files, directories and links a job may keep in its work volume; a job over it is "
        "killed. Each takes one of the filesystem's inodes, which work_quota's bytes do not count: "
        "empty files would run the host's volumes out of inodes within any byte quota. Measured with "
        "work_quota (the same walk). 0: no check.",
    ).tag(config=True)

    work_quota_meter = Enum(
        ["auto", "direct", "container", "off"],
        "auto",
        help="How the work volume is measured for work_quota. 'direct': this process walks the "
        "daemon's volume directory (a local daemon, the service as root; where it is not readable, "
        "the quota is not enforced). 'container': a meter container beside each running job (the "
        "runner image, the volume read-only, no network, only DAC_READ_SEARCH), for a service that "
        "has the Docker socket but not the volumes (docker-compose.yml's). 'auto': direct when the "
        "volumes are readable here, else container. 'off': not measured (nor work_quota_files).",
    ).tag(config=True)

    log_max_size = Unicode(
        "10m",
        help="max-size of the json-file log the daemon keeps per container.",
    ).tag(config=True)

    event_limit = Integer(
        100_000,
        help="Most runner events passed on per job; more can only be forged by the job "
        "(the runner sends a few per cell), so the rest are dropped.",
    ).tag(config=True)

    kill_grace = Float(
        30.0,
        help="Seconds to wait for a killed container's output to end before giving up on it.",
    ).tag(config=True)

    gpu_driver = Unicode(
        "nvidia",
        help="Device driver of GPU requests. Which GPUs there are is NVML's to say (read at start; "
        "none without a driver), and which job gets which the dispatcher's (Gpus.jobs_per_gpu).",
    ).tag(config=True)

    extra_labels = Dict(
        help="More labels to put on job containers and volumes.",
    ).tag(config=True)

    # --- measuring and housekeeping -------------------------------------------------------
    cgroup_parent = Unicode(
        "notebook-jobs",
        help="Parent cgroup under which each job gets its own cgroup "
        "(<cgroup_parent>/<job>), whose counters outlive the container and give exact "
        "peak memory and cpu time (cgroupfs driver). Empty: docker's default placement, "
        "usage sampled with docker stats instead.",
    ).tag(config=True)

    cgroup_cpu_shares = Integer(
        None,
        allow_none=True,
        help="cpu weight (cgroup v1 cpu.shares; scaled to cpu.weight under v2) that start() "
        "gives the cgroup_parent group holding every job (each level of its path). The kernel's "
        "default, 1024, makes all jobs together weigh as much as ONE busy process of the host, so "
        "on a host with other busy processes the jobs share one process's part of the cpu, "
        "whatever the dispatcher gave them. None (the default): 1024 x the daemon's cores, as much "
        "as one busy process per core, as Kubernetes weighs its pods' group by the node's cores "
        "(where the cgroup tree is writable here). 0: leave it as it is.",
    ).tag(config=True)

    cpu_burst = Float(
        2.0,
        help="Cores a job's start-up (its runner's and kernel's, until its first cell) may use when "
        "they are idle, above its allocation: its cpu limit is max(allocation, cpu_burst) until then "
        "(at most the daemon's cores), and its allocation from its first cell on. The default lets a "
        "cold job's runner and kernel, which start side by side, have a core each. Under contention each job's cgroup weighs its "
        "allocation (1024 cpu.shares a core), so the jobs split the cores as the dispatcher gave "
        "them out, as a Kubernetes pod's request and limit do. Needs the cgroup tree writable here "
        "(the weights) and a runtime that lowers a running container's limit (runc; not gVisor's "
        "runsc); elsewhere, or 0: a job's limit is its allocation throughout.",
    ).tag(config=True)

    @validate("cpu_burst")
    def _valid_cpu_burst(self, proposal):
        if proposal["value"] < 0:
            raise ValueError("DockerExecutor.cpu_burst must be >= 0")
        return proposal["value"]

    cgroup_root = Unicode(
        "/sys/fs/cgroup",
        help="Where the host's cgroup tree is mounted (read to measure usage).",
    ).tag(config=True)

    poll_interval = Float(
        1.0,
        help="Seconds between checks of a running job's usage and work-volume size.",
    ).tag(config=True)

    keep_containers = Bool(
        False,
        help="Keep each job's container and volume after collecting it (for debugging).",
    ).tag(config=True)

    threads = Integer(
        16,
        help="Threads for short Docker API calls (each running job also has one reader thread).",
    ).tag(config=True)

    # --- warm pool ------------------------------------------------------------------------
    warm_pool = Integer(
        0,
        help="How many pre-started runner containers to keep ready (papermill imported, "
        "kernel started). A job takes one, resized to its allocation, instead of paying "
        "that start-up; the pool refills in the background. 0: every job starts cold. "
        "Idle warm containers hold about warm_memory at most (typically ~100 MB each) "
        "outside the dispatcher's capacity accounting.",
    ).tag(config=True)

    warm_pool_max = Integer(
        0,
        help="The most warm containers the pool grows to when the demand forecast expects more jobs in "
        "the next warm_horizon seconds than warm_pool (which stays the least it keeps); idle ones past "
        "the forecast's number are removed. 0: the pool stays at warm_pool.",
    ).tag(config=True)

    warm_horizon = Float(
        60.0,
        help="Seconds ahead the warm pool is sized for: the jobs the demand forecast expects to arrive "
        "in that time, between warm_pool and warm_pool_max (refilled while jobs run).",
    ).tag(config=True)

    warm_memory = Integer(
        512 << 20,
        help="Memory limit (bytes) of an idle warm container. A job's allocation below "
        "what the warm container already uses cannot be applied: such a job starts cold.",
    ).tag(config=True)

    warm_cpu = Float(1.0, help="cpu limit of an idle warm container (while it starts up).").tag(config=True)

    warm_cpu_shares = Integer(
        2,
        help="cpu weight (cgroup v1 cpu.shares; scaled to cpu.weight under v2) of an idle "
        "warm container's cgroup, against the jobs' 1024: the pool refills with cpu the "
        "running jobs leave over. Set to the job's weight when it takes one. Needs the cgroup "
        "tree writable here (as for usage); 0: leave docker's default.",
    ).tag(config=True)

    warm_kernel = Unicode(
        "python3",
        help="Kernel a warm container starts. A job whose notebook asks for another "
        "kernel still runs in it, but papermill starts that kernel itself.",
    ).tag(config=True)

    @validate("warm_pool")
    def _valid_warm_pool(self, proposal):
        if proposal["value"] < 0:
            raise ValueError("DockerExecutor.warm_pool must be >= 0")
        return proposal["value"]

    @validate("user")
    def _valid_user(self, proposal):
        uid = proposal["value"].split(":")[0]
        if uid in ("", "0", "root"):
            raise ValueError("DockerExecutor.user must not be root")
        return proposal["value"]

    @default("extra_labels")
    def _default_labels(self):
        return {}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._gateway = Gateway(self.docker_url, self.threads, self.log)
        self._jobs: dict = {}
        self._stopping = False
        self._removals: dict = {}  # job id -> the removal of its ended container, still under way
        #: The warm pool (:mod:`.warm`), made by ``start()`` when the traits are final.
        self.pool: Optional[WarmPool] = None
        #: The host's GPUs, read by ``start()``.
        self.gpus = Gpus(parent=self, log=self.log)
        #: The derived images of jobs that bring their own requirements (:mod:`.builds`).
        self.builder = EnvironmentBuilder(self._gateway, lambda: self.sandbox,
                                          lambda: f"notebook-jobs-build-{self.instance}-",
                                          parent=self, log=self.log)
        self._packages: dict = {}  # image id -> the packages it holds
        #: Cores a job's start-up may use (cpu_burst), where start() found the jobs' weights settable.
        self.burst = 0.0
        #: How the work quota is measured: "direct", "container" or None (not); start() decides "auto".
        self.metering: Optional[str] = {"off": None, "container": "container"}.get(self.work_quota_meter, "direct")

    # --- the parts, from the traits --------------------------------------------------------
    @property
    def names(self) -> Names:
        """Names and labels of this instance's containers, volumes and cgroups."""
        return Names(self.instance, self.extra_labels, self.cgroup_parent)

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox every job container gets (warm ones too)."""
        return Sandbox(user=self.user, network=self.network, runtime=self.runtime, workdir=self.workdir,
                       tmpfs_size=self.tmpfs_size, pids_limit=self.pids_limit, nofile=self.nofile,
                       fsize=self.fsize, log_max_size=self.log_max_size, gpu_driver=self.gpu_driver,
                       cpu_burst=self.burst)

    @property
    def cgroups(self) -> Cgroups:
        """This instance's per-job cgroups."""
        return Cgroups(self.cgroup_root, self.names, self.log)

    # --- lifecycle ------------------------------------------------------------------------
    def _check_network(self) -> None:
        """The one rule for the jobs' network, decided when the backend starts (it cannot change
        after): never the host's or another container's namespace; ``none`` or a network the
        admin listed in ``allowed_networks``."""
        net = self.network
        if net == "host" or net.startswith("container:"):
            raise RuntimeError(f"docker executor: network {net!r} would share a namespace with the "
                               "host or another container")
        if net != "none" and net not in self.allowed_networks:
            raise RuntimeError(f"docker executor: network {net!r} is not in allowed_networks")

    async def start(self) -> None:
        """Check that the daemon answers and the runner image is there."""
        if not self.instance:
            raise RuntimeError("docker executor: DockerExecutor.instance is empty (the service sets it to its id)")
        gw = self._gateway
        image, info = await gw.preflight(self.image, self.runtime)
        # Without the jobs' weights a start-up's burst would take a contended core's part from others, and
        # a runtime that cannot lower a running container's limit (gVisor's runsc) would keep it; a limit
        # above the daemon's cores is refused.
        resizable = (self.runtime or info.get("DefaultRuntime") or "runc") in RESIZING_RUNTIMES
        weighable = await gw.call(self.cgroups.weighable)
        bursts = self.cpu_burst and resizable and weighable
        self.burst = min(self.cpu_burst, float(info.get("NCPU") or self.cpu_burst)) if bursts else 0.0
        if self.cpu_burst and not self.burst:
            self.log.info("docker executor: no cpu_burst (%s): each job's cpu limit is its allocation",
                          "the cgroup tree is not writable here" if resizable else
                          f"runtime {self.runtime or info.get('DefaultRuntime')!r} cannot lower a running limit")
        settings = WarmSettings(size=self.warm_pool, image=self.image, workdir=self.workdir,
                                kernel=self.warm_kernel, cpu=self.warm_cpu, memory=self.warm_memory,
                                cpu_shares=self.warm_cpu_shares, most=self.warm_pool_max)
        pool = self.pool = WarmPool(settings, gw, self.names, self.cgroups, self.sandbox, log=self.log)
        pool.capable = (image.labels or {}).get(LABEL_RUNNER_WARM) == "1"
        if (self.warm_pool or self.warm_pool_max) and not pool.capable:
            self.log.warning("docker executor: runner image %s has no warm mode (label %s); every job "
                             "starts cold. Rebuild it with `bash runner-image/build.sh`.",
                             self.image, LABEL_RUNNER_WARM)
        self._check_network()
        self.gpus.start()
        self._stopping = False
        await gw.call(self.cgroups.sweep_gone, gw.api)
        if self.cgroup_cpu_shares is None:
            if weighable:
                await gw.call(self.cgroups.set_group_shares, 1024 * int(info.get("NCPU") or 1))
        elif self.cgroup_cpu_shares and self.cgroup_parent:
            await gw.call(self.cgroups.set_group_shares, self.cgroup_cpu_shares)
        # Idle warm containers of a service that died: their start-up is not worth the
        # doubt about what they saw; the pool is refilled with fresh ones.
        await gw.call(pool.drain)
        pool.ensure_refill()
        await gw.call(self.builder.sweep)  # (builds a service that died left half-done)
        volumes = os.path.join(info.get("DockerRootDir") or "/var/lib/docker", "volumes")
        readable = os.access(volumes, os.R_OK | os.X_OK)
        if self.work_quota_meter == "auto":
            self.metering = "direct" if readable else "container"
        if self.quotas and self.metering == "direct" and not readable:
            self.log.warning("docker executor: the daemon's volumes are not readable here and work_quota_meter "
                             "is 'direct': work_quota and work_quota_files are not enforced (fsize still is)")
        elif self.quotas and self.metering == "container":
            self.log.info("docker executor: the work quotas are measured by a meter container beside each job")

    @property
    def quotas(self) -> bool:
        """Whether a job's work volume is measured at all (its bytes, its entries)."""
        return bool(self.work_quota or self.work_quota_files)

    async def stop(self) -> None:
        """Stop following jobs; their containers keep running and can be reattached.

        A pending ``run``/``reattach`` then raises ``CancelledError``, as it would had its
        task been cancelled: its job did not end, the service just stopped watching it.
        """
        self._stopping = True
        if self.pool is not None:
            await self.pool.stop_refill()
            if self._gateway.open:
                try:
                    await self._gateway.call(self.pool.drain)
                except Exception as e:
                    self.log.warning("docker executor: could not remove idle warm containers: %s", e)
        for job in list(self._jobs.values()):
            job.stop.set()
            if job.stream is not None:
                try:
                    job.stream.close()
                except Exception:
                    pass
        if self._removals:
            await asyncio.wait(self._removals.values(), timeout=30)
        self._gateway.close()

    def expect(self, jobs_per_hour: Optional[float]) -> None:
        """Size the warm pool for the jobs the demand forecast expects in the next ``warm_horizon``."""
        if self.pool is not None:
            self.pool.expect(None if jobs_per_hour is None else jobs_per_hour * self.warm_horizon / 3600.0)

    def health(self) -> dict:
        info = super().health()
        info["instance"] = self.instance  # the label that tells this deployment's containers apart
        return info

    def gpu_inventory(self) -> Gpus:
        """This host's GPUs, handed out by device id."""
        return self.gpus

    # --- creating a container -------------------------------------------------------------
    def _create(self, spec: JobSpec):
        """Create volume and container, check the sandbox, get the inputs in (sync): the container, and
        its job line when its runner reads one.

        A job of the runner image whose inputs fit in a line (:func:`.warm.inline_inputs`) has its runner
        started as a warm one is, and its line delivered as it starts (LABEL_LINE): its inputs go in the
        line and its outputs come back as an event, so it needs neither archive call (each ~0.1 s of the
        daemon's and the kernel's cpu, measured here). Otherwise its inputs are copied in with
        put_archive, and its environment asks its runner for its outputs as an event (OUTPUTS_ENV). The work
        volume is made by the container's creation (its mount carries the volume's labels): one call less."""
        import docker

        client, sandbox = self._gateway.client, self.sandbox
        cname, vname = self.names.job(spec.job_id)
        labels = self.names.job_labels(spec.job_id, spec.user)
        kwargs = sandbox.create_kwargs(spec, vname, self.names.job_cgroup(spec.job_id), volume_labels=labels)
        inputs = (inline_inputs(spec) if self.pool is not None and self.pool.capable
                  and spec.image in (None, self.image) else None)
        if inputs is not None:
            line = job_line(spec, self.workdir, inputs, outputs=True)
            command = ["--warm", "--cwd", str(Path(self.workdir) / FILES_DIR)]
            # (stdin_open without detach gives StdinOnce: the line is delivered at most once)
            kwargs.update(stdin_open=True, detach=False, labels=dict(labels, **{LABEL_LINE: "1"}))
        else:
            line, command = None, spec.runner_args(self.workdir)
            kwargs.update(detach=True, labels=labels)
            kwargs["environment"] = dict(kwargs.get("environment") or {}, **{OUTPUTS_ENV: str(OUTPUTS_MAX)})
        try:
            container = client.containers.create(spec.image or self.image, command=command, name=cname, **kwargs)
        except docker.errors.APIError:
            self._remove_sync(spec.job_id)  # (its volume too, should the daemon have made it)
            raise
        problems = sandbox.check(spec, container.attrs)
        if line is not None and not (container.attrs.get("Config") or {}).get("StdinOnce"):
            problems.append("StdinOnce is not set")
        if problems:
            self._remove_sync(spec.job_id)
            raise SandboxError("refusing to start: the daemon dropped limits: " + "; ".join(problems))
        if line is None:
            with inputs_tar(spec, *sandbox.uid_gid) as tar:
                container.put_archive(self.workdir, tar)
        return container, line

    # --- running --------------------------------------------------------------------------
    async def run(self, spec: JobSpec, on_event, on_log) -> Outcome:
        """Create the job's container, start it, follow it to its end and collect it."""
        job = self._jobs.setdefault(spec.job_id, _Job(spec.job_id))
        job.remove_later = True
        gw, pool = self._gateway, self.pool
        try:
            if spec.requirements:
                try:
                    spec.image = await self.builder.image_for(
                        spec, spec.image or self.image, on_log,
                        lambda build: asyncio.ensure_future(maybe_await(on_event({"event": "build", "build": build}))))
                except BuildFailed as e:
                    await maybe_await(on_event({"event": "build", "build": e.record}))
                    return Outcome("failed", "environment_error", e.message)
                if job.killed_for == "cancelled":  # cancelled while its environment was built
                    return Outcome("cancelled", "cancelled", "cancelled by request")
            warm = None
            # (the pool holds containers of the runner image only: a job in another image starts cold)
            if (pool is not None and not self._stopping and spec.image in (None, self.image)
                    and pool.eligible(spec)):
                try:
                    warm = await gw.call(pool.take, spec, self.names.job(spec.job_id)[0])
                except Exception as e:  # the pool is an optimisation: fall back to cold
                    self.log.warning("job %s: warm pool failed, starting cold: %s", spec.job_id, e)
                pool.ensure_refill()
            if warm is not None:
                job.container_id, job.cgroup_key, job.volume = warm.container_id, warm.key, warm.volume
                job.running = True
                job.arrival.line = job_line(spec, self.workdir, warm.inputs, warm.line_io)
                spec.timeline.mark("warm_taken")
            else:
                try:
                    container, line = await gw.call(self._create, spec)
                except SandboxError as e:
                    self.log.error("job %s: %s", spec.job_id, e)
                    return Outcome("failed", "infrastructure", str(e))
                except Exception as e:
                    self.log.exception("job %s: cannot create its container", spec.job_id)
                    return Outcome("failed", "infrastructure", f"cannot create the job's container: {e}")
                job.container_id, job.shares = container.id, cpu_shares(spec.cpu)
                job.volume_dir = self._gateway.mounted_dir(container.attrs, self.workdir)
                if line is not None:
                    job.arrival = Arrival(line, cold=True)
                spec.timeline.mark("created")
            job.bursting = self.sandbox.start_cpu(spec) > spec.cpu
            if job.killed_for == "cancelled":  # cancelled while we were creating it
                await gw.call(self._remove_sync, spec.job_id, job.container_id)
                return Outcome("cancelled", "cancelled", "cancelled by request")
            return await self._follow(spec, job, on_event, on_log, fresh=True)
        finally:
            self._jobs.pop(spec.job_id, None)

    async def packages(self, image=None) -> list:
        """The Python packages ``image`` holds (``pip list``'s fields), read once per image id in a throwaway
        container of the jobs' sandbox: no network, read-only, unprivileged, limits checked."""
        gw = self._gateway
        found = await gw.call(gw.client.images.get, image or self.image)
        if found.id not in self._packages:
            self._packages[found.id] = json.loads(await gw.call(self._read_packages, found))
        return self._packages[found.id]

    def _read_packages(self, image) -> str:
        python = ((image.attrs.get("Config") or {}).get("Entrypoint") or ["python3"])[0]
        limits = JobSpec(job_id="packages", workdir=Path(self.workdir), cpu=1.0, memory=256 << 20)
        container = self._gateway.client.containers.create(
            image.id, entrypoint=[python, "-c", PACKAGES_SCRIPT], detach=True,
            labels=dict(self.extra_labels, **{LABEL_INSTANCE: self.instance}),
            **self.sandbox.create_kwargs(limits, None))
        try:
            problems = self.sandbox.check(limits, container.attrs)
            if problems:
                raise SandboxError("refusing to read an image's packages: the daemon dropped limits: "
                                   + "; ".join(problems))
            container.start()
            code = container.wait(timeout=60).get("StatusCode")
            if code != 0:
                raise RuntimeError(f"listing the packages of image {image.id} exited with code {code}")
            return container.logs(stdout=True, stderr=False).decode("utf-8", "replace")
        finally:
            container.remove(force=True)

    async def reattach(self, spec: JobSpec, on_event, on_log) -> Outcome:
        """Follow a job's existing container (running or exited) to its end, as run would."""
        import docker

        job = self._jobs.setdefault(spec.job_id, _Job(spec.job_id))
        gw = self._gateway
        try:
            cname, _ = self.names.job(spec.job_id)
            try:
                container = await gw.call(gw.client.containers.get, cname)
            except docker.errors.NotFound:
                return Outcome("failed", "infrastructure", "the job's container is gone")
            job.container_id = container.id
            job.bursting = (container.attrs.get("HostConfig") or {}).get("NanoCpus", 0) > nano_cpus(spec.cpu)
            job.volume = next((m.get("Name") for m in container.attrs.get("Mounts") or []
                               if m.get("Type") == "volume" and m.get("Destination") == self.workdir), None)
            labels = container.labels or {}
            key, cold = labels.get(LABEL_WARM), labels.get(LABEL_LINE) == "1"
            if key or cold:  # its runner reads a line: maybe still waiting for it (delivered again, at most once)
                job.cgroup_key = key or job.cgroup_key
                logged = await gw.call(logged_events, gw.api, container.id, ("ready", "assigned"))
                assigned, line_io = logged["assigned"], bool((logged["ready"] or {}).get(LINE_IO)) or cold
                # Its inputs in the line wherever its runner reads them there (the take may have put them
                # there; if it used put_archive, they are written again, the same), unless it has its line.
                inputs = await gw.call(inline_inputs, spec) if assigned is None and line_io else None
                job.arrival = Arrival(job_line(spec, self.workdir, inputs, line_io),
                                      (assigned or {}).get("time") or time.time(), cold=cold)
            return await self._follow(spec, job, on_event, on_log, fresh=False)
        finally:
            self._jobs.pop(spec.job_id, None)

    def _gw(self, job: Optional[_Job]) -> Gateway:
        """The daemon a job's container is on: this executor's own, or (Swarm) its node's."""
        return (job.gateway if job is not None else None) or self._gateway

    def _open_stream(self, job: _Job, fresh: bool):
        """(stdout, stderr) chunks of the job's container, from its start (sync, the reader's)."""
        gw = self._gw(job)
        api = gw.api
        if fresh and (job.arrival.line is None or job.arrival.cold):
            # Cold: attached before it starts, so nothing is written before we listen.
            stream = api.attach(job.container_id, stdout=True, stderr=True, stream=True,
                                logs=False, demux=True)
            job.stream = stream
            if job.killed_for is None:
                api.start(job.container_id)
                job.timeline.mark("container_started")
                if job.shares:  # (its cgroup is there once it started)
                    self.cgroups.set_shares(job.cgroup_key, job.shares)
                if job.arrival.line is not None:  # (its runner reads it once it has started up)
                    self._deliver(job)
            else:
                stream.close()
            return stream
        # Already running (warm), or found again after a restart: the daemon's log from
        # the start, then what follows until the container ends. (attach's logs replay is
        # not used: docker-py reads the hijacked socket past what http.client buffered
        # with the headers, which can lose the first bytes.)
        running = job.running
        if running is None:
            running = api.inspect_container(job.container_id)["State"].get("Running")
        log = job.stream = log_response(api, job.container_id, follow=bool(running))
        if job.arrival.line is not None and running:
            if fresh and job.killed_for is not None:
                gw.kill(job.container_id)
            else:
                # Its line, if it has not had it: at most once (StdinOnce closed the
                # stdin a first delivery used, so a second one goes nowhere).
                self._deliver(job)
        return log.frames()

    def _deliver(self, job: _Job) -> None:
        """Write the job's line to its runner's stdin (sync); a container whose line did not go in is
        killed, as it would wait for it forever."""
        gw = self._gw(job)
        try:
            deliver(gw.api, job.container_id, job.arrival.line)
            job.delivered = True
            job.timeline.mark("line_delivered")
        except Exception:
            gw.kill(job.container_id)
            raise

    def _reader(self, job: _Job, fresh: bool, loop, queue: asyncio.Queue):
        """Thread: stream the container's stdout/stderr as lines onto the loop's queue."""

        def put(item):
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody listens any more
                job.stop.set()

        # Capped here, in the reader, so that a flood never reaches the event loop.
        logs, events = LogCap(self.log_limit), EventCap(self.event_limit)
        lines = {0: LineSplitter(MAX_LINE), 1: LineSplitter(MAX_LINE)}

        def emit(which, line: bytes):
            event = parse_event(line) if which == 0 else None
            if job.arrival.holds(line, event, stderr=which == 1):
                return
            if event is not None and event.get("event") == OUTPUTS_EVENT:  # (the job's files: not passed on)
                put(("outputs", event))
                return
            if event is not None:
                if events.admit(event):
                    put(("event", event))
                return
            # stderr, or stray stdout: a log line
            text = logs.admit(line.decode("utf-8", "replace"))
            if text is not None:
                put(("log", text))

        try:
            for out, err in self._open_stream(job, fresh):
                for which, data in ((0, out), (1, err)):
                    if data:
                        for line in lines[which].feed(data):
                            emit(which, line)
            for which in (0, 1):
                for line in lines[which].flush():
                    emit(which, line)
            for line in job.arrival.unclaimed():
                put(("log", line.decode("utf-8", "replace")))
            put(("end", None))
        except Exception as e:  # the loop decides what an unreadable stream means
            put(("end", e))

    def _sampler(self, job: _Job, spec: JobSpec, fresh: bool, volume: str, volume_dir: Optional[str], usage: dict):
        """Thread: watch the work volume's size and sample usage while the job runs."""
        meter = None
        try:
            while not job.stop.wait(self.poll_interval):
                if self.quotas and self.metering == "direct" and volume_dir:
                    self._check_quota(job, spec, tree_usage(volume_dir, self.work_quota, self.work_quota_files))
                elif self.quotas and self.metering == "container" and job.killed_for is None:
                    meter = self._metered(job, spec, fresh, volume, meter)
                # The job's cgroup exists once it has started; without one, sample docker stats.
                if job.container_id and self.cgroups.dir("memory", job.cgroup_key) is None:
                    for key, value in self._gw(job).sampled_usage(job.container_id).items():
                        usage[key] = max(usage.get(key, 0), value)
        finally:
            if meter is not None:
                meter.remove()

    def _metered(self, job: _Job, spec: JobSpec, fresh: bool, volume: str, meter: Optional[Meter]):
        """One tick of the meter container (:mod:`.meter`): started once the job's own container runs, so
        never on its path to its first cell; read; started again should it end before its job. The meter."""
        if meter is None:
            if fresh and not any(step in ("container_started", "line_delivered") for step, _ in job.timeline.marks):
                return None
            meter = Meter(self._gw(job), self.names, self.image, spec.job_id, spec.user, volume, self.log)
            try:  # (it outlives no job: its deadline, and the grace a killed one gets)
                meter.start(self.poll_interval, (self.work_quota, self.work_quota_files),
                            spec.timeout + self.kill_grace)
            except Exception as e:
                self.log.warning("job %s: cannot start its work-volume meter (tried again): %s", spec.job_id, e)
                meter.remove()
                return None
            return meter
        try:
            usage = meter.usage()
        except MeterGone as e:
            self.log.warning("job %s: %s; starting another", spec.job_id, e)
            return None
        if usage is not None:
            self._check_quota(job, spec, usage)
        return meter

    def _check_quota(self, job: _Job, spec: JobSpec, usage: tuple) -> None:
        """Kill a job whose work volume holds more than work_quota bytes or work_quota_files
        entries (``usage``: the walk's ``(bytes, entries)``): its outcome says which."""
        size, entries = usage
        if job.killed_for is not None:
            return
        if self.work_quota and size > self.work_quota:
            job.killed_for = "disk"
            self.log.warning("job %s: work volume over its quota (%d bytes); killing", spec.job_id, size)
        elif self.work_quota_files and entries > self.work_quota_files:
            job.killed_for = "files"
            self.log.warning("job %s: work volume over its quota (%d entries); killing", spec.job_id, entries)
        else:
            return
        self._gw(job).kill(job.container_id)

    async def _follow(self, spec: JobSpec, job: _Job, on_event, on_log, fresh: bool) -> Outcome:
        """Stream a container's output to the callbacks, enforce its deadline, collect it."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        reader = threading.Thread(target=self._reader, args=(job, fresh, loop, queue),
                                  name=f"docker-job-{spec.job_id}", daemon=True)
        usage: dict = {}
        gw = self._gw(job)
        job.timeline = spec.timeline
        vname = job.volume or self.names.job(spec.job_id)[1]
        volume_dir = job.volume_dir or await gw.call(gw.volume_dir, vname)
        sampler = threading.Thread(target=self._sampler, args=(job, spec, fresh, vname, volume_dir, usage),
                                   name=f"docker-usage-{spec.job_id}", daemon=True)
        deadline = loop.time() + spec.timeout
        if not fresh:
            if job.arrival.line is not None and not job.arrival.cold:  # warm: the job started when its line was read
                started = job.arrival.started_at
            else:
                attrs = await gw.call(gw.api.inspect_container, job.container_id)
                started = parse_time(attrs["State"].get("StartedAt", ""))
            if started:
                deadline -= max(0.0, time.time() - started)
        reader.start()
        sampler.start()
        final_event = None
        stderr_tail: list = []
        error = None
        killed_at = None
        outputs = None  # the runner's "outputs" event, when it sent them so
        try:
            while True:
                timeout = deadline - loop.time()
                if timeout <= 0 and job.killed_for is None:
                    job.killed_for = "timeout"
                    await gw.call(gw.kill, job.container_id)
                if job.killed_for is None:
                    wait = max(timeout, 0.05)
                else:  # killed: the stream ends soon, or the daemon lost the container
                    killed_at = killed_at or loop.time()
                    wait = max(killed_at + self.kill_grace - loop.time(), 0.0)
                try:
                    kind, item = await asyncio.wait_for(queue.get(), timeout=wait)
                except asyncio.TimeoutError:
                    if job.killed_for is not None and loop.time() >= killed_at + self.kill_grace:
                        error = RuntimeError(f"output did not end {self.kill_grace:.0f} s after the kill")
                        break
                    continue
                if kind == "end":
                    error = item
                    break
                if kind == "event":
                    if job.bursting and item.get("event") == "cell_started":
                        await self._settle_cpu(job, spec)
                    if item.get("event") == "finished":
                        final_event = item
                    await maybe_await(on_event(item))
                elif kind == "outputs":
                    outputs = outputs or item
                else:
                    stderr_tail.append(item)
                    del stderr_tail[:-20]
                    await maybe_await(on_log(item))
        except asyncio.CancelledError:
            # The service is going away (or gave up on this job): the container keeps
            # running and a restarted service reattaches to it (and collects it).
            job.stop.set()
            if job.stream is not None:
                job.stream.close()
            raise
        finally:
            job.stop.set()
        spec.timeline.mark("stream_ended")
        if self._stopping:
            # stop() closed the stream: the job goes on, a restarted service reattaches.
            raise asyncio.CancelledError(f"executor stopped while following job {spec.job_id}")
        if error is not None:
            self.log.warning("job %s: lost the output stream: %s", spec.job_id, error)
            stderr_tail.append(f"docker: {error}")
        exit_code, attrs = await gw.call(gw.wait, job.container_id)
        state = (attrs or {}).get("State") or {}
        started, finished = parse_time(state.get("StartedAt", "")), parse_time(state.get("FinishedAt", ""))
        used = Usage(
            peak_memory=usage.get("peak_memory"),
            cpu_seconds=usage.get("cpu_seconds"),
            wall_seconds=round(finished - started, 3) if started and finished and finished >= started else None,
        )
        measured = await gw.call(self.cgroups.usage, job.cgroup_key)
        if measured.get("peak_memory") is not None:
            used.peak_memory = measured["peak_memory"]
        if measured.get("cpu_seconds") is not None:
            used.cpu_seconds = round(measured["cpu_seconds"], 3)
        job.arrival.exclude_startup(used, finished)
        spec.timeline.mark("exited")
        await self._collect(spec, job, outputs)
        spec.timeline.mark("collected")
        await gw.call(sampler.join)  # (its meter gone, and none started after: the volume can go)
        if not self.keep_containers:
            removal = gw.call(self._remove_sync, spec.job_id, job.container_id)
            if job.remove_later:
                self._remove_after_outcome(spec.job_id, removal)
            else:
                await removal
        if job.killed_for == "disk":
            return Outcome("failed", "infrastructure",
                           f"job wrote more than its work-volume quota of {self.work_quota} bytes and was killed",
                           exit_code=exit_code, used=used)
        if job.killed_for == "files":
            return Outcome("failed", "infrastructure",
                           f"job kept more than its work-volume quota of {self.work_quota_files} files and "
                           "directories and was killed", exit_code=exit_code, used=used)
        if job.killed_for == "cpu":
            return Outcome("failed", "infrastructure", "the daemon did not lower the job's cpu limit to its "
                           "allocation at its first cell; it was killed", exit_code=exit_code, used=used)
        if error is not None and final_event is None and exit_code is None:
            return Outcome("failed", "infrastructure", f"lost the job's container: {error}", used=used)
        outcome = decide_outcome(
            final_event, exit_code,
            killed_for=job.killed_for,
            oom_killed=bool(state.get("OOMKilled")),
            used=used,
            stderr_tail="\n".join(stderr_tail),
        )
        outcome.finished = finished  # the container's own end, even when it ended while nobody watched
        return outcome

    async def _collect(self, spec: JobSpec, job: _Job, outputs: Optional[dict]) -> None:
        """Copy the job's outputs into its work directory, once, after its container ended: from the
        runner's "outputs" event when it sent one (a warm job's line asks for it, a cold job's environment
        too: small outputs, all plain files), else -- or when that event does not read as the job's outputs -- with get_archive,
        whose daemon-side cost (~50 ms however small) the event saves. The event is in the container's
        log: a service that restarts before collecting reads it there, as it reads the others."""
        gw = self._gw(job)
        files = None
        if outputs is not None:
            try:
                files = sent_outputs(outputs)
            except ValueError as e:
                self.log.warning("job %s: its runner's outputs event does not read, copying them out: %s",
                                 spec.job_id, e)
        if files is not None:
            try:
                await gw.call(write_outputs, files, spec.workdir)
            except OSError as e:
                self.log.warning("job %s: could not collect outputs: %s", spec.job_id, e)
            return
        try:
            stream, _ = await gw.call(gw.api.get_archive, job.container_id, self.workdir)
            await gw.call(extract_outputs, stream, self.workdir, spec.workdir)
        except Exception as e:
            self.log.warning("job %s: could not collect outputs: %s", spec.job_id, e)

    async def _settle_cpu(self, job: _Job, spec: JobSpec) -> None:
        """Lower a job's cpu limit from its start-up's to its allocation as its first cell starts: from here
        on its notebook runs within the cores it was given, as a job without a burst does, or not at all."""
        import docker

        job.bursting = False
        gw = self._gw(job)
        for retry in (False, True):
            try:
                await gw.call(update_limits, gw.api, job.container_id, None, nano_cpus(spec.cpu))
                return
            except Exception as e:
                error = e
            # A short job may have ended before its first cell's event was read: nothing of it runs on. (Its
            # runtime knows it is ending a moment before the daemon does: asked again, the daemon knows too.)
            try:
                if not (await gw.call(gw.api.inspect_container, job.container_id))["State"].get("Running"):
                    return
            except docker.errors.NotFound:
                return
            if not retry:
                await asyncio.sleep(0.5)
        self.log.error("job %s: cannot lower its cpu limit to its allocation; killing it: %s", spec.job_id, error)
        if job.killed_for is None:
            job.killed_for = "cpu"
            await gw.call(gw.kill, job.container_id)

    def _remove_after_outcome(self, job_id: str, removal) -> None:
        """Let a container's removal finish after its job's outcome is handed over: nothing is read from
        it any more, and the job's ending need not wait for the daemon (``stop()`` waits; a service that
        dies first removes it at its next start, as a container of an ended job)."""

        async def remove():
            try:
                await removal
            except Exception as e:
                self.log.warning("job %s: removing its container failed: %s", job_id, e)

        task = self._removals[job_id] = asyncio.ensure_future(remove())
        task.add_done_callback(lambda _: self._removals.pop(job_id, None))

    # --- sync helpers (run in threads) ---------------------------------------------------
    def _remove_sync(self, job_id: str, container_id: Optional[str] = None):
        """Remove a job's container (by id, else by its name), its volume and cgroup."""
        cname, vname = self.names.job(job_id)
        # A container that started warm has its pool key's volume and cgroup.
        key = self._gateway.remove(container_id or cname, vname, self.workdir)
        self.cgroups.cleanup(key or job_id)

    # --- control --------------------------------------------------------------------------
    async def cancel(self, job_id: str) -> bool:
        """Kill a job's container; its run/reattach returns a cancelled outcome."""
        job = self._jobs.get(job_id)
        if job is not None:
            job.killed_for = job.killed_for or "cancelled"
            if job.container_id:
                gw = self._gw(job)
                await gw.call(gw.kill, job.container_id)
            return True
        return await self._kill_unfollowed(job_id)

    async def _kill_unfollowed(self, job_id: str) -> bool:
        """Kill a job nobody here follows (another run of the service started it); False: none."""
        import docker

        gw = self._gateway
        cname, _ = self.names.job(job_id)
        try:
            await gw.call(gw.api.kill, cname)
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError:
            pass  # exists but is not running
        return True

    async def running(self) -> list:
        """Ids of this instance's jobs that still have a container (running or exited)."""
        gw = self._gateway
        containers = await gw.call(gw.api.containers, all=True,
                                   filters={"label": [f"{LABEL_INSTANCE}={self.instance}"]})
        # (a container being removed was collected: its job is no longer held)
        return sorted({job for job in map(self.names.job_of, containers) if job is not None} - set(self._removals))

    async def remove(self, job_id: str) -> None:
        """Remove a job's container and volume (orphans, or kept ones)."""
        await self._gateway.call(self._remove_sync, job_id)


__all__ = ["DockerExecutor"]
