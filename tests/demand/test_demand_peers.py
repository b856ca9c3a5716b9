"""A user's first run of a notebook others run is sized from their runs (demand.peers)."""

import numpy as np

from demand.peers import MIN_PEER_RUNS, peer_upper, peers
from demand.policy import GB, MB
from demand.sizing import Sizer

BOUNDS = {"cpu": (0.5, 4.0), "memory": (256 * MB, 32 * GB), "timeout": (60, 7200)}
SHARED = {"code_cells": 40, "source_bytes": 9000, "imports": ["pandas"]}


def _run(i, user, peak_mb, shared=False, dataset="global"):
    notebook = SHARED if shared else {"code_cells": 3 + sum(map(ord, user)) % 9, "source_bytes": 500 + len(user), "imports": ["pandas"]}
    return dict(notebook, user=user, params={"dataset": dataset} if shared else {"rows": 100},
                submit_time=1_700_000_000 + 300 * i, end_time=1_700_000_000 + 300 * i + 60,
                status="succeeded", reason=None, requested={},
                allocated={"cpu": 1, "memory": 8 * GB, "timeout": 3600},
                used={"peak_memory": peak_mb * MB, "cpu_seconds": 50.0, "wall_seconds": 60.0})


def _history(n=480, seed=0):
    """Users u0..u5 run a small notebook of their own and a large shared one; dee only her own."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        user = f"u{i % 6}" if i % 7 else "dee"
        shared = user != "dee" and i % 3 == 0
        peak = 3000 * rng.lognormal(0, 0.05) if shared else 200 * rng.lognormal(0, 0.1)
        out.append(_run(i, user, peak, shared))
    return out


def test_first_run_of_a_shared_notebook_is_sized_from_its_peers(tmp_path):
    history = _history()
    sizer = Sizer(tmp_path, BOUNDS)
    sizer.retrain(history)
    assert sizer.bundle.model.mature
    peaks = [h["used"]["peak_memory"] for h in history if h["code_cells"] == SHARED["code_cells"]]
    dee = [h for h in history if h["user"] == "dee"][::-1]
    first = dict(SHARED, user="dee", params={"dataset": "global"}, requested={}, retry_of=None)
    out = sizer.size(first, dee, now=history[-1]["end_time"])
    # Covers the peers' runs but for their rarest, without the margin of a guess from
    # dee's own 200 MB jobs.
    assert np.quantile(peaks, 0.99) <= out["allocated"]["memory"] <= 1.5 * max(peaks), out
    assert out["predicted"]["memory_kill_odds"] < 0.01


def test_peers_need_two_users_and_enough_runs_with_no_smaller_input():
    rows = [(dict(_run(i, f"u{i % 2}", 1000, shared=True)), None) for i in range(MIN_PEER_RUNS)]
    table = peers(rows)
    job = dict(SHARED, params={"dataset": "global"})
    centre, upper = peer_upper(table, job)
    assert abs(np.exp(centre) - 1000) < 1 and upper >= centre
    assert peer_upper(table, dict(SHARED, params={"dataset": "eu"})) is None  # another variant
    assert peers([(dict(_run(i, "u0", 1000, shared=True)), None) for i in range(50)]) == {}  # one user
    assert peers(rows[:-1]) == {}  # too few runs
    # Runs with a smaller relevant input than the job's do not bound it.
    grown = [(dict(r, params={"dataset": "global", "rows": 10 + k % 2}), None) for k, (r, _) in enumerate(rows)]
    big = dict(SHARED, params={"dataset": "global", "rows": 11})
    assert peer_upper(peers(grown), big) is None
    assert peer_upper(peers(grown), big, relevant=set()) is not None
