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
        ({"notify": "sometimes"}, "notify 'sometimes' must be one of never, failure, always"),
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
    r = alice.post("jobs", json={"path": "analysis/daily.ipynb", "parameters": {"day": 7}, "notify": "failure"})
    assert r.status_code == 201, r.text
    assert r.json()["notify"] == "failure"
    assert alice.post("jobs", json={"path": "analysis/missing.ipynb"}).status_code == 404


def test_gpu_request_on_a_hub_without_gpus_is_422(alice):
    r = alice.post("jobs", files={"file": ("g.ipynb", json.dumps(make_notebook("1")))},
                   data={"resources": '{"gpu": 1}'})
    assert r.status_code == 422 and "GPU" in r.json()["error"]["message"]


def test_unknown_job_and_unknown_endpoint_are_json_404(alice):
    assert alice.get("jobs/" + "0" * 32).status_code == 404
    r = alice.get("no-such-thing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


# -- issue 13: every nasty request of the probe answers 4xx JSON naming what is wrong ----------------


def refused(r, status: int, *needles: str) -> str:
    """Assert a JSON error with ``status`` whose message names every needle; return the message."""
    assert r.status_code == status, (r.status_code, r.text[:500])
    assert r.headers["Content-Type"].startswith("application/json")
    message = r.json()["error"]["message"]
    for needle in needles:
        assert needle in message, message
    return message


OK_NB = json.dumps(make_notebook("1")).encode()


@pytest.mark.parametrize(
    "content_type,body,needle",
    [
        ("multipart/form-data", b"--x\r\n\r\n--x--\r\n", "boundary"),
        ("multipart/form-data; boundary=x",
         b'--x\r\nContent-Disposition: form-data; filename="a.ipynb"\r\n\r\n{}\r\n--x--\r\n', "missing name"),
        ("multipart/form-data; boundary=x",
         b'--x\r\nContent-Disposition: form-data; name="\xff\xfe\x01"\r\n\r\nv\r\n--x--\r\n', "multipart"),
        ("multipart/form-data; boundary=x", b"--x\r\nno headers at all", "multipart"),
    ],
    ids=["no-boundary", "part-without-name", "undecodable-field-name", "truncated"],
)
def test_malformed_multipart_is_400(alice, content_type, body, needle):
    before = job_count(alice)
    refused(alice.post("jobs", data=body, headers={"Content-Type": content_type}), 400, needle)
    assert job_count(alice) == before


@pytest.mark.parametrize("path", [{}, 7, ["a.ipynb"], True])
def test_workspace_path_of_the_wrong_type_is_400(alice, path):
    refused(alice.post("jobs", json={"path": path}), 400, "path must be a string")


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "body",
    [
        '{"code": "1", "parameters": {"x": ' + nested(100_000) + "}}",  # deep parameters
        nested(100_000),                                               # a deep body
        '{"code": "1", "parameters": {"x": ' + nested(70) + "}}",      # deep enough to refuse, shallow enough to parse
    ],
    ids=["parameters-100000", "body-100000", "parameters-70"],
)
def test_deeply_nested_json_is_400(alice, body):
    refused(alice.post("jobs", data=body, headers={"Content-Type": "application/json"}), 400, "nested more than 64")


@pytest.mark.parametrize(
    "body,needle",
    [
        ('{"code": "1", "parameters": 5}', "parameters must be a JSON object"),
        ('{"code": "1", "resources": 5}', "resources must be a JSON object"),
        ('{"code": "1", "resources": {"memory": Infinity}}', "Infinity is not a JSON number"),
        ('{"code": "1", "resources": {"memory": NaN}}', "NaN is not a JSON number"),
        ('{"code": "1", "resources": {"memory": 1e400}}', "1e400 is out of range"),
        ('{"code": "1", "resources": {"memory": "' + "9" * 400 + 'TB"}}', "more than 1 PiB"),
        ('{"code": "1", "resources": {"memory": ' + "9" * 400 + "}}", "more than 1 PiB"),
        ('{"code": "1", "resources": {"cpu": NaN}}', "NaN is not a JSON number"),
        ('{"code": "1", "resources": {"cpu": "NaN"}}', "resources.cpu must be a finite number"),
        ('{"code": "1", "timeout": "Infinity"}', "timeout must be a finite number"),
        ('{"code": "1", "timeout": -Infinity}', "-Infinity is not a JSON number"),
        ('{"code": "1", "resources": {"gpu": "1e400"}}', "resources.gpu must be a finite number"),
        ('{"code": "1", "name": "\\ud800"}', "lone surrogate"),
        ('{"code": "print(\\"\\udfff\\")"}', "lone surrogate"),
    ],
)
def test_json_submission_with_bad_values_is_400(alice, body, needle):
    before = job_count(alice)
    refused(alice.post("jobs", data=body, headers={"Content-Type": "application/json"}), 400, needle)
    assert job_count(alice) == before


@pytest.mark.parametrize(
    "fields,needle",
    [
        ({"resources": '{"cpu": NaN}'}, "NaN is not a JSON number"),
        ({"timeout": "NaN"}, "timeout must be a finite number"),
        ({"timeout": "Infinity"}, "timeout must be a finite number"),
        ({"timeout": "1e400"}, "timeout must be a finite number"),
        ({"parameters": '{"x": NaN}'}, "NaN is not a JSON number"),
    ],
)
def test_non_finite_numbers_in_form_fields_are_400(alice, fields, needle):
    before = job_count(alice)
    nb = json.dumps(make_notebook("print(x)", parameters="x = 1")).encode()
    refused(alice.post("jobs", files={"file": ("nb.ipynb", nb)}, data=fields), 400, needle)
    assert job_count(alice) == before


def zip_with(patch=None) -> bytes:
    """A bundle whose one member (main.py) is deflated, then ``patch(bytearray)`` applied to the archive."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("main.py", "print('hello')\n" * 50)
    data = bytearray(buf.getvalue())
    if patch:
        patch(data)
    return bytes(data)


def _set_method(data, method):
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + 8:local + 10] = data[central + 10:central + 12] = method.to_bytes(2, "little")


def _set_encrypted(data):
    data[data.find(b"PK\x03\x04") + 6] |= 1
    data[data.find(b"PK\x01\x02") + 8] |= 1


def _corrupt_deflate(data):
    start = data.find(b"PK\x03\x04") + 30 + len("main.py")
    data[start:start + 8] = b"\xff" * 8


@pytest.mark.parametrize(
    "patch,needle",
    [
        (_corrupt_deflate, "'main.py' is corrupt"),
        (_set_encrypted, "'main.py' is encrypted"),
        (lambda d: _set_method(d, 99), "'main.py' uses compression method 99"),
    ],
    ids=["corrupt-deflate", "encrypted", "method-99"],
)
def test_bad_zip_member_is_400(alice, patch, needle):
    assert alice.post("jobs", files={"file": ("ok.zip", zip_with())}).status_code == 201  # the unpatched one runs
    before = job_count(alice)
    refused(alice.post("jobs", files={"file": ("b.zip", zip_with(patch))}), 400, needle)
    assert job_count(alice) == before


def test_a_non_finite_number_that_reached_the_store_is_an_error_not_bare_nan(hub):
    """Output is strict JSON: a NaN written by a bug elsewhere shows as a 500, never as ``NaN`` in a listing."""
    import sqlite3

    carol = hub.user("carol-nan")
    job = carol.submit(make_notebook("1"))
    carol.wait(job["id"])
    db = sqlite3.connect(hub.service_data / "jobs.sqlite")
    try:
        with db:
            db.execute("UPDATE jobs SET used = ? WHERE id = ?", ('{"cpu_seconds": NaN}', job["id"]))
        for r in (carol.get(f"jobs/{job['id']}"), carol.get("jobs")):
            assert r.status_code == 500 and "NaN" not in r.text
            assert r.json()["error"]["message"].startswith("internal error")
    finally:
        with db:
            db.execute("UPDATE jobs SET used = '{}' WHERE id = ?", (job["id"],))
        db.close()
    assert carol.get(f"jobs/{job['id']}").status_code == 200


def test_idempotency_key_reused_for_another_request_is_422(alice):
    headers = {"Idempotency-Key": "issue-13-reuse"}
    nb = make_notebook("print(n)", parameters="n = 0")
    first = alice.post("jobs", json={"notebook": nb, "parameters": {"n": 1}}, headers=headers)
    assert first.status_code == 201, first.text
    again = alice.post("jobs", json={"notebook": nb, "parameters": {"n": 1}}, headers=headers)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    before = job_count(alice)
    message = refused(alice.post("jobs", json={"notebook": nb, "parameters": {"n": 2}}, headers=headers), 422,
                      "Idempotency-Key", "already used for another request", first.json()["id"])
    assert "issue-13-reuse" in message
    other = make_notebook("print('other')")
    refused(alice.post("jobs", json={"notebook": other}, headers=headers), 422, "another request")
    assert job_count(alice) == before


def upload_reading_early(hub, token, total: int, chunked: bool) -> tuple:
    """POST ``total`` bytes to /jobs through the Hub's proxy as curl does: stop sending if an answer arrives.

    Returns (status, headers+body text, bytes of the body sent before the answer came).
    """
    import select
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(hub.url)
    head = (f"POST /services/notebook-jobs/api/jobs HTTP/1.1\r\nHost: {url.netloc}\r\n"
            f"Authorization: token {token}\r\nContent-Type: application/json\r\n")
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {total}\r\n\r\n"
    piece = b" " * 65536
    with socket.create_connection((url.hostname, url.port), timeout=30) as s:
        s.sendall(head.encode())
        sent = 0
        try:
            while sent < total and not select.select([s], [], [], 0)[0]:
                part = piece[:total - sent]
                s.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
                sent += len(part)
        except BrokenPipeError:  # answered and closed between two pieces: the answer is waiting
            pass
        if sent >= total and chunked:
            s.sendall(b"0\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _content_length(answer):
            data = s.recv(65536)
            if not data:
                break
            answer += data
    status = int(answer.split(b" ", 2)[1])
    return status, answer.decode(), sent


def _content_length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 1 << 30


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_upload_far_over_the_limit_gets_a_json_413_through_the_proxy(hub, alice, chunked):
    """200 MB against a 1 MB limit: a JSON 413, whether the size is declared or not, and nothing kept."""
    before = job_count(alice)
    status, answer, sent = upload_reading_early(hub, alice.token, 200_000_000, chunked)
    assert status == 413, answer
    assert json.loads(answer.split("\r\n\r\n", 1)[1])["error"]["code"] == "too_large"
    assert job_count(alice) == before


def test_upload_over_the_limit_from_a_client_that_sends_it_all_is_413(alice):
    """A client that reads no early answer (requests sends the whole body first) still gets the JSON 413."""
    r = alice.post("jobs", data=(b" " * 1_000_000 for _ in range(8)), headers={"Content-Type": "application/json"})
    refused(r, 413, "over the limit of 1000000 bytes")
    r = alice.post("jobs", data=b" " * 8_000_000, headers={"Content-Type": "application/json"})
    refused(r, 413, "over the limit of 1000000 bytes")


def test_anonymous_upload_over_the_limit_is_401(hub):
    status, answer, _ = upload_reading_early(hub, "not-a-token", 20_000_000, chunked=False)
    assert status == 401, answer


def test_a_request_refused_before_its_body_is_read_leaves_the_connection_usable(alice):
    """Tornado hung up after answering such a request, and the proxy answered its 503 page instead
    (or to the next request on the connection); the answer now waits for the body to be read."""
    for _ in range(5):
        r = alice.api.request("TRACE", alice.url("jobs"), data=b" " * 100_000)  # not a verb Tornado knows
        refused(r, 405)
        r = alice.post("jobs", data=b" " * 1_500_000, headers={"Content-Type": "application/json"})
        refused(r, 413, "over the limit")
        assert alice.get("jobs", params={"limit": 1}).status_code == 200
