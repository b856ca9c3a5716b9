"""Test harness: a real JupyterHub (with configurable-http-proxy) running the notebook-jobs service.

One Hub per test session, from the repository's own ``jupyterhub_config.py``, on free
ports and in a temporary directory. Users log in through the real ``/hub/login`` form
and mint API tokens through the Hub's REST API, as a person or a script would.

The benchmarks use it too, as ``tests.hubtest``: they run as modules from the repository's
root (``.venv/bin/python -m bench.bench_service``), where ``tests`` and ``bench`` are packages.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import requests

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "/services/notebook-jobs/"


def environments_config(tmp: Path, environments: list) -> str:
    """A config file under ``tmp`` in which the admin offers ``environments``: the Hub's ``--config=`` for it."""
    config = tmp / "environments_config.py"
    config.write_text(f"c.Environments.environments = {json.dumps(environments)}\n")
    return f"--config={config}"


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list:
    """``n`` distinct free ports: each socket stays bound until all are chosen (one at a time, the
    kernel may hand the same port out twice, and the Hub then finds its proxy on its own port)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def make_notebook(*sources, parameters: str | None = None, markdown: str | None = None) -> dict:
    """A notebook dict: an optional tagged parameters cell, then one code cell per source."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if markdown:
        nb.cells.append(nbformat.v4.new_markdown_cell(markdown))
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    return json.loads(nbformat.writes(nb))


def nb_bytes(nb: dict) -> bytes:
    return json.dumps(nb).encode()


class HubUser:
    """A logged-in browser session and an API token for one Hub user."""

    def __init__(self, hub: "Hub", name: str):
        self.hub, self.name = hub, name
        self.browser = requests.Session()
        r = self.browser.get(hub.url + "/hub/login")
        r.raise_for_status()
        xsrf = self.browser.cookies.get("_xsrf", path="/hub/")
        r = self.browser.post(hub.url + "/hub/login", data={"username": name, "password": "x", "_xsrf": xsrf},
                              allow_redirects=False)
        assert r.status_code == 302, r.text
        xsrf = self.browser.cookies.get("_xsrf", path="/hub/")
        r = self.browser.post(hub.url + f"/hub/api/users/{name}/tokens", headers={"X-XSRFToken": xsrf},
                              json={"note": "tests", "expires_in": 3600})
        assert r.status_code == 201, r.text
        self.token = r.json()["token"]
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"token {self.token}"

    def url(self, path: str) -> str:
        return self.hub.url + SERVICE + "api/" + path.lstrip("/")

    def get(self, path, **kw):
        return self.api.get(self.url(path), **kw)

    def post(self, path, **kw):
        return self.api.post(self.url(path), **kw)

    def delete(self, path, **kw):
        return self.api.delete(self.url(path), **kw)

    def submit(self, nb: dict, filename: str = "nb.ipynb", **fields) -> dict:
        data = {k: (json.dumps(v) if isinstance(v, (dict, list)) else str(v)) for k, v in fields.items()}
        r = self.post("jobs", files={"file": (filename, nb_bytes(nb))}, data=data)
        assert r.status_code == 201, r.text
        return r.json()

    def wait(self, job_id: str, statuses=("succeeded", "failed", "cancelled"), timeout: float = 90) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"jobs/{job_id}").json()
            if job["status"] in statuses:
                return job
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s")


class Hub:
    """A running JupyterHub process group and the users logged in to it."""

    def __init__(self, tmp: Path, executor: str = "local", extra_args: str = ""):
        self.tmp = tmp
        self.port, hub_api, proxy_api, service = free_ports(4)
        self.url = f"http://127.0.0.1:{self.port}"
        self.data = tmp / "data"
        self.service_data = self.data / "service"
        self.env = dict(
            os.environ,
            NOTEBOOK_JOBS_DATA_DIR=str(self.data),
            HUB_PORT=str(self.port),
            HUB_API_PORT=str(hub_api),
            PROXY_API_PORT=str(proxy_api),
            NOTEBOOK_JOBS_PORT=str(service),
            NOTEBOOK_JOBS_EXECUTOR=executor,
            NOTEBOOK_JOBS_ARGS=extra_args,
        )
        self.log_path = tmp / "hub.log"
        self.proc = None
        self._users = {}

    def write_workspace(self, user: str, rel: str, nb: dict) -> str:
        """Save a notebook in ``user``'s workspace (as their server would) and return its path there."""
        path = self.data / "users" / user / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(nb))
        return rel

    def start(self, timeout: float = 60) -> None:
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(ROOT / "jupyterhub_config.py")],
            cwd=self.tmp, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._give_up("hub exited")
            try:
                if requests.get(self.url + SERVICE + "api/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self._give_up(f"hub not up in {timeout}s")

    def _give_up(self, why: str) -> None:
        """Stop the Hub and what it started, then fail with the end of its log. A Hub that dies while
        starting leaves its proxy running (in a session of its own, holding its ports); the proxy
        works in the Hub's directory, which is this Hub's alone."""
        tail = self.log_path.read_text()[-3000:]
        self.stop()
        here = self.tmp.resolve()
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and Path(os.readlink(entry / "cwd")) == here:
                    os.kill(int(entry.name), signal.SIGKILL)
            except OSError:  # (gone meanwhile, or not ours to read)
                pass
        raise RuntimeError(f"{why}: {tail}")

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.log.close()
        self.proc = None

    def service_pid(self) -> int:
        """Pid of the service process (a child of the Hub)."""
        import psutil

        for child in psutil.Process(self.proc.pid).children(recursive=True):
            if "hub_service.cli" in " ".join(child.cmdline()):
                return child.pid
        raise LookupError("service process not found")

    def user(self, name: str) -> HubUser:
        if name not in self._users:
            self._users[name] = HubUser(self, name)
        return self._users[name]


def remove_containers(*instances: str) -> None:
    """Remove every container and volume of these service instances (by the instance label).

    An executor may be removing one meanwhile (an ended job's container goes after its outcome):
    one that is gone, or whose removal is under way (409), is left to it, and waited for.
    """
    import docker

    from hub_service.executors.docker import LABEL_INSTANCE

    client = docker.from_env()
    try:
        for instance in instances:
            label = {"label": f"{LABEL_INSTANCE}={instance}"}
            deadline = time.monotonic() + 30
            for listing in (lambda: client.containers.list(ignore_removed=True, all=True, filters=label),
                            lambda: client.volumes.list(filters=label)):
                while (left := listing()) and time.monotonic() < deadline:
                    for item in left:
                        try:
                            item.remove(force=True)
                        except docker.errors.NotFound:
                            pass
                        except docker.errors.APIError as e:
                            if e.status_code != 409:
                                raise
                    time.sleep(0.1)
    finally:
        client.close()
