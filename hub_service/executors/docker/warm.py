"""The warm pool: runner containers started before their job exists.

papermill's start-up (imports, kernel start: ~0.75 s of cpu, over a second of wall
time, per job here) is paid before a job exists. The pool keeps ``size`` containers of
the runner started in warm mode (``runner.py --warm``: kernel started in the job's
fixed cwd, waiting for one JSON line on stdin), each created with the whole sandbox,
checked like any job container, with its own volume and cgroup.

:meth:`WarmPool.take` makes one the job's: the container is resized to the job's
limits (its memory; the cpu of its start-up, lowered to its allocation at its first cell as
a cold job's is) with an update whose result is read back and checked (a dropped limit:
the container is discarded and the job goes cold), given the job's cpu weight, and renamed
to the job's name (labels cannot change; the name is how the executor's
``running()``/``reattach()`` find it, so job ids that are not valid container names always
go cold). The job line then goes to its stdin (:func:`deliver`): Docker closes a
``StdinOnce`` stdin when the first writer detaches, so delivery is at most once. The inputs
travel in that line (:func:`inline_inputs`; the runner writes them itself) when its runner
said it reads them (its "ready" event, read while the update is made) and they are plain
files of at most :data:`INLINE_MAX` bytes; otherwise they go in with put_archive, before
the rename. Such a runner is also asked to send the job's outputs back as one event
(:data:`OUTPUTS_EVENT`, at most :data:`OUTPUTS_MAX` characters, all plain files), which the
executor writes out instead of copying them with get_archive: each archive call costs the
daemon ~50 ms however small the files. One container runs one job, never more. Its output,
cpu seconds and wall time leave the warm start-up out (:class:`Arrival`, from the runner's
"assigned" event), and its peak memory is reset when it takes the job (cgroup v1; under v2
the peak includes the start-up).

Idle warm containers carry a pool label and a name no job can have; the executor's
``running()`` ignores them, and :meth:`WarmPool.drain` removes them (at the service's
start and stop). They refill (:meth:`WarmPool.refill`) at a low cpu weight
(``cpu_shares``), with what the running jobs leave over, while the jobs run.

How many there are follows the demand forecast (:meth:`WarmPool.expect`): as many as the jobs it
expects soon (in the executor's ``warm_horizon``), between ``size`` and ``most``; idle ones past that
are removed.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import os
import socket
import threading
import time
from base64 import b64encode
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional
from uuid import uuid4

from ..base import FILES_DIR, INPUT_NOTEBOOK, OUTPUT_NOTEBOOK, PARAMETERS_FILE, JobSpec, Usage, parse_event
from .cgroups import Cgroups
from .gateway import (
    LABEL_INSTANCE,
    LABEL_WARM,
    Gateway,
    Names,
    SandboxError,
    WarmGone,
    safe_name,
    update_limits,
)
from .sandbox import Sandbox, cpu_shares, nano_cpus
from .transport import INPUT_FILES, inputs_tar

#: Runner events that are about the warm pool, not the job: never passed on.
WARM_EVENTS = ("ready", "assigned")
#: The field of a warm runner's "ready" event that says it writes the inputs its job line carries, and
#: sends its outputs back as an event when the line asks.
LINE_IO = "line_io"
#: The field of a warm runner's "ready" event that says it writes JOB_MARK to its stderr as it reads its line.
MARKS = "marks_stderr"
#: The line a warm runner that says MARKS writes to its stderr as it reads its job's line: on that
#: stream what precedes it is the start-up's output, what follows is the job's. The "assigned" event
#: cannot draw that line, being on the other stream: the daemon logs stdout and stderr from a reader
#: each, so a first line the notebook printed can be logged before it.
JOB_MARK = b"\x1enotebook-jobs: job line read"
#: The runner's event that carries a job's outputs (files, not progress: never passed on).
OUTPUTS_EVENT = "outputs"
#: The most bytes of inputs a job line carries (base64 makes them a third longer; runner.py reads at
#: most MAX_JOB_LINE); larger inputs go in with put_archive, whose daemon-side cost is fixed (~50 ms).
INLINE_MAX = 1 << 20
#: The longest "outputs" event a warm runner sends (characters: the files in base64, ~570 KB of them, and
#: their names; within the reader's MAX_LINE); larger outputs are copied out with get_archive, as a cold job's.
OUTPUTS_MAX = 768 << 10
#: The environment variable that asks a cold job's runner for that event too (runner.py's OUTPUTS_ENV), set to
#: OUTPUTS_MAX, where its inputs went in by archive (DockerExecutor._create): its outputs then need no get_archive
#: (about 0.1 s of the daemon's and the kernel's cpu, measured here). An older runner ignores it.
OUTPUTS_ENV = "NOTEBOOK_JOBS_OUTPUTS_MAX"


class Warm:
    """One warm-pool container: started, waiting for its job on stdin."""

    def __init__(self, key: str, container_id: str, volume: str):
        self.key = key
        self.container_id = container_id
        self.volume = volume
        self.created = time.monotonic()
        self.line_io = False  # taken: its runner reads inputs in its line and sends outputs as an event
        self.inputs: Optional[dict] = None  # taken: the inputs its job line carries (None: put_archive's)


@dataclass
class WarmSettings:
    """What the pool's containers are (the executor's warm_* traits)."""

    size: int  # the least the pool keeps (all it keeps without a forecast)
    image: str
    workdir: str
    kernel: str = "python3"
    cpu: float = 1.0
    memory: int = 512 << 20
    cpu_shares: int = 2
    most: int = 0  # the most it keeps when the forecast expects more jobs (0: size)


def job_line(spec: JobSpec, workdir: str, inputs: Optional[dict] = None, outputs: bool = False) -> bytes:
    """The job as the warm runner reads it on stdin (runner.py's JOB_KEYS), with the ``inputs`` it
    writes itself (:func:`inline_inputs`', runner.py's INPUT_KEYS) when given, and, with ``outputs``,
    asked to send its outputs back as an "outputs" event of up to OUTPUTS_MAX characters."""
    root = Path(workdir)
    job = {
        "input": str(root / INPUT_NOTEBOOK),
        "output": str(root / OUTPUT_NOTEBOOK),
        "parameters": str(root / PARAMETERS_FILE),
        "cwd": str(root / FILES_DIR),
    }
    if spec.kernel_name:
        job["kernel"] = spec.kernel_name
    job.update(inputs or {})
    if outputs:
        job["outputs_max"] = OUTPUTS_MAX
    return (json.dumps(job) + "\n").encode()


def inline_inputs(spec: JobSpec) -> Optional[dict]:
    """The job's inputs as its job line carries them: ``{"inputs": {name: base64}, "files": {...}}`` (the
    work directory's input notebook and parameters, and its files/, each by its plain name). None when
    files/ holds anything but regular files (a bundle's folders, links) or they are over INLINE_MAX bytes
    together: those go in with put_archive."""
    found = {"inputs": [spec.workdir / name for name in INPUT_FILES if (spec.workdir / name).exists()],
             "files": []}
    if spec.files_dir.is_dir():
        with os.scandir(spec.files_dir) as entries:
            for entry in entries:
                if not entry.is_file(follow_symlinks=False):
                    return None
                found["files"].append(Path(entry.path))
    if sum(path.stat().st_size for paths in found.values() for path in paths) > INLINE_MAX:
        return None
    return {key: {path.name: b64encode(path.read_bytes()).decode("ascii") for path in paths}
            for key, paths in found.items() if paths}


class Arrival:
    """A job's arrival in its container, as the runner's output tells it (the reader's).

    A warm runner started before its job existed: the pool's own events ("ready",
    "assigned") and its start-up output are not the job's, nor are the cpu and wall time
    it spent before the job's line arrived (its "assigned" event says both). Its stderr is
    the job's from the runner's JOB_MARK on (from its "assigned" event, for a runner whose
    "ready" does not say MARKS). A cold job has no line; the pool's events are dropped from
    its output all the same. A cold job whose container reads its line (``cold``: its inputs travel
    in it) started for that job: its start-up's output, cpu and time are the job's.
    """

    def __init__(self, line: Optional[bytes] = None, started_at: Optional[float] = None, cold: bool = False):
        self.line = line  # warm (or a cold job's line): the job, as the runner reads it on stdin
        self.cold = cold  # the line of a container started for its job: nothing of its output is held
        self.started_at = started_at  # warm, reattached: when the runner read it
        self.assigned: Optional[dict] = None  # the runner's "assigned" event
        self.marks = False  # warm: its runner marks its stderr (its "ready" says MARKS)
        self.begun = False  # warm: the job's own output has begun
        self.before: collections.deque = collections.deque(maxlen=50)  # warm: the start-up's output

    def holds(self, line: bytes, event: Optional[dict], stderr: bool = True) -> bool:
        """Whether an output line (``stderr``: from that stream) is not the job's: a pool event,
        the start-up's output, or the runner's JOB_MARK."""
        if event is not None and event.get("event") in WARM_EVENTS:
            # Only a warm runner's own, first events count: a cold job (or the notebook of a warm
            # one, which runs after them) printing one must not take time off its usage.
            if self.line is not None and self.assigned is None:
                if event["event"] == "ready":
                    self.marks = bool(event.get(MARKS))
                elif event["event"] == "assigned":
                    self.assigned = event
                    self.begun = self.begun or not self.marks
            return True
        if self.line is None:
            return False
        # Each stream in its own order: stderr is the job's from the mark, stdout from "assigned"
        # (a "started" event can be logged before the mark, as a printed line before "assigned").
        if stderr and not self.begun and line == JOB_MARK:
            self.begun = True
            return True
        if self.cold:
            return False
        if (stderr and not self.begun) or (not stderr and self.assigned is None):
            # Kept aside in case the runner ends without ever taking the job (then it explains why).
            self.before.append(line)
            return True
        return False

    def unclaimed(self) -> list:
        """The start-up's output, when the job never arrived."""
        return list(self.before) if self.assigned is None else []

    def exclude_startup(self, used: Usage, finished: Optional[float]) -> None:
        """Take the warm start-up out of the job's cpu seconds and wall time."""
        if self.assigned is None or self.cold:
            return
        warm_cpu = float(self.assigned.get("warm_cpu_seconds") or 0.0)
        if used.cpu_seconds is not None:
            used.cpu_seconds = round(max(0.0, used.cpu_seconds - warm_cpu), 3)
        at = self.assigned.get("time")
        if at and finished and finished >= at:
            used.wall_seconds = round(finished - at, 3)


def deliver(api, container_id: str, line: bytes) -> None:
    """Write the job line to a warm runner's stdin, then detach (which closes it: at most once)."""
    sock = api.attach_socket(container_id, params={"stdin": 1, "stream": 1})
    raw = getattr(sock, "_sock", sock)
    try:
        raw.sendall(line)
        raw.shutdown(socket.SHUT_WR)
    finally:
        raw.close()
        sock.close()


def logged_event(api, container_id: str, name: str) -> Optional[dict]:
    """The runner's first event called ``name`` in the container's log ("ready", "assigned"), if any."""
    return logged_events(api, container_id, (name,))[name]


def logged_events(api, container_id: str, names: tuple) -> dict:
    """The runner's first event of each of ``names`` in the container's log (None: not there), in one read."""
    found: dict = dict.fromkeys(names)
    try:
        out = api.logs(container_id, stdout=True, stderr=False)
    except Exception:
        return found
    for line in out.splitlines():
        event = parse_event(line)
        if event and event.get("event") in found and found[event["event"]] is None:
            found[event["event"]] = event
    return found


class WarmPool:
    """Idle warm containers of one instance, oldest first; thread-safe.

    Each is made and checked with the executor's ``sandbox``, like a cold job's container.
    """

    def __init__(self, settings: WarmSettings, gateway: Gateway, names: Names, cgroups: Cgroups,
                 sandbox: Sandbox, log: Optional[logging.Logger] = None):
        self.settings = settings
        self.gateway = gateway
        self.names = names
        self.cgroups = cgroups
        self.sandbox = sandbox
        self.log = log or logging.getLogger(__name__)
        self.idle: collections.deque = collections.deque()  # of Warm, oldest first
        self._lock = threading.Lock()
        self._assigning: set = set()  # pool keys being turned into a job's container
        self._refill_task: Optional[asyncio.Task] = None
        self._trim_task: Optional[asyncio.Task] = None
        #: reads a taken container's log while the take resizes it (the calls are independent)
        self._side = ThreadPoolExecutor(4, thread_name_prefix="warm-take")
        #: how many it keeps now: ``size`` until the forecast says otherwise (:meth:`expect`)
        self.target = settings.size
        self.stopping = False
        self.capable = False  # the image's runner has --warm (the executor checks at start)

    def eligible(self, spec: JobSpec) -> bool:
        """Whether a job may take a warm container at all."""
        # GPUs cannot be added by an update; a job id that is not a valid container name
        # could not be found again by its name after a restart.
        return (self.target > 0 and self.capable and not self.stopping and not spec.gpu
                and safe_name(spec.job_id) == spec.job_id)

    def count(self) -> int:
        """How many warm containers wait in the pool (ready or still starting up)."""
        with self._lock:
            return len(self.idle)

    # --- making and removing (sync: run them through the gateway) ------------------------
    def _spec(self, key: str) -> JobSpec:
        """The limits of an idle warm container (its key stands in for the job id)."""
        s = self.settings
        return JobSpec(job_id=key, workdir=Path(s.workdir), cpu=s.cpu, memory=s.memory)

    def create(self) -> Warm:
        """Create, check and start one warm container (sync)."""
        s, client = self.settings, self.gateway.client
        key = "warm-" + uuid4().hex[:12]
        name = self.names.warm_prefix + key
        vname = name + "-work"
        labels = self.names.warm_labels(key)
        spec = self._spec(key)
        entry = Warm(key, "", vname)
        client.volumes.create(name=vname, labels=labels)
        try:
            # stdin_open without detach gives StdinOnce: the first writer's detach closes
            # the runner's stdin, so the job line is delivered at most once.
            container = client.containers.create(
                s.image,
                command=["--warm", "--cwd", str(Path(s.workdir) / FILES_DIR), "--kernel", s.kernel],
                name=name,
                labels=labels,
                stdin_open=True,
                detach=False,
                **self.sandbox.create_kwargs(spec, vname, self.names.job_cgroup(key)),
            )
            entry.container_id = container.id
            problems = self.sandbox.check(spec, container.attrs)
            if not (container.attrs.get("Config") or {}).get("StdinOnce"):
                problems.append("StdinOnce is not set")
            if problems:
                raise SandboxError("refusing to start a warm container: the daemon dropped limits: "
                                   + "; ".join(problems))
            container.start()
        except BaseException:
            self.discard(entry)
            raise
        if s.cpu_shares:
            self.cgroups.set_shares(key, s.cpu_shares)
        return entry

    def discard(self, entry: Warm) -> None:
        """Remove a warm container, its volume and its cgroup (sync)."""
        import docker

        api = self.gateway.api
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
        self.cgroups.cleanup(entry.key)

    def drain(self) -> None:
        """Remove every idle warm container of this instance: ours, or a dead service's (sync)."""
        import docker

        with self._lock:
            entries = list(self.idle)
            self.idle.clear()
        for entry in entries:
            self.discard(entry)
        api = self.gateway.api
        prefix = self.names.warm_prefix
        filters = {"label": [f"{LABEL_INSTANCE}={self.names.instance}", LABEL_WARM]}
        for c in api.containers(all=True, filters=filters):
            key = (c.get("Labels") or {}).get(LABEL_WARM, "")
            names = [n.lstrip("/") for n in c.get("Names") or []]
            with self._lock:
                busy = key in self._assigning
            # A renamed one carries a job now: the executor's running()/reattach() own it.
            if busy or not any(n.startswith(prefix) for n in names):
                continue
            volumes = [m.get("Name") for m in c.get("Mounts") or [] if m.get("Type") == "volume"]
            self.discard(Warm(key, c["Id"], volumes[0] if volumes else ""))
        # Volumes whose warm container never came to be (a crash between the two creates).
        try:
            vols = api.volumes(filters=filters)
        except docker.errors.APIError:
            return
        for v in (vols or {}).get("Volumes") or []:
            if v["Name"].startswith(prefix):
                with self._lock:
                    busy = (v.get("Labels") or {}).get(LABEL_WARM) in self._assigning
                if busy:
                    continue
                try:
                    api.remove_volume(v["Name"])  # not forced: a volume in use stays
                except docker.errors.APIError:
                    pass

    def ready_count(self) -> int:
        """How many idle warm containers have their kernel up (sync)."""
        with self._lock:
            ids = [e.container_id for e in self.idle]
        return sum(logged_event(self.gateway.api, cid, "ready") is not None for cid in ids)

    # --- taking one ----------------------------------------------------------------------
    def take(self, spec: JobSpec, cname: str) -> Optional[Warm]:
        """Make a warm container the job's (sync): resize it, check it, copy the inputs in (unless its
        job line carries them: ``Warm.inputs``), rename it to ``cname``. None when no warm container could
        be used."""
        with self._lock:
            if not self.idle:
                return None
            entry = self.idle.popleft()
            self._assigning.add(entry.key)
        try:
            self._prepare(spec, entry, cname)
            return entry
        except Exception as e:
            # Gone, limits not applicable (e.g. less memory than it already uses; under
            # cgroup v2 such an update kills it) or not applied: this job starts cold,
            # and never tries a second warm container that would fare the same.
            self.log.warning("job %s: cannot use warm container %s, starting cold: %s",
                             spec.job_id, entry.key, e)
            self.discard(entry)
            return None
        finally:
            with self._lock:
                self._assigning.discard(entry.key)

    def _prepare(self, spec: JobSpec, entry: Warm, cname: str) -> None:
        import docker

        api = self.gateway.api
        # Whether its runner writes the inputs of its line ("ready" says so; a runner still starting up,
        # or of an older image, gets them with put_archive): read while it is resized.
        ready = self._side.submit(logged_event, api, entry.container_id, "ready")
        try:
            update_limits(api, entry.container_id, int(spec.memory), nano_cpus(self.sandbox.start_cpu(spec)))
            attrs = api.inspect_container(entry.container_id)
        except docker.errors.NotFound as e:
            raise WarmGone("gone") from e
        if not (attrs.get("State") or {}).get("Running"):
            raise WarmGone(f"not running (exit code {(attrs.get('State') or {}).get('ExitCode')})")
        problems = self.sandbox.check(spec, attrs)
        if problems:
            raise SandboxError("the daemon did not apply the job's limits: " + "; ".join(problems))
        entry.line_io = bool((ready.result() or {}).get(LINE_IO))
        entry.inputs = inline_inputs(spec) if entry.line_io else None
        if entry.inputs is None:
            with inputs_tar(spec, *self.sandbox.uid_gid) as tar:
                api.put_archive(entry.container_id, self.settings.workdir, tar)
        self.cgroups.reset_peak(entry.key)
        self.cgroups.set_shares(entry.key, cpu_shares(spec.cpu))  # the job's weight, as a cold one's
        # Last: from here on the container is the job's (running() lists it by this name).
        api.rename(entry.container_id, cname)

    # --- sizing and refilling (on the event loop) ---------------------------------------
    def expect(self, jobs: Optional[float]) -> int:
        """Keep a container for each of ``jobs`` expected soon (the demand forecast's, None: no forecast),
        between ``size`` and ``most``: the pool grows now, and idle containers past it are removed."""
        s = self.settings
        wanted = s.size if jobs is None else min(max(s.size, math.ceil(jobs - 1e-9)), max(s.most, s.size))
        if wanted != self.target:
            self.log.info("docker executor: warm pool of %d (was %d) for %s jobs expected", wanted, self.target,
                          "no" if jobs is None else f"{jobs:.2f}")
            self.target = wanted
            self.ensure_refill()
            if self.count() > wanted and (self._trim_task is None or self._trim_task.done()):
                self._trim_task = asyncio.ensure_future(self.gateway.call(self.trim))
        return wanted

    def trim(self) -> None:
        """Remove the idle containers past the target, newest first (sync)."""
        while True:
            with self._lock:
                if len(self.idle) <= self.target:
                    return
                entry = self.idle.pop()
            self.discard(entry)

    def ensure_refill(self) -> None:
        """Start the background refill of the pool unless it runs already."""
        if self.target <= 0 or self.stopping or not self.capable:
            return
        if self._refill_task is None or self._refill_task.done():
            self._refill_task = asyncio.ensure_future(self.refill())

    async def refill(self) -> None:
        """Create warm containers, one at a time, until the pool is full."""
        failures = 0
        while not self.stopping:
            with self._lock:
                if len(self.idle) >= self.target:
                    return
            try:
                entry = await self.gateway.call(self.create)
            except Exception as e:
                failures += 1
                self.log.warning("docker executor: cannot create a warm container (%d): %s", failures, e)
                await asyncio.sleep(min(60.0, 0.5 * 2 ** failures))
                continue
            failures = 0
            if self.stopping:
                await self.gateway.call(self.discard, entry)
                return
            with self._lock:
                self.idle.append(entry)

    async def stop_refill(self) -> None:
        """Stop refilling; waits for the container being created (up to a minute)."""
        self.stopping = True
        self._side.shutdown(wait=False)  # (no take follows: a stopping pool is eligible for none)
        task, self._refill_task = self._refill_task, None
        if task is not None and not task.done():
            # The refill ends after the container it is creating (it checks stopping).
            try:
                await asyncio.wait_for(asyncio.shield(task), 60)
            except (asyncio.TimeoutError, asyncio.CancelledError, Exception):
                task.cancel()

    async def wait_ready(self, timeout: float = 60.0) -> bool:
        """Wait until the pool is full of warm containers whose kernel is up."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            size = self.target
            if self.count() >= size and await self.gateway.call(self.ready_count) >= size:
                return True
            self.ensure_refill()
            await asyncio.sleep(0.1)
        return False
