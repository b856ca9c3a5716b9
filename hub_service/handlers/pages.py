"""HTML pages: the user's jobs, one job, and the admin view — in the Hub's own look.

Templates extend the Hub's ``page.html`` (found beside the installed jupyterhub, as
jupyterhub-announcement finds it), so the service looks like part of the Hub: its nav
bar, menus, theme toggle and ``window.jhdata``. The pages fetch the REST API for live data.
"""

from __future__ import annotations

import asyncio
import json
import os
from http.client import responses

import nbformat
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, UndefinedError
from jupyterhub.utils import url_path_join
from tornado import web
from tornado.log import app_log

from .. import __version__
from ..explain import predicted_time_words, sizing_words, time_words
from ..intake import NOTIFY_CHOICES, parameter_fields
from ..outputs import MEDIA_TYPES
from ..request import retry_words
from ..states import ACTIVE, OUTPUT_FORMATS, STATUSES
from ..store import job_model, listed_model
from ..sweeps import sweep_model
from .base import STATIC_CSP, APIHandler, BaseHandler

HERE = os.path.dirname(os.path.dirname(__file__))

#: The names the Hub's page.html reads, and the blocks our templates fill. A Hub release
#: that reads another name or drops a block fails tests/test_pages.py, not a page.
HUB_PAGE_NAMES = frozenset({
    "base_url", "prefix", "user", "admin_access", "no_spawner_check", "xsrf_token", "static_url",
    "version_hash", "logo_url", "parsed_scopes", "services", "logout_url", "login_url", "announcement",
})
HUB_PAGE_BLOCKS = frozenset({"title", "stylesheet", "nav_bar_left_items", "main", "script"})


def hub_templates_dir() -> str:
    """The directory of the Hub's own templates (``page.html``): its only private name we use.

    JupyterHub has no public way to find its installed data files; its services
    (jupyterhub-announcement) import ``jupyterhub._data.DATA_FILES_PATH`` as done here.
    tests/test_pages.py fails if a release moves it or changes what page.html reads.
    """
    from jupyterhub._data import DATA_FILES_PATH

    return os.path.join(DATA_FILES_PATH, "templates")


#: how page.html opens its one inline script (require.js's paths and ``window.jhdata``)
HUB_INLINE_SCRIPT = '<script type="text/javascript">'


class HubTemplates(FileSystemLoader):
    """The Hub's templates, page.html's inline script marked with the page's nonce (``csp_nonce``).

    Our pages' Content-Security-Policy runs no inline script but the one carrying its answer's
    nonce. The nonce goes into the template's source here, so nothing a user made can carry it;
    tests/test_page_csp.py fails if page.html opens its script otherwise, or gains another.
    """

    def get_source(self, environment, template):
        source, filename, uptodate = super().get_source(environment, template)
        if template == "page.html":
            source = source.replace(HUB_INLINE_SCRIPT, HUB_INLINE_SCRIPT[:-1] + ' nonce="{{ csp_nonce }}">')
        return source, filename, uptodate


def make_environment() -> Environment:
    """Our templates first, then the Hub's (also reachable as ``templates/<name>``)."""
    hub = HubTemplates(hub_templates_dir())
    loader = ChoiceLoader([
        FileSystemLoader(os.path.join(HERE, "templates")),
        PrefixLoader({"templates": hub}, delimiter="/"),
        hub,
    ])
    env = Environment(loader=loader, autoescape=True)
    env.filters["size"] = human_size
    env.filters["seconds"] = human_seconds
    env.filters["limit"] = lambda v: time_words(v) if isinstance(v, (int, float)) else ""  # a time limit
    env.globals.update(ACTIVE=ACTIVE, STATUSES=STATUSES)
    return env


def human_size(value) -> str:
    """1073741824 -> '1.0 GiB' (blank for missing)."""
    try:
        value = float(value)
    except (TypeError, ValueError, UndefinedError):  # missing
        return ""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024


def human_seconds(value) -> str:
    """3725 -> '1h 2m 5s' (blank for missing)."""
    try:
        value = float(value)
    except (TypeError, ValueError, UndefinedError):
        return ""
    if value < 60:
        return f"{value:.1f}s"
    minutes, seconds = divmod(int(value), 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{hours}h " if hours else "") + f"{minutes}m {seconds}s"


def hub_page_context(*, user_name, is_admin, hub_prefix, service_name, service_prefix, xsrf_token) -> dict:
    """What the Hub's page.html reads (HUB_PAGE_NAMES), as the Hub's own pages give it.

    ``user`` is what the Hub's User offers page.html: its name, and the name escaped for a
    JavaScript string (without quotes: page.html adds them). The nav bar's Services menu
    lists this service, the one the user is known to reach; the Admin item appears for
    the Hub's admins, as the Hub decides with its "admin-ui" scope.
    """

    def static_url(path, include_version=True):
        # page.html asks for the Hub's own static files (css, js)
        return url_path_join(hub_prefix, "static", path) + (f"?v={__version__}" if include_version else "")

    user = {"name": user_name, "json_escaped_name": json.dumps(user_name)[1:-1]} if user_name else None
    return dict(
        base_url=hub_prefix,
        prefix=hub_prefix[: -len("hub/")] if hub_prefix.endswith("hub/") else hub_prefix,
        user=user,
        admin_access=bool(is_admin),
        no_spawner_check=True,  # no spawner here: page.html then asks nothing of it
        xsrf_token=xsrf_token,
        static_url=static_url,
        version_hash=__version__,
        logo_url=None,
        parsed_scopes={"admin-ui"} if is_admin else set(),
        services=[{"name": service_name, "href": service_prefix}],
        logout_url=url_path_join(hub_prefix, "logout"),
        login_url=url_path_join(hub_prefix, "login"),
        announcement=None,
    )


class PageHandler(BaseHandler):
    """Renders one of our templates inside the Hub's page.html."""

    def render_page(self, name: str, **ns) -> None:
        """Render template ``name`` with the Hub's page context plus ``ns``."""
        user = self.current_user or {}
        xsrf = self.xsrf_token.decode() if isinstance(self.xsrf_token, bytes) else self.xsrf_token
        context = hub_page_context(
            user_name=user.get("name"), is_admin=self.is_admin, hub_prefix=self.settings["hub_prefix"],
            service_name=os.environ.get("JUPYTERHUB_SERVICE_NAME") or "notebook-jobs",
            service_prefix=self.prefix, xsrf_token=xsrf,
        )
        html = self.settings["jinja_env"].get_template(name).render(
            **context,
            csp_nonce=self.page_headers(),
            service_prefix=self.prefix,
            api_url=url_path_join(self.prefix, "api") + "/",
            is_admin=self.is_admin,
            mail_on=bool(self.settings.get("mailer") and self.settings["mailer"].enabled),
            **ns,
        )
        self.finish(html)

    def write_error(self, status_code, **kwargs):
        """An error as a page of the Hub's look (a 403 to a non-admin, a 404 job), not Tornado's bare text."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = ""
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        try:
            self.render_page("error.html", status_code=status_code, message=message,
                             status_message=responses.get(status_code, "error"))
        except Exception:  # the page itself failed: Tornado's plain answer is still an answer
            app_log.exception("rendering the error page failed")
            super().write_error(status_code, **kwargs)


class HomePage(PageHandler):
    """The submit form and the job list; jobs.js fills both from the API (filters, pages, live)."""

    @web.authenticated
    def get(self):
        environments = self.flow.environments
        self.render_page("home.html", output_formats=OUTPUT_FORMATS, notify_choices=NOTIFY_CHOICES,
                         environments=environments.all, default_environment=environments.default_environment.name)


class JobPage(PageHandler):
    """One job: its state, times, sizing in words, outputs, and a re-run with other parameters."""

    @web.authenticated
    async def get(self, job_id):
        job = self.get_job(job_id)
        # (in a thread: a large notebook read and inspected would hold up every other request)
        fields = await asyncio.to_thread(self._parameter_fields, job)
        previous = self.jobs.get(job.rerun_of) if job.rerun_of else None
        retry = retry_words(previous) if previous is not None else None
        model, bounds = job_model(job), self.jobs.bounds
        self.render_page(
            "job.html", job=model, parameter_fields=fields or [], bounds=bounds,
            sizing=sizing_words(model["resources"], bounds, retry),
            predicted_time=predicted_time_words(job.predicted.get("timeout"), bounds["timeout"][1]),
            viewer=self.user_name,
        )

    def _parameter_fields(self, job):
        if not job.input_hash:  # a scheduled run that failed at intake has no input: its page still shows why
            return []
        data, _ = self.jobs.input_notebook(job)
        return parameter_fields(nbformat.reads(data, as_version=4))


class SweepPage(PageHandler):
    """One sweep: a sortable row per run, the best run for a metric the user picks, an overlay of the runs'
    series for it, and cancel and rerun (sweep.js draws it from the API, live)."""

    @web.authenticated
    def get(self, sweep_id):
        sweeps = self.settings["sweeps"]
        sweep = sweeps.get(sweep_id, None if self.is_admin else self.user_name)
        runs = sweeps.runs(sweep) if sweep is not None else []
        if not runs:  # (none, or its last run was deleted meanwhile, and the sweep with it)
            raise web.HTTPError(404, f"no sweep {sweep_id}")
        self.render_page("sweep.html", sweep=sweep_model(sweep, runs), viewer=self.user_name)


class JobOutputPage(PageHandler):
    """The job's HTML render as a page of its own (what a mail links to), logging in first if need be."""

    @web.authenticated
    async def get(self, job_id):
        job = self.get_job(job_id)
        data = await self.jobs.output(job_id, "html") if job.has_output else None  # a stopped run's partial one too
        if data is None:  # still running, cancelled, or ended without a notebook: its page says which
            return self.redirect(url_path_join(self.prefix, "jobs", job_id))
        # the user's notebook in our origin: as the job page's frame does, no scripts, an origin of its own
        self.serve_user_content(data, MEDIA_TYPES["html"])


class AdminPage(PageHandler):
    @web.authenticated
    def get(self):
        if not self.is_admin:
            raise web.HTTPError(403, "only Hub admins may see this page")
        self.render_page("admin.html")


class SchedulesPage(PageHandler):
    """The user's schedules; ``?from_job=<id>`` opens the form that runs that job every…"""

    @web.authenticated
    def get(self):
        from_job = self.get_argument("from_job", "") or None
        # (shown, not sent: the schedule is made from the job on the server, so long values are cut)
        job = listed_model(self.get_job(from_job)) if from_job else None  # another user's job: 404
        self.render_page("schedules.html", from_job=job)


class StaticHandler(web.StaticFileHandler):
    def initialize(self):
        super().initialize(path=os.path.join(HERE, "static"))

    def set_default_headers(self):
        # Scripts and styles the pages load (a subresource's own policy does not apply to the page);
        # opened by themselves, or as Tornado's bare 404 for a missing file, nothing in them runs.
        self.set_header("Content-Security-Policy", STATIC_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")


class NotFoundAPI(APIHandler):
    def prepare(self):
        raise web.HTTPError(404, f"no API endpoint {self.request.path}")


class NotFoundPage(PageHandler):
    """Any other address under the service's prefix: the service's own 404 page, under the page policy, not
    Tornado's bare one. (The address is not repeated on it: a link could make it say anything.)"""

    def prepare(self):
        raise web.HTTPError(404, "There is no page at this address.")
