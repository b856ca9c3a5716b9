"""The docker executor: each job in its own hardened, throw-away container.

The package, from the bottom up (each module imports only those above it in this list):

- :mod:`.gateway` — labels, names, errors, and the one way to the daemon (a client and
  a thread pool for its blocking calls; the SDK's private API, one call per function);
- :mod:`.sandbox` — the container a job gets, the check of what the daemon kept and the
  measure of the work quota (pure);
- :mod:`.transport` — the job's files in and out as tar archives (pure);
- :mod:`.cgroups` — exact usage and cpu weights from the host's cgroup tree (v1 and v2);
- :mod:`.builds` — derived images: a job's own requirements installed, from wheels, on top of its
  environment's image (``EnvironmentBuilder``: the build, its cache by key, its limits);
- :mod:`.meter` — the work quota's meter container, beside each running job where this host
  cannot read the daemon's volumes;
- :mod:`.warm` — the warm pool (``take``, ``refill``, ``drain``), and what of a warm-started
  job's output and usage is its own (``Arrival``);
- :mod:`.executor` — :class:`DockerExecutor`: its traits, ``run``, ``reattach``, ``cancel``.

Frames, lines and the log cap are shared with the local executor, in
:mod:`hub_service.executors.streams`. The entry point stays
``hub_service.executors.docker:DockerExecutor``.
"""

from .executor import DockerExecutor
from .gateway import (
    LABEL_INSTANCE,
    LABEL_JOB,
    LABEL_PREFIX,
    LABEL_RUNNER_WARM,
    LABEL_USER,
    LABEL_VERSION,
    LABEL_WARM,
    SandboxError,
    parse_time,
)

__all__ = [
    "DockerExecutor",
    "SandboxError",
    "LABEL_PREFIX",
    "LABEL_JOB",
    "LABEL_USER",
    "LABEL_INSTANCE",
    "LABEL_VERSION",
    "LABEL_WARM",
    "LABEL_RUNNER_WARM",
    "parse_time",
]
