"""A sweep in a real browser: submitted from the form's sweep mode, then its page -- a row per run, sorting,
the best run marked for a metric picked, the overlay chart with one line per run -- in light and dark.

Screenshots land in test-output/pages/ (sweep-light.png, sweep-dark.png).
"""

import json

from tests.browser import browser, logged_in, shot  # noqa: F401
from tests.hubtest import SERVICE
from tests.test_sweeps import TRAINING

ROWS = "#sweep-runs tbody tr[data-job-id]"
#: a name that would run script if a page put it in as HTML
NAME = "<img src=x onerror=window.__xss=1> tune"


def column(page, key):
    return page.locator(f"{ROWS} td[data-key='{key}']").all_inner_texts()


def test_a_sweep_from_the_form_and_its_page_of_sortable_runs_best_run_and_overlay(hub, browser, tmp_path):
    nb = tmp_path / "tune.ipynb"
    nb.write_text(json.dumps(TRAINING))
    page, console = logged_in(hub, browser, "dave")
    page.goto(hub.url + SERVICE)
    page.click("label[for=source-upload]")
    page.set_input_files("#file", str(nb))
    page.check("#sweep-mode")  # (a number's field then takes several, comma-separated)
    page.fill("#parameter-fields-lr", "0.1, 0.2, 0.5")  # (the dry run's answer built the fields)
    page.fill("#name", NAME)
    page.fill("#parameter-fields-depth", "1, 2")
    page.wait_for_function("document.getElementById('sizing').textContent.startsWith('A sweep of 6 jobs')")
    assert page.locator("#submit-button").inner_text() == "Run sweep"
    page.click("#submit-button")
    page.wait_for_url("**/sweeps/*")
    sweep_id = page.url.rstrip("/").split("/")[-1]
    assert page.locator("h1").inner_text().startswith(NAME)  # as text, never as markup
    page.wait_for_function("['failed', 'succeeded'].includes(document.getElementById('sweep-status').textContent)",
                           timeout=120_000)
    page.wait_for_function("document.querySelectorAll('#sweep-runs tbody tr[data-job-id]').length === 6")
    api = page.request.get(hub.url + SERVICE + f"api/sweeps/{sweep_id}?metric=loss&mode=min").json()
    assert page.locator(ROWS).evaluate_all("(rows) => rows.map((r) => r.dataset.jobId)") == [
        run["job_id"] for run in api["runs"]]
    assert column(page, "status") == [run["status"] for run in api["runs"]]

    # the best run by the metric picked, and an overlay of that metric's series: one line per run
    page.select_option("#sweep-metric", "loss")
    page.wait_for_function("document.getElementById('sweep-chart').dataset.lines === '6'")
    best = page.locator(f"{ROWS}.sweep-best-run")
    assert best.count() == 1 and best.get_attribute("data-job-id") == api["best"]["job_id"]
    assert "best: lr=0.1, depth=1" in page.locator("#sweep-best").inner_text()
    lines = page.locator("#sweep-chart svg g.chart-series polyline")
    assert lines.count() == 6
    names = page.locator("#sweep-chart svg g.chart-series[data-name]").evaluate_all("(gs) => gs.map((g) => g.dataset.name)")
    assert sorted(names) == sorted(f"lr={r['parameters']['lr']}, depth={r['parameters']['depth']}" for r in api["runs"])
    # every run's name in the legend is inside the chart (the legend takes as many rows as it needs)
    clipped = page.evaluate("""() => {
        const svg = document.querySelector('#sweep-chart svg'), box = svg.getBoundingClientRect();
        return [...svg.querySelectorAll('.chart-legend text')].filter((t) => {
            const r = t.getBoundingClientRect(); return r.right > box.right + 1 || r.left < box.left; }).length; }""")
    legend = page.locator("#sweep-chart svg .chart-legend text")
    assert legend.count() == 6 and clipped == 0
    page.select_option("#sweep-mode", "max")
    page.wait_for_function("(id) => document.querySelector('#sweep-runs tr.sweep-best-run')?.dataset.jobId !== id",
                           arg=api["best"]["job_id"])
    assert "best: lr=0.5, depth=1" in page.locator("#sweep-best").inner_text()  # (not the failed 0.5, 2)
    shot(page, "sweep-light")

    # sorting: by a parameter, then the other way; by the metric, its values in order
    page.click("#sweep-runs th[data-key='param:lr'] button")
    assert column(page, "param:lr") == ["0.1", "0.1", "0.2", "0.2", "0.5", "0.5"]
    assert page.locator("#sweep-runs th[data-key='param:lr']").get_attribute("aria-sort") == "ascending"
    page.click("#sweep-runs th[data-key='param:lr'] button")
    assert column(page, "param:lr") == ["0.5", "0.5", "0.2", "0.2", "0.1", "0.1"]
    page.click("#sweep-runs th[data-key='metric:loss'] button")
    losses = [float(v) for v in column(page, "metric:loss")]
    assert losses == sorted(losses) and len(losses) == 6

    # one run's Rerun: its new job takes its row; the sweep is live again until it ends
    assert page.locator("#sweep-cancel").is_disabled()
    first = api["runs"][0]["job_id"]
    page.click(f"#sweep-runs tr[data-job-id='{first}'] button.run-rerun")
    page.wait_for_function("(id) => !document.querySelector(`#sweep-runs tr[data-job-id='${id}']`)", arg=first)
    assert page.locator(ROWS).count() == 6
    page.wait_for_function("document.getElementById('sweep-status').textContent === 'failed'", timeout=60_000)
    again = page.request.get(hub.url + SERVICE + f"api/sweeps/{sweep_id}").json()["runs"]
    assert again[0]["rerun_of"] == first and again[0]["status"] == "succeeded"  # (in its run's place)

    # each run links to its job, whose page and the job list link back to the sweep
    page.click(f"{ROWS}:first-child td[data-key='order'] a")
    page.wait_for_url("**/jobs/*")
    assert page.locator("#job-sweep").get_attribute("href").endswith(f"/sweeps/{sweep_id}")
    page.goto(hub.url + SERVICE)
    page.wait_for_function("document.querySelectorAll('#jobs-table a.job-sweep').length >= 6")
    assert page.evaluate("window.__xss") is None
    assert console.errors == []

    dark, dark_console = logged_in(hub, browser, "dave", color_scheme="dark")
    dark.goto(hub.url + SERVICE + f"sweeps/{sweep_id}?metric=loss")
    dark.wait_for_function("document.getElementById('sweep-chart').dataset.lines === '6'")
    shot(dark, "sweep-dark")
    assert dark_console.errors == []


def test_a_sweeps_page_opens_each_run_and_deletes_the_sweep_once_asked(hub, browser):
    erin = hub.user("erin")
    made = []
    for name in ("kept, then deleted", "deleted elsewhere"):
        r = erin.post("sweeps", json={"notebook": TRAINING, "name": name, "runs": [{"lr": 0.1}, {"lr": 0.2}]})
        assert r.status_code == 201, r.text
        made.append((r.json()["id"], [run["job_id"] for run in r.json()["runs"]]))
    for _sweep, ids in made:
        for job_id in ids:
            assert erin.wait(job_id)["status"] == "succeeded"
    (sweep_id, ids), (other_id, _) = made
    page, console = logged_in(hub, browser, "erin")
    page.goto(hub.url + SERVICE + f"sweeps/{sweep_id}")
    page.wait_for_function("document.querySelectorAll('#sweep-runs tbody tr[data-job-id]').length === 2")

    # each run's Open: its job's page
    opens = page.locator(f"{ROWS} a.run-open")
    assert [a.get_attribute("href") for a in opens.all()] == [f"{SERVICE}jobs/{job_id}" for job_id in ids]
    opens.nth(1).click()
    page.wait_for_url(f"**/jobs/{ids[1]}")
    page.go_back()
    page.wait_for_function("document.querySelectorAll('#sweep-runs tbody tr[data-job-id]').length === 2")

    # Delete asks first: dismissed, nothing is deleted
    asked = []

    def answer(accept):
        def on_dialog(dialog):
            asked.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()
        page.once("dialog", on_dialog)

    answer(False)
    page.click("#sweep-delete")
    assert asked == ["Delete this sweep with its 2 runs and their outputs? Runs still going are cancelled first. "
                     "This cannot be undone."]
    page.wait_for_timeout(300)
    assert erin.get(f"sweeps/{sweep_id}").status_code == 200 and "/sweeps/" in page.url
    # accepted: the sweep and its runs are gone, and the page leaves for the job list
    answer(True)
    page.click("#sweep-delete")
    page.wait_for_url(hub.url + SERVICE)
    assert erin.get(f"sweeps/{sweep_id}").status_code == 404
    assert [erin.get(f"jobs/{job_id}").status_code for job_id in ids] == [404, 404]

    # a refusal (here the sweep deleted elsewhere meanwhile; a run still stopping is a 409) stays, in words
    page.goto(hub.url + SERVICE + f"sweeps/{other_id}")
    page.wait_for_function("document.querySelectorAll('#sweep-runs tbody tr[data-job-id]').length === 2")
    assert erin.delete(f"sweeps/{other_id}").status_code == 204
    answer(True)
    page.click("#sweep-delete")
    page.wait_for_function("document.getElementById('sweep-message').textContent !== ''")
    assert page.locator("#sweep-message").inner_text() == f"no sweep {other_id}"
    assert page.url.endswith(f"/sweeps/{other_id}") and page.locator("#sweep-delete").is_enabled()
    assert len(console.errors) == 1 and "responded with a status of 404" in console.errors[0]  # (the refused DELETE)
