"""Why a job was hard to size: what its user's finished jobs said about it.

The replay splits kills and memory slack by these causes so that a fix can aim at
where they come from. A job's cause is the evidence any per-user sizer had when it
was submitted -- the user's jobs that had *succeeded* by then, as the sizer's history:

``new-user``      none at all;
``new-notebook``  none of this notebook: of its code (features.signature), nor, when
                  its code never ran, of its kin (an edited or shared copy, see
                  features.kinship: the history the sizer borrows);
``new-variant``   none of the notebook with these categorical parameters (text values
                  that are shown to change nothing, see variants.inert, are alike, as
                  the sizer masks them);
``beyond``        a numeric parameter above every such run's;
``new-params``    other numeric parameters, within the range run;
``re-run``        a run with exactly these parameters.

A policy may claim a job for a phase of its own instead (the model: ``no-model``, sized
before any model existed), and every attempt after a kill is a ``retry``.
"""

from __future__ import annotations

from ..features import KIN_MIN, kinship, signature, split_params
from ..variants import inert, mask

CAUSES = ("no-model", "new-user", "new-notebook", "new-variant", "beyond", "new-params", "re-run", "retry")
#: Succeeded jobs between two readings of which text values change nothing (and at every doubling).
INERT_EVERY = 100


class Evidence:
    """The users' succeeded jobs so far, and what they say about a new one."""

    def __init__(self):
        #: user -> {signature: (its first succeeded job, [the parameters of each succeeded run])}
        self.users: dict = {}
        self.succeeded: list = []
        #: Per notebook, its text values shown to change nothing (variants.inert), as of the last reading.
        self.inert: dict = {}

    def observe(self, job: dict) -> None:
        """One succeeded job (user, code_cells, source_bytes, imports, params, and ``used``:
        its peak says which text values change nothing)."""
        notebooks = self.users.setdefault(job["user"], {})
        notebooks.setdefault(signature(job), (job, []))[1].append(job.get("params"))
        self.succeeded.append(job)
        n = len(self.succeeded)
        if n % INERT_EVERY == 0 or not n & (n - 1):
            self.inert = inert(self.succeeded)

    def _split(self, job: dict) -> tuple[dict, tuple]:
        """split_params of the job's parameters, its inert text values masked."""
        return split_params(mask(job, self.inert).get("params"))

    def cause(self, job: dict) -> str:
        """The cause (see the module) of a job submitted now."""
        notebooks = self.users.get(job["user"])
        numeric, variant = self._split(job)
        if not notebooks:
            return "new-user"
        # The same code's runs when it ran before, else its kin's, as the sizer reads them
        # (features.history_summary): an edited notebook is not new to its user.
        own = notebooks.get(signature(job))
        runs = [own] if own else [v for v in notebooks.values() if kinship(job, v[0]) >= KIN_MIN]
        if not runs:
            return "new-notebook"
        split = [self._split(dict(first, params=params)) for first, ran in runs for params in ran]
        seen = [num for num, cat in split if cat == variant]
        if not seen:
            return "new-variant"
        if numeric in seen:
            return "re-run"
        if any(v > max((p.get(k, -1.0) for p in seen), default=-1.0) + 1e-9 for k, v in numeric.items()):
            return "beyond"
        return "new-params"
