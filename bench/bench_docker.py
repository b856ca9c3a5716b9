"""Benchmark: what the docker backend costs over bare papermill, for one job and a burst.

    .venv/bin/python -m bench.bench_docker [--repeat 3] [--burst 20] [--concurrency 2] [--warm-pool 3]

Measures the same 2-cell notebook through
  (a) bare papermill: hub_service/runner.py in a lean venv (papermill + ipykernel, the
      runner image's wheels) made once under .cache/bench-venv;
  (b) `docker run` of the runner image (the notebook bind-mounted: the raw cost of a
      container, without the executor's sandbox set-up and copies);
  (c) DockerExecutor.run (create, put_archive, start, stream, collect, remove);
  (w) DockerExecutor.run with a warm pool (a ready warm container each time: update,
      put_archive, rename, job line on stdin, stream, collect, remove);
then a burst of N jobs through the executor, `concurrency` at a time, cold and with a
warm pool of --warm-pool containers (full and ready when the burst arrives, refilled in
the background meanwhile), each against N sequential bare runs. Prints medians and the
ratios b/a, c/a, w/a, burst/sequential (cold and warm).
Needs dockerd and the runner image (scripts/docker-setup.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbformat

from hub_service.executors.base import RUNNER_PATH, JobSpec
from hub_service.executors.docker import DockerExecutor

ROOT = Path(__file__).resolve().parent.parent

WHEELS = ROOT / ".cache" / "runner-wheels"
VENV = ROOT / ".cache" / "bench-venv"


def two_cell_notebook():
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("x = sum(range(1000))"), nbformat.v4.new_code_cell("print(x)")]
    return nb


def make_workdir(base: Path) -> Path:
    wd = base / uuid.uuid4().hex[:10]
    (wd / "files").mkdir(parents=True)
    nbformat.write(two_cell_notebook(), str(wd / "input.ipynb"))
    (wd / "parameters.json").write_text("{}")
    return wd


def lean_python() -> str:
    """The interpreter of a lean venv (papermill + ipykernel only), made on first use."""
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        src = ["--no-index", "--find-links", str(WHEELS)] if WHEELS.is_dir() else []
        subprocess.run([str(py), "-m", "pip", "install", "-q", *src, "papermill", "ipykernel"], check=True)
    return str(py)


def bare_run(python: str, wd: Path) -> float:
    spec = JobSpec(job_id="bare", workdir=wd)
    t0 = time.perf_counter()
    r = subprocess.run([python, str(RUNNER_PATH), *spec.runner_args()], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    assert r.returncode == 0 and '"succeeded"' in r.stdout, r.stderr[-2000:]
    return dt


def docker_run(image: str, wd: Path) -> float:
    os.chmod(wd, 0o777)
    os.chmod(wd / "files", 0o777)
    spec = JobSpec(job_id="dr", workdir=wd)
    t0 = time.perf_counter()
    r = subprocess.run(["docker", "run", "--rm", "--network", "none", "-v", f"{wd}:/work/job",
                        image, *spec.runner_args("/work/job")], capture_output=True, text=True)
    dt = time.perf_counter() - t0
    assert r.returncode == 0 and '"succeeded"' in r.stdout, r.stderr[-2000:]
    return dt


async def executor_run(ex: DockerExecutor, wd: Path, job_id: str) -> float:
    spec = JobSpec(job_id=job_id, workdir=wd, memory=1 << 30, cpu=1.0, timeout=300)
    t0 = time.perf_counter()
    out = await ex.run(spec, lambda e: None, lambda line: None)
    dt = time.perf_counter() - t0
    assert out.status == "succeeded", out
    return dt


async def warm_run(ex: DockerExecutor, wd: Path, job_id: str) -> float:
    assert await ex.pool.wait_ready(120), "the warm pool did not fill"
    return await executor_run(ex, wd, job_id)


async def burst(ex: DockerExecutor, base: Path, n: int, concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one(i):
        async with sem:
            await executor_run(ex, make_workdir(base), f"bench-burst-{i}-{uuid.uuid4().hex[:6]}")

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - t0


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--burst", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--runtime", default="", help="docker runtime for (c) and the burst, e.g. runsc")
    ap.add_argument("--python", help="interpreter for the bare runs (default: a lean venv)")
    ap.add_argument("--warm-pool", type=int, default=3, help="warm pool size for (w) and the warm burst")
    ap.add_argument("--image", help="runner image (default: the executor's)")
    ap.add_argument("--skip-cold-burst", action="store_true", help="only the warm burst")
    ap.add_argument("--cgroup-cpu-shares", type=int, default=0,
                    help="DockerExecutor.cgroup_cpu_shares (cpu weight of all jobs together; 0: the kernel's 1024)")
    args = ap.parse_args()

    python = args.python or lean_python()
    image = {"image": args.image} if args.image else {}
    image["cgroup_cpu_shares"] = args.cgroup_cpu_shares
    ex = DockerExecutor(instance="bench", runtime=args.runtime, **image)
    await ex.start()
    wex = DockerExecutor(instance="bench-warm", runtime=args.runtime, warm_pool=args.warm_pool, **image)
    base = Path(tempfile.mkdtemp(prefix="bench-docker-"))

    def sequential() -> float:
        t0 = time.perf_counter()
        for _ in range(args.burst):
            bare_run(python, make_workdir(base))
        return time.perf_counter() - t0

    try:
        bare_run(python, make_workdir(base))  # warm the page cache for every path
        docker_run(ex.image, make_workdir(base))
        a = [bare_run(python, make_workdir(base)) for _ in range(args.repeat)]
        b = [docker_run(ex.image, make_workdir(base)) for _ in range(args.repeat)]
        c = [await executor_run(ex, make_workdir(base), f"bench-{i}-{uuid.uuid4().hex[:6]}")
             for i in range(args.repeat)]
        burst_s = seq_s = None
        if not args.skip_cold_burst:
            burst_s = await burst(ex, base, args.burst, args.concurrency)
            seq_s = sequential()
        await ex.stop()
        await wex.start()
        w = [await warm_run(wex, make_workdir(base), f"bench-w{i}-{uuid.uuid4().hex[:6]}")
             for i in range(args.repeat)]
        assert await wex.pool.wait_ready(120), "the warm pool did not fill"
        warm_burst_s = await burst(wex, base, args.burst, args.concurrency)
        await wex.stop()  # its refills stop competing with the bare runs
        warm_seq_s = sequential()
    finally:
        await ex.stop()
        await wex.stop()
        shutil.rmtree(base, ignore_errors=True)

    ma, mb, mc, mw = (statistics.median(x) for x in (a, b, c, w))
    n, k = args.burst, args.concurrency
    result = {
        "cores": os.cpu_count(),
        "runtime": args.runtime or "runc",
        "warm_pool": args.warm_pool,
        "cgroup_cpu_shares": args.cgroup_cpu_shares or "kernel default (1024)",
        "bare_papermill_s": round(ma, 3),
        "docker_run_s": round(mb, 3),
        "executor_run_s": round(mc, 3),
        "executor_warm_run_s": round(mw, 3),
    }
    if burst_s is not None:
        result.update({
            f"burst_{n}_jobs_concurrency_{k}_s": round(burst_s, 2),
            f"sequential_{n}_bare_s": round(seq_s, 2),
        })
    result.update({
        f"warm_burst_{n}_jobs_concurrency_{k}_s": round(warm_burst_s, 2),
        f"sequential_{n}_bare_s_(warm_round)": round(warm_seq_s, 2),
        "ratio_docker_run_over_bare": round(mb / ma, 2),
        "ratio_executor_over_bare": round(mc / ma, 2),
        "ratio_executor_warm_over_bare": round(mw / ma, 2),
    })
    if burst_s is not None:
        result["ratio_burst_over_sequential"] = round(burst_s / seq_s, 2)
    result["ratio_warm_burst_over_sequential"] = round(warm_burst_s / warm_seq_s, 2)
    width = max(map(len, result))
    for k, v in result.items():
        print(f"{k:<{width}}  {v}")
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
