"""The job flow: plan, submit, dispatch, run, finish, cancel, recover — the one path every feature hangs on.

:class:`JobManager` owns the background work of the service. Handlers and the scheduler
hand it a :class:`~hub_service.request.JobRequest` to ``plan`` or ``submit``, and ask it to
``cancel``; the dispatch loop starts queued jobs as capacity allows; each running job is
one asyncio task that follows the executor and ends the job through
:meth:`Store.transition`, which lets exactly one ending win. What handlers only read
(listings, files, the queue) is the read side's, :class:`~hub_service.views.JobViews`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import time
from datetime import datetime, timezone
from typing import Optional

from traitlets import Float, Instance, Integer, Unicode, default
from traitlets.config import LoggingConfigurable

from . import metrics
from .broker import Broker
from .dispatch import Dispatcher, demand, pick_next, room
from .environments import Environments
from .executors.base import Executor, JobSpec, Outcome, Timeline, Usage, parse_metric
from .intake import IntakeError
from .mailer import Mailer
from .outputs import Artifacts, JobLog
from .planning import DemandPlanner, user_history
from .request import JobRequest, retry_of
from .runner import cell_words
from .sizing import Sizing
from .states import STOPPED, Reason, Status, reason_summary
from .store import InvalidTransition, Job, Store, job_model, listed_model
from .webhooks import CallbackRefused, Webhooks

#: a running job's metric reports are stored (one transaction) and streamed this often, or at this many
METRIC_FLUSH_SECONDS = 0.25
METRIC_BATCH = 500


class JobManager(LoggingConfigurable):
    """Runs jobs from queue to ending, and reconciles with the backend after a restart."""

    store = Instance(Store)
    artifacts = Instance(Artifacts)
    executor = Instance(Executor)
    dispatcher = Instance(Dispatcher)
    sizing = Instance(Sizing)
    broker = Instance(Broker, ())
    webhooks = Instance(Webhooks)
    #: the demand model's upkeep: this hour's load, early retraining (none: no load cap, no retraining)
    planner = Instance(DemandPlanner, allow_none=True)
    #: mail to a job's owner when it ends, as its notify asks (none: no mail)
    mailer = Instance(Mailer, allow_none=True)
    #: the admin's environments, a job's chosen at plan
    environments = Instance(Environments, ())

    @default("webhooks")
    def _default_webhooks(self):
        return Webhooks(parent=self, log=self.log)

    webhook_secret = Unicode(
        help="""HMAC secret that signs webhook callbacks (empty: unsigned). Default: the
        environment's NOTEBOOK_JOBS_WEBHOOK_SECRET. Set it there or in notebook_jobs_config.py,
        never on the command line: the Hub shows a managed service's command to whoever may
        read the service.""",
    ).tag(config=True)

    @default("webhook_secret")
    def _default_webhook_secret(self):
        return os.environ.get("NOTEBOOK_JOBS_WEBHOOK_SECRET", "")
    dispatch_interval = Float(1.0, help="Seconds between dispatch passes when nothing wakes it.").tag(config=True)
    early_retrain_wait = Float(
        300.0,
        help="""Seconds the demand model's early retraining, due when a job succeeds, waits for the flow to be
        idle (no job running or queued): its fit is a process of its own that imports scikit-learn, about 2 s
        of cpu, which a burst's jobs would share the cores with. Past this it runs anyway.""",
    ).tag(config=True)
    metric_points_limit = Integer(
        20000,
        help="""Metric points the service stores per job, whatever its runner sends. The runner
        itself stops sending at 10,000 (then it keeps each metric's last value and sends those
        at the end, which this leaves room for); this is the service's own bound.""",
    ).tag(config=True)
    metric_names_limit = Integer(
        200,
        help="""Metrics (distinct names) the service stores per job, as the runner allows: their
        last values are on the job, in every listing of it.""",
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._tasks = {}
        self._wake = asyncio.Event()
        self._loop_task = None
        self._background = set()
        #: per running job: its code cells done and the one running now, from the runner's events
        self._cells = {}
        #: per job being cancelled: who asked (a user name, or the words for the service or a schedule)
        self._cancelling = {}
        #: per running job: metric points stored so far and the last value of each metric
        self._metrics = {}
        #: per job not ended yet: when it reached each step (logged at debug level when it ends)
        self._timelines = {}
        #: jobs the backend gave back before they began (a node gone), queued again: once each
        self._requeued = set()
        #: when the first job succeeded since the demand planner last heard of a success (None: none since)
        self._succeeded_since = None

    # -- submission -------------------------------------------------------------

    async def plan(self, request: JobRequest, history: Optional[list] = None) -> dict:
        """The job ``request`` would create, checked for what only the service knows and sized; stores nothing
        (``?dry_run=1``). ``history``: the user's, as :func:`~.planning.user_history` reads it (read here when
        not given)."""
        if request.callback_url:
            await self.check_callback_url(request.callback_url)
        self.check_gpus(request.requested)
        env = self.environments.choose(request.environment, request.requested.get("gpu", 0), request.requirements,
                                       self.executor.runs_images)
        requested = env.with_defaults(request.requested)
        from demand.features import notebook_features

        features = notebook_features(request.bundle.notebook, request.parameters)
        features["params"] = request.parameters
        features["environment"] = env.name  # (its image's base memory differs from the others')
        if history is None:
            history = await user_history(self.store, request.user, self.sizing.history_limit)
        # A busy hour shares the cores: the sizer caps an unrequested cpu at the hour's share.
        sizing = await self.sizing.size(dict(features, user=request.user, requested=requested), history,
                                        request.retry_of, cpu_share=self._load("cpu_per_job"))
        return dict(request.row(), environment=env.name, features=features, predicted=sizing["predicted"],
                    allocated=dict(sizing["allocated"], basis=sizing["basis"]), used={})

    async def check_callback_url(self, url: str) -> None:
        """Refuse a webhook this service will not call (its address; see :class:`Webhooks`)."""
        try:
            await self.webhooks.check(url)
        except CallbackRefused as e:
            raise IntakeError(str(e), 400, "callback_refused", field="/callback_url") from None

    def check_gpus(self, requested: dict) -> None:
        """The one check that a job's GPUs exist here: a job asking for more than the backend has is refused
        (422) before it is queued, so the dispatcher and the executor never meet one."""
        gpus = requested.get("gpu", 0)
        if gpus and gpus > self.executor.gpu_count():
            raise IntakeError(
                f"{gpus} GPU(s) requested, but this Hub's {self.executor.name} backend has "
                f"{self.executor.gpu_count()}{self.executor.gpu_where()}", 422, "unsatisfiable",
                field="/resources/gpu",
            )

    async def submit(self, request: JobRequest, *, idempotency_key: Optional[str] = None,
                     job_id: Optional[str] = None) -> Job:
        """Store the input, size the job and queue it (raises DuplicateKey for a repeated key).

        ``job_id`` is the id a schedule's fire promised (a job id can be made once, so a
        fire never makes two jobs).
        """
        timeline = Timeline()
        timeline.mark("submitted")
        planned = await self.plan(request)
        timeline.mark("sized")
        sha = self.artifacts.store_input(request.bundle)
        job = self.store.create_job(id=job_id, input_hash=sha, idempotency_key=idempotency_key, **planned)
        timeline.mark("queued")
        self._timelines[job.id] = timeline
        self.log.info("job %s queued for %s (%s)", job.id, request.user, job.name)
        metrics.JOBS_SUBMITTED.labels(request.bundle.kind).inc()
        self._publish(job)
        self.wake()
        return job

    async def submit_all(self, requests: list, *, job_id: Optional[str] = None, **sweep) -> tuple:
        """Size each of ``requests`` (runs of one sweep: one notebook, many parameters) and queue them in one
        transaction, all or nothing: ``(sweep, jobs)``. ``sweep``: the new sweep's row (DuplicateSweep for a
        repeated key); without it the runs join the sweep they name (a sweep's rerun), and ``sweep`` is None.
        ``job_id``: the first run's, as a schedule's fire promised it."""
        # (one read of the history for every run: they are one user's)
        history = await user_history(self.store, requests[0].user, self.sizing.history_limit)
        planned = [await self.plan(request, history) for request in requests]
        planned[0]["id"] = job_id
        sha = self.artifacts.store_input(requests[0].bundle)
        rows = [dict(row, input_hash=sha) for row in planned]
        made, jobs = self.store.create_sweep(rows, **sweep) if sweep else (None, self.store.add_runs(rows))
        first = jobs[0]
        self.log.info("sweep %s: %d runs queued for %s (%s)", first.sweep_id, len(jobs), first.user, first.name)
        metrics.JOBS_SUBMITTED.labels(requests[0].bundle.kind).inc(len(jobs))
        for job in jobs:
            self._publish(job)
        self.wake()
        return made, jobs

    def fail_unrunnable(self, row: dict, message: str, *, job_id: Optional[str] = None) -> Job:
        """A job that fails at intake (reason ``invalid_input``) without running: a scheduled run whose
        notebook is gone or no longer takes its parameters, so its owner sees why in the job list.
        ``row``: what the job keeps of its request (user, choices, input kind and name, path, schedule)."""
        job = self.store.create_job(id=job_id, input_hash="", features={}, predicted={}, allocated={}, used={},
                                    **row)
        job = self.store.transition(job.id, Status.FAILED.value, error_reason=Reason.INVALID_INPUT.value,
                                    error_message=message)
        self.log.info("job %s failed at intake for %s: %s", job.id, job.user, message)
        self._ended(job)
        return job

    async def cancel(self, job: Job, wait: float = 10.0, *, by: Optional[str] = None,
                     on_behalf: str = "the service") -> Job:
        """Cancel a queued or running job; returns it as it stands after up to ``wait`` seconds.

        ``by`` is the Hub user who asked (kept as the job's ``cancelled_by``); without one the
        cancel is ``on_behalf`` of the service itself or, say, ``"its schedule"``: the job's
        message says which.
        """
        who = by or on_behalf
        if job.status == Status.QUEUED:
            try:
                job = self.store.transition(job.id, Status.CANCELLED.value, error_reason=Reason.CANCELLED.value,
                                            error_message=f"cancelled by {who} before it started", cancelled_by=by)
                self._ended(job)
                return job
            except InvalidTransition:
                job = self.store.get(job.id)  # it started meanwhile: cancel the run
        task = self._tasks.get(job.id)
        if job.status == Status.RUNNING:
            self._cancelling.setdefault(job.id, (by, who))  # the first to ask is the one who cancelled it
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if await self.executor.cancel(job.id):
                    break
                if task is None or task.done():
                    break
                await asyncio.sleep(0.05)  # between 'running' and the backend having the process
            if task is not None:
                await asyncio.wait([task], timeout=max(0.0, deadline - time.monotonic()))
        job = self.store.get(job.id)
        if job is not None and job.status != Status.RUNNING:
            self._cancelling.pop(job.id, None)  # (it ended: the asker was kept by finish, or it ended on its own)
        return job

    def delete(self, job: Job) -> None:
        """Forget an ended job and its files (a sweep's last run: the sweep too)."""
        self.store.delete(job.id)
        self.artifacts.remove_job(job.id)
        if job.sweep_id:
            self.store.forget_empty_sweep(job.sweep_id)

    def delete_sweep(self, sweep_id: str) -> None:
        """Forget a sweep whose runs all ended, with its runs and their files (InvalidTransition: one has not)."""
        for job_id in self.store.delete_sweep(sweep_id):
            self.artifacts.remove_job(job_id)

    # -- the dispatch loop --------------------------------------------------------

    def wake(self) -> None:
        """Ask for a dispatch pass now (a job was queued or ended)."""
        self._wake.set()

    def start(self) -> None:
        self._loop_task = asyncio.ensure_future(self._dispatch_loop())

    async def stop(self) -> None:
        """Stop dispatching; running jobs are left to the backend (durable ones are reattached later)."""
        if self._loop_task:
            self._loop_task.cancel()
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _dispatch_loop(self) -> None:
        while True:
            try:
                self.dispatch_once()
            except Exception:
                self.log.exception("dispatch pass failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.dispatch_interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    def dispatch_once(self) -> list:
        """Start every queued job that fits now; returns the started ids."""
        started = []
        self.executor.expect(self._load("jobs_per_hour"))  # (a warm pool sized for the jobs to come)
        # (how many run follows from their allocations -- cpu, memory, GPUs -- not from a count: the
        # forecast's busy hour lowers each job's cpu share, cpu_per_job, and so more of them fit)
        # (every allocation is clamped to the sizing's bounds and rounded to hundredths: none has less cpu)
        least_cpu = round(min(self.sizing.cpu_min, self.sizing.cpu_max), 2)
        cap = self.dispatcher.capacity(self.executor.gpu_count(), backend=self.executor.capacity(),
                                       least_cpu=least_cpu)
        gpus = self.executor.gpu_inventory()
        # Only what the choice reads, and of the queue only the jobs it can pick, when a slot is free: this
        # runs on the event loop at every submit and ending, and a burst queues thousands. The running jobs
        # are read once a pass: it is the one dispatcher of its database (the lease), and nothing else runs on
        # the loop between its starts, so they change only by the jobs it starts itself.
        running = list(self.store.dispatch_view(Status.RUNNING.value))
        while True:
            if gpus is not None:  # GPUs by device: which have room is the running jobs' devices' to say
                cap = dataclasses.replace(cap, gpu_free=gpus.free(running))
            space = room(running, cap)
            if space is None:
                self._tell_planner(idle=False)
                return started
            queued = self.store.queue_heads(space.cpu, space.memory, space.gpu, space.full_users, space.any_size)
            job = pick_next(queued, running, cap)
            if job is None:
                self._tell_planner(idle=not running and not queued)
                return started
            claim = {"backend": self.executor.name}
            if gpus is not None and demand(job)[2]:  # its devices, stored before its container is made
                claim["allocated"] = dict(job.allocated, gpu_devices=gpus.assign(running, demand(job)[2]))
            try:  # the claim: one conditional UPDATE … WHERE status = 'queued', so exactly one pass wins it
                job = self.store.transition(job.id, Status.RUNNING.value, **claim)
            except InvalidTransition:
                continue  # cancelled meanwhile, or started by another pass on the same database
            running.append(job)
            self._timelines.setdefault(job.id, Timeline()).mark("dispatched")
            self._publish(job)
            metrics.record_start(job)
            self._tasks[job.id] = asyncio.ensure_future(self._run(job))
            started.append(job.id)

    # -- one job --------------------------------------------------------------------

    def spec_for(self, job: Job) -> JobSpec:
        a = job.allocated
        return JobSpec(
            job_id=job.id, workdir=self.artifacts.job_dir(job.id), user=job.user, parameters=job.parameters,
            cpu=a["cpu"], memory=a["memory"], gpu=a.get("gpu", 0), gpu_devices=a.get("gpu_devices", []),
            timeout=a["timeout"], image=self.environments.image(job.environment),
            requirements=tuple((job.build or {}).get("requirements", ())),
        )

    async def _run(self, job: Job, reattach: bool = False) -> None:
        log = None
        try:
            if reattach:  # the backend replays the job's whole output: start the log afresh
                self.artifacts.log_path(job.id).unlink(missing_ok=True)
            else:
                self.artifacts.prepare(job.id, job.input_hash, job.parameters)
            timeline = self._timelines.setdefault(job.id, Timeline())
            timeline.mark("prepared")
            log = JobLog(self.artifacts.log_path(job.id))  # capped by the executor (log_limit)
            if job.metrics is not None:  # a run (or a replay of its output) reports them all anew
                self.store.clear_metrics(job.id)  # (a job without last values has no points: no write)
            self._metrics[job.id] = {"points": 0, "last": {}}
            spec = self.spec_for(job)
            spec.timeline = timeline
            on_event = lambda event: self._on_event(job.id, event)  # noqa: E731
            on_log = lambda text: self._on_log(job.id, log, text)  # noqa: E731
            if reattach:
                outcome = await self.executor.reattach(spec, on_event, on_log)
            else:
                outcome = await self.executor.run(spec, on_event, on_log)
        except asyncio.CancelledError:
            raise  # service shutdown: the job stays 'running' for recovery
        except Exception as e:
            self.log.exception("job %s: backend failed", job.id)
            outcome = Outcome(Status.FAILED.value, Reason.INFRASTRUCTURE.value, f"{type(e).__name__}: {e}")
        finally:
            if log is not None:
                log.close()
            self._tasks.pop(job.id, None)
        if outcome.requeue and job.id not in self._requeued:
            self._requeued.add(job.id)
            self.log.warning("job %s: %s; queued again (once)", job.id, outcome.message)
            self.store.transition(job.id, Status.QUEUED.value)
            self._publish(self.store.get(job.id))
            self.wake()
            return
        self.finish(job.id, outcome)

    def _on_event(self, job_id: str, event: dict) -> None:
        """Progress from the runner's events: a code cell is done when it ran to its end without an error.

        The runner reports a cell finished (and counts it in its ``cells_done``) also when it
        raised, and when the kernel died under it (papermill completes the cell on the way out),
        so a job killed in its last cell would show every cell done. Here a cell is done only
        when it finished ``ok``; the cell that was running when a run stopped is remembered, to
        name it (:meth:`finish`). ``cell_started`` events go on with ``position``: the running
        cell's place among the code cells (1-based), as the progress counts them.
        """
        kind = event.get("event")
        if kind == "metric":
            self._on_metric(job_id, event)
            return
        if kind == "build":  # its environment's build: kept on the job, whose progress says "building environment"
            self.store.update(job_id, build=event["build"])
            self._publish(self.store.get(job_id))
            return
        self._mark_runner_step(job_id, event)
        track = self._cells.setdefault(job_id, {"done": 0, "total": None, "at": None, "last": None})
        if kind == "started":
            track.update(done=0, total=event.get("cells_total"), at=None, last=None)
            self.store.update(job_id, cells_total=event.get("cells_total"), cells_done=0)
        elif kind == "cell_started":
            track["at"] = track["last"] = (event.get("cell"), track["done"] + 1)
            event = dict(event, position=track["done"] + 1)
        elif kind == "cell_finished":
            if event.get("status") != "error":  # (one that raised stays the cell the run stopped at)
                track["done"] += 1
                track["at"] = None
            self.store.update(job_id, cells_done=track["done"])
        elif kind == "finished" and "DeadKernel" in str((event.get("error") or {}).get("message", "")):
            # the kernel died under the last cell (papermill called it complete): it was not done
            if track["at"] is None and track["last"] is not None and track["last"][1] == track["done"]:
                track["done"] -= 1
                track["at"] = track["last"]
                self.store.update(job_id, cells_done=track["done"])
        self.broker.publish(job_id, event)

    def _mark_runner_step(self, job_id: str, event: dict) -> None:
        """Put the runner's own steps on the job's timeline: its start (papermill loaded, the notebook read),
        its kernel up (the first cell starts), the cells run, the output written."""
        timeline, kind = self._timelines.get(job_id), event.get("event")
        if timeline is None:
            return
        if kind == "started":
            timeline.mark_wall("runner_started", event.get("time"))
        elif kind in ("cell_started", "cell_finished"):
            first = kind == "cell_started" and timeline.marks[-1][0] == "runner_started"
            timeline.mark_wall("kernel_ready" if first else "executed", event.get("time"))
        elif kind == "finished":
            timeline.mark_wall("output_written", event.get("time"))

    def _on_metric(self, job_id: str, event: dict) -> None:
        """Take a report of the running notebook (``metric``: its step, values and time): stored and
        streamed with the others of the next ``METRIC_FLUSH_SECONDS`` (:meth:`_flush_metrics`)."""
        report = parse_metric(event)
        if report is None:
            self.log.warning("job %s: a metric event not well-formed, ignored: %.200r", job_id, event)
            return
        step, values = report
        state = self._metrics.setdefault(job_id, {"points": 0, "last": {}})
        if state["points"] + len(values) > self.metric_points_limit:
            if state["points"] <= self.metric_points_limit:
                self.log.warning("job %s: more than %d metric points; the rest are not stored",
                                 job_id, self.metric_points_limit)
                state["points"] = self.metric_points_limit + 1
            return
        if len(state["last"].keys() | values.keys()) > self.metric_names_limit:
            self.log.warning("job %s: more than %d metrics; a report of new ones ignored", job_id,
                             self.metric_names_limit)
            return
        state["points"] += len(values)
        state["last"].update(values)
        at = event.get("time")
        if isinstance(at, bool) or not isinstance(at, (int, float)) or not math.isfinite(at):
            at = time.time()
        pending = state.setdefault("pending", [])
        pending.append((step, values, at))
        if len(pending) >= METRIC_BATCH:
            self._flush_metrics(job_id)
        elif state.get("flush") is None:
            state["flush"] = asyncio.get_running_loop().call_later(METRIC_FLUSH_SECONDS, self._flush_metrics, job_id)

    def _flush_metrics(self, job_id: str) -> None:
        """Store the reports taken since the last flush in one transaction, then stream them: a notebook
        reporting thousands a second costs a commit a batch, not one a report. Stored before streamed, so a
        page that reads ``…/metrics`` once its stream is up misses no point (one it reads twice has one step)."""
        state = self._metrics.get(job_id) or {}
        if state.get("flush") is not None:
            state["flush"].cancel()
            state["flush"] = None
        pending, state["pending"] = state.get("pending") or [], []
        if not pending:
            return
        self.store.add_metrics(job_id, pending, dict(state["last"]))
        for step, values, at in pending:
            self.broker.publish(job_id, {"event": "metric", "step": step, "values": values, "time": at})

    def _on_log(self, job_id: str, log: JobLog, text: str) -> None:
        if not text.endswith("\n"):  # backends hand over lines with or without their newline
            text += "\n"
        log.write(text)
        self.broker.publish(job_id, {"event": "log", "text": text})

    def finish(self, job_id: str, outcome: Outcome) -> Optional[Job]:
        """End a running job with ``outcome``; a job already ended stays as it was.

        What the job left is looked at here, once: whether there is an output notebook (a
        stopped run's is partial), and the cell a stopped run was in, named in its message as
        a cell error names its cell. The log's last line says how the job ended, in words.
        """
        track = self._cells.pop(job_id, None) or {}
        self._flush_metrics(job_id)  # (its last reports, before it ends)
        self._metrics.pop(job_id, None)
        cancelled_by, who = self._cancelling.pop(job_id, (None, None))
        used = outcome.used.to_dict() if isinstance(outcome.used, Usage) else dict(outcome.used or {})
        fields = dict(exit_code=outcome.exit_code, used=used, has_output=self._has_output(job_id))
        if outcome.finished:  # the backend's own clock of the ending (a job that ended while we were down)
            fields["finished"] = datetime.fromtimestamp(outcome.finished, timezone.utc).replace(tzinfo=None)
        if outcome.status != Status.SUCCEEDED:
            message, cell = outcome.message, outcome.cell
            if outcome.reason == Reason.CANCELLED:
                fields["cancelled_by"] = cancelled_by
                message = f"cancelled by {who or 'the service'}"
            if outcome.reason in STOPPED and cell is None and track.get("at"):
                cell, position = track["at"]
                where = cell_words((position, track["total"]) if track.get("total") else None)
                if where:
                    message += f" (in {where})"
            fields.update(error_reason=outcome.reason, error_message=message, error_cell=cell)
            if track:  # a cell that raised or was stopped is not done
                fields["cells_done"] = track["done"]
        try:
            job = self.store.transition(job_id, outcome.status, **fields)
        except InvalidTransition as e:
            self.log.warning("job %s already ended (%s); ignoring outcome %s", job_id, e.current, outcome.status)
            return None
        self.log.info("job %s %s%s", job_id, job.status, f" ({job.error_reason})" if job.error_reason else "")
        self._log_ending(job)
        self._ended(job)
        return job

    def _has_output(self, job_id: str) -> bool:
        """Whether the run left an output notebook (papermill writes it at the start and after each cell)."""
        try:
            return self.artifacts.output_path(job_id).stat().st_size > 0
        except OSError:
            return False

    def _log_ending(self, job: Job) -> None:
        """The log's last line when a run did not succeed: why, in words (a killed kernel leaves only a
        traceback, a killed runner nothing). A succeeded job's log stays the notebook's own."""
        if job.started is None or job.status == Status.SUCCEEDED:
            return
        summary, message = reason_summary(job.error_reason, job.cancelled_by), job.error_message or ""
        # ("cancelled by alice (in code cell 2 of 3)" says it already: not "Cancelled by alice: cancelled by alice …")
        text = "notebook-jobs: " + (message if message.lower().startswith(summary.lower()) else f"{summary}: {message}")
        if job.has_output and job.error_reason in STOPPED:
            text += "; the notebook as far as it got is kept"
        text += "\n"
        try:
            log = JobLog(self.artifacts.log_path(job.id))
            try:
                log.write(text)
            finally:
                log.close()
        except OSError as e:
            self.log.warning("job %s: the log's last line not written: %s", job.id, e)
            return
        self.broker.publish(job.id, {"event": "log", "text": text})

    def _ended(self, job: Job) -> None:
        """After a job's one ending: tell listeners, call back, dispatch more.

        Nothing is rendered here: a render is made when it is first asked for (``JobViews.output``),
        so neither the ending, its webhook and mail, nor the next jobs wait or share the cores with
        renders nobody may read.
        """
        timeline = self._timelines.pop(job.id, None) or Timeline()
        timeline.mark("ended")
        metrics.record_end(job)
        self._publish(job)
        self.wake()
        after = {}
        if job.callback_url:
            after["webhook"] = self._spawn(self.webhooks.deliver(job.callback_url, job_model(job),
                                                                 self.webhook_secret))
        if self.mailer is not None and self.mailer.wants(job):
            after["mail"] = self._spawn(self.mailer.job_ended(job, find_schedule=self.store.get_schedule))
        self._spawn(self._log_timeline(job.id, timeline, after))
        if job.status == Status.SUCCEEDED and self.planner is not None:
            self._succeeded_since = self._succeeded_since or time.monotonic()  # (told at a dispatch pass)
        if job.error_reason == Reason.OOM_KILLED and self.planner is not None:
            self._spawn(self._resize_siblings(job))
        if job.status == Status.SUCCEEDED and job.sweep_id and self.planner is not None:
            self._spawn(self._resize_sweep(job))

    def _tell_planner(self, idle: bool) -> None:
        """Tell the demand planner of the jobs that succeeded (its early retraining may be due) once the flow
        is ``idle``, or once the first of them waited ``early_retrain_wait``: a burst's jobs do not share the
        cores with a fit made in its middle, whose model only jobs submitted after it would use."""
        since = self._succeeded_since
        if since is not None and (idle or time.monotonic() - since >= self.early_retrain_wait):
            self._succeeded_since = None
            self.planner.job_succeeded()

    async def _resize_siblings(self, killed: Job) -> None:
        """An OOM kill proved a burst's first guess short: raise the killed job's siblings still
        in the queue from the kill, as its retry would be, before they meet the same wall."""
        try:
            queued = await asyncio.to_thread(self.store.jobs_with_status, Status.QUEUED.value, user=killed.user)
            for job_id, s in (await self.planner.resize_after_kill(killed, queued)).items():
                if self.store.resize_queued(job_id, s["predicted"], dict(s["allocated"], basis=s["basis"])):
                    self.log.info("job %s: re-sized after its sibling %s was OOM-killed", job_id, killed.id)
        except Exception:
            self.log.exception("job %s: re-sizing its queued siblings failed", killed.id)

    async def _resize_sweep(self, done: Job) -> None:
        """A sweep's runs are all sized at once, before any of them ends. When its 1st, 2nd, 4th, 8th…
        run succeeds, size the runs still queued again, on the history as it is now: the demand model
        learns the sweep from its first runs (a few passes, not one per run)."""
        def read() -> tuple:
            runs = self.store.sweep_jobs([done.sweep_id]).get(done.sweep_id, [])
            queued = [j for j in runs if j.status == Status.QUEUED.value]
            # a queued rerun of a killed run is a retry, sized as one: never below what the kill proved short
            killed = {j.id: self.store.get(j.rerun_of) for j in queued if j.rerun_of}
            return sum(j.status == Status.SUCCEEDED.value for j in runs), queued, killed

        try:
            succeeded, queued, killed = await asyncio.to_thread(read)
            if not queued or succeeded & (succeeded - 1):  # (not a power of two)
                return
            sizings = await self.planner.resize_queued(
                done.user, [(j, self.environments.named(j.environment).with_defaults(j.requested or {}),
                             retry_of(killed[j.id]) if killed.get(j.id) else None)
                            for j in queued], cpu_share=self._load("cpu_per_job"))
            for job_id, s in sizings.items():
                predicted = dict(s["predicted"], resized_after_runs=succeeded)  # (what the job page can tell)
                if self.store.resize_queued(job_id, predicted, dict(s["allocated"], basis=s["basis"])):
                    self.log.info("job %s: re-sized after %d run(s) of its sweep %s succeeded",
                                  job_id, succeeded, done.sweep_id)
        except Exception:
            self.log.exception("job %s: re-sizing the queued runs of its sweep failed", done.id)

    async def _log_timeline(self, job_id: str, timeline: Timeline, after: dict) -> None:
        """Log where the job's time went (seconds per step), once what follows its ending is done too
        (``after``: its tasks by name, each timed from the ending)."""
        ended, took = time.monotonic(), {}
        for name, task in after.items():
            task.add_done_callback(lambda _, name=name: took.setdefault(name, round(time.monotonic() - ended, 4)))
        if after:
            await asyncio.wait(after.values())
        self.log.debug("job %s timeline: %s", job_id, json.dumps(dict(timeline.phases(), after_end=took)))

    def _spawn(self, coro) -> asyncio.Future:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def _publish(self, job: Job) -> None:
        """A status event for the job's listeners, if it has any: its model is a listing's row, built on the
        event loop at each queueing, start and ending, which in a drain nobody follows."""
        if self.broker.listening(job.id):
            self.broker.publish(job.id, {"event": "status", "job": listed_model(job)})

    def _load(self, key: str) -> Optional[float]:
        """This hour's forecast ``cpu_per_job`` or ``jobs_per_hour`` (None: no forecast)."""
        return self.planner.load.get(key) if self.planner is not None else None

    # -- recovery ---------------------------------------------------------------------

    async def recover(self) -> dict:
        """Reconcile the store with the backend after a (re)start; nothing lost, nothing run twice.

        A job the store calls running is reattached when the backend still holds it,
        and re-queued from scratch when the backend lost it (its process died with the
        service). A backend job that this store knows but not as running (it ended, and
        its container was kept or not yet removed) is removed. Anything else the backend
        lists is left alone, whatever its labels say: only a job id in our own store
        proves a container is ours (two deployments may share a daemon, and even an
        instance name).
        """
        held = set(await self.executor.running()) if self.executor.durable else set()
        known = self.store.known_ids(held)
        report = {"reattached": [], "requeued": [], "removed": [], "foreign": sorted(held - known)}
        for job in self.store.jobs_with_status(Status.RUNNING.value):
            if job.id in held:
                self._tasks[job.id] = asyncio.ensure_future(self._run(job, reattach=True))
                report["reattached"].append(job.id)
            else:
                self.store.transition(job.id, Status.QUEUED.value)
                report["requeued"].append(job.id)
        for job_id in sorted(known - set(report["reattached"])):
            await self.executor.remove(job_id)
            report["removed"].append(job_id)
        if report["foreign"]:
            self.log.warning("recovery: the backend holds %d job(s) of this instance that this store does not "
                             "know; left alone: %s", len(report["foreign"]), ", ".join(report["foreign"]))
        if any(report.values()):
            self.log.info("recovery: %s", report)
        return report

    # -- what the service reports of the flow ------------------------------------------------

    def running_tasks(self) -> int:
        """Jobs this process follows now."""
        return len(self._tasks)
