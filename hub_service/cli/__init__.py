"""``notebook-jobs``: run the service, or talk to it from a terminal.

``serve`` starts the service (what the Hub runs). The other commands are a client of
the REST API (``hub_service.client``), authenticated with a Hub token
(``$JUPYTERHUB_API_TOKEN`` inside a single-user server, or ``--token``) against
``--url`` (default ``$NOTEBOOK_JOBS_URL``, else ``$JUPYTERHUB_URL/services/notebook-jobs/``).

A mistake -- a missing file, bad JSON, an unknown job, no token, a service that is down
or says no -- is one line on stderr and exit status 2, never a traceback. ``submit
--wait`` and ``wait`` exit 0 when the job succeeded and 1 when it failed or was cancelled.

What users or images made (names, parameters, descriptions, packages, errors) is printed with
its control characters shown as escapes (``lines.shown``), so it cannot drive the terminal of
whoever reads it. What a job made -- its log, an output -- goes out as its bytes to a file or a
pipe; on a terminal it is shown the same way, keeping its colours. ``--json`` is JSON, which
escapes every control character itself.
"""

from __future__ import annotations

import argparse
import codecs
import functools
import json
import os
import re
import sys

from ..client import Client, ClientError
from ..states import STATUSES, TERMINAL, Status
from . import parameters as params
from . import schedules, submission, sweeps
from .common import EXIT_ERROR, EXIT_FAILED, EXIT_INTERRUPTED, PROG, Parser, UserError, make_client, print_json
from .lines import duration, human_duration, local, shown, summary, would_run
from .progress import Progress

JOB_ID = re.compile(r"[0-9a-f]{32}")


def _job_id(text: str) -> str:
    if not JOB_ID.fullmatch(text):
        raise UserError(f"no job {text!r}: a job id is 32 hex digits (see '{PROG} list')")
    return text


def cmd_submit(args):
    """Submit a file; with --wait, follow it to its end and say how it went."""
    submission.check_file(args.file)
    if args.help_notebook:  # papermill's flag: what to pass, read locally, nothing submitted
        try:
            print(shown(params.describe(args.file), one_line=False))
        except params.ParameterError as e:
            raise UserError(str(e)) from None
        return 0
    fields = submission.fields(args)
    client = make_client(args)
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    if submission.swept(args):
        return sweeps.submit(client, args, fields, headers)
    if args.dry_run:
        job = client.submit(args.file, fields, dry_run=True)
        if args.json:
            print_json(job)
        else:
            print(would_run(job))
        return 0
    job = client.submit(args.file, fields, headers)
    url = client.job_page(job["id"])
    if not args.wait:
        if args.json:
            print_json(job)
        else:
            print(f"job {job['id']} {job['status']}: {url}")
        return 0
    return wait_for_job(client, job, args, f"job {job['id']} submitted: {url}")


def cmd_wait(args):
    """Follow a job already submitted to its end, as submit --wait does."""
    client = make_client(args)
    job_id = _job_id(args.job_id)
    # no first GET: following rides out a service that is restarting, this too
    return wait_for_job(client, {"id": job_id}, args, f"job {job_id}: {client.job_page(job_id)}")


def wait_for_job(client: Client, job: dict, args, first_line: str) -> int:
    """Show the job's progress until it ends, then the summary line; the exit status."""
    url = client.job_page(job["id"])
    # with --json, stdout holds the job alone: progress goes to a terminal on stderr, if any
    out = sys.stderr if args.json else sys.stdout
    show = not args.json or sys.stderr.isatty()
    if show:
        out.write(first_line + "\n")
        out.flush()
    try:
        job = _follow(client, job, Progress(out, out.isatty(), args.log_output) if show else None)
    except KeyboardInterrupt:
        sys.stderr.write(f"\nstopped waiting; job {job['id']} goes on: {url} "
                         f"('{PROG} cancel {job['id']}' stops it)\n")
        return EXIT_INTERRUPTED
    if args.json:
        print_json(job)
    elif job["status"] == Status.SUCCEEDED:
        print(summary(job, url))
    else:
        sys.stdout.flush()
        sys.stderr.write(summary(job, url) + "\n")
    return 0 if job["status"] == Status.SUCCEEDED else EXIT_FAILED


def _follow(client: Client, job: dict, progress) -> dict:
    """Follow the job's events until it ends; its final state."""
    try:
        return client.follow(job["id"], on_event=progress.event if progress else None,
                             on_outage=progress.note if progress else None)
    finally:
        if progress:
            progress.close()


def cmd_list(args):
    """One line per job, newest first."""
    query = {"limit": args.limit}
    if args.status:
        query["status"] = args.status
    if args.all:
        query["all"] = "1"
    answer = make_client(args).json("GET", "jobs", params=query)
    if args.json:
        print_json(answer)
        return 0
    if not answer["jobs"]:
        print("no jobs" + (f" {args.status}" if args.status else ""))
    else:
        print(f"{'JOB':<32}  {'STATUS':<9}  {'CELLS':<5}  {'SUBMITTED':<19}  {'TOOK':>7}  NAME")
    for job in answer["jobs"]:
        progress = job["progress"]
        cells = f"{progress['cells_done']}/{progress['cells_total'] or '?'}"
        created = local(job["created"], "%Y-%m-%d %H:%M:%S")
        took = human_duration(duration(job)) if job["finished"] else "-"
        print(f"{job['id']}  {job['status']:<9}  {cells:<5}  {created}  {took:>7}  {shown(job['name'])}")
    return 0


def cmd_environments(args):
    """The environments a job may run in: one line each (the default marked), with --packages their packages."""
    answer = make_client(args).json("GET", "environments")
    if args.json:
        print_json(answer)
        return 0
    print(f"{'ENVIRONMENT':<20}  {'GPU':<3}  {'PACKAGES':>8}  DESCRIPTION")
    for env in answer["environments"]:
        name = shown(env["name"]) + (" *" if env["name"] == answer["default"] else "")
        print(f"{name:<20}  {'yes' if env['gpu'] else 'no':<3}  {len(env['packages']):>8}  "
              f"{shown(env['description'])}")
        if args.packages:
            for package in env["packages"]:
                print(f"    {shown(package['name'])}=={shown(package['version'])}")
    print(f"(* the default; choose one with '{PROG} submit --env NAME')")
    return 0


def cmd_status(args):
    """One job: a line like submit's summary, or its JSON."""
    client = make_client(args)
    job = client.job(_job_id(args.job_id))
    if args.json:
        print_json(job)
    elif job["status"] in TERMINAL:
        print(summary(job, client.job_page(job["id"])))
    else:
        progress = job["progress"]
        print(f"{job['status']}  {progress['cells_done']}/{progress['cells_total'] or '?'} cells"
              f"  {client.job_page(job['id'])}")
    return 0


def cmd_logs(args):
    """The job's log; --follow keeps printing until the job ends (or Ctrl-C)."""
    r = make_client(args).call("GET", f"jobs/{_job_id(args.job_id)}/logs",
                           params={"follow": "1" if args.follow else ""}, stream=True)
    write = job_made_writer()
    with r:
        try:
            for chunk in r.iter_content(None):
                write(chunk)
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
    return 0


def job_made_writer():
    """A writer to stdout of what a job made (its log, an output), part by part: its bytes as they are
    to a file or a pipe; on a terminal, decoded and :func:`~.lines.shown` with its colours, as it may
    be another user's (an admin reads any job's) and print escapes that would drive the terminal."""
    decode = codecs.getincrementaldecoder("utf-8")(errors="replace").decode if sys.stdout.isatty() else None

    def write(data: bytes) -> None:
        if decode is None:
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(shown(decode(data), one_line=False, colours=True))
        sys.stdout.flush()

    return write


def cmd_output(args):
    """The executed notebook, or a render of it."""
    data = make_client(args).call("GET", f"jobs/{_job_id(args.job_id)}/output", params={"format": args.format}).content
    if args.output:
        try:
            with open(args.output, "wb") as f:
                f.write(data)
        except OSError as e:
            raise UserError(f"cannot write {args.output}: {e.strerror or e}") from None
    else:
        job_made_writer()(data)
    return 0


def cmd_cancel(args):
    """Cancel a job; one line saying what became of it."""
    client = make_client(args)
    job = client.json("POST", f"jobs/{_job_id(args.job_id)}/cancel")
    if args.json:
        print_json(job)
    elif job["status"] in TERMINAL:
        print(f"job {job['id']} {job['status']}")
    else:  # 202: the backend is still stopping it
        print(f"job {job['id']} is being cancelled ({job['status']} now)")
    return 0


def cmd_demand(args):
    """Offline demand-model commands against the service's own store."""
    import asyncio

    from .. import offload
    from ..app import NotebookJobs

    app = NotebookJobs()
    app.initialize(args.service_args)
    app.sizing.offload = offload.Offload(inline=True)
    if args.demand_command == "retrain":
        from ..planning import history_record

        history = [history_record(j) for j in app.store.history(limit=args.limit)]
        info = asyncio.run(app.sizing.model_call(offload.retrain, history))
    else:
        info = asyncio.run(app.sizing.model_call(offload.info))
    print(json.dumps(info, indent=2, default=str))
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line, all subcommands."""
    def connection(parser, default):
        parser.add_argument("--url", default=default,
                            help="service URL (default: $NOTEBOOK_JOBS_URL, else $JUPYTERHUB_URL/services/notebook-jobs/)")
        parser.add_argument("--token", default=default, help="Hub API token (default: $JUPYTERHUB_API_TOKEN)")
        return parser

    p = connection(Parser(prog=PROG, description="Run the service, or talk to it from a terminal."), None)
    # --url and --token also after the command (SUPPRESS: there, absent leaves the top-level value)
    common = connection(Parser(add_help=False), argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = functools.partial(sub.add_parser, parents=[common])
    sub.add_parser("serve", help="run the service (options: notebook-jobs serve --help-all)")

    s = add("submit", help="submit a notebook, script or .zip bundle",
            description="Submit a notebook, script or .zip bundle as a job. Parameters are "
                        "taken as papermill's CLI takes them; later options win.")
    s.add_argument("file", help="a .ipynb notebook, a .py script (run as a notebook) or a .zip bundle")
    submission.add_options(s)
    s.add_argument("--idempotency-key", dest="idempotency_key", metavar="KEY",
                   help="a retried submit with the same key returns the first job")
    s.add_argument("--help-notebook", action="store_true",
                   help="list the parameters the notebook declares (as papermill does), and submit nothing")
    s.add_argument("--dry-run", action="store_true",
                   help="check the submission and show how it would be sized, without running it")
    s.add_argument("--wait", action="store_true",
                   help="show progress until the job ends; exit 1 unless it succeeded")
    s.add_argument("--log-output", action="store_true", help="with --wait: also show what the notebook prints")
    s.add_argument("--json", action="store_true", help="print the job as JSON and nothing else on stdout")
    s.set_defaults(func=cmd_submit)

    s = add("list", help="list your jobs")
    s.add_argument("--status", choices=STATUSES)
    s.add_argument("--limit", type=int, default=50)
    s.add_argument("--all", action="store_true", help="everyone's jobs (admins)")
    s.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    s.set_defaults(func=cmd_list)

    s = add("environments", help="the environments a job may run in")
    s.add_argument("--packages", action="store_true", help="also list the packages each holds")
    s.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    s.set_defaults(func=cmd_environments)

    s = add("status", help="a job's status, duration and page")
    s.add_argument("job_id")
    s.add_argument("--json", action="store_true", help="print the job as JSON")
    s.set_defaults(func=cmd_status)

    s = add("wait", help="follow a job to its end, as submit --wait does")
    s.add_argument("job_id")
    s.add_argument("--log-output", action="store_true", help="also show what the notebook prints")
    s.add_argument("--json", action="store_true", help="print the job as JSON and nothing else on stdout")
    s.set_defaults(func=cmd_wait)

    s = add("logs", help="print a job's log",
            description="Print a job's log. To a file or a pipe it is the log's bytes; on a terminal, "
                        "control characters other than colours are shown as escapes (\\x1b).")
    s.add_argument("job_id")
    s.add_argument("-f", "--follow", action="store_true", help="keep printing until the job ends")
    s.set_defaults(func=cmd_logs)

    s = add("output", help="download a job's output")
    s.add_argument("job_id")
    s.add_argument("--format", default="ipynb", choices=["ipynb", "html", "md", "metrics"])
    s.add_argument("-o", "--output", help="file to write (default: stdout)")
    s.set_defaults(func=cmd_output)

    s = add("cancel", help="cancel a job")
    s.add_argument("job_id")
    s.add_argument("--json", action="store_true", help="print the job as JSON")
    s.set_defaults(func=cmd_cancel)

    schedules.add_commands(add)
    sweeps.add_commands(add)

    s = sub.add_parser("demand", help="the demand model: retrain, info")
    s.add_argument("demand_command", choices=["retrain", "info"])
    s.add_argument("--limit", type=int, default=100000, help="most recent jobs to learn from")
    s.add_argument("service_args", nargs=argparse.REMAINDER, help="service options, e.g. --data-dir=…")
    s.set_defaults(func=cmd_demand)
    return p


def main(argv=None) -> int:
    """Run one command; its exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "serve":
        from ..app import NotebookJobs

        NotebookJobs.launch_instance(argv[1:])
        return 0
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (UserError, ClientError) as e:
        sys.stdout.flush()
        sys.stderr.write(f"{PROG}: error: {shown(e)}\n")  # a service's message may quote what a user made
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. '… logs ID | head': the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
