"""The read side: what handlers ask about jobs -- listings, one job, its files and events, the queue, figures.

The job flow (:class:`~hub_service.jobs.JobManager`) changes jobs; :class:`JobViews` only
reads them, from the store, a job's files and the broker's events, and is the object
handlers ask (``self.jobs``). Nothing here changes a job: a render (HTML, Markdown) is made
on its first request, never on the ending's path, and cached beside the job's output.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Optional

from . import offload as workers
from .broker import Broker
from .dispatch import Capacity, Dispatcher
from .executors.base import INPUT_NOTEBOOK, Executor
from .intake import Bundle, IntakeError
from .offload import Offload
from .outputs import MEDIA_TYPES, Artifacts
from .sizing import Sizing
from .states import Status
from .store import Job, Store


async def rendered(artifacts: Artifacts, offload: Offload, job_id: str, fmt: str) -> Optional[bytes]:
    """The job's output in ``fmt`` (None: none); a render is made once, in a worker process, and cached."""
    try:
        data = artifacts.cached_output(job_id, fmt)
        if data is None and fmt != "ipynb" and artifacts.output_path(job_id).exists():
            data = await offload.call(workers.render, str(artifacts.output_path(job_id)), fmt)
            artifacts.store_render(job_id, fmt, data)
    except FileNotFoundError:  # the job was deleted while this was read or rendered
        return None
    return data


class JobViews:
    """What handlers read about jobs; see the module's docstring."""

    def __init__(self, *, store: Store, artifacts: Artifacts, broker: Broker, executor: Executor,
                 dispatcher: Dispatcher, sizing: Sizing, offload: Offload):
        self.store, self.artifacts, self.broker = store, artifacts, broker
        self.executor, self.dispatcher, self.sizing, self.offload = executor, dispatcher, sizing, offload

    # -- jobs ------------------------------------------------------------------------------------

    def get(self, job_id: str, user: Optional[str] = None) -> Optional[Job]:
        """The job, or None if there is none (given ``user``: none of that user's)."""
        return self.store.get(job_id, user)

    def list_jobs(self, user: Optional[str], statuses=(), query: str = "", limit: int = 50,
                  cursor: Optional[str] = None, newest_first: bool = True, schedule_id: Optional[str] = None,
                  sweep_id: Optional[str] = None) -> tuple:
        """A page of jobs and the next page's cursor (raises BadCursor for a cursor not ours)."""
        return self.store.list_jobs(user, statuses, query, limit, cursor, newest_first=newest_first,
                                    schedule_id=schedule_id, sweep_id=sweep_id)

    def find_by_idempotency_key(self, user: str, key: str) -> Optional[Job]:
        """The user's job submitted with ``key``, if any."""
        return self.store.find_by_idempotency_key(user, key)

    @property
    def bounds(self) -> dict:
        """The admin's [least, most] for each resource, as a job may ask for it."""
        return {name: list(pair) for name, pair in self.sizing.bounds.items()}

    # -- a job's files and events ------------------------------------------------------------------

    def subscribe(self, job_id: str) -> asyncio.Queue:
        """A queue of the job's events from now on; hand it back to :meth:`unsubscribe`."""
        return self.broker.subscribe(job_id)

    def unsubscribe(self, job_id: str, queue: asyncio.Queue) -> None:
        """Stop the events of :meth:`subscribe`."""
        self.broker.unsubscribe(job_id, queue)

    def input_notebook(self, job: Job) -> tuple:
        """The notebook the job was submitted with: its bytes and media type."""
        if not job.input_hash:  # it failed at intake: there is no input to show
            raise IntakeError(f"job {job.id} has no input: {job.error_message}", 404, "not_found")
        data = (self.artifacts.input_dir(job.input_hash) / INPUT_NOTEBOOK).read_bytes()
        return data, MEDIA_TYPES["ipynb"]

    def input_bundle(self, job: Job) -> Bundle:
        """The notebook and files ``job`` ran, to run again; 422 for a job that failed before it had an input."""
        if not job.input_hash:
            raise IntakeError(f"job {job.id} failed before it had an input ({job.error_message}); nothing to rerun",
                              422, "nothing_to_rerun")
        return Bundle(self.artifacts.read_input(job.input_hash), job.input_kind, job.input_name,
                      self.artifacts.input_files(job.input_hash))

    def log_bytes(self, job_id: str) -> bytes:
        """The job's log so far (empty before it started)."""
        path = self.artifacts.log_path(job_id)
        return path.read_bytes() if path.exists() else b""

    async def output(self, job_id: str, fmt: str) -> Optional[bytes]:
        """The job's output in ``fmt`` (see :func:`rendered`)."""
        return await rendered(self.artifacts, self.offload, job_id, fmt)

    def metrics_file(self, job: Job) -> Optional[bytes]:
        """``metrics.json`` of an ended job: as its run left it, or -- a run stopped before it could write one --
        its final values and series as the service stored them (as ``GET …/metrics`` has them); None when the
        job reported no metrics."""
        data = self.artifacts.metrics_file(job.id)
        if data is None and job.metrics:
            data = json.dumps({"final": job.metrics, "series": self.metrics(job.id)}).encode()
        return data

    def metrics(self, job_id: str, name: Optional[str] = None, since_step: Optional[int] = None) -> list:
        """The job's metric series as the API shows them: ``[{name, points: [{step, value, time}]}]``, by name."""
        return [{"name": series, "points": [{"step": step, "value": value, "time": at}
                                            for step, value, at in points]}
                for series, points in self.store.metric_series(job_id, name, since_step).items()]

    # -- the backend and the queue -----------------------------------------------------------------

    def capacity(self) -> Capacity:
        """What the backend may run at once, as configured (before the hour's forecast)."""
        return self.dispatcher.capacity(self.executor.gpu_count(), backend=self.executor.capacity())

    def health(self) -> dict:
        """The backend's own health report."""
        return self.executor.health()

    def queue(self) -> dict:
        """The capacity, what the running jobs hold, and the running and queued jobs."""
        running = self.store.jobs_with_status(Status.RUNNING.value)
        gpus = self.executor.gpu_inventory()
        return {
            "capacity": self.capacity(),
            "used": {"cpu": sum(j.allocated.get("cpu", 0) for j in running),
                     "memory": sum(j.allocated.get("memory", 0) for j in running)},
            "running": running,
            "queued": self.store.jobs_with_status(Status.QUEUED.value),
            "running_per_user": dict(Counter(j.user for j in running)),  # of the same read as "running"
            "nodes": self.executor.nodes(),  # (a swarm's: capacity, labels, health, the jobs each runs)
            "gpus": gpus.table(running) if gpus else [],  # (each GPU, and the running jobs that hold it)
        }

    # -- the admin's figures -------------------------------------------------------------------------

    def stats(self, recent: int = 1000) -> dict:
        """Jobs per status, and of the ``recent`` finished jobs: reasons, users, waits."""
        history = self.store.history(limit=recent)
        reasons, users = {}, {}
        for j in history:
            if j.error_reason:
                reasons[j.error_reason] = reasons.get(j.error_reason, 0) + 1
            users[j.user] = users.get(j.user, 0) + 1
        waits = sorted((j.started - j.created).total_seconds() for j in history if j.started)
        return {
            "status_counts": self.store.counts(),
            "recent": {"jobs": len(history), "error_reasons": reasons, "users": users,
                       "wait_p50": waits[len(waits) // 2] if waits else None,
                       "wait_max": waits[-1] if waits else None},
        }

    def usage(self, since: float, until: float) -> list:
        """Per user, the jobs submitted in [since, until): counts by outcome and resource-time sums."""
        return self.store.usage_by_user(since, until)

    def submission_times(self, since: float, until: float) -> list:
        """When each job of [since, until) was submitted (epoch seconds)."""
        return self.store.submission_times(since, until)

    def status_counts(self) -> dict:
        """Jobs per status."""
        return self.store.counts()
