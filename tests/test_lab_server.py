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
SCRIPT_HTML = "<html><title>out</title><script>document.title = 'XSS'</script><p>hello</p></html>"
# what a job's renders and logs may hold: the user's own HTML and script
USER_CONTENT = {
    "html": ("text/html; charset=utf-8", SCRIPT_HTML),
    "md": ("text/markdown; charset=utf-8", "# out\n\n<script>document.title = 'XSS'</script>\n"),
    "pdf": ("application/pdf", "%PDF-1.4 <script>document.title = 'XSS'</script>"),
}


class Recorder:
    """What the stand-in service received."""

    def __init__(self):
        self.requests = []
        #: whether the service's OpenAPI document offers the rerun's dry run
        self.rerun_dry_run = True


def service_app(rec: Recorder) -> tornado.web.Application:
    class Handler(tornado.web.RequestHandler):
        def record(self):
            rec.requests.append({
                "method": self.request.method,
                "uri": self.request.uri,
                "auth": self.request.headers.get("Authorization"),
                "body": json.loads(self.request.body) if self.request.body else None,
                "content_type": self.request.headers.get("Content-Type"),
            })

        def reply(self, status, body, content_type="application/json"):
            self.set_status(status)
            self.set_header("Content-Type", content_type)
            self.finish(body if isinstance(body, str) else json.dumps(body))

        def get(self, path):
            self.record()
            if path == "openapi.json":
                query = [{"name": "dry_run", "in": "query", "schema": {"type": "string"}}] if rec.rerun_dry_run else []
                return self.reply(200, {"openapi": "3.0.3", "paths": {"/jobs/{job_id}/rerun": {"post": {
                    "parameters": [{"name": "job_id", "in": "path"}, *query]}}}})
            if path == "jobs/j1":
                return self.reply(200, {"id": "j1", "name": "a.ipynb", "status": "succeeded", "parameters": {"n": 5},
                                        "output_formats": ["ipynb"],
                                        "resources": {"requested": {"memory": 1 << 30, "timeout": 60}}})
            if path == "jobs/j1/input":
                return self.reply(200, json.dumps(make_notebook("print(n)", parameters="n = 1")),
                                  "application/x-ipynb+json")
            if path == "jobs/j1/output":
                fmt = self.get_argument("format", "ipynb")
                if fmt in USER_CONTENT:  # as a service that forgot its own protections would send them
                    return self.reply(200, USER_CONTENT[fmt][1], USER_CONTENT[fmt][0])
                return self.reply(200, json.dumps(make_notebook("print(1)")), "application/x-ipynb+json")
            if path == "jobs/guarded/output":  # as the service sends user content itself
                self.set_header("Content-Security-Policy", "sandbox")
                self.set_header("X-Content-Type-Options", "nosniff")
                self.set_header("Content-Disposition", "inline; filename*=UTF-8''r%C3%A9sum%C3%A9.html")
                return self.reply(200, SCRIPT_HTML, "text/html; charset=utf-8")
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
            if "about" in body.get("parameters", {}):  # an error about the field it names, as the service says it
                return self.reply(400, {"error": {"code": "invalid_input", "message": "not that", "status": 400,
                                                  "field": body["parameters"]["about"]}})
            dry = self.get_argument("dry_run", "")
            return self.reply(200 if dry else 201, {"id": "new", "status": "queued", "dry_run": bool(dry),
                                                    "resources": {"allocated": {"cpu": 1, "basis": "cold-start"}}})

        def delete(self, path):
            self.record()
            self.set_status(204)
            self.finish()

        def patch(self, path):
            self.record()
            if path == "schedules/html":  # not what an API answer should be: the forwarder guards it
                return self.reply(200, SCRIPT_HTML, "text/html")
            return self.reply(200, {"id": path.rsplit("/", 1)[-1], "edited": json.loads(self.request.body)})

        def put(self, path):
            self.record()
            return self.reply(200, {"id": path.rsplit("/", 1)[-1], "replaced": json.loads(self.request.body)})

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
    r = lab.post(lab.base + "api/jobs", json={"path": "nb.ipynb", "parameters": {"n": 2}, "output_formats": ["ipynb"]})
    assert r.status_code == 201, r.text
    [sent] = service.requests
    assert sent["method"] == "POST" and sent["uri"] == PREFIX + "jobs"
    assert sent["auth"] == f"token {SERVER_TOKEN}"  # the server's Hub token, never the browser's
    assert sent["body"]["notebook"]["cells"][0]["metadata"]["tags"] == ["parameters"]
    assert sent["body"]["parameters"] == {"n": 2}
    assert sent["body"]["name"] == "nb.ipynb"


def test_dry_run_is_forwarded_as_a_dry_run(lab, service):
    service.requests.clear()
    r = lab.post(lab.base + "api/jobs?dry_run=1", json={"path": "nb.ipynb"})
    assert r.status_code == 200 and r.json()["dry_run"] is True
    assert service.requests[0]["uri"] == PREFIX + "jobs?dry_run=1"


def test_a_python_script_goes_as_code_and_other_files_are_refused(lab, service):
    service.requests.clear()
    assert lab.post(lab.base + "api/jobs", json={"path": "script.py"}).status_code == 201
    body = service.requests[0]["body"]
    if "notebook" in body:  # jupytext's contents manager reads a .py as a notebook
        assert body["notebook"]["cells"][0]["metadata"]["tags"] == ["parameters"]
    else:
        assert body["code"].startswith("# %%")
    r = lab.post(lab.base + "api/jobs", json={"path": "data.csv"})
    assert r.status_code == 400
    assert "not a notebook" in r.json()["error"]["message"]
    r = lab.post(lab.base + "api/jobs", json={"path": "missing.ipynb"})
    assert r.status_code == 404 and "missing.ipynb" in r.json()["error"]["message"]
    r = lab.post(lab.base + "api/jobs", data="{not json")
    assert r.status_code == 400 and "not JSON" in r.json()["error"]["message"]


def test_service_errors_reach_the_browser_readable(lab):
    r = lab.post(lab.base + "api/jobs", json={"path": "nb.ipynb", "parameters": {"bad": 1}})
    assert r.status_code == 400
    assert r.json() == {"error": {"code": "invalid_input", "status": 400,
                                  "message": "unknown parameter(s) bad; the notebook's parameters are: n"}}
    r = lab.get(lab.base + "api/jobs/gone")
    assert r.status_code == 404 and r.json()["error"]["message"] == "no job gone"
    r = lab.get(lab.base + "api/jobs/proxy")  # not the service's JSON: said plainly
    assert r.status_code == 503 and r.json()["error"]["code"] == "service_unavailable"
    r = lab.get(lab.base + "api/jobs/denied")
    assert r.status_code == 403 and "access:services!service=notebook-jobs" in r.json()["error"]["message"]


def test_an_error_about_one_field_names_it_as_the_browser_sent_it(lab, service):
    """``error.field`` (a JSON pointer into the request) reaches the browser: the service's as it
    said it, on the forwarded routes and on the submit; the file a submit names by ``path`` is
    ``/path`` (the service saw it as ``/notebook`` or ``/code``), and so is a file that cannot be read."""
    def field(r):
        assert r.status_code == 400, r.text
        return r.json()["error"].get("field")

    submit = {"path": "nb.ipynb"}
    assert field(lab.post(lab.base + "api/jobs", json={**submit, "parameters": {"about": "/parameters/n"}})) == "/parameters/n"
    assert field(lab.post(lab.base + "api/jobs?dry_run=1",
                          json={**submit, "parameters": {"about": "/resources/memory"}})) == "/resources/memory"
    assert field(lab.post(lab.base + "api/jobs", json={**submit, "parameters": {"about": "/notebook/cells"}})) == "/path"
    assert field(lab.post(lab.base + "api/jobs", json={"path": "data.csv"})) == "/path"
    assert field(lab.post(lab.base + "api/jobs/j1/rerun", json={"parameters": {"about": "/timeout"}})) == "/timeout"
    forwarded = lab.post(lab.base + "api/schedules", json={"parameters": {"about": "/parameters/n"}})
    assert field(forwarded) == "/parameters/n"
    # an error about the whole request has no field
    assert field(lab.post(lab.base + "api/jobs", json={**submit, "parameters": {"bad": 1}})) is None


def test_a_sweep_of_a_workspace_file_is_read_as_a_jobs_and_its_errors_name_the_path(lab, service):
    """``POST api/sweeps`` with a ``path``: the file read through the contents manager, as a job's, with
    the grid (or the runs) passed on; a pointer into the file is the request's ``/path``, the others
    pass through; a body without ``path`` goes as it is."""
    service.requests.clear()
    grid = {"n": [1, 2], "word": ["a", "b", "c"]}
    r = lab.post(lab.base + "api/sweeps",
                 json={"path": "nb.ipynb", "parameters": grid, "output_formats": ["ipynb"]})
    assert r.status_code == 201, r.text
    r = lab.post(lab.base + "api/sweeps", json={"path": "script.py", "runs": [{"n": 1}, {"n": 3}]})
    assert r.status_code == 201, r.text
    nb = make_notebook("print(n)", parameters="n = 1")
    assert lab.post(lab.base + "api/sweeps", json={"notebook": nb, "parameters": grid}).status_code == 201
    first, second, as_is = service.requests
    assert [q["uri"] for q in service.requests] == [PREFIX + "sweeps"] * 3
    assert first["auth"] == f"token {SERVER_TOKEN}"
    assert first["body"]["notebook"]["cells"][0]["metadata"]["tags"] == ["parameters"]
    assert (first["body"]["parameters"], first["body"]["name"], first["body"]["output_formats"]) == (
        grid, "nb.ipynb", ["ipynb"])
    assert "path" not in first["body"]
    assert second["body"]["runs"] == [{"n": 1}, {"n": 3}] and second["body"]["name"] == "script.py"
    assert as_is["body"] == {"notebook": nb, "parameters": grid}

    def field(r):
        assert r.status_code == 400, r.text
        return r.json()["error"].get("field")

    def about(pointer):  # the stand-in service's error about the field ``pointer``
        return lab.post(lab.base + "api/sweeps", json={"path": "nb.ipynb", "parameters": {"about": pointer}})

    assert field(about("/parameters/n/1")) == "/parameters/n/1"
    assert field(about("/notebook/cells")) == "/path"
    assert field(lab.post(lab.base + "api/sweeps", json={"path": "data.csv"})) == "/path"
    assert lab.post(lab.base + "api/sweeps", json={"path": "missing.ipynb"}).status_code == 404
    service.requests.clear()
    assert lab.get(lab.base + "api/sweeps?limit=5").status_code == 200  # the rest is forwarded
    assert [(q["method"], q["uri"]) for q in service.requests] == [("GET", PREFIX + "sweeps?limit=5")]


def test_every_route_is_the_services_path_under_api(lab, service):
    """One URL style: ``notebook-jobs/api/<the service's path>``. A submit body without ``path`` (the
    Rerun dialog asks a dry run of a job's input notebook) goes to the service as it is."""
    service.requests.clear()
    nb = make_notebook("print(n)", parameters="n = 1")
    r = lab.post(lab.base + "api/jobs?dry_run=1", json={"notebook": nb})
    assert r.status_code == 200, r.text
    assert [(q["method"], q["uri"], q["body"]) for q in service.requests] == [
        ("POST", PREFIX + "jobs?dry_run=1", {"notebook": nb})]
    for old in ("jobs", "jobs/j1/rerun", "jobs/j1/open"):  # the routes of before, outside api/
        assert lab.post(lab.base + old, json={"path": "nb.ipynb"}).status_code == 404, old


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
    r = lab.post(lab.base + "api/jobs/j1/rerun", json={"parameters": {"n": 7}})
    assert r.status_code == 201, r.text
    assert [(q["method"], q["uri"]) for q in service.requests] == [("POST", PREFIX + "jobs/j1/rerun")]
    assert service.requests[0]["body"] == {"parameters": {"n": 7}}  # exactly the dialog's
    service.requests.clear()
    assert lab.post(lab.base + "api/jobs/j1/rerun").status_code == 201  # no body: the service's own rerun
    assert [(q["uri"], q["body"]) for q in service.requests] == [(PREFIX + "jobs/j1/rerun", None)]


def test_rerun_forwards_its_dry_run_and_changed_resources(lab, service):
    """The Rerun dialog's sizing (``?dry_run=1``: the would-be job, nothing run) and its memory and
    time-limit overrides reach the service's rerun as sent; an empty body stays the service's own rerun."""
    def posts():
        return [(q["uri"], q["body"]) for q in service.requests if q["method"] == "POST"]

    service.requests.clear()
    r = lab.post(lab.base + "api/jobs/j1/rerun?dry_run=1", json={})
    assert r.status_code == 200, r.text
    assert r.json()["dry_run"] is True
    assert posts() == [(PREFIX + "jobs/j1/rerun?dry_run=1", None)]
    service.requests.clear()
    body = {"parameters": {"n": 7}, "resources": {"memory": "2GB"}, "timeout": 1200}
    r = lab.post(lab.base + "api/jobs/j1/rerun", json=body)
    assert r.status_code == 201, r.text
    assert posts() == [(PREFIX + "jobs/j1/rerun", body)]
    service.requests.clear()
    lab.post(lab.base + "api/jobs/j1/rerun", json={"resources": {}, "timeout": None})  # nothing changed
    assert posts() == [(PREFIX + "jobs/j1/rerun", None)]


def test_a_rerun_dry_run_never_reaches_a_service_that_does_not_offer_it(lab, service):
    """An older service ignores ?dry_run=1 and would start the job: the Rerun dialog's sizing is
    asked only of a service whose OpenAPI document offers it; else a 404 the dialog reads as
    "no sizing" (it keeps its parameters only), and nothing is posted."""
    service.rerun_dry_run = False
    try:
        service.requests.clear()
        r = lab.post(lab.base + "api/jobs/j1/rerun?dry_run=1", json={})
        assert r.status_code == 404, r.text
        assert r.json()["error"]["code"] == "not_supported"
        assert [q for q in service.requests if q["method"] == "POST"] == []
    finally:
        service.rerun_dry_run = True


def test_open_copies_the_output_into_job_outputs(lab):
    r = lab.post(lab.base + "api/jobs/j1/open")
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "job-outputs/a-j1.ipynb"
    saved = json.loads((lab.root / "job-outputs" / "a-j1.ipynb").read_text())
    assert "".join(saved["cells"][0]["source"]) == "print(1)"


def test_requests_without_the_users_login_are_refused(lab):
    r = requests.post(lab.base + "api/jobs", json={"path": "nb.ipynb"})
    assert r.status_code == 403


def test_a_service_that_is_down_is_a_clear_503(tmp_path, service):
    proc, url, _ = start_jupyter(tmp_path, f"http://127.0.0.1:{free_port()}/services/notebook-jobs/")
    try:
        auth = {"Authorization": f"token {LAB_TOKEN}"}
        for r in (requests.get(url + "/notebook-jobs/api/jobs", headers=auth),
                  requests.post(url + "/notebook-jobs/api/jobs", headers=auth, json={"path": "nb.ipynb"})):
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


def csp_policies(r) -> list:
    """Each Content-Security-Policy of an answer, as a set of its directives (a browser enforces all)."""
    values = r.raw.headers.getlist("Content-Security-Policy")
    return [{d.strip() for d in v.split(";") if d.strip()} for value in values for v in value.split(",")]


def sandboxed(r) -> bool:
    """Whether the answer can run no script, nor touch the server's origin: a policy with a bare ``sandbox``."""
    return any("sandbox" in policy for policy in csp_policies(r))


def test_patch_and_put_are_forwarded_with_their_bodies(lab, service):
    service.requests.clear()
    r = lab.patch(lab.base + "api/schedules/s1", json={"paused": True, "cron": "0 6 * * *"})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": "s1", "edited": {"paused": True, "cron": "0 6 * * *"}}
    r = lab.put(lab.base + "api/schedules/s1?dry_run=1", json={"name": "n"})
    assert r.status_code == 200, r.text
    assert r.json() == {"id": "s1", "replaced": {"name": "n"}}
    assert [(q["method"], q["uri"], q["body"], q["content_type"]) for q in service.requests] == [
        ("PATCH", PREFIX + "schedules/s1", {"paused": True, "cron": "0 6 * * *"}, "application/json"),
        ("PUT", PREFIX + "schedules/s1?dry_run=1", {"name": "n"}, "application/json")]
    assert all(q["auth"] == f"token {SERVER_TOKEN}" for q in service.requests)
    # a browser's PATCH without the user's login is refused before it reaches the service
    service.requests.clear()
    assert requests.patch(lab.base + "api/schedules/s1", json={"paused": True}).status_code == 403
    assert service.requests == []


def test_the_xsrf_argument_stays_with_the_jupyter_server(lab, service):
    """An EventSource sends its XSRF token as ``_xsrf`` in the query: the service never sees it."""
    service.requests.clear()
    with lab.get(lab.base + "api/jobs/j1/events?_xsrf=2%7Cabc%7Cdef%7C123", stream=True, timeout=10) as r:
        assert r.status_code == 200
        assert [line for line in r.iter_lines(decode_unicode=True) if line.startswith("event: ")]
    assert lab.get(lab.base + "api/jobs?limit=5&_xsrf=abc&status=failed").status_code == 200
    assert [q["uri"] for q in service.requests] == [PREFIX + "jobs/j1/events",
                                                    PREFIX + "jobs?limit=5&status=failed"]


@pytest.mark.parametrize("fmt", sorted(USER_CONTENT))
def test_user_content_is_sandboxed_even_when_the_service_forgets(lab, fmt):
    r = lab.get(lab.base + f"api/jobs/j1/output?format={fmt}")
    assert r.status_code == 200 and "<script>" in r.text
    assert r.headers["Content-Type"] == USER_CONTENT[fmt][0]  # the type is kept
    assert sandboxed(r), r.headers.get("Content-Security-Policy")
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_a_notebooks_json_is_user_content_too(lab):
    for r in (lab.get(lab.base + "api/jobs/j1/input"), lab.get(lab.base + "api/jobs/j1/output?format=ipynb")):
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/x-ipynb+json"
        assert sandboxed(r) and r.headers["X-Content-Type-Options"] == "nosniff"


def test_a_non_json_answer_to_any_method_is_sandboxed(lab):
    r = lab.patch(lab.base + "api/schedules/html", json={})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert sandboxed(r) and r.headers["X-Content-Type-Options"] == "nosniff"


def test_the_services_own_protections_pass_through(lab):
    r = lab.get(lab.base + "api/jobs/guarded/output?format=html")
    assert r.status_code == 200
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Content-Disposition"] == "inline; filename*=UTF-8''r%C3%A9sum%C3%A9.html"
    assert {"sandbox"} in csp_policies(r)  # the service's policy, as it sent it
    assert all("sandbox" in p for p in csp_policies(r))


def test_json_and_event_streams_are_not_sandboxed_but_not_sniffed(lab):
    """API answers are read by the Lab page with fetch and EventSource: a sandbox means nothing there."""
    for r in (lab.get(lab.base + "api/jobs/j1"), lab.get(lab.base + "api/jobs/j1/events", timeout=10)):
        assert r.status_code == 200
        assert not sandboxed(r), (r.url, r.headers.get("Content-Security-Policy"))
        assert r.headers["X-Content-Type-Options"] == "nosniff"  # the Jupyter server's own, kept


# --- through the real Hub: the user's own single-user server, spawned by the Hub ---------------

HUB_USER = "lars"
#: what a script in a job's output would do if it ran on the Hub's origin
XSS = ("document.title = 'XSS'; console.log('XSS-RAN'); fetch('/hub/api/user?xss=1').catch(() => 0); "
       "try { parent.document.title = 'XSS' } catch (e) {}")


def script_notebook() -> dict:
    """A notebook whose renders carry scripts: an HTML display output, and raw HTML in markdown."""
    return make_notebook(
        "from IPython.display import HTML, display\n"
        f"display(HTML({('<b>shown</b><script>' + XSS + '</script>')!r}))",
        markdown=f'# Report\n\n<img src="x-missing.png" onerror="{XSS}">\n\n<script>{XSS}</script>\n')


@pytest.fixture(scope="module")
def hub_lab(hub):
    """``HUB_USER``'s single-user server with the installed extension, started through the Hub's API
    and called with the user's Hub token, as a script would (``.base``: its notebook-jobs/ URL)."""
    (hub.data / "users" / HUB_USER).mkdir(parents=True, exist_ok=True)
    user = hub.user(HUB_USER)
    api = f"{hub.url}/hub/api/users/{HUB_USER}"
    r = user.api.post(api + "/server")
    assert r.status_code in (201, 202), r.text
    deadline = time.monotonic() + 120
    while not (user.api.get(api).json().get("servers", {}).get("", {}).get("ready")):
        assert time.monotonic() < deadline, f"{HUB_USER}'s server did not start: {user.api.get(api).text}"
        time.sleep(0.5)
    session = requests.Session()
    session.headers["Authorization"] = f"token {user.token}"
    session.base = f"{hub.url}/user/{HUB_USER}/notebook-jobs/"
    session.user = user
    yield session
    user.api.delete(api + "/server")


def test_a_schedule_is_edited_from_lab_through_the_hub(hub_lab):
    user = hub_lab.user
    r = user.post("schedules", json={"code": "print(1)", "cron": "0 9 * * *", "paused": True,
                                     "name": "nightly"})
    assert r.status_code == 201, r.text
    schedule = r.json()
    url = hub_lab.base + f"api/schedules/{schedule['id']}"
    r = hub_lab.patch(url, json={"name": "weekdays", "cron": "30 6 * * 1-5"})
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["cron"]) == ("weekdays", "30 6 * * 1-5")
    stored = user.get(f"schedules/{schedule['id']}").json()  # the service's own record changed
    assert (stored["name"], stored["cron"], stored["paused"]) == ("weekdays", "30 6 * * 1-5", True)
    # the service's refusal of a bad edit reaches Lab as the service's error
    r = hub_lab.patch(url, json={"colour": "red"})
    assert r.status_code == 400 and "colour" in r.json()["error"]["message"]
    # PUT goes to the service too: it is the service (not the Jupyter server) that has no PUT here
    r = hub_lab.put(url, json={"name": "x"})
    assert r.status_code == 405, r.text
    assert r.json()["error"]["code"] == "method_not_allowed", r.text
    assert user.get(f"schedules/{schedule['id']}").json()["name"] == "weekdays"
    assert user.delete(f"schedules/{schedule['id']}").status_code == 204


def test_user_content_through_the_hub_is_sandboxed(hub_lab):
    user = hub_lab.user
    job = user.submit(script_notebook(), "report.ipynb", output_formats=["html", "md"])
    assert user.wait(job["id"])["status"] == "succeeded"
    base = hub_lab.base + f"api/jobs/{job['id']}/"
    for route in ("output?format=html", "output?format=md", "output?format=ipynb", "input", "logs",
                  "output?format=html&download=1"):
        r = hub_lab.get(base + route)
        assert r.status_code == 200, (route, r.text)
        assert sandboxed(r), (route, r.headers.get("Content-Security-Policy"))
        assert r.headers["X-Content-Type-Options"] == "nosniff", route
    html = hub_lab.get(base + "output?format=html")
    assert html.headers["Content-Type"].startswith("text/html")
    assert "<script>document.title = 'XSS'" in html.text  # the render holds the script, as it is
    assert "attachment" in hub_lab.get(base + "output?format=html&download=1").headers["Content-Disposition"]
    # the API's JSON and the event stream still come through as they are
    r = hub_lab.get(base.rstrip("/"))
    assert r.status_code == 200 and r.json()["status"] == "succeeded"
    r = hub_lab.get(base + "events", timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    assert '"status": "succeeded"' in r.text
