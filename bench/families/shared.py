"""Shared: a team's common notebooks, run by everyone, around the clock.

Assumptions, deliberately unlike :mod:`demand.replay.trace`:

* **Who runs what**: a catalogue of a dozen shared notebooks (identical code, so the
  same signature for every user); each user picks from it by popularity, and some
  users appear once and never again.
* **How parameters are chosen**: a categorical ``dataset`` (``eu``, ``us``, ``global``)
  that sets most of the memory (``global`` is ~6x ``eu``), a ``region`` string that
  does not, and for some notebooks a numeric ``top_k`` in 1..100 that barely moves it.
* **What drives memory**: the dataset, a cache that is warm in 30% of runs (then peak
  memory is about half), and a library upgrade on a given day after which a notebook
  needs 1.5x. Once in the trace a runaway run needs 20x.
* **Arrivals**: a flat Poisson stream day and night (scheduled pipelines and people
  in every time zone alike), no weekly shape.
* **Runtime** is set by the dataset and is long-tailed (Pareto), unrelated to memory noise.
"""

from __future__ import annotations

import json

import numpy as np

from demand.replay.trace import EPOCH, HIDDEN

DATASETS = {"eu": 1.0, "us": 1.7, "global": 6.0}
REGIONS = ("north", "south", "east", "west")
IMPORT_SETS = (["pandas", "numpy"], ["pandas", "pyarrow"], ["polars"], ["pandas", "sklearn", "numpy"],
               ["torch", "numpy"], ["xarray", "numpy", "dask"], ["duckdb"], ["requests", "json"])


def _catalogue(rng, n: int = 12) -> list[dict]:
    out = []
    for i in range(n):
        out.append({
            "imports": list(IMPORT_SETS[i % len(IMPORT_SETS)]), "code_cells": 8 + 3 * i,
            "source_bytes": 4000 + 997 * i, "base_mb": float(rng.lognormal(np.log(400), 1.0)),
            "top_k": rng.random() < 0.5, "upgrade_day": float(rng.uniform(3, 40)) if rng.random() < 0.4 else None,
            "noise": float(rng.uniform(0.02, 0.12)), "base_s": float(rng.lognormal(np.log(120), 1.0)),
            "cores": float(rng.choice([0.5, 1.0, 2.0])),
        })
    return out


def generate(days: int = 28, users: int = 50, seed: int = 1) -> list[dict]:
    """All jobs of a shared-notebooks trace, in submit order, as :data:`demand.replay.trace.COLUMNS` dicts."""
    rng = np.random.default_rng(seed + 104729)
    catalogue = _catalogue(rng)
    popularity = rng.dirichlet(np.ones(len(catalogue)) * 0.7)
    activity = rng.lognormal(0, 1.0, size=users)
    once = rng.random(users) < 0.2
    rate = 4.0 * users / 86400  # jobs per second, over the whole team
    n = rng.poisson(rate * days * 86400)
    times = np.sort(rng.uniform(0, days * 86400, size=n)) + EPOCH
    weights = activity / activity.sum()
    runaway = int(rng.integers(n)) if n else -1
    seen, rows = set(), []
    for i, t in enumerate(times):
        u = int(rng.choice(users, p=weights))
        if once[u] and u in seen:
            continue
        seen.add(u)
        nb = catalogue[int(rng.choice(len(catalogue), p=popularity))]
        dataset = str(rng.choice(list(DATASETS), p=[0.5, 0.35, 0.15]))
        params = {"dataset": dataset, "region": str(rng.choice(REGIONS))}
        if nb["top_k"]:
            params["top_k"] = int(rng.integers(1, 101))
        day = (t - EPOCH) / 86400
        expected = nb["base_mb"] * DATASETS[dataset] * (1 + 0.02 * np.log1p(params.get("top_k", 0)))
        if nb["upgrade_day"] is not None and day >= nb["upgrade_day"]:
            expected *= 1.5
        mem = expected * rng.lognormal(0, nb["noise"]) * (0.5 if rng.random() < 0.3 else 1.0)
        if i == runaway:
            mem *= 20
        runtime = float(np.clip(nb["base_s"] * DATASETS[dataset] ** 0.8 * (rng.pareto(3.0) + 0.5), 5, 8 * 3600))
        rows.append({
            "submit_time": int(t), "user": f"member{u:03d}", "code_cells": nb["code_cells"],
            "source_bytes": nb["source_bytes"], "imports": " ".join(nb["imports"]),
            "params": json.dumps(params, sort_keys=True), "requested_cpu": nb["cores"],
            "requested_mem_mb": int(2 ** np.ceil(np.log2(max(128.0, 2 * expected)))),
            "peak_mem_mb": round(float(mem), 1), "cpu_seconds": round(nb["cores"] * 0.8 * runtime, 1),
            "runtime_s": round(runtime, 1),
        })
    rows.sort(key=lambda r: (r["submit_time"], r["user"]))
    return rows
