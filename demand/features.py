"""What the demand model may know about a job before it runs.

Three sources, all available at submit time: the notebook itself (how much code, what
it imports, the parameter values it will run with), the user's own finished jobs, and
the calendar. The features are deliberately cheap: the sizer runs on every submission.

The strongest signal in notebook workloads is repetition -- the same notebook re-run
with other parameters -- so besides plain counts this module finds, in the user's
history, the *anchor*: the most similar earlier run (same notebook, same categorical
parameters, nearest numeric ones). The model then learns the correction from the anchor
to this run (see :mod:`demand.model`), which is why per-job sizing can beat a per-user
histogram.
"""

from __future__ import annotations

import ast
import math
import re
from typing import Iterable, Optional

import numpy as np

# IPython syntax that ast cannot parse: line magics, shell escapes, help queries.
_MAGIC_LINE = re.compile(r"^\s*(%|!|\?)|\?\s*$")
_CELL_MAGIC = re.compile(r"^\s*%%")
_IMPORT_RE = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import|import\s+([\w., ]+))", re.M)

#: Anchor levels, from the weakest to the strongest evidence about a job.
LEVEL_NONE, LEVEL_USER, LEVEL_NOTEBOOK, LEVEL_CONFIG = 0, 1, 2, 3

#: What the model predicts per job: peak memory (MB), wall time (s), cores used (log scale).
TARGETS = ("memory", "runtime", "cores")


def _top_modules(source: str) -> set:
    """Top-level module names imported by one cell; regex fallback on syntax errors."""
    lines = [] if _CELL_MAGIC.match(source) else [
        "" if _MAGIC_LINE.search(line) else line for line in source.splitlines()
    ]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        found = set()
        for frm, imp in _IMPORT_RE.findall(source):
            names = [frm] if frm else [n.split(" as ")[0] for n in imp.split(",")]
            found.update(n.strip().split(".")[0] for n in names if n.strip())
        return found
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def notebook_features(nb, parameters: Optional[dict] = None) -> dict:
    """The sizing features of an nbformat notebook run with ``parameters``."""
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    sources = []
    for cell in code:
        src = cell.get("source", "")
        sources.append("".join(src) if isinstance(src, list) else str(src))
    imports = set()
    for src in sources:
        imports |= _top_modules(src)
    return {
        "code_cells": len(code),
        "source_bytes": sum(len(s.encode("utf-8")) for s in sources),
        "imports": sorted(imports),
        "params": dict(parameters or {}),
    }


# ---------------------------------------------------------------------------------------
# Targets and history


def target_value(used: dict, name: str) -> Optional[float]:
    """log of one target (peak MB, runtime s, cores) from a ``used`` dict, or None."""
    used = used or {}
    try:
        if name == "memory":
            v = float(used["peak_memory"]) / 2**20
        elif name == "runtime":
            v = float(used["wall_seconds"])
        else:
            v = float(used["cpu_seconds"]) / max(float(used["wall_seconds"]), 1.0)
    except (KeyError, TypeError, ValueError):
        return None
    if not math.isfinite(v) or v <= 0:
        return None
    return math.log(max(v, 1e-3))


def succeeded(job: dict) -> bool:
    """A job whose usage is the truth (not cut short by a limit)."""
    return job.get("status") == "succeeded"


def signature(job: dict) -> tuple:
    """Identifies 'the same notebook': its size and what it imports, and the environment it runs in
    (the same code in another image is another workload: the image's own base memory differs)."""
    return (int(job.get("code_cells") or 0), int(job.get("source_bytes") or 0),
            tuple(sorted(job.get("imports") or ())), job.get("environment") or "")


#: Kinship (see :func:`kinship`) below which two runs are not taken for one notebook.
KIN_MIN = 0.3
#: Log units of parameter distance that a kinship of 0 counts as, when the nearest run
#: is chosen as the anchor: an edited copy's run is a worse anchor than the same code's.
KIN_DISTANCE = 2.0


def _kind_of(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "text"


def param_schema(params: Optional[dict]) -> tuple:
    """The notebook's interface: its parameters' names and value types."""
    return tuple(sorted((k, _kind_of(v)) for k, v in (params or {}).items()))


def kinship(job: dict, other: dict) -> float:
    """How surely two runs are of one notebook, from 1 (the same code) down to 0.

    A notebook keeps its identity through an edit and a share: its parameters (names and
    types: the interface its callers use) stay, its imports mostly do, and its cell
    count and source size move by a little. So runs whose parameters differ in name or
    type are not kin; otherwise the kinship is the imports' overlap (Jaccard), times
    ``exp(-|log ratio|)`` of the cell counts and of the source sizes: 0.8 for a run that
    gained two cells of twenty and a tenth of its source, a third for one that doubled.
    """
    if signature(job) == signature(other):
        return 1.0
    if (param_schema(job.get("params")) != param_schema(other.get("params"))
            or (job.get("environment") or "") != (other.get("environment") or "")):
        return 0.0
    a, b = set(job.get("imports") or ()), set(other.get("imports") or ())
    overlap = len(a & b) / len(a | b) if a | b else 1.0
    if not overlap:
        return 0.0
    cells = math.log1p(float(job.get("code_cells") or 0)) - math.log1p(float(other.get("code_cells") or 0))
    size = math.log1p(float(job.get("source_bytes") or 0)) - math.log1p(float(other.get("source_bytes") or 0))
    return overlap * math.exp(-abs(cells) - abs(size))


def split_params(params: Optional[dict]) -> tuple[dict, tuple]:
    """Numeric parameters as log-magnitudes, and the categorical rest as a hashable key.

    Parameters that look like dates or ids (long strings of digits) are ignored: they
    change every run without changing the work.
    """
    numeric, categorical = {}, []
    for key, value in sorted((params or {}).items()):
        if isinstance(value, bool):
            categorical.append((key, value))
        elif isinstance(value, (int, float)) and math.isfinite(value):
            numeric[key] = math.log1p(abs(float(value)))
        elif isinstance(value, str) and len(value) <= 32 and not re.search(r"\d{4}", value):
            categorical.append((key, value))
    return numeric, tuple(categorical)


def no_larger(params: dict, own: dict, keys: Optional[Iterable] = None) -> bool:
    """Whether a run with numeric ``params`` had the same parameters as ``own`` and none
    of ``keys`` (default: all) above the job's: usage grows with the input, so such a
    run's usage bounds the job's from below."""
    return set(params) == set(own) and all(params[k] <= own[k] + 1e-9 for k in (own if keys is None else keys))


def _param_distance(a: dict, b: dict) -> float:
    keys = set(a) | set(b)
    return sum(abs(a.get(k, 0.0) - b.get(k, 0.0)) for k in keys)


def history_summary(job: dict, history: Iterable[dict], now: Optional[float] = None) -> dict:
    """What the user's finished jobs (newest first) say about ``job``, per target.

    For each target: ``anchor`` is the log value of the most similar earlier run and
    ``level`` how similar it is; ``anchor_params`` are that run's numeric parameters and
    ``points`` the (parameters, value, age in days) of up to 30 runs of the same configuration, from
    which the model learns how the target scales with them. Ages count back from
    ``now``, the time of the decision (default: the job's ``submit_time``). One pass
    over the history serves all targets, since this runs on every submission.
    """
    numeric, categorical = split_params(job.get("params"))
    history = list(history)
    # The notebook's own runs: the same code's when it ran before, else its kin's (an
    # edited or shared copy, see kinship), each weighed by how alike it is.
    kin = [kinship(job, h) for h in history]
    if any(k >= 1.0 and succeeded(h) for k, h in zip(kin, history)):
        kin = [k if k >= 1.0 else 0.0 for k in kin]
    user_vals = {t: [] for t in TARGETS}
    sig_vals = {t: [] for t in TARGETS}
    sig_variants = {t: [] for t in TARGETS}  # the categorical parameters of each, alike
    best = {t: None for t in TARGETS}
    points = {t: [] for t in TARGETS}
    censored = np.nan
    now = float(job.get("submit_time") or 0.0) if now is None else float(now)
    for h, k in zip(history, kin):
        same_sig = k >= KIN_MIN
        if not succeeded(h):
            # A kill is a lower bound: this notebook needed more than it was given.
            alloc = (h.get("allocated") or {}).get("memory")
            if same_sig and h.get("reason") == "oom_killed" and alloc:
                censored = np.fmax(censored, math.log(alloc / 2**20))
            continue
        distance = None
        age_days = max(0.0, now - float(h.get("submit_time") or now)) / 86400.0
        if same_sig:
            h_num, h_cat = split_params(h.get("params"))
            if h_cat == categorical:
                distance = _param_distance(numeric, h_num) + KIN_DISTANCE * (1.0 - k)
        for t in TARGETS:
            y = target_value(h.get("used"), t)
            if y is None:
                continue
            user_vals[t].append(y)
            if not same_sig:
                continue
            sig_vals[t].append(y)
            sig_variants[t].append(h_cat)
            if distance is not None and len(points[t]) < 30:
                points[t].append((h_num, y, age_days))
            # Nearest numeric parameters; on ties the newest run (history is newest first).
            if distance is not None and (best[t] is None or distance < best[t][0]):
                best[t] = (distance, y, h_num, k)
    out = {}
    for t in TARGETS:
        u, s, b = user_vals[t], sig_vals[t], best[t]
        row = {
            "n_user": len(u), "n_sig": len(s),
            "user_med": float(np.median(u[:50])) if u else np.nan,
            "user_max": float(np.max(u[:50])) if u else np.nan,
            "sig_spread": float(np.std(s[:20])) if len(s) > 1 else np.nan,
            "censored": censored if t == "memory" else np.nan,
            "dist": np.nan, "anchor_params": None, "params": numeric, "points": points[t],
        }
        if b is not None:
            row.update(level=LEVEL_CONFIG, anchor=b[1], dist=b[0], anchor_params=b[2])
        elif s:
            row.update(level=LEVEL_NOTEBOOK, anchor=float(np.median(s[:10])), variants=sig_variants[t][:10])
        elif u:
            row.update(level=LEVEL_USER, anchor=row["user_med"])
        else:
            row.update(level=LEVEL_NONE, anchor=np.nan)
        # How alike the anchor's notebook is to this job's (1: the same code; see kinship).
        row["kin"] = b[3] if b is not None else max((k for k in kin if k >= KIN_MIN), default=1.0)
        out[t] = row
    return out


def static_features(job: dict, module_vocab: list, now: float) -> dict:
    """Features of the notebook itself and of the calendar."""
    imports = set(job.get("imports") or ())
    t = now if now is not None else float(job.get("submit_time") or 0.0)
    feats = {
        "code_cells": float(job.get("code_cells") or 0),
        "log_source": math.log1p(float(job.get("source_bytes") or 0)),
        "n_imports": float(len(imports)),
        "n_params": float(len(job.get("params") or {})),
        "hour": (t % 86400) / 3600.0,
        "weekday": float(((t // 86400) + 3) % 7),  # 1970-01-01 was a Thursday; Monday = 0
    }
    for m in module_vocab:
        feats[f"imp_{m}"] = 1.0 if m in imports else 0.0
    return feats
