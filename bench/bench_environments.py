"""What a job's own requirements cost: a cold build, then the same requirements cached.

    .venv/bin/python -m bench.bench_environments [--repeat 3]

Through the docker executor (real containers of the runner image, real ``pip download``
from the index pip is configured with), in one run and against the same two-cell notebook:
jobs with no requirements (the baseline), one job whose requirements file names three
small wheels not in the runner image (a cold build: its key is made unique per run), and
jobs with the same file again (the derived image cached). Prints each job's wall time
(from ``run`` called to its outcome), the ratios to the baseline, and where the cold
build's time went (download on the host, install in the build container, commit), from
the build's own record. The derived image is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bench.bench_docker import make_workdir
from hub_service.executors.base import JobSpec

#: three small pure-Python wheels the runner image lacks
WHEELS = ("tabulate", "toolz", "humanize")


async def timed(executor, base: Path, requirements: tuple = ()) -> tuple:
    """(seconds, the build's last record or None) of one job of the two-cell notebook."""
    builds = []

    def on_event(event):
        if event.get("event") == "build":
            builds.append(event["build"])

    spec = JobSpec(job_id="bench" + uuid.uuid4().hex[:10], workdir=make_workdir(base), user="bench",
                   requirements=requirements, memory=512 << 20, timeout=600)
    started = time.perf_counter()
    outcome = await executor.run(spec, on_event, lambda line: None)
    took = time.perf_counter() - started
    if outcome.status != "succeeded":
        raise SystemExit(f"a job failed: {outcome}")
    return took, (builds[-1] if builds else None)


async def main(repeat: int) -> None:
    from hub_service.executors.docker import DockerExecutor

    executor = DockerExecutor(instance="bench-env-" + uuid.uuid4().hex[:6])
    await executor.start()
    run_id = uuid.uuid4().int % 10**9
    requirements = tuple(sorted(f"{name}>=0.0.{run_id}" for name in WHEELS))  # fresh key: a cold build
    image = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp)
            await timed(executor, base)  # (the first container of a run pays the page cache's warm-up)
            plain = [(await timed(executor, base))[0] for _ in range(repeat)]
            cold, built = await timed(executor, base, requirements)
            image = built["image"]
            cached = [(await timed(executor, base, requirements)) for _ in range(repeat)]
    finally:
        await executor.stop()
        if image:
            executor.builder._remove_image(image)
    baseline = statistics.median(plain)
    warm = statistics.median(t for t, _ in cached)
    print(f"requirements: {', '.join(requirements)} ({built['wheels']} wheels with pip's own, "
          f"{built['size'] / 2**20:.1f} MiB added to the runner image)")
    print(f"no requirements  median of {repeat}: {baseline:6.2f} s")
    print(f"cold build       one job:      {cold:6.2f} s   x{cold / baseline:.2f} the baseline")
    print(f"cached           median of {repeat}: {warm:6.2f} s   x{warm / baseline:.2f} the baseline "
          f"(build seconds {[b['seconds'] for _, b in cached]}, cached {[b['cached'] for _, b in cached]})")
    phases = built["phases"]
    other = cold - baseline - sum(phases.values())
    print(f"the cold build's {sum(phases.values()):.2f} s: "
          + ", ".join(f"{name} {seconds:.2f} s ({seconds / sum(phases.values()):.0%})"
                      for name, seconds in phases.items())
          + f"; the rest of the job over the baseline {other:+.2f} s (a cold container of a new image)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="jobs of the baseline and of the cached case")
    asyncio.run(main(parser.parse_args().repeat))
