"""Fixtures: one real Hub + proxy + notebook-jobs service (local executor) per test session.

And the layers. Every test is marked with what it needs, so that one layer runs on its own
(``scripts/test.sh -m unit``):

- ``hub``: a real JupyterHub with the service (a fixture of ``LAYERS["hub"]``: ``alice`` counts, as it
  needs ``hub``);
- ``docker``: the Docker daemon and the runner image (tests/docker/);
- ``browser``: Chromium, through Playwright;
- ``process``: a process of the test's own that is none of those (a PostgreSQL or Jupyter server,
  papermill, the CLI, jest, openssl);
- ``slow``: in-process, but minutes rather than seconds (the demand model's replays);
- ``stack``: the team deployment brought up with docker-compose (tests/stack/);
- ``unit``: everything else -- in-process and quick.

A test may carry its layer itself (``@pytest.mark.process``); else it is found here, from the
fixtures it uses, its module, or its name. A ``unit`` test that starts a process anyway, or talks to
the Docker daemon, fails and says which (:func:`unit_guard`): give it its layer.
"""

import contextlib
import os
import socket
import subprocess
import traceback
from pathlib import Path

import _posixsubprocess
import joblib
import croniter  # noqa: F401 (importing it is a probe: `file -b python`, for platform.architecture)
import jupytext  # noqa: F401 (importing it is a probe: see unit_guard's)
import pytest

from tests.hubtest import Hub, free_port
from tests.pgtest import PostgresServer, find_bindir

HERE = Path(__file__).resolve().parent
UNIT = "unit"

#: layer -> the fixtures that put a test in it
LAYERS = {
    "hub": {"hub", "group_hub", "local_hub", "shub", "docker_hub", "two_deployments", "hub_lab",
            "hub_app"},  # (pytest-jupyterhub's MockHub, with a real proxy)
    "browser": {"browser"},
    "process": {"postgres_server", "certificate"},
}
#: layer -> modules (or folders) of tests/ every test of which is in it
MODULE_LAYERS = {
    "docker": {"docker"},
    "stack": {"stack"},
    "process": {"test_runner.py", "test_lab_units.py", "test_lab_server.py"},
}
#: layer -> single tests of modules that mix layers (``module::name``, any parameters)
TEST_LAYERS = {
    "process": {
        "test_cli.py::test_help_notebook_lists_the_parameters_and_the_types_the_service_checks_without_a_service",
        "test_cli.py::test_a_hand_made_notebook_without_cell_ids_prints_no_nbformat_warning",
    },
    "slow": {
        "demand/test_demand_simulate.py::test_model_beats_vpa_on_small_trace",
        "demand/test_demand_properties.py::test_the_replay_completes_on_any_workload",
        "demand/test_demand_properties.py::test_training_and_every_sizing_stay_finite_and_in_bounds",
    },
}
ALL_LAYERS = (UNIT, "hub", "docker", "browser", "process", "slow", "stack")


def layers_of(item) -> set:
    """The layers a collected test is in: its own markers, else its fixtures (and their parameters),
    its module and its name; ``unit`` when none of these says otherwise."""
    found = {m.name for m in item.iter_markers() if m.name in ALL_LAYERS}
    used = set(item.fixturenames)
    found |= {layer for layer, names in LAYERS.items() if used & names}
    path = Path(item.path).resolve()
    rel = path.relative_to(HERE) if HERE in path.parents else Path(path.name)
    found |= {layer for layer, places in MODULE_LAYERS.items() if rel.parts[0] in places}
    name = f"{rel.as_posix()}::{getattr(item, 'originalname', item.name)}"
    found |= {layer for layer, names in TEST_LAYERS.items() if name in names}
    params = getattr(getattr(item, "callspec", None), "params", {})
    if params.get("db_url") == "postgresql":  # (the SQLite half of a db_url test stays a unit test)
        found.add("process")
    return found - {UNIT} or {UNIT}


def pytest_collection_modifyitems(config, items):
    for item in items:
        for layer in sorted(layers_of(item)):
            if item.get_closest_marker(layer) is None:
                item.add_marker(getattr(pytest.mark, layer))
    # The team deployment last: scripts/test.sh builds its images in the background meanwhile.
    items.sort(key=lambda item: item.get_closest_marker("stack") is not None)


# -- a unit test starts no process and reaches no daemon ------------------------------------------

# Libraries that probe the machine once, with a short process, the first time they are used: done
# here, before any test, so that the guard sees only what tests start. (Importing jupytext asks
# `pandoc --version`, importing croniter `file -b` of the interpreter; joblib, under scikit-learn,
# runs lscpu to count the cores.)
joblib.cpu_count(only_physical_cores=True)


class LayerError(AssertionError):
    """A test marked ``unit`` did what only another layer does."""


_ATTEMPTS = pytest.StashKey[list]()
_REAL_CONNECT = socket.socket.connect


def _refuse(item, what: str):
    def refused(*args, **kwargs):
        said = f"{what}: give {item.nodeid} its layer (tests/conftest.py)"
        where = "".join(traceback.format_stack(limit=6)[:-1])
        item.stash.setdefault(_ATTEMPTS, []).append(f"{said}; it did so at\n{where}")
        raise LayerError(f"a unit test {said}")
    return refused


def _patches(item) -> list:
    """(object, attribute, stand-in) for what a unit test must not do."""
    started = _refuse(item, "started a process")
    # subprocess (and asyncio's) took fork_exec at import; multiprocessing looks it up at each start
    patches = [(subprocess, "_fork_exec", started), (_posixsubprocess, "fork_exec", started)]
    patches += [(os, name, started) for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp")
                if hasattr(os, name)]
    daemon = _refuse(item, "talked to the Docker daemon")

    def connect(sock, address):
        if sock.family == socket.AF_UNIX and str(address).endswith("docker.sock"):
            daemon()
        return _REAL_CONNECT(sock, address)

    return patches + [(socket.socket, "connect", connect)]


@contextlib.contextmanager
def unit_guard(item):
    """While a ``unit`` test is set up and runs: starting a process or reaching the Docker daemon
    fails it, even when the code under test caught the refusal."""
    if item.get_closest_marker(UNIT) is None:
        yield
        return
    patches = _patches(item)
    saved = [(target, name, getattr(target, name)) for target, name, _ in patches]
    for target, name, value in patches:
        setattr(target, name, value)
    try:
        yield
    finally:
        for target, name, value in saved:
            setattr(target, name, value)
    attempts = item.stash.get(_ATTEMPTS, [])
    if attempts:
        item.stash[_ATTEMPTS] = []
        raise LayerError(f"a unit test {attempts[0]}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    with unit_guard(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    with unit_guard(item):
        return (yield)


@pytest.fixture(scope="session")
def webhook_port():
    """The one loopback port the session's admin allows webhooks to reach."""
    return free_port()


@pytest.fixture(scope="session")
def smtp_port():
    """The loopback port of the SMTP server the session's service mails to (tests/test_mail.py starts it)."""
    return free_port()


@pytest.fixture(scope="session")
def hub(tmp_path_factory, webhook_port, smtp_port):
    """A real Hub + proxy + notebook-jobs service (local executor), shared by the session."""
    h = Hub(tmp_path_factory.mktemp("hub"), extra_args="--NotebookJobs.max_upload_size=1000000 "
                                                        "--Sizing.timeout_min=1 --Dispatcher.max_running=2 "
                                                        f"--Webhooks.allowed_networks=127.0.0.1/32:{webhook_port}")
    h.env["NOTEBOOK_JOBS_WEBHOOK_SECRET"] = "hook-secret"  # a secret goes in the environment, never argv
    h.env["NOTEBOOK_JOBS_ARGS"] += (f" --Mailer.smtp_host=127.0.0.1 --Mailer.smtp_port={smtp_port} "
                                    "--Mailer.address_template={username}@example.org --Mailer.timeout=5 "
                                    f"--Mailer.public_url={h.url}")
    h.start()
    yield h
    h.stop()


@pytest.fixture
def alice(hub):
    return hub.user("alice")


@pytest.fixture
def bob(hub):
    return hub.user("bob")


@pytest.fixture
def admin(hub):
    return hub.user("admin")


# -- the store on PostgreSQL as well as SQLite (tests/pgtest.py) --------------------------------


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server of the session's own, in a temporary directory (a Unix socket only)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl/postgres; scripts/setup.sh installs it)")
    server = PostgresServer(bindir).start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server):
    """The SQLAlchemy URL of a new, empty PostgreSQL database of this test's own (dropped after it)."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """An empty store database, once on SQLite (a file) and once on PostgreSQL: a test that takes it runs on both."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    else:
        yield request.getfixturevalue("postgres_url")
