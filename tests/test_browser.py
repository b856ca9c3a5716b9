"""The service's pages in a real browser (Chromium via Playwright): log in, upload, watch the job end."""

import json
import shutil

import pytest

from tests.hubtest import SERVICE, make_notebook

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api")

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def test_login_upload_and_watch_a_job_succeed(hub, browser, tmp_path):
    nb = tmp_path / "from-browser.ipynb"
    nb.write_text(json.dumps(make_notebook("import time\ntime.sleep(1)", "print('browser ' + word)",
                                           parameters="word = 'x'")))
    page = browser.new_page()
    page.goto(hub.url + "/hub/login")
    page.fill("#username_input", "carol")
    page.fill("#password_input", "x")
    page.click("#login_submit")
    page.goto(hub.url + SERVICE)  # Hub OAuth round trip
    assert page.locator("h1").inner_text() == "Notebook jobs"
    page.set_input_files("#file", str(nb))
    page.fill("#parameters", '{"word": "works"}')
    page.click("#submit-button")
    page.wait_for_url("**/jobs/*")
    page.wait_for_function("document.getElementById('job-status').textContent === 'succeeded'", timeout=90_000)
    frame = page.frame_locator("#job-output")
    frame.locator("text=browser works").wait_for(timeout=30_000)
    assert page.locator("#job-progress").inner_text() == "3/3"  # live progress from the event stream
    page.screenshot(path=str(tmp_path / "job.png"), full_page=True)
    # the job list shows it too
    page.goto(hub.url + SERVICE)
    assert "succeeded" in page.locator("#jobs-table").inner_text()


def test_admin_page_shows_queue_and_stats(hub, browser):
    page = browser.new_page()
    page.goto(hub.url + "/hub/login")
    page.fill("#username_input", "admin")
    page.fill("#password_input", "x")
    page.click("#login_submit")
    page.goto(hub.url + SERVICE + "admin")
    page.wait_for_function("document.getElementById('admin-stats').textContent.includes('status_counts')")
    assert "capacity" in page.locator("#admin-queue").inner_text()
    # the sizing section: realised slack and kills per basis, the forecast, retraining
    page.wait_for_function("document.querySelectorAll('#demand-realised tbody tr').length >= 1")
    assert page.locator("#demand-realised tbody tr").first.inner_text().startswith("all")
    assert page.locator("#demand-forecast span").count() == 24
    page.click("#demand-retrain button")
    page.wait_for_function("document.getElementById('demand-message').textContent.startsWith('now serving v')")
    # (the model line is refreshed after the message: wait for it, not race it)
    page.wait_for_function("document.getElementById('demand-model').textContent.startsWith('Model v')")
    assert page.locator("#demand-rejected").is_hidden()  # no fit was refused
