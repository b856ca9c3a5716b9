"""A dispatch pass over a long queue: it reads what it can pick (the oldest job, each user's oldest that fits),
not the queue, and picks what a pass over the whole queue would (bench/bench_load.py --drain measures it)."""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

from sqlalchemy import insert

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


def test_the_heads_of_the_queue_give_the_choice_the_whole_queue_gives(tmp_path):
    """Mixed sizes, GPUs, users at their limit, starving jobs: the pass picks from the store's heads what it
    would from every queued job."""
    store = Store(f"sqlite:///{tmp_path / 'jobs.sqlite'}")
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
