"""The memory floor: what the runner and a kernel need before a notebook does anything.

    .venv/bin/python -m bench.bench_floor [--jobs 12] [--concurrency 2] [--warm-pool 2] [--skip-docker]

Runs a trivial notebook (two cells, no imports) as real jobs -- through the docker
executor cold (a fresh container each), through it with a warm pool (the peak then
includes the kernel's start-up, see hub_service.executors.docker), ``concurrency`` at a
time as in a burst, and through the local executor -- and reads each job's peak memory
as the service records it (the cgroup's peak under docker, sampled RSS locally). It
prints the peaks and the floor they imply: the largest peak seen times FLOOR_MARGIN,
rounded up to 16 MiB. Peaks of the same trivial job vary (page cache charged to the
job's cgroup, the warm start-up, allocator timing, other jobs at once), and the largest
of a few dozen runs is not the largest there will be -- in a burst of 300 trivial jobs
the largest peak was 1.2x that of the largest of a dozen here -- hence a wide margin.
``demand.sizing.RUNNER_FLOOR`` is set from this script's output on the target machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

from bench.bench_docker import make_workdir
from demand.policy import RUNNER_FLOOR
from hub_service.executors.base import JobSpec

MiB = 2**20
#: Headroom over the largest trivial peak seen: a few dozen runs do not show the tail of
#: thousands, and a limit too low kills every job, however small, before it starts.
FLOOR_MARGIN = 2.0


async def _peaks(executor, base: Path, n: int, concurrency: int, tag: str) -> list[int]:
    sem = asyncio.Semaphore(concurrency)

    async def one(i):
        async with sem:
            spec = JobSpec(job_id=f"floor-{tag}-{i}-{uuid.uuid4().hex[:6]}", workdir=make_workdir(base),
                           memory=1 << 30, cpu=1.0, timeout=300)
            out = await executor.run(spec, lambda e: None, lambda line: None)
            assert out.status == "succeeded", out
            return int(out.used.peak_memory)

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=12, help="trivial jobs per way of running them")
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--warm-pool", type=int, default=2)
    ap.add_argument("--skip-docker", action="store_true", help="the local executor only")
    args = ap.parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="bench-floor-"))
    peaks: dict[str, list[int]] = {}
    try:
        from hub_service.executors.local import LocalExecutor

        peaks["local"] = await _peaks(LocalExecutor(), base, args.jobs, args.concurrency, "local")
        if not args.skip_docker:
            from hub_service.executors.docker import DockerExecutor

            for name, pool in (("docker cold", 0), ("docker warm", args.warm_pool)):
                ex = DockerExecutor(instance=f"bench-floor-{uuid.uuid4().hex[:6]}", warm_pool=pool)
                await ex.start()
                try:
                    if pool:
                        assert await ex.pool.wait_ready(180), "the warm pool did not fill"
                    peaks[name] = await _peaks(ex, base, args.jobs, args.concurrency, name.split()[1])
                finally:
                    await ex.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)
    top = max(max(p) for p in peaks.values())
    floor = math.ceil(top * FLOOR_MARGIN / (16 * MiB)) * 16 * MiB
    for name, p in peaks.items():
        p = sorted(p)
        print(f"{name:<12} n={len(p):<3} peak MiB min {p[0] / MiB:6.1f}  median {p[len(p) // 2] / MiB:6.1f}  "
              f"max {p[-1] / MiB:6.1f}")
    print(f"largest peak {top / MiB:.1f} MiB x {FLOOR_MARGIN} -> floor {floor / MiB:.0f} MiB "
          f"(demand.sizing.RUNNER_FLOOR now {RUNNER_FLOOR / MiB:.0f} MiB: ratio {floor / RUNNER_FLOOR:.2f})")
    print(json.dumps({"peaks_mib": {k: [round(v / MiB, 1) for v in p] for k, p in peaks.items()},
                      "floor_mib": floor // MiB}))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
