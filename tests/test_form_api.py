"""What the pages' forms ask of the API, through a real Hub: a dry run answers the notebook's
parameters and its sizing in words; a re-run takes new parameters, checked as a submit's."""

from tests.hubtest import make_notebook, nb_bytes


def test_a_dry_run_answers_the_notebooks_parameters_and_its_sizing_in_words(hub, alice):
    rel = hub.write_workspace("alice", "form/params.ipynb",
                             make_notebook("print(rate)", parameters="rate = 0.5  # how fast\nlabel = 'x'\nn = 2 ** 3"))
    r = alice.post("jobs", params={"dry_run": "1"}, json={"path": rel})
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["notebook_parameters"] == [
        {"name": "rate", "type": "float", "value": 0.5, "source": "0.5", "help": "how fast",
         "annotation": None},
        {"name": "label", "type": "str", "value": "x", "source": "'x'", "help": "", "annotation": None},
        {"name": "n", "type": "expr", "value": None, "source": "2 ** 3", "help": "",
         "annotation": None},
    ]
    words = job["resources"]["explanation"]
    assert "of memory:" in words and "Time limit" in words, words
    # an upload the same; a notebook without a parameters cell has none
    r = alice.post("jobs", params={"dry_run": "1"}, files={"file": ("plain.ipynb", nb_bytes(make_notebook("1")))})
    assert r.status_code == 200 and r.json()["notebook_parameters"] is None
    assert alice.get("jobs", params={"q": "params.ipynb"}).json()["jobs"] == []  # nothing stored


def test_a_dry_run_of_a_bad_path_names_it(alice):
    r = alice.post("jobs", params={"dry_run": "1"}, json={"path": "form/missing.ipynb"})
    assert r.status_code == 404 and "form/missing.ipynb" in r.json()["error"]["message"]
    r = alice.post("jobs", params={"dry_run": "1"}, json={"path": "../bob/x.ipynb"})
    assert r.status_code == 400 and "path" in r.json()["error"]["message"]


def test_a_rerun_with_parameters_runs_them_on_the_same_input(alice):
    job = alice.wait(alice.submit(make_notebook("print('p is', p)", parameters="p = 'a'\nq = 1"),
                                  parameters={"p": "b", "q": 2})["id"])
    # the rerun's dry run offers the input's parameters as a submit's does (the Lab's Rerun dialog reads them)
    r = alice.post(f"jobs/{job['id']}/rerun", params={"dry_run": "1"})
    assert r.status_code == 200, r.text
    assert [(f["name"], f["value"]) for f in r.json()["notebook_parameters"]] == [("p", "a"), ("q", 1)]
    r = alice.post(f"jobs/{job['id']}/rerun", json={"parameters": {"p": "changed"}})
    assert r.status_code == 201, r.text
    again = alice.wait(r.json()["id"])
    assert again["parameters"] == {"p": "changed"} and again["rerun_of"] == job["id"]
    assert again["status"] == "succeeded" and "p is changed" in alice.get(f"jobs/{again['id']}/logs").text
    # no body: the job's own parameters, as before
    r = alice.post(f"jobs/{job['id']}/rerun")
    assert r.status_code == 201 and r.json()["parameters"] == {"p": "b", "q": 2}
    alice.wait(r.json()["id"])


def test_a_rerun_with_bad_parameters_is_a_400_naming_them_and_stores_nothing(alice):
    job = alice.submit(make_notebook("print(p)", parameters="p = 'a'"), name="rerun-bad")
    before = len(alice.get("jobs", params={"q": "rerun-bad"}).json()["jobs"])
    for body, named in (({"parameters": {"nope": 1}}, "nope"), ({"parameters": [1]}, "parameters"),
                        ({"parameters": {"p": "b"}, "memory": "1GB"}, "memory"),  # (resources go in "resources")
                        ({"resources": {"memory": "lots"}}, "resources.memory"), ({"timeout": -1}, "timeout"),
                        ([1], "JSON object")):
        r = alice.post(f"jobs/{job['id']}/rerun", json=body)
        assert r.status_code == 400, (body, r.text)
        assert named in r.json()["error"]["message"], r.text
    r = alice.post(f"jobs/{job['id']}/rerun", data="{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert len(alice.get("jobs", params={"q": "rerun-bad"}).json()["jobs"]) == before
    alice.wait(job["id"])


def test_the_page_of_a_timed_out_runs_rerun_says_it_got_twice_the_time(hub, alice):
    from tests.hubtest import SERVICE

    job = alice.wait(alice.submit(make_notebook("import time\ntime.sleep(30)"), name="too-slow", timeout=2)["id"])
    assert job["error"]["reason"] == "timeout", job
    again = alice.post(f"jobs/{job['id']}/rerun").json()
    assert again["resources"]["allocated"]["timeout"] == 4  # the retry's rule, what the page then explains
    page = alice.browser.get(hub.url + SERVICE + "jobs/" + again["id"])
    assert page.status_code == 200
    assert "Time limit 4 s: twice the last run&#39;s, which ran out of time." in page.text
    alice.post(f"jobs/{again['id']}/cancel")


# -- error.field: which field a refusal is about, as a JSON pointer into the request --------------

PARAMS = "p = 'a'\nn = 1"


def field_of(r, status=400):
    assert r.status_code == status, r.text
    return r.json()["error"].get("field", "(none)")


def test_every_refusal_about_one_field_of_a_json_submission_names_it_as_a_json_pointer(hub, alice):
    nb = make_notebook("print(p)", parameters=PARAMS)
    rel = hub.write_workspace("alice", "form/fields.ipynb", nb)
    for body, field, status in (
        ({"name": "a/b"}, "/name", 400),
        ({"resources": {"memory": "lots"}}, "/resources/memory", 400),
        ({"resources": {"ram": "lots"}}, "/resources/ram", 400),  # as the body spells it
        ({"resources": {"cpu": -1}}, "/resources/cpu", 400),
        ({"resources": {"gpu": 1.5}}, "/resources/gpu", 400),
        ({"resources": {"gpu": 8}}, "/resources/gpu", 422),  # this Hub has none
        ({"resources": {"disk": 1}}, "/resources/disk", 400),
        ({"resources": {"timeout": 0}}, "/resources/timeout", 400),
        ({"resources": [1]}, "/resources", 400),
        ({"timeout": "soon"}, "/timeout", 400),
        ({"parameters": {"nope": 1}}, "/parameters/nope", 400),
        ({"parameters": {"nope": 1, "nada": 2}}, "/parameters", 400),
        ({"parameters": {"n": "x"}}, "/parameters/n", 400),
        ({"parameters": [1]}, "/parameters", 400),
        ({"output_formats": ["pdf"]}, "/output_formats", 400),
        ({"notify": "sometimes"}, "/notify", 400),
        ({"callback_url": "ftp://x"}, "/callback_url", 400),
        ({"callback_url": "http://127.0.0.1/hook"}, "/callback_url", 400),  # the webhook policy's refusal
    ):
        r = alice.post("jobs", params={"dry_run": "1"}, json=dict(body, path=rel))
        assert field_of(r, status) == field, (body, r.text)
    # the source: the field it came in
    assert field_of(alice.post("jobs", json={"path": "form/missing.ipynb"}), 404) == "/path"
    assert field_of(alice.post("jobs", json={"path": "../x.ipynb"})) == "/path"
    assert field_of(alice.post("jobs", json={"notebook": {"cells": 1}})) == "/notebook"
    assert field_of(alice.post("jobs", json={"code": "def ("})) == "/code"
    # not about one field: no field at all
    for r in (alice.post("jobs", json={}), alice.post("jobs", json=[1]),
              alice.post("jobs", data="{", headers={"Content-Type": "application/json"}),
              alice.post("jobs", data="x", headers={"Content-Type": "text/plain"})):
        assert r.status_code in (400, 415) and "field" not in r.json()["error"], r.text


def test_a_multipart_field_is_named_by_the_same_pointer_and_the_upload_by_file(alice):
    nb = nb_bytes(make_notebook("print(p)", parameters=PARAMS))
    for data, field in (({"name": "a/b"}, "/name"), ({"resources": '{"memory": "lots"}'}, "/resources/memory"),
                        ({"resources": "{"}, "/resources"), ({"timeout": "-1"}, "/timeout"),
                        ({"parameters": '{"n": "x"}'}, "/parameters/n"), ({"output_formats": "pdf"}, "/output_formats"),
                        ({"notify": "x"}, "/notify")):
        r = alice.post("jobs", params={"dry_run": "1"}, files={"file": ("nb.ipynb", nb)}, data=data)
        assert field_of(r) == field, (data, r.text)
    assert field_of(alice.post("jobs", files={"file": ("nb.ipynb", b"{not json")})) == "/file"
    assert field_of(alice.post("jobs", files={"file": ("nb.pdf", b"%PDF")}), 415) == "/file"
    assert field_of(alice.post("jobs", files={"other": ("nb.ipynb", nb)})) == "/file"


def test_a_rerun_a_schedule_and_a_patch_name_their_fields_too(hub, alice):
    job = alice.submit(make_notebook("print(p)", parameters=PARAMS), name="fields-rerun")
    for body, field in (({"parameters": {"nope": 1}}, "/parameters/nope"), ({"timeout": -1}, "/timeout"),
                        ({"resources": {"memory": "lots"}}, "/resources/memory"), ({"memory": "1GB"}, "/memory")):
        assert field_of(alice.post(f"jobs/{job['id']}/rerun", json=body)) == field, body
    rel = hub.write_workspace("alice", "form/scheduled.ipynb", make_notebook("print(p)", parameters=PARAMS))
    for body, field in (({"cron": "61 * * * *"}, "/cron"), ({"cron": "@daily", "timezone": "Mars/Base"}, "/timezone"),
                        ({"cron": "@daily", "overlap": "x"}, "/overlap"),
                        ({"cron": "@daily", "paused": "x"}, "/paused"),
                        ({"cron": "@daily", "name": "a/b"}, "/name"), ({"cron": "@daily", "colour": "red"}, "/colour")):
        assert field_of(alice.post("schedules", json=dict(body, path=rel))) == field, body
    r = alice.post("schedules", json={"from_job": "0" * 32, "cron": "@daily"})
    assert field_of(r, 404) == "/from_job"
    r = alice.post("schedules", json={"path": rel, "cron": "@daily", "paused": True})
    assert r.status_code == 201, r.text
    url = f"schedules/{r.json()['id']}"
    assert field_of(alice.api.patch(alice.url(url), json={"notify": "x"})) == "/notify"
    assert field_of(alice.api.patch(alice.url(url), json={"parameters": {"n": "x"}})) == "/parameters/n"
    assert alice.delete(url).status_code == 204
    alice.post(f"jobs/{job['id']}/cancel")
