"""A user's first run of a notebook others run is sized from their runs (demand.peers)."""

import numpy as np

from demand.peers import MIN_PEER_RUNS, MIN_VARIANT_RUNS, peer_curve, peer_upper, peers
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


def _curve_runs(n=60, spikes=0.0, seed=1, grow=0.0):
    """A shared notebook's runs by three users: memory 200 MB + 2 MB per row**0.9, quiet noise,
    a high mode (3x) on a share ``spikes`` of runs, and data that grows by ``grow`` a week."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        rows = int(10 ** rng.uniform(2, 4))
        t = 1_700_000_000 + i * 6 * 3600
        peak = (200 + 2 * rows ** 0.9) * rng.lognormal(0, 0.03) * (1 + grow) ** (i * 6 / 168)
        if rng.random() < spikes:
            peak *= 3.0
        run = dict(_run(i, f"u{i % 3}", peak, shared=True), params={"dataset": "global", "rows": rows},
                   submit_time=t)
        out.append((run, None))
    return out


def _limit(runs, rows, own_points=(), now=None):
    job = dict(SHARED, params={"dataset": "global", "rows": rows})
    now = runs[-1][0]["submit_time"] + 60 if now is None else now
    out = peer_curve(peers(runs), job, now, own_points)
    return None if out is None else np.exp(out)


def test_the_peer_curve_sizes_a_later_run_from_everyones_runs_and_their_misses():
    runs = _curve_runs()
    need = 200 + 2 * 3000 ** 0.9
    quiet = _limit(runs, 3000)
    # Within a few tens of percent of the need: a curve over sixty runs, not a guess.
    assert need < quiet < 1.5 * need, quiet
    # A notebook whose runs take 3x now and then shows it in its misses: its limit covers it.
    spiky = _limit(_curve_runs(spikes=0.1), 3000)
    assert spiky > 3 * need, spiky
    # Data that grows 20% a week: the limit follows the trend to now, above the runs' average.
    grown = _curve_runs(grow=0.2)
    latest = need * 1.2 ** (59 * 6 / 168)
    assert _limit(grown, 3000) > latest, (_limit(grown, 3000), latest)
    # Data that shrinks 20% a week: the fall is not followed (followed, the limit is 0.75x
    # what the first runs needed; the curve's level over all its runs gives 1.3x).
    assert _limit(_curve_runs(grow=-0.2), 3000) > need


def test_the_peer_curve_stays_within_the_range_its_runs_covered_and_follows_the_user():
    runs = _curve_runs()
    ran = [r["params"]["rows"] for r, _ in runs]
    assert _limit(runs, max(ran) + 1000) is None  # beyond every peer's run: not extrapolated
    assert _limit(runs, min(ran) - 10) is None
    assert _limit(runs[:MIN_PEER_RUNS - 1], 3000) is None  # too few runs
    other = dict(SHARED, params={"dataset": "global", "rows": 3000, "epochs": 3})
    assert peer_curve(peers(runs), other, 1_800_000_000) is None  # other parameters
    # This user's own runs of it sit at twice the curve (what they feed it): the limit follows.
    base = _limit(runs, 3000)
    rows = np.log1p(3000)
    mine = [({"rows": rows}, float(np.log(2 * (200 + 2 * 3000 ** 0.9))), 0.1)] * 3
    assert _limit(runs, 3000, mine) > 1.8 * base
    # ... and where they sit below it, it does not fall.
    assert _limit(runs, 3000, [({"rows": rows}, float(np.log(100)), 0.1)]) == base


def test_the_board_serves_the_peer_curve_beyond_the_users_own_runs_within_everyones(tmp_path):
    """Three users share a notebook whose memory grows with ``rows``. The boards scored the
    peers' curve on its runs: it never killed and left less unused than the model. u0 now
    runs it with more rows than any of u0's own runs, but within what the team ran: the
    peers' curve serves it (the history policies would not, beyond the user's own runs);
    beyond what anyone ran there is no curve to serve."""
    from demand.scoreboard import KEY

    rng = np.random.default_rng(3)
    history = []
    for i in range(240):
        user = f"u{i % 3}"
        # u0 runs small inputs only; the others the whole range
        rows = int(10 ** rng.uniform(2, 2.5 if user == "u0" else 4))
        peak = (200 + 2 * rows ** 0.9) * rng.lognormal(0, 0.03)
        run = dict(_run(i, user, peak, shared=True), params={"dataset": "global", "rows": rows})
        run["predicted"] = {KEY: {"chosen": "model", "candidates": {
            "model": 3 * peak * MB, "peers": 1.3 * peak * MB, "rules": 1.5 * peak * MB, "default": 2 * GB}}}
        history.append(run)
    sizer = Sizer(tmp_path, BOUNDS)
    sizer.retrain(history)
    assert sizer.bundle.model is not None
    now = history[-1]["end_time"] + 60
    mine = [h for h in history if h["user"] == "u0"][::-1]
    job = dict(SHARED, user="u0", params={"dataset": "global", "rows": 3000}, requested={}, retry_of=None)
    out = sizer.size(job, mine, now)
    record = out[KEY]
    assert record["chosen"] == "peers" and record["group"] == "notebook", record
    need = 200 + 2 * 3000 ** 0.9
    assert out["allocated"]["memory"] == record["candidates"]["peers"]
    assert need * MB < record["candidates"]["peers"] < min(record["candidates"]["model"], 2 * need * MB)
    beyond = sizer.size(dict(job, params={"dataset": "global", "rows": 10**6}), mine, now)[KEY]
    assert "peers" not in beyond["candidates"] and beyond["chosen"] != "peers"


def test_a_variant_with_few_runs_borrows_the_curve_of_its_notebooks_others():
    """The team ran the notebook's ``daily`` mode forty times and its ``full`` mode (three
    times the memory) six: the full mode's curve is the daily one's shape at its own level."""
    daily = _curve_runs(n=40)
    full = [(dict(r, params=dict(r["params"], dataset="full"),
                  used=dict(r["used"], peak_memory=3 * r["used"]["peak_memory"])), None)
            for r, _ in _curve_runs(n=6, seed=7)]
    table = peers(daily + full)
    need = 3 * (200 + 2 * 3000 ** 0.9)
    job = dict(SHARED, params={"dataset": "full", "rows": 3000})
    now = daily[-1][0]["submit_time"] + 60
    limit = np.exp(peer_curve(table, job, now))
    assert need < limit < 1.5 * need, (limit, need)
    # Too few runs of its own (or none): no curve.
    assert peer_curve(peers(daily + full[:MIN_VARIANT_RUNS - 1]), job, now) is None
    # The first run of a variant still needs its own peers' runs (demand.model sizes it otherwise).
    assert peer_upper(table, job) is None
