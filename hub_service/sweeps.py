"""Parameter sweeps: one job per combination of parameter values, made together and compared side by side.

A sweep is asked for with a submission's body (``POST /jobs``: the notebook and the choices)
whose ``parameters`` map each name to a list of values -- its runs are their cartesian
product, the last name varying fastest; a value that is no list is the same in every run --
or whose ``runs`` list the combinations themselves. Each combination is checked against the
notebook as one job's parameters are, and a refusal names the value at fault
(``/parameters/lr/2``, ``/runs/1/lr``). Every run is a :class:`~hub_service.request.JobRequest`
sized by the demand model like any job, and the sweep is stored with all its runs in one
transaction, or not at all.

A sweep's runs are the jobs that name it; a rerun of one (the sweep's rerun, or the job's own)
joins the sweep and takes the place of the run it repeats (:func:`current`). The sweep's status is
its runs'. A sweep's rerun, like its making, is all its runs or none; deleting a sweep deletes its
runs with it, and a sweep whose last run is deleted goes with that run.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from datetime import datetime
from typing import Callable, Optional

from traitlets import Instance, Integer
from traitlets.config import LoggingConfigurable

from .intake import IntakeError, Limits, check_parameters, parse_json_field, pointer
from .jobs import JobManager
from .request import JobRequest, rerun_request
from .states import TERMINAL, Status
from .store import Job, Store, Sweep, job_model
from .store.models import isoformat, utcnow

#: the orders a best run is picked in: the least or the greatest final value
MODES = ("min", "max")


class Sweeps(LoggingConfigurable):
    """Makes sweeps (all runs or none), cancels and reruns them, and says how they stand."""

    store = Instance(Store)
    flow = Instance(JobManager)

    max_runs = Integer(
        100,
        help="""Most runs one sweep may make (a grid's product of value counts, or its list of
        runs); a larger sweep is refused (400) before anything is stored.""",
    ).tag(config=True)

    # -- reading -------------------------------------------------------------------------------

    def get(self, sweep_id: str, user: Optional[str]) -> Optional[Sweep]:
        """The sweep, or None (given ``user``: none of that user's)."""
        return self.store.get_sweep(sweep_id, user)

    def runs(self, sweep: Sweep) -> list:
        """Every job of the sweep, in the order they were made (the repeated ones too: see :func:`current`)."""
        return self.store.sweep_jobs([sweep.id])[sweep.id]

    def listing(self, user: Optional[str], limit: int, cursor: Optional[str]) -> tuple:
        """A page of sweeps as a listing shows them (no rows of runs), and the next page's cursor."""
        sweeps, next_cursor = self.store.list_sweeps(user, limit, cursor)
        runs = self.store.sweep_jobs([sweep.id for sweep in sweeps])
        # (a sweep whose last run was deleted since the page was read is gone)
        shown = [sweep_model(sweep, runs[sweep.id], with_runs=False) for sweep in sweeps if runs[sweep.id]]
        return shown, next_cursor

    def find_by_idempotency_key(self, user: str, key: str) -> Optional[Sweep]:
        return self.store.find_sweep_by_idempotency_key(user, key)

    # -- making one -------------------------------------------------------------------------

    def expand(self, form: dict, request: JobRequest, limits: Optional[Limits] = None) -> tuple:
        """``(grid, requests)`` of a sweep's form: the grid as kept (``{"parameters": …}`` or ``{"runs": …}``)
        and one request per run, each combination checked against the notebook (and ``limits``). ``request``
        is the submission's own (its notebook and choices; no parameters). Blocking: call it in a thread."""
        values = parse_json_field(form.get("parameters"), "parameters")
        runs = parse_json_field(form.get("runs"), "runs")
        if (values is None) == (runs is None):
            raise IntakeError("a sweep takes one of 'parameters' (each name: a list of values, for a grid) and "
                              "'runs' (a list of {name: value} combinations)",
                              field="/runs" if runs is not None else "/parameters")
        nb, size = request.bundle.notebook, limits.max_parameters_size if limits else None
        if runs is not None:
            combos = self._listed(runs)
            for i, combo in enumerate(combos):
                _check(nb, combo, size, lambda name, i=i: pointer("runs", i, *name))
            grid = {"runs": combos}
        else:
            grid = {"parameters": self._grid(values)}
            # the names first (None is any parameter's "no value"), then each value once, so that a refusal
            # names the value at fault
            _check(nb, dict.fromkeys(grid["parameters"]), None, lambda at: pointer("parameters", *at))
            for name, options in grid["parameters"].items():
                for i, value in enumerate(options):
                    _check(nb, {name: value}, size, lambda at, i=i: pointer("parameters", *at, i))
            combos = combinations(grid["parameters"])
            for combo in combos:  # (all together: their size as a whole)
                _check(nb, combo, size, lambda at: pointer("parameters", *at[:1]))
        return grid, [request.replace(parameters=combo) for combo in combos]

    def _grid(self, values) -> dict:
        if not isinstance(values, dict) or not values:
            raise IntakeError("parameters of a sweep must be a JSON object of name: [values]", field="/parameters")
        grid = {name: value if isinstance(value, list) else [value] for name, value in values.items()}
        for name, options in grid.items():
            if not options:
                raise IntakeError(f"parameter {name} has no values: give it at least one",
                                  field=pointer("parameters", name))
        runs = math.prod(len(options) for options in grid.values())
        self._check_size(runs, "/parameters", " x ".join(str(len(o)) for o in grid.values()))
        return grid

    def _listed(self, runs) -> list:
        if not isinstance(runs, list) or not runs:
            raise IntakeError("runs must be a non-empty JSON array of {name: value} objects", field="/runs")
        self._check_size(len(runs), "/runs", "listed")
        for i, combo in enumerate(runs):
            if not isinstance(combo, dict):
                raise IntakeError(f"run {i} must be a JSON object of name: value", field=pointer("runs", i))
        return runs

    def _check_size(self, runs: int, field: str, how: str) -> None:
        if runs > self.max_runs:
            raise IntakeError(f"a sweep of {runs} runs ({how}) is more than this Hub's limit of {self.max_runs} "
                              "runs a sweep", field=field)

    async def submit(self, grid: dict, requests: list, *, idempotency_key: Optional[str] = None,
                     job_id: Optional[str] = None) -> tuple:
        """Size every run and store the sweep with all of them: ``(sweep, jobs)`` (DuplicateSweep for a
        repeated key); ``job_id``: the first run's (a schedule's fire promised it)."""
        first = requests[0]
        return await self.flow.submit_all(requests, job_id=job_id, user=first.user, name=first.name, grid=grid,
                                          idempotency_key=idempotency_key, schedule_id=first.schedule_id)

    @staticmethod
    def same_request(sweep: Sweep, runs: list, grid: dict, requests: list) -> bool:
        """Whether a stored sweep was made from this very request (a repeated Idempotency-Key)."""
        made = [job for job in runs if job.rerun_of is None]
        return (sweep.grid == grid and len(made) == len(requests)
                and all(request.same_as(job) for request, job in zip(requests, made)))

    # -- acting on one --------------------------------------------------------------------------

    async def cancel(self, runs: list, by: str) -> list:
        """Cancel every current run not ended (queued ones first, then the running ones together)."""
        live = [job for job in current(runs) if job.status not in TERMINAL]
        live.sort(key=lambda job: job.status != Status.QUEUED)
        return await asyncio.gather(*(self.flow.cancel(job, by=by) for job in live))

    async def delete(self, sweep: Sweep, runs: list, by: str) -> None:
        """Forget the sweep with all its runs and their files, as a job is forgotten: its runs not ended are
        cancelled first; one still live after that (a run stopping slowly, a rerun made meanwhile) keeps the
        whole sweep (InvalidTransition)."""
        await self.cancel(runs, by)
        self.flow.delete_sweep(sweep.id)

    async def rerun(self, runs: list, read_input: Callable[[Job], object], limits: Limits,
                    failed_only: bool = False) -> list:
        """Run each ended current run again (``failed_only``: the failed ones), each as its job's rerun in the
        sweep, all sized on one read of the history and stored together, or none (a run refused: no rerun)."""
        again = [job for job in current(runs) if job.status in TERMINAL
                 and (not failed_only or job.status == Status.FAILED)]
        if not again:
            return []
        inputs = {}  # input hash -> its bundle: the runs share their notebook, read once

        def read(job: Job):
            if job.input_hash not in inputs:
                inputs[job.input_hash] = read_input(job)
            return inputs[job.input_hash]

        requests = await asyncio.to_thread(
            lambda: [rerun_request(job, {}, lambda job=job: read(job), limits) for job in again])
        _none, made = await self.flow.submit_all(requests)
        return made


def _check(nb, combo: dict, size: int, where: Callable) -> None:
    """``check_parameters`` of one combination; a refusal about ``/parameters/<name>`` is re-pointed to
    ``where((name,))`` (``where(())`` for the whole)."""
    try:
        check_parameters(nb, combo, size)
    except IntakeError as e:
        parts = (e.field or "/parameters").split("/")[2:]
        e.field = where(tuple(p.replace("~1", "/").replace("~0", "~") for p in parts))
        raise


def combinations(grid: dict) -> list:
    """The cartesian product of ``{name: [values]}``, in order (the last name varying fastest)."""
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*grid.values())]


def current(runs: list) -> list:
    """The runs that stand for the sweep (``runs``: all its jobs, in the order they were made): of each
    combination's run and its reruns the newest, in the place of the first (the grid's order)."""
    first, newest = {}, {}
    for job in runs:  # (a rerun comes after the run it repeats)
        first[job.id] = first.get(job.rerun_of, job.id)
        newest[first[job.id]] = job
    return list(newest.values())


def status_of(runs: list) -> str:
    """A sweep's status, from its runs': running while any runs, queued while any waits, else succeeded
    when all did, failed when any failed, else cancelled. A sweep has a run (it goes with its last): no runs
    have no status (ValueError)."""
    if not runs:
        raise ValueError("a sweep without runs has no status")
    statuses = {job.status for job in runs}
    for status in (Status.RUNNING, Status.QUEUED):
        if status in statuses:
            return status.value
    if statuses <= {Status.SUCCEEDED.value}:
        return Status.SUCCEEDED.value
    return (Status.FAILED if Status.FAILED in statuses else Status.CANCELLED).value


def duration(job: Job, now: Optional[datetime] = None) -> Optional[float]:
    """Seconds a run ran (so far, while it runs); None before it started."""
    wall = (job.used or {}).get("wall_seconds")
    if wall is not None:
        return wall
    if job.started is None:
        return None
    return ((job.finished or now or utcnow()) - job.started).total_seconds()


def best_run(runs: list, metric: str, mode: str) -> Optional[Job]:
    """The succeeded run with the least (``min``) or greatest (``max``) final ``metric``; None: none has it."""
    scored = [job for job in runs if job.status == Status.SUCCEEDED and metric in (job.metrics or {})]
    if not scored:
        return None
    pick = min if mode == "min" else max
    return pick(scored, key=lambda job: job.metrics[metric])


def sweep_model(sweep: Sweep, runs: list, metric: Optional[str] = None, mode: str = "min",
                with_runs: bool = True) -> dict:
    """The REST representation of a sweep (the contract served at ``…/api/openapi.json``); ``metric``: with
    its best run; ``with_runs``: with one row per run (a listing has the counts only)."""
    standing = current(runs)
    counts = {status: 0 for status in (s.value for s in Status)}
    for job in standing:
        counts[job.status] += 1
    model = {
        "id": sweep.id,
        "user": sweep.user,
        "name": sweep.name,
        "status": status_of(standing),
        "grid": sweep.grid,
        "size": sweep.size,
        "counts": counts,
        "metrics": sorted({name for job in standing for name in (job.metrics or {})}),
        "schedule_id": sweep.schedule_id,
        "created": isoformat(sweep.created),
    }
    if with_runs:
        now = utcnow()
        model["runs"] = [run_row(job, now) for job in standing]
    if metric is not None:
        best = best_run(standing, metric, mode)
        model["best"] = {"metric": metric, "mode": mode, "job_id": best.id if best else None,
                         "value": best.metrics[metric] if best else None}
    return model


def run_row(job: Job, now: Optional[datetime] = None) -> dict:
    """One run of a sweep as its table shows it."""
    model = job_model(job)
    return {"job_id": job.id, "parameters": job.parameters, "status": job.status, "duration": duration(job, now),
            "used": job.used or {}, "allocated": {k: v for k, v in (job.allocated or {}).items() if k != "basis"},
            "metrics": job.metrics or {}, "error": model["error"], "rerun_of": job.rerun_of,
            "created": model["created"], "started": model["started"], "finished": model["finished"]}
