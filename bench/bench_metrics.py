"""Benchmark: what reporting metrics costs a job and the service.

In one run, through a real Hub + proxy + service (the local executor by default), the same
notebook twice: once reporting ``--points`` points (``notebook_jobs.report``, one a loop
step), once reporting none (the same loop, the report left out). For each, the run time as a
client sees it (submit -> succeeded) and the service process's CPU seconds meanwhile
(psutil, on its pid: what storing and streaming the points took). Prints both as ratios,
reporting over silent. The runs are interleaved (``--repeat``), so drift hits both alike.

    .venv/bin/python -m bench.bench_metrics [--points 10000] [--repeat 1] [--executor local]

One run on this machine (2 cores shared with other work, load average about 10), local executor:
the silent notebook 1.76 s, the one reporting 10,000 points 36.85 s (ratio 20.9); the service's
CPU 0.07 s against 8.05 s (0.8 ms a point). The points are stored one transaction a report, which
is what the reporting run waits on.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import psutil

from tests.hubtest import Hub, make_notebook


def notebook(points: int, report: bool) -> dict:
    """A loop of ``points`` steps of a little arithmetic, reporting each step's value or not."""
    body = "    report(loss=loss, step=step)" if report else "    pass"
    return make_notebook("from notebook_jobs import report\nloss = 1.0\n"
                         f"for step in range({points}):\n    loss *= 0.999\n{body}")


def run(user, service: psutil.Process, nb: dict, timeout: float) -> tuple[float, float, dict]:
    """Seconds from submit to its end, the service's CPU seconds meanwhile, and the ended job
    (a run that did not succeed ends the benchmark, saying why and how many points were stored)."""
    cpu = service.cpu_times()
    started = time.perf_counter()
    job = user.wait(user.submit(nb, timeout=int(timeout))["id"], timeout=timeout)
    elapsed = time.perf_counter() - started
    after = service.cpu_times()
    if job["status"] != "succeeded":
        stored = sum(len(s["points"]) for s in user.get(f"jobs/{job['id']}/metrics").json()["series"])
        raise SystemExit(f"job {job['id']} {job['status']} after {elapsed:.1f} s with {stored} points stored: "
                         f"{job['error']['message'][:300]}")
    return elapsed, (after.user - cpu.user) + (after.system - cpu.system), job


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--executor", default="local", choices=["local", "docker"])
    parser.add_argument("--timeout", type=float, default=1800, help="each job's time limit, in seconds")
    args = parser.parse_args()
    hub = Hub(Path(tempfile.mkdtemp(prefix="nbjobs-bench-metrics-")), executor=args.executor,
              extra_args="--DockerExecutor.instance=bench-metrics")
    hub.start()
    try:
        user = hub.user("bench")
        service = psutil.Process(hub.service_pid())
        run(user, service, notebook(10, True), args.timeout)  # warm: a kernel started once, the imports cached
        silent, loud = [], []
        for _ in range(args.repeat):
            silent.append(run(user, service, notebook(args.points, False), args.timeout))
            loud.append(run(user, service, notebook(args.points, True), args.timeout))
        stored = user.get(f"jobs/{loud[-1][2]['id']}/metrics").json()["series"][0]["points"]
        assert len(stored) == args.points, f"{len(stored)} of {args.points} points stored"
        t0, t1 = statistics.median(r[0] for r in silent), statistics.median(r[0] for r in loud)
        c0, c1 = statistics.median(r[1] for r in silent), statistics.median(r[1] for r in loud)
        print(f"{args.executor} executor, {args.points} points, {args.repeat} run(s) each, medians:")
        print(f"  no reports      run {t0:7.2f} s   service cpu {c0:6.2f} s")
        print(f"  {args.points} points  run {t1:7.2f} s   service cpu {c1:6.2f} s   "
              f"({args.points / max(t1 - t0, 1e-9):.0f} points/s over the silent run)")
        print(f"ratio run time   reporting / silent = {t1 / t0:.2f}")
        print(f"ratio service cpu reporting / silent = {c1 / max(c0, 1e-9):.2f}  "
              f"({1000 * (c1 - c0) / args.points:.2f} ms of service cpu a point)")
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
