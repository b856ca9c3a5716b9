"""The sandbox battery of ``test_sandbox.py``, unchanged, with every job (attack and honest) in a derived image:
the runner with a job's own requirements installed. A derived image must hold every limit its base holds."""

from __future__ import annotations

import uuid

import docker
import pytest

from tests.docker.conftest import Recorder, make_notebook
from tests.docker.test_environments_service import derive
from tests.docker.test_sandbox import *  # noqa: F401,F403 - the battery, collected here with this module's make_job


@pytest.fixture(scope="module")
def derived_image():
    tag = derive(f"test-{uuid.uuid4().hex[:8]}", (f"tabulate>=0.0.{uuid.uuid4().int % 10**9}",))
    yield tag
    docker.from_env().images.remove(tag, force=True)


@pytest.fixture
def make_job(make_job, derived_image):
    """The battery's jobs, each in the derived image."""

    def factory(*args, **kwargs):
        spec = make_job(*args, **kwargs)
        spec.image = derived_image
        return spec

    return factory


async def test_the_battery_runs_in_the_derived_image(executor, make_job):
    spec = make_job(make_notebook("import tabulate\nprint('TABULATE', tabulate.__version__)"))
    rec = Recorder()
    out = await executor.run(spec, rec.on_event, rec.on_log)
    assert out.status == "succeeded" and any(line.startswith("TABULATE") for line in rec.logs), rec.log_text
