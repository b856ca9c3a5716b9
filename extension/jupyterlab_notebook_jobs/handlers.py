"""Routes of the server extension under ``{base_url}notebook-jobs/``. Thin: each reads the
request, asks :mod:`.client` (and the contents manager), and answers.

  POST jobs[?dry_run=1]      submit (or size) a file of the workspace, read through the
                             contents manager, so it works wherever the user's files live
  POST jobs/{id}/rerun       run a job again, with other parameters when the body has them
  POST jobs/{id}/open        copy the executed notebook to job-outputs/<name>-<id>.ipynb
  *    api/<path>            anything else of the service's REST API, forwarded as it is
                             (event streams and outputs are streamed through)
"""

from __future__ import annotations

import json
import posixpath
import re

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import ensure_async, url_path_join
from tornado import web
from tornado.iostream import StreamClosedError

from .client import ServiceClient, ServiceError

JOB_ID = r"(?P<job_id>[A-Za-z0-9_-]+)"
# headers of the service's answer that the browser needs (type, download name, caching)
PASSED_HEADERS = ("content-type", "content-disposition", "cache-control", "x-accel-buffering", "location")


class BaseHandler(APIHandler):
    """Errors in the service's own JSON shape: ``{"error": {"code", "message"}}``."""

    def initialize(self, client: ServiceClient):
        self.client = client

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"code": "error", "message": message}}))

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
        raise ServiceError(400, "invalid_input", "'path' (the file to run) is required")
    try:
        model = await ensure_async(contents_manager.get(path, content=True))
    except web.HTTPError as e:
        raise ServiceError(e.status_code, "not_found" if e.status_code == 404 else "invalid_input",
                           e.log_message or f"cannot read {path}") from None
    if model["type"] == "notebook":
        return {"notebook": model["content"]}
    if model["type"] == "file" and path.endswith(".py") and model.get("format") == "text":
        return {"code": model["content"]}
    raise ServiceError(400, "invalid_input", f"{path} is not a notebook (.ipynb) or a Python script (.py)")


class SubmitHandler(BaseHandler):
    """``POST jobs``: body ``{path, parameters, name, resources, timeout, output_formats}``."""

    @web.authenticated
    async def post(self):
        try:
            body = self.body_json()
            payload = await read_source(self.contents_manager, body.get("path"))
            payload["name"] = body.get("name") or posixpath.basename(body["path"])
            for key in ("parameters", "resources", "timeout", "output_formats"):
                if body.get(key) not in (None, "", {}):
                    payload[key] = body[key]
            dry = self.get_argument("dry_run", "") in ("1", "true")
            job = await self.client.json("POST", "jobs" + ("?dry_run=1" if dry else ""), payload)
        except ServiceError as e:
            return self.fail(e)
        self.set_status(200 if dry else 201)
        self.finish(json.dumps(job))


class RerunHandler(BaseHandler):
    """``POST jobs/{id}/rerun``: the service's rerun, with the body's ``parameters`` when it has them.

    The service checks them against the job's stored input and keeps everything else of
    the job: its data files, requests, webhook, notify, and the larger limits a run
    killed for memory or time gets.
    """

    @web.authenticated
    async def post(self, job_id):
        try:
            body = self.body_json()
            payload = {"parameters": body["parameters"] or {}} if "parameters" in body else None
            job = await self.client.json("POST", f"jobs/{job_id}/rerun", payload)
        except ServiceError as e:
            return self.fail(e)
        self.set_status(201)
        self.finish(json.dumps(job))


def output_path(job: dict) -> str:
    """Where a job's executed notebook is copied in the workspace."""
    stem = posixpath.splitext(posixpath.basename(job.get("name") or "job"))[0]
    stem = re.sub(r"[^\w.-]+", "-", stem).strip("-.") or "job"
    return f"job-outputs/{stem}-{job['id']}.ipynb"


class OpenOutputHandler(BaseHandler):
    """``POST jobs/{id}/open``: copy the output notebook into the workspace; ``{path}``."""

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


class ForwardHandler(BaseHandler):
    """``api/<path>``: the service's REST API as the server's owner, bodies streamed back."""

    async def _forward(self, path: str):
        query = ("?" + self.request.query) if self.request.query else ""
        streams = path.endswith("/events") or "follow=" in query
        started = False

        def on_chunk(status, headers, chunk):
            nonlocal started
            if not started:
                started = True
                self.set_status(status)
                for name in PASSED_HEADERS:
                    if name in headers:
                        self.set_header(name.title(), headers[name])
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
            self.set_status(response.code)
            for name in PASSED_HEADERS:
                if response.headers.get(name):
                    self.set_header(name.title(), response.headers[name])
        # APIHandler.finish would call every answer JSON: keep the service's type (HTML, text, ipynb)
        self.finish(set_content_type=self._headers.get("Content-Type", "application/json"))

    @web.authenticated
    async def get(self, path):
        await self._forward(path)

    @web.authenticated
    async def post(self, path):
        await self._forward(path)

    @web.authenticated
    async def delete(self, path):
        await self._forward(path)


def setup_handlers(web_app, client: ServiceClient) -> None:
    """Add the extension's routes to the Jupyter server."""
    base = url_path_join(web_app.settings["base_url"], "notebook-jobs")
    kw = {"client": client}
    web_app.add_handlers(".*$", [
        (url_path_join(base, "jobs"), SubmitHandler, kw),
        (url_path_join(base, "jobs", JOB_ID, "rerun"), RerunHandler, kw),
        (url_path_join(base, "jobs", JOB_ID, "open"), OpenOutputHandler, kw),
        (url_path_join(base, "api", "(?P<path>.*)"), ForwardHandler, kw),
    ])
