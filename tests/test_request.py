"""One submission, decided once: the JobRequest every way in builds, without HTTP."""

import dataclasses
import json
from types import SimpleNamespace

import nbformat
import pytest

from hub_service.intake import Bundle, IntakeError, Limits, pointer
from hub_service.request import (
    CHOICE_KEYS,
    CHOICES,
    JobRequest,
    choices_of,
    parse_submission,
    read_choices,
    rerun_request,
)
from hub_service.schedules import PATCH_FIELDS, SUBMIT_FIELDS
from tests.hubtest import make_notebook, nb_bytes

NB = make_notebook("print(p)", parameters="p = 'a'\nn = 1")
LIMITS = Limits()


def bundle(name="nb.ipynb") -> Bundle:
    return Bundle(nbformat.reads(json.dumps(NB), as_version=4), "ipynb", name)


def no_workspace(user, path):
    raise AssertionError("no workspace read expected")


def parse_json(body: dict, read_path=no_workspace) -> JobRequest:
    return parse_submission("application/json", json.dumps(body).encode(), {}, "alice", LIMITS, read_path)[1]


def test_every_choice_is_a_field_of_the_request_and_read_from_the_form_fields_a_schedule_takes():
    names = {f.name for f in dataclasses.fields(JobRequest)}
    assert set(CHOICES) <= names
    assert set(CHOICE_KEYS) <= set(SUBMIT_FIELDS) and set(CHOICE_KEYS) <= set(PATCH_FIELDS)


def test_a_json_submission_and_a_multipart_one_make_the_same_request():
    as_json = parse_json({"notebook": NB, "name": "r", "parameters": {"p": "b"}, "resources": {"memory": "1GB"},
                          "timeout": 60, "output_formats": ["html"], "notify": "failure"})
    boundary = "XyZ"
    parts = [("name", "r"), ("parameters", '{"p": "b"}'), ("resources", '{"memory": "1GB"}'), ("timeout", "60"),
             ("output_formats", "html"), ("notify", "failure")]
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, v in parts)
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="notebook.ipynb"\r\n\r\n'
             .encode() + nb_bytes(NB) + f"\r\n--{boundary}--\r\n".encode())
    _form, as_form = parse_submission(f"multipart/form-data; boundary={boundary}", body, {}, "alice", LIMITS,
                                      no_workspace)
    assert as_json.choices() == as_form.choices()
    assert dict(as_json.choices(), callback_url=None) | {
        "parameters": {"p": "b"}, "name": "r", "requested": {"memory": 1 << 30, "timeout": 60.0},
        "output_formats": ["ipynb", "html"], "notify": "failure"} == as_json.choices()
    assert as_json.bundle.sha256 == as_form.bundle.sha256


def test_a_path_submission_reads_the_workspace_through_the_one_reader_and_names_its_errors_by_path():
    asked = []

    def read_path(user, path):
        asked.append((user, path))
        return bundle(path)

    request = parse_json({"path": "a/nb.ipynb"}, read_path)
    assert asked == [("alice", "a/nb.ipynb")] and request.path == "a/nb.ipynb" and request.name == "a/nb.ipynb"

    def missing(user, path):
        raise IntakeError("no file", 404, "not_found")

    with pytest.raises(IntakeError) as e:
        parse_json({"path": "x.ipynb"}, missing)
    assert e.value.field == "/path" and e.value.status == 404


def test_the_idempotency_comparison_is_of_the_normalised_request():
    request = parse_json({"notebook": NB, "resources": {"memory": "1024MB"}})
    job = SimpleNamespace(input_hash=request.bundle.sha256, **request.row())
    assert request.same_as(job)
    assert parse_json({"notebook": NB, "resources": {"memory": "1GB"}}).same_as(job)  # the same, spelled otherwise
    assert not parse_json({"notebook": NB, "resources": {"memory": "2GB"}}).same_as(job)
    assert not parse_json({"notebook": NB, "resources": {"memory": "1GB"}, "notify": "always"}).same_as(job)


def test_a_patch_changes_only_what_it_names_and_an_empty_timeout_drops_the_time_limit():
    current = {"parameters": {"p": "a"}, "name": "n", "requested": {"cpu": 1.0, "timeout": 60.0},
               "output_formats": ["ipynb"], "callback_url": None, "notify": "never"}
    assert read_choices({"notify": "always"}, current, only_given=True) == {"notify": "always"}
    assert read_choices({"resources": {"memory": "1GB"}}, current, only_given=True) == {
        "requested": {"memory": 1 << 30, "timeout": 60.0}}
    assert read_choices({"timeout": ""}, current, only_given=True) == {"requested": {"cpu": 1.0}}


def test_a_rerun_keeps_the_jobs_choices_replaces_the_requests_it_names_and_retries_a_killed_run():
    asked = JobRequest(user="alice", bundle=bundle(), parameters={"p": "b"}, name="n",
                       requested={"cpu": 2.0, "memory": 1 << 30}, notify="always")
    job = SimpleNamespace(**asked.row(), id="j" * 32, input_hash="h", error_reason="oom_killed",
                          used={"peak_memory": 5}, allocated={"memory": 6})
    reads = []

    def read_input():
        reads.append(1)
        return bundle()

    request = rerun_request(job, {"resources": {"memory": "2GB"}}, read_input, LIMITS)
    assert request.requested == {"cpu": 2.0, "memory": 2 << 30} and request.parameters == {"p": "b"}
    assert request.rerun_of == job.id and request.notify == "always" and reads == [1]
    assert request.retry_of == {"used": {"peak_memory": 5}, "reason": "oom_killed", "allocated": {"memory": 6}}
    assert request.retry_words() == {"reason": "oom_killed", "peak_memory": 5, "allocated": {"memory": 6}}
    assert choices_of(job)["requested"] is not job.requested  # a copy: the row stays as it was
    with pytest.raises(IntakeError) as e:
        rerun_request(job, {"parameters": {"n": "x"}}, read_input, LIMITS)
    assert e.value.field == "/parameters/n"


def test_a_pointer_escapes_as_rfc_6901_says():
    assert pointer("parameters", "a/b~c") == "/parameters/a~1b~0c"
    assert pointer("resources", "memory") == "/resources/memory"
