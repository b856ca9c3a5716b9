"""Server-sent events of one job: its state now, then every event until it ends."""

from __future__ import annotations

import asyncio
import json

from tornado.iostream import StreamClosedError

from ..states import TERMINAL
from ..store import listed_model
from .base import APIHandler, authenticated


class EventsHandler(APIHandler):
    """``GET /jobs/{id}/events``: ``text/event-stream`` of status, cell and log events."""

    heartbeat = 15.0

    def set_default_headers(self):
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")

    async def send(self, event: dict) -> None:
        self.write(f"event: {event['event']}\ndata: {json.dumps(event, default=str, allow_nan=False)}\n\n")
        await self.flush()

    @authenticated
    async def get(self, job_id):
        job = self.get_job(job_id)
        self.user_content_headers("text/event-stream")  # it carries the job's log: the user's text
        queue = self.jobs.subscribe(job_id)  # before the snapshot: no event falls between
        try:
            await self.send({"event": "status", "job": listed_model(self.jobs.get(job_id))})
            if job.status in TERMINAL:
                return
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), self.heartbeat)
                except asyncio.TimeoutError:
                    self.write(": keep-alive\n\n")
                    await self.flush()
                    continue
                await self.send(event)
                if event["event"] == "status" and event["job"]["status"] in TERMINAL:
                    return
        except StreamClosedError:
            pass
        finally:
            self.jobs.unsubscribe(job_id, queue)
