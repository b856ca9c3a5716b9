"""The sizer: one job in, the container's cpu, memory and timeout out.

This is the service's only entry point into the demand package. It answers from the
best evidence it has, and says which in ``basis``:

``model``        a trained model (enough history): per-job upper quantiles;
``user-history`` no model yet, but this user has finished jobs: their recent maxima
                 with headroom;
``cold-start``   nothing known: the admin's defaults;
``request``      the user asked for every resource explicitly.

When the model cannot give a finite, sane answer, the rules answer and the basis says
why (``user-history (model v0002: non-finite cpu)``).

The memory limit itself is served from whichever policy the scoreboard trusts for the
job's notebook or user (:mod:`demand.scoreboard`): every first sizing records every
policy's limit (``memory_policy``: candidates, the one chosen, by which board, and why),
and the finished jobs score them. A policy tighter than the default serves only re-runs
within what the notebook's earlier runs covered (:func:`within_seen`): the boards score
policies mostly on such re-runs, which say nothing of a larger input or a new mode;
never below what an earlier run with no larger input peaked at (:func:`least_need`); and
only on the word of the job's notebook's or user's board, not everyone's alone.
``basis`` keeps naming what sized cpu and time.

A user's own memory request is one of the policies (``requested``). By default it is the
job's limit whatever the boards say (``memory_requests="binding"``: the user's word), and
is still scored, so the admin sees how well each user's requests fit. With
``memory_requests="advisory"`` it is advice: served where the boards found that user's or
notebook's requests within the kill budget and leaving less unused than the rest --
people who know their jobs are trusted for them, and a request far off is not served.

Whatever the basis, the rules of :mod:`demand.policy` apply -- explicit requests win,
the hour's cpu share caps an unrequested cpu, a killed run's retry gets no less than it
had, every value is clamped to the admin's bounds and memory never below the runner's
floor. On top of them this sizer sends a retry straight to a size that should hold
(twice what it was killed at, up to four times if the model's all-covering limit says
so: every further kill wastes a whole reservation; cpu doubled too if a timed-out run
was using all it had), and never gives a tight predicted timeout (at least
``max(10 x the runtime quantile, timeout_floor)``) -- so the service gets sane limits
from any input, including an empty history and no model at all.

Retraining: on the service's schedule, and also as soon as ``min_jobs`` jobs have
succeeded and whenever that count doubles (:meth:`Sizer.retrain_due`), so the first
hours are not sized by rules alone.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Optional, Union

from . import policy, registry, scoreboard, variants
from .checks import nonfinite, unusable
from .curves import RELEVANT_SLOPE, dominated, killed_floor
from .features import (LEVEL_CONFIG, LEVEL_NONE, LEVEL_NOTEBOOK, history_summary, no_larger, signature,
                       split_params, succeeded, target_value)
from .forecast import HourOfWeekForecast, hourly, hour_of_week
from .kinds import MIN_KIND_JOBS, kind_upper
from .peers import peer_curve
from .policy import DEFAULT_COLD_START, MB, MEMORY_REQUESTS, RUNNER_FLOOR, TIMEOUT_FLOOR, normalise_bounds
from .recent import recent_limit
from .train import DEFAULT_QUANTILES, MIN_JOBS, Bundle, train

log = logging.getLogger(__name__)

#: A retry after a timeout gets more cpu too when the run kept at least this share of
#: its cpu busy (it was throttled, and more time alone may never do).
THROTTLED_SHARE = 0.9
#: Headroom over the user's recent maxima while no model exists.
HISTORY_HEADROOM = {"memory": 1.3, "cores": 1.1}
#: A run with more data than any earlier run of its notebook is sized as if memory grew
#: with the data to this power, by at most HISTORY_MAX_GROWTH. Not in proportion: a
#: notebook's fixed part (its libraries, a model's weights) makes growth sub-linear, and
#: proportional growth held 8-hour deep-learning jobs at 8x the memory they used.
HISTORY_GROWTH_EXPONENT = 0.8
HISTORY_MAX_GROWTH = 6.0
#: Seconds added to every predicted timeout: container start and kernel start-up.
STARTUP_SECONDS = 30.0
#: A predicted timeout is never below this many times the runtime quantile, nor below
#: the sizer's ``timeout_floor`` (unless the bounds say so): killing a legitimate job
#: wastes its whole run, a late timeout reserves nothing.
TIMEOUT_MIN_FACTOR = 10.0
#: An OOM-killed job's retry gets at least this many times what it was killed at (VPA's
#: 1.2x steps take several kills, each one wasting its whole reservation) -- and up to
#: RETRY_MAX_FACTOR times when the model's all-covering limit says it may need that.
RETRY_FACTOR = 2.0
RETRY_MAX_FACTOR = 4.0
#: Without a model nothing bounds the need: jump further.
NO_MODEL_RETRY_FACTOR = 4.0

#: Until the first bundle (EARLY_BUNDLE_JOBS succeeded jobs, any user), a notebook's first
#: run -- its user ran neither it nor its kin -- gets at least this many times the admin's
#: default memory: nothing yet says the default fits these users' jobs, and a notebook's
#: first run is the largest unknown there is (on the replay's traces 5-30% of first runs
#: peaked above a 2 GiB default, 1.0-1.7x above it for most of those, and each kill costs
#: the attempt and a retry at NO_MODEL_RETRY_FACTOR times the limit). From the first bundle
#: on, what jobs of its kind reached (demand.kinds) is the evidence instead.
FIRST_RUN_FACTOR = 2.0

#: Succeeded jobs before the first bundle without a model (kinds and forecasts): as many
#: as one kind needs to count (demand.kinds.MIN_KIND_JOBS).
EARLY_BUNDLE_JOBS = MIN_KIND_JOBS


def _number(value) -> Optional[float]:
    """A request's figure as a float, or None when it is none (or not a number)."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _throttled(used: dict, allocated: dict) -> bool:
    """Whether a run used nearly all the cpu it was allocated, on average over its run."""
    cores = target_value(used, "cores")
    return bool(cores is not None and allocated.get("cpu")
                and math.exp(cores) >= THROTTLED_SHARE * float(allocated["cpu"]))


class Sizer:
    """Sizes jobs from the newest model in ``model_dir``; retrains and versions it."""

    def __init__(self, model_dir: Union[str, Path], bounds: Optional[dict] = None, safety: float = 0.05,
                 capacity: Optional[dict] = None, cold_start: Optional[dict] = None,
                 quantiles: Optional[dict] = None, timeout_factor: float = 2.0, min_jobs: int = MIN_JOBS,
                 memory_floor: float = RUNNER_FLOOR, timeout_floor: float = TIMEOUT_FLOOR,
                 portfolio: bool = True, first_run_factor: float = FIRST_RUN_FACTOR,
                 memory_requests: str = "binding"):
        """``safety`` is extra headroom on top of the calibrated quantiles (0.05 = 5%);
        ``capacity`` ({"cpu": cores, "memory": bytes}) enables the load factor;
        ``timeout_factor`` stretches the runtime quantile, since a long timeout reserves
        nothing but a short one wastes the whole run; ``memory_floor`` (bytes) is the least
        memory limit of any job, request or not, unless the admin's maximum is lower;
        ``timeout_floor`` (s) the least time limit a prediction may give (a request may
        go lower); ``cold_start`` ({cpu, memory, timeout}) what a job gets when nothing
        is known (the timeout defaults to the admin's maximum); ``portfolio``: serve each
        job's memory from the policy the scoreboard trusts (:mod:`demand.scoreboard`), not
        always from the sizer's own default (False: every policy is still recorded and
        scored, but the rules or the model alone serve, as the replay's baselines do);
        ``first_run_factor``: a notebook's first run before the first bundle gets at least
        this many times the default memory (FIRST_RUN_FACTOR; 1: the default alone);
        ``memory_requests``: "binding" (a memory request is the job's limit) or "advisory"
        (one more policy the scoreboard serves where it earned it; see the module)."""
        if memory_requests not in MEMORY_REQUESTS:
            raise ValueError(f"memory_requests must be one of {', '.join(MEMORY_REQUESTS)}, "
                             f"not {memory_requests!r}")
        self.model_dir = Path(model_dir)
        self.bounds = normalise_bounds(bounds)
        self.safety = float(safety)
        self.capacity = dict(capacity) if capacity else None
        self.cold_start = {**DEFAULT_COLD_START, "timeout": self.bounds["timeout"][1], **(cold_start or {})}
        self.quantiles = dict(DEFAULT_QUANTILES, **(quantiles or {}))
        self.timeout_factor = float(timeout_factor)
        self.min_jobs = int(min_jobs)
        self.memory_floor = float(memory_floor)
        self.timeout_floor = float(timeout_floor)
        self.portfolio = bool(portfolio)
        self.first_run_factor = float(first_run_factor)
        self.memory_requests = memory_requests
        self.version: Optional[str] = None
        self.bundle: Optional[Bundle] = None
        self._meta: dict = {}
        # History summaries of past jobs never change; keep them across retrains.
        self._example_cache: dict = {}
        loaded = registry.load_latest(self.model_dir)
        if loaded is not None:
            self.version, self.bundle, self._meta = loaded

    @property
    def _model(self):
        """The trained model the sizer serves from, or None (no bundle yet, or one trained
        before enough jobs had finished for a model)."""
        return self.bundle.model if self.bundle is not None else None

    # -- sizing ---------------------------------------------------------------------

    def size(self, job: dict, history: list, now: Optional[float] = None, cpu_share: Optional[float] = None) -> dict:
        """Predicted and allocated cpu, memory (bytes) and timeout (s) for one job.

        ``cpu_share`` is the hour's cpu per job (the load factor, as the service follows
        it); without it, and with a ``capacity``, the sizer reads it from its own forecast."""
        return self._size(job, history, now, cpu_share)[0]

    def _size(self, job: dict, history: list, now: Optional[float], cpu_share: Optional[float]) -> tuple[dict, dict]:
        """(:meth:`size`'s sizing, the job's history summary it stood on)."""
        now = time.time() if now is None else float(now)
        # Values of a text parameter that change nothing make no new variant (demand.variants.mask).
        inert = getattr(self.bundle, "inert", None) or {}  # (bundles saved before it have none)
        job = variants.mask(job, inert)
        history = [variants.mask(h, inert) for h in list(history or [])[:200]]
        summary = history_summary(job, history, now)  # (one pass over the history serves every policy)
        predicted, basis, expected = self._predict(job, history, now, summary)
        choice = None
        if not job.get("retry_of"):
            # Every policy's limit is recorded, to be scored when the job ends; the one the
            # scoreboard trusts for this user serves (a retry's floors need no vote).
            predicted, choice = self._portfolio(job, history, now, summary, predicted, basis, expected)
        safe_memory = expected.get("memory_safe")
        requested = job.get("requested") or {}
        if self.memory_requests == "advisory":
            # (the board weighed the memory request above: advice, not the limit)
            requested = {k: v for k, v in requested.items() if k != "memory"}
        allocated = policy.requests_win({k: predicted[k] for k in policy.RESOURCES}, requested)
        if cpu_share is None and self.capacity and self.bundle is not None:
            cpu_share = self.load_factor(now)["cpu_per_job"]
        allocated = policy.share_cpu(allocated, cpu_share, requested, expected["cores"],
                                     expected.get("cpu_seconds", 0.0), self.bounds["timeout"][1])

        retry = job.get("retry_of")
        # The killed run proved its size too small, whoever chose it: the retry gets no
        # less of anything, and more of what ran out (what any policy owes) ...
        allocated = policy.retry_floor(allocated, retry)
        if retry:
            # ... and more still where the evidence says so.
            used, alloc = retry.get("used") or {}, retry.get("allocated") or {}
            if retry.get("reason") == "oom_killed":
                killed_at = float(used.get("peak_memory") or alloc.get("memory") or allocated["memory"])
                # A second kill wastes a whole reservation again: jump.
                jump = (RETRY_FACTOR if safe_memory else NO_MODEL_RETRY_FACTOR) * killed_at
                if safe_memory:
                    jump = max(jump, min(safe_memory, RETRY_MAX_FACTOR * killed_at))
                # Yet a model's margin takes it no further than RETRY_MAX_FACTOR (unless its
                # estimate itself is above): the kill is the best evidence there is on this
                # very run, and an early model's wide margin (26x on one 8-hour job) would
                # hold that much for hours. Should it be short again, the next attempt jumps.
                if "memory" in expected:
                    cap = max(RETRY_MAX_FACTOR * killed_at, expected["memory"], float(alloc.get("memory") or 0.0))
                    allocated["memory"] = min(allocated["memory"], cap)
                # An explicit request is the user's word: the jump never takes it further than
                # what they asked (the floor every retry is owed still holds).
                allocated["memory"] = max(allocated["memory"], policy.oom_bump(killed_at),
                                          jump if requested.get("memory") is None else 0.0)
            elif retry.get("reason") == "timeout" and _throttled(used, alloc):
                # It kept its cpu busy to the end: more time alone may never do (not past
                # the admin's maximum), so it gets more cpu too.
                allocated["cpu"] = max(allocated["cpu"], policy.TIMEOUT_BUMP_RATIO * float(alloc["cpu"]))

        broken = [k for k, v in allocated.items() if not math.isfinite(v)]
        if broken:
            # A NaN in a request or in the killed run's record: the rules answer instead
            # (a NaN would pass every bound unclamped).
            rules = self._rules(job, history, summary)[0]
            allocated.update({k: rules[k] for k in broken})
            basis = f"{basis} (non-finite {', '.join(broken)} replaced by the rules)"
        allocated = policy.clamp(allocated, self.bounds, self.memory_floor)
        if all(requested.get(k) is not None for k in policy.RESOURCES):
            basis = "request"
        if "memory_kill_odds" in predicted and abs(allocated["memory"] - predicted["memory"]) > MB:
            # A retry's bump, a request or the admin's bounds moved the limit: the odds
            # were for the model's own.
            del predicted["memory_kill_odds"]
        out = {
            "predicted": {k: round(v, 6 if k == "memory_kill_odds" else 3) for k, v in predicted.items()},
            "allocated": allocated,
            "model_version": self.version or "none",
            "basis": basis,
        }
        if choice is not None:
            # Every policy's limit, the one chosen and why: the service keeps it with the
            # prediction, and the scoreboard scores it when the job ends.
            out[scoreboard.KEY] = choice
        return out, summary

    def _predict(self, job: dict, history: list, now: float, summary: dict) -> tuple[dict, str, dict]:
        """(prediction, basis, expected) before requests, retries and bounds; ``expected``
        holds the cores the job is expected to use and, from a model, its cpu-seconds at its
        upper quantiles (``cpu_seconds``), its memory point estimate and a memory limit for
        an OOM retry (``memory``, ``memory_safe``)."""
        model = self._model
        if model is None:
            return self._rules(job, history, summary)
        try:
            predicted, basis, expected = self._model_predict(model, job, history, now, summary)
            problem = unusable(dict(predicted, **{f"expected {k}": v for k, v in expected.items()}))
        except Exception as exc:  # a model that cannot size a job must not stop the service sizing it
            log.exception("model %s failed to size a job", self.version)
            problem = f"failed with {type(exc).__name__}"
        if problem is None:
            return predicted, basis, expected
        # The rules size it, and its basis says why the model did not.
        log.warning("model %s gave %s; sizing by the rules", self.version, problem)
        predicted, basis, expected = self._rules(job, history, summary)
        return predicted, f"{basis} (model {self.version}: {problem})", expected

    def resize_siblings(self, killed: dict, siblings: list, history: list, now: Optional[float] = None) -> list:
        """New sizings of an OOM-killed job's still-queued siblings: jobs of the same user
        and notebook queued with it (a sweep, a backfill), all sized before any had ended.

        The kill says the notebook was sized short by an unknown factor, and the siblings
        were sized by the same guess: each is sized again with the kill in ``history``,
        and its memory is raised by the factor the killed job's own retry gets over the
        limit it was killed at (as :meth:`size` gives a retry) -- so that the burst does
        not run into the same wall one job at a time. ``killed``: the job's record
        (``allocated``, ``used``, its features); ``siblings``: their features with the
        ``allocated`` they hold now. One sizing each, in order, with
        ``resized_after_kill`` saying by how much and after which job."""
        now = time.time() if now is None else float(now)
        killed_at = float((killed.get("allocated") or {}).get("memory") or 0.0)
        retry = self.size(dict(killed, requested={}, retry_of={
            "reason": "oom_killed", "allocated": dict(killed.get("allocated") or {}),
            "used": dict(killed.get("used") or {})}), history, now)
        factor = max(1.0, retry["allocated"]["memory"] / killed_at) if killed_at > 0 else RETRY_FACTOR
        out = []
        for sibling in siblings:
            fresh = self.size(dict(sibling, retry_of=None), history, now)
            held = float((sibling.get("allocated") or {}).get("memory") or 0.0)
            memory = max(fresh["allocated"]["memory"], held * factor if math.isfinite(held) else 0.0)
            fresh["allocated"] = policy.clamp(dict(fresh["allocated"], memory=memory), self.bounds, self.memory_floor)
            fresh["resized_after_kill"] = {"job": killed.get("id"), "factor": round(factor, 3), "held": held}
            out.append(fresh)
        return out

    def resize_queued(self, queued: list, history: list, now: Optional[float] = None,
                      cpu_share: Optional[float] = None) -> list:
        """New sizings of a sweep's runs still queued, once some of its runs have ended: all
        were sized at submit, before any had run, so a notebook new to its user got a first
        run's margin on every one of them. Each is sized again as if submitted now, on
        ``history`` as it is now (``queued``: the jobs' features with ``requested``,
        ``retry_of`` for a queued retry, and the ``allocated`` they hold).

        Its memory is raised wherever the new sizing says so, but lowered only for a run a
        finished one covered (:func:`covered`: its configuration, every numeric parameter at
        least as large). A run beyond them keeps what it holds: a few finished runs of a
        backfill say nothing of a larger window or a new mode, and the sweep's later, larger
        runs sized on them were killed (teams, seed 5: 0.66 -> 1.23% of jobs without this). One
        sizing each, in order; ``memory_kept`` says where the held limit stood in for a
        lower one.

        Each keeps its submission's record of every policy's limit (``predicted``'s
        :data:`demand.scoreboard.KEY`, when given): the boards score policies as they size
        jobs at submit. Scored on limits set with the sweep's own runs already in the
        history, the model's record looked better than it sizes a fresh job, the boards
        trusted it more at submit, and kills rose elsewhere (teams, seed 2: 1.20 -> 1.72% of
        jobs; with the submission's record, 1.20)."""
        now = time.time() if now is None else float(now)
        out = []
        for job in queued:
            sized, summary = self._size(dict(job), history, now, cpu_share)
            sized.pop(scoreboard.KEY, None)
            submitted = (job.get("predicted") or {}).get(scoreboard.KEY)
            if submitted is not None:
                sized[scoreboard.KEY] = submitted
            held = float((job.get("allocated") or {}).get("memory") or 0.0)
            if math.isfinite(held) and sized["allocated"]["memory"] < held and not covered(summary["memory"]):
                sized["memory_kept"] = {"held": held, "sized": sized["allocated"]["memory"]}
                sized["allocated"] = dict(sized["allocated"], memory=held)
                sized["predicted"]["memory"] = held
                sized["predicted"].pop("memory_kill_odds", None)  # (the odds were for the lower limit)
            out.append(sized)
        return out

    def default_policy(self) -> str:
        """The policy the sizer serves where the scoreboard has too little evidence: the
        model once one is trained, else the history rules."""
        return "model" if self._model is not None else "rules"

    def scoreboard(self, history: list) -> dict:
        """Every policy's score over all users and per user, and which each board chooses
        (see :func:`demand.scoreboard.report`), from finished jobs of any users."""
        return scoreboard.report(history, default=self.default_policy(),
                                 weights=getattr(self.bundle, "credibility", None))

    def _portfolio(self, job: dict, history: list, now: float, summary: dict, predicted: dict, basis: str,
                   expected: dict) -> tuple[dict, dict]:
        """(prediction with the memory limit the scoreboard trusts, the record of that
        choice: every policy's limit, the one chosen, by which group's board, and why).

        The model's candidate is its own limit, before the rules' floor an immature model
        serves under: the scoreboard judges the model, and the floor is the default's
        business while the evidence is thin."""
        model_serves = basis == "model"
        rules = self._rules(job, history, summary)[0]["memory"] if model_serves else predicted["memory"]
        memory = summary["memory"]
        curve = peer_curve(getattr(self._model, "peers", None) or {}, job, now,
                           memory["points"] if memory["level"] == LEVEL_CONFIG else ())
        raw = {"model": expected.get("memory_model", predicted["memory"]) if model_serves else None,
               "rules": rules, "recent": recent_limit(history, now), "default": self.cold_start["memory"],
               "requested": _number((job.get("requested") or {}).get("memory")),
               "peers": None if curve is None else math.exp(curve) * MB}
        lo, hi = self.bounds["memory"]
        lo = min(max(lo, self.memory_floor), hi)

        def clamped(v: float) -> float:
            return float(math.ceil(min(max(v, lo), hi) / MB) * MB)

        candidates = {p: clamped(v) for p, v in raw.items() if v is not None and math.isfinite(v)}
        served = predicted["memory"]  # (an immature model's, under the rules' floor)
        # The widest is of the sizer's own estimates: a request of 16x a job's need is the
        # user's to be trusted or not, not a reach for everyone's safety.
        own_estimates = {p: v for p, v in candidates.items() if p != "requested"}
        candidates["widest"] = widest(own_estimates, clamped(served) if math.isfinite(served) else None,
                                      widest_reach(summary["memory"]))
        default = "model" if model_serves else "rules"
        own = scoreboard.tally(history, scoreboard.USER_WINDOW)
        everyone = getattr(self.bundle, "scoreboard", None)  # (bundles saved before it have none)
        notebook = (getattr(self.bundle, "notebook_boards", None) or {}).get(scoreboard.notebook_key(job))
        weights = getattr(self.bundle, "credibility", None)  # (bundles saved before it have none)
        choice = scoreboard.choose(candidates, default, own, everyone, notebook=notebook, weights=weights)
        if not self.portfolio:
            # Kept and scored, not served: the board's choice is said, the default serves.
            choice = scoreboard.Choice(default, "off", None, None,
                                       f"{default}: the sizer's default, as the scoreboard does not serve here "
                                       f"(it would choose {choice.why})")
        tighter = candidates.get(choice.policy, 0.0) < candidates.get(default, 0.0) and choice.group != "off"
        if tighter and choice.group == "all":
            # Everyone's board says which policy kills least over all users' jobs, nothing
            # of this one's: the admin's one default may kill least overall and still fall
            # short of a job the model sized above it (sweeps, replayed without a per-user
            # limit: 2.20% of jobs killed, 1.78% without this). Widening needs no evidence
            # about the job; tightening needs its notebook's or its user's.
            choice = scoreboard.Choice(default, choice.group, None, None,
                                       f"{default}: the sizer's default, as only all users' board, not this "
                                       f"notebook's or this user's, speaks for less (it would choose {choice.why})")
        elif tighter and choice.policy not in ("requested", "peers") and not within_seen(summary["memory"]):
            # A board scores a policy on the group's jobs, mostly re-runs of what it has seen;
            # on a job beyond them (a larger window, a mode or a notebook new to the user) the
            # history-based policies know nothing of it, so they may not serve below the
            # default: tightening needs evidence about this job, widening does not (teams:
            # the rules' and recent peaks' limits killed such runs the model had sized). A
            # request is the exception: its user typed it for this very job; and so is the
            # peers' curve, which sizes only within the range everyone's runs covered.
            choice = scoreboard.Choice(default, choice.group, None, None,
                                       f"{default}: the sizer's default, as this job goes beyond its notebook's "
                                       f"earlier runs (the board would choose {choice.why})")
        elif tighter and candidates[choice.policy] < least_need(summary["memory"]):
            # An earlier run with no larger input peaked above the board's pick: memory grows
            # with the input, so that pick is short for this job, whatever it scored on others
            # (sweeps: a user's recent peaks, blind to the grid size, killed a sweep's larger runs).
            choice = scoreboard.Choice(default, choice.group, None, None,
                                       f"{default}: the sizer's default, as the board's pick is below the "
                                       f"peak of an earlier run with no larger parameters "
                                       f"(it would choose {choice.why})")
        predicted = dict(predicted)
        if choice.policy != default or choice.group not in ("default", "off"):
            # (the default without evidence keeps what the sizer gives: an immature model's
            # limit under the rules' floor)
            predicted["memory"] = candidates[choice.policy]
        if choice.policy != "model" or abs(predicted["memory"] - candidates.get("model", 0.0)) > MB:
            predicted.pop("memory_kill_odds", None)  # the model's odds were for its own limit
        record = {"chosen": choice.policy, "default": default, "group": choice.group,
                  "odds": None if choice.odds is None else round(choice.odds, 6),
                  "why": choice.why, "candidates": {p: int(v) for p, v in candidates.items()}}
        if "requested" in candidates:
            record["requests"] = self.memory_requests  # (whether the request was the limit or advice)
        return predicted, record

    def _rules(self, job: dict, history: list, summary: dict) -> tuple[dict, str, dict]:
        """(prediction, basis, expected) of the history rules, or the cold-start default;
        ``summary`` is :func:`history_summary` of ``job`` over ``history``. Once a model
        is trained, its pooled slopes say which parameters move memory: a sweep over
        ``iters`` or ``lr`` is no larger input (the rules grew such runs' limits up to
        HISTORY_MAX_GROWTH times, and served them where the scoreboard chose the rules)."""
        model = self._model
        rule = self._history_rule(job, history, model.slopes.get("memory") if model is not None else None)
        predicted, basis = (dict(self.cold_start), "cold-start") if rule is None else (rule, "user-history")
        memory = summary["memory"]
        # The model's rule for a notebook killed and not succeeded since holds here too.
        predicted["memory"] = max(predicted["memory"], math.exp(killed_floor(memory)) * MB)
        kind = kind_upper(getattr(self.bundle, "kinds", None) or {}, job)  # (bundles saved before kinds have none)
        if memory["level"] < LEVEL_CONFIG and kind is not None:
            # A notebook its user never ran, or a variant of it (its categorical values: a
            # mode, a dataset) they never used, which their other runs of it do not bound:
            # no smaller than jobs of its kind get.
            predicted["memory"] = max(predicted["memory"], math.exp(kind) * MB * (1.0 + self.safety))
        if self.bundle is None and memory["level"] < LEVEL_NOTEBOOK:
            # A notebook's first run before any bundle (see FIRST_RUN_FACTOR).
            first = self.first_run_factor * self.cold_start["memory"]
            if first > predicted["memory"]:
                predicted["memory"] = first
                basis = f"{basis} (first run: {self.first_run_factor:g}x the default)"
        return predicted, basis, {"cores": rule["cpu"] if rule else 0.0}

    def _model_predict(self, model, job: dict, history: list, now: float, summary: dict) -> tuple[dict, str, dict]:
        """(prediction, basis, expected) of a trained model, unchecked."""
        margin = 1.0 + self.safety
        q = model.predict(job, summary, now)
        runtime = q["runtime"][1]
        timeout = max(runtime * self.timeout_factor * margin + STARTUP_SECONDS,
                      TIMEOUT_MIN_FACTOR * runtime, self.timeout_floor)
        if q["level"] < LEVEL_CONFIG:
            # Never ran in this configuration: a time limit only guards against
            # runaways, and a wrong guess would kill a legitimate run.
            timeout = max(timeout, self.cold_start["timeout"])
        memory = q["memory"][1] * MB  # calibrated: the safety margin is in the quantile
        if not model.mature:
            # Too few calibration jobs to know the model's tail: no less than the rules
            # would give (the first models are also fitted on the quickest jobs only).
            rule = self._history_rule(job, history, model.slopes.get("memory"))
            memory = max(memory, rule["memory"] if rule else self.cold_start["memory"])
        safe = q["memory_safe"] * MB
        if q["level"] < LEVEL_CONFIG or not model.mature:
            # Sized without a run of exactly these parameters (or by an unproven model):
            # the kill says the guess was off by an unknown factor, so the retry jumps
            # as far as the rules allow (an exact re-run's kill is a spike, which twice covers).
            safe = max(safe, RETRY_MAX_FACTOR * memory)
        predicted = {"memory": memory, "cpu": q["cores"][1] * margin, "timeout": timeout}
        if "memory_kill_odds" in q and memory <= q["memory"][1] * MB:
            predicted["memory_kill_odds"] = q["memory_kill_odds"]  # the model's limit stands
        return predicted, "model", {"cores": q["cores"][0], "memory": q["memory"][0] * MB, "memory_safe": safe,
                                    "memory_model": q["memory"][1] * MB, "cpu_seconds": predicted["cpu"] * runtime}

    def _history_rule(self, job: dict, history: list, slopes: Optional[dict] = None) -> Optional[dict]:
        """The user's recent maxima with headroom, or None without a finished job.

        ``slopes`` (d log memory / d log parameter, pooled over notebooks by a model)
        say which parameters move memory at all; without them every numeric parameter
        is assumed to."""
        margin = 1.0 + self.safety
        known = [h for h in history if succeeded(h)]
        same = [h for h in known if signature(h) == signature(job)]
        own, variant = split_params(job.get("params"))
        relevant = None if slopes is None else [k for k in own if slopes.get(k, 1.0) >= RELEVANT_SLOPE]
        other_notebooks = not same and known
        if other_notebooks:
            # Another notebook of this user says little about this one: the admin's
            # default, unless the user's jobs are known to be larger (and no more: how
            # its parameters compare with theirs says nothing).
            same, floor = known, self.cold_start["memory"]
        else:
            floor = 0.0
            # Runs of this variant with no parameter above this job's bound it best:
            # usage grows with the input, and a larger run's maximum would waste.
            params = [split_params(h.get("params")) for h in same]
            below = [h for h, (num, cat) in zip(same, params) if cat == variant and no_larger(num, own, relevant)]
            same = below or same
        # A job with more data than any earlier run of the notebook is scaled up (see
        # HISTORY_GROWTH_EXPONENT) in the parameters that move memory at all, when
        # slopes say which (epochs do not).
        seen = [] if other_notebooks else [split_params(h.get("params"))[0] for h in same[:20]]
        growth = 0.0
        for key, value in own.items():
            past = [p[key] for p in seen if key in p]
            if past and value > max(past) and (relevant is None or key in relevant):
                growth += value - max(past)
        maxima = {}
        for target in HISTORY_HEADROOM:
            values = []
            for h in same[:20]:
                if (y := target_value(h.get("used"), target)) is None:
                    continue
                if target == "cores" and _throttled(h.get("used"), h.get("allocated") or {}):
                    # A run that kept all the cpu it had busy was throttled: it needed more than it
                    # used, by an unknown factor (a 7-core job held at 1 core ran 7 times longer, and
                    # its next run, sized at 1.1 x 1 core, timed out at the admin's maximum).
                    y += math.log(policy.TIMEOUT_BUMP_RATIO)
                values.append(y)
            if values:
                scale = (math.exp(min(HISTORY_GROWTH_EXPONENT * growth, math.log(HISTORY_MAX_GROWTH)))
                         if target == "memory" else 1.0)
                maxima[target] = math.exp(max(values)) * HISTORY_HEADROOM[target] * margin * scale
        if len(maxima) < len(HISTORY_HEADROOM):
            return None
        return {"memory": max(maxima["memory"] * MB, floor), "cpu": maxima["cores"], "timeout": self.cold_start["timeout"]}

    # -- training -------------------------------------------------------------------

    def retrain(self, history: list, now: Optional[float] = None) -> dict:
        """Fit on all finished jobs, save as a new version and serve from it -- unless the
        fit has a non-finite number anywhere: then it is saved as rejected, the previous
        version keeps serving, and info() says which version was rejected and why."""
        bundle = train(list(history or []), self.quantiles, now=now, cache=self._example_cache,
                       min_jobs=self.min_jobs, max_runtime=self.bounds["timeout"][1])
        meta = {"trained_at": bundle.trained_at, "n_jobs": bundle.n_jobs, "metrics": bundle.metrics}
        problems = nonfinite(bundle)
        if problems:
            reason = f"non-finite values in the fit: {'; '.join(problems[:5])}" + (
                f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
            registry.save(bundle, dict(meta, rejected=reason), self.model_dir)
            return self.info()
        self.version = registry.save(bundle, meta, self.model_dir)
        self.bundle, self._meta = bundle, dict(meta, version=self.version)
        return self.info()

    def retrain_due(self, n_succeeded: int) -> bool:
        """Whether to retrain now on top of the schedule: a bundle without a model from
        EARLY_BUNDLE_JOBS succeeded jobs, the first model as soon as ``min_jobs`` have
        succeeded, then whenever the succeeded jobs have doubled since the serving version
        (early versions are trained on little and improve fast)."""
        trained_on = int(self.bundle.metrics.get("n_succeeded") or 0) if self.bundle is not None else 0
        if self._model is None:
            # Before a model, a bundle without one as soon as EARLY_BUNDLE_JOBS have
            # succeeded and on every doubling: its kinds (demand.kinds) size a new
            # user's first notebook by what jobs of its kind need, not by the default.
            return n_succeeded >= self.min_jobs or n_succeeded >= max(EARLY_BUNDLE_JOBS, 2 * trained_on)
        return n_succeeded >= max(self.min_jobs, 2 * trained_on)

    def info(self) -> dict:
        """The serving version, when and on how much it was trained, its metrics and
        forecast; and ``rejected`` ({version, trained_at, reason}) when a newer fit was
        refused."""
        if self.bundle is None:
            out = {"version": None, "trained_at": None, "n_jobs": 0, "metrics": {}, "forecast": {}}
        else:
            out = {"version": self.version, "trained_at": self.bundle.trained_at, "n_jobs": self.bundle.n_jobs,
                   "metrics": self.bundle.metrics, "forecast": self.bundle.forecast_profile()}
        rejected = registry.last_rejected(self.model_dir, after=self.version)
        if rejected:
            out["rejected"] = rejected
        return out

    # -- load -----------------------------------------------------------------------

    def forecast(self, history: list, now: Optional[float] = None, hours: int = 24) -> dict:
        """Expected jobs and cpu-seconds for each of the next ``hours`` hours.

        Fitted on ``history`` (finished jobs, any user) when it has any, otherwise
        taken from the serving version's profile.
        """
        now = time.time() if now is None else float(now)
        start = now - now % 3600
        n = 0  # hours of history the forecast stands on (0: the serving version's profile, or none)
        if history:
            times = [float(h.get("submit_time") or 0.0) for h in history]
            cpu = [float((h.get("used") or {}).get("cpu_seconds") or 0.0) for h in history]
            t0 = min(times) - min(times) % 3600
            n = max(1, int((start - t0) // 3600))
            jobs_fc = HourOfWeekForecast().fit(hourly(times, [1.0] * len(times), t0, n), t0)
            cpu_fc = HourOfWeekForecast().fit(hourly(times, cpu, t0, n), t0)
        elif self.bundle is not None:
            jobs_fc, cpu_fc = self.bundle.jobs_forecast, self.bundle.cpu_forecast
        else:
            jobs_fc = cpu_fc = HourOfWeekForecast()
        return {"hours": [start + 3600 * i for i in range(hours)],
                "jobs": [round(float(v), 3) for v in jobs_fc.predict(start, hours)],
                "cpu_seconds": [round(float(v), 1) for v in cpu_fc.predict(start, hours)],
                "history_hours": n, "history_jobs": len(history)}

    def load_factor(self, now: Optional[float] = None, capacity: Optional[dict] = None) -> dict:
        """How much cpu one job may take at this hour (``cpu_per_job``).

        From the hour-of-week forecast: if the cores the hour's jobs are expected to
        use fit the capacity, each job may take up to the cpu bound; otherwise the
        capacity is shared among the expected concurrent jobs (Little's law: arrivals
        per hour x mean runtime). How many run at once then follows from what each is
        allocated (the dispatcher's budget), not from a count: a count from the typical
        job's size held a busy hour's small jobs back (1 at a time on 2 cores when the
        typical job used 1.3).
        """
        capacity = capacity or self.capacity
        if not capacity or "cpu" not in capacity:
            raise ValueError("load_factor needs a capacity {'cpu': cores, ...} (ctor or argument)")
        now = time.time() if now is None else float(now)
        lo, hi = self.bounds["cpu"]
        cores = float(capacity["cpu"])
        how = hour_of_week(now)
        if self.bundle is None:
            return {"cpu_per_job": hi}
        demand = self.bundle.cpu_forecast.profile[how] / 3600.0
        concurrent = self.bundle.jobs_forecast.profile[how] * self.bundle.mean_runtime_s / 3600.0
        share = hi if demand <= cores else max(lo, min(hi, cores / max(concurrent, 1.0)))
        return {"cpu_per_job": round(share, 2)}


def widest(candidates: dict, served: Optional[float] = None, reach: Optional[float] = None) -> float:
    """The widest policy's limit: the largest of the other ``candidates`` and of what the
    sizer's default ``served`` (bytes) -- yet, once the model gives one, no more than
    ``reach`` times the model's limit (see :func:`widest_reach`; None: unbounded), nor less
    than the model's or the default's.

    A job that peaks within the reach of the model's limit is held by that limit or by the
    retry a kill there gets, so a widest above it pays on every job it serves for kills
    only of jobs beyond the retry's reach. The largest of the history rules (a window's
    largest run, with headroom, grown with the data up to HISTORY_MAX_GROWTH) is often far
    more: on the teams trace (seed 1), where the board served the widest for three in four
    jobs, it left 0.77 of its memory unused against the model's 0.70 on the same jobs, for
    a few kills -- and, bounded, it is within MAX_EXTRA_SLACK of the model more often, so
    served where the model's kills call for it."""
    largest = max([*candidates.values(), *([served] if served is not None else [])])
    model = candidates.get("model")
    if model is None or reach is None:
        return largest
    return max(min(largest, reach * model), model, served or 0.0)


def widest_reach(summary: dict) -> Optional[float]:
    """How many times the model's limit the widest may reach for a job of this ``summary``
    (one target's history_summary), after how far :meth:`Sizer.size` sends a kill's retry:
    RETRY_FACTOR for a re-run within what its notebook's runs covered (:func:`within_seen`:
    a kill there is a spike, which twice covers); RETRY_MAX_FACTOR, the farthest a retry
    jumps, for another run of a notebook its user ran (a larger input, a new variant: the
    model's guess may be off by more); None -- no bound -- for a notebook the user never
    ran. Twice the model's limit for every run let its misses through: on the shared trace
    (seeds 2 and 3) runs of a new variant peaked above twice the model's limit, within the
    unbounded widest (kills 0.90 -> 1.03%, 1.14 -> 1.29%); on sweeps (seed 1) new
    notebooks' kills went 4 -> 8."""
    if within_seen(summary):
        return RETRY_FACTOR
    return RETRY_MAX_FACTOR if summary.get("level", LEVEL_NONE) >= LEVEL_NOTEBOOK else None


def within_seen(summary: dict) -> bool:
    """Whether a job re-runs its notebook within what its earlier runs covered: a
    configuration seen (its string parameters alike) and no numeric parameter above the
    largest an earlier run of it had (``summary``: one target's history_summary)."""
    if summary.get("level") != LEVEL_CONFIG:
        return False
    points = summary.get("points") or []
    own = summary.get("params") or {}
    return bool(points) and all(any(k in p and own[k] <= p[k] + 1e-9 for p, _, _ in points) for k in own)


def covered(summary: dict) -> bool:
    """Whether an earlier run of the job's configuration had every numeric parameter at least
    the job's (``summary``: one target's history_summary): usage grows with the input, so
    that run's peak bounds this one's, up to noise. Stricter than :func:`within_seen`, which
    takes each parameter's largest from any run (a run with the most rows and another with
    the most columns do not cover one with both)."""
    if summary.get("level") != LEVEL_CONFIG:
        return False
    own = summary.get("params") or {}
    return any(all(k in p and own[k] <= p[k] + 1e-9 for k in own) for p, _, _ in summary.get("points") or [])


def least_need(summary: dict) -> float:
    """Bytes that earlier runs of the job's configuration with no numeric parameter above
    its own peaked at (the median of each one's newest repeats, the largest): usage grows
    with the input, so a limit below it is short. 0 without such a run."""
    if summary.get("level") != LEVEL_CONFIG:
        return 0.0
    groups: dict = {}
    for params, value, _ in summary.get("points") or []:
        groups.setdefault(tuple(sorted(params.items())), []).append(value)
    level = dominated(summary["params"], groups)
    return math.exp(level) * MB if math.isfinite(level) else 0.0
