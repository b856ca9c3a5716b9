"""REST API handlers (the contract: ``…/api/openapi.json``; the flow: docs/architecture.md).

Thin: parse (into a :class:`~hub_service.request.JobRequest`), check access, then ask the read
side (``self.jobs``) or hand the request to the job flow (``self.flow``).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tornado import web
from tornado.iostream import StreamClosedError

from .. import __version__, metrics
from ..explain import sizing_words
from ..intake import IntakeError, clean_name, parameter_fields
from ..outputs import MEDIA_TYPES
from ..request import JobRequest, parse_submission, rerun_request
from ..states import STATUSES, TERMINAL, Status
from ..store import BadCursor, DuplicateKey, Job, job_model, listed_model
from .admin import capacity_model
from .base import APIHandler, admin_only, authenticated

#: seconds a refused upload is still read (and dropped) before its answer, as nginx's lingering_time
LINGER = 30.0
#: Tornado's own body limit is lifted for uploads: this service enforces its own (see JobsHandler)
_UNBOUNDED = 1 << 62


class RootHandler(APIHandler):
    @authenticated
    def get(self):
        self.write_json({
            "name": "notebook-jobs",
            "version": __version__,
            "backend": self.jobs.health(),
            "capacity": capacity_model(self.jobs.capacity()),
            "user": self.user_name,
            "admin": self.is_admin,
        })


class HealthHandler(APIHandler):
    def get(self):
        self.write_json({
            "status": "ok",
            "version": __version__,
            "backend": self.jobs.health(),
            "running": self.flow.running_tasks(),
        })


@web.stream_request_body
class UploadHandler(APIHandler):
    """A resource's submit (POST, multipart upload or JSON), its body streamed; its reads are :attr:`reads`'s.

    The body is streamed so that an upload over the limit is never kept. Anything refused
    before the body is in -- an upload over the limit (known from Content-Length, or once
    a chunked body passes it), a stranger's upload, a verb Tornado does not know, a
    missing XSRF token -- is answered once the rest of the body has been read and
    dropped (see :meth:`write_error`).

    The same URL's GET goes to :attr:`reads`, a handler whose request is not streamed (routed by method: see
    ``handlers.routes``). Tornado starts a streamed request's handler a turn of the event loop after its headers,
    and its method two turns later, once the (empty) body has "arrived"; on a busy service a listing waited behind
    everything else the loop had at each turn.
    """

    reads: type = None  # the handler of the same URL's GET (a 405 names its methods too)

    _body_read = False  # set once Tornado hands over the whole body: the verb methods run only then
    _refused = False
    _received, _refused_at = 0, None  # also when prepare never ran (a 405, a failed XSRF check)

    def write_error(self, status_code, **kwargs):
        if not self._body_read:
            # Answering while the client is still sending goes wrong behind the Hub's proxy:
            # Tornado hangs up after the answer (the proxy, still writing, answers its 503
            # page), and with "Connection: close" the proxy closes the client's socket under
            # a client still sending (curl then reports a broken pipe, not the answer). So the
            # answer waits until the body is read and dropped; see finish.
            self._refused, self._refused_at = True, time.monotonic()
        super().write_error(status_code, **kwargs)

    def finish(self, chunk=None):
        """End the response; one refused before its body was read ends when the body is in."""
        body = self.request._body_future  # Tornado resolves it when the streamed body has ended
        if not self._refused or body.done() or self._finished:
            if self._refused and self._finished:
                return None  # ended by _finish_after_body, before Tornado's own call
            if self._refused and body.exception():
                return None  # the client went away; nobody to answer
            return super().finish(chunk)
        if chunk is not None:
            self.write(chunk)
        body.add_done_callback(self._finish_after_body)
        return body

    def _finish_after_body(self, body):
        if not self._finished and not body.exception():  # else the client went away meanwhile
            super().finish()

    def _stop_lingering(self):
        """A client still sending LINGER seconds after its refusal gets the answer and a hang-up."""
        self.set_header("Connection", "close")
        super().finish()

    async def prepare(self):
        self._chunks, self._received, self._refused_at = [], 0, None
        if self.request.method != "POST":
            return
        # The limit is enforced here, never by Tornado: past its max_body_size Tornado
        # answers a bare 400 and hangs up mid-upload.
        self.request.connection.set_max_body_size(_UNBOUNDED)
        declared = self.request.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.limits.max_upload_size:
            await self._refuse_upload()

    async def data_received(self, chunk):
        self._received += len(chunk)
        if self._refused_at is not None:
            if time.monotonic() - self._refused_at > LINGER and not self._finished:
                self._stop_lingering()
        elif self._received > self.limits.max_upload_size:
            self._chunks = []
            await self._refuse_upload()
        else:
            self._chunks.append(chunk)

    async def _refuse_upload(self):
        """Refuse with 413 (401/403 a caller who may not submit); answered once the body is drained."""
        try:
            await self.identify()
            self.require_user()
            raise IntakeError(f"upload is over the limit of {self.limits.max_upload_size} bytes", 413, "too_large")
        except (web.HTTPError, IntakeError) as e:
            self._handle_request_exception(e)

    def idempotency_key(self):
        """The request's Idempotency-Key header (None: none), at most 255 characters."""
        key = self.request.headers.get("Idempotency-Key") or None
        if key and len(key) > 255:
            raise IntakeError("Idempotency-Key is longer than 255 characters")
        return key


class JobsHandler(APIHandler):
    """GET: the caller's jobs, newest first (admins: ``all=1``, ``user=``), by status, text, schedule or sweep.
    POST (a submit) is :class:`JobSubmitHandler`'s."""

    @authenticated
    def get(self):
        user = self.user_name
        everyone = self.flag_argument("all")
        if self.is_admin:
            user = self.get_argument("user", None if everyone else user)
        value = self.get_argument("status", "")
        statuses = value.split(",") if value else []
        bad = sorted(set(statuses) - set(STATUSES))
        if bad:
            raise IntakeError(f"unknown status {', '.join(s or '(empty)' for s in bad)}; "
                              f"use any of {', '.join(STATUSES)}, comma-separated")
        limit = self.page_limit()
        sort = self.get_argument("sort", "-created")
        if sort not in ("-created", "created"):
            raise IntakeError("sort must be '-created' (newest first) or 'created'")
        try:
            jobs, cursor = self.jobs.list_jobs(
                user, statuses, self.get_argument("q", ""), limit, self.get_argument("cursor", None) or None,
                newest_first=sort == "-created", schedule_id=self.get_argument("schedule", None) or None,
                sweep_id=self.get_argument("sweep", None) or None,
            )
        except BadCursor as e:
            raise IntakeError(str(e)) from None
        model = job_model if self.flag_argument("full_parameters") else listed_model
        self.write_json({"jobs": [model(j) for j in jobs], "next_cursor": cursor})


class JobSubmitHandler(UploadHandler):
    """POST: submit a job (multipart upload or JSON); ``dry_run=1`` sizes it and stores nothing."""

    reads = JobsHandler

    async def post(self):
        self._body_read = True
        if self._refused:  # refused in _refuse_upload; the body is drained, the answer on its way
            return
        await self.identify()
        self.require_user()
        self.request.body = b"".join(self._chunks)
        user = self.user_name
        if self.flag_argument("dry_run"):
            return await self._dry_run(user)
        key = self.idempotency_key()
        request = await asyncio.to_thread(self._parse_submission, user)
        existing = key and self.jobs.find_by_idempotency_key(user, key)
        if existing:
            return self._replay(existing, key, request)
        try:
            job = await self.flow.submit(request, idempotency_key=key)
        except DuplicateKey as e:  # the same key raced in from another request
            return self._replay(e.job, key, request)
        self.set_header("Location", self.api_url("jobs", job.id))
        self.write_json(job_model(job), 201)

    def _replay(self, job, key: str, request: JobRequest):
        """Answer a repeated Idempotency-Key: the first job if this is the same request, else 422."""
        if not request.same_as(job):
            raise IntakeError(f"Idempotency-Key {key!r} was already used for another request (job {job.id}); "
                              "send a new key with a changed submission", 422, "idempotency_key_reused")
        self.write_json(job_model(job), 200)

    async def _dry_run(self, user: str):
        """Validate and size exactly as a submit would; answer the would-be job, store nothing."""
        request = await asyncio.to_thread(self._parse_submission, user)
        self.write_json(await planned_job(self, request), 200)

    def _parse_submission(self, user: str) -> JobRequest:
        """The request of the body; IntakeError says what is wrong, and in which field."""
        r = self.request
        _form, request = parse_submission(r.headers.get("Content-Type", ""), r.body, r.headers, user, self.limits,
                                          self.workspaces.read)
        return request


async def planned_job(handler: APIHandler, request: JobRequest) -> dict:
    """A dry run's answer: the job ``request`` would make, sized, with the admin's bounds and the sizing in words."""
    planned = await handler.flow.plan(request)
    would_be = job_model(Job(id=None, status=Status.QUEUED.value, input_hash=request.bundle.sha256, cells_done=0,
                             **planned))
    bounds = handler.jobs.bounds
    would_be["resources"]["bounds"] = bounds  # what a request may ask for
    would_be["resources"]["explanation"] = sizing_words(would_be["resources"], bounds, request.retry_words())
    # what a form needs to offer the notebook's parameters (a submit's and a rerun's), whatever the input's kind
    would_be["notebook_parameters"] = await asyncio.to_thread(parameter_fields, request.bundle.notebook)
    return dict(would_be, dry_run=True)


class JobHandler(APIHandler):
    @authenticated
    def get(self, job_id):
        self.write_json(job_model(self.get_job(job_id)))

    @authenticated
    async def delete(self, job_id):
        job = self.get_job(job_id)
        if job.status not in TERMINAL:
            job = await self.flow.cancel(job, by=self.user_name)
            if job.status not in TERMINAL:
                raise web.HTTPError(409, f"job {job_id} is still {job.status}; try again shortly")
        self.flow.delete(job)
        self.set_status(204)
        self.finish()


class CancelHandler(APIHandler):
    @authenticated
    async def post(self, job_id):
        job = self.get_job(job_id)
        if job.status in TERMINAL:
            raise web.HTTPError(409, f"job {job_id} already {job.status}")
        job = await self.flow.cancel(job, by=self.user_name)  # kept as the job's cancelled_by
        self.write_json(job_model(job), 200 if job.status in TERMINAL else 202)


class RerunHandler(APIHandler):
    """Run a job again: as it was, or with what a JSON body ``{"parameters": {…}, "resources": {…},
    "timeout": s}`` changes (each checked as a submit checks it).

    The new job keeps the input (a bundle's data files too), name, requests, formats,
    webhook and notify, and is sized as a re-run (more of what a killed run ran out of);
    requested resources replace the job's own requests of those names. ``?dry_run=1``
    answers the would-be job, sized and explained in words, and stores nothing.
    """

    @authenticated
    async def post(self, job_id):
        job = self.get_job(job_id)
        dry_run = self.flag_argument("dry_run")
        body = self.get_json_body()
        # (in a thread: the job's input is read, and the parameters checked against it)
        request = await asyncio.to_thread(rerun_request, job, body, lambda: self.jobs.input_bundle(job), self.limits)
        if dry_run:
            return self.write_json(await planned_job(self, request), 200)
        new = await self.flow.submit(request)
        self.set_header("Location", self.api_url("jobs", new.id))
        self.write_json(job_model(new), 201)


class OutputHandler(APIHandler):
    @authenticated
    async def get(self, job_id):
        job = self.get_job(job_id)
        fmt = self.get_argument("format", "ipynb")
        if fmt not in MEDIA_TYPES:
            raise IntakeError(f"unknown format {fmt!r}; use one of {', '.join(MEDIA_TYPES)}")
        if job.status not in TERMINAL:
            raise web.HTTPError(409, f"job {job_id} is {job.status}; its output is ready when it ends")
        if fmt == "metrics":
            data = self.jobs.metrics_file(job)
            if data is None:
                raise web.HTTPError(404, f"job {job_id} reported no metrics: it has no output in format 'metrics'")
        else:
            data = await self.jobs.output(job_id, fmt)
            if data is None:
                raise web.HTTPError(404, f"job {job_id} ended ({job.error_reason or job.status}) without an "
                                         "output notebook")
        name = None
        if self.flag_argument("download"):  # else shown inline, sandboxed like every render of a user's
            extension = "metrics.json" if fmt == "metrics" else fmt
            name = f"{clean_name(Path(job.input_name or '').stem, 'job')[:100]}-{job.id[:8]}.{extension}"
        self.serve_user_content(data, MEDIA_TYPES[fmt], download_name=name)


class InputHandler(APIHandler):
    @authenticated
    def get(self, job_id):
        job = self.get_job(job_id)
        data, media_type = self.jobs.input_notebook(job)
        self.serve_user_content(data, media_type)


class LogsHandler(APIHandler):
    """The job's log; ``?follow=1`` keeps the response open until the job ends."""

    @authenticated
    async def get(self, job_id):
        job = self.get_job(job_id)
        self.user_content_headers("text/plain; charset=utf-8")  # the notebook's prints: the user's text
        follow = self.get_argument("follow", "") in ("1", "true")
        queue = self.jobs.subscribe(job_id) if follow and job.status not in TERMINAL else None
        try:
            self.write(self.jobs.log_bytes(job_id))
            if queue is None:
                return self.finish()
            await self.flush()
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), 15)
                except asyncio.TimeoutError:
                    if self.jobs.get(job_id).status in TERMINAL:
                        break
                    continue
                if event["event"] == "log":
                    self.write(event["text"])
                    await self.flush()
                elif event["event"] == "status" and event["job"]["status"] in TERMINAL:
                    break
            self.finish()
        except StreamClosedError:
            pass  # the reader left (e.g. Ctrl-C on `logs --follow`): nothing to answer
        finally:
            if queue is not None:
                self.jobs.unsubscribe(job_id, queue)


class JobMetricsHandler(APIHandler):
    """``GET /jobs/{id}/metrics``: what the notebook reported, one series per metric (``?name=``, ``?since_step=``)."""

    @authenticated
    def get(self, job_id):
        job = self.get_job(job_id)
        name = self.get_argument("name", None)
        since = self.get_argument("since_step", None)
        if since is not None:
            try:
                since = int(since)
            except ValueError:
                raise IntakeError("since_step must be a whole number") from None
            if not -1 <= since < 2**63:
                raise IntakeError("since_step must be a step (an integer from -1)")
        self.write_json({"job_id": job.id, "final": job.metrics or {},
                         "series": self.jobs.metrics(job.id, name, since)})


class NotebooksHandler(APIHandler):
    """Notebooks and scripts in the caller's workspace, newest first."""

    @authenticated
    async def get(self):
        user = self.user_name
        # what a submit by path would accept; links are never followed (hub_service/workspace.py)
        found = await asyncio.to_thread(self.workspaces.notebooks, user)
        self.write_json({"workspace": self.workspaces.root(user), "notebooks": found})


class EnvironmentsHandler(APIHandler):
    """The environments a job may run in, each with the packages its image holds (read once per image)."""

    @authenticated
    async def get(self):
        environments = self.flow.environments
        self.write_json({"default": environments.default_environment.name,
                         "environments": await environments.listing(self.flow.executor)})


class MetricsHandler(APIHandler):
    """Prometheus exposition; admins (or a service token with admin rights) only."""

    @admin_only
    def get(self):
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(metrics.exposition(self.jobs.status_counts()))
