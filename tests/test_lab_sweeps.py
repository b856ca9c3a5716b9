"""A parameter sweep from JupyterLab, in a real browser through the real Hub: the Submit dialog's
Sweep switch (several values per field, the grid's size on its button, a value a field cannot
take under that field), the sweep's view (a row per run, sorting, the best run for a metric, an
overlay chart of every run's series), and the panel's link to it. Screenshots in the light and
the dark theme go to test-output/lab/ (the light one is docs/lab-sweep.png)."""

from __future__ import annotations

import re
import shutil

from tests.hubtest import ROOT, make_notebook
from tests.test_lab_ui import (  # noqa: F401
    ACCEPT, SHOTS, USER, browser, field_error, lab, open_dialog, set_theme, show_panel)

NOTEBOOK = "sweep.ipynb"
#: the grid the test enters, in the order the service runs it (the last name varies fastest)
GRID = [("0.1", "1"), ("0.1", "3"), ("0.5", "1"), ("0.5", "3")]
SWEEP_GETS = re.compile(r"/notebook-jobs/api/sweeps/(?P<id>[^/?]+)(?:\?|$)")


def sweep_notebook() -> dict:
    """Two parameters, and a loss reported at three steps: its final value is lr * depth / 3."""
    return make_notebook(
        "from notebook_jobs import report\n"
        "for step in range(3):\n"
        "    report(loss=lr * depth / (step + 1), step=step)",
        parameters="lr = 0.2\ndepth = 2",
    )


def view_rows(view, rows="tbody tr") -> list:
    """The runs' table as shown (``rows`` of it): (lr, depth, loss) of each row, top to bottom."""
    keys = ("param:lr", "param:depth", "metric:loss")
    return [tuple(row.locator(f'td[data-key="{key}"]').text_content() for key in keys)
            for row in view.locator(rows).all()]


def test_a_sweep_from_the_dialog_runs_the_grid_and_its_view_compares_the_runs(hub, lab):
    page = lab
    lena = hub.user(USER)
    hub.write_workspace(USER, NOTEBOOK, sweep_notebook())
    sweeps_before = lena.get("sweeps").json()["sweeps"]
    gets = []

    def on_request(request):
        if request.method == "GET" and SWEEP_GETS.search(request.url):
            gets.append(request.url)

    page.on("request", on_request)
    try:
        run_the_sweep(page, hub, lena, sweeps_before, gets)
    finally:
        page.remove_listener("request", on_request)


def run_the_sweep(page, hub, lena, sweeps_before, gets):

    dialog = open_dialog(page, hub, NOTEBOOK)
    label = page.locator(f"{ACCEPT} .jp-Dialog-buttonLabel")
    assert label.text_content() == "Submit"
    assert dialog.locator('[name="param-lr"]').input_value() == "0.2"
    dialog.locator('[name="sweep-on"]').check()
    # a value the field cannot take: said under its field, and Submit held back
    dialog.locator('[name="param-lr"]').fill("0.1, 0.5")
    dialog.locator('[name="param-depth"]').fill("1, abc")
    field_error(page, "depth", 'value 2 ("abc") must be a whole number')
    field_error(page, "lr", "")
    assert page.locator(ACCEPT).is_disabled()
    page.keyboard.press("Enter")  # (nor does Enter submit it)
    page.wait_for_timeout(500)
    assert dialog.is_visible()
    assert lena.get("sweeps").json()["sweeps"] == sweeps_before  # nothing was submitted

    dialog.locator('[name="param-depth"]').fill("1, 3")
    field_error(page, "depth", "")
    page.wait_for_function("(sel) => document.querySelector(sel)?.textContent === 'Submit sweep of 4 runs'",
                           arg=f"{ACCEPT} .jp-Dialog-buttonLabel")
    dialog.locator(".jp-NotebookJobs-proposal", has_text="The first run gets:").wait_for()  # sized as its first run
    page.wait_for_timeout(600)
    page.locator(".jp-Dialog-content").screenshot(path=str(SHOTS / "sweep-dialog.png"))
    page.locator(ACCEPT).click()
    page.locator(".jp-Dialog").wait_for(state="detached")

    # the dialog opened the new sweep's view: a row per run, the grid in its order
    view = page.locator(".jp-NotebookJobs-sweep:visible")
    view.wait_for(timeout=30_000)
    sweep_id = view.get_attribute("data-sweep-id")
    [sweep] = [s for s in lena.get("sweeps").json()["sweeps"] if s not in sweeps_before]
    assert sweep["id"] == sweep_id and sweep["size"] == 4
    assert sweep["grid"]["parameters"] == {"lr": [0.1, 0.5], "depth": [1, 3]}
    view.locator("tbody tr").nth(3).wait_for(timeout=30_000)
    assert [r[:2] for r in view_rows(view)] == GRID

    # followed until every run has ended, then no more reads
    page.wait_for_function("(id) => document.querySelector(`.jp-NotebookJobs-sweep[data-sweep-id='${id}']`)"
                           "?.dataset.status === 'succeeded'", arg=sweep_id, timeout=240_000)
    assert view.locator('tbody tr[data-status="succeeded"]').count() == 4
    assert len(gets) >= 3, gets  # read again while runs were to end
    page.wait_for_timeout(1000)
    settled = len(gets)
    page.wait_for_timeout(4500)  # (two periods of the poll)
    assert len(gets) == settled, gets[settled:]

    # the metric the notebook reports is picked: the best run (least final loss) marked, every run charted
    assert view.locator(".jp-NotebookJobs-sweepMetric").input_value() == "loss"
    view.locator('.jp-NotebookJobs-sweepChart[data-metric="loss"][data-lines="4"]').wait_for(timeout=30_000)
    page.wait_for_function("() => document.querySelectorAll('.jp-NotebookJobs-sweep "
                           ".jp-NotebookJobs-sweepChart .chart-series polyline').length === 4")
    chart = view.locator(".jp-NotebookJobs-sweepChart")
    names = chart.locator("g.chart-series[data-name]").evaluate_all("(gs) => gs.map((g) => g.dataset.name)")
    assert sorted(names) == sorted(f"lr={lr}, depth={depth}" for lr, depth in GRID)
    assert all(len(p.split()) == 3 for p in chart.locator("polyline").evaluate_all(
        "(ls) => ls.map((l) => l.getAttribute('points'))"))  # each run's three steps
    best = view.locator("tbody tr.jp-mod-best")
    assert best.count() == 1 and best.locator(".jp-NotebookJobs-bestMark").text_content() == "★"
    assert view_rows(view, "tbody tr.jp-mod-best")[0][:2] == ("0.1", "1")
    best_text = view.locator(".jp-NotebookJobs-sweepBest").text_content()
    assert best_text == "Best run: #1, lr=0.1, depth=1 (loss 0.033333)", best_text
    page.wait_for_timeout(500)
    view.screenshot(path=str(SHOTS / "sweep.png"))
    shutil.copy(SHOTS / "sweep.png", ROOT / "docs" / "lab-sweep.png")

    # sorting by a column reorders the rows; again, the other way
    view.locator('th[data-key="param:depth"] button').click()
    assert [r[:2] for r in view_rows(view)] == [("0.1", "1"), ("0.5", "1"), ("0.1", "3"), ("0.5", "3")]
    assert view.locator('th[data-key="param:depth"]').get_attribute("aria-sort") == "ascending"
    view.locator('th[data-key="metric:loss"] button').click()
    losses = [float(r[2]) for r in view_rows(view)]
    assert losses == sorted(losses) and losses[0] < losses[-1], losses
    view.locator('th[data-key="metric:loss"] button').click()
    assert [float(r[2]) for r in view_rows(view)] == sorted(losses, reverse=True)
    assert view.locator('th[data-key="metric:loss"]').get_attribute("aria-sort") == "descending"

    # the greatest loss is best the other way
    view.locator(".jp-NotebookJobs-sweepMode").select_option("max")
    page.wait_for_function("() => document.querySelector('.jp-NotebookJobs-sweep tr.jp-mod-best "
                           "td[data-key=\"param:lr\"]')?.textContent === '0.5'")
    assert view_rows(view, "tbody tr.jp-mod-best")[0][:2] == ("0.5", "3")
    # nothing to cancel, nothing failed
    assert view.locator('[data-action="cancel-sweep"]').is_disabled()
    assert view.locator('[data-action="rerun-failed"]').is_disabled()

    # a run's row in the panel opens its sweep; in the dark theme too
    set_theme(page, "JupyterLab Dark")
    try:
        panel = show_panel(page)
        first = lena.get(f"sweeps/{sweep_id}").json()["runs"][0]["job_id"]
        link = panel.locator(f'.jp-NotebookJobs-job[data-job-id="{first}"] [data-action="sweep"]')
        assert link.text_content() == "Open sweep"
        link.click(timeout=30_000)
        dark = page.locator(f'.jp-NotebookJobs-sweep[data-sweep-id="{sweep_id}"]:visible')
        dark.locator('.jp-NotebookJobs-sweepChart[data-lines="4"]').wait_for(timeout=30_000)
        assert dark.locator("tbody tr").count() == 4
        page.wait_for_timeout(800)
        dark.screenshot(path=str(SHOTS / "dark-sweep.png"))
    finally:
        set_theme(page, "JupyterLab Light")
