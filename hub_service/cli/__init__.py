"""``notebook-jobs``: run the service, or talk to it from a terminal.

``serve`` starts the service (what the Hub runs). The other commands are a thin client
of the REST API, authenticated with a Hub token (``$JUPYTERHUB_API_TOKEN`` inside a
single-user server, or ``--token``) against ``--url`` (default
``$JUPYTERHUB_URL/services/notebook-jobs/``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

TERMINAL = ("succeeded", "failed", "cancelled")


class Client:
    """Minimal REST client of the service."""

    def __init__(self, url: str, token: str):
        import requests

        self.base = url.rstrip("/") + "/api/"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"token {token}"

    def call(self, method: str, path: str, **kwargs):
        r = self.http.request(method, self.base + path, **kwargs)
        if r.status_code >= 400:
            try:
                message = r.json()["error"]["message"]
            except Exception:
                message = r.text[:500]
            raise SystemExit(f"error {r.status_code}: {message}")
        return r

    def wait(self, job_id: str, interval: float = 1.0) -> dict:
        while True:
            job = self.call("GET", f"jobs/{job_id}").json()
            if job["status"] in TERMINAL:
                return job
            time.sleep(interval)


def _client(args) -> Client:
    token = args.token or os.environ.get("JUPYTERHUB_API_TOKEN")
    if not token:
        raise SystemExit("no token: pass --token or set JUPYTERHUB_API_TOKEN")
    url = args.url or os.environ.get("NOTEBOOK_JOBS_URL") or (
        os.environ.get("JUPYTERHUB_URL", "http://127.0.0.1:8000").rstrip("/") + "/services/notebook-jobs/"
    )
    return Client(url, token)


def cmd_submit(args):
    client = _client(args)
    data = {}
    for key in ("name", "parameters", "resources", "timeout", "callback_url", "output_formats", "entry"):
        value = getattr(args, key, None)
        if value is not None:
            data[key] = value
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    with open(args.file, "rb") as f:
        job = client.call("POST", "jobs", files={"file": (os.path.basename(args.file), f)}, data=data,
                          headers=headers).json()
    if args.wait:
        job = client.wait(job["id"])
    print(json.dumps(job, indent=2))
    return 0 if not args.wait or job["status"] == "succeeded" else 1


def cmd_list(args):
    params = {"limit": args.limit}
    if args.status:
        params["status"] = args.status
    if args.all:
        params["all"] = "1"
    for job in _client(args).call("GET", "jobs", params=params).json()["jobs"]:
        progress = job["progress"]
        print(f"{job['id']}  {job['status']:<9}  {progress['cells_done']}/{progress['cells_total'] or '?':<4}"
              f"  {job['created'][:19]}  {job['name']}")
    return 0


def cmd_logs(args):
    r = _client(args).call("GET", f"jobs/{args.job_id}/logs", params={"follow": "1" if args.follow else ""},
                           stream=True)
    for chunk in r.iter_content(None):
        sys.stdout.write(chunk.decode("utf-8", "replace"))
        sys.stdout.flush()
    return 0


def cmd_output(args):
    data = _client(args).call("GET", f"jobs/{args.job_id}/output", params={"format": args.format}).content
    if args.output:
        with open(args.output, "wb") as f:
            f.write(data)
    else:
        sys.stdout.buffer.write(data)
    return 0


def cmd_cancel(args):
    print(json.dumps(_client(args).call("POST", f"jobs/{args.job_id}/cancel").json(), indent=2))
    return 0


def cmd_demand(args):
    """Offline demand-model commands against the service's own store."""
    import asyncio

    from .app import NotebookJobs
    from .offload import Offload

    app = NotebookJobs()
    app.initialize(args.service_args)
    app.sizing.offload = Offload(inline=True)
    if args.demand_command == "retrain":
        from .jobs import history_record

        history = [history_record(j) for j in app.store.history(limit=args.limit)]
        info = asyncio.run(app.sizing.retrain(history))
    else:
        info = asyncio.run(app.sizing.info())
    print(json.dumps(info, indent=2, default=str))
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "serve":
        from .app import NotebookJobs

        NotebookJobs.launch_instance(argv[1:])
        return 0
    parser = argparse.ArgumentParser(prog="notebook-jobs", description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="service URL (default: $JUPYTERHUB_URL/services/notebook-jobs/)")
    parser.add_argument("--token", help="Hub API token (default: $JUPYTERHUB_API_TOKEN)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the service (options: notebook-jobs serve --help-all)")

    p = sub.add_parser("submit", help="submit a notebook, script or .zip bundle")
    p.add_argument("file")
    p.add_argument("--name")
    p.add_argument("--parameters", help="JSON object")
    p.add_argument("--resources", help='JSON, e.g. {"cpu": 1, "memory": "2GB"}')
    p.add_argument("--timeout", type=float)
    p.add_argument("--callback-url", dest="callback_url")
    p.add_argument("--output-formats", dest="output_formats")
    p.add_argument("--entry", help="file to run inside a .zip bundle")
    p.add_argument("--idempotency-key", dest="idempotency_key")
    p.add_argument("--wait", action="store_true", help="wait for the job to end; exit 1 unless it succeeded")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("list", help="list your jobs")
    p.add_argument("--status")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--all", action="store_true", help="everyone's jobs (admins)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("logs", help="print a job's log")
    p.add_argument("job_id")
    p.add_argument("-f", "--follow", action="store_true")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("output", help="download a job's output")
    p.add_argument("job_id")
    p.add_argument("--format", default="ipynb", choices=["ipynb", "html", "md"])
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.set_defaults(func=cmd_output)

    p = sub.add_parser("cancel", help="cancel a job")
    p.add_argument("job_id")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("demand", help="the demand model: retrain, info")
    p.add_argument("demand_command", choices=["retrain", "info"])
    p.add_argument("--limit", type=int, default=100000, help="most recent jobs to learn from")
    p.add_argument("service_args", nargs=argparse.REMAINDER, help="service options, e.g. --data-dir=…")
    p.set_defaults(func=cmd_demand)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
