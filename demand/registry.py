"""Trained models on disk: one directory per version, never overwritten.

``<model_dir>/v0007/`` holds ``model.pkl`` (the pickled :class:`demand.train.Bundle`)
and ``meta.json`` (version, time, size of the history, metrics) so an admin can compare
versions without unpickling anything. A version directory is claimed with an exclusive
``mkdir`` and its files are written under temporary names first, so two trainers never
write the same version and a reader never loads half a model; a version whose pickle
cannot be read is skipped in favour of the one before it.

A fit that failed its checks (see :mod:`demand.checks`) is saved too, for whoever must
find out why, with ``"rejected": reason`` in its ``meta.json``; it is never loaded to
serve, and :func:`last_rejected` reports it.

Pickles execute code when loaded: the model directory must be writable only by the
service, like its database.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path
from typing import Optional

_VERSION = re.compile(r"^v(\d{4,})$")


def versions(model_dir) -> list[str]:
    """Saved versions, oldest first."""
    root = Path(model_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p.name) for p in root.iterdir() if (m := _VERSION.match(p.name)) and p.is_dir()]
    return [name for _, name in sorted(found)]


def save(bundle, meta: dict, model_dir) -> str:
    """Write ``bundle`` as the next version; returns its name."""
    root = Path(model_dir)
    root.mkdir(parents=True, exist_ok=True)
    existing = versions(root)
    number = int(existing[-1][1:]) + 1 if existing else 1
    while True:
        name = f"v{number:04d}"
        try:
            (root / name).mkdir()
            break
        except FileExistsError:
            number += 1
    target = root / name
    for filename, data in (("model.pkl", pickle.dumps(bundle)),
                           ("meta.json", json.dumps(dict(meta, version=name), indent=2).encode())):
        tmp = target / (filename + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target / filename)
    return name


def _meta(model_dir, name: str) -> Optional[dict]:
    try:
        return json.loads((Path(model_dir) / name / "meta.json").read_text())
    except (OSError, ValueError):
        return None


def load_latest(model_dir) -> Optional[tuple[str, object, dict]]:
    """(version, bundle, meta) of the newest readable version not rejected, or None."""
    for name in reversed(versions(model_dir)):
        meta = _meta(model_dir, name)
        if meta is None or meta.get("rejected"):
            continue
        try:
            bundle = pickle.loads((Path(model_dir) / name / "model.pkl").read_bytes())
        except (OSError, ValueError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            continue
        return name, bundle, meta
    return None


def last_rejected(model_dir, after: Optional[str] = None) -> Optional[dict]:
    """{version, trained_at, reason} of the newest rejected version newer than ``after``
    (the serving one), or None: what an admin must see until a good fit replaces it."""
    names = versions(model_dir)
    start = names.index(after) + 1 if after in names else 0
    for name in reversed(names[start:]):
        meta = _meta(model_dir, name)
        if meta and meta.get("rejected"):
            return {"version": name, "trained_at": meta.get("trained_at"), "reason": meta["rejected"]}
    return None
