"""Fixtures: one real Hub + proxy + notebook-jobs service (local executor) per test session."""

import pytest

from tests.hubtest import Hub, free_port
from tests.pgtest import PostgresServer, find_bindir


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
