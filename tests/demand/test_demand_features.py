"""Notebook features: what the sizer can know before a job runs."""

import nbformat

from demand.features import notebook_features
from demand.features import LEVEL_CONFIG, LEVEL_NONE, history_summary


def _nb(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources] + [nbformat.v4.new_markdown_cell("import nothing")]
    return nb


def test_imports_parsed_with_ast_and_magics_tolerated():
    nb = _nb("%matplotlib inline\nimport numpy as np, os.path\n!pip list", "from pandas.io import sql\nfrom . import local",
             "%%bash\nimport not_python")
    f = notebook_features(nb, {"n_rows": 10})
    assert f["imports"] == ["numpy", "os", "pandas"]
    assert f["code_cells"] == 3
    assert f["params"] == {"n_rows": 10}
    assert f["source_bytes"] == sum(len(c.source.encode()) for c in nb.cells if c.cell_type == "code")


def test_syntax_error_cell_still_yields_imports():
    f = notebook_features(_nb("import torch\nfor x in :\n  pass", "from sklearn.linear_model import Ridge"))
    assert f["imports"] == ["sklearn", "torch"]
    assert f["params"] == {}


def _done(params, peak_mb, t):
    return {"user": "a", "code_cells": 3, "source_bytes": 100, "imports": ["pandas"], "params": params,
            "status": "succeeded", "submit_time": t,
            "used": {"peak_memory": peak_mb * 2**20, "cpu_seconds": 10, "wall_seconds": 10}}


def test_anchor_is_nearest_run_of_same_configuration():
    history = [_done({"n_rows": 1000}, 100, 3), _done({"n_rows": 100000}, 900, 2), _done({"n_rows": 10}, 50, 1)]
    job = {"user": "a", "code_cells": 3, "source_bytes": 100, "imports": ["pandas"], "params": {"n_rows": 90000}}
    s = history_summary(job, history)["memory"]
    assert s["level"] == LEVEL_CONFIG
    assert abs(s["anchor"] - __import__("math").log(900)) < 1e-9
    other = dict(job, imports=["torch"])
    assert history_summary(other, [])["memory"]["level"] == LEVEL_NONE


def test_curve_interpolates_and_extrapolates_cautiously():
    import math

    from demand.curves import along_curve

    def key(n):
        return (("n_rows", math.log1p(n)),)

    # memory = 100 MB + 0.01 MB per row: not log-linear in n_rows
    groups = {key(n): [math.log(100 + 0.01 * n)] * 2 for n in (1e3, 1e4, 1e5)}
    slopes = {"n_rows": 0.3}
    mid = along_curve({"n_rows": math.log1p(3e4)}, groups, slopes, {})
    assert abs(math.exp(mid) - (100 + 300)) / 400 < 0.5  # between its neighbours, near the curve
    assert math.log(200) < mid < math.log(1100)
    far = along_curve({"n_rows": math.log1p(1e6)}, groups, slopes, {})
    assert math.exp(far) >= 0.99 * (100 + 0.01 * 1e6)  # never below the true (linear) growth


def _runs_of_n(peaks: dict) -> dict:
    """A configuration's runs by their one parameter ``n``: {n: peak MB} as curve groups."""
    import math

    return {(("n", math.log1p(n)),): [math.log(mb)] for n, mb in peaks.items()}


def test_extrapolation_follows_the_top_end_not_its_last_two_runs():
    """Two close runs at the top, a few percent of noise apart, set no trend of their own:
    the trend beyond them is the top points' together, so a run ten times larger is
    neither sized at the top run's level nor at a slope their noise made up."""
    import math

    from demand.curves import along_curve

    def mb(n):
        return 200 + 0.05 * n  # a base plus a part proportional to the data

    noise = {1000: 1.0, 4000: 1.0, 9000: 1.03, 9500: 0.97}
    groups = _runs_of_n({n: mb(n) * f for n, f in noise.items()})
    far = math.exp(along_curve({"n": math.log1p(95_000)}, groups, {"n": 0.3}, {}))
    assert 0.9 * mb(95_000) <= far <= 1.3 * mb(95_000), far
    noise[9000], noise[9500] = 0.97, 1.03  # the other way: no runaway slope either
    groups = _runs_of_n({n: mb(n) * f for n, f in noise.items()})
    far = math.exp(along_curve({"n": math.log1p(95_000)}, groups, {"n": 0.3}, {}))
    assert 0.9 * mb(95_000) <= far <= 1.3 * mb(95_000), far


def test_close_top_runs_set_no_runaway_trend():
    """Two runs at 1,000 and 1,010 rows, 5% apart by noise alone, are all a curve has:
    a run at 50,000 rows is not sized by the slope their noise makes up (5 MB a row:
    250 GB), but by the pooled one."""
    import math

    from demand.curves import along_curve

    groups = _runs_of_n({1000: 1000, 1010: 1050})
    far = math.exp(along_curve({"n": math.log1p(50_000)}, groups, {"n": 0.0}, {}, noise=0.05))
    assert far < 2.5 * 1050, far  # taken at its word, their slope: 250 GB
    # Runs far apart are their own evidence, noise or not: 10x the rows, 2x the memory.
    groups = _runs_of_n({1000: 1000, 10_000: 2000})
    far = math.exp(along_curve({"n": math.log1p(100_000)}, groups, {"n": 0.0}, {}, noise=0.05))
    assert far > 10_000, far  # linear in the rows: 12 GB


def test_curve_never_extrapolates_below_the_smallest_run():
    import math

    from demand.curves import along_curve, dominated

    def key(n):
        return (("n_rows", math.log1p(n)),)

    groups = {key(n): [math.log(500 + 0.01 * n)] for n in (1e4, 1e5)}
    below = along_curve({"n_rows": math.log1p(10)}, groups, {"n_rows": 0.8}, {})
    assert below == groups[key(1e4)][0]  # a base that does not shrink with the data
    # a run whose every parameter is at most the job's is a floor; a larger one is not
    assert dominated({"n_rows": math.log1p(5e4)}, groups) == groups[key(1e4)][0]
    assert dominated({"n_rows": math.log1p(10)}, groups) == -math.inf


def test_growth_trend_of_repeats_only_ever_raises():
    import math

    from demand.curves import growth

    grown = [math.log(100 * 1.02 ** -age) for age in (1, 2, 4, 6, 8)]  # +2% a day, newest first
    lag = growth(grown, [1, 2, 4, 6, 8])
    assert abs(lag - math.log(1.02) * 4) < 1e-6  # the median run is four days old
    assert growth(grown[::-1], [1, 2, 4, 6, 8]) == 0.0  # shrinking: not trusted to size lower
    assert growth(grown[:3], [1, 2, 4]) == 0.0  # too few repeats to tell a trend from noise
