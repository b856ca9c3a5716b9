"""How a job was sized, in the words a user reads on its page and on the submit form.

The sizer records *how* it chose (``allocated.basis``: ``model``, ``user-history``,
``cold-start``, ``request``, with a note when the model could not answer) beside the
figures: ``requested``, ``predicted`` and ``allocated``. A user wants to know *why* the
job got what it got ("2 GiB: twice what the last run was killed at"), and that a
predicted time beyond the admin's longest limit is no promise; this module says it from
those figures alone, so the pages and the dry run's answer say the same thing. How long a
job ran is said here once too, for the CLI and the mails.

The memory limit may come from another policy than the basis's: the sizer serves the one
its scoreboard trusts for the job's notebook, its user or everyone, and records the choice
in ``predicted.memory_policy`` (``chosen``, ``default``, ``group``, see demand.scoreboard).
When the board overrode the sizer's default, the memory words name that policy and whose
record chose it; ``basis`` still says what sized cpu and time.
"""

from __future__ import annotations

import math
from typing import Optional

MIB = 2**20
#: figures closer than this are "the same" (the sizer rounds memory up to whole MiB)
_SAME_MEMORY = MIB
#: Each memory policy of the scoreboard (demand.scoreboard.POLICIES) in a user's words.
_POLICY_WORDS = {
    "model": "what the demand model expects this notebook to need at most, with a margin",
    "rules": "the most your recent runs like it used, with headroom",
    "recent": "a little over your recent peaks",
    "peers": "what everyone's runs of this notebook with parameters like yours used, with a margin",
    "requested": "what you asked for",
    "default": "the admin's default",
    "widest": "the widest of the service's estimates, as smaller ones would have killed jobs like it",
}
#: A basis's memory words, where no board overrode it (a cold start has no history to size by).
_BASIS_WORDS = {
    "model": _POLICY_WORDS["model"],
    "user-history": _POLICY_WORDS["rules"],
    "cold-start": _POLICY_WORDS["default"] + ", as there is nothing yet to size it by",
}
#: How a basis's note begins when a notebook's first run got more than the default (demand.sizing.Sizer).
_FIRST_RUN = "first run: "
#: Whose finished jobs made a scoreboard trust its policy.
_GROUP_WORDS = {"notebook": "for this notebook", "user": "for your jobs", "all": "for everyone's jobs"}


def size_words(value: float) -> str:
    """Bytes as a person says them: '2 GiB', '1.5 GiB', '512 MiB'."""
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", MIB), ("KiB", 2**10)):
        if value >= scale:
            n = value / scale
            return f"{n:.0f} {unit}" if abs(n - round(n)) < 0.05 else f"{n:.1f} {unit}"
    return f"{value:.0f} B"


def human_duration(seconds: Optional[float]) -> str:
    """``4.2s``, ``3m 05s``, ``2h 01m`` (``?`` when unknown)."""
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def time_words(seconds: float) -> str:
    """Seconds as '45 s', '10 min', '6 h', '2 h 30 min'."""
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h" + (f" {rest} min" if rest else "")


def times_words(ratio: float) -> str:
    """2 -> 'twice', 4 -> 'four times', 1.5 -> '1.5 times'."""
    named = {2: "twice", 3: "three times", 4: "four times", 5: "five times", 10: "ten times"}
    whole = round(ratio)
    if abs(ratio - whole) < 0.05 and whole in named:
        return named[whole]
    return f"{ratio:.1f} times"


def predicted_time_words(predicted: Optional[float], longest: Optional[float]) -> str:
    """A predicted time limit, or 'longer than the 6 h limit' when it is past the admin's longest."""
    if predicted is None:
        return ""
    if longest is not None and predicted > longest + 1:
        return f"longer than the {time_words(longest)} limit"
    return time_words(predicted)


def sizing_words(resources: dict, bounds: dict, retry: Optional[dict] = None) -> str:
    """Why a job got its memory and time limit, in one or two plain sentences.

    ``resources`` is a job's ``resources`` (requested, predicted, allocated with its
    basis), ``bounds`` the admin's ``{name: [least, most]}``, ``retry`` the run this one
    re-runs when it was killed: ``{"reason": "oom_killed" | "timeout", "peak_memory",
    "allocated"}``.
    """
    requested = resources.get("requested") or {}
    predicted = resources.get("predicted") or {}
    allocated = resources.get("allocated") or {}
    basis = str(allocated.get("basis") or "")
    kind, _, note = basis.partition(" (")
    sentences = []
    memory = allocated.get("memory")
    if memory is not None:
        sentences.append(_memory_words(float(memory), kind, note.rstrip(")"), requested, predicted, bounds, retry))
    timeout = allocated.get("timeout")
    if timeout is not None:
        sentences.append(_time_words(float(timeout), kind, requested, predicted, bounds, retry))
    return " ".join(sentences)


def _memory_words(memory, kind, note, requested, predicted, bounds, retry) -> str:
    words = size_words(memory)
    most = (bounds.get("memory") or (None, None))[1]
    asked = requested.get("memory")
    if retry and retry.get("reason") == "oom_killed":
        # a killed run's retry gets more than it was killed at, whatever was asked or predicted
        killed_at = (retry.get("peak_memory") or (retry.get("allocated") or {}).get("memory"))
        if killed_at and memory > killed_at:
            text = f"{words} of memory: {times_words(memory / killed_at)} what the last run was killed at " \
                   f"({size_words(killed_at)})"
            if most is not None and memory >= most - _SAME_MEMORY:
                text += ", the admin's most"
            return text + "."
    resized = predicted.get("resized_after_runs")
    if resized and isinstance(predicted.get("memory_kept"), dict):
        # (demand.sizing.Sizer.resize_queued: never lowered beyond what the sweep's finished runs covered)
        which = ("the one run of its sweep that had succeeded by then did not have" if resized == 1 else
                 f"none of the {resized} runs of its sweep that had succeeded by then had")
        return f"{words} of memory: what it was given when its sweep was submitted, as {which} parameters as " \
               f"large as its own."
    record = predicted.get("memory_policy")
    advice = isinstance(record, dict) and record.get("requests") == "advisory"
    # (a sweep's run sized again keeps its submission's record, which the scoreboard scores: the basis speaks)
    served = None if resized else _board_choice(record)
    if asked is not None and not (advice and abs(memory - asked) > _SAME_MEMORY):
        if abs(memory - asked) <= _SAME_MEMORY:
            return f"{words} of memory: what you asked for" + (
                f" (your requests have done best {served[1]})." if advice and served and served[0] == "requested"
                else ".")
        if memory < asked:
            return f"{words} of memory: you asked for {size_words(asked)}, more than the admin's most."
        return f"{words} of memory: you asked for {size_words(asked)}, less than any job gets."
    guess = predicted.get("memory")
    if served is not None:
        policy, group = served
        text = f"{words} of memory: {_POLICY_WORDS[policy]} (the estimate that has done best {group})"
    elif note.startswith(_FIRST_RUN):
        # (demand.sizing: a notebook's first run before the sizer has seen enough finished jobs)
        policy, factor = None, note[len(_FIRST_RUN):].partition("x")[0]
        try:
            times = times_words(float(factor)) + " "
        except ValueError:
            times = "more than "
        text = (f"{words} of memory: {times}the admin's default, as a notebook's first run, before enough "
                f"jobs have finished to size it by")
    else:
        policy = "model" if kind == "model" else None
        text = f"{words} of memory: " + _BASIS_WORDS.get(kind, f"sized by {kind or 'the service'}")
    odds = predicted.get("memory_kill_odds")
    if policy == "model" and odds is not None and math.isfinite(odds):
        text += f" (it gives {100 * odds:.2g}% odds that this is too little)"
    if guess is not None and guess - memory > _SAME_MEMORY:
        text += f"; it asked for {size_words(guess)}, more than the admin's most"
    elif guess is not None and memory - guess > _SAME_MEMORY:
        to = "what the last run had" if retry else "the least any job gets"
        text += f"; raised from {size_words(guess)} to {to}"
    if note and not note.startswith(_FIRST_RUN):
        text += f" (the model could not size it: {note})"
    if asked is not None and served is not None and served[0] == "requested":
        bound = "more than the admin's most" if memory < asked else "less than any job gets"
        text += f"; you asked for {size_words(asked)}, {bound}"
    elif asked is not None:
        # (advice: a request binds only where the admin says so, see Sizing.memory_requests)
        text += (f"; you asked for {size_words(asked)}, which this Hub takes as advice, served once requests "
                 f"like yours have fitted their jobs better")
    if resized:
        text += f"; sized again once {'one run' if resized == 1 else f'{resized} runs'} of its sweep had succeeded"
    return text + "."


def _board_choice(record) -> Optional[tuple[str, str]]:
    """(policy, whose record in words) when a scoreboard overrode the sizer's default
    memory policy, else None (the basis's words hold)."""
    if not isinstance(record, dict):
        return None
    chosen, group = record.get("chosen"), record.get("group")
    if chosen == record.get("default") or chosen not in _POLICY_WORDS or group not in _GROUP_WORDS:
        # ("default": too little evidence, "off": the board is kept but does not serve)
        return None
    return chosen, _GROUP_WORDS[group]


def _time_words(timeout, kind, requested, predicted, bounds, retry) -> str:
    words = time_words(timeout)
    longest = (bounds.get("timeout") or (None, None))[1]
    asked = requested.get("timeout")
    if retry and retry.get("reason") == "timeout":
        # a timed-out run's retry gets longer, whatever was asked or predicted
        before = (retry.get("allocated") or {}).get("timeout")
        if before and timeout > before + 1:
            return f"Time limit {words}: {times_words(timeout / before)} the last run's, which ran out of time."
    if asked is not None:
        return f"Time limit {words}: " + ("what you asked for." if abs(timeout - asked) < 1
                                          else f"you asked for {time_words(asked)}, outside the admin's bounds.")
    guess = predicted.get("timeout")
    if longest is not None and guess is not None and guess > longest + 1:
        return (f"Time limit {words}, the longest allowed: the estimate is longer than the {time_words(longest)} "
                "limit, so the job may not finish in time.")
    if longest is not None and timeout >= longest - 1:
        return f"Time limit {words}: the longest the admin allows, a guard against runaways."
    if kind == "model":
        return f"Time limit {words}: well past how long it is expected to run."
    # the history rules and a cold start give the admin's default time limit
    return f"Time limit {words}: the admin's default."
