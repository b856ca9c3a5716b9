"""Fixtures for the docker executor's tests: real containers of the runner image.

The whole folder is skipped (with the reason) when no Docker daemon answers or the
runner image is missing; `bash scripts/docker-setup.sh` provides both.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import nbformat
import pytest
import pytest_asyncio

from hub_service.executors.base import INPUT_NOTEBOOK, PARAMETERS_FILE, JobSpec
from hub_service.executors.docker import DockerExecutor
from tests.hubtest import remove_containers


#: The runner image the tests use (default: the executor's own default tag).
IMAGE = os.environ.get("NOTEBOOK_JOBS_TEST_IMAGE") or DockerExecutor().image


def _daemon_problem():
    try:
        import docker

        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as e:  # noqa: BLE001 - any failure means "no daemon here"
        return f"no Docker daemon reachable ({e}); run `bash scripts/docker-setup.sh`"
    try:
        client.images.get(IMAGE)
    except Exception:
        return f"runner image {IMAGE} missing; run `bash runner-image/build.sh`"
    finally:
        client.close()
    return None


_PROBLEM = _daemon_problem()


def pytest_collection_modifyitems(config, items):
    if _PROBLEM is None:
        return
    skip = pytest.mark.skip(reason=_PROBLEM)
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


def make_notebook(*sources: str, parameters: str | None = None) -> nbformat.NotebookNode:
    """A Python notebook whose code cells have the given sources (plus a parameters cell)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if parameters is not None:
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(src) for src in sources)
    return nb


class Recorder:
    """Collects what an executor reports about one job."""

    def __init__(self):
        self.events: list = []
        self.logs: list = []

    def on_event(self, event):
        self.events.append(event)

    async def on_log(self, line):  # async on purpose: both callback kinds must work
        self.logs.append(line)

    @property
    def log_text(self) -> str:
        return "\n".join(self.logs)


@pytest.fixture
def instance():
    """A service-instance name of our own, so tests never touch other containers."""
    return "test-" + uuid.uuid4().hex[:8]


@pytest.fixture
def make_executor(instance):
    """Factory of DockerExecutors of one test instance; removes its leftovers at the end."""
    made = []

    def factory(**traits):
        traits.setdefault("instance", instance)
        traits.setdefault("image", IMAGE)
        traits.setdefault("poll_interval", 0.5)
        ex = DockerExecutor(**traits)
        made.append(ex)
        return ex

    yield factory
    remove_containers(instance)


def _runsc_problem():
    if _PROBLEM is not None:
        return _PROBLEM
    import docker

    client = docker.from_env(timeout=10)
    try:
        if "runsc" not in (client.info().get("Runtimes") or {}):
            return "gVisor (runsc) is not registered with dockerd; see scripts/docker-setup.sh"
    finally:
        client.close()
    return None


@pytest.fixture(params=["runc", "runsc"])
def runtime(request):
    """Each sandbox test runs under the default runtime and under gVisor (when present)."""
    if request.param == "runsc":
        problem = _runsc_problem()
        if problem:
            pytest.skip(problem)
        return "runsc"
    return ""


@pytest_asyncio.fixture
async def sandbox_executor(make_executor, runtime):
    """A started DockerExecutor under each runtime."""
    ex = make_executor(runtime=runtime)
    await ex.start()
    yield ex
    await ex.stop()


@pytest_asyncio.fixture
async def executor(make_executor):
    """A started DockerExecutor (default runtime)."""
    ex = make_executor()
    await ex.start()
    yield ex
    await ex.stop()


@pytest.fixture
def make_job(tmp_path):
    """Factory: a JobSpec whose work directory holds the given notebook and files."""

    def factory(nb, *, parameters=None, files=None, **limits) -> JobSpec:
        job_id = "j" + uuid.uuid4().hex[:10]
        workdir = tmp_path / job_id
        (workdir / "files").mkdir(parents=True)
        nbformat.write(nb, str(workdir / INPUT_NOTEBOOK))
        (workdir / PARAMETERS_FILE).write_text(json.dumps(parameters or {}))
        for name, content in (files or {}).items():
            (workdir / "files" / name).write_text(content)
        limits.setdefault("memory", 512 << 20)
        limits.setdefault("cpu", 1.0)
        limits.setdefault("timeout", 120)
        return JobSpec(job_id=job_id, workdir=workdir, user="alice", **limits)

    yield factory
    shutil.rmtree(tmp_path, ignore_errors=True)


def honest_notebook(sleep: float = 0):
    """The job that runs beside every attack and must still succeed with this output."""
    return make_notebook(
        f"import json, pathlib, time\ntime.sleep({sleep})\nresult = sum(i * i for i in range(x))",
        "pathlib.Path('result.json').write_text(json.dumps({'result': result}))\nprint('honest done', result)",
        parameters="x = 10",
    )


HONEST_X = 1000
HONEST_RESULT = sum(i * i for i in range(HONEST_X))


def assert_honest(spec: JobSpec, outcome, rec: Recorder):
    """The honest job succeeded, reported its progress and wrote the right output."""
    assert outcome.status == "succeeded", (outcome, rec.log_text[-2000:])
    assert json.loads((spec.files_dir / "result.json").read_text()) == {"result": HONEST_RESULT}
    out = nbformat.read(str(spec.output_path), as_version=4)
    assert any("honest done" in o.get("text", "") for c in out.cells for o in c.get("outputs", []))
    assert rec.events[0]["event"] == "started" and rec.events[-1]["event"] == "finished"
    total = rec.events[0]["cells_total"]
    assert [e["cells_done"] for e in rec.events if e["event"] == "cell_finished"] == list(range(1, total + 1))
