"""The team deployment for real: docker-compose.yml brought up by scripts/stack.sh, used as a user would.

One test walks the whole of it, in order, because each step needs the one before: the
images (built when missing), ``stack.sh up``, a login through the Hub's form, the user's
DockerSpawner server, who it can reach (the Hub; not PostgreSQL, not the service's own port),
the Lab extension in it, a notebook saved into the user's volume
through that server, a job by path with a changed parameter, a schedule; ``stack.sh down``
and ``up`` again, and everything still there; then, with the user's server stopped, the
schedule run once -- still reading the notebook from the user's volume.

The stack is a second one beside any admin's: its own settings file, compose project
(``nbjtest``: networks, volumes, containers), user-volume names and a free loopback port;
it is taken down and its volumes removed at the end. All traffic goes to 127.0.0.1 and,
inside Docker, over the stack's own networks.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.hubtest import free_port

pytestmark = pytest.mark.stack

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "scripts" / "stack.sh"
PROJECT = "nbjtest"
USER = "alice"
NOTEBOOK = {
    "cells": [
        {"cell_type": "code", "execution_count": None, "id": "p", "metadata": {"tags": ["parameters"]},
         "outputs": [], "source": "n = 1"},
        {"cell_type": "code", "execution_count": None, "id": "c", "metadata": {}, "outputs": [],
         "source": "print(f'n squared is {n * n}')"},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}
# Run inside a container (python3 -c PROBE HOST:PORT…): how each TCP connection goes, as one JSON object.
PROBE = """
import json, socket, sys
def probe(host, port):
    try:
        address = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0][4][:2]
    except socket.gaierror:
        return "no such name"
    try:
        socket.create_connection(address, timeout=3).close()
        return "connected"
    except socket.timeout:
        return "timed out"
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        return f"unreachable ({e.strerror})"
print(json.dumps({target: probe(*target.rsplit(":", 1)) for target in sys.argv[1:]}))
"""


def _docker_problem():
    try:
        subprocess.run(["docker", "info"], check=True, capture_output=True, timeout=30)
    except Exception as e:  # noqa: BLE001 - any failure means "no daemon here"
        return f"no Docker daemon ({e}); run scripts/docker-setup.sh as root"
    if os.geteuid() != 0:
        return "the stack is built and run as root (debootstrap, the Docker socket)"
    return None


class Stack:
    """scripts/stack.sh on a settings file of the test's own."""

    def __init__(self, env_file: Path, port: int):
        self.env_file, self.port = env_file, port
        self.url = f"http://127.0.0.1:{port}"

    def run(self, *args, timeout=3000) -> float:
        """Run ``stack.sh ARGS``; the seconds it took."""
        started = time.monotonic()
        env = {**os.environ, "NOTEBOOK_JOBS_ENV": str(self.env_file), "STACK_WAIT": "300"}
        done = subprocess.run(["bash", str(STACK), *args], env=env, cwd=ROOT, capture_output=True, text=True,
                              timeout=timeout)
        took = time.monotonic() - started
        print(f"stack.sh {' '.join(args)}: {took:.0f} s\n{done.stderr[-3000:]}")
        assert done.returncode == 0, f"stack.sh {' '.join(args)} exited {done.returncode}:\n{done.stderr[-5000:]}"
        return took

    def setting(self, name: str) -> str:
        for line in self.env_file.read_text().splitlines():
            if line.startswith(name + "="):
                return line.split("=", 1)[1]
        return ""


def probe(container: str, *targets: str) -> dict:
    """From inside ``container``: each ``host:port`` -> connected, no such name, refused, timed out…"""
    done = subprocess.run(["docker", "exec", container, "python3", "-c", PROBE, *targets],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def compose_container(service: str) -> str:
    """The id of the test stack's running container of a compose service."""
    labels = [f"label=com.docker.compose.project={PROJECT}", f"label=com.docker.compose.service={service}"]
    (container,) = subprocess.run(["docker", "ps", "-q", "--filter", labels[0], "--filter", labels[1]],
                                  capture_output=True, text=True, check=True).stdout.split()
    return container


def inspect(kind: str, name: str) -> dict:
    (attrs,) = json.loads(subprocess.run(["docker", kind, "inspect", name], capture_output=True, text=True,
                                         check=True).stdout)
    return attrs


def networks(container: str) -> dict:
    """A container's networks: name -> its address there."""
    attached = inspect("container", container)["NetworkSettings"]["Networks"]
    return {name: net["IPAddress"] for name, net in attached.items()}


def remove_test_stack():
    """Every container, network and volume of the test's compose project (one a killed run left, too)."""
    def docker(*args):
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300).stdout.split()

    containers = docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}")
    containers += docker("ps", "-aq", "--filter", f"label=org.jupyter.notebook-jobs.stack={PROJECT}")  # servers
    containers += docker("ps", "-aq", "--filter", f"label=org.jupyter.notebook-jobs.instance={PROJECT}")  # jobs
    if containers:
        docker("rm", "-f", *containers)
    docker("network", "rm", PROJECT, f"{PROJECT}-backend", f"{PROJECT}-db")
    volumes = [v for v in docker("volume", "ls", "-q") if v.startswith(PROJECT + "-")]
    if volumes:
        docker("volume", "rm", "-f", *volumes)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    problem = _docker_problem()
    if problem:
        pytest.skip(problem)
    remove_test_stack()
    env_file = tmp_path_factory.mktemp("stack") / "stack.env"
    port = free_port()
    # the admin's file with this test's names; the secrets are left empty for stack.sh to generate
    text = (ROOT / ".env.example").read_text()
    for name, value in {"COMPOSE_PROJECT_NAME": PROJECT, "HUB_PORT": str(port),
                        "USER_VOLUME_TEMPLATE": PROJECT + "-user-{username}", "NOTEBOOK_JOBS_WARM_POOL": "1",
                        "JUPYTERHUB_CULL_IDLE_TIMEOUT": "0", "SINGLEUSER_CPU_LIMIT": "1"}.items():
        text = "\n".join(f"{name}={value}" if line.startswith(name + "=") else line for line in text.splitlines())
    env_file.write_text(text + "\n")
    s = Stack(env_file, port)
    try:
        yield s
    finally:
        if os.environ.get("NOTEBOOK_JOBS_STACK_KEEP"):  # to look at it after a failure
            print(f"left up: NOTEBOOK_JOBS_ENV={env_file} scripts/stack.sh logs")
            return
        subprocess.run(["bash", str(STACK), "down"], env={**os.environ, "NOTEBOOK_JOBS_ENV": str(env_file)},
                       cwd=ROOT, capture_output=True, timeout=600)
        remove_test_stack()


class HubUser:
    """A person at the Hub: a cookie session (the login form), and a token for the service's API."""

    def __init__(self, stack: Stack, name: str):
        self.stack, self.name = stack, name
        self.web = requests.Session()
        self.token = None

    def xsrf(self, path="/hub/"):
        return self.web.cookies.get("_xsrf", path=path)

    def log_in(self, password: str):
        r = self.web.get(self.stack.url + "/hub/login", timeout=30)
        r.raise_for_status()
        r = self.web.post(self.stack.url + "/hub/login", timeout=30, allow_redirects=False,
                          data={"username": self.name, "password": password, "_xsrf": self.xsrf()})
        assert r.status_code == 302, r.text[:500]
        r = self.web.post(self.stack.url + f"/hub/api/users/{self.name}/tokens", timeout=30,
                          headers={"X-XSRFToken": self.xsrf()}, json={"note": "stack test"})
        assert r.status_code == 201, r.text
        self.token = r.json()["token"]

    def hub_api(self, method, path, **kw):
        return requests.request(method, self.stack.url + "/hub/api" + path, timeout=60,
                                headers={"Authorization": f"token {self.token}"}, **kw)

    def api(self, method, path, **kw):
        r = requests.request(method, self.stack.url + "/services/notebook-jobs/api" + path, timeout=120,
                             headers={"Authorization": f"token {self.token}"}, **kw)
        return r

    def server(self, method, path, **kw):
        """A request to the user's own server through the proxy, with the login cookie."""
        headers = {"X-XSRFToken": self.xsrf(f"/user/{self.name}/") or ""}
        return self.web.request(method, self.stack.url + f"/user/{self.name}" + path, timeout=60,
                                headers=headers, **kw)

    def wait_job(self, job_id, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.api("GET", f"/jobs/{job_id}").json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
            time.sleep(1)
        raise AssertionError(f"job {job_id} did not end within {timeout} s: {job}")

    def server_state(self):
        return self.hub_api("GET", f"/users/{self.name}").json()["servers"].get("")


def printed(output_nb: dict) -> str:
    """What the notebook's cells printed."""
    texts = [o.get("text", "") for c in output_nb["cells"] for o in c.get("outputs", [])
             if o.get("output_type") == "stream"]
    return "".join("".join(t) if isinstance(t, list) else t for t in texts)


def test_the_team_deployment_end_to_end(stack):
    timings = {}
    # 1. the images of this checkout (from nothing on a fresh machine; Docker's cache otherwise), then
    #    up: the settings written (secrets generated), the stack started, both answering
    timings["build"] = stack.run("build")
    timings["first up"] = stack.run("up")
    password = stack.setting("DEMO_PASSWORD")
    assert len(password) >= 12 and stack.setting("HUB_DB_PASSWORD") and stack.setting("NOTEBOOK_JOBS_API_TOKEN")
    assert oct(stack.env_file.stat().st_mode & 0o777) == "0o600"

    # 2. a user logs in through the Hub's form and starts their server (DockerSpawner)
    alice = HubUser(stack, USER)
    alice.log_in(password)
    started = time.monotonic()
    r = alice.web.post(stack.url + f"/hub/api/users/{USER}/server", headers={"X-XSRFToken": alice.xsrf()},
                       timeout=180)
    assert r.status_code in (201, 202), r.text
    deadline = time.monotonic() + 240
    while not (alice.server_state() or {}).get("ready"):
        assert time.monotonic() < deadline, f"{USER}'s server did not start: {alice.server_state()}"
        time.sleep(2)
    timings["server start"] = time.monotonic() - started
    server = f"{PROJECT}-user-{USER}"
    attrs = inspect("container", server)
    assert attrs["HostConfig"]["Binds"] == [f"{PROJECT}-user-{USER}:/home/jovyan:rw"]

    # 3. who reaches whom. The user's server, which runs whatever its user writes, is on the Hub's network
    #    only: PostgreSQL and the service's own port have no name there, and their addresses on the other
    #    networks are dropped by the daemon (no answer, not even a refusal). The Hub and the service, with
    #    the same probe, do reach PostgreSQL (on an internal network: no way out of the machine).
    hub, service, postgres = (compose_container(name) for name in ("hub", "service", "postgres"))
    assert set(networks(server)) == {PROJECT}
    assert set(networks(hub)) == {PROJECT, f"{PROJECT}-backend", f"{PROJECT}-db"}
    assert set(networks(service)) == {f"{PROJECT}-backend", f"{PROJECT}-db"}
    assert set(networks(postgres)) == {f"{PROJECT}-db"}
    assert inspect("network", f"{PROJECT}-db")["Internal"] is True
    postgres_ip = networks(postgres)[f"{PROJECT}-db"]
    service_ip = networks(service)[f"{PROJECT}-backend"]
    seen = probe(server, "postgres:5432", "service:10101", f"{postgres_ip}:5432", f"{service_ip}:10101",
                 "hub:8081", "hub:8000")
    assert seen == {"postgres:5432": "no such name", "service:10101": "no such name",
                    f"{postgres_ip}:5432": "timed out", f"{service_ip}:10101": "timed out",
                    "hub:8081": "connected", "hub:8000": "connected"}  # the Hub's API and its proxy
    assert set(probe(hub, "postgres:5432", "service:10101").values()) == {"connected"}
    assert set(probe(service, "postgres:5432", "hub:8081").values()) == {"connected"}

    # 4. the Lab extension is there: its frontend listed by Lab, its server part answering -- through the
    #    Hub's proxy, the one way from the user's server to the service
    assert "NOTEBOOK_JOBS_URL=http://hub:8000/services/notebook-jobs/" in attrs["Config"]["Env"]
    r = alice.server("GET", "/lab")
    assert r.status_code == 200 and "jupyterlab-notebook-jobs" in r.text
    r = alice.server("GET", "/notebook-jobs/api/jobs")
    assert r.status_code == 200, r.text[:500]

    # 5. a notebook saved into the user's volume through their server (Jupyter's contents API)
    assert alice.server("PUT", "/api/contents/reports", json={"type": "directory"}).status_code in (200, 201)
    r = alice.server("PUT", "/api/contents/reports/nightly.ipynb",
                     json={"type": "notebook", "format": "json", "content": NOTEBOOK})
    assert r.status_code in (200, 201), r.text

    # 6. the service lists it and runs it by path, with a changed parameter
    listed = alice.api("GET", "/notebooks").json()
    assert "reports/nightly.ipynb" in [n["path"] for n in listed["notebooks"]]
    started = time.monotonic()
    r = alice.api("POST", "/jobs", json={"path": "reports/nightly.ipynb", "parameters": {"n": 7}})
    assert r.status_code == 201, r.text
    job = alice.wait_job(r.json()["id"])
    timings["job by path"] = time.monotonic() - started
    assert job["status"] == "succeeded", job
    output = alice.api("GET", f"/jobs/{job['id']}/output", params={"format": "ipynb"}).json()
    assert "n squared is 49" in printed(output)

    # 6b. its work volume is measured for the quota by a meter beside it (the service cannot read Docker's
    #     volumes here): the volume read-only, no network, of all capabilities DAC_READ_SEARCH only; gone after
    slow = {**NOTEBOOK, "cells": [{"cell_type": "code", "execution_count": None, "id": "s", "metadata": {},
                                   "outputs": [], "source": "import time\ntime.sleep(12)"}]}
    r = alice.server("PUT", "/api/contents/reports/slow.ipynb", json={"type": "notebook", "format": "json",
                                                                      "content": slow})
    assert r.status_code in (200, 201), r.text
    r = alice.api("POST", "/jobs", json={"path": "reports/slow.ipynb"})
    assert r.status_code == 201, r.text
    slow_id = r.json()["id"]
    meter_filter = ["--filter", "label=org.jupyter.notebook-jobs.meter", "--filter",
                    f"label=org.jupyter.notebook-jobs.job-id={slow_id}"]
    deadline, meters = time.monotonic() + 60, []
    while not meters and time.monotonic() < deadline:
        meters = subprocess.run(["docker", "ps", "-q", *meter_filter], capture_output=True, text=True,
                                check=True).stdout.split()
        time.sleep(0.5)
    assert len(meters) == 1, "no meter beside the running job"
    meter = inspect("container", meters[0])
    caps = {key: [c.upper().removeprefix("CAP_") for c in meter["HostConfig"][key]] for key in ("CapAdd", "CapDrop")}
    assert caps == {"CapAdd": ["DAC_READ_SEARCH"], "CapDrop": ["ALL"]}, caps
    assert meter["HostConfig"]["NetworkMode"] == "none" and meter["HostConfig"]["ReadonlyRootfs"] is True
    assert [(m["Type"], m["RW"]) for m in meter["Mounts"]] == [("volume", False)]
    assert alice.wait_job(slow_id)["status"] == "succeeded"
    deadline = time.monotonic() + 30
    while subprocess.run(["docker", "ps", "-aq", *meter_filter], capture_output=True, text=True,
                         check=True).stdout.split():
        assert time.monotonic() < deadline, "the meter outlived its job"
        time.sleep(0.5)

    # 7. a nightly schedule of the file (runs read the file as saved then)
    r = alice.api("POST", "/schedules", json={"path": "reports/nightly.ipynb", "cron": "30 2 * * *",
                                               "timezone": "Europe/Berlin", "parameters": {"n": 9}})
    assert r.status_code == 201, r.text
    schedule = r.json()

    # 8. down (every volume kept) and up again: the job, its output and the schedule are still there
    timings["down"] = stack.run("down")
    volumes = subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True, text=True, check=True).stdout
    for volume in (f"{PROJECT}-pgdata", f"{PROJECT}-data", f"{PROJECT}-user-{USER}"):
        assert volume in volumes.split()
    timings["second up"] = stack.run("up")
    again = alice.api("GET", f"/jobs/{job['id']}").json()
    assert again["status"] == "succeeded" and again["parameters"] == {"n": 7}
    output = alice.api("GET", f"/jobs/{job['id']}/output", params={"format": "ipynb"}).json()
    assert "n squared is 49" in printed(output)
    assert alice.api("GET", f"/schedules/{schedule['id']}").json()["cron"] == "30 2 * * *"

    # 9. the user's server is stopped (the Hub knows it is gone after the restart); the schedule still
    #    reads their notebook from the volume
    if alice.server_state():
        alice.hub_api("DELETE", f"/users/{USER}/server")
        deadline = time.monotonic() + 120
        while alice.server_state():
            assert time.monotonic() < deadline, "the server did not stop"
            time.sleep(2)
    assert subprocess.run(["docker", "container", "inspect", server], capture_output=True).returncode != 0
    r = alice.api("POST", f"/schedules/{schedule['id']}/run")
    assert r.status_code == 201, r.text
    run = alice.wait_job(r.json()["id"])
    assert run["status"] == "succeeded", run
    assert run["schedule_id"] == schedule["id"]
    output = alice.api("GET", f"/jobs/{run['id']}/output", params={"format": "ipynb"}).json()
    assert "n squared is 81" in printed(output)
    print("timings (s):", json.dumps({k: round(v) for k, v in timings.items()}))

    # 10. down leaves no container of the stack running: not the users' servers, not the jobs' warm pool
    stack.run("down")
    left = subprocess.run(["docker", "ps", "-q", "--filter", f"label=org.jupyter.notebook-jobs.instance={PROJECT}"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert left == []
