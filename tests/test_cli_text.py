"""What users made, printed by the CLI: it never drives the terminal of whoever reads it.

A name, a parameter value or an error holding ``ESC ] 0;… BEL`` (set the window's title) or
``ESC [ 2 J`` (clear the screen) is printed with those characters as visible escapes, in
``list``, ``status``, ``sweeps show`` and ``schedules show``; ``--json`` is the API's answer,
which JSON escapes itself. A job's log goes out as its bytes to a pipe, and on a terminal with
its colours only. Through the real Hub and service; the odd names are written into the service's
store, as rows stored before names were checked hold them (the API refuses such a name now).
"""

from __future__ import annotations

import json
import re
import sqlite3

import pytest

from hub_service.cli.lines import shown
from tests.hubtest import make_notebook
from tests.test_cli import cli, on_a_terminal

EVIL = "\x1b]0;pwned\x07\x1b[2J"
#: how it is shown: every character readable, none a command
SHOWN = "\\x1b]0;pwned\\x07\\x1b[2J"
#: what no printed line may hold: a C0 or C1 control character, DEL (newlines are the lines' own)
RAW = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def test_shown_escapes_every_control_character_and_keeps_the_rest():
    assert shown(EVIL) == SHOWN
    assert shown("a\nb\tc\r\x00\x7f\x9b é ☃") == "a\\nb\\tc\\r\\x00\\x7f\\x9b é ☃"
    assert shown("a\nb\tc\r", one_line=False) == "a\nb\tc\\r"  # a message of several lines keeps them
    coloured = "\x1b[0;31mValueError\x1b[0m" + EVIL
    assert shown(coloured, one_line=False, colours=True) == "\x1b[0;31mValueError\x1b[0m" + SHOWN
    assert shown(coloured) == "\\x1b[0;31mValueError\\x1b[0m" + SHOWN
    assert shown(7) == "7" and shown("plain name") == "plain name"


def stored(hub, table: str, row_id: str, name: str) -> None:
    """Give a row of the service's store ``name``, as one stored before names were checked."""
    db = sqlite3.connect(hub.service_data / "jobs.sqlite")
    try:
        with db:
            assert db.execute(f"UPDATE {table} SET name = ? WHERE id = ?", (name, row_id)).rowcount == 1
    finally:
        db.close()


@pytest.fixture(scope="module")
def made(hub):
    """Eve's job (failed, with an error, a log and a name of escapes), her sweep of escaped values."""
    eve = hub.user("eve-terminal")
    code = "print(%r)\nraise ValueError(%r)" % ("\x1b[31mred\x1b[0m " + EVIL, EVIL)
    nb = make_notebook(code, parameters="v = ''")
    job = eve.submit(nb, parameters={"v": EVIL})
    r = eve.post("sweeps", json={"notebook": make_notebook("1", parameters="v = ''"), "parameters": {"v": [EVIL, "b"]}})
    assert r.status_code == 201, r.text
    sweep = r.json()
    for run in [job["id"], *(run["job_id"] for run in sweep["runs"])]:
        eve.wait(run)
    stored(hub, "jobs", job["id"], "job " + EVIL)
    stored(hub, "sweeps", sweep["id"], "sweep " + EVIL)
    return eve, job["id"], sweep["id"]


def no_raw(r) -> str:
    assert r.returncode in (0, 1), (r.returncode, r.stdout, r.stderr)
    assert not RAW.search(r.stdout + r.stderr), (r.stdout, r.stderr)
    return r.stdout + r.stderr


def test_list_status_and_sweeps_show_print_what_eve_made_escaped(made):
    eve, job_id, sweep_id = made
    line = next(x for x in no_raw(cli(eve, "list")).splitlines() if x.startswith(job_id))
    assert line.endswith("  job " + SHOWN), line
    status = no_raw(cli(eve, "status", job_id))
    assert f"ValueError: {SHOWN}" in status, status  # the error's message: the notebook's own text
    show = no_raw(cli(eve, "sweeps", "show", sweep_id)).splitlines()
    assert show[0].startswith(f"sweep {sweep_id}  sweep {SHOWN}  succeeded"), show[0]
    assert show[1].split() == ["JOB", "STATUS", "TOOK", "PEAK", "MEM", "v"], show[1]
    assert [row.split()[-1] for row in show[2:]] == [SHOWN, "b"], show
    assert f"sweep {SHOWN}" in no_raw(cli(eve, "sweeps", "list"))


def test_json_output_is_the_apis_answer_unchanged(made):
    eve, job_id, sweep_id = made
    for args, pick in ((["list", "--json"], lambda a: next(j for j in a["jobs"] if j["id"] == job_id)["name"]),
                       (["status", job_id, "--json"], lambda a: a["name"]),
                       (["sweeps", "show", sweep_id, "--json"], lambda a: a["name"])):
        out = no_raw(cli(eve, *args))  # JSON escapes every control character itself
        assert pick(json.loads(out)).endswith(" " + EVIL), args
    parameters = json.loads(cli(eve, "status", job_id, "--json").stdout)["parameters"]
    assert parameters == {"v": EVIL}


def test_a_log_is_its_bytes_to_a_pipe_and_escaped_but_for_colours_on_a_terminal(made):
    eve, job_id, _ = made
    piped = cli(eve, "logs", job_id)
    assert piped.returncode == 0 and f"\x1b[31mred\x1b[0m {EVIL}" in piped.stdout  # as the notebook printed it
    text = on_a_terminal(eve, "logs", job_id, timeout=60)
    assert f"\x1b[31mred\x1b[0m {SHOWN}" in text, text  # the colour stays, the title and the clearing do not
    assert EVIL not in text
