"""CPU-heavy work in helper processes: nbconvert renders and the demand model.

Rendering a notebook or fitting a model would block the Tornado loop for hundreds of
milliseconds and keep scikit-learn, pandas and nbconvert (~150 MB) resident in the
service. Worker processes do it instead, one per kind of work so that no kind waits
behind another: sizing a new job (milliseconds) must not queue behind a render or a
retraining. Retraining runs in a process of its own that exits afterwards; the sizing
worker notices the new version on disk and loads it.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

_sizers = {}


def _sizer(model_dir: str, policy: dict):
    """This process's Sizer for ``model_dir`` under the admin's ``policy`` (its keyword
    arguments: bounds, cold_start, timeout_floor), reloaded when a newer version was saved."""
    from demand.sizing import Sizer
    from demand.registry import versions

    key = (model_dir, repr(sorted(policy.items())))
    newest = (versions(model_dir) or [None])[-1]
    sizer, seen = _sizers.get(key, (None, None))
    if sizer is None or newest != seen:  # (an unreadable newest version is not retried each call)
        sizer = Sizer(model_dir, **policy)
        _sizers[key] = (sizer, newest)
    return sizer


def render(notebook_path: str, fmt: str) -> bytes:
    from .outputs import render as _render

    return _render(Path(notebook_path), fmt)


def size(model_dir: str, policy: dict, job: dict, history: list, cpu_share=None) -> dict:
    return _sizer(model_dir, policy).size(job, history, cpu_share=cpu_share)


def resize_siblings(model_dir: str, policy: dict, killed: dict, siblings: list, history: list) -> list:
    return _sizer(model_dir, policy).resize_siblings(killed, siblings, history)


def resize_queued(model_dir: str, policy: dict, queued: list, history: list, cpu_share=None) -> list:
    return _sizer(model_dir, policy).resize_queued(queued, history, cpu_share=cpu_share)


def retrain(model_dir: str, policy: dict, history: list) -> dict:
    return _sizer(model_dir, policy).retrain(history)


def retrain_due(model_dir: str, policy: dict, n_succeeded: int) -> bool:
    return _sizer(model_dir, policy).retrain_due(n_succeeded)


def info(model_dir: str, policy: dict) -> dict:
    return _sizer(model_dir, policy).info()


def report(model_dir: str, policy: dict, history: list) -> dict:
    """The next 24 hours' load forecast, the sizing's realised slack and kill rates, and
    the scoreboard: every policy scored on the finished jobs, and which one sizes whose."""
    from demand.report import realised

    sizer = _sizer(model_dir, policy)
    return {"forecast_next_24h": sizer.forecast(history), "realised": realised(history),
            "scoreboard": sizer.scoreboard(history)}


def load_factor(model_dir: str, policy: dict, now: float, capacity: dict) -> dict:
    """The hour's load (demand.sizing's), and the jobs the forecast expects in it (``jobs_per_hour``,
    which the warm pool is sized from) once a model is trained."""
    sizer = _sizer(model_dir, policy)
    load = sizer.load_factor(now, capacity)
    if sizer.bundle is not None:
        from demand.forecast import hour_of_week

        load["jobs_per_hour"] = float(sizer.bundle.jobs_forecast.profile[hour_of_week(now)])
    return load


def die_with_parent(service_pid: int) -> None:
    """In a worker: be SIGKILLed when its parent dies, and exit now if the service is gone already.

    Without this a worker outlives a service killed with -9 (it holds both ends of its
    own call queue, so it never sees end-of-file), and so does the resource tracker,
    which waits for every holder of its pipe to go.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        return
    try:
        os.kill(service_pid, 0)  # died before the prctl took effect: no signal will come
    except ProcessLookupError:
        os._exit(1)
    except PermissionError:
        pass


def idle_worker(service_pid: int) -> None:
    """In a worker of an idle lane: :func:`die_with_parent`, and run at the idle scheduling policy (SCHED_IDLE),
    taking only the cpu nothing else wants (see ``Sizing.retrain_idle``)."""
    die_with_parent(service_pid)
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):  # (refused, or not Linux): the work is done at the service's policy
        pass


#: which worker runs what; anything else runs in the "model" worker
LANES = {render: "render", retrain: "train"}


class Offload:
    """An asyncio face of the worker processes; ``inline=True`` runs in threads (tests, tools). The workers of
    ``idle_lanes`` run at the idle scheduling policy."""

    def __init__(self, inline: bool = False, idle_lanes=()):
        self.inline = inline
        self.idle_lanes = frozenset(idle_lanes)
        self._pools = {}

    def pool(self, lane: str) -> ProcessPoolExecutor:
        if lane not in self._pools:
            # spawn: workers do not inherit the service's sockets and event loop, and are
            # the service's own children, so they can die with it (a forkserver's children
            # are the forkserver's, which outlives a service killed with -9); a training
            # worker exits after each fit, giving its memory back
            self._pools[lane] = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"),
                max_tasks_per_child=1 if lane == "train" else None,
                initializer=idle_worker if lane in self.idle_lanes else die_with_parent, initargs=(os.getpid(),),
            )
        return self._pools[lane]

    async def call(self, fn, *args):
        if self.inline:
            return await asyncio.to_thread(fn, *args)
        pool = self.pool(LANES.get(fn, "model"))
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    def shutdown(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
