"""The scoreboard: every sizing policy scored on every finished job, and the one to trust.

For a memory limit the counterfactual is exact. A job that ran to its end peaked at P:
any limit below P would have killed it, any limit above P would have left the difference
unused. So when a job is sized, the sizer records the limit *every* policy it can run
would have given (``candidates``: the model, the history rules, a VPA-like percentile of
the user's recent peaks, a curve through every user's runs of a shared notebook (see
demand.peers), the admin's default, and the widest of them), and when the job
ends each of them is scored as if it had been served. A job its user asked a memory size
for scores the request too (``requested``, a policy of its own: what the user knew about
this job, trusted where their requests have fitted; see demand.sizing). No policy's score
depends on which one was served, so the served limit can be chosen by score:

* per **notebook** (its code, run by anyone) once :data:`MIN_GROUP_JOBS` of its runs
  scored, else per **user** once the user has as many, else over **all** users once they
  have :data:`MIN_ALL_JOBS`, else the sizer's own default (the model once one is
  trained, the rules before). The notebook first, because what defeats a policy is
  mostly a property of the code and its data -- a high mode now and then, data that
  grows, a parameter that multiplies -- and a team's shared notebook has runs enough;
  then the user, because a user's jobs are what the sizer is handed and their habits
  (edited copies, one data parameter) are what the rest of the errors follow. A kind is
  too coarse to differ. A group's odds are shrunk toward everyone's, so a short clean run
  does not make a policy that kills elsewhere look safe -- by as many pseudo-jobs as the
  notebooks' records say they differ (:func:`credibility`): where a policy's kills gather
  in a few notebooks, a notebook's or a user's clean record counts; where they fall
  evenly, it is luck and counts little. Everyone's odds are shrunk toward a prior, the
  fallbacks' :data:`PRIOR_ODDS` and the default's a lower :data:`DEFAULT_PRIOR_ODDS`, so
  that the default is left where its jobs show it missing the budget, not before.
* on a **rolling window**: the newest :data:`USER_WINDOW` scored jobs of the notebook or
  the user, :data:`ALL_WINDOW` of everyone (usage drifts, and so do the policies' errors);
* at the **kill budget**: among the policies that leave at most :data:`MAX_EXTRA_SLACK`
  more of their memory unused than the default, those whose odds of a kill (out of
  sample: a policy's limits were set before the jobs it is scored on ended) are within
  :data:`KILL_BUDGET`, the one that left the least unused; when none is, the one least
  likely to kill. Only a policy scored on at least the group's minimum of jobs may be
  chosen.

The widest policy kills no job any other would not also have killed, up to what a kill at
the model's limit is retried at (twice it on a re-run within its notebook's earlier runs,
four times on another run of a notebook its user ran; see demand.sizing.widest): where
a fallback meets the budget at a bearable cost and the default does not, it is served,
and where one leaves less unused within the budget, it is -- the sizer is not worse than
its own fallbacks at the budget, by construction, on a workload nobody has seen, within
the MAX_EXTRA_SLACK it may spend on safety.

A job killed for lack of memory scores only the policies that would have given it no
more than it had (killed too, for certain); what a larger limit would have done is not
known, so they are not scored on it. Jobs that failed for other reasons, or timed out,
are not scored: their peak is not the job's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional

from .features import signature
from .policy import MB

#: Where a sizing records what each policy would have given (in ``predicted``).
KEY = "memory_policy"
#: The policies scored, in the order reports list them.
POLICIES = ("model", "rules", "recent", "peers", "requested", "default", "widest")
#: Each policy in words (the admin page, the why of a sizing).
WORDS = {
    "model": "the demand model",
    "rules": "the history rules (the user's recent maxima of the notebook, with headroom)",
    "recent": "the user's recent peaks (90th percentile + 15%, as VPA)",
    "peers": "everyone's runs of the notebook (a curve through them, with their largest miss and a margin)",
    "requested": "the user's own request for the job",
    "default": "the admin's default",
    "widest": "the widest of them all (at most what a kill at the model's limit is retried at)",
}
#: Share of jobs a chosen policy may be expected to kill: the service's aim (1% of jobs).
#: The model's own margins aim lower (demand.model.MEMORY_KILL_BUDGET, 0.6%), leaving room
#: for the jobs sized before any model and the retries; the board steps in where the
#: model is shown to miss its aim by more than that room, not at every kill.
KILL_BUDGET = 0.01
#: Prior of a policy's kill odds before its jobs say otherwise, and how many jobs it
#: weighs: one kill in a user's window must not swing the choice (0.6% budget at 50 jobs did,
#: to the widest, for the rest of the window: more unused, no fewer kills). PRIOR_JOBS is
#: also the most a group's odds are shrunk toward everyone's by (see :func:`credibility`).
PRIOR_ODDS = 0.03
PRIOR_JOBS = 100.0
#: The least a group's odds are shrunk toward everyone's by: the credibility is estimated
#: from a few dozen notebooks at most, and a notebook's first clean runs alone must not
#: make a policy that kills elsewhere look safe.
MIN_PRIOR_JOBS = 10.0
#: The sizer's default starts nearer its aim: it serves once 50 of its scored jobs ran
#: clean (200 at the fallbacks' 3%), until its jobs show it missing the budget. At 3% every
#: board's first few hundred jobs found the default over budget by the prior alone and
#: served the widest (edits: 0.72 of its memory unused there); at the model's own aim
#: (0.6%) it kept serving through kills a board should have heeded (shared, seed 2: 1.03 -> 1.22%).
DEFAULT_PRIOR_ODDS = 0.015
#: Scored jobs a group needs before its own board decides (a policy as well, to be chosen).
MIN_GROUP_JOBS = 20
MIN_ALL_JOBS = 100
#: Where no policy meets the budget, a safer one is served only if it leaves at most this
#: much more of its memory unused than the default (a share of reserved MB-s).
MAX_EXTRA_SLACK = 0.1
#: Rolling windows: the newest scored jobs of a user, and of everyone.
USER_WINDOW = 100
ALL_WINDOW = 3000
#: A killed attempt's retry, as the sizer gives it, reserves at least this many times
#: the killed limit: a kill's cost in the score (demand.sizing.RETRY_FACTOR).
RETRY_FACTOR = 2.0


def outcomes(record: dict) -> Optional[dict]:
    """Per policy ``(killed, reserved MB-s, used MB-s)`` had it sized this finished job
    (only those whose outcome is known), or None when the job scores nothing."""
    candidates = ((record.get("predicted") or {}).get(KEY) or {}).get("candidates")
    used, alloc = record.get("used") or {}, record.get("allocated") or {}
    try:
        wall = float(used.get("wall_seconds") or 0.0)
        if not candidates or not wall > 0 or not math.isfinite(wall):
            return None
        limits = {p: float(v) / MB for p, v in candidates.items() if v is not None and math.isfinite(float(v))}
        if record.get("status") == "succeeded":
            peak = float(used["peak_memory"]) / MB
            if not (peak > 0 and math.isfinite(peak)):
                return None
            out = {}
            for p, limit in limits.items():
                if limit < peak:
                    # Killed as the ramp reached the limit, then retried at no less than
                    # twice it (or the peak), which held.
                    out[p] = (True, limit * wall * limit / peak + max(RETRY_FACTOR * limit, peak) * wall, peak * wall)
                else:
                    out[p] = (False, limit * wall, peak * wall)
            return out
        if record.get("reason") == "oom_killed":
            killed_at = float(alloc["memory"]) / MB
            return {p: (True, limit * wall, 0.0) for p, limit in limits.items() if limit <= killed_at * (1 + 1e-6)}
    except (KeyError, TypeError, ValueError):
        return None
    return None


def tally(records: Iterable[dict], window: int) -> dict:
    """Per policy ``{jobs, kills, reserved, used}`` over the newest ``window`` scored
    jobs of ``records`` (newest first); ``"_jobs"`` counts the jobs scored."""
    board = {p: {"jobs": 0, "kills": 0, "reserved": 0.0, "used": 0.0} for p in POLICIES}
    n = 0
    for record in records:
        if n >= window:
            break
        scored = outcomes(record)
        if not scored:
            continue
        n += 1
        for p, (killed, reserved, used) in scored.items():
            row = board.setdefault(p, {"jobs": 0, "kills": 0, "reserved": 0.0, "used": 0.0})
            row["jobs"] += 1
            row["kills"] += int(killed)
            row["reserved"] += reserved
            row["used"] += used
    board["_jobs"] = n
    return board


def slack(row: dict) -> float:
    """Share of the reserved MB-s left unused (a kill's attempt and retry counted in)."""
    return 1.0 - row["used"] / row["reserved"] if row["reserved"] > 0 else 1.0


def odds(row: dict, prior: float, weight: float = PRIOR_JOBS) -> float:
    """A policy's kill odds: its kills per job, shrunk toward ``prior`` by ``weight`` pseudo-jobs."""
    return (row["kills"] + weight * prior) / (row["jobs"] + weight)


def credibility(boards: Iterable[dict]) -> dict:
    """Per policy, how many pseudo-jobs of everyone's odds a group's own record is weighed
    against: Buhlmann-Straub's ratio of the spread of kills within the groups' ``boards``
    (each a :func:`tally`; the notebooks') to the spread of their true odds between them,
    within [MIN_PRIOR_JOBS, PRIOR_JOBS]; PRIOR_JOBS for a policy scored in fewer than two.

    The odds are then a posterior mean: a notebook's record counts as far as notebooks are
    known to differ. On the teams trace (a third of the notebooks now and then take ~3x
    their memory) the model's kills gather in a few notebooks, ~25 pseudo-jobs: a notebook
    clean for 20-100 runs is within the 1% budget. On the shared trace they fall evenly
    (100): a clean run is luck there. A fixed 100 had every notebook's model odds above
    the budget for its first hundred clean runs, and the widest served three jobs in four."""
    rows: dict = {p: [] for p in POLICIES}
    for board in boards:
        for p in POLICIES:
            if board.get(p, {}).get("jobs", 0) > 1:
                rows[p].append((board[p]["jobs"], board[p]["kills"]))
    out = {}
    for p, scored in rows.items():
        n = sum(jobs for jobs, _ in scored)
        if len(scored) < 2:
            out[p] = PRIOR_JOBS
            continue
        mean = sum(kills for _, kills in scored) / n
        # A kill is a Bernoulli trial: a group's squares about its own odds sum to k (1 - k / n).
        within = (sum(kills * (1 - kills / jobs) for jobs, kills in scored)
                  / sum(jobs - 1 for jobs, _ in scored))
        spread = sum(jobs * (kills / jobs - mean) ** 2 for jobs, kills in scored)
        between = (spread - (len(scored) - 1) * within) / (n - sum(jobs * jobs for jobs, _ in scored) / n)
        out[p] = min(PRIOR_JOBS, max(MIN_PRIOR_JOBS, within / between)) if between > 0 else PRIOR_JOBS
    return out


@dataclass
class Choice:
    """The policy a job's memory limit is taken from, and why."""

    policy: str
    group: str              # "notebook", "user", "all", "default" (too little evidence), "off" (not serving)
    odds: Optional[float]   # its kill odds in that group (None: not scored enough)
    slack: Optional[float]  # its share of memory left unused there
    why: str


def board_odds(own: dict, everyone: Optional[dict], default: Optional[str] = None,
               weights: Optional[dict] = None) -> tuple[dict, dict]:
    """(everyone's odds, the user's odds) per policy: the user's shrunk toward everyone's
    by ``weights`` (:func:`credibility`; PRIOR_JOBS without), everyone's toward the prior
    (the ``default`` policy's: DEFAULT_PRIOR_ODDS) by PRIOR_JOBS."""
    everyone = everyone or {}
    prior = {p: DEFAULT_PRIOR_ODDS if p == default else PRIOR_ODDS for p in POLICIES}
    overall = {p: odds(everyone[p], prior[p]) if p in everyone else prior[p] for p in POLICIES}
    return overall, group_odds(own, overall, weights)


def group_odds(board: dict, overall: dict, weights: Optional[dict] = None) -> dict:
    """A group's odds per policy (its ``board``, a :func:`tally`): shrunk toward ``overall`` (everyone's)
    by ``weights`` (:func:`credibility`; PRIOR_JOBS without), everyone's where it has no jobs of one."""
    weights = weights or {}
    return {p: odds(board[p], overall[p], weights.get(p, PRIOR_JOBS)) if p in board else overall[p]
            for p in POLICIES}


def choose(candidates: dict, default: str, own: dict, everyone: Optional[dict] = None,
           budget: float = KILL_BUDGET, notebook: Optional[dict] = None,
           weights: Optional[dict] = None) -> Choice:
    """The policy to serve a job's memory limit from, among ``candidates`` ({policy:
    bytes or None}): by the board of the job's notebook (``notebook``, everyone's runs
    of it), else the user's (``own``), else everyone's -- each a :func:`tally`; a group's
    odds shrunk toward everyone's by ``weights`` (:func:`credibility`; PRIOR_JOBS without)."""
    overall, mine = board_odds(own, everyone, default, weights)
    if notebook and notebook.get("_jobs", 0) >= MIN_GROUP_JOBS:
        board, group, whose, least = notebook, "notebook", "this notebook's", MIN_GROUP_JOBS
        chances = group_odds(notebook, overall, weights)
        if own.get("_jobs", 0) >= MIN_GROUP_JOBS:
            # The notebook's board is as old as the last fit; the user's newest kills count at once.
            chances = {p: max(chances[p], mine[p]) for p in POLICIES}
    elif own.get("_jobs", 0) >= MIN_GROUP_JOBS:
        board, chances, group, whose = own, mine, "user", "this user's"
        least = MIN_GROUP_JOBS
    elif everyone and everyone.get("_jobs", 0) >= MIN_ALL_JOBS:
        board, chances, group, whose = everyone, overall, "all", "all users'"
        least = MIN_ALL_JOBS
    else:
        n = own.get("_jobs", 0)
        return Choice(default, "default", None, None,
                      f"{default}: the sizer's default, as only {n} of this user's finished jobs "
                      f"(fewer than {MIN_GROUP_JOBS}) and too few of all users' have scored the policies yet")
    offered = [p for p in POLICIES if candidates.get(p) is not None
               and (p == default or board.get(p, {}).get("jobs", 0) >= least)]
    if default not in offered and candidates.get(default) is not None:
        offered.append(default)
    rank = {p: (p != default, slack(board[p]) if p in board and board[p]["jobs"] else 1.0) for p in offered}
    # A policy that would leave more than MAX_EXTRA_SLACK more of its memory unused than the
    # default is not served: it buys its fewer kills too dearly (the widest can hold several
    # times a job's peak), and the default's own margins already aim at the budget.
    ceiling = (rank[default][1] if default in rank else 1.0) + MAX_EXTRA_SLACK
    affordable = [p for p in offered if p == default or rank[p][1] <= ceiling]
    within = [p for p in affordable if chances[p] <= budget]
    if within:
        pick = min(within, key=lambda p: (rank[p][1], rank[p][0]))
        how = f"the least memory left unused of the {len(within)} within the {100 * budget:.2g}% kill budget"
    else:
        pick = min(affordable, key=lambda p: (round(chances[p], 6), rank[p][0], rank[p][1]))
        how = f"the least likely to kill: none affordable was within the {100 * budget:.2g}% kill budget"
    row = board.get(pick, {"jobs": 0, "kills": 0})
    others = ", ".join(f"{p} {100 * chances[p]:.2g}% / {100 * slack(board[p]):.0f}%"
                       for p in offered if p != pick and p in board and board[p]["jobs"])
    why = (f"{pick} ({WORDS.get(pick, pick)}): would have killed {row['kills']} of {whose} last {row['jobs']} "
           f"scored jobs (odds {100 * chances[pick]:.2g}%), leaving {100 * slack(board[pick]):.0f}% of its memory unused -- "
           f"{how}" + (f" (others, odds / unused: {others})" if others else ""))
    return Choice(pick, group, chances[pick], slack(board[pick]) if board.get(pick, {}).get("jobs") else None, why)


def notebook_key(job: dict) -> tuple:
    """The notebook a job runs, as its boards are kept: its code (features.signature)."""
    return signature(job)


def notebook_boards(records: Iterable[dict]) -> dict:
    """Per notebook (:func:`notebook_key`), everyone's board over its newest
    :data:`USER_WINDOW` scored runs, for the notebooks with at least :data:`MIN_GROUP_JOBS`."""
    runs: dict = {}
    for r in newest_first(records):
        runs.setdefault(notebook_key(r), []).append(r)
    boards = {k: tally(v, USER_WINDOW) for k, v in runs.items() if len(v) >= MIN_GROUP_JOBS}
    return {k: b for k, b in boards.items() if b["_jobs"] >= MIN_GROUP_JOBS}


def newest_first(records: Iterable[dict]) -> list:
    """Records ordered newest first by submit time (the history's own order, made sure)."""
    return sorted(records, key=lambda r: -float(r.get("submit_time") or 0.0))


def report(history: Iterable[dict], budget: float = KILL_BUDGET, default: str = "model",
           weights: Optional[dict] = None) -> dict:
    """The admin's view: every policy's jobs, kills, odds and slack over all users and
    per user, the policy each group's board would choose now, and how many of the
    recent jobs each policy sized (``sized_by``); ``weights`` as :func:`choose` is given them."""
    records = newest_first(history)
    everyone = tally(records, ALL_WINDOW)
    users: dict = {}
    for r in records:
        users.setdefault(r.get("user"), []).append(r)
    overall, _ = board_odds({}, everyone, default)

    def rows(board: dict, chances: dict) -> dict:
        return {p: {"jobs": board[p]["jobs"], "kills": board[p]["kills"], "odds": round(chances[p], 5),
                    "slack": round(slack(board[p]), 4)}
                for p in POLICIES if board.get(p, {}).get("jobs")}

    everything = {p: 1.0 for p in POLICIES}  # every policy offered: which the board prefers
    groups = [{"group": "all", "jobs": everyone["_jobs"], "rows": rows(everyone, overall),
               "chosen": choose(everything, default, {}, everyone, budget).policy}]
    for user, own_records in sorted(users.items(), key=lambda kv: str(kv[0])):
        own = tally(own_records, USER_WINDOW)
        if not own["_jobs"]:
            continue
        _, mine = board_odds(own, everyone, default, weights)
        choice = choose(everything, default, own, everyone, budget, weights=weights)
        groups.append({"group": f"user {user}", "jobs": own["_jobs"], "rows": rows(own, mine),
                       "chosen": choice.policy, "decided_by": choice.group})
    sized_by: dict = {}
    for r in records[:ALL_WINDOW]:
        chosen = ((r.get("predicted") or {}).get(KEY) or {}).get("chosen")
        if chosen:
            sized_by[chosen] = sized_by.get(chosen, 0) + 1
    return {"budget": budget, "policies": list(POLICIES), "groups": groups, "sized_by": sized_by}
