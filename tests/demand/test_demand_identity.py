"""A notebook's identity survives an edit and a share: its kin's runs are its history, weighed by likeness."""

import math

from demand.curves import GROUP_KIN, calibration_group
from demand.features import KIN_MIN, LEVEL_CONFIG, LEVEL_USER, history_summary, kinship

T0 = 1_700_000_000.0


def run(cells=20, size=6000, imports=("pandas", "numpy"), params=None, peak_mb=None, t=T0, user="u"):
    job = {"user": user, "submit_time": t, "code_cells": cells, "source_bytes": size, "imports": list(imports),
           "params": dict(params or {"n_rows": 1000, "threshold": 0.5})}
    if peak_mb is not None:
        job.update(status="succeeded", used={"peak_memory": peak_mb * 2**20, "wall_seconds": 60, "cpu_seconds": 60})
    return job


def test_an_edit_of_a_few_cells_keeps_most_of_the_kinship_and_a_rewrite_less():
    base = run()
    assert kinship(base, run()) == 1.0
    edited = kinship(base, run(cells=22, size=6600))
    rewritten = kinship(base, run(cells=40, size=12000))
    assert 0.75 < edited < 1.0
    assert KIN_MIN <= rewritten < edited or rewritten < KIN_MIN
    assert kinship(base, run(imports=("pandas", "numpy", "seaborn"))) < kinship(base, run(cells=21))


def test_other_parameters_or_no_common_import_make_another_notebook():
    base = run()
    assert kinship(base, run(cells=21)) > 0.9
    assert kinship(base, run(cells=21, params={"n_rows": 1000, "threshold": "high"})) == 0.0  # a type changed
    assert kinship(base, run(cells=21, params={"n_rows": 1000})) == 0.0                      # a parameter gone
    assert kinship(base, run(cells=21, imports=("torch",))) == 0.0


def test_the_same_code_in_another_environment_is_another_notebook():
    base = dict(run(), environment="python")
    assert kinship(base, dict(run(), environment="python")) == 1.0
    assert kinship(base, dict(run(), environment="datascience")) == 0.0  # (another image's base memory)
    assert kinship(base, dict(run(cells=21), environment="datascience")) == 0.0
    assert kinship(run(), dict(run(), environment=None)) == 1.0  # (no environment said: the default's)


def test_a_run_of_an_edited_notebook_borrows_its_history_not_the_cold_start():
    history = [run(cells=20 + i, size=6000 + 300 * i, params={"n_rows": 1000, "threshold": 0.1 * i},
                   peak_mb=500, t=T0 - 3600 * (i + 1)) for i in range(5)]
    job = run(cells=26, size=7900, params={"n_rows": 1000, "threshold": 0.9}, t=T0)
    memory = history_summary(job, history, T0)["memory"]
    assert memory["level"] == LEVEL_CONFIG and math.isclose(memory["anchor"], math.log(500))
    assert 0 < memory["kin"] < 1 and len(memory["points"]) == 5
    assert calibration_group(memory, {}) == GROUP_KIN  # its misses are calibrated apart
    # another user's notebook with other parameters is no kin: the user's median, nothing nearer
    other = [run(params={"files": 3}, peak_mb=500, t=T0 - 60)]
    assert history_summary(job, other, T0)["memory"]["level"] == LEVEL_USER


def test_once_the_same_code_ran_its_kins_runs_step_aside():
    kin = run(cells=22, size=6600, peak_mb=4000, t=T0 - 60)
    same = run(peak_mb=500, t=T0 - 7200)
    memory = history_summary(run(), [kin, same], T0)["memory"]
    assert memory["kin"] == 1.0 and math.isclose(memory["anchor"], math.log(500)) and len(memory["points"]) == 1
