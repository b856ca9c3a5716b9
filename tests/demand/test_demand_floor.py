"""No job is sized below what the runner and a kernel need (bench/bench_floor.py measures it)."""

import numpy as np

from demand.policy import MB, RUNNER_FLOOR
from demand.sizing import Sizer

BOUNDS = {"cpu": (0.25, 4.0), "memory": (64 * MB, 8 * 1024 * MB), "timeout": (60, 7200)}


def _trivial(i, peak_mb):
    return {"id": i, "user": "ann", "submit_time": 1_700_000_000 + 60 * i, "end_time": 1_700_000_000 + 60 * i + 5,
            "code_cells": 2, "source_bytes": 40, "imports": [], "params": {}, "status": "succeeded",
            "reason": None, "allocated": {"cpu": 1, "memory": 1024 * MB, "timeout": 600},
            "used": {"peak_memory": peak_mb * MB, "cpu_seconds": 1.0, "wall_seconds": 5.0}}


def test_a_burst_of_trivial_jobs_is_never_sized_below_the_runner_floor(tmp_path):
    # A burst of trivial jobs whose peaks vary (65-110 MiB here): the history rule alone
    # would give ~150 MiB, and one such job peaked at 156 MiB.
    peaks = np.random.default_rng(1).uniform(65, 110, size=80)
    history = [_trivial(i, p) for i, p in enumerate(peaks)][::-1]
    sizer = Sizer(tmp_path, BOUNDS, min_jobs=50)
    job = dict(_trivial(100, 0), requested={}, retry_of=None)
    by_rules = sizer.size(job, history)
    assert by_rules["basis"] == "user-history" and by_rules["allocated"]["memory"] >= RUNNER_FLOOR
    sizer.retrain(history[::-1], now=1_700_010_000)
    by_model = sizer.size(job, history)
    assert by_model["basis"] == "model" and by_model["allocated"]["memory"] >= RUNNER_FLOOR
    # A request below it is raised to it: the job could not start otherwise.
    asked = sizer.size(dict(job, requested={"memory": 100 * MB}), history)
    assert asked["allocated"]["memory"] == RUNNER_FLOOR


def test_the_admins_maximum_still_wins_over_the_floor(tmp_path):
    bounds = dict(BOUNDS, memory=(64 * MB, 200 * MB))
    out = Sizer(tmp_path, bounds).size({"user": "ann", "params": {}, "requested": {}}, [])
    assert out["allocated"]["memory"] == 200 * MB
