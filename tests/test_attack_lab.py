"""A hostile Hub user against the Lab extension, in Chromium through the real Hub: the jobs panel's
charts of metrics named with markup and after JavaScript's own object members, the sweep's view of
runs whose parameters and metrics are such names (one run has them, the other not), and the Submit
dialog of a notebook whose parameters are called ``__proto__`` and ``constructor``, and its environment
picker, whose descriptions (the admin's) and packages (an image's ``pip list``) are markup.

The payloads are those of tests/test_attack_pages.py: had one run, ``window.__pwned`` would be set
and an alert opened. Each test asserts neither happened, and that the payloads are on the page as text.
"""

from __future__ import annotations

import re

from tests.hubtest import make_notebook
from tests.test_attack_pages import (  # noqa: F401 (hub: the Hub whose environments' descriptions are markup)
    ENVIRONMENTS, IMG, KEPT, LONG_VALUE, NAME, SCRIPT, SWEEP, hub, metrics_notebook, sweep_notebook)
from tests.test_lab_ui import (  # noqa: F401 (the browser and lab fixtures)
    SHOTS, USER, browser, lab, open_dialog, open_panel, show_panel, wait_status)

NO_MARKUP = ("() => document.querySelectorAll('[onerror], [onload], .jp-NotebookJobs-panel img, "
             ".jp-NotebookJobs-sweep img, .lm-TabBar img').length")


class Watch:
    """What a payload would leave behind in Lab: the canary, an alert, an uncaught error."""

    def __init__(self, page):
        self.page, self.dialogs, self.errors = page, [], []
        self._on_dialog = lambda d: (self.dialogs.append(d.message), d.dismiss())
        self._on_error = lambda exc: self.errors.append(str(exc))
        page.on("dialog", self._on_dialog)
        page.on("pageerror", self._on_error)

    def assert_nothing_ran(self):
        self.page.wait_for_timeout(300)  # an onerror fires once its image failed
        try:
            assert self.page.evaluate("window.__pwned") is None
            assert self.dialogs == [] and self.errors == [], (self.dialogs, self.errors)
            assert self.page.evaluate(NO_MARKUP) == 0
        finally:
            self.page.remove_listener("dialog", self._on_dialog)
            self.page.remove_listener("pageerror", self._on_error)


def test_the_panel_and_the_sweep_view_show_hostile_names_as_text_and_runs_without_a_value_blank(hub, lab):
    page = lab
    lena = hub.user(USER)
    job = lena.submit(metrics_notebook(), name=NAME, parameters={"tag": SCRIPT})
    r = lena.post("sweeps", json={"notebook": sweep_notebook(), "name": SWEEP,
                                  "runs": [{"tag": IMG, "__proto__": 1}, {"tag": LONG_VALUE}]})
    assert r.status_code == 201, r.text
    sweep = r.json()
    first, second = (run["job_id"] for run in sweep["runs"])
    for job_id in (job["id"], first, second):
        assert lena.wait(job_id, timeout=120)["status"] == "succeeded"
    open_panel(page, hub)
    watch = Watch(page)

    # the panel: a chart per metric, each named as reported
    row = wait_status(page, job["id"], "succeeded")
    charts = row.locator(".jp-NotebookJobs-chart")
    page.wait_for_function("(id) => document.querySelectorAll(`.jp-NotebookJobs-job[data-job-id='${id}'] "
                           ".jp-NotebookJobs-chart g[data-points='3']`).length === 5", arg=job["id"])
    drawn = charts.evaluate_all(
        "(cs) => cs.map((c) => [c.dataset.metric, c.querySelector('.chart-title').textContent])")
    assert sorted(drawn) == sorted([name, name] for name in KEPT)
    assert NAME in row.inner_text()

    # the sweep's view, from a run's row
    wait_status(page, first, "succeeded").locator('[data-action="sweep"]').click()
    view = page.locator(f'.jp-NotebookJobs-sweep[data-sweep-id="{sweep["id"]}"]:visible')
    page.wait_for_function("(id) => document.querySelector(`.jp-NotebookJobs-sweep[data-sweep-id='${id}']`)"
                           "?.dataset.status === 'succeeded'", arg=sweep["id"], timeout=60_000)
    view.locator("tbody tr").nth(1).wait_for()
    assert page.locator(".lm-TabBar-tabLabel", has_text=f"Sweep: {SWEEP}").count() == 1  # its tab, named as text
    titles = view.locator("thead th[data-key]").evaluate_all(
        "(ths) => Object.fromEntries(ths.map((th) => [th.dataset.key, th.textContent]))")
    for key, title in (("param:tag", "tag"), ("param:__proto__", "__proto__"), (f"metric:{IMG}", IMG),
                       ("metric:constructor", "constructor"), ("metric:__proto__", "__proto__")):
        assert titles[key] == title, titles

    def cell(job_id, key):
        return view.locator(f'tbody tr[data-job-id="{job_id}"] td[data-key="{key}"]').text_content()

    assert cell(first, "param:tag") == IMG and cell(second, "param:tag") == LONG_VALUE
    for key, value in (("param:__proto__", "1"), ("metric:constructor", "5"), ("metric:__proto__", "7")):
        assert (cell(first, key), cell(second, key)) == (value, ""), key

    def order():
        return view.locator("tbody tr").evaluate_all("(rows) => rows.map((r) => r.dataset.jobId)")

    for key in ("param:__proto__", "metric:constructor", "metric:__proto__"):
        for direction in ("ascending", "descending"):
            view.locator(f'thead th[data-key="{key}"] button').click()
            assert view.locator(f'thead th[data-key="{key}"]').get_attribute("aria-sort") == direction
            assert order() == [first, second], (key, direction)  # the run without a value stays last

    # the chart of the metric named with markup: its title and legend are text
    view.locator(".jp-NotebookJobs-sweepMetric").select_option(IMG)
    view.locator('.jp-NotebookJobs-sweepChart[data-lines="2"]').wait_for(timeout=30_000)
    page.wait_for_function("(m) => document.querySelector('.jp-NotebookJobs-sweep:not(.lm-mod-hidden) "
                           ".jp-NotebookJobs-sweepChart')?.dataset.metric === m", arg=IMG)
    texts = view.locator(".jp-NotebookJobs-sweepChart svg text").all_text_contents()
    assert f"{IMG} of each run" in texts, texts
    assert any(t.startswith(f"tag={IMG}") for t in texts), texts
    assert "tag=" + LONG_VALUE[:55] + "…" in texts, texts  # a run's name is cut at 60 characters
    page.wait_for_timeout(500)
    view.screenshot(path=str(SHOTS / "attack-sweep-view.png"))
    watch.assert_nothing_ran()


def test_the_dialog_shows_and_sends_parameters_named_proto_and_constructor(hub, lab):
    """The dialog shows the notebook's own values (not what every object inherits) and sends them as given."""
    page = lab
    lena = hub.user(USER)
    hub.write_workspace(USER, "proto.ipynb", make_notebook("print(__proto__, constructor)",
                                                           parameters="__proto__ = 0\nconstructor = 'a'"))
    dialog = open_dialog(page, hub, "proto.ipynb")
    watch = Watch(page)
    assert dialog.locator('[name="param-constructor"]').input_value() == "a"
    assert dialog.locator('[name="param-__proto__"]').input_value() == "0"
    dialog.locator('[name="param-__proto__"]').fill("5")
    before = page.locator("#notebook-jobs-panel").get_attribute("data-last-submitted")
    page.locator(".jp-Dialog-button.jp-mod-accept").click()
    page.locator(".jp-Dialog").wait_for(state="detached")
    page.wait_for_function("(before) => { const id = document.getElementById('notebook-jobs-panel')"
                           "?.dataset.lastSubmitted; return id && id !== before; }", arg=before)
    job_id = page.locator("#notebook-jobs-panel").get_attribute("data-last-submitted")
    assert lena.get(f"jobs/{job_id}").json()["parameters"] == {"__proto__": 5}
    watch.assert_nothing_ran()
    show_panel(page, refresh=False)


def test_the_dialogs_environments_and_their_packages_are_text(hub, lab):
    page = lab
    forged = {"name": "<img src=x onerror=window.__pwned=7;alert(7)>", "version": SCRIPT}
    environments = re.compile(r".*/notebook-jobs/api/environments(\?.*)?$")

    def with_package(route):  # a package whose name is markup, as an image's pip list could say
        res = route.fetch()
        answer = res.json()
        answer["environments"][0]["packages"].insert(0, forged)
        route.fulfill(response=res, json=answer)

    page.route(environments, with_package)
    try:
        dialog = open_dialog(page, hub, "greet.ipynb")
        watch = Watch(page)
        page.wait_for_function("() => document.querySelectorAll('select[name=environment] option').length === 2")
        assert dialog.locator('select[name="environment"] option').all_inner_texts() == [
            f"{e['name']} — {e['description']}" for e in ENVIRONMENTS]
        dialog.locator(".jp-NotebookJobs-packages summary").click()
        packages = dialog.locator(".jp-NotebookJobs-packageList")
        page.wait_for_function("() => document.querySelector('.jp-NotebookJobs-packageList').textContent"
                               ".startsWith('<img')", timeout=15_000)
        assert packages.inner_text().splitlines()[0] == f"{forged['name']}=={SCRIPT}"
        assert dialog.locator("img, script, [onerror]").count() == 0
        page.locator(".jp-Dialog-content").screenshot(path=str(SHOTS / "attack-dialog-environments.png"))
        watch.assert_nothing_ran()
        page.keyboard.press("Escape")
    finally:
        page.unroute(environments)
