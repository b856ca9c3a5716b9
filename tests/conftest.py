"""Fixtures: one real Hub + proxy + notebook-jobs service (local executor) per test session."""

import pytest

from tests.hubtest import Hub, free_port


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
                                                        "--JobManager.webhook_secret=hook-secret "
                                                        f"--Webhooks.allowed_networks=127.0.0.1/32:{webhook_port}")
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
