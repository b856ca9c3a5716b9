"""Edits: people change their notebooks between runs; memory follows the person and the data.

Assumptions, deliberately unlike :mod:`demand.replay.trace`:

* **Notebooks are edited between runs**: every run of a user's notebook follows an
  edit -- cells added or removed, source rewritten, now and then an import added or
  dropped -- so no two runs of a user have the same cell count or the same source size
  (and the same signature never comes back). The edits change nothing about memory.
* **What drives memory**: the user and one data-size parameter (named per user:
  ``n_rows``, ``sample_size``, ``files`` or ``limit``, over a range of one to two
  decades), linearly: ``base + per_unit * size``, the same law for every project the
  user works on. Run-to-run noise is lognormal with sigma 0.02-0.05 (within about
  +-10%); no spikes.
* **Parameters that change nothing**: a float ``threshold``, an integer ``seed`` and a
  ``run_date`` string, in every run.
* **Arrivals are work sessions**: on a work day a user opens about one session (a
  Poisson number, the mean 0.5-3 per user) around their own hour, each an edit-run
  loop of one to eight runs 3-30 minutes apart; weekends are nearly empty; a fifth of
  the users start later in the trace.
* **Hand-set requests** are one per user, 1.2-3x their typical peak rounded up to a
  power of two; 15% ask for too little (0.5-0.9x).
* **Runtime** grows with the square root of the data parameter, lognormal across users.
"""

from __future__ import annotations

import json

import numpy as np

from demand.replay.trace import EPOCH, HIDDEN

DATA_PARAMS = ("n_rows", "sample_size", "files", "limit")
#: What a project imports first (the generator's "kind" of a notebook), and what it may add.
STACKS = (["pandas", "numpy"], ["polars"], ["sklearn", "pandas"], ["torch", "numpy"], ["xarray", "numpy"])
EXTRAS = ("matplotlib", "seaborn", "scipy", "tqdm", "requests", "pyarrow", "plotly")
#: Cell-count steps of an edit (never zero: every run follows an edit), and their odds.
CELL_STEPS = (-2, -1, 1, 2, 3)
CELL_STEP_ODDS = (0.1, 0.2, 0.35, 0.2, 0.15)


def _user(rng, days: int) -> dict:
    base = float(rng.lognormal(np.log(350), 0.7))
    lo = float(10 ** rng.uniform(2, 5))
    hi = lo * float(10 ** rng.uniform(1, 2))
    per_unit = base * float(rng.uniform(1, 6)) / hi  # the data term at the top of the range: 1-6x base
    typical = base + per_unit * np.sqrt(lo * hi)
    factor = rng.uniform(0.5, 0.9) if rng.random() < 0.15 else rng.uniform(1.2, 3.0)
    return {
        "base": base, "per_unit": per_unit, "range": (np.log10(lo), np.log10(hi)),
        "data": str(rng.choice(DATA_PARAMS)), "sigma": float(rng.uniform(0.02, 0.05)),
        "join": 0.0 if rng.random() < 0.8 else float(rng.uniform(0, 0.5 * days)),
        "sessions": float(rng.lognormal(np.log(1.2), 0.5)), "hour": float(rng.normal(11, 2)),
        "requested_mb": int(2 ** np.ceil(np.log2(max(128.0, typical * factor)))),
        "cpu": float(rng.choice([1.0, 2.0])), "cores": float(rng.uniform(0.6, 1.8)),
        "base_s": float(rng.lognormal(np.log(90), 0.8)),
        "projects": [{"imports": list(STACKS[int(rng.integers(len(STACKS)))]),
                      "cells": int(rng.integers(5, 30)), "source": int(rng.integers(1500, 12000))}
                     for _ in range(int(rng.integers(1, 4)))],
    }


def _edit(rng, project: dict, used_cells: set, used_sources: set) -> None:
    """Edit a project in place so that its cell count and source size are new to the user."""
    step = int(rng.choice(CELL_STEPS, p=CELL_STEP_ODDS))
    cells, down = max(3, project["cells"] + step), step < 0
    while cells in used_cells:  # a count the user has not had: walk on in the step's direction, up from 3
        down = down and cells > 3
        cells += -1 if down else 1
    source = max(200, project["source"] + 350 * (cells - project["cells"]) + int(rng.integers(-600, 900)))
    while source in used_sources:
        source += 1
    project["cells"], project["source"] = cells, source
    used_cells.add(cells)
    used_sources.add(source)
    imports = project["imports"]
    extra = [m for m in imports if m in EXTRAS]
    if rng.random() < 0.08:
        new = [m for m in EXTRAS if m not in imports]
        if new:
            imports.append(str(rng.choice(new)))
    elif extra and rng.random() < 0.05:
        imports.remove(str(rng.choice(extra)))


def generate(days: int = 28, users: int = 50, seed: int = 1) -> list[dict]:
    """All jobs of an edited-notebooks trace, in submit order, as :data:`demand.replay.trace.COLUMNS` dicts."""
    rng = np.random.default_rng(seed + 15485863)
    rows = []
    for u in range(users):
        name, person = f"editor{u:03d}", _user(rng, days)
        used_cells, used_sources = set(), set()
        for day in range(days):
            if day < person["join"]:
                continue
            weekend = day % 7 >= 5
            for _ in range(rng.poisson(person["sessions"] * (0.1 if weekend else 1.0))):
                project = person["projects"][int(rng.integers(len(person["projects"])))]
                t = day * 86400 + float(np.clip(rng.normal(person["hour"], 2.5), 6, 22)) * 3600
                for _ in range(1 + min(int(rng.poisson(2.0)), 7)):
                    _edit(rng, project, used_cells, used_sources)
                    rows.append(_job(rng, name, person, project, EPOCH + t, day))
                    t += float(rng.uniform(180, 1800))
    rows.sort(key=lambda r: (r["submit_time"], r["user"]))
    return rows


def _job(rng, user: str, person: dict, project: dict, t: float, day: int) -> dict:
    size = int(10 ** rng.uniform(*person["range"]))
    params = {person["data"]: size, "threshold": round(float(rng.uniform(0, 1)), 3),
              "seed": int(rng.integers(0, 10000)), "run_date": f"2024-01-{1 + day % 28:02d}"}
    expected = person["base"] + person["per_unit"] * size
    mem = expected * rng.lognormal(0, person["sigma"])
    lo = 10 ** person["range"][0]
    runtime = float(np.clip(person["base_s"] * np.sqrt(size / lo) * rng.lognormal(0, 0.2), 5, 8 * 3600))
    return {
        "submit_time": int(t), "user": user, "code_cells": project["cells"], "source_bytes": project["source"],
        "imports": " ".join(project["imports"]), "params": json.dumps(params, sort_keys=True),
        "requested_cpu": person["cpu"], "requested_mem_mb": person["requested_mb"],
        "peak_mem_mb": round(float(mem), 1), "cpu_seconds": round(person["cores"] * runtime, 1),
        "runtime_s": round(runtime, 1),
        HIDDEN: {"mem_mb": float(expected), "mem_sigma": person["sigma"], "kind": project["imports"][0],
                 "spike_probability": 0.0},
    }
