"""The service's pages in a real browser (Chromium via Playwright) against the real Hub.

Screenshots of each page land in test-output/pages/ (look at them after a change).
"""

import json
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.browser import BADGE_CONTRAST_JS, STATUSES, assert_hub_chrome, browser, logged_in, shot  # noqa: F401
from tests.hubtest import SERVICE, make_notebook

ZONE = "America/New_York"  # the browser's time zone where a test checks times: never the machine's UTC
ROWS = "#jobs-table tbody tr[data-job-id]"


def local(iso, zone=ZONE):
    """An API time as the pages show it in ``zone``."""
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def wait_for_rows(page, names):
    """Wait until the job list shows exactly these job names, in this order."""
    page.wait_for_function(
        "(names) => JSON.stringify([...document.querySelectorAll('#jobs-table tbody tr[data-job-id] td:first-child')]"
        ".map((td) => td.textContent)) === JSON.stringify(names)", arg=names, timeout=20_000)


def wait_for_text(page, selector, text, timeout=20_000):
    page.wait_for_function("([s, t]) => (document.querySelector(s) || {}).textContent?.includes(t)",
                           arg=[selector, text], timeout=timeout)


def test_login_upload_and_watch_a_job_end_live(hub, browser, tmp_path):
    nb = tmp_path / "from-browser.ipynb"
    nb.write_text(json.dumps(make_notebook("import time\ntime.sleep(4)", "print('browser ' + word)",
                                           parameters="word = 'x'")))
    page, console = logged_in(hub, browser, "carol")
    page.goto(hub.url + SERVICE)  # Hub OAuth round trip
    assert page.locator("h1").inner_text() == "Notebook jobs"
    assert_hub_chrome(page, "carol")
    shot(page, "home")
    page.click("label[for=source-upload]")
    page.set_input_files("#file", str(nb))
    page.fill("#parameter-fields-word", "works")  # the dry run's answer built the field
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
    assert page.locator("#job-progress").inner_text() == "3 of 3 cells done"  # live progress from the event stream
    assert page.locator("#job-progress-bar").get_attribute("style").replace(" ", "") == "width:100%;"
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
    wait_for_text(page, "#jobs-table tbody", "succeeded")  # the list is drawn from the API
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


def test_pick_a_workspace_notebook_and_submit_it_with_a_changed_parameter(hub, browser):
    dora = hub.user("dora")
    hub.write_workspace("dora", "work/params.ipynb",
                       make_notebook("print('rate is', rate)", parameters="rate = 0.5  # how fast\nlabel = 'x'"))
    page, console = logged_in(hub, browser, "dora")
    hub.write_workspace("dora", "job-outputs/params-0123.ipynb", make_notebook("1"))  # a copy Lab's Open made
    page.goto(hub.url + SERVICE)
    page.locator("#path option[value='work/params.ipynb']").wait_for(state="attached")
    # the executed copies in job-outputs/ are listed only when asked for
    assert page.locator("#path option[value='job-outputs/params-0123.ipynb']").count() == 0
    page.check("#show-outputs")
    page.locator("#path option[value='job-outputs/params-0123.ipynb']").wait_for(state="attached")
    page.uncheck("#show-outputs")
    page.locator("#path option[value='job-outputs/params-0123.ipynb']").wait_for(state="detached")
    page.select_option("#path", "work/params.ipynb")
    rate = page.locator("#parameter-fields-rate")
    rate.wait_for()  # one field per parameter, with the notebook's values
    assert rate.input_value() == "0.5" and page.locator("#parameter-fields-label").input_value() == "x"
    assert "how fast" in page.locator("label[for=parameter-fields-rate]").inner_text()
    # what the service would allocate, in words, and again when a resource field changes
    wait_for_text(page, "#sizing", "of memory:")
    first = page.locator("#sizing").inner_text()
    assert "cold-start" not in first and "user-history" not in first, first
    page.click("#resources-box summary")
    page.fill("#memory", "0.5")
    wait_for_text(page, "#sizing", "512 MiB of memory: what you asked for")
    assert page.locator("#sizing").inner_text() != first
    # the API's refusal beside the field it names
    page.fill("#name", "a/b")
    wait_for_text(page, "[data-error-for=name]", "must be 1-200 characters")
    assert "is-invalid" in page.locator("#name").get_attribute("class")
    shot(page, "home-form-error")
    page.fill("#name", "form-run")
    page.wait_for_function("document.querySelector('[data-error-for=name]').textContent === ''")
    rate.fill("0.75")
    page.uncheck("#format-md")
    page.select_option("#notify", "failure")
    wait_for_text(page, "#sizing", "512 MiB")
    shot(page, "home-form")
    page.click("#submit-button")
    page.wait_for_url("**/jobs/*")
    job = dora.wait(page.url.rsplit("/", 1)[1])
    assert job["parameters"] == {"rate": 0.75}, job
    assert (job["name"], job["input"]["path"], job["notify"]) == ("form-run", "work/params.ipynb", "failure")
    assert job["resources"]["requested"]["memory"] == 512 * 2**20 and job["output_formats"] == ["ipynb", "html"]
    assert job["status"] == "succeeded" and "rate is 0.75" in dora.get(f"jobs/{job['id']}/logs").text
    # Chromium logs every 4xx answer as an error: the refused name's dry run is the one expected
    refused = [e for e in console.errors if "dry_run=1" in e and "status of 400" in e]
    assert len(refused) >= 1 and [e for e in console.errors if e not in refused] == [], "\n".join(console.errors)


def test_the_job_list_is_live_filtered_paged_in_local_time_and_deletes(hub, browser):
    erin = hub.user("erin")
    failed = erin.wait(erin.submit(make_notebook("1 / 0"), name="list-fail")["id"])
    b = erin.wait(erin.submit(make_notebook("print(x)", parameters="x = 1"), name="list-b", parameters={"x": 7})["id"])
    slow = erin.submit(make_notebook("import time\ntime.sleep(3)"), name="list-slow")
    page, console = logged_in(hub, browser, "erin", timezone_id=ZONE)
    page.goto(hub.url + SERVICE + "?limit=2")
    wait_for_rows(page, ["list-slow", "list-b"])
    page.evaluate("window.__sameDocument = true")
    # live: the running job's badge turns without a reload
    page.wait_for_function("document.querySelector('tr[data-job-id=\"%s\"] .job-status').textContent === 'succeeded'"
                           % slow["id"], timeout=60_000)
    assert page.evaluate("window.__sameDocument") is True
    row = page.locator(f"tr[data-job-id='{b['id']}']")
    assert row.locator(".job-parameters").inner_text() == "x=7"
    assert row.locator(".job-created").inner_text() == local(b["created"])  # New York time, not UTC
    assert local(b["created"]) != local(b["created"], "UTC")
    assert re.fullmatch(r"\d+\.\ds|\d+m \d+s", row.locator(".job-duration").inner_text())
    # paging: the API's cursor forward, the pages seen back
    assert page.locator("#page-newer").is_disabled()
    page.click("#page-older")
    wait_for_rows(page, ["list-fail"])
    assert page.locator("#page-older").is_disabled() and "page 2" in page.locator("#page-number").inner_text()
    page.click("#page-newer")
    wait_for_rows(page, ["list-slow", "list-b"])
    # filters: status, and the name
    page.select_option("#filter-status", "failed")
    wait_for_rows(page, ["list-fail"])
    assert "status=failed" in page.url
    page.select_option("#filter-status", "")
    page.fill("#filter-q", "list-b")
    wait_for_rows(page, ["list-b"])
    shot(page, "home-list")
    # delete asks first: no is no, yes deletes
    page.once("dialog", lambda d: d.dismiss())
    row.locator(".job-delete").click()
    page.wait_for_timeout(500)
    assert erin.get(f"jobs/{b['id']}").status_code == 200
    page.once("dialog", lambda d: d.accept())
    row.locator(".job-delete").click()
    wait_for_text(page, "#jobs-table tbody", "No jobs match")
    assert erin.get(f"jobs/{b['id']}").status_code == 404
    assert erin.get(f"jobs/{failed['id']}").status_code == 200
    assert console.errors == [], "\n".join(console.errors)


def test_the_job_page_tells_owner_times_and_sizing_and_runs_again_with_a_changed_parameter(hub, browser, alice):
    job = alice.wait(alice.submit(make_notebook("print('p is', p)", parameters="p = 'a'\nn = 1"), name="page-facts",
                                  parameters={"n": 2})["id"])
    page, console = logged_in(hub, browser, "alice", timezone_id=ZONE)
    page.goto(hub.url + SERVICE + "jobs/" + job["id"])
    assert page.locator("#job-owner").inner_text() == "alice" and page.locator("#job-owner-banner").count() == 0
    for key in ("created", "started", "finished"):
        assert page.locator(f"#job-{key}").inner_text() == local(job[key]), key
    ran = (datetime.fromisoformat(job["finished"]) - datetime.fromisoformat(job["started"])).total_seconds()
    shown = page.locator("#job-duration").inner_text()
    assert shown.endswith("s") and abs(float(shown[:-1]) - ran) < 0.06, (shown, ran)
    sizing = page.locator("#job-sizing").inner_text()
    assert "of memory:" in sizing and "Time limit" in sizing and "sized by" not in sizing, sizing
    assert page.locator("#job-schedule").get_attribute("href").endswith(f"schedules?from_job={job['id']}")
    shot(page, "job-facts")
    # Run again, with one parameter changed first
    page.click("#job-rerun")
    assert page.locator("#rerun-fields-p").input_value() == "a"
    assert page.locator("#rerun-fields-n").input_value() == "2"  # the job's value, not the notebook's
    page.fill("#rerun-fields-n", "1.5")
    page.click("#rerun-submit")
    wait_for_text(page, "[data-error-for='param:n']", "must be a whole number")
    page.fill("#rerun-fields-n", "2")
    page.fill("#rerun-fields-p", "b")
    shot(page, "job-rerun-form")
    page.click("#rerun-submit")
    page.wait_for_function("!location.pathname.endsWith(%s)" % json.dumps(job["id"]))
    again = alice.wait(page.url.rsplit("/", 1)[1])
    assert again["parameters"] == {"p": "b", "n": 2} and again["rerun_of"] == job["id"], again
    assert "p is b" in alice.get(f"jobs/{again['id']}/logs").text
    assert console.errors == [], "\n".join(console.errors)
    # an admin looking at alice's job is told whose it is
    page, console = logged_in(hub, browser, "admin")
    page.goto(hub.url + SERVICE + "jobs/" + job["id"])
    assert "alice" in page.locator("#job-owner-banner").inner_text()
    assert page.locator("#job-owner").inner_text() == "alice"
    shot(page, "job-admin-view")
    assert console.errors == [], "\n".join(console.errors)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_page_state_in_both_themes(hub, browser, theme):
    """Screenshots of the form with a notebook chosen, the list, and a job with its re-run form."""
    gus = hub.user("gus")
    hub.write_workspace("gus", "theme.ipynb", make_notebook("print(k)", parameters="k = [1, 2]\nok = True"))
    job = gus.wait(gus.submit(make_notebook("print(k)", parameters="k = 3"), name=f"themed-{theme}",
                                  parameters={"k": 4})["id"])
    page, console = logged_in(hub, browser, "gus", color_scheme=theme)
    page.goto(hub.url + SERVICE)
    page.locator("#path option[value='theme.ipynb']").wait_for(state="attached")
    page.select_option("#path", "theme.ipynb")
    wait_for_text(page, "#sizing", "of memory:")
    wait_for_text(page, "#jobs-table tbody", f"themed-{theme}")
    page.click("#resources-box summary")
    shot(page, f"home-{theme}-form")
    page.goto(hub.url + SERVICE + "jobs/" + job["id"])
    page.click("#job-rerun")
    page.frame_locator("#job-output").locator("text=4").first.wait_for()
    shot(page, f"job-{theme}")
    assert console.errors == [], "\n".join(console.errors)
