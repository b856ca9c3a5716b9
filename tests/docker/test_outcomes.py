"""An OOM kill in a real container, followed by the JobManager: the cell it was in, and no cell shown done
that was not. In Docker the kernel is what the OOM killer takes; the runner lives on, and papermill calls
the dead cell complete on its way out (a cell_finished "ok" for it, then DeadKernelError)."""

from __future__ import annotations

import json

import nbformat

from hub_service.executors.base import INPUT_NOTEBOOK, PARAMETERS_FILE, JobSpec
from hub_service.jobs import JobManager
from hub_service.outputs import Artifacts
from hub_service.states import Status
from hub_service.store import Store, job_model
from tests.docker.conftest import Recorder, make_notebook

HOG = "x = bytearray(900 * 2**20)\nx[::4096] = b'1' * len(x[::4096])"


async def test_an_oom_killed_container_job_names_the_cell_and_does_not_count_it_done(executor, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    artifacts = Artifacts(tmp_path / "data")
    manager = JobManager(store=store, artifacts=artifacts, executor=executor)
    job = store.create_job(user="alice", input_hash="x", input_kind="ipynb", features={}, predicted={},
                           allocated={"memory": 256 << 20}, used={})
    store.transition(job.id, Status.RUNNING.value)
    workdir = artifacts.job_dir(job.id)
    (workdir / "files").mkdir(parents=True)
    nb = make_notebook("a = 1", HOG, "print('never')")
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("# a hog"))
    nbformat.write(nb, str(workdir / INPUT_NOTEBOOK))
    (workdir / PARAMETERS_FILE).write_text(json.dumps({}))
    spec = JobSpec(job_id=job.id, workdir=workdir, user="alice", memory=256 << 20, cpu=1.0, timeout=120)
    rec = Recorder()

    def on_event(event):
        rec.on_event(event)
        manager._on_event(job.id, event)

    outcome = await executor.run(spec, on_event, rec.on_log)
    assert outcome.reason == "oom_killed", (outcome, rec.log_text[-2000:])
    model = job_model(manager.finish(job.id, outcome))
    # the runner called the killed cell finished, and counted it: 2 of 3
    finished = [e for e in rec.events if e["event"] == "cell_finished"]
    assert [e["cells_done"] for e in finished] == [1, 2], rec.events
    assert model["progress"] == {"cells_done": 1, "cells_total": 3, "phase": None}, model
    assert model["error"]["cell"] == 2 and model["error"]["summary"] == "Ran out of memory", model["error"]
    assert model["error"]["message"].endswith("(in code cell 2 of 3)"), model["error"]
    assert model["has_output"] is True and model["partial"] is True
    assert "DeadKernelError" in rec.log_text  # what the runner said (JobManager._run writes it to the log) ...
    log = artifacts.log_path(job.id).read_text()
    assert log.rstrip("\n").rsplit("\n", 1)[-1].startswith("notebook-jobs: Ran out of memory: ")  # ... and in words
    store.close()
