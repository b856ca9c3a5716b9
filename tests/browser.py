"""What every browser test needs: Debian's Chromium via Playwright, a Hub login, screenshots.

Test modules import the ``browser`` fixture and the helpers from here; screenshots land in
test-output/pages/ (look at them after a change).
"""

import functools
import re
import shutil
import time
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api")

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
SHOTS = Path(__file__).resolve().parents[1] / "test-output" / "pages"
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")

#: WCAG 2 contrast ratio of every status badge's computed text and background colours.
BADGE_CONTRAST_JS = """(statuses) => {
  const lum = (css) => {
    const [r, g, b] = css.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => {
      v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const out = {};
  for (const status of statuses) {
    const span = document.createElement("span");
    span.className = "job-status status-" + status;
    span.textContent = status;
    document.querySelector("main, body").appendChild(span);
    const style = getComputedStyle(span);
    const [a, b] = [lum(style.color), lum(style.backgroundColor)];
    out[status] = {ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05), color: style.color,
                   background: style.backgroundColor};
    span.remove();
  }
  return out;
}"""


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


class Console:
    """The JavaScript errors a page reports (console.error and uncaught exceptions).

    Not counted: what the executed notebook's HTML (nbconvert's lab template) does inside
    its sandboxed frame — scripts the sandbox blocks by design, and resources it asks of
    hosts outside this machine, which the tests cannot reach. Those are kept in ``output``.
    """

    SANDBOXED = re.compile(r"^Blocked script execution in '[^']*/output\?format=html' because the document's frame "
                           r"is sandboxed")

    def __init__(self, page, origin):
        self.errors, self.output = [], []

        def on_console(msg):
            if msg.type != "error":
                return
            where = (msg.location or {}).get("url") or ""
            if self.SANDBOXED.match(msg.text) or (where and not where.startswith(origin)):
                self.output.append(f"{where}: {msg.text}")
            else:
                self.errors.append(f"{page.url} ({where}): {msg.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))


def logged_in(hub, browser, name, color_scheme="light", **options):
    """A new page logged in to the Hub as ``name``, and its console (``options``: Playwright's
    new_page options, e.g. ``timezone_id``)."""
    page = browser.new_page(color_scheme=color_scheme, viewport={"width": 1280, "height": 900}, **options)
    page.wait_for_function = functools.partial(wait_for_function, page)  # (see there)
    console = Console(page, hub.url)
    # next= keeps the login on the Hub: without it the Hub sends a user whose server is up
    # (an earlier test may have started it) straight on to /user/NAME/lab
    page.goto(hub.url + "/hub/login?next=%2Fhub%2Fhome")
    page.fill("#username_input", name)
    page.fill("#password_input", "x")
    page.click("#login_submit")
    page.wait_for_url("**/hub/home")
    return page, console


def wait_for_function(page, expression, arg=None, timeout: float = 30_000) -> None:
    """Playwright's ``page.wait_for_function``, polled from outside the page.

    Playwright's own evaluates the expression with the page's ``eval``, which the service pages'
    Content-Security-Policy refuses (no 'unsafe-eval'); ``page.evaluate`` runs over DevTools,
    outside it, so the pages are tested under the policy they are served with.
    """
    deadline, error = time.monotonic() + timeout / 1000, None
    while True:
        try:
            if page.evaluate(expression, arg):
                return
        except playwright.Error as e:  # a document still loading (a reload, a link followed): ask again
            error = e
        if time.monotonic() > deadline:
            raise playwright.TimeoutError(f"wait_for_function: {expression} still false after {timeout:.0f} ms"
                                          + (f" ({error})" if error else ""))
        page.wait_for_timeout(50)


def shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def assert_hub_chrome(page, user):
    """The Hub's page.html around ours: jhdata for this user, the Hub's own menu items."""
    assert page.evaluate("window.jhdata.user") == user
    nav = page.locator("nav")
    for item in ("Home", "Token", "Services", "Jobs"):
        assert nav.get_by_text(item, exact=True).count() >= 1, (item, nav.inner_text())
