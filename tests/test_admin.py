"""The admin API against the real Hub: who may read it, and whether its figures add up to the jobs run.

Usage is checked against jobs this module runs itself, under user names no other test uses,
so the sums are exact whatever else the session's Hub has run.
"""

import time
from datetime import datetime, timedelta, timezone

import pytest
import requests

from hub_service.intake import IntakeError
from hub_service.usage import hourly_counts, parse_period
from tests.hubtest import SERVICE, Hub, make_notebook

ADMIN_READS = ["admin/queue", "admin/stats", "admin/usage", "admin/demand"]
GIB = 1 << 30


@pytest.mark.parametrize("path", ADMIN_READS)
def test_every_admin_endpoint_refuses_a_user_and_answers_an_admin(alice, admin, path):
    r = alice.get(path)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["message"] == "only Hub admins may do this"
    assert admin.get(path).status_code == 200
    assert alice.post("admin/demand").status_code == 403  # nor may a user retrain the model


@pytest.mark.parametrize("path", ADMIN_READS)
def test_every_admin_endpoint_answers_no_credentials_401_json(hub, path):
    r = requests.get(hub.url + SERVICE + "api/" + path, allow_redirects=False, timeout=30)
    assert r.status_code == 401 and r.json()["error"]["message"].startswith("authentication required")


def test_all_jobs_are_an_admins_a_user_sees_only_their_own(alice, bob, admin):
    mine, theirs = alice.submit(make_notebook("1"), name="alice-own"), bob.submit(make_notebook("1"), name="bob-own")
    for params in ({"all": 1}, {"user": "bob"}, {"all": 1, "user": "bob"}):
        seen = alice.get("jobs", params=dict(params, limit=200)).json()["jobs"]
        assert {j["user"] for j in seen} == {"alice"}, params
        assert theirs["id"] not in {j["id"] for j in seen}
    everyone = {j["id"]: j["user"] for j in admin.get("jobs", params={"all": 1, "limit": 200}).json()["jobs"]}
    assert everyone[mine["id"]] == "alice" and everyone[theirs["id"]] == "bob"
    only_bob = admin.get("jobs", params={"user": "bob", "limit": 200}).json()["jobs"]
    assert {j["user"] for j in only_bob} == {"bob"} and theirs["id"] in {j["id"] for j in only_bob}
    # the admin's filters combine with all=1, as the admin page sends them
    named = admin.get("jobs", params={"all": 1, "q": "bob-own", "limit": 200}).json()["jobs"]
    assert theirs["id"] in {j["id"] for j in named} and mine["id"] not in {j["id"] for j in named}


def test_the_queue_names_counts_and_running_per_user(admin):
    q = admin.get("admin/queue").json()
    assert q["counts"] == {"running": len(q["running"]), "queued": len(q["queued"])}
    per_user = {}
    for j in q["running"]:
        per_user[j["user"]] = per_user.get(j["user"], 0) + 1
    assert q["running_per_user"] == per_user
    assert q["used"]["cpu"] == pytest.approx(sum(j["resources"]["allocated"]["cpu"] for j in q["running"]))
    assert set(q["capacity"]) >= {"cpu", "memory", "max_running", "per_user"}


@pytest.fixture(scope="module")
def usage_run(hub):
    """Jobs of two users of this module's own: ann one success and one failure, ben one success."""
    ann, ben = hub.user("usage-ann"), hub.user("usage-ben")
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    submitted = [ann.submit(make_notebook("x = sum(range(10**6))"), resources={"cpu": 0.5, "memory": "256MB"}),
                 ann.submit(make_notebook("1 / 0")),
                 ben.submit(make_notebook("print('ben')"), resources={"cpu": 1, "memory": "512MB"})]
    owners = [ann, ann, ben]
    jobs = [who.wait(j["id"]) for who, j in zip(owners, submitted)]
    return start, datetime.now(timezone.utc) + timedelta(seconds=1), jobs


def expected_usage(jobs):
    """What the report should say of these finished jobs, figured from their job models."""

    def wall(j):
        return j["resources"]["used"].get("wall_seconds") or 0.0

    alloc = [j["resources"]["allocated"] for j in jobs]
    used = [j["resources"]["used"] for j in jobs]
    return {
        "jobs": len(jobs),
        "succeeded": sum(j["status"] == "succeeded" for j in jobs),
        "failed": sum(j["status"] == "failed" for j in jobs),
        "run_hours": sum(map(wall, jobs)) / 3600,
        "cpu_hours_allocated": sum(a["cpu"] * wall(j) for a, j in zip(alloc, jobs)) / 3600,
        "cpu_hours_used": sum(u.get("cpu_seconds") or 0 for u in used) / 3600,
        "gib_hours_allocated": sum(a["memory"] * wall(j) for a, j in zip(alloc, jobs)) / GIB / 3600,
        "gib_hours_peak": sum((u.get("peak_memory") or 0) * wall(j) for u, j in zip(used, jobs)) / GIB / 3600,
    }


def test_usage_per_user_adds_up_to_the_jobs_they_ran(admin, usage_run):
    start, end, jobs = usage_run
    assert [j["status"] for j in jobs] == ["succeeded", "failed", "succeeded"]
    assert all((j["resources"]["used"].get("wall_seconds") or 0) > 0 for j in jobs)
    r = admin.get("admin/usage", params={"since": start.isoformat(), "until": end.isoformat()})
    assert r.status_code == 200, r.text
    report = r.json()
    users = {u["user"]: u for u in report["users"]}
    for name, theirs in (("usage-ann", jobs[:2]), ("usage-ben", jobs[2:])):
        want, got = expected_usage(theirs), users[name]
        assert got["cancelled"] == 0 and got["active"] == 0
        for key, value in want.items():
            assert got[key] == pytest.approx(value, rel=1e-3, abs=1e-5), (name, key, got)
    assert users["usage-ann"]["cpu_hours_allocated"] > 0 and users["usage-ann"]["gib_hours_peak"] > 0
    # the totals are the sum of the users
    for key in ("jobs", "succeeded", "failed", "cpu_hours_allocated", "gib_hours_allocated"):
        assert report["totals"][key] == pytest.approx(sum(u[key] for u in report["users"]), rel=1e-6, abs=1e-5)
    assert report["since"].endswith("Z") and report["until"].endswith("Z")


def test_usage_counts_only_jobs_submitted_in_the_period(admin, usage_run):
    start, _, _ = usage_run
    before = admin.get("admin/usage", params={"since": (start - timedelta(days=1)).isoformat(),
                                              "until": start.isoformat()}).json()
    assert not {"usage-ann", "usage-ben"} & {u["user"] for u in before["users"]}
    # the default period is the last 24 hours, which holds them
    default = admin.get("admin/usage").json()
    assert {"usage-ann", "usage-ben"} <= {u["user"] for u in default["users"]}


@pytest.mark.parametrize("params,named", [
    ({"since": "yesterday"}, "since"),
    ({"until": "2026-13-01"}, "until"),
    ({"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}, "must be before until"),
    ({"since": "1990-01-01"}, "longer than"),
])
def test_a_bad_period_is_a_400_that_names_it(admin, params, named):
    r = admin.get("admin/usage", params=params)
    assert r.status_code == 400, r.text
    assert named in r.json()["error"]["message"]


def test_demand_shows_the_submissions_of_the_last_24_hours(admin, usage_run):
    load = admin.get("admin/demand").json()["load_last_24h"]
    now = time.time()
    assert len(load["hours"]) == len(load["jobs"]) == 24
    assert load["hours"][-1] == now - now % 3600 or load["hours"][-1] == now - now % 3600 - 3600  # an hour just turned
    assert all(b - a == 3600 for a, b in zip(load["hours"], load["hours"][1:]))
    assert sum(load["jobs"][-2:]) >= 3  # this module's three, in this hour or the one before


def test_the_scoreboard_scores_every_policy_on_each_finished_job_of_a_user(hub, admin):
    """Each job records every policy's memory limit; the admin's scoreboard counts, per user, a
    policy's kills as the jobs whose peak went above its limit, and names the policy chosen."""
    sue = hub.user("score-sue")
    runs = [sue.wait(sue.submit(make_notebook(f"x = bytearray({n} * 2**20)"))["id"]) for n in (8, 64)]
    assert [j["status"] for j in runs] == ["succeeded", "succeeded"]
    for j in runs:
        record = j["resources"]["predicted"]["memory_policy"]
        assert {"rules", "default", "widest"} <= set(record["candidates"]), record
        assert record["chosen"] in record["candidates"] and record["why"]
        assert record["candidates"]["widest"] == max(record["candidates"].values())
    board = admin.get("admin/demand").json()["scoreboard"]
    assert board["policies"][:2] == ["model", "rules"] and 0 < board["budget"] < 0.05
    mine = {g["group"]: g for g in board["groups"]}["user score-sue"]
    assert mine["jobs"] == 2
    for policy, row in mine["rows"].items():
        limits = [j["resources"]["predicted"]["memory_policy"]["candidates"].get(policy) for j in runs]
        peaks = [j["resources"]["used"]["peak_memory"] for j in runs]
        assert row["jobs"] == sum(v is not None for v in limits), policy
        assert row["kills"] == sum(v is not None and v < p for v, p in zip(limits, peaks)), policy
        assert 0 <= row["slack"] < 1 and 0 < row["odds"] < 1
    assert mine["chosen"] in mine["rows"]
    assert sum(board["sized_by"].values()) >= 2
    page = admin.browser.get(hub.url + SERVICE + "admin").text
    assert 'id="demand-scoreboard"' in page


def test_a_user_gets_the_hubs_403_page_an_admin_the_panel(hub, alice, admin):
    r = alice.browser.get(hub.url + SERVICE + "admin")  # Hub OAuth round trip, then the page
    assert r.status_code == 403
    assert "jupyterhub-logo" in r.text and "403 : Forbidden" in r.text and "only Hub admins" in r.text
    r = admin.browser.get(hub.url + SERVICE + "admin")
    assert r.status_code == 200 and 'id="admin-panel"' in r.text and "static/admin.js" in r.text


@pytest.fixture(scope="module")
def group_hub(tmp_path_factory):
    """A Hub of its own whose service names the Hub group jobs-admins as its admins; gina is in it."""
    h = Hub(tmp_path_factory.mktemp("group-hub"), extra_args="--NotebookJobs.admin_groups=jobs-admins")
    h.start()
    try:
        admin, gina = h.user("admin"), h.user("gina")  # gina logs in first: a group holds existing users
        xsrf = admin.browser.cookies.get("_xsrf", path="/hub/")
        r = admin.browser.post(h.url + "/hub/api/groups/jobs-admins", headers={"X-XSRFToken": xsrf},
                               json={"users": [gina.name]})
        assert r.status_code == 201, r.text
        yield h
    finally:
        h.stop()


def test_a_member_of_an_admin_group_is_an_admin_here_and_no_one_else(group_hub):
    gina, hal = group_hub.user("gina"), group_hub.user("hal")
    hals = hal.submit(make_notebook("1"), name="hal-own")
    for path in ADMIN_READS:
        assert gina.get(path).status_code == 200, path
        assert hal.get(path).status_code == 403, path
    assert hals["id"] in {j["id"] for j in gina.get("jobs", params={"all": 1}).json()["jobs"]}
    assert gina.browser.get(group_hub.url + SERVICE + "admin").status_code == 200
    assert hal.browser.get(group_hub.url + SERVICE + "admin").status_code == 403


# -- the period and the hourly counts, without a Hub ------------------------------------------------

NOW = datetime(2026, 12, 1, 17, 0, tzinfo=timezone.utc)


def test_a_period_defaults_to_the_last_day_and_reads_offsets_and_dates():
    assert parse_period(None, None, NOW) == (NOW - timedelta(days=1), NOW)
    since, until = parse_period("2026-12-01T10:00:00+01:00", "2026-12-02", NOW)
    assert (since, until) == (datetime(2026, 12, 1, 9, tzinfo=timezone.utc), datetime(2026, 12, 2, tzinfo=timezone.utc))
    with pytest.raises(IntakeError, match="must be before until"):
        parse_period("2026-12-01T10:00:00+01:00", "2026-12-01", NOW)
    with pytest.raises(IntakeError, match="until"):
        parse_period(None, "0001-01-01", NOW)  # no room for a day before it


def test_hourly_counts_put_each_time_in_its_hour():
    start = 1_800_000_000 - 1_800_000_000 % 3600
    assert hourly_counts([start - 1, start, start + 3599, start + 3600, start + 7200], start, 2) == [2, 1]
