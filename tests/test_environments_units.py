"""Environments and a bundle's requirements, in-process: the requirements checker (every form it refuses, and
the normal form a derived image is cached by), the admin's list, and the choice of a job's environment."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from traitlets import TraitError

from hub_service.environments import Environments
from hub_service.executors.docker.builds import cache_key, pip_says
from hub_service.intake import IntakeError, Limits
from hub_service.request import parse_submission
from hub_service.requirements import check_requirements
from tests.hubtest import make_notebook, nb_bytes


@pytest.mark.parametrize("line, says", [
    ("-e .", "the option -e is not allowed"),
    ("--editable ./pkg", "the option --editable is not allowed"),
    ("--index-url https://example.org/simple", "the option --index-url is not allowed"),
    ("-i https://example.org/simple", "the option -i is not allowed"),
    ("--extra-index-url=https://example.org/simple", "the option --extra-index-url is not allowed"),
    ("--find-links /tmp", "the option --find-links is not allowed"),
    ("--trusted-host example.org", "the option --trusted-host is not allowed"),
    ("-r other.txt", "the option -r is not allowed"),
    ("-c constraints.txt", "the option -c is not allowed"),
    ("--pre", "the option --pre is not allowed"),
    ("https://example.org/pkg-1.0-py3-none-any.whl", "URLs"),
    ("git+https://example.org/repo.git#egg=pkg", "URLs and version-control"),
    ("hg+ssh://example.org/repo", "URLs and version-control"),
    ("pkg @ https://example.org/pkg.zip", "URLs"),
    ("pkg @ file:///home/alice/pkg", "URLs"),
    ("./pkg", "local paths"),
    ("../pkg", "local paths"),
    ("/home/alice/pkg", "local paths"),
    ("~/pkg", "local paths"),
    ("pkg-1.0-py3-none-any.whl", "archive files"),
    ("pkg.tar.gz", "archive files"),
    ("tabulate>=>0.9", "not a requirement specifier"),
    ("tabulate ==", "not a requirement specifier"),
    ("tabulate \\", "line continuations"),
])
def test_anything_but_a_plain_specifier_is_refused_naming_its_line(line, says):
    with pytest.raises(IntakeError) as e:
        check_requirements(f"# my packages\nsix\n\n{line}\n")
    assert e.value.status == 400 and e.value.field == "/requirements"
    assert e.value.message.startswith(f"requirements line 4 ({line!r}): "), e.value.message
    assert says in e.value.message


def test_plain_specifiers_are_taken_in_a_normal_form_that_keys_the_cache():
    one = check_requirements("Tabulate>=0.9  # tables\nsix==1.17\nrequests[socks,Security]; python_version > '3'\n")
    assert one == ('requests[security,socks]; python_version > "3"', "six==1.17", "tabulate>=0.9")
    other = check_requirements(b"six == 1.17\n\n# the same, otherwise written\ntabulate >= 0.9\n"
                               b"Requests[Security, socks] ; python_version>'3'\n")
    assert other == one and cache_key("sha256:base", one) == cache_key("sha256:base", other)
    assert cache_key("sha256:base", one) != cache_key("sha256:other-base", one)
    assert check_requirements("") == () and check_requirements(None) == ()


def test_too_many_lines_and_non_text_are_refused():
    with pytest.raises(IntakeError, match="more than 100 requirements"):
        check_requirements("\n".join(f"pkg{i}" for i in range(101)))
    with pytest.raises(IntakeError, match="not UTF-8"):
        check_requirements(b"\xff\xfe")


def test_pips_own_reason_is_one_line():
    out = "Collecting nope\n  ERROR: Could not find a version that satisfies the requirement nope\n" \
          "ERROR: No matching distribution found for nope\n"
    assert pip_says(out, "x") == "ERROR: No matching distribution found for nope"
    assert pip_says("Traceback\nOSError: disk full\n", "x") == "OSError: disk full"
    assert pip_says("", "pip exited with code 2") == "pip exited with code 2"


def _zip(files: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _parse(content_type: str, body: bytes):
    return parse_submission(content_type, body, {}, "alice", Limits(), lambda user, path: None)[1]


def test_requirements_come_with_a_bundle_or_beside_a_notebook_and_are_kept_with_its_input():
    nb = make_notebook("import tabulate")
    request = _parse("application/json", json.dumps({"notebook": nb, "requirements": "tabulate\n"}).encode())
    assert request.requirements == ("tabulate",) and request.row()["build"] == {"requirements": ["tabulate"]}
    assert request.bundle.files == {"requirements.txt": b"tabulate\n"}  # stored, hashed and rerun with the input
    assert request.environment is None  # the default, named by the plan
    plain = _parse("application/json", json.dumps({"notebook": nb}).encode())
    assert plain.requirements == () and plain.row()["build"] is None
    assert plain.bundle.sha256 != request.bundle.sha256
    # a .zip's own: read from the bundle, and refused when the field comes too
    zipped = _zip({"main.ipynb": nb_bytes(nb), "requirements.txt": "six\n-r more.txt\n"})
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"job.zip\"\r\n"
            f"Content-Type: application/zip\r\n\r\n").encode() + zipped + f"\r\n--{boundary}--\r\n".encode()
    with pytest.raises(IntakeError) as e:
        _parse(f"multipart/form-data; boundary={boundary}", body)
    assert e.value.field == "/requirements" and "requirements line 2" in e.value.message
    twice = _zip({"main.ipynb": nb_bytes(nb), "requirements.txt": "six\n"})
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"job.zip\"\r\n\r\n").encode() \
        + twice + (f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"requirements\"\r\n\r\nsix\r\n"
                   f"--{boundary}--\r\n").encode()
    with pytest.raises(IntakeError, match="has a requirements.txt already") as e:
        _parse(f"multipart/form-data; boundary={boundary}", body)
    assert e.value.field == "/requirements"


ADMIN_LIST = [
    {"name": "python", "description": "lean", "image": "runner:1"},
    {"name": "data-science", "description": "pandas and friends", "image": "ds:1", "resources": {"memory": "4GB"}},
    {"name": "gpu", "image": "cuda:1", "gpu": True},
]


def test_the_runner_image_is_the_one_environment_when_the_admin_lists_none():
    envs = Environments(runner_image="notebook-jobs-runner:1")
    (only,) = envs.all
    assert (only.name, only.image) == ("python", "notebook-jobs-runner:1") and envs.default_environment == only
    assert envs.choose(None, 0, (), runs_images=True) == only


def test_a_job_gets_the_environment_it_names_or_the_default_and_a_refusal_says_why():
    envs = Environments(environments=ADMIN_LIST, default="data-science")
    assert envs.choose(None, 0, (), True).name == "data-science"
    chosen = envs.choose("python", 0, ("six",), True)
    assert chosen.image == "runner:1" and envs.image("gpu") == "cuda:1" and envs.image("gone") is None
    assert envs.all[1].resources == {"memory": 4 << 30}
    with pytest.raises(IntakeError) as e:
        envs.choose("lightgbm", 0, (), True)
    assert (e.value.status, e.value.field) == (400, "/environment")
    assert "data-science, gpu, python" in e.value.message
    with pytest.raises(IntakeError) as e:  # a GPU job where GPUs are not allowed
        envs.choose("python", 1, (), True)
    assert (e.value.status, e.value.field) == (422, "/environment")
    assert envs.choose("gpu", 1, (), True).name == "gpu"
    # an executor that runs no images (the local one): only the default, and no requirements
    assert envs.choose(None, 0, (), False).name == "data-science"
    with pytest.raises(IntakeError) as e:
        envs.choose("python", 0, (), False)
    assert (e.value.status, e.value.field) == (422, "/environment")
    with pytest.raises(IntakeError) as e:
        envs.choose(None, 0, ("six",), False)
    assert (e.value.status, e.value.field) == (422, "/requirements")


@pytest.mark.parametrize("environments, says", [
    ([{"name": "Bad Name", "image": "x"}], "lower-case"),
    ([{"name": "a", "image": "x", "colour": "red"}], "each entry is a dict"),
    ([{"name": "a", "image": "x"}, {"name": "a", "image": "y"}], "unique"),
    ([{"name": "a", "image": "x", "resources": {"memory": "lots"}}], "a: "),
])
def test_a_bad_admin_list_stops_the_start_saying_what_is_wrong(environments, says):
    with pytest.raises(TraitError, match=says):
        Environments(environments=environments)


def test_a_default_the_admin_does_not_list_is_refused():
    with pytest.raises(TraitError, match="not one of"):
        Environments(environments=ADMIN_LIST, default="nope").default_environment
