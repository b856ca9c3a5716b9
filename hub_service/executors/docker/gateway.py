"""The bottom of the docker executor: labels, names, errors and the one way to the daemon.

Every other module of the package takes what it needs from here and is handed a
:class:`Gateway`; none reaches back into the executor. The Docker SDK is synchronous:
``Gateway.call`` runs a blocking call in a private thread pool (dockerspawner's
``self.docker(method, ...)``), and the executor's own threads use ``Gateway.api``. What
the executor does to one container or volume -- check the daemon before the first job,
kill, wait for the end, remove, find a volume's directory, sample ``docker stats`` -- is
a method here, each in one place.

Two things the SDK's public API lacks are done through its private one, each in one
function below, and ``tests/test_docker_units.py`` fails when a docker-py release
changes what they use: an update of ``NanoCpus`` (``update_container`` has no
``nano_cpus``) and the container's log as raw multiplexed frames (``logs()`` drops the
stream ids that tell stdout from stderr; ``attach(logs=True)`` can lose the first bytes).
Every followed log, the docker executor's and the swarm executor's, is a
:class:`FollowedLog`, whose ``close()`` ends a read blocked in it at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Optional

from ..._version import __version__
from ..streams import read_frames

LABEL_PREFIX = "org.jupyter.notebook-jobs"
LABEL_JOB = f"{LABEL_PREFIX}.job-id"
LABEL_USER = f"{LABEL_PREFIX}.user"
LABEL_INSTANCE = f"{LABEL_PREFIX}.instance"
LABEL_VERSION = f"{LABEL_PREFIX}.version"
LABEL_WARM = f"{LABEL_PREFIX}.warm"  # on warm-pool containers: their pool key (cgroup, volume)
#: On a cold job's container whose runner reads its job on stdin, as a warm one does (its inputs in the line).
LABEL_LINE = f"{LABEL_PREFIX}.line"
#: On runner images whose runner has the warm mode (runner.py --warm).
LABEL_RUNNER_WARM = f"{LABEL_PREFIX}.runner-warm"
#: On a job's work-volume meter (:mod:`.meter`): it carries the job's labels, yet is no job.
LABEL_METER = f"{LABEL_PREFIX}.meter"

_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


class SandboxError(RuntimeError):
    """The daemon did not apply a limit the sandbox requires."""


class WarmGone(RuntimeError):
    """A warm container that is no longer there to take a job."""


def safe_name(job_id: str) -> str:
    """A job id as it may appear in container, volume and cgroup names."""
    return _NAME_UNSAFE.sub("_", job_id)


class Names:
    """Names and labels of one service instance's containers, volumes and cgroups."""

    def __init__(self, instance: str, extra_labels: Optional[dict] = None, cgroup_parent: str = ""):
        self.instance = instance
        self.extra_labels = dict(extra_labels or {})
        self.cgroup_parent = cgroup_parent

    def job(self, job_id: str):
        """(container name, volume name) of a job."""
        base = f"notebook-jobs-{self.instance}-{safe_name(job_id)}"
        return base, base + "-work"

    @property
    def warm_prefix(self) -> str:
        """Start of every idle warm container's name; no job's name can start so."""
        # "notebook-jobs." can never start a job's name ("notebook-jobs-<instance>-...").
        return f"notebook-jobs.warm.{self.instance}."

    def job_labels(self, job_id: str, user: Optional[str]) -> dict:
        """Labels of a job's container and volume."""
        labels = dict(self.extra_labels)
        labels.update({LABEL_JOB: job_id, LABEL_USER: user or "", LABEL_INSTANCE: self.instance,
                       LABEL_VERSION: __version__})
        return labels

    def warm_labels(self, key: str) -> dict:
        """Labels of an idle warm container and its volume."""
        labels = dict(self.extra_labels)
        labels.update({LABEL_INSTANCE: self.instance, LABEL_VERSION: __version__, LABEL_WARM: key})
        return labels

    def job_of(self, container: dict) -> Optional[str]:
        """The job a listed container of this instance carries, if any.

        A cold job's container has the job id in a label; one that started warm has the
        job's name instead (its labels were set before the job existed). An idle warm
        container carries no job, nor does a job's meter (its labels are its job's).
        """
        labels = container.get("Labels") or {}
        if LABEL_METER in labels:  # (it holds no job: its job is its job's container)
            return None
        if LABEL_JOB in labels:
            return labels[LABEL_JOB]
        if LABEL_WARM in labels:
            prefix = self.job("")[0]
            for name in container.get("Names") or []:
                name = name.lstrip("/")
                if name.startswith(prefix) and len(name) > len(prefix):
                    return name[len(prefix):]
        return None

    def job_cgroup(self, key: str) -> str:
        """The per-job parent cgroup (``/<cgroup_parent>/<key>``); empty when not used."""
        if not self.cgroup_parent:
            return ""
        return "/" + self.cgroup_parent.strip("/") + "/" + safe_name(key)


def parse_time(value: str) -> Optional[float]:
    """Docker's RFC 3339 timestamp (nanoseconds, Z) as epoch seconds; None when unset."""
    if not value or value.startswith("0001-"):
        return None
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", value)
    if not m:
        return None
    frac = (m.group(2) or ".0")[:7]
    tz = m.group(3) or "Z"
    tz = "+00:00" if tz == "Z" else tz
    return datetime.fromisoformat(m.group(1) + frac + tz).timestamp()


def readable_dir(path: Optional[str]) -> Optional[str]:
    """``path`` when this process may list and enter it (a local daemon's volume, as root), else None."""
    return path if path and os.access(path, os.R_OK | os.X_OK) else None


class Gateway:
    """The Docker client, made on first use, and a thread pool for its blocking calls."""

    def __init__(self, url: str = "", threads: int = 16, log: Optional[logging.Logger] = None):
        self.url = url
        self.threads = threads
        self.log = log or logging.getLogger(__name__)
        self._client = None
        self._pool: Optional[ThreadPoolExecutor] = None

    @property
    def client(self):
        """The Docker client (created on first use)."""
        if self._client is None:
            import docker

            kw = {"max_pool_size": 64, "timeout": 120}
            if self.url:
                # (the environment's TLS settings, DOCKER_CERT_PATH and DOCKER_TLS_VERIFY, for a tcp URL)
                tls = docker.utils.kwargs_from_env().get("tls") if self.url.startswith("tcp:") else None
                self._client = docker.DockerClient(base_url=self.url, tls=tls or False, **kw)
            else:
                self._client = docker.from_env(**kw)
        return self._client

    @property
    def api(self):
        """The low-level client (``docker.APIClient``) behind ``client``."""
        return self.client.api

    @property
    def open(self) -> bool:
        """Whether a client and a pool exist (something to release)."""
        return self._client is not None and self._pool is not None

    async def call(self, fn, *args, **kwargs):
        """Run a blocking Docker call off the event loop."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="docker-executor")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def preflight(self, image: str, runtime: str = ""):
        """(image, daemon info) once the daemon answers, has the image and knows the runtime;
        else a RuntimeError that says how to get there."""
        import docker

        try:
            await self.call(self.client.ping)
        except Exception as e:
            raise RuntimeError(
                f"docker executor: cannot reach the Docker daemon ({e}). Start it with "
                "`bash scripts/docker-setup.sh` (as root) or set DockerExecutor.docker_url."
            ) from e
        try:
            found = await self.call(self.client.images.get, image)
        except docker.errors.ImageNotFound as e:
            raise RuntimeError(
                f"docker executor: runner image {image} not found on the daemon; build it "
                "with `bash runner-image/build.sh`."
            ) from e
        info = await self.call(self.client.info)
        if runtime and runtime not in (info.get("Runtimes") or {}):
            raise RuntimeError(
                f"docker executor: runtime {runtime!r} is not registered with the "
                "daemon (see scripts/docker-setup.sh)"
            )
        return found, info

    def close(self) -> None:
        """Release the pool and the client (a later call makes new ones)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- one container or volume (sync: through call, or from the executor's threads) ----
    def kill(self, container_id: str) -> None:
        """Kill a container; one that already exited, or is gone, is left as it is."""
        import docker

        try:
            self.api.kill(container_id)
        except docker.errors.APIError as e:
            self.log.debug("kill %s: %s", container_id, e)

    def wait(self, container_id: str):
        """(exit code, inspect) of a container once it has ended; (None, None) when it is gone."""
        import docker

        try:
            result = self.api.wait(container_id, timeout=60)
            attrs = self.api.inspect_container(container_id)
        except docker.errors.NotFound:
            return None, None
        except Exception as e:
            self.log.warning("wait %s: %s", container_id, e)
            return None, None
        return result.get("StatusCode"), attrs

    def remove(self, container: str, volume: str, mounted_at: str) -> Optional[str]:
        """Remove a container (by id or name) and its volumes: ``volume`` and the one mounted
        at ``mounted_at``, each after its meters. Returns its pool key when it started warm (its cgroup's name)."""
        import docker

        api = self.api
        volumes, key = [volume], None
        try:
            attrs = api.inspect_container(container)
            key = ((attrs.get("Config") or {}).get("Labels") or {}).get(LABEL_WARM)
            volumes += [m["Name"] for m in attrs.get("Mounts") or []
                        if m.get("Type") == "volume" and m.get("Name") and m.get("Destination") == mounted_at]
            api.remove_container(attrs["Id"], force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            self.log.warning("remove container %s: %s", container, e)
        for name in dict.fromkeys(volumes):
            for first in (True, False):
                try:
                    api.remove_volume(name, force=True)
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as e:
                    if first and e.status_code == 409:  # in use: by its meter, which goes first (no ps otherwise)
                        self.remove_meters(name)
                        continue
                    self.log.warning("remove volume %s: %s", name, e)
                break
        return key

    def remove_meters(self, volume: str) -> None:
        """Remove the work-volume meters (:mod:`.meter`) that mount ``volume``; a dead service's left-behind too."""
        import docker

        try:
            for meter in self.api.containers(all=True, filters={"label": LABEL_METER, "volume": volume}):
                try:
                    self.api.remove_container(meter["Id"], force=True)
                except docker.errors.NotFound:  # (it removes itself when it ends)
                    pass
                except docker.errors.APIError as e:
                    if e.status_code != 409:
                        raise
                    try:  # (its removal is under way: its name and volume are free once it is done)
                        self.api.wait(meter["Id"], timeout=30, condition="removed")
                    except docker.errors.NotFound:
                        pass
        except Exception as e:  # (housekeeping: what is left goes with the volume's next removal)
            self.log.warning("remove the meters of volume %s: %s", volume, e)

    def volume_dir(self, name: str) -> Optional[str]:
        """A volume's directory on this host, when it is readable here (a local daemon, as root)."""
        try:
            mp = self.api.inspect_volume(name).get("Mountpoint")
        except Exception:
            return None
        return readable_dir(mp)

    def mounted_dir(self, attrs: dict, mounted_at: str) -> Optional[str]:
        """The directory on this host of the volume a container (its inspect, ``attrs``) mounts at
        ``mounted_at``, when it is readable here: what :meth:`volume_dir` finds, from an inspect the caller
        has already."""
        for m in attrs.get("Mounts") or []:
            if m.get("Type") == "volume" and m.get("Destination") == mounted_at:
                return readable_dir(m.get("Source"))
        return None

    def sampled_usage(self, container_id: str) -> dict:
        """Memory (max, else current) and cpu seconds from one ``docker stats`` sample; {} when none."""
        try:
            s = self.api.stats(container_id, stream=False, one_shot=True)
        except Exception:
            return {}
        out = {}
        mem = s.get("memory_stats") or {}
        peak = mem.get("max_usage") or mem.get("usage")
        if peak:
            out["peak_memory"] = int(peak)
        cpu = ((s.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
        if cpu:
            out["cpu_seconds"] = cpu / 1e9
        return out


# --- the SDK's private API, one call each ------------------------------------------------
def update_limits(api, container_id: str, memory: Optional[int], nano_cpus: int) -> None:
    """Set a running container's memory (and swap; None: as it is) and cpu limit (API 1.29+)."""
    # update_container() has no nano_cpus, and a cpu quota cannot be set beside NanoCpus.
    data = {"NanoCpus": nano_cpus}
    if memory is not None:
        data.update(Memory=memory, MemorySwap=memory)
    res = api._post_json(api._url("/containers/{0}/update", container_id), data=data)
    api._result(res, True)


def log_response(api, container_id: str, follow: bool) -> "FollowedLog":
    """The container's whole log as raw multiplexed frames (to its end, when ``follow``)."""
    res = api._get(api._url("/containers/{0}/logs", container_id),
                   params={"stdout": 1, "stderr": 1, "follow": int(follow)}, stream=True)
    api._raise_for_status(res)
    sock = api._get_raw_response_socket(res)
    if follow:  # a job may be silent for longer than the client's timeout
        api._disable_socket_timeout(sock)
    return FollowedLog(res, sock)


class FollowedLog:
    """A log response read by one thread and closed, at once, from any other.

    ``Response.close()`` closes the buffered reader under the response, which waits for
    the lock a reader blocked in ``read`` holds: until the container writes or ends,
    minutes for a job in a long cell, and meanwhile whoever closed it -- the event loop,
    in the executor's ``stop()`` or a cancelled follow -- stands still. ``close()`` here
    shuts the socket down instead, which ends that read at once; the reader releases the
    response when its frames end.
    """

    def __init__(self, res, sock):
        self.res = res
        self.raw = res.raw
        # (a SocketIO over a unix or tcp socket: the socket under it)
        self._sock = getattr(sock, "_sock", sock)

    def frames(self):
        """(stdout, stderr) chunks until the log ends or is closed; then the response is released."""
        try:
            yield from read_frames(self.raw)
        finally:
            self.res.close()

    def close(self) -> None:
        """End the stream, and a read blocked in it, without waiting for that read."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already shut, or closed
            pass
