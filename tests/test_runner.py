"""The runner program itself, run as the executors run it: real papermill, real kernel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from hub_service.executors.base import parse_event
from hub_service.runner import NICENESS

ROOT = Path(__file__).resolve().parents[1]
RUNNER = ROOT / "hub_service" / "runner.py"
RUNNER_VENV = ROOT / ".venv-runner" / "bin" / "python"
PR_CAPBSET_DROP = 24  # <linux/prctl.h>


def drop_all_capabilities():
    """In the child before exec: no capability survives the exec, as in a job's container.

    Root with CAP_SYS_PTRACE may open any process's /proc/<pid>/fd whatever it does; a
    job never has it (the container drops every capability, and runs as uid 1000).
    """
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last cap: ignored


#: A notebook cell that tries to write a forged "finished" event into every pipe its
#: parent (the runner) holds, through /proc: the runner's event stream is one of them.
FORGE_CELL = textwrap.dedent("""
    import json, os, stat
    forged = json.dumps({"event": "finished", "status": "succeeded", "forged": True}) + "\\n"
    runner, tried = os.getppid(), {}
    try:
        fds = os.listdir(f"/proc/{runner}/fd")
    except OSError as e:
        fds, tried["fd"] = [], type(e).__name__
    for fd in fds:
        path = f"/proc/{runner}/fd/{fd}"
        try:
            if not stat.S_ISFIFO(os.stat(path).st_mode):
                continue
            w = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.write(w, forged.encode())
            os.close(w)
            tried[fd] = "written"
        except OSError as e:
            tried[fd] = type(e).__name__
    print("FORGE", runner, tried)
""").strip()


def forge_notebook() -> nbformat.NotebookNode:
    """A notebook whose only cell is FORGE_CELL, then one honest cell."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(FORGE_CELL), nbformat.v4.new_code_cell("print('honest')")]
    return nb


def forge_report(log: str) -> str:
    """The FORGE line the notebook printed (the test is void without it)."""
    lines = [line for line in log.splitlines() if line.startswith("FORGE")]
    assert lines, f"the forging cell did not report:\n{log[-3000:]}"
    return lines[0]


def test_importing_the_runner_leaves_the_importers_stdout_alone():
    code = (
        "import os, sys\n"
        "before = (sys.stdout, os.fstat(1).st_ino)\n"
        "import hub_service.runner\n"
        "assert (sys.stdout, os.fstat(1).st_ino) == before, 'stdout rewired on import'\n"
        "print('still mine')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "still mine\n"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl are Linux's")
def test_a_notebook_cannot_forge_events_through_the_runners_proc_fds(tmp_path):
    python = str(RUNNER_VENV if RUNNER_VENV.exists() else sys.executable)
    nbformat.write(forge_notebook(), tmp_path / "input.ipynb")
    (tmp_path / "files").mkdir()
    env = dict(os.environ, HOME=str(tmp_path), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               IPYTHONDIR=str(tmp_path / "ipython"), JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1")
    out = subprocess.run(
        [python, str(RUNNER), "--input", str(tmp_path / "input.ipynb"), "--output", str(tmp_path / "output.ipynb"),
         "--cwd", str(tmp_path / "files")],
        capture_output=True, text=True, timeout=180, env=env, preexec_fn=drop_all_capabilities,
    )
    events = [e for e in map(parse_event, out.stdout.splitlines()) if e is not None]
    report = forge_report(out.stderr)
    assert not any(e.get("forged") for e in events), (report, events)
    # The attempt was real: the runner's /proc/<pid>/fd was there to try, and refused
    # (the listing itself for another uid; each descriptor for uid 0 without capabilities).
    assert "PermissionError" in report and "written" not in report, report
    assert [e["event"] for e in events] == [
        "started", "cell_started", "cell_finished", "cell_started", "cell_finished", "finished",
    ], events
    assert events[-1]["status"] == "succeeded" and out.returncode == 0, out.stderr[-2000:]


def run_runner(tmp_path, nb, *extra, stdin=None, env=None):
    """Run the runner as an executor does (its own venv, a private HOME; ``env``: more of its environment):
    the finished process."""
    python = str(RUNNER_VENV if RUNNER_VENV.exists() else sys.executable)
    nbformat.write(nb, tmp_path / "input.ipynb")
    (tmp_path / "files").mkdir(exist_ok=True)
    env = dict(os.environ, HOME=str(tmp_path), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               IPYTHONDIR=str(tmp_path / "ipython"), JUPYTER_PLATFORM_DIRS="1", PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.run([python, str(RUNNER), *extra], input=stdin, capture_output=True, text=True,
                          timeout=180, env=env)


TRANSPORT_CELL = textwrap.dedent("""
    from ipykernel.kernelapp import IPKernelApp
    app = IPKernelApp.instance()
    print("TRANSPORT", app.transport, oct(os.stat(os.path.dirname(app.ip)).st_mode & 0o777))
""").strip()


def run_cell(tmp_path, source: str, warm: bool, kernel: str = "python3", *options: str) -> tuple:
    """Run a one-cell notebook with the runner, cold or warm (its job line on stdin), in a ``kernel``, with the
    runner's ``options`` besides: (the finished process, what the cell printed)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source)]
    paths = ["--input", str(tmp_path / "input.ipynb"), "--output", str(tmp_path / "output.ipynb")]
    if warm:
        job = json.dumps(dict(zip(("input", "output"), paths[1::2]), cwd=str(tmp_path / "files")))
        out = run_runner(tmp_path, nb, "--warm", "--cwd", str(tmp_path / "files"), *options, stdin=job + "\n")
    else:
        out = run_runner(tmp_path, nb, *paths, "--cwd", str(tmp_path / "files"), *options)
    assert out.returncode == 0, out.stderr[-2000:]
    output = nbformat.read(tmp_path / "output.ipynb", as_version=4)
    return out, "".join(o.get("text", "") for c in output.cells for o in c.get("outputs", []))


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_the_kernel_speaks_over_private_unix_sockets_not_tcp(tmp_path, warm):
    out, printed = run_cell(tmp_path, "import os\n" + TRANSPORT_CELL, warm)
    assert "TRANSPORT ipc 0o700" in printed, printed
    assert "without encryption" not in out.stderr, out.stderr[-2000:]


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_a_jobs_runner_and_kernel_yield_the_cpu_to_the_service(tmp_path, warm):
    """Both run NICENESS below whoever started the runner (the service), cold or warm."""
    _, printed = run_cell(tmp_path, "import os\nprint('NICE', os.nice(0), os.getpriority(os.PRIO_PROCESS, "
                                    "os.getppid()))", warm)
    wanted = min(19, os.nice(0) + NICENESS)
    assert f"NICE {wanted} {wanted}" in printed, printed  # the kernel's, and its parent's: the runner's


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_an_idle_runner_and_its_kernel_take_only_idle_cpu(tmp_path, warm):
    """With --idle (the local executor's idle_priority) both run at SCHED_IDLE, cold or warm; without it, not."""
    cell = "import os\nprint('POLICY', os.sched_getscheduler(0), os.sched_getscheduler(os.getppid()))"
    _, printed = run_cell(tmp_path, cell, warm, "python3", "--idle")
    assert f"POLICY {os.SCHED_IDLE} {os.SCHED_IDLE}" in printed, printed  # the kernel's, and the runner's
    (tmp_path / "normal").mkdir()
    _, printed = run_cell(tmp_path / "normal", cell, warm)
    assert f"POLICY {os.SCHED_OTHER} {os.SCHED_OTHER}" in printed, printed


#: A cell that says how its kernel's process was started (from the runner's own command line: a fork of it) and
#: what that process is as a kernel launched by its command would be: its path, directory, environment, stdin,
#: process group, dumpability, the runner's modules, and the pipes it holds.
KERNEL_CELL = textwrap.dedent("""
    import ctypes, json, os, sys
    helper = os.path.dirname(__import__("notebook_jobs").__file__)
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds[fd] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            pass
    print("KERNEL", json.dumps({
        "forked": any(arg.endswith("runner.py") for arg in sys.orig_argv),
        "path": [p.replace(helper, "HELPER") for p in sys.path],
        "cwd": os.getcwd(),
        "env": sorted(set(os.environ) - {"NBJ_LAUNCHED"}),
        "stdin": sys.stdin.read(),
        "group": os.getpgid(0) == os.getpid(),
        "dumpable": ctypes.CDLL(None).prctl(3, 0, 0, 0, 0),
        "runner": sorted(m for m in sys.modules if m == "runner" or type(sys.modules[m]).__name__ == "DeferredModule"),
        "pipes": sorted({link for link in fds.values() if link.startswith("pipe:")} - {fds["1"], fds["2"]}),
        "log": fds["1"] == fds["2"],
    }))
""").strip()


def kernel_report(printed: str) -> dict:
    lines = [line for line in printed.splitlines() if line.startswith("KERNEL ")]
    assert lines, printed[-2000:]
    return json.loads(lines[0].split(" ", 1)[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and prctl are Linux's")
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_the_kernel_is_a_fork_of_the_runner_as_its_launch_would_have_made_it(tmp_path, warm):
    """The kernel is forked from the runner (its imports made once, not twice) and is what its command would
    have started: compared with a kernel whose kernelspec has an environment of its own, which is launched as
    before. It holds no descriptor of the runner's events, only the log's pipe (stdout and stderr alike)."""
    spec = tmp_path / "launched" / ".local" / "share" / "jupyter" / "kernels" / "launched"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "env": {"NBJ_LAUNCHED": "1"},
        "display_name": "launched", "language": "python"}))
    _, printed = run_cell(tmp_path / "launched", KERNEL_CELL, warm=False, kernel="launched")
    launched = kernel_report(printed)
    (tmp_path / "forked").mkdir()
    _, printed = run_cell(tmp_path / "forked", KERNEL_CELL, warm)
    forked = kernel_report(printed)
    assert forked.pop("forked") and not launched.pop("forked")
    assert launched["cwd"].endswith("/launched/files") and forked["cwd"].endswith("/forked/files")
    launched["cwd"] = forked["cwd"] = None
    assert forked == launched
    assert forked["pipes"] == [] and forked["log"] and forked["group"] and forked["dumpable"] == 1, forked
    assert forked["stdin"] == "" and forked["runner"] == [], forked


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_a_jobs_own_ipykernel_launcher_is_not_its_kernel(tmp_path, warm):
    """``python -m ipykernel_launcher`` in the job's directory would run a file of that name from there (``-m``
    puts the directory first on the path) as the kernel, with the start-up's cpu limit. The kernel forked from
    the runner looks for nothing in the job's directory before it is up."""
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "ipykernel_launcher.py").write_text("print('HIJACKED')\nraise SystemExit(7)\n")
    out, printed = run_cell(tmp_path, "print('the kernel ran')", warm)
    assert "the kernel ran" in printed and "HIJACKED" not in out.stderr + printed, out.stderr[-2000:]


#: A cell that says whether its kernel collects garbage as it goes (a cycle made here is gone after some more
#: allocations, with no gc.collect()) and whether the start-up's objects were left out of that (frozen).
COLLECTOR_CELL = textwrap.dedent("""
    import gc, weakref
    class Cycle:
        pass
    cycle = Cycle()
    cycle.itself = cycle
    gone = weakref.ref(cycle)
    del cycle
    kept = [[] for _ in range(10 * gc.get_threshold()[0])]
    print("COLLECTOR", gc.isenabled(), gone() is None, gc.get_freeze_count() > 10000)
""").strip()


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_the_kernel_collects_the_notebooks_garbage_but_not_its_start_ups(tmp_path, warm):
    """The runner holds the collector off while it imports (its kernel, forked from it, inherits that): the
    notebook's code runs with it on, and the start-up's objects are frozen out of its generations."""
    _, printed = run_cell(tmp_path, COLLECTOR_CELL, warm)
    assert "COLLECTOR True True True" in printed, printed


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_what_the_notebook_left_running_ends_with_its_kernel(tmp_path, warm):
    """A process the notebook started and left running is killed with the kernel, in its process group, as the
    run ends: it writes nothing more into the outputs."""
    _, printed = run_cell(tmp_path, "import subprocess\nprint('LEFT', subprocess.Popen(['sleep', '300']).pid)", warm)
    left = int(printed.split("LEFT", 1)[1].split()[0])
    try:
        deadline = time.monotonic() + 10
        while alive(left) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(left), "the notebook's process outlived its kernel"
    finally:
        if alive(left):
            os.kill(left, 9)


def warm_line(tmp_path, **extra) -> str:
    """A warm runner's job line for tmp_path's input.ipynb (and output, cwd files/), with ``extra`` keys."""
    return json.dumps(dict(input=str(tmp_path / "input.ipynb"), output=str(tmp_path / "output.ipynb"),
                           cwd=str(tmp_path / "files"), **extra)) + "\n"


def b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def test_a_warm_runner_writes_the_inputs_of_its_line_and_sends_back_its_outputs(tmp_path):
    """The notebook and a data file arrive in the job line only (nothing of them on disk before), and
    the outputs -- the output notebook, the files the notebook wrote -- come back as one event."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("import pathlib\n"
                                          "pathlib.Path('out.txt').write_text(pathlib.Path('data.csv').read_text() * 2)")]
    line = warm_line(tmp_path, inputs={"input.ipynb": b64(nbformat.writes(nb).encode())},
                     files={"data.csv": b64(b"a,b\n")}, outputs_max=1 << 20)
    placeholder = nbformat.v4.new_notebook()  # (run_runner writes one: the line's must replace it)
    out = run_runner(tmp_path, placeholder, "--warm", "--cwd", str(tmp_path / "files"), stdin=line)
    assert out.returncode == 0, out.stderr[-2000:]
    events = [e for e in map(parse_event, out.stdout.splitlines()) if e]
    assert events[0]["event"] == "ready" and events[0]["line_io"] is True
    kinds = [e["event"] for e in events]
    assert kinds[-2:] == ["finished", "outputs"] and events[-2]["status"] == "succeeded", kinds
    sent = events[-1]
    assert sorted(sent["outputs"]) == ["output.ipynb"] and sorted(sent["files"]) == ["data.csv", "out.txt"]
    assert base64_text(sent["files"]["out.txt"]) == "a,b\na,b\n"
    assert base64_text(sent["outputs"]["output.ipynb"]) == (tmp_path / "output.ipynb").read_text()
    assert oct((tmp_path / "files" / "data.csv").stat().st_mode & 0o777) == "0o600"


def test_a_cold_runner_asked_by_its_environment_sends_its_outputs_as_an_event(tmp_path):
    """The docker executor's cold containers carry OUTPUTS_ENV: their outputs then come back as a warm job's
    do, in one event after "finished", and need no get_archive. The kernel does not inherit the variable;
    without it the runner sends no such event."""
    from hub_service.executors.docker.warm import OUTPUTS_ENV
    from hub_service.runner import OUTPUTS_ENV as RUNNERS_ENV

    assert RUNNERS_ENV == OUTPUTS_ENV
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(
        "import os, pathlib\npathlib.Path('out.txt').write_text(repr(os.environ.get(%r)))" % OUTPUTS_ENV)]
    paths = ["--input", str(tmp_path / "input.ipynb"), "--output", str(tmp_path / "output.ipynb"),
             "--cwd", str(tmp_path / "files")]
    for asked in (True, False):
        out = run_runner(tmp_path, nb, *paths, env={OUTPUTS_ENV: "100000"} if asked else {})
        assert out.returncode == 0, out.stderr[-2000:]
        events = [e for e in map(parse_event, out.stdout.splitlines()) if e]
        kinds = [e["event"] for e in events]
        assert (tmp_path / "files" / "out.txt").read_text() == "None"
        if not asked:
            assert "outputs" not in kinds, kinds
            continue
        assert kinds[-2:] == ["finished", "outputs"] and events[-2]["status"] == "succeeded", kinds
        assert sorted(events[-1]["outputs"]) == ["output.ipynb"] and sorted(events[-1]["files"]) == ["out.txt"]
        assert base64_text(events[-1]["files"]["out.txt"]) == "None"


def test_a_warm_runner_marks_its_stderr_where_its_jobs_output_begins(tmp_path):
    """The executor tells the start-up's output from the job's on stderr by this mark (the daemon logs
    stderr and stdout in no order between them): once, before anything the notebook printed."""
    from hub_service.executors.docker.warm import JOB_MARK, MARKS
    from hub_service.runner import JOB_MARK as RUNNERS_MARK

    assert RUNNERS_MARK == JOB_MARK
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("print('tick 0')")]
    out = run_runner(tmp_path, nb, "--warm", "--cwd", str(tmp_path / "files"), stdin=warm_line(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    events = [e for e in map(parse_event, out.stdout.splitlines()) if e]
    assert events[0]["event"] == "ready" and events[0][MARKS] is True
    err = out.stderr.encode().split(b"\n")
    assert err.count(JOB_MARK) == 1, out.stderr[-2000:]
    assert err.index(JOB_MARK) < min(i for i, line in enumerate(err) if b"tick 0" in line)


def base64_text(data: str) -> str:
    import base64

    return base64.b64decode(data).decode()


def test_a_warm_runner_sends_no_outputs_it_was_not_asked_for_or_that_are_not_plain_files(tmp_path):
    """No outputs_max: no event (the local executor's and older lines); a folder or a link among the files,
    or more bytes than asked: none either (the executor copies them out)."""
    def run(tmp, source, **extra):
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.cells = [nbformat.v4.new_code_cell(source)]
        tmp.mkdir()
        out = run_runner(tmp, nb, "--warm", "--cwd", str(tmp / "files"), stdin=warm_line(tmp, **extra))
        assert out.returncode == 0, out.stderr[-2000:]
        return [e["event"] for e in map(parse_event, out.stdout.splitlines()) if e]

    assert run(tmp_path / "unasked", "print(1)")[-1] == "finished"
    assert run(tmp_path / "folder", "import os\nos.mkdir('sub')", outputs_max=1 << 20)[-1] == "finished"
    assert run(tmp_path / "link", "import os\nos.symlink('/etc/passwd', 'p')", outputs_max=1 << 20)[-1] == "finished"
    assert run(tmp_path / "big", "open('big', 'wb').write(b'x' * 5000)", outputs_max=4000)[-1] == "finished"
    assert run(tmp_path / "small", "open('big', 'wb').write(b'x' * 5000)", outputs_max=1 << 20)[-1] == "outputs"


@pytest.mark.parametrize("name", ["../escaped", "a/b", "..", "", "x\0y"])
def test_a_warm_runner_refuses_inputs_that_are_not_plain_file_names(tmp_path, name):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    (tmp_path / "job").mkdir()
    line = warm_line(tmp_path / "job", files={name: b64(b"x")})
    out = run_runner(tmp_path / "job", nb, "--warm", "--cwd", str(tmp_path / "job" / "files"), stdin=line)
    finished = [e for e in map(parse_event, out.stdout.splitlines()) if e and e["event"] == "finished"]
    assert out.returncode == 2 and finished[0]["status"] == "failed", out.stderr[-2000:]
    assert "bad job line" in finished[0]["error"]["message"] and "plain file name" in finished[0]["error"]["message"]
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "job" / "files" / "a").exists()


def test_the_runner_takes_a_schemas_validator_from_the_code_generated_for_it(tmp_path, monkeypatch):
    """nbformat compiles the schema of a notebook's version with fastjsonschema in every job (~30 ms); the
    image carries the code runner-image/schemas.py generated for nbformat's schemas. The runner loads a
    schema's validator from it when it is there, and compiles anything else as fastjsonschema would."""
    import fastjsonschema

    from hub_service import runner

    subprocess.run([sys.executable, str(ROOT / "runner-image" / "schemas.py"), str(tmp_path), str(RUNNER.parent)],
                   check=True)
    monkeypatch.setattr(fastjsonschema, "compile", fastjsonschema.compile)  # (put back afterwards)
    compiled = fastjsonschema.compile
    runner.use_precompiled_schemas(str(tmp_path))
    schema_path = Path(nbformat.__file__).parent / "v4" / "nbformat.v4.5.schema.json"
    schema = json.loads(schema_path.read_text())
    validate, reference = fastjsonschema.compile(schema), compiled(schema)
    assert validate.__module__.startswith("notebook_jobs_schema_"), validate.__module__
    assert reference.__module__ is None  # (compiled into a namespace of its own)
    good = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    bad = dict(good, cells=[{"cell_type": "code", "source": 1}])
    assert validate(good) == reference(good)
    errors = []
    for check in (validate, reference):
        with pytest.raises(fastjsonschema.JsonSchemaValueException) as refused:
            check(bad)
        errors.append((refused.value.message, refused.value.path))
    assert errors[0] == errors[1]
    # a schema without generated code, or a call with options, is compiled as before
    assert fastjsonschema.compile({"type": "string"}).__module__ is None
    assert fastjsonschema.compile(schema, formats={"x": r"^x$"}).func.__module__ is None
    # no code without the image's directory: fastjsonschema is left as it is
    monkeypatch.setattr(fastjsonschema, "compile", compiled)
    runner.use_precompiled_schemas(str(tmp_path / "absent"))
    assert fastjsonschema.compile is compiled
