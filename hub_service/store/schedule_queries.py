"""The store's queries about schedules: the due ones, one fire's bookkeeping, their runs.

A mixin of :class:`~hub_service.store.queries.Store`, sharing its engine and short sessions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Optional
from uuid import uuid4

from sqlalchemy import delete, func, select, update

from ..states import ACTIVE
from .models import Job, Schedule, utcnow

#: ended runs read to count a schedule's failures in a row
FAILURE_WINDOW = 50


class ScheduleQueries:
    """Reads and writes of the ``schedules`` table (mixed into Store)."""

    def create_schedule(self, **fields) -> Schedule:
        """Insert a schedule."""
        now = utcnow()
        schedule = Schedule(id=uuid4().hex, created=now, updated=now, **fields)
        with self.Session() as s:
            s.add(schedule)
            s.commit()
        return schedule

    def get_schedule(self, schedule_id: str, user: Optional[str] = None) -> Optional[Schedule]:
        """The schedule, or None; with ``user``, None also when it belongs to someone else."""
        with self.Session() as s:
            schedule = s.get(Schedule, schedule_id)
        if schedule is None or (user is not None and schedule.user != user):
            return None
        return schedule

    def list_schedules(self, user: Optional[str] = None) -> list:
        """Schedules, newest first (everyone's when ``user`` is None)."""
        stmt = select(Schedule).order_by(Schedule.created.desc(), Schedule.id.desc())
        if user is not None:
            stmt = stmt.where(Schedule.user == user)
        with self.Session() as s:
            return list(s.scalars(stmt))

    def count_schedules(self, user: str) -> int:
        with self.Session() as s:
            return s.scalar(select(func.count()).select_from(Schedule).where(Schedule.user == user))

    def update_schedule(self, schedule_id: str, **fields) -> Optional[Schedule]:
        """Change a schedule's fields; returns it as stored."""
        with self.Session() as s:
            s.execute(update(Schedule).where(Schedule.id == schedule_id).values(updated=utcnow(), **fields))
            s.commit()
            return s.get(Schedule, schedule_id)

    def delete_schedule(self, schedule_id: str) -> None:
        """Remove a schedule; the jobs it made keep their ``schedule_id``."""
        with self.Session() as s:
            s.execute(delete(Schedule).where(Schedule.id == schedule_id))
            s.commit()

    def due_schedules(self, now: datetime) -> list:
        """Every active schedule whose next run is at or before ``now``: one query on ix_schedules_due."""
        stmt = (select(Schedule).where(Schedule.paused.is_(False), Schedule.next_run <= now)
                .order_by(Schedule.next_run, Schedule.id))
        with self.Session() as s:
            return list(s.scalars(stmt))

    def soonest_run(self) -> Optional[datetime]:
        """The earliest next run of any active schedule (the scheduler sleeps until then)."""
        with self.Session() as s:
            return s.scalar(select(func.min(Schedule.next_run)).where(Schedule.paused.is_(False)))

    def pending_fires(self) -> list:
        """Schedules that recorded a fire whose job may not have been made (the service stopped between)."""
        with self.Session() as s:
            return list(s.scalars(select(Schedule).where(Schedule.pending_job.is_not(None))))

    def advance(self, fires: Iterable[tuple]) -> list:
        """Record fires in one transaction: each ``(schedule, next_run, fire_time, job_id | None)``.

        Each row changes only if its ``next_run`` is still the one read (a PATCH or pause
        in between wins), and a fire that makes a job records its id as ``pending_job``
        before the job exists: a service stopped in between makes that very job at its
        next start (:meth:`pending_fires`), and a job id can be made only once. Returns
        the fires that took.
        """
        taken = []
        now = utcnow()
        with self.Session() as s:
            for schedule, next_run, fire_time, job_id in fires:
                values = dict(next_run=next_run, updated=now)
                if job_id is None:  # skipped
                    values.update(skipped=Schedule.skipped + 1, last_skip=fire_time)
                else:
                    values.update(last_fire=fire_time, pending_job=job_id)
                result = s.execute(update(Schedule).where(
                    Schedule.id == schedule.id, Schedule.next_run == schedule.next_run,
                    Schedule.paused.is_(False)).values(**values))
                if result.rowcount == 1:
                    taken.append((schedule, next_run, fire_time, job_id))
            s.commit()
        return taken

    def fire_done(self, schedule_id: str, job_id: str, error: Optional[str]) -> None:
        """The pending fire's job exists now; ``error`` (or None: all well) becomes ``last_error``."""
        with self.Session() as s:
            s.execute(update(Schedule).where(Schedule.id == schedule_id, Schedule.pending_job == job_id)
                      .values(pending_job=None, last_error=error))
            s.commit()

    def active_schedule_ids(self, schedule_ids: Iterable[str]) -> set:
        """Which of these schedules have a run still queued or running."""
        schedule_ids = list(schedule_ids)
        if not schedule_ids:
            return set()
        with self.Session() as s:
            return set(s.scalars(select(Job.schedule_id).distinct().where(
                Job.schedule_id.in_(schedule_ids), Job.status.in_(ACTIVE))))

    def schedule_runs(self, schedule_ids: Iterable[str], limit: int = FAILURE_WINDOW) -> dict:
        """Each schedule's newest ``limit`` jobs, newest first, in one query: ``{schedule_id: [Job]}``."""
        schedule_ids = list(schedule_ids)
        out = {sid: [] for sid in schedule_ids}
        if not schedule_ids:
            return out
        rank = func.row_number().over(partition_by=Job.schedule_id,
                                      order_by=(Job.created_ts.desc(), Job.id.desc())).label("rank")
        inner = select(Job.id, rank).where(Job.schedule_id.in_(schedule_ids)).subquery()
        stmt = (select(Job).join(inner, inner.c.id == Job.id).where(inner.c.rank <= limit)
                .order_by(Job.created_ts.desc(), Job.id.desc()))
        with self.Session() as s:
            for job in s.scalars(stmt):
                out[job.schedule_id].append(job)
        return out
