"""Command line of the demand package: ``python -m demand.cli COMMAND ...``.

``train``    fit a new model version offline from a JSON-lines job history;
``trace``    write a synthetic trace (the ``habits`` family) as CSV;
``simulate`` replay a trace CSV under sizing policies and print their metrics;
``forecast`` score the hour-of-week load forecast on a trace against seasonal naive.

The commands live here, not in the modules they drive, so that no library module is
ever run as ``__main__`` (and imported twice), and the serving modules import no
benchmark code.
"""

from __future__ import annotations

import argparse
import json
import sys


def train(args) -> int:
    """Fit and save a new version; print its info."""
    from .sizing import Sizer
    from .train import read_jsonl

    info = Sizer(args.model_dir, bounds=None).retrain(read_jsonl(args.history))
    info.pop("forecast", None)
    print(json.dumps(info, indent=2))
    return 0


def trace(args) -> int:
    """Write a synthetic trace."""
    from .replay.trace import generate, write_csv

    rows = generate(args.days, args.users, args.seed)
    if args.output == "-":
        write_csv(rows, sys.stdout)
    else:
        with open(args.output, "w", newline="") as f:
            write_csv(rows, f)
        print(f"{len(rows)} jobs -> {args.output}", file=sys.stderr)
    return 0


def simulate(args) -> int:
    """Replay a trace under the named policies."""
    from .policy import GB
    from .replay.policies import POLICIES
    from .replay.simulate import format_table, plot, run
    from .replay.trace import read_csv

    names = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = set(names) - set(POLICIES)
    if unknown:
        raise SystemExit(f"python -m demand.cli simulate: unknown policies: {', '.join(sorted(unknown))}")
    out = run(read_csv(args.trace), names, {"cpu": args.cpus, "memory": args.memory_gb * GB}, args.retrain_hours)
    if args.plot:
        plot(out["policies"], args.plot)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(format_table(out["policies"]))
        for series, f in out["forecast"].items():
            if isinstance(f, dict):
                print(f"forecast {series}: MASE {f['mase']:.3f} vs seasonal naive {f['seasonal_naive_mase']:.3f}")
    return 0


def forecast(args) -> int:
    """Score the load forecast on a trace."""
    from .forecast import evaluate
    from .replay.trace import read_csv

    rows = read_csv(args.trace)
    result = evaluate([r["submit_time"] for r in rows], [r["cpu_seconds"] for r in rows])
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{'series':<12} {'MASE':>8} {'naive MASE':>11} {'origins':>8}")
        for name, r in result.items():
            print(f"{name:<12} {r['mase']:>8.3f} {r['seasonal_naive_mase']:>11.3f} {r['origins']:>8}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    from .replay.policies import POLICIES

    top = argparse.ArgumentParser(prog="python -m demand.cli", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="fit a new model version from a JSON-lines job history")
    p.add_argument("--history", required=True, help="JSON lines, one finished job per line")
    p.add_argument("--model-dir", required=True)
    p.set_defaults(run=train)
    p = sub.add_parser("trace", help="write a synthetic trace as CSV")
    p.add_argument("--days", type=int, default=28)
    p.add_argument("--users", type=int, default=50)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("-o", "--output", default="-", help="CSV path, or - for stdout")
    p.set_defaults(run=trace)
    p = sub.add_parser("simulate", help="replay a trace under sizing policies")
    p.add_argument("--trace", required=True, help="trace CSV (see demand.replay.trace)")
    p.add_argument("--policies", default=",".join(POLICIES), help="comma-separated, from: " + ", ".join(POLICIES))
    p.add_argument("--cpus", type=float, default=64.0, help="cluster cpu capacity (cores)")
    p.add_argument("--memory-gb", type=float, default=256.0, help="cluster memory capacity (GiB)")
    p.add_argument("--retrain-hours", type=float, default=6.0, help="model retraining period (simulated)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--plot", help="write slack-vs-kill-rate PNG here")
    p.set_defaults(run=simulate)
    p = sub.add_parser("forecast", help="score the load forecast on a trace against seasonal naive")
    p.add_argument("--trace", required=True, help="trace CSV (see demand.replay.trace)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=forecast)
    return top


def main(argv=None) -> int:
    """Run one command."""
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
