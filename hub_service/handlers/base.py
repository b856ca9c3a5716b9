"""Handler bases: Hub authentication, ownership and admin checks, JSON errors, Hub-look pages.

Handlers ask the read side, :class:`~hub_service.views.JobViews` (``self.jobs``), and hand
requests to the job flow, :class:`~hub_service.jobs.JobManager` (``self.flow``); both arrive
through the Tornado application's settings, with the users' ``workspaces`` and the
submission ``limits``, so handlers hold no state of their own.
"""

from __future__ import annotations

import functools
import gzip
import inspect
import json
import secrets
import traceback
from http.client import responses
from typing import Optional
from urllib.parse import quote

from jupyterhub.services.auth import HubOAuthenticated, UserNotAllowed
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.log import app_log

from ..intake import IntakeError, clean_name, load_json
from ..store import Job, SweepGone


#: JSON answers of at least this many bytes are gzipped (at level 1) for a client that accepts it. A listing of 50
#: jobs is about 75 kB and gzips to 7 kB in 0.2 ms: sent plain to the Hub's proxy, it held the event loop about as
#: long as its query did (a profile of the service during a drain of jobs), and a Lab panel on a remote network
#: waits for every byte.
GZIP_FROM = 4096


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    """Common to pages and API: who is asking, and may they see this job."""

    @property
    def jobs(self):
        """The read side: listings, one job, its files and events (:class:`~hub_service.views.JobViews`)."""
        return self.settings["jobs"]

    @property
    def flow(self):
        """The job flow: plan, submit, cancel, delete (:class:`~hub_service.jobs.JobManager`)."""
        return self.settings["flow"]

    @property
    def planner(self):
        """The demand model's keeper: its report, retraining (:class:`~hub_service.planning.DemandPlanner`)."""
        return self.settings["planner"]

    @property
    def workspaces(self):
        """The users' workspaces (:class:`~hub_service.workspace.Workspaces`)."""
        return self.settings["workspaces"]

    @property
    def limits(self):
        """How much a submission may be (:class:`~hub_service.intake.Limits`)."""
        return self.workspaces.limits

    @property
    def config(self):
        return self.settings["service_config"]

    @property
    def prefix(self) -> str:
        return self.settings["service_prefix"]

    def check_hub_user(self, model):
        try:
            return super().check_hub_user(model)
        except UserNotAllowed:
            self._not_allowed = model  # authenticated, but lacks the service's access scope
            raise

    async def identify(self) -> None:
        """Ask the Hub who is calling without blocking the event loop; ``current_user`` then reads the answer.

        HubAuth's own lookup behind ``current_user`` is synchronous: it hands the request to
        a thread of its own and waits, holding the loop for a Hub round trip on each cache
        miss (every ``auth_cache_max_age`` seconds per token) and for a thread hop otherwise.
        """
        self._hub_user_model = await self.hub_auth.get_user(self, sync=False)

    def get_current_user(self):
        if not hasattr(self, "_hub_user_model"):  # not identified asynchronously (pages)
            return super().get_current_user()
        try:
            return self.check_hub_user(self._hub_user_model) if self._hub_user_model else None
        except UserNotAllowed:
            return None

    @property
    def user_name(self) -> Optional[str]:
        model = self.current_user
        return model["name"] if model else None

    @property
    def is_admin(self) -> bool:
        """Hub admins, and members of the groups an admin named, see and act on all jobs."""
        model = self.current_user or {}
        if model.get("admin"):
            return True
        return bool(set(model.get("groups") or ()) & set(self.config.admin_groups))

    def get_job(self, job_id: str) -> Job:
        """The job if the caller may see it; otherwise 404, as if it did not exist."""
        job = self.jobs.get(job_id, None if self.is_admin else self.user_name)
        if job is None:
            raise web.HTTPError(404, f"no job {job_id}")
        return job

    def api_url(self, *parts) -> str:
        return url_path_join(self.prefix, "api", *parts)

    def page_headers(self) -> str:
        """Headers of a page the service renders (:data:`PAGE_CSP`, with a nonce of its own); the nonce,
        which the page's one inline script (the Hub's page.html's) carries."""
        nonce = secrets.token_urlsafe(18)
        self.set_header("Content-Security-Policy", PAGE_CSP.format(nonce=nonce))
        return nonce

    # -- what users made: notebooks, renders, logs ---------------------------------------------

    def user_content_headers(self, media_type: str, *, download_name: Optional[str] = None) -> None:
        """Headers of a response whose body a user made (see :func:`serve_user_content`); for
        answers streamed in parts (a followed log, events), set before the first part."""
        self.set_header("Content-Type", media_type)
        self.set_header("Content-Security-Policy", USER_CONTENT_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        if download_name is not None:
            self.set_header("Content-Disposition", content_disposition(download_name))

    def serve_user_content(self, data: bytes, media_type: str, *, download_name: Optional[str] = None):
        """Answer with ``data``, made by a user (a notebook, its renders, its log), so that it
        can run no script in the Hub's origin, whoever opens it.

        The one rule for every such answer: the media type said and not to be sniffed
        (``nosniff``); ``Content-Security-Policy: sandbox``, so a browser that renders it
        gives it an origin of its own and runs none of its scripts (a notebook's HTML with a
        ``<script>`` opened by an admin reads no token of the Hub); and with
        ``download_name``, ``Content-Disposition: attachment`` with that name (RFC 6266), so
        it is saved, not shown.
        """
        self.user_content_headers(media_type, download_name=download_name)
        return self.finish(data)


#: what a yes/no query argument may be (the OpenAPI document's enum)
FLAG_VALUES = ("", "0", "1", "true", "false")
#: the most items a listing gives in one page
MAX_PAGE = 200


#: the Content-Security-Policy of everything users made: its own opaque origin, no scripts,
#: forms, pop-ups or plugins (only what a static render needs still works: styles, images)
USER_CONTENT_CSP = "sandbox"
#: the Content-Security-Policy of the service's own pages, which show what many users made on the
#: Hub's one origin: scripts and styles only from files of that origin (no inline script but the
#: one with the answer's ``{nonce}``, no style attribute, no ``eval``), requests and frames (a
#: job's output, sandboxed) to it alone, no plugin or ``<base>``, and framed by the Hub's pages
#: only. A name or parameter a page shows is text; were an escape ever missed, it still runs nothing.
PAGE_CSP = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'; "
            "object-src 'none'")
#: the Content-Security-Policy of the pages' own static files (and the 404 of one missing): nothing runs in them
#: as documents
STATIC_CSP = "default-src 'none'; frame-ancestors 'self'; base-uri 'none'"
#: what RFC 8187 lets stand unescaped in a ``filename*`` (attr-char)
_ATTR_CHARS = "!#$&+-.^_`|~"


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """``attachment; filename="…"; filename*=UTF-8''…`` (RFC 6266) for any name, however odd.

    The name is first made fit for a name (intake's :func:`~hub_service.intake.clean_name`:
    no control characters, so no header can be split); ``filename`` is its ASCII stand-in
    (no quote, backslash or percent sign: nothing can end the string or add a parameter),
    ``filename*`` the name itself, percent-encoded UTF-8, which browsers prefer.
    """
    name = clean_name(filename, "download")
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\%' else "_" for c in name)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe=_ATTR_CHARS)}"


def error_body(status: int, message: str, code: Optional[str] = None, field: Optional[str] = None) -> str:
    """The JSON of an error answer: ``{"error": {code, message, status}}``, and ``field`` (a JSON pointer into
    the request) when it is about one field of it."""
    error = {"code": code or responses.get(status, "error").lower().replace(" ", "_"), "message": message,
             "status": status}
    if field is not None:
        error["field"] = field
    return json.dumps({"error": error})


class APIHandler(BaseHandler):
    """JSON in, JSON out; errors are ``{"error": {code, message}}``, never a login redirect."""

    def get_login_url(self):
        raise web.HTTPError(401, "authentication required: send 'Authorization: token <hub token>'")

    def check_xsrf_cookie(self):
        # token requests skip XSRF (HubAuth sets _token_authenticated); cookie writes need it
        return self.hub_auth.check_xsrf_cookie(self)

    def set_default_headers(self):
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")  # JSON is never read as a page

    def write_json(self, data, status: int = 200) -> None:
        """Answer with ``data`` as strict JSON: a NaN that got this far is a bug to see, not to send. A large one
        goes gzipped to a client that takes it (see :data:`GZIP_FROM`)."""
        body = json.dumps(data, default=str, allow_nan=False).encode()
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.add_header("Vary", "Accept-Encoding")
        if len(body) >= GZIP_FROM and "gzip" in self.request.headers.get("Accept-Encoding", ""):
            # (mtime 0: the same answer gzips to the same bytes, so that its ETag still matches)
            body = gzip.compress(body, compresslevel=1, mtime=0)
            self.set_header("Content-Encoding", "gzip")
        # how long the service took, from the request's headers read to its answer made: a client (the browser's
        # network panel, bench_load) tells the service's time from the proxy's and the wait for the service
        self.set_header("Server-Timing", f"app;dur={1000 * self.request.request_time():.1f}")
        self.finish(body)

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        code, message, field = None, responses.get(status_code, "error"), None
        if isinstance(exc, IntakeError):
            code, message, field = exc.code, exc.message, exc.field
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        elif exc is not None and status_code >= 500:
            app_log.error("".join(traceback.format_exception(*kwargs["exc_info"])))
            message = "internal error; the service log has the details"
        if status_code == 405:  # RFC 9110: a 405 says which methods the resource has
            self.set_header("Allow", ", ".join(allowed_methods(type(self))))
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(error_body(status_code, message, code, field))

    def _handle_request_exception(self, e):
        if isinstance(e, SweepGone):  # (a rerun of a sweep or of its run, the sweep deleted while it was made)
            gone = web.HTTPError(404, str(e))
            self.send_error(404, exc_info=(type(gone), gone, e.__traceback__))
            return
        if isinstance(e, IntakeError):
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)

    def require_user(self) -> dict:
        """The authenticated caller, or 401 (no or bad credentials) / 403 (not allowed here)."""
        model = self.current_user
        if model is None:
            if getattr(self, "_not_allowed", None):
                raise web.HTTPError(403, f"{self._not_allowed['name']} may not use this service")
            raise web.HTTPError(401, "authentication required: send 'Authorization: token <hub token>'")
        return model

    def require_admin(self) -> dict:
        model = self.require_user()
        if not self.is_admin:
            raise web.HTTPError(403, "only Hub admins may do this")
        return model

    def page_limit(self) -> int:
        """The ``limit`` query argument of a listing: 1 to ``MAX_PAGE`` (absent: 50); else a 400 saying so."""
        try:
            limit = int(self.get_argument("limit", "50"))
        except ValueError:
            raise IntakeError("limit must be a whole number") from None
        if not 1 <= limit <= MAX_PAGE:
            raise IntakeError(f"limit must be between 1 and {MAX_PAGE}")
        return limit

    def flag_argument(self, name: str) -> bool:
        """A yes/no query argument: ``1``/``true`` or ``0``/``false`` (absent: no); anything else is a 400 naming it."""
        value = self.get_argument(name, "")
        if value not in FLAG_VALUES:
            raise IntakeError(f"{name} must be 1, true, 0 or false, not {value[:40]!r}")
        return value in ("1", "true")

    def get_json_body(self):
        """The request body as strict JSON (finite numbers, bounded nesting), or 400 saying why not."""
        if not self.request.body:
            return {}
        return load_json(self.request.body, "request body")


def allowed_methods(handler_class) -> list:
    """The HTTP methods ``handler_class`` answers (those it defines beyond Tornado's 405 stubs), with those of the
    handler of its URL's reads when another one has them (an upload's ``reads``)."""
    classes = [c for c in (handler_class, getattr(handler_class, "reads", None)) if c is not None]
    return [m for m in handler_class.SUPPORTED_METHODS if m != "OPTIONS"
            and any(getattr(c, m.lower()) is not getattr(web.RequestHandler, m.lower()) for c in classes)]


def _guarded_by(check: str):
    """A decorator that runs the handler's ``check`` method (which raises 401/403) first."""

    def decorator(method):
        @functools.wraps(method)
        async def wrapper(self, *args, **kwargs):
            await self.identify()
            getattr(self, check)()
            result = method(self, *args, **kwargs)
            return (await result) if inspect.isawaitable(result) else result

        return wrapper

    return decorator


#: Require a Hub-authenticated caller with access to the service (401/403 JSON otherwise).
authenticated = _guarded_by("require_user")
#: Require a Hub admin (403 JSON otherwise).
admin_only = _guarded_by("require_admin")
