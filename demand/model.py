"""Per-job upper quantiles of peak memory, runtime and cores.

Why this shape:

* **Anchor + learned correction.** A tree model cannot extrapolate, and a user's
  notebooks differ by orders of magnitude, so each target is predicted as a *change*
  from the anchor (the most similar earlier run of that user, see
  :func:`demand.features.history_summary`): ``log y = anchor + f(features)``. ``f``
  learns how the target moves with the parameter differences, the notebook and the
  hour, pooled over all users. Without any anchor (a new user) the base is the global
  median and ``f`` learns from the notebook alone: the cold-start model.
* **Each notebook's own scaling curve.** Trees cannot extrapolate either: a run with
  30x the usual ``n_rows`` needs a slope. For a known configuration the base is
  therefore ``anchor + b . (params - anchor params)``, with ``b`` a ridge fit of log
  target on log parameters over that notebook's runs, shrunk toward the slope pooled
  over all notebooks (so one run, or runs all with the same parameters, use the pooled
  slope).
* **Memory margins by cost, not one quantile for all.** Kills are counted per job
  but waste per byte-second, and a few long, large jobs hold most of the
  byte-seconds. Each job's memory quantile minimises its expected reserved MB-s plus
  a price per kill; the one price is fitted on the calibration window so that the
  window's jobs, sized that way, would be killed no more often than
  :data:`MEMORY_KILL_BUDGET` -- counted by the odds of the limits chosen, not only by
  the window's own errors, from which the margins were taken. Short small jobs get
  limits that cover even rare spikes, the expensive ones tight limits.
* **A variant new to its user is shifted as everyone's runs say** (:mod:`demand.variants`):
  how far a notebook's categorical values move its usage is fitted over all users' runs.
* **Noise and spikes apart.** An exact re-run's error is a mixture: run-to-run noise,
  which scales with the configuration's own noise, and rare spikes by a factor (another
  input, a leak), which do not. Its kill odds at any margin come from both (see
  :meth:`mixture`), so a quiet configuration is not sized for a noisy
  one's noise, nor a noisy one for a quiet one's spikes.
* **Exact re-runs and curves.** A re-run with known parameters -- all those that
  move the target, by the pooled slopes: 10 epochs re-run 1 as far as memory goes -- is
  predicted from the median of its last few repeats and its noise is measured among
  such repeats only; other parameter values are placed on the configuration's own curve
  (interpolated between known points, extrapolated cautiously), since usage is
  rarely log-linear in the data size.
* **Upper quantiles by split conformal calibration, not by a quantile loss.** The
  corrections are fitted on the older 75% of the history and their errors measured on
  the newest 25%; the margin is the empirical ``q``-quantile of those errors, per
  anchor level (a re-run of a known configuration is far more predictable than a new
  user's first job), with exact re-runs and runs beyond a configuration's largest apart.
  This keeps the kill rate near ``1 - q`` even when the point model is wrong, which a
  pinball-loss model fitted on few tail samples does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import ThreadpoolController

from .calibration import (MARGIN_GRID, MEMORY_QUANTILES, MIN_LEVEL_SAMPLES, MIN_PRICE_SAMPLES, calibrate,
                          mixture, mixture_kill)
from .curves import (EXACT_REPEATS, GROUP_EXACT, RELEVANT_SLOPE, along_curve, calibration_group, dominated,
                     exact_repeats, growth, irrelevant_params, killed_floor, point_key, reach)
from .features import LEVEL_CONFIG, LEVEL_NONE, LEVEL_NOTEBOOK, TARGETS, split_params, static_features, target_value
from .kinds import kind_upper, kinds
from .peers import PEER_QUANTILE, peer_upper, peers
from . import variants as categorical

#: History-derived columns, in matrix order (see :func:`demand.features.history_summary`).
HISTORY_COLUMNS = ("level", "anchor", "dist", "n_user", "n_sig", "user_med", "user_max", "sig_spread", "censored")

#: Pseudo-observations of the pooled slope in each notebook's ridge fit.
SLOPE_PRIOR_WEIGHT = 2.0
#: Pseudo-runs of the pooled noise in each configuration's noise estimate.
NOISE_PRIOR_WEIGHT = 3.0
#: Run-to-run residuals beyond this many pooled noise units are clipped when a
#: configuration's own noise is measured (spikes belong to the calibrated tail).
OUTLIER_SIGMAS = 3.0
#: Calibration jobs before the model's memory limits are served without the history
#: rules' as a floor (see :attr:`DemandModel.mature`).
MATURE_CALIBRATION = 100
#: An extrapolation's error scale grows by this share per log unit it reaches beyond the
#: largest run (1 + 0.3 x ln 30 = 2 for thirty times the rows): the further out, the
#: less the curve's shape is known, and a cost-aware margin should know that.
REACH_SCALE = 0.3
#: Targets that may grow in proportion to the data beyond a configuration's largest run
#: (see :func:`demand.curves.along_curve`). Not cores: a notebook's parallelism saturates,
#: and 1 to 2 cores from 3,000 to 10,000 rows made 1,000 cores of 3 million rows.
LINEAR_TARGETS = ("memory", "runtime")
#: Lowest memory quantile a job sized without a run of its configuration may get.
NEW_MIN_QUANTILE = 0.9
#: Share of model-sized jobs the memory margins may let be OOM-killed, by the odds of the
#: limits chosen (see :meth:`DemandModel._fit_price`): the service aims at 1% of jobs,
#: and the jobs sized before any model and the retries take the rest.
MEMORY_KILL_BUDGET = 0.006
#: The most one kill is worth, in reservations (MB-s) of the calibration window's costliest
#: job. Where no price meets the budget -- a window too small to show misses rarer than
#: one in its size, errors beyond every option -- the price would otherwise climb to no
#: end and buy the last millionth of odds at any cost: every limit the widest there is.
MAX_KILL_PRICE = 100.0


_threadpools: Optional[ThreadpoolController] = None


def _one_thread():
    """Run sklearn on one thread: these fits are small, and OpenMP start-up on every
    call costs more than it saves (10x slower here on 2 cores)."""
    global _threadpools
    if _threadpools is None:
        _threadpools = ThreadpoolController()  # scanning the loaded libraries is the slow part
    return _threadpools.limit(limits=1)


@dataclass
class DemandModel:
    """Fitted correction models and calibrated margins for the three targets."""

    quantiles: dict
    module_vocab: list = field(default_factory=list)
    param_vocab: list = field(default_factory=list)
    fallback: dict = field(default_factory=dict)     # target -> global median (log)
    estimators: dict = field(default_factory=dict)   # target -> regressor of log y - base
    margins: dict = field(default_factory=dict)      # target -> {level: margin (log)}
    columns: dict = field(default_factory=dict)      # target -> mask of columns seen with a value
    slopes: dict = field(default_factory=dict)       # target -> {param: pooled d log y / d log param}
    noise: dict = field(default_factory=dict)        # target -> pooled run-to-run noise (log)
    metrics: dict = field(default_factory=dict)
    #: Share of jobs the cost-aware memory margins aim to let be killed (None: fixed quantile).
    memory_kill_budget: Optional[float] = MEMORY_KILL_BUDGET
    kill_price: Optional[float] = None               # MB-s one kill is worth (fitted)
    #: The admin's longest timeout (s): no reservation lasts longer, whatever the runtime
    #: estimate says (None: unbounded, as models saved before it were).
    max_runtime: Optional[float] = None
    exceedance: dict = field(default_factory=dict)   # memory: group -> {quantile: calibration kill share}
    corrected: dict = field(default_factory=dict)    # target -> {group: whether the learned correction applies}
    kinds: dict = field(default_factory=dict)        # module -> (jobs importing it, log memory KIND_QUANTILE)
    tails: dict = field(default_factory=dict)        # memory: group -> error mixture (see mixture)
    peers: dict = field(default_factory=dict)        # notebook variant -> other users' runs (see demand.peers)
    variants: dict = field(default_factory=dict)     # target -> notebook -> its categorical values' effects (demand.variants)

    @property
    def mature(self) -> bool:
        """Whether enough jobs calibrated the memory margins for their tail to be known."""
        return int(self.metrics.get("memory", {}).get("n_calibration") or 0) >= MATURE_CALIBRATION

    def _row(self, job: dict, summary: dict, now: Optional[float]) -> np.ndarray:
        static = static_features(job, self.module_vocab, now)
        numeric = summary["params"]
        anchor_params = summary["anchor_params"]
        cols = [float(summary[c]) for c in HISTORY_COLUMNS] + list(static.values())
        for k in self.param_vocab:
            own = numeric.get(k, np.nan)
            cols.append(own)
            cols.append(own - anchor_params.get(k, np.nan) if anchor_params is not None else np.nan)
        return np.asarray(cols, dtype=float)

    def _base(self, target: str, job: dict, summary: dict, table: Optional[dict] = None) -> tuple[float, float]:
        """(base, error scale) of one target; the scale is 1 except for known configurations.
        ``table``: the categorical values' effects to use (default: the model's own)."""
        if summary["level"] == LEVEL_NOTEBOOK:
            # A variant its user never ran: shifted as everyone's runs say, if they do.
            effects = (getattr(self, "variants", {}) if table is None else table).get(target, {})  # (older models: none)
            shifted = categorical.base(effects, job, summary)
            if shifted is not None:
                return shifted, 1.0
        if summary["level"] == LEVEL_NONE:
            return self.fallback[target], 1.0
        if summary["level"] != LEVEL_CONFIG:
            return summary["anchor"], 1.0
        shift, scale = self._local_fit(summary, self.slopes.get(target, {}), self.noise.get(target, 0.1),
                                       linear=target in LINEAR_TARGETS)
        return summary["anchor"] + shift, scale

    @staticmethod
    def _local_fit(summary: dict, prior: dict, prior_noise: float, linear: bool = True) -> tuple[float, float]:
        """Shift of log target from the anchor run along the notebook's curve, and its noise.

        The slope comes from a ridge fit over the configuration's runs. The noise is
        measured only among runs with *exactly* these parameters (the spread within
        each group of identical parameters), shrunk toward the pooled noise: a notebook
        whose target is not log-linear in its parameters would otherwise look noisy
        when it is merely curved. A re-run of exact parameters is predicted from the
        mean of its last few exact repeats, which halves the variance a single anchor
        run carries; its error scale says so.
        """
        own, anchor = summary["params"], summary["anchor_params"]
        keys = sorted(set(own) & set(anchor))
        pts = [p for p in summary["points"] if all(k in p[0] for k in keys)]
        beta = np.array([prior.get(k, 0.0) for k in keys])
        if len(pts) >= 2 and keys:
            X = np.array([[p[0][k] for k in keys] for p in pts]).reshape(len(pts), len(keys))
            y = np.array([p[1] for p in pts])
            Xc, yc = X - X.mean(0), y - y.mean()
            A = Xc.T @ Xc + SLOPE_PRIOR_WEIGHT * np.eye(len(keys))
            beta = np.linalg.solve(A, Xc.T @ yc + SLOPE_PRIOR_WEIGHT * beta)
        groups: dict = {}
        same: dict = {}  # runs alike in every parameter that moves the target
        irrelevant = irrelevant_params(summary, prior)
        for params, value, age in summary["points"]:
            groups.setdefault(tuple(sorted(params.items())), []).append(value)
            same.setdefault(point_key(params, irrelevant), []).append(value)
        resid_ss, dof = 0.0, 0
        for vals in same.values():
            if len(vals) >= 2:
                v = np.array(vals[:10])
                # A rare spike is the calibrated tail's business, not this run's noise:
                # residuals are clipped before they count.
                r = np.clip(v - np.median(v), -OUTLIER_SIGMAS * prior_noise, OUTLIER_SIGMAS * prior_noise)
                resid_ss += float(np.sum(r ** 2))
                dof += len(v) - 1
        sigma = math.sqrt((resid_ss + NOISE_PRIOR_WEIGHT * prior_noise ** 2) / (dof + NOISE_PRIOR_WEIGHT))
        exact, ages = exact_repeats(summary, prior)
        if exact:
            recent = exact[:EXACT_REPEATS]
            # The median, not the mean: one spiked run among the last few must not
            # lift every later limit.
            level = float(np.median(recent)) + growth(exact, ages)
            return level - summary["anchor"], sigma * math.sqrt(1 + 1 / len(recent))
        slopes = dict(zip(keys, beta))
        relevant = {k for k in own if abs(slopes.get(k, prior.get(k, 1.0))) >= RELEVANT_SLOPE}
        curve = along_curve(own, groups, slopes, prior, relevant, sigma, linear)
        if curve is None:
            # Several parameters differ: move along the fitted slopes, but only where a
            # move raises the estimate (a smaller input seldom needs much less).
            curve = summary["anchor"] + (sum(max(0.0, b * (own[k] - anchor[k])) for k, b in zip(keys, beta))
                                         if keys else 0.0)
        # Beyond the largest run the error grows with the distance (see REACH_SCALE).
        return (max(curve, dominated(own, groups, relevant)) - summary["anchor"],
                sigma * math.sqrt(2.0) * (1.0 + REACH_SCALE * reach(summary, prior)))

    @staticmethod
    def _pooled_slopes(rows: list, vocab: list) -> dict:
        """Least-squares slope of (log y - anchor) on the parameter differences, over known configurations."""
        X, y = [], []
        for _, s, value in rows:
            if s["level"] == LEVEL_CONFIG and s["dist"] > 0:
                X.append([s["params"].get(k, 0.0) - s["anchor_params"].get(k, s["params"].get(k, 0.0))
                          for k in vocab])
                y.append(value - s["anchor"])
        if len(X) < 20:
            return {}
        beta = np.linalg.lstsq(np.array(X) + 0.0, np.array(y), rcond=None)[0]
        return {k: float(np.clip(b, -1.0, 2.0)) for k, b in zip(vocab, beta)}

    def kind_upper(self, job: dict) -> Optional[float]:
        """Log memory that jobs of this kind reach (see :func:`demand.kinds.kind_upper`)."""
        return kind_upper(self.kinds, job)

    @classmethod
    def fit(cls, train: list[tuple], quantiles: dict, calibration_share: float = 0.25,
            random_state: int = 0, max_runtime: Optional[float] = None) -> "DemandModel":
        """Fit on ``examples()`` output (time-ordered); the newest share calibrates.
        ``max_runtime``: the admin's longest timeout in seconds (see :meth:`_log_cost`)."""
        modules, params = {}, {}
        for job, _ in train:
            for m in job.get("imports") or ():
                modules[m] = modules.get(m, 0) + 1
            for k in split_params(job.get("params"))[0]:
                params[k] = params.get(k, 0) + 1
        model = cls(
            quantiles=dict(quantiles),
            module_vocab=sorted(m for m, _ in sorted(modules.items(), key=lambda kv: -kv[1])[:30]),
            param_vocab=sorted(k for k, _ in sorted(params.items(), key=lambda kv: -kv[1])[:8]),
            max_runtime=max_runtime,
        )
        model.kinds = kinds(train)
        model.peers = peers(train)
        cal_points: dict = {}
        for target in TARGETS:
            rows = [(i, s[target], y) for i, (j, s) in enumerate(train)
                    if (y := target_value(j.get("used"), target)) is not None]
            if len(rows) < 10:
                raise ValueError(f"too few finished jobs with a known {target} to train on ({len(rows)})")
            index = np.array([i for i, _, _ in rows])
            rows = [(train[i][0], s, y) for i, s, y in rows]
            n_fit = max(1, int(round(len(rows) * (1 - calibration_share))))
            model.fallback[target] = float(np.median([y for _, _, y in rows[:n_fit]]))
            model.slopes[target] = cls._pooled_slopes(rows[:n_fit], model.param_vocab)
            model.noise[target] = 0.1
            X = np.vstack([model._row(j, s, None) for j, s, _ in rows])
            y = np.array([y for _, _, y in rows])
            groups = np.array([calibration_group(s, model.slopes[target]) for _, s, _ in rows])
            # Pooled run-to-run noise: exact re-runs against their newest repeat (a
            # difference of two runs, hence / sqrt 2), robustly.
            exact = groups[:n_fit] == GROUP_EXACT
            if exact.sum() >= 20:
                newest = np.array([exact_repeats(s, model.slopes[target])[0][0] for (_, s, _), e
                                   in zip(rows[:n_fit], exact) if e])
                model.noise[target] = max(0.01, 1.4826 * float(np.median(np.abs(y[:n_fit][exact] - newest)))
                                          / math.sqrt(2))
            # The values' effects from the fitted part only: a calibration job's own run
            # must not tell its base.
            table = categorical.effects((j for j, _, _ in rows[:n_fit]), targets=(target,))
            base, scale = map(np.array, zip(*(model._base(target, j, s, table) for j, s, _ in rows)))
            # A column never observed (say, no anchor yet) carries nothing, and the
            # histogram binning cannot bin it.
            model.columns[target] = cols = ~np.all(np.isnan(X[:n_fit]), axis=0)
            X = X[:, cols]
            with _one_thread():
                est = HistGradientBoostingRegressor(
                    max_iter=60, learning_rate=0.15, max_leaf_nodes=15, min_samples_leaf=20,
                    early_stopping=False, random_state=random_state,
                ).fit(X[:n_fit], y[:n_fit] - base[:n_fit])
            model.estimators[target] = est
            with _one_thread():
                correction = est.predict(X[n_fit:])
            # Per group, keep the learned correction only where it beats the anchor's
            # curve on the calibration window (exact re-runs are often best left alone).
            cal_groups = groups[n_fit:]
            model.corrected[target] = {}
            for g in np.unique(cal_groups):
                sel = cal_groups == g
                with_c = np.mean(np.abs(y[n_fit:][sel] - base[n_fit:][sel] - correction[sel]))
                without = np.mean(np.abs(y[n_fit:][sel] - base[n_fit:][sel]))
                proven = sel.sum() >= MIN_LEVEL_SAMPLES and with_c <= without
                # Without an anchor the correction is the whole prediction; with one,
                # the anchor's own curve stands unless the correction proved better.
                model.corrected[target][int(g)] = bool(g < LEVEL_CONFIG or proven)
            use = np.array([model.corrected[target].get(int(g), g < LEVEL_CONFIG) for g in cal_groups])
            point = base[n_fit:] + np.where(use, correction, 0.0)
            cal = rows[n_fit:]
            errors = (y[n_fit:] - point) / scale[n_fit:]
            user_med = np.array([s["user_med"] for _, s, _ in cal])
            qs = sorted(set(MEMORY_QUANTILES) | {quantiles[target]}) if target == "memory" else [quantiles[target]]
            model.margins[target], exceed = calibrate(
                errors, y[n_fit:] - point, groups[n_fit:], y[n_fit:] - model.fallback[target],
                y[n_fit:] - user_med, qs)
            if target == "memory":
                model.exceedance = exceed
                # An exact re-run is predicted from its repeats alone unless the learned
                # correction proved better on them; then every exact re-run in the
                # history, not only the calibration window's, is an honest sample of the
                # error -- and spikes are rare enough to need them all.
                if model.corrected[target].get(GROUP_EXACT):
                    exact = groups[n_fit:] == GROUP_EXACT
                    tail = mixture((y[n_fit:] - point)[exact], scale[n_fit:][exact])
                else:
                    exact = groups == GROUP_EXACT
                    tail = mixture((y - base)[exact], scale[exact])
                model.tails = {GROUP_EXACT: tail} if tail else {}
            cal_points[target] = {"index": index[n_fit:], "point": point, "y": y[n_fit:],
                                  "groups": groups[n_fit:], "scale": scale[n_fit:]}
            q = quantiles[target]
            upper = point + np.array([model.margins[target][g][q] for g in groups[n_fit:]]) * scale[n_fit:]
            model.metrics[target] = {
                "n_train": int(n_fit), "n_calibration": int(len(cal)),
                "quantile": q,
                "mae_log": float(np.mean(np.abs(y[n_fit:] - point))) if len(cal) else None,
                "anchor_mae_log": float(np.mean(np.abs(y[n_fit:] - base[n_fit:]))) if len(cal) else None,
                "calibration_slack": float(np.mean(1 - np.exp(np.minimum(y[n_fit:] - upper, 0)))) if len(cal) else None,
                "margins": {str(g): round(m[q], 4) for g, m in model.margins[target].items()},
            }
        model.variants = categorical.effects(j for j, _ in train)
        model._fit_price(cal_points)
        # What an operator needs to judge the memory limits: whether the tail is known
        # yet, and the size a new notebook of each kind starts from.
        model.metrics["memory"]["mature"] = model.mature
        model.metrics["memory"]["kind_upper_mb"] = {m: round(math.exp(q)) for m, (_, q) in sorted(model.kinds.items())}
        return model

    # -- cost-aware memory margins ------------------------------------------------------

    def _fit_price(self, cal: dict) -> None:
        """Choose the price of a kill so that the calibration jobs' kill rate meets the budget.

        Slack is counted in byte-seconds, kills per job. A short small job can have a
        generous limit for next to no waste, a long large one cannot: so each job's
        memory quantile minimises ``expected reserved MB-s + price x P(kill)``, and the
        one price is set here, on the calibration window, as the lowest at which the
        window's jobs sized that way would have been killed no more often than
        :data:`MEMORY_KILL_BUDGET` (the conformal idea, applied to the whole rule) -- or,
        where no price meets it, :data:`MAX_KILL_PRICE` reservations of the costliest job.

        Killed how often is counted twice, and the larger counts: by the window's own
        errors, and by the odds of the options chosen (their groups' calibrated miss
        rates, never below the nominal). The first alone flatters: the margins are
        quantiles of those very errors, and a costly job on a cheap option that its
        own error happened to fit counts as safe; served, limits miss as often as their
        odds say.
        """
        mem, rt = cal["memory"], cal.get("runtime")
        rt_point = dict(zip(rt["index"].tolist(), rt["point"].tolist())) if rt else {}
        fallback_rt = self.fallback.get("runtime", math.log(600.0))
        log_cost = np.array([self._log_cost(p, rt_point.get(i, fallback_rt))
                             for i, p in zip(mem["index"].tolist(), mem["point"])])
        self.kill_price = None
        if self.memory_kill_budget is None or len(log_cost) < MIN_PRICE_SAMPLES:
            return
        # Every calibration job's options, padded to one matrix (a padded option costs inf).
        options = [self._options(g, sc) for g, sc in zip(mem["groups"], mem["scale"])]
        width = max(len(m) for m, _ in options)
        M, P = np.full((len(options), width), np.inf), np.ones((len(options), width))
        for i, (m, p) in enumerate(options):
            M[i, :len(m)], P[i, :len(p)] = m, p
        rows, weight = np.arange(len(options)), np.exp(log_cost)

        def sized(log_price: float) -> tuple[np.ndarray, np.ndarray]:
            """(log limits, kill probabilities) of the window's jobs at one price."""
            pick = np.argmin(self._expected(weight[:, None], M, P, math.exp(log_price)), axis=1)
            return mem["point"] + M[rows, pick], P[rows, pick]

        def outcome(upper: np.ndarray) -> tuple[float, float]:
            """(realised kill share, MB-s-weighted slack) of the window at these limits."""
            slack = np.sum(weight * (1 - np.exp(np.minimum(mem["y"] - upper, 0)))) / np.sum(weight)
            return float(np.mean(mem["y"] > upper)), float(slack)

        def kill_share(log_price: float) -> float:
            """The window's kill share at a price: the realised one or the odds', the larger."""
            upper, p = sized(log_price)
            return max(outcome(upper)[0], float(np.mean(p)))

        lo, hi = float(np.min(log_cost)) - 10, float(np.max(log_cost)) + math.log(MAX_KILL_PRICE)  # log price
        # Kills no price below the most a kill is worth prevents do not count against the
        # budget (a window job whose error is beyond every option is killed at any price):
        # the budget cannot be met, and the price stops at that most.
        target = max(self.memory_kill_budget, kill_share(hi))
        for _ in range(40):
            mid = (lo + hi) / 2
            if kill_share(mid) > target:
                lo = mid
            else:
                hi = mid
        self.kill_price = math.exp(hi)
        self.metrics["memory"]["tradeoff"] = [
            dict(zip(("price_log", "kill", "slack"), (float(lp), *outcome(sized(lp)[0]))))
            for lp in np.arange(math.floor(np.min(log_cost)), math.ceil(np.max(log_cost)) + 12, 1.0)]
        upper, p = sized(hi)
        kill, slack = outcome(upper)
        self.metrics["memory"].update(kill_price_log=round(hi, 3), cost_aware_kill_rate=kill,
                                      cost_aware_expected_kill_rate=float(np.mean(p)), cost_aware_slack=slack)

    def _log_cost(self, log_memory: float, log_runtime: float) -> float:
        """Log MB-s a job would reserve at its point estimates. The runtime counts up to
        the admin's longest timeout only: an extrapolated runtime can be absurd (131 days
        for an 8-hour job, far beyond a configuration's largest run) and would make the
        job look so costly that its memory margin is cut to the bone -- when no
        container may run that long anyway."""
        if self.max_runtime:
            log_runtime = min(log_runtime, math.log(self.max_runtime))
        return log_memory + log_runtime

    def _options(self, group: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """(log margins, their kill probabilities) a memory limit may be chosen from.

        An exact re-run (once enough calibrate): any margin of MARGIN_GRID, each with the
        kill probability of the error mixture. Otherwise the calibrated quantiles of the
        job's group -- a new user, notebook or variant is too rare in any calibration
        window for its kill probabilities to be known, and few enough to size
        generously, but not at any cost: a long large guess still picks among the high
        quantiles."""
        tail = getattr(self, "tails", {}).get(group)  # models saved before mixtures have none
        if tail is not None:
            return MARGIN_GRID, mixture_kill(tail, scale)
        lowest = NEW_MIN_QUANTILE if group < LEVEL_CONFIG else min(MEMORY_QUANTILES)
        qs = [q for q in self.margins["memory"][group] if q >= lowest]
        return (np.array([self.margins["memory"][group][q] * scale for q in qs]),
                np.array([self.exceedance[group][q] for q in qs]))


    @staticmethod
    def _expected(cost, margins, p, price):
        """Expected reserved MB-s of an attempt, and if killed, of the killed attempt and
        the extra of its retry (at twice the limit, see demand.sizing.RETRY_FACTOR), plus
        the price of its kill probability."""
        return cost * np.exp(margins) * (1 + 2 * p) + p * price

    def _choose(self, group: int, scale: float, log_cost: float, price: float) -> tuple[float, float]:
        """(log margin, kill probability) of the memory limit that is cheapest for this job."""
        margins, p = self._options(group, scale)
        i = int(np.argmin(self._expected(math.exp(log_cost), margins, p, price)))
        return float(margins[i]), float(p[i])



    def _peer(self, job: dict, summary: dict) -> Optional[tuple[float, float]]:
        """(centre, upper) log memory from other users' runs of the job's notebook variant, or None."""
        slopes = self.slopes.get("memory", {})
        relevant = {k for k in summary["params"] if slopes.get(k, 1.0) >= RELEVANT_SLOPE}
        return peer_upper(getattr(self, "peers", {}), job, relevant)  # (models saved before peers have none)

    def _unplaced(self, job: dict, summary: dict, group: int) -> bool:
        """Whether no run places the job's memory: a notebook new to its user, or a
        variant of it whose categorical values nobody's runs place yet (demand.variants)."""
        if group == LEVEL_NOTEBOOK:
            table = getattr(self, "variants", {}).get("memory", {})  # (older models: none)
            return categorical.base(table, job, summary) is None
        return group < LEVEL_NOTEBOOK

    def predict(self, job: dict, summary: dict, now: Optional[float]) -> dict:
        """{target: (point, upper)} in natural units (MB, seconds, cores);
        ``memory_safe``: a memory limit that covers every calibration error, for retries;
        ``memory_kill_odds`` (with a fitted kill price): the odds that the chosen margin
        is too small (at most that, when a floor below raised the limit), never below what
        an immature model's calibration window can show."""
        out, points = {}, {}
        for target in TARGETS:
            s = summary[target]
            with _one_thread():
                correction = self.estimators[target].predict(self._row(job, s, now)[None, self.columns[target]])
            base, scale = self._base(target, job, s)
            group = calibration_group(s, self.slopes.get(target, {}))
            if group not in self.margins[target]:
                group = LEVEL_CONFIG  # a model saved before extrapolations were calibrated apart
            use = self.corrected.get(target, {}).get(group, group < LEVEL_CONFIG)
            points[target] = (base + (float(correction[0]) if use else 0.0), scale, group)
        for target, (point, scale, group) in points.items():
            margins = self.margins[target][group]
            margin = margins[self.quantiles[target]] * scale
            if target == "memory" and getattr(self, "kill_price", None) is not None:
                margin, out["memory_kill_odds"] = self._choose(
                    group, scale, self._log_cost(point, points["runtime"][0]), self.kill_price)
                if not self.mature:
                    # Odds quoted to the user are out of sample: the next job exceeds even the
                    # largest of n calibration errors 1 time in n + 1, and an immature model's
                    # 0.999 quantile of fewer than 100 was quoted at 0.1% (teams: killed at
                    # 1.1-1.6x it). The limit stays the cost-aware one: pricing on these odds
                    # moved kills between traces without fewer in all.
                    n = int(self.metrics["memory"].get("n_calibration") or 0)
                    out["memory_kill_odds"] = max(out["memory_kill_odds"], 1.0 / (n + 1))
            upper = point + margin
            peer = self._peer(job, summary[target]) if target == "memory" and group < LEVEL_CONFIG else None
            if peer is not None:
                out["peers"] = True
                # A variant new to its user that others run: their runs are the nearest
                # evidence (see demand.peers), and its odds are theirs.
                point, upper = peer
                out["memory_kill_odds"] = 1.0 - PEER_QUANTILE
            elif target == "memory" and not self.mature and self._unplaced(job, summary[target], group):
                # A notebook new to its user, or a variant of it nobody's runs place, while
                # too few calibration jobs show how far such guesses miss: how large jobs of
                # its kind get says more than a correction from the global (or the user's) median.
                upper = max(upper, self.kind_upper(job) or upper)
            if target == "memory":
                # Killed before and not succeeded since: no smaller than the killed run's retry.
                upper = max(upper, killed_floor(summary[target]))
            out[target] = (math.exp(point), math.exp(upper))
        point, scale, group = points["memory"]
        out["memory_safe"] = max(math.exp(point + max(self.margins["memory"][group].values()) * scale),
                                 out["memory"][1])
        out.setdefault("peers", False)
        out["level"] = group
        return out
