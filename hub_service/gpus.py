"""The host's GPUs: which there are (NVML, read once at start) and which running job holds which.

Who holds a GPU is never kept here: it is derived each time from the running jobs'
``allocated["gpu_devices"]`` (NVML indices), which the dispatcher stores on a job before
its container is made. So after a restart the holders are the store's running jobs, and
recovery cannot hand a GPU that a reattached job still holds to another one.

Without NVML (no NVIDIA driver: ``libnvidia-ml.so.1`` missing) the inventory is empty
and the backend offers no GPU; the log says why, once.
"""

from __future__ import annotations

import ctypes
from dataclasses import asdict, dataclass
from typing import Iterable, Optional

from traitlets import Integer, Unicode
from traitlets.config import LoggingConfigurable


@dataclass(frozen=True)
class Gpu:
    """One GPU as NVML names it: ``index`` is nvidia-smi's, the id a device request takes."""

    index: int
    uuid: str
    name: str
    memory: int  # bytes


def read_inventory(log, library: str = "") -> list:
    """The GPUs NVML sees, in its index order; [] (and one log line saying why) without a driver.

    ``library``: a path of ``libnvidia-ml.so.1`` to load first; pynvml's own load of that name
    then finds it (the dynamic linker matches a loaded library by its soname).
    """
    try:
        import pynvml

        if library:
            ctypes.CDLL(library)
        pynvml.nvmlInit()
    except Exception as e:  # (pynvml.NVMLError_LibraryNotFound without a driver)
        log.info("GPUs: none offered, NVML is not available here (%s)", e)
        return []
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            gpus.append(Gpu(index, pynvml.nvmlDeviceGetUUID(handle), pynvml.nvmlDeviceGetName(handle),
                            int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)))
        driver = pynvml.nvmlSystemGetDriverVersion()
    finally:
        pynvml.nvmlShutdown()
    log.info("GPUs: %d (NVIDIA driver %s)%s", len(gpus), driver,
             "".join(f"; {g.index}: {g.name}, {g.memory >> 20} MiB" for g in gpus))
    return gpus


def gpu_devices(job) -> list:
    """The GPU indices a job was given (a running job holds them)."""
    return list((job.allocated or {}).get("gpu_devices") or [])


def holders(running: Iterable) -> dict:
    """GPU index -> ids of the running jobs that hold it."""
    held: dict = {}
    for job in running:
        for index in gpu_devices(job):
            held.setdefault(index, []).append(job.id)
    return held


class Gpus(LoggingConfigurable):
    """The GPUs a backend hands out by device id, and the one rule of who may have which."""

    jobs_per_gpu = Integer(
        1, min=1,
        help="""Running jobs that may hold one GPU at once. 1 (the default): a GPU job's GPUs are
        its own. More lets that many jobs share a GPU (its memory is not divided: they share it as
        processes of one machine do).""",
    ).tag(config=True)

    nvml_library = Unicode(
        "",
        help="""Path of the NVIDIA driver's libnvidia-ml.so.1, where the dynamic linker does not find
        it by itself. Empty (the default): the linker's search, as pynvml makes it.""",
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.devices: list = []

    def start(self) -> None:
        """Read the host's GPUs (once: NVML's list does not change while the driver is loaded)."""
        self.devices = read_inventory(self.log, self.nvml_library)

    def _open(self, running: Iterable) -> list:
        """(holders, index) of each GPU with room for one more job, least held first."""
        held = holders(running)
        return sorted((len(held.get(g.index, ())), g.index) for g in self.devices
                      if len(held.get(g.index, ())) < self.jobs_per_gpu)

    def free(self, running: Iterable) -> int:
        """How many GPUs could take one more job now."""
        return len(self._open(running))

    def assign(self, running: Iterable, count: int) -> Optional[list]:
        """The indices a job asking ``count`` GPUs gets (the least held first), or None when fewer have room."""
        open_ = self._open(running)
        return sorted(index for _, index in open_[:count]) if len(open_) >= count else None

    def table(self, running: Iterable) -> list:
        """Each GPU with the jobs holding it, for the admin."""
        held = holders(running)
        return [dict(asdict(g), jobs=sorted(held.get(g.index, []))) for g in self.devices]
