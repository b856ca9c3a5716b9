"""Sweeps: users explore parameter ranges in batches; libraries set the memory floor.

Assumptions, deliberately unlike :mod:`demand.replay.trace`:

* **How parameters are chosen**: a user submits a *sweep* -- 3 to 15 jobs within a few
  minutes -- over one parameter drawn log-uniformly from a continuous range anywhere in
  1..10^5, with the others held; some notebooks take no parameters at all.
* **What drives memory**: a fixed cost per imported library (torch ~900 MB, pandas
  ~120 MB, ...) plus the kernel, plus a data term exactly proportional to *one* named
  parameter (``n``, ``samples``, ``batch`` or ``grid``, different per notebook); other
  parameters (``seed``, ``lr``, ``alpha``, ``iters``) do not move memory at all.
* **What drives runtime**: a different parameter (``iters`` or ``epochs``) linearly,
  and the data term only weakly.
* **Noise**: 40% of notebooks are deterministic (an identical re-run peaks at the same
  byte count); the rest have 1-8% lognormal noise, no spikes.
* **How history accumulates**: bursts -- long quiet stretches, then a sweep -- and
  arrivals uniform over the 24 hours (users in every time zone).
"""

from __future__ import annotations

import json

import numpy as np

from demand.replay.trace import EPOCH, HIDDEN

#: MB a library costs once imported (resident after import, before any data).
LIBRARY_MB = {"numpy": 30, "pandas": 110, "scipy": 60, "sklearn": 90, "matplotlib": 45, "torch": 880,
              "tensorflow": 1050, "xarray": 70, "polars": 95, "requests": 8, "json": 0, "os": 0}
#: The kernel and the runner, before any import.
KERNEL_MB = 85
DATA_PARAMS = ("n", "samples", "batch", "grid")
IDLE_PARAMS = ("seed", "lr", "alpha")


def _notebook(rng) -> dict:
    libs = sorted(set(rng.choice(list(LIBRARY_MB), size=int(rng.integers(1, 5)), replace=False).tolist()))
    has_params = rng.random() > 0.15
    data = str(rng.choice(DATA_PARAMS)) if has_params else None
    idle = sorted(set(rng.choice(IDLE_PARAMS, size=int(rng.integers(0, 3))).tolist())) if has_params else []
    lo = float(rng.uniform(0, 4))
    return {
        "imports": libs, "code_cells": int(rng.integers(2, 40)), "source_bytes": int(rng.integers(300, 30000)),
        "data": data, "idle": idle, "iters": has_params and rng.random() < 0.5,
        "range": (lo, min(5.0, lo + rng.uniform(0.5, 3))),  # log10 of the data parameter
        "mb_per_unit": float(rng.lognormal(np.log(0.02), 1.5)),
        "noise": 0.0 if rng.random() < 0.4 else float(rng.uniform(0.01, 0.08)),
        "sec_per_iter": float(rng.lognormal(np.log(0.5), 1.0)),
        "cores": float(rng.choice([0.9, 1.0, 1.8, 3.5])),
    }


def generate(days: int = 28, users: int = 50, seed: int = 1) -> list[dict]:
    """All jobs of a sweeps trace, in submit order, as :data:`demand.replay.trace.COLUMNS` dicts."""
    rng = np.random.default_rng(seed + 7919)
    rows = []
    for u in range(users):
        user = f"sweeper{u:03d}"
        notebooks = [_notebook(rng) for _ in range(int(rng.integers(1, 7)))]
        sweeps_per_day = rng.lognormal(np.log(0.35), 0.7)
        req_factor = rng.uniform(1.0, 3.0)
        t = EPOCH + rng.uniform(0, days * 86400 * 0.3)
        while True:
            t += rng.exponential(86400 / sweeps_per_day)
            if t >= EPOCH + days * 86400:
                break
            nb = notebooks[int(rng.integers(len(notebooks)))]
            size = int(rng.integers(3, 16))
            held = {k: round(float(10 ** rng.uniform(-3, 0)), 4) if k in ("lr", "alpha") else int(rng.integers(1, 5))
                    for k in nb["idle"]}
            swept = nb["data"] if rng.random() < 0.6 or not nb["iters"] else "iters"
            held_data = int(10 ** rng.uniform(*nb["range"]))
            for k in range(size if nb["data"] else 1):
                params = dict(held)
                if nb["data"]:
                    params[nb["data"]] = held_data if swept != nb["data"] else int(10 ** rng.uniform(*nb["range"]))
                if nb["iters"]:
                    params["iters"] = int(10 ** rng.uniform(0, 4)) if swept == "iters" else 100
                rows.append(_job(rng, user, nb, params, t + 20 * k + rng.uniform(0, 10), req_factor))
    rows.sort(key=lambda r: (r["submit_time"], r["user"]))
    return rows


def _job(rng, user, nb, params, t, req_factor) -> dict:
    base = KERNEL_MB + sum(LIBRARY_MB[m] for m in nb["imports"])
    units = float(params.get(nb["data"], 0)) if nb["data"] else 0.0
    expected = base + nb["mb_per_unit"] * units
    mem = expected * (rng.lognormal(0, nb["noise"]) if nb["noise"] else 1.0)
    iters = float(params.get("iters", 100))
    runtime = float(np.clip(5 + nb["sec_per_iter"] * iters * (1 + units / 1e5) * (rng.lognormal(0, 0.05)), 5, 8 * 3600))
    return {
        "submit_time": int(t), "user": user, "code_cells": nb["code_cells"], "source_bytes": nb["source_bytes"],
        "imports": " ".join(nb["imports"]), "params": json.dumps(params, sort_keys=True),
        "requested_cpu": 1.0, "requested_mem_mb": int(2 ** np.ceil(np.log2(max(128.0, expected * req_factor)))),
        "peak_mem_mb": round(float(mem), 1), "cpu_seconds": round(nb["cores"] * runtime, 1),
        "runtime_s": round(runtime, 1),
        HIDDEN: {"mem_mb": float(expected), "mem_sigma": float(nb["noise"]), "kind": nb["imports"][-1],
                 "spike_probability": 0.0},
    }
