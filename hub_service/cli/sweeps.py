"""``notebook-jobs sweeps …`` (list, show, cancel, rerun, delete), and ``submit`` of a sweep (``-p lr 0.01 0.1 1``).

A sweep is one job per combination of the values given; each run is a job like any other
(``status``, ``logs``, ``cancel`` take its id), and these commands act on them together.
"""

from __future__ import annotations

import re

from .common import UserError, make_client, print_json
from .lines import human_bytes, human_duration, local, shown

SWEEP_ID = re.compile(r"[0-9a-f]{32}")


def _sweep_id(text: str) -> str:
    if not SWEEP_ID.fullmatch(text):
        raise UserError(f"no sweep {text!r}: a sweep id is 32 hex digits (see 'notebook-jobs sweeps list')")
    return text


def submit(client, args, fields: dict, headers: dict) -> int:
    """Submit a sweep (some parameter has several values); one line saying how many runs it made."""
    if args.dry_run or args.wait:
        raise UserError("--dry-run and --wait take one job; a sweep's runs are followed with "
                        "'notebook-jobs sweeps show ID'")
    sweep = client.submit(args.file, fields, headers, sweep=True)
    if args.json:
        print_json(sweep)
    else:
        print(f"sweep {sweep['id']} of {len(sweep['runs'])} runs {sweep['status']}: {client.sweep_page(sweep['id'])}")
    return 0


def _counts(sweep: dict) -> str:
    return ", ".join(f"{n} {status}" for status, n in sweep["counts"].items() if n) or "no runs"


def cmd_list(args):
    """One line per sweep, newest first."""
    answer = make_client(args).json("GET", "sweeps", params={"limit": args.limit, **({"all": "1"} if args.all else {})})
    if args.json:
        print_json(answer)
        return 0
    if not answer["sweeps"]:
        print("no sweeps")
        return 0
    print(f"{'SWEEP':<32}  {'STATUS':<9}  {'RUNS':>4}  {'SUBMITTED':<19}  NAME")
    for s in answer["sweeps"]:
        print(f"{s['id']}  {s['status']:<9}  {s['size']:>4}  {local(s['created'], '%Y-%m-%d %H:%M:%S')}  "
              f"{shown(s['name'])}  ({_counts(s)})")
    return 0


def _value(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else shown(value)


def cmd_show(args):
    """A sweep: one line per run (its parameters, status, duration, peak memory and final metrics), the best
    run for --metric marked with '*'."""
    client = make_client(args)
    query = {"metric": args.metric, "mode": args.mode} if args.metric else None
    s = client.json("GET", f"sweeps/{_sweep_id(args.sweep_id)}", params=query)
    if args.json:
        print_json(s)
        return 0
    print(f"sweep {s['id']}  {shown(s['name'])}  {s['status']} ({_counts(s)})  {client.sweep_page(s['id'])}")
    best = (s.get("best") or {}).get("job_id")
    if args.metric:
        value = s["best"]["value"]
        print(f"best by {args.metric} ({args.mode}): " + (f"{best} ({_value(value)})" if best else "none yet"))
    names = sorted({name for run in s["runs"] for name in run["parameters"]})
    metrics = s["metrics"]
    header = ["", "JOB", "STATUS", "TOOK", "PEAK MEM", *map(shown, names), *map(shown, metrics)]
    rows = [["*" if run["job_id"] == best else "", run["job_id"], run["status"], human_duration(run["duration"]),
             human_bytes(run["used"].get("peak_memory")) if run["used"].get("peak_memory") else "-",
             *(_value(run["parameters"].get(name, "")) for name in names),
             *(_value(run["metrics"][m]) if m in run["metrics"] else "-" for m in metrics)] for run in s["runs"]]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths)).rstrip())
    return 0


def cmd_cancel(args):
    """Cancel every run of a sweep not ended."""
    s = make_client(args).json("POST", f"sweeps/{_sweep_id(args.sweep_id)}/cancel")
    if args.json:
        print_json(s)
    else:
        print(f"sweep {s['id']} {s['status']} ({_counts(s)})")
    return 0


def cmd_rerun(args):
    """Run a sweep's ended runs again (--failed-only: the failed ones)."""
    client = make_client(args)
    s = client.json("POST", f"sweeps/{_sweep_id(args.sweep_id)}/rerun", json={"failed_only": args.failed_only})
    if args.json:
        print_json(s)
    else:
        print(f"sweep {s['id']}: {len(s['rerun'])} run(s) again, {s['status']}  {client.sweep_page(s['id'])}")
    return 0


def cmd_delete(args):
    """Delete a sweep with all its runs and their outputs (its runs not ended are cancelled first)."""
    sweep_id = _sweep_id(args.sweep_id)
    make_client(args).call("DELETE", f"sweeps/{sweep_id}")
    print(f"sweep {sweep_id} deleted, with its runs")
    return 0


def add_commands(add) -> None:
    """The ``sweeps`` command and its subcommands (``add`` makes a subparser with --url/--token)."""
    p = add("sweeps", help="parameter sweeps: list, show, cancel, rerun, delete (submit one with -p NAME V1 V2 …)",
            description="Parameter sweeps: one job per combination of values, submitted with "
                        "'notebook-jobs submit nb.ipynb -p lr 0.01 0.1 1 -p depth 2 4'.")
    sub = p.add_subparsers(dest="sweeps_command", required=True, metavar="SUBCOMMAND")
    parent = add.keywords["parents"]

    def command(name, func, help, sweep_id=True, json=True):
        s = sub.add_parser(name, parents=parent, help=help, description=help[0].upper() + help[1:] + ".")
        if sweep_id:
            s.add_argument("sweep_id", metavar="SWEEP_ID")
        if json:
            s.add_argument("--json", action="store_true", help="print the API's answer as JSON")
        s.set_defaults(func=func)
        return s

    s = command("list", cmd_list, "list your sweeps", sweep_id=False)
    s.add_argument("--limit", type=int, default=50)
    s.add_argument("--all", action="store_true", help="everyone's sweeps (admins)")
    s = command("show", cmd_show, "a sweep's runs: parameters, status, duration, memory and final metrics")
    s.add_argument("--metric", metavar="NAME", help="mark the best run by this metric's final value")
    s.add_argument("--mode", choices=("min", "max"), default="min", help="best is the least (min) or greatest")
    command("cancel", cmd_cancel, "cancel every run of a sweep not ended")
    s = command("rerun", cmd_rerun, "run a sweep's ended runs again")
    s.add_argument("--failed-only", dest="failed_only", action="store_true", help="only the runs that failed")
    command("delete", cmd_delete, "delete a sweep with all its runs and their outputs (cancelling runs not ended)",
            json=False)
