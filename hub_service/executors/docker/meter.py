"""The work-volume meter: a job's work volume measured from a small container beside it.

The daemon cannot cap a volume's size, so the executor measures each running job's work
volume every ``poll_interval`` and kills a job past ``work_quota`` (bytes) or
``work_quota_files`` (files, directories and links). Where this host can read
the daemon's volume directory, it walks the volume itself. Where it cannot -- the team
deployment, whose service has the Docker socket but not ``/var/lib/docker/volumes``
(that would expose every user's home) -- a :class:`Meter` walks it: one container per
running job, of the runner image, with the job's volume mounted **read-only**, that prints
the volume's size and entries every interval. The walk is :func:`.sandbox.tree_usage`'s own
source, so the quotas mean the same either way.

The meter is trusted code looking at untrusted files, so it gets less than a job: no
network, a read-only root, ``no-new-privileges``, 64 MiB of memory, 8 processes and a
quarter of a core, and of all capabilities only ``DAC_READ_SEARCH``, so a job's ``chmod
000`` directory hides nothing from it. (It runs under the daemon's default runtime, even
where jobs run under gVisor: it runs none of the job's code and reads no file's content,
only names and sizes.) It runs as uid 0 because Docker gives an added
capability to root only (a non-root process starts with none effective); root without
``DAC_OVERRIDE``, ``CHOWN`` or ``FOWNER``, on read-only mounts, can read names and sizes
and change nothing. It lives no longer than the job may (its deadline, plus a grace) and
removes itself when it ends, so a meter a dead service left behind goes by itself.

It carries the job's labels (instance, job id), so everything that lists or removes a
job's containers sees it, plus ``LABEL_METER``, so that none takes it for a job:
:meth:`.gateway.Names.job_of` gives no job for it, and :meth:`.gateway.Gateway.remove`
removes a volume's meters before the volume.
"""

from __future__ import annotations

import inspect
import logging
from typing import Optional

from .gateway import LABEL_METER, Gateway, Names
from .sandbox import nano_cpus, tree_usage

#: where the meter mounts the job's volume
MOUNT = "/volume"
#: capabilities the meter keeps: reading and searching any directory
CAPS = ["DAC_READ_SEARCH"]
#: the meter's own limits (a walk holds one directory's names, and the paths still to visit:
#: at most the entries' stop)
MEMORY = 64 << 20
CPU = 0.25
PIDS = 8

# argv: interval (s), the walk's stops (bytes, entries: past either it stops; 0: none), lifetime (s)
PROGRAM = "\n".join([
    "import os, sys, time",
    inspect.getsource(tree_usage),
    f"""interval, lifetime = float(sys.argv[1]), float(sys.argv[4])
stop_bytes, stop_entries = int(sys.argv[2]), int(sys.argv[3])
end = time.monotonic() + lifetime
while time.monotonic() < end:
    print(*tree_usage({MOUNT!r}, stop_bytes, stop_entries), flush=True)
    time.sleep(interval)
"""])


class MeterGone(RuntimeError):
    """The meter container ended or was removed while its job still runs."""


class Meter:
    """One job's meter container: started, read and removed from the job's sampler thread (sync)."""

    def __init__(self, gateway: Gateway, names: Names, image: str, job_id: str, user: Optional[str],
                 volume: str, log: Optional[logging.Logger] = None):
        self.gateway = gateway
        self.image = image
        self.volume = volume
        self.name = names.job(job_id)[0] + "-meter"
        self.labels = {**names.job_labels(job_id, user), LABEL_METER: "1"}
        self.log = log or logging.getLogger(__name__)
        self.container_id: Optional[str] = None

    def create_kwargs(self, interval: float, stops: tuple, lifetime: float) -> dict:
        """The ``containers.create()`` keyword arguments of a meter; ``stops``: (bytes, entries)."""
        from docker.types import LogConfig, Mount

        return dict(
            entrypoint=["python3", "-I", "-S", "-c", PROGRAM, repr(float(interval)), *(str(int(s)) for s in stops),
                        repr(float(lifetime))],
            name=self.name, labels=self.labels, detach=True, user="0:0", working_dir="/",
            cap_drop=["ALL"], cap_add=CAPS, security_opt=["no-new-privileges:true"], network_mode="none",
            read_only=True, privileged=False, ipc_mode="private",
            mounts=[Mount(target=MOUNT, source=self.volume, type="volume", read_only=True, no_copy=True)],
            mem_limit=MEMORY, memswap_limit=MEMORY, nano_cpus=nano_cpus(CPU), pids_limit=PIDS,
            log_config=LogConfig(type="json-file", config={"max-size": "1m", "max-file": "1"}),
            auto_remove=True,
        )

    def check(self, attrs: dict) -> list:
        """What the daemon did not keep of a meter's confinement (its inspect), as messages."""
        hc, problems = attrs.get("HostConfig") or {}, []
        for key, wanted in (("ReadonlyRootfs", True), ("NetworkMode", "none"), ("Privileged", False),
                            ("Memory", MEMORY), ("PidsLimit", PIDS), ("NanoCpus", nano_cpus(CPU))):
            if hc.get(key) != wanted:
                problems.append(f"{key} is {hc.get(key)!r}, wanted {wanted!r}")
        if [c.upper().removeprefix("CAP_") for c in hc.get("CapDrop") or []] != ["ALL"]:
            problems.append(f"CapDrop is {hc.get('CapDrop')!r}, wanted ['ALL']")
        if [c.upper().removeprefix("CAP_") for c in hc.get("CapAdd") or []] != CAPS:
            problems.append(f"CapAdd is {hc.get('CapAdd')!r}, wanted {CAPS}")
        if not any(o.startswith("no-new-privileges") and not o.endswith(":false") for o in hc.get("SecurityOpt") or []):
            problems.append(f"SecurityOpt {hc.get('SecurityOpt')!r} lacks no-new-privileges")
        if [(m.get("Type"), m.get("Name"), m.get("RW")) for m in attrs.get("Mounts") or []] != [
                ("volume", self.volume, False)]:
            problems.append(f"Mounts are {attrs.get('Mounts')!r}, wanted the work volume read-only")
        return problems

    def start(self, interval: float, stops: tuple, lifetime: float) -> None:
        """Create the meter (in place of one a restarted service left), check it and start it."""
        self.remove()  # (one a dead service left: same job, same volume)
        container = self.gateway.client.containers.create(self.image, **self.create_kwargs(interval, stops, lifetime))
        self.container_id = container.id
        problems = self.check(container.attrs)
        if problems:
            self.remove()
            raise RuntimeError("refusing to start the work-volume meter: the daemon dropped limits: "
                               + "; ".join(problems))
        self.gateway.api.start(container.id)

    def usage(self) -> Optional[tuple]:
        """The volume's ``(bytes, entries)`` the meter printed last; None before its first. MeterGone once
        it ended."""
        import docker

        try:
            out = self.gateway.api.logs(self.container_id, stdout=True, stderr=False, tail=1)
        except docker.errors.NotFound:  # (it removes itself when it ends)
            raise MeterGone(f"the work-volume meter {self.name} ended") from None
        fields = out.decode("ascii", "replace").split()
        return (int(fields[0]), int(fields[1])) if len(fields) == 2 and all(f.isdigit() for f in fields) else None

    def remove(self) -> None:
        """Remove the meter, and any other of its volume."""
        self.gateway.remove_meters(self.volume)
