"""What other users' runs of the same notebook say about a user's first run of it.

Teams share notebooks: the same code, imports and categorical parameters run by many
users. A user's first run of such a notebook is new to *them* only; the runs of
everyone else are the nearest evidence there is -- nearer than the user's own other
notebooks or jobs of its kind -- and plentiful. The limit is their centre plus a
split-conformal margin over their own spread: a new run exchangeable with theirs
exceeds it with odds at most ``1 - PEER_QUANTILE`` (never narrower than the
Gaussian quantile of their robust spread, since a few dozen runs cannot show a tail).
Only runs with no relevant numeric parameter below the job's count (usage grows with
the input), and the centre follows the newest runs when they moved (a library upgrade).
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

from .calibration import conformal_margin, gauss_z
from .features import signature, split_params, target_value

#: Coverage a first run sized from its peers aims at.
PEER_QUANTILE = 0.995
#: Peer runs (of at least two other users) needed before they size a first run.
MIN_PEER_RUNS = 20
#: Runs kept per notebook variant, newest: usage drifts, and the table travels in every bundle.
RECENT_RUNS = 60
#: The newest runs whose median the centre never falls below: when usage moved (an
#: upgrade, grown data), the latest runs say so first.
NEWEST_RUNS = 10


def key(job: dict) -> tuple:
    """The notebook and its categorical parameters: what makes runs peers."""
    return signature(job), split_params(job.get("params"))[1]


def peers(train: Iterable[tuple]) -> dict:
    """Per notebook variant (:func:`key`) run by several users: ``(users, runs)`` with
    ``runs`` the newest (numeric parameters, log peak MB), oldest first, from
    time-ordered ``(job, summary)`` pairs (:func:`demand.dataset.examples`)."""
    runs: dict = {}
    users: dict = {}
    for job, _ in train:
        y = target_value(job.get("used"), "memory")
        if y is None:
            continue
        k = key(job)
        runs.setdefault(k, []).append((split_params(job.get("params"))[0], float(y)))
        users.setdefault(k, set()).add(job.get("user"))
    return {k: (len(users[k]), v[-RECENT_RUNS:]) for k, v in runs.items()
            if len(users[k]) >= 2 and len(v) >= MIN_PEER_RUNS}


def peer_upper(table: dict, job: dict, relevant: Optional[set] = None) -> Optional[tuple[float, float]]:
    """(centre, upper) log memory of a run of ``job`` from its peers' runs, or None when
    too few peers ran it with no ``relevant`` numeric parameter (default: any) below the job's."""
    entry = table.get(key(job))
    if entry is None:
        return None
    own = split_params(job.get("params"))[0]
    check = own.keys() if relevant is None else own.keys() & relevant
    values = np.array([y for params, y in entry[1]
                       if set(params) == set(own) and all(params[k] >= own[k] - 1e-9 for k in check)])
    if len(values) < MIN_PEER_RUNS:
        return None
    centre = max(float(np.median(values)), float(np.median(values[-NEWEST_RUNS:])))
    errors = values - float(np.median(values))
    spread = 1.4826 * float(np.median(np.abs(errors)))
    margin = max(conformal_margin(errors, PEER_QUANTILE), gauss_z(PEER_QUANTILE) * spread)
    return centre, centre + margin
