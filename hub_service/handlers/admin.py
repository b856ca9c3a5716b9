"""The admin's API: the queue and capacity, statistics, usage per user, the demand model.

Hub admins (and members of ``NotebookJobs.admin_groups``) only; everyone else gets 403.
The admin page (``templates/admin.html``, ``static/admin.js``) is drawn from these.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from ..store import listed_model
from ..usage import hourly_counts, parse_period, usage_report
from .base import APIHandler, admin_only

#: hours of real submissions /admin/demand shows beside the forecast (ending with the current hour)
LOAD_HOURS = 24


def capacity_model(cap) -> dict:
    """A :class:`~hub_service.dispatch.Capacity` as the API shows it."""
    return {"cpu": cap.cpu, "memory": cap.memory, "gpu": cap.gpu, "max_running": cap.max_running,
            "per_user": cap.per_user}


class QueueHandler(APIHandler):
    """The capacity, what running jobs hold of it, how many run per user, the running and queued jobs."""

    @admin_only
    def get(self):
        queue = self.jobs.queue()
        self.write_json(dict(
            queue, capacity=capacity_model(queue["capacity"]),
            running=[listed_model(j) for j in queue["running"]], queued=[listed_model(j) for j in queue["queued"]],
            counts={"running": len(queue["running"]), "queued": len(queue["queued"])},
        ))


class StatsHandler(APIHandler):
    @admin_only
    def get(self):
        self.write_json(self.jobs.stats())


class UsageHandler(APIHandler):
    """Per user over ``since``..``until`` (ISO 8601; default the last 24 h): jobs, outcomes, cpu- and GiB-hours."""

    @admin_only
    def get(self):
        since, until = parse_period(self.get_argument("since", None), self.get_argument("until", None),
                                    datetime.now(timezone.utc))
        rows = self.jobs.usage(since.timestamp(), until.timestamp())
        self.write_json(usage_report(rows, since, until))


class DemandHandler(APIHandler):
    """The demand model: GET its version, metrics, load forecast and the load that came; POST retrains it now."""

    @admin_only
    async def get(self):
        info = await self.planner.info()
        now = time.time()
        first = now - now % 3600 - (LOAD_HOURS - 1) * 3600
        times = self.jobs.submission_times(first, now + 1)
        info["load_last_24h"] = {"hours": [first + 3600 * i for i in range(LOAD_HOURS)],
                                 "jobs": hourly_counts(times, first, LOAD_HOURS)}
        self.write_json(info)

    @admin_only
    async def post(self):
        self.write_json(await self.planner.retrain(), 201)
