"""A dispatch pass over a long queue: it reads what it can pick (the oldest job, each user's oldest that fits),
not the queue, and picks what a pass over the whole queue would (bench/bench_load.py --drain measures it)."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

from sqlalchemy import event, insert

from hub_service.dispatch import Capacity, Dispatcher, pick_next, room
from hub_service.jobs import JobManager
from hub_service.outputs import Artifacts
from hub_service.sizing import Sizing
from hub_service.store import Job, Store
from tests.fakes import FakeExecutor

USERS = ("ann", "ben", "cat", "dan", "eve")


def fill(store: Store, jobs: list) -> None:
    """Queue ``jobs`` (``(user, created_ts, allocated)``) in one transaction, as a burst leaves them."""
    rows = [dict(id=f"{i:032x}", user=user, name="", status="queued", input_hash="", input_kind="ipynb",
                 created_ts=ts, allocated=allocated) for i, (user, ts, allocated) in enumerate(jobs)]
    with store.session() as s:
        s.execute(insert(Job), rows)
        s.commit()


def count_decodes(store: Store) -> list:
    """The JSON values the store decodes from now on, one entry each: what a read of the queue costs
    (every row the pass fetches has its allocation decoded)."""
    decoded = []

    def loads(text):
        decoded.append(text)
        return json.loads(text)

    store.engine.dialect._json_deserializer = loads
    store.engine.dispose()  # (the result processors are made per connection's dialect: start afresh)
    return decoded


def count_reads(store: Store) -> list:
    """The allocation values SQLite reads from now on, one entry each (its ``json_extract``, here a stand-in
    that counts, on each new connection): what finding the queue's heads costs inside the database."""
    read = []

    def json_extract(document, path):  # (a path as SQLAlchemy writes it: '$."cpu"')
        read.append(path)
        return json.loads(document).get(json.loads(path[2:]))

    event.listen(store.engine, "connect",
                 lambda connection, _: connection.create_function("json_extract", 2, json_extract))
    store.engine.dispose()
    return read


def test_the_heads_are_found_by_reading_each_users_queue_up_to_its_first_fit(tmp_path):
    """1,000 queued jobs of 5 users: SQLite reads the sizes of each user's oldest job, not of every queued one;
    ann's first 100 jobs are too big for the room left, so hers are read up to her first that fits."""
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    small, big = {"cpu": 0.25, "memory": 1 << 30}, {"cpu": 4.0, "memory": 1 << 30}
    fill(store, [("ann", 1000.0 + i, big) for i in range(100)]
         + [(USERS[i % 5], 2000.0 + i, small) for i in range(1000)])
    read = count_reads(store)
    heads = store.queue_heads(1.0, 4 << 30, 0)
    assert [(h.user, h.created_ts) for h in heads] == [("ann", 1000.0), ("ann", 2000.0), ("ben", 2001.0),
                                                       ("cat", 2002.0), ("dan", 2003.0), ("eve", 2004.0)]
    assert len(read) <= 3 * (100 + 1 + 4), len(read)  # (3 sizes a job; 3,300 when the whole queue was read)
    del read[:]
    assert [h.user for h in store.queue_heads(1.0, 4 << 30, 0, skip_users=["ben", "cat", "dan", "eve"])] == [
        "ann", "ann"]
    assert len(read) <= 3 * (100 + 1), len(read)  # (users at their limit: their jobs are not read at all)
    store.close()


async def test_a_pass_over_a_queue_of_1000_decodes_a_row_a_user_and_starts_the_fair_choice(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    fill(store, [(USERS[i % 5], 1000.0 + i, {"cpu": 1.0, "memory": 1 << 30, "timeout": 60}) for i in range(1000)])
    flow = JobManager(store=store, artifacts=Artifacts(tmp_path / "data"), executor=FakeExecutor(),
                      dispatcher=Dispatcher(cpu=2.0, memory=8 << 30, per_user=2), sizing=Sizing(use_model=False))
    try:
        decoded = count_decodes(store)
        started = flow.dispatch_once()
        after_starts = len(decoded)
        assert [store.get(i).user for i in started] == ["ann", "ben"]  # two whole cores: the two oldest users'
        # three reads of the running jobs (0, 1, 2 rows), two of the queue's heads (a job a user), two claims (a
        # job's ten JSON columns each), and with less cpu left than any job holds no third: not 3 x 1,000
        assert after_starts <= 0 + 1 + 2 + 5 + 5 + 2 * 10, len(decoded)
        before = len(decoded)
        assert flow.dispatch_once() == [] and len(decoded) - before == 2  # full: the running jobs, no queue
    finally:
        await flow.stop()
        store.close()


def test_the_heads_of_the_queue_give_the_choice_the_whole_queue_gives(db_url):
    """Mixed sizes, GPUs, users at their limit, starving jobs: the pass picks from the store's heads what it
    would from every queued job (on SQLite and PostgreSQL)."""
    store = Store(db_url)
    rng = random.Random(32)
    fill(store, [(rng.choice(USERS[:4]), rng.uniform(0, 1000),
                  {"cpu": rng.choice((0.25, 0.5, 1.0, 2.0, 4.0)), "memory": rng.choice((1, 2, 6)) << 30,
                   "gpu": rng.choice((0, 0, 0, 1))}) for _ in range(300)])
    queue = store.dispatch_view("queued")
    for trial in range(200):
        running = [SimpleNamespace(user=rng.choice(USERS), allocated={"cpu": rng.choice((0.5, 1.0)),
                                                                       "memory": 1 << 30, "gpu": rng.choice((0, 1))})
                   for _ in range(rng.randint(0, 4))]
        cap = Capacity(cpu=4.0, memory=8 << 30, gpu=2, max_running=6, per_user=rng.choice((1, 2)),
                       starvation_seconds=rng.choice((600.0, 1e9)))
        now = rng.uniform(500, 1500)
        space = room(running, cap)
        if space is None:
            continue
        heads = store.queue_heads(space.cpu, space.memory, space.gpu, space.full_users, space.any_size)
        assert len(heads) <= len(USERS) + 1 and heads[0].id == queue[0].id
        whole, picked = pick_next(queue, running, cap, now), pick_next(heads, running, cap, now)
        assert (whole and whole.id) == (picked and picked.id), trial
    store.close()


def vm_steps(store: Store) -> list:
    """SQLite's virtual-machine instructions from now on, counted by the hundred on each new connection: what a
    statement costs inside the database, whatever the machine's speed."""
    steps = [0]

    def count():
        steps[0] += 1
        return 0

    event.listen(store.engine, "connect", lambda connection, _: connection.set_progress_handler(count, 100))
    store.engine.dispose()
    return steps


def test_the_queues_users_are_found_by_a_seek_each_not_by_reading_the_queue(tmp_path):
    """The heads' query finds the users with queued jobs by skipping through the index from one to the next: on
    a queue ten times as long (5 users) it costs SQLite the same, not ten times as much (11,452 and 110,452
    instructions when a DISTINCT read every queued job's entry)."""
    cost = {}
    for n in (1000, 10000):
        store = Store(f"sqlite:///{tmp_path / f'jobs{n}.sqlite'}")
        fill(store, [(USERS[i % 5], 1000.0 + i, {"cpu": 1.0, "memory": 1 << 30}) for i in range(n)])
        steps = vm_steps(store)
        heads = store.queue_heads(2.0, 8 << 30, 0)
        assert [h.user for h in heads] == ["ann", "ben", "cat", "dan", "eve"]  # (ann's oldest is the oldest too)
        cost[n] = steps[0]
        store.close()
    assert cost[10000] <= 1.5 * cost[1000], cost


async def test_a_pass_reads_the_running_jobs_once_and_builds_no_event_nobody_follows(tmp_path, monkeypatch):
    """A pass that starts two jobs of a queue of 1,000 reads the running jobs once (it is the database's one
    dispatcher: they change only by its own starts), and makes the status event of a started job only for a
    job someone follows (the event's model is a listing's row, built on the event loop)."""
    import hub_service.jobs as jobs_module

    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
    fill(store, [(USERS[i % 5], 1000.0 + i, {"cpu": 1.0, "memory": 1 << 30, "timeout": 60}) for i in range(1000)])
    flow = JobManager(store=store, artifacts=Artifacts(tmp_path / "data"), executor=FakeExecutor(),
                      dispatcher=Dispatcher(cpu=2.0, memory=8 << 30, per_user=2), sizing=Sizing(use_model=False))
    reads, models, statements = [], [], []
    view = store.dispatch_view
    monkeypatch.setattr(store, "dispatch_view", lambda status: reads.append(status) or view(status))
    model = jobs_module.listed_model
    monkeypatch.setattr(jobs_module, "listed_model", lambda job: models.append(job.id) or model(job))
    followed = f"{0:032x}"  # (ann's oldest, the first the pass starts)
    queue = flow.broker.subscribe(followed)
    event.listen(store.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        started = flow.dispatch_once()
        pass_statements = [s for s in statements if "jobs" in s]
        assert [store.get(i).user for i in started] == ["ann", "ben"]
        assert reads == ["running"]  # (three reads before: one more after each start)
        assert models == [followed] and queue.get_nowait()["job"]["status"] == "running"
        # one read of the running jobs, then for each start the heads and the claim (an UPDATE, a read of the
        # job), and the heads once more: less cpu is left than a job holds, so no third read of them
        assert len(pass_statements) <= 1 + 2 * 3, pass_statements
    finally:
        await flow.stop()
        store.close()
