"""The JupyterLab extension in a real browser, through the real Hub.

Chromium (Playwright) logs in through the Hub's form, the Hub spawns the user's
single-user JupyterLab (with the extension installed in the environment), and the user
submits notebooks with the "Submit as job" button, watches the panel, opens outputs.
Screenshots of the dialog and the panel go to test-output/lab/ (look at them).
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from tests.hubtest import ROOT, make_notebook

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
SHOTS = ROOT / "test-output" / "lab"
USER = "lena"
SUBMIT = '.jp-NotebookPanel-toolbar [data-command="notebook-jobs:submit"]'


def write_notebooks(workspace):
    """The user's files, in the workspace their Lab and the service both see."""
    workspace.mkdir(parents=True, exist_ok=True)
    notebooks = {
        "greet.ipynb": make_notebook("print(f'hello {word}, {times * 2}')", parameters="word = 'world'\ntimes = 1"),
        "broken.ipynb": make_notebook("x = 1", "1 / 0", "print('never')"),
        "slow.ipynb": make_notebook("import time\ntime.sleep(120)"),
        "edited.ipynb": make_notebook("print(rate)", parameters="rate = 1"),
    }
    for name, nb in notebooks.items():
        (workspace / name).write_text(json.dumps(nb))
    (workspace / "script.py").write_text('# %% tags=["parameters"]\nsteps = 3\n\n# %%\nprint(steps)\n')


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module (Playwright's sync API allows one driver per thread)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def lab(hub, browser):
    """A logged-in page on the user's JupyterLab."""
    write_notebooks(hub.data / "users" / USER)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(hub.url + "/hub/login")
    page.fill("#username_input", USER)
    page.fill("#password_input", "x")
    page.click("#login_submit")
    page.wait_for_url(re.compile(r".*/user/[^/]+/lab.*"), timeout=120_000)  # spawn, then Lab
    yield page
    context.close()


def open_notebook(page, hub, name):
    page.goto(f"{hub.url}/user/{USER}/lab/tree/{name}")
    # Lab restores the notebooks opened before: wait until this one is the current tab
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current", has_text=name).wait_for(timeout=90_000)
    page.locator(SUBMIT).locator("visible=true").wait_for(timeout=30_000)


def submit(page, hub, name, fill=None, shot=None):
    """Open a notebook, click Submit as job, fill fields, submit; the job row's locator."""
    open_notebook(page, hub, name)
    page.locator(SUBMIT).locator("visible=true").click()
    dialog = page.locator(".jp-Dialog .jp-NotebookJobs-dialog")
    dialog.wait_for()
    # the service's dry run: what the job will get, and how it was sized
    dialog.locator(".jp-NotebookJobs-proposal").wait_for(timeout=30_000)
    for field, value in (fill or {}).items():
        try:
            dialog.locator(f'[name="{field}"]').fill(value, timeout=15_000)
        except playwright.TimeoutError:
            page.screenshot(path=str(SHOTS / f"timeout-{name}-{field}.png"))
            raise
    if shot:
        page.wait_for_timeout(600)  # the dry run of the edited form
        page.locator(".jp-Dialog-content").screenshot(path=str(SHOTS / shot))
    before = page.locator("#notebook-jobs-panel").get_attribute("data-last-submitted")
    page.locator(".jp-Dialog-button.jp-mod-accept").click()
    page.locator(".jp-Dialog").wait_for(state="detached")
    page.wait_for_function("(before) => { const id = document.getElementById('notebook-jobs-panel')"
                           ".dataset.lastSubmitted; return id && id !== before; }", arg=before)
    job_id = page.locator("#notebook-jobs-panel").get_attribute("data-last-submitted")
    return page.locator(f'.jp-NotebookJobs-job[data-job-id="{job_id}"]')


def wait_status(page, job_id, status, timeout=120_000):
    """The job's row once the panel shows ``status``; on timeout, a screenshot and the panel's text."""
    row = page.locator(f'.jp-NotebookJobs-job[data-job-id="{job_id}"]')
    try:
        page.locator(f'.jp-NotebookJobs-job[data-job-id="{job_id}"][data-status="{status}"]').wait_for(timeout=timeout)
    except playwright.TimeoutError:
        page.screenshot(path=str(SHOTS / f"timeout-{status}.png"))
        raise AssertionError(f"job {job_id} not {status}; panel: {page.locator('#notebook-jobs-panel').inner_text()}")
    return row


def test_submit_change_a_parameter_watch_it_succeed_and_open_the_output(hub, lab):
    page = lab
    row = submit(page, hub, "greet.ipynb", fill={"param-word": "galaxy", "param-times": "21"}, shot="dialog.png")
    job_id = row.get_attribute("data-job-id")
    row = wait_status(page, job_id, "succeeded")  # the panel follows the job live until it ends
    page.get_by_text('Job "greet.ipynb" succeeded').wait_for(timeout=10_000)  # the Lab notification
    assert "cells" in row.locator(".jp-NotebookJobs-cells").inner_text()
    assert 'word="galaxy"' in row.locator(".jp-NotebookJobs-params").inner_text()
    assert "cpu" in row.locator(".jp-NotebookJobs-resources").inner_text()
    page.locator("#notebook-jobs-panel").screenshot(path=str(SHOTS / "panel-succeeded.png"))
    # the executed notebook, copied into the workspace and opened in Lab
    row.locator('[data-action="open"]').click()
    page.wait_for_url(re.compile(r".*job-outputs/.*\.ipynb"), timeout=30_000)
    page.locator(".jp-OutputArea-output", has_text="hello galaxy, 42").wait_for(timeout=30_000)
    assert (hub.data / "users" / USER / "job-outputs").is_dir()
    page.screenshot(path=str(SHOTS / "output-open.png"))


def test_a_bad_parameter_value_is_named_beside_its_field(hub, lab):
    page = lab
    open_notebook(page, hub, "greet.ipynb")
    page.locator(SUBMIT).locator("visible=true").click()
    dialog = page.locator(".jp-Dialog .jp-NotebookJobs-dialog")
    dialog.locator('[name="param-times"]').fill("many")
    error = dialog.locator('.jp-NotebookJobs-fieldError[data-field="times"]')
    page.wait_for_function("document.querySelector('.jp-NotebookJobs-fieldError[data-field=\"times\"]')"
                           ".textContent.includes('whole number')")
    assert error.inner_text() == "must be a whole number"
    # an override past the admin's bounds (which the dry run tells) is named beside its field
    dialog.locator('[name="param-times"]').fill("2")
    dialog.locator('[name="cpu"]').fill("64")
    page.wait_for_function("document.querySelector('.jp-NotebookJobs-fieldError[data-field=\"cpu\"]')"
                           ".textContent.includes(\"must be between 0.25 and 2 (the admin's bounds)\")")
    assert error.inner_text() == ""
    page.locator(".jp-Dialog-content").screenshot(path=str(SHOTS / "dialog-clamped.png"))
    page.locator(".jp-Dialog-button.jp-mod-reject").click()


def test_a_failing_notebook_shows_the_cell_and_the_reason(hub, lab):
    page = lab
    row = submit(page, hub, "broken.ipynb")
    job_id = row.get_attribute("data-job-id")
    failed = wait_status(page, job_id, "failed")
    text = failed.locator(".jp-NotebookJobs-error").inner_text()
    assert "cell_error" in text and "ZeroDivisionError" in text
    assert re.search(r"cell \d+", text), text
    page.locator("#notebook-jobs-panel").screenshot(path=str(SHOTS / "panel-failed.png"))


def test_a_cancelled_job_shows_as_cancelled(hub, lab):
    page = lab
    row = submit(page, hub, "slow.ipynb")
    job_id = row.get_attribute("data-job-id")
    wait_status(page, job_id, "running")
    page.locator(f'.jp-NotebookJobs-job[data-job-id="{job_id}"] [data-action="cancel"]').click()
    wait_status(page, job_id, "cancelled", 60_000)
    page.locator("#notebook-jobs-panel").screenshot(path=str(SHOTS / "panel-cancelled.png"))


def test_unsaved_edits_are_saved_and_sent(hub, lab):
    page = lab
    open_notebook(page, hub, "edited.ipynb")
    editor = page.locator(".jp-NotebookPanel:visible .jp-Cell").first.locator(".cm-content")
    editor.click()
    page.keyboard.press("Control+End")
    page.keyboard.type("\nextra = 5")
    page.locator(SUBMIT).locator("visible=true").click()
    dialog = page.locator(".jp-Dialog .jp-NotebookJobs-dialog")
    assert dialog.locator('[name="param-extra"]').input_value() == "5"  # the cell as it is in the editor
    saved = json.loads((hub.data / "users" / USER / "edited.ipynb").read_text())
    assert "extra = 5" in "".join(saved["cells"][0]["source"])  # saved before anything was sent
    page.locator(".jp-Dialog-button.jp-mod-reject").click()


def test_the_file_browser_offers_submit_for_a_python_script(hub, lab):
    page = lab
    page.goto(f"{hub.url}/user/{USER}/lab")
    item = page.locator('.jp-DirListing-item[data-file-type="python"]', has_text="script.py")
    item.wait_for(timeout=60_000)
    item.click(button="right")
    page.locator('.lm-Menu-item[data-command="notebook-jobs:submit"]').click()
    dialog = page.locator(".jp-Dialog .jp-NotebookJobs-dialog")
    assert dialog.locator('[name="param-steps"]').input_value() == "3"
    dialog.locator(".jp-NotebookJobs-proposal").wait_for(timeout=30_000)  # the service sized the script too
    page.locator(".jp-Dialog-button.jp-mod-reject").click()


def test_a_jobs_log_html_rerun_with_other_parameters_and_delete(hub, lab):
    page = lab
    row = submit(page, hub, "greet.ipynb", fill={"param-word": "first"})
    job_id = row.get_attribute("data-job-id")
    row = wait_status(page, job_id, "succeeded")
    row.locator('[data-action="log"]').click()
    page.locator(".jp-NotebookJobs-log:visible").wait_for()
    row.locator('[data-action="html"]').click()
    frame = page.frame_locator(".jp-NotebookJobs-html:visible")
    frame.get_by_text("hello first, 2").wait_for(timeout=30_000)  # nbconvert's render, through the server
    # rerun: the dialog starts from the job's own parameters
    row.locator('[data-action="rerun"]').click()
    word = page.locator('.jp-Dialog [name="param-word"]')
    assert word.input_value() == "first"
    word.fill("second")
    page.locator(".jp-Dialog-button.jp-mod-accept").click()
    page.wait_for_function("(before) => document.getElementById('notebook-jobs-panel').dataset.lastSubmitted !== before",
                           arg=job_id)
    rerun_id = page.locator("#notebook-jobs-panel").get_attribute("data-last-submitted")
    rerun = wait_status(page, rerun_id, "succeeded")
    assert 'word="second"' in rerun.locator(".jp-NotebookJobs-params").inner_text()
    assert hub.user(USER).get(f"jobs/{rerun_id}").json()["rerun_of"] == job_id  # the service's own rerun
    # delete, after a confirmation
    row.locator('[data-action="delete"]').click()
    page.locator(".jp-Dialog-button.jp-mod-warn").click()
    row.wait_for(state="detached", timeout=10_000)
    assert hub.user(USER).get(f"jobs/{job_id}").status_code == 404


def test_a_service_that_is_down_is_a_message_in_the_panel(tmp_path, browser):
    """A JupyterLab whose service does not answer: the panel says so, it does not break."""
    from tests.hubtest import free_port
    from tests.test_lab_server import LAB_TOKEN, start_jupyter

    proc, url, _ = start_jupyter(tmp_path, f"http://127.0.0.1:{free_port()}/services/notebook-jobs/")
    try:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.goto(f"{url}/lab?token={LAB_TOKEN}")
        page.locator('.jp-SideBar [data-id="notebook-jobs-panel"]').click(timeout=90_000)
        banner = page.locator(".jp-NotebookJobs-banner.jp-mod-error")
        banner.wait_for(timeout=30_000)
        assert banner.inner_text().startswith("The notebook-jobs service is not answering")
        page.locator("#notebook-jobs-panel").screenshot(path=str(SHOTS / "panel-service-down.png"))
        context.close()
    finally:
        proc.terminate()
        proc.wait(10)
