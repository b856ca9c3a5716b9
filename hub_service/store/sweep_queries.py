"""The store's queries about sweeps: one sweep made with all its runs in one transaction, and read back.

A mixin of :class:`~hub_service.store.queries.Store`, sharing its engine and short sessions.
"""

from __future__ import annotations

from typing import Optional
from uuid import uuid4

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from ..states import Status
from .models import Job, Sweep, utcnow


class DuplicateSweep(Exception):
    """The (user, Idempotency-Key) pair already names a sweep."""

    def __init__(self, sweep: Sweep):
        self.sweep = sweep


class SweepQueries:
    """Reads and writes of the ``sweeps`` table and its runs (mixed into Store)."""

    def create_sweep(self, runs: list, **fields) -> tuple:
        """Insert a sweep and one queued job per row of ``runs`` (a row may name its job's ``id``), all or
        nothing: ``(sweep, jobs)``. A repeated Idempotency-Key raises DuplicateSweep with the first sweep (and
        stores nothing).
        """
        now = utcnow()
        sweep = Sweep(id=uuid4().hex, created=now, created_ts=now.timestamp(), size=len(runs), **fields)
        # each run a microsecond after the one before: the keyset order of a listing keeps the grid's order
        jobs = [Job(**dict(row, id=row.get("id") or uuid4().hex, sweep_id=sweep.id), status=Status.QUEUED.value,
                    created=now, created_ts=now.timestamp() + i * 1e-6) for i, row in enumerate(runs)]
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

    def find_sweep_by_idempotency_key(self, user: str, key: str) -> Optional[Sweep]:
        with self.Session() as s:
            return s.scalar(select(Sweep).where(Sweep.user == user, Sweep.idempotency_key == key))

    def get_sweep(self, sweep_id: str, user: Optional[str] = None) -> Optional[Sweep]:
        """The sweep, or None; with ``user``, None also when it belongs to someone else."""
        with self.Session() as s:
            sweep = s.get(Sweep, sweep_id)
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
        """A page of sweeps, newest first, and the cursor of the next page (None at the end)."""
        from .queries import decode_cursor, encode_cursor

        stmt = select(Sweep)
        if user is not None:
            stmt = stmt.where(Sweep.user == user)
        if cursor:
            ts, sweep_id = decode_cursor(cursor)
            stmt = stmt.where(or_(Sweep.created_ts < ts, (Sweep.created_ts == ts) & (Sweep.id < sweep_id)))
        stmt = stmt.order_by(Sweep.created_ts.desc(), Sweep.id.desc()).limit(limit + 1)
        with self.Session() as s:
            sweeps = list(s.scalars(stmt))
        return sweeps[:limit], encode_cursor(sweeps[limit - 1]) if len(sweeps) > limit else None
