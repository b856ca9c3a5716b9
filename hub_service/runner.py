"""The runner program: executes one notebook with papermill and narrates it as JSON lines.

This file runs wherever a job runs (inside the runner image, or under the local
executor) and so imports nothing from ``hub_service``: only the standard library and
papermill. Its stdout carries one JSON event per line and nothing else; everything the
notebook prints goes to stderr, which the executor keeps as the job's log.

Events::

    {"event": "started", "cells_total": N}
    {"event": "cell_started", "cell": i}            # i: index in the submitted notebook
    {"event": "cell_finished", "cell": i, "cells_done": k, "status": "ok"|"error"}
    {"event": "metric", "step": s, "values": {"loss": 0.41, ...}}
    {"event": "finished", "status": "succeeded"|"failed", "error": {...}}

Metrics: a notebook reports named numbers with a line ``PROGRESS: {json}`` on its stdout,
or with ``from notebook_jobs import report; report(loss=0.41, step=3)``, a helper this
runner writes for the kernel to import (:data:`HELPER_SOURCE`) that prints that same line.
The runner reads the kernel's stdout as it arrives (papermill's ``stdout_file``) and turns
each such line into one "metric" event, checked here (finite numbers only, at most
:data:`MAX_METRICS` names; one warning in the log for what it refuses) and capped per job:
past :data:`MAX_METRIC_POINTS` it keeps only each metric's last value and sends those when
the run ends. Reports are read from the kernel's output rather than a channel of their own
because the kernel cannot reach the events' fd (see make_undumpable). When the run ends, what
was reported is also written beside the output notebook as :data:`METRICS_FILE` (each
metric's final value and series): it is made where the notebook is, by the process that read
the reports, so it travels with the output however the job ran.

Exit codes: 0 succeeded, 1 a cell raised, 2 bad input or papermill failure, 4 its ``--parent`` was gone.

Warm mode (``--warm --cwd DIR``): a pre-started runner that pays papermill's start-up
before its job exists. It imports papermill, starts the kernel in DIR and waits for it,
says ``{"event": "ready", "line_io": true, "marks_stderr": true}``, then reads ONE JSON line from
stdin (and writes :data:`JOB_MARK` to stderr: the job's output follows it): the job, as
``{"input": ..., "output": ..., "parameters": ..., "cwd": ..., "kernel": ...}`` (the
one-shot options by name), at most :data:`MAX_JOB_LINE` characters. ``line_io`` says the line
may also carry the job's inputs -- ``"inputs"`` and ``"files"``, each ``{name: base64 content}``,
written into the directory of ``input`` and into ``cwd`` before the run (a name that is not a
plain file name is refused) -- and ``"outputs_max": n``: after "finished" and its kernel's end,
the run's outputs come back as one event, ``{"event": "outputs", "outputs": {...}, "files":
{...}}`` (the output notebook and metrics file; the regular files of ``cwd``), when they are
all regular files and the event is at most n characters (else no such event). It says
``{"event": "assigned", "warm_cpu_seconds": s}`` (the cpu its start-up used, for the
executor to leave out of the job's usage) and runs the
job with the already-started kernel, emitting the events above. One runner, one job:
the kernel is shut down afterwards and the process exits. When the job asks for another
kernel or working directory, the warm kernel is dropped and papermill starts its own.
stdin closed without a job: exit code 3, no events but ``ready``.

A cold runner whose environment has :data:`OUTPUTS_ENV` set to n sends its outputs back as a
warm one asked for ``outputs_max`` n does (an environment variable rather than an option: an
older runner, which would refuse an option it does not know, ignores it; the kernel does not
inherit it).
"""

import argparse
import gc
import json
import math
import os
import shutil
import signal
import stat
import sys
import tempfile
import time
import types

INJECTED_TAG = "injected-parameters"
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NAME = 1, 4, 15  # <linux/prctl.h>
#: how far below the service's the cpu priority of a job's processes (runner, kernel) is: a notebook is
#: batch work, and the service answering its users (a listing, an event stream, the next job's start) must
#: not queue behind the jobs for the cores. Under the local executor both stay in the service's session (Linux
#: shares the cpu between sessions first, then by niceness within one): at 10 a job's process weighs 110 to
#: the service's 1024, which then keeps nine tenths of a core they share; 19 (15) would add little to that,
#: and would leave a job 1.5 % of a core beside the service's own busy workers (nice 0, in its session).
#: (In a container of its own a job's cgroup weighs against the service, and this orders only the job's own
#: processes.) Under the local executor they are at the idle policy as well, by default (yield_cpu).
NICENESS = 10

#: Where events go: the original stdout, taken over by take_stdout() in main().
_EVENTS = None
#: The directory of the kernel's ``notebook_jobs`` module (install_helper's).
_HELPER_DIR = None


def hold_collector():
    """Keep Python's cyclic garbage collector from running while the process imports what it runs with.

    A job's start-up imports some 500 modules in the runner and 130 more in its kernel: tens of thousands of
    objects (modules, classes, functions) that live as long as the process, and that the start-up's
    collections looked through again and again: ~110 of them, 20-25 ms of a cold job's ~0.4 cpu s in the
    runner image, for ~0.6 MB of the imports' leftovers they would have freed. :func:`release_collector` lets
    it run again once the imports are done (the kernel inherits this from the runner it is forked from, and
    releases it itself).
    """
    gc.disable()


def release_collector():
    """The start-up's imports are done: move what they made out of the collector's generations without
    looking through it (``gc.freeze``: it is never collected, as modules are not), and let the collector
    run again, for what the job allocates from here on (the notebook's objects, in the kernel)."""
    gc.freeze()
    gc.enable()


#: Modules papermill imports at its own import but that a run of local files never uses: requests (its
#: http:// notebooks; with urllib3, charset_normalizer, idna, http.cookiejar: a fifth of the modules a job's
#: runner loads) and click (its command line). defer_imports() loads them only when first used.
DEFERRED_MODULES = ("requests", "click")


class DeferredModule(types.ModuleType):
    """A module whose code runs at the first look-up of a name it defines, not at ``import``.

    As importlib's LazyLoader, it is the module itself, made from its spec (so ``__spec__``, ``__path__``
    and the like are there, and its submodules import as they would), and it runs its code into itself:
    every holder of it sees one module. LazyLoader does not do here: an ``import`` statement reads the
    module's ``__spec__``, and any attribute read runs a LazyLoader's module.
    """

    def __getattr__(self, name):
        self.__class__ = types.ModuleType  # (an ordinary module from here on: its code runs once)
        self.__spec__.loader.exec_module(self)
        return getattr(self, name)


def defer_imports(names=DEFERRED_MODULES):
    """Put a DeferredModule in sys.modules for each of ``names`` not imported yet (and installed)."""
    import importlib.util

    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            module.__class__ = DeferredModule
            sys.modules[name] = module


#: Where the runner image keeps nbformat's notebook schemas as the code fastjsonschema generates for them
#: (runner-image/schemas.py, at the image's build), one file per schema_key(); elsewhere there is none.
PRECOMPILED_SCHEMAS = "/opt/runner/schemas"


def schema_key(definition, version):
    """The name of the code fastjsonschema ``version`` generates for the schema ``definition``: a digest of both,
    so that a schema nbformat changed, or another fastjsonschema (an environment's upgrade), finds no code."""
    import hashlib

    text = json.dumps([version, definition], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def use_precompiled_schemas(where=PRECOMPILED_SCHEMAS):
    """Have fastjsonschema take a schema's validator from the code the image generated for it, when there is some.

    nbformat validates every notebook it reads and writes with fastjsonschema, which compiles the schema of
    the notebook's version at its first use: ~170 KB of Python generated and compiled, ~30 ms of every job's
    cpu, for the same few schemas each time. The image carries that code, compiled to bytecode, and a call with
    nothing but a schema (nbformat's) whose code is there gets the same function from it; any other call, or
    a schema without code, is compiled as before.
    """
    if not os.path.isdir(where):
        return
    import importlib.util

    import fastjsonschema

    compile_schema = fastjsonschema.compile

    def compile(definition, *args, **kwargs):
        if not args and not kwargs:
            try:
                key = schema_key(definition, fastjsonschema.VERSION)
            except (TypeError, ValueError):  # (not a JSON document: no code was generated for it)
                key = None
            path = key and os.path.join(where, key + ".py")
            if path and os.path.exists(path):
                spec = importlib.util.spec_from_file_location(f"notebook_jobs_schema_{key}", path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                return module.VALIDATE
        return compile_schema(definition, *args, **kwargs)

    fastjsonschema.compile = compile


def take_stdout():
    """Keep fd 1 for events alone and point everything else that writes to stdout at stderr.

    Papermill, a library warming up, or the kernel (which inherits fd 1) then land in the
    log instead of corrupting the event stream. The events' fd is a private dup, not
    inherited by the kernel.
    """
    global _EVENTS
    _EVENTS = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr


def make_undumpable():
    """Close this process's /proc/<pid>/fd, mem and ptrace to processes of the same uid.

    The kernel runs the user's code as the runner's uid; without this it could open
    /proc/<runner>/fd/<events> and write forged events (progress, "finished") into the
    stream the service believes. An undumpable process's /proc entries belong to root,
    and the job has no capabilities. The flag is not inherited across exec, and KernelFork's
    child sets it back: the kernel itself stays an ordinary process.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_DUMPABLE, 0): {os.strerror(err)}")


def die_with(parent):
    """Get SIGKILL when ``parent``, the process that started this runner (the local executor's service), dies,
    and leave now if it died already: a service killed with -9 leaves no runner behind to race the re-queued
    run of the same job. Asked here, not between the service's fork and exec: a spawn that runs no code in the
    child is a vfork, which does not hold the service's event loop while its memory is copied."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # (it died before the prctl: no signal will come)
        os._exit(4)


def yield_cpu(idle: bool = False):
    """Lower this process's cpu priority (its kernel inherits it); allowed to any process.

    ``idle`` (the local executor's ``idle_priority``): to the idle scheduling policy as well (SCHED_IDLE),
    which takes the cores only when nothing else wants them. A niceness weighs in the share of the cores,
    but a service woken for a request still waits for a job to end its time slice (the kernel protects it):
    a wait at every wake-up of the event loop, over half its run time in a drain of jobs (bench_load). An
    idle job's process gives up the core as soon as anything else is woken.
    """
    try:
        os.nice(NICENESS)
        if idle:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except OSError as e:
        print(f"runner: lowering its cpu priority: {e}", file=sys.stderr)


def emit(event, **fields):
    """Write one event line."""
    fields["event"] = event
    fields["time"] = round(time.time(), 3)
    _EVENTS.write(json.dumps(fields) + "\n")


#: the mark of a report line in the kernel's stdout (a training script's protocol)
PROGRESS_MARK = "PROGRESS: "
#: metric points a job may send while it runs; past it, only each metric's last value (at the end)
MAX_METRIC_POINTS = 10000
#: the file of a run's metrics, beside its output notebook
METRICS_FILE = "metrics.json"
#: how long a metric's name may be: what a series is called in the API and on a page
MAX_METRIC_NAME = 100
#: how many metrics a job may have (their last values are on the job, in every listing of it)
MAX_METRICS = 200
#: a line longer than this is not read as a report (the log keeps it all the same)
MAX_REPORT_LINE = 64 * 1024
#: the environment variable that tells the helper it runs inside a job
HELPER_ENV = "NOTEBOOK_JOBS_JOB"

#: ``notebook_jobs``, the module a notebook imports to report (written for the kernel by
#: install_helper). It is text here, not a file beside this one, because this one file is
#: what a runner image carries: a new runner brings its helper with it.
HELPER_SOURCE = '''"""Report a running job's numbers: ``from notebook_jobs import report; report(loss=0.41, step=3)``.

Inside a Notebook Jobs job each call prints one ``PROGRESS: {json}`` line, which the
job's runner reads from the notebook's output and the service keeps as the job's metric
series (``GET /jobs/{id}/metrics``). Outside a job it does nothing.
"""

import json
import os
import sys

__all__ = ["report"]


def _number(value):
    # numpy's scalars and the like as their float; anything else as text (which the runner refuses)
    try:
        return float(value)
    except (TypeError, ValueError):
        return repr(value)


def report(step=None, **values):
    """Report named numbers (``loss=0.41``), with an optional integer ``step``."""
    if not os.environ.get("NOTEBOOK_JOBS_JOB"):
        return
    fields = dict(values)
    if step is not None:
        fields["step"] = step
    # not flushed: the kernel sends what was printed in the last 0.2 s as one message. Flushed, each
    # report was a message of its own, and a few thousand a second overflowed the kernel's output
    # queue: the rest was lost, the cell's end too, and the run failed waiting for it
    print("PROGRESS: " + json.dumps(fields, default=_number), file=sys.stdout)
'''


def install_helper():
    """Write the ``notebook_jobs`` module to a private directory put first on the kernel's PYTHONPATH.

    The kernel (started by papermill, or by the warm start-up) inherits this environment;
    the directory holds nothing else, so no other name there shadows a user's module.
    """
    global _HELPER_DIR
    where = _HELPER_DIR = tempfile.mkdtemp(prefix="notebook-jobs-helper-")
    with open(os.path.join(where, "notebook_jobs.py"), "w") as f:
        f.write(HELPER_SOURCE)
    paths = [where] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    os.environ[HELPER_ENV] = "1"
    return where


def remove_helper():
    """Remove what install_helper wrote (under the local executor /tmp outlives the job)."""
    if _HELPER_DIR:
        shutil.rmtree(_HELPER_DIR, ignore_errors=True)


def read_report(data):
    """One report as (step, values, refused): its finite numbers, and what was refused, in words.

    ``data`` is a JSON object of named numbers with an optional integer ``step`` (None when
    absent). A value that is not a finite number (a string, NaN, infinity, a bool, a list)
    is refused by name; a bad step refuses the whole report.
    """
    if not isinstance(data, dict):
        return None, {}, [f"{json.dumps(data)[:40]} (a report is an object of named numbers)"]
    step = data.get("step")
    if step is not None:
        if isinstance(step, float) and step.is_integer():
            step = int(step)
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            return None, {}, [f"step={json.dumps(step)[:40]} (a step is an integer from 0)"]
    values, refused = {}, []
    for name, value in data.items():
        if name == "step":
            continue
        if not name or len(name) > MAX_METRIC_NAME or not name.isprintable():
            refused.append(f"{name[:MAX_METRIC_NAME]!r} (a name is 1 to {MAX_METRIC_NAME} printable characters)")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            refused.append(f"{name}={json.dumps(value)[:40]} (not a finite number)")
        else:
            values[name] = float(value)
    return step, values, refused


class MetricReader:
    """The kernel's stdout as papermill hands it over (``stdout_file``): kept in the log, read for reports.

    Each complete line that starts with ``PROGRESS: `` is one report, sent at once as a
    "metric" event. A report without a step gets the step after its metrics' last (from 0).
    """

    def __init__(self, log=None, limit=MAX_METRIC_POINTS):
        self.log = log or sys.stderr
        self.limit = limit
        self.sent = 0
        self.partial = ""
        self.steps = {}  # name -> the last step it was reported at
        self.held = {}  # past the limit: name -> (step, value), the last of each, sent at the end
        self.warned = False
        self.series = {}  # name -> {step: value}: what was sent, for METRICS_FILE
        self.last = {}  # name -> the value it was last reported with
        self.capped = False

    def write(self, text):
        self.log.write(text)
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        if len(self.partial) > MAX_REPORT_LINE:
            self.partial = ""  # not a report (a report is one short line)
        for line in lines:
            self.line(line)

    def flush(self):
        self.log.flush()

    def line(self, line):
        """Read one line of the kernel's stdout; a report in it is sent (or held, past the limit)."""
        line = line.rstrip("\r")
        if not line.startswith(PROGRESS_MARK) or len(line) > MAX_REPORT_LINE:
            return
        try:
            data = json.loads(line[len(PROGRESS_MARK):])
        except ValueError:
            self.warn(["a line that is not JSON"])
            return
        step, values, refused = read_report(data)
        for name in [n for n in values if n not in self.steps][max(0, MAX_METRICS - len(self.steps)):]:
            del values[name]
            refused.append(f"{name} (a job has at most {MAX_METRICS} metrics)")
        if refused:
            self.warn(refused)
        if not values:
            return
        if step is None:
            step = max(self.steps.get(name, -1) for name in values) + 1
        for name in values:
            self.steps[name] = step
        if self.held or self.sent + len(values) > self.limit:
            if not self.held:
                self.capped = True
                print(f"runner: metrics: more than {self.limit} points reported; from here on only each "
                      "metric's last value is kept, and sent when the run ends", file=self.log, flush=True)
            self.held.update((name, (step, value)) for name, value in values.items())
            return
        self.sent += len(values)
        self.keep(step, values)
        emit("metric", step=step, values=values)

    def keep(self, step, values):
        for name, value in values.items():
            self.series.setdefault(name, {})[step] = value
            self.last[name] = value

    def warn(self, refused):
        """Say once, in the job's log, that reports were refused (and why, for the first)."""
        if self.warned:
            return
        self.warned = True
        print("runner: metrics: refused " + "; ".join(refused) + " (further refusals are not logged)",
              file=self.log, flush=True)

    def close(self, output=None):
        """The run is over: read a last line left without its newline, send the values held past the
        limit, and write what was reported beside the ``output`` notebook (when there were reports)."""
        if self.partial:
            self.line(self.partial)
            self.partial = ""
        by_step = {}
        for name, (step, value) in self.held.items():
            by_step.setdefault(step, {})[name] = value
        for step in sorted(by_step):
            self.keep(step, by_step[step])
            emit("metric", step=step, values=by_step[step])
        self.held = {}
        if output and self.series:
            self.save(os.path.join(os.path.dirname(os.path.abspath(output)), METRICS_FILE))

    def save(self, path):
        """``{"final": {name: value}, "points": n, "capped": bool, "series": [{name, points: [{step, value}]}]}``
        (``final`` and ``series`` as GET …/metrics has them); a file not written costs the job only that file."""
        series = [{"name": name, "points": [{"step": step, "value": value} for step, value in sorted(points.items())]}
                  for name, points in sorted(self.series.items())]
        summary = {"final": self.last, "points": self.sent, "capped": self.capped, "series": series}
        try:
            with open(path, "w") as f:
                json.dump(summary, f)
        except OSError as e:
            print(f"runner: metrics: {METRICS_FILE} not written: {e}", file=self.log, flush=True)


def user_cell_index(nb, index):
    """Map an index of the executed notebook to the submitted one (papermill injects cells)."""
    if index is None:
        return None
    injected = sum(
        1 for cell in nb.cells[:index] if INJECTED_TAG in cell.get("metadata", {}).get("tags", [])
    )
    return index - injected


def is_user_code(cell):
    """A code cell of the submitted notebook (not one papermill injected)."""
    return cell.cell_type == "code" and INJECTED_TAG not in cell.get("metadata", {}).get("tags", [])


def cell_words(position=None, exec_count=None):
    """Where a cell is, as a person finds it: 'code cell 2 of 3, In [2]' (either part may be missing).

    ``position`` is (k, n): the k-th of the n code cells, counted as the progress counts them;
    ``exec_count`` the In [n] the executed notebook shows. The service names a cell a run was
    stopped in with the same words (hub_service/jobs.py); '' when there is nothing to say.
    """
    where = []
    if position:
        where.append("code cell {} of {}".format(*position))
    if exec_count is not None:
        where.append(f"In [{exec_count}]")
    return ", ".join(where)


def ipc_kernel_manager_class():
    """nbclient's kernel manager, speaking to its kernel over Unix sockets in a private directory.

    Over TCP, jupyter_client's default, the kernel listens on loopback ports that any
    process in the same network namespace may connect to (under the local executor, the
    host's), and says so in every job's log. Unix sockets in a fresh 0700 directory
    (mkdtemp's) are reachable by this job's uid alone.
    """
    import tempfile
    import uuid
    from queue import Empty

    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.manager import AsyncKernelManager  # nbclient's own kernel manager class

    class ReadyClient(AsyncKernelClient):
        """Ready when the kernel has answered kernel_info and IOPub has carried that request's idle status.

        jupyter_client's own wait ends by reading IOPub until it has been quiet for 0.2 s: a
        fixed 0.2 s on every run, warm kernel or not. The idle status of our own request is
        the last message there is to wait for, so it ends the wait instead.
        """

        async def wait_for_ready(self, timeout=None):
            deadline = time.monotonic() + (3600.0 if timeout is None else timeout)
            while time.monotonic() < deadline:
                msg_id = self.kernel_info()
                try:
                    reply = await self._async_recv_reply(msg_id, timeout=1)
                except TimeoutError:
                    if not await self._async_is_alive():
                        raise RuntimeError("Kernel died before replying to kernel_info") from None
                    continue
                self._handle_kernel_info_reply(reply)
                while time.monotonic() < deadline:  # (nothing in 0.2 s: IOPub not connected yet; ask again)
                    try:
                        msg = await self.iopub_channel.get_msg(timeout=0.2)
                    except Empty:
                        break
                    if (msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "status"
                            and msg["content"].get("execution_state") == "idle"):
                        return
            raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.transport = "ipc"
            self.ip = os.path.join(tempfile.mkdtemp(prefix="kernel-"), "ipc")
            self.client_factory = ReadyClient

        async def _async_pre_start_kernel(self, **kw):
            # a kernelspec that names a provisioner of its own keeps it; jupyter_client's default is replaced,
            # where Popen can make a process group without code between fork and exec (Python 3.11)
            if (self.provisioner is None and sys.version_info >= (3, 11)
                    and not self.kernel_spec.metadata.get("kernel_provisioner")):
                self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
                self.provisioner = own_group_provisioner_class()(
                    kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
            return await super()._async_pre_start_kernel(**kw)

    return IPCKernelManager


def own_group_provisioner_class():
    """jupyter_client's local provisioner, launching the kernel in a process group of its own within the
    runner's session instead of in a session of its own.

    Linux shares the cpu between sessions (autogroups) first: in a session of its own the kernel weighs as
    much as the whole service, whatever niceness it inherited from the runner (see yield_cpu). In the
    runner's session, which is the service's, that niceness puts it below the service. The group of its
    own is for the provisioner's signals: it interrupts and kills with ``killpg`` of the kernel's group,
    which must take the kernel and what it started, never the runner or the service. jupyter_client's
    launcher always asks for a new session, so the kernel is launched here as that launcher otherwise
    launches it on POSIX: no stdin, ``JPY_PARENT_PID`` for the kernel to leave when the runner is gone.
    """
    import subprocess

    from jupyter_client.provisioning import LocalProvisioner

    class OwnGroupProvisioner(LocalProvisioner):
        async def launch_kernel(self, cmd, **kwargs):
            kwargs = self._scrub_kwargs(kwargs)
            kwargs["env"] = dict(kwargs.get("env") or os.environ, JPY_PARENT_PID=str(os.getpid()))
            fork = getattr(self.parent, "kernel_fork", None)
            if fork is not None and fork.takes(cmd, kwargs):
                self.process = fork.popen(cmd, kwargs["env"], kwargs.get("cwd"))
            else:
                if fork is not None:
                    fork.cancel()
                # (setpgid runs in the child without any Python code: the spawn stays a vfork)
                self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, process_group=0, **kwargs)
            self.pid = self.pgid = self.process.pid
            self.cwd = kwargs.get("cwd", os.getcwd())
            return self.connection_info

    return OwnGroupProvisioner


#: the kernelspec command of this interpreter's own IPython kernel, after its interpreter: what KernelFork becomes
IPYKERNEL_LAUNCHER = ["-m", "ipykernel_launcher"]
#: the runner's own PYTHONPATH, before install_helper adds to it (KernelFork's path is made from it)
_STARTING_PYTHONPATH = os.environ.get("PYTHONPATH", "")


class KernelFork:
    """A child of the runner, forked before its kernel's launch, that becomes that kernel.

    ``python -m ipykernel_launcher`` spends most of its start-up's cpu on what the runner has done already:
    the interpreter's start, then jupyter_client, zmq, traitlets and asyncio imported (0.2-0.3 cpu s of
    a kernel's ~0.3 in the runner image, against 0.06 s for what is the kernel's own, ipykernel and
    IPython). A fork of the runner taken once those are imported, and before any event loop, thread or zmq
    context exists in it, waits on a pipe, and at the launch becomes the kernel that command would have
    started: its environment, directory, path, arguments and standard streams; its own process group; no
    stdin, and the events' descriptor pointing nowhere (the events are the runner's alone: see
    make_undumpable); an ordinary, dumpable process as after an exec. It is jupyter_client's to poll,
    signal and wait for as the Popen of a launched kernel is.

    Only the kernelspec of this interpreter's own ipykernel, with no environment of its own, is forked
    (:meth:`for_spec`); any other kernel, or a launch that asks for more than an environment and a
    directory, is launched as before, and the fork leaves (:meth:`cancel`). What shows that a kernel was
    forked: its ``sys.orig_argv`` and ``/proc/<pid>/cmdline`` are the runner's (its name, ``comm``, says ipykernel).
    """

    def __init__(self):
        sys.stdout.flush()  # (what is buffered here would be written by both processes)
        sys.stderr.flush()
        order, self._order = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self._order)
            _become_kernel(order)  # (never returns)
        os.close(order)
        try:
            os.setpgid(self.pid, self.pid)  # (the child does too: its group exists before either goes on)
        except OSError:
            pass

    @classmethod
    def for_spec(cls, spec):
        """A fork for a kernel of ``spec`` (a jupyter_client KernelSpec), or None when it is not this
        interpreter's ipykernel as launched by its command alone."""
        argv = list(spec.argv or [])
        python = {"python", f"python{sys.version_info[0]}", "python%d.%d" % sys.version_info[:2], sys.executable}
        if (argv[:1] and argv[0] in python and argv[1:3] == IPYKERNEL_LAUNCHER and not spec.env
                and not (spec.metadata or {}).get("kernel_provisioner")):
            return cls()
        return None

    def takes(self, cmd, kwargs):
        """Whether the launch of ``cmd`` with Popen's ``kwargs`` is one this fork can become: this interpreter's
        ipykernel launcher, an environment and a directory, and the same interpreter settings (PYTHON*)."""
        env = kwargs.get("env") or {}
        settings = {k: v for k, v in env.items() if k.startswith("PYTHON")}
        return (self._order is not None and list(cmd[:1]) == [sys.executable] and list(cmd[1:3]) == IPYKERNEL_LAUNCHER
                and set(kwargs) <= {"env", "cwd"}
                and settings == {k: v for k, v in os.environ.items() if k.startswith("PYTHON")})

    def popen(self, cmd, env, cwd):
        """Have the fork become the kernel of ``cmd``: its Popen."""
        import subprocess

        fork = self

        class Forked(subprocess.Popen):
            def _execute_child(self, args, executable, preexec_fn, close_fds, pass_fds, cwd, env, *rest):
                fork._send({"argv": list(args), "env": dict(env), "cwd": cwd and os.fspath(cwd)})
                self.pid, self._child_created = fork.pid, True

        return Forked(cmd, env=env, cwd=cwd)

    def cancel(self):
        """The kernel is launched otherwise: the fork leaves (and is reaped)."""
        if self._order is not None:
            self._send(None)
            try:
                os.waitpid(self.pid, 0)
            except ChildProcessError:
                pass

    def _send(self, order):
        with os.fdopen(self._order, "wb") as f:
            self._order = None
            if order is not None:
                f.write(json.dumps(order).encode())


def _become_kernel(order_fd):
    """In KernelFork's child: read the launch's order and become its kernel, or leave at an empty one; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        if _EVENTS is not None:
            os.dup2(null, _EVENTS.fileno())
        os.close(null)
        with os.fdopen(order_fd, "rb") as f:
            order = f.read()
        if not order:
            os._exit(0)
        order = json.loads(order)
        code = _run_ipykernel(order["argv"][3:], order["env"], order["cwd"])
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def _run_ipykernel(arguments, env, cwd):
    """Run ipykernel as ``python -m ipykernel_launcher ARGUMENTS`` would in ``env`` and ``cwd``: its exit code."""
    import atexit
    import importlib
    import importlib.util
    import io

    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # (as an exec leaves a process)
        libc.prctl(PR_SET_NAME, b"ipykernel", 0, 0, 0)  # (its name in ps and top; its command line is the runner's)
    if cwd:
        os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    # the path of a fresh interpreter (PYTHONPATH's, then the standard ones), less the launcher's first entry:
    # not the runner's directory, nor the runner's PYTHONPATH in place of the kernel's
    own = {os.path.dirname(os.path.abspath(__file__)), ""}
    own.update(os.path.abspath(p) for p in _STARTING_PYTHONPATH.split(os.pathsep) if p)
    wanted = [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[:] = list(dict.fromkeys(wanted + [p for p in sys.path if p not in own]))
    importlib.invalidate_caches()
    for name, module in list(sys.modules.items()):  # (the runner's, and its deferred modules never loaded)
        if type(module) is DeferredModule or (name != "__main__" and module is sys.modules.get(__name__)):
            del sys.modules[name]
    sys.argv[:] = [importlib.util.find_spec("ipykernel_launcher").origin, *arguments]
    sys.stdin = sys.__stdin__ = io.TextIOWrapper(io.FileIO(0, "r", closefd=False))
    sys.stdout = sys.__stdout__ = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
    sys.stderr = sys.__stderr__ = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True,
                                                  errors="backslashreplace")
    atexit._clear()  # (the runner's: the kernel's own run as it ends)
    code = 0
    try:
        from ipykernel import kernelapp

        release_collector()  # (before the notebook's code: its garbage is collected as a launched kernel's)
        kernelapp.launch_new_instance()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else int(e.code is not None)
    atexit._run_exitfuncs()
    return code


def make_engine():
    """A papermill engine that reports each cell's start and end as events."""
    from papermill.engines import NBClientEngine

    class EventEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            nb = nb_man.nb
            # The injected parameters cell is papermill's, not the user's: not counted.
            code_cells = [i for i, c in enumerate(nb.cells) if is_user_code(c)]
            emit("started", cells_total=len(code_cells))
            done = {"n": 0}
            start, complete, exception = nb_man.cell_start, nb_man.cell_complete, nb_man.cell_exception

            def cell_start(cell, cell_index=None, **kw):
                if is_user_code(cell):
                    emit("cell_started", cell=user_cell_index(nb, cell_index))
                return start(cell, cell_index, **kw)

            def cell_exception(cell, cell_index=None, **kw):
                EventEngine.failed_cell = user_cell_index(nb, cell_index)
                # "code cell k of n" counts as the progress does, which a person can match
                if cell_index in code_cells:
                    EventEngine.failed_position = (code_cells.index(cell_index) + 1, len(code_cells))
                return exception(cell, cell_index, **kw)

            def cell_complete(cell, cell_index=None, **kw):
                result = complete(cell, cell_index, **kw)
                if is_user_code(cell):
                    done["n"] += 1
                    failed = cell.metadata.get("papermill", {}).get("exception", False)
                    emit(
                        "cell_finished",
                        cell=user_cell_index(nb, cell_index),
                        cells_done=done["n"],
                        status="error" if failed else "ok",
                    )
                return result

            nb_man.cell_start, nb_man.cell_complete, nb_man.cell_exception = cell_start, cell_complete, cell_exception
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    EventEngine.failed_cell = None
    EventEngine.failed_position = None
    return EventEngine


#: seconds the output of a cell that has ended may still take to be read (nbclient's 4 s is short
#: for a cell that printed a flood of reports); past it papermill fails the run
IOPUB_TIMEOUT = 60
JOB_KEYS = ("input", "output", "parameters", "cwd", "kernel")
#: job-line keys of the inputs a warm runner writes itself ({name: base64}), and the key of the directory
#: each goes into; the executor copies larger inputs in with put_archive, before the line
INPUT_KEYS = {"inputs": "input", "files": "cwd"}
#: the longest job line a warm runner reads (characters; its inputs, in base64, make it long)
MAX_JOB_LINE = 4 << 20
DEFAULT_WARM_KERNEL = "python3"
#: the environment variable that asks a cold runner for its outputs as an event, and its most characters
OUTPUTS_ENV = "NOTEBOOK_JOBS_OUTPUTS_MAX"
#: written to stderr as the job line is read (the "ready" event says ``marks_stderr``): on that stream the
#: start-up's output is above it and the job's below. The "assigned" event, on stdout, cannot draw that line
#: for the executor: the daemon logs the two streams from a reader each, in no order between them.
JOB_MARK = b"\x1enotebook-jobs: job line read"


def main(argv=None):
    """Run one job (or wait for one, warm) as the command line says: the exit code."""
    hold_collector()  # until the imports are done (run_job; in the kernel, _run_ipykernel)
    make_undumpable()  # before any user code exists
    defer_imports()  # before papermill is imported
    use_precompiled_schemas()  # before nbformat compiles one
    take_stdout()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input")
    parser.add_argument("--output")
    parser.add_argument("--parameters", help="JSON file of parameters")
    parser.add_argument("--cwd", help="working directory of the kernel")
    parser.add_argument("--kernel", help="kernel name (default: the notebook's; warm mode: python3)")
    parser.add_argument("--warm", action="store_true",
                        help="start the kernel now, then read the job as one JSON line on stdin")
    parser.add_argument("--parent", type=int, help="die with this process, which started the runner (its pid)")
    parser.add_argument("--idle", action="store_true",
                        help="run (and have the kernel run) at the idle scheduling policy, SCHED_IDLE")
    args = parser.parse_args(argv)
    yield_cpu(args.idle)
    if args.parent:
        die_with(args.parent)
    outputs_max = os.environ.pop(OUTPUTS_ENV, "")  # (the runner's, not the kernel's)
    install_helper()  # before any kernel starts (the warm one too): the kernel inherits its path
    try:
        if args.warm:
            return warm_main(args)
        if not args.input or not args.output:
            parser.error("--input and --output are required (unless --warm)")
        return cold_main(args, int(outputs_max) if outputs_max.isdigit() else 0)
    finally:
        remove_helper()


def cold_main(args, outputs_max=0):
    """One job now: its kernel's process is launched first, so that the kernel starts up while
    papermill is imported and the notebook read; then it is run as a warm kernel is (and killed on
    leaving, without jupyter_client's shutdown and its 0.1 s polls). With ``outputs_max``, the outputs
    come back as an event, as a warm job's do."""
    if args.cwd:
        os.makedirs(args.cwd, exist_ok=True)
    run_and_leave(args, _launch_kernel(args.kernel or _notebook_kernel(args.input), args.cwd), outputs_max)


def run_and_leave(args, km, outputs_max=0):
    """Run the job with ``km``'s kernel (None: papermill starts its own) and exit; a crash takes the kernel too.
    With ``outputs_max``, the outputs are sent as an event (send_outputs) once the kernel is gone."""
    try:
        code = run_job(args, km)
    except BaseException:
        if km is not None:
            _shutdown(km)
        raise
    if outputs_max:
        _kill_kernel(km)  # (nothing of the notebook's writes on while they are read)
        try:
            send_outputs(args.output, args.cwd, outputs_max)
        except Exception as e:  # (the executor copies them out instead)
            print(f"runner: outputs not sent: {type(e).__name__}: {e}", file=sys.stderr)
    leave(code, km)


def send_outputs(output, cwd, most):
    """Send the run's outputs as one "outputs" event (base64): the output notebook and the metrics file
    beside it, and the regular files of ``cwd``, when there is nothing else there (a folder, a link) and
    the event is at most ``most`` characters. Otherwise nothing: the executor copies them out itself."""
    from base64 import b64encode

    beside = [os.path.join(os.path.dirname(output), name) for name in (os.path.basename(output), METRICS_FILE)]
    found = {"outputs": [p for p in beside if os.path.lexists(p)], "files": []}
    try:
        with os.scandir(cwd) as entries:
            found["files"] = [entry.path for entry in entries]
        sent, total = {}, 0
        for key, paths in found.items():
            for path in paths:
                # never through a link, nothing but a regular file: what an archive of them would unpack
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
                with os.fdopen(fd, "rb") as f:
                    st = os.fstat(fd)
                    total += st.st_size
                    if not stat.S_ISREG(st.st_mode) or total > most:
                        return
                    data = f.read(most + 1)
                if len(data) != st.st_size:  # (changed while read)
                    return
                sent.setdefault(key, {})[os.path.basename(path)] = b64encode(data).decode("ascii")
    except OSError:  # (a link, or gone: ELOOP, ENOENT)
        return
    if len(json.dumps(sent)) <= most:  # (many small files' names count too)
        emit("outputs", **sent)


def run_job(args, km=None):
    """Execute one notebook as ``args`` say (with ``km``'s kernel when given): the exit code."""
    parameters = {}
    if args.parameters and os.path.exists(args.parameters):
        with open(args.parameters) as f:
            parameters = json.load(f)
    if args.cwd:
        os.makedirs(args.cwd, exist_ok=True)

    import papermill
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillExecutionError

    release_collector()  # (papermill was the last of the imports: a run's own garbage is collected)
    engine = make_engine()
    papermill_engines.register("notebook-jobs-events", engine)
    reader = MetricReader(sys.stderr)
    try:
        papermill.execute_notebook(
            args.input,
            args.output,
            parameters=parameters,
            engine_name="notebook-jobs-events",
            kernel_name=args.kernel,
            cwd=args.cwd,
            km=km,
            kernel_manager_class=ipc_kernel_manager_class(),
            shutdown_kernel="immediate",  # the output is written: the kernel has nothing left to save
            progress_bar=False,
            iopub_timeout=IOPUB_TIMEOUT,
            stdout_file=reader,
            stderr_file=sys.stderr,
        )
        reader.close(args.output)
    except PapermillExecutionError as e:
        reader.close(args.output)
        print(e, file=sys.stderr)  # the traceback: papermill puts it in the output notebook only
        message = f"{e.ename}: {e.evalue}"
        # error.cell is an index into the submitted notebook, markdown cells included; a
        # person looks for the position the progress counted and the output's In [n]
        where = cell_words(engine.failed_position, e.exec_count)
        if where:
            message += f" (in {where})"
        emit("finished", status="failed", error={"reason": "cell_error", "message": message, "cell": engine.failed_cell})
        return 1
    except Exception as e:  # papermill/kernel trouble: not the user's cell
        reader.close(args.output)
        emit("finished", status="failed", error={"reason": "infrastructure", "message": f"{type(e).__name__}: {e}"})
        print(f"runner: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    emit("finished", status="succeeded")
    return 0


def _cpu_seconds(pid=None):
    """cpu seconds used so far by this process (pid None) or by a child still running."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def _shutdown(km):
    from jupyter_core.utils import run_sync

    try:
        run_sync(km.shutdown_kernel)(now=True)
    except Exception as e:  # the process ends anyway, and its kernel with it
        print(f"runner: kernel shutdown: {type(e).__name__}: {e}", file=sys.stderr)


#: what nbclient passes to the IPython kernels it starts (its ``ipython_hist_file``): the input history in
#: memory, without an SQLite file (and the thread that writes it) per kernel. The runner starts its
#: kernels itself, so it passes it too.
IN_MEMORY_HISTORY = "--HistoryManager.hist_file=:memory:"


def _kernel_arguments(km):
    """The kernel's command-line options (as nbclient's for the kernels it starts)."""
    return [IN_MEMORY_HISTORY] if km.ipykernel else []


def _kernel_manager(kernel_name):
    """The manager of a kernel to be started, its kernelspec found without importing IPython.

    jupyter_client's kernelspec manager looks in IPython's directory too, and finds it with
    ``IPython.paths``: that imports all of IPython (70 modules) in the runner, which runs no IPython.
    The same directories are named here: Jupyter's, and IPython's (``$IPYTHONDIR`` or ``~/.ipython``).
    """
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_core.paths import jupyter_path

    ipython_dir = os.path.normpath(os.path.expanduser(os.environ.get("IPYTHONDIR") or "~/.ipython"))
    specs = KernelSpecManager(kernel_dirs=jupyter_path("kernels") + [os.path.join(ipython_dir, "kernels")])
    km = ipc_kernel_manager_class()(kernel_name=kernel_name, kernel_spec_manager=specs)
    try:
        km.kernel_fork = KernelFork.for_spec(km.kernel_spec)
    except Exception:  # (no such kernel: its launch says so)
        km.kernel_fork = None
    return km


def _launch_kernel(kernel_name, cwd):
    """The kernel's manager with its process launched, not waited for (nbclient waits for it);
    None when the notebook names no kernel or it cannot start: papermill then says why, as it would."""
    if not kernel_name:
        return None
    from jupyter_core.utils import run_sync

    km = _kernel_manager(kernel_name)
    try:
        run_sync(km.start_kernel)(cwd=cwd, extra_arguments=_kernel_arguments(km))
    except Exception as e:
        print(f"runner: kernel {kernel_name!r} did not launch ({type(e).__name__}: {e})", file=sys.stderr)
        if km.kernel_fork is not None:
            km.kernel_fork.cancel()
        return None
    return km


def _start_warm_kernel(kernel_name, cwd):
    """Start the kernel, import what a run needs while it starts up, and wait for it: the warm start-up.
    (The kernel is launched first: a fork of the runner carries none of papermill's modules.)"""
    from jupyter_core.utils import run_sync

    km = _kernel_manager(kernel_name)
    try:
        run_sync(km.start_kernel)(cwd=cwd, extra_arguments=_kernel_arguments(km))
        import nbformat
        import papermill  # noqa: F401
        import papermill.translators  # noqa: F401
        from nbclient import NotebookClient  # noqa: F401

        nbformat.validate(nbformat.v4.new_notebook())  # loads the schema and its validator now
        kc = km.client()
        kc.start_channels()
        try:
            run_sync(kc.wait_for_ready)(timeout=120)
        finally:
            kc.stop_channels()
    except BaseException:
        if km.has_kernel:
            _shutdown(km)
        elif km.kernel_fork is not None:
            km.kernel_fork.cancel()
        raise
    return km


def _notebook_kernel(path):
    """The kernelspec name a notebook asks for (None when unreadable or absent)."""
    try:
        with open(path) as f:
            return ((json.load(f).get("metadata") or {}).get("kernelspec") or {}).get("name")
    except (OSError, ValueError, AttributeError):
        return None


def line_inputs(job, cwd):
    """The files a job line carries, as (path, bytes) of each: its ``inputs`` go into the directory of its
    input notebook and its ``files`` into its cwd (``cwd`` when it names none). ValueError: a name that
    is not a plain file name, or content that is not base64."""
    import binascii
    from base64 import b64decode

    out = []
    for key, where in INPUT_KEYS.items():
        files = job.get(key) or {}
        if not isinstance(files, dict):
            raise ValueError(f"{key} must be an object of file names")
        directory = os.path.dirname(job["input"]) if where == "input" else (job.get("cwd") or cwd)
        for name, content in files.items():
            # a plain name, nothing that could leave the directory (or name it)
            if name in ("", ".", "..") or "/" in name or "\0" in name or not isinstance(content, str):
                raise ValueError(f"{key}: {name[:100]!r} is not a plain file name with base64 content")
            try:
                data = b64decode(content, validate=True)
            except binascii.Error as e:
                raise ValueError(f"{key}: {name!r} is not base64 ({e})") from None
            out.append((os.path.join(directory, name), data))
    return out


def write_inputs(files):
    """Write the job line's files (line_inputs'), readable by this user alone; never through a link."""
    for path, data in files:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


def refuse_job(message, km):
    """The job cannot run as its line says: a failed run that says why (exit code 2)."""
    emit("finished", status="failed", error={"reason": "infrastructure", "message": message})
    if km is not None:
        _shutdown(km)
    return 2


def warm_main(args):
    """Warm mode: start up, wait for one job on stdin, run it with the started kernel."""
    cwd = args.cwd or os.getcwd()
    os.makedirs(cwd, exist_ok=True)
    km = None
    try:
        km = _start_warm_kernel(args.kernel or DEFAULT_WARM_KERNEL, cwd)
    except Exception as e:  # the job still runs: papermill then starts its own kernel
        print(f"runner: warm start failed ({type(e).__name__}: {e}); the job will start its kernel",
              file=sys.stderr)
    emit("ready", line_io=True, marks_stderr=True)
    line = sys.stdin.readline(MAX_JOB_LINE + 1)
    if not line.strip():
        print("runner: stdin closed before a job arrived", file=sys.stderr)
        if km is not None:
            _shutdown(km)
        return 3
    sys.stderr.flush()
    os.write(2, JOB_MARK + b"\n")
    warm_cpu = _cpu_seconds() + (_cpu_seconds(getattr(km.provisioner, "pid", None) or -1) if km else 0.0)
    emit("assigned", warm_cpu_seconds=round(warm_cpu, 3))
    try:
        if len(line.rstrip("\n")) > MAX_JOB_LINE:
            raise ValueError(f"longer than {MAX_JOB_LINE} characters (larger inputs go in with put_archive)")
        job = json.loads(line)
        if not isinstance(job, dict) or not job.get("input") or not job.get("output"):
            raise ValueError("the job line needs input and output")
        if not all(isinstance(job.get(k), (str, type(None))) for k in JOB_KEYS):
            raise ValueError(f"the job line's {', '.join(JOB_KEYS)} are strings")
        unknown = set(job) - set(JOB_KEYS) - set(INPUT_KEYS) - {"outputs_max"}
        if unknown:
            raise ValueError(f"unknown keys in the job line: {sorted(unknown)}")
        outputs_max = job.get("outputs_max") or 0
        if isinstance(outputs_max, bool) or not isinstance(outputs_max, int) or outputs_max < 0:
            raise ValueError("outputs_max is a number of characters")
        files = line_inputs(job, cwd)
    except ValueError as e:
        return refuse_job(f"bad job line: {e}", km)
    try:
        write_inputs(files)
    except OSError as e:
        return refuse_job(f"cannot write the job's inputs: {e}", km)
    job_args = argparse.Namespace(**{k: job.get(k) for k in JOB_KEYS})
    if job_args.cwd is None:
        job_args.cwd = cwd
    if km is not None:
        wanted = job_args.kernel or _notebook_kernel(job_args.input)
        if wanted != km.kernel_name or os.path.realpath(job_args.cwd) != os.path.realpath(cwd):
            print(f"runner: the job wants kernel {wanted!r} in {job_args.cwd}; not the warm one",
                  file=sys.stderr)
            _shutdown(km)
            km = None
        elif not job_args.kernel:
            job_args.kernel = km.kernel_name
    run_and_leave(job_args, km, outputs_max)


def _kill_kernel(km):
    """SIGKILL the kernel's process, if any, and what it started in its process group: nothing the notebook
    left running writes on while the outputs are read (in a container, the rest dies with it). A kernel that
    is not its group's leader (a provisioner of its own) is killed alone; never the runner's own group."""
    provisioner = km.provisioner if km is not None else None
    pid, group = getattr(provisioner, "pid", None), getattr(provisioner, "pgid", None)
    try:
        if group and group == pid and group != os.getpgid(0):
            os.killpg(group, signal.SIGKILL)
        elif pid:
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def leave(code, km=None):
    """The job is over and its output written: exit at once with ``code``.

    Killing the kernel is what shutdown_kernel(now=True) does too, without waiting for it;
    the interpreter's teardown (zmq's, papermill's) is skipped, nobody waits for it; the
    container ends with us.
    """
    _kill_kernel(km)
    remove_helper()
    _EVENTS.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
