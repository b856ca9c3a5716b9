"""The docker executor's parts that need no daemon, and the one log cap of every executor.

The sandbox is checked as data (what is asked of the daemon is what is checked after);
the two uses of docker-py's private API run against a stand-in daemon on loopback, so a
docker-py release that changes them fails here, loudly, rather than in production.
"""

import io
import json
import struct
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import docker
import pytest

from hub_service.executors.base import JobSpec
from hub_service.executors.docker import DockerExecutor
from hub_service.executors.base import Usage
from hub_service.executors.docker.gateway import LABEL_JOB, LABEL_WARM, Names, log_response, update_limits
from hub_service.executors.docker.sandbox import Sandbox, tree_usage
from hub_service.executors.docker.warm import JOB_MARK, MARKS, Arrival
from hub_service.executors.docker.transport import extract_outputs
from hub_service.executors.local import LocalExecutor
from hub_service.executors.streams import TRUNCATED, EventCap, LineSplitter, LogCap, read_frames

SPEC = JobSpec(job_id="j1", workdir=Path("/nowhere"), memory=300 << 20, cpu=1.5)


def kept_by_a_daemon(sandbox: Sandbox, spec: JobSpec) -> dict:
    """What a daemon that applies every limit shows on inspect: the request, as docker-py sends it."""
    kw = sandbox.create_kwargs(spec, "vol", "/notebook-jobs/j1")
    user = kw.pop("user")
    hc = docker.APIClient(version="1.41").create_host_config(**kw)  # no daemon is asked
    hc.setdefault("Privileged", False)  # docker-py leaves out a false flag; inspect shows it
    return json.loads(json.dumps({"HostConfig": hc, "Config": {"User": user},
                                  "Mounts": [{"Type": "volume", "Name": "vol", "Destination": sandbox.workdir}]}))


def test_the_sandbox_asked_for_is_the_sandbox_checked():
    sandbox = Sandbox(pids_limit=77, nofile=333, fsize=12345678, tmpfs_size=50 << 20, log_max_size="3m")
    attrs = kept_by_a_daemon(sandbox, SPEC)
    hc = attrs["HostConfig"]
    assert hc["Memory"] == hc["MemorySwap"] == 300 << 20 and hc["NanoCpus"] == 1_500_000_000
    assert hc["CapDrop"] == ["ALL"] and hc["ReadonlyRootfs"] is True and hc["NetworkMode"] == "none"
    assert hc["CgroupParent"] == "/notebook-jobs/j1"
    assert sandbox.check(SPEC, attrs) == []


@pytest.mark.parametrize("key,value", [
    ("Memory", 0), ("PidsLimit", 0), ("MemorySwap", -1), ("NanoCpus", 0), ("ReadonlyRootfs", False),
    ("CapDrop", None), ("CapAdd", ["SYS_ADMIN"]), ("SecurityOpt", None), ("Ulimits", None), ("Tmpfs", None),
    ("NetworkMode", "bridge"), ("Binds", ["/:/host"]), ("Privileged", True), ("LogConfig", None),
])
def test_each_dropped_limit_is_noticed(key, value):
    sandbox = Sandbox()
    attrs = kept_by_a_daemon(sandbox, SPEC)
    attrs["HostConfig"][key] = value
    assert sandbox.check(SPEC, attrs), key


def test_a_root_user_a_bind_mount_or_a_lost_gpu_is_noticed():
    sandbox = Sandbox(runtime="runsc")
    gpu = JobSpec(job_id="g", workdir=Path("/nowhere"), gpu=1)
    attrs = kept_by_a_daemon(sandbox, gpu)
    assert sandbox.check(gpu, attrs) == []
    attrs["Config"]["User"] = "0:0"
    attrs["Mounts"].append({"Type": "bind", "Source": "/", "Destination": "/host"})
    del attrs["HostConfig"]["DeviceRequests"]
    attrs["HostConfig"]["Runtime"] = "runc"
    problems = " ".join(sandbox.check(gpu, attrs))
    assert "User" in problems and "bind mount" in problems and "DeviceRequests" in problems
    assert "Runtime" in problems


def test_the_executor_makes_its_sandbox_and_names_from_its_traits():
    ex = DockerExecutor(instance="t1", pids_limit=9, cgroup_parent="nj", extra_labels={"team": "a"})
    kw = ex.sandbox.create_kwargs(SPEC, "vol", ex.names.job_cgroup(SPEC.job_id))
    assert kw["pids_limit"] == 9 and kw["cgroup_parent"] == "/nj/j1"
    assert ex.names.job("a/b") == ("notebook-jobs-t1-a_b", "notebook-jobs-t1-a_b-work")
    names = Names("t1", {"team": "a"})
    assert names.job_labels("j", "al")["team"] == "a" and not names.warm_prefix.startswith(names.job("")[0])


def test_a_listed_container_names_its_job_by_label_or_once_warm_by_its_name():
    names = Names("t1")
    cold = {"Labels": {LABEL_JOB: "j/1"}, "Names": ["/whatever"]}
    warm = {"Labels": {LABEL_WARM: "warm-abc"}, "Names": ["/" + names.job("j2")[0]]}
    idle = {"Labels": {LABEL_WARM: "warm-def"}, "Names": ["/" + names.warm_prefix + "warm-def"]}
    other = {"Labels": {LABEL_WARM: "warm-x"}, "Names": ["/" + Names("t2").job("j3")[0]]}
    assert [names.job_of(c) for c in (cold, warm, idle, other)] == ["j/1", "j2", None, None]


def test_a_warm_start_is_left_out_of_the_jobs_output_and_usage():
    arrival = Arrival(b'{"input": "..."}\n')
    assert arrival.holds(b"starting up", None) and arrival.holds(b'{"event": "ready"}', {"event": "ready"})
    assigned = {"event": "assigned", "time": 100.0, "warm_cpu_seconds": 0.75}
    assert arrival.holds(b"", assigned) and arrival.unclaimed() == []
    assert not arrival.holds(b"the job's own line", None)
    assert not arrival.holds(b"", {"event": "started"})
    used = Usage(cpu_seconds=2.0, wall_seconds=9.0)
    arrival.exclude_startup(used, finished=104.5)
    assert used.cpu_seconds == 1.25 and used.wall_seconds == 4.5


def test_a_marking_runners_stderr_is_the_jobs_from_its_mark_whatever_the_daemon_logged_first():
    """The daemon logs stdout and stderr from a reader each: the notebook's first line can reach the
    log before the "assigned" event written before it. The mark, on stderr itself, draws the line."""
    arrival = Arrival(b"{}\n")
    assert arrival.holds(b"", {"event": "ready", MARKS: True}, stderr=False)
    assert arrival.holds(b"kernel start-up warning", None)
    assert arrival.holds(JOB_MARK, None)  # the mark itself is no one's
    assert not arrival.holds(b"tick 0", None)  # logged before "assigned": the job's all the same
    assert arrival.holds(b"", {"event": "assigned", "time": 100.0, "warm_cpu_seconds": 0.5}, stderr=False)
    assert not arrival.holds(b"tick 1", None) and not arrival.holds(JOB_MARK, None)  # (a notebook's own)
    assert arrival.unclaimed() == []
    used = Usage(cpu_seconds=2.0, wall_seconds=9.0)
    arrival.exclude_startup(used, finished=104.5)
    assert used.cpu_seconds == 1.5 and used.wall_seconds == 4.5


def test_a_marking_runners_stderr_before_its_mark_is_the_start_ups_even_after_assigned():
    arrival = Arrival(b"{}\n")
    arrival.holds(b"", {"event": "ready", MARKS: True}, stderr=False)
    arrival.holds(b"", {"event": "assigned", "time": 100.0}, stderr=False)
    assert arrival.holds(b"late start-up line", None)  # logged after "assigned", written before the mark
    assert arrival.holds(JOB_MARK, None) and not arrival.holds(b"the job's", None)
    # Nor does stdout wait for the mark: the job's events follow "assigned" on their own stream.
    events = Arrival(b"{}\n")
    events.holds(b"", {"event": "ready", MARKS: True}, stderr=False)
    events.holds(b"", {"event": "assigned", "time": 100.0}, stderr=False)
    assert not events.holds(b'{"event": "started"}', {"event": "started"}, stderr=False)
    assert events.holds(b"start-up, before the mark", None) and events.holds(JOB_MARK, None)
    # A mark on stdout is not the runner's: stdout carries its events alone.
    other = Arrival(b"{}\n")
    other.holds(b"", {"event": "ready", MARKS: True}, stderr=False)
    assert other.holds(JOB_MARK, None, stderr=False) and other.holds(b"still start-up", None)


def test_a_warm_runner_that_never_took_its_job_leaves_its_start_up_output_to_explain():
    arrival = Arrival(b"{}\n")
    arrival.holds(b"Traceback: no kernel", None)
    assert arrival.unclaimed() == [b"Traceback: no kernel"]
    used = Usage(cpu_seconds=2.0)
    arrival.exclude_startup(used, finished=5.0)
    assert used.cpu_seconds == 2.0


def test_a_cold_jobs_output_is_its_own_but_pool_events_never_pass():
    arrival = Arrival()
    assert not arrival.holds(b"a log line", None) and arrival.holds(b"", {"event": "ready"})


def test_a_cold_jobs_line_holds_back_none_of_its_output_nor_its_start_up_usage():
    """A cold job's container reads its line as a warm runner does, but started for that job: its start-up's
    output, cpu and time are the job's. Only the runner's own events and its mark are no one's."""
    arrival = Arrival(b"{}\n", cold=True)
    assert arrival.holds(b"", {"event": "ready", MARKS: True}, stderr=False)
    assert not arrival.holds(b"kernel start-up warning", None)  # the job's own start-up
    assert not arrival.holds(b"stray stdout before assigned", None, stderr=False)
    assert arrival.holds(JOB_MARK, None)
    assert arrival.holds(b"", {"event": "assigned", "time": 100.0, "warm_cpu_seconds": 0.5}, stderr=False)
    assert not arrival.holds(b"tick 0", None) and arrival.unclaimed() == []
    used = Usage(cpu_seconds=2.0, wall_seconds=9.0)
    arrival.exclude_startup(used, finished=104.5)
    assert used.cpu_seconds == 2.0 and used.wall_seconds == 9.0


def test_a_job_that_prints_an_assigned_event_takes_nothing_off_its_usage():
    forged = {"event": "assigned", "time": 100.0, "warm_cpu_seconds": 1e9}
    cold = Arrival()
    assert cold.holds(b"", forged)  # dropped from its output, as every pool event is
    used = Usage(cpu_seconds=2.0, wall_seconds=9.0)
    cold.exclude_startup(used, finished=104.5)
    assert used.cpu_seconds == 2.0 and used.wall_seconds == 9.0
    warm = Arrival(b"{}\n")  # a warm job's notebook runs after the runner's own "assigned"
    warm.holds(b"", {"event": "assigned", "time": 100.0, "warm_cpu_seconds": 0.5})
    warm.holds(b"", forged)
    used = Usage(cpu_seconds=2.0, wall_seconds=9.0)
    warm.exclude_startup(used, finished=104.5)
    assert used.cpu_seconds == 1.5 and used.wall_seconds == 4.5


def test_the_work_quota_counts_every_file_below_and_stops_early(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for path in (tmp_path / "one", tmp_path / "a" / "b" / "two"):
        path.write_bytes(b"x" * 100_000)
    size, entries = tree_usage(str(tmp_path), 10 << 20)
    assert size >= 200_000 and entries == 4  # one, a, a/b, a/b/two
    assert 100_000 <= tree_usage(str(tmp_path), 50_000)[0] < 200_000 + 3 * 4096
    # Entries cost an inode each whatever their bytes: empty files count, and the walk stops past the stop.
    (tmp_path / "many").mkdir()
    for i in range(500):
        (tmp_path / "many" / str(i)).touch()
    assert tree_usage(str(tmp_path), 0)[1] == 505
    assert tree_usage(str(tmp_path), 0, 100)[1] == 101
    assert tree_usage(str(tmp_path), 10 << 20, 1000)[1] == 505
    assert Sandbox(user="1001").uid_gid == (1001, 1001) and Sandbox(user="5:6").uid_gid == (5, 6)


# --- the stream: frames, lines, caps ----------------------------------------------------
def frame(kind: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", kind, len(data)) + data


def test_frames_are_told_apart_and_a_cut_frame_ends_the_stream():
    raw = io.BytesIO(frame(1, b"out\n") + frame(2, b"err\n") + frame(1, b"x" * 70000) + frame(2, b"cut")[:-1])
    assert list(read_frames(raw)) == [(b"out\n", None), (None, b"err\n"), (b"x" * 70000, None)]


def test_lines_are_split_across_chunks_and_an_endless_line_is_cut():
    lines = LineSplitter(max_line=10)
    assert lines.feed(b"ab") == [] and lines.feed(b"c\nde") == [b"abc"]
    assert lines.feed(b"f" * 20) == [b"de" + b"f" * 8]  # cut at max_line; the rest of it dropped
    assert lines.feed(b"g\n") == [b"g"] and lines.feed(b"tail") == [] and lines.flush() == [b"tail"]


def test_log_stops_at_its_cap_and_says_so_once():
    cap = LogCap(100)
    assert cap.admit("a" * 60 + "\n") == "a" * 60 + "\n"
    assert cap.admit("b" * 60) == "b" * 60  # the line that crosses the cap still passes whole
    assert cap.admit("c\n") == TRUNCATED.format(limit=100)
    assert cap.admit("d\n") is None and cap.admit("e" * 10) is None
    assert cap.passed == 122 and cap.dropped == 2 + 2 + 11


def test_events_past_their_cap_are_dropped_but_not_the_last():
    cap = EventCap(2)
    assert [cap.admit({"event": "cell"}) for _ in range(3)] == [True, True, False]
    assert cap.admit({"event": "finished"})


def test_one_log_cap_for_every_executor():
    from traitlets.config import Config

    config = Config({"Executor": {"log_limit": 1234}})
    assert DockerExecutor(config=config).log_limit == LocalExecutor(config=config).log_limit == 1234
    assert DockerExecutor(config=Config({"DockerExecutor": {"log_limit": 99}})).log_limit == 99


# --- docker-py's private API, against a stand-in daemon ----------------------------------
class FakeDaemon(BaseHTTPRequestHandler):
    """Answers the two endpoints reached through docker-py's private API."""

    updates: list = []
    silence = threading.Event()  # set: the silent log's job ends
    LOG = frame(1, b'{"event": "started"}\n') + frame(2, b"a log line\n")

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        assert self.path.split("?")[0].endswith("/containers/c1/update"), self.path
        FakeDaemon.updates.append(json.loads(body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        out = b'{"Warnings": []}'
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def do_GET(self):
        if "/containers/silent/logs" in self.path:  # a job in a long cell: one frame, then nothing
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.docker.raw-stream")
            self.end_headers()
            self.wfile.write(frame(1, b"first\n"))
            self.wfile.flush()
            FakeDaemon.silence.wait(20)
            return
        assert "/containers/c1/logs" in self.path and "follow=1" in self.path and "stderr=1" in self.path, self.path
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.raw-stream")
        self.send_header("Content-Length", str(len(self.LOG)))
        self.end_headers()
        self.wfile.write(self.LOG)


@pytest.fixture
def fake_api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeDaemon)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api = docker.APIClient(base_url=f"tcp://127.0.0.1:{server.server_port}", version="1.41", timeout=10)
    try:
        yield api
    finally:
        api.close()
        server.shutdown()
        server.server_close()


def test_private_api_update_of_nano_cpus_still_works(fake_api):
    FakeDaemon.updates.clear()
    update_limits(fake_api, "c1", 256 << 20, 1_500_000_000)
    assert FakeDaemon.updates == [{"Memory": 256 << 20, "MemorySwap": 256 << 20, "NanoCpus": 1_500_000_000}]


def test_private_api_log_stream_with_stream_ids_still_works(fake_api):
    log = log_response(fake_api, "c1", follow=True)
    assert list(log.frames()) == [(b'{"event": "started"}\n', None), (None, b"a log line\n")]
    assert log.raw.closed  # released once its frames ended


def test_closing_a_followed_log_does_not_wait_for_its_reader(fake_api):
    """The executor's stop() closes a log its reader thread is blocked in, on the event loop."""
    FakeDaemon.silence.clear()
    log = log_response(fake_api, "silent", follow=True)
    got, ended = [], threading.Event()

    def reader():
        try:
            got.extend(log.frames())
        except Exception as e:  # (a stream cut short may say so)
            got.append(e)
        ended.set()

    threading.Thread(target=reader, daemon=True).start()
    try:
        time.sleep(0.3)  # the reader has the first frame and waits in the next read
        t0 = time.monotonic()
        log.close()
        took = time.monotonic() - t0
        assert ended.wait(5), "the reader still waits for the job's output"
        assert took < 1, took
        assert got[0] == (b"first\n", None)
    finally:
        FakeDaemon.silence.set()


def test_the_public_api_still_lacks_what_the_private_calls_do():
    """When docker-py adds these, use them and drop gateway's private calls."""
    import inspect

    assert "nano_cpus" not in inspect.signature(docker.APIClient.update_container).parameters
    assert "demux" not in inspect.signature(docker.APIClient.logs).parameters


@pytest.mark.process  # (the local executor's runner: papermill in a process)
async def test_the_local_executor_caps_a_flooding_job_too(tmp_path):
    from tests.hubtest import make_notebook

    (tmp_path / "files").mkdir()
    # An ipykernel that captures the kernel's fd 2 into the notebook gives its copy of
    # the original as sys.stderr.fileno(); one that does not leaves fd 2 as inherited
    # from the runner. Either way: the runner's stderr, the job's log.
    flood = "import os, sys\ntry:\n    fd = sys.stderr.fileno()\nexcept Exception:\n    fd = 2\n" \
            "for _ in range(4096):\n    os.write(fd, b'x' * 255 + b'\\n')\nprint('FLOODED')"
    (tmp_path / "input.ipynb").write_text(json.dumps(make_notebook(flood)))
    (tmp_path / "parameters.json").write_text("{}")
    logs = []
    ex = LocalExecutor(log_limit=64 << 10)
    out = await ex.run(JobSpec(job_id="flood", workdir=tmp_path, timeout=120), lambda e: None, logs.append)
    assert out.status == "succeeded", out
    assert sum(len(line) for line in logs) <= (64 << 10) + 1024  # 1 MiB written, 64 KiB passed on
    assert logs[-1] == TRUNCATED.format(limit=64 << 10)


def _hostile_archive(top: str) -> bytes:
    """What a job could leave in its volume for get_archive: links, '..' names, a device, and real files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        def add(name, data=None, **kw):
            info = tarfile.TarInfo(f"{top}/{name}")
            for k, v in kw.items():
                setattr(info, k, v)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)

        add("files", type=tarfile.DIRTYPE, mode=0o755)
        add("files/evil-link", type=tarfile.SYMTYPE, linkname="/etc")
        add("files/evil-link/passwd", b"owned")  # through the link, were it made
        add("files/hard", type=tarfile.LNKTYPE, linkname="/etc/hostname")
        add("files/../../escaped.txt", b"escaped")
        add("files/dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3)
        add("files/fifo", type=tarfile.FIFOTYPE)
        add("files/sub/data.csv", b"a,b\n1,2\n")
        add("output.ipynb", b"{}")
        add("outside.txt", b"not an output")
    return buf.getvalue()


def test_a_jobs_archive_unpacks_only_its_regular_files_and_directories(tmp_path):
    """A job writes its volume as it likes: no link, device, FIFO or '..' name of its leaves the target."""
    target = tmp_path / "job"
    extract_outputs([_hostile_archive("work")], "/work", target)
    made = sorted(str(p.relative_to(target)) for p in target.rglob("*"))
    # the link was not made, so the file "through" it is a plain file in a plain directory of target's
    assert made == ["files", "files/evil-link", "files/evil-link/passwd", "files/sub", "files/sub/data.csv",
                    "output.ipynb"]
    assert (target / "files/sub/data.csv").read_bytes() == b"a,b\n1,2\n"
    assert not (tmp_path / "escaped.txt").exists() and not any(p.is_symlink() for p in target.rglob("*"))
