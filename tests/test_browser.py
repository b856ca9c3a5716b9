"""The service's pages in a real browser (Chromium via Playwright) against the real Hub.

Screenshots of each page land in test-output/pages/ (look at them after a change).
"""

import json

import pytest

from tests.browser import BADGE_CONTRAST_JS, STATUSES, assert_hub_chrome, browser, logged_in, shot  # noqa: F401
from tests.hubtest import SERVICE, make_notebook


def test_login_upload_and_watch_a_job_end_live(hub, browser, tmp_path):
    nb = tmp_path / "from-browser.ipynb"
    nb.write_text(json.dumps(make_notebook("import time\ntime.sleep(4)", "print('browser ' + word)",
                                           parameters="word = 'x'")))
    page, console = logged_in(hub, browser, "carol")
    page.goto(hub.url + SERVICE)  # Hub OAuth round trip
    assert page.locator("h1").inner_text() == "Notebook jobs"
    assert_hub_chrome(page, "carol")
    shot(page, "home")
    page.set_input_files("#file", str(nb))
    page.fill("#parameters", '{"word": "works"}')
    page.click("#submit-button")
    page.wait_for_url("**/jobs/*")
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    page.wait_for_function("document.getElementById('job-status').textContent === 'running'", timeout=60_000)
    # While running: no output to fetch, so no live links and no empty output box.
    links = page.locator(".job-output-link")
    assert links.count() == 3
    for i in range(3):
        assert links.nth(i).get_attribute("href") is None and "disabled" in links.nth(i).get_attribute("class")
    assert page.locator("#job-output").is_hidden()
    assert page.locator("#job-log").is_visible()
    assert page.locator("#job-used td").first.inner_text() == ""
    shot(page, "job-running")

    page.wait_for_function("document.getElementById('job-status').textContent === 'succeeded'", timeout=90_000)
    page.frame_locator("#job-output").locator("text=browser works").wait_for(timeout=30_000)
    assert page.evaluate("window.__sameDocument") is True
    assert page.locator("#job-progress").inner_text() == "3/3"  # live progress from the event stream
    assert page.locator("#job-progress").get_attribute("style").replace(" ", "") == "width:100%;"
    used = page.locator("#job-used td").all_inner_texts()
    assert used[0].endswith("cpu-s") and used[1].endswith("iB") and used[2].endswith("s"), used
    for i in range(3):
        assert "/output?format=" in links.nth(i).get_attribute("href")
        assert "disabled" not in links.nth(i).get_attribute("class")
    r = page.request.get(hub.url + links.nth(2).get_attribute("href"))
    assert r.status == 200 and "browser works" in r.text()
    shot(page, "job-succeeded")
    # after a reload the page says the same as it did live
    live = page.locator("#job-used").inner_text(), page.locator("#job-progress").inner_text()
    page.reload()
    assert (page.locator("#job-used").inner_text(), page.locator("#job-progress").inner_text()) == live
    page.goto(hub.url + SERVICE)
    assert "succeeded" in page.locator("#jobs-table").inner_text()
    assert console.errors == [], "\n".join(console.errors)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_status_badge_is_readable(hub, browser, alice, theme):
    alice.wait(alice.submit(make_notebook("1 / 0"))["id"])  # a badge of the page's own too
    page, console = logged_in(hub, browser, "alice", color_scheme=theme)
    page.goto(hub.url + SERVICE)
    assert page.evaluate("document.documentElement.getAttribute('data-bs-theme')") == theme
    assert_hub_chrome(page, "alice")
    contrast = page.evaluate(BADGE_CONTRAST_JS, list(STATUSES))
    low = {s: c for s, c in contrast.items() if c["ratio"] < 4.5}  # WCAG AA, normal text
    assert not low, low
    shot(page, f"home-{theme}")
    assert console.errors == [], "\n".join(console.errors)
