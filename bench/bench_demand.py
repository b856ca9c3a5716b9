"""Demand-model benchmark: every policy on every trace family, several seeds, ratios against VPA.

    python bench/bench_demand.py [--families habits sweeps shared] [--seeds 1 2 3]
                                 [--days 28] [--users 50] [--plot-dir DIR] [--tables] [--json FILE]
    python bench/bench_demand.py --merge FILE...   # the summaries of runs made side by side

Each family (see bench/families) is generated on assumptions of its own; the model is
tuned to none of them. For each family and seed the trace is replayed under every
policy (fixed, requested, VPA, Autopilot, ours, the oracle, and where the generator
knows each run's noise-free memory and noise, the noise-aware bounds: sizers that know
that -- the blind one knows a notebook's first run only by its kind) and one line is
printed: the model's and VPA's kill rates (OOM + timeout, per job), the model's memory
slack as a multiple of VPA's and its distance from the long-run goal of 0.70 x VPA's,
the bound's ratio, how many sizings were non-finite (any policy), how many the model
could not give (the rules sized them) and how many fits were rejected. At the end, a
table of every policy on every family and seed (kill rate, memory slack, as a multiple
of VPA's, distance from the 0.70 goal, non-finite sizings). ``--tables`` also prints
every policy's full metrics.

Under each line, the model's and VPA's kills and memory slack by cause (see
demand.replay.causes: sized before any model existed, a new user, a notebook or variant
new to its user, parameters beyond every earlier run, new parameters within the range,
an exact re-run, a retry after a kill): each cause's share of all reserved memory-time
left unused, so the shares add up to the slack. That is what says what to fix.

Targets, on every family and seed: model kill rate <= 1% and <= VPA's, memory slack
ratio <= 1 (no worse than VPA), 0 non-finite sizings. The 0.70 goal is reported, not
required.

The targets' run is the default one: **28 days, 50 users, seeds 1 2 3**, VPA and every
other policy replayed on the very same traces. Shorter runs are for iterating only,
and say little about a learned sizer: whatever the trace's length, the model's first
~55 jobs are sized by the rules before any model exists (it trains on 50 succeeded
jobs) and its next few hundred by a model whose limits stay no lower than the rules'
until 100 jobs have calibrated its tail. Those phases are a fixed number of jobs, so
their kills are a fixed count: on the 14-day, 30-user traces (900-1,600 jobs) the
no-model phase alone cost 4-9 kills on habits, 0.4-1.0 points of the 1% budget, which
on 28 days and 50 users (3,100-5,100 jobs) is a quarter of that -- closer to a service
that runs for months.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from bench.families import FAMILIES  # noqa: E402
from demand.replay.policies import POLICIES  # noqa: E402
from demand.replay.simulate import format_causes, format_table, plot, run  # noqa: E402
from demand.policy import GB  # noqa: E402
from demand.replay.trace import HIDDEN, typed  # noqa: E402

#: The noise-aware bounds (see demand.replay.policies.NoiseAware), spending a 0.9% kill budget
#: where it saves most.
BOUND, BLIND = "noise-aware", "noise-aware-blind"
GOAL = 0.70


HEAD = (f"{'family':<7} {'seed':>4} {'jobs':>5} {'kill% model':>11} {'kill% vpa':>9} {'slack x vpa':>11} "
        f"{'vs 0.70':>7} {'bound x':>7} {'blind x':>7} {'nonfinite':>9} {'fallback':>8} {'rejected':>8} "
        f"{'target':>6} {'s':>5}")


def summary_line(family: str, seed: int, jobs: int, res: dict, seconds: float) -> str:
    """One family and seed: the model against VPA and the targets (or the first policy
    replayed besides VPA, when the model was not)."""
    m, v = res.get("model") or next(r for n, r in res.items() if n != "vpa"), res["vpa"]
    ratio = m["mem_slack"] / v["mem_slack"] if v["mem_slack"] else float("nan")
    bound = f"{res[BOUND]['mem_slack'] / v['mem_slack']:.3f}" if BOUND in res else "-"
    blind = f"{res[BLIND]['mem_slack'] / v['mem_slack']:.3f}" if BLIND in res else "-"
    nonfinite = sum(r["nonfinite"] for r in res.values())
    ok = (m["kill_rate"] <= min(v["kill_rate"], 0.01) and ratio <= 1.0 and nonfinite == 0
          and m.get("model_fallbacks", 0) == 0)
    return (f"{family:<7} {seed:>4} {jobs:>5} {100 * m['kill_rate']:>11.2f} {100 * v['kill_rate']:>9.2f} "
            f"{ratio:>11.3f} {ratio - GOAL:>+7.3f} {bound:>7} {blind:>7} {nonfinite:>9} "
            f"{m.get('model_fallbacks', 0):>8} {m.get('rejected_fits', 0):>8} {'met' if ok else 'MISSED':>6} "
            f"{seconds:>5.0f}")


def policy_table(everything: dict) -> str:
    """Every policy on every family and seed: kill rate, memory slack, as a multiple of
    VPA's and its distance from the 0.70 goal, and non-finite sizings."""
    lines = [f"{'family':<7} {'seed':>4} {'policy':<17} {'kill%':>6} {'slack':>6} {'x vpa':>6} {'vs 0.70':>7} "
             f"{'nonfinite':>9}"]
    for key, result in everything.items():
        family, seed = key.split("/")
        res = result["policies"]
        vpa = res["vpa"]["mem_slack"]
        for name, m in res.items():
            ratio = m["mem_slack"] / vpa if vpa else float("nan")
            lines.append(f"{family:<7} {seed:>4} {name:<17} {100 * m['kill_rate']:>6.2f} {m['mem_slack']:>6.3f} "
                         f"{ratio:>6.3f} {ratio - GOAL:>+7.3f} {m['nonfinite']:>9}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--days", type=int, default=28, help="days per trace (fewer: a quicker, smaller run)")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--cpus", type=float, default=64.0)
    parser.add_argument("--memory-gb", type=float, default=256.0)
    parser.add_argument("--plot-dir", help="write one slack-vs-kill PNG per family and seed here")
    parser.add_argument("--tables", action="store_true", help="print every policy's metrics too")
    parser.add_argument("--json", help="write all results to this file")
    parser.add_argument("--policies", nargs="+", metavar="NAME",
                        help="replay only these (default: all; VPA always, as the yardstick)")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="run nothing: print the summaries of earlier runs' --json files (say, one per "
                             "family and seed, run side by side)")
    args = parser.parse_args(argv)
    lines, everything = [], {}
    if args.merge:
        for path in args.merge:
            with open(path) as f:
                for key, r in json.load(f).items():
                    everything.setdefault(key, {**r, "policies": {}})["policies"].update(r["policies"])
        for key, r in everything.items():
            family, seed = key.split("/")
            lines.append(summary_line(family, int(seed), r["jobs"], r["policies"], r["seconds"]))
        print(f"## summary\n{HEAD}\n" + "\n".join(lines))
        for key, r in everything.items():
            print(f"\n## {key}: by cause\n{format_causes(r['policies'])}")
        print(f"\n## every policy\n{policy_table(everything)}")
        return 0
    print(HEAD, flush=True)
    for family in args.families:
        for seed in args.seeds:
            start = time.time()
            rows = [typed(r) for r in FAMILIES[family](args.days, args.users, seed)]
            names = list(POLICIES) + ([BOUND, BLIND] if rows and all(HIDDEN in r for r in rows) else [])
            if args.policies:
                names = [n for n in names if n in args.policies or n == "vpa"]
            out = run(rows, names, {"cpu": args.cpus, "memory": args.memory_gb * GB})
            res = out["policies"]
            everything[f"{family}/{seed}"] = {"jobs": len(rows), "seconds": time.time() - start, "policies": res}
            if args.tables:
                print(f"\n## {family}, seed {seed}: {len(rows)} jobs\n{format_table(res)}\n", flush=True)
            if args.plot_dir:
                os.makedirs(args.plot_dir, exist_ok=True)
                plot(res, os.path.join(args.plot_dir, f"demand_{family}_seed{seed}.png"))
            line = summary_line(family, seed, len(rows), res, time.time() - start)
            lines.append(line)
            print(line, flush=True)
            print(format_causes(res), flush=True)
    print(f"\n## summary ({args.days} days, {args.users} users per trace)\n{HEAD}\n" + "\n".join(lines))
    print(f"\n## every policy\n{policy_table(everything)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(everything, f, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
