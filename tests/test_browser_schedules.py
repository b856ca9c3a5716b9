"""The Schedules page in Debian's Chromium: create from a job, list, pause, resume, run now, edit, delete."""

import re

import pytest
import requests

from tests.browser import assert_hub_chrome, browser, logged_in, shot  # noqa: F401 - browser is a fixture
from tests.hubtest import SERVICE, make_notebook, nb_bytes


@pytest.fixture
def sasha(hub):
    return hub.user("sasha")


def unexpected(console):
    """The page's errors, less the one 400 each test provokes on purpose (Chromium logs a failed fetch)."""
    provoked = [e for e in console.errors if e.endswith("status of 400 (Bad Request)")]
    assert len(provoked) == 1, console.errors
    return [e for e in console.errors if e not in provoked]


def row_of(page, name):
    return page.locator("#schedules-table tbody tr", has=page.locator(".schedule-name", has_text=name))


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_schedules_page_from_a_job_to_its_deletion(hub, browser, sasha, scheme):  # noqa: F811
    name = f"weekly-{scheme}.ipynb"
    job = sasha.submit(make_notebook("print(n)", parameters="n = 1"), filename=name, parameters={"n": 5})
    sasha.wait(job["id"])
    page, console = logged_in(hub, browser, "sasha", color_scheme=scheme)
    page.goto(f"{hub.url}{SERVICE}schedules?from_job={job['id']}")
    assert_hub_chrome(page, "sasha")
    assert page.locator("nav").get_by_text("Schedules", exact=True).count() >= 1

    # the "run this every…" form: about this job, in the browser's own time zone
    form = page.locator("#schedule-form")
    assert form.is_visible() and name in form.locator("h2").inner_text()
    zone = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    assert page.input_value("#schedule-timezone") == zone
    page.select_option("#schedule-preset", "weekly")
    page.select_option("#schedule-day", "3")
    page.fill("#schedule-time", "07:15")
    page.select_option("#schedule-notify", "failure")
    assert page.inner_text("#schedule-preview") == f"every Wednesday at 07:15 ({zone})"
    shot(page, f"schedules-form-{scheme}")
    page.click("#schedule-create")

    # listed, marked, with its next run in local time
    page.wait_for_url(re.compile(r".*/schedules#schedule-[0-9a-f]{32}$"))
    sid = page.url.rsplit("-", 1)[1]
    row = page.locator(f"#schedule-{sid}")
    row.wait_for()
    assert "table-active" in row.get_attribute("class")
    assert row.locator(".schedule-when").inner_text().startswith(f"every Wednesday at 07:15 ({zone})")
    api = sasha.get(f"schedules/{sid}").json()
    assert (api["cron"], api["notify"], api["parameters"]) == ("15 7 * * 3", "failure", {"n": 5})
    local_next = page.evaluate("""(iso) => new Date(iso).toLocaleString([], {weekday: "short", year: "numeric",
        month: "short", day: "numeric", hour: "2-digit", minute: "2-digit"})""", api["next_runs"][0])
    assert row.locator(".schedule-next").inner_text() == local_next
    assert row.locator(".schedule-runs").inner_text() == "none yet"

    # pause and resume
    row.locator(".schedule-pause").click()
    row.locator(".schedule-next .badge", has_text="paused").wait_for()
    assert sasha.get(f"schedules/{sid}").json()["paused"] is True
    row.locator(".schedule-resume").click()
    row.locator(".schedule-next time").wait_for()
    assert sasha.get(f"schedules/{sid}").json()["paused"] is False

    # run now: the job appears among the last runs, a badge linking to it, and ends there
    row.locator(".schedule-run").click()
    badge = row.locator(".schedule-runs a.job-status")
    badge.first.wait_for()
    run_id = badge.first.get_attribute("href").rsplit("/", 1)[1]
    assert sasha.get(f"jobs/{run_id}").json()["schedule_id"] == sid
    row.locator(".schedule-runs a.status-succeeded").wait_for(timeout=60000)  # the page polls while it runs

    # its whole history: the job list, filtered to this schedule's runs (not the job it was made from)
    row.locator(".schedule-history").click()
    page.wait_for_url(f"**/?schedule={sid}")
    page.wait_for_function("""(id) => { const rows = document.querySelectorAll('#jobs-table tbody tr:not(.empty)');
        return rows.length === 1 && rows[0].querySelector('a').href.endsWith('/jobs/' + id); }""", arg=run_id)
    assert page.locator("#filter-schedule").is_visible()
    page.go_back()
    row.wait_for()

    # edit the times: a bad cron is told in the row, a good one shown in words
    row.locator(".schedule-edit-open").click()
    row.locator(".schedule-edit input").first.fill("0 25 * * *")
    row.locator(".schedule-edit button[type=submit]").click()
    row.locator(".schedule-edit [role=alert]", has_text="cron").wait_for()
    row.locator(".schedule-edit input").first.fill("0 6 * * 1-5")
    row.locator(".schedule-edit button[type=submit]").click()
    page.locator(f"#schedule-{sid} .schedule-when", has_text=f"every weekday at 06:00 ({zone})").wait_for()
    shot(page, f"schedules-list-{scheme}")

    # delete, after a confirm
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f"#schedule-{sid} .schedule-delete").click()
    page.locator(f"#schedule-{sid}").wait_for(state="detached")
    assert sasha.get(f"schedules/{sid}").status_code == 404
    assert unexpected(console) == []
    page.close()


def test_new_schedule_from_the_list_and_a_run_whose_notebook_is_gone(hub, browser, sasha):  # noqa: F811
    notebook = hub.data / "users" / "sasha" / "reports" / "picked.ipynb"
    notebook.parent.mkdir(parents=True, exist_ok=True)
    notebook.write_bytes(nb_bytes(make_notebook("1")))
    r = sasha.post("jobs", json={"path": "reports/picked.ipynb"})
    assert r.status_code == 201, r.text
    job = r.json()
    page, console = logged_in(hub, browser, "sasha")
    # the browser in New York: the form's zone is the browser's own, not the API's default (UTC)
    page.context.new_cdp_session(page).send("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    page.goto(f"{hub.url}{SERVICE}schedules")
    assert page.locator("#schedule-form").is_hidden()
    page.click("#schedule-new")
    assert page.input_value("#schedule-timezone") == "America/New_York"
    page.locator(f"#schedule-job option[value='{job['id']}']").wait_for(state="attached")
    page.select_option("#schedule-job", job["id"])
    page.select_option("#schedule-preset", "cron")
    page.fill("#schedule-cron", "*/30 * * * *")
    page.fill("#schedule-timezone", "Nowhere/Atlantis")
    page.click("#schedule-create")
    page.locator("#schedule-message", has_text="timezone").wait_for()  # the API's 400 names the field
    page.fill("#schedule-timezone", "America/New_York")
    page.click("#schedule-create")
    row = row_of(page, "reports/picked.ipynb")
    row.wait_for()
    assert row.locator(".schedule-when").inner_text().startswith("every 30 minutes (America/New_York)")
    assert "reads reports/picked.ipynb at each run" in row.inner_text()

    # the notebook is deleted: a run now fails at once, and the row says why and how often
    notebook.unlink()
    row.locator(".schedule-run").click()
    row.locator(".schedule-runs a.status-failed").wait_for()
    row.locator(".schedule-error", has_text="reports/picked.ipynb is gone from sasha's workspace").wait_for()
    assert row.locator(".schedule-failures .text-danger").first.inner_text() == "1"
    shot(page, "schedules-failing")
    sid = row.get_attribute("id").split("-", 1)[1]
    assert sasha.delete(f"schedules/{sid}").status_code == 204
    assert unexpected(console) == []
    page.close()


def test_the_page_needs_a_login(hub):
    r = requests.get(f"{hub.url}{SERVICE}schedules", allow_redirects=False)
    assert r.status_code == 302 and "/hub/api/oauth2/authorize" in r.headers["Location"]


def test_another_users_job_cannot_be_scheduled_from_the_page(hub, browser, alice):  # noqa: F811
    job = alice.submit(make_notebook("1"))
    page, _ = logged_in(hub, browser, "sasha")
    r = page.goto(f"{hub.url}{SERVICE}schedules?from_job={job['id']}")
    assert r.status == 404
    page.close()
