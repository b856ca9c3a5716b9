"""The sandbox as data: the container a job gets, and the check of what the daemon kept.

Pure: nothing here talks to a daemon, so both halves are tested without one
(``tests/test_docker_units.py``). The daemon silently drops limits the kernel cannot
enforce, so every container's ``HostConfig`` is read back before it starts and compared
with :meth:`Sandbox.check`: a job runs with all of its limits or not at all.
The rules, for users, are README.md's *The sandbox*.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

from ..base import JobSpec


@dataclass(frozen=True)
class Sandbox:
    """The limits every job container gets (from the executor's traits)."""

    user: str = "1000:1000"
    network: str = "none"
    runtime: str = ""
    workdir: str = "/work/job"
    tmpfs_size: int = 256 << 20
    pids_limit: int = 256
    nofile: int = 1024
    fsize: int = 1 << 30
    log_max_size: str = "10m"
    gpu_driver: str = "nvidia"
    cpu_burst: float = 0.0  # cores a job's start-up may use beyond its allocation (0: none)

    @property
    def uid_gid(self) -> tuple:
        """(uid, gid) the job runs as: the owner of its inputs."""
        uid, _, gid = self.user.partition(":")
        return int(uid), int(gid or uid)

    def start_cpu(self, spec: JobSpec) -> float:
        """The job's cpu limit until its first cell (the executor then lowers it to the allocation):
        the start-up of its runner and kernel may use an idle core, as a Kubernetes limit above its
        request does, while its weight (:func:`cpu_shares`) still gives it only its allocation's
        part of a contended one."""
        return max(spec.cpu, self.cpu_burst)

    def create_kwargs(self, spec: JobSpec, volume: Optional[str], cgroup_parent: Optional[str] = None,
                      volume_labels: Optional[dict] = None) -> dict:
        """The ``containers.create()`` keyword arguments that make the sandbox. ``volume_labels``: the work
        volume's, when the container's creation creates it (the daemon makes a named volume that is not
        there yet, with the mount's labels: no volume create of its own)."""
        from docker.types import DeviceRequest, LogConfig, Mount, Ulimit

        kw = dict(
            user=self.user,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            network_mode=self.network,
            read_only=True,
            # exec stays allowed: the work volume allows it anyway, and libraries
            # that compile (numba, cffi) put their objects in /tmp.
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={self.tmpfs_size},mode=1777"},
            # (no volume: a throwaway container of the service's own, e.g. reading an image's packages)
            mounts=([Mount(target=self.workdir, source=volume, type="volume", labels=volume_labels)]
                    if volume else []),
            mem_limit=int(spec.memory),
            memswap_limit=int(spec.memory),
            nano_cpus=nano_cpus(self.start_cpu(spec)),
            pids_limit=self.pids_limit,
            ulimits=[
                Ulimit(name="nofile", soft=self.nofile, hard=self.nofile),
                Ulimit(name="fsize", soft=self.fsize, hard=self.fsize),
            ],
            log_config=LogConfig(type="json-file", config={"max-size": self.log_max_size, "max-file": "1"}),
            privileged=False,
            ipc_mode="private",
            init=False,
        )
        if self.runtime:
            kw["runtime"] = self.runtime
        if cgroup_parent:
            kw["cgroup_parent"] = cgroup_parent
        if spec.gpu_devices:
            kw["device_requests"] = [DeviceRequest(driver=self.gpu_driver, device_ids=gpu_ids(spec),
                                                   capabilities=[["gpu"]])]
            kw["environment"] = gpu_environment(spec)
        elif spec.gpu:  # (a swarm's: Swarm picks the devices, from the nodes' generic resources)
            kw["device_requests"] = [DeviceRequest(driver=self.gpu_driver, count=int(spec.gpu),
                                                   capabilities=[["gpu"]])]
        return kw

    def check(self, spec: JobSpec, attrs: dict, skip: frozenset = frozenset()) -> list:
        """Limits the daemon did not apply as asked (a container's inspect), as messages.

        ``skip`` names checks the caller makes itself, in another form (``HostConfig`` keys,
        and ``Mounts``): the swarm executor's task containers get ``/tmp`` as a tmpfs mount
        and their own network, and Swarm sets their swap itself.
        """
        hc = attrs.get("HostConfig") or {}
        problems = []

        def add(key, message):
            if key not in skip:
                problems.append(message)

        def want(key, expected, actual=None):
            actual = hc.get(key) if actual is None else actual
            if actual != expected:
                add(key, f"{key} is {actual!r}, wanted {expected!r}")

        want("Memory", int(spec.memory))
        want("MemorySwap", int(spec.memory))
        # (between the allocation and the start-up's limit: a container is checked before and after
        # its limit is lowered at its first cell)
        cpus, least, most = hc.get("NanoCpus"), nano_cpus(spec.cpu), nano_cpus(self.start_cpu(spec))
        if not isinstance(cpus, int) or not least <= cpus <= most:
            add("NanoCpus", f"NanoCpus is {cpus!r}, wanted {most!r}"
                            + (f" (or down to {least!r})" if least < most else ""))
        want("PidsLimit", self.pids_limit)
        want("ReadonlyRootfs", True)
        want("Privileged", False)
        want("NetworkMode", self.network)
        if [c.upper().removeprefix("CAP_") for c in hc.get("CapDrop") or []] != ["ALL"]:
            add("CapDrop", f"CapDrop is {hc.get('CapDrop')!r}, wanted ['ALL']")
        if hc.get("CapAdd"):
            add("CapAdd", f"CapAdd is {hc.get('CapAdd')!r}, wanted none")
        if not any(o.startswith("no-new-privileges") and not o.endswith(":false") for o in hc.get("SecurityOpt") or []):
            add("SecurityOpt", f"SecurityOpt {hc.get('SecurityOpt')!r} lacks no-new-privileges")
        ulimits = {u["Name"]: (u["Soft"], u["Hard"]) for u in hc.get("Ulimits") or []}
        for name, value in (("nofile", self.nofile), ("fsize", self.fsize)):
            if ulimits.get(name) != (value, value):
                add("Ulimits", f"ulimit {name} is {ulimits.get(name)!r}, wanted {(value, value)!r}")
        if "/tmp" not in (hc.get("Tmpfs") or {}) or f"size={self.tmpfs_size}" not in hc["Tmpfs"]["/tmp"]:
            add("Tmpfs", f"Tmpfs is {hc.get('Tmpfs')!r}, wanted a sized /tmp")
        log = hc.get("LogConfig") or {}
        if log.get("Type") != "json-file" or (log.get("Config") or {}).get("max-size") != self.log_max_size:
            add("LogConfig", f"LogConfig is {log!r}, wanted json-file with max-size {self.log_max_size}")
        if hc.get("Binds"):
            add("Binds", f"Binds is {hc['Binds']!r}, wanted none")
        for m in hc.get("Mounts") or []:
            if m.get("Type") != "volume":
                add("Mounts", f"mount of type {m.get('Type')} at {m.get('Target')}, only volumes allowed")
        for m in attrs.get("Mounts") or []:
            if m.get("Type") == "bind":
                add("Binds", f"bind mount {m.get('Source')} at {m.get('Destination')}")
        if self.runtime:
            want("Runtime", self.runtime)
        if spec.gpu and not hc.get("DeviceRequests"):
            add("DeviceRequests", "DeviceRequests dropped, wanted a GPU")
        if spec.gpu_devices:
            got = [(r.get("Driver"), r.get("DeviceIDs"), r.get("Count") or 0, r.get("Capabilities"))
                   for r in hc.get("DeviceRequests") or []]
            if got != [(self.gpu_driver, gpu_ids(spec), 0, [["gpu"]])]:
                add("DeviceRequests", f"DeviceRequests are {hc.get('DeviceRequests')!r}, wanted the GPUs "
                                      f"{gpu_ids(spec)} only")
            env = set((attrs.get("Config") or {}).get("Env") or [])
            for name, value in gpu_environment(spec).items():
                if f"{name}={value}" not in env:
                    add("Env", f"{name} is not {value!r}")
        elif hc.get("DeviceRequests") and not spec.gpu:
            add("DeviceRequests", f"DeviceRequests are {hc['DeviceRequests']!r}, wanted none")
        if (attrs.get("Config") or {}).get("User") != self.user:
            add("User", f"User is {(attrs.get('Config') or {}).get('User')!r}, wanted {self.user!r}")
        return problems


def gpu_ids(spec: JobSpec) -> list:
    """The job's GPUs as a device request names them: the host's NVML indices."""
    return [str(index) for index in spec.gpu_devices]


def gpu_environment(spec: JobSpec) -> dict:
    """What tells the job's CUDA and the NVIDIA runtime which GPUs are its own.

    The container sees only its own GPUs, numbered from 0 (CUDA counts the devices it can
    open), so ``CUDA_VISIBLE_DEVICES`` lists 0..n-1; ``NVIDIA_VISIBLE_DEVICES`` is read by
    the NVIDIA runtime on the host, so it names the host's indices, the same as the request.
    """
    return {"CUDA_VISIBLE_DEVICES": ",".join(str(i) for i in range(len(spec.gpu_devices))),
            "NVIDIA_VISIBLE_DEVICES": ",".join(gpu_ids(spec))}


def nano_cpus(cpu: float) -> int:
    """A cpu limit in cores as Docker's NanoCpus."""
    return int(round(cpu * 1e9))


def cpu_shares(cpu: float) -> int:
    """A job's cpu weight from its allocation in cores, as Kubernetes makes one from a request: cgroup v1
    cpu.shares, 1024 a core (never below the kernel's least, 2). Under contention the jobs split the
    cores in proportion to it, so each gets at least its allocation when the dispatcher gave out no
    more cores than there are."""
    return max(2, int(round(cpu * 1024)))


def tree_usage(top: str, stop_bytes: int, stop_entries: int = 0) -> tuple:
    """``(bytes, entries)`` used under a directory: its allocated blocks, and how many files,
    directories and links it holds. The walk stops early once either passes its stop (a stop
    of 0: no stop), so its count is then only known to be past it.

    The measure of the work quotas: the daemon cannot limit a volume's size, so the executor
    measures the job's work volume where this host can read it. The entries count because
    each takes one of the filesystem's inodes, which no byte count sees: a job writing
    millions of empty files would run the host's volumes out of inodes within its bytes.
    Stopping at the entries' stop also bounds the walk's own memory (the directories still
    to visit) however large the tree is.
    """
    total = entries = 0
    stack = [top]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += st.st_blocks * 512
                    entries += 1
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    if (stop_bytes and total > stop_bytes) or (stop_entries and entries > stop_entries):
                        return total, entries
        except OSError:
            continue
    return total, entries
