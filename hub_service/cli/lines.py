"""The CLI's one-line answers: how a job ended, how it would be sized, durations and sizes; and
:func:`shown`, the one way text a user or an image made is put on a terminal."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Optional

from ..explain import human_duration  # noqa: F401 - the CLI's name for it
from ..states import Status


#: a colour or weight (SGR: ``ESC [ 1;31 m``), which changes how text looks and nothing else; or one
#: C0 or C1 control character or DEL, which a terminal takes as a command, not as text
CONTROLS = re.compile(r"(\x1b\[[0-9;]*m)|[\x00-\x1f\x7f-\x9f]")


def shown(text, one_line: bool = True, colours: bool = False) -> str:
    """``text`` that a user or an image made (a name, a parameter, a description, an error), to print.

    Each control character is shown as its escape (``\\x1b``, ``\\x07``, ``\\r``): a job name
    holding ``ESC ] 0;… BEL`` or ``ESC [ 2 J`` would otherwise set the title of the terminal of
    whoever lists it (an admin, another user's) or clear it. ``one_line``: newlines and tabs too (a
    cell of a table, a line of its own); else they stay. ``colours``: a notebook's colours (its
    traceback's) stay, and only they.
    """
    keep = "" if one_line else "\n\t"

    def escape(match):
        c = match.group()
        if c in keep or (colours and match.group(1)):
            return c
        return repr(c[0])[1:-1] + c[1:]

    return CONTROLS.sub(escape, str(text))


def duration(job: dict) -> Optional[float]:
    """Seconds the job ran (from start, or from submission if it never started) to its end."""
    end = _time(job.get("finished"))
    begin = _time(job.get("started")) or _time(job.get("created"))
    return (end - begin).total_seconds() if end and begin else None


def local(text: Optional[str], fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
    """An ISO 8601 UTC time from the API in this machine's local time ('-' for none)."""
    if not text:
        return "-"
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone().strftime(fmt)


def _time(text: Optional[str]) -> Optional[datetime]:
    return datetime.fromisoformat(text) if text else None


def failure_text(job: dict) -> str:
    """Why a job did not succeed, in one phrase: the reason in words (``error.summary``; the code
    from an older service) and the service's message, which may say it already."""
    error = job.get("error") or {}
    why, message = error.get("summary") or error.get("reason") or job["status"], error.get("message") or ""
    if not message or message.lower().startswith(why.lower()):
        return shown(message or why)
    return shown(f"{why}: {message}")


def summary(job: dict, url: str) -> str:
    """The last line: status, duration, the job's page and, unless it succeeded, why not."""
    verb = "after" if job["status"] == Status.CANCELLED else "in"
    line = f"{job['status']} {verb} {human_duration(duration(job))}  {url}"
    if job["status"] != Status.SUCCEEDED:
        line += f"  {failure_text(job)}"
    return line


def human_bytes(n: Optional[float]) -> str:
    """``512 MiB``, ``2 GiB``."""
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.3g} GiB"


def would_run(job: dict) -> str:
    """What a dry run answers: the resources the job would get, then why, in the words the pages use."""
    allocated = job["resources"].get("allocated") or {}
    parts = [f"{allocated.get('cpu', '?'):g} cpu" if isinstance(allocated.get("cpu"), (int, float)) else "? cpu",
             f"{human_bytes(allocated.get('memory'))} memory",
             f"a {human_duration(allocated.get('timeout'))} time limit"]
    if allocated.get("gpu"):
        parts.append(f"{allocated['gpu']} gpu")
    line = "would run with " + ", ".join(parts)
    why = job["resources"].get("explanation")
    if why:
        return f"{line}\n{why}"
    if allocated.get("basis"):  # a service older than the explanation
        line += f" (sized by {allocated['basis']})"
    return line
