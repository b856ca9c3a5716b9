"""Keeping the demand model current: scheduled and early retraining, the load forecast, the report.

:class:`DemandPlanner` is the background side of sizing. The job flow (``jobs.py``) reads
its hour's :attr:`~DemandPlanner.load`, tells it when a job succeeded, and asks it for new
sizings of a burst's still-queued jobs when one of them was OOM-killed
(:meth:`~DemandPlanner.resize_after_kill`); the app starts its two loops; the admin's
``/demand`` endpoint reads :meth:`~DemandPlanner.info` (the scoreboard among it).
"""

from __future__ import annotations

import asyncio
import time
from typing import Optional

from traitlets import Float, Instance, Integer
from traitlets.config import LoggingConfigurable

from . import offload
from .dispatch import Dispatcher
from .sizing import Sizing
from .states import Status
from .store import Job, Store


class DemandPlanner(LoggingConfigurable):
    """Retrains the demand model and follows its hour-of-week load forecast."""

    store = Instance(Store)
    sizing = Instance(Sizing)
    dispatcher = Instance(Dispatcher)

    load_interval = Float(
        300.0, help="Seconds between reads of the load forecast (cpu per job, jobs at once for the hour); 0: off."
    ).tag(config=True)
    retrain_history = Integer(100_000, help="Most recent finished jobs the demand model learns from.").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.load = {}  # {"cpu_per_job", "jobs_per_hour"} for this hour, from the demand model
        self._retraining = False
        self._background = set()

    async def retrain(self) -> dict:
        """Fit the demand model on the finished jobs now."""
        history = await user_history(self.store, None, self.retrain_history)
        info = await self.sizing.model_call(offload.retrain, history)
        self.log.info("demand model retrained on %d jobs: version %s", len(history), info.get("version"))
        return info

    def job_succeeded(self) -> None:
        """A job succeeded: retrain early if the history grew enough (one check at a time)."""
        if self.sizing.use_model and not self._retraining:
            task = asyncio.ensure_future(self._retrain_if_due())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _retrain_if_due(self) -> None:
        """Between scheduled retrainings: the first model early, then each time the history doubles."""
        self._retraining = True
        try:
            succeeded = await asyncio.to_thread(self.store.count, Status.SUCCEEDED.value)
            if await self.sizing.model_call(offload.retrain_due, succeeded):
                await self.retrain()
        except Exception:
            self.log.exception("early retraining failed")
        finally:
            self._retraining = False

    async def info(self) -> dict:
        """The current model and its metrics, the load forecast, and how the sizing did:
        realised slack and kill rates of the finished jobs, per sizing basis, and the
        scoreboard (every policy scored on them, per user, and which one sizes whose memory)."""
        info = await self.sizing.model_call(offload.info)
        # Only what the forecast and the report read crosses to the worker.
        history = [{k: r[k] for k in ("submit_time", "user", "status", "reason", "predicted", "allocated", "used")}
                   for r in await user_history(self.store, None, self.retrain_history)]
        info.update(await self.sizing.model_call(offload.report, history))
        return info

    async def resize_after_kill(self, killed: Job, queued: list) -> dict:
        """New sizings ``{job id: {"predicted", "allocated", "basis"}}`` for the jobs of
        ``queued`` that are siblings of the OOM-killed ``killed`` (:func:`siblings`): they
        were sized by the guess the kill just proved short, and would meet the same wall
        one at a time. Jobs that started meanwhile are the caller's to leave alone."""
        sibs = siblings(killed, queued)
        if not sibs:
            return {}
        history = await user_history(self.store, killed.user, self.sizing.history_limit)
        sizings = await self.sizing.resize_siblings(
            dict(history_record(killed), id=killed.id),
            [dict(history_record(j), id=j.id, requested=dict(j.requested or {})) for j in sibs], history)
        return {j.id: s for j, s in zip(sibs, sizings)}

    async def resize_queued(self, user: str, queued: list, cpu_share=None) -> dict:
        """New sizings ``{job id: sizing}`` for queued jobs of ``user`` (a sweep's runs, once some
        of them have ended), each given with what it asks for and the killed run it retries, if
        it is a retry (``[(job, requested, retry_of)]``): sized as each would be if it were
        submitted now, on the user's history as it is now, but lowered only within what the
        finished runs covered (demand.sizing.Sizer.resize_queued)."""
        history = await user_history(self.store, user, self.sizing.history_limit)
        records = [dict(job.features or {}, user=user, requested=requested, retry_of=retry,
                        allocated=dict(job.allocated or {}), predicted=dict(job.predicted or {}))
                   for job, requested, retry in queued]
        sizings = await self.sizing.resize_queued(records, history, cpu_share=cpu_share)
        return {job.id: s for (job, _, _), s in zip(queued, sizings)}

    async def load_loop(self) -> None:
        """Follow the hour-of-week load forecast: how much cpu a job may take, how many run."""
        while self.load_interval > 0:
            try:
                self.load = await self.sizing.model_call(
                    offload.load_factor, time.time(), {"cpu": self.dispatcher.cpu, "memory": self.dispatcher.memory}
                )
            except Exception:
                self.log.exception("reading the load forecast failed")
            await asyncio.sleep(self.load_interval)

    async def retrain_loop(self, interval: float) -> None:
        """Retrain every ``interval`` seconds; a failure is logged and tried again next time."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.retrain()
            except Exception:
                self.log.exception("periodic retraining failed")


def siblings(killed: Job, queued: list) -> list:
    """The jobs of ``queued`` still queued that run the killed job's notebook for its user
    (the same input, by content hash, or the same workspace path) and were sized by the
    guess the kill proved short: one raised after an earlier kill already was sized past
    it -- unless the killed job had been raised too."""
    raised = "resized_after_kill" in (killed.predicted or {})
    return [j for j in queued if j.id != killed.id and j.user == killed.user and j.status == Status.QUEUED.value
            and (j.input_hash == killed.input_hash or (killed.path and j.path == killed.path))
            and (raised or "resized_after_kill" not in (j.predicted or {}))]


async def user_history(store: Store, user: Optional[str], limit: int) -> list:
    """A user's (everyone's: None) newest ``limit`` finished jobs as the sizer reads them, in a thread: decoding
    hundreds of rows of JSON (a retraining's: up to ``retrain_history``) would hold up every other request."""
    return await asyncio.to_thread(lambda: [history_record(j) for j in store.history(user, limit)])


def history_record(job: Job) -> dict:
    """A finished job as the demand model reads it."""
    f = job.features or {}
    return {
        "submit_time": job.created_ts,
        "user": job.user,
        "code_cells": f.get("code_cells"),
        "source_bytes": f.get("source_bytes"),
        "imports": f.get("imports", []),
        "environment": f.get("environment"),  # (its image: another environment, another workload)
        "params": job.parameters,
        "status": job.status,
        "reason": job.error_reason,
        "predicted": job.predicted,
        "allocated": job.allocated,
        "used": job.used,
    }
