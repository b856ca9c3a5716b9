"""HTML pages: the user's jobs, one job, and the admin view — in the Hub's own look.

Templates extend the Hub's ``page.html`` (found beside the installed jupyterhub), so
the service looks like part of the Hub; the pages fetch the REST API for live data.
"""

from __future__ import annotations

import json
import os

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, UndefinedError
from jupyterhub._data import DATA_FILES_PATH
from jupyterhub.utils import url_path_join
from tornado import web

from .. import __version__
from ..store import job_model
from .base import APIHandler, BaseHandler

HERE = os.path.dirname(os.path.dirname(__file__))
HUB_TEMPLATES = os.path.join(DATA_FILES_PATH, "templates")


def make_environment() -> Environment:
    """Our templates first, then the Hub's (also reachable as ``templates/<name>``)."""
    loader = ChoiceLoader([
        FileSystemLoader(os.path.join(HERE, "templates")),
        PrefixLoader({"templates": FileSystemLoader(HUB_TEMPLATES)}, delimiter="/"),
        FileSystemLoader(HUB_TEMPLATES),
    ])
    env = Environment(loader=loader, autoescape=True)
    env.filters["size"] = human_size
    env.filters["seconds"] = human_seconds
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


class PageHandler(BaseHandler):
    """Renders a template with what the Hub's page.html expects."""

    def render_page(self, name: str, **ns) -> None:
        env = self.settings["jinja_env"]
        hub_prefix = self.settings["hub_prefix"]
        user = self.current_user or {}

        def static_url(path, include_version=True):
            # page.html asks for the Hub's own static files (css, js)
            return url_path_join(hub_prefix, "static", path) + (f"?v={__version__}" if include_version else "")

        html = env.get_template(name).render(
            static_url=static_url,
            base_url=self.settings["hub_base_url"],
            prefix=self.settings["hub_base_url"],
            logout_url=url_path_join(hub_prefix, "logout"),
            login_url=url_path_join(hub_prefix, "login"),
            user={"name": user.get("name"), "json_escaped_name": json.dumps(user.get("name"))},
            services=[],
            parsed_scopes=set(),
            admin_access=False,
            no_spawner_check=True,
            announcement=None,
            version_hash=__version__,
            xsrf_token=self.xsrf_token.decode() if isinstance(self.xsrf_token, bytes) else self.xsrf_token,
            service_prefix=self.prefix,
            api_url=url_path_join(self.prefix, "api") + "/",
            is_admin=self.is_admin,
            **ns,
        )
        self.finish(html)


class HomePage(PageHandler):
    @web.authenticated
    def get(self):
        jobs, cursor = self.store.list_jobs(self.user_name, limit=50)
        self.render_page("home.html", jobs=[job_model(j) for j in jobs], next_cursor=cursor)


class JobPage(PageHandler):
    @web.authenticated
    def get(self, job_id):
        self.render_page("job.html", job=job_model(self.get_job(job_id)))


class AdminPage(PageHandler):
    @web.authenticated
    def get(self):
        if not self.is_admin:
            raise web.HTTPError(403, "only Hub admins may see this page")
        self.render_page("admin.html")


class StaticHandler(web.StaticFileHandler):
    def initialize(self):
        super().initialize(path=os.path.join(HERE, "static"))


class NotFoundAPI(APIHandler):
    def prepare(self):
        raise web.HTTPError(404, f"no API endpoint {self.request.path}")
