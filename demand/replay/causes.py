"""Why a job was hard to size: what its user's finished jobs said about it.

The replay splits kills and memory slack by these causes so that a fix can aim at
where they come from. A job's cause is the evidence any per-user sizer had when it
was submitted -- the user's jobs that had *succeeded* by then, as the sizer's history:

``new-user``      none at all;
``new-notebook``  none of this notebook: of its code (features.signature), nor, when
                  its code never ran, of its kin (an edited or shared copy, see
                  features.kinship: the history the sizer borrows);
``new-variant``   none of the notebook with these categorical parameters;
``beyond``        a numeric parameter above every such run's;
``new-params``    other numeric parameters, within the range run;
``re-run``        a run with exactly these parameters.

A policy may claim a job for a phase of its own instead (the model: ``no-model``, sized
before any model existed), and every attempt after a kill is a ``retry``.
"""

from __future__ import annotations

from ..features import KIN_MIN, kinship, signature, split_params

CAUSES = ("no-model", "new-user", "new-notebook", "new-variant", "beyond", "new-params", "re-run", "retry")


class Evidence:
    """The users' succeeded jobs so far, and what they say about a new one."""

    def __init__(self):
        #: user -> {signature: (its first succeeded job, {variant: [numeric params]})}
        self.users: dict = {}

    def observe(self, job: dict) -> None:
        """One succeeded job (user, code_cells, source_bytes, imports, params)."""
        numeric, variant = split_params(job.get("params"))
        notebooks = self.users.setdefault(job["user"], {})
        notebooks.setdefault(signature(job), (job, {}))[1].setdefault(variant, []).append(numeric)

    def cause(self, job: dict) -> str:
        """The cause (see the module) of a job submitted now."""
        notebooks = self.users.get(job["user"])
        numeric, variant = split_params(job.get("params"))
        if not notebooks:
            return "new-user"
        # The same code's runs when it ran before, else its kin's, as the sizer reads them
        # (features.history_summary): an edited notebook is not new to its user.
        own = notebooks.get(signature(job))
        runs = [own[1]] if own else [v for first, v in notebooks.values() if kinship(job, first) >= KIN_MIN]
        if not runs:
            return "new-notebook"
        seen = [p for variants in runs for p in variants.get(variant, ())]
        if not seen:
            return "new-variant"
        if numeric in seen:
            return "re-run"
        if any(v > max((p.get(k, -1.0) for p in seen), default=-1.0) + 1e-9 for k, v in numeric.items()):
            return "beyond"
        return "new-params"
