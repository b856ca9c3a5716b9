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

The same runs also size a user's *later* runs of such a notebook, as one more policy the
scoreboard weighs (``peers``, :func:`peer_curve`): a user's own few runs of a shared
notebook place a curve over three parameters poorly (teams: the model's limits left 0.69
of the memory of notebooks with no high mode unused), everyone's sixty place it well. A
log-linear curve through them (each numeric parameter's log, and the weeks, for data that
grows; squared too, for the bend) with a margin from their own leave-one-out misses: a
notebook with a high mode now and then shows it in those misses, and a quiet one does not
pay for it. A variant with a few runs of its own (a rarely used mode) borrows the curve of
the notebook's other variants, at a level of its own.
"""

from __future__ import annotations

from typing import Iterable, Optional

import numpy as np

from .calibration import conformal_margin, gauss_z, robust_spread
from .features import signature, split_params, target_value

#: Coverage a first run sized from its peers aims at.
PEER_QUANTILE = 0.995
#: Peer runs (of at least two other users) needed before they size a first run.
MIN_PEER_RUNS = 20
#: Runs of its own a variant needs to borrow the curve of its notebook's other variants.
MIN_VARIANT_RUNS = 5
#: Runs kept per notebook variant, newest: usage drifts, and the table travels in every bundle.
RECENT_RUNS = 60
#: The newest runs whose median the centre never falls below: when usage moved (an
#: upgrade, grown data), the latest runs say so first.
NEWEST_RUNS = 10
#: The peer curve's margin: its runs' largest leave-one-out miss plus this many of their
#: robust spreads (never below the Gaussian 0.999 quantile of the spread). The largest of
#: sixty misses alone is the next run's 0.984 quantile (teams: 1.0% of the quiet
#: notebooks' runs killed at it); one and a half spreads more take a Gaussian body from
#: 2.4 to 3.9 of them, and a notebook's high mode, its largest seen miss, by a few percent.
PEER_CURVE_SPREADS = 1.5
#: Ridge penalty of the peer curve's slopes (log units of parameter), and of its trend
#: per week: a few dozen runs are fitted, not memorised.
CURVE_RIDGE = 0.5
TREND_RIDGE = 5.0
#: A user's own runs the peer curve is lifted to, when they sit above it (the newest).
OWN_RUNS = 5
WEEK = 7 * 86400.0


def key(job: dict) -> tuple:
    """The notebook and its categorical parameters: what makes runs peers."""
    return signature(job), split_params(job.get("params"))[1]


def peers(train: Iterable[tuple]) -> dict:
    """Per notebook variant (:func:`key`) of a notebook several users ran: ``(users, runs)`` with
    ``runs`` the newest (numeric parameters, log peak MB, submit time), oldest first,
    from time-ordered ``(job, summary)`` pairs (:func:`demand.dataset.examples`)."""
    runs: dict = {}
    users: dict = {}
    for job, _ in train:
        y = target_value(job.get("used"), "memory")
        if y is None:
            continue
        k = key(job)
        runs.setdefault(k, []).append((split_params(job.get("params"))[0], float(y),
                                       float(job.get("submit_time") or 0.0)))
        users.setdefault(k, set()).add(job.get("user"))
    notebooks: dict = {}  # signature -> (its users, its runs)
    for k, v in runs.items():
        who, n = notebooks.get(k[0], (set(), 0))
        notebooks[k[0]] = (who | users[k], n + len(v))
    # A variant with runs enough of its own, or a few of a notebook several users ran
    # often (its curve is the notebook's, see peer_curve).
    return {k: (len(users[k]), v[-RECENT_RUNS:]) for k, v in runs.items()
            if len(notebooks[k[0]][0]) >= 2 and notebooks[k[0]][1] >= MIN_PEER_RUNS
            and len(v) >= MIN_VARIANT_RUNS}


def peer_upper(table: dict, job: dict, relevant: Optional[set] = None) -> Optional[tuple[float, float]]:
    """(centre, upper) log memory of a run of ``job`` from its peers' runs, or None when
    too few peers ran it with no ``relevant`` numeric parameter (default: any) below the job's."""
    entry = table.get(key(job))
    if entry is None or entry[0] < 2:
        return None
    own = split_params(job.get("params"))[0]
    check = own.keys() if relevant is None else own.keys() & relevant
    values = np.array([y for params, y, *_ in entry[1]
                       if set(params) == set(own) and all(params[k] >= own[k] - 1e-9 for k in check)])
    if len(values) < MIN_PEER_RUNS:
        return None
    centre = max(float(np.median(values)), float(np.median(values[-NEWEST_RUNS:])))
    errors = values - float(np.median(values))
    spread = robust_spread(values)
    margin = max(conformal_margin(errors, PEER_QUANTILE), gauss_z(PEER_QUANTILE) * spread)
    return centre, centre + margin


def peer_curve(table: dict, job: dict, now: float, own_points: list = ()) -> Optional[float]:
    """Log memory limit of ``job`` from the curve through its peers' runs (see the
    module), or None: too few peers, other parameter names, or a numeric parameter
    outside the range they ran (a curve is not extrapolated, since kills lie that way).

    The curve is log peak against each numeric parameter (log, and its square) and the
    weeks before ``now``, ridge-fitted. ``own_points``: the user's own runs of the variant
    (``(params, log peak, age)``, newest first, as :func:`demand.features.history_summary`
    gives them): where they sit above the curve, the limit rises with them -- the peers'
    runs speak of the notebook, the user's of what they feed it."""
    notebook, variant = key(job)
    own = split_params(job.get("params"))[0]
    alike = {k[1]: [r for r in v[1] if set(r[0]) == set(own)] for k, v in table.items() if k[0] == notebook}
    if len(alike.get(variant, ())) >= MIN_PEER_RUNS:
        alike = {variant: alike[variant]}  # (enough of its own: the notebook's other variants bend otherwise)
    elif len(alike.get(variant, ())) < MIN_VARIANT_RUNS or sum(map(len, alike.values())) < MIN_PEER_RUNS:
        return None
    # A variant short of runs borrows the curve of the notebook's others, at a level of its own.
    levels = sorted(v for v, r in alike.items() if r)
    runs = [r for v in levels for r in alike[v]]
    which = np.array([levels.index(v) for v in levels for _ in alike[v]])
    names = sorted(own)
    P = np.array([[r[0][k] for k in names] for r in runs]).reshape(len(runs), len(names))
    x = np.array([own[k] for k in names])
    if np.any(x > P.max(axis=0) + 1e-9) or np.any(x < P.min(axis=0) - 1e-9):
        return None
    mid = P.mean(axis=0)

    def terms(x: np.ndarray) -> np.ndarray:
        """Each parameter's log and its square about the runs' mean: usage is a base plus
        a part that grows with the data, which bends a log-log line."""
        return np.concatenate([x, (x - mid) ** 2], axis=-1)

    weeks = np.array([(float(r[2]) - now) / WEEK if len(r) > 2 else 0.0 for r in runs])
    X = np.column_stack([np.eye(len(levels))[which], weeks, terms(P)])
    y = np.array([r[1] for r in runs])
    penalty = [0.0] * len(levels) + [TREND_RIDGE] + [CURVE_RIDGE] * (2 * len(names))
    fitted = _ridge(X, y, penalty)
    trend = len(levels)  # (its column)
    if fitted is not None and fitted[0][trend] < 0:
        # A falling trend is not followed: a notebook's data seldom shrinks, and undersizing kills.
        X[:, trend] = 0.0
        fitted = _ridge(X, y, penalty)
    if fitted is None:
        return None
    beta, loo = fitted
    spread = robust_spread(loo)
    margin = max(float(np.max(loo)) + PEER_CURVE_SPREADS * spread, gauss_z(0.999) * spread)

    def curve(params: dict) -> float:
        return float(beta[levels.index(variant)] + terms(np.array([params[k] for k in names])) @ beta[trend + 1:])

    centre = curve(own)
    lifts = [value - curve(params) for params, value, _ in list(own_points)[:OWN_RUNS]
             if set(params) == set(own)]
    if lifts:
        centre += max(0.0, float(np.median(lifts)))
    return centre + margin


def _ridge(X: np.ndarray, y: np.ndarray, penalty: list) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """(coefficients, leave-one-out residuals) of a ridge fit, or None when singular."""
    A = X.T @ X + np.diag(penalty)
    try:
        beta = np.linalg.solve(A, X.T @ y)
        hat = np.einsum("ij,ji->i", X, np.linalg.solve(A, X.T))
    except np.linalg.LinAlgError:
        return None
    return beta, (y - X @ beta) / np.maximum(1.0 - hat, 0.05)
