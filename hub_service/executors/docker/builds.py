"""Derived images: a job's own requirements installed on top of its environment's image.

Wheels only, and no package code on the host: the host downloads the wheels (with their
dependencies) with ``pip download --only-binary=:all:`` for the images' Python and
platform, from the index pip is configured with (or ``index_url``); a build container of
the base image, with no network and the jobs' sandbox otherwise, installs them with
``pip install --no-index --find-links`` from a volume, and is committed as
``notebook-jobs-env:<key>``, where the key is sha256(base image id + the normal form of
the requirements). Nothing else is ever pulled or built.

One build per key at a time: a burst of jobs with the same requirements waits on the
first one's build and then runs in its image, as does any later job (the image is
shared across users and schedules). A user has at most ``builds_per_user`` builds at
once; each is bounded in time and in size; past ``cache_budget`` the least recently used
derived images are removed. A build that fails leaves nothing behind -- its container,
volume, directory and any image it committed are removed -- and says why in one line of
pip's own words, the whole output in the job's log.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import Callable, Optional

from traitlets import Float, Integer, List, Unicode
from traitlets.config import LoggingConfigurable

from ..base import JobSpec
from .gateway import LABEL_PREFIX, Gateway
from .sandbox import Sandbox

#: derived images: the repository they are tagged in, and their labels
REPOSITORY = "notebook-jobs-env"
LABEL_ENV_KEY = f"{LABEL_PREFIX}.env-key"
LABEL_ENV_BASE = f"{LABEL_PREFIX}.env-base"
#: where a build container sees its wheels
WHEELS = "/wheels"


class BuildFailed(Exception):
    """A job's requirements could not be resolved or installed: ``message`` in one line, for the job's error."""

    def __init__(self, message: str, record: dict):
        super().__init__(message)
        self.message, self.record = message, record


def cache_key(base_id: str, requirements) -> str:
    """The key a derived image is cached by: its base image's id and its requirements' normal form."""
    return hashlib.sha256((base_id + "\n" + "\n".join(requirements)).encode()).hexdigest()


def _relay(on_log, text: str) -> None:
    """Hand ``text`` to a job's log callback (sync or async), on the event loop."""
    said = on_log(text)
    if hasattr(said, "__await__"):
        asyncio.ensure_future(said)


def pip_says(output: str, fallback: str) -> str:
    """pip's own reason, in one line: its last ``ERROR:`` line (else its last line, else ``fallback``)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    said = (errors or lines or [fallback])[-1]
    return said[:500]


class EnvironmentBuilder(LoggingConfigurable):
    """Builds, caches and evicts the derived images of jobs that bring their own requirements."""

    index_url = Unicode(
        "",
        help="""Package index the wheels of a job's requirements are downloaded from (pip's
        --index-url). Empty: the index (and find-links) pip on the service's host is configured
        with.""",
    ).tag(config=True)

    platforms = List(
        Unicode(),
        # pip matches a platform tag as it is written: every manylinux up to glibc 2.36, each by both its names
        [f"manylinux_2_{v}_x86_64" for v in range(36, 4, -1)]
        + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"],
        help="""Platform tags of the wheels downloaded for a derived image: those the runner images
        (Debian bookworm's glibc 2.36, x86-64) can load.""",
    ).tag(config=True)

    python_version = Unicode("3.11", help="Python version of the wheels (the runner images' Python).").tag(config=True)

    build_timeout = Float(
        600.0, help="Seconds a build (download, install and commit) may take; a longer one fails the job.",
    ).tag(config=True)

    max_download_size = Integer(
        1 << 30, help="Most bytes of wheels one build may download.",
    ).tag(config=True)

    max_image_size = Integer(
        2 << 30, help="Most bytes a derived image may add to its environment's image.",
    ).tag(config=True)

    cache_budget = Integer(
        20 << 30,
        help="""Bytes all derived images may add to their bases together; past it the least
        recently used are removed (an image a container still uses stays).""",
    ).tag(config=True)

    builds_per_user = Integer(
        2, help="Builds one user may have running at once; more wait (their jobs say 'building environment').",
    ).tag(config=True)

    build_memory = Integer(1 << 30, help="Memory limit (bytes) of a build container.").tag(config=True)
    build_cpu = Float(1.0, help="cpu limit of a build container.").tag(config=True)

    def __init__(self, gateway: Gateway, sandbox: Callable[[], Sandbox], prefix: Callable[[], str], **kwargs):
        super().__init__(**kwargs)
        #: ``prefix()``: the start of this instance's build containers' and volumes' names. They are found by
        #: it, never by labels: a committed image keeps its build container's labels, and every job container
        #: of the image would carry them.
        self._gateway, self._sandbox, self._prefix = gateway, sandbox, prefix
        self._building: dict = {}  # key -> the future of its one build
        self._per_user: dict = {}  # user -> semaphore of their builds
        self._used: dict = {}  # key -> when a job last took its image (epoch seconds): the LRU order
        self._sizes: dict = {}  # key -> bytes its image adds to its base

    # --- what the executor asks -------------------------------------------------------------
    async def image_for(self, spec: JobSpec, base: str, on_log, on_record) -> str:
        """The derived image of ``spec.requirements`` on ``base``: cached, built by another job now, or built
        here. ``on_record(record)`` hears the build's record as it goes (status building, then ready);
        raises :class:`BuildFailed`."""
        gw = self._gateway
        base_id = (await gw.call(gw.client.images.get, base)).id
        key = cache_key(base_id, spec.requirements)
        tag = f"{REPOSITORY}:{key}"
        record = {"requirements": list(spec.requirements), "key": key, "image": tag, "base": base}
        started = time.monotonic()
        if await gw.call(self._exists, tag):
            self._used[key] = time.time()
            on_record(dict(record, status="ready", cached=True, seconds=0.0))
            return tag
        on_record(dict(record, status="building", cached=False))
        shared = key in self._building
        if not shared:
            self._building[key] = asyncio.ensure_future(self._build_once(spec, base, base_id, key, tag, on_log))
            self._building[key].add_done_callback(lambda _f: self._building.pop(key, None))
        try:
            built = await asyncio.shield(self._building[key])
        except BuildFailed as e:
            raise BuildFailed(e.message, dict(record, **e.record, status="failed", cached=False)) from None
        self._used[key] = time.time()
        if shared:  # another job's build: this job waited, but built nothing
            on_record(dict(record, status="ready", cached=True, seconds=0.0,
                           waited=round(time.monotonic() - started, 3)))
        else:
            on_record(dict(record, **built, status="ready", cached=False))
        return tag

    def _exists(self, tag: str) -> bool:
        import docker

        try:
            self._gateway.client.images.get(tag)
            return True
        except docker.errors.ImageNotFound:
            return False

    # --- one build ------------------------------------------------------------------------
    async def _build_once(self, spec: JobSpec, base: str, base_id: str, key: str, tag: str, on_log) -> dict:
        """Build ``tag`` within the user's limit and the time limit; the record of how it went."""
        gate = self._per_user.setdefault(spec.user, asyncio.Semaphore(max(1, self.builds_per_user)))
        async with gate:
            workdir = Path(tempfile.mkdtemp(prefix="notebook-jobs-build-"))
            phases: dict = {}
            try:
                return await asyncio.wait_for(
                    self._build(spec, base, base_id, key, tag, workdir, phases, on_log), self.build_timeout)
            except asyncio.TimeoutError:
                await self._gateway.call(self._remove_image, tag)  # (in case it struck while committing)
                raise BuildFailed(f"building the environment took longer than {self.build_timeout:.0f} s",
                                  {"phases": phases}) from None
            finally:
                shutil.rmtree(workdir, ignore_errors=True)

    async def _build(self, spec, base, base_id, key, tag, workdir: Path, phases: dict, on_log) -> dict:
        wheels = workdir / "wheels"
        wheels.mkdir()
        (wheels / "requirements.txt").write_text("\n".join(spec.requirements) + "\n")
        clock = time.monotonic()
        await self._download(wheels, on_log, phases)
        phases["download"] = round(time.monotonic() - clock, 3)
        gw = self._gateway
        container = volume = None
        # (a thread the time limit cannot stop: were it cancelled mid-way, what it makes must still go)
        created = asyncio.ensure_future(gw.call(self._create, base, key, wheels))
        try:
            clock = time.monotonic()
            container, volume = await asyncio.shield(created)
            code, output = await gw.call(self._install, container, asyncio.get_running_loop(), on_log)
            phases["install"] = round(time.monotonic() - clock, 3)
            if code != 0:
                raise BuildFailed(pip_says(output, f"pip install exited with code {code}"), {"phases": phases})
            clock = time.monotonic()
            added = await gw.call(self._commit, container, base, base_id, key, tag)
            phases["commit"] = round(time.monotonic() - clock, 3)
        finally:  # (also when the time limit cancels the build: its container and volume go, then the image)
            if container is None:
                try:  # (made after the time limit struck, or not at all: _create removes what it made on a failure)
                    container, volume = await asyncio.shield(created)
                except Exception:
                    pass
            if container is not None or volume is not None:
                await asyncio.shield(gw.call(self._remove, container, volume))
        if added > self.max_image_size:
            await gw.call(self._remove_image, tag)
            raise BuildFailed(f"the requirements add {added >> 20} MiB to the environment, more than its limit of "
                              f"{self.max_image_size >> 20} MiB", {"phases": phases, "size": added})
        await gw.call(self._evict, key)
        wheel_count = len(list(wheels.glob("*.whl")))
        _relay(on_log, f"notebook-jobs: environment built ({wheel_count} wheels, {added >> 10} KiB) as {tag}\n")
        return {"phases": phases, "size": added, "wheels": wheel_count, "seconds": round(sum(phases.values()), 3)}

    async def _download(self, wheels: Path, on_log, phases: dict) -> None:
        """``pip download`` the wheels (and pip's own, which installs them) on the host; no sdist is taken."""
        requirements = wheels / "requirements.txt"
        platforms = [arg for platform in self.platforms for arg in ("--platform", platform)]
        cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", *platforms,
               "--python-version", self.python_version, "--implementation", "cp",
               "--abi", "cp" + self.python_version.replace(".", ""), "--abi", "abi3", "--abi", "none",
               "--dest", str(wheels),
               "--no-input", "--progress-bar", "off", "--disable-pip-version-check",
               "-r", str(requirements), "pip"]
        if self.index_url:
            cmd[4:4] = ["--index-url", self.index_url]
        _relay(on_log, f"notebook-jobs: pip download --only-binary=:all: (CPython {self.python_version}, "
                       f"{self.platforms[0]} and older) of {'; '.join(requirements.read_text().splitlines())}\n")
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT, stdin=asyncio.subprocess.DEVNULL)
        lines = []
        try:
            async for raw in proc.stdout:
                line = raw.decode("utf-8", "replace")
                lines.append(line)
                _relay(on_log, line)
            code = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if code != 0:
            raise BuildFailed(pip_says("".join(lines), f"pip download exited with code {code}"), {"phases": phases})
        size = sum(p.stat().st_size for p in wheels.iterdir())
        if size > self.max_download_size:
            raise BuildFailed(f"the requirements' wheels are {size >> 20} MiB, more than the limit of "
                              f"{self.max_download_size >> 20} MiB", {"phases": phases})

    # --- sync parts (through the gateway's threads) ------------------------------------------
    def _create(self, base: str, key: str, wheels: Path):
        """A build container of ``base`` with the wheels in a volume at /wheels: the jobs' sandbox, but for
        root (it writes the image's environment) and a writable root file system (which is what is kept)."""
        from docker.types import Mount

        client = self._gateway.client
        image = client.images.get(base)
        python = ((image.attrs.get("Config") or {}).get("Entrypoint") or ["python3"])[0]
        labels = {LABEL_ENV_KEY: key}
        name = self._prefix() + uuid.uuid4().hex[:12]  # (no two builds meet, of one key or not)
        volume = client.volumes.create(name=name, labels=labels).name
        limits = JobSpec(job_id=key, workdir=Path(WHEELS), cpu=self.build_cpu, memory=self.build_memory)
        kw = self._sandbox().create_kwargs(limits, volume)
        kw.update(user="0:0", read_only=False, mounts=[Mount(target=WHEELS, source=volume, type="volume")])
        pip = next(p.name for p in wheels.glob("pip-*.whl"))
        try:
            container = client.containers.create(
                base, entrypoint=[python], name=name, labels=labels, detach=True, working_dir="/",
                command=[f"{WHEELS}/{pip}/pip", "install", "--no-index", "--find-links", WHEELS, "--no-cache-dir",
                         "--disable-pip-version-check", "--no-warn-script-location", "--progress-bar", "off",
                         "-r", f"{WHEELS}/requirements.txt"],
                **kw)
        except Exception:
            self._remove(None, volume)
            raise
        problems = self._sandbox().check(limits, container.attrs, skip=frozenset({"ReadonlyRootfs", "User"}))
        if problems:
            self._remove(container.id, volume)
            raise RuntimeError("refusing to build: the daemon dropped limits: " + "; ".join(problems))
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path in sorted(wheels.iterdir()):
                tar.add(path, arcname=path.name)
        container.put_archive(WHEELS, buf.getvalue())
        return container.id, volume

    def _install(self, container_id: str, loop, on_log):
        """Start the build container and pass its output on; (exit code, output) once it ends."""
        api = self._gateway.api
        api.start(container_id)
        out = []
        for chunk in api.logs(container_id, stream=True, follow=True):
            text = chunk.decode("utf-8", "replace")
            out.append(text)
            loop.call_soon_threadsafe(_relay, on_log, text)
        code = api.wait(container_id, timeout=int(self.build_timeout) + 30).get("StatusCode")
        return code, "".join(out)

    def _commit(self, container_id: str, base: str, base_id: str, key: str, tag: str) -> int:
        """Commit the build container as ``tag``, with its base's configuration; the bytes it adds."""
        api = self._gateway.api
        config = api.inspect_image(base)["Config"] or {}
        base_size = api.inspect_image(base)["Size"]
        labels = dict(config.get("Labels") or {}, **{LABEL_ENV_KEY: key, LABEL_ENV_BASE: base_id})
        conf = {"User": config.get("User") or "", "Entrypoint": config.get("Entrypoint"),
                "Cmd": config.get("Cmd") or [], "Env": config.get("Env"), "WorkingDir": config.get("WorkingDir"),
                "Labels": labels}
        image_id = api.commit(container_id, repository=REPOSITORY, tag=key, conf=conf)["Id"]
        added = self._sizes[key] = max(0, api.inspect_image(image_id)["Size"] - base_size)
        return added

    def _remove(self, container_id: Optional[str], volume: Optional[str]) -> None:
        """Remove a build's container and volume; a daemon busy with the container's file system (a removal
        of a just-committed container can fail so, for a moment) is asked again."""
        import docker

        api = self._gateway.api
        for remove, target in ((lambda t: api.remove_container(t, force=True), container_id),
                               (lambda t: api.remove_volume(t, force=True), volume)):
            for attempt in range(5) if target else ():
                try:
                    remove(target)
                    break
                except docker.errors.NotFound:
                    break
                except docker.errors.APIError as e:
                    if attempt == 4:
                        self.log.warning("build: could not remove %s: %s", target, e)
                    time.sleep(0.5)

    def _remove_image(self, tag: str) -> bool:
        """Remove a derived image; False when a container still uses it (or it is gone)."""
        import docker

        try:
            self._gateway.api.remove_image(tag, noprune=False)
            return True
        except docker.errors.APIError as e:
            self.log.debug("build: image %s kept: %s", tag, e)
            return False

    def _evict(self, keep: str) -> None:
        """Remove the least recently used derived images while all of them add more than ``cache_budget``."""
        api = self._gateway.api
        sizes = {}
        for image in api.images(filters={"label": LABEL_ENV_KEY}):
            labels = image.get("Labels") or {}
            key = labels[LABEL_ENV_KEY]
            if key not in self._sizes:  # (built by an earlier run of the service)
                try:
                    self._sizes[key] = max(0, image["Size"] - api.inspect_image(labels.get(LABEL_ENV_BASE))["Size"])
                except Exception:
                    self._sizes[key] = image.get("Size", 0)
            sizes[key] = self._sizes[key]
            self._used.setdefault(key, image.get("Created", 0))
        total = sum(sizes.values())
        for key in sorted(sizes, key=lambda k: self._used[k]):
            if total <= self.cache_budget:
                break
            if key != keep and self._remove_image(f"{REPOSITORY}:{key}"):
                total -= sizes[key]
                self._used.pop(key, None)
                self.log.info("build: evicted the derived image %s (least recently used)", key)

    def leftovers(self) -> tuple:
        """(container ids, volume names) of this instance's builds on the daemon (sync)."""
        api, prefix = self._gateway.api, self._prefix()
        containers = [c["Id"] for c in api.containers(all=True, filters={"name": prefix})
                      if any(n.lstrip("/").startswith(prefix) for n in c.get("Names") or [])]
        volumes = [v["Name"] for v in (api.volumes(filters={"name": prefix}) or {}).get("Volumes") or []
                   if v["Name"].startswith(prefix)]
        return containers, volumes

    def sweep(self) -> None:
        """Remove build containers and volumes a service that died mid-build left (sync)."""
        containers, volumes = self.leftovers()
        for container in containers:
            self._remove(container, None)
        for volume in volumes:
            self._remove(None, volume)
