"""E-mail to a job's owner when it ends, through the admin's SMTP server.

The owner chooses per job (its ``notify``: ``never``, ``failure`` or ``always``; a
schedule copies its own onto every job it makes). The admin chooses whether there is
mail at all (:attr:`Mailer.smtp_host`; empty, the default, is none) and how a Hub user
name becomes an address (:attr:`Mailer.address_template`): the Hub itself keeps no
addresses.

A mail is sent at most once per job, from the job's one ending, in a thread (smtplib
blocks) bounded by :attr:`Mailer.timeout`. Mail is a courtesy: a send that fails is
logged and counted (``notebook_jobs_mail_failed_total``) and never touches the job.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from collections.abc import Callable as Lookup
from typing import Optional
from urllib.parse import urlsplit, urlunsplit

from jupyterhub.utils import url_path_join
from traitlets import Callable, CaselessStrEnum, Float, Integer, Unicode, Union, default, validate
from traitlets.config import LoggingConfigurable

from . import metrics
from .explain import human_duration
from .names import one_line
from .states import STOPPED, Reason, Status, reason_summary

#: the runner's way of naming the failing cell at the end of a cell error's message
_WHERE = re.compile(r"\s*\(in ((?:code cell \d+ of \d+)?(?:, )?(?:In \[\d+\])?)\)\s*$")


@dataclass
class ScheduleRef:
    """The schedule that made a job, as a mail names it."""

    id: str
    name: str
    cron: str = ""
    timezone: str = ""


def wants_mail(notify: str, status: str) -> bool:
    """Whether an owner who chose ``notify`` is mailed about a job that ended ``status``.

    ``failure`` means the job failed (whatever the reason); a cancelled job was stopped by
    a person, who knows, so only ``always`` mails about it.
    """
    if notify == "always":
        return status in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
    if notify == "failure":
        return status == Status.FAILED
    return False


def failing_cell(message: str, cell: Optional[int]) -> Optional[str]:
    """The failing cell as a person finds it in the notebook: 'code cell 2 of 3, In [2]'."""
    m = _WHERE.search(message or "")
    if m and m.group(1):
        return m.group(1)
    # without the runner's wording (an older job): error.cell is an index, markdown cells counted
    return f"cell {cell + 1} of the notebook (markdown cells counted)" if cell is not None else None


def compose(job, *, links: dict, schedule: Optional[ScheduleRef], sender: str, to: str) -> EmailMessage:
    """The mail about ``job`` (a store Job that has ended): plain text and a simple HTML part."""
    name = one_line(job.name or "") or one_line(job.input_name or "") or job.id
    subject = f"Notebook job {job.status}: {name}"
    if schedule is not None:
        schedule = ScheduleRef(schedule.id, one_line(schedule.name), one_line(schedule.cron),
                               one_line(schedule.timezone))
        subject += f" (schedule {schedule.name})"
    # a job that never started (cancelled in the queue, refused at a schedule's run) ran for no time
    seconds = (job.finished - job.started).total_seconds() if job.finished and job.started else None
    rows = [("Job", name), ("Status", job.status)]
    if job.status != Status.SUCCEEDED:
        rows.append(("Reason", reason_summary(job.error_reason, job.cancelled_by) if job.error_reason
                     else job.status))
        if job.error_message:
            rows.append(("Error", job.error_message))
        cell = None
        if job.error_reason == Reason.CELL_ERROR or (job.error_reason in STOPPED and job.error_cell is not None):
            cell = failing_cell(job.error_message, job.error_cell)
        if cell:
            rows.append(("Failing cell" if job.error_reason == Reason.CELL_ERROR else "Stopped in", cell))
    rows.append(("Duration", human_duration(seconds) if job.started else "none: it never started"))
    if schedule is not None:
        when = f" ({schedule.cron}, {schedule.timezone})" if schedule.cron else ""
        rows.append(("Schedule", f"{schedule.name}{when}"))
    link_rows = [("Job page", links["job"])]
    if links.get("output"):
        partial = job.status == Status.CANCELLED or job.error_reason in STOPPED
        link_rows.append(("HTML output (partial)" if partial else "HTML output", links["output"]))
    if links.get("schedule"):
        link_rows.append(("Schedule page", links["schedule"]))

    width = max(len(k) for k, _ in rows + link_rows) + 2
    after = f" after {human_duration(seconds)}" if seconds is not None else ""
    text = [f"Your notebook job {name} {job.status}{after}.", ""]
    text += [f"{k + ':':<{width}}{v}" for k, v in rows] + [""]
    text += [f"{k + ':':<{width}}{v}" for k, v in link_rows]
    whose = "its schedule's" if schedule is not None else "the job's"
    why = f"You get this mail because {whose} 'notify' is '{job.notify}'; choose 'never' to stop it."
    text += ["", "-- ", "Notebook Jobs. " + why]

    e = html.escape
    body = "".join(f"<tr><th style='text-align:left;padding-right:1em;vertical-align:top'>{e(k)}</th>"
                   f"<td>{e(str(v))}</td></tr>" for k, v in rows)
    body += "".join(f"<tr><th style='text-align:left;padding-right:1em'>{e(k)}</th>"
                    f"<td><a href=\"{e(v)}\">{e(v)}</a></td></tr>" for k, v in link_rows)
    colour = {"succeeded": "#146c43", "failed": "#b02a37"}.get(job.status, "#495057")
    html_part = (
        "<!DOCTYPE html><html><body style='font-family:sans-serif'>"
        f"<p>Your notebook job <b>{e(name)}</b> <b style='color:{colour}'>{e(job.status)}</b>.</p>"
        f"<table>{body}</table>"
        f"<p style='color:#6c757d;font-size:small'>{e(why)}</p></body></html>"
    )

    msg = EmailMessage()
    msg["Subject"] = one_line(subject)  # (one line already: but nothing user-made reaches a header unchecked)
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip(">") or None)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: vacation responders stay quiet
    msg["X-Notebook-Jobs-Job"] = job.id
    msg.set_content("\n".join(text) + "\n")
    msg.add_alternative(html_part, subtype="html")
    return msg


class Mailer(LoggingConfigurable):
    """Sends the owner of a job the mail they asked for when it ends."""

    smtp_host = Unicode(
        "",
        help="""The SMTP server mail goes through, e.g. "smtp.example.org". Empty (the default):
        no mail is sent, whatever a job's notify says.""",
    ).tag(config=True)

    smtp_port = Integer(
        0, help="Port of the SMTP server; 0 (the default): 25, 587 with security='starttls', 465 with 'tls'.",
    ).tag(config=True)

    security = CaselessStrEnum(
        ["none", "starttls", "tls"], "none",
        help="""How the connection to the SMTP server is protected: 'none' (plain SMTP, for a
        relay on this host or network), 'starttls' (upgraded after connecting, usually port 587)
        or 'tls' (TLS from the start, usually port 465). Certificates are verified.""",
    ).tag(config=True)

    ca_file = Unicode(
        "", help="""A CA bundle (PEM file) to verify the SMTP server's certificate with, for a server
        whose certificate a private CA signed. Empty (the default): the system's CAs.""",
    ).tag(config=True)

    username = Unicode("", help="User name to log in to the SMTP server with (empty: no login).").tag(
        config=True)
    password = Unicode(
        help="""Password for username. Default: the environment's NOTEBOOK_JOBS_SMTP_PASSWORD.
        Set it there or in notebook_jobs_config.py, never on the command line (the Hub shows a
        managed service's command to whoever may read the service).""",
    ).tag(config=True)

    @default("password")
    def _default_password(self):
        return os.environ.get("NOTEBOOK_JOBS_SMTP_PASSWORD", "")

    from_address = Unicode(
        "notebook-jobs@localhost",
        help="""The From: of every mail, e.g. "Notebook Jobs <jobs@example.org>": an address the
        SMTP server accepts mail from.""",
    ).tag(config=True)

    address_template = Union(
        [Unicode(), Callable()],
        default_value="",
        help="""How a Hub user's e-mail address is found (the Hub keeps none). A string with
        {username}, e.g. "{username}@example.org", or a callable taking the user name and
        returning the address, or None for a user who has none (it runs in a thread, so it may
        look the address up, e.g. in a directory). Empty (the default): nobody has an address,
        and no mail is sent.""",
    ).tag(config=True)

    public_url = Unicode(
        help="""The Hub's public URL as a browser reaches it, e.g. "https://hub.example.org" (as
        JupyterHub.public_url): the links in a mail are absolute, and the service cannot know its
        public address otherwise. Only its scheme and host are used; the service's own prefix is
        added. Default: from $JUPYTERHUB_PUBLIC_URL, which the Hub sets when JupyterHub.public_url is.""",
    ).tag(config=True)

    @default("public_url")
    def _default_public_url(self):
        return os.environ.get("JUPYTERHUB_PUBLIC_URL", "")

    @validate("public_url")
    def _valid_public_url(self, proposal):
        value = proposal["value"]
        if value and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"Mailer.public_url {value!r} must be an http(s) URL, "
                             "e.g. https://hub.example.org")
        return value

    timeout = Float(
        30.0, help="Seconds a mail's delivery to the SMTP server may take before it is given up.",
    ).tag(config=True)

    service_prefix = Unicode("/services/notebook-jobs/", help="The service's URL prefix (set by the app).")

    @property
    def enabled(self) -> bool:
        """Whether mail is on: an SMTP server and a way to find addresses."""
        return bool(self.smtp_host and self.address_template)

    def warn_if_unlinked(self) -> None:
        """Say at start-up, once, when mail is on but its links cannot be absolute."""
        if self.enabled and not self.public_url:
            self.log.warning("mail is on but Mailer.public_url is not set (nor JupyterHub.public_url): "
                             "the links in mails are paths without the Hub's address")

    def address_of(self, username: str) -> Optional[str]:
        """The user's address, or None (blocking: a callable template may look it up)."""
        if callable(self.address_template):
            address = self.address_template(username)
        else:
            address = self.address_template.format(username=username) if self.address_template else None
        if not address:
            return None
        try:
            Address(addr_spec=address)  # no header injection, no junk: a user name is user-chosen text
        except (ValueError, IndexError, TypeError) as e:
            raise ValueError(f"{address!r} is not a valid e-mail address: {e}") from None
        return address

    def url(self, *path: str) -> str:
        """An absolute URL under the service (a bare path when public_url is unknown)."""
        rel = url_path_join(self.service_prefix, *path)
        if not self.public_url:
            return rel
        parts = urlsplit(self.public_url)
        return urlunsplit((parts.scheme, parts.netloc, "", "", "")) + rel

    def links(self, job, schedule: Optional[ScheduleRef]) -> dict:
        """The job's page, its HTML output (when it has one), and its schedule's page."""
        out = {"job": self.url("jobs", job.id)}
        if job.has_output:  # rendered on demand, whatever output_formats asked for (a stopped run's: partial)
            out["output"] = self.url("jobs", job.id, "output")  # a page: logs in first, then the render
        if schedule is not None:
            out["schedule"] = self.url("schedules") + f"#schedule-{schedule.id}"
        return out

    def wants(self, job) -> bool:
        """Whether ``job``, just ended, is to be mailed about."""
        return self.enabled and wants_mail(job.notify or "never", job.status)

    async def job_ended(self, job, find_schedule: Optional[Lookup] = None) -> bool:
        """Mail the owner about ``job`` if they asked; True if a mail went out. Never raises.

        ``find_schedule(id)`` looks up the schedule that made the job (the store's), so the
        mail can name it and link to it.
        """
        if not self.wants(job):
            return False
        try:
            await asyncio.wait_for(asyncio.to_thread(self._send, job, find_schedule), self.timeout + 5)
        except Exception as e:
            metrics.MAIL_FAILED.labels(type(e).__name__).inc()
            self.log.warning("job %s: mail to %s not sent: %s: %s", job.id, job.user, type(e).__name__, e)
            return False
        return True

    def _send(self, job, find_schedule: Optional[Lookup]) -> None:
        """Compose and hand the mail to the SMTP server (blocking; run in a thread)."""
        to = self.address_of(job.user)
        if to is None:
            self.log.info("job %s: %s has no e-mail address (Mailer.address_template); no mail",
                          job.id, job.user)
            return
        schedule = None
        found = find_schedule(job.schedule_id) if job.schedule_id and find_schedule else None
        if found is not None:  # (None: deleted since the run began; the mail still goes)
            schedule = ScheduleRef(found.id, found.name, found.cron, found.timezone)
        msg = compose(job, links=self.links(job, schedule), schedule=schedule, sender=self.from_address,
                      to=to)
        port = self.smtp_port or {"none": 25, "starttls": 587, "tls": 465}[self.security]
        context = ssl.create_default_context(cafile=self.ca_file or None)
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(self.smtp_host, port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.smtp_host, port, timeout=self.timeout)
        with smtp:
            if self.security == "starttls":
                smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(msg)
        metrics.MAIL_SENT.inc()
        self.log.info("job %s: mailed %s (%s)", job.id, to, job.status)
