"""The docker executor: each job in its own hardened, throw-away container.

A job becomes one container of the runner image plus one named volume mounted at
``/work/job``. The job's work directory goes in with ``put_archive`` and its results
come out with ``get_archive`` (:mod:`.transport`): nothing of the host is mounted, not
even the Docker socket. The container is created with every limit of the sandbox
(:mod:`.sandbox`, README.md's *The sandbox*), and its ``HostConfig`` is read back before
start, because the daemon silently drops limits the kernel cannot enforce: a job runs
with all of its limits or not at all.

This module is the executor itself: its traits (the operator's configuration), and
``run``/``reattach``/``cancel``, which follow a container from creation to collection.
The rest is handed to it as parts: :mod:`.gateway` (the one way to the daemon, labels,
names), :mod:`.sandbox`, :mod:`.transport`, :mod:`.cgroups` (exact usage),
:mod:`.warm` (the warm pool) and :mod:`..streams` (frames, lines, the log cap).

Each job's output is read by its own thread (a job can last hours, so it must not hold
a pool worker) and handed to the event loop with ``call_soon_threadsafe``.

Containers carry the job id, the user and this service instance in labels and outlive
the service, so after a restart ``running()`` finds them and ``reattach()`` follows
each to its end, whether it is still running or ended while nobody watched. A job that
started warm is found by its name (its labels were set before the job existed), and
``reattach()`` delivers its job line again, harmlessly (at most once), in case the
service died between the rename and the write. Its cpu seconds and wall time exclude
the warm start-up (the runner reports its cpu when the job arrives) and its peak memory
is reset when it is assigned (cgroup v1; under v2 the peak includes the start-up).
Where the cgroup tree is not readable (remote daemon, systemd driver) the executor
samples ``docker stats`` while the job runs instead.
"""

from __future__ import annotations

import asyncio
import collections
import os
import re
import socket
import threading
import time
from typing import Optional

from traitlets import Bool, Dict, Float, Integer, List, Unicode, default, validate

from ..._version import __version__
from ..base import Executor, JobSpec, Outcome, Usage, decide_outcome, maybe_await, parse_event
from ..streams import MAX_LINE, EventCap, LineSplitter, LogCap, read_frames
from .cgroups import Cgroups
from .gateway import (
    LABEL_JOB,
    LABEL_INSTANCE,
    LABEL_RUNNER_WARM,
    LABEL_WARM,
    Gateway,
    Names,
    SandboxError,
    log_response,
    parse_time,
    safe_name,
)
from .sandbox import Sandbox
from .transport import extract_outputs, inputs_tar
from .warm import WARM_EVENTS, Warm, WarmPool, WarmSettings, job_line


class _Job:
    """What this executor knows about a job it follows."""

    def __init__(self, job_id: str):
        self.job_id = job_id
        self.container_id: Optional[str] = None
        self.killed_for: Optional[str] = None  # "timeout" | "cancelled" | "disk"
        self.stream = None  # the log/attach stream, closed to stop the reader thread
        self.stop = threading.Event()
        self.cgroup_key = job_id  # name of its per-job cgroup (the pool key when warm)
        self.volume: Optional[str] = None  # its work volume
        self.job_line: Optional[bytes] = None  # warm: what goes to the runner's stdin
        self.assigned: Optional[dict] = None  # warm: the runner's "assigned" event
        self.started_at: Optional[float] = None  # warm, reattached: when the job's line was read


class DockerExecutor(Executor):
    """Runs each job in a per-job container of the runner image, with hard limits."""

    name = "docker"
    durable = True

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
        "Checked every poll_interval when the daemon's volumes are readable here. 0: no check.",
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

    gpus = Integer(
        0,
        help="GPUs on this host that jobs may request (device requests with the "
        "gpu_driver). 0: jobs asking for a GPU are refused.",
    ).tag(config=True)

    gpu_driver = Unicode("nvidia", help="Device driver of GPU requests.").tag(config=True)

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
        0,
        help="cpu weight (cgroup v1 cpu.shares; scaled to cpu.weight under v2) that start() "
        "gives the cgroup_parent group holding every job. The kernel's default, 1024, makes "
        "all jobs together weigh as much as ONE busy process of the host, so on a host with "
        "other busy processes the jobs share one process's part of the cpu (each job's own "
        "limit is nano_cpus either way). 1024 x cores: as much as one busy process per "
        "core. 0: leave it as it is.",
    ).tag(config=True)

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
        "running jobs leave over. Set back to 1024 when it takes a job. Needs the cgroup "
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

    @validate("network")
    def _valid_network(self, proposal):
        net = proposal["value"]
        if net in ("host",) or net.startswith("container:"):
            raise ValueError(f"network {net!r} would share a namespace with the host or another container")
        return net

    @default("extra_labels")
    def _default_labels(self):
        return {}

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._gateway = Gateway(self.docker_url, self.threads)
        self._jobs: dict = {}
        self._stopping = False
        self._pool: Optional[WarmPool] = None  # made by start(), when the traits are final

    # --- the parts, from the traits --------------------------------------------------------
    @property
    def client(self):
        """The Docker client (created on first use)."""
        return self._gateway.client

    async def _call(self, fn, *args, **kwargs):
        """Run a blocking Docker call off the event loop."""
        return await self._gateway.call(fn, *args, **kwargs)

    @property
    def names(self) -> Names:
        """Names and labels of this instance's containers, volumes and cgroups."""
        return Names(self.instance, self.extra_labels, self.cgroup_parent)

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox every job container gets."""
        return Sandbox(user=self.user, network=self.network, runtime=self.runtime, workdir=self.workdir,
                       tmpfs_size=self.tmpfs_size, pids_limit=self.pids_limit, nofile=self.nofile,
                       fsize=self.fsize, log_max_size=self.log_max_size, gpu_driver=self.gpu_driver)

    @property
    def cgroups(self) -> Cgroups:
        """This instance's per-job cgroups."""
        return Cgroups(self.cgroup_root, self.names, self.log)

    def _make_pool(self) -> WarmPool:
        settings = WarmSettings(size=self.warm_pool, image=self.image, workdir=self.workdir,
                                kernel=self.warm_kernel, cpu=self.warm_cpu, memory=self.warm_memory,
                                cpu_shares=self.warm_cpu_shares)
        # Through self, so that a subclass (or a test) changing how the sandbox is made
        # or checked changes it for warm containers too.
        return WarmPool(settings, self._gateway, self.names, self.cgroups,
                        create_kwargs=lambda spec, volume: self._host_config(spec, volume),
                        check=lambda spec, attrs: self.check_host_config(spec, attrs),
                        inputs_tar=self._workdir_tar, log=self.log)

    def _names(self, job_id: str):
        return self.names.job(job_id)

    def _uid_gid(self):
        uid, _, gid = self.user.partition(":")
        return int(uid), int(gid or uid)

    def _host_config(self, spec: JobSpec, volume: str) -> dict:
        """The create() keyword arguments that make the sandbox."""
        return self.sandbox.create_kwargs(spec, volume, self.names.job_cgroup(spec.job_id))

    def check_host_config(self, spec: JobSpec, attrs: dict) -> list:
        """Limits the daemon did not apply as asked, as messages (empty: all in force)."""
        return self.sandbox.check(spec, attrs)

    def _workdir_tar(self, spec: JobSpec):
        """The job's inputs as a tar (a temporary file), owned by the job user."""
        return inputs_tar(spec, *self._uid_gid())

    def _job_line(self, spec: JobSpec) -> bytes:
        """The job as the warm runner reads it on stdin."""
        return job_line(spec, self.workdir)

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Check that the daemon answers and the runner image is there."""
        import docker

        if not self.instance:
            raise RuntimeError("docker executor: DockerExecutor.instance is empty (the service sets it to its id)")

        try:
            await self._call(self.client.ping)
        except Exception as e:
            raise RuntimeError(
                f"docker executor: cannot reach the Docker daemon ({e}). Start it with "
                "`bash scripts/docker-setup.sh` (as root) or set DockerExecutor.docker_url."
            ) from e
        try:
            image = await self._call(self.client.images.get, self.image)
        except docker.errors.ImageNotFound as e:
            raise RuntimeError(
                f"docker executor: runner image {self.image} not found on the daemon; build it "
                "with `bash runner-image/build.sh`."
            ) from e
        pool = self._pool = self._make_pool()
        pool.capable = (image.labels or {}).get(LABEL_RUNNER_WARM) == "1"
        if self.warm_pool and not pool.capable:
            self.log.warning("docker executor: runner image %s has no warm mode (label %s); every job "
                             "starts cold. Rebuild it with `bash runner-image/build.sh`.",
                             self.image, LABEL_RUNNER_WARM)
        info = await self._call(self.client.info)
        if self.runtime:
            if self.runtime not in (info.get("Runtimes") or {}):
                raise RuntimeError(
                    f"docker executor: runtime {self.runtime!r} is not registered with the "
                    "daemon (see scripts/docker-setup.sh)"
                )
        if self.network != "none" and self.network not in self.allowed_networks:
            raise RuntimeError(f"docker executor: network {self.network!r} is not in allowed_networks")
        self._stopping = False
        await self._call(self._sweep_cgroups)
        if self.cgroup_cpu_shares and self.cgroup_parent:
            await self._call(self.cgroups.set_group_shares, self.cgroup_cpu_shares)
        # Idle warm containers of a service that died: their start-up is not worth the
        # doubt about what they saw; the pool is refilled with fresh ones.
        await self._call(pool.drain)
        pool.ensure_refill()
        volumes = os.path.join(info.get("DockerRootDir") or "/var/lib/docker", "volumes")
        if self.work_quota and not os.access(volumes, os.R_OK | os.X_OK):
            self.log.warning("docker executor: the daemon's volumes are not readable here; "
                             "work_quota is not enforced (fsize still is)")

    async def stop(self) -> None:
        """Stop following jobs; their containers keep running and can be reattached.

        A pending ``run``/``reattach`` then raises ``CancelledError``, as it would had its
        task been cancelled: its job did not end, the service just stopped watching it.
        """
        self._stopping = True
        if self._pool is not None:
            await self._pool.stop_refill()
            if self._gateway.open:
                try:
                    await self._call(self._pool.drain)
                except Exception as e:
                    self.log.warning("docker executor: could not remove idle warm containers: %s", e)
        for job in list(self._jobs.values()):
            job.stop.set()
            if job.stream is not None:
                try:
                    job.stream.close()
                except Exception:
                    pass
        self._gateway.close()

    def health(self) -> dict:
        info = super().health()
        info["instance"] = self.instance  # the label that tells this deployment's containers apart
        return info

    def gpu_count(self) -> int:
        """GPUs jobs may request here (the gpus trait: docker cannot count them itself)."""
        return self.gpus

    # --- the warm pool, as the executor and its tests see it ---------------------------------
    @property
    def _warm(self) -> collections.deque:
        return self._pool.idle if self._pool is not None else collections.deque()

    def warm_count(self) -> int:
        """How many warm containers wait in the pool (ready or still starting up)."""
        return self._pool.count() if self._pool is not None else 0

    async def wait_warm(self, timeout: float = 60.0) -> bool:
        """Wait until the pool is full of warm containers whose kernel is up (tests, benchmarks)."""
        if self._pool is None:
            return False
        return await self._pool.wait_ready(timeout)

    def _assign_warm(self, spec: JobSpec) -> Optional[Warm]:
        """A warm container made the job's (sync); None when none could be used."""
        return self._pool.take(spec, self._names(spec.job_id)[0])

    # --- creating a container -------------------------------------------------------------
    def _create(self, spec: JobSpec):
        """Create volume and container, check the sandbox, copy the inputs in (sync)."""
        import docker

        cname, vname = self._names(spec.job_id)
        labels = self.names.job_labels(spec.job_id, spec.user)
        self.client.volumes.create(name=vname, labels=labels)
        try:
            container = self.client.containers.create(
                self.image,
                command=spec.runner_args(self.workdir),
                name=cname,
                labels=labels,
                detach=True,
                **self._host_config(spec, vname),
            )
        except docker.errors.APIError:
            self._remove_sync(spec.job_id)
            raise
        problems = self.check_host_config(spec, container.attrs)
        if problems:
            self._remove_sync(spec.job_id)
            raise SandboxError("refusing to start: the daemon dropped limits: " + "; ".join(problems))
        with self._workdir_tar(spec) as tar:
            container.put_archive(self.workdir, tar)
        return container

    def _deliver(self, job: _Job):
        """Write the job line to the warm runner's stdin, then detach (closing it)."""
        sock = self.client.api.attach_socket(job.container_id, params={"stdin": 1, "stream": 1})
        raw = getattr(sock, "_sock", sock)
        try:
            raw.sendall(job.job_line)
            raw.shutdown(socket.SHUT_WR)
        finally:
            raw.close()
            sock.close()

    def _assigned_event(self, container_id: str) -> Optional[dict]:
        """The warm runner's "assigned" event from the container's log, if it has one."""
        try:
            out = self.client.api.logs(container_id, stdout=True, stderr=False)
        except Exception:
            return None
        for line in out.splitlines():
            event = parse_event(line)
            if event and event.get("event") == "assigned":
                return event
        return None

    # --- running --------------------------------------------------------------------------
    async def run(self, spec: JobSpec, on_event, on_log) -> Outcome:
        """Create the job's container, start it, follow it to its end and collect it."""
        job = self._jobs.setdefault(spec.job_id, _Job(spec.job_id))
        try:
            if self.network != "none" and self.network not in self.allowed_networks:
                return Outcome("failed", "infrastructure", f"network {self.network!r} is not allowed")
            if spec.gpu and spec.gpu > self.gpu_count():
                return Outcome("failed", "infrastructure",
                               f"job asks for {spec.gpu} GPU(s); this backend has {self.gpu_count()}")
            warm = None
            if self._pool is not None and not self._stopping and self._pool.eligible(spec):
                try:
                    warm = await self._call(self._assign_warm, spec)
                except Exception as e:  # the pool is an optimisation: fall back to cold
                    self.log.warning("job %s: warm pool failed, starting cold: %s", spec.job_id, e)
                self._pool.ensure_refill()
            if warm is not None:
                job.container_id, job.cgroup_key, job.volume = warm.container_id, warm.key, warm.volume
                job.job_line = self._job_line(spec)
            else:
                try:
                    container = await self._call(self._create, spec)
                except SandboxError as e:
                    self.log.error("job %s: %s", spec.job_id, e)
                    return Outcome("failed", "infrastructure", str(e))
                except Exception as e:
                    self.log.exception("job %s: cannot create its container", spec.job_id)
                    return Outcome("failed", "infrastructure", f"cannot create the job's container: {e}")
                job.container_id = container.id
            if job.killed_for == "cancelled":  # cancelled while we were creating it
                await self._call(self._remove_sync, spec.job_id, job.container_id)
                return Outcome("cancelled", "cancelled", "cancelled by request")
            return await self._follow(spec, job, on_event, on_log, fresh=True)
        finally:
            self._jobs.pop(spec.job_id, None)

    async def reattach(self, spec: JobSpec, on_event, on_log) -> Outcome:
        """Follow a job's existing container (running or exited) to its end, as run would."""
        import docker

        job = self._jobs.setdefault(spec.job_id, _Job(spec.job_id))
        try:
            cname, _ = self._names(spec.job_id)
            try:
                container = await self._call(self.client.containers.get, cname)
            except docker.errors.NotFound:
                return Outcome("failed", "infrastructure", "the job's container is gone")
            job.container_id = container.id
            job.volume = next((m.get("Name") for m in container.attrs.get("Mounts") or []
                               if m.get("Type") == "volume" and m.get("Destination") == self.workdir), None)
            key = (container.labels or {}).get(LABEL_WARM)
            if key:  # started warm: maybe still waiting for its line (delivered again, at most once)
                job.cgroup_key = key
                job.job_line = self._job_line(spec)
                assigned = await self._call(self._assigned_event, container.id)
                job.started_at = (assigned or {}).get("time") or time.time()
            return await self._follow(spec, job, on_event, on_log, fresh=False)
        finally:
            self._jobs.pop(spec.job_id, None)

    def _open_stream(self, job: _Job, fresh: bool):
        """(stdout, stderr) chunks of the job's container, from its start (sync, the reader's)."""
        api = self.client.api
        if fresh and job.job_line is None:
            # Cold: attached before it starts, so nothing is written before we listen.
            stream = api.attach(job.container_id, stdout=True, stderr=True, stream=True,
                                logs=False, demux=True)
            job.stream = stream
            if job.killed_for is None:
                api.start(job.container_id)
            else:
                stream.close()
            return stream
        # Already running (warm), or found again after a restart: the daemon's log from
        # the start, then what follows until the container ends. (attach's logs replay is
        # not used: docker-py reads the hijacked socket past what http.client buffered
        # with the headers, which can lose the first bytes.)
        running = api.inspect_container(job.container_id)["State"].get("Running")
        res = job.stream = log_response(api, job.container_id, follow=bool(running))
        if job.job_line is not None and running:
            if fresh and job.killed_for is not None:
                self._kill_sync(job)
            else:
                # Its line, if it has not had it: at most once (StdinOnce closed the
                # stdin a first delivery used, so a second one goes nowhere).
                try:
                    self._deliver(job)
                except Exception:
                    self._kill_sync(job)  # it would wait for its line forever
                    raise
        return read_frames(res.raw)

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
        before_job: collections.deque = collections.deque(maxlen=50)

        def emit(which, line: bytes):
            if which == 0:
                event = parse_event(line)
                if event is not None and event.get("event") in WARM_EVENTS:
                    if event["event"] == "assigned" and job.assigned is None:
                        job.assigned = event
                    return
            if job.job_line is not None and job.assigned is None:
                # A warm container's start-up output is not the job's; kept aside in
                # case the runner ends without ever taking the job (then it explains why).
                before_job.append(line)
                return
            if which == 0 and event is not None:
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
            if job.assigned is None:
                for line in before_job:
                    put(("log", line.decode("utf-8", "replace")))
            put(("end", None))
        except Exception as e:  # the loop decides what an unreadable stream means
            put(("end", e))

    def _sampler(self, job: _Job, spec: JobSpec, volume_dir: Optional[str], usage: dict):
        """Thread: watch the work volume's size and sample usage while the job runs."""
        while not job.stop.wait(self.poll_interval):
            if volume_dir and self.work_quota:
                size = _tree_size(volume_dir, self.work_quota)
                if size > self.work_quota and job.killed_for is None:
                    job.killed_for = "disk"
                    self.log.warning("job %s: work volume over its quota (%d bytes); killing", spec.job_id, size)
                    self._kill_sync(job)
            # The job's cgroup exists once it has started; without one, sample docker stats.
            if job.container_id and self.cgroups.dir("memory", job.cgroup_key) is None:
                try:
                    s = self.client.api.stats(job.container_id, stream=False, one_shot=True)
                except Exception:
                    continue
                mem = s.get("memory_stats") or {}
                peak = mem.get("max_usage") or mem.get("usage")
                if peak:
                    usage["peak_memory"] = max(usage.get("peak_memory", 0), int(peak))
                cpu = ((s.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
                if cpu:
                    usage["cpu_seconds"] = max(usage.get("cpu_seconds", 0.0), cpu / 1e9)

    async def _follow(self, spec: JobSpec, job: _Job, on_event, on_log, fresh: bool) -> Outcome:
        """Stream a container's output to the callbacks, enforce its deadline, collect it."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        reader = threading.Thread(target=self._reader, args=(job, fresh, loop, queue),
                                  name=f"docker-job-{spec.job_id}", daemon=True)
        usage: dict = {}
        vname = job.volume or self._names(spec.job_id)[1]
        volume_dir = await self._call(self._volume_dir, vname)
        sampler = threading.Thread(target=self._sampler, args=(job, spec, volume_dir, usage),
                                   name=f"docker-usage-{spec.job_id}", daemon=True)
        deadline = loop.time() + spec.timeout
        if not fresh:
            if job.job_line is not None:  # warm: the job started when its line was read
                started = job.started_at
            else:
                attrs = await self._call(self.client.api.inspect_container, job.container_id)
                started = parse_time(attrs["State"].get("StartedAt", ""))
            if started:
                deadline -= max(0.0, time.time() - started)
        reader.start()
        sampler.start()
        final_event = None
        stderr_tail: list = []
        error = None
        killed_at = None
        try:
            while True:
                timeout = deadline - loop.time()
                if timeout <= 0 and job.killed_for is None:
                    job.killed_for = "timeout"
                    await self._call(self._kill_sync, job)
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
                    if item.get("event") == "finished":
                        final_event = item
                    await maybe_await(on_event(item))
                else:
                    stderr_tail.append(item)
                    del stderr_tail[:-20]
                    await maybe_await(on_log(item))
        except asyncio.CancelledError:
            # The service is going away (or gave up on this job): the container keeps
            # running and a restarted service reattaches to it.
            job.stop.set()
            if job.stream is not None:
                job.stream.close()
            raise
        finally:
            job.stop.set()
        if self._stopping:
            # stop() closed the stream: the job goes on, a restarted service reattaches.
            raise asyncio.CancelledError(f"executor stopped while following job {spec.job_id}")
        if error is not None:
            self.log.warning("job %s: lost the output stream: %s", spec.job_id, error)
            stderr_tail.append(f"docker: {error}")
        exit_code, attrs = await self._call(self._wait_sync, job)
        state = (attrs or {}).get("State") or {}
        started, finished = parse_time(state.get("StartedAt", "")), parse_time(state.get("FinishedAt", ""))
        used = Usage(
            peak_memory=usage.get("peak_memory"),
            cpu_seconds=usage.get("cpu_seconds"),
            wall_seconds=round(finished - started, 3) if started and finished and finished >= started else None,
        )
        measured = await self._call(self.cgroups.usage, job.cgroup_key)
        if measured.get("peak_memory") is not None:
            used.peak_memory = measured["peak_memory"]
        if measured.get("cpu_seconds") is not None:
            used.cpu_seconds = round(measured["cpu_seconds"], 3)
        if job.assigned is not None:
            # Warm: the start-up before the job arrived is not the job's.
            warm_cpu = float(job.assigned.get("warm_cpu_seconds") or 0.0)
            if used.cpu_seconds is not None:
                used.cpu_seconds = round(max(0.0, used.cpu_seconds - warm_cpu), 3)
            at = job.assigned.get("time")
            if at and finished and finished >= at:
                used.wall_seconds = round(finished - at, 3)
        try:
            await self._call(self._collect_sync, spec, job)
        except Exception as e:
            self.log.warning("job %s: could not collect outputs: %s", spec.job_id, e)
        if not self.keep_containers:
            await self._call(self._remove_sync, spec.job_id, job.container_id)
        if job.killed_for == "disk":
            return Outcome("failed", "infrastructure",
                           f"job wrote more than its work-volume quota of {self.work_quota} bytes and was killed",
                           exit_code=exit_code, used=used)
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

    # --- sync helpers (run in threads) ---------------------------------------------------
    def _kill_sync(self, job: _Job):
        import docker

        try:
            self.client.api.kill(job.container_id)
        except docker.errors.APIError as e:  # already exited, or gone
            self.log.debug("kill %s: %s", job.container_id, e)

    def _wait_sync(self, job: _Job):
        import docker

        try:
            result = self.client.api.wait(job.container_id, timeout=60)
            attrs = self.client.api.inspect_container(job.container_id)
        except docker.errors.NotFound:
            return None, None
        except Exception as e:
            self.log.warning("wait %s: %s", job.container_id, e)
            return None, None
        return result.get("StatusCode"), attrs

    def _volume_dir(self, vname: str) -> Optional[str]:
        try:
            mp = self.client.api.inspect_volume(vname).get("Mountpoint")
        except Exception:
            return None
        return mp if mp and os.access(mp, os.R_OK | os.X_OK) else None

    def _collect_sync(self, spec: JobSpec, job: _Job):
        """Copy output.ipynb and files/ from the job's volume into spec.workdir."""
        stream, _ = self.client.api.get_archive(job.container_id, self.workdir)
        extract_outputs(stream, self.workdir, spec.workdir)

    def _remove_sync(self, job_id: str, container_id: Optional[str] = None):
        """Remove a job's container (by id, else by its name), its volume and cgroup."""
        import docker

        api = self.client.api
        cname, vname = self._names(job_id)
        volumes, key = [vname], job_id
        try:
            attrs = api.inspect_container(container_id or cname)
            # A container that started warm has its pool key's volume and cgroup.
            key = ((attrs.get("Config") or {}).get("Labels") or {}).get(LABEL_WARM) or job_id
            volumes += [m["Name"] for m in attrs.get("Mounts") or []
                        if m.get("Type") == "volume" and m.get("Name") and m.get("Destination") == self.workdir]
            api.remove_container(attrs["Id"], force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            self.log.warning("remove container %s: %s", container_id or cname, e)
        for name in dict.fromkeys(volumes):
            try:
                api.remove_volume(name, force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as e:
                self.log.warning("remove volume %s: %s", name, e)
        self.cgroups.cleanup(key)

    def _sweep_cgroups(self):
        """Remove empty per-job cgroups of jobs that no longer have a container (sync)."""
        if not self.cgroup_parent:
            return
        api = self.client.api
        try:
            alive = {safe_name(c["Labels"].get(LABEL_JOB, ""))
                     for c in api.containers(all=True, filters={"label": LABEL_JOB})}
            alive |= {c["Labels"].get(LABEL_WARM, "")
                      for c in api.containers(all=True, filters={"label": LABEL_WARM})}
        except Exception as e:  # housekeeping only
            self.log.debug("cgroup sweep: %s", e)
            return
        self.cgroups.sweep(alive)

    # --- control --------------------------------------------------------------------------
    async def cancel(self, job_id: str) -> bool:
        """Kill a job's container; its run/reattach returns a cancelled outcome."""
        import docker

        job = self._jobs.get(job_id)
        if job is not None:
            job.killed_for = job.killed_for or "cancelled"
            if job.container_id:
                await self._call(self._kill_sync, job)
            return True
        cname, _ = self._names(job_id)
        try:
            await self._call(self.client.api.kill, cname)
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError:
            pass  # exists but is not running
        return True

    async def running(self) -> list:
        """Ids of this instance's jobs that still have a container (running or exited).

        A cold job's container carries its id in a label; one that started warm carries
        the job's name instead (its labels were set before the job existed). Idle warm
        containers are no jobs.
        """
        containers = await self._call(
            self.client.api.containers, all=True,
            filters={"label": [f"{LABEL_INSTANCE}={self.instance}"]},
        )
        prefix = self._names("")[0]
        ids = set()
        for c in containers:
            labels = c.get("Labels") or {}
            if LABEL_JOB in labels:
                ids.add(labels[LABEL_JOB])
            elif LABEL_WARM in labels:
                for name in c.get("Names") or []:
                    name = name.lstrip("/")
                    if name.startswith(prefix) and len(name) > len(prefix):
                        ids.add(name[len(prefix):])
        return sorted(ids)

    async def remove(self, job_id: str) -> None:
        """Remove a job's container and volume (orphans, or kept ones)."""
        await self._call(self._remove_sync, job_id)


def _tree_size(top: str, stop_after: int) -> int:
    """Bytes used under a directory (allocated blocks), stopping early past ``stop_after``."""
    total = 0
    stack = [top]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += st.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    if total > stop_after:
                        return total
        except OSError:
            continue
    return total


__all__ = ["DockerExecutor"]
