"""CPU-heavy work in a helper process: nbconvert renders and the demand model.

Rendering a notebook or fitting a model would block the Tornado loop for hundreds of
milliseconds and keep scikit-learn, pandas and nbconvert (~150 MB) resident in the
service. One long-lived worker process does it instead; the service awaits the result.
The worker keeps one demand-model :class:`demand.Sizer` per model directory, so
retraining and sizing see the same model.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

_sizers = {}


def _sizer(model_dir: str, bounds: dict):
    from demand import Sizer

    key = (model_dir, repr(sorted(bounds.items())))
    if key not in _sizers:
        _sizers[key] = Sizer(model_dir, bounds)
    return _sizers[key]


def render(notebook_path: str, fmt: str) -> bytes:
    from .outputs import render as _render

    return _render(Path(notebook_path), fmt)


def size(model_dir: str, bounds: dict, job: dict, history: list) -> dict:
    return _sizer(model_dir, bounds).size(job, history)


def retrain(model_dir: str, bounds: dict, history: list) -> dict:
    return _sizer(model_dir, bounds).retrain(history)


def retrain_due(model_dir: str, bounds: dict, n_succeeded: int) -> bool:
    return _sizer(model_dir, bounds).retrain_due(n_succeeded)


def info(model_dir: str, bounds: dict) -> dict:
    return _sizer(model_dir, bounds).info()


def forecast(model_dir: str, bounds: dict, history: list) -> dict:
    return _sizer(model_dir, bounds).forecast(history)


def load_factor(model_dir: str, bounds: dict, now: float, capacity: dict) -> dict:
    return _sizer(model_dir, bounds).load_factor(now, capacity)


class Offload:
    """An asyncio face of the worker process; ``inline=True`` runs in threads (tests, tools)."""

    def __init__(self, inline: bool = False):
        self.inline = inline
        self._pool = None

    @property
    def pool(self):
        if self._pool is None and not self.inline:
            # forkserver: the worker does not inherit the service's sockets and event loop
            self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver"))
        return self._pool

    async def call(self, fn, *args):
        if self.inline:
            return await asyncio.to_thread(fn, *args)
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
