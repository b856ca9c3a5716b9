"""What a user meets in JupyterLab, through the real Hub in Chromium: a parameter value with a right-to-left
override reorders nothing in the panel's line; a chart's long metric name is cut to its axis (whole in its
tooltip) and its readout sits on the theme's own background, in the dark theme too; a sweep's view deletes the
sweep once the user said so, and closes, its question reading as written around a name stored with an override."""

from __future__ import annotations

from tests.hubtest import make_notebook
from tests.test_attack_pages import CHAR_LEFTS, RTL
from tests.test_cli_text import stored
from tests.test_browser_metrics import GEOMETRY_JS, LONG_NAME
from tests.test_lab_ui import ACCEPT, USER, browser, lab, open_panel, set_theme  # noqa: F401


def test_a_sweeps_view_reads_its_runs_as_written_and_deletes_the_sweep_once_asked(hub, lab):
    page = lab
    lena = hub.user(USER)
    source = f"from notebook_jobs import report\nfor step in range(3):\n    report(step=step, **{{{LONG_NAME!r}: step * n}})"
    nb = make_notebook(source, parameters="label = 'x'\nn = 1")
    r = lena.post("sweeps", json={"notebook": nb, "name": "lab-delete", "runs": [{"label": RTL, "n": 1},
                                                                                  {"label": "b", "n": 2}]})
    assert r.status_code == 201, r.text
    sweep_id, ids = r.json()["id"], [run["job_id"] for run in r.json()["runs"]]
    for job_id in ids:
        assert lena.wait(job_id)["status"] == "succeeded"
    stored(hub, "sweeps", sweep_id, "\u202elab-delete")  # as a row from before names were checked may be

    # the panel's line of parameters: the override is written as an escape, and ", n=1" reads as written
    panel = open_panel(page, hub)
    row = panel.locator(f'.jp-NotebookJobs-job[data-job-id="{ids[0]}"]')
    params = row.locator(".jp-NotebookJobs-params")
    params.wait_for(timeout=30_000)
    assert params.text_content() == 'label="\\u202egpj.exe", n=1'
    after = params.evaluate(CHAR_LEFTS, ", n=1")
    assert after == sorted(after) and min(after) > max(params.evaluate(CHAR_LEFTS, "label="))

    # the sweep's view, in the dark theme: the long name cut to its axis, the readout on the view's background
    set_theme(page, "JupyterLab Dark")
    try:
        panel = open_panel(page, hub)
        panel.locator(f'.jp-NotebookJobs-job[data-job-id="{ids[1]}"] [data-action="sweep"]').click(timeout=30_000)
        view = page.locator(f'.jp-NotebookJobs-sweep[data-sweep-id="{sweep_id}"]:visible')
        view.locator('.jp-NotebookJobs-sweepChart[data-lines="2"]').wait_for(timeout=30_000)
        chart = view.locator(".jp-NotebookJobs-sweepChart .jp-NotebookJobs-chart")
        chart.focus()
        page.keyboard.press("End")
        at = chart.evaluate(GEOMETRY_JS)
        assert at["shown"].endswith("…") and LONG_NAME.startswith(at["shown"][:-1]) and at["title"] == LONG_NAME, at
        assert at["svg"]["top"] <= at["label"]["top"] and at["label"]["bottom"] <= at["svg"]["bottom"], at
        background = view.evaluate("(v) => getComputedStyle(v).backgroundColor")
        assert at["fill"] == background and background != "rgb(255, 255, 255)", (at, background)
        words, back = at["words"], at["back"]
        assert back["left"] < words["left"] and back["right"] > words["right"], at
        assert back["top"] < words["top"] and back["bottom"] > words["bottom"], at
        # the run with the override in the legend: what follows its value reads as written
        legend = view.locator('.chart-legend text:text-matches("gpj")')
        tail = legend.evaluate(CHAR_LEFTS, ", n=1")
        assert tail == sorted(tail), tail

        # Delete sweep: asked first (cancelled: nothing happens), then the sweep is gone and its view closed
        view.locator('[data-action="delete-sweep"]').click()
        dialog = page.locator(".jp-Dialog")
        body = dialog.locator(".jp-Dialog-body")
        assert body.text_content().startswith('Delete "\u2068\u202elab-delete\u2069" with its 2 runs')
        name, rest = body.evaluate(CHAR_LEFTS, "lab-delete"), body.evaluate(CHAR_LEFTS, '" with its 2 runs')
        assert rest == sorted(rest) and max(name) < min(rest), (name, rest)  # the override ends with the name
        dialog.locator(".jp-Dialog-button:not(.jp-mod-accept)").click()
        dialog.wait_for(state="detached")
        assert lena.get(f"sweeps/{sweep_id}").status_code == 200 and view.is_visible()
        view.locator('[data-action="delete-sweep"]').click()
        page.locator(ACCEPT).click()
        view.wait_for(state="detached", timeout=30_000)
        assert lena.get(f"sweeps/{sweep_id}").status_code == 404
        assert [lena.get(f"jobs/{job_id}").status_code for job_id in ids] == [404, 404]
    finally:
        set_theme(page, "JupyterLab Light")
