"""The docker executor: each job in its own hardened, throw-away container.

A job becomes one container of the runner image plus one named volume mounted at
``/work/job``. The job's work directory goes in with ``put_archive`` and its results
come out with ``get_archive``: nothing of the host is mounted, not even the Docker
socket. The container is created with every limit of DESIGN.md's *Sandbox*, and its
``HostConfig`` is read back before start, because the daemon silently drops limits the
kernel cannot enforce: a job runs with all of its limits or not at all.

The Docker SDK is synchronous. Short calls go through a private thread pool; each
job's output is read by its own thread (a job can last hours, so it must not hold a
pool worker) and handed to the event loop with ``call_soon_threadsafe``.

Containers carry the job id, the user and this service instance in labels and outlive
the service, so after a restart ``running()`` finds them and ``reattach()`` follows
each to its end, whether it is still running or ended while nobody watched.

Usage (peak memory, cpu seconds) is read from the kernel's cgroup counters. Each
container is placed under a per-job parent cgroup (``cgroup_parent``): the runtime
removes the container's own cgroup at exit, but the parent keeps the totals of its
child, so even a job that ended while the service was down reports exact numbers.
Where the cgroup tree is not readable (remote daemon, systemd driver) the executor
samples ``docker stats`` while the job runs instead.

Warm pool (``warm_pool`` > 0): papermill's start-up (imports, kernel start: ~0.75 s of
cpu, over a second of wall time, per job here) is paid before a job exists. The executor keeps that many containers of the runner
started in warm mode (``runner.py --warm``: kernel started in the job's fixed cwd,
waiting for one JSON line on stdin), each created with the whole sandbox, checked like
any job container, with its own volume and cgroup. A job takes one: the container is
resized to the job's allocation with an update whose result is read back and checked
(a dropped limit: the container is discarded and the job goes cold), the inputs go in
with put_archive, the container is renamed to the job's name (labels cannot change;
the name is how ``running()``/``reattach()`` find it, so job ids that are not valid
container names always go cold), and only then does the job line go to its stdin.
Docker closes a ``StdinOnce`` stdin when the first writer detaches, so delivering the
line is at most once: ``reattach()`` delivers it again, harmlessly, in case the service
died between the rename and the write. One container runs one job, never more. Idle
warm containers carry a pool label and a name no job can have; ``running()`` ignores
them, and ``start()``/``stop()`` remove them. They refill at a low cpu weight
(``warm_cpu_shares``), with what the running jobs leave over. A job's cpu seconds and wall time exclude
the warm start-up (the runner reports its cpu when the job arrives) and its peak memory
is reset when it is assigned (cgroup v1; under v2 the peak includes the start-up).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import socket
import struct
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Optional

from uuid import uuid4

from traitlets import Bool, Dict, Float, Integer, List, Unicode, default, validate

from .._version import __version__
from .base import (
    FILES_DIR,
    INPUT_NOTEBOOK,
    OUTPUT_NOTEBOOK,
    PARAMETERS_FILE,
    Executor,
    JobSpec,
    Outcome,
    Usage,
    decide_outcome,
    maybe_await,
    parse_event,
)

LABEL_PREFIX = "org.jupyter.notebook-jobs"
LABEL_JOB = f"{LABEL_PREFIX}.job-id"
LABEL_USER = f"{LABEL_PREFIX}.user"
LABEL_INSTANCE = f"{LABEL_PREFIX}.instance"
LABEL_VERSION = f"{LABEL_PREFIX}.version"
LABEL_WARM = f"{LABEL_PREFIX}.warm"  # on warm-pool containers: their pool key (cgroup, volume)
#: On runner images whose runner has the warm mode (runner.py --warm).
LABEL_RUNNER_WARM = f"{LABEL_PREFIX}.runner-warm"

#: Runner events that are about the warm pool, not the job: never passed on.
_WARM_EVENTS = ("ready", "assigned")

_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")
_TRUNCATED = "[notebook-jobs] log truncated: the job wrote more than {limit} bytes to its log"


class SandboxError(RuntimeError):
    """The daemon did not apply a limit the sandbox requires."""


class _WarmGone(RuntimeError):
    """A warm container that is no longer there to take a job."""


def _parse_time(value: str) -> Optional[float]:
    """Docker's RFC 3339 timestamp (nanoseconds, Z) as epoch seconds; None when unset."""
    if not value or value.startswith("0001-"):
        return None
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", value)
    if not m:
        return None
    frac = (m.group(2) or ".0")[:7]
    tz = m.group(3) or "Z"
    tz = "+00:00" if tz == "Z" else tz
    return datetime.fromisoformat(m.group(1) + frac + tz).timestamp()


class _Job:
    """What this executor knows about a job it follows."""

    def __init__(self, job_id: str):
        self.job_id = job_id
        self.container_id: Optional[str] = None
        self.killed_for: Optional[str] = None  # "timeout" | "cancelled" | "disk"
        self.stream = None  # the attach stream, closed to stop the reader thread
        self.stop = threading.Event()
        self.cgroup_key = job_id  # name of its per-job cgroup (the pool key when warm)
        self.volume: Optional[str] = None  # its work volume
        self.job_line: Optional[bytes] = None  # warm: what goes to the runner's stdin
        self.assigned: Optional[dict] = None  # warm: the runner's "assigned" event
        self.started_at: Optional[float] = None  # warm, reattached: when the job's line was read


class _Warm:
    """One warm-pool container: started, waiting for its job on stdin."""

    def __init__(self, key: str, container_id: str, volume: str):
        self.key = key
        self.container_id = container_id
        self.volume = volume
        self.created = time.monotonic()


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

    log_limit = Integer(
        10 << 20,
        help="Most bytes of a job's log (stderr) passed on to the service; the rest is "
        "dropped with one note, so a job that floods its output cannot flood the store.",
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
        self._client = None
        self._pool: Optional[ThreadPoolExecutor] = None
        self._jobs: dict = {}
        self._stopping = False
        self._warm: collections.deque = collections.deque()  # of _Warm, oldest first
        self._warm_lock = threading.Lock()
        self._assigning: set = set()  # pool keys being turned into a job's container
        self._refill_task: Optional[asyncio.Task] = None
        self._warm_capable = False  # the image's runner has --warm (checked by start())

    # --- plumbing --------------------------------------------------------------------------
    @property
    def client(self):
        """The Docker client (created on first use)."""
        if self._client is None:
            import docker

            kw = {"max_pool_size": 64, "timeout": 120}
            if self.docker_url:
                self._client = docker.DockerClient(base_url=self.docker_url, **kw)
            else:
                self._client = docker.from_env(**kw)
        return self._client

    async def _call(self, fn, *args, **kwargs):
        """Run a blocking Docker call off the event loop."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="docker-executor")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    def _names(self, job_id: str):
        safe = _NAME_UNSAFE.sub("_", job_id)
        return f"notebook-jobs-{self.instance}-{safe}", f"notebook-jobs-{self.instance}-{safe}-work"

    @property
    def _warm_prefix(self) -> str:
        # "notebook-jobs." can never start a job's name ("notebook-jobs-<instance>-...").
        return f"notebook-jobs.warm.{self.instance}."

    def _labels(self, spec: JobSpec) -> dict:
        labels = dict(self.extra_labels)
        labels.update({
            LABEL_JOB: spec.job_id,
            LABEL_USER: spec.user or "",
            LABEL_INSTANCE: self.instance,
            LABEL_VERSION: __version__,
        })
        return labels

    def _uid_gid(self):
        uid, _, gid = self.user.partition(":")
        return int(uid), int(gid or uid)

    def _job_cgroup_parent(self, job_id: str) -> str:
        if not self.cgroup_parent:
            return ""
        return "/" + self.cgroup_parent.strip("/") + "/" + _NAME_UNSAFE.sub("_", job_id)

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
        self._warm_capable = (image.labels or {}).get(LABEL_RUNNER_WARM) == "1"
        if self.warm_pool and not self._warm_capable:
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
            await self._call(self._set_group_shares)
        # Idle warm containers of a service that died: their start-up is not worth the
        # doubt about what they saw; the pool is refilled with fresh ones.
        await self._call(self._drain_warm)
        self._ensure_refill()
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
        task, self._refill_task = self._refill_task, None
        if task is not None and not task.done():
            # The refill ends after the container it is creating (it checks _stopping).
            try:
                await asyncio.wait_for(asyncio.shield(task), 60)
            except (asyncio.TimeoutError, asyncio.CancelledError, Exception):
                task.cancel()
        if self._pool is not None and self._client is not None:
            try:
                await self._call(self._drain_warm)
            except Exception as e:
                self.log.warning("docker executor: could not remove idle warm containers: %s", e)
        for job in list(self._jobs.values()):
            job.stop.set()
            if job.stream is not None:
                try:
                    job.stream.close()
                except Exception:
                    pass
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def health(self) -> dict:
        info = super().health()
        info["instance"] = self.instance  # the label that tells this deployment's containers apart
        return info

    def gpu_count(self) -> int:
        """GPUs jobs may request here (the gpus trait: docker cannot count them itself)."""
        return self.gpus

    # --- creating a container -------------------------------------------------------------
    def _host_config(self, spec: JobSpec, volume: str) -> dict:
        """The create() keyword arguments that make the sandbox."""
        from docker.types import DeviceRequest, LogConfig, Mount, Ulimit

        kw = dict(
            user=self.user,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            network_mode=self.network,
            read_only=True,
            # exec stays allowed: the work volume allows it anyway, and libraries
            # that compile (numba, cffi) put their objects in /tmp.
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={self.tmpfs_size},mode=1777"},
            mounts=[Mount(target=self.workdir, source=volume, type="volume")],
            mem_limit=int(spec.memory),
            memswap_limit=int(spec.memory),
            nano_cpus=int(round(spec.cpu * 1e9)),
            pids_limit=self.pids_limit,
            ulimits=[
                Ulimit(name="nofile", soft=self.nofile, hard=self.nofile),
                Ulimit(name="fsize", soft=self.fsize, hard=self.fsize),
            ],
            log_config=LogConfig(type="json-file", config={"max-size": self.log_max_size, "max-file": "1"}),
            privileged=False,
            ipc_mode="private",
            init=False,
        )
        if self.runtime:
            kw["runtime"] = self.runtime
        parent = self._job_cgroup_parent(spec.job_id)
        if parent:
            kw["cgroup_parent"] = parent
        if spec.gpu:
            kw["device_requests"] = [DeviceRequest(driver=self.gpu_driver, count=int(spec.gpu), capabilities=[["gpu"]])]
        return kw

    def check_host_config(self, spec: JobSpec, attrs: dict) -> list:
        """Limits the daemon did not apply as asked, as messages (empty: all in force)."""
        hc = attrs.get("HostConfig") or {}
        problems = []

        def want(key, expected, actual=None):
            actual = hc.get(key) if actual is None else actual
            if actual != expected:
                problems.append(f"{key} is {actual!r}, wanted {expected!r}")

        want("Memory", int(spec.memory))
        want("MemorySwap", int(spec.memory))
        want("NanoCpus", int(round(spec.cpu * 1e9)))
        want("PidsLimit", self.pids_limit)
        want("ReadonlyRootfs", True)
        want("Privileged", False)
        want("NetworkMode", self.network)
        if [c.upper().removeprefix("CAP_") for c in hc.get("CapDrop") or []] != ["ALL"]:
            problems.append(f"CapDrop is {hc.get('CapDrop')!r}, wanted ['ALL']")
        if hc.get("CapAdd"):
            problems.append(f"CapAdd is {hc.get('CapAdd')!r}, wanted none")
        if not any(o.startswith("no-new-privileges") and not o.endswith(":false") for o in hc.get("SecurityOpt") or []):
            problems.append(f"SecurityOpt {hc.get('SecurityOpt')!r} lacks no-new-privileges")
        ulimits = {u["Name"]: (u["Soft"], u["Hard"]) for u in hc.get("Ulimits") or []}
        for name, value in (("nofile", self.nofile), ("fsize", self.fsize)):
            if ulimits.get(name) != (value, value):
                problems.append(f"ulimit {name} is {ulimits.get(name)!r}, wanted {(value, value)!r}")
        if "/tmp" not in (hc.get("Tmpfs") or {}) or f"size={self.tmpfs_size}" not in hc["Tmpfs"]["/tmp"]:
            problems.append(f"Tmpfs is {hc.get('Tmpfs')!r}, wanted a sized /tmp")
        log = hc.get("LogConfig") or {}
        if log.get("Type") != "json-file" or (log.get("Config") or {}).get("max-size") != self.log_max_size:
            problems.append(f"LogConfig is {log!r}, wanted json-file with max-size {self.log_max_size}")
        if hc.get("Binds"):
            problems.append(f"Binds is {hc['Binds']!r}, wanted none")
        for m in hc.get("Mounts") or []:
            if m.get("Type") != "volume":
                problems.append(f"mount of type {m.get('Type')} at {m.get('Target')}, only volumes allowed")
        for m in attrs.get("Mounts") or []:
            if m.get("Type") == "bind":
                problems.append(f"bind mount {m.get('Source')} at {m.get('Destination')}")
        if self.runtime:
            want("Runtime", self.runtime)
        if spec.gpu and not hc.get("DeviceRequests"):
            problems.append("DeviceRequests dropped, wanted a GPU")
        if (attrs.get("Config") or {}).get("User") != self.user:
            problems.append(f"User is {(attrs.get('Config') or {}).get('User')!r}, wanted {self.user!r}")
        return problems

    def _workdir_tar(self, spec: JobSpec):
        """The job's inputs as a tar (a temporary file), owned by the job user."""
        uid, gid = self._uid_gid()
        buf = tempfile.TemporaryFile()

        def owned(info: tarfile.TarInfo):
            info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
            info.mode |= 0o700 if info.isdir() else 0o600
            return info

        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name in (INPUT_NOTEBOOK, PARAMETERS_FILE):
                path = spec.workdir / name
                if path.exists():
                    tar.add(path, arcname=name, filter=owned)
            files = spec.files_dir
            if files.is_dir():
                tar.add(files, arcname=FILES_DIR, filter=owned)
            else:
                info = tarfile.TarInfo(FILES_DIR)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(owned(info))
        buf.seek(0)
        return buf

    def _create(self, spec: JobSpec):
        """Create volume and container, check the sandbox, copy the inputs in (sync)."""
        import docker

        cname, vname = self._names(spec.job_id)
        labels = self._labels(spec)
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

    # --- the warm pool ----------------------------------------------------------------------
    def _warm_spec(self, key: str) -> JobSpec:
        """The limits of an idle warm container (its key stands in for the job id)."""
        return JobSpec(job_id=key, workdir=Path(self.workdir), cpu=self.warm_cpu, memory=self.warm_memory)

    def _warm_eligible(self, spec: JobSpec) -> bool:
        # GPUs cannot be added by an update; a job id that is not a valid container name
        # could not be found again by its name after a restart.
        return (self.warm_pool > 0 and self._warm_capable and not self._stopping and not spec.gpu
                and _NAME_UNSAFE.sub("_", spec.job_id) == spec.job_id)

    def _job_line(self, spec: JobSpec) -> bytes:
        """The job as the warm runner reads it on stdin (runner.py's JOB_KEYS)."""
        root = Path(self.workdir)
        job = {
            "input": str(root / INPUT_NOTEBOOK),
            "output": str(root / OUTPUT_NOTEBOOK),
            "parameters": str(root / PARAMETERS_FILE),
            "cwd": str(root / FILES_DIR),
        }
        if spec.kernel_name:
            job["kernel"] = spec.kernel_name
        return (json.dumps(job) + "\n").encode()

    def _create_warm(self) -> _Warm:
        """Create, check and start one warm container (sync)."""
        key = "warm-" + uuid4().hex[:12]
        name = self._warm_prefix + key
        vname = name + "-work"
        labels = dict(self.extra_labels)
        labels.update({LABEL_INSTANCE: self.instance, LABEL_VERSION: __version__, LABEL_WARM: key})
        spec = self._warm_spec(key)
        entry = _Warm(key, "", vname)
        self.client.volumes.create(name=vname, labels=labels)
        try:
            # stdin_open without detach gives StdinOnce: the first writer's detach closes
            # the runner's stdin, so the job line is delivered at most once.
            container = self.client.containers.create(
                self.image,
                command=["--warm", "--cwd", str(Path(self.workdir) / FILES_DIR), "--kernel", self.warm_kernel],
                name=name,
                labels=labels,
                stdin_open=True,
                detach=False,
                **self._host_config(spec, vname),
            )
            entry.container_id = container.id
            problems = self.check_host_config(spec, container.attrs)
            if not (container.attrs.get("Config") or {}).get("StdinOnce"):
                problems.append("StdinOnce is not set")
            if problems:
                raise SandboxError("refusing to start a warm container: the daemon dropped limits: "
                                   + "; ".join(problems))
            container.start()
        except BaseException:
            self._discard_warm(entry)
            raise
        if self.warm_cpu_shares:
            self._set_cpu_shares(key, self.warm_cpu_shares)
        return entry

    def _discard_warm(self, entry: _Warm):
        """Remove a warm container, its volume and its cgroup (sync)."""
        import docker

        api = self.client.api
        for what, fn, arg in (("container", api.remove_container, entry.container_id),
                              ("volume", api.remove_volume, entry.volume)):
            if not arg:
                continue
            try:
                fn(arg, force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError as e:
                self.log.warning("remove warm %s %s: %s", what, arg, e)
        self._cgroup_cleanup(entry.key)

    def _drain_warm(self):
        """Remove every idle warm container of this instance: ours, or a dead service's."""
        import docker

        with self._warm_lock:
            entries = list(self._warm)
            self._warm.clear()
        for entry in entries:
            self._discard_warm(entry)
        api = self.client.api
        filters = {"label": [f"{LABEL_INSTANCE}={self.instance}", LABEL_WARM]}
        for c in api.containers(all=True, filters=filters):
            key = (c.get("Labels") or {}).get(LABEL_WARM, "")
            names = [n.lstrip("/") for n in c.get("Names") or []]
            with self._warm_lock:
                busy = key in self._assigning
            # A renamed one carries a job now: running()/reattach() own it.
            if busy or not any(n.startswith(self._warm_prefix) for n in names):
                continue
            volumes = [m.get("Name") for m in c.get("Mounts") or [] if m.get("Type") == "volume"]
            self._discard_warm(_Warm(key, c["Id"], volumes[0] if volumes else ""))
        # Volumes whose warm container never came to be (a crash between the two creates).
        try:
            vols = api.volumes(filters={"label": [f"{LABEL_INSTANCE}={self.instance}", LABEL_WARM]})
        except docker.errors.APIError:
            return
        for v in (vols or {}).get("Volumes") or []:
            if v["Name"].startswith(self._warm_prefix):
                with self._warm_lock:
                    busy = (v.get("Labels") or {}).get(LABEL_WARM) in self._assigning
                if busy:
                    continue
                try:
                    api.remove_volume(v["Name"])  # not forced: a volume in use stays
                except docker.errors.APIError:
                    pass

    def _ensure_refill(self):
        """Start the background refill of the pool unless it runs already."""
        if self.warm_pool <= 0 or self._stopping or not self._warm_capable:
            return
        if self._refill_task is None or self._refill_task.done():
            self._refill_task = asyncio.ensure_future(self._refill())

    async def _refill(self):
        """Create warm containers, one at a time, until the pool is full."""
        failures = 0
        while not self._stopping:
            with self._warm_lock:
                if len(self._warm) >= self.warm_pool:
                    return
            try:
                entry = await self._call(self._create_warm)
            except Exception as e:
                failures += 1
                self.log.warning("docker executor: cannot create a warm container (%d): %s", failures, e)
                await asyncio.sleep(min(60.0, 0.5 * 2 ** failures))
                continue
            failures = 0
            if self._stopping:
                await self._call(self._discard_warm, entry)
                return
            with self._warm_lock:
                self._warm.append(entry)

    def warm_count(self) -> int:
        """How many warm containers wait in the pool (ready or still starting up)."""
        with self._warm_lock:
            return len(self._warm)

    def _warm_ready_sync(self) -> int:
        with self._warm_lock:
            ids = [e.container_id for e in self._warm]
        ready = 0
        for cid in ids:
            try:
                out = self.client.api.logs(cid, stdout=True, stderr=False)
            except Exception:
                continue
            ready += any((parse_event(line) or {}).get("event") == "ready" for line in out.splitlines())
        return ready

    async def wait_warm(self, timeout: float = 60.0) -> bool:
        """Wait until the pool is full of warm containers whose kernel is up (tests, benchmarks)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            if self.warm_count() >= self.warm_pool and await self._call(self._warm_ready_sync) >= self.warm_pool:
                return True
            self._ensure_refill()
            await asyncio.sleep(0.1)
        return False

    def _assign_warm(self, spec: JobSpec) -> Optional[_Warm]:
        """Make a warm container the job's (sync): resize it, check it, copy the inputs in,
        rename it to the job's name. None when no warm container could be used."""
        cname, _ = self._names(spec.job_id)
        with self._warm_lock:
            if not self._warm:
                return None
            entry = self._warm.popleft()
            self._assigning.add(entry.key)
        try:
            self._prepare_warm(spec, entry, cname)
            return entry
        except Exception as e:
            # Gone, limits not applicable (e.g. less memory than it already uses; under
            # cgroup v2 such an update kills it) or not applied: this job starts cold,
            # and never tries a second warm container that would fare the same.
            self.log.warning("job %s: cannot use warm container %s, starting cold: %s",
                             spec.job_id, entry.key, e)
            self._discard_warm(entry)
            return None
        finally:
            with self._warm_lock:
                self._assigning.discard(entry.key)

    def _prepare_warm(self, spec: JobSpec, entry: _Warm, cname: str):
        import docker

        api = self.client.api
        memory, nano_cpus = int(spec.memory), int(round(spec.cpu * 1e9))
        try:
            # The SDK's update_container has no NanoCpus; the API (1.29+) does.
            res = api._post_json(api._url("/containers/{0}/update", entry.container_id),
                                 data={"Memory": memory, "MemorySwap": memory, "NanoCpus": nano_cpus})
            api._result(res, True)
            attrs = api.inspect_container(entry.container_id)
        except docker.errors.NotFound as e:
            raise _WarmGone("gone") from e
        if not (attrs.get("State") or {}).get("Running"):
            raise _WarmGone(f"not running (exit code {(attrs.get('State') or {}).get('ExitCode')})")
        problems = self.check_host_config(spec, attrs)
        if problems:
            raise SandboxError("the daemon did not apply the job's limits: " + "; ".join(problems))
        with self._workdir_tar(spec) as tar:
            api.put_archive(entry.container_id, self.workdir, tar)
        self._reset_peak(entry.key)
        if self.warm_cpu_shares:
            self._set_cpu_shares(entry.key, 1024)  # a job's weight, like a cold one's
        # Last: from here on the container is the job's (running() lists it by this name).
        api.rename(entry.container_id, cname)

    def _set_cpu_shares(self, key: str, shares: int):
        """Set the cpu weight of a per-job cgroup (v1 cpu.shares, v2 cpu.weight); best effort."""
        cpu = self._cgroup_dir("cpu", key)
        if cpu is None:
            return
        for name, value in (("cpu.shares", shares), ("cpu.weight", max(1, min(10000, round(shares * 100 / 1024))))):
            if (cpu / name).exists():
                try:
                    (cpu / name).write_text(str(value))
                except OSError as e:
                    self.log.debug("cgroup %s: cannot write %s: %s", cpu, name, e)
                return

    def _set_group_shares(self):
        """Give the group of all jobs its cpu weight (cgroup_cpu_shares); best effort."""
        root = Path(self.cgroup_root)
        name = self.cgroup_parent.strip("/")
        for base, fname, value in ((root / "cpu", "cpu.shares", self.cgroup_cpu_shares),
                                   (root, "cpu.weight", max(1, min(10000, round(self.cgroup_cpu_shares * 100 / 1024))))):
            if not (base / fname).exists() and not (base / "cgroup.controllers").exists():
                continue
            try:
                if base != root:  # v1: runc would create it with the first job; so may we
                    (base / name).mkdir(exist_ok=True)
                (base / name / fname).write_text(str(value))
                return
            except OSError as e:
                self.log.warning("docker executor: cannot set %s of %s: %s", fname, base / name, e)
                return

    def _reset_peak(self, key: str):
        """Start the cgroup's memory peak afresh at the job's assignment (cgroup v1)."""
        mem = self._cgroup_dir("memory", key)
        if mem is not None:
            try:
                (mem / "memory.max_usage_in_bytes").write_text("0")
            except OSError:
                pass

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
            if self._warm_eligible(spec):
                try:
                    warm = await self._call(self._assign_warm, spec)
                except Exception as e:  # the pool is an optimisation: fall back to cold
                    self.log.warning("job %s: warm pool failed, starting cold: %s", spec.job_id, e)
                self._ensure_refill()
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

    def _reader(self, job: _Job, fresh: bool, loop, queue: asyncio.Queue):
        """Thread: stream the container's stdout/stderr as lines onto the loop's queue."""
        api = self.client.api

        def put(item):
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody listens any more
                job.stop.set()
        logged = 0
        events = 0
        truncated = False
        buffers = {0: b"", 1: b""}
        before_job: collections.deque = collections.deque(maxlen=50)

        def emit(which, line: bytes):
            nonlocal logged, events, truncated
            if which == 0:
                event = parse_event(line)
                if event is not None and event.get("event") in _WARM_EVENTS:
                    if event["event"] == "assigned" and job.assigned is None:
                        job.assigned = event
                    return
            if job.job_line is not None and job.assigned is None:
                # A warm container's start-up output is not the job's; kept aside in
                # case the runner ends without ever taking the job (then it explains why).
                before_job.append(line)
                return
            if which == 0:
                if event is not None:
                    events += 1
                    if events <= self.event_limit or event.get("event") == "finished":
                        put(("event", event))
                    return
                which = 1  # stray stdout: keep it as a log line
            if logged >= self.log_limit:
                if not truncated:
                    truncated = True
                    put(("log", _TRUNCATED.format(limit=self.log_limit)))
                return
            logged += len(line) + 1
            put(("log", line.decode("utf-8", "replace")))

        def feed(which, data: bytes):
            # A line longer than the log limit is cut so the buffer cannot grow unbounded.
            buf = buffers[which] + data
            *lines, rest = buf.split(b"\n")
            for line in lines:
                emit(which, line)
            if len(rest) > max(self.log_limit, 1 << 20):
                emit(which, rest[: 1 << 20])
                rest = b""
            buffers[which] = rest

        try:
            if fresh and job.job_line is None:
                # Cold: attached before it starts, so nothing is written before we listen.
                stream = api.attach(job.container_id, stdout=True, stderr=True, stream=True,
                                    logs=False, demux=True)
                job.stream = stream
                if job.killed_for is None:
                    api.start(job.container_id)
                else:
                    stream.close()
            else:
                # Already running (warm), or found again after a restart: the daemon's log
                # from the start, then what follows until the container ends. (attach's
                # logs replay is not used: docker-py reads the hijacked socket past what
                # http.client buffered with the headers, which can lose the first bytes.)
                running = api.inspect_container(job.container_id)["State"].get("Running")
                stream = self._log_stream(job, follow=bool(running))
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
            for out, err in stream:
                if out:
                    feed(0, out)
                if err:
                    feed(1, err)
            for which in (0, 1):
                if buffers[which]:
                    emit(which, buffers[which])
            if job.assigned is None:
                for line in before_job:
                    put(("log", line.decode("utf-8", "replace")))
            put(("end", None))
        except Exception as e:  # the loop decides what an unreadable stream means
            put(("end", e))

    def _log_stream(self, job: _Job, follow: bool):
        """(stdout, stderr) chunks of the container's whole log, in order; with ``follow``,
        until the container ends. ``job.stream`` closes it."""
        api = self.client.api
        res = api._get(api._url("/containers/{0}/logs", job.container_id),
                       params={"stdout": 1, "stderr": 1, "follow": int(follow)}, stream=True)
        api._raise_for_status(res)
        job.stream = res
        if follow:  # a job may be silent for longer than the client's timeout
            api._disable_socket_timeout(api._get_raw_response_socket(res))
        raw = res.raw
        while True:
            header = raw.read(8)
            if len(header) < 8:
                return
            kind, length = struct.unpack(">BxxxL", header)
            data = b""
            while len(data) < length:
                more = raw.read(length - len(data))
                if not more:
                    return
                data += more
            yield (data, None) if kind == 1 else (None, data)

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
            if job.container_id and self._cgroup_dir("memory", job.cgroup_key) is None:
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
                started = _parse_time(attrs["State"].get("StartedAt", ""))
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
        started, finished = _parse_time(state.get("StartedAt", "")), _parse_time(state.get("FinishedAt", ""))
        used = Usage(
            peak_memory=usage.get("peak_memory"),
            cpu_seconds=usage.get("cpu_seconds"),
            wall_seconds=round(finished - started, 3) if started and finished and finished >= started else None,
        )
        measured = await self._call(self._cgroup_usage, job.cgroup_key)
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
        spec.workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile() as buf:
            for chunk in stream:
                buf.write(chunk)
            buf.seek(0)
            with tarfile.open(fileobj=buf, mode="r|") as tar:
                top = Path(self.workdir).name
                for member in tar:
                    parts = member.name.split("/", 1)
                    if parts[0] != top or len(parts) == 1:
                        continue
                    rel = parts[1]
                    if rel != OUTPUT_NOTEBOOK and rel != FILES_DIR and not rel.startswith(FILES_DIR + "/"):
                        continue
                    member.name = rel
                    # The job's files are untrusted: the data filter refuses absolute
                    # paths, '..', links pointing outside and device files.
                    tar.extract(member, spec.workdir, filter="data")

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
        self._cgroup_cleanup(key)

    # --- cgroups --------------------------------------------------------------------------
    def _cgroup_dir(self, controller: str, job_id: str) -> Optional[Path]:
        """The job's parent cgroup for a v1 controller (or the v2 tree), if readable here."""
        parent = self._job_cgroup_parent(job_id)
        if not parent:
            return None
        root = Path(self.cgroup_root)
        for base in (root / controller, root):
            path = base / parent.strip("/")
            if path.is_dir():
                return path
        return None

    def _cgroup_usage(self, job_id: str) -> dict:
        """Peak memory and cpu seconds of the job's parent cgroup (v1 or v2)."""
        out = {}
        mem = self._cgroup_dir("memory", job_id)
        if mem is not None:
            for name in ("memory.max_usage_in_bytes", "memory.peak"):
                value = _read_int(mem / name)
                if value is not None:
                    out["peak_memory"] = value
                    break
        cpu = self._cgroup_dir("cpuacct", job_id)
        if cpu is not None:
            value = _read_int(cpu / "cpuacct.usage")
            if value is not None:
                out["cpu_seconds"] = value / 1e9
            else:
                try:
                    for line in (cpu / "cpu.stat").read_text().splitlines():
                        if line.startswith("usage_usec "):
                            out["cpu_seconds"] = int(line.split()[1]) / 1e6
                except OSError:
                    pass
        return out

    def _cgroup_cleanup(self, job_id: str):
        """Remove the job's (now empty) parent cgroups; harmless when they are not ours."""
        parent = self._job_cgroup_parent(job_id)
        if not parent:
            return
        root = Path(self.cgroup_root)
        try:
            bases = [p for p in root.iterdir() if p.is_dir()] + [root]
        except OSError:
            return
        pending = [base / parent.strip("/") for base in bases]
        # Only empty cgroup directories can go (rmdir, never rm -r); the kernel may
        # answer EBUSY for a moment while it tears down the container's child cgroup.
        for attempt in range(20):
            left = []
            for path in pending:
                if not path.is_dir():
                    continue
                for sub in sorted(path.glob("*/"), reverse=True):
                    try:
                        sub.rmdir()
                    except OSError:
                        pass
                try:
                    path.rmdir()
                except OSError:
                    left.append(path)
            if not left:
                return
            pending = left
            time.sleep(0.05 * (attempt + 1))
        self.log.debug("job %s: cgroups left behind: %s", job_id, pending)

    def _sweep_cgroups(self):
        """Remove empty per-job cgroups of jobs that no longer have a container."""
        if not self.cgroup_parent:
            return
        try:
            alive = {
                _NAME_UNSAFE.sub("_", c["Labels"].get(LABEL_JOB, ""))
                for c in self.client.api.containers(all=True, filters={"label": LABEL_JOB})
            } | {
                c["Labels"].get(LABEL_WARM, "")
                for c in self.client.api.containers(all=True, filters={"label": LABEL_WARM})
            }
            root = Path(self.cgroup_root)
            for base in [p for p in root.iterdir() if p.is_dir()] + [root]:
                top = base / self.cgroup_parent.strip("/")
                if top.is_dir():
                    for path in top.iterdir():
                        if path.is_dir() and path.name not in alive:
                            try:
                                path.rmdir()
                            except OSError:
                                pass
        except Exception as e:  # housekeeping only
            self.log.debug("cgroup sweep: %s", e)

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


def _read_int(path: Path) -> Optional[int]:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


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


__all__ = ["DockerExecutor", "SandboxError"]
