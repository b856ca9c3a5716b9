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
