"""The Lab extension's server part (extension/jupyterlab_notebook_jobs) in a real Jupyter server.

The Jupyter server runs as a process with the extension enabled, as a single-user server
would, and forwards to a small recording service on loopback (or to a port nobody
listens on): what reaches the service (path, auth header, body) and what the browser gets
back (translated errors, streamed events) are checked over real HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time

import pytest
import requests
import tornado.httpserver
import tornado.web

from tests.hubtest import ROOT, free_port, make_notebook

EXTENSION = ROOT / "extension"

SERVER_TOKEN = "hub-token-of-the-server"
LAB_TOKEN = "browser-session"
PREFIX = "/services/notebook-jobs/api/"


class Recorder:
    """What the stand-in service received."""

    def __init__(self):
        self.requests = []


def service_app(rec: Recorder) -> tornado.web.Application:
    class Handler(tornado.web.RequestHandler):
        def record(self):
            rec.requests.append({
                "method": self.request.method,
                "uri": self.request.uri,
                "auth": self.request.headers.get("Authorization"),
                "body": json.loads(self.request.body) if self.request.body else None,
            })

        def reply(self, status, body, content_type="application/json"):
            self.set_status(status)
            self.set_header("Content-Type", content_type)
            self.finish(body if isinstance(body, str) else json.dumps(body))

        def get(self, path):
            self.record()
            if path == "jobs/j1":
                return self.reply(200, {"id": "j1", "name": "a.ipynb", "status": "succeeded", "parameters": {"n": 5},
                                        "output_formats": ["ipynb"],
                                        "resources": {"requested": {"memory": 1 << 30, "timeout": 60}}})
            if path == "jobs/j1/input":
                return self.reply(200, json.dumps(make_notebook("print(n)", parameters="n = 1")),
                                  "application/x-ipynb+json")
            if path == "jobs/j1/output":
                return self.reply(200, json.dumps(make_notebook("print(1)")), "application/x-ipynb+json")
            if path == "jobs/gone":
                return self.reply(404, {"error": {"code": "not_found", "message": "no job gone"}})
            if path == "jobs/proxy":
                return self.reply(502, "<html>bad gateway</html>", "text/html")
            if path == "jobs/denied":
                return self.reply(403, {"error": {"code": "forbidden", "message": "missing scope"}})
            if path == "jobs/j1/events":
                self.set_header("Content-Type", "text/event-stream")
                for status in ("running", "succeeded"):
                    self.write(f"event: status\ndata: {json.dumps({'event': 'status', 'job': {'id': 'j1', 'status': status}})}\n\n")
                return self.finish()
            return self.reply(200, {"jobs": [], "next_cursor": None})

        def post(self, path):
            self.record()
            body = json.loads(self.request.body or b"{}")
            if body.get("parameters", {}).get("bad"):
                return self.reply(400, {"error": {"code": "invalid_input",
                                                  "message": "unknown parameter(s) bad; the notebook's parameters are: n"}})
            dry = self.get_argument("dry_run", "")
            return self.reply(200 if dry else 201, {"id": "new", "status": "queued", "dry_run": bool(dry),
                                                    "resources": {"allocated": {"cpu": 1, "basis": "cold-start"}}})

        def delete(self, path):
            self.record()
            self.set_status(204)
            self.finish()

    class HubServices(tornado.web.RequestHandler):
        """The Hub's GET /hub/api/services/NAME, for a server not told the service's URL."""

        def get(self):
            rec.requests.append({"method": "GET", "uri": self.request.uri,
                                 "auth": self.request.headers.get("Authorization"), "body": None})
            host = self.request.host
            self.finish({"name": "notebook-jobs", "url": f"http://{host}", "prefix": "/services/notebook-jobs/"})

    return tornado.web.Application([(PREFIX + "(.*)", Handler), ("/hub/api/services/notebook-jobs", HubServices)])


@pytest.fixture(scope="module")
def service():
    """The recording service on a loopback port, in its own thread and event loop."""
    rec = Recorder()
    port = free_port()
    started = threading.Event()
    holder = {}

    async def serve():
        server = tornado.httpserver.HTTPServer(service_app(rec))
        server.listen(port, "127.0.0.1")
        holder["loop"], holder["stop"] = asyncio.get_running_loop(), asyncio.Event()
        started.set()
        await holder["stop"].wait()
        server.stop()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    assert started.wait(10)
    rec.url = f"http://127.0.0.1:{port}/services/notebook-jobs/"
    yield rec
    holder["loop"].call_soon_threadsafe(holder["stop"].set)
    thread.join(5)


def start_jupyter(tmp_path, service_url: str, **extra_env):
    """A Jupyter server with the extension, as a single-user server would run it."""
    root = tmp_path / "work"
    root.mkdir(exist_ok=True)
    (root / "nb.ipynb").write_text(json.dumps(make_notebook("print(n)", parameters="n = 1")))
    (root / "script.py").write_text("# %% tags=[\"parameters\"]\nn = 1\n\n# %%\nprint(n)\n")
    (root / "data.csv").write_text("a,b\n1,2\n")
    port = free_port()
    # this tree's server extension, even where an older copy of the package is installed
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(EXTENSION), os.environ.get("PYTHONPATH", "")]),
               NOTEBOOK_JOBS_URL=service_url, JUPYTERHUB_API_TOKEN=SERVER_TOKEN,
               JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTER_RUNTIME_DIR=str(tmp_path / "rt"))
    for key in ("JUPYTERHUB_API_URL", "JUPYTERHUB_SERVICE_PREFIX"):
        env.pop(key, None)
    env.update(extra_env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", f"--port={port}", "--ip=127.0.0.1", "--no-browser",
         f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={LAB_TOKEN}", "--allow-root",
         "--ServerApp.open_browser=False"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "wb"), start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        try:
            requests.get(url + "/api/status", headers={"Authorization": f"token {LAB_TOKEN}"}, timeout=2)
            break
        except requests.RequestException:
            time.sleep(0.3)
    return proc, url, root


@pytest.fixture(scope="module")
def lab(service, tmp_path_factory):
    proc, url, root = start_jupyter(tmp_path_factory.mktemp("lab"), service.url)
    session = requests.Session()
    session.headers["Authorization"] = f"token {LAB_TOKEN}"
    session.base = url + "/notebook-jobs/"
    session.root = root
    yield session
    proc.terminate()
    proc.wait(10)


def test_submit_reads_the_file_through_the_contents_manager_and_sends_the_server_token(lab, service):
    service.requests.clear()
    r = lab.post(lab.base + "jobs", json={"path": "nb.ipynb", "parameters": {"n": 2}, "output_formats": ["ipynb"]})
    assert r.status_code == 201, r.text
    [sent] = service.requests
    assert sent["method"] == "POST" and sent["uri"] == PREFIX + "jobs"
    assert sent["auth"] == f"token {SERVER_TOKEN}"  # the server's Hub token, never the browser's
    assert sent["body"]["notebook"]["cells"][0]["metadata"]["tags"] == ["parameters"]
    assert sent["body"]["parameters"] == {"n": 2}
    assert sent["body"]["name"] == "nb.ipynb"


def test_dry_run_is_forwarded_as_a_dry_run(lab, service):
    service.requests.clear()
    r = lab.post(lab.base + "jobs?dry_run=1", json={"path": "nb.ipynb"})
    assert r.status_code == 200 and r.json()["dry_run"] is True
    assert service.requests[0]["uri"] == PREFIX + "jobs?dry_run=1"


def test_a_python_script_goes_as_code_and_other_files_are_refused(lab, service):
    service.requests.clear()
    assert lab.post(lab.base + "jobs", json={"path": "script.py"}).status_code == 201
    body = service.requests[0]["body"]
    if "notebook" in body:  # jupytext's contents manager reads a .py as a notebook
        assert body["notebook"]["cells"][0]["metadata"]["tags"] == ["parameters"]
    else:
        assert body["code"].startswith("# %%")
    r = lab.post(lab.base + "jobs", json={"path": "data.csv"})
    assert r.status_code == 400
    assert "not a notebook" in r.json()["error"]["message"]
    r = lab.post(lab.base + "jobs", json={"path": "missing.ipynb"})
    assert r.status_code == 404 and "missing.ipynb" in r.json()["error"]["message"]
    r = lab.post(lab.base + "jobs", data="{not json")
    assert r.status_code == 400 and "not JSON" in r.json()["error"]["message"]


def test_service_errors_reach_the_browser_readable(lab):
    r = lab.post(lab.base + "jobs", json={"path": "nb.ipynb", "parameters": {"bad": 1}})
    assert r.status_code == 400
    assert r.json() == {"error": {"code": "invalid_input",
                                  "message": "unknown parameter(s) bad; the notebook's parameters are: n"}}
    r = lab.get(lab.base + "api/jobs/gone")
    assert r.status_code == 404 and r.json()["error"]["message"] == "no job gone"
    r = lab.get(lab.base + "api/jobs/proxy")  # not the service's JSON: said plainly
    assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable"
    r = lab.get(lab.base + "api/jobs/denied")
    assert r.status_code == 403 and "access:services!service=notebook-jobs" in r.json()["error"]["message"]


def test_the_rest_api_is_forwarded_with_query_and_method(lab, service):
    service.requests.clear()
    assert lab.get(lab.base + "api/jobs?status=failed&limit=5").json() == {"jobs": [], "next_cursor": None}
    assert lab.delete(lab.base + "api/jobs/j1").status_code == 204
    assert [(q["method"], q["uri"]) for q in service.requests] == [
        ("GET", PREFIX + "jobs?status=failed&limit=5"), ("DELETE", PREFIX + "jobs/j1")]
    assert all(q["auth"] == f"token {SERVER_TOKEN}" for q in service.requests)


def test_outputs_keep_their_media_type(lab):
    r = lab.get(lab.base + "api/jobs/j1/output?format=ipynb")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/x-ipynb+json"  # not relabelled JSON by the API handler
    assert r.json()["nbformat"] == 4


def test_event_stream_is_passed_through(lab):
    with lab.get(lab.base + "api/jobs/j1/events", stream=True, timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in r.iter_lines(decode_unicode=True) if line.startswith("data: ")]
    assert [e["job"]["status"] for e in events] == ["running", "succeeded"]


def test_rerun_passes_changed_parameters_to_the_services_rerun(lab, service):
    service.requests.clear()
    r = lab.post(lab.base + "jobs/j1/rerun", json={"parameters": {"n": 7}})
    assert r.status_code == 201, r.text
    assert [(q["method"], q["uri"]) for q in service.requests] == [("POST", PREFIX + "jobs/j1/rerun")]
    assert service.requests[0]["body"] == {"parameters": {"n": 7}}  # exactly the dialog's
    service.requests.clear()
    assert lab.post(lab.base + "jobs/j1/rerun").status_code == 201  # no body: the service's own rerun
    assert [(q["uri"], q["body"]) for q in service.requests] == [(PREFIX + "jobs/j1/rerun", None)]


def test_open_copies_the_output_into_job_outputs(lab):
    r = lab.post(lab.base + "jobs/j1/open")
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "job-outputs/a-j1.ipynb"
    saved = json.loads((lab.root / "job-outputs" / "a-j1.ipynb").read_text())
    assert "".join(saved["cells"][0]["source"]) == "print(1)"


def test_requests_without_the_users_login_are_refused(lab):
    r = requests.post(lab.base + "jobs", json={"path": "nb.ipynb"})
    assert r.status_code == 403


def test_a_service_that_is_down_is_a_clear_503(tmp_path, service):
    proc, url, _ = start_jupyter(tmp_path, f"http://127.0.0.1:{free_port()}/services/notebook-jobs/")
    try:
        auth = {"Authorization": f"token {LAB_TOKEN}"}
        for r in (requests.get(url + "/notebook-jobs/api/jobs", headers=auth),
                  requests.post(url + "/notebook-jobs/jobs", headers=auth, json={"path": "nb.ipynb"})):
            assert r.status_code == 503
            err = r.json()["error"]
            assert err["code"] == "service_unavailable"
            assert err["message"].startswith("The notebook-jobs service is not answering")
    finally:
        proc.terminate()
        proc.wait(10)


def test_without_a_configured_url_the_hub_is_asked_where_the_service_is(tmp_path, service):
    hub_api = service.url.replace("/services/notebook-jobs/", "/hub/api")
    proc, url, _ = start_jupyter(tmp_path, "", JUPYTERHUB_API_URL=hub_api)
    try:
        service.requests.clear()
        r = requests.get(url + "/notebook-jobs/api/jobs", headers={"Authorization": f"token {LAB_TOKEN}"})
        assert r.status_code == 200, r.text
        assert [q["uri"] for q in service.requests] == ["/hub/api/services/notebook-jobs", PREFIX + "jobs"]
        assert all(q["auth"] == f"token {SERVER_TOKEN}" for q in service.requests)
    finally:
        proc.terminate()
        proc.wait(10)
