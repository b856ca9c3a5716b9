"""What jobs of a kind need: the prior for a notebook its user never ran.

A notebook new to its user says little about itself, but what it imports says what
kind of job it is, and jobs of that kind -- whoever ran them -- say how large it may
get. The upper quantile of their peaks is the least such a notebook is sized at, by
the history rules before any model and by a model still calibrating its tail: a
default or a correction from the global median, both fitted on the quick small jobs
that finished first, under-size a heavy notebook's first run. Early on no import has
enough jobs to be a kind; then all jobs together are the kind (:data:`ANY_KIND`): ten
jobs peaking at 5 GB say more of the next new notebook than the admin's 2 GiB default.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .features import target_value

#: Quantile of peak memory among earlier jobs of the same kind (sharing the job's
#: most specific import) below which a notebook new to its user is never sized.
KIND_QUANTILE = 0.95
#: Jobs of a kind needed before its quantile is trusted.
MIN_KIND_JOBS = 10
#: The kind of every job, whatever it imports: what a notebook is sized from when none
#: of its imports is a kind yet (early on, every import is rare).
ANY_KIND = "*"


def kinds(train: list[tuple]) -> dict:
    """Per imported module: how many jobs import it and their log peak memory's upper
    quantile, from ``(job, summary)`` pairs (:func:`demand.dataset.examples`)."""
    values: dict = {}
    for job, _ in train:
        y = target_value(job.get("used"), "memory")
        if y is not None:
            for m in set(job.get("imports") or ()) | {ANY_KIND}:
                values.setdefault(m, []).append(y)
    return {m: (len(v), float(np.quantile(v, KIND_QUANTILE))) for m, v in values.items() if len(v) >= MIN_KIND_JOBS}


def kind_upper(known: dict, job: dict) -> Optional[float]:
    """Log memory that jobs of this kind reach: the upper quantile among earlier jobs
    sharing the job's most specific import (the one fewest jobs have); among all jobs
    when none of its imports is a kind yet; None before MIN_KIND_JOBS jobs."""
    found = [known[m] for m in set(job.get("imports") or ()) - {ANY_KIND} if m in known]
    if not found:
        return known[ANY_KIND][1] if ANY_KIND in known else None
    return min(found)[1]
