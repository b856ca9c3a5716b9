"""One name rule, however a job's name is made: no control, format or line-break characters.

A name the user typed (``name``) that breaks it is a 400 naming ``name``; a name made from an
upload's file name (RFC 2231 lets it carry any character) or a workspace path is cleaned.
Names end up in mail headers and in ``Content-Disposition``: neither may be split, or get
a parameter added, by a name; and the mailer copes with a row stored before the rule.
"""

import asyncio
import re
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from datetime import datetime
from urllib.parse import quote, unquote

import pytest
from aiosmtpd.controller import Controller

from hub_service.handlers.base import content_disposition
from hub_service.intake import IntakeError, check_name, clean_name, read_submission
from hub_service.mailer import Mailer, ScheduleRef, compose
from hub_service.store.models import Job
from tests.hubtest import free_port, make_notebook, nb_bytes

EVIL = "evil\r\nBcc: victim@example.org\r\nX-Evil: 1"
REFUSED = ["a\r\nb", "tab\there", "line\u2028sep", "para\u2029sep", "bidi\u202eflip", "zero\u200bwidth",
           "del\x7f", "c1\x85next"]


@pytest.fixture
def nora(hub):
    return hub.user("nora-names")


def multipart(filename_param: bytes, body: bytes, **fields) -> tuple:
    """A multipart body whose file part's name parameter is given raw (e.g. RFC 2231 ``filename*=``)."""
    head = b'--x\r\nContent-Disposition: form-data; name="file"; ' + filename_param
    parts = [head + b"\r\n\r\n" + body + b"\r\n"]
    for k, v in fields.items():
        parts.append(f'--x\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    return b"".join(parts) + b"--x--\r\n", {"Content-Type": "multipart/form-data; boundary=x"}


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM = re.compile(rf'\s*;\s*({_TOKEN})\s*=\s*("(?:[^"\\\\]|\\\\.)*"|{_TOKEN})\s*')


def parse_disposition(value: str) -> dict:
    """``Content-Disposition`` read by RFC 6266's grammar: its type, then each parameter (once)
    with a quoted string unquoted and ``filename*`` (``UTF-8''…``) decoded."""
    m = re.match(rf"\s*({_TOKEN})", value)
    assert m, value
    out, pos = {"type": m.group(1).lower()}, m.end()
    while pos < len(value):
        m = _PARAM.match(value, pos)
        assert m, f"not a parameter at {value[pos:]!r} in {value!r}"
        key, raw = m.group(1).lower(), m.group(2)
        assert key not in out, f"{key} twice in {value!r}"
        if raw.startswith('"'):
            raw = re.sub(r"\\\\(.)", r"\1", raw[1:-1])
        elif key.endswith("*"):
            charset, _, encoded = raw.partition("''")
            assert charset.upper() == "UTF-8", value
            raw = unquote(encoded, errors="strict")
        out[key], pos = raw, m.end()
    return out


# -- pure: the rule itself -------------------------------------------------------------------


@pytest.mark.parametrize("name", REFUSED)
def test_a_given_name_with_a_control_character_is_refused_naming_name(name):
    with pytest.raises(IntakeError) as e:
        check_name(name, "nb.ipynb")
    assert e.value.status == 400 and e.value.message.startswith("name "), e.value.message
    assert "U+" in e.value.message  # says which character


@pytest.mark.parametrize("name", REFUSED + [EVIL])
def test_a_derived_name_is_cleaned_to_one_line(name):
    cleaned = check_name(None, name)
    assert cleaned == clean_name(name)
    assert all(c.isprintable() for c in cleaned), repr(cleaned)
    assert cleaned.split() == clean_name(cleaned).split()


def test_plain_names_are_left_alone():
    for name in ("nightly report", 'a "quoted" name', "résumé ☃", "x" * 200):
        assert check_name(name, "d") == name
        assert clean_name(name) == name
    assert check_name(None, "dir/nb.ipynb") == "dir/nb.ipynb"
    assert clean_name("\r\n\t") == "notebook"  # nothing left: a fallback, never an empty name


def test_an_upload_named_with_a_line_feed_is_read_under_a_clean_name():
    bundle = read_submission(EVIL + ".ipynb", nb_bytes(make_notebook("1")))
    assert bundle.name == "evil Bcc: victim@example.org X-Evil: 1.ipynb" and bundle.kind == "ipynb"


@pytest.mark.parametrize("name,ascii_name", [
    ('say "hi"; x=1.ipynb', "say _hi_; x=1.ipynb"),
    ("résumé ☃ 100%.html", "r_sum_ _ 100_.html"),
    (EVIL + ".md", "evil Bcc: victim@example.org X-Evil: 1.md"),
    ("back\\slash.ipynb", "back_slash.ipynb"),
])
def test_content_disposition_is_rfc_6266_for_any_name(name, ascii_name):
    value = content_disposition(name)
    assert "\r" not in value and "\n" not in value
    assert parse_disposition(value) == {"type": "attachment", "filename": ascii_name,  # no parameter added
                                        "filename*": clean_name(name)}  # what browsers prefer: the name
    assert ascii_name.isascii() and value.isascii()


# -- the mailer never fails on an odd stored name ------------------------------------------------


def stored_job(**kw):
    """A job row as the store holds it, stored before names were checked."""
    base = dict(id="f" * 32, user="nora", name=EVIL, input_name="x\r\n.ipynb", status="failed",
                error_reason="cell_error", error_message="boom", error_cell=0, notify="always",
                created=datetime(2026, 12, 1, 1, 0), started=datetime(2026, 12, 1, 1, 0, 1),
                finished=datetime(2026, 12, 1, 1, 0, 3), output_formats=[], schedule_id=None)
    return Job(**dict(base, **kw))


def test_compose_keeps_a_linefeed_name_out_of_the_headers():
    msg = compose(stored_job(), links={"job": "http://h/j"}, sender="jobs@example.org", to="nora@example.org",
                  schedule=ScheduleRef("s", "nightly\nBcc: x@y.org"))
    assert isinstance(msg, EmailMessage)
    assert msg["Subject"] == ("Notebook job failed: evil Bcc: victim@example.org X-Evil: 1 "
                              "(schedule nightly Bcc: x@y.org)")
    reparsed = message_from_bytes(bytes(msg), policy=policy.default)
    assert reparsed["Bcc"] is None and reparsed["X-Evil"] is None
    assert [str(a) for a in reparsed["To"].addresses] == ["nora@example.org"]


class Inbox:
    def __init__(self):
        self.mails = []

    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.original_content, policy=policy.default)
        self.mails.append((list(envelope.rcpt_tos), msg))
        return "250 OK"


def test_the_owner_is_still_mailed_about_a_job_whose_stored_name_has_a_linefeed():
    port, inbox = free_port(), Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mailer = Mailer(smtp_host="127.0.0.1", smtp_port=port, address_template="{username}@example.org",
                        timeout=5)
        assert asyncio.run(mailer.job_ended(stored_job())) is True
        deadline = time.monotonic() + 10
        while not inbox.mails and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        controller.stop()
    [(rcpt, msg)] = inbox.mails
    assert rcpt == ["nora@example.org"]  # nobody else: the name added no Bcc
    assert msg["Subject"] == "Notebook job failed: evil Bcc: victim@example.org X-Evil: 1"
    assert msg["X-Evil"] is None


# -- through the real Hub ------------------------------------------------------------------------


def test_an_explicit_bad_name_is_a_400_naming_name_and_stores_nothing(nora):
    before = len(nora.get("jobs").json()["jobs"])
    nb = make_notebook("1")
    for r in (
        nora.post("jobs", files={"file": ("nb.ipynb", nb_bytes(nb))}, data={"name": EVIL}),
        nora.post("jobs", json={"notebook": nb, "name": "line\u2028two"}),
        nora.post("jobs", json={"code": "1", "name": "tab\there"}),
        nora.post("jobs", params={"dry_run": "1"}, json={"notebook": nb, "name": "bidi\u202eflip"}),
    ):
        assert r.status_code == 400, r.text
        assert r.json()["error"]["message"].startswith("name "), r.text
    assert len(nora.get("jobs").json()["jobs"]) == before
    # a schedule's name, when a PATCH changes it, passes the same rule
    r = nora.post("schedules", json={"notebook": nb, "cron": "@daily", "paused": True})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    try:
        r = nora.api.patch(nora.url(f"schedules/{sid}"), json={"name": "a\nb"})
        assert r.status_code == 400 and r.json()["error"]["message"].startswith("name "), r.text
    finally:
        nora.delete(f"schedules/{sid}")


def test_an_upload_named_with_crlf_by_rfc_2231_gets_a_clean_name_and_downloads(nora):
    encoded = quote(EVIL + ".ipynb", safe="").encode()
    body, headers = multipart(b"filename*=UTF-8''" + encoded, nb_bytes(make_notebook("print(1)")))
    r = nora.post("jobs", data=body, headers=headers)
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["name"] == "evil Bcc: victim@example.org X-Evil: 1.ipynb", job["name"]
    assert nora.wait(job["id"])["status"] == "succeeded"
    r = nora.get(f"jobs/{job['id']}/output", params={"format": "ipynb", "download": "1"})
    assert r.status_code == 200, r.text  # was a 500: a line feed in a header
    name = f"evil Bcc: victim@example.org X-Evil: 1-{job['id'][:8]}.ipynb"
    assert parse_disposition(r.headers["Content-Disposition"]) == {"type": "attachment", "filename": name,
                                                                   "filename*": name}


def test_a_workspace_path_with_a_line_feed_gives_a_clean_name(hub, nora):
    rel = hub.write_workspace(nora.name, "odd/evil\nBcc: victim@example.org.ipynb", make_notebook("1"))
    r = nora.post("jobs", params={"dry_run": "1"}, json={"path": rel})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "odd/evil Bcc: victim@example.org.ipynb"
    r = nora.post("jobs", json={"path": rel})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["name"] == "odd/evil Bcc: victim@example.org.ipynb" and "\n" not in str(job)


@pytest.mark.parametrize("filename", ['say "hi"; size=1.ipynb', "résumé ☃ 100%.ipynb"])
def test_download_of_a_quoted_or_non_ascii_name_has_an_rfc_6266_header(hub, nora, filename):
    # (from the workspace: an upload's quote arrives mangled by the client's encoding, as %22 or \")
    r = nora.post("jobs", json={"path": hub.write_workspace(nora.name, filename, make_notebook("2"))})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["name"] == filename
    assert nora.wait(job["id"])["status"] == "succeeded"
    for fmt in ("ipynb", "html", "md"):
        r = nora.get(f"jobs/{job['id']}/output", params={"format": fmt, "download": "1"})
        assert r.status_code == 200, r.text
        value = r.headers["Content-Disposition"]
        expected = f"{filename[:-len('.ipynb')]}-{job['id'][:8]}.{fmt}"
        params = parse_disposition(value)  # (a quote in the name added a parameter: 'size')
        assert set(params) == {"type", "filename", "filename*"} and params["type"] == "attachment", value
        assert params["filename*"] == expected, value
        assert params["filename"].isascii() and params["filename"].replace("_", "") == \
            "".join(c for c in expected if c.isascii() and c not in '"%'), value
        assert r.headers["X-Content-Type-Options"] == "nosniff"
