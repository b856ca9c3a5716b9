"""Benchmark: a burst of jobs through the Hub against the same burst in jupyter-scheduler 2.x.

In one run on this machine:
  (j) jupyter-scheduler 2.x (from PyPI, in its own venv made once under
      .cache/bench-jupyter-scheduler) in a Jupyter server of its own: --burst jobs of the
      2-cell notebook of bench_service created at once through its REST API, until each is
      COMPLETED;
  (h) the same burst through a real Hub + proxy + service on the docker executor (a warm pool
      of --warm-pool, jobs asking for --cpu cores each), until each has `succeeded`;
  (s) as many sequential bare papermill runs (bench_service's).
Prints each time and the ratios h/j (target <= 0.25) and h/s, and where the Hub's jobs spent their
time: the median of each phase of their timelines (bench_phases's), and how many took a warm container;
then what a job cost in cpu seconds, by side (its containers, the warm start-ups included; the Hub,
proxy and service; the Docker daemon), and the floor that puts under a burst on this machine's cores; and how
busy the whole machine was meanwhile, with what of that no side above counts (containerd-shim and runc
live outside the daemon's processes, and the kernel's own work in no process).

    .venv/bin/python -m bench.bench_burst [--burst 20] [--warm-pool 2] [--cpu 0.25] [--service-args …]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from bench.bench_phases import PHASES, Deployment, load_line, medians, wait_warm
from bench.bench_service import bare_papermill, two_cell_notebook
from hub_service.executors.docker.cgroups import Cgroups
from hub_service.executors.docker.gateway import Names
from tests.hubtest import ROOT, free_port

VENV = ROOT / ".cache" / "bench-jupyter-scheduler"
#: (a new job says STOPPED until its process has started: not an ending here)
SCHEDULER_ENDED = ("COMPLETED", "FAILED")


def scheduler_python() -> Path:
    """The interpreter of a venv with jupyter-scheduler 2.x and a kernel, made on first use."""
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "jupyter_scheduler>=2,<3", "ipykernel"], check=True)
    return py


#: the burst's containers go under CGROUP_PARENT/CGROUP_KEY, where their cpu is read (no other test's)
CGROUP_PARENT, CGROUP_KEY = "notebook-jobs-bench", "burst"
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int, children: bool = True) -> float:
    """cpu seconds of a process (and of its children it has reaped); 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15 if children else 13]) / CLOCK_TICK


def tree_cpu(pid: int) -> float:
    """cpu seconds of a process and its live descendants (each dead one's is its parent's reaped time)."""
    total, todo = 0.0, [pid]
    while todo:
        pid = todo.pop()
        total += process_cpu(pid)
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            try:
                todo += [int(child) for child in task.read_text().split()]
            except OSError:
                pass
    return total


def machine_busy() -> float:
    """The cpu seconds this machine has been busy so far: every process's and the kernel's own work (/proc/stat's
    first line, less idle and iowait)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def daemon_pids() -> list:
    """dockerd and containerd, by name (the shims and runc they fork are reaped elsewhere: not counted)."""
    pids = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in ("dockerd", "containerd"):
                pids.append(int(comm.parent.name))
        except OSError:
            pass
    return pids


class CpuMeter:
    """The cpu seconds each side of the Hub's burst has used so far."""

    def __init__(self, hub):
        self.hub = hub
        self.cgroups = Cgroups("/sys/fs/cgroup", Names("", {}, CGROUP_PARENT))
        self.daemons = daemon_pids()

    def read(self) -> dict:
        return {"its containers (runner, kernel; the warm start-ups included)":
                self.cgroups.usage(CGROUP_KEY).get("cpu_seconds", 0.0),
                "the Hub, proxy and service": tree_cpu(self.hub.proc.pid),
                "the Docker daemon (dockerd, containerd)": sum(process_cpu(p, children=False) for p in self.daemons)}

    def close(self) -> None:
        """Remove the (empty) cgroups the burst's containers were under."""
        self.cgroups.cleanup(CGROUP_KEY)
        for path in self.cgroups.root.glob(f"*/{CGROUP_PARENT}"):
            try:
                path.rmdir()
            except OSError:
                pass


class Scheduler:
    """A Jupyter server with jupyter-scheduler, its state in ``base``, serving the notebook's directory."""

    def __init__(self, base: Path, root: Path):
        self.port, self.token = free_port(), "bench"
        self.url = f"http://127.0.0.1:{self.port}"
        state = {name: base / name for name in ("data", "config", "runtime")}
        for path in state.values():
            path.mkdir()
        env = dict(os.environ, JUPYTER_DATA_DIR=state["data"], JUPYTER_CONFIG_DIR=state["config"],
                   JUPYTER_RUNTIME_DIR=state["runtime"])
        self.log = open(base / "jupyter-scheduler.log", "ab")
        self.proc = subprocess.Popen(
            [str(scheduler_python()), "-m", "jupyter", "server", "--no-browser", "--ip=127.0.0.1",
             f"--port={self.port}", f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={root}",
             *(["--allow-root"] if os.geteuid() == 0 else [])],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"token {self.token}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if self.api.get(self.url + "/scheduler/runtime_environments", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        raise RuntimeError("jupyter-scheduler's server did not come up")

    def burst(self, notebook: str, n: int) -> tuple:
        """(seconds, completed) for ``n`` jobs of ``notebook`` created at once."""
        environment = self.api.get(self.url + "/scheduler/runtime_environments").json()[0]["name"]
        started = time.perf_counter()
        ids = []
        for i in range(n):
            r = self.api.post(self.url + "/scheduler/jobs", json={
                "input_uri": notebook, "runtime_environment_name": environment, "name": f"burst-{i}",
                "output_formats": ["ipynb"], "parameters": {"x": "2"}})
            assert r.status_code == 200, r.text
            ids.append(r.json()["job_id"])
        statuses = {}
        while len(statuses) < n:
            for job_id in set(ids) - set(statuses):
                status = self.api.get(f"{self.url}/scheduler/jobs/{job_id}").json()["status"]
                if status in SCHEDULER_ENDED:
                    statuses[job_id] = status
            time.sleep(0.05)
        return time.perf_counter() - started, sum(s == "COMPLETED" for s in statuses.values())

    def stop(self) -> None:
        os.killpg(self.proc.pid, 15)
        self.proc.wait(30)
        self.log.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--warm-pool", type=int, default=2)
    parser.add_argument("--cpu", type=float, default=0.25, help="cores each job through the Hub asks for")
    parser.add_argument("--service-args", default="", help="more service options, e.g. --Dispatcher.per_user=20")
    args = parser.parse_args()
    base, nb, nb_path = two_cell_notebook("nbjobs-bench-burst-")
    bare_papermill(nb_path, base / "first.ipynb")  # the page cache, for every side

    scheduler = Scheduler(base, nb_path.parent)
    try:
        scheduler.burst(nb_path.name, 1)  # its first job pays for imports of its own
        js_cpu = tree_cpu(scheduler.proc.pid)
        js, js_ok = scheduler.burst(nb_path.name, args.burst)
        js_cpu = tree_cpu(scheduler.proc.pid) - js_cpu
    finally:
        scheduler.stop()

    load = os.getloadavg()
    options = f"--DockerExecutor.cgroup_parent={CGROUP_PARENT}/{CGROUP_KEY} {args.service_args}"
    with Deployment(base, "burst", args.warm_pool, options) as d:
        meter = CpuMeter(d.hub)
        d.run(nb)
        wait_warm(d.instance, args.warm_pool)
        before, busy = meter.read(), machine_busy()
        started = time.perf_counter()
        ids = [d.user.submit(nb, parameters={"x": 2}, resources={"cpu": args.cpu})["id"] for _ in range(args.burst)]
        hub_ok = sum(d.user.wait(i, timeout=600)["status"] == "succeeded" for i in ids)
        hub = time.perf_counter() - started
        wait_warm(d.instance, args.warm_pool)  # (the pool's refill is the burst's cost too)
        cpu = {side: seconds - before[side] for side, seconds in meter.read().items()}
        busy, window = machine_busy() - busy, time.perf_counter() - started
        timelines = [d.timeline(i) for i in ids]
    meter.close()

    started = time.perf_counter()
    for _ in range(args.burst):
        bare_papermill(nb_path, base / "seq.ipynb")
    sequential = time.perf_counter() - started

    n = args.burst
    print(f"(j) jupyter-scheduler 2.x, {n} at once        {js:6.1f} s  ({js_ok}/{n} completed)")
    print(f"(h) through the Hub, docker, warm pool {args.warm_pool}  {hub:6.1f} s  ({hub_ok}/{n} succeeded, "
          f"{args.cpu} cores each{', ' + args.service_args if args.service_args else ''})")
    print(f"(s) {n} sequential bare papermill runs     {sequential:6.1f} s")
    print(f"ratio h/j = {hub / js:.2f}   (target <= 0.25)")
    print(f"ratio h/s = {hub / sequential:.2f}")
    warm = sum("warm_taken" in t for t in timelines)
    print(f"the Hub's {n} jobs: {warm} took a warm container, {n - warm} started cold; "
          "median seconds per phase (0 for a job without it):")
    for step, seconds in medians([{k: v for k, v in t.items() if k != "after_end"} for t in timelines]).items():
        print(f"  {PHASES.get(step, step):<60}{seconds:8.3f}")
    print("cpu seconds a job cost, from the burst's start until the pool was full again:")
    for side, seconds in cpu.items():
        print(f"  {side:<60}{seconds / n:8.3f}")
    total = sum(cpu.values()) / n
    cores = os.cpu_count()
    print(f"  {'total':<60}{total:8.3f}   (the {n} on {cores} cores: at least {total * n / cores:.1f} s)")
    print(f"  {'jupyter-scheduler (its server and the processes it ran)':<60}{js_cpu / n:8.3f}")
    print(f"the machine meanwhile ({window:.1f} s): busy {busy:.1f} of {cores * window:.1f} cpu seconds "
          f"({busy / (cores * window):.0%}), of which {busy - sum(cpu.values()):.1f} not counted above "
          "(containerd-shim and runc, the kernel's own work, the bench's client, anything else running)")
    print(load_line(load))


if __name__ == "__main__":
    main()
