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
import time

import pytest

from tests.hubtest import ROOT, make_notebook

playwright = pytest.importorskip("playwright.sync_api")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
SHOTS = ROOT / "test-output" / "lab"
USER = "lena"
SUBMIT = '.jp-NotebookPanel-toolbar [data-command="notebook-jobs:submit"]'
ACCEPT = ".jp-Dialog-button.jp-mod-accept"
EVENTS_URL = re.compile(r"/user/[^/]+/notebook-jobs/api/jobs/(?P<id>[^/?]+)/events(?:\?|$)")
#: (job id, status) of every answer the Lab page got for a job's event stream
EVENT_RESPONSES: list = []


def write_notebooks(workspace):
    """The user's files, in the workspace their Lab and the service both see."""
    workspace.mkdir(parents=True, exist_ok=True)
    notebooks = {
        "greet.ipynb": make_notebook("print(f'hello {word}, {times * 2}')", parameters="word = 'world'\ntimes = 1"),
        "broken.ipynb": make_notebook("x = 1", "1 / 0", "print('never')"),
        "slow.ipynb": make_notebook("import time\ntime.sleep(120)"),
        "edited.ipynb": make_notebook("print(rate)", parameters="rate = 1"),
        # a run cancelled in its second cell: the first one's output is kept, partial
        "partial.ipynb": make_notebook("print('first part')", "import time\ntime.sleep(120)"),
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

    def on_response(response):
        m = EVENTS_URL.search(response.url)
        if m:
            EVENT_RESPONSES.append((m["id"], response.status))

    page.on("response", on_response)
    page.goto(hub.url + "/hub/login")
    page.fill("#username_input", USER)
    page.fill("#password_input", "x")
    page.click("#login_submit")
    page.wait_for_url(re.compile(r".*/user/[^/]+/lab.*"), timeout=120_000)  # spawn, then Lab
    yield page
    context.close()


def open_notebook(page, hub, name):
    page.goto(f"{hub.url}/user/{USER}/lab/tree/{name}")
    current = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current", has_text=name)
    current.wait_for(timeout=90_000)
    # Lab restores the notebooks of the last session too, and may make one of them current after
    # this one opened (the toolbar's Submit then acts on that one, as a user's click on a tab
    # would choose): let the restored layout settle, then choose this notebook's tab, as a user would
    page.locator(".jp-NotebookPanel:visible .jp-Cell").first.wait_for(timeout=30_000)
    page.wait_for_timeout(1000)
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=name).first.click()
    current.wait_for(timeout=10_000)
    page.locator(SUBMIT).locator("visible=true").wait_for(timeout=30_000)


def lab_ready(page):
    """Wait until Lab has restored its layout (its splash screen goes then): a click on a sidebar
    tab before that may be undone by the restore."""
    page.locator("#jupyterlab-splash").wait_for(state="detached", timeout=90_000)


def show_panel(page, refresh=True):
    """The Notebook jobs panel, shown (opened unless the restored layout shows it already), its
    list refreshed; the panel's locator."""
    tab = page.locator('.jp-SideBar [data-id="notebook-jobs-panel"]')
    tab.wait_for(timeout=90_000)
    lab_ready(page)
    panel = page.locator("#notebook-jobs-panel")
    if not panel.is_visible():  # (a click on the open panel's tab would close it)
        tab.click()
    if refresh:
        page.locator(".jp-NotebookJobs-refresh").click()
    return panel


def open_panel(page, hub, refresh=True):
    """A fresh Lab page with the Notebook jobs panel shown (see show_panel)."""
    page.goto(f"{hub.url}/user/{USER}/lab")
    return show_panel(page, refresh)


def submit(page, hub, name, fill=None, shot=None):
    """Open a notebook, click Submit as job, fill fields, submit; the job row's locator."""
    open_notebook(page, hub, name)
    return submit_shown(page, name, fill, shot)


def submit_shown(page, name, fill=None, shot=None):
    """Click Submit as job on the notebook shown, fill fields, submit; the job row's locator."""
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


def assert_followed_over_the_event_stream(page, job_id):
    """The panel got the job's progress and its end over the event stream (not by polling), and
    no answer to an events URL was a refusal (under the Hub, a missing _xsrf answers 403)."""
    row = page.locator(f'.jp-NotebookJobs-job[data-job-id="{job_id}"]')
    try:
        ended = f'.jp-NotebookJobs-job[data-job-id="{job_id}"][data-stream-status="succeeded"]'
        page.locator(ended).wait_for(timeout=5_000)
    except playwright.TimeoutError:
        pass
    attrs = {k: row.get_attribute(k) for k in ("data-updates", "data-stream-events", "data-stream-status",
                                              "data-stream-cells")}
    refused = [(j, status) for j, status in EVENT_RESPONSES if status >= 400]
    assert not refused, f"event streams refused: {refused}; row: {attrs}"
    assert attrs["data-updates"] == "events", attrs  # never fell back to polling
    assert attrs["data-stream-status"] == "succeeded", attrs  # the end came over the stream
    assert int(attrs["data-stream-cells"] or 0) >= 1, attrs  # and per-cell progress too
    assert (job_id, 200) in EVENT_RESPONSES


def assert_isolated_frame(iframe):
    """The panel's HTML view: a sandboxed frame whose scripts get an opaque origin, never the
    Lab page's (allow-scripts with allow-same-origin could lift the sandbox off itself)."""
    sandbox = iframe.get_attribute("sandbox")
    assert sandbox is not None, "the HTML view's frame is not sandboxed"
    tokens = set(sandbox.split())
    assert "allow-same-origin" not in tokens, tokens
    assert iframe.get_attribute("src") is None  # srcdoc: no URL of the server is framed
    assert iframe.element_handle().content_frame().evaluate("() => window.origin") == "null"


def test_submit_change_a_parameter_watch_it_succeed_and_open_the_output(hub, lab):
    page = lab
    row = submit(page, hub, "greet.ipynb", fill={"param-word": "galaxy", "param-times": "21"}, shot="dialog.png")
    job_id = row.get_attribute("data-job-id")
    row = wait_status(page, job_id, "succeeded")  # the panel follows the job live until it ends
    assert_followed_over_the_event_stream(page, job_id)
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
    assert "ZeroDivisionError" in text and "cell_error" not in text, text  # words, not the raw code
    job = hub.user(USER).get(f"jobs/{job_id}").json()
    if job["error"].get("summary"):  # the service's own words for the reason
        assert text.startswith(job["error"]["summary"]), (text, job["error"])
    else:
        assert text.startswith("A cell raised an error"), text
    assert re.search(r"cell \d+", text), text
    assert failed.locator('[data-action="open"]').is_enabled()  # the notebook ran to the failing cell
    page.locator("#notebook-jobs-panel").screenshot(path=str(SHOTS / "panel-failed.png"))


def test_a_cancelled_job_says_who_cancelled_it_and_offers_its_partial_output(hub, lab):
    """A job cancelled in its second cell: the row says who cancelled it in words (never a raw
    code), and offers what the service keeps of it as the service says (``has_output``/``outputs``),
    marked partial. From a service that does not say yet, the old rule: no output."""
    page = lab
    row = submit(page, hub, "partial.ipynb")
    job_id = row.get_attribute("data-job-id")
    wait_status(page, job_id, "running")
    page.wait_for_function("(id) => (document.querySelector(`.jp-NotebookJobs-job[data-job-id=\"${id}\"] "
                           ".jp-NotebookJobs-cells`)?.textContent || '').startsWith('1/2')", arg=job_id, timeout=60_000)
    page.locator(f'.jp-NotebookJobs-job[data-job-id="{job_id}"] [data-action="cancel"]').click()
    row = wait_status(page, job_id, "cancelled", 60_000)
    job = hub.user(USER).wait(job_id)
    page.locator(".jp-NotebookJobs-refresh").click()  # the list's model of the job, as well as the events'
    page.wait_for_timeout(1000)
    text = row.locator(".jp-NotebookJobs-error").inner_text()
    assert not re.match(r"^\s*(cancelled|error|cell_error)\s*:", text), text  # no raw reason code in front
    if "cancelled_by" in job:
        assert job["cancelled_by"] == USER, job
        assert text.startswith(f"Cancelled by {USER}"), text
    if (job.get("error") or {}).get("summary"):
        assert job["error"]["summary"] in text or text.startswith("Cancelled by"), (text, job["error"])
    open_button, html_button = row.locator('[data-action="open"]'), row.locator('[data-action="html"]')
    download = row.locator('[data-action="download"]')
    if "has_output" in job or "outputs" in job:
        outputs = job.get("outputs") or (["ipynb"] if job.get("has_output") else [])
        assert open_button.is_enabled() == ("ipynb" in outputs), (job, outputs)
        assert download.is_enabled() == ("ipynb" in outputs)
        if html_button.count():
            assert html_button.is_enabled() == ("html" in outputs)
        partial = row.locator(".jp-NotebookJobs-partial")
        assert partial.count() == (1 if job.get("partial") and outputs else 0)
        page.locator("#notebook-jobs-panel").screenshot(path=str(SHOTS / "panel-cancelled.png"))
        if "ipynb" in outputs:
            open_button.click()  # the notebook as far as it ran
            page.locator(".jp-OutputArea-output", has_text="first part").wait_for(timeout=30_000)
    else:  # a service without the fields: the old guess (a cancelled run has no output)
        assert open_button.is_disabled() and download.is_disabled()
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
    assert_isolated_frame(page.locator(".jp-NotebookJobs-html:visible"))
    # rerun: the dialog starts from the job's own parameters, and (where the service sizes a
    # rerun ahead of it) from the would-be job's memory and time limit, with the reason in words
    user = hub.user(USER)
    probe = user.post(f"jobs/{job_id}/rerun?dry_run=1", json={"timeout": 600})  # an older service refuses the field
    sized = probe.status_code == 200 and probe.json().get("dry_run") is True
    reruns = []
    page.on("request", lambda r: reruns.append(r) if re.search(r"/notebook-jobs/api/jobs/[^/?]+/rerun", r.url)
            and "dry_run" not in r.url and r.method == "POST" else None)
    row.locator('[data-action="rerun"]').click()
    word = page.locator('.jp-Dialog [name="param-word"]')
    assert word.input_value() == "first"
    memory = page.locator('.jp-Dialog .jp-NotebookJobs-rerunResources [name="memory"]')
    if sized:  # (asked again without the probe's field: what the dialog's own dry run gets)
        would_be = user.post(f"jobs/{job_id}/rerun?dry_run=1", json={}).json()["resources"]
        memory.wait_for(timeout=15_000)
        assert float(memory.input_value()) * 2**30 == pytest.approx(would_be["allocated"]["memory"], rel=0.01)
        assert page.locator('.jp-Dialog [name="timeout"]').input_value()
        if would_be.get("explanation"):
            assert would_be["explanation"] in page.locator(".jp-Dialog .jp-NotebookJobs-explanation").inner_text()
        memory.fill("300MB")
    else:  # no sizing to offer: parameters only, and the dialog still works
        page.wait_for_timeout(1500)
        assert memory.count() == 0
    page.locator(".jp-Dialog-content").screenshot(path=str(SHOTS / "dialog-rerun.png"))
    word.fill("second")
    page.locator(".jp-Dialog-button.jp-mod-accept").click()
    page.wait_for_function("(before) => document.getElementById('notebook-jobs-panel').dataset.lastSubmitted !== before",
                           arg=job_id)
    rerun_id = page.locator("#notebook-jobs-panel").get_attribute("data-last-submitted")
    rerun = wait_status(page, rerun_id, "succeeded")
    assert 'word="second"' in rerun.locator(".jp-NotebookJobs-params").inner_text()
    rerun_job = hub.user(USER).get(f"jobs/{rerun_id}").json()
    assert rerun_job["rerun_of"] == job_id  # the service's own rerun
    assert reruns, "no rerun request seen"
    sent = json.loads(reruns[-1].post_data)
    if sized:  # only what the user changed: memory as typed; the time limit untouched is not sent
        assert sent == {"parameters": {"word": "second"}, "resources": {"memory": "300MB"}}, sent
        assert rerun_job["resources"]["requested"]["memory"] == 300 * 2**20
    else:
        assert sent == {"parameters": {"word": "second"}}, sent
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


def test_scripts_in_a_jobs_outputs_never_run_on_the_hubs_origin(hub, lab):
    """A job whose renders carry scripts (an HTML output, raw HTML in markdown), opened as the
    logged-in user at the Lab server's URLs on the Hub's origin: none of them runs. A control
    shows the same HTML, served without the protections, does run them (so the checks can see it)."""
    from tests.test_lab_server import script_notebook

    user = hub.user(USER)
    job = user.submit(script_notebook(), "report.ipynb", output_formats=["html", "md"])
    assert user.wait(job["id"])["status"] == "succeeded"
    base = f"{hub.url}/user/{USER}/notebook-jobs/api/jobs/{job['id']}/"
    page = lab.context.new_page()  # the user's Hub and Lab login
    seen = {"console": [], "requests": []}
    page.on("console", lambda m: seen["console"].append(m.text))
    page.on("request", lambda r: seen["requests"].append(r.url))
    # nothing leaves this machine (nbconvert's template asks CDNs for MathJax and require.js)
    page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())

    def ran() -> list:
        return ([f"title {page.title()!r}"] if page.title() == "XSS" else []) + \
            [f"console {t}" for t in seen["console"] if "XSS-RAN" in t] + \
            [f"request {u}" for u in seen["requests"] if "xss=1" in u]

    def open_(url, shot):
        seen["console"].clear()
        seen["requests"].clear()
        try:
            response = page.goto(url, wait_until="load")
        except playwright.Error as e:  # shown as a download, not a page: nothing of it runs either
            assert "Download is starting" in str(e), e
            response = None
        page.wait_for_timeout(1000)  # time for a script's fetch
        page.screenshot(path=str(SHOTS / shot))
        return response

    # the control: the HTML render as it is, on the same origin, without the protections
    html = user.get(f"jobs/{job['id']}/output?format=html").text
    control = f"{hub.url}/user/{USER}/notebook-jobs/unprotected-control"
    page.route(control, lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    open_(control, "user-content-control.png")
    assert len(ran()) >= 3, ran()  # title, console and fetch: the payload works and is seen
    page.goto("about:blank")

    for route, name in (("output?format=html", "html"), ("output?format=md", "md"), ("input", "input"),
                        ("output?format=ipynb", "ipynb")):
        response = open_(base + route, f"user-content-{name}.png")
        assert not ran(), (route, ran())
        if response is not None:
            assert response.status == 200, (route, response.status)
            csp = response.headers.get("content-security-policy", "")
            assert "sandbox" in re.split(r"[;,\s]+", csp), (route, csp)
            assert response.headers.get("x-content-type-options") == "nosniff", route
    page.close()

    # the Lab panel's own HTML view of it: scripts run only in the frame's opaque origin
    page = lab
    title = page.title()
    open_panel(page, hub)
    row = wait_status(page, job["id"], "succeeded", 30_000)
    row.locator('[data-action="html"]').click()
    iframe = page.locator(".jp-NotebookJobs-html:visible")
    page.frame_locator(".jp-NotebookJobs-html:visible").get_by_text("shown").first.wait_for(timeout=30_000)
    assert_isolated_frame(iframe)
    page.wait_for_timeout(1000)
    assert "XSS" not in page.title(), (title, page.title())  # the frame could not reach the Lab page
    page.screenshot(path=str(SHOTS / "user-content-lab-view.png"))


def open_dialog(page, hub, name):
    """The Submit as job dialog of a notebook, once the service's dry run has answered."""
    open_notebook(page, hub, name)
    page.locator(SUBMIT).locator("visible=true").click()
    dialog = page.locator(".jp-Dialog .jp-NotebookJobs-dialog")
    dialog.locator(".jp-NotebookJobs-proposal").wait_for(timeout=30_000)
    return dialog


def field_error(page, field: str, includes: str, timeout=15_000):
    """Wait until the error beside ``field`` includes ``includes`` ('' waits for no error)."""
    sel = f'.jp-NotebookJobs-fieldError[data-field="{field}"]'
    js = ("([sel, text]) => { const t = document.querySelector(sel)?.textContent ?? ''; "
          "return text ? t.includes(text) : t === ''; }")
    page.wait_for_function(js, arg=[sel, includes], timeout=timeout)


def test_submit_follows_the_errors_shown_and_memory_takes_the_apis_sizes(hub, lab):
    """Submit is disabled exactly while an error shows (the form's own, or the service's answer
    to its dry run), Enter cannot submit past one, and memory is sent as typed (256MB, 1.5GiB …),
    the service's answer judging it; sizes are said in GiB/MiB, as the service's pages say them."""
    page = lab
    dialog = open_dialog(page, hub, "greet.ipynb")
    accept = page.locator(ACCEPT)
    times = dialog.locator('[name="param-times"]')
    times.fill("many")
    field_error(page, "times", "whole number")
    page.wait_for_timeout(800)  # past the dry run's wait: nothing re-enables Submit behind the error
    assert accept.is_disabled()
    # Enter with the error showing: no submit, no second dialog stuck on "Asking the service…"
    times.press("Enter")
    page.wait_for_timeout(700)
    assert page.locator(".jp-Dialog").count() == 1
    assert dialog.locator('.jp-NotebookJobs-fieldError[data-field="times"]').inner_text() == "must be a whole number"
    assert "Asking the service" not in dialog.locator(".jp-NotebookJobs-sizing").inner_text()
    times.fill("2")  # fixed: Submit is back at once, not one keystroke later
    page.wait_for_function("(sel) => document.querySelector(sel) && !document.querySelector(sel).disabled", arg=ACCEPT,
                           timeout=5_000)
    field_error(page, "times", "")

    memory = dialog.locator('[name="memory"]')
    label = dialog.locator('.jp-NotebookJobs-row[data-field="memory"] .jp-NotebookJobs-label').inner_text()
    assert "GiB" in label and not re.search(r"\bGB\b", label), label
    memory.fill("lots")  # the service's verdict, beside the field, holds Submit back too
    field_error(page, "memory", "is not a size")
    page.wait_for_timeout(300)
    assert accept.is_disabled()
    memory.fill("1.5GiB")
    page.locator(".jp-NotebookJobs-proposal", has_text="1.5 GiB").wait_for(timeout=15_000)
    field_error(page, "memory", "")
    memory.fill("256MB")  # what was refused as "not a positive number of GB"
    page.locator(".jp-NotebookJobs-proposal", has_text="256 MiB").wait_for(timeout=15_000)
    field_error(page, "memory", "")
    assert accept.is_enabled()
    sizing = dialog.locator(".jp-NotebookJobs-sizing").inner_text()
    assert not re.search(r"\b[KMGT]B\b", sizing), sizing  # binary units, named as such
    page.locator(".jp-Dialog-content").screenshot(path=str(SHOTS / "dialog-memory.png"))
    before = page.locator("#notebook-jobs-panel").get_attribute("data-last-submitted")
    accept.click()
    page.locator(".jp-Dialog").wait_for(state="detached")
    page.wait_for_function("(before) => { const id = document.getElementById('notebook-jobs-panel')"
                           ".dataset.lastSubmitted; return id && id !== before; }", arg=before)
    job_id = page.locator("#notebook-jobs-panel").get_attribute("data-last-submitted")
    job = hub.user(USER).get(f"jobs/{job_id}").json()
    assert job["resources"]["requested"]["memory"] == 256 * 2**20, job["resources"]
    assert job["parameters"] == {"times": 2}
    row = wait_status(page, job_id, "succeeded")
    assert not re.search(r"\b[KMGT]B\b", row.locator(".jp-NotebookJobs-resources").inner_text())


def test_submitting_a_notebook_deleted_since_it_was_listed_says_so_in_a_dialog(hub, lab):
    """The file browser still lists a notebook deleted meanwhile: "Submit as job" on it is
    refused in front of the user (a dialog that stays until dismissed), not only in the bell."""
    page = lab
    ghost = hub.data / "users" / USER / "ghost.ipynb"
    ghost.write_text(json.dumps(make_notebook("print(1)")))
    page.goto(f"{hub.url}/user/{USER}/lab")
    item = page.locator(".jp-DirListing-item", has_text="ghost.ipynb")
    item.wait_for(timeout=60_000)
    ghost.unlink()
    item.click(button="right")
    page.locator('.lm-Menu-item[data-command="notebook-jobs:submit"]').click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for(timeout=15_000)
    page.wait_for_timeout(6000)  # longer than a toast's autoClose: it is still there
    assert dialog.is_visible()
    text = dialog.inner_text()
    assert "ghost.ipynb" in text and "Cannot read" in text, text
    assert page.locator(".jp-NotebookJobs-dialog").count() == 0  # not the submit form
    page.screenshot(path=str(SHOTS / "deleted-notebook.png"))
    dialog.locator(".jp-Dialog-button").last.click()
    dialog.wait_for(state="detached")


def kernels(page) -> list:
    """The ids of the kernels of the user's Lab server, asked by the page (its cookie and XSRF token)."""
    return page.evaluate("""async (user) => {
        const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || '';
        const r = await fetch(`/user/${user}/api/kernels`, {headers: {'X-XSRFToken': decodeURIComponent(xsrf)}});
        return (await r.json()).map(k => k.id);
    }""", USER)


def test_opening_outputs_starts_no_kernel_and_leaves_them_saved(hub, lab):
    """Open on a job's row copies its executed notebook into job-outputs/ and opens it to read:
    no kernel is started (three opens, no new kernel) and the copy is not marked unsaved."""
    page = lab
    user = hub.user(USER)
    jobs = [user.submit(make_notebook(f"print('output {i}')"), f"out{i}.ipynb") for i in range(3)]
    for job in jobs:
        assert user.wait(job["id"])["status"] == "succeeded"
    open_panel(page, hub)
    before = set(kernels(page))
    for i, job in enumerate(jobs):
        row = wait_status(page, job["id"], "succeeded", 30_000)
        row.locator('[data-action="open"]').click()
        current = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current", has_text=f"out{i}-")
        current.wait_for(timeout=30_000)
        page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output", has_text=f"output {i}").wait_for(timeout=30_000)
    page.wait_for_timeout(3000)  # a kernel would have started by now; an autosave-worthy change been made
    assert set(kernels(page)) - before == set(), "opening outputs started kernels"
    dirty = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-dirty", has_text="out")
    assert dirty.count() == 0, [t.inner_text() for t in dirty.all()]
    page.screenshot(path=str(SHOTS / "outputs-open-no-kernel.png"))
    # a reload: Lab restores the open tabs by itself, and starts no kernel for them either
    page.goto(f"{hub.url}/user/{USER}/lab")
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="out2-").wait_for(timeout=90_000)
    page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output").first.wait_for(timeout=30_000)
    page.wait_for_timeout(3000)
    assert set(kernels(page)) - before == set(), "restoring the outputs' tabs started kernels"
    assert dirty.count() == 0, [t.inner_text() for t in dirty.all()]
    for i in range(3):  # close them (nothing to save)
        page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=f"out{i}-").locator(".lm-TabBar-tabCloseIcon").click()


def test_repeat_on_a_schedule_makes_a_workspace_path_schedule(hub, lab):
    """"Repeat on a schedule": every weekday at a time, in the browser's time zone, as a schedule
    of the notebook's workspace path (the saved file is read again at each run, as the dialog says)."""
    page = lab
    user = hub.user(USER)
    dialog = open_dialog(page, hub, "greet.ipynb")
    try:
        dialog.locator('[name="param-word"]').fill("weekly", timeout=10_000)
    except playwright.TimeoutError:
        page.screenshot(path=str(SHOTS / "timeout-schedule.png"))
        raise
    dialog.locator('[name="schedule-on"]').check()
    note = dialog.locator(".jp-NotebookJobs-scheduleNote")
    assert "saved file greet.ipynb as it is at each run" in note.inner_text()
    assert "not a snapshot" in note.inner_text()
    dialog.locator('[name="schedule-every"]').select_option("weekday")
    dialog.locator('[name="schedule-time"]').fill("07:45")
    assert page.locator(ACCEPT).inner_text() == "Schedule"
    zone = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    assert zone in dialog.inner_text()
    assert dialog.locator(".jp-NotebookJobs-scheduleSummary").inner_text() == f"Runs every weekday at 07:45 ({zone})."
    page.wait_for_timeout(600)
    page.locator(".jp-Dialog-content").screenshot(path=str(SHOTS / "dialog-schedule.png"))
    before = {s["id"] for s in user.get("schedules").json()["schedules"]}
    page.locator(ACCEPT).click()
    try:
        page.locator(".jp-Dialog").wait_for(state="detached")
        page.get_by_text("Scheduled").first.wait_for(timeout=15_000)
    except playwright.TimeoutError:
        page.screenshot(path=str(SHOTS / "timeout-schedule.png"))
        raise AssertionError(page.locator(".jp-Dialog").inner_text()) from None
    made = [s for s in user.get("schedules").json()["schedules"] if s["id"] not in before]
    try:
        assert len(made) == 1, made
        schedule = made[0]
        assert schedule["cron"] == "45 7 * * 1-5"
        assert schedule["timezone"] == zone
        assert schedule["source"]["kind"] == "path" and schedule["source"]["path"] == "greet.ipynb", schedule["source"]
        assert schedule["parameters"] == {"word": "weekly"}
    finally:
        for s in made:
            user.delete(f"schedules/{s['id']}")


def test_the_resource_line_wraps_between_items_and_lab_asks_no_news(hub, lab):
    """The panel's resource line never breaks inside a word ("(cold-star t)", "cpu ·s") in a narrow
    panel, and the demo's Lab does not ask to fetch Jupyter news."""
    page = lab
    open_panel(page, hub)
    page.locator(".jp-NotebookJobs-resources").first.wait_for(timeout=30_000)
    # narrow lines: they must wrap, between items only
    page.evaluate("for (const el of document.querySelectorAll('.jp-NotebookJobs-resources')) el.style.maxWidth = '170px'")
    page.wait_for_timeout(300)
    broken = page.evaluate("""() => {
        const out = [];
        for (const line of document.querySelectorAll('.jp-NotebookJobs-resources')) {
            // each word's characters on one text line: a word split across lines has rects on two
            const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
            for (let n = walker.nextNode(); n; n = walker.nextNode()) {
                const re = /\\S+/g; let m;
                while ((m = re.exec(n.data))) {
                    const r = document.createRange(); r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
                    const tops = new Set(Array.from(r.getClientRects()).map(x => Math.round(x.top)));
                    if (tops.size > 1) out.push(m[0]);
                }
            }
        }
        return out;
    }""")
    assert broken == [], broken
    page.locator("#notebook-jobs-panel").screenshot(path=str(SHOTS / "panel-narrow.png"))
    assert page.get_by_text("official Jupyter news").count() == 0


def right_sidebar(page) -> dict:
    """The right sidebar as Lab saved it in the workspace (``current``: the name of the panel shown)."""
    return page.evaluate("""async (user) => {
        const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || '';
        const r = await fetch(`/user/${user}/lab/api/workspaces/default`,
                              {headers: {'X-XSRFToken': decodeURIComponent(xsrf)}});
        return r.ok ? ((await r.json()).data?.['layout-restorer:data']?.right ?? {}) : {};
    }""", USER)


def test_the_panel_comes_back_after_a_reload(hub, lab):
    """The sidebar panel is part of the layout Lab restores (ILayoutRestorer): shown before a
    reload, shown after it, with no click."""
    page = lab
    open_panel(page, hub, refresh=False)
    # Lab saves its layout a moment after it changes: wait until the workspace holds the panel
    deadline = time.monotonic() + 30
    while right_sidebar(page).get("current") != "notebook-jobs-panel" or right_sidebar(page).get("collapsed"):
        assert time.monotonic() < deadline, f"Lab did not save its layout: {right_sidebar(page)}"
        page.wait_for_timeout(500)
    page.reload()
    page.locator('.jp-SideBar [data-id="notebook-jobs-panel"]').wait_for(timeout=90_000)
    lab_ready(page)
    panel = page.locator("#notebook-jobs-panel")
    try:
        panel.wait_for(state="visible", timeout=15_000)
    except playwright.TimeoutError:
        page.screenshot(path=str(SHOTS / "timeout-panel-restored.png"))
        raise AssertionError("the panel did not come back after the reload") from None
    panel.locator(".jp-NotebookJobs-list > li").first.wait_for(timeout=30_000)  # and it lists the jobs (or none)


def test_an_event_for_one_job_leaves_the_other_rows_alone(hub, lab):
    """The list is keyed: a row's DOM node is the same object after another job's events (a
    property set on it is still there), while the other job's row follows its events live."""
    page = lab
    user = hub.user(USER)
    settled = user.submit(make_notebook("print('settled')"), "settled.ipynb")
    assert user.wait(settled["id"])["status"] == "succeeded"
    open_notebook(page, hub, "greet.ipynb")
    show_panel(page)
    wait_status(page, settled["id"], "succeeded", 30_000)
    mark = "(id) => { document.querySelector(`.jp-NotebookJobs-job[data-job-id=\"${id}\"]`).__kept = 'still me'; }"
    read = "(id) => document.querySelector(`.jp-NotebookJobs-job[data-job-id=\"${id}\"]`).__kept ?? null"
    page.evaluate(mark, settled["id"])
    row = submit_shown(page, "greet.ipynb")
    job_id = row.get_attribute("data-job-id")
    wait_status(page, job_id, "succeeded")
    assert_followed_over_the_event_stream(page, job_id)  # its progress and its end came as events
    assert page.evaluate(read, settled["id"]) == "still me", "the other job's row was built again"
    assert page.evaluate(read, job_id) is None  # (the job the events were for has a row of its own)


def test_the_toolbar_button_submits_its_own_notebook(hub, lab):
    """Two notebooks side by side: the Submit button in one's toolbar submits that one, though the
    other is the current notebook (a press on the button does not make its notebook current)."""
    page = lab
    open_notebook(page, hub, "edited.ipynb")
    browser_item = page.locator(".jp-DirListing-item", has_text="greet.ipynb")
    if not browser_item.is_visible():
        page.locator('.jp-SideBar [data-id="filebrowser"]').click()
    browser_item.dblclick()  # the second notebook, in a tab of its own
    tabs = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab")
    tabs.filter(has_text="greet.ipynb").first.wait_for(timeout=30_000)
    edited = tabs.filter(has_text="edited.ipynb").first
    edited.wait_for(timeout=30_000)
    edited_id = edited.get_attribute("data-id")
    files = page.locator('.jp-SideBar [data-id="filebrowser"]')
    # room for both toolbars (a narrow one moves its buttons into its "…" menu)
    files.click()
    viewport = page.viewport_size
    page.set_viewport_size({"width": 2000, "height": viewport["height"]})
    try:
        # drag edited.ipynb's tab to the right edge of the main area: the two side by side
        dock = page.locator("#jp-main-dock-panel").bounding_box()
        box = edited.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        target = (dock["x"] + dock["width"] - 15, dock["y"] + dock["height"] / 2)
        for i in range(1, 21):
            page.mouse.move(box["x"] + (target[0] - box["x"]) * i / 20, box["y"] + (target[1] - box["y"]) * i / 20)
            page.wait_for_timeout(20)
        page.mouse.up()
        buttons = page.locator(SUBMIT).locator("visible=true")
        try:
            page.wait_for_function("(sel) => Array.from(document.querySelectorAll(sel)).filter(b => b.offsetParent).length === 2",
                                   arg=SUBMIT, timeout=10_000)
        except playwright.TimeoutError:
            page.screenshot(path=str(SHOTS / "timeout-two-notebooks.png"))
            raise
        # greet.ipynb is the current notebook: a click in it
        page.locator(f".jp-NotebookPanel:visible:not(#{edited_id}) .jp-Cell").first.click()
        current = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-current", has_text="greet.ipynb")
        current.wait_for(timeout=10_000)
        page.screenshot(path=str(SHOTS / "two-notebooks.png"))
        # a press of the button that leaves the other notebook current: Enter sent to it without the
        # focus moving there, as assistive technology may press it (a mouse press in a notebook would
        # first make that notebook current, and hide the difference)
        page.locator(f"#{edited_id} {SUBMIT}").dispatch_event("keydown", {"key": "Enter"})
        dialog = page.locator(".jp-Dialog .jp-NotebookJobs-dialog")
        dialog.wait_for(timeout=15_000)
        assert dialog.locator(".jp-NotebookJobs-path").inner_text() == "edited.ipynb"
        assert "edited.ipynb" in page.locator(".jp-Dialog-header").inner_text()
        dialog.locator('[name="param-rate"]').wait_for(timeout=30_000)  # its parameters, not greet's
        assert dialog.locator('[name="param-word"]').count() == 0
        page.locator(".jp-Dialog-button.jp-mod-reject").click()
        page.locator(".jp-Dialog").wait_for(state="detached")
        assert buttons.count() == 2
    finally:
        # back to one notebook at a time, as the other tests expect
        if page.locator(".jp-Dialog").count():
            page.locator(".jp-Dialog-button.jp-mod-reject").click()
        tab = tabs.filter(has_text="edited.ipynb").first
        if tab.count():
            tab.locator(".lm-TabBar-tabCloseIcon").click()
            discard = page.locator(".jp-Dialog-button", has_text="Discard")  # (its kernel may have touched it)
            try:
                discard.wait_for(timeout=2_000)
                discard.click()
            except playwright.TimeoutError:
                pass
            tab.wait_for(state="detached", timeout=10_000)
        if not browser_item.is_visible():
            files.click()
        page.set_viewport_size(viewport)


def test_an_error_about_a_field_shows_beside_that_field(hub, lab):
    """The service's ``error.field`` says which field an error is about: the dialog shows the
    message beside that field (a parameter's, a resource's), and under the form when there is no
    field, whatever the message's words. (The dry run's answers are the test's own here.)"""
    page = lab
    dialog = open_dialog(page, hub, "greet.ipynb")  # the first dry run, the service's: the fields
    answer = {"code": "invalid_input", "status": 400}
    dry_run = re.compile(r"/notebook-jobs/api/jobs\?dry_run=1(&|$)")  # (Lab adds a cache-busting argument)

    def refuse(route):
        route.fulfill(status=400, content_type="application/json", body=json.dumps({"error": answer}))

    form_error = dialog.locator(".jp-NotebookJobs-formError")
    page.route(dry_run, refuse)
    try:
        answer.update(message="this value is not welcome here", field="/parameters/word")
        dialog.locator('[name="param-word"]').fill("other")
        field_error(page, "word", "not welcome")
        assert form_error.inner_text() == ""
        page.wait_for_timeout(300)
        assert page.locator(ACCEPT).is_disabled()  # an error shows: Submit waits
        answer.update(message="too odd for this machine", field="/resources/memory")
        dialog.locator('[name="memory"]').fill("3GiB")
        field_error(page, "memory", "too odd")
        field_error(page, "word", "")
        del answer["field"]  # about the whole request: under the form, though it names a field
        answer["message"] = "word: the service says no"
        dialog.locator('[name="param-word"]').fill("third")
        page.wait_for_function("(sel) => document.querySelector(sel)?.textContent.includes('the service says no')",
                               arg=".jp-NotebookJobs-dialog .jp-NotebookJobs-formError", timeout=15_000)
        field_error(page, "word", "")
        field_error(page, "memory", "")
        page.locator(".jp-Dialog-content").screenshot(path=str(SHOTS / "dialog-field-errors.png"))
    finally:
        page.unroute(dry_run, refuse)
        page.locator(".jp-Dialog-button.jp-mod-reject").click()


def set_theme(page, theme: str):
    """Switch Lab's theme through its settings API (the page's cookie and XSRF token), and reload."""
    page.evaluate("""async ([user, theme]) => {
        const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || '';
        const r = await fetch(`/user/${user}/lab/api/settings/@jupyterlab/apputils-extension:themes`, {
            method: 'PUT', headers: {'X-XSRFToken': decodeURIComponent(xsrf), 'Content-Type': 'application/json'},
            body: JSON.stringify({raw: JSON.stringify({theme})})});
        if (!r.ok) throw new Error(`theme: ${r.status}`);
    }""", [USER, theme])
    page.goto(f"{hub_url(page)}/user/{USER}/lab")
    page.wait_for_function("(t) => document.body.dataset.jpThemeName === t", arg=theme, timeout=90_000)


def hub_url(page) -> str:
    return re.match(r"^https?://[^/]+", page.url)[0]


def test_dark_theme_screenshots_of_the_dialog_and_the_panel(hub, lab):
    """Not a check of colours: the dialog (with its schedule fields) and the panel in the dark
    theme, saved for a person to look at beside the light ones."""
    page = lab
    set_theme(page, "JupyterLab Dark")
    try:
        dialog = open_dialog(page, hub, "greet.ipynb")
        dialog.locator('[name="schedule-on"]').check()
        dialog.locator('[name="memory"]').fill("lots")
        field_error(page, "memory", "is not a size")
        page.locator(".jp-Dialog-content").screenshot(path=str(SHOTS / "dark-dialog.png"))
        page.locator(".jp-Dialog-button.jp-mod-reject").click()
        show_panel(page)
        page.locator(".jp-NotebookJobs-job").first.wait_for(timeout=30_000)
        page.wait_for_timeout(500)
        page.locator("#notebook-jobs-panel").screenshot(path=str(SHOTS / "dark-panel.png"))
    finally:
        set_theme(page, "JupyterLab Light")
