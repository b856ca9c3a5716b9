"""The admin page in a real browser (Debian's Chromium via Playwright) against the real Hub.

Screenshots land in test-output/pages/admin-*.png (look at them after a change).
"""

import re

import pytest

from tests.browser import assert_hub_chrome, browser, logged_in, shot  # noqa: F401
from tests.hubtest import SERVICE, make_notebook


#: WCAG 2 contrast of each selector's first element's text (fill for SVG) against the page, alpha blended.
TEXT_CONTRAST_JS = """(selectors) => {
  const rgba = (css) => { const v = css.match(/[\\d.]+/g).map(Number); return v.length === 3 ? [...v, 1] : v; };
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92
                                                    : Math.pow((v + 0.055) / 1.055, 2.4); })
                                       .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
  const page = rgba(getComputedStyle(document.body).backgroundColor);
  const out = {};
  for (const sel of selectors) {
    const node = document.querySelector(sel), style = getComputedStyle(node);
    const fg = rgba(node instanceof SVGElement ? style.fill : style.color);
    const seen = [0, 1, 2].map((i) => fg[3] * fg[i] + (1 - fg[3]) * page[i]);
    const [a, b] = [lum(seen), lum(page)];
    out[sel] = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  }
  return out;
}"""


def open_admin(hub, browser, theme="light", **options):
    page, console = logged_in(hub, browser, "admin", color_scheme=theme, **options)
    page.goto(hub.url + SERVICE + "admin")
    page.wait_for_function("document.getElementById('admin-updated').textContent.startsWith('updated')")
    return page, console


def test_admin_page_shows_queue_and_stats(hub, browser, admin):
    admin.wait(admin.submit(make_notebook("1"))["id"])  # something finished to count and size
    page, console = open_admin(hub, browser)
    assert_hub_chrome(page, "admin")
    assert page.locator("nav").get_by_text("Admin", exact=True).count() == 1  # the Hub's admin page
    # capacity as figures people read: cores and GiB, with the share in use
    assert page.locator("#figure-cpu").inner_text().endswith("%)")
    assert " of " in page.locator("#figure-cpu").inner_text() and "cores" in page.locator("#figure-cpu").inner_text()
    memory = page.locator("#figure-memory").inner_text()
    assert "GiB (" in memory and "e+" not in memory and len(memory) < 40, memory
    assert page.locator("#figure-running-of").inner_text().startswith("at most ")
    stats = page.locator("#admin-stats").inner_text()
    assert "succeeded" in stats and "Of the last" in stats and "{" not in stats, stats
    # the sizing section: realised slack and kills per basis, the model's state, retraining
    page.wait_for_function("document.querySelectorAll('#demand-realised tbody tr').length >= 1")
    assert page.locator("#demand-realised tbody tr").first.inner_text().startswith("all")
    page.click("#demand-retrain button")
    page.wait_for_function("document.getElementById('demand-message').textContent.startsWith('now serving v')")
    page.wait_for_function("document.getElementById('demand-model').textContent.startsWith('Model v')")
    assert page.locator("#demand-rejected").is_hidden()  # no fit was refused
    assert console.errors == [], "\n".join(console.errors)


def test_forecast_chart_has_axes_values_and_the_load_that_came(hub, browser, admin):
    admin.wait(admin.submit(make_notebook("1"))["id"])  # one submission in the last 24 hours at least
    # half an hour off UTC, so that the hours on the axis show they are the browser's own
    page, console = open_admin(hub, browser, timezone_id="Asia/Kolkata")
    chart = page.locator("#demand-forecast svg")
    chart.wait_for()
    y_ticks = chart.locator(".chart-y text.chart-tick").all_text_contents()
    assert len(y_ticks) >= 3 and y_ticks[0] == "0", y_ticks
    assert all(float(v) > float(u) for u, v in zip(y_ticks, y_ticks[1:])), y_ticks  # increasing values
    x_ticks = chart.locator(".chart-x text.chart-tick").all_text_contents()
    assert len(x_ticks) == 16, x_ticks  # every third hour of 47
    hours = chart.locator(".chart-x text.chart-tick:not(.chart-day)").all_text_contents()
    assert all(":30" in t for t in hours), hours  # the hours of India's time, not UTC's
    # the axis, and a tick at each hour from 23 hours ago to the end of the forecast (the current hour in both)
    assert chart.locator(".chart-x line").count() == 1 + 48
    assert chart.locator(".chart-label").all_text_contents() == ["jobs / hour", "hour (local time)"]
    bars = chart.locator(".chart-actual rect")
    assert bars.count() == 24
    heights = [float(bars.nth(i).get_attribute("height")) for i in range(24)]
    assert max(heights) > 0  # the submissions of this session show
    assert len(chart.locator(".chart-forecast polyline").get_attribute("points").split()) == 24
    assert chart.locator(".chart-forecast circle").count() == 24
    legend = chart.locator(".chart-legend").inner_html()
    assert "submitted (last 24 h)" in legend and "forecast (next 24 h)" in legend
    assert chart.locator(".chart-now text").text_content() == "now"
    # and what it stands on: this session's hour or so of history, said as a flat line's basis
    basis = page.locator("#demand-forecast-basis").text_content()
    assert re.fullmatch(r"The forecast stands on \d+ hours? of history \(\d+ jobs?\): less than a day, "
                        r"so it is a flat line at their mean rate\.", basis), basis
    assert console.errors == [], "\n".join(console.errors)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_admin_cancels_another_users_running_job_from_the_all_users_table(hub, browser, theme):
    dora = hub.user(f"dora-{theme}")
    finished = dora.wait(dora.submit(make_notebook("1"), name="dora-done")["id"])
    job = dora.submit(make_notebook("import time\ntime.sleep(120)"), name="dora-long")
    dora.wait(job["id"], statuses=("running",), timeout=120)
    page, console = open_admin(hub, browser, theme)
    assert page.evaluate("document.documentElement.getAttribute('data-bs-theme')") == theme
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page
    # in the all-users table, then filtered by owner with a click on the owner's name
    row = page.locator(f"#admin-jobs tr[data-job-id='{job['id']}']")
    row.wait_for()
    row.locator(".admin-owner-filter").click()
    page.wait_for_function(f"document.getElementById('filter-owner').value === {dora.name!r}")
    page.wait_for_function(f"[...document.querySelectorAll('#admin-jobs .admin-owner')].every("
                           f"(td) => td.textContent === {dora.name!r})")
    assert row.locator(".admin-owner").inner_text() == dora.name
    assert row.locator(".job-status").inner_text() == "running"
    assert row.locator("time").get_attribute("datetime") == job["created"]
    done = page.locator(f"#admin-jobs tr[data-job-id='{finished['id']}']")
    assert "GiB" not in done.inner_text() and done.locator("td").nth(6).inner_text().count("/") == 1
    assert {t for t in page.locator("#admin-jobs .admin-owner").all_inner_texts()} == {dora.name}
    # the per-user running count names dora
    page.wait_for_function(f"document.getElementById('figure-per-user').textContent.includes({dora.name!r})")
    shot(page, f"admin-{theme}")
    # the page's own text reads in both themes (WCAG AA: 4.5 for text)
    page.locator("#demand-forecast svg").wait_for()
    contrast = page.evaluate(TEXT_CONTRAST_JS, [".admin-figure", ".admin-figure-label", "#figure-running-of",
                                                ".chart-tick", ".chart-label", ".chart-legend text", "#usage-period"])
    low = {k: v for k, v in contrast.items() if v < 4.5}
    assert not low, low
    row.locator("button.admin-cancel").click()
    page.wait_for_function(f"document.querySelector(\"#admin-jobs tr[data-job-id='{job['id']}']\")"
                           ".dataset.status === 'cancelled'", timeout=60_000)
    assert page.evaluate("window.__sameDocument") is True
    assert dora.get(f"jobs/{job['id']}").json()["status"] == "cancelled"
    assert page.locator(f"#admin-jobs tr[data-job-id='{job['id']}'] button.admin-cancel").count() == 0
    assert dora.name in page.locator("#jobs-message").inner_text()
    # usage: the figures of dora's row are the API's, and the table sorts by a column
    page.click("label[for=period-7d]")
    page.locator(f"#admin-usage tbody tr[data-user='{dora.name}'] td[data-key=cancelled]:text-is('1')").wait_for()
    usage = {u["user"]: u for u in hub.user("admin").get("admin/usage", params={}).json()["users"]}[dora.name]
    cells = page.locator(f"#admin-usage tbody tr[data-user='{dora.name}'] td")
    shown = {cells.nth(i).get_attribute("data-key"): cells.nth(i).inner_text() for i in range(cells.count())}
    assert shown["jobs"] == "2" and shown["succeeded"] == "1" and shown["failed"] == "0"
    assert float(shown["cpu_hours_allocated"]) == pytest.approx(usage["cpu_hours_allocated"], abs=1e-3)
    page.click("#admin-usage thead th[data-key=user] button")
    assert page.locator("#admin-usage thead th[data-key=user]").get_attribute("aria-sort") == "ascending"
    users = page.locator("#admin-usage tbody th").all_inner_texts()
    assert users == sorted(users)
    page.click("#admin-usage thead th[data-key=jobs] button")
    counts = [int(t) for t in page.locator("#admin-usage tbody td[data-key=jobs]").all_inner_texts()]
    assert counts == sorted(counts, reverse=True)
    shot(page, f"admin-usage-{theme}")
    # a custom period, in the browser's local time: a day long before any job
    page.click("label[for=period-custom]")
    page.fill("#usage-since", "2020-01-01T00:00")
    page.fill("#usage-until", "2020-01-02T00:00")
    page.click("#usage-apply")
    page.locator("#admin-usage tbody").get_by_text("No jobs in this period.").wait_for()
    assert page.locator("#admin-usage tfoot td[data-key=jobs]").inner_text() == "0"
    assert console.errors == [], "\n".join(console.errors)


def test_admin_pauses_and_resumes_another_users_schedule(hub, browser):
    eve = hub.user("eve-schedules")
    r = eve.post("schedules", json={"code": "# %%\nprint('nightly')\n", "cron": "30 2 * * *",
                                    "timezone": "Europe/Berlin", "name": "eve-nightly"})
    assert r.status_code == 201, r.text
    made = r.json()
    page, console = open_admin(hub, browser)
    table = page.locator("#admin-schedules")
    row = table.locator(f"tr[data-schedule-id='{made['id']}']")
    row.wait_for()
    assert row.locator(".admin-owner").inner_text() == eve.name
    assert "30 2 * * *" in row.inner_text() and "Europe/Berlin" in row.inner_text()
    assert row.locator("time").first.get_attribute("datetime") == made["next_runs"][0]
    row.locator("button.admin-pause").click()
    table.locator(f"tr[data-schedule-id='{made['id']}'][data-paused=true]").wait_for()
    assert eve.get(f"schedules/{made['id']}").json()["paused"] is True
    assert table.locator(f"tr[data-schedule-id='{made['id']}']").get_by_text("paused").count() == 1
    shot(page, "admin-schedules")
    table.locator(f"tr[data-schedule-id='{made['id']}'] button.admin-pause").click()
    table.locator(f"tr[data-schedule-id='{made['id']}'][data-paused=false]").wait_for()
    assert eve.get(f"schedules/{made['id']}").json()["paused"] is False
    eve.delete(f"schedules/{made['id']}")
    assert console.errors == [], "\n".join(console.errors)


def test_all_users_table_pages_through_an_owners_jobs(hub, browser):
    pager = hub.user("pager")
    made = []
    for i in range(21):  # one more than a page; cancelled at once, so they hold no run slot
        job = pager.submit(make_notebook("1"), name=f"page-{i:02d}")
        pager.post(f"jobs/{job['id']}/cancel")
        made.append(job["id"])
    page, console = open_admin(hub, browser)
    page.fill("#filter-owner", pager.name)
    page.click("#admin-job-filters button[type=submit]")
    rows = page.locator("#admin-jobs tbody tr")
    page.wait_for_function("document.querySelectorAll('#admin-jobs tbody tr').length === 20 && "
                           "!document.getElementById('jobs-older').disabled")
    first = [rows.nth(i).get_attribute("data-job-id") for i in range(20)]
    assert first == made[::-1][:20]  # newest first
    page.click("#jobs-older")
    page.wait_for_function("document.querySelectorAll('#admin-jobs tbody tr').length === 1")
    assert rows.first.get_attribute("data-job-id") == made[0]
    assert page.locator("#jobs-older").is_disabled() and page.locator("#jobs-newer").is_enabled()
    assert page.locator("#jobs-page-info").inner_text() == "page 2"
    page.click("#jobs-newer")
    page.wait_for_function("document.querySelectorAll('#admin-jobs tbody tr').length === 20")
    assert rows.first.get_attribute("data-job-id") == made[-1]
    assert console.errors == [], "\n".join(console.errors)


#: Two nodes of a swarm as GET /admin/queue gives them (hub_service/executors/swarm.py nodes()):
#: one with a hostname and a label that are markup, which must show as text.
SWARM_NODES = [
    {"id": "n1", "hostname": "manager-1", "role": "manager", "availability": "active", "state": "ready",
     "labels": {"zone": "a", "gpu": ""}, "cpu": 4.0, "memory": 8 << 30, "jobs": ["j1", "j2"]},
    {"id": "n2", "hostname": "<b>worker</b>-2", "role": "worker", "availability": "drain", "state": "down",
     "labels": {"note": "<img src=x onerror=alert(1)>"}, "cpu": 1.5, "memory": 3 << 29, "jobs": []},
]


def test_admin_page_lists_a_swarms_nodes_as_text(hub, browser):
    page, console = open_admin(hub, browser)
    assert page.locator("#admin-nodes").is_hidden()  # one machine: no nodes, no table
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    def with_nodes(route):
        res = route.fetch()
        route.fulfill(response=res, json=dict(res.json(), nodes=SWARM_NODES))

    page.route(re.compile(r".*/admin/queue(\?.*)?$"), with_nodes)
    page.reload()
    page.wait_for_function("document.querySelectorAll('#admin-nodes-table tbody tr').length === 2")
    assert page.locator("#admin-nodes").is_visible()
    rows = page.locator("#admin-nodes-table tbody tr")
    cells = [[c.strip() for c in rows.nth(i).locator("th, td").all_inner_texts()] for i in range(2)]
    assert cells[0] == ["manager-1", "ready / active", "manager", "4", "8.00", "zone=a gpu", "2"], cells[0]
    assert cells[1] == ["<b>worker</b>-2", "down / drain", "worker", "1.5", "1.50",
                        "note=<img src=x onerror=alert(1)>", "0"], cells[1]
    assert rows.nth(0).locator("td").last.get_attribute("title") == "j1, j2"
    assert "text-danger-emphasis" in rows.nth(1).locator("td").first.get_attribute("class")  # takes no jobs
    assert page.locator("#admin-nodes img, #admin-nodes b").count() == 0
    shot(page, "admin-nodes")
    assert dialogs == [] and console.errors == [], (dialogs, console.errors)
