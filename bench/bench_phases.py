"""Benchmark: where a job's time goes, phase by phase, warm and cold, against bare papermill.

In one run on this machine, through a real Hub + proxy + service on the docker executor:
  (a) bare `papermill` on the 2-cell notebook of bench_service, in the lean runner venv;
  (w) the notebook submitted with a warm container ready (a pool of --warm-pool);
  (c) the same with no warm pool: a cold sandboxed container per job;
each --repeat times, interleaved with (a) so that whatever else the machine does slows both.
The phases come from the service itself: each job's timeline (``Timeline`` in
hub_service/executors/base.py), which the service logs at debug level when the job ends,
with the runner's own steps taken from its events. The client adds what only it sees: the
submit's HTTP round trip (proxy, Hub auth, intake) beyond the service's sizing and store,
and the wait until its poll sees the ending. Prints a table of medians per phase, and the
ratios warm/bare and cold/bare of submit -> `succeeded` (targets <= 0.3 and <= 1.0).

A burst of jobs is bench_burst.py's.

    .venv/bin/python -m bench.bench_phases [--repeat 5] [--warm-pool 2] [--modes warm,cold] [--runtime runsc] [--image …]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from pathlib import Path

import docker

from bench.bench_service import bare_papermill, two_cell_notebook
from hub_service.executors.docker.gateway import LABEL_INSTANCE, LABEL_WARM, Names
from hub_service.executors.docker.warm import logged_event
from tests.hubtest import Hub, remove_containers

ENDED = ("succeeded", "failed", "cancelled")
#: the issue's targets, submit -> `succeeded` over bare papermill
TARGETS = {"warm": 0.3, "cold": 1.0}
TIMELINE = re.compile(r"job (\S+) timeline: (\{.*\})\s*$")

#: the service's steps in the order a job passes them, and what each phase (ending at it) is
PHASES = {
    "sized": "sizing (history, demand model)",
    "queued": "store the input and the row",
    "dispatched": "queue wait",
    "prepared": "work directory",
    "warm_taken": "take a warm container (resize, check, inputs in, rename)",
    "created": "create a cold container (sandbox, check, inputs in)",
    "line_delivered": "job line to the warm runner",
    "container_started": "container start",
    "runner_started": "runner start (imports, notebook read, parameters)",
    "kernel_ready": "kernel start",
    "executed": "cells run",
    "output_written": "output written, kernel stopped",
    "stream_ended": "runner exit, output stream end",
    "exited": "container wait, usage read",
    "collected": "outputs copied out",
    "ended": "job ended (store, events)",
}


def wait_warm(instance: str, size: int, timeout: float = 120) -> None:
    """Wait until the instance's pool holds ``size`` warm containers with their kernel up."""
    client = docker.from_env()
    prefix = Names(instance, {}, "").warm_prefix
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            idle = [c for c in client.api.containers(filters={"label": [f"{LABEL_INSTANCE}={instance}", LABEL_WARM]})
                    if any(n.lstrip("/").startswith(prefix) for n in c.get("Names") or [])]
            if len(idle) >= size and all(logged_event(client.api, c["Id"], "ready") for c in idle):
                return
            time.sleep(0.1)
    finally:
        client.close()
    raise RuntimeError(f"the warm pool of {instance} did not fill in {timeout:.0f} s")


class Deployment:
    """A Hub with the service on the docker executor, logging each job's timeline."""

    def __init__(self, base: Path, name: str, warm_pool: int, options: str):
        self.instance, self.warm_pool = f"bench-phases-{name}", warm_pool
        self.hub = Hub(base / name, executor="docker",
                       extra_args=f"--log-level=DEBUG --DockerExecutor.instance={self.instance} "
                                  f"--DockerExecutor.warm_pool={warm_pool} {options}")
        (base / name).mkdir()

    def __enter__(self):
        self.hub.start(timeout=120)
        self.user = self.hub.user("bench")
        return self

    def __exit__(self, *exc):
        self.hub.stop()
        remove_containers(self.instance)

    def timeline(self, job_id: str, timeout: float = 60) -> dict:
        """The job's phases as the service logged them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.hub.log_path.read_text(errors="replace").splitlines():
                m = TIMELINE.search(line)
                if m and m.group(1) == job_id:
                    return json.loads(m.group(2))
            time.sleep(0.1)
        raise RuntimeError(f"no timeline logged for job {job_id}")

    def run(self, nb: dict) -> dict:
        """One job from submit to the client seeing it end: the service's phases and the client's."""
        if self.warm_pool:
            wait_warm(self.instance, self.warm_pool)
        started = time.perf_counter()
        job = self.user.submit(nb, parameters={"x": 2})
        posted = time.perf_counter()
        while (status := self.user.get(f"jobs/{job['id']}").json()["status"]) not in ENDED:
            time.sleep(0.01)
        total = time.perf_counter() - started
        assert status == "succeeded", status
        phases = self.timeline(job["id"])
        after = phases.pop("after_end")
        service = sum(phases.values())
        first_html = time.perf_counter()
        assert self.user.get(f"jobs/{job['id']}/output", params={"format": "html"}).status_code == 200
        first_html = time.perf_counter() - first_html
        row = {"http, auth, intake (client's POST beyond sizing and store)":
               posted - started - phases.get("sized", 0) - phases.get("queued", 0)}
        row.update(phases)
        row["client's poll sees the ending"] = total - row[next(iter(row))] - service
        row.update({f"after the ending: {name}": seconds for name, seconds in after.items()})
        row["first GET of the HTML (client)"] = first_html
        row["total"] = total
        return row


def load_line(start: tuple) -> str:
    """The machine's load averages at a run's start (``os.getloadavg()`` then) and now: what else shared the cores."""
    return (f"load average at the start (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in start)}; "
            f"at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def medians(rows: list) -> dict:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return {k: statistics.median(row.get(k, 0.0) for row in rows) for k in keys}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--warm-pool", type=int, default=2)
    parser.add_argument("--runtime", default="", help="docker runtime of the jobs, e.g. runsc (gVisor)")
    parser.add_argument("--image", default="", help="runner image (default: the executor's)")
    parser.add_argument("--service-args", default="", help="more service options, e.g. --Dispatcher.per_user=20")
    parser.add_argument("--modes", default="warm,cold", help="which of warm, cold to run (a column each)")
    args = parser.parse_args()
    modes = args.modes.split(",")
    options = " ".join([f"--DockerExecutor.{name}={value}" for name, value in
                        (("runtime", args.runtime), ("image", args.image)) if value] + [args.service_args])
    base, nb, nb_path = two_cell_notebook("nbjobs-bench-phases-")
    bare_papermill(nb_path, base / "first.ipynb")  # the page cache, for every side
    load = os.getloadavg()
    results, bare = {}, []
    for name, pool in (("warm", args.warm_pool), ("cold", 0)):
        if name not in modes:
            continue
        with Deployment(base, name, pool, options) as d:
            d.run(nb)  # the first job pays for imports of the service's own
            rows = []
            for _ in range(args.repeat):
                bare.append(bare_papermill(nb_path, base / "out.ipynb"))
                rows.append(d.run(nb))
            results[name] = medians(rows)
    a = statistics.median(bare)

    columns = [(name, results[name]) for name in modes]
    keys = list(dict.fromkeys(k for _, r in columns for k in r))
    keys.remove("total")
    steps = list(PHASES)  # the service's steps in the order a job passes them; the client's rows around them
    keys = sorted(keys, key=lambda k: steps.index(k) if k in steps else (-1 if k == keys[0] else len(steps)))
    width = max(len(PHASES.get(k, k)) for k in keys) + 2
    print(f"{'phase':<{width}}{''.join(f'{name:>9}' for name, _ in columns)}   (median seconds of "
          f"{args.repeat} jobs each{', runtime ' + args.runtime if args.runtime else ''})")
    for k in keys:
        cells = "".join(f"{r[k]:9.3f}" if k in r else f"{'-':>9}" for _, r in columns)
        print(f"{PHASES.get(k, k):<{width}}{cells}")
    totals = "".join(f"{r['total']:9.3f}" for _, r in columns)
    print(f"{'submit -> succeeded, as the client sees it':<{width}}{totals}")
    print(f"{'bare papermill, lean venv':<{width}}{a:9.3f}   {['%.2f' % x for x in bare]}")
    for name, r in columns:
        print(f"ratio {name}/bare = {r['total'] / a:.2f}   (target <= {TARGETS[name]})")
    print(load_line(load))


if __name__ == "__main__":
    main()
