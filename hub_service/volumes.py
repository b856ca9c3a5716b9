"""A user's workspace in a Docker volume: the team deployment's ``GET /notebooks`` and ``{"path": …}`` reads.

With DockerSpawner each user's home is a named volume (``jupyterhub-user-{username}``)
that only their server mounts; the service, in a container of its own, has no such
directory on its disk. :class:`VolumeWorkspaces` reads one through a short-lived helper
container: the user's volume mounted **read-only** at ``/workspace``, no network, no
capabilities, a read-only root, a few MiB of memory, running as the workspace owner's
uid (the single-user image's ``jovyan``, 1000), so it can read no more than the user can.
It works whether or not the user's server is up (a nightly schedule needs no login), and
it never creates a volume: a user who never started a server has no workspace (an empty
list, a 404 for a path).

The guarantees are those of :mod:`hub_service.workspace`, by running its very code: the
helper is handed the source of ``workspace.py`` (and of the two names it needs from
``intake``: ``IntakeError`` and ``safe_relpath``) and calls ``read_workspace_bytes`` or
``list_notebooks`` on ``/workspace``. So below the volume's root no symbolic link is
followed, only regular files are read (a FIFO is never read, a device never opened), at
most ``max_size`` bytes. Handing the source over (rather than importing the installed
package inside the helper) keeps the helper's start-up free of nbformat's ~2 s import and
lets any image with a ``python3`` serve as the helper -- the runner image by default. The
notebook is parsed here, in the service, as a workspace read would parse it.

Both operations answer as :func:`workspace.read_workspace_notebook` and
:func:`workspace.list_notebooks` do (a Bundle; a list of ``{path, name, size, modified}``)
and raise the same errors (:class:`workspace.WorkspaceFileMissing`, :class:`IntakeError`).
Each call costs a container start (about a second); both block: run them in a thread.
"""

from __future__ import annotations

import base64
import inspect
import json
import string

from traitlets import Any, Float, Integer, Unicode, default
from traitlets.config import LoggingConfigurable

from . import intake, workspace
from ._version import __version__
from .intake import Bundle, IntakeError, Limits, clean_name, read_submission, safe_relpath
from .workspace import WorkspaceFileMissing

#: where the helper mounts the volume
MOUNT = "/workspace"
#: the label every helper container carries (to find and remove any a crash left behind)
LABEL = "org.jupyter.notebook-jobs.volume-reader"

# The helper's program: a stand-in ``hub_service.intake`` with the real IntakeError and
# safe_relpath, then workspace.py itself, then one call whose answer is one JSON line.
_HELPER_MAIN = r'''
import base64, json, sys, types
pkg = types.ModuleType("hub_service"); pkg.__path__ = []
stub = types.ModuleType("hub_service.intake")
exec(compile(INTAKE, "hub_service/intake.py (IntakeError, safe_relpath)", "exec"), stub.__dict__)
stub.__getattr__ = lambda name: None  # intake's other names: used only by the parts the helper never calls
sys.modules.update({"hub_service": pkg, "hub_service.intake": stub})
ws = types.ModuleType("hub_service.workspace"); ws.__package__ = "hub_service"
sys.modules["hub_service.workspace"] = ws
exec(compile(WORKSPACE, "hub_service/workspace.py", "exec"), ws.__dict__)
request = json.loads(sys.argv[1])
try:
    if request["op"] == "list":
        answer = {"notebooks": ws.list_notebooks(request["root"], **request["limits"])}
    else:
        rel, data = ws.read_workspace_bytes(request["root"], request["user"], request["path"], max_size=request["max_size"])
        answer = {"rel": rel, "data": base64.b64encode(data).decode()}
except ws.WorkspaceFileMissing as e:
    answer = {"missing": e.rel}
except stub.IntakeError as e:
    answer = {"error": {"message": e.message, "status": e.status, "code": e.code}}
sys.stdout.write(json.dumps(answer) + "\n")
'''


def helper_program() -> str:
    """The Python source the helper container runs: this service's own workspace code, and a call into it.

    Run as ``python3 -I -S -c PROGRAM REQUEST``; REQUEST is JSON: ``{"op": "list", "root", "limits"}`` or
    ``{"op": "read", "root", "user", "path", "max_size"}``. The answer is one JSON line on stdout.
    """
    intake_part = "\n".join(["import posixpath, re", "from typing import Optional",
                             inspect.getsource(intake.IntakeError), inspect.getsource(intake.safe_relpath)])
    return "\n".join([f"INTAKE = {intake_part!r}",
                      f"WORKSPACE = {inspect.getsource(workspace)!r}", _HELPER_MAIN])


def dockerspawner_escape(name: str) -> str:
    """A user name as DockerSpawner (12+) escapes it into ``{username}`` of its volume names."""
    from escapism import escape

    return escape(name, set(string.ascii_lowercase + string.digits), escape_char="-").lower()


class VolumeHelperError(IntakeError):
    """The helper container could not answer (no daemon, no image, a timeout): the service's trouble, a 503."""

    def __init__(self, message: str):
        super().__init__(message, 503, "workspace_unavailable")


class VolumeWorkspaces(LoggingConfigurable):
    """Users' workspaces in Docker volumes, read through a short-lived read-only helper container.

    The interface of :class:`workspace.Workspaces` (``root``, ``read``, ``notebooks``, ``limits``),
    so the service takes either.
    """

    limits = Any(help="How much a submission may be (:class:`intake.Limits`); the service passes its own.")

    @default("limits")
    def _default_limits(self):
        return Limits()

    volume_template = Unicode(
        "jupyterhub-user-{username}",
        help="""Name of a user's volume; {username} is the user name escaped as DockerSpawner
        escapes it (so match DockerSpawner.volumes' key).""",
    ).tag(config=True)

    image = Unicode(
        f"notebook-jobs-runner:{__version__}",
        help="""Image of the helper container: any image with python3 on its PATH. It must
        exist on the daemon (never pulled).""",
    ).tag(config=True)

    user = Unicode(
        "1000:1000",
        help="""uid:gid the helper reads as: the owner of the workspace's files (the
        single-user image's user), so it reads no more than the user can. Never 0.""",
    ).tag(config=True)

    docker_url = Unicode(
        "", help="URL of the Docker daemon; empty: the Docker SDK's default (DOCKER_HOST, else the local socket)."
    ).tag(config=True)

    timeout = Float(30, help="Seconds a helper may take before it is killed and the read fails (503).").tag(config=True)

    memory = Integer(128 << 20, help="Memory limit of a helper container, in bytes.").tag(config=True)

    _client = None

    @property
    def client(self):
        """The Docker client (made on first use)."""
        if self._client is None:
            import docker

            self._client = docker.DockerClient(base_url=self.docker_url) if self.docker_url else docker.from_env()
        return self._client

    def volume_for(self, username: str) -> str:
        """The name of ``username``'s volume."""
        return self.volume_template.format(username=dockerspawner_escape(username))

    def root(self, username: str) -> str:
        """How GET /notebooks names the workspace: ``volume:<name>``."""
        return f"volume:{self.volume_for(username)}"

    def read(self, username: str, path) -> Bundle:
        """The notebook at ``path`` in the user's volume, within :attr:`limits` (see :meth:`read_notebook`)."""
        limits = self.limits
        return self.read_notebook(username, path, max_size=limits.max_upload_size,
                                  max_members=limits.bundle_max_files, max_bytes=limits.bundle_max_bytes)

    def notebooks(self, username: str) -> list:
        """What a submission by path would accept from the user's volume, newest first."""
        return self.list_notebooks(username)

    def _run(self, username: str, request: dict):
        """The helper's answer for ``request``, or None when the user has no volume."""
        import docker.errors
        from docker.types import Mount

        volume = self.volume_for(username)
        try:
            self.client.volumes.get(volume)  # mounting a missing volume would create it
        except docker.errors.NotFound:
            return None
        except docker.errors.DockerException as e:
            raise VolumeHelperError(f"the workspace of {username} cannot be read now: {e}") from None
        container = None
        try:
            container = self.client.containers.create(
                self.image,
                entrypoint=["python3", "-I", "-S", "-c", helper_program(), json.dumps(request)],
                user=self.user, network_mode="none", read_only=True, cap_drop=["ALL"],
                security_opt=["no-new-privileges"], mem_limit=self.memory, memswap_limit=self.memory,
                pids_limit=16, labels={LABEL: "1"}, working_dir="/",
                mounts=[Mount(target=MOUNT, source=volume, type="volume", read_only=True, no_copy=True)],
                log_config={"type": "json-file", "config": {}},
            )
            container.start()
            try:
                status = container.wait(timeout=self.timeout)
            except Exception:  # requests' ReadTimeout or ConnectionError: the helper is killed below
                raise VolumeHelperError(f"reading {username}'s workspace took over {self.timeout:g} s") from None
            out = container.logs(stdout=True, stderr=False)
            if status.get("StatusCode") != 0:
                err = container.logs(stdout=False, stderr=True).decode(errors="replace")[-2000:]
                self.log.error("volume reader for %s exited %s: %s", volume, status.get("StatusCode"), err)
                raise VolumeHelperError(f"reading {username}'s workspace failed (helper exit {status.get('StatusCode')})")
            return json.loads(out)
        except docker.errors.DockerException as e:
            raise VolumeHelperError(f"the workspace of {username} cannot be read now: {e}") from None
        finally:
            if container is not None:
                try:
                    container.remove(force=True)
                except docker.errors.DockerException:
                    pass

    def read_bytes(self, username: str, path, *, max_size: int) -> tuple:
        """``(rel, data)``, as :func:`workspace.read_workspace_bytes` answers it, from the user's volume."""
        rel = safe_relpath(path, "path")
        if not isinstance(username, str) or not username:
            raise IntakeError(f"user name {username!r} cannot name a workspace")
        answer = self._run(username, {"op": "read", "root": MOUNT, "user": username, "path": rel, "max_size": max_size})
        if answer is None or "missing" in answer:
            raise WorkspaceFileMissing(rel, username)
        if "error" in answer:
            e = answer["error"]
            raise IntakeError(e["message"], e["status"], e["code"])
        data = base64.b64decode(answer["data"])
        if len(data) > max_size:  # the helper's own check, held here too
            raise IntakeError(f"{rel} is over the limit of {max_size} bytes", 413, "too_large")
        return answer["rel"], data

    def read_notebook(self, username: str, path, *, max_size: int, max_members: int = 1000,
                      max_bytes: int = 100 << 20) -> Bundle:
        """The notebook at ``path`` in the user's volume, as :func:`workspace.read_workspace_notebook` answers."""
        rel, data = self.read_bytes(username, path, max_size=max_size)
        bundle = read_submission(rel.rsplit("/", 1)[-1], data, max_members=max_members, max_bytes=max_bytes)
        bundle.name = clean_name(rel)
        return bundle

    def list_notebooks(self, username: str, *, limit: int = 1000, max_entries: int = 100_000,
                       max_depth: int = 32) -> list:
        """The user's notebooks, newest first, as :func:`workspace.list_notebooks` answers (none without a volume)."""
        answer = self._run(username, {"op": "list", "root": MOUNT, "limits": {"limit": limit, "max_entries": max_entries,
                                                               "max_depth": max_depth}})
        return [] if answer is None else answer["notebooks"]


def read_volume_notebook(volumes: VolumeWorkspaces, user: str, path, *, max_size: int, max_members: int = 1000,
                         max_bytes: int = 100 << 20) -> Bundle:
    """:func:`workspace.read_workspace_notebook` for a workspace in ``user``'s Docker volume."""
    return volumes.read_notebook(user, path, max_size=max_size, max_members=max_members, max_bytes=max_bytes)


def list_volume_notebooks(volumes: VolumeWorkspaces, user: str, *, limit: int = 1000, max_entries: int = 100_000,
                          max_depth: int = 32) -> list:
    """:func:`workspace.list_notebooks` for a workspace in ``user``'s Docker volume."""
    return volumes.list_notebooks(user, limit=limit, max_entries=max_entries, max_depth=max_depth)
