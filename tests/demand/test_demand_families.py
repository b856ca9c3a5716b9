"""The edits and teams trace families: reproducible by seed, and their data show what
their docstrings claim (the replay reads them like any trace)."""

import importlib
import io
import math
from collections import defaultdict

import numpy as np
import pytest

from bench.families import FAMILIES
from demand.cli import main
from demand.features import signature
from demand.replay.trace import COLUMNS, HIDDEN, typed, write_csv

# The modules, not the generators the package exports under the same names.
edits = importlib.import_module("bench.families.edits")
teams = importlib.import_module("bench.families.teams")


def _csv(rows):
    buf = io.StringIO()
    write_csv(rows, buf)
    return buf.getvalue()


def _rows(family, days=14, users=16, seed=1):
    return [typed(r) for r in FAMILIES[family](days, users, seed)]


@pytest.mark.parametrize("family", ["edits", "teams"])
def test_same_seed_same_bytes_other_seed_differs(family):
    generate = FAMILIES[family]
    a, b, c = generate(7, 6, 1), generate(7, 6, 1), generate(7, 6, 2)
    assert a and _csv(a) == _csv(b)
    assert [r[HIDDEN] for r in a] == [r[HIDDEN] for r in b]
    assert _csv(a) != _csv(c)


@pytest.mark.parametrize("family", ["edits", "teams"])
def test_written_csv_replays_through_the_cli(family, tmp_path, capsys):
    rows = FAMILIES[family](7, 6, 3)
    assert all(HIDDEN in r for r in rows)  # so the bench replays the noise-aware bounds too
    path = tmp_path / f"{family}.csv"
    path.write_text(_csv(rows))
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)
    times = [r["submit_time"] for r in rows]
    assert times == sorted(times)
    assert main(["simulate", "--trace", str(path), "--policies", "fixed,vpa", "--json"]) == 0
    assert '"vpa"' in capsys.readouterr().out


def test_edits_no_two_runs_of_a_user_share_cell_count_or_source_size():
    by_user = defaultdict(list)
    for r in _rows("edits", days=28, users=20):
        by_user[r["user"]].append(r)
    assert max(len(runs) for runs in by_user.values()) >= 40  # enough runs to have repeated, had nothing edited
    for runs in by_user.values():
        assert len({r["code_cells"] for r in runs}) == len(runs)
        assert len({r["source_bytes"] for r in runs}) == len(runs)
        assert len({signature(r) for r in runs}) == len(runs)


def _edits_fit(rows):
    """Per user, peak memory fitted as a + b * the user's data parameter: the relative
    residuals, and each run's threshold."""
    by_user = defaultdict(list)
    for r in rows:
        by_user[r["user"]].append(r)
    residuals, thresholds = [], []
    for runs in by_user.values():
        data = next(k for k in runs[0]["params"] if k in edits.DATA_PARAMS)
        x = np.array([r["params"][data] for r in runs], float)
        y = np.array([r["peak_mem_mb"] for r in runs])
        if len(runs) < 5:
            continue
        coef, *_ = np.linalg.lstsq(np.c_[np.ones_like(x), x], y, rcond=None)
        residuals.extend(np.log(y / (np.c_[np.ones_like(x), x] @ coef)))
        thresholds.extend(r["params"]["threshold"] for r in runs)
    return np.array(residuals), np.array(thresholds)


def test_edits_memory_follows_the_user_and_one_data_parameter_within_ten_percent():
    rows = _rows("edits", days=28, users=30, seed=2)
    residuals, _ = _edits_fit(rows)
    # The edits (cells, source, imports) change nothing: a line per user explains every run.
    assert np.mean(np.abs(residuals) <= 0.10) >= 0.95
    assert np.max(np.abs(residuals)) < 0.25
    # ... and the data parameter does matter: without it, the spread is far wider.
    spread = defaultdict(list)
    for r in rows:
        spread[r["user"]].append(math.log(r["peak_mem_mb"]))
    assert np.median([np.std(v) for v in spread.values() if len(v) >= 5]) > 3 * np.std(residuals)


def test_edits_threshold_changes_nothing():
    residuals, thresholds = _edits_fit(_rows("edits", days=28, users=30, seed=2))
    assert len(residuals) > 500
    assert abs(np.corrcoef(residuals, thresholds)[0, 1]) < 0.1


def _teams_rows(seed=1):
    return _rows("teams", days=28, users=24, seed=seed)


def test_teams_share_notebooks_one_users_first_run_is_anothers_tenth():
    runs = defaultdict(list)
    for r in _teams_rows():
        runs[signature(r)].append(r["user"])
    shared = [users for users in runs.values() if len(set(users)) >= 3]
    assert len(shared) >= 3
    late_first = [i for users in shared for i, u in enumerate(users) if u not in users[:i] and i >= 10]
    assert late_first  # some user's first run of a notebook after ten runs of it by the team


def test_teams_mode_changes_memory():
    by_mode = defaultdict(lambda: defaultdict(list))
    for r in _teams_rows():
        by_mode[signature(r)][r["params"]["mode"]].append(r["peak_mem_mb"])
    compared = 0
    for modes in by_mode.values():
        ranked = [m for m in teams.MODES if len(modes.get(m, ())) >= 8]
        if len(ranked) >= 2 and teams.MODES[ranked[-1]] / teams.MODES[ranked[0]] >= 6:
            compared += 1
            assert np.median(modes[ranked[-1]]) > 1.5 * np.median(modes[ranked[0]])
    assert compared >= 3


def test_teams_float_threshold_changes_nothing():
    """Runs alike in all but the threshold need the same memory before noise."""
    groups = defaultdict(set)
    for r in _teams_rows():
        p = r["params"]
        if "threshold" not in p:  # the nightly run sets none
            continue
        week = (r["submit_time"] - teams.EPOCH) // (7 * 86400)
        key = (signature(r), p["mode"], p["window_days"], p.get("n_features"), week)
        groups[key].add((p["threshold"], round(r[HIDDEN]["mem_mb"], 6)))
    varied = [g for g in groups.values() if len({t for t, _ in g}) >= 2]
    assert len(varied) >= 20
    assert all(len({m for _, m in g}) == 1 for g in varied)


def test_teams_window_is_sub_linear_and_features_multiply():
    rng = np.random.default_rng(0)
    nb = teams._notebook(rng, 28)
    nb.update(growth=0.0, features=True)
    mode = list(nb["modes"])[0]

    def data(window, features):
        return teams.memory(nb, {"mode": mode, "window_days": window, "n_features": features}, 0) - nb["base"]

    assert data(8, 100) > data(2, 100)
    assert data(8, 100) / data(2, 100) < 4 * 0.9  # four times the window, well under four times the data
    assert data(8, 200) == pytest.approx(2 * data(8, 100))  # the two parameters multiply
    assert data(8, 200) - data(2, 200) == pytest.approx(2 * (data(8, 100) - data(2, 100)))


def test_teams_bimodal_notebooks_take_about_three_times_now_and_then():
    ratio = defaultdict(list)
    for seed in (1, 2):
        for r in _teams_rows(seed):
            ratio[r[HIDDEN]["spike_probability"] > 0].append(r["peak_mem_mb"] / r[HIDDEN]["mem_mb"])
    high = np.array(ratio[True]) > 2.2
    assert 0.03 < high.mean() < 0.2
    assert np.all(np.array(ratio[False]) < 2.2)
    assert np.median(np.array(ratio[True])[high]) == pytest.approx(3.0, rel=0.1)


def test_teams_data_drift_upward_week_by_week():
    """The nightly run (same parameters every night) needs more as the weeks pass."""
    growth = []
    for seed in (1, 2, 3):
        nightly = defaultdict(lambda: defaultdict(list))
        for r in _teams_rows(seed):
            if r["user"].endswith("-bot"):
                week = (r["submit_time"] - teams.EPOCH) // (7 * 86400)
                nightly[r["user"]][week].append(r["peak_mem_mb"])
        growth += [np.median(weeks[3]) / np.median(weeks[0]) for weeks in nightly.values()]
    assert len(growth) >= 6
    assert min(growth) > 0.9  # none shrinks beyond the noise
    assert max(growth) > 1.15  # and some grow


def test_teams_requests_are_far_off():
    rows = _teams_rows()
    ratio = np.array([r["requested_mem_mb"] / r["peak_mem_mb"] for r in rows])
    assert np.mean(ratio < 1) > 0.2  # too small: the run is killed
    assert np.mean(ratio > 4) > 0.2  # far too big
    assert np.mean((ratio > 0.7) & (ratio < 1.5)) < 0.2


def test_teams_bursts_queue_many_runs_of_one_notebook():
    rows = _teams_rows()
    by = defaultdict(list)
    for r in rows:
        by[(r["user"], signature(r))].append(r["submit_time"])
    longest = 0
    for times in by.values():
        times = np.sort(times)
        for i in range(len(times)):
            longest = max(longest, int(np.searchsorted(times, times[i] + 120, side="right") - i))
    assert longest >= 5
