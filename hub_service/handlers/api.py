"""REST API handlers (the contract: ``…/api/openapi.json``; the flow: docs/architecture.md).

Thin: parse, check access, call the job manager (``self.jobs``, the one object handlers talk to).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from tornado import httputil, web
from tornado.iostream import StreamClosedError

from .. import __version__, metrics
from ..intake import (
    Bundle,
    IntakeError,
    check_callback_url,
    check_name,
    clean_name,
    check_notify,
    check_parameters,
    load_json,
    parameter_fields,
    parse_json_field,
    parse_output_formats,
    parse_resources,
    parse_script,
    parse_notebook,
    read_submission,
    same_submission,
)
from ..explain import sizing_words
from ..outputs import MEDIA_TYPES
from ..states import STATUSES, TERMINAL, Status
from ..store import BadCursor, DuplicateKey, Job, job_model, listed_model
from ..workspace import list_notebooks, read_workspace_notebook
from .admin import capacity_model
from .base import APIHandler, admin_only, authenticated

MAX_PAGE = 200
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
            "running": self.jobs.running_tasks(),
        })


@web.stream_request_body
class JobsHandler(APIHandler):
    """GET: list jobs. POST: submit one (multipart upload or JSON).

    The body is streamed so that an upload over the limit is never kept. Anything refused
    before the body is in -- an upload over the limit (known from Content-Length, or once
    a chunked body passes it), a stranger's upload, a verb Tornado does not know, a
    missing XSRF token -- is answered once the rest of the body has been read and
    dropped (see :meth:`write_error`).
    """

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
        if declared.isdigit() and int(declared) > self.config.max_upload_size:
            await self._refuse_upload()

    async def data_received(self, chunk):
        self._received += len(chunk)
        if self._refused_at is not None:
            if time.monotonic() - self._refused_at > LINGER and not self._finished:
                self._stop_lingering()
        elif self._received > self.config.max_upload_size:
            self._chunks = []
            await self._refuse_upload()
        else:
            self._chunks.append(chunk)

    async def _refuse_upload(self):
        """Refuse with 413 (401/403 a caller who may not submit); answered once the body is drained."""
        try:
            await self.identify()
            self.require_user()
            raise IntakeError(f"upload is over the limit of {self.config.max_upload_size} bytes", 413, "too_large")
        except (web.HTTPError, IntakeError) as e:
            self._handle_request_exception(e)

    async def get(self):
        self._body_read = True
        await self.identify()
        self.require_user()
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
        try:
            limit = int(self.get_argument("limit", "50"))
        except ValueError:
            raise IntakeError("limit must be a whole number") from None
        if not 1 <= limit <= MAX_PAGE:
            raise IntakeError(f"limit must be between 1 and {MAX_PAGE}")
        sort = self.get_argument("sort", "-created")
        if sort not in ("-created", "created"):
            raise IntakeError("sort must be '-created' (newest first) or 'created'")
        try:
            jobs, cursor = self.jobs.list_jobs(
                user, statuses, self.get_argument("q", ""), limit, self.get_argument("cursor", None) or None,
                newest_first=sort == "-created", schedule_id=self.get_argument("schedule", None) or None,
            )
        except BadCursor as e:
            raise IntakeError(str(e)) from None
        model = job_model if self.flag_argument("full_parameters") else listed_model
        self.write_json({"jobs": [model(j) for j in jobs], "next_cursor": cursor})

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
        key = self.request.headers.get("Idempotency-Key") or None
        if key and len(key) > 255:
            raise IntakeError("Idempotency-Key is longer than 255 characters")
        fields, bundle = await asyncio.to_thread(self._parse_submission, user)
        existing = key and self.jobs.find_by_idempotency_key(user, key)
        if existing:
            return self._replay(existing, key, bundle, fields)
        try:
            job = await self.jobs.submit(user, bundle, idempotency_key=key, **fields)
        except DuplicateKey as e:  # the same key raced in from another request
            return self._replay(e.job, key, bundle, fields)
        self.set_header("Location", self.api_url("jobs", job.id))
        self.write_json(job_model(job), 201)

    def _replay(self, job, key: str, bundle: Bundle, fields: dict):
        """Answer a repeated Idempotency-Key: the first job if this is the same request, else 422."""
        if not same_submission(job, bundle.sha256, fields):
            raise IntakeError(f"Idempotency-Key {key!r} was already used for another request (job {job.id}); "
                              "send a new key with a changed submission", 422, "idempotency_key_reused")
        self.write_json(job_model(job), 200)

    async def _dry_run(self, user: str):
        """Validate and size exactly as a submit would; answer the would-be job, store nothing."""
        fields, bundle = await asyncio.to_thread(self._parse_submission, user)
        planned = await self.jobs.plan(user, bundle, **fields)
        would_be = job_model(Job(id=None, status=Status.QUEUED.value, input_hash=bundle.sha256, cells_done=0, **planned))
        would_be["resources"]["bounds"] = self.jobs.bounds  # what an override may ask for
        would_be["resources"]["explanation"] = sizing_words(would_be["resources"], self.jobs.bounds)
        # what a form needs to offer the notebook's parameters, whatever the input's kind
        would_be["notebook_parameters"] = await asyncio.to_thread(parameter_fields, bundle.notebook)
        self.write_json(dict(would_be, dry_run=True), 200)

    def _parse_submission(self, user: str):
        """Fields and bundle from the body; IntakeError names what is wrong."""
        _form, fields, bundle = parse_submission(self.request, self.config, user)
        return fields, bundle


def parse_submission(request, config, user: str, parsed=None) -> tuple:
    """The form, the job's fields and the bundle of a submission (multipart or JSON); IntakeError says why not.

    Shared by ``POST /jobs`` and ``POST /schedules``, which takes the same body (and has
    read a JSON one already: ``parsed``, so that it is not parsed twice).
    """
    content_type = request.headers.get("Content-Type", "")
    limits = dict(max_members=config.bundle_max_files, max_bytes=config.bundle_max_bytes)
    if content_type.startswith("multipart/form-data"):
        args, files = {}, {}
        try:
            httputil.parse_body_arguments(content_type, request.body, args, files, request.headers)
        except httputil.HTTPInputError as e:  # no boundary, a part without a name, undecodable headers
            raise IntakeError(f"malformed multipart/form-data body: {e}") from None
        form = {k: v[0].decode("utf-8", "replace") for k, v in args.items()}
        if "file" not in files:
            raise IntakeError("multipart upload needs a 'file' part (.ipynb, .py or .zip)")
        upload = files["file"][0]
        bundle = read_submission(upload.filename or "upload.ipynb", upload.body, entry=form.get("entry"), **limits)
    elif content_type.startswith("application/json") or not content_type:
        if parsed is not None:
            form = parsed
        else:
            form = load_json(request.body, "request body") if request.body else {}
        if not isinstance(form, dict):
            raise IntakeError("request body must be a JSON object")
        bundle = bundle_from_json(form, user, config, limits)
    else:
        raise IntakeError(f"unsupported Content-Type {content_type!r}: use multipart/form-data or JSON", 415)
    parameters = check_parameters(bundle.notebook, parse_json_field(form.get("parameters"), "parameters"),
                                  max_size=config.max_parameters_size)
    fields = dict(
        parameters=parameters,
        name=check_name(form.get("name"), bundle.name),
        requested=parse_resources(parse_json_field(form.get("resources"), "resources"), form.get("timeout")),
        output_formats=parse_output_formats(form.get("output_formats")),
        callback_url=check_callback_url(form.get("callback_url")),
        notify=check_notify(form.get("notify")),
        path=form.get("path") if isinstance(form.get("path"), str) else None,
    )
    return form, fields, bundle


def bundle_from_json(body: dict, user: str, config, limits: dict) -> Bundle:
    """The bundle of a JSON submission: exactly one of ``notebook``, ``path`` (workspace) or ``code``."""
    sources = [k for k in ("notebook", "path", "code") if body.get(k) not in (None, "")]
    if len(sources) != 1:
        raise IntakeError("JSON submission needs exactly one of 'notebook' (the .ipynb JSON), "
                          "'path' (in your workspace) or 'code' (Python source)")
    source = sources[0]
    if source == "notebook":
        nb = body["notebook"]
        data = json.dumps(nb).encode() if isinstance(nb, (dict, list)) else str(nb).encode()
        return Bundle(parse_notebook(data, "notebook"), "ipynb", check_name(body.get("name"), "notebook.ipynb"))
    if source == "code":
        if not isinstance(body["code"], str):
            raise IntakeError("'code' must be a string of Python source")
        return Bundle(parse_script(body["code"].encode(), "code.py"), "py", "code.py")
    return read_workspace_notebook(config.workspace_for(user), user, body["path"], max_size=config.max_upload_size,
                                   **limits)


class JobHandler(APIHandler):
    @authenticated
    def get(self, job_id):
        self.write_json(job_model(self.get_job(job_id)))

    @authenticated
    async def delete(self, job_id):
        job = self.get_job(job_id)
        if job.status not in TERMINAL:
            job = await self.jobs.cancel(job, by=self.user_name)
            if job.status not in TERMINAL:
                raise web.HTTPError(409, f"job {job_id} is still {job.status}; try again shortly")
        self.jobs.delete(job)
        self.set_status(204)
        self.finish()


class CancelHandler(APIHandler):
    @authenticated
    async def post(self, job_id):
        job = self.get_job(job_id)
        if job.status in TERMINAL:
            raise web.HTTPError(409, f"job {job_id} already {job.status}")
        job = await self.jobs.cancel(job, by=self.user_name)  # kept as the job's cancelled_by
        self.write_json(job_model(job), 200 if job.status in TERMINAL else 202)


class RerunHandler(APIHandler):
    """Run a job again: as it was, or with what a JSON body ``{"parameters": {…}, "resources": {…},
    "timeout": s}`` changes (each checked as a submit checks it).

    The new job keeps the input (a bundle's data files too), name, requests, formats,
    webhook and notify, and is sized as a re-run (more of what a killed run ran out of);
    requested resources replace the job's own requests of those names. ``?dry_run=1``
    answers the would-be job, sized and explained in words, and stores nothing.
    """

    FIELDS = ("parameters", "resources", "timeout")

    @authenticated
    async def post(self, job_id):
        job = self.get_job(job_id)
        dry_run = self.flag_argument("dry_run")
        body = self.get_json_body()
        if not isinstance(body, dict):
            raise IntakeError("request body must be a JSON object like {\"parameters\": {\"alpha\": 0.5}}")
        unknown = sorted(set(body) - set(self.FIELDS))
        if unknown:
            raise IntakeError(f"unknown field(s) {', '.join(unknown)}; a re-run takes only "
                              f"{', '.join(repr(f) for f in self.FIELDS)}")
        parameters = None
        if "parameters" in body:
            if not isinstance(body["parameters"], dict):
                raise IntakeError("parameters must be a JSON object of name: value")
            parameters = await asyncio.to_thread(self.jobs.check_rerun_parameters, job, body["parameters"],
                                                 self.config.max_parameters_size)
        requested = parse_resources(body.get("resources"), body.get("timeout"))
        if dry_run:
            planned = await self.jobs.rerun(job, job.user, parameters=parameters, requested=requested, dry_run=True)
            would_be = job_model(Job(id=None, status=Status.QUEUED.value, input_hash=job.input_hash, cells_done=0,
                                     **planned))
            bounds = self.jobs.bounds
            would_be["resources"]["bounds"] = bounds  # what a request may ask for
            would_be["resources"]["explanation"] = sizing_words(would_be["resources"], bounds,
                                                                self.jobs.retry_words_of(job))
            return self.write_json(dict(would_be, dry_run=True), 200)
        new = await self.jobs.rerun(job, job.user, parameters=parameters, requested=requested)
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
        data = await self.jobs.output(job_id, fmt)
        if data is None:
            raise web.HTTPError(404, f"job {job_id} ended ({job.error_reason or job.status}) without an output notebook")
        name = None
        if self.flag_argument("download"):  # else shown inline, sandboxed like every render of a user's
            name = f"{clean_name(Path(job.input_name or '').stem, 'job')[:100]}-{job.id[:8]}.{fmt}"
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


class NotebooksHandler(APIHandler):
    """Notebooks and scripts in the caller's workspace, newest first."""

    @authenticated
    async def get(self):
        root = self.config.workspace_for(self.user_name)
        # what a submit by path would accept; links are never followed (hub_service/workspace.py)
        found = await asyncio.to_thread(list_notebooks, root)
        self.write_json({"workspace": root, "notebooks": found})


class MetricsHandler(APIHandler):
    """Prometheus exposition; admins (or a service token with admin rights) only."""

    @admin_only
    def get(self):
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(metrics.exposition(self.jobs.status_counts()))
