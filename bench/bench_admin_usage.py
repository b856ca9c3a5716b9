"""Benchmark: the admin's usage report (one SQL aggregate) against a loop over the same jobs in Python.

In one run on this machine the store (SQLite, as the service keeps it) is filled with
``--jobs`` finished jobs of 200 users spread over 60 days; then for a day and for 30 days
  (a) ``Store.usage_by_user`` -- what ``GET /admin/usage`` runs -- and
  (b) the jobs of the period loaded through the ORM and summed per user in Python
are timed (best of ``--repeat``) and checked to agree. Prints both and b/a.

    .venv/bin/python -m bench.bench_admin_usage [--jobs 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time

from sqlalchemy import insert, select

from hub_service.store import Store
from hub_service.store.models import Job, utcnow

USERS, DAYS = 200, 60


def fill(store: Store, n: int, now: float) -> None:
    """``n`` finished jobs of USERS users, submitted over the last DAYS days."""
    rnd = random.Random(1)
    rows = [dict(id=f"{i:032x}", user=f"u{rnd.randrange(USERS)}", name="x", input_hash="h", input_kind="ipynb",
                 status=rnd.choice(["succeeded", "failed", "cancelled"]), input_name="x", parameters={},
                 output_formats=[], notify="never", features={}, requested={}, predicted={},
                 allocated={"cpu": rnd.choice([0.5, 1.0, 2.0]), "memory": rnd.choice([1, 2, 4]) << 30},
                 used={"wall_seconds": rnd.random() * 600, "cpu_seconds": rnd.random() * 300,
                       "peak_memory": rnd.randrange(1 << 29)},
                 cells_done=0, created=utcnow(), created_ts=now - rnd.random() * DAYS * 86400)
            for i in range(n)]
    with store.session() as s:
        for start in range(0, n, 10_000):
            s.execute(insert(Job), rows[start:start + 10_000])
        s.commit()


def python_loop(store: Store, since: float, until: float) -> dict:
    """The same sums the slow way: every job of the period through the ORM, added up in Python."""
    out = {}
    with store.session() as s:
        for j in s.scalars(select(Job).where(Job.created_ts >= since, Job.created_ts < until)):
            wall = j.used.get("wall_seconds") or 0.0
            u = out.setdefault(j.user, {"jobs": 0, "cpu_seconds_allocated": 0.0, "memory_byte_seconds": 0.0})
            u["jobs"] += 1
            u["cpu_seconds_allocated"] += j.allocated.get("cpu", 0) * wall
            u["memory_byte_seconds"] += j.allocated.get("memory", 0) * wall
    return out


def best(fn, repeat: int):
    """The fastest of ``repeat`` calls, and the last answer."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        answer = fn()
        times.append(time.perf_counter() - t)
    return min(times), answer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-admin-usage-") as tmp:
        store = Store(f"sqlite:///{tmp}/jobs.sqlite")
        now = time.time()
        fill(store, args.jobs, now)
        print(f"{args.jobs} jobs of {USERS} users over {DAYS} days (SQLite)")
        for label, days in (("last 24 h", 1), ("last 30 days", 30)):
            since = now - days * 86400
            a, report = best(lambda: store.usage_by_user(since, now), args.repeat)
            b, looped = best(lambda: python_loop(store, since, now), args.repeat)
            for row in report:  # the two agree, or the timing means nothing
                other = looped[row["user"]]
                assert row["jobs"] == other["jobs"]
                want = other["cpu_seconds_allocated"]
                assert abs(row["cpu_seconds_allocated"] - want) < 1e-6 * (1 + want)
            print(f"  {label:>12}: {sum(r['jobs'] for r in report):>6} jobs  (a) SQL aggregate {1000 * a:7.1f} ms"
                  f"  (b) Python loop {1000 * b:7.1f} ms  b/a {b / a:5.1f}x")
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
