"""Benchmark: the service against bare papermill, listing latency and memory with 10,000 jobs.

In one run on this machine:
  (a) bare `papermill` on a 2-cell notebook, in the lean runner venv (.venv-runner);
  (b) the same notebook through a real Hub + proxy + service (local executor),
      submit -> succeeded, as a client sees it;
then the store is filled with 10,000 finished jobs and a page of 50 is listed many times.
Prints b/a (target <= 1.3), p50/p99 of listing (target p99 <= 50 ms) and the
service's resident memory (target <= 250 MB).

With ``--executor docker`` (b) runs in the sandbox (target b/a <= 1.5), and a burst of
``--burst`` jobs submitted at once is timed against as many sequential bare runs
(target <= 0.7: the two cores are used, not thrashed).

    .venv/bin/python -m bench.bench_service [--repeat 5] [--executor docker --burst 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbformat
import psutil

from hub_service.store import Store
from hub_service.store.models import Job, utcnow
from tests.hubtest import ROOT, Hub, make_notebook

RUNNER_PY = ROOT / ".venv-runner" / "bin" / "python"


def two_cell_notebook(prefix: str) -> tuple[Path, dict, Path]:
    """A new temporary directory, the 2-cell notebook both sides run, and its file there
    (exits when the runner venv, where bare papermill runs, is missing)."""
    if not RUNNER_PY.exists():
        sys.exit("run scripts/setup.sh first (it makes .venv-runner)")
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    nb = make_notebook("y = x * 2", "print(y)", parameters="x = 1")
    nb_path = tmp / "two_cells.ipynb"
    nbformat.write(nbformat.from_dict(nb), str(nb_path))
    return tmp, nb, nb_path


def bare_papermill(nb_path: Path, out: Path) -> float:
    """Seconds for papermill to run the notebook, as a user would from a shell."""
    started = time.perf_counter()
    subprocess.run([str(RUNNER_PY), "-m", "papermill", "--no-progress-bar", str(nb_path), str(out), "-p", "x", "2"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def through_service(user, nb: dict) -> float:
    started = time.perf_counter()
    job = user.submit(nb, parameters={"x": 2})
    while True:
        status = user.get(f"jobs/{job['id']}").json()["status"]
        if status in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    assert status == "succeeded", status
    return elapsed


def fill_store(db_url: str, user: str, n: int) -> None:
    store = Store(db_url)
    now = utcnow()
    with store.session() as s:
        for i in range(n):
            ts = now.timestamp() - n + i
            s.add(Job(id=uuid.uuid4().hex, user=user, name=f"bulk-{i}", status="succeeded", input_hash="0" * 64,
                      input_kind="ipynb", input_name="bulk.ipynb", parameters={"i": i}, output_formats=["ipynb"],
                      features={}, requested={}, predicted={}, allocated={"cpu": 1, "memory": 1 << 30, "timeout": 60},
                      used={"peak_memory": 1 << 27, "cpu_seconds": 1.0, "wall_seconds": 2.0}, cells_done=2,
                      cells_total=2, created=now, created_ts=ts, started=now, finished=now))
        s.commit()
    store.close()


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--list-requests", type=int, default=300)
    parser.add_argument("--executor", default="local", choices=["local", "docker"])
    parser.add_argument("--burst", type=int, default=0, help="also time a burst of this many jobs")
    parser.add_argument("--service-args", default="", help="extra service options, e.g. --DockerExecutor.warm_pool=2")
    args = parser.parse_args()
    tmp, nb, nb_path = two_cell_notebook("nbjobs-bench-")

    hub = Hub(tmp, executor=args.executor,
              extra_args=f"--Dispatcher.max_running=2 --Dispatcher.per_user=2 --DockerExecutor.instance=bench "
                         f"{args.service_args}")
    hub.start()
    try:
        user = hub.user("bench")
        bare_papermill(nb_path, tmp / "warm.ipynb")  # warm the page cache for both sides
        through_service(user, nb)
        bare, service = [], []
        for _ in range(args.repeat):  # interleaved, so drift hits both alike
            bare.append(bare_papermill(nb_path, tmp / "out.ipynb"))
            service.append(through_service(user, nb))
        a, b = statistics.median(bare), statistics.median(service)
        print(f"(a) bare papermill, lean venv      median {a:.3f} s  {['%.2f' % x for x in bare]}")
        print(f"(b) service submit -> succeeded    median {b:.3f} s  {['%.2f' % x for x in service]}")
        print(f"ratio b/a = {b / a:.2f}   (target <= {1.3 if args.executor == 'local' else 1.5}, "
              f"{args.executor} executor)")
        if args.burst:
            started = time.perf_counter()
            for _ in range(args.burst):
                bare_papermill(nb_path, tmp / "seq.ipynb")
            sequential = time.perf_counter() - started
            started = time.perf_counter()
            ids = [user.submit(nb, parameters={"x": 2})["id"] for _ in range(args.burst)]
            ended = [user.wait(i, timeout=600) for i in ids]
            burst = time.perf_counter() - started
            ok = sum(j["status"] == "succeeded" for j in ended)
            print(f"burst of {args.burst}: {burst:.1f} s, {ok}/{args.burst} succeeded; {args.burst} sequential bare "
                  f"runs: {sequential:.1f} s; ratio {burst / sequential:.2f}   (target <= 0.7)")

        db_url = f"sqlite:///{hub.service_data / 'jobs.sqlite'}"
        fill_store(db_url, "bench", args.jobs)
        service_url = f"http://127.0.0.1:{hub.env['NOTEBOOK_JOBS_PORT']}/services/notebook-jobs/api/jobs"
        for label, url in (("direct", service_url), ("via proxy", user.url("jobs"))):
            times, cursor = [], None
            for i in range(args.list_requests):
                params = {"limit": 50}
                if cursor and i % 2:  # half first pages, half deeper pages
                    params["cursor"] = cursor
                started = time.perf_counter()
                r = user.api.get(url, params=params)
                times.append((time.perf_counter() - started) * 1000)
                assert r.status_code == 200 and len(r.json()["jobs"]) == 50
                cursor = r.json()["next_cursor"]
            print(f"list 50 of {args.jobs} ({label}): p50 {percentile(times, 50):.1f} ms  "
                  f"p99 {percentile(times, 99):.1f} ms   (target p99 <= 50 ms)")
        rss = psutil.Process(hub.service_pid()).memory_info().rss / 2**20
        print(f"service RSS after {args.jobs} jobs: {rss:.0f} MB   (target <= 250 MB)")
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
