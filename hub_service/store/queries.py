"""The store: every read and write of job state, and the one gate for status changes.

Sessions are short (one per call) and return detached objects, so Tornado handlers and
background loops never share a session. SQLite gets WAL and a busy timeout so readers
do not block the writer.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
from collections import namedtuple
from json.scanner import make_scanner
from pathlib import Path
from typing import Iterable, Optional
from uuid import uuid4

from sqlalchemy import bindparam, case, create_engine, delete, event, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from ..states import TERMINAL, Status
from .models import Job, JobMetric, Setting, utcnow
from .schedule_queries import ScheduleQueries
from .sweep_queries import SweepGone, SweepQueries, hold_sweep

#: which status may follow which; running → queued is recovery's re-queue
TRANSITIONS = {
    Status.QUEUED.value: frozenset(s.value for s in (Status.RUNNING, Status.CANCELLED, Status.FAILED)),
    Status.RUNNING.value: frozenset(s.value for s in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED,
                                                      Status.QUEUED)),
}


#: the PostgreSQL advisory lock that migrations hold (any fixed number: "nbjobs" in ASCII)
MIGRATION_LOCK = 0x6E626A6F6273


#: what a listing reads of a job: every column but ``features`` (the demand model's inputs, which no listing
#: shows: a page decodes no JSON it does not send)
LISTED = tuple(column for column in Job.__table__.columns if column.key != "features")
#: a listed job: its columns :data:`LISTED` by name, as ``job_model`` reads a Job. A row of SQLAlchemy's finds
#: each name through its result's keys (about a microsecond: a page of 50 read 1,850 names); a named tuple's
#: are attributes
ListedJob = namedtuple("ListedJob", [column.key for column in LISTED])

#: json's own C scanner, which ``json.loads`` runs after two regular expressions' passes for whitespace
_scan_json = make_scanner(json.JSONDecoder())


def load_json(text: str):
    """A stored JSON value (the JSON columns' deserializer): what ``json.loads`` gives, read by the C scanner
    alone when the text is one value with no whitespace around it, as stored ones are. A listing decodes
    a few hundred small values a page: ``json.loads`` took half the time of reading its rows. (PostgreSQL's
    driver hands over bytes, which ``json.loads`` reads, as it did.)"""
    if not isinstance(text, str):
        return json.loads(text)
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:
        return json.loads(text)  # (raises its error, saying where)
    return value if end == len(text) else json.loads(text)


def _queue_heads_statement(any_size: bool):
    """The query of :meth:`Store.queue_heads`, made once (building it costs many times what SQLite takes to run
    it): the oldest queued job, and each user's (but ``:skip``'s) oldest whose allocation fits ``:cpu``,
    ``:memory`` and ``:gpu`` -- any cpu and memory when ``any_size``. Each user's queued jobs are walked in the
    order of the index on (status, user, created) up to the first that fits: the allocations read are the
    heads' (and those of jobs too big ahead of them), not the queue's; and the users are found by a seek a
    user in that index."""
    queued = aliased(Job)  # (a user's queued jobs, oldest first)
    fits = [func.coalesce(queued.allocated["gpu"].as_float(), 0) <= bindparam("gpu")]
    if not any_size:
        fits += [func.coalesce(queued.allocated["cpu"].as_float(), 1.0) <= bindparam("cpu"),
                 func.coalesce(queued.allocated["memory"].as_float(), 0) <= bindparam("memory")]
    # The users with a queued job, found by skipping through the index from one user to the next (a seek
    # each, ``min(user) … where user > the last``), not by a DISTINCT that reads every queued job's entry: a
    # pass at each job's ending costs O(users), however long the queue.
    after = aliased(Job)
    found = select(func.min(Job.user).label("user")).where(Job.status == Status.QUEUED.value).cte(
        "queued_users", recursive=True)
    found = found.union_all(
        select(select(func.min(after.user)).where(after.status == Status.QUEUED.value, after.user > found.c.user)
               .scalar_subquery()).where(found.c.user.is_not(None)))
    users = (select(found.c.user).where(found.c.user.is_not(None),
                                        found.c.user.not_in(bindparam("skip", expanding=True))).subquery())
    head = (select(queued.id).where(queued.status == Status.QUEUED.value, queued.user == users.c.user, *fits)
            .order_by(queued.created_ts, queued.id).limit(1).correlate(users).scalar_subquery())
    oldest = (select(Job.id).where(Job.status == Status.QUEUED.value)
              .order_by(Job.created_ts, Job.id).limit(1).scalar_subquery())
    return (select(Job.id, Job.user, Job.created_ts, Job.allocated)
            .where(or_(Job.id.in_(select(head).select_from(users)), Job.id == oldest))
            .order_by(Job.created_ts, Job.id))


#: :func:`_queue_heads_statement` by ``any_size``
QUEUE_HEADS = {any_size: _queue_heads_statement(any_size) for any_size in (False, True)}


@functools.lru_cache(maxsize=None)
def _listing_statement(by_user: bool, by_schedule: bool, by_sweep: bool, by_status: bool, by_text: bool,
                       after: bool, newest_first: bool):
    """The query of :meth:`Store.list_jobs` for one combination of its filters (each made once,
    on first use), with the values bound at each call: building the select of 36 columns cost a listing more
    than SQLite took to run it. Its parameters: ``user``, ``schedule``, ``sweep``, ``statuses``, ``like`` and
    ``id_prefix``, ``ts`` and ``after_id`` (the cursor's), ``limit``."""
    stmt = select(*LISTED)
    if by_user:
        stmt = stmt.where(Job.user == bindparam("user"))
    if by_schedule:
        stmt = stmt.where(Job.schedule_id == bindparam("schedule"))
    if by_sweep:
        stmt = stmt.where(Job.sweep_id == bindparam("sweep"))
    if by_status:
        stmt = stmt.where(Job.status.in_(bindparam("statuses", expanding=True)))
    if by_text:
        like = bindparam("like")
        stmt = stmt.where(or_(Job.name.ilike(like), Job.input_name.ilike(like), Job.id.like(bindparam("id_prefix"))))
    if after:
        ts, job_id = bindparam("ts"), bindparam("after_id")
        if newest_first:
            stmt = stmt.where(or_(Job.created_ts < ts, (Job.created_ts == ts) & (Job.id < job_id)))
        else:
            stmt = stmt.where(or_(Job.created_ts > ts, (Job.created_ts == ts) & (Job.id > job_id)))
    order = (Job.created_ts.desc(), Job.id.desc()) if newest_first else (Job.created_ts, Job.id)
    return stmt.order_by(*order).limit(bindparam("limit"))


class InvalidTransition(Exception):
    """A status change that the job's current status does not allow."""

    def __init__(self, job_id: str, current: Optional[str], new: str):
        self.job_id, self.current, self.new = job_id, current, new
        super().__init__(f"job {job_id}: cannot go from {current} to {new}")


class DuplicateKey(Exception):
    """The (user, Idempotency-Key) pair already names a job."""

    def __init__(self, job: Job):
        self.job = job


class BadCursor(ValueError):
    """A pagination cursor that this store did not write."""


def encode_cursor(job: Job) -> str:
    return base64.urlsafe_b64encode(f"{job.created_ts!r}:{job.id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, job_id = raw.split(":", 1)
        return float(ts), job_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadCursor(f"invalid cursor {cursor!r}") from None


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str):
    """An engine for ``url``; SQLite files get WAL and their directory created.

    A server database (PostgreSQL: ``postgresql+psycopg://…``) gets a pool whose connections are
    checked before use (a server restart or an idle timeout must not fail the next request) and
    recycled after an hour (before a proxy or firewall drops them unseen).
    """
    kwargs = {}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False}
    else:
        kwargs.update(pool_pre_ping=True, pool_recycle=3600)
    engine = create_engine(url, future=True, json_deserializer=load_json, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def upgrade(engine) -> None:
    """Bring the database behind ``engine`` to the newest schema with alembic."""
    migrate(engine, "head")


def migrate(engine, revision: str, down: bool = False) -> None:
    """Move the schema of the database behind ``engine`` up (or ``down``) to ``revision`` with alembic."""
    from alembic import command
    from alembic.config import Config

    here = Path(__file__).parent
    cfg = Config(str(here / "alembic.ini"))
    cfg.set_main_option("script_location", str(here / "migrations"))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # services starting at once on one database migrate one after the other: the next waits here
            # until the first commits, then finds the schema at head (PostgreSQL's DDL is transactional)
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, revision)


class Store(ScheduleQueries, SweepQueries):
    """Job persistence behind a small, intention-named API."""

    def __init__(self, url: str, migrate: bool = True):
        self.url = url
        self.engine = make_engine(url)
        if migrate:
            upgrade(self.engine)
        self.Session = sessionmaker(self.engine, expire_on_commit=False, future=True)

    def close(self) -> None:
        self.engine.dispose()

    # -- create / read ------------------------------------------------------------

    def create_job(self, **fields) -> Job:
        """Insert a queued job; a repeated Idempotency-Key raises DuplicateKey with the first job, a run joining
        a sweep deleted meanwhile SweepGone."""
        now = utcnow()
        job = Job(id=fields.pop("id", None) or uuid4().hex, status=Status.QUEUED.value, created=now,
                  created_ts=now.timestamp(), **fields)
        with self.Session() as s:
            if job.sweep_id is not None and not hold_sweep(s, job.sweep_id):
                raise SweepGone(job.sweep_id)
            s.add(job)
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                key = fields.get("idempotency_key")
                existing = key and self.find_by_idempotency_key(fields["user"], key)
                if existing:
                    raise DuplicateKey(existing) from None
                raise
        return job

    def find_by_idempotency_key(self, user: str, key: str) -> Optional[Job]:
        with self.Session() as s:
            return s.scalar(select(Job).where(Job.user == user, Job.idempotency_key == key))

    def get(self, job_id: str, user: Optional[str] = None) -> Optional[Job]:
        """The job, or None; with ``user``, None also when it belongs to someone else."""
        with self.Session() as s:
            job = s.get(Job, job_id)
        if job is None or (user is not None and job.user != user):
            return None
        return job

    def list_jobs(
        self,
        user: Optional[str] = None,
        statuses: Iterable[str] = (),
        q: str = "",
        limit: int = 50,
        cursor: Optional[str] = None,
        newest_first: bool = True,
        schedule_id: Optional[str] = None,
        sweep_id: Optional[str] = None,
    ) -> tuple:
        """A page of jobs and the cursor of the next page (None at the end); ``schedule_id``, ``sweep_id``: that
        schedule's, that sweep's. Each job a :data:`ListedJob` (as ``job_model`` reads a Job)."""
        statuses = list(statuses)
        params = dict(user=user, schedule=schedule_id, sweep=sweep_id, statuses=statuses, like=f"%{q}%",
                      id_prefix=f"{q}%", limit=limit + 1)
        if cursor:
            params["ts"], params["after_id"] = decode_cursor(cursor)
        stmt = _listing_statement(user is not None, schedule_id is not None, sweep_id is not None, bool(statuses),
                                  bool(q), bool(cursor), newest_first)
        with self.engine.connect() as connection:  # (a read: no ORM session, whose set-up cost more than it)
            jobs = [ListedJob._make(row) for row in connection.execute(stmt, params)]
        next_cursor = encode_cursor(jobs[limit - 1]) if len(jobs) > limit else None
        return jobs[:limit], next_cursor

    def jobs_with_status(self, *statuses: str, user: Optional[str] = None) -> list:
        """All jobs in these statuses (``user``'s only, when given), oldest first (the queue order)."""
        with self.Session() as s:
            stmt = select(Job).where(Job.status.in_(statuses)).order_by(Job.created_ts, Job.id)
            if user is not None:
                stmt = stmt.where(Job.user == user)
            return list(s.scalars(stmt))

    def dispatch_view(self, status: str) -> list:
        """Jobs in ``status``, oldest first, with only what dispatch reads (id, user, created_ts, allocated)."""
        with self.Session() as s:
            stmt = (select(Job.id, Job.user, Job.created_ts, Job.allocated)
                    .where(Job.status == status).order_by(Job.created_ts, Job.id))
            return list(s.execute(stmt))

    def queue_heads(self, cpu: float, memory: float, gpu: int, skip_users: Iterable[str] = (),
                    any_size: bool = False) -> list:
        """What a dispatch pass may pick from, as :meth:`dispatch_view` has it, oldest first: the oldest queued
        job, and for each user not in ``skip_users`` the oldest whose allocation fits ``cpu``, ``memory`` and
        ``gpu`` (any cpu and memory when ``any_size``). At most one row a user, however long the queue, and
        only the heads' allocations are read, in SQL (:func:`_queue_heads_statement`)."""
        params = dict(cpu=cpu, memory=memory, gpu=gpu, skip=list(skip_users))
        with self.Session() as s:
            return list(s.execute(QUEUE_HEADS[any_size], params))

    def history(self, user: Optional[str] = None, limit: int = 200) -> list:
        """Finished jobs, newest first: what the demand model learns from."""
        stmt = select(Job).where(Job.status.in_(TERMINAL))
        if user is not None:
            stmt = stmt.where(Job.user == user)
        stmt = stmt.order_by(Job.created_ts.desc()).limit(limit)
        with self.Session() as s:
            return list(s.scalars(stmt))

    def counts(self) -> dict:
        """Number of jobs per status."""
        with self.Session() as s:
            return dict(s.execute(select(Job.status, func.count()).group_by(Job.status)).all())

    def count(self, status: str) -> int:
        """Number of jobs in ``status`` (from the status index, no row read)."""
        with self.Session() as s:
            return s.scalar(select(func.count()).select_from(Job).where(Job.status == status))

    # -- change -------------------------------------------------------------------

    def transition(self, job_id: str, new: str, **fields) -> Job:
        """Move a job to status ``new``, if its current status allows it; the only way status changes.

        The check and the write are one conditional UPDATE, so two callers racing to end
        the same job (the runner finishing while a cancel arrives) cannot both win:
        every job ends exactly once.
        """
        sources = [old for old, targets in TRANSITIONS.items() if new in targets]
        values = dict(fields, status=new)
        if new == Status.RUNNING:
            values.setdefault("started", utcnow())
        if new in TERMINAL:
            values.setdefault("finished", utcnow())
        if new == Status.QUEUED:
            values.update(started=None, cells_done=0)
        with self.Session() as s:
            result = s.execute(
                update(Job).where(Job.id == job_id, Job.status.in_(sources)).values(**values)
            )
            s.commit()
            job = s.get(Job, job_id)
        if result.rowcount != 1:
            raise InvalidTransition(job_id, job.status if job else None, new)
        return job

    def resize_queued(self, job_id: str, predicted: dict, allocated: dict) -> bool:
        """Give a job a new sizing, only while it is still queued (one conditional UPDATE: a
        job the dispatcher started meanwhile keeps the limits it runs under)."""
        with self.Session() as s:
            result = s.execute(update(Job).where(Job.id == job_id, Job.status == Status.QUEUED.value)
                               .values(predicted=predicted, allocated=allocated))
            s.commit()
        return result.rowcount == 1

    def update(self, job_id: str, **fields) -> None:
        """Change fields other than status (progress, sizing, usage)."""
        if "status" in fields:
            raise ValueError("status changes go through transition()")
        with self.Session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(**fields))
            s.commit()

    def delete(self, job_id: str) -> bool:
        """Remove a job's row; only ended jobs may be deleted."""
        with self.Session() as s:
            job = s.get(Job, job_id)
            if job is None:
                return False
            if job.status not in TERMINAL:
                raise InvalidTransition(job_id, job.status, "deleted")
            s.execute(delete(JobMetric).where(JobMetric.job_id == job_id))
            s.delete(job)
            s.commit()
        return True

    def known_ids(self, job_ids: Iterable[str]) -> set:
        """Which of ``job_ids`` name a job in this store (any status)."""
        job_ids = list(job_ids)
        if not job_ids:
            return set()
        with self.Session() as s:
            return set(s.scalars(select(Job.id).where(Job.id.in_(job_ids))))

    # -- metrics: what a running notebook reports -------------------------------------------

    def add_metrics(self, job_id: str, reports: list, last: dict) -> None:
        """Store reports' points (``[(step, {name: value}, time)]``) and the job's last values (``last``), at once."""
        with self.Session() as s:
            s.execute(insert(JobMetric), [dict(job_id=job_id, name=name, step=step, value=value, time=at)
                                          for step, values, at in reports for name, value in values.items()])
            s.execute(update(Job).where(Job.id == job_id).values(metrics=last))
            s.commit()

    def clear_metrics(self, job_id: str) -> None:
        """Forget a job's metrics (a run started again, or a replay of its whole output, reports them anew)."""
        with self.Session() as s:
            s.execute(delete(JobMetric).where(JobMetric.job_id == job_id))
            s.execute(update(Job).where(Job.id == job_id).values(metrics=None))
            s.commit()

    def metric_series(self, job_id: str, name: Optional[str] = None, since_step: Optional[int] = None) -> dict:
        """A job's series, ``{name: [(step, value, time), …]}`` by name, each in the order reported
        (by step); ``name``: that one only; ``since_step``: the points after that step."""
        stmt = select(JobMetric.name, JobMetric.step, JobMetric.value, JobMetric.time).where(
            JobMetric.job_id == job_id)
        if name is not None:
            stmt = stmt.where(JobMetric.name == name)
        if since_step is not None:
            stmt = stmt.where(JobMetric.step > since_step)
        series: dict = {}
        with self.Session() as s:
            for row in s.execute(stmt.order_by(JobMetric.name, JobMetric.step, JobMetric.id)):
                series.setdefault(row.name, []).append((row.step, row.value, row.time))
        return series

    # -- settings -----------------------------------------------------------------

    def instance_id(self) -> str:
        """This deployment's identity: a random id made on first use and kept in its database.

        Two services sharing a Docker daemon tell their containers apart by it; one that
        reuses its database (a restart, an upgrade) keeps it.
        """
        with self.Session() as s:
            setting = s.get(Setting, "instance_id")
            if setting is None:
                s.add(Setting(key="instance_id", value=uuid4().hex[:12]))
                try:
                    s.commit()
                except IntegrityError:  # another process made it first: theirs wins
                    s.rollback()
                setting = s.get(Setting, "instance_id")
            return setting.value

    def session(self) -> Session:
        """A raw session for bulk work (benchmarks, migrations of data)."""
        return self.Session()

    # -- the admin's usage report ---------------------------------------------------------

    def usage_by_user(self, since_ts: float, until_ts: float) -> list:
        """Per user, the jobs submitted in [since_ts, until_ts): counts by outcome and resource-time.

        One aggregate query (the jobs table may hold millions of rows). Run time is the
        executor's measured ``used.wall_seconds`` (0 for a job that never ran or runs still);
        resource-time is allocation × run time, and for memory also peak × run time.
        """
        wall = func.coalesce(Job.used["wall_seconds"].as_float(), 0.0)

        def total(expr):
            return func.coalesce(func.sum(expr), 0.0)

        def count(*statuses):
            return func.coalesce(func.sum(case((Job.status.in_(statuses), 1), else_=0)), 0)

        stmt = (
            select(
                Job.user.label("user"),
                func.count().label("jobs"),
                count(Status.SUCCEEDED.value).label("succeeded"),
                count(Status.FAILED.value).label("failed"),
                count(Status.CANCELLED.value).label("cancelled"),
                count(Status.QUEUED.value, Status.RUNNING.value).label("active"),
                total(wall).label("run_seconds"),
                total(func.coalesce(Job.allocated["cpu"].as_float(), 0.0) * wall).label("cpu_seconds_allocated"),
                total(func.coalesce(Job.used["cpu_seconds"].as_float(), 0.0)).label("cpu_seconds_used"),
                total(func.coalesce(Job.allocated["memory"].as_float(), 0.0) * wall).label("memory_byte_seconds"),
                total(func.coalesce(Job.used["peak_memory"].as_float(), 0.0) * wall).label("peak_memory_byte_seconds"),
            )
            .where(Job.created_ts >= since_ts, Job.created_ts < until_ts)
            .group_by(Job.user)
            .order_by(Job.user)
        )
        with self.Session() as s:
            return [row._asdict() for row in s.execute(stmt)]

    def submission_times(self, since_ts: float, until_ts: float) -> list:
        """When each job of [since_ts, until_ts) was submitted (epoch seconds), oldest first."""
        stmt = (select(Job.created_ts).where(Job.created_ts >= since_ts, Job.created_ts < until_ts)
                .order_by(Job.created_ts))
        with self.Session() as s:
            return list(s.scalars(stmt))
