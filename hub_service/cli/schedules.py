"""``notebook-jobs schedule …``: create, list, show, pause, resume, run and delete schedules.

A schedule runs what ``submit`` would (the same file and options), at the times a cron
expression names in a time zone. Times are shown in this machine's local time; the
schedule's own zone is what its cron means.
"""

from __future__ import annotations

import re

from ..client import Client
from . import submission
from .common import UserError, make_client, print_json
from .lines import duration, human_duration, local, shown

SCHEDULE_ID = re.compile(r"[0-9a-f]{32}")
DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
ALIASES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@weekly": "0 0 * * 0",
           "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *"}


def cron_words(cron: str) -> str:
    """A cron expression in words where it is simple ('every day at 02:30'), else 'cron <expr>'."""
    fields = ALIASES.get(cron.strip(), cron).split()
    if len(fields) != 5:
        return f"cron {cron}"
    minute, hour, dom, month, dow = fields
    num = re.compile(r"\d{1,2}")
    if not (num.fullmatch(minute) and int(minute) < 60):
        if fields[1:] == ["*"] * 4 and (minute == "*" or re.fullmatch(r"\*/\d{1,2}", minute)):
            return "every minute" if minute == "*" else f"every {int(minute[2:])} minutes"
        return f"cron {cron}"
    if hour == "*" and fields[2:] == ["*"] * 3:
        return f"every hour at :{int(minute):02d}"
    if not (num.fullmatch(hour) and int(hour) < 24):
        return f"cron {cron}"
    at = f"at {int(hour):02d}:{int(minute):02d}"
    if dom == "*" and month == "*":
        if dow == "*":
            return f"every day {at}"
        if dow == "1-5":
            return f"every weekday {at}"
        if num.fullmatch(dow) and int(dow) <= 7:
            return f"every {DAYS[int(dow) % 7]} {at}"
        if re.fullmatch(r"\d(,\d)+", dow) and all(int(d) <= 7 for d in dow.split(",")):
            names = [DAYS[int(d) % 7] for d in dow.split(",")]
            return f"every {', '.join(names[:-1])} and {names[-1]} {at}"
        return f"cron {cron}"
    if dow == "*" and num.fullmatch(dom) and 1 <= int(dom) <= 31:
        if month == "*":
            return f"on day {int(dom)} of every month {at}"
        if num.fullmatch(month) and 1 <= int(month) <= 12:
            return f"every year on {int(dom)} {MONTHS[int(month) - 1]} {at}"
    return f"cron {cron}"


def when(schedule: dict) -> str:
    """The schedule's times in words, with its zone: 'every day at 02:30 (Europe/Berlin)'."""
    return f"{cron_words(schedule['cron'])} ({schedule['timezone']})"


def _schedule_id(text: str) -> str:
    if not SCHEDULE_ID.fullmatch(text):
        raise UserError(f"no schedule {text!r}: a schedule id is 32 hex digits "
                        "(see 'notebook-jobs schedule list')")
    return text


def _next(schedule: dict) -> str:
    if schedule["paused"]:
        return "paused"
    return local(schedule["next_runs"][0]) if schedule["next_runs"] else "never"


def cmd_create(args):
    """A new schedule from a file, a workspace path or a job; one line saying when it runs."""
    sources = [s for s in (args.file, args.path, args.from_job) if s]
    if len(sources) != 1:
        raise UserError("give exactly one of FILE (uploaded now, a snapshot), --path (a notebook in your "
                        "workspace, read again at each run) or --from-job JOB_ID")
    if args.file:
        submission.check_file(args.file)
    if submission.swept(args):
        raise UserError("a schedule takes one value a parameter (-p NAME VALUE); a schedule that runs a sweep "
                        "is made with the API (POST /schedules with \"sweep\": true)")
    fields = submission.fields(args)
    fields["cron"] = args.cron
    for key in ("timezone", "overlap", "missed"):
        if getattr(args, key) is not None:
            fields[key] = getattr(args, key)
    if args.paused:
        fields["paused"] = True
    if args.path:
        fields["path"] = args.path
    if args.from_job:
        fields["from_job"] = args.from_job
    client = make_client(args)
    schedule = client.create_schedule(fields, args.file)
    if args.json:
        print_json(schedule)
    else:
        print(f"schedule {schedule['id']} created: {when(schedule)}; next run {_next(schedule)}  "
              f"{client.schedule_page(schedule['id'])}")
    return 0


def cmd_list(args):
    """One line per schedule, newest first."""
    schedules = make_client(args).schedules(all_users=args.all)
    if args.json:
        print_json({"schedules": schedules})
        return 0
    if not schedules:
        print("no schedules")
        return 0
    owner = f"{'USER':<12}  " if args.all else ""
    print(f"{'SCHEDULE':<32}  {owner}{'NEXT RUN':<20}  {'LAST':<9}  {'FAILS':>5}  {'WHEN':<40}  NAME")
    for s in schedules:
        last = s["last_runs"][0]["status"] if s["last_runs"] else "-"
        user = f"{shown(s['user']):<12}  " if args.all else ""
        fails = s["failures_in_a_row"]
        print(f"{s['id']}  {user}{_next(s):<20}  {last:<9}  {fails:>5}  {when(s):<40}  {shown(s['name'])}")
    return 0


def cmd_show(args):
    """A schedule's details, its next 5 runs and its last runs."""
    client = make_client(args)
    s = client.schedule(_schedule_id(args.schedule_id))
    if args.json:
        print_json(s)
        return 0
    source = s["source"]
    what = (f"{source['path']} in your workspace (read at each run)" if source["kind"] == "path"
            else f"{source['input_name']} (uploaded {s['created'][:10]}, a snapshot)")
    rows = [
        ("schedule", s["id"]), ("name", s["name"]), ("user", s["user"]), ("runs", what),
        ("when", f"{when(s)}  [{s['cron']}]"), ("state", "paused" if s["paused"] else "active"),
        ("if still running", {"skip": "skip the run", "queue": "queue it"}.get(s["overlap"], s["overlap"])),
        ("missed runs", {"skip": "skipped", "run_once": "run once"}.get(s["missed"], s["missed"])),
        ("notify", s["notify"]),
    ]
    if s.get("parameters"):
        rows.append(("parameters", ", ".join(f"{k}={v!r}" for k, v in s["parameters"].items())))
    if s.get("resources"):
        rows.append(("resources", ", ".join(f"{k}={v}" for k, v in s["resources"].items())))
    rows += [("failures in a row", str(s["failures_in_a_row"])), ("last error", s["last_error"] or "-"),
             ("page", client.schedule_page(s["id"]))]
    width = max(len(k) for k, _ in rows) + 2
    for key, value in rows:
        print(f"{key + ':':<{width}}{shown(value)}")  # a name, a path, parameters, an error: a user's
    none = "none (paused)" if s["paused"] else "none"
    print("\nnext runs:" if s["next_runs"] else f"\nnext runs: {none}")
    for t in s["next_runs"]:
        print(f"  {local(t, '%a %Y-%m-%d %H:%M %Z')}")
    print("\nlast runs:" if s["last_runs"] else "\nlast runs: none yet")
    for run in s["last_runs"]:
        took = human_duration(duration(run)) if run.get("finished") else "-"
        reason = f"  {shown(run.get('summary') or run['reason'])}" if run.get("reason") else ""
        print(f"  {run['id']}  {run['status']:<9}  {local(run['created'])}  {took:>7}{reason}")
    return 0


def _set_paused(args, paused: bool):
    client = make_client(args)
    s = client.update_schedule(_schedule_id(args.schedule_id), {"paused": paused})
    if args.json:
        print_json(s)
    elif paused:
        print(f"schedule {s['id']} paused")
    else:
        print(f"schedule {s['id']} resumed: {when(s)}; next run {_next(s)}")
    return 0


def cmd_pause(args):
    """Stop a schedule's runs until it is resumed."""
    return _set_paused(args, True)


def cmd_resume(args):
    """Run a paused schedule at its times again."""
    return _set_paused(args, False)


def cmd_run(args):
    """Run a schedule now, outside its times; with --wait, follow the job as submit --wait does."""
    client: Client = make_client(args)
    job = client.run_schedule(_schedule_id(args.schedule_id))
    url = client.job_page(job["id"])
    if args.wait:
        from . import wait_for_job

        first_line = f"job {job['id']} started by schedule {args.schedule_id}: {url}"
        return wait_for_job(client, job, args, first_line)
    if args.json:
        print_json(job)
    else:
        print(f"job {job['id']} {job['status']}: {url}")
    return 0


def cmd_delete(args):
    """Delete a schedule; the jobs it made stay."""
    schedule_id = _schedule_id(args.schedule_id)
    make_client(args).delete_schedule(schedule_id)
    print(f"schedule {schedule_id} deleted (the jobs it made stay)")
    return 0


def add_commands(add) -> None:
    """The ``schedule`` command and its subcommands (``add`` makes a subparser with --url/--token)."""
    p = add("schedule", help="run a notebook on a schedule: create, list, show, pause, resume, run, delete",
            description="Run a notebook at the times a cron expression names, in a time zone.")
    sub = p.add_subparsers(dest="schedule_command", required=True, metavar="SUBCOMMAND")
    parent = add.keywords["parents"]

    def command(name, func, help, schedule_id=True, json=True):
        s = sub.add_parser(name, parents=parent, help=help, description=help[0].upper() + help[1:] + ".")
        if schedule_id:
            s.add_argument("schedule_id", metavar="SCHEDULE_ID")
        if json:
            s.add_argument("--json", action="store_true", help="print the API's answer as JSON")
        s.set_defaults(func=func)
        return s

    s = command("create", cmd_create, "create a schedule from a notebook, script or .zip bundle",
                schedule_id=False)
    s.add_argument("file", nargs="?", help="a .ipynb, .py or .zip to upload: each run runs this copy")
    s.add_argument("--path", metavar="PATH",
                   help="a notebook in your workspace instead of FILE: each run runs its latest "
                        "saved version")
    s.add_argument("--from-job", dest="from_job", metavar="JOB_ID",
                   help="instead of FILE: what that job ran, with its parameters and options "
                        "(options given win)")
    s.add_argument("--cron", required=True, metavar="EXPR",
                   help="when: 5 fields 'MIN HOUR DAY MONTH WEEKDAY' (e.g. '30 2 * * *' is every day "
                        "at 02:30) "
                        "or @hourly, @daily, @weekly, @monthly, @yearly")
    s.add_argument("--timezone", metavar="ZONE", help="IANA zone the cron's times are in (default: UTC), "
                                                      "e.g. Europe/Berlin")
    s.add_argument("--overlap", choices=("skip", "queue"),
                   help="when the previous run is still going: skip this one (default) or queue it")
    s.add_argument("--missed", choices=("skip", "run_once"),
                   help="runs that fell due while the service was down: skip them (default) or run once")
    s.add_argument("--paused", action="store_true", help="create it paused (resume it to start)")
    submission.add_options(s, what="schedule")

    s = command("list", cmd_list, "list your schedules", schedule_id=False)
    s.add_argument("--all", action="store_true", help="everyone's schedules (admins)")
    command("show", cmd_show, "a schedule's details, next runs and last runs")
    command("pause", cmd_pause, "pause a schedule: no runs until it is resumed")
    command("resume", cmd_resume, "resume a paused schedule")
    s = command("run", cmd_run, "run a schedule now, outside its times")
    s.add_argument("--wait", action="store_true",
                   help="show progress until the job ends; exit 1 unless it succeeded")
    s.add_argument("--log-output", action="store_true",
                   help="with --wait: also show what the notebook prints")
    command("delete", cmd_delete, "delete a schedule (the jobs it made stay)", json=False)
