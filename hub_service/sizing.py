"""Sizing: the admin's bounds and defaults, and the client of the worker that sizes jobs.

The admin's bounds and defaults live here as config. Every rule that turns them and a
prediction into a job's limits -- requests win, the hour's cpu share, the retry's bump,
clamping, the floor under memory -- lives in one place, the demand package
(:class:`demand.sizing.Sizer` in a worker process, :mod:`demand.policy` for its rules): the
service applies no rule of its own, so the replay that measures the sizing sizes
exactly as the service does. Requested, predicted and allocated are all recorded on the job.
"""

from __future__ import annotations

from typing import Optional

from demand import policy, scoreboard
from traitlets import Any, Bool, Enum, Float, Integer, Unicode, default
from traitlets.config import LoggingConfigurable

from . import offload

_BOUNDS, _COLD = policy.DEFAULT_BOUNDS, policy.DEFAULT_COLD_START


def recorded(sizing: dict) -> dict:
    """What a job keeps as its prediction: the sizer's figures, with which policy set its
    memory limit and why, every policy's limit (what the scoreboard scores it on when it
    ends, see demand.scoreboard), a burst's re-sizing after a sibling's kill, and the limit a
    sweep's run kept when sized again (``memory_kept``)."""
    extra = {k: sizing[k] for k in (scoreboard.KEY, "resized_after_kill", "memory_kept") if sizing.get(k) is not None}
    return dict(sizing.get("predicted") or {}, **extra)


class Sizing(LoggingConfigurable):
    """Admin bounds and defaults, and the bridge to the demand model."""

    cpu_min = Float(_BOUNDS["cpu"][0], help="Smallest cpu share a job gets, in cores.").tag(config=True)
    cpu_max = Float(_BOUNDS["cpu"][1], help="Largest cpu share a job may get, in cores.").tag(config=True)
    cpu_default = Float(_COLD["cpu"], help="Cores for a job when neither the user nor the model says.").tag(config=True)
    memory_min = Integer(
        int(_BOUNDS["memory"][0]),
        help="""Smallest memory limit of a job, in bytes. The sizer never goes below what the
        runner and a kernel need (demand.policy.RUNNER_FLOOR, 256 MiB) whatever this says,
        unless memory_max is lower.""",
    ).tag(config=True)
    memory_max = Integer(int(_BOUNDS["memory"][1]), help="Largest memory limit a job may get, in bytes.").tag(
        config=True
    )
    memory_default = Integer(
        int(_COLD["memory"]), help="Memory for a job when neither the user nor the model says, in bytes."
    ).tag(config=True)
    timeout_min = Float(_BOUNDS["timeout"][0], help="Shortest time limit of a job, in seconds.").tag(config=True)
    timeout_max = Float(_BOUNDS["timeout"][1], help="Longest time limit a job may get, in seconds.").tag(config=True)
    timeout_default = Float(3600.0, help="Time limit when neither the user nor the model says.").tag(config=True)

    timeout_model_floor = Float(
        policy.TIMEOUT_FLOOR,
        help="""The least time limit the model may give a job, in seconds (an explicit request may
        go lower). Killing a legitimate job costs more than a runaway one running this long.""",
    ).tag(config=True)
    use_model = Bool(True, help="Size jobs with the demand model (else: request or default).").tag(config=True)
    model_dir = Unicode(help="Where demand models are saved (default: <data_dir>/models).").tag(config=True)
    retrain_interval = Float(
        6 * 3600.0, help="Seconds between retrainings of the demand model inside the service (0: never)."
    ).tag(config=True)
    retrain_idle = Bool(
        True,
        help="""Fit the demand model at the idle scheduling policy (SCHED_IDLE). A fit is seconds of cpu in a
        process of its own (at the end of a burst, and every retrain_interval); idle, it takes only the cpu nothing
        else wants, and the Hub, its proxy and this service answer at once meanwhile. Jobs of the local executor
        run idle too (LocalExecutor.idle_priority) and share the cores with it. Turn it off where other work keeps
        every core busy for hours (jobs of the docker executor, users' servers): an idle fit waits for all of it,
        and the model stays as it was meanwhile.""",
    ).tag(config=True)
    history_limit = Integer(200, help="Recent jobs of a user the model looks at when sizing.").tag(config=True)
    scoreboard_serves = Bool(
        True,
        help="""Serve each job's memory limit from the policy the scoreboard trusts for its
        notebook or user (demand.scoreboard: the model, the history rules, the user's recent
        peaks, a curve through everyone's runs of a shared notebook, the user's request (see
        memory_requests), the default, the widest -- each scored
        on every finished job). False: the
        scoreboard is kept and shown on the admin page, but the model (or the rules before
        it) always serves.""",
    ).tag(config=True)
    memory_requests = Enum(
        policy.MEMORY_REQUESTS,
        default_value="binding",
        help="""What a user's memory request is. "binding": the job's memory limit, whatever the
        sizer says (the request is still scored as a policy of its own, so the admin page shows
        how well each user's requests fit). "advisory": one more policy on the scoreboard,
        served for a user's or notebook's jobs once their requests proved within the kill
        budget and left less memory unused than the sizer's own estimates; a request far off
        (too small, or sixteen times the need) is not served, and a killed run's retry may go
        past it. Without the model (use_model False) a request is the limit either way.""",
    ).tag(config=True)

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

    @property
    def policy(self) -> dict:
        """The admin's settings as the demand.sizing.Sizer takes them."""
        return {
            "bounds": self.bounds,
            "cold_start": {"cpu": self.cpu_default, "memory": self.memory_default, "timeout": self.timeout_default},
            "timeout_floor": self.timeout_model_floor,
            "portfolio": self.scoreboard_serves,
            "memory_requests": self.memory_requests,
        }

    async def model_call(self, fn, *args):
        """Run a demand-model function (see offload.py) in the worker process."""
        return await self.offload.call(fn, self.model_dir, self.policy, *args)

    def defaults(self, requested: dict, basis: str) -> dict:
        """The admin's defaults under the same rules (requests win, bounds, floor): what a
        job gets without the demand model."""
        p = self.policy
        allocated = policy.clamp(policy.requests_win(p["cold_start"], requested), p["bounds"])
        if all(requested.get(k) is not None for k in policy.RESOURCES):
            basis = "request"
        return {"predicted": {}, "allocated": allocated, "basis": basis}

    async def size(self, job: dict, history: list, retry_of: Optional[dict] = None,
                   cpu_share: Optional[float] = None) -> dict:
        """{"predicted": …, "allocated": …, "basis": …} for a job described by its features;
        ``cpu_share``: the hour's cpu per job (the load factor), if followed."""
        requested = job.get("requested", {})
        if not self.use_model:
            out = self.defaults(requested, "default")
        else:
            try:
                out = await self.model_call(offload.size, dict(job, retry_of=retry_of), history, cpu_share)
                # (with the odds that the memory limit is too small, when the model chose it)
            except Exception as exc:  # the model must never block a submission
                self.log.exception("demand model failed to size a job; using defaults")
                out = self.defaults(requested, f"default (sizer failed with {type(exc).__name__})")
        allocated = dict(out["allocated"], memory=int(out["allocated"]["memory"]), gpu=int(requested.get("gpu", 0)))
        return {"predicted": recorded(out), "allocated": allocated, "basis": out["basis"]}

    async def resize_queued(self, queued: list, history: list, cpu_share: Optional[float] = None) -> list:
        """New sizings of a sweep's queued runs, one ``{"predicted", "allocated", "basis"}``
        each, in order: each sized as if submitted now, its memory lowered only within what
        the finished runs covered (see demand.sizing.Sizer.resize_queued). ``queued``: job
        records as the sizer reads them (features, ``requested``, ``retry_of``, the ``allocated``
        they hold and the ``predicted`` of their submission, whose scoreboard record they keep).
        Empty when the model is off or the sizer fails: the runs keep what they have."""
        if not self.use_model or not queued:
            return []
        try:
            out = await self.model_call(offload.resize_queued, queued, history, cpu_share)
        except Exception:  # a sweep left as it was sized is no worse than before
            self.log.exception("demand model failed to re-size the queued runs of a sweep")
            return []
        return self._sizings(out, queued)

    def _sizings(self, out: list, jobs: list) -> list:
        """The sizer's answers for ``jobs`` as the service stores them (memory in whole bytes,
        the gpus each asked for)."""
        return [{"predicted": recorded(o), "basis": o["basis"],
                 "allocated": dict(o["allocated"], memory=int(o["allocated"]["memory"]),
                                   gpu=int((j.get("requested") or {}).get("gpu", 0)))}
                for o, j in zip(out, jobs)]

    async def resize_siblings(self, killed: dict, siblings: list, history: list) -> list:
        """New sizings of an OOM-killed job's still-queued siblings (the same user's jobs of
        the same notebook, queued with it and sized by the same guess), one
        ``{"predicted", "allocated", "basis"}`` each, in order: each sized again with the
        kill in ``history`` and raised as the killed job's retry is (see
        demand.sizing.Sizer.resize_siblings). ``killed`` and ``siblings`` are job records
        as the sizer reads them (features, ``requested``, ``allocated``, ``used``). Empty
        when the model is off or the sizer fails: the siblings keep what they have."""
        if not self.use_model or not siblings:
            return []
        try:
            out = await self.model_call(offload.resize_siblings, killed, siblings, history)
        except Exception:  # a burst left as it was is no worse than before
            self.log.exception("demand model failed to re-size the queued siblings of job %s", killed.get("id"))
            return []
        return self._sizings(out, siblings)
