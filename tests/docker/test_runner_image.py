"""The runner image's start-up: what every job's container pays before its first cell.

A burst of small jobs is bound by the cpu seconds each one costs (bench/bench_burst.py), and a
cold job's wall time by its start-up under its own cpu limit (bench/bench_phases.py): what the
image leaves out or prepares at build time is paid by no job.
"""

from __future__ import annotations

import json
import re

import docker
import nbformat
import pytest

from tests.docker.conftest import IMAGE, Recorder, make_notebook

#: A cell that says whether debugpy could be imported and whether anything of it was, and whether its kernel
#: was forked from the runner (its interpreter's command line is the runner's entry point).
KERNEL_CELL = ("import importlib.util, sys\n"
               "print('DEBUGPY', importlib.util.find_spec('debugpy') is not None,\n"
               "      sorted(m for m in sys.modules if m.startswith(('debugpy', '_pydev'))))\n"
               "print('FORKED', 'import runner' in ' '.join(sys.orig_argv), 'runner' in sys.modules)")

#: Run in the image: each module of its Python whose bytecode would not be used as it is (missing,
#: or stamped for another source), as a read-only root leaves no place to write it at run time.
STALE_BYTECODE = r"""
import importlib.util, os, sys, sysconfig

def stale(source):
    try:
        with open(importlib.util.cache_from_source(source), "rb") as f:
            header = f.read(16)
    except OSError:
        return True
    st = os.stat(source)
    flags = int.from_bytes(header[4:8], "little")
    return header[:4] != importlib.util.MAGIC_NUMBER or (flags == 0 and (
        int.from_bytes(header[8:12], "little") != int(st.st_mtime) & 0xFFFFFFFF
        or int.from_bytes(header[12:16], "little") != st.st_size & 0xFFFFFFFF))

sources = []
for top in {sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}:
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        sources += [os.path.join(root, name) for name in files if name.endswith(".py")]
# the runner's own file and the schema code generated at the build (imported, not run as scripts)
ours = ["/opt/runner/runner.py"] + [os.path.join("/opt/runner/schemas", name)
                                     for name in os.listdir("/opt/runner/schemas") if name.endswith(".py")]
found = [source for source in sources + ours if stale(source)]
print(len(sources) + len(ours), len(found), len(ours))
print("\n".join(found[:20]))
"""


def printed(spec) -> str:
    return printed_at(spec.output_path)


def printed_at(path) -> str:
    out = nbformat.read(str(path), as_version=4)
    return "".join(o.get("text", "") for c in out.cells for o in c.get("outputs", []))


@pytest.mark.parametrize("warm_pool", [0, 1], ids=["cold", "warm"])
async def test_the_kernel_is_forked_from_the_runner_and_starts_without_debugpy(make_executor, make_job, warm_pool):
    """The kernel, cold or warm, is a fork of the runner (what both import is imported once), and
    without debugpy: ipykernel imports it at every kernel start when it is installed (a quarter of
    the kernel's start-up cpu), for a debugger nobody attaches to a batch job; the image has none."""
    ex = make_executor(warm_pool=warm_pool)
    await ex.start()
    try:
        if warm_pool:
            assert await ex.pool.wait_ready(90), "the warm pool did not fill"
        spec = make_job(make_notebook(KERNEL_CELL))
        rec = Recorder()
        out = await ex.run(spec, rec.on_event, rec.on_log)
        assert out.status == "succeeded", (out, rec.log_text[-2000:])
        assert "DEBUGPY False []" in printed(spec), printed(spec)[:300]
        assert "FORKED True False" in printed(spec), printed(spec)[:300]
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
    seen, stale, ours = map(int, out.split("\n", 1)[0].split())
    assert seen > 1000, out  # the stdlib and the packages were walked
    assert ours > 2, out  # the runner and nbformat's schemas' code
    assert stale == 0, out


def test_the_entry_point_runs_the_runner_from_the_images_bytecode():
    """A script is compiled at every start (its bytecode is never cached): the entry point imports the
    runner as a module, from the bytecode the image carries, with no directory before the runner's on its
    path (the work directory, where the job's files are, least of all)."""
    client = docker.from_env()
    try:
        out = client.containers.run(IMAGE, command=["--help"], environment={"PYTHONVERBOSE": "1"},
                                    network_mode="none", read_only=True, remove=True, stdout=True,
                                    stderr=True, user="1000:1000", working_dir="/work/job").decode()
        assert "usage: runner.py" in out, out[-2000:]
        assert re.search(r"code object from '/opt/runner/__pycache__/runner\.cpython-\d+\.pyc'", out), \
            [line for line in out.splitlines() if "runner" in line]
        # the entry point's interpreter and options, with a program that shows its path
        python = client.images.get(IMAGE).attrs["Config"]["Entrypoint"][:-1]
        path = client.containers.run(IMAGE, entrypoint=[*python, "import sys; print(sys.path)"], network_mode="none",
                                     read_only=True, remove=True, working_dir="/work/job").decode()
    finally:
        client.close()
    assert "" not in eval(path) and "/work/job" not in eval(path), path


#: Run in the image: the runner's own main() on the job in /work/job (cold, or warm when argv says so), and
#: at its end which modules of RUNNER_UNUSED the runner process has loaded, and how many modules in all.
RUNNER_MODULES = r"""
import sys
sys.path.insert(0, "/opt/runner")
import runner
unused, leave = sys.argv[1].split(","), runner.leave
def counted_leave(code, km=None):
    loaded = [m for m in unused if type(sys.modules.get(m)).__name__ == "module"]
    print("RUNNER-MODULES", code, len(sys.modules), *loaded, file=sys.stderr, flush=True)
    import nbformat.validator
    print("RUNNER-SCHEMAS", *(v._validator.__module__ for v in nbformat.validator.validators.values()),
          file=sys.stderr, flush=True)
    leave(code, km)
runner.leave = counted_leave
sys.exit(runner.main(sys.argv[2:]))
"""
#: Modules a run of local files does not use in the runner process: papermill's http:// notebooks
#: (requests, urllib3), its command line (click), IPython (the kernel's, not the runner's).
RUNNER_UNUSED = ("requests", "urllib3", "click", "IPython")


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_the_runner_loads_only_what_a_run_uses(tmp_path, warm):
    """The runner process pays for every module it imports, in every job: papermill's imports that a run
    of local files never uses are deferred (and still load when used), its kernelspec is found without
    IPython, nbformat's schema validators come from the image, and its kernel keeps its input history in memory,
    as nbclient's own kernels do."""
    nb = make_notebook("print('HISTORY', get_ipython().history_manager.hist_file)")
    nbformat.write(nb, str(tmp_path / "input.ipynb"))
    tmp_path.chmod(0o777)
    job = ["--input", "/work/job/input.ipynb", "--output", "/work/job/output.ipynb", "--cwd", "/work/job/files"]
    argv = ["--warm", "--cwd", "/work/job/files"] if warm else job
    client = docker.from_env()
    try:
        python = (client.images.get(IMAGE).attrs["Config"].get("Entrypoint") or ["python3"])[0]
        container = client.containers.create(
            IMAGE, entrypoint=[python, "-c", RUNNER_MODULES, ",".join(RUNNER_UNUSED), *argv], network_mode="none",
            read_only=True, tmpfs={"/tmp": "rw,size=64m"}, volumes={str(tmp_path): {"bind": "/work/job"}},
            stdin_open=True)
        try:
            if warm:  # the job line, as the warm pool delivers it
                sock = container.attach_socket(params={"stdin": 1, "stream": 1})
                container.start()
                line = dict(zip(job[::2], job[1::2]))
                sock._sock.sendall((json.dumps({k.lstrip("-"): v for k, v in line.items()}) + "\n").encode())
                sock._sock.close()
            else:
                container.start()
            assert container.wait(timeout=120)["StatusCode"] == 0, container.logs().decode()[-3000:]
            log = container.logs(stdout=False, stderr=True).decode()
        finally:
            container.remove(force=True)
        counted = [line.split() for line in log.splitlines() if line.startswith("RUNNER-MODULES")]
        assert counted and counted[0][1] == "0", log[-3000:]
        assert counted[0][3:] == [], f"the runner loaded {counted[0][3:]} (of {counted[0][2]} modules)"
        # nbformat's validators: from the code the image carries, none compiled by the job
        schemas = [line.split()[1:] for line in log.splitlines() if line.startswith("RUNNER-SCHEMAS")][0]
        assert schemas and all(m.startswith("notebook_jobs_schema_") for m in schemas), schemas
        assert "HISTORY :memory:" in printed_at(tmp_path / "output.ipynb")
        # the deferred modules load when they are used: one module each, whoever holds it
        used = client.containers.run(IMAGE, entrypoint=[python, "-c", (
            "import sys; sys.path.insert(0, '/opt/runner'); import runner; runner.defer_imports(); "
            "import requests, click; from requests.exceptions import HTTPError; "
            "print(callable(requests.get), callable(click.echo), issubclass(HTTPError, requests.RequestException), "
            "type(sys.modules['requests']).__name__)")], network_mode="none", read_only=True, remove=True).decode()
        assert used.split() == ["True", "True", "True", "module"], used
    finally:
        client.close()
