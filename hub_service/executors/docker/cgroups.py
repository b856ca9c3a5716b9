"""Per-job cgroups: exact usage of a job, and its cpu weight, from the host's cgroup tree.

Each container is placed under a per-job parent cgroup (``cgroup_parent``): the runtime
removes the container's own cgroup at exit, but the parent keeps the totals of its
child, so even a job that ended while the service was down reports exact peak memory
and cpu time. Both layouts are read: v1 (one tree per controller) and v2 (one tree).
Where the tree is not readable here (remote daemon, systemd driver) every method finds
nothing and the executor samples ``docker stats`` instead. Only empty directories are
ever removed (``rmdir``), so a cgroup that is not ours cannot be harmed.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Iterable, Optional

from .gateway import LABEL_JOB, LABEL_WARM, Names, safe_name


def _read_int(path: Path) -> Optional[int]:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _weight(shares: int) -> int:
    """cgroup v1 cpu.shares (1024: one process's weight) as v2 cpu.weight (100)."""
    return max(1, min(10000, round(shares * 100 / 1024)))


class Cgroups:
    """The per-job cgroups under ``root`` of one service instance."""

    def __init__(self, root: str, names: Names, log: Optional[logging.Logger] = None):
        self.root = Path(root)
        self.names = names
        self.log = log or logging.getLogger(__name__)

    def dir(self, controller: str, key: str) -> Optional[Path]:
        """The job's parent cgroup for a v1 controller (or the v2 tree), if readable here."""
        parent = self.names.job_cgroup(key)
        if not parent:
            return None
        for base in (self.root / controller, self.root):
            path = base / parent.strip("/")
            if path.is_dir():
                return path
        return None

    def usage(self, key: str) -> dict:
        """Peak memory and cpu seconds of the job's parent cgroup (v1 or v2)."""
        out = {}
        mem = self.dir("memory", key)
        if mem is not None:
            for name in ("memory.max_usage_in_bytes", "memory.peak"):
                value = _read_int(mem / name)
                if value is not None:
                    out["peak_memory"] = value
                    break
        cpu = self.dir("cpuacct", key)
        if cpu is not None:
            value = _read_int(cpu / "cpuacct.usage")
            if value is not None:
                out["cpu_seconds"] = value / 1e9
            else:
                try:
                    for line in (cpu / "cpu.stat").read_text().splitlines():
                        if line.startswith("usage_usec "):
                            out["cpu_seconds"] = int(line.split()[1]) / 1e6
                except OSError:
                    pass
        return out

    def cpu_tree(self) -> Optional[tuple]:
        """Where cpu weights are written here: ``(base, file, convert)`` -- v1's cpu tree and ``cpu.shares``
        as given, or v2's one tree and ``cpu.weight`` (:func:`_weight`) -- or None without a cpu controller."""
        if (self.root / "cpu" / "cpu.shares").exists():  # v1
            return self.root / "cpu", "cpu.shares", int
        try:  # v2: the controller must be enabled for the tree's children
            if "cpu" in (self.root / "cgroup.controllers").read_text().split():
                return self.root, "cpu.weight", _weight
        except OSError:
            pass
        return None

    def set_shares(self, key: str, shares: int) -> None:
        """Set the cpu weight of a per-job cgroup (v1 cpu.shares, v2 cpu.weight); best effort."""
        tree, parent = self.cpu_tree(), self.names.job_cgroup(key)
        if tree is None or not parent:
            return
        base, fname, convert = tree
        path = base / parent.strip("/") / fname
        try:
            path.write_text(str(convert(shares)))
        except OSError as e:  # (the job's cgroup is gone, or not ours to write)
            self.log.debug("cgroup %s: cannot write: %s", path, e)

    def weighable(self) -> bool:
        """Whether each job's cpu weight can be set here (:meth:`set_shares`): a cpu controller this
        process may write, for per-job cgroups (not so under a read-only mount of the tree)."""
        tree = self.cpu_tree() if self.names.cgroup_parent else None
        return tree is not None and os.access(tree[0], os.W_OK)

    def set_group_shares(self, shares: int) -> None:
        """Give the group of all jobs (``cgroup_parent``) its cpu weight; best effort. Each level of its path
        gets it: only the top one weighs against the host's other processes."""
        tree = self.cpu_tree()
        if tree is None:
            return
        base, fname, convert = tree
        parts = Path(self.names.cgroup_parent.strip("/")).parts
        try:
            for depth in range(1, len(parts) + 1):
                level = base.joinpath(*parts[:depth])
                if base != self.root:  # v1: runc would create it with the first job; so may we
                    level.mkdir(exist_ok=True)
                (level / fname).write_text(str(convert(shares)))
        except OSError as e:
            self.log.warning("docker executor: cannot set %s of %s: %s", fname, base.joinpath(*parts), e)

    def reset_peak(self, key: str) -> None:
        """Start the cgroup's memory peak afresh (cgroup v1; v2 cannot)."""
        mem = self.dir("memory", key)
        if mem is not None:
            try:
                (mem / "memory.max_usage_in_bytes").write_text("0")
            except OSError:
                pass

    def _bases(self) -> list:
        return [p for p in self.root.iterdir() if p.is_dir()] + [self.root]

    def cleanup(self, key: str) -> None:
        """Remove the job's (now empty) parent cgroups; harmless when they are not ours."""
        parent = self.names.job_cgroup(key)
        if not parent:
            return
        try:
            pending = [base / parent.strip("/") for base in self._bases()]
        except OSError:
            return
        # Only empty cgroup directories can go (rmdir, never rm -r); the kernel may
        # answer EBUSY for a moment while it tears down the container's child cgroup.
        for attempt in range(20):
            left = []
            for path in pending:
                if not path.is_dir():
                    continue
                for sub in sorted(path.glob("*/"), reverse=True):
                    try:
                        sub.rmdir()
                    except OSError:
                        pass
                try:
                    path.rmdir()
                except OSError:
                    left.append(path)
            if not left:
                return
            pending = left
            time.sleep(0.05 * (attempt + 1))
        self.log.debug("job %s: cgroups left behind: %s", key, pending)

    def sweep(self, alive: Iterable[str]) -> None:
        """Remove empty per-job cgroups whose key is not in ``alive`` (keys with containers)."""
        if not self.names.cgroup_parent:
            return
        alive = set(alive)
        try:
            for base in self._bases():
                top = base / self.names.cgroup_parent.strip("/")
                if top.is_dir():
                    for path in top.iterdir():
                        if path.is_dir() and path.name not in alive:
                            try:
                                path.rmdir()
                            except OSError:
                                pass
        except Exception as e:  # housekeeping only
            self.log.debug("cgroup sweep: %s", e)

    def sweep_gone(self, api) -> None:
        """Remove empty per-job cgroups of jobs that no longer have a container (sync)."""
        if not self.names.cgroup_parent:
            return
        try:
            alive = {safe_name(c["Labels"].get(LABEL_JOB, ""))
                     for c in api.containers(all=True, filters={"label": LABEL_JOB})}
            alive |= {c["Labels"].get(LABEL_WARM, "")
                      for c in api.containers(all=True, filters={"label": LABEL_WARM})}
        except Exception as e:  # housekeeping only
            self.log.debug("cgroup sweep: %s", e)
            return
        self.sweep(alive)
