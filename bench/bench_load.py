"""Benchmark: API latency under a burst -- 300 jobs queued, 2 running -- against an idle service.

Two deployments in one run, each a real Hub + proxy + service (local or docker executor,
2 jobs at a time): on one, 3 users submit --burst jobs at once (each job sleeps, so 2 run
and the rest queue); the other stays idle. Then the same calls go to both, interleaved so
that whatever else the machine is doing slows both alike: a submit (on the idle one the
job is cancelled again, untimed) and a listing of the newest 50. Prints p50/p99 of each
and the ratio loaded/idle of the p99 (target <= 2).

    .venv/bin/python -m bench.bench_load [--burst 300] [--samples 100] [--executor docker]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.hubtest import Hub, make_notebook, nb_bytes, remove_containers

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
    print(f"{label:<20} idle p50 {percentile(idle, 50):6.1f} ms  p99 {percentile(idle, 99):6.1f} ms   "
          f"loaded p50 {percentile(load, 50):6.1f} ms  p99 {percentile(load, 99):6.1f} ms   "
          f"p99 loaded/idle {ratio:.2f}  (target <= 2)")
    return ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=300)
    parser.add_argument("--samples", type=int, default=100, help="timed calls of each kind on each service")
    parser.add_argument("--executor", default="local", choices=["local", "docker"])
    parser.add_argument("--service-args", default="", help="extra service options")
    args = parser.parse_args()

    hubs = [Hub(Path(tempfile.mkdtemp(prefix=f"nbjobs-bench-load-{kind}-")), executor=args.executor,
                extra_args=f"--Dispatcher.max_running=2 --Dispatcher.per_user=2 --Sizing.timeout_max=7200 "
                           f"{args.service_args}")
            for kind in ("idle", "loaded")]
    instances = []
    try:
        for hub in hubs:
            hub.start()
            instances.append(hub.user("ann").get("health").json()["backend"].get("instance"))
        idle, loaded = ([hub.user(name) for name in USERS] for hub in hubs)
        for users in (idle, loaded):  # warm up: the sizing worker, the page cache
            for i in range(3):
                _, job_id = timed_submit(users[0], i)
                users[0].post(f"jobs/{job_id}/cancel")
                timed_list(users[0])

        started = time.perf_counter()
        per_user = args.burst // len(loaded)
        with ThreadPoolExecutor(len(loaded)) as pool:
            burst = list(pool.map(lambda u: [timed_submit(u, i)[0] for i in range(per_user)], loaded))
        burst = [t for ts in burst for t in ts]
        print(f"burst: {len(burst)} jobs from {len(loaded)} users at once in {time.perf_counter() - started:.1f} s; "
              f"submit p50 {percentile(burst, 50):.1f} ms  p99 {percentile(burst, 99):.1f} ms")
        counts = {}
        for u in loaded:
            for j in u.get("jobs", params={"limit": 200}).json()["jobs"]:
                counts[j["status"]] = counts.get(j["status"], 0) + 1
        print(f"loaded service now holds: {counts}")

        times = {key: [] for key in ("idle submit", "loaded submit", "idle list", "loaded list")}
        for i in range(args.samples):
            u = i % len(USERS)
            elapsed, job_id = timed_submit(idle[u], 1000 + i)
            times["idle submit"].append(elapsed)
            assert idle[u].post(f"jobs/{job_id}/cancel").status_code == 200
            times["loaded submit"].append(timed_submit(loaded[u], 1000 + i)[0])
            times["idle list"].append(timed_list(idle[u]))
            times["loaded list"].append(timed_list(loaded[u]))
        ratios = [row("POST /jobs", times["idle submit"], times["loaded submit"]),
                  row("GET /jobs?limit=50", times["idle list"], times["loaded list"])]
        print(f"worst p99 ratio {max(ratios):.2f}")
    finally:
        for hub in hubs:
            hub.stop()
        for instance in instances:
            if instance:  # docker jobs outlive their service: remove the sleepers
                remove_containers(instance)


if __name__ == "__main__":
    main()
