"""Dispatch: which queued job starts next, given what is running and what the machine holds.

The choice is a pure function (:func:`pick_next`) so fairness and capacity rules are
tested without a service. Rules, in order:

1. a job starts only when its allocated cpu, memory and GPUs fit in what running jobs
   leave of the budget, and its user is under the per-user concurrency limit;
2. a job that has waited longer than ``starvation_seconds`` reserves the machine: no
   younger job may jump ahead of it (big jobs are not starved by a stream of small ones);
3. otherwise fair share: the job of the user with the fewest running jobs, then the oldest.

So only the oldest queued job and, per user, the oldest that fits the :class:`Room` left can ever be
picked: the store hands the pass those (``Store.queue_heads``), not the whole queue.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Iterable, Optional

import psutil
from traitlets import Float, Integer, default
from traitlets.config import LoggingConfigurable


@dataclass(frozen=True)
class Capacity:
    """What all running jobs together may hold."""

    cpu: float
    memory: int
    gpu: int = 0
    max_running: int = 2
    per_user: int = 2
    starvation_seconds: float = 600.0
    #: GPUs with room for one more job, where the backend hands them out by device (counted by
    #: its inventory, under its sharing rule); None: ``gpu`` less what the running jobs hold
    gpu_free: Optional[int] = None
    #: the least cpu a job is allocated (the sizing's lower bound): with less left, only a lone job starts
    least_cpu: float = 0.0


def demand(job) -> tuple:
    """(cpu, memory, gpu) a job holds while it runs: its allocation."""
    a = job.allocated or {}
    return float(a.get("cpu", 1.0)), int(a.get("memory", 0)), int(a.get("gpu", 0))


def free_capacity(running: Iterable, cap: Capacity) -> tuple:
    """(cpu, memory, gpu, slots) left by the running jobs."""
    running = list(running)
    cpu = cap.cpu - sum(demand(j)[0] for j in running)
    mem = cap.memory - sum(demand(j)[1] for j in running)
    gpu = cap.gpu - sum(demand(j)[2] for j in running) if cap.gpu_free is None else cap.gpu_free
    return cpu, mem, gpu, cap.max_running - len(running)


@dataclass(frozen=True)
class Room:
    """What a queued job must fit to start now (rule 1): the cpu, memory and GPUs the running jobs leave,
    and the users at their limit. ``any_size``: nothing runs, so any cpu and memory fit -- a lone job's
    allocation was clamped to the bounds (its GPUs were not: they must be there, or it would run on none,
    or on another job's)."""

    cpu: float
    memory: int
    gpu: int
    full_users: frozenset
    any_size: bool

    def fits(self, job) -> bool:
        c, m, g = demand(job)
        return (job.user not in self.full_users and g <= self.gpu
                and (self.any_size or (c <= self.cpu and m <= self.memory)))


def room(running: list, cap: Capacity) -> Optional[Room]:
    """The :class:`Room` the running jobs leave, or None when no job may start (no slot or cpu left)."""
    cpu, mem, gpu, slots = free_capacity(running, cap)
    if slots <= 0 or cap.per_user <= 0 or (running and cpu + 1e-9 < cap.least_cpu):
        return None
    per_user = Counter(j.user for j in running)
    full = frozenset(user for user, n in per_user.items() if n >= cap.per_user)
    return Room(cpu + 1e-9, mem, gpu, full, not running)  # (a float's rounding does not keep a job out)


def pick_next(queued: list, running: list, cap: Capacity, now: Optional[float] = None) -> Optional[object]:
    """The queued job to start now, or None when nothing fits. ``queued`` is oldest first: the whole queue,
    or the oldest job and each user's oldest that fits (the same choice, see the module's doc)."""
    space = room(running, cap)
    if not queued or space is None:
        return None
    now = time.time() if now is None else now
    per_user = Counter(j.user for j in running)
    oldest = queued[0]
    if now - oldest.created_ts > cap.starvation_seconds and oldest.user not in space.full_users:
        return oldest if space.fits(oldest) else None
    candidates = [j for j in queued if space.fits(j)]
    if not candidates:
        return None
    return min(candidates, key=lambda j: (per_user[j.user], j.created_ts))


class Dispatcher(LoggingConfigurable):
    """The capacity an admin gives jobs, as config; the choice itself is :func:`pick_next`."""

    cpu = Float(help="CPU cores all running jobs may hold together (default: the machine's cores).").tag(config=True)

    @default("cpu")
    def _default_cpu(self):
        return float(os.cpu_count() or 1)

    memory = Integer(help="Bytes of memory all running jobs may hold together (default: 75% of RAM).").tag(
        config=True
    )

    @default("memory")
    def _default_memory(self):
        return int(psutil.virtual_memory().total * 0.75)

    max_running = Integer(
        help="""Jobs that may run at once. Default: four per core of ``cpu``, so that the cpu budget, not
        a count, decides: on 2 cores eight quarter-core jobs (the least the sizer allocates) run at once,
        two jobs of a core each.""",
    ).tag(config=True)

    @default("max_running")
    def _default_max_running(self):
        return max(1, int(4 * self.cpu))

    per_user = Integer(2, help="Jobs one user may have running at once; the rest wait queued.").tag(config=True)

    starvation_seconds = Float(
        600.0, help="After this long in the queue a job reserves capacity: younger jobs stop jumping ahead."
    ).tag(config=True)

    def capacity(self, gpus: int = 0, max_running: Optional[int] = None, backend: Optional[dict] = None,
                 least_cpu: float = 0.0) -> Capacity:
        """The capacity now; ``max_running`` lets the load forecast lower concurrency for the hour.

        ``backend`` is what the executor itself has (a swarm's ready nodes): it replaces this
        machine's cpu and memory, which are not where such jobs run, and ``gpus`` (the most one
        job may ask) by all its GPUs, when it counts them. ``least_cpu``: see :class:`Capacity`.
        """
        limit = self.max_running if max_running is None else min(self.max_running, max_running)
        cpu, memory = (backend["cpu"], backend["memory"]) if backend else (self.cpu, self.memory)
        gpus = backend.get("gpu", gpus) if backend else gpus
        return Capacity(cpu, memory, gpus, max(1, limit), self.per_user, self.starvation_seconds,
                        least_cpu=least_cpu)

    def pick(self, queued: list, running: list, gpus: int = 0, max_running: Optional[int] = None):
        """The next job to start, or None."""
        return pick_next(queued, running, self.capacity(gpus, max_running))
