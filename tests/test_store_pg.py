"""The store on PostgreSQL as well as SQLite: its migrations up and down, its queries, and the races that
SQLite's one writer hides but a PostgreSQL database shared by two services (READ COMMITTED) does not.

Each test takes ``db_url`` (tests/conftest.py): it runs once on a SQLite file and once on a new database of
a real PostgreSQL server the session starts (tests/pgtest.py).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.script import ScriptDirectory
from alembic.migration import MigrationContext

import hub_service.store
from hub_service.dispatch import Dispatcher
from hub_service.executors.base import Executor
from hub_service.jobs import JobManager
from hub_service.outputs import Artifacts
from hub_service.schedules import Scheduler
from hub_service.sizing import Sizing
from hub_service.store import DuplicateKey, InvalidTransition, Store
from hub_service.store.models import Base
from hub_service.store.queries import make_engine, migrate



def head_revision() -> str:
    """The newest migration's revision, as alembic finds it."""
    return ScriptDirectory(str(Path(hub_service.store.__file__).parent / "migrations")).get_current_head()


JOB_FIELDS = dict(name="n", input_hash="h", input_kind="ipynb", input_name="x.ipynb", parameters={},
                  output_formats=["ipynb"], features={}, requested={}, predicted={}, allocated={}, used={})
SCHEDULE = dict(name="n", cron="0 * * * *", timezone="UTC", overlap="skip", missed="skip", paused=False,
                source_kind="snapshot", input_hash="0" * 64, input_kind="ipynb", input_name="n.ipynb",
                parameters={}, requested={}, output_formats=["ipynb"], notify="never", skipped=0)


def run_threads(targets) -> None:
    """Run each callable in a thread of its own, all released at once; re-raise the first failure."""
    start, errors = threading.Barrier(len(targets)), []

    def wrap(target):
        def body():
            start.wait()
            try:
                target()
            except BaseException as e:  # noqa: BLE001 - handed to the test below
                errors.append(e)
        return body

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]


# -- the migrations ------------------------------------------------------------------------------------


def test_the_migrations_go_up_down_and_up_again_carrying_the_data_and_matching_the_models(db_url):
    """Every revision in turn with rows in the tables (what 0002, 0005 and 0006 fill in from them), the schema
    at head exactly what the models declare (alembic's autogenerate finds nothing to do), then down to an empty
    database and up again."""
    engine = make_engine(db_url)

    def tables():
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}

    jobs = sa.table("jobs", *(sa.column(c) for c in (
        "id", "user", "name", "status", "input_hash", "input_kind", "input_name", "created", "created_ts",
        "started", "cells_done")), *(sa.column(c, sa.JSON) for c in (
            "parameters", "output_formats", "features", "requested", "predicted", "allocated", "used")))
    schedules = sa.table("schedules", *(sa.column(c) for c in (
        "id", "user", "cron", "source_kind", "input_kind", "created", "updated")),
        *(sa.column(c, sa.JSON) for c in ("parameters", "requested", "output_formats")))
    when = datetime(2026, 1, 1)

    def job(job_id, status, started=None, input_hash="h"):
        return dict(id=job_id, user="alice", name="", status=status, input_hash=input_hash, input_kind="ipynb",
                    input_name="", created=when, created_ts=0.0, started=started, cells_done=0, parameters={},
                    output_formats=[], features={}, requested={}, predicted={}, allocated={"cpu": 1}, used={})

    migrate(engine, "0001")
    with engine.begin() as c:
        c.execute(jobs.insert(), [job("running", "running", when)])
    migrate(engine, "0004")
    with engine.begin() as c:  # 0002: a database that held jobs keeps the instance name its containers have
        assert c.execute(sa.text("SELECT value FROM settings WHERE key = 'instance_id'")).scalar() == "default"
        c.execute(schedules.insert(), [dict(id=f"s{i}", user=user, cron="@daily", source_kind="snapshot",
                                            input_kind="ipynb", created=when, updated=when, parameters={},
                                            requested={}, output_formats=[])
                                       for i, user in enumerate(["alice", "alice", "alice", "bob"])])
        c.execute(jobs.insert(), [job("ok", "succeeded", when), job("bad", "failed", when),
                                  job("stop", "cancelled", when), job("queue", "queued"),
                                  job("intake", "failed", when, input_hash="")])
    migrate(engine, "head")
    with engine.connect() as c:
        assert dict(c.execute(sa.text('SELECT "user", n FROM schedule_counts')).all()) == {"alice": 3, "bob": 1}
        assert dict(c.execute(sa.text("SELECT id, has_output FROM jobs")).all()) == {
            "running": False, "ok": True, "bad": True, "stop": False, "queue": False, "intake": False}
        assert c.execute(sa.text("SELECT notify FROM jobs WHERE id = 'ok'")).scalar() == "never"
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []
    assert tables() == set(Base.metadata.tables)

    migrate(engine, "base", down=True)
    assert tables() == set()
    migrate(engine, "head")
    assert tables() == set(Base.metadata.tables)
    with engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []
    engine.dispose()

    store = Store(db_url)  # and the store works on what they made
    job_id = store.create_job(user="alice", **JOB_FIELDS).id
    assert store.get(job_id).has_output is False and store.get(job_id).notify == "never"
    store.close()


# -- the queries -----------------------------------------------------------------------------------------


@pytest.fixture
def store(db_url):
    s = Store(db_url)
    yield s
    s.close()


def test_the_store_queries_answer_alike_on_both_databases(store):
    """Idempotency keys, search, the admin's usage (JSON paths), instance ids, deletes, a schedule's runs."""
    first = store.create_job(user="alice", idempotency_key="k", **JOB_FIELDS)
    with pytest.raises(DuplicateKey) as e:
        store.create_job(user="alice", idempotency_key="k", **JOB_FIELDS)
    assert e.value.job.id == first.id
    store.create_job(user="bob", idempotency_key="k", **JOB_FIELDS)  # a key per user

    fields = dict(JOB_FIELDS, name="Weekly REPORT", allocated={"cpu": 2, "memory": 1000})
    report = store.create_job(user="alice", **fields)
    assert [j.id for j in store.list_jobs("alice", q="report")[0]] == [report.id]  # case-insensitive
    store.transition(report.id, "running")
    store.transition(report.id, "succeeded", used={"wall_seconds": 10, "cpu_seconds": 7.5, "peak_memory": 400})
    rows = {r["user"]: r for r in store.usage_by_user(0, 2e9)}
    alice = rows["alice"]
    assert (alice["jobs"], alice["succeeded"], alice["active"]) == (2, 1, 1)
    assert alice["run_seconds"] == 10 and alice["cpu_seconds_allocated"] == 20 and alice["cpu_seconds_used"] == 7.5
    assert alice["memory_byte_seconds"] == 10000 and alice["peak_memory_byte_seconds"] == 4000
    assert rows["bob"]["jobs"] == 1 and rows["bob"]["run_seconds"] == 0
    assert store.counts() == {"queued": 2, "succeeded": 1}

    assert store.instance_id() == store.instance_id() and len(store.instance_id()) == 12
    with pytest.raises(InvalidTransition):
        store.delete(first.id)  # not ended
    assert store.delete(report.id) and store.get(report.id) is None

    runs = [store.create_job(user="alice", schedule_id="s1", **JOB_FIELDS).id for _ in range(4)]
    assert [j.id for j in store.schedule_runs(["s1", "s2"], limit=3)["s1"]] == runs[::-1][:3]
    assert store.schedule_runs(["s2"]) == {"s2": []}


# -- races: what two services sharing one database must never do -----------------------------------------


def test_two_stores_claiming_the_same_queued_jobs_at_once_claim_each_exactly_once(db_url):
    """The queued → running claim is one conditional UPDATE (``WHERE status = 'queued'``): under PostgreSQL's
    READ COMMITTED the loser waits on the winner's row lock, then finds the row no longer queued."""
    a, b = Store(db_url), Store(db_url)
    ids = [a.create_job(user=f"u{i % 3}", **JOB_FIELDS).id for i in range(30)]
    wins = Counter()
    lock = threading.Lock()

    def claimer(store, seed):
        def claim():
            order = list(ids)
            random.Random(seed).shuffle(order)
            for job_id in order:
                try:
                    store.transition(job_id, "running", backend=f"claimer-{seed}")
                except InvalidTransition:
                    continue
                with lock:
                    wins[job_id] += 1
        return claim

    run_threads([claimer(a if n % 2 else b, n) for n in range(6)])
    assert wins == Counter({job_id: 1 for job_id in ids})
    assert {j.id for j in b.jobs_with_status("running")} == set(ids)
    a.close()
    b.close()


def test_two_job_managers_dispatching_at_once_never_start_a_job_twice(db_url, tmp_path):
    """The whole dispatch pass (JobManager.dispatch_once), in two services at once on one database: every
    queued job is started, by one of them."""
    stores = [Store(db_url), Store(db_url)]
    ids = {stores[0].create_job(user=f"u{i % 4}", **JOB_FIELDS).id for i in range(40)}
    big = Dispatcher(cpu=1000.0, memory=1 << 50, max_running=1000, per_user=1000)
    started = []

    def service(store, n):
        manager = JobManager(store=store, artifacts=Artifacts(tmp_path / f"data{n}"), executor=Executor(),
                             dispatcher=big, sizing=Sizing(use_model=False))

        async def run(job, reattach=False):  # the job's run itself is not what is tested
            return None

        manager._run = run

        async def passes():
            for _ in range(5):
                started.extend(manager.dispatch_once())
                await asyncio.sleep(0)

        return lambda: asyncio.run(passes())

    run_threads([service(store, n) for n, store in enumerate(stores)])
    assert sorted(started) == sorted(ids)  # each once
    for store in stores:
        store.close()


def test_two_stores_recording_the_same_fires_at_once_record_each_once_in_any_order(db_url):
    """A fire is a compare-and-set on ``next_run``: of two schedulers that read the same due schedules, each
    schedule's fire goes to exactly one. Their fires come in opposite orders, as two reads on either side of a
    change can give them; the rows are locked in one order all the same, so PostgreSQL finds no deadlock."""
    a, b = Store(db_url), Store(db_url)
    due_at, later = datetime(2030, 1, 1, 11), datetime(2030, 1, 1, 13)
    ids = {a.create_schedule(user=f"u{i % 3}", next_run=due_at, **SCHEDULE).id for i in range(20)}
    taken = []

    def scheduler(store, n):
        def tick():
            for _ in range(3):
                due = store.due_schedules(datetime(2030, 1, 1, 12))
                fires = [(s, later, s.next_run, f"{n:02d}{s.id[2:]}") for s in due]
                taken.extend((s.id, job_id) for s, _, _, job_id in store.advance(fires[::-1] if n % 2 else fires))
        return tick

    run_threads([scheduler(a if n % 2 else b, n) for n in range(4)])
    assert sorted(sid for sid, _ in taken) == sorted(ids)
    for sid, job_id in taken:
        stored = b.get_schedule(sid)
        assert stored.pending_job == job_id and stored.next_run == later and stored.last_fire == due_at
    a.close()
    b.close()


def test_two_schedulers_ticking_at_once_make_each_fires_job_once(db_url, tmp_path):
    """The whole tick (Scheduler.tick) of two services at once: each due schedule's run is made by one."""
    UTC = timezone.utc
    now = datetime(2030, 1, 1, 12, tzinfo=UTC)
    stores = [Store(db_url), Store(db_url)]
    ids = {stores[0].create_schedule(user=f"u{i % 3}", next_run=datetime(2030, 1, 1, 11), **SCHEDULE).id
           for i in range(15)}
    made = []

    def service(store, n):
        scheduler = Scheduler(store=store, artifacts=Artifacts(tmp_path / f"data{n}"), clock=lambda: now)
        scheduler.started_at = now - timedelta(hours=3)  # due while the service ran: fired, not skipped

        async def make_job(schedule, job_id):  # what a fire makes is not what is tested
            made.append((schedule.id, job_id))
            return None, None

        scheduler._make_job = make_job
        return lambda: asyncio.run(scheduler.tick())

    run_threads([service(store, n) for n, store in enumerate(stores)])
    assert sorted(sid for sid, _ in made) == sorted(ids)
    assert len({job_id for _, job_id in made}) == len(ids)
    assert all(s.pending_job is None for s in stores[1].list_schedules())  # each fire done
    for store in stores:
        store.close()



def test_two_services_starting_at_once_on_a_new_postgresql_database_both_come_up_at_head(postgres_url):
    """Each service migrates its database at start: of three processes starting at once, the first migrates
    and the others wait on its advisory lock, then find the schema at head (instead of failing on the tables
    it made meanwhile). In processes of their own: alembic's ``op`` and ``context`` are one per process."""

    code = ("import sys, time; from hub_service.store import Store; "  # imported, all start at the same instant
            "time.sleep(max(0, float(sys.argv[2]) - time.time())); Store(sys.argv[1]).close()")
    at = str(time.time() + 3)
    procs = [subprocess.Popen([sys.executable, "-c", code, postgres_url, at], stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    engine = make_engine(postgres_url)
    with engine.connect() as c:
        assert c.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [head_revision()]
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []
    engine.dispose()


def test_a_second_lease_on_one_database_is_refused_naming_the_holder_until_the_first_is_released(db_url):
    """One service per database: the lease (an advisory lock, or an flock beside a SQLite file)."""
    from hub_service.store.lease import Lease, LeaseHeld

    first, second = Lease(db_url), Lease(db_url)
    try:
        first.acquire()
        with pytest.raises(LeaseHeld, match=rf"another service uses this database \(notebook-jobs on .*, "
                                            rf"pid {os.getpid()}\)"):
            second.acquire(wait=0.3, poll=0.1)
        first.release()
        assert second.holder() is None
        second.acquire()
        assert second.holder().endswith(f"pid {os.getpid()}")
    finally:
        first.release()
        second.release()
    assert Lease("sqlite://").holder() is None  # (a database in memory is its process's alone)


def _end_lease_session(postgres_url: str) -> int:
    """End the session holding the lease, server-side, as a restart or an admin's pg_terminate_backend would."""
    from hub_service.store.lease import LEASE_LOCK, LEASE_ROWS

    engine = make_engine(postgres_url)
    try:
        with engine.connect() as c:
            return c.execute(sa.text(f"SELECT count(pg_terminate_backend(l.pid)) FROM pg_locks l WHERE {LEASE_ROWS}"),
                             {"key": LEASE_LOCK}).scalar()
    finally:
        engine.dispose()


def test_a_lease_knows_it_is_held_until_released_or_until_the_database_ends_its_session(db_url):
    """What the service's lease check reads: a flock lasts as long as its open file; an advisory
    lock as long as its session, which the server can end -- and then another service may take it."""
    from hub_service.store.lease import Lease

    lease, other = Lease(db_url), Lease(db_url)
    try:
        assert not lease.held()
        lease.acquire()
        assert lease.held()
        if db_url.startswith("postgresql"):
            assert _end_lease_session(db_url) == 1
            assert not lease.held()
            other.acquire()  # (free now: a second service would start)
            assert not lease.held()
        lease.release()
        assert not lease.held()
    finally:
        lease.release()
        other.release()
    assert Lease("sqlite://").held()  # (a database in memory needs no lease)


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_service_whose_database_ends_its_lease_stops_with_status_1(postgres_url, tmp_path):
    """A real service on PostgreSQL: with its lease's session terminated, it stops (for its
    restart policy) rather than run on while another service may recover its jobs."""
    from tests.hubtest import free_port

    port = free_port()
    env = dict(os.environ, JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}", JUPYTERHUB_API_TOKEN="unused",
               JUPYTERHUB_API_URL="http://127.0.0.1:1/hub/api")
    log = tmp_path / "service.log"
    with open(log, "w") as stderr:
        service = subprocess.Popen(
            [sys.executable, "-m", "hub_service.app", f"--NotebookJobs.db_url={postgres_url}", "--executor=local",
             f"--NotebookJobs.data_dir={tmp_path}", "--NotebookJobs.lease_check_interval=0.2"],
            env=env, cwd=tmp_path, stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            assert service.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
        time.sleep(0.5)
        assert service.poll() is None, "the service stopped while it held its lease"
        assert _end_lease_session(postgres_url) == 1
        assert service.wait(timeout=30) == 1
        assert "stopping: this service lost the database's lease" in log.read_text(), log.read_text()[-3000:]
    finally:
        service.kill()
        service.wait()
