"""Benchmark: 100 scheduled runs due in the same minute, among 1,000 active schedules, against 100 direct submits.

In one run, on a real Hub + proxy + service (local executor by default):
  (a) 100 jobs submitted directly (POST /jobs, 8 client threads) at one moment;
  (b) 1,000 active schedules, 100 of them due in the same minute (the other 900 due
      tomorrow), fired by the service's scheduler on the real clock.
For each side: how long until all 100 jobs exist (the scheduler's tick, from its log;
the submits' wall time), and how late the last of the 100 starts (from the due time,
or the moment of the burst, to its ``started``). Prints the ratios (b)/(a); the target
is a tick well under the minute it serves and a last start no later than (a)'s.

The 1,000 schedules are written into the store beside the running service (one made
through the API, cloned), as bench_service.py fills its store.

    .venv/bin/python -m bench.bench_schedules [--due 100 --schedules 1000 --executor local --max-running 4]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

from hub_service.store import Schedule, Store
from hub_service.store.models import ScheduleCount
from tests.hubtest import Hub, make_notebook

UTC = timezone.utc
NOTEBOOK = make_notebook("x = 1")


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def wait_all(user, ids, timeout=1800) -> list:
    return [user.wait(i, timeout=timeout) for i in ids]


def lateness(jobs: list, since: datetime) -> list:
    return sorted((parse(j["started"]) - since).total_seconds() for j in jobs)


def direct(user, n: int) -> tuple:
    """n submits from 8 threads at once: (seconds until all exist, the ended jobs, when the burst began)."""
    began = datetime.now(UTC)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(lambda _: user.submit(NOTEBOOK, name="direct")["id"], range(n)))
    submitted = time.perf_counter() - t0
    return submitted, wait_all(user, ids), began


def clone_schedules(db_url: str, template_id: str, due: datetime, n_due: int, total: int) -> list:
    """``total`` copies of the template schedule: ``n_due`` due at ``due`` (its minute), the rest tomorrow."""
    store = Store(db_url, migrate=False)
    template = store.get_schedule(template_id)
    columns = {c.name: getattr(template, c.name) for c in Schedule.__table__.columns if c.name != "id"}
    due_ids = []
    with store.session() as s:
        for i in range(total):
            row = Schedule(**columns)
            row.id = f"{i:032x}"
            if i < n_due:
                row.cron, row.next_run = f"{due.minute} {due.hour} * * *", due.replace(tzinfo=None)
                due_ids.append(row.id)
            else:
                row.cron, row.next_run = "0 3 * * *", (due + timedelta(days=1)).replace(tzinfo=None)
            s.add(row)
        # the user's schedule count, which creates and deletes keep and the per-user limit reads
        count = s.get(ScheduleCount, template.user)
        count.n += total
        s.commit()
    store.close()
    return due_ids


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--due", type=int, default=100)
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--executor", default="local", choices=["local", "docker"])
    parser.add_argument("--max-running", type=int, default=4)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="nbjobs-bench-schedules-"))
    hub = Hub(tmp, executor=args.executor, extra_args=(
        f"--Dispatcher.max_running={args.max_running} --Dispatcher.per_user={args.max_running} "
        f"--Scheduler.max_per_user={args.schedules + 10} --DockerExecutor.instance=bench-schedules "
        "--Application.log_level=INFO"))  # the tick logs its duration at INFO
    hub.start()
    try:
        user = hub.user("bench")
        user.wait(user.submit(NOTEBOOK)["id"])  # warm: the kernel's first start, the sizer's first call

        submitted, direct_jobs, began = direct(user, args.due)
        direct_late = lateness(direct_jobs, began)

        r = user.post("schedules", json={"notebook": NOTEBOOK, "cron": "0 3 * * *", "name": "bench"})
        assert r.status_code == 201, r.text
        template = r.json()["id"]
        due = (datetime.now(UTC) + timedelta(seconds=75)).replace(second=0, microsecond=0)
        due_ids = clone_schedules(f"sqlite:///{hub.service_data / 'jobs.sqlite'}", template, due, args.due,
                                  args.schedules - 1)
        # a change through the API wakes the scheduler, which then sleeps until the earliest due time
        user.api.patch(user.url(f"schedules/{template}"), json={"name": "bench template"})
        print(f"{args.schedules} active schedules, {args.due} due at {due:%H:%M:%S} UTC; waiting for them ...")
        deadline = time.monotonic() + (due - datetime.now(UTC)).total_seconds() + 120
        ids = []
        while time.monotonic() < deadline and len(ids) < args.due:
            time.sleep(1)
            ids = [j["id"] for j in user.get("jobs", params={"status": "queued,running,succeeded,failed",
                                                              "q": "bench", "limit": 200}).json()["jobs"]
                   if j["schedule_id"] in set(due_ids)]
        assert len(ids) == args.due, f"only {len(ids)} of {args.due} scheduled runs were made"
        scheduled_jobs = wait_all(user, ids)
        scheduled_late = lateness(scheduled_jobs, due)
        ticks = re.findall(r"scheduler tick: (\d+) due, (\d+) fired, (\d+) skipped in ([\d.]+) ms",
                           hub.log_path.read_text())
        tick_ms = max(float(t[3]) for t in ticks if int(t[1]) >= 1)
        made = sorted((parse(j["created"]) - due).total_seconds() for j in scheduled_jobs)

        ok = sum(j["status"] == "succeeded" for j in scheduled_jobs + direct_jobs)
        print(f"{ok}/{2 * args.due} runs succeeded ({args.executor} executor, max_running {args.max_running})")
        print(f"(a) direct: {args.due} POST /jobs (8 threads) took {submitted:.2f} s; last start "
              f"{direct_late[-1]:.1f} s after the burst began (median {statistics.median(direct_late):.1f} s)")
        print(f"(b) scheduled: the tick that fired them took {tick_ms / 1000:.2f} s; the first job existed "
              f"{made[0]:.2f} s and the last {made[-1]:.2f} s after the due time; last start "
              f"{scheduled_late[-1]:.1f} s after it (median {statistics.median(scheduled_late):.1f} s)")
        print(f"ratio all made (b tick / a submits)  = {tick_ms / 1000 / submitted:.2f}")
        print(f"ratio last start late (b / a)        = {scheduled_late[-1] / direct_late[-1]:.2f}   (target <= 1.0)")
        print(f"ratio median start late (b / a)      = "
              f"{statistics.median(scheduled_late) / statistics.median(direct_late):.2f}")
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
