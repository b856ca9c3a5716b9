"""Reading a user's workspace from their Docker volume (hub_service/volumes.py), for real.

A volume of the test's own is filled, as its owner (uid 1000) would fill it from their
server, by a container of the runner image; then :class:`VolumeWorkspaces` lists and reads
it through its helper containers and must answer exactly what :mod:`hub_service.workspace`
answers for the same files on a local disk -- links not followed, FIFOs and devices not
read, sizes capped -- and must leave no container and create no volume behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid

import docker
import nbformat
import pytest

from hub_service.intake import IntakeError
from hub_service.volumes import LABEL, VolumeWorkspaces, dockerspawner_escape
from hub_service.workspace import WorkspaceFileMissing, list_notebooks, read_workspace_notebook

from .conftest import IMAGE, make_notebook

NB = nbformat.writes(make_notebook("print(1)", parameters="n = 1"))

# What a user might leave in their home; built inside the volume by its owner.
FILL = f"""
set -e
cd /workspace
mkdir -p reports deep/er .hidden
cat > reports/nightly.ipynb <<'EOF'
{NB}
EOF
cp reports/nightly.ipynb deep/er/older.ipynb
touch -d '2020-01-01' deep/er/older.ipynb
cp reports/nightly.ipynb .hidden/secret.ipynb
printf 'x = 1\\n' > script.py
ln -s /etc/passwd passwd.ipynb
ln -s reports/nightly.ipynb inside-link.ipynb
ln -s reports linked-dir
mkfifo pipe.ipynb
head -c 5000 /dev/zero > big.ipynb
"""


@pytest.fixture(scope="module")
def client():
    c = docker.from_env()
    yield c
    c.close()


@pytest.fixture(scope="module")
def user_volume(client, tmp_path_factory):
    """``(user, volume, reader)``: a workspace volume filled by its owner (one per module: reads never change it)."""
    user = f"vol-test-{uuid.uuid4().hex[:8]}"
    reader = VolumeWorkspaces(image=IMAGE)
    volume = reader.volume_for(user)
    client.volumes.create(volume, labels={"org.jupyter.notebook-jobs.test": "1"})
    try:
        client.containers.run(IMAGE, entrypoint=["sh", "-c", FILL], user="0:0", remove=True, network_mode="none",
                              mounts=[docker.types.Mount("/workspace", volume, type="volume")])
        # owned by the workspace's user, as a DockerSpawner home is
        client.containers.run(IMAGE, entrypoint=["chown", "-hR", "1000:1000", "/workspace"], user="0:0",
                              remove=True, network_mode="none",
                              mounts=[docker.types.Mount("/workspace", volume, type="volume")])
        yield user, volume, reader
    finally:
        for c in client.containers.list(ignore_removed=True, all=True, filters={"label": LABEL}):
            c.remove(force=True)
        client.volumes.get(volume).remove(force=True)


def test_the_listing_is_the_workspace_listing_no_links_no_hidden_files_no_fifo_newest_first(client, user_volume):
    user, volume, reader = user_volume
    found = reader.notebooks(user)
    paths = [n["path"] for n in found]
    assert set(paths) == {"reports/nightly.ipynb", "deep/er/older.ipynb", "script.py", "big.ipynb"}
    assert paths[-1] == "deep/er/older.ipynb"  # newest first: the 2020 file is last
    assert all(set(n) == {"path", "name", "size", "modified"} for n in found)
    assert reader.root(user) == f"volume:{volume}"
    assert client.containers.list(ignore_removed=True, all=True, filters={"label": LABEL}) == []  # helpers are removed


def test_a_notebook_is_read_by_path_as_a_workspace_read_gives_it(user_volume, tmp_path):
    user, _, reader = user_volume
    bundle = reader.read(user, "reports/nightly.ipynb")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "nightly.ipynb").write_text(NB + "\n")
    local = read_workspace_notebook(str(tmp_path), user, "reports/nightly.ipynb", max_size=1 << 20)
    assert bundle.name == local.name == "reports/nightly.ipynb"
    assert bundle.kind == local.kind == "ipynb"
    assert bundle.notebook.cells[0].source == "n = 1"
    assert reader.read(user, "./reports//nightly.ipynb").name == "reports/nightly.ipynb"


@pytest.mark.parametrize("path, status, words", [
    ("passwd.ipynb", 400, "is a symbolic link"),           # out of the volume
    ("inside-link.ipynb", 400, "is a symbolic link"),      # to a file of the same volume: not followed either
    ("linked-dir/nightly.ipynb", 400, "linked-dir is a symbolic link"),
    ("pipe.ipynb", 400, "FIFO"),                           # never opened for reading: no hang
    ("big.ipynb", 413, "over the limit"),
    ("../etc/passwd", 400, "must not contain '..'"),
    ("/etc/passwd", 400, "must be relative"),
])
def test_what_the_workspace_reader_refuses_the_volume_reader_refuses_alike(user_volume, path, status, words):
    user, _, shared = user_volume
    reader = VolumeWorkspaces(image=IMAGE, limits=dataclasses.replace(shared.limits, max_upload_size=4096))
    with pytest.raises(IntakeError) as e:
        reader.read(user, path)
    assert e.value.status == status and words in e.value.message


def test_a_missing_file_or_a_user_without_a_volume_is_a_404_and_no_volume_is_made(client, user_volume):
    user, _, reader = user_volume
    with pytest.raises(WorkspaceFileMissing):
        reader.read(user, "reports/gone.ipynb")
    nobody = f"never-spawned-{uuid.uuid4().hex[:8]}"
    with pytest.raises(WorkspaceFileMissing):
        reader.read(nobody, "reports/nightly.ipynb")
    assert reader.notebooks(nobody) == []
    assert not client.volumes.list(filters={"name": reader.volume_for(nobody)})


def test_the_helper_runs_sandboxed_as_the_workspace_owner_and_cannot_write_the_volume(client, user_volume,
                                                                                      monkeypatch):
    from docker.models.containers import ContainerCollection

    user, volume, reader = user_volume
    seen = {}
    real_create = ContainerCollection.create

    def create(self, *args, **kwargs):
        container = real_create(self, *args, **kwargs)
        seen["attrs"] = client.api.inspect_container(container.id)
        return container

    monkeypatch.setattr(ContainerCollection, "create", create)
    reader.notebooks(user)
    host = seen["attrs"]["HostConfig"]
    assert seen["attrs"]["Config"]["User"] == "1000:1000"
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    (mount,) = host["Mounts"]
    assert mount["Source"] == volume and mount["ReadOnly"] is True
    assert not host.get("Binds")  # nothing of the service's host


def test_the_helper_answers_here_as_workspace_does_on_a_local_directory(tmp_path):
    """The helper's program (this service's workspace code, handed over) run by the local python3."""
    import subprocess

    from hub_service.volumes import helper_program

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "nb.ipynb").write_text(NB)
    os.symlink("/etc/passwd", tmp_path / "link.ipynb")
    request = {"op": "list", "root": str(tmp_path), "limits": {"limit": 1000, "max_entries": 100_000, "max_depth": 32}}
    out = subprocess.run(["python3", "-I", "-S", "-c", helper_program(), json.dumps(request)], capture_output=True,
                         text=True, check=True).stdout
    assert json.loads(out)["notebooks"] == list_notebooks(str(tmp_path))


def test_volume_names_are_dockerspawners_escaping_of_the_user_name():
    from dockerspawner import DockerSpawner

    for name in ("alice", "bob.smith", "Upper", "ünïcode", "a-b_c@d"):
        assert dockerspawner_escape(name) == DockerSpawner._escape(name)
    assert VolumeWorkspaces().volume_for("bob.smith") == "jupyterhub-user-bob-2esmith"
