"""A user's first run of a notebook variant is placed by how far everyone's runs put
that variant from the ones the user ran (demand.variants)."""

import math

import numpy as np

from demand import variants
from demand.features import LEVEL_CONFIG, LEVEL_NOTEBOOK, history_summary, signature
from demand.policy import GB, MB
from demand.sizing import Sizer

BOUNDS = {"cpu": (0.5, 4.0), "memory": (256 * MB, 32 * GB), "timeout": (60, 7200)}
SHARED = {"code_cells": 40, "source_bytes": 9000, "imports": ["torch"]}
#: Typical peak (MB) of each model size; a user's data scales all of them alike.
PEAK = {"small": 300.0, "large": 3000.0}


def _run(i, user, peak_mb, params, notebook=SHARED):
    return dict(notebook, user=user, params=params,
                submit_time=1_700_000_000 + 300 * i, end_time=1_700_000_000 + 300 * i + 60,
                status="succeeded", reason=None, requested={},
                allocated={"cpu": 1, "memory": 8 * GB, "timeout": 3600},
                used={"peak_memory": peak_mb * MB, "cpu_seconds": 50.0, "wall_seconds": 60.0})


def _history(n=480, seed=0):
    """u0..u5 run the shared notebook, mostly with the small model and a few times with
    the large one (too few for peers to size it); dee, with a quarter of their data,
    only ever ran the small one."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        user = f"u{i % 6}" if i % 5 else "dee"
        size = "large" if user in ("u1", "u2") and i % 40 == 1 else "small"
        scale = 0.25 if user == "dee" else 1.0
        out.append(_run(i, user, PEAK[size] * scale * rng.lognormal(0, 0.05), {"model": size}))
    return out


def test_shift_and_level_of_a_variant():
    sig = signature(SHARED)
    table = {sig: {"level": math.log(300), "effects": {("model", "small"): 0.0, ("model", "large"): math.log(10),
                                                       ("region", "eu"): 0.0, ("region", "us"): 0.0}}}
    large = dict(SHARED, params={"model": "large", "region": "eu"})
    ran_small = {"level": LEVEL_NOTEBOOK, "anchor": math.log(75),
                 "variants": [(("model", "small"), ("region", "us"))] * 3}
    # Ten times the small model's level, from the user's own 75 MB; the region moves nothing.
    assert abs(math.exp(variants.base(table, large, ran_small)) - 750) < 1e-6
    # A notebook its user never ran: everyone's level of that variant.
    assert abs(math.exp(variants.base(table, large, {"anchor": math.log(75)})) - 3000) < 1e-6
    # A value nobody ran enough, or nothing known of the ones the user ran: no estimate.
    assert variants.base(table, dict(SHARED, params={"model": "huge"}), ran_small) is None
    assert variants.base(table, large, dict(ran_small, variants=[(("model", "tiny"),)])) is None


def test_effects_are_per_value_and_need_enough_runs():
    """A combination nobody ran is placed by its values; a parameter that moves nothing
    gets no effect to speak of."""
    rng = np.random.default_rng(1)
    runs = []
    for i in range(120):
        size, region = ("small", "large")[i % 2], ("eu", "us", "asia")[i % 3]
        if size == "large" and region == "asia":
            continue  # never run together
        runs.append(_run(i, f"u{i % 4}", PEAK[size] * rng.lognormal(0, 0.05), {"model": size, "region": region}))
    fit = variants.effects(runs)["memory"][signature(SHARED)]
    level = fit["level"] + fit["effects"][("model", "large")] + fit["effects"][("region", "asia")]
    assert abs(math.exp(level) / 3000 - 1) < 0.1  # (the ridge shrinks a little)
    assert all(abs(fit["effects"][("region", r)]) < 0.03 for r in ("eu", "us", "asia"))
    few = runs[:variants.MIN_NOTEBOOK_RUNS - 1]
    assert variants.effects(few)["memory"] == {}


def test_first_run_of_a_large_variant_is_sized_for_it(tmp_path):
    history = _history()
    sizer = Sizer(tmp_path, BOUNDS)
    sizer.retrain(history)
    model = sizer.bundle.model
    assert model.mature
    dee = [h for h in history if h["user"] == "dee"][::-1]
    first = dict(SHARED, user="dee", params={"model": "large"}, requested={}, retry_of=None)
    out = sizer.size(first, dee, now=history[-1]["end_time"])
    # dee's large run needs about 750 MB (a quarter of the others' 3 GB), ten times her
    # small runs: covered, without the margin of a blind guess.
    assert 1.2 * 750 <= out["allocated"]["memory"] / MB <= 8 * 750, out
    assert not out["predicted"].get("peers")


def test_a_variant_nobody_places_is_sized_like_its_kind_while_the_model_is_young(tmp_path):
    """dee's first run with a model size nobody ran: no run says how far it moves usage,
    and too few calibration jobs say how far such guesses miss, so it gets no less than
    jobs of its kind (torch: bob's 6 GB notebook among them) reach -- not a margin over
    her own small runs. Her re-run of the small model keeps its own, tight limit."""
    heavy = {"code_cells": 12, "source_bytes": 3000, "imports": ["torch"]}
    history = [_run(i, "bob", 6000.0, {}, heavy) if i % 10 == 9 else h for i, h in enumerate(_history(160))]
    sizer = Sizer(tmp_path, BOUNDS)
    sizer.retrain(history)
    assert sizer.bundle.model is not None and not sizer.bundle.model.mature
    dee = [h for h in history if h["user"] == "dee"][::-1]
    job = dict(SHARED, user="dee", requested={}, retry_of=None)
    huge = sizer.size(dict(job, params={"model": "huge"}), dee, now=history[-1]["end_time"])
    assert huge["basis"] == "model" and huge["allocated"]["memory"] >= 6000 * MB, huge
    small = sizer.size(dict(job, params={"model": "small"}), dee, now=history[-1]["end_time"])
    assert small["allocated"]["memory"] <= 1000 * MB, small


def _regions(n=480, seed=0, moves=None, noise=0.05):
    """Like :func:`_history`, every run in one of three regions; dee always in ``eu``.
    ``moves``: a region's factor on memory (default: none moves it)."""
    rng = np.random.default_rng(seed)
    out = []
    for i, run in enumerate(_history(n, seed)):
        region = "eu" if run["user"] == "dee" else ("eu", "us", "asia")[i // 7 % 3]
        factor = (moves or {}).get(region, 1.0) * rng.lognormal(0, noise)
        out.append(dict(run, params=dict(run["params"], region=region),
                        used=dict(run["used"], peak_memory=run["used"]["peak_memory"] * factor)))
    return out


def test_a_text_parameter_that_changes_nothing_makes_no_new_variant(tmp_path):
    """Everyone's runs show the region moves nothing: dee's first run in ``us`` of the
    notebook she ran in ``eu`` is a re-run, sized as tightly as one in ``eu``, not a new
    variant with a new notebook's margin (which it gets while the region stays in)."""
    history = _regions()
    sizer = Sizer(tmp_path, BOUNDS)
    sizer.retrain(history)
    assert sizer.bundle.inert == {signature(SHARED): {"region": frozenset({"eu", "us", "asia"})}}
    dee = [h for h in history if h["user"] == "dee"][::-1]
    job = dict(SHARED, user="dee", requested={}, retry_of=None)
    now = history[-1]["end_time"]
    us, eu = (dict(job, params={"model": "small", "region": r}) for r in ("us", "eu"))
    masked = [variants.mask(h, sizer.bundle.inert) for h in dee]
    assert history_summary(variants.mask(us, sizer.bundle.inert), masked, now)["memory"]["level"] == LEVEL_CONFIG
    sized = sizer.size(us, dee, now=now)
    assert sized["allocated"] == sizer.size(eu, dee, now=now)["allocated"]
    # The same sizer, told nothing of the region: a variant new to dee, sized wider.
    sizer.bundle.inert = {}
    assert history_summary(us, dee, now)["memory"]["level"] == LEVEL_NOTEBOOK
    split = sizer.size(us, dee, now=now)
    # (both limits are below the admin's least memory: the predictions show the margin)
    assert split["predicted"]["memory"] > 1.2 * sized["predicted"]["memory"], (split, sized)
    assert split["allocated"]["timeout"] > 10 * sized["allocated"]["timeout"]  # a guess's timeout, not a re-run's


def test_a_text_parameter_stays_in_until_its_runs_show_it_changes_nothing():
    """A region that moves memory by a fifth, runs too noisy to tell 10% apart, or too
    few runs per value: no evidence that it changes nothing, so it keeps its variants."""
    sig = signature(SHARED)
    assert variants.inert(_regions())[sig] == {"region": frozenset({"eu", "us", "asia"})}
    assert variants.inert(_regions(moves={"us": 1.2})) == {}
    assert variants.inert(_regions(noise=0.6)) == {}
    few = _regions(n=30)  # under INERT_VALUE_RUNS runs of each region
    assert variants.inert(few) == {}
    # Only the values proven alike are masked: a region nobody ran enough stays apart.
    table = variants.inert(_regions())
    job = dict(SHARED, params={"model": "small", "region": "us", "top_k": 3})
    assert variants.mask(job, table)["params"] == {"model": "small", "region": variants.ALIKE, "top_k": 3}
    polar = dict(job, params={"model": "small", "region": "polar"})
    assert variants.mask(polar, table) is polar
