"""Benchmark: the swarm backend against the docker backend, for one job and a burst.

    .venv/bin/python -m bench.bench_swarm [--repeat 3] [--burst 20] [--concurrency 2]

The same 2-cell notebook (bench_docker's) through
  (d) DockerExecutor.run (cold: create, put_archive, start, stream, collect, remove);
  (s) SwarmExecutor.run (network, service, task container found and checked, put_archive,
      job line, stream, collect, remove service, volume and network);
then a burst of N jobs through each, ``concurrency`` at a time (the dispatcher's share of
these 2 cores). Prints medians, the ratios s/d and burst_s/burst_d, and where a swarm
job's time goes: each phase's median (the phases are the executor's own methods, timed
around their calls).

Needs dockerd and the runner image; makes this daemon a single-node swarm when it is in
none, and leaves it again at the end (and the docker_gwbridge network the init made).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bench.bench_docker import make_workdir
from hub_service.executors.base import JobSpec
from hub_service.executors.docker import DockerExecutor
from hub_service.executors.swarm import SwarmExecutor


def timed(ex, phases: dict, *names):
    """Wrap the executor's methods ``names`` so each call's wall time lands in ``phases``."""
    for name in names:
        real = getattr(ex, name)
        if asyncio.iscoroutinefunction(real):
            async def wrapper(*a, _real=real, _name=name, **kw):
                t0 = time.perf_counter()
                try:
                    return await _real(*a, **kw)
                finally:
                    phases[_name].append(time.perf_counter() - t0)
        else:
            def wrapper(*a, _real=real, _name=name, **kw):
                t0 = time.perf_counter()
                try:
                    return _real(*a, **kw)
                finally:
                    phases[_name].append(time.perf_counter() - t0)
        setattr(ex, name, wrapper)


async def one(ex, base: Path) -> float:
    """Seconds for one job through ``ex``, from run() to its outcome (which must be success)."""
    spec = JobSpec(job_id="b" + uuid.uuid4().hex[:10], workdir=make_workdir(base), memory=512 << 20, timeout=120)
    t0 = time.perf_counter()
    out = await ex.run(spec, lambda e: None, lambda l: None)
    assert out.status == "succeeded", out
    return time.perf_counter() - t0


async def burst(ex, base: Path, n: int, k: int) -> float:
    """Seconds for ``n`` jobs, ``k`` at a time."""
    sem = asyncio.Semaphore(k)

    async def job():
        async with sem:
            await one(ex, base)

    t0 = time.perf_counter()
    await asyncio.gather(*(job() for _ in range(n)))
    return time.perf_counter() - t0


def swarm_up(client) -> tuple:
    """(made the swarm, the bridge existed before) after making this daemon a manager if needed."""
    had_bridge = bool(client.api.networks(names=["docker_gwbridge"]))
    if (client.info().get("Swarm") or {}).get("LocalNodeState") == "inactive":
        client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
        return True, had_bridge
    return False, had_bridge


def swarm_down(client, made: bool, had_bridge: bool) -> None:
    """Leave the swarm (and remove the bridge) when this benchmark made them."""
    if made:
        client.swarm.leave(force=True)
        if not had_bridge:
            for n in client.api.networks(names=["docker_gwbridge"]):
                client.api.remove_network(n["Id"])


async def main():
    import docker

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--burst", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=2)
    args = ap.parse_args()

    client = docker.from_env()
    made, had_bridge = swarm_up(client)
    base = Path(tempfile.mkdtemp(prefix="bench-swarm-"))
    phases: dict = collections.defaultdict(list)
    dex = DockerExecutor(instance="bench-d-" + uuid.uuid4().hex[:6])
    sex = SwarmExecutor(instance="bench-s-" + uuid.uuid4().hex[:6])
    timed(sex, phases, "_check_fits", "_task_container", "check_task", "_follow", "_remove_sync")
    try:
        await dex.start()
        await sex.start()
        await one(dex, base)  # page cache, image layers
        await one(sex, base)
        phases.clear()
        d = [await one(dex, base) for _ in range(args.repeat)]
        s = [await one(sex, base) for _ in range(args.repeat)]
        single_phases = {k: statistics.median(v) for k, v in phases.items()}
        burst_d = await burst(dex, base, args.burst, args.concurrency)
        burst_s = await burst(sex, base, args.burst, args.concurrency)
    finally:
        await dex.stop()
        await sex.stop()
        shutil.rmtree(base, ignore_errors=True)
        swarm_down(client, made, had_bridge)
        client.close()

    md, ms = statistics.median(d), statistics.median(s)
    n, k = args.burst, args.concurrency
    # _follow includes _remove_sync (it removes at its end); the rest of run() is creating.
    follow = single_phases.get("_follow", 0.0)
    remove = single_phases.get("_remove_sync", 0.0)
    result = {
        "cores": os.cpu_count(),
        "docker_run_s": round(md, 3),
        "swarm_run_s": round(ms, 3),
        f"docker_burst_{n}_concurrency_{k}_s": round(burst_d, 2),
        f"swarm_burst_{n}_concurrency_{k}_s": round(burst_s, 2),
        "ratio_swarm_over_docker": round(ms / md, 2),
        "ratio_swarm_burst_over_docker_burst": round(burst_s / burst_d, 2),
        "swarm_phase_fits_check_s": round(single_phases.get("_check_fits", 0.0), 3),
        "swarm_phase_network_service_and_inputs_s": round(
            ms - follow - single_phases.get("_task_container", 0.0) - single_phases.get("check_task", 0.0)
            - single_phases.get("_check_fits", 0.0), 3),
        "swarm_phase_task_container_wait_s": round(single_phases.get("_task_container", 0.0), 3),
        "swarm_phase_check_s": round(single_phases.get("check_task", 0.0), 3),
        "swarm_phase_follow_and_collect_s": round(follow - remove, 3),
        "swarm_phase_remove_s": round(remove, 3),
    }
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
