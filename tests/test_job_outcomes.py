"""What a job left and why it ended, in words: has_output / outputs / partial, cancelled_by,
error.summary, the cell a stopped run was in, honest progress, and the rerun's dry run with
resources. Through the session's real Hub (local executor, real papermill) unless a test says."""

import time

from sqlalchemy import text

from hub_service.states import REASONS, reason_summary
from tests.hubtest import make_notebook

ALL_FORMATS = ["ipynb", "html", "md"]
#: a cell that keeps running until cancelled, printing first (so the log shows it started)
WAITS = "import time\nprint('waiting', flush=True)\ntime.sleep(120)"
#: a cell that takes well over 256 MiB and touches every page of it
HOG = "x = bytearray(900 * 2**20)\nx[::4096] = b'1' * len(x[::4096])"


def wait_for_cell(user, job_id, text_in_log, timeout=60):
    """Wait until the job's log shows ``text_in_log`` (the cell printing it is running)."""
    deadline = time.monotonic() + timeout
    while text_in_log not in user.get(f"jobs/{job_id}/logs").text:
        assert time.monotonic() < deadline, user.get(f"jobs/{job_id}").json()
        time.sleep(0.2)


def last_log_line(user, job_id):
    return user.get(f"jobs/{job_id}/logs").text.rstrip("\n").rsplit("\n", 1)[-1]


# -- units ---------------------------------------------------------------------------------------


def test_every_reason_has_plain_words_and_a_cancel_names_who():
    words = {r: reason_summary(r) for r in REASONS}
    assert words == {
        "cell_error": "A cell raised an error", "oom_killed": "Ran out of memory",
        "timeout": "Ran past its time limit", "cancelled": "Cancelled",
        "invalid_input": "The input could not be run", "infrastructure": "The service could not run it",
        "environment_error": "Its requirements could not be installed"}
    assert reason_summary("cancelled", "alice") == "Cancelled by alice"
    assert reason_summary("timeout", "alice") == "Ran past its time limit"  # only a cancel has a canceller


def test_the_outputs_migration_fills_in_has_output_and_goes_down_and_up_again(tmp_path):
    from sqlalchemy import inspect

    from hub_service.store import Store
    from hub_service.store.queries import make_engine, migrate

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = make_engine(url)

    migrate(engine, "0005")
    rows = {"ok": ("succeeded", "'2026-01-01'", "'abc'"), "bad": ("failed", "'2026-01-01'", "'abc'"),
            "stop": ("cancelled", "'2026-01-01'", "'abc'"), "queue": ("cancelled", "NULL", "'abc'"),
            "intake": ("failed", "NULL", "''")}
    with engine.begin() as c:
        for job_id, (status, started, sha) in rows.items():
            c.execute(text(
                "INSERT INTO jobs (id, user, name, status, input_hash, input_kind, input_name, parameters,"
                " output_formats, features, requested, predicted, allocated, used, cells_done, created, created_ts,"
                f" started, notify) VALUES ('{job_id}', 'alice', '', '{status}', {sha}, 'ipynb', '', '{{}}', '[]',"
                f" '{{}}', '{{}}', '{{}}', '{{}}', '{{}}', 0, '2026-01-01', 0, {started}, 'never')"))
    migrate(engine, "0006")

    def has_output():
        with engine.connect() as c:
            return dict(c.execute(text("SELECT id, has_output FROM jobs")).all())

    # the rule the pages guessed with, once, for what ended before the column: succeeded or failed after a start
    assert has_output() == {"ok": 1, "bad": 1, "stop": 0, "queue": 0, "intake": 0}
    migrate(engine, "0005", down=True)
    columns = {c["name"] for c in inspect(engine).get_columns("jobs")}
    assert "has_output" not in columns and "cancelled_by" not in columns
    migrate(engine, "head")
    assert has_output()["ok"] == 1
    engine.dispose()
    job = Store(url).get("stop")
    assert job.cancelled_by is None and job.has_output is False


# -- through the Hub -------------------------------------------------------------------------------


def test_a_succeeded_job_has_every_output_and_a_failed_one_its_notebook_whole(alice):
    ok = alice.wait(alice.submit(make_notebook("print('fine')"))["id"])
    assert ok["status"] == "succeeded" and ok["error"] is None, ok
    assert (ok["has_output"], ok["outputs"], ok["partial"], ok["cancelled_by"]) == (True, ALL_FORMATS, False, None)
    assert "notebook-jobs:" not in alice.get(f"jobs/{ok['id']}/logs").text  # a success's log is the notebook's own

    bad = alice.wait(alice.submit(make_notebook("a = 1", "1 / 0", "print('never')"), name="raises")["id"])
    assert bad["status"] == "failed" and bad["error"]["reason"] == "cell_error", bad
    assert (bad["has_output"], bad["outputs"], bad["partial"]) == (True, ALL_FORMATS, False)
    assert bad["error"]["summary"] == "A cell raised an error"
    assert bad["error"]["cell"] == 1 and "(in code cell 2 of 3, In [2])" in bad["error"]["message"], bad
    assert bad["progress"] == {"cells_done": 1, "cells_total": 3, "phase": None}  # the cell that raised is not done
    assert last_log_line(alice, bad["id"]).startswith("notebook-jobs: A cell raised an error: ZeroDivisionError")
    for fmt in ALL_FORMATS:
        assert alice.get(f"jobs/{bad['id']}/output", params={"format": fmt}).status_code == 200, fmt
    listed = {j["id"]: j for j in alice.get("jobs", params={"limit": 200}).json()["jobs"]}
    assert listed[bad["id"]]["has_output"] is True and listed[ok["id"]]["outputs"] == ALL_FORMATS


def test_a_job_cancelled_mid_run_keeps_its_partial_notebook_and_says_who_cancelled_it(alice):
    nb = make_notebook("print('first ran', flush=True)", WAITS, "print('never')", markdown="# intro")
    job = alice.submit(nb, name="to-cancel")
    wait_for_cell(alice, job["id"], "waiting")
    running = alice.get(f"jobs/{job['id']}").json()
    assert running["progress"] == {"cells_done": 1, "cells_total": 3, "phase": None}, running  # cell 2 runs: 1 done, not 2
    assert running["has_output"] is False and running["outputs"] == []  # not before it ended
    r = alice.post(f"jobs/{job['id']}/cancel")
    assert r.status_code in (200, 202), r.text
    job = alice.wait(job["id"])
    assert job["status"] == "cancelled" and job["cancelled_by"] == "alice", job
    assert job["error"]["summary"] == "Cancelled by alice"
    # the cell that was running, counted as a cell error counts it (markdown included), and in words
    assert job["error"]["cell"] == 2, job["error"]
    assert job["error"]["message"] == "cancelled by alice (in code cell 2 of 3)", job["error"]
    assert job["progress"] == {"cells_done": 1, "cells_total": 3, "phase": None}
    assert (job["has_output"], job["outputs"], job["partial"]) == (True, ALL_FORMATS, True), job
    out = alice.get(f"jobs/{job['id']}/output")
    assert out.status_code == 200
    cells = out.json()["cells"]
    assert "first ran" in "".join("".join(o.get("text", "")) for o in cells[1]["outputs"])
    assert alice.get(f"jobs/{job['id']}/output", params={"format": "html"}).status_code == 200
    assert last_log_line(alice, job["id"]) == (
        "notebook-jobs: cancelled by alice (in code cell 2 of 3); "
        "the notebook as far as it got is kept")


def test_an_admin_cancelling_someone_elses_job_is_named(bob, admin):
    job = bob.submit(make_notebook(WAITS))
    queued_or_running = bob.get(f"jobs/{job['id']}").json()["status"]
    assert queued_or_running in ("queued", "running")
    r = admin.post(f"jobs/{job['id']}/cancel")
    assert r.status_code in (200, 202), r.text
    job = bob.wait(job["id"])
    assert job["cancelled_by"] == "admin" and job["error"]["summary"] == "Cancelled by admin", job
    assert job["error"]["message"].startswith("cancelled by admin"), job["error"]


def test_a_job_that_failed_at_intake_has_no_output(hub, alice):
    hub.write_workspace("alice", "gone.ipynb", make_notebook("print(1)"))
    r = alice.post("schedules", json={"cron": "0 4 * * *", "path": "gone.ipynb", "paused": True})
    assert r.status_code == 201, r.text
    (hub.data / "users" / "alice" / "gone.ipynb").unlink()
    schedule_id = r.json()["id"]
    r = alice.post(f"schedules/{schedule_id}/run")
    assert r.status_code == 201, r.text
    job = alice.wait(r.json()["id"])
    assert job["status"] == "failed" and job["error"]["reason"] == "invalid_input", job
    assert (job["has_output"], job["outputs"], job["partial"]) == (False, [], False)
    assert job["error"]["summary"] == "The input could not be run"
    assert alice.get(f"jobs/{job['id']}/output").status_code == 404
    # the schedule's last runs say it in the same words (its page's badges and the CLI show them)
    last = alice.get(f"schedules/{schedule_id}").json()["last_runs"][0]
    assert (last["reason"], last["summary"]) == ("invalid_input", "The input could not be run")
    alice.delete(f"schedules/{schedule_id}")


def test_an_oom_killed_job_names_the_cell_it_was_in_and_does_not_show_it_done(alice):
    job = alice.submit(make_notebook("a = 1", HOG, "print('never')"), name="hog", resources={"memory": "256MB"})
    job = alice.wait(job["id"], timeout=120)
    assert job["status"] == "failed" and job["error"]["reason"] == "oom_killed", job
    assert job["error"]["summary"] == "Ran out of memory"
    assert job["error"]["cell"] == 1 and job["error"]["message"].endswith("(in code cell 2 of 3)"), job["error"]
    assert job["progress"] == {"cells_done": 1, "cells_total": 3, "phase": None}
    assert job["partial"] is job["has_output"] is True
    assert last_log_line(alice, job["id"]).startswith("notebook-jobs: Ran out of memory: "), last_log_line(
        alice, job["id"])

    # the rerun's dry run: the would-be job, sized up in words, nothing stored
    before = len(alice.get("jobs", params={"limit": 200}).json()["jobs"])
    r = alice.post(f"jobs/{job['id']}/rerun", params={"dry_run": "1"})
    assert r.status_code == 200, r.text
    would_be = r.json()
    assert would_be["dry_run"] is True and would_be["id"] is None and would_be["rerun_of"] == job["id"]
    resources = would_be["resources"]
    assert resources["allocated"]["memory"] > job["resources"]["allocated"]["memory"], resources
    assert "what the last run was killed at" in resources["explanation"], resources["explanation"]
    assert resources["bounds"]["memory"][0] <= resources["allocated"]["memory"] <= resources["bounds"]["memory"][1]
    assert len(alice.get("jobs", params={"limit": 200}).json()["jobs"]) == before

    # the rerun takes resources and a time limit, checked as a submit checks them (a killed run's retry
    # gets no less than the run had, demand.policy.retry_floor: so ask for more)
    r = alice.post(f"jobs/{job['id']}/rerun", params={"dry_run": "1"},
                   json={"resources": {"memory": "3GB"}, "timeout": 7200})
    assert r.status_code == 200, r.text
    asked = r.json()["resources"]
    assert asked["requested"] == {"memory": 3 * 2**30, "timeout": 7200}, asked
    # (the memory asked for, unless a demand model is serving: an OOM retry's memory is then capped at a
    # few times what the run was killed at, a request included -- demand.sizing; whether one serves yet
    # depends on the session's history)
    assert job["resources"]["allocated"]["memory"] < asked["allocated"]["memory"] <= 3 * 2**30, asked
    assert asked["allocated"]["timeout"] == 7200, asked
    assert "Time limit 2 h: what you asked for." in asked["explanation"], asked["explanation"]
    r = alice.post(f"jobs/{job['id']}/rerun", json={"resources": {"memory": "lots"}})
    assert r.status_code == 400 and "resources.memory" in r.json()["error"]["message"], r.text
    r = alice.post(f"jobs/{job['id']}/rerun", json={"memory": "1GB"})
    assert r.status_code == 400 and "'resources'" in r.json()["error"]["message"], r.text
    r = alice.post(f"jobs/{job['id']}/rerun", json={"resources": {"memory": "3GB"}, "parameters": {}})
    assert r.status_code == 201, r.text
    again = r.json()
    assert again["resources"]["requested"]["memory"] == 3 * 2**30 and again["rerun_of"] == job["id"]
    # (as its dry run: what was asked, or less when a serving model caps an OOM retry; see above)
    assert job["resources"]["allocated"]["memory"] < again["resources"]["allocated"]["memory"] <= 3 * 2**30
    alice.post(f"jobs/{again['id']}/cancel")


def test_a_timed_out_job_names_the_cell_it_was_in(alice):
    job = alice.submit(make_notebook("print('one')", WAITS), name="slow", timeout=12)
    job = alice.wait(job["id"], timeout=90)
    assert job["status"] == "failed" and job["error"]["reason"] == "timeout", job
    assert job["error"]["summary"] == "Ran past its time limit"
    assert job["error"]["cell"] == 1 and job["error"]["message"].endswith("(in code cell 2 of 2)"), job["error"]
    assert job["progress"]["cells_done"] == 1 and job["partial"] is True
    assert last_log_line(alice, job["id"]).startswith("notebook-jobs: Ran past its time limit: ")
