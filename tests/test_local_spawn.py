"""The local executor's runner: spawned without forking the service, dying with it all the same, and
followed by reading its own process tree only (bench/bench_load.py --drain measures what these save)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from hub_service.executors.base import RUNNER_PATH, JobSpec
from hub_service.executors.local import LocalExecutor, _Watch, kill_tree, tree
from hub_service.runner import ipc_kernel_manager_class
from tests.hubtest import make_notebook

pytestmark = pytest.mark.process

#: what the service's process did while a test counted: each fork's return in it, each /proc file opened
_seen = {"forks": None, "opened": None}
os.register_at_fork(after_in_parent=lambda: _seen["forks"] is not None and _seen["forks"].append(1))


def _audit(event, args):
    if _seen["opened"] is not None and event in ("open", "os.listdir") and str(args[0]).startswith("/proc/"):
        _seen["opened"].append(str(args[0]))


sys.addaudithook(_audit)


def is_kernel(pid: int) -> bool:
    """Whether ``pid`` is a kernel: launched by its command, or forked from its runner (which names it)."""
    try:
        return b"ipykernel" in Path(f"/proc/{pid}/cmdline").read_bytes() + Path(f"/proc/{pid}/comm").read_bytes()
    except OSError:  # (it ended)
        return False


def write_job(workdir, *sources) -> None:
    (workdir / "files").mkdir(parents=True)
    (workdir / "input.ipynb").write_text(json.dumps(make_notebook(*sources)))
    (workdir / "parameters.json").write_text("{}")


async def test_a_runner_is_spawned_without_forking_the_service(tmp_path):
    """A spawn that runs Python code between fork and exec (a ``preexec_fn``) forks the whole service, and the
    event loop waits while its memory is copied; without one the spawn is a vfork: no fork returns here."""
    write_job(tmp_path, "print(6 * 7)")
    _seen["forks"] = []
    try:
        outcome = await LocalExecutor().run(JobSpec(job_id="spawn", workdir=tmp_path, timeout=120),
                                            lambda event: None, lambda text: None)
        forks = _seen["forks"]
    finally:
        _seen["forks"] = None
    assert outcome.status == "succeeded", outcome
    assert forks == []


@pytest.mark.parametrize("idle", [True, False])
async def test_a_runner_is_idle_from_its_first_instruction(tmp_path, idle):
    """With ``idle_priority`` the runner's interpreter starts at the idle policy: its start (some 50 ms of cpu a
    job) came at the service's policy until the runner took the idle one itself. The runner's "python" here
    reads its own policy as it starts, then is the real one."""
    write_job(tmp_path, "print(6 * 7)")
    seen = tmp_path / "policy"
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\ngrep '^policy' /proc/$$/sched > {seen}\nexec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    executor = LocalExecutor(runner_python=str(python), idle_priority=idle)
    outcome = await executor.run(JobSpec(job_id="idle", workdir=tmp_path, timeout=120),
                                 lambda event: None, lambda text: None)
    assert outcome.status == "succeeded", outcome
    assert int(seen.read_text().split(":")[1]) == (os.SCHED_IDLE if idle else os.SCHED_OTHER)


def test_a_runner_whose_parent_is_gone_leaves_before_it_starts_anything(tmp_path):
    """The death signal is the runner's own to ask for: started for a parent that is not (or no longer) the
    process it has, it leaves at once (exit 4), with no event said and no kernel started."""
    write_job(tmp_path, "print(1)")
    done = subprocess.run([sys.executable, str(RUNNER_PATH), *JobSpec(job_id="x", workdir=tmp_path).runner_args(),
                           "--parent", str(os.getppid())], capture_output=True, timeout=60)
    assert (done.returncode, done.stdout) == (4, b"")
    assert not (tmp_path / "output.ipynb").exists()


def test_a_runner_dies_with_the_service_that_started_it(tmp_path):
    """A stand-in for the service starts a runner as the executor does (``--parent``: its pid), and is killed
    with -9 once the runner is under way: the runner gets its SIGKILL."""
    write_job(tmp_path, "import time\ntime.sleep(60)")
    args = [sys.executable, str(RUNNER_PATH), *JobSpec(job_id="x", workdir=tmp_path).runner_args()]
    service = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, subprocess, sys
        runner = subprocess.Popen({args!r} + ["--parent", str(os.getpid())], cwd={str(tmp_path)!r},
                                  process_group=0, stderr=subprocess.DEVNULL)
        print(runner.pid, flush=True)
        runner.wait()
        """)], stdout=subprocess.PIPE, text=True)
    runner = psutil.Process(int(service.stdout.readline()))
    family = []
    try:
        deadline = time.monotonic() + 60
        while not any(is_kernel(pid) for pid in tree(runner.pid)[1:]):
            assert runner.is_running() and time.monotonic() < deadline, "the runner's kernel did not start"
            time.sleep(0.05)
        family = tree(runner.pid)
        service.kill()
        service.wait(10)
        runner.wait(10)  # (raises TimeoutExpired if it outlives its parent)
    finally:
        for pid in family[1:]:  # its kernel: the death signal is the runner's alone
            kill_tree(pid)
        service.kill()


def test_the_watcher_reads_the_job_tree_and_nothing_else_of_proc(tmp_path):
    """Each sample finds the tree from its own processes' ``/proc`` entries: not by reading every process of
    the machine (psutil's ``children``), which cost the service a core's tenth with two jobs running."""
    family = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import subprocess, sys
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print(grandchild.pid, flush=True)
        grandchild.wait()
        """)], stdout=subprocess.PIPE, text=True)
    try:
        grandchild = int(family.stdout.readline())
        watch = _Watch(family.pid)
        _seen["opened"] = []
        try:
            watch.sample(limit=None)
            opened = _seen["opened"]
        finally:
            _seen["opened"] = None
        assert set(watch.cpu) == {family.pid, grandchild}
        assert watch.peak >= psutil.Process(family.pid).memory_info().rss
        read = {path.split("/")[2] for path in opened}
        assert read == {str(family.pid), str(grandchild)}, sorted(read)
    finally:
        kill_tree(family.pid)
        family.wait(10)



class _Signals:
    """The signals a catchable, terminating kind that this process (the service, in these tests) receives
    meanwhile: a killpg meant for a job's group that reached it would be one."""

    KINDS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

    def __enter__(self):
        self.received = []
        self.before = {kind: signal.signal(kind, lambda signum, frame: self.received.append(signum))
                       for kind in self.KINDS}
        return self

    def __exit__(self, *exc):
        for kind, handler in self.before.items():
            signal.signal(kind, handler)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="a process group by vfork needs Python 3.11")
async def test_a_jobs_runner_and_kernel_share_the_services_session_each_in_a_group_of_its_own(tmp_path):
    """Linux shares the cpu between sessions (autogroups) first: in sessions of their own the runner and its
    kernel weigh as much as the whole service whatever their niceness, and a listing waits for a core behind
    them. In the service's session, each leading a process group of its own (so that a killpg for the kernel
    takes neither the runner nor the service), they run below it, at the idle policy (idle_priority: the
    service never waits for a job's time slice to end); and a cancel takes them, not the service."""
    write_job(tmp_path, "import time\ntime.sleep(60)")
    executor = LocalExecutor()
    with _Signals() as signals:
        job = asyncio.ensure_future(executor.run(JobSpec(job_id="groups", workdir=tmp_path, timeout=120),
                                                 lambda event: None, lambda text: None))
        try:
            deadline = time.monotonic() + 60
            while "groups" not in executor._procs or not any(
                    is_kernel(pid) for pid in tree(executor._procs["groups"].pid)[1:]):
                assert not job.done() and time.monotonic() < deadline, "the job's kernel did not start"
                await asyncio.sleep(0.05)
            runner = executor._procs["groups"].pid
            kernel = next(pid for pid in tree(runner)[1:] if is_kernel(pid))
            assert [os.getsid(pid) for pid in (runner, kernel)] == [os.getsid(0)] * 2
            assert [os.getpgid(pid) for pid in (runner, kernel)] == [runner, kernel]
            assert [os.sched_getscheduler(pid) for pid in (runner, kernel)] == [os.SCHED_IDLE] * 2
            assert await executor.cancel("groups")
            outcome = await asyncio.wait_for(job, 30)
        finally:
            if not job.done():
                kill_tree(executor._procs["groups"].pid)
                await job
    assert outcome.status == "cancelled", outcome
    assert signals.received == []
    assert not psutil.pid_exists(kernel) or psutil.Process(kernel).status() == psutil.STATUS_ZOMBIE


@pytest.mark.skipif(sys.version_info < (3, 11), reason="a process group by vfork needs Python 3.11")
async def test_the_runners_kernel_manager_signals_the_kernels_group_alone(tmp_path):
    """jupyter_client interrupts and kills a kernel with ``killpg`` of the group it recorded at the launch:
    with the runner's kernel manager that is the kernel's own group (in the runner's session, here this
    process's), which holds what the kernel started too and neither the runner nor the service."""
    km = ipc_kernel_manager_class()(kernel_name="python3")
    with _Signals() as signals:
        await km.start_kernel(cwd=str(tmp_path))
        try:
            kernel = km.provisioner.pid
            assert (os.getsid(kernel), os.getpgid(kernel), km.provisioner.pgid) == (os.getsid(0), kernel, kernel)
            kc = km.client()
            kc.start_channels()
            try:
                await kc.wait_for_ready(timeout=60)
                printed = []
                reply = await kc.execute_interactive(  # (a child deaf to the interrupt: the kill must take it)
                    "import subprocess, sys\n"
                    "child = subprocess.Popen([sys.executable, '-c', 'import signal, time; "
                    "signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)'])\n"
                    "print(child.pid)\n", timeout=60,
                    output_hook=lambda msg: msg["msg_type"] == "stream" and printed.append(msg["content"]["text"]))
                assert reply["content"]["status"] == "ok", reply
                child = psutil.Process(int("".join(printed)))
                msg_id = kc.execute("import time; print('sleeping', flush=True); time.sleep(60)")
                while True:  # interrupted in the cell, not before it
                    msg = await kc._async_get_iopub_msg(timeout=30)
                    if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream"
                            and "sleeping" in msg["content"]["text"]):
                        break
                await km.interrupt_kernel()
                reply = await kc._async_get_shell_msg(timeout=30)
                while reply["parent_header"].get("msg_id") != msg_id:
                    reply = await kc._async_get_shell_msg(timeout=30)
                assert reply["content"].get("ename") == "KeyboardInterrupt", reply["content"]
            finally:
                kc.stop_channels()
        finally:
            await km.shutdown_kernel(now=True)
    child.wait(10)  # the group's SIGKILL took the kernel's own child (raises TimeoutExpired otherwise)
    assert signals.received == []
