"""Mail to a job's owner when it ends: through a real SMTP server on loopback, as the job's notify asks."""

import asyncio
import re
import ssl
import subprocess
import time
from datetime import datetime
from email import message_from_bytes, policy
from types import SimpleNamespace

import pytest
import requests
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from hub_service import metrics
from hub_service.mailer import Mailer, compose, failing_cell, wants_mail
from hub_service.store.models import Job
from tests.hubtest import SERVICE, free_port, make_notebook, nb_bytes
from tests.test_webhooks_metrics import scrape


class Inbox:
    """What the SMTP server received: one parsed message per mail."""

    def __init__(self):
        self.mails = []

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.original_content, policy=policy.default)
        self.mails.append(SimpleNamespace(rcpt=list(envelope.rcpt_tos), msg=msg))
        return "250 OK"

    def wait_for(self, job_id, timeout=20.0):
        """The mail about ``job_id``, waited for."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for mail in self.mails:
                if mail.msg["X-Notebook-Jobs-Job"] == job_id:
                    return mail
            time.sleep(0.1)
        subjects = [m.msg["Subject"] for m in self.mails]
        raise AssertionError(f"no mail about job {job_id} in {timeout}s; got {subjects}")

    def about(self, job_id):
        return [m for m in self.mails if m.msg["X-Notebook-Jobs-Job"] == job_id]


@pytest.fixture
def inbox(hub, smtp_port):
    """A real SMTP server on the port the session's service mails to (Mailer.smtp_port)."""
    box = Inbox()
    controller = Controller(box, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
def mia(hub):
    return hub.user("mia")


def text_and_html(msg):
    return (msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content())


def test_a_failed_job_mails_its_owner_the_reason_the_cell_and_links(hub, mia, inbox):
    nb = make_notebook("x = 1", "y = 1 / 0", markdown="# nightly")
    job = mia.submit(nb, name="nightly.ipynb", notify="failure")
    assert mia.wait(job["id"])["status"] == "failed"
    mail = inbox.wait_for(job["id"])
    assert mail.rcpt == ["mia@example.org"]
    assert mail.msg["Subject"] == "Notebook job failed: nightly.ipynb"
    assert mail.msg["Auto-Submitted"] == "auto-generated"
    text, html = text_and_html(mail.msg)
    page = f"{hub.url}{SERVICE}jobs/{job['id']}"
    for part in (text, html):
        assert "A cell raised an error" in part and "cell_error" not in part  # words, not the code
        assert "ZeroDivisionError: division by zero" in part
        assert "code cell 2 of 2, In [2]" in part  # the cell as the executed notebook shows it
        assert page in part and f"{page}/output" in part
    assert "Failing cell:" in text and "Duration:" in text
    # the output link is a page: it logs the owner in through the Hub, then shows the render, scripts off
    r = mia.browser.get(f"{page}/output")
    assert r.status_code == 200 and r.url == f"{page}/output", r.url
    assert "ZeroDivisionError" in r.text
    assert r.headers["Content-Security-Policy"] == "sandbox"
    assert len(inbox.about(job["id"])) == 1


def test_the_output_page_a_mail_links_to_is_the_owners_and_admins_only(hub, mia, bob, admin):
    job = mia.submit(make_notebook("print('only mine')"))
    mia.wait(job["id"])
    page = f"{hub.url}{SERVICE}jobs/{job['id']}/output"
    r = requests.get(page, allow_redirects=False)
    assert r.status_code == 302 and "/hub/api/oauth2/authorize" in r.headers["Location"]  # log in first
    assert bob.browser.get(page).status_code == 404
    r = admin.browser.get(page)
    assert r.status_code == 200 and "only mine" in r.text
    running = mia.submit(make_notebook("import time; time.sleep(30)"))
    r = mia.browser.get(f"{hub.url}{SERVICE}jobs/{running['id']}/output")  # no output yet: the job's page
    assert r.status_code == 200 and r.url == f"{hub.url}{SERVICE}jobs/{running['id']}"
    mia.post(f"jobs/{running['id']}/cancel")


def test_a_schedules_failed_run_names_the_schedule_and_links_it(hub, mia, inbox):
    r = mia.post("schedules", files={"file": ("nightly.ipynb", nb_bytes(make_notebook("1 / 0")))},
                 data={"cron": "30 2 * * *", "timezone": "Europe/Berlin", "notify": "failure",
                       "paused": "true", "name": "nightly"})
    assert r.status_code == 201, r.text
    schedule = r.json()
    job = mia.post(f"schedules/{schedule['id']}/run").json()
    assert mia.wait(job["id"])["status"] == "failed"
    mail = inbox.wait_for(job["id"])
    assert mail.msg["Subject"] == "Notebook job failed: nightly (schedule nightly)"
    text, html = text_and_html(mail.msg)
    link = f"{hub.url}{SERVICE}schedules#schedule-{schedule['id']}"
    for part in (text, html):
        assert "nightly (30 2 * * *, Europe/Berlin)" in part and link in part
    assert mia.delete(f"schedules/{schedule['id']}").status_code == 204


def test_mail_is_sent_only_when_the_owner_asked(mia, inbox):
    never = mia.submit(make_notebook("1 / 0"), notify="never")
    failure_ok = mia.submit(make_notebook("1"), notify="failure")
    always_ok = mia.submit(make_notebook("1"), notify="always")
    for job in (never, failure_ok, always_ok):
        mia.wait(job["id"])
    mail = inbox.wait_for(always_ok["id"])
    assert mail.msg["Subject"].startswith("Notebook job succeeded: ")
    assert "Failing cell" not in text_and_html(mail.msg)[0]
    time.sleep(1.0)  # the other two ended before this one was sent: any mail of theirs would be here
    assert len(inbox.about(always_ok["id"])) == 1
    assert inbox.about(never["id"]) == [] and inbox.about(failure_ok["id"]) == []


def test_a_job_ends_normally_when_the_smtp_server_is_down(mia, admin):
    # no inbox fixture: nothing listens on the service's SMTP port
    before = scrape(admin)
    job = mia.submit(make_notebook("1 / 0"), notify="always")
    ended = mia.wait(job["id"])
    assert ended["status"] == "failed" and ended["error"]["reason"] == "cell_error"
    key = ("notebook_jobs_mail_failed_total", (("error", "ConnectionRefusedError"),))
    deadline = time.monotonic() + 15
    while scrape(admin).get(key, 0) == before.get(key, 0):
        assert time.monotonic() < deadline, "the failed send was not counted"
        time.sleep(0.2)
    assert mia.get(f"jobs/{job['id']}").json() == ended  # the job is as it ended
    assert requests.get(mia.hub.url + SERVICE + "api/health").status_code == 200


@pytest.mark.parametrize("notify, status, mailed", [
    ("never", "failed", False), ("failure", "failed", True), ("failure", "succeeded", False),
    ("failure", "cancelled", False), ("always", "succeeded", True), ("always", "cancelled", True),
])
def test_which_endings_are_mailed(notify, status, mailed):
    assert wants_mail(notify, status) is mailed


def test_failing_cell_is_named_as_the_notebook_shows_it():
    assert failing_cell("NameError: x (in code cell 3 of 4, In [7])", 5) == "code cell 3 of 4, In [7]"
    assert failing_cell("NameError: x (in In [7])", 5) == "In [7]"
    assert failing_cell("NameError: x", 5) == "cell 6 of the notebook (markdown cells counted)"
    assert failing_cell("", None) is None


def test_a_job_that_never_started_is_said_to_have_run_for_no_time():
    job = ended_job()
    job.started, job.error_reason, job.error_message = None, "invalid_input", "reports/x.ipynb is gone"
    mailer = Mailer(public_url="https://hub.example.org")
    text = compose(job, links=mailer.links(job, None), schedule=None, sender="a@b.org",
                   to="mia@example.org").get_body(("plain",)).get_content()
    assert text.startswith("Your notebook job tls.ipynb failed.\n")
    assert re.search(r"^Duration: +none: it never started$", text, re.M) and "reports/x.ipynb is gone" in text


def test_addresses_from_the_template_are_checked():
    mailer = Mailer(address_template="{username}@example.org")
    assert mailer.address_of("mia") == "mia@example.org"
    with pytest.raises(ValueError, match="not a valid e-mail address"):
        mailer.address_of("mia\r\nBcc: everyone")
    assert Mailer(address_template=lambda name: None).address_of("mia") is None
    assert not Mailer(smtp_host="smtp.example.org").enabled  # no way to find addresses: no mail
    assert Mailer(public_url="https://hub.example.org/base/", service_prefix="/base/services/nj/").url(
        "jobs", "abc") == "https://hub.example.org/base/services/nj/jobs/abc"


# -- the SMTP server's protection, through the Mailer alone (the session's Hub mails in plain SMTP) ------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert file, key file)."""
    d = tmp_path_factory.mktemp("smtp-tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return str(cert), str(key)


def ended_job(notify="always"):
    """A failed job as the store holds it, for the Mailer alone."""
    return Job(id="f" * 32, user="mia", name="tls.ipynb", status="failed", notify=notify,
               error_reason="timeout", error_message="ran past its 10 s limit",
               created=datetime(2026, 12, 1, 1, 0), started=datetime(2026, 12, 1, 1, 0, 1),
               finished=datetime(2026, 12, 1, 1, 0, 11), output_formats=[], schedule_id=None)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # the server, over implicit TLS
@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_the_mailer_logs_in_over_tls_and_checks_the_servers_certificate(certificate, security):
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=(auth_data.login, auth_data.password) == (b"jobs", b"s3cret"))

    box, port = Inbox(), free_port()
    # (aiosmtpd offers AUTH only after its own STARTTLS; over implicit TLS it must be told the link is safe)
    kwargs = (dict(tls_context=server_tls, require_starttls=True) if security == "starttls"
              else dict(ssl_context=server_tls, auth_require_tls=False))
    controller = Controller(box, hostname="127.0.0.1", port=port, auth_required=True,
                            authenticator=authenticator, **kwargs)
    controller.start()
    try:
        mailer = Mailer(smtp_host="127.0.0.1", smtp_port=port, security=security, username="jobs",
                        password="s3cret", ca_file=cert, address_template="{username}@example.org",
                        public_url="https://hub.example.org", timeout=5)
        assert asyncio.run(mailer.job_ended(ended_job())) is True
        assert logins == [(b"jobs", b"s3cret")]
        mail = box.wait_for("f" * 32, timeout=5)
        assert "ran past its 10 s limit" in text_and_html(mail.msg)[0]
        assert "Failing cell" not in text_and_html(mail.msg)[0]  # a timeout names no cell

        # without the CA that signed it, the server is not trusted: counted, not sent, not raised
        before = len(box.mails)
        failed = metrics.MAIL_FAILED.labels("SSLCertVerificationError")._value.get()
        assert asyncio.run(Mailer(**{**mailer.trait_values(), "ca_file": ""}).job_ended(ended_job())) is False
        assert metrics.MAIL_FAILED.labels("SSLCertVerificationError")._value.get() == failed + 1
        assert len(box.mails) == before
    finally:
        controller.stop()
