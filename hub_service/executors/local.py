"""The local executor: the runner program as a subprocess of the service.

For development and single-user machines only: the job runs as the service's own user
with the service's view of the file system and network. Memory is enforced by watching
the process tree (not by the kernel), so a fast allocation can overshoot before it is
killed. The docker executor is the sandbox.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from typing import Optional

import psutil
from traitlets import Bool, Float, Unicode, default

from .base import (
    PACKAGES_SCRIPT,
    RUNNER_PATH,
    EventCallback,
    Executor,
    JobSpec,
    LogCallback,
    Outcome,
    Usage,
    decide_outcome,
    maybe_await,
    parse_event,
    python_executable,
)
from .streams import LogCap


#: where a runner goes among the service's processes: into the service's session, so its autogroup (Linux shares
#: the cpu between sessions first, and in a session of its own the runner's niceness would weigh against
#: nothing: a listing would wait for a core behind the jobs), leading a process group of its own (a signal to the
#: service's group, a terminal's ^C, does not reach the job). Python 3.10's Popen cannot make a group without
#: running code between fork and exec (no vfork then): there the runner has a session of its own.
RUNNER_GROUP = {"process_group": 0} if sys.version_info >= (3, 11) else {"start_new_session": True}

#: the runner at the idle policy from its first instruction (``idle_priority``): ``chrt`` (util-linux) takes it and
#: execs the runner, whose own start (the interpreter, its imports, its arguments: some 50 ms of cpu a job) ran at
#: the service's policy until the runner took it itself, as a drain's dispatch woke the service. Without
#: ``chrt`` the runner takes it itself, after its start.
CHRT = shutil.which("chrt")
IDLE_LAUNCH = [CHRT, "--idle", "0"] if CHRT else []

#: whether this kernel lists each task's children in /proc (CONFIG_PROC_CHILDREN); psutil finds them otherwise
PROC_CHILDREN = os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def tree(pid: int) -> list:
    """``pid`` and its descendants, parents first (``pid`` alone once it ended), each read from its parent's
    ``/proc/PID/task/TID/children``: psutil's ``children(recursive=True)`` reads the status of every
    process of the machine to find them, and the watcher samples each job's tree four times a second."""
    if not PROC_CHILDREN:
        try:
            return [pid] + [child.pid for child in psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return [pid]
    pids = [pid]
    for parent in pids:  # (the list grows as children are found)
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:  # it ended meanwhile: its children, if any, are orphans now
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    pids += map(int, f.read().split())
            except OSError:  # (a thread that ended)
                pass
    return pids


def kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant (a kernel leads a process group of its own), the descendants first."""
    for each in reversed(tree(pid)):
        try:
            psutil.Process(each).kill()
        except psutil.NoSuchProcess:
            pass


class _Watch:
    """Samples a process tree: peak memory, cpu seconds, and whether it broke its memory limit."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak = 0
        self.cpu = {}
        self.over_memory = False

    def sample(self, limit: Optional[int]) -> None:
        rss = 0
        for pid in tree(self.pid):
            try:
                proc = psutil.Process(pid)
                with proc.oneshot():
                    rss += proc.memory_info().rss
                    t = proc.cpu_times()
                    # own time only: every descendant is sampled itself, and a reaped one's
                    # time would otherwise count twice (its last sample + its parent's children_*)
                    self.cpu[proc.pid] = t.user + t.system
            except psutil.NoSuchProcess:
                pass
        self.peak = max(self.peak, rss)
        if limit and rss > limit:
            self.over_memory = True

    @property
    def cpu_seconds(self) -> float:
        return round(sum(self.cpu.values()), 3)


class LocalExecutor(Executor):
    """Runs each job as a local subprocess tree."""

    name = "local"

    runner_python = Unicode(
        help="""Python interpreter that runs the runner program.

        It needs papermill and ipykernel only; a lean venv starts kernels seconds faster
        than one that also holds JupyterLab. Defaults to the service's interpreter.""",
    ).tag(config=True)

    @default("runner_python")
    def _default_runner_python(self):
        return python_executable()

    sample_interval = Float(0.25, help="Seconds between samples of a job's memory and cpu use.").tag(config=True)

    enforce_memory = Unicode(
        "kill",
        help="What to do when a job's process tree exceeds its memory: 'kill' (reported as oom_killed) or 'ignore'.",
    ).tag(config=True)

    idle_priority = Bool(
        True,
        help="""Run jobs at the idle scheduling policy (SCHED_IDLE): they take only the cpu nothing else on the
        machine wants, so the Hub, its proxy and this service answer at once however busy jobs keep the cores.

        Off: jobs run 10 nice levels below the service, which then still gets nine tenths of a core it shares
        with them, but waits for a job's time slice to end at each wake-up. On, any busy process of the machine
        that is not idle (a user's server, another service) comes before every job, and a job's timeout runs
        meanwhile.""",
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._procs = {}
        self._killed_for = {}

    async def start(self) -> None:
        self.log.warning(
            "Using the LOCAL executor: jobs run as the service's own user, without a sandbox. "
            "Use the docker executor for a Hub shared with other people."
        )

    def health(self) -> dict:
        info = super().health()
        info["warning"] = "local executor: jobs are not sandboxed"
        return info

    async def packages(self, image=None) -> list:
        """The packages of ``runner_python``, the one environment this executor has (it runs no images)."""
        proc = await asyncio.create_subprocess_exec(self.runner_python, "-c", PACKAGES_SCRIPT,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        out, _ = await proc.communicate()
        return json.loads(out) if proc.returncode == 0 else []

    async def run(self, spec: JobSpec, on_event: EventCallback, on_log: LogCallback) -> Outcome:
        spec.files_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1", JUPYTER_PLATFORM_DIRS="1")
        # the service's Hub credentials are not the job's business
        for key in list(env):
            if key.startswith(("JUPYTERHUB_", "NOTEBOOK_JOBS_")):
                del env[key]
        started = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            # (no code runs between fork and exec, so the spawn is a vfork: the runner asks for its death signal)
            *(IDLE_LAUNCH if self.idle_priority else []),
            self.runner_python, str(RUNNER_PATH), *spec.runner_args(), "--parent", str(os.getpid()),
            *(["--idle"] if self.idle_priority else []),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL, cwd=str(spec.files_dir), env=env, **RUNNER_GROUP,
        )
        self._procs[spec.job_id] = proc
        watch = _Watch(proc.pid)
        final = {}
        tail = []

        async def read_events():
            async for line in proc.stdout:
                event = parse_event(line)
                if event is None:
                    continue
                if event["event"] == "finished":
                    final.update(event)
                await maybe_await(on_event(event))

        logs = LogCap(self.log_limit)

        async def read_logs():
            async for line in proc.stderr:
                text = line.decode("utf-8", "replace")
                tail[:] = (tail + [text])[-20:]
                text = logs.admit(text)
                if text is not None:  # past the cap: read on (the runner must not block), pass nothing
                    await maybe_await(on_log(text))

        async def watch_tree():
            limit = spec.memory if self.enforce_memory == "kill" else None
            while proc.returncode is None:
                # in a thread: listing a tree's children reads every process of the machine
                await asyncio.to_thread(watch.sample, limit)
                if watch.over_memory:
                    self._killed_for.setdefault(spec.job_id, "memory")
                    kill_tree(proc.pid)
                    return
                if time.monotonic() - started > spec.timeout:
                    self._killed_for.setdefault(spec.job_id, "timeout")
                    kill_tree(proc.pid)
                    return
                await asyncio.sleep(self.sample_interval)

        watcher = asyncio.ensure_future(watch_tree())
        try:
            await asyncio.gather(read_events(), read_logs())
            exit_code = await proc.wait()
        finally:
            watcher.cancel()
            if proc.returncode is None:  # the service is shutting down mid-job
                kill_tree(proc.pid)
            self._procs.pop(spec.job_id, None)
        killed_for = self._killed_for.pop(spec.job_id, None)
        used = Usage(watch.peak or None, watch.cpu_seconds, round(time.monotonic() - started, 3))
        return decide_outcome(
            final or None, exit_code,
            killed_for=killed_for if killed_for in ("timeout", "cancelled") else None,
            oom_killed=killed_for == "memory", used=used, stderr_tail="".join(tail),
        )

    async def cancel(self, job_id: str) -> bool:
        proc = self._procs.get(job_id)
        if proc is None or proc.returncode is not None:
            return False
        self._killed_for.setdefault(job_id, "cancelled")
        kill_tree(proc.pid)
        return True
