"""A parameter sweep from JupyterLab, in a real browser through the real Hub: the Submit dialog's
Sweep switch (several values per field, the grid's size on its button, a value a field cannot
take under that field), the sweep's view (a row per run, sorting, the best run for a metric, an
overlay chart of every run's series, each run's own Open, Cancel and Rerun, the values under the
pointer or the arrow keys, a redraw at a new width, the view back after a reload), and the panel's
link to it. Screenshots in the light and the dark theme go to test-output/lab/ (the light one is
docs/lab-sweep.png)."""

from __future__ import annotations

import re
import shutil
import time
import uuid
from pathlib import Path

from tests.hubtest import ROOT, make_notebook
from tests.test_browser_metrics import CLIPPED_JS, reported
from tests.test_lab_metrics import contrast
from tests.test_lab_ui import (  # noqa: F401
    ACCEPT, SHOTS, USER, browser, field_error, lab, lab_ready, open_dialog, open_panel, set_theme, show_panel)

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


def gated_sweep_notebook() -> dict:
    """Four reports of a loss whose last value is long (``-0.0012346`` times ``n``); a run given a
    ``gate`` then waits for that file to exist."""
    return make_notebook(
        "from notebook_jobs import report\n"
        "for step in range(4):\n"
        "    report(loss=(3 - step) * n / 10 - 0.0012346 * n, step=step)",
        "import pathlib, time\nwhile gate and not pathlib.Path(gate).exists():\n    time.sleep(0.1)",
        parameters="n = 1\ngate = ''",
    )


def run_row(view, job_id):
    return view.locator(f'tbody tr[data-job-id="{job_id}"]')


def actions(row) -> list:
    return row.locator("[data-action]").evaluate_all("(bs) => bs.map((b) => b.dataset.action)")


def readout(view) -> str | None:
    """What the sweep chart's readout says (its figure's accessible description), or None when hidden."""
    return view.locator(".jp-NotebookJobs-sweepChart .jp-NotebookJobs-chart").get_attribute("aria-description")


def saved_sweeps(page) -> list:
    """The sweeps' views Lab saved in its workspace (the layout restorer's entries)."""
    return page.evaluate("""async (user) => {
        const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || '';
        const r = await fetch(`/user/${user}/lab/api/workspaces/default`,
                              {headers: {'X-XSRFToken': decodeURIComponent(xsrf)}});
        return r.ok ? Object.keys((await r.json()).data ?? {}).filter((k) => k.startsWith('notebook-jobs-sweep:')) : [];
    }""", USER)


def test_each_run_of_a_sweep_has_its_actions_its_chart_reads_out_and_the_view_comes_back(hub, lab):
    page = lab
    lena = hub.user(USER)
    hub.write_workspace(USER, "gated-sweep.ipynb", gated_sweep_notebook())
    gate = Path(f"/tmp/nbj-gate-{uuid.uuid4().hex[:6]}")
    r = lena.post("sweeps", json={"path": "gated-sweep.ipynb", "name": "ui-sweep",
                                  "runs": [{"n": 1}, {"n": 2, "gate": str(gate)}]})
    assert r.status_code == 201, r.text
    sweep_id = r.json()["id"]
    done, live = (run["job_id"] for run in r.json()["runs"])
    assert lena.wait(done)["status"] == "succeeded"
    deadline = time.monotonic() + 90
    while len(reported(lena, live).get("loss", [])) < 4:  # then the live run waits at its gate
        assert time.monotonic() < deadline, lena.get(f"jobs/{live}").json()
        time.sleep(0.3)
    posts = []
    page.on("request", lambda req: req.method == "POST" and "/notebook-jobs/api/" in req.url
            and posts.append(req.url.split("/notebook-jobs/api/")[1].split("?")[0]))

    # the view, from a run's row in the panel
    panel = open_panel(page, hub)
    panel.locator(f'.jp-NotebookJobs-job[data-job-id="{done}"] [data-action="sweep"]').click(timeout=30_000)
    view = page.locator(f'.jp-NotebookJobs-sweep[data-sweep-id="{sweep_id}"]:visible')
    drawing = f'.jp-NotebookJobs-sweep[data-sweep-id="{sweep_id}"] .jp-NotebookJobs-sweepChart svg'
    view.locator('.jp-NotebookJobs-sweepChart[data-lines="2"]').wait_for(timeout=30_000)
    # each run's own buttons: a live one's Cancel, an ended one's Open and Rerun
    assert actions(run_row(view, done)) == ["open", "rerun"]
    assert actions(run_row(view, live)) == ["cancel"]

    # the chart: every line's last value inside the drawing, not cut at its edge
    chart = view.locator(".jp-NotebookJobs-sweepChart .jp-NotebookJobs-chart")
    assert chart.locator(".chart-last").first.text_content() == "-0.0012346"
    assert page.evaluate(CLIPPED_JS, drawing) == []
    # the values under the pointer: the step nearest it, and each run's value there
    points = chart.locator("g.chart-series polyline").first.get_attribute("points").split()
    box = chart.locator("svg").bounding_box()
    width = float(chart.locator("svg").get_attribute("viewBox").split()[2])
    step1 = float(points[1].split(",")[0]) * box["width"] / width
    page.mouse.move(box["x"] + step1 + 3, box["y"] + box["height"] / 2)
    words = f"step 1: n=1: 0.19877, n=2, gate={gate}: 0.39753"
    assert readout(view) == words
    assert chart.locator(".chart-readout").evaluate("(t) => [...t.children].map((s) => s.textContent)") == [
        "step 1", "● n=1: 0.19877", f"● n=2, gate={gate}: 0.39753"]
    assert chart.locator(".chart-hover").get_attribute("visibility") == "visible"
    page.wait_for_timeout(300)
    view.screenshot(path=str(SHOTS / "sweep-readout.png"))
    page.mouse.move(0, 0)
    assert readout(view) is None
    # and from the keyboard: the figure takes the focus, the arrows walk the steps
    chart.focus()
    page.keyboard.press("End")
    assert readout(view).startswith("step 3: n=1: -0.0012346, ")
    page.keyboard.press("ArrowLeft")
    assert readout(view).startswith("step 2: n=1: 0.098765, ")
    page.keyboard.press("Escape")
    assert readout(view) is None

    # a narrower window: the chart is drawn again at its new width (not scaled, its text at its size)
    before = width
    page.set_viewport_size({"width": 1000, "height": 900})
    try:
        page.wait_for_function("""([sel, before]) => { const f = document.querySelector(sel);
            const w = +f.querySelector('svg').getAttribute('viewBox').split(' ')[2];
            return w !== before && w === f.clientWidth; }""",
                               arg=[drawing.replace(" svg", " figure"), before])
        assert page.evaluate(CLIPPED_JS, drawing) == []
    finally:
        page.set_viewport_size({"width": 1400, "height": 900})

    # Cancel on the live run: its job's cancel; the row says so, and offers Open and Rerun
    run_row(view, live).locator('[data-action="cancel"]').click()
    view.locator(f'tbody tr[data-job-id="{live}"][data-status="cancelled"]').wait_for(timeout=30_000)
    assert f"jobs/{live}/cancel" in posts
    assert lena.get(f"jobs/{live}").json()["status"] == "cancelled"
    assert actions(run_row(view, live)) == ["open", "rerun"]

    # Open on the ended run: its executed notebook, in Lab
    run_row(view, done).locator('[data-action="open"]').click()
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=done).wait_for(timeout=30_000)
    page.locator(".jp-NotebookPanel:visible .jp-Cell").first.wait_for(timeout=30_000)
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="Sweep: ui-sweep").click()

    # Rerun on the cancelled one: its job's rerun dialog; the new run takes its place in the sweep
    gate.touch()
    try:
        run_row(view, live).locator('[data-action="rerun"]').click()
        page.locator(".jp-Dialog .jp-NotebookJobs-dialog").wait_for()
        page.locator(ACCEPT).click()
        page.locator(".jp-Dialog").wait_for(state="detached", timeout=30_000)
        assert f"jobs/{live}/rerun" in posts
        page.wait_for_function("(id) => !document.querySelector(`.jp-NotebookJobs-sweep tr[data-job-id='${id}']`)",
                               arg=live, timeout=30_000)
        again = lena.get(f"sweeps/{sweep_id}").json()["runs"][1]
        assert again["rerun_of"] == live
        view.locator(f'tbody tr[data-job-id="{again["job_id"]}"][data-status="succeeded"]').wait_for(timeout=90_000)
    finally:
        gate.unlink()

    # the view is part of the layout Lab restores: after a reload it is there again, with its runs
    deadline = time.monotonic() + 30
    while f"notebook-jobs-sweep:{sweep_id}" not in saved_sweeps(page):
        assert time.monotonic() < deadline, f"Lab did not save the sweep's view: {saved_sweeps(page)}"
        page.wait_for_timeout(500)
    page.reload()
    lab_ready(page)
    view.locator("tbody tr").nth(1).wait_for(timeout=30_000)
    view.locator('.jp-NotebookJobs-sweepChart[data-lines="2"]').wait_for(timeout=30_000)

    # the dark theme (its reload restores the view too): the readout reads against the view
    set_theme(page, "JupyterLab Dark")
    try:
        view.locator('.jp-NotebookJobs-sweepChart[data-lines="2"]').wait_for(timeout=30_000)
        chart.focus()
        page.keyboard.press("Home")
        assert readout(view).startswith("step 0: n=1: 0.29877, ")
        colours = chart.evaluate("""(f) => ({text: getComputedStyle(f.querySelector('.chart-readout')).fill,
            last: getComputedStyle(f.querySelector('.chart-last')).fill,
            view: getComputedStyle(f.closest('.jp-NotebookJobs-sweep')).backgroundColor})""")
        assert min(contrast(colours["text"], colours["view"]), contrast(colours["last"], colours["view"])) >= 4.5, colours
        page.wait_for_timeout(300)
        view.screenshot(path=str(SHOTS / "dark-sweep-readout.png"))
    finally:
        set_theme(page, "JupyterLab Light")
