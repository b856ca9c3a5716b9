"""The ``notebook-jobs`` CLI as a user runs it: a real process against the real Hub and service.

Each command runs as ``python -m hub_service.cli`` in a subprocess, with the token and
URL in its environment as inside a single-user server, so what is checked is exactly
what lands on stdout, stderr and in the exit status.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest

from hub_service.cli import lines
from hub_service.cli import parameters as params
from hub_service.client import Client, ClientError
from tests.hubtest import ROOT, SERVICE, free_port, make_notebook, nb_bytes

JOB_URL = re.compile(r"http://127\.0\.0\.1:\d+/services/notebook-jobs/jobs/([0-9a-f]{32})")


def cli_env(user, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTERHUB_API_TOKEN", "NOTEBOOK_JOBS_URL")}
    env.update(JUPYTERHUB_API_TOKEN=user.token, NOTEBOOK_JOBS_URL=user.hub.url + SERVICE, PYTHONIOENCODING="utf-8")
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def sigint_as_at_a_terminal():
    """In the child before exec: Ctrl-C's default action, as a user's shell gives it.

    A test run started in the background by a non-interactive shell (as CI may be) inherits
    SIGINT ignored, and Python keeps an ignored SIGINT ignored, so the CLI would never see it.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cli(user, *args, timeout=120, **env) -> subprocess.CompletedProcess:
    """Run the CLI to its end with stdout and stderr captured (so not a terminal)."""
    return subprocess.run([sys.executable, "-m", "hub_service.cli", *args], cwd=ROOT, env=cli_env(user, **env),
                          capture_output=True, text=True, timeout=timeout)


def on_a_terminal(user, *args, timeout=120, **env) -> str:
    """Run the CLI to its end with its stdout a terminal (a pty): what it wrote there."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "hub_service.cli", *args], cwd=ROOT, env=cli_env(user, **env),
                            stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    out, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([master], [], [], 1)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the CLI closed the terminal
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.wait(10) == 0, proc.stderr.read()
    return out.decode()


def one_error_line(result, *words) -> str:
    """The CLI failed with exit 2 and one line on stderr naming ``words``, nothing on stdout."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("notebook-jobs: error: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def notebook(tmp_path):
    """Write a notebook made by make_notebook to a file; its path."""
    def write(*sources, name="nb.ipynb", **kw):
        path = tmp_path / name
        path.write_bytes(nb_bytes(make_notebook(*sources, **kw)))
        return str(path)
    return write


# -- parameters, as papermill's CLI takes them (no Hub needed) ----------------------------


def test_p_values_are_typed_as_papermill_types_them():
    assert params.collect(pairs=[("a", "1"), ("b", "2.5"), ("c", "True"), ("d", "False"), ("e", "None"),
                                 ("f", "abc"), ("g", "1e3"), ("h", "'1'")]) == \
        {"a": 1, "b": 2.5, "c": True, "d": False, "e": None, "f": "abc", "g": 1000.0, "h": "'1'"}
    assert params.collect(raw_pairs=[("a", "1")]) == {"a": "1"}


def test_later_parameter_options_win_in_papermills_order(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("a: from-file\nb: from-file\nc: from-file\nday: 2024-01-02\n")
    got = params.collect('{"a": "json", "b": "json", "c": "json", "j": [1, 2]}', [str(path)], ["{b: yaml, c: yaml}"],
                         [("c", "7")])
    assert got == {"a": "from-file", "b": "yaml", "c": 7, "j": [1, 2], "day": "2024-01-02"}  # a date stays text
    assert params.collect() is None and params.collect("{}") == {}


@pytest.mark.parametrize("kw, words", [
    (dict(json_text="{alpha: 1}"), ["--parameters", "not valid"]),
    (dict(json_text="[1, 2]"), ["--parameters", "mapping", "list"]),
    (dict(yamls=["a: [1"]), ["-y", "not valid"]),
    (dict(files=["/nonexistent/p.yaml"]), ["-f /nonexistent/p.yaml", "No such file"]),
])
def test_unreadable_parameters_are_named(kw, words):
    with pytest.raises(params.ParameterError) as e:
        params.collect(**kw)
    assert all(w in str(e.value) for w in words), str(e.value)
    assert "\n" not in str(e.value)


def test_durations_and_sizes_read_as_a_person_says_them():
    assert [lines.human_duration(s) for s in (4.24, 65, 7260, None)] == ["4.2s", "1m 05s", "2h 01m", "?"]
    assert [lines.human_bytes(n) for n in (512, 300 << 20, 3 << 29, 2 << 30)] == \
        ["512 B", "300 MiB", "1.5 GiB", "2 GiB"]


def test_help_notebook_lists_the_parameters_and_the_types_the_service_checks_without_a_service(tmp_path):
    nb = tmp_path / "nb.ipynb"
    nb.write_bytes(nb_bytes(make_notebook(
        "x", parameters='alpha = 0.5  # learning rate\nlabel: str = "a"\nextra = None\nanything: Any = 3')))
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTERHUB_API_TOKEN", "NOTEBOOK_JOBS_URL")}
    r = subprocess.run([sys.executable, "-m", "hub_service.cli", "submit", str(nb), "--help-notebook"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == ("Parameters inferred for notebook 'nb.ipynb':\n"
                        f"{'  alpha: float (default 0.5)':<34}learning rate\n" +
                        "  label: str (default \"a\")\n"
                        "  extra: any (default None)\n"
                        "  anything: any (default 3)\n")
    script = tmp_path / "job.py"
    script.write_text('# %% tags=["parameters"]\nn = 3\n# %%\nprint(n)\n')
    assert params.describe(str(script)) == "Parameters inferred for notebook 'job.py':\n  n: int (default 3)"
    nb.write_bytes(nb_bytes(make_notebook("x")))
    assert params.describe(str(nb)).endswith("\n  No cell tagged 'parameters'")
    with pytest.raises(params.ParameterError, match="reads a .ipynb or .py file, not nb.zip"):
        params.describe(str(tmp_path / "nb.zip"))


# -- submit --wait: progress, the summary line, exit status ------------------------------------


def test_submit_wait_prints_plain_progress_lines_and_a_summary_when_not_a_terminal(alice, notebook):
    path = notebook("print('x is', x, flag, ratio, label, nothing)", "y = x * 2",
                    parameters="x = 1\nflag = False\nratio = 0.1\nlabel = 'a'\nnothing = 0")
    r = cli(alice, "submit", path, "--wait", "-p", "x", "21", "-p", "flag", "True", "-y", "{ratio: 0.5}",
            "-p", "label", "some text", "-p", "nothing", "None")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    lines = r.stdout.splitlines()
    assert "\r" not in r.stdout and "\x1b" not in r.stdout
    job_id = JOB_URL.search(lines[0]).group(1)
    assert lines[0].startswith(f"job {job_id} submitted: ")
    assert "running: 3 code cells" in lines
    for k in (1, 2, 3):
        assert f"cell {k} of 3 started" in lines and f"cell {k} of 3 done" in lines
    assert lines.index("cell 1 of 3 done") < lines.index("cell 2 of 3 started") < lines.index("cell 3 of 3 done")
    assert re.fullmatch(r"succeeded in \d+\.\ds  " + JOB_URL.pattern, lines[-1]), lines[-1]
    assert JOB_URL.search(lines[-1]).group(1) == job_id
    job = alice.get(f"jobs/{job_id}").json()
    assert job["parameters"] == {"x": 21, "flag": True, "ratio": 0.5, "label": "some text", "nothing": None}
    assert "x is 21 True 0.5 some text None" in alice.get(f"jobs/{job_id}/logs").text


def test_a_failed_job_exits_1_with_its_cell_and_reason_on_stderr_and_the_traceback_in_its_log(alice, notebook):
    path = notebook("print('before the error')", "def f():\n    raise ValueError('boom')\nf()", "print('never')",
                    markdown="# A report")
    r = cli(alice, "submit", path, "--wait")
    assert r.returncode == 1
    assert "cell 2 of 3 failed" in r.stdout.splitlines()
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    # the notebook's own In [n] (no injected cell here: the second code cell ran second)
    assert re.fullmatch(r"failed in \d+\.\ds  " + JOB_URL.pattern +
                        r"  A cell raised an error: ValueError: boom \(in code cell 2 of 3, In \[2\]\)", lines[0]), lines[0]
    job_id = JOB_URL.search(lines[0]).group(1)
    job = alice.get(f"jobs/{job_id}").json()
    assert job["error"]["cell"] == 2  # the contract: an index into the submitted notebook, markdown included
    log = cli(alice, "logs", job_id)
    assert log.returncode == 0
    assert "before the error" in log.stdout
    assert 'Exception encountered at "In [2]"' in log.stdout
    assert "raise ValueError('boom')" in log.stdout and "ValueError: boom" in log.stdout
    assert "\x1b[" not in log.stdout  # the kernel's colours are left out of a text log


def test_submit_json_prints_the_job_and_nothing_else(alice, notebook):
    path = notebook("1 + 1")
    r = cli(alice, "submit", path, "--json")
    assert r.returncode == 0 and r.stderr == ""
    job = json.loads(r.stdout)
    assert job["status"] == "queued" and job["parameters"] == {}
    r = cli(alice, "submit", path, "--wait", "--json", "--name", "scripted")
    assert r.returncode == 0 and r.stderr == ""
    job = json.loads(r.stdout)  # nothing but the JSON: no progress, no summary
    assert job["status"] == "succeeded" and job["name"] == "scripted" and job["progress"]["cells_done"] == 1


def test_submit_wait_draws_a_bar_on_a_terminal(alice, notebook):
    path = notebook("print('go')", "import time; time.sleep(1.5)")
    text = on_a_terminal(alice, "submit", path, "--wait", COLUMNS="100")
    frames = text.split("\r\x1b[K")
    assert len(frames) >= 4, text  # redrawn in place, once per event
    # during the second cell's 1.5 s, no event: the clock alone redraws the bar
    assert sum(bool(re.match(r"running +█+░+ 1/2 cells  \d+:\d\d  running cell 2", f)) for f in frames) >= 2, frames
    assert any(re.match(r"running +█+░+ 1/2 cells  \d+:\d\d  running cell 2", f) for f in frames), frames
    assert re.search(r"succeeded +█{10,} 2/2 cells  \d+:\d\d", text), frames
    assert "cell 1 of 2 started" not in text  # no plain lines on a terminal
    last = text.strip().splitlines()[-1]
    assert re.fullmatch(r"succeeded in \d+\.\ds  " + JOB_URL.pattern, last), last


def test_dry_run_says_how_the_job_would_be_sized_and_stores_nothing(hub, notebook):
    carol = hub.user("carol-dry-run")  # a user of her own: no job of any other test in her list
    path = notebook("x", parameters="x = 1")
    r = cli(carol, "submit", path, "-p", "x", "2", "--resources", '{"memory": "300MB", "cpu": 0.5}',
            "--timeout", "90", "--dry-run")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == ("would run with 0.5 cpu, 300 MiB memory, a 1m 30s time limit\n"
                        "300 MiB of memory: what you asked for. Time limit 90 s: what you asked for.\n")
    job = json.loads(cli(carol, "submit", path, "-p", "x", "2", "--dry-run", "--json").stdout)
    assert job["dry_run"] is True and job["id"] is None and job["parameters"] == {"x": 2}
    assert cli(carol, "list").stdout == "no jobs\n"
    one_error_line(cli(carol, "submit", path, "-p", "y", "2", "--dry-run"), "unknown parameter(s) y")


# -- the other commands ----------------------------------------------------------------------


def test_cancel_prints_one_line(alice):
    job = alice.submit(make_notebook("import time\ntime.sleep(60)"))
    alice.wait(job["id"], statuses=("running",))
    r = cli(alice, "cancel", job["id"])
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout in (f"job {job['id']} cancelled\n", f"job {job['id']} is being cancelled (running now)\n")
    alice.wait(job["id"])
    r = cli(alice, "status", job["id"])
    assert r.returncode == 0 and r.stdout.startswith("cancelled after ") and "cancelled by alice" in r.stdout
    r = cli(alice, "cancel", job["id"])  # the service's 409, as one line
    one_error_line(r, f"job {job['id']} already cancelled")


def test_logs_follow_ends_cleanly_on_ctrl_c(alice):
    job = alice.submit(make_notebook("import time\nprint('started', flush=True)\ntime.sleep(60)"))
    alice.wait(job["id"], statuses=("running",))
    proc = subprocess.Popen([sys.executable, "-m", "hub_service.cli", "logs", job["id"], "--follow"], cwd=ROOT,
                            env=cli_env(alice), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_as_at_a_terminal)
    deadline = time.monotonic() + 60
    while "started" not in alice.get(f"jobs/{job['id']}/logs").text and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert "started" in out
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    alice.post(f"jobs/{job['id']}/cancel")


def test_ctrl_c_stops_waiting_and_leaves_the_job_running(alice, notebook, tmp_path):
    out_path = tmp_path / "wait.out"
    with open(out_path, "w") as out_file:
        proc = subprocess.Popen([sys.executable, "-m", "hub_service.cli", "submit", notebook("import time\ntime.sleep(60)"),
                                 "--wait"], cwd=ROOT, env=cli_env(alice), stdout=out_file, stderr=subprocess.PIPE,
                                text=True, preexec_fn=sigint_as_at_a_terminal)
    deadline = time.monotonic() + 60
    while "cell 1 of 1 started" not in out_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130
    job_id = JOB_URL.search(out_path.read_text()).group(1)
    assert err.strip() == (f"stopped waiting; job {job_id} goes on: {alice.hub.url}{SERVICE}jobs/{job_id} "
                           f"('notebook-jobs cancel {job_id}' stops it)")
    assert alice.get(f"jobs/{job_id}").json()["status"] == "running"
    alice.post(f"jobs/{job_id}/cancel")


def test_list_and_status(alice):
    job = alice.submit(make_notebook("1"), name="listed")
    alice.wait(job["id"])
    r = cli(alice, "list", "--limit", "5")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["JOB", "STATUS", "CELLS", "SUBMITTED", "TOOK", "NAME"]
    assert re.fullmatch(job["id"] + r"  succeeded  1/1    \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  +\d+\.\ds  listed", lines[1]), lines
    # times in the user's own time zone, not the service's UTC
    created = datetime.fromisoformat(alice.get(f"jobs/{job['id']}").json()["created"])
    local = (created + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M:%S")
    assert local in cli(alice, "list", "--limit", "1", TZ="Asia/Kolkata").stdout
    assert job["id"] in [j["id"] for j in json.loads(cli(alice, "list", "--json").stdout)["jobs"]]
    r = cli(alice, "status", job["id"])
    assert re.fullmatch(r"succeeded in \d+\.\ds  " + JOB_URL.pattern + "\n", r.stdout), r.stdout


# -- every user mistake: one line on stderr, exit 2, no traceback ---------------------------


def test_a_missing_file_is_one_line(alice, tmp_path):
    one_error_line(cli(alice, "submit", str(tmp_path / "nope.ipynb")), "no such file", "nope.ipynb")
    one_error_line(cli(alice, "submit", str(tmp_path)), "is a directory")


def test_bad_parameters_are_one_line(alice, notebook):
    path = notebook("x", parameters="x = 1")
    one_error_line(cli(alice, "submit", path, "--parameters", "{x: 1}"), "--parameters (JSON) is not valid")
    one_error_line(cli(alice, "submit", path, "-y", "[1, 2]"), "-y", "mapping")
    one_error_line(cli(alice, "submit", path, "-f", "missing.yaml"), "-f missing.yaml")
    r = cli(alice, "submit", path, "-p", "x")  # argparse's own mistakes: one line too, not the usage
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == ("notebook-jobs submit: error: argument -p/--parameter: expected a NAME and a VALUE "
                        "(several VALUEs make a sweep) (see 'notebook-jobs submit --help')\n")
    # the service's own 400, its message as it gave it
    one_error_line(cli(alice, "submit", path, "-p", "y", "2"), "unknown parameter(s) y", "parameters are: x")
    one_error_line(cli(alice, "submit", path, "--resources", "{nope"), "resources")


def test_an_unknown_job_is_one_line(alice, bob):
    one_error_line(cli(alice, "status", "abc"), "no job 'abc'", "32 hex digits")
    one_error_line(cli(alice, "logs", "0" * 32), f"no job {'0' * 32}")
    job = bob.submit(make_notebook("1"))  # someone else's job does not exist for alice
    one_error_line(cli(alice, "output", job["id"]), f"no job {job['id']}")


def test_no_token_or_a_bad_one_is_one_line(alice, notebook):
    path = notebook("1")
    one_error_line(cli(alice, "submit", path, JUPYTERHUB_API_TOKEN=None), "no token", "JUPYTERHUB_API_TOKEN")
    one_error_line(cli(alice, "list", JUPYTERHUB_API_TOKEN="not-a-token"), "the Hub did not accept the token")
    # --token and --url go before or after the command
    r = cli(alice, "list", "--token", alice.token, "--url", alice.hub.url + SERVICE,
            JUPYTERHUB_API_TOKEN=None, NOTEBOOK_JOBS_URL=None)
    assert r.returncode == 0 and r.stdout.startswith(("JOB ", "no jobs")), r.stderr


def test_a_service_not_reachable_is_one_line(alice, notebook):
    url = f"http://127.0.0.1:{free_port()}/services/notebook-jobs/"
    one_error_line(cli(alice, "submit", notebook("1"), "--wait", NOTEBOOK_JOBS_URL=url),
                   f"cannot reach the service at {url}", "connection refused")
    one_error_line(cli(alice, "list", "--url", "127.0.0.1:8000"), "is not a service URL")
    # the Hub answers, but nothing of ours is there
    one_error_line(cli(alice, "list", NOTEBOOK_JOBS_URL=alice.hub.url + "/services/nothing-here/"),
                   "nothing-here")


def test_a_silent_event_stream_is_dropped():
    """The Hub's proxy keeps a stream open, silent, after the service behind it died: not forever."""
    import http.server
    import threading

    class Silent(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.flush()
            time.sleep(5)  # then nothing: no event, no keep-alive

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = Client(f"http://127.0.0.1:{server.server_port}/", "token", silence=0.5)
        started = time.monotonic()
        with pytest.raises(ClientError, match=r"lost the event stream .*\(timed out\)"):
            list(client.events("0" * 32))
        assert time.monotonic() - started < 4
    finally:
        server.shutdown()


def test_a_service_that_is_down_is_one_line_and_wait_rides_out_its_restart(hub, alice):
    """Last in this file: it kills the session's service, and waits for the Hub to restart it."""
    import psutil

    job = alice.submit(make_notebook("import time; time.sleep(3)"))
    alice.wait(job["id"], statuses=("running",))
    pid = hub.service_pid()
    proc = psutil.Process(pid)
    # its offload pool's forkserver and resource tracker outlive a SIGKILL (~250 MB each time)
    helpers = [p for p in proc.children(recursive=True) if "multiprocessing" in " ".join(p.cmdline())]
    os.kill(pid, signal.SIGKILL)
    while proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:  # the Hub reaps it in its own time
        time.sleep(0.05)
    for helper in helpers:
        try:
            helper.kill()
        except psutil.NoSuchProcess:
            pass
    # the Hub takes seconds to notice and restart it: meanwhile, one line; and wait waits
    waiting = subprocess.Popen([sys.executable, "-m", "hub_service.cli", "wait", job["id"]], cwd=ROOT,
                               env=cli_env(alice), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        r = cli(alice, "list")
    finally:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if hub.service_pid() != pid and alice.get("health").status_code == 200:
                    break
            except Exception:
                pass
            time.sleep(0.5)
        else:
            raise AssertionError("the Hub did not restart the service")
    one_error_line(r, f"the service at {alice.hub.url}{SERVICE} is not running")
    # the restarted service ran the job again, and the waiting CLI saw it through
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, (out, err)
    lines = out.splitlines()
    assert lines[0] == f"job {job['id']}: {alice.hub.url}{SERVICE}jobs/{job['id']}"
    assert any("is not running" in line and "waiting up to 300s for it to come back" in line for line in lines), out
    assert lines[-1].startswith("succeeded in "), out


def test_a_hand_made_notebook_without_cell_ids_prints_no_nbformat_warning(tmp_path):
    nb = tmp_path / "hand.ipynb"
    nb.write_text(json.dumps({"cells": [{"cell_type": "code", "execution_count": None, "metadata": {"tags": ["parameters"]},
                                         "outputs": [], "source": ["n = 1"]}],
                              "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                          "language": "python"}},
                              "nbformat": 4, "nbformat_minor": 5}))
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTERHUB_API_TOKEN", "NOTEBOOK_JOBS_URL")}
    r = subprocess.run([sys.executable, "-m", "hub_service.cli", "submit", str(nb), "--help-notebook"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.endswith("  n: int (default 1)\n")
