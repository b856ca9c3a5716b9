"""Sizing: the cpu, memory and time limit each job gets, within the bounds an admin set.

The admin's bounds and defaults live here as config. What a job is predicted to need
comes from the demand model (package ``demand``) when it is enabled; an explicit user
request wins over a prediction, and everything is clamped to the bounds. Requested,
predicted and allocated are all recorded on the job.
"""

from __future__ import annotations

from typing import Optional

from traitlets import Any, Bool, Float, Integer, Unicode, default
from traitlets.config import LoggingConfigurable

from . import offload


def clamp(value, low, high):
    return max(low, min(high, value))


class Sizing(LoggingConfigurable):
    """Admin bounds and defaults, and the bridge to the demand model."""

    cpu_min = Float(0.25, help="Smallest cpu share a job gets, in cores.").tag(config=True)
    cpu_max = Float(2.0, help="Largest cpu share a job may get, in cores.").tag(config=True)
    cpu_default = Float(1.0, help="Cores for a job when neither the user nor the model says.").tag(config=True)
    memory_min = Integer(128 << 20, help="Smallest memory limit of a job, in bytes.").tag(config=True)
    memory_max = Integer(4 << 30, help="Largest memory limit a job may get, in bytes.").tag(config=True)
    memory_default = Integer(1 << 30, help="Memory for a job when neither the user nor the model says.").tag(
        config=True
    )
    timeout_min = Float(10.0, help="Shortest time limit of a job, in seconds.").tag(config=True)
    timeout_max = Float(6 * 3600.0, help="Longest time limit a job may get, in seconds.").tag(config=True)
    timeout_default = Float(3600.0, help="Time limit when neither the user nor the model says.").tag(config=True)

    timeout_model_floor = Float(
        600.0,
        help="""The least time limit the model may give a job, in seconds (an explicit request may
        go lower). Killing a legitimate job costs more than a runaway one running this long.""",
    ).tag(config=True)
    use_model = Bool(True, help="Size jobs with the demand model (else: request or default).").tag(config=True)
    model_dir = Unicode(help="Where demand models are saved (default: <data_dir>/models).").tag(config=True)
    retrain_interval = Float(
        6 * 3600.0, help="Seconds between retrainings of the demand model inside the service (0: never)."
    ).tag(config=True)
    history_limit = Integer(200, help="Recent jobs of a user the model looks at when sizing.").tag(config=True)

    @default("model_dir")
    def _default_model_dir(self):
        return "models"

    offload = Any(help="the Offload that runs the demand model out of the service's process")

    @property
    def bounds(self) -> dict:
        return {
            "cpu": (self.cpu_min, self.cpu_max),
            "memory": (self.memory_min, self.memory_max),
            "timeout": (self.timeout_min, self.timeout_max),
        }

    async def model_call(self, fn, *args):
        """Run a demand-model function (see offload.py) in the worker process."""
        return await self.offload.call(fn, self.model_dir, self.bounds, *args)

    async def retrain(self, history: list) -> dict:
        """Fit a new model version on finished jobs; returns its info."""
        return await self.model_call(offload.retrain, history)

    async def info(self) -> dict:
        return await self.model_call(offload.info)

    def clamp(self, values: dict) -> dict:
        """Values clamped to the admin bounds; gpu passes through."""
        out = dict(values)
        for key, (low, high) in self.bounds.items():
            if key in out:
                out[key] = clamp(out[key], low, high)
        if "memory" in out:
            out["memory"] = int(out["memory"])
        return out

    async def size(self, job: dict, history: list, retry_of: Optional[dict] = None) -> dict:
        """{"predicted": …, "allocated": …, "basis": …} for a job described by its features."""
        requested = job.get("requested", {})
        keys = ("cpu", "memory", "timeout")
        predicted, proposed = {}, {}
        basis = "default"
        if self.use_model:
            try:
                result = await self.model_call(offload.size, dict(job, retry_of=retry_of), history)
                # (with the odds that the memory limit is too small, when the model chose it)
                predicted = {k: result["predicted"][k] for k in (*keys, "memory_kill_odds") if k in result["predicted"]}
                # the model's allocation adds its safety margin and the retry bump after a kill
                proposed = {k: result["allocated"][k] for k in keys if k in result.get("allocated", {})}
                basis = result.get("basis", "model")
            except Exception as exc:  # the model must never block a submission
                self.log.exception("demand model failed to size a job; using defaults")
                basis = f"default (sizer failed with {type(exc).__name__})"
        if "timeout" in proposed:
            proposed["timeout"] = max(proposed["timeout"], self.timeout_model_floor)
        defaults = {"cpu": self.cpu_default, "memory": self.memory_default, "timeout": self.timeout_default}
        allocated = {k: requested.get(k, proposed.get(k, defaults[k])) for k in defaults}
        if any(k in requested for k in defaults):
            basis = "request" if all(k in requested for k in defaults) else basis
        allocated["gpu"] = int(requested.get("gpu", 0))
        return {"predicted": predicted, "allocated": self.clamp(allocated), "basis": basis}
