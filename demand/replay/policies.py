"""Sizing policies the simulator compares: ours, the published recommenders, the bounds.

Every policy sees the same thing the service would: the job's features and explicit
request when it is submitted (never its truth), and each attempt's record once that
attempt has *ended* (``observe``). ``retrain`` is called on the service's schedule. Ours
takes a memory request as advice (the service's ``Sizing.memory_requests = "advisory"``);
the recommenders replace hand-set limits.
Only :class:`Oracle` is handed the truth, explicitly, as the unreachable lower bound.

The baselines, as published (applied per user, since notebook jobs have no replicas):

* **VPA** (Kubernetes Vertical Pod Autoscaler recommender): a decaying histogram of
  usage samples, 24 h half-life, target = p90, +15% safety margin; an OOM adds a sample
  of ``max(used + 100 MB, 1.2 x used)``.
* **Autopilot** (Rzadca et al., EuroSys 2020), moving-window recommender: samples
  decayed with a 48 h half-life, memory = weighted p98, cpu = weighted p95, +10%.

Neither recommends time limits, so they (and fixed/requested) keep the admin's
maximum timeout: they are never charged a timeout kill their rule did not cause.
"""

from __future__ import annotations

import math
import tempfile
from typing import NamedTuple, Optional

import numpy as np

from ..policy import DEFAULT_COLD_START, GB, MB, RUNNER_FLOOR
from ..scoreboard import KEY
from ..sizing import Sizer

#: The replay's admin bounds: a cluster of 64-core, 256 GB nodes, not the service's
#: small-box defaults (demand.policy.DEFAULT_BOUNDS).
REPLAY_BOUNDS = {"cpu": (0.25, 8.0), "memory": (RUNNER_FLOOR, 64 * GB), "timeout": (60.0, 24 * 3600.0)}


class Policy:
    """Base: cold-start size for everyone, learns nothing."""

    name = "fixed"

    def __init__(self, bounds: Optional[dict] = None, cold_start: Optional[dict] = None):
        self.bounds = dict(REPLAY_BOUNDS, **(bounds or {}))
        self.cold_start = {**DEFAULT_COLD_START, "timeout": self.bounds["timeout"][1], **(cold_start or {})}

    def size(self, job: dict, now: float, retry_of: Optional[dict] = None) -> dict:
        """{cpu, memory (bytes), timeout (s)} for a submitted job or a retry."""
        return dict(self.cold_start)

    def observe(self, record: dict) -> None:
        """Learn from one ended attempt (a history dict with ``end_time``)."""

    def retrain(self, now: float) -> None:
        """Periodic refit, on the service's schedule."""


class Fixed(Policy):
    """One size for every job: what an admin sets when nothing is known."""


class Requested(Policy):
    """The user's hand-set limits, as they typed them."""

    name = "requested"

    def size(self, job, now, retry_of=None):
        req = job.get("requested") or {}
        return {"cpu": req.get("cpu", self.cold_start["cpu"]), "memory": req.get("memory", self.cold_start["memory"]),
                "timeout": self.cold_start["timeout"]}


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value whose cumulative weight reaches ``q`` of the total."""
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][min(len(values) - 1, int(np.searchsorted(cum, q * cum[-1])))])


class DecayingHistogram(Policy):
    """Per-user exponentially decayed usage samples; a quantile plus margin of them."""

    half_life_h = 24.0
    memory_q, cpu_q, margin = 0.9, 0.9, 0.15
    #: Samples older than this many half-lives weigh under 0.1% and are dropped.
    horizon_half_lives = 10

    def __init__(self, bounds=None, cold_start=None):
        super().__init__(bounds, cold_start)
        self.samples: dict[str, list] = {}  # user -> [(time, memory bytes, cores)]

    def observe(self, record):
        used, alloc = record.get("used") or {}, record.get("allocated") or {}
        t = record["end_time"]
        if record.get("reason") == "oom_killed":
            killed_at = float(alloc["memory"])
            memory = max(killed_at + 100 * MB, 1.2 * killed_at)
        elif record.get("status") == "succeeded" and "peak_memory" in used:
            memory = float(used["peak_memory"])
        else:
            return
        cores = used.get("cpu_seconds", 0.0) / max(used.get("wall_seconds", 1.0), 1.0)
        self.samples.setdefault(record["user"], []).append((t, memory, cores))

    def size(self, job, now, retry_of=None):
        horizon = now - self.horizon_half_lives * self.half_life_h * 3600
        samples = [s for s in self.samples.get(job["user"], []) if s[0] >= horizon]
        self.samples[job["user"]] = samples
        if not samples:
            return dict(self.cold_start)
        arr = np.array(samples)
        w = 0.5 ** ((now - arr[:, 0]) / (self.half_life_h * 3600))
        return {"memory": weighted_quantile(arr[:, 1], w, self.memory_q) * (1 + self.margin),
                "cpu": weighted_quantile(arr[:, 2], w, self.cpu_q) * (1 + self.margin),
                "timeout": self.cold_start["timeout"]}


class VPA(DecayingHistogram):
    """Kubernetes VPA recommender, per user."""

    name = "vpa"


class Autopilot(DecayingHistogram):
    """Autopilot's moving-window recommender, per user."""

    name = "autopilot"
    half_life_h = 48.0
    memory_q, cpu_q, margin = 0.98, 0.95, 0.10


class Model(Policy):
    """Ours: the service's own :class:`demand.sizing.Sizer`, fed the service's history shape."""

    name = "model"

    def __init__(self, bounds=None, cold_start=None, capacity=None, model_dir=None, **sizer_kw):
        super().__init__(bounds, cold_start)
        self._tmp = None
        if model_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="demand-sim-")
            model_dir = self._tmp.name
        # Hand-set memory requests are advice, as the service takes them with
        # Sizing.memory_requests = "advisory" (the replay's users request for every job).
        self.sizer = Sizer(model_dir, bounds=self.bounds, capacity=capacity,
                           cold_start=cold_start, **dict({"memory_requests": "advisory"}, **sizer_kw))
        self.records: list[dict] = []
        self.by_user: dict[str, list] = {}
        #: What each job's latest sizing predicted (with every policy's limit, see
        #: demand.scoreboard), recorded on its attempt's record as the service stores it.
        self.predicted: dict = {}
        self.n_succeeded = 0
        #: Sizings the model could not give (the rules did instead), and fits rejected.
        self.checks = {"model_fallbacks": 0, "rejected_fits": 0, "sized_by": {}}

    def _retrain(self, now):
        info = self.sizer.retrain(self.records, now=now)
        rejected = info.get("rejected")
        if rejected and rejected["trained_at"] == now:
            self.checks["rejected_fits"] += 1

    def observe(self, record):
        record = dict(record, predicted=self.predicted.pop(record["id"], {}))
        self.records.append(record)
        self.by_user.setdefault(record["user"], []).append(record)
        if record.get("status") == "succeeded":
            self.n_succeeded += 1
            # The service's rule: retrain early while the history is young, not only
            # on the schedule (all the records are of attempts that have ended).
            if self.sizer.retrain_due(self.n_succeeded):
                self._retrain(record["end_time"])

    def size(self, job, now, retry_of=None):
        history = self.by_user.get(job["user"], [])[-200:][::-1]
        job = dict(job, requested=self._advice(job), retry_of=retry_of)
        out = self.sizer.size(job, history, now)
        self.predicted[job["id"]] = dict(out["predicted"], **{KEY: out.get(KEY)})  # as the service keeps it
        chosen = (out.get(KEY) or {}).get("chosen")
        if chosen:  # which policy the scoreboard trusted, per first attempt
            self.checks["sized_by"][chosen] = self.checks["sized_by"].get(chosen, 0) + 1
        self.checks["model_fallbacks"] += "(model " in out["basis"]
        return out["allocated"]

    def retrain(self, now):
        self._retrain(now)

    def _advice(self, job: dict) -> dict:
        """What of a job's hand-set limits the sizer is handed: the recommender replaces
        them, and weighs the memory request as one more policy when it takes requests as
        advice (demand.sizing: ``memory_requests="advisory"``), nothing otherwise."""
        memory = (job.get("requested") or {}).get("memory")
        return {"memory": memory} if memory is not None and self.sizer.memory_requests == "advisory" else {}

    def resize_siblings(self, record: dict, waiting: list, now: float) -> list:
        """New allocations of the still-queued ``(request, allocation)`` of a killed job's
        user and notebook, as the service's sizer gives them (demand.sizing.Sizer.resize_siblings)."""
        history = self.by_user.get(record["user"], [])[-200:][::-1]
        siblings = [dict(job, requested=self._advice(job), allocated=dict(alloc)) for job, alloc in waiting]
        out = self.sizer.resize_siblings(record, siblings, history, now)
        for (job, _), sized in zip(waiting, out):
            self.predicted[job["id"]] = dict(sized["predicted"], **{KEY: sized.get(KEY)})
        return [sized["allocated"] for sized in out]

    def resize_queued(self, waiting: list, now: float) -> list:
        """New allocations of a sweep's still-queued ``(request, allocation)`` once some of its
        runs have succeeded, as the service's sizer gives them (demand.sizing.Sizer.resize_queued).
        A sweep is one user's."""
        history = self.by_user.get(waiting[0][0]["user"], [])[-200:][::-1]
        out = self.sizer.resize_queued([dict(job, requested=self._advice(job), allocated=dict(alloc),
                                             predicted=self.predicted.get(job["id"], {}))
                                        for job, alloc in waiting], history, now)
        for (job, _), sized in zip(waiting, out):
            self.predicted[job["id"]] = dict(sized["predicted"], **{KEY: sized.get(KEY)})
        return [sized["allocated"] for sized in out]

    def phase(self):
        """``no-model`` while no model serves (the rules size every job), else None."""
        return "no-model" if self.sizer.bundle is None or self.sizer.bundle.model is None else None


class Rules(Model):
    """The service's sizer with no model ever trained: its history rules alone, the
    floor a learned model must beat."""

    name = "rules"

    def __init__(self, bounds=None, cold_start=None, capacity=None, **sizer_kw):
        # (No bundle ever comes: a notebook's first run keeps the default, as it always had,
        # not the prior the service's sizer gives first runs only until its first bundle.)
        super().__init__(bounds, cold_start, capacity,
                         **dict(sizer_kw, min_jobs=2**62, portfolio=False, first_run_factor=1.0,
                                memory_requests="binding"))

    #: The rules baseline sizes each job once, as it always has (the floor to beat).
    resize_siblings = resize_queued = None

    def retrain(self, now):
        """Never: the rules learn nothing."""

    def _retrain(self, now):
        """Never, early either."""

    def phase(self):
        """None: the rules' jobs are split by what the history said, like a baseline's."""
        return None


class Oracle(Policy):
    """Knows each job's true peak and cores: slack's floor, for scale."""

    name = "oracle"

    def __init__(self, truth: dict, bounds=None, cold_start=None):
        super().__init__(bounds, cold_start)
        self.truth = truth  # job id -> {"memory": bytes, "cpu": cores}

    def size(self, job, now, retry_of=None):
        t = self.truth[job["id"]]
        return {"memory": t["memory"], "cpu": t["cpu"], "timeout": self.cold_start["timeout"]}


class Known(NamedTuple):
    """What the noise-aware bound is told of one run (see :class:`NoiseAware`)."""

    expected: float   # peak memory before noise and spike, bytes
    sigma: float      # the notebook's run-to-run noise (log)
    cores: float      # true cores used
    runtime: float    # seconds
    kind: str         # the generator's notebook kind
    notebook: tuple   # (user, features.signature): one user's notebook
    spike_probability: float = 0.01  # odds of an unexplained spike (demand.replay.trace's)
    spike_range: Optional[tuple] = None  # a spike's factor (uniform); None: the policy's default


class NoiseAware(Policy):
    """Knows what a perfect model of every notebook could know -- each run's memory
    before its run-to-run noise and spikes, that noise's sigma, the spikes' odds and
    size (per run: a family's bimodal high mode is no 1.3-2.5x spike), and the run's
    length -- but not the draw (and the true cores, so that it is judged on memory
    alone). Twice the killed limit on a retry.

    With ``q`` it sizes every run at the ``q`` quantile of its noise. Without, it
    spends a kill budget where it saves most: each run's margin minimises its
    expected reserved MB-s plus a price per kill, the one price set so that the
    expected kills per job meet ``kill_budget`` -- the rule :class:`demand.DemandModel`
    follows, with the uncertainty known instead of estimated. Its slack at that kill
    rate is about as low as any sizing that cannot see the future can go on the
    trace: the floor a target must be judged against.

    ``blind_first``: the first run of each notebook (per user) is known only by its
    kind -- the spread of memory over all runs of notebooks of that kind -- as it must
    be for any sizer that has not seen the notebook run. Every later run is known
    perfectly, so this is still a bound, for a learner that needs one run to know
    a notebook exactly.
    """

    name = "noise-aware"
    #: Log margins over the expected memory the cost-aware bound chooses from.
    MARGINS = np.arange(0.0, 5.0, 0.005)

    def __init__(self, knowledge: dict, q: Optional[float] = None, kill_budget: float = 0.009,
                 blind_first: bool = False, bounds=None, cold_start=None, spike_range: tuple = (1.3, 2.5)):
        """``knowledge``: job id (submit order) -> :class:`Known`; ``spike_range``: the
        factors a spike multiplies a run's memory by (uniform), as the generator draws them,
        for the runs whose :class:`Known` names none."""
        super().__init__(bounds, cold_start)
        from statistics import NormalDist
        self.knowledge = knowledge
        ids = sorted(knowledge)
        center = np.log([knowledge[i].expected for i in ids])
        spread = np.array([knowledge[i].sigma for i in ids])
        if blind_first:
            kinds = np.array([knowledge[i].kind for i in ids])
            seen, first = set(), np.zeros(len(ids), bool)
            for n, i in enumerate(ids):
                first[n] = knowledge[i].notebook not in seen
                seen.add(knowledge[i].notebook)
            for kind in set(kinds.tolist()):
                sel = first & (kinds == kind)
                population = center[kinds == kind]
                spread[sel] = np.hypot(np.std(population), spread[sel])
                center[sel] = np.mean(population)
        if q is not None:
            margin = NormalDist().inv_cdf(q) * spread
        else:
            runtime = np.array([knowledge[i].runtime for i in ids])
            spikes = np.array([knowledge[i].spike_probability for i in ids])
            ranges = np.array([knowledge[i].spike_range or spike_range for i in ids], float).reshape(len(ids), 2)
            margin = self._cost_aware(np.exp(center) / MB * runtime, spread, kill_budget, spikes, ranges)
        self.limit = dict(zip(ids, np.exp(center + margin).tolist()))

    @classmethod
    def _cost_aware(cls, cost: np.ndarray, spread: np.ndarray, budget: float, spikes: np.ndarray,
                    spike_range) -> np.ndarray:
        """Per job, the log margin minimising reserved MB-s plus a price per kill, at the
        one price whose expected kills per job meet ``budget`` (``spikes``: each job's
        odds of a spike; ``spike_range``: the range of a spike's factor, as the generator
        draws them -- one (low, high) for all jobs, or one row per job)."""
        from scipy.stats import norm

        m, sd, cost = cls.MARGINS[None, :], np.maximum(spread[:, None], 1e-6), cost[:, None]
        odds = spikes[:, None]
        ranges = np.broadcast_to(np.asarray(spike_range, float).reshape(-1, 2), (len(cost), 2))
        p = (1 - odds) * norm.sf(m / sd)
        for k in np.linspace(0.0, 1.0, 25):
            s = np.log(ranges[:, 0] + k * (ranges[:, 1] - ranges[:, 0]))[:, None]
            p += odds / 25 * norm.sf((m - s) / sd)
        reserved = cost * np.exp(m) * (1 + 2 * p)  # a kill costs the attempt and a retry at twice the limit
        rows = np.arange(len(cost))
        lo, hi = -10.0, 40.0  # log price of one kill, in MB-s
        for _ in range(50):
            mid = (lo + hi) / 2
            if p[rows, np.argmin(reserved + math.exp(mid) * p, axis=1)].mean() > budget:
                lo = mid
            else:
                hi = mid
        return cls.MARGINS[np.argmin(reserved + math.exp(hi) * p, axis=1)]

    def size(self, job, now, retry_of=None):
        memory = self.limit[job["id"]]
        if retry_of and retry_of["reason"] == "oom_killed":
            memory = max(memory, 2 * float(retry_of["allocated"]["memory"]))
        return {"memory": memory, "cpu": self.knowledge[job["id"]].cores, "timeout": self.cold_start["timeout"]}


#: Policies by name, in the order reports list them.
POLICIES = {p.name: p for p in (Fixed, Requested, VPA, Autopilot, Model, Rules, Oracle)}
