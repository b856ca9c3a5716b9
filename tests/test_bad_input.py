"""Every bad input answers 4xx naming what is wrong, and nothing is stored."""

import json

import pytest

from tests.hubtest import make_notebook

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def job_count(user):
    return len(user.get("jobs", params={"limit": 200}).json()["jobs"])


@pytest.mark.parametrize(
    "filename,body,status,needle",
    [
        ("nb.ipynb", b'{"cells": [', 400, "invalid JSON"),
        ("picture.ipynb", PNG, 400, "PNG image"),
        ("nb.ipynb", json.dumps({"cells": [{"cell_type": "code"}], "metadata": {}, "nbformat": 4,
                                 "nbformat_minor": 5}).encode(), 400, "schema validation"),
        ("script.py", b"def broken(:\n", 400, "syntax error"),
        ("data.csv", b"a,b\n1,2\n", 415, "unsupported file type"),
        ("bundle.zip", b"PK\x03\x04 not really", 400, "not a valid zip"),
        ("../../etc/passwd.ipynb", json.dumps(make_notebook("1")).encode(), 400, "'..'"),
    ],
)
def test_bad_upload_is_refused_and_nothing_stored(alice, filename, body, status, needle):
    before = job_count(alice)
    r = alice.post("jobs", files={"file": (filename, body)})
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]
    assert job_count(alice) == before


def test_upload_over_the_limit_is_413(alice):
    before = job_count(alice)
    big = make_notebook("x = '" + "a" * 1_200_000 + "'")  # the fixture's limit is 1,000,000 bytes
    r = alice.post("jobs", files={"file": ("big.ipynb", json.dumps(big))})
    assert r.status_code == 413
    assert "limit" in r.json()["error"]["message"]
    assert job_count(alice) == before


def test_unknown_parameter_is_400_and_lists_the_known_ones(alice):
    nb = make_notebook("print(alpha)", parameters="alpha = 1\nbeta = 'b'")
    r = alice.post("jobs", files={"file": ("p.ipynb", json.dumps(nb))}, data={"parameters": json.dumps({"gamma": 3})})
    assert r.status_code == 400
    message = r.json()["error"]["message"]
    assert "gamma" in message and "alpha" in message and "beta" in message


def test_parameters_without_a_parameters_cell_are_refused(alice):
    r = alice.post("jobs", files={"file": ("p.ipynb", json.dumps(make_notebook("1")))},
                   data={"parameters": '{"a": 1}'})
    assert r.status_code == 400 and "no cell tagged 'parameters'" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "fields,needle",
    [
        ({"parameters": "{not json"}, "parameters is not valid JSON"),
        ({"resources": '{"memory": "lots"}'}, "is not a size"),
        ({"resources": '{"cpu": -1}'}, "must be positive"),
        ({"resources": '{"disk": 1}'}, "unknown resource"),
        ({"timeout": "soon"}, "timeout must be a number"),
        ({"name": "../../evil"}, "name"),
        ({"output_formats": "pdf"}, "unknown output format"),
        ({"callback_url": "file:///etc/passwd"}, "callback_url"),
    ],
)
def test_bad_fields_are_400(alice, fields, needle):
    before = job_count(alice)
    r = alice.post("jobs", files={"file": ("ok.ipynb", json.dumps(make_notebook("1")))}, data=fields)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]["message"]
    assert job_count(alice) == before


def test_truncated_json_body_is_400(alice):
    r = alice.post("jobs", data=b'{"notebook": {"cells": [', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]


@pytest.mark.parametrize("path", ["../bob/secret.ipynb", "/etc/passwd", "a/../../b.ipynb"])
def test_workspace_path_escape_is_refused(alice, path):
    r = alice.post("jobs", json={"path": path})
    assert r.status_code == 400, r.text
    assert "path" in r.json()["error"]["message"]


def test_workspace_path_submission_and_listing(hub, alice):
    ws = hub.data / "users" / "alice" / "analysis"
    ws.mkdir(parents=True, exist_ok=True)
    (ws / "daily.ipynb").write_text(json.dumps(make_notebook("print('from workspace', day)", parameters="day = 1")))
    listed = alice.get("notebooks").json()["notebooks"]
    assert "analysis/daily.ipynb" in {n["path"] for n in listed}
    r = alice.post("jobs", json={"path": "analysis/daily.ipynb", "parameters": {"day": 7}})
    assert r.status_code == 201, r.text
    assert alice.post("jobs", json={"path": "analysis/missing.ipynb"}).status_code == 404


def test_gpu_request_on_a_hub_without_gpus_is_422(alice):
    r = alice.post("jobs", files={"file": ("g.ipynb", json.dumps(make_notebook("1")))},
                   data={"resources": '{"gpu": 1}'})
    assert r.status_code == 422 and "GPU" in r.json()["error"]["message"]


def test_unknown_job_and_unknown_endpoint_are_json_404(alice):
    assert alice.get("jobs/" + "0" * 32).status_code == 404
    r = alice.get("no-such-thing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
