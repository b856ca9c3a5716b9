"""Benchmark: API latency under a burst -- 300 jobs queued, 2 running -- against an idle service.

In one run, through a real Hub + proxy + service (local or docker executor, 2 jobs at a time):
  (a) idle: submits (each job cancelled again before the next, untimed) and listings
      of the newest 50, with nothing queued or running;
  (b) load: 3 users submit --burst jobs at once (each job sleeps, so 2 run and the rest
      queue); then, with them all queued, the same submits and listings again.
Prints p50/p99 of each and the ratio load/idle of the p99 (target <= 2).

    .venv/bin/python bench/bench_load.py [--burst 300] [--samples 60] [--executor docker]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.hubtest import Hub, make_notebook, nb_bytes  # noqa: E402

SLEEPER = make_notebook("import time\ntime.sleep(3600)", parameters="x = 1")
USERS = ("ann", "ben", "cat")


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def timed_submit(user, i: int) -> tuple:
    started = time.perf_counter()
    r = user.post("jobs", files={"file": ("sleeper.ipynb", nb_bytes(SLEEPER))},
                  data={"parameters": f'{{"x": {i}}}', "name": f"load-{i}"})
    elapsed = (time.perf_counter() - started) * 1000
    assert r.status_code == 201, r.text
    return elapsed, r.json()["id"]


def timed_list(user) -> float:
    started = time.perf_counter()
    r = user.get("jobs", params={"limit": 50})
    elapsed = (time.perf_counter() - started) * 1000
    assert r.status_code == 200, r.text
    return elapsed


def row(label: str, idle: list, load: list) -> float:
    ratio = percentile(load, 99) / percentile(idle, 99)
    print(f"{label:<22} idle p50 {percentile(idle, 50):6.1f} ms  p99 {percentile(idle, 99):6.1f} ms   "
          f"load p50 {percentile(load, 50):6.1f} ms  p99 {percentile(load, 99):6.1f} ms   "
          f"p99 load/idle {ratio:.2f}  (target <= 2)")
    return ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=300)
    parser.add_argument("--samples", type=int, default=60, help="timed calls of each kind in each phase")
    parser.add_argument("--executor", default="local", choices=["local", "docker"])
    parser.add_argument("--service-args", default="", help="extra service options")
    args = parser.parse_args()

    hub = Hub(Path(tempfile.mkdtemp(prefix="nbjobs-bench-load-")), executor=args.executor,
              extra_args=f"--Dispatcher.max_running=2 --Dispatcher.per_user=2 --Sizing.timeout_max=7200 "
                         f"{args.service_args}")
    hub.start()
    try:
        users = [hub.user(name) for name in USERS]
        ann = users[0]
        for i in range(3):  # warm up: the sizing worker, the page cache
            _, job_id = timed_submit(ann, i)
            ann.post(f"jobs/{job_id}/cancel")
            timed_list(ann)

        idle_submit, idle_list = [], []
        for i in range(args.samples):
            elapsed, job_id = timed_submit(ann, i)
            idle_submit.append(elapsed)
            assert ann.post(f"jobs/{job_id}/cancel").status_code == 200
            idle_list.append(timed_list(ann))

        started = time.perf_counter()
        per_user = args.burst // len(users)
        with ThreadPoolExecutor(len(users)) as pool:
            burst = list(pool.map(lambda u: [timed_submit(u, i)[0] for i in range(per_user)], users))
        burst = [t for ts in burst for t in ts]
        print(f"burst: {len(burst)} jobs from {len(users)} users at once in {time.perf_counter() - started:.1f} s; "
              f"submit p50 {percentile(burst, 50):.1f} ms  p99 {percentile(burst, 99):.1f} ms")
        counts = {}
        for u in users:
            for j in u.get("jobs", params={"limit": 200}).json()["jobs"]:
                counts[j["status"]] = counts.get(j["status"], 0) + 1
        print(f"now: {counts}")

        load_submit, load_list = [], []
        for i in range(args.samples):
            load_submit.append(timed_submit(users[i % 3], 1000 + i)[0])
            load_list.append(timed_list(users[i % 3]))
        ratios = [row("POST /jobs", idle_submit, load_submit), row("GET /jobs?limit=50", idle_list, load_list)]
        print(f"worst p99 ratio {max(ratios):.2f}; median of the two {statistics.median(ratios):.2f}")
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
