"""Why a job was hard to size: what its user's earlier submissions said about it.

The replay splits kills and memory slack by these causes so that a fix can aim at
where they come from. The classes are the evidence any per-user sizer could have had,
taken from the trace in submit order (so they are the same for every policy):

``new-user``      the user's first job;
``new-notebook``  a notebook (features.signature) its user never submitted;
``new-variant``   a known notebook with categorical parameters its user never used;
``beyond``        a known variant with a numeric parameter above every earlier run's;
``new-params``    a known variant with new numeric parameters within the range run;
``re-run``        parameters its user submitted before, exactly.

A policy may claim a job for a phase of its own instead (the model: ``no-model``, sized
before any model existed), and every attempt after a kill is a ``retry``.
"""

from __future__ import annotations

from ..features import signature, split_params

CAUSES = ("no-model", "new-user", "new-notebook", "new-variant", "beyond", "new-params", "re-run", "retry")


def classify(rows: list) -> list[str]:
    """The cause of each trace row (dicts with user, code_cells, source_bytes, imports,
    params), from the rows submitted before it."""
    users: dict = {}  # user -> {signature: {variant: [numeric params]}}
    out = []
    for r in rows:
        notebooks = users.setdefault(r["user"], {})
        numeric, variant = split_params(r.get("params"))
        sig = signature(r)
        if not notebooks:
            cause = "new-user"
        elif sig not in notebooks:
            cause = "new-notebook"
        elif variant not in notebooks[sig]:
            cause = "new-variant"
        else:
            seen = notebooks[sig][variant]
            if numeric in seen:
                cause = "re-run"
            elif any(v > max((p.get(k, -1.0) for p in seen), default=-1.0) + 1e-9 for k, v in numeric.items()):
                cause = "beyond"
            else:
                cause = "new-params"
        notebooks.setdefault(sig, {}).setdefault(variant, []).append(numeric)
        out.append(cause)
    return out
