"""The corners of the REST contract a fuzzer found, and what a user's token may read of the service.

Each is what the OpenAPI document says, held through the real Hub: a yes/no query argument is
one of its four values, ``status=`` takes statuses only, a PATCH carries the fields it changes,
a 405 names the methods there are; and no user learns the service's command line (where a
secret once could have been), because secrets reach the service only through its environment.
"""

import socket
import subprocess
import sys

from unittest import mock

import pytest
from tornado import web
from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine
from traitlets import TraitError

from hub_service.app import NotebookJobs
from hub_service.handlers import routes
from hub_service.handlers.base import allowed_methods
from tests.hubtest import SERVICE


@pytest.mark.parametrize("path,flag", [("jobs", "all"), ("schedules", "all")])
@pytest.mark.parametrize("who", ["alice", "admin"])
def test_a_flag_outside_its_four_values_is_400_naming_it(hub, path, flag, who):
    user = hub.user(who)
    r = user.get(path, params={flag: "AAA"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"].startswith(f"{flag} must be 1, true, 0 or false")
    for value in ("1", "true", "0", "false"):
        assert user.get(path, params={flag: value}).status_code == 200


def test_a_dry_run_flag_outside_its_values_is_400(alice):
    r = alice.post("jobs", params={"dry_run": "yes"}, json={"code": "1"})
    assert r.status_code == 400 and "dry_run" in r.json()["error"]["message"], r.text


def test_status_filter_takes_statuses_and_names_what_is_not(alice):
    assert alice.get("jobs", params={"status": "queued,succeeded"}).status_code == 200
    r = alice.get("jobs", params={"status": "ok"})
    assert r.status_code == 400 and "unknown status ok" in r.json()["error"]["message"], r.text


def test_the_documented_status_pattern_is_what_the_handler_accepts(alice):
    import re

    pattern = next(p["schema"]["pattern"] for p in alice.get("openapi.json").json()["paths"]["/jobs"]["get"]
                   ["parameters"] if p["name"] == "status")
    for value in ("", "queued", "queued,running,succeeded", "ok", "queued,", "failed,cancelled,ok"):
        documented = re.fullmatch(pattern, value) is not None
        assert documented == (alice.get("jobs", params={"status": value}).status_code == 200), value


def test_a_patch_without_a_body_is_400_and_changes_nothing(alice):
    r = alice.post("schedules", json={"code": "x = 1", "cron": "0 3 * * *"})
    assert r.status_code == 201, r.text
    schedule = r.json()
    try:
        r = alice.api.patch(alice.url(f"schedules/{schedule['id']}"))
        assert r.status_code == 400 and "PATCH needs a JSON object" in r.json()["error"]["message"], r.text
        assert alice.get(f"schedules/{schedule['id']}").json() == alice.get(f"schedules/{schedule['id']}").json()
        r = alice.api.patch(alice.url(f"schedules/{schedule['id']}"), json={"paused": True})
        assert r.status_code == 200 and r.json()["paused"] is True
    finally:
        alice.delete(f"schedules/{schedule['id']}")


@pytest.mark.parametrize("method,path,allowed", [
    ("PUT", "jobs", "GET, POST"),
    ("PATCH", "jobs/" + "0" * 32, "GET, DELETE"),
    ("GET", "jobs/" + "0" * 32 + "/cancel", "POST"),
    ("DELETE", "schedules", "GET, POST"),
    ("POST", "notebooks", "GET"),
    ("PUT", "admin/demand", None),  # read off the handler: whatever it answers, the 405 says it
])
def test_a_405_names_the_methods_the_resource_has(alice, method, path, allowed):
    r = alice.api.request(method, alice.url(path))
    assert r.status_code == 405, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    methods = [m.strip() for m in r.headers["Allow"].split(",")]
    assert methods and method not in methods
    if allowed is not None:
        assert r.headers["Allow"] == allowed


@pytest.mark.parametrize("path", ["jobs", "sweeps"])
def test_a_listing_is_not_read_as_an_upload(path):
    """An upload's URL streams its POST's body; its GET goes to a handler that does not stream, so that Tornado
    runs the listing in the loop turn its headers arrive in, not two turns later (a busy service's listing waited
    behind everything else at each of them). A PUT still meets the upload's handler, which reads and drops the
    body before its 405 (that names the methods of both)."""
    app = web.Application(routes(SERVICE))
    handlers = {}
    for method in ("GET", "POST", "PUT"):
        line = RequestStartLine(method, f"{SERVICE}api/{path}?limit=5", "HTTP/1.1")
        request = HTTPServerRequest(start_line=line, headers=HTTPHeaders(Host="127.0.0.1"), connection=mock.Mock())
        handlers[method] = app.find_handler(request)
    assert not handlers["GET"].stream_request_body
    assert handlers["POST"].stream_request_body and handlers["PUT"].stream_request_body
    assert allowed_methods(handlers["PUT"].handler_class) == ["GET", "POST"]


def test_no_user_reads_the_services_command_line(hub, alice):
    """The Hub shows a service's ``command`` to tokens with read:services; users are not given it."""
    r = alice.browser.get(hub.url + "/hub/api/services/notebook-jobs",
                          headers={"Authorization": f"token {alice.token}"})
    assert r.status_code in (403, 404) or "command" not in r.json(), r.text
    r = alice.browser.get(hub.url + "/hub/api/services", headers={"Authorization": f"token {alice.token}"})
    assert r.status_code in (403, 404) or all("command" not in s for s in r.json().values()), r.text
    # yet the service is still in the user's Services menu (access:services alone puts it there)
    home = alice.browser.get(hub.url + "/hub/home")
    assert SERVICE in home.text


def test_webhooks_are_signed_with_the_secret_from_the_environment(hub):
    """The session's Hub passes the secret only as NOTEBOOK_JOBS_WEBHOOK_SECRET: it is not in argv."""
    command = " ".join(hub.env.get("NOTEBOOK_JOBS_ARGS", "").split())
    assert "webhook_secret" not in command and hub.env["NOTEBOOK_JOBS_WEBHOOK_SECRET"] == "hook-secret"
    # (tests/test_webhooks_metrics.py checks deliveries carry HMAC(body) under "hook-secret")


@pytest.mark.parametrize("option", ["--JobManager.webhook_secret=s3cret", "--Mailer.password=s3cret"])
def test_a_secret_on_the_command_line_stops_the_service_at_start(tmp_path, option, capsys):
    app = NotebookJobs()
    with pytest.raises(SystemExit) as stopped:
        app.initialize([f"--data-dir={tmp_path}", option])
    assert stopped.value.code == 2
    assert "may not be given on the command line" in capsys.readouterr().err
    assert not (tmp_path / "jobs.sqlite").exists()  # stopped before it opened anything


def test_secrets_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTEBOOK_JOBS_WEBHOOK_SECRET", "from-env")
    monkeypatch.setenv("NOTEBOOK_JOBS_SMTP_PASSWORD", "mail-env")
    app = NotebookJobs()
    app.initialize([f"--data-dir={tmp_path}", "--executor=local"])
    try:
        assert app.jobs.webhook_secret == "from-env"
        assert app.mailer.password == "mail-env"
    finally:
        app.store.close()


@pytest.mark.parametrize("value, accepted", [("-1", False), ("0", True), ("2.5", True)])
def test_a_negative_lease_check_interval_is_refused(value, accepted):
    """0 turns the lease checks off; a negative number must not do so silently."""
    app = NotebookJobs()
    if accepted:
        app.lease_check_interval = float(value)
        assert app.lease_check_interval == float(value)
    else:
        with pytest.raises(TraitError, match="lease_check_interval must be 0"):
            app.lease_check_interval = float(value)


FROZEN_AT_START = """
import asyncio, gc, sys
from hub_service.app import NotebookJobs

app = NotebookJobs()
app.initialize(sys.argv[1:])

async def main():
    await app.start_async()
    frozen = gc.get_freeze_count()
    await app.stop_async()
    print(frozen, len(gc.get_objects()))

asyncio.run(main())
"""


@pytest.mark.process
def test_the_service_keeps_what_it_made_at_start_out_of_the_collectors_walks(tmp_path):
    """Once started, the service freezes what it made (its modules, app, store, handlers: they live as long as it
    does), so that a full collection walks only what came after: a walk over all of it held the event loop, and
    every request, for 110-130 ms at a time during a drain of jobs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = subprocess.run(
        [sys.executable, "-c", FROZEN_AT_START, f"--data-dir={tmp_path}", "--executor=local", f"--port={port}"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    frozen, tracked = map(int, out.stdout.split())
    assert frozen > 100_000 and frozen > 10 * tracked, (frozen, tracked)  # the start's objects, nearly all of them
