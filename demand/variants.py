"""How a notebook's categorical parameters move its usage, from every user's runs.

A shared notebook's categorical parameters can matter more than any numeric one: the
same code with ``dataset="global"`` may need six times the memory of ``dataset="eu"``,
while its ``region`` changes nothing. A user's first run of a variant (a notebook they
ran, with a combination of categorical values they never used) is poorly told by their
own runs of the other variants. Other users' runs tell how far apart the values lie:
per notebook, log usage is fitted as a sum of one effect per categorical value (a
ridge fit, so a parameter that moves nothing gets effects near zero, and a
combination nobody ran is still placed by its values). The *shift* from the variants
this user ran to the new one is the difference of their summed effects.

The shift is an estimate like any other: the model's calibration window measures its
errors (see :mod:`demand.calibration`), so a notebook whose values do not move usage
consistently gets the margin that says so.

A text parameter that changes nothing (the ``region``) must not split a notebook's runs
at all: else a user's run in another region is a "new variant", sized with a new
notebook's margins, and peers' runs are counted apart. Once every user's runs of the
notebook show its values' usage alike (:func:`inert`), those values are masked
(:func:`mask`) before anything groups runs; until they do, the parameter stays in.
"""

from __future__ import annotations

import math
from typing import Iterable, Optional

import numpy as np

from .calibration import robust_spread
from .features import TARGETS, signature, split_params, target_value

#: Runs of a notebook (any users) before its values' effects are fitted; and of each value.
MIN_NOTEBOOK_RUNS = 10
MIN_VALUE_RUNS = 3
#: Runs kept per variant, newest: usage drifts (and a rare variant keeps its runs).
RECENT_RUNS = 30
#: Ridge penalty, in runs: a value seen a few times is shrunk toward no effect.
RIDGE = 0.5
#: Runs of a text value before it may be found to change nothing, and the widest gap
#: between such values' median (or upper quartile) log peak memory (10%) that counts as none.
INERT_VALUE_RUNS = 10
INERT_SPREAD = 0.1
#: Standard errors of the values' gap that must fit in INERT_SPREAD: noisy runs prove nothing alike.
INERT_Z = 2.0
#: What values that change nothing are replaced by, so that their runs are one variant.
ALIKE = "*"


def _fit(runs: list) -> dict:
    """``{"level": mean log usage, "effects": {(param, value): effect}}`` from (variant, log y) runs."""
    counts: dict = {}
    for variant, _ in runs:
        for pair in variant:
            counts[pair] = counts.get(pair, 0) + 1
    pairs = sorted((p for p, n in counts.items() if n >= MIN_VALUE_RUNS), key=repr)
    y = np.array([v for _, v in runs])
    level = float(np.mean(y))
    if not pairs:
        return {"level": level, "effects": {}}
    index = {p: i for i, p in enumerate(pairs)}
    X = np.zeros((len(runs), len(pairs)))
    for r, (variant, _) in enumerate(runs):
        for pair in variant:
            if pair in index:
                X[r, index[pair]] = 1.0
    Xc = X - X.mean(0)
    beta = np.linalg.solve(Xc.T @ Xc + RIDGE * np.eye(len(pairs)), Xc.T @ (y - level))
    # Effects relative to the average run: level + sum of the effects of a variant's
    # values, less the average run's, is the variant's level.
    offset = float(X.mean(0) @ beta)
    return {"level": level - offset, "effects": dict(zip(pairs, beta.tolist()))}


def effects(jobs: Iterable[dict], targets: Iterable[str] = TARGETS) -> dict:
    """Per target (of ``targets``), per notebook (:func:`demand.features.signature`) run at
    least MIN_NOTEBOOK_RUNS times: its fitted level and categorical values' effects, from
    succeeded jobs in time order."""
    runs: dict = {t: {} for t in targets}  # target -> signature -> variant -> [log y]
    for job in jobs:
        sig, variant = signature(job), split_params(job.get("params"))[1]
        for t in runs:
            y = target_value(job.get("used"), t)
            if y is not None:
                runs[t].setdefault(sig, {}).setdefault(variant, []).append(y)
    out: dict = {}
    for t, by_sig in runs.items():
        out[t] = {}
        for sig, by_variant in by_sig.items():
            recent = [(v, y) for v, ys in by_variant.items() for y in ys[-RECENT_RUNS:]]
            if len(recent) >= MIN_NOTEBOOK_RUNS:
                out[t][sig] = _fit(recent)
    return out


def _level(fit: dict, variant: tuple) -> Optional[float]:
    """A variant's fitted log usage; None if any of its values was never run enough."""
    if any(pair not in fit["effects"] for pair in variant):
        return None
    return fit["level"] + sum(fit["effects"][pair] for pair in variant)


def base(table: dict, job: dict, summary: dict) -> Optional[float]:
    """Log usage of ``job`` from the effects of its categorical values, for a job whose
    variant its user never ran (``summary``: one target's
    :func:`demand.features.history_summary` row); None without the evidence.

    A known notebook: the user's own level (``anchor``, the median of their runs of it)
    moved by the shift from their variants to this one. Without the user's variants:
    everyone's level of the variant.
    """
    fit = table.get(signature(job))
    if fit is None:
        return None
    own = _level(fit, split_params(job.get("params"))[1])
    if own is None:
        return None
    ran = summary.get("variants") or ()
    if not ran:
        return own
    theirs = [lv for v in ran if (lv := _level(fit, v)) is not None]
    if not theirs:
        return None
    return float(summary["anchor"]) + own - float(np.median(theirs))


def _alike(runs: list, name: str) -> frozenset:
    """The values of text parameter ``name`` that its runs show change nothing; empty
    without the evidence. ``runs``: (user, categorical values as a dict, log peak MB).

    Each run is measured against the same user's runs alike in every other categorical
    value (a user's data and a ``dataset`` move memory, and their mix differs from value
    to value), where those ran more than one value of ``name``; the values with enough
    runs must all have median deviations, and upper quartiles (a mode may move only
    some runs, and limits are set by the upper ones), within INERT_SPREAD, and at least
    two must."""
    strata: dict = {}
    for user, values, y in runs:
        if isinstance(values.get(name), str):
            rest = (user, tuple(sorted((k, v) for k, v in values.items() if k != name)))
            strata.setdefault(rest, []).append((values[name], y))
    deviations: dict = {}
    for members in strata.values():
        if len({v for v, _ in members}) < 2:
            continue
        centre = float(np.median([y for _, y in members]))
        for v, y in members:
            deviations.setdefault(v, []).append(y - centre)
    enough = {v: d for v, d in deviations.items() if len(d) >= INERT_VALUE_RUNS}
    if len(enough) < 2:
        return frozenset()
    quartiles = np.array([np.percentile(d, (50, 75)) for d in enough.values()])
    pooled = np.concatenate(list(enough.values()))
    spread = robust_spread(pooled)
    # The standard error of two medians' difference: a gap of INERT_SPREAD must be one
    # these runs would show, or their alike medians say nothing.
    resolution = 1.2533 * spread * math.sqrt(2.0 / min(len(d) for d in enough.values()))
    if np.ptp(quartiles, axis=0).max() > INERT_SPREAD or INERT_Z * resolution > INERT_SPREAD:
        return frozenset()
    return frozenset(enough)


def inert(jobs: Iterable[dict]) -> dict:
    """Per notebook (:func:`demand.features.signature`), its text parameters' values that
    change nothing, from every user's succeeded ``jobs``: ``{signature: {name: values}}``."""
    runs: dict = {}
    for job in jobs:
        y = target_value(job.get("used"), "memory")
        if y is not None:
            runs.setdefault(signature(job), []).append((job.get("user"), dict(split_params(job.get("params"))[1]), y))
    out: dict = {}
    for sig, rs in runs.items():
        for name in sorted({k for _, values, _ in rs for k, v in values.items() if isinstance(v, str)}):
            if values := _alike(rs, name):
                out.setdefault(sig, {})[name] = values
    return out


def mask(job: dict, table: dict) -> dict:
    """``job`` with those of its text values that :func:`inert` found change nothing
    replaced by ALIKE (the job itself when none are)."""
    alike = table.get(signature(job)) or {}
    params = job.get("params") or {}
    masked = {k: ALIKE if isinstance(v, str) and v in alike.get(k, ()) else v for k, v in params.items()}
    return job if masked == params else dict(job, params=masked)
