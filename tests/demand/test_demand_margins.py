"""How the model turns its errors into memory margins: noise and spikes apart, one
price for a kill, and what counts as a re-run."""

import math

import numpy as np

from demand.features import LEVEL_CONFIG, LEVEL_USER
from demand.calibration import MARGIN_GRID, calibrate, mixture, mixture_kill
from demand.curves import GROUP_BEYOND, GROUP_EXACT, calibration_group, exact_repeats
from demand.model import MAX_KILL_PRICE, DemandModel

SPIKES = (1.3, 2.5)  # the factor a spike multiplies a run's memory by


def _errors(n=4000, share=0.01, seed=3):
    """Log errors of exact re-runs: half quiet (noise 0.03), half noisy (0.2), with a
    share of spikes by a factor in SPIKES whatever the noise."""
    rng = np.random.default_rng(seed)
    scale = rng.choice([0.03, 0.2], n)
    raw = scale * rng.normal(0, 1, n)
    spiked = rng.random(n) < share
    raw[spiked] += np.log(rng.uniform(*SPIKES, spiked.sum()))
    return raw, scale


def _at(margin):
    return int(np.argmin(np.abs(MARGIN_GRID - margin)))


def test_spikes_are_sized_in_plain_log_and_noise_in_noise_units():
    raw, scale = _errors()
    tail = mixture(raw, scale)
    assert 0.85 < tail["spread"] < 1.15  # the body, in noise units, is the noise
    # Spikes under a noisy run's noise go unseen; each seen one stands for those: the
    # share is near the true 1 %, well above the share actually seen.
    seen = len(tail["spikes"]) / len(raw)
    assert seen < 0.008 and 0.008 < tail["share"] < 0.016
    quiet, noisy = mixture_kill(tail, 0.03), mixture_kill(tail, 0.2)
    # 20 % above the point: beyond any quiet run's noise, so only a spike kills it;
    # a noisy run is still within its noise.
    assert 0.5 * tail["share"] < quiet[_at(0.2)] < 1.5 * tail["share"]
    assert noisy[_at(0.2)] > 0.1
    # Beyond the largest spike seen the odds fade, and never to nothing.
    beyond = _at(math.log(SPIKES[1]) + 0.3)
    assert 0 < quiet[beyond] < 0.1 * tail["share"]
    assert np.all(np.diff(quiet) <= 1e-12) and np.all(np.diff(noisy) <= 1e-12)


def test_a_cheap_rerun_covers_spikes_a_costly_one_risks_them():
    raw, scale = _errors()
    model = DemandModel(quantiles={"memory": 0.99})
    model.tails = {GROUP_EXACT: mixture(raw, scale)}
    price = 1e9  # MB-s a kill is worth
    cheap, p_cheap = model._choose(GROUP_EXACT, 0.03, math.log(100 * 60), price)           # 100 MB, a minute
    costly, p_costly = model._choose(GROUP_EXACT, 0.03, math.log(20_000 * 8 * 3600), price)  # 20 GB, 8 hours
    assert cheap >= math.log(SPIKES[1]) and p_cheap < 0.001
    assert costly < math.log(SPIKES[0]) and p_costly > 0.5 * model.tails[GROUP_EXACT]["share"]


def _new_user_options(n, budget, odds_99):
    """A model whose new users' memory options are 2x, 4x and 8x their point, with these
    odds of a kill (8x: never seen short on a window of ``n``)."""
    model = DemandModel(quantiles={"memory": 0.99}, memory_kill_budget=budget)
    model.margins = {"memory": {LEVEL_USER: {0.9: math.log(2), 0.99: math.log(4), 1.0: math.log(8)}}}
    model.exceedance = {LEVEL_USER: {0.9: 0.1, 0.99: odds_99, 1.0: 1 / (n + 1)}}
    model.metrics = {"memory": {}}
    return model


def _fit_price(model, point, y, group, scale):
    """The model's kill price fitted on a calibration window of one group; its metrics."""
    n = len(point)
    model._fit_price({"memory": {"index": np.arange(n), "point": point, "y": y,
                                 "groups": np.full(n, group), "scale": np.full(n, scale)}})
    return model.metrics["memory"]


def test_one_error_no_margin_could_cover_does_not_make_the_price_infinite():
    rng = np.random.default_rng(5)
    n = 300
    raw = 0.1 * rng.normal(0, 1, n)
    raw[7] = 5.0  # 150x its repeats: beyond every margin there is
    model = DemandModel(quantiles={"memory": 0.99}, memory_kill_budget=0.001)
    model.tails = {GROUP_EXACT: mixture(raw, np.full(n, 0.1))}
    model.metrics = {"memory": {}}
    point = np.log(rng.uniform(200, 4000, n))
    metrics = _fit_price(model, point, point + raw, GROUP_EXACT, 0.1)
    assert metrics["cost_aware_kill_rate"] == 1 / n  # that one, and no other
    assert metrics["cost_aware_slack"] < 0.6  # not every limit at the widest margin (0.95)
    assert math.isfinite(model.kill_price)


def test_a_budget_no_price_can_meet_does_not_give_every_job_the_widest_margin():
    """A window of 60 first runs cannot show a miss rarer than 1 in 61: even its widest
    option has odds above a 0.6 % budget. The price stops at MAX_KILL_PRICE times the
    costliest job instead of climbing on: the costliest jobs keep a middle margin."""
    n = 60
    rng = np.random.default_rng(4)
    model = _new_user_options(n, budget=0.006, odds_99=0.02)
    point = np.log(rng.uniform(100, 20_000, n))  # MB, for the default runtime
    y = point + 0.1 * rng.random(n)
    metrics = _fit_price(model, point, y, LEVEL_USER, 1.0)
    cost = np.array([model._log_cost(p, math.log(600.0)) for p in point])  # log MB-s
    assert model.kill_price <= MAX_KILL_PRICE * math.exp(cost.max()) * 1.0001
    weight = np.exp(point)
    widest = np.sum(weight * (1 - np.exp(y - point - math.log(8)))) / weight.sum()
    assert metrics["cost_aware_slack"] < widest - 0.05
    # Cheap jobs still get the widest option: at that price their odds are worth it.
    assert model._choose(LEVEL_USER, 1.0, float(cost.min()), model.kill_price)[0] == math.log(8)


def _summary(points, params):
    """A memory history summary of a known configuration with these earlier runs."""
    log = {k: math.log1p(v) for k, v in params.items()}
    runs = [({k: math.log1p(v) for k, v in p.items()}, math.log(mb), age) for p, mb, age in points]
    return {"level": LEVEL_CONFIG, "params": log, "points": runs, "anchor": runs[0][1],
            "anchor_params": runs[0][0], "dist": 1.0}


def test_the_price_meets_the_budget_in_the_odds_not_only_on_the_window():
    """First runs whose window happened to fit every option: on those very errors no
    margin kills, yet the odds of the narrow ones are what they are (a tenth for the
    0.9 quantile). The price holds the odds of the limits it picks to the budget."""
    n = 400
    rng = np.random.default_rng(2)
    model = _new_user_options(n, budget=0.02, odds_99=0.01)
    point = np.log(rng.uniform(200, 4000, n))
    metrics = _fit_price(model, point, point + 0.1 * rng.random(n), LEVEL_USER, 1.0)
    assert metrics["cost_aware_kill_rate"] == 0.0
    assert metrics["cost_aware_expected_kill_rate"] <= 0.02
    assert metrics["cost_aware_slack"] > 1 - 1 / 2  # not every limit at the narrowest margin


def test_runs_differing_only_in_what_does_not_move_memory_are_repeats():
    summary = _summary([({"n_rows": 1000, "epochs": 3}, 520, 1.0), ({"n_rows": 10000, "epochs": 10}, 900, 2.0),
                        ({"n_rows": 1000, "epochs": 1}, 500, 3.0)], {"n_rows": 1000, "epochs": 10})
    slopes = {"n_rows": 0.8, "epochs": 0.0}
    values, ages = exact_repeats(summary, slopes)
    assert values == [math.log(520), math.log(500)] and ages == [1.0, 3.0]  # newest first
    assert calibration_group(summary, slopes) == GROUP_EXACT
    shift, _ = DemandModel._local_fit(summary, slopes, 0.1)
    assert abs(summary["anchor"] + shift - np.median(values)) < 1e-9
    # Slopes that do not know epochs assume they matter: a new point on the curve.
    assert calibration_group(summary, {}) == LEVEL_CONFIG and exact_repeats(summary, {}) == ([], [])


def test_runs_beyond_the_largest_are_calibrated_apart_and_never_surer():
    runs = [({"n_rows": 1000, "epochs": 1}, 500, 1.0), ({"n_rows": 100000, "epochs": 1}, 2000, 2.0)]
    slopes = {"n_rows": 0.8, "epochs": 0.0}
    assert calibration_group(_summary(runs, {"n_rows": 10000, "epochs": 1}), slopes) == LEVEL_CONFIG    # between
    assert calibration_group(_summary(runs, {"n_rows": 10**6, "epochs": 1}), slopes) == GROUP_BEYOND    # beyond
    assert calibration_group(_summary(runs, {"n_rows": 10000, "epochs": 10}), slopes) == LEVEL_CONFIG   # epochs do not count
    # Within the range a run misses by its noise, beyond it by a factor.
    rng = np.random.default_rng(2)
    within, beyond = rng.normal(0, 1, 400), rng.normal(0, 1, 100) * 4
    errors = np.concatenate([within, beyond])
    groups = np.array([LEVEL_CONFIG] * 400 + [GROUP_BEYOND] * 100)
    margins, exceed = calibrate(errors, errors * 0.1, groups, errors, errors, [0.9, 0.99])
    assert margins[GROUP_BEYOND][0.9] > 3 * margins[LEVEL_CONFIG][0.9]
    assert abs(exceed[GROUP_BEYOND][0.9] - 0.1) < 0.03 and abs(exceed[LEVEL_CONFIG][0.9] - 0.1) < 0.03
    # Too few extrapolations to calibrate on: never a narrower margin than within the range.
    few = np.array([LEVEL_CONFIG] * 480 + [GROUP_BEYOND] * 20)
    margins, _ = calibrate(errors, errors * 0.1, few, errors, errors, [0.9, 0.99])
    assert all(margins[GROUP_BEYOND][q] >= margins[LEVEL_CONFIG][q] for q in (0.9, 0.99))


def test_the_further_beyond_the_largest_run_the_wider_the_error_scale():
    runs = [({"n_rows": 1000}, 500, 1.0), ({"n_rows": 100000}, 2000, 2.0), ({"n_rows": 100000}, 2100, 3.0)]
    slopes = {"n_rows": 0.8}
    scale = {n: DemandModel._local_fit(_summary(runs, {"n_rows": n}), slopes, 0.1)[1] for n in (10000, 200000, 10**7)}
    assert scale[10000] < scale[200000] < scale[10**7]
    assert scale[10**7] > 2 * scale[10000]  # a hundred times the rows: the shape is unknown out there


def test_cores_are_not_extrapolated_in_proportion_to_the_data():
    """1 core at 3,000 rows, 2 at 10,000: memory may grow with the rows, cores saturate --
    3 million rows are not sized at hundreds of cores (a model that did was refused and
    its jobs sized by the rules)."""
    runs = [({"n_rows": 3000}, 1.0, 1.0), ({"n_rows": 10_000}, 2.0, 0.5)]
    summary = _summary(runs, {"n_rows": 3_000_000})
    linear, _ = DemandModel._local_fit(summary, {"n_rows": 0.06}, 0.15)
    saturating, _ = DemandModel._local_fit(summary, {"n_rows": 0.06}, 0.15, linear=False)
    assert math.exp(summary["anchor"] + linear) > 300  # in proportion: 600 "cores"
    assert 2.0 < math.exp(summary["anchor"] + saturating) < 100
