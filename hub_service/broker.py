"""In-process publish/subscribe of job events, for server-sent events and log following.

Events are also reflected in the store (progress, status), so a listener that connects
late first reads the job's state and then follows the stream; nothing here needs to
survive a restart.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class Broker:
    """Fan-out of each job's events to the queues of its current listeners."""

    def __init__(self, max_queue: int = 1000):
        self._listeners = defaultdict(set)
        self.max_queue = max_queue

    def subscribe(self, job_id: str) -> asyncio.Queue:
        queue = asyncio.Queue(self.max_queue)
        self._listeners[job_id].add(queue)
        return queue

    def unsubscribe(self, job_id: str, queue: asyncio.Queue) -> None:
        listeners = self._listeners.get(job_id)
        if listeners is not None:
            listeners.discard(queue)
            if not listeners:
                del self._listeners[job_id]

    def listening(self, job_id: str) -> bool:
        """Whether anyone follows ``job_id`` now: an event nobody reads need not be made."""
        return job_id in self._listeners

    def publish(self, job_id: str, event: dict) -> None:
        """Hand ``event`` to every listener; a listener too slow to keep up loses the oldest."""
        for queue in list(self._listeners.get(job_id, ())):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)
