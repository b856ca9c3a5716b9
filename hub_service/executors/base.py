"""The executor interface: where and how a job's runner program runs.

An executor knows nothing of users, queues or the store. The dispatcher only decides
which queued jobs may start and with what allocation; ``JobManager`` (``jobs.py``)
then prepares the job's work directory, builds its :class:`JobSpec` (what to run, with
which limits: ``JobManager.spec_for``) and calls ``run`` with two callbacks, or
``reattach`` after a restart. The executor starts the runner program
(``hub_service/runner.py``, the same file the runner image carries) wherever it runs
jobs, feeds every JSON event the runner prints to ``on_event`` and every log line to
``on_log`` (at most ``log_limit`` bytes of log, capped by :mod:`.streams`), enforces
the deadline, and returns one :class:`Outcome` when the job has ended. ``cancel``
makes the pending ``run`` return an outcome with reason ``cancelled``.

Backends whose jobs outlive the service process (docker) list them in ``running()``
and follow one to its end with ``reattach()``, so a restarted service loses nothing.

Backends are found by entry point (group ``notebook_jobs.executors``), the way
JupyterHub finds spawners: ``c.NotebookJobs.executor_class = "docker"``.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Awaitable, Callable, Optional, Union

from traitlets import Integer
from traitlets.config import LoggingConfigurable

from ..gpus import Gpus
from ..states import REASONS, Reason, Status

#: The runner program. It imports only papermill/nbformat, so it can run in a lean
#: interpreter (the runner image, or a venv without the service's dependencies).
RUNNER_PATH = Path(__file__).resolve().parent.parent / "runner.py"

# Names of the files a job's work directory holds (host side).
INPUT_NOTEBOOK = "input.ipynb"
OUTPUT_NOTEBOOK = "output.ipynb"
METRICS_FILE = "metrics.json"  # what the notebook reported, written by the runner beside the output notebook
PARAMETERS_FILE = "parameters.json"
FILES_DIR = "files"  # the job's cwd: data files of a bundle, anything the notebook writes

EventCallback = Callable[[dict], Union[None, Awaitable[None]]]
LogCallback = Callable[[str], Union[None, Awaitable[None]]]


class Timeline:
    """When one job reached each step of its path, to find where its time goes (``bench/bench_phases.py``).

    Marks are monotonic seconds, in the order the steps happened; the runner's events carry
    the epoch time they were written at, which :meth:`mark_wall` puts on the same clock.
    Kept in memory for the job's life only, and logged once at debug level when it ends.
    """

    def __init__(self):
        self.marks: list = []  # (step, monotonic seconds)

    def mark(self, step: str) -> None:
        """The job reached ``step`` now (any thread)."""
        self.marks.append((step, time.monotonic()))

    def mark_wall(self, step: str, epoch: object) -> None:
        """The job reached ``step`` at ``epoch`` (a runner event's time; now when it has none)."""
        late = time.time() - epoch if isinstance(epoch, (int, float)) and not isinstance(epoch, bool) else 0.0
        self.marks.append((step, time.monotonic() - min(max(late, 0.0), 60.0)))

    def phases(self) -> dict:
        """Seconds from each step to the next, named by the step it ended at (the first step starts the clock)."""
        out, last = {}, None
        for step, at in self.marks:
            if last is not None:
                out[step] = round(out.get(step, 0.0) + at - last, 4)
            last = at
        return out


@dataclass
class JobSpec:
    """Everything an executor needs to run one job; limits are already clamped."""

    job_id: str
    workdir: Path
    user: str = ""
    parameters: dict = field(default_factory=dict)
    cpu: float = 1.0
    memory: int = 1 << 30  # bytes
    gpu: int = 0
    #: the GPUs (NVML indices) the dispatcher gave the job, where the backend hands GPUs out by id
    gpu_devices: list = field(default_factory=list)
    timeout: float = 3600.0  # seconds of wall time
    kernel_name: Optional[str] = None
    #: the image of the job's environment (None: the executor's own) and the packages it brings on top
    image: Optional[str] = None
    requirements: tuple = ()
    #: where the executor marks its own steps (taken, started, collected, removed)
    timeline: Timeline = field(default_factory=Timeline, repr=False, compare=False)

    @property
    def input_path(self) -> Path:
        return self.workdir / INPUT_NOTEBOOK

    @property
    def output_path(self) -> Path:
        return self.workdir / OUTPUT_NOTEBOOK

    @property
    def files_dir(self) -> Path:
        return self.workdir / FILES_DIR

    def runner_args(self, root: Union[str, Path, None] = None) -> list:
        """Arguments for runner.py, with the work directory seen at ``root``."""
        root = Path(root) if root is not None else self.workdir
        args = [
            "--input", str(root / INPUT_NOTEBOOK),
            "--output", str(root / OUTPUT_NOTEBOOK),
            "--parameters", str(root / PARAMETERS_FILE),
            "--cwd", str(root / FILES_DIR),
        ]
        if self.kernel_name:
            args += ["--kernel", self.kernel_name]
        return args


@dataclass
class Usage:
    """What a job really used: the demand model's training data."""

    peak_memory: Optional[int] = None  # bytes
    cpu_seconds: Optional[float] = None
    wall_seconds: Optional[float] = None

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class Outcome:
    """How a job ended. ``reason`` is None exactly when ``status`` is succeeded."""

    status: str  # succeeded | failed | cancelled
    reason: Optional[str] = None
    message: str = ""
    cell: Optional[int] = None
    exit_code: Optional[int] = None
    used: Usage = field(default_factory=Usage)
    #: when the job ended (epoch seconds), where the backend knows it better than "now"
    finished: Optional[float] = None
    #: the job never began (its node went away first): the flow queues it again, once, instead of failing it
    requeue: bool = False


def parse_event(line: Union[str, bytes]) -> Optional[dict]:
    """One runner stdout line as an event dict, or None when it is not an event."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


#: how long a metric's name may be (the runner's MAX_METRIC_NAME)
METRIC_NAME_LIMIT = 100


def parse_metric(event: dict) -> Optional[tuple]:
    """A runner's "metric" event as (step, {name: value}), or None when it is not a well-formed one.

    The runner checks reports already; this is the service's own check of what it stores and
    streams: a step that is an integer from 0, names of 1 to 100 printable characters, finite
    numbers (the event stream's JSON has no NaN).
    """
    step, values = event.get("step"), event.get("values")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0 or step >= 2**63:
        return None
    if not isinstance(values, dict) or not values:
        return None
    clean = {}
    for name, value in values.items():
        if not (isinstance(name, str) and 0 < len(name) <= METRIC_NAME_LIMIT and name.isprintable()):
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        clean[name] = float(value)
    return step, clean


def decide_outcome(
    final_event: Optional[dict],
    exit_code: Optional[int],
    *,
    killed_for: Optional[str] = None,
    oom_killed: bool = False,
    used: Optional[Usage] = None,
    stderr_tail: str = "",
) -> Outcome:
    """Combine what the runner said, how it exited and why we killed it into one Outcome.

    Our own kill (timeout, cancel) wins over what the runner managed to say, then the
    kernel's OOM verdict, then the runner's final event; a runner that died without a
    final event is an infrastructure failure with its last stderr as the message.
    """
    used = used or Usage()
    if killed_for == Reason.CANCELLED:
        return Outcome(Status.CANCELLED.value, Reason.CANCELLED.value, "cancelled by request",
                       exit_code=exit_code, used=used)
    if killed_for == Reason.TIMEOUT:
        return Outcome(Status.FAILED.value, Reason.TIMEOUT.value, "job exceeded its time limit",
                       exit_code=exit_code, used=used)
    if oom_killed:
        return Outcome(Status.FAILED.value, Reason.OOM_KILLED.value,
                       "job exceeded its memory limit and was killed", exit_code=exit_code, used=used)
    if final_event and final_event.get("event") == "finished":
        status = final_event.get("status")
        if status == Status.SUCCEEDED and exit_code in (0, None):
            return Outcome(Status.SUCCEEDED.value, exit_code=exit_code, used=used)
        err = final_event.get("error") or {}
        reason = err.get("reason") if err.get("reason") in REASONS else Reason.CELL_ERROR.value
        return Outcome(Status.FAILED.value, reason, err.get("message", ""), err.get("cell"), exit_code, used)
    # No final word from the runner. A kernel killed by the OOM killer inside a
    # memory-limited process group shows up as SIGKILL (-9 / 137).
    message = f"runner exited with code {exit_code} before finishing"
    if stderr_tail:
        message += ": " + stderr_tail.strip()[-500:]
    return Outcome(Status.FAILED.value, Reason.INFRASTRUCTURE.value, message, exit_code=exit_code, used=used)


class Executor(LoggingConfigurable):
    """Base class of execution backends; subclasses implement ``run`` and ``cancel``."""

    #: short name shown in /health and stored on each job
    name = "base"

    #: whether jobs survive a restart of the service (then running/reattach work)
    durable = False

    #: whether jobs run in images: an environment's own, or one derived with a job's requirements
    runs_images = False

    log_limit = Integer(
        2 << 20,
        help="Most bytes of a job's log (its stderr) passed on to the service and kept; the "
        "rest is dropped with one note, so a job that floods its output floods neither the "
        "service nor its disk. The one log cap, for every executor.",
    ).tag(config=True)

    async def start(self) -> None:
        """Prepare the backend (connect, check images); raise if it cannot run jobs."""

    async def stop(self) -> None:
        """Release the backend's resources when the service shuts down."""

    def health(self) -> dict:
        """What /health shows about this backend."""
        return {"name": self.name, "durable": self.durable, "gpus": self.gpu_count()}

    def gpu_count(self) -> int:
        """How many GPUs one job may request on this backend."""
        gpus = self.gpu_inventory()
        return len(gpus.devices) if gpus else 0

    def gpu_where(self) -> str:
        """Where the GPUs :meth:`gpu_count` counts are, in words, when not simply on this backend."""
        return ""

    def gpu_inventory(self) -> Optional[Gpus]:
        """The GPUs this backend hands out by device id (the dispatcher picks which job gets which);
        None: it hands out none that way."""
        return None

    def capacity(self) -> Optional[dict]:
        """``{"cpu", "memory"}`` the backend itself has (a swarm's nodes); None: the dispatcher's config."""
        return None

    def expect(self, jobs_per_hour: Optional[float]) -> None:
        """The demand forecast's jobs per hour now (None: no forecast), for a backend that prepares for them
        (the docker executor's warm pool); nothing by default."""

    def nodes(self) -> list:
        """The machines jobs run on, for the admin (capacity, labels, health, jobs); [] when just one."""
        return []

    async def packages(self, image: Optional[str]) -> list:
        """The Python packages jobs in ``image`` can import (``[{"name", "version"}]``)."""
        return []

    async def run(self, spec: JobSpec, on_event: EventCallback, on_log: LogCallback) -> Outcome:
        """Run one job to its end and say how it ended."""
        raise NotImplementedError

    async def cancel(self, job_id: str) -> bool:
        """Stop a running job; its ``run`` returns a ``cancelled`` outcome. False if unknown."""
        raise NotImplementedError

    async def running(self) -> list:
        """Ids of jobs the backend still holds (running or ended but not collected)."""
        return []

    async def reattach(self, spec: JobSpec, on_event: EventCallback, on_log: LogCallback) -> Outcome:
        """Follow a job found by ``running()`` to its end, as ``run`` would."""
        raise NotImplementedError(f"{self.name} executor cannot reattach")

    async def remove(self, job_id: str) -> None:
        """Forget a job the store does not know (an orphan) or no longer needs."""


async def maybe_await(value):
    """Await ``value`` when a callback returned an awaitable."""
    if hasattr(value, "__await__"):
        return await value
    return value


#: what a Python prints of the packages it has (``pip list --format json`` without pip, which images may lack)
PACKAGES_SCRIPT = ("import importlib.metadata as m, json; print(json.dumps(sorted(({'name': d.metadata['Name'], "
                   "'version': d.version} for d in m.distributions()), key=lambda p: p['name'].lower())))")


def python_executable() -> str:
    """The interpreter that runs the service (a default for the local runner)."""
    return sys.executable
