"""A REST client of the service: what the ``notebook-jobs`` CLI (and any script) talks through.

Every way a call can go wrong ends as one ``ClientError`` whose text is a sentence a
person can act on: the service's own ``error.message`` for a 4xx, "cannot reach …" when
nothing answers, and a plain description when something that is not the service (the
Hub's proxy, a wrong ``--url``) answers instead.
"""

from __future__ import annotations

import codecs
import json
import os
import time
from typing import Callable, Iterator, Optional

import requests

from .states import TERMINAL

DEFAULT_HUB_URL = "http://127.0.0.1:8000"
SERVICE_PATH = "/services/notebook-jobs/"
# The events stream says something (a keep-alive at least) every 15 s. The Hub's proxy
# keeps a stream open, and silent, after the service behind it died: after this long, drop it.
EVENTS_SILENCE = 60.0


class ClientError(Exception):
    """A call that did not get what it asked for; ``str()`` is the one line to show."""

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status


def service_url(url: Optional[str] = None) -> str:
    """The service's base URL: ``url``, else ``$NOTEBOOK_JOBS_URL``, else under ``$JUPYTERHUB_URL``."""
    url = url or os.environ.get("NOTEBOOK_JOBS_URL")
    if not url:
        url = os.environ.get("JUPYTERHUB_URL", DEFAULT_HUB_URL).rstrip("/") + SERVICE_PATH
    return url.rstrip("/") + "/"


class Client:
    """The service's REST API, authenticated with a Hub token."""

    def __init__(self, url: str, token: str, timeout: float = 30, silence: float = EVENTS_SILENCE):
        self.url = service_url(url)
        self.base = self.url + "api/"
        self.timeout, self.silence = timeout, silence
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"

    def job_page(self, job_id: str) -> str:
        """The job's page in a browser."""
        return f"{self.url}jobs/{job_id}"

    def call(self, method: str, path: str, stream: bool = False, silence: Optional[float] = None,
             **kwargs) -> requests.Response:
        """One request; a ClientError unless it answered 2xx. A stream may be ``silence`` seconds quiet."""
        # a stream lasts as long as the job runs: bound the connect, and the quiet between reads
        timeout = (self.timeout, silence) if stream else self.timeout
        try:
            r = self.http.request(method, self.base + path, stream=stream, timeout=timeout, **kwargs)
        except requests.ConnectionError as e:
            raise ClientError(f"cannot reach the service at {self.url} ({_reason(e)})") from None
        except requests.Timeout:
            raise ClientError(f"the service at {self.url} did not answer within {self.timeout:g}s") from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as e:
            raise ClientError(f"{self.url} is not a service URL: {e}") from None
        except requests.RequestException as e:
            raise ClientError(f"calling the service at {self.url} failed: {e}") from None
        if r.status_code == 401:
            raise ClientError("the Hub did not accept the token (from --token or $JUPYTERHUB_API_TOKEN): "
                              "expired, revoked, or from another Hub?", 401)
        if r.status_code >= 400:
            raise ClientError(self._error_text(r), r.status_code)
        return r

    def _error_text(self, r: requests.Response) -> str:
        try:
            return r.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            pass
        # not the service's JSON: the proxy (service down) or a page that is not the service
        what = f"{r.status_code} {r.reason}"
        if r.status_code in (502, 503, 504):
            return f"the service at {self.url} is not running ({what} from the Hub's proxy)"
        if r.status_code == 404:
            return f"{r.url} answered {what}: is {self.url} the service's URL?"
        return f"{r.url} answered {what}"

    def json(self, method: str, path: str, **kwargs):
        """A call whose answer is JSON."""
        r = self.call(method, path, **kwargs)
        try:
            return r.json()
        except ValueError:
            raise ClientError(f"{r.url} answered {r.status_code} but not with JSON: "
                              f"is {self.url} the service's URL?") from None

    def submit(self, path: str, fields: dict, headers: Optional[dict] = None, dry_run: bool = False,
               sweep: bool = False) -> dict:
        """Upload a notebook, script or bundle as a new job (``dry_run``: the job it would be); ``sweep``: as a
        sweep, whose ``parameters`` hold lists of values (the new sweep)."""
        with open(path, "rb") as f:
            return self.json("POST", "sweeps" if sweep else "jobs", files={"file": (os.path.basename(path), f)},
                             data=fields, headers=headers or {}, params={"dry_run": "1"} if dry_run else None)

    def job(self, job_id: str) -> dict:
        return self.json("GET", f"jobs/{job_id}")

    # -- sweeps ------------------------------------------------------------------------

    def sweep_page(self, sweep_id: str) -> str:
        """The sweep's page in a browser."""
        return f"{self.url}sweeps/{sweep_id}"

    # -- schedules ---------------------------------------------------------------------

    def schedule_page(self, schedule_id: str) -> str:
        """The schedule on the Schedules page in a browser."""
        return f"{self.url}schedules#schedule-{schedule_id}"

    def create_schedule(self, fields: dict, path: Optional[str] = None) -> dict:
        """A new schedule from ``fields`` (as POST /schedules takes them), uploading ``path`` if given."""
        if path is None:
            return self.json("POST", "schedules", json=fields)
        form = {k: json.dumps(v) if isinstance(v, bool) else str(v) for k, v in fields.items()}
        with open(path, "rb") as f:
            return self.json("POST", "schedules", files={"file": (os.path.basename(path), f)}, data=form)

    def schedules(self, all_users: bool = False) -> list:
        """The caller's schedules, newest first (``all_users``: everyone's, for admins)."""
        return self.json("GET", "schedules", params={"all": "1"} if all_users else None)["schedules"]

    def schedule(self, schedule_id: str) -> dict:
        return self.json("GET", f"schedules/{schedule_id}")

    def update_schedule(self, schedule_id: str, changes: dict) -> dict:
        """Change a schedule (e.g. ``{"paused": True}``); the schedule as it now is."""
        return self.json("PATCH", f"schedules/{schedule_id}", json=changes)

    def run_schedule(self, schedule_id: str) -> dict:
        """Run a schedule now, outside its times; the job it made."""
        return self.json("POST", f"schedules/{schedule_id}/run")

    def delete_schedule(self, schedule_id: str) -> None:
        """Delete a schedule (the jobs it made stay)."""
        self.call("DELETE", f"schedules/{schedule_id}")

    def follow(self, job_id: str, on_event: Optional[Callable[[dict], None]] = None,
               on_outage: Optional[Callable[[str], None]] = None, patience: float = 300) -> dict:
        """Follow a job's events to its end (its final state), riding out a restart of the service.

        The Hub restarts a service that died, and the service picks its jobs up again: an
        outage shorter than ``patience`` seconds is waited out (``on_outage`` is told once).
        """
        outage_since: Optional[float] = None
        while True:
            try:
                for event in self.events(job_id):
                    outage_since = None
                    if on_event:
                        on_event(event)
                    if event.get("event") == "status" and event["job"]["status"] in TERMINAL:
                        return event["job"]
                job = self.job(job_id)  # the stream ended early (a restart, a proxy's timeout)
                if job["status"] in TERMINAL:
                    return job
            except ClientError as e:
                if e.status not in (None, 502, 503, 504):  # the service answered no: waiting won't help
                    raise
                now = time.monotonic()
                if outage_since is None:
                    outage_since = now
                    if on_outage:
                        on_outage(f"{e}; waiting up to {patience:g}s for it to come back")
                elif now - outage_since > patience:
                    raise
            time.sleep(1.0)

    def events(self, job_id: str) -> Iterator[dict]:
        """The job's server-sent events, each ``{"event": kind, ...}``, until the stream ends."""
        r = self.call("GET", f"jobs/{job_id}/events", stream=True, silence=self.silence,
                      headers={"Accept": "text/event-stream"})
        with r:
            data = []
            try:
                for line in _lines(r):
                    if line.startswith("data:"):
                        data.append(line[5:].lstrip(" "))
                    elif not line and data:  # a blank line ends an event; comments (keep-alives) have no data
                        yield json.loads("\n".join(data))
                        data = []
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
                raise ClientError(f"lost the event stream from the service at {self.url} ({_reason(e)})") from None


def _lines(r: requests.Response) -> Iterator[str]:
    """Lines of a streamed response as they arrive (``iter_lines`` waits for a full 512-byte chunk)."""
    decoder, pending = codecs.getincrementaldecoder("utf-8")("replace"), ""
    for chunk in r.iter_content(None):  # None: each chunk as the server flushed it
        pending += decoder.decode(chunk)  # a character may straddle two chunks
        *lines, pending = pending.split("\n")
        for line in lines:
            yield line.rstrip("\r")
    if pending:
        yield pending


def _reason(e: requests.ConnectionError) -> str:
    """The innermost cause of a connection failure, e.g. 'Connection refused'."""
    cause = e
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__
    text = str(cause)
    if "Connection refused" in text or isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host"
    return text.split(": ", 1)[-1][:200] or type(cause).__name__
