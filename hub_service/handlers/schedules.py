"""The ``/schedules`` API: thin handlers over :class:`~hub_service.schedules.Scheduler`.

Users see and act on their own schedules (another user's answers 404, as if it did not
exist); Hub admins on everyone's (``?all=1``, ``?user=NAME``).
"""

from __future__ import annotations

import asyncio

from tornado import web

from ..intake import IntakeError, load_json
from ..request import parse_submission
from ..store import job_model
from .base import APIHandler, authenticated


class ScheduleAPIHandler(APIHandler):
    """What the schedule handlers share: the scheduler, and a schedule the caller may see."""

    @property
    def scheduler(self):
        return self.settings["scheduler"]

    def get_schedule(self, schedule_id: str):
        """The schedule if the caller may see it; otherwise 404."""
        schedule = self.scheduler.get(schedule_id, None if self.is_admin else self.user_name)
        if schedule is None:
            raise web.HTTPError(404, f"no schedule {schedule_id}")
        return schedule

    def write_schedule(self, schedule, status: int = 200) -> None:
        self.write_json(self.scheduler.models([schedule], self._url)[0], status)

    def _url(self, schedule_id: str) -> str:
        return self.api_url("schedules", schedule_id)


class SchedulesHandler(ScheduleAPIHandler):
    """GET: the caller's schedules (admins: ``all=1``, ``user=``). POST: create one."""

    @authenticated
    async def get(self):
        user = self.user_name
        everyone = self.flag_argument("all")
        if self.is_admin:
            user = self.get_argument("user", None if everyone else user)
        # (in a thread: a thousand schedules' next run times take a second to work out)
        models = await asyncio.to_thread(self.scheduler.models, self.scheduler.list(user), self._url)
        self.write_json({"schedules": models})

    @authenticated
    async def post(self):
        user = self.user_name
        content_type = self.request.headers.get("Content-Type", "")
        body = None
        if not content_type.startswith("multipart/form-data") and self.request.body:
            # (in a thread, as a submission's parse is: a JSON notebook may be megabytes)
            body = await asyncio.to_thread(load_json, self.request.body, "request body")
        if isinstance(body, dict) and body.get("from_job") not in (None, ""):
            job_id = body["from_job"]
            job = self.jobs.get(job_id, None if self.is_admin else user) if isinstance(job_id, str) else None
            if job is None:
                raise IntakeError(f"from_job: no job {str(job_id)[:40]}", 404, "not_found", field="/from_job")
            schedule = await self.scheduler.create_from_job(user, body, job)
        else:
            r = self.request
            sweep = isinstance(body, dict) and body.get("sweep") is True  # (its parameters: lists of values)
            form, request = await asyncio.to_thread(parse_submission, content_type, r.body, r.headers, user,
                                                    self.limits, self.workspaces.read, body, sweep)
            schedule = await self.scheduler.create(form, request)
        self.set_header("Location", self._url(schedule.id))
        self.write_schedule(schedule, 201)


class ScheduleHandler(ScheduleAPIHandler):
    """GET, PATCH (pause = ``{"paused": true}``), DELETE one schedule."""

    @authenticated
    def get(self, schedule_id):
        self.write_schedule(self.get_schedule(schedule_id))

    @authenticated
    async def patch(self, schedule_id):
        schedule = self.get_schedule(schedule_id)
        if not self.request.body:
            raise IntakeError('PATCH needs a JSON object of the fields to change, e.g. {"paused": true}')
        self.write_schedule(await self.scheduler.update(schedule, self.get_json_body()))

    @authenticated
    def delete(self, schedule_id):
        self.scheduler.delete(self.get_schedule(schedule_id))
        self.set_status(204)
        self.finish()


class ScheduleRunHandler(ScheduleAPIHandler):
    """POST: run the schedule now; 201 and the job it made."""

    @authenticated
    async def post(self, schedule_id):
        job = await self.scheduler.run_now(self.get_schedule(schedule_id))
        self.set_header("Location", self.api_url("jobs", job.id))
        self.write_json(job_model(job), 201)
