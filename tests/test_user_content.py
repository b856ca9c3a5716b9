"""What users made can run no script in the Hub's origin, whoever opens it (here: an admin, in Chromium).

A user's notebook whose markdown, outputs and prints hold ``<script>`` and ``<img onerror>``
that would mint the admin a token (as the reported attack did) is opened by an admin on
every route that serves user content: the API's output (html, md, ipynb; inline and
``download=1``), input and log, the output page a mail links to, and the job's page.
Inline views must be sandboxed (an opaque origin, scripts blocked) and not sniffed;
downloads must be downloads, not renders. Nothing the payload does may be seen: no
console marker, no request for a token, no changed title, no cookie.
"""

import re

import pytest
from playwright.sync_api import Error as PlaywrightError

from tests.browser import browser, logged_in, shot  # noqa: F401
from tests.hubtest import SERVICE, make_notebook

MARK = "XSS-RAN"
TOKENS = "/hub/api/users/admin/tokens"
#: what the attacker's script did: read nothing, just prove it ran and try for a token
JS = (f"console.log('{MARK}');document.title='PWNED';document.cookie='xss=ran; path=/';"
      f"try{{window.top.name='PWNED'}}catch(e){{}};"
      f"fetch('{TOKENS}',{{method:'POST',credentials:'include',body:'{{}}'}})")
PAYLOAD = f'<script>{JS}</script><img src=x onerror="{JS}"><svg onload="{JS}"></svg>'
NAME = f"<img src=x onerror=\"console.log('{MARK}-name')\">"  # a name the pages show (no '/': a name's rule)

CSP = "sandbox"
HTML, MD, IPYNB = "text/html; charset=utf-8", "text/markdown; charset=utf-8", "application/x-ipynb+json"
TEXT = "text/plain; charset=utf-8"


@pytest.fixture(scope="module")
def evil_job(hub):
    """One finished job of mallory's whose markdown, display output and prints carry the payload."""
    mallory = hub.user("mallory")
    nb = make_notebook(
        f"from IPython.display import HTML, Markdown, display\nP = {PAYLOAD!r}\n"
        "display(HTML(P))\ndisplay(Markdown(P))\nprint(P)",
        markdown=f"# Quarterly report\n\n{PAYLOAD}\n",
    )
    job = mallory.submit(nb, filename="report.ipynb", name=NAME)
    job = mallory.wait(job["id"], timeout=120)
    assert job["status"] == "succeeded", job
    return job


def api(job, tail):
    return f"{SERVICE}api/jobs/{job['id']}/{tail}"


#: (label, path under the Hub, the media type, downloaded) of every route that serves user content
def routes(job):
    out = [(f"api-output-{fmt}", api(job, f"output?format={fmt}"), media, False)
           for fmt, media in (("html", HTML), ("md", MD), ("ipynb", IPYNB))]
    out += [(f"api-output-{fmt}-download", api(job, f"output?format={fmt}&download=1"), media, True)
            for fmt, media in (("html", HTML), ("md", MD), ("ipynb", IPYNB))]
    out += [("api-output-default", api(job, "output"), IPYNB, False),
            ("api-input", api(job, "input"), IPYNB, False),
            ("api-logs", api(job, "logs"), TEXT, False),
            ("api-logs-follow", api(job, "logs?follow=1"), TEXT, False),
            ("page-output", f"{SERVICE}jobs/{job['id']}/output", HTML, False)]
    return out


LABELS = [r[0] for r in routes({"id": "0" * 32})]


# -- headers, for every route ---------------------------------------------------------------


@pytest.mark.parametrize("label", LABELS)
def test_every_route_of_user_content_is_sandboxed_and_not_sniffed(hub, admin, evil_job, label):
    _, path, media, download = next(r for r in routes(evil_job) if r[0] == label)
    session = admin.browser if path.startswith(f"{SERVICE}jobs/") else admin.api  # the page: a login
    r = session.get(hub.url + path)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == media
    assert r.headers["Content-Security-Policy"] == CSP
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    disposition = r.headers.get("Content-Disposition")
    if download:
        fmt = re.search(r"format=(\w+)", path).group(1)
        name = f"report-{evil_job['id'][:8]}.{fmt}"
        assert disposition == f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}", disposition
    else:
        assert disposition is None  # shown inline: sandboxed
    assert MARK in r.text  # the payload is served, as the user made it: only never run


def test_events_and_json_answers_are_not_sniffed_either(hub, admin, evil_job):
    r = admin.get(f"jobs/{evil_job['id']}/events", stream=True)
    with r:
        assert r.headers["Content-Type"] == "text/event-stream"
        assert r.headers["Content-Security-Policy"] == CSP
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    for path in (f"jobs/{evil_job['id']}", "jobs", f"jobs/{'0' * 32}/output"):  # JSON, an error too
        r = admin.get(path)
        assert r.headers["Content-Type"].startswith("application/json")
        assert r.headers["X-Content-Type-Options"] == "nosniff"


# -- in Chromium, as the admin -----------------------------------------------------------------


class Watch:
    """What a page's scripts gave away: console lines, requests for a token, the title, cookies."""

    def __init__(self, page):
        self.page, self.console, self.token_requests = page, [], []
        page.on("console", lambda msg: self.console.append(msg.text))
        page.on("request", lambda req: self.token_requests.append(f"{req.method} {req.url}")
                if TOKENS in req.url else None)

    def reset(self):
        self.console.clear()
        self.token_requests.clear()
        self.page.context.clear_cookies(name="xss")  # each route proves itself: what a script that ran
        self.page.evaluate("window.name = ''")        # on an earlier one left behind is gone

    def assert_nothing_ran(self, label):
        self.page.wait_for_timeout(400)  # an onerror fires once the image failed: give it the time
        assert not [line for line in self.console if MARK in line], (label, self.console)
        assert not self.token_requests, (label, self.token_requests)
        cookies = {c["name"] for c in self.page.context.cookies()}
        assert "xss" not in cookies, (label, cookies)


@pytest.fixture(scope="module")
def admin_page(hub, browser):  # noqa: F811
    page, _console = logged_in(hub, browser, "admin")
    # the tests reach 127.0.0.1 only: the render's links to CDNs are refused here, not tried
    page.route(re.compile(r"^(?!http://127\.0\.0\.1[:/])(?!data:).*"), lambda route: route.abort())
    page.goto(hub.url + SERVICE)  # the Hub OAuth round trip: the service's cookie, as the admin
    assert page.locator("h1").inner_text() == "Notebook jobs"
    watch = Watch(page)
    yield page, watch
    page.close()


def admin_tokens(hub, admin):
    r = admin.api.get(hub.url + TOKENS)
    assert r.status_code == 200, r.text
    return sorted(t["id"] for t in r.json()["api_tokens"])


@pytest.mark.parametrize("label", [label for label in LABELS if "download" not in label])
def test_an_admin_opening_user_content_runs_none_of_its_scripts(hub, admin, evil_job, admin_page, label):
    page, watch = admin_page
    _, path, media, _ = next(r for r in routes(evil_job) if r[0] == label)
    tokens = admin_tokens(hub, admin)
    watch.reset()
    response = page.goto(hub.url + path)
    assert response.status == 200 and page.url == hub.url + path, page.url  # shown, not downloaded
    watch.assert_nothing_ran(label)
    # a document of an origin of its own, whose title its script never set
    assert page.evaluate("window.origin") == "null", label
    assert page.evaluate("document.title") != "PWNED" and page.evaluate("window.name") != "PWNED"
    if media == HTML:  # the payload is in the page, and the sandbox is what stopped it
        assert page.locator("img[src=x]").count() >= 2
        blocked = [line for line in watch.console if re.match(r"Blocked script execution .* sandboxed", line)]
        assert blocked, watch.console
    else:  # shown as text: the payload is characters, not markup
        assert MARK in page.locator("body").inner_text()
        assert page.locator("body script, body img").count() == 0
    shot(page, f"user-content-{label}")
    assert admin_tokens(hub, admin) == tokens


@pytest.mark.parametrize("fmt", ["html", "md", "ipynb"])
def test_a_download_is_saved_not_rendered(hub, evil_job, admin_page, fmt):
    page, watch = admin_page
    page.goto(hub.url + SERVICE)
    before = page.url
    watch.reset()
    url = hub.url + api(evil_job, f"output?format={fmt}&download=1")
    with page.expect_download(timeout=15_000) as info:
        try:
            page.goto(url)
        except PlaywrightError as e:  # Chromium ends a navigation that became a download
            assert "Download is starting" in str(e) or "ERR_ABORTED" in str(e), e
    download = info.value
    assert download.suggested_filename == f"report-{evil_job['id'][:8]}.{fmt}"
    assert MARK in open(download.path(), encoding="utf-8").read()
    assert page.url == before  # still the page it was on: nothing rendered
    watch.assert_nothing_ran(f"download-{fmt}")


def test_the_job_page_shows_the_job_and_its_name_without_running_them(hub, admin, evil_job, admin_page):
    page, watch = admin_page
    tokens = admin_tokens(hub, admin)
    watch.reset()
    page.goto(f"{hub.url}{SERVICE}jobs/{evil_job['id']}")
    frame = page.frame_locator("#job-output")
    frame.locator("img[src=x]").first.wait_for(state="attached", timeout=20_000)  # the render is in
    page.wait_for_function("document.getElementById('job-log').textContent.includes('XSS-RAN')")
    watch.assert_nothing_ran("job-page")
    assert NAME in page.locator("h1").first.inner_text()  # the name is text on the page
    assert page.evaluate("document.title") != "PWNED"
    shot(page, "user-content-job-page")
    assert admin_tokens(hub, admin) == tokens
