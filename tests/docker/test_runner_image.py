"""The runner image's start-up: what every job's container pays before its first cell.

A burst of small jobs is bound by the cpu seconds each one costs (bench/bench_burst.py), and a
cold job's wall time by its start-up under its own cpu limit (bench/bench_phases.py): what the
image leaves out or prepares at build time is paid by no job.
"""

from __future__ import annotations

import docker
import nbformat
import pytest

from tests.docker.conftest import IMAGE, Recorder, make_notebook

#: A cell that says whether debugpy could be imported and whether anything of it was.
DEBUGPY_CELL = ("import importlib.util, sys\n"
                "print('DEBUGPY', importlib.util.find_spec('debugpy') is not None,\n"
                "      sorted(m for m in sys.modules if m.startswith(('debugpy', '_pydev'))))")

#: Run in the image: each module of its Python whose bytecode would not be used as it is (missing,
#: or stamped for another source), as a read-only root leaves no place to write it at run time.
STALE_BYTECODE = r"""
import importlib.util, os, sys, sysconfig
stale, seen = [], 0
for top in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}:
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in files:
            if not name.endswith(".py"):
                continue
            source = os.path.join(root, name)
            seen += 1
            try:
                with open(importlib.util.cache_from_source(source), "rb") as f:
                    header = f.read(16)
            except OSError:
                stale.append(source)
                continue
            st = os.stat(source)
            flags = int.from_bytes(header[4:8], "little")
            if header[:4] != importlib.util.MAGIC_NUMBER or (flags == 0 and (
                    int.from_bytes(header[8:12], "little") != int(st.st_mtime) & 0xFFFFFFFF
                    or int.from_bytes(header[12:16], "little") != st.st_size & 0xFFFFFFFF)):
                stale.append(source)
print(seen, len(stale))
print("\n".join(stale[:20]))
"""


def printed(spec) -> str:
    out = nbformat.read(str(spec.output_path), as_version=4)
    return "".join(o.get("text", "") for c in out.cells for o in c.get("outputs", []))


@pytest.mark.parametrize("warm_pool", [0, 1], ids=["cold", "warm"])
async def test_the_kernel_starts_without_debugpy(make_executor, make_job, warm_pool):
    """ipykernel imports debugpy at every kernel start when it is installed (a quarter of the
    kernel's start-up cpu), for a debugger nobody attaches to a batch job: the image has none,
    and its kernel, cold or warm, runs without it."""
    ex = make_executor(warm_pool=warm_pool)
    await ex.start()
    try:
        if warm_pool:
            assert await ex.pool.wait_ready(90), "the warm pool did not fill"
        spec = make_job(make_notebook(DEBUGPY_CELL))
        rec = Recorder()
        out = await ex.run(spec, rec.on_event, rec.on_log)
        assert out.status == "succeeded", (out, rec.log_text[-2000:])
        assert "DEBUGPY False []" in printed(spec), printed(spec)[:300]
    finally:
        await ex.stop()


def test_every_module_of_the_image_has_its_bytecode():
    """The root is read-only at run time, so a module without valid bytecode in the image is
    compiled again, in memory, by every job that imports it: the image carries it for all."""
    client = docker.from_env()
    try:
        python = (client.images.get(IMAGE).attrs["Config"].get("Entrypoint") or ["python3"])[0]
        out = client.containers.run(IMAGE, entrypoint=[python, "-c", STALE_BYTECODE], network_mode="none",
                                    read_only=True, remove=True, stdout=True, stderr=True).decode()
    finally:
        client.close()
    seen, stale = map(int, out.split("\n", 1)[0].split())
    assert seen > 1000, out  # the stdlib and the packages were walked
    assert stale == 0, out
