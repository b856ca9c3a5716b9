"""The life of a job through a real Hub, proxy, service and papermill (local executor)."""

import gzip
import json
import re
import time

import nbformat
import pytest

from hub_service.handlers.base import GZIP_FROM
from tests.hubtest import make_notebook


def test_job_runs_with_parameters_and_yields_all_three_formats(alice):
    nb = make_notebook("print('hello', x)", "y = x * 2\ny", parameters="x = 1", markdown="# Report")
    job = alice.submit(nb, name="report", parameters={"x": 21})
    assert job["status"] == "queued"
    assert job["parameters"] == {"x": 21}
    assert set(job["resources"]) == {"requested", "predicted", "allocated", "used"}

    seen = set()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        current = alice.get(f"jobs/{job['id']}").json()
        seen.add(current["status"])
        if current["status"] == "succeeded":
            break
        time.sleep(0.05)
    assert current["status"] == "succeeded", current
    assert "running" in seen
    assert current["progress"] == {"cells_done": 3, "cells_total": 3, "phase": None}
    assert current["error"] is None
    assert current["started"] and current["finished"]
    assert current["resources"]["used"]["wall_seconds"] > 0

    out = nbformat.reads(alice.get(f"jobs/{job['id']}/output", params={"format": "ipynb"}).text, as_version=4)
    printed = "".join(o.get("text", "") for c in out.cells if c.cell_type == "code" for o in c.outputs)
    assert "hello 21" in printed
    html = alice.get(f"jobs/{job['id']}/output", params={"format": "html"})
    assert html.headers["Content-Type"].startswith("text/html") and "hello 21" in html.text
    md = alice.get(f"jobs/{job['id']}/output", params={"format": "md"})
    assert md.headers["Content-Type"].startswith("text/markdown") and "# Report" in md.text and "42" in md.text
    assert "hello 21" in alice.get(f"jobs/{job['id']}/logs").text
    submitted = alice.get(f"jobs/{job['id']}/input").json()
    assert "".join(submitted["cells"][1]["source"]) == "x = 1"


def test_failing_cell_reports_cell_error_and_its_index(alice):
    job = alice.submit(make_notebook("a = 1", "raise ValueError('boom')", "print('never')"))
    job = alice.wait(job["id"])
    assert job["status"] == "failed"
    assert job["error"]["reason"] == "cell_error"
    assert job["error"]["cell"] == 1
    assert "ValueError: boom" in job["error"]["message"]
    # the partial output is still there, with the traceback
    assert alice.get(f"jobs/{job['id']}/output").status_code == 200


def test_timeout_kills_the_job(alice):
    job = alice.submit(make_notebook("import time\ntime.sleep(120)"), timeout=3)
    assert job["resources"]["allocated"]["timeout"] == 3
    started = time.monotonic()
    job = alice.wait(job["id"], timeout=60)
    assert job["status"] == "failed"
    assert job["error"]["reason"] == "timeout"
    assert time.monotonic() - started < 40


def test_cancel_of_a_running_job(alice):
    job = alice.submit(make_notebook("import time\nfor i in range(600):\n    time.sleep(0.1)"))
    alice.wait(job["id"], statuses=("running",))
    time.sleep(1)
    r = alice.post(f"jobs/{job['id']}/cancel")
    assert r.status_code == 200, r.text
    job = alice.wait(job["id"])
    assert job["status"] == "cancelled" and job["error"]["reason"] == "cancelled"
    # ended exactly once: a second cancel is refused and the status stays
    assert alice.post(f"jobs/{job['id']}/cancel").status_code == 409
    assert alice.get(f"jobs/{job['id']}").json()["status"] == "cancelled"


def test_idempotency_key_returns_the_first_job(alice):
    nb = make_notebook("1 + 1")
    headers = {"Idempotency-Key": "nightly-2026-11-22"}
    first = alice.post("jobs", files={"file": ("a.ipynb", json.dumps(nb))}, headers=headers)
    second = alice.post("jobs", files={"file": ("a.ipynb", json.dumps(nb))}, headers=headers)
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    ids = [j["id"] for j in alice.get("jobs", params={"limit": 200}).json()["jobs"]]
    assert ids.count(first.json()["id"]) == 1


def test_json_submission_of_code_and_of_a_notebook(alice):
    r = alice.post("jobs", json={"code": "# %%\nprint('from code')\n", "name": "snippet"})
    assert r.status_code == 201, r.text
    job = alice.wait(r.json()["id"])
    assert job["status"] == "succeeded", job
    assert "from code" in alice.get(f"jobs/{job['id']}/logs").text
    r = alice.post("jobs", json={"notebook": make_notebook("z = n", parameters="n = 0"), "parameters": {"n": 3}})
    assert r.status_code == 201, r.text


def test_python_script_is_converted_with_jupytext(alice):
    script = b"# %%\nx = 6\n# %%\nprint(x * 7)\n"
    r = alice.post("jobs", files={"file": ("calc.py", script)})
    assert r.status_code == 201, r.text
    job = alice.wait(r.json()["id"])
    assert job["status"] == "succeeded" and job["progress"]["cells_total"] == 2
    assert "42" in alice.get(f"jobs/{job['id']}/logs").text


def test_zip_bundle_runs_beside_its_data_files(alice):
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("main.ipynb", json.dumps(make_notebook("print(open('data/values.txt').read().strip())")))
        zf.writestr("data/values.txt", "bundle-data-ok\n")
    r = alice.post("jobs", files={"file": ("bundle.zip", buf.getvalue())})
    assert r.status_code == 201, r.text
    job = alice.wait(r.json()["id"])
    assert job["status"] == "succeeded", job
    assert "bundle-data-ok" in alice.get(f"jobs/{job['id']}/logs").text


def test_rerun_makes_a_new_job_with_the_same_input(alice):
    job = alice.wait(alice.submit(make_notebook("print(p)", parameters="p = 'a'"), parameters={"p": "b"})["id"])
    r = alice.post(f"jobs/{job['id']}/rerun")
    assert r.status_code == 201
    again = alice.wait(r.json()["id"])
    assert again["rerun_of"] == job["id"] and again["parameters"] == {"p": "b"}
    assert again["status"] == "succeeded"


def test_events_stream_reports_cells_and_the_end(alice):
    job = alice.submit(make_notebook("import time\ntime.sleep(1)", "print('two')"))
    r = alice.get(f"jobs/{job['id']}/events", stream=True, timeout=90)
    assert r.headers["Content-Type"].startswith("text/event-stream")
    events = []
    for line in r.iter_lines(decode_unicode=True):
        if line.startswith("data: "):
            events.append(json.loads(line[6:]))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "status"
    assert "cell_finished" in kinds
    assert events[-1]["event"] == "status" and events[-1]["job"]["status"] == "succeeded"


def test_follow_logs_streams_until_the_end(alice):
    job = alice.submit(make_notebook("import time\nfor i in range(3):\n    print('tick', i, flush=True)\n    time.sleep(0.5)"))
    text = alice.get(f"jobs/{job['id']}/logs", params={"follow": 1}, timeout=90).text
    assert "tick 2" in text
    assert alice.get(f"jobs/{job['id']}").json()["status"] == "succeeded"


def test_listing_filters_and_keyset_pagination(alice):
    for i in range(3):
        alice.submit(make_notebook("1"), name=f"page-{i}")
    r = alice.get("jobs", params={"limit": 2})
    page1 = r.json()
    assert len(page1["jobs"]) == 2 and page1["next_cursor"]
    # the service's own time, through the Hub's proxy: what bench_load tells from the proxy's and the waits
    assert re.fullmatch(r"app;dur=\d+\.\d", r.headers["Server-Timing"]), r.headers.get("Server-Timing")
    page2 = alice.get("jobs", params={"limit": 2, "cursor": page1["next_cursor"]}).json()
    ids1 = {j["id"] for j in page1["jobs"]}
    assert not ids1 & {j["id"] for j in page2["jobs"]}
    found = alice.get("jobs", params={"q": "page-1"}).json()["jobs"]
    assert [j["name"] for j in found] == ["page-1"]
    failed = alice.get("jobs", params={"status": "failed"}).json()["jobs"]
    assert all(j["status"] == "failed" for j in failed)
    assert alice.get("jobs", params={"cursor": "garbage!"}).status_code == 400


def test_a_large_json_answer_goes_gzipped_to_a_client_that_takes_it(alice):
    """A listing of a few jobs is kilobytes of JSON: gzipped through the Hub's proxy when the client accepts it,
    the same JSON decoded, and the same bytes each time (its ETag answers 304); plain for a client that does not."""
    for i in range(4):
        alice.submit(make_notebook("1"), name=f"zip-{i}")
    plain = alice.get("jobs", params={"limit": 4}, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers and len(plain.content) >= GZIP_FROM
    assert "Accept-Encoding" in plain.headers["Vary"]
    r = alice.get("jobs", params={"limit": 4}, headers={"Accept-Encoding": "gzip"}, stream=True)
    sent = r.raw.read(decode_content=False)
    assert r.headers["Content-Encoding"] == "gzip" and len(sent) < len(plain.content) / 4
    assert json.loads(gzip.decompress(sent)) == plain.json()
    again = alice.get("jobs", params={"limit": 4},
                      headers={"Accept-Encoding": "gzip", "If-None-Match": r.headers["Etag"]})
    assert again.status_code == 304
    small = alice.get("jobs", params={"limit": 1, "q": "no-such-job"}, headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in small.headers and small.json() == {"jobs": [], "next_cursor": None}


def test_delete_removes_the_job(alice):
    job = alice.wait(alice.submit(make_notebook("1"))["id"])
    assert alice.delete(f"jobs/{job['id']}").status_code == 204
    assert alice.get(f"jobs/{job['id']}").status_code == 404


def test_queue_holds_jobs_beyond_capacity(hub, admin):
    # capacity is 2 running jobs (Dispatcher.max_running=2 in the fixture)
    jobs = [admin.submit(make_notebook("import time\ntime.sleep(4)"), name=f"cap-{i}") for i in range(4)]
    time.sleep(2.5)
    statuses = [admin.get(f"jobs/{j['id']}").json()["status"] for j in jobs]
    assert statuses.count("running") <= 2
    assert "queued" in statuses
    queue = admin.get("admin/queue").json()
    assert len(queue["running"]) <= 2
    for j in jobs:
        assert admin.wait(j["id"])["status"] == "succeeded"


@pytest.mark.parametrize("fmt", ["ipynb", "html", "md"])
def test_output_of_a_running_job_is_409(alice, fmt):
    job = alice.submit(make_notebook("import time\ntime.sleep(3)"))
    r = alice.get(f"jobs/{job['id']}/output", params={"format": fmt})
    assert r.status_code == 409 and "error" in r.json()
    alice.post(f"jobs/{job['id']}/cancel")


def test_dry_run_sizes_like_a_submit_and_stores_nothing(alice):
    nb = make_notebook("print(x)", parameters="x = 1")
    before = alice.get("jobs", params={"limit": 200}).json()["jobs"]
    r = alice.post("jobs", params={"dry_run": "1"},
                   json={"notebook": nb, "parameters": {"x": 5}, "name": "probe", "resources": {"memory": "1GB"}})
    assert r.status_code == 200, r.text
    planned = r.json()
    assert planned["dry_run"] is True and planned["id"] is None and planned["status"] == "queued"
    assert planned["name"] == "probe" and planned["parameters"] == {"x": 5}
    allocated = planned["resources"]["allocated"]
    assert allocated["basis"] and allocated["timeout"] > 0
    assert allocated["memory"] == planned["resources"]["requested"]["memory"] == 2**30
    bounds = planned["resources"].pop("bounds")  # the admin's, for the Lab dialog's overrides
    assert set(bounds) == {"cpu", "memory", "timeout"}
    assert all(low <= allocated[name] <= high for name, (low, high) in bounds.items())
    # the same body as a real submit gets the same allocation
    job = alice.post("jobs", json={"notebook": nb, "parameters": {"x": 5}, "name": "probe",
                                   "resources": {"memory": "1GB"}}).json()
    assert job["resources"]["allocated"] == allocated
    assert len(alice.get("jobs", params={"limit": 200}).json()["jobs"]) == len(before) + 1
    # and is refused for what a submit refuses
    bad = alice.post("jobs", params={"dry_run": "1"}, json={"notebook": nb, "parameters": {"nope": 1}})
    assert bad.status_code == 400 and "nope" in bad.json()["error"]["message"]


def test_a_percent_script_takes_parameters_from_its_tagged_cell(alice):
    script = b'# %% tags=["parameters"]\nx = 1\n\n# %%\nprint("x is", x)\n'
    r = alice.post("jobs", files={"file": ("probe.py", script)}, data={"parameters": json.dumps({"x": 7})})
    assert r.status_code == 201, r.text
    job = alice.wait(r.json()["id"])
    assert job["status"] == "succeeded", job
    assert "x is 7" in alice.get(f"jobs/{job['id']}/logs").text


def test_a_log_follower_that_leaves_early_is_no_error_in_the_service(alice, hub):
    job = alice.submit(make_notebook("import time\nprint('started', flush=True)\ntime.sleep(3)\nprint('end')"))
    start = hub.log_path.stat().st_size  # the log is shared with the Hub and every server: read ours only
    with alice.get(f"jobs/{job['id']}/logs", params={"follow": "1"}, stream=True) as r:
        assert r.status_code == 200
        next(r.iter_content(1))  # the stream is open; now the reader goes away
    assert alice.wait(job["id"])["status"] == "succeeded"
    time.sleep(1)
    with open(hub.log_path, "rb") as f:
        f.seek(start)
        since = f.read().decode(errors="replace")
    assert f"Uncaught exception GET /services/notebook-jobs/api/jobs/{job['id']}/logs" not in since
