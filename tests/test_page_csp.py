"""The service's own pages under a strict Content-Security-Policy, on the Hub's one origin.

Many users' names, parameters and errors are shown on one origin: were an escape ever missed,
the page's policy is the second wall. Every page the service renders (each page route, its
error pages too) carries it; what a user made (a job's output) keeps its own ``sandbox``. In
Chromium, the pages run under it without a violation of their own, the Hub's page.html still
sets ``window.jhdata`` (its one inline script, by the answer's nonce), and a script or an
inline handler put into a page runs nothing and is reported as a violation.
"""

from __future__ import annotations

import os
import re

import pytest

from hub_service.handlers import routes
from hub_service.handlers.base import PAGE_CSP, STATIC_CSP, USER_CONTENT_CSP
from hub_service.handlers.pages import (
    HERE, HUB_INLINE_SCRIPT, JobOutputPage, NotFoundPage, PageHandler, hub_page_context, hub_templates_dir,
    make_environment,
)
from tests.browser import assert_hub_chrome, browser, logged_in  # noqa: F401
from tests.hubtest import SERVICE, make_notebook

#: the policy with its nonce as a pattern: what every page's header must be
PAGE_POLICY = re.compile(re.escape(PAGE_CSP).replace(re.escape("{nonce}"), r"[A-Za-z0-9_-]{24}"))
#: what the page's policy forbids in a template: an inline script, an inline handler, a style
#: attribute, a javascript: URL (a JSON data block is no script: it is never run)
FORBIDDEN = re.compile(r"<script(?![^>]*\b(?:src=|type=\"application/json\"))[^>]*>|\son\w+\s*=|\sstyle\s*=|"
                       r"javascript:", re.I)

#: injected into a page: an inline script and an inline handler, as a missed escape would put them
INJECT = """() => new Promise((resolve) => {
  const seen = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    seen.push({directive: e.effectiveDirective, blocked: e.blockedURI});
    if (seen.length === 2) resolve(seen);
  });
  const script = document.createElement("script");
  script.textContent = "window.__cspCanary = 'script ran'";
  document.body.appendChild(script);
  const box = document.createElement("div");
  box.innerHTML = '<img src="data:," onerror="window.__cspCanary = \\'handler ran\\'">';
  document.body.appendChild(box);
  setTimeout(() => resolve(seen), 5000);
})"""


# -- the templates (no Hub) ------------------------------------------------------------------------


def test_our_templates_hold_nothing_the_page_policy_forbids():
    folder = os.path.join(HERE, "templates")
    for name in sorted(os.listdir(folder)):
        with open(os.path.join(folder, name)) as f:
            found = FORBIDDEN.findall(f.read())
        assert not found, (name, found)


def test_page_html_has_one_inline_script_and_it_carries_the_answers_nonce():
    with open(os.path.join(hub_templates_dir(), "page.html")) as f:
        source = f.read()
    inline = [tag for tag in re.findall(r"<script[^>]*>", source) if "src=" not in tag]
    assert inline == [HUB_INLINE_SCRIPT], inline  # a Hub release that changes it fails here, not a page
    context = hub_page_context(user_name="alice", is_admin=True, hub_prefix="/hub/", service_name="notebook-jobs",
                               service_prefix="/services/notebook-jobs/", xsrf_token="tok")
    html = make_environment().get_template("admin.html").render(
        **context, csp_nonce="N0nce", service_prefix="/services/notebook-jobs/",
        api_url="/services/notebook-jobs/api/", is_admin=True)
    scripts = [tag for tag in re.findall(r"<script[^>]*>", html) if "src=" not in tag]
    assert scripts == ['<script type="text/javascript" nonce="N0nce">',
                       '<script type="application/json" id="notebook-jobs-config">'], scripts
    assert not FORBIDDEN.findall(html.replace(' nonce="N0nce"', "").replace(HUB_INLINE_SCRIPT, ""))


# -- through the real Hub, in Chromium -------------------------------------------------------------


@pytest.fixture(scope="module")
def made(hub):
    """A job and a sweep of alice's, ended, for the pages that show one."""
    alice = hub.user("alice")
    job = alice.submit(make_notebook("print(n)", parameters="n = 0"))
    r = alice.post("sweeps", json={"notebook": make_notebook("print(n)", parameters="n = 0"),
                                   "parameters": {"n": [1, 2]}})
    assert r.status_code == 201, r.text
    sweep = r.json()
    alice.wait(job["id"])
    for run in sweep["runs"]:
        alice.wait(run["job_id"])
    return {"job_id": job["id"], "sweep_id": sweep["id"]}


def signed_in(hub, browser, name):
    """A page of ``name``'s, signed in to the service too (its OAuth done), and its console."""
    page, console = logged_in(hub, browser, name)
    page.goto(hub.url + SERVICE)
    return page, console


def page_urls(hub, made) -> dict:
    """Every page route of the service (a PageHandler's), as a URL of alice's things: handler -> URL (not the
    404 page of every other address)."""
    urls = {}
    for pattern, handler in routes(SERVICE):
        if isinstance(handler, type) and issubclass(handler, PageHandler) and handler is not NotFoundPage:
            path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: made[m.group(1)], pattern).rstrip("?")
            urls[handler] = hub.url + path
    return urls


def test_every_page_carries_the_page_policy_and_a_users_output_its_sandbox(hub, browser, made):
    page, _ = signed_in(hub, browser, "admin")
    urls = page_urls(hub, made)
    assert len(urls) >= 6, urls  # home, job, sweep, schedules, admin, and the output page
    nonces = set()
    for handler, url in urls.items():
        r = page.request.get(url, max_redirects=0)
        assert r.status == 200, (url, r.status)
        policy = r.headers["content-security-policy"]
        if handler is JobOutputPage:  # a user's HTML in the service's origin: an origin of its own
            assert policy == USER_CONTENT_CSP, (url, policy)
            continue
        assert PAGE_POLICY.fullmatch(policy), (url, policy)
        assert r.headers["content-type"].startswith("text/html")
        nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
        assert f'nonce="{nonce}"' in r.text()  # the one the Hub's inline script carries
        nonces.add(nonce)
    assert len(nonces) == len(urls) - 1  # a fresh one per answer
    # the error pages are pages too: a job nobody has (404), the admin page to a non-admin (403), an address
    # the service has no page at (its own 404 page, not Tornado's bare one; signed in or not)
    page, _ = signed_in(hub, browser, "csp-bob")
    unknown = ("no/such/page", "jobs/not-an-id", "sweeps/", "jobs/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    stranger = browser.new_context()  # (signed in to nothing)
    for path, status in ((f"jobs/{'0' * 32}", 404), (f"jobs/{made['job_id']}", 404), ("admin", 403),
                         *((path, 404) for path in unknown)):
        for client in (page.request, stranger.request) if path in unknown else (page.request,):
            r = client.get(hub.url + SERVICE + path, max_redirects=0)
            assert r.status == status, (path, r.status)
            assert PAGE_POLICY.fullmatch(r.headers["content-security-policy"]), path
            assert r.headers["content-type"].startswith("text/html") and 'id="error-page"' in r.text(), path
            if path in unknown:
                assert "There is no page at this address." in r.text() and "<script>alert" not in r.text()
    # the pages' static files, and Tornado's bare 404 for one missing, run nothing as documents
    for path, status in (("static/jobs.js", 200), ("static/no-such.js", 404), ("static/%3Cscript%3E.html", 404)):
        r = stranger.request.get(hub.url + SERVICE + path, max_redirects=0)
        assert r.status == status and r.headers["content-security-policy"] == STATIC_CSP, (path, r.status)
    stranger.close()
    # and the API's JSON is no page
    r = page.request.get(hub.url + SERVICE + "api/jobs")
    assert r.status == 200 and "content-security-policy" not in r.headers


def test_no_page_breaks_its_policy_and_what_is_put_into_one_runs_nothing(hub, browser, made):
    page, console = signed_in(hub, browser, "admin")
    for handler, url in page_urls(hub, made).items():
        if handler is JobOutputPage:
            continue
        page.goto(url)
        page.wait_for_load_state("load")
        page.wait_for_timeout(300)  # the page's own scripts draw it from the API
        assert_hub_chrome(page, "admin")  # page.html's inline script ran, by its nonce
        assert console.errors == [], (url, console.errors)  # no violation of the page's own
        seen = page.evaluate(INJECT)
        assert page.evaluate("window.__cspCanary") is None, url
        assert sorted(v["directive"] for v in seen) == ["script-src-attr", "script-src-elem"], (url, seen)
        assert all(v["blocked"] == "inline" for v in seen), seen
        assert len(console.errors) == 2 and all("Content Security Policy" in e for e in console.errors), \
            console.errors
        console.errors.clear()
