"""A synthetic job trace: the yardstick every sizing policy is measured against.

Real notebook-job histories are private, so the benchmark needs a generator whose
shape is stated and reproducible (same seed, same bytes). What it encodes, and why:

* **Arrivals** follow people: a working-day bell in each user's own hours, a lunch dip,
  quiet weekends, and some users with a daily scheduled notebook. Users join over the
  first weeks, so new-user cold start happens throughout, not only at t=0.
* **Per-user habits**: each user owns a few notebooks and re-runs them with parameters
  drawn from a small personal repertoire (``n_rows`` in a few sizes, a ``model``
  variant, ``epochs``). Peak memory and runtime scale with those parameters, plus
  lognormal noise and rare unexplained spikes; data slowly grows for some notebooks.
* **Heavy tails**: base memory and runtime are lognormal across notebooks and users,
  so one user's median job may be 50x another's.
* **Hand-set requests** are what users would type: round numbers, usually generous,
  sometimes too small -- the ``requested`` policy replays them.

The truth columns (peak_mem_mb, cpu_seconds, runtime_s) are what the job needs when
unconstrained; the simulator decides what happens under a given limit.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass

import numpy as np

#: The columns of a trace CSV, in order. The last three are the truth.
COLUMNS = (
    "submit_time", "user", "code_cells", "source_bytes", "imports", "params",
    "requested_cpu", "requested_mem_mb", "peak_mem_mb", "cpu_seconds", "runtime_s",
)

#: Key of what only the generator knows about a row (not a column, not in the CSV).
HIDDEN = "_generator"

#: Monday 2024-01-01 00:00 UTC: traces start on a week boundary so hour-of-week is plain.
EPOCH = 1704067200

# Notebook kinds: (imports always present, optional extras, base memory MB, base runtime s)
KINDS = {
    "light": (["json", "os"], ["requests", "datetime", "re", "pathlib"], 120, 30),
    "viz": (["pandas", "matplotlib"], ["seaborn", "numpy", "plotly"], 350, 60),
    "etl": (["pandas", "numpy"], ["sqlalchemy", "pyarrow", "requests", "dask"], 500, 240),
    "ml": (["pandas", "sklearn", "numpy"], ["xgboost", "scipy", "matplotlib", "joblib"], 800, 600),
    "dl": (["torch", "numpy"], ["torchvision", "transformers", "pandas", "tqdm"], 2200, 1200),
}
KIND_WEIGHTS = (0.15, 0.2, 0.25, 0.25, 0.15)
ROW_SIZES = np.array([1e3, 3e3, 1e4, 3e4, 1e5, 3e5, 1e6, 3e6])
#: Share of runs whose peak memory spikes by a factor nothing in the features explains,
#: and the range of that factor (uniform).
SPIKE_PROBABILITY = 0.01
SPIKE_RANGE = (1.3, 2.5)
MAX_RUNTIME_S = 8 * 3600


@dataclass
class _Notebook:
    kind: str
    code_cells: int
    source_bytes: int
    imports: list
    base_mem: float      # MB without data
    mem_per_row: float   # MB per row at the reference exponent
    mem_exp: float
    mem_noise: float     # lognormal sigma of run-to-run memory noise
    base_rt: float
    rt_exp: float
    rt_noise: float
    parallelism: int
    efficiency: float
    row_choices: np.ndarray
    row_weights: np.ndarray
    growth: float        # fractional data growth per day
    variants: tuple      # values of the "model" parameter, or () when it has none
    req_mem_mb: int
    req_cpu: float


def _nice_mb(mb: float) -> int:
    """Round a memory request up the way people do: 256, 512, 1024, 2048, ... MB."""
    return int(2 ** np.ceil(np.log2(max(mb, 128.0))))


def _make_notebook(rng: np.random.Generator, user_scale: float) -> _Notebook:
    kind = str(rng.choice(list(KINDS), p=KIND_WEIGHTS))
    always, extras, base_mem, base_rt = KINDS[kind]
    imports = list(always) + [m for m in extras if rng.random() < 0.4]
    code_cells = int(4 + rng.poisson(14))
    source_bytes = int(code_cells * rng.lognormal(np.log(350), 0.4))
    top = int(rng.integers(2, len(ROW_SIZES)))
    choices = ROW_SIZES[max(0, top - 3):top + 1]
    weights = rng.dirichlet(np.ones(len(choices)) * 2.0)
    nb = _Notebook(
        kind=kind, code_cells=code_cells, source_bytes=source_bytes, imports=imports,
        base_mem=base_mem * rng.lognormal(0, 0.5) * user_scale,
        mem_per_row=rng.lognormal(np.log(0.002), 0.8) * user_scale,
        mem_exp=float(rng.uniform(0.8, 1.0)),
        mem_noise=float(rng.uniform(0.03, 0.2)),
        base_rt=base_rt * rng.lognormal(0, 0.8),
        rt_exp=float(rng.uniform(0.3, 0.8)),
        rt_noise=float(rng.uniform(0.1, 0.35)),
        parallelism=int(rng.choice([1, 2, 4, 8], p=[0.45, 0.3, 0.2, 0.05])),
        efficiency=float(rng.uniform(0.4, 0.95)),
        row_choices=choices, row_weights=weights,
        growth=float(rng.choice([0.0, 0.01, 0.03], p=[0.6, 0.3, 0.1])),
        variants=("small", "large") if kind in ("ml", "dl") and rng.random() < 0.6 else (),
        req_mem_mb=0, req_cpu=1.0,
    )
    typical = _memory(nb, float(np.average(choices, weights=weights)), "small", 0.0)
    # Hand-set limits: mostly 1.5-4x the typical peak, rounded up; 15% of users guess low.
    factor = rng.uniform(0.6, 1.0) if rng.random() < 0.15 else rng.uniform(1.5, 4.0)
    nb.req_mem_mb = _nice_mb(typical * factor)
    nb.req_cpu = float(max(1, nb.parallelism if rng.random() < 0.7 else 2 * nb.parallelism))
    return nb


def _memory(nb: _Notebook, rows: float, variant: str, day: float) -> float:
    rows = rows * (1 + nb.growth * day)
    factor = 1.8 if variant == "large" else 1.0
    return nb.base_mem + factor * nb.mem_per_row * rows ** nb.mem_exp


def _user_profile(rng: np.random.Generator) -> np.ndarray:
    """Relative submission intensity per hour of day: a work-day bell with a lunch dip."""
    start = rng.normal(9.0, 1.5)
    length = rng.uniform(7, 10)
    hours = np.arange(24) + 0.5
    inside = np.clip(1 - np.abs((hours - start - length / 2) / (length / 2)), 0, None) ** 0.7
    lunch = 1 - 0.5 * np.exp(-0.5 * ((hours - start - length / 2) / 0.8) ** 2)
    profile = 0.03 + inside * lunch
    return profile / profile.sum()


def generate(days: int = 28, users: int = 50, seed: int = 1) -> list[dict]:
    """All jobs of a synthetic trace, in submit order, as dicts keyed by :data:`COLUMNS`."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(users):
        name = f"user{u:03d}"
        user_scale = rng.lognormal(0, 0.6)
        join_day = 0.0 if rng.random() < 0.7 else rng.uniform(0, 0.6 * days)
        per_day = rng.lognormal(np.log(3.0), 0.8)
        weekend = rng.uniform(0.02, 0.3)
        profile = _user_profile(rng)
        notebooks = [_make_notebook(rng, user_scale) for _ in range(1 + min(rng.poisson(1.5), 5))]
        nb_weights = rng.dirichlet(np.ones(len(notebooks)))
        schedule = (int(rng.integers(len(notebooks))), rng.uniform(0, 24)) if rng.random() < 0.3 else None
        for day in range(days):
            if day < join_day:
                continue
            is_weekend = day % 7 >= 5
            counts = rng.poisson(per_day * profile * (weekend if is_weekend else 1.0))
            submits = []
            for hour, n in enumerate(counts):
                for _ in range(n):
                    which = int(rng.choice(len(notebooks), p=nb_weights))
                    submits.append((day * 86400 + hour * 3600 + rng.uniform(0, 3600), which, False))
            if schedule is not None:
                submits.append((day * 86400 + schedule[1] * 3600 + rng.uniform(0, 60), schedule[0], True))
            for offset, which, scheduled in submits:
                rows.append(_job(rng, name, notebooks[which], EPOCH + offset, day, scheduled))
    rows.sort(key=lambda r: (r["submit_time"], r["user"]))
    return rows


def _job(rng, user: str, nb: _Notebook, t: float, day: int, scheduled: bool) -> dict:
    if scheduled:
        n_rows = float(nb.row_choices[-1])
    elif rng.random() < 0.1:  # an occasional one-off size outside the usual repertoire
        n_rows = float(rng.choice(ROW_SIZES))
    else:
        n_rows = float(rng.choice(nb.row_choices, p=nb.row_weights))
    params = {"n_rows": int(n_rows), "date": f"2024-01-{1 + day % 28:02d}"}
    variant = "small"
    if nb.variants:
        variant = str(rng.choice(nb.variants, p=[0.7, 0.3]))
        params["model"] = variant
    epochs = 1
    if nb.kind == "dl":
        epochs = int(rng.choice([1, 3, 10], p=[0.5, 0.3, 0.2]))
        params["epochs"] = epochs
    expected_mem = _memory(nb, n_rows, variant, day)
    mem = expected_mem * rng.lognormal(0, nb.mem_noise)
    if rng.random() < SPIKE_PROBABILITY:  # a spike nothing in the features explains
        mem *= rng.uniform(*SPIKE_RANGE)
    rows_now = n_rows * (1 + nb.growth * day)
    runtime = nb.base_rt * (rows_now / 1e4) ** nb.rt_exp * epochs ** 0.9 * rng.lognormal(0, nb.rt_noise)
    if variant == "large":
        runtime *= 1.6
    runtime = float(np.clip(runtime, 5, MAX_RUNTIME_S))
    cores = max(0.05, nb.parallelism * nb.efficiency * rng.lognormal(0, 0.1))
    return {
        "submit_time": int(t), "user": user, "code_cells": nb.code_cells,
        "source_bytes": nb.source_bytes, "imports": " ".join(nb.imports),
        "params": json.dumps(params, sort_keys=True),
        "requested_cpu": nb.req_cpu, "requested_mem_mb": nb.req_mem_mb,
        "peak_mem_mb": round(float(mem), 1), "cpu_seconds": round(cores * runtime, 1),
        "runtime_s": round(runtime, 1),
        # The generator's own knowledge, for the noise-aware bound (never in the CSV):
        # the run's memory before its noise and spike, the noise's sigma, the notebook's kind.
        HIDDEN: {"mem_mb": float(expected_mem), "mem_sigma": float(nb.mem_noise), "kind": nb.kind},
    }


def write_csv(rows: list[dict], out) -> None:
    """Write trace rows to an open text file, header first."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)


def typed(row: dict) -> dict:
    """One trace row (as written or as read from CSV) with imports as a list, params as a dict."""
    return {
        "submit_time": float(row["submit_time"]), "user": row["user"],
        "code_cells": int(row["code_cells"]), "source_bytes": int(row["source_bytes"]),
        "imports": str(row["imports"]).split(), "params": json.loads(row["params"] or "{}"),
        "requested_cpu": float(row["requested_cpu"]), "requested_mem_mb": float(row["requested_mem_mb"]),
        "peak_mem_mb": float(row["peak_mem_mb"]), "cpu_seconds": float(row["cpu_seconds"]),
        "runtime_s": float(row["runtime_s"]),
        **({HIDDEN: row[HIDDEN]} if HIDDEN in row else {}),
    }


def read_csv(path) -> list[dict]:
    """Read a trace CSV back into :func:`typed` rows."""
    with open(path, newline="") as f:
        return [typed(r) for r in csv.DictReader(f)]
