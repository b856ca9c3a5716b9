"""Schedules against a real Hub + proxy + service (local executor), with the scheduler's clock moved by the test.

The module's Hub reads its clock from a file (``Scheduler.clock_file``) and looks for due
schedules every 0.2 s, so a test makes a run fall due by moving that clock past it, and a
restart can find runs that fell due while the service was down. Each test uses users of
its own, so the schedules of one do not fire into another's job list.
"""

import json
import sqlite3
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tests.hubtest import Hub, make_notebook, nb_bytes

UTC = timezone.utc
START = datetime(2030, 1, 1, 0, 0, 30, tzinfo=UTC)
QUICK = "print('tick')"
SLOW = "import time\ntime.sleep(60)"


@pytest.fixture(scope="module")
def shub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("schedules")
    clock = tmp / "clock"
    clock.write_text(START.isoformat())
    h = Hub(tmp, executor="local", extra_args=(
        f"--Scheduler.clock_file={clock} --Scheduler.tick_interval=0.2 --Scheduler.minimum_interval=300 "
        "--Scheduler.max_per_user=10 --Dispatcher.max_running=4 --Dispatcher.per_user=4 --Sizing.timeout_min=1"))
    h.clock = clock
    h.start()
    yield h
    h.stop()


def now(hub) -> datetime:
    return datetime.fromisoformat(hub.clock.read_text())


def set_clock(hub, when: datetime) -> None:
    hub.clock.write_text(when.isoformat())


def at(iso: str) -> datetime:
    return datetime.fromisoformat(iso)


def create(user, expect: int = 201, **body) -> dict:
    body.setdefault("code", QUICK)
    r = user.post("schedules", json=body)
    assert r.status_code == expect, r.text
    return r.json()


def runs(user, schedule_id: str) -> list:
    r = user.get("jobs", params={"schedule": schedule_id})
    assert r.status_code == 200, r.text
    return r.json()["jobs"]


def wait_for_runs(user, schedule_id: str, count: int, timeout: float = 20) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = runs(user, schedule_id)
        if len(jobs) >= count:
            return jobs
        time.sleep(0.1)
    raise AssertionError(f"schedule {schedule_id} made {len(jobs)} run(s), not {count}, in {timeout}s")


def fire(hub, schedule: dict) -> None:
    """Move the scheduler's clock one second past the schedule's next run."""
    set_clock(hub, max(now(hub), at(schedule["next_runs"][0]) + timedelta(seconds=1)))


def settle() -> None:
    """Long enough for several ticks: what has not fired by then was not going to."""
    time.sleep(1.0)


def cancel_all(user) -> None:
    for job in user.get("jobs", params={"status": "queued,running", "limit": 200}).json()["jobs"]:
        user.post(f"jobs/{job['id']}/cancel")


def test_a_due_schedule_fires_once_through_the_job_flow_and_shows_its_run(shub):
    user = shub.user("s-fire")
    other = create(user, cron="0 9 * * *", name="other")
    s = create(user, cron="30 2 * * *", timezone="Europe/Berlin", name="nightly", notify="failure",
               parameters={}, resources={"cpu": 0.5}, timeout=120)
    assert s["source"]["kind"] == "snapshot" and s["source"]["sha256"] and s["paused"] is False
    assert s["next_runs"][0] == "2030-01-01T01:30:00+00:00" and len(s["next_runs"]) == 5
    assert s["resources"] == {"cpu": 0.5} and s["timeout"] == 120 and s["notify"] == "failure"
    assert s["last_runs"] == [] and s["failures_in_a_row"] == 0 and s["url"].endswith(s["id"])
    settle()
    assert runs(user, s["id"]) == []  # not due yet
    fire(shub, s)
    [job] = wait_for_runs(user, s["id"], 1)
    assert job["schedule_id"] == s["id"] and job["name"] == "nightly" and job["notify"] == "failure"
    assert job["resources"]["requested"]["cpu"] == 0.5
    done = user.wait(job["id"])
    assert done["status"] == "succeeded", done
    settle()
    assert len(runs(user, s["id"])) == 1  # fired once, not at every tick
    assert runs(user, other["id"]) == []
    after = user.get(f"schedules/{s['id']}").json()
    assert after["next_runs"][0] == "2030-01-02T01:30:00+00:00"
    assert [r["id"] for r in after["last_runs"]] == [job["id"]] and after["last_runs"][0]["status"] == "succeeded"
    assert user.delete(f"schedules/{s['id']}").status_code == 204
    assert user.get(f"jobs/{job['id']}").json()["schedule_id"] == s["id"]  # the run outlives its schedule
    user.delete(f"schedules/{other['id']}")


@pytest.mark.parametrize("overlap,expected", [("skip", 1), ("queue", 2)])
def test_overlap_skip_leaves_out_a_run_while_the_previous_one_is_going_and_queue_makes_it(shub, overlap, expected):
    user = shub.user(f"s-overlap-{overlap}")
    s = create(user, cron="*/5 * * * *", code=SLOW, overlap=overlap)
    try:
        fire(shub, s)
        [first] = wait_for_runs(user, s["id"], 1)
        user.wait(first["id"], statuses=("running",))
        s = user.get(f"schedules/{s['id']}").json()
        fire(shub, s)
        settle()
        made = runs(user, s["id"])
        assert len(made) == expected, made
        s = user.get(f"schedules/{s['id']}").json()
        assert s["skipped"] == (1 if overlap == "skip" else 0)
        assert at(s["next_runs"][0]) > now(shub)  # advanced either way
    finally:
        cancel_all(user)
        user.delete(f"schedules/{s['id']}")


def test_pause_stops_the_runs_and_resume_starts_from_now_without_the_paused_ones(shub):
    user = shub.user("s-pause")
    s = create(user, cron="0 * * * *")
    r = user.api.patch(user.url(f"schedules/{s['id']}"), json={"paused": True})
    assert r.status_code == 200 and r.json()["paused"] is True and r.json()["next_runs"] == [], r.text
    set_clock(shub, now(shub) + timedelta(hours=3))
    settle()
    assert runs(user, s["id"]) == []
    r = user.api.patch(user.url(f"schedules/{s['id']}"), json={"paused": False})
    resumed = r.json()
    assert r.status_code == 200 and resumed["paused"] is False
    assert now(shub) < at(resumed["next_runs"][0]) <= now(shub) + timedelta(hours=1)
    settle()
    assert runs(user, s["id"]) == []  # the hours it was paused are not made up
    fire(shub, resumed)
    wait_for_runs(user, s["id"], 1)
    user.delete(f"schedules/{s['id']}")


def test_run_now_makes_a_job_at_once_and_leaves_the_timing_alone(shub):
    user = shub.user("s-run")
    s = create(user, cron="@monthly", paused=True)
    r = user.post(f"schedules/{s['id']}/run")
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["schedule_id"] == s["id"] and r.headers["Location"].endswith(job["id"])
    assert user.wait(job["id"])["status"] == "succeeded"
    again = user.get(f"schedules/{s['id']}").json()
    assert again["paused"] is True and again["next_runs"] == [] and again["last_runs"][0]["id"] == job["id"]
    user.delete(f"schedules/{s['id']}")


def test_an_uploaded_notebook_is_a_snapshot_schedule_and_form_fields_carry_the_timing(shub):
    user = shub.user("s-upload")
    nb = make_notebook("print(v)", parameters="v = 0")
    r = user.post("schedules", files={"file": ("upload.ipynb", nb_bytes(nb))},
                  data={"cron": "0 6 * * 1-5", "timezone": "America/New_York", "paused": "true", "overlap": "queue",
                        "parameters": json.dumps({"v": 2}), "output_formats": "html"})
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["source"]["kind"] == "snapshot" and s["source"]["input_name"] == "upload.ipynb"
    assert s["paused"] is True and s["overlap"] == "queue" and s["parameters"] == {"v": 2}
    assert s["output_formats"] == ["ipynb", "html"] and s["timezone"] == "America/New_York"
    job = user.post(f"schedules/{s['id']}/run").json()
    assert user.wait(job["id"])["status"] == "succeeded" and "2" in output_text(user, job["id"])
    user.delete(f"schedules/{s['id']}")


def output_text(user, job_id: str) -> str:
    nb = user.get(f"jobs/{job_id}/output").json()
    return "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))


def test_a_path_schedule_runs_the_latest_saved_notebook_and_fails_clearly_when_it_is_gone(shub):
    user = shub.user("s-path")
    workspace = shub.data / "users" / user.name / "reports"
    workspace.mkdir(parents=True, exist_ok=True)
    nb_path = workspace / "nightly.ipynb"
    nb_path.write_text(json.dumps(make_notebook("print('version', v)", parameters="v = 0")))
    s = create(user, cron="0 4 * * *", code=None, path="reports/nightly.ipynb", parameters={"v": 1})
    assert s["source"] == {"kind": "path", "path": "reports/nightly.ipynb", "input_name": "reports/nightly.ipynb",
                           "sha256": None}
    fire(shub, s)
    [first] = wait_for_runs(user, s["id"], 1)
    assert user.wait(first["id"])["status"] == "succeeded"
    assert "version 1" in output_text(user, first["id"])

    nb_path.write_text(json.dumps(make_notebook("print('edited', v)", parameters="v = 0")))
    fire(shub, user.get(f"schedules/{s['id']}").json())
    second = wait_for_runs(user, s["id"], 2)[0]
    assert user.wait(second["id"])["status"] == "succeeded"
    assert "edited 1" in output_text(user, second["id"])

    nb_path.unlink()
    fire(shub, user.get(f"schedules/{s['id']}").json())
    third = wait_for_runs(user, s["id"], 3)[0]
    assert third["status"] == "failed" and third["error"]["reason"] == "invalid_input", third
    gone = f"reports/nightly.ipynb is gone from {user.name}'s workspace"
    assert third["error"]["message"] == gone
    assert user.get(f"jobs/{third['id']}/input").status_code == 404
    r = user.post(f"jobs/{third['id']}/rerun")
    assert r.status_code == 422 and r.json()["error"]["code"] == "nothing_to_rerun", r.text
    after = user.get(f"schedules/{s['id']}").json()
    assert after["last_error"] == gone and after["failures_in_a_row"] == 1
    assert [r["status"] for r in after["last_runs"]] == ["failed", "succeeded", "succeeded"]
    user.delete(f"schedules/{s['id']}")


def test_from_job_takes_the_jobs_source_and_fields_and_the_body_overrides(shub):
    user = shub.user("s-from")
    job = user.submit(make_notebook(QUICK), name="adhoc", notify="always")
    r = user.post("schedules", json={"from_job": job["id"], "cron": "@daily", "name": "daily copy"})
    assert r.status_code == 201, r.text
    s = r.json()
    assert s["source"]["kind"] == "snapshot" and s["source"]["sha256"] == job["input"]["sha256"]
    assert s["name"] == "daily copy" and s["notify"] == "always" and s["cron"] == "@daily"
    assert s["next_runs"][0] == (now(shub) + timedelta(days=1)).replace(hour=0, minute=0, second=0).isoformat()
    assert shub.user("s-from-other").post("schedules", json={"from_job": job["id"], "cron": "@daily"}).status_code == 404
    user.delete(f"schedules/{s['id']}")


def test_another_users_schedule_is_404_on_every_endpoint_and_admins_see_and_act_on_all(shub):
    owner, stranger, admin = shub.user("s-owner"), shub.user("s-stranger"), shub.user("admin")
    s = create(owner, cron="0 5 * * *")
    sid = s["id"]
    for method, path, kw in (("get", f"schedules/{sid}", {}), ("patch", f"schedules/{sid}", {"json": {"paused": True}}),
                             ("post", f"schedules/{sid}/run", {}), ("delete", f"schedules/{sid}", {})):
        r = stranger.api.request(method, stranger.url(path), **kw)
        assert r.status_code == 404 and r.json()["error"]["message"] == f"no schedule {sid}", (method, r.text)
    assert stranger.get("schedules").json()["schedules"] == []
    assert stranger.get("schedules", params={"all": "1"}).json()["schedules"] == []  # all=1 is for admins
    assert requests.get(owner.url("schedules")).status_code == 401

    assert admin.get(f"schedules/{sid}").json()["user"] == owner.name
    assert sid in [x["id"] for x in admin.get("schedules", params={"all": "1"}).json()["schedules"]]
    assert [x["id"] for x in admin.get("schedules", params={"user": owner.name}).json()["schedules"]] == [sid]
    assert sid not in [x["id"] for x in admin.get("schedules").json()["schedules"]]  # own by default
    r = admin.api.patch(admin.url(f"schedules/{sid}"), json={"paused": True})
    assert r.status_code == 200 and r.json()["paused"] is True
    r = admin.post(f"schedules/{sid}/run")
    assert r.status_code == 201 and r.json()["user"] == owner.name  # runs as its owner
    assert admin.delete(f"schedules/{sid}").status_code == 204
    assert owner.get(f"schedules/{sid}").status_code == 404


@pytest.mark.parametrize("body,field", [
    ({"cron": "61 * * * *"}, "minute field '61'"),
    ({"cron": "* * * *"}, "has 4 fields"),
    ({"cron": "@fortnightly"}, "not a known alias"),
    ({}, "cron is required"),
    ({"cron": "@daily", "timezone": "Mars/Olympus"}, "timezone 'Mars/Olympus'"),
    ({"cron": "@daily", "overlap": "maybe"}, "overlap 'maybe'"),
    ({"cron": "@daily", "missed": "all"}, "missed 'all'"),
    ({"cron": "@daily", "paused": "perhaps"}, "paused must be true or false"),
    ({"cron": "@daily", "crn": "x"}, "unknown field(s) crn"),
    ({"cron": "* * * * *"}, "minimum interval"),
    ({"cron": "@daily", "notify": "sometimes"}, "notify 'sometimes'"),
    ({"cron": "R R * * *"}, "cron 'R R * * *': the minute field 'R' is not valid"),  # croniter's random
    ({"cron": "1-0 * * * *"}, "cron '1-0 * * * *': the minute field '1-0' is not valid"),  # reversed
    ({"cron": "0 0 L * *"}, "day-of-month field 'L'"),
    ({"cron": "0 0 * * 1#2"}, "day-of-week field '1#2'"),
    ({"cron": "0 0 0 * * *"}, "cron '0 0 0 * * *' has 6 fields"),  # seconds first
    ({"cron": "@daily", "timezone": "localtime"}, "timezone 'localtime' is not a known IANA time zone"),
    ({"cron": "@daily", "timezone": "Factory"}, "timezone 'Factory' is not a known IANA time zone"),
    ({"cron": "@daily", "code": None}, "exactly one of"),
])
def test_bad_input_is_a_400_naming_the_field_and_stores_nothing(shub, body, field):
    user = shub.user("s-bad")
    r = user.post("schedules", json=dict({"code": QUICK}, **body))
    assert r.status_code == 400 and field in r.json()["error"]["message"], r.text
    assert user.get("schedules").json()["schedules"] == []


def test_a_bad_patch_is_a_400_and_changes_nothing_and_the_per_user_limit_holds(shub):
    user = shub.user("s-limit")
    made = [create(user, cron=f"{i} 1 * * *") for i in range(10)]
    r = user.post("schedules", json={"code": QUICK, "cron": "@daily"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "too_many_schedules", r.text
    r = user.api.patch(user.url(f"schedules/{made[0]['id']}"), json={"cron": "@hourly", "timezone": "Nowhere/Land"})
    assert r.status_code == 400 and "timezone" in r.json()["error"]["message"]
    assert user.get(f"schedules/{made[0]['id']}").json()["cron"] == "0 1 * * *"
    r = user.api.patch(user.url(f"schedules/{made[0]['id']}"), json={"parameters": {"nope": 1}})
    assert r.status_code == 400 and "parameters" in r.json()["error"]["message"]
    r = user.api.patch(user.url(f"schedules/{made[0]['id']}"), json={"cron": "R 1 * * *"})
    assert r.status_code == 400 and "cron 'R 1 * * *'" in r.json()["error"]["message"], r.text
    r = user.api.patch(user.url(f"schedules/{made[0]['id']}"), json={"timezone": "localtime"})
    assert r.status_code == 400 and "timezone 'localtime'" in r.json()["error"]["message"], r.text
    assert user.get(f"schedules/{made[0]['id']}").json()["cron"] == "0 1 * * *"
    for s in made:
        user.delete(f"schedules/{s['id']}")


def test_concurrent_creates_stop_at_the_limit_and_a_delete_frees_a_place(shub):
    """80 creates at once (80 threads, a connection each) from max_per_user - 5: exactly 5 are made."""
    user = shub.user("s-race")
    body = {"code": QUICK, "cron": "@daily", "paused": True}
    for _ in range(5):
        create(user, **body)
    start = threading.Barrier(80)

    def one(_):
        with requests.Session() as session:
            session.headers["Authorization"] = f"token {user.token}"
            start.wait()
            r = session.post(user.url("schedules"), json=body, timeout=120)
            return r.status_code, r.json()["error"]["code"] if r.status_code != 201 else None

    with ThreadPoolExecutor(80) as pool:
        answers = list(pool.map(one, range(80)))
    assert sorted(answers, key=str).count((201, None)) == 5, answers
    assert answers.count((400, "too_many_schedules")) == 75, answers
    kept = user.get("schedules").json()["schedules"]
    assert len(kept) == 10
    assert user.delete(f"schedules/{kept[0]['id']}").status_code == 204
    create(user, **body)  # the place the delete freed
    r = user.post("schedules", json=body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "too_many_schedules", r.text
    for s in user.get("schedules").json()["schedules"]:
        assert user.delete(f"schedules/{s['id']}").status_code == 204
    create(user, **body)  # all ten places free again
    for s in user.get("schedules").json()["schedules"]:
        user.delete(f"schedules/{s['id']}")


def test_a_callback_to_an_ipv6_form_of_loopback_is_refused_on_create_and_patch(shub):
    user = shub.user("s-hook")
    url = "http://[2002:7f00:1::]:9911/"  # 6to4 of 127.0.0.1
    # (paused, and GPUs this Hub does not have: were the callback let through, nothing would run to call it)
    r = user.post("schedules", json={"code": QUICK, "cron": "@daily", "paused": True, "callback_url": url,
                                     "resources": {"gpu": 1000}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "callback_refused", r.text
    assert "127.0.0.1 (6to4), which is a loopback address" in r.json()["error"]["message"]
    s = create(user, cron="@daily", paused=True)
    try:
        r = user.api.patch(user.url(f"schedules/{s['id']}"), json={"callback_url": url})
        assert r.status_code == 400 and r.json()["error"]["code"] == "callback_refused", r.text
        assert user.get(f"schedules/{s['id']}").json()["callback_url"] is None
    finally:
        user.delete(f"schedules/{s['id']}")


def test_missed_runs_across_a_restart_skip_or_run_once_and_a_recorded_fire_is_made_once(shub):
    user = shub.user("s-missed")
    skip = create(user, cron="0 * * * *", missed="skip")
    once = create(user, cron="0 * * * *", missed="run_once")
    promised = create(user, cron="@yearly")
    shub.stop()
    # A fire recorded (next_run advanced, its job id promised) by a service stopped before it made the job
    job_id = uuid.uuid4().hex
    with sqlite3.connect(shub.service_data / "jobs.sqlite") as db:
        db.execute("UPDATE schedules SET pending_job = ? WHERE id = ?", (job_id, promised["id"]))
    set_clock(shub, now(shub) + timedelta(hours=5))
    shub.start()
    made = wait_for_runs(user, once["id"], 1)
    assert user.wait(job_id)["schedule_id"] == promised["id"]
    settle()
    assert len(runs(user, once["id"])) == 1 == len(made)  # five missed, one run
    assert runs(user, skip["id"]) == []
    assert [j["id"] for j in runs(user, promised["id"])] == [job_id]
    for s in (skip, once):
        after = user.get(f"schedules/{s['id']}").json()
        assert now(shub) < at(after["next_runs"][0]) <= now(shub) + timedelta(hours=1)
    assert user.get(f"schedules/{skip['id']}").json()["skipped"] == 1
    for s in (skip, once, promised):
        user.delete(f"schedules/{s['id']}")
