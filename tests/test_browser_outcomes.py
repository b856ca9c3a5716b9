"""How a job ended, on the pages in a real browser: words not codes, honest progress, the partial
notebook of a stopped run, and a rerun sized in words. Screenshots: test-output/pages/outcome-*."""

import pytest

from tests.browser import browser, logged_in, shot  # noqa: F401
from tests.hubtest import SERVICE, make_notebook

WAITS = "import time\nprint('waiting', flush=True)\ntime.sleep(120)"
HOG = "x = bytearray(900 * 2**20)\nx[::4096] = b'1' * len(x[::4096])"
CODES = ("cell_error", "oom_killed", "infrastructure", "invalid_input", "cancelled by request")


def wait_text(page, selector, text, timeout=60_000):
    page.wait_for_function("([s, t]) => (document.querySelector(s) || {}).textContent?.trim() === t",
                           arg=[selector, text], timeout=timeout)


def no_codes(page):
    shown = page.locator("#job-page").inner_text()
    assert not [c for c in CODES if c in shown], shown


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_a_cancelled_job_shows_progress_honestly_and_offers_its_partial_notebook(hub, browser, theme):
    hana = hub.user(f"hana-{theme}")
    job = hana.submit(make_notebook("print('first ran', flush=True)", WAITS, "print('never')", markdown="# m"),
                      name=f"stopped-{theme}")
    page, console = logged_in(hub, browser, hana.name, color_scheme=theme)
    page.goto(hub.url + SERVICE + "jobs/" + job["id"])
    # live, from the events: the cell running is not counted done
    wait_text(page, "#job-progress", "1 of 3 cells done, cell 2 running")
    assert page.locator("#job-progress-bar").get_attribute("style").replace(" ", "") == "width:33.3333%;"
    shot(page, f"outcome-running-{theme}")
    page.reload()  # the page as the server draws it says the same
    assert page.locator("#job-progress").inner_text() == "1 of 3 cells done, cell 2 running"
    page.click(".job-cancel")
    page.wait_for_function("document.getElementById('job-page').dataset.status === 'cancelled'", timeout=30_000)
    assert page.locator("#job-error-summary").inner_text() == "Cancelled by you"
    assert page.locator("#job-error-message").inner_text() == f"cancelled by {hana.name} (in code cell 2 of 3)"
    assert page.locator("#job-progress").inner_text() == "1 of 3 cells done, stopped at cell 2"
    assert page.locator("#job-partial").inner_text() == "partial (stopped at cell 2 of 3)"
    links = page.locator(".job-output-link")
    for i in range(3):
        assert "/output?format=" in (links.nth(i).get_attribute("href") or ""), i
    page.frame_locator("#job-output").locator("pre", has_text="first ran").first.wait_for(timeout=30_000)
    no_codes(page)
    shot(page, f"outcome-cancelled-{theme}")
    # the list says it in words too
    page.goto(hub.url + SERVICE)
    row = page.locator(f"tr[data-job-id='{job['id']}']")
    row.wait_for(timeout=20_000)
    assert "Cancelled by you" in row.inner_text() and "1 of 3 cells done" in row.inner_text(), row.inner_text()
    assert row.locator(".job-partial").inner_text() == "partial"
    shot(page, f"outcome-list-{theme}")
    assert console.errors == [], "\n".join(console.errors)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_an_oom_killed_job_says_so_in_words_and_its_rerun_form_offers_more_memory(hub, browser, theme):
    ivo = hub.user(f"ivo-{theme}")
    job = ivo.wait(ivo.submit(make_notebook("a = 1", HOG, "print('never')"), name=f"hog-{theme}",
                              resources={"memory": "256MB"})["id"], timeout=120)
    assert job["error"]["reason"] == "oom_killed", job
    page, console = logged_in(hub, browser, ivo.name, color_scheme=theme)
    page.goto(hub.url + SERVICE + "jobs/" + job["id"])
    assert page.locator("#job-error-summary").inner_text() == "Ran out of memory"
    assert page.locator("#job-error-message").inner_text().endswith("(in code cell 2 of 3)")
    assert page.locator("#job-progress").inner_text() == "1 of 3 cells done, stopped at cell 2"
    assert page.locator("#job-partial").is_visible()
    # the partial notebook, rendered: the cell it died in is there, without its end
    page.frame_locator("#job-output").locator("pre", has_text="bytearray").first.wait_for(timeout=30_000)
    no_codes(page)
    shot(page, f"outcome-oom-{theme}")
    page.click("#job-rerun")
    page.wait_for_function("document.getElementById('rerun-sizing').textContent.includes('killed at')",
                           timeout=30_000)
    sizing = page.locator("#rerun-sizing").inner_text()
    assert "of memory:" in sizing and "what the last run was killed at" in sizing, sizing
    assert page.locator("#rerun-memory").input_value().endswith("MiB")
    assert page.locator("#rerun-timeout").input_value() != ""
    shot(page, f"outcome-rerun-{theme}")
    page.fill("#rerun-memory", "3GB")
    page.wait_for_function("document.getElementById('rerun-sizing').textContent.startsWith('3 GiB of memory')",
                           timeout=30_000)
    page.fill("#rerun-memory", "lots")
    page.wait_for_function("document.querySelector(\"[data-error-for='memory']\").textContent.includes('not a size')",
                           timeout=30_000)
    page.fill("#rerun-memory", "3GB")
    page.click("#rerun-submit")
    page.wait_for_function("!location.pathname.endsWith(%r)" % job["id"], timeout=30_000)
    again = ivo.get("jobs/" + page.url.rsplit("/", 1)[1]).json()
    assert again["rerun_of"] == job["id"] and again["resources"]["requested"]["memory"] == 3 * 2**30, again
    ivo.post(f"jobs/{again['id']}/cancel")
    # (the one refusal asked for: the dry run of memory "lots", which the form showed beside its field)
    errors = [e for e in console.errors if not ("rerun?dry_run=1" in e and "status of 400" in e)]
    assert len(errors) == len(console.errors) - 1 and errors == [], "\n".join(console.errors)
