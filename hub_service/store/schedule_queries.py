"""The store's queries about schedules: the due ones, one fire's bookkeeping, their runs.

A mixin of :class:`~hub_service.store.queries.Store`, sharing its engine and short sessions.
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Optional
from uuid import uuid4

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from ..states import ACTIVE
from .models import Job, Schedule, ScheduleCount, utcnow

#: ended runs read to count a schedule's failures in a row
FAILURE_WINDOW = 50


class TooManySchedules(Exception):
    """The user already keeps ``limit`` schedules."""

    def __init__(self, user: str, limit: int):
        self.user, self.limit = user, limit
        super().__init__(f"{user} already has {limit} schedules")


class ScheduleQueries:
    """Reads and writes of the ``schedules`` table (mixed into Store)."""

    def create_schedule(self, limit: int = 0, **fields) -> Schedule:
        """Insert a schedule; TooManySchedules (and nothing stored) when its user keeps ``limit`` already (0: no limit).

        The check and the insert are one transaction that begins by taking the user's
        ``schedule_counts`` row with a conditional ``UPDATE … SET n = n + 1 WHERE n < limit``:
        a concurrent create waits on that row (PostgreSQL's row lock, SQLite's one writer;
        on SQLite the UPDATE is the transaction's first statement, so it starts it with the
        write lock and reads no older snapshot) and then sees the count as committed, even
        under READ COMMITTED, where counting the schedules before inserting would not do.
        """
        now = utcnow()
        schedule = Schedule(id=uuid4().hex, created=now, updated=now, **fields)
        self._count_row(schedule.user)
        take = (update(ScheduleCount).where(ScheduleCount.user == schedule.user).values(n=ScheduleCount.n + 1)
                .execution_options(synchronize_session=False))  # (one UPDATE, nothing read before it)
        if limit:
            take = take.where(ScheduleCount.n < limit)
        with self.Session() as s:
            if s.execute(take).rowcount != 1:
                s.rollback()
                raise TooManySchedules(schedule.user, limit)
            s.add(schedule)
            s.commit()
        return schedule

    def _count_row(self, user: str) -> None:
        """Make sure ``user`` has a ``schedule_counts`` row (a concurrent create may make it first)."""
        with self.Session() as s:
            if s.get(ScheduleCount, user) is not None:
                return
            s.add(ScheduleCount(user=user, n=0))
            try:
                s.commit()
            except IntegrityError:  # made meanwhile
                s.rollback()

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
        """How many schedules ``user`` keeps (the rows themselves; create_schedule enforces the limit)."""
        with self.Session() as s:
            return s.scalar(select(func.count()).select_from(Schedule).where(Schedule.user == user))

    def update_schedule(self, schedule_id: str, **fields) -> Optional[Schedule]:
        """Change a schedule's fields; returns it as stored."""
        with self.Session() as s:
            s.execute(update(Schedule).where(Schedule.id == schedule_id).values(updated=utcnow(), **fields))
            s.commit()
            return s.get(Schedule, schedule_id)

    def delete_schedule(self, schedule_id: str, user: Optional[str] = None) -> None:
        """Remove a schedule (of ``user``, when given), freeing a place in its user's count in the same transaction;
        the jobs it made keep their ``schedule_id``."""
        with self.Session() as s:
            if user is None:
                user = s.scalar(select(Schedule.user).where(Schedule.id == schedule_id))
            gone = s.execute(delete(Schedule).where(Schedule.id == schedule_id, Schedule.user == user)).rowcount
            if gone:
                s.execute(update(ScheduleCount).where(ScheduleCount.user == user, ScheduleCount.n > 0)
                          .values(n=ScheduleCount.n - 1).execution_options(synchronize_session=False))
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

        Two schedulers (two services on one PostgreSQL database) that read the same due
        schedule both try: the second UPDATE waits on the first's row lock and then finds
        ``next_run`` changed, so each fire is recorded once. The rows are updated in id
        order, so two such transactions take their locks in one order and never deadlock.
        """
        taken = set()
        fires = list(fires)
        now = utcnow()
        with self.Session() as s:
            for i, (schedule, next_run, fire_time, job_id) in sorted(enumerate(fires), key=lambda f: f[1][0].id):
                values = dict(next_run=next_run, updated=now)
                if job_id is None:  # skipped
                    values.update(skipped=Schedule.skipped + 1, last_skip=fire_time)
                else:
                    values.update(last_fire=fire_time, pending_job=job_id)
                result = s.execute(update(Schedule).where(
                    Schedule.id == schedule.id, Schedule.next_run == schedule.next_run,
                    Schedule.paused.is_(False)).values(**values))
                if result.rowcount == 1:
                    taken.add(i)
            s.commit()
        return [fire for i, fire in enumerate(fires) if i in taken]

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
