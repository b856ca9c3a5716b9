"""A real two-node Docker Swarm on this one machine, for the swarm executor's tests.

Each node is a ``dockerd`` of its own (its own data root, exec root, socket and
containerd) inside a network namespace made here; one veth pair joins the two
namespaces and nothing else, so the swarm's traffic (2377 control, 7946 gossip, 4789
VXLAN) never leaves them. The runner image goes onto each node with ``docker save |
docker load``, as an admin without a registry would. The service under test talks to the
manager's socket, and to the worker's through the worker's node label
(``LABEL_DOCKER_URL``): a unix socket here, a tcp+TLS URL between machines.

Everything lives under ``BASE``; ``TwoNodeSwarm.clean()`` removes what a killed run left
(daemons, their containerd and shims, mounts, namespaces) before a run and after it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from contextlib import closing
from pathlib import Path
from typing import Optional

import docker
import psutil

from hub_service.executors.swarm import LABEL_DOCKER_URL

BASE = Path("/tmp/notebook-jobs-swarm-nodes")
#: the pair's own /30: no other host has these addresses, and no route leads out of the namespaces
ADDRESSES = ("10.231.0.1", "10.231.0.2")
ROLE_LABEL = "notebook-jobs-test.role"
#: the worker's GPUs, as its daemon advertises them (generic resources named by their UUIDs)
GPUS = ("GPU-00000000-fake-0000-0000-000000000000", "GPU-00000000-fake-0000-0000-000000000001")


def problem() -> Optional[str]:
    """Why two nodes cannot be made here, or None."""
    if os.geteuid() != 0:
        return "a second dockerd in a network namespace needs root"
    missing = [tool for tool in ("ip", "nsenter", "dockerd") if shutil.which(tool) is None]
    return f"missing {', '.join(missing)}" if missing else None


def _run(*args: str, timeout: float = 60) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def _kill(procs: list, timeout: float) -> None:
    """SIGKILL the processes, and wait for them to be gone."""
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=timeout)


class Node:
    """One dockerd in its own network namespace."""

    def __init__(self, index: int, *options: str):
        self.index = index
        self.options = options  # more dockerd options
        self.dir = BASE / f"node{index}"
        self.netns = f"nbj-node{index}"
        self.veth = f"nbj-veth{index}"
        self.address = ADDRESSES[index - 1]
        self.socket = self.dir / "docker.sock"
        self.url = f"unix://{self.socket}"
        self.process: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 60) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        log = open(self.dir / "dockerd.log", "ab")
        # nsenter --net only: `ip netns exec` would also remount /sys, and dockerd needs the host's cgroups
        self.process = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.netns}", "dockerd",
             "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
             "--pidfile", str(self.dir / "dockerd.pid"), "-H", self.url,
             "--bridge", "none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
             "--cgroup-parent", f"/notebook-jobs-node{self.index}", *self.options],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd of node {self.index} exited: {self.log_tail()}")
            try:
                with self.client() as c:
                    c.ping()
                return
            except Exception:
                time.sleep(0.2)
        raise RuntimeError(f"dockerd of node {self.index} did not answer within {timeout:.0f} s: {self.log_tail()}")

    def crash(self) -> None:
        """Everything of the node dies at once, as when its machine goes away: the daemon, its
        containerd and shims (their command lines name the node's directory) and the containers'
        processes (in the node's cgroup parent)."""
        here, cgroup = str(self.dir), f"/notebook-jobs-node{self.index}/"
        doomed = []
        for p in psutil.process_iter(["cmdline"]):
            try:
                with open(f"/proc/{p.pid}/cgroup") as f:
                    in_cgroup = cgroup in f.read()
            except OSError:
                continue
            if in_cgroup or any(here in a for a in p.info["cmdline"] or ()):
                doomed.append(p)
        _kill(doomed, timeout=30)
        if self.process is not None:
            self.process.wait(30)

    def client(self) -> "closing[docker.DockerClient]":
        """A client of this daemon, closed at the end of a ``with``."""
        return closing(docker.DockerClient(base_url=self.url, timeout=120))

    def node_id(self) -> str:
        with self.client() as c:
            return c.info()["Swarm"]["NodeID"]

    def log_tail(self) -> str:
        try:
            return (self.dir / "dockerd.log").read_text(errors="replace")[-2000:]
        except OSError:
            return ""


class TwoNodeSwarm:
    """A manager and a worker, each its own daemon, joined into one swarm."""

    def __init__(self):
        # the worker advertises two GPUs, as a GPU node does to Swarm (only the generic resource: no device)
        self.manager, self.worker = Node(1), Node(2, *(f"--node-generic-resource=NVIDIA-GPU={gpu}" for gpu in GPUS))

    def up(self, image: str) -> None:
        self.clean()
        for node in (self.manager, self.worker):
            _run("ip", "netns", "add", node.netns)
        _run("ip", "link", "add", self.manager.veth, "type", "veth", "peer", "name", self.worker.veth)
        for node in (self.manager, self.worker):
            _run("ip", "link", "set", node.veth, "netns", node.netns)
            _run("ip", "-n", node.netns, "addr", "add", f"{node.address}/30", "dev", node.veth)
            _run("ip", "-n", node.netns, "link", "set", "lo", "up")
            _run("ip", "-n", node.netns, "link", "set", node.veth, "up")
            node.start()
        m, w = self.manager, self.worker
        with m.client() as mc, w.client() as wc:
            mc.swarm.init(advertise_addr=m.address, listen_addr=f"{m.address}:2377")
            token = mc.swarm.attrs["JoinTokens"]["Worker"]
            wc.swarm.join([f"{m.address}:2377"], token, advertise_addr=w.address, listen_addr=f"{w.address}:2377")
        subprocess.run(["bash", "-o", "pipefail", "-c",
                        'docker save "$0" | tee >(docker -H "$1" load -q >/dev/null) | docker -H "$2" load -q >/dev/null',
                        image, m.url, w.url], check=True, capture_output=True, timeout=600)
        self.label(w.node_id(), {ROLE_LABEL: "worker", LABEL_DOCKER_URL: w.url, "gpu": "true"})
        self.label(m.node_id(), {ROLE_LABEL: "manager"})
        self.wait_ready()

    def label(self, node_id: str, add: dict, remove: tuple = ()) -> None:
        """Set (and remove) labels on a node, through the manager."""
        with self.manager.client() as c:
            node = c.nodes.get(node_id)
            spec = node.attrs["Spec"]
            labels = {**(spec.get("Labels") or {}), **add}
            for key in remove:
                labels.pop(key, None)
            spec["Labels"] = labels
            node.update(spec)

    def wait_ready(self, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.manager.client() as c:
                states = [n.attrs["Status"]["State"] for n in c.nodes.list()]
            if states == ["ready", "ready"]:
                return
            time.sleep(0.5)
        raise RuntimeError(f"the swarm's nodes are {states}, not both ready")

    def down(self) -> None:
        self.clean()

    @staticmethod
    def clean() -> None:
        """Stop every daemon (and its containerd, shims and containers) under BASE, unmount and
        remove it, and delete the namespaces: what this module made, or a killed run left."""
        base = str(BASE)
        procs = [p for p in psutil.process_iter(["cmdline"]) if any(base in a for a in p.info["cmdline"] or ())]
        daemons = [p for p in procs if (p.info["cmdline"] or [""])[0].endswith("dockerd")]
        for p in daemons:  # (SIGTERM: the daemon stops its containers and unmounts)
            p.send_signal(signal.SIGTERM)
        psutil.wait_procs(daemons, timeout=30)
        _kill(procs, timeout=10)
        with open("/proc/mounts") as f:
            mounts = [line.split()[1] for line in f if line.split()[1].startswith(base)]
        for mountpoint in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mountpoint], capture_output=True)
        for index in (1, 2):
            subprocess.run(["ip", "netns", "del", f"nbj-node{index}"], capture_output=True)
        subprocess.run(["ip", "link", "del", "nbj-veth1"], capture_output=True)  # (if it never moved)
        shutil.rmtree(BASE, ignore_errors=True)
