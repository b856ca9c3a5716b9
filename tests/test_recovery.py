"""Kill -9 the service with jobs running and queued: after the Hub restarts it, each job ends exactly once."""

import os
import signal
import time

import psutil
import pytest

from tests.hubtest import ROOT, Hub, make_notebook

SLOW = "import time\nfor i in range(8):\n    print('step', i, flush=True)\n    time.sleep(0.5)\nprint('done')"


@pytest.fixture(scope="module")
def local_hub(tmp_path_factory):
    h = Hub(tmp_path_factory.mktemp("recovery"), executor="local",
            extra_args="--Dispatcher.max_running=2 --Dispatcher.per_user=2")
    h.start()
    yield h
    h.stop()


def wait_for_restart(hub, old_pid, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid = hub.service_pid()
            if pid != old_pid and hub.user("alice").get("health").status_code == 200:
                return pid
        except Exception:
            pass
        time.sleep(0.5)
    raise AssertionError("the Hub did not restart the service")


def test_kill_9_with_running_and_queued_jobs_loses_nothing_and_runs_nothing_twice(local_hub):
    alice = local_hub.user("alice")
    jobs = [alice.submit(make_notebook(SLOW), name=f"survivor-{i}") for i in range(3)]
    alice.wait(jobs[0]["id"], statuses=("running",))
    time.sleep(1.5)
    pid = local_hub.service_pid()
    # Everything the service started, found by descent: "orphans have ppid 1" would pass
    # vacuously where a subreaper adopts them.
    children = psutil.Process(pid).children(recursive=True)
    kinds = " ".join(" ".join(c.cmdline()) for c in children)
    assert "runner.py" in kinds and "multiprocessing.spawn" in kinds and "resource_tracker" in kinds, kinds
    os.kill(pid, signal.SIGKILL)
    wait_for_restart(local_hub, pid)
    left = [(c.pid, " ".join(c.cmdline())[:100]) for c in children
            if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"processes of the killed service still alive: {left}"
    for job in jobs:
        done = alice.wait(job["id"], timeout=120)
        # (the status and error alone: pytest would cut a whole job short of its error)
        assert done["status"] == "succeeded", (done["name"], done["status"], done.get("error"))
        log = alice.get(f"jobs/{job['id']}/logs").text
        # the re-queued run started from scratch in a fresh work directory: one full run in the log
        assert log.count("done") == 1, log
        out = alice.get(f"jobs/{job['id']}/output").json()
        assert "done" in "".join("".join(o.get("text", "")) for o in out["cells"][0]["outputs"])


def test_each_database_gets_its_own_instance_id_and_an_upgraded_one_keeps_the_old_name(tmp_path):
    """The docker label that tells deployments apart: random per database, stable across restarts;
    a database from before instance ids (containers labelled "default") keeps "default"."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from hub_service.store import Store
    from hub_service.store.queries import make_engine

    first, second = Store(f"sqlite:///{tmp_path / 'a.sqlite'}"), Store(f"sqlite:///{tmp_path / 'b.sqlite'}")
    assert first.instance_id() != second.instance_id() and len(first.instance_id()) == 12
    assert Store(first.url).instance_id() == first.instance_id()

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = make_engine(url)
    here = ROOT / "hub_service" / "store"
    cfg = Config(str(here / "alembic.ini"))
    cfg.set_main_option("script_location", str(here / "migrations"))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0001")
        connection.execute(text(
            "INSERT INTO jobs (id, user, name, status, input_hash, input_kind, input_name, parameters, output_formats,"
            " features, requested, predicted, allocated, used, cells_done, created, created_ts) VALUES ('j1', 'alice',"
            " '', 'running', '', 'ipynb', '', '{}', '[]', '{}', '{}', '{}', '{}', '{}', 0, '2026-01-01', 0)"))
    engine.dispose()
    assert Store(url).instance_id() == "default"


def test_a_second_service_on_the_same_database_does_not_start_and_the_first_keeps_its_jobs(local_hub):
    """Started on the running service's database (its own port), a second service waits for the
    database's lease, then gives up naming the holder: had it started, its recovery would have
    taken the first's running job for lost and run it a second time."""
    from tests.hubtest import free_port
    import subprocess

    alice = local_hub.user("alice")
    job = alice.submit(make_notebook(SLOW), name="held")
    alice.wait(job["id"], statuses=("running",))
    first = psutil.Process(local_hub.service_pid())
    env = dict(first.environ(), JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{free_port()}")
    second = subprocess.run(first.cmdline() + ["--NotebookJobs.lease_wait=1"], env=env, cwd=first.cwd(),
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 1, second.stderr[-2000:]
    assert "waiting up to 1s for the database" in second.stderr
    assert "not starting: another service uses this database (notebook-jobs on" in second.stderr
    assert f"pid {first.pid})" in second.stderr, second.stderr[-2000:]
    done = alice.wait(job["id"], timeout=120)
    assert done["status"] == "succeeded", done.get("error")
    assert alice.get(f"jobs/{job['id']}/logs").text.count("done") == 1
