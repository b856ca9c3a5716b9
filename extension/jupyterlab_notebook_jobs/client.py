"""The one way this Jupyter server talks to the notebook-jobs service.

Every call carries the server's own Hub token (``JUPYTERHUB_API_TOKEN``, which the Hub
grants ``access:services!service=notebook-jobs``), so the service sees the server's
owner as the user. Whatever goes wrong on the way comes back as a :class:`ServiceError`
with a status and a message a person can act on: the service's own JSON errors as they
are, a service that does not answer as 503 ``service_unavailable``.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Optional
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Float, Unicode, default
from traitlets.config import LoggingConfigurable


class ServiceError(Exception):
    """A failed call, as the browser should see it: HTTP status, error code, message, and the
    field of the request it is about (an RFC 6901 pointer such as ``/parameters/alpha``), if one."""

    def __init__(self, status: int, code: str, message: str, field: Optional[str] = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def to_json(self) -> dict:
        """The service's error shape, so the frontend reads one format."""
        error = {"code": self.code, "message": self.message, "status": self.status}
        if self.field:
            error["field"] = self.field
        return {"error": error}


def translate_error(status: int, body: bytes) -> ServiceError:
    """A ServiceError for a response of the service with status >= 400."""
    try:
        err = json.loads(body.decode("utf-8", "replace"))["error"]
        code, message = str(err.get("code") or "error"), str(err["message"])
        field = err.get("field") if isinstance(err.get("field"), str) and err["field"].startswith("/") else None
    except (ValueError, KeyError, TypeError, AttributeError):
        # not the service's JSON: a proxy page or a crash; the status is all we know
        if status in (502, 503, 504):
            return ServiceError(503, "service_unavailable",
                                f"The notebook-jobs service is not available (it answered {status}); "
                                "try again in a moment, or ask your Hub admin if it persists.")
        return ServiceError(502, "bad_gateway", f"The notebook-jobs service answered {status} without an explanation.")
    if status in (401, 403):
        message = (f"The notebook-jobs service refused this server's Hub token: {message}. "
                   "The Hub must grant single-user servers access:services!service=notebook-jobs.")
    return ServiceError(status, code, message, field)


class ServiceClient(LoggingConfigurable):
    """Calls the service's REST API as the owner of this Jupyter server."""

    service_name = Unicode("notebook-jobs", help="The service's name in the Hub.").tag(config=True)

    service_url = Unicode(
        help="""Base URL of the service including its prefix, e.g.
        http://127.0.0.1:10101/services/notebook-jobs/. Defaults to $NOTEBOOK_JOBS_URL; when
        empty, the Hub's API is asked for the service's URL on first use (the token needs
        read:services!service=notebook-jobs for that)."""
    ).tag(config=True)

    api_token = Unicode(
        help="Token sent to the service; defaults to this server's Hub token, $JUPYTERHUB_API_TOKEN."
    ).tag(config=True)

    hub_api_url = Unicode(help="The Hub's API URL; defaults to $JUPYTERHUB_API_URL.").tag(config=True)

    connect_timeout = Float(5.0, help="Seconds to wait for the service to accept a connection.").tag(config=True)

    request_timeout = Float(
        60.0, help="Seconds a call may take (event streams are exempt: they last as long as the job)."
    ).tag(config=True)

    @default("service_url")
    def _default_service_url(self):
        return os.environ.get("NOTEBOOK_JOBS_URL", "")

    @default("api_token")
    def _default_api_token(self):
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    @default("hub_api_url")
    def _default_hub_api_url(self):
        return os.environ.get("JUPYTERHUB_API_URL", "")

    async def base_url(self) -> str:
        """The service's base URL, asking the Hub once if it was not configured."""
        if self.service_url:
            return self.service_url.rstrip("/") + "/"
        if not self.hub_api_url:
            raise ServiceError(503, "not_configured",
                               "This Jupyter server does not know where the notebook-jobs service is: it was not "
                               "started by a JupyterHub, and NOTEBOOK_JOBS_URL is not set.")
        url = f"{self.hub_api_url.rstrip('/')}/services/{quote(self.service_name)}"
        try:
            r = await AsyncHTTPClient().fetch(url, headers=self._auth(), connect_timeout=self.connect_timeout,
                                              request_timeout=self.connect_timeout * 2)
        except HTTPClientError as e:
            raise ServiceError(503, "service_unavailable",
                               f"The Hub does not list a service {self.service_name!r} for this server "
                               f"({e.code}).") from None
        except OSError as e:
            raise ServiceError(503, "service_unavailable", f"The Hub is not answering: {e}") from None
        model = json.loads(r.body)
        if not model.get("url"):
            raise ServiceError(503, "service_unavailable", f"The Hub's service {self.service_name!r} has no URL.")
        self.service_url = model["url"].rstrip("/") + model.get("prefix", f"/services/{self.service_name}/")
        return self.service_url.rstrip("/") + "/"

    def _auth(self) -> dict:
        if not self.api_token:
            raise ServiceError(503, "not_configured",
                               "This Jupyter server has no Hub token (JUPYTERHUB_API_TOKEN), so it cannot call "
                               "the notebook-jobs service on your behalf.")
        return {"Authorization": f"token {self.api_token}"}

    async def request(
        self,
        method: str,
        path: str,
        body: Optional[bytes] = None,
        headers: Optional[dict] = None,
        on_chunk: Optional[Callable[[int, dict, bytes], None]] = None,
        stream: bool = False,
    ):
        """Call ``api/<path>`` of the service; the response, or a ServiceError for any failure.

        With ``on_chunk`` the body is handed over as it arrives (``on_chunk(status,
        headers, chunk)``) when the status is below 400; the returned response then has no
        body. ``stream`` lifts the request timeout (event streams, followed logs).
        """
        base = await self.base_url()
        url = base + "api/" + path.lstrip("/")
        status_line: dict = {}
        response_headers: dict = {}
        error_body: list = []

        def header_callback(line: str) -> None:
            if line.startswith("HTTP/"):
                status_line["code"] = int(line.split()[1])
                response_headers.clear()
            elif ":" in line:
                k, v = line.split(":", 1)
                response_headers[k.strip().lower()] = v.strip()

        def streaming_callback(chunk: bytes) -> None:
            code = status_line.get("code", 200)
            if code >= 400:
                error_body.append(chunk)
            else:
                on_chunk(code, response_headers, chunk)

        request = HTTPRequest(
            url,
            method=method,
            body=body if body is not None else (b"" if method in ("POST", "PUT", "PATCH") else None),
            headers={**(headers or {}), **self._auth()},
            connect_timeout=self.connect_timeout,
            request_timeout=24 * 3600.0 if stream else self.request_timeout,
            follow_redirects=False,
            header_callback=header_callback if on_chunk else None,
            streaming_callback=streaming_callback if on_chunk else None,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except OSError as e:  # connection refused, host unreachable
            raise ServiceError(503, "service_unavailable",
                               f"The notebook-jobs service is not answering at {base} ({e.strerror or e}). "
                               "It may be restarting; try again in a moment, or ask your Hub admin.") from None
        if response.code == 599:  # tornado's code for no HTTP answer: refused, reset, timed out
            reason = str(response.error)
            if "Timeout" in reason:
                raise ServiceError(504, "service_timeout",
                                   f"The notebook-jobs service did not answer within {self.request_timeout:.0f} s.")
            raise ServiceError(503, "service_unavailable",
                               f"The notebook-jobs service is not answering at {base} ({reason}). "
                               "It may be restarting; try again in a moment, or ask your Hub admin.")
        if response.code >= 400:
            raise translate_error(response.code, b"".join(error_body) or (response.body or b""))
        if 300 <= response.code < 400:  # e.g. a login redirect: the token was not accepted
            raise ServiceError(403, "forbidden",
                               "The notebook-jobs service redirected this server's call to a login page: "
                               "the Hub must grant single-user servers access:services!service=notebook-jobs.")
        return response

    async def json(self, method: str, path: str, payload=None):
        """Call the service with a JSON body and return its JSON answer (None for 204)."""
        body = json.dumps(payload).encode() if payload is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        response = await self.request(method, path, body, headers)
        return json.loads(response.body) if response.body else None
