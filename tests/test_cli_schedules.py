"""``notebook-jobs schedule …`` against the real Hub: create, list, show, pause, resume, run, delete.

Each command runs as ``python -m hub_service.cli`` in a subprocess (as tests/test_cli.py
does), in the time zone ``TZ`` says, so "local time" is one the test knows.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from hub_service.cli.schedules import cron_words
from tests.hubtest import make_notebook, nb_bytes
from tests.test_cli import JOB_URL, cli, notebook, one_error_line  # noqa: F401 - notebook is a fixture

LOCAL = "Asia/Tokyo"  # the terminal's zone: neither UTC nor the schedule's


@pytest.fixture
def cleo(hub):
    return hub.user("cleo")


def sched(user, *args, **env):
    """``notebook-jobs schedule ARGS`` in the terminal's zone."""
    return cli(user, "schedule", *args, TZ=LOCAL, **env)


def in_local(iso: str, fmt: str) -> str:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(ZoneInfo(LOCAL)).strftime(fmt)


def test_a_schedule_from_the_terminal_lives_its_whole_life(cleo, tmp_path):
    path = tmp_path / "report.ipynb"
    path.write_bytes(nb_bytes(make_notebook("print(n * 2)", parameters="n = 1")))

    r = sched(cleo, "create", str(path), "--cron", "30 2 * * *", "--timezone", "Europe/Berlin",
              "-p", "n", "21", "--notify", "failure", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert (s["cron"], s["timezone"], s["parameters"]) == ("30 2 * * *", "Europe/Berlin", {"n": 21})
    assert s["notify"] == "failure"
    assert s["source"]["kind"] == "snapshot" and s["source"]["input_name"] == "report.ipynb"
    assert len(s["next_runs"]) == 5
    sid = s["id"]

    # list: its times in words, the next run in the terminal's local time
    r = sched(cleo, "list")
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith(sid))
    assert "every day at 02:30 (Europe/Berlin)" in line
    assert in_local(s["next_runs"][0], "%Y-%m-%d %H:%M %Z") in line and "JST" in line
    assert re.search(r"\s-\s+0\s", line), line  # no run yet, no failures

    # run now, waited for as submit --wait does; then show has it among the last runs
    r = sched(cleo, "run", sid, "--wait")
    assert r.returncode == 0, (r.stdout, r.stderr)
    job_id = JOB_URL.search(r.stdout).group(1)
    assert r.stdout.splitlines()[-1].startswith("succeeded in ")
    r = sched(cleo, "show", sid)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "every day at 02:30 (Europe/Berlin)" in out and "[30 2 * * *]" in out
    assert "report.ipynb (uploaded" in out and "n=21" in out and "notify:" in out
    nexts = out.split("next runs:")[1].split("last runs:")[0].split("\n")
    expected = [in_local(t, "%a %Y-%m-%d %H:%M %Z") for t in s["next_runs"]]
    assert [x.strip() for x in nexts if x.strip()] == expected
    assert re.search(rf"{job_id}\s+succeeded", out), out

    # pause: no next runs; resume: back
    r = sched(cleo, "pause", sid)
    assert (r.returncode, r.stdout.strip()) == (0, f"schedule {sid} paused")
    assert "next runs: none (paused)" in sched(cleo, "show", sid).stdout
    assert re.search(rf"^{sid}\s+paused\s+succeeded", sched(cleo, "list").stdout, re.M)
    r = sched(cleo, "resume", sid)
    assert r.returncode == 0
    assert r.stdout.startswith(f"schedule {sid} resumed: every day at 02:30 (Europe/Berlin)")

    # another schedule from that job: its source and parameters, the options given win
    r = sched(cleo, "create", "--from-job", job_id, "--cron", "@weekly", "--paused")
    assert r.returncode == 0, r.stderr
    assert re.match(r"schedule [0-9a-f]{32} created: every Sunday at 00:00 \(UTC\); next run paused  http",
                    r.stdout)
    other = r.stdout.split()[1]
    copy = json.loads(sched(cleo, "show", other, "--json").stdout)
    assert copy["parameters"] == {"n": 21} and copy["paused"] and copy["next_runs"] == []

    # delete: gone, and said in one line after
    for victim in (sid, other):
        r = sched(cleo, "delete", victim)
        assert (r.returncode, r.stdout.strip()) == (0, f"schedule {victim} deleted (the jobs it made stay)")
    one_error_line(sched(cleo, "show", sid), "no schedule")
    assert cleo.get(f"jobs/{job_id}").status_code == 200  # the job it made stays


def test_a_schedule_of_a_workspace_notebook(hub, cleo):
    workspace = hub.data / "users" / "cleo" / "reports"
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "nightly.ipynb").write_bytes(nb_bytes(make_notebook("1")))
    r = sched(cleo, "create", "--path", "reports/nightly.ipynb", "--cron", "0 9 * * 1-5", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["source"]["kind"] == "path" and s["source"]["path"] == "reports/nightly.ipynb"
    assert "reports/nightly.ipynb in your workspace (read at each run)" in sched(cleo, "show", s["id"]).stdout
    assert sched(cleo, "delete", s["id"]).returncode == 0


@pytest.mark.parametrize("args, words", [
    (["--cron", "61 * * * *"], ["cron"]),
    (["--cron", "0 2 * * *", "--timezone", "Mars/Olympus"], ["timezone", "Mars/Olympus"]),
    (["--cron", "0 2 * * *", "--resources", "{nope"], ["resources"]),
])
def test_a_bad_schedule_is_refused_in_one_line_naming_the_field(cleo, notebook, args, words):
    before = len(cleo.get("schedules").json()["schedules"])
    one_error_line(sched(cleo, "create", notebook("1"), *args), *words)
    assert len(cleo.get("schedules").json()["schedules"]) == before  # nothing stored


@pytest.mark.parametrize("args, words", [
    (["create", "--cron", "@daily"], ["exactly one of FILE", "--path", "--from-job"]),
    (["create", "/nonexistent/nb.ipynb", "--cron", "@daily"], ["no such file"]),
    (["show", "abc"], ["no schedule 'abc'", "32 hex digits"]),
    (["pause", "0" * 32], ["no schedule"]),
    (["run", "0" * 32], ["no schedule"]),
])
def test_command_mistakes_are_one_line(cleo, args, words):
    one_error_line(sched(cleo, *args), *words)


def test_another_users_schedule_is_not_found(hub, cleo, notebook):
    s = json.loads(sched(cleo, "create", notebook("1"), "--cron", "@daily", "--paused", "--json").stdout)
    for command in ("show", "pause", "run", "delete"):
        one_error_line(sched(hub.user("bob"), command, s["id"]), "no schedule")
    assert sched(cleo, "delete", s["id"]).returncode == 0


@pytest.mark.parametrize("cron, words", [
    ("30 2 * * *", "every day at 02:30"), ("@daily", "every day at 00:00"), ("@hourly", "every hour at :00"),
    ("*/15 * * * *", "every 15 minutes"), ("0 9 * * 1-5", "every weekday at 09:00"),
    ("0 9 * * 1,3,5", "every Monday, Wednesday and Friday at 09:00"),
    ("0 6 1 * *", "on day 1 of every month at 06:00"),
    ("0 0 1 1 *", "every year on 1 January at 00:00"), ("0 */2 * * *", "cron 0 */2 * * *"),
    ("0 9 * * 7", "every Sunday at 09:00"),
])
def test_cron_in_words_where_simple(cron, words):
    assert cron_words(cron) == words
