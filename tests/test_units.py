"""Pure parts, without HTTP: status transitions, keyset paging, dispatch fairness, intake rules."""

import io
import json
import zipfile
from types import SimpleNamespace

import pytest

from hub_service.dispatch import Capacity, pick_next
from hub_service.executors.base import Usage, decide_outcome, parse_event
from hub_service.intake import IntakeError, parse_memory, parse_resources, read_submission, safe_relpath
from hub_service.store import InvalidTransition, Store
from tests.hubtest import make_notebook

JOB_FIELDS = dict(name="n", input_hash="h", input_kind="ipynb", input_name="x.ipynb", parameters={},
                  output_formats=["ipynb"], features={}, requested={}, predicted={}, allocated={}, used={})


@pytest.fixture
def store(db_url):
    """The store on SQLite and on PostgreSQL (tests/conftest.py's db_url)."""
    s = Store(db_url)
    yield s
    s.close()


def test_status_changes_only_along_allowed_transitions(store):
    job = store.create_job(user="a", **JOB_FIELDS)
    assert store.transition(job.id, "running").started is not None
    ended = store.transition(job.id, "succeeded")
    assert ended.finished is not None
    for target in ("running", "failed", "cancelled", "queued", "succeeded"):
        with pytest.raises(InvalidTransition):
            store.transition(job.id, target)
    assert store.get(job.id).status == "succeeded"
    with pytest.raises(ValueError):
        store.update(job.id, status="failed")


def test_a_queued_job_cannot_succeed_without_running(store):
    job = store.create_job(user="a", **JOB_FIELDS)
    with pytest.raises(InvalidTransition):
        store.transition(job.id, "succeeded")


def test_keyset_pages_cover_every_job_once(store):
    ids = {store.create_job(user="a", **JOB_FIELDS).id for _ in range(23)}
    store.create_job(user="b", **JOB_FIELDS)
    seen, cursor = [], None
    while True:
        page, cursor = store.list_jobs("a", limit=5, cursor=cursor)
        seen += [j.id for j in page]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 23 and set(seen) == ids
    assert [j.created_ts for j in store.list_jobs("a", limit=23)[0]] == sorted(
        (j.created_ts for j in store.list_jobs("a", limit=23)[0]), reverse=True)


def _job(user, ts, cpu=1.0, mem=1 << 30):
    return SimpleNamespace(user=user, created_ts=ts, allocated={"cpu": cpu, "memory": mem})


def test_dispatch_prefers_the_user_with_fewer_running_jobs():
    cap = Capacity(cpu=4, memory=8 << 30, max_running=4, per_user=3)
    running = [_job("heavy", 0), _job("heavy", 1)]
    queued = [_job("heavy", 2), _job("light", 3)]
    assert pick_next(queued, running, cap, now=10).user == "light"


def test_dispatch_waits_when_capacity_or_slots_are_used():
    cap = Capacity(cpu=2, memory=8 << 30, max_running=2, per_user=2)
    assert pick_next([_job("a", 5)], [_job("b", 0, cpu=2)], cap, now=10) is None
    assert pick_next([_job("a", 5, cpu=0.5)], [_job("b", 0, cpu=1), _job("c", 1, cpu=0.5)], cap, now=10) is None
    assert pick_next([_job("a", 5)], [_job("a", 0), _job("a", 1)], Capacity(8, 8 << 30, 0, 8, 2), now=10) is None


def test_a_starving_job_is_not_overtaken():
    cap = Capacity(cpu=2, memory=8 << 30, max_running=4, per_user=4, starvation_seconds=60)
    big, small = _job("a", 0, cpu=2), _job("b", 100, cpu=0.5)
    running = [_job("c", 50, cpu=1)]
    assert pick_next([big, small], running, cap, now=200) is None  # the small one must not jump ahead
    assert pick_next([big, small], running, cap, now=30) is small  # before starvation, it may


def test_runner_outcome_precedence():
    finished_ok = {"event": "finished", "status": "succeeded"}
    assert decide_outcome(finished_ok, 0).status == "succeeded"
    assert decide_outcome(finished_ok, 0, killed_for="cancelled").reason == "cancelled"
    assert decide_outcome(None, -9, killed_for="timeout").reason == "timeout"
    assert decide_outcome(None, 137, oom_killed=True).reason == "oom_killed"
    crashed = decide_outcome(None, 2, stderr_tail="ImportError: papermill")
    assert crashed.reason == "infrastructure" and "papermill" in crashed.message
    failed = decide_outcome({"event": "finished", "status": "failed", "error": {"reason": "cell_error", "cell": 2}}, 1)
    assert (failed.reason, failed.cell) == ("cell_error", 2)
    assert Usage(peak_memory=5).to_dict() == {"peak_memory": 5}
    assert parse_event('{"event": "cell_started", "cell": 0}') == {"event": "cell_started", "cell": 0}
    assert parse_event("hello from print") is None and parse_event("{broken") is None


@pytest.mark.parametrize("text,expected", [("512MB", 512 << 20), ("2GB", 2 << 30), ("2g", 2 << 30),
                                           ("512m", 512 << 20), ("1.5GiB", int(1.5 * (1 << 30))), (1024, 1024)])
def test_memory_sizes_in_seed_and_docker_notation(text, expected):
    assert parse_memory(text) == expected


def test_resources_validation():
    assert parse_resources({"cpu": "2", "ram": "256MB", "gpu": "0"}, "30") == {
        "cpu": 2.0, "memory": 256 << 20, "gpu": 0, "timeout": 30.0}
    for bad in ({"cpu": "two"}, {"gpu": 1.5}, {"memory": "-1GB"}, {"storage": "1GB"}, [1]):
        with pytest.raises(IntakeError):
            parse_resources(bad)


@pytest.mark.parametrize("path", ["../x", "a/../../x", "/etc/passwd", "C:\\x", ""])
def test_unsafe_paths_are_refused(path):
    with pytest.raises(IntakeError):
        safe_relpath(path)


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_slip_and_limits_are_refused():
    nb = json.dumps(make_notebook("1"))
    with pytest.raises(IntakeError, match=r"\.\."):
        read_submission("b.zip", _zip({"main.ipynb": nb, "../evil.txt": "x"}))
    with pytest.raises(IntakeError, match="at most 2"):
        read_submission("b.zip", _zip({"main.ipynb": nb, "a": "1", "b": "2"}), max_members=2)
    with pytest.raises(IntakeError) as e:
        read_submission("b.zip", _zip({"main.ipynb": nb, "big": "x" * 5000}), max_bytes=1000)
    assert e.value.status == 413
    with pytest.raises(IntakeError, match="entry"):
        read_submission("b.zip", _zip({"one.ipynb": nb, "two.ipynb": nb}))
    bundle = read_submission("b.zip", _zip({"one.ipynb": nb, "two.py": "print(1)", "d/x.csv": "1"}), entry="two.py")
    assert bundle.kind == "zip" and set(bundle.files) == {"one.ipynb", "d/x.csv"}


@pytest.mark.parametrize("value,expected", [
    (None, ["ipynb", "html", "md"]), ("md", ["ipynb", "md"]), ("html, md", ["ipynb", "html", "md"]),
    ('["html"]', ["ipynb", "html"]), (["md", "ipynb"], ["ipynb", "md"]),
])
def test_output_formats_from_forms_and_json(value, expected):
    from hub_service.intake import parse_output_formats

    assert parse_output_formats(value) == expected


def test_the_job_page_says_how_a_job_was_sized_and_the_odds_its_memory_limit_is_short(store):
    """job.html rendered as the service renders it, from a stored job's REST model."""
    from hub_service.explain import predicted_time_words, sizing_words
    from hub_service.handlers.pages import make_environment
    from hub_service.store import job_model

    bounds = {"cpu": [0.25, 2.0], "memory": [2**28, 2**32], "timeout": [10.0, 6 * 3600.0]}

    def page(predicted, basis):
        fields = dict(JOB_FIELDS, predicted=predicted, allocated={"memory": 2**30, "cpu": 1.0, "timeout": 600, "basis": basis})
        job = job_model(store.create_job(user="a", **fields))
        return make_environment().get_template("job.html").render(  # as pages.JobPage renders it
            job=job, static_url=lambda path, include_version=True: "/hub/static/" + path,
            api_url="/services/jobs/api/", service_prefix="/services/jobs/", xsrf_token="t", viewer="a",
            parameter_fields=[], sizing=sizing_words(job["resources"], bounds),
            predicted_time=predicted_time_words(predicted["timeout"], bounds["timeout"][1])).split()

    words = " ".join(page({"memory": 2**30, "cpu": 1.0, "timeout": 600, "memory_kill_odds": 0.0123}, "model"))
    assert "1 GiB of memory: what the demand model expects" in words
    assert "(it gives 1.2% odds that this is too little)" in words and "sized by" not in words
    words = " ".join(page({"memory": 2**30, "cpu": 1.0, "timeout": 3600}, "cold-start"))
    assert "1 GiB of memory: the admin&#39;s default" in words and "odds" not in words  # (escaped)
    # a predicted time past the longest limit is no promise
    words = " ".join(page({"memory": 2**30, "cpu": 1.0, "timeout": 9 * 3600}, "model"))
    assert '<td id="job-predicted-time">longer than the 6 h limit</td>' in words
