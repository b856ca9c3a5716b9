"""The store's queries about sweeps: one sweep made with all its runs in one transaction, and read back.

A mixin of :class:`~hub_service.store.queries.Store`, sharing its engine and short sessions. A run joining a
sweep (a rerun) and the sweep's delete (or its going with its last run) each begin by taking the sweep's row
(:func:`hold_sweep`), so they go one after the other: a rerun stored first makes the delete find a run not ended (a 409); a delete first leaves
the rerun no sweep to join (:class:`SweepGone`). No job names a deleted sweep.
"""

from __future__ import annotations

from typing import Optional
from uuid import uuid4

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.exc import IntegrityError

from ..states import TERMINAL, Status
from .models import Job, JobMetric, Sweep, utcnow


class DuplicateSweep(Exception):
    """The (user, Idempotency-Key) pair already names a sweep."""

    def __init__(self, sweep: Sweep):
        self.sweep = sweep


class SweepGone(LookupError):
    """The sweep a run was to join was deleted meanwhile."""

    def __init__(self, sweep_id: str):
        self.sweep_id = sweep_id
        super().__init__(f"no sweep {sweep_id}: it was deleted meanwhile")


class SweepQueries:
    """Reads and writes of the ``sweeps`` table and its runs (mixed into Store)."""

    def create_sweep(self, runs: list, **fields) -> tuple:
        """Insert a sweep and one queued job per row of ``runs`` (a row may name its job's ``id``), all or
        nothing: ``(sweep, jobs)``. A repeated Idempotency-Key raises DuplicateSweep with the first sweep (and
        stores nothing).
        """
        now = utcnow()
        sweep = Sweep(id=uuid4().hex, created=now, created_ts=now.timestamp(), size=len(runs), **fields)
        jobs = _queued([dict(row, sweep_id=sweep.id) for row in runs], now)
        with self.Session() as s:
            s.add(sweep)
            s.add_all(jobs)
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                key = fields.get("idempotency_key")
                existing = key and self.find_sweep_by_idempotency_key(fields["user"], key)
                if existing:
                    raise DuplicateSweep(existing) from None
                raise
        return sweep, jobs

    def add_runs(self, runs: list) -> list:
        """Insert one queued job per row of ``runs`` (each naming the sweep it joins: a sweep's rerun), all or
        nothing."""
        jobs = _queued(runs, utcnow())
        with self.Session() as s:
            for sweep_id in sorted({job.sweep_id for job in jobs}):
                if not hold_sweep(s, sweep_id):
                    raise SweepGone(sweep_id)
            s.add_all(jobs)
            s.commit()
        return jobs

    def delete_sweep(self, sweep_id: str) -> list:
        """Remove a sweep with all its runs and their metrics, at once; only a sweep whose runs all ended may be
        deleted (InvalidTransition names one that has not). The ids of the jobs removed."""
        from .queries import InvalidTransition

        with self.Session() as s:
            hold_sweep(s, sweep_id)
            runs = list(s.scalars(select(Job).where(Job.sweep_id == sweep_id)))
            live = next((job for job in runs if job.status not in TERMINAL), None)
            if live is not None:
                raise InvalidTransition(live.id, live.status, "deleted")
            ids = [job.id for job in runs]
            s.execute(delete(JobMetric).where(JobMetric.job_id.in_(ids)))
            s.execute(delete(Job).where(Job.id.in_(ids)))
            s.execute(delete(Sweep).where(Sweep.id == sweep_id))
            s.commit()
        return ids

    def forget_empty_sweep(self, sweep_id: str) -> bool:
        """Remove the sweep if no job names it any more (its last run was deleted): a sweep is its runs."""
        with self.Session() as s:
            hold_sweep(s, sweep_id)  # (a rerun stored meanwhile is then seen: the sweep has a run again)
            gone = s.execute(delete(Sweep).where(Sweep.id == sweep_id, ~_has_runs()))
            s.commit()
        return bool(gone.rowcount)

    def find_sweep_by_idempotency_key(self, user: str, key: str) -> Optional[Sweep]:
        with self.Session() as s:
            return s.scalar(select(Sweep).where(Sweep.user == user, Sweep.idempotency_key == key))

    def get_sweep(self, sweep_id: str, user: Optional[str] = None) -> Optional[Sweep]:
        """The sweep, or None; with ``user``, None also when it belongs to someone else. A sweep none of whose runs
        is left is none (see :meth:`forget_empty_sweep`)."""
        with self.Session() as s:
            sweep = s.scalar(select(Sweep).where(Sweep.id == sweep_id, _has_runs()))
        if sweep is None or (user is not None and sweep.user != user):
            return None
        return sweep

    def sweep_jobs(self, sweep_ids: list) -> dict:
        """The jobs of each sweep of ``sweep_ids``, in the order they were made: ``{sweep id: [job, …]}``."""
        out = {sweep_id: [] for sweep_id in sweep_ids}
        if not sweep_ids:
            return out
        with self.Session() as s:
            for job in s.scalars(select(Job).where(Job.sweep_id.in_(sweep_ids)).order_by(Job.created_ts, Job.id)):
                out[job.sweep_id].append(job)
        return out

    def list_sweeps(self, user: Optional[str] = None, limit: int = 50, cursor: Optional[str] = None) -> tuple:
        """A page of sweeps that have runs, newest first, and the cursor of the next page (None at the end)."""
        from .queries import decode_cursor, encode_cursor

        stmt = select(Sweep).where(_has_runs())
        if user is not None:
            stmt = stmt.where(Sweep.user == user)
        if cursor:
            ts, sweep_id = decode_cursor(cursor)
            stmt = stmt.where(or_(Sweep.created_ts < ts, (Sweep.created_ts == ts) & (Sweep.id < sweep_id)))
        stmt = stmt.order_by(Sweep.created_ts.desc(), Sweep.id.desc()).limit(limit + 1)
        with self.Session() as s:
            sweeps = list(s.scalars(stmt))
        return sweeps[:limit], encode_cursor(sweeps[limit - 1]) if len(sweeps) > limit else None


def _queued(runs: list, now) -> list:
    """Queued jobs of ``runs`` (a row may name its job's ``id``), made at ``now``: each a microsecond after the
    one before, so that the keyset order of a listing keeps the grid's order."""
    return [Job(**dict(row, id=row.get("id") or uuid4().hex), status=Status.QUEUED.value, created=now,
                created_ts=now.timestamp() + i * 1e-6) for i, row in enumerate(runs)]


def hold_sweep(session, sweep_id: str) -> bool:
    """Take the sweep's row until ``session``'s transaction ends; whether it is still there. The first statement
    of the transaction: a no-op UPDATE, so that PostgreSQL locks the row (a second holder waits, then finds it
    deleted or not) and SQLite, whose driver begins a transaction at its first write, takes its one writer's
    lock before anything is read."""
    held = session.execute(update(Sweep).where(Sweep.id == sweep_id).values(size=Sweep.size))
    return held.rowcount == 1


def _has_runs():
    """Whether some job is a run of the sweep (a clause of a query of sweeps)."""
    return exists().where(Job.sweep_id == Sweep.id)
