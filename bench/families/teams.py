"""Teams: a team shares a few notebooks; modes, bimodal runs, data that grows, bad requests.

Assumptions, deliberately unlike :mod:`demand.replay.trace`:

* **Who runs what**: users belong to teams of about eight; each team shares three to
  six notebooks (the same code, so the same cell count, source size and imports for
  every member), picked by a team-wide popularity, so one user's first run of a
  notebook is another's tenth. Some shared notebooks get a new version mid-trace (cells
  and source change for everyone at once; memory does not). Each team also has a bot
  user that runs the team's main notebook every night.
* **What drives memory**: ``base + unit * mode * window ** alpha [* n_features / 100]``:
  a string ``mode`` (two to four of ``sample``, ``daily``, ``weekly``, ``full``: 0.2x to
  6x), a numeric ``window_days`` (1-90) with alpha 0.3-0.7 (sub-linear), and for half
  the notebooks an ``n_features`` (10-300) that multiplies with it. A float
  ``threshold`` and a ``run_date`` string change nothing.
* **Bimodal runs**: a third of the notebooks now and then (5-15% of their runs) take
  about 3x their usual memory (2.8-3.2x), with nothing in the features to say when.
* **Drift**: 40% of the notebooks' data grow 5-20% a week, in weekly steps (new data
  lands on Mondays).
* **Noise**: lognormal, sigma 0.03-0.12 per notebook.
* **Hand-set requests** are far off, per user and notebook: 45% of users ask for 0.15-0.5x
  the notebook's typical peak, the others 4-16x, rounded up to a power of two.
* **Arrivals**: work days in the team's own hours (teams sit in different time zones);
  on one user-day in ten a burst -- five to twenty runs of one notebook queued within
  two minutes (a backfill over dates, windows and modes), all sized before any ends.
* **Runtime** grows with the mode and the window, lognormal per notebook; cores are
  set per notebook.
"""

from __future__ import annotations

import json

import numpy as np

from demand.replay.trace import EPOCH, HIDDEN

#: The modes a notebook may take, in order, and their memory factors (per notebook, +-25%).
MODES = {"sample": 0.2, "daily": 1.0, "weekly": 2.5, "full": 6.0}
PURPOSES = ("report", "features", "train", "export", "backfill")
IMPORT_SETS = (["pandas", "numpy"], ["pandas", "pyarrow", "sqlalchemy"], ["polars", "duckdb"],
               ["sklearn", "pandas", "numpy"], ["torch", "numpy", "pandas"], ["dask", "pandas"])
#: How much a bimodal notebook's high mode takes over its usual memory (uniform).
BIMODAL_RANGE = (2.8, 3.2)
TEAM_SIZE = 8


def _notebook(rng, days: int) -> dict:
    first = int(rng.integers(0, 3))
    modes = list(MODES)[first:first + int(rng.integers(2, 5))]
    cells = int(rng.integers(8, 60))
    return {
        "purpose": str(rng.choice(PURPOSES)), "imports": list(IMPORT_SETS[int(rng.integers(len(IMPORT_SETS)))]),
        "versions": [(0.0, cells, int(cells * rng.lognormal(np.log(400), 0.3)))]
        + ([(float(rng.uniform(5, max(6, days - 3))), cells + int(rng.integers(1, 8)),
             int(cells * rng.lognormal(np.log(420), 0.3)))] if rng.random() < 0.4 else []),
        "base": float(rng.lognormal(np.log(300), 0.6)),
        "unit": float(rng.lognormal(np.log(40), 0.6)),
        "modes": {m: MODES[m] * float(rng.uniform(0.8, 1.25)) for m in modes},
        "alpha": float(rng.uniform(0.3, 0.7)), "features": rng.random() < 0.5,
        "bimodal": float(rng.uniform(0.05, 0.15)) if rng.random() < 1 / 3 else 0.0,
        "growth": float(rng.uniform(0.05, 0.2)) if rng.random() < 0.4 else 0.0,
        "sigma": float(rng.uniform(0.03, 0.12)),
        "base_s": float(rng.lognormal(np.log(150), 0.8)), "cores": float(rng.choice([0.5, 1.0, 2.0, 4.0])),
    }


def memory(nb: dict, params: dict, day: float) -> float:
    """A run's memory (MB) before its noise and its high mode: what the parameters and the week set."""
    data = nb["modes"][params["mode"]] * params["window_days"] ** nb["alpha"] * params.get("n_features", 100) / 100
    return nb["base"] + nb["unit"] * data * (1 + nb["growth"]) ** (day // 7)


def generate(days: int = 28, users: int = 50, seed: int = 1) -> list[dict]:
    """All jobs of a shared-team-notebooks trace, in submit order, as :data:`demand.replay.trace.COLUMNS` dicts."""
    rng = np.random.default_rng(seed + 32452843)
    teams = []
    for k in range(max(1, round(users / TEAM_SIZE))):
        notebooks = [_notebook(rng, days) for _ in range(int(rng.integers(3, 7)))]
        teams.append({"notebooks": notebooks, "popularity": rng.dirichlet(np.ones(len(notebooks))),
                      "hour": float(rng.uniform(0, 24)), "night": float(rng.uniform(0, 24)), "name": f"team{k}"})
    rows = []
    for u in range(users):
        team = teams[int(rng.integers(len(teams)))] if u >= len(teams) else teams[u]  # every team has someone
        user = f"{team['name']}-m{u:03d}"
        low = rng.random() < 0.45
        factors = [float(rng.uniform(0.15, 0.5) if low else rng.uniform(4, 16)) for _ in team["notebooks"]]
        per_day = float(rng.lognormal(np.log(2.5), 0.6))
        hour = team["hour"] + float(rng.normal(0, 1))
        join = 0.0 if rng.random() < 0.75 else float(rng.uniform(0, 0.6 * days))
        for day in range(days):
            if day < join or day % 7 >= 5:
                continue
            for _ in range(rng.poisson(per_day)):
                k = int(rng.choice(len(factors), p=team["popularity"]))
                t = day * 86400 + (hour + float(rng.uniform(0, 9))) % 24 * 3600
                nb = team["notebooks"][k]
                rows.append(_job(rng, user, nb, _params(rng, nb, day), t, factors[k]))
            if rng.random() < 0.1:  # a burst: a backfill queued in one go
                k = int(rng.choice(len(factors), p=team["popularity"]))
                t = day * 86400 + (hour + float(rng.uniform(0, 9))) % 24 * 3600
                nb = team["notebooks"][k]
                for j in range(int(rng.integers(5, 21))):
                    params = _params(rng, nb, day - 1 - j)
                    rows.append(_job(rng, user, nb, params, t + float(rng.uniform(0, 120)), factors[k]))
    for team in teams:  # the nightly run of the team's main notebook
        main = team["notebooks"][int(np.argmax(team["popularity"]))]
        params = {"mode": list(main["modes"])[-1], "window_days": 7}
        for day in range(days):
            t = day * 86400 + team["night"] * 3600 + float(rng.uniform(0, 60))
            rows.append(_job(rng, f"{team['name']}-bot", main, dict(params, run_date=_date(day)), t, 2.0))
    rows = [r for r in rows if r["submit_time"] < EPOCH + days * 86400]
    rows.sort(key=lambda r: (r["submit_time"], r["user"]))
    return rows


def _date(day: int) -> str:
    return f"2024-{1 + (day // 28) % 12:02d}-{1 + day % 28:02d}"


def _params(rng, nb: dict, day: int) -> dict:
    params = {"mode": str(rng.choice(list(nb["modes"]))),
              "window_days": int(np.ceil(10 ** rng.uniform(0, np.log10(90)))),
              "threshold": round(float(rng.uniform(0, 1)), 3), "run_date": _date(max(day, 0))}
    if nb["features"]:
        params["n_features"] = int(10 ** rng.uniform(1, np.log10(300)))
    return params


def _job(rng, user: str, nb: dict, params: dict, t: float, req_factor: float) -> dict:
    day = t / 86400
    version = [v for v in nb["versions"] if v[0] <= day][-1]
    expected = memory(nb, params, day)
    mem = expected * rng.lognormal(0, nb["sigma"])
    if nb["bimodal"] and rng.random() < nb["bimodal"]:
        mem *= rng.uniform(*BIMODAL_RANGE)
    typical = memory(nb, {"mode": list(nb["modes"])[len(nb["modes"]) // 2], "window_days": 7}, 0)
    request = int(2 ** np.ceil(np.log2(max(128.0, typical * req_factor))))
    mode = nb["modes"][params["mode"]]
    runtime = float(np.clip(nb["base_s"] * mode ** 0.7 * params["window_days"] ** 0.3 * rng.lognormal(0, 0.25),
                            5, 8 * 3600))
    return {
        "submit_time": int(EPOCH + t), "user": user, "code_cells": version[1], "source_bytes": version[2],
        "imports": " ".join(nb["imports"]), "params": json.dumps(params, sort_keys=True),
        "requested_cpu": nb["cores"], "requested_mem_mb": request,
        "peak_mem_mb": round(float(mem), 1), "cpu_seconds": round(nb["cores"] * 0.85 * runtime, 1),
        "runtime_s": round(runtime, 1),
        # The bound is told a bimodal notebook's odds of its high mode and how high it is,
        # as a spike's odds and range.
        HIDDEN: {"mem_mb": float(expected), "mem_sigma": nb["sigma"], "kind": nb["purpose"],
                 "spike_probability": nb["bimodal"], "spike_range": BIMODAL_RANGE},
    }
