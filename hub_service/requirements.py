"""A bundle's own requirements: the check of its ``requirements.txt`` and its normal form.

A job may bring the packages it needs (README.md's *Environments*): a ``requirements.txt``
at the top of its ``.zip`` bundle, or the ``requirements`` field beside a submission.
The service installs them from wheels only, so all a file may say is *which* packages:
plain requirement specifiers (``name[extra]>=1.0; marker``). Everything pip would take
as an instruction of where or how to get a package -- an option (``--index-url``,
``-e``, ``-r``, ``-c``, ``--trusted-host`` …), a URL, a VCS reference, a local path --
is refused, with the line it is on, before anything runs.

The normal form (canonical names, sorted, one per line) is what a derived image is
cached by: the same packages written otherwise share one image.
"""

from __future__ import annotations

import re
from typing import Optional

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from .intake import IntakeError

#: where a bundle keeps its requirements (the top of a .zip), and the field a submission sends them in
FILE_NAME = "requirements.txt"
FIELD = "/requirements"
#: most requirement lines a job may bring, and the longest line
MAX_LINES = 100
MAX_LINE = 500

_VCS = re.compile(r"^(git|hg|svn|bzr)\+", re.I)
_PATHLIKE = re.compile(r"^(\.{1,2}[/\\]|[/\\~]|[a-z]:[/\\])|\.(whl|zip|tar\.gz|tgz|tar)$", re.I)


def _refuse(number: int, line: str, why: str) -> IntakeError:
    shown = line if len(line) <= 80 else line[:77] + "…"
    return IntakeError(f"requirements line {number} ({shown!r}): {why}; only plain requirement specifiers "
                       "such as 'tabulate>=0.9' are taken", field=FIELD)


def _normal(number: int, line: str) -> str:
    """One requirement line as its normal form, or the refusal that names it."""
    if line.startswith("-"):
        option = line.split()[0].split("=")[0]
        raise _refuse(number, line, f"the option {option} is not allowed (an index, an editable, "
                                    "another file or any other instruction to pip)")
    if "://" in line or _VCS.match(line):
        raise _refuse(number, line, "URLs and version-control references are not allowed")
    if _PATHLIKE.search(line.split(";")[0].strip()):
        raise _refuse(number, line, "local paths and archive files are not allowed")
    try:
        req = Requirement(line)
    except InvalidRequirement as e:
        raise _refuse(number, line, f"not a requirement specifier ({str(e).splitlines()[0]})") from None
    if req.url:
        raise _refuse(number, line, "a direct reference (name @ url) is not allowed")
    extras = f"[{','.join(sorted(canonicalize_name(e) for e in req.extras))}]" if req.extras else ""
    marker = f"; {req.marker}" if req.marker else ""
    return f"{canonicalize_name(req.name)}{extras}{req.specifier}{marker}"


def check_requirements(text) -> tuple:
    """The requirements of ``text`` (a requirements file's content) in normal form: sorted, unique.

    Comments and blank lines are skipped; anything but a plain specifier is an IntakeError
    (400, field ``/requirements``) naming the line.
    """
    if text is None:
        return ()
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise IntakeError(f"{FILE_NAME} is not UTF-8 text", field=FIELD) from None
    if not isinstance(text, str):
        raise IntakeError("requirements must be the text of a requirements file", field=FIELD)
    found = set()
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #")[0].split("\t#")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            raise _refuse(number, line, "line continuations are not allowed")
        if len(line) > MAX_LINE:
            raise _refuse(number, line, f"longer than {MAX_LINE} characters")
        found.add(_normal(number, line))
        if len(found) > MAX_LINES:
            raise IntakeError(f"more than {MAX_LINES} requirements", field=FIELD)
    return tuple(sorted(found))


def requirements_of(files: dict) -> tuple:
    """The checked requirements a bundle's files bring (``()``: none)."""
    return check_requirements(files.get(FILE_NAME))


def with_requirements(files: dict, text: Optional[str]) -> dict:
    """A bundle's files with the ``requirements`` field's text as its requirements file (checked); a bundle
    that has one already and gets the field too is refused: which would it be?"""
    if text in (None, ""):
        return files
    if FILE_NAME in files:
        raise IntakeError(f"the bundle has a {FILE_NAME} already: send the requirements once", field=FIELD)
    check_requirements(text)
    return dict(files, **{FILE_NAME: text.encode() if isinstance(text, str) else text})
