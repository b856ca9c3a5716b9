"""Handler bases: Hub authentication, ownership and admin checks, JSON errors, Hub-look pages.

Handlers talk to one object, the :class:`~hub_service.jobs.JobManager` (``self.jobs``), which
arrives through the Tornado application's settings, so handlers hold no state of their own.
"""

from __future__ import annotations

import functools
import inspect
import json
import traceback
from http.client import responses
from typing import Optional

from jupyterhub.services.auth import HubOAuthenticated, UserNotAllowed
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.log import app_log

from ..intake import IntakeError, load_json
from ..store import Job


class BaseHandler(HubOAuthenticated, web.RequestHandler):
    """Common to pages and API: who is asking, and may they see this job."""

    @property
    def jobs(self):
        return self.settings["jobs"]

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


def error_body(status: int, message: str, code: Optional[str] = None) -> str:
    """The JSON of an error answer: ``{"error": {code, message, status}}``."""
    return json.dumps({"error": {"code": code or responses.get(status, "error").lower().replace(" ", "_"),
                                 "message": message, "status": status}})


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

    def write_json(self, data, status: int = 200) -> None:
        """Answer with ``data`` as strict JSON: a NaN that got this far is a bug to see, not to send."""
        body = json.dumps(data, default=str, allow_nan=False)
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(body)

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        code, message = None, responses.get(status_code, "error")
        if isinstance(exc, IntakeError):
            code, message = exc.code, exc.message
        elif isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        elif exc is not None and status_code >= 500:
            app_log.error("".join(traceback.format_exception(*kwargs["exc_info"])))
            message = "internal error; the service log has the details"
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(error_body(status_code, message, code))

    def _handle_request_exception(self, e):
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

    def get_json_body(self):
        """The request body as strict JSON (finite numbers, bounded nesting), or 400 saying why not."""
        if not self.request.body:
            return {}
        return load_json(self.request.body, "request body")


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
