"""A job's own requirements, on the docker executor: a derived image built from wheels, cached by key, built once
for a burst, and a failed build that ends the job ``environment_error`` leaving nothing behind. Real containers
of the runner image, real ``pip download`` from the index pip is configured with."""

from __future__ import annotations

import asyncio
import time
import uuid

import docker
import pytest
import pytest_asyncio

from hub_service.executors.docker.builds import LABEL_ENV_KEY, REPOSITORY, cache_key
from tests.docker.conftest import IMAGE, Recorder, make_notebook

pytestmark = pytest.mark.asyncio

#: a small pure-Python wheel the runner image lacks (checked below, so the test cannot pass vacuously)
PACKAGE = "tabulate"
IMPORTS = "import tabulate\nprint('TABULATE', tabulate.__version__, tabulate.__file__)"


def fresh(package: str = PACKAGE) -> tuple:
    """Requirements no earlier run has built: a specifier every release meets, made unique, so a cold build."""
    return (f"{package}>=0.0.{uuid.uuid4().int % 10**9}",)


@pytest.fixture
def derived_images():
    """Tags of the derived images a test makes, removed at its end."""
    made = []
    yield made
    client = docker.from_env()
    for tag in made:
        try:
            client.images.remove(tag, force=True)
        except docker.errors.ImageNotFound:
            pass
    client.close()


@pytest_asyncio.fixture
async def env_executor(make_executor):
    ex = make_executor()
    await ex.start()
    yield ex
    await ex.stop()


def builds(rec: Recorder) -> list:
    return [e["build"] for e in rec.events if e["event"] == "build"]


def leftovers(instance: str) -> list:
    """Build containers and volumes of this instance still on the daemon."""
    client = docker.from_env()
    try:
        prefix = f"notebook-jobs-build-{instance}-"
        return ([c.name for c in client.containers.list(ignore_removed=True, all=True) if c.name.startswith(prefix)]
                + [v.name for v in client.volumes.list() if v.name.startswith(prefix)])
    finally:
        client.close()


async def test_the_runner_image_lacks_the_package(env_executor):
    names = {p["name"].lower() for p in await env_executor.packages()}
    assert "papermill" in names and PACKAGE not in names


async def test_a_job_imports_its_requirement_and_the_next_job_reuses_the_image(env_executor, make_job, instance,
                                                                               derived_images):
    requirements = fresh()
    first = make_job(make_notebook(IMPORTS))
    first.requirements = requirements
    rec = Recorder()
    out = await env_executor.run(first, rec.on_event, rec.on_log)
    assert out.status == "succeeded", (out, rec.log_text[-3000:])
    derived_images.append(first.image)
    assert any(line.startswith("TABULATE") and "/opt/runner/" in line for line in rec.logs), rec.log_text[-2000:]
    # the way: building, then ready; downloaded on the host, installed, committed under its key
    building, ready = builds(rec)
    assert building["status"] == "building" and ready["status"] == "ready" and ready["cached"] is False
    base_id = docker.from_env().images.get(env_executor.image).id
    assert ready["key"] == cache_key(base_id, requirements) and first.image == f"{REPOSITORY}:{ready['key']}"
    assert set(ready["phases"]) == {"download", "install", "commit"} and ready["seconds"] > 0
    assert ready["size"] > 0 and ready["wheels"] >= 2  # the package and pip's own wheel
    assert "Saved" in rec.log_text and "Successfully installed" in rec.log_text  # pip's words, in the job's log
    # the derived image keeps the runner's user and entry point: it is a runner image
    client = docker.from_env()
    config, base = (client.images.get(image).attrs["Config"] for image in (first.image, env_executor.image))
    assert config["User"] == "1000:1000" and config["Entrypoint"] == base["Entrypoint"]
    assert "import runner" in config["Entrypoint"][-1]
    assert not leftovers(instance)

    second = make_job(make_notebook(IMPORTS))
    second.requirements = requirements
    rec2 = Recorder()
    out2 = await env_executor.run(second, rec2.on_event, rec2.on_log)
    assert out2.status == "succeeded", (out2, rec2.log_text[-3000:])
    (cached,) = builds(rec2)  # no "building" record: found at once
    assert cached["status"] == "ready" and cached["cached"] is True and cached["seconds"] == 0.0
    assert cached["key"] == ready["key"] and second.image == first.image
    assert "Successfully installed" not in rec2.log_text


async def test_a_package_that_does_not_exist_fails_with_pips_words_and_leaves_nothing(env_executor, make_job,
                                                                                      instance):
    spec = make_job(make_notebook("print('never runs')"))
    spec.requirements = ("notebook-jobs-no-such-package-" + uuid.uuid4().hex[:8],)
    rec = Recorder()
    out = await env_executor.run(spec, rec.on_event, rec.on_log)
    assert out.status == "failed" and out.reason == "environment_error", out
    assert "\n" not in out.message and out.message.startswith("ERROR:"), out.message
    assert "No matching distribution found" in out.message or "Could not find a version" in out.message
    assert out.message in rec.log_text  # the whole output is in the log
    assert "never runs" not in rec.log_text
    assert not leftovers(instance)
    key = builds(rec)[0]["key"]
    assert not docker.from_env().images.list(filters={"label": f"{LABEL_ENV_KEY}={key}"})


async def test_a_burst_of_jobs_with_the_same_requirements_builds_once(env_executor, make_job, derived_images):
    requirements = fresh()
    specs = [make_job(make_notebook(IMPORTS)) for _ in range(5)]
    for spec in specs:
        spec.requirements = requirements
    recs = [Recorder() for _ in specs]
    outs = await asyncio.gather(*(env_executor.run(s, r.on_event, r.on_log) for s, r in zip(specs, recs)))
    derived_images.append(specs[0].image)
    assert all(o.status == "succeeded" for o in outs), [(o, r.log_text[-1000:]) for o, r in zip(outs, recs)]
    finals = [builds(r)[-1] for r in recs]
    assert sum(not f["cached"] for f in finals) == 1, finals  # one built it ...
    assert sum(f["cached"] and "waited" in f for f in finals) == 4, finals  # ... the others waited for it
    assert len({s.image for s in specs}) == 1
    assert sum(r.log_text.count("Successfully installed") for r in recs) == 1


async def test_a_build_past_its_time_limit_fails_the_job_and_leaves_nothing(env_executor, make_job, instance):
    env_executor.builder.build_timeout = 1.0
    spec = make_job(make_notebook(IMPORTS))
    spec.requirements = fresh()
    rec = Recorder()
    out = await env_executor.run(spec, rec.on_event, rec.on_log)
    assert out.status == "failed" and out.reason == "environment_error", out
    assert out.message == "building the environment took longer than 1 s"
    assert builds(rec)[-1]["status"] == "failed" and not leftovers(instance)
    key = builds(rec)[0]["key"]
    assert not docker.from_env().images.list(filters={"label": f"{LABEL_ENV_KEY}={key}"})


async def test_a_build_whose_time_limit_strikes_while_its_container_is_made_leaves_nothing(env_executor, make_job,
                                                                                           instance):
    """The thread that makes the build's container runs on when the time limit cancels the build: what it
    makes after that goes too (it was left, until the service's next start swept it)."""
    builder = env_executor.builder
    builder.build_timeout = 8.0  # (past the wheels' download, which comes first)
    make, made = builder._create, []

    def create_then_stall(*args):
        made.append(make(*args))
        time.sleep(builder.build_timeout)  # (the time limit strikes meanwhile)
        return made[-1]

    builder._create = create_then_stall
    spec = make_job(make_notebook(IMPORTS))
    spec.requirements = fresh()
    out = await env_executor.run(spec, Recorder().on_event, Recorder().on_log)
    assert out.message == "building the environment took longer than 8 s", out
    assert made and not leftovers(instance)


async def test_builds_a_dead_service_left_are_removed_at_its_start_and_nothing_else(make_executor, instance):
    client = docker.from_env()
    name = f"notebook-jobs-build-{instance}-deadbeef0000"
    client.volumes.create(name=name)
    client.containers.create(IMAGE, name=name, entrypoint=["true"])
    # a job's container of a derived image carries the image's labels: it is no build
    job = client.containers.create(IMAGE, name=f"notebook-jobs-{instance}-j1", entrypoint=["true"],
                                   labels={LABEL_ENV_KEY: "k", "org.jupyter.notebook-jobs.instance": instance})
    ex = make_executor()
    await ex.start()
    try:
        assert not leftovers(instance)
        job.reload()  # (still there)
    finally:
        await ex.stop()
        job.remove(force=True)


async def test_a_compiled_wheel_of_an_older_manylinux_installs_and_imports(env_executor, make_job, derived_images):
    spec = make_job(make_notebook("import wrapt, wrapt._wrappers\nprint('WRAPT', wrapt._wrappers.__file__)"))
    spec.requirements = fresh("wrapt")  # (cp311 wheels tagged manylinux1 / manylinux_2_28 only)
    rec = Recorder()
    out = await env_executor.run(spec, rec.on_event, rec.on_log)
    assert out.status == "succeeded", (out, rec.log_text[-3000:])
    derived_images.append(spec.image)
    assert any(line.startswith("WRAPT") and line.endswith(".so") for line in rec.logs), rec.log_text[-2000:]
