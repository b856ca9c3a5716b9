"""Environments through a real Hub and the docker backend: two curated environments (the runner, and one derived
in the test from a requirements file by the service's own builder), a job's environment, a bundle's
requirements.txt built once and then cached, and every refusal named where it belongs."""

from __future__ import annotations

import asyncio
import io
import re
import json
import time
import uuid
import zipfile
from pathlib import Path

import docker
import pytest

from hub_service.executors.base import JobSpec
from hub_service.executors.docker import DockerExecutor
from tests.docker.conftest import IMAGE
from tests.hubtest import SERVICE, Hub, environments_config, make_notebook, nb_bytes, remove_containers

IMPORTS = "import tabulate\nprint('TABULATE', tabulate.__version__)"


def derive(instance: str, requirements: tuple) -> str:
    """An image of the runner with ``requirements``, made by the service's own builder; its tag."""
    executor = DockerExecutor(instance=instance, image=IMAGE)
    spec = JobSpec(job_id="derive", workdir=Path("."), user="admin", requirements=requirements)
    return asyncio.run(executor.builder.image_for(spec, IMAGE, lambda text: None, lambda record: None))


@pytest.fixture(scope="module")
def env_hub(tmp_path_factory):
    instance = f"test-{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp("env-hub")
    tabular = derive(instance, (f"tabulate>=0.0.{uuid.uuid4().int % 10**9}",))
    environments = [
        {"name": "python", "description": "The lean runner", "image": IMAGE},
        {"name": "tabular", "description": "The runner and tabulate", "image": tabular,
         "resources": {"memory": "768MB"}},
    ]
    h = Hub(tmp, executor="docker", extra_args=f"{environments_config(tmp, environments)} "
                                               f"--DockerExecutor.instance={instance} "
                                               "--Dispatcher.max_running=6 --Dispatcher.per_user=6")
    h.instance, h.made = instance, [tabular]
    h.start()
    yield h
    h.stop()
    remove_containers(instance)
    client = docker.from_env()
    for tag in h.made:
        try:
            client.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass


def bundle(requirements: str, notebook: dict) -> bytes:
    """A .zip bundle: main.ipynb and its requirements.txt."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("main.ipynb", nb_bytes(notebook))
        zf.writestr("requirements.txt", requirements)
    return buf.getvalue()


def test_two_curated_environments_list_different_packages(env_hub):
    alice = env_hub.user("alice")
    r = alice.get("environments")
    assert r.status_code == 200, r.text
    listing = r.json()
    assert listing["default"] == "python"
    envs = {e["name"]: e for e in listing["environments"]}
    assert list(envs) == ["python", "tabular"]
    packages = {name: {p["name"].lower(): p["version"] for p in e["packages"]} for name, e in envs.items()}
    assert "papermill" in packages["python"] and "papermill" in packages["tabular"]
    assert "tabulate" in packages["tabular"] and "tabulate" not in packages["python"]
    assert envs["tabular"]["resources"] == {"memory": 768 * 2**20} and envs["tabular"]["gpu"] is False
    started = time.monotonic()
    assert alice.get("environments").json() == listing  # read once per image: the second answer is cheap
    assert time.monotonic() - started < 1.0


def test_a_job_runs_in_the_environment_it_names_and_an_unknown_one_is_refused(env_hub):
    alice = env_hub.user("alice")
    job = alice.submit(make_notebook(IMPORTS), environment="tabular")
    assert job["environment"] == "tabular"
    assert job["resources"]["allocated"]["memory"] == 768 * 2**20  # the environment's default, not asked for
    job = alice.wait(job["id"], timeout=120)
    assert job["status"] == "succeeded", job
    assert "TABULATE" in alice.get(f"jobs/{job['id']}/logs").text
    default = alice.submit(make_notebook("print('lean')"))
    assert default["environment"] == "python"

    r = alice.post("jobs", json={"code": "print(1)", "environment": "gpu-lab"})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["field"] == "/environment" and "python" in error["message"] and "tabular" in error["message"]


def test_a_bundles_requirements_build_once_then_the_next_job_says_cached(env_hub):
    alice, bob = env_hub.user("alice"), env_hub.user("bob")
    requirements = f"# what the notebook imports\ntabulate>=0.0.{uuid.uuid4().int % 10**9}\n"
    first = alice.post("jobs", files={"file": ("job.zip", bundle(requirements, make_notebook(IMPORTS)))}).json()
    assert first["build"]["requirements"][0].startswith("tabulate>=0.0.")
    phases, deadline = set(), time.monotonic() + 120
    while (job := alice.get(f"jobs/{first['id']}").json())["status"] in ("queued", "running"):
        phases.add(job["progress"]["phase"])
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert job["status"] == "succeeded", job
    assert "building environment" in phases  # what the job's progress said while it waited for its image
    assert job["progress"]["phase"] is None
    build = job["build"]
    assert build["cached"] is False and build["seconds"] > 0 and build["size"] > 0
    assert set(build["phases"]) == {"download", "install", "commit"}
    log = alice.get(f"jobs/{first['id']}/logs").text
    assert "Successfully installed" in log and "TABULATE" in log
    env_hub.made.append(build["image"])

    # another user, the same file: the image is shared, built in no time
    second = bob.post("jobs", files={"file": ("again.zip", bundle(requirements, make_notebook(IMPORTS)))}).json()
    second = bob.wait(second["id"], timeout=120)
    assert second["status"] == "succeeded", second
    assert second["build"]["cached"] is True and second["build"]["seconds"] == 0
    assert second["build"]["image"] == build["image"]
    assert "Successfully installed" not in bob.get(f"jobs/{second['id']}/logs").text
    # the job pages say it in words
    assert bob.browser.get(env_hub.url + SERVICE).status_code == 200  # (Hub OAuth: the cookie)
    page = bob.browser.get(env_hub.url + SERVICE + f"jobs/{second['id']}").text
    assert re.search(r'id="job-environment">python, with tabulate&gt;=0\.0\.\d+:\s+an image built before, reused',
                     page), page
    assert alice.browser.get(env_hub.url + SERVICE).status_code == 200
    page = alice.browser.get(env_hub.url + SERVICE + f"jobs/{first['id']}").text
    assert re.search(r"with tabulate&gt;=0\.0\.\d+:\s+built in [\d.]+ ?s \([\d.]+ [KM]iB\)", page), page


@pytest.mark.parametrize("line, says", [
    ("tabulate>=>0.9", "not a requirement specifier"),
    ("--index-url https://example.org/simple", "the option --index-url is not allowed"),
    ("-e git+https://example.org/repo.git", "the option -e is not allowed"),
    ("https://example.org/pkg.whl", "URLs"),
])
def test_a_bad_requirement_is_a_400_naming_its_line(env_hub, line, says):
    alice = env_hub.user("alice")
    r = alice.post("jobs", files={"file": ("job.zip", bundle(f"six\n{line}\n", make_notebook("1")))})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["field"] == "/requirements" and error["message"].startswith("requirements line 2 ")
    assert says in error["message"]
    # the same beside a notebook, as the requirements field
    r = alice.post("jobs", json={"code": "print(1)", "requirements": f"six\n{line}"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "/requirements", r.text


def test_a_package_that_does_not_exist_fails_the_job_with_pips_words(env_hub):
    alice = env_hub.user("alice")
    missing = "notebook-jobs-no-such-package-" + uuid.uuid4().hex[:8]
    r = alice.post("jobs", json={"code": "print('never runs')", "requirements": missing})
    assert r.status_code == 201, r.text
    job = alice.wait(r.json()["id"], timeout=120)
    assert job["status"] == "failed", job
    error = job["error"]
    assert error["reason"] == "environment_error" and error["summary"] == "Its requirements could not be installed"
    assert error["message"].startswith("ERROR:") and missing in error["message"] and "\n" not in error["message"]
    assert job["build"]["status"] == "failed"
    log = alice.get(f"jobs/{job['id']}/logs").text
    assert error["message"] in log and "never runs" not in log


def test_the_cli_lists_the_environments_and_submits_with_env_and_requirements(env_hub, tmp_path):
    from tests.test_cli import cli

    alice = env_hub.user("alice")
    r = cli(alice, "environments", "--packages")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].startswith("python *") and any(line.startswith("tabular ") for line in lines)
    assert any(line.strip().startswith("tabulate==") for line in lines)
    nb = tmp_path / "tables.ipynb"
    nb.write_bytes(nb_bytes(make_notebook(IMPORTS)))
    r = cli(alice, "submit", str(nb), "--env", "tabular", "--wait", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["environment"] == "tabular"
    bad = tmp_path / "requirements.txt"
    bad.write_text("six\n--extra-index-url https://example.org/simple\n")
    r = cli(alice, "submit", str(nb), "--requirements", str(bad))
    assert r.returncode == 2 and "requirements line 2" in r.stderr, r.stderr
