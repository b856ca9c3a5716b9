"""A job's ``metrics.json`` among its outputs: ``GET …/output?format=metrics``, through a real Hub (local
executor, real papermill runs), served as every output is; listed in the job's ``outputs`` and the OpenAPI
document."""

from __future__ import annotations

import json
import time

from tests.hubtest import make_notebook
from tests.test_cli import cli

REPORTING = make_notebook("from notebook_jobs import report\nfor step in range(3):\n"
                          "    report(loss=1 / (step + 1), step=step)")
#: reports once, then waits to be stopped (its runner is killed: it writes no metrics.json)
STOPPED = make_notebook("from notebook_jobs import report\nreport(loss=0.5, step=0)", "import time\ntime.sleep(120)")


def output(user, job_id: str, fmt: str, **params):
    return user.get(f"jobs/{job_id}/output", params=dict(params, format=fmt))


def test_a_jobs_metrics_json_is_an_output_served_as_json_with_the_headers_of_every_output(hub, alice):
    job = alice.wait(alice.submit(REPORTING, filename="train.ipynb")["id"])
    assert job["status"] == "succeeded" and job["outputs"] == ["ipynb", "html", "md", "metrics"], job
    r = output(alice, job["id"], "metrics")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json", r.text
    html = output(alice, job["id"], "html")
    for header in ("Content-Security-Policy", "X-Content-Type-Options"):
        assert r.headers[header] == html.headers[header] and r.headers[header] in ("sandbox", "nosniff")
    assert "Content-Disposition" not in r.headers
    # the file the runner left beside the output notebook, as it left it
    assert r.content == (hub.service_data / "jobs" / job["id"] / "metrics.json").read_bytes()
    kept = r.json()
    assert kept["final"] == job["metrics"] == {"loss": 1 / 3} and kept["capped"] is False
    assert kept["series"] == [{"name": "loss", "points": [{"step": s, "value": 1 / (s + 1)} for s in range(3)]}]
    saved = output(alice, job["id"], "metrics", download="1")
    assert saved.content == r.content
    assert saved.headers["Content-Disposition"].startswith("attachment;")
    assert f'filename="train-{job["id"][:8]}.metrics.json"' in saved.headers["Content-Disposition"]
    # and the CLI's `output --format metrics`
    got = cli(alice, "output", job["id"], "--format", "metrics")
    assert got.returncode == 0 and got.stdout.encode() == r.content, (got.returncode, got.stderr)
    # the job page's metrics.json button is the kept file
    page = alice.browser.get(hub.url + f"/services/notebook-jobs/jobs/{job['id']}").text
    assert f"jobs/{job['id']}/output?format=metrics&download=1" in page

    plain = alice.wait(alice.submit(make_notebook("x = 1"))["id"])
    assert plain["status"] == "succeeded" and plain["outputs"] == ["ipynb", "html", "md"]
    r = output(alice, plain["id"], "metrics")
    assert r.status_code == 404 and "format 'metrics'" in r.json()["error"]["message"], r.text

    spec = alice.get("openapi.json").json()
    (fmt,) = [p for p in spec["paths"]["/jobs/{job_id}/output"]["get"]["parameters"] if p["name"] == "format"]
    assert "metrics" in fmt["schema"]["enum"]
    assert "metrics" in spec["components"]["schemas"]["Job"]["properties"]["outputs"]["items"]["enum"]


def test_a_run_stopped_before_it_wrote_metrics_json_serves_what_the_service_stored(hub, alice):
    job_id = alice.submit(STOPPED)["id"]
    deadline = time.monotonic() + 60
    while not (job := alice.get(f"jobs/{job_id}").json())["metrics"]:
        assert time.monotonic() < deadline and job["status"] in ("queued", "running"), job
        time.sleep(0.2)
    assert "metrics" not in job["outputs"]  # (not before it ended)
    r = output(alice, job_id, "metrics")
    assert r.status_code == 409, r.text
    alice.post(f"jobs/{job_id}/cancel")
    job = alice.wait(job_id)
    assert job["status"] == "cancelled" and "metrics" in job["outputs"], job
    assert not (hub.service_data / "jobs" / job_id / "metrics.json").exists()  # (its runner was killed)
    r = output(alice, job_id, "metrics")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json", r.text
    served = r.json()
    assert served["final"] == {"loss": 0.5}
    assert [(s["name"], [(p["step"], p["value"]) for p in s["points"]]) for s in served["series"]] == [
        ("loss", [(0, 0.5)])]
    assert served == json.loads(json.dumps({"final": job["metrics"],
                                            "series": alice.get(f"jobs/{job_id}/metrics").json()["series"]}))
