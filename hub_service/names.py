"""The one rule for names a person sees: a job's or schedule's name, a download's file name, a mail's subject.

A name is one line of text: none of the characters that end a header or a line, or hide
what follows (controls such as CR, LF and tab, format characters such as bidi overrides
and zero-width joiners, line and paragraph separators, lone surrogates). Intake refuses
such a name when a person typed it and cleans one made from a file name; the mailer
cleans whatever it is handed again, as rows stored before the rule may hold anything.
"""

from __future__ import annotations

import unicodedata

#: Unicode categories no name may hold
REFUSED = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def refused_characters(text: str) -> list:
    """The characters of ``text`` no name may hold, in order, once each."""
    return list(dict.fromkeys(c for c in text if unicodedata.category(c) in REFUSED))


def one_line(text) -> str:
    """``text`` as one line: each run of refused characters becomes one space, the ends trimmed."""
    out, gap = [], False
    for c in str(text):
        if unicodedata.category(c) in REFUSED:
            gap = True
            continue
        if gap and out:
            out.append(" ")
        gap = False
        out.append(c)
    return "".join(out).strip()
