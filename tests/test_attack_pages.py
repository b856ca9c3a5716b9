"""A hostile Hub user against the service's own pages, in Chromium on a real Hub (local executor).

Everything here is made by mallory and opened by an admin (and by mallory): metric names that are
markup (``<img onerror>``, ``"><svg onload>``) or the names of JavaScript's own object members
(``__proto__``, ``constructor``, ``toString``), reported both ways (the helper and ``PROGRESS:``
lines); names the service must refuse (a right-to-left override, 10,000 characters); a job name, a
sweep name and parameter values that are markup, a parameter named ``__proto__`` that only one run
of a sweep has, a value of 3,000 characters; environments whose descriptions are markup, a
requirement line that is markup; a GPU's name and a swarm node's labels that are markup.

Each payload, if it ever ran, would set ``window.__pwned`` and open an alert: the tests assert that
neither happened, that the payload's characters are on the page as text, and that the pages' own
scripts raised nothing. The GPUs and the swarm's nodes are absent here: the admin's queue answer is
given them on its way to the page (as tests/test_browser_admin.py does for the nodes).
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlencode

import pytest

from tests.browser import browser, logged_in, shot  # noqa: F401
from tests.hubtest import SERVICE, Hub, environments_config, make_notebook
from tests.test_cli_text import stored

IMG = "<img src=x onerror=window.__pwned=1;alert(1)>"
SVG = '"><svg onload=window.__pwned=2;alert(2)>'
#: the metric names the service keeps: as they were reported
KEPT = sorted([IMG, SVG, "__proto__", "constructor", "toString"])
RTL = "\u202egpj.exe"  # a right-to-left override: no printable name
NAME = "<img src=x onerror=window.__pwned=3;alert(3)> metrics"
SCRIPT = "<script>window.__pwned=4;alert(4)</script>"
SWEEP = "<svg onload=window.__pwned=5;alert(5)> sweep"
LONG_VALUE = "L" * 3000 + "<b>end</b>"
ENVIRONMENTS = [
    {"name": "python", "description": "<img src=x onerror=window.__pwned=6;alert(6)>"},
    {"name": "evil", "description": SCRIPT, "image": "notebook-jobs-evil:1"},
]
NO_MARKUP = "() => document.querySelectorAll('main [onerror], main [onload], main script, #job-page img').length"


def metrics_notebook() -> dict:
    """Three steps of the kept names, both ways; then the names to refuse, both ways."""
    return make_notebook(
        "import json\nfrom notebook_jobs import report\n"
        "for step in range(3):\n"
        f"    report(step=step, **{{{IMG!r}: step + 1.0, '__proto__': 2.0 * step, 'constructor': 3.0}})\n"
        f"    print('PROGRESS: ' + json.dumps({{{SVG!r}: step / 2, 'toString': 1.0, 'step': step}}))\n"
        f"print('PROGRESS: ' + json.dumps({{{RTL!r}: 1.0}}))\n"
        f"report(**{{'y' * 10000: 1.0}})\n"
        "print('PROGRESS: ' + json.dumps({'z' * 10000: 1.0}))",
        parameters="tag = ''")


def sweep_notebook() -> dict:
    """A run whose ``__proto__`` is set reports ``constructor`` and ``__proto__`` too; the other does not."""
    return make_notebook(
        "from notebook_jobs import report\n"
        f"values = {{{IMG!r}: 1.0 if __proto__ else 2.0}}\n"
        "if __proto__:\n    values.update({'constructor': 5.0, '__proto__': 7.0})\n"
        "for step in range(2):\n    report(step=step, **values)",
        parameters="tag = ''\n__proto__ = 0")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A Hub of this module's own: its admin offers environments whose descriptions are markup."""
    tmp = tmp_path_factory.mktemp("attack-hub")
    h = Hub(tmp, extra_args=environments_config(tmp, ENVIRONMENTS))
    h.start()
    yield h
    h.stop()


@pytest.fixture(scope="module")
def made(hub):
    """mallory's ended job (hostile metrics, name and parameter) and ended sweep (hostile runs)."""
    mallory = hub.user("mallory")
    job = mallory.submit(metrics_notebook(), name=NAME, parameters={"tag": SCRIPT})
    r = mallory.post("sweeps", json={"notebook": sweep_notebook(), "name": SWEEP,
                                     "runs": [{"tag": IMG, "__proto__": 1}, {"tag": LONG_VALUE}]})
    assert r.status_code == 201, r.text
    sweep = r.json()
    job = mallory.wait(job["id"], timeout=120)
    assert job["status"] == "succeeded", job
    runs = [mallory.wait(run["job_id"], timeout=120) for run in sweep["runs"]]
    assert [run["status"] for run in runs] == ["succeeded", "succeeded"], runs
    return {"job": job, "sweep": sweep, "runs": runs}


class Watch:
    """What a payload would leave behind on a page: the canary, an alert, an error of the page's."""

    def __init__(self, page, console):
        self.page, self.console, self.dialogs = page, console, []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def assert_nothing_ran(self):
        self.page.wait_for_timeout(300)  # an onerror fires once its image failed
        assert self.page.evaluate("window.__pwned") is None
        assert self.dialogs == [], self.dialogs
        assert self.page.evaluate(NO_MARKUP) == 0
        assert self.console.errors == [], "\n".join(self.console.errors)


@pytest.fixture(scope="module")
def admin_page(hub, browser):  # noqa: F811
    page, console = logged_in(hub, browser, "admin")
    yield page, Watch(page, console)
    page.close()


# -- the API -------------------------------------------------------------------------------------


def test_markup_and_object_member_names_are_kept_as_reported_and_unprintable_or_long_ones_refused(hub, made):
    mallory = hub.user("mallory")
    job = made["job"]
    series = mallory.get(f"jobs/{job['id']}/metrics").json()["series"]
    assert sorted(s["name"] for s in series) == KEPT
    assert sorted(job["metrics"]) == KEPT
    assert {s["name"]: [p["value"] for p in s["points"]] for s in series}[IMG] == [1.0, 2.0, 3.0]
    picked = mallory.get(f"jobs/{job['id']}/metrics", params={"name": IMG}).json()["series"]
    assert [s["name"] for s in picked] == [IMG]
    log = mallory.get(f"jobs/{job['id']}/logs").text
    # said once, by the first refused name's printable stand-in (the others were refused as well: not kept)
    refusals = [line for line in log.splitlines() if "printable characters" in line]
    assert refusals == ["runner: metrics: refused '\\u202egpj.exe' (a name is 1 to 100 printable characters) "
                        "(further refusals are not logged)"], refusals
    assert RTL not in log


def test_every_output_format_is_served_sandboxed_unsniffed_and_as_a_download_when_asked(hub, made):
    mallory = hub.user("mallory")
    job = made["job"]
    assert "metrics" in job["outputs"], job["outputs"]
    for fmt in job["outputs"]:
        for download in (False, True):
            params = {"format": fmt, **({"download": 1} if download else {})}
            r = mallory.get(f"jobs/{job['id']}/output", params=params)
            assert r.status_code == 200, (fmt, r.text)
            assert r.headers["Content-Security-Policy"] == "sandbox", fmt
            assert r.headers["X-Content-Type-Options"] == "nosniff", fmt
            disposition = r.headers.get("Content-Disposition")
            if download:
                assert disposition.startswith("attachment; filename=\""), (fmt, disposition)
                assert "<" not in disposition and ">" not in disposition, disposition  # the name, made safe
            else:
                assert disposition is None, (fmt, disposition)
    r = mallory.get(f"jobs/{job['id']}/output", params={"format": "metrics"})
    assert r.headers["Content-Type"].startswith("application/json")
    assert sorted(r.json()["final"]) == KEPT
    r = mallory.get(f"jobs/{job['id']}/metrics")
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["X-Content-Type-Options"] == "nosniff"


def test_another_users_metrics_sweeps_and_workspace_are_out_of_reach(hub, made):
    """mallory's sweep may not read bob's notebook (a link in her workspace, a path out of it), and bob may
    not read or act on mallory's metrics and sweep: each is a 4xx that names what is wrong, or a 404."""
    mallory, bob = hub.user("mallory"), hub.user("bob")
    secret = hub.data / "users" / "bob" / "secret.ipynb"
    hub.write_workspace("bob", "secret.ipynb", make_notebook("print('bob only')", parameters="x = 1"))
    link = hub.data / "users" / "mallory" / "link.ipynb"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)
    link.symlink_to(secret)
    for path in ("link.ipynb", "../bob/secret.ipynb", str(secret)):
        r = mallory.post("sweeps", json={"path": path, "parameters": {"x": [1, 2]}})
        assert 400 <= r.status_code < 500 and r.json()["error"]["field"] == "/path", (path, r.status_code, r.text)
    job, sweep = made["job"], made["sweep"]
    for method, path in (("get", f"jobs/{job['id']}/metrics"), ("get", f"jobs/{job['id']}/output?format=metrics"),
                         ("get", f"sweeps/{sweep['id']}"), ("post", f"sweeps/{sweep['id']}/cancel"),
                         ("post", f"sweeps/{sweep['id']}/rerun"), ("delete", f"sweeps/{sweep['id']}")):
        r = getattr(bob, method)(path)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
    assert sweep["id"] not in [s["id"] for s in bob.get("sweeps").json()["sweeps"]]
    assert mallory.get(f"sweeps/{sweep['id']}").status_code == 200  # (still there: bob's delete did nothing)


# -- the pages, in Chromium ----------------------------------------------------------------------


def test_the_job_page_charts_markup_and_object_member_names_as_text(hub, made, admin_page):
    page, watch = admin_page
    job = made["job"]
    page.goto(f"{hub.url}{SERVICE}jobs/{job['id']}")
    page.wait_for_function("document.querySelectorAll('#job-metrics figure g[data-points=\"3\"]').length === 5")
    drawn = page.locator("#job-metrics figure").evaluate_all(
        "(fs) => fs.map((f) => [f.dataset.metric, f.querySelector('.chart-title').textContent])")
    assert sorted(drawn) == sorted([name, name] for name in KEPT)
    assert page.locator("h1").inner_text().startswith(NAME)
    assert SCRIPT in page.locator("#job-parameters").inner_text()
    # the readout names nothing but the values, and says them from the keyboard
    chart = page.locator("#job-metrics figure").nth([name for name, _ in drawn].index(IMG))
    chart.focus()
    page.keyboard.press("End")
    assert chart.get_attribute("aria-description") == "step 2: 3"
    shot(page, "attack-job-page")
    watch.assert_nothing_ran()


def test_the_sweep_page_shows_sorts_and_charts_hostile_runs_as_text(hub, made, admin_page):
    page, watch = admin_page
    sweep, runs = made["sweep"], made["runs"]
    first, second = (run["id"] for run in runs)
    page.goto(f"{hub.url}{SERVICE}sweeps/{sweep['id']}")
    page.wait_for_function("document.getElementById('sweep-status').textContent === 'succeeded'", timeout=30_000)
    assert page.locator("h1").inner_text().startswith(SWEEP)
    titles = page.locator("#sweep-runs thead th[data-key]").evaluate_all(
        "(ths) => Object.fromEntries(ths.map((th) => [th.dataset.key, th.textContent]))")
    for key, title in (("param:tag", "tag"), ("param:__proto__", "__proto__"), (f"metric:{IMG}", IMG),
                       ("metric:constructor", "constructor"), ("metric:__proto__", "__proto__")):
        assert titles[key] == title, titles

    def cell(job_id, key):
        return page.locator(f'#sweep-runs tr[data-job-id="{job_id}"] td[data-key="{key}"]').inner_text()

    assert cell(first, "param:tag") == IMG and cell(second, "param:tag") == LONG_VALUE
    # a run without a value shows none, even where the name is one of every object's own members
    for key, value in (("param:__proto__", "1"), ("metric:constructor", "5"), ("metric:__proto__", "7")):
        assert (cell(first, key), cell(second, key)) == (value, ""), key

    def order():
        return page.locator("#sweep-runs tbody tr").evaluate_all("(rows) => rows.map((r) => r.dataset.jobId)")

    # sorted by each such column either way, the run without a value stays last
    for key in ("param:__proto__", "metric:constructor", "metric:__proto__"):
        for _direction in ("ascending", "descending"):
            page.click(f'#sweep-runs thead th[data-key="{key}"] button')
            assert page.get_attribute(f'#sweep-runs thead th[data-key="{key}"]', "aria-sort") == _direction
            assert order() == [first, second], (key, _direction)

    # the chart of a metric named with markup: its title, legend and readout are text
    page.select_option("#sweep-metric", IMG)
    page.wait_for_function("document.getElementById('sweep-chart').dataset.lines === '2'")
    texts = page.locator("#sweep-chart svg text").all_text_contents()
    assert f"{IMG} of each run" in texts
    assert any(t.startswith(f"tag={IMG}") for t in texts), texts
    assert "tag=" + LONG_VALUE[:55] + "…" in texts, texts  # a run's name is cut at 60 characters
    page.locator("#sweep-chart").focus()
    page.keyboard.press("End")
    assert IMG in page.get_attribute("#sweep-chart", "aria-description")
    # the long value stays inside its column: the page itself does not scroll sideways
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "attack-sweep-page")
    watch.assert_nothing_ran()
    # a link to the page with a metric of markup picked: it is an option's text, and the best run's
    page.goto(f"{hub.url}{SERVICE}sweeps/{sweep['id']}?" + urlencode({"metric": IMG, "mode": "max"}))
    page.wait_for_function("document.getElementById('sweep-chart').dataset.lines === '2'")
    assert page.locator("#sweep-metric").input_value() == IMG
    assert page.locator("#sweep-best").inner_text().endswith(f"({IMG} 2)")
    watch.assert_nothing_ran()


def test_the_job_lists_show_hostile_names_and_parameters_as_text(hub, browser, made, admin_page):  # noqa: F811
    page, watch = admin_page
    page.goto(f"{hub.url}{SERVICE}admin")
    row = page.locator(f'#admin-jobs tr[data-job-id="{made["job"]["id"]}"]')
    row.wait_for(timeout=30_000)
    assert NAME in row.inner_text()
    watch.assert_nothing_ran()

    own, console = logged_in(hub, browser, "mallory")
    own_watch = Watch(own, console)
    own.goto(hub.url + SERVICE)
    mine = own.locator(f'tr[data-job-id="{made["job"]["id"]}"]')
    mine.wait_for(timeout=30_000)
    assert NAME in mine.inner_text()
    assert "tag=<script>window.__pwned=4" in mine.inner_text()  # (cut, as a list cuts a value)
    shot(own, "attack-job-list")
    own_watch.assert_nothing_ran()
    own.close()


def test_environments_and_a_requirement_line_of_markup_are_text_in_the_form(hub, browser):  # noqa: F811
    page, console = logged_in(hub, browser, "mallory")
    watch = Watch(page, console)
    page.goto(hub.url + SERVICE)
    assert page.locator("#environment option").all_inner_texts() == [
        f"{e['name']} — {e['description']}" for e in ENVIRONMENTS]
    # a package's name is what the image's pip list says: here one that is markup
    forged = {"name": "<img src=x onerror=window.__pwned=7;alert(7)>", "version": SCRIPT}

    def with_package(route):
        res = route.fetch()
        answer = res.json()
        answer["environments"][0]["packages"].insert(0, forged)
        route.fulfill(response=res, json=answer)

    page.route(re.compile(r".*/api/environments(\?.*)?$"), with_package)
    page.click("#env-packages summary")
    page.wait_for_function("document.getElementById('env-package-list').textContent.startsWith('<img')")
    assert page.locator("#env-package-list").inner_text().splitlines()[0] == f"{forged['name']}=={SCRIPT}"
    # a requirement line that is markup: refused, and the refusal (which quotes it) shown as text
    page.click("label[for=source-upload]")
    page.set_input_files("#file", files=[{"name": "nb.ipynb", "mimeType": "application/json",
                                          "buffer": json.dumps(make_notebook("1")).encode()}])
    page.fill("#requirements", IMG)
    page.click("#submit-button")
    error = page.locator('[data-error-for="requirements"]')
    page.wait_for_function("document.querySelector('[data-error-for=requirements]').textContent.includes('<img')",
                           timeout=15_000)
    assert "requirements line 1" in error.inner_text()
    shot(page, "attack-form")
    refused = [e for e in console.errors
               if re.search(r"/api/jobs\): Failed to load resource: the server responded with a status of 400", e)]
    assert refused, console.errors  # (Chromium's line for the 400: the service's answer, no error of a script)
    console.errors[:] = [e for e in console.errors if e not in refused]
    watch.assert_nothing_ran()
    page.close()


def test_a_parameter_named_like_an_object_member_is_sent_from_the_form(hub, browser):  # noqa: F811
    """``__proto__`` is a Python name like any: a value typed for it is sent (as a job and as a sweep), not lost
    as an object's prototype."""
    nb = make_notebook("print(__proto__, constructor)", parameters="__proto__ = 0\nconstructor = 'a'")
    page, console = logged_in(hub, browser, "mallory")
    watch = Watch(page, console)
    mallory = hub.user("mallory")
    made = []
    for sweep in (False, True):
        page.goto(hub.url + SERVICE)
        page.click("label[for=source-upload]")
        page.set_input_files("#file", files=[{"name": "proto.ipynb", "mimeType": "application/json",
                                              "buffer": json.dumps(nb).encode()}])
        page.locator("#parameter-fields-__proto__").wait_for()
        if sweep:
            page.check("#sweep-mode")
        page.fill("#parameter-fields-__proto__", "1, 2" if sweep else "5")
        page.fill("#parameter-fields-constructor", "b")
        page.click("#submit-button")
        page.wait_for_url("**/sweeps/*" if sweep else "**/jobs/*")
        made.append(page.url.rstrip("/").split("/")[-1])
    job = mallory.get(f"jobs/{made[0]}").json()
    assert job["parameters"] == {"__proto__": 5, "constructor": "b"}, job["parameters"]
    runs = mallory.get(f"sweeps/{made[1]}").json()["runs"]
    assert [run["parameters"] for run in runs] == [{"__proto__": 1, "constructor": "b"},
                                                    {"__proto__": 2, "constructor": "b"}]
    watch.assert_nothing_ran()
    page.close()


def test_the_admins_gpu_and_node_tables_show_hostile_names_as_text(hub, made, admin_page):
    page, watch = admin_page
    gpus = [{"index": 0, "uuid": SVG, "name": "<img src=x onerror=window.__pwned=8;alert(8)>", "memory": 16 << 30,
             "jobs": [made["job"]["id"]]}]
    nodes = [{"id": "n1", "hostname": SCRIPT, "role": "worker", "availability": "active", "state": "ready",
              "labels": {"__proto__": IMG, "constructor": ""}, "cpu": 2.0, "memory": 4 << 30, "jobs": []}]

    def forged(route):
        res = route.fetch()
        route.fulfill(response=res, json=dict(res.json(), gpus=gpus, nodes=nodes))

    page.route(re.compile(r".*/admin/queue(\?.*)?$"), forged)
    page.goto(f"{hub.url}{SERVICE}admin")
    page.wait_for_function("document.querySelectorAll('#admin-gpus-table tbody tr').length === 1")
    page.wait_for_function("document.querySelectorAll('#admin-nodes-table tbody tr').length === 1")
    gpu = page.locator("#admin-gpus-table tbody tr")
    assert gpus[0]["name"] in gpu.inner_text() and gpu.locator("td").first.get_attribute("title") == SVG
    node = page.locator("#admin-nodes-table tbody tr")
    assert node.locator("th").inner_text() == SCRIPT
    assert node.locator(".admin-node-label").all_inner_texts() == [f"__proto__={IMG}", "constructor"]
    shot(page, "attack-admin-tables")
    page.unroute(re.compile(r".*/admin/queue(\?.*)?$"))
    watch.assert_nothing_ran()


#: where each character of ``text`` in the first text node of ``el`` that holds it is drawn: its left edge
CHAR_LEFTS = """(el, text) => {
  const node = [...el.childNodes].find((n) => n.nodeType === 3 && n.data.includes(text));
  const at = node.data.indexOf(text), range = document.createRange();
  return [...text].map((_, i) => { range.setStart(node, at + i); range.setEnd(node, at + i + 1);
                                   return range.getBoundingClientRect().left; });
}"""
HEBREW = "שלום"


def test_a_parameter_value_with_a_bidi_override_or_hebrew_reorders_nothing_around_it(hub, browser):  # noqa: F811
    """A right-to-left override in a value would draw the rest of a joined line backwards ("label=exe.jpg, n=2"
    shown as "label=2=n ,exe.jpg"): each value is isolated, so what follows it reads as written, and Hebrew in a
    value still reads right to left. The job page's JSON writes the override as an escape."""
    eve = hub.user("rtl-eve")
    nb = make_notebook("import time\ntime.sleep(1)", parameters="label = 'x'\nn = 1")
    spoof = eve.submit(nb, parameters={"label": RTL, "n": 2})
    hebrew = eve.submit(nb, parameters={"label": HEBREW, "n": 3})
    page, console = logged_in(hub, browser, "rtl-eve")
    page.goto(hub.url + SERVICE)
    cells = {}
    for job, n in ((spoof, 2), (hebrew, 3)):
        cells[n] = page.locator(f'tr[data-job-id="{job["id"]}"] td.job-parameters')
        cells[n].wait_for(timeout=30_000)
    # after the override, ", n=2" is drawn left to right, to the right of the value
    label, after = (cells[2].evaluate(CHAR_LEFTS, text) for text in ("label=", ", n=2"))
    value = cells[2].evaluate(CHAR_LEFTS, "gpj.exe")
    assert after == sorted(after) and label == sorted(label), after
    assert max(label) < min(value) and max(value) < min(after)
    assert value == sorted(value, reverse=True)  # (the override still turns its own value: it is the user's)
    # Hebrew reads right to left inside its isolate, the rest left to right around it
    letters, after = cells[3].evaluate(CHAR_LEFTS, HEBREW), cells[3].evaluate(CHAR_LEFTS, ", n=3")
    assert letters == sorted(letters, reverse=True) and after == sorted(after) and max(letters) < min(after)
    assert cells[3].inner_text().replace("\u2068", "").replace("\u2069", "") == f"label={HEBREW}, n=3"

    page.goto(f"{hub.url}{SERVICE}jobs/{spoof['id']}")
    page.wait_for_function("document.getElementById('job-parameters').textContent !== ''")
    assert page.locator("#job-parameters").inner_text() == '{"label":"\\u202egpj.exe","n":2}'
    assert console.errors == []
    page.close()


#: a name stored before names were checked: a stray PDI first, which would end a bare <bdi>'s isolate, then an override
STORED_RTL = "\u2069\u202egpj.exe"


def test_a_stored_name_with_a_bidi_override_reorders_nothing_around_it(hub, browser):  # noqa: F811
    """Intake refuses a name with bidi controls, but an older row may hold one. Where a page writes a job's or a
    sweep's name on a line with other text (a heading beside its status, the list's name beside its sweep badge, the
    schedule form's "Run NAME every…"), the name is isolated: its override turns the name only, and what follows it
    is drawn after it, as written."""
    ruth = hub.user("rtl-ruth")
    r = ruth.post("sweeps", json={"notebook": make_notebook("1", parameters="n = 0"), "runs": [{"n": 1}]})
    assert r.status_code == 201, r.text
    sweep = r.json()
    job_id = sweep["runs"][0]["job_id"]
    assert ruth.wait(job_id)["status"] == "succeeded"
    stored(hub, "jobs", job_id, STORED_RTL)
    stored(hub, "sweeps", sweep["id"], STORED_RTL)
    page, console = logged_in(hub, browser, "rtl-ruth")

    def reads_after_the_name(name, rest, words):
        drawn, follows = name.evaluate(CHAR_LEFTS, "gpj.exe"), rest.evaluate(CHAR_LEFTS, words)
        assert drawn == sorted(drawn, reverse=True)  # (the override still turns the name: it is the user's)
        assert follows == sorted(follows) and max(drawn) < min(follows), (words, drawn, follows)

    page.goto(f"{hub.url}{SERVICE}jobs/{job_id}")
    name = page.locator("h1 bdi")
    assert name.text_content() == "\u2068\u202egpj.exe\u2069"  # in an isolate, its stray PDI dropped
    reads_after_the_name(name, page.locator("#job-status"), "succeeded")

    page.goto(f"{hub.url}{SERVICE}sweeps/{sweep['id']}")
    reads_after_the_name(page.locator("h1 bdi"), page.locator("#sweep-status"), "succeeded")

    page.goto(f"{hub.url}{SERVICE}schedules?from_job={job_id}")
    title = page.locator("#schedule-form-title")
    reads_after_the_name(title.locator("bdi"), title, " every…")

    page.goto(hub.url + SERVICE)
    row = page.locator(f'tr[data-job-id="{job_id}"]')
    row.wait_for(timeout=30_000)
    reads_after_the_name(row.locator("td a").first, row.locator("a.job-sweep"), "sweep")
    shot(page, "stored-bidi-name")
    assert console.errors == []
    page.close()


def test_the_admins_buttons_name_a_stored_bidi_name_isolated(hub, browser):  # noqa: F811
    """The admin's Cancel and Pause buttons are named for a screen reader after the job or schedule they act on
    ("cancel rosa's job NAME"), and the owner filter's tip after its user: a stored name's override is isolated
    there as on the lines a sighted admin reads, so it cannot turn the words after it."""
    rosa = hub.user("rtl-rosa")
    job = rosa.submit(make_notebook("import time\ntime.sleep(300)"), name="rosa-long")
    r = rosa.post("schedules", json={"code": "print(1)", "cron": "0 3 * * *", "name": "rosa-nightly"})
    assert r.status_code == 201, r.text
    schedule = r.json()
    stored(hub, "jobs", job["id"], STORED_RTL)
    stored(hub, "schedules", schedule["id"], STORED_RTL)
    rosa.wait(job["id"], statuses=("running",), timeout=120)
    page, console = logged_in(hub, browser, "admin")
    try:
        page.goto(hub.url + SERVICE + "admin")
        cancel = page.locator(f"#admin-jobs tr[data-job-id='{job['id']}'] button.admin-cancel")
        cancel.wait_for(timeout=30_000)
        isolated = "\u2068\u202egpj.exe\u2069"  # its stray PDI dropped, its override closed in
        assert cancel.get_attribute("aria-label") == f"cancel rtl-rosa's job {isolated}"
        pause = page.locator(f"#admin-schedules tr[data-schedule-id='{schedule['id']}'] button.admin-pause")
        assert pause.get_attribute("aria-label") == f"pause rtl-rosa's schedule {isolated}"
        # the message after the cancel reads the same way
        cancel.click()
        page.wait_for_function("document.getElementById('jobs-message').textContent.endsWith(' is cancelled')",
                               timeout=60_000)
        assert page.locator("#jobs-message").text_content() == f"rtl-rosa's job {isolated} is cancelled"
        assert console.errors == [], "\n".join(console.errors)
    finally:
        page.close()
        rosa.delete(f"schedules/{schedule['id']}")
