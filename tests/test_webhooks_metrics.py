"""Webhooks (HMAC-signed, delivered once when a job ends) and the Prometheus metrics."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.hubtest import make_notebook


def start_receiver(port: int = 0):
    """A webhook receiver on this machine's loopback: (server, url, what it received)."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}/hook", received


@pytest.fixture
def receiver(webhook_port):
    """A receiver on the loopback port the session's admin allowed (Webhooks.allowed_networks)."""
    server, url, received = start_receiver(webhook_port)
    yield url, received
    server.shutdown()
    server.server_close()


@pytest.fixture
def other_receiver():
    """A receiver on a loopback port nobody allowed."""
    server, url, received = start_receiver()
    yield url, received
    server.shutdown()
    server.server_close()


def test_webhook_is_signed_and_sent_once_when_the_job_ends(alice, receiver):
    url, received = receiver
    job = alice.submit(make_notebook("1 / 0"), callback_url=url)
    alice.wait(job["id"])
    deadline = time.monotonic() + 15
    while not received and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    assert len(received) == 1
    headers, body = received[0]
    expected = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    assert headers["X-Notebook-Jobs-Signature"] == expected
    payload = json.loads(body)
    assert payload["id"] == job["id"] and payload["status"] == "failed"
    assert payload["error"]["reason"] == "cell_error"


@pytest.mark.parametrize("target", ["receiver", "proxy api", "decimal ip", "ipv6 loopback", "metadata"])
def test_webhook_into_the_deployment_is_refused_at_submit_with_why(alice, hub, other_receiver, webhook_port, target):
    url, received = other_receiver
    url = {
        "receiver": url,  # a live loopback port, not the one the admin allowed
        "proxy api": f"http://127.0.0.1:{hub.env['PROXY_API_PORT']}/api/routes",
        "decimal ip": f"http://2130706433:{hub.env['HUB_API_PORT']}/hub/api",  # 127.0.0.1 spelled as a number
        "ipv6 loopback": f"http://[::1]:{webhook_port}/hook",
        "metadata": "http://169.254.169.254/latest/meta-data/",  # checked, never contacted
    }[target]
    before = len(alice.get("jobs", params={"limit": 200}).json()["jobs"])
    r = alice.post("jobs", files={"file": ("nb.ipynb", json.dumps(make_notebook("1")).encode())},
                   data={"callback_url": url})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "callback_refused"
    assert "may not point inside this deployment" in error["message"] and "address" in error["message"]
    assert len(alice.get("jobs", params={"limit": 200}).json()["jobs"]) == before  # nothing stored
    assert not received


def scrape(user) -> dict:
    """The service's metrics as {(name, sorted label items): value}."""
    r = user.get("metrics")
    assert r.status_code == 200, r.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(r.text)
        for sample in family.samples
    }


def test_metrics_count_submitted_and_ended_jobs_by_status_and_reason(admin):
    before = scrape(admin)
    ok = admin.submit(make_notebook("1"))
    bad = admin.submit(make_notebook("1 / 0"))
    assert admin.wait(ok["id"])["status"] == "succeeded"
    assert admin.wait(bad["id"])["status"] == "failed"
    after = scrape(admin)

    def moved(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    # Counters move only when the job flow feeds them; this test's jobs, and nobody
    # else's (the session's tests run one at a time).
    assert moved("notebook_jobs_submitted_total", kind="ipynb") == 2
    assert moved("notebook_jobs_ended_total", status="succeeded", reason="") == 1
    assert moved("notebook_jobs_ended_total", status="failed", reason="cell_error") == 1
    assert moved("notebook_jobs_ended_total", status="cancelled", reason="cancelled") == 0
    assert moved("notebook_jobs_queue_wait_seconds_count") == 2
    assert moved("notebook_jobs_runtime_seconds_count") == 2
    assert moved("notebook_jobs_runtime_seconds_sum") > 0
    # The gauges are the store's counts at scrape time.
    assert moved("notebook_jobs_status", status="succeeded") == 1
    assert moved("notebook_jobs_status", status="failed") == 1
