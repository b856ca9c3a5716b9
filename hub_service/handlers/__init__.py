"""HTTP handlers: the REST API, server-sent events and the HTML pages; see app.py for routes."""

from jupyterhub.services.auth import HubOAuthCallbackHandler
from tornado.routing import PathMatches

from . import admin, api, events, openapi, pages, schedules, sweeps


def routes(prefix: str) -> list:
    """URL patterns of the service, under its Hub prefix: (pattern, handler) pairs, the pattern a :class:`Reads`
    matcher where an upload's URL sends its GETs elsewhere."""
    j = r"(?P<job_id>[0-9a-f]{32})"
    s = r"(?P<schedule_id>[0-9a-f]{32})"
    w = r"(?P<sweep_id>[0-9a-f]{32})"
    api_routes = [
        (r"", api.RootHandler),
        (r"/", api.RootHandler),
        (r"/health", api.HealthHandler),
        (r"/openapi.json", openapi.OpenAPIHandler),
        (r"/jobs", api.JobSubmitHandler),
        (rf"/jobs/{j}", api.JobHandler),
        (rf"/jobs/{j}/cancel", api.CancelHandler),
        (rf"/jobs/{j}/rerun", api.RerunHandler),
        (rf"/jobs/{j}/output", api.OutputHandler),
        (rf"/jobs/{j}/input", api.InputHandler),
        (rf"/jobs/{j}/logs", api.LogsHandler),
        (rf"/jobs/{j}/events", events.EventsHandler),
        (rf"/jobs/{j}/metrics", api.JobMetricsHandler),
        (r"/notebooks", api.NotebooksHandler),
        (r"/environments", api.EnvironmentsHandler),
        (r"/admin/queue", admin.QueueHandler),
        (r"/admin/stats", admin.StatsHandler),
        (r"/admin/usage", admin.UsageHandler),
        (r"/admin/demand", admin.DemandHandler),
        (r"/metrics", api.MetricsHandler),
        (r"/schedules", schedules.SchedulesHandler),
        (rf"/schedules/{s}", schedules.ScheduleHandler),
        (rf"/schedules/{s}/run", schedules.ScheduleRunHandler),
        (r"/sweeps", sweeps.SweepSubmitHandler),
        (rf"/sweeps/{w}", sweeps.SweepHandler),
        (rf"/sweeps/{w}/cancel", sweeps.SweepCancelHandler),
        (rf"/sweeps/{w}/rerun", sweeps.SweepRerunHandler),
    ]
    out = []
    for path, handler in api_routes:
        if getattr(handler, "reads", None):  # an upload's URL: its reads go to a handler not streamed
            out.append((Reads(prefix + "api" + path), handler.reads))
        out.append((prefix + "api" + path, handler))
    out += [
        (prefix + "oauth_callback", HubOAuthCallbackHandler),
        (prefix + "static/(.*)", pages.StaticHandler),
        (prefix + rf"jobs/{j}", pages.JobPage),
        (prefix + rf"jobs/{j}/output", pages.JobOutputPage),
        (prefix + rf"sweeps/{w}", pages.SweepPage),
        (prefix + "admin", pages.AdminPage),
        (prefix + "schedules", pages.SchedulesPage),
        (prefix + "?", pages.HomePage),
        (prefix + "api/.*", pages.NotFoundAPI),
        (prefix + ".*", pages.NotFoundPage),
    ]
    return out


class Reads(PathMatches):
    """A path's GET requests only: the same URL's other methods go on to the next rule (see
    :class:`~hub_service.handlers.api.UploadHandler`)."""

    def match(self, request):
        return super().match(request) if request.method == "GET" else None
