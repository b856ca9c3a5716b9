"""Webhooks (HMAC-signed, delivered once when a job ends) and the Prometheus metrics."""

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.hubtest import make_notebook


@pytest.fixture
def receiver():
    """A webhook receiver on this machine's loopback."""
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


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


def test_metrics_count_ended_jobs(admin):
    admin.wait(admin.submit(make_notebook("1"))["id"])
    text = admin.get("metrics").text
    assert 'notebook_jobs_ended_total{reason="",status="succeeded"}' in text
    assert 'notebook_jobs_status{status="succeeded"}' in text
