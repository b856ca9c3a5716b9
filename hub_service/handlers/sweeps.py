"""The ``/sweeps`` API: thin handlers over :class:`~hub_service.sweeps.Sweeps`.

Users see and act on their own sweeps (another user's answers 404, as if it did not exist);
Hub admins on everyone's (``?all=1``, ``?user=NAME``), as with jobs. One run's cancel and
rerun are its job's (``/jobs/{id}/cancel``, ``/jobs/{id}/rerun``).
"""

from __future__ import annotations

import asyncio

from tornado import web

from ..intake import IntakeError
from ..request import parse_submission, refuse_unknown
from ..states import TERMINAL
from ..store import BadCursor, DuplicateSweep, InvalidTransition
from ..sweeps import MODES, sweep_model
from .api import UploadHandler
from .base import APIHandler, authenticated


class SweepAPIHandler(APIHandler):
    """What the sweep handlers share: the sweeps, and a sweep the caller may see."""

    @property
    def sweeps(self):
        """:class:`~hub_service.sweeps.Sweeps`."""
        return self.settings["sweeps"]

    def get_sweep(self, sweep_id: str):
        """The sweep if the caller may see it; otherwise 404."""
        sweep = self.sweeps.get(sweep_id, None if self.is_admin else self.user_name)
        if sweep is None:
            raise web.HTTPError(404, f"no sweep {sweep_id}")
        return sweep

    def write_sweep(self, sweep, status: int = 200, **extra) -> None:
        metric = self.get_argument("metric", None) or None
        mode = self.get_argument("mode", "min")
        if mode not in MODES:
            raise IntakeError(f"mode must be 'min' or 'max', not {mode[:40]!r}")
        runs = self.sweeps.runs(sweep)
        if not runs:  # its last run was deleted meanwhile, and the sweep with it
            raise web.HTTPError(404, f"no sweep {sweep.id}")
        self.write_json(dict(sweep_model(sweep, runs, metric, mode), **extra), status)


class SweepsHandler(SweepAPIHandler):
    """GET: the caller's sweeps, newest first (admins: ``all=1``, ``user=``). POST (making one) is
    :class:`SweepSubmitHandler`'s."""

    @authenticated
    def get(self):
        user = self.user_name
        if self.is_admin:
            user = self.get_argument("user", None if self.flag_argument("all") else user)
        limit = self.page_limit()
        try:
            sweeps, cursor = self.sweeps.listing(user, limit, self.get_argument("cursor", None) or None)
        except BadCursor as e:
            raise IntakeError(str(e)) from None
        self.write_json({"sweeps": sweeps, "next_cursor": cursor})


class SweepSubmitHandler(UploadHandler, SweepAPIHandler):
    """POST: make a sweep; its body is a job's (multipart or JSON) whose ``parameters`` hold lists of values, or
    with ``runs``. The body is read as a job's upload is (the same limit, refused the same way)."""

    reads = SweepsHandler

    async def post(self):
        self._body_read = True
        if self._refused:  # refused before its body was in; the answer is on its way
            return
        await self.identify()
        self.require_user()
        self.request.body = b"".join(self._chunks)
        if self.flag_argument("dry_run"):  # (not taken as a sweep to make: that would make them all)
            raise IntakeError("a sweep has no dry run: POST /jobs?dry_run=1 with one combination sizes one run")
        user, key = self.user_name, self.idempotency_key()
        grid, requests = await asyncio.to_thread(self._expand, user)
        existing = key and self.sweeps.find_by_idempotency_key(user, key)
        if not existing:
            try:
                sweep, _jobs = await self.sweeps.submit(grid, requests, idempotency_key=key)
            except DuplicateSweep as e:  # the same key raced in from another request
                existing = e.sweep
            else:
                self.set_header("Location", self.api_url("sweeps", sweep.id))
                return self.write_sweep(sweep, 201)
        self._replay_sweep(existing, key, grid, requests)

    def _replay_sweep(self, sweep, key: str, grid: dict, requests: list):
        """Answer a repeated Idempotency-Key: the first sweep if this is the same request, else 422."""
        if not self.sweeps.same_request(sweep, self.sweeps.runs(sweep), grid, requests):
            raise IntakeError(f"Idempotency-Key {key!r} was already used for another request (sweep {sweep.id}); "
                              "send a new key with a changed submission", 422, "idempotency_key_reused")
        self.write_sweep(sweep)

    def _expand(self, user: str) -> tuple:
        r = self.request
        form, request = parse_submission(r.headers.get("Content-Type", ""), r.body, r.headers, user, self.limits,
                                         self.workspaces.read, sweep=True)
        return self.sweeps.expand(form, request, self.limits)


class SweepHandler(SweepAPIHandler):
    """GET one sweep: its grid, a row per run, and with ``?metric=NAME&mode=min|max`` its best run. DELETE: the
    sweep with all its runs and their outputs, as a job is deleted (its runs not ended are cancelled first)."""

    @authenticated
    def get(self, sweep_id):
        self.write_sweep(self.get_sweep(sweep_id))

    @authenticated
    async def delete(self, sweep_id):
        sweep = self.get_sweep(sweep_id)
        try:
            await self.sweeps.delete(sweep, self.sweeps.runs(sweep), by=self.user_name)
        except InvalidTransition as e:
            raise web.HTTPError(409, f"The sweep was not deleted: its run {e.job_id[:8]} is still {e.current} "
                                     "(stopping after its cancel, or just made again). Try again shortly.") from None
        self.set_status(204)
        self.finish()


class SweepCancelHandler(SweepAPIHandler):
    """POST: cancel every run of the sweep not ended."""

    @authenticated
    async def post(self, sweep_id):
        sweep = self.get_sweep(sweep_id)
        cancelled = await self.sweeps.cancel(self.sweeps.runs(sweep), by=self.user_name)
        if not cancelled:
            raise web.HTTPError(409, f"sweep {sweep_id} has no run left to cancel")
        self.write_sweep(sweep, 200 if all(job.status in TERMINAL for job in cancelled) else 202)


class SweepRerunHandler(SweepAPIHandler):
    """POST: run the sweep's ended runs again, each as its job's rerun (``{"failed_only": true}``: the failed
    ones); 201, the sweep with the new runs in place of the old, and their ids (``rerun``)."""

    @authenticated
    async def post(self, sweep_id):
        sweep = self.get_sweep(sweep_id)
        body = self.get_json_body()
        if not isinstance(body, dict):
            raise IntakeError('request body must be a JSON object like {"failed_only": true}')
        refuse_unknown(body, ("failed_only",), "a sweep's re-run takes only 'failed_only'")
        failed_only = body.get("failed_only", False)
        if not isinstance(failed_only, bool):
            raise IntakeError("failed_only must be true or false", field="/failed_only")
        made = await self.sweeps.rerun(self.sweeps.runs(sweep), self.jobs.input_bundle, self.limits, failed_only)
        if not made:
            which = "failed run" if failed_only else "ended run"
            raise web.HTTPError(409, f"sweep {sweep_id} has no {which} to run again")
        self.write_sweep(sweep, 201, rerun=[job.id for job in made])
