"""Reading a user's workspace never follows a link: not a swapped-in one, not a dangling or looping one,
not one in a directory on the way; a FIFO never blocks; GET /notebooks lists only what a submit accepts.

The races are real: a thread flips a name in the workspace between a plain file and a
symbolic link (or a FIFO) as fast as it can while the service reads it.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from hub_service.intake import IntakeError, parameter_fields, parse_bundle
from hub_service.outputs import Artifacts
from hub_service.workspace import WorkspaceFileMissing, list_notebooks, read_workspace_notebook
from tests.hubtest import make_notebook

LINK_WORDS = "is a symbolic link; the service does not follow links"
LINK_HINT = " (submit the file it points to by its own path, or copy it into your workspace)"


def script(marker: str) -> str:
    """A .py notebook whose parameters cell holds ``marker`` (a dry run's answer shows it)."""
    return f'# %% tags=["parameters"]\nmarker = "{marker}"\n\n# %%\nprint(marker)\n'


class Swapper(threading.Thread):
    """Flips ``path`` between a plain file and each of ``links`` (symlink targets) or a FIFO, fast.

    Every flip is an atomic rename over ``path``, so the name always exists: a reader
    sees either the plain file or one of the others, never nothing. The plain file is a
    hard link to a master copy (same owner: the service reads it), made in one system
    call like the others, and each state stands for a short pause, so all come up alike.
    """

    def __init__(self, path: Path, plain: str, links=(), fifo: bool = False, pause: float = 50e-6):
        super().__init__(daemon=True)
        self.pause = pause
        self.path, self.plain, self.links, self.fifo = Path(path), plain, list(links), fifo
        self.flips = 0
        self.stopped = threading.Event()
        self.error = None

    def run(self):
        kinds = ["plain"] + [("link", t) for t in self.links] + (["fifo"] if self.fifo else [])
        master = self.path.with_name(f".swap-{self.path.name}-master")
        master.write_text(self.plain)
        try:
            for i in itertools.cycle(range(len(kinds))):
                if self.stopped.is_set():
                    break
                tmp = self.path.with_name(f".swap-{self.path.name}-{i}")
                kind = kinds[i]
                if os.path.lexists(tmp):
                    os.unlink(tmp)
                if kind == "plain":
                    os.link(master, tmp)  # one system call, as quick as making a link: states last alike
                elif kind == "fifo":
                    os.mkfifo(tmp)
                else:
                    os.symlink(kind[1], tmp)
                os.replace(tmp, self.path)
                self.flips += 1
                time.sleep(self.pause)  # every state lasts about as long, however long it took to make
        except BaseException as e:  # surfaced by stop()
            self.error = e

    def stop(self):
        self.stopped.set()
        self.join(10)
        assert self.error is None, self.error
        assert self.flips > 50, f"the swapper flipped only {self.flips} times"
        os.unlink(self.path)
        self.path.write_text(self.plain)


@pytest.fixture
def interleaved():
    """Threads of this process take turns far more often: the swapper gets in between any two reads."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


@pytest.fixture
def workspaces(tmp_path):
    """``root/{alice,bob}`` and a secret file outside every workspace."""
    root = tmp_path / "users"
    (root / "alice").mkdir(parents=True)
    (root / "bob").mkdir()
    (root / "bob" / "private.py").write_text(script("BOB-MARKER-7c1"))
    secret = tmp_path / "service-secret.py"
    secret.write_text(script("SECRET-MARKER-e42"))
    return root, secret


def read(root, user, path, max_size=1_000_000):
    return read_workspace_notebook(str(root / user), user, path, max_size=max_size)


# ---------------------------------------------------------------- unit: read_workspace_notebook


def test_symlink_race_never_reads_another_file(workspaces, interleaved):
    root, secret = workspaces
    race = root / "alice" / "race.py"
    race.write_text(script("alice-own"))
    swapper = Swapper(race, script("alice-own"), links=[str(root / "bob" / "private.py"), str(secret)])
    markers, refusals = [], []
    swapper.start()
    deadline = time.monotonic() + 60
    try:
        # thousands of reads, and enough of the plain file (a refusal is far quicker than a parse)
        while len(markers) + len(refusals) < 4000 or (len(markers) < 100 and time.monotonic() < deadline):
            try:
                bundle = read(root, "alice", "race.py")
            except IntakeError as e:
                refusals.append((e.status, e.message))
                continue
            markers.append(parameter_fields(bundle.notebook)[0]["value"])
    finally:
        swapper.stop()
    assert set(markers) == {"alice-own"}, f"read another file: {sorted(set(markers))}"
    assert {r for r in refusals if r != (400, "race.py " + LINK_WORDS + LINK_HINT)} == set()
    assert len(markers) >= 100 and len(refusals) > 100, (len(markers), len(refusals))


def test_fifo_race_never_blocks(workspaces, interleaved):
    root, _ = workspaces
    name = root / "alice" / "x.ipynb"
    plain = json.dumps(make_notebook("1 + 1"))
    name.write_text(plain)
    swapper = Swapper(name, plain, fifo=True)
    outcomes = {"ok": 0, "fifo": 0}
    done = threading.Event()

    def reader():
        deadline = time.monotonic() + 50
        while sum(outcomes.values()) < 2000 or (outcomes["ok"] < 50 and time.monotonic() < deadline):
            try:
                read(root, "alice", "x.ipynb")
                outcomes["ok"] += 1
            except IntakeError as e:
                assert e.message == "x.ipynb is a FIFO (named pipe), not a regular file", e.message
                outcomes["fifo"] += 1
        done.set()

    swapper.start()
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        assert done.wait(60), f"a read blocked on a FIFO after {outcomes}"
    finally:
        swapper.stop()
    assert outcomes["ok"] >= 50 and outcomes["fifo"] > 50, outcomes


@pytest.mark.parametrize("target", ["../bob/private.py", "{secret}", "nowhere.py", "loop.py", "real.py"])
def test_links_are_refused_by_name(workspaces, target):
    root, secret = workspaces
    alice = root / "alice"
    (alice / "real.py").write_text(script("alice-own"))
    os.symlink(target.format(secret=secret), alice / "loop.py" if target == "loop.py" else alice / "link.py")
    name = "loop.py" if target == "loop.py" else "link.py"
    with pytest.raises(IntakeError) as e:
        read(root, "alice", name)
    assert e.value.status == 400 and e.value.message.startswith(f"{name} {LINK_WORDS}")
    assert [n["path"] for n in list_notebooks(str(alice))] == ["real.py"]


def test_a_linked_directory_on_the_way_is_refused(workspaces):
    root, _ = workspaces
    alice = root / "alice"
    (alice / "nested" / "real").mkdir(parents=True)
    (alice / "nested" / "real" / "nb.py").write_text(script("alice-own"))
    os.symlink("real", alice / "nested" / "inside")  # even a link that stays in the workspace
    os.symlink(str(root / "bob"), alice / "nested" / "out")
    assert read(root, "alice", "nested/real/nb.py").name == "nested/real/nb.py"
    for path, link in [("nested/inside/nb.py", "nested/inside"), ("nested/out/private.py", "nested/out")]:
        with pytest.raises(IntakeError) as e:
            read(root, "alice", path)
        assert e.value.status == 400 and e.value.message.startswith(f"{link} {LINK_WORDS}"), e.value.message
    assert [n["path"] for n in list_notebooks(str(alice))] == ["nested/real/nb.py"]


def test_the_admins_root_may_be_a_link_and_other_refusals(workspaces, tmp_path):
    root, _ = workspaces
    (root / "alice" / "nb.py").write_text(script("alice-own"))
    os.symlink(root / "alice", tmp_path / "alice-home")  # the admin's /home/alice -> /mnt/homes/alice
    bundle = read_workspace_notebook(str(tmp_path / "alice-home"), "alice", "nb.py", max_size=1000)
    assert bundle.name == "nb.py"
    assert [n["path"] for n in list_notebooks(str(tmp_path / "alice-home"))] == ["nb.py"]
    with pytest.raises(WorkspaceFileMissing):
        read(root, "alice", "missing.py")
    with pytest.raises(WorkspaceFileMissing):
        read(root, "nobody", "nb.py")
    assert list_notebooks(str(root / "nobody")) == []
    (root / "alice" / "big.py").write_text("x = 1\n" * 200)
    with pytest.raises(IntakeError) as e:
        read(root, "alice", "big.py", max_size=1000)
    assert e.value.status == 413
    for user in ("..", "a/b"):
        with pytest.raises(IntakeError):
            read_workspace_notebook(str(root / "alice"), user, "nb.py", max_size=1000)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own files as another user")
def test_a_hard_link_to_another_owners_file_is_refused(workspaces, tmp_path):
    root, secret = workspaces
    alice = root / "alice"
    os.chown(alice, 12345, 12345)
    (alice / "own.py").write_text(script("alice-own"))
    os.chown(alice / "own.py", 12345, 12345)
    os.link(secret, alice / "hard.py")  # root's file under a second name in alice's workspace
    with pytest.raises(IntakeError) as e:
        read(root, "alice", "hard.py")
    assert "hard link" in e.value.message and "SECRET" not in e.value.message
    assert read(root, "alice", "own.py").name == "own.py"
    assert [n["path"] for n in list_notebooks(str(alice))] == ["own.py"]


def test_listing_skips_what_a_submit_refuses(workspaces):
    root, secret = workspaces
    alice = root / "alice"
    for rel in ("a.ipynb", "sub/b.py", ".hidden/c.py", "__pycache__/d.py", "sub/.e.py", "data.csv"):
        (alice / rel).parent.mkdir(parents=True, exist_ok=True)
        (alice / rel).write_text(script("x"))
    os.symlink("/etc/passwd", alice / "passwd.py")
    os.symlink("nowhere.ipynb", alice / "dangling.ipynb")
    os.symlink("loop.ipynb", alice / "loop.ipynb")
    os.symlink(str(root / "bob"), alice / "bobs")
    os.mkfifo(alice / "pipe.ipynb")
    os.mkdir(alice / "dir.ipynb")
    assert sorted(n["path"] for n in list_notebooks(str(alice))) == ["a.ipynb", "sub/b.py"]
    assert len(list_notebooks(str(alice), limit=1)) == 1


# ---------------------------------------------------------------- unit: bundles


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("members,words", [
    ({"data": b"1", "data/x.csv": b"2"}, "is a file, and other members are inside it"),
    ({"a/b.csv": b"1", "a//b.csv": b"2"}, "a second time"),
    ({"d/" + "n" * 300: b"1"}, "longer than"),
])
def test_bundle_member_paths_that_cannot_be_written_are_refused(members, words, tmp_path):
    data = _zip({"main.py": b"x = 1\n", **members})
    with pytest.raises(IntakeError) as e:
        bundle = parse_bundle(data, "b.zip", None, 100, 1 << 20)
        Artifacts(tmp_path).store_input(bundle)  # the old code got this far, and failed here with an OSError
    assert e.value.status == 400 and words in e.value.message, e.value.message


def test_store_input_writes_only_below_its_directory(tmp_path):
    bundle = parse_bundle(_zip({"main.py": b"x = 1\n", "d/e.csv": b"1"}), "b.zip", None, 100, 1 << 20)
    bundle.files["../../escape"] = b"no"
    with pytest.raises(IntakeError):
        Artifacts(tmp_path / "data").store_input(bundle)
    assert not (tmp_path / "escape").exists() and not list((tmp_path / "data" / "inputs").iterdir())


# ---------------------------------------------------------------- through the real Hub


def _workspace(hub, user: str) -> Path:
    path = hub.data / "users" / user
    path.mkdir(parents=True, exist_ok=True)
    return path


def _dry_runs_while_flipping(user, swapper: Swapper, path: str, tries: int, timeout: float,
                             check=None) -> dict:
    """``tries`` dry-run submits of ``path`` while ``swapper`` flips it: how many were
    answered 200 and 400 (any other answer fails, as does ``check(response)``)."""
    counts = {200: 0, 400: 0}
    swapper.start()
    try:
        for _ in range(tries):
            r = user.post("jobs", params={"dry_run": "1"}, json={"path": path}, timeout=timeout)
            assert r.status_code in (200, 400), r.text
            if check is not None:
                check(r)
            counts[r.status_code] += 1
    finally:
        swapper.stop()
    return counts


def test_symlink_race_through_the_hub(hub):
    """1,000 dry-run submits of a name flipping between the user's file and links to another's and a secret."""
    victim = _workspace(hub, "wsbob")
    (victim / "private.py").write_text(script("BOB-MARKER-7c1"))
    secret = hub.tmp / "service-secret.py"
    secret.write_text(script("SECRET-MARKER-e42"))
    user = hub.user("wsrace")
    race = _workspace(hub, "wsrace") / "race.py"
    race.write_text(script("alice-own"))
    swapper = Swapper(race, script("alice-own"), links=[str(victim / "private.py"), str(secret)])

    def check(r):
        assert "BOB-MARKER" not in r.text and "SECRET-MARKER" not in r.text, r.text
        if r.status_code == 200:
            assert [f["value"] for f in r.json()["notebook_parameters"]] == ["alice-own"]
        else:
            error = r.json()["error"]
            assert error["message"].startswith("race.py " + LINK_WORDS), error

    counts = _dry_runs_while_flipping(user, swapper, "race.py", 1000, timeout=30, check=check)
    assert counts[200] > 20 and counts[400] > 20, counts


def test_links_in_a_workspace_are_neither_listed_nor_read(hub):
    user = hub.user("wslinks")
    ws = _workspace(hub, "wslinks")
    secret = hub.tmp / "service-secret.py"
    secret.write_text(script("SECRET-MARKER-e42"))
    (ws / "real.ipynb").write_text(json.dumps(make_notebook("1 + 1")))
    links = {
        "dangling.ipynb": "nowhere.ipynb",
        "selfloop.py": "selfloop.py",
        "loopa.ipynb": "loopb.ipynb", "loopb.ipynb": "loopa.ipynb",
        "passwd.py": "/etc/passwd",
        "secret.py": str(secret),
        "alias.ipynb": "real.ipynb",
    }
    for name, target in links.items():
        os.symlink(target, ws / name)
    r = user.get("notebooks")
    assert r.status_code == 200, r.text
    assert [n["path"] for n in r.json()["notebooks"]] == ["real.ipynb"]
    for name in links:
        r = user.post("jobs", json={"path": name})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["message"].startswith(f"{name} {LINK_WORDS}"), r.text
        assert "SECRET-MARKER" not in r.text and "root:" not in r.text


def test_a_fifo_does_not_hang_a_submit(hub):
    user = hub.user("wsfifo")
    ws = _workspace(hub, "wsfifo")
    os.mkfifo(ws / "x.ipynb")
    started = time.monotonic()
    r = user.post("jobs", json={"path": "x.ipynb"}, timeout=20)
    assert r.status_code == 400 and "x.ipynb is a FIFO (named pipe), not a regular file" in r.text, r.text
    assert time.monotonic() - started < 10
    assert user.get("notebooks").json()["notebooks"] == []
    # and flipped between a notebook and a FIFO under the service's feet: every answer comes
    plain = json.dumps(make_notebook("1 + 1"))
    (ws / "y.ipynb").write_text(plain)
    swapper = Swapper(ws / "y.ipynb", plain, fifo=True)
    counts = _dry_runs_while_flipping(user, swapper, "y.ipynb", 300, timeout=15)
    assert counts[200] > 5 and counts[400] > 5, counts


def test_a_linked_directory_component_is_refused_through_the_hub(hub):
    user = hub.user("wsnested")
    ws = _workspace(hub, "wsnested")
    victim = _workspace(hub, "wsbob")
    (victim / "private.py").write_text(script("BOB-MARKER-7c1"))
    (ws / "nested" / "real").mkdir(parents=True, exist_ok=True)
    (ws / "nested" / "real" / "nb.ipynb").write_text(json.dumps(make_notebook("1 + 1")))
    os.symlink("real", ws / "nested" / "inside")
    os.symlink(str(victim), ws / "nested" / "out")
    r = user.post("jobs", params={"dry_run": "1"}, json={"path": "nested/real/nb.ipynb"})
    assert r.status_code == 200, r.text
    for path, link in [("nested/inside/nb.ipynb", "nested/inside"), ("nested/out/private.py", "nested/out")]:
        r = user.post("jobs", params={"dry_run": "1"}, json={"path": path})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["message"].startswith(f"{link} {LINK_WORDS}"), r.text
        assert "BOB-MARKER" not in r.text
    assert [n["path"] for n in user.get("notebooks").json()["notebooks"]] == ["nested/real/nb.ipynb"]
