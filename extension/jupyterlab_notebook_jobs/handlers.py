"""Routes of the server extension: the service's REST API under ``{base_url}notebook-jobs/api/``,
each at the service's own path. Thin: each reads the request, asks :mod:`.client` (and the
contents manager), and answers. Four of them do more than forward:

  POST api/jobs[?dry_run=1]  a body with ``path``: that file of the workspace, read through the
                             contents manager (so it works wherever the user's files live), is
                             sent as the notebook (or the script); any other body goes as it is
  POST api/sweeps            the same for a sweep of that file (``parameters`` of lists, or ``runs``)
  POST api/jobs/{id}/rerun[?dry_run=1]
                             the service's rerun, its dry run asked only of a service that
                             documents one (an older one would run the job)
  POST api/jobs/{id}/open    this server's own: copy the executed notebook to
                             job-outputs/<name>-<id>.ipynb in the workspace
  *    api/<path>            anything else (GET, POST, PUT, PATCH, DELETE), forwarded as it is
                             (event streams and outputs are streamed through)

The forwarded answers come from the Hub's origin (single-user servers live under /user/
on it), and some of them are the user's own content (a notebook's HTML render, its
Markdown, its input): whatever the service says, anything but its JSON answers and event
streams goes out with ``Content-Security-Policy: sandbox`` (no scripts, an opaque origin) and
``X-Content-Type-Options: nosniff``.

An error about one field of the request names it (``error.field``, a JSON pointer into the
request's body as the browser sent it): the service's pointers pass through, except that a
file read from the workspace is the request's ``/path`` (the service saw it as ``/notebook``).
"""

from __future__ import annotations

import json
import posixpath
import re
from urllib.parse import unquote_plus

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import ensure_async, url_path_join
from tornado import web
from tornado.iostream import StreamClosedError

from .client import ServiceClient, ServiceError

JOB_ID = r"(?P<job_id>[A-Za-z0-9_-]+)"
# headers of the service's answer that the browser needs (type, download name, caching, and
# what the service says of its user content: its CSP is added to the server's own, below)
PASSED_HEADERS = ("content-type", "content-disposition", "cache-control", "x-accel-buffering", "location",
                  "x-content-type-options")
CSP = "content-security-policy"
# the service's API answers and event streams, which the Lab page reads with fetch and
# EventSource; everything else (a render, a log, a notebook's JSON too) is the user's content
UNSANDBOXED_TYPE = re.compile(r"^\s*(application/json|text/event-stream)\s*(?:;|$)", re.I)


def forwarded_query(query: str) -> str:
    """The request's query for the service: without ``_xsrf``, which is for this server only
    (an EventSource sends its XSRF token that way), the rest exactly as it came."""
    kept = [part for part in query.split("&") if part and unquote_plus(part.split("=", 1)[0]) != "_xsrf"]
    return ("?" + "&".join(kept)) if kept else ""


class BaseHandler(APIHandler):
    """Errors in the service's own JSON shape: ``{"error": {"code", "message"}}``."""

    def initialize(self, client: ServiceClient):
        self.client = client

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"code": "error", "message": message, "status": status_code}}))

    def fail(self, err: ServiceError) -> None:
        """Answer with a translated error."""
        if err.status >= 500:
            self.log.warning("notebook-jobs: %s", err.message)
        self.set_status(err.status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(err.to_json()))

    def body_json(self) -> dict:
        """The request's JSON object, or an empty one."""
        if not self.request.body:
            return {}
        try:
            body = json.loads(self.request.body)
        except ValueError as e:
            raise ServiceError(400, "invalid_input", f"request body is not JSON: {e}") from None
        if not isinstance(body, dict):
            raise ServiceError(400, "invalid_input", "request body must be a JSON object")
        return body


async def read_source(contents_manager, path: str) -> dict:
    """The service's JSON source fields for a workspace file: its notebook or its code."""
    if not isinstance(path, str) or not path:
        raise ServiceError(400, "invalid_input", "'path' (the file to run) is required", "/path")
    try:
        model = await ensure_async(contents_manager.get(path, content=True))
    except web.HTTPError as e:
        raise ServiceError(e.status_code, "not_found" if e.status_code == 404 else "invalid_input",
                           e.log_message or f"cannot read {path}", "/path") from None
    if model["type"] == "notebook":
        return {"notebook": model["content"]}
    if model["type"] == "file" and path.endswith(".py") and model.get("format") == "text":
        return {"code": model["content"]}
    raise ServiceError(400, "invalid_input", f"{path} is not a notebook (.ipynb) or a Python script (.py)", "/path")


#: the service's fields for the file a request named by its ``path``
SOURCE_POINTERS = ("/notebook", "/code")


def as_sent(err: ServiceError) -> ServiceError:
    """``err`` with its field as the browser's request spelled it: the file it sent as ``path``."""
    if err.field and any(err.field == p or err.field.startswith(p + "/") for p in SOURCE_POINTERS):
        err.field = "/path"
    return err


class ForwardHandler(BaseHandler):
    """``api/<path>``: the service's REST API as the server's owner, bodies streamed back."""

    def service_path(self, path: str) -> str:
        """The service's path for this route's named groups."""
        return path

    def _answer_headers(self, status: int, headers) -> None:
        """The status and headers of a forwarded answer (``headers``: the service's, lowercase names)."""
        self.set_status(status)
        for name in PASSED_HEADERS:
            if headers.get(name):
                self.set_header(name.title(), headers[name])
        content_type = headers.get("content-type") or ""
        if not UNSANDBOXED_TYPE.match(content_type):
            # user content on the Hub's origin: no scripts, no same-origin access, no sniffing
            # into HTML, whatever the service sent (the server's own CSP stays, stricter)
            own = self._headers.get("Content-Security-Policy")
            self.set_header("Content-Security-Policy", f"{own}; sandbox" if own else "sandbox")
            self.set_header("X-Content-Type-Options", "nosniff")
        if headers.get(CSP):
            # a second policy: the browser enforces both (each can only take away)
            self.add_header("Content-Security-Policy", headers[CSP])

    async def _forward(self, path: str):
        query = forwarded_query(self.request.query)
        streams = path.endswith("/events") or "follow=" in query
        started = False

        def on_chunk(status, headers, chunk):
            nonlocal started
            if not started:
                started = True
                self._answer_headers(status, headers)
            self.write(chunk)
            if streams:
                # raising here hangs up on the service too when the browser has gone
                self.flush()
                if self.request.connection.stream.closed():
                    raise StreamClosedError()

        headers = {}
        if self.request.body:
            headers["Content-Type"] = self.request.headers.get("Content-Type", "application/json")
        try:
            response = await self.client.request(
                self.request.method, path + query, self.request.body or None, headers, on_chunk=on_chunk,
                stream=streams,
            )
        except ServiceError as e:
            if started:  # the stream broke after it began: nothing more to say
                return self.finish()
            return self.fail(e)
        except StreamClosedError:
            return
        if not started:
            self._answer_headers(response.code, {k.lower(): v for k, v in response.headers.get_all()})
        # APIHandler.finish would call every answer JSON: keep the service's type (HTML, text, ipynb)
        self.finish(set_content_type=self._headers.get("Content-Type", "application/json"))

    @web.authenticated
    async def get(self, **route):
        await self._forward(self.service_path(**route))

    @web.authenticated
    async def post(self, **route):
        await self._forward(self.service_path(**route))

    @web.authenticated
    async def put(self, **route):
        await self._forward(self.service_path(**route))

    @web.authenticated
    async def patch(self, **route):
        await self._forward(self.service_path(**route))

    @web.authenticated
    async def delete(self, **route):
        await self._forward(self.service_path(**route))


class SubmitHandler(ForwardHandler):
    """``POST api/jobs``: body ``{path, parameters, name, resources, timeout, output_formats, environment}``, the
    file at ``path`` read from the workspace; a body without ``path`` (and every other method)
    goes to the service as it is."""

    #: the service's path the submission goes to
    target = "jobs"
    #: what of the body goes with the file
    fields = ("parameters", "resources", "timeout", "output_formats", "environment")

    def service_path(self) -> str:
        return self.target

    @web.authenticated
    async def post(self):
        if not self.names_a_path():
            return await self._forward(self.target)
        try:
            body = self.body_json()
            payload = await read_source(self.contents_manager, body.get("path"))
            payload["name"] = body.get("name") or posixpath.basename(body["path"])
            for key in self.fields:
                if body.get(key) not in (None, "", {}):
                    payload[key] = body[key]
            dry = self.get_argument("dry_run", "") in ("1", "true")
            made = await self.client.json("POST", self.target + ("?dry_run=1" if dry else ""), payload)
        except ServiceError as e:
            return self.fail(as_sent(e))
        self.set_status(200 if dry else 201)
        self.finish(json.dumps(made))

    def names_a_path(self) -> bool:
        """Whether the body is JSON with a ``path`` (a body that is not JSON is refused as one)."""
        if self.request.headers.get("Content-Type", "application/json").split(";")[0].strip() != "application/json":
            return False
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            return True  # body_json says what is wrong with it
        return not isinstance(body, dict) or "path" in body


class SweepSubmitHandler(SubmitHandler):
    """``POST api/sweeps``: a sweep of the workspace file at ``path``, read as a job's is; its
    ``parameters`` map names to lists of values (the grid), or ``runs`` lists the combinations."""

    target = "sweeps"
    fields = SubmitHandler.fields + ("runs",)


class RerunHandler(ForwardHandler):
    """``POST api/jobs/{id}/rerun[?dry_run=1]``: the service's rerun, with what the body changes.

    The body's ``parameters``, ``resources`` (``{"memory": "2GB", "cpu": 1}``) and
    ``timeout`` go to the service when present; the service checks them against the job and
    keeps everything else of it: its data files, requests, webhook, notify, and the larger
    limits a run killed for memory or time gets. ``?dry_run=1`` answers the would-be job
    (``resources.allocated``, ``bounds``, ``explanation``) and runs nothing.
    """

    def service_path(self, job_id: str) -> str:
        return f"jobs/{job_id}/rerun"

    @web.authenticated
    async def post(self, job_id):
        try:
            body = self.body_json()
            payload = {}
            if "parameters" in body:
                payload["parameters"] = body["parameters"] or {}
            for key in ("resources", "timeout"):
                if body.get(key) not in (None, "", {}):
                    payload[key] = body[key]
            dry = self.get_argument("dry_run", "") in ("1", "true")
            if dry and not await rerun_dry_run_offered(self.client):
                # a service without it would run the job: never ask one that does not say it has it
                raise ServiceError(404, "not_supported", "the service does not size a rerun ahead of it (no dry run)")
            job = await self.client.json("POST", f"jobs/{job_id}/rerun" + ("?dry_run=1" if dry else ""),
                                         payload or None)
        except ServiceError as e:
            return self.fail(e)
        self.set_status(200 if dry else 201)
        self.finish(json.dumps(job))


async def rerun_dry_run_offered(client: ServiceClient) -> bool:
    """Whether the service's rerun takes ``dry_run`` (its OpenAPI document says so).

    An older service ignores the query and would start the job, so the Rerun dialog's
    sizing asks only a service that documents it (asked each time the dialog opens: a
    service upgraded or rolled back under a running Lab is seen).
    """
    try:
        spec = await client.json("GET", "openapi.json")
        op = (spec or {}).get("paths", {}).get("/jobs/{job_id}/rerun", {}).get("post", {})
        offered = any(isinstance(p, dict) and p.get("name") == "dry_run" and p.get("in") == "query"
                      for p in op.get("parameters", []))
    except (ServiceError, AttributeError, TypeError):
        offered = False
    return offered


def output_path(job: dict) -> str:
    """Where a job's executed notebook is copied in the workspace."""
    stem = posixpath.splitext(posixpath.basename(job.get("name") or "job"))[0]
    stem = re.sub(r"[^\w.-]+", "-", stem).strip("-.") or "job"
    return f"job-outputs/{stem}-{job['id']}.ipynb"


class OpenOutputHandler(BaseHandler):
    """``POST api/jobs/{id}/open``: copy the output notebook into the workspace; ``{path}``."""

    @web.authenticated
    async def post(self, job_id):
        cm = self.contents_manager
        try:
            job = await self.client.json("GET", f"jobs/{job_id}")
            response = await self.client.request("GET", f"jobs/{job_id}/output?format=ipynb")
            path = output_path(job)
            if not await ensure_async(cm.dir_exists("job-outputs")):
                await ensure_async(cm.save({"type": "directory"}, "job-outputs"))
            await ensure_async(cm.save({"type": "notebook", "format": "json",
                                        "content": json.loads(response.body)}, path))
        except ServiceError as e:
            return self.fail(e)
        self.finish(json.dumps({"path": path}))


def setup_handlers(web_app, client: ServiceClient) -> None:
    """Add the extension's routes to the Jupyter server: the service's API, at its own paths."""
    api = url_path_join(web_app.settings["base_url"], "notebook-jobs", "api")
    kw = {"client": client}
    web_app.add_handlers(".*$", [
        (url_path_join(api, "jobs"), SubmitHandler, kw),
        (url_path_join(api, "sweeps"), SweepSubmitHandler, kw),
        (url_path_join(api, "jobs", JOB_ID, "rerun"), RerunHandler, kw),
        (url_path_join(api, "jobs", JOB_ID, "open"), OpenOutputHandler, kw),
        (url_path_join(api, "(?P<path>.*)"), ForwardHandler, kw),
    ])
