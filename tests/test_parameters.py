"""A job's parameters are checked by the service, whatever way they come in: each value against the
type of the notebook's ``parameters`` cell, and all of them against the admin's size limit.

The way in does not matter (the API, its dry run, the CLI, a rerun, a schedule): each answers
the same 400 naming the parameter and both types, before any job exists. A notebook that wants
a value of any type says so (``x = None``, or ``x: Any = 3``).
"""

import json

import nbformat
import pytest

from hub_service.intake import IntakeError, check_parameters
from tests.hubtest import make_notebook, nb_bytes
from tests.test_cli import cli, one_error_line

CELL = ("rows = 1000\nratio = 0.5\nmode = 'fast'\nverbose = False\ncolumns = ['a']\noptions = {'k': 1}\n"
        "anything = None\nlimit: int = 10\nloose: Any = 3\nsize = 2 ** 10")


def notebook() -> dict:
    return make_notebook("print(rows, ratio, mode, verbose, columns, options, anything, limit, loose, size)",
                         parameters=CELL)


def node():
    return nbformat.reads(json.dumps(notebook()), as_version=4)


@pytest.mark.parametrize("parameters", [
    {"rows": 5}, {"ratio": 2}, {"ratio": 0.25}, {"mode": "slow"}, {"verbose": True}, {"columns": []},
    {"options": {}}, {"anything": "x"}, {"anything": [1]}, {"limit": 3}, {"loose": "three"}, {"size": "1k"},
    {"rows": None}, {"columns": None},  # papermill's "no value", for any parameter
])
def test_values_of_the_parameters_type_pass_an_int_for_a_float_too(parameters):
    assert check_parameters(node(), parameters) == parameters


@pytest.mark.parametrize("parameters,words", [
    ({"rows": "abc"}, "parameter rows must be an int (the notebook's rows = 1000), got a str 'abc'"),
    ({"rows": 1.5}, "parameter rows must be an int (the notebook's rows = 1000), got a float 1.5"),
    ({"rows": True}, "parameter rows must be an int (the notebook's rows = 1000), got a bool True"),
    ({"ratio": "0.5"}, "parameter ratio must be a float (the notebook's ratio = 0.5), got a str '0.5'"),
    ({"mode": 3}, "parameter mode must be a str (the notebook's mode = 'fast'), got an int 3"),
    ({"verbose": 1}, "parameter verbose must be a bool"),
    ({"columns": "a"}, "parameter columns must be a list"),
    ({"options": [1]}, "parameter options must be a dict"),
    ({"limit": 2.5}, "parameter limit must be an int (the notebook's limit = 10), got a float 2.5"),
])
def test_a_value_of_another_type_is_refused_naming_the_parameter_and_both_types(parameters, words):
    with pytest.raises(IntakeError) as refused:
        check_parameters(node(), parameters)
    assert refused.value.status == 400 and refused.value.message.startswith(words), refused.value.message


def test_parameters_over_the_size_limit_are_413_naming_the_largest():
    with pytest.raises(IntakeError) as refused:
        check_parameters(node(), {"mode": "x" * 5000, "rows": 1}, max_size=4096)
    assert refused.value.status == 413
    assert refused.value.message.startswith("parameters take 4.9 KiB, more than the limit of 4 KiB (the largest is 'mode')")
    assert check_parameters(node(), {"mode": "x" * 4000}, max_size=4096)


@pytest.fixture(scope="module")
def typed(hub):
    """The typed notebook in alice's workspace, and a job of it."""
    alice = hub.user("alice")
    hub.write_workspace("alice", "typed.ipynb", notebook())
    r = alice.post("jobs", json={"path": "typed.ipynb", "parameters": {"rows": 2}})
    assert r.status_code == 201, r.text
    return r.json()


BAD = {"rows": "abc"}
WORDS = "parameter rows must be an int (the notebook's rows = 1000), got a str 'abc'"


def refused(r, words=WORDS, status=400):
    assert r.status_code == status, r.text
    assert words in r.json()["error"]["message"], r.text


def test_every_way_in_refuses_a_value_of_another_type(hub, alice, typed):
    before = alice.get("jobs", params={"limit": 200}).json()["jobs"]
    refused(alice.post("jobs", json={"path": "typed.ipynb", "parameters": BAD}))
    refused(alice.post("jobs", params={"dry_run": "1"}, json={"path": "typed.ipynb", "parameters": {"rows": 1.5}}),
            "parameter rows must be an int (the notebook's rows = 1000), got a float 1.5")
    refused(alice.post("jobs", files={"file": ("typed.ipynb", nb_bytes(notebook()))},
                       data={"parameters": json.dumps(BAD)}))
    refused(alice.post(f"jobs/{typed['id']}/rerun", json={"parameters": BAD}))
    refused(alice.post("schedules", json={"path": "typed.ipynb", "cron": "0 3 * * *", "parameters": BAD}))
    refused(alice.post("schedules", json={"from_job": typed["id"], "cron": "0 3 * * *", "parameters": BAD}))
    assert alice.get("jobs", params={"limit": 200}).json()["jobs"] == before  # nothing was made
    assert all(s["source"].get("path") != "typed.ipynb" or s["parameters"] != BAD
               for s in alice.get("schedules").json()["schedules"])


def test_a_schedule_cannot_be_changed_to_a_value_of_another_type(alice, typed):
    r = alice.post("schedules", json={"path": "typed.ipynb", "cron": "0 3 * * *", "parameters": {"rows": 3}})
    assert r.status_code == 201, r.text
    schedule = r.json()
    try:
        refused(alice.api.patch(alice.url(f"schedules/{schedule['id']}"), json={"parameters": BAD}))
        assert alice.get(f"schedules/{schedule['id']}").json()["parameters"] == {"rows": 3}
    finally:
        alice.delete(f"schedules/{schedule['id']}")


def test_the_cli_gets_the_same_refusal_in_one_line(hub, alice, typed, tmp_path):
    path = tmp_path / "typed.ipynb"
    path.write_bytes(nb_bytes(notebook()))
    one_error_line(cli(alice, "submit", str(path), "-p", "rows", "abc"), WORDS)
    one_error_line(cli(alice, "submit", str(path), "-p", "rows", "1.5", "--dry-run"), "got a float 1.5")
    # -r passes a string on purpose: to a str parameter it is what it says
    assert cli(alice, "submit", str(path), "-r", "mode", "2", "--dry-run", "--json").returncode == 0


def test_parameters_over_the_admins_limit_are_a_413_in_words_on_every_way_in(hub, alice, typed):
    huge = {"mode": "x" * (70 << 10)}  # the session Hub keeps the default limit, 64 KiB
    words = "parameters take 70 KiB, more than the limit of 64 KiB"
    refused(alice.post("jobs", json={"path": "typed.ipynb", "parameters": huge}), words, 413)
    refused(alice.post("jobs", params={"dry_run": "1"}, json={"path": "typed.ipynb", "parameters": huge}), words, 413)
    refused(alice.post(f"jobs/{typed['id']}/rerun", json={"parameters": huge}), words, 413)
    refused(alice.post("schedules", json={"path": "typed.ipynb", "cron": "0 3 * * *", "parameters": huge}),
            words, 413)


def test_a_list_of_jobs_cuts_long_values_short_and_the_job_has_them_whole(alice, typed):
    long = "y" * 5000
    job = alice.wait(alice.post("jobs", json={"path": "typed.ipynb", "parameters": {"mode": long, "rows": 7}})
                     .json()["id"])
    listed = next(j for j in alice.get("jobs", params={"limit": 200}).json()["jobs"] if j["id"] == job["id"])
    assert listed["parameters"] == {"mode": "y" * 200 + "…", "rows": 7} and listed["parameters_cut"] == ["mode"]
    assert alice.get(f"jobs/{job['id']}").json()["parameters"] == {"mode": long, "rows": 7}
    full = alice.get("jobs", params={"limit": 200, "full_parameters": "1"}).json()["jobs"]
    assert next(j for j in full if j["id"] == job["id"])["parameters"]["mode"] == long
    # the event stream's status events are for lists too: its job is the cut one
    events = alice.get(f"jobs/{job['id']}/events", stream=True, timeout=30)
    first = next(line for line in events.iter_lines(decode_unicode=True) if line.startswith("data:"))
    events.close()
    assert json.loads(first[5:])["job"]["parameters"]["mode"] == "y" * 200 + "…"
