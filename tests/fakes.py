"""An executor in the test's own process: JobManager's flow without Docker, papermill or a process.

:class:`FakeExecutor` honours ``hub_service.executors.base.Executor`` as the real backends do:
``run`` reads the job's work directory, feeds the runner's events (the same kinds, in the same
order, ``runner.py`` prints) and log lines to the callbacks, writes an output notebook, and
returns the :class:`Outcome` that ``decide_outcome`` -- the real one -- makes of it; ``cancel``
makes the pending ``run`` return a cancelled outcome; a durable one lists the jobs it holds in
``running()`` and follows them with ``reattach()``. What each job does is a :class:`Script`,
set per job id before the job is dispatched.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass
from typing import Optional

import nbformat

from hub_service.executors.base import Executor, JobSpec, Outcome, Usage, decide_outcome, maybe_await


@dataclass
class Script:
    """What one job does in the fake runner."""

    #: the code cell (1-based) that raises: the job fails with a cell error there
    fail_at: Optional[int] = None
    #: the code cell (1-based) the job waits in until :meth:`FakeExecutor.release` or a cancel
    hold_at: Optional[int] = None
    #: what it prints (its log)
    log: tuple = ("hello from the job\n",)
    #: the code cell (1-based) in which the job runs out of memory: OOM-killed there
    oom_at: Optional[int] = None
    #: raised by run() instead of running: a backend that fails
    error: Optional[Exception] = None
    #: how many of its runs come back before they began (a node gone): failed, and to be queued again
    lost_before_start: int = 0
    #: what the run reports it used when it ends (none by default)
    used: Optional[Usage] = None


class FakeExecutor(Executor):
    """Runs a job's :class:`Script` on the event loop; remembers what it was asked."""

    name = "fake"

    def __init__(self, *, durable: bool = False, gpus: int = 0, held=(), **kwargs):
        super().__init__(**kwargs)
        self.durable = durable
        self.gpus = gpus
        self.scripts: dict = {}  # job id -> Script (none: a job that succeeds)
        self.held = set(held)  # job ids whose sandbox outlives the service (durable only)
        self.ran: list = []  # the specs run() was given, in order
        self.reattached: list = []  # the specs reattach() was given
        self.removed: list = []  # job ids remove() was given
        self.holding: dict = {}  # job id -> set when the job waits in its hold_at cell
        self._go: dict = {}  # job id -> set to let a held job go on
        self._cancelled: set = set()

    def gpu_count(self) -> int:
        return self.gpus

    def release(self, job_id: str) -> None:
        """Let a job waiting in its ``hold_at`` cell go on."""
        self._go.setdefault(job_id, asyncio.Event()).set()

    async def run(self, spec: JobSpec, on_event, on_log) -> Outcome:
        self.ran.append(spec)
        return await self._play(spec, on_event, on_log)

    async def reattach(self, spec: JobSpec, on_event, on_log) -> Outcome:
        if spec.job_id not in self.held:
            raise RuntimeError(f"fake executor does not hold job {spec.job_id}")
        self.reattached.append(spec)
        try:
            return await self._play(spec, on_event, on_log)
        finally:
            self.held.discard(spec.job_id)  # collected, as a container is once followed to its end

    async def cancel(self, job_id: str) -> bool:
        if job_id not in self._go:
            return False
        self._cancelled.add(job_id)
        self._go[job_id].set()
        return True

    async def running(self) -> list:
        return sorted(self.held) if self.durable else []

    async def remove(self, job_id: str) -> None:
        self.removed.append(job_id)
        self.held.discard(job_id)

    async def _play(self, spec: JobSpec, on_event, on_log) -> Outcome:
        script = self.scripts.get(spec.job_id, Script())
        if script.error is not None:
            raise script.error
        if script.lost_before_start:
            script.lost_before_start -= 1
            return Outcome("failed", "infrastructure", "its node went away before it began", requeue=True)
        go = self._go.setdefault(spec.job_id, asyncio.Event())
        try:
            nb = nbformat.read(str(spec.input_path), as_version=4)
            code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
            await maybe_await(on_event({"event": "started", "cells_total": len(code)}))
            for line in script.log:
                await maybe_await(on_log(line))
            final, done = {"event": "finished", "status": "succeeded"}, 0
            for position, index in enumerate(code, 1):
                await maybe_await(on_event({"event": "cell_started", "cell": index}))
                if position == script.hold_at:
                    self.holding.setdefault(spec.job_id, asyncio.Event()).set()
                    await go.wait()
                    if spec.job_id in self._cancelled:  # killed in this cell, as a container would be
                        self._write_output(spec)
                        return decide_outcome(None, -9, killed_for="cancelled")
                if position == script.oom_at:  # the kernel kills it mid-cell, as a cgroup would
                    self._write_output(spec)
                    return decide_outcome(None, 137, oom_killed=True)
                ok = position != script.fail_at
                done += ok
                await maybe_await(on_event({"event": "cell_finished", "cell": index, "cells_done": done,
                                            "status": "ok" if ok else "error"}))
                if not ok:
                    final = {"event": "finished", "status": "failed", "error": {
                        "reason": "cell_error", "message": "ValueError: as the script says", "cell": index}}
                    break
            self._write_output(spec)
            await maybe_await(on_event(final))
            return decide_outcome(final, 0 if final["status"] == "succeeded" else 1, used=script.used)
        finally:
            self._go.pop(spec.job_id, None)
            self._cancelled.discard(spec.job_id)

    @staticmethod
    def _write_output(spec: JobSpec) -> None:
        """The output notebook papermill would leave (the input, as far as the job got)."""
        shutil.copyfile(spec.input_path, spec.output_path)
