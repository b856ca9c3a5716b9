"""The bottom of the docker executor: labels, names, errors and the one way to the daemon.

Every other module of the package takes what it needs from here and is handed a
:class:`Gateway`; none reaches back into the executor. The Docker SDK is synchronous:
``Gateway.call`` runs a blocking call in a private thread pool (dockerspawner's
``self.docker(method, ...)``), and the executor's own threads use ``Gateway.api``.

Two things the SDK's public API lacks are done through its private one, each in one
function below, and ``tests/test_docker_units.py`` fails when a docker-py release
changes what they use: an update of ``NanoCpus`` (``update_container`` has no
``nano_cpus``) and the container's log as raw multiplexed frames (``logs()`` drops the
stream ids that tell stdout from stderr; ``attach(logs=True)`` can lose the first bytes).
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Optional

from ..._version import __version__

LABEL_PREFIX = "org.jupyter.notebook-jobs"
LABEL_JOB = f"{LABEL_PREFIX}.job-id"
LABEL_USER = f"{LABEL_PREFIX}.user"
LABEL_INSTANCE = f"{LABEL_PREFIX}.instance"
LABEL_VERSION = f"{LABEL_PREFIX}.version"
LABEL_WARM = f"{LABEL_PREFIX}.warm"  # on warm-pool containers: their pool key (cgroup, volume)
#: On runner images whose runner has the warm mode (runner.py --warm).
LABEL_RUNNER_WARM = f"{LABEL_PREFIX}.runner-warm"

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


class Gateway:
    """The Docker client, made on first use, and a thread pool for its blocking calls."""

    def __init__(self, url: str = "", threads: int = 16):
        self.url = url
        self.threads = threads
        self._client = None
        self._pool: Optional[ThreadPoolExecutor] = None

    @property
    def client(self):
        """The Docker client (created on first use)."""
        if self._client is None:
            import docker

            kw = {"max_pool_size": 64, "timeout": 120}
            if self.url:
                self._client = docker.DockerClient(base_url=self.url, **kw)
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

    def close(self) -> None:
        """Release the pool and the client (a later call makes new ones)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None


# --- the SDK's private API, one call each ------------------------------------------------
def update_limits(api, container_id: str, memory: int, nano_cpus: int) -> None:
    """Set a running container's memory (and swap) and cpu limit (API 1.29+)."""
    # update_container() has no nano_cpus, and a cpu quota cannot be set beside NanoCpus.
    res = api._post_json(api._url("/containers/{0}/update", container_id),
                         data={"Memory": memory, "MemorySwap": memory, "NanoCpus": nano_cpus})
    api._result(res, True)


def log_response(api, container_id: str, follow: bool):
    """The container's whole log as an HTTP response of raw multiplexed frames.

    Read its ``raw`` with :func:`..streams.read_frames`; closing it ends the stream.
    """
    res = api._get(api._url("/containers/{0}/logs", container_id),
                   params={"stdout": 1, "stderr": 1, "follow": int(follow)}, stream=True)
    api._raise_for_status(res)
    if follow:  # a job may be silent for longer than the client's timeout
        api._disable_socket_timeout(api._get_raw_response_socket(res))
    return res
